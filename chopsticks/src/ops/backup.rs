//! Backups: the old content of a file kept beside it, as
//! `NAME.<timestamp>~`, with its mode and owner, before new content
//! replaces it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::files::{Dir, Entry};

/// Copies the file `name` of `dir` (as `old` describes it) to a new
/// `NAME.<timestamp>~` beside it with its mode and owner, durably; returns
/// the backup's path.
pub(super) fn back_up(dir: &Dir, name: &OsStr, old: &Entry) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut source = dir.open_file(name)?;
    let stamp = timestamp(SystemTime::now());
    for n in 0..100 {
        let mut backup = OsString::from(name);
        backup.push(format!(".{stamp}"));
        if n > 0 {
            backup.push(format!(".{n}"));
        }
        backup.push("~");
        // Within NAME_MAX, whatever the name's length.
        if backup.as_bytes().len() > 255 {
            let cut = &name.as_bytes()[..name.as_bytes().len().min(200)];
            backup = OsString::from(OsStr::from_bytes(cut));
            backup.push(format!(".{stamp}.{n}~"));
        }
        let mut copy = match dir.create_new(&backup) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            made => made?,
        };
        let copied = std::io::copy(&mut source, &mut copy)
            .and_then(|_| {
                // The owner first: changing it clears setuid and setgid.
                std::os::unix::fs::fchown(&copy, Some(old.uid), Some(old.gid)).or_else(|e| match e
                    .raw_os_error()
                {
                    // Not root: the copy is the writer's, as a copy is.
                    Some(libc::EPERM) => Ok(()),
                    _ => Err(e),
                })
            })
            .and_then(|()| copy.set_permissions(std::fs::Permissions::from_mode(old.mode)))
            .and_then(|()| copy.sync_all());
        if let Err(e) = copied {
            let _ = dir.unlink(&backup, false);
            return Err(e);
        }
        return Ok(dir.join(&backup));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "100 backups of this second exist already",
    ))
}

/// `time` as `YYYY-MM-DD@HH:MM:SS` in UTC (Ansible's backup names, in
/// local time there).
pub(super) fn timestamp(time: SystemTime) -> String {
    let t = crate::UtcTime::of(time);
    format!(
        "{:04}-{:02}-{:02}@{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        let at = |s: u64| timestamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01@00:00:00");
        assert_eq!(at(951_782_400), "2000-02-29@00:00:00");
        assert_eq!(at(1_796_613_012), "2026-12-07@03:10:12");
    }
}
