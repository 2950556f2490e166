//! The values `literal_eval` makes: what the parser builds and the JSON
//! conversion reads.

use super::int::Int;

/// A Python value, as `literal_eval` returns it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Py {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An int.
    Int(Int),
    /// A float.
    Float(f64),
    /// A complex number: real and imaginary parts.
    Complex(f64, f64),
    /// A str.
    Str(String),
    /// A bytes.
    Bytes(Vec<u8>),
    /// `...`.
    Ellipsis,
    /// A list.
    List(Vec<Py>),
    /// A tuple.
    Tuple(Vec<Py>),
    /// A set, its members as written (duplicates are dropped later).
    Set(Vec<Py>),
    /// A dict, its entries as written (duplicate keys are merged later).
    Dict(Vec<(Py, Py)>),
}
