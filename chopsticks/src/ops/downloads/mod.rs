//! [`download`]: a file from an HTTP(S) URL, checked by SHA-256.
//!
//! By default the controller fetches (`fetch`, with this machine's `curl`)
//! and sends the bytes over the tunnel (`verbs`: `Tunnel::download`,
//! `Group::download`); with [`Download::on_host`] the host fetches with its
//! own `curl` or `wget` (`tool`).

mod fetch;
mod tool;
mod verbs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::paths::{current, meta_changes, needs, owner_or_current, plain};
use super::{Change, Mode, OpError, Owner, Plan};
use crate::files::{self, describe, Kind};
use crate::ops::write::owner_options;
use crate::remote;

const OP: &str = "ops::download";

/// The largest download unless [`Download::max_size`] says otherwise: 4 GiB.
pub const MAX_DOWNLOAD: u64 = 4 << 30;

/// How long a download may take unless [`Download::timeout`] says
/// otherwise: 10 minutes.
pub const DOWNLOAD_TIME: Duration = Duration::from_secs(600);

/// A file at `dest` with the content of an HTTP or HTTPS URL, its SHA-256
/// checked before it replaces anything.
///
/// Where the bytes come from:
///
/// - By default **this machine** fetches the URL, once per process for all
///   hosts (memoized by URL and checksum in a private temporary file), and
///   sends it over the tunnel: run it with
///   [`Tunnel::download`](crate::Tunnel::download) or
///   [`Group::download`](crate::Group::download). Hosts need no internet
///   access, and the program shipped to them no HTTP or TLS code: the
///   controller runs the system's `curl` (`--fail --location --proto
///   =http,https`, with this spec's size and time limits), so this crate
///   links no HTTP client at all.
/// - With [`on_host`](Download::on_host), **the host** fetches it with its
///   own `curl` or `wget` (busybox's counts) into a temporary file beside
///   `dest`, which replaces `dest` once its checksum is right. The URL is
///   then on the host's command line, where its other users can see it.
///
/// The remote function [`download`](struct@download) runs on the host, in a
/// plan of your own too: with `on_host` it fetches; without, it cannot
/// (the bytes are on the controller), so it reports unchanged when `dest`
/// has the checksum already (fixing mode and owner), and otherwise fails
/// with an error that says to use `Tunnel::download`, `Group::download` or
/// `on_host`.
///
/// A host whose `dest` has the content's checksum receives nothing and
/// reports unchanged. A download whose checksum is not the one given is an
/// error, and `dest` keeps its old content. Without
/// [`sha256`](Download::sha256) the controller must fetch on every run
/// (every process) to learn the checksum it compares with the host's;
/// `on_host` needs one.
///
/// The URL is shown without its user and password and without its query
/// (which may hold a token).
///
/// ```no_run
/// use chopsticks::{ops, Tunnel};
/// use chopsticks::ops::Mode;
///
/// # fn main() -> chopsticks::Result<()> {
/// let t = Tunnel::ssh("web1")?;
/// let node = ops::Download::new("https://example.invalid/node.tar.xz", "/opt/node.tar.xz")
///     .sha256("d0b6b2d5a4e1c5f3ba4f5ed0f1e8c9d3a6b7e2f1c0d9e8f7a6b5c4d3e2f1a0b9")
///     .mode(0o644);
/// let change = t.download(node, Mode::Apply)?;
/// println!("{}", change.summary);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    url: String,
    dest: PathBuf,
    sha256: Option<String>,
    mode: Option<u32>,
    owner: Owner,
    on_host: bool,
    max_size: u64,
    timeout: Duration,
}

/// The URL shows as [`Download::shown_url`] does: it may hold a password.
impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("url", &self.shown_url())
            .field("dest", &self.dest)
            .field("sha256", &self.sha256)
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .field("on_host", &self.on_host)
            .field("max_size", &self.max_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Download {
    /// The file `dest` with the content at `url` (`http://` or `https://`).
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Download {
        Download {
            url: url.into(),
            dest: plain(dest.into()),
            sha256: None,
            mode: None,
            owner: Owner::default(),
            on_host: false,
            max_size: MAX_DOWNLOAD,
            timeout: DOWNLOAD_TIME,
        }
    }

    /// The content's SHA-256, in hex: what makes a run that finds it at
    /// `dest` fetch nothing, and what every download is checked against.
    pub fn sha256(mut self, hex: impl Into<String>) -> Download {
        self.sha256 = Some(hex.into().trim().to_ascii_lowercase());
        self
    }

    /// Its permission bits (new files: `0o644` unless given; a replaced
    /// file keeps its own).
    pub fn mode(mut self, mode: u32) -> Download {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The host fetches the URL itself, with its `curl` or `wget`
    /// (needs [`sha256`](Download::sha256)).
    pub fn on_host(mut self) -> Download {
        self.on_host = true;
        self
    }

    /// The largest download accepted (default [`MAX_DOWNLOAD`]): a larger
    /// one stops with an error.
    pub fn max_size(mut self, bytes: u64) -> Download {
        self.max_size = bytes;
        self
    }

    /// How long the download may take (default [`DOWNLOAD_TIME`]).
    pub fn timeout(mut self, limit: Duration) -> Download {
        self.timeout = limit;
        self
    }

    /// The URL as messages show it: without a user and password, and
    /// with `?…` for a query.
    pub fn shown_url(&self) -> String {
        shown(&self.url)
    }

    fn fail(&self, message: impl Into<String>) -> OpError {
        OpError::new(OP, self.dest.display(), message)
    }

    /// Refuses a URL curl or wget could read otherwise than as one, and a
    /// checksum that is not 64 hex digits.
    fn valid(&self) -> Result<(), OpError> {
        let scheme = ["http://", "https://"].iter().any(|s| {
            self.url
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !scheme
            || self.url.len() > 8192
            || self
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'))
        {
            return Err(self.fail(format!(
                "{} is not an http:// or https:// URL of at most 8192 characters without \
                 spaces, quotes or backslashes",
                self.shown_url()
            )));
        }
        if let Some(sum) = &self.sha256 {
            if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.fail(format!(
                    "the sha256 {sum:?} is not 64 hex digits (as `sha256sum` prints)"
                )));
            }
        }
        Ok(())
    }

    /// What is at `dest` now: its metadata and SHA-256 (`None` when it is
    /// larger than [`max_size`](Download::max_size), so not the content),
    /// or `None`.
    fn found(&self) -> Result<Option<(files::Entry, Option<String>)>, OpError> {
        let Some(meta) = current(OP, &self.dest)? else {
            return Ok(None);
        };
        match meta.kind {
            Kind::File => {}
            Kind::Dir => return Err(self.fail("is a directory: ops::download writes a file")),
            Kind::Link => {
                return Err(self.fail(
                    "is a symbolic link: ops::download does not replace a link (name the \
                     file it points to, or remove the link)",
                ))
            }
            Kind::Other => return Err(self.fail("is not a regular file")),
        }
        let sum = sum_of(&self.dest, self.max_size).map_err(|e| self.fail(describe(&e)))?;
        Ok(Some((meta, sum)))
    }

    /// What downloading would change, on the host: with
    /// [`on_host`](Download::on_host) the fetch itself; without, only a
    /// mode or owner when `dest` has the checksum (see [`Download`]).
    ///
    /// # Errors
    /// A URL or checksum that is not one; `dest` is not a regular file;
    /// no `curl` or `wget` (`on_host`); the content is not there and the
    /// controller must send it.
    pub fn plan(self) -> Result<Plan, OpError> {
        self.valid()?;
        let found = self.found()?;
        if let (Some((meta, Some(have))), Some(want)) = (&found, &self.sha256) {
            if have == want {
                return self.settle(meta);
            }
        }
        if !self.on_host {
            return Err(self.fail(format!(
                "{}: the content must come from the controller: run this with \
                 Tunnel::download or Group::download (the controller fetches it and sends \
                 it), or set .on_host() for the host to fetch it with its curl or wget",
                match &self.sha256 {
                    Some(_) => "does not have the given sha256",
                    None => "no sha256 given, so nothing here can say it is up to date",
                }
            )));
        }
        let Some(want) = self.sha256.clone() else {
            return Err(self.fail(
                "on_host() needs .sha256(..): without it the host would fetch on every run \
                 to learn whether anything changed",
            ));
        };
        let fetcher = tool::on_host(&self)?;
        let found = self.found_of(found.as_ref().map(|(m, s)| (m, s.as_deref())))?;
        let (summary, mode, owner) = self.summary(&found, &want);
        let spec = self;
        Ok(Plan::change(summary, None, move |w| {
            w.write_with(&spec.dest, mode, &owner, |file| {
                tool::fetch_into(&spec, &fetcher, file, Some(&want)).map(drop)
            })
        }))
    }

    /// `dest` has the content: what its mode and owner need.
    fn settle(&self, meta: &files::Entry) -> Result<Plan, OpError> {
        let mut lines = Vec::new();
        let (mode, owner_changes) =
            meta_changes(OP, &self.dest, meta, self.mode, &self.owner, &mut lines)?;
        let shown = self.dest.display().to_string();
        if lines.is_empty() {
            return Ok(Plan::unchanged(format!(
                "{shown} has the content of {}",
                self.shown_url()
            )));
        }
        let (path, owner, now) = (self.dest.clone(), self.owner.clone(), meta.mode);
        Ok(Plan::change(
            format!("{shown}: {}", lines.join(", ")),
            None,
            move |w| {
                if owner_changes {
                    w.set_owner(&path, &owner)?;
                }
                w.set_mode(&path, mode.unwrap_or(now))
            },
        ))
    }

    /// What the controller needs to know of `dest` (see [`Found`]).
    fn found_of(&self, found: Option<(&files::Entry, Option<&str>)>) -> Result<Found, OpError> {
        Ok(match found {
            Some((meta, sum)) => {
                let mut lines = Vec::new();
                meta_changes(OP, &self.dest, meta, None, &self.owner, &mut lines)?;
                Found {
                    sha256: sum.map(str::to_owned),
                    mode: Some(meta.mode),
                    owner: owner_or_current(&self.owner, meta),
                    needs: String::new(),
                    owner_changes: lines.iter().map(|l| format!(", {l}")).collect(),
                }
            }
            None => Found {
                sha256: None,
                mode: None,
                owner: self.owner.clone(),
                needs: needs(&self.dest, &self.owner),
                owner_changes: String::new(),
            },
        })
    }

    /// The summary of a change of content to `want` from what is there;
    /// and the mode and owner to write.
    fn summary(&self, found: &Found, want: &str) -> (String, u32, Owner) {
        let shown = self.dest.display();
        let url = self.shown_url();
        match (&found.sha256, found.mode) {
            (have, Some(now)) => {
                let mode = self.mode.unwrap_or(now);
                let have = match have {
                    Some(have) => short(have),
                    None => format!("of a file over {} bytes", self.max_size),
                };
                let mut summary = format!(
                    "{shown}: content changed (sha256 {have} -> {}) from {url}",
                    short(want)
                );
                if mode != now {
                    summary.push_str(&format!(", mode {now:04o} -> {mode:04o}"));
                }
                summary.push_str(&found.owner_changes);
                (summary, mode, found.owner.clone())
            }
            _ => {
                let mode = self.mode.unwrap_or(0o644);
                let summary = format!(
                    "create {shown} (mode {mode:04o}) from {url} (sha256 {}){}",
                    short(want),
                    found.needs
                );
                (summary, mode, found.owner.clone())
            }
        }
    }
}

/// The first 12 hex digits of a checksum, with an ellipsis (the whole
/// text when it is shorter, or not ASCII there).
fn short(sum: &str) -> String {
    format!("{}…", sum.get(..12).unwrap_or(sum))
}

/// `url` without a user and password, and with `?…` for its query.
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_owned(),
    };
    let path = match path.find('?') {
        Some(q) => format!("{}?…", &path[..q]),
        None => path.to_owned(),
    };
    match scheme {
        "" => format!("{host}{path}"),
        scheme => format!("{scheme}://{host}{path}"),
    }
}

/// The SHA-256 of the regular file `path` (never read through a link),
/// in hex; `limit` bytes at most (a larger file has no sum here: `None`).
fn sum_of(path: &Path, limit: u64) -> std::io::Result<Option<String>> {
    let (dir, name) = files::parent_and_name(path)?;
    let mut file = dir.open_file(&name)?;
    Ok(files::sha256_hex(&mut file, limit)?.map(|(sum, _)| sum))
}

/// Whether `sum` is a SHA-256 as this module writes one: 64 lower-case hex
/// digits.
fn is_sum(sum: &str) -> bool {
    sum.len() == 64 && sum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Makes `dest` hold the URL's content as [`Download`] describes it: with
/// [`on_host`](Download::on_host), fetched by the host; without, only
/// when `dest` has the content already (see [`Download`]; use
/// [`Tunnel::download`](crate::Tunnel::download) or
/// [`Group::download`](crate::Group::download) to send it).
///
/// # Errors
/// [`OpError`] naming `dest` and what to do.
#[remote]
pub fn download(spec: Download, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// What the controller needs to know of a host's `dest` before it sends
/// anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Found {
    /// The SHA-256 of what is there; `None` when nothing is.
    sha256: Option<String>,
    /// Its mode, when it is there.
    mode: Option<u32>,
    /// The owner to give a new content: the spec's, else the current one.
    owner: Owner,
    /// What creating it needs that is not there (a directory, an owner).
    needs: String,
    /// When it is there: how replacing it changes its owner and group
    /// (`, owner 0 -> 1000`), as the put will.
    owner_changes: String,
}

impl Found {
    /// Refuses a checksum that is not one (from a host whose agent is not
    /// this program's, or a compromised one): it is shown and compared.
    fn checked(self, host: &str) -> Result<Found, String> {
        match self.sha256.as_deref() {
            Some(sum) if !is_sum(sum) => Err(format!(
                "{host} answered with a sha256 that is not 64 lower-case hex digits ({} bytes); \
                 its agent is not this program's: run it again, and check the host",
                sum.len()
            )),
            _ => Ok(self),
        }
    }
}

/// What is at the spec's `dest` on this host.
#[remote]
pub(crate) fn download_found(spec: Download) -> Result<Found, OpError> {
    spec.valid()?;
    let found = spec.found()?;
    spec.found_of(found.as_ref().map(|(m, s)| (m, s.as_deref())))
}

owner_options!(Download);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_show_no_password_nor_query() {
        assert_eq!(
            shown("https://u:pw@example.invalid:8443/a/b.tgz?token=x#f"),
            "https://…@example.invalid:8443/a/b.tgz?…"
        );
        assert_eq!(shown("http://h/x"), "http://h/x");
        let spec = Download::new("https://u:secret@h/x?sig=abc", "/tmp/x");
        assert!(!format!("{spec:?}").contains("secret"));
        assert!(!format!("{spec:?}").contains("abc"));
    }

    #[test]
    fn a_host_sum_that_is_not_one_is_refused_not_sliced() {
        // Byte 12 falls inside the `é`: slicing there would panic.
        let odd = format!("{}é{}", "a".repeat(11), "b".repeat(51));
        assert_eq!(short(&odd), format!("{odd}…"));
        assert_eq!(short(&"a".repeat(64)), format!("{}…", "a".repeat(12)));
        let found = |sum: &str| Found {
            sha256: Some(sum.to_owned()),
            mode: Some(0o644),
            owner: Owner::default(),
            needs: String::new(),
            owner_changes: String::new(),
        };
        let e = found(&odd).checked("web1").unwrap_err();
        assert!(
            e.contains("web1") && e.contains("not 64 lower-case hex"),
            "{e}"
        );
        assert!(found(&"A".repeat(64)).checked("web1").is_err());
        assert!(found(&"a".repeat(64)).checked("web1").is_ok());
    }

    #[test]
    fn bad_urls_and_checksums_are_refused() {
        for url in [
            "ftp://h/x",
            "file:///etc/passwd",
            "https://h/a b",
            "-o/x",
            "https://h/\"x",
        ] {
            let e = Download::new(url, "/tmp/x").valid().unwrap_err();
            assert!(e.message.contains("not an http"), "{e}");
        }
        let e = Download::new("https://h/x", "/tmp/x")
            .sha256("abc")
            .valid()
            .unwrap_err();
        assert!(e.message.contains("64 hex digits"), "{e}");
        let ok = Download::new("HTTPS://h/x", "/tmp/x").sha256("A".repeat(64));
        assert!(ok.valid().is_ok());
    }
}
