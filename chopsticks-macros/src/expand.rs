//! Code generation for `#[remote]`: the handle, its `RemoteFn` impl, the
//! agent-side invoker and its registration, one function per generated item.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::args::{RemoteArgs, ReturnKind};

pub fn expand(args: &RemoteArgs, func: syn::ItemFn) -> TokenStream {
    let remote = Remote::new(args, func);
    let cfgs = &remote.cfgs;
    let items = [
        remote.body(),
        remote.deref(),
        remote.copy(),
        remote.debug(),
        remote.remote_fn(),
        remote.invoker(),
        remote.registration(),
    ];
    let handle = remote.handle();
    quote! {
        #handle

        #(#cfgs)*
        const _: () = {
            #(#items)*
        };
    }
}

/// What the generated items are made of: the user's function, taken apart.
struct Remote {
    /// `#krate::__private`.
    private: TokenStream,
    /// `#krate::RemoteFn`.
    remote_fn: TokenStream,
    name: syn::Ident,
    /// The body's name, `__chopsticks_<name>`.
    hidden: syn::Ident,
    vis: syn::Visibility,
    /// Docs describe the handle; `cfg` applies to everything; the rest
    /// (`inline`, `allow`, `deprecated`, ...) stays on the body.
    docs: Vec<syn::Attribute>,
    cfgs: Vec<syn::Attribute>,
    body_attrs: Vec<syn::Attribute>,
    sig: syn::Signature,
    block: Box<syn::Block>,
    arg_types: Vec<syn::Type>,
    /// `__chopsticks_arg0`, ...: the invoker's names for the arguments.
    arg_names: Vec<syn::Ident>,
    /// The return type, `()` when none is written.
    ret_ty: syn::Type,
    fallible: bool,
}

impl Remote {
    fn new(args: &RemoteArgs, func: syn::ItemFn) -> Self {
        let krate = &args.krate;
        let syn::ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = func;
        let (docs, rest): (Vec<_>, Vec<_>) =
            attrs.into_iter().partition(|a| a.path().is_ident("doc"));
        let (cfgs, body_attrs): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|a| a.path().is_ident("cfg"));
        let arg_types: Vec<syn::Type> = sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                syn::FnArg::Typed(pt) => Some((*pt.ty).clone()),
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        let arg_names = (0..arg_types.len())
            .map(|i| format_ident!("__chopsticks_arg{}", i))
            .collect();
        let ret_ty: syn::Type = match &sig.output {
            syn::ReturnType::Default => syn::parse_quote!(()),
            syn::ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let fallible = match args.kind {
            ReturnKind::Fallible => true,
            ReturnKind::Plain => false,
            ReturnKind::Auto => is_result(&ret_ty),
        };
        let call_site = Span::call_site();
        Remote {
            private: quote!(#krate::__private),
            remote_fn: quote_spanned!(call_site=> #krate::RemoteFn),
            name: sig.ident.clone(),
            hidden: format_ident!("__chopsticks_{}", sig.ident),
            vis,
            docs,
            cfgs,
            body_attrs,
            sig,
            block,
            arg_types,
            arg_names,
            ret_ty,
            fallible,
        }
    }

    /// The unit struct that takes the function's name, with its docs and
    /// a generated section that shows the signature.
    fn handle(&self) -> TokenStream {
        let Remote {
            name,
            vis,
            docs,
            cfgs,
            ..
        } = self;
        let section = crate::doc::section(&self.sig, self.fallible, vis, docs);
        quote! {
            #(#docs)*
            #(#[doc = #section])*
            #(#cfgs)*
            #[allow(non_camel_case_types)]
            #vis struct #name;
        }
    }

    /// The user's function, renamed, with its other attributes.
    fn body(&self) -> TokenStream {
        let Remote {
            hidden,
            body_attrs,
            block,
            ..
        } = self;
        let (inputs, output) = (&self.sig.inputs, &self.sig.output);
        quote! {
            #(#body_attrs)*
            fn #hidden(#inputs) #output #block
        }
    }

    /// `Deref` to the function pointer, so `name(..)` still runs locally.
    fn deref(&self) -> TokenStream {
        let Remote { name, hidden, .. } = self;
        let fn_ptr = self.fn_ptr();
        quote! {
            impl ::core::ops::Deref for #name {
                type Target = #fn_ptr;
                fn deref(&self) -> &Self::Target {
                    const LOCAL: #fn_ptr = #hidden;
                    &LOCAL
                }
            }
        }
    }

    /// `fn(A, B) -> R`, the handle's deref target.
    fn fn_ptr(&self) -> TokenStream {
        let (arg_types, output) = (&self.arg_types, &self.sig.output);
        quote!(fn(#(#arg_types),*) #output)
    }

    fn copy(&self) -> TokenStream {
        let name = &self.name;
        quote! {
            impl ::core::clone::Clone for #name {
                fn clone(&self) -> Self {
                    *self
                }
            }

            impl ::core::marker::Copy for #name {}
        }
    }

    /// `Debug` prints the function's path.
    fn debug(&self) -> TokenStream {
        let Remote {
            name, remote_fn, ..
        } = self;
        quote! {
            impl ::core::fmt::Debug for #name {
                fn fmt(&self, __chopsticks_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    __chopsticks_f.write_str(<Self as #remote_fn>::NAME)
                }
            }
        }
    }

    /// `RemoteFn`: the argument tuple, the output, the wire ID and the name.
    fn remote_fn(&self) -> TokenStream {
        let Remote {
            private,
            remote_fn,
            name,
            arg_types,
            ret_ty,
            ..
        } = self;
        let name_str = name.to_string();
        // A wrong tuple is reported on the function's parentheses.
        let mut args_tuple =
            proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#(#arg_types,)*));
        args_tuple.set_span(self.sig.paren_token.span.join());
        let output_ty = if self.fallible {
            quote_spanned!(ret_ty.span()=> <#ret_ty as #private::Fallible>::Ok)
        } else {
            ret_ty.to_token_stream()
        };
        let signature = wire_signature(arg_types, ret_ty);
        quote! {
            impl #remote_fn for #name {
                type Args = #args_tuple;
                type Output = #output_ty;
                const ID: u64 = #private::wire_id(::core::concat!(
                    ::core::module_path!(), "::", #name_str, #signature
                ));
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);
            }
        }
    }

    /// What the agent runs: decode the arguments, call, encode the result.
    fn invoker(&self) -> TokenStream {
        let Remote {
            private,
            name,
            arg_names,
            ..
        } = self;
        let invoke_body = self.invoke_body();
        let invoke_call =
            quote!(#private::invoke::<#name>(__chopsticks_bytes, |(#(#arg_names,)*)| #invoke_body));
        quote! {
            #[allow(clippy::needless_borrow)]
            fn __chopsticks_invoke(
                __chopsticks_bytes: &[u8],
            ) -> ::core::result::Result<::std::string::String, #private::Failure> {
                #invoke_call
            }
        }
    }

    /// The call of the body, its `Err` turned into a remote failure.
    fn invoke_body(&self) -> TokenStream {
        let Remote {
            private,
            hidden,
            arg_names,
            ret_ty,
            ..
        } = self;
        let call = quote!(#hidden(#(#arg_names),*));
        if !self.fallible {
            return quote!(::core::result::Result::Ok(#call));
        }
        let into_result = quote_spanned!(ret_ty.span()=> #private::Fallible::into_result(#call));
        quote! {
            match #into_result {
                ::core::result::Result::Ok(__chopsticks_value) => {
                    ::core::result::Result::Ok(__chopsticks_value)
                }
                ::core::result::Result::Err(__chopsticks_error) => {
                    #[allow(unused_imports)]
                    use #private::{ViaDisplay as _, ViaError as _};
                    ::core::result::Result::Err(
                        (&#private::ErrWrap(&__chopsticks_error)).remote_failure(),
                    )
                }
            }
        }
    }

    /// The invoker's entry in the agent's registry.
    fn registration(&self) -> TokenStream {
        let Remote {
            private,
            remote_fn,
            name,
            ..
        } = self;
        quote! {
            #private::inventory::submit! {
                #private::Registration::new(
                    <#name as #remote_fn>::ID,
                    <#name as #remote_fn>::NAME,
                    __chopsticks_invoke,
                )
            }
        }
    }
}

/// What the wire ID hashes besides the path: `(A,B)->R`, whitespace
/// dropped, so the same source gives the same ID on every target however a
/// toolchain spaces tokens (`Vec < u8 >`).
fn wire_signature(arg_types: &[syn::Type], ret_ty: &syn::Type) -> String {
    format!(
        "({}) -> {}",
        arg_types
            .iter()
            .map(|t| t.to_token_stream().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        ret_ty.to_token_stream()
    )
    .chars()
    .filter(|c| !c.is_whitespace())
    .collect()
}

/// A return type is fallible when its last path segment is `Result`
/// (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>` ...).
fn is_result(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|seg| seg.ident == "Result"),
        syn::Type::Group(g) => is_result(&g.elem),
        syn::Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The doc lines of the handle `#[remote] <src>` expands to.
    fn handle_docs(src: &str) -> Vec<String> {
        let args = RemoteArgs::parse(TokenStream::new()).unwrap();
        let file: syn::File = syn::parse2(expand(&args, syn::parse_str(src).unwrap())).unwrap();
        let handle = file.items.iter().find_map(|item| match item {
            syn::Item::Struct(s) => Some(s),
            _ => None,
        });
        let docs = handle.unwrap().attrs.iter().filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        docs.collect()
    }

    #[test]
    fn the_handle_shows_the_signature_after_the_users_docs() {
        let docs = handle_docs(
            "/// The host's uptime.\npub fn uptime() -> io::Result<String> { todo!() }",
        );
        assert_eq!(docs[0], " The host's uptime.");
        let text = docs.join("\n");
        assert!(
            text.contains(
                " # Remote function\n ```text\n fn uptime() -> io::Result<String>\n ```\n"
            ),
            "{text}"
        );
        assert!(text.contains("`tunnel.call(uptime, ())`"), "{text}");
    }

    #[test]
    fn an_undocumented_pub_handle_is_left_to_missing_docs() {
        assert!(handle_docs("pub fn f(a: u8) -> u8 { a }").is_empty());
        let private = handle_docs("fn f(a: u8) -> u8 { a }").join("\n");
        assert!(private.contains(" fn f(a: u8) -> u8\n"), "{private}");
    }
}
