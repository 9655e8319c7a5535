//! Tokens of the expression language.
//!
//! Identifiers may contain dots (`sch.wide`, `api.stu`, as R names columns); any other column name
//! can be written between backticks (`` `q 12` ``). Positions are byte offsets into the source.

use super::ExprError;

/// One token with its byte span in the source.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    And,
    Or,
    Not,
    In,
    True,
    False,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
}

impl Tok {
    /// How the token is shown in error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Num(x) => format!("number {}", crate::frame::format_number(*x)),
            Tok::Str(s) => format!("text \"{s}\""),
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::In => "`in`".into(),
            Tok::True => "`true`".into(),
            Tok::False => "`false`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Split `src` into tokens.
pub(super) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let err = |end: usize, msg: String| ExprError {
            start,
            end,
            message: msg,
        };
        let simple = |kind: Tok, len: usize| Token {
            kind,
            start,
            end: start + len,
        };
        match c {
            '(' | ')' | '[' | ']' | ',' | '+' | '-' | '*' | '/' => {
                it.next();
                let kind = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    ',' => Tok::Comma,
                    '+' => Tok::Plus,
                    '-' => Tok::Minus,
                    '*' => Tok::Star,
                    _ => Tok::Slash,
                };
                out.push(simple(kind, 1));
            }
            '=' | '!' | '<' | '>' => {
                it.next();
                let followed_by_eq = matches!(it.peek(), Some(&(_, '=')));
                if followed_by_eq {
                    it.next();
                }
                let kind = match (c, followed_by_eq) {
                    ('=', true) => Tok::Eq,
                    ('!', true) => Tok::Ne,
                    ('<', true) => Tok::Le,
                    ('>', true) => Tok::Ge,
                    ('<', false) => Tok::Lt,
                    ('>', false) => Tok::Gt,
                    ('=', false) => {
                        return Err(err(
                            start + 1,
                            "`=` is not an operator: write `==` to compare".into(),
                        ));
                    }
                    _ => {
                        return Err(err(
                            start + 1,
                            "`!` is not an operator: write `not` or `!=`".into(),
                        ));
                    }
                };
                out.push(simple(kind, if followed_by_eq { 2 } else { 1 }));
            }
            '&' | '|' => {
                let word = if c == '&' { "and" } else { "or" };
                return Err(err(
                    start + 1,
                    format!("`{c}` is not an operator: write `{word}`"),
                ));
            }
            '"' => {
                it.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((i, ch)) = it.next() {
                    match ch {
                        '"' => {
                            out.push(Token {
                                kind: Tok::Str(std::mem::take(&mut s)),
                                start,
                                end: i + 1,
                            });
                            closed = true;
                            break;
                        }
                        '\\' => match it.next() {
                            Some((_, e @ ('"' | '\\'))) => s.push(e),
                            Some((j, other)) => {
                                return Err(ExprError {
                                    start: i,
                                    end: j + other.len_utf8(),
                                    message: format!(
                                        "unknown escape `\\{other}` in text (only \\\" and \\\\)"
                                    ),
                                });
                            }
                            None => break,
                        },
                        _ => s.push(ch),
                    }
                }
                if !closed {
                    return Err(err(
                        src.len(),
                        "text literal is not closed: missing `\"`".into(),
                    ));
                }
            }
            '`' => {
                it.next();
                let mut s = String::new();
                let mut closed = false;
                for (i, ch) in it.by_ref() {
                    if ch == '`' {
                        closed = true;
                        if s.is_empty() {
                            return Err(err(i + 1, "empty name between backticks".into()));
                        }
                        out.push(Token {
                            kind: Tok::Ident(std::mem::take(&mut s)),
                            start,
                            end: i + 1,
                        });
                        break;
                    }
                    s.push(ch);
                }
                if !closed {
                    return Err(err(src.len(), "name is not closed: missing '`'".into()));
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                let mut end = start;
                let mut prev = ' ';
                while let Some(&(i, ch)) = it.peek() {
                    let exp_sign = (ch == '+' || ch == '-') && (prev == 'e' || prev == 'E');
                    if ch.is_ascii_alphanumeric() || ch == '.' || ch == '_' || exp_sign {
                        it.next();
                        end = i + ch.len_utf8();
                        prev = ch;
                    } else {
                        break;
                    }
                }
                let text = &src[start..end];
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() && !text.contains(['i', 'I', 'n', 'N', '_']) => {
                        out.push(Token {
                            kind: Tok::Num(x),
                            start,
                            end,
                        });
                    }
                    _ => return Err(err(end, format!("`{text}` is not a number"))),
                }
            }
            c if is_ident_start(c) => {
                let mut end = start;
                while let Some(&(i, ch)) = it.peek() {
                    if is_ident_continue(ch) {
                        it.next();
                        end = i + ch.len_utf8();
                    } else {
                        break;
                    }
                }
                let word = &src[start..end];
                let kind = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::In,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    _ => Tok::Ident(word.to_string()),
                };
                out.push(Token { kind, start, end });
            }
            other => {
                return Err(err(
                    start + other.len_utf8(),
                    format!("unexpected character `{other}`"),
                ));
            }
        }
    }
    Ok(out)
}

/// True if `name` can be written in an expression without backticks.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if is_ident_start(c))
        && chars.all(is_ident_continue)
        && !matches!(name, "and" | "or" | "not" | "in" | "true" | "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s).expect("lexes").into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds("sch.wide == \"Yes\" and x<=1.5e2"),
            vec![
                Tok::Ident("sch.wide".into()),
                Tok::Eq,
                Tok::Str("Yes".into()),
                Tok::And,
                Tok::Ident("x".into()),
                Tok::Le,
                Tok::Num(150.0),
            ]
        );
        assert_eq!(kinds("`q 1` not in [1,2]").len(), 8);
        assert_eq!(kinds("1e-3"), vec![Tok::Num(0.001)]);
    }

    #[test]
    fn errors() {
        for bad in [
            "a = 1", "a && b", "!a", "\"open", "`x", "1x", "1e", "a # b", "\"\\q\"",
        ] {
            assert!(lex(bad).is_err(), "{bad}");
        }
    }
}
