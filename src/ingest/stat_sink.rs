//! What SPSS and Stata readers have in common after the dictionary: the readers
//! ([`super::sav`], [`super::dta`], [`super::por`]) turn their format into a [`FileDictionary`]
//! and a stream of [`StatCell`]s; [`StatSink`] checks the dictionary against the questionnaire
//! and feeds the cells into the same column builders CSV and Parquet use. The mapping of missing
//! values is described in `docs/data-formats.md`:
//!
//! - system missing (SPSS sysmis, Stata `.`) is a blank cell;
//! - an SPSS user-missing value is just its value (`8` is read as `8`, and the questionnaire's
//!   `8 = "dont_know"` makes it a don't-know);
//! - a Stata extended missing value `.a`–`.z` becomes the questionnaire missing code `.a` when the
//!   variable declares one, else the one missing code of the variable whose meaning matches the
//!   file's label for `.a` ("Don't know" → the `dont_know` code), else a blank cell (reported).

use std::collections::BTreeMap;
use std::path::Path;

use super::builder::{AutoBuilder, CellProblems, CellRules, ColumnBuilder};
use super::dictionary::{
    FileCode, FileDictionary, FileMissing, FileType, FileVariable, Observed, guess_meaning,
};
use super::{ColumnPlan, IngestError, RawTable};
use crate::frame::{CellState, format_number};
use crate::questionnaire::MissingMeaning;

/// One cell as a reader decodes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StatCell<'a> {
    /// A number (SPSS user-missing values included).
    Num(f64),
    /// Text (trailing blanks are trimmed by the builder).
    Str(&'a str),
    /// SPSS system missing, Stata `.`.
    SysMissing,
    /// Stata `.a`–`.z`.
    Extended(char),
}

/// An observed variable: its dictionary entry (to tell labelled and missing values) and what
/// was seen.
struct Observing {
    var: FileVariable,
    seen: Observed,
}

impl Observing {
    fn push(&mut self, cell: StatCell<'_>) {
        match cell {
            StatCell::SysMissing => {}
            StatCell::Extended(c) => *self.seen.extended.entry(c).or_default() += 1,
            StatCell::Num(x) => {
                let code = FileCode::Num(x);
                if self.var.is_missing(&code) {
                    return;
                }
                let seen = &mut self.seen;
                seen.values += 1;
                seen.whole &= x.fract() == 0.0;
                seen.min_max = Some(match seen.min_max {
                    None => (x, x),
                    Some((lo, hi)) => (lo.min(x), hi.max(x)),
                });
                if self.var.label_of(&code).is_none() {
                    seen.unlabelled(|| format_number(x));
                }
            }
            StatCell::Str(s) => {
                let s = s.trim();
                if s.is_empty() {
                    return;
                }
                let labelled = self.var.value_labels.iter().any(|(c, _)| match c {
                    FileCode::Text(t) => t.trim() == s,
                    _ => false,
                });
                let declared_missing = self.var.missing.iter().any(|m| match m {
                    FileMissing::Code(FileCode::Text(t)) => t.trim() == s,
                    _ => false,
                });
                if declared_missing {
                    return;
                }
                self.seen.values += 1;
                if !labelled {
                    self.seen.unlabelled(|| s.to_string());
                }
            }
        }
    }
}

/// What a Stata extended missing value is read as, for one column.
#[derive(Debug, Clone)]
enum ExtAction {
    Str(String),
    Num(f64),
    Blank,
}

enum Slot {
    Typed(Box<ColumnBuilder>),
    Auto(AutoBuilder),
    Observe(Box<Observing>),
}

struct SinkColumn {
    slot: Slot,
    /// Mapping of `.a`–`.z` (index 0–25), decided when the column is set up.
    ext: Vec<ExtAction>,
    /// Rows where an unmapped extended missing value was read as blank, per letter.
    ext_unmapped: BTreeMap<char, usize>,
}

/// Receives the cells of a file row by row and builds the [`RawTable`].
pub(crate) struct StatSink {
    path: std::path::PathBuf,
    header: Vec<String>,
    /// Per file variable: index into `columns`, or `None` when ignored.
    slot_of: Vec<Option<usize>>,
    columns: Vec<SinkColumn>,
    ignored: Vec<String>,
    cell_problems: CellProblems,
    file_findings: Vec<(String, String, String)>,
    n_rows: usize,
}

impl StatSink {
    /// Plan the columns, check the dictionary against the questionnaire and set up the mapping
    /// of extended missing values.
    pub(crate) fn new(
        path: &Path,
        dict: &FileDictionary,
        plan: &dyn Fn(&str) -> ColumnPlan,
    ) -> Result<StatSink, IngestError> {
        let header: Vec<String> = dict.variables.iter().map(|v| v.name.clone()).collect();
        let mut seen = std::collections::HashSet::new();
        for h in &header {
            if !seen.insert(h.as_str()) {
                return Err(IngestError::DuplicateColumn {
                    path: path.to_path_buf(),
                    column: h.clone(),
                });
            }
        }
        let mut slot_of = Vec::with_capacity(header.len());
        let mut columns = Vec::new();
        let mut ignored = Vec::new();
        let mut file_findings = Vec::new();
        for var in &dict.variables {
            match plan(&var.name) {
                ColumnPlan::Declared(rules) => {
                    if rules.numeric && matches!(var.file_type, FileType::Text { .. }) {
                        return Err(IngestError::ColumnType {
                            path: path.to_path_buf(),
                            column: var.name.clone(),
                            message: format!(
                                "the {} file stores it as text, but the questionnaire declares \
                                 numbers (numeric codes, integer or numeric); declare it \
                                 `type = \"text\"` (with its codes quoted, `codes = {{ \"1\" = \
                                 \"Yes\" }}`, compared as text: `{} == \"1\"`), or convert the \
                                 variable to numeric in the file",
                                dict.format, var.name
                            ),
                        });
                    }
                    file_findings.extend(check_dictionary(var, &rules));
                    let ext = (0..26u8)
                        .map(|i| ext_action(var, &rules, char::from(b'a' + i)))
                        .collect();
                    slot_of.push(Some(columns.len()));
                    columns.push(SinkColumn {
                        slot: Slot::Typed(Box::new(ColumnBuilder::new(&var.name, rules, 0))),
                        ext,
                        ext_unmapped: BTreeMap::new(),
                    });
                }
                ColumnPlan::Inferred => {
                    slot_of.push(Some(columns.len()));
                    columns.push(SinkColumn {
                        slot: Slot::Auto(AutoBuilder::new(&var.name)),
                        ext: vec![ExtAction::Blank; 26],
                        ext_unmapped: BTreeMap::new(),
                    });
                }
                ColumnPlan::Ignore => {
                    slot_of.push(None);
                    ignored.push(var.name.clone());
                }
            }
        }
        Ok(StatSink {
            path: path.to_path_buf(),
            header,
            slot_of,
            columns,
            ignored,
            cell_problems: CellProblems::default(),
            file_findings,
            n_rows: 0,
        })
    }

    /// A sink that keeps no cells but observes every variable (`statfile::observe`).
    pub(crate) fn observer(path: &Path, dict: &FileDictionary) -> StatSink {
        StatSink {
            path: path.to_path_buf(),
            header: dict.variables.iter().map(|v| v.name.clone()).collect(),
            slot_of: (0..dict.variables.len()).map(Some).collect(),
            columns: dict
                .variables
                .iter()
                .map(|v| SinkColumn {
                    slot: Slot::Observe(Box::new(Observing {
                        var: v.clone(),
                        seen: Observed::new(),
                    })),
                    ext: Vec::new(),
                    ext_unmapped: BTreeMap::new(),
                })
                .collect(),
            ignored: Vec::new(),
            cell_problems: CellProblems::default(),
            file_findings: Vec::new(),
            n_rows: 0,
        }
    }

    /// What an [`StatSink::observer`] saw, per variable of the file.
    pub(crate) fn into_observed(self) -> Vec<Observed> {
        self.columns
            .into_iter()
            .filter_map(|c| match c.slot {
                Slot::Observe(o) => Some(o.seen),
                _ => None,
            })
            .collect()
    }

    /// True when variable `index` of the file is loaded (readers may skip decoding the others).
    pub(crate) fn wants(&self, index: usize) -> bool {
        self.slot_of.get(index).is_some_and(Option::is_some)
    }

    /// One cell of the current row, for variable `index` of the file.
    pub(crate) fn push(&mut self, index: usize, cell: StatCell<'_>) {
        let Some(Some(i)) = self.slot_of.get(index).copied() else {
            return;
        };
        let row = self.n_rows;
        let col = &mut self.columns[i];
        if let Slot::Observe(o) = &mut col.slot {
            o.push(cell);
            return;
        }
        let cell = match cell {
            StatCell::Extended(c) => {
                let k = (c as u8).wrapping_sub(b'a') as usize;
                match col.ext.get(k) {
                    Some(ExtAction::Str(s)) => {
                        let s = s.clone();
                        return push_cell(col, StatCell::Str(&s), row, &mut self.cell_problems);
                    }
                    Some(ExtAction::Num(x)) => StatCell::Num(*x),
                    _ => {
                        *col.ext_unmapped.entry(c).or_default() += 1;
                        StatCell::SysMissing
                    }
                }
            }
            other => other,
        };
        push_cell(col, cell, row, &mut self.cell_problems);
    }

    /// Close the current row.
    pub(crate) fn end_row(&mut self) {
        self.n_rows += 1;
    }

    /// Rows completed so far.
    pub(crate) fn rows(&self) -> usize {
        self.n_rows
    }

    /// Finish: the table for validation.
    pub(crate) fn finish(self, sha256: String) -> Result<RawTable, IngestError> {
        if self.n_rows == 0 {
            return Err(IngestError::Empty {
                path: self.path,
                message: "the file has no data rows".into(),
            });
        }
        let mut file_findings = self.file_findings;
        let mut builders = Vec::with_capacity(self.columns.len());
        for col in self.columns {
            let name = match &col.slot {
                Slot::Typed(b) => b.name.clone(),
                Slot::Auto(a) => a.name.clone(),
                Slot::Observe(o) => o.var.name.clone(),
            };
            for (c, n) in &col.ext_unmapped {
                let code = format!(".{c}");
                // One finding per variable and code: a labelled .a was reported from the
                // dictionary already; add the count there.
                if let Some(f) = file_findings
                    .iter_mut()
                    .find(|(column, value, _)| *column == name && *value == code)
                {
                    f.2.push_str(&format!(" ({n} row(s))"));
                    continue;
                }
                file_findings.push((
                    name.clone(),
                    code,
                    format!(
                        "extended missing value .{c} occurs in {n} row(s) but matches no missing \
                         code of the questionnaire; read as blank. Declare \".{c}\" as a missing \
                         code, or label it (\"Don't know\", \"Refused\", ...) in the file"
                    ),
                ));
            }
            builders.push(match col.slot {
                Slot::Typed(b) => *b,
                Slot::Auto(a) => a.into_builder(),
                Slot::Observe(o) => ColumnBuilder::new(&o.var.name, CellRules::free(false), 0),
            });
        }
        Ok(RawTable {
            builders,
            n_rows: self.n_rows,
            cell_problems: self.cell_problems,
            row_problems: Vec::new(),
            sha256,
            ignored: self.ignored,
            header: self.header,
            file_findings,
            sheet: None,
        })
    }
}

fn push_cell(col: &mut SinkColumn, cell: StatCell<'_>, row: usize, problems: &mut CellProblems) {
    match &mut col.slot {
        Slot::Typed(b) => {
            let (problem, shown) = match cell {
                StatCell::Num(x) => (b.push_num(x), format_number(x)),
                StatCell::Str(s) => (b.push_str(s), s.trim().to_string()),
                StatCell::SysMissing | StatCell::Extended(_) => {
                    b.push_null();
                    (None, String::new())
                }
            };
            if let Some(p) = problem {
                problems.push(row, &b.name, &shown, p);
            }
        }
        Slot::Auto(a) => match cell {
            StatCell::Num(x) => a.push(Some(&format_number(x))),
            StatCell::Str(s) => a.push(Some(s)),
            StatCell::SysMissing | StatCell::Extended(_) => a.push(None),
        },
        Slot::Observe(o) => o.push(cell),
    }
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

fn ext_action(var: &FileVariable, rules: &CellRules, letter: char) -> ExtAction {
    let written = format!(".{letter}");
    if rules.missing_text.iter().any(|(c, _)| c.trim() == written) {
        return ExtAction::Str(written);
    }
    let Some(label) = var.label_of(&FileCode::Extended(letter)) else {
        return ExtAction::Blank;
    };
    let state = state_of(guess_meaning(label));
    let candidates: Vec<&String> = rules
        .missing_text
        .iter()
        .filter(|(_, s)| *s == state)
        .map(|(c, _)| c)
        .collect();
    match candidates.as_slice() {
        [code] => match (rules.numeric, code.trim().parse::<f64>()) {
            (true, Ok(x)) => ExtAction::Num(x),
            (true, Err(_)) => ExtAction::Str(code.to_string()),
            (false, _) => ExtAction::Str(code.to_string()),
        },
        _ => ExtAction::Blank,
    }
}

/// Value labels and missing-value definitions of the file that the questionnaire does not know:
/// (column, code, reason), one per variable and code.
fn check_dictionary(var: &FileVariable, rules: &CellRules) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let in_ranges = |x: f64| rules.missing_ranges.iter().any(|r| r.0 <= x && x <= r.1);
    let known_missing = |code: &FileCode| -> bool {
        match code {
            FileCode::Num(x) => rules.missing_num.iter().any(|(m, _)| m == x) || in_ranges(*x),
            other => {
                let w = other.as_code();
                rules.missing_text.iter().any(|(m, _)| m.trim() == w)
            }
        }
    };
    let known_valid = |code: &FileCode| -> bool {
        match code {
            FileCode::Num(x) if rules.numeric => {
                rules.codes_num.is_empty() || rules.codes_num.contains(x)
            }
            other => {
                let w = other.as_code();
                rules.codes_text.is_empty() || rules.codes_text.iter().any(|c| c.trim() == w)
            }
        }
    };
    let mut push = |code: String, reason: String| {
        if !out.iter().any(|(_, c, _)| *c == code) {
            out.push((var.name.clone(), code, reason));
        }
    };
    for (code, label) in &var.value_labels {
        if let FileCode::Extended(letter) = code {
            if matches!(ext_action(var, rules, *letter), ExtAction::Blank) {
                push(
                    code.as_code(),
                    format!(
                        "extended missing value {} (\"{label}\") matches no missing code of the \
                         questionnaire; it is read as blank",
                        code.as_code()
                    ),
                );
            }
            continue;
        }
        if known_missing(code) {
            continue;
        }
        if var.is_missing(code) {
            push(
                code.as_code(),
                format!(
                    "value {} (\"{label}\") is user-missing in the file but not a missing code \
                     of the questionnaire",
                    code.as_code()
                ),
            );
        } else if !known_valid(code) {
            push(
                code.as_code(),
                format!(
                    "value label {} (\"{label}\") is not declared in the questionnaire",
                    code.as_code()
                ),
            );
        }
    }
    for m in &var.missing {
        match m {
            FileMissing::Code(code) => {
                if !known_missing(code) {
                    push(
                        code.as_code(),
                        format!(
                            "value {} is user-missing in the file but not a missing code of the \
                             questionnaire",
                            code.as_code()
                        ),
                    );
                }
            }
            FileMissing::Range(lo, hi) => {
                let covered = rules
                    .missing_ranges
                    .iter()
                    .any(|r| r.0 <= *lo && *hi <= r.1);
                if !covered && !rules.missing_num.iter().any(|(m, _)| lo <= m && m <= hi) {
                    let shown = format!("{}..{}", range_end(*lo), range_end(*hi));
                    push(
                        shown.clone(),
                        format!(
                            "user-missing range {shown} of the file contains no missing code of \
                             the questionnaire"
                        ),
                    );
                }
            }
        }
    }
    out
}

fn range_end(x: f64) -> String {
    if x == f64::NEG_INFINITY {
        "LO".into()
    } else if x == f64::INFINITY {
        "HI".into()
    } else {
        format_number(x)
    }
}
