//! Replicate-weight variance estimation, as R `survey`'s `as.svrepdesign()` / `svrepdesign()`
//! build replicate designs and `svrVar()` turns replicate estimates into a variance.
//!
//! A [`ReplicateDesign`] stores, for a design built from a [`Design`], one adjustment *factor
//! per replication unit and replicate* (`n_units × R`, not `rows × R`): the replicate-r
//! analysis weight of row i is `factor[r][unit(i)] · w_i`, expanded on the fly. The units are
//! the first-stage PSUs, or with [`Certainty::Ssu`] the second-stage units of certainty strata
//! ([`ReplicationUnits`]). Replicate weights supplied
//! with the data (R `svrepdesign(repweights = ...)`) are stored as given, per row.
//!
//! The variance of a statistic θ with replicate estimates θ_r is (R `svrVar`)
//!
//! `V = scale · Σ_r rscale_r (θ_r − θ̄)²`, θ̄ = mean of the θ_r (`mse = false`, R's default)
//! or the full-sample θ̂ (`mse = true`).
//!
//! Methods, factors, scales, degrees of freedom and the R/Stata/SAS conventions are documented
//! in `docs/variance.md` (references: Wolter 2007; Rust & Rao 1996; Canty & Davison 1999;
//! Rao & Wu 1988; Fay & Train 1995; Judkins 1990).

mod groups;
pub mod hadamard;
#[cfg(test)]
mod reference;
pub mod rng;
pub(crate) mod stage;
#[cfg(test)]
mod stage_tests;
#[cfg(test)]
mod tests;

pub use stage::{ReplicateDfRule, ReplicateNonresponse, ReplicateProfile, ReplicateStageError};

use rayon::prelude::*;

use crate::design::{Design, LonelyPsu};
use crate::frame::{CellState, ColumnData, Frame};
use rng::Pcg32;

/// How replicates are formed.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicateMethod {
    /// Delete-one-PSU jackknife for unstratified designs (R `type = "JK1"`).
    Jk1,
    /// Stratified delete-one-PSU jackknife (R `type = "JKn"`).
    Jkn,
    /// Balanced repeated replication, 2 PSUs per stratum (R `type = "BRR"`).
    Brr,
    /// Fay's modified BRR with factors ρ and 2 − ρ (R `type = "Fay", fay.rho = rho`).
    Fay {
        /// Fay's ρ, 0 ≤ ρ < 1.
        rho: f64,
    },
    /// Canty–Davison with-replacement bootstrap of PSUs (R `type = "bootstrap"`).
    Bootstrap {
        /// Number of replicates (R ≥ 2).
        replicates: usize,
        /// Seed of the PCG32 streams (one stream per stratum × replicate).
        seed: u64,
    },
    /// Rao–Wu (n_h − 1)-out-of-n_h bootstrap (R `type = "subbootstrap"`).
    Subbootstrap {
        /// Number of replicates (R ≥ 2).
        replicates: usize,
        /// Seed of the PCG32 streams.
        seed: u64,
    },
    /// Rao–Wu (n_h − 1)-out-of-n_h bootstrap as Stata's `bsweights, n(-1)` and SAS's
    /// `varmethod = bootstrap` form it: the subbootstrap's draws and factors, with strata of one
    /// unit following the design's `lonely_psu` instead of being refused.
    RaoWu {
        /// Number of replicates (R ≥ 2).
        replicates: usize,
        /// Seed of the PCG32 streams.
        seed: u64,
    },
    /// Successive-difference replication (Fay & Train 1995).
    Sdr {
        /// Number of replicates, a Hadamard order; default: R's `hadamard(n_psu)` order.
        replicates: Option<usize>,
        /// Column whose value orders the replication units (ties and `None`: file order).
        sort: Option<String>,
        /// ACS convention: the last unit is paired with the first.
        circular: bool,
    },
    /// Replicate weights supplied as data columns (R `svrepdesign(repweights = ...)`).
    Supplied(SuppliedSpec),
}

impl ReplicateMethod {
    /// Short name (R's `type`).
    pub fn name(&self) -> &'static str {
        match self {
            ReplicateMethod::Jk1 => "JK1",
            ReplicateMethod::Jkn => "JKn",
            ReplicateMethod::Brr => "BRR",
            ReplicateMethod::Fay { .. } => "Fay",
            ReplicateMethod::Bootstrap { .. } => "bootstrap",
            ReplicateMethod::Subbootstrap { .. } => "subbootstrap",
            ReplicateMethod::RaoWu { .. } => "bootstrap (Rao-Wu)",
            ReplicateMethod::Sdr { .. } => "successive-difference",
            ReplicateMethod::Supplied(s) => s.kind.name(),
        }
    }
}

/// The replication type of supplied weights; decides the default `scale` and `rscales` as R's
/// `svrepdesign(type = ...)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SuppliedKind {
    /// BRR: scale 1/R (a given scale is ignored, as R).
    Brr,
    /// Fay: scale 1/(R(1 − ρ)²).
    Fay {
        /// Fay's ρ.
        rho: f64,
    },
    /// JK1: scale (R − 1)/R unless given.
    Jk1,
    /// JKn: rscales must be given.
    Jkn,
    /// Bootstrap: scale 1/(R − 1) unless given.
    Bootstrap,
    /// Successive difference: scale 4/R, rscales 1 (given values ignored).
    Sdr,
    /// Anything else: scale and rscales default to 1.
    Other,
}

impl SuppliedKind {
    /// R's type name.
    pub fn name(&self) -> &'static str {
        match self {
            SuppliedKind::Brr => "BRR",
            SuppliedKind::Fay { .. } => "Fay",
            SuppliedKind::Jk1 => "JK1",
            SuppliedKind::Jkn => "JKn",
            SuppliedKind::Bootstrap => "bootstrap",
            SuppliedKind::Sdr => "successive-difference",
            SuppliedKind::Other => "other",
        }
    }
}

/// Replicate weights read from the data (R `svrepdesign(repweights=, type=, scale=, rscales=,
/// combined.weights=)`).
#[derive(Debug, Clone, PartialEq)]
pub struct SuppliedSpec {
    /// Replicate weight columns, in replicate order.
    pub columns: Vec<String>,
    /// Replication type.
    pub kind: SuppliedKind,
    /// Overall scale; `None` = R's default for the type.
    pub scale: Option<f64>,
    /// Per-replicate scales (length 1 or R); `None` = R's default for the type.
    pub rscales: Option<Vec<f64>>,
    /// The columns are analysis weights (R `combined.weights = TRUE`, the default) rather than
    /// factors to multiply the design weight by.
    pub combined_weights: bool,
    /// Declared number of replicates, checked against the number of columns.
    pub replicates: Option<usize>,
}

/// Options common to all methods.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReplicateOptions {
    /// Centre on the full-sample estimate (R `mse = TRUE`) instead of the replicate mean.
    pub mse: bool,
    /// Replication units of certainty strata.
    pub certainty: Certainty,
}

/// What replicates do in certainty strata (first-stage FPC with N_h = n_h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Certainty {
    /// First-stage PSUs are the replication units everywhere; a certainty stratum gets no
    /// replicate (R `as.svrepdesign`), so its second-stage variance is lost.
    #[default]
    Psu,
    /// In certainty strata the second-stage units are the replication units, each certainty
    /// PSU a replication stratum of its own (`[variance] certainty = "ssu"`).
    Ssu,
}

/// How the replicate degrees of freedom were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DegfRule {
    /// Known rank from the construction (JK1: n − 1; JKn: replicates − strata; BRR/Fay:
    /// strata).
    Exact,
    /// Numerical rank (tolerance 1e-5, as R's `qr(..., tol = 1e-5)`) minus 1.
    NumericalRank,
}

/// Error raised while building replicates.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReplicateError {
    /// JK1 asked for a stratified design.
    #[error(
        "Can't use JK1 for a stratified design (as R's as.svrepdesign): use JKn, bootstrap or subbootstrap"
    )]
    Jk1Stratified,
    /// A stratified method asked for an unstratified design.
    #[error("{0} needs a stratified design: use JK1 or bootstrap for an unstratified design")]
    Unstratified(&'static str),
    /// BRR / Fay on strata without exactly 2 PSUs.
    #[error(
        "BRR and Fay need exactly 2 PSUs per stratum, but {}; R's brrweights can split large or merge small strata (options large = \"split\"/\"merge\", small = \"split\"/\"merge\"), which is not done here: form pseudo-strata of 2 PSUs (variance strata) before replication",
        .0.iter().map(|(s, n)| format!("stratum {s} has {n}")).collect::<Vec<_>>().join(", ")
    )]
    NotPaired(Vec<(String, usize)>),
    /// A stratum with one PSU under lonely_psu = fail.
    #[error(
        "stratum {0} has only one PSU (lonely_psu = fail); choose lonely_psu = adjust, average, remove or certainty"
    )]
    LonelyPsu(String),
    /// A stratum has too few PSUs for the method.
    #[error("{method}: stratum {stratum} has {n} PSU(s), at least {min} are needed")]
    TooFewPsus {
        /// Method name.
        method: &'static str,
        /// Stratum label.
        stratum: String,
        /// PSUs in it.
        n: usize,
        /// Minimum needed.
        min: usize,
    },
    /// Every stratum was sampled exhaustively: no replicate carries variance.
    #[error(
        "all strata were exhaustively sampled (fpc = sample size): there is no sampling variance"
    )]
    Exhaustive,
    /// Bad number of replicates.
    #[error("{0}")]
    Replicates(String),
    /// Fay's ρ out of range.
    #[error("Fay's rho must be in [0, 1), got {0}")]
    Rho(f64),
    /// Supplied weights asked of a constructor without data.
    #[error("supplied replicate weights need the data: use ReplicateDesign::build with the frame")]
    NeedsFrame,
    /// A replicate weight column is absent.
    #[error("replicate weight column {0} does not exist in the data")]
    MissingColumn(String),
    /// A replicate weight column is text.
    #[error("replicate weight column {0} must be numeric")]
    NotNumeric(String),
    /// A replicate weight is missing, NaN, infinite or negative.
    #[error("replicate weight column {column}, row {row}: invalid value {value} ({reason})")]
    InvalidWeight {
        /// Column name.
        column: String,
        /// Frame row (0-based).
        row: usize,
        /// Offending value.
        value: String,
        /// Why.
        reason: String,
    },
    /// Number of columns differs from the declared count.
    #[error("{got} replicate weight columns given, but replicates = {expected}")]
    ReplicateCount {
        /// Declared.
        expected: usize,
        /// Columns.
        got: usize,
    },
    /// rscales of the wrong length.
    #[error("rscales has length {got}, should be 1 or the number of replicates ({expected})")]
    RscalesLength {
        /// Number of replicates.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// JKn combined weights need rscales.
    #[error("supplied JKn replicate weights need rscales ((n_h − 1)/n_h per replicate)")]
    MissingRscales,
    /// Replicate weights of the wrong length.
    #[error("replicate {replicate} has {got} weights, the design has {expected} rows")]
    Length {
        /// Replicate (0-based).
        replicate: usize,
        /// Rows given.
        got: usize,
        /// Rows expected.
        expected: usize,
    },
    /// Invalid scale.
    #[error("scale must be finite and positive, got {0}")]
    Scale(f64),
    /// `certainty = "ssu"` on a design without a second stage.
    #[error(
        "certainty = \"ssu\" replicates the second-stage units of certainty strata, but the design has one sampling stage: name the second-stage unit in [design] psu (e.g. psu = [\"psu\", \"household\"]) or remove certainty"
    )]
    CertaintyOneStage,
    /// `certainty = "ssu"` with a method that needs pairs of PSUs.
    #[error(
        "{0} needs exactly 2 units per stratum and cannot replicate the second-stage units of certainty strata (certainty = \"ssu\"): use jkn, bootstrap or sdr, or pair the units into variance strata before replication"
    )]
    CertaintyPairs(&'static str),
    /// A one-unit stratum under `lonely_psu = adjust` for the Rao–Wu bootstrap.
    #[error(
        "stratum {0} has only one unit: the Rao–Wu bootstrap (profile stata/sas) resamples n_h − 1 units and has no analogue of lonely_psu = adjust; choose lonely_psu = remove, certainty or average, or collapse strata"
    )]
    LonelyAdjust(String),
    /// The SDR sort column is not in the data.
    #[error(
        "sort column {0} does not exist in the data: name a column of the data file in [variance] sort"
    )]
    SortColumn(String),
}

/// Replicate adjustments: factors per replication unit or row-level analysis weights.
#[derive(Debug, Clone, PartialEq)]
enum Factors {
    /// `f[r * n_psu + p]`; row i's weight is `f[r][psu_of_row[i]] · base[i]`. The units are the
    /// first-stage PSUs, or with [`Certainty::Ssu`] the second-stage units of certainty strata
    /// and the PSUs elsewhere ([`ReplicationUnits`]).
    Psu {
        psu_of_row: Vec<u32>,
        n_psu: usize,
        f: Vec<f64>,
    },
    /// Analysis weights `w[r * n + i]` as supplied.
    Rows { n: usize, w: Vec<f64> },
}

/// A replicate design: replicate adjustments, `scale`, `rscales`, `mse` and replicate df.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicateDesign {
    method: ReplicateMethod,
    base: Vec<f64>,
    factors: Factors,
    n_rep: usize,
    scale: f64,
    rscales: Vec<f64>,
    mse: bool,
    degf: f64,
    degf_rule: DegfRule,
}

/// Whether the design declared strata (R's `has.strata`): a design built without a strata
/// column has one stratum labelled `(all)`.
fn has_strata(d: &Design) -> bool {
    d.n_strata() > 1 || d.stratum_label(0) != "(all)"
}

/// First-stage PSUs of each stratum, in order of first appearance.
fn psus_by_stratum(d: &Design) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); d.n_strata()];
    for (p, &h) in d.stratum_of_psu().iter().enumerate() {
        out[h as usize].push(p);
    }
    out
}

/// A first-stage stratum is a certainty stratum when 1 − n_h/N_h is below this (the threshold
/// of the Taylor variance, `design::variance`).
const CERTAINTY_FPC: f64 = 1e-7;

/// The units replicates delete or resample, grouped into replication strata: the first-stage
/// PSUs within their strata; with [`Certainty::Ssu`], in every certainty stratum the
/// second-stage units, each certainty PSU a replication stratum of its own (the stage-2 strata
/// of R's `multistage` are the PSUs), placed where its first-stage stratum was.
pub(crate) struct ReplicationUnits {
    /// Replication unit of every design row.
    unit_of_row: Vec<u32>,
    n_units: usize,
    /// Units of each replication stratum, in order of first appearance.
    by_stratum: Vec<Vec<usize>>,
    /// N of each replication stratum (∞ without FPC).
    popsize: Vec<f64>,
    /// Label of each replication stratum, for messages (`stratum/PSU` for a certainty PSU).
    label: Vec<String>,
    /// Number of certainty PSUs whose second-stage units replace them.
    certainty_psus: usize,
}

impl ReplicationUnits {
    pub(crate) fn new(d: &Design, certainty: Certainty) -> Result<Self, ReplicateError> {
        let st = &d.stages[0];
        let is_certainty = |h: usize| certainty == Certainty::Ssu && certainty_stratum(d, h);
        if certainty == Certainty::Ssu && d.n_stages() < 2 {
            return Err(ReplicateError::CertaintyOneStage);
        }
        if !(0..d.n_strata()).any(is_certainty) {
            let mut by_stratum = vec![Vec::new(); d.n_strata()];
            for (p, &h) in d.stratum_of_psu().iter().enumerate() {
                by_stratum[h as usize].push(p);
            }
            return Ok(ReplicationUnits {
                unit_of_row: d.psu_of_row().to_vec(),
                n_units: d.n_psu(),
                by_stratum,
                popsize: st.popsize.clone(),
                label: st.stratum_label.clone(),
                certainty_psus: 0,
            });
        }
        let st2 = &d.stages[1];
        // Replication unit of every PSU of an ordinary stratum and of every SSU of a certainty
        // stratum, numbered in order of first appearance over the rows.
        let mut of_psu = vec![u32::MAX; d.n_psu()];
        let mut of_ssu = vec![u32::MAX; st2.unit_stratum.len()];
        let mut n_units = 0u32;
        let mut unit_of_row = Vec::with_capacity(d.n_rows());
        for i in 0..d.n_rows() {
            let (h, p, s) = (
                st.stratum[i] as usize,
                st.unit[i] as usize,
                st2.unit[i] as usize,
            );
            let slot = if is_certainty(h) {
                &mut of_ssu[s]
            } else {
                &mut of_psu[p]
            };
            if *slot == u32::MAX {
                *slot = n_units;
                n_units += 1;
            }
            unit_of_row.push(*slot);
        }
        let mut by_stratum = Vec::new();
        let mut popsize = Vec::new();
        let mut label = Vec::new();
        let mut certainty_psus = 0;
        for h in 0..d.n_strata() {
            if is_certainty(h) {
                // Stage-2 strata are the PSUs (code = PSU code).
                for (p, _) in st
                    .unit_stratum
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s as usize == h)
                {
                    let units: Vec<usize> = st2
                        .unit_stratum
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| **q as usize == p)
                        .map(|(s, _)| of_ssu[s] as usize)
                        .collect();
                    by_stratum.push(units);
                    popsize.push(st2.popsize[p]);
                    label.push(st2.stratum_label[p].clone());
                    certainty_psus += 1;
                }
            } else {
                by_stratum.push(
                    st.unit_stratum
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s as usize == h)
                        .map(|(p, _)| of_psu[p] as usize)
                        .collect(),
                );
                popsize.push(st.popsize[h]);
                label.push(st.stratum_label[h].clone());
            }
        }
        Ok(ReplicationUnits {
            unit_of_row,
            n_units: n_units as usize,
            by_stratum,
            popsize,
            label,
            certainty_psus,
        })
    }

    /// Sampling fraction complement 1 − n/N of replication stratum `h` (1 without FPC).
    fn fpc(&self, h: usize) -> f64 {
        let big_n = self.popsize[h];
        if big_n.is_finite() {
            fpc_of(self.by_stratum[h].len() as f64, big_n)
        } else {
            1.0
        }
    }
}

/// Whether first-stage stratum `h` was sampled with certainty (N_h = n_h).
pub(crate) fn certainty_stratum(d: &Design, h: usize) -> bool {
    let st = &d.stages[0];
    st.popsize[h].is_finite() && fpc_of(st.sampsize[h], st.popsize[h]) < CERTAINTY_FPC
}

/// Number of replication units ([`ReplicationUnits`]) without building them: first-stage PSUs,
/// with [`Certainty::Ssu`] each certainty PSU counted as its second-stage units.
pub(crate) fn n_replication_units(d: &Design, certainty: Certainty) -> usize {
    if certainty == Certainty::Psu || d.n_stages() < 2 {
        return d.n_psu();
    }
    let mut ssus_of_psu = vec![0usize; d.n_psu()];
    for &p in &d.stages[1].unit_stratum {
        ssus_of_psu[p as usize] += 1;
    }
    d.stratum_of_psu()
        .iter()
        .zip(&ssus_of_psu)
        .map(|(&h, &ssus)| {
            if certainty_stratum(d, h as usize) {
                ssus
            } else {
                1
            }
        })
        .sum()
}

/// 1 − n/N.
fn fpc_of(n: f64, big_n: f64) -> f64 {
    (big_n - n) / big_n
}

impl ReplicateDesign {
    /// Build replicates for `design` (R `as.svrepdesign(design, type = ...)`), reading supplied
    /// replicate weight columns from `frame` at the design's rows.
    pub fn build(
        frame: &Frame,
        design: &Design,
        method: &ReplicateMethod,
        options: &ReplicateOptions,
    ) -> Result<ReplicateDesign, ReplicateError> {
        match method {
            ReplicateMethod::Supplied(spec) => {
                let rows = design.frame_rows();
                let mut reps = Vec::with_capacity(spec.columns.len());
                for name in &spec.columns {
                    let col = frame
                        .column(name)
                        .ok_or_else(|| ReplicateError::MissingColumn(name.clone()))?;
                    let ColumnData::Num(v) = &col.data else {
                        return Err(ReplicateError::NotNumeric(name.clone()));
                    };
                    let mut w = Vec::with_capacity(rows.len());
                    for &r in rows {
                        if col.state[r] != CellState::Value {
                            return Err(ReplicateError::InvalidWeight {
                                column: name.clone(),
                                row: r,
                                value: "(missing)".into(),
                                reason: "replicate weights must be complete".into(),
                            });
                        }
                        w.push(v[r]);
                    }
                    reps.push(w);
                }
                let mut out =
                    Self::supplied(design.weights(), reps, spec, options).map_err(|e| match e {
                        ReplicateError::InvalidWeight {
                            column,
                            row,
                            value,
                            reason,
                        } => ReplicateError::InvalidWeight {
                            column,
                            row: rows.get(row).copied().unwrap_or(row),
                            value,
                            reason,
                        },
                        e => e,
                    })?;
                out.method = method.clone();
                Ok(out)
            }
            _ => Self::constructed(Some(frame), design, method, options),
        }
    }

    /// Build constructed replicates (every method but [`ReplicateMethod::Supplied`], and SDR
    /// without a sort column).
    pub fn from_design(
        design: &Design,
        method: &ReplicateMethod,
        options: &ReplicateOptions,
    ) -> Result<ReplicateDesign, ReplicateError> {
        Self::constructed(None, design, method, options)
    }

    fn constructed(
        frame: Option<&Frame>,
        design: &Design,
        method: &ReplicateMethod,
        options: &ReplicateOptions,
    ) -> Result<ReplicateDesign, ReplicateError> {
        let units = ReplicationUnits::new(design, options.certainty)?;
        let n_psu = units.n_units;
        let certainty_ssu = units.certainty_psus > 0;
        let built = match method {
            ReplicateMethod::Jk1 => jk1(design, &units)?,
            ReplicateMethod::Jkn => jkn(design, &units)?,
            ReplicateMethod::Brr | ReplicateMethod::Fay { .. } if certainty_ssu => {
                return Err(ReplicateError::CertaintyPairs(method.name()));
            }
            ReplicateMethod::Brr => brr(design, 0.0)?,
            ReplicateMethod::Fay { rho } => {
                if !(0.0..1.0).contains(rho) {
                    return Err(ReplicateError::Rho(*rho));
                }
                brr(design, *rho)?
            }
            ReplicateMethod::Bootstrap { replicates, seed } => {
                bootstrap(design, &units, *replicates, *seed, Draws::WithReplacement)?
            }
            ReplicateMethod::Subbootstrap { replicates, seed } => {
                bootstrap(design, &units, *replicates, *seed, Draws::Subbootstrap)?
            }
            ReplicateMethod::RaoWu { replicates, seed } => {
                bootstrap(design, &units, *replicates, *seed, Draws::RaoWu)?
            }
            ReplicateMethod::Sdr {
                replicates,
                sort,
                circular,
            } => {
                let order = match sort {
                    None => (0..n_psu).collect(),
                    Some(column) => {
                        let frame = frame.ok_or(ReplicateError::NeedsFrame)?;
                        sorted_units(frame, design, &units, column)?
                    }
                };
                sdr(&order, *replicates, *circular)?
            }
            ReplicateMethod::Supplied(_) => return Err(ReplicateError::NeedsFrame),
        };
        let n_rep = built.rscales.len();
        let (degf, degf_rule) = match built.exact_rank {
            Some(rank) => (rank as f64 - 1.0, DegfRule::Exact),
            None => (
                numerical_rank(&built.f, n_psu, n_rep) as f64 - 1.0,
                DegfRule::NumericalRank,
            ),
        };
        Ok(ReplicateDesign {
            method: method.clone(),
            base: design.weights().to_vec(),
            factors: Factors::Psu {
                psu_of_row: units.unit_of_row,
                n_psu,
                f: built.f,
            },
            n_rep,
            scale: built.scale,
            rscales: built.rscales,
            mse: options.mse,
            degf,
            degf_rule,
        })
    }

    /// Override the scale (package conventions: Stata's 1/R, SAS's 1/(R − 1) for the bootstrap).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// Override the replicate df (package conventions, or the rank of re-weighted replicates).
    pub fn set_degf(&mut self, degf: f64, rule: DegfRule) {
        self.degf = degf;
        self.degf_rule = rule;
    }

    /// Replicate weights given as vectors (one per replicate, one value per design row), over
    /// full-sample weights `base` (R `svrepdesign(repweights, weights, type, scale, rscales,
    /// combined.weights, mse)`). Values must be finite and non-negative.
    pub fn supplied(
        base: &[f64],
        repweights: Vec<Vec<f64>>,
        spec: &SuppliedSpec,
        options: &ReplicateOptions,
    ) -> Result<ReplicateDesign, ReplicateError> {
        let n = base.len();
        let n_rep = repweights.len();
        if let Some(expected) = spec.replicates
            && expected != n_rep
        {
            return Err(ReplicateError::ReplicateCount {
                expected,
                got: n_rep,
            });
        }
        if n_rep < 2 {
            return Err(ReplicateError::Replicates(format!(
                "{n_rep} replicate weight column(s): at least 2 are needed"
            )));
        }
        let mut w = Vec::with_capacity(n * n_rep);
        for (r, col) in repweights.iter().enumerate() {
            if col.len() != n {
                return Err(ReplicateError::Length {
                    replicate: r,
                    got: col.len(),
                    expected: n,
                });
            }
            let name = spec
                .columns
                .get(r)
                .cloned()
                .unwrap_or_else(|| format!("replicate {}", r + 1));
            for (i, &x) in col.iter().enumerate() {
                if !x.is_finite() || x < 0.0 {
                    return Err(ReplicateError::InvalidWeight {
                        column: name,
                        row: i,
                        value: format!("{x}"),
                        reason: "replicate weights must be finite and non-negative".into(),
                    });
                }
                w.push(if spec.combined_weights {
                    x
                } else {
                    x * base[i]
                });
            }
        }
        let nr = n_rep as f64;
        let rscales_given = match &spec.rscales {
            None => None,
            Some(v) if v.len() == 1 => Some(vec![v[0]; n_rep]),
            Some(v) if v.len() == n_rep => Some(v.clone()),
            Some(v) => {
                return Err(ReplicateError::RscalesLength {
                    expected: n_rep,
                    got: v.len(),
                });
            }
        };
        let ones = vec![1.0; n_rep];
        let (scale, rscales) = match spec.kind {
            SuppliedKind::Brr => (1.0 / nr, rscales_given.unwrap_or(ones)),
            SuppliedKind::Fay { rho } => {
                if !(0.0..1.0).contains(&rho) {
                    return Err(ReplicateError::Rho(rho));
                }
                (
                    1.0 / (nr * (1.0 - rho) * (1.0 - rho)),
                    rscales_given.unwrap_or(ones),
                )
            }
            SuppliedKind::Jk1 => (
                spec.scale.unwrap_or((nr - 1.0) / nr),
                rscales_given.unwrap_or(ones),
            ),
            SuppliedKind::Jkn => (
                spec.scale.unwrap_or(1.0),
                rscales_given.ok_or(ReplicateError::MissingRscales)?,
            ),
            SuppliedKind::Bootstrap => (
                spec.scale.unwrap_or(1.0 / (nr - 1.0)),
                rscales_given.unwrap_or(ones),
            ),
            SuppliedKind::Sdr => (4.0 / nr, ones),
            SuppliedKind::Other => (spec.scale.unwrap_or(1.0), rscales_given.unwrap_or(ones)),
        };
        if !scale.is_finite() || scale <= 0.0 {
            return Err(ReplicateError::Scale(scale));
        }
        let degf = numerical_rank(&w, n, n_rep) as f64 - 1.0;
        Ok(ReplicateDesign {
            method: ReplicateMethod::Supplied(spec.clone()),
            base: base.to_vec(),
            factors: Factors::Rows { n, w },
            n_rep,
            scale,
            rscales,
            mse: options.mse,
            degf,
            degf_rule: DegfRule::NumericalRank,
        })
    }

    /// The method the replicates were built with.
    pub fn method(&self) -> &ReplicateMethod {
        &self.method
    }

    /// Number of replicates R.
    pub fn n_replicates(&self) -> usize {
        self.n_rep
    }

    /// Number of design rows.
    pub fn n_rows(&self) -> usize {
        self.base.len()
    }

    /// Overall scale of the variance.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Per-replicate scales.
    pub fn rscales(&self) -> &[f64] {
        &self.rscales
    }

    /// Centring on the full-sample estimate.
    pub fn mse(&self) -> bool {
        self.mse
    }

    /// Replicate degrees of freedom (R `degf()` of an `svyrep.design`: rank of the replicate
    /// weight matrix − 1).
    pub fn degf(&self) -> f64 {
        self.degf
    }

    /// Whether [`Self::degf`] is exact by construction or a numerical rank.
    pub fn degf_rule(&self) -> DegfRule {
        self.degf_rule
    }

    /// Full-sample (design) weights.
    pub fn base_weights(&self) -> &[f64] {
        &self.base
    }

    /// Replication unit of every design row (the index into [`Self::psu_factors`]): the
    /// first-stage PSU, or with [`Certainty::Ssu`] the second-stage unit in certainty strata;
    /// `None` for supplied weights.
    pub fn unit_of_row(&self) -> Option<&[u32]> {
        match &self.factors {
            Factors::Psu { psu_of_row, .. } => Some(psu_of_row),
            Factors::Rows { .. } => None,
        }
    }

    /// Factors of replicate `r`, one per replication unit (the first-stage PSUs unless
    /// [`Certainty::Ssu`]), for constructed methods.
    pub fn psu_factors(&self, r: usize) -> Option<&[f64]> {
        match &self.factors {
            Factors::Psu { n_psu, f, .. } => Some(&f[r * n_psu..(r + 1) * n_psu]),
            Factors::Rows { .. } => None,
        }
    }

    /// Analysis weights of replicate `r` into `out` (length = design rows).
    pub fn replicate_weights_into(&self, r: usize, out: &mut [f64]) {
        match &self.factors {
            Factors::Rows { n, w } => out.copy_from_slice(&w[r * n..(r + 1) * n]),
            Factors::Psu { .. } => self.weights_over(r, &self.base, out),
        }
    }

    /// Analysis weights of replicate `r`.
    pub fn replicate_weights(&self, r: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.base.len()];
        self.replicate_weights_into(r, &mut out);
        out
    }

    /// Replicate `r` applied to other full-sample weights `base` (e.g. nonresponse-adjusted
    /// weights before re-calibration): `factor_r,i · base_i`. For supplied weights the factor
    /// is the supplied weight over the design weight (0 where the design weight is 0).
    pub fn weights_over(&self, r: usize, base: &[f64], out: &mut [f64]) {
        match &self.factors {
            Factors::Psu {
                psu_of_row,
                n_psu,
                f,
            } => {
                let fr = &f[r * n_psu..(r + 1) * n_psu];
                for ((o, &p), &b) in out.iter_mut().zip(psu_of_row).zip(base) {
                    *o = fr[p as usize] * b;
                }
            }
            Factors::Rows { n, w } => {
                let wr = &w[r * n..(r + 1) * n];
                for (((o, &x), &b), &b0) in out.iter_mut().zip(wr).zip(base).zip(&self.base) {
                    *o = if b0 != 0.0 { x / b0 * b } else { 0.0 };
                }
            }
        }
    }

    /// Variance of one statistic from its replicate estimates `thetas` (R `svrVar`). Replicates
    /// with a non-finite estimate are dropped with their rscale (R's `na.omit`); `full` is the
    /// full-sample estimate, used when `mse` is set.
    pub fn variance(&self, thetas: &[f64], full: f64) -> f64 {
        svr_var(thetas, full, self.scale, &self.rscales, self.mse)
    }
}

/// R's `svrVar` for one statistic (see the module docs); non-finite replicates are dropped.
pub fn svr_var(thetas: &[f64], full: f64, scale: f64, rscales: &[f64], mse: bool) -> f64 {
    let pairs: Vec<(f64, f64)> = thetas
        .iter()
        .zip(rscales)
        .filter(|(t, _)| t.is_finite())
        .map(|(&t, &s)| (t, s))
        .collect();
    if pairs.is_empty() {
        return f64::NAN;
    }
    let centre = if mse {
        full
    } else {
        let (s, n) = pairs
            .iter()
            .filter(|(_, rs)| *rs > 0.0)
            .fold((0.0, 0usize), |(s, n), (t, _)| (s + t, n + 1));
        s / n as f64
    };
    scale
        * pairs
            .iter()
            .map(|(t, rs)| (t - centre) * (t - centre) * rs)
            .sum::<f64>()
}

/// Numerical rank of an `n × m` matrix stored column after column (`a[r * n + i]` is row i of
/// column r), by modified Gram–Schmidt with column pivoting by order: a column is dependent when
/// its residual norm falls below 1e-5 of its original norm (R `qr(x, tol = 1e-5)`, LINPACK
/// `dqrdc2`, which also tests each column against its original norm in column order).
///
/// A tall matrix is first tried on an evenly spaced subset of its rows: the least-squares
/// residual of a column on the previous columns over all rows is at least that over any subset
/// of rows, so a column whose subset residual is at least 1e-5 of its norm over *all* rows is
/// independent by the full-matrix rule. When every column passes, the rank is m, as the full
/// computation would give, at a fraction of its cost (a bootstrap's replicate weights are
/// almost always of full rank); otherwise the full computation decides.
pub fn numerical_rank(a: &[f64], n: usize, m: usize) -> usize {
    if full_rank_on_subset(a, n, m) {
        return m;
    }
    rank_by_gram_schmidt(a, n, m)
}

/// Relative residual norm below which a column is dependent (R `qr(x, tol = 1e-5)`).
const RANK_TOL: f64 = 1e-5;

/// Rows of the subset tried first, per column.
const SUBSET_ROWS_PER_COLUMN: usize = 4;

/// True when the columns of `a` are independent by the rule of [`numerical_rank`], shown on a
/// subset of the rows (false: not shown, which does not mean dependent).
fn full_rank_on_subset(a: &[f64], n: usize, m: usize) -> bool {
    let k = SUBSET_ROWS_PER_COLUMN * m;
    if m == 0 || n < 2 * k {
        return false;
    }
    let step = n / k;
    let norms: Vec<f64> = (0..m)
        .map(|r| {
            let column = &a[r * n..(r + 1) * n];
            dot(column, column).sqrt()
        })
        .collect();
    let sample: Vec<f64> = (0..m)
        .flat_map(|r| (0..k).map(move |j| a[r * n + j * step]))
        .collect();
    full_rank_shown(&sample, k, m, &norms)
}

/// `k` rows sampled for [`full_rank_shown`] out of `n`, evenly spaced; none when there are too
/// few rows for the subset to say anything (fewer than 2k).
pub(crate) fn rank_subset_rows(n: usize, k: usize) -> Option<Vec<usize>> {
    (k > 0 && n >= 2 * k).then(|| (0..k).map(|j| j * (n / k)).collect())
}

/// True when the `m` columns of `sample` (`k` sampled rows each, column after column) are
/// independent by the rule of [`numerical_rank`] against the whole columns' norms `norms`:
/// then the whole matrix has rank `m`.
pub(crate) fn full_rank_shown(sample: &[f64], k: usize, m: usize, norms: &[f64]) -> bool {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(m);
    for r in 0..m {
        let mut v: Vec<f64> = sample[r * k..(r + 1) * k].to_vec();
        for _ in 0..2 {
            for q in &basis {
                let d = dot(q, &v);
                for (x, y) in v.iter_mut().zip(q) {
                    *x -= d * y;
                }
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm == 0.0 || norm < RANK_TOL * norms[r] {
            return false;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        basis.push(v);
    }
    true
}

fn rank_by_gram_schmidt(a: &[f64], n: usize, m: usize) -> usize {
    const TOL: f64 = RANK_TOL;
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in 0..m {
        let mut v: Vec<f64> = a[r * n..(r + 1) * n].to_vec();
        let norm0 = dot(&v, &v).sqrt();
        if norm0 == 0.0 {
            continue;
        }
        for _ in 0..2 {
            for q in &basis {
                let d = dot(q, &v);
                for (x, y) in v.iter_mut().zip(q) {
                    *x -= d * y;
                }
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm >= TOL * norm0 {
            for x in v.iter_mut() {
                *x /= norm;
            }
            basis.push(v);
            if basis.len() == n {
                break;
            }
        }
    }
    basis.len()
}

/// Σ a_i b_i with eight partial sums, which the compiler can keep in vector registers (a
/// single running sum is a dependency chain the optimiser may not reorder); the rank test
/// compares norms at a relative tolerance of 1e-5, far above this rounding difference.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Factors (replicate-major, `n_psu` per replicate), scales and, when known, the exact rank.
struct Built {
    f: Vec<f64>,
    scale: f64,
    rscales: Vec<f64>,
    exact_rank: Option<usize>,
}

fn jk1(d: &Design, units: &ReplicationUnits) -> Result<Built, ReplicateError> {
    if has_strata(d) {
        return Err(ReplicateError::Jk1Stratified);
    }
    if units.by_stratum.len() > 1 {
        return Err(ReplicateError::Replicates(
            "JK1 deletes PSUs of one stratum, but certainty = \"ssu\" makes every certainty PSU a replication stratum: use jkn (with a strata column) or bootstrap".into(),
        ));
    }
    let n = units.n_units;
    if n < 2 {
        return Err(ReplicateError::TooFewPsus {
            method: "JK1",
            stratum: units.label[0].clone(),
            n,
            min: 2,
        });
    }
    let fpc = units.fpc(0);
    if fpc == 0.0 {
        return Err(ReplicateError::Exhaustive);
    }
    let nf = n as f64;
    let mut f = vec![nf / (nf - 1.0); n * n];
    for j in 0..n {
        f[j * n + j] = 0.0;
    }
    Ok(Built {
        f,
        scale: fpc * (nf - 1.0) / nf,
        rscales: vec![1.0; n],
        exact_rank: Some(n),
    })
}

fn jkn(d: &Design, units: &ReplicationUnits) -> Result<Built, ReplicateError> {
    if !has_strata(d) && units.certainty_psus == 0 {
        return Err(ReplicateError::Unstratified("JKn"));
    }
    let n_psu = units.n_units;
    let n_strata = units.by_stratum.len();
    let lonely = d.lonely_psu();
    let mut f: Vec<f64> = Vec::new();
    let mut rscales = Vec::new();
    let mut strata_with_reps = 0usize;
    let mut adjusted = false;
    for (h, psus) in units.by_stratum.iter().enumerate() {
        let nh = psus.len();
        let fpc = units.fpc(h);
        if fpc == 0.0 {
            // Exhaustively sampled: R (survey.drop.replicates) gives it no replicates.
            continue;
        }
        if nh == 1 {
            match lonely {
                LonelyPsu::Fail => {
                    return Err(ReplicateError::LonelyPsu(units.label[h].clone()));
                }
                // After collapsing, only a certainty PSU with one second-stage unit is lonely
                // here: it contributes nothing, as at later stages under Taylor.
                LonelyPsu::Remove
                | LonelyPsu::Certainty
                | LonelyPsu::Average
                | LonelyPsu::Collapse => continue,
                LonelyPsu::Adjust => {
                    let ns = n_strata as f64;
                    let mut col = vec![ns / (ns - 1.0); n_psu];
                    col[psus[0]] = 0.0;
                    f.extend_from_slice(&col);
                    rscales.push((ns - 1.0) / ns);
                    adjusted = true;
                    continue;
                }
            }
        }
        let nhf = nh as f64;
        for &j in psus {
            let mut col = vec![1.0; n_psu];
            for &p in psus {
                col[p] = nhf / (nhf - 1.0);
            }
            col[j] = 0.0;
            f.extend_from_slice(&col);
            rscales.push(fpc * (nhf - 1.0) / nhf);
        }
        strata_with_reps += 1;
    }
    let counter = rscales.len();
    if counter == 0 {
        return Err(ReplicateError::Exhaustive);
    }
    let scale = if counter < n_psu && lonely == LonelyPsu::Average {
        n_psu as f64 / counter as f64
    } else {
        1.0
    };
    Ok(Built {
        f,
        scale,
        rscales,
        // Within a stratum the n_h columns sum to n_h · 1, one dependency per stratum.
        exact_rank: (!adjusted).then(|| counter - strata_with_reps + 1),
    })
}

fn brr(d: &Design, rho: f64) -> Result<Built, ReplicateError> {
    if !has_strata(d) {
        return Err(ReplicateError::Unstratified(if rho == 0.0 {
            "BRR"
        } else {
            "Fay"
        }));
    }
    let by = psus_by_stratum(d);
    let bad: Vec<(String, usize)> = by
        .iter()
        .enumerate()
        .filter(|(_, p)| p.len() != 2)
        .map(|(h, p)| (d.stratum_label(h).to_string(), p.len()))
        .collect();
    if !bad.is_empty() {
        return Err(ReplicateError::NotPaired(bad));
    }
    // R orders strata by their label (brrweights: order(as.character(strata))); byte order here.
    let mut order: Vec<usize> = (0..by.len()).collect();
    order.sort_by(|&a, &b| d.stratum_label(a).cmp(d.stratum_label(b)));
    let k = order.len();
    let h = hadamard::hadamard(k);
    let n_rep = h.order;
    let n_psu = d.n_psu();
    let mut f = vec![0.0; n_rep * n_psu];
    for r in 0..n_rep {
        for (row, &s) in order.iter().enumerate() {
            let (first, second) = (by[s][0], by[s][1]);
            let (a, b) = if h.get(row + 1, r) == 1 {
                (2.0 - rho, rho)
            } else {
                (rho, 2.0 - rho)
            };
            f[r * n_psu + first] = a;
            f[r * n_psu + second] = b;
        }
    }
    let nr = n_rep as f64;
    Ok(Built {
        f,
        scale: 1.0 / (nr * (1.0 - rho) * (1.0 - rho)),
        rscales: vec![1.0; n_rep],
        // Rows of the Hadamard matrix are orthogonal: the all-ones row plus one per stratum.
        exact_rank: Some(k + 1),
    })
}

/// Floyd's algorithm: `k` distinct integers from `0..n`, in draw order.
fn sample_without_replacement(rng: &mut Pcg32, n: u64, k: usize) -> Vec<u64> {
    let mut chosen: Vec<u64> = Vec::with_capacity(k);
    let mut sorted: Vec<u64> = Vec::with_capacity(k);
    for j in (n - k as u64)..n {
        let t = rng.below_u64(j + 1);
        let pick = if sorted.binary_search(&t).is_ok() {
            j
        } else {
            t
        };
        let pos = sorted.binary_search(&pick).unwrap_or_else(|p| p);
        sorted.insert(pos, pick);
        chosen.push(pick);
    }
    chosen
}

/// How a bootstrap replicate draws the units of a stratum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Draws {
    /// n_h with replacement, or without replacement from N_h copies with an FPC (R
    /// `bootweights`).
    WithReplacement,
    /// n_h − 1 with replacement, rescaled by n_h/(n_h − 1); one-unit strata refused (R
    /// `subbootweights`).
    Subbootstrap,
    /// As the subbootstrap; one-unit strata follow `lonely_psu` and certainty strata keep
    /// factor 1 (Stata `bsweights, n(-1)`, SAS `varmethod = bootstrap`).
    RaoWu,
}

fn bootstrap(
    d: &Design,
    units: &ReplicationUnits,
    replicates: usize,
    seed: u64,
    draws: Draws,
) -> Result<Built, ReplicateError> {
    let method = match draws {
        Draws::WithReplacement => "bootstrap",
        Draws::Subbootstrap => "subbootstrap",
        Draws::RaoWu => "bootstrap (Rao-Wu)",
    };
    if replicates < 2 {
        return Err(ReplicateError::Replicates(format!(
            "{method} needs at least 2 replicates, got {replicates}"
        )));
    }
    let by = &units.by_stratum;
    let n_psu = units.n_units;
    let n_strata = by.len();
    if draws == Draws::Subbootstrap
        && let Some((h, p)) = by.iter().enumerate().find(|(_, p)| p.len() < 2)
    {
        return Err(ReplicateError::TooFewPsus {
            method,
            stratum: units.label[h].clone(),
            n: p.len(),
            min: 2,
        });
    }
    // Rao–Wu: strata left at factor 1 (one unit, or sampled with certainty); with
    // lonely_psu = average the scale grows by H / (H − lonely strata), as the Taylor variance.
    let mut fixed = vec![false; n_strata];
    let mut lonely_strata = 0usize;
    if draws == Draws::RaoWu {
        for (h, psus) in by.iter().enumerate() {
            if units.fpc(h) < CERTAINTY_FPC {
                fixed[h] = true;
            } else if psus.len() == 1 {
                match d.lonely_psu() {
                    LonelyPsu::Fail => {
                        return Err(ReplicateError::LonelyPsu(units.label[h].clone()));
                    }
                    LonelyPsu::Adjust => {
                        return Err(ReplicateError::LonelyAdjust(units.label[h].clone()));
                    }
                    // After collapsing, only a certainty PSU with one second-stage unit is
                    // lonely here: it contributes nothing, as at later stages under Taylor.
                    LonelyPsu::Remove | LonelyPsu::Certainty | LonelyPsu::Collapse => {
                        fixed[h] = true
                    }
                    LonelyPsu::Average => {
                        fixed[h] = true;
                        lonely_strata += 1;
                    }
                }
            }
        }
        if fixed.iter().all(|&x| x) {
            return Err(ReplicateError::Exhaustive);
        }
    }
    let r_count = replicates as u64;
    let cols: Vec<Vec<f64>> = (0..replicates)
        .into_par_iter()
        .map(|r| {
            let mut col = vec![0.0; n_psu];
            for (h, psus) in by.iter().enumerate() {
                let nh = psus.len();
                let stream = h as u64 * r_count + r as u64;
                // Hashed cells: PCG streams of one seed are correlated, which biased the
                // bootstrap variance by a few per cent until December 2026.
                let mut rng = Pcg32::for_cell(seed, stream);
                let big_n = units.popsize[h];
                if fixed[h] {
                    for &p in psus {
                        col[p] = 1.0;
                    }
                } else if draws != Draws::WithReplacement {
                    let mult = nh as f64 / (nh as f64 - 1.0);
                    for _ in 0..nh - 1 {
                        col[psus[rng.below(nh as u32) as usize]] += mult;
                    }
                } else if big_n.is_finite() {
                    // R: a population of floor(N_h) units cycling through the stratum's PSUs in
                    // a random order fixed per stratum, n_h drawn without replacement.
                    let mut perm = psus.clone();
                    let mut prng = Pcg32::for_cell(seed, n_strata as u64 * r_count + h as u64);
                    for i in (1..perm.len()).rev() {
                        perm.swap(i, prng.below((i + 1) as u32) as usize);
                    }
                    let pop = big_n.floor() as u64;
                    for k in sample_without_replacement(&mut rng, pop, nh) {
                        col[perm[(k % nh as u64) as usize]] += 1.0;
                    }
                } else {
                    for _ in 0..nh {
                        col[psus[rng.below(nh as u32) as usize]] += 1.0;
                    }
                }
            }
            col
        })
        .collect();
    let f: Vec<f64> = cols.into_iter().flatten().collect();
    let rf = replicates as f64;
    let scale = match draws {
        Draws::Subbootstrap => 1.0 / (rf - 1.0),
        // SAS's 1/(R − 1); the Stata profile turns it into 1/R (stage.rs).
        Draws::RaoWu => n_strata as f64 / (n_strata - lonely_strata) as f64 / (rf - 1.0),
        Draws::WithReplacement => {
            // R bootweights: harmonic mean of n_h, n̄/(n̄ − 1) · 1/(R − 1).
            let hm = n_strata as f64 / by.iter().map(|p| 1.0 / p.len() as f64).sum::<f64>();
            if hm <= 1.0 {
                return Err(ReplicateError::TooFewPsus {
                    method,
                    stratum: units.label[0].clone(),
                    n: 1,
                    min: 2,
                });
            }
            hm / ((hm - 1.0) * (rf - 1.0))
        }
    };
    Ok(Built {
        f,
        scale,
        rscales: vec![1.0; replicates],
        exact_rank: None,
    })
}

/// The replication units ordered by the value of `column` at their first design row (numbers
/// numerically, text by its characters, blanks last); ties keep the order of first appearance.
fn sorted_units(
    frame: &Frame,
    design: &Design,
    units: &ReplicationUnits,
    column: &str,
) -> Result<Vec<usize>, ReplicateError> {
    let col = frame
        .column(column)
        .ok_or_else(|| ReplicateError::SortColumn(column.to_string()))?;
    let mut first_row = vec![usize::MAX; units.n_units];
    for (i, &u) in units.unit_of_row.iter().enumerate() {
        if first_row[u as usize] == usize::MAX {
            first_row[u as usize] = design.frame_rows()[i];
        }
    }
    let mut order: Vec<usize> = (0..units.n_units).collect();
    match &col.data {
        ColumnData::Num(v) => {
            let key = |u: usize| {
                let r = first_row[u];
                (col.state[r] == CellState::Value).then(|| v[r])
            };
            order.sort_by(|&a, &b| match (key(a), key(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
        }
        ColumnData::Text { .. } => {
            let keys: Vec<Option<String>> = (0..units.n_units)
                .map(|u| {
                    let r = first_row[u];
                    (col.state[r] == CellState::Value)
                        .then(|| col.display(r))
                        .flatten()
                })
                .collect();
            order.sort_by(|&a, &b| match (&keys[a], &keys[b]) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
        }
    }
    Ok(order)
}

/// SDR factors for the units in `order` (position k of the order gets Hadamard rows
/// 1 + k mod (R − 1) and that of position k + 1; `circular`: the last position's second row is
/// the first position's row).
fn sdr(
    order: &[usize],
    replicates: Option<usize>,
    circular: bool,
) -> Result<Built, ReplicateError> {
    let n_psu = order.len();
    let h = match replicates {
        None => hadamard::hadamard(n_psu.max(3)),
        Some(r) => {
            let h = hadamard::hadamard(r.saturating_sub(1));
            if h.order != r {
                return Err(ReplicateError::Replicates(format!(
                    "successive-difference replication needs a Hadamard order as number of replicates; {r} is not available, the nearest is {}",
                    h.order
                )));
            }
            h
        }
    };
    let n_rep = h.order;
    let rows = n_rep - 1; // row 0 (all ones) is not used
    let c = 2f64.powf(-1.5);
    let sign = |v: u8| if v == 1 { 1.0 } else { -1.0 };
    let mut f = vec![0.0; n_rep * n_psu];
    for (k, &p) in order.iter().enumerate() {
        let next = if circular { (k + 1) % n_psu } else { k + 1 };
        let r1 = 1 + k % rows;
        let r2 = 1 + next % rows;
        for r in 0..n_rep {
            f[r * n_psu + p] = 1.0 + c * (sign(h.get(r1, r)) - sign(h.get(r2, r)));
        }
    }
    Ok(Built {
        f,
        scale: 4.0 / n_rep as f64,
        rscales: vec![1.0; n_rep],
        exact_rank: None,
    })
}
