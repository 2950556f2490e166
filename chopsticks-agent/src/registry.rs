//! The table of `#[remote]` functions linked into this binary.
//!
//! Every `#[remote]` function submits a [`Registration`] to an `inventory`
//! collection; the table is built once, on first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use crate::wire::Failure;

/// The agent-side entry point of one function: decodes the postcard-encoded
/// argument tuple, runs the function and encodes its return value as JSON.
pub type Invoker = fn(&[u8]) -> Result<String, Failure>;

/// One `#[remote]` function, as registered by the code `#[remote]` generates.
pub struct Registration {
    id: u64,
    name: &'static str,
    invoke: Invoker,
}

impl Registration {
    /// Describes a function; used by generated code only.
    #[doc(hidden)]
    pub const fn new(id: u64, name: &'static str, invoke: Invoker) -> Self {
        Registration { id, name, invoke }
    }

    /// The wire ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The function's path, e.g. `my_tool::tasks::uptime`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the function on encoded arguments.
    pub fn invoke(&self, args: &[u8]) -> Result<String, Failure> {
        (self.invoke)(args)
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &format_args!("{:016x}", self.id))
            .field("name", &self.name)
            .finish()
    }
}

inventory::collect!(Registration);

/// The registry of this binary: every linked `#[remote]` function by wire ID.
#[derive(Debug)]
pub struct Registry {
    by_id: HashMap<u64, &'static Registration>,
    fingerprint: u64,
}

/// Two functions with the same wire ID: the registry cannot be built.
#[derive(Debug, Clone)]
pub struct RegistryError {
    /// The wire ID both functions have.
    pub id: u64,
    /// The first function's path.
    pub first: &'static str,
    /// The second function's path.
    pub second: &'static str,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "two #[remote] functions have the same wire ID {:016x}: `{}` and `{}`; \
             is the same crate linked twice in two versions? rename one of them",
            self.id, self.first, self.second
        )
    }
}

impl std::error::Error for RegistryError {}

impl Registry {
    /// The registry of this binary, built on first use.
    ///
    /// # Errors
    /// When two linked functions have the same wire ID.
    pub fn get() -> Result<&'static Registry, RegistryError> {
        static REGISTRY: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        REGISTRY
            .get_or_init(|| Registry::build(inventory::iter::<Registration>))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build<'a>(
        items: impl IntoIterator<Item = &'static Registration> + 'a,
    ) -> Result<Registry, RegistryError> {
        let mut by_id: HashMap<u64, &'static Registration> = HashMap::new();
        for reg in items {
            if let Some(prev) = by_id.insert(reg.id, reg) {
                let (first, second) = if prev.name <= reg.name {
                    (prev.name, reg.name)
                } else {
                    (reg.name, prev.name)
                };
                return Err(RegistryError {
                    id: reg.id,
                    first,
                    second,
                });
            }
        }
        let mut ids: Vec<u64> = by_id.keys().copied().collect();
        ids.sort_unstable();
        let mut bytes = Vec::with_capacity(ids.len() * 8);
        for id in &ids {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        Ok(Registry {
            fingerprint: crate::contract::fnv1a64(&bytes),
            by_id,
        })
    }

    /// Looks a function up by wire ID.
    pub fn lookup(&self, id: u64) -> Option<&'static Registration> {
        self.by_id.get(&id).copied()
    }

    /// How many functions are registered. A test can assert it to catch a
    /// library whose `#[remote]` functions were not linked.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no function is registered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A hash of the sorted wire IDs: equal fingerprints mean equal tables.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Every registered function, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Registration> + '_ {
        self.by_id.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &[u8]) -> Result<String, Failure> {
        Ok("null".into())
    }

    static A: Registration = Registration::new(1, "a::f", ok);
    static B: Registration = Registration::new(2, "b::g", ok);
    static C: Registration = Registration::new(1, "c::h", ok);

    #[test]
    fn duplicate_id_names_both_functions() {
        let err = Registry::build([&A, &B, &C]).unwrap_err();
        assert_eq!((err.first, err.second), ("a::f", "c::h"));
        assert!(err.to_string().contains("`a::f` and `c::h`"), "{err}");
    }

    #[test]
    fn fingerprint_ignores_order() {
        let one = Registry::build([&A, &B]).unwrap();
        let two = Registry::build([&B, &A]).unwrap();
        assert_eq!(one.fingerprint(), two.fingerprint());
        assert_ne!(
            one.fingerprint(),
            Registry::build([&A]).unwrap().fingerprint()
        );
        assert_eq!(one.len(), 2);
    }
}
