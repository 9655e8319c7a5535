//! Weighting schemes: from design weights to the final analysis weights of the respondents.
//!
//! Each scheme is a [`Chain`]: design weights → optional weighting-class nonresponse adjustment →
//! optional calibration (`calibration`: post-stratification, raking, GREG, logit, truncated,
//! trimming; margins files in [`margins`]). A chain is a pure function of the base weights, so the
//! replicate stage reruns it on every replicate. Methods and their R counterparts:
//! `docs/weighting.md`.

mod calibration;
mod linalg;
pub mod margins;
mod spec;

// What the rest of the crate sees of calibration: the outcome of a run and its variance
// residuals (the estimate stage takes the Taylor variance on sums through the linear form).
pub use calibration::{Calibrated, LinearResidual, ResidualSolver, Residualizer};
pub use spec::{
    CalibrationConfig, CalibrationMethodName, RakeConvergence, TrimConfig, TrimTarget,
    WeightingSpec,
};

use crate::frame::{CellState, ColumnData, Frame};

/// Final weights of one scheme, with what produced them.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// Scheme name (the `weighting` output column).
    pub name: String,
    /// Weight of each respondent, in the order of the respondent rows passed in.
    pub weights: Vec<f64>,
    /// The same respondents' weights after nonresponse adjustment, before calibration.
    pub adjusted: Vec<f64>,
    /// True when the weights were calibrated to population totals (changes how domains are
    /// subset and how variance is computed; see `docs/methods.md`).
    pub calibrated: bool,
    /// Calibration diagnostics and the variance residualizer, for calibrated schemes.
    pub calibration: Option<CalibrationOutcome>,
    /// The chain, kept so that replicates can be weighted the same way.
    pub chain: Chain,
    /// The final weights' summary, computed the first time a report asks (several do).
    summary: std::sync::OnceLock<WeightSummary>,
}

impl Scheme {
    /// The distribution of the final weights ([`WeightSummary::of`]), computed once.
    pub fn summary(&self) -> &WeightSummary {
        self.summary
            .get_or_init(|| WeightSummary::of(&self.weights))
    }
}

/// What a calibration did.
#[derive(Debug, Clone)]
pub struct CalibrationOutcome {
    /// Method name as configured.
    pub method: String,
    /// Margins file name.
    pub margins: String,
    /// Iterations (Newton steps, raking sweeps; 1 for closed forms).
    pub iterations: usize,
    /// Converged (false only when `force` kept a non-converged fit).
    pub converged: bool,
    /// Largest relative margin error on the final weights.
    pub max_margin_error: f64,
    /// Negative final weights (linear calibration).
    pub negative_weights: usize,
    /// Weights changed by trimming.
    pub trimmed: usize,
    /// Smallest and largest g = w/d.
    pub g_range: (f64, f64),
    /// Non-fatal findings.
    pub warnings: Vec<String>,
    /// Turns linearization scores into calibration residuals (R `svyrecvar`).
    pub residualizer: calibration::Residualizer,
}

/// A weighting chain: base weights → optional weighting-class nonresponse adjustment →
/// optional calibration. A pure function of the base weights (see [`Chain::apply`]), so the
/// replicate stage reruns it on every replicate's base weights.
#[derive(Debug, Clone)]
pub struct Chain {
    name: String,
    nonresponse: Option<NonresponseClasses>,
    calibration: Option<ChainCalibration>,
}

/// The calibration step of a chain.
#[derive(Debug, Clone)]
struct ChainCalibration {
    model: calibration::CalibrationModel,
    spec: calibration::CalibrationSpec,
    /// The model on its calibration cells, built once: the full sample and every replicate
    /// calibrate cell totals instead of rows (`None` where the method needs the rows).
    cells: Option<calibration::CellModel>,
    /// Method name as configured, for reports.
    method_name: String,
    /// Margins file name, for reports.
    margins_file: String,
}

/// Weighting classes of every used row.
#[derive(Debug, Clone)]
struct NonresponseClasses {
    class_of_row: Vec<usize>,
    labels: Vec<String>,
    sampled_count: Vec<usize>,
    /// Eligibility of every used row, when the adjustment treats unknown eligibility and
    /// ineligible cases apart (`eligibility = "adjust"`).
    eligibility: Option<Vec<Eligibility>>,
}

/// Eligibility of a sampled case, from its final disposition (AAPOR Standard Definitions:
/// interviews and eligible nonrespondents, unknown eligibility, not eligible). Respondents are
/// eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// An eligible case: respondent or eligible nonrespondent.
    Eligible,
    /// Eligibility unknown (e.g. never contacted, address not located).
    Unknown,
    /// Not eligible: out of the target population.
    Ineligible,
}

/// Σ d by nonresponse class: over the sampled units, over the respondents and, when the chain
/// adjusts for eligibility, over the units of known eligibility and the eligible units.
#[derive(Debug, Clone, Default)]
pub struct ClassTotals {
    /// Σ d over every sampled unit of the class.
    pub sampled: Vec<f64>,
    /// Σ d over the respondents.
    pub responded: Vec<f64>,
    /// Σ d over the units of known eligibility (eligible or not); empty without the
    /// eligibility adjustment.
    pub known: Vec<f64>,
    /// Σ d over the eligible units (respondents and eligible nonrespondents); empty without
    /// the eligibility adjustment.
    pub eligible: Vec<f64>,
}

impl ClassTotals {
    /// Zero totals for `n_classes` classes, with the eligibility sums when `eligibility`.
    pub fn zeros(n_classes: usize, eligibility: bool) -> ClassTotals {
        let extra = if eligibility { n_classes } else { 0 };
        ClassTotals {
            sampled: vec![0.0; n_classes],
            responded: vec![0.0; n_classes],
            known: vec![0.0; extra],
            eligible: vec![0.0; extra],
        }
    }

    /// Add a sampled unit of `class` with weight `d` (its response is added apart).
    pub fn add_sampled(&mut self, class: usize, d: f64, eligibility: Option<Eligibility>) {
        self.sampled[class] += d;
        match eligibility {
            Some(Eligibility::Eligible) => {
                self.known[class] += d;
                self.eligible[class] += d;
            }
            Some(Eligibility::Ineligible) => self.known[class] += d,
            Some(Eligibility::Unknown) | None => {}
        }
    }
}

/// Result of running a chain once.
#[derive(Debug, Clone)]
pub struct Weighted {
    /// Respondent weights after nonresponse adjustment, before calibration.
    pub adjusted: Vec<f64>,
    /// Final respondent weights.
    pub weights: Vec<f64>,
    /// The calibration result, when the chain calibrates.
    pub calibrated: Option<calibration::Calibrated>,
}

impl Chain {
    /// Prepare a scheme's chain: resolve nonresponse classes and build the calibration model
    /// (margins are read and checked against the respondents here, before any weight is
    /// computed).
    pub fn build(
        frame: &Frame,
        row_numbers: &[u64],
        respondents: &[usize],
        eligibility: Option<&[Eligibility]>,
        spec: &WeightingSpec,
    ) -> Result<Chain, WeightingError> {
        let nonresponse = match &spec.nonresponse_classes {
            None => None,
            Some(classes) => {
                let mut nr = nonresponse_classes(frame, row_numbers, classes, &spec.name)?;
                if spec.adjust_eligibility {
                    let eligibility = eligibility.ok_or_else(|| WeightingError::NoEligibility {
                        scheme: spec.name.clone(),
                    })?;
                    if let Some(&r) = respondents
                        .iter()
                        .find(|&&r| eligibility[r] != Eligibility::Eligible)
                    {
                        return Err(WeightingError::IneligibleRespondent {
                            scheme: spec.name.clone(),
                            row: row_numbers[r],
                        });
                    }
                    nr.eligibility = Some(eligibility.to_vec());
                }
                Some(nr)
            }
        };
        let calibration = match &spec.calibration {
            None => None,
            Some(c) => {
                let err = |e: calibration::CalibrationError| WeightingError::Calibration {
                    scheme: spec.name.clone(),
                    message: e.to_string(),
                };
                let margins = margins::Margins::load(&c.margins).map_err(|e| err(e.into()))?;
                let model = calibration::CalibrationModel::build(frame, respondents, &margins)
                    .map_err(err)?;
                let method = match c.method {
                    CalibrationMethodName::Poststratify => calibration::CalMethod::PostStratify,
                    CalibrationMethodName::Rake => calibration::CalMethod::Rake,
                    CalibrationMethodName::Raking => calibration::CalMethod::Raking,
                    CalibrationMethodName::Linear => calibration::CalMethod::Linear,
                    CalibrationMethodName::Logit => calibration::CalMethod::Logit,
                    CalibrationMethodName::Truncated => calibration::CalMethod::Truncated,
                };
                let mut cal = calibration::CalibrationSpec::new(method);
                cal.bounds = c.bounds;
                cal.maxit = c.max_iter;
                cal.epsilon = c.tolerance;
                cal.force = c.force;
                cal.partial = c.partial;
                cal.rake_test = match c.convergence {
                    RakeConvergence::Margins => calibration::RakeTest::Margins,
                    RakeConvergence::CrossTable => calibration::RakeTest::CrossTable,
                };
                cal.trim = c.trim.map(|t| match t.on {
                    TrimTarget::Weights => calibration::Trim::Weights {
                        lower: t.lower,
                        upper: t.upper,
                        strict: t.strict,
                    },
                    TrimTarget::G => calibration::Trim::G {
                        lower: t.lower,
                        upper: t.upper,
                    },
                });
                let file = c
                    .margins
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let method_name = format!("{:?}", c.method).to_lowercase();
                Some(ChainCalibration {
                    cells: model.collapse(&cal),
                    model,
                    spec: cal,
                    method_name,
                    margins_file: file,
                })
            }
        };
        Ok(Chain {
            name: spec.name.clone(),
            nonresponse,
            calibration,
        })
    }

    /// True when the chain calibrates.
    pub fn calibrates(&self) -> bool {
        self.calibration.is_some()
    }

    /// True when the chain adjusts for nonresponse.
    pub fn adjusts_nonresponse(&self) -> bool {
        self.nonresponse.is_some()
    }

    /// Run the whole chain: `base_weights` for every used row (respondents and unit
    /// nonrespondents) → final respondent weights.
    ///
    /// Nonresponse adjustment (weighting classes c): for a respondent i in class c,
    /// `w_i = d_i · Σ_{j∈s_c} d_j / Σ_{j∈r_c} d_j`, s_c all sampled units of the class, r_c its
    /// respondents (Särndal & Lundström 2005, ch. 8); with the eligibility adjustment, the
    /// factor of [`eligibility_factor`]. A class whose respondents carry no weight is an error
    /// naming it.
    pub fn apply(
        &self,
        base_weights: &[f64],
        respondents: &[usize],
    ) -> Result<Weighted, WeightingError> {
        let adjusted: Vec<f64> = match &self.nonresponse {
            None => respondents.iter().map(|&r| base_weights[r]).collect(),
            Some(nr) => {
                let eligibility = nr.eligibility.as_deref();
                let mut totals = ClassTotals::zeros(nr.labels.len(), eligibility.is_some());
                for (r, &w) in base_weights.iter().enumerate() {
                    totals.add_sampled(nr.class_of_row[r], w, eligibility.map(|e| e[r]));
                }
                for &r in respondents {
                    totals.responded[nr.class_of_row[r]] += base_weights[r];
                }
                let ClassTotals {
                    sampled, responded, ..
                } = &totals;
                if eligibility.is_some() {
                    let factors = nr.factors(&self.name, &totals)?;
                    respondents
                        .iter()
                        .map(|&r| base_weights[r] * factors[nr.class_of_row[r]])
                        .collect()
                } else {
                    nr.check(&self.name, &totals)?;
                    respondents
                        .iter()
                        .map(|&r| {
                            let k = nr.class_of_row[r];
                            if responded[k] > 0.0 {
                                base_weights[r] * sampled[k] / responded[k]
                            } else {
                                0.0
                            }
                        })
                        .collect()
                }
            }
        };
        self.calibrate(adjusted)
    }

    /// The nonresponse adjustment on class sums, for the replicate stage's sums path; `None`
    /// when the chain does not adjust for nonresponse.
    pub fn classes(&self) -> Option<ChainClasses<'_>> {
        self.nonresponse
            .as_ref()
            .map(|nr| ChainClasses { chain: self, nr })
    }

    /// The calibration step on cell totals (`calibration::CalibrationModel::collapse`): the
    /// cells of the respondents and a function from cell totals of the adjusted weights to g per
    /// cell. A chain without calibration has one cell and g = 1. `None` when the calibration
    /// cannot be collapsed (numeric auxiliaries, trimming of the final weights).
    pub fn cells(&self) -> Option<ChainCells<'_>> {
        match &self.calibration {
            None => Some(ChainCells {
                chain: self,
                cells: None,
            }),
            Some(c) => Some(ChainCells {
                chain: self,
                cells: Some((c.cells.as_ref()?, &c.spec)),
            }),
        }
    }

    /// The chain that replicates rerun, given the full sample's calibration iterations: a
    /// `Rake` calibration then does the full sample's sweeps in every replicate, as R's `rake()`
    /// does on a replicate design (`CalibrationSpec::replicate_sweeps`).
    fn for_replicates(mut self, full_sample_iterations: Option<usize>) -> Chain {
        if let (Some(c), Some(sweeps)) = (self.calibration.as_mut(), full_sample_iterations)
            && c.spec.method == calibration::CalMethod::Rake
        {
            c.spec.replicate_sweeps = Some(sweeps);
        }
        self
    }

    /// The calibration step alone, on respondent weights already adjusted for nonresponse: on
    /// the calibration cells where the method allows it (`calibration::calibrate_on_cells`;
    /// the nonresponse factor is constant within a class, so it needs no cells of its own: the
    /// cell totals are sums of the adjusted weights), else on the rows.
    pub fn calibrate(&self, adjusted: Vec<f64>) -> Result<Weighted, WeightingError> {
        match &self.calibration {
            None => Ok(Weighted {
                weights: adjusted.clone(),
                adjusted,
                calibrated: None,
            }),
            Some(ChainCalibration {
                model, spec, cells, ..
            }) => {
                let c = match cells {
                    Some(cells) => calibration::calibrate_on_cells(model, cells, &adjusted, spec),
                    None => calibration::calibrate(model, &adjusted, spec),
                }
                .map_err(|e| WeightingError::Calibration {
                    scheme: self.name.clone(),
                    message: e.to_string(),
                })?;
                Ok(Weighted {
                    weights: c.weights.clone(),
                    adjusted,
                    calibrated: Some(c),
                })
            }
        }
    }
}

/// The nonresponse factor of a class with the eligibility adjustment, from its sums of design
/// weights over the sampled units `s`, those of known eligibility `k` (eligible or not), the
/// eligible ones `e` and the respondents `r`:
///
/// `(s / k) · (e / r)`
///
/// Three steps in one (Valliant, Dever & Kreuter 2018, *Practical Tools for Designing and
/// Weighting Survey Samples*, §13.5; R `svrep::redistribute_weights` run twice): the weight of
/// the cases of unknown eligibility goes to the cases of known eligibility in proportion to
/// their weights (factor s/k), the ineligible cases leave with their share (weight 0), and the
/// eligible nonrespondents' weight goes to the respondents (factor e·(s/k) / r·(s/k) = e/r).
/// The respondents' total, (s/k)·e, is the estimated number of eligible units. 0 for a class
/// without respondent weight (where [`NonresponseClasses::check`] allows it).
pub fn eligibility_factor(s: f64, k: f64, e: f64, r: f64) -> f64 {
    if r > 0.0 && k > 0.0 {
        (s / k) * (e / r)
    } else {
        0.0
    }
}

impl NonresponseClasses {
    /// A class whose sampled units carry weight and whose respondents carry none is the
    /// chain's `EmptyClass` error (the first such class in label order). With the eligibility
    /// adjustment, only eligible weight needs respondents, and a class whose every case is of
    /// unknown eligibility is an error (nothing to estimate its eligible share from).
    fn check(&self, scheme: &str, totals: &ClassTotals) -> Result<(), WeightingError> {
        let adjusts_eligibility = self.eligibility.is_some();
        for (k, label) in self.labels.iter().enumerate() {
            // NaN respondent weight counts as none.
            let respondents_weigh = totals.responded[k] > 0.0;
            let needs_respondents = if adjusts_eligibility {
                if totals.sampled[k] > 0.0 && !(totals.known[k] > 0.0) {
                    return Err(WeightingError::UnknownEligibilityOnly {
                        scheme: scheme.to_string(),
                        class: label.clone(),
                        sampled: self.sampled_count[k],
                    });
                }
                totals.eligible[k] > 0.0
            } else {
                totals.sampled[k] > 0.0
            };
            if !respondents_weigh && needs_respondents {
                return Err(WeightingError::EmptyClass {
                    scheme: scheme.to_string(),
                    class: label.clone(),
                    sampled: self.sampled_count[k],
                });
            }
        }
        Ok(())
    }

    /// The factor of every class: Σ_s d / Σ_r d, or [`eligibility_factor`] with the
    /// eligibility adjustment; 0 for a class without respondent weight.
    fn factors(&self, scheme: &str, totals: &ClassTotals) -> Result<Vec<f64>, WeightingError> {
        self.check(scheme, totals)?;
        let ClassTotals {
            sampled,
            responded,
            known,
            eligible,
        } = totals;
        Ok(if self.eligibility.is_some() {
            (0..self.labels.len())
                .map(|c| eligibility_factor(sampled[c], known[c], eligible[c], responded[c]))
                .collect()
        } else {
            sampled
                .iter()
                .zip(responded)
                .map(|(&s, &r)| if r > 0.0 { s / r } else { 0.0 })
                .collect()
        })
    }
}

/// A chain's weighting-class nonresponse adjustment seen through its class sums
/// ([`Chain::classes`]): what [`Chain::apply`] computes from rows, from Σ d over the sampled
/// units and over the respondents of each class.
#[derive(Debug, Clone, Copy)]
pub struct ChainClasses<'a> {
    chain: &'a Chain,
    nr: &'a NonresponseClasses,
}

impl ChainClasses<'_> {
    /// Number of weighting classes.
    pub fn n_classes(&self) -> usize {
        self.nr.labels.len()
    }

    /// Class of every used frame row (respondents and unit nonrespondents).
    pub fn class_of_row(&self) -> &[usize] {
        &self.nr.class_of_row
    }

    /// Eligibility of every used frame row, when the chain adjusts for it.
    pub fn eligibility_of_row(&self) -> Option<&[Eligibility]> {
        self.nr.eligibility.as_deref()
    }

    /// The nonresponse factor of every class from its sums ([`ClassTotals`]; the eligibility
    /// sums filled when [`ChainClasses::eligibility_of_row`] is some): Σ_{j∈s_c} d_j /
    /// Σ_{j∈r_c} d_j, or [`eligibility_factor`]; 0 for a class without weight at all. The
    /// error is the one [`Chain::apply`] gives on the rows with the same sums.
    pub fn factors(&self, totals: &ClassTotals) -> Result<Vec<f64>, WeightingError> {
        self.nr.factors(&self.chain.name, totals)
    }
}

/// A chain's calibration on cells ([`Chain::cells`]).
#[derive(Debug, Clone)]
pub struct ChainCells<'a> {
    chain: &'a Chain,
    cells: Option<(&'a calibration::CellModel, &'a calibration::CalibrationSpec)>,
}

impl ChainCells<'_> {
    /// Number of cells (1 without calibration).
    pub fn n_cells(&self) -> usize {
        self.cells.as_ref().map_or(1, |(c, _)| c.n_cells())
    }

    /// Cell of respondent `i` (design-row order).
    pub fn cell_of(&self, i: usize) -> u32 {
        self.cells.as_ref().map_or(0, |(c, _)| c.cell_of_row()[i])
    }

    /// g per cell from the cell totals of the adjusted weights; the final weight of respondent
    /// i is `adjusted_i · g[cell_of(i)]`. The error is the chain's message for the cells;
    /// [`Chain::calibrate`] on the rows gives the row-level one.
    pub fn calibrate(&self, cell_totals: &[f64]) -> Result<Vec<f64>, WeightingError> {
        match &self.cells {
            None => Ok(vec![1.0; cell_totals.len()]),
            Some((cells, spec)) => {
                cells
                    .calibrate(cell_totals, spec)
                    .map_err(|e| WeightingError::Calibration {
                        scheme: self.chain.name.clone(),
                        message: e.to_string(),
                    })
            }
        }
    }
}

/// Compute every scheme (in parallel across schemes; the result keeps config order).
///
/// * `frame`: all used rows (respondents and unit nonrespondents);
/// * `row_numbers`: the data row number of each frame row (for messages);
/// * `base_weights`: design weight of each frame row;
/// * `respondents`: frame row indices of the respondents (the output weights follow this order);
/// * `eligibility`: eligibility of each frame row, from the final dispositions, for schemes
///   that adjust for it.
pub fn compute(
    frame: &Frame,
    row_numbers: &[u64],
    base_weights: &[f64],
    respondents: &[usize],
    eligibility: Option<&[Eligibility]>,
    specs: &[WeightingSpec],
) -> Result<Vec<Scheme>, WeightingError> {
    use rayon::prelude::*;
    specs
        .par_iter()
        .map(|spec| {
            let chain = Chain::build(frame, row_numbers, respondents, eligibility, spec)?;
            let Weighted {
                weights,
                adjusted,
                calibrated,
            } = chain.apply(base_weights, respondents)?;
            let calibration = match (calibrated, &chain.calibration) {
                (
                    Some(c),
                    Some(ChainCalibration {
                        method_name: method,
                        margins_file: file,
                        ..
                    }),
                ) => {
                    let g_min = c.g.iter().copied().fold(f64::INFINITY, f64::min);
                    let g_max = c.g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    Some(CalibrationOutcome {
                        method: method.clone(),
                        margins: file.clone(),
                        iterations: c.iterations,
                        converged: c.converged,
                        max_margin_error: c.max_margin_error,
                        negative_weights: c.negative_weights,
                        trimmed: c.trimmed,
                        g_range: (g_min, g_max),
                        warnings: c.warnings,
                        residualizer: c.residualizer,
                    })
                }
                _ => None,
            };
            let iterations = calibration.as_ref().map(|c| c.iterations);
            Ok(Scheme {
                name: spec.name.clone(),
                weights,
                adjusted,
                calibrated: calibration.is_some(),
                calibration,
                chain: chain.for_replicates(iterations),
                summary: std::sync::OnceLock::new(),
            })
        })
        .collect()
}

fn nonresponse_classes(
    frame: &Frame,
    row_numbers: &[u64],
    classes: &[String],
    scheme: &str,
) -> Result<NonresponseClasses, WeightingError> {
    let n = frame.n_rows();
    let mut columns = Vec::new();
    for c in classes {
        columns.push(
            frame
                .column(c)
                .ok_or_else(|| WeightingError::MissingClassColumn {
                    scheme: scheme.to_string(),
                    column: c.clone(),
                })?,
        );
    }
    // Classes from the columns' stored values (text codes, number bits), one flat key table,
    // so that no text is made per row; each class is labelled once from its first row, and
    // classes are numbered in the order of their labels, as before.
    let m = columns.len();
    let mut keys: Vec<u64> = Vec::with_capacity(n * m);
    for r in 0..n {
        for col in &columns {
            if col.state[r] != CellState::Value {
                return Err(WeightingError::MissingClassValue {
                    scheme: scheme.to_string(),
                    row: row_numbers[r],
                    column: col.name.clone(),
                });
            }
            keys.push(match &col.data {
                ColumnData::Text { codes, .. } => u64::from(codes[r]),
                // 0 and -0 are one class, as their labels are one.
                ColumnData::Num(v) => (v[r] + 0.0).to_bits(),
            });
        }
    }
    let key = |r: usize| &keys[r * m..(r + 1) * m];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for group in order.chunk_by(|&a, &b| key(a) == key(b)) {
        let first = group[0];
        let label = columns
            .iter()
            .map(|col| format!("{}={}", col.name, col.display(first).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
        groups.push((label, group.to_vec()));
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut class_of_row = vec![0usize; n];
    let mut labels = Vec::with_capacity(groups.len());
    for (k, (label, rows)) in groups.into_iter().enumerate() {
        for r in rows {
            class_of_row[r] = k;
        }
        labels.push(label);
    }
    let mut sampled_count = vec![0usize; labels.len()];
    for &k in &class_of_row {
        sampled_count[k] += 1;
    }
    Ok(NonresponseClasses {
        class_of_row,
        labels,
        sampled_count,
        eligibility: None,
    })
}

/// Errors computing weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightingError {
    /// A class column is absent from the data.
    #[error("weighting \"{scheme}\": nonresponse class column {column} is not in the data")]
    MissingClassColumn {
        /// Scheme.
        scheme: String,
        /// Column.
        column: String,
    },
    /// A class value is blank or missing for a row.
    #[error("weighting \"{scheme}\": row {row} has no value for nonresponse class column {column}")]
    MissingClassValue {
        /// Scheme.
        scheme: String,
        /// Data row number (1-based).
        row: u64,
        /// Column.
        column: String,
    },
    /// Calibration failed (margins unreadable, inconsistent with the sample, or no fit).
    #[error("weighting \"{scheme}\": {message}")]
    Calibration {
        /// Scheme.
        scheme: String,
        /// The calibration error, naming the margin, category or file.
        message: String,
    },
    /// The eligibility adjustment was asked for without the cases' eligibility.
    #[error(
        "weighting \"{scheme}\": eligibility = \"adjust\" needs the final disposition of every sampled case; set [data] disposition and [dispositions]"
    )]
    NoEligibility {
        /// Scheme.
        scheme: String,
    },
    /// A respondent's disposition says it is not an eligible case.
    #[error(
        "weighting \"{scheme}\": row {row} is a respondent whose disposition is not an eligible case; correct its disposition or its response flag"
    )]
    IneligibleRespondent {
        /// Scheme.
        scheme: String,
        /// Data row number (1-based).
        row: u64,
    },
    /// A class has only cases of unknown eligibility: no eligible share to spread them by.
    #[error(
        "weighting \"{scheme}\": nonresponse class {class} has {sampled} sampled units, all of unknown eligibility, so their eligible share cannot be estimated; merge it with a neighbouring class"
    )]
    UnknownEligibilityOnly {
        /// Scheme.
        scheme: String,
        /// Class key.
        class: String,
        /// Sampled units in the class.
        sampled: usize,
    },
    /// A class has sampled units but no respondent to carry their weight.
    #[error(
        "weighting \"{scheme}\": nonresponse class {class} has {sampled} sampled units and no respondent; merge it with a neighbouring class"
    )]
    EmptyClass {
        /// Scheme.
        scheme: String,
        /// Class key, e.g. `stratum=R01-U`.
        class: String,
        /// Sampled units in the class.
        sampled: usize,
    },
}

/// Distribution of one scheme's final weights, for the comparison of schemes.
///
/// Kish's design effect due to unequal weighting is `1 + CV² = n Σw² / (Σw)²` (Kish 1965,
/// §11.7) and the effective sample size `n / (1 + CV²) = (Σw)² / Σw²`. Quartiles use R's default
/// `quantile(type = 7)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WeightSummary {
    /// Respondents weighted.
    pub n: usize,
    /// Sum of the weights (estimated population size).
    pub sum: f64,
    /// Smallest weight.
    pub min: f64,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Largest weight.
    pub max: f64,
    /// max / min.
    pub ratio_max_min: f64,
    /// Kish's 1 + CV².
    pub kish_deff: f64,
    /// (Σw)² / Σw².
    pub effective_n: f64,
    /// Weights ≤ 0.
    pub nonpositive: usize,
}

impl WeightSummary {
    /// Summarise a weight vector (non-empty).
    ///
    /// Quartiles are R's `quantile(type = 7)`: x_(lo) + (h − lo)(x_(hi) − x_(lo)) with
    /// h = (n − 1) p, from the order statistics alone (selected, not a full sort).
    pub fn of(weights: &[f64]) -> WeightSummary {
        let n = weights.len();
        let positions = |p: f64| -> (usize, usize, f64) {
            let h = n.saturating_sub(1) as f64 * p;
            (h.floor() as usize, h.ceil() as usize, h - h.floor())
        };
        let quartiles = [positions(0.25), positions(0.5), positions(0.75)];
        let mut wanted: Vec<usize> = quartiles.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
        wanted.extend([0, n.saturating_sub(1)]);
        let order = order_statistics(weights, &mut wanted);
        let stat = |k: usize| {
            order
                .iter()
                .find(|(i, _)| *i == k)
                .map_or(f64::NAN, |p| p.1)
        };
        let quantile = |(lo, hi, frac): (usize, usize, f64)| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            stat(lo) + frac * (stat(hi) - stat(lo))
        };
        let sum: f64 = weights.iter().sum();
        let sum_sq: f64 = weights.iter().map(|w| w * w).sum();
        let min = stat(0);
        let max = stat(n.saturating_sub(1));
        WeightSummary {
            n,
            sum,
            min,
            q1: quantile(quartiles[0]),
            median: quantile(quartiles[1]),
            q3: quantile(quartiles[2]),
            max,
            ratio_max_min: max / min,
            kish_deff: n as f64 * sum_sq / (sum * sum),
            effective_n: sum * sum / sum_sq,
            nonpositive: weights.iter().filter(|&&w| w <= 0.0).count(),
        }
    }
}

/// The order statistics x_(k) (0-based, in `f64::total_cmp` order) at the positions `wanted`
/// (sorted and deduplicated in place), as (k, x_(k)); empty for empty data. Each is selected
/// in the part of the data right of the previous one, which is what sorting would give.
fn order_statistics(data: &[f64], wanted: &mut Vec<usize>) -> Vec<(usize, f64)> {
    wanted.sort_unstable();
    wanted.dedup();
    let mut v = data.to_vec();
    let mut out = Vec::with_capacity(wanted.len());
    let mut from = 0usize;
    for &k in wanted.iter() {
        if k >= v.len() || k < from {
            continue;
        }
        let (_, x, _) = v[from..].select_nth_unstable_by(k - from, f64::total_cmp);
        out.push((k, *x));
        from = k + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes with respondents (R), eligible nonrespondents (N), cases of unknown
    /// eligibility (U) and ineligible cases (X).
    fn disposition_fixture() -> (Frame, Vec<f64>, Vec<usize>, Vec<Eligibility>) {
        use Eligibility::{Eligible, Ineligible, Unknown};
        let class = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        let d = vec![
            10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 5.0, 15.0, 25.0, 35.0, 45.0, 55.0,
        ];
        //            R     R     N     U     X     R    R    N     U     U     X     R
        let eligibility = vec![
            Eligible, Eligible, Eligible, Unknown, Ineligible, Eligible, Eligible, Eligible,
            Unknown, Unknown, Ineligible, Eligible,
        ];
        let respondents = vec![0, 1, 5, 6, 11];
        let mut frame = Frame::new(class.len());
        frame
            .push(crate::frame::Column {
                name: "class".into(),
                data: ColumnData::Num(class.to_vec().into()),
                state: vec![CellState::Value; class.len()].into(),
            })
            .expect("class column");
        (frame, d, respondents, eligibility)
    }

    fn eligibility_spec() -> WeightingSpec {
        WeightingSpec {
            name: "nr".into(),
            nonresponse_classes: Some(vec!["class".into()]),
            adjust_eligibility: true,
            calibration: None,
        }
    }

    /// The closed form equals the three steps done one after the other on the rows, and the
    /// class factors by hand: class 1 has s = 210, known k = 170 (all but the U case), eligible
    /// e = 120 and respondents r = 90, so (210/170)(120/90); class 2 has s = 180, k = 120,
    /// e = 75, r = 60.
    #[test]
    fn eligibility_adjustment_is_the_three_steps() {
        let (frame, d, respondents, eligibility) = disposition_fixture();
        let rows: Vec<u64> = (1..=12).collect();
        let chain = Chain::build(
            &frame,
            &rows,
            &respondents,
            Some(&eligibility),
            &eligibility_spec(),
        )
        .expect("chain");
        let w = chain.apply(&d, &respondents).expect("weights").weights;

        // Step by step: unknown eligibility → known cases of the class, in proportion to d.
        let class_of = |r: usize| usize::from(r >= 6);
        let mut step = d.clone();
        for c in 0..2 {
            let in_class = |r: &usize| class_of(*r) == c;
            let all: f64 = (0..12).filter(in_class).map(|r| d[r]).sum();
            let known: f64 = (0..12)
                .filter(in_class)
                .filter(|&r| eligibility[r] != Eligibility::Unknown)
                .map(|r| d[r])
                .sum();
            for r in (0..12).filter(in_class) {
                step[r] = if eligibility[r] == Eligibility::Unknown {
                    0.0
                } else {
                    d[r] * all / known
                };
            }
        }
        // Ineligible cases leave; eligible nonrespondents → respondents of the class.
        let eligible_total: Vec<f64> = (0..2)
            .map(|c| {
                (0..12)
                    .filter(|&r| class_of(r) == c && eligibility[r] == Eligibility::Eligible)
                    .map(|r| step[r])
                    .sum()
            })
            .collect();
        let respondent_total: Vec<f64> = (0..2)
            .map(|c| {
                respondents
                    .iter()
                    .filter(|&&r| class_of(r) == c)
                    .map(|&r| step[r])
                    .sum()
            })
            .collect();
        for (i, &r) in respondents.iter().enumerate() {
            let c = class_of(r);
            let by_steps = step[r] * eligible_total[c] / respondent_total[c];
            assert!(
                (w[i] - by_steps).abs() <= 1e-12 * by_steps,
                "row {r}: {} vs {by_steps}",
                w[i]
            );
        }
        let by_hand = [
            10.0 * (210.0 / 170.0) * (120.0 / 90.0),
            20.0 * (210.0 / 170.0) * (120.0 / 90.0),
            60.0 * (210.0 / 170.0) * (120.0 / 90.0),
            5.0 * (180.0 / 120.0) * (75.0 / 60.0),
            55.0 * (180.0 / 120.0) * (75.0 / 60.0),
        ];
        for (i, (&got, &want)) in w.iter().zip(&by_hand).enumerate() {
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "respondent {i}: {got} vs {want}"
            );
        }
        // The respondents carry the estimated number of eligible units: the eligible cases'
        // weight after the unknown cases' weight is spread.
        let total: f64 = w.iter().sum();
        let eligible: f64 = eligible_total.iter().sum();
        assert!(
            (total - eligible).abs() <= 1e-12 * eligible,
            "{total} vs {eligible}"
        );
        // With the ineligible cases' share, the sampled total is kept.
        let ineligible: f64 = (0..12)
            .filter(|&r| eligibility[r] == Eligibility::Ineligible)
            .map(|r| step[r])
            .sum();
        let sampled: f64 = d.iter().sum();
        assert!((total + ineligible - sampled).abs() <= 1e-12 * sampled);
    }

    /// Without the adjustment, ineligible and unknown cases count as nonrespondents and the
    /// respondents carry the whole sampled weight, more than the eligible population.
    #[test]
    fn treating_ineligible_cases_as_nonrespondents_inflates_the_weights() {
        let (frame, d, respondents, eligibility) = disposition_fixture();
        let rows: Vec<u64> = (1..=12).collect();
        let mut spec = eligibility_spec();
        let adjusted = Chain::build(&frame, &rows, &respondents, Some(&eligibility), &spec)
            .and_then(|c| c.apply(&d, &respondents))
            .expect("adjusted");
        spec.adjust_eligibility = false;
        let naive = Chain::build(&frame, &rows, &respondents, Some(&eligibility), &spec)
            .and_then(|c| c.apply(&d, &respondents))
            .expect("naive");
        let sum = |w: &[f64]| w.iter().sum::<f64>();
        assert_eq!(sum(&naive.weights), d.iter().sum::<f64>());
        let eligible = 210.0 / 170.0 * 120.0 + 180.0 / 120.0 * 75.0;
        assert!((sum(&adjusted.weights) - eligible).abs() < 1e-9);
        assert!(sum(&naive.weights) > 1.3 * eligible);
    }

    #[test]
    fn eligibility_errors_name_the_class_or_row() {
        use Eligibility::{Eligible, Ineligible, Unknown};
        let (frame, d, respondents, mut eligibility) = disposition_fixture();
        let rows: Vec<u64> = (1..=12).collect();
        let spec = eligibility_spec();
        let build = |e: Option<&[Eligibility]>| Chain::build(&frame, &rows, &respondents, e, &spec);
        assert!(matches!(
            build(None),
            Err(WeightingError::NoEligibility { .. })
        ));
        eligibility[5] = Ineligible;
        match build(Some(&eligibility)) {
            Err(e @ WeightingError::IneligibleRespondent { row: 6, .. }) => {
                assert!(e.to_string().contains("row 6"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        eligibility[5] = Eligible;
        // Class 2 with every case of unknown eligibility.
        let mut unknown = eligibility.clone();
        unknown[6..].iter_mut().for_each(|e| *e = Unknown);
        let respondents_1: Vec<usize> = vec![0, 1, 5];
        let chain =
            Chain::build(&frame, &rows, &respondents_1, Some(&unknown), &spec).expect("chain");
        match chain.apply(&d, &respondents_1) {
            Err(e @ WeightingError::UnknownEligibilityOnly { .. }) => {
                assert!(e.to_string().contains("class=2"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // Class 2 with ineligible and unknown cases only needs no respondent.
        let mut no_eligible = eligibility.clone();
        for (r, e) in no_eligible.iter_mut().enumerate().skip(6) {
            *e = if r % 2 == 0 { Ineligible } else { Unknown };
        }
        let chain =
            Chain::build(&frame, &rows, &respondents_1, Some(&no_eligible), &spec).expect("chain");
        let w = chain.apply(&d, &respondents_1).expect("weights").weights;
        assert_eq!(w.len(), 3);
        // Class 2 with an eligible nonrespondent and no respondent is the empty-class error.
        no_eligible[7] = Eligible;
        let chain =
            Chain::build(&frame, &rows, &respondents_1, Some(&no_eligible), &spec).expect("chain");
        assert!(matches!(
            chain.apply(&d, &respondents_1),
            Err(WeightingError::EmptyClass { .. })
        ));
    }

    #[test]
    fn order_statistics_are_those_of_the_sorted_data() {
        let data = [5.0, -1.0, 3.5, 3.5, 10.0, 0.0, 2.0, 7.0, 3.5];
        let mut sorted = data.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut wanted = vec![8, 0, 4, 4, 1, 5];
        let got = order_statistics(&data, &mut wanted);
        assert_eq!(wanted, vec![0, 1, 4, 5, 8]);
        for (k, x) in got {
            assert_eq!(x, sorted[k], "x_({k})");
        }
        assert!(order_statistics(&[], &mut vec![0]).is_empty());
    }

    #[test]
    fn weight_summary_by_hand() {
        let s = WeightSummary::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            (s.min, s.q1, s.median, s.q3, s.max),
            (1.0, 1.75, 2.5, 3.25, 4.0)
        );
        assert_eq!(s.sum, 10.0);
        // n Σw² / (Σw)² = 4 · 30 / 100
        assert!((s.kish_deff - 1.2).abs() < 1e-15);
        assert!((s.effective_n - 100.0 / 30.0).abs() < 1e-12);
        assert_eq!(s.ratio_max_min, 4.0);
        let equal = WeightSummary::of(&[5.0; 7]);
        assert!((equal.kish_deff - 1.0).abs() < 1e-15 && (equal.effective_n - 7.0).abs() < 1e-12);
    }
}
