//! Typed column builders: one per loaded variable, fed cell by cell from CSV text or Arrow
//! arrays, classifying each cell (value, blank, missing code, invalid) as it arrives.

use std::collections::HashMap;

use crate::frame::{CellState, Column, ColumnData, NumValues, States, format_number};
use crate::questionnaire::{MissingMeaning, VarType, Variable};

/// What went wrong with one cell; turned into a finding by the caller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CellProblem {
    NotANumber,
    NotInteger,
    InvalidCode,
    OutOfRange {
        low: f64,
        high: f64,
    },
    /// A workbook cell holding an error value (`#N/A`); `cell` as Excel names it (`Sheet1!C5`).
    /// (Boxed: an entry stays the size the two bounds make it.)
    ErrorCell {
        cell: Box<str>,
    },
}

/// The cell problems a reader found: row, column, value as written and problem. The values
/// share one text buffer and the columns one table of names, so a problem costs a 48-byte
/// entry and its value's bytes, not two heap strings (a file where most cells are invalid has
/// tens of millions of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CellProblems {
    columns: Vec<String>,
    entries: Vec<ProblemEntry>,
    values: String,
}

#[derive(Debug, Clone, PartialEq)]
struct ProblemEntry {
    row: usize,
    /// End of the value in `values` (it starts where the previous entry's ends).
    value_end: usize,
    column: u32,
    problem: CellProblem,
}

impl CellProblems {
    fn column_id(&mut self, column: &str) -> u32 {
        // Problems come column after column or row after row over few columns: the last
        // entry's column first, then the table.
        if let Some(last) = self.entries.last()
            && self.columns[last.column as usize] == column
        {
            return last.column;
        }
        match self.columns.iter().position(|c| c == column) {
            Some(k) => k as u32,
            None => {
                self.columns.push(column.to_string());
                (self.columns.len() - 1) as u32
            }
        }
    }

    pub(crate) fn push(&mut self, row: usize, column: &str, value: &str, problem: CellProblem) {
        let column = self.column_id(column);
        self.values.push_str(value);
        self.entries.push(ProblemEntry {
            row,
            value_end: self.values.len(),
            column,
            problem,
        });
    }

    /// Append `other`'s problems, their rows moved down by `row_offset`.
    pub(crate) fn append(&mut self, other: &CellProblems, row_offset: usize) {
        for (row, column, value, problem) in other.iter() {
            self.push(row + row_offset, column, value, problem.clone());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// (row, column, value, problem), in the order they were pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &str, &str, &CellProblem)> {
        let mut start = 0;
        self.entries.iter().map(move |e| {
            let value = &self.values[start..e.value_end];
            start = e.value_end;
            (
                e.row,
                self.columns[e.column as usize].as_str(),
                value,
                &e.problem,
            )
        })
    }
}

/// How the values of a column are checked.
#[derive(Debug, Clone)]
pub(crate) struct CellRules {
    pub numeric: bool,
    pub integer: bool,
    /// Valid codes as text (text storage) and as numbers (numeric storage); empty = any.
    pub codes_text: Vec<String>,
    pub codes_num: Vec<f64>,
    pub missing_text: Vec<(String, CellState)>,
    pub missing_num: Vec<(f64, CellState)>,
    /// Declared missing ranges (low, high, state), checked after `missing_num`.
    pub missing_ranges: Vec<(f64, f64, CellState)>,
    pub range: Option<(f64, f64)>,
    /// Texts that mean "no value" in a numeric column (`NA` from R, `.` from Stata exports),
    /// read as blank cells. A missing code the questionnaire declares with the same text wins.
    pub na: Vec<String>,
    /// The valid codes as a bitset when they are all whole numbers in 0..256 (categorical
    /// questions), so a cell is checked with one lookup instead of a scan of the code list.
    pub code_bits: Option<[u64; 4]>,
    /// Numbers are written with a decimal comma (`1,5`): see [`parse_number`].
    pub decimal_comma: bool,
    /// The outcome of every whole number in 0..256 (missing code, value or problem), so that
    /// the usual cell of a categorical or count column is classified by one lookup.
    small: Vec<Outcome>,
}

/// How a numeric cell is classified: kept as a value, a declared missing code, or a problem.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Value,
    Missing(CellState),
    Problem(CellProblem),
}

/// `codes` as a bitset of 0..256, if every code is a whole number in that range.
fn small_code_bits(codes: &[f64]) -> Option<[u64; 4]> {
    if codes.is_empty() {
        return None;
    }
    let mut bits = [0u64; 4];
    for &c in codes {
        if !((0.0..256.0).contains(&c) && c.fract() == 0.0) {
            return None;
        }
        let k = c as usize;
        bits[k / 64] |= 1 << (k % 64);
    }
    Some(bits)
}

fn state_of(meaning: MissingMeaning) -> CellState {
    match meaning {
        MissingMeaning::DontKnow => CellState::DontKnow,
        MissingMeaning::Refused => CellState::Refused,
        MissingMeaning::NotApplicable => CellState::NotAsked,
        MissingMeaning::NoResponse => CellState::NoResponse,
        MissingMeaning::Other => CellState::OtherMissing,
    }
}

impl CellRules {
    pub(crate) fn from_variable(v: &Variable) -> CellRules {
        let numeric = v.numeric_storage;
        let mut rules = CellRules {
            numeric,
            integer: v.var_type == VarType::Integer,
            codes_text: v.codes.iter().map(|c| c.code.clone()).collect(),
            codes_num: if numeric {
                v.codes
                    .iter()
                    .filter_map(|c| c.code.trim().parse::<f64>().ok())
                    .collect()
            } else {
                Vec::new()
            },
            missing_text: v
                .missing
                .iter()
                .map(|m| (m.code.clone(), state_of(m.meaning)))
                .collect(),
            missing_num: if numeric {
                v.missing
                    .iter()
                    .filter_map(|m| {
                        m.code
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .map(|x| (x, state_of(m.meaning)))
                    })
                    .collect()
            } else {
                Vec::new()
            },
            missing_ranges: v
                .missing_ranges
                .iter()
                .map(|r| (r.low, r.high, state_of(r.meaning)))
                .collect(),
            range: v.range,
            na: Vec::new(),
            code_bits: None,
            decimal_comma: false,
            small: Vec::new(),
        };
        rules.code_bits = small_code_bits(&rules.codes_num);
        rules.small = (0..256)
            .map(|k| rules.classify(f64::from(k), true))
            .collect();
        rules
    }

    /// The outcome of a non-null number: looked up for a whole number below 255, classified
    /// otherwise (-0.0 too, which compares equal to 0 in every check).
    fn outcome_of(&self, x: f64, whole: bool) -> std::borrow::Cow<'_, Outcome> {
        match x.small_index() {
            k if k < 255 => std::borrow::Cow::Borrowed(&self.small[k]),
            _ => std::borrow::Cow::Owned(self.classify(x, whole)),
        }
    }

    /// The outcome of a non-null number; `whole` says it cannot have a fraction. Checks in the
    /// same order as [`ColumnBuilder::push_num`].
    fn classify(&self, x: f64, whole: bool) -> Outcome {
        if let Some(&(_, st)) = self.missing_num.iter().find(|(c, _)| *c == x) {
            return Outcome::Missing(st);
        }
        if let Some(&(_, _, st)) = self.missing_ranges.iter().find(|r| r.0 <= x && x <= r.1) {
            return Outcome::Missing(st);
        }
        if !x.is_finite() {
            Outcome::Problem(CellProblem::NotANumber)
        } else if !self.code_ok(x) {
            Outcome::Problem(CellProblem::InvalidCode)
        } else if !whole && self.integer && x.fract() != 0.0 {
            Outcome::Problem(CellProblem::NotInteger)
        } else if let Some((low, high)) = self.range.filter(|&(l, h)| x < l || x > h) {
            Outcome::Problem(CellProblem::OutOfRange { low, high })
        } else {
            Outcome::Value
        }
    }

    /// True when `x` is one of the declared codes (or any value is allowed).
    #[inline]
    fn code_ok(&self, x: f64) -> bool {
        match &self.code_bits {
            // Equal to a whole code in 0..256 exactly when it is that whole number.
            Some(bits) => {
                (0.0..256.0).contains(&x) && x.fract() == 0.0 && {
                    let k = x as usize;
                    bits[k / 64] >> (k % 64) & 1 == 1
                }
            }
            None => self.codes_num.is_empty() || self.codes_num.contains(&x),
        }
    }

    /// The same rules, reading the texts `na` in a numeric column as blank cells.
    pub(crate) fn with_na(mut self, na: &[String]) -> CellRules {
        self.na = na.to_vec();
        self
    }

    /// The same rules, reading numbers written with a decimal comma.
    pub(crate) fn with_decimal_comma(mut self, decimal_comma: bool) -> CellRules {
        self.decimal_comma = decimal_comma;
        self
    }

    /// Rules for a column the questionnaire does not declare: any number, or any text.
    pub(crate) fn free(numeric: bool) -> CellRules {
        let mut rules = CellRules {
            numeric,
            integer: false,
            codes_text: Vec::new(),
            codes_num: Vec::new(),
            missing_text: Vec::new(),
            missing_num: Vec::new(),
            missing_ranges: Vec::new(),
            range: None,
            na: Vec::new(),
            code_bits: None,
            decimal_comma: false,
            small: Vec::new(),
        };
        rules.small = (0..256)
            .map(|k| rules.classify(f64::from(k), true))
            .collect();
        rules
    }
}

/// Accumulates one column.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    pub name: String,
    rules: CellRules,
    /// [`small_cell_table`] of the rules.
    small_cells: [u16; 256],
    /// Numbers, in one byte a cell while they allow it (see [`NumValues`]).
    values: NumValues,
    codes: Vec<u32>,
    levels: Vec<String>,
    level_index: HashMap<String, u32>,
    /// States, without a byte a cell while every cell is a value.
    pub state: States,
    /// True where the cell was empty in the input.
    pub blank: Vec<bool>,
}

/// A number type of a file's numeric column (an Arrow primitive type).
pub(crate) trait FileNumber: Copy {
    fn to_f64(self) -> f64;
    /// The number itself when it is a whole number below 255 that a byte column holds
    /// exactly (not -0.0), else 255: an index into a table of the outcomes of 0..255.
    fn small_index(self) -> usize;
}

macro_rules! whole_file_number {
    ($($t:ty),*) => {$(
        impl FileNumber for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn small_index(self) -> usize {
                // A negative number, sign-extended and read unsigned, is above 255.
                (self as i128 as u128).min(255) as usize
            }
        }
    )*};
}
whole_file_number!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_file_number {
    ($($t:ty),*) => {$(
        impl FileNumber for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            fn small_index(self) -> usize {
                let x = f64::from(self);
                // `as usize` saturates (NaN to 0): whole numbers with their own bits (not
                // -0.0) are those that round-trip.
                let k = (x as usize).min(255);
                if (k as f64).to_bits() == x.to_bits() { k } else { 255 }
            }
        }
    )*};
}
float_file_number!(f32, f64);

impl ColumnBuilder {
    pub(crate) fn new(name: &str, rules: CellRules, capacity: usize) -> ColumnBuilder {
        ColumnBuilder {
            name: name.to_string(),
            small_cells: small_cell_table(&rules.small),
            rules,
            values: NumValues::with_capacity(capacity),
            codes: Vec::new(),
            levels: Vec::new(),
            level_index: HashMap::new(),
            state: States::AllValue(0),
            blank: Vec::with_capacity(capacity),
        }
    }

    /// An empty column with the same name and rules, room for `capacity` cells: the builder
    /// of one piece of a file read in parallel ([`ColumnBuilder::concat`] joins the pieces).
    pub(crate) fn empty_like(&self, capacity: usize) -> ColumnBuilder {
        let mut b = ColumnBuilder::new(&self.name, self.rules.clone(), 0);
        b.reserve(capacity);
        b
    }

    /// Append the next piece of the column (cells that follow in the file): text levels keep
    /// their order of first appearance in the file, so the column does not depend on where the
    /// pieces were cut.
    pub(crate) fn append(&mut self, piece: ColumnBuilder) {
        if self.rules.numeric {
            self.values.extend_from(&piece.values);
        } else {
            let remap: Vec<u32> = piece
                .levels
                .into_iter()
                .map(|level| match self.level_index.get(&level) {
                    Some(&c) => c,
                    None => {
                        let c = self.levels.len() as u32;
                        self.level_index.insert(level.clone(), c);
                        self.levels.push(level);
                        c
                    }
                })
                .collect();
            self.codes.extend(
                piece
                    .codes
                    .iter()
                    .map(|&c| remap.get(c as usize).copied().unwrap_or(u32::MAX)),
            );
        }
        self.state.extend_from(&piece.state);
        self.blank.extend_from_slice(&piece.blank);
    }

    /// The CSV cells of a batch of rows (`cell(r)` for `r` in `0..n`, `None` for an unusable
    /// row) when every one is blank or one to three digits below 255 whose number is a value or
    /// a missing code (a categorical item's usual batch): stored at once, each as
    /// [`Self::push_null`] or [`Self::push_whole_number`] stores it. False, and nothing stored,
    /// when a cell needs more (the caller then stores the cells one by one).
    pub(crate) fn push_small_cells<'t>(
        &mut self,
        n: usize,
        cell: impl Fn(usize) -> Option<&'t [u8]>,
    ) -> bool {
        const MAX: usize = 64;
        if !self.rules.numeric || n > MAX {
            return false;
        }
        let mut bytes = [NO_VALUE_BYTE; MAX];
        let mut states = [CellState::NotAsked as u8; MAX];
        let mut blanks = [true; MAX];
        for r in 0..n {
            let digits = match cell(r) {
                None | Some([]) => continue,
                Some(digits) => digits,
            };
            // Any other cell: index 255, NOT_SMALL.
            let cell = self.small_cells[small_code(digits).unwrap_or(255)];
            if cell == NOT_SMALL {
                return false;
            }
            (bytes[r], states[r], blanks[r]) = (cell as u8, (cell >> 8) as u8, false);
        }
        let Some(values) = self.values.bytes_mut() else {
            return false;
        };
        values.extend_from_slice(&bytes[..n]);
        self.state.extend_codes(&states[..n], self.blank.capacity());
        self.blank.extend_from_slice(&blanks[..n]);
        true
    }

    /// A CSV cell written as a whole number in a numeric column (the usual cell of a
    /// categorical or count item), read without the general float parser: `Some(problem)`.
    /// `None`, and nothing pushed, for any other cell (read it with [`Self::push_str`]).
    #[inline(always)]
    pub(crate) fn push_whole_number(&mut self, digits: &[u8]) -> Option<Option<CellProblem>> {
        if !self.rules.numeric {
            return None;
        }
        // One to three digits, the usual cell: its outcome is in the table and a byte column
        // takes it as it is (255 and above need the general path, as they do not fit a byte).
        if let (Some(k), NumValues::Byte(values)) = (small_code(digits), &mut self.values) {
            let (byte, state, problem) = match &self.rules.small[k] {
                Outcome::Value => {
                    values.push(k as u8);
                    self.state.push(CellState::Value);
                    self.blank.push(false);
                    return Some(None);
                }
                Outcome::Missing(st) => (NO_VALUE_BYTE, *st, None),
                Outcome::Problem(p) => (NO_VALUE_BYTE, CellState::OtherMissing, Some(p.clone())),
            };
            values.push(byte);
            self.state.push_within(state, self.blank.capacity());
            self.blank.push(false);
            return Some(problem);
        }
        whole_number(digits).map(|x| self.push_num(x))
    }

    /// Room for `additional` more cells, so that a file's columns grow once, not by doubling.
    pub(crate) fn reserve(&mut self, additional: usize) {
        if self.rules.numeric {
            // Room for bytes; a column that needs `f64`s takes that room once, when it widens.
            self.values.reserve_exact(additional);
        } else {
            self.codes.reserve_exact(additional);
        }
        self.blank.reserve_exact(additional);
    }

    /// [`ColumnBuilder::reserve`] for a count read from a file: an allocation the system
    /// refuses is an error, not an abort.
    pub(crate) fn try_reserve(
        &mut self,
        additional: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        if self.rules.numeric {
            self.values.try_reserve_exact(additional)?;
        } else {
            self.codes.try_reserve_exact(additional)?;
        }
        self.blank.try_reserve_exact(additional)
    }

    /// Bytes one cell of this column takes while it is read.
    pub(crate) fn bytes_per_cell(&self) -> u64 {
        let value = if self.rules.numeric {
            std::mem::size_of::<f64>()
        } else {
            std::mem::size_of::<u32>()
        };
        (value + std::mem::size_of::<CellState>() + std::mem::size_of::<bool>()) as u64
    }

    /// True when numbers are stored as they are (a numeric column): the bulk numeric path
    /// applies; a text column gets numbers through [`ColumnBuilder::push_num`].
    pub(crate) fn stores_numbers(&self) -> bool {
        self.rules.numeric
    }

    /// A run of numeric cells (one Arrow array): `valid(i)` false marks a null. `whole` says
    /// the values cannot have a fraction (integer arrays). Problems are returned as
    /// (index in `values`, value, problem); the caller formats the value.
    pub(crate) fn push_numbers<T: FileNumber>(
        &mut self,
        values: &[T],
        valid: impl Fn(usize) -> bool,
        whole: bool,
        problems: &mut Vec<(usize, f64, CellProblem)>,
    ) {
        debug_assert!(self.rules.numeric);
        self.reserve(values.len());
        if !self.push_small_numbers(values, &valid) {
            self.push_numbers_each(values, T::to_f64, valid, whole, problems);
        }
    }

    /// [`ColumnBuilder::push_numbers`] cell by cell: every cell classified on its own.
    fn push_numbers_each<T: Copy>(
        &mut self,
        values: &[T],
        to_f64: impl Fn(T) -> f64,
        valid: impl Fn(usize) -> bool,
        whole: bool,
        problems: &mut Vec<(usize, f64, CellProblem)>,
    ) {
        let rules = &self.rules;
        let out = &mut self.values;
        let state = &mut self.state;
        let blank = &mut self.blank;
        for (i, &v) in values.iter().enumerate() {
            if !valid(i) {
                out.push(f64::NAN);
                state.push_within(CellState::NotAsked, blank.capacity());
                blank.push(true);
                continue;
            }
            let x = to_f64(v);
            blank.push(false);
            match &*rules.outcome_of(x, whole) {
                Outcome::Value => {
                    out.push(x);
                    state.push(CellState::Value);
                }
                Outcome::Missing(st) => {
                    out.push(f64::NAN);
                    state.push_within(*st, blank.capacity());
                }
                Outcome::Problem(p) => {
                    out.push(f64::NAN);
                    state.push_within(CellState::OtherMissing, blank.capacity());
                    problems.push((i, x, p.clone()));
                }
            }
        }
    }

    /// [`ColumnBuilder::push_numbers`] for a run whose every cell is null or a whole number
    /// below 255 that is a value or a missing code (the usual array of a categorical item):
    /// branch-free passes through a table, bytes written straight into a byte column. False, and
    /// nothing pushed, when a cell needs more (a problem, a larger or fractional number) or the
    /// column already holds `f64`s: the caller then takes the cell-by-cell path.
    fn push_small_numbers<T: FileNumber>(
        &mut self,
        values: &[T],
        valid: &impl Fn(usize) -> bool,
    ) -> bool {
        let cell_of = &self.small_cells;
        let Some(bytes) = self.values.bytes_mut() else {
            return false;
        };
        let start = bytes.len();
        bytes.resize(start + values.len(), 0);
        let cells = &mut bytes[start..];
        let mut states = vec![0u8; values.len()];
        // Branch-free loops over slices, so that they compile to straight-line code: every
        // cell through the table (a null's slot holds some number, mended next), then nulls.
        for ((byte, state), &v) in cells.iter_mut().zip(states.iter_mut()).zip(values) {
            // Index 255 stands for every number a byte cannot hold: NOT_SMALL.
            let cell = cell_of[v.small_index()];
            *byte = cell as u8;
            *state = (cell >> 8) as u8;
        }
        let not_asked = CellState::NotAsked as u8;
        for (i, (byte, state)) in cells.iter_mut().zip(states.iter_mut()).enumerate() {
            let is_valid = valid(i);
            *byte = if is_valid {
                *byte
            } else {
                crate::frame::NO_BYTE
            };
            *state = if is_valid { *state } else { not_asked };
        }
        // NOT_SMALL's state byte, left only by a non-null cell that needs more.
        if states.contains(&((NOT_SMALL >> 8) as u8)) {
            bytes.truncate(start);
            return false;
        }
        let capacity = self.blank.capacity();
        self.state.extend_codes(&states, capacity);
        self.blank.extend((0..values.len()).map(|i| !valid(i)));
        true
    }

    /// A run of text cells (one Arrow string array, or a CSV column). Survey files repeat the
    /// same text in consecutive rows (region, stratum), so the outcome of the previous cell is
    /// reused when the text is the same: classifying a cell depends on its text only.
    pub(crate) fn push_texts<'s>(
        &mut self,
        cells: impl Iterator<Item = Option<&'s str>>,
        problems: &mut Vec<(usize, String, CellProblem)>,
    ) {
        let mut last: Option<(&'s str, Option<CellProblem>)> = None;
        for (i, cell) in cells.enumerate() {
            let Some(s) = cell else {
                self.push_null();
                last = None;
                continue;
            };
            if let Some((prev, problem)) = &last
                && *prev == s
            {
                self.repeat_last();
                if let Some(p) = problem {
                    problems.push((i, s.trim().to_string(), p.clone()));
                }
                continue;
            }
            let problem = self.push_str(s);
            if let Some(p) = &problem {
                problems.push((i, s.trim().to_string(), p.clone()));
            }
            last = Some((s, problem));
        }
    }

    /// Append a copy of the last cell.
    #[inline]
    pub(crate) fn repeat_last(&mut self) {
        if self.rules.numeric {
            let v = self.values.last().unwrap_or(f64::NAN);
            self.values.push(v);
        } else {
            let c = self.codes.last().copied().unwrap_or(u32::MAX);
            self.codes.push(c);
        }
        let st = self.state.last().unwrap_or(CellState::NotAsked);
        self.state.push_within(st, self.blank.capacity());
        let b = self.blank.last().copied().unwrap_or(true);
        self.blank.push(b);
    }

    #[inline]
    fn push_cell(&mut self, value: f64, code: u32, state: CellState, blank: bool) {
        if self.rules.numeric {
            self.values.push(value);
        } else {
            self.codes.push(code);
        }
        self.state.push_within(state, self.blank.capacity());
        self.blank.push(blank);
    }

    /// An empty cell (blank text or Arrow null).
    #[inline]
    pub(crate) fn push_null(&mut self) {
        // Resolved later by skip logic into NotAsked or NoResponse. Blank cells are almost
        // half of a survey file's (questions not asked): a byte column takes its byte directly.
        match &mut self.values {
            NumValues::Byte(values) if self.rules.numeric => values.push(NO_VALUE_BYTE),
            _ => {
                self.push_cell(f64::NAN, u32::MAX, CellState::NotAsked, true);
                return;
            }
        }
        self.state
            .push_within(CellState::NotAsked, self.blank.capacity());
        self.blank.push(true);
    }

    /// A cell that holds no usable value and is reported (a workbook's error value `#N/A`).
    pub(crate) fn push_invalid(&mut self) {
        self.push_cell(f64::NAN, u32::MAX, CellState::OtherMissing, false);
    }

    /// A cell given as text (CSV, or an Arrow string array).
    pub(crate) fn push_str(&mut self, raw: &str) -> Option<CellProblem> {
        let s = raw.trim();
        if s.is_empty() {
            self.push_null();
            return None;
        }
        if self.rules.numeric {
            match parse_number(s, self.rules.decimal_comma) {
                Some(x) => self.push_num(x),
                None => {
                    // A declared text missing code on a numeric column ("DK") is still a missing code.
                    if let Some(&(_, st)) = self.rules.missing_text.iter().find(|(c, _)| c == s) {
                        self.push_cell(f64::NAN, u32::MAX, st, false);
                        return None;
                    }
                    if self.rules.na.iter().any(|t| t == s) {
                        self.push_null();
                        return None;
                    }
                    self.push_cell(f64::NAN, u32::MAX, CellState::OtherMissing, false);
                    Some(CellProblem::NotANumber)
                }
            }
        } else {
            if let Some(&(_, st)) = self.rules.missing_text.iter().find(|(c, _)| c == s) {
                self.push_cell(f64::NAN, u32::MAX, st, false);
                return None;
            }
            if !self.rules.codes_text.is_empty() && !self.rules.codes_text.iter().any(|c| c == s) {
                self.push_cell(f64::NAN, u32::MAX, CellState::OtherMissing, false);
                return Some(CellProblem::InvalidCode);
            }
            let code = match self.level_index.get(s) {
                Some(&c) => c,
                None => {
                    let c = self.levels.len() as u32;
                    self.levels.push(s.to_string());
                    self.level_index.insert(s.to_string(), c);
                    c
                }
            };
            self.push_cell(f64::NAN, code, CellState::Value, false);
            None
        }
    }

    /// A cell given as a number (an Arrow numeric array, or parsed CSV text).
    #[inline]
    pub(crate) fn push_num(&mut self, x: f64) -> Option<CellProblem> {
        if !self.rules.numeric {
            return self.push_str(&format_number(x));
        }
        let (value, state, problem) = match &*self.rules.outcome_of(x, false) {
            Outcome::Value => (x, CellState::Value, None),
            Outcome::Missing(st) => (f64::NAN, *st, None),
            Outcome::Problem(p) => (f64::NAN, CellState::OtherMissing, Some(p.clone())),
        };
        self.push_cell(value, u32::MAX, state, false);
        problem
    }

    pub(crate) fn finish(self) -> Column {
        let data = if self.rules.numeric {
            ColumnData::Num(self.values)
        } else {
            ColumnData::Text {
                codes: self.codes,
                levels: self.levels,
            }
        };
        Column {
            name: self.name,
            data,
            state: self.state,
        }
    }
}

/// The byte of a [`NumValues::Byte`] cell without a value (NaN), as `frame` stores it.
const NO_VALUE_BYTE: u8 = u8::MAX;

/// A [`small_cell_table`] entry for a number a byte column cannot take as it is (a problem, or
/// 255): its state half is no state's code.
const NOT_SMALL: u16 = u16::MAX;

/// Per whole number below 256, what a byte column stores for it: the byte in the low half and
/// the state's code in the high half (a missing code: no value, its state), or [`NOT_SMALL`]
/// for a problem and for 255 (which a byte cannot hold).
fn small_cell_table(small: &[Outcome]) -> [u16; 256] {
    let mut table = [NOT_SMALL; 256];
    for (k, (cell, outcome)) in table.iter_mut().zip(small).take(255).enumerate() {
        *cell = match outcome {
            Outcome::Value => k as u16 | (u16::from(CellState::Value as u8) << 8),
            Outcome::Missing(st) => u16::from(NO_VALUE_BYTE) | (u16::from(*st as u8) << 8),
            Outcome::Problem(_) => NOT_SMALL,
        };
    }
    table
}

/// The number of a cell written as one to three ASCII digits when a byte column holds it (below
/// 255): an index into the tables of small numbers. `None` for any other cell.
#[inline]
fn small_code(digits: &[u8]) -> Option<usize> {
    match digits.len() {
        1..=3 => small_number(digits).filter(|&k| k < 255),
        _ => None,
    }
}

/// The value of one to three ASCII digits; `None` for any other text.
#[inline]
fn small_number(digits: &[u8]) -> Option<usize> {
    let mut k = 0usize;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        k = k * 10 + usize::from(d);
    }
    Some(k)
}

/// The value of a cell written as an optional minus sign and 1 to 15 ASCII digits (exact in
/// an f64, and the same number `str::parse` gives, `-0` as -0.0); `None` for any other text.
fn whole_number(field: &[u8]) -> Option<f64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    let x = n as f64;
    Some(if negative { -x } else { x })
}

/// The finite number a cell's text (already trimmed) writes; `None` for any other text.
///
/// With `decimal_comma`, the comma is the decimal mark (`1,5`, `-0,25`) and a point makes the
/// text no number: thousands separators are not read, and a point there would be one
/// (`1.234` meaning 1234), so it is refused rather than read as 1.234.
pub(crate) fn parse_number(s: &str, decimal_comma: bool) -> Option<f64> {
    let x = if !decimal_comma {
        s.parse::<f64>().ok()?
    } else if s.contains('.') {
        return None;
    } else if s.contains(',') {
        s.replacen(',', ".", 1).parse::<f64>().ok()?
    } else {
        s.parse::<f64>().ok()?
    };
    x.is_finite().then_some(x)
}

/// A column the questionnaire does not declare: its type is decided once all values are seen
/// (numeric when every non-blank value parses as a number).
#[derive(Debug, Default)]
pub(crate) struct AutoBuilder {
    pub name: String,
    raw: Vec<Option<String>>,
}

impl AutoBuilder {
    pub(crate) fn new(name: &str) -> AutoBuilder {
        AutoBuilder {
            name: name.to_string(),
            raw: Vec::new(),
        }
    }
    pub(crate) fn push(&mut self, s: Option<&str>) {
        self.raw.push(
            s.map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    /// Append the next piece of the column.
    pub(crate) fn append(&mut self, piece: AutoBuilder) {
        self.raw.extend(piece.raw);
    }

    pub(crate) fn into_builder(self) -> ColumnBuilder {
        self.into_builder_with_na(&[], false)
    }

    /// The column typed from its cells: numeric when every cell is a number (written with a
    /// decimal comma when `decimal_comma`) or one of the texts `na` (read as blank), text
    /// otherwise (where `na` texts stay values).
    pub(crate) fn into_builder_with_na(self, na: &[String], decimal_comma: bool) -> ColumnBuilder {
        let numeric = self
            .raw
            .iter()
            .flatten()
            .all(|s| parse_number(s, decimal_comma).is_some() || na.iter().any(|t| t == s));
        let rules = CellRules::free(numeric)
            .with_na(if numeric { na } else { &[] })
            .with_decimal_comma(decimal_comma);
        let mut b = ColumnBuilder::new(&self.name, rules, self.raw.len());
        for cell in &self.raw {
            match cell {
                Some(s) => {
                    b.push_str(s);
                }
                None => b.push_null(),
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_problems_keep_rows_columns_and_values_through_append() {
        let mut piece = CellProblems::default();
        piece.push(0, "age", "abc", CellProblem::NotANumber);
        piece.push(
            2,
            "age",
            "300",
            CellProblem::OutOfRange {
                low: 0.0,
                high: 120.0,
            },
        );
        piece.push(2, "region", "", CellProblem::InvalidCode);
        let mut all = CellProblems::default();
        all.push(5, "region", "R9", CellProblem::InvalidCode);
        all.append(&piece, 10);
        let seen: Vec<(usize, &str, &str)> = all.iter().map(|(r, c, v, _)| (r, c, v)).collect();
        assert_eq!(
            seen,
            vec![
                (5, "region", "R9"),
                (10, "age", "abc"),
                (12, "age", "300"),
                (12, "region", ""),
            ]
        );
        assert_eq!(all.len(), 4);
        assert!(matches!(
            all.iter().nth(2).map(|p| p.3),
            Some(CellProblem::OutOfRange { high, .. }) if *high == 120.0
        ));
    }

    /// Numeric rules with codes, missing codes and a missing range, or a range.
    fn numeric_rules(coded: bool) -> CellRules {
        let mut rules = CellRules::free(true);
        if coded {
            rules.codes_num = vec![1.0, 2.0, 3.0, 7.0, 254.0, 300.0];
            rules.missing_num = vec![(8.0, CellState::DontKnow), (9.0, CellState::Refused)];
            rules.missing_ranges = vec![(90.0, 99.0, CellState::NoResponse)];
        } else {
            rules.integer = true;
            rules.range = Some((18.0, 120.0));
        }
        rules.code_bits = small_code_bits(&rules.codes_num);
        rules.small = (0..256)
            .map(|k| rules.classify(f64::from(k), true))
            .collect();
        rules
    }

    #[test]
    fn whole_numbers_are_stored_as_the_general_path_stores_them() {
        // Numbers that fit a byte column, then numbers that widen it.
        let bytes: Vec<String> = (0..255).rev().map(|k| k.to_string()).collect();
        let mut wide: Vec<String> = (0..1000).map(|k| k.to_string()).collect();
        wide.extend(["-0", "-3", "007", "0254", "255", "1.0"].map(String::from));
        for (coded, texts) in [
            (true, &bytes),
            (false, &bytes),
            (true, &wide),
            (false, &wide),
        ] {
            let rules = numeric_rules(coded);
            let mut fast = ColumnBuilder::new("q", rules.clone(), 0);
            let mut general = ColumnBuilder::new("q", rules, 0);
            for text in texts {
                let problem = fast
                    .push_whole_number(text.as_bytes())
                    .unwrap_or_else(|| fast.push_str(text));
                assert_eq!(problem, general.push_str(text), "{text}");
            }
            // A blank cell after the numbers, through both paths.
            fast.push_null();
            general.push_cell(f64::NAN, u32::MAX, CellState::NotAsked, true);
            assert_eq!(fast.blank, general.blank);
            let (fast, general) = (fast.finish(), general.finish());
            assert_eq!(fast.state, general.state);
            let (ColumnData::Num(fast), ColumnData::Num(general)) = (fast.data, general.data)
            else {
                panic!("numeric columns");
            };
            // The same storage (a byte a cell until a value needs more), the same bits.
            assert_eq!(
                std::mem::discriminant(&fast),
                std::mem::discriminant(&general)
            );
            let bits = |v: &NumValues| v.iter().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&general));
        }
    }

    #[test]
    fn whole_numbers_read_as_the_float_parser_reads_them() {
        for text in ["0", "7", "-0", "-12", "007", "123456789012345"] {
            let parsed: f64 = text.parse().expect("number");
            let fast = whole_number(text.as_bytes()).expect("whole");
            assert_eq!(fast.to_bits(), parsed.to_bits(), "{text}");
        }
        for text in ["", "-", "1.5", "1e3", "+1", " 1", "1234567890123456", "x"] {
            assert_eq!(whole_number(text.as_bytes()), None, "{text}");
        }
    }

    /// Two empty builders of a numeric column with the same rules: one for a fast path, one
    /// for the cell-by-cell path it must match.
    fn twin_builders(coded: bool) -> (ColumnBuilder, ColumnBuilder) {
        let rules = numeric_rules(coded);
        (
            ColumnBuilder::new("q", rules.clone(), 0),
            ColumnBuilder::new("q", rules, 0),
        )
    }

    /// `fast` holds the cells `each` holds: blanks, states, storage and values bit for bit.
    /// The finished `fast` column.
    fn assert_same_cells(fast: ColumnBuilder, each: ColumnBuilder, case: &str) -> Column {
        assert_eq!(fast.blank, each.blank, "{case}");
        let (fast, each) = (fast.finish(), each.finish());
        assert_eq!(fast.state, each.state, "{case}");
        let (ColumnData::Num(fast_values), ColumnData::Num(each_values)) = (&fast.data, &each.data)
        else {
            panic!("numeric columns");
        };
        assert_eq!(
            std::mem::discriminant(fast_values),
            std::mem::discriminant(each_values),
            "{case}"
        );
        let bits = |v: &NumValues| v.iter().map(f64::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(fast_values), bits(each_values), "{case}");
        fast
    }

    #[test]
    fn runs_of_small_numbers_are_stored_as_cell_by_cell() {
        // Runs the byte path takes (codes, missing codes, nulls) and runs it must leave to the
        // cell-by-cell path (a problem, 255, -0.0, a fraction, NaN), each after a run of
        // each kind so that a refused run leaves nothing behind.
        let runs: Vec<Vec<Option<f64>>> = vec![
            vec![Some(1.0), Some(2.0), Some(3.0)],
            vec![Some(1.0), None, Some(8.0), Some(95.0), None],
            vec![None, None, None],
            vec![Some(7.0)],
            vec![Some(1.0), Some(4.0)],
            vec![Some(254.0), Some(2.0)],
            vec![Some(255.0)],
            vec![Some(-0.0), Some(1.0)],
            vec![Some(1.5)],
            vec![Some(f64::NAN), None],
            vec![Some(300.0), Some(1.0)],
            vec![Some(20.0), Some(119.0), None, Some(18.0)],
        ];
        for coded in [true, false] {
            // The byte path takes a run of codes and nulls, and refuses one with a fraction.
            let mut fresh = ColumnBuilder::new("q", numeric_rules(coded), 0);
            let codes = if coded {
                [1.0, 0.0, 8.0]
            } else {
                [20.0, 0.0, 99.0]
            };
            assert!(fresh.push_small_numbers(&codes, &|i| i != 1));
            assert!(!fresh.push_small_numbers(&[2.0, 1.5], &|_| true));
            for order in 0..runs.len() {
                let (mut fast, mut each) = twin_builders(coded);
                let (mut fast_found, mut each_found) = (Vec::new(), Vec::new());
                // Every run once, starting from a different one each time.
                for run in runs.iter().cycle().skip(order).take(runs.len()) {
                    let values: Vec<f64> = run.iter().map(|c| c.unwrap_or(0.0)).collect();
                    let valid = |i: usize| run[i].is_some();
                    fast.push_numbers(&values, valid, false, &mut fast_found);
                    each.push_numbers_each(&values, |x| x, valid, false, &mut each_found);
                }
                let case = format!("coded {coded}, from run {order}");
                let bits = |v: &[(usize, f64, CellProblem)]| {
                    v.iter()
                        .map(|(i, x, p)| (*i, x.to_bits(), p.clone()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&fast_found), bits(&each_found), "{case}");
                assert!(!each_found.is_empty(), "{case}: the runs hold problems");
                let fast = assert_same_cells(fast, each, &case);
                assert!(
                    !fast.state.all_value(),
                    "{case}: the runs hold missing cells"
                );
            }
        }
    }

    #[test]
    fn batches_of_small_cells_are_stored_as_cell_by_cell() {
        // Batches the batch path takes (codes, missing codes, blanks, unusable rows) and
        // batches it must leave to the cell-by-cell path, each after every other batch so that
        // a refused batch leaves nothing behind.
        let batches: Vec<Vec<Option<&[u8]>>> = vec![
            vec![Some(b"1"), Some(b"2"), Some(b"3")],
            vec![Some(b"1"), Some(b""), Some(b"8"), Some(b"95"), None],
            vec![Some(b""), None, Some(b"")],
            vec![Some(b"007"), Some(b"254"), Some(b"0")],
            vec![Some(b"20"), Some(b"119"), Some(b""), Some(b"18")],
            vec![Some(b"255")],
            vec![Some(b"1"), Some(b"0254")],
            vec![Some(b"-0"), Some(b"1")],
            vec![Some(b" 1")],
            vec![Some(b"1.5"), Some(b"")],
            vec![Some(b"300"), Some(b"1")],
            vec![Some(b"x")],
            vec![Some(b"4"), Some(b"121")],
        ];
        let each_cell = |b: &mut ColumnBuilder, batch: &[Option<&[u8]>], found: &mut Vec<_>| {
            for (r, cell) in batch.iter().enumerate() {
                match cell {
                    None | Some([]) => b.push_null(),
                    Some(digits) => {
                        let problem = match b.push_whole_number(digits) {
                            Some(problem) => problem,
                            None => b.push_str(std::str::from_utf8(digits).expect("text")),
                        };
                        found.extend(problem.map(|p| (r, p)));
                    }
                }
            }
        };
        let mut taken = 0;
        for coded in [true, false] {
            for order in 0..batches.len() {
                let (mut fast, mut each) = twin_builders(coded);
                let (mut fast_found, mut each_found) = (Vec::new(), Vec::new());
                for batch in batches.iter().cycle().skip(order).take(batches.len()) {
                    if fast.push_small_cells(batch.len(), |r| batch[r]) {
                        taken += 1;
                    } else {
                        each_cell(&mut fast, batch, &mut fast_found);
                    }
                    each_cell(&mut each, batch, &mut each_found);
                }
                let case = format!("coded {coded}, from batch {order}");
                assert_eq!(fast_found, each_found, "{case}");
                assert_same_cells(fast, each, &case);
            }
        }
        // Coded: the first four batches before the column widens (at 300); ranged: the
        // first three and the fifth (8, 95, 7 and 254 are problems there) until it does.
        assert!(
            taken >= 2 * batches.len(),
            "the batch path was taken {taken} times"
        );
        // A text column takes no batch.
        let mut text = ColumnBuilder::new("t", CellRules::free(false), 0);
        assert!(!text.push_small_cells(1, |_| Some(b"1")));
    }

    #[test]
    fn small_index_is_the_number_only_where_a_byte_holds_it() {
        assert_eq!((0i8.small_index(), (-1i8).small_index()), (0, 255));
        assert_eq!((254i64.small_index(), 255i64.small_index()), (254, 255));
        assert_eq!((i64::MIN.small_index(), u64::MAX.small_index()), (255, 255));
        assert_eq!((7u16.small_index(), 300u32.small_index()), (7, 255));
        assert_eq!((7.0f32.small_index(), 254.0f64.small_index()), (7, 254));
        for x in [-0.0, 1.5, 255.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(x.small_index(), 255, "{x}");
        }
    }
}
