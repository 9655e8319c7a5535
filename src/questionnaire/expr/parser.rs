//! Recursive-descent parser from tokens to an untyped syntax tree.
//!
//! Precedence, loosest first: `or`; `and`; `not`; comparisons and `in` / `not in` (not
//! chainable); `+ -`; `* /`; unary `-`; literals, names, calls and parentheses. Nesting is
//! limited to [`MAX_DEPTH`] so that hostile input cannot exhaust the stack.

use super::ExprError;
use super::lexer::{Tok, Token};

/// Deepest syntax tree accepted (levels of operators, calls and parentheses).
pub(super) const MAX_DEPTH: usize = 64;

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
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
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// A literal inside a list.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ListItem {
    Num(f64),
    Str(String),
    Bool(bool),
}

/// Untyped syntax tree; `start..end` is the byte span in the source.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ast {
    pub kind: AstKind,
    pub start: usize,
    pub end: usize,
    /// Height of the tree below and including this node.
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum AstKind {
    Num(f64),
    Str(String),
    Bool(bool),
    List(Vec<(ListItem, usize, usize)>),
    Var(String),
    Neg(Box<Ast>),
    Not(Box<Ast>),
    Binary(BinOp, Box<Ast>, Box<Ast>),
    In {
        negated: bool,
        lhs: Box<Ast>,
        list: Box<Ast>,
    },
    Call {
        name: String,
        name_end: usize,
        args: Vec<Ast>,
    },
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    src_len: usize,
    nesting: usize,
}

/// Parse a whole expression.
pub(super) fn parse(toks: &[Token], src_len: usize) -> Result<Ast, ExprError> {
    if toks.is_empty() {
        return Err(ExprError {
            start: 0,
            end: 0,
            message: "empty expression".into(),
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        src_len,
        nesting: 0,
    };
    let ast = p.expr()?;
    if let Some(t) = p.peek() {
        return Err(ExprError {
            start: t.start,
            end: t.end,
            message: format!(
                "unexpected {} after a complete expression",
                t.kind.describe()
            ),
        });
    }
    Ok(ast)
}

fn node(kind: AstKind, start: usize, end: usize, child_depth: usize) -> Result<Ast, ExprError> {
    let depth = 1 + child_depth;
    if depth > MAX_DEPTH {
        return Err(ExprError {
            start,
            end,
            message: format!(
                "expression is nested more than {MAX_DEPTH} levels deep; split it into derived variables"
            ),
        });
    }
    Ok(Ast {
        kind,
        start,
        end,
        depth,
    })
}

fn bin(op: BinOp, lhs: Ast, rhs: Ast) -> Result<Ast, ExprError> {
    let (s, e, d) = (lhs.start, rhs.end, lhs.depth.max(rhs.depth));
    node(AstKind::Binary(op, Box::new(lhs), Box::new(rhs)), s, e, d)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&Tok> {
        self.peek().map(|t| &t.kind)
    }

    fn eat(&mut self, kind: &Tok) -> bool {
        if self.peek_kind() == Some(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, wanted: &str) -> ExprError {
        match self.peek() {
            Some(t) => ExprError {
                start: t.start,
                end: t.end,
                message: format!("expected {wanted}, found {}", t.kind.describe()),
            },
            None => ExprError {
                start: self.src_len,
                end: self.src_len,
                message: format!("expected {wanted}, found the end of the expression"),
            },
        }
    }

    fn expect(&mut self, kind: &Tok, wanted: &str) -> Result<usize, ExprError> {
        match self.peek() {
            Some(t) if &t.kind == kind => {
                let end = t.end;
                self.pos += 1;
                Ok(end)
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            let (start, end) = self
                .peek()
                .map_or((self.src_len, self.src_len), |t| (t.start, t.end));
            return Err(ExprError {
                start,
                end,
                message: format!("expression is nested more than {MAX_DEPTH} levels deep"),
            });
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, ExprError> {
        self.enter()?;
        let r = self.or();
        self.nesting -= 1;
        r
    }

    fn or(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.and()?;
        while self.eat(&Tok::Or) {
            let rhs = self.and()?;
            lhs = bin(BinOp::Or, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.not()?;
        while self.eat(&Tok::And) {
            let rhs = self.not()?;
            lhs = bin(BinOp::And, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn not(&mut self) -> Result<Ast, ExprError> {
        if let Some(t) = self.peek()
            && t.kind == Tok::Not
        {
            let start = t.start;
            self.pos += 1;
            self.enter()?;
            let inner = self.not();
            self.nesting -= 1;
            let inner = inner?;
            let (end, d) = (inner.end, inner.depth);
            return node(AstKind::Not(Box::new(inner)), start, end, d);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Ast, ExprError> {
        let lhs = self.additive()?;
        let op = match self.peek_kind() {
            Some(Tok::Eq) => Some(BinOp::Eq),
            Some(Tok::Ne) => Some(BinOp::Ne),
            Some(Tok::Lt) => Some(BinOp::Lt),
            Some(Tok::Le) => Some(BinOp::Le),
            Some(Tok::Gt) => Some(BinOp::Gt),
            Some(Tok::Ge) => Some(BinOp::Ge),
            _ => None,
        };
        let result = if let Some(op) = op {
            self.pos += 1;
            let rhs = self.additive()?;
            bin(op, lhs, rhs)?
        } else if matches!(self.peek_kind(), Some(Tok::In))
            || (matches!(self.peek_kind(), Some(Tok::Not))
                && matches!(self.toks.get(self.pos + 1).map(|t| &t.kind), Some(Tok::In)))
        {
            let negated = self.eat(&Tok::Not);
            self.pos += 1; // `in`
            let list = self.additive()?;
            let (s, e, d) = (lhs.start, list.end, lhs.depth.max(list.depth));
            node(
                AstKind::In {
                    negated,
                    lhs: Box::new(lhs),
                    list: Box::new(list),
                },
                s,
                e,
                d,
            )?
        } else {
            return Ok(lhs);
        };
        if let Some(t) = self.peek()
            && matches!(
                t.kind,
                Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::In
            )
        {
            return Err(ExprError {
                start: t.start,
                end: t.end,
                message: "comparisons cannot be chained: combine them with `and`".into(),
            });
        }
        Ok(result)
    }

    fn additive(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = match self.peek_kind() {
                Some(Tok::Plus) => BinOp::Add,
                Some(Tok::Minus) => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.multiplicative()?;
            lhs = bin(op, lhs, rhs)?;
        }
    }

    fn multiplicative(&mut self) -> Result<Ast, ExprError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek_kind() {
                Some(Tok::Star) => BinOp::Mul,
                Some(Tok::Slash) => BinOp::Div,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = bin(op, lhs, rhs)?;
        }
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        if let Some(t) = self.peek()
            && t.kind == Tok::Minus
        {
            let start = t.start;
            self.pos += 1;
            self.enter()?;
            let inner = self.unary();
            self.nesting -= 1;
            let inner = inner?;
            // Fold `-<number>` so that negative numbers are literals (usable in lists).
            if let AstKind::Num(x) = inner.kind {
                return node(AstKind::Num(-x), start, inner.end, 0);
            }
            let (end, d) = (inner.end, inner.depth);
            return node(AstKind::Neg(Box::new(inner)), start, end, d);
        }
        self.primary()
    }

    /// The items of a list literal after its `[`, through its `]`.
    fn list_items(&mut self) -> Result<Vec<(ListItem, usize, usize)>, ExprError> {
        let mut items = Vec::new();
        if !self.eat(&Tok::RBracket) {
            loop {
                let item = self.unary()?;
                let li = match item.kind {
                    AstKind::Num(x) => ListItem::Num(x),
                    AstKind::Str(s) => ListItem::Str(s),
                    AstKind::Bool(b) => ListItem::Bool(b),
                    _ => {
                        return Err(ExprError {
                            start: item.start,
                            end: item.end,
                            message: "a list may hold only numbers, texts or true/false".into(),
                        });
                    }
                };
                items.push((li, item.start, item.end));
                if self.eat(&Tok::Comma) {
                    // allow a trailing comma
                    if self.eat(&Tok::RBracket) {
                        break;
                    }
                    continue;
                }
                self.expect(&Tok::RBracket, "`,` or `]`")?;
                break;
            }
        }
        Ok(items)
    }

    fn primary(&mut self) -> Result<Ast, ExprError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.unexpected("a value, a name or `(`"));
        };
        match t.kind {
            Tok::Num(x) => {
                self.pos += 1;
                node(AstKind::Num(x), t.start, t.end, 0)
            }
            Tok::Str(s) => {
                self.pos += 1;
                node(AstKind::Str(s), t.start, t.end, 0)
            }
            Tok::True | Tok::False => {
                self.pos += 1;
                node(AstKind::Bool(t.kind == Tok::True), t.start, t.end, 0)
            }
            Tok::LParen => {
                self.pos += 1;
                let inner = self.expr()?;
                let end = self.expect(&Tok::RParen, "`)`")?;
                Ok(Ast {
                    start: t.start,
                    end,
                    ..inner
                })
            }
            Tok::LBracket => {
                self.pos += 1;
                // Items are parsed by `unary`, which could open another `[`: count the level
                // like any other nesting, so `[[[[…` is an error, not a stack overflow.
                self.enter()?;
                let items = self.list_items();
                self.nesting -= 1;
                let items = items?;
                let end = self
                    .toks
                    .get(self.pos.wrapping_sub(1))
                    .map_or(self.src_len, |t| t.end);
                node(AstKind::List(items), t.start, end, 0)
            }
            Tok::Ident(name) => {
                self.pos += 1;
                if !self.eat(&Tok::LParen) {
                    return node(AstKind::Var(name), t.start, t.end, 0);
                }
                self.enter()?;
                let mut args = Vec::new();
                let r = (|| {
                    if !self.eat(&Tok::RParen) {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(&Tok::Comma) {
                                continue;
                            }
                            return self.expect(&Tok::RParen, "`,` or `)`");
                        }
                    }
                    Ok(self
                        .toks
                        .get(self.pos.wrapping_sub(1))
                        .map_or(self.src_len, |t| t.end))
                })();
                self.nesting -= 1;
                let end = r?;
                let d = args.iter().map(|a| a.depth).max().unwrap_or(0);
                node(
                    AstKind::Call {
                        name,
                        name_end: t.end,
                        args,
                    },
                    t.start,
                    end,
                    d,
                )
            }
            _ => Err(self.unexpected("a value, a name or `(`")),
        }
    }
}
