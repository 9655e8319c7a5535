//! Taylor-linearization variance of a total of scores, as R's `svyrecvar` → `multistage` →
//! `onestage` → `onestrat` (survey 4.1, with the survey ≥ 4.2 definition of
//! `lonely.psu = "adjust"`).
//!
//! For a stage-stratum `h` with `n_h` sampled units, population `N_h` (∞ without FPC) and unit
//! totals `t_hi` of the scores:
//!
//! ```text
//! V_h = (1 − f_h) · n_h/(n_h − 1) · Σ_i (t_hi − t̄_h)²,    f_h = n_h / N_h,   t̄_h = Σ_i t_hi / n_h
//! ```
//!
//! (Wolter 2007, §1.4 and ch. 6; Särndal, Swensson & Wretman 1992, §4.3–4.5). Units of the stratum
//! with no row in a domain subset count as zero totals (R pads to `n_h`). Strata with
//! `1 − f_h < 1e-7` contribute 0 (certainty strata). A multistage design adds, when an FPC is given,
//! each first-stage unit's second-stage variance multiplied by `n_h / N_h` of its stratum, and so
//! on recursively (R's `multistage`).
//!
//! Lonely PSUs (`n_h = 1`): `fail` raises an error, `remove`/`certainty` give 0, `adjust` uses
//! `(1 − f_h)(t_h − T/Σ_h n_h)²` with `T` the sum of all scores of the stage call (the grand mean of
//! PSU totals, survey ≥ 4.2; survey 4.1 used 0), `average` drops the stratum and multiplies the
//! sum over the others by `#strata / #strata with a variance`.

use std::collections::BTreeMap;

use crate::design::{Design, LonelyPsu};

/// Error raised while computing a variance.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VarianceError {
    /// A stratum with a single PSU under `lonely_psu = "fail"`.
    #[error(
        "stratum {stratum} has only one PSU at stage {stage}; choose lonely_psu = remove, certainty, adjust or average, or collapse strata"
    )]
    LonelyPsu {
        /// Stratum label (for later stages, `stratum/unit` of the enclosing units).
        stratum: String,
        /// Sampling stage (1-based).
        stage: usize,
    },
    /// Every stratum is lonely under `lonely_psu = "average"`: nothing to average.
    #[error("every stratum present at stage {stage} has a single PSU: lonely_psu = average has no stratum to average over")]
    NothingToAverage {
        /// Sampling stage (1-based).
        stage: usize,
    },
    /// A vector does not have one entry per design row / PSU.
    #[error("{what} has {got} entries, expected {expected}")]
    Length {
        /// Which input.
        what: &'static str,
        /// Entries given.
        got: usize,
        /// Entries expected.
        expected: usize,
    },
    /// A score or PSU total is NaN or infinite.
    #[error("{what} {index} is not finite ({value})")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The PSU-total shortcut is only valid when the first stage is the whole variance.
    #[error("variance_from_psu_totals needs a single-stage design (or one without fpc); use variance()")]
    Multistage,
}

/// Contribution of one stage-stratum, `None` = NA (lonely stratum under `average`).
#[allow(clippy::too_many_arguments)]
fn stratum_var(
    totals: &[f64],
    n_h: f64,
    big_n: f64,
    grand: f64,
    lonely: LonelyPsu,
    label: &str,
    stage: usize,
) -> Result<Option<f64>, VarianceError> {
    let fr = if big_n.is_infinite() { 1.0 } else { (big_n - n_h) / big_n };
    if fr < 1e-7 {
        return Ok(Some(0.0));
    }
    if n_h > 1.0 {
        let mean = totals.iter().sum::<f64>() / n_h;
        let absent = n_h - totals.len() as f64;
        let ss: f64 = totals.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() + absent * mean * mean;
        return Ok(Some(fr * n_h / (n_h - 1.0) * ss));
    }
    match lonely {
        LonelyPsu::Fail => Err(VarianceError::LonelyPsu { stratum: label.to_string(), stage }),
        LonelyPsu::Remove | LonelyPsu::Certainty => Ok(Some(0.0)),
        LonelyPsu::Adjust => {
            let t = totals.iter().sum::<f64>();
            Ok(Some(fr * (t - grand) * (t - grand)))
        }
        LonelyPsu::Average => Ok(None),
    }
}

fn combine(parts: &[Option<f64>], stage: usize) -> Result<f64, VarianceError> {
    let nstrat = parts.len();
    let ok: Vec<f64> = parts.iter().flatten().copied().collect();
    if nstrat == 0 {
        return Ok(0.0);
    }
    if ok.is_empty() {
        return Err(VarianceError::NothingToAverage { stage });
    }
    let sum: f64 = ok.iter().sum();
    Ok(if ok.len() == nstrat { sum } else { sum * nstrat as f64 / ok.len() as f64 })
}

fn check_scores(d: &Design, scores: &[f64], present: Option<&[bool]>) -> Result<(), VarianceError> {
    if scores.len() != d.n_rows() {
        return Err(VarianceError::Length { what: "scores", got: scores.len(), expected: d.n_rows() });
    }
    if let Some(p) = present
        && p.len() != d.n_rows()
    {
        return Err(VarianceError::Length { what: "present", got: p.len(), expected: d.n_rows() });
    }
    for (i, &z) in scores.iter().enumerate() {
        if !z.is_finite() && present.is_none_or(|p| p[i]) {
            return Err(VarianceError::NonFinite { what: "score of design row", index: i, value: z });
        }
    }
    Ok(())
}

/// Variance of the total of `scores` (one per design row, already weighted, zero outside a
/// domain).
///
/// `present`: `None` means every design row is part of the design (R's full or calibrated
/// designs, where out-of-domain rows stay with zero weight); `Some(mask)` reproduces R's subset of
/// a non-calibrated design, where only rows with `mask[i]` remain: only strata with a present row
/// exist (this matters for `average` and for `fail`), while PSUs of a present stratum that have no
/// present row still count as zero totals.
pub fn variance(d: &Design, scores: &[f64], present: Option<&[bool]>) -> Result<f64, VarianceError> {
    check_scores(d, scores, present)?;
    if d.stages.len() == 1 || !d.stages[0].has_fpc {
        let totals = psu_totals(d, scores, present);
        let psu_present = present.map(|p| {
            let mut m = vec![false; d.n_psu()];
            for (i, &u) in d.psu_of_row().iter().enumerate() {
                if p[i] {
                    m[u as usize] = true;
                }
            }
            m
        });
        return from_totals(d, &totals, psu_present.as_deref());
    }
    let rows: Vec<usize> = match present {
        None => (0..d.n_rows()).collect(),
        Some(p) => (0..d.n_rows()).filter(|&i| p[i]).collect(),
    };
    multistage(d, 0, &rows, scores)
}

/// First-stage PSU totals of `scores` over the present rows (all rows for `None`).
pub fn psu_totals(d: &Design, scores: &[f64], present: Option<&[bool]>) -> Vec<f64> {
    let mut t = vec![0.0; d.n_psu()];
    for (i, &u) in d.psu_of_row().iter().enumerate() {
        if present.is_none_or(|p| p[i]) {
            t[u as usize] += scores[i];
        }
    }
    t
}

/// Variance from precomputed first-stage PSU totals (index = [`Design::psu_of_row`] code), for
/// designs whose variance is the first stage alone (one stage, or no FPC). `psu_present[k]` tells
/// whether PSU `k` has a row in the (non-calibrated) subset; `None` = all present. Totals of
/// absent PSUs are ignored (they count as zero).
pub fn variance_from_psu_totals(
    d: &Design,
    psu_totals: &[f64],
    psu_present: Option<&[bool]>,
) -> Result<f64, VarianceError> {
    if d.stages.len() > 1 && d.stages[0].has_fpc {
        return Err(VarianceError::Multistage);
    }
    if psu_totals.len() != d.n_psu() {
        return Err(VarianceError::Length { what: "psu_totals", got: psu_totals.len(), expected: d.n_psu() });
    }
    if let Some(p) = psu_present
        && p.len() != d.n_psu()
    {
        return Err(VarianceError::Length { what: "psu_present", got: p.len(), expected: d.n_psu() });
    }
    for (k, &t) in psu_totals.iter().enumerate() {
        if !t.is_finite() && psu_present.is_none_or(|p| p[k]) {
            return Err(VarianceError::NonFinite { what: "PSU total", index: k, value: t });
        }
    }
    from_totals(d, psu_totals, psu_present)
}

fn from_totals(d: &Design, totals: &[f64], psu_present: Option<&[bool]>) -> Result<f64, VarianceError> {
    let st = &d.stages[0];
    let n_strata = st.sampsize.len();
    let mut by_stratum: Vec<Vec<f64>> = vec![Vec::new(); n_strata];
    let mut stratum_present = vec![false; n_strata];
    for (k, &h) in st.unit_stratum.iter().enumerate() {
        if psu_present.is_none_or(|p| p[k]) {
            by_stratum[h as usize].push(totals[k]);
            stratum_present[h as usize] = true;
        }
    }
    let mut grand_num = 0.0;
    let mut grand_den = 0.0;
    for h in 0..n_strata {
        if stratum_present[h] {
            grand_num += by_stratum[h].iter().sum::<f64>();
            grand_den += st.sampsize[h];
        }
    }
    let grand = grand_num / grand_den;
    let mut parts = Vec::with_capacity(n_strata);
    for h in 0..n_strata {
        if stratum_present[h] {
            parts.push(stratum_var(
                &by_stratum[h],
                st.sampsize[h],
                st.popsize[h],
                grand,
                d.lonely,
                &st.stratum_label[h],
                1,
            )?);
        }
    }
    combine(&parts, 1)
}

/// R's `multistage` over the design rows `rows` at stage `s` (0-based).
fn multistage(d: &Design, s: usize, rows: &[usize], scores: &[f64]) -> Result<f64, VarianceError> {
    let st = &d.stages[s];
    // stratum -> unit -> (total, rows)
    let mut groups: BTreeMap<u32, BTreeMap<u32, (f64, Vec<usize>)>> = BTreeMap::new();
    let mut grand_num = 0.0;
    for &i in rows {
        let e = groups.entry(st.stratum[i]).or_default().entry(st.unit[i]).or_insert((0.0, Vec::new()));
        e.0 += scores[i];
        e.1.push(i);
        grand_num += scores[i];
    }
    let grand_den: f64 = groups.keys().map(|&h| st.sampsize[h as usize]).sum();
    let grand = grand_num / grand_den;
    let mut parts = Vec::with_capacity(groups.len());
    for (&h, units) in &groups {
        let totals: Vec<f64> = units.values().map(|(t, _)| *t).collect();
        let h = h as usize;
        parts.push(stratum_var(&totals, st.sampsize[h], st.popsize[h], grand, d.lonely, &st.stratum_label[h], s + 1)?);
    }
    let mut v = combine(&parts, s + 1)?;
    if s + 1 < d.stages.len() {
        for (&h, units) in &groups {
            let factor = st.sampsize[h as usize] / st.popsize[h as usize];
            if factor == 0.0 {
                continue;
            }
            for (_, sub) in units.values() {
                v += multistage(d, s + 1, sub, scores)? * factor;
            }
        }
    }
    Ok(v)
}
