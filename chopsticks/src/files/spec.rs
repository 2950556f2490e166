//! The transfer verbs' specs: [`Put`] and [`Fetch`], made by `put` and
//! `fetch` on a tunnel, a group or a queue, configured by their methods and
//! ended by a verb (`run`, `spawn`; a queue's are queued).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::receive::Apply;

/// What a [`Put`] sends: a file or directory tree on this machine, or
/// bytes from memory. Paths convert into it, so `t.put("app.conf", ..)`
/// and `t.put(Source::bytes(text), ..)` both work.
///
/// ```
/// use chopsticks::Source;
///
/// let from_disk = Source::from("build/app.conf");
/// let rendered = Source::bytes(format!("port = {}\n", 8080));
/// # let _ = (from_disk, rendered);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Source(pub(crate) Origin);

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Path(PathBuf),
    /// Shared, so that a group sends one copy to every host.
    Bytes(Arc<[u8]>),
}

impl Source {
    /// The file or directory tree at `path` on this machine.
    pub fn path(path: impl Into<PathBuf>) -> Source {
        Source(Origin::Path(path.into()))
    }

    /// `bytes` from memory, written as one file (mode `0o644` unless the
    /// put's [`mode`](Put::mode) says otherwise).
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Source {
        Source(Origin::Bytes(bytes.into().into()))
    }

    /// The path on this machine, or an empty path for bytes.
    pub(crate) fn local(&self) -> &Path {
        match &self.0 {
            Origin::Path(path) => path,
            Origin::Bytes(_) => Path::new(""),
        }
    }
}

/// The content of bytes may be a secret: only its length is shown.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Origin::Path(path) => f.debug_tuple("Source::path").field(path).finish(),
            Origin::Bytes(bytes) => write!(f, "Source::bytes(<{} bytes>)", bytes.len()),
        }
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Source {
        Source::path(path)
    }
}

impl From<PathBuf> for Source {
    fn from(path: PathBuf) -> Source {
        Source::path(path)
    }
}

impl From<&PathBuf> for Source {
    fn from(path: &PathBuf) -> Source {
        Source::path(path)
    }
}

impl From<&str> for Source {
    fn from(path: &str) -> Source {
        Source::path(path)
    }
}

impl From<String> for Source {
    fn from(path: String) -> Source {
        Source::path(path)
    }
}

/// Where a [`Put`] or [`Fetch`] runs, which decides its verbs: a
/// [`Tunnel`](crate::Tunnel) (`run` gives a `Result<Transfer>`), a
/// [`Group`](crate::Group) (`run` gives a `GroupResult<Transfer>`), or a
/// [`Queue`](crate::Queue)'s hosts (queued at the end of the statement that
/// makes it). Implemented by this crate only.
pub trait TransferTarget: private::Sealed {}

pub(crate) mod private {
    /// What a spec does when it is dropped without its verb: nothing, but
    /// for a queue's, which is queued then.
    pub trait Sealed {
        fn finish(&mut self, _spec: &mut super::Spec) {}
    }
}

/// What a transfer does, wherever it runs.
#[derive(Clone, Debug)]
pub struct Spec {
    /// A put's source (a fetch leaves it empty).
    pub source: Source,
    /// The path on the host.
    pub remote: PathBuf,
    /// A fetch's path on this machine (`{host}` is replaced per host).
    pub local: PathBuf,
    pub apply: Apply,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            source: Source(Origin::Bytes(Arc::from([]))),
            remote: PathBuf::new(),
            local: PathBuf::new(),
            apply: Apply::default(),
        }
    }
}

macro_rules! options {
    ($spec:ident) => {
        impl<On: TransferTarget> $spec<On> {
            /// Every file's mode (permission bits) instead of its source's
            /// (bytes from memory get `0o644` by default). Directories keep
            /// theirs.
            pub fn mode(mut self, mode: u32) -> Self {
                self.spec.apply.mode = Some(mode & 0o7777);
                self
            }

            /// The owner of what is written, by name or numeric ID
            /// (`"0"`); needs the right to change owners there (root: see
            /// [`TunnelBuilder::sudo`](crate::TunnelBuilder::sudo)).
            pub fn owner(mut self, user: impl Into<String>) -> Self {
                self.spec.apply.owner = Some(user.into());
                self
            }

            /// The group of what is written, by name or numeric ID.
            pub fn group(mut self, group: impl Into<String>) -> Self {
                self.spec.apply.group = Some(group.into());
                self
            }

            /// Whether to create the destination's missing parent
            /// directories (default: no, a missing one is an error; a
            /// fetch makes those down to the one named by `{host}` anyway).
            pub fn parents(mut self, create: bool) -> Self {
                self.spec.apply.parents = create;
                self
            }
        }

        impl<On: TransferTarget> Drop for $spec<On> {
            fn drop(&mut self) {
                self.on.finish(&mut self.spec);
            }
        }
    };
}

/// A put: a file, a tree or bytes from this machine to a path on the
/// host(s), made by [`Tunnel::put`](crate::Tunnel::put),
/// [`Group::put`](crate::Group::put) or [`Queue::put`](crate::Queue::put);
/// its methods set the options, and a verb runs it.
///
/// ```
/// use chopsticks::{Source, Tunnel};
///
/// #[chopsticks::main]
/// fn main() -> chopsticks::Result<()> {
///     let dir = std::env::temp_dir().join(format!("put-doc-{}", std::process::id()));
///     let t = Tunnel::local()?;
///     let conf = dir.join("app/app.conf");
///     let sent = t.put(Source::bytes("key = 1\n"), &conf).mode(0o600).parents(true).run()?;
///     assert!(sent.changed);
///     // The same content again: nothing is sent.
///     let again = t.put(Source::bytes("key = 1\n"), &conf).mode(0o600).run()?;
///     assert!(!again.changed && again.files_skipped == 1);
///     let back = t.fetch(&conf, dir.join("copy.conf")).run()?;
///     assert_eq!(back.sha256, sent.sha256);
///     # std::fs::remove_dir_all(dir).unwrap();
///     Ok(())
/// }
/// ```
pub struct Put<On: TransferTarget> {
    pub(crate) on: On,
    pub(crate) spec: Spec,
}

impl<On: TransferTarget> Put<On> {
    /// The SHA-256 (lower-case hex) the file must arrive with: the host
    /// refuses other content before it replaces anything, whatever the
    /// sender announces (`ops::download`: what was checked here is what
    /// lands there).
    pub(crate) fn sha256(mut self, hex: &str) -> Self {
        self.spec.apply.sha256 = Some(hex.to_owned());
        self
    }
}

/// A fetch: a file or tree on the host(s) to a path on this machine, made
/// by [`Tunnel::fetch`](crate::Tunnel::fetch),
/// [`Group::fetch`](crate::Group::fetch) or
/// [`Queue::fetch`](crate::Queue::fetch); its methods set the options, and
/// a verb runs it.
///
/// `{host}` in the local path becomes the host's name (`/` in a name
/// becomes `_`), and the directories down to the one it names are created
/// when missing, as Ansible's fetch does: `logs/{host}/syslog` makes
/// `logs/web1/` (directories below it need [`parents`](Fetch::parents)). Whatever the host sends stays
/// inside the local path (no absolute paths, `..`, or paths through
/// links), and setuid and setgid bits are dropped unless
/// [`mode`](Fetch::mode) sets them.
pub struct Fetch<On: TransferTarget> {
    pub(crate) on: On,
    pub(crate) spec: Spec,
}

options!(Put);
options!(Fetch);

impl<On: TransferTarget> Put<On> {
    pub(crate) fn new(on: On, source: Source, remote: &Path) -> Put<On> {
        Put {
            on,
            spec: Spec {
                source,
                remote: remote.to_owned(),
                ..Spec::default()
            },
        }
    }
}

impl<On: TransferTarget> Fetch<On> {
    pub(crate) fn new(on: On, remote: &Path, local: &Path) -> Fetch<On> {
        Fetch {
            on,
            spec: Spec {
                remote: remote.to_owned(),
                local: local.to_owned(),
                ..Spec::default()
            },
        }
    }
}

impl<On: TransferTarget + fmt::Debug> fmt::Debug for Put<On> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("on", &self.on)
            .field("source", &self.spec.source)
            .field("remote", &self.spec.remote)
            .field("options", &self.spec.apply)
            .finish()
    }
}

impl<On: TransferTarget + fmt::Debug> fmt::Debug for Fetch<On> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("on", &self.on)
            .field("remote", &self.spec.remote)
            .field("local", &self.spec.local)
            .field("options", &self.spec.apply)
            .finish()
    }
}
