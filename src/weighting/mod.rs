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
