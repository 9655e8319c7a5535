//! Weighting schemes: from design weights to the final analysis weights of the respondents.
//!
//! Each scheme is a pure function of the base weights (so the replicate stage can run the same
//! chain on every replicate). Implemented here: the plain design weights, and weighting-class
//! nonresponse adjustment. Calibration (post-stratification, raking, GREG) extends this chain.

pub mod calibration;
mod linalg;
pub mod margins;

use std::collections::BTreeMap;

use crate::config::WeightingSpec;
use crate::frame::Frame;

/// Final weights of one scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    /// Scheme name (the `weighting` output column).
    pub name: String,
    /// Weight of each respondent, in the order of the respondent rows passed in.
    pub weights: Vec<f64>,
    /// True when the weights were calibrated to population totals (changes how domains are
    /// subset and how variance is computed; see `docs/methods.md`).
    pub calibrated: bool,
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
    /// The scheme asks for a step this build does not provide.
    #[error("weighting \"{scheme}\": {step} is not available yet")]
    Unsupported {
        /// Scheme.
        scheme: String,
        /// The step.
        step: String,
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

/// Compute every scheme.
///
/// * `frame`: all used rows (respondents and unit nonrespondents);
/// * `row_numbers`: the data row number of each frame row (for messages);
/// * `base_weights`: design weight of each frame row;
/// * `respondents`: frame row indices of the respondents (the output weights follow this order).
///
/// Nonresponse adjustment (weighting classes c): for a respondent i in class c,
/// `w_i = d_i · Σ_{j∈s_c} d_j / Σ_{j∈r_c} d_j`, where s_c are all sampled units of the class and
/// r_c its respondents (R: `design_weight * ave(...)`; Särndal & Lundström 2005, ch. 8).
pub fn compute(
    frame: &Frame,
    row_numbers: &[u64],
    base_weights: &[f64],
    respondents: &[usize],
    specs: &[WeightingSpec],
) -> Result<Vec<Scheme>, WeightingError> {
    specs
        .iter()
        .map(|spec| {
            if spec.calibration.is_some() {
                return Err(WeightingError::Unsupported {
                    scheme: spec.name.clone(),
                    step: "calibration".into(),
                });
            }
            let weights = match &spec.nonresponse_classes {
                None => respondents.iter().map(|&r| base_weights[r]).collect(),
                Some(classes) => nonresponse_adjust(
                    frame,
                    row_numbers,
                    base_weights,
                    respondents,
                    classes,
                    &spec.name,
                )?,
            };
            Ok(Scheme {
                name: spec.name.clone(),
                weights,
                calibrated: false,
            })
        })
        .collect()
}

fn nonresponse_adjust(
    frame: &Frame,
    row_numbers: &[u64],
    base_weights: &[f64],
    respondents: &[usize],
    classes: &[String],
    scheme: &str,
) -> Result<Vec<f64>, WeightingError> {
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
    // Class keys as the joined display values; a BTreeMap keeps the class order deterministic.
    let mut key_of_row = Vec::with_capacity(n);
    let mut class_index: BTreeMap<String, usize> = BTreeMap::new();
    for r in 0..n {
        let mut parts = Vec::with_capacity(columns.len());
        for col in &columns {
            let v = col
                .display(r)
                .ok_or_else(|| WeightingError::MissingClassValue {
                    scheme: scheme.to_string(),
                    row: row_numbers[r],
                    column: col.name.clone(),
                })?;
            parts.push(format!("{}={}", col.name, v));
        }
        let key = parts.join(",");
        let next = class_index.len();
        let k = *class_index.entry(key).or_insert(next);
        key_of_row.push(k);
    }
    let n_classes = class_index.len();
    let mut sampled = vec![0.0; n_classes];
    let mut sampled_n = vec![0usize; n_classes];
    let mut responded = vec![0.0; n_classes];
    for r in 0..n {
        sampled[key_of_row[r]] += base_weights[r];
        sampled_n[key_of_row[r]] += 1;
    }
    for &r in respondents {
        responded[key_of_row[r]] += base_weights[r];
    }
    for (key, &k) in &class_index {
        if responded[k] <= 0.0 {
            return Err(WeightingError::EmptyClass {
                scheme: scheme.to_string(),
                class: key.clone(),
                sampled: sampled_n[k],
            });
        }
    }
    Ok(respondents
        .iter()
        .map(|&r| base_weights[r] * sampled[key_of_row[r]] / responded[key_of_row[r]])
        .collect())
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
    pub fn of(weights: &[f64]) -> WeightSummary {
        let mut sorted = weights.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let quantile = |p: f64| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = h.ceil() as usize;
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        };
        let sum: f64 = weights.iter().sum();
        let sum_sq: f64 = weights.iter().map(|w| w * w).sum();
        let min = sorted.first().copied().unwrap_or(f64::NAN);
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        WeightSummary {
            n,
            sum,
            min,
            q1: quantile(0.25),
            median: quantile(0.5),
            q3: quantile(0.75),
            max,
            ratio_max_min: max / min,
            kish_deff: n as f64 * sum_sq / (sum * sum),
            effective_n: sum * sum / sum_sq,
            nonpositive: weights.iter().filter(|&&w| w <= 0.0).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
