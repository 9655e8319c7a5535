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
pub(crate) const NO_BYTE: u8 = u8::MAX;

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

/// Cells of a [`NumValues`] as stored: a reader that goes over many cells matches the storage
/// once and then reads bytes (a skip rule's test on a byte is a lookup in a 256-entry table).
#[derive(Debug, Clone, Copy)]
pub enum StoredValues<'a> {
    /// `f64`s as in [`NumValues::Wide`].
    Wide(&'a [f64]),
    /// Bytes as in [`NumValues::Byte`]; [`byte_value`] gives each one's `f64`.
    Byte(&'a [u8]),
}

impl StoredValues<'_> {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            StoredValues::Wide(v) => v.len(),
            StoredValues::Byte(v) => v.len(),
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of cell `i`; NaN where it has no value or `i` is past the end.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            StoredValues::Wide(v) => v.get(i).copied().unwrap_or(f64::NAN),
            StoredValues::Byte(v) => v.get(i).map_or(f64::NAN, |&b| byte_value(b)),
        }
    }
}

/// The `f64` of a [`NumValues::Byte`] cell ([`NO_BYTE`] is NaN).
#[inline]
pub fn byte_value(b: u8) -> f64 {
    BYTE_VALUE[usize::from(b)]
}

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
        // The bytes are allocated once at their size (collecting into an `Option<Vec<u8>>`
        // would grow the vector by doubling), and given up at the first other number.
        let mut bytes = Vec::with_capacity(values.len());
        for &x in &values {
            match byte_of(x) {
                Some(b) => bytes.push(b),
                None => return NumValues::Wide(values),
            }
        }
        NumValues::Byte(bytes)
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

    /// The cells of `rows` as they are stored, without widening bytes to `f64`s.
    pub fn stored(&self, rows: std::ops::Range<usize>) -> StoredValues<'_> {
        match self {
            NumValues::Wide(v) => StoredValues::Wide(&v[rows]),
            NumValues::Byte(v) => StoredValues::Byte(&v[rows]),
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

    /// The cells as bytes ([`NO_BYTE`] for no value) while the column is stored so: a reader
    /// that has checked a run of cells fits appends them directly.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            NumValues::Byte(bytes) => Some(bytes),
            NumValues::Wide(_) => None,
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

/// Per-cell states of a column: nothing a cell while every cell is a value, else four bits.
///
/// Design variables, weights and most derived indicators have no missing cells; their state is
/// a count. A column with other states (skip logic, missing codes) keeps two states a byte:
/// ten million rows of 40 such items take 200 MB instead of 400 MB. Readers see
/// [`CellState`]s through indexing and [`States::iter`].
#[derive(Debug, Clone)]
pub enum States {
    /// `n` cells, all [`CellState::Value`].
    AllValue(usize),
    /// Cell `i` in the low (even `i`) or high (odd `i`) four bits of byte `i / 2`.
    Packed {
        /// Two states a byte.
        nibbles: Vec<u8>,
        /// Number of cells.
        len: usize,
    },
}

/// The state of every four-bit code, so that a packed cell can be read by reference.
static STATE_OF_CODE: [CellState; 16] = {
    let mut t = [CellState::OtherMissing; 16];
    t[0] = CellState::Value;
    t[1] = CellState::NotAsked;
    t[2] = CellState::NoResponse;
    t[3] = CellState::DontKnow;
    t[4] = CellState::Refused;
    t
};

/// An entry of [`States::overwrite`] that leaves its cell's state as it is (no state has this
/// four-bit code).
pub const KEEP_STATE: u8 = 0xF;

/// What an [`States::AllValue`] cell reads as, and its slices of up to [`ALL_VALUE_ROWS`].
const ALL_VALUE_ROWS: usize = 1 << 15;
static ALL_VALUE: [CellState; ALL_VALUE_ROWS] = [CellState::Value; ALL_VALUE_ROWS];

#[inline]
fn nibble(nibbles: &[u8], i: usize) -> usize {
    usize::from((nibbles[i / 2] >> ((i % 2) * 4)) & 0xF)
}

impl States {
    /// `states`, as a count when every one is a value.
    pub fn compact(states: Vec<CellState>) -> States {
        let mut out = States::AllValue(0);
        for s in states.iter().copied() {
            out.push_within(s, states.len());
        }
        out
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            States::AllValue(n) => *n,
            States::Packed { len, .. } => *len,
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when every cell is a value.
    pub fn all_value(&self) -> bool {
        self.iter().all(|&s| s == CellState::Value)
    }

    /// Every state in order.
    pub fn iter(&self) -> StatesIter<'_> {
        StatesIter {
            states: self,
            next: 0,
        }
    }

    /// The states of `rows`, borrowed where every cell is a value.
    pub fn slice(&self, rows: std::ops::Range<usize>) -> std::borrow::Cow<'_, [CellState]> {
        match self {
            States::AllValue(_) if rows.len() <= ALL_VALUE_ROWS => {
                std::borrow::Cow::Borrowed(&ALL_VALUE[..rows.len()])
            }
            States::AllValue(_) => std::borrow::Cow::Owned(vec![CellState::Value; rows.len()]),
            States::Packed { nibbles, len } => {
                assert!(
                    rows.end <= *len,
                    "rows to {} of a column of {len}",
                    rows.end
                );
                // Two cells a byte, whole bytes at a time between a first and a last odd cell.
                let mut out = vec![CellState::Value; rows.len()];
                let odd_start = usize::from(rows.start % 2 == 1 && !rows.is_empty());
                if odd_start == 1 {
                    out[0] = STATE_OF_CODE[nibble(nibbles, rows.start)];
                }
                let first_pair = rows.start + odd_start;
                let mut pairs = out[odd_start..].chunks_exact_mut(2);
                for (pair, &byte) in (&mut pairs).zip(&nibbles[first_pair / 2..]) {
                    pair[0] = STATE_OF_CODE[usize::from(byte & 0xF)];
                    pair[1] = STATE_OF_CODE[usize::from(byte >> 4)];
                }
                if let [last] = pairs.into_remainder() {
                    *last = STATE_OF_CODE[nibble(nibbles, rows.end - 1)];
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// Appends `s`.
    #[inline]
    pub fn push(&mut self, s: CellState) {
        self.push_within(s, 0);
    }

    /// [`States::push`], with room for `capacity` states if they must be written out now: a
    /// builder knows the column's length, and doubling the states of 10 million rows would
    /// copy them and leave up to twice the room.
    #[inline]
    pub fn push_within(&mut self, s: CellState, capacity: usize) {
        match self {
            States::AllValue(n) if s == CellState::Value => *n += 1,
            States::AllValue(_) => self.write_out(s, capacity),
            States::Packed { nibbles, len } => {
                if len.is_multiple_of(2) {
                    nibbles.push(s as u8);
                } else if let Some(last) = nibbles.last_mut() {
                    *last |= (s as u8) << 4;
                }
                *len += 1;
            }
        }
    }

    /// Appends the states whose codes (`CellState as u8`) are `codes`, with room for
    /// `capacity` states if they must be written out (see [`States::push_within`]).
    pub fn extend_codes(&mut self, codes: &[u8], capacity: usize) {
        if let States::AllValue(n) = self
            && codes.iter().all(|&c| c == CellState::Value as u8)
        {
            *n += codes.len();
            return;
        }
        let mut codes = codes;
        while let Some((&first, rest)) = codes.split_first() {
            // Cell by cell until the packed states end on a whole byte, then two a byte.
            if let States::Packed { nibbles, len } = self
                && len.is_multiple_of(2)
            {
                let pairs = codes.chunks_exact(2);
                let last = pairs.remainder().first().copied();
                nibbles.extend(pairs.map(|pair| pair[0] | (pair[1] << 4)));
                *len += codes.len() - usize::from(last.is_some());
                if let Some(c) = last {
                    self.push_within(STATE_OF_CODE[usize::from(c & 0xF)], capacity);
                }
                return;
            }
            self.push_within(STATE_OF_CODE[usize::from(first & 0xF)], capacity);
            codes = rest;
        }
    }

    /// An all-value column turned into packed states, with `s` appended.
    #[cold]
    fn write_out(&mut self, s: CellState, capacity: usize) {
        let n = self.len();
        let mut nibbles = Vec::with_capacity(capacity.max(n + 1).div_ceil(2));
        nibbles.resize(n.div_ceil(2), 0);
        if n.is_multiple_of(2) {
            nibbles.push(s as u8);
        } else if let Some(last) = nibbles.last_mut() {
            *last |= (s as u8) << 4;
        }
        *self = States::Packed {
            nibbles,
            len: n + 1,
        };
    }

    /// Appends the states of `other`.
    pub fn extend_from(&mut self, other: &States) {
        match (&mut *self, other) {
            (States::AllValue(a), States::AllValue(b)) => *a += b,
            (
                States::Packed { nibbles, len },
                States::Packed {
                    nibbles: more,
                    len: n,
                },
            ) if len.is_multiple_of(2) => {
                nibbles.extend_from_slice(more);
                *len += n;
            }
            // After an odd number of cells: the first new cell fills the high half of the last
            // byte, and each byte after is the high half of one byte of `other` and the low
            // half of the next (pieces of a file read in parallel end at odd rows half the time).
            (
                States::Packed { nibbles, len },
                States::Packed {
                    nibbles: more,
                    len: n,
                },
            ) if *n > 0 => {
                if let (Some(last), Some(&first)) = (nibbles.last_mut(), more.first()) {
                    *last = (*last & 0xF) | (first << 4);
                }
                let added = (n - 1).div_ceil(2);
                let whole = more.windows(2).take(added);
                let taken = whole.len();
                nibbles.extend(whole.map(|w| (w[0] >> 4) | (w[1] << 4)));
                if taken < added
                    && let Some(&end) = more.last()
                {
                    nibbles.push(end >> 4);
                }
                *len += n;
            }
            // Values are code 0: zero bytes, and the high half of an odd last byte is zero.
            (States::Packed { nibbles, len }, States::AllValue(n)) => {
                *len += n;
                nibbles.resize(len.div_ceil(2), 0);
            }
            _ => {
                let capacity = self.len() + other.len();
                for &s in other {
                    self.push_within(s, capacity);
                }
            }
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
            States::Packed { nibbles, .. } => {
                // Two cells a byte, straight into the packed bytes; a count again if every
                // cell taken is a value.
                let code = |r: usize| nibble(nibbles, r) as u8;
                let pairs = rows.chunks_exact(2);
                let last = pairs.remainder().first().map(|&r| code(r));
                let mut taken = Vec::with_capacity(rows.len().div_ceil(2));
                taken.extend(pairs.map(|pair| code(pair[0]) | (code(pair[1]) << 4)));
                taken.extend(last);
                if taken.iter().all(|&b| b == 0) {
                    States::AllValue(rows.len())
                } else {
                    States::Packed {
                        nibbles: taken,
                        len: rows.len(),
                    }
                }
            }
        }
    }

    /// Sets every cell whose entry of `new` is a state code (`CellState as u8`) to that state;
    /// cells whose entry is [`KEEP_STATE`] keep theirs. One pass over the packed bytes, for a
    /// column where many cells change (skip logic), instead of [`States::set`] per cell.
    pub fn overwrite(&mut self, new: &[u8]) {
        assert_eq!(new.len(), self.len(), "one entry per cell");
        if new.iter().all(|&c| c == KEEP_STATE) {
            return;
        }
        if let States::AllValue(n) = *self {
            *self = States::Packed {
                nibbles: vec![0; n.div_ceil(2)],
                len: n,
            };
        }
        let States::Packed { nibbles, .. } = self else {
            return;
        };
        let keep_or = |old: u8, code: u8| if code == KEEP_STATE { old } else { code };
        let (pairs, last) = new.split_at(new.len() - new.len() % 2);
        for (byte, pair) in nibbles.iter_mut().zip(pairs.chunks_exact(2)) {
            let low = keep_or(*byte & 0xF, pair[0]);
            let high = keep_or(*byte >> 4, pair[1]);
            *byte = low | (high << 4);
        }
        if let (Some(&code), Some(byte)) = (last.first(), nibbles.last_mut()) {
            *byte = (*byte & 0xF0) | keep_or(*byte & 0xF, code);
        }
    }

    /// Sets the state of cell `i`.
    #[inline]
    pub fn set(&mut self, i: usize, s: CellState) {
        assert!(i < self.len(), "row {i} of a column of {}", self.len());
        if let States::AllValue(n) = *self {
            if s == CellState::Value {
                return;
            }
            *self = States::Packed {
                nibbles: vec![0; n.div_ceil(2)],
                len: n,
            };
        }
        if let States::Packed { nibbles, .. } = self {
            let shift = (i % 2) * 4;
            nibbles[i / 2] = (nibbles[i / 2] & !(0xF << shift)) | ((s as u8) << shift);
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
            States::Packed { nibbles, len } => {
                assert!(i < *len, "row {i} of a column of {len}");
                &STATE_OF_CODE[nibble(nibbles, i)]
            }
        }
    }
}

/// The states of a column in order (see [`States::iter`]).
#[derive(Debug, Clone)]
pub struct StatesIter<'a> {
    states: &'a States,
    next: usize,
}

impl<'a> Iterator for StatesIter<'a> {
    type Item = &'a CellState;
    #[inline]
    fn next(&mut self) -> Option<&'a CellState> {
        let i = self.next;
        let s = match self.states {
            States::AllValue(n) => (i < *n).then_some(&CellState::Value),
            States::Packed { nibbles, len } => {
                (i < *len).then(|| &STATE_OF_CODE[nibble(nibbles, i)])
            }
        };
        self.next += usize::from(s.is_some());
        s
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.states.len() - self.next;
        (left, Some(left))
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
        let mut out = States::AllValue(0);
        for s in states {
            out.push(s);
        }
        out
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
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(x as i64));
    } else {
        let _ = write!(out, "{x}");
    }
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

    /// Drop every column `keep` does not keep (their memory is freed), keeping the order of
    /// the rest: a run frees the answers once the estimation has its copy.
    pub fn retain_columns(&mut self, keep: impl Fn(&str) -> bool) {
        self.columns.retain(|c| keep(&c.name));
        self.columns.shrink_to_fit();
        self.by_name = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [CellState; 6] = [
        CellState::Value,
        CellState::NotAsked,
        CellState::NoResponse,
        CellState::DontKnow,
        CellState::Refused,
        CellState::OtherMissing,
    ];

    #[test]
    fn numbers_are_written_as_whole_numbers_where_they_are_and_shortest_otherwise() {
        for (x, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (7.0, "7"),
            (-42.0, "-42"),
            (999_999_999_999_999.0, "999999999999999"),
            (1e15, "1000000000000000"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(format_number(x), text, "{x:?}");
        }
        // Appended, not replaced.
        let mut out = String::from("id=");
        write_number(12.0, &mut out);
        assert_eq!(out, "id=12");
    }

    #[test]
    fn byte_values_read_as_the_numbers_and_widen_on_any_other_number() {
        let mut v = NumValues::with_capacity(4);
        for x in [0.0, 254.0, f64::NAN, 7.0] {
            v.push(x);
        }
        assert!(matches!(v, NumValues::Byte(_)));
        assert_eq!((v[0], v[1], v[3]), (0.0, 254.0, 7.0));
        assert!(v[2].is_nan());
        for x in [255.0, 0.5, -0.0] {
            let mut w = v.clone();
            w.push(x);
            assert!(matches!(w, NumValues::Wide(_)), "{x}");
            assert_eq!(w[4].to_bits(), x.to_bits());
            assert_eq!((w[0], w[1], w[3]), (0.0, 254.0, 7.0));
            assert!(w[2].is_nan());
        }
        let mut s = v.clone();
        s.set(0, 1e9);
        assert_eq!(s.to_vec()[..2], [1e9, 254.0]);
        assert_eq!(v.take(&[3, 1]).to_vec(), vec![7.0, 254.0]);
    }

    #[test]
    fn compact_keeps_every_value_bit_for_bit() {
        let values = vec![3.0, -0.0, 12.0];
        let c = NumValues::compact(values.clone());
        assert!(matches!(c, NumValues::Wide(_)));
        assert!(
            c.iter()
                .zip(&values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert!(matches!(
            NumValues::compact(vec![1.0, f64::NAN]),
            NumValues::Byte(_)
        ));
        let mut joined = NumValues::compact(vec![1.0, 2.0]);
        joined.extend_from(&NumValues::compact(vec![1000.0]));
        assert_eq!(joined, vec![1.0, 2.0, 1000.0]);
    }

    #[test]
    fn packed_states_read_back_as_written_at_every_position() {
        // Every state at an even and an odd position, after a run of values.
        let written: Vec<CellState> = (0..40).map(|i| STATES[(i * 7 + i / 6) % 6]).collect();
        let mut states = States::AllValue(0);
        for &s in &[CellState::Value; 3] {
            states.push(s);
        }
        for &s in &written {
            states.push_within(s, 43);
        }
        let expected: Vec<CellState> = [CellState::Value; 3].into_iter().chain(written).collect();
        assert_eq!(states, expected);
        assert_eq!(states.iter().len(), expected.len());
        // Slices from and to every even and odd row, empty ones too, read two cells a byte.
        for start in 0..=expected.len() {
            for end in start..=expected.len() {
                assert_eq!(
                    states.slice(start..end).as_ref(),
                    &expected[start..end],
                    "{start}..{end}"
                );
            }
        }
        let rows = [42, 0, 17, 17, 4];
        let taken: Vec<CellState> = rows.iter().map(|&r| expected[r]).collect();
        assert_eq!(states.take(&rows), taken);
        let even = [17, 4, 42, 3];
        let taken: Vec<CellState> = even.iter().map(|&r| expected[r]).collect();
        assert_eq!(states.take(&even), taken);
        // Rows whose every cell is a value are a count again.
        assert!(matches!(states.take(&[0, 2, 1]), States::AllValue(3)));
        let mut set = states.clone();
        set.set(4, CellState::Refused);
        set.set(5, CellState::Value);
        assert_eq!(
            (set[3], set[4], set[5], set[6]),
            (
                expected[3],
                CellState::Refused,
                CellState::Value,
                expected[6]
            )
        );
    }

    #[test]
    fn states_extended_by_codes_or_overwritten_match_cell_by_cell() {
        use CellState::{NoResponse, NotAsked, Refused, Value};
        let runs: [&[CellState]; 5] = [
            &[Value, Value, Value],
            &[Value, NotAsked, Refused],
            &[NoResponse],
            &[Value, Value],
            &[NotAsked, Value, Value, NoResponse],
        ];
        for skip in 0..runs.len() {
            let (mut by_codes, mut by_cell) = (States::AllValue(0), States::AllValue(0));
            for run in runs.iter().cycle().skip(skip).take(runs.len()) {
                let codes: Vec<u8> = run.iter().map(|&s| s as u8).collect();
                by_codes.extend_codes(&codes, 0);
                for &s in *run {
                    by_cell.push(s);
                }
                assert_eq!(by_codes, by_cell, "runs from {skip}");
            }
            // Every third cell set to NoResponse, the others kept.
            let new: Vec<u8> = (0..by_cell.len())
                .map(|i| {
                    if i % 3 == 0 {
                        NoResponse as u8
                    } else {
                        KEEP_STATE
                    }
                })
                .collect();
            by_codes.overwrite(&new);
            for i in (0..by_cell.len()).step_by(3) {
                by_cell.set(i, NoResponse);
            }
            assert_eq!(by_codes, by_cell, "overwritten, runs from {skip}");
        }
        let mut untouched = States::AllValue(3);
        untouched.overwrite(&[KEEP_STATE; 3]);
        assert!(matches!(untouched, States::AllValue(3)));
    }

    #[test]
    fn states_stay_a_count_until_a_cell_is_not_a_value() {
        let mut s = States::compact(vec![CellState::Value; 5]);
        assert!(matches!(s, States::AllValue(5)));
        assert_eq!(s.slice(1..4).len(), 3);
        s.set(2, CellState::Value);
        assert!(matches!(s, States::AllValue(5)));
        s.set(2, CellState::DontKnow);
        assert_eq!(
            s,
            vec![
                CellState::Value,
                CellState::Value,
                CellState::DontKnow,
                CellState::Value,
                CellState::Value
            ]
        );
        // Appending after an odd or an even length gives the same states.
        for head in [3, 4] {
            let mut a = States::compact(vec![CellState::NotAsked; head]);
            a.extend_from(&States::compact(vec![CellState::Refused, CellState::Value]));
            a.extend_from(&States::AllValue(2));
            let mut expected = vec![CellState::NotAsked; head];
            expected.extend([
                CellState::Refused,
                CellState::Value,
                CellState::Value,
                CellState::Value,
            ]);
            assert_eq!(a, expected);
        }
    }

    #[test]
    fn states_appended_at_any_parity_match_cell_by_cell() {
        // Every head and tail length up to 7, each as a count (all values) or packed, the
        // packed ones over every state.
        let make = |len: usize, seed: usize, packed: bool| -> Vec<CellState> {
            (0..len)
                .map(|i| {
                    if packed {
                        STATES[(i * 5 + seed) % STATES.len()]
                    } else {
                        CellState::Value
                    }
                })
                .collect()
        };
        for head_len in 0..8 {
            for tail_len in 0..8 {
                for (head_packed, tail_packed) in
                    [(false, false), (false, true), (true, false), (true, true)]
                {
                    let head = make(head_len, head_len, head_packed);
                    let tail = make(tail_len, 3 + tail_len, tail_packed);
                    let mut joined = States::compact(head.clone());
                    joined.extend_from(&States::compact(tail.clone()));
                    let mut each = States::compact(head.clone());
                    for &s in &tail {
                        each.push(s);
                    }
                    let expected: Vec<CellState> = head.iter().chain(&tail).copied().collect();
                    let case = format!("{head:?} + {tail:?}");
                    assert_eq!(joined, expected, "{case}");
                    assert_eq!(joined.len(), expected.len(), "{case}");
                    assert_eq!(
                        matches!(joined, States::AllValue(_)),
                        matches!(each, States::AllValue(_)),
                        "{case}: the same storage"
                    );
                    if let (States::Packed { nibbles: a, .. }, States::Packed { nibbles: b, .. }) =
                        (&joined, &each)
                    {
                        assert_eq!(a, b, "{case}: the same bytes");
                    }
                }
            }
        }
    }

    #[test]
    fn retained_columns_keep_their_order_and_lookup() {
        let mut frame = Frame::new(3);
        for (name, x) in [("id", 1.0), ("item", 2.0), ("psu", 3.0), ("other", 4.0)] {
            frame
                .push(Column {
                    name: name.into(),
                    data: ColumnData::Num(vec![x; 3].into()),
                    state: States::AllValue(3),
                })
                .expect("column");
        }
        frame.retain_columns(|name| name == "psu" || name == "id");
        let names: Vec<&str> = frame.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "psu"]);
        assert!(frame.column("item").is_none() && frame.column("other").is_none());
        let psu = frame.column("psu").expect("psu kept");
        assert_eq!(psu.data, ColumnData::Num(vec![3.0; 3].into()));
        assert_eq!(frame.n_rows(), 3);
    }
}
