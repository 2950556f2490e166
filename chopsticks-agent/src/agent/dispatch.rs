//! Running one call: look the function up, run it under `catch_unwind`,
//! and turn a panic into a [`Failure`] with its message and location.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use crate::registry::Registry;
use crate::wire::Failure;

/// Runs function `fn_id` on the encoded `args`.
pub(crate) fn dispatch(registry: &Registry, fn_id: u64, args: &[u8]) -> Result<String, Failure> {
    let Some(function) = registry.lookup(fn_id) else {
        return Err(Failure::UnknownFunction { fn_id });
    };
    IN_CALL.with(|c| *c.borrow_mut() = Some(None));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| function.invoke(args)));
    let captured = IN_CALL.with(|c| c.borrow_mut().take()).flatten();
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let (message, location) = captured.unwrap_or_else(|| (panic_message(&*payload), None));
            Err(Failure::Panic { message, location })
        }
    }
}

/// A panic's message and `file:line:column`.
type PanicInfo = (String, Option<String>);

thread_local! {
    /// `Some` while a call runs on this thread; the panic hook stores the
    /// message and location there instead of printing them.
    static IN_CALL: RefCell<Option<Option<PanicInfo>>> = const { RefCell::new(None) };
}

/// Captures panics of calls (the default hook still reports all others).
pub(crate) fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // Replies held for finished calls go out first: with `panic =
        // "abort"` nothing runs after this hook.
        super::output::release_on_panic();
        let captured = IN_CALL.with(|c| match &mut *c.borrow_mut() {
            Some(slot) => {
                let location = info.location().map(|l| l.to_string());
                *slot = Some((panic_message(info.payload()), location));
                true
            }
            None => false,
        });
        if !captured {
            default(info);
        }
    }));
}

/// The message of a panic payload (`panic!`'s text), for reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
