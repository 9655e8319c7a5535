//! The questionnaire expression language (STUB: to be implemented; public API is the contract).

use crate::frame::Frame;

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

/// Result of evaluating an expression on every row of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalColumn {
    /// Per-row value (Bool as 1.0/0.0); NaN where the state is not `Value`.
    pub values: Vec<f64>,
    /// Per-row state.
    pub state: Vec<EvalState>,
}

/// A parsed, type-checked expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
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
}

impl Expr {
    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Static result type.
    pub fn output_type(&self) -> ExprType {
        ExprType::Bool
    }

    /// Names of the variables the expression reads.
    pub fn variables(&self) -> Vec<String> {
        Vec::new()
    }

    /// Evaluate on every row of `frame`.
    pub fn eval(&self, frame: &Frame) -> Result<EvalColumn, EvalError> {
        let _ = frame;
        Err(EvalError::MissingColumn { expr: self.source.clone(), column: String::new() })
    }
}
