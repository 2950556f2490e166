//! Plain YAML scalars as YAML 1.1 reads them, by PyYAML's resolvers (the
//! YAML Ansible reads): what `yes`, `0777`, `1:30` or `1e3` mean.

use serde_json::Value;

/// A plain scalar as YAML 1.1 reads it, by PyYAML's resolvers (Ansible's):
/// `yes`/`on`/`true` and their opposites (in three casings) are booleans;
/// `0777` is octal, `0x1F` hexadecimal, `0b11` binary, `1:30` base 60 (90),
/// `_` is ignored in numbers; a float has a `.` (`1e3` is text, `1.5e+3`
/// a number); `~`, `null` and nothing are null.
pub(super) fn plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    yaml11_int(s)
        .or_else(|| yaml11_float(s))
        .unwrap_or_else(|| Value::String(s.to_owned()))
}

/// The sign of a YAML 1.1 number and the rest.
fn signed(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// A number too big for 64 bits is a float (JSON has no bigger integer).
fn int_value(negative: bool, magnitude: u128) -> Value {
    let exact = match negative {
        false => u64::try_from(magnitude).ok().map(Value::from),
        true => i128::try_from(magnitude)
            .ok()
            .and_then(|m| i64::try_from(-m).ok())
            .map(Value::from),
    };
    exact.unwrap_or_else(|| {
        let f = magnitude as f64;
        Value::from(if negative { -f } else { f })
    })
}

/// Digits in `radix`, `_` ignored; at least one digit.
fn digits(s: &str, radix: u32) -> Option<u128> {
    let mut n: u128 = 0;
    let mut any = false;
    for c in s.chars() {
        if c == '_' {
            continue;
        }
        n = n
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(c.to_digit(radix)?))?;
        any = true;
    }
    any.then_some(n)
}

/// PyYAML's int: `0b…`, `0…` (octal), `0x…`, decimal, and base 60.
fn yaml11_int(s: &str) -> Option<Value> {
    let (negative, body) = signed(s);
    let magnitude = if let Some(bin) = body.strip_prefix("0b") {
        digits(bin, 2)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits(hex, 16)?
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let first = parts.next()?;
        if !first.starts_with(|c: char| ('1'..='9').contains(&c)) {
            return None;
        }
        let mut n = digits(first, 10)?;
        for part in parts {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let v: u128 = part.parse().ok()?;
            if v > 59 || (part.len() == 2 && part.as_bytes()[0] > b'5') {
                return None;
            }
            n = n.checked_mul(60)?.checked_add(v)?;
        }
        n
    } else if body == "0" {
        0
    } else if let Some(oct) = body.strip_prefix('0') {
        digits(oct, 8)?
    } else if body.starts_with(|c: char| ('1'..='9').contains(&c)) {
        digits(body, 10)?
    } else {
        return None;
    };
    Some(int_value(negative, magnitude))
}

/// PyYAML's float: digits with a `.` (an exponent needs its sign), `.5`,
/// base 60 with a fraction. Infinities and NaN stay text (JSON has none).
fn yaml11_float(s: &str) -> Option<Value> {
    let (negative, body) = signed(s);
    if body.starts_with('.') && s.starts_with(['-', '+']) {
        return None;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let value: f64 = if mantissa.contains(':') {
        if exponent.is_some() {
            return None;
        }
        let (whole, fraction) = mantissa.rsplit_once('.')?;
        let Some(Value::Number(n)) = yaml11_int(whole) else {
            return None;
        };
        if !fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return None;
        }
        let fraction: f64 = format!("0.{}", fraction.replace('_', "")).parse().ok()?;
        n.as_f64()? + fraction
    } else {
        let (whole, fraction) = mantissa.split_once('.')?;
        let ok = |t: &str| t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        let whole_ok = match whole.as_bytes().first() {
            None => !fraction.is_empty() && fraction.as_bytes()[0].is_ascii_digit(),
            Some(b) => b.is_ascii_digit(),
        };
        if !whole_ok || !ok(whole) || !ok(fraction) {
            return None;
        }
        let text = format!("{whole}.{fraction}0").replace('_', "");
        let text = match exponent {
            Some(e) => format!("{text}e{e}"),
            None => text,
        };
        text.parse().ok()?
    };
    let value = if negative { -value } else { value };
    value.is_finite().then(|| Value::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PyYAML's safe loader makes of each (checked with the Python of
    /// the ansible-core the differential test uses).
    #[test]
    fn plain_scalars_read_as_pyyaml_reads_them() {
        for (text, json) in [
            ("yes", "true"),
            ("OFF", "false"),
            ("y", "\"y\""),
            ("~", "null"),
            ("0777", "511"),
            ("0x1F", "31"),
            ("0b101", "5"),
            ("1:30", "90"),
            ("-1:30", "-90"),
            ("1_000", "1000"),
            ("12345678901234567890", "12345678901234567890"),
            ("1e3", "\"1e3\""),
            ("1.5e3", "\"1.5e3\""),
            ("1.5e+3", "1500.0"),
            ("1.", "1.0"),
            (".5", "0.5"),
            ("-.5", "\"-.5\""),
            ("1:30.5", "90.5"),
            ("1:60", "\"1:60\""),
            ("09", "\"09\""),
            ("0o17", "\"0o17\""),
            (".inf", "\".inf\""),
            ("web1", "\"web1\""),
        ] {
            let want: Value = serde_json::from_str(json).unwrap();
            assert_eq!(plain(text), want, "{text}");
        }
    }
}
