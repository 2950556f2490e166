//! Users and groups as the system's databases know them (NSS: local
//! files, LDAP, whatever the host is set up with).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

/// A user's IDs and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The largest buffer a lookup grows to: an entry with more than this
/// (a group with tens of thousands of members) is an error, not an
/// allocation without end.
const MAX_BUFFER: usize = 1 << 20;

/// Calls `lookup` with a buffer that grows while the entry does not fit.
fn with_buffer<T>(mut lookup: impl FnMut(&mut [u8]) -> Result<T, libc::c_int>) -> io::Result<T> {
    let mut size = 16 << 10;
    loop {
        let mut buf = vec![0u8; size];
        match lookup(&mut buf) {
            Err(libc::ERANGE) if size < MAX_BUFFER => size *= 4,
            Err(rc) => return Err(io::Error::from_raw_os_error(rc)),
            Ok(found) => return Ok(found),
        }
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))
}

/// The user `name`'s account; `None` when there is none.
pub(crate) fn user(name: &str) -> io::Result<Option<Account>> {
    let c = c_name(name)?;
    with_buffer(|buf| {
        // SAFETY: the out-structs and buffer live across the call; the
        // result pointer and the strings are only read when an entry was
        // found, while the buffer lives.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut found = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            );
            if rc != 0 {
                return Err(rc);
            }
            if found.is_null() {
                return Ok(None);
            }
            let home = match pw.pw_dir.is_null() {
                true => PathBuf::new(),
                false => {
                    let home = std::ffi::CStr::from_ptr(pw.pw_dir).to_bytes();
                    PathBuf::from(std::ffi::OsStr::from_bytes(home))
                }
            };
            Ok(Some(Account {
                uid: pw.pw_uid,
                gid: pw.pw_gid,
                home,
            }))
        }
    })
}

/// The group `name`'s ID; `None` when there is none.
pub(crate) fn group_id(name: &str) -> io::Result<Option<u32>> {
    let c = c_name(name)?;
    with_buffer(|buf| {
        // SAFETY: as in `user`.
        unsafe {
            let mut gr: libc::group = std::mem::zeroed();
            let mut found = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                c.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            );
            if rc != 0 {
                return Err(rc);
            }
            Ok((!found.is_null()).then_some(gr.gr_gid))
        }
    })
}

/// A user or group by name or number.
///
/// # Errors
/// `NotFound` naming it when there is no such name.
pub(crate) fn resolve(name: &str, group: bool) -> io::Result<u32> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    let found = match group {
        true => group_id(name)?,
        false => user(name)?.map(|a| a.uid),
    };
    found.ok_or_else(|| {
        let what = if group { "group" } else { "user" };
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("there is no {what} `{name}` on this host"),
        )
    })
}
