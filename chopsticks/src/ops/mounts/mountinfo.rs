//! What is mounted, as the kernel lists it in `/proc/self/mountinfo`
//! (proc(5)): one mount a line, `ID PARENT MAJ:MIN ROOT MOUNT-POINT
//! OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS`, with space, tab,
//! newline and backslash in a field written as octal escapes.

use std::io::Read as _;

use super::fstab::unescape;

/// Where the kernel lists this process's mounts.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The most of it read: some 50,000 mounts.
const MAX_MOUNTINFO: u64 = 16 << 20;

/// A filesystem mounted on a mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mounted {
    pub fstype: String,
    pub source: String,
    /// The mount's options and the filesystem's, joined with a comma.
    pub options: String,
}

/// The text of `/proc/self/mountinfo`, within [`MAX_MOUNTINFO`].
pub(super) fn read() -> Result<String, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(MOUNTINFO)
        .and_then(|f| f.take(MAX_MOUNTINFO + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {MOUNTINFO}: {}", crate::files::describe(&e)))?;
    if bytes.len() as u64 > MAX_MOUNTINFO {
        return Err(format!(
            "{MOUNTINFO} is longer than {} MiB, more mounts than ops::mount looks through",
            MAX_MOUNTINFO >> 20
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The filesystems of `mountinfo` mounted on `path` (exactly: the kernel
/// lists mount points by their real path), the one mounted last (on top)
/// last.
pub(super) fn mounted_on(mountinfo: &str, path: &[u8]) -> Vec<Mounted> {
    let shown = |f: &str| String::from_utf8_lossy(&unescape(f)).into_owned();
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().skip(6).position(|f| *f == "-") else {
            continue;
        };
        let (Some(point), Some(&[fstype, source, ref rest @ ..])) =
            (fields.get(4), fields.get(6 + dash + 1..))
        else {
            continue;
        };
        if unescape(point) != path {
            continue;
        }
        let super_options = rest.first().copied().unwrap_or("");
        found.push(Mounted {
            fstype: shown(fstype),
            source: shown(source),
            options: format!("{},{}", shown(fields[5]), shown(super_options)),
        });
    }
    found
}

/// The mount points of `mountinfo` below `path` (inside it, not on it),
/// as text, each once, in the kernel's order.
pub(super) fn below(mountinfo: &str, path: &str) -> Vec<String> {
    let prefix = match path {
        "/" => "/".to_owned(),
        _ => format!("{path}/"),
    };
    let mut found: Vec<String> = Vec::new();
    for line in mountinfo.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        let point = String::from_utf8_lossy(&unescape(point)).into_owned();
        if point.len() > prefix.len() && point.starts_with(&prefix) && !found.contains(&point) {
            found.push(point);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u
36 22 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue
1423 22 0:408 / /mnt/a\\040b\\011c rw,relatime - tmpfs my\\040src rw,size=1024k
1424 1423 0:409 / /mnt/a\\040b\\011c rw,nosuid - tmpfs second rw,size=2048k
1500 22 0:410 / /mnt/bad rw
";

    #[test]
    fn mounts_are_found_by_their_decoded_mount_point() {
        let stacked = mounted_on(SAMPLE, b"/mnt/a b\tc");
        assert_eq!(
            stacked,
            [
                Mounted {
                    fstype: "tmpfs".into(),
                    source: "my src".into(),
                    options: "rw,relatime,rw,size=1024k".into(),
                },
                Mounted {
                    fstype: "tmpfs".into(),
                    source: "second".into(),
                    options: "rw,nosuid,rw,size=2048k".into(),
                },
            ]
        );
        let parent = mounted_on(SAMPLE, b"/mnt/parent");
        assert_eq!(parent.len(), 1);
        assert_eq!(
            (parent[0].fstype.as_str(), parent[0].source.as_str()),
            ("ext3", "/dev/root")
        );
        assert_eq!(mounted_on(SAMPLE, b"/").len(), 1);
        assert!(mounted_on(SAMPLE, b"/mnt").is_empty());
        assert!(mounted_on(SAMPLE, b"/mnt/a b").is_empty());
        // A line without its separator is no mount.
        assert!(mounted_on(SAMPLE, b"/mnt/bad").is_empty());
    }

    #[test]
    fn mounts_below_a_path_are_named() {
        assert_eq!(
            below(SAMPLE, "/mnt"),
            ["/mnt/parent", "/mnt/a b\tc", "/mnt/bad"]
        );
        assert!(below(SAMPLE, "/mnt/parent").is_empty());
        assert!(below(SAMPLE, "/mnt/a b").is_empty());
    }

    #[test]
    fn this_process_mountinfo_is_read() {
        let text = read().unwrap();
        assert!(!mounted_on(&text, b"/").is_empty(), "{text}");
    }
}
