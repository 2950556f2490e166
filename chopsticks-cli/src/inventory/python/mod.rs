//! The two pieces of Python that ansible-core's INI inventory plugin runs
//! on what it reads: `shlex.split(line, comments=True)` on a host line, and
//! `ast.literal_eval` on each value, followed by the plugin's own clean-up
//! (`_parse_recursive_coerce_types_and_tag`). Reproduced here so that an
//! inventory means to chopsticks what it means to Ansible.
//!
//! Both are bounded: each reads its input once, `literal_eval` refuses
//! brackets nested deeper than Python does (200), and the few steps that
//! are more than linear (decimal conversion of huge integers, set order)
//! have fixed limits.
//!
//! `shlex_split` is done in [`shlex`]. `literal_eval` is done by
//! [`parse`], which reads the tokens of [`lex`] (which leaves the
//! literals to [`number`] and [`string`]), and by [`json`], which does
//! the plugin's clean-up with [`hash`] for Python's equality and set
//! order. All of them share [`value`], a Python value, and [`int`], an
//! int of any size. Each file uses only files named after it here, never
//! one before it.

mod hash;
mod int;
mod json;
mod lex;
mod number;
mod parse;
mod shlex;
mod string;
mod value;

use serde_json::Value;

/// Splits a line into words as Python's `shlex.split(line, comments=True)`
/// does (what the INI plugin does to a host line).
///
/// Words are separated by blanks (space, tab, CR, LF). `'...'` keeps
/// everything inside as it is; `"..."` too, except that a backslash before
/// `"` or `\` escapes it. Quoted parts join the word they touch, with the
/// quotes removed (`a'b'c` is `abc`, `x=""` is `x=`, `""` alone is an empty
/// word). Outside quotes a backslash makes the next character literal, and
/// `#` starts a comment that runs to the end of the line, even in the
/// middle of a word (the word so far is kept).
///
/// # Errors
///
/// Python's own message: `No closing quotation` when a quote is not
/// closed, `No escaped character` when the line ends in a backslash.
pub(crate) fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    shlex::split(line)
}

/// Reads a value as the INI plugin does: Python's `ast.literal_eval(text)`,
/// then its clean-up, as JSON. `None` exactly when `literal_eval` fails
/// (the plugin then keeps the text as a string), and also for the few
/// values JSON cannot hold, listed below.
///
/// What Python reads as a literal: numbers in all their forms (`0x1F`,
/// `0o17`, `0b101`, `1_000`, `1.`, `.5`, `1e3`, a sign in front), strings
/// in all quote forms, with prefixes (`r`, `u`, `b` and `rb`; f-strings
/// are not literals), escapes and adjacent strings joined (`'a' "b"`),
/// `True`, `False`, `None`, `...`, lists, tuples (also a bare `1, 2`),
/// sets and `set()`, dicts, and a real number plus or minus an imaginary
/// one (`1+2j`); whitespace and `# comments` around them. Everything else,
/// such as a bare word (`blue`, `false`) or `1:30`, is not.
///
/// The clean-up and the JSON: tuples and sets become arrays (a set in the
/// order Python's own set iterates, which is fixed for numbers; for a set
/// with strings, bytes, `None` or `...` Python's order changes from run to
/// run and this keeps the order of first appearance); bytes become text;
/// complex numbers become their Python text (`(1+2j)`, `1j`) and `...` the
/// text `...`. Integers are JSON numbers: i64 or u64 when they fit, else
/// the nearest f64. A dict keeps one entry per distinct key (Python's
/// equality: `1`, `1.0` and `True` are one key) and writes its keys as
/// Python's `json.dumps` does: a string as it is, `1` as `"1"`, `1.5` as
/// `"1.5"`, `True` as `"true"`, `None` as `"null"`.
///
/// `None` where JSON (or a Rust string) cannot hold what Python made:
/// infinite floats (`1e999`) and integers past f64's range, dict keys
/// `json.dumps` refuses (tuples, bytes, complex numbers, `...`), bytes
/// that are not UTF-8, strings with a lone surrogate (`'\ud800'`). Also
/// `None`, as a simplification, for `\N{name}` escapes (no table of
/// Unicode names here), for identifiers spelled with non-ASCII letters
/// that Python would fold to `set`, `True` and the like, for a list, dict
/// or set used as a dict key or set member (Python raises `TypeError`,
/// which the plugin does not catch: the whole inventory fails), and for an
/// integer too big for a float added to an imaginary number (Python's
/// `OverflowError`, likewise not caught). And a set whose members' hashes
/// collide on purpose, which Python orders in quadratic time, keeps the
/// order of first appearance.
pub(crate) fn literal_eval(text: &str) -> Option<Value> {
    // Python refuses source with a NUL anywhere.
    if text.contains('\0') {
        return None;
    }
    // `literal_eval` strips these two only.
    let text = text.trim_start_matches([' ', '\t']);
    json::to_json(parse::parse(text)?)
}

#[cfg(test)]
mod tests {
    //! Every expected value in these tests, here and in the files beside
    //! this one, is what ansible-core 2.19's Python (3.11) gives:
    //! `shlex.split(line, comments=True)`, or `ast.literal_eval` followed
    //! by the INI plugin's clean-up, written as `json.dumps` writes it
    //! (`None` where `literal_eval` fails).

    use serde_json::Value;

    use super::literal_eval;

    /// Checks a table of `literal_eval` cases (used by the tests of the
    /// files beside this one too).
    pub(super) fn check(table: &[(&str, Option<&str>)]) {
        for &(input, want) in table {
            let want: Option<Value> = want.map(|w| serde_json::from_str(w).expect("test JSON"));
            assert_eq!(literal_eval(input), want, "literal_eval({input:?})");
        }
    }

    /// Values as they appear in INI inventories.
    const INI: &[(&str, Option<&str>)] = &[
        ("80", Some("80")),
        ("'80'", Some("\"80\"")),
        ("false", None),
        ("True", Some("true")),
        ("None", Some("null")),
        ("[]", Some("[]")),
        ("[1, 'two', 3.0]", Some("[1, \"two\", 3.0]")),
        ("{'a': 1}", Some("{\"a\": 1}")),
        ("(1, 2)", Some("[1, 2]")),
        ("0x1F", Some("31")),
        ("1e3", Some("1000.0")),
        ("1_000", Some("1000")),
        ("0777", None),
        ("12345678901234567890", Some("12345678901234567890")),
        ("'single'", Some("\"single\"")),
        ("blue # x", None),
        ("8080 # x", Some("8080")),
        ("[1,two,3.0]", None),
        ("a b", None),
        ("1:30", None),
        ("-5", Some("-5")),
        ("+5", Some("5")),
        ("1j", Some("\"1j\"")),
        ("...", Some("\"...\"")),
        ("yes", None),
        ("no", None),
        ("true", None),
        ("10.0.0.1", None),
        ("/usr/bin/python3", None),
        ("x=1", None),
        (
            "\"quoted # not a comment\"",
            Some("\"quoted # not a comment\""),
        ),
    ];

    #[test]
    fn ini_values_read_as_ansible_reads_them() {
        check(INI);
    }

    #[test]
    fn values_json_cannot_hold_and_deliberate_gaps() {
        let cases = [
            "1e999",         // Python: inf
            "[-1e999]",      // Python: [-inf]
            "'\\N{BULLET}'", // Python: '•' (no table of Unicode names here)
            "b'\\xff'",      // Python: '\udcff' after the plugin's to_text
            "'\\ud800'",     // Python: a lone surrogate
            "{(1, 2): 3}",   // Python: a tuple key, which json.dumps refuses
            "{b'a': 1}",     // likewise a bytes key
            "{[1]: 2}",      // Python: TypeError, and the inventory fails
            "{[1]}",         // likewise
            "ｓｅｔ()",      // Python folds the name to `set`: []
        ];
        for input in cases {
            assert_eq!(literal_eval(input), None, "literal_eval({input:?})");
        }
    }
}
