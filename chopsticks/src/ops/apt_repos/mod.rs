//! [`apt_repository`]: an apt source in a deb822 file of
//! `/etc/apt/sources.list.d` with its signing key in `/etc/apt/keyrings`,
//! as Ansible's `deb822_repository` and pyinfra's `apt.repo` make it; its
//! package lists refreshed when it changed.

mod deb822;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::tools::{tail, tool};
use super::{Change, Mode, OpError, Owner, Plan, Writer};
use crate::files::{self, Entry, Kind};
use crate::remote;
use deb822::{Fields, KeyFormat, MARKER, MAX_KEY};

const OP: &str = "ops::apt_repository";

/// Where apt reads its sources, and where keys for `Signed-By` live.
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const KEYRINGS: &str = "/etc/apt/keyrings";

/// The most of a `.sources` file read.
const MAX_SOURCES: usize = 1 << 20;

/// How long refreshing the package lists of one repository may take.
const UPDATE_TIME: Duration = Duration::from_secs(600);

/// How long apt waits for another package manager's lock.
const LOCK_WAIT_SECS: u32 = 120;

/// An apt repository: the file `/etc/apt/sources.list.d/NAME.sources`
/// (deb822, mode 0644) and, with [`key`](AptRepository::key), its
/// signing key in `/etc/apt/keyrings` (`NAME.asc` for an ASCII-armored
/// key, `NAME.gpg` for a binary one: apt reads the format from the
/// extension; mode 0644, the directory made 0755 when missing), which the
/// file's `Signed-By` names, so the key vouches for this repository only.
///
/// When the file or the key changes, the package lists of this repository
/// (only) are refreshed (`apt-get update` given this file as its only
/// source, other lists kept), so that an [`ops::package`](struct@super::package)
/// later in the same run finds its packages. When apt fails (a key that
/// did not sign the repository, a URI it cannot reach), the file and the
/// key are put back as they were (a new repository is removed again) and
/// the error quotes apt. An unchanged repository is not refreshed.
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
    /// OpenPGP public key, at most 1 MiB. It is stored as given.
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
        deb822::name(&self.name).map_err(|m| OpError::new(OP, format!("{:?}", self.name), m))?;
        let target = self.name.clone();
        let fail = |message: String| OpError::new(OP, &target, message);
        let sources = Path::new(SOURCES_DIR).join(format!("{}.sources", self.name));
        let keys = [KeyFormat::Armored, KeyFormat::Binary]
            .map(|f| Path::new(KEYRINGS).join(format!("{}.{}", self.name, f.extension())));
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
        let format = match &self.key {
            Some(key) => Some(KeyFormat::of(key).map_err(fail)?),
            None => None,
        };
        let apt_get = tool("apt-get").ok_or_else(|| {
            fail("this host has no apt-get: apt repositories are for Debian and its kin".into())
        })?;

        let mut steps = Vec::new();
        let key_path = format.map(|f| keys[usize::from(f == KeyFormat::Binary)].clone());
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
        steps.extend(found.holding(text.into_bytes(), foreign));
        let mut made_dir = None;
        if let (Some(key), Some(path)) = (self.key, &key_path) {
            match files::entry_at(Path::new(KEYRINGS)) {
                Ok(None) => made_dir = Some(PathBuf::from(KEYRINGS)),
                Ok(Some(e)) if e.kind == Kind::Dir => {}
                Ok(Some(_)) => return Err(fail(format!("{KEYRINGS} is not a directory"))),
                Err(e) => {
                    return Err(fail(format!(
                        "cannot look at {KEYRINGS}: {}",
                        files::describe(&e)
                    )))
                }
            }
            steps.extend(Found::read(path)?.holding(key, false));
            // The key in the other format, from an earlier key, goes.
            for other in keys.iter().filter(|p| *p != path) {
                let old = Found::read(other)?;
                if old.content.is_some() {
                    steps.push(Step::remove(old));
                }
            }
        }

        let what = match &key_path {
            Some(key) => format!("{} and its key {}", sources.display(), key.display()),
            None => sources.display().to_string(),
        };
        if steps.is_empty() {
            return Ok(Plan::unchanged(format!("{what} as wanted")));
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
        let refresh = refresh_argv(&apt_get, &sources);
        Ok(Plan::change(summary, diff, move |w| {
            if let Some(dir) = &made_dir {
                w.create_dir(dir, 0o755)?;
            }
            apply(w, &target, &steps, &refresh)
        }))
    }
}

/// The plan of [`AptRepository::absent`]: the file and both keys removed.
fn absent(target: &str, sources: PathBuf, keys: [PathBuf; 2]) -> Result<Plan, OpError> {
    let mut steps = Vec::new();
    for path in std::iter::once(sources.clone()).chain(keys) {
        let found = Found::look(&path)?;
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

/// A file of the repository as the plan found it: its content (within
/// [`MAX_SOURCES`] or [`MAX_KEY`]) and what it is.
struct Found {
    path: PathBuf,
    entry: Option<Entry>,
    content: Option<Vec<u8>>,
}

impl Found {
    /// What is at `path`, without reading it.
    fn look(path: &Path) -> Result<Found, OpError> {
        let entry = files::entry_at(path)
            .map_err(|e| OpError::new(OP, path.display(), files::describe(&e)))?;
        Ok(Found {
            path: path.to_owned(),
            entry,
            content: None,
        })
    }

    /// The file `path`: a link, a directory or a file larger than the
    /// most this operation reads is refused.
    fn read(path: &Path) -> Result<Found, OpError> {
        use std::io::Read as _;
        let mut found = Found::look(path)?;
        let fail = |message: String| OpError::new(OP, path.display(), message);
        let Some(entry) = &found.entry else {
            return Ok(found);
        };
        if entry.kind != Kind::File {
            return Err(fail(format!(
                "is not a regular file (a link, a directory ...): {OP} writes files of its own \
                 there; remove it"
            )));
        }
        let (dir, name) = files::parent_and_name(path).map_err(|e| fail(files::describe(&e)))?;
        let max = MAX_SOURCES.max(MAX_KEY);
        let mut bytes = Vec::new();
        dir.open_file(&name)
            .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(files::describe(&e)))?;
        if bytes.len() > max {
            return Err(fail(format!(
                "is larger than {} MiB, more than {OP} reads: it is not one of its files; \
                 remove it",
                max >> 20
            )));
        }
        found.content = Some(bytes);
        Ok(found)
    }

    /// The step that makes the file hold `content` with mode 0644, if it
    /// does not; `foreign`: it was not written by this operation.
    fn holding(self, content: Vec<u8>, foreign: bool) -> Option<Step> {
        let shown = self.path.display().to_string();
        let (line, write) = match (&self.content, &self.entry) {
            (Some(old), Some(e)) if *old == content => match e.mode & 0o7777 {
                0o644 => return None,
                mode => (format!("{shown}: mode {mode:04o} -> 0644"), false),
            },
            (Some(_), _) if foreign => (
                format!("replace {shown} (a file not written by {OP})"),
                true,
            ),
            (Some(_), _) => (format!("update {shown}"), true),
            (None, _) => (format!("create {shown}"), true),
        };
        Some(Step {
            line,
            found: self,
            write: write.then_some(content),
            remove: false,
        })
    }
}

/// One file's change: written (`write`), removed, or given mode 0644.
struct Step {
    line: String,
    found: Found,
    write: Option<Vec<u8>>,
    remove: bool,
}

impl Step {
    fn remove(found: Found) -> Step {
        Step {
            line: format!("remove {}", found.path.display()),
            found,
            write: None,
            remove: true,
        }
    }

    fn run(&self, w: &Writer) -> Result<(), OpError> {
        let path = &self.found.path;
        match (&self.write, self.remove) {
            (_, true) => w.remove_file(path),
            (Some(content), _) => w.write_file(path, content, 0o644, &Owner::default()),
            (None, _) => w.set_mode(path, 0o644),
        }
    }

    /// Puts the file back as the plan found it.
    fn undo(&self, w: &Writer) -> Result<(), OpError> {
        let found = &self.found;
        match (&found.content, &found.entry) {
            (Some(old), Some(e)) => {
                let owner = super::paths::owner_or_current(&Owner::default(), e);
                w.write_file(&found.path, old, e.mode & 0o7777, &owner)
            }
            _ => match files::entry_at(&found.path) {
                Ok(Some(_)) => w.remove_file(&found.path),
                _ => Ok(()),
            },
        }
    }
}

/// `apt-get update` of the repository `sources` only: the other sources'
/// lists kept, a list apt cannot fetch an error.
fn refresh_argv(apt_get: &Path, sources: &Path) -> Vec<String> {
    let mut argv = vec![apt_get.display().to_string(), "update".into(), "-q".into()];
    for option in [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=-".into(),
        "APT::Get::List-Cleanup=0".into(),
        "APT::Update::Error-Mode=any".into(),
        format!("DPkg::Lock::Timeout={LOCK_WAIT_SECS}"),
    ] {
        argv.push("-o".into());
        argv.push(option);
    }
    argv
}

/// Makes `steps`, then refreshes the repository's package lists; when a
/// step or the refresh fails, puts back every file as it was.
fn apply(w: &Writer, target: &str, steps: &[Step], refresh: &[String]) -> Result<(), OpError> {
    let mut done = 0;
    let result = steps
        .iter()
        .try_for_each(|s| {
            done += 1;
            s.run(w)
        })
        .and_then(|()| update(w, target, refresh));
    let Err(mut error) = result else {
        return Ok(());
    };
    let undone: Result<(), OpError> = steps[..done].iter().rev().try_for_each(|s| s.undo(w));
    match undone {
        Ok(()) => error
            .message
            .push_str("; the repository's files are put back as they were"),
        Err(e) => error.message.push_str(&format!(
            "; putting back the repository's files as they were failed too: {}",
            e.message
        )),
    }
    Err(error)
}

/// Runs the refresh; its failure quotes apt's last lines and says what to
/// do.
fn update(w: &Writer, target: &str, argv: &[String]) -> Result<(), OpError> {
    let env = [
        ("LC_ALL".to_owned(), "C".to_owned()),
        ("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned()),
    ];
    let shown = "apt-get update (of this repository only)";
    let program = Program {
        argv,
        env: &env,
        cwd: None,
        shown,
        timeout: Some(UPDATE_TIME),
    };
    let out = w.exec(program, OP)?;
    if out.status == 0 {
        return Ok(());
    }
    let said = format!("{}\n{}", out.stdout, out.stderr);
    let advice = if [
        "NO_PUBKEY",
        "couldn't be verified",
        "is not signed",
        "BADSIG",
        "EXPKEYSIG",
    ]
    .iter()
    .any(|s| said.contains(s))
    {
        "the key did not sign this repository: give the key its vendor signs it with"
    } else if said.contains("Could not get lock") {
        "another package manager holds the lock (a second run, unattended upgrades): try again \
         when it is done"
    } else if said.contains("are you root") || said.contains("Permission denied") {
        "adding a repository needs root: connect as root or through sudo (TunnelBuilder::sudo)"
    } else {
        "check the URIs and suites (a flat repository's suite ends in /) and that this host \
         reaches them"
    };
    let mut quoted = tail(&out, 3);
    if let Some((at, _)) = quoted.char_indices().nth(600) {
        quoted.truncate(at);
        quoted.push_str("...");
    }
    Err(OpError::new(
        OP,
        target,
        format!(
            "{shown} exited with status {}: {quoted}; {advice}",
            out.status
        ),
    ))
}
