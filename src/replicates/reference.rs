//! Replicate estimates of simple statistics (means, proportions, totals, ratios over a domain)
//! straight from each replicate's weights, and their variances: what the unit tests check the
//! replicate designs against R with. Runs estimate replicates in the stage (`stage.rs`).

use rayon::prelude::*;

use super::{ReplicateDesign, svr_var};
use crate::questionnaire::IndicatorKind;

impl ReplicateDesign {
    /// Variances of several statistics from a replicate × statistic table (as returned by
    /// [`run_replicates`]). As R, a replicate with any non-finite estimate is dropped for all.
    pub fn variances(&self, thetas: &[Vec<f64>], full: &[f64]) -> Vec<f64> {
        let keep: Vec<bool> = thetas
            .iter()
            .map(|t| t.iter().all(|x| x.is_finite()))
            .collect();
        (0..full.len())
            .map(|k| {
                let th: Vec<f64> = thetas
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(t, _)| t[k])
                    .collect();
                let rs: Vec<f64> = self
                    .rscales
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(s, _)| *s)
                    .collect();
                svr_var(&th, full[k], self.scale, &rs, self.mse)
            })
            .collect()
    }

    /// Replicate estimates and variances of `stats` in one call: each replicate's weights are
    /// expanded once and every statistic computed from them, in parallel, in a fixed order.
    pub fn estimate(&self, stats: &[Statistic<'_>]) -> ReplicateResult {
        let full = replicate_estimates(&self.base, stats);
        let thetas = run_replicates(
            self.n_rep,
            |r| self.replicate_weights(r),
            |w| replicate_estimates(w, stats),
        );
        let variance = self.variances(&thetas, &full);
        ReplicateResult {
            full,
            thetas,
            variance,
        }
    }
}

/// Output of [`ReplicateDesign::estimate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicateResult {
    /// Full-sample estimates.
    pub full: Vec<f64>,
    /// Replicate × statistic estimates.
    pub thetas: Vec<Vec<f64>>,
    /// Variances.
    pub variance: Vec<f64>,
}

/// One statistic over a domain: the same estimators as the Taylor path ([`crate::estimate`]).
#[derive(Debug, Clone, Copy)]
pub struct Statistic<'a> {
    /// Mean, proportion, total or ratio.
    pub kind: IndicatorKind,
    /// Analysis variable (numerator of a ratio).
    pub y: &'a [f64],
    /// Denominator of a ratio.
    pub x: Option<&'a [f64]>,
    /// Rows in the domain and universe with a defined value.
    pub domain: &'a [bool],
}

/// Estimates of `stats` under one set of weights (full sample or one replicate): Σ_D w y / Σ_D w
/// (mean, proportion), Σ_D w y (total), Σ_D w y / Σ_D w x (ratio). Pure; rows outside the domain
/// are never read.
pub fn replicate_estimates(weights: &[f64], stats: &[Statistic<'_>]) -> Vec<f64> {
    stats
        .iter()
        .map(|s| {
            let (mut sw, mut swy, mut swx) = (0.0, 0.0, 0.0);
            for (i, &w) in weights.iter().enumerate() {
                if s.domain[i] {
                    sw += w;
                    swy += w * s.y[i];
                    if let Some(x) = s.x {
                        swx += w * x[i];
                    }
                }
            }
            crate::estimate::estimator::point(s.kind, sw, swy, swx)
        })
        .collect()
}

/// Replicates per rayon task: large enough to amortise scheduling, small enough to balance.
const BLOCK: usize = 8;

/// Run `estimate` on the weights of every replicate, in parallel over blocks of replicates, and
/// return the replicate × statistic table in replicate order (identical at any thread count).
/// `weights_for_replicate(r)` is where a caller re-calibrates replicate r.
pub fn run_replicates<W, E>(
    n_replicates: usize,
    weights_for_replicate: W,
    estimate: E,
) -> Vec<Vec<f64>>
where
    W: Fn(usize) -> Vec<f64> + Sync,
    E: Fn(&[f64]) -> Vec<f64> + Sync,
{
    (0..n_replicates)
        .into_par_iter()
        .with_min_len(BLOCK)
        .map(|r| estimate(&weights_for_replicate(r)))
        .collect()
}
