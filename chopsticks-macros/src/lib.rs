//! Procedural macros for [chopsticks](https://docs.rs/chopsticks).
//!
//! Use them through the `chopsticks` crate: `#[chopsticks::remote]` and
//! `#[chopsticks::main]`. The generated code only touches
//! `::chopsticks::__private`, which is not public API.

#![warn(missing_docs)]

mod args;
mod check;
mod doc;
mod expand;
mod main_attr;

use proc_macro::TokenStream;

/// Makes a free, synchronous function callable on remote hosts.
///
/// ```ignore
/// #[chopsticks::remote]
/// pub fn uptime() -> std::io::Result<String> {
///     std::fs::read_to_string("/proc/uptime")
/// }
/// // uptime() still runs locally; tunnel.call(uptime, ()) runs it on the
/// // tunnel's host and gives chopsticks::Result<String>.
/// ```
///
/// The function's name becomes a zero-sized handle (a unit struct with the
/// function's visibility and docs) that derefs to the function, so local
/// calls work unchanged, and implements `chopsticks::RemoteFn`. Its docs end
/// with a "Remote function" section that shows the signature and how to
/// call it (left out on a `pub` function without docs, so `missing_docs`
/// still says so). Arguments and the return value must be
/// `Serialize + DeserializeOwned`; a return type whose last path segment is
/// `Result` is fallible (`Err(e)` arrives as a remote error with `e`'s
/// message and sources).
///
/// Arguments:
/// - `fallible`: the return type is a `Result` alias with another name;
/// - `plain`: a type named `Result` that is not fallible;
/// - `crate = path`: where the `chopsticks` crate is, when renamed.
///
/// Refused, each with an error that says what to do: `async`, generics,
/// `self`, `impl Trait` or borrowed arguments and returns, patterns as
/// arguments, `unsafe`, `extern`, `const` and variadic functions.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    match remote_impl(attr.into(), item2.clone()) {
        Ok(tokens) => tokens.into(),
        // Still emit the user's function, so the rest of the crate type-checks
        // and the IDE keeps working; the error points at the mistake.
        Err(err) => {
            let err = err.to_compile_error();
            quote::quote!(#item2 #err).into()
        }
    }
}

fn remote_impl(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args = args::RemoteArgs::parse(attr)?;
    let func: syn::ItemFn = syn::parse2(item)?;
    check::check(&func)?;
    Ok(expand::expand(&args, func))
}

/// Makes `main` serve as an agent, and exit, when the program was started as
/// one; otherwise `main` runs as written.
///
/// ```ignore
/// #[chopsticks::main]
/// fn main() -> chopsticks::Result<()> {
///     let t = chopsticks::Tunnel::local()?;
///     Ok(())
/// }
/// ```
///
/// It inserts `chopsticks::agent::run_if_requested();` as the first
/// statement (`#[chopsticks::main(crate = path)]` when chopsticks is
/// renamed). Any signature `main` may have is kept.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.clone().into();
    match main_attr::expand(attr.into(), item2.clone()) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let err = err.to_compile_error();
            quote::quote!(#item2 #err).into()
        }
    }
}
