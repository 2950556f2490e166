//! Python's int: a whole number of any size, as far as `literal_eval` and
//! the clean-up after it need one (reading it from its digits, writing it
//! in decimal, turning it into a float, taking a remainder for its hash).
//! Only limbs of 32 bits and schoolbook steps, each linear in its size.

/// The most decimal digits Python converts to or from an int (its default
/// `int_max_str_digits`), in a literal as in `str(int)`.
pub(super) const MAX_DIGITS: usize = 4300;

/// Past this many bits an int surely has more than [`MAX_DIGITS`] digits.
const MAX_DECIMAL_BITS: usize = 14_300;

/// A Python int of any size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Int {
    /// Whether it is below zero (never for zero).
    neg: bool,
    /// Its magnitude in 32-bit limbs, least significant first, with no
    /// zero limb at the top (zero is empty).
    mag: Vec<u32>,
}

impl Int {
    /// The int written with these decimal digits (ASCII, no underscores).
    pub(super) fn from_decimal(digits: &str) -> Int {
        let mut mag = Vec::new();
        for chunk in digits.as_bytes().chunks(9) {
            let value = chunk.iter().fold(0u32, |v, &d| {
                v * 10 + char::from(d).to_digit(10).unwrap_or(0)
            });
            mul_add(&mut mag, 10u32.pow(chunk.len() as u32), value);
        }
        Int { neg: false, mag }
    }

    /// The int with these digit values in base `1 << bits` (most
    /// significant first).
    pub(super) fn from_pow2(digits: &[u32], bits: u32) -> Int {
        let mut mag = Vec::new();
        let (mut acc, mut filled) = (0u64, 0u32);
        for &d in digits.iter().rev() {
            acc |= u64::from(d) << filled;
            filled += bits;
            if filled >= 32 {
                mag.push(acc as u32);
                acc >>= 32;
                filled -= 32;
            }
        }
        mag.push(acc as u32);
        trim(&mut mag);
        Int { neg: false, mag }
    }

    /// The int equal to a whole float.
    pub(super) fn from_whole_f64(x: f64) -> Int {
        let (m, e) = decompose(x);
        let mut mag = Vec::new();
        if e < 0 {
            let m = m.checked_shr(e.unsigned_abs()).unwrap_or(0);
            mag.extend([m as u32, (m >> 32) as u32]);
        } else {
            let e = e as usize;
            mag.resize(e / 32, 0);
            let shifted = u128::from(m) << (e % 32);
            mag.extend([
                shifted as u32,
                (shifted >> 32) as u32,
                (shifted >> 64) as u32,
            ]);
        }
        trim(&mut mag);
        Int {
            neg: x < 0.0 && !mag.is_empty(),
            mag,
        }
    }

    /// Its negation.
    pub(super) fn negate(self) -> Int {
        Int {
            neg: !self.neg && !self.mag.is_empty(),
            mag: self.mag,
        }
    }

    /// Whether it is below zero.
    pub(super) fn is_negative(&self) -> bool {
        self.neg
    }

    /// Its magnitude, when that fits in a u64.
    pub(super) fn magnitude_u64(&self) -> Option<u64> {
        match self.mag[..] {
            [] => Some(0),
            [lo] => Some(u64::from(lo)),
            [lo, hi] => Some(u64::from(lo) | u64::from(hi) << 32),
            _ => None,
        }
    }

    /// How many bits its magnitude has.
    fn bits(&self) -> usize {
        self.mag.last().map_or(0, |top| {
            (self.mag.len() - 1) * 32 + (32 - top.leading_zeros() as usize)
        })
    }

    /// Its decimal text, as `str(int)`; `None` past [`MAX_DIGITS`] digits,
    /// where Python raises `ValueError`.
    pub(super) fn to_decimal(&self) -> Option<String> {
        if self.bits() > MAX_DECIMAL_BITS {
            return None;
        }
        let mut mag = self.mag.clone();
        let mut chunks = Vec::new();
        while !mag.is_empty() {
            chunks.push(div_small(&mut mag, 1_000_000_000));
        }
        let mut text = String::from(if self.neg { "-" } else { "" });
        let mut rest = chunks.iter().rev();
        text.push_str(&rest.next().map_or("0".to_owned(), u32::to_string));
        for chunk in rest {
            text.push_str(&format!("{chunk:09}"));
        }
        (text.trim_start_matches('-').len() <= MAX_DIGITS).then_some(text)
    }

    /// The nearest float, as Python's `float(int)`; infinite when too big.
    pub(super) fn to_f64(&self) -> f64 {
        let magnitude = match self.magnitude_u64() {
            Some(m) => m as f64,
            // 1100 bits is past f64's range; below it the decimal text is
            // short, and Rust's parsing rounds as Python does.
            None if self.bits() < 1100 => self
                .to_decimal()
                .and_then(|t| t.trim_start_matches('-').parse().ok())
                .unwrap_or(f64::INFINITY),
            None => f64::INFINITY,
        };
        if self.neg {
            -magnitude
        } else {
            magnitude
        }
    }

    /// Its magnitude modulo `modulus` (which Python's hash of an int
    /// needs).
    pub(super) fn magnitude_mod(&self, modulus: u64) -> u64 {
        self.mag.iter().rev().fold(0u64, |x, &limb| {
            ((u128::from(x) << 32 | u128::from(limb)) % u128::from(modulus)) as u64
        })
    }
}

/// `mag = mag * m + a`.
fn mul_add(mag: &mut Vec<u32>, m: u32, a: u32) {
    let mut carry = u64::from(a);
    for limb in mag.iter_mut() {
        let t = u64::from(*limb) * u64::from(m) + carry;
        *limb = t as u32;
        carry = t >> 32;
    }
    if carry != 0 {
        mag.push(carry as u32);
    }
}

/// `mag = mag / d`, returning the remainder.
fn div_small(mag: &mut Vec<u32>, d: u32) -> u32 {
    let mut rem = 0u64;
    for limb in mag.iter_mut().rev() {
        let cur = rem << 32 | u64::from(*limb);
        *limb = (cur / u64::from(d)) as u32;
        rem = cur % u64::from(d);
    }
    trim(mag);
    rem as u32
}

/// Drops zero limbs from the top.
fn trim(mag: &mut Vec<u32>) {
    while mag.last() == Some(&0) {
        mag.pop();
    }
}

/// A finite float's magnitude as `m * 2^e`, `m` a whole number.
pub(super) fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, exp - 1075)
    }
}

#[cfg(test)]
mod tests {
    //! Big ints as `literal_eval` and the INI plugin's clean-up treat them
    //! in ansible-core 2.19's Python (3.11).

    use serde_json::Value;

    use crate::inventory::python::literal_eval;

    #[test]
    fn big_integers() {
        // Python takes up to 4300 decimal digits; JSON has no number that
        // big, but a dict key is text.
        let ones = "1".repeat(4300);
        let key = literal_eval(&format!("{{{ones}: 1}}"));
        assert_eq!(key, Some(serde_json::json!({ ones.clone(): 1 })));
        assert_eq!(literal_eval(&ones), None);
        assert_eq!(literal_eval(&format!("{{{ones}1: 1}}")), None);
        assert_eq!(literal_eval(&"0".repeat(5000)), Some(Value::from(0)));
        // Hex has no limit, but past 4300 digits `str()` (and so the key) fails.
        let hex = format!("0x{}", "f".repeat(3600));
        assert_eq!(literal_eval(&format!("{{{hex}: 1}}")), None);
        // An int too big for a float beside an imaginary number: Python's
        // OverflowError.
        assert_eq!(literal_eval(&format!("1{}+1j", "0".repeat(400))), None);
        assert_eq!(
            literal_eval(&format!("1{}+1j", "0".repeat(300))),
            Some(Value::from("(1e+300+1j)"))
        );
    }
}
