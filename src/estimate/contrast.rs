//! Contrasts between two domain estimates of one run: the change between survey waves, the gap
//! between women and men. For domains A (`by` = first code) and B (`by` = second code), each
//! optionally within a level of a `within` variable, the contrast is θ̂_A − θ̂_B with
//!
//! * Taylor: V̂(θ̂_A − θ̂_B) = V̂(Σ (z_A − z_B)), the design variance of the difference of the two
//!   domains' linearized scores over the whole design (calibration residuals taken as for one
//!   estimate), which is c'Σc with R's `svyby(..., covmat = TRUE)` covariance and c = (1, −1);
//! * replicates: the replicate variance of θ̂_A,r − θ̂_B,r, R's `svrVar` on the two columns of
//!   replicate estimates, contrasted.
//!
//! Interval and p-value use t on the design df of the scheme and variance method (R's
//! `degf(design)`). Method, references and the pooled-waves setup: `docs/contrasts.md`.

use super::ci;
use super::method::VarianceMethod;
use super::probability::pt;
use crate::design::Design;

/// One `[[contrast]]` as estimation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastSpec {
    /// Free text, unique within a run.
    pub name: String,
    /// Ids of the contrasted indicators (all estimated ones for `["*"]`).
    pub indicators: Vec<String>,
    /// The variable whose two codes are compared (e.g. the survey wave).
    pub by: String,
    /// Code of `by` whose estimate comes first (θ̂_A).
    pub first: String,
    /// Code of `by` subtracted (θ̂_B).
    pub second: String,
    /// Domain variables within each of whose levels the contrast is also made.
    pub within: Vec<String>,
}

/// One row of `contrasts.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastRow {
    /// The `[[contrast]]` name.
    pub contrast: String,
    /// Indicator id.
    pub indicator: String,
    /// Weighting scheme of both estimates.
    pub weighting: String,
    /// Variance method of the standard error.
    pub variance: VarianceMethod,
    /// Variable whose level both domains are restricted to; `_T` for the whole population.
    pub within_var: String,
    /// That level as written in the data; `_T` for the whole population.
    pub within_value: String,
    /// θ̂_A − θ̂_B times the indicator's multiplier; none when either domain is empty.
    pub estimate: Option<f64>,
    /// √V̂(θ̂_A − θ̂_B), covariance included.
    pub se: Option<f64>,
    /// Lower Wald bound, t on `df`.
    pub ci_low: Option<f64>,
    /// Upper Wald bound, t on `df`.
    pub ci_high: Option<f64>,
    /// Design df of the scheme and variance method.
    pub df: Option<f64>,
    /// Two-sided p-value of θ_A = θ_B, t on `df`.
    pub p_value: Option<f64>,
    /// Respondents with a defined value in domain A.
    pub n_unweighted_first: i64,
    /// Respondents with a defined value in domain B.
    pub n_unweighted_second: i64,
}

/// Two statistics of one indicator to contrast: their positions among the indicator's
/// statistics (breakdown after breakdown, value after value), `None` for a domain without
/// respondents at that level.
#[derive(Debug, Clone)]
pub(super) struct ContrastPair {
    pub contrast: usize,
    pub indicator: usize,
    pub within_var: String,
    pub within_value: String,
    pub first: Option<usize>,
    pub second: Option<usize>,
    /// Respondents with a defined value in each domain.
    pub n_first: usize,
    pub n_second: usize,
}

/// The linearized score of a kept statistic, as the variance path produced it: totals by
/// first-stage PSU (single-stage designs) or one score per design row (multistage).
#[derive(Debug, Clone)]
pub(super) enum KeptScore {
    /// The non-zero PSU totals (PSU, total), in PSU order: a domain of one region touches few
    /// of the design's PSUs (a calibrated scheme's residuals touch them all).
    PsuTotals(Vec<(u32, f64)>),
    /// The non-zero row scores (design row, score): a plain domain's rows only; calibration
    /// residuals reach every row.
    Rows(Vec<(u32, f64)>),
}

/// The non-zero entries of a dense vector, in order.
fn non_zero(dense: &[f64]) -> Vec<(u32, f64)> {
    dense
        .iter()
        .enumerate()
        .filter(|(_, t)| **t != 0.0)
        .map(|(i, &t)| (i as u32, t))
        .collect()
}

/// x − y as a dense vector of `n` entries.
fn difference(n: usize, x: &[(u32, f64)], y: &[(u32, f64)]) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for &(i, t) in x {
        out[i as usize] += t;
    }
    for &(i, t) in y {
        out[i as usize] -= t;
    }
    out
}

impl KeptScore {
    /// Kept PSU totals of a dense vector by PSU.
    pub(super) fn psu_totals(totals: &[f64]) -> KeptScore {
        KeptScore::PsuTotals(non_zero(totals))
    }

    /// Kept row scores of a dense vector by design row.
    pub(super) fn rows(scores: &[f64]) -> KeptScore {
        KeptScore::Rows(non_zero(scores))
    }
}

/// A statistic kept for contrasts: its estimate (before the multiplier) and score.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    pub estimate: f64,
    pub score: KeptScore,
}

/// Name of the cross-classified breakdown of `by` within `within`.
pub(super) fn cross_name(by: &str, within: &str) -> String {
    format!("{by}:{within}")
}

/// The statistics a contrast needs, as (breakdown name, label) of the first and second domain
/// at the whole-population level and within each level of each `within` variable.
#[derive(Debug, Clone)]
pub(super) struct Level {
    pub within_var: String,
    pub within_value: String,
    pub breakdown: String,
    pub first_label: String,
    pub second_label: String,
}

/// The levels of a contrast, given the labels of each `within` variable in the data.
pub(super) fn levels(spec: &ContrastSpec, within_labels: &[Vec<String>]) -> Vec<Level> {
    let mut out = vec![Level {
        within_var: super::TOTAL.into(),
        within_value: super::TOTAL.into(),
        breakdown: spec.by.clone(),
        first_label: spec.first.clone(),
        second_label: spec.second.clone(),
    }];
    for (var, labels) in spec.within.iter().zip(within_labels) {
        for l in labels {
            out.push(Level {
                within_var: var.clone(),
                within_value: l.clone(),
                breakdown: cross_name(&spec.by, var),
                first_label: format!("{}:{l}", spec.first),
                second_label: format!("{}:{l}", spec.second),
            });
        }
    }
    out
}

/// What a contrast row needs besides the two estimates and the variance of their difference.
pub(super) struct RowContext<'a> {
    pub spec: &'a ContrastSpec,
    pub pair: &'a ContrastPair,
    pub indicator: &'a str,
    pub multiplier: f64,
    pub weighting: &'a str,
    pub variance: VarianceMethod,
    pub df: f64,
    pub level: f64,
}

/// The row of θ̂_A − θ̂_B with variance `variance` (NaN when undefined).
pub(super) fn row(c: &RowContext<'_>, estimates: Option<(f64, f64)>, variance: f64) -> ContrastRow {
    let m = c.multiplier;
    let diff = estimates
        .map(|(a, b)| (a - b) * m)
        .filter(|d| d.is_finite());
    let se = diff
        .map(|_| variance.sqrt() * m.abs())
        .filter(|s| s.is_finite());
    let df = (c.df.is_finite() && c.df > 0.0).then_some(c.df);
    let bounds = match (diff, se, df) {
        (Some(d), Some(s), Some(df)) => ci::wald_ci(d, s, df, c.level, false),
        _ => None,
    };
    let p_value = match (diff, se, df) {
        (Some(d), Some(s), Some(df)) if s > 0.0 => Some(2.0 * pt(-(d / s).abs(), df)),
        _ => None,
    };
    ContrastRow {
        contrast: c.spec.name.clone(),
        indicator: c.indicator.to_string(),
        weighting: c.weighting.to_string(),
        variance: c.variance,
        within_var: c.pair.within_var.clone(),
        within_value: c.pair.within_value.clone(),
        estimate: diff,
        se,
        ci_low: bounds.map(|b| b.0),
        ci_high: bounds.map(|b| b.1),
        df,
        p_value,
        n_unweighted_first: c.pair.n_first as i64,
        n_unweighted_second: c.pair.n_second as i64,
    }
}

/// Taylor variance of θ̂_A − θ̂_B from the two kept scores, over the whole design (R's
/// `svyrecvar` on the `svyby` influence functions keeps every PSU of the design).
pub(super) fn taylor_variance(
    design: &Design,
    a: &KeptScore,
    b: &KeptScore,
) -> Result<f64, String> {
    match (a, b) {
        (KeptScore::PsuTotals(x), KeptScore::PsuTotals(y)) => design
            .variance_from_psu_totals(&difference(design.n_psu(), x, y), None)
            .map_err(|e| e.to_string()),
        (KeptScore::Rows(x), KeptScore::Rows(y)) => design
            .variance(&difference(design.n_rows(), x, y), None)
            .map_err(|e| e.to_string()),
        // Both statistics of a block take the same variance path (it depends on the design).
        _ => Err("the two estimates took different variance paths".into()),
    }
}

/// Replicate variance of θ̂_A − θ̂_B from the replicate estimates of both (`n_rep` each) and
/// the replicate variance formula of the method (`variance(replicates, full-sample value)`).
pub(super) fn replicate_variance(
    a: (&[f64], f64),
    b: (&[f64], f64),
    variance: &dyn Fn(&[f64], f64) -> f64,
) -> f64 {
    let diff: Vec<f64> = a.0.iter().zip(b.0).map(|(x, y)| x - y).collect();
    variance(&diff, a.1 - b.1)
}
