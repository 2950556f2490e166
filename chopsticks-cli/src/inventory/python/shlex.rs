//! Python's `shlex.split(line, comments=True)`: a line split into words,
//! with quotes, backslashes and comments as POSIX mode reads them. The
//! rules are on [`shlex_split`](super::shlex_split).

/// Splits a line into words as [`shlex_split`](super::shlex_split)
/// describes, reading each character once.
///
/// # Errors
///
/// Python's own message: `No closing quotation` when a quote is not
/// closed, `No escaped character` when the line ends in a backslash.
pub(super) fn split(line: &str) -> Result<Vec<String>, String> {
    /// Where the reader is.
    #[derive(Clone, Copy)]
    enum State {
        /// Between words.
        Between,
        /// In a word, outside quotes.
        Word,
        /// Inside this quote character.
        Quoted(char),
        /// Just after a backslash, outside quotes (`None`) or inside `"`.
        Escaped(Option<char>),
    }
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether the word had quotes: then it counts even when empty.
    let mut quoted = false;
    let mut state = State::Between;
    let mut chars = line.chars();
    let mut finish = |word: &mut String, quoted: &mut bool| {
        if !word.is_empty() || *quoted {
            words.push(std::mem::take(word));
        }
        *quoted = false;
    };
    loop {
        let next = chars.next();
        match state {
            State::Between | State::Word => match next {
                None => break,
                Some(' ' | '\t' | '\r' | '\n') => {
                    finish(&mut word, &mut quoted);
                    state = State::Between;
                }
                Some('#') => {
                    chars.by_ref().find(|&c| c == '\n');
                    finish(&mut word, &mut quoted);
                    state = State::Between;
                }
                Some('\\') => state = State::Escaped(None),
                Some(q @ ('\'' | '"')) => state = State::Quoted(q),
                Some(c) => {
                    word.push(c);
                    state = State::Word;
                }
            },
            State::Quoted(q) => {
                quoted = true;
                match next {
                    None => return Err("No closing quotation".to_owned()),
                    Some(c) if c == q => state = State::Word,
                    Some('\\') if q == '"' => state = State::Escaped(Some(q)),
                    Some(c) => word.push(c),
                }
            }
            State::Escaped(inside) => {
                let Some(c) = next else {
                    return Err("No escaped character".to_owned());
                };
                // Inside quotes only the quote and the backslash itself
                // are escaped; before anything else the backslash stays.
                if inside.is_some() && c != '\\' && Some(c) != inside {
                    word.push('\\');
                }
                word.push(c);
                state = inside.map_or(State::Word, State::Quoted);
            }
        }
    }
    finish(&mut word, &mut quoted);
    Ok(words)
}

#[cfg(test)]
mod tests {
    //! Every expected value here is what `shlex.split(line,
    //! comments=True)` gives in ansible-core 2.19's Python (3.11).

    use super::split;

    /// Host lines, and the words Python makes of them or its error.
    const WORDS: &[(&str, Result<&[&str], &str>)] = &[
        ("alpha", Ok(&["alpha"])),
        (
            "beta:2345 user=admin      # we'll tell shlex",
            Ok(&["beta:2345", "user=admin"]),
        ),
        (
            "gamma sudo=True user=root # to ignore comments",
            Ok(&["gamma", "sudo=True", "user=root"]),
        ),
        ("  a \t b\r\nc  ", Ok(&["a", "b", "c"])),
        ("a'b'c", Ok(&["abc"])),
        ("x=\"\"", Ok(&["x="])),
        ("\"\"", Ok(&[""])),
        ("''", Ok(&[""])),
        ("\"\" ''", Ok(&["", ""])),
        ("a \"b c\" d", Ok(&["a", "b c", "d"])),
        ("x='a b'", Ok(&["x=a b"])),
        ("a\\ b", Ok(&["a b"])),
        ("a\\#b", Ok(&["a#b"])),
        ("\"a\\\"b\"", Ok(&["a\"b"])),
        ("\"a\\\\b\"", Ok(&["a\\b"])),
        ("\"a\\nb\"", Ok(&["a\\nb"])),
        ("'a\\nb'", Ok(&["a\\nb"])),
        ("'a\\'", Ok(&["a\\"])),
        ("\"\\$\"", Ok(&["\\$"])),
        ("a#b c", Ok(&["a"])),
        ("a #b c", Ok(&["a"])),
        ("#x", Ok(&[])),
        ("a \"#b\" c", Ok(&["a", "#b", "c"])),
        ("\"\"#x", Ok(&[""])),
        ("x=\"\"#c", Ok(&["x="])),
        ("a # c\nb", Ok(&["a", "b"])),
        ("a\u{c}b", Ok(&["a\u{c}b"])),
        ("é ü", Ok(&["é", "ü"])),
        ("a\\\nb", Ok(&["a\nb"])),
        ("k=\"[1, 'two']\"", Ok(&["k=[1, 'two']"])),
        ("", Ok(&[])),
        ("   ", Ok(&[])),
        ("a \"b", Err("No closing quotation")),
        ("a 'b", Err("No closing quotation")),
        ("a \\", Err("No escaped character")),
        ("\"a\\", Err("No escaped character")),
        ("x='unclosed", Err("No closing quotation")),
    ];

    #[test]
    fn shlex_splits_as_python_does() {
        for &(line, want) in WORDS {
            let want = want
                .map(|words| words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
                .map_err(str::to_owned);
            assert_eq!(split(line), want, "shlex_split({line:?})");
        }
    }
}
