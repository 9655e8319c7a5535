//! The replicate variance stage: every replicate's design weights go through the scheme's whole
//! weighting chain (nonresponse adjustment, calibration), then every indicator × domain is
//! estimated from the replicate's final weights; replicates run in parallel and are reduced in
//! replicate order, so results do not depend on the thread count. Formulas and conventions:
//! `docs/variance.md`.

use rayon::prelude::*;

use super::groups::Groups;
use super::{
    Certainty, ReplicateDesign, ReplicateMethod, ReplicateOptions, SuppliedSpec, numerical_rank,
};
use crate::design::{Design, DesignSpec};
use crate::estimate::{ContrastRow, EstimateError, EstimateRow, EstimationRequest};
use crate::frame::Frame;
use crate::ingest::matches_pattern;
use crate::weighting::Scheme;

/// Largest replicate weight matrix (rows × replicates) whose rank is computed on every row;
/// beyond it the rank is computed on an evenly spaced subset of rows (documented).
const RANK_CELLS: usize = 25_000_000;

/// Group × replicate multipliers held at a time on the sums path (32 MB): replicates run in
/// blocks of about this many cells over the groups.
const GROUP_CELLS: usize = 4_000_000;

/// Conventions that differ between packages for replicate variance (`docs/variance.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateProfile {
    /// R `survey`: replicate df = rank of the replicate weights − 1, centring on the replicate
    /// mean unless `mse`, bootstrap multiplier as `bootweights`.
    R,
    /// Stata `svy`: design df (#PSU − #strata); bootstrap multiplier 1/R.
    Stata,
    /// SAS `SURVEYMEANS`: centring on the full-sample estimate for jackknife and BRR/Fay; df
    /// #PSU − #strata (jackknife), #strata (BRR/Fay), R − 1 (bootstrap); bootstrap 1/(R − 1).
    Sas,
}

/// Whether each replicate redoes the nonresponse adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateNonresponse {
    /// Every replicate reruns the whole chain from its design weights (default).
    Recompute,
    /// The nonresponse factor is held fixed: replicates start from the adjusted weights (what
    /// R does with `as.svrepdesign` on a design built with adjusted weights).
    Fixed,
}

/// Degrees of freedom of replicate-variance rows (`[variance] replicate_df`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateDfRule {
    /// R's `degf()` of the replicate design (of the domain's subset under `domain_df =
    /// "subset"`): the rank of the replicate weights − 1.
    Rank,
    /// The design df of the Taylor rows: PSUs − strata with a non-zero weight (in the domain under
    /// `domain_df = "subset"`).
    Design,
}

/// One replicate variance method with the settings of `[variance]` the stage reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplicateStageSettings {
    /// The method's name in messages, warnings and replicate weight names (the `variance`
    /// column's value).
    pub name: String,
    /// How replicates are formed. Supplied columns may be `*` patterns: the stage matches them
    /// against the data's columns, pattern after pattern.
    pub method: ReplicateMethod,
    /// Centre on the full-sample estimate (true) or on the replicate mean (false, R default);
    /// unset: as the profile says.
    pub mse: Option<bool>,
    /// Package conventions.
    pub profile: ReplicateProfile,
    /// Nonresponse adjustment in replicates.
    pub nonresponse: ReplicateNonresponse,
    /// Drop a replicate whose calibration fails, with a warning, instead of stopping (R
    /// `options(survey.drop.replicates)`).
    pub drop_failed: bool,
    /// Replicate df rule; unset: the profile's df (R: [`ReplicateDfRule::Rank`]).
    pub replicate_df: Option<ReplicateDfRule>,
    /// Replication units of certainty strata.
    pub certainty: Certainty,
}

/// Errors that stop the replicate stage.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateStageError {
    /// Replicate variance problem (construction, or a replicate's weighting).
    #[error("variance {method}: {message}")]
    Replicate {
        /// Variance method.
        method: String,
        /// What failed, naming the replicate or the strata.
        message: String,
    },
    /// Estimation problem.
    #[error(transparent)]
    Estimate(#[from] EstimateError),
}

/// What the stage needs from the pipeline.
pub(crate) struct Inputs<'a> {
    /// The replicate method and its settings.
    pub settings: &'a ReplicateStageSettings,
    /// All used rows.
    pub frame: &'a Frame,
    /// Design weight of every used row.
    pub base_weights: &'a [f64],
    /// Frame rows of the respondents (design rows).
    pub respondents: &'a [usize],
    pub design: &'a Design,
    /// The design's columns, which place unit nonrespondents in their PSU.
    pub design_spec: &'a DesignSpec,
    pub schemes: &'a [Scheme],
    pub request: &'a EstimationRequest<'a>,
    /// Keep every scheme's final replicate weights (for `weights.parquet`).
    pub keep_weights: bool,
    /// Told of every finished replicate.
    pub progress: &'a dyn crate::progress::Progress,
}

/// Rows, warnings and (when asked) the replicate weights.
pub(crate) struct Output {
    pub rows: Vec<EstimateRow>,
    /// Contrasts of the request, with replicate variances.
    pub contrasts: Vec<ContrastRow>,
    /// Tests of association of the request, with replicate covariances.
    pub tests: Vec<crate::estimate::TestRow>,
    pub warnings: Vec<String>,
    pub weights: Vec<(String, Vec<f64>)>,
}

fn err(settings: &ReplicateStageSettings, message: impl std::fmt::Display) -> ReplicateStageError {
    ReplicateStageError::Replicate {
        method: settings.name.clone(),
        message: message.to_string(),
    }
}

/// The replicate method with supplied columns given as `*` patterns replaced by the data's
/// matching columns, in pattern order then data order, each once.
fn with_matched_columns(method: &ReplicateMethod, frame: &Frame) -> ReplicateMethod {
    let mut method = method.clone();
    if let ReplicateMethod::Supplied(spec) = &mut method {
        let mut columns = Vec::new();
        for pattern in &spec.columns {
            for c in frame.columns() {
                if matches_pattern(pattern, &c.name) && !columns.contains(&c.name) {
                    columns.push(c.name.clone());
                }
            }
        }
        spec.columns = columns;
    }
    method
}

/// One replicate's estimates (row path), kept weights or group multipliers, and the statistics
/// of the quantile plan, or why it failed.
type ReplicateOutcome = Result<(Option<Vec<f64>>, Option<Vec<f64>>, Vec<f64>), String>;

/// Run one replicate method for every scheme.
pub(crate) fn run(inputs: &Inputs<'_>) -> Result<Output, ReplicateStageError> {
    let settings = inputs.settings;
    let jackknife_or_brr = matches!(
        settings.method,
        ReplicateMethod::Jk1
            | ReplicateMethod::Jkn
            | ReplicateMethod::Brr
            | ReplicateMethod::Fay { .. }
    );
    // The ACS convention (circular SDR) centres on the full-sample estimate, as R's
    // svrepdesign(type = "ACS").
    let acs = matches!(settings.method, ReplicateMethod::Sdr { circular: true, .. });
    let mse = settings
        .mse
        .unwrap_or(settings.profile == ReplicateProfile::Sas && jackknife_or_brr || acs);
    let rep_method = match (&settings.method, settings.profile) {
        // Stata's bsweights (n(-1)) and SAS's varmethod = bootstrap resample n_h − 1 PSUs
        // (Rao–Wu); R's bootweights draw n_h and correct only on average (docs/variance.md).
        (
            ReplicateMethod::Bootstrap { replicates, seed },
            ReplicateProfile::Stata | ReplicateProfile::Sas,
        ) => ReplicateMethod::RaoWu {
            replicates: *replicates,
            seed: *seed,
        },
        (method, _) => with_matched_columns(method, inputs.frame),
    };
    // The replicate table (a factor per PSU, or a weight per row for supplied columns, per
    // replicate) is the stage's largest allocation: refuse before it, with the figures.
    // Replication units: first-stage PSUs, or more with certainty = "ssu".
    let n_units = super::n_replication_units(inputs.design, settings.certainty);
    let (units, n_rep_planned) = match &rep_method {
        ReplicateMethod::Supplied(s) => (inputs.design.n_rows(), s.columns.len()),
        ReplicateMethod::Bootstrap { replicates, .. }
        | ReplicateMethod::Subbootstrap { replicates, .. }
        | ReplicateMethod::RaoWu { replicates, .. } => (n_units, *replicates),
        ReplicateMethod::Sdr { replicates, .. } => (n_units, replicates.unwrap_or(n_units)),
        _ => (n_units, n_units),
    };
    let table = (units as u64)
        .saturating_mul(n_rep_planned as u64)
        .saturating_mul(std::mem::size_of::<f64>() as u64);
    crate::memory::check(table).map_err(|m| {
        err(
            settings,
            format!("{n_rep_planned} replicates × {units} units {m}; use fewer replicates"),
        )
    })?;
    let mut rep = ReplicateDesign::build(
        inputs.frame,
        inputs.design,
        &rep_method,
        &ReplicateOptions {
            mse,
            certainty: settings.certainty,
        },
    )
    .map_err(|e| err(settings, e))?;
    let n_rep = rep.n_replicates();
    let bootstrap = matches!(rep_method, ReplicateMethod::Subbootstrap { .. });
    match settings.profile {
        ReplicateProfile::R => {}
        ReplicateProfile::Stata => {
            if bootstrap {
                rep.set_scale(1.0 / n_rep as f64);
            } else if matches!(rep_method, ReplicateMethod::RaoWu { .. }) {
                // Stata divides by R where SAS divides by R − 1 (the builder's scale, which
                // may carry lonely_psu = average's H / (H − lonely strata)).
                let rf = n_rep as f64;
                rep.set_scale(rep.scale() * (rf - 1.0) / rf);
            }
        }
        ReplicateProfile::Sas => {
            if bootstrap {
                rep.set_scale(1.0 / (n_rep as f64 - 1.0));
            }
        }
    }
    let rep = rep;
    // The replication unit of every respondent row; `ssu_units` when they are not the PSUs
    // (certainty = "ssu" on a design with certainty strata).
    let unit_of_row = rep.unit_of_row().unwrap_or(inputs.design.psu_of_row());
    let ssu_units = (unit_of_row != inputs.design.psu_of_row()).then_some(unit_of_row);
    let profile_df = match settings.profile {
        ReplicateProfile::R => None,
        ReplicateProfile::Stata => Some(inputs.design.degf(&vec![true; inputs.design.n_rows()])),
        ReplicateProfile::Sas => Some(match rep_method {
            ReplicateMethod::Jk1 | ReplicateMethod::Jkn => {
                inputs.design.degf(&vec![true; inputs.design.n_rows()])
            }
            ReplicateMethod::Brr | ReplicateMethod::Fay { .. } => inputs.design.n_strata() as f64,
            _ => n_rep as f64 - 1.0,
        }),
    };

    // First-stage PSU of every used row, so that unit nonrespondents get their PSU's factor
    // when the nonresponse adjustment is recomputed (rows of a PSU without respondents: 1).
    // Only needed when some scheme recomputes its nonresponse adjustment per replicate.
    let recomputes_nr = |scheme: &Scheme| {
        settings.nonresponse == ReplicateNonresponse::Recompute
            && scheme.chain.adjusts_nonresponse()
    };
    // Supplied replicate weights carry their own design weights of every sampled unit, unit
    // nonrespondents included: a recomputed adjustment starts from those columns.
    let supplied = match &rep_method {
        ReplicateMethod::Supplied(spec) if inputs.schemes.iter().any(recomputes_nr) => {
            Some(supplied_design_weights(inputs, spec).map_err(|e| err(settings, e))?)
        }
        _ => None,
    };
    let psu_of_frame_row = if supplied.is_none() && inputs.schemes.iter().any(recomputes_nr) {
        psu_of_every_row(inputs, unit_of_row, ssu_units.is_some())
    } else {
        Vec::new()
    };
    let prepared = crate::estimate::prepare(inputs.request)?;
    let df_rule = settings.replicate_df.or(match profile_df {
        Some(_) => None,
        None => Some(ReplicateDfRule::Rank),
    });
    // Replicate weights (or group multipliers) are kept for the df only under the rank rule.
    let rank_df_rule = df_rule == Some(ReplicateDfRule::Rank);

    let mut rows = Vec::new();
    let mut contrasts = Vec::new();
    let mut tests = Vec::new();
    let mut warnings = design_warnings(settings, &rep_method, inputs.design);
    let mut kept = Vec::new();
    inputs.progress.start(
        "replicates",
        (n_rep * inputs.schemes.len())
            .try_into()
            .unwrap_or(u64::MAX),
    );
    let supplied_replicates = matches!(rep_method, ReplicateMethod::Supplied(_));
    for scheme in inputs.schemes {
        let recompute_nr = recomputes_nr(scheme);
        let reweighted = recompute_nr || scheme.chain.calibrates() || supplied_replicates;
        let weights_for = |r: usize| -> Result<Vec<f64>, String> {
            if recompute_nr {
                let base: Vec<f64> = match &supplied {
                    Some(columns) => columns[r].clone(),
                    None => {
                        let factors = rep.psu_factors(r).ok_or("replicate factors unavailable")?;
                        inputs
                            .base_weights
                            .iter()
                            .zip(&psu_of_frame_row)
                            .map(|(&d, psu)| d * psu.map_or(1.0, |k| factors[k as usize]))
                            .collect()
                    }
                };
                scheme
                    .chain
                    .apply(&base, inputs.respondents)
                    .map(|w| w.weights)
                    .map_err(|e| e.to_string())
            } else {
                let mut pre = vec![0.0; scheme.adjusted.len()];
                rep.weights_over(r, &scheme.adjusted, &mut pre);
                scheme
                    .chain
                    .calibrate(pre)
                    .map(|w| w.weights)
                    .map_err(|e| e.to_string())
            }
        };
        let full = crate::estimate::point_estimates(inputs.request, &prepared, &scheme.weights);
        let quantiles = crate::estimate::quantile_plan(inputs.request, &prepared, &scheme.weights);
        let n_quantile = quantiles.n_statistics();
        let n_extra = n_quantile + crate::estimate::n_test_statistics(&prepared);
        // Replicates on sums by (replication unit, calibration cell), and nonresponse class
        // when it is recomputed, where every replicate weight is a full-sample weight times one
        // multiplier per group (docs/performance.md); the rows otherwise: supplied replicate
        // weights, a calibration that cannot be collapsed to cells, and replicate weights to be
        // published.
        let recompute = scheme
            .chain
            .classes()
            .filter(|_| recompute_nr)
            .map(|classes| super::groups::Recompute {
                classes,
                respondents: inputs.respondents,
                base_weights: inputs.base_weights,
                unit_of_frame_row: &psu_of_frame_row,
            });
        let grouping = match scheme.chain.cells() {
            Some(cells)
                if !supplied_replicates
                    && rep.psu_factors(0).is_some()
                    && recompute.is_some() == recompute_nr =>
            {
                Some(Groups::build(
                    unit_of_row,
                    &scheme.adjusted,
                    cells,
                    recompute,
                ))
            }
            _ => None,
        };
        // Replicate weights to be published run on the rows; their groups still serve the df.
        let (groups, published_groups) = if inputs.keep_weights {
            (None, grouping)
        } else {
            (grouping, None)
        };
        let sums = groups.as_ref().map(|g| {
            crate::estimate::GroupedSums::build(
                inputs.request,
                &prepared,
                &g.row_base,
                &g.of_row,
                g.psu.len(),
            )
        });
        // Replicate weights kept for the df: only the rows the rank computations read (small
        // domains, and every k-th row for the whole matrix), unless all are to be published.
        // With groups, the multipliers per group stand for them.
        let n = scheme.weights.len();
        let kept_rows: Vec<usize> = if groups.is_some() {
            Vec::new()
        } else if inputs.keep_weights {
            (0..n).collect()
        } else if reweighted && rank_df_rule {
            let step = (n * n_rep.max(1)).div_ceil(RANK_CELLS).max(1);
            let mut rows = prepared.small_domain_rows(2 * n_rep);
            rows.extend((0..n).step_by(step));
            rows.sort_unstable();
            rows.dedup();
            rows
        } else {
            Vec::new()
        };
        let mut position = vec![u32::MAX; if kept_rows.is_empty() { 0 } else { n }];
        for (k, &i) in kept_rows.iter().enumerate() {
            position[i] = k as u32;
        }
        let sampled: Vec<usize> = {
            let step = (n * n_rep.max(1)).div_ceil(RANK_CELLS).max(1);
            (0..n)
                .step_by(step)
                .filter_map(|i| position.get(i).map(|&p| p as usize))
                .collect()
        };
        let keep_matrix = !kept_rows.is_empty();
        // With groups, the df reads the multipliers of the groups of the small domains' rows
        // and of one row per group (every k-th group beyond RANK_CELLS); only those are kept
        // for all replicates (`[p * n_rep + r]`, p the group's position in `rank_groups`).
        let (rank_representatives, rank_groups) = match &groups {
            Some(g) if reweighted && rank_df_rule => {
                let step = (g.psu.len() * n_rep.max(1)).div_ceil(RANK_CELLS).max(1);
                let representatives: Vec<usize> =
                    g.representative.iter().step_by(step).copied().collect();
                let mut of = prepared.small_domain_rows(2 * n_rep);
                of.extend(&representatives);
                let mut rank_groups: Vec<u32> = of.iter().map(|&i| g.of_row[i]).collect();
                rank_groups.sort_unstable();
                rank_groups.dedup();
                (representatives, rank_groups)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let mut rank_multipliers = vec![f64::NAN; rank_groups.len() * n_rep];
        let mut succeeded = vec![false; n_rep];
        // Replicates run in blocks on sums, so that the multipliers of a block only
        // (GROUP_CELLS group × replicate cells) are held at a time, whatever the number of
        // replicates; on rows, all at once.
        let block = match &groups {
            Some(g) => (GROUP_CELLS / g.psu.len().max(1))
                .max(2 * rayon::current_num_threads())
                .min(n_rep)
                .max(1),
            None => n_rep.max(1),
        };
        // Replicate estimates, statistic after statistic (`n_rep` per statistic); a dropped
        // replicate's are NaN.
        let mut thetas = vec![f64::NAN; full.len() * n_rep];
        let mut extra_thetas = vec![f64::NAN; n_extra * n_rep];
        let mut matrix = Vec::new();
        let mut dropped = Vec::new();
        // One buffer for the blocks' multipliers, reused: a fresh one per block left the freed
        // ones to the allocator's heaps and raised peak memory.
        let mut block_multipliers =
            vec![f64::NAN; sums.as_ref().map_or(0, |s| s.n_groups() * block)];
        for start in (0..n_rep).step_by(block) {
            let end = (start + block).min(n_rep);
            // Per replicate: its estimates (row path) or, on sums, its group multipliers, whose
            // estimates are computed for the whole block at once below.
            let results: Vec<ReplicateOutcome> = (start..end)
                .into_par_iter()
                .map(|r| {
                    // Statistics beyond sums: the quantile plan's, then the tests' cell shares.
                    let quantile_statistics = |w: &[f64]| {
                        let mut out = if quantiles.is_empty() {
                            Vec::new()
                        } else {
                            crate::estimate::quantile_replicate_statistics(
                                inputs.request,
                                &prepared,
                                &quantiles,
                                w,
                            )
                        };
                        out.extend(crate::estimate::test_replicate_statistics(&prepared, w));
                        out
                    };
                    if let Some(g) = &groups {
                        let mult = g.multipliers(&rep, r, &weights_for)?;
                        // Quantiles need the rows' replicate weights: a_i times the group's factor.
                        let q = if n_extra == 0 {
                            Vec::new()
                        } else {
                            let w: Vec<f64> = g
                                .row_base
                                .iter()
                                .zip(&g.of_row)
                                .map(|(a, &k)| a * mult[k as usize])
                                .collect();
                            quantile_statistics(&w)
                        };
                        inputs.progress.advance(1);
                        return Ok((None, Some(mult), q));
                    }
                    let w = weights_for(r)?;
                    let theta = crate::estimate::point_estimates(inputs.request, &prepared, &w);
                    let q = quantile_statistics(&w);
                    inputs.progress.advance(1);
                    Ok((
                        Some(theta),
                        keep_matrix.then(|| kept_rows.iter().map(|&i| w[i]).collect::<Vec<f64>>()),
                        q,
                    ))
                })
                .collect();
            // The block's multipliers group after group (`[k * width + j]` for replicate
            // start + j), NaN for a dropped replicate.
            let width = end - start;
            let by_group =
                &mut block_multipliers[..sums.as_ref().map_or(0, |s| s.n_groups() * width)];
            by_group.fill(f64::NAN);
            for (r, res) in (start..end).zip(results) {
                match res {
                    Ok((theta, w, q)) => {
                        succeeded[r] = true;
                        if let Some(theta) = theta {
                            for (k, t) in theta.into_iter().enumerate() {
                                thetas[k * n_rep + r] = t;
                            }
                        }
                        for (k, t) in q.into_iter().enumerate() {
                            extra_thetas[k * n_rep + r] = t;
                        }
                        match (&groups, w) {
                            (Some(_), Some(mult)) => {
                                for (k, &m) in mult.iter().enumerate() {
                                    by_group[k * width + (r - start)] = m;
                                }
                                for (p, &k) in rank_groups.iter().enumerate() {
                                    rank_multipliers[p * n_rep + r] = mult[k as usize];
                                }
                                matrix.push(None);
                            }
                            (_, w) => matrix.push(w),
                        }
                    }
                    Err(message) if settings.drop_failed => {
                        dropped.push(r + 1);
                        warnings.push(format!(
                            "{} replicate {} of scheme \"{}\" dropped: {message}",
                            settings.name,
                            r + 1,
                            scheme.name
                        ));
                        matrix.push(None);
                    }
                    Err(message) => {
                        return Err(err(
                            settings,
                            format!(
                                "replicate {} of scheme \"{}\": {message} (set [variance] drop_failed = true to drop failed replicates with a warning)",
                                r + 1,
                                scheme.name
                            ),
                        ));
                    }
                }
            }
            if let Some(sums) = &sums {
                // Each θ_r is the same sum in the same order whatever the block.
                let block_thetas = sums.point_estimates_all(by_group, width);
                for (k, t) in block_thetas.chunks(width).enumerate() {
                    thetas[k * n_rep + start..k * n_rep + end].copy_from_slice(t);
                }
            }
        }
        // The sums and the blocks' multipliers are done with: free them before the df's rank
        // matrix is formed.
        drop(block_multipliers);
        drop(sums);
        // Published replicate weights ran on the rows, all of them kept: their groups'
        // multipliers follow from one row per group (w_i,r = a_i F_r,g), so that the df is the
        // same whether the weights are published or not.
        let (rank_groups, rank_multipliers) = match &published_groups {
            Some(g)
                if reweighted
                    && rank_df_rule
                    && kept_rows.len() == n
                    && g.psu.len() * n_rep <= RANK_CELLS =>
            {
                let mut m = vec![f64::NAN; g.psu.len() * n_rep];
                for (k, &i) in g.representative.iter().enumerate() {
                    let a = g.row_base[i];
                    for (r, w) in matrix.iter().enumerate() {
                        if let Some(w) = w {
                            m[k * n_rep + r] = if a != 0.0 { w[i] / a } else { 0.0 };
                        }
                    }
                }
                ((0..g.psu.len() as u32).collect::<Vec<u32>>(), m)
            }
            _ => (rank_groups, rank_multipliers),
        };
        // One statistic at a time, as R's svrVar on one svymean: a replicate whose estimate of
        // this statistic is not finite (an empty domain in that replicate) is left out for it.
        let column = |k: usize, f: &dyn Fn(f64) -> f64| -> Vec<f64> {
            thetas[k * n_rep..(k + 1) * n_rep]
                .iter()
                .map(|&t| f(t))
                .collect()
        };
        let variances: Vec<f64> = (0..full.len())
            .map(|k| rep.variance(&column(k, &|x| x), full[k]))
            .collect();
        // For proportions R's logit interval on a replicate design comes from the replicate
        // variance of logit(p̂_r) (svyglm refitted on each replicate), not from the delta method.
        let logit = |x: f64| (x / (1.0 - x)).ln();
        // A replicate whose domain has the proportion 0 or 1 puts logit(p̂_r) at ±∞ while p̂ is
        // inside (0, 1): the logit-scale variance is unbounded and the interval is (0, 1), the
        // limit R's svyglm reaches when that replicate's fit diverges.
        let logit_variances: Vec<f64> = (0..full.len())
            .map(|k| {
                let replicates = column(k, &logit);
                if logit(full[k]).is_finite() && replicates.iter().any(|t| t.is_infinite()) {
                    f64::INFINITY
                } else {
                    rep.variance(&replicates, logit(full[k]))
                }
            })
            .collect();
        // Replicate df as R's degf() of the domain's replicate design (`[.svyrep.design` drops
        // the other rows and recomputes the rank of the replicate weights), see replicate_df.
        // Rank of the replicate weights over rows: with groups, from the multipliers.
        let rank_over = |rows: &[usize]| -> usize {
            match &groups {
                Some(g) => g.rank(&rank_multipliers, &rank_groups, &succeeded, rows),
                None => {
                    let at: Vec<usize> = rows.iter().map(|&i| position[i] as usize).collect();
                    replicate_rank(&matrix, &at)
                }
            }
        };
        let full_rank = match (&groups, reweighted) {
            (_, false) => 0,
            // Rows of a group have proportional replicate weights: one row per group has the
            // rank of all rows.
            (Some(g), true) => g.rank(
                &rank_multipliers,
                &rank_groups,
                &succeeded,
                &rank_representatives,
            ),
            (None, true) => replicate_rank(&matrix, &sampled),
        };
        let rank_cache = std::sync::Mutex::new(std::collections::HashMap::<Vec<u32>, usize>::new());
        // Every group's multipliers are kept (up to RANK_CELLS group × replicate cells): the
        // rank of any domain is then exact from its groups.
        let by_groups = groups
            .as_ref()
            .or(published_groups.as_ref())
            .filter(|g| reweighted && rank_df_rule && rank_groups.len() == g.psu.len());
        let largest_multiplier: Vec<f64> = if by_groups.is_some() {
            let mut largest = vec![0.0f64; n_rep];
            for row in rank_multipliers.chunks(n_rep.max(1)) {
                for (l, &x) in largest.iter_mut().zip(row) {
                    if x.is_finite() {
                        *l = l.max(x.abs());
                    }
                }
            }
            largest
        } else {
            Vec::new()
        };
        let group_rank_cache =
            std::sync::Mutex::new(std::collections::HashMap::<Vec<u64>, usize>::new());
        // A rank by the set that determines it (replication units or PSUs of the domain: the
        // rank of PSU factors is structural), computed once.
        let cached = |key: Vec<u32>, rank: &dyn Fn(&[u32]) -> usize| -> usize {
            if let Some(&known) = rank_cache
                .lock()
                .ok()
                .and_then(|c| c.get(&key).copied())
                .as_ref()
            {
                return known;
            }
            let value = rank(&key);
            if let Ok(mut c) = rank_cache.lock() {
                c.insert(key, value);
            }
            value
        };
        let rank_df =
            |psus: &[u32], n_rows: usize, rows: &crate::estimate::DomainRows<'_>| -> f64 {
                let rank = if reweighted {
                    // Exact on small domains over their rows, on larger ones over their groups (the
                    // same rank); otherwise (supplied weights, a calibration not collapsed to cells,
                    // too many groups) larger domains take the rank of the whole replicate matrix
                    // (docs/variance.md).
                    if n_rows <= 2 * n_rep {
                        rank_over(&rows())
                    } else if let Some(g) = by_groups {
                        // Keyed by the groups and their Σ a², which fix the numerical rank: the
                        // same groups with other weights can fall on the other side of the
                        // tolerance, and the first of them to be computed must not decide.
                        let (present, sum_sq) = g.present(&rows());
                        let key: Vec<u64> = present
                            .iter()
                            .zip(&sum_sq)
                            .flat_map(|(&g, x)| [u64::from(g), x.to_bits()])
                            .collect();
                        if let Some(&known) = group_rank_cache
                            .lock()
                            .ok()
                            .and_then(|c| c.get(&key).copied())
                            .as_ref()
                        {
                            known
                        } else {
                            let rank = g.rank_of_groups(
                                &rank_multipliers,
                                &rank_groups,
                                &succeeded,
                                (&present, &sum_sq),
                                &largest_multiplier,
                            );
                            if let Ok(mut c) = group_rank_cache.lock() {
                                c.insert(key, rank);
                            }
                            rank
                        }
                    } else {
                        full_rank
                    }
                } else if let Some(units) = ssu_units {
                    // Replication units are not the PSUs: the domain's units key the cache.
                    let rows = rows();
                    let mut present: Vec<u32> = rows.iter().map(|&i| units[i]).collect();
                    present.sort_unstable();
                    present.dedup();
                    cached(present, &|present| factor_rank(&rep, present, &rows, units))
                } else {
                    cached(psus.to_vec(), &|psus| {
                        factor_rank(&rep, psus, &rows(), inputs.design.psu_of_row())
                    })
                };
                rank as f64 - 1.0
            };
        // The whole replicate design: its rows with a non-zero weight and their PSUs (R's
        // degf(design) of a full replicate design; contrasts and `domain_df = "full"`).
        let whole_rows = || -> std::borrow::Cow<'_, [usize]> {
            (0..n).filter(|&i| scheme.weights[i] != 0.0).collect()
        };
        let n_whole = scheme.weights.iter().filter(|&&w| w != 0.0).count();
        let whole_psus: Vec<u32> = {
            let mut present = vec![false; inputs.design.n_psu()];
            for (&w, &p) in scheme.weights.iter().zip(inputs.design.psu_of_row()) {
                present[p as usize] |= w != 0.0;
            }
            (0..present.len() as u32)
                .filter(|&p| present[p as usize])
                .collect()
        };
        let whole_rank_df = std::sync::OnceLock::new();
        let full_domain = inputs.request.domain_df == crate::estimate::DomainDf::Full;
        let df = |psus: &[u32], n_rows: usize, rows: &crate::estimate::DomainRows<'_>| -> f64 {
            match df_rule {
                None => profile_df.unwrap_or(f64::NAN),
                Some(ReplicateDfRule::Design) if full_domain => {
                    design_df(inputs.design, &whole_psus)
                }
                Some(ReplicateDfRule::Design) => design_df(inputs.design, psus),
                Some(ReplicateDfRule::Rank) if full_domain => {
                    *whole_rank_df.get_or_init(|| rank_df(&whole_psus, n_whole, &whole_rows))
                }
                Some(ReplicateDfRule::Rank) => rank_df(psus, n_rows, rows),
            }
        };
        let mut scheme_rows = crate::estimate::rows_with_variances(
            inputs.request,
            &prepared,
            scheme,
            &variances,
            &logit_variances,
            &df,
        )?;
        if !quantiles.is_empty() {
            scheme_rows.extend(crate::estimate::quantile_replicate_rows(
                inputs.request,
                &prepared,
                &quantiles,
                scheme,
                &extra_thetas[..n_quantile * n_rep],
                n_rep,
                &|replicates, centre| rep.variance(replicates, centre),
                &df,
            ));
            crate::estimate::order_categories(inputs.request, &mut scheme_rows);
        }
        rows.extend(scheme_rows);
        if !inputs.request.tests.is_empty() {
            tests.extend(crate::estimate::replicate_tests(
                inputs.request,
                &prepared,
                scheme,
                &extra_thetas[n_quantile * n_rep..],
                n_rep,
                &|replicates, centre| rep.variance(replicates, centre),
                &df,
            )?);
        }
        if !inputs.request.contrasts.is_empty() {
            // Contrasts take the df of the whole replicate design (R's degf()).
            let whole_df = df(&whole_psus, n_whole, &whole_rows);
            contrasts.extend(crate::estimate::replicate_contrasts(
                inputs.request,
                &prepared,
                scheme,
                &full,
                &thetas,
                n_rep,
                &|replicates, centre| rep.variance(replicates, centre),
                whole_df,
            ));
        }
        if inputs.keep_weights {
            for (r, w) in matrix.into_iter().enumerate() {
                let name = format!("{}_{}_{:03}", scheme.name, settings.name, r + 1);
                kept.push((
                    name,
                    w.unwrap_or_else(|| vec![f64::NAN; scheme.weights.len()]),
                ));
            }
        }
    }
    inputs.progress.finish();
    // Test, then scheme (the schemes were run in order).
    let position = |name: &str| inputs.request.tests.iter().position(|t| t.name == name);
    tests.sort_by_key(|t: &crate::estimate::TestRow| position(&t.test));
    Ok(Output {
        rows,
        contrasts,
        tests,
        warnings,
        weights: kept,
    })
}

/// Design df of the PSUs `psus` (sorted, distinct): their number minus the number of strata
/// they fall in, as the Taylor rows' `degf()`.
fn design_df(design: &Design, psus: &[u32]) -> f64 {
    let stratum_of_psu = design.stratum_of_psu();
    let mut seen = vec![false; design.n_strata()];
    let mut strata = 0usize;
    for &p in psus {
        let h = stratum_of_psu[p as usize] as usize;
        if !seen[h] {
            seen[h] = true;
            strata += 1;
        }
    }
    psus.len() as f64 - strata as f64
}

/// What the replicates leave out of the design, said once per method: variance of later stages
/// that Taylor adds (R warns "Finite population corrections after first stage have been
/// dropped"), and the order SDR takes the PSUs in.
fn design_warnings(
    settings: &ReplicateStageSettings,
    method: &ReplicateMethod,
    design: &Design,
) -> Vec<String> {
    let mut out = Vec::new();
    let name = &settings.name;
    if let ReplicateMethod::Sdr { sort: None, .. } = method {
        out.push(format!(
            "{name}: successive differences are taken between PSUs in the order of the data file; set [variance] sort = \"<column>\" to order them by a sort variable (e.g. the frame's geographic order)"
        ));
    }
    if matches!(method, ReplicateMethod::Supplied(_))
        || design.n_stages() < 2
        || !design.stages[0].has_fpc
    {
        return out;
    }
    let certainty: Vec<&str> = (0..design.n_strata())
        .filter(|&h| super::certainty_stratum(design, h))
        .map(|h| design.stratum_label(h))
        .collect();
    let sampled = design.n_strata() - certainty.len();
    let list = |labels: &[&str]| {
        let mut s = labels
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if labels.len() > 5 {
            s.push_str(&format!(" and {} more", labels.len() - 5));
        }
        s
    };
    match settings.certainty {
        Certainty::Psu => {
            let lost = if certainty.is_empty() {
                String::new()
            } else {
                format!(
                    "; the {} certainty strata (N_h = n_h: {}) get no replicate and contribute no variance at all",
                    certainty.len(),
                    list(&certainty)
                )
            };
            out.push(format!(
                "{name}: replicates are formed from first-stage PSUs only, so the variance of later sampling stages that Taylor adds (f_h · V_2h in every stratum with a first-stage fpc) is dropped{lost}; set [variance] certainty = \"ssu\" to replicate the second-stage units of certainty strata, or use variance = \"taylor\""
            ));
        }
        Certainty::Ssu if sampled > 0 => out.push(format!(
            "{name}: in the {sampled} strata that are not certainty strata the second-stage share f_h · V_2h of the Taylor variance is dropped (small when first-stage sampling fractions f_h are small)"
        )),
        Certainty::Ssu => {}
    }
    if settings.certainty == Certainty::Ssu
        && !certainty.is_empty()
        && design.n_stages() > 2
        && design.stages[1].has_fpc
    {
        out.push(format!(
            "{name}: in certainty strata the second-stage units are replicated; the variance of the third and later stages is dropped"
        ));
    }
    out
}

/// Numerical rank of the kept replicate weights (replicates as columns) over the kept-row
/// positions `rows`, as R's `qr(weights(design, "analysis"), tol = 1e-5)$rank`. Dropped
/// replicates are left out.
fn replicate_rank(matrix: &[Option<Vec<f64>>], rows: &[usize]) -> usize {
    let columns: Vec<&Vec<f64>> = matrix.iter().flatten().collect();
    let m = columns.len();
    if m == 0 || rows.is_empty() {
        return 0;
    }
    let mut a = Vec::with_capacity(rows.len() * m);
    for c in &columns {
        a.extend(rows.iter().map(|&i| c[i]));
    }
    numerical_rank(&a, rows.len(), m)
}

/// Rank of the replicate weights over `rows` when every replicate weight is a PSU factor times
/// the row's weight: rows of one PSU are proportional, so one representative row per PSU (with
/// its weight) gives the same rank at a fraction of the cost.
fn factor_rank(rep: &ReplicateDesign, psus: &[u32], rows: &[usize], psu_of_row: &[u32]) -> usize {
    let n_rep = rep.n_replicates();
    let mut first_row = std::collections::HashMap::new();
    for &i in rows {
        first_row.entry(psu_of_row[i]).or_insert(i);
    }
    let base = rep.base_weights();
    let mut a = Vec::with_capacity(psus.len() * n_rep);
    for r in 0..n_rep {
        let Some(f) = rep.psu_factors(r) else {
            // Supplied weights: per-row columns.
            let w = rep.replicate_weights(r);
            a.extend(psus.iter().map(|p| w[first_row[p]]));
            continue;
        };
        a.extend(psus.iter().map(|p| f[*p as usize] * base[first_row[p]]));
    }
    numerical_rank(&a, psus.len(), n_rep)
}

/// Replicate design weights of every used row, respondents and unit nonrespondents, from
/// supplied columns: the column itself for combined weights (R `combined.weights = TRUE`), else
/// the column times the design weight. A blank or negative weight is an error naming the column
/// and the row's position among the used rows.
fn supplied_design_weights(
    inputs: &Inputs<'_>,
    spec: &SuppliedSpec,
) -> Result<Vec<Vec<f64>>, String> {
    spec.columns
        .iter()
        .map(|name| {
            let column = inputs
                .frame
                .column(name)
                .ok_or_else(|| format!("replicate weight column {name} is not in the data"))?;
            let crate::frame::ColumnData::Num(values) = &column.data else {
                return Err(format!("replicate weight column {name} is not numeric"));
            };
            values
                .iter()
                .zip(&column.state)
                .zip(inputs.base_weights)
                .enumerate()
                .map(|(i, ((x, &state), &d))| {
                    if state != crate::frame::CellState::Value || !(x.is_finite() && x >= 0.0) {
                        return Err(format!(
                            "replicate weight column {name} has no usable weight for used row {} \
                             (respondent or not, every sampled unit needs its replicate weights \
                             when nonresponse is recomputed; or set [variance] nonresponse = \
                             \"fixed\")",
                            i + 1
                        ));
                    }
                    Ok(if spec.combined_weights { x } else { x * d })
                })
                .collect()
        })
        .collect()
}

/// The replication unit (index into the replicate factors) of every used frame row:
/// respondents from `unit_of_row`, unit nonrespondents by their stratum and PSU values (none
/// when their PSU has no respondent, or when elements are the PSUs). With `ssu` (certainty
/// strata replicated by their second-stage units) a nonrespondent of a certainty stratum is
/// placed by its second-stage unit too (none when that unit has no respondent).
fn psu_of_every_row(inputs: &Inputs<'_>, unit_of_row: &[u32], ssu: bool) -> Vec<Option<u32>> {
    let spec = inputs.design_spec;
    let n = inputs.frame.n_rows();
    let mut out = vec![None; n];
    for (k, &r) in inputs.respondents.iter().enumerate() {
        out[r] = Some(unit_of_row[k]);
    }
    let Some(psu_col) = spec.psu.first().and_then(|c| inputs.frame.column(c)) else {
        return out;
    };
    let ssu_col = if ssu {
        spec.psu.get(1).and_then(|c| inputs.frame.column(c))
    } else {
        None
    };
    let strata_cols: Vec<_> = spec
        .strata
        .iter()
        .filter_map(|c| inputs.frame.column(c))
        .collect();
    let key = |r: usize, second: bool| {
        (
            strata_cols
                .iter()
                .map(|c| c.display(r).unwrap_or_default())
                .collect::<Vec<_>>(),
            psu_col.display(r).unwrap_or_default(),
            ssu_col
                .filter(|_| second)
                .and_then(|c| c.display(r))
                .unwrap_or_default(),
        )
    };
    let stratum_of_row = inputs.design.stratum_of_row();
    let mut index = std::collections::HashMap::new();
    for (k, &r) in inputs.respondents.iter().enumerate() {
        let certainty = ssu_col.is_some()
            && super::certainty_stratum(inputs.design, stratum_of_row[k] as usize);
        index.entry(key(r, certainty)).or_insert(unit_of_row[k]);
    }
    for (r, slot) in out.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = index
                .get(&key(r, false))
                .or_else(|| index.get(&key(r, true)))
                .copied();
        }
    }
    out
}
