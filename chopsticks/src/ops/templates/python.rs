//! Values as Jinja2 prints them in Ansible: Python's `str` and `repr`,
//! and `tojson` as Python's `json.dumps` writes it.

use minijinja::value::{Value, ValueKind};
use minijinja::ErrorKind;

/// `value` as Python's `repr` writes it (what Jinja2 prints for a list
/// or a dict: `['a', True, None]`), and `str` for a boolean or none.
pub(super) fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => match value.is_true() {
            true => "True".into(),
            false => "False".into(),
        },
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            let quote = match text.contains('\'') && !text.contains('"') {
                true => '"',
                false => '\'',
            };
            let mut out = String::from(quote);
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|items| items.map(|v| python_repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|keys| {
                    keys.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", python_repr(&k), python_repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Jinja2's `tojson`: Python's `json.dumps` with sorted keys and its
/// separators (`", "`, `": "`), non-ASCII and `<>&'` escaped as `\uXXXX`.
pub(super) fn python_json(value: &Value) -> Result<Value, minijinja::Error> {
    let json = serde_json::to_value(value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    write_json(&json, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match value {
        J::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_ascii() && !c.is_ascii_control() && !"<>&'".contains(c) => {
                        out.push(c)
                    }
                    c => {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
            out.push('"');
        }
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(&J::String(key.clone()), out);
                out.push_str(": ");
                write_json(&map[key], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}
