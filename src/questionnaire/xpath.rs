//! XLSForm expressions (the XPath subset forms use in `relevant`, `calculation` and
//! `constraint`) translated into cvsurvey expressions, for `questionnaire import FORM.xlsx`.
//!
//! The contract: a translated skip rule is true exactly where ODK Collect would ask the
//! question. Anything outside the translated subset is refused with the reason, and the draft
//! keeps the original as a comment.

/// How a form field is stored in the drafted questionnaire, as far as an expression using it
/// needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// `integer`, `decimal`, `range`: a number.
    Number,
    /// `text`, `date`, `time`, `dateTime` and other text columns.
    Text,
    /// `select_one LIST`: one coded column; `numeric` when every code is a number (the column is
    /// then stored as numbers and compared as numbers).
    SelectOne {
        /// The list's codes (choice `name`s), in list order.
        codes: Vec<String>,
        /// Every code is a number.
        numeric: bool,
    },
    /// `select_multiple LIST`: one 0/1 item column per choice.
    SelectMultiple {
        /// The choices and the column each is exported as.
        items: Vec<SelectItem>,
    },
    /// `calculate`: a derived variable (usable in calculations, never in skip rules).
    Calculated,
}

/// One choice of a `select_multiple` and its 0/1 column.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    /// The choice's `name` in the choices sheet.
    pub code: String,
    /// Its column in the data (e.g. `q/choice` or `q_choice`).
    pub column: String,
}

/// A form field an expression may refer to as `${name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FormField {
    /// The field's `name` in the survey sheet.
    pub name: String,
    /// Its variable in the drafted questionnaire (the data column).
    pub column: String,
    /// How it is stored.
    pub kind: FieldKind,
}

/// Why an expression was not translated, said in the draft's comment and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// E.g. "function regex() is not translated".
    pub reason: String,
}

/// Finds the field `${name}` refers to; `Err` says why it cannot be used here (unknown, or a
/// field of another level).
pub type FieldLookup<'a> = dyn Fn(&str) -> Result<&'a FormField, String> + 'a;

/// A `relevant` as an `asked_if`: true exactly where ODK Collect evaluates the XPath to true.
///
/// Where ODK reads a blank field as `''` (so `${age} != 5` is true for a blank age), the
/// translation says so explicitly (`coalesce(age != 5, true)`), because a comparison with a
/// blank cell is unknown in cvsurvey and an unknown skip rule does not ask the question.
pub fn translate_relevant(xpath: &str, field: &FieldLookup<'_>) -> Result<String, Untranslated> {
    let ast = parse(xpath)?;
    let tr = Translator {
        lookup: field,
        purpose: Purpose::SkipRule,
    };
    let cond = tr.to_cond(tr.value(&ast)?)?;
    Ok(cond.true_exactly().render())
}

/// A `calculation` as a derived variable's `expr` (numbers and true/false only).
///
/// True/false results are definite where ODK's are (a blank input makes a comparison false, as
/// in ODK); a number computed from a blank input is *missing* here where ODK gives `NaN` or
/// `''` (see `docs/xlsform-expressions.md`).
pub fn translate_calculation(xpath: &str, field: &FieldLookup<'_>) -> Result<String, Untranslated> {
    let ast = parse(xpath)?;
    let tr = Translator {
        lookup: field,
        purpose: Purpose::Calculation,
    };
    match tr.value(&ast)? {
        Val::Cond(c) => Ok(c.definite().out.render()),
        Val::Str(_) => Err(untranslated(
            "the calculation gives text; only numbers and true/false are translated",
        )),
        Val::Field(f) => match number_column(f) {
            Some(_) => Ok(tr.number(Val::Field(f))?.text),
            None => Err(untranslated(format!(
                "the calculation gives the text of ${{{}}}; only numbers and true/false are \
                 translated",
                f.name
            ))),
        },
        other => Ok(tr.number(other)?.text),
    }
}

/// A numeric `constraint` such as `. >= 0 and . <= 120` as an inclusive range (an open end is
/// infinite); `None` when the constraint is not a range on `.`.
///
/// Only inclusive bounds (`>=`, `<=`, on either side of `.`, joined by `and`) make a range: a
/// strict bound (`. > 0`) is an inclusive range only for whole numbers, and the constraint alone
/// does not say whether the field is an `integer` or a `decimal`, so it gives `None`.
pub fn constraint_range(xpath: &str) -> Option<(f64, f64)> {
    let ast = parse(xpath).ok()?;
    let mut range = (f64::NEG_INFINITY, f64::INFINITY);
    let mut bounded = false;
    let mut conjuncts = vec![&ast];
    while let Some(node) = conjuncts.pop() {
        let Ast::Bin(op, lhs, rhs) = node else {
            return None;
        };
        // `. >= a` is a lower bound; `a <= .` is the same bound written the other way round.
        let (lower, bound) = match (op, literal_number(lhs), literal_number(rhs)) {
            (Op::And, ..) => {
                conjuncts.push(lhs);
                conjuncts.push(rhs);
                continue;
            }
            (Op::Ge, None, Some(b)) if **lhs == Ast::Current => (true, b),
            (Op::Le, None, Some(b)) if **lhs == Ast::Current => (false, b),
            (Op::Le, Some(b), None) if **rhs == Ast::Current => (true, b),
            (Op::Ge, Some(b), None) if **rhs == Ast::Current => (false, b),
            _ => return None,
        };
        if lower {
            range.0 = range.0.max(bound);
        } else {
            range.1 = range.1.min(bound);
        }
        bounded = true;
    }
    (bounded && range.0 <= range.1).then_some(range)
}

fn literal_number(ast: &Ast) -> Option<f64> {
    match ast {
        Ast::Num(x) => Some(*x),
        Ast::Neg(inner) => literal_number(inner).map(|x| -x),
        _ => None,
    }
}

fn untranslated(reason: impl Into<String>) -> Untranslated {
    Untranslated {
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The XPath subset: tokens and syntax tree.

/// Deepest syntax tree accepted (parentheses, calls, unary minus and chained operators such as
/// `${q} = 1 or ${q} = 2 or ...` each add a level), so that a hostile form cannot exhaust the
/// stack; real skip rules stay far below it.
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `${name}`
    Field(String),
    /// `.`, the current field.
    Dot,
    Str(String),
    Num(f64),
    /// A function name or an operator name (`and`, `or`, `div`, `mod`).
    Name(String),
    LParen,
    RParen,
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
    /// `/`, `[`, `]`, `@`, `|`, `..`: the start of a path expression.
    Path(String),
}

impl Tok {
    /// How the token is shown in messages.
    fn describe(&self) -> String {
        match self {
            Tok::Field(name) => format!("${{{name}}}"),
            Tok::Dot => "`.`".into(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Num(x) => crate::frame::format_number(*x),
            Tok::Name(n) => format!("`{n}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Path(p) => format!("`{p}`"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// Syntax tree of the XPath subset.
#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Field(String),
    Current,
    Str(String),
    Num(f64),
    Neg(Box<Ast>),
    Bin(Op, Box<Ast>, Box<Ast>),
    Call(String, Vec<Ast>),
}

/// Position in messages: the 1-based character (not byte) where the problem is.
fn char_position(src: &str, byte: usize) -> usize {
    src[..byte.min(src.len())].chars().count() + 1
}

fn syntax_error(src: &str, byte: usize, what: impl std::fmt::Display) -> Untranslated {
    untranslated(format!(
        "syntax error at character {}: {what}",
        char_position(src, byte)
    ))
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, Untranslated> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < src.len() {
        let Some(c) = src[i..].chars().next() else {
            break;
        };
        let start = i;
        let next = bytes.get(i + 1).copied();
        let tok = match c {
            c if c.is_whitespace() => {
                i += c.len_utf8();
                continue;
            }
            '$' if next == Some(b'{') => {
                let Some(close) = src[i..].find('}') else {
                    return Err(syntax_error(src, i, "`${` is not closed by `}`"));
                };
                let name = src[i + 2..i + close].trim();
                if name.is_empty() {
                    return Err(syntax_error(src, i, "empty field name in `${}`"));
                }
                i += close + 1;
                Tok::Field(name.to_string())
            }
            '\'' | '"' => {
                let Some(close) = src[i + 1..].find(c) else {
                    return Err(syntax_error(src, i, format!("text is not closed by {c}")));
                };
                let text = src[i + 1..i + 1 + close].to_string();
                i += close + 2;
                Tok::Str(text)
            }
            '.' if next == Some(b'.') => {
                i += 2;
                Tok::Path("..".into())
            }
            '.' if !next.is_some_and(|b| b.is_ascii_digit()) => {
                i += 1;
                Tok::Dot
            }
            c if c.is_ascii_digit() || c == '.' => {
                let len = src[i..]
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .unwrap_or(src.len() - i);
                let text = &src[i..i + len];
                let Ok(x) = text.parse::<f64>() else {
                    return Err(syntax_error(src, i, format!("`{text}` is not a number")));
                };
                i += len;
                Tok::Num(x)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = src[i..]
                    .find(|ch: char| {
                        !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':'))
                    })
                    .unwrap_or(src.len() - i);
                let name = &src[i..i + len];
                i += len;
                Tok::Name(name.to_string())
            }
            '!' if next == Some(b'=') => {
                i += 2;
                Tok::Ne
            }
            '<' | '>' => {
                let with_eq = next == Some(b'=');
                i += if with_eq { 2 } else { 1 };
                match (c, with_eq) {
                    ('<', false) => Tok::Lt,
                    ('<', true) => Tok::Le,
                    ('>', false) => Tok::Gt,
                    _ => Tok::Ge,
                }
            }
            '=' | '(' | ')' | ',' | '+' | '-' | '*' => {
                i += 1;
                match c {
                    '=' => Tok::Eq,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '+' => Tok::Plus,
                    '-' => Tok::Minus,
                    _ => Tok::Star,
                }
            }
            '/' | '[' | ']' | '@' | '|' => {
                i += 1;
                Tok::Path(c.to_string())
            }
            other => {
                return Err(syntax_error(
                    src,
                    i,
                    format!("unexpected character `{other}`"),
                ));
            }
        };
        out.push((tok, start));
    }
    Ok(out)
}

/// Parse the XPath subset (XPath 1.0 precedence: `or`, `and`, `= !=`, `< <= > >=`, `+ -`,
/// `* div mod`, unary `-`).
fn parse(src: &str) -> Result<Ast, Untranslated> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(untranslated("the expression is empty"));
    }
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    let ast = p.or()?;
    match p.toks.get(p.pos) {
        None => Ok(ast),
        Some((tok, at)) => Err(p.unexpected(tok, *at, "an operator or the end")),
    }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn unexpected(&self, tok: &Tok, at: usize, wanted: &str) -> Untranslated {
        if let Tok::Path(p) = tok {
            return untranslated(format!(
                "path expressions (`{p}` at character {}) are not translated; refer to fields as \
                 ${{name}}",
                char_position(self.src, at)
            ));
        }
        syntax_error(
            self.src,
            at,
            format!("expected {wanted}, found {}", tok.describe()),
        )
    }

    fn binary_op(&self, level: u8) -> Option<Op> {
        let op = match self.peek()? {
            Tok::Name(n) if n == "or" => Op::Or,
            Tok::Name(n) if n == "and" => Op::And,
            Tok::Name(n) if n == "div" => Op::Div,
            Tok::Name(n) if n == "mod" => Op::Mod,
            Tok::Eq => Op::Eq,
            Tok::Ne => Op::Ne,
            Tok::Lt => Op::Lt,
            Tok::Le => Op::Le,
            Tok::Gt => Op::Gt,
            Tok::Ge => Op::Ge,
            Tok::Plus => Op::Add,
            Tok::Minus => Op::Sub,
            Tok::Star => Op::Mul,
            _ => return None,
        };
        let op_level = match op {
            Op::Or => 0,
            Op::And => 1,
            Op::Eq | Op::Ne => 2,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => 3,
            Op::Add | Op::Sub => 4,
            Op::Mul | Op::Div | Op::Mod => 5,
        };
        (op_level == level).then_some(op)
    }

    /// Left-associative binary operators of one precedence level (0 = `or` .. 5 = `*`).
    fn level(&mut self, level: u8) -> Result<Ast, Untranslated> {
        let operand = |p: &mut Self| {
            if level == 5 {
                p.unary()
            } else {
                p.level(level + 1)
            }
        };
        let mut lhs = operand(self)?;
        // Each operator of a chain deepens the (left-leaning) tree by one level.
        let mut chained = 0;
        while let Some(op) = self.binary_op(level) {
            self.pos += 1;
            chained += 1;
            self.deeper()?;
            let rhs = operand(self)?;
            lhs = Ast::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= chained;
        Ok(lhs)
    }

    /// One level deeper; an error beyond [`MAX_DEPTH`] (parsing stops there, so the count
    /// need not be restored on errors).
    fn deeper(&mut self) -> Result<(), Untranslated> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(untranslated(format!(
                "the expression is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Ast, Untranslated> {
        self.deeper()?;
        let ast = self.level(0)?;
        self.depth -= 1;
        Ok(ast)
    }

    fn unary(&mut self) -> Result<Ast, Untranslated> {
        if self.peek() == Some(&Tok::Minus) {
            self.pos += 1;
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Neg(Box::new(inner)));
        }
        self.primary()
    }

    fn expect(&mut self, tok: &Tok, wanted: &str) -> Result<(), Untranslated> {
        match self.toks.get(self.pos) {
            Some((t, _)) if t == tok => {
                self.pos += 1;
                Ok(())
            }
            Some((t, at)) => Err(self.unexpected(t, *at, wanted)),
            None => Err(syntax_error(
                self.src,
                self.src.len(),
                format!("expected {wanted}, found the end"),
            )),
        }
    }

    fn primary(&mut self) -> Result<Ast, Untranslated> {
        let Some((tok, at)) = self.toks.get(self.pos).cloned() else {
            return Err(syntax_error(
                self.src,
                self.src.len(),
                "expected a value, found the end",
            ));
        };
        self.pos += 1;
        match tok {
            Tok::Field(name) => Ok(Ast::Field(name)),
            Tok::Dot => Ok(Ast::Current),
            Tok::Str(s) => Ok(Ast::Str(s)),
            Tok::Num(x) => Ok(Ast::Num(x)),
            Tok::LParen => {
                let inner = self.or()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Name(name) if self.peek() == Some(&Tok::LParen) => {
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.or()?);
                        if self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            continue;
                        }
                        self.expect(&Tok::RParen, "`,` or `)`")?;
                        break;
                    }
                }
                Ok(Ast::Call(name, args))
            }
            Tok::Name(name) => Err(untranslated(format!(
                "path expressions (`{name}` at character {}) are not translated; refer to \
                 fields as ${{name}}",
                char_position(self.src, at)
            ))),
            other => Err(self.unexpected(&other, at, "a value")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XPath 1.0 values, as JavaRosa converts them.

/// XPath `number()` of a string (XPath 1.0 §4.4): optional whitespace, an optional `-`, digits
/// with an optional decimal point; anything else (including `''`) is NaN.
fn xpath_number(s: &str) -> f64 {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let well_formed = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if well_formed {
        t.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// A literal, or a field's answer, as an XPath value.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
}

impl Lit {
    fn number(&self) -> f64 {
        match self {
            Lit::Num(x) => *x,
            Lit::Str(s) => xpath_number(s),
        }
    }
}

/// XPath comparison of two non-boolean values as JavaRosa does it: `=` compares numbers when
/// either side is a number (equal within 1e-12), else strings; `<`, `<=`, `>`, `>=` always
/// compare numbers, and NaN compares false.
fn compare_literals(op: Op, a: &Lit, b: &Lit) -> bool {
    match op {
        Op::Eq | Op::Ne => {
            let eq = match (a, b) {
                (Lit::Str(x), Lit::Str(y)) => x == y,
                _ => (a.number() - b.number()).abs() < 1e-12,
            };
            eq == (op == Op::Eq)
        }
        Op::Lt => a.number() < b.number(),
        Op::Le => a.number() <= b.number(),
        Op::Gt => a.number() > b.number(),
        Op::Ge => a.number() >= b.number(),
        _ => false,
    }
}

/// `<` becomes `>` when the operands swap places.
fn mirrored(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// cvsurvey expressions being built.

/// Output precedence, loosest first, as in `docs/questionnaire.md`.
const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_NOT: u8 = 3;
const P_CMP: u8 = 4;
const P_ADD: u8 = 5;
const P_MUL: u8 = 6;
const P_NEG: u8 = 7;
const P_ATOM: u8 = 8;

/// A number or text expression in cvsurvey syntax and its precedence.
#[derive(Debug, Clone, PartialEq)]
struct Operand {
    text: String,
    prec: u8,
    /// Never unknown (a literal, `count-selected()`, a `coalesce` ending in a literal).
    definite: bool,
}

impl Operand {
    /// A variable, or a call that can be unknown.
    fn atom(text: String) -> Operand {
        Operand {
            text,
            prec: P_ATOM,
            definite: false,
        }
    }

    /// A literal, or a call that always has a value.
    fn constant(text: String) -> Operand {
        Operand {
            text,
            prec: P_ATOM,
            definite: true,
        }
    }

    /// The text, in parentheses when it binds looser than `min`.
    fn at(&self, min: u8) -> String {
        if self.prec < min {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// A true/false expression in cvsurvey's language, kept as a tree so that negation can be
/// pushed to the comparisons (`not (age > 15)` is written `age <= 15`).
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Const(bool),
    Cmp(Operand, &'static str, Operand),
    In {
        var: String,
        items: Vec<String>,
        negated: bool,
    },
    Answered {
        var: String,
        negated: bool,
    },
    And(Vec<Out>),
    Or(Vec<Out>),
    Coalesce(Box<Out>, bool),
    If(Box<Out>, Box<Out>, Box<Out>),
    /// `a == b` (or `!=`) of two true/false expressions.
    BoolEq(Box<Out>, Box<Out>, bool),
}

fn negated_comparison(op: &str) -> &'static str {
    match op {
        "==" => "!=",
        "!=" => "==",
        "<" => ">=",
        "<=" => ">",
        ">" => "<=",
        _ => "<",
    }
}

impl Out {
    /// `not self`, pushed inwards. Exact under three-valued logic: cvsurvey values are never
    /// NaN, so `not (a < b)` and `a >= b` agree everywhere, and De Morgan's laws hold in Kleene's
    /// logic.
    fn negate(self) -> Out {
        match self {
            Out::Const(b) => Out::Const(!b),
            Out::Cmp(a, op, b) => Out::Cmp(a, negated_comparison(op), b),
            Out::In {
                var,
                items,
                negated,
            } => Out::In {
                var,
                items,
                negated: !negated,
            },
            Out::Answered { var, negated } => Out::Answered {
                var,
                negated: !negated,
            },
            Out::And(v) => Out::Or(v.into_iter().map(Out::negate).collect()),
            Out::Or(v) => Out::And(v.into_iter().map(Out::negate).collect()),
            Out::Coalesce(e, d) => Out::Coalesce(Box::new(e.negate()), !d),
            Out::If(c, a, b) => Out::If(c, Box::new(a.negate()), Box::new(b.negate())),
            Out::BoolEq(a, b, ne) => Out::BoolEq(a, b, !ne),
        }
    }

    /// Whether the expression can evaluate to unknown (it reads a cell outside `answered()` or
    /// `coalesce()`).
    fn may_be_unknown(&self) -> bool {
        match self {
            Out::Const(_) | Out::Answered { .. } | Out::Coalesce(..) => false,
            Out::Cmp(a, _, b) => !(a.definite && b.definite),
            Out::In { .. } => true,
            Out::And(v) | Out::Or(v) => v.iter().any(Out::may_be_unknown),
            Out::If(c, a, b) => c.may_be_unknown() || a.may_be_unknown() || b.may_be_unknown(),
            Out::BoolEq(a, b, _) => a.may_be_unknown() || b.may_be_unknown(),
        }
    }

    fn prec(&self) -> u8 {
        match self {
            Out::Cmp(..) | Out::In { .. } | Out::BoolEq(..) => P_CMP,
            Out::Answered { negated: true, .. } => P_NOT,
            Out::And(_) => P_AND,
            Out::Or(_) => P_OR,
            _ => P_ATOM,
        }
    }

    fn render(&self) -> String {
        match self {
            Out::Const(b) => b.to_string(),
            Out::Cmp(a, op, b) => format!("{} {op} {}", a.at(P_ADD), b.at(P_ADD)),
            Out::In {
                var,
                items,
                negated,
            } => format!(
                "{var} {}in [{}]",
                if *negated { "not " } else { "" },
                items.join(", ")
            ),
            Out::Answered { var, negated } => {
                format!("{}answered({var})", if *negated { "not " } else { "" })
            }
            // `and` inside `or` is put in parentheses although it binds tighter: readers of
            // skip rules should not need the precedence table.
            Out::And(v) => join(v, " and ", P_NOT),
            Out::Or(v) => join(v, " or ", P_NOT),
            Out::Coalesce(e, d) => format!("coalesce({}, {d})", e.render()),
            Out::If(c, a, b) => format!("if({}, {}, {})", c.render(), a.render(), b.render()),
            Out::BoolEq(a, b, ne) => format!(
                "{} {} {}",
                paren(a, P_ADD),
                if *ne { "!=" } else { "==" },
                paren(b, P_ADD)
            ),
        }
    }
}

fn paren(out: &Out, min: u8) -> String {
    if out.prec() < min {
        format!("({})", out.render())
    } else {
        out.render()
    }
}

/// Parts of an `and`/`or` chain up to which it is written flat.
const FLAT_CHAIN: usize = 16;

/// The parts joined by `sep`. A longer chain is written as a balanced tree of parenthesised
/// halves, because cvsurvey's parser limits the depth of an expression and a flat chain of `n`
/// parts is `n` levels deep.
fn join(v: &[Out], sep: &str, min: u8) -> String {
    if v.len() > FLAT_CHAIN {
        let (left, right) = v.split_at(v.len() / 2);
        return format!("({}){sep}({})", join(left, sep, min), join(right, sep, min));
    }
    v.iter()
        .map(|o| paren(o, min))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The variable and codes of `var == code` or `var in [codes]` (`!=` / `not in` when
/// `negated`), if `out` is one.
fn choice_test(out: &Out, negated: bool) -> Option<(String, Vec<String>)> {
    match out {
        Out::Cmp(a, op, b)
            if *op == if negated { "!=" } else { "==" }
                && !a.definite
                && b.definite
                && a.prec == P_ATOM
                && !a.text.contains('(') =>
        {
            Some((a.text.clone(), vec![b.text.clone()]))
        }
        Out::In {
            var,
            items,
            negated: n,
        } if *n == negated => Some((var.clone(), items.clone())),
        _ => None,
    }
}

/// `q == 1 or q == 2` as `q in [1, 2]`, and `q != 1 and q != 2` as `q not in [1, 2]`: the same
/// value everywhere, including unknown where `q` is blank.
fn merge_choices(parts: Vec<Out>, and: bool) -> Vec<Out> {
    let mut out: Vec<Out> = Vec::with_capacity(parts.len());
    for part in parts {
        let merged = choice_test(&part, and).and_then(|(var, items)| {
            out.iter_mut().find_map(|prev| {
                let (pvar, mut pitems) = choice_test(prev, and)?;
                if pvar != var {
                    return None;
                }
                for i in &items {
                    if !pitems.contains(i) {
                        pitems.push(i.clone());
                    }
                }
                *prev = Out::In {
                    var: pvar,
                    items: pitems,
                    negated: and,
                };
                Some(())
            })
        });
        if merged.is_none() {
            out.push(part);
        }
    }
    out
}

/// What ODK has where the cvsurvey expression is unknown (a blank input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// The expression always has a value.
    Never,
    /// ODK evaluates to false there.
    False,
    /// ODK evaluates to true there.
    True,
}

/// A translated condition: where `out` has a value it equals ODK's; where it is unknown, ODK's
/// value is `unknown`. Kleene's `and`/`or` keep this exact when both sides agree on `unknown`
/// (a monotone formula over unknowns that are all false in ODK is true exactly where ODK's is).
#[derive(Debug, Clone, PartialEq)]
struct Cond {
    out: Out,
    unknown: Unknown,
}

impl Cond {
    fn always(out: Out) -> Cond {
        Cond {
            out,
            unknown: Unknown::Never,
        }
    }

    fn constant(b: bool) -> Cond {
        Cond::always(Out::Const(b))
    }

    /// False where a blank input makes it unknown (ODK: NaN or `''` compares false).
    fn false_on_blank(out: Out) -> Cond {
        let unknown = if out.may_be_unknown() {
            Unknown::False
        } else {
            Unknown::Never
        };
        Cond { out, unknown }
    }

    fn negate(self) -> Cond {
        Cond {
            out: self.out.negate(),
            unknown: match self.unknown {
                Unknown::Never => Unknown::Never,
                Unknown::False => Unknown::True,
                Unknown::True => Unknown::False,
            },
        }
    }

    /// Never unknown: `coalesce(e, v)` where ODK's value on unknown is `v`.
    ///
    /// Over `and`/`or` the `coalesce` goes to each part that can be unknown: every such part has
    /// the same ODK value on unknown as the whole (see [`Cond::combine`]), so each part becomes
    /// exact, and so does their `and`/`or`; `coalesce(a != 1, true) and answered(b)` reads
    /// better than `coalesce(a != 1 and answered(b), true)`.
    fn definite(self) -> Cond {
        let on_unknown = match self.unknown {
            Unknown::Never => return self,
            u => u == Unknown::True,
        };
        let part = |o: Out| {
            if o.may_be_unknown() {
                Out::Coalesce(Box::new(o), on_unknown)
            } else {
                o
            }
        };
        Cond::always(match self.out {
            Out::And(v) => Out::And(v.into_iter().map(part).collect()),
            Out::Or(v) => Out::Or(v.into_iter().map(part).collect()),
            other => part(other),
        })
    }

    /// True exactly where ODK's is (unknown counts as not true, as for `asked_if`).
    fn true_exactly(self) -> Out {
        match self.unknown {
            Unknown::True => self.definite().out,
            _ => self.out,
        }
    }

    fn combine(self, other: Cond, and: bool) -> Cond {
        for (c, rest) in [(&self, &other), (&other, &self)] {
            if let Out::Const(b) = c.out {
                // `true and X` is X; `false and X` is false (and dually for `or`).
                return if b == and {
                    rest.clone()
                } else {
                    Cond::constant(b)
                };
            }
        }
        let (a, b) = match (self.unknown, other.unknown) {
            (Unknown::True, Unknown::False) => (self.definite(), other),
            (Unknown::False, Unknown::True) => (self, other.definite()),
            _ => (self, other),
        };
        let unknown = if a.unknown == Unknown::Never {
            b.unknown
        } else {
            a.unknown
        };
        let mut parts = Vec::new();
        for c in [a.out, b.out] {
            match c {
                Out::And(v) if and => parts.extend(v),
                Out::Or(v) if !and => parts.extend(v),
                other => parts.push(other),
            }
        }
        let mut parts = merge_choices(parts, and);
        if parts.len() == 1 {
            return Cond {
                out: parts.remove(0),
                unknown,
            };
        }
        Cond {
            out: if and { Out::And(parts) } else { Out::Or(parts) },
            unknown,
        }
    }
}

fn text_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A variable as written in an expression: in backticks unless it is a plain identifier.
fn variable(column: &str) -> Result<String, Untranslated> {
    if super::expr::is_plain_identifier(column) {
        Ok(column.to_string())
    } else if column.contains('`') {
        Err(untranslated(format!(
            "column {column} contains a backtick and cannot be written in an expression"
        )))
    } else {
        Ok(format!("`{column}`"))
    }
}

/// The column of a field stored as numbers, if it is.
fn number_column(f: &FormField) -> Option<&str> {
    match &f.kind {
        FieldKind::Number | FieldKind::Calculated => Some(&f.column),
        FieldKind::SelectOne { numeric: true, .. } => Some(&f.column),
        _ => None,
    }
}

/// A code of a numeric list as stored (a number), e.g. `01` → `1`.
fn numeric_code(code: &str) -> String {
    crate::frame::format_number(code.trim().parse::<f64>().unwrap_or(f64::NAN))
}

/// A translated XPath value.
#[derive(Debug, Clone)]
enum Val<'a> {
    Str(String),
    Num(f64),
    /// A bare `${field}`: its answer, or `''` where it is blank.
    Field(&'a FormField),
    /// A number computed from fields; NaN in ODK exactly where the cvsurvey expression is
    /// unknown.
    Number(Operand),
    /// `string-length(${field})`: 0 exactly where the field is blank.
    StrLen(&'a FormField),
    Cond(Cond),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    SkipRule,
    Calculation,
}

struct Translator<'a, 'l> {
    lookup: &'l FieldLookup<'a>,
    purpose: Purpose,
}

impl<'a> Translator<'a, '_> {
    fn field(&self, name: &str) -> Result<&'a FormField, Untranslated> {
        let f = (self.lookup)(name).map_err(|why| untranslated(format!("${{{name}}}: {why}")))?;
        if self.purpose == Purpose::SkipRule && f.kind == FieldKind::Calculated {
            return Err(untranslated(format!(
                "${{{name}}} is a calculate field: a skip rule cannot use a derived variable"
            )));
        }
        Ok(f)
    }

    fn value(&self, ast: &Ast) -> Result<Val<'a>, Untranslated> {
        match ast {
            Ast::Field(name) => Ok(Val::Field(self.field(name)?)),
            Ast::Current => Err(untranslated(
                "`.` (the current field) is translated only in a constraint",
            )),
            Ast::Str(s) => Ok(Val::Str(s.clone())),
            Ast::Num(x) => Ok(Val::Num(*x)),
            Ast::Neg(inner) => match self.value(inner)? {
                Val::Num(x) => Ok(Val::Num(-x)),
                v => {
                    let x = self.number(v)?;
                    Ok(Val::Number(Operand {
                        text: format!("-{}", x.at(P_ATOM)),
                        prec: P_NEG,
                        definite: x.definite,
                    }))
                }
            },
            Ast::Bin(op, a, b) => self.binary(*op, a, b),
            Ast::Call(name, args) => self.call(name, args),
        }
    }

    fn binary(&self, op: Op, a: &Ast, b: &Ast) -> Result<Val<'a>, Untranslated> {
        let (va, vb) = (self.value(a)?, self.value(b)?);
        match op {
            Op::Or | Op::And => Ok(Val::Cond(
                self.to_cond(va)?.combine(self.to_cond(vb)?, op == Op::And),
            )),
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                Ok(Val::Cond(self.compare(op, va, vb)?))
            }
            Op::Mod => Err(untranslated(
                "`mod` is not translated: cvsurvey expressions have no remainder",
            )),
            Op::Add | Op::Sub | Op::Mul | Op::Div => self.arithmetic(op, va, vb),
        }
    }

    fn arithmetic(&self, op: Op, a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, Untranslated> {
        let literal = |v: &Val<'_>| match v {
            Val::Num(x) => Some(*x),
            Val::Str(s) => Some(xpath_number(s)),
            _ => None,
        };
        if op == Op::Div
            && self.purpose == Purpose::SkipRule
            && !literal(&b).is_some_and(|x| x != 0.0 && x.is_finite())
        {
            return Err(untranslated(
                "division by a field in a skip rule: ODK gives Infinity where the divisor is 0 \
                 and cvsurvey gives missing",
            ));
        }
        if let (Some(x), Some(y)) = (literal(&a), literal(&b)) {
            let r = match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                _ => x / y,
            };
            if r.is_finite() {
                return Ok(Val::Num(r));
            }
        }
        let (sym, prec) = match op {
            Op::Add => ("+", P_ADD),
            Op::Sub => ("-", P_ADD),
            Op::Mul => ("*", P_MUL),
            _ => ("/", P_MUL),
        };
        let (x, y) = (self.number(a)?, self.number(b)?);
        // Left-associative: the right operand of `-` and `/` needs parentheses at equal
        // precedence, `a - (b - c)`.
        let right_min = if matches!(op, Op::Sub | Op::Div) {
            prec + 1
        } else {
            prec
        };
        Ok(Val::Number(Operand {
            text: format!("{} {sym} {}", x.at(prec), y.at(right_min)),
            prec,
            definite: x.definite && y.definite,
        }))
    }

    /// A value used as a number (XPath `number()`), in cvsurvey syntax.
    fn number(&self, v: Val<'a>) -> Result<Operand, Untranslated> {
        match v {
            Val::Num(x) if x.is_finite() => Ok(Operand {
                text: crate::frame::format_number(x),
                prec: if x < 0.0 { P_NEG } else { P_ATOM },
                definite: true,
            }),
            Val::Num(_) => Err(untranslated("a computed constant is not a finite number")),
            Val::Str(s) => {
                let x = xpath_number(&s);
                if x.is_nan() {
                    Err(untranslated(format!(
                        "'{s}' is used as a number but is not one (XPath gives NaN)"
                    )))
                } else {
                    self.number(Val::Num(x))
                }
            }
            Val::Field(f) => match number_column(f) {
                Some(c) => Ok(Operand::atom(variable(c)?)),
                None => Err(untranslated(match f.kind {
                    FieldKind::SelectMultiple { .. } => format!(
                        "${{{}}} is a select_multiple used as a number; use count-selected() or \
                         selected()",
                        f.name
                    ),
                    FieldKind::SelectOne { .. } => {
                        format!("${{{}}} has text codes and is used as a number", f.name)
                    }
                    _ => format!("${{{}}} is a text field used as a number", f.name),
                })),
            },
            Val::Number(op) => Ok(op),
            Val::StrLen(f) => Err(untranslated(format!(
                "string-length(${{{}}}) is translated only when compared with a number",
                f.name
            ))),
            // true/false is 1/0 in arithmetic, in both languages.
            Val::Cond(c) => {
                let out = c.definite().out;
                Ok(Operand {
                    prec: out.prec(),
                    text: out.render(),
                    definite: true,
                })
            }
        }
    }

    /// A value used as a condition (XPath `boolean()`): a number is true when non-zero, a
    /// string when non-empty.
    fn to_cond(&self, v: Val<'a>) -> Result<Cond, Untranslated> {
        match v {
            Val::Cond(c) => Ok(c),
            Val::Num(x) => Ok(Cond::constant(x != 0.0 && !x.is_nan())),
            Val::Str(s) => Ok(Cond::constant(!s.is_empty())),
            Val::Field(f) => match number_column(f) {
                Some(c) if !matches!(f.kind, FieldKind::SelectOne { .. }) => Ok(
                    Cond::false_on_blank(Out::Cmp(Operand::atom(variable(c)?), "!=", zero())),
                ),
                _ => Ok(Cond::always(answered(f, false)?)),
            },
            Val::Number(op) => Ok(Cond::false_on_blank(Out::Cmp(op, "!=", zero()))),
            Val::StrLen(f) => Ok(Cond::always(answered(f, false)?)),
        }
    }

    fn compare(&self, op: Op, a: Val<'a>, b: Val<'a>) -> Result<Cond, Untranslated> {
        if op == Op::Ne {
            return Ok(self.compare(Op::Eq, a, b)?.negate());
        }
        match (a, b) {
            // A boolean on either side: `=` compares both as booleans.
            (Val::Cond(x), other) | (other, Val::Cond(x)) => {
                if op != Op::Eq {
                    return Err(untranslated("ordering true/false values is not translated"));
                }
                let y = self.to_cond(other)?;
                Ok(match (&x.out, &y.out) {
                    (Out::Const(k), _) => {
                        if *k {
                            y
                        } else {
                            y.negate()
                        }
                    }
                    (_, Out::Const(k)) => {
                        if *k {
                            x
                        } else {
                            x.negate()
                        }
                    }
                    _ => Cond::always(Out::BoolEq(
                        Box::new(x.definite().out),
                        Box::new(y.definite().out),
                        false,
                    )),
                })
            }
            (a @ (Val::Str(_) | Val::Num(_)), b @ (Val::Str(_) | Val::Num(_))) => Ok(
                Cond::constant(compare_literals(op, &as_lit(&a), &as_lit(&b))),
            ),
            (a @ (Val::Str(_) | Val::Num(_)), b) => {
                self.compare_literal(mirrored(op), b, as_lit(&a))
            }
            (a, b @ (Val::Str(_) | Val::Num(_))) => self.compare_literal(op, a, as_lit(&b)),
            (a, b) => self.compare_values(op, a, b),
        }
    }

    /// `value op literal`, `op` one of `= < <= > >=`.
    fn compare_literal(&self, op: Op, v: Val<'a>, lit: Lit) -> Result<Cond, Untranslated> {
        let cmp = |lhs: Operand, x: f64| {
            if x.is_nan() {
                Ok(Cond::constant(false))
            } else {
                Ok(Cond::false_on_blank(Out::Cmp(
                    lhs,
                    symbol(op),
                    self.number(Val::Num(x))?,
                )))
            }
        };
        match v {
            Val::Number(x) => cmp(x, lit.number()),
            Val::StrLen(f) => {
                let n = lit.number();
                let at = |len: f64| compare_literals(op, &Lit::Num(len), &Lit::Num(n));
                // The length of an answer is some whole number >= 1: the comparison is
                // translatable when it is the same for every such length (it changes only
                // around n, so these samples decide it).
                let lengths = [1.0, n.floor(), n.ceil(), n.floor() + 1.0, n.ceil() + 2.0];
                let answered_truth = at(1.0);
                if lengths.iter().any(|&l| l >= 1.0 && at(l) != answered_truth) {
                    return Err(untranslated(format!(
                        "string-length(${{{}}}) compared with {} depends on the length of the \
                         answer; only comparisons that tell blank from answered are translated",
                        f.name,
                        crate::frame::format_number(n)
                    )));
                }
                Ok(match (at(0.0), answered_truth) {
                    (b, a) if a == b => Cond::constant(a),
                    (_, true) => Cond::always(answered(f, false)?),
                    _ => Cond::always(answered(f, true)?),
                })
            }
            Val::Field(f) => match &f.kind {
                FieldKind::Number | FieldKind::Calculated => match (&lit, op) {
                    // A blank number field is '', so only '' equals it; an answer is a
                    // number, which never equals ''.
                    (Lit::Str(s), Op::Eq) if s.is_empty() => Ok(Cond::always(answered(f, true)?)),
                    // A calculate compared with text most likely computes text (`if(…, 'yes',
                    // 'no')`), which the derived variable cannot hold: not `false`.
                    (Lit::Str(s), _)
                        if f.kind == FieldKind::Calculated && xpath_number(s).is_nan() =>
                    {
                        Err(untranslated(format!(
                            "calculate field ${{{}}} is compared with the text '{s}'; only \
                             numeric calculations are translated",
                            f.name
                        )))
                    }
                    _ => cmp(Operand::atom(variable(&f.column)?), lit.number()),
                },
                FieldKind::Text => match (&lit, op) {
                    (Lit::Str(s), Op::Eq) if s.is_empty() => Ok(Cond::always(answered(f, true)?)),
                    (Lit::Str(s), Op::Eq) => Ok(Cond::false_on_blank(Out::Cmp(
                        Operand::atom(variable(&f.column)?),
                        "==",
                        Operand::constant(text_literal(s)),
                    ))),
                    _ => Err(untranslated(format!(
                        "${{{}}} is a text or date field compared as a number",
                        f.name
                    ))),
                },
                FieldKind::SelectOne { codes, numeric } => {
                    let var = variable(&f.column)?;
                    if *numeric && op != Op::Eq && !lit.number().is_nan() {
                        return cmp(Operand::atom(var), lit.number());
                    }
                    let chosen: Vec<&String> = codes
                        .iter()
                        .filter(|c| compare_literals(op, &Lit::Str((*c).clone()), &lit))
                        .collect();
                    let on_blank = compare_literals(op, &Lit::Str(String::new()), &lit);
                    Ok(choice_set(f, &var, codes, *numeric, &chosen, on_blank)?)
                }
                FieldKind::SelectMultiple { .. } => match (&lit, op) {
                    (Lit::Str(s), Op::Eq) if s.is_empty() => Ok(Cond::always(answered(f, true)?)),
                    _ => Err(untranslated(format!(
                        "${{{}}} is a select_multiple compared with a value; use selected() or \
                         count-selected()",
                        f.name
                    ))),
                },
            },
            Val::Str(_) | Val::Num(_) | Val::Cond(_) => Err(untranslated(
                "internal: literal comparison reached compare_literal",
            )),
        }
    }

    /// `a op b` of two fields or computed values, `op` one of `= < <= > >=`.
    fn compare_values(&self, op: Op, a: Val<'a>, b: Val<'a>) -> Result<Cond, Untranslated> {
        #[derive(PartialEq)]
        enum Class {
            /// Always a number (NaN where cvsurvey's is unknown).
            Computed,
            /// A field stored as numbers: a number, or '' when blank.
            NumberField,
            /// A field stored as text: a string, '' when blank.
            TextField,
        }
        let class = |v: &Val<'_>| match v {
            Val::Number(_) => Ok(Class::Computed),
            Val::Field(f) => match &f.kind {
                FieldKind::SelectMultiple { .. } => Err(untranslated(format!(
                    "${{{}}} is a select_multiple compared with a value; use selected() or \
                     count-selected()",
                    f.name
                ))),
                // Codes such as `01` are text in ODK ('01' != '1') but the same number here.
                FieldKind::SelectOne { codes, .. }
                    if number_column(f).is_some()
                        && codes.iter().any(|c| numeric_code(c) != c.as_str()) =>
                {
                    Err(untranslated(format!(
                        "${{{}}} has codes written with leading zeros or decimals, which ODK \
                         compares as text",
                        f.name
                    )))
                }
                _ if number_column(f).is_some() => Ok(Class::NumberField),
                _ => Ok(Class::TextField),
            },
            _ => Err(untranslated(
                "string-length() is translated only when compared with a number",
            )),
        };
        let (ca, cb) = (class(&a)?, class(&b)?);
        let text_involved = ca == Class::TextField || cb == Class::TextField;
        if text_involved && (op != Op::Eq || ca != cb) {
            return Err(untranslated(
                "a text field compared with a number, or ordered, is not translated",
            ));
        }
        let operand = |v: &Val<'a>| -> Result<Operand, Untranslated> {
            match v {
                Val::Field(f) => Ok(Operand::atom(variable(&f.column)?)),
                other => self.number(other.clone()),
            }
        };
        let cmp = Out::Cmp(operand(&a)?, symbol(op), operand(&b)?);
        // Two blank fields are '' = '' in ODK: equal.
        if op == Op::Eq
            && let (Val::Field(fa), Val::Field(fb)) = (&a, &b)
        {
            return Ok(Cond::false_on_blank(Out::Or(vec![
                cmp,
                Out::And(vec![answered(fa, true)?, answered(fb, true)?]),
            ])));
        }
        Ok(Cond::false_on_blank(cmp))
    }

    fn call(&self, name: &str, args: &[Ast]) -> Result<Val<'a>, Untranslated> {
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(untranslated(format!(
                    "{name}() takes {n} argument{}, found {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                )))
            }
        };
        match name {
            "true" | "false" => {
                arity(0)?;
                Ok(Val::Cond(Cond::constant(name == "true")))
            }
            "not" => {
                arity(1)?;
                Ok(Val::Cond(self.to_cond(self.value(&args[0])?)?.negate()))
            }
            "boolean" => {
                arity(1)?;
                Ok(Val::Cond(self.to_cond(self.value(&args[0])?)?))
            }
            "selected" => {
                arity(2)?;
                let choice = match self.value(&args[1])? {
                    Val::Str(s) => s,
                    Val::Num(x) => crate::frame::format_number(x),
                    _ => {
                        return Err(untranslated(
                            "selected() is translated only with a choice name in quotes",
                        ));
                    }
                };
                let Val::Field(f) = self.value(&args[0])? else {
                    return Err(untranslated("selected() is translated only on a ${field}"));
                };
                self.selected(f, &choice).map(Val::Cond)
            }
            "count-selected" => {
                arity(1)?;
                let Val::Field(f) = self.value(&args[0])? else {
                    return Err(untranslated(
                        "count-selected() is translated only on a ${field}",
                    ));
                };
                let text = match &f.kind {
                    FieldKind::SelectMultiple { items } if !items.is_empty() => {
                        let cols = items
                            .iter()
                            .map(|i| variable(&i.column))
                            .collect::<Result<Vec<_>, _>>()?;
                        format!("coalesce(sum({}), 0)", cols.join(", "))
                    }
                    FieldKind::SelectOne { .. } => {
                        format!("if(answered({}), 1, 0)", variable(&f.column)?)
                    }
                    _ => {
                        return Err(untranslated(format!(
                            "count-selected(${{{}}}) is translated only for a select field",
                            f.name
                        )));
                    }
                };
                Ok(Val::Number(Operand::constant(text)))
            }
            "string-length" => {
                arity(1)?;
                match self.value(&args[0])? {
                    Val::Field(f) => Ok(Val::StrLen(f)),
                    Val::Str(s) => Ok(Val::Num(s.chars().count() as f64)),
                    _ => Err(untranslated(
                        "string-length() is translated only of a ${field}",
                    )),
                }
            }
            "number" => {
                arity(1)?;
                match self.value(&args[0])? {
                    Val::Str(s) => Ok(Val::Num(xpath_number(&s))),
                    v @ Val::Num(_) => Ok(v),
                    v => Ok(Val::Number(self.number(v)?)),
                }
            }
            "if" => {
                arity(3)?;
                let c = self.to_cond(self.value(&args[0])?)?.definite().out;
                let (a, b) = (self.value(&args[1])?, self.value(&args[2])?);
                if let (Val::Cond(x), Val::Cond(y)) = (&a, &b) {
                    let (x, y) = if x.unknown == y.unknown {
                        (x.clone(), y.clone())
                    } else {
                        (x.clone().definite(), y.clone().definite())
                    };
                    return Ok(Val::Cond(Cond {
                        unknown: x.unknown,
                        out: Out::If(Box::new(c), Box::new(x.out), Box::new(y.out)),
                    }));
                }
                if self.purpose == Purpose::SkipRule {
                    return Err(untranslated(
                        "if() choosing between values (not true/false) is not translated in a \
                         skip rule",
                    ));
                }
                let (x, y) = (self.number(a)?, self.number(b)?);
                Ok(Val::Number(Operand {
                    definite: x.definite && y.definite,
                    ..Operand::atom(format!("if({}, {}, {})", c.render(), x.text, y.text))
                }))
            }
            "coalesce" => {
                arity(2)?;
                let (a, b) = (self.value(&args[0])?, self.value(&args[1])?);
                // In a skip rule only `coalesce(${number}, literal)` is exact: ODK's coalesce
                // skips '' but not NaN, so a computed first argument would differ.
                if self.purpose == Purpose::SkipRule
                    && !(matches!(a, Val::Field(_)) && matches!(b, Val::Num(_) | Val::Str(_)))
                {
                    return Err(untranslated(
                        "coalesce() in a skip rule is translated only as coalesce(${field}, \
                         number)",
                    ));
                }
                let (x, y) = (self.number(a)?, self.number(b)?);
                Ok(Val::Number(Operand {
                    definite: x.definite || y.definite,
                    ..Operand::atom(format!("coalesce({}, {})", x.text, y.text))
                }))
            }
            "int" | "round" => Err(untranslated(format!(
                "function {name}() is not translated: cvsurvey expressions have no rounding"
            ))),
            other => Err(untranslated(format!(
                "function {other}() is not translated"
            ))),
        }
    }

    fn selected(&self, f: &'a FormField, choice: &str) -> Result<Cond, Untranslated> {
        if choice.is_empty() {
            return Ok(Cond::constant(false));
        }
        match &f.kind {
            FieldKind::SelectMultiple { items } => match items.iter().find(|i| i.code == choice) {
                Some(item) => Ok(Cond::false_on_blank(Out::Cmp(
                    Operand::atom(variable(&item.column)?),
                    "==",
                    Operand::constant("1".into()),
                ))),
                None => Ok(Cond::constant(false)),
            },
            // A select_one's answer is one code, so selected() is equality.
            FieldKind::SelectOne { .. } => {
                self.compare_literal(Op::Eq, Val::Field(f), Lit::Str(choice.to_string()))
            }
            _ => Err(untranslated(format!(
                "selected(${{{}}}, ...) is translated only for a select field",
                f.name
            ))),
        }
    }
}

fn zero() -> Operand {
    Operand::constant("0".into())
}

fn symbol(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        _ => ">=",
    }
}

fn as_lit(v: &Val<'_>) -> Lit {
    match v {
        Val::Num(x) => Lit::Num(*x),
        Val::Str(s) => Lit::Str(s.clone()),
        _ => Lit::Str(String::new()),
    }
}

/// `answered(field)` (or its negation); a select_multiple is answered where its first item is
/// (ODK exports all its items, or none).
fn answered(f: &FormField, negated: bool) -> Result<Out, Untranslated> {
    let column = match &f.kind {
        FieldKind::SelectMultiple { items } => match items.first() {
            Some(i) => &i.column,
            None => return Ok(Out::Const(negated)),
        },
        _ => &f.column,
    };
    Ok(Out::Answered {
        var: variable(column)?,
        negated,
    })
}

/// "The select_one's answer is one of `chosen`", where ODK's value on a blank is `on_blank`.
/// Written with the shorter of the chosen codes or the others: cvsurvey's checker refuses a
/// literal that is not a code, so codes no answer can have never appear.
fn choice_set(
    f: &FormField,
    var: &str,
    codes: &[String],
    numeric: bool,
    chosen: &[&String],
    on_blank: bool,
) -> Result<Cond, Untranslated> {
    if chosen.is_empty() {
        return Ok(if on_blank {
            Cond::always(answered(f, true)?)
        } else {
            Cond::constant(false)
        });
    }
    let shown = |c: &String| {
        if numeric {
            numeric_code(c)
        } else {
            text_literal(c)
        }
    };
    let mut yes: Vec<String> = chosen.iter().map(|c| shown(c)).collect();
    let mut no: Vec<String> = codes
        .iter()
        .filter(|c| !chosen.contains(c))
        .map(shown)
        .collect();
    yes.dedup();
    no.dedup();
    if no.is_empty() {
        return Ok(if on_blank {
            Cond::constant(true)
        } else {
            Cond::always(answered(f, false)?)
        });
    }
    let (items, negated) = if yes.len() <= no.len() {
        (yes, false)
    } else {
        (no, true)
    };
    let out = match items.as_slice() {
        [one] => Out::Cmp(
            Operand::atom(var.to_string()),
            if negated { "!=" } else { "==" },
            Operand::constant(one.clone()),
        ),
        _ => Out::In {
            var: var.to_string(),
            items,
            negated,
        },
    };
    Ok(Cond {
        out,
        unknown: if on_blank {
            Unknown::True
        } else {
            Unknown::False
        },
    })
}

#[cfg(test)]
#[path = "xpath_tests.rs"]
mod tests;
