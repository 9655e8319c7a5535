//! `cvsurvey questionnaire import`: a first questionnaire drafted from a data file's dictionary.
//!
//! From an SPSS (`.sav`, `.zsav`, `.por`) or Stata (`.dta`) file: every variable with its label
//! and type, value labels as codes, SPSS user-missing values and ranges and Stata extended
//! missing values as missing declarations, their meaning guessed from their labels. The data
//! are read too (one pass, constant memory), so that the draft validates its own file: a
//! variable whose labels cover only some of its values is not drafted as categorical, and
//! unlabelled `.a`–`.z` values found in the data are declared. From a CSV: the same from a
//! codebook CSV (`docs/data-formats.md`), types inferred from the data where the codebook does
//! not say. The result is TOML that [`Questionnaire::from_toml_str`] accepts as it is; skip
//! logic, frame flags, derived variables and indicators are left to the author.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{MissingMeaning, Questionnaire};
use crate::frame::format_number;
use crate::ingest::IngestError;
use crate::ingest::dictionary::{
    FileCode, FileDictionary, FileMissing, FileType, FileVariable, Observed, guess_meaning,
};

/// Errors of `questionnaire import`.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The data file could not be read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The codebook is not usable.
    #[error(
        "{}{}: {message}",
        path.display(),
        if *line > 0 { format!(":{line}") } else { String::new() }
    )]
    Codebook {
        /// Codebook file.
        path: PathBuf,
        /// 1-based line (0 for the whole file).
        line: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// A codebook was given for an SPSS/Stata file, whose dictionary already says it all.
    #[error(
        "{}: --codebook applies to CSV data; SPSS and Stata files carry their own dictionary",
        path.display()
    )]
    CodebookNotForStatfile {
        /// Data file.
        path: PathBuf,
    },
    /// The drafted questionnaire does not parse (a bug: please report it with the file).
    #[error("the drafted questionnaire is not valid: {0}")]
    Draft(String),
}

/// Draft a questionnaire for `data` (`.sav`, `.zsav`, `.por`, `.dta`, or `.csv` with an optional
/// codebook). Returns TOML text; it is checked with [`Questionnaire::from_toml_str`] first.
pub fn import(data: &Path, codebook: Option<&Path>) -> Result<String, ImportError> {
    let extension = data
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let text = match extension.as_deref() {
        Some("csv") => {
            let (dict, meanings) = csv_dictionary(data, codebook)?;
            to_toml(&dict, None, data, &meanings)
        }
        Some("sav" | "zsav" | "dta" | "por") => {
            if codebook.is_some() {
                return Err(ImportError::CodebookNotForStatfile {
                    path: data.to_path_buf(),
                });
            }
            // The values too, not only the dictionary: a variable whose labels cover only some
            // of its values is not categorical, and unlabelled .a-.z values need declaring.
            let (dict, observed) = crate::ingest::statfile::observe(data)?;
            to_toml(&dict, Some(&observed), data, &Meanings::new())
        }
        _ => {
            return Err(ImportError::Ingest(IngestError::UnsupportedFormat {
                path: data.to_path_buf(),
            }));
        }
    };
    Questionnaire::from_toml_str(&text, Path::new("imported.toml"))
        .map_err(|e| ImportError::Draft(e.to_string()))?;
    Ok(text)
}

/// A TOML basic string.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `#` comment: TOML comments end at the line's end and may not hold control
/// characters, so those (from labels and codes in the file) are written as `\u{..}`.
pub(super) fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                format!("\\u{{{:04X}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word keeps its
/// own line).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        quote(s)
    }
}

fn meaning_name(m: MissingMeaning) -> &'static str {
    match m {
        MissingMeaning::DontKnow => "dont_know",
        MissingMeaning::Refused => "refused",
        MissingMeaning::NotApplicable => "not_applicable",
        MissingMeaning::NoResponse => "no_response",
        MissingMeaning::Other => "other",
    }
}

/// Meanings stated by a codebook, by (variable, code); others are guessed from labels.
type Meanings = BTreeMap<(String, String), MissingMeaning>;

/// A missing range as drafted: low, high (±infinity for SPSS `LO`/`HI`), meaning.
type DraftRange = (f64, f64, MissingMeaning);

/// Valid codes, missing codes (code, meaning, label) and missing ranges of one variable.
#[derive(Debug, Clone, PartialEq)]
struct Coding {
    codes: Vec<(String, String)>,
    missing: Vec<(String, MissingMeaning, String)>,
    ranges: Vec<DraftRange>,
}

/// One variable as drafted.
struct Draft<'a> {
    var: &'a FileVariable,
    /// `categorical`, `integer`, `numeric` or `text`.
    ty: &'static str,
    /// Codes are listed only for `categorical` and coded `text` variables.
    coding: Coding,
    /// Valid range (a scale labelled at its ends only).
    range: Option<(f64, f64)>,
    notes: Vec<String>,
}

/// A code as the questionnaire parser takes a number: a finite number written the usual way.
fn number_like(code: &str) -> bool {
    code.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

fn coding(
    v: &FileVariable,
    observed: Option<&Observed>,
    meanings: &Meanings,
    guess_plain: bool,
    notes: &mut Vec<String>,
) -> Coding {
    let mut codes = Vec::new();
    let mut missing: Vec<(String, MissingMeaning, String)> = Vec::new();
    let mut add_missing = |code: &FileCode, label: &str| {
        // A damaged file can declare NaN or an infinity as a missing value: no cell can equal
        // it, and a questionnaire code must be a number.
        if let FileCode::Num(x) = code
            && !x.is_finite()
        {
            return;
        }
        let written = code.as_code();
        if !missing.iter().any(|(c, _, _)| *c == written) {
            let meaning = meanings
                .get(&(v.name.clone(), written.clone()))
                .copied()
                .unwrap_or_else(|| guess_meaning(label));
            missing.push((written, meaning, label.to_string()));
        }
    };
    for (code, label) in &v.value_labels {
        if matches!(code, FileCode::Extended(_)) || v.is_missing(code) {
            // Stata's .a-.z are missing codes of any numeric variable; SPSS user-missing
            // values (and values in a user-missing range) are missing codes.
            add_missing(code, label);
        } else if guess_meaning(label) != MissingMeaning::Other && guess_plain {
            // A plain value labelled "Don't know", "Refused", ... is a missing code in all but
            // name (Stata files and many SPSS files keep 8/9 as plain values).
            notes.push(format!(
                "{} ({label:?}) is not declared missing in the file but labelled like a missing \
                 value: listed as missing",
                code.as_code()
            ));
            add_missing(code, label);
        } else {
            let written = code.as_code();
            // Two labels can write as the same code (1 and 1.0000000000000002, or text that
            // differs only in trailing blanks): the first is kept, as a TOML key must be unique.
            if codes.iter().any(|(c, _)| *c == written) {
                notes.push(format!(
                    "value {written:?} is labelled twice: the first label is kept"
                ));
            } else {
                codes.push((written, label.clone()));
            }
        }
    }
    let mut ranges = Vec::new();
    for m in &v.missing {
        match m {
            FileMissing::Code(code) => {
                let label = v.label_of(code).unwrap_or("").to_string();
                add_missing(code, &label);
            }
            FileMissing::Range(lo, hi) => {
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    notes.push(format!(
                        "the file declares an impossible user-missing range {}..{}: left out",
                        range_end(*lo),
                        range_end(*hi)
                    ));
                    continue;
                }
                // Its labelled values are listed as missing codes with their own meanings
                // (above); any other value in the range is some missing value: "other".
                ranges.push((*lo, *hi, MissingMeaning::Other));
            }
        }
    }
    // Extended missing values that occur in the data without a label: missing all the same.
    if let Some(seen) = observed {
        for (letter, n) in &seen.extended {
            let code = FileCode::Extended(*letter);
            let written = code.as_code();
            if !missing.iter().any(|(c, _, _)| *c == written) {
                notes.push(format!(
                    "Stata missing value {written} occurs in {n} row(s) without a label: listed as \
                     missing with meaning \"other\"; give it its meaning"
                ));
                let meaning = meanings
                    .get(&(v.name.clone(), written.clone()))
                    .copied()
                    .unwrap_or(MissingMeaning::Other);
                missing.push((written, meaning, String::new()));
            }
        }
    }
    // A code declared missing is not also a valid code.
    codes.retain(|(c, _)| !missing.iter().any(|(m, _, _)| m == c));
    Coding {
        codes,
        missing,
        ranges,
    }
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

/// Up to a few examples of values, for a comment.
fn examples(seen: &Observed) -> String {
    let mut shown: Vec<String> = seen
        .unlabelled_examples
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    if seen.unlabelled as usize > seen.unlabelled_examples.len() {
        shown.push("...".into());
    }
    shown.join(", ")
}

/// Decide the type of a variable from its storage, labels and (for SPSS and Stata files) the
/// values it holds, so that the draft reads its own file without quarantining a row.
fn draft<'a>(
    v: &'a FileVariable,
    observed: Option<&Observed>,
    meanings: &Meanings,
    guess_plain: bool,
) -> Draft<'a> {
    let mut notes = Vec::new();
    let mut c = coding(v, observed, meanings, guess_plain, &mut notes);
    let unlabelled = observed.map_or(0, |o| o.unlabelled);
    let text = matches!(v.file_type, FileType::Text { .. });
    let label_list = |codes: &[(String, String)]| -> String {
        codes
            .iter()
            .map(|(code, label)| format!("{} = {}", code_key(code, text), quote(label)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut range = None;
    let ty = match v.file_type {
        FileType::Text { .. } if c.codes.is_empty() => "text",
        FileType::Text { .. } => {
            if let Some(seen) = observed.filter(|_| unlabelled > 0) {
                notes.push(format!(
                    "the file labels only some of its values ({} cell(s) hold others: {}), so no \
                     codes are listed. Its labels: {}",
                    seen.unlabelled,
                    examples(seen),
                    label_list(&c.codes)
                ));
                c.codes.clear();
                "text"
            } else if c
                .codes
                .iter()
                .map(|(code, _)| code)
                .chain(c.missing.iter().map(|(code, _, _)| code))
                .all(|code| number_like(code))
            {
                // Codes that look like numbers would make a categorical variable numeric;
                // `type = "text"` keeps them text, as the file stores them.
                "text"
            } else {
                "categorical"
            }
        }
        FileType::Numeric { integer } => {
            let whole_data = observed.is_none_or(|o| o.whole);
            if c.codes.is_empty() {
                if integer && !whole_data {
                    notes.push(
                        "the file's format shows no decimals, but the data hold fractions: \
                         declared numeric"
                            .to_string(),
                    );
                }
                if integer && whole_data {
                    "integer"
                } else {
                    "numeric"
                }
            } else if let Some(seen) = observed.filter(|_| unlabelled > 0) {
                // Labels on some values only, as on a scale labelled at its ends: the other
                // values are valid too, so this is a number within the labelled and observed
                // values, not a categorical variable of the labelled codes.
                let labelled: Vec<f64> = c
                    .codes
                    .iter()
                    .filter_map(|(code, _)| code.parse::<f64>().ok())
                    .filter(|x| x.is_finite())
                    .collect();
                let whole = whole_data && labelled.iter().all(|x| x.fract() == 0.0);
                let (mut lo, mut hi) = seen.min_max.unwrap_or((f64::INFINITY, f64::NEG_INFINITY));
                for &x in &labelled {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
                let ty = if whole { "integer" } else { "numeric" };
                if lo <= hi {
                    range = Some((lo, hi));
                }
                notes.push(format!(
                    "the file labels only some values, and {} cell(s) hold others ({}): drafted \
                     as {ty} with the range of the labelled and observed values rather than as \
                     categorical. Its labels: {}",
                    seen.unlabelled,
                    examples(seen),
                    label_list(&c.codes)
                ));
                c.codes.clear();
                ty
            } else {
                "categorical"
            }
        }
    };
    Draft {
        var: v,
        ty,
        coding: c,
        range,
        notes,
    }
}

/// A code as a TOML key; `text` quotes it, so that a reader sees `"1"` is text.
fn code_key(code: &str, text: bool) -> String {
    if text { quote(code) } else { key(code) }
}

pub(super) fn toml_codes(codes: &[(String, String)], text: bool) -> String {
    let parts: Vec<String> = codes
        .iter()
        .map(|(c, l)| format!("{} = {}", code_key(c, text), quote(l)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

fn toml_missing(missing: &[(String, MissingMeaning, String)], text: bool) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|(c, m, l)| {
            if l.is_empty() {
                format!("{} = {}", code_key(c, text), quote(meaning_name(*m)))
            } else {
                format!(
                    "{} = {{ meaning = {}, label = {} }}",
                    code_key(c, text),
                    quote(meaning_name(*m)),
                    quote(l)
                )
            }
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// A TOML number: whole numbers without a fraction, infinities as `inf`/`-inf`.
pub(super) fn toml_number(x: f64) -> String {
    if x == f64::INFINITY {
        "inf".into()
    } else if x == f64::NEG_INFINITY {
        "-inf".into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        // Rust writes the shortest text that reads back as the same number, in a form TOML
        // accepts (`1.5`, `1e300`).
        format!("{x:?}")
    }
}

fn toml_ranges(ranges: &[DraftRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|(lo, hi, m)| {
            format!(
                "{{ low = {}, high = {}, meaning = {} }}",
                toml_number(*lo),
                toml_number(*hi),
                quote(meaning_name(*m))
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

pub(super) fn identifier(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("imported");
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() { "imported".into() } else { id }
}

/// The questionnaire TOML for a dictionary; `observed` (per variable, for SPSS and Stata files)
/// says what the data hold.
fn to_toml(
    dict: &FileDictionary,
    observed: Option<&[Observed]>,
    data: &Path,
    meanings: &Meanings,
) -> String {
    let file_name = data
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut out = String::new();
    let origin = format!(
        "Questionnaire drafted by `cvsurvey questionnaire import` from {file_name} ({} {}, {} \
         variables{}).",
        dict.format,
        dict.version,
        dict.variables.len(),
        dict.rows.map(|n| format!(", {n} rows")).unwrap_or_default()
    );
    let _ = writeln!(out, "# {}", comment_text(&origin));
    out.push_str(
        "# To add by hand: skip logic (asked_if), `frame = true` on frame and design columns \
         (ids, strata,\n# PSUs, weights, response status), ranges, derived variables and \
         indicators. Missing-value\n# meanings were guessed from their labels: check them. \
         Format: docs/questionnaire.md.\n\n",
    );
    let _ = writeln!(out, "[questionnaire]");
    let _ = writeln!(out, "id = {}", quote(&identifier(data)));
    let _ = writeln!(out, "version = \"0.1\"");
    let title = if dict.label.trim().is_empty() {
        file_name.clone()
    } else {
        dict.label.trim().to_string()
    };
    let _ = writeln!(out, "title = {}", quote(&title));

    // A codebook says which codes are missing; a file dictionary may leave them plain.
    let guess_plain = dict.format != "CSV";
    let drafts: Vec<Draft<'_>> = dict
        .variables
        .iter()
        .enumerate()
        .map(|(i, v)| draft(v, observed.and_then(|o| o.get(i)), meanings, guess_plain))
        .collect();

    // Variables with the same codes and missing codes share a code set, named after the first.
    let signature = |d: &Draft<'_>| {
        let text = d.ty == "text";
        format!(
            "{}|{}|{text}",
            toml_codes(&d.coding.codes, text),
            toml_missing(&d.coding.missing, text)
        )
    };
    let mut uses: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for d in &drafts {
        if d.coding.codes.len() >= 2 {
            let entry = uses
                .entry(signature(d))
                .or_insert_with(|| (0, format!("{}_codes", d.var.name)));
            entry.0 += 1;
        }
    }
    let mut written_sets = Vec::new();
    for d in &drafts {
        if d.coding.codes.len() < 2 {
            continue;
        }
        if let Some((n, name)) = uses.get(&signature(d))
            && *n >= 2
            && !written_sets.contains(name)
        {
            let text = d.ty == "text";
            let _ = writeln!(out, "\n[codesets.{}]", key(name));
            let _ = writeln!(out, "codes = {}", toml_codes(&d.coding.codes, text));
            if !d.coding.missing.is_empty() {
                let _ = writeln!(out, "missing = {}", toml_missing(&d.coding.missing, text));
            }
            written_sets.push(name.clone());
        }
    }

    for d in &drafts {
        out.push_str("\n[[variables]]\n");
        for n in &d.notes {
            for line in wrap(&comment_text(n), 98) {
                let _ = writeln!(out, "# {line}");
            }
        }
        let _ = writeln!(out, "name = {}", quote(&d.var.name));
        if !d.var.label.trim().is_empty() {
            let _ = writeln!(out, "label = {}", quote(d.var.label.trim()));
        }
        let _ = writeln!(out, "type = \"{}\"", d.ty);
        match uses.get(&signature(d)) {
            Some((n, name)) if *n >= 2 && !d.coding.codes.is_empty() => {
                let _ = writeln!(out, "codeset = {}", quote(name));
            }
            _ => {
                let text = d.ty == "text";
                if !d.coding.codes.is_empty() {
                    let _ = writeln!(out, "codes = {}", toml_codes(&d.coding.codes, text));
                }
                if !d.coding.missing.is_empty() {
                    let _ = writeln!(out, "missing = {}", toml_missing(&d.coding.missing, text));
                }
            }
        }
        if !d.coding.ranges.is_empty() {
            let _ = writeln!(out, "missing_ranges = {}", toml_ranges(&d.coding.ranges));
        }
        if let Some((lo, hi)) = d.range {
            let _ = writeln!(out, "range = [{}, {}]", toml_number(lo), toml_number(hi));
        }
    }
    out
}

/// Build a dictionary for a CSV from its header, its values (types) and an optional codebook.
fn csv_dictionary(
    data: &Path,
    codebook: Option<&Path>,
) -> Result<(FileDictionary, Meanings), ImportError> {
    let io = |e: &dyn std::fmt::Display| {
        ImportError::Ingest(IngestError::Io {
            path: data.to_path_buf(),
            message: e.to_string(),
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(data)
        .map_err(|e| io(&e))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| io(&e))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    // Per column: (any value, all whole numbers, all numbers).
    let mut kinds = vec![(false, true, true); header.len()];
    let mut rows = 0u64;
    for record in reader.byte_records() {
        let record = record.map_err(|e| io(&e))?;
        rows += 1;
        for (j, field) in record.iter().enumerate().take(header.len()) {
            let s = String::from_utf8_lossy(field);
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            let k = &mut kinds[j];
            k.0 = true;
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() => k.1 &= x.fract() == 0.0,
                _ => {
                    k.1 = false;
                    k.2 = false;
                }
            }
        }
    }
    let mut variables: Vec<FileVariable> = header
        .iter()
        .zip(&kinds)
        .map(|(name, &(any, whole, number))| FileVariable {
            name: name.clone(),
            label: String::new(),
            file_type: if any && number {
                FileType::Numeric { integer: whole }
            } else {
                FileType::Text { width: 0 }
            },
            value_labels: Vec::new(),
            missing: Vec::new(),
        })
        .collect();
    let mut meanings = Meanings::new();
    if let Some(cb) = codebook {
        apply_codebook(cb, &mut variables, &mut meanings)?;
    }
    let dict = FileDictionary {
        format: "CSV",
        version: String::new(),
        label: String::new(),
        variables,
        rows: Some(rows),
    };
    Ok((dict, meanings))
}

/// Read a codebook CSV (`variable,label,type,code,code_label,missing`) into the variables.
fn apply_codebook(
    path: &Path,
    variables: &mut Vec<FileVariable>,
    meanings: &mut Meanings,
) -> Result<(), ImportError> {
    let err = |line: u64, message: String| ImportError::Codebook {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(0, e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let Some(i_var) = col("variable") else {
        return Err(err(
            1,
            format!(
                "no `variable` column; expected the columns variable,label,type,code,code_label,\
                 missing (found: {})",
                header.join(",")
            ),
        ));
    };
    let (i_label, i_type, i_code, i_code_label, i_missing) = (
        col("label"),
        col("type"),
        col("code"),
        col("code_label"),
        col("missing"),
    );
    // Declared types: set after all rows are read.
    let mut declared: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for (k, record) in reader.records().enumerate() {
        let line = k as u64 + 2;
        let record = record.map_err(|e| err(line, e.to_string()))?;
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
        let name = get(Some(i_var));
        if name.is_empty() {
            return Err(err(line, "empty variable name".into()));
        }
        let idx = match variables.iter().position(|v| v.name == name) {
            Some(i) => i,
            None => {
                variables.push(FileVariable {
                    name: name.to_string(),
                    label: String::new(),
                    file_type: FileType::Text { width: 0 },
                    value_labels: Vec::new(),
                    missing: Vec::new(),
                });
                variables.len() - 1
            }
        };
        let v = &mut variables[idx];
        let label = get(i_label);
        if !label.is_empty() && v.label.is_empty() {
            v.label = label.to_string();
        }
        let ty = get(i_type).to_ascii_lowercase();
        if !ty.is_empty() {
            if !matches!(ty.as_str(), "categorical" | "integer" | "numeric" | "text") {
                return Err(err(
                    line,
                    format!("type {ty:?} of {name}: use categorical, integer, numeric or text"),
                ));
            }
            declared.insert(name.to_string(), (line, ty));
        }
        let code = get(i_code);
        let missing = get(i_missing).to_ascii_lowercase();
        if code.is_empty() {
            if !get(i_code_label).is_empty() || !missing.is_empty() {
                return Err(err(
                    line,
                    format!("{name}: code_label or missing without a code"),
                ));
            }
            continue;
        }
        let code_label = get(i_code_label).to_string();
        let file_code = if let Some(letter) = code
            .strip_prefix('.')
            .filter(|l| l.len() == 1 && l.chars().all(|c| c.is_ascii_lowercase()))
        {
            FileCode::Extended(letter.chars().next().unwrap_or('a'))
        } else {
            match code.parse::<f64>() {
                Ok(x) if x.is_finite() => FileCode::Num(x),
                _ => FileCode::Text(code.to_string()),
            }
        };
        let meaning = match missing.as_str() {
            "" | "no" | "false" | "0" => None,
            "yes" | "true" | "1" => Some(guess_meaning(&code_label)),
            "dont_know" => Some(MissingMeaning::DontKnow),
            "refused" => Some(MissingMeaning::Refused),
            "not_applicable" => Some(MissingMeaning::NotApplicable),
            "no_response" => Some(MissingMeaning::NoResponse),
            "other" => Some(MissingMeaning::Other),
            other => {
                return Err(err(
                    line,
                    format!(
                        "missing {other:?} of {name} = {code}: leave empty for a valid code, or \
                         write yes, dont_know, refused, not_applicable, no_response or other"
                    ),
                ));
            }
        };
        if v.value_labels.iter().any(|(c, _)| *c == file_code) {
            return Err(err(line, format!("{name}: code {code} listed twice")));
        }
        if let Some(meaning) = meaning {
            meanings.insert((name.to_string(), file_code.as_code()), meaning);
            if !matches!(file_code, FileCode::Extended(_)) {
                v.missing.push(FileMissing::Code(file_code.clone()));
            }
        }
        v.value_labels.push((file_code, code_label));
    }
    for (name, (line, ty)) in declared {
        let Some(v) = variables.iter_mut().find(|v| v.name == name) else {
            continue;
        };
        let has_codes = v
            .value_labels
            .iter()
            .any(|(c, _)| !v.is_missing(c) && !matches!(c, FileCode::Extended(_)));
        v.file_type = match ty.as_str() {
            "integer" => FileType::Numeric { integer: true },
            "numeric" => FileType::Numeric { integer: false },
            "text" => FileType::Text { width: 0 },
            _ => {
                if !has_codes {
                    return Err(err(
                        line,
                        format!("{name} is categorical but the codebook lists no valid codes"),
                    ));
                }
                let all_numeric = v
                    .value_labels
                    .iter()
                    .all(|(c, _)| matches!(c, FileCode::Num(_)));
                if all_numeric {
                    FileType::Numeric { integer: true }
                } else {
                    FileType::Text { width: 0 }
                }
            }
        };
        if matches!(ty.as_str(), "integer" | "numeric" | "text") && has_codes {
            return Err(err(
                line,
                format!("{name} is {ty} but the codebook lists valid codes; make it categorical"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a \"b\"\\"), "\"a \\\"b\\\"\\\\\"");
        assert_eq!(key("8"), "8");
        assert_eq!(key("-1"), "-1");
        assert_eq!(key("1.5"), "\"1.5\"");
        assert_eq!(key(".a"), "\".a\"");
        assert_eq!(code_key("1", true), "\"1\"");
        assert_eq!(code_key("1", false), "1");
    }

    #[test]
    fn numbers_are_written_as_toml_reads_them() {
        assert_eq!(toml_number(97.0), "97");
        assert_eq!(toml_number(-1.0), "-1");
        assert_eq!(toml_number(-2.5), "-2.5");
        assert_eq!(toml_number(f64::NEG_INFINITY), "-inf");
        assert_eq!(toml_number(f64::INFINITY), "inf");
        for x in [0.1, 1e300, -2.5e-7, 123456789012345678.0] {
            let text = format!("x = {}", toml_number(x));
            let back: toml::Table = toml::from_str(&text).expect("TOML");
            assert_eq!(back["x"].as_float(), Some(x), "{text}");
        }
    }

    #[test]
    fn comments_are_wrapped_at_spaces() {
        let lines = wrap("aaa bbb ccc dddddddddd e", 7);
        assert_eq!(lines, ["aaa bbb", "ccc", "dddddddddd", "e"]);
        assert_eq!(wrap("", 10), [""]);
    }
}
