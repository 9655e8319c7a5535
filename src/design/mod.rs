//! The sampling design of the estimation rows: strata, multistage cluster ids, finite population
//! corrections and design weights, as R's `svydesign(ids, strata, weights, fpc, nest)` builds them.
//!
//! A [`Design`] is built over the *design rows*: a subset of frame rows chosen by the caller
//! (normally the respondents). Strata and cluster ids are dictionary-encoded once into dense `u32`
//! codes per stage, so variance estimation only sums into `Vec`s.
//!
//! Stage structure follows R (`svydesign.default`, `as.fpc`):
//! - stage 1 strata are the strata column (or one stratum); stage-1 PSU ids are made unique within
//!   strata when `nest = true`, and must otherwise be nested in strata ("Clusters not nested in
//!   strata at top level");
//! - the strata of stage `s ≥ 2` are the units of stage `s − 1`, and units of stage `s` are counted
//!   within their stage `s − 1` unit;
//! - `n_h` (R's `fpc$sampsize`) is the number of distinct units of the stage-stratum among the
//!   design rows; the FPC gives `N_h` (R's `fpc$popsize`): values ≥ 1 are population counts,
//!   values < 1 sampling fractions (`N_h = n_h / f`). As in R, a design's FPC values are either all
//!   counts or all fractions.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

pub mod collapse;
pub mod pps;
pub mod variance;

use crate::frame::{CellState, ColumnData, Frame};
pub use collapse::{CollapseRule, CollapseSpec, CollapsedStratum};
pub use pps::PpsMethod;
pub use variance::VarianceError;

/// What to do with a stratum that has a single PSU (R's `options(survey.lonely.psu=)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LonelyPsu {
    /// Raise an error naming the stratum (R's default).
    #[default]
    Fail,
    /// The stratum contributes nothing to the variance.
    Remove,
    /// Treat the PSU as sampled with certainty: it contributes nothing.
    Certainty,
    /// Centre the lonely PSU total on the grand mean of PSU totals (survey ≥ 4.2).
    Adjust,
    /// Replace the stratum's contribution by the average of the other strata.
    Average,
    /// Merge the stratum with a partner stratum before any variance is computed
    /// ([`collapse`]); at later stages a unit with one sub-unit contributes nothing.
    Collapse,
}

impl LonelyPsu {
    /// R's option name.
    pub fn as_str(self) -> &'static str {
        match self {
            LonelyPsu::Fail => "fail",
            LonelyPsu::Remove => "remove",
            LonelyPsu::Certainty => "certainty",
            LonelyPsu::Adjust => "adjust",
            LonelyPsu::Average => "average",
            LonelyPsu::Collapse => "collapse",
        }
    }
}

impl fmt::Display for LonelyPsu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LonelyPsu {
    type Err = DesignError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(LonelyPsu::Fail),
            "remove" => Ok(LonelyPsu::Remove),
            "certainty" => Ok(LonelyPsu::Certainty),
            "adjust" => Ok(LonelyPsu::Adjust),
            "average" => Ok(LonelyPsu::Average),
            "collapse" => Ok(LonelyPsu::Collapse),
            _ => Err(DesignError::LonelyPsuOption(s.to_string())),
        }
    }
}

/// Frame column of the design weights derived from the FPCs when no weight column is named
/// ([`Design::weights_from_fpc`]).
pub const WEIGHT_FROM_FPC: &str = "_weight_from_fpc";

/// What the user declares about the design (column names refer to the frame).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesignSpec {
    /// Stratum columns: none (unstratified), one, or several whose combination of values is the
    /// stratum (pooled survey waves: `["wave", "stratum"]`).
    pub strata: Vec<String>,
    /// Cluster id column per stage; empty = each row is its own PSU.
    pub psu: Vec<String>,
    /// FPC column per stage (may be empty; may be shorter than `psu`, later stages then have none).
    pub fpc: Vec<String>,
    /// Design weight column.
    pub weight: String,
    /// PSU ids are only unique within strata (R's `nest = TRUE`).
    pub nest: bool,
    /// Lonely PSU treatment.
    pub lonely_psu: LonelyPsu,
    /// How `lonely_psu = "collapse"` finds partners.
    pub collapse: CollapseSpec,
    /// Apply `adjust` and `average` to a stratum where a domain has one PSU although the
    /// stratum has more (R's `options(survey.adjust.domain.lonely = TRUE)`).
    pub adjust_domain_lonely: bool,
    /// PPS sampling without replacement: the fpc columns are then the units' inclusion
    /// probabilities (R's `svydesign(fpc = ~p, pps = ...)`); `None` = stratified random sampling
    /// within stages, or with replacement without fpc.
    pub pps: Option<PpsMethod>,
}

/// Error raised while building a design.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DesignError {
    /// Unknown lonely PSU option.
    #[error(
        "unknown lonely_psu option \"{0}\" (expected fail, remove, certainty, adjust, average or collapse)"
    )]
    LonelyPsuOption(String),
    /// A column named in the design is not in the data.
    #[error("design column {0} does not exist in the data")]
    MissingColumn(String),
    /// A design column has no value in a design row.
    #[error("design column {column}, row {row}: missing value (design variables must be complete)")]
    MissingValue {
        /// Column name.
        column: String,
        /// Frame row (0-based).
        row: usize,
    },
    /// A numeric design column holds an unusable value.
    #[error("design column {column}, row {row}: invalid value {value} ({reason})")]
    InvalidValue {
        /// Column name.
        column: String,
        /// Frame row (0-based).
        row: usize,
        /// Offending value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The weight or FPC column is text.
    #[error("design column {0} must be numeric")]
    NotNumeric(String),
    /// A row index outside the frame.
    #[error("design row {row} is outside the frame ({n_rows} rows)")]
    RowOutOfRange {
        /// Requested row.
        row: usize,
        /// Rows in the frame.
        n_rows: usize,
    },
    /// More FPC columns than stages.
    #[error("{n_fpc} fpc columns given for {n_stages} sampling stage(s)")]
    FpcStages {
        /// FPC columns.
        n_fpc: usize,
        /// Stages.
        n_stages: usize,
    },
    /// PSU id in two strata without `nest`.
    #[error(
        "PSU {psu} (column {column}) occurs in strata {stratum_a} and {stratum_b}: clusters are not nested in strata; set nest = true if PSU ids are only unique within strata"
    )]
    NotNested {
        /// PSU column.
        column: String,
        /// PSU id.
        psu: String,
        /// First stratum.
        stratum_a: String,
        /// Second stratum.
        stratum_b: String,
    },
    /// No weight column, and not every stage has an FPC to derive the weights from.
    #[error(
        "no design weight column and {n_fpc} fpc column(s) for {n_stages} sampling stage(s): give [design] weight, or an fpc for every stage (the weights are then the product of N/n over the stages, as R's svydesign derives them)"
    )]
    WeightsNeedFpc {
        /// FPC columns given.
        n_fpc: usize,
        /// Stages.
        n_stages: usize,
    },
    /// FPC varies within a stratum.
    #[error(
        "fpc column {column} is not constant within stratum {stratum}: values {a} and {b}; an fpc is the stratum's population size (or sampling fraction), the same for every unit of the stratum{pps_hint}"
    )]
    FpcNotConstant {
        /// FPC column.
        column: String,
        /// Stratum label.
        stratum: String,
        /// One value.
        a: f64,
        /// Another value.
        b: f64,
        /// What to do when the values look like unit inclusion probabilities.
        pps_hint: String,
    },
    /// FPC mixes population counts and fractions.
    #[error(
        "fpc values must be all population counts (>= 1) or all sampling fractions (<= 1): column {column} has {count} and {fraction}"
    )]
    FpcMixed {
        /// Column of the count.
        column: String,
        /// A count value.
        count: f64,
        /// A fraction value.
        fraction: f64,
    },
    /// Fewer population units than sampled ones.
    #[error(
        "fpc column {column}, stratum {stratum}: population size {popsize} is smaller than the {sampsize} sampled units (fpc implies more than 100% sampling)"
    )]
    FpcTooSmall {
        /// FPC column.
        column: String,
        /// Stratum label.
        stratum: String,
        /// Implied N_h.
        popsize: f64,
        /// n_h.
        sampsize: f64,
    },
    /// No design rows.
    #[error("the design has no rows")]
    Empty,
    /// A collapse column differs between rows of one stratum.
    #[error(
        "design column {column} is not constant within stratum {stratum}: values {a} and {b}; collapse_order and collapse_within describe strata, so each stratum must have one value"
    )]
    CollapseColumnVaries {
        /// Column.
        column: String,
        /// Stratum label.
        stratum: String,
        /// One value.
        a: String,
        /// Another value.
        b: String,
    },
    /// A lonely stratum has no stratum to be merged with.
    #[error(
        "stratum {stratum} has only one responding PSU and no other stratum{} to be collapsed with: {}",
        within.as_ref().map(|w| format!(" with the same {w}")).unwrap_or_default(),
        if within.is_some() { "drop or change collapse_within, or choose another lonely_psu option" } else { "the design has a single stratum; choose another lonely_psu option" }
    )]
    NoCollapsePartner {
        /// The lonely stratum.
        stratum: String,
        /// The `collapse_within` column, if any.
        within: Option<String>,
    },
    /// Unknown `pps` method.
    #[error("unknown pps method \"{0}\" (expected brewer, overton or hartley-rao)")]
    PpsMethod(String),
    /// `pps` without any fpc column.
    #[error(
        "pps = \"{method}\" needs the first-stage inclusion probabilities as fpc: give [design] fpc = \"<column of probabilities>\" (R's svydesign(fpc = ~p, pps = ...))"
    )]
    PpsNeedsFpc {
        /// The method asked for.
        method: PpsMethod,
    },
    /// Overton or Hartley–Rao asked for a multistage design.
    #[error(
        "pps = \"{method}\" supports one sampling stage only ({n_stages} psu columns given), as in R; use pps = \"brewer\" for multistage PPS designs"
    )]
    PpsMultistage {
        /// The method asked for.
        method: PpsMethod,
        /// Stages given.
        n_stages: usize,
    },
    /// Under `pps`, an fpc value that is not a probability.
    #[error(
        "fpc column {column}, row {row}: value {value} is not an inclusion probability in (0, 1]; with pps = \"{method}\" the fpc gives each unit's inclusion probability{hint}"
    )]
    PpsProbability {
        /// FPC column.
        column: String,
        /// Frame row (0-based).
        row: usize,
        /// Offending value.
        value: f64,
        /// The method in force.
        method: PpsMethod,
        /// What to do when the value looks like a population size.
        hint: String,
    },
    /// Under `pps`, the inclusion probability varies within a sampling unit.
    #[error(
        "fpc column {column}: inclusion probability varies within unit {unit}: values {a} and {b}; under pps the fpc is the unit's inclusion probability, the same for every row of the unit"
    )]
    PpsNotConstant {
        /// FPC column.
        column: String,
        /// Unit label (`stratum/unit` at later stages).
        unit: String,
        /// One value.
        a: f64,
        /// Another value.
        b: f64,
    },
}

/// One sampling stage, over the design rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stage {
    /// Stage-stratum code per design row (dense).
    pub(crate) stratum: Vec<u32>,
    /// Unit (cluster) code per design row (dense, unique across the stage).
    pub(crate) unit: Vec<u32>,
    /// Stage-stratum of each unit.
    pub(crate) unit_stratum: Vec<u32>,
    /// n_h: sampled units per stage-stratum.
    pub(crate) sampsize: Vec<f64>,
    /// N_h per stage-stratum (`f64::INFINITY` without FPC).
    pub(crate) popsize: Vec<f64>,
    /// Whether an FPC was given for this stage.
    pub(crate) has_fpc: bool,
    /// Display label of each stage-stratum (for messages).
    pub(crate) stratum_label: Vec<String>,
    /// Inclusion probability of each unit under PPS without replacement (empty otherwise, and
    /// for a PPS stage without fpc).
    pub(crate) inclusion: Vec<f64>,
}

/// The sampling design of the estimation rows (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    pub(crate) rows: Vec<usize>,
    pub(crate) weights: Vec<f64>,
    pub(crate) stages: Vec<Stage>,
    pub(crate) lonely: LonelyPsu,
    pub(crate) adjust_domain_lonely: bool,
    pub(crate) collapsed: Vec<CollapsedStratum>,
    pub(crate) pps: Option<PpsMethod>,
}

/// A design column's cells as hashable keys, one per design row; labels are made only where a
/// message or a stratum name needs one ([`label_of`]), not for every row.
fn keys_of(frame: &Frame, name: &str, rows: &[usize]) -> Result<Vec<u64>, DesignError> {
    let col = frame
        .column(name)
        .ok_or_else(|| DesignError::MissingColumn(name.to_string()))?;
    let mut keys = Vec::with_capacity(rows.len());
    for &r in rows {
        if col.state[r] != CellState::Value {
            return Err(DesignError::MissingValue {
                column: name.to_string(),
                row: r,
            });
        }
        match &col.data {
            ColumnData::Num(v) => {
                let x = v[r];
                if !x.is_finite() {
                    return Err(DesignError::InvalidValue {
                        column: name.to_string(),
                        row: r,
                        value: format!("{x}"),
                        reason: "not a finite number".into(),
                    });
                }
                // -0.0 and 0.0 are the same id.
                keys.push(if x == 0.0 { 0 } else { x.to_bits() });
            }
            ColumnData::Text { codes, .. } => keys.push(u64::from(codes[r])),
        }
    }
    Ok(keys)
}

/// The label of design row `i`'s cell in column `name` (already checked by [`keys_of`]).
fn label_of(frame: &Frame, name: &str, rows: &[usize], i: usize) -> String {
    frame
        .column(name)
        .and_then(|c| c.display(rows[i]))
        .unwrap_or_default()
}

fn numeric_of(frame: &Frame, name: &str, rows: &[usize]) -> Result<Vec<f64>, DesignError> {
    let col = frame
        .column(name)
        .ok_or_else(|| DesignError::MissingColumn(name.to_string()))?;
    let ColumnData::Num(v) = &col.data else {
        return Err(DesignError::NotNumeric(name.to_string()));
    };
    rows.iter()
        .map(|&r| {
            if col.state[r] != CellState::Value {
                Err(DesignError::MissingValue {
                    column: name.to_string(),
                    row: r,
                })
            } else {
                Ok(v[r])
            }
        })
        .collect()
}

/// Dense codes for `(parent, key)` pairs, in order of first appearance. Survey files keep a
/// PSU's rows together, so a row repeating the previous row's pair takes its code without a
/// lookup.
fn encode(parent: &[u32], keys: &[u64]) -> (Vec<u32>, Vec<(u32, usize)>) {
    let mut map: HashMap<(u32, u64), u32> = HashMap::new();
    let mut first: Vec<(u32, usize)> = Vec::new();
    let mut last: Option<((u32, u64), u32)> = None;
    let codes = parent
        .iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (&p, &k))| {
            if let Some((pair, code)) = last
                && pair == (p, k)
            {
                return code;
            }
            let code = *map.entry((p, k)).or_insert_with(|| {
                first.push((p, i));
                (first.len() - 1) as u32
            });
            last = Some(((p, k), code));
            code
        })
        .collect();
    (codes, first)
}

/// The design rows are some rows of the frame, at least one.
fn check_rows(frame: &Frame, rows: &[usize]) -> Result<(), DesignError> {
    if rows.is_empty() {
        return Err(DesignError::Empty);
    }
    if let Some(&r) = rows.iter().find(|&&r| r >= frame.n_rows()) {
        return Err(DesignError::RowOutOfRange {
            row: r,
            n_rows: frame.n_rows(),
        });
    }
    Ok(())
}

impl Design {
    /// Build the design of `rows` (frame row indices) as R's `svydesign` would.
    pub fn build(frame: &Frame, rows: &[usize], spec: &DesignSpec) -> Result<Design, DesignError> {
        check_rows(frame, rows)?;
        let weights = numeric_of(frame, &spec.weight, rows)?;
        for (i, &w) in weights.iter().enumerate() {
            if !w.is_finite() || w < 0.0 {
                return Err(DesignError::InvalidValue {
                    column: spec.weight.clone(),
                    row: rows[i],
                    value: format!("{w}"),
                    reason: "weights must be finite and non-negative".into(),
                });
            }
        }
        let mut design = Design::build_with_weights(frame, rows, spec, weights)?;
        if spec.lonely_psu == LonelyPsu::Collapse {
            design.collapsed = design.collapse_lonely_strata(frame, &spec.collapse)?;
        }
        Ok(design)
    }

    /// The design weights R's `svydesign(ids, strata, fpc)` derives when no weights are given:
    /// the product over the stages of N/n, with n the units sampled in the row's
    /// stage-stratum among `rows` (every sampled unit, respondents or not) and N its FPC as a
    /// population count (or n/f for a sampling fraction f). Every stage needs an FPC.
    pub fn weights_from_fpc(
        frame: &Frame,
        rows: &[usize],
        spec: &DesignSpec,
    ) -> Result<Vec<f64>, DesignError> {
        let n_stages = spec.psu.len().max(1);
        if spec.fpc.len() < n_stages {
            return Err(DesignError::WeightsNeedFpc {
                n_fpc: spec.fpc.len(),
                n_stages,
            });
        }
        let design = Design::build_with_weights(frame, rows, spec, vec![1.0; rows.len()])?;
        Ok((0..rows.len())
            .map(|i| {
                design
                    .stages
                    .iter()
                    .map(|st| {
                        if st.inclusion.is_empty() {
                            let h = st.stratum[i] as usize;
                            st.popsize[h] / st.sampsize[h]
                        } else {
                            // R: popsize n_h/π_i over sampsize n_h.
                            1.0 / st.inclusion[st.unit[i] as usize]
                        }
                    })
                    .product()
            })
            .collect())
    }

    /// [`Design::build`] with the design weights of `rows` given.
    fn build_with_weights(
        frame: &Frame,
        rows: &[usize],
        spec: &DesignSpec,
        weights: Vec<f64>,
    ) -> Result<Design, DesignError> {
        check_rows(frame, rows)?;
        let n = rows.len();
        let n_stages = spec.psu.len().max(1);
        if spec.fpc.len() > n_stages {
            return Err(DesignError::FpcStages {
                n_fpc: spec.fpc.len(),
                n_stages,
            });
        }

        if let Some(method) = spec.pps {
            if spec.fpc.is_empty() {
                return Err(DesignError::PpsNeedsFpc { method });
            }
            if method != PpsMethod::Brewer && n_stages > 1 {
                return Err(DesignError::PpsMultistage { method, n_stages });
            }
        }

        // Stage-1 strata.
        let (stratum1, strat_labels): (Vec<u32>, Vec<String>) = if spec.strata.is_empty() {
            (vec![0; n], vec!["(all)".to_string()])
        } else {
            // Each column's values nested within the previous columns' combination.
            let mut codes = vec![0u32; n];
            let mut first = Vec::new();
            for s in &spec.strata {
                let keys = keys_of(frame, s, rows)?;
                (codes, first) = encode(&codes, &keys);
            }
            let lab = first
                .iter()
                .map(|&(_, i)| {
                    spec.strata
                        .iter()
                        .map(|s| label_of(frame, s, rows, i))
                        .collect::<Vec<_>>()
                        .join(":")
                })
                .collect();
            (codes, lab)
        };

        // FPC values per stage (raw), decided counts vs fractions over all stages as R.
        let mut fpc_raw: Vec<Vec<f64>> = Vec::new();
        for name in &spec.fpc {
            let v = numeric_of(frame, name, rows)?;
            for (i, &x) in v.iter().enumerate() {
                if let Some(method) = spec.pps
                    && !(x > 0.0 && x <= 1.0)
                {
                    return Err(DesignError::PpsProbability {
                        column: name.clone(),
                        row: rows[i],
                        value: x,
                        method,
                        hint: if x > 1.0 {
                            "; a value above 1 looks like a population size: give the \
                             probabilities, or leave pps out for stratified random sampling \
                             with population sizes"
                                .into()
                        } else {
                            String::new()
                        },
                    });
                }
                if x.is_nan() || x <= 0.0 {
                    return Err(DesignError::InvalidValue {
                        column: name.clone(),
                        row: rows[i],
                        value: format!("{x}"),
                        reason: "fpc must be a positive population size or sampling fraction"
                            .into(),
                    });
                }
            }
            fpc_raw.push(v);
        }
        let mut count_seen: Option<(String, f64)> = None;
        let mut frac_seen: Option<(String, f64)> = None;
        for (name, v) in spec.fpc.iter().zip(&fpc_raw) {
            for &x in v {
                if x > 1.0 && count_seen.is_none() {
                    count_seen = Some((name.clone(), x));
                }
                if x < 1.0 && frac_seen.is_none() {
                    frac_seen = Some((name.clone(), x));
                }
            }
        }
        if let (Some((column, count)), Some((_, fraction))) = (&count_seen, &frac_seen) {
            return Err(DesignError::FpcMixed {
                column: column.clone(),
                count: *count,
                fraction: *fraction,
            });
        }
        let fpc_is_popsize = count_seen.is_some();

        let mut stages: Vec<Stage> = Vec::with_capacity(n_stages);
        let mut stage_strata = stratum1;
        let mut stage_labels = strat_labels;
        for s in 0..n_stages {
            // Unit codes.
            let (unit, first): (Vec<u32>, Vec<(u32, usize)>) = if spec.psu.is_empty() {
                let unit: Vec<u32> = (0..n as u32).collect();
                let first = (0..n).map(|i| (stage_strata[i], i)).collect();
                (unit, first)
            } else {
                let keys = keys_of(frame, &spec.psu[s], rows)?;
                if s == 0 && !spec.nest {
                    // Ids are global: code them alone and check nesting in strata.
                    let zeros = vec![0u32; n];
                    let (codes, first) = encode(&zeros, &keys);
                    let mut owner: Vec<u32> = first.iter().map(|&(_, i)| stage_strata[i]).collect();
                    for i in 0..n {
                        let u = codes[i] as usize;
                        if owner[u] != stage_strata[i] {
                            let (a, b) = (owner[u] as usize, stage_strata[i] as usize);
                            return Err(DesignError::NotNested {
                                column: spec.psu[s].clone(),
                                psu: label_of(frame, &spec.psu[s], rows, i),
                                stratum_a: stage_labels[a].clone(),
                                stratum_b: stage_labels[b].clone(),
                            });
                        }
                        owner[u] = stage_strata[i];
                    }
                    let first = first.iter().map(|&(_, i)| (stage_strata[i], i)).collect();
                    (codes, first)
                } else {
                    // Within the stage-stratum (the stratum at stage 1 with nest, the
                    // previous-stage unit later on).
                    encode(&stage_strata, &keys)
                }
            };
            let n_strata = stage_labels.len();
            let unit_stratum: Vec<u32> = first.iter().map(|&(h, _)| h).collect();
            let mut sampsize = vec![0.0; n_strata];
            for &h in &unit_stratum {
                sampsize[h as usize] += 1.0;
            }
            let mut popsize = vec![f64::INFINITY; n_strata];
            let has_fpc = s < fpc_raw.len();
            let mut inclusion = Vec::new();
            if has_fpc && spec.pps.is_some() {
                // Unit-level probabilities; the stratum has no single N_h (R's popsize n_h/π_i
                // per unit), so `popsize` stays infinite and only the PPS kernels read them.
                let name = &spec.fpc[s];
                let v = &fpc_raw[s];
                let mut seen: Vec<Option<f64>> = vec![None; unit_stratum.len()];
                for i in 0..n {
                    let u = unit[i] as usize;
                    match seen[u] {
                        None => seen[u] = Some(v[i]),
                        Some(a) if a != v[i] => {
                            let h = stage_strata[i] as usize;
                            let label = if spec.psu.is_empty() {
                                format!("row {}", rows[i])
                            } else {
                                label_of(frame, &spec.psu[s], rows, i)
                            };
                            return Err(DesignError::PpsNotConstant {
                                column: name.clone(),
                                unit: if s == 0 && !spec.nest {
                                    label
                                } else {
                                    format!("{}/{}", stage_labels[h], label)
                                },
                                a,
                                b: v[i],
                            });
                        }
                        _ => {}
                    }
                }
                inclusion = seen.into_iter().map(|p| p.unwrap_or(1.0)).collect();
            } else if has_fpc {
                let name = &spec.fpc[s];
                let v = &fpc_raw[s];
                let mut seen: Vec<Option<f64>> = vec![None; n_strata];
                for i in 0..n {
                    let h = stage_strata[i] as usize;
                    match seen[h] {
                        None => seen[h] = Some(v[i]),
                        Some(a) if a != v[i] => {
                            let probabilities = a <= 1.0 && v[i] <= 1.0;
                            return Err(DesignError::FpcNotConstant {
                                column: name.clone(),
                                stratum: stage_labels[h].clone(),
                                a,
                                b: v[i],
                                pps_hint: if probabilities {
                                    ". Values that differ from unit to unit look like inclusion \
                                     probabilities of a PPS design: set [design] pps = \
                                     \"brewer\" | \"overton\" | \"hartley-rao\" for PPS \
                                     sampling without replacement, or leave fpc out to use the \
                                     with-replacement approximation (R's default for PPS samples)"
                                        .into()
                                } else {
                                    String::new()
                                },
                            });
                        }
                        _ => {}
                    }
                }
                for h in 0..n_strata {
                    let f = seen[h].unwrap_or(f64::INFINITY);
                    let big_n = if fpc_is_popsize { f } else { sampsize[h] / f };
                    if big_n < sampsize[h] {
                        return Err(DesignError::FpcTooSmall {
                            column: name.clone(),
                            stratum: stage_labels[h].clone(),
                            popsize: big_n,
                            sampsize: sampsize[h],
                        });
                    }
                    popsize[h] = big_n;
                }
            }
            // Labels of this stage's units become the next stage's strata labels.
            let unit_labels: Vec<String> = if s + 1 < n_stages {
                first
                    .iter()
                    .map(|&(h, i)| {
                        let label = label_of(frame, &spec.psu[s], rows, i);
                        format!("{}/{}", stage_labels[h as usize], label)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            stages.push(Stage {
                stratum: stage_strata.clone(),
                unit: unit.clone(),
                unit_stratum,
                sampsize,
                popsize,
                has_fpc,
                stratum_label: stage_labels.clone(),
                inclusion,
            });
            stage_strata = unit;
            stage_labels = unit_labels;
        }
        Ok(Design {
            rows: rows.to_vec(),
            weights,
            stages,
            lonely: spec.lonely_psu,
            adjust_domain_lonely: spec.adjust_domain_lonely,
            collapsed: Vec::new(),
            pps: spec.pps,
        })
    }

    /// The strata merged by `lonely_psu = "collapse"`, in order of the lonely strata.
    pub fn collapsed_strata(&self) -> &[CollapsedStratum] {
        &self.collapsed
    }

    /// Number of design rows.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// Frame row index of each design row.
    pub fn frame_rows(&self) -> &[usize] {
        &self.rows
    }

    /// Design weights of the design rows.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Lonely PSU treatment in force.
    pub fn lonely_psu(&self) -> LonelyPsu {
        self.lonely
    }

    /// PPS without-replacement method in force (`None`: fpc as population sizes or fractions).
    pub fn pps(&self) -> Option<PpsMethod> {
        self.pps
    }

    /// Number of sampling stages (1 for a one-stage or element design).
    pub fn n_stages(&self) -> usize {
        self.stages.len()
    }

    /// Number of (first-stage) strata.
    pub fn n_strata(&self) -> usize {
        self.stages[0].sampsize.len()
    }

    /// Number of first-stage PSUs.
    pub fn n_psu(&self) -> usize {
        self.stages[0].unit_stratum.len()
    }

    /// First-stage PSU code (0..n_psu) of each design row.
    pub fn psu_of_row(&self) -> &[u32] {
        &self.stages[0].unit
    }

    /// First-stage stratum code (0..n_strata) of each design row.
    pub fn stratum_of_row(&self) -> &[u32] {
        &self.stages[0].stratum
    }

    /// Stratum code of each first-stage PSU.
    pub fn stratum_of_psu(&self) -> &[u32] {
        &self.stages[0].unit_stratum
    }

    /// Label of a first-stage stratum (its value in the strata column).
    pub fn stratum_label(&self, h: usize) -> &str {
        &self.stages[0].stratum_label[h]
    }

    /// R's `degf()`: distinct first-stage PSUs minus distinct strata among the rows with
    /// `include[i]` (the caller passes "in the (sub)design and weight ≠ 0").
    pub fn degf(&self, include: &[bool]) -> f64 {
        let st = &self.stages[0];
        let mut psu_seen = vec![false; st.unit_stratum.len()];
        let mut str_seen = vec![false; st.sampsize.len()];
        let (mut np, mut ns) = (0usize, 0usize);
        for (i, &inc) in include.iter().enumerate().take(self.rows.len()) {
            if inc {
                let u = st.unit[i] as usize;
                if !psu_seen[u] {
                    psu_seen[u] = true;
                    np += 1;
                }
                let h = st.stratum[i] as usize;
                if !str_seen[h] {
                    str_seen[h] = true;
                    ns += 1;
                }
            }
        }
        np as f64 - ns as f64
    }

    /// Linearization variance of a total of `scores` (see [`variance::variance`]).
    pub fn variance(&self, scores: &[f64], present: Option<&[bool]>) -> Result<f64, VarianceError> {
        match self.pps {
            Some(method) => pps::variance(self, method, scores, present),
            None => variance::variance(self, scores, present),
        }
    }

    /// Variance from first-stage PSU totals (single-stage designs; see
    /// [`variance::variance_from_psu_totals`]).
    pub fn variance_from_psu_totals(
        &self,
        psu_totals: &[f64],
        psu_present: Option<&[bool]>,
    ) -> Result<f64, VarianceError> {
        match self.pps {
            Some(method) => pps::variance_from_psu_totals(self, method, psu_totals, psu_present),
            None => variance::variance_from_psu_totals(self, psu_totals, psu_present),
        }
    }
}
