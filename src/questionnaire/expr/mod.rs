//! The questionnaire expression language: skip rules, derived variables and indicator
//! definitions (`docs/questionnaire.md`).
//!
//! An expression is lexed ([`lexer`]), parsed into an untyped tree ([`parser`]), then
//! type-checked against the declared variables ([`check`]) into a compiled tree that is evaluated
//! column by column ([`eval`]): every node is computed for all rows at once, column references
//! are resolved once per evaluation, and no row allocates.
//!
//! Evaluation is missing-aware. Each cell is a value, *not applicable* (legitimately skipped) or
//! *missing* (item nonresponse: don't know, refused, blank where asked). Comparisons and
//! arithmetic propagate the state of a non-value operand; `and`/`or`/`not` follow Kleene's
//! three-valued logic; the aggregates `any`/`all`/`sum`/`count`/`min`/`max` ignore not-applicable
//! arguments. The rules are chosen so that an indicator universe and value written the natural
//! way reproduce the NA conventions of the R reference definitions.

mod check;
mod eval;
mod lexer;
mod parser;

use crate::frame::Frame;

pub use lexer::is_plain_identifier;

/// Static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprType {
    /// true/false (stored as 1/0 when evaluated).
    Bool,
    /// A number.
    Num,
    /// Text (only as a variable reference or literal inside comparisons).
    Text,
}

impl ExprType {
    /// The name used in messages: `true/false`, `number`, `text`.
    pub fn describe(self) -> &'static str {
        match self {
            ExprType::Bool => "true/false",
            ExprType::Num => "number",
            ExprType::Text => "text",
        }
    }
}

/// Why an evaluated cell has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalState {
    /// A value.
    Value,
    /// Not applicable: the inputs were legitimately skipped.
    NotApplicable,
    /// Unknown: an input was item-missing (don't know, refused, blank where asked).
    Missing,
}

impl EvalState {
    /// The state of a data cell: Value → Value, NotAsked → NotApplicable, any other state
    /// (don't know, refused, blank where asked, other missing codes) → Missing.
    pub fn from_cell(cell: crate::frame::CellState) -> EvalState {
        match cell {
            crate::frame::CellState::Value => EvalState::Value,
            crate::frame::CellState::NotAsked => EvalState::NotApplicable,
            _ => EvalState::Missing,
        }
    }

    /// The state to store in a derived column: Value → Value, NotApplicable → NotAsked,
    /// Missing → NoResponse.
    pub fn to_cell(self) -> crate::frame::CellState {
        match self {
            EvalState::Value => crate::frame::CellState::Value,
            EvalState::NotApplicable => crate::frame::CellState::NotAsked,
            EvalState::Missing => crate::frame::CellState::NoResponse,
        }
    }
}

/// Result of evaluating an expression on every row of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalColumn {
    /// Per-row value (Bool as 1.0/0.0); NaN where the state is not `Value`.
    pub values: Vec<f64>,
    /// Per-row state.
    pub state: Vec<EvalState>,
}

impl EvalColumn {
    /// True on rows where the expression is a value and that value is true (non-zero).
    /// Unknown (not applicable or missing) counts as false, as for an indicator universe.
    pub fn is_true(&self, row: usize) -> bool {
        self.state.get(row) == Some(&EvalState::Value)
            && self.values.get(row).is_some_and(|&v| v != 0.0)
    }
}

/// What the type checker knows about a variable an expression may reference.
#[derive(Debug, Clone, PartialEq)]
pub struct VarInfo {
    /// Type of the variable in expressions: `Num` for numerically stored variables, `Text` for
    /// text-stored ones, `Bool` for true/false derived variables (stored as 1/0).
    pub ty: ExprType,
    /// Valid codes (categorical variables); when non-empty, a literal compared with the
    /// variable must be one of them.
    pub codes: Vec<String>,
    /// Declared missing-value codes: comparing with one of them is an error, since such cells
    /// are missing and never equal anything (use `missing(x)`).
    pub missing_codes: Vec<String>,
    /// True when every value is 0 or 1 (so the variable can be the value of a proportion).
    pub zero_one: bool,
}

impl VarInfo {
    /// A variable of type `ty` without codes.
    pub fn of_type(ty: ExprType) -> VarInfo {
        VarInfo {
            ty,
            codes: Vec::new(),
            missing_codes: Vec::new(),
            zero_one: ty == ExprType::Bool,
        }
    }
}

/// A syntax or type error in an expression; `start..end` is the byte range in the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// Byte offset where the problem starts.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// A parsed, type-checked expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    node: check::Node,
    ty: ExprType,
    zero_one: bool,
    variables: Vec<String>,
}

/// Error evaluating an expression against data.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A referenced column is absent from the frame.
    #[error("expression `{expr}` uses column {column}, which is not in the data")]
    MissingColumn {
        /// The expression source.
        expr: String,
        /// Column name.
        column: String,
    },
    /// A referenced column holds text where numbers are needed, or numbers where text is needed.
    #[error("expression `{expr}` needs column {column} to hold {expected}, but it holds {found}")]
    ColumnType {
        /// The expression source.
        expr: String,
        /// Column name.
        column: String,
        /// `numbers` or `text`.
        expected: &'static str,
        /// `numbers` or `text`.
        found: &'static str,
    },
    /// A derived column could not be added to the frame.
    #[error("derived variable {name}: {source}")]
    Frame {
        /// Derived variable name.
        name: String,
        /// The frame's complaint.
        source: crate::frame::FrameError,
    },
}

impl Expr {
    /// Parse and type-check `source`. `scope` describes each variable the expression may use,
    /// or returns the message to report for a name it does not know.
    pub fn parse(
        source: &str,
        scope: &dyn Fn(&str) -> Result<VarInfo, String>,
    ) -> Result<Expr, ExprError> {
        let tokens = lexer::lex(source)?;
        let ast = parser::parse(&tokens, source.len())?;
        let typed = check::check(&ast, scope)?;
        if typed.ty == ExprType::Text {
            return Err(ExprError {
                start: ast.start,
                end: ast.end,
                message:
                    "a text value can only be compared (==, !=, in); this expression must give \
                          a number or true/false"
                        .into(),
            });
        }
        let mut variables = Vec::new();
        typed.node.collect_variables(&mut variables);
        Ok(Expr {
            source: source.to_string(),
            node: typed.node,
            ty: typed.ty,
            zero_one: typed.zero_one,
            variables,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Static result type.
    pub fn output_type(&self) -> ExprType {
        self.ty
    }

    /// True when every value is 0 or 1: a true/false expression, a 0/1 variable, or an `if`
    /// choosing between such values. Such an expression can be a proportion's value.
    pub fn is_zero_one(&self) -> bool {
        self.zero_one
    }

    /// Names of the variables the expression reads, in order of first use.
    pub fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }

    /// Evaluate on every row of `frame`.
    pub fn eval(&self, frame: &Frame) -> Result<EvalColumn, EvalError> {
        eval::eval(&self.node, frame, &self.source)
    }

    /// Per row of `frame`: true where the expression is a value and non-zero, as
    /// [`EvalColumn::is_true`] of [`Expr::eval`], without building the whole column.
    pub fn eval_true(&self, frame: &Frame) -> Result<Vec<bool>, EvalError> {
        eval::eval_true(&self.node, frame, &self.source)
    }

    /// The expression as a frame column, as [`Expr::eval`] gives it with states mapped by
    /// [`EvalState::to_cell`]: values in the smallest storage that holds them, built chunk by
    /// chunk without a whole column of `f64`s in between.
    pub fn eval_column(
        &self,
        frame: &Frame,
    ) -> Result<(crate::frame::NumValues, crate::frame::States), EvalError> {
        eval::eval_column(&self.node, frame, &self.source)
    }
}

#[cfg(test)]
mod tests;
