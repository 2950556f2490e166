//! Code generation for `#[remote]`: the handle, its `RemoteFn` impl, the
//! agent-side invoker and its registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::args::{RemoteArgs, ReturnKind};

pub fn expand(args: &RemoteArgs, func: syn::ItemFn) -> TokenStream {
    let krate = &args.krate;
    let private = quote!(#krate::__private);
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = &sig.ident;
    let name_str = name.to_string();
    let hidden = format_ident!("__chopsticks_{}", name);

    // Docs describe the handle; `cfg` applies to everything; the rest
    // (`inline`, `allow`, `deprecated`, ...) stays on the body.
    let (docs, rest): (Vec<_>, Vec<_>) = attrs.into_iter().partition(|a| a.path().is_ident("doc"));
    let cfgs: Vec<_> = rest
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect();
    let body_attrs: Vec<_> = rest
        .into_iter()
        .filter(|a| !a.path().is_ident("cfg"))
        .collect();

    let inputs = &sig.inputs;
    let output = &sig.output;
    let arg_types: Vec<&syn::Type> = inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(pt) => Some(&*pt.ty),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let arg_names: Vec<_> = (0..arg_types.len())
        .map(|i| format_ident!("__chopsticks_arg{}", i))
        .collect();
    let ret_ty: syn::Type = match output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let fallible = match args.kind {
        ReturnKind::Fallible => true,
        ReturnKind::Plain => false,
        ReturnKind::Auto => is_result(&ret_ty),
    };
    let output_ty = if fallible {
        quote_spanned!(ret_ty.span()=> <#ret_ty as #private::Fallible>::Ok)
    } else {
        ret_ty.to_token_stream()
    };

    // The wire ID hashes the module path, the name and the signature's tokens:
    // the same source gives the same ID on every target.
    // Whitespace is dropped: how a toolchain spaces tokens (`Vec < u8 >`)
    // must not change the ID.
    let signature: String = format!(
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
    .collect();

    let call = quote!(#hidden(#(#arg_names),*));
    let invoke_body = if fallible {
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
    } else {
        quote!(::core::result::Result::Ok(#call))
    };

    let invoke_call =
        quote!(#private::invoke::<#name>(__chopsticks_bytes, |(#(#arg_names,)*)| #invoke_body));
    let mut args_tuple =
        proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#(#arg_types,)*));
    args_tuple.set_span(sig.paren_token.span.join());
    let fn_ptr = quote!(fn(#(#arg_types),*) #output);
    let call_site = Span::call_site();
    let remote_fn = quote_spanned!(call_site=> #krate::RemoteFn);

    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #vis struct #name;

        #(#cfgs)*
        const _: () = {
            #(#body_attrs)*
            fn #hidden(#inputs) #output #block

            impl ::core::ops::Deref for #name {
                type Target = #fn_ptr;
                fn deref(&self) -> &Self::Target {
                    const LOCAL: #fn_ptr = #hidden;
                    &LOCAL
                }
            }

            impl ::core::clone::Clone for #name {
                fn clone(&self) -> Self {
                    *self
                }
            }

            impl ::core::marker::Copy for #name {}

            impl ::core::fmt::Debug for #name {
                fn fmt(&self, __chopsticks_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    __chopsticks_f.write_str(<Self as #remote_fn>::NAME)
                }
            }

            impl #remote_fn for #name {
                type Args = #args_tuple;
                type Output = #output_ty;
                const ID: u64 = #private::wire_id(::core::concat!(
                    ::core::module_path!(), "::", #name_str, #signature
                ));
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);
            }


            #[allow(clippy::needless_borrow)]
            fn __chopsticks_invoke(
                __chopsticks_bytes: &[u8],
            ) -> ::core::result::Result<::std::string::String, #private::Failure> {
                #invoke_call
            }

            #private::inventory::submit! {
                #private::Registration::new(
                    <#name as #remote_fn>::ID,
                    <#name as #remote_fn>::NAME,
                    __chopsticks_invoke,
                )
            }
        };
    }
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
