//! Mounting, remounting and unmounting: what each takes, checked when
//! planned, and the runs of `mount` and `umount` that make it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::check::may_mount;
use super::fstab::Entry;
use super::mountinfo::{self, Mounted};
use super::{FSTAB, OP};
use crate::ops::process::Program;
use crate::ops::text::missing_dirs;
use crate::ops::{tools, OpError, Plan, Writer};

/// What runs `mount` or `umount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    Mount,
    Remount,
    Unmount,
}

impl Run {
    fn tool(self) -> &'static str {
        match self {
            Run::Mount | Run::Remount => "mount",
            Run::Unmount => "umount",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Run::Mount => "mount",
            Run::Remount => "remount",
            Run::Unmount => "unmount",
        }
    }
}

/// One step of applying, in order.
pub(super) enum Step {
    Dir(PathBuf),
    Run(Run, Vec<String>, Duration),
    Fstab(Plan),
}

/// What mounting, remounting or unmounting the entry's mount point
/// takes (`why`: why a remount; each run bounded by `timeout`), checked
/// now: the parts of the summary that say so, and the steps.
pub(super) fn running(
    run: Run,
    entry: &Entry,
    mounts: &[Mounted],
    why: &str,
    timeout: Duration,
) -> Result<(Vec<String>, Vec<Step>), OpError> {
    let path = &entry.path;
    let fail = |message: String| OpError::new(OP, path, message);
    let tool = tools::one_of(
        OP,
        path,
        &[run.tool()],
        "install util-linux's mount and umount (the package mount)",
    )?;
    may_mount().map_err(|why| fail(format!("cannot {} it here: {why}", run.verb())))?;
    let mut parts = Vec::new();
    let mut steps = Vec::new();
    let options = entry.options_field();
    let tail = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let argv = match run {
        Run::Mount => {
            let dirs = new_dirs(Path::new(path)).map_err(fail)?;
            let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            match names.len() {
                0 => {}
                1 => parts.push(format!("create the directory {}", names[0])),
                _ => parts.push(format!("create the directories {}", names.join(", "))),
            }
            steps.extend(dirs.into_iter().map(Step::Dir));
            parts.push(format!(
                "mount {} ({}, {options}) on {path}",
                entry.source, entry.fstype
            ));
            tail(&[
                "-t",
                &entry.fstype,
                "-o",
                &options,
                "--",
                &entry.source,
                path,
            ])
        }
        Run::Remount => {
            parts.push(format!("remount {path} with {options} ({why})"));
            // Only these options: without it, mount merges the old
            // entry's from /etc/fstab, which is written after.
            tail(&[
                "--options-source=disable",
                "-o",
                &format!("remount,{options}"),
                "--",
                path,
            ])
        }
        Run::Unmount => {
            let now = &mounts[0];
            parts.push(format!("unmount {path} ({}, {})", now.source, now.fstype));
            tail(&["--", path])
        }
    };
    let argv = std::iter::once(tool).chain(argv).collect();
    steps.push(Step::Run(run, argv, timeout));
    Ok((parts, steps))
}

/// One plan of the `run` (its summary's parts and its steps) and the
/// entry's plan, if it changes, after it: what fails to mount or remount
/// is not written, what fails to unmount not removed.
pub(super) fn joined(
    (mut parts, mut steps): (Vec<String>, Vec<Step>),
    fstab_plan: Option<Plan>,
    notes: &str,
    path: String,
) -> Plan {
    let mut check = None;
    let mut diff = None;
    if let Some(mut plan) = fstab_plan {
        diff = plan.change.diff.take();
        // What check mode runs in place of writing the entry (its
        // validation), kept for the whole plan's check.
        check = plan.check.take();
        parts.push(std::mem::take(&mut plan.change.summary));
        steps.push(Step::Fstab(plan));
    }
    let summary = format!("{}{notes}", parts.join("; "));
    let mut plan = Plan::change(summary, diff, move |w| {
        for step in steps {
            match step {
                Step::Dir(dir) => w.create_dir(&dir, 0o755)?,
                Step::Run(run, argv, timeout) => run_tool(w, run, &argv, &path, timeout)?,
                Step::Fstab(plan) => plan.apply_with(w)?,
            }
        }
        Ok(())
    });
    plan.check = check;
    plan
}

/// What to do when `mount` or `umount` ran past `timeout`.
fn timed_out(run: Run, timeout: Duration) -> String {
    let what = match run {
        Run::Unmount => "umount waits for a network filesystem's server: is it reachable from \
            this host? If it is gone for good, `umount -f` or `umount -l` by hand"
            .to_owned(),
        Run::Mount | Run::Remount => format!(
            "a network filesystem's server that does not answer keeps mount waiting: is it \
             reachable from this host? For NFS, the option retry=0 makes mount try once \
             rather than for minutes, and nofail keeps a boot going without it; for a slow \
             server, raise Mount::timeout (now {} s)",
            timeout.as_secs()
        ),
    };
    format!("{what}; {FSTAB} is left as it was")
}

/// The directories to create for the mount point `path`, outermost
/// first: none when it exists.
fn new_dirs(path: &Path) -> Result<Vec<PathBuf>, String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut dirs = missing_dirs(path)?;
            dirs.push(path.to_owned());
            Ok(dirs)
        }
        Err(e) => Err(format!(
            "cannot look at {}: {}",
            path.display(),
            crate::files::describe(&e)
        )),
    }
}

/// Runs `mount` or `umount` within `timeout`; its failure says what it
/// said and what to do.
fn run_tool(
    w: &Writer,
    run: Run,
    argv: &[String],
    path: &str,
    timeout: Duration,
) -> Result<(), OpError> {
    let shown = format!("`{}`", argv.join(" "));
    let out = w.exec(
        Program {
            argv,
            // English messages: the advice is read from them.
            env: &[("LC_ALL".into(), "C".into())],
            cwd: None,
            shown: &shown,
            timeout: Some(timeout),
        },
        OP,
    );
    let out = match out {
        Err(e) if e.message.contains("did not finish within") => {
            return Err(OpError::new(
                OP,
                path,
                format!("{}; {}", e.message, timed_out(run, timeout)),
            ))
        }
        out => out?,
    };
    if out.status == 0 {
        return Ok(());
    }
    let said = tools::tail(&out, 4);
    let lower = said.to_lowercase();
    let advice = match run {
        _ if lower.contains("permission denied") || lower.contains("must be superuser") => {
            format!(
                "this host does not let this program {} (a container's security profile, such \
                 as AppArmor's, may forbid it even with CAP_SYS_ADMIN): do it from outside, or \
                 manage only the entry with present(); {FSTAB} is left as it was",
                run.verb()
            )
        }
        Run::Mount => format!("check the source, type and options; {FSTAB} is left as it was"),
        Run::Remount => format!(
            "the mounted filesystem keeps its options and {FSTAB} is left as it was; some \
             options change only at a fresh mount: unmount and mount it (unmounted(), then \
             mounted()), or correct the options"
        ),
        Run::Unmount if lower.contains("busy") => {
            let below = mountinfo::read()
                .map(|text| mountinfo::below(&text, path))
                .unwrap_or_default();
            let below = match below.is_empty() {
                true => String::new(),
                false => format!(
                    "filesystems are mounted below it ({}): unmount those first; or ",
                    below.join(", ")
                ),
            };
            format!(
                "{below}something uses it (`fuser -vm {path}` lists what): stop that, then \
                 apply again; {FSTAB} is left as it was"
            )
        }
        Run::Unmount => format!("{FSTAB} is left as it was"),
    };
    Err(OpError::new(
        OP,
        path,
        format!(
            "{shown} exited with status {}: {said}; {advice}",
            out.status
        ),
    ))
}
