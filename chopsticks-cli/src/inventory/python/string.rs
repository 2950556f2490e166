//! Python's string and bytes literals, as its tokenizer reads them: the
//! four quote forms (`'`, `"`, `'''`, `"""`), the prefixes (raw, bytes),
//! and the escapes. Joining adjacent literals is the parser's part.

use super::value::Py;

/// Reads the string literal at the start of `src`, which starts with its
/// opening quote (any prefix already read: `raw` for `r`, `bytes` for
/// `b`): its value, a str or a bytes, and how many bytes of `src` it
/// takes. `None` means a syntax error, or a value this does not make
/// (see [`unescape`]).
pub(super) fn scan(src: &[u8], raw: bool, bytes: bool) -> Option<(Py, usize)> {
    let at = |i: usize| src.get(i).copied();
    let q = at(0)?;
    let triple = at(1) == Some(q) && at(2) == Some(q);
    let width = if triple { 3 } else { 1 };
    let mut pos = width;
    loop {
        let c = at(pos)?;
        if c == b'\\' {
            pos += 2;
            continue;
        }
        if c == q && (!triple || (at(pos + 1) == Some(q) && at(pos + 2) == Some(q))) {
            break;
        }
        if c == b'\n' && !triple {
            return None;
        }
        pos += 1;
    }
    let body = std::str::from_utf8(&src[width..pos]).ok()?;
    let value = unescape(body, raw, bytes)?;
    Some((value, pos + width))
}

/// A string literal's value from its body, as Python reads it.
fn unescape(body: &str, raw: bool, bytes: bool) -> Option<Py> {
    if bytes && !body.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    let mut raw_bytes = Vec::new();
    let mut push = |code: u32, out: &mut String| -> Option<()> {
        if bytes {
            raw_bytes.push(code as u8);
        } else {
            out.push(char::from_u32(code)?);
        }
        Some(())
    };
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' || raw {
            push(u32::from(c), &mut out)?;
            continue;
        }
        let e = chars.next()?;
        let mut hex = |n: usize| -> Option<u32> {
            (0..n).try_fold(0, |v, _| Some(v * 16 + chars.next()?.to_digit(16)?))
        };
        let code = match e {
            '\n' => continue,
            '\\' | '\'' | '"' => u32::from(e),
            'a' => 7,
            'b' => 8,
            'f' => 12,
            'n' => 10,
            'r' => 13,
            't' => 9,
            'v' => 11,
            'x' => hex(2)?,
            'u' if !bytes => hex(4)?,
            'U' if !bytes => hex(8)?,
            // `\N{name}` would need the table of Unicode names.
            'N' if !bytes => return None,
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => v = v * 8 + d,
                        None => break,
                    }
                    chars.next();
                }
                // A bytes keeps the low byte of `\777`.
                if bytes {
                    v & 0xff
                } else {
                    v
                }
            }
            _ => {
                push(u32::from('\\'), &mut out)?;
                u32::from(e)
            }
        };
        push(code, &mut out)?;
    }
    Some(if bytes {
        Py::Bytes(raw_bytes)
    } else {
        Py::Str(out)
    })
}

#[cfg(test)]
mod tests {
    //! Strings in every form, as `literal_eval` and the INI plugin's
    //! clean-up read them in ansible-core 2.19's Python (3.11); `None`
    //! where `literal_eval` fails.

    use crate::inventory::python::tests::check;

    /// Strings and bytes in every quote form, prefix and escape.
    const STRINGS: &[(&str, Option<&str>)] = &[
        ("'single'", Some("\"single\"")),
        ("\"double\"", Some("\"double\"")),
        ("'''triple'''", Some("\"triple\"")),
        ("\"\"\"tri\nple\"\"\"", Some("\"tri\\nple\"")),
        ("''", Some("\"\"")),
        ("\"\"", Some("\"\"")),
        ("''''''", Some("\"\"")),
        ("'a' \"b\"", Some("\"ab\"")),
        ("'a''b'", Some("\"ab\"")),
        ("u'a' 'b'", Some("\"ab\"")),
        ("r'\\n'", Some("\"\\\\n\"")),
        ("R'\\d'", Some("\"\\\\d\"")),
        ("b'bytes'", Some("\"bytes\"")),
        ("B'x'", Some("\"x\"")),
        ("rb'\\x41'", Some("\"\\\\x41\"")),
        ("Br'\\q'", Some("\"\\\\q\"")),
        ("bR'x'", Some("\"x\"")),
        ("b'a' b'b'", Some("\"ab\"")),
        ("'a' b'b'", None),
        ("'a'b'c'", None),
        ("f'a'", None),
        ("F'a'", None),
        ("rf'a'", None),
        ("ur'x'", None),
        ("x'a'", None),
        ("'\\n\\t\\\\'", Some("\"\\n\\t\\\\\"")),
        ("'\\'\\\"'", Some("\"'\\\"\"")),
        ("'\\a\\b\\f\\v\\r'", Some("\"\\u0007\\b\\f\\u000b\\r\"")),
        ("'\\x41'", Some("\"A\"")),
        ("'\\u00e9'", Some("\"é\"")),
        ("'\\U0001F600'", Some("\"😀\"")),
        ("'\\101'", Some("\"A\"")),
        ("'\\0'", Some("\"\\u0000\"")),
        ("'\\777'", Some("\"ǿ\"")),
        ("b'\\777'", None),
        ("'\\8'", Some("\"\\\\8\"")),
        ("'\\q'", Some("\"\\\\q\"")),
        ("'\\x4'", None),
        ("'\\u004'", None),
        ("'\\U00110000'", None),
        ("b'\\u0041'", Some("\"\\\\u0041\"")),
        ("b'\\xc3\\xa9'", Some("\"é\"")),
        ("'é'", Some("\"é\"")),
        ("'a\\\nb'", Some("\"ab\"")),
        ("'''a\nb'''", Some("\"a\\nb\"")),
        ("'''a\r\nb'''", Some("\"a\\nb\"")),
        ("'a\rb'", None),
        ("r'\\''", Some("\"\\\\'\"")),
        ("r'\\'", None),
        ("'''a\\'''b'''", Some("\"a'''b\"")),
        ("\"\"\"a\"b\"\"c\"\"\"", Some("\"a\\\"b\\\"\\\"c\"")),
        ("'unclosed", None),
        ("'a\nb'", None),
        ("b'é'", None),
        ("b'\\xff'", None),
        ("'\\ud800'", None),
    ];

    #[test]
    fn strings_in_every_quote_form() {
        check(STRINGS);
    }
}
