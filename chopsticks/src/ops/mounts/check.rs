//! What [`Mount`](super::Mount) refuses before it reads anything, and
//! whether this program may mount at all.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use super::super::hostnames::{has_cap, CAP_SYS_ADMIN};
use crate::files::describe;

/// The longest path, source and options field taken, in bytes.
const MAX_FIELD: usize = 4096;

/// The longest filesystem type.
const MAX_FSTYPE: usize = 64;

/// The mount point as text, when it is one: absolute, normal (no `.`,
/// `..`, `//` or final `/`: the kernel lists mounts by a normal path),
/// UTF-8, at most [`MAX_FIELD`] bytes, without NUL.
pub(super) fn mount_point(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or("the path is not UTF-8: /etc/fstab is text")?;
    if text.len() > MAX_FIELD || text.contains('\0') {
        return Err(format!(
            "a mount point is at most {MAX_FIELD} bytes long, without NUL"
        ));
    }
    let rebuilt: PathBuf = path.components().collect();
    let plain = rebuilt.as_os_str() == path.as_os_str()
        && !path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if !path.is_absolute() || !plain {
        return Err(
            "a mount point is an absolute path without `.` or `..` parts, `//` or a final `/` \
             (e.g. /mnt/data)"
                .into(),
        );
    }
    Ok(text.to_owned())
}

/// Refuses a source `mount` could read as an option, or that is empty.
pub(super) fn source(source: &str) -> Result<(), String> {
    match source.is_empty()
        || source.starts_with('-')
        || source.contains('\0')
        || source.len() > MAX_FIELD
    {
        true => Err(format!(
            "the source {:?} is not one: give a device, UUID=..., LABEL=..., host:/export or \
             a name (tmpfs), not empty, not starting with -, at most {MAX_FIELD} bytes",
            source.chars().take(80).collect::<String>()
        )),
        false => Ok(()),
    }
}

/// Refuses a filesystem type that is not a word of `A-Z a-z 0-9 . _ + -`
/// (not starting with `-` or `.`), at most [`MAX_FSTYPE`] bytes.
pub(super) fn fstype(fstype: &str) -> Result<(), String> {
    let ok = (1..=MAX_FSTYPE).contains(&fstype.len())
        && !fstype.starts_with(['-', '.'])
        && fstype
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "the type {:?} is not a filesystem type: 1 to {MAX_FSTYPE} of A-Z a-z 0-9 . _ + -, \
             not starting with - or . (e.g. ext4, tmpfs, nfs4, fuse.sshfs)",
            fstype.chars().take(80).collect::<String>()
        )),
    }
}

/// The options to write, in order, duplicates dropped; each refused when
/// it is not one word (blanks, commas or control characters in it), is
/// empty or starts with `-`; all of them at most [`MAX_FIELD`] bytes.
pub(super) fn options(options: &[String]) -> Result<Vec<String>, String> {
    let mut kept: Vec<String> = Vec::new();
    for option in options {
        let bad = option.is_empty()
            || option.starts_with('-')
            || option.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control());
        if bad {
            return Err(format!(
                "the option {:?} is not one: each option is one word, not empty, without \
                 blanks, commas or control characters, not starting with - (give several as \
                 options([\"noatime\", \"size=64m\"]))",
                option.chars().take(80).collect::<String>()
            ));
        }
        if !kept.contains(option) {
            kept.push(option.clone());
        }
    }
    if kept.iter().map(|o| o.len() + 1).sum::<usize>() > MAX_FIELD {
        return Err(format!(
            "the options are longer than {MAX_FIELD} bytes together"
        ));
    }
    Ok(kept)
}

/// Refuses a mount point that goes through a symbolic link (or is one):
/// the kernel lists the mount by its real path, under which a second run
/// would not find it. Looks at its deepest part that exists.
pub(super) fn real_path(path: &Path) -> Result<(), String> {
    let mut at = path;
    loop {
        match std::fs::symlink_metadata(at) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match at.parent() {
                Some(parent) => at = parent,
                None => return Ok(()),
            },
            Err(e) => return Err(format!("cannot look at {}: {}", at.display(), describe(&e))),
        }
    }
    let real = std::fs::canonicalize(at)
        .map_err(|e| format!("cannot resolve {}: {}", at.display(), describe(&e)))?;
    if real == at {
        return Ok(());
    }
    let rest = path.strip_prefix(at).unwrap_or(Path::new(""));
    Err(format!(
        "it goes through a symbolic link ({} is {}): the kernel lists mounts by their real \
         path, so give that: {}",
        at.display(),
        real.display(),
        real.join(rest).display()
    ))
}

/// The bytes of `/proc/self/status` read to tell this program's
/// capabilities: the file is a few KiB.
const MAX_STATUS: u64 = 64 << 10;

/// Whether this program may mount and unmount, and why not: decided from
/// its capabilities before anything runs, so that check mode fails where
/// apply would.
pub(super) fn may_mount() -> Result<(), String> {
    let mut status = String::new();
    std::fs::File::open("/proc/self/status")
        .and_then(|f| f.take(MAX_STATUS).read_to_string(&mut status))
        .map_err(|e| {
            format!(
                "cannot read /proc/self/status to tell whether this program may: {}",
                describe(&e)
            )
        })?;
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    denied(has_cap(&status, CAP_SYS_ADMIN), root)
}

/// Why this program may not mount, from whether it has `CAP_SYS_ADMIN`
/// (`None`: it cannot tell) and runs as root.
fn denied(cap: Option<bool>, root: bool) -> Result<(), String> {
    Err(match (cap, root) {
        (Some(true), true) => return Ok(()),
        (_, false) => "mounting takes root (util-linux's mount refuses other users a source \
             and options given on its command line, whatever their capabilities): connect as \
             root or through sudo (TunnelBuilder::sudo); present() manages the /etc/fstab \
             entry alone"
            .to_owned(),
        (Some(false), true) => "this program runs as root but without CAP_SYS_ADMIN, which \
             mounting takes: the host is a container whose runtime withholds it. Mount the \
             filesystem from outside the container (docker run --mount, or --cap-add \
             SYS_ADMIN), or manage only the /etc/fstab entry with present()"
            .to_owned(),
        (None, true) => "/proc/self/status shows no CapEff line to tell whether this program \
             may mount (is /proc a Linux procfs here?): mount and unmount by hand, or manage \
             only the /etc/fstab entry with present()"
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_absolute_and_normal() {
        for good in [
            "/",
            "/mnt/x",
            "/mnt/a b",
            "/mnt/tab\there",
            "/mnt/new\nline",
        ] {
            assert_eq!(mount_point(Path::new(good)).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "mnt/x",
            "./x",
            "/mnt/../etc",
            "/mnt/./x",
            "/mnt//x",
            "/mnt/x/",
            "-o",
        ] {
            assert!(mount_point(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert!(mount_point(Path::new(&format!("/{}", "a".repeat(MAX_FIELD)))).is_err());
    }

    #[test]
    fn sources_types_and_options_are_checked() {
        for good in [
            "tmpfs",
            "/dev/sda1",
            "UUID=0a-1b",
            "nas:/export",
            "//srv/a share",
        ] {
            assert!(source(good).is_ok(), "{good:?}");
        }
        for bad in ["", "-oremount", "a\0b"] {
            assert!(source(bad).is_err(), "{bad:?}");
        }
        for good in ["ext4", "nfs4", "fuse.sshfs", "9p", "auto"] {
            assert!(fstype(good).is_ok(), "{good:?}");
        }
        for bad in ["", "-t", ".x", "ext 4", "ext4,nfs", "a/b"] {
            assert!(fstype(bad).is_err(), "{bad:?}");
        }
        let given = |o: &[&str]| options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            given(&["size=1m", "noexec", "size=1m"]).unwrap(),
            ["size=1m", "noexec"]
        );
        assert_eq!(given(&[]).unwrap(), Vec::<String>::new());
        for bad in ["", "-o", "a,b", "a b", "a\tb", "a\nb"] {
            let err = given(&["rw", bad]).unwrap_err();
            assert!(err.contains("is not one"), "{bad:?}: {err}");
        }
        assert!(given(&["x".repeat(MAX_FIELD).as_str()]).is_err());
    }

    #[test]
    fn links_on_the_way_are_refused_naming_the_real_path() {
        let dir = std::env::temp_dir().join(format!("cs-mount-real-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        assert!(real_path(&dir.join("real/new/deeper")).is_ok());
        let err = real_path(&dir.join("link/new")).unwrap_err();
        assert!(
            err.ends_with(&format!("give that: {}", dir.join("real/new").display())),
            "{err}"
        );
        assert!(real_path(&dir.join("link")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_capability_says_what_to_do() {
        assert!(denied(Some(true), true).is_ok());
        let capable = denied(Some(true), false).unwrap_err();
        assert!(capable.contains("TunnelBuilder::sudo"), "{capable}");
        assert!(denied(None, false)
            .unwrap_err()
            .contains("TunnelBuilder::sudo"));
        let container = denied(Some(false), true).unwrap_err();
        assert!(container.contains("without CAP_SYS_ADMIN") && container.contains("present()"));
        let user = denied(Some(false), false).unwrap_err();
        assert!(user.contains("TunnelBuilder::sudo"), "{user}");
        assert!(denied(None, true).unwrap_err().contains("present()"));
    }
}
