//! The filesystems that hold data, from `/proc/self/mountinfo`: without
//! the kernel's pseudo filesystems, the paths a container runtime masks or
//! bind-mounts over single files (`/proc/keys`, `/etc/hosts`), and second
//! views (bind mounts) of a filesystem already listed.

use std::ffi::CString;
use std::io;

use serde::{Deserialize, Serialize};

use crate::remote;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Where it is mounted.
    pub mount: String,
    /// What is mounted (a device, or the filesystem's name).
    pub device: String,
    /// Its type, e.g. `ext4`.
    pub filesystem: String,
    /// Bytes in all.
    pub total: u64,
    /// Bytes free.
    pub free: u64,
    /// Bytes free for an unprivileged user.
    pub available: u64,
}

/// Filesystems that hold no data of their own.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "bpf",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "efivarfs",
    "devtmpfs",
    "ramfs",
    "selinuxfs",
];

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// `major:minor` of the filesystem.
    id: String,
    /// The directory of the filesystem mounted here (`/` unless a bind
    /// mount or a subvolume).
    root: String,
    mount: String,
    filesystem: String,
    device: String,
}

/// Parses a mountinfo line: `ID PARENT MAJ:MIN ROOT MOUNT OPTIONS
/// [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS`.
fn mount_of(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut before = before.split(' ').skip(2);
    let mut after = after.split(' ');
    Some(Mount {
        id: before.next()?.to_owned(),
        root: unescape(before.next()?),
        mount: unescape(before.next()?),
        filesystem: after.next()?.to_owned(),
        device: unescape(after.next()?),
    })
}

/// Whether `path` is `dir` or inside it.
fn within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The mounts that hold data, in mount order: not a pseudo filesystem, not
/// in `/proc` or `/sys` (where runtimes mask paths with empty tmpfs and
/// `/dev/null`), not `/dev` itself, a directory (`is_dir`; a bind-mounted
/// file such as a container's `/etc/hosts` is not a disk), and not a bind
/// mount of part of a filesystem already listed.
fn data_mounts(mounts: Vec<Mount>, is_dir: impl Fn(&str) -> bool) -> Vec<Mount> {
    let mut kept: Vec<Mount> = Vec::new();
    for m in mounts {
        let kernel = within(&m.mount, "/proc") || within(&m.mount, "/sys") || m.mount == "/dev";
        if PSEUDO.contains(&m.filesystem.as_str()) || kernel || !is_dir(&m.mount) {
            continue;
        }
        if kept
            .iter()
            .any(|k| k.id == m.id && within(&m.root, &k.root))
        {
            continue;
        }
        kept.push(m);
    }
    kept
}

/// Unescapes the octal escapes (`\040` for a space) of `/proc/self/mountinfo`.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let code = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(code) = code {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounted filesystems that hold data, with their sizes (`statvfs`).
/// Left out: pseudo filesystems (`proc`, `sysfs`, `cgroup2` ...), anything
/// mounted in `/proc` or `/sys` (the paths a container runtime masks),
/// `/dev`, files bind-mounted over single paths (a container's `/etc/hosts`),
/// bind mounts of part of a filesystem already listed, and filesystems of
/// no size. Two bind mounts of sibling directories of one filesystem that
/// is not itself mounted here (a container's volumes from one host disk)
/// are both listed, each with the whole filesystem's sizes: do not add
/// their sizes up.
///
/// # Errors
/// When `/proc/self/mountinfo` cannot be read.
#[remote]
pub fn disks() -> io::Result<Vec<Disk>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts = text.lines().filter_map(mount_of).collect();
    let is_dir = |path: &str| std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    let mut found = Vec::new();
    for m in data_mounts(mounts, is_dir) {
        let Ok(path) = CString::new(m.mount.clone()) else {
            continue;
        };
        // SAFETY: a valid C string and an out-struct that lives across the call.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
            continue;
        }
        let unit = st.f_frsize as u64;
        found.push(Disk {
            mount: m.mount,
            device: m.device,
            filesystem: m.filesystem,
            total: st.f_blocks as u64 * unit,
            free: st.f_bfree as u64 * unit,
            available: st.f_bavail as u64 * unit,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Docker container's mounts, as `/proc/self/mountinfo` lists them.
    const CONTAINER: &str = "\
1048 870 0:95 / / rw,relatime master:440 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1049 1048 0:98 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1050 1048 0:99 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
1051 1050 0:100 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620
1052 1048 0:101 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1053 1052 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw
1054 1050 0:97 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
1055 1050 0:102 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k,inode64
1056 1048 254:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
1057 1048 254:1 /var/lib/docker/containers/abc/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
1058 1048 254:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
1059 1048 254:1 /srv/volume /data rw,relatime - ext4 /dev/vda rw
871 1049 0:98 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
876 1049 0:99 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
879 1049 0:103 / /proc/acpi ro,relatime - tmpfs tmpfs ro,inode64
881 1052 0:104 / /sys/firmware ro,relatime - tmpfs tmpfs ro,inode64
";

    /// A machine's: btrfs subvolumes, a bind mount of part of one, a
    /// name with a space.
    const MACHINE: &str = "\
22 1 0:35 /@ / rw,relatime shared:1 - btrfs /dev/nvme0n1p2 rw,subvol=/@
23 22 0:35 /@home /home rw,relatime shared:2 - btrfs /dev/nvme0n1p2 rw,subvol=/@home
24 22 259:1 / /boot/efi rw,relatime shared:3 - vfat /dev/nvme0n1p1 rw
25 22 0:35 /@/srv/www /var/www rw,relatime shared:1 - btrfs /dev/nvme0n1p2 rw,subvol=/@
26 22 0:40 / /run rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,size=1620k,mode=755
27 22 8:17 / /mnt/my\\040disk rw,relatime shared:5 - ext4 /dev/sdb1 rw
";

    fn mounts(text: &str, files: &[&str]) -> Vec<String> {
        let mounts = text.lines().filter_map(mount_of).collect();
        data_mounts(mounts, |p| !files.contains(&p))
            .into_iter()
            .map(|m| m.mount)
            .collect()
    }

    #[test]
    fn a_containers_masked_paths_and_bind_mounted_files_are_not_disks() {
        let files = [
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
            "/proc/keys",
        ];
        assert_eq!(mounts(CONTAINER, &files), ["/", "/dev/shm", "/data"]);
    }

    #[test]
    fn subvolumes_are_disks_and_a_second_view_of_one_is_not() {
        assert_eq!(
            mounts(MACHINE, &[]),
            ["/", "/home", "/boot/efi", "/run", "/mnt/my disk"]
        );
        let line = MACHINE.lines().last().and_then(mount_of).unwrap();
        assert_eq!(
            (line.device.as_str(), line.filesystem.as_str()),
            ("/dev/sdb1", "ext4")
        );
    }

    #[test]
    fn mount_fields_are_unescaped() {
        assert_eq!(unescape("/mnt/my\\040disk"), "/mnt/my disk");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
