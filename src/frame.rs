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
    Num(NumValues),
    /// Text, dictionary-encoded: `codes[i]` indexes `levels`. Levels are in order of first
    /// appearance in the input; entries whose state is not `Value` have code `u32::MAX`.
    Text {
        /// Per-row index into `levels`.
        codes: Vec<u32>,
        /// Distinct text values.
        levels: Vec<String>,
    },
}

/// Values of a numeric column, stored in one byte a cell where they allow it.
///
/// Most survey items are categorical or yes/no codes: whole numbers in 0..=254. Such a column
/// is kept as bytes (byte 255 stands for "no value", NaN), an eighth of the memory of `f64`s;
/// 10 million rows of 46 items fit in a few GB (see `docs/performance.md`). Any other number
/// turns the column into `f64`s. Readers see `f64`s either way, through indexing or
/// [`NumValues::get`], so the two storages give identical results.
#[derive(Debug, Clone)]
pub enum NumValues {
    /// One `f64` per cell.
    Wide(Vec<f64>),
    /// One byte per cell: the whole number, or [`NO_BYTE`] for no value (NaN).
    Byte(Vec<u8>),
}

/// The byte of a [`NumValues::Byte`] cell without a value.
const NO_BYTE: u8 = u8::MAX;

/// The `f64` of every byte, so that a byte cell can be read by reference (`v[r]`).
static BYTE_VALUE: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut k = 0;
    while k < 255 {
        t[k] = k as f64;
        k += 1;
    }
    t[255] = f64::NAN;
    t
};

/// The byte of `x` when a byte column can hold it exactly (NaN is [`NO_BYTE`]; -0.0 is not
/// held, so that every value keeps its bits).
#[inline]
fn byte_of(x: f64) -> Option<u8> {
    if x.is_nan() {
        return Some(NO_BYTE);
    }
    let k = x as usize;
    (k < 255 && (k as f64).to_bits() == x.to_bits()).then_some(k as u8)
}

impl NumValues {
    /// An empty column with room for `capacity` cells, stored as bytes until a value needs more.
    pub fn with_capacity(capacity: usize) -> NumValues {
        NumValues::Byte(Vec::with_capacity(capacity))
    }

    /// `values` in the smallest storage that holds them exactly.
    pub fn compact(values: Vec<f64>) -> NumValues {
        let bytes: Option<Vec<u8>> = values.iter().map(|&x| byte_of(x)).collect();
        match bytes {
            Some(b) => NumValues::Byte(b),
            None => NumValues::Wide(values),
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            NumValues::Wide(v) => v.len(),
            NumValues::Byte(v) => v.len(),
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of cell `i` (NaN where the cell has no value).
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            NumValues::Wide(v) => v[i],
            NumValues::Byte(v) => BYTE_VALUE[v[i] as usize],
        }
    }

    /// Every value in order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// The values as `f64`s, borrowed when they are stored so.
    pub fn as_f64(&self, rows: std::ops::Range<usize>) -> std::borrow::Cow<'_, [f64]> {
        match self {
            NumValues::Wide(v) => std::borrow::Cow::Borrowed(&v[rows]),
            NumValues::Byte(v) => {
                std::borrow::Cow::Owned(v[rows].iter().map(|&b| BYTE_VALUE[b as usize]).collect())
            }
        }
    }

    /// The values as a new `Vec<f64>`.
    pub fn to_vec(&self) -> Vec<f64> {
        match self {
            NumValues::Wide(v) => v.clone(),
            NumValues::Byte(_) => self.iter().collect(),
        }
    }

    /// Sets cell `i` to `x`, widening the storage if a byte cannot hold it.
    pub fn set(&mut self, i: usize, x: f64) {
        if let NumValues::Byte(v) = self {
            match byte_of(x) {
                Some(b) => {
                    v[i] = b;
                    return;
                }
                None => self.widen(),
            }
        }
        if let NumValues::Wide(v) = self {
            v[i] = x;
        }
    }

    /// Appends `x`, widening the storage if a byte cannot hold it.
    #[inline]
    pub fn push(&mut self, x: f64) {
        match self {
            NumValues::Byte(v) => match byte_of(x) {
                Some(b) => v.push(b),
                None => {
                    self.widen();
                    self.push(x);
                }
            },
            NumValues::Wide(v) => v.push(x),
        }
    }

    /// Appends the cells of `other`.
    pub fn extend_from(&mut self, other: &NumValues) {
        match (&mut *self, other) {
            (NumValues::Byte(a), NumValues::Byte(b)) => a.extend_from_slice(b),
            (NumValues::Wide(a), NumValues::Wide(b)) => a.extend_from_slice(b),
            (NumValues::Wide(a), NumValues::Byte(_)) => a.extend(other.iter()),
            (NumValues::Byte(_), NumValues::Wide(_)) => {
                self.widen();
                self.extend_from(other);
            }
        }
    }

    /// Room for `additional` more cells.
    pub fn reserve_exact(&mut self, additional: usize) {
        match self {
            NumValues::Wide(v) => v.reserve_exact(additional),
            NumValues::Byte(v) => v.reserve_exact(additional),
        }
    }

    /// [`NumValues::reserve_exact`], an allocation the system refuses being an error.
    pub fn try_reserve_exact(
        &mut self,
        additional: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        match self {
            NumValues::Wide(v) => v.try_reserve_exact(additional),
            NumValues::Byte(v) => v.try_reserve_exact(additional),
        }
    }

    /// The last value, if any.
    pub fn last(&self) -> Option<f64> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    /// Only `rows`, in the given order, in the same storage.
    pub fn take(&self, rows: &[usize]) -> NumValues {
        match self {
            NumValues::Wide(v) => NumValues::Wide(rows.iter().map(|&r| v[r]).collect()),
            NumValues::Byte(v) => NumValues::Byte(rows.iter().map(|&r| v[r]).collect()),
        }
    }

    /// Switches to `f64` storage, keeping the room reserved for cells still to come.
    fn widen(&mut self) {
        if let NumValues::Byte(v) = self {
            let mut wide = Vec::with_capacity(v.capacity());
            wide.extend(v.iter().map(|&b| BYTE_VALUE[b as usize]));
            *self = NumValues::Wide(wide);
        }
    }
}

impl std::ops::Index<usize> for NumValues {
    type Output = f64;
    #[inline]
    fn index(&self, i: usize) -> &f64 {
        match self {
            NumValues::Wide(v) => &v[i],
            NumValues::Byte(v) => &BYTE_VALUE[v[i] as usize],
        }
    }
}

impl FromIterator<f64> for NumValues {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> NumValues {
        NumValues::compact(values.into_iter().collect())
    }
}

impl From<Vec<f64>> for NumValues {
    fn from(values: Vec<f64>) -> NumValues {
        NumValues::compact(values)
    }
}

/// Equal when the values are (as `f64`s: NaN equals nothing), whatever the storage.
impl PartialEq for NumValues {
    fn eq(&self, other: &NumValues) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl PartialEq<Vec<f64>> for NumValues {
    fn eq(&self, other: &Vec<f64>) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, &b)| a == b)
    }
}

/// Per-cell states of a column, without a byte a cell while every cell is a value.
///
/// Design variables, weights and most derived indicators have no missing cells; their state is
/// a count. The first cell of another state writes out the states cell by cell.
#[derive(Debug, Clone)]
pub enum States {
    /// `n` cells, all [`CellState::Value`].
    AllValue(usize),
    /// One state per cell.
    Cells(Vec<CellState>),
}

/// What an [`States::AllValue`] cell reads as, and its slices of up to [`ALL_VALUE_ROWS`].
const ALL_VALUE_ROWS: usize = 1 << 15;
static ALL_VALUE: [CellState; ALL_VALUE_ROWS] = [CellState::Value; ALL_VALUE_ROWS];

impl States {
    /// `states`, as a count when every one is a value.
    pub fn compact(states: Vec<CellState>) -> States {
        if states.iter().all(|&s| s == CellState::Value) {
            States::AllValue(states.len())
        } else {
            States::Cells(states)
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            States::AllValue(n) => *n,
            States::Cells(v) => v.len(),
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when every cell is a value.
    pub fn all_value(&self) -> bool {
        match self {
            States::AllValue(_) => true,
            States::Cells(v) => v.iter().all(|&s| s == CellState::Value),
        }
    }

    /// Every state in order.
    pub fn iter(&self) -> StatesIter<'_> {
        match self {
            States::AllValue(n) => StatesIter::AllValue(std::iter::repeat_n(&CellState::Value, *n)),
            States::Cells(v) => StatesIter::Cells(v.iter()),
        }
    }

    /// The states of `rows`, borrowed where they are stored or short enough.
    pub fn slice(&self, rows: std::ops::Range<usize>) -> std::borrow::Cow<'_, [CellState]> {
        match self {
            States::Cells(v) => std::borrow::Cow::Borrowed(&v[rows]),
            States::AllValue(_) if rows.len() <= ALL_VALUE_ROWS => {
                std::borrow::Cow::Borrowed(&ALL_VALUE[..rows.len()])
            }
            States::AllValue(_) => std::borrow::Cow::Owned(vec![CellState::Value; rows.len()]),
        }
    }

    /// Appends `s`.
    #[inline]
    pub fn push(&mut self, s: CellState) {
        match self {
            States::AllValue(n) if s == CellState::Value => *n += 1,
            States::AllValue(_) => {
                self.cells().push(s);
            }
            States::Cells(v) => v.push(s),
        }
    }

    /// [`States::push`], with room for `capacity` states if they must be written out now: a
    /// builder knows the column's length, and doubling a `Vec` of 10 million states would
    /// copy them and leave up to twice the room.
    #[inline]
    pub fn push_within(&mut self, s: CellState, capacity: usize) {
        match self {
            States::AllValue(n) if s == CellState::Value => *n += 1,
            States::AllValue(n) => {
                let mut cells = Vec::with_capacity(capacity.max(*n + 1));
                cells.resize(*n, CellState::Value);
                cells.push(s);
                *self = States::Cells(cells);
            }
            States::Cells(v) => v.push(s),
        }
    }

    /// Appends the states of `other`.
    pub fn extend_from(&mut self, other: &States) {
        match (&mut *self, other) {
            (States::AllValue(a), States::AllValue(b)) => *a += b,
            (States::Cells(a), States::AllValue(b)) => {
                a.extend(std::iter::repeat_n(CellState::Value, *b))
            }
            (_, States::Cells(b)) => self.cells().extend_from_slice(b),
        }
    }

    /// The last state, if any.
    pub fn last(&self) -> Option<CellState> {
        self.len().checked_sub(1).map(|i| self[i])
    }

    /// Only `rows`, in the given order.
    pub fn take(&self, rows: &[usize]) -> States {
        match self {
            States::AllValue(_) => States::AllValue(rows.len()),
            States::Cells(v) => States::Cells(rows.iter().map(|&r| v[r]).collect()),
        }
    }

    /// The states written out cell by cell, for changing them.
    pub fn cells(&mut self) -> &mut Vec<CellState> {
        if let States::AllValue(n) = *self {
            *self = States::Cells(vec![CellState::Value; n]);
        }
        match self {
            States::Cells(v) => v,
            States::AllValue(_) => unreachable!("written out just above"),
        }
    }
}

impl std::ops::Index<usize> for States {
    type Output = CellState;
    #[inline]
    fn index(&self, i: usize) -> &CellState {
        match self {
            States::AllValue(n) => {
                assert!(i < *n, "row {i} of a column of {n}");
                &CellState::Value
            }
            States::Cells(v) => &v[i],
        }
    }
}

impl std::ops::IndexMut<usize> for States {
    fn index_mut(&mut self, i: usize) -> &mut CellState {
        &mut self.cells()[i]
    }
}

/// The states of a column in order (see [`States::iter`]).
#[derive(Debug, Clone)]
pub enum StatesIter<'a> {
    /// Of an [`States::AllValue`] column.
    AllValue(std::iter::RepeatN<&'a CellState>),
    /// Of a [`States::Cells`] column.
    Cells(std::slice::Iter<'a, CellState>),
}

impl<'a> Iterator for StatesIter<'a> {
    type Item = &'a CellState;
    #[inline]
    fn next(&mut self) -> Option<&'a CellState> {
        match self {
            StatesIter::AllValue(it) => it.next(),
            StatesIter::Cells(it) => it.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            StatesIter::AllValue(it) => it.size_hint(),
            StatesIter::Cells(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for StatesIter<'_> {}

impl<'a> IntoIterator for &'a States {
    type Item = &'a CellState;
    type IntoIter = StatesIter<'a>;
    fn into_iter(self) -> StatesIter<'a> {
        self.iter()
    }
}

impl FromIterator<CellState> for States {
    fn from_iter<I: IntoIterator<Item = CellState>>(states: I) -> States {
        States::compact(states.into_iter().collect())
    }
}

impl From<Vec<CellState>> for States {
    fn from(states: Vec<CellState>) -> States {
        States::compact(states)
    }
}

/// Equal when the states are, whatever the storage.
impl PartialEq for States {
    fn eq(&self, other: &States) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<const N: usize> PartialEq<[CellState; N]> for States {
    fn eq(&self, other: &[CellState; N]) -> bool {
        self.len() == N && self.iter().eq(other.iter())
    }
}

impl PartialEq<Vec<CellState>> for States {
    fn eq(&self, other: &Vec<CellState>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// One variable: its values and per-cell state.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Variable name, as in the questionnaire and the data file header.
    pub name: String,
    /// Values.
    pub data: ColumnData,
    /// Per-row state; same length as the values.
    pub state: States,
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
            ColumnData::Num(v) => ColumnData::Num(v.take(rows)),
            ColumnData::Text { codes, levels } => ColumnData::Text {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
            },
        };
        Column {
            name: self.name.clone(),
            data,
            state: self.state.take(rows),
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
