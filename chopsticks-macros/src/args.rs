//! Parsing of `#[remote(...)]` arguments.

use proc_macro2::TokenStream;
use syn::parse::Parser;

/// How the return type is treated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReturnKind {
    /// Decide from the last path segment (`Result` means fallible).
    Auto,
    /// `#[remote(fallible)]`: the return type is a `Result` alias.
    Fallible,
    /// `#[remote(plain)]`: the return type is returned as it is.
    Plain,
}

/// The parsed `#[remote(...)]` arguments.
pub struct RemoteArgs {
    /// The path of the chopsticks crate (`crate = path`), `::chopsticks` by default.
    pub krate: syn::Path,
    pub kind: ReturnKind,
}

impl RemoteArgs {
    pub fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut krate: Option<syn::Path> = None;
        let mut kind = ReturnKind::Auto;
        let mut kind_span: Option<proc_macro2::Span> = None;
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("crate") {
                if krate.is_some() {
                    return Err(meta.error("`crate` is given twice"));
                }
                let value = meta.value()?;
                krate = Some(match value.parse::<syn::LitStr>() {
                    Ok(lit) => lit.parse()?,
                    Err(_) => value.parse()?,
                });
                Ok(())
            } else if meta.path.is_ident("fallible") || meta.path.is_ident("plain") {
                if let Some(_first) = kind_span {
                    return Err(meta.error(
                        "give at most one of `fallible` and `plain`: `fallible` marks a `Result` \
                         alias, `plain` returns the value as it is",
                    ));
                }
                kind_span = Some(meta.path.segments[0].ident.span());
                kind = if meta.path.is_ident("fallible") {
                    ReturnKind::Fallible
                } else {
                    ReturnKind::Plain
                };
                Ok(())
            } else {
                Err(meta.error(
                    "unknown `#[remote]` argument; expected `crate = path`, `fallible` or `plain`",
                ))
            }
        });
        parser.parse2(attr)?;
        Ok(RemoteArgs {
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::chopsticks)),
            kind,
        })
    }
}
