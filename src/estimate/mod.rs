//! Estimation: indicators by domain under each weighting scheme, with design-based standard
//! errors, degrees of freedom, design effects and confidence intervals.
//!
//! For a domain D and indicator values y (and x for ratios) defined on a universe U, with final
//! weights w over the respondent design:
//!
//! * mean / proportion: θ̂ = Σ_{D∩U} w y / Σ_{D∩U} w, scores z_i = w_i (y_i − θ̂) / Σ_{D∩U} w;
//! * total: θ̂ = Σ_{D∩U} w y, z_i = w_i y_i;
//! * ratio: θ̂ = Σ w y / Σ w x, z_i = w_i (y_i − θ̂ x_i) / Σ w x;
//!
//! with z_i = 0 outside D∩U, so the variance keeps the full design (domain estimation,
//! Särndal et al. 1992 §10.3). V̂(θ̂) is the Taylor variance of Σ z ([`crate::design`]).
//! Formulas, df and interval methods are stated with references in `docs/methods.md`.

pub mod association;
#[cfg(test)]
mod calibrated_sums_tests;
pub mod ci;
pub mod contrast;
pub(crate) mod estimator;
mod fine;
mod method;
pub mod probability;
pub mod quantile;
mod quantile_rows;
mod replicate_sums;
mod two_way;

pub use contrast::{ContrastRow, ContrastSpec};
pub use two_way::{TestRow, TestSpec};

/// Statistics per replicate of the request's tests: the cell shares of every table under the
/// replicate's weights `w`.
pub fn test_replicate_statistics(prepared: &Prepared, w: &[f64]) -> Vec<f64> {
    two_way::replicate_shares(&prepared.tables, w)
}

/// Number of statistics [`test_replicate_statistics`] gives.
pub fn n_test_statistics(prepared: &Prepared) -> usize {
    two_way::n_replicate_shares(&prepared.tables)
}

/// Rows of the request's tests under one scheme from the replicates' cell shares (`thetas`,
/// statistic after statistic, `n_rep` each).
pub fn replicate_tests(
    req: &EstimationRequest<'_>,
    prepared: &Prepared,
    scheme: &Scheme,
    thetas: &[f64],
    n_rep: usize,
    variance: &dyn Fn(&[f64], f64) -> f64,
    df: &ReplicateDf<'_>,
) -> Result<Vec<TestRow>, EstimateError> {
    two_way::replicate_tests(req, &prepared.tables, scheme, thetas, n_rep, variance, df)
}
pub use method::{DomainDf, VarianceMethod};
pub use quantile_rows::{
    QuantilePlan, quantile_plan, quantile_replicate_rows, quantile_replicate_statistics,
};
pub use replicate_sums::GroupedSums;

use rayon::prelude::*;

use crate::design::Design;
use crate::frame::{CellState, ColumnData, Frame, NumValues, format_number};
use crate::questionnaire::{EvalState, Indicator, IndicatorKind};
use crate::weighting::{LinearResidual, ResidualSolver, Scheme};
use ci::CiMethod;
use contrast::{ContrastPair, Kept, KeptScore};
use fine::DomainSums as CellSums;
use fine::{DomainSums, FineCells, FineTotals, SparseRows};

/// Domain label used for the whole population (SDMX convention).
pub const TOTAL: &str = "_T";

/// One output row: indicator × weighting × variance method × domain × CI method.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateRow {
    /// Indicator id.
    pub indicator: String,
    /// Weighting scheme.
    pub weighting: String,
    /// Variance method.
    pub variance: VarianceMethod,
    /// Domain variable, `_T` for the whole population.
    pub domain_var: String,
    /// Domain value as written in the data, `_T` for the whole population.
    pub domain_value: String,
    /// The category code of a distribution, the item name of a multiple-response set, the
    /// probability of a quantile (written shortest: `0.5`); none for other kinds.
    pub category: Option<String>,
    /// Point estimate (times the indicator's multiplier).
    pub estimate: Option<f64>,
    /// Standard error (times the multiplier).
    pub se: Option<f64>,
    /// Lower confidence bound.
    pub ci_low: Option<f64>,
    /// Upper confidence bound.
    pub ci_high: Option<f64>,
    /// Interval method.
    pub ci_method: CiMethod,
    /// Degrees of freedom used by the interval.
    pub df: Option<f64>,
    /// Coefficient of variation se / |estimate|.
    pub cv: Option<f64>,
    /// Design effect (R `deff = TRUE`); none for ratios.
    pub deff: Option<f64>,
    /// Respondents in the domain and universe with a defined value.
    pub n_unweighted: i64,
    /// Sum of weights over those respondents.
    pub n_weighted: f64,
    /// Effective sample size n_unweighted / deff (none where deff is undefined).
    pub n_effective: Option<f64>,
    /// Weighted share of the indicator's universe in the domain whose value is item-missing
    /// ([`item_missing_shares`]): 0 when no row of the indicator's universe is missing anywhere;
    /// otherwise none where the domain's universe has no weight.
    pub item_missing_share: Option<f64>,
    /// Reliability flag; estimation leaves every row [`Flag::Reliable`] and the publication
    /// rules (`output::reliability`) set it.
    pub flag: Flag,
    /// Which reliability rule fired (empty when reliable).
    pub flag_reason: String,
    /// The unit estimated over: households or persons (`level` in `estimates.parquet` of a
    /// survey with a household file).
    pub level: crate::questionnaire::Level,
}

/// Whether a cell may be published as it stands (see `docs/reliability-flags.md`).
///
/// It lives beside [`EstimateRow`] rather than with the rules that decide it, so that
/// estimation, which only ever writes `Reliable`, needs nothing from the output stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Flag {
    /// No rule fired.
    #[default]
    Reliable,
    /// Low reliability: published with a warning (SDMX `OBS_STATUS = U`).
    Caution,
    /// Not to be published (SDMX `OBS_STATUS = Q`); with `suppress = true` its values are
    /// blanked.
    Suppressed,
}

impl Flag {
    /// Every flag, in order of severity.
    pub const ALL: [Flag; 3] = [Flag::Reliable, Flag::Caution, Flag::Suppressed];

    /// Text written to the `flag` column of every output: empty for a reliable cell.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Reliable => "",
            Flag::Caution => "caution",
            Flag::Suppressed => "suppressed",
        }
    }

    /// The flag whose [`Flag::as_str`] is `text`, as read back from an output file.
    pub fn from_name(text: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// Everything estimation needs.
#[derive(Debug, Clone, Copy)]
pub struct EstimationRequest<'a> {
    /// Respondent rows, in design-row order.
    pub frame: &'a Frame,
    /// The sampling design over those rows.
    pub design: &'a Design,
    /// Weighting schemes (weights over the same rows).
    pub schemes: &'a [Scheme],
    /// Indicators to estimate.
    pub indicators: &'a [&'a Indicator],
    /// Domain variables.
    pub domains: &'a [String],
    /// Interval methods for proportions.
    pub ci: &'a [CiMethod],
    /// Confidence level.
    pub level: f64,
    /// Degrees of freedom for domain intervals.
    pub domain_df: DomainDf,
    /// Variance method.
    pub variance: VarianceMethod,
    /// Differences between two domain estimates, with their covariance.
    pub contrasts: &'a [ContrastSpec],
    /// Tests of association of two-way tables.
    pub tests: &'a [TestSpec],
}

/// Errors during estimation.
#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    /// An indicator expression failed on the data.
    #[error("indicator {indicator}: {message}")]
    Indicator {
        /// Indicator id.
        indicator: String,
        /// What failed.
        message: String,
    },
    /// A domain variable is absent.
    #[error("domain variable {0} is not in the data (nor a derived variable)")]
    MissingDomain(String),
    /// A contrast cannot be made on the data.
    #[error("contrast \"{contrast}\": {message}")]
    Contrast {
        /// Contrast name.
        contrast: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A test of association cannot be made on the data.
    #[error("test \"{test}\": {message}")]
    Test {
        /// Test name.
        test: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The variance could not be computed.
    #[error("indicator {indicator}, weighting {weighting}, domain {domain}: {message}")]
    Variance {
        /// Indicator id.
        indicator: String,
        /// Scheme.
        weighting: String,
        /// Domain `var=value`.
        domain: String,
        /// What failed.
        message: String,
    },
}

/// Indicator values over the respondent rows.
struct IndicatorValues {
    /// Values, in one byte a row for 0/1 indicators and codes (see [`NumValues`]): eleven
    /// indicators of 10 million rows would otherwise take 0.9 GB.
    y: NumValues,
    x: Option<NumValues>,
    defined: Vec<bool>,
    /// Rows of the universe whose value is item-missing; `None` when there is none (the usual
    /// case, which then needs no pass over the rows).
    item_missing: Option<ItemMissing>,
}

/// Which rows of an indicator's universe are item-missing.
struct ItemMissing {
    /// In the universe (the universe expression true).
    universe: Vec<bool>,
    /// In the universe, and the value (or a ratio's denominator) is missing: some item the
    /// expression needs is blank, don't know, refused or another missing code, or was blanked
    /// by editing. Not asked (not applicable) is not missing.
    missing: Vec<bool>,
}

/// `item_missing_share` of each domain value of `b`: the weighted share of the indicator's
/// universe in the domain whose value is item-missing,
///
///   share_d = Σ_{i ∈ U ∩ d, value missing} w_i / Σ_{i ∈ U ∩ d} w_i,
///
/// with `w` the scheme's final weights. A total over a variable with item nonresponse sums only
/// the answered values, so it is biased downward by about this share of the domain's total
/// (exactly so when the missing answers have the mean of the given ones). Weighted rather than
/// counted, because the bias of a weighted total is carried by the weight of the missing rows.
/// `None` for a domain value whose universe has no weight, except that an indicator with no
/// missing row at all gets 0 everywhere without a pass over the rows (its estimate row then says
/// whether the domain has respondents).
fn item_missing_shares(vals: &IndicatorValues, w: &[f64], b: &Breakdown) -> Vec<Option<f64>> {
    item_missing_shares_of(vals, w, &[b]).swap_remove(0)
}

/// [`item_missing_shares`] of several breakdowns from one pass over the rows (each domain's
/// sums still taken in row order).
fn item_missing_shares_of(
    vals: &IndicatorValues,
    w: &[f64],
    breakdowns: &[&Breakdown],
) -> Vec<Vec<Option<f64>>> {
    let Some(im) = &vals.item_missing else {
        return breakdowns
            .iter()
            .map(|b| vec![Some(0.0); b.labels.len()])
            .collect();
    };
    let mut universe: Vec<Vec<f64>> = breakdowns
        .iter()
        .map(|b| vec![0.0; b.labels.len()])
        .collect();
    let mut missing = universe.clone();
    let codes: Vec<&[u32]> = breakdowns.iter().map(|b| b.of_row.codes()).collect();
    for r in (0..w.len()).filter(|&r| im.universe[r]) {
        for ((codes, universe), missing) in codes.iter().zip(&mut universe).zip(&mut missing) {
            let d = codes[r];
            if d != DomainOfRow::NONE {
                universe[d as usize] += w[r];
                if im.missing[r] {
                    missing[d as usize] += w[r];
                }
            }
        }
    }
    universe
        .iter()
        .zip(&missing)
        .map(|(universe, missing)| {
            universe
                .iter()
                .zip(missing)
                .map(|(&u, &m)| (u > 0.0).then(|| m / u).and_then(finite))
                .collect()
        })
        .collect()
}

/// `universe`: the indicator's universe, evaluated once for every indicator that shares it (the
/// parts of a distribution); `None`: every respondent.
fn evaluate(
    ind: &Indicator,
    frame: &Frame,
    universe: Option<&[bool]>,
) -> Result<IndicatorValues, EstimateError> {
    let err = |message: String| EstimateError::Indicator {
        indicator: ind.id.clone(),
        message,
    };
    let n = frame.n_rows();
    let every = vec![true; if universe.is_none() { n } else { 0 }];
    let universe = universe.unwrap_or(&every);
    let (value_expr, den_expr) = match ind.kind {
        IndicatorKind::Ratio => (ind.numerator.as_ref(), ind.denominator.as_ref()),
        _ => (ind.value.as_ref(), None),
    };
    let value_expr = value_expr.ok_or_else(|| {
        err(if ind.kind == IndicatorKind::Distribution {
            "a distribution is estimated as its parts (Indicator::estimated)".into()
        } else {
            "has no value/numerator expression".into()
        })
    })?;
    let mut y = value_expr.eval(frame).map_err(|e| err(e.to_string()))?;
    if ind.category.as_ref().is_some_and(|c| c.mention) {
        // A multiple-response item not asked (no contact with that official) is not mentioned;
        // an unknown answer (don't know, refused) leaves the respondent out of its share.
        for (v, s) in y.values.iter_mut().zip(y.state.iter_mut()) {
            if *s == EvalState::NotApplicable {
                *v = 0.0;
                *s = EvalState::Value;
            }
        }
    }
    let mut defined: Vec<bool> = universe
        .iter()
        .zip(&y.state)
        .map(|(u, s)| *u && *s == EvalState::Value)
        .collect();
    let mut missing: Vec<bool> = universe
        .iter()
        .zip(&y.state)
        .map(|(u, s)| *u && *s == EvalState::Missing)
        .collect();
    let x = match den_expr {
        None => None,
        Some(e) => {
            let x = e.eval(frame).map_err(|e| err(e.to_string()))?;
            for (d, s) in defined.iter_mut().zip(&x.state) {
                *d &= *s == EvalState::Value;
            }
            for ((m, u), s) in missing.iter_mut().zip(universe).zip(&x.state) {
                *m |= *u && *s == EvalState::Missing;
            }
            Some(x.values)
        }
    };
    let item_missing = missing.contains(&true).then(|| ItemMissing {
        universe: universe.to_vec(),
        missing,
    });
    if ind.kind == IndicatorKind::Proportion
        && let Some(r) = (0..n).find(|&r| defined[r] && y.values[r] != 0.0 && y.values[r] != 1.0)
    {
        return Err(err(format!(
            "a proportion's value must be true/false or 0/1, but respondent row {} has {}",
            r + 1,
            y.values[r]
        )));
    }
    Ok(IndicatorValues {
        // A quantile's values are sorted and read as a slice: kept as `f64`s.
        y: if ind.kind == IndicatorKind::Quantile {
            NumValues::Wide(y.values)
        } else {
            NumValues::compact(y.values)
        },
        x: x.map(NumValues::compact),
        defined,
        item_missing,
    })
}

/// Largest number of distinct values kept in the sorted insertion list of [`distinct_sorted`]
/// before it falls back to sorting every value.
const MAX_INSERTED_VALUES: usize = 4096;

/// The distinct values (by bit pattern) in `total_cmp` order, which is what sorting every value
/// and removing repeated bit patterns gives. A domain variable has few values, so inserting into
/// a short sorted list is much cheaper than sorting all respondents' values; a variable with
/// very many values falls back to the sort.
fn distinct_sorted(values: impl Iterator<Item = f64> + Clone) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for x in values.clone() {
        if let Err(i) = out.binary_search_by(|p| p.total_cmp(&x)) {
            if out.len() == MAX_INSERTED_VALUES {
                let mut all: Vec<f64> = values.collect();
                all.sort_by(f64::total_cmp);
                return all;
            }
            out.insert(i, x);
        }
    }
    out
}

/// The domain value index of every row, or none: `u32::MAX` stands for none, so that a
/// breakdown takes four bytes a row instead of the eight of `Option<u32>`.
#[derive(Debug, Clone, PartialEq)]
struct DomainOfRow(Vec<u32>);

impl DomainOfRow {
    const NONE: u32 = u32::MAX;

    /// Every row in domain value 0 (the whole sample).
    fn all_in_first(n: usize) -> DomainOfRow {
        DomainOfRow(vec![0; n])
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// The codes themselves, `NONE` included, for loops that count every row.
    fn codes(&self) -> &[u32] {
        &self.0
    }

    fn at(&self, r: usize) -> Option<u32> {
        let d = self.0[r];
        (d != Self::NONE).then_some(d)
    }

    fn iter(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        self.0.iter().map(|&d| (d != Self::NONE).then_some(d))
    }
}

impl FromIterator<Option<u32>> for DomainOfRow {
    fn from_iter<I: IntoIterator<Item = Option<u32>>>(rows: I) -> DomainOfRow {
        DomainOfRow(
            rows.into_iter()
                .map(|d| d.unwrap_or(DomainOfRow::NONE))
                .collect(),
        )
    }
}

/// A domain breakdown: per row the domain value index (or none), and the values' labels.
struct Breakdown {
    var: String,
    labels: Vec<String>,
    of_row: DomainOfRow,
    /// Estimated for the output; otherwise only for contrasts.
    published: bool,
}

/// The cross-classification of two breakdowns: one domain per pair of values present together,
/// labelled `a:b`, ordered by the first breakdown's value, then the second's.
fn cross(a: &Breakdown, b: &Breakdown) -> Breakdown {
    let kb = b.labels.len();
    // One pass: the pair's position in the a × b table, or none.
    let pair: Vec<u32> = a
        .of_row
        .iter()
        .zip(b.of_row.iter())
        .map(|(i, j)| match (i, j) {
            (Some(i), Some(j)) => i * kb as u32 + j,
            _ => u32::MAX,
        })
        .collect();
    let mut index = vec![u32::MAX; a.labels.len() * kb];
    for &ij in &pair {
        if ij != u32::MAX {
            index[ij as usize] = 0;
        }
    }
    let mut labels = Vec::new();
    for (ij, slot) in index.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = labels.len() as u32;
            labels.push(format!("{}:{}", a.labels[ij / kb], b.labels[ij % kb]));
        }
    }
    Breakdown {
        var: contrast::cross_name(&a.var, &b.var),
        labels,
        of_row: pair
            .iter()
            .map(|&ij| (ij != u32::MAX).then(|| index[ij as usize]))
            .collect(),
        published: false,
    }
}

fn breakdown(frame: &Frame, var: &str) -> Result<Breakdown, EstimateError> {
    let col = frame
        .column(var)
        .ok_or_else(|| EstimateError::MissingDomain(var.to_string()))?;
    let n = frame.n_rows();
    let (labels, of_row) = match &col.data {
        ColumnData::Num(v) => {
            let mut values = distinct_sorted(
                (0..n)
                    .filter(|&r| col.state[r] == CellState::Value)
                    .map(|r| v[r]),
            );
            values.dedup();
            let of_row = (0..n)
                .map(|r| {
                    (col.state[r] == CellState::Value)
                        .then(|| {
                            values
                                .binary_search_by(|p| p.total_cmp(&v[r]))
                                .ok()
                                .map(|i| i as u32)
                        })
                        .flatten()
                })
                .collect();
            (values.iter().map(|&x| format_number(x)).collect(), of_row)
        }
        ColumnData::Text { codes, levels } => {
            let mut order: Vec<u32> = (0..levels.len() as u32).collect();
            order.sort_by(|a, b| levels[*a as usize].cmp(&levels[*b as usize]));
            let mut rank = vec![0u32; levels.len()];
            for (i, &l) in order.iter().enumerate() {
                rank[l as usize] = i as u32;
            }
            let of_row = (0..n)
                .map(|r| (col.state[r] == CellState::Value).then(|| rank[codes[r] as usize]))
                .collect();
            (
                order.iter().map(|&l| levels[l as usize].clone()).collect(),
                of_row,
            )
        }
    };
    Ok(Breakdown {
        var: var.to_string(),
        labels,
        of_row,
        published: true,
    })
}

/// The breakdown of a domain: a variable's, or for a cross (`a:b`, variables joined by `:`) the
/// cross-classification of its variables, labelled `x:y` in the listed order.
fn domain_breakdown(frame: &Frame, domain: &str) -> Result<Breakdown, EstimateError> {
    let mut vars = domain.split(':');
    let first = vars.next().unwrap_or(domain);
    let mut out = breakdown(frame, first)?;
    for var in vars {
        out = cross(&out, &breakdown(frame, var)?);
        out.published = true;
    }
    Ok(out)
}

/// Estimate every indicator × scheme × domain. Rows come out sorted by indicator (request
/// order), scheme (request order), domain variable (`_T` first, then request order), domain
/// value (numeric or lexical order) and interval method (request order), whatever the thread
/// count.
pub fn estimate(req: &EstimationRequest<'_>) -> Result<Vec<EstimateRow>, EstimateError> {
    estimate_with_progress(req, &crate::progress::Silent).map(|e| e.rows)
}

/// Taylor estimates and contrasts of a request.
#[derive(Debug, Clone, Default)]
pub struct Estimates {
    /// As [`estimate`] returns them.
    pub rows: Vec<EstimateRow>,
    /// In contrast, indicator, scheme, level order.
    pub contrasts: Vec<ContrastRow>,
    /// In test, scheme, statistic order.
    pub tests: Vec<TestRow>,
}

/// [`estimate`] with the request's contrasts, telling `progress` of every finished indicator ×
/// scheme block.
pub fn estimate_with_progress(
    req: &EstimationRequest<'_>,
    progress: &dyn crate::progress::Progress,
) -> Result<Estimates, EstimateError> {
    estimate_with(req, true, progress)
}

/// [`estimate`] with the calibration residuals always taken row by row (the reference the
/// grouped residuals are tested against).
#[cfg(test)]
pub(crate) fn estimate_row_residuals(
    req: &EstimationRequest<'_>,
) -> Result<Estimates, EstimateError> {
    estimate_with(req, false, &crate::progress::Silent)
}

/// Whether the Taylor variance of `scheme` takes its calibration residuals on sums.
#[cfg(test)]
pub(crate) fn uses_grouped_residuals(design: &Design, scheme: &Scheme) -> bool {
    CalibratedSums::of(design, scheme).is_some()
}

fn estimate_with(
    req: &EstimationRequest<'_>,
    grouped_residuals: bool,
    progress: &dyn crate::progress::Progress,
) -> Result<Estimates, EstimateError> {
    let tasks: Vec<(usize, usize)> = (0..req.indicators.len())
        .flat_map(|i| (0..req.schemes.len()).map(move |s| (i, s)))
        .collect();
    progress.start("estimate", tasks.len().try_into().unwrap_or(u64::MAX));
    // The schemes' calibration sums (a pass over the rows each, on one thread) are formed
    // while the indicators' values are.
    let (sums, prepared) = rayon::join(
        || -> Vec<Option<CalibratedSums<'_>>> {
            req.schemes
                .par_iter()
                .map(|s| {
                    grouped_residuals
                        .then(|| CalibratedSums::of(req.design, s))
                        .flatten()
                })
                .collect()
        },
        || prepare(req),
    );
    let prepared = prepared?;
    let per_scheme: Vec<SchemeCells> = req
        .schemes
        .par_iter()
        .zip(&sums)
        .map(|(scheme, cal)| {
            let w = &scheme.weights;
            let full_df = req
                .design
                .degf(&w.iter().map(|&x| x != 0.0).collect::<Vec<_>>());
            let fine = if !grouped_residuals || req.design.n_stages() > 1 {
                None
            } else if scheme.calibrated {
                // The calibration cell joins the key, so that the model row is constant
                // within a fine cell.
                cal.as_ref()
                    .and_then(|_| Some((scheme.chain.cells()?, prepared.fine.as_ref()?)))
                    .and_then(|(cells, by_domains)| {
                        let cell_of = |r: usize| cells.cell_of(r);
                        let form = cal.as_ref()?.form;
                        by_domains.split_by_calibration(
                            req.design.psu_of_row(),
                            req.design.n_psu(),
                            &prepared.breakdowns,
                            &cell_of,
                            cells.n_cells(),
                            &|i, f| form.terms(i, f),
                        )
                    })
            } else {
                None
            };
            SchemeCells { full_df, fine }
        })
        .collect();
    let blocks: Vec<Block> = tasks
        .par_iter()
        .map(|&(i, s)| {
            if let Some(orders) = &prepared.quantile_orders[i] {
                let block = quantile_rows::taylor_block(
                    req,
                    req.indicators[i],
                    &prepared.values[i],
                    orders,
                    &req.schemes[s],
                    &prepared.breakdowns,
                    sums[s].as_ref(),
                    sums_path(
                        req.design,
                        &req.schemes[s],
                        sums[s].as_ref(),
                        None,
                        per_scheme[s].fine.as_ref(),
                        grouped_residuals,
                    ),
                    per_scheme[s].full_df,
                );
                progress.advance(1);
                return block;
            }
            let block = estimate_block(
                req,
                req.indicators[i],
                &prepared.values[i],
                &req.schemes[s],
                &prepared.breakdowns,
                prepared.keep.get(i).map(Vec::as_slice),
                None,
                sums[s].as_ref(),
                sums_path(
                    req.design,
                    &req.schemes[s],
                    sums[s].as_ref(),
                    prepared.fine.as_ref(),
                    per_scheme[s].fine.as_ref(),
                    grouped_residuals,
                ),
                per_scheme[s].full_df,
            );
            progress.advance(1);
            block
        })
        .collect::<Result<_, _>>()?;
    progress.finish();
    let contrasts = taylor_contrasts(req, &prepared, &blocks, &per_scheme)?;
    let mut rows: Vec<EstimateRow> = blocks.into_iter().flat_map(|b| b.rows).collect();
    order_categories(req, &mut rows);
    let by_scheme: Vec<Vec<TestRow>> = req
        .schemes
        .par_iter()
        .map(|scheme| two_way::taylor_tests(req, &prepared.tables, scheme))
        .collect::<Result<_, _>>()?;
    let mut tests = Vec::new();
    for spec in req.tests {
        for rows_of_scheme in &by_scheme {
            tests.extend(
                rows_of_scheme
                    .iter()
                    .filter(|r| r.test == spec.name)
                    .cloned(),
            );
        }
    }
    Ok(Estimates {
        rows,
        contrasts,
        tests,
    })
}

/// Contrast rows from the scores the blocks kept, in contrast, indicator, scheme, level order.
fn taylor_contrasts(
    req: &EstimationRequest<'_>,
    prepared: &Prepared,
    blocks: &[Block],
    per_scheme: &[SchemeCells],
) -> Result<Vec<ContrastRow>, EstimateError> {
    let mut out = Vec::new();
    // The pairs come in contrast, indicator, level order: a chunk per (contrast, indicator).
    for chunk in prepared
        .pairs
        .chunk_by(|a, b| (a.contrast, a.indicator) == (b.contrast, b.indicator))
    {
        for (s, scheme) in req.schemes.iter().enumerate() {
            for pair in chunk {
                // Blocks are indicator-major, as the tasks; kept scores are in statistic order.
                let block = &blocks[pair.indicator * req.schemes.len() + s];
                let kept = |stat: Option<usize>| {
                    let k = stat?;
                    let at = block.kept.binary_search_by_key(&k, |(at, _)| *at).ok()?;
                    Some(&block.kept[at].1)
                };
                let context = contrast_context(req, pair, scheme, per_scheme[s].full_df);
                let row = match (kept(pair.first), kept(pair.second)) {
                    (Some(a), Some(b)) if a.estimate.is_finite() && b.estimate.is_finite() => {
                        let variance = contrast::taylor_variance(req.design, &a.score, &b.score)
                            .map_err(|message| EstimateError::Contrast {
                                contrast: context.spec.name.clone(),
                                message: format!(
                                    "indicator {}, weighting {}: {message}",
                                    context.indicator, scheme.name
                                ),
                            })?;
                        contrast::row(&context, Some((a.estimate, b.estimate)), variance)
                    }
                    (Some(a), Some(b)) => {
                        contrast::row(&context, Some((a.estimate, b.estimate)), f64::NAN)
                    }
                    _ => contrast::row(&context, None, f64::NAN),
                };
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// What a contrast row of `pair` under `scheme` shows besides its numbers.
fn contrast_context<'a>(
    req: &'a EstimationRequest<'a>,
    pair: &'a ContrastPair,
    scheme: &'a Scheme,
    df: f64,
) -> contrast::RowContext<'a> {
    let ind = req.indicators[pair.indicator];
    contrast::RowContext {
        spec: &req.contrasts[pair.contrast],
        pair,
        indicator: &ind.id,
        multiplier: ind.multiplier,
        weighting: &scheme.name,
        variance: req.variance,
        df,
        level: req.level,
    }
}

/// Contrast rows of one scheme whose variances come from replicates: `full` and `replicates`
/// are every statistic's full-sample and replicate estimates in [`point_estimates`] order
/// (`n_rep` replicates per statistic, statistic after statistic); `variance` is the method's
/// replicate variance formula and `df` the df of the whole replicate design. In contrast,
/// indicator, level order.
#[allow(clippy::too_many_arguments)]
pub fn replicate_contrasts(
    req: &EstimationRequest<'_>,
    prepared: &Prepared,
    scheme: &Scheme,
    full: &[f64],
    replicates: &[f64],
    n_rep: usize,
    variance: &dyn Fn(&[f64], f64) -> f64,
    df: f64,
) -> Vec<ContrastRow> {
    let per_indicator = prepared
        .breakdowns
        .iter()
        .map(|b| b.labels.len())
        .sum::<usize>();
    prepared
        .pairs
        .iter()
        .map(|pair| {
            let context = contrast_context(req, pair, scheme, df);
            let at = |stat: usize| pair.indicator * per_indicator + stat;
            match (pair.first.map(at), pair.second.map(at)) {
                (Some(a), Some(b)) => {
                    let v = contrast::replicate_variance(
                        (&replicates[a * n_rep..(a + 1) * n_rep], full[a]),
                        (&replicates[b * n_rep..(b + 1) * n_rep], full[b]),
                        variance,
                    );
                    contrast::row(&context, Some((full[a], full[b])), v)
                }
                _ => contrast::row(&context, None, f64::NAN),
            }
        })
        .collect()
}

/// Rows of one indicator × scheme, and the scores kept for contrasts (by statistic).
struct Block {
    rows: Vec<EstimateRow>,
    kept: Vec<(usize, Kept)>,
}

/// How a block forms its sums: the fast path and its fallbacks.
#[derive(Clone, Copy)]
enum SumsPath<'a> {
    /// One pass over the rows per indicator into the fine cells, every breakdown's sums by
    /// (domain value, PSU) added from them (`fine.rs`).
    FineCells(&'a FineCells),
    /// One pass over the rows per indicator and breakdown (`row_sums`).
    PerBreakdown,
    /// Row scores per domain (`domain_estimate`).
    Rows,
}

/// The one place that chooses how a Taylor block forms its sums. Sums by (domain value, PSU)
/// need a single-stage design and, for a calibrated scheme, calibration residuals with a linear
/// form taken on sums (`sums`); with `grouped_residuals` false, the calibrated schemes take the
/// row path (the reference the sums are tested against). Fine cells are used when they exist:
/// the request's for an uncalibrated scheme, the scheme's own (calibration cell in the key) for
/// a calibrated one. Replicate rows, whose variances are given, take the request's fine cells
/// or a pass per breakdown.
fn sums_path<'a>(
    design: &Design,
    scheme: &Scheme,
    sums: Option<&CalibratedSums<'_>>,
    request_fine: Option<&'a FineCells>,
    scheme_fine: Option<&'a FineCells>,
    grouped_residuals: bool,
) -> SumsPath<'a> {
    if design.n_stages() > 1 || (scheme.calibrated && sums.is_none()) {
        return SumsPath::Rows;
    }
    let fine = if scheme.calibrated {
        scheme_fine
    } else {
        request_fine.filter(|_| grouped_residuals)
    };
    fine.map_or(SumsPath::PerBreakdown, SumsPath::FineCells)
}

/// What the Taylor blocks of one scheme share.
struct SchemeCells {
    /// R's degf() of the design over the rows with non-zero weight.
    full_df: f64,
    /// Fine cells with the calibration cell in the key (calibrated schemes whose residuals
    /// are taken on sums); uncalibrated schemes use the request's.
    fine: Option<FineCells>,
}

/// Indicator values and domain breakdowns of a request, evaluated once and shared by the
/// full-sample estimates and every replicate.
pub struct Prepared {
    values: Vec<IndicatorValues>,
    breakdowns: Vec<Breakdown>,
    /// Fine cells of the breakdowns by PSU (no calibration cell), when there are few enough.
    fine: Option<FineCells>,
    /// The statistics every contrast row compares.
    pairs: Vec<ContrastPair>,
    /// Per indicator, per statistic: whether a contrast needs its score (empty: none does).
    keep: Vec<Vec<bool>>,
    /// Per indicator: a quantile indicator's domains in order of value.
    quantile_orders: Vec<Option<quantile_rows::DomainOrders>>,
    /// The two-way table of each test of association.
    tables: Vec<two_way::TablePlan>,
}

impl Prepared {
    /// Number of statistics [`point_estimates`] returns: indicators × (1 + Σ domain values).
    pub fn n_statistics(&self) -> usize {
        self.values.len()
            * self
                .breakdowns
                .iter()
                .map(|b| b.labels.len())
                .sum::<usize>()
    }
}

impl Prepared {
    /// Respondent rows (sorted, distinct) of every indicator × domain with at most `max_rows`
    /// rows: the domains whose replicate df must be computed on their own rows.
    pub fn small_domain_rows(&self, max_rows: usize) -> Vec<usize> {
        let per_indicator: Vec<Vec<usize>> = self
            .values
            .par_iter()
            .map(|vals| {
                let mut keep = Vec::new();
                for b in &self.breakdowns {
                    // Rows outside every domain counted in a last slot: no branch per row.
                    let k = b.labels.len();
                    let mut count = vec![0usize; k + 1];
                    for (&d, &defined) in b.of_row.codes().iter().zip(&vals.defined) {
                        count[(d as usize).min(k)] += usize::from(defined);
                    }
                    let small = |d: u32| (d as usize) < k && count[d as usize] <= max_rows;
                    if !(0..k as u32).any(|d| count[d as usize] > 0 && small(d)) {
                        continue;
                    }
                    for (r, (&d, &defined)) in
                        b.of_row.codes().iter().zip(&vals.defined).enumerate()
                    {
                        if defined && small(d) {
                            keep.push(r);
                        }
                    }
                }
                keep
            })
            .collect();
        let mut keep = per_indicator.concat();
        keep.sort_unstable();
        keep.dedup();
        keep
    }
}

/// Evaluate the request's indicators and domain variables.
pub fn prepare(req: &EstimationRequest<'_>) -> Result<Prepared, EstimateError> {
    let n = req.frame.n_rows();
    let mut breakdowns = vec![Breakdown {
        var: TOTAL.into(),
        labels: vec![TOTAL.into()],
        of_row: DomainOfRow::all_in_first(n),
        published: true,
    }];
    let by_domain: Vec<Breakdown> = req
        .domains
        .par_iter()
        .map(|d| domain_breakdown(req.frame, d))
        .collect::<Result<_, _>>()?;
    breakdowns.extend(by_domain);
    contrast_breakdowns(req, &mut breakdowns)?;
    // Each distinct universe once: a distribution's parts share theirs.
    let mut distinct: Vec<(&str, &Indicator)> = Vec::new();
    for ind in req.indicators {
        if let Some(u) = &ind.universe
            && let Err(k) = distinct.binary_search_by(|(s, _)| (*s).cmp(u.source()))
        {
            distinct.insert(k, (u.source(), ind));
        }
    }
    let universes: Vec<Vec<bool>> = distinct
        .par_iter()
        .map(|(_, ind)| match &ind.universe {
            Some(expr) => expr
                .eval_true(req.frame)
                .map_err(|e| EstimateError::Indicator {
                    indicator: ind.id.clone(),
                    message: e.to_string(),
                }),
            None => Ok(Vec::new()),
        })
        .collect::<Result<_, _>>()?;
    let sources: Vec<&str> = distinct.iter().map(|(s, _)| *s).collect();
    let values: Vec<IndicatorValues> = req
        .indicators
        .par_iter()
        .map(|ind| {
            let universe = ind.universe.as_ref().and_then(|u| {
                sources
                    .binary_search(&u.source())
                    .ok()
                    .map(|k| universes[k].as_slice())
            });
            evaluate(ind, req.frame, universe)
        })
        .collect::<Result<_, _>>()?;
    let fine = FineCells::build(req.design.psu_of_row(), req.design.n_psu(), &breakdowns);
    let pairs = contrast_pairs(req, &breakdowns, &values, fine.as_ref())?;
    let per_indicator: usize = breakdowns.iter().map(|b| b.labels.len()).sum();
    let mut keep = Vec::new();
    if !pairs.is_empty() {
        keep = vec![vec![false; per_indicator]; values.len()];
        for p in &pairs {
            for stat in [p.first, p.second].into_iter().flatten() {
                keep[p.indicator][stat] = true;
            }
        }
    }
    let quantile_orders = req
        .indicators
        .par_iter()
        .zip(&values)
        .map(|(ind, vals)| {
            (ind.kind == IndicatorKind::Quantile)
                .then(|| quantile_rows::domain_orders(vals, &breakdowns))
        })
        .collect();
    let tables = two_way::table_plans(req.frame, req.tests)?;
    Ok(Prepared {
        values,
        breakdowns,
        fine,
        pairs,
        keep,
        quantile_orders,
        tables,
    })
}

/// A contrast's code of `by` as the breakdown labels write it (numbers formatted as in the
/// data's labels, so `compare = ["2025"]` finds the value 2025).
fn label_of_code(frame: &Frame, var: &str, code: &str) -> String {
    match frame.column(var).map(|c| &c.data) {
        Some(ColumnData::Num(_)) => code
            .trim()
            .parse::<f64>()
            .map_or_else(|_| code.to_string(), format_number),
        _ => code.to_string(),
    }
}

/// Add the breakdowns contrasts need and the output does not have: `by`, and `by` crossed with
/// each `within` variable (not published).
fn contrast_breakdowns(
    req: &EstimationRequest<'_>,
    breakdowns: &mut Vec<Breakdown>,
) -> Result<(), EstimateError> {
    let find = |bs: &[Breakdown], var: &str| bs.iter().position(|b| b.var == var);
    for c in req.contrasts {
        let plain = |bs: &mut Vec<Breakdown>, var: &str| -> Result<usize, EstimateError> {
            if let Some(i) = find(bs, var) {
                return Ok(i);
            }
            let mut b = breakdown(req.frame, var)?;
            b.published = false;
            bs.push(b);
            Ok(bs.len() - 1)
        };
        let by = plain(breakdowns, &c.by)?;
        for w in &c.within {
            if find(breakdowns, &contrast::cross_name(&c.by, w)).is_none() {
                let within = plain(breakdowns, w)?;
                let crossed = cross(&breakdowns[by], &breakdowns[within]);
                breakdowns.push(crossed);
            }
        }
    }
    Ok(())
}

/// Every (contrast, indicator, level) pair of statistics, with the respondents of each domain.
fn contrast_pairs(
    req: &EstimationRequest<'_>,
    breakdowns: &[Breakdown],
    values: &[IndicatorValues],
    fine: Option<&FineCells>,
) -> Result<Vec<ContrastPair>, EstimateError> {
    let mut offset = Vec::with_capacity(breakdowns.len());
    let mut at = 0;
    for b in breakdowns {
        offset.push(at);
        at += b.labels.len();
    }
    let find = |var: &str| breakdowns.iter().position(|b| b.var == var);
    // (contrast, indicator, level, breakdown) of every pair, then the respondents of the
    // breakdowns each indicator needs, counted in one pass per indicator.
    let mut planned = Vec::new();
    let mut needed = vec![vec![false; breakdowns.len()]; values.len()];
    for (ci, c) in req.contrasts.iter().enumerate() {
        let err = |message: String| EstimateError::Contrast {
            contrast: c.name.clone(),
            message,
        };
        let by = find(&c.by).ok_or_else(|| EstimateError::MissingDomain(c.by.clone()))?;
        let first = label_of_code(req.frame, &c.by, &c.first);
        let second = label_of_code(req.frame, &c.by, &c.second);
        for code in [&first, &second] {
            if !breakdowns[by].labels.contains(code) {
                return Err(err(format!(
                    "compare code \"{code}\" of {} has no respondents in the data (values present: {}); write one of those codes",
                    c.by,
                    breakdowns[by].labels.join(", ")
                )));
            }
        }
        let spec = ContrastSpec {
            first,
            second,
            ..c.clone()
        };
        let within_labels: Vec<Vec<String>> = c
            .within
            .iter()
            .map(|w| find(w).map_or_else(Vec::new, |i| breakdowns[i].labels.clone()))
            .collect();
        let levels = contrast::levels(&spec, &within_labels);
        for id in &c.indicators {
            let Some(i) = req.indicators.iter().position(|ind| &ind.id == id) else {
                return Err(err(format!(
                    "indicator \"{id}\" is not among the estimated indicators"
                )));
            };
            for level in levels.iter() {
                if let Some(b) = find(&level.breakdown) {
                    needed[i][b] = true;
                    planned.push((ci, i, level.clone(), b));
                }
            }
        }
    }
    let counts: Vec<Vec<Vec<usize>>> = needed
        .par_iter()
        .zip(values)
        .map(|(wanted, vals)| {
            if !wanted.contains(&true) {
                return Vec::new();
            }
            match fine {
                Some(cells) => cells.defined_counts(&vals.defined, wanted, breakdowns),
                None => breakdowns
                    .iter()
                    .zip(wanted)
                    .map(|(bd, &w)| {
                        let mut n = vec![0usize; if w { bd.labels.len() } else { 0 }];
                        if w {
                            for (o, def) in bd.of_row.iter().zip(&vals.defined) {
                                if let (Some(d), true) = (o, def) {
                                    n[d as usize] += 1;
                                }
                            }
                        }
                        n
                    })
                    .collect(),
            }
        })
        .collect();
    let pairs = planned
        .into_iter()
        .map(|(ci, i, level, b)| {
            let bd = &breakdowns[b];
            let stat = |label: &str| -> (Option<usize>, usize) {
                match bd.labels.iter().position(|l| l == label) {
                    Some(d) => (Some(offset[b] + d), counts[i][b][d]),
                    None => (None, 0),
                }
            };
            let (first, n_first) = stat(&level.first_label);
            let (second, n_second) = stat(&level.second_label);
            ContrastPair {
                contrast: ci,
                indicator: i,
                within_var: level.within_var,
                within_value: level.within_value,
                first: first.filter(|_| n_first > 0),
                second: second.filter(|_| n_second > 0),
                n_first,
                n_second,
            }
        })
        .collect();
    Ok(pairs)
}

/// Point estimates of every indicator × domain under weights `w` (one per respondent row), in
/// a fixed order: indicator, then domain variable (`_T` first), then domain value. One pass over
/// the rows per indicator into the fine cells (or, without them, per indicator and domain
/// variable); a domain without rows gives NaN. This is what a replicate needs: θ_r for every
/// statistic from the replicate's weights.
pub fn point_estimates(req: &EstimationRequest<'_>, prepared: &Prepared, w: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(prepared.n_statistics());
    if let Some(fine) = &prepared.fine {
        let per_indicator: Vec<Vec<f64>> = req
            .indicators
            .par_iter()
            .zip(&prepared.values)
            .map(|(ind, vals)| {
                if ind.kind == IndicatorKind::Quantile {
                    // Quantiles have their own replicate statistics (quantile_rows.rs).
                    return vec![f64::NAN; prepared.n_statistics() / req.indicators.len()];
                }
                let totals = fine.totals(ind.kind, vals, w, None);
                let mut out = Vec::new();
                for (index, b) in prepared.breakdowns.iter().enumerate() {
                    let k = b.labels.len();
                    let (sw, swy, swx) = fine.domain_totals(index, k, &totals);
                    out.extend((0..k).map(|d| estimator::point(ind.kind, sw[d], swy[d], swx[d])));
                }
                out
            })
            .collect();
        out.extend(per_indicator.into_iter().flatten());
        return out;
    }
    for (ind, vals) in req.indicators.iter().zip(&prepared.values) {
        if ind.kind == IndicatorKind::Quantile {
            out.extend(std::iter::repeat_n(
                f64::NAN,
                prepared.n_statistics() / req.indicators.len(),
            ));
            continue;
        }
        for b in &prepared.breakdowns {
            let k = b.labels.len();
            let (mut sw, mut swy, mut swx) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
            for (r, d) in b.of_row.iter().enumerate() {
                if let Some(d) = d
                    && vals.defined[r]
                {
                    let d = d as usize;
                    sw[d] += w[r];
                    swy[d] += w[r] * vals.y[r];
                    if let Some(x) = &vals.x {
                        swx[d] += w[r] * x[r];
                    }
                }
            }
            for d in 0..k {
                out.push(estimator::point(ind.kind, sw[d], swy[d], swx[d]));
            }
        }
    }
    out
}

/// Rows for one scheme whose variances come from replicates: `variances` and the replicate `df`
/// replace the Taylor variance (in [`point_estimates`] order, before the multiplier); estimates,
/// counts, design effects and intervals are computed as for Taylor.
pub fn rows_with_variances(
    req: &EstimationRequest<'_>,
    prepared: &Prepared,
    scheme: &Scheme,
    variances: &[f64],
    logit_variances: &[f64],
    df: &ReplicateDf<'_>,
) -> Result<Vec<EstimateRow>, EstimateError> {
    let per_indicator = prepared
        .breakdowns
        .iter()
        .map(|b| b.labels.len())
        .sum::<usize>();
    let full_df = req
        .design
        .degf(&scheme.weights.iter().map(|&x| x != 0.0).collect::<Vec<_>>());
    let fine = prepared.fine.as_ref();
    // Indicators in parallel (their replicate df, the rank of each domain's replicate weights,
    // is most of the work), rows kept in indicator order.
    use rayon::prelude::*;
    let blocks: Vec<Result<Vec<EstimateRow>, EstimateError>> = req
        .indicators
        .par_iter()
        .enumerate()
        .map(|(i, ind)| {
            if ind.kind == IndicatorKind::Quantile {
                // Rows from quantile_replicate_rows.
                return Ok(Vec::new());
            }
            let range = i * per_indicator..(i + 1) * per_indicator;
            let given = Replicated {
                variances: &variances[range.clone()],
                logit_variances: &logit_variances[range],
                df,
            };
            Ok(estimate_block(
                req,
                ind,
                &prepared.values[i],
                scheme,
                &prepared.breakdowns,
                None,
                Some(given),
                None,
                fine.map_or(SumsPath::PerBreakdown, SumsPath::FineCells),
                full_df,
            )?
            .rows)
        })
        .collect();
    let mut rows = Vec::new();
    for block in blocks {
        rows.extend(block?);
    }
    Ok(rows)
}

/// Replicate variances of one indicator's statistics, replacing the Taylor variance.
#[derive(Clone, Copy)]
struct Replicated<'a> {
    variances: &'a [f64],
    /// Replicate variances of logit(p̂) (proportions' `logit` interval).
    logit_variances: &'a [f64],
    /// Replicate df of a domain, R's `degf` of the subset.
    df: &'a ReplicateDf<'a>,
}

/// Replicate df of a domain from (its PSUs with non-zero-weight rows, sorted; its number of
/// rows; a function listing its rows, called only when needed).
pub type ReplicateDf<'a> = dyn Fn(&[u32], usize, &DomainRows<'_>) -> f64 + Sync + 'a;

/// The rows of a domain, listed when a replicate df needs them: borrowed where the estimate
/// stage has them already.
pub type DomainRows<'r> = dyn Fn() -> std::borrow::Cow<'r, [usize]> + 'r;

/// Rows of one indicator under one scheme. `replicated`: variances per statistic (in
/// [`point_estimates`] order) and the replicate df, replacing the Taylor variance. `keep`: per
/// statistic, whether to keep its Taylor score for contrasts.
#[allow(clippy::too_many_arguments)]
fn estimate_block(
    req: &EstimationRequest<'_>,
    ind: &Indicator,
    vals: &IndicatorValues,
    scheme: &Scheme,
    breakdowns: &[Breakdown],
    keep: Option<&[bool]>,
    replicated: Option<Replicated<'_>>,
    sums: Option<&CalibratedSums<'_>>,
    path: SumsPath<'_>,
    full_df: f64,
) -> Result<Block, EstimateError> {
    let n = req.frame.n_rows();
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    let keep = keep.filter(|_| replicated.is_none());
    // A domain's row mask and scores, for the row path only (allocated when first needed).
    let mut row_buffers: Option<(Vec<bool>, Vec<f64>)> = None;
    let mut k = 0usize;
    // Sums by domain value × PSU (fine cells or a pass per breakdown), or row scores: the
    // choice is `sums_path`'s.
    let grouped_path = !matches!(path, SumsPath::Rows);
    let score_weight = if replicated.is_none() && scheme.calibrated {
        sums.map(|c| c.score_weight.as_slice())
    } else {
        None
    };
    let fine = match path {
        SumsPath::FineCells(cells) => Some((
            cells,
            cells.totals(ind.kind, vals, &scheme.weights, score_weight),
        )),
        SumsPath::PerBreakdown | SumsPath::Rows => None,
    };
    // Which breakdowns are estimated here (one formed only for contrasts is skipped when none
    // of its domains is contrasted here, or the contrasts take their variance from
    // replicates), and their item-missing shares, in one pass over the rows.
    let estimated: Vec<bool> = {
        let mut start = 0;
        breakdowns
            .iter()
            .map(|b| {
                let keep_b = keep.map(|kp| &kp[start..start + b.labels.len()]);
                start += b.labels.len();
                b.published || keep_b.is_some_and(|kp| kp.contains(&true))
            })
            .collect()
    };
    let wanted: Vec<&Breakdown> = breakdowns
        .iter()
        .zip(&estimated)
        .filter(|(_, e)| **e)
        .map(|(b, _)| b)
        .collect();
    let mut shares_of_wanted = item_missing_shares_of(vals, &scheme.weights, &wanted).into_iter();
    let item_missing_by_breakdown: Vec<Vec<Option<f64>>> = estimated
        .iter()
        .map(|&e| {
            e.then(|| shares_of_wanted.next())
                .flatten()
                .unwrap_or_default()
        })
        .collect();
    for (index, b) in breakdowns.iter().enumerate() {
        let given = replicated.map(|g| (&g.variances[k..k + b.labels.len()], g.df));
        let keep_b = keep.map(|kp| &kp[k..k + b.labels.len()]);
        if !estimated[index] {
            k += b.labels.len();
            continue;
        }
        let item_missing = &item_missing_by_breakdown[index];
        let grouped = if grouped_path {
            let fine = fine.as_ref().map(|(cells, totals)| (*cells, totals, index));
            grouped_domain_stats(
                req, ind.kind, vals, scheme, b, full_df, given, sums, fine, keep_b, None,
            )
        } else {
            None
        };
        for (d, label) in b.labels.iter().enumerate() {
            let stat = k;
            k += 1;
            let domain = || {
                if b.var == TOTAL {
                    TOTAL.to_string()
                } else {
                    format!("{}={}", b.var, label)
                }
            };
            let variance_error = |message: String| EstimateError::Variance {
                indicator: ind.id.clone(),
                weighting: scheme.name.clone(),
                domain: domain(),
                message,
            };
            let (mut stats, n_unweighted) = match grouped.as_ref().map(|all| &all[d]) {
                Some(None) => continue,
                Some(Some(Ok((stats, n)))) => (stats.clone(), *n),
                Some(Some(Err(message))) => return Err(variance_error(message.clone())),
                None => {
                    if !b.published && !keep.is_some_and(|kp| kp[stat]) {
                        continue;
                    }
                    let (mask, scores) =
                        row_buffers.get_or_insert_with(|| (vec![false; n], vec![0.0; n]));
                    for (r, m) in mask.iter_mut().enumerate() {
                        *m = vals.defined[r] && b.of_row.at(r) == Some(d as u32);
                    }
                    let n_unweighted = mask.iter().filter(|&&m| m).count();
                    if n_unweighted == 0 {
                        continue;
                    }
                    // Replicate rows always take the grouped path.
                    let given = replicated.map(|g| (g.variances[stat], f64::NAN));
                    let keep_scores = keep.is_some_and(|kp| kp[stat]);
                    let stats = domain_estimate(
                        req,
                        ind.kind,
                        vals,
                        scheme,
                        mask,
                        scores,
                        full_df,
                        given,
                        keep_scores,
                    )
                    .map_err(variance_error)?;
                    (stats, n_unweighted)
                }
            };
            if let Some(score) = stats.kept.take() {
                kept.push((
                    stat,
                    Kept {
                        estimate: stats.estimate,
                        score,
                    },
                ));
            }
            if !b.published {
                continue;
            }
            let logit_se = replicated.map(|g| g.logit_variances[stat].sqrt());
            let m = ind.multiplier;
            let est = stats.estimate * m;
            let se = stats.se * m;
            let cv = (est != 0.0 && se.is_finite()).then(|| se / est.abs());
            let mut push = |method: CiMethod, bounds: Option<(f64, f64)>| {
                rows.push(EstimateRow {
                    indicator: ind.id.clone(),
                    weighting: scheme.name.clone(),
                    variance: req.variance,
                    domain_var: b.var.clone(),
                    domain_value: label.clone(),
                    category: ind.category.as_ref().map(|c| c.code.clone()),
                    estimate: finite(est),
                    se: finite(se),
                    ci_low: bounds.and_then(|b| finite(b.0 * m)),
                    ci_high: bounds.and_then(|b| finite(b.1 * m)),
                    ci_method: method,
                    df: finite(stats.df),
                    cv: cv.and_then(finite),
                    deff: stats.deff.and_then(finite),
                    n_unweighted: n_unweighted as i64,
                    n_weighted: stats.n_weighted,
                    n_effective: stats
                        .deff
                        .filter(|d| d.is_finite() && *d > 0.0)
                        .map(|d| n_unweighted as f64 / d),
                    item_missing_share: item_missing[d],
                    flag: Flag::Reliable,
                    flag_reason: String::new(),
                    level: crate::questionnaire::Level::Person,
                });
            };
            if ind.kind == IndicatorKind::Proportion {
                for &method in req.ci {
                    let bounds = match (method, logit_se) {
                        (CiMethod::Logit, Some(se_logit)) => {
                            ci::logit_scale_ci(stats.estimate, se_logit, stats.df, req.level)
                        }
                        _ => ci::proportion_ci(
                            method,
                            stats.estimate,
                            stats.se,
                            stats.df,
                            req.level,
                            stats.beta_nrow,
                        ),
                    };
                    push(method, bounds);
                }
            } else {
                push(
                    CiMethod::Mean,
                    ci::wald_ci(stats.estimate, stats.se, stats.df, req.level, false),
                );
                if req.ci.contains(&CiMethod::Normal) {
                    push(
                        CiMethod::Normal,
                        ci::wald_ci(stats.estimate, stats.se, stats.df, req.level, true),
                    );
                }
            }
        }
    }
    Ok(Block { rows, kept })
}

/// Rows of an indicator with categories in category order first (a distribution's parts are
/// already in it; a quantile's probabilities come out of each block domain by domain), keeping
/// the order of everything else: an indicator's rows are indicator, category, scheme, domain.
pub fn order_categories(req: &EstimationRequest<'_>, rows: &mut [EstimateRow]) {
    let rank = |r: &EstimateRow| -> (usize, usize) {
        let first = req
            .indicators
            .iter()
            .position(|i| i.id == r.indicator)
            .unwrap_or(usize::MAX);
        let category = match (&r.category, req.indicators.get(first)) {
            (Some(c), Some(ind)) => match &ind.quantile {
                Some(spec) => spec
                    .probs
                    .iter()
                    .position(|p| quantile_rows::prob_label(*p) == *c)
                    .unwrap_or(0),
                None => req.indicators[first..]
                    .iter()
                    .take_while(|i| i.id == r.indicator)
                    .position(|i| i.category.as_ref().is_some_and(|k| k.code == *c))
                    .unwrap_or(0),
            },
            _ => 0,
        };
        (first, category)
    };
    rows.sort_by_cached_key(rank);
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[derive(Debug, Clone)]
struct DomainStats {
    estimate: f64,
    se: f64,
    df: f64,
    deff: Option<f64>,
    n_weighted: f64,
    beta_nrow: f64,
    /// The linearized score, when a contrast needs it.
    kept: Option<KeptScore>,
}

/// A calibrated scheme's residual map prepared for the grouped pass ([`LinearResidual`]):
/// e = z − a ⊙ (M β), β = S⁻¹ Σ m b z. Per scheme, independent of the statistic:
/// `score_weight` = b_i w_i per row and the PSU fitted totals F_p = Σ_{i∈p} a_i m_i.
struct CalibratedSums<'a> {
    form: LinearResidual<'a>,
    solver: ResidualSolver<'a>,
    score_weight: Vec<f64>,
    /// n_psu × dim, row-major.
    fitted: Vec<f64>,
    /// The same by non-zero entries: a PSU's fitted totals are zero in the model columns
    /// (post-strata, raking margins' categories) none of its rows is in.
    fitted_nonzero: SparseRows,
}

/// Largest PSU × model-column table of fitted totals kept per scheme (a joint post-strata table
/// with very many cells takes the row path instead).
const MAX_FITTED_CELLS: usize = 1 << 24;

impl<'a> CalibratedSums<'a> {
    /// `None` when the scheme is not calibrated, its calibration has no linear residual form
    /// (R's `rake()` approximation), or the design needs row-level scores (several stages).
    fn of(design: &Design, scheme: &'a Scheme) -> Option<CalibratedSums<'a>> {
        let cal = scheme.calibration.as_ref()?;
        let form = cal.residualizer.linear_form()?;
        let n = scheme.weights.len();
        if design.n_stages() > 1
            || form.n_rows() != n
            || design.n_rows() != n
            || form.dim().saturating_mul(design.n_psu()) > MAX_FITTED_CELLS
        {
            return None;
        }
        let score_weight = (0..n)
            .map(|i| form.score_weight(i, scheme.weights[i]))
            .collect();
        let fitted = form.psu_fitted_totals(design.psu_of_row(), design.n_psu());
        let fitted_nonzero = SparseRows::from_dense(&fitted, form.dim());
        Some(CalibratedSums {
            form,
            solver: form.solver(),
            score_weight,
            fitted,
            fitted_nonzero,
        })
    }
}

/// Sums of one (domain value, PSU) cell: weight, weighted value, weighted denominator, rows,
/// rows with non-zero weight.
#[derive(Clone, Copy, Default)]
struct PsuCell {
    w: f64,
    wy: f64,
    wx: f64,
    rows: u32,
    nonzero: u32,
}

/// Per domain value of breakdown `b`: its statistics and row count, an error message, or `None`
/// when it has no row. The same formulas as [`domain_estimate`], from sums by (domain value,
/// PSU) accumulated in one pass: a domain's PSU score totals are
/// t_p = (Σ_p w y − θ̂ Σ_p w)/N̂ (means, proportions), Σ_p w y (totals) or (Σ_p w y − θ̂ Σ_p w x)/X̂
/// (ratios). For a calibrated scheme (`sums`) the PSU totals of the calibration residuals are
/// t_p − F_p'β_D with β_D = S⁻¹ Σ_D m b z, the p-vector Σ_D m b z accumulated in the second
/// pass ([`LinearResidual`]); every PSU and stratum stays in the design, as R's `[` on a
/// calibrated design. `None` for the whole breakdown when the design needs row-level scores
/// (multistage with an FPC), in which case the caller takes the row path. `given`: the sums
/// by (domain value, PSU) formed by the caller (a quantile's F̂ from its sorted rows, for an
/// uncalibrated scheme), instead of from the fine cells or the rows.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn grouped_domain_stats(
    req: &EstimationRequest<'_>,
    kind: IndicatorKind,
    vals: &IndicatorValues,
    scheme: &Scheme,
    b: &Breakdown,
    full_df: f64,
    replicated: Option<(&[f64], &ReplicateDf<'_>)>,
    sums: Option<&CalibratedSums<'_>>,
    fine: Option<(&FineCells, &FineTotals, usize)>,
    keep: Option<&[bool]>,
    given: Option<DomainSums>,
) -> Option<Vec<Option<Result<(DomainStats, usize), String>>>> {
    let design = req.design;
    let cal = if replicated.is_none() && scheme.calibrated {
        Some(sums?)
    } else {
        None
    };
    let dim = cal.map_or(0, |c| c.form.dim());
    let w = &scheme.weights;
    let k = b.labels.len();
    let n_psu = design.n_psu();
    let n_strata = design.n_strata();
    let stratum_of_psu = design.stratum_of_psu();
    let mut sums_of_cells = match (given, fine) {
        (Some(given), _) => given,
        (None, Some((cells, totals, index))) => {
            let terms = |i: usize, f: &mut dyn FnMut(usize, f64)| {
                if let Some(c) = cal {
                    c.form.terms(i, f);
                }
            };
            cells.domain_sums(index, k, n_psu, kind, totals, dim, &terms)
        }
        (None, None) => row_sums(design, kind, vals, w, b, cal),
    };
    let mut rhs = std::mem::take(&mut sums_of_cells.rhs);
    let s = &sums_of_cells;
    let (sw, swy, swx, count, nobs, ss) = (&s.sw, &s.swy, &s.swx, &s.count, &s.nobs, &s.ss);
    let estimate: Vec<f64> = (0..k)
        .map(|d| estimator::point(kind, sw[d], swy[d], swx[d]))
        .collect();
    let mut out = Vec::with_capacity(k);
    let mut totals = vec![0.0; n_psu];
    let mut present = vec![false; n_psu];
    // Every domain's rows in one pass over the rows, formed the first time a replicate df asks
    // for a domain's rows (not one pass per domain).
    let rows_by_domain = std::cell::OnceCell::<Vec<Vec<usize>>>::new();
    for d in 0..k {
        // A breakdown formed only for contrasts needs the scores of the contrasted domains.
        let kept_only = !b.published;
        if count[d] == 0 || (kept_only && !keep.is_some_and(|k| k[d])) {
            out.push(None);
            continue;
        }
        let (variance, df) = match replicated {
            Some((variances, df_of)) => {
                let (cells, psu_of) = sums_of_cells.of_domain(d, n_psu);
                let psus: Vec<u32> = cells
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.nonzero > 0)
                    .map(|(i, _)| psu_of.map_or(i as u32, |ps| ps[i]))
                    .collect();
                let rows = || -> std::borrow::Cow<'_, [usize]> {
                    std::borrow::Cow::Borrowed(
                        &rows_by_domain.get_or_init(|| {
                            let mut by_domain = vec![Vec::new(); k];
                            for (r, of) in b.of_row.iter().enumerate() {
                                if let Some(e) = of
                                    && vals.defined[r]
                                    && w[r] != 0.0
                                {
                                    by_domain[e as usize].push(r);
                                }
                            }
                            by_domain
                        })[d],
                    )
                };
                (variances[d], df_of(&psus, nobs[d], &rows))
            }
            None => {
                let (of_domain, psu_of) = sums_of_cells.of_domain(d, n_psu);
                let scale = estimator::scale(kind, sw[d], swx[d]);
                // A PSU without the domain's rows: its sums are zero.
                if psu_of.is_some() {
                    totals.fill(estimator::residual(kind, estimate[d], 0.0, 0.0, 0.0) / scale);
                    present.fill(false);
                }
                for (i, c) in of_domain.iter().enumerate() {
                    let p = psu_of.map_or(i, |ps| ps[i] as usize);
                    present[p] = c.rows > 0;
                    totals[p] = estimator::residual(kind, estimate[d], c.wy, c.w, c.wx) / scale;
                }
                let psu_present = match cal {
                    None => Some(present.as_slice()),
                    Some(c) => {
                        let beta = &mut rhs[d * dim..(d + 1) * dim];
                        let scale = estimator::scale(kind, sw[d], swx[d]);
                        beta.iter_mut().for_each(|x| *x /= scale);
                        c.solver.solve(beta);
                        if beta.iter().all(|b| b.is_finite()) {
                            for (p, t) in totals.iter_mut().enumerate() {
                                *t -= c.fitted_nonzero.dot(p, beta);
                            }
                        } else {
                            // 0 · ∞ is NaN: the dense product keeps it.
                            for (p, t) in totals.iter_mut().enumerate() {
                                let f = &c.fitted[p * dim..(p + 1) * dim];
                                *t -= f.iter().zip(beta.iter()).map(|(a, b)| a * b).sum::<f64>();
                            }
                        }
                        None
                    }
                };
                if kept_only {
                    let stats = DomainStats {
                        estimate: estimate[d],
                        se: f64::NAN,
                        df: f64::NAN,
                        deff: None,
                        n_weighted: sw[d],
                        beta_nrow: f64::NAN,
                        kept: Some(KeptScore::psu_totals(&totals)),
                    };
                    out.push(Some(Ok((stats, count[d]))));
                    continue;
                }
                // An undefined estimate (a ratio whose denominator is 0 throughout the domain)
                // has no variance either: R gives NaN for the domain; the row is blank and
                // flagged, and the run goes on.
                let variance = if !estimate[d].is_finite() {
                    f64::NAN
                } else {
                    match design.variance_from_psu_totals(&totals, psu_present) {
                        Ok(v) => v,
                        Err(crate::design::VarianceError::Multistage) => return None,
                        Err(e) => {
                            out.push(Some(Err(e.to_string())));
                            continue;
                        }
                    }
                };
                let df = match req.domain_df {
                    DomainDf::Full => full_df,
                    DomainDf::Subset => {
                        let mut strata_seen = vec![false; n_strata];
                        let (mut psus, mut strata) = (0usize, 0usize);
                        for (i, c) in of_domain.iter().enumerate() {
                            if c.nonzero > 0 {
                                psus += 1;
                                let p = psu_of.map_or(i, |ps| ps[i] as usize);
                                let h = stratum_of_psu[p] as usize;
                                if !strata_seen[h] {
                                    strata_seen[h] = true;
                                    strata += 1;
                                }
                            }
                        }
                        psus as f64 - strata as f64
                    }
                };
                (variance, df)
            }
        };
        let deff = estimator::design_effect(kind, variance, ss[d], sw[d], nobs[d]);
        let stats = DomainStats {
            estimate: estimate[d],
            se: variance.sqrt(),
            df,
            deff,
            n_weighted: sw[d],
            // R's nrow(design): a calibrated subset keeps its out-of-domain rows (see
            // domain_estimate).
            beta_nrow: if cal.is_some() {
                b.of_row.len() as f64
            } else {
                count[d] as f64
            },
            kept: (replicated.is_none() && keep.is_some_and(|k| k[d]))
                .then(|| KeptScore::psu_totals(&totals)),
        };
        out.push(Some(Ok((stats, count[d]))));
    }
    Some(out)
}

/// Breakdown `b`'s sums from the rows: one pass for the sums by (domain value, PSU), and a
/// second for Σ w (y − ȳ_d)² (R's deff) and, for a calibrated scheme, Σ_D m b z with the score
/// z = w s taken before its division by N̂ (or X̂).
fn row_sums(
    design: &Design,
    kind: IndicatorKind,
    vals: &IndicatorValues,
    w: &[f64],
    b: &Breakdown,
    cal: Option<&CalibratedSums<'_>>,
) -> DomainSums {
    let dim = cal.map_or(0, |c| c.form.dim());
    let k = b.labels.len();
    let n_psu = design.n_psu();
    let psu_of_row = design.psu_of_row();
    let (mut sw, mut swy, mut swx) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    let (mut count, mut nobs) = (vec![0usize; k], vec![0usize; k]);
    // Sums by (domain value, PSU), one record per cell so that a row touches a single cache
    // line (five parallel arrays cost five misses per row with 40 × 3,003 cells).
    let mut cells = vec![PsuCell::default(); k * n_psu];
    for (r, dom) in b.of_row.iter().enumerate() {
        let Some(d) = dom else { continue };
        if !vals.defined[r] {
            continue;
        }
        let d = d as usize;
        let y = vals.y[r];
        let x = vals.x.as_ref().map_or(0.0, |x| x[r]);
        let cell = d * n_psu + psu_of_row[r] as usize;
        sw[d] += w[r];
        swy[d] += w[r] * y;
        swx[d] += w[r] * x;
        count[d] += 1;
        let c = &mut cells[cell];
        c.w += w[r];
        c.wy += w[r] * y;
        c.wx += w[r] * x;
        c.rows += 1;
        if w[r] != 0.0 {
            nobs[d] += 1;
            c.nonzero += 1;
        }
    }
    let estimate: Vec<f64> = (0..k)
        .map(|d| estimator::point(kind, sw[d], swy[d], swx[d]))
        .collect();
    let mut ss = vec![0.0; k];
    let mut rhs = vec![0.0; k * dim];
    let means: Vec<f64> = (0..k).map(|d| swy[d] / sw[d]).collect();
    if kind != IndicatorKind::Ratio || cal.is_some() {
        for (r, dom) in b.of_row.iter().enumerate() {
            if let Some(d) = dom
                && vals.defined[r]
            {
                let d = d as usize;
                let y = vals.y[r];
                if kind != IndicatorKind::Ratio {
                    let mean = means[d];
                    ss[d] += w[r] * (y - mean) * (y - mean);
                }
                if let Some(c) = cal {
                    let x = vals.x.as_ref().map_or(0.0, |x| x[r]);
                    let s = estimator::residual(kind, estimate[d], y, 1.0, x);
                    let v = c.score_weight[r] * s;
                    if v != 0.0 {
                        let row = &mut rhs[d * dim..(d + 1) * dim];
                        c.form.terms(r, |j, m| row[j] += m * v);
                    }
                }
            }
        }
    }
    DomainSums {
        cells,
        pairs: None,
        sw,
        swy,
        swx,
        count,
        nobs,
        ss,
        rhs,
    }
}

/// Point estimate, linearization scores, variance, df and deff of one domain.
#[allow(clippy::too_many_arguments)]
fn domain_estimate(
    req: &EstimationRequest<'_>,
    kind: IndicatorKind,
    vals: &IndicatorValues,
    scheme: &Scheme,
    mask: &[bool],
    scores: &mut [f64],
    full_df: f64,
    replicated: Option<(f64, f64)>,
    keep_scores: bool,
) -> Result<DomainStats, String> {
    let w = &scheme.weights;
    let y = &vals.y;
    let (mut sw, mut swy, mut swx) = (0.0, 0.0, 0.0);
    let mut nobs = 0usize;
    for r in 0..mask.len() {
        if mask[r] {
            sw += w[r];
            swy += w[r] * y[r];
            if let Some(x) = &vals.x {
                swx += w[r] * x[r];
            }
            if w[r] != 0.0 {
                nobs += 1;
            }
        }
    }
    let estimate = estimator::point(kind, sw, swy, swx);
    let (variance, df) = match replicated {
        Some(given) => given,
        None => {
            for r in 0..mask.len() {
                scores[r] = if !mask[r] {
                    0.0
                } else {
                    let x = vals.x.as_ref().map_or(0.0, |x| x[r]);
                    w[r] * estimator::residual(kind, estimate, y[r], 1.0, x)
                        / estimator::scale(kind, sw, swx)
                };
            }
            // Calibration: the variance is that of the calibration residuals of the scores (R
            // `svyrecvar` with the design's `postStrata`), over every design row.
            if let Some(cal) = &scheme.calibration {
                cal.residualizer.residualize(scores);
            }
            // Calibrated designs keep out-of-domain rows with zero weight (R's `[` on a calibrated
            // design); plain designs drop them, which matters for lonely-PSU handling.
            let present = if scheme.calibrated { None } else { Some(mask) };
            // An undefined estimate has no variance (see grouped_domain_stats).
            let variance = if !estimate.is_finite() {
                f64::NAN
            } else {
                req.design
                    .variance(scores, present)
                    .map_err(|e| e.to_string())?
            };
            let df = match req.domain_df {
                DomainDf::Full => full_df,
                DomainDf::Subset => {
                    let include: Vec<bool> =
                        mask.iter().zip(w).map(|(&m, &wi)| m && wi != 0.0).collect();
                    req.design.degf(&include)
                }
            };
            (variance, df)
        }
    };
    let deff = if kind == IndicatorKind::Ratio || nobs < 2 {
        None
    } else {
        let mean = swy / sw;
        let mut ss = 0.0;
        for r in 0..mask.len() {
            if mask[r] {
                ss += w[r] * (y[r] - mean) * (y[r] - mean);
            }
        }
        estimator::design_effect(kind, variance, ss, sw, nobs)
    };
    let n_unweighted = mask.iter().filter(|&&m| m).count();
    Ok(DomainStats {
        estimate,
        se: variance.sqrt(),
        df,
        deff,
        n_weighted: sw,
        // R's nrow(design) in the Korn–Graubard df factor: a calibrated survey.design2 subset
        // keeps its out-of-domain rows (zero weight); plain subsets and every replicate-weight
        // subset drop them.
        beta_nrow: if scheme.calibrated && replicated.is_none() {
            mask.len() as f64
        } else {
            n_unweighted as f64
        },
        kept: (keep_scores && replicated.is_none()).then(|| KeptScore::rows(scores)),
    })
}

#[cfg(test)]
mod item_missing_tests {
    use super::*;

    fn values(universe: Vec<bool>, missing: Vec<bool>) -> IndicatorValues {
        let n = universe.len();
        let item_missing = missing.contains(&true).then(|| ItemMissing {
            universe: universe.clone(),
            missing: missing.clone(),
        });
        IndicatorValues {
            y: vec![1.0; n].into(),
            x: None,
            defined: universe
                .iter()
                .zip(&missing)
                .map(|(u, m)| *u && !m)
                .collect(),
            item_missing,
        }
    }

    fn two_domains(of_row: Vec<Option<u32>>) -> Breakdown {
        Breakdown {
            var: "sex".into(),
            labels: vec!["1".into(), "2".into()],
            of_row: of_row.into_iter().collect(),
            published: true,
        }
    }

    /// The rows of every indicator × domain value with few rows, against the definition
    /// counted value by value.
    #[test]
    fn small_domain_rows_are_those_of_every_small_indicator_domain() {
        let n = 40;
        let of_row = |m: u32| -> Vec<Option<u32>> {
            (0..n as u32)
                .map(|r| (r % 7 != 3).then_some((r * r) % m))
                .collect()
        };
        let breakdowns = vec![two_domains(of_row(2)), {
            let mut b = two_domains(of_row(5));
            b.labels = (0..5).map(|l| l.to_string()).collect();
            b
        }];
        let values: Vec<IndicatorValues> = [3, 4]
            .into_iter()
            .map(|k| values((0..n).map(|r| r % k != 0).collect(), vec![false; n]))
            .collect();
        let prepared = Prepared {
            values,
            breakdowns,
            fine: None,
            pairs: Vec::new(),
            keep: Vec::new(),
            quantile_orders: Vec::new(),
            tables: Vec::new(),
        };
        for max_rows in [0, 3, 5, 8, 12, 40] {
            let mut expected = Vec::new();
            for vals in &prepared.values {
                for b in &prepared.breakdowns {
                    for d in 0..b.labels.len() as u32 {
                        let rows: Vec<usize> = (0..n)
                            .filter(|&r| vals.defined[r] && b.of_row.at(r) == Some(d))
                            .collect();
                        if rows.len() <= max_rows {
                            expected.extend(rows);
                        }
                    }
                }
            }
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(
                prepared.small_domain_rows(max_rows),
                expected,
                "max {max_rows}"
            );
        }
    }

    #[test]
    fn a_total_without_missing_items_has_share_zero() {
        let vals = values(vec![true; 4], vec![false; 4]);
        let b = two_domains(vec![Some(0), Some(0), Some(1), None]);
        assert_eq!(
            item_missing_shares(&vals, &[1.0, 2.0, 3.0, 4.0], &b),
            [Some(0.0), Some(0.0)]
        );
    }

    #[test]
    fn blanking_rows_of_known_weights_gives_their_weighted_share() {
        let w = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        // Rows 2 and 5 missing; row 4 outside the universe; row 6 in no domain value.
        let vals = values(
            vec![true, true, true, false, true, true],
            vec![false, true, false, false, true, true],
        );
        let b = two_domains(vec![Some(0), Some(0), Some(1), Some(1), Some(1), None]);
        let got = item_missing_shares(&vals, &w, &b);
        let expected = [20.0 / (10.0 + 20.0), 50.0 / (30.0 + 50.0)];
        for (g, e) in got.iter().zip(expected) {
            assert!((g.expect("defined") - e).abs() < 1e-15, "{g:?} vs {e}");
        }
        // Several breakdowns in one pass give each breakdown its own shares, bit for bit.
        let other = two_domains(vec![Some(1), None, Some(0), Some(1), Some(1), Some(0)]);
        let together = item_missing_shares_of(&vals, &w, &[&b, &other]);
        assert_eq!(together[0], got);
        assert_eq!(together[1], item_missing_shares(&vals, &w, &other));
        assert_ne!(together[0], together[1]);
        // The whole population: every missing row over every universe row.
        let total = Breakdown {
            var: TOTAL.into(),
            labels: vec![TOTAL.into()],
            of_row: DomainOfRow::all_in_first(6),
            published: true,
        };
        let got = item_missing_shares(&vals, &w, &total)[0].expect("defined");
        assert!((got - (20.0 + 50.0 + 60.0) / (10.0 + 20.0 + 30.0 + 50.0 + 60.0)).abs() < 1e-15);
    }

    #[test]
    fn a_domain_whose_universe_weighs_nothing_has_no_share() {
        let vals = values(vec![true, true], vec![true, false]);
        let b = two_domains(vec![Some(0), Some(1)]);
        assert_eq!(
            item_missing_shares(&vals, &[0.0, 1.0], &b),
            [None, Some(0.0)]
        );
    }
}
