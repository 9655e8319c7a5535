//! Fieldwork returns: final dispositions mapped to the AAPOR outcome categories, the AAPOR
//! outcome rates (response, cooperation, refusal, contact) of the whole sample and of groups,
//! and the interviewers whose returns stand out (`docs/fieldwork.md`).
//!
//! A stage like the others: it receives plain values (outcome per sampled case, design weights,
//! group labels, per-case item counts) and knows nothing of the config or the data file.

mod dates;
mod interviewers;
mod rates;
#[cfg(test)]
mod tests;

pub use dates::{Date, ReturnsOnDate, returns_by_date};
pub use interviewers::{
    DEFAULT_OUTLIER_Z, InterviewerMetric, InterviewerReturns, InterviewerRow, interviewer_table,
    robust_z,
};
pub use rates::{Counts, EligibilityRate, RATES, RateRow, Rates, group_rates, outcome_rates};

/// AAPOR final disposition categories (Standard Definitions, 2023, table 1–4 codes 1.1 to 4.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// I: complete interview (1.1).
    Complete,
    /// P: partial interview (1.2).
    Partial,
    /// R: refusal and break-off (2.10).
    Refusal,
    /// NC: non-contact (2.20).
    NonContact,
    /// O: other eligible non-interview (2.30).
    Other,
    /// U = UH + UO: unknown eligibility, non-interview (3.x).
    UnknownEligibility,
    /// NE: not eligible (4.x); not part of the population.
    NotEligible,
}

impl Outcome {
    /// Every category, in AAPOR order (the order of the count columns).
    pub const ALL: [Outcome; 7] = [
        Outcome::Complete,
        Outcome::Partial,
        Outcome::Refusal,
        Outcome::NonContact,
        Outcome::Other,
        Outcome::UnknownEligibility,
        Outcome::NotEligible,
    ];

    /// AAPOR's letter for the category: the count column of `fieldwork.parquet`.
    pub fn letter(self) -> &'static str {
        match self {
            Outcome::Complete => "I",
            Outcome::Partial => "P",
            Outcome::Refusal => "R",
            Outcome::NonContact => "NC",
            Outcome::Other => "O",
            Outcome::UnknownEligibility => "U",
            Outcome::NotEligible => "NE",
        }
    }

    /// The `[dispositions]` key that lists the category's codes.
    pub fn config_key(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Partial => "partial",
            Outcome::Refusal => "refusal",
            Outcome::NonContact => "noncontact",
            Outcome::Other => "other",
            Outcome::UnknownEligibility => "unknown_eligibility",
            Outcome::NotEligible => "not_eligible",
        }
    }
}

/// The survey's disposition codes mapped to AAPOR categories (`[dispositions]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DispositionMap {
    /// (code as written in the data, category), sorted by code; each code once.
    codes: Vec<(String, Outcome)>,
    /// Partial interviews are respondents (AAPOR leaves it to the survey; the default).
    pub partial_is_response: bool,
    /// How e, the eligible share among cases of unknown eligibility, is set.
    pub e: EligibilityRate,
}

impl DispositionMap {
    /// A map from (code, category) pairs; a code given twice keeps the first (config rejects
    /// that before).
    pub fn new(
        pairs: impl IntoIterator<Item = (String, Outcome)>,
        partial_is_response: bool,
        e: EligibilityRate,
    ) -> DispositionMap {
        let mut codes: Vec<(String, Outcome)> = Vec::new();
        for (code, outcome) in pairs {
            if !codes.iter().any(|(c, _)| *c == code) {
                codes.push((code, outcome));
            }
        }
        codes.sort_by(|a, b| a.0.cmp(&b.0));
        DispositionMap {
            codes,
            partial_is_response,
            e,
        }
    }

    /// The category of a code as written in the data (`11`, `11.0` and ` 11 ` are the same code
    /// when the code is a number).
    pub fn outcome(&self, code: &str) -> Option<Outcome> {
        let code = code.trim();
        if let Ok(i) = self.codes.binary_search_by(|(c, _)| c.as_str().cmp(code)) {
            return Some(self.codes[i].1);
        }
        let number: f64 = code.parse().ok()?;
        self.codes
            .iter()
            .find(|(c, _)| c.parse::<f64>().ok() == Some(number))
            .map(|&(_, o)| o)
    }

    /// True when a case of this category is a unit respondent: complete interviews, and
    /// partial ones when `partial_is_response`.
    pub fn is_respondent(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Complete => true,
            Outcome::Partial => self.partial_is_response,
            _ => false,
        }
    }

    /// The codes of each category, for messages.
    pub fn codes(&self) -> &[(String, Outcome)] {
        &self.codes
    }
}

/// One grouping of the sampled cases for the rates table (`[fieldwork] by`): a label per group
/// and the group of each case.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// Variable name (`group_var`).
    pub var: String,
    /// Group labels, in output order.
    pub labels: Vec<String>,
    /// Group (index into `labels`) of each case.
    pub of_row: Vec<u32>,
}

impl Grouping {
    /// Groups from one label per case; groups sorted by label, numbers in numeric order.
    pub fn from_labels(var: &str, labels_of_rows: &[String]) -> Grouping {
        let mut labels: Vec<String> = labels_of_rows.to_vec();
        labels.sort_by(|a, b| label_order(a, b));
        labels.dedup();
        let of_row = labels_of_rows
            .iter()
            .map(|l| {
                labels
                    .binary_search_by(|x| label_order(x, l))
                    .map_or(0, |i| i as u32)
            })
            .collect();
        Grouping {
            var: var.to_string(),
            labels,
            of_row,
        }
    }
}

/// Numbers before text, numbers by value, text alphabetically.
fn label_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Everything the fieldwork outputs show: the rates table, returns per interview date and the
/// interviewer table with its outliers.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldworkReport {
    /// Rows of `fieldwork.parquet`: whole sample (`_T`), then each `by` variable.
    pub rates: Vec<RateRow>,
    /// Returns per interview date (empty without `[data] interview_date`).
    pub dates: Vec<ReturnsOnDate>,
    /// Cases without a readable interview date (nonrespondents mostly).
    pub undated: usize,
    /// Per interviewer (empty without `[data] interviewer`).
    pub interviewers: Vec<InterviewerRow>,
    /// The robust z-score beyond which an interviewer is an outlier.
    pub outlier_z: f64,
}
