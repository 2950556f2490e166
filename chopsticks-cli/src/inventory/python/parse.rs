//! Python's parser, for the expressions `literal_eval` takes: constants,
//! lists, tuples (also a bare `1, 2`), sets and `set()`, dicts, a sign
//! before a number, and a real number plus or minus an imaginary one.
//! Anything else, a name, a call, an operator, is not a literal.

use super::lex::{Lexer, Tok};
use super::value::Py;

/// Reads `text` as `ast.literal_eval` does (after its stripping of
/// leading blanks): the value, or `None` for `ValueError` or
/// `SyntaxError`.
pub(super) fn parse(text: &str) -> Option<Py> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        ahead: None,
    };
    parser.top()
}

/// What an expression is, as far as `literal_eval` cares.
enum Node {
    /// A constant, or a list, tuple, set or dict.
    Plain(Py),
    /// A sign applied to a number.
    Signed(Py),
    /// A real number plus or minus an imaginary one.
    Sum(Py),
    /// The name `set`, a value only when called with nothing.
    SetName,
}

impl Node {
    /// Its value, as `literal_eval` takes one anywhere (not the bare name
    /// `set`).
    fn value(self) -> Option<Py> {
        match self {
            Node::Plain(v) | Node::Signed(v) | Node::Sum(v) => Some(v),
            Node::SetName => None,
        }
    }
}

/// Python's parser for the expressions `literal_eval` takes; `None` from
/// any of its methods means `ValueError` or `SyntaxError`.
struct Parser {
    /// Where its tokens come from.
    lexer: Lexer,
    /// The token looked at and not yet taken.
    ahead: Option<Tok>,
}

impl Parser {
    /// The next token, not taken.
    fn peek(&mut self) -> Option<&Tok> {
        if self.ahead.is_none() {
            self.ahead = Some(self.lexer.next()?);
        }
        self.ahead.as_ref()
    }

    /// The next token, taken.
    fn bump(&mut self) -> Option<Tok> {
        match self.ahead.take() {
            Some(tok) => Some(tok),
            None => self.lexer.next(),
        }
    }

    /// Takes the punctuation `p` if it comes next.
    fn eat(&mut self, p: u8) -> Option<bool> {
        let found = matches!(self.peek()?, Tok::Punct(c) if *c == p);
        if found {
            self.ahead = None;
        }
        Some(found)
    }

    /// Takes the punctuation `p`, which must come next.
    fn expect(&mut self, p: u8) -> Option<()> {
        self.eat(p)?.then_some(())
    }

    /// The whole text: an expression or a bare tuple, then only blank
    /// lines.
    fn top(&mut self) -> Option<Py> {
        let first = self.expr()?;
        let value = if self.eat(b',')? {
            let mut items = vec![first.value()?];
            while !matches!(self.peek()?, Tok::Newline | Tok::End) {
                items.push(self.expr()?.value()?);
                if !self.eat(b',')? {
                    break;
                }
            }
            Py::Tuple(items)
        } else {
            first.value()?
        };
        while matches!(self.peek()?, Tok::Newline) {
            self.ahead = None;
        }
        matches!(self.peek()?, Tok::End).then_some(value)
    }

    /// An expression: a term, or a real number plus or minus an imaginary
    /// one (any other sum is not a literal).
    fn expr(&mut self) -> Option<Node> {
        let left = self.term()?;
        let sub = match self.peek()? {
            Tok::Punct(b'+') => false,
            Tok::Punct(b'-') => true,
            _ => return Some(left),
        };
        self.ahead = None;
        let right = self.term()?;
        if matches!(self.peek()?, Tok::Punct(b'+' | b'-')) {
            return None;
        }
        let left = match left {
            // An int too big for a float: Python's OverflowError.
            Node::Plain(Py::Int(i)) | Node::Signed(Py::Int(i)) => {
                Some(i.to_f64()).filter(|f| f.is_finite())?
            }
            Node::Plain(Py::Float(f)) | Node::Signed(Py::Float(f)) => f,
            _ => return None,
        };
        let Node::Plain(Py::Complex(re, im)) = right else {
            return None;
        };
        let value = if sub {
            Py::Complex(left - re, 0.0 - im)
        } else {
            Py::Complex(left + re, 0.0 + im)
        };
        Some(Node::Sum(value))
    }

    /// A term: a primary with at most one sign, which needs a number.
    fn term(&mut self) -> Option<Node> {
        let neg = match self.peek()? {
            Tok::Punct(b'+') => false,
            Tok::Punct(b'-') => true,
            _ => return self.primary(),
        };
        self.ahead = None;
        let value = match self.primary()? {
            Node::Plain(Py::Int(i)) => Py::Int(if neg { i.negate() } else { i }),
            Node::Plain(Py::Float(f)) => Py::Float(if neg { -f } else { f }),
            Node::Plain(Py::Complex(re, im)) if neg => Py::Complex(-re, -im),
            Node::Plain(v @ Py::Complex(..)) => v,
            _ => return None,
        };
        Some(Node::Signed(value))
    }

    /// An atom, and `()` after `set`; no other call, and no subscript,
    /// makes a literal.
    fn primary(&mut self) -> Option<Node> {
        let mut node = self.atom()?;
        if matches!(node, Node::SetName) && self.eat(b'(')? {
            self.expect(b')')?;
            node = Node::Plain(Py::Set(Vec::new()));
        }
        if matches!(self.peek()?, Tok::Punct(b'(' | b'[')) {
            return None;
        }
        Some(node)
    }

    /// A constant, a name, or something in brackets.
    fn atom(&mut self) -> Option<Node> {
        let value = match self.bump()? {
            Tok::Number(value) => value,
            Tok::Str(value) => self.strings(value)?,
            Tok::True => Py::Bool(true),
            Tok::False => Py::Bool(false),
            Tok::None => Py::None,
            Tok::Ellipsis => Py::Ellipsis,
            Tok::Set => return Some(Node::SetName),
            Tok::Punct(b'(') => return self.paren(),
            Tok::Punct(b'[') => Py::List(self.items(b']', None)?),
            Tok::Punct(b'{') => self.brace()?,
            _ => return None,
        };
        Some(Node::Plain(value))
    }

    /// Strings after the first, joined to it.
    fn strings(&mut self, mut value: Py) -> Option<Py> {
        while matches!(self.peek()?, Tok::Str(_)) {
            let Some(Tok::Str(next)) = self.ahead.take() else {
                return None;
            };
            value = match (value, next) {
                (Py::Str(a), Py::Str(b)) => Py::Str(a + &b),
                (Py::Bytes(mut a), Py::Bytes(b)) => {
                    a.extend(b);
                    Py::Bytes(a)
                }
                // Bytes and str do not mix.
                _ => return None,
            };
        }
        Some(value)
    }

    /// After `(`: a tuple, or an expression in parentheses (which are no
    /// part of its value: `-(1)` is `-1`, `(set)()` is `set()`).
    fn paren(&mut self) -> Option<Node> {
        if self.eat(b')')? {
            return Some(Node::Plain(Py::Tuple(Vec::new())));
        }
        let first = self.expr()?;
        if self.eat(b')')? {
            return Some(first);
        }
        Some(Node::Plain(Py::Tuple(
            self.items(b')', Some(first.value()?))?,
        )))
    }

    /// After `{`: a dict or a set.
    fn brace(&mut self) -> Option<Py> {
        if self.eat(b'}')? {
            return Some(Py::Dict(Vec::new()));
        }
        let first = self.expr()?.value()?;
        if !self.eat(b':')? {
            return Some(Py::Set(self.items(b'}', Some(first))?));
        }
        let mut pairs = vec![(first, self.expr()?.value()?)];
        loop {
            if !self.eat(b',')? {
                self.expect(b'}')?;
                break;
            }
            if self.eat(b'}')? {
                break;
            }
            let key = self.expr()?.value()?;
            self.expect(b':')?;
            pairs.push((key, self.expr()?.value()?));
        }
        Some(Py::Dict(pairs))
    }

    /// Items separated by commas (one may end them), up to `close`, after
    /// `first` when there is one.
    fn items(&mut self, close: u8, first: Option<Py>) -> Option<Vec<Py>> {
        let mut items = Vec::new();
        if let Some(first) = first {
            items.push(first);
            if !self.eat(b',')? {
                self.expect(close)?;
                return Some(items);
            }
        }
        loop {
            if self.eat(close)? {
                return Some(items);
            }
            items.push(self.expr()?.value()?);
            if !self.eat(b',')? {
                self.expect(close)?;
                return Some(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Containers and constants as `literal_eval` and the INI plugin's
    //! clean-up read them in ansible-core 2.19's Python (3.11); `None`
    //! where `literal_eval` fails.

    use serde_json::Value;

    use crate::inventory::python::literal_eval;
    use crate::inventory::python::tests::check;

    /// Lists, tuples, sets, dicts, constants, and what is not a literal.
    const CONTAINERS: &[(&str, Option<&str>)] = &[
        ("[]", Some("[]")),
        ("()", Some("[]")),
        ("{}", Some("{}")),
        ("set()", Some("[]")),
        ("set ( )", Some("[]")),
        ("(set)()", Some("[]")),
        ("set", None),
        ("set([1])", None),
        ("set()()", None),
        ("frozenset()", None),
        ("[1, 2,]", Some("[1, 2]")),
        ("(1,)", Some("[1]")),
        ("(1)", Some("1")),
        ("((1))", Some("1")),
        ("1,", Some("[1]")),
        ("1, 2", Some("[1, 2]")),
        ("1, 2,", Some("[1, 2]")),
        (" 1, (2)", Some("[1, 2]")),
        (",", None),
        ("1,,", None),
        ("[,]", None),
        ("(,)", None),
        ("{,}", None),
        ("[1,,2]", None),
        ("[1 2]", None),
        ("(1 2)", None),
        ("{1:2:3}", None),
        ("{1:}", None),
        ("{:1}", None),
        ("{1: 2,}", Some("{\"1\": 2}")),
        ("{'a': 1, **{}}", None),
        ("[*[1]]", None),
        ("[1][0]", None),
        ("(1,)[0]", None),
        ("'a'[0]", None),
        ("(1)(2)", None),
        (
            "[1, [2, (3, {4: {5}})]]",
            Some("[1, [2, [3, {\"4\": [5]}]]]"),
        ),
        (
            "{'a': {1, 2}, 'b': (1,)}",
            Some("{\"a\": [1, 2], \"b\": [1]}"),
        ),
        ("[...]", Some("[\"...\"]")),
        ("Ellipsis", None),
        ("...", Some("\"...\"")),
        (". . .", None),
        ("True", Some("true")),
        ("False", Some("false")),
        ("None", Some("null")),
        ("true", None),
        ("NONE", None),
        ("x", None),
        ("blue", None),
        ("1 if True else 2", None),
        ("[x for x in y]", None),
        ("(x for x in y)", None),
        ("lambda: 1", None),
        ("(yield)", None),
        ("(a := 1)", None),
        ("a.b", None),
        ("1.real", None),
        ("$", None),
        ("1;2", None),
        ("1 2", None),
        ("{1, 1.0, True}", Some("[1]")),
        ("{True, 1}", Some("[true]")),
        ("{3, 1, 2}", Some("[1, 2, 3]")),
        ("{443, 80}", Some("[80, 443]")),
        ("{-1, -2, 1, 2}", Some("[1, 2, -1, -2]")),
        (
            "{10, 20, 30, 40, 50, 60, 70, 80}",
            Some("[70, 40, 10, 80, 50, 20, 60, 30]"),
        ),
        ("{8, 16, 0, 24, 32}", Some("[32, 0, 8, 16, 24]")),
        ("{1.5, 2.5, 0.5}", Some("[0.5, 1.5, 2.5]")),
        ("{1j, 2+3j, 7}", Some("[\"1j\", \"(2+3j)\", 7]")),
        ("{(1, 2), (2, 1)}", Some("[[1, 2], [2, 1]]")),
        ("{1, 1+0j}", Some("[1]")),
        ("{[1]}", None),
        ("{(1, [2])}", None),
    ];

    #[test]
    fn containers_and_constants() {
        check(CONTAINERS);
    }

    #[test]
    fn nesting_is_bounded_as_in_python() {
        // Python takes 200 nested brackets, not 201. At 200 this needs
        // about 1 MiB of stack in a debug build (a quarter of that in a
        // release build): a new thread's default 2 MiB holds it.
        let nest =
            |n: usize, open: &str, close: &str| format!("{}1{}", open.repeat(n), close.repeat(n));
        let deep = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let lists = literal_eval(&nest(200, "[", "]"));
                let dicts = literal_eval(&nest(200, "{1: ", "}"));
                let parens = literal_eval(&nest(200, "(", ")"));
                (lists.is_some(), dicts.is_some(), parens)
            })
            .expect("a thread")
            .join()
            .expect("no stack overflow");
        assert_eq!(deep, (true, true, Some(Value::from(1))));
        assert_eq!(literal_eval(&nest(201, "[", "]")), None);
        assert_eq!(literal_eval(&nest(201, "(", ")")), None);
        assert_eq!(literal_eval(&nest(100_000, "[", "]")), None);
        assert_eq!(literal_eval(&"- ".repeat(100_000)), None);
    }
}
