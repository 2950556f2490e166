//! The INI plugin's clean-up of what `literal_eval` made, as JSON: tuples
//! and sets become arrays (a set in Python's order), bytes become text,
//! ints become numbers, complex numbers and `...` their Python text, and a
//! dict one entry per distinct key, its keys written as `json.dumps`
//! writes them. `None` for what JSON cannot hold.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::hash::{key, set_order, Key};
use super::int::Int;
use super::value::Py;

/// The value as the INI plugin keeps it, in JSON.
pub(super) fn to_json(py: Py) -> Option<Value> {
    Some(match py {
        Py::None => Value::Null,
        Py::Bool(b) => Value::Bool(b),
        Py::Int(i) => int_to_json(&i)?,
        Py::Float(f) => Value::Number(Number::from_f64(f)?),
        Py::Complex(re, im) => Value::String(complex_str(re, im)),
        Py::Str(s) => Value::String(s),
        Py::Bytes(b) => Value::String(String::from_utf8(b).ok()?),
        Py::Ellipsis => Value::String("...".to_owned()),
        Py::List(items) | Py::Tuple(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Option<_>>()?)
        }
        Py::Set(items) => set_to_json(items)?,
        Py::Dict(pairs) => dict_to_json(pairs)?,
    })
}

/// An int as a JSON number: i64 or u64 when it fits, else the nearest
/// f64 (`None` when that is infinite).
fn int_to_json(i: &Int) -> Option<Value> {
    match (i.is_negative(), i.magnitude_u64()) {
        (false, Some(m)) => return Some(Value::from(m)),
        (true, Some(m)) => {
            if let Some(n) = 0i64.checked_sub_unsigned(m) {
                return Some(Value::from(n));
            }
        }
        _ => {}
    }
    Number::from_f64(i.to_f64()).map(Value::Number)
}

/// A set as a JSON array, its members once each, in Python's order.
fn set_to_json(items: Vec<Py>) -> Option<Value> {
    let order = set_order(&items)?;
    let mut slots: Vec<Option<Py>> = items.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(order.len());
    for i in order {
        out.push(to_json(slots.get_mut(i)?.take()?)?);
    }
    Some(Value::Array(out))
}

/// A dict as a JSON object: one entry per distinct key (Python's
/// equality), with the first key and the last value.
fn dict_to_json(pairs: Vec<(Py, Py)>) -> Option<Value> {
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut entries: Vec<(Py, Py)> = Vec::new();
    for (k, v) in pairs {
        let key = key(&k)?;
        match index.get(&key) {
            Some(&i) => entries.get_mut(i)?.1 = v,
            None => {
                index.insert(key, entries.len());
                entries.push((k, v));
            }
        }
    }
    let mut map = Map::new();
    for (k, v) in entries {
        map.insert(json_key(&k)?, to_json(v)?);
    }
    Some(Value::Object(map))
}

/// A dict key as Python's `json.dumps` writes it; `None` for the types it
/// refuses.
fn json_key(key: &Py) -> Option<String> {
    match key {
        Py::Str(s) => Some(s.clone()),
        Py::Float(f) if f.is_infinite() => {
            Some(if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned())
        }
        Py::Float(f) => Some(float_repr(*f, true)),
        Py::Bool(b) => Some(b.to_string()),
        Py::None => Some("null".to_owned()),
        Py::Int(i) => i.to_decimal(),
        _ => None,
    }
}

/// `repr(x)` as Python writes a float: the shortest digits that read back
/// as `x`, in positional form from 1e-4 up to 1e16, else with an exponent;
/// `.0` after a whole number only when `dot0` (as `repr` does, and the
/// parts of a complex number do not).
fn float_repr(x: f64, dot0: bool) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mantissa.replace('.', "");
    let point = exp + 1;
    let n = digits.len() as i32;
    let body = if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at_checked(1).unwrap_or((&digits, ""));
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{dot}{rest}e{exp_sign}{:02}", exp.unsigned_abs())
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= n {
        let zeros = "0".repeat((point - n) as usize);
        format!("{digits}{zeros}{}", if dot0 { ".0" } else { "" })
    } else {
        let (int, frac) = digits
            .split_at_checked(point as usize)
            .unwrap_or((&digits, ""));
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// `str(complex(re, im))` as Python writes it: `2j`, `(1+2j)`, `(-0-1j)`.
fn complex_str(re: f64, im: f64) -> String {
    let imag = float_repr(im, false);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let plus = if imag.starts_with('-') { "" } else { "+" };
    format!("({}{plus}{imag}j)", float_repr(re, false))
}

#[cfg(test)]
mod tests {
    //! Complex numbers, floats and dict keys as the INI plugin's clean-up
    //! writes them in ansible-core 2.19's Python (3.11), after
    //! `literal_eval`; `None` where that fails or JSON cannot hold the
    //! value.

    use super::{complex_str, float_repr};
    use crate::inventory::python::tests::check;

    /// Imaginary numbers and sums, and their Python text.
    const COMPLEX: &[(&str, Option<&str>)] = &[
        ("1j", Some("\"1j\"")),
        ("2.5J", Some("\"2.5j\"")),
        ("0j", Some("\"0j\"")),
        ("-1j", Some("\"(-0-1j)\"")),
        ("+1j", Some("\"1j\"")),
        ("-0j", Some("\"(-0-0j)\"")),
        ("1e3j", Some("\"1000j\"")),
        ("07j", Some("\"7j\"")),
        ("1e16j", Some("\"1e+16j\"")),
        ("1e-5j", Some("\"1e-05j\"")),
        ("1e999j", Some("\"infj\"")),
        ("-1e999j", Some("\"(-0-infj)\"")),
        ("1+2j", Some("\"(1+2j)\"")),
        ("1-2j", Some("\"(1-2j)\"")),
        ("-1+2j", Some("\"(-1+2j)\"")),
        ("1.5-2.5j", Some("\"(1.5-2.5j)\"")),
        ("0.1+0.2j", Some("\"(0.1+0.2j)\"")),
        ("1e15+1e16j", Some("\"(1000000000000000+1e+16j)\"")),
        ("-0.0-1j", Some("\"(-0-1j)\"")),
        ("-0-1j", Some("\"-1j\"")),
        ("1-0j", Some("\"(1+0j)\"")),
        ("1 + 2j", Some("\"(1+2j)\"")),
        ("(1)+2j", Some("\"(1+2j)\"")),
        ("-(1)+2j", Some("\"(-1+2j)\"")),
        ("1+(2j)", Some("\"(1+2j)\"")),
        ("(1+2j)", Some("\"(1+2j)\"")),
        ("[1+2j]", Some("[\"(1+2j)\"]")),
        ("2j+1", None),
        ("1+-2j", None),
        ("1j+2j", None),
        ("1+2j+3j", None),
        ("-(1+2j)", None),
        ("True+2j", None),
        ("1+2", None),
        ("1e999-1e999j", Some("\"(inf-infj)\"")),
        ("10**400+1j", None),
    ];
    /// Dicts with keys that Python finds equal, and keys of every type.
    const DICTS: &[(&str, Option<&str>)] = &[
        ("{'a': 1}", Some("{\"a\": 1}")),
        ("{'a': 1, 'a': 2}", Some("{\"a\": 2}")),
        ("{1: 2, 1.0: 3}", Some("{\"1\": 3}")),
        ("{True: 1, 1: 2}", Some("{\"true\": 2}")),
        ("{1: 'a', True: 'b', 1.0: 'c'}", Some("{\"1\": \"c\"}")),
        ("{0: 'a', False: 'b', -0.0: 'c'}", Some("{\"0\": \"c\"}")),
        ("{1: [1], '1': 2}", Some("{\"1\": 2}")),
        ("{None: 1}", Some("{\"null\": 1}")),
        ("{1.5: 1}", Some("{\"1.5\": 1}")),
        ("{1.0: 1}", Some("{\"1.0\": 1}")),
        ("{1e16: 1}", Some("{\"1e+16\": 1}")),
        ("{1e-5: 1}", Some("{\"1e-05\": 1}")),
        ("{-0.0: 1}", Some("{\"-0.0\": 1}")),
        ("{1e999: 1}", Some("{\"Infinity\": 1}")),
        ("{-1e999: 1}", Some("{\"-Infinity\": 1}")),
        (
            "{12345678901234567890123: 1}",
            Some("{\"12345678901234567890123\": 1}"),
        ),
        ("{-5: 1}", Some("{\"-5\": 1}")),
        ("{False: 0}", Some("{\"false\": 0}")),
        (
            "{'x': {'y': {'z': [1]}}}",
            Some("{\"x\": {\"y\": {\"z\": [1]}}}"),
        ),
        ("{...: 1}", None),
        ("{b\"a\": 1}", None),
        ("{(1, 2): 3}", None),
        ("{1j: 1}", None),
        ("{1+0j: 1}", None),
        ("{'a': 1, 1: 'a'}", Some("{\"a\": 1, \"1\": \"a\"}")),
        ("{[1]: 2}", None),
        ("{{}: 1}", None),
        ("{1: 2 for x in y}", None),
    ];

    #[test]
    fn complex_numbers_become_their_python_text() {
        check(COMPLEX);
    }

    #[test]
    fn dict_keys_as_json_dumps_writes_them() {
        check(DICTS);
    }

    #[test]
    fn floats_written_as_python_writes_them() {
        let cases: &[(f64, &str, &str)] = &[
            (0.0, "0.0", "0j"),
            (-0.0, "-0.0", "(-0-0j)"),
            (1.0, "1.0", "(1+1j)"),
            (0.1, "0.1", "(0.1+0.1j)"),
            (-2.5, "-2.5", "(-2.5-2.5j)"),
            (1e16, "1e+16", "(1e+16+1e+16j)"),
            (
                1e15,
                "1000000000000000.0",
                "(1000000000000000+1000000000000000j)",
            ),
            (1e-4, "0.0001", "(0.0001+0.0001j)"),
            (1e-5, "1e-05", "(1e-05+1e-05j)"),
            (0.00012, "0.00012", "(0.00012+0.00012j)"),
            (123456789.0, "123456789.0", "(123456789+123456789j)"),
            (5e-324, "5e-324", "(5e-324+5e-324j)"),
            (
                f64::MAX,
                "1.7976931348623157e+308",
                "(1.7976931348623157e+308+1.7976931348623157e+308j)",
            ),
            (
                12345678901234567.0,
                "1.2345678901234568e+16",
                "(1.2345678901234568e+16+1.2345678901234568e+16j)",
            ),
            (
                1.0 / 3.0,
                "0.3333333333333333",
                "(0.3333333333333333+0.3333333333333333j)",
            ),
        ];
        for &(x, repr, complex) in cases {
            assert_eq!(float_repr(x, true), repr, "repr({x:?})");
            assert_eq!(complex_str(x, x), complex, "str(complex({x:?}, {x:?}))");
        }
    }
}
