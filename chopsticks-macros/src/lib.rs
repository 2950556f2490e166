//! Procedural macros for [chopsticks](https://docs.rs/chopsticks).
//!
//! Use them through the `chopsticks` crate: `#[chopsticks::remote]` and
//! `#[chopsticks::main]`. The generated code only touches
//! `::chopsticks::__private`, which is not public API.

#![warn(missing_docs)]

mod args;
mod check;
mod expand;
mod main_attr;

use proc_macro::TokenStream;

/// Makes a function callable on remote hosts; see `chopsticks::remote`.
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

/// Makes `main` enter agent mode when started as an agent; see `chopsticks::main`.
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
