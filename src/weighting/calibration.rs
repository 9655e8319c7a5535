//! Calibration of respondent weights to population totals: post-stratification, raking and
//! generalised regression (GREG) calibration, with the variance residuals R's `survey` uses.
//!
//! A [`CalibrationModel`] is built once per scheme from the data and the [`Margins`]: every
//! check that does not depend on the weights (unknown or empty categories, blanks, redundant
//! margins) is made there. [`calibrate`] is then a pure function from base weights d to final
//! weights w = g·d, so the replicate stage can call it once per replicate with the same model.
//! Its [`Residualizer`] turns linearisation scores into the calibration residuals whose design
//! variance is R's `svyrecvar` variance of the calibrated estimator.
//!
//! Methods and their R counterparts (Deville & Särndal 1992; Särndal, Swensson & Wretman 1992
//! §6.5–6.7; Lumley 2010 ch. 7), detailed in `docs/weighting.md`:
//!
//! | [`CalMethod`] | R call |
//! |---|---|
//! | `PostStratify` | `postStratify(design, ~a+b, table, partial)` |
//! | `Rake` | `rake(design, list(~a, ~b), list(ta, tb), control = list(maxit = 10, epsilon = 1))` |
//! | `Raking` | `calibrate(design, ~a+b, pop, calfun = "raking")` |
//! | `Linear` | `calibrate(design, ~a+b, pop, calfun = "linear")` (closed form, `regcalibrate`) |
//! | `Truncated` | `calibrate(design, ~a+b, pop, calfun = "linear", bounds = c(L, U))` |
//! | `Logit` | `calibrate(design, ~a+b, pop, calfun = "logit", bounds = c(L, U))` |

use std::collections::HashMap;
use std::sync::Arc;

use super::linalg::{SymFactor, pinv_solve};
use super::margins::{Margins, MarginsError, normalise};
use crate::frame::{CellState, ColumnData, Frame};

/// Errors reading margins, building a calibration model or calibrating.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// The margins file could not be read, or its totals are unusable.
    #[error(transparent)]
    Margins(#[from] MarginsError),
    /// A calibration variable is not a column of the data.
    #[error("calibration variable {variable} (in {path}) is not in the data")]
    MissingVariable {
        /// Margins file.
        path: String,
        /// Variable.
        variable: String,
    },
    /// A calibration variable is blank or missing in a design row.
    #[error(
        "calibration variable {variable} has no value in frame row {row} (a respondent): calibration variables must be complete; impute or recode the blanks first"
    )]
    MissingValue {
        /// Variable.
        variable: String,
        /// Frame row (0-based).
        row: usize,
    },
    /// A numeric auxiliary variable holds text or a non-finite number.
    #[error(
        "calibration variable {variable} has a numeric total, but frame row {row} holds \"{value}\", not a finite number"
    )]
    NotNumeric {
        /// Variable.
        variable: String,
        /// Frame row (0-based).
        row: usize,
        /// The value.
        value: String,
    },
    /// A value in the data has no population total.
    #[error(
        "{variable} = {value} occurs in {rows} respondent rows but has no population total in {path} (categories there: {known})"
    )]
    UnknownCategory {
        /// Margins file.
        path: String,
        /// Variable (or `a:b` for a joint table).
        variable: String,
        /// The data value (or cell).
        value: String,
        /// Respondent rows with that value.
        rows: usize,
        /// The categories the file has.
        known: String,
    },
    /// A population category has no respondent (or zero total base weight).
    #[error(
        "{path} line {line}: category {category} of {variable} has no respondent{detail}; merge it with a neighbouring category"
    )]
    EmptyCategory {
        /// Margins file.
        path: String,
        /// Line of the category.
        line: u64,
        /// Variable (or `a:b` for post-strata).
        variable: String,
        /// Category (or cell `a=1,b=2`).
        category: String,
        /// Extra detail (e.g. " with positive weight").
        detail: String,
    },
    /// The calibration columns are linearly dependent.
    #[error(
        "calibration column {column} is a linear combination of the columns before it (or has no weight){detail}: the margins are redundant; drop a variable or merge categories"
    )]
    RankDeficient {
        /// Model column (R's model-matrix name, e.g. `region R13`).
        column: String,
        /// Extra detail.
        detail: String,
    },
    /// GREG-type calibration needs the population size.
    #[error(
        "{path}: no population size: add a row `_N,,<N>` (or a factor margin, whose total is N)"
    )]
    NoPopulationSize {
        /// Margins file.
        path: String,
    },
    /// Calibration settings that do not fit together.
    #[error("calibration settings: {0}")]
    Spec(String),
    /// Bounds that no weights can satisfy.
    #[error(
        "bounds [{lower}, {upper}] on g = w/d cannot reach the total of {column}: the base weights sum to {sample} there and the population total is {population}, which needs an average g of {needed}"
    )]
    InfeasibleBounds {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
        /// Model column or category.
        column: String,
        /// Σ d over the category.
        sample: f64,
        /// Population total.
        population: f64,
        /// population / sample.
        needed: f64,
    },
    /// Base weights unusable.
    #[error("base weights: {0}")]
    Weights(String),
    /// The iterations did not meet the totals.
    #[error(
        "{method} did not converge in {iterations} iterations: the total of {column} is off by {misfit} ({relative:.3e} relative; tolerance {epsilon}); widen the bounds, merge sparse categories, or set force = true to accept"
    )]
    NotConverged {
        /// Method name.
        method: String,
        /// Iterations run.
        iterations: usize,
        /// Worst-fitting column / category.
        column: String,
        /// Absolute misfit.
        misfit: f64,
        /// Relative misfit.
        relative: f64,
        /// Tolerance.
        epsilon: f64,
    },
    /// Weight trimming could not be carried out.
    #[error("weight trimming to [{lower}, {upper}]: {message}")]
    Trim {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
        /// What failed.
        message: String,
    },
}

/// Calibration method (see the module table for the R calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalMethod {
    /// Post-stratification on a joint table (or a single factor margin).
    PostStratify,
    /// Iterative proportional fitting: repeated post-stratification on each margin, R `rake()`.
    Rake,
    /// Raking ratio calibration, distance G(g) = g log g − g + 1, Newton iterations (`grake`).
    Raking,
    /// Linear (chi-square distance) GREG calibration without bounds, closed form.
    Linear,
    /// Linear calibration with bounds L ≤ g ≤ U (truncated linear distance), `grake` iterations.
    Truncated,
    /// Deville–Särndal logit distance with bounds L < g < U.
    Logit,
}

impl CalMethod {
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            CalMethod::PostStratify => "post-stratification",
            CalMethod::Rake => "raking (rake)",
            CalMethod::Raking => "raking calibration",
            CalMethod::Linear => "linear calibration",
            CalMethod::Truncated => "truncated linear calibration",
            CalMethod::Logit => "logit calibration",
        }
    }
}

/// Weight trimming after calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    /// R `trimWeights(design, upper, lower, strict)` on the final weights: weights outside
    /// [lower, upper] are set to the bound and the trimmed amount is shared *equally* among the
    /// untrimmed units; `strict` repeats until no weight is outside.
    Weights {
        /// Lower bound on w.
        lower: f64,
        /// Upper bound on w.
        upper: f64,
        /// Repeat until every weight is within the bounds.
        strict: bool,
    },
    /// R `calibrate(..., trim = c(lower, upper))`: g-weights outside [lower, upper] are set to
    /// the bound and the trimmed amount Σ(g − g')d is added to the untrimmed units in
    /// proportion to d (one pass). Only for the iterative methods (`Raking`, `Truncated`,
    /// `Logit`), as in R.
    G {
        /// Lower bound on g.
        lower: f64,
        /// Upper bound on g.
        upper: f64,
    },
}

/// How to calibrate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationSpec {
    /// Method.
    pub method: CalMethod,
    /// Bounds (L, U) on g = w/d: required for `Truncated` and `Logit`, optional for `Raking`,
    /// not allowed for the others.
    pub bounds: Option<(f64, f64)>,
    /// Maximum iterations (default: 10 sweeps for `Rake`, 50 Newton steps otherwise, as R).
    pub maxit: Option<usize>,
    /// Tolerance (default: 1 for `Rake` — absolute change of the weighted cross-table, or a
    /// fraction of Σd when < 1 —, 1e-7 otherwise: |misfit|/(1+|total|) for every column).
    pub epsilon: Option<f64>,
    /// Trimming after calibration.
    pub trim: Option<Trim>,
    /// Accept a non-converged result (with a warning) instead of failing.
    pub force: bool,
    /// `PostStratify` only: ignore post-strata without respondents (R `partial = TRUE`).
    pub partial: bool,
    /// `Rake` only, for replicates: exactly this many sweeps, with no convergence test. R's
    /// `rake()` on a replicate design post-stratifies every replicate column in the sweeps of
    /// the full sample and tests convergence on the full-sample weights alone, so a replicate
    /// does the full sample's number of sweeps, converged or not.
    pub replicate_sweeps: Option<usize>,
    /// `Rake` only: which weighted table must settle between sweeps (R survey ≥ 4.5: every
    /// margin's own; 4.1 to 4.4: the cross-table of all margin variables).
    pub rake_test: RakeTest,
}

/// The convergence test of `Rake` (R `rake()`'s, which changed in survey 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RakeTest {
    /// max over margins of the largest change of that margin's weighted table (survey ≥ 4.5).
    #[default]
    Margins,
    /// the largest change of the weighted cross-table of all margin variables (survey 4.1–4.4).
    CrossTable,
}

impl CalibrationSpec {
    /// Defaults for `method` (no bounds, no trimming, R's iteration settings).
    pub fn new(method: CalMethod) -> CalibrationSpec {
        CalibrationSpec {
            method,
            bounds: None,
            maxit: None,
            epsilon: None,
            trim: None,
            force: false,
            partial: false,
            replicate_sweeps: None,
            rake_test: RakeTest::Margins,
        }
    }

    /// The same with bounds (L, U) on g.
    #[cfg(test)]
    pub fn with_bounds(mut self, lower: f64, upper: f64) -> CalibrationSpec {
        self.bounds = Some((lower, upper));
        self
    }
}

/// One factor calibration variable.
#[derive(Debug, Clone, PartialEq)]
struct FactorVar {
    name: String,
    /// Level labels in R `factor()` order (as written in the margins file).
    levels: Vec<String>,
    totals: Vec<f64>,
    lines: Vec<u64>,
    /// Level index per design row.
    codes: Vec<u32>,
    /// Model column of level 1 (level 0 is the reference).
    offset: usize,
}

/// One numeric auxiliary variable.
#[derive(Debug, Clone, PartialEq)]
struct NumericVar {
    values: Vec<f64>,
    column: usize,
}

/// Joint post-strata.
#[derive(Debug, Clone, PartialEq)]
struct Cells {
    variable: String,
    labels: Vec<String>,
    totals: Vec<f64>,
    lines: Vec<u64>,
    codes: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
struct ModelData {
    n: usize,
    factors: Vec<FactorVar>,
    numerics: Vec<NumericVar>,
    /// Model columns (R model-matrix names) and population totals, in the same order.
    columns: Vec<String>,
    population: Vec<f64>,
    joint: Option<Cells>,
    /// Cross-classification of all factor variables (R `rake`'s convergence table).
    cross: Vec<u32>,
    n_cross: usize,
}

impl ModelData {
    fn p(&self) -> usize {
        self.columns.len()
    }

    /// Calls `f(column, value)` for the non-zero entries of row i of the model matrix.
    #[inline]
    fn terms(&self, i: usize, mut f: impl FnMut(usize, f64)) {
        f(0, 1.0);
        for fv in &self.factors {
            let c = fv.codes[i] as usize;
            if c > 0 {
                f(fv.offset + c - 1, 1.0);
            }
        }
        for nv in &self.numerics {
            f(nv.column, nv.values[i]);
        }
    }

    #[inline]
    fn dot(&self, i: usize, v: &[f64]) -> f64 {
        let mut s = v[0];
        for fv in &self.factors {
            let c = fv.codes[i] as usize;
            if c > 0 {
                s += v[fv.offset + c - 1];
            }
        }
        for nv in &self.numerics {
            s += nv.values[i] * v[nv.column];
        }
        s
    }

    /// Σ_i a_i m_i m_i' into `t` (p × p, row-major), skipping a_i = 0.
    fn crossprod(&self, a: impl Fn(usize) -> f64, t: &mut [f64]) {
        let p = self.p();
        t.iter_mut().for_each(|x| *x = 0.0);
        let mut idx = [0usize; 64];
        let mut val = [0f64; 64];
        let mut big_idx: Vec<usize> = Vec::new();
        let mut big_val: Vec<f64> = Vec::new();
        let q = 1 + self.factors.len() + self.numerics.len();
        for i in 0..self.n {
            let ai = a(i);
            if ai == 0.0 {
                continue;
            }
            let (ix, vx): (&mut [usize], &mut [f64]) = if q <= 64 {
                (&mut idx[..], &mut val[..])
            } else {
                big_idx.resize(q, 0);
                big_val.resize(q, 0.0);
                (&mut big_idx[..], &mut big_val[..])
            };
            let mut k = 0;
            self.terms(i, |j, v| {
                ix[k] = j;
                vx[k] = v;
                k += 1;
            });
            for u in 0..k {
                let row = ix[u] * p;
                let av = ai * vx[u];
                for w in 0..k {
                    t[row + ix[w]] += av * vx[w];
                }
            }
        }
    }

    /// Σ_i a_i m_i into `out`.
    fn total(&self, a: impl Fn(usize) -> f64, out: &mut [f64]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..self.n {
            let ai = a(i);
            if ai == 0.0 {
                continue;
            }
            self.terms(i, |j, v| out[j] += ai * v);
        }
    }
}

/// The calibration problem of one scheme: auxiliary values of the design rows and population
/// totals, validated. Cheap to clone (shared data).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationModel {
    data: Arc<ModelData>,
    source: String,
}

/// Distinct normalised values of a column over `rows`: per row an id, and the key of each id.
fn value_ids(
    frame: &Frame,
    source: &str,
    variable: &str,
    rows: &[usize],
) -> Result<(Vec<u32>, Vec<String>), CalibrationError> {
    let col = frame
        .column(variable)
        .ok_or_else(|| CalibrationError::MissingVariable {
            path: source.to_string(),
            variable: variable.to_string(),
        })?;
    let mut keys: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, u32> = HashMap::new();
    let mut intern = |k: String, keys: &mut Vec<String>| -> u32 {
        *by_key.entry(k.clone()).or_insert_with(|| {
            keys.push(k);
            (keys.len() - 1) as u32
        })
    };
    let mut ids = Vec::with_capacity(rows.len());
    match &col.data {
        ColumnData::Text { codes, levels } => {
            let mut cache: Vec<Option<u32>> = vec![None; levels.len()];
            for &r in rows {
                if col.state[r] != CellState::Value {
                    return Err(CalibrationError::MissingValue {
                        variable: variable.to_string(),
                        row: r,
                    });
                }
                let c = codes[r] as usize;
                let id = match cache[c] {
                    Some(id) => id,
                    None => {
                        let id = intern(normalise(&levels[c]), &mut keys);
                        cache[c] = Some(id);
                        id
                    }
                };
                ids.push(id);
            }
        }
        ColumnData::Num(v) => {
            // A margin variable has a few values: a short list scanned in order finds them
            // faster than hashing every row; the map takes over past that.
            const SHORT: usize = 16;
            let mut short: Vec<(u64, u32)> = Vec::with_capacity(SHORT);
            let mut cache: HashMap<u64, u32> = HashMap::new();
            for &r in rows {
                if col.state[r] != CellState::Value || !v[r].is_finite() {
                    return Err(CalibrationError::MissingValue {
                        variable: variable.to_string(),
                        row: r,
                    });
                }
                let x = if v[r] == 0.0 { 0.0 } else { v[r] };
                let bits = x.to_bits();
                let found = match short.iter().find(|(b, _)| *b == bits) {
                    Some(&(_, id)) => Some(id),
                    None if short.len() < SHORT => None,
                    None => cache.get(&bits).copied(),
                };
                let id = match found {
                    Some(id) => id,
                    None => {
                        let id = intern(crate::frame::format_number(x), &mut keys);
                        if short.len() < SHORT {
                            short.push((bits, id));
                        } else {
                            cache.insert(bits, id);
                        }
                        id
                    }
                };
                ids.push(id);
            }
        }
    }
    Ok((ids, keys))
}

/// R `factor()` level order: numeric when every key is a number, else lexical (C collation).
fn r_level_order(keys: &[&str]) -> Vec<usize> {
    let nums: Option<Vec<f64>> = keys.iter().map(|k| k.parse::<f64>().ok()).collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    match nums {
        Some(x) => order.sort_by(|&a, &b| x[a].total_cmp(&x[b])),
        None => order.sort_by(|&a, &b| keys[a].cmp(keys[b])),
    }
    order
}

impl CalibrationModel {
    /// Build the model of `rows` (frame row indices of the respondents, in design-row order).
    ///
    /// Long margins give R's treatment-contrast model matrix `~ f1 + f2 + … + x1 + …` with
    /// intercept (population total N), one dummy per non-reference level (levels in R
    /// `factor()` order, the first is the reference) and the numeric auxiliaries. A joint
    /// table gives post-strata (for [`CalMethod::PostStratify`] only).
    pub fn build(
        frame: &Frame,
        rows: &[usize],
        margins: &Margins,
    ) -> Result<CalibrationModel, CalibrationError> {
        let source = margins.source.clone();
        let n = rows.len();
        if n == 0 {
            return Err(CalibrationError::Weights("there are no respondents".into()));
        }
        if let Some(joint) = &margins.joint {
            let cells = build_cells(frame, rows, &source, joint)?;
            let data = ModelData {
                n,
                factors: Vec::new(),
                numerics: Vec::new(),
                columns: Vec::new(),
                population: Vec::new(),
                joint: Some(cells),
                cross: Vec::new(),
                n_cross: 0,
            };
            return Ok(CalibrationModel {
                data: Arc::new(data),
                source,
            });
        }
        let population_size =
            margins
                .population_size
                .ok_or_else(|| CalibrationError::NoPopulationSize {
                    path: source.clone(),
                })?;
        let mut columns = vec!["(Intercept)".to_string()];
        let mut population = vec![population_size];
        let mut factors = Vec::new();
        // Each margin variable's values read at once (a pass over the respondents each); the
        // first error in margin order is reported, as in a loop.
        let values: Vec<Result<(Vec<u32>, Vec<String>), CalibrationError>> = {
            use rayon::prelude::*;
            margins
                .factors
                .par_iter()
                .map(|fm| value_ids(frame, &source, &fm.variable, rows))
                .collect()
        };
        for (fm, values) in margins.factors.iter().zip(values) {
            let (ids, keys) = values?;
            // Map data ids to margin categories.
            let by_key: HashMap<&str, usize> = fm
                .categories
                .iter()
                .enumerate()
                .map(|(k, c)| (c.key.as_str(), k))
                .collect();
            let mut cat_of_id = Vec::with_capacity(keys.len());
            for (id, key) in keys.iter().enumerate() {
                match by_key.get(key.as_str()) {
                    Some(&k) => cat_of_id.push(k),
                    None => {
                        let count = ids.iter().filter(|&&x| x as usize == id).count();
                        return Err(CalibrationError::UnknownCategory {
                            path: source.clone(),
                            variable: fm.variable.clone(),
                            value: key.clone(),
                            rows: count,
                            known: fm
                                .categories
                                .iter()
                                .map(|c| c.label.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                }
            }
            let cat_keys: Vec<&str> = fm.categories.iter().map(|c| c.key.as_str()).collect();
            let order = r_level_order(&cat_keys);
            let mut level_of_cat = vec![0u32; order.len()];
            for (lev, &cat) in order.iter().enumerate() {
                level_of_cat[cat] = lev as u32;
            }
            let codes: Vec<u32> = ids
                .iter()
                .map(|&id| level_of_cat[cat_of_id[id as usize]])
                .collect();
            let mut count = vec![0usize; order.len()];
            for &c in &codes {
                count[c as usize] += 1;
            }
            if let Some(lev) = count.iter().position(|&c| c == 0) {
                let cat = &fm.categories[order[lev]];
                return Err(CalibrationError::EmptyCategory {
                    path: source.clone(),
                    line: cat.line,
                    variable: fm.variable.clone(),
                    category: cat.label.clone(),
                    detail: String::new(),
                });
            }
            let offset = columns.len();
            for &cat in &order[1..] {
                let c = &fm.categories[cat];
                columns.push(format!("{}{}", fm.variable, c.label));
                population.push(c.total);
            }
            factors.push(FactorVar {
                name: fm.variable.clone(),
                levels: order
                    .iter()
                    .map(|&c| fm.categories[c].label.clone())
                    .collect(),
                totals: order.iter().map(|&c| fm.categories[c].total).collect(),
                lines: order.iter().map(|&c| fm.categories[c].line).collect(),
                codes,
                offset,
            });
        }
        let mut numerics = Vec::new();
        for nt in &margins.numeric {
            let col =
                frame
                    .column(&nt.variable)
                    .ok_or_else(|| CalibrationError::MissingVariable {
                        path: source.clone(),
                        variable: nt.variable.clone(),
                    })?;
            let mut values = Vec::with_capacity(n);
            for &r in rows {
                if col.state[r] != CellState::Value {
                    return Err(CalibrationError::MissingValue {
                        variable: nt.variable.clone(),
                        row: r,
                    });
                }
                match &col.data {
                    ColumnData::Num(v) if v[r].is_finite() => values.push(v[r]),
                    _ => {
                        return Err(CalibrationError::NotNumeric {
                            variable: nt.variable.clone(),
                            row: r,
                            value: col.display(r).unwrap_or_default(),
                        });
                    }
                }
            }
            numerics.push(NumericVar {
                values,
                column: columns.len(),
            });
            columns.push(nt.variable.clone());
            population.push(nt.total);
        }
        let (cross, n_cross) = cross_classify(&factors, n);
        let data = ModelData {
            n,
            factors,
            numerics,
            columns,
            population,
            joint: None,
            n_cross,
            cross,
        };
        // Rank of the cross-product matrix (with positive weights it is that of X'X), from the
        // cells with their row counts where the model is constant within a cell: sums of
        // whole numbers, so the matrix is the rows' one exactly.
        let p = data.p();
        let mut t = vec![0.0; p * p];
        if data.numerics.is_empty() {
            let mut count = vec![0.0; n_cross];
            for &c in &data.cross {
                count[c as usize] += 1.0;
            }
            cross_cells(&data).crossprod(|c| count[c], &mut t);
        } else {
            data.crossprod(|_| 1.0, &mut t);
        }
        let mut fac = SymFactor::new(p);
        if let Err(j) = fac.factor(&t) {
            return Err(CalibrationError::RankDeficient {
                column: data.columns[j].clone(),
                detail: String::new(),
            });
        }
        Ok(CalibrationModel {
            data: Arc::new(data),
            source,
        })
    }

    /// Model columns, named as R's `model.matrix` names them (`(Intercept)`, `sex2`, …);
    /// empty for a joint post-strata table.
    #[cfg(test)]
    pub fn columns(&self) -> &[String] {
        &self.data.columns
    }

    /// Population totals in the order of [`CalibrationModel::columns`].
    #[cfg(test)]
    pub fn population(&self) -> &[f64] {
        &self.data.population
    }

    /// The model collapsed to calibration cells, for calibrating many sets of base weights
    /// that differ only by factors constant within groups of rows (replicates).
    ///
    /// A cell is a set of rows with the same model row m: the cross-classification of the
    /// factor margins, or the post-stratum of a joint table. Every method's weights are then
    /// w_i = d_i g_c(i): the Newton steps of the GREG methods see the rows only through
    /// Σ_c d F'(m_c'η) m_c m_c' and Σ_c d F⁻¹(m_c'η) m_c, post-stratification and `rake()`
    /// multiply every row of a class by the same ratio, bounds act on g (a function of m_c'η),
    /// and g-trimming clamps g and shifts it by one constant. So calibrating the cell totals
    /// d_c = Σ_{i∈c} d_i gives every row's g. `None` where that does not hold: numeric
    /// auxiliaries (m varies within a cell) and trimming of the final weights (acts on d_i g).
    pub fn collapse(&self, spec: &CalibrationSpec) -> Option<CellModel> {
        let data = &self.data;
        if !data.numerics.is_empty() || matches!(spec.trim, Some(Trim::Weights { .. })) {
            return None;
        }
        let collapsed = match &data.joint {
            Some(cells) => {
                let k = cells.totals.len();
                let data = ModelData {
                    n: k,
                    factors: Vec::new(),
                    numerics: Vec::new(),
                    columns: Vec::new(),
                    population: Vec::new(),
                    joint: Some(Cells {
                        codes: (0..k as u32).collect(),
                        ..cells.clone()
                    }),
                    cross: Vec::new(),
                    n_cross: 0,
                };
                (data, cells.codes.clone())
            }
            None => (cross_cells(data), data.cross.clone()),
        };
        let (data, cell_of_row) = collapsed;
        Some(CellModel {
            model: CalibrationModel {
                data: Arc::new(data),
                source: self.source.clone(),
            },
            cell_of_row,
        })
    }

    /// Σ_i w_i m_i over the model columns (the calibrated totals, for checks and reports).
    #[cfg(test)]
    pub fn weighted_totals(&self, weights: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.data.p()];
        self.data.total(|i| weights[i], &mut out);
        out
    }
}

/// Cross-classification of the factors (rake's convergence table, the calibration cells): the
/// cell of every row, cells numbered in order of first appearance, and their number.
fn cross_classify(factors: &[FactorVar], n: usize) -> (Vec<u32>, usize) {
    // Mixed-radix key of the level codes; a dense table of cells when the key space is small
    // (the usual margins: sex × age group × region × urban is 640 keys), else a map.
    let radix: Option<u64> = factors
        .iter()
        .try_fold(1u64, |acc, f| acc.checked_mul(f.levels.len().max(1) as u64));
    let key = |i: usize| {
        factors.iter().fold(0u64, |k, f| {
            k * f.levels.len().max(1) as u64 + u64::from(f.codes[i])
        })
    };
    let mut cross = Vec::with_capacity(n);
    let mut n_cross = 0u32;
    match radix {
        Some(size) if size <= 1 << 22 => {
            let mut table = vec![u32::MAX; size as usize];
            for i in 0..n {
                let slot = &mut table[key(i) as usize];
                if *slot == u32::MAX {
                    *slot = n_cross;
                    n_cross += 1;
                }
                cross.push(*slot);
            }
        }
        Some(_) => {
            let mut index: HashMap<u64, u32> = HashMap::new();
            for i in 0..n {
                let id = *index.entry(key(i)).or_insert(n_cross);
                if id == n_cross {
                    n_cross += 1;
                }
                cross.push(id);
            }
        }
        None => {
            let mut index: HashMap<Vec<u32>, u32> = HashMap::new();
            for i in 0..n {
                let codes: Vec<u32> = factors.iter().map(|f| f.codes[i]).collect();
                let id = *index.entry(codes).or_insert(n_cross);
                if id == n_cross {
                    n_cross += 1;
                }
                cross.push(id);
            }
        }
    }
    (cross, n_cross as usize)
}

/// The factor model on its cross-classification cells: one model row per cell (that of the
/// cell's first row), numeric auxiliaries dropped (callers check there are none).
fn cross_cells(data: &ModelData) -> ModelData {
    let k = data.n_cross;
    let mut first = vec![usize::MAX; k];
    for (i, &c) in data.cross.iter().enumerate() {
        if first[c as usize] == usize::MAX {
            first[c as usize] = i;
        }
    }
    let factors = data
        .factors
        .iter()
        .map(|f| FactorVar {
            name: f.name.clone(),
            levels: f.levels.clone(),
            totals: f.totals.clone(),
            lines: f.lines.clone(),
            codes: first.iter().map(|&i| f.codes[i]).collect(),
            offset: f.offset,
        })
        .collect();
    ModelData {
        n: k,
        factors,
        numerics: Vec::new(),
        columns: data.columns.clone(),
        population: data.population.clone(),
        joint: None,
        cross: (0..k as u32).collect(),
        n_cross: k,
    }
}

/// A calibration model collapsed to its cells ([`CalibrationModel::collapse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CellModel {
    model: CalibrationModel,
    cell_of_row: Vec<u32>,
}

impl CellModel {
    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.model.data.n
    }

    /// The cell of every design row.
    pub fn cell_of_row(&self) -> &[u32] {
        &self.cell_of_row
    }

    /// g per cell from the cell totals of the base weights d_c = Σ_{i∈c} d_i: row i's final
    /// weight is d_i g_c(i). Same algorithm, options and errors as [`calibrate`] on the rows,
    /// except that error messages naming a design row name a cell instead (callers that
    /// report errors recalibrate the rows to get the row's message).
    pub fn calibrate(
        &self,
        cell_base: &[f64],
        spec: &CalibrationSpec,
    ) -> Result<Vec<f64>, CalibrationError> {
        let out = calibrate(&self.model, cell_base, spec)?;
        // rake() reports g = 1 where d = 0; any g serves, the cell has no weight.
        Ok(out.g)
    }
}

/// [`calibrate`] of the full sample through the calibration cells of `model`: the kernel runs
/// on the cell totals d_c = Σ_{i∈c} d_i (`cells` is `model.collapse(spec)`), and its result is
/// expanded once to the rows, w_i = d_i g_c(i). Exact for the reasons given at
/// [`CalibrationModel::collapse`]; the numbers differ from the row path only in summation
/// order (sums by cell, then over cells), about 1e-15 relative.
///
/// The row path runs instead, so that messages and counts name rows, where the cell result
/// would speak of cells: invalid base weights, any calibration error, trimming (counts trimmed
/// rows) and negative weights (counted per row). The expansion keeps the row path's
/// conventions: `Rake` reports g = 1 for a row of zero base weight, and the variance
/// residualizer gets row-level weights; the largest margin error is measured on the rows.
pub fn calibrate_on_cells(
    model: &CalibrationModel,
    cells: &CellModel,
    base_weights: &[f64],
    spec: &CalibrationSpec,
) -> Result<Calibrated, CalibrationError> {
    let data = &model.data;
    let cell_of_row = cells.cell_of_row();
    let valid = base_weights.len() == data.n
        && cell_of_row.len() == data.n
        && base_weights.iter().all(|&d| d.is_finite() && d >= 0.0);
    if !valid || spec.trim.is_some() {
        return calibrate(model, base_weights, spec);
    }
    let mut cell_base = vec![0.0; cells.n_cells()];
    for (&c, &d) in cell_of_row.iter().zip(base_weights) {
        cell_base[c as usize] += d;
    }
    let on_cells = match calibrate(&cells.model, &cell_base, spec) {
        Ok(out) if out.negative_weights == 0 => out,
        _ => return calibrate(model, base_weights, spec),
    };
    let rake = spec.method == CalMethod::Rake;
    let g: Vec<f64> = cell_of_row
        .iter()
        .zip(base_weights)
        .map(|(&c, &d)| {
            if rake && d <= 0.0 {
                1.0
            } else {
                on_cells.g[c as usize]
            }
        })
        .collect();
    let weights: Vec<f64> = base_weights.iter().zip(&g).map(|(d, g)| d * g).collect();
    // A row's share of its cell's weight at each step: d_i / d_c.
    let expand = |cell_values: &[f64]| -> Vec<f64> {
        cell_of_row
            .iter()
            .zip(base_weights)
            .map(|(&c, &d)| {
                let dc = cell_base[c as usize];
                if dc > 0.0 {
                    d * (cell_values[c as usize] / dc)
                } else {
                    0.0
                }
            })
            .collect()
    };
    let kind = match on_cells.residualizer.kind {
        Resid::Greg { factor, .. } => Resid::Greg {
            d: base_weights.to_vec(),
            g: g.clone(),
            factor,
        },
        Resid::PostStrat { .. } => Resid::PostStrat {
            oldw: base_weights.to_vec(),
            w: weights.clone(),
        },
        Resid::Rake { psw } => Resid::Rake {
            psw: psw.iter().map(|p| expand(p)).collect(),
        },
    };
    let max_margin_error = margin_error(model, &weights, spec).1;
    Ok(Calibrated {
        weights,
        g,
        max_margin_error,
        residualizer: Residualizer {
            data: Arc::clone(data),
            kind,
        },
        ..on_cells
    })
}

fn build_cells(
    frame: &Frame,
    rows: &[usize],
    source: &str,
    joint: &super::margins::JointTable,
) -> Result<Cells, CalibrationError> {
    let n = rows.len();
    let nv = joint.variables.len();
    let mut ids = Vec::with_capacity(nv);
    let mut keys = Vec::with_capacity(nv);
    for v in &joint.variables {
        let (i, k) = value_ids(frame, source, v, rows)?;
        ids.push(i);
        keys.push(k);
    }
    // Cell key (tuple of data ids) -> cell; cells whose values never occur cannot match.
    let mut cell_of: HashMap<Vec<u32>, u32> = HashMap::new();
    for (c, cell) in joint.cells.iter().enumerate() {
        let tuple: Option<Vec<u32>> = cell
            .keys
            .iter()
            .zip(&keys)
            .map(|(k, ks)| ks.iter().position(|x| x == k).map(|p| p as u32))
            .collect();
        if let Some(t) = tuple {
            cell_of.insert(t, c as u32);
        }
    }
    let mut codes = Vec::with_capacity(n);
    let mut buf: Vec<u32> = Vec::with_capacity(nv);
    for i in 0..n {
        buf.clear();
        buf.extend(ids.iter().map(|v| v[i]));
        match cell_of.get(buf.as_slice()) {
            Some(&c) => codes.push(c),
            None => {
                let rows_in = (0..n)
                    .filter(|&r| ids.iter().zip(&buf).all(|(v, &b)| v[r] == b))
                    .count();
                let value = joint
                    .variables
                    .iter()
                    .zip(&buf)
                    .zip(&keys)
                    .map(|((v, &b), ks)| format!("{v}={}", ks[b as usize]))
                    .collect::<Vec<_>>()
                    .join(",");
                return Err(CalibrationError::UnknownCategory {
                    path: source.to_string(),
                    variable: joint.variables.join(":"),
                    value,
                    rows: rows_in,
                    known: format!("{} cells", joint.cells.len()),
                });
            }
        }
    }
    Ok(Cells {
        variable: joint.variables.join(":"),
        labels: joint
            .cells
            .iter()
            .map(|c| {
                joint
                    .variables
                    .iter()
                    .zip(&c.labels)
                    .map(|(v, l)| format!("{v}={l}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect(),
        totals: joint.cells.iter().map(|c| c.total).collect(),
        lines: joint.cells.iter().map(|c| c.line).collect(),
        codes,
    })
}

/// Result of calibrating one set of base weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    /// Final weights w (after trimming, if any), in design-row order.
    pub weights: Vec<f64>,
    /// g = w / d (1 where d = 0).
    pub g: Vec<f64>,
    /// Newton iterations (`grake`), raking sweeps (`Rake`), 1 for the closed forms.
    pub iterations: usize,
    /// max_j |Σ w m_j − T_j| / |T_j| over the calibration totals (model columns, post-strata
    /// or rake categories), on the final weights.
    pub max_margin_error: f64,
    /// False only when `force` accepted a non-converged result.
    pub converged: bool,
    /// Number of negative final weights (possible with `Linear`).
    pub negative_weights: usize,
    /// Number of weights (or g-weights) changed by trimming.
    pub trimmed: usize,
    /// Non-fatal findings, for the run report.
    pub warnings: Vec<String>,
    /// Turns scores into calibration residuals for the variance.
    pub residualizer: Residualizer,
}

#[derive(Debug, Clone, PartialEq)]
enum Resid {
    /// GREG: e = x − w m'β, β = (Σ d m m')⁻¹ Σ m x / g.
    Greg {
        d: Vec<f64>,
        g: Vec<f64>,
        factor: SymFactor,
    },
    /// Post-stratification on `cells` (None = the single factor 0).
    PostStrat { oldw: Vec<f64>, w: Vec<f64> },
    /// R's raking approximation: per margin, the weights right after that margin's
    /// post-stratification in the last sweep.
    Rake { psw: Vec<Vec<f64>> },
}

/// Replaces linearisation scores by calibration residuals (R `svyrecvar`'s treatment of
/// `design$postStrata`), so that `Design::variance` of the result is the variance of the
/// calibrated estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct Residualizer {
    data: Arc<ModelData>,
    kind: Resid,
}

impl Residualizer {
    /// Replace `scores` (one per design row, already multiplied by the final weight, zero
    /// outside the domain) by their calibration residuals:
    ///
    /// * GREG methods: e_i = x_i − w_i m_i'β, β = (Σ d m m')⁻¹ Σ m_i x_i / g_i
    ///   (R: `qr.resid(qr(mm·√d), x/(g√d))·g√d`);
    /// * `PostStratify`: e_i = x_i − w_i Σ_{j∈c}(x_j d_j / w_j) / Σ_{j∈c} d_j;
    /// * `Rake`: R's approximation, 10 sweeps over the margins of x ← x − w_m · ave(x / w_m),
    ///   with w_m the weights after margin m's post-stratification and `ave` the unweighted
    ///   class mean.
    pub fn residualize(&self, scores: &mut [f64]) {
        let data = &self.data;
        match &self.kind {
            Resid::Greg { d, g, factor } => {
                let p = data.p();
                let mut beta = vec![0.0; p];
                for i in 0..data.n {
                    if d[i] > 0.0 && g[i] != 0.0 && scores[i] != 0.0 {
                        let s = scores[i] / g[i];
                        data.terms(i, |j, v| beta[j] += v * s);
                    }
                }
                factor.solve(&mut beta);
                for i in 0..data.n {
                    if d[i] > 0.0 {
                        scores[i] -= g[i] * d[i] * data.dot(i, &beta);
                    }
                }
            }
            Resid::PostStrat { oldw, w } => {
                let (codes, k) = cell_codes(data);
                let mut num = vec![0.0; k];
                let mut den = vec![0.0; k];
                for i in 0..data.n {
                    let c = codes[i] as usize;
                    let psw = if w[i] == 0.0 && oldw[i] == 0.0 {
                        1.0
                    } else {
                        w[i]
                    };
                    if psw != 0.0 {
                        num[c] += scores[i] * oldw[i] / psw;
                    }
                    den[c] += oldw[i];
                }
                for i in 0..data.n {
                    let c = codes[i] as usize;
                    if den[c] > 0.0 {
                        scores[i] -= num[c] / den[c] * w[i];
                    }
                }
            }
            Resid::Rake { psw } => {
                let kmax = data
                    .factors
                    .iter()
                    .map(|f| f.levels.len())
                    .max()
                    .unwrap_or(0);
                let mut sum = vec![0.0; kmax];
                let mut cnt = vec![0.0; kmax];
                for _ in 0..10 {
                    for (f, w) in data.factors.iter().zip(psw) {
                        let k = f.levels.len();
                        sum[..k].iter_mut().for_each(|x| *x = 0.0);
                        cnt[..k].iter_mut().for_each(|x| *x = 0.0);
                        for i in 0..data.n {
                            if w[i] != 0.0 {
                                let c = f.codes[i] as usize;
                                sum[c] += scores[i] / w[i];
                                cnt[c] += 1.0;
                            }
                        }
                        for i in 0..data.n {
                            let c = f.codes[i] as usize;
                            if cnt[c] > 0.0 {
                                scores[i] -= w[i] * sum[c] / cnt[c];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The calibration residual of the GREG methods and of post-stratification written as a linear
/// map, so that it can be applied to sums instead of rows:
///
/// e_i = z_i − a_i m_i'β, β = S⁻¹ Σ_i m_i b_i z_i,
///
/// * GREG: m_i the model row, a_i = g_i d_i, b_i = 1/g_i (0 where d_i = 0 or g_i = 0),
///   S = Σ d m m';
/// * `PostStratify`: m_i the post-stratum dummy, a_i = w_i, b_i = d_i / w_i (0 where w_i = 0),
///   S = diag(Σ_c d) (β_c = 0 for an empty post-stratum).
///
/// First-stage PSU totals of e are then T_p(z) − (Σ_{i∈p} a_i m_i)'β: the per-PSU fitted totals
/// are the same for every statistic, and β needs only Σ m b z, a p-vector per domain. That
/// turns the per-domain row passes of [`Residualizer::residualize`] into small matrix work
/// (`docs/performance.md`). R's `rake()` approximation has no such form.
#[derive(Debug, Clone, Copy)]
pub struct LinearResidual<'a> {
    res: &'a Residualizer,
}

impl<'a> LinearResidual<'a> {
    /// Length of β (model columns, or post-strata).
    pub fn dim(&self) -> usize {
        let data = &self.res.data;
        match &self.res.kind {
            Resid::Greg { .. } => data.p(),
            _ => cell_codes(data).1,
        }
    }

    /// Number of design rows.
    pub fn n_rows(&self) -> usize {
        self.res.data.n
    }

    /// Calls `f(j, m_ij)` for the non-zero entries of row i's model vector m_i.
    #[inline]
    pub fn terms(&self, i: usize, mut f: impl FnMut(usize, f64)) {
        let data = &self.res.data;
        match &self.res.kind {
            Resid::Greg { .. } => data.terms(i, f),
            _ => f(cell_codes(data).0[i] as usize, 1.0),
        }
    }

    /// b_i z_i for a score z_i = `w_i · s` (`w_i` the final weight): the row's contribution to
    /// Σ m b z is m_i · `score_weight(i, w_i)` · s. Computed as the row path divides the score
    /// (z_i / g_i, or z_i d_i / w_i), so the two agree to rounding.
    #[inline]
    pub fn score_weight(&self, i: usize, w: f64) -> f64 {
        match &self.res.kind {
            Resid::Greg { d, g, .. } => {
                if d[i] > 0.0 && g[i] != 0.0 {
                    w / g[i]
                } else {
                    0.0
                }
            }
            Resid::PostStrat { oldw, w: pw } => {
                let psw = if pw[i] == 0.0 && oldw[i] == 0.0 {
                    1.0
                } else {
                    pw[i]
                };
                if psw != 0.0 { w * oldw[i] / psw } else { 0.0 }
            }
            Resid::Rake { .. } => f64::NAN,
        }
    }

    /// a_i, the weight of the fitted value subtracted from row i.
    #[inline]
    pub fn fitted_weight(&self, i: usize) -> f64 {
        match &self.res.kind {
            Resid::Greg { d, g, .. } => {
                if d[i] > 0.0 {
                    g[i] * d[i]
                } else {
                    0.0
                }
            }
            Resid::PostStrat { w, .. } => w[i],
            Resid::Rake { .. } => f64::NAN,
        }
    }

    /// Σ_{i∈p} a_i m_i for every first-stage PSU p (`psu_of_row[i]` < `n_psu`), row-major
    /// `n_psu × dim`. For post-stratification only cells with base weight enter (β_c is 0
    /// for the others anyway).
    pub fn psu_fitted_totals(&self, psu_of_row: &[u32], n_psu: usize) -> Vec<f64> {
        let dim = self.dim();
        let mut out = vec![0.0; n_psu * dim];
        for (i, &p) in psu_of_row.iter().enumerate().take(self.n_rows()) {
            let a = self.fitted_weight(i);
            if a == 0.0 {
                continue;
            }
            let row = &mut out[p as usize * dim..(p as usize + 1) * dim];
            self.terms(i, |j, v| row[j] += a * v);
        }
        out
    }

    /// The solver of β = S⁻¹ rhs for this calibration (computes Σ_c d for post-strata once).
    pub fn solver(&self) -> ResidualSolver<'a> {
        let den = match &self.res.kind {
            Resid::PostStrat { oldw, .. } => {
                let (codes, k) = cell_codes(&self.res.data);
                let mut den = vec![0.0; k];
                for (i, &c) in codes.iter().enumerate() {
                    den[c as usize] += oldw[i];
                }
                den
            }
            _ => Vec::new(),
        };
        ResidualSolver { res: self.res, den }
    }
}

/// β = S⁻¹ rhs of a [`LinearResidual`].
#[derive(Debug, Clone)]
pub struct ResidualSolver<'a> {
    res: &'a Residualizer,
    den: Vec<f64>,
}

impl ResidualSolver<'_> {
    /// Replace `rhs` = Σ m b z by β.
    pub fn solve(&self, rhs: &mut [f64]) {
        match &self.res.kind {
            Resid::Greg { factor, .. } => factor.solve(rhs),
            _ => {
                for (b, &den) in rhs.iter_mut().zip(&self.den) {
                    *b = if den > 0.0 { *b / den } else { 0.0 };
                }
            }
        }
    }
}

impl Residualizer {
    /// The residual as a linear map on sums ([`LinearResidual`]); `None` for R's `rake()`
    /// approximation, which needs the rows.
    pub fn linear_form(&self) -> Option<LinearResidual<'_>> {
        match self.kind {
            Resid::Rake { .. } => None,
            _ => Some(LinearResidual { res: self }),
        }
    }
}

/// Post-stratum code per row and number of cells: the joint table, or the single factor.
fn cell_codes(data: &ModelData) -> (&[u32], usize) {
    match &data.joint {
        Some(c) => (&c.codes, c.totals.len()),
        None => (&data.factors[0].codes, data.factors[0].levels.len()),
    }
}

/// The calibration distance of the `grake` methods: F⁻¹(u) − 1 and its derivative, exactly
/// as R's `cal.linear`, `cal.raking` and `cal.logit`.
#[derive(Debug, Clone, Copy)]
enum Distance {
    Linear { l: f64, u: f64 },
    Raking { l: f64, u: f64 },
    Logit { l: f64, u: f64, a: f64 },
}

impl Distance {
    #[inline]
    fn fm1(self, x: f64) -> f64 {
        match self {
            Distance::Linear { l, u } => (x + 1.0).max(l).min(u) - 1.0,
            Distance::Raking { l, u } => x.exp().max(l).min(u) - 1.0,
            Distance::Logit { l, u, a } => {
                let e = (a * x).exp();
                (l * (u - 1.0) + u * (1.0 - l) * e) / (u - 1.0 + (1.0 - l) * e) - 1.0
            }
        }
    }

    #[inline]
    fn df(self, x: f64) -> f64 {
        match self {
            Distance::Linear { l, u } => {
                if x < u - 1.0 && x > l - 1.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Distance::Raking { l, u } => {
                if x < u - 1.0 && x > l - 1.0 {
                    x.exp()
                } else {
                    0.0
                }
            }
            Distance::Logit { l, u, a } => {
                let e = (a * x).exp();
                let den = u - 1.0 + (1.0 - l) * e;
                u * (1.0 - l) * e * a / den
                    - ((l * (u - 1.0) + u * (1.0 - l) * e) * ((1.0 - l) * e * a)) / (den * den)
            }
        }
    }
}

/// Calibrate `base_weights` (one per design row of `model`) as `spec` says.
///
/// Pure: the same model can be reused for every replicate. Rows with base weight 0 keep
/// weight 0.
pub fn calibrate(
    model: &CalibrationModel,
    base_weights: &[f64],
    spec: &CalibrationSpec,
) -> Result<Calibrated, CalibrationError> {
    let data = &model.data;
    if base_weights.len() != data.n {
        return Err(CalibrationError::Weights(format!(
            "{} base weights for {} design rows",
            base_weights.len(),
            data.n
        )));
    }
    if let Some(i) = base_weights
        .iter()
        .position(|&d| !(d.is_finite() && d >= 0.0))
    {
        return Err(CalibrationError::Weights(format!(
            "design row {} has base weight {}; weights must be finite and non-negative",
            i + 1,
            base_weights[i]
        )));
    }
    check_spec(model, spec)?;
    let mut out = match spec.method {
        CalMethod::PostStratify => post_stratify(model, base_weights, spec)?,
        CalMethod::Rake => rake(model, base_weights, spec)?,
        CalMethod::Linear => linear(model, base_weights)?,
        CalMethod::Raking | CalMethod::Truncated | CalMethod::Logit => {
            greg_iterative(model, base_weights, spec)?
        }
    };
    if let Some(Trim::Weights {
        lower,
        upper,
        strict,
    }) = spec.trim
    {
        let (trimmed, failed) = trim_weights(&mut out.weights, lower, upper, strict)?;
        out.trimmed = trimmed;
        out.warnings.extend(failed);
        if out.trimmed > 0 {
            out.warnings.push(format!(
                "{} weights were trimmed to [{lower}, {upper}]",
                out.trimmed
            ));
            for i in 0..data.n {
                if base_weights[i] > 0.0 {
                    out.g[i] = out.weights[i] / base_weights[i];
                }
            }
        }
    }
    out.negative_weights = out.weights.iter().filter(|&&w| w < 0.0).count();
    if out.negative_weights > 0 {
        out.warnings.push(format!(
            "{} negative weights (linear calibration does not keep weights positive; consider bounds)",
            out.negative_weights
        ));
    }
    if let Some(i) = out.weights.iter().position(|w| !w.is_finite()) {
        return Err(CalibrationError::Weights(format!(
            "{} produced a non-finite weight in design row {}",
            spec.method.name(),
            i + 1
        )));
    }
    out.max_margin_error = margin_error(model, &out.weights, spec).1;
    Ok(out)
}

fn check_spec(model: &CalibrationModel, spec: &CalibrationSpec) -> Result<(), CalibrationError> {
    let data = &model.data;
    let m = spec.method;
    if m == CalMethod::PostStratify {
        if data.joint.is_none() && data.factors.len() + data.numerics.len() != 1 {
            return Err(CalibrationError::Spec(format!(
                "post-stratification needs a joint table (header `var1,var2,total`) or a single factor margin; {} has {} margins",
                model.source,
                data.factors.len() + data.numerics.len()
            )));
        }
        if data.joint.is_none() && data.factors.is_empty() {
            return Err(CalibrationError::Spec(
                "post-stratification needs a factor, not a numeric total".into(),
            ));
        }
    } else if data.joint.is_some() {
        return Err(CalibrationError::Spec(format!(
            "{} is a joint post-strata table: only post-stratification can use it; give the margins in the long layout (variable,category,total)",
            model.source
        )));
    }
    if m == CalMethod::Rake && !data.numerics.is_empty() {
        return Err(CalibrationError::Spec(
            "rake() calibrates to factor margins only; use Raking (calibrate(calfun = \"raking\")) for numeric totals".into(),
        ));
    }
    match (m, spec.bounds) {
        (CalMethod::Truncated | CalMethod::Logit, None) => {
            return Err(CalibrationError::Spec(format!(
                "{} needs bounds (L, U) on g",
                m.name()
            )));
        }
        (CalMethod::Linear, Some(_)) => {
            return Err(CalibrationError::Spec(
                "linear calibration with bounds is the Truncated method".into(),
            ));
        }
        (CalMethod::PostStratify | CalMethod::Rake, Some(_)) => {
            return Err(CalibrationError::Spec(format!(
                "{} takes no bounds",
                m.name()
            )));
        }
        (_, Some((l, u))) => {
            let ok = if m == CalMethod::Logit {
                l.is_finite() && u.is_finite() && l < 1.0 && 1.0 < u
            } else {
                !l.is_nan() && !u.is_nan() && l <= 1.0 && 1.0 <= u && l < u
            };
            if !ok {
                return Err(CalibrationError::Spec(format!(
                    "bounds [{l}, {u}] must satisfy L < 1 < U{}",
                    if m == CalMethod::Logit {
                        " and be finite for logit calibration"
                    } else {
                        ""
                    }
                )));
            }
        }
        _ => {}
    }
    if let Some(Trim::G { lower, upper }) = spec.trim {
        if !matches!(
            m,
            CalMethod::Raking | CalMethod::Truncated | CalMethod::Logit
        ) {
            return Err(CalibrationError::Spec(format!(
                "g-trimming (R calibrate(trim =)) applies to the iterative methods only, not {}; use weight trimming",
                m.name()
            )));
        }
        if lower.is_nan() || upper.is_nan() || lower > upper {
            return Err(CalibrationError::Spec(format!(
                "trim bounds [{lower}, {upper}] are not an interval"
            )));
        }
    }
    if let Some(Trim::Weights { lower, upper, .. }) = spec.trim
        && (lower.is_nan() || upper.is_nan() || lower > upper)
    {
        return Err(CalibrationError::Spec(format!(
            "trim bounds [{lower}, {upper}] are not an interval"
        )));
    }
    if let Some(e) = spec.epsilon
        && !(e > 0.0 && e.is_finite())
    {
        return Err(CalibrationError::Spec(format!(
            "epsilon must be positive, not {e}"
        )));
    }
    if spec.maxit == Some(0) {
        return Err(CalibrationError::Spec("maxit must be at least 1".into()));
    }
    Ok(())
}

fn empty_result(data: &Arc<ModelData>, kind: Resid, weights: Vec<f64>, g: Vec<f64>) -> Calibrated {
    Calibrated {
        weights,
        g,
        iterations: 1,
        max_margin_error: 0.0,
        converged: true,
        negative_weights: 0,
        trimmed: 0,
        warnings: Vec::new(),
        residualizer: Residualizer {
            data: Arc::clone(data),
            kind,
        },
    }
}

fn post_stratify(
    model: &CalibrationModel,
    d: &[f64],
    spec: &CalibrationSpec,
) -> Result<Calibrated, CalibrationError> {
    let data = &model.data;
    let (codes, k) = cell_codes(data);
    let mut st = vec![0.0; k];
    for i in 0..data.n {
        st[codes[i] as usize] += d[i];
    }
    let mut warnings = Vec::new();
    // Post-strata ignored under `partial`: named, the first few, then counted (a million empty
    // cells printed a million lines).
    const NAMED: usize = 5;
    let mut ignored: Vec<String> = Vec::new();
    let mut n_ignored = 0usize;
    let mut reweight = vec![1.0; k];
    for c in 0..k {
        let (label, variable, total, line) = match &data.joint {
            Some(j) => (
                j.labels[c].clone(),
                j.variable.clone(),
                j.totals[c],
                j.lines[c],
            ),
            None => {
                let f = &data.factors[0];
                (f.levels[c].clone(), f.name.clone(), f.totals[c], f.lines[c])
            }
        };
        if st[c] <= 0.0 {
            if spec.partial {
                n_ignored += 1;
                if ignored.len() < NAMED {
                    ignored.push(label);
                }
                continue;
            }
            return Err(CalibrationError::EmptyCategory {
                path: model.source.clone(),
                line,
                variable,
                category: label,
                detail: " with positive weight".into(),
            });
        }
        reweight[c] = total / st[c];
    }
    if n_ignored > 0 {
        let more = n_ignored - ignored.len();
        warnings.push(format!(
            "{n_ignored} post-strata have no respondent and were ignored (partial): {}{}",
            ignored.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let g: Vec<f64> = codes.iter().map(|&c| reweight[c as usize]).collect();
    let w: Vec<f64> = d.iter().zip(&g).map(|(d, g)| d * g).collect();
    let kind = Resid::PostStrat {
        oldw: d.to_vec(),
        w: w.clone(),
    };
    let mut out = empty_result(data, kind, w, g);
    out.warnings = warnings;
    Ok(out)
}

fn rake(
    model: &CalibrationModel,
    d: &[f64],
    spec: &CalibrationSpec,
) -> Result<Calibrated, CalibrationError> {
    let data = &model.data;
    let n = data.n;
    let maxit = spec.replicate_sweeps.unwrap_or(spec.maxit.unwrap_or(10));
    let eps = spec.epsilon.unwrap_or(1.0);
    let epsilon = if eps < 1.0 {
        eps * d.iter().sum::<f64>()
    } else {
        eps
    };
    let mut w = d.to_vec();
    // The weighted table(s) whose largest change between sweeps is the convergence test: each
    // margin's own table (R survey ≥ 4.5) or the cross-table of all margin variables (4.1–4.4).
    let offsets: Vec<usize> = data
        .factors
        .iter()
        .scan(0, |at, f| {
            let here = *at;
            *at += f.levels.len();
            Some(here)
        })
        .collect();
    let table_len = match spec.rake_test {
        RakeTest::CrossTable => data.n_cross,
        RakeTest::Margins => data.factors.iter().map(|f| f.levels.len()).sum(),
    };
    let tally = |w: &[f64], out: &mut [f64]| {
        out.iter_mut().for_each(|x| *x = 0.0);
        match spec.rake_test {
            RakeTest::CrossTable => {
                for i in 0..n {
                    out[data.cross[i] as usize] += w[i];
                }
            }
            RakeTest::Margins => {
                for (f, &at) in data.factors.iter().zip(&offsets) {
                    for i in 0..n {
                        out[at + f.codes[i] as usize] += w[i];
                    }
                }
            }
        }
    };
    let mut old = vec![0.0; table_len];
    let mut new = vec![0.0; table_len];
    tally(&w, &mut old);
    let mut psw: Vec<Vec<f64>> = vec![vec![0.0; n]; data.factors.len()];
    let kmax = data
        .factors
        .iter()
        .map(|f| f.levels.len())
        .max()
        .unwrap_or(0);
    let mut st = vec![0.0; kmax];
    let mut iter = 0;
    let mut converged = false;
    while iter < maxit {
        for (f, ps) in data.factors.iter().zip(psw.iter_mut()) {
            let k = f.levels.len();
            st[..k].iter_mut().for_each(|x| *x = 0.0);
            for i in 0..n {
                st[f.codes[i] as usize] += w[i];
            }
            if let Some(c) = (0..k).find(|&c| st[c] <= 0.0) {
                return Err(CalibrationError::EmptyCategory {
                    path: model.source.clone(),
                    line: f.lines[c],
                    variable: f.name.clone(),
                    category: f.levels[c].clone(),
                    detail: " with positive weight".into(),
                });
            }
            for c in 0..k {
                st[c] = f.totals[c] / st[c];
            }
            for i in 0..n {
                w[i] *= st[f.codes[i] as usize];
            }
            ps.copy_from_slice(&w);
        }
        if spec.replicate_sweeps.is_some() {
            iter += 1;
            continue;
        }
        tally(&w, &mut new);
        let delta = old
            .iter()
            .zip(&new)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if delta < epsilon {
            converged = true;
            break;
        }
        std::mem::swap(&mut old, &mut new);
        iter += 1;
    }
    if spec.replicate_sweeps.is_some() {
        converged = true;
    }
    let sweeps = if converged && spec.replicate_sweeps.is_none() {
        iter + 1
    } else {
        iter
    };
    let mut warnings = Vec::new();
    if !converged {
        let (column, rel, misfit) = margin_error(model, &w, spec).0;
        if !spec.force {
            return Err(CalibrationError::NotConverged {
                method: CalMethod::Rake.name().into(),
                iterations: sweeps,
                column,
                misfit,
                relative: rel,
                epsilon,
            });
        }
        warnings.push(format!(
            "raking did not converge after {sweeps} sweeps: {column} is off by {misfit} ({rel:.3e} relative); accepted because force = true"
        ));
    }
    let g: Vec<f64> = (0..n)
        .map(|i| if d[i] > 0.0 { w[i] / d[i] } else { 1.0 })
        .collect();
    let mut out = empty_result(data, Resid::Rake { psw }, w, g);
    out.iterations = sweeps;
    out.converged = converged;
    out.warnings = warnings;
    Ok(out)
}

/// Σ d m m' factorised, or the rank error naming the first dependent column.
fn factor_base(data: &ModelData, d: &[f64]) -> Result<SymFactor, CalibrationError> {
    let p = data.p();
    let mut t = vec![0.0; p * p];
    data.crossprod(|i| d[i], &mut t);
    let mut fac = SymFactor::new(p);
    fac.factor(&t)
        .map_err(|j| CalibrationError::RankDeficient {
            column: data.columns[j].clone(),
            detail: " with these base weights".into(),
        })?;
    Ok(fac)
}

fn linear(model: &CalibrationModel, d: &[f64]) -> Result<Calibrated, CalibrationError> {
    // R regcalibrate: g = 1 + m'(Σ d m m')⁻¹ (T − Σ d m).
    let data = &model.data;
    let p = data.p();
    let factor = factor_base(data, d)?;
    let mut rhs = vec![0.0; p];
    data.total(|i| d[i], &mut rhs);
    for j in 0..p {
        rhs[j] = data.population[j] - rhs[j];
    }
    factor.solve(&mut rhs);
    let g: Vec<f64> = (0..data.n).map(|i| 1.0 + data.dot(i, &rhs)).collect();
    let w: Vec<f64> = d.iter().zip(&g).map(|(d, g)| d * g).collect();
    let kind = Resid::Greg {
        d: d.to_vec(),
        g: g.clone(),
        factor,
    };
    Ok(empty_result(&model.data, kind, w, g))
}

fn greg_iterative(
    model: &CalibrationModel,
    d: &[f64],
    spec: &CalibrationSpec,
) -> Result<Calibrated, CalibrationError> {
    let data = &model.data;
    let n = data.n;
    let p = data.p();
    let pop = &data.population;
    let maxit = spec.maxit.unwrap_or(50);
    let epsilon = spec.epsilon.unwrap_or(1e-7);
    let (l, u) = spec.bounds.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    let dist = match spec.method {
        CalMethod::Logit => Distance::Logit {
            l,
            u,
            a: (u - l) / ((u - 1.0) * (1.0 - l)),
        },
        CalMethod::Raking => Distance::Raking { l, u },
        _ => Distance::Linear { l, u },
    };
    // R grake: rescale the weights when every total is over 20 times its sample estimate.
    let mut st = vec![0.0; p];
    data.total(|i| d[i], &mut st);
    let min_scale = (0..p).map(|j| pop[j] / st[j]).fold(f64::INFINITY, f64::min);
    let mut warnings = Vec::new();
    let scale = if min_scale > 20.0 {
        let s = (0..p).map(|j| pop[j] / st[j]).sum::<f64>() / p as f64;
        if spec.bounds.is_some() {
            warnings.push(format!(
                "base weights were rescaled by {s:.3} before calibration (as R does when every total is over 20 times its estimate); the bounds apply to g after rescaling"
            ));
        }
        Some(s)
    } else {
        None
    };
    let ww: Vec<f64> = match scale {
        Some(s) => d.iter().map(|x| x * s).collect(),
        None => d.to_vec(),
    };
    if let Some(s) = scale {
        st.iter_mut().for_each(|x| *x *= s);
    }
    if spec.bounds.is_some() {
        check_feasible(model, &ww, l, u)?;
    }
    let mut eta = vec![0.0; p];
    let mut deta = vec![0.0; p];
    let mut misfit = vec![0.0; p];
    let mut tmat = vec![0.0; p * p];
    let mut xeta = vec![0.0; n];
    let mut fm = vec![0.0; n];
    let mut deriv = vec![0.0; n];
    let mut fac = SymFactor::new(p);
    let update = |eta: &[f64], xeta: &mut [f64], fm: &mut [f64], deriv: &mut [f64]| -> bool {
        let mut finite = true;
        for i in 0..n {
            let x = data.dot(i, eta);
            xeta[i] = x;
            fm[i] = dist.fm1(x);
            deriv[i] = dist.df(x);
            finite &= fm[i].is_finite() && deriv[i].is_finite();
        }
        finite
    };
    let compute_misfit = |fm: &[f64], misfit: &mut [f64], tmp_total: &mut [f64]| {
        data.total(|i| ww[i] * fm[i], tmp_total);
        for j in 0..p {
            misfit[j] = pop[j] - st[j] - tmp_total[j];
        }
    };
    let mut tmp = vec![0.0; p];
    update(&eta, &mut xeta, &mut fm, &mut deriv);
    let mut iter = 1usize;
    let mut failed: Option<usize> = None;
    // Scaled misfit, the quantity the convergence test looks at.
    let misfit_norm = |misfit: &[f64]| -> f64 {
        (0..p)
            .map(|j| (misfit[j] / (1.0 + pop[j].abs())).powi(2))
            .sum::<f64>()
    };
    loop {
        data.crossprod(|i| ww[i] * deriv[i], &mut tmat);
        compute_misfit(&fm, &mut misfit, &mut tmp);
        let before = misfit_norm(&misfit);
        deta.copy_from_slice(&misfit);
        match fac.factor(&tmat) {
            Ok(()) => fac.solve(&mut deta),
            Err(_) => pinv_solve(&tmat, p, &mut deta),
        }
        for j in 0..p {
            eta[j] += deta[j];
        }
        let mut finite = update(&eta, &mut xeta, &mut fm, &mut deriv);
        while iter < maxit && !finite {
            iter += 1;
            for j in 0..p {
                deta[j] /= 2.0;
                eta[j] -= deta[j];
            }
            finite = update(&eta, &mut xeta, &mut fm, &mut deriv);
        }
        compute_misfit(&fm, &mut misfit, &mut tmp);
        // Safeguard R's plain Newton step: where a full step makes the misfit worse (far-off
        // margins, where exp overshoots and R's grake diverges), halve it until it helps. The
        // Newton direction is a descent direction of the misfit, and the solution is unique, so
        // wherever R converges without such a step the iterates are R's, and elsewhere they
        // reach the same solution.
        let mut halvings = 0;
        while finite && misfit_norm(&misfit) > before && halvings < 60 {
            halvings += 1;
            for j in 0..p {
                deta[j] /= 2.0;
                eta[j] -= deta[j];
            }
            finite = update(&eta, &mut xeta, &mut fm, &mut deriv);
            compute_misfit(&fm, &mut misfit, &mut tmp);
        }
        if (0..p).all(|j| misfit[j].abs() / (1.0 + pop[j].abs()) < epsilon) {
            break;
        }
        iter += 1;
        if iter > maxit {
            let worst = (0..p)
                .max_by(|&a, &b| {
                    let ra = misfit[a].abs() / (1.0 + pop[a].abs());
                    let rb = misfit[b].abs() / (1.0 + pop[b].abs());
                    ra.total_cmp(&rb)
                })
                .unwrap_or(0);
            failed = Some(worst);
            break;
        }
    }
    let s = scale.unwrap_or(1.0);
    let mut g: Vec<f64> = fm.iter().map(|f| (1.0 + f) * s).collect();
    let mut trimmed = 0;
    if let Some(Trim::G { lower, upper }) = spec.trim {
        // R calibrate(trim =): clamp g, give the trimmed weight to the others in proportion to d.
        let mut excess = 0.0;
        let mut inside = 0.0;
        for i in 0..n {
            let gn = g[i].max(lower).min(upper);
            if g[i] < lower || g[i] > upper {
                trimmed += 1;
                excess += (g[i] - gn) * d[i];
                g[i] = gn;
            } else {
                inside += d[i];
            }
        }
        if trimmed > 0 {
            if !(inside > 0.0) {
                return Err(CalibrationError::Trim {
                    lower,
                    upper,
                    message: "every g-weight is outside the trimming bounds".into(),
                });
            }
            let shift = excess / inside;
            // The untrimmed units are those whose untrimmed g was inside the bounds.
            for i in 0..n {
                let gi = (1.0 + fm[i]) * s;
                if !(gi < lower || gi > upper) {
                    g[i] += shift;
                }
            }
            warnings.push(format!(
                "{trimmed} g-weights were trimmed to [{lower}, {upper}]"
            ));
        }
    }
    let mut converged = true;
    if let Some(j) = failed {
        let rel = misfit[j].abs() / (1.0 + pop[j].abs());
        if trimmed > 0 {
            // R clears the failure after trimming; keep a warning.
            warnings.push(format!(
                "{} did not converge before trimming: {} was off by {} ({rel:.3e})",
                spec.method.name(),
                data.columns[j],
                misfit[j]
            ));
        } else if !spec.force {
            return Err(CalibrationError::NotConverged {
                method: spec.method.name().into(),
                iterations: iter,
                column: data.columns[j].clone(),
                misfit: misfit[j],
                relative: rel,
                epsilon,
            });
        } else {
            converged = false;
            warnings.push(format!(
                "{} did not converge in {iter} iterations: {} is off by {} ({rel:.3e} relative); accepted because force = true",
                spec.method.name(),
                data.columns[j],
                misfit[j]
            ));
        }
    }
    let w: Vec<f64> = d.iter().zip(&g).map(|(d, g)| d * g).collect();
    let factor = factor_base(data, d)?;
    let kind = Resid::Greg {
        d: d.to_vec(),
        g: g.clone(),
        factor,
    };
    let mut out = empty_result(data, kind, w, g);
    out.iterations = iter;
    out.converged = converged;
    out.trimmed = trimmed;
    out.warnings = warnings;
    Ok(out)
}

/// With L ≤ g ≤ U every dummy column's total must lie in [L Σd, U Σd] over its category.
fn check_feasible(
    model: &CalibrationModel,
    ww: &[f64],
    l: f64,
    u: f64,
) -> Result<(), CalibrationError> {
    let data = &model.data;
    let check = |column: String, sample: f64, population: f64| {
        if population < l * sample * (1.0 - 1e-12) || population > u * sample * (1.0 + 1e-12) {
            Err(CalibrationError::InfeasibleBounds {
                lower: l,
                upper: u,
                column,
                sample,
                population,
                needed: population / sample,
            })
        } else {
            Ok(())
        }
    };
    let total: f64 = ww.iter().sum();
    check(
        "(Intercept) (population size)".into(),
        total,
        data.population[0],
    )?;
    for f in &data.factors {
        let mut st = vec![0.0; f.levels.len()];
        for i in 0..data.n {
            st[f.codes[i] as usize] += ww[i];
        }
        for (c, lev) in f.levels.iter().enumerate() {
            check(format!("{} = {}", f.name, lev), st[c], f.totals[c])?;
        }
    }
    Ok(())
}

/// The calibration totals checked by `max_margin_error`: (name, relative, absolute) of the
/// worst one, and the largest relative error.
fn margin_error(
    model: &CalibrationModel,
    w: &[f64],
    spec: &CalibrationSpec,
) -> ((String, f64, f64), f64) {
    let data = &model.data;
    let mut worst = (String::new(), 0.0, 0.0);
    let mut consider = |name: &dyn Fn() -> String, got: f64, want: f64| {
        let abs = got - want;
        let rel = if want != 0.0 {
            (abs / want).abs()
        } else {
            abs.abs()
        };
        if rel > worst.1 || worst.0.is_empty() {
            worst = (name(), rel, abs);
        }
    };
    match spec.method {
        CalMethod::PostStratify | CalMethod::Rake => {
            let groups: Vec<(&[u32], &[f64], Vec<String>)> = match &data.joint {
                Some(j) => vec![(&j.codes, &j.totals, j.labels.clone())],
                None => data
                    .factors
                    .iter()
                    .map(|f| {
                        (
                            f.codes.as_slice(),
                            f.totals.as_slice(),
                            f.levels
                                .iter()
                                .map(|l| format!("{} = {l}", f.name))
                                .collect(),
                        )
                    })
                    .collect(),
            };
            for (codes, totals, labels) in groups {
                let mut st = vec![0.0; totals.len()];
                for i in 0..data.n {
                    st[codes[i] as usize] += w[i];
                }
                for c in 0..totals.len() {
                    if st[c] == 0.0 && spec.partial {
                        continue;
                    }
                    consider(&|| labels[c].clone(), st[c], totals[c]);
                }
            }
        }
        _ => {
            let mut t = vec![0.0; data.p()];
            data.total(|i| w[i], &mut t);
            for j in 0..data.p() {
                consider(&|| data.columns[j].clone(), t[j], data.population[j]);
            }
        }
    }
    let rel = worst.1;
    (worst, rel)
}

/// R `trimWeights` (survey 4.5): clamp to [lower, upper] and share the trimmed amount equally
/// among the weights that were inside the bounds; with `strict`, repeat until nothing is
/// outside, sharing each round's trimmings only among weights that have never been trimmed
/// (`do_trimWeights`'s `has_trimmed`). Survey 4.1 also gave a share to weights trimmed in an
/// earlier round, which could push them out again; 4.5 is followed (docs/weighting.md). When no
/// weight can take a share, R warns ("trimming failed") and keeps the clamped weights, whose
/// total then falls short: so does this, and the warning says by how much. Returns the number
/// of weights trimmed in the first round, and that warning.
fn trim_weights(
    w: &mut [f64],
    lower: f64,
    upper: f64,
    strict: bool,
) -> Result<(usize, Option<String>), CalibrationError> {
    let mut first = None;
    let mut has_trimmed = vec![false; w.len()];
    for _round in 0..10_000 {
        let is_out: Vec<bool> = w.iter().map(|&x| x < lower || x > upper).collect();
        let outside = is_out.iter().filter(|&&o| o).count();
        if first.is_none() {
            first = Some(outside);
        }
        if outside == 0 {
            return Ok((first.unwrap_or(0), None));
        }
        let can_take = is_out
            .iter()
            .zip(&has_trimmed)
            .filter(|&(&out, &trimmed)| !out && !trimmed)
            .count();
        let mut trimmings = 0.0;
        for x in w.iter_mut() {
            let xn = x.max(lower).min(upper);
            trimmings += *x - xn;
            *x = xn;
        }
        if can_take == 0 {
            return Ok((
                first.unwrap_or(0),
                Some(format!(
                    "trimming failed (as R warns): no weight inside [{lower}, {upper}] was left \
                     to take the trimmed amount, so the weights' total changed by {}",
                    -trimmings
                )),
            ));
        }
        let share = trimmings / can_take as f64;
        for ((x, &out), &trimmed) in w.iter_mut().zip(&is_out).zip(&has_trimmed) {
            if !out && !trimmed {
                *x += share;
            }
        }
        if !strict {
            return Ok((first.unwrap_or(0), None));
        }
        for (t, &out) in has_trimmed.iter_mut().zip(&is_out) {
            *t |= out;
        }
    }
    Err(CalibrationError::Trim {
        lower,
        upper,
        message: "strict trimming did not settle after 10000 rounds".into(),
    })
}

#[cfg(test)]
mod tests;
