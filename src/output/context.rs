//! What the publication products say about the run besides the estimates
//! ([`PublicationContext`]): the questionnaire, the data file and its rows, the design, the
//! weighting schemes, the methods and the provenance. The pipeline fills it in; `tables.xlsx`,
//! `report.html` and `manifest.json` only read it.

use std::collections::BTreeMap;

use super::present::number;
use crate::estimate::{ContrastRow, TestRow};
use crate::ingest::{Finding, FindingAction, FindingKind};
use crate::questionnaire::Questionnaire;
use crate::weighting::WeightSummary;

/// Fit of a calibration, for the weighting sections.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationFit {
    /// Method name as configured (e.g. `raking`).
    pub method: String,
    /// Iterations used.
    pub iterations: usize,
    /// Largest |calibrated total − population total| / population total over the margins.
    pub max_margin_error: f64,
    /// Whether the algorithm converged.
    pub converged: bool,
}

/// One weighting scheme as the products describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeSummary {
    /// Scheme name.
    pub name: String,
    /// Nonresponse adjustment classes, if any.
    pub nonresponse_classes: Option<Vec<String>>,
    /// The nonresponse adjustment spreads unknown-eligibility cases and drops ineligible ones.
    pub eligibility_adjusted: bool,
    /// Distribution of the final weights.
    pub weights: WeightSummary,
    /// Calibration fit, when the scheme is calibrated.
    pub calibration: Option<CalibrationFit>,
}

/// The sampling design as the products describe it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DesignSummary {
    /// Strata column.
    pub strata: Option<String>,
    /// PSU column(s), one per stage.
    pub psu: Vec<String>,
    /// Design weight column.
    pub weight: String,
    /// FPC column(s).
    pub fpc: Vec<String>,
    /// Lonely-PSU rule.
    pub lonely_psu: String,
    /// Strata among respondents.
    pub n_strata: usize,
    /// PSUs among respondents.
    pub n_psu: usize,
    /// Design degrees of freedom.
    pub df: f64,
}

impl DesignSummary {
    /// One sentence for methods sections (report and workbook cover).
    pub fn describe(&self) -> String {
        format!(
            "Stratified by {}, clusters {}, weight {}, FPC {}: {} strata, {} PSUs, {} design degrees of freedom; lonely PSUs: {}.",
            self.strata.as_deref().unwrap_or("(none)"),
            if self.psu.is_empty() {
                "(elements)".into()
            } else {
                self.psu.join(" > ")
            },
            self.weight,
            if self.fpc.is_empty() {
                "(none)".into()
            } else {
                self.fpc.join(", ")
            },
            self.n_strata,
            self.n_psu,
            number(self.df),
            self.lonely_psu
        )
    }
}

/// What the publication products say about the run besides the estimates.
#[derive(Debug, Clone)]
pub struct PublicationContext<'a> {
    /// The questionnaire (labels, units, code labels, kinds).
    pub questionnaire: &'a Questionnaire,
    /// Title of the publication (config); the questionnaire's title when empty.
    pub title: String,
    /// Reference period (config), e.g. `2025`.
    pub reference_period: String,
    /// cvsurvey version.
    pub tool_version: String,
    /// Data file name (no folder).
    pub data_file: String,
    /// SHA-256 of the data file.
    pub data_sha256: String,
    /// Rows read.
    pub rows_read: u64,
    /// Rows used.
    pub rows_used: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Respondents among used rows.
    pub respondents: u64,
    /// Findings per kind and action (kept, blanked, quarantined).
    pub findings_by_kind: BTreeMap<(FindingKind, FindingAction), usize>,
    /// The first findings (the caller chooses how many; 20 reads well).
    pub first_findings: Vec<Finding>,
    /// Design.
    pub design: DesignSummary,
    /// Weighting schemes, in config order.
    pub schemes: Vec<SchemeSummary>,
    /// Variance methods, e.g. `["taylor"]`.
    pub variance_methods: Vec<String>,
    /// Confidence level, e.g. 0.95.
    pub ci_level: f64,
    /// Interval methods, in config order (the first is the one tables and SDMX show).
    pub ci_methods: Vec<String>,
    /// Domain df rule (`subset` or `full`).
    pub domain_df: String,
    /// Provenance key-value pairs (the Parquet metadata block).
    pub provenance: Vec<(String, String)>,
    /// Contrasts of the run (`contrasts.parquet`); none without `[[contrast]]`.
    pub contrasts: &'a [ContrastRow],
    /// Tests of association of the run (`tests.parquet`); none without `[[test]]`.
    pub tests: &'a [TestRow],
    /// Fieldwork outcome rates and interviewers (`fieldwork.parquet`); none without
    /// dispositions.
    pub fieldwork: Option<&'a crate::fieldwork::FieldworkReport>,
}

impl PublicationContext<'_> {
    /// Title, falling back to the questionnaire's.
    pub fn display_title(&self) -> &str {
        if self.title.trim().is_empty() {
            &self.questionnaire.title
        } else {
            &self.title
        }
    }
}

/// `SOURCE_DATE_EPOCH` as seconds, when set to a valid integer: the time the products give as
/// their creation, so that a rebuild from the same inputs is byte-identical.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
}

/// What the reports add to a nonresponse adjustment that adjusts for eligibility.
pub fn eligibility_note(adjusted: bool) -> &'static str {
    if adjusted {
        ", after spreading the weight of cases of unknown eligibility over the cases of known eligibility and dropping ineligible cases"
    } else {
        ""
    }
}
