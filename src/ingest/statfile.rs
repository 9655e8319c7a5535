//! SPSS and Stata files (`.sav`, `.zsav`, `.por`, `.dta`): the dictionary, and what the data of
//! each variable hold, from the reader that the file's extension names.
//!
//! Only the choice of reader is here. The types the readers share are in [`super::dictionary`]
//! and their cell sink in `stat_sink`, so that the imports run one way: statfile → readers
//! ([`super::sav`], [`super::dta`], [`super::por`]) → dictionary.

use std::path::Path;

use super::IngestError;
use super::dictionary::{FileDictionary, Observed};

/// Read the dictionary (no data) of a `.sav`, `.zsav`, `.por` or `.dta` file.
pub fn read_dictionary(path: &Path) -> Result<FileDictionary, IngestError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let dict = match extension.as_deref() {
        Some("sav") | Some("zsav") => super::sav::read_dictionary(path)?,
        Some("dta") => super::dta::read_dictionary(path)?,
        Some("por") => super::por::read_dictionary(path)?,
        _ => {
            return Err(IngestError::UnsupportedFormat {
                path: path.to_path_buf(),
            });
        }
    };
    check_variable_names(path, &dict)?;
    Ok(dict)
}

/// SPSS and Stata never write an unnamed variable or the same name twice; a file that has one
/// is damaged, and a questionnaire drafted from it could not name its columns.
fn check_variable_names(path: &Path, dict: &FileDictionary) -> Result<(), IngestError> {
    let mut seen = std::collections::HashSet::new();
    for (k, v) in dict.variables.iter().enumerate() {
        if v.name.trim().is_empty() {
            return Err(IngestError::Malformed {
                path: path.to_path_buf(),
                format: dict.format,
                message: format!("variable {} of the dictionary has no name", k + 1),
            });
        }
        if !seen.insert(v.name.as_str()) {
            return Err(IngestError::DuplicateColumn {
                path: path.to_path_buf(),
                column: v.name.clone(),
            });
        }
    }
    Ok(())
}

/// Read the dictionary and every cell of a `.sav`, `.zsav`, `.por` or `.dta` file, and say per variable
/// what its data hold (for `cvsurvey questionnaire import`). Memory does not grow with the rows.
pub fn observe(path: &Path) -> Result<(FileDictionary, Vec<Observed>), IngestError> {
    let dict = read_dictionary(path)?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let observed = match extension.as_deref() {
        Some("sav") | Some("zsav") => super::sav::observe(path)?,
        Some("por") => super::por::observe(path)?,
        _ => super::dta::observe(path)?,
    };
    Ok((dict, observed))
}
