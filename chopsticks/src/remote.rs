//! The trait `#[remote]` handles implement.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A function marked `#[remote]`: what a call needs to know about it.
///
/// `#[remote]` implements this for the zero-sized handle it makes of the
/// function's name; there is no reason to implement it by hand.
///
/// Calling a function that is not `#[remote]` does not compile:
///
/// ```compile_fail
/// fn plain(x: i64) -> i64 { x }
/// # fn main() -> chopsticks::Result<()> {
/// let t = chopsticks::Tunnel::local()?;
/// t.call(plain, (1,))?; // error: `fn(i64) -> i64 {plain}` is not a remote function
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a remote function",
    label = "not a `#[remote]` function",
    note = "mark the function `#[chopsticks::remote]` to call it on a tunnel; if it is marked, \
            `#[remote]` refused it: see the error at its definition"
)]
pub trait RemoteFn: Copy + Send + Sync + 'static {
    /// The argument tuple: `()`, `(A,)`, `(A, B)` ...
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What a successful call gives: the return type, or `T` for a
    /// `Result<T, E>` return (whose `Err` becomes [`Error::Remote`](crate::Error::Remote)).
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The wire ID: a hash of module path, name and signature.
    const ID: u64;
    /// The function's path, e.g. `my_tool::tasks::uptime`.
    const NAME: &'static str;
}

/// Runs a `#[remote]` function on encoded arguments. Its bounds come from
/// [`RemoteFn`], so a type that cannot cross the wire is reported once, at
/// the `RemoteFn` impl, not again here. Not public API.
#[doc(hidden)]
pub fn invoke<F: RemoteFn>(
    bytes: &[u8],
    body: impl FnOnce(F::Args) -> Result<F::Output, chopsticks_agent::wire::Failure>,
) -> Result<String, chopsticks_agent::wire::Failure> {
    let args = chopsticks_agent::value::decode_args::<F::Args>(bytes)?;
    chopsticks_agent::value::encode_return(&body(args)?)
}
