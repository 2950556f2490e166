//! `#[chopsticks::main]`: enter agent mode before anything else runs.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut krate: syn::Path = syn::parse_quote!(::chopsticks);
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let value = meta.value()?;
            krate = match value.parse::<syn::LitStr>() {
                Ok(lit) => lit.parse()?,
                Err(_) => value.parse()?,
            };
            Ok(())
        } else {
            Err(meta.error("unknown `#[chopsticks::main]` argument; expected `crate = path`"))
        }
    });
    parser.parse2(attr)?;
    let mut func: syn::ItemFn = syn::parse2(item)?;
    if !func.sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &func.sig.inputs,
            "`#[chopsticks::main]` goes on `main`, which takes no arguments",
        ));
    }
    let entry: syn::Block = syn::parse2(quote! {{
        #krate::__private::inventory::submit! {
            #krate::__private::EntryPoint::new()
        }
        #krate::agent::run_if_requested();
    }})?;
    for (i, stmt) in entry.stmts.into_iter().enumerate() {
        func.block.stmts.insert(i, stmt);
    }
    Ok(quote!(#func))
}
