//! Mounting, remounting and unmounting: what each takes, checked when
//! planned, and the runs of `mount` and `umount` that make it.

use std::path::{Path, PathBuf};

use super::check::may_mount;
use super::fstab::Entry;
use super::mountinfo::Mounted;
use super::{FSTAB, MOUNT_TIME, OP};
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
    Run(Run, Vec<String>),
    Fstab(Plan),
}

/// What mounting, remounting or unmounting the entry's mount point
/// takes (`why`: why a remount), checked now: the parts of the summary
/// that say so, and the steps.
pub(super) fn running(
    run: Run,
    entry: &Entry,
    mounts: &[Mounted],
    why: &str,
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
            tail(&["-o", &format!("remount,{options}"), "--", path])
        }
        Run::Unmount => {
            let now = &mounts[0];
            parts.push(format!("unmount {path} ({}, {})", now.source, now.fstype));
            tail(&["--", path])
        }
    };
    let argv = std::iter::once(tool).chain(argv).collect();
    steps.push(Step::Run(run, argv));
    Ok((parts, steps))
}

/// One plan of the `run` (its summary's parts and its steps) and the
/// entry's plan, if it changes, in order: mounting and unmounting first
/// (what fails to mount is not written, what fails to unmount not
/// removed), a remount after the entry (`mount -o remount` merges the
/// entry's options).
pub(super) fn joined(
    run: Run,
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
        let part = std::mem::take(&mut plan.change.summary);
        match run {
            Run::Remount => {
                parts.insert(0, part);
                steps.insert(0, Step::Fstab(plan));
            }
            Run::Mount | Run::Unmount => {
                parts.push(part);
                steps.push(Step::Fstab(plan));
            }
        }
    }
    let summary = format!("{}{notes}", parts.join("; "));
    let mut plan = Plan::change(summary, diff, move |w| {
        for step in steps {
            match step {
                Step::Dir(dir) => w.create_dir(&dir, 0o755)?,
                Step::Run(run, argv) => run_tool(w, run, &argv, &path)?,
                Step::Fstab(plan) => plan.apply_with(w)?,
            }
        }
        Ok(())
    });
    plan.check = check;
    plan
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

/// Runs `mount` or `umount` within [`MOUNT_TIME`]; its failure says what
/// it said and what to do.
fn run_tool(w: &Writer, run: Run, argv: &[String], path: &str) -> Result<(), OpError> {
    let shown = format!("`{}`", argv.join(" "));
    let out = w.exec(
        Program {
            argv,
            // English messages: the advice is read from them.
            env: &[("LC_ALL".into(), "C".into())],
            cwd: None,
            shown: &shown,
            timeout: Some(MOUNT_TIME),
        },
        OP,
    )?;
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
            "{FSTAB} has the new entry, the mounted filesystem its old options (some change \
             only at a fresh mount): unmount and mount it (unmounted(), then mounted()), or \
             reboot"
        ),
        Run::Unmount if lower.contains("busy") => format!(
            "something uses it (`fuser -vm {path}` lists what): stop that, then apply again; \
             {FSTAB} is left as it was"
        ),
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
