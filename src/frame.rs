//! In-memory columnar survey data, the vocabulary every pipeline stage shares.
//!
//! A [`Frame`] holds one [`Column`] per variable: a contiguous value vector plus a per-cell
//! [`CellState`] that records *why* a cell has no usable value (not asked, don't know, refused,
//! item nonresponse). Text columns are dictionary-encoded to dense `u32` codes once, at ingest, so
//! grouping by strata, PSUs and domains never hashes strings again.

use std::collections::HashMap;

use rayon::prelude::*;

/// State of one cell after validation against the questionnaire.
///
/// Only [`CellState::Value`] cells carry a usable value. The other states are kept apart because
/// the expression language treats "not asked" (a legitimate skip) differently from item
/// missingness (don't know, refused, blank where asked): see `docs/questionnaire.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CellState {
    /// A valid answer or measurement.
    Value = 0,
    /// Blank because skip logic did not ask the question (or the row is a unit nonrespondent).
    NotAsked = 1,
    /// Blank although the question was asked (item nonresponse).
    NoResponse = 2,
    /// A "don't know" missing code.
    DontKnow = 3,
    /// A "refused" missing code.
    Refused = 4,
    /// Any other declared missing code.
    OtherMissing = 5,
}

impl CellState {
    /// True for item missingness (don't know, refused, blank where asked, other missing codes):
    /// the cell should have had a value and has none.
    pub fn is_missing(self) -> bool {
        matches!(
            self,
            CellState::NoResponse
                | CellState::DontKnow
                | CellState::Refused
                | CellState::OtherMissing
        )
    }
}

/// Values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers: codes of numerically-coded categorical variables, counts, measurements, weights.
    /// An entry is meaningful only where the cell state is [`CellState::Value`] (else it is NaN).
    Num(Vec<f64>),
    /// Text, dictionary-encoded: `codes[i]` indexes `levels`. Levels are in order of first
    /// appearance in the input; entries whose state is not `Value` have code `u32::MAX`.
    Text {
        /// Per-row index into `levels`.
        codes: Vec<u32>,
        /// Distinct text values.
        levels: Vec<String>,
    },
}

/// One variable: its values and per-cell state.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Variable name, as in the questionnaire and the data file header.
    pub name: String,
    /// Values.
    pub data: ColumnData,
    /// Per-row state; same length as the values.
    pub state: Vec<CellState>,
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// The cell as it would be written back to a file: the number formatted without a trailing
    /// `.0` for integral values, or the text; `None` when the cell has no value.
    pub fn display(&self, row: usize) -> Option<String> {
        if self.state[row] != CellState::Value {
            return None;
        }
        Some(match &self.data {
            ColumnData::Num(v) => format_number(v[row]),
            ColumnData::Text { codes, levels } => levels[codes[row] as usize].clone(),
        })
    }

    /// [`Column::display`] appended to `out` (nothing for a cell without a value), for callers
    /// writing a whole column without a string per cell.
    pub fn display_into(&self, row: usize, out: &mut String) {
        if self.state[row] != CellState::Value {
            return;
        }
        match &self.data {
            ColumnData::Num(v) => write_number(v[row], out),
            ColumnData::Text { codes, levels } => out.push_str(&levels[codes[row] as usize]),
        }
    }

    /// Keep only `rows` (in the given order).
    pub fn take(&self, rows: &[usize]) -> Column {
        let data = match &self.data {
            ColumnData::Num(v) => ColumnData::Num(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Text { codes, levels } => ColumnData::Text {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
            },
        };
        Column {
            name: self.name.clone(),
            data,
            state: rows.iter().map(|&r| self.state[r]).collect(),
        }
    }
}

/// Formats a number the way survey codes are written: `1` not `1.0`, otherwise the shortest
/// representation that round-trips.
pub fn format_number(x: f64) -> String {
    let mut out = String::new();
    write_number(x, &mut out);
    out
}

/// [`format_number`] appended to `out`.
pub fn write_number(x: f64, out: &mut String) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        write!(out, "{}", x as i64)
    } else {
        write!(out, "{x}")
    };
}

/// A set of equally long columns, addressable by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    n_rows: usize,
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
}

/// Error raised when a column does not fit the frame.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// Column length differs from the frame's row count.
    #[error("column {name} has {got} rows, the frame has {expected}")]
    Length {
        /// Column name.
        name: String,
        /// Rows in the column.
        got: usize,
        /// Rows in the frame.
        expected: usize,
    },
    /// A column of that name is already present.
    #[error("column {0} is defined twice")]
    Duplicate(String),
}

impl Frame {
    /// An empty frame with `n_rows` rows and no columns.
    pub fn new(n_rows: usize) -> Frame {
        Frame {
            n_rows,
            columns: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Columns in insertion order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Look a column up by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }

    /// Every column, for in-place changes of several at once (skip logic resolves the
    /// variables of one dependency level in parallel).
    pub(crate) fn columns_mut(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    /// Look a column up by name, for in-place changes (validation updates cell states).
    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        match self.by_name.get(name) {
            Some(&i) => Some(&mut self.columns[i]),
            None => None,
        }
    }

    /// Add a column; its length must equal the frame's row count and its name must be new.
    pub fn push(&mut self, column: Column) -> Result<(), FrameError> {
        if column.len() != self.n_rows {
            return Err(FrameError::Length {
                name: column.name.clone(),
                got: column.len(),
                expected: self.n_rows,
            });
        }
        if self.by_name.contains_key(&column.name) {
            return Err(FrameError::Duplicate(column.name.clone()));
        }
        self.by_name.insert(column.name.clone(), self.columns.len());
        self.columns.push(column);
        Ok(())
    }

    /// Replace the column of the same name, or add it.
    pub fn set(&mut self, column: Column) -> Result<(), FrameError> {
        if column.len() != self.n_rows {
            return Err(FrameError::Length {
                name: column.name.clone(),
                got: column.len(),
                expected: self.n_rows,
            });
        }
        match self.by_name.get(&column.name) {
            Some(&i) => self.columns[i] = column,
            None => {
                self.by_name.insert(column.name.clone(), self.columns.len());
                self.columns.push(column);
            }
        }
        Ok(())
    }

    /// A new frame with only `rows`, in the given order.
    pub fn take(&self, rows: &[usize]) -> Frame {
        self.take_columns(rows, |_| true)
    }

    /// The given rows of the columns `keep` says to keep (in the frame's column order): a
    /// stage that reads a few variables copies only those. Columns are copied in parallel.
    pub fn take_columns(&self, rows: &[usize], keep: impl Fn(&str) -> bool + Sync) -> Frame {
        let mut out = Frame::new(rows.len());
        out.columns = self
            .columns
            .par_iter()
            .filter(|c| keep(&c.name))
            .map(|c| c.take(rows))
            .collect();
        for (i, c) in out.columns.iter().enumerate() {
            out.by_name.insert(c.name.clone(), i);
        }
        out
    }
}
