//! What `#[remote]` refuses, each with a spanned error that says how to fix it.

use quote::ToTokens;
use syn::visit::Visit;

/// Collects every problem with `func`, so the user sees all of them at once.
pub fn check(func: &syn::ItemFn) -> syn::Result<()> {
    let mut errors = Errors(None);
    let sig = &func.sig;
    if let Some(t) = &sig.constness {
        errors.push(t, "`#[remote]` functions cannot be `const`; remove `const`");
    }
    if let Some(t) = &sig.asyncness {
        errors.push(
            t,
            "`#[remote]` functions run on a blocking agent thread; remove `async`",
        );
    }
    if let Some(t) = &sig.unsafety {
        errors.push(
            t,
            "`#[remote]` functions cannot be `unsafe`: a remote caller cannot uphold its contract; \
             make it safe and check its inputs",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            abi,
            "`#[remote]` functions cannot be `extern`; remove the ABI",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        // `Generics` prints only `<...>`: with no parameters, point at `where`.
        let at = if sig.generics.params.is_empty() {
            sig.generics.where_clause.to_token_stream()
        } else {
            sig.generics.to_token_stream()
        };
        errors.push(
            at,
            "`#[remote]` functions cannot be generic: the agent must know the concrete types; \
             write a non-generic wrapper that names them",
        );
    }
    if let Some(v) = &sig.variadic {
        errors.push(v, "`#[remote]` functions cannot be variadic");
    }
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => errors.push(
                r,
                "`#[remote]` works on free functions only; `self` has no meaning on another host, \
                 pass the data it needs as arguments",
            ),
            syn::FnArg::Typed(pt) => {
                match &*pt.pat {
                    syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {}
                    other => errors.push(
                        other,
                        "`#[remote]` arguments must be plain names (`name: Type`); \
                         destructure inside the body",
                    ),
                }
                check_type(&pt.ty, "argument", &mut errors);
            }
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        check_type(ty, "return type", &mut errors);
    }
    errors.finish()
}

/// Rejects references and `impl Trait` anywhere in an argument or return type.
fn check_type(ty: &syn::Type, what: &str, errors: &mut Errors) {
    struct Finder<'a> {
        what: &'a str,
        errors: &'a mut Errors,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            let owned = match &*r.elem {
                syn::Type::Path(p) if p.path.is_ident("str") => "`String`",
                syn::Type::Slice(_) => "a `Vec`",
                syn::Type::Path(p) if p.path.is_ident("Path") => "`PathBuf`",
                _ => "an owned type",
            };
            self.errors.push(
                r,
                format!(
                    "a `#[remote]` {} cannot borrow: it crosses a process boundary; use {owned}",
                    self.what
                ),
            );
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.errors.push(
                t,
                format!(
                    "`impl Trait` cannot be a `#[remote]` {}: the agent must know the concrete \
                     type; name it",
                    self.what
                ),
            );
        }
        fn visit_type_bare_fn(&mut self, t: &'ast syn::TypeBareFn) {
            self.errors.push(
                t,
                format!(
                    "a function pointer cannot be a `#[remote]` {}: it means nothing in another \
                     process",
                    self.what
                ),
            );
        }
    }
    Finder { what, errors }.visit_type(ty);
}

struct Errors(Option<syn::Error>);

impl Errors {
    /// `new_spanned` keeps the first and last token's spans, so on stable
    /// the whole of `&str` or `<T: Ord>` is underlined, not just `&` or `<`.
    fn push(&mut self, at: impl quote::ToTokens, msg: impl std::fmt::Display) {
        let err = syn::Error::new_spanned(at, msg);
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
