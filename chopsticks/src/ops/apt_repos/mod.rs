//! [`apt_repository`]: an apt source in a deb822 file of
//! `/etc/apt/sources.list.d` with its signing key in `/etc/apt/keyrings`,
//! as Ansible's `deb822_repository` and pyinfra's `apt.repo` make it; its
//! package lists refreshed when it changed.

mod deb822;
mod steps;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tools::tool;
use super::{Change, Mode, OpError, Plan};
use crate::files::{self, Kind};
use crate::remote;
use deb822::{Fields, MARKER};
use steps::{apply, lists_known, refresh_argv, Found, Step};

const OP: &str = "ops::apt_repository";

/// Where apt reads its sources, and where keys for `Signed-By` live.
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const KEYRINGS: &str = "/etc/apt/keyrings";

/// An apt repository: the file `/etc/apt/sources.list.d/NAME.sources`
/// (deb822, mode 0644, owned by root) and, with [`key`](AptRepository::key),
/// its signing key in `/etc/apt/keyrings/NAME.gpg` (binary OpenPGP packets,
/// an armored key decoded; mode 0644, owned by root, the directory made
/// 0755 when missing), which the file's `Signed-By` names, so the key
/// vouches for this repository only. The key is written before the file,
/// and a `NAME.asc` an earlier version wrote is removed after it.
///
/// When the file or the key changes, the package lists of this repository
/// (only) are refreshed (`apt-get update` given this file as its only
/// source, other lists kept), so that an [`ops::package`](struct@super::package)
/// later in the same run finds its packages. When apt fails (a key that
/// did not sign the repository, a URI it cannot reach), the file and the
/// key are put back as they were (a new repository is removed again) and
/// the error quotes apt. An unchanged repository is not refreshed, unless
/// apt has no package list of it (a run cut short before its refresh, lists
/// removed since): the summary says so. Another package manager's lock on
/// the lists is waited for up to 2 minutes.
///
/// A URI holding a user and password is refused: the file is world-readable;
/// they go in `/etc/apt/auth.conf.d`.
///
/// A file of the same name not written by this operation (no marker line)
/// is replaced, as Ansible does: the summary says so, the diff shows it.
/// [`absent`](AptRepository::absent) removes the file and the keys
/// `NAME.asc` and `NAME.gpg`, whoever wrote them; the package lists need
/// no refresh then (apt reads only those of its sources). A key no longer
/// given (no `key(..)`) is left in place, unused.
///
/// ```
/// use chopsticks::ops::AptRepository;
///
/// # let docker_key = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n...".to_vec();
/// let docker = AptRepository::new(
///     "docker",
///     ["https://download.docker.com/linux/debian"],
///     ["bookworm"],
///     ["stable"],
/// )
/// .architectures(["amd64"])
/// .key(docker_key);
/// // A flat repository: its suite is a path ending in `/`, without components.
/// let local = AptRepository::new("local", ["file:/srv/repo"], ["./"], Vec::<String>::new());
/// let gone = AptRepository::new("old", ["https://example.org/debian"], ["stable"], ["main"])
///     .absent();
/// # let _ = (docker, local, gone);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AptRepository {
    name: String,
    types: Vec<String>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    architectures: Vec<String>,
    key: Option<Vec<u8>>,
    present: bool,
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl AptRepository {
    /// The repository `name` (it names the files: `A-Z a-z 0-9 - _ .`,
    /// not starting with `-` or `.`): binary packages (`Types: deb`) from
    /// each of `uris` (`https://...`, `file:/...`), for each of `suites`
    /// (`bookworm`; a path ending in `/`, like `./`, for a flat
    /// repository, which then has no components) and `components`
    /// (`main`). No key: apt then trusts the keys of
    /// `/etc/apt/trusted.gpg.d`.
    pub fn new<U, S, C>(
        name: impl Into<String>,
        uris: impl IntoIterator<Item = U>,
        suites: impl IntoIterator<Item = S>,
        components: impl IntoIterator<Item = C>,
    ) -> AptRepository
    where
        U: Into<String>,
        S: Into<String>,
        C: Into<String>,
    {
        AptRepository {
            name: name.into(),
            types: vec!["deb".to_owned()],
            uris: strings(uris),
            suites: strings(suites),
            components: strings(components),
            architectures: Vec::new(),
            key: None,
            present: true,
        }
    }

    /// The repository's signing key, as the vendor ships it: an
    /// ASCII-armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----`) or a binary
    /// OpenPGP public key, at most 1 MiB. It is stored as binary packets
    /// (`NAME.gpg`); a key holding a secret key packet, or anything after
    /// its packets, is refused.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> AptRepository {
        self.key = Some(key.into());
        self
    }

    /// Only these architectures' packages (`amd64`, `arm64` ...);
    /// by default, the host's.
    pub fn architectures<A: Into<String>>(
        mut self,
        architectures: impl IntoIterator<Item = A>,
    ) -> AptRepository {
        self.architectures = strings(architectures);
        self
    }

    /// `deb` (binary packages, the default), `deb-src` (sources) or both.
    pub fn types<T: Into<String>>(mut self, types: impl IntoIterator<Item = T>) -> AptRepository {
        self.types = strings(types);
        self
    }

    /// The repository is to be gone: its file and its key removed.
    pub fn absent(mut self) -> AptRepository {
        self.present = false;
        self
    }

    /// What making the repository as the spec says would change.
    ///
    /// # Errors
    /// A name, URI, suite, component, type or architecture that is not
    /// one (see [`new`](AptRepository::new)), a key that is not an OpenPGP
    /// public key; a host without `apt-get`; a `.sources` file or key
    /// that cannot be read, is a link or is larger than 1 MiB. Applied,
    /// a refresh that fails (the repository is then put back as it was).
    pub fn plan(self) -> Result<Plan, OpError> {
        deb822::name(&self.name)
            .map_err(|m| OpError::new(OP, format!("{:?}", deb822::shown(&self.name)), m))?;
        let target = self.name.clone();
        let fail = |message: String| OpError::new(OP, &target, message);
        let sources = Path::new(SOURCES_DIR).join(format!("{}.sources", self.name));
        let keys = ["gpg", "asc"].map(|e| Path::new(KEYRINGS).join(format!("{}.{e}", self.name)));
        if !self.present {
            return absent(&target, sources, keys);
        }
        let fields = Fields {
            types: &self.types,
            uris: &self.uris,
            suites: &self.suites,
            components: &self.components,
            architectures: &self.architectures,
        };
        fields.check().map_err(fail)?;
        let key = match &self.key {
            Some(key) => Some(deb822::public_key(key).map_err(fail)?),
            None => None,
        };
        let apt_get = tool("apt-get").ok_or_else(|| {
            fail("this host has no apt-get: apt repositories are for Debian and its kin".into())
        })?;

        let mut steps = Vec::new();
        let key_path = key.is_some().then(|| keys[0].clone());
        let text = fields.render(key_path.as_ref().and_then(|p| p.to_str()));
        let found = Found::read(&sources)?;
        let foreign = found
            .content
            .as_ref()
            .is_some_and(|c| !c.starts_with(MARKER.as_bytes()));
        let diff = super::diff(
            &sources.display().to_string(),
            found.content.as_deref().unwrap_or_default(),
            text.as_bytes(),
        );
        // The key first, so that the file never names a key not there;
        // an armored key of an earlier version (NAME.asc), last.
        let mut made_dir = None;
        let mut stale = Vec::new();
        if let (Some(key), Some(path)) = (key, &key_path) {
            made_dir = keyrings(&target)?;
            steps.extend(Found::read(path)?.holding(key, false));
            for other in keys.iter().filter(|p| *p != path) {
                let old = Found::read(other)?;
                if old.content.is_some() {
                    stale.push(Step::remove(old));
                }
            }
        }
        steps.extend(found.holding(text.into_bytes(), foreign));
        steps.extend(stale);

        let what = match &key_path {
            Some(key) => format!("{} and its key {}", sources.display(), key.display()),
            None => sources.display().to_string(),
        };
        let refresh = refresh_argv(&apt_get, &sources);
        if steps.is_empty() {
            if lists_known(&apt_get, &target, &sources)? {
                return Ok(Plan::unchanged(format!("{what} as wanted")));
            }
            let summary = format!("{what} as wanted; its package lists missing: refreshed");
            return Ok(Plan::change(summary, None, move |w| {
                apply(w, &target, &[], &refresh)
            }));
        }
        let mut summary = steps
            .iter()
            .map(|s| s.line.clone())
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(dir) = &made_dir {
            summary.push_str(&format!(" (and the directory {})", dir.display()));
        }
        summary.push_str("; then its package lists refreshed");
        Ok(Plan::change(summary, diff, move |w| {
            if let Some(dir) = &made_dir {
                w.create_dir(dir, 0o755)?;
            }
            apply(w, &target, &steps, &refresh)
        }))
    }
}

/// The keys' directory when it is to be made (missing), else `None`.
///
/// # Errors
/// It is something else than a directory, or cannot be looked at.
fn keyrings(target: &str) -> Result<Option<PathBuf>, OpError> {
    let fail = |message: String| OpError::new(OP, target, message);
    match files::entry_at(Path::new(KEYRINGS)) {
        Ok(None) => Ok(Some(PathBuf::from(KEYRINGS))),
        Ok(Some(e)) if e.kind == Kind::Dir => Ok(None),
        Ok(Some(_)) => Err(fail(format!(
            "{KEYRINGS} is not a directory: make it one (mode 0755) for apt's keys"
        ))),
        Err(e) => Err(fail(format!(
            "cannot look at {KEYRINGS}: {}",
            files::describe(&e)
        ))),
    }
}

/// The plan of [`AptRepository::absent`]: the file and both keys removed.
fn absent(target: &str, sources: PathBuf, keys: [PathBuf; 2]) -> Result<Plan, OpError> {
    let mut steps = Vec::new();
    for path in std::iter::once(sources.clone()).chain(keys) {
        let found = Found::look(&path)?;
        if found.entry.as_ref().is_some_and(|e| e.kind == Kind::Dir) {
            return Err(OpError::new(
                OP,
                path.display(),
                format!("is a directory, not a file {OP} writes: remove it by hand"),
            ));
        }
        if found.entry.is_some() {
            steps.push(Step::remove(found));
        }
    }
    if steps.is_empty() {
        return Ok(Plan::unchanged(format!(
            "no {} and no key {KEYRINGS}/{target}.asc or .gpg",
            sources.display()
        )));
    }
    let summary = steps
        .iter()
        .map(|s| s.line.clone())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Plan::change(summary, None, move |w| {
        steps.iter().try_for_each(|s| w.remove_file(&s.found.path))
    }))
}

/// Adds or removes an apt repository as [`AptRepository`] says, and
/// refreshes its package lists when it changed.
///
/// # Errors
/// [`OpError`] naming the repository and what to do.
#[remote]
pub fn apt_repository(spec: AptRepository, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}
