//! The transfer verbs of a [`Queue`]: a put or fetch queued on a tunnel or
//! on every host of a group, in order with the calls queued there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spec::{private, Fetch, Put, Source, Spec, TransferTarget};
use super::transfer::Bounds;
use super::{host_path, tunnel, Transfer};
use crate::error::Result;
use crate::group::{Place, Queue, QueueTarget, Queued};

/// What a queued put is called in reports.
const PUT: &str = "chopsticks::Queue::put";
/// What a queued fetch is called in reports.
const FETCH: &str = "chopsticks::Queue::fetch";

/// Where a queue's [`Put`] or [`Fetch`] goes: queued on the hosts of `on`
/// when the spec is dropped at the end of its statement, or by `queued()`,
/// which also gives its handles.
pub struct Enqueue<'q, 'a, On: QueueTarget> {
    /// `None` once queued.
    queue: Option<&'q mut Queue<'a>>,
    on: &'a On,
    fetch: bool,
}

impl<On: QueueTarget> std::fmt::Debug for Enqueue<'_, '_, On> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<String> = self.on.places().into_iter().map(|(h, _)| h).collect();
        f.debug_struct("Enqueue").field("hosts", &hosts).finish()
    }
}

impl<On: QueueTarget> TransferTarget for Enqueue<'_, '_, On> {}

impl<On: QueueTarget> private::Sealed for Enqueue<'_, '_, On> {
    fn finish(&mut self, spec: &mut Spec) {
        self.enqueue(spec);
    }
}

impl<'a, On: QueueTarget> Enqueue<'_, 'a, On> {
    /// Queues `spec` on every host of `on` (once).
    fn enqueue(&mut self, spec: &mut Spec) -> Vec<(String, Queued<Transfer>)> {
        let Some(queue) = self.queue.take() else {
            return Vec::new();
        };
        let spec = Arc::new(std::mem::take(spec));
        let places = self.on.places();
        // Each host's local path for a fetch (or why it has none).
        let locals: Vec<Result<PathBuf>> = match places.as_slice() {
            [(host, Place::Tunnel(_))] => vec![Ok(host_path::filled(&spec.local, host))],
            _ => host_path::for_hosts(places.iter().map(|(h, _)| h.as_str()), &spec.local),
        };
        places
            .into_iter()
            .zip(locals)
            .map(|((name, place), local)| {
                let (spec, timeout) = (Arc::clone(&spec), place.timeout());
                let bounds = move || Bounds {
                    timeout,
                    cancel: None,
                };
                let queued = match self.fetch {
                    false => queue.push_job(name.clone(), place, PUT, move |t| {
                        tunnel::put(t, &spec, bounds())
                    }),
                    true => queue.push_job(name.clone(), place, FETCH, move |t| {
                        tunnel::fetch_to(t, &spec, &local?, bounds())
                    }),
                };
                (name, queued)
            })
            .collect()
    }
}

impl<'a> Queue<'a> {
    /// Queues a put of `source` to `remote` on `on` (a tunnel, or every
    /// host of a group), after what was queued on each host before (see
    /// [`Tunnel::put`](crate::Tunnel::put)). It is queued at the end of the
    /// statement, with the options its methods set;
    /// [`queued`](Put::queued) queues it at once and gives its handles.
    ///
    /// ```no_run
    /// # use chopsticks::{Group, Queue, Source};
    /// # #[chopsticks::remote] fn reload() {}
    /// # fn main() -> Result<(), chopsticks::GroupError> {
    /// let web = Group::new(["web1", "web2"]);
    /// let mut queue = Queue::new();
    /// queue.put(&web, "app.conf", "/etc/app.conf").mode(0o640);   // on every host
    /// queue.call(&web, reload, ());                               // then this
    /// let logs = queue.fetch(&web, "/var/log/app.log", "logs/{host}/app.log").queued();
    /// queue.run()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn put<'q, On: QueueTarget>(
        &'q mut self,
        on: &'a On,
        source: impl Into<Source>,
        remote: impl AsRef<Path>,
    ) -> Put<Enqueue<'q, 'a, On>> {
        let place = Enqueue {
            queue: Some(self),
            on,
            fetch: false,
        };
        Put::new(place, source.into(), remote.as_ref())
    }

    /// Queues a fetch of `remote` on `on` to `local` (which must contain
    /// `{host}` for a group: see [`Group::fetch`](crate::Group::fetch)), as
    /// [`put`](Queue::put) queues a put.
    pub fn fetch<'q, On: QueueTarget>(
        &'q mut self,
        on: &'a On,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
    ) -> Fetch<Enqueue<'q, 'a, On>> {
        let place = Enqueue {
            queue: Some(self),
            on,
            fetch: true,
        };
        Fetch::new(place, remote.as_ref(), local.as_ref())
    }
}

impl<On: QueueTarget> Put<Enqueue<'_, '_, On>> {
    /// Queues it now, and gives its handles: one for a tunnel, one per
    /// host for a group.
    pub fn queued(mut self) -> On::Handles<Transfer> {
        On::gather(self.on.enqueue(&mut self.spec))
    }
}

impl<On: QueueTarget> Fetch<Enqueue<'_, '_, On>> {
    /// Queues it now, and gives its handles: one for a tunnel, one per
    /// host for a group.
    pub fn queued(mut self) -> On::Handles<Transfer> {
        On::gather(self.on.enqueue(&mut self.spec))
    }
}
