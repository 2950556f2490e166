//! [`unarchive`]: a tar (plain, gzip, xz, zstd) or zip archive unpacked
//! into a directory, by pure-Rust decoders (feature `archive`).
//!
//! The plan reads the whole archive once: it refuses the archive before
//! anything is written when an entry would land outside `dest`, and
//! compares every entry with what `dest` holds (`scan`). Apply reads it
//! again (the same open file) and writes only the entries that differ
//! (`unpack`), every write relative to a directory held open.

mod read;
mod scan;
mod tree;
mod unpack;
mod verbs;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Change, Mode, OpError, Owner, Plan};
use crate::ops::write::owner_options;
use crate::remote;

const OP: &str = "ops::unarchive";

/// How a decompression bomb's error reads.
const TOO_LARGE: &str = "it unpacks to more than the bound";

/// The most bytes an archive may unpack to unless
/// [`Unarchive::max_bytes`] says otherwise: 4 GiB.
pub const MAX_UNPACKED: u64 = 4 << 30;

/// The most entries an archive may have (the directories their paths
/// imply counted too) unless [`Unarchive::max_entries`] says otherwise.
pub const MAX_ENTRIES: u64 = 100_000;

/// An archive's content in the directory `dest`: a tar (plain, gzip, xz or
/// zstd) or zip archive, its format told by its first bytes.
///
/// *Available with the crate feature `archive` only* (it adds pure-Rust
/// decoders to the program shipped to hosts, so the host needs no `tar`,
/// `unzip` or C library).
///
/// The archive is on the host ([`new`](Unarchive::new), run with the
/// remote function [`unarchive`](struct@unarchive)) or on this machine
/// ([`local`](Unarchive::local), run with
/// [`Tunnel::unarchive`](crate::Tunnel::unarchive) or
/// [`Group::unarchive`](crate::Group::unarchive), which put a copy in a
/// private temporary directory on the host first, in check mode too, and
/// remove it after).
///
/// Idempotent by comparing entry by entry, not by a record of the
/// archive's checksum: every file's content and mode, every link's target
/// and every directory are compared with what `dest` holds, so a second
/// run changes nothing and a file someone changed since is put back.
/// What `dest` holds that the archive does not name is left alone, so
/// `dest` may hold more than the archive (a file an older version of the
/// archive had stays: remove it with [`ops::file`](struct@crate::ops::file)).
/// The cost is reading the archive and the files it names on every run
/// (bounded as below).
///
/// Refused, the whole archive before anything is written: an entry with
/// an absolute path or `..`, one that goes through a symbolic link or
/// file (one in `dest` or one an earlier entry makes), a hard link to
/// anything but an earlier file of the archive, device nodes, fifos and
/// sockets, a file or link where `dest` or an earlier entry has a
/// directory or the other way round, and a file named again after a hard
/// link to it. A path named twice (as `tar -r` appends) gets its last
/// entry. Setuid and setgid bits are dropped. Hard links are written as
/// copies, with the mode of the file they link to.
///
/// Bounded: at most [`MAX_UNPACKED`] bytes (hard links' copies counted)
/// and [`MAX_ENTRIES`] paths (entries, and the directories their paths
/// imply) unless set otherwise, so a decompression bomb stops with an
/// error; a path of at most 4096 bytes, names of at most 255, 256 names
/// deep; at most 1 MiB of a tar's headers (long names, pax extensions)
/// before each entry.
///
/// Modes come from the archive; [`owner`](Unarchive::owner) and
/// [`group`](Unarchive::group) apply to everything written.
///
/// ```no_run
/// use chopsticks::{ops, Tunnel};
/// use chopsticks::ops::Mode;
///
/// # fn main() -> chopsticks::Result<()> {
/// let t = Tunnel::ssh("web1")?;
/// let site = ops::Unarchive::local("build/site.tar.zst", "/srv/www").owner("www-data");
/// println!("{}", t.unarchive(site, Mode::Check)?.summary);
/// let fetched = ops::Unarchive::new("/opt/node.tar.xz", "/opt/node");
/// t.call(ops::unarchive, (fetched, Mode::Apply))?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unarchive {
    archive: PathBuf,
    dest: PathBuf,
    /// The archive is on this machine.
    local: bool,
    /// How the archive is named in summaries (a local archive's own path
    /// rather than its temporary copy's).
    shown: Option<String>,
    owner: Owner,
    max_bytes: u64,
    max_entries: u64,
}

impl Unarchive {
    /// The archive `archive` on the host, unpacked into the directory
    /// `dest` (which must exist).
    pub fn new(archive: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Unarchive {
        Unarchive {
            archive: archive.into(),
            dest: dest.into(),
            local: false,
            shown: None,
            owner: Owner::default(),
            max_bytes: MAX_UNPACKED,
            max_entries: MAX_ENTRIES,
        }
    }

    /// The archive `archive` on this machine, unpacked into the directory
    /// `dest` on the host: run it with
    /// [`Tunnel::unarchive`](crate::Tunnel::unarchive).
    ///
    /// The archive is sent to the host first, in [`Mode::Check`] too (the
    /// host compares it entry by entry with what `dest` holds): a transient
    /// copy in a new directory only the agent's user can enter, in the
    /// host's temporary directory, never in `dest`, removed after.
    pub fn local(archive: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Unarchive {
        Unarchive {
            local: true,
            ..Unarchive::new(archive, dest)
        }
    }

    /// The most bytes the archive may unpack to (default
    /// [`MAX_UNPACKED`]).
    pub fn max_bytes(mut self, bytes: u64) -> Unarchive {
        self.max_bytes = bytes;
        self
    }

    /// The most entries the archive may have, the directories their paths
    /// imply counted too (default [`MAX_ENTRIES`]).
    pub fn max_entries(mut self, entries: u64) -> Unarchive {
        self.max_entries = entries;
        self
    }

    fn fail(&self, message: impl Into<String>) -> OpError {
        OpError::new(OP, self.dest.display(), message)
    }

    fn shown_archive(&self) -> String {
        self.shown
            .clone()
            .unwrap_or_else(|| self.archive.display().to_string())
    }

    /// What unpacking would change: the archive read whole, every entry
    /// checked and compared with `dest`.
    ///
    /// # Errors
    /// The archive is missing, not one of the formats, damaged, over its
    /// bounds, or has an entry that is refused (see [`Unarchive`]); `dest`
    /// is not a directory.
    pub fn plan(self) -> Result<Plan, OpError> {
        if self.local {
            return Err(self.fail(format!(
                "the archive {} is on the controller: run this with Tunnel::unarchive or \
                 Group::unarchive, which send it first",
                self.archive.display()
            )));
        }
        let scanned = scan::scan(&self)?;
        let shown = format!(
            "{} ({}, {} entries, {} bytes)",
            self.shown_archive(),
            scanned.format,
            scanned.entries,
            scanned.bytes
        );
        if scanned.writes.is_empty() {
            return Ok(Plan::unchanged(format!(
                "{} has the content of {shown}",
                self.dest.display()
            )));
        }
        let summary = format!(
            "unpack {shown} into {}: {} to create, {} to replace",
            self.dest.display(),
            scanned.create,
            scanned.replace
        );
        Ok(Plan::change(summary, None, move |w| {
            unpack::unpack(w, &self, scanned)
        }))
    }
}

/// Unpacks an archive on the host as [`Unarchive`] describes it.
///
/// # Errors
/// [`OpError`] naming `dest` and what to do.
#[remote]
pub fn unarchive(spec: Unarchive, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

owner_options!(Unarchive);

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// An entry of a test archive.
    enum E<'a> {
        /// A file: path, content, mode.
        F(&'a str, &'a [u8], u32),
        D(&'a str),
        /// A symbolic link: path, target.
        L(&'a str, &'a str),
        /// A hard link: path, target, the mode its own header gives.
        H(&'a str, &'a str, u32),
    }
    use E::*;

    /// A fresh directory holding `dest/` and the tar `t.tar` of `entries`.
    fn setup(test: &str, entries: &[E]) -> (PathBuf, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cs-unarchive-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dest")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            let kind = |h: &mut tar::Header, kind, mode| {
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_size(0);
            };
            match *e {
                F(path, data, mode) => {
                    kind(&mut h, tar::EntryType::Regular, mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data).unwrap();
                }
                D(path) => {
                    kind(&mut h, tar::EntryType::Directory, 0o755);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
                L(path, to) => {
                    kind(&mut h, tar::EntryType::Symlink, 0o777);
                    b.append_link(&mut h, path, to).unwrap();
                }
                H(path, to, mode) => {
                    kind(&mut h, tar::EntryType::Link, mode);
                    b.append_link(&mut h, path, to).unwrap();
                }
            }
        }
        let archive = dir.join("t.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        (dir.clone(), archive, dir.join("dest"))
    }

    fn listing(dest: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Check, apply, apply again: check says what apply does and writes
    /// nothing; the second apply changes nothing.
    fn converges(spec: &Unarchive) -> Change {
        let dest = spec.dest.clone();
        let before = listing(&dest);
        let check = spec.clone().plan().unwrap().run(Mode::Check).unwrap();
        assert_eq!(listing(&dest), before, "check wrote into dest");
        let apply = spec.clone().plan().unwrap().run(Mode::Apply).unwrap();
        assert_eq!(check, apply);
        let again = spec.clone().plan().unwrap().run(Mode::Apply).unwrap();
        assert!(
            !again.changed,
            "a second apply changed something: {again:?}"
        );
        apply
    }

    #[test]
    fn entries_that_contradict_each_other_are_refused_before_anything_is_written() {
        let cases: [(&str, &[E], &str); 4] = [
            (
                "link-then-dir",
                &[
                    F("ok", b"x", 0o644),
                    L("a", "/etc"),
                    D("a"),
                    F("a/x", b"x", 0o644),
                ],
                "a is a directory in the archive after a symbolic link",
            ),
            (
                "file-then-dir",
                &[
                    F("ok", b"x", 0o644),
                    F("a", b"x", 0o644),
                    D("a"),
                    F("a/x", b"x", 0o644),
                ],
                "a is a directory in the archive after a file",
            ),
            (
                "dir-then-file",
                &[F("ok", b"x", 0o644), D("a"), F("a", b"x", 0o644)],
                "a is a file in the archive after a directory",
            ),
            (
                "below-a-file",
                &[
                    F("ok", b"x", 0o644),
                    F("a", b"x", 0o644),
                    F("a/x", b"x", 0o644),
                ],
                "a/x goes through the file a the archive makes",
            ),
        ];
        for (test, entries, why) in cases {
            let (dir, archive, dest) = setup(test, entries);
            let e = Unarchive::new(&archive, &dest).plan().unwrap_err();
            assert!(e.message.contains(why), "{test}: {e}");
            assert!(e.message.contains("nothing was written"), "{test}: {e}");
            assert!(listing(&dest).is_empty(), "{test} wrote into dest");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn a_hard_link_is_measured_and_compared_as_it_is_written() {
        let data = [7u8; 600];
        let entries = [F("a", &data, 0o600), H("h", "a", 0o644)];
        let (dir, archive, dest) = setup("hardlink", &entries);
        // Written as a copy: its bytes count toward the bound.
        let e = Unarchive::new(&archive, &dest)
            .max_bytes(1000)
            .plan()
            .unwrap_err();
        assert!(e.message.contains(TOO_LARGE), "{e}");
        let made = converges(&Unarchive::new(&archive, &dest));
        assert!(made.summary.contains("1200 bytes"), "{made:?}");
        let h = std::fs::metadata(dest.join("h")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(h.permissions().mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(dest.join("h")).unwrap(), data);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_name_named_again_is_compared_as_its_last_entry_leaves_it() {
        let entries = [
            F("a", b"one", 0o644),
            F("a", b"two", 0o600),
            L("l", "one"),
            F("l", b"now a file", 0o644),
            F("f", b"was a file", 0o644),
            L("f", "a"),
            D("d"),
            D("d"),
        ];
        let (dir, archive, dest) = setup("twice", &entries);
        let made = converges(&Unarchive::new(&archive, &dest));
        assert!(
            made.summary.contains("4 to create, 0 to replace"),
            "{made:?}"
        );
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"two");
        assert_eq!(std::fs::read(dest.join("l")).unwrap(), b"now a file");
        assert_eq!(std::fs::read_link(dest.join("f")).unwrap(), Path::new("a"));
        // A hard link copies what its file held then: naming the file
        // again after it is refused.
        let (dir2, archive, dest) = setup(
            "twice-linked",
            &[
                F("a", b"one", 0o644),
                H("h", "a", 0o644),
                F("a", b"two", 0o644),
            ],
        );
        let e = Unarchive::new(&archive, &dest).plan().unwrap_err();
        assert!(e.message.contains("named again after a hard link"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(dir2).unwrap();
    }

    #[test]
    fn a_deep_archive_is_bounded() {
        let deep = "d/".repeat(tree::MAX_DEPTH) + "f";
        let long = "n".repeat(300);
        for (test, path, why) in [
            ("deep", deep.as_str(), "directories deep"),
            ("long-name", long.as_str(), "longer than 255"),
        ] {
            let (dir, archive, dest) = setup(test, &[F("ok", b"x", 0o644), F(path, b"x", 0o644)]);
            let e = Unarchive::new(&archive, &dest).plan().unwrap_err();
            assert!(e.message.contains(why), "{test}: {e}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
