//! The dictionary of an SPSS or Stata file: variable names, labels, storage types, value labels
//! and missing-value definitions, ahead of the typed data; and what the data of each variable
//! hold ([`Observed`]).
//!
//! The readers ([`super::sav`], [`super::dta`], [`super::por`]) fill these types and the
//! questionnaire import reads them. They live apart from the dispatch in [`super::statfile`],
//! which calls the readers, so that the imports run one way: statfile → readers → dictionary.

use std::collections::BTreeMap;

use crate::frame::format_number;
use crate::questionnaire::MissingMeaning;

/// A code as a data file's dictionary writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum FileCode {
    /// A number (SPSS numeric variables, Stata numeric types).
    Num(f64),
    /// Text (string variables).
    Text(String),
    /// A Stata extended missing value `.a`–`.z` (the letter).
    Extended(char),
}

impl FileCode {
    /// The code as written in a questionnaire: `8`, `R01`, `.a`.
    pub fn as_code(&self) -> String {
        match self {
            FileCode::Num(x) => format_number(*x),
            FileCode::Text(s) => s.trim().to_string(),
            FileCode::Extended(c) => format!(".{c}"),
        }
    }
}

/// A missing-value definition of a variable (SPSS user-missing values).
#[derive(Debug, Clone, PartialEq)]
pub enum FileMissing {
    /// One value.
    Code(FileCode),
    /// An inclusive range of numbers (`LO` and `HI` are ±infinity).
    Range(f64, f64),
}

/// Storage type of a variable in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// Numbers; `integer` when the storage (Stata byte/int/long) or the display format (SPSS
    /// `F8.0`) holds whole numbers only.
    Numeric {
        /// Whole numbers only.
        integer: bool,
    },
    /// Text of at most `width` bytes.
    Text {
        /// Declared width in bytes.
        width: usize,
    },
}

/// One variable of an SPSS or Stata file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileVariable {
    /// Name (SPSS long name, Stata name).
    pub name: String,
    /// Variable label (may be empty).
    pub label: String,
    /// Storage type.
    pub file_type: FileType,
    /// Value labels, in file order.
    pub value_labels: Vec<(FileCode, String)>,
    /// Missing-value definitions (SPSS user-missing values; empty for Stata, whose extended
    /// missing values need no declaration).
    pub missing: Vec<FileMissing>,
}

impl FileVariable {
    /// The file's label for `code`, if any.
    pub fn label_of(&self, code: &FileCode) -> Option<&str> {
        self.value_labels
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, l)| l.as_str())
    }

    /// True when `code` is declared missing in the file (SPSS user-missing; Stata extended
    /// missing values always are).
    pub fn is_missing(&self, code: &FileCode) -> bool {
        match code {
            FileCode::Extended(_) => true,
            FileCode::Num(x) => self.missing.iter().any(|m| match m {
                FileMissing::Code(FileCode::Num(y)) => x == y,
                FileMissing::Range(lo, hi) => lo <= x && x <= hi,
                _ => false,
            }),
            FileCode::Text(s) => self.missing.iter().any(|m| match m {
                FileMissing::Code(FileCode::Text(t)) => s.trim() == t.trim(),
                _ => false,
            }),
        }
    }
}

/// The dictionary of an SPSS or Stata file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDictionary {
    /// `SPSS`, `SPSS portable` or `Stata` (`CSV` for a dictionary built from a codebook).
    pub format: &'static str,
    /// Format version: `$FL2`/`$FL3` for SPSS, the release (114–119) for Stata.
    pub version: String,
    /// File label (may be empty).
    pub label: String,
    /// Variables in file order.
    pub variables: Vec<FileVariable>,
    /// Number of rows, when the header states it.
    pub rows: Option<u64>,
}

/// Guess the meaning of a missing code from its label: "don't know"/"DK" → don't know,
/// "refused" → refused, "not applicable"/"not asked"/"NA" → not applicable, "no answer"/"no
/// response" → no response, anything else → other.
pub fn guess_meaning(label: &str) -> MissingMeaning {
    let l = label.trim().to_lowercase().replace(['’', '`'], "'");
    let words: Vec<&str> = l
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if l.contains("don't know")
        || l.contains("dont know")
        || l.contains("do not know")
        || has("dk")
        || l.contains("not sure")
    {
        MissingMeaning::DontKnow
    } else if l.contains("refus") || has("rf") {
        MissingMeaning::Refused
    } else if l.contains("not applicable")
        || l.contains("inapplicable")
        || l.contains("not asked")
        || has("na")
        || l.contains("n/a")
    {
        MissingMeaning::NotApplicable
    } else if l.contains("no answer") || l.contains("no response") || l.contains("not stated") {
        MissingMeaning::NoResponse
    } else {
        MissingMeaning::Other
    }
}

/// What the data of one variable hold, as seen by `statfile::observe`: enough to draft a
/// questionnaire that reads the file without quarantining anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Cells holding a value that the file does not declare missing (blanks, system missing,
    /// user-missing and extended missing values excluded).
    pub values: u64,
    /// Smallest and largest such number (`None` for text, or when there are none).
    pub min_max: Option<(f64, f64)>,
    /// True when every such number is whole.
    pub whole: bool,
    /// Cells holding a value that has no value label in the file.
    pub unlabelled: u64,
    /// Up to [`Observed::EXAMPLES`] distinct unlabelled values, as codes, in order of appearance.
    pub unlabelled_examples: Vec<String>,
    /// Stata extended missing values `.a`–`.z` that occur, with their number of cells.
    pub extended: BTreeMap<char, u64>,
}

impl Observed {
    /// How many unlabelled values are kept as examples.
    pub const EXAMPLES: usize = 5;

    pub(super) fn new() -> Observed {
        Observed {
            values: 0,
            min_max: None,
            whole: true,
            unlabelled: 0,
            unlabelled_examples: Vec::new(),
            extended: BTreeMap::new(),
        }
    }

    pub(super) fn unlabelled(&mut self, code: impl FnOnce() -> String) {
        self.unlabelled += 1;
        if self.unlabelled_examples.len() < Self::EXAMPLES {
            let code = code();
            if !self.unlabelled_examples.contains(&code) {
                self.unlabelled_examples.push(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meanings_from_labels() {
        assert_eq!(guess_meaning("Don't know"), MissingMeaning::DontKnow);
        assert_eq!(guess_meaning("DK"), MissingMeaning::DontKnow);
        assert_eq!(
            guess_meaning("Don’t know / not sure"),
            MissingMeaning::DontKnow
        );
        assert_eq!(guess_meaning("Refused"), MissingMeaning::Refused);
        assert_eq!(guess_meaning("Refused to answer"), MissingMeaning::Refused);
        assert_eq!(
            guess_meaning("Not applicable"),
            MissingMeaning::NotApplicable
        );
        assert_eq!(guess_meaning("NA"), MissingMeaning::NotApplicable);
        assert_eq!(guess_meaning("No answer"), MissingMeaning::NoResponse);
        assert_eq!(guess_meaning("Missing"), MissingMeaning::Other);
        assert_eq!(guess_meaning("National"), MissingMeaning::Other);
    }
}
