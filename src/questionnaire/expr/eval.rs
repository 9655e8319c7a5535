//! Columnar evaluation of a compiled expression.
//!
//! Each node is evaluated once over all rows. Column references are looked up once per node,
//! text literals are resolved against a column's levels once, and the per-row loops neither
//! allocate nor look anything up by name.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;

use super::check::{Agg, Node, StateArg, StateFn, TextOp};
use super::parser::BinOp;
use super::{EvalColumn, EvalError, EvalState};
use crate::frame::{
    CellState, Column, ColumnData, Frame, NumValues, States, StoredValues, byte_value,
};

use EvalState::{Missing, NotApplicable, Value};

/// An intermediate result: a constant, a borrowed numeric column, or a computed column.
enum Col<'a> {
    Const(f64),
    /// A frame column's rows of the chunk, as stored (bytes are read as `f64`s cell by cell).
    Data {
        values: StoredValues<'a>,
        state: Cow<'a, [CellState]>,
    },
    Owned {
        values: Vec<f64>,
        state: Vec<EvalState>,
    },
    /// `column <op> constant` (or `column in [...]`), computed when read: skip rules and
    /// `any(...)` are mostly made of these, and a column per comparison would be allocated,
    /// filled and read once.
    Cmp {
        values: StoredValues<'a>,
        state: Cow<'a, [CellState]>,
        test: Test<'a>,
    },
}

/// The comparison of a lazy [`Col::Cmp`] leaf.
#[derive(Clone, Copy)]
enum Test<'a> {
    Op(BinOp, f64),
    In(&'a [f64], bool),
}

impl Test<'_> {
    #[inline]
    fn holds(self, x: f64) -> bool {
        match self {
            Test::Op(op, c) => match op {
                BinOp::Eq => x == c,
                BinOp::Ne => x != c,
                BinOp::Lt => x < c,
                BinOp::Le => x <= c,
                BinOp::Gt => x > c,
                _ => x >= c,
            },
            Test::In(list, negate) => list.contains(&x) != negate,
        }
    }

    /// The outcome of the test on every byte of a byte column: a comparison of a byte cell
    /// is a lookup (the outcome on [`crate::frame::NO_BYTE`] is the one on NaN).
    fn byte_table(self) -> [bool; 256] {
        std::array::from_fn(|b| self.holds(byte_value(b as u8)))
    }
}

/// Runs `$body` with `$pred` bound to the test as a closure specialised to its operator, so
/// that a loop over rows does not match the operator on every row.
macro_rules! with_test {
    ($test:expr, |$pred:ident| $body:block) => {
        match $test {
            Test::Op(BinOp::Eq, c) => {
                let $pred = |x: f64| x == c;
                $body
            }
            Test::Op(BinOp::Ne, c) => {
                let $pred = |x: f64| x != c;
                $body
            }
            Test::Op(BinOp::Lt, c) => {
                let $pred = |x: f64| x < c;
                $body
            }
            Test::Op(BinOp::Le, c) => {
                let $pred = |x: f64| x <= c;
                $body
            }
            Test::Op(BinOp::Gt, c) => {
                let $pred = |x: f64| x > c;
                $body
            }
            Test::Op(_, c) => {
                let $pred = |x: f64| x >= c;
                $body
            }
            Test::In(list, negate) => {
                let $pred = |x: f64| list.contains(&x) != negate;
                $body
            }
        }
    };
}

/// Calls `f(i, holds)` for every cell `i` of `values`, `holds` the test's outcome on its value:
/// the operator matched once, and on byte cells the outcome looked up.
#[inline]
fn each_outcome(values: StoredValues<'_>, test: Test<'_>, mut f: impl FnMut(usize, bool)) {
    match values {
        StoredValues::Byte(bytes) => {
            let table = test.byte_table();
            for (i, &b) in bytes.iter().enumerate() {
                f(i, table[usize::from(b)]);
            }
        }
        StoredValues::Wide(wide) => with_test!(test, |holds| {
            for (i, &x) in wide.iter().enumerate() {
                f(i, holds(x));
            }
        }),
    }
}

impl Col<'_> {
    #[inline]
    fn get(&self, i: usize) -> (EvalState, f64) {
        match self {
            Col::Const(x) => (Value, *x),
            Col::Data { values, state } => {
                let s = state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                (s, values.get(i))
            }
            Col::Owned { values, state } => (
                state.get(i).copied().unwrap_or(Missing),
                values.get(i).copied().unwrap_or(f64::NAN),
            ),
            Col::Cmp {
                values,
                state,
                test,
            } => {
                let s = state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                if s == Value {
                    (Value, b2f(test.holds(values.get(i))))
                } else {
                    (s, f64::NAN)
                }
            }
        }
    }
}

impl Col<'_> {
    /// Calls `f(i, state, value)` for rows `0..n`, as [`Col::get`] would give them, with the
    /// kind of column (and a comparison's operator) matched once instead of per row.
    #[inline]
    fn each(&self, n: usize, mut f: impl FnMut(usize, EvalState, f64)) {
        match self {
            Col::Const(x) => (0..n).for_each(|i| f(i, Value, *x)),
            Col::Data { values, state } => {
                let state_of =
                    |i: usize| state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                match values {
                    StoredValues::Byte(bytes) => {
                        for i in 0..n {
                            f(
                                i,
                                state_of(i),
                                bytes.get(i).map_or(f64::NAN, |&b| byte_value(b)),
                            );
                        }
                    }
                    StoredValues::Wide(wide) => {
                        for i in 0..n {
                            f(i, state_of(i), wide.get(i).copied().unwrap_or(f64::NAN));
                        }
                    }
                }
            }
            Col::Owned { values, state } => {
                for i in 0..n {
                    f(
                        i,
                        state.get(i).copied().unwrap_or(Missing),
                        values.get(i).copied().unwrap_or(f64::NAN),
                    );
                }
            }
            Col::Cmp {
                values,
                state,
                test,
            } => {
                // Rows past the stored cells read as missing, as `get` gives them.
                each_outcome(*values, *test, |i, holds| {
                    if i < n {
                        match state.get(i).map_or(Missing, |&c| EvalState::from_cell(c)) {
                            Value => f(i, Value, b2f(holds)),
                            s => f(i, s, f64::NAN),
                        }
                    }
                });
                for i in values.len()..n {
                    f(i, Missing, f64::NAN);
                }
            }
        }
    }
}

/// Flips a comparison so that the column is on the left: `1 == x` is `x == 1`, `1 < x` is
/// `x > 1`.
fn mirrored(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}

/// The stronger of two non-value states: Missing wins over NotApplicable.
#[inline]
fn worst(a: EvalState, b: EvalState) -> EvalState {
    match (a, b) {
        (Missing, _) | (_, Missing) => Missing,
        (NotApplicable, _) | (_, NotApplicable) => NotApplicable,
        _ => Value,
    }
}

#[inline]
fn b2f(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Builds an owned column row by row.
struct Out {
    values: Vec<f64>,
    state: Vec<EvalState>,
}

impl Out {
    fn new(n: usize) -> Out {
        Out {
            values: Vec::with_capacity(n),
            state: Vec::with_capacity(n),
        }
    }
    #[inline]
    fn value(&mut self, x: f64) {
        self.values.push(x);
        self.state.push(Value);
    }
    #[inline]
    fn none(&mut self, s: EvalState) {
        if s == Value {
            // Only reached for undefined arithmetic (division by zero): treat as unknown.
            self.values.push(f64::NAN);
            self.state.push(Missing);
        } else {
            self.values.push(f64::NAN);
            self.state.push(s);
        }
    }
    #[inline]
    fn push(&mut self, (s, x): (EvalState, f64)) {
        if s == Value {
            self.value(x)
        } else {
            self.none(s)
        }
    }
    fn done<'a>(self) -> Col<'a> {
        Col::Owned {
            values: self.values,
            state: self.state,
        }
    }
}

struct Ctx<'a> {
    frame: &'a Frame,
    source: &'a str,
    /// The rows evaluated: every column is read through this range.
    rows: Range<usize>,
    n: usize,
}

/// Rows per chunk: the expression is evaluated chunk by chunk, in parallel, so that a node's
/// intermediate columns stay in cache between nodes (an expression's cells depend on their own
/// row only, so the chunks are independent and the result does not depend on the chunking).
const CHUNK_ROWS: usize = 1 << 15;

/// The context of the `len` rows from `start`.
fn chunk<'a>(frame: &'a Frame, source: &'a str, start: usize, len: usize) -> Ctx<'a> {
    Ctx {
        frame,
        source,
        rows: start..start + len,
        n: len,
    }
}

/// Evaluates `node` on every chunk of `frame`'s rows in parallel, giving each chunk's result and
/// its slice of `out` (one entry per row) to `write`. The first error in row order wins.
fn for_each_chunk<T: Send>(
    node: &Node,
    frame: &Frame,
    source: &str,
    out: &mut [T],
    write: impl Fn(&Col<'_>, &mut [T]) + Sync,
) -> Result<(), EvalError> {
    let n = out.len();
    if n <= CHUNK_ROWS {
        write(&chunk(frame, source, 0, n).eval(node)?, out);
        return Ok(());
    }
    out.par_chunks_mut(CHUNK_ROWS)
        .enumerate()
        .map(|(k, slice)| {
            write(
                &chunk(frame, source, k * CHUNK_ROWS, slice.len()).eval(node)?,
                slice,
            );
            Ok(())
        })
        .collect::<Vec<Result<(), EvalError>>>()
        .into_iter()
        .collect()
}

pub(super) fn eval(node: &Node, frame: &Frame, source: &str) -> Result<EvalColumn, EvalError> {
    let n = frame.n_rows();
    let mut values = vec![f64::NAN; n];
    let mut state = vec![Missing; n];
    let write = |col: &Col<'_>, values: &mut [f64], state: &mut [EvalState]| {
        if let Col::Owned {
            values: computed,
            state: computed_state,
        } = col
            && computed.len() == values.len()
            && computed_state.len() == state.len()
        {
            // `Out` already stores NaN wherever the state is not a value.
            values.copy_from_slice(computed);
            state.copy_from_slice(computed_state);
            return;
        }
        col.each(values.len(), |i, s, x| {
            // Other columns are normalised here: NaN wherever the state is not a value.
            values[i] = if s == Value { x } else { f64::NAN };
            state[i] = s;
        });
    };
    if n <= CHUNK_ROWS {
        write(
            &chunk(frame, source, 0, n).eval(node)?,
            &mut values,
            &mut state,
        );
    } else {
        values
            .par_chunks_mut(CHUNK_ROWS)
            .zip(state.par_chunks_mut(CHUNK_ROWS))
            .enumerate()
            .map(|(k, (v, st))| {
                write(
                    &chunk(frame, source, k * CHUNK_ROWS, v.len()).eval(node)?,
                    v,
                    st,
                );
                Ok(())
            })
            .collect::<Vec<Result<(), EvalError>>>()
            .into_iter()
            .collect::<Result<(), EvalError>>()?;
    }
    Ok(EvalColumn { values, state })
}

/// Per row: true where the expression is a value and that value is non-zero (a skip rule's
/// "asked"), without materialising the expression's column beyond a chunk.
pub(super) fn eval_true(node: &Node, frame: &Frame, source: &str) -> Result<Vec<bool>, EvalError> {
    let mut out = vec![false; frame.n_rows()];
    for_each_chunk(node, frame, source, &mut out, |col, out| {
        col.each(out.len(), |i, s, x| out[i] = s == Value && x != 0.0);
    })?;
    Ok(out)
}

/// [`eval`] stored as a frame column: each chunk's values compacted and its states coded in
/// parallel, the chunks joined in row order (the storage is bytes exactly when every value
/// fits one, as [`NumValues::compact`] of the whole column would choose).
pub(super) fn eval_column(
    node: &Node,
    frame: &Frame,
    source: &str,
) -> Result<(NumValues, States), EvalError> {
    let n = frame.n_rows();
    let pieces: Vec<Result<(NumValues, Vec<u8>), EvalError>> = (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|k| {
            let start = k * CHUNK_ROWS;
            let len = CHUNK_ROWS.min(n - start);
            let col = chunk(frame, source, start, len).eval(node)?;
            let mut values = Vec::with_capacity(len);
            let mut codes = Vec::with_capacity(len);
            col.each(len, |_, s, x| {
                values.push(if s == Value { x } else { f64::NAN });
                codes.push(s.to_cell() as u8);
            });
            Ok((NumValues::compact(values), codes))
        })
        .collect();
    let mut values = NumValues::with_capacity(n);
    let mut states = States::AllValue(0);
    for piece in pieces {
        let (chunk_values, codes) = piece?;
        values.extend_from(&chunk_values);
        states.extend_codes(&codes, n);
    }
    Ok((values, states))
}

/// A text operand resolved against the frame.
enum TextCol<'a> {
    Lit(&'a str),
    Var {
        codes: &'a [u32],
        levels: &'a [String],
        state: Cow<'a, [CellState]>,
    },
}

impl<'a> Ctx<'a> {
    fn column(&self, name: &str) -> Result<&'a Column, EvalError> {
        self.frame
            .column(name)
            .ok_or_else(|| EvalError::MissingColumn {
                expr: self.source.to_string(),
                column: name.to_string(),
            })
    }

    fn num_column(&self, name: &str) -> Result<Col<'a>, EvalError> {
        let c = self.column(name)?;
        match &c.data {
            ColumnData::Num(values) => Ok(Col::Data {
                values: values.stored(self.rows.clone()),
                state: c.state.slice(self.rows.clone()),
            }),
            ColumnData::Text { .. } => Err(EvalError::ColumnType {
                expr: self.source.to_string(),
                column: name.to_string(),
                expected: "numbers",
                found: "text",
            }),
        }
    }

    fn text(&self, op: &'a TextOp) -> Result<TextCol<'a>, EvalError> {
        match op {
            TextOp::Lit(s) => Ok(TextCol::Lit(s)),
            TextOp::Var(name) => {
                let c = self.column(name)?;
                match &c.data {
                    ColumnData::Text { codes, levels } => Ok(TextCol::Var {
                        codes: &codes[self.rows.clone()],
                        levels,
                        state: c.state.slice(self.rows.clone()),
                    }),
                    ColumnData::Num(_) => Err(EvalError::ColumnType {
                        expr: self.source.to_string(),
                        column: name.to_string(),
                        expected: "text",
                        found: "numbers",
                    }),
                }
            }
        }
    }

    fn eval(&self, node: &'a Node) -> Result<Col<'a>, EvalError> {
        let n = self.n;
        Ok(match node {
            Node::Const(x) => Col::Const(*x),
            Node::Var(name) => self.num_column(name)?,
            Node::TextEq { lhs, rhs, negate } => {
                self.text_eq(self.text(lhs)?, self.text(rhs)?, *negate)
            }
            Node::TextIn { lhs, list, negate } => {
                let mut out = Out::new(n);
                match self.text(lhs)? {
                    TextCol::Lit(s) => {
                        return Ok(Col::Const(b2f(list.iter().any(|t| t == s) != *negate)));
                    }
                    TextCol::Var {
                        codes,
                        levels,
                        state,
                    } => {
                        let member: Vec<bool> =
                            levels.iter().map(|l| list.contains(l) != *negate).collect();
                        for i in 0..n {
                            let s = state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                            if s != Value {
                                out.none(s);
                                continue;
                            }
                            match codes.get(i).and_then(|&c| member.get(c as usize)) {
                                Some(&m) => out.value(b2f(m)),
                                None => out.none(Missing),
                            }
                        }
                    }
                }
                out.done()
            }
            Node::NumIn { lhs, list, negate } => {
                let a = self.eval(lhs)?;
                if let Col::Data { values, state } = a {
                    return Ok(Col::Cmp {
                        values,
                        state,
                        test: Test::In(list, *negate),
                    });
                }
                let mut out = Out::new(n);
                for i in 0..n {
                    let (s, x) = a.get(i);
                    if s == Value {
                        out.value(b2f(list.contains(&x) != *negate))
                    } else {
                        out.none(s)
                    }
                }
                out.done()
            }
            Node::Binary(op, a, b) => {
                let (mut ca, mut cb) = (self.eval(a)?, self.eval(b)?);
                if is_comparison(*op) {
                    match (ca, cb) {
                        (Col::Data { values, state }, Col::Const(c)) => {
                            return Ok(Col::Cmp {
                                values,
                                state,
                                test: Test::Op(*op, c),
                            });
                        }
                        (Col::Const(c), Col::Data { values, state }) => {
                            return Ok(Col::Cmp {
                                values,
                                state,
                                test: Test::Op(mirrored(*op), c),
                            });
                        }
                        (a, b) => (ca, cb) = (a, b),
                    }
                }
                match op {
                    BinOp::And | BinOp::Or => kleene(n, *op == BinOp::And, &ca, &cb),
                    _ => {
                        let f: fn(f64, f64) -> Option<f64> = match op {
                            BinOp::Eq => |x, y| Some(b2f(x == y)),
                            BinOp::Ne => |x, y| Some(b2f(x != y)),
                            BinOp::Lt => |x, y| Some(b2f(x < y)),
                            BinOp::Le => |x, y| Some(b2f(x <= y)),
                            BinOp::Gt => |x, y| Some(b2f(x > y)),
                            BinOp::Ge => |x, y| Some(b2f(x >= y)),
                            BinOp::Add => |x, y| Some(x + y),
                            BinOp::Sub => |x, y| Some(x - y),
                            BinOp::Mul => |x, y| Some(x * y),
                            _ => |x, y| if y == 0.0 { None } else { Some(x / y) },
                        };
                        strict2(n, &ca, &cb, f)
                    }
                }
            }
            Node::Cap(a, b) => {
                let (ca, cb) = (self.eval(a)?, self.eval(b)?);
                strict2(n, &ca, &cb, |x, u| Some(if x <= u { x } else { u }))
            }
            Node::Neg(a) => {
                let ca = self.eval(a)?;
                let mut out = Out::new(n);
                for i in 0..n {
                    let (s, x) = ca.get(i);
                    out.push((s, -x));
                }
                out.done()
            }
            Node::Not(a) => {
                let ca = self.eval(a)?;
                let mut out = Out::new(n);
                for i in 0..n {
                    let (s, x) = ca.get(i);
                    out.push((s, b2f(x == 0.0)));
                }
                out.done()
            }
            Node::Agg(agg, args) => {
                let cols = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                aggregate(n, *agg, &cols)
            }
            Node::If(c, a, b) => {
                let (cc, ca, cb) = (self.eval(c)?, self.eval(a)?, self.eval(b)?);
                let mut out = Out::new(n);
                for i in 0..n {
                    let (s, x) = cc.get(i);
                    if s != Value {
                        out.none(s);
                    } else if x != 0.0 {
                        out.push(ca.get(i));
                    } else {
                        out.push(cb.get(i));
                    }
                }
                out.done()
            }
            Node::Coalesce(args) => {
                let cols = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Out::new(n);
                for i in 0..n {
                    let mut state = NotApplicable;
                    let mut found = None;
                    for c in &cols {
                        let (s, x) = c.get(i);
                        if s == Value {
                            found = Some(x);
                            break;
                        }
                        state = worst(state, s);
                    }
                    match found {
                        Some(x) => out.value(x),
                        None => out.none(state),
                    }
                }
                out.done()
            }
            Node::State(f, arg) => {
                let want = |s: EvalState| match f {
                    StateFn::Answered => s == Value,
                    StateFn::Missing => s == Missing,
                    StateFn::Skipped => s == NotApplicable,
                };
                match arg {
                    StateArg::Text(TextOp::Lit(_)) => Col::Const(b2f(want(Value))),
                    StateArg::Text(op) => {
                        let TextCol::Var { state, .. } = self.text(op)? else {
                            return Ok(Col::Const(b2f(want(Value))));
                        };
                        let mut out = Out::new(n);
                        for i in 0..n {
                            let s = state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                            out.value(b2f(want(s)));
                        }
                        out.done()
                    }
                    StateArg::Expr(e) => {
                        let c = self.eval(e)?;
                        let mut out = Out::new(n);
                        for i in 0..n {
                            out.value(b2f(want(c.get(i).0)));
                        }
                        out.done()
                    }
                }
            }
        })
    }

    fn text_eq(&self, a: TextCol<'a>, b: TextCol<'a>, negate: bool) -> Col<'a> {
        let n = self.n;
        // Give every distinct text a small integer key once, then compare keys row by row.
        let mut dict: HashMap<&str, u32> = HashMap::new();
        let mut keys_of = |t: &TextCol<'a>| -> Vec<u32> {
            let texts: Vec<&str> = match t {
                TextCol::Lit(s) => vec![s],
                TextCol::Var { levels, .. } => levels.iter().map(String::as_str).collect(),
            };
            texts
                .into_iter()
                .map(|s| {
                    let next = u32::try_from(dict.len()).unwrap_or(u32::MAX);
                    *dict.entry(s).or_insert(next)
                })
                .collect()
        };
        let (ka, kb) = (keys_of(&a), keys_of(&b));
        let row = |t: &TextCol<'a>, keys: &[u32], i: usize| -> (EvalState, u32) {
            match t {
                TextCol::Lit(_) => (Value, keys.first().copied().unwrap_or(u32::MAX)),
                TextCol::Var { codes, state, .. } => {
                    let s = state.get(i).map_or(Missing, |&c| EvalState::from_cell(c));
                    if s != Value {
                        return (s, u32::MAX);
                    }
                    match codes.get(i).and_then(|&c| keys.get(c as usize)) {
                        Some(&k) => (Value, k),
                        None => (Missing, u32::MAX),
                    }
                }
            }
        };
        if let (TextCol::Lit(_), TextCol::Lit(_)) = (&a, &b) {
            return Col::Const(b2f((ka == kb) != negate));
        }
        let mut out = Out::new(n);
        for i in 0..n {
            let (sa, xa) = row(&a, &ka, i);
            let (sb, xb) = row(&b, &kb, i);
            if sa == Value && sb == Value {
                out.value(b2f((xa == xb) != negate));
            } else {
                out.none(worst(sa, sb));
            }
        }
        out.done()
    }
}

/// Arithmetic and comparison: a non-value operand passes its state on (Missing wins).
fn strict2<'a>(n: usize, a: &Col<'_>, b: &Col<'_>, f: impl Fn(f64, f64) -> Option<f64>) -> Col<'a> {
    let mut out = Out::new(n);
    for i in 0..n {
        let (sa, x) = a.get(i);
        let (sb, y) = b.get(i);
        if sa == Value && sb == Value {
            match f(x, y) {
                Some(z) => out.value(z),
                None => out.none(Missing),
            }
        } else {
            out.none(worst(sa, sb));
        }
    }
    out.done()
}

/// A cell as Kleene logic sees it.
const FALSE: u8 = 0;
const TRUE: u8 = 1;
const NOT_APPLICABLE: u8 = 2;
const MISSING: u8 = 3;

/// Every row of `c` as [`FALSE`], [`TRUE`], [`NOT_APPLICABLE`] or [`MISSING`], the kind of
/// column matched once (and a comparison's operator too) instead of per row.
fn truth_codes(n: usize, c: &Col<'_>) -> Vec<u8> {
    let code = |s: EvalState, x: f64| match s {
        Value => u8::from(x != 0.0),
        NotApplicable => NOT_APPLICABLE,
        Missing => MISSING,
    };
    let mut out = vec![MISSING; n];
    c.each(n, |i, s, x| out[i] = code(s, x));
    out
}

/// Kleene three-valued `and` / `or`: the value that decides the result on its own (false for
/// `and`, true for `or`) wins; two values give the other; otherwise the stronger non-value
/// state (missing over not applicable).
fn kleene<'a>(n: usize, is_and: bool, a: &Col<'_>, b: &Col<'_>) -> Col<'a> {
    let decisive = if is_and { FALSE } else { TRUE };
    // The result of every pair of codes, worked out once.
    let mut table = [(Missing, f64::NAN); 16];
    for ca in 0..4u8 {
        for cb in 0..4u8 {
            let state_of = |c: u8| match c {
                FALSE | TRUE => Value,
                NOT_APPLICABLE => NotApplicable,
                _ => Missing,
            };
            table[usize::from(ca * 4 + cb)] = if ca == decisive || cb == decisive {
                (Value, f64::from(decisive))
            } else if ca <= TRUE && cb <= TRUE {
                (Value, f64::from(1 - decisive))
            } else {
                (worst(state_of(ca), state_of(cb)), f64::NAN)
            };
        }
    }
    let (ta, tb) = (truth_codes(n, a), truth_codes(n, b));
    let (state, values) = ta
        .iter()
        .zip(&tb)
        .map(|(&x, &y)| table[usize::from(x * 4 + y)])
        .unzip();
    Col::Owned { values, state }
}

/// `any`, `all`, `sum`, `count`, `min`, `max`: not-applicable arguments are ignored.
///
/// Accumulated one argument at a time over all rows, so that each argument's kind (constant,
/// column, lazy comparison) is matched once per argument rather than once per cell; every row
/// still sees its arguments in order, so sums are added in the same order as row by row.
fn aggregate<'a>(n: usize, agg: Agg, cols: &[Col<'_>]) -> Col<'a> {
    const SEEN: u8 = 1; // any argument that is not NotApplicable
    const MISSING: u8 = 2;
    const HIT: u8 = 4; // any: a true; all: a false
    let init = match agg {
        Agg::Min => f64::INFINITY,
        Agg::Max => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let mut flags = vec![0u8; n];
    let mut acc = vec![init; n];
    for c in cols {
        // any/all of comparisons (most skip rules and derived flags): one branch-free pass per
        // argument. A cell not asked is ignored, a missing one marks the row, a value is tested.
        if let (
            Agg::Any | Agg::All,
            Col::Cmp {
                values,
                state,
                test,
            },
        ) = (agg, c)
            && values.len() == n
            && state.len() == n
        {
            let hit_when = agg == Agg::Any;
            let mark = |f: &mut u8, s: CellState, holds: bool| {
                let seen = u8::from(s != CellState::NotAsked) * SEEN;
                let missing = u8::from(s != CellState::Value && s != CellState::NotAsked) * MISSING;
                let hit = u8::from(s == CellState::Value && holds == hit_when) * HIT;
                *f |= seen | missing | hit;
            };
            // `each_outcome` with indexed flags and states measured 3 % slower on `validate`:
            // the three slices are zipped here instead.
            match *values {
                StoredValues::Byte(bytes) => {
                    let table = test.byte_table();
                    for ((f, &b), &s) in flags.iter_mut().zip(bytes).zip(state.iter()) {
                        mark(f, s, table[usize::from(b)]);
                    }
                }
                StoredValues::Wide(wide) => with_test!(*test, |holds| {
                    for ((f, &x), &s) in flags.iter_mut().zip(wide).zip(state.iter()) {
                        mark(f, s, holds(x));
                    }
                }),
            }
            continue;
        }
        // sum/count of data columns (totals over several questions): the same, branch-free.
        if let (Agg::Sum | Agg::Count, Col::Data { values, state }) = (agg, c)
            && values.len() == n
            && state.len() == n
        {
            let count = agg == Agg::Count;
            let add = |(f, a): (&mut u8, &mut f64), x: f64, s: CellState| {
                let value = s == CellState::Value;
                let seen = u8::from(s != CellState::NotAsked) * SEEN;
                let missing = u8::from(!value && s != CellState::NotAsked) * MISSING;
                *f |= seen | missing;
                let term = if count { b2f(x != 0.0) } else { x };
                *a += if value { term } else { 0.0 };
            };
            let cells = flags.iter_mut().zip(acc.iter_mut());
            match *values {
                StoredValues::Byte(bytes) => {
                    for ((cell, &b), &s) in cells.zip(bytes).zip(state.iter()) {
                        add(cell, byte_value(b), s);
                    }
                }
                StoredValues::Wide(wide) => {
                    for ((cell, &x), &s) in cells.zip(wide).zip(state.iter()) {
                        add(cell, x, s);
                    }
                }
            }
            continue;
        }
        c.each(n, |i, s, x| match s {
            NotApplicable => {}
            Missing => flags[i] |= SEEN | MISSING,
            Value => {
                flags[i] |= SEEN;
                match agg {
                    Agg::Any => flags[i] |= if x != 0.0 { HIT } else { 0 },
                    Agg::All => flags[i] |= if x == 0.0 { HIT } else { 0 },
                    Agg::Sum => acc[i] += x,
                    Agg::Count => acc[i] += b2f(x != 0.0),
                    Agg::Min => acc[i] = acc[i].min(x),
                    Agg::Max => acc[i] = acc[i].max(x),
                }
            }
        });
    }
    let mut out = Out::new(n);
    for (&f, &a) in flags.iter().zip(&acc) {
        if f & SEEN == 0 {
            out.none(NotApplicable);
            continue;
        }
        match agg {
            Agg::Any | Agg::All if f & HIT != 0 => out.value(b2f(agg == Agg::Any)),
            _ if f & MISSING != 0 => out.none(Missing),
            Agg::Any | Agg::All => out.value(b2f(agg == Agg::All)),
            _ => out.value(a),
        }
    }
    out.done()
}
