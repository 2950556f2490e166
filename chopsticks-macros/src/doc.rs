//! The generated part of a handle's docs: rustdoc shows a unit struct, so
//! the docs show the function's signature and how to call it.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::quote;

/// Whether the handle gets the section: always, except a `pub` function
/// without docs, which `missing_docs` must still flag (on any other
/// visibility that lint never fires, so the section changes nothing there).
fn wanted(vis: &syn::Visibility, docs: &[syn::Attribute]) -> bool {
    let documented = docs
        .iter()
        .any(|a| matches!(a.meta, syn::Meta::NameValue(_)));
    documented || !matches!(vis, syn::Visibility::Public(_))
}

/// The section's lines, each to become one `#[doc = "..."]` after the
/// user's `docs`, with the leading space a `///` line has.
pub fn section(
    sig: &syn::Signature,
    fallible: bool,
    vis: &syn::Visibility,
    docs: &[syn::Attribute],
) -> Vec<String> {
    if !wanted(vis, docs) {
        return Vec::new();
    }
    let name = &sig.ident;
    let names: Vec<String> = sig.inputs.iter().map(arg_name).collect();
    let tuple = match names.len() {
        1 => format!("({},)", names[0]),
        _ => format!("({})", names.join(", ")),
    };
    let err = if fallible {
        "; an `Err` arrives as `chopsticks::Error::Remote`"
    } else {
        ""
    };
    // A blank line ends the user's last paragraph.
    let blank = (!docs.is_empty()).then(String::new);
    let lines = [
        " # Remote function".to_owned(),
        " ```text".to_owned(),
        format!(" {}", signature(sig)),
        " ```".to_owned(),
        format!(
            " Call it on a host with `tunnel.call({name}, {tuple})` (arguments as a tuple{err}), \
             or here with `{name}({})`.",
            names.join(", ")
        ),
    ];
    blank.into_iter().chain(lines).collect()
}

fn arg_name(arg: &syn::FnArg) -> String {
    match arg {
        syn::FnArg::Typed(pt) => match &*pt.pat {
            syn::Pat::Ident(p) => p.ident.to_string(),
            _ => "_".to_owned(),
        },
        syn::FnArg::Receiver(_) => "self".to_owned(),
    }
}

/// `fn name(a: A) -> R` as a person writes it: argument attributes and
/// `mut` left out, spaced the same by every toolchain.
fn signature(sig: &syn::Signature) -> String {
    let name = &sig.ident;
    let inputs = sig.inputs.iter().map(|arg| match arg {
        syn::FnArg::Typed(pt) => {
            let ty = &pt.ty;
            match &*pt.pat {
                syn::Pat::Ident(p) => {
                    let ident = &p.ident;
                    quote!(#ident: #ty)
                }
                pat => quote!(#pat: #ty),
            }
        }
        syn::FnArg::Receiver(r) => quote!(#r),
    });
    let output = &sig.output;
    let mut out = String::new();
    write(&atoms(quote!(fn #name(#(#inputs),*) #output)), &mut out);
    out
}

/// A token as printed: a word (identifier, literal, lifetime), an
/// operator (puncts joined as written: `::`, `->`) or a group.
enum Atom {
    Word(String),
    Op(String),
    Group(Delimiter, Vec<Atom>),
}

fn atoms(tokens: TokenStream) -> Vec<Atom> {
    let mut out = Vec::new();
    let mut op = String::new();
    for tt in tokens {
        if let TokenTree::Punct(p) = &tt {
            op.push(p.as_char());
            if p.spacing() == Spacing::Alone {
                out.push(Atom::Op(std::mem::take(&mut op)));
            }
            continue;
        }
        let tick = op == "'" && matches!(tt, TokenTree::Ident(_));
        if !op.is_empty() && !tick {
            out.push(Atom::Op(std::mem::take(&mut op)));
        }
        out.push(match tt {
            TokenTree::Ident(i) if tick => Atom::Word(format!("{}{i}", std::mem::take(&mut op))),
            TokenTree::Group(g) => Atom::Group(g.delimiter(), atoms(g.stream())),
            other => Atom::Word(other.to_string()),
        });
    }
    if !op.is_empty() {
        out.push(Atom::Op(op));
    }
    out
}

fn write(atoms: &[Atom], out: &mut String) {
    for (i, atom) in atoms.iter().enumerate() {
        if i > 0 && space_between(&atoms[i - 1], atom) {
            out.push(' ');
        }
        match atom {
            Atom::Word(w) | Atom::Op(w) => out.push_str(w),
            Atom::Group(delimiter, inner) => {
                let (open, close) = match delimiter {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write(inner, out);
                out.push_str(close);
            }
        }
    }
}

/// Rustfmt's spacing for what a signature holds: `a: A`, `Vec<u8>`,
/// `(u8,)`, `[u8; 4]`, `&'a mut T`, `<T as Tr>::X`, `-> ::std::R`.
fn space_between(a: &Atom, b: &Atom) -> bool {
    use Atom::{Group, Op, Word};
    match (a, b) {
        (_, Op(o)) if matches!(o.as_str(), "," | ";" | ":" | ">" | ">>") => false,
        (Op(o), _) if matches!(o.as_str(), "<" | "&" | "&&" | "*" | "::") => false,
        (Word(w), Op(o)) if o == "::" => matches!(w.as_str(), "dyn" | "impl" | "as" | "mut"),
        (Op(o), Op(p)) if p == "::" => !matches!(o.as_str(), ">" | ">>"),
        (Group(..), Op(o)) if o == "::" => false,
        (Word(_), Op(o)) if o == "<" || o == "!" => false,
        (Op(o), Group(..)) if o == "!" => false,
        (Word(w), Group(Delimiter::Parenthesis, _)) => {
            matches!(w.as_str(), "dyn" | "impl" | "as" | "mut")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(src: &str) -> syn::Signature {
        syn::parse_str(src).unwrap()
    }

    #[test]
    fn signatures_read_as_written() {
        for (src, shown) in [
            ("fn uptime() -> io::Result<String>", "fn uptime() -> io::Result<String>"),
            ("fn add(a: i64, b: i64) -> i64", "fn add(a: i64, b: i64) -> i64"),
            ("fn unit(x : u8)", "fn unit(x: u8)"),
            (
                "fn f(#[allow(unused)] mut xs: Vec<Vec<u8>>, p: (u8,), a: [u8; 4]) -> ::std::io::Result<()>",
                "fn f(xs: Vec<Vec<u8>>, p: (u8,), a: [u8; 4]) -> ::std::io::Result<()>",
            ),
            (
                "fn g(m: std::collections::HashMap<String, Option<(u8, String)>>) -> Cow<'static, str>",
                "fn g(m: std::collections::HashMap<String, Option<(u8, String)>>) -> Cow<'static, str>",
            ),
            (
                "fn h(x: <T as Tr>::X) -> Result<(), Box<dyn std::error::Error + Send + Sync>>",
                "fn h(x: <T as Tr>::X) -> Result<(), Box<dyn std::error::Error + Send + Sync>>",
            ),
            ("fn n() -> !", "fn n() -> !"),
        ] {
            assert_eq!(signature(&sig(src)), shown);
        }
    }

    #[test]
    fn the_call_matches_the_arity() {
        for (src, call, local) in [
            (
                "fn uptime() -> u8",
                "`tunnel.call(uptime, ())`",
                "`uptime()`",
            ),
            (
                "fn user(name: String)",
                "`tunnel.call(user, (name,))`",
                "`user(name)`",
            ),
            (
                "fn add(a: u8, b: u8)",
                "`tunnel.call(add, (a, b))`",
                "`add(a, b)`",
            ),
        ] {
            let lines = section(&sig(src), false, &syn::Visibility::Inherited, &[]);
            assert_eq!(lines[0], " # Remote function");
            let last = lines.last().unwrap();
            assert!(last.contains(call), "{last}");
            assert!(last.ends_with(&format!("or here with {local}.")), "{last}");
            assert!(!last.contains("Err"), "{last}");
        }
        let lines = section(&sig("fn f() -> u8"), true, &syn::Visibility::Inherited, &[]);
        let last = lines.last().unwrap();
        assert!(last.contains("`chopsticks::Error::Remote`"), "{last}");
    }

    #[test]
    fn undocumented_pub_functions_stay_undocumented() {
        let doc: syn::Attribute = syn::parse_quote!(#[doc = " Up."]);
        let hidden: syn::Attribute = syn::parse_quote!(#[doc(hidden)]);
        let public: syn::Visibility = syn::parse_quote!(pub);
        let krate: syn::Visibility = syn::parse_quote!(pub(crate));
        assert!(wanted(&public, std::slice::from_ref(&doc)));
        assert!(!wanted(&public, &[]));
        assert!(!wanted(&public, &[hidden]));
        assert!(wanted(&krate, &[]));
        assert!(wanted(&syn::Visibility::Inherited, &[]));
    }
}
