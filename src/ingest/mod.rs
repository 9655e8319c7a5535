//! Ingest: read fieldwork microdata (CSV, Parquet, SPSS or Stata) into typed columns and validate
//! every row against the questionnaire.
//!
//! Every input row ends up either *used* or *quarantined* with its reasons, and
//! `rows_read = rows_used + rows_quarantined` is asserted before returning. Findings that do not
//! make a row unusable (item nonresponse, answers recorded for a unit nonrespondent) are reported
//! but the row is kept; an invalid answer is blanked and the row kept unless
//! [`InvalidAnswer::Quarantine`] is asked for (each finding says what was done, [`FindingAction`]).

mod builder;
mod csv_reader;
pub mod dictionary;
mod dta;
mod dta_lengths;
mod findings;
pub mod households;
mod por;
mod read;
mod sav;
mod stat_sink;
pub mod statfile;
mod workbook;
pub(crate) use csv_reader::detected_header;
pub(crate) use workbook::cell_name;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use builder::{CellProblem, CellProblems, CellRules, ColumnBuilder};
use findings::FindingsBuilder;
pub use findings::{FindingRef, Findings};
use rayon::prelude::*;

use crate::fieldwork::{Date, DispositionMap, Outcome};
use crate::frame::{CellState, ColumnData, Frame, NO_BYTE, States, StoredValues};
use crate::questionnaire::Questionnaire;

/// Frame column holding the data row number (1-based) when the config names no id column.
pub const ROW_ID: &str = "_row";

/// Which columns matter beyond the questionnaire, and how they must look.
#[derive(Debug, Clone, Default)]
pub struct IngestSpec {
    /// Data file: `.csv` (`.tsv`, `.tab`), `.parquet`, `.sav`, `.zsav` or `.dta`.
    pub path: PathBuf,
    /// How a text file is written: delimiter, decimal mark, encoding.
    pub text_format: TextFormat,
    /// The sheet of a workbook (`.xlsx`, `.xlsm`, `.xls`, `.ods`) holding the data; `None`: the
    /// first sheet.
    pub sheet: Option<String>,
    /// Unique id column; `None`: rows are identified by their data row number (column
    /// [`ROW_ID`] of the frame).
    pub id: Option<String>,
    /// Response indicator (1 respondent, 0 unit nonrespondent), if any.
    pub response: Option<String>,
    /// Design columns that must be present and filled in every row (strata, PSUs, FPCs, weight).
    pub design_columns: Vec<String>,
    /// Columns whose values must be finite and strictly positive (the design weight).
    pub positive_columns: Vec<String>,
    /// Further columns that must exist (domains, nonresponse classes).
    pub required_columns: Vec<String>,
    /// Column name patterns (`*` matches any text) of columns to load as numbers, each of which
    /// must match at least one column (supplied replicate weights, e.g. `repw_*`).
    pub column_patterns: Vec<String>,
    /// Texts read as blank in numeric columns of CSV and Parquet files (`NA`, `.`).
    pub na: Vec<String>,
    /// Variables the run reads after ingest (indicators, domains, calibration margins): only
    /// the derived variables among them, and their inputs, are built. `None`: all of them.
    pub derived: Option<Vec<String>>,
    /// What an invalid answer does: blank the item (default) or quarantine the row.
    pub invalid_answer: InvalidAnswer,
    /// Questionnaire variables the weighting needs in every respondent's row (calibration
    /// margins and the variables they are derived from): a blank there stops the calibration,
    /// so an invalid answer in them still quarantines a respondent. (Nonresponse classes, read
    /// in every row, are in `required_columns`, where an invalid value always quarantines.)
    pub unit_columns: Vec<String>,
    /// Columns loaded when the file has them (a design column a person file may repeat, a
    /// selection factor that may be in either file).
    pub optional_columns: Vec<String>,
    /// The person file of a survey of households and persons: how its rows are linked to the
    /// households (`households::HouseholdLink::check`).
    pub household_link: Option<households::HouseholdLink>,
    /// Final dispositions: the respondents follow from them, and their returns are checked.
    pub dispositions: Option<DispositionSpec>,
    /// Nothing publishes the file's SHA-256 (`validate`): CSV and Parquet files are then read
    /// without computing it, and [`Ingested::sha256`] is empty.
    pub without_sha256: bool,
}

/// How a delimited text file (CSV, TSV) is written, as national offices and CAPI systems export
/// them (`docs/data-formats.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TextFormat {
    /// Field delimiter; `None`: tab for `.tsv`/`.tab` files, else detected from the header
    /// ([`DELIMITERS`]).
    pub delimiter: Option<u8>,
    /// Numbers are written with a decimal comma (`1,5`) instead of a point.
    pub decimal_comma: bool,
    /// Text encoding; `None`: UTF-8 (a byte-order mark of another Unicode encoding is honoured
    /// either way).
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// The delimiters a header is tried with, in the order that breaks ties.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// A delimiter as a user writes it in the config and reads it in messages.
pub fn delimiter_name(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "tab".into(),
        d => format!("\"{}\"", char::from(d)),
    }
}

/// The final disposition of every sampled case and the interview dates (`docs/fieldwork.md`).
#[derive(Debug, Clone)]
pub struct DispositionSpec {
    /// Column of disposition codes: filled in every row, each code mapped.
    pub column: String,
    /// Codes to AAPOR categories; a complete interview (and a partial one when partials
    /// respond) is a respondent.
    pub map: DispositionMap,
    /// Interview date column (ISO 8601), checked against the fieldwork period and `today`.
    pub interview_date: Option<String>,
    /// First day of fieldwork.
    pub start: Option<Date>,
    /// Last day of fieldwork.
    pub end: Option<Date>,
    /// An interview date after this is in the future.
    pub today: Date,
}

/// What an invalid answer does to its row: a code the questionnaire does not declare, a value
/// outside its range, not a number or not whole, or an answer where skip logic says the question
/// was not asked.
///
/// Editing practice (UNECE GSDEM 2019; de Waal, Pannekoek & Scholtus 2011) blanks the
/// item and keeps the unit: dropping the respondent would remove every other answer from
/// nonresponse adjustment, calibration and every other indicator. Invalid ids, design, frame,
/// weight and response values, and invalid answers in the variables the weighting needs
/// ([`IngestSpec::unit_columns`]), quarantine the row under either setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidAnswer {
    /// The cell becomes blank, read as if the file had a blank there: item nonresponse where
    /// the question was asked, not asked where skip logic says so (so an answer where the
    /// question was not asked becomes "not asked", not item nonresponse).
    #[default]
    Blank,
    /// The row is quarantined (the behaviour before blanking was the default).
    Quarantine,
}

impl InvalidAnswer {
    /// The setting named as in `[validation] invalid_answer`.
    pub fn from_name(name: &str) -> Option<InvalidAnswer> {
        match name {
            "blank" => Some(InvalidAnswer::Blank),
            "quarantine" => Some(InvalidAnswer::Quarantine),
            _ => None,
        }
    }

    /// Its name in `[validation] invalid_answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidAnswer::Blank => "blank",
            InvalidAnswer::Quarantine => "quarantine",
        }
    }
}

/// What was done about a finding (column `action` of `findings.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingAction {
    /// The row and the value were kept (item nonresponse, answers of a unit nonrespondent,
    /// which are ignored, a dictionary label).
    Kept,
    /// The cell was blanked and the row kept ([`InvalidAnswer::Blank`]).
    Blanked,
    /// The row was quarantined.
    Quarantined,
}

impl FindingAction {
    /// Name written in `findings.csv` and the summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingAction::Kept => "kept",
            FindingAction::Blanked => "blanked",
            FindingAction::Quarantined => "quarantined",
        }
    }
}

impl fmt::Display for FindingAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when `name` matches `pattern`, where `*` stands for any text (possibly empty).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first)
        || !name[first.len()..].ends_with(last)
        || name.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Kind of a validation finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// The row has a different number of fields than the header.
    MalformedRow,
    /// The row is not valid UTF-8.
    InvalidEncoding,
    /// A value that should be a number is not.
    NotANumber,
    /// A value that should be whole is not.
    NotInteger,
    /// A code not declared for the variable.
    InvalidCode,
    /// A value outside the declared range.
    OutOfRange,
    /// An answer where skip logic says the question was not asked.
    AnsweredNotAsked,
    /// The id occurs more than once.
    DuplicateId,
    /// A design field (id, strata, PSU, FPC, weight, response) is blank.
    MissingDesignValue,
    /// An id, design or frame value holds a control character (a NUL byte, say), which would
    /// make a stratum or PSU that looks like another but is not.
    ControlCharacter,
    /// A weight that is not finite and > 0.
    InvalidWeight,
    /// A response indicator other than 0 or 1.
    InvalidResponse,
    /// A blank where the question was asked (kept; the item is missing).
    ItemNonresponse,
    /// Answers recorded for a unit nonrespondent (kept; the answers are ignored).
    NonrespondentAnswers,
    /// A code labelled or declared missing in an SPSS/Stata file's dictionary that the
    /// questionnaire does not declare (kept; reported once per variable and code, row 0).
    UndeclaredLabel,
    /// A person whose household is not among the used rows of the household file.
    UnknownHousehold,
    /// A person row that contradicts its household's row (response status, design columns).
    HouseholdMismatch,
    /// The response column disagrees with the disposition code (kept; the disposition decides).
    DispositionMismatch,
    /// A complete interview with no answer at all (kept).
    EmptyInterview,
    /// An interview date that is not an ISO 8601 date (kept).
    InvalidDate,
    /// An interview date in the future, before the fieldwork start or after its end (kept).
    DateOutsideFieldwork,
    /// A workbook cell holding an error value (`#N/A`, `#DIV/0!`).
    ErrorCell,
}

impl FindingKind {
    /// Short machine-readable name (used in `quarantine.csv` and the summary).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MalformedRow => "malformed_row",
            FindingKind::InvalidEncoding => "invalid_encoding",
            FindingKind::NotANumber => "not_a_number",
            FindingKind::NotInteger => "not_integer",
            FindingKind::InvalidCode => "invalid_code",
            FindingKind::OutOfRange => "out_of_range",
            FindingKind::AnsweredNotAsked => "answered_not_asked",
            FindingKind::DuplicateId => "duplicate_id",
            FindingKind::MissingDesignValue => "missing_design_value",
            FindingKind::ControlCharacter => "control_character",
            FindingKind::InvalidWeight => "invalid_weight",
            FindingKind::InvalidResponse => "invalid_response",
            FindingKind::ItemNonresponse => "item_nonresponse",
            FindingKind::NonrespondentAnswers => "nonrespondent_answers",
            FindingKind::UndeclaredLabel => "undeclared_label",
            FindingKind::UnknownHousehold => "unknown_household",
            FindingKind::HouseholdMismatch => "household_mismatch",
            FindingKind::DispositionMismatch => "disposition_mismatch",
            FindingKind::EmptyInterview => "empty_interview",
            FindingKind::InvalidDate => "invalid_date",
            FindingKind::DateOutsideFieldwork => "date_outside_fieldwork",
            FindingKind::ErrorCell => "error_cell",
        }
    }

    /// True when a row with this finding cannot be used and is quarantined, unless the finding
    /// is an invalid answer whose cell was blanked (see [`Finding::action`]).
    pub fn quarantines(self) -> bool {
        !matches!(
            self,
            FindingKind::ItemNonresponse
                | FindingKind::NonrespondentAnswers
                | FindingKind::UndeclaredLabel
                | FindingKind::DispositionMismatch
                | FindingKind::EmptyInterview
                | FindingKind::InvalidDate
                | FindingKind::DateOutsideFieldwork
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation finding, located by data row (1 = first row after the header; 0 = the file's
/// dictionary) and column, with its own texts (the file's findings are kept as [`Findings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Data row number, 1-based, header excluded; 0 for findings about the file's dictionary.
    pub row: u64,
    /// The row's id as written (empty when unreadable).
    pub id: String,
    /// Column concerned (empty for whole-row problems).
    pub column: String,
    /// The offending value as written.
    pub value: String,
    /// Kind.
    pub kind: FindingKind,
    /// Human-readable reason.
    pub reason: String,
    /// What was done: row kept, cell blanked, or row quarantined.
    pub action: FindingAction,
}

/// Result of reading and validating a data file.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Used rows (respondents and unit nonrespondents), in input order, with derived variables.
    pub frame: Frame,
    /// Data row number (1-based) of each used row.
    pub row_numbers: Vec<u64>,
    /// Per used row: true for respondents.
    pub respondent: Vec<bool>,
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows excluded (each has at least one finding with action quarantined).
    pub rows_quarantined: u64,
    /// All findings, in row order; those with action [`FindingAction::Quarantined`] excluded
    /// their row.
    pub findings: Findings,
    /// SHA-256 of the data file, lower-case hex.
    pub sha256: String,
    /// Columns of the file that were not loaded (not declared, not needed).
    pub ignored_columns: Vec<String>,
    /// Questionnaire variables absent from the file (allowed when no expression or config key
    /// uses them).
    pub absent_variables: Vec<String>,
    /// Per used row: the AAPOR category of its disposition code (with dispositions only).
    pub outcomes: Option<Vec<Outcome>>,
    /// The delimiter a text file was read with (given or detected); `None` for other formats.
    pub delimiter: Option<u8>,
    /// Where a workbook's cells are, so findings can name them as Excel shows them; `None`
    /// for other formats.
    pub sheet: Option<SheetPlace>,
}

/// The sheet a workbook's data were read from and where its header is.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetPlace {
    /// Sheet name.
    pub sheet: String,
    /// The header's row on the sheet, from 0 (Excel row 1).
    pub header_row: u32,
    /// Each header name's column on the sheet, from 0 (Excel column A).
    pub columns: HashMap<String, u32>,
}

impl SheetPlace {
    /// Data row `row` (from 1) of `column` as Excel names the cell (`data!J6`); the whole row
    /// (`data!6:6`) for a row-level finding or a column the sheet does not have.
    pub fn cell(&self, row: u64, column: &str) -> String {
        let sheet_row = u64::from(self.header_row) + row;
        match self.columns.get(column) {
            Some(&c) => workbook::cell_name_at(&self.sheet, sheet_row, c),
            None => format!(
                "{}!{}:{}",
                workbook::sheet_reference(&self.sheet),
                sheet_row + 1,
                sheet_row + 1
            ),
        }
    }
}

impl Ingested {
    /// Rows used.
    pub fn rows_used(&self) -> u64 {
        self.frame.n_rows() as u64
    }
}

/// Errors that stop ingest altogether (as opposed to findings, which quarantine rows).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {message}")]
    Io {
        /// Data file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The data path is not a regular file.
    #[error(
        "{path}: is {kind}, not a file; the data must be a regular file, since it is read and \
         hashed in one pass by two readers: save the stream to a file first and give its path"
    )]
    NotAFile {
        /// Data path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Disposition codes that `[dispositions]` does not map.
    #[error(
        "{path}: column {column}: disposition code(s) not mapped to a category in [dispositions]: {codes}; add each code to one category of [dispositions] (or correct the rows)"
    )]
    UnmappedDisposition {
        /// Data file.
        path: PathBuf,
        /// Disposition column.
        column: String,
        /// The codes, each with its data rows (at most ten listed).
        codes: String,
    },
    /// Extension is none of .csv, .tsv, .tab, .parquet, .sav, .zsav, .por, .dta.
    #[error(
        "{path}: unsupported data file type; use a .csv or .parquet file (or a tab-separated \
         .tsv or .tab file), an SPSS (.sav, .zsav, .por) or Stata (.dta) file, or a workbook \
         (.xlsx, .xlsm, .xls, .ods)"
    )]
    UnsupportedFormat {
        /// Data file.
        path: PathBuf,
    },
    /// The file declares more rows than the machine can hold.
    #[error(
        "{path}: {rows} rows × {columns} loaded columns {message}; load fewer columns (declare only the variables the run needs) or split the file"
    )]
    TooLarge {
        /// Data file.
        path: PathBuf,
        /// Rows the file declares.
        rows: u64,
        /// Columns to load.
        columns: usize,
        /// The memory needed and available.
        message: String,
    },
    /// The file's size changed between opening it and reading its end.
    #[error(
        "{path}: the file changed while it was read ({before} bytes when opened, {after} bytes \
         at the end): it is still being written or copied; run again once it is complete"
    )]
    ChangedWhileRead {
        /// Data file.
        path: PathBuf,
        /// Size when opened.
        before: u64,
        /// Bytes read, or the size at the end.
        after: u64,
    },
    /// The file has no header or no data rows.
    #[error("{path}: {message}")]
    Empty {
        /// Data file.
        path: PathBuf,
        /// Which.
        message: String,
    },
    /// The workbook has no sheet of the configured name.
    #[error(
        "{path}: the workbook has no sheet \"{sheet}\"; its sheets are: {sheets}; set [data] \
         sheet to one of them"
    )]
    SheetNotFound {
        /// Data file.
        path: PathBuf,
        /// Configured sheet.
        sheet: String,
        /// The workbook's sheets.
        sheets: String,
    },
    /// A workbook's header cell is empty, repeated or an error.
    #[error("{path}: header cell {cell} {message}")]
    HeaderCell {
        /// Data file.
        path: PathBuf,
        /// The cell as Excel names it (`Sheet1!C1`).
        cell: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The file is not valid CSV/Parquet.
    #[error("{path}: not a readable {format} file: {message}")]
    Malformed {
        /// Data file.
        path: PathBuf,
        /// Expected format.
        format: &'static str,
        /// Parser message.
        message: String,
    },
    /// A text file's delimiter or decimal mark does not fit its header.
    #[error("{path}: {message}")]
    TextFormat {
        /// Data file.
        path: PathBuf,
        /// What does not fit and what to do.
        message: String,
    },
    /// Columns required by the questionnaire or the config are absent.
    #[error("{path}: missing column(s) {columns}; the file has: {available}")]
    MissingColumns {
        /// Data file.
        path: PathBuf,
        /// Missing names, comma separated.
        columns: String,
        /// Columns present (abridged).
        available: String,
    },
    /// A column name occurs twice in the header.
    #[error("{path}: column {column} appears more than once in the header")]
    DuplicateColumn {
        /// Data file.
        path: PathBuf,
        /// Column.
        column: String,
    },
    /// A Parquet column has a type that cannot hold survey values.
    #[error(
        "{path}: column {column} has Arrow type {data_type}, which cannot be read as survey data"
    )]
    UnsupportedType {
        /// Data file.
        path: PathBuf,
        /// Column.
        column: String,
        /// Arrow type.
        data_type: String,
    },
    /// A variable of an SPSS/Stata file has a storage type the questionnaire does not allow
    /// (text where it declares numbers).
    #[error("{path}: variable {column}: {message}")]
    ColumnType {
        /// Data file.
        path: PathBuf,
        /// Variable.
        column: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Skip-logic rules depend on each other in a cycle, or cannot be evaluated.
    #[error("{path}: skip logic of {variable}: {message}")]
    SkipLogic {
        /// Questionnaire file.
        path: PathBuf,
        /// Variable.
        variable: String,
        /// What failed.
        message: String,
    },
    /// A derived variable could not be computed.
    #[error("derived variables: {0}")]
    Derived(String),
}

/// The data file is read and hashed by two readers at once (and Parquet, SPSS and Stata files
/// are read out of order), so a pipe would hand each reader part of the stream and a device would
/// never end: only regular files are read.
fn refuse_streams(path: &Path) -> Result<(), IngestError> {
    let metadata = std::fs::metadata(path).map_err(|e| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if metadata.is_file() {
        return Ok(());
    }
    let kind = if metadata.is_dir() {
        "a folder"
    } else {
        "a pipe, socket or device"
    };
    Err(IngestError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// Read `spec.path` and validate it against `questionnaire`.
///
/// Loads every questionnaire variable plus the id, response, design and required columns;
/// other columns of the file are ignored (listed in `ignored_columns`).
pub fn read(spec: &IngestSpec, questionnaire: &Questionnaire) -> Result<Ingested, IngestError> {
    read_with_progress(spec, questionnaire, &crate::progress::Silent)
}

/// [`read`], telling `progress` how much of the file has been read (rows of a Parquet file,
/// bytes of a CSV file; SPSS and Stata files at the end only).
pub fn read_with_progress(
    spec: &IngestSpec,
    questionnaire: &Questionnaire,
    progress: &dyn crate::progress::Progress,
) -> Result<Ingested, IngestError> {
    let path = spec.path.as_path();
    refuse_streams(path)?;
    progress.start("ingest", 1);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut delimiter = None;
    let raw = match extension.as_deref() {
        Some(text @ ("csv" | "tsv" | "tab")) => {
            let mut format = spec.text_format;
            if text != "csv" {
                format.delimiter = format.delimiter.or(Some(b'\t'));
            }
            let (raw, used) = csv_reader::read_csv(
                path,
                &|name| column_plan(name, spec, questionnaire),
                &spec.na,
                &format,
                !spec.without_sha256,
                progress,
            )?;
            delimiter = Some(used);
            raw
        }
        Some("parquet") | Some("pq") => read::read_parquet(
            path,
            &|name| column_plan(name, spec, questionnaire),
            &spec.na,
            !spec.without_sha256,
            progress,
        )?,
        Some("sav") | Some("zsav") => {
            sav::read_sav(path, &|name| column_plan(name, spec, questionnaire))?
        }
        Some("dta") => dta::read_dta(path, &|name| column_plan(name, spec, questionnaire))?,
        Some("por") => por::read_por(path, &|name| column_plan(name, spec, questionnaire))?,
        Some("xlsx" | "xlsm" | "xls" | "ods") => {
            let read = || {
                workbook::read_workbook(
                    path,
                    spec.sheet.as_deref(),
                    &|name| column_plan(name, spec, questionnaire),
                    &spec.na,
                )
            };
            read::hashed_beside(path, read)?
        }
        _ => {
            return Err(IngestError::UnsupportedFormat {
                path: path.to_path_buf(),
            });
        }
    };
    let ingested = validate(raw, spec, questionnaire).map(|mut i| {
        i.delimiter = delimiter;
        i
    });
    progress.finish();
    ingested
}

/// How a header column is loaded.
#[derive(Debug, Clone)]
pub(crate) enum ColumnPlan {
    /// Declared by the questionnaire: typed and checked.
    Declared(CellRules),
    /// Needed by the config but not declared: type inferred from the values.
    Inferred,
    /// Not needed.
    Ignore,
}

impl IngestSpec {
    /// The frame column that identifies a row: the id column, or the row numbers.
    pub fn id_column(&self) -> &str {
        self.id.as_deref().unwrap_or(ROW_ID)
    }
}

fn needed_columns(spec: &IngestSpec) -> Vec<&str> {
    let mut v: Vec<&str> = spec.id.iter().map(String::as_str).collect();
    v.extend(spec.response.as_deref());
    v.extend(spec.design_columns.iter().map(String::as_str));
    v.extend(spec.positive_columns.iter().map(String::as_str));
    v.extend(spec.required_columns.iter().map(String::as_str));
    if let Some(d) = &spec.dispositions {
        v.push(&d.column);
        v.extend(d.interview_date.as_deref());
    }
    v
}

fn column_plan(name: &str, spec: &IngestSpec, q: &Questionnaire) -> ColumnPlan {
    if let Some(v) = q.variable(name) {
        ColumnPlan::Declared(CellRules::from_variable(v).with_na(&spec.na))
    } else if needed_columns(spec).contains(&name)
        || spec.optional_columns.iter().any(|c| c == name)
        || spec
            .column_patterns
            .iter()
            .any(|p| matches_pattern(p, name))
    {
        ColumnPlan::Inferred
    } else {
        ColumnPlan::Ignore
    }
}

/// Columns as read, before row-level validation.
pub(crate) struct RawTable {
    pub builders: Vec<ColumnBuilder>,
    pub n_rows: usize,
    /// Cell-level findings collected while reading: (row index 0-based, column, value, problem).
    pub cell_problems: CellProblems,
    /// Whole-row problems: (row index, kind, message).
    pub row_problems: Vec<(usize, FindingKind, String)>,
    pub sha256: String,
    pub ignored: Vec<String>,
    pub header: Vec<String>,
    /// Findings about the file's dictionary (SPSS/Stata value labels and missing values):
    /// (column, code, reason); reported with row 0, never quarantining.
    pub file_findings: Vec<(String, String, String)>,
    /// A workbook's sheet and where its cells are.
    pub sheet: Option<SheetPlace>,
}

fn validate(raw: RawTable, spec: &IngestSpec, q: &Questionnaire) -> Result<Ingested, IngestError> {
    let path = spec.path.clone();
    let RawTable {
        builders,
        n_rows,
        cell_problems,
        row_problems,
        sha256,
        ignored,
        header,
        file_findings,
        sheet,
    } = raw;

    // Every column the config names and every variable an expression reads must be present;
    // declared variables nothing uses may be absent (one questionnaire, several file layouts).
    let present: Vec<&str> = builders.iter().map(|b| b.name.as_str()).collect();
    let referenced = referenced_variables(q);
    let mut missing: Vec<String> = needed_columns(spec)
        .into_iter()
        .map(str::to_string)
        .chain(
            referenced
                .iter()
                .filter(|n| q.variable(n).is_some())
                .cloned(),
        )
        .filter(|n| !present.contains(&n.as_str()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    missing.retain(|m| seen.insert(m.clone()));
    for pattern in &spec.column_patterns {
        if !present.iter().any(|n| matches_pattern(pattern, n)) {
            missing.push(pattern.clone());
        }
    }
    let absent_declared: Vec<String> = q
        .variables
        .iter()
        .map(|v| v.name.clone())
        .filter(|n| !present.contains(&n.as_str()))
        .collect();
    if !missing.is_empty() {
        let mut available = header
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if header.len() > 12 {
            available.push_str(&format!(", … ({} columns)", header.len()));
        }
        return Err(IngestError::MissingColumns {
            path,
            columns: missing.join(", "),
            available,
        });
    }

    // Keep the blank masks: skip logic needs to tell a blank from a declared missing code.
    let mut builders = builders;
    let blanks: HashMap<String, Vec<bool>> = builders
        .iter_mut()
        .map(|b| (b.name.clone(), std::mem::take(&mut b.blank)))
        .collect();
    let mut frame = Frame::new(n_rows);
    for b in builders {
        frame.push(b.finish()).map_err(|e| IngestError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
    }
    if spec.id.is_none() {
        let column = crate::frame::Column {
            name: ROW_ID.to_string(),
            data: ColumnData::Num((1..=n_rows).map(|r| r as f64).collect()),
            state: crate::frame::States::AllValue(n_rows),
        };
        frame
            .push(column)
            .map_err(|_| IngestError::DuplicateColumn {
                path: path.clone(),
                column: format!(
                    "{ROW_ID} (the name cvsurvey gives the row numbers when [data] id is not set: \
                 name the file's id column in [data] id, or rename the column {ROW_ID})"
                ),
            })?;
    }
    let mut blanks = blanks;
    blanks
        .entry(spec.id_column().to_string())
        .or_insert_with(|| vec![false; n_rows]);

    // Columns where an invalid value makes the row unusable (in every row; the weighting's
    // variables in respondents' rows, the only rows calibration reads); elsewhere an invalid
    // answer can be blanked.
    let mut all_rows_columns: std::collections::HashSet<&str> = needed_columns(spec)
        .into_iter()
        .chain([spec.id_column()])
        .collect();
    all_rows_columns.extend(
        q.variables
            .iter()
            .filter(|v| v.frame)
            .map(|v| v.name.as_str()),
    );
    let blankable = |column: &str, respondent: bool| {
        q.variable(column).is_some()
            && !all_rows_columns.contains(column)
            && !(respondent && spec.unit_columns.iter().any(|c| c == column))
    };
    // Cells blanked by editing, per column (only columns with at least one).
    let mut edited: HashMap<String, Vec<bool>> = HashMap::new();
    let mut findings = FindingsBuilder::default();
    for (row, kind, message) in row_problems {
        findings.push(row, "", "", kind, &message);
    }
    // Reasons by column and problem, made once: most cells of a bad column share one.
    let mut reasons: HashMap<(u32, CellReason), u32> = HashMap::new();
    findings.reserve(cell_problems.len());
    for (row, column, value, problem) in cell_problems.iter() {
        let column_id = findings.column(column);
        let kind = match problem {
            CellProblem::NotANumber => FindingKind::NotANumber,
            CellProblem::NotInteger => FindingKind::NotInteger,
            CellProblem::InvalidCode => FindingKind::InvalidCode,
            CellProblem::OutOfRange { .. } => FindingKind::OutOfRange,
            CellProblem::ErrorCell { .. } => FindingKind::ErrorCell,
        };
        let key = match problem {
            CellProblem::OutOfRange { low, high } => {
                CellReason::Range(low.to_bits(), high.to_bits())
            }
            // The reason names the cell: one per cell.
            CellProblem::ErrorCell { .. } => CellReason::Cell(row),
            _ => CellReason::Kind(kind),
        };
        let reason = match reasons.get(&(column_id, key)) {
            Some(&reason) => reason,
            None => {
                let reason = findings.reason(&cell_reason(q, column, problem));
                reasons.insert((column_id, key), reason);
                reason
            }
        };
        findings.push_with(row, column_id, value, kind, reason);
    }
    drop(cell_problems);

    // Response status.
    let mut respondent = vec![true; n_rows];
    if let Some(resp) = spec.response.as_deref() {
        let col = frame.column(resp).expect("checked present");
        // The usual response column: 0/1 in every row, as bytes; nothing to report.
        let zero_one = match &col.data {
            ColumnData::Num(v) if matches!(col.state, States::AllValue(_)) => {
                match v.stored(0..v.len()) {
                    StoredValues::Byte(bytes) if bytes.iter().all(|&b| b <= 1) => Some(bytes),
                    _ => None,
                }
            }
            _ => None,
        };
        match zero_one {
            Some(bytes) => respondent
                .iter_mut()
                .zip(bytes)
                .for_each(|(is_resp, &b)| *is_resp = b == 1),
            None => {
                for (r, is_resp) in respondent.iter_mut().enumerate() {
                    if col.state[r] != CellState::Value {
                        continue;
                    }
                    let status = match &col.data {
                        ColumnData::Num(v) if v[r] == 1.0 => Some(true),
                        ColumnData::Num(v) if v[r] == 0.0 => Some(false),
                        ColumnData::Num(_) => None,
                        ColumnData::Text { codes, levels } => {
                            match levels[codes[r] as usize].as_str() {
                                "1" => Some(true),
                                "0" => Some(false),
                                _ => None,
                            }
                        }
                    };
                    match status {
                        Some(true) => {}
                        Some(false) => *is_resp = false,
                        None => findings.push(
                            r,
                            resp,
                            &col.display(r).unwrap_or_default(),
                            FindingKind::InvalidResponse,
                            "response must be 1 (respondent) or 0 (nonrespondent)",
                        ),
                    }
                }
            }
        }
    }

    let outcomes = match &spec.dispositions {
        Some(d) => Some(dispositions(
            &frame,
            spec,
            d,
            &mut respondent,
            &mut findings,
        )?),
        None => None,
    };

    // Editing: invalid answers (so far the only findings on answer columns) are blanked and read
    // on as a blank written in the file, so that skip logic makes them item nonresponse or not
    // asked and derived variables see them missing.
    if spec.invalid_answer == InvalidAnswer::Blank {
        // Per column (by number): may it be blanked in a nonrespondent's row, a respondent's.
        let columns: Vec<(String, [bool; 2])> = findings
            .column_names()
            .into_iter()
            .map(|c| (c.to_string(), [blankable(c, false), blankable(c, true)]))
            .collect();
        type Masks = (Option<Vec<bool>>, Vec<bool>);
        let mut masks: Vec<Option<Masks>> = vec![None; columns.len()];
        for f in &mut findings.records {
            let row = f.row as usize;
            let invalid_answer = matches!(
                f.kind,
                FindingKind::NotANumber
                    | FindingKind::NotInteger
                    | FindingKind::InvalidCode
                    | FindingKind::OutOfRange
                    | FindingKind::ErrorCell
            );
            let (column, can_blank) = &columns[f.column as usize];
            if !invalid_answer || !can_blank[usize::from(respondent[row])] {
                continue;
            }
            // The column's blank mask (moved out of `blanks` while blanking) and edited cells.
            let (mask, edits) = masks[f.column as usize]
                .get_or_insert_with(|| (blanks.remove(column.as_str()), vec![false; n_rows]));
            if let Some(mask) = mask {
                mask[row] = true;
            }
            edits[row] = true;
            f.action = FindingAction::Blanked;
        }
        for (k, masks) in masks.into_iter().enumerate() {
            if let Some((mask, edits)) = masks {
                let column = columns[k].0.clone();
                if let Some(mask) = mask {
                    blanks.insert(column.clone(), mask);
                }
                edited.insert(column, edits);
            }
        }
    }

    // Design fields: present everywhere; weights finite and > 0.
    let mut design_cols: Vec<&str> = vec![spec.id_column()];
    design_cols.extend(spec.response.as_deref());
    design_cols.extend(spec.dispositions.as_ref().map(|d| d.column.as_str()));
    design_cols.extend(spec.design_columns.iter().map(String::as_str));
    design_cols.extend(spec.positive_columns.iter().map(String::as_str));
    let mut checked = std::collections::HashSet::new();
    for name in design_cols {
        if !checked.insert(name) {
            continue;
        }
        let col = frame.column(name).expect("checked present");
        let blank = &blanks[name];
        // A column without a blank or missing cell (the usual design column) has nothing here.
        if matches!(col.state, States::AllValue(_)) && !blank.contains(&true) {
            continue;
        }
        // Cells of this column that already have a finding (a design value that is not a
        // number, say), in one pass over the findings: looking each cell up in the findings
        // was quadratic when most cells have one.
        let mut has_finding = vec![false; n_rows];
        let column = findings.column(name);
        for f in findings.records.iter().filter(|f| f.column == column) {
            has_finding[f.row as usize] = true;
        }
        for r in 0..n_rows {
            if blank[r] {
                findings.push(
                    r,
                    name,
                    "",
                    FindingKind::MissingDesignValue,
                    "design field is blank",
                );
            } else if col.state[r] != CellState::Value && !has_finding[r] {
                findings.push(
                    r,
                    name,
                    &col.display(r).unwrap_or_default(),
                    FindingKind::MissingDesignValue,
                    "design field holds a missing-value code",
                );
            }
        }
    }
    // Control characters in the text of an id, design or frame value: a stratum "A\0" would
    // otherwise be a stratum of its own that prints like "A".
    let mut identifying: Vec<&str> = checked.iter().copied().collect();
    identifying.extend(
        q.variables
            .iter()
            .filter(|v| v.frame)
            .map(|v| v.name.as_str()),
    );
    identifying.sort_unstable();
    identifying.dedup();
    for name in identifying {
        let Some(col) = frame.column(name) else {
            continue;
        };
        let ColumnData::Text { codes, levels } = &col.data else {
            continue;
        };
        let bad_level: Vec<bool> = levels
            .iter()
            .map(|l| l.chars().any(char::is_control))
            .collect();
        if !bad_level.contains(&true) {
            continue;
        }
        for (r, &code) in codes.iter().enumerate() {
            if col.state[r] == CellState::Value && bad_level[code as usize] {
                findings.push(
                    r,
                    name,
                    &levels[code as usize].escape_debug().to_string(),
                    FindingKind::ControlCharacter,
                    "id, design and frame values may not hold control characters (tabs, NUL \
                     bytes, line breaks); clean the value in the file",
                );
            }
        }
    }
    for name in &spec.positive_columns {
        let col = frame.column(name).expect("checked present");
        match &col.data {
            // Every cell a value, finite and positive (the usual weight column): nothing to report.
            ColumnData::Num(v)
                if matches!(col.state, States::AllValue(_))
                    && match v.stored(0..v.len()) {
                        StoredValues::Wide(w) => w.iter().all(|x| x.is_finite() && *x > 0.0),
                        StoredValues::Byte(b) => b.iter().all(|&b| b != 0 && b != NO_BYTE),
                    } => {}
            ColumnData::Num(v) => {
                for r in 0..n_rows {
                    if col.state[r] == CellState::Value && !(v[r].is_finite() && v[r] > 0.0) {
                        findings.push(
                            r,
                            name,
                            &crate::frame::format_number(v[r]),
                            FindingKind::InvalidWeight,
                            "weight must be a finite number > 0",
                        );
                    }
                }
            }
            ColumnData::Text { .. } => {
                for r in 0..n_rows {
                    if col.state[r] == CellState::Value {
                        findings.push(
                            r,
                            name,
                            &col.display(r).unwrap_or_default(),
                            FindingKind::InvalidWeight,
                            "weight must be a finite number > 0",
                        );
                    }
                }
            }
        }
    }

    // Duplicate ids: every occurrence is quarantined, since nothing tells which record is right.
    // Ids are grouped by their stored value (number bits or text code), not by formatted text.
    {
        let col = frame.column(spec.id_column()).expect("checked present");
        let key = |r: usize| -> Option<u64> {
            if col.state[r] != CellState::Value {
                return None;
            }
            Some(match &col.data {
                ColumnData::Num(v) => v[r].to_bits(),
                ColumnData::Text { codes, .. } => u64::from(codes[r]),
            })
        };
        // Ids usually come in increasing order (numbers, or text codes, which are numbered in
        // order of first appearance): then they are distinct, and one pass says so.
        let increasing = match &col.data {
            ColumnData::Num(v) => (1..v.len()).all(|r| v[r - 1] < v[r]),
            ColumnData::Text { codes, .. } => codes.windows(2).all(|w| w[0] < w[1]),
        } && col.state.iter().all(|&s| s == CellState::Value);
        let mut keyed: Vec<(u64, usize)> = if increasing {
            Vec::new()
        } else {
            (0..n_rows).filter_map(|r| key(r).map(|k| (k, r))).collect()
        };
        keyed.sort_unstable();
        // Groups of equal keys, rows ascending within a group; groups by their first row.
        let mut duplicated: Vec<Vec<usize>> = keyed
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|g| g.len() > 1)
            .map(|g| g.iter().map(|&(_, r)| r).collect())
            .collect();
        duplicated.sort_unstable_by_key(|rows| rows[0]);
        for rows in &duplicated {
            let id = col.display(rows[0]).unwrap_or_default();
            findings.push_duplicates(rows, spec.id_column(), &id);
        }
    }

    if let Some(link) = &spec.household_link {
        link.check(&frame, &respondent, &mut findings);
    }
    if let (Some(d), Some(outcomes)) = (&spec.dispositions, &outcomes) {
        check_returns(&frame, q, spec, d, outcomes, &blanks, &mut findings);
    }

    let editing = Editing {
        invalid_answer: spec.invalid_answer,
        blankable: &blankable,
        edited: &edited,
    };
    resolve_item_states(
        &mut frame,
        &blanks,
        &respondent,
        q,
        spec,
        &editing,
        &mut findings,
    )?;

    // Assemble findings and the used rows; ids as written, once per row with findings.
    let id_column = frame.column(spec.id_column()).expect("checked present");
    let findings = findings.finish(file_findings, |row, out| id_column.display_into(row, out));
    let mut quarantined = vec![false; n_rows];
    for f in findings.iter() {
        if f.action == FindingAction::Quarantined {
            quarantined[f.row as usize - 1] = true;
        }
    }
    // Nothing quarantined (the usual case): the columns and row flags are kept as they are.
    let (mut frame, respondent, outcomes, row_numbers) = if quarantined.contains(&true) {
        let used: Vec<usize> = (0..n_rows).filter(|&r| !quarantined[r]).collect();
        (
            frame.take(&used),
            used.iter().map(|&r| respondent[r]).collect(),
            outcomes.map(|o| used.iter().map(|&r| o[r]).collect()),
            used.iter().map(|&r| r as u64 + 1).collect::<Vec<u64>>(),
        )
    } else {
        (frame, respondent, outcomes, (1..=n_rows as u64).collect())
    };
    let rows_quarantined = (n_rows - row_numbers.len()) as u64;
    match &spec.derived {
        None => q.add_derived(&mut frame),
        Some(needed) => q.add_derived_needed(&mut frame, needed),
    }
    .map_err(|e| IngestError::Derived(e.to_string()))?;

    let ingested = Ingested {
        frame,
        row_numbers,
        respondent,
        rows_read: n_rows as u64,
        rows_quarantined,
        findings,
        sha256,
        ignored_columns: ignored,
        absent_variables: absent_declared,
        outcomes,
        delimiter: None,
        sheet,
    };
    assert_eq!(
        ingested.rows_read,
        ingested.rows_used() + ingested.rows_quarantined,
        "row accounting"
    );
    Ok(ingested)
}

/// The AAPOR category of every row's disposition code; the respondents are those the map says
/// respond. With a response column too, a row where it says otherwise is a finding (the
/// disposition decides). A code the map lacks stops ingest, naming the codes and their rows.
fn dispositions(
    frame: &Frame,
    spec: &IngestSpec,
    d: &DispositionSpec,
    respondent: &mut [bool],
    findings: &mut FindingsBuilder,
) -> Result<Vec<Outcome>, IngestError> {
    const LISTED_ROWS: usize = 10;
    const LISTED_CODES: usize = 10;
    let col = frame.column(&d.column).expect("checked present");
    let n_rows = respondent.len();
    // A blank code quarantines the row (a design field); its outcome is never read.
    let mut outcomes = vec![Outcome::UnknownEligibility; n_rows];
    let mut unmapped: Vec<(String, Vec<usize>)> = Vec::new();
    let mut codes = vec![None; n_rows];
    for (r, outcome) in outcomes.iter_mut().enumerate() {
        let Some(code) = col.display(r) else {
            continue;
        };
        match d.map.outcome(&code) {
            Some(o) => *outcome = o,
            None => match unmapped.iter_mut().find(|(c, _)| *c == code) {
                Some((_, rows)) => rows.push(r),
                None => unmapped.push((code.clone(), vec![r])),
            },
        }
        codes[r] = Some(code);
    }
    if !unmapped.is_empty() {
        let listed: Vec<String> = unmapped
            .iter()
            .take(LISTED_CODES)
            .map(|(code, rows)| {
                let shown: Vec<String> = rows
                    .iter()
                    .take(LISTED_ROWS)
                    .map(|r| (r + 1).to_string())
                    .collect();
                let more = if rows.len() > LISTED_ROWS {
                    format!(" and {} more", rows.len() - LISTED_ROWS)
                } else {
                    String::new()
                };
                format!(
                    "\"{code}\" (row{} {}{more})",
                    if rows.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                )
            })
            .collect();
        let more = if unmapped.len() > LISTED_CODES {
            format!(" and {} more codes", unmapped.len() - LISTED_CODES)
        } else {
            String::new()
        };
        return Err(IngestError::UnmappedDisposition {
            path: spec.path.clone(),
            column: d.column.clone(),
            codes: format!("{}{more}", listed.join(", ")),
        });
    }
    let response = spec.response.as_deref().and_then(|c| frame.column(c));
    for r in 0..n_rows {
        let Some(code) = &codes[r] else {
            continue;
        };
        let responds = d.map.is_respondent(outcomes[r]);
        if let (Some(column), Some(col)) = (spec.response.as_deref(), response) {
            let stated = match col.display(r).as_deref() {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            };
            if stated.is_some_and(|s| s != responds) {
                let category = outcomes[r].config_key();
                findings.push(
                    r,
                    column,
                    &col.display(r).unwrap_or_default(),
                    FindingKind::DispositionMismatch,
                    &format!(
                        "disposition {} is {code} ({category}), a {}: the disposition decides; correct one of the two",
                        d.column,
                        if responds { "respondent" } else { "nonrespondent" }
                    ),
                );
            }
        }
        respondent[r] = responds;
    }
    Ok(outcomes)
}

/// Findings on the returns themselves: a complete interview without a single answer, and
/// interview dates that are unreadable, in the future or outside the fieldwork period.
fn check_returns(
    frame: &Frame,
    q: &Questionnaire,
    spec: &IngestSpec,
    d: &DispositionSpec,
    outcomes: &[Outcome],
    blanks: &HashMap<String, Vec<bool>>,
    findings: &mut FindingsBuilder,
) {
    let n_rows = outcomes.len();
    let needed = needed_columns(spec);
    let answers: Vec<&Vec<bool>> = q
        .variables
        .iter()
        .filter(|v| !v.frame && !needed.contains(&v.name.as_str()))
        .filter_map(|v| blanks.get(&v.name))
        .collect();
    if !answers.is_empty() {
        let codes = frame.column(&d.column).expect("checked present");
        for r in 0..n_rows {
            if outcomes[r] == Outcome::Complete && answers.iter().all(|blank| blank[r]) {
                findings.push(
                    r,
                    &d.column,
                    &codes.display(r).unwrap_or_default(),
                    FindingKind::EmptyInterview,
                    "a complete interview with no answer at all: check the return, or code it as the non-interview it is",
                );
            }
        }
    }
    let Some(name) = &d.interview_date else {
        return;
    };
    let col = frame.column(name).expect("checked present");
    for r in 0..n_rows {
        let Some(text) = col.display(r) else {
            continue;
        };
        let problem = match Date::parse(&text) {
            None => Some((
                FindingKind::InvalidDate,
                "not an ISO 8601 date (YYYY-MM-DD)".to_string(),
            )),
            Some(date) if date > d.today => Some((
                FindingKind::DateOutsideFieldwork,
                format!("in the future (today is {})", d.today),
            )),
            Some(date) if d.start.is_some_and(|s| date < s) => Some((
                FindingKind::DateOutsideFieldwork,
                format!(
                    "before the fieldwork start, {}",
                    d.start.map(|s| s.to_string()).unwrap_or_default()
                ),
            )),
            Some(date) if d.end.is_some_and(|e| date > e) => Some((
                FindingKind::DateOutsideFieldwork,
                format!(
                    "after the fieldwork end, {}",
                    d.end.map(|e| e.to_string()).unwrap_or_default()
                ),
            )),
            Some(_) => None,
        };
        if let Some((kind, reason)) = problem {
            findings.push(r, name, &text, kind, &reason);
        }
    }
}

/// What a cell problem's reason depends on besides its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CellReason {
    Kind(FindingKind),
    /// The bounds' bits.
    Range(u64, u64),
    /// A workbook error cell, by data row.
    Cell(usize),
}

/// The reason written for a cell problem of `column`.
fn cell_reason(q: &Questionnaire, column: &str, problem: &CellProblem) -> String {
    match problem {
        CellProblem::NotANumber => "not a number".to_string(),
        CellProblem::NotInteger => "not a whole number".to_string(),
        CellProblem::InvalidCode => {
            let codes = q
                .variable(column)
                .map(|v| {
                    v.codes
                        .iter()
                        .map(|c| c.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("not a declared code (valid: {codes})")
        }
        CellProblem::OutOfRange { low, high } => {
            format!("outside the valid range [{low}, {high}]")
        }
        CellProblem::ErrorCell { cell } => {
            format!("{cell} holds an error value instead of an answer; correct the cell")
        }
    }
}

/// Every variable read by an expression of the questionnaire (skip logic, derived variables,
/// indicators).
fn referenced_variables(q: &Questionnaire) -> Vec<String> {
    let mut names = Vec::new();
    let exprs = q
        .variables
        .iter()
        .filter_map(|v| v.asked_if.as_ref())
        .chain(q.derived.iter().map(|d| &d.expr))
        .chain(q.indicators.iter().flat_map(|i| {
            [&i.value, &i.numerator, &i.denominator, &i.universe]
                .into_iter()
                .flatten()
        }));
    for e in exprs {
        for v in e.variables() {
            if !names.contains(&v) {
                names.push(v);
            }
        }
    }
    names
}

/// Apply unit nonresponse and skip logic to item cells.
///
/// Unit nonrespondents: item (non-frame) cells become NotAsked; recorded answers are a finding.
/// Respondents: `asked_if` is evaluated on the states of the variables it reads, once those are
/// resolved; a blank becomes NotAsked where the question was not asked and NoResponse (item
/// nonresponse, a kept finding) where it was; an answer where it was not asked quarantines the row.
///
/// Variables are resolved in waves: every variable whose rules' inputs are resolved, evaluated and
/// applied in parallel (each variable only changes its own column, and findings are sorted
/// afterwards, so the result does not depend on the number of threads).
fn resolve_item_states(
    frame: &mut Frame,
    blanks: &HashMap<String, Vec<bool>>,
    respondent: &[bool],
    q: &Questionnaire,
    spec: &IngestSpec,
    editing: &Editing<'_>,
    findings: &mut FindingsBuilder,
) -> Result<(), IngestError> {
    let names: Vec<&str> = q.variables.iter().map(|v| v.name.as_str()).collect();
    // Declared but absent from this file (and used by nothing): nothing to resolve.
    let mut done: Vec<bool> = q
        .variables
        .iter()
        .map(|v| !blanks.contains_key(&v.name))
        .collect();
    let deps: Vec<Vec<usize>> = q
        .variables
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.asked_if
                .as_ref()
                .map(|e| e.variables())
                .unwrap_or_default()
                .iter()
                .filter_map(|d| names.iter().position(|n| n == d))
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    while done.iter().any(|d| !d) {
        let wave: Vec<usize> = (0..names.len())
            .filter(|&i| !done[i] && deps[i].iter().all(|&j| done[j]))
            .collect();
        if wave.is_empty() {
            let stuck = (0..names.len())
                .find(|&i| !done[i])
                .map(|i| names[i].to_string())
                .unwrap_or_default();
            return Err(IngestError::SkipLogic {
                path: q.source.clone(),
                variable: stuck,
                message: "asked_if rules refer to each other in a cycle".into(),
            });
        }
        let asked: Vec<Option<Vec<bool>>> = wave
            .par_iter()
            .map(|&i| {
                let v = &q.variables[i];
                v.asked_if
                    .as_ref()
                    .map(|expr| {
                        expr.eval_true(frame).map_err(|e| IngestError::SkipLogic {
                            path: q.source.clone(),
                            variable: v.name.clone(),
                            message: e.to_string(),
                        })
                    })
                    .transpose()
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<_, _>>()?;
        let wave_of = |name: &str| wave.iter().position(|&i| names[i] == name);
        let mut found: Vec<(usize, FindingsBuilder)> = frame
            .columns_mut()
            .par_iter_mut()
            .filter_map(|col| wave_of(&col.name).map(|k| (k, col)))
            .map(|(k, col)| {
                let v = &q.variables[wave[k]];
                let is_design = spec.id.as_deref() == Some(v.name.as_str())
                    || spec.response.as_deref() == Some(v.name.as_str())
                    || spec.design_columns.contains(&v.name)
                    || spec.positive_columns.contains(&v.name);
                let mut out = FindingsBuilder::default();
                let cells = Cells {
                    blank: &blanks[&v.name],
                    edited: editing.edited.get(&v.name).map(Vec::as_slice),
                    respondent,
                    asked: asked[k].as_deref(),
                };
                let can_blank = editing.invalid_answer == InvalidAnswer::Blank
                    && (editing.blankable)(&v.name, true);
                apply_skip_logic(col, v, &cells, is_design, can_blank, &mut out);
                (k, out)
            })
            .collect();
        found.sort_unstable_by_key(|(k, _)| *k);
        for (_, f) in found {
            findings.append(f);
        }
        for &i in &wave {
            done[i] = true;
        }
    }
    Ok(())
}

/// How invalid answers are edited, for [`resolve_item_states`].
struct Editing<'a> {
    invalid_answer: InvalidAnswer,
    /// True for a variable whose invalid answers may be blanked in a respondent's row (true)
    /// or a unit nonrespondent's (false).
    blankable: &'a (dyn Fn(&str, bool) -> bool + Sync),
    /// Cells blanked for an invalid value, per column.
    edited: &'a HashMap<String, Vec<bool>>,
}

/// What [`apply_skip_logic`] knows about the cells of one variable.
struct Cells<'a> {
    /// Blank in the file, or blanked by editing.
    blank: &'a [bool],
    /// Blanked by editing (these already have a finding), if any cell of the column was.
    edited: Option<&'a [bool]>,
    respondent: &'a [bool],
    /// Skip logic: asked in this row; `None`: asked of every respondent.
    asked: Option<&'a [bool]>,
}

/// Resolve the blank cells of one variable and report answers where none belong; an answer
/// where the question was not asked is blanked (it becomes not asked) when `can_blank`, and
/// quarantines the row otherwise.
fn apply_skip_logic(
    col: &mut crate::frame::Column,
    v: &crate::questionnaire::Variable,
    cells: &Cells<'_>,
    is_design: bool,
    can_blank: bool,
    findings: &mut FindingsBuilder,
) {
    let n = col.state.len();
    let asked = flag_of_every_cell(cells.asked, n, true);
    let edited = flag_of_every_cell(cells.edited, n, false);
    let outcome = SkipOutcome {
        all_rows: v.frame || is_design,
        is_design,
        can_blank,
    };
    // Each cell's new state and whether it needs a finding, without branches: nonrespondents'
    // rows and follow-up questions make the pending cells too many and too scattered for a
    // per-cell branch to be predicted.
    let mut codes = vec![0u8; n];
    for ((((code, &blank), &respondent), &asked), &edited) in codes
        .iter_mut()
        .zip(&cells.blank[..n])
        .zip(&cells.respondent[..n])
        .zip(asked.iter())
        .zip(edited.iter())
    {
        *code = outcome.code(blank, respondent, asked, edited);
    }
    if codes.iter().fold(0, |any, &c| any | c) & NEEDS_FINDING != 0 {
        // The findings show the cell as read, so they come before its state changes.
        for (r, code) in codes.iter_mut().enumerate() {
            if *code & NEEDS_FINDING != 0 {
                outcome.report(col, v, r, cells.blank[r], cells.respondent[r], findings);
                *code &= !NEEDS_FINDING;
            }
        }
    }
    col.state.overwrite(&codes);
}

/// The first `n` of `given`, or `otherwise` for every cell where no flags are given.
fn flag_of_every_cell(given: Option<&[bool]>, n: usize, otherwise: bool) -> Cow<'_, [bool]> {
    given.map_or_else(
        || Cow::Owned(vec![otherwise; n]),
        |flags| Cow::Borrowed(&flags[..n]),
    )
}

/// Bit of a [`SkipOutcome::code`] marking a cell that gets a finding.
const NEEDS_FINDING: u8 = 0x10;

/// What skip logic makes of the cells of one variable.
#[derive(Clone, Copy)]
struct SkipOutcome {
    /// Asked of every row, unit nonrespondents included (frame and design variables).
    all_rows: bool,
    is_design: bool,
    /// Editing blanks answers given where the question was not asked.
    can_blank: bool,
}

impl SkipOutcome {
    /// The cell's new state code ([`crate::frame::KEEP_STATE`] to keep it), with
    /// [`NEEDS_FINDING`] set where it gets a finding:
    /// - a unit nonrespondent's cell is not asked (an answer there is reported);
    /// - a blank where the question was asked is item nonresponse (reported unless it is a
    ///   design field, checked elsewhere, or a blanked invalid answer, reported with its value);
    /// - a blank where it was not asked is not asked;
    /// - an answer where it was not asked is reported, and not asked when editing blanks it.
    #[inline(always)]
    fn code(self, blank: bool, respondent: bool, asked: bool, edited: bool) -> u8 {
        let in_scope = respondent | self.all_rows;
        let not_asked = !in_scope | (!asked & (blank | self.can_blank));
        let no_response = in_scope & blank & asked;
        let finding = (!in_scope & !blank)
            | (no_response & !self.is_design & !edited)
            | (in_scope & !blank & !asked);
        let state = (u8::from(not_asked) * CellState::NotAsked as u8)
            | (u8::from(no_response) * CellState::NoResponse as u8)
            | (u8::from(!(not_asked | no_response)) * crate::frame::KEEP_STATE);
        state | (u8::from(finding) * NEEDS_FINDING)
    }

    /// The finding of row `r` (one [`SkipOutcome::code`] marks), and the answer blanked where
    /// editing blanks it.
    #[cold]
    fn report(
        self,
        col: &mut crate::frame::Column,
        v: &crate::questionnaire::Variable,
        r: usize,
        blank: bool,
        respondent: bool,
        findings: &mut FindingsBuilder,
    ) {
        if !(respondent | self.all_rows) {
            findings.push(
                r,
                &v.name,
                &col.display(r).unwrap_or_default(),
                FindingKind::NonrespondentAnswers,
                "answer recorded for a unit nonrespondent; ignored",
            );
        } else if blank {
            findings.push(
                r,
                &v.name,
                "",
                FindingKind::ItemNonresponse,
                "blank although the question was asked",
            );
        } else {
            let shown = col.display(r).unwrap_or_else(|| "(missing code)".into());
            let rule = v
                .asked_if
                .as_ref()
                .map(|e| e.source().to_string())
                .unwrap_or_default();
            findings.push(
                r,
                &v.name,
                &shown,
                FindingKind::AnsweredNotAsked,
                &format!("answered although not asked (asked_if: {rule})"),
            );
            if self.can_blank {
                findings.blank_last();
                match &mut col.data {
                    ColumnData::Num(values) => values.set(r, f64::NAN),
                    ColumnData::Text { codes, .. } => codes[r] = u32::MAX,
                }
            }
        }
    }
}

/// SHA-256 of an input file, with a read failure reported as an ingest error naming the file.
pub(crate) fn input_sha256(path: &Path) -> Result<String, IngestError> {
    sha256_file(path).map_err(|e| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Lower-case hex SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex_digest(hasher))
}

impl IngestError {
    /// The file `path` could not be opened or read.
    pub(crate) fn io(path: &Path, e: &dyn std::fmt::Display) -> IngestError {
        IngestError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Lower-case hex of a finished SHA-256.
pub(crate) fn hex_digest(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
