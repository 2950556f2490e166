//! Keyed digests of the content operations write ([`Change::digest`]):
//! what compares a reviewed plan's content with the content an apply
//! writes when there is no diff to compare (secret content, binary or
//! too large to diff, a diff cut short), without revealing it. The key is
//! the controller's, set on the agent by [`set_digest_key`]; without one,
//! operations make no digest.
//!
//! [`Change::digest`]: super::Change::digest

use std::sync::Mutex;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::remote;

/// The key of this agent's digests, when its controller set one.
static KEY: Mutex<Option<[u8; 32]>> = Mutex::new(None);

/// Sets the key of the content digests this agent's operations make from
/// now on ([`Change::digest`](super::Change::digest): HMAC-SHA256 of the
/// content with `key`). Call it once on a tunnel before the operations
/// whose content you compare between two runs (the kit's `--save-plan`
/// and `--apply-plan` do), with the same key both times; keep the key
/// private, as with it a digest of short secret content can be guessed
/// by trying.
///
/// ```no_run
/// # use chopsticks::{ops, Tunnel};
/// # fn main() -> chopsticks::Result<()> {
/// let t = Tunnel::ssh("web1")?;
/// let key = [7u8; 32]; // your own, random, kept private
/// t.call(ops::set_digest_key, (key,))?;
/// let change = t.call(ops::file, (ops::File::new("/etc/app.key").content("s3cret").secret(),
///     ops::Mode::Check))?;
/// assert!(change.digest.is_some());
/// # Ok(()) }
/// ```
#[remote]
pub fn set_digest_key(key: [u8; 32]) {
    if let Ok(mut slot) = KEY.lock() {
        *slot = Some(key);
    }
}

/// The digest of `content` with this agent's key, hex; `None` without a
/// key.
pub(crate) fn of(content: &[u8]) -> Option<String> {
    let key = (*KEY.lock().ok()?)?;
    keyed(&key, content)
}

/// HMAC-SHA256 of `content` with `key`, hex.
fn keyed(key: &[u8], content: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(content);
    Some(crate::files::hex(&mac.finalize().into_bytes().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231's test cases 1 and 2. (The agent's key is not set here:
    /// other tests of this process plan operations meanwhile.)
    #[test]
    fn digests_are_hmac_sha256() {
        assert_eq!(
            keyed(&[0x0b; 20], b"Hi There").as_deref(),
            Some("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        // A 20-byte key padded with zeros to 32 is the same HMAC key.
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(keyed(&key, b"Hi There"), keyed(&[0x0b; 20], b"Hi There"));
        assert_eq!(
            keyed(b"Jefe", b"what do ya want for nothing?").as_deref(),
            Some("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }
}
