//! Tests of association of a run (`[[test]]`): for each two-way table, the cell shares and their
//! covariance under the design (Taylor) or the replicates, given to the Rao–Scott kernel
//! ([`super::association`]).

use super::method::VarianceMethod;
use crate::questionnaire::Expr;

/// One `[[test]]` as estimation needs it.
#[derive(Debug, Clone)]
pub struct TestSpec {
    /// Free text, unique within a run.
    pub name: String,
    /// Row variable (declared codes).
    pub rows: String,
    /// Column variable (declared codes).
    pub cols: String,
    /// Who is tested: rows where this is true (unknown counts as false); none: every respondent.
    pub universe: Option<Expr>,
}

/// One row of `tests.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    /// The `[[test]]` name.
    pub test: String,
    /// Weighting scheme.
    pub weighting: String,
    /// Variance method of the covariance of the cell shares.
    pub variance: VarianceMethod,
    /// Row variable.
    pub rows: String,
    /// Column variable.
    pub cols: String,
    /// `rao_scott_f` (R `svychisq(statistic = "F")`) or `rao_scott_chisq` (`statistic =
    /// "Chisq"`).
    pub statistic: &'static str,
    /// The statistic: F = X²/tr Δ, or Pearson's X² as R reports it.
    pub value: Option<f64>,
    /// Numerator df: d₀ for F, (r−1)(c−1) for the chi-squared.
    pub ndf: Option<f64>,
    /// Denominator df: d₀ ν for F; none for the chi-squared.
    pub ddf: Option<f64>,
    /// Upper-tail p-value.
    pub p_value: Option<f64>,
}
