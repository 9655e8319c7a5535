//! `cvsurvey questionnaire import FORM.xlsx`: a questionnaire drafted from an XLSForm (the form
//! standard of ODK, KoboToolbox and SurveyCTO; <https://xlsform.org>).
//!
//! The `survey`, `choices` and `settings` sheets are read with `calamine` (sheet and column
//! names in any case, `list_name` or `list name`, `label::English (en)` language columns). Each
//! question becomes the variable(s) its export holds, named as the export names them (groups
//! flattened into the name, `select_multiple` items and geopoint parts as separate columns); a
//! data file's header (`--data`) tells which naming the export used. Skip rules and
//! calculations are translated by [`super::xpath`]; what is not translated is kept as a
//! comment naming the form row. A first repeat (a household roster) makes a survey of
//! households (the main form) and persons (the repeat). The mapping is documented in
//! `docs/questionnaire.md`, "Drafting from an XLSForm".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, open_workbook_auto};

use super::import::{comment_text, identifier, quote, toml_codes, toml_number, wrap};
use super::xpath::{
    FieldKind, FormField, SelectItem, constraint_range, translate_calculation, translate_relevant,
};
use super::{Level, Questionnaire, QuestionnaireError};
use crate::frame::format_number;

/// Errors of `questionnaire import FORM.xlsx`. Each names the workbook and, where there is
/// one, the cell as Excel shows it (`survey!A12`).
#[derive(Debug, thiserror::Error)]
pub enum XlsformError {
    /// The workbook could not be opened or read.
    #[error("{}: cannot read the workbook: {message}", path.display())]
    Open {
        /// The form.
        path: PathBuf,
        /// calamine's reason.
        message: String,
    },
    /// No sheet called `survey`.
    #[error(
        "{}: no `survey` sheet (sheets: {sheets}); an XLSForm has its questions on a sheet named survey",
        path.display()
    )]
    NoSurveySheet {
        /// The form.
        path: PathBuf,
        /// The sheets found.
        sheets: String,
    },
    /// A required column (`type`, `name`, choices' `list_name`) is missing.
    #[error(
        "{}: sheet {sheet} has no `{column}` column (its header: {header}); add it to the sheet's first row",
        path.display()
    )]
    MissingColumn {
        /// The form.
        path: PathBuf,
        /// The sheet.
        sheet: String,
        /// The column wanted.
        column: &'static str,
        /// The header found.
        header: String,
    },
    /// A `select_one`/`select_multiple` names a list the choices sheet does not have.
    #[error(
        "{}: {cell}: `{question}` selects from list {list:?}, which the choices sheet does not have (lists: {lists}); add the list or correct the name",
        path.display()
    )]
    MissingList {
        /// The form.
        path: PathBuf,
        /// The type cell.
        cell: String,
        /// The question's name.
        question: String,
        /// The list named.
        list: String,
        /// The lists the form has.
        lists: String,
    },
    /// Two questions have the same name.
    #[error(
        "{}: {cell}: the name {name:?} is already used at {first}; give every question its own name",
        path.display()
    )]
    DuplicateName {
        /// The form.
        path: PathBuf,
        /// The second name cell.
        cell: String,
        /// The name.
        name: String,
        /// The first name cell.
        first: String,
    },
    /// A choice list has the same code twice.
    #[error(
        "{}: {cell}: list {list:?} has the code {code:?} twice (first at {first}); give each choice its own name, or set allow_choice_duplicates = yes in the settings sheet",
        path.display()
    )]
    DuplicateChoice {
        /// The form.
        path: PathBuf,
        /// The second cell.
        cell: String,
        /// The list.
        list: String,
        /// The code.
        code: String,
        /// The first cell.
        first: String,
    },
    /// A question type that XLSForm does not have.
    #[error(
        "{}: {cell}: unknown question type {ty:?} in row {row}; use an XLSForm type (integer, decimal, text, select_one LIST, select_multiple LIST, begin_group, ...: xlsform.org)",
        path.display()
    )]
    UnknownType {
        /// The form.
        path: PathBuf,
        /// The type cell.
        cell: String,
        /// The survey row as Excel numbers it.
        row: u32,
        /// The type as written.
        ty: String,
    },
    /// A question without a name.
    #[error("{}: {cell}: a {ty} row has no name; give it one in the name column", path.display())]
    NoName {
        /// The form.
        path: PathBuf,
        /// The name cell.
        cell: String,
        /// The row's type.
        ty: String,
    },
    /// An `end_group`/`end_repeat` without its `begin_`, or a `begin_` never ended.
    #[error("{}: {cell}: {message}", path.display())]
    Unmatched {
        /// The form.
        path: PathBuf,
        /// The type cell.
        cell: String,
        /// What does not match and what to do.
        message: String,
    },
    /// `--language` names a language the form does not have.
    #[error("{}: the form has no language {language:?}; its languages: {languages}", path.display())]
    UnknownLanguage {
        /// The form.
        path: PathBuf,
        /// The language asked for.
        language: String,
        /// The form's languages.
        languages: String,
    },
    /// The `--data` file's header could not be read.
    #[error("{}: cannot read the header of the data file given with --data: {message}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The drafted questionnaire does not parse (a bug: please report it with the form).
    #[error("the questionnaire drafted from {} is not valid: {message}", path.display())]
    Draft {
        /// The form.
        path: PathBuf,
        /// The questionnaire parser's problems.
        message: String,
    },
}

/// A drafted questionnaire and what was done, for standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct XlsformDraft {
    /// The questionnaire (TOML), accepted by [`Questionnaire::from_toml_str`].
    pub toml: String,
    /// Variables, skip rules, lists, languages and repeats, one per line.
    pub summary: String,
}

/// Draft a questionnaire from the XLSForm `form`, its labels in `language` (default: the
/// settings' `default_language`, else the first), its column names as in the header of `data`
/// when given (default: the names documented in `docs/questionnaire.md`).
pub fn import_xlsform(
    form: &Path,
    language: Option<&str>,
    data: Option<&Path>,
) -> Result<XlsformDraft, XlsformError> {
    let sheets = read_form(form)?;
    let header = data.map(read_header).transpose()?;
    draft(form, &sheets, language, header.as_deref())
}

/// True for the extensions read as XLSForms.
pub fn is_xlsform(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("xlsx" | "xls" | "xlsm" | "ods"))
}

// ------------------------------------------------------------------------------------------
// Sheets

/// A sheet down to its last row holding a value: its header (normalised) and rows as text.
#[derive(Debug, Clone, Default)]
struct Sheet {
    /// As the workbook names it.
    name: String,
    /// Excel's 1-based number of the header row.
    header_row: u32,
    /// 0-based column of the first cell.
    left: u32,
    /// Column names: lower case, spaces as `_`, a language suffix (`::English (en)`) kept.
    header: Vec<Column>,
    /// The rows holding a value, below the header.
    rows: Vec<Vec<String>>,
    /// Excel's 1-based number of each row (blank rows are left out).
    row_numbers: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
struct Column {
    /// `type`, `name`, `label`, `list_name`, ...
    base: String,
    /// The language of `label::English (en)`.
    language: Option<String>,
}

fn normalise_column(raw: &str) -> Column {
    let raw = raw.trim();
    // `label::English (en)`; older forms write `label:English` and `bind:relevant`.
    let (base, language) = match raw.split_once("::") {
        Some((b, l)) => (b, Some(l.trim().to_string())),
        None => match raw.split_once(':') {
            Some((b, l)) if matches!(b.trim().to_lowercase().as_str(), "label" | "hint") => {
                (b, Some(l.trim().to_string()))
            }
            _ => (raw, None),
        },
    };
    let mut base = base
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_");
    for prefix in ["bind::", "bind:", "control::", "control:"] {
        if let Some(rest) = base.strip_prefix(prefix) {
            base = rest.to_string();
        }
    }
    // pyxform's aliases of the columns read here.
    let base = match base.as_str() {
        "relevance" => "relevant".to_string(),
        "calculate" => "calculation".to_string(),
        "caption" => "label".to_string(),
        "value" => "name".to_string(),
        "command" => "type".to_string(),
        _ => base,
    };
    Column {
        base,
        language: language.filter(|l| !l.is_empty()),
    }
}

impl Sheet {
    fn col(&self, base: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|c| c.base == base && c.language.is_none())
    }

    /// The column of `base` in `language` (`None`: the plain column).
    fn col_in(&self, base: &str, language: Option<&str>) -> Option<usize> {
        match language {
            None => self.col(base),
            Some(l) => self
                .header
                .iter()
                .position(|c| c.base == base && c.language.as_deref() == Some(l)),
        }
    }

    fn get<'s>(&'s self, row: &'s [String], col: Option<usize>) -> &'s str {
        col.and_then(|c| row.get(c)).map_or("", |s| s.trim())
    }

    /// The Excel row number of data row `i`.
    fn excel_row(&self, i: usize) -> u32 {
        self.row_numbers
            .get(i)
            .copied()
            .unwrap_or(self.header_row + 1 + i as u32)
    }

    /// `survey!B12` for data row `i`, column `col`.
    fn cell(&self, i: usize, col: usize) -> String {
        cell_name(&self.name, self.excel_row(i), self.left + col as u32)
    }

    fn header_text(&self) -> String {
        self.header
            .iter()
            .map(|c| match &c.language {
                Some(l) => format!("{}::{l}", c.base),
                None => c.base.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[cfg(test)]
    fn from_rows(name: &str, rows: &[&[&str]]) -> Sheet {
        let mut all: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let header = all.remove(0);
        Sheet {
            name: name.into(),
            header_row: 1,
            left: 0,
            header: header.iter().map(|h| normalise_column(h)).collect(),
            row_numbers: (2..2 + all.len() as u32).collect(),
            rows: all,
        }
    }
}

/// A cell as Excel names it (`survey!B12`); `row` 1-based, as the form's rows are numbered
/// here, `column` 0-based.
fn cell_name(sheet: &str, row: u32, column: u32) -> String {
    crate::ingest::cell_name(sheet, row.saturating_sub(1), column)
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(x) => format_number(*x),
        Data::Bool(b) => if *b { "true" } else { "false" }.into(),
        Data::DateTime(dt) => format_number(dt.as_f64()),
    }
}

/// The sheets of an XLSForm (`survey`, `choices`, `settings`; names in any case).
#[derive(Debug, Clone, Default)]
struct FormSheets {
    survey: Sheet,
    choices: Option<Sheet>,
    settings: Option<Sheet>,
}

fn read_form(path: &Path) -> Result<FormSheets, XlsformError> {
    let open = |e: &dyn std::fmt::Display| XlsformError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut book = open_workbook_auto(path).map_err(|e| open(&e))?;
    let names = book.sheet_names();
    let mut read = |wanted: &str| -> Result<Option<Sheet>, XlsformError> {
        let Some(name) = names.iter().find(|n| n.trim().eq_ignore_ascii_case(wanted)) else {
            return Ok(None);
        };
        let range = book.worksheet_range(name).map_err(|e| open(&e))?;
        Ok(Some(sheet_of(name, &range)))
    };
    let survey = read("survey")?.ok_or_else(|| XlsformError::NoSurveySheet {
        path: path.to_path_buf(),
        sheets: names.join(", "),
    })?;
    let choices = read("choices")?;
    let settings = read("settings")?;
    Ok(FormSheets {
        survey,
        choices,
        settings,
    })
}

fn sheet_of(name: &str, range: &calamine::Range<Data>) -> Sheet {
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut sheet = Sheet {
        name: name.to_string(),
        header_row: top + 1,
        left,
        ..Sheet::default()
    };
    let mut have_header = false;
    // The used range can run far past the form (cells styled but empty): blank rows are
    // skipped without converting a cell, so the form ends at the last row holding a value.
    for (r, row) in range.rows().enumerate() {
        if row.iter().all(|d| matches!(d, Data::Empty)) {
            continue;
        }
        let texts: Vec<String> = row.iter().map(cell_text).collect();
        let excel_row = top + r as u32 + 1;
        if have_header {
            sheet.rows.push(texts);
            sheet.row_numbers.push(excel_row);
        } else {
            sheet.header = texts.iter().map(|t| normalise_column(t)).collect();
            sheet.header_row = excel_row;
            have_header = true;
        }
    }
    sheet
}

/// The column names of a data export (CSV, tab-separated or a workbook's first sheet): only
/// the header is read.
fn read_header(path: &Path) -> Result<Vec<String>, XlsformError> {
    let fail = |message: String| XlsformError::Data {
        path: path.to_path_buf(),
        message,
    };
    if is_xlsform(path) {
        let mut book = open_workbook_auto(path).map_err(|e| fail(e.to_string()))?;
        let first = book
            .sheet_names()
            .first()
            .cloned()
            .ok_or_else(|| fail("the workbook has no sheets".into()))?;
        let range = book
            .worksheet_range(&first)
            .map_err(|e| fail(e.to_string()))?;
        let header = range
            .rows()
            .find(|r| r.iter().any(|d| !matches!(d, Data::Empty)))
            .ok_or_else(|| fail(format!("sheet {first} is empty")))?;
        return Ok(header
            .iter()
            .map(|d| cell_text(d).trim().to_string())
            .collect());
    }
    // Only the first line is read (an export can be large). Exports are comma-, semicolon-
    // (KoboToolbox's default) or tab-separated: split as ingest detects a delimiter.
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut first = Vec::new();
    std::io::BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .map_err(|e| fail(e.to_string()))?;
    let header = crate::ingest::detected_header(&first).map_err(fail)?;
    if header.iter().all(String::is_empty) {
        return Err(fail("the first line is empty".into()));
    }
    Ok(header)
}

// ------------------------------------------------------------------------------------------
// Export naming

/// How an export names the columns of a question: the group path, the items of a
/// `select_multiple` and the parts of a geopoint.
#[derive(Debug, Clone, PartialEq)]
struct Naming {
    /// Between groups and the question's name (`household/q1`); `None`: the name alone.
    group_separator: Option<&'static str>,
    /// Between a `select_multiple`'s column and the choice (`q/choice`).
    item_separator: &'static str,
    geopoint: GeopointStyle,
}

/// The four columns of a geopoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GeopointStyle {
    /// KoboToolbox: `_q_latitude`, `_q_longitude`, `_q_altitude`, `_q_precision`.
    Kobo,
    /// ODK Central and SurveyCTO: `q-Latitude`, `q-Longitude`, `q-Altitude`, `q-Accuracy`.
    Central,
    /// `q_latitude`, `q_longitude`, `q_altitude`, `q_precision`.
    Underscore,
}

impl Default for Naming {
    /// KoboToolbox's export with group names in the headers.
    fn default() -> Naming {
        Naming {
            group_separator: Some("/"),
            item_separator: "/",
            geopoint: GeopointStyle::Kobo,
        }
    }
}

impl Naming {
    fn column(&self, path: &[String], name: &str) -> String {
        match self.group_separator {
            Some(sep) if !path.is_empty() => format!("{}{sep}{name}", path.join(sep)),
            _ => name.to_string(),
        }
    }

    fn item(&self, column: &str, code: &str) -> String {
        format!("{column}{}{code}", self.item_separator)
    }

    /// Latitude, longitude, altitude, precision.
    fn geopoint(&self, column: &str) -> [String; 4] {
        match self.geopoint {
            GeopointStyle::Kobo => {
                ["latitude", "longitude", "altitude", "precision"].map(|p| format!("_{column}_{p}"))
            }
            GeopointStyle::Central => {
                ["Latitude", "Longitude", "Altitude", "Accuracy"].map(|p| format!("{column}-{p}"))
            }
            GeopointStyle::Underscore => {
                ["latitude", "longitude", "altitude", "precision"].map(|p| format!("{column}_{p}"))
            }
        }
    }

    fn describe(&self) -> String {
        let groups = match self.group_separator {
            Some(sep) => format!("group{sep}question"),
            None => "question names without groups".into(),
        };
        format!(
            "{groups}, items question{}choice, geopoint {}",
            self.item_separator,
            self.geopoint("q")[0]
        )
    }
}

// ------------------------------------------------------------------------------------------
// The form read into questions

/// A choice of a list: its code (the choice's `name`) and label.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    code: String,
    label: String,
}

/// What a question gives in the export.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `select_one LIST`: one coded column.
    SelectOne {
        choices: Vec<Choice>,
    },
    /// `select_multiple LIST`: one 0/1 column per choice.
    SelectMultiple {
        choices: Vec<Choice>,
    },
    Integer,
    Decimal,
    /// `range` with its `parameters` (start, end, step).
    Range {
        low: f64,
        high: f64,
        whole: bool,
    },
    /// Free text, dates, times, media file names, barcodes, lines and shapes.
    Text,
    /// Latitude, longitude, altitude and precision.
    Geopoint,
    /// `calculate`: a derived variable where the calculation translates.
    Calculate {
        calculation: String,
    },
}

/// A skip rule of the form: the row's own `relevant` or an enclosing group's.
#[derive(Debug, Clone, PartialEq)]
struct Relevance {
    /// `survey!F12`.
    cell: String,
    xpath: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Question {
    /// `survey!A12`: the type cell.
    cell: String,
    name: String,
    /// Enclosing groups and the repeat, outermost first.
    path: Vec<String>,
    label: String,
    kind: Kind,
    /// In the drafted repeat (a person question when the form has one).
    in_repeat: bool,
    /// In a loop: one of its copies, one per choice (`${name}` cannot name it).
    in_loop: bool,
    /// Enclosing groups' skip rules, outermost first, then the question's own.
    relevance: Vec<Relevance>,
    constraint: String,
    /// Said as a comment above the variable.
    notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Question(Question),
    /// A comment in the draft: a block not drafted.
    Comment(String),
    /// The drafted repeat begins here (its key columns are declared here).
    RepeatStart {
        name: String,
        cell: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Group,
    Repeat,
    Loop,
}

impl Block {
    fn word(self) -> &'static str {
        match self {
            Block::Group => "group",
            Block::Repeat => "repeat",
            Block::Loop => "loop",
        }
    }
}

struct Open {
    block: Block,
    name: String,
    cell: String,
    relevance: Option<Relevance>,
    /// Its questions are drafted (false in a nested or second repeat).
    drafted: bool,
    /// A loop's list: its questions are asked (and exported) once per choice.
    choices: Vec<Choice>,
}

/// The form as read: questions in order, choice lists, languages, settings.
#[derive(Debug, Clone, Default)]
struct Form {
    entries: Vec<Entry>,
    /// The drafted repeat's name.
    repeat: Option<String>,
    /// Repeats and loops not drafted, with the number of questions in them.
    undrafted: Vec<(String, usize)>,
    /// Questions in undrafted blocks and questions without a column: why `${name}` has no
    /// variable.
    no_column: HashMap<String, String>,
    /// Names used in more than one group: `${name}` is ambiguous.
    ambiguous: HashSet<String>,
    lists: usize,
    languages: Vec<String>,
    language: Option<String>,
    title: String,
    id: String,
    version: String,
}

/// What a type cell asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeClass {
    Begin(Block),
    End(Block),
    SelectOne,
    SelectMultiple,
    /// A select whose choices are in another file, a ranking, an OSM widget: one text column.
    OtherText,
    Integer,
    Decimal,
    Range,
    Text,
    Geopoint,
    Calculate,
    /// Notes and metadata (start, end, deviceid, ...): no variable.
    None,
}

/// A type cell: its class, the list it names (selects, loops) and `or_other`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedType {
    class: TypeClass,
    list: String,
    or_other: bool,
}

/// A type word as pyxform compares them: lower case, without spaces, `_` and `-`.
fn type_key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | ':'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Read a type cell with pyxform's aliases (`select one from L`, `select all that apply from
/// L or specify other`, `begin lgroup`, `phone number`, ...); `None`: not an XLSForm type.
fn parse_type(ty: &str) -> Option<ParsedType> {
    let mut tokens: Vec<&str> = ty.split_whitespace().collect();
    let mut or_other = false;
    let lower: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
    if lower.last().is_some_and(|t| t == "or_other") {
        tokens.pop();
        or_other = true;
    } else if lower.len() >= 3 && lower[lower.len() - 3..] == ["or", "specify", "other"] {
        tokens.truncate(tokens.len() - 3);
        or_other = true;
    }
    // Prefixes that take arguments, longest first (matched on whole words).
    const WITH_ARGUMENTS: [(&str, TypeClass); 20] = [
        ("addselectmultiplepromptusing", TypeClass::SelectMultiple),
        ("addselectonepromptusing", TypeClass::SelectOne),
        ("selectmultiplefromfile", TypeClass::OtherText),
        ("selectallthatapplyfrom", TypeClass::SelectMultiple),
        ("selectonefromfile", TypeClass::OtherText),
        ("selectoneexternal", TypeClass::OtherText),
        ("selectallthatapply", TypeClass::SelectMultiple),
        ("beginloopedgroup", TypeClass::Begin(Block::Repeat)),
        ("selectmultiple", TypeClass::SelectMultiple),
        ("endloopedgroup", TypeClass::End(Block::Repeat)),
        ("selectonefrom", TypeClass::SelectOne),
        ("beginloopover", TypeClass::Begin(Block::Loop)),
        ("beginrepeat", TypeClass::Begin(Block::Repeat)),
        ("beginlgroup", TypeClass::Begin(Block::Repeat)),
        ("begingroup", TypeClass::Begin(Block::Group)),
        ("beginloop", TypeClass::Begin(Block::Loop)),
        ("selectone", TypeClass::SelectOne),
        ("select1", TypeClass::SelectOne),
        ("rank", TypeClass::OtherText),
        ("osm", TypeClass::OtherText),
    ];
    for (prefix, class) in WITH_ARGUMENTS {
        let mut acc = String::new();
        for (i, t) in tokens.iter().enumerate() {
            acc.push_str(&type_key(t));
            if acc == prefix {
                return Some(ParsedType {
                    class,
                    list: tokens.get(i + 1).map_or(String::new(), |l| l.to_string()),
                    or_other,
                });
            }
            if !prefix.starts_with(&acc) {
                break;
            }
        }
    }
    let class = match type_key(&tokens.join(" ")).as_str() {
        "endgroup" => TypeClass::End(Block::Group),
        "endrepeat" | "endlgroup" => TypeClass::End(Block::Repeat),
        "endloop" => TypeClass::End(Block::Loop),
        "integer"
        | "int"
        | "qint"
        | "addintegerprompt"
        | "percentage"
        | "numberofdaysinlastmonth"
        | "numberofdaysinlastsixmonths"
        | "numberofdaysinlastyear" => TypeClass::Integer,
        "decimal" | "qdecimal" | "adddecimalprompt" => TypeClass::Decimal,
        "range" => TypeClass::Range,
        "text"
        | "string"
        | "qstring"
        | "addtextprompt"
        | "date"
        | "qdate"
        | "adddateprompt"
        | "time"
        | "datetime"
        | "qdatetime"
        | "adddatetimeprompt"
        | "barcode"
        | "qbarcode"
        | "addbarcodeprompt"
        | "image"
        | "photo"
        | "qimage"
        | "qpicture"
        | "addimageprompt"
        | "addphotoprompt"
        | "audio"
        | "qaudio"
        | "addaudioprompt"
        | "video"
        | "qvideo"
        | "addvideoprompt"
        | "file"
        | "addfileprompt"
        | "geotrace"
        | "qgeotrace"
        | "geoshape"
        | "qgeoshape"
        | "hidden"
        | "acknowledge"
        | "qacknowledge"
        | "addacknowledgeprompt"
        | "trigger"
        | "backgroundaudio" => TypeClass::Text,
        "geopoint" | "gps" | "location" | "qgeopoint" | "qlocation" | "addlocationprompt" => {
            TypeClass::Geopoint
        }
        "calculate" | "qcalculate" | "addcalculateprompt" => TypeClass::Calculate,
        "note" | "qnote" | "addnoteprompt" | "start" | "end" | "today" | "deviceid"
        | "subscriberid" | "simserial" | "simid" | "phonenumber" | "username" | "email"
        | "audit" | "startgeopoint" | "backgroundgeopoint" | "imei" | "urideviceid"
        | "urisubscriberid" | "urisimserial" | "uriphonenumber" | "uriusername" | "uriemail"
        | "xmlexternal" | "csvexternal" | "getstarttime" | "getendtime" | "starttime"
        | "endtime" | "gettoday" | "getdeviceid" | "getsubscriberid" | "getsimid"
        | "getphonenumber" => TypeClass::None,
        _ => return None,
    };
    Some(ParsedType {
        class,
        list: String::new(),
        or_other,
    })
}

fn settings_value(settings: Option<&Sheet>, key: &str) -> String {
    settings
        .and_then(|s| {
            let c = s.col(key)?;
            s.rows.first().map(|r| s.get(r, Some(c)).to_string())
        })
        .unwrap_or_default()
}

fn yes(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "yes" | "true" | "1" | "true()"
    )
}

/// The label language: `wanted`, else the settings' default language, else the first.
fn choose_language(
    path: &Path,
    languages: &[String],
    wanted: Option<&str>,
    default: &str,
) -> Result<Option<String>, XlsformError> {
    let find = |w: &str| -> Option<String> {
        let w = w.trim();
        languages
            .iter()
            .find(|l| *l == w)
            .or_else(|| languages.iter().find(|l| l.eq_ignore_ascii_case(w)))
            .or_else(|| {
                // `en` for `English (en)`.
                languages.iter().find(|l| {
                    l.rsplit_once('(')
                        .and_then(|(_, code)| code.strip_suffix(')'))
                        .is_some_and(|code| code.trim().eq_ignore_ascii_case(w))
                })
            })
            .cloned()
    };
    match wanted {
        Some(w) => find(w)
            .map(Some)
            .ok_or_else(|| XlsformError::UnknownLanguage {
                path: path.to_path_buf(),
                language: w.to_string(),
                languages: if languages.is_empty() {
                    "none (its labels are in a plain `label` column; leave out --language)".into()
                } else {
                    languages.join(", ")
                },
            }),
        None if languages.is_empty() => Ok(None),
        None => Ok(find(default).or_else(|| languages.first().cloned())),
    }
}

fn read_questions(
    path: &Path,
    sheets: &FormSheets,
    wanted_language: Option<&str>,
) -> Result<Form, XlsformError> {
    let survey = &sheets.survey;
    let settings = sheets.settings.as_ref();
    let missing_column = |sheet: &Sheet, column: &'static str| XlsformError::MissingColumn {
        path: path.to_path_buf(),
        sheet: sheet.name.clone(),
        column,
        header: sheet.header_text(),
    };
    let c_type = survey
        .col("type")
        .ok_or_else(|| missing_column(survey, "type"))?;
    let c_name = survey
        .col("name")
        .ok_or_else(|| missing_column(survey, "name"))?;

    // Languages: of the label columns, survey sheet first.
    let mut languages: Vec<String> = Vec::new();
    for sheet in std::iter::once(survey).chain(sheets.choices.as_ref()) {
        for c in &sheet.header {
            if let (true, Some(l)) = (c.base == "label", &c.language)
                && !languages.contains(l)
            {
                languages.push(l.clone());
            }
        }
    }
    let language = choose_language(
        path,
        &languages,
        wanted_language,
        &settings_value(settings, "default_language"),
    )?;
    let label_of = |sheet: &Sheet, row: &[String]| -> String {
        let chosen = sheet.get(row, sheet.col_in("label", language.as_deref()));
        let text = if chosen.is_empty() {
            sheet.get(row, sheet.col("label"))
        } else {
            chosen
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };

    // Choice lists.
    let allow_duplicates = yes(&settings_value(settings, "allow_choice_duplicates"));
    let mut lists: BTreeMap<String, Vec<Choice>> = BTreeMap::new();
    // An empty choices sheet is no choices sheet.
    if let Some(ch) = sheets.choices.as_ref().filter(|c| !c.header.is_empty()) {
        let c_list = ch
            .col("list_name")
            .ok_or_else(|| missing_column(ch, "list_name"))?;
        let c_code = ch.col("name").ok_or_else(|| missing_column(ch, "name"))?;
        let mut first_cell: HashMap<(String, String), String> = HashMap::new();
        for (i, row) in ch.rows.iter().enumerate() {
            let list = ch.get(row, Some(c_list));
            let code = ch.get(row, Some(c_code));
            if list.is_empty() || code.is_empty() {
                continue;
            }
            let cell = ch.cell(i, c_code);
            if let Some(first) = first_cell.get(&(list.to_string(), code.to_string())) {
                if allow_duplicates {
                    continue;
                }
                return Err(XlsformError::DuplicateChoice {
                    path: path.to_path_buf(),
                    cell,
                    list: list.to_string(),
                    code: code.to_string(),
                    first: first.clone(),
                });
            }
            first_cell.insert((list.to_string(), code.to_string()), cell);
            let label = label_of(ch, row);
            lists.entry(list.to_string()).or_default().push(Choice {
                code: code.to_string(),
                label: if label.is_empty() {
                    code.to_string()
                } else {
                    label
                },
            });
        }
    }
    let list_names = || {
        if lists.is_empty() {
            "none".to_string()
        } else {
            lists.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    };

    let c_relevant = survey.col("relevant");
    let c_constraint = survey.col("constraint");
    let c_calculation = survey.col("calculation");
    let c_parameters = survey.col("parameters");
    let mut form = Form {
        lists: lists.len(),
        language: language.clone(),
        title: settings_value(settings, "form_title"),
        id: settings_value(settings, "form_id"),
        version: settings_value(settings, "version"),
        ..Form::default()
    };
    let mut stack: Vec<Open> = Vec::new();
    let mut names: HashMap<(Vec<String>, String), String> = HashMap::new();
    for (i, row) in survey.rows.iter().enumerate() {
        let ty = survey.get(row, Some(c_type));
        // pyxform skips rows without a type; `#` starts a comment row.
        if ty.is_empty() || ty.starts_with('#') {
            continue;
        }
        let type_cell = survey.cell(i, c_type);
        let name = survey.get(row, Some(c_name)).to_string();
        let Some(parsed) = parse_type(ty) else {
            return Err(XlsformError::UnknownType {
                path: path.to_path_buf(),
                cell: type_cell,
                row: survey.excel_row(i),
                ty: ty.to_string(),
            });
        };
        let keyword = ty.split_whitespace().next().unwrap_or("").to_string();
        let relevant = survey.get(row, c_relevant);
        let relevance = (!relevant.is_empty()).then(|| Relevance {
            cell: survey.cell(i, c_relevant.unwrap_or(0)),
            xpath: relevant.to_string(),
        });
        let unmatched = |message: String| XlsformError::Unmatched {
            path: path.to_path_buf(),
            cell: type_cell.clone(),
            message,
        };
        let needs_name = |what: &str| -> Result<(), XlsformError> {
            if name.is_empty() {
                return Err(XlsformError::NoName {
                    path: path.to_path_buf(),
                    cell: survey.cell(i, c_name),
                    ty: what.to_string(),
                });
            }
            Ok(())
        };
        let drafted_here = stack.iter().all(|o| o.drafted);
        let block = match parsed.class {
            TypeClass::Begin(b) => Some((true, b)),
            TypeClass::End(b) => Some((false, b)),
            _ => None,
        };
        if let Some((begin, block)) = block {
            if begin {
                needs_name(&keyword)?;
                let mut drafted = drafted_here;
                if block == Block::Repeat {
                    let inside_repeat = stack.iter().any(|o| o.block == Block::Repeat);
                    if drafted && !inside_repeat && form.repeat.is_none() {
                        form.repeat = Some(name.clone());
                        form.entries.push(Entry::RepeatStart {
                            name: name.clone(),
                            cell: type_cell.clone(),
                        });
                    } else {
                        drafted = false;
                    }
                }
                let mut choices = Vec::new();
                if block == Block::Loop {
                    choices = lists.get(&parsed.list).cloned().ok_or_else(|| {
                        XlsformError::MissingList {
                            path: path.to_path_buf(),
                            cell: type_cell.clone(),
                            question: name.clone(),
                            list: parsed.list.clone(),
                            lists: list_names(),
                        }
                    })?;
                }
                if drafted_here && !drafted {
                    let why = match block {
                        _ if stack.iter().any(|o| o.block == Block::Repeat) => {
                            "a repeat inside a repeat is a third level, which cvsurvey does not have"
                        }
                        _ => {
                            "only the first repeat is drafted (as the person level); a further repeat is another export file"
                        }
                    };
                    form.entries.push(Entry::Comment(format!(
                        "{} {name} ({type_cell}) is not drafted: {why}.",
                        block.word()
                    )));
                    form.undrafted.push((name.clone(), 0));
                }
                stack.push(Open {
                    block,
                    name,
                    cell: type_cell,
                    relevance,
                    drafted,
                    choices,
                });
            } else {
                match stack.pop() {
                    Some(open) if open.block == block => {}
                    Some(open) => {
                        return Err(unmatched(format!(
                            "end_{} while {} {} (begun at {}) is open; end the {} first with end_{}",
                            block.word(),
                            open.block.word(),
                            open.name,
                            open.cell,
                            open.block.word(),
                            open.block.word()
                        )));
                    }
                    None => {
                        return Err(unmatched(format!(
                            "end_{} without a begin_{} above it; remove the row or add the begin_{}",
                            block.word(),
                            block.word(),
                            block.word()
                        )));
                    }
                }
            }
            continue;
        }
        let kind = match parsed.class {
            TypeClass::Begin(_) | TypeClass::End(_) | TypeClass::None => None,
            TypeClass::Integer => Some(Kind::Integer),
            TypeClass::Decimal => Some(Kind::Decimal),
            TypeClass::Range => {
                let (low, high, whole) = range_parameters(survey.get(row, c_parameters));
                Some(Kind::Range { low, high, whole })
            }
            TypeClass::Text | TypeClass::OtherText => Some(Kind::Text),
            TypeClass::Geopoint => Some(Kind::Geopoint),
            TypeClass::Calculate => Some(Kind::Calculate {
                calculation: survey.get(row, c_calculation).to_string(),
            }),
            TypeClass::SelectOne | TypeClass::SelectMultiple => {
                let list = parsed.list.clone();
                let Some(choices) = lists.get(&list) else {
                    return Err(XlsformError::MissingList {
                        path: path.to_path_buf(),
                        cell: type_cell,
                        question: name,
                        list,
                        lists: list_names(),
                    });
                };
                let mut choices = choices.clone();
                if parsed.or_other && !choices.iter().any(|c| c.code == "other") {
                    choices.push(Choice {
                        code: "other".into(),
                        label: "Other".into(),
                    });
                }
                Some(if parsed.class == TypeClass::SelectMultiple {
                    Kind::SelectMultiple { choices }
                } else {
                    Kind::SelectOne { choices }
                })
            }
        };
        let Some(kind) = kind else {
            // Notes and metadata: no variable, but a name must still be unique.
            if !name.is_empty() {
                let scoped = (path_of(&stack), name.clone());
                if let Some(first) = names.get(&scoped) {
                    return Err(XlsformError::DuplicateName {
                        path: path.to_path_buf(),
                        cell: survey.cell(i, c_name),
                        name,
                        first: first.clone(),
                    });
                }
                names.insert(scoped, survey.cell(i, c_name));
                form.no_column.insert(
                    name,
                    format!("{keyword} fields have no column in the draft"),
                );
            }
            continue;
        };
        needs_name(&keyword)?;
        // pyxform refuses a name twice in one group; in different groups the columns differ,
        // but `${name}` is ambiguous.
        let scoped = (path_of(&stack), name.clone());
        if let Some(first) = names.get(&scoped) {
            return Err(XlsformError::DuplicateName {
                path: path.to_path_buf(),
                cell: survey.cell(i, c_name),
                name,
                first: first.clone(),
            });
        }
        if names.keys().any(|(_, n)| *n == name) {
            form.ambiguous.insert(name.clone());
        }
        names.insert(scoped, survey.cell(i, c_name));
        if !drafted_here {
            if let Some(last) = form.undrafted.last_mut() {
                last.1 += 1;
            }
            form.no_column.insert(
                name,
                "it is in a repeat or loop that is not drafted".to_string(),
            );
            continue;
        }
        let mut notes = Vec::new();
        if parsed.class == TypeClass::OtherText {
            notes.push(format!(
                "{ty}: exported as one text column (choices in another file, a ranking or a map \
                 feature), so no codes are listed"
            ));
        }
        let mut relevance_all: Vec<Relevance> =
            stack.iter().filter_map(|o| o.relevance.clone()).collect();
        relevance_all.extend(relevance);
        let other = parsed.or_other
            && matches!(
                parsed.class,
                TypeClass::SelectOne | TypeClass::SelectMultiple
            );
        let in_repeat = stack.iter().any(|o| o.block == Block::Repeat);
        let in_loop = stack.iter().any(|o| o.block == Block::Loop);
        if in_loop {
            form.no_column.insert(
                name.clone(),
                "it is in a loop, exported once per choice of the loop's list".into(),
            );
        }
        let label = label_of(survey, row);
        let constraint = survey.get(row, c_constraint).to_string();
        for (path, choice) in loop_paths(&stack) {
            // pyxform puts the loop choice's label and name into a label.
            let label = match choice {
                Some(c) => label
                    .replace("%(label)s", &c.label)
                    .replace("%(name)s", &c.code),
                None => label.clone(),
            };
            form.entries.push(Entry::Question(Question {
                cell: type_cell.clone(),
                name: name.clone(),
                path: path.clone(),
                label,
                kind: kind.clone(),
                in_repeat,
                in_loop,
                relevance: relevance_all.clone(),
                constraint: constraint.clone(),
                notes: notes.clone(),
            }));
            if other {
                // `or_other` adds the text question `<name>_other`, asked where "other" is
                // chosen.
                let chosen = if parsed.class == TypeClass::SelectMultiple {
                    format!("selected(${{{name}}}, 'other')")
                } else {
                    format!("${{{name}}} = 'other'")
                };
                let mut relevance = relevance_all.clone();
                relevance.push(Relevance {
                    cell: type_cell.clone(),
                    xpath: chosen,
                });
                form.entries.push(Entry::Question(Question {
                    cell: type_cell.clone(),
                    name: format!("{name}_other"),
                    path,
                    label: "Other: specify".into(),
                    kind: Kind::Text,
                    in_repeat,
                    in_loop,
                    relevance,
                    constraint: String::new(),
                    notes: vec!["added by or_other".into()],
                }));
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(XlsformError::Unmatched {
            path: path.to_path_buf(),
            cell: open.cell,
            message: format!(
                "begin_{} {} is never ended; add an end_{} row after its last question",
                open.block.word(),
                open.name,
                open.block.word()
            ),
        });
    }
    form.languages = languages;
    Ok(form)
}

/// The paths of a question inside `stack`: one, or one per choice of each enclosing loop
/// (`loop/choice/question`), with the innermost loop's choice.
fn loop_paths(stack: &[Open]) -> Vec<(Vec<String>, Option<&Choice>)> {
    let mut paths: Vec<(Vec<String>, Option<&Choice>)> = vec![(Vec::new(), None)];
    for open in stack {
        for (p, _) in &mut paths {
            p.push(open.name.clone());
        }
        if open.block == Block::Loop {
            paths = paths
                .into_iter()
                .flat_map(|(p, _)| {
                    open.choices.iter().map(move |c| {
                        let mut p = p.clone();
                        p.push(c.code.clone());
                        (p, Some(c))
                    })
                })
                .collect();
        }
    }
    paths
}

fn path_of(stack: &[Open]) -> Vec<String> {
    stack.iter().map(|o| o.name.clone()).collect()
}

/// A `range` question's `parameters` (`start=0 end=10 step=1`; ODK's defaults 1, 10, 1): its
/// inclusive range and whether every value is whole.
fn range_parameters(parameters: &str) -> (f64, f64, bool) {
    let (mut start, mut end, mut step) = (1.0, 10.0, 1.0);
    for part in parameters.split([' ', ',', ';']).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let Ok(x) = v.trim().parse::<f64>() else {
            continue;
        };
        if !x.is_finite() {
            continue;
        }
        match k.trim().to_ascii_lowercase().as_str() {
            "start" => start = x,
            "end" => end = x,
            "step" => step = x,
            _ => {}
        }
    }
    let whole = [start, end, step].iter().all(|x| x.fract() == 0.0);
    (start.min(end), start.max(end), whole)
}

// ------------------------------------------------------------------------------------------
// Drafting

/// The columns of the main form's questions under `naming` (the header of `--data` is the
/// main file's: a repeat is another file).
fn expected_columns(form: &Form, naming: &Naming) -> Vec<String> {
    let mut out = Vec::new();
    for e in &form.entries {
        let Entry::Question(q) = e else { continue };
        if q.in_repeat {
            continue;
        }
        let column = naming.column(&q.path, &q.name);
        match &q.kind {
            Kind::SelectMultiple { choices } => {
                out.extend(choices.iter().map(|c| naming.item(&column, &c.code)));
            }
            Kind::Geopoint => out.extend(naming.geopoint(&column)),
            _ => out.push(column),
        }
    }
    out
}

/// The naming the header uses: the one under which most of the form's columns are found
/// (ties: the default first). `None` when no naming finds a column.
fn detect_naming(form: &Form, header: &[String]) -> (Naming, usize, usize) {
    let header: HashSet<&str> = header.iter().map(String::as_str).collect();
    let mut best: Option<(Naming, usize, usize)> = None;
    for group_separator in [Some("/"), Some("-"), Some("."), Some(":"), None] {
        for item_separator in ["/", "_", ".", "-"] {
            for geopoint in [
                GeopointStyle::Kobo,
                GeopointStyle::Central,
                GeopointStyle::Underscore,
            ] {
                let naming = Naming {
                    group_separator,
                    item_separator,
                    geopoint,
                };
                let expected = expected_columns(form, &naming);
                let found = expected
                    .iter()
                    .filter(|c| header.contains(c.as_str()))
                    .count();
                if best.as_ref().is_none_or(|b| found > b.1) {
                    best = Some((naming, found, expected.len()));
                }
            }
        }
    }
    match best {
        Some(b) if b.1 > 0 => b,
        _ => {
            let naming = Naming::default();
            let n = expected_columns(form, &naming).len();
            (naming, 0, n)
        }
    }
}

/// A piece of the draft; `fallback` (a comment) replaces it when the questionnaire parser
/// refuses it (a translated expression it does not accept).
struct Piece {
    text: String,
    fallback: Option<String>,
}

impl Piece {
    fn fixed(text: String) -> Piece {
        Piece {
            text,
            fallback: None,
        }
    }
}

fn comment_lines(out: &mut String, text: &str) {
    for line in wrap(&comment_text(text), 98) {
        let _ = writeln!(out, "# {line}");
    }
}

/// A name in an expression: bare when it can be, else in backticks.
fn in_expression(name: &str) -> String {
    if super::expr::is_plain_identifier(name) {
        name.to_string()
    } else {
        format!("`{name}`")
    }
}

fn number_like(code: &str) -> bool {
    code.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

/// An entry of the lookup: the field and its level (`None` in a form without a repeat).
struct Known {
    field: FormField,
    level: Option<Level>,
}

/// Counts for the summary.
#[derive(Default)]
struct Tally {
    variables: usize,
    questions: usize,
    derived: usize,
    calculations_untranslated: usize,
    sets: usize,
    rules_translated: usize,
    rules_untranslated: usize,
}

fn draft(
    path: &Path,
    sheets: &FormSheets,
    language: Option<&str>,
    header: Option<&[String]>,
) -> Result<XlsformDraft, XlsformError> {
    let form = read_questions(path, sheets, language)?;
    let (naming, found, expected) = match header {
        Some(h) => detect_naming(&form, h),
        None => (Naming::default(), 0, 0),
    };
    let two_levels = form.repeat.is_some();
    let level_of = |q: &Question| match (two_levels, q.in_repeat) {
        (false, _) => None,
        (true, false) => Some(Level::Household),
        (true, true) => Some(Level::Person),
    };

    // Every question's field, for `${name}` in skip rules and calculations.
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut no_column = form.no_column.clone();
    for e in &form.entries {
        let Entry::Question(q) = e else { continue };
        if q.in_loop {
            continue;
        }
        let column = naming.column(&q.path, &q.name);
        let kind = match &q.kind {
            Kind::SelectOne { choices } if !choices.is_empty() => FieldKind::SelectOne {
                codes: choices.iter().map(|c| c.code.clone()).collect(),
                numeric: choices.iter().all(|c| number_like(&c.code)),
            },
            Kind::SelectMultiple { choices } => FieldKind::SelectMultiple {
                items: choices
                    .iter()
                    .map(|c| SelectItem {
                        code: c.code.clone(),
                        column: naming.item(&column, &c.code),
                    })
                    .collect(),
            },
            Kind::Integer | Kind::Decimal | Kind::Range { .. } => FieldKind::Number,
            Kind::Text | Kind::SelectOne { .. } => FieldKind::Text,
            Kind::Calculate { .. } => FieldKind::Calculated,
            Kind::Geopoint => {
                no_column.insert(
                    q.name.clone(),
                    "a geopoint is drafted as four numeric columns, not one".into(),
                );
                continue;
            }
        };
        known.insert(
            q.name.clone(),
            Known {
                field: FormField {
                    name: q.name.clone(),
                    column,
                    kind,
                },
                level: level_of(q),
            },
        );
    }
    for name in &form.ambiguous {
        known.remove(name);
        no_column.insert(
            name.clone(),
            "the name is used in several groups, so the reference is ambiguous".into(),
        );
    }
    let lookup_at = |level: Option<Level>, skip_rule: bool| {
        let known = &known;
        let no_column = &no_column;
        move |n: &str| -> Result<&FormField, String> {
            let Some(k) = known.get(n) else {
                return Err(match no_column.get(n) {
                    Some(why) => format!("${{{n}}} has no variable: {why}"),
                    None => format!("${{{n}}} is not a question of the form"),
                });
            };
            if k.level != level {
                let of = |l: Option<Level>| l.map_or("person", Level::as_str);
                return Err(format!(
                    "${{{n}}} is a {} question and this is a {} question: a skip rule or \
                     calculation may use variables of its own file only",
                    of(k.level),
                    of(level)
                ));
            }
            if skip_rule && k.field.kind == FieldKind::Calculated {
                return Err(format!(
                    "${{{n}}} is a calculate field: skip rules cannot use derived variables"
                ));
            }
            Ok(&k.field)
        }
    };

    let mut tally = Tally::default();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut derived: Vec<Piece> = Vec::new();
    let mut indicators: Vec<Piece> = Vec::new();
    let mut declared: HashSet<String> = HashSet::new();

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut head = String::new();
    comment_lines(
        &mut head,
        &format!(
            "Questionnaire drafted by `cvsurvey questionnaire import` from the XLSForm {file_name}."
        ),
    );
    comment_lines(
        &mut head,
        &format!(
            "Column names as the export names them: {}{}. Labels: {}.",
            naming.describe(),
            match header {
                Some(_) => " (detected from the --data header)".to_string(),
                None => " (the default; give --data with an export to detect them)".to_string(),
            },
            form.language
                .as_deref()
                .unwrap_or("the form's label column")
        ),
    );
    comment_lines(
        &mut head,
        "To add by hand: the design columns (strata, PSUs, weights, response status) with \
         `frame = true`, missing codes (don't know, refused), indicators. Format: \
         docs/questionnaire.md.",
    );
    let _ = writeln!(head, "\n[questionnaire]");
    let id = if form.id.is_empty() {
        identifier(path)
    } else {
        identifier(Path::new(&form.id))
    };
    let _ = writeln!(head, "id = {}", quote(&id));
    let version = if form.version.is_empty() {
        "0.1"
    } else {
        &form.version
    };
    let _ = writeln!(head, "version = {}", quote(version));
    let title = if form.title.is_empty() {
        &file_name
    } else {
        &form.title
    };
    let _ = writeln!(head, "title = {}", quote(title));
    pieces.push(Piece::fixed(head));

    if two_levels {
        let mut text = String::from("\n[[variables]]\n");
        comment_lines(
            &mut text,
            "The submission's key in the main (household) file; each row of the roster file \
             names its household's in PARENT_KEY.",
        );
        let _ = writeln!(
            text,
            "name = \"KEY\"\ntype = \"text\"\nframe = true\nlevel = \"household\""
        );
        declared.insert("KEY".into());
        pieces.push(Piece::fixed(text));
    }

    for e in &form.entries {
        let q = match e {
            Entry::Comment(c) => {
                let mut text = String::from("\n");
                comment_lines(&mut text, c);
                pieces.push(Piece::fixed(text));
                continue;
            }
            Entry::RepeatStart { name, cell } => {
                let mut text = String::from("\n[[variables]]\n");
                comment_lines(
                    &mut text,
                    &format!(
                        "Repeat {name} ({cell}): one row per member in the roster file, the \
                         person level. PARENT_KEY links a row to its household's KEY; the \
                         roster's own KEY is the person's id (in a pipeline: [data] id = \
                         \"KEY\", household_id = \"PARENT_KEY\"; [data.household] id = \"KEY\")."
                    ),
                );
                let _ = writeln!(
                    text,
                    "name = \"PARENT_KEY\"\ntype = \"text\"\nframe = true\nlevel = \"person\""
                );
                declared.insert("PARENT_KEY".into());
                pieces.push(Piece::fixed(text));
                continue;
            }
            Entry::Question(q) => q,
        };
        tally.questions += 1;
        let level = level_of(q);
        let column = naming.column(&q.path, &q.name);
        let mut notes = q.notes.clone();

        // Skip rule: the enclosing groups' and the question's own, each translated.
        let mut asked_if = None;
        if !q.relevance.is_empty() {
            let lookup = lookup_at(level, true);
            let mut parts = Vec::new();
            let mut failed = Vec::new();
            for r in &q.relevance {
                match translate_relevant(&r.xpath, &lookup) {
                    Ok(t) => parts.push(t),
                    Err(u) => failed.push(format!(
                        "skip rule not translated ({}: relevant {}): {}",
                        r.cell, r.xpath, u.reason
                    )),
                }
            }
            if failed.is_empty() {
                tally.rules_translated += 1;
                asked_if = Some(if parts.len() == 1 {
                    parts.remove(0)
                } else {
                    parts
                        .iter()
                        .map(|p| format!("({p})"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                });
            } else {
                tally.rules_untranslated += 1;
                notes.extend(failed);
            }
        }
        let asked_if_piece = |asked: &Option<String>, what: &str| -> Option<Piece> {
            asked.as_ref().map(|a| Piece {
                text: format!("asked_if = {}\n", quote(a)),
                fallback: Some(format!(
                    "skip rule of {what} translated as `{a}` but not accepted"
                )),
            })
        };

        // Range: `range` parameters, or a numeric constraint with two ends.
        let mut range = None;
        if matches!(q.kind, Kind::Integer | Kind::Decimal) && !q.constraint.is_empty() {
            // An open end (`. >= 0`) stays open: `range = [0, inf]`.
            match constraint_range(&q.constraint) {
                Some((lo, hi)) if !(lo.is_infinite() && hi.is_infinite()) => {
                    let (lo, hi) = if q.kind == Kind::Integer {
                        (lo.ceil(), hi.floor())
                    } else {
                        (lo, hi)
                    };
                    if lo <= hi {
                        range = Some((lo, hi));
                    }
                }
                _ => notes.push(format!("constraint not drafted: {}", q.constraint)),
            }
        }

        // (name, label, type and codes lines)
        let mut vars: Vec<(String, String, String)> = Vec::new();
        let label = q.label.clone();
        match &q.kind {
            Kind::SelectOne { choices } if choices.is_empty() => {
                notes.push("its list has no choices: drafted as text".into());
                vars.push((column.clone(), label, "type = \"text\"\n".into()));
            }
            Kind::SelectOne { choices } => {
                let numeric = choices.iter().all(|c| number_like(&c.code));
                let codes: Vec<(String, String)> = choices
                    .iter()
                    .map(|c| (c.code.clone(), c.label.clone()))
                    .collect();
                vars.push((
                    column.clone(),
                    label,
                    format!(
                        "type = \"categorical\"\ncodes = {}\n",
                        toml_codes(&codes, !numeric)
                    ),
                ));
            }
            Kind::SelectMultiple { choices } => {
                for c in choices {
                    vars.push((
                        naming.item(&column, &c.code),
                        if label.is_empty() {
                            c.label.clone()
                        } else {
                            format!("{label}: {}", c.label)
                        },
                        "type = \"categorical\"\ncodes = { 0 = \"No\", 1 = \"Yes\" }\n".into(),
                    ));
                }
            }
            Kind::Integer | Kind::Decimal => {
                let ty = if q.kind == Kind::Integer {
                    "integer"
                } else {
                    "numeric"
                };
                let mut text = format!("type = \"{ty}\"\n");
                if let Some((lo, hi)) = range {
                    let _ = writeln!(text, "range = [{}, {}]", toml_number(lo), toml_number(hi));
                }
                vars.push((column.clone(), label, text));
            }
            Kind::Range { low, high, whole } => {
                let ty = if *whole { "integer" } else { "numeric" };
                vars.push((
                    column.clone(),
                    label,
                    format!(
                        "type = \"{ty}\"\nrange = [{}, {}]\n",
                        toml_number(*low),
                        toml_number(*high)
                    ),
                ));
            }
            Kind::Text => vars.push((column.clone(), label, "type = \"text\"\n".into())),
            Kind::Geopoint => {
                let parts = naming.geopoint(&column);
                let ranges = [Some((-90.0, 90.0)), Some((-180.0, 180.0)), None, None];
                for ((name, what), r) in parts
                    .iter()
                    .zip(["latitude", "longitude", "altitude", "precision"])
                    .zip(ranges)
                {
                    let mut text = String::from("type = \"numeric\"\n");
                    if let Some((lo, hi)) = r {
                        let _ = writeln!(text, "range = [{lo}, {hi}]");
                    }
                    vars.push((
                        name.clone(),
                        if label.is_empty() {
                            what.to_string()
                        } else {
                            format!("{label}: {what}")
                        },
                        text,
                    ));
                }
            }
            Kind::Calculate { calculation } => {
                let lookup = lookup_at(level, false);
                let mut text = String::from("\n");
                if calculation.is_empty() {
                    comment_lines(
                        &mut text,
                        &format!("calculate {} ({}) has no calculation.", q.name, q.cell),
                    );
                    tally.calculations_untranslated += 1;
                    derived.push(Piece::fixed(text));
                    continue;
                }
                match translate_calculation(calculation, &lookup) {
                    Ok(expr) if !declared.contains(&column) => {
                        let mut block = String::from("\n[[derived]]\n");
                        comment_lines(
                            &mut block,
                            &format!("calculate {} ({}): {calculation}", q.name, q.cell),
                        );
                        let _ = writeln!(block, "name = {}", quote(&column));
                        if !q.label.is_empty() {
                            let _ = writeln!(block, "label = {}", quote(&q.label));
                        }
                        let _ = writeln!(block, "expr = {}", quote(&expr));
                        declared.insert(column.clone());
                        tally.derived += 1;
                        let mut fallback = String::new();
                        comment_lines(
                            &mut fallback,
                            &format!(
                                "calculate {} ({}): {calculation}, translated as `{expr}` but not accepted",
                                q.name, q.cell
                            ),
                        );
                        derived.push(Piece {
                            text: block,
                            fallback: Some(fallback),
                        });
                    }
                    Ok(_) => {
                        comment_lines(
                            &mut text,
                            &format!(
                                "calculate {} ({}): the name {column} is taken",
                                q.name, q.cell
                            ),
                        );
                        tally.calculations_untranslated += 1;
                        derived.push(Piece::fixed(text));
                    }
                    Err(u) => {
                        comment_lines(
                            &mut text,
                            &format!(
                                "calculate {} ({}) not translated: {calculation} ({})",
                                q.name, q.cell, u.reason
                            ),
                        );
                        tally.calculations_untranslated += 1;
                        derived.push(Piece::fixed(text));
                    }
                }
                continue;
            }
        }

        let mut item_names = Vec::new();
        for (k, (name, label, body)) in vars.into_iter().enumerate() {
            if !declared.insert(name.clone()) {
                let mut text = String::from("\n");
                comment_lines(
                    &mut text,
                    &format!(
                        "{} ({}): the column {name} is declared already: left out",
                        q.name, q.cell
                    ),
                );
                pieces.push(Piece::fixed(text));
                continue;
            }
            let mut text = String::from("\n[[variables]]\n");
            if k == 0 {
                comment_lines(&mut text, &format!("{} ({})", q.name, q.cell));
                for n in &notes {
                    comment_lines(&mut text, n);
                }
            }
            let _ = writeln!(text, "name = {}", quote(&name));
            if !label.is_empty() {
                let _ = writeln!(text, "label = {}", quote(&label));
            }
            text.push_str(&body);
            if let Some(l) = level {
                let _ = writeln!(text, "level = \"{}\"", l.as_str());
            }
            pieces.push(Piece::fixed(text));
            if let Some(p) = asked_if_piece(&asked_if, &name) {
                pieces.push(p);
            }
            tally.variables += 1;
            item_names.push(name);
        }

        if matches!(q.kind, Kind::SelectMultiple { .. }) && !item_names.is_empty() {
            let mut block = String::from("\n[[indicators]]\n");
            comment_lines(
                &mut block,
                &format!(
                    "select_multiple {} ({}): the share mentioning each choice, among those who answered",
                    q.name, q.cell
                ),
            );
            let id: String = q
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let _ = writeln!(block, "id = {}", quote(&id));
            if !q.label.is_empty() {
                let _ = writeln!(block, "label = {}", quote(&q.label));
            }
            let _ = writeln!(block, "kind = \"distribution\"");
            let items: Vec<String> = item_names.iter().map(|n| quote(n)).collect();
            let _ = writeln!(block, "items = [{}]", items.join(", "));
            let _ = writeln!(
                block,
                "universe = {}",
                quote(&format!("answered({})", in_expression(&item_names[0])))
            );
            if let Some(l) = level {
                let _ = writeln!(block, "level = \"{}\"", l.as_str());
            }
            tally.sets += 1;
            let mut fallback = String::new();
            comment_lines(
                &mut fallback,
                &format!("multiple-response set {} not accepted", q.name),
            );
            indicators.push(Piece {
                text: block,
                fallback: Some(fallback),
            });
        }
    }
    pieces.extend(derived);
    pieces.extend(indicators);
    let toml = settle(path, pieces)?;

    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "drafted from {file_name}: {} variables from {} questions, {} derived, {} multiple-response sets",
        tally.variables, tally.questions, tally.derived, tally.sets
    );
    let _ = writeln!(
        summary,
        "skip rules: {} translated, {} not translated (kept as comments naming the form row)",
        tally.rules_translated, tally.rules_untranslated
    );
    if tally.derived + tally.calculations_untranslated > 0 {
        let _ = writeln!(
            summary,
            "calculations: {} translated, {} not",
            tally.derived, tally.calculations_untranslated
        );
    }
    let _ = writeln!(summary, "choice lists: {}", form.lists);
    let _ = writeln!(
        summary,
        "languages: {}",
        if form.languages.is_empty() {
            "none (plain label column)".to_string()
        } else {
            form.languages
                .iter()
                .map(|l| {
                    if Some(l) == form.language.as_ref() {
                        format!("{l} (chosen)")
                    } else {
                        l.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let mut repeats = Vec::new();
    if let Some(r) = &form.repeat {
        repeats.push(format!("{r} drafted as the person level (KEY, PARENT_KEY)"));
    }
    for (name, n) in &form.undrafted {
        repeats.push(format!("{name} not drafted ({n} questions)"));
    }
    let _ = writeln!(
        summary,
        "repeats: {}",
        if repeats.is_empty() {
            "none".to_string()
        } else {
            repeats.join("; ")
        }
    );
    let _ = writeln!(
        summary,
        "column names: {}{}",
        naming.describe(),
        match header {
            Some(_) => format!(" (--data header: {found} of {expected} main-file columns found)"),
            None => " (default; give --data to detect them from an export)".into(),
        }
    );
    Ok(XlsformDraft { toml, summary })
}

/// The draft's text, checked by the questionnaire parser: a piece it refuses (an expression
/// the translation wrote that the parser does not accept) is replaced by its comment, with
/// the parser's reason, until the draft parses.
fn settle(path: &Path, mut pieces: Vec<Piece>) -> Result<String, XlsformError> {
    for _ in 0..=pieces.len() {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(pieces.len());
        let mut line = 1;
        for p in &pieces {
            starts.push(line);
            line += p.text.matches('\n').count();
            text.push_str(&p.text);
        }
        let problems = match Questionnaire::from_toml_str(&text, Path::new("draft.toml")) {
            Ok(_) => return Ok(text),
            Err(QuestionnaireError::Invalid { problems, .. }) => problems,
            Err(e) => {
                return Err(XlsformError::Draft {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        let mut replaced = false;
        for problem in &problems {
            let Some(at) = problem.line else { continue };
            let k = starts.partition_point(|&s| s <= at).saturating_sub(1);
            if let Some(fallback) = pieces[k].fallback.take() {
                let mut text = fallback;
                comment_lines(
                    &mut text,
                    &format!("(the questionnaire parser: {})", problem.message),
                );
                if !text.starts_with('\n') {
                    text.insert(0, '\n');
                }
                pieces[k].text = text;
                replaced = true;
            }
        }
        if !replaced {
            let message = problems
                .iter()
                .map(|p| match p.line {
                    Some(l) => format!("line {l}: {}", p.message),
                    None => p.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(XlsformError::Draft {
                path: path.to_path_buf(),
                message,
            });
        }
    }
    Err(XlsformError::Draft {
        path: path.to_path_buf(),
        message: "the draft does not settle".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheets(survey: &[&[&str]], choices: &[&[&str]], settings: &[&[&str]]) -> FormSheets {
        FormSheets {
            survey: Sheet::from_rows("survey", survey),
            choices: (!choices.is_empty()).then(|| Sheet::from_rows("choices", choices)),
            settings: (!settings.is_empty()).then(|| Sheet::from_rows("settings", settings)),
        }
    }

    fn drafted(form: &FormSheets, language: Option<&str>, header: Option<&[&str]>) -> XlsformDraft {
        let header: Option<Vec<String>> = header.map(|h| h.iter().map(|s| s.to_string()).collect());
        draft(Path::new("form.xlsx"), form, language, header.as_deref()).expect("drafts")
    }

    const CHOICES: &[&[&str]] = &[
        &[
            "list name",
            "name",
            "label::English (en)",
            "label::Français (fr)",
        ],
        &["yn", "1", "Yes", "Oui"],
        &["yn", "2", "No", "Non"],
        &["fruit", "apple", "Apple", "Pomme"],
        &["fruit", "kiwi", "Kiwi", "Kiwi"],
    ];

    #[test]
    fn type_cells_are_read_with_pyxform_aliases() {
        let t = |ty: &str| parse_type(ty).map(|p| (p.class, p.list, p.or_other));
        assert_eq!(
            t("select_one yn"),
            Some((TypeClass::SelectOne, "yn".into(), false))
        );
        assert_eq!(
            t("select one from yn"),
            Some((TypeClass::SelectOne, "yn".into(), false))
        );
        assert_eq!(
            t("select all that apply from toilet_type or specify other"),
            Some((TypeClass::SelectMultiple, "toilet_type".into(), true))
        );
        assert_eq!(
            t("select_multiple Fruit or_other"),
            Some((TypeClass::SelectMultiple, "Fruit".into(), true))
        );
        assert_eq!(
            t("select_one_from_file places.csv").map(|x| x.0),
            Some(TypeClass::OtherText)
        );
        assert_eq!(
            t("begin lgroup").map(|x| x.0),
            Some(TypeClass::Begin(Block::Repeat))
        );
        assert_eq!(
            t("end_repeat").map(|x| x.0),
            Some(TypeClass::End(Block::Repeat))
        );
        assert_eq!(
            t("begin loop over fruit"),
            Some((TypeClass::Begin(Block::Loop), "fruit".into(), false))
        );
        assert_eq!(t("dateTime").map(|x| x.0), Some(TypeClass::Text));
        assert_eq!(t("phone number").map(|x| x.0), Some(TypeClass::None));
        assert_eq!(t("uri:deviceid").map(|x| x.0), Some(TypeClass::None));
        assert_eq!(t("integr"), None);
    }

    #[test]
    fn columns_are_normalised_as_pyxform_reads_them() {
        let c = |raw: &str| {
            let c = normalise_column(raw);
            (c.base, c.language)
        };
        assert_eq!(c(" List Name "), ("list_name".into(), None));
        assert_eq!(
            c("label::English (en)"),
            ("label".into(), Some("English (en)".into()))
        );
        assert_eq!(c("label:French"), ("label".into(), Some("French".into())));
        assert_eq!(c("bind:relevant"), ("relevant".into(), None));
        assert_eq!(c("Relevance"), ("relevant".into(), None));
        assert_eq!(cell_name("survey", 12, 1), "survey!B12");
        assert_eq!(cell_name("survey", 3, 27), "survey!AB3");
    }

    #[test]
    fn range_parameters_have_odk_defaults() {
        assert_eq!(range_parameters(""), (1.0, 10.0, true));
        assert_eq!(
            range_parameters("start=0 end=5 step=0.5"),
            (0.0, 5.0, false)
        );
        assert_eq!(range_parameters("start=10;end=0"), (0.0, 10.0, true));
    }

    #[test]
    fn groups_are_flattened_as_the_export_names_them() {
        let form = sheets(
            &[
                &["type", "name", "label"],
                &["begin_group", "hh", "Household"],
                &["begin group", "roof", ""],
                &["integer", "rooms", "Rooms"],
                &["end group", "", ""],
                &["end_group", "", ""],
                &["text", "comment", "Comment"],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        assert!(d.toml.contains("name = \"hh/roof/rooms\""), "{}", d.toml);
        assert!(d.toml.contains("name = \"comment\""));
        let d = drafted(&form, None, Some(&["hh-roof-rooms", "comment"]));
        assert!(d.toml.contains("name = \"hh-roof-rooms\""), "{}", d.toml);
        assert!(
            d.summary.contains("2 of 2 main-file columns found"),
            "{}",
            d.summary
        );
        let d = drafted(&form, None, Some(&["rooms", "comment", "KEY"]));
        assert!(d.toml.contains("name = \"rooms\""), "{}", d.toml);
    }

    #[test]
    fn select_multiple_items_and_geopoints_are_named_as_the_export_names_them() {
        let form = sheets(
            &[
                &["type", "name", "label::English (en)"],
                &["select_multiple fruit", "likes", "Fruit liked"],
                &["geopoint", "home", "Home"],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        for name in [
            "likes/apple",
            "likes/kiwi",
            "_home_latitude",
            "_home_precision",
        ] {
            assert!(
                d.toml.contains(&format!("name = \"{name}\"")),
                "{name}: {}",
                d.toml
            );
        }
        assert!(
            d.toml.contains("items = [\"likes/apple\", \"likes/kiwi\"]"),
            "{}",
            d.toml
        );
        assert!(
            d.toml.contains("universe = \"answered(`likes/apple`)\""),
            "{}",
            d.toml
        );
        assert!(d.toml.contains("codes = { 0 = \"No\", 1 = \"Yes\" }"));
        let q = Questionnaire::from_toml_str(&d.toml, Path::new("d.toml")).expect("parses");
        let set = q.indicator("likes").expect("multiple-response set");
        assert_eq!(set.kind, super::super::IndicatorKind::Distribution);

        let d = drafted(&form, None, Some(&["likes_apple", "home-Latitude"]));
        assert!(d.toml.contains("name = \"likes_kiwi\""), "{}", d.toml);
        assert!(d.toml.contains("name = \"home-Accuracy\""), "{}", d.toml);
    }

    #[test]
    fn the_language_is_the_wanted_else_the_default_else_the_first() {
        let languages = vec!["English (en)".to_string(), "Français (fr)".to_string()];
        let p = Path::new("f.xlsx");
        let pick = |wanted, default| choose_language(p, &languages, wanted, default);
        assert_eq!(pick(None, "").expect("ok").as_deref(), Some("English (en)"));
        assert_eq!(
            pick(None, "Français (fr)").expect("ok").as_deref(),
            Some("Français (fr)")
        );
        assert_eq!(
            pick(Some("fr"), "").expect("ok").as_deref(),
            Some("Français (fr)")
        );
        assert_eq!(
            pick(Some("english (EN)"), "").expect("ok").as_deref(),
            Some("English (en)")
        );
        let e = pick(Some("de"), "").expect_err("unknown");
        assert!(e.to_string().contains("English (en), Français (fr)"), "{e}");
        assert_eq!(choose_language(p, &[], None, "").expect("ok"), None);
        assert!(choose_language(p, &[], Some("en"), "").is_err());

        let form = sheets(
            &[
                &[
                    "type",
                    "name",
                    "label::English (en)",
                    "label::Français (fr)",
                ],
                &["select_one yn", "agree", "Agree?", "D'accord ?"],
            ],
            CHOICES,
            &[&["form_id", "default_language"], &["f1", "Français (fr)"]],
        );
        let d = drafted(&form, None, None);
        assert!(d.toml.contains("label = \"D'accord ?\""), "{}", d.toml);
        assert!(d.toml.contains("1 = \"Oui\""), "{}", d.toml);
        assert!(d.toml.contains("id = \"f1\""), "{}", d.toml);
        assert!(
            d.summary.contains("Français (fr) (chosen)"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn the_first_repeat_is_the_person_level_and_further_repeats_are_not_drafted() {
        let form = sheets(
            &[
                &["type", "name", "label"],
                &["integer", "size", "Household size"],
                &["begin_repeat", "members", "Members"],
                &["integer", "age", "Age"],
                &["begin_repeat", "jobs", "Jobs"],
                &["text", "job", "Job"],
                &["end_repeat", "", ""],
                &["end_repeat", "", ""],
                &["begin_repeat", "plots", "Plots"],
                &["decimal", "area", "Area"],
                &["end_repeat", "", ""],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        let q = Questionnaire::from_toml_str(&d.toml, Path::new("d.toml")).expect("parses");
        assert_eq!(q.variable("size").map(|v| v.level), Some(Level::Household));
        assert_eq!(q.variable("KEY").map(|v| v.level), Some(Level::Household));
        assert_eq!(
            q.variable("members/age").map(|v| v.level),
            Some(Level::Person)
        );
        assert_eq!(
            q.variable("PARENT_KEY").map(|v| v.level),
            Some(Level::Person)
        );
        assert!(q.variable("members/jobs/job").is_none());
        assert!(q.variable("plots/area").is_none());
        assert!(
            d.toml.contains("# repeat jobs (survey!A5) is not drafted"),
            "{}",
            d.toml
        );
        assert!(
            d.summary.contains("members drafted as the person level")
                && d.summary.contains("jobs not drafted (1 questions)")
                && d.summary.contains("plots not drafted (1 questions)"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_loop_is_drafted_once_per_choice_of_its_list() {
        let form = sheets(
            &[
                &["type", "name", "label"],
                &["begin loop over fruit", "eaten", ""],
                &["integer", "times", "Times %(label)s eaten"],
                &["end loop", "", ""],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        assert!(
            d.toml.contains("name = \"eaten/apple/times\""),
            "{}",
            d.toml
        );
        assert!(
            d.toml.contains("label = \"Times Kiwi eaten\""),
            "{}",
            d.toml
        );
        let missing = sheets(
            &[
                &["type", "name"],
                &["begin loop over veg", "l"],
                &["end loop", ""],
            ],
            CHOICES,
            &[],
        );
        let e = draft(Path::new("f.xlsx"), &missing, None, None).expect_err("no list");
        assert!(
            e.to_string()
                .contains("survey!A2: `l` selects from list \"veg\""),
            "{e}"
        );
    }

    #[test]
    fn constraints_become_ranges_open_ends_included() {
        let form = sheets(
            &[
                &["type", "name", "label", "constraint"],
                &["integer", "age", "Age", ". >= 0 and . <= 120"],
                &["integer", "visits", "Visits", ". >= 0"],
                &["decimal", "balance", "Balance", ". <= 10.5"],
                &["integer", "code", "Code", "regex(., '[0-9]+')"],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        for range in [
            "range = [0, 120]",
            "range = [0, inf]",
            "range = [-inf, 10.5]",
        ] {
            assert!(d.toml.contains(range), "{range}: {}", d.toml);
        }
        assert!(
            d.toml
                .contains("constraint not drafted: regex(., '[0-9]+')"),
            "{}",
            d.toml
        );
        // The draft reads back with the open ends.
        let q = Questionnaire::from_toml_str(&d.toml, Path::new("draft.toml")).expect("parses");
        let visits = q
            .variables
            .iter()
            .find(|v| v.name == "visits")
            .expect("visits");
        assert_eq!(visits.range, Some((0.0, f64::INFINITY)));
    }

    #[test]
    fn an_untranslated_skip_rule_is_a_comment_naming_the_form_row() {
        let form = sheets(
            &[
                &["type", "name", "label", "relevant"],
                &["text", "name", "Name", ""],
                &["integer", "age", "Age", "regex(${name}, '[a-z]+')"],
            ],
            CHOICES,
            &[],
        );
        let d = drafted(&form, None, None);
        assert!(
            d.toml.contains(
                "skip rule not translated (survey!D3: relevant regex(${name}, '[a-z]+'))"
            ),
            "{}",
            d.toml
        );
        assert!(!d.toml.contains("asked_if"), "{}", d.toml);
        assert!(
            d.summary.contains("0 translated, 1 not translated"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_piece_the_parser_refuses_is_replaced_by_its_comment() {
        let pieces = vec![
            Piece::fixed("[questionnaire]\nid = \"x\"\nversion = \"1\"\n".into()),
            Piece::fixed("\n[[variables]]\nname = \"a\"\ntype = \"integer\"\n".into()),
            Piece {
                text: "asked_if = \"nowhere == 1\"\n".into(),
                fallback: Some("# skip rule of a not accepted\n".into()),
            },
        ];
        let text = settle(Path::new("f.xlsx"), pieces).expect("settles");
        assert!(text.contains("# skip rule of a not accepted"), "{text}");
        assert!(
            text.contains("nowhere"),
            "the parser's reason is kept: {text}"
        );
        assert!(!text.contains("asked_if ="), "{text}");
        Questionnaire::from_toml_str(&text, Path::new("d.toml")).expect("parses");
    }

    #[test]
    fn form_errors_name_the_cell() {
        let p = Path::new("f.xlsx");
        let dup = sheets(
            &[
                &["type", "name", "label"],
                &["begin_group", "g", ""],
                &["integer", "a", ""],
                &["end_group", "", ""],
                &["integer", "a", ""],
                &["integer", "a", ""],
            ],
            CHOICES,
            &[],
        );
        // The same name in another group is another column; twice in one group is an error.
        let e = draft(p, &dup, None, None).expect_err("duplicate");
        assert!(
            e.to_string()
                .contains("survey!B6: the name \"a\" is already used at survey!B5"),
            "{e}"
        );
        let no_name = sheets(&[&["type", "name"], &["integer", ""]], CHOICES, &[]);
        let e = draft(p, &no_name, None, None).expect_err("no name");
        assert!(
            e.to_string()
                .contains("survey!B2: a integer row has no name"),
            "{e}"
        );
        let no_type = sheets(&[&["kind", "name"], &["integer", "a"]], CHOICES, &[]);
        let e = draft(p, &no_type, None, None).expect_err("no type column");
        assert!(
            e.to_string().contains("sheet survey has no `type` column"),
            "{e}"
        );
    }
}
