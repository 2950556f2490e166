//! Python's equality and hash for the values a literal makes, and from
//! them what its clean-up needs: which dict keys and set members are the
//! same (`1`, `1.0` and `True` are), and the order in which a set
//! iterates its members (CPython's hash table, replayed).

use std::collections::HashSet;

use super::int::{decompose, Int};
use super::value::Py;

/// A value of a hashable Python type, equal to another exactly when Python
/// says the two are equal (`1 == 1.0 == True`).
#[derive(PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// A whole number: an int, a bool, a whole float, a complex number
    /// with no imaginary part.
    Int(Int),
    /// Any other real number, by its bits.
    Real(u64),
    /// A complex number with an imaginary part, by their bits.
    Complex(u64, u64),
    /// A str.
    Str(String),
    /// A bytes.
    Bytes(Vec<u8>),
    /// `None`.
    None,
    /// `...`.
    Ellipsis,
    /// A tuple.
    Tuple(Vec<Key>),
}

/// The key of a value; `None` for an unhashable one (list, dict, set).
pub(super) fn key(py: &Py) -> Option<Key> {
    /// The key of a real number.
    fn real(x: f64) -> Key {
        if x.is_finite() && x.fract() == 0.0 {
            Key::Int(Int::from_whole_f64(x))
        } else {
            Key::Real(x.to_bits())
        }
    }
    Some(match py {
        Py::None => Key::None,
        Py::Bool(b) => Key::Int(Int::from_pow2(&[u32::from(*b)], 1)),
        Py::Int(i) => Key::Int(i.clone()),
        Py::Float(f) => real(*f),
        Py::Complex(re, im) if *im == 0.0 => real(*re),
        // `+ 0.0` makes -0.0 the same as 0.0.
        Py::Complex(re, im) => Key::Complex((re + 0.0).to_bits(), (im + 0.0).to_bits()),
        Py::Str(s) => Key::Str(s.clone()),
        Py::Bytes(b) => Key::Bytes(b.clone()),
        Py::Ellipsis => Key::Ellipsis,
        Py::Tuple(items) => Key::Tuple(items.iter().map(key).collect::<Option<_>>()?),
        Py::List(_) | Py::Set(_) | Py::Dict(_) => return None,
    })
}

/// The prime modulus of Python's numeric hash, 2^61 - 1.
const HASH_PRIME: u64 = (1 << 61) - 1;

/// Python's `hash()` (as the bits of a C `Py_hash_t`) for the values whose
/// hash is the same in every run: numbers and tuples of them. `None` for
/// the others (str and bytes are hashed with a per-process key, `None` and
/// `...` by their address).
fn py_hash(py: &Py) -> Option<u64> {
    /// Maps -1, which Python keeps for errors, to -2.
    fn fix(h: u64) -> u64 {
        if h == u64::MAX {
            u64::MAX - 1
        } else {
            h
        }
    }
    /// A signed residue as a `Py_hash_t`.
    fn signed(residue: u64, neg: bool) -> u64 {
        fix(if neg { residue.wrapping_neg() } else { residue })
    }
    /// The hash of a float: the value modulo the prime.
    fn float(x: f64) -> u64 {
        if x.is_infinite() {
            return signed(314_159, x < 0.0);
        }
        let (m, e) = decompose(x);
        let power = 1u128 << e.rem_euclid(61);
        let residue = (u128::from(m) * power % u128::from(HASH_PRIME)) as u64;
        signed(residue, x < 0.0)
    }
    Some(match py {
        Py::Bool(b) => u64::from(*b),
        Py::Int(i) => signed(i.magnitude_mod(HASH_PRIME), i.is_negative()),
        Py::Float(f) => float(*f),
        Py::Complex(re, im) => fix(float(*re).wrapping_add(float(*im).wrapping_mul(1_000_003))),
        Py::Tuple(items) => {
            const P1: u64 = 11_400_714_785_074_694_791;
            const P2: u64 = 14_029_467_366_897_019_727;
            const P5: u64 = 2_870_177_450_012_600_261;
            let mut acc = P5;
            for item in items {
                acc = acc.wrapping_add(py_hash(item)?.wrapping_mul(P2));
                acc = acc.rotate_left(31).wrapping_mul(P1);
            }
            acc = acc.wrapping_add(items.len() as u64 ^ (P5 ^ 3_527_539));
            if acc == u64::MAX {
                1_546_275_796
            } else {
                acc
            }
        }
        _ => return None,
    })
}

/// Which members of a set literal survive, in the order Python's set
/// iterates them; `None` when one is unhashable.
pub(super) fn set_order(items: &[Py]) -> Option<Vec<usize>> {
    let keys = items.iter().map(key).collect::<Option<Vec<_>>>()?;
    let mut seen = HashSet::new();
    let firsts: Vec<usize> = (0..items.len())
        .filter(|&i| keys.get(i).is_some_and(|k| seen.insert(k)))
        .collect();
    let hashes = firsts
        .iter()
        .map(|&i| items.get(i).and_then(py_hash))
        .collect::<Option<Vec<_>>>();
    let order = hashes.and_then(|h| set_table(&h));
    Some(match order {
        Some(order) => order
            .into_iter()
            .filter_map(|j| firsts.get(j).copied())
            .collect(),
        None => firsts,
    })
}

/// The slots CPython's set gives members with these hashes, added in turn
/// (all distinct), read in table order: their indexes. `None` when the
/// hashes collide so much (only ever on purpose: many ints that differ by
/// multiples of 2^61 - 1) that this would take more than linear time.
fn set_table(hashes: &[u64]) -> Option<Vec<usize>> {
    let mut budget = 64 * hashes.len() + 100_000;
    let mut table: Vec<Option<usize>> = vec![None; 8];
    for (i, &hash) in hashes.iter().enumerate() {
        place(&mut table, hash, i, &mut budget)?;
        let used = i + 1;
        let mask = table.len() - 1;
        if used * 5 >= mask * 3 {
            let min_used = if used > 50_000 { used * 2 } else { used * 4 };
            let mut size = 8;
            while size <= min_used {
                size <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; size]);
            for item in old.into_iter().flatten() {
                place(&mut table, *hashes.get(item)?, item, &mut budget)?;
            }
        }
    }
    Some(table.into_iter().flatten().collect())
}

/// Puts `item` in the first free slot of CPython's probe sequence for
/// `hash` (a few linear probes, then a jump driven by the hash's bits),
/// spending one of `budget` per slot looked at.
fn place(table: &mut [Option<usize>], hash: u64, item: usize, budget: &mut usize) -> Option<()> {
    let mask = table.len() as u64 - 1;
    let mut perturb = hash;
    let mut i = hash & mask;
    loop {
        let probes = if i + 9 <= mask { 9 } else { 0 };
        for slot in table.iter_mut().skip(i as usize).take(probes + 1) {
            *budget = budget.checked_sub(1)?;
            if slot.is_none() {
                *slot = Some(item);
                return Some(());
            }
        }
        perturb >>= 5;
        i = i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb) & mask;
    }
}

#[cfg(test)]
mod tests {
    //! Long inputs, sets among them, as `literal_eval` and the INI
    //! plugin's clean-up read them in ansible-core 2.19's Python (3.11).

    use serde_json::Value;

    use crate::inventory::python::literal_eval;

    #[test]
    fn long_inputs_are_read_in_one_pass() {
        let n = 100_000;
        let list = format!("[{}]", vec!["7"; n].join(", "));
        assert_eq!(literal_eval(&list), Some(Value::from(vec![7; n])));
        let text = format!("'{}'", "x".repeat(1 << 20));
        assert_eq!(literal_eval(&text), Some(Value::from("x".repeat(1 << 20))));
        // A set in Python's own order...
        let set = format!(
            "{{{}}}",
            (0..n)
                .rev()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let members = literal_eval(&set).and_then(|v| v.as_array().map(Vec::len));
        assert_eq!(members, Some(n));
        // ...but not when every member's hash is the same (multiples of
        // 2^61 - 1): that would take Python, and this, quadratic time.
        let colliding: Vec<u128> = (1..=20_000).map(|k| k * ((1 << 61) - 1)).collect();
        let text = format!(
            "{{{}}}",
            colliding
                .iter()
                .map(u128::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let read = literal_eval(&text).and_then(|v| v.as_array().map(|a| a.len()));
        assert_eq!(read, Some(colliding.len()));
    }
}
