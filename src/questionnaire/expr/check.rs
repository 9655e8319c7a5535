//! Type checking: turns the untyped syntax tree into the compiled tree that [`super::eval`] runs.
//!
//! Types are `Bool`, `Num` and `Text`. A `Bool` is accepted wherever a `Num` is expected (as 1/0);
//! a `Num` is never taken as a `Bool` (write `x == 1`). `Text` appears only as a variable or a
//! literal directly compared with `==`, `!=`, `in`, `not in`, or inside `answered`, `missing`,
//! `skipped`.

use super::parser::{Ast, AstKind, BinOp, ListItem};
use super::{ExprError, ExprType, VarInfo};

/// A text operand of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TextOp {
    Var(String),
    Lit(String),
}

/// Aggregating functions over their arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Agg {
    Any,
    All,
    Sum,
    Count,
    Min,
    Max,
}

/// Functions on the state of their argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StateFn {
    Answered,
    Missing,
    Skipped,
}

/// Argument of a state function.
#[derive(Debug, Clone)]
pub(super) enum StateArg {
    Expr(Box<Node>),
    Text(TextOp),
}

/// Compiled expression tree. Bool results are 1.0/0.0.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Const(f64),
    /// A numeric column (Num or Bool variable).
    Var(String),
    TextEq {
        lhs: TextOp,
        rhs: TextOp,
        negate: bool,
    },
    TextIn {
        lhs: TextOp,
        list: Vec<String>,
        negate: bool,
    },
    NumIn {
        lhs: Box<Node>,
        list: Vec<f64>,
        negate: bool,
    },
    /// Comparison or arithmetic.
    Binary(BinOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Not(Box<Node>),
    Agg(Agg, Vec<Node>),
    Cap(Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    Coalesce(Vec<Node>),
    State(StateFn, StateArg),
}

impl Node {
    pub(super) fn collect_variables(&self, out: &mut Vec<String>) {
        let mut add = |name: &String| {
            if !out.contains(name) {
                out.push(name.clone());
            }
        };
        match self {
            Node::Const(_) => {}
            Node::Var(v) => add(v),
            Node::TextEq { lhs, rhs, .. } => {
                for op in [lhs, rhs] {
                    if let TextOp::Var(v) = op {
                        add(v);
                    }
                }
            }
            Node::TextIn { lhs, .. } => {
                if let TextOp::Var(v) = lhs {
                    add(v);
                }
            }
            Node::State(_, StateArg::Text(TextOp::Var(v))) => add(v),
            Node::State(_, StateArg::Text(TextOp::Lit(_))) => {}
            Node::State(_, StateArg::Expr(e))
            | Node::NumIn { lhs: e, .. }
            | Node::Neg(e)
            | Node::Not(e) => e.collect_variables(out),
            Node::Binary(_, a, b) | Node::Cap(a, b) => {
                a.collect_variables(out);
                b.collect_variables(out);
            }
            Node::If(c, a, b) => {
                c.collect_variables(out);
                a.collect_variables(out);
                b.collect_variables(out);
            }
            Node::Agg(_, args) | Node::Coalesce(args) => {
                for a in args {
                    a.collect_variables(out);
                }
            }
        }
    }
}

/// A checked subtree.
pub(super) struct Typed {
    pub node: Node,
    pub ty: ExprType,
    /// Every value is 0 or 1.
    pub zero_one: bool,
}

type Scope<'a> = &'a dyn Fn(&str) -> Result<VarInfo, String>;

fn err(ast: &Ast, message: impl Into<String>) -> ExprError {
    ExprError {
        start: ast.start,
        end: ast.end,
        message: message.into(),
    }
}

const FUNCTIONS: &str =
    "any, all, sum, count, min, max, cap, if, coalesce, answered, missing, skipped";

/// Check `ast` against the variables described by `scope`.
pub(super) fn check(ast: &Ast, scope: Scope<'_>) -> Result<Typed, ExprError> {
    match &ast.kind {
        AstKind::Num(x) => Ok(Typed {
            node: Node::Const(*x),
            ty: ExprType::Num,
            zero_one: *x == 0.0 || *x == 1.0,
        }),
        AstKind::Bool(b) => Ok(Typed {
            node: Node::Const(f64::from(u8::from(*b))),
            ty: ExprType::Bool,
            zero_one: true,
        }),
        // Text never reaches evaluation as a node of its own: every caller either handles text
        // operands through `text_operand` or rejects the Text type.
        AstKind::Str(_) => Ok(Typed {
            node: Node::Const(f64::NAN),
            ty: ExprType::Text,
            zero_one: false,
        }),
        AstKind::List(_) => Err(err(ast, "a list can only follow `in` or `not in`")),
        AstKind::Var(name) => {
            let info = scope(name).map_err(|m| err(ast, m))?;
            let zero_one = info.zero_one || info.ty == ExprType::Bool;
            Ok(Typed {
                node: Node::Var(name.clone()),
                ty: info.ty,
                zero_one,
            })
        }
        AstKind::Neg(inner) => {
            let t = numeric(inner, scope, "`-`")?;
            Ok(Typed {
                node: Node::Neg(Box::new(t.node)),
                ty: ExprType::Num,
                zero_one: false,
            })
        }
        AstKind::Not(inner) => {
            let t = boolean(inner, scope, "`not`")?;
            Ok(Typed {
                node: Node::Not(Box::new(t.node)),
                ty: ExprType::Bool,
                zero_one: true,
            })
        }
        AstKind::Binary(op, a, b) => binary(ast, *op, a, b, scope),
        AstKind::In { negated, lhs, list } => check_in(*negated, lhs, list, scope),
        AstKind::Call {
            name,
            name_end,
            args,
        } => call(ast, name, *name_end, args, scope),
    }
}

fn numeric(ast: &Ast, scope: Scope<'_>, what: &str) -> Result<Typed, ExprError> {
    let t = check(ast, scope)?;
    match t.ty {
        ExprType::Num | ExprType::Bool => Ok(t),
        ExprType::Text => Err(err(ast, format!("{what} needs a number, but this is text"))),
    }
}

fn boolean(ast: &Ast, scope: Scope<'_>, what: &str) -> Result<Typed, ExprError> {
    let t = check(ast, scope)?;
    match t.ty {
        ExprType::Bool => Ok(t),
        ExprType::Num => Err(err(
            ast,
            format!("{what} needs true/false, but this is a number: compare it, e.g. `... == 1`"),
        )),
        ExprType::Text => Err(err(
            ast,
            format!("{what} needs true/false, but this is text: compare it with `==`"),
        )),
    }
}

/// A text variable or literal, or None if `ast` is neither.
fn text_operand(
    ast: &Ast,
    scope: Scope<'_>,
) -> Result<Option<(TextOp, Option<VarInfo>)>, ExprError> {
    match &ast.kind {
        AstKind::Str(s) => Ok(Some((TextOp::Lit(s.clone()), None))),
        AstKind::Var(name) => {
            let info = scope(name).map_err(|m| err(ast, m))?;
            if info.ty == ExprType::Text {
                Ok(Some((TextOp::Var(name.clone()), Some(info))))
            } else {
                Ok(None)
            }
        }
        _ => Ok(None),
    }
}

/// Check that a literal compared with a coded variable is one of its valid codes.
fn check_code(
    var: &Ast,
    info: &VarInfo,
    lit: &Ast,
    shown: &str,
    matches: &dyn Fn(&str) -> bool,
) -> Result<(), ExprError> {
    let name = match &var.kind {
        AstKind::Var(n) => n.as_str(),
        _ => "the variable",
    };
    if info.codes.iter().any(|c| matches(c)) {
        return Ok(());
    }
    if info.missing_codes.iter().any(|c| matches(c)) {
        return Err(err(
            lit,
            format!(
                "{shown} is a missing-value code of {name}: such cells are missing and never equal \
                 anything; use missing({name}) or answered({name})"
            ),
        ));
    }
    if info.codes.is_empty() {
        return Ok(());
    }
    let mut list = info
        .codes
        .iter()
        .take(12)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if info.codes.len() > 12 {
        list.push_str(", ...");
    }
    Err(err(
        lit,
        format!("{shown} is not a code of {name} (codes: {list})"),
    ))
}

fn num_code_matcher(x: f64) -> impl Fn(&str) -> bool {
    move |c: &str| c.trim().parse::<f64>().is_ok_and(|v| v == x)
}

fn binary(ast: &Ast, op: BinOp, a: &Ast, b: &Ast, scope: Scope<'_>) -> Result<Typed, ExprError> {
    let sym = op.symbol();
    match op {
        BinOp::And | BinOp::Or => {
            let ta = boolean(a, scope, &format!("`{sym}`"))?;
            let tb = boolean(b, scope, &format!("`{sym}`"))?;
            Ok(Typed {
                node: Node::Binary(op, Box::new(ta.node), Box::new(tb.node)),
                ty: ExprType::Bool,
                zero_one: true,
            })
        }
        BinOp::Eq | BinOp::Ne => {
            let ta = text_operand(a, scope)?;
            let tb = text_operand(b, scope)?;
            match (ta, tb) {
                (Some((la, ia)), Some((lb, ib))) => {
                    for (var, info, lit_ast, lit) in [(a, &ia, b, &lb), (b, &ib, a, &la)] {
                        if let (Some(info), TextOp::Lit(s)) = (info, lit) {
                            check_code(var, info, lit_ast, &format!("\"{s}\""), &|c: &str| c == s)?;
                        }
                    }
                    Ok(Typed {
                        node: Node::TextEq {
                            lhs: la,
                            rhs: lb,
                            negate: op == BinOp::Ne,
                        },
                        ty: ExprType::Bool,
                        zero_one: true,
                    })
                }
                (Some(_), None) | (None, Some(_)) => {
                    let other = if text_operand(a, scope)?.is_some() {
                        b
                    } else {
                        a
                    };
                    let other_t = check(other, scope)?;
                    Err(err(
                        ast,
                        format!(
                            "cannot compare text with {}: write the value in double quotes, e.g. `== \"1\"`",
                            other_t.ty.describe()
                        ),
                    ))
                }
                (None, None) => {
                    let ta = check(a, scope)?;
                    let tb = check(b, scope)?;
                    if ta.ty == ExprType::Text || tb.ty == ExprType::Text {
                        return Err(err(
                            ast,
                            "text can only be compared as a variable or a literal in quotes",
                        ));
                    }
                    code_literal_check(a, b, scope)?;
                    code_literal_check(b, a, scope)?;
                    Ok(Typed {
                        node: Node::Binary(op, Box::new(ta.node), Box::new(tb.node)),
                        ty: ExprType::Bool,
                        zero_one: true,
                    })
                }
            }
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let what = format!("`{sym}`");
            let ta = check(a, scope)?;
            let tb = check(b, scope)?;
            if ta.ty == ExprType::Text || tb.ty == ExprType::Text {
                return Err(err(
                    ast,
                    format!("{what} compares numbers; text can only be compared with ==, != or in"),
                ));
            }
            Ok(Typed {
                node: Node::Binary(op, Box::new(ta.node), Box::new(tb.node)),
                ty: ExprType::Bool,
                zero_one: true,
            })
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            let what = format!("`{sym}`");
            let ta = numeric(a, scope, &what)?;
            let tb = numeric(b, scope, &what)?;
            Ok(Typed {
                node: Node::Binary(op, Box::new(ta.node), Box::new(tb.node)),
                ty: ExprType::Num,
                zero_one: false,
            })
        }
    }
}

/// For `var == number`: the number must be a valid code of a coded numeric variable.
fn code_literal_check(var: &Ast, lit: &Ast, scope: Scope<'_>) -> Result<(), ExprError> {
    if let (AstKind::Var(name), AstKind::Num(x)) = (&var.kind, &lit.kind) {
        let info = scope(name).map_err(|m| err(var, m))?;
        if info.ty == ExprType::Num {
            check_code(
                var,
                &info,
                lit,
                &crate::frame::format_number(*x),
                &num_code_matcher(*x),
            )?;
        }
    }
    Ok(())
}

fn check_in(negated: bool, lhs: &Ast, list: &Ast, scope: Scope<'_>) -> Result<Typed, ExprError> {
    let kw = if negated { "`not in`" } else { "`in`" };
    let AstKind::List(items) = &list.kind else {
        return Err(err(
            list,
            format!("{kw} needs a list in brackets, e.g. `[1, 2]`"),
        ));
    };
    let item_ast = |start: usize, end: usize| Ast {
        kind: AstKind::Bool(true),
        start,
        end,
        depth: 1,
    };
    if let Some((op, info)) = text_operand(lhs, scope)? {
        let mut texts = Vec::with_capacity(items.len());
        for (item, s, e) in items {
            match item {
                ListItem::Str(t) => {
                    if let Some(info) = &info {
                        check_code(
                            lhs,
                            info,
                            &item_ast(*s, *e),
                            &format!("\"{t}\""),
                            &|c: &str| c == t,
                        )?;
                    }
                    texts.push(t.clone());
                }
                _ => {
                    return Err(err(
                        &item_ast(*s, *e),
                        "the variable is text: write the list items in double quotes",
                    ));
                }
            }
        }
        return Ok(Typed {
            node: Node::TextIn {
                lhs: op,
                list: texts,
                negate: negated,
            },
            ty: ExprType::Bool,
            zero_one: true,
        });
    }
    let t = check(lhs, scope)?;
    if t.ty == ExprType::Text {
        return Err(err(
            lhs,
            format!("{kw} on text needs a variable or a literal in quotes"),
        ));
    }
    let info = match &lhs.kind {
        AstKind::Var(name) => Some(scope(name).map_err(|m| err(lhs, m))?),
        _ => None,
    };
    let mut nums = Vec::with_capacity(items.len());
    for (item, s, e) in items {
        let x = match item {
            ListItem::Num(x) => *x,
            ListItem::Bool(b) if t.ty == ExprType::Bool => f64::from(u8::from(*b)),
            ListItem::Bool(_) => {
                return Err(err(
                    &item_ast(*s, *e),
                    "the list mixes true/false with numbers",
                ));
            }
            ListItem::Str(_) => {
                return Err(err(
                    &item_ast(*s, *e),
                    format!("cannot look a {} up in a list of texts", t.ty.describe()),
                ));
            }
        };
        if let Some(info) = &info {
            check_code(
                lhs,
                info,
                &item_ast(*s, *e),
                &crate::frame::format_number(x),
                &num_code_matcher(x),
            )?;
        }
        nums.push(x);
    }
    Ok(Typed {
        node: Node::NumIn {
            lhs: Box::new(t.node),
            list: nums,
            negate: negated,
        },
        ty: ExprType::Bool,
        zero_one: true,
    })
}

fn arity(
    ast: &Ast,
    name: &str,
    args: &[Ast],
    min: usize,
    max: Option<usize>,
) -> Result<(), ExprError> {
    let n = args.len();
    let ok = n >= min && max.is_none_or(|m| n <= m);
    if ok {
        return Ok(());
    }
    let wanted = match max {
        Some(m) if m == min => format!("{min} argument{}", if min == 1 { "" } else { "s" }),
        Some(m) => format!("{min} to {m} arguments"),
        None => format!("at least {min} argument{}", if min == 1 { "" } else { "s" }),
    };
    Err(err(ast, format!("{name}() takes {wanted}, got {n}")))
}

/// Check the arguments of an `if`/`coalesce`-style function whose result has the common type of
/// its arguments (Bool if all are Bool, else Num).
fn common(
    args: &[&Ast],
    scope: Scope<'_>,
    what: &str,
) -> Result<(Vec<Node>, ExprType, bool), ExprError> {
    let mut nodes = Vec::with_capacity(args.len());
    let mut all_bool = true;
    let mut all01 = true;
    for a in args {
        let t = numeric(a, scope, what)?;
        all_bool &= t.ty == ExprType::Bool;
        all01 &= t.zero_one;
        nodes.push(t.node);
    }
    Ok((
        nodes,
        if all_bool {
            ExprType::Bool
        } else {
            ExprType::Num
        },
        all01,
    ))
}

fn call(
    ast: &Ast,
    name: &str,
    name_end: usize,
    args: &[Ast],
    scope: Scope<'_>,
) -> Result<Typed, ExprError> {
    let what = format!("{name}()");
    let agg = match name {
        "any" => Some(Agg::Any),
        "all" => Some(Agg::All),
        "sum" => Some(Agg::Sum),
        "count" => Some(Agg::Count),
        "min" => Some(Agg::Min),
        "max" => Some(Agg::Max),
        _ => None,
    };
    if let Some(agg) = agg {
        arity(ast, name, args, 1, None)?;
        let wants_bool = matches!(agg, Agg::Any | Agg::All | Agg::Count);
        let mut nodes = Vec::with_capacity(args.len());
        let mut all01 = true;
        for a in args {
            let t = if wants_bool {
                boolean(a, scope, &what)?
            } else {
                numeric(a, scope, &what)?
            };
            all01 &= t.zero_one;
            nodes.push(t.node);
        }
        let (ty, zero_one) = match agg {
            Agg::Any | Agg::All => (ExprType::Bool, true),
            Agg::Count | Agg::Sum => (ExprType::Num, false),
            Agg::Min | Agg::Max => (ExprType::Num, all01),
        };
        return Ok(Typed {
            node: Node::Agg(agg, nodes),
            ty,
            zero_one,
        });
    }
    match name {
        "cap" => {
            arity(ast, name, args, 2, Some(2))?;
            let x = numeric(&args[0], scope, &what)?;
            let u = numeric(&args[1], scope, &what)?;
            Ok(Typed {
                node: Node::Cap(Box::new(x.node), Box::new(u.node)),
                ty: ExprType::Num,
                zero_one: x.zero_one,
            })
        }
        "if" => {
            arity(ast, name, args, 3, Some(3))?;
            let c = boolean(&args[0], scope, "the condition of if()")?;
            let (mut nodes, ty, zero_one) = common(&[&args[1], &args[2]], scope, &what)?;
            let (Some(b), Some(a)) = (nodes.pop(), nodes.pop()) else {
                return Err(err(ast, "if() takes 3 arguments"));
            };
            Ok(Typed {
                node: Node::If(Box::new(c.node), Box::new(a), Box::new(b)),
                ty,
                zero_one,
            })
        }
        "coalesce" => {
            arity(ast, name, args, 1, None)?;
            let refs: Vec<&Ast> = args.iter().collect();
            let (nodes, ty, zero_one) = common(&refs, scope, &what)?;
            Ok(Typed {
                node: Node::Coalesce(nodes),
                ty,
                zero_one,
            })
        }
        "answered" | "missing" | "skipped" => {
            arity(ast, name, args, 1, Some(1))?;
            let f = match name {
                "answered" => StateFn::Answered,
                "missing" => StateFn::Missing,
                _ => StateFn::Skipped,
            };
            let arg = match text_operand(&args[0], scope)? {
                Some((op, _)) => StateArg::Text(op),
                None => {
                    let t = check(&args[0], scope)?;
                    if t.ty == ExprType::Text {
                        return Err(err(
                            &args[0],
                            format!("{name}() takes a variable or an expression"),
                        ));
                    }
                    StateArg::Expr(Box::new(t.node))
                }
            };
            Ok(Typed {
                node: Node::State(f, arg),
                ty: ExprType::Bool,
                zero_one: true,
            })
        }
        _ => Err(ExprError {
            start: ast.start,
            end: name_end,
            message: format!("unknown function {name}(); the functions are {FUNCTIONS}"),
        }),
    }
}
