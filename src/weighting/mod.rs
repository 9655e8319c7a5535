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
        spec: &WeightingSpec,
    ) -> Result<Chain, WeightingError> {
        let nonresponse = match &spec.nonresponse_classes {
            None => None,
            Some(classes) => Some(nonresponse_classes(
                frame,
                row_numbers,
                classes,
                &spec.name,
            )?),
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
    /// respondents (Särndal & Lundström 2005, ch. 8). A class whose respondents carry no weight
    /// is an error naming it.
    pub fn apply(
        &self,
        base_weights: &[f64],
        respondents: &[usize],
    ) -> Result<Weighted, WeightingError> {
        let adjusted: Vec<f64> = match &self.nonresponse {
            None => respondents.iter().map(|&r| base_weights[r]).collect(),
            Some(nr) => {
                let n_classes = nr.labels.len();
                let mut sampled = vec![0.0; n_classes];
                let mut responded = vec![0.0; n_classes];
                for (r, &w) in base_weights.iter().enumerate() {
                    sampled[nr.class_of_row[r]] += w;
                }
                for &r in respondents {
                    responded[nr.class_of_row[r]] += base_weights[r];
                }
                nr.check(&self.name, &sampled, &responded)?;
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

impl NonresponseClasses {
    /// A class whose sampled units carry weight and whose respondents carry none is the
    /// chain's `EmptyClass` error (the first such class in label order).
    fn check(
        &self,
        scheme: &str,
        sampled: &[f64],
        responded: &[f64],
    ) -> Result<(), WeightingError> {
        for (k, label) in self.labels.iter().enumerate() {
            // NaN respondent weight counts as none.
            let respondents_weigh = responded[k] > 0.0;
            if !respondents_weigh && sampled[k] > 0.0 {
                return Err(WeightingError::EmptyClass {
                    scheme: scheme.to_string(),
                    class: label.clone(),
                    sampled: self.sampled_count[k],
                });
            }
        }
        Ok(())
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

    /// The nonresponse factor Σ_{j∈s_c} d_j / Σ_{j∈r_c} d_j of every class from those two sums
    /// (0 for a class without weight at all), or the error [`Chain::apply`] gives on the rows
    /// with the same sums.
    pub fn factors(&self, sampled: &[f64], responded: &[f64]) -> Result<Vec<f64>, WeightingError> {
        self.nr.check(&self.chain.name, sampled, responded)?;
        Ok(sampled
            .iter()
            .zip(responded)
            .map(|(&s, &r)| if r > 0.0 { s / r } else { 0.0 })
            .collect())
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
/// * `respondents`: frame row indices of the respondents (the output weights follow this order).
pub fn compute(
    frame: &Frame,
    row_numbers: &[u64],
    base_weights: &[f64],
    respondents: &[usize],
    specs: &[WeightingSpec],
) -> Result<Vec<Scheme>, WeightingError> {
    use rayon::prelude::*;
    specs
        .par_iter()
        .map(|spec| {
            let chain = Chain::build(frame, row_numbers, respondents, spec)?;
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
