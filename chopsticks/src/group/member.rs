//! The hosts of a group: how to reach each, and its tunnel once connected.

use chopsticks_agent::sync::Unpoisoned;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::tunnel::{Tunnel, TunnelBuilder};

/// One host of a group: how to reach it, and its tunnel once connected.
pub struct Member {
    pub(super) name: String,
    pub(super) builder: Option<TunnelBuilder>,
    pub(super) tunnel: Mutex<Option<Arc<Tunnel>>>,
}

/// Something a [`Group`](super::Group) can be made of: a host name (`&str`, `String`), a
/// configured [`TunnelBuilder`], or a connected [`Tunnel`].
pub struct Host(pub(super) Member);

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Host").field(&self.0.name).finish()
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("name", &self.name).finish()
    }
}

impl From<&str> for Host {
    fn from(name: &str) -> Host {
        Host::from(Tunnel::builder(name))
    }
}

impl From<String> for Host {
    fn from(name: String) -> Host {
        Host::from(Tunnel::builder(name))
    }
}

impl From<&String> for Host {
    fn from(name: &String) -> Host {
        Host::from(name.as_str())
    }
}

impl From<TunnelBuilder> for Host {
    fn from(builder: TunnelBuilder) -> Host {
        Host(Member {
            name: builder.host().to_owned(),
            builder: Some(builder),
            tunnel: Mutex::new(None),
        })
    }
}

impl From<Tunnel> for Host {
    fn from(tunnel: Tunnel) -> Host {
        Host(Member {
            name: tunnel.host().to_owned(),
            builder: None,
            tunnel: Mutex::new(Some(Arc::new(tunnel))),
        })
    }
}

impl Member {
    /// The member's tunnel, connecting it first if needed.
    pub(super) fn tunnel(&self) -> Result<Arc<Tunnel>> {
        let mut slot = self.tunnel.lock().unpoisoned();
        if let Some(tunnel) = &*slot {
            // A tunnel whose agent is gone since its last call (the host
            // rebooted, ssh died) is replaced before a call is lost on it.
            if tunnel.is_connected() || self.builder.is_none() {
                return Ok(Arc::clone(tunnel));
            }
        }
        let Some(builder) = &self.builder else {
            return Err(Error::Disconnected {
                host: self.name.clone(),
                function: None,
                reason: "the tunnel this group was made from is closed".into(),
                stderr: Vec::new(),
            });
        };
        let tunnel = Arc::new(builder.connect()?);
        *slot = Some(Arc::clone(&tunnel));
        Ok(tunnel)
    }

    /// Runs `work` on the member's tunnel (connecting it first if
    /// needed); a lost agent is reconnected next time.
    pub(crate) fn with_tunnel<T>(&self, work: impl FnOnce(&Tunnel) -> Result<T>) -> Result<T> {
        let tunnel = self.tunnel()?;
        let result = work(&tunnel);
        if let Err(Error::Disconnected { .. }) = &result {
            self.forget_tunnel(&tunnel);
        }
        result
    }

    /// Drops `tunnel`, whose agent went away, so the next use reconnects;
    /// a newer tunnel that another thread made meanwhile stays.
    pub(super) fn forget_tunnel(&self, tunnel: &Arc<Tunnel>) {
        if self.builder.is_some() {
            let mut slot = self.tunnel.lock().unpoisoned();
            if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, tunnel)) {
                *slot = None;
            }
        }
    }
}
