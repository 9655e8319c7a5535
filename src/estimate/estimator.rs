//! The estimators, each stated once: its point estimate from weighted sums over a domain and its
//! linearized score (influence function). Every path calls these: fine cells, per-breakdown
//! sums, row scores, replicate sums, contrasts.
//!
//! | estimator | θ̂ | score z_i (zero outside the domain) |
//! |---|---|---|
//! | mean, proportion | Σ w y / Σ w | w_i (y_i − θ̂) / Σ w |
//! | total | Σ w y | w_i y_i |
//! | ratio | Σ w y / Σ w x | w_i (y_i − θ̂ x_i) / Σ w x |
//!
//! written z_i = w_i e_i / s with the residual e_i = y_i − θ̂ x̃_i (x̃ = 1, 0, x) and the scale
//! s = Σ w, 1, Σ w x. The score of a group of rows (a PSU, a fine cell) is (Σ w y − θ̂ Σ w x̃) / s.
//! A distribution reaches these as its parts, each a proportion; a quantile's interval comes from
//! the distribution function at the estimated quantile, the mean of I(y ≤ q̂) (Woodruff), so both
//! kinds take the mean's formulas here.
//! References: `docs/methods.md` (Estimators and linearized scores).

use super::ci;
use crate::questionnaire::IndicatorKind;

/// θ̂ of a domain from Σ w, Σ w y and Σ w x over its rows (NaN for an empty mean or ratio).
pub(crate) fn point(kind: IndicatorKind, sw: f64, swy: f64, swx: f64) -> f64 {
    match kind {
        IndicatorKind::Mean
        | IndicatorKind::Proportion
        | IndicatorKind::Distribution
        | IndicatorKind::Quantile => swy / sw,
        IndicatorKind::Total => swy,
        IndicatorKind::Ratio => swy / swx,
    }
}

/// x̃ of one row: the coefficient of θ̂ in its residual.
pub(super) fn theta_coefficient(kind: IndicatorKind, x: f64) -> f64 {
    match kind {
        IndicatorKind::Mean
        | IndicatorKind::Proportion
        | IndicatorKind::Distribution
        | IndicatorKind::Quantile => 1.0,
        IndicatorKind::Total => 0.0,
        IndicatorKind::Ratio => x,
    }
}

/// The residual Σ w y − θ̂ Σ w x̃ of a group of rows from its sums Σ w y, Σ w, Σ w x; with
/// (y, 1, x) it is one row's e = y − θ̂ x̃.
pub(super) fn residual(kind: IndicatorKind, theta: f64, wy: f64, w: f64, wx: f64) -> f64 {
    match kind {
        IndicatorKind::Mean
        | IndicatorKind::Proportion
        | IndicatorKind::Distribution
        | IndicatorKind::Quantile => wy - theta * w,
        IndicatorKind::Total => wy,
        IndicatorKind::Ratio => wy - theta * wx,
    }
}

/// The score's divisor s: the domain's Σ w (mean), 1 (total) or Σ w x (ratio).
pub(super) fn scale(kind: IndicatorKind, sw: f64, swx: f64) -> f64 {
    match kind {
        IndicatorKind::Mean
        | IndicatorKind::Proportion
        | IndicatorKind::Distribution
        | IndicatorKind::Quantile => sw,
        IndicatorKind::Total => 1.0,
        IndicatorKind::Ratio => swx,
    }
}

/// R's `deff = TRUE`: V over the SRS-without-replacement variance with the same n, from the
/// domain's weighted variance s²_w = Σ w (y − ȳ)² / Σ w · n/(n − 1) (R `svyvar`); `ss` is
/// Σ w (y − ȳ)², `nobs` the rows with non-zero weight. None for ratios (R gives none).
pub(super) fn design_effect(
    kind: IndicatorKind,
    variance: f64,
    ss: f64,
    sw: f64,
    nobs: usize,
) -> Option<f64> {
    match kind {
        IndicatorKind::Ratio => None,
        _ if nobs < 2 => None,
        kind => {
            let n = nobs as f64;
            let svyvar = ss / sw * n / (n - 1.0);
            if kind == IndicatorKind::Total {
                ci::deff_total(variance, svyvar, sw, n)
            } else {
                ci::deff_mean(variance, svyvar, sw, n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The score of a group of rows is the sum of its rows' scores, for every estimator.
    #[test]
    fn group_residual_is_the_sum_of_row_residuals() {
        let (w, y, x) = ([2.0, 0.5, 3.0], [1.0, 0.0, 4.0], [2.0, 1.0, 5.0]);
        for kind in [
            IndicatorKind::Mean,
            IndicatorKind::Proportion,
            IndicatorKind::Total,
            IndicatorKind::Ratio,
        ] {
            let sums = |f: &dyn Fn(usize) -> f64| (0..3).map(f).sum::<f64>();
            let (sw, swy, swx) = (
                sums(&|i| w[i]),
                sums(&|i| w[i] * y[i]),
                sums(&|i| w[i] * x[i]),
            );
            let theta = point(kind, sw, swy, swx);
            let by_row = sums(&|i| w[i] * residual(kind, theta, y[i], 1.0, x[i]));
            let by_group = residual(kind, theta, swy, sw, swx);
            assert!((by_row - by_group).abs() < 1e-12, "{kind:?}");
            let via_coefficient = sums(&|i| w[i] * (y[i] - theta * theta_coefficient(kind, x[i])));
            assert!((by_row - via_coefficient).abs() < 1e-12, "{kind:?}");
            // Scores of a mean, proportion or ratio sum to zero over the domain.
            if kind != IndicatorKind::Total {
                assert!(by_group.abs() < 1e-12, "{kind:?}: {by_group}");
            }
            assert!(scale(kind, sw, swx) > 0.0);
        }
    }

    #[test]
    fn point_estimates() {
        assert_eq!(point(IndicatorKind::Mean, 4.0, 2.0, 0.0), 0.5);
        assert_eq!(point(IndicatorKind::Total, 4.0, 2.0, 0.0), 2.0);
        assert_eq!(point(IndicatorKind::Ratio, 4.0, 2.0, 8.0), 0.25);
        assert!(point(IndicatorKind::Mean, 0.0, 0.0, 0.0).is_nan());
    }

    #[test]
    fn no_design_effect_for_ratios_or_single_rows() {
        assert_eq!(design_effect(IndicatorKind::Ratio, 1.0, 1.0, 1.0, 10), None);
        assert_eq!(design_effect(IndicatorKind::Mean, 1.0, 1.0, 1.0, 1), None);
    }
}
