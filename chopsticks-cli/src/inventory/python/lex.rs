//! Python's tokenizer, for the tokens a literal can hold: it turns the
//! text into numbers (see [`number`]), strings (see [`string`]), the names
//! `True`, `False`, `None` and `set`, `...`, brackets and the few
//! operators a literal uses, and it keeps Python's rules for blanks,
//! comments, line ends, indentation, backslash continuations and bracket
//! depth.

use super::number;
use super::string;
use super::value::Py;

/// The deepest nesting of brackets Python accepts ("too many nested
/// parentheses" past it); it also bounds the parser's recursion, to about
/// 1 MiB of stack in a debug build and a quarter of that in a release one.
const MAX_DEPTH: usize = 200;

/// A token of Python source.
#[derive(Debug)]
pub(super) enum Tok {
    /// A number literal: an int, a float, or for an imaginary literal
    /// (`2j`) a complex number with no real part.
    Number(Py),
    /// A string literal, escapes done.
    Str(Py),
    /// `True`.
    True,
    /// `False`.
    False,
    /// `None`.
    None,
    /// The name `set`.
    Set,
    /// `...`.
    Ellipsis,
    /// One of `()[]{},:+-`.
    Punct(u8),
    /// The end of a line outside brackets.
    Newline,
    /// The end of the text.
    End,
}

/// Python's tokenizer, for what a literal can hold; `None` from any of its
/// methods means a syntax error (or a name that is not part of a literal).
pub(super) struct Lexer {
    /// The source, line endings made `\n`.
    src: Vec<u8>,
    /// Where it is.
    pos: usize,
    /// How many brackets are open.
    depth: usize,
    /// Whether it is at the start of a line outside brackets.
    line_start: bool,
}

impl Lexer {
    /// A lexer at the start of `text`. Python's compiler reads any line
    /// ending as a newline.
    pub(super) fn new(text: &str) -> Lexer {
        let src = text.replace("\r\n", "\n").replace('\r', "\n").into_bytes();
        Lexer {
            src,
            pos: 0,
            depth: 0,
            line_start: true,
        }
    }

    /// The byte `k` past the current one.
    fn at(&self, k: usize) -> Option<u8> {
        self.src.get(self.pos + k).copied()
    }

    /// The next token.
    pub(super) fn next(&mut self) -> Option<Tok> {
        if std::mem::take(&mut self.line_start) {
            self.indentation()?;
        }
        loop {
            match self.at(0) {
                None => return Some(Tok::End),
                Some(b' ' | b'\t' | 0x0c) => self.pos += 1,
                Some(b'#') => self.skip_comment(),
                Some(b'\n') => {
                    self.pos += 1;
                    if self.depth == 0 {
                        self.line_start = true;
                        return Some(Tok::Newline);
                    }
                }
                Some(b'\\') => self.continuation()?,
                Some(_) => return self.token(),
            }
        }
    }

    /// Skips blank lines and checks that the next one is not indented (the
    /// only indentation an expression may have is none).
    fn indentation(&mut self) -> Option<()> {
        loop {
            let (mut col, mut cont_col) = (0, 0);
            loop {
                match self.at(0) {
                    Some(b' ') => col += 1,
                    Some(b'\t') => col = (col / 8 + 1) * 8,
                    Some(0x0c) => col = 0,
                    Some(b'\\') => {
                        // The first backslash's column is the line's.
                        if cont_col == 0 {
                            cont_col = col;
                        }
                        self.continuation()?;
                        continue;
                    }
                    _ => break,
                }
                self.pos += 1;
            }
            match self.at(0) {
                Some(b'#') => self.skip_comment(),
                Some(b'\n') => {}
                _ => return (cont_col == 0 && col == 0).then_some(()),
            }
            if self.at(0).is_none() {
                return Some(());
            }
            self.pos += 1;
        }
    }

    /// Skips a comment, up to the end of its line.
    fn skip_comment(&mut self) {
        while self.at(0).is_some_and(|c| c != b'\n') {
            self.pos += 1;
        }
    }

    /// Skips a backslash that joins two lines; nothing else may follow a
    /// backslash, and the text may not end just after.
    fn continuation(&mut self) -> Option<()> {
        if self.at(1) != Some(b'\n') || self.at(2).is_none() {
            return None;
        }
        self.pos += 2;
        Some(())
    }

    /// The token that starts here.
    fn token(&mut self) -> Option<Tok> {
        let c = self.at(0)?;
        match c {
            b'0'..=b'9' => self.number(),
            b'.' if self.at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            b'.' if self.src[self.pos..].starts_with(b"...") => {
                self.pos += 3;
                Some(Tok::Ellipsis)
            }
            b'(' | b'[' | b'{' => {
                self.depth += 1;
                self.pos += 1;
                (self.depth <= MAX_DEPTH).then_some(Tok::Punct(c))
            }
            b')' | b']' | b'}' => {
                self.depth = self.depth.checked_sub(1)?;
                self.pos += 1;
                Some(Tok::Punct(c))
            }
            b',' | b':' | b'+' | b'-' => {
                self.pos += 1;
                Some(Tok::Punct(c))
            }
            b'\'' | b'"' => self.string(false, false),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.word(),
            _ => None,
        }
    }

    /// A name, or the prefix of a string.
    fn word(&mut self) -> Option<Tok> {
        let start = self.pos;
        while self
            .at(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        let word = std::str::from_utf8(&self.src[start..self.pos]).ok()?;
        if matches!(self.at(0), Some(b'\'' | b'"')) {
            return match word.to_ascii_lowercase().as_str() {
                "r" => self.string(true, false),
                "u" => self.string(false, false),
                "b" => self.string(false, true),
                "br" | "rb" => self.string(true, true),
                // f-strings are not constants; other prefixes do not exist.
                _ => None,
            };
        }
        match word {
            "True" => Some(Tok::True),
            "False" => Some(Tok::False),
            "None" => Some(Tok::None),
            "set" => Some(Tok::Set),
            _ => None,
        }
    }

    /// A number literal, the current byte its first.
    fn number(&mut self) -> Option<Tok> {
        let (value, len) = number::scan(&self.src[self.pos..])?;
        self.pos += len;
        Some(Tok::Number(value))
    }

    /// A string literal, the current byte its opening quote.
    fn string(&mut self, raw: bool, bytes: bool) -> Option<Tok> {
        let (value, len) = string::scan(&self.src[self.pos..], raw, bytes)?;
        self.pos += len;
        Some(Tok::Str(value))
    }
}

#[cfg(test)]
mod tests {
    //! Blanks, comments and line ends around a literal, as `literal_eval`
    //! reads them in ansible-core 2.19's Python (3.11); `None` where it
    //! fails.

    use crate::inventory::python::tests::check;

    /// Blanks, comments, line ends and backslash continuations.
    const SPACE: &[(&str, Option<&str>)] = &[
        (" 1", Some("1")),
        ("\t1", Some("1")),
        ("  \t 1", Some("1")),
        ("1 ", Some("1")),
        ("1\t", Some("1")),
        ("1\n", Some("1")),
        ("1\n\n", Some("1")),
        ("\n1", Some("1")),
        ("\n\n1\n\n", Some("1")),
        ("\n 1", None),
        ("1\n2", None),
        ("1\n  ", None),
        ("1\n\t", None),
        ("1\n  # c\n", Some("1")),
        ("# c\n1", Some("1")),
        ("# c\n 1", None),
        (" # c\n1", Some("1")),
        ("# c", None),
        ("", None),
        ("  ", None),
        ("1 # c", Some("1")),
        ("\"a\" # c \n", Some("\"a\"")),
        ("[1, # c\n 2]", Some("[1, 2]")),
        ("[\n\n  1,\n]", Some("[1]")),
        ("(\n1\n)", Some("1")),
        ("1+\n2j", None),
        ("(1+\n2j)", Some("\"(1+2j)\"")),
        ("-\n1", None),
        ("[-\n1]", Some("[-1]")),
        ("1\r", Some("1")),
        ("1\r\n", Some("1")),
        ("\r\n1", Some("1")),
        ("\u{c}1", Some("1")),
        ("1\u{c}", Some("1")),
        ("\u{c} 1", None),
        ("\u{c}\n1", Some("1")),
        ("1 \u{c}", Some("1")),
        ("\u{b}1", None),
        ("1\u{b}", None),
        ("\u{0}1", None),
        ("'\u{0}'", None),
        ("﻿1", None),
        ("1 ", None),
        ("1 \\\n+2j", Some("\"(1+2j)\"")),
        ("1 \\\n", None),
        ("\\\n1", Some("1")),
        ("\\\n\n1", Some("1")),
        ("\\\n  1", None),
        ("\u{c} \\\n1", None),
        ("\\\n \\\n1", None),
        ("1\n\\\n", None),
        ("1\n\\\n\n", Some("1")),
        ("1\\\n\n", Some("1")),
        ("1 \\\n# c", Some("1")),
        ("1 \\\n  ", Some("1")),
        ("[1, \\\n 2]", Some("[1, 2]")),
        ("[1, \\ 2]", None),
        ("1\n\\", None),
        ("1 #c\\\n+2j", None),
        ("'a' \\\n 'b'", Some("\"ab\"")),
        ("1\n \\\n#c", Some("1")),
    ];

    #[test]
    fn whitespace_comments_and_line_ends() {
        check(SPACE);
    }
}
