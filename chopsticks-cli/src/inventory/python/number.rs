//! Python's number literals, as its tokenizer reads them: decimal, hex,
//! octal and binary ints (`0x1F`, `0o17`, `0b101`), floats (`1.`, `.5`,
//! `1e3`), imaginary numbers (`2j`), with single underscores between
//! digits (`1_000`). A sign is not part of a literal: the parser applies
//! it.

use super::int::{Int, MAX_DIGITS};
use super::value::Py;

/// Reads the number literal at the start of `src`, which starts with a
/// digit or with a `.` before one: its value (an int, a float, or for an
/// imaginary literal a complex number with no real part) and how many
/// bytes it takes. `None` means a syntax error.
pub(super) fn scan(src: &[u8]) -> Option<(Py, usize)> {
    let mut cursor = Cursor { src, pos: 0 };
    let value = cursor.number()?;
    Some((value, cursor.pos))
}

/// A reader of one number literal.
struct Cursor<'a> {
    /// The text, from the literal's first byte.
    src: &'a [u8],
    /// Where it is.
    pos: usize,
}

impl Cursor<'_> {
    /// The byte `k` past the current one.
    fn at(&self, k: usize) -> Option<u8> {
        self.src.get(self.pos + k).copied()
    }

    /// A run of digits with single underscores between them, added to
    /// `text` without the underscores.
    fn digits(&mut self, text: &mut String) -> Option<()> {
        loop {
            let c = self.at(0).filter(u8::is_ascii_digit)?;
            text.push(char::from(c));
            self.pos += 1;
            match self.at(0) {
                Some(b'_') => self.pos += 1,
                Some(d) if d.is_ascii_digit() => {}
                _ => return Some(()),
            }
        }
    }

    /// A digit in `radix`, taken if it comes next.
    fn digit(&mut self, radix: u32) -> Option<u32> {
        let d = self.at(0).and_then(|c| char::from(c).to_digit(radix))?;
        self.pos += 1;
        Some(d)
    }

    /// A number.
    fn number(&mut self) -> Option<Py> {
        let radix = match (self.at(0), self.at(1).map(|c| c.to_ascii_lowercase())) {
            (Some(b'0'), Some(b'x')) => Some((16, 4)),
            (Some(b'0'), Some(b'o')) => Some((8, 3)),
            (Some(b'0'), Some(b'b')) => Some((2, 1)),
            _ => None,
        };
        if let Some((radix, bits)) = radix {
            self.pos += 2;
            let mut digits = Vec::new();
            loop {
                // One underscore may come before any digit (`0x_1F`).
                if self.at(0) == Some(b'_') {
                    self.pos += 1;
                    digits.push(self.digit(radix)?);
                    continue;
                }
                match self.digit(radix) {
                    Some(d) => digits.push(d),
                    None if digits.is_empty() => return None,
                    None => return Some(Py::Int(Int::from_pow2(&digits, bits))),
                }
            }
        }
        let mut text = String::new();
        if self.at(0) != Some(b'.') {
            self.digits(&mut text)?;
        }
        let mut float = false;
        if self.at(0) == Some(b'.') {
            float = true;
            text.push('.');
            self.pos += 1;
            if self.at(0).is_some_and(|c| c.is_ascii_digit()) {
                self.digits(&mut text)?;
            }
        }
        if matches!(self.at(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.at(1), Some(b'+' | b'-')));
            if self.at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                text.push('e');
                if sign == 1 {
                    text.push(char::from(self.at(1)?));
                }
                self.pos += 1 + sign;
                self.digits(&mut text)?;
            }
        }
        if matches!(self.at(0), Some(b'j' | b'J')) {
            self.pos += 1;
            return text.parse().ok().map(|f| Py::Complex(0.0, f));
        }
        if float {
            return text.parse().ok().map(Py::Float);
        }
        let zero = text.bytes().all(|d| d == b'0');
        // `0777` is an error in Python 3; past 4300 digits, too.
        if !zero && (text.starts_with('0') || text.len() > MAX_DIGITS) {
            return None;
        }
        Some(Py::Int(Int::from_decimal(&text)))
    }
}

#[cfg(test)]
mod tests {
    //! Numbers, with and without a sign, as `literal_eval` and the INI
    //! plugin's clean-up read them in ansible-core 2.19's Python (3.11);
    //! `None` where `literal_eval` fails.

    use crate::inventory::python::tests::check;

    /// Ints and floats in every notation, with and without a sign.
    const NUMBERS: &[(&str, Option<&str>)] = &[
        ("0", Some("0")),
        ("00", Some("0")),
        ("0_0", Some("0")),
        ("0_7", None),
        ("07", None),
        ("0x_1f", Some("31")),
        ("0X1F", Some("31")),
        ("0o17", Some("15")),
        ("0O7_7", Some("63")),
        ("0b101", Some("5")),
        ("0B1_0", Some("2")),
        ("0b12", None),
        ("0o8", None),
        ("0x", None),
        ("0x_", None),
        ("0x1_", None),
        ("1__0", None),
        ("1_", None),
        ("1_000_000", Some("1000000")),
        ("-0", Some("0")),
        ("-9223372036854775808", Some("-9223372036854775808")),
        ("9223372036854775807", Some("9223372036854775807")),
        ("9223372036854775808", Some("9223372036854775808")),
        ("18446744073709551615", Some("18446744073709551615")),
        ("18446744073709551616", Some("1.8446744073709552e+19")),
        ("-9223372036854775809", Some("-9.223372036854776e+18")),
        ("0xffffffffffffffff", Some("18446744073709551615")),
        (
            "0xffffffffffffffffffffffffffffffff",
            Some("3.402823669209385e+38"),
        ),
        ("1.5", Some("1.5")),
        ("1.", Some("1.0")),
        (".5", Some("0.5")),
        ("1e3", Some("1000.0")),
        ("1E-3", Some("0.001")),
        ("1e+3", Some("1000.0")),
        ("1_000.5", Some("1000.5")),
        ("07.5", Some("7.5")),
        ("07e1", Some("70.0")),
        ("0e0", Some("0.0")),
        ("1.e3", Some("1000.0")),
        ("1e3_0", Some("1e+30")),
        ("1._5", None),
        ("1e_3", None),
        ("1e", None),
        ("1.5.2", None),
        ("1..2", None),
        ("1e999", None),
        ("-1e999", None),
        ("1e-400", Some("0.0")),
        ("-1e-400", Some("-0.0")),
        ("-0.0", Some("-0.0")),
        ("4.9e-324", Some("5e-324")),
        ("1.7976931348623157e308", Some("1.7976931348623157e+308")),
        ("0.1", Some("0.1")),
        ("+5", Some("5")),
        ("-5", Some("-5")),
        ("+1.5", Some("1.5")),
        ("-1.5", Some("-1.5")),
        ("+0x10", Some("16")),
        ("-0b1", Some("-1")),
        ("- 1", Some("-1")),
        ("-(1)", Some("-1")),
        ("-(-1)", None),
        ("- -1", None),
        ("-+1", None),
        ("+True", None),
        ("-True", None),
        ("-None", None),
        ("-'a'", None),
        ("-[1]", None),
        ("2**3", None),
        ("1+2", None),
        ("1*2", None),
        ("~1", None),
        ("not 1", None),
    ];

    #[test]
    fn numbers_in_every_python_form() {
        check(NUMBERS);
    }
}
