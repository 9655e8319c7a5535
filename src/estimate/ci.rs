//! Confidence intervals and design effects, as R `survey` computes them.
//!
//! Wald intervals follow `confint(svymean(...), df = degf(design))`; proportion intervals follow
//! `svyciprop(method = ...)` of survey 4.1 (`wilson` as survey 4.5). Formulas, with `α = 1 − level`,
//! `t = qt(1 − α/2, df)`:
//!
//! - `mean`: `p ± t·se`; `normal`: `p ± z·se`; for proportions truncated to [0, 1] (R does not
//!   truncate).
//! - `logit`, `xlogit`: `expit(logit(p) ± t·se/(p(1−p)))` (R's `logit` comes from `svyglm`, equal
//!   to this to about 1e-9).
//! - `asin`: `sin²(asin(√p) ± t·se/(2√(p(1−p))))` with the angle kept in [0, π/2] (R does not
//!   clamp it, so near 0 or 1 its bound wraps past π/2 and its interval need not contain `p`).
//! - `beta` (Korn & Graubard 1998): `n_eff = p(1−p)/se² · (qt(α/2, nrow − 1)/qt(α/2, df))²`,
//!   `[qbeta(α/2, n_eff·p, n_eff(1−p)+1), qbeta(1−α/2, n_eff·p+1, n_eff(1−p))]`.
//! - `wilson`: `n_eff = p(1−p)/se²`, `[p + t²/(2n_eff) ∓ t/(2n_eff)·√(4n_eff·p(1−p) + t²)] / (1 + t²/n_eff)`.
//!
//! Undefined cases return `None` rather than NaN: `se` negative or NaN, `p` outside [0, 1],
//! `level` outside (0, 1), `df ≤ 0` or NaN for the t-based methods, `beta_nrow ≤ 1` for `beta`.
//! Degenerate but defined cases have documented closed forms (see [`proportion_ci`]).

use std::fmt;
use std::str::FromStr;

use super::probability::{qbeta, qnorm, qt};

/// How a proportion's (or mean's) interval is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CiMethod {
    /// Wald interval with the t quantile on the design df.
    Mean,
    /// Wald interval with the normal quantile.
    Normal,
    /// Wald interval on the logit scale (R's `svyciprop(method = "logit")`).
    Logit,
    /// Korn–Graubard Clopper–Pearson interval with an effective sample size.
    Beta,
    /// Same closed form as `logit` (R computes it without a glm).
    Xlogit,
    /// Wald interval on the arcsine-square-root scale.
    Asin,
    /// Wilson score interval with an effective sample size (survey ≥ 4.5).
    Wilson,
    /// A quantile's Woodruff interval: the interval of the distribution function at the
    /// quantile, read back through the quantile rule (R `svyquantile(interval.type = "mean")`).
    Woodruff,
    /// A quantile's interval from the replicates' own quantiles (R `svyquantile(interval.type
    /// = "quantile")`).
    ReplicateQuantile,
}

impl CiMethod {
    /// True for the intervals of quantile indicators, which `[estimation] ci` does not list.
    pub fn is_quantile_interval(self) -> bool {
        matches!(self, CiMethod::Woodruff | CiMethod::ReplicateQuantile)
    }
}

impl CiMethod {
    /// Lowercase name, as accepted by [`FromStr`] and R's `method =`.
    pub fn as_str(self) -> &'static str {
        match self {
            CiMethod::Mean => "mean",
            CiMethod::Normal => "normal",
            CiMethod::Logit => "logit",
            CiMethod::Beta => "beta",
            CiMethod::Xlogit => "xlogit",
            CiMethod::Asin => "asin",
            CiMethod::Wilson => "wilson",
            CiMethod::Woodruff => "woodruff",
            CiMethod::ReplicateQuantile => "quantile",
        }
    }
}

impl fmt::Display for CiMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unknown CI method name.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown CI method \"{0}\" (expected mean, normal, logit, beta, xlogit, asin or wilson)")]
pub struct UnknownCiMethod(pub String);

impl FromStr for CiMethod {
    type Err = UnknownCiMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mean" => Ok(CiMethod::Mean),
            "normal" | "wald" => Ok(CiMethod::Normal),
            "logit" => Ok(CiMethod::Logit),
            "beta" => Ok(CiMethod::Beta),
            "xlogit" => Ok(CiMethod::Xlogit),
            "asin" => Ok(CiMethod::Asin),
            "wilson" => Ok(CiMethod::Wilson),
            "woodruff" => Ok(CiMethod::Woodruff),
            "quantile" => Ok(CiMethod::ReplicateQuantile),
            _ => Err(UnknownCiMethod(s.to_string())),
        }
    }
}

/// Upper `1 − α/2` quantile: normal, or t on `df` (normal for infinite df). `None` if undefined.
fn crit(level: f64, df: f64, normal: bool) -> Option<f64> {
    if !(level > 0.0 && level < 1.0) {
        return None;
    }
    let p = 1.0 - (1.0 - level) / 2.0;
    if normal {
        return Some(qnorm(p));
    }
    if df.is_nan() || df <= 0.0 {
        return None;
    }
    let q = qt(p, df);
    q.is_finite().then_some(q)
}

/// Wald interval `estimate ± q·se`, `q` the t quantile on `df` (or normal when `normal`).
/// `None` when `se` is negative/NaN, `estimate` not finite, `level` outside (0, 1) or (t only)
/// `df ≤ 0`/NaN.
pub fn wald_ci(estimate: f64, se: f64, df: f64, level: f64, normal: bool) -> Option<(f64, f64)> {
    if !estimate.is_finite() || se.is_nan() || se < 0.0 || se.is_infinite() {
        return None;
    }
    let q = crit(level, df, normal)?;
    Some((estimate - q * se, estimate + q * se))
}

fn expit(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Interval for a proportion `p` with linearized standard error `se`, by `method`.
///
/// `df` is R's `degf(design)`; `beta_nrow` is R's `nrow(design)` (see the oracle notes: the
/// domain's row count for non-calibrated subsets, all rows for calibrated designs); it is used
/// by `beta` only.
///
/// Degenerate cases (R gives NaN or an error there; we give these closed forms):
/// - `se = 0` with `0 < p < 1`: `[p, p]` for every method.
/// - `p = 0` or `p = 1`: `logit`, `xlogit`, `asin` give `[p, p]`; `mean`/`normal` give the Wald
///   interval `p ± q·se` truncated to [0, 1]; `beta` gives the Clopper–Pearson closed forms
///   `[0, qbeta(1−α/2, 1, n_eff)]` / `[qbeta(α/2, n_eff, 1), 1]` and `wilson` its score interval,
///   both with `n_eff` = `beta_nrow` (times the df factor for `beta`) when `se = 0`, because
///   `p(1−p)/se²` is undefined.
pub fn proportion_ci(
    method: CiMethod,
    p: f64,
    se: f64,
    df: f64,
    level: f64,
    beta_nrow: f64,
) -> Option<(f64, f64)> {
    if !(0.0..=1.0).contains(&p) || se.is_nan() || se < 0.0 || se.is_infinite() {
        return None;
    }
    let normal = method == CiMethod::Normal;
    let q = crit(level, df, normal)?;
    let alpha = 1.0 - level;
    let interior = p > 0.0 && p < 1.0;
    match method {
        // Quantile intervals are not proportions' (estimate/quantile.rs).
        CiMethod::Woodruff | CiMethod::ReplicateQuantile => None,
        // A proportion lies in [0, 1]; R leaves the Wald ends unclamped, we truncate them.
        CiMethod::Mean | CiMethod::Normal => {
            Some(((p - q * se).clamp(0.0, 1.0), (p + q * se).clamp(0.0, 1.0)))
        }
        CiMethod::Logit | CiMethod::Xlogit => {
            if !interior || se == 0.0 {
                return Some((p, p));
            }
            let l = (p / (1.0 - p)).ln();
            let h = q * se / (p * (1.0 - p));
            Some((expit(l - h), expit(l + h)))
        }
        CiMethod::Asin => {
            if !interior || se == 0.0 {
                return Some((p, p));
            }
            let a = p.sqrt().asin();
            let h = q * se / (2.0 * (p * (1.0 - p)).sqrt());
            // Keep the angle in [0, π/2], where sin² is increasing: unclamped (R), a bound past
            // π/2 wraps back below p.
            let angle = |x: f64| x.clamp(0.0, std::f64::consts::FRAC_PI_2);
            Some((angle(a - h).sin().powi(2), angle(a + h).sin().powi(2)))
        }
        CiMethod::Beta => {
            if beta_nrow.is_nan() || beta_nrow <= 1.0 {
                return None;
            }
            let ratio = qt(alpha / 2.0, beta_nrow - 1.0) / qt(alpha / 2.0, df);
            let base = if se > 0.0 && interior {
                p * (1.0 - p) / (se * se)
            } else {
                beta_nrow
            };
            if interior && se == 0.0 {
                return Some((p, p));
            }
            let n_eff = base * ratio * ratio;
            if !(n_eff > 0.0 && n_eff.is_finite()) {
                return None;
            }
            let lo = if p == 0.0 {
                0.0
            } else {
                qbeta(alpha / 2.0, n_eff * p, n_eff * (1.0 - p) + 1.0)
            };
            let hi = if p == 1.0 {
                1.0
            } else {
                qbeta(1.0 - alpha / 2.0, n_eff * p + 1.0, n_eff * (1.0 - p))
            };
            (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
        }
        CiMethod::Wilson => {
            if interior && se == 0.0 {
                return Some((p, p));
            }
            let n_eff = if se > 0.0 && interior {
                p * (1.0 - p) / (se * se)
            } else {
                beta_nrow
            };
            if !(n_eff > 0.0 && n_eff.is_finite()) {
                return None;
            }
            let t2 = q * q;
            let centre = p + t2 / (2.0 * n_eff);
            let half = q / (2.0 * n_eff) * (4.0 * n_eff * p * (1.0 - p) + t2).sqrt();
            let den = 1.0 + t2 / n_eff;
            Some(((centre - half) / den, (centre + half) / den))
        }
    }
}

/// R's `svyvar` of one variable with the design weights: `Σw(y−ȳ)²/Σw · n/(n−1)`, with `ȳ` the
/// weighted mean and `n` the number of rows with non-zero weight. Rows with `w = 0` are ignored.
/// `None` when fewer than two rows have weight.
pub fn svyvar(y: &[f64], w: &[f64]) -> Option<f64> {
    let (mut sw, mut swy, mut n) = (0.0, 0.0, 0usize);
    for (&yi, &wi) in y.iter().zip(w) {
        if wi != 0.0 {
            sw += wi;
            swy += wi * yi;
            n += 1;
        }
    }
    if n < 2 || sw <= 0.0 {
        return None;
    }
    let m = swy / sw;
    let ss: f64 = y
        .iter()
        .zip(w)
        .filter(|(_, w)| **w != 0.0)
        .map(|(&yi, &wi)| wi * (yi - m) * (yi - m))
        .sum();
    let n = n as f64;
    Some(ss / sw * n / (n - 1.0))
}

/// Logit interval from a standard error on the logit scale: expit(logit p ± t·se_logit). This is
/// R's `svyciprop(method = "logit")` on a replicate-weight design, where `svyglm` is refitted on
/// every replicate and se_logit is the replicate SE of logit(p̂). `None` where p ∉ (0, 1) or the
/// inputs are not finite (at p = 0 or 1, [p, p]).
pub fn logit_scale_ci(p: f64, se_logit: f64, df: f64, level: f64) -> Option<(f64, f64)> {
    if !(0.0..=1.0).contains(&p) || !(level > 0.0 && level < 1.0) || !(df > 0.0) {
        return None;
    }
    if p == 0.0 || p == 1.0 {
        return Some((p, p));
    }
    if se_logit == f64::INFINITY {
        // A replicate at p̂_r = 0 or 1 (see the replicate stage): the whole unit interval.
        return Some((0.0, 1.0));
    }
    if !se_logit.is_finite() || se_logit < 0.0 {
        return None;
    }
    let t = qt(1.0 - (1.0 - level) / 2.0, df);
    let l = (p / (1.0 - p)).ln();
    let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
    Some((expit(l - t * se_logit), expit(l + t * se_logit)))
}

/// Variance of a mean under simple random sampling without replacement with the same number of
/// observations, as R's `svymean(deff = TRUE)`: `svyvar · (psum − nobs)/(psum · nobs)`, where
/// `psum` is the sum of the sampling weights and `nobs` the number of rows with non-zero weight.
/// `None` when `psum < nobs` (R: NA, "are weights correctly scaled?").
pub fn srs_variance_mean(svyvar: f64, psum: f64, nobs: f64) -> Option<f64> {
    (psum >= nobs && nobs > 0.0).then(|| svyvar * (psum - nobs) / (psum * nobs))
}

/// Variance of a total under SRS without replacement, as R's `svytotal(deff = TRUE)`:
/// `svyvar · psum² · (psum − nobs)/(psum · nobs)`.
pub fn srs_variance_total(svyvar: f64, psum: f64, nobs: f64) -> Option<f64> {
    srs_variance_mean(svyvar, psum, nobs).map(|v| v * psum * psum)
}

/// Design effect of a mean: `v / srs_variance_mean(...)` (R's `deff(svymean(..., deff = TRUE))`).
pub fn deff_mean(v: f64, svyvar: f64, psum: f64, nobs: f64) -> Option<f64> {
    srs_variance_mean(svyvar, psum, nobs)
        .filter(|&s| s > 0.0)
        .map(|s| v / s)
}

/// Design effect of a total: `v / srs_variance_total(...)`.
pub fn deff_total(v: f64, svyvar: f64, psum: f64, nobs: f64) -> Option<f64> {
    srs_variance_total(svyvar, psum, nobs)
        .filter(|&s| s > 0.0)
        .map(|s| v / s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Minimal CSV reader for the fixtures: quoted fields, blank = `None`.
    use crate::test_support::{read_csv, rel};

    struct Ref {
        design: String,
        weighting: String,
        estimator: String,
        method: String,
        estimate: f64,
        se: f64,
        lo: f64,
        hi: f64,
        df: f64,
        n: f64,
    }

    fn refs(text: &str) -> Vec<Ref> {
        let (h, rows) = read_csv(text);
        let col = |name: &str| h.iter().position(|c| c == name).unwrap_or(usize::MAX);
        let num = |r: &Vec<Option<String>>, c: usize| {
            r[c].as_deref()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let s = |r: &Vec<Option<String>>, c: usize| r[c].clone().unwrap_or_default();
        rows.iter()
            .map(|r| Ref {
                design: s(r, col("design")),
                weighting: s(r, col("weighting")),
                estimator: s(r, col("estimator")),
                method: s(r, col("ci_method")),
                estimate: num(r, col("estimate")),
                se: num(r, col("se")),
                lo: num(r, col("ci_low")),
                hi: num(r, col("ci_high")),
                df: num(r, col("df")),
                n: num(r, col("n_unweighted")),
            })
            .collect()
    }

    fn check(r: &Ref, beta_nrow: f64) -> Option<f64> {
        let (lo, hi) = match r.method.as_str() {
            "t_degf" | "t_degf_full" => wald_ci(r.estimate, r.se, r.df, 0.95, false)?,
            "normal" => wald_ci(r.estimate, r.se, r.df, 0.95, true)?,
            "likelihood" => return None,
            m => proportion_ci(m.parse().ok()?, r.estimate, r.se, r.df, 0.95, beta_nrow)?,
        };
        Some(rel(lo, r.lo).max(rel(hi, r.hi)))
    }

    #[test]
    fn cvs_demo_reference_intervals() {
        let mut worst = [0.0f64; 3];
        let mut n = 0;
        for r in refs(include_str!("../../fixtures/demo/reference.csv"))
            .into_iter()
            .filter(|r| r.design == "taylor")
        {
            let beta_nrow = match r.weighting.as_str() {
                "design" | "nr_adjusted" => r.n,
                _ => 17022.0,
            };
            let e = check(&r, beta_nrow).unwrap_or(f64::INFINITY);
            let (k, tol) = match r.method.as_str() {
                "logit" => (0, 1e-8),
                "beta" => (1, 1e-10),
                _ => (2, 1e-10),
            };
            assert!(
                e < tol,
                "{} {} {}: rel {e:e}",
                r.weighting,
                r.estimator,
                r.method
            );
            worst[k] = worst[k].max(e);
            n += 1;
        }
        assert!(n > 2000);
        eprintln!(
            "cvs CIs: {n} rows, worst logit {:e} beta {:e} wald {:e}",
            worst[0], worst[1], worst[2]
        );
    }

    #[test]
    fn api_reference_intervals() {
        let mut n = 0;
        let taylor = |r: &Ref| {
            !r.design.contains("_rep_") && (r.weighting == "pw" || r.weighting == "implied_by_fpc")
        };
        for r in refs(include_str!("../../fixtures/api/reference.csv"))
            .into_iter()
            .filter(taylor)
        {
            let nrow = if r.estimator.starts_with("svyciprop") && r.df == 14.0 {
                183.0
            } else {
                200.0
            };
            let Some(e) = check(&r, nrow) else { continue };
            let tol = if r.method == "logit" { 1e-8 } else { 1e-10 };
            assert!(
                e < tol,
                "{} {} {}: rel {e:e}",
                r.weighting,
                r.estimator,
                r.method
            );
            n += 1;
        }
        assert!(n >= 40, "{n}");
    }

    #[test]
    fn wilson_formula_and_names() {
        // survey 4.5 formula from the oracle notes, by hand: p = 0.3, se = 0.05, df = 50.
        let (p, se, df) = (0.3f64, 0.05f64, 50.0);
        let t = qt(0.975, df);
        let n = p * (1.0 - p) / (se * se);
        let c = p + t * t / (2.0 * n);
        let h = t / (2.0 * n) * (4.0 * n * p * (1.0 - p) + t * t).sqrt();
        let d = 1.0 + t * t / n;
        let (lo, hi) =
            proportion_ci(CiMethod::Wilson, p, se, df, 0.95, 100.0).unwrap_or((f64::NAN, f64::NAN));
        assert!(rel(lo, (c - h) / d) < 1e-15 && rel(hi, (c + h) / d) < 1e-15);
        for m in [
            "mean", "normal", "logit", "beta", "xlogit", "asin", "wilson",
        ] {
            let parsed: CiMethod = m.parse().unwrap_or(CiMethod::Mean);
            assert_eq!(parsed.as_str(), m);
        }
        assert!("bogus".parse::<CiMethod>().is_err());
    }

    #[test]
    fn degenerate_cases_are_defined_or_none() {
        let all = [
            CiMethod::Mean,
            CiMethod::Normal,
            CiMethod::Logit,
            CiMethod::Beta,
            CiMethod::Xlogit,
            CiMethod::Asin,
            CiMethod::Wilson,
        ];
        for m in all {
            for &(p, se) in &[
                (0.0, 0.0),
                (1.0, 0.0),
                (0.4, 0.0),
                (0.4, 0.1),
                (1e-9, 1e-10),
                (0.999_999, 1e-4),
            ] {
                let ci = proportion_ci(m, p, se, 30.0, 0.95, 50.0);
                let (lo, hi) = ci.unwrap_or_else(|| panic!("{m} p={p} se={se} gave None"));
                assert!(lo.is_finite() && hi.is_finite(), "{m} {p} {se}: {lo} {hi}");
                assert!(
                    lo <= p + 1e-15 && hi >= p - 1e-15,
                    "{m} {p} {se}: {lo} {hi}"
                );
                assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
            }
            assert!(proportion_ci(m, 0.4, 0.1, 0.0, 0.95, 50.0).is_none() || m == CiMethod::Normal);
            assert!(proportion_ci(m, 0.4, f64::NAN, 10.0, 0.95, 50.0).is_none());
            assert!(proportion_ci(m, 1.5, 0.1, 10.0, 0.95, 50.0).is_none());
            assert!(proportion_ci(m, 0.4, 0.1, 10.0, 1.0, 50.0).is_none());
        }
        // Beta closed forms at p = 0 / 1: Clopper–Pearson with n_eff = nrow when df factor is 1.
        let (lo, hi) =
            proportion_ci(CiMethod::Beta, 0.0, 0.0, 49.0, 0.95, 50.0).unwrap_or((1.0, 0.0));
        assert_eq!(lo, 0.0);
        assert!(rel(hi, 1.0 - 0.025f64.powf(1.0 / 50.0)) < 1e-12);
        let (lo, hi) =
            proportion_ci(CiMethod::Beta, 1.0, 0.0, 49.0, 0.95, 50.0).unwrap_or((1.0, 0.0));
        assert_eq!(hi, 1.0);
        assert!(rel(lo, 0.025f64.powf(1.0 / 50.0)) < 1e-12);
        assert!(wald_ci(1.0, 0.5, -1.0, 0.95, false).is_none());
        assert_eq!(wald_ci(1.0, 0.0, 5.0, 0.95, false), Some((1.0, 1.0)));
    }
}
