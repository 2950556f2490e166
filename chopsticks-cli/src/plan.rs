//! Saved plans: `--check --save-plan FILE` writes what each host's steps
//! would change, for review; `--apply-plan FILE` applies exactly that.
//!
//! The file is plain, pretty-printed JSON, mode 0600:
//!
//! ```json
//! {
//!   "chopsticks_plan": 1,
//!   "tool": "deploy",
//!   "tool_sha256": "9f86d081884c7d65...",
//!   "created": "2026-12-07T09:12:44.318Z",
//!   "command": ["-i", "prod.ini", "--check", "--save-plan", "prod.plan"],
//!   "digest_key": "5f2b0c9e81d4a7c3",
//!   "hosts": [
//!     {
//!       "host": "web1",
//!       "steps": [
//!         {
//!           "step": "motd",
//!           "status": "changed",
//!           "changed": true,
//!           "summary": "/etc/motd: content changed",
//!           "diff": ["--- /etc/motd", "+++ /etc/motd", "@@ -1 +1 @@", "-hello", "+welcome"],
//!           "digest": "3c1f...e07a"
//!         }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! Per host, each step of operations ([`Printer::changes`](crate::Printer::changes))
//! in the order it ran: its name, whether it changes something, its
//! summary and its diff as lines (operations keep secrets out of both, as
//! the journal's records). Steps of plain values ([`Printer::step`](crate::Printer::step))
//! change nothing and are not part of a plan. `tool_sha256` is the
//! SHA-256 of the tool's binary: another build refuses the plan.
//! `command` is the command line, its secrets masked as the
//! [journal](crate::journal) masks them. `digest` is a keyed digest of
//! the content a step writes ([`chopsticks::ops::Change::digest`]), made
//! with this user's [`DigestKey`], which `digest_key` names: what
//! compares content that has no diff (secret, binary, too large).

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use chopsticks::ops::{Change, Report};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::journal::Step;

/// The version of the plan format this build writes and reads.
pub const PLAN_VERSION: u32 = 1;

/// The most bytes of a plan file read.
pub const MAX_PLAN: u64 = 256 << 20;

/// A saved plan: what a check run found each host's steps would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The format's version ([`PLAN_VERSION`]).
    pub chopsticks_plan: u32,
    /// The tool's name (its program's).
    pub tool: String,
    /// The SHA-256 of the tool's binary, hex.
    pub tool_sha256: String,
    /// When the check run that made it started, UTC.
    pub created: String,
    /// The check run's arguments, secrets masked.
    pub command: Vec<String>,
    /// The ID of the key the steps' content digests were made with (see
    /// [`DigestKey`]); `None` when the plan has no digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_key: Option<String>,
    /// Each host's steps, in the order the hosts first answered.
    pub hosts: Vec<HostPlan>,
}

/// One host's planned steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    /// The host, as the inventory names it.
    pub host: String,
    /// Its steps, in order.
    pub steps: Vec<PlannedStep>,
}

/// One planned step on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step (`motd`, `site/conf`).
    pub step: String,
    /// `ok`, `changed`, or `failed`, `unreachable`, `interrupted`: a plan
    /// whose step did not run as planned, which `--apply-plan` refuses.
    pub status: String,
    /// Whether it changes something.
    pub changed: bool,
    /// What it changes, or what is there; a failure's error.
    pub summary: String,
    /// Its diff, line by line (empty when it has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<String>,
    /// The keyed digest of the content it writes (HMAC-SHA256 with the
    /// [`DigestKey`], hex), where it writes content: what
    /// compares content without a diff (secret, binary, too large) or
    /// past the diff's cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl PlannedStep {
    /// A journal step as planned.
    pub fn of(step: &Step) -> PlannedStep {
        PlannedStep {
            step: step.step.clone(),
            status: step.status.clone(),
            changed: step.changed,
            summary: step.summary.clone(),
            diff: step
                .diff
                .as_deref()
                .map(|d| d.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            digest: step.digest.clone(),
        }
    }

    /// Whether it did not run as planned (failed, or its host was lost).
    pub fn failed(&self) -> bool {
        !matches!(self.status.as_str(), "ok" | "changed")
    }
}

impl SavedPlan {
    /// The plan of a check run of `tool` (its binary's hash `sha256`)
    /// started at `created` with the masked arguments `command`, from its
    /// steps of operations in the order they ran: every host of
    /// `selected` (in that order; one the run gave no operation is in the
    /// plan with none, so that applying it is not refused), then any other
    /// host a step names.
    pub fn new(
        tool: &str,
        sha256: &str,
        created: &str,
        command: Vec<String>,
        selected: &[&str],
        steps: &[Step],
    ) -> SavedPlan {
        let mut hosts: Vec<HostPlan> = Vec::with_capacity(selected.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(selected.len());
        let mut slot = |hosts: &mut Vec<HostPlan>, host: &str| -> usize {
            *index.entry(host.to_owned()).or_insert_with(|| {
                hosts.push(HostPlan {
                    host: host.to_owned(),
                    steps: Vec::new(),
                });
                hosts.len() - 1
            })
        };
        for host in selected {
            slot(&mut hosts, host);
        }
        for step in steps {
            let i = slot(&mut hosts, &step.host);
            hosts[i].steps.push(PlannedStep::of(step));
        }
        SavedPlan {
            chopsticks_plan: PLAN_VERSION,
            tool: tool.to_owned(),
            tool_sha256: sha256.to_owned(),
            created: created.to_owned(),
            command,
            digest_key: None,
            hosts,
        }
    }

    /// The plan, its digests made with `key`.
    pub fn digests_by(mut self, key: &DigestKey) -> SavedPlan {
        self.digest_key = Some(key.id.clone());
        self
    }

    /// The key this plan's digests were made with, read from this
    /// machine (`None` when the plan has no digests).
    ///
    /// # Errors
    /// The key cannot be read, or is another than the plan's: the
    /// message says what to do.
    pub fn key(&self, path: &Path) -> Result<Option<DigestKey>, String> {
        let Some(id) = &self.digest_key else {
            return Ok(None);
        };
        let what_to_do = "apply the plan where it was made, as the user who made it, or make \
                          and review it again here";
        let key = DigestKey::load(false).map_err(|e| {
            format!(
                "the plan {} compares content by digests made with key {id}, which this \
                 machine does not have ({e}): {what_to_do}",
                path.display()
            )
        })?;
        match key.id == *id {
            true => Ok(Some(key)),
            false => Err(format!(
                "the plan {} compares content by digests made with key {id}, but this \
                 machine's key ({}) is {}: {what_to_do}",
                path.display(),
                key.path.display(),
                key.id
            )),
        }
    }

    /// The plan as the file holds it: pretty JSON and a last newline.
    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the plan to `path`, mode 0600.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::printer::write_private(path, self.text().as_bytes())
    }

    /// Reads a plan file (at most [`MAX_PLAN`] bytes).
    ///
    /// # Errors
    /// A message naming the file: it cannot be read, is too large, is no
    /// plan, or is of another version.
    pub fn read(path: &Path) -> Result<SavedPlan, String> {
        let shown = path.display();
        let file =
            std::fs::File::open(path).map_err(|e| format!("cannot read the plan {shown}: {e}"))?;
        let mut data = Vec::new();
        file.take(MAX_PLAN + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read the plan {shown}: {e}"))?;
        if data.len() as u64 > MAX_PLAN {
            return Err(format!(
                "the plan {shown} is larger than {MAX_PLAN} bytes: not a plan --save-plan wrote"
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|e| format!("{shown} is not a plan --save-plan wrote (not JSON: {e})"))?;
        match value
            .get("chopsticks_plan")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(PLAN_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "the plan {shown} is of format version {v}; this build reads version \
                     {PLAN_VERSION}: make the plan again with this build (--check --save-plan)"
                ))
            }
            None => {
                return Err(format!(
                    "{shown} is not a plan --save-plan wrote (no \"chopsticks_plan\" version)"
                ))
            }
        }
        serde_json::from_value(value).map_err(|e| format!("the plan {shown} cannot be read: {e}"))
    }

    /// Refuses a plan made by another build of the tool than the one whose
    /// binary hashes to `ours`, naming both hashes.
    ///
    /// # Errors
    /// The message to show.
    pub fn check_build(&self, ours: &str, path: &Path) -> Result<(), String> {
        match self.tool_sha256 == ours {
            true => Ok(()),
            false => Err(format!(
                "the plan {} was made by another build of {} (sha256 {}); this one is sha256 \
                 {ours}: a plan is applied only by the build that made it. Make the plan again \
                 with this build (--check --save-plan) and review it",
                path.display(),
                self.tool,
                self.tool_sha256
            )),
        }
    }

    /// Each host's planned steps by its name (the first, if a host is
    /// there twice).
    pub fn by_host(&self) -> HashMap<&str, &[PlannedStep]> {
        let mut hosts = HashMap::with_capacity(self.hosts.len());
        for h in &self.hosts {
            hosts.entry(h.host.as_str()).or_insert(h.steps.as_slice());
        }
        hosts
    }

    /// The planned steps of `host`, if the plan has it.
    pub fn host(&self, host: &str) -> Option<&[PlannedStep]> {
        self.hosts
            .iter()
            .find(|h| h.host == host)
            .map(|h| h.steps.as_slice())
    }
}

/// Run steps grouped by host, as planned steps, each host's in order.
pub fn steps_by_host(steps: &[Step]) -> HashMap<&str, Vec<PlannedStep>> {
    let mut hosts: HashMap<&str, Vec<PlannedStep>> = HashMap::new();
    for step in steps {
        hosts
            .entry(&step.host)
            .or_default()
            .push(PlannedStep::of(step));
    }
    hosts
}

/// The steps as a [`Report`], for [`Report::differences`]. When
/// `applied`, only the steps and their diffs are kept: an apply words its
/// summaries otherwise than the check it was planned from (a command
/// "ran" where the check said "run", a handler ran where it "would run",
/// a step that depends on an earlier one no longer notes what is missing)
/// and a command's `changed` may come from how it ended, so only the
/// content a step wrote is compared with the reviewed one.
fn as_report(steps: &[PlannedStep], applied: bool) -> Report {
    let mut report = Report::new();
    for s in steps {
        let diff = (!s.diff.is_empty()).then(|| s.diff.join("\n"));
        let change = match applied {
            true => Change {
                diff,
                digest: s.digest.clone(),
                ..Change::default()
            },
            false => Change {
                changed: s.changed,
                summary: s.summary.clone(),
                diff,
                digest: s.digest.clone(),
                ..Change::default()
            },
        };
        report.add(s.step.clone(), change);
    }
    report
}

/// The first difference between a host's reviewed steps and its steps
/// now (`applied`: now is the apply run's), or `None` when they match:
/// what [`Report::differences`] says of its first differing step, as
/// `step NAME: WHAT`.
pub fn difference(saved: &[PlannedStep], now: &[PlannedStep], applied: bool) -> Option<String> {
    let (saved, now) = (as_report(saved, applied), as_report(now, applied));
    let first = now.differences(&saved).into_iter().next()?;
    Some(match first.starts_with("step ") {
        true => first,
        false => format!("step {first}"),
    })
}

/// Why `--apply-plan` refuses a host whose reviewed steps are `saved` and
/// whose check pass gave `now` (`shown`: the plan file), and whether it
/// was unreachable; `None` when they match. A host whose reviewed check
/// failed is refused, as is one whose check fails now or differs.
pub fn refusal(saved: &[PlannedStep], now: &[PlannedStep], shown: &str) -> Option<(String, bool)> {
    let failed = |steps: &[PlannedStep]| steps.iter().find(|s| s.failed()).cloned();
    if let Some(s) = failed(saved) {
        return Some((
            format!(
                "the reviewed plan has a failure ({}: {}): nothing is applied on a host whose \
                 check failed",
                s.step, s.summary
            ),
            false,
        ));
    }
    if let Some(s) = failed(now) {
        let unreachable = s.status == "unreachable";
        return Some((
            format!(
                "the check against the reviewed plan {shown} failed, nothing applied: {}: {}",
                s.step, s.summary
            ),
            unreachable,
        ));
    }
    difference(saved, now, false).map(|d| {
        (
            format!(
                "differs from the reviewed plan {shown}, nothing applied: {d} (the host \
                 drifted, or the tool changed: review a new plan)"
            ),
            false,
        )
    })
}

/// The key of the content digests of saved plans
/// ([`chopsticks::ops::set_digest_key`]): 32 random bytes in
/// `$XDG_STATE_HOME/chopsticks/plan.key` (`~/.local/state/...`), mode
/// 0600, made by the first `--save-plan`. A plan names it by its ID, so
/// a plan made with another key is refused rather than misread. The key
/// is kept out of the plan: with it, a digest of short secret content
/// could be guessed by trying.
#[derive(Clone)]
pub struct DigestKey {
    /// The key.
    pub key: [u8; 32],
    /// Its ID: the first 16 hex digits of the SHA-256 of a label and the key.
    pub id: String,
    /// Where it is kept.
    pub path: std::path::PathBuf,
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestKey")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DigestKey {
    /// This user's key, made first when `create` and there is none.
    ///
    /// # Errors
    /// No home to keep it in; a key file that cannot be read or made, is
    /// not 32 bytes, or can be read by others.
    pub fn load(create: bool) -> Result<DigestKey, String> {
        let dir = crate::journal::file::state_home()
            .ok_or("no home for the plan's digest key: HOME is not set")?
            .join("chopsticks");
        let path = dir.join("plan.key");
        let shown = path.display();
        let read = || read_key(&path).map_err(|e| format!("the plan's digest key {shown}: {e}"));
        let key = match read() {
            Err(_) if create && path.symlink_metadata().is_err() => {
                crate::journal::file::private_dir(&dir)
                    .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
                make_key(&path).map_err(|e| format!("cannot make the digest key {shown}: {e}"))?;
                read()?
            }
            other => other?,
        };
        let mut hasher = Sha256::new();
        hasher.update(b"chopsticks plan digest key\0");
        hasher.update(key);
        let id = hex(&hasher.finalize()[..8]);
        Ok(DigestKey { key, id, path })
    }
}

/// The key at `path`: a file of this user's, mode 0600 (no one else can
/// read it), never through a link, of 32 bytes.
fn read_key(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: getuid cannot fail.
    if !meta.is_file() || meta.uid() != unsafe { libc::getuid() } || meta.mode() & 0o077 != 0 {
        return Err(bad(
            "it must be a file of yours that only you can read (chmod 600)",
        ));
    }
    let mut data = Vec::with_capacity(33);
    (&mut file).take(33).read_to_end(&mut data)?;
    data.try_into()
        .map_err(|_| bad("it is not 32 bytes: remove it, then make and review the plan again"))
}

/// Makes a new key at `path`: written whole to a file of its own first,
/// then linked into place, so a run that reads it meanwhile finds none or
/// all of it, and of two runs making one at once, the first's is kept.
fn make_key(path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let staged = path.with_file_name(format!(".plan.key.{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&staged)?;
    let linked = file
        .write_all(&key)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::hard_link(&staged, path));
    let _ = std::fs::remove_file(&staged);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The SHA-256 of this program's binary, hex.
///
/// # Errors
/// The binary cannot be found or read.
pub fn tool_sha256() -> std::io::Result<String> {
    let exe = std::env::current_exe()?;
    let mut file = std::fs::File::open(exe)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A key is made whole and private, the first of two makers wins, and
    /// a key anyone else can read, a link, or a file of another size is
    /// refused saying what to do.
    #[test]
    fn digest_keys_are_private_files_of_32_bytes() {
        let dir = std::env::temp_dir().join(format!("cs-plan-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.key");
        make_key(&path).unwrap();
        let first = read_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        make_key(&path).unwrap();
        assert_eq!(read_key(&path).unwrap(), first, "the first key is kept");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no staged file left"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_key(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_key(&link).is_err(), "a link is not followed");

        let short = dir.join("short.key");
        make_key(&short).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&short)
            .unwrap()
            .set_len(31)
            .unwrap();
        let e = read_key(&short).unwrap_err().to_string();
        assert!(e.contains("not 32 bytes"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::new("web1", "motd", "changed", "/etc/motd: content changed")
                .diff(Some("-hello\n+welcome\n")),
            Step::new("web2", "motd", "ok", "/etc/motd: as wanted"),
            Step::new("web1", "site/conf", "ok", "/etc/a.conf: as wanted"),
        ]
    }

    /// The file reads well (pretty JSON, a diff as lines), is private, and
    /// reads back; another version, another build, no plan are refused.
    #[test]
    fn a_plan_file_is_versioned_private_json_of_its_build() {
        let dir = std::env::temp_dir().join(format!("cs-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.json");
        let args = crate::journal::Run::new("t", ["-H", "web1", "--db-password", "hunter2"]).args;
        let plan = SavedPlan::new("t", "abc", "2026-12-07T09:00:00.000Z", args, &[], &steps());
        plan.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\n  \"chopsticks_plan\": 1,\n"), "{text}");
        assert!(
            text.contains("\"-hello\",\n") && text.contains("\"+welcome\"\n"),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && text.contains("(secret)"),
            "{text}"
        );
        let back = SavedPlan::read(&path).unwrap();
        assert_eq!(back, plan);
        assert_eq!(back.hosts.len(), 2);
        assert_eq!(back.host("web1").unwrap().len(), 2);
        assert!(back.host("web3").is_none());
        assert!(back.check_build("abc", &path).is_ok());
        let err = back.check_build("def", &path).unwrap_err();
        assert!(
            err.contains("another build of t (sha256 abc); this one is sha256 def"),
            "{err}"
        );
        std::fs::write(
            &path,
            text.replace("\"chopsticks_plan\": 1", "\"chopsticks_plan\": 7"),
        )
        .unwrap();
        let err = SavedPlan::read(&path).unwrap_err();
        assert!(
            err.contains("format version 7; this build reads version 1"),
            "{err}"
        );
        std::fs::write(&path, "{\"hosts\": []}").unwrap();
        let err = SavedPlan::read(&path).unwrap_err();
        assert!(err.contains("no \"chopsticks_plan\" version"), "{err}");
        std::fs::write(&path, "motd: hello").unwrap();
        assert!(SavedPlan::read(&path).unwrap_err().contains("not JSON"));
        assert!(SavedPlan::read(&dir.join("none")).is_err());
        let ours = tool_sha256().unwrap();
        assert_eq!(ours.len(), 64);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A host's steps now are compared with the reviewed ones: name,
    /// changed, summary, diff; an applied handler's summary without
    /// `would run, `.
    #[test]
    fn differences_name_the_step_and_the_first_differing_line() {
        let saved: Vec<PlannedStep> = steps().iter().map(PlannedStep::of).collect();
        let web1 = [saved[0].clone(), saved[2].clone()];
        assert_eq!(difference(&web1, &web1, false), None);
        let mut now = web1.clone();
        now[0].diff[0] = "-hi".into();
        assert_eq!(
            difference(&web1, &now, false).unwrap(),
            "step motd: diff line 1: reviewed `-hello`, now `-hi`"
        );
        let mut now = web1.clone();
        now[1].changed = true;
        let d = difference(&web1, &now, false).unwrap();
        assert!(
            d.starts_with("step site/conf: reviewed changes nothing, now changes something"),
            "{d}"
        );
        assert_eq!(
            difference(&web1, &web1[..1], false).unwrap(),
            "step site/conf: in the reviewed plan, but does not run now"
        );
        let mut handler = web1.clone();
        handler[1].summary = "would run, notified by motd: nginx: reloaded".into();
        let mut ran = handler.clone();
        ran[1].summary = "notified by motd: nginx: reloaded".into();
        assert_eq!(difference(&handler, &ran, true), None);
        assert!(difference(&handler, &ran, false).is_some());
        // After an apply only the steps and their diffs count: a command
        // says "ran" where its check said "run", and its `changed` may
        // come from how it ended.
        let mut worded = web1.clone();
        worded[0].summary = "ran `x`: changed".into();
        worded[0].changed = !worded[0].changed;
        assert_eq!(difference(&web1, &worded, true), None);
        worded[0].diff[0] = "-hi".into();
        assert!(difference(&web1, &worded, true).is_some());
        // A selected host with no operation is in the plan, with no steps.
        let plan = SavedPlan::new(
            "t",
            "abc",
            "2026-12-07T09:00:00Z",
            vec![],
            &["idle"],
            &steps(),
        );
        assert_eq!(plan.hosts[0].host, "idle");
        assert!(plan.hosts[0].steps.is_empty());
        assert!(plan.hosts.len() > 1);
    }
}
