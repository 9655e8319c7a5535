//! `cvsurvey questionnaire import`: a first questionnaire drafted from a data file's dictionary.
//!
//! From an SPSS (`.sav`, `.zsav`) or Stata (`.dta`) file: every variable with its label and type,
//! value labels as codes, SPSS user-missing values and labelled Stata extended missing values as
//! missing codes, their meaning guessed from their labels. From a CSV: the same from a codebook
//! CSV (`docs/data-formats.md`), types inferred from the data where the codebook does not say.
//! The result is TOML that [`Questionnaire::from_toml_str`] accepts as it is; skip logic, frame
//! flags, derived variables and indicators are left to the author.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{MissingMeaning, Questionnaire};
use crate::frame::format_number;
use crate::ingest::IngestError;
use crate::ingest::statfile::{
    FileCode, FileDictionary, FileMissing, FileType, FileVariable, guess_meaning,
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

/// Draft a questionnaire for `data` (`.sav`, `.zsav`, `.dta`, or `.csv` with an optional
/// codebook). Returns TOML text; it is checked with [`Questionnaire::from_toml_str`] first.
pub fn import(data: &Path, codebook: Option<&Path>) -> Result<String, ImportError> {
    let extension = data
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let text = match extension.as_deref() {
        Some("csv") => {
            let (dict, meanings) = csv_dictionary(data, codebook)?;
            to_toml(&dict, data, &meanings)
        }
        Some("sav" | "zsav" | "dta") => {
            if codebook.is_some() {
                return Err(ImportError::CodebookNotForStatfile {
                    path: data.to_path_buf(),
                });
            }
            let dict = crate::ingest::statfile::read_dictionary(data)?;
            to_toml(&dict, data, &Meanings::new())
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
fn quote(s: &str) -> String {
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
fn comment_text(s: &str) -> String {
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

/// Valid codes, missing codes (code, meaning, label) and comments of one variable.
#[derive(Debug, Clone, PartialEq)]
struct Coding {
    codes: Vec<(String, String)>,
    missing: Vec<(String, MissingMeaning, String)>,
}

fn coding(
    v: &FileVariable,
    numeric_type: bool,
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
        if let FileCode::Extended(_) = code {
            if numeric_type {
                notes.push(format!(
                    "Stata missing value {} ({label:?}) cannot be a missing code of an integer or \
                     numeric variable; it is read as blank",
                    code.as_code()
                ));
            } else {
                add_missing(code, label);
            }
        } else if v.is_missing(code) {
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
        } else if !numeric_type {
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
    for m in &v.missing {
        match m {
            FileMissing::Code(code) => {
                let label = v.label_of(code).unwrap_or("").to_string();
                add_missing(code, &label);
            }
            FileMissing::Range(lo, hi) => {
                let show = |x: f64| {
                    if x.is_infinite() {
                        if x < 0.0 { "LO".into() } else { "HI".into() }
                    } else {
                        format_number(x)
                    }
                };
                notes.push(format!(
                    "user-missing range {}..{} of the file: only its labelled values are listed \
                     as missing codes; add the others",
                    show(*lo),
                    show(*hi)
                ));
            }
        }
    }
    // A code declared missing is not also a valid code.
    codes.retain(|(c, _)| !missing.iter().any(|(m, _, _)| m == c));
    Coding { codes, missing }
}

fn toml_codes(codes: &[(String, String)]) -> String {
    let parts: Vec<String> = codes
        .iter()
        .map(|(c, l)| format!("{} = {}", key(c), quote(l)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

fn toml_missing(missing: &[(String, MissingMeaning, String)]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|(c, m, l)| {
            if l.is_empty() {
                format!("{} = {}", key(c), quote(meaning_name(*m)))
            } else {
                format!(
                    "{} = {{ meaning = {}, label = {} }}",
                    key(c),
                    quote(meaning_name(*m)),
                    quote(l)
                )
            }
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

fn identifier(path: &Path) -> String {
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

/// The questionnaire TOML for a dictionary.
fn to_toml(dict: &FileDictionary, data: &Path, meanings: &Meanings) -> String {
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

    // Variables with the same codes and missing codes share a code set, named after the first.
    let mut per_var = Vec::new();
    for v in &dict.variables {
        let mut notes = Vec::new();
        let numeric_type = match v.file_type {
            FileType::Numeric { .. } => !v
                .value_labels
                .iter()
                .any(|(c, _)| !matches!(c, FileCode::Extended(_)) && !v.is_missing(c)),
            FileType::Text { .. } => false,
        };
        // A codebook says which codes are missing; a file dictionary may leave them plain.
        let guess_plain = dict.format != "CSV";
        let c = coding(v, numeric_type, meanings, guess_plain, &mut notes);
        per_var.push((v, numeric_type, c, notes));
    }
    let mut uses: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (v, _, c, _) in &per_var {
        if c.codes.len() >= 2 {
            let sig = format!("{}|{}", toml_codes(&c.codes), toml_missing(&c.missing));
            let entry = uses
                .entry(sig)
                .or_insert_with(|| (0, format!("{}_codes", v.name)));
            entry.0 += 1;
        }
    }
    let mut written_sets = Vec::new();
    for (v, _, c, _) in &per_var {
        if c.codes.len() < 2 {
            continue;
        }
        let sig = format!("{}|{}", toml_codes(&c.codes), toml_missing(&c.missing));
        if let Some((n, name)) = uses.get(&sig)
            && *n >= 2
            && !written_sets.contains(name)
        {
            let _ = writeln!(out, "\n[codesets.{}]", key(name));
            let _ = writeln!(out, "codes = {}", toml_codes(&c.codes));
            if !c.missing.is_empty() {
                let _ = writeln!(out, "missing = {}", toml_missing(&c.missing));
            }
            written_sets.push(name.clone());
            let _ = v;
        }
    }

    for (v, numeric_type, c, notes) in &per_var {
        out.push_str("\n[[variables]]\n");
        for n in notes {
            let _ = writeln!(out, "# {}", comment_text(n));
        }
        let _ = writeln!(out, "name = {}", quote(&v.name));
        if !v.label.trim().is_empty() {
            let _ = writeln!(out, "label = {}", quote(v.label.trim()));
        }
        let categorical = !c.codes.is_empty();
        let ty = match (v.file_type, categorical, numeric_type) {
            (_, true, _) => "categorical",
            (FileType::Text { .. }, false, _) => "text",
            (FileType::Numeric { integer: true }, false, _) => "integer",
            (FileType::Numeric { integer: false }, false, _) => "numeric",
        };
        let _ = writeln!(out, "type = \"{ty}\"");
        let sig = format!("{}|{}", toml_codes(&c.codes), toml_missing(&c.missing));
        match uses.get(&sig) {
            Some((n, name)) if *n >= 2 && categorical => {
                let _ = writeln!(out, "codeset = {}", quote(name));
            }
            _ => {
                if categorical {
                    let _ = writeln!(out, "codes = {}", toml_codes(&c.codes));
                }
                if !c.missing.is_empty() && ty != "text" {
                    let _ = writeln!(out, "missing = {}", toml_missing(&c.missing));
                }
            }
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
    }
}
