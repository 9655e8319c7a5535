//! XLSForm expressions (the XPath subset forms use in `relevant`, `calculation` and
//! `constraint`) translated into cvsurvey expressions, for `questionnaire import FORM.xlsx`.
//!
//! The contract: a translated skip rule is true exactly where ODK Collect would ask the
//! question. Anything outside the translated subset is refused with the reason, and the draft
//! keeps the original as a comment.

/// How a form field is stored in the drafted questionnaire, as far as an expression using it
/// needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// `integer`, `decimal`, `range`: a number.
    Number,
    /// `text`, `date`, `time`, `dateTime` and other text columns.
    Text,
    /// `select_one LIST`: one coded column; `numeric` when every code is a number (the column is
    /// then stored as numbers and compared as numbers).
    SelectOne {
        /// The list's codes (choice `name`s), in list order.
        codes: Vec<String>,
        /// Every code is a number.
        numeric: bool,
    },
    /// `select_multiple LIST`: one 0/1 item column per choice.
    SelectMultiple {
        /// The choices and the column each is exported as.
        items: Vec<SelectItem>,
    },
    /// `calculate`: a derived variable (usable in calculations, never in skip rules).
    Calculated,
}

/// One choice of a `select_multiple` and its 0/1 column.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    /// The choice's `name` in the choices sheet.
    pub code: String,
    /// Its column in the data (e.g. `q/choice` or `q_choice`).
    pub column: String,
}

/// A form field an expression may refer to as `${name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FormField {
    /// The field's `name` in the survey sheet.
    pub name: String,
    /// Its variable in the drafted questionnaire (the data column).
    pub column: String,
    /// How it is stored.
    pub kind: FieldKind,
}

/// Why an expression was not translated, said in the draft's comment and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// E.g. "function regex() is not translated".
    pub reason: String,
}

/// Finds the field `${name}` refers to; `Err` says why it cannot be used here (unknown, or a
/// field of another level).
pub type FieldLookup<'a> = dyn Fn(&str) -> Result<&'a FormField, String> + 'a;

/// A `relevant` as an `asked_if`: true exactly where ODK Collect evaluates the XPath to true.
pub fn translate_relevant(xpath: &str, field: &FieldLookup<'_>) -> Result<String, Untranslated> {
    let _ = (xpath, field);
    Err(Untranslated {
        reason: "skip rules are not translated yet".into(),
    })
}

/// A `calculation` as a derived variable's `expr` (numbers and true/false only).
pub fn translate_calculation(
    xpath: &str,
    field: &FieldLookup<'_>,
) -> Result<String, Untranslated> {
    let _ = (xpath, field);
    Err(Untranslated {
        reason: "calculations are not translated yet".into(),
    })
}

/// A numeric `constraint` such as `. >= 0 and . <= 120` as an inclusive range (an open end is
/// infinite); `None` when the constraint is not a range on `.`.
pub fn constraint_range(xpath: &str) -> Option<(f64, f64)> {
    let _ = xpath;
    None
}
