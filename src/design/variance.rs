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

use super::{Design, LonelyPsu};

/// Error raised while computing a variance.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VarianceError {
    /// A stratum with a single PSU under `lonely_psu = "fail"`.
    #[error(
        "stratum {stratum} has only one PSU at stage {stage}; choose lonely_psu = remove, certainty, adjust, average, or collapse (merges it with a partner stratum)"
    )]
    LonelyPsu {
        /// Stratum label (for later stages, `stratum/unit` of the enclosing units).
        stratum: String,
        /// Sampling stage (1-based).
        stage: usize,
    },
    /// Every stratum is lonely under `lonely_psu = "average"`: nothing to average.
    #[error(
        "every stratum present at stage {stage} has a single PSU: lonely_psu = average has no stratum to average over"
    )]
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
    #[error(
        "variance_from_psu_totals needs a single-stage design (or one without fpc); use variance()"
    )]
    Multistage,
}

/// Contribution of one stage-stratum, `None` = NA (lonely stratum under `average`).
#[allow(clippy::too_many_arguments)]
pub(super) fn stratum_var(
    totals: &[f64],
    n_h: f64,
    big_n: f64,
    grand: f64,
    lonely: LonelyPsu,
    adjust_domain_lonely: bool,
    label: &str,
    stage: usize,
) -> Result<Option<f64>, VarianceError> {
    let fr = if big_n.is_infinite() {
        1.0
    } else {
        (big_n - n_h) / big_n
    };
    if fr < 1e-7 {
        return Ok(Some(0.0));
    }
    if n_h > 1.0 {
        // A domain present in one PSU of the stratum (R's survey.adjust.domain.lonely): `adjust`
        // centres the padded totals on the grand mean, `average` leaves the stratum out.
        if adjust_domain_lonely && totals.len() == 1 {
            match lonely {
                LonelyPsu::Adjust => {
                    let absent = n_h - 1.0;
                    let ss = (totals[0] - grand).powi(2) + absent * grand * grand;
                    return Ok(Some(fr * n_h / (n_h - 1.0) * ss));
                }
                LonelyPsu::Average => return Ok(None),
                _ => {}
            }
        }
        let mean = totals.iter().sum::<f64>() / n_h;
        let absent = n_h - totals.len() as f64;
        let ss: f64 =
            totals.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() + absent * mean * mean;
        return Ok(Some(fr * n_h / (n_h - 1.0) * ss));
    }
    match lonely {
        LonelyPsu::Fail => Err(VarianceError::LonelyPsu {
            stratum: label.to_string(),
            stage,
        }),
        // Collapse merges lonely first-stage strata beforehand: what is left is a later-stage
        // unit with one sub-unit.
        LonelyPsu::Remove | LonelyPsu::Certainty | LonelyPsu::Collapse => Ok(Some(0.0)),
        LonelyPsu::Adjust => {
            let t = totals.iter().sum::<f64>();
            Ok(Some(fr * (t - grand) * (t - grand)))
        }
        LonelyPsu::Average => Ok(None),
    }
}

pub(super) fn combine(parts: &[Option<f64>], stage: usize) -> Result<f64, VarianceError> {
    let nstrat = parts.len();
    let ok: Vec<f64> = parts.iter().flatten().copied().collect();
    if nstrat == 0 {
        return Ok(0.0);
    }
    if ok.is_empty() {
        return Err(VarianceError::NothingToAverage { stage });
    }
    let sum: f64 = ok.iter().sum();
    Ok(if ok.len() == nstrat {
        sum
    } else {
        sum * nstrat as f64 / ok.len() as f64
    })
}

pub(super) fn check_scores(
    d: &Design,
    scores: &[f64],
    present: Option<&[bool]>,
) -> Result<(), VarianceError> {
    if scores.len() != d.n_rows() {
        return Err(VarianceError::Length {
            what: "scores",
            got: scores.len(),
            expected: d.n_rows(),
        });
    }
    if let Some(p) = present
        && p.len() != d.n_rows()
    {
        return Err(VarianceError::Length {
            what: "present",
            got: p.len(),
            expected: d.n_rows(),
        });
    }
    for (i, &z) in scores.iter().enumerate() {
        if !z.is_finite() && present.is_none_or(|p| p[i]) {
            return Err(VarianceError::NonFinite {
                what: "score of design row",
                index: i,
                value: z,
            });
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
pub fn variance(
    d: &Design,
    scores: &[f64],
    present: Option<&[bool]>,
) -> Result<f64, VarianceError> {
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
    check_psu_totals(d, psu_totals, psu_present)?;
    from_totals(d, psu_totals, psu_present)
}

/// The PSU-total shortcut applies (the first stage is the whole variance) and its inputs have
/// one finite total per PSU.
pub(super) fn check_psu_totals(
    d: &Design,
    psu_totals: &[f64],
    psu_present: Option<&[bool]>,
) -> Result<(), VarianceError> {
    if d.stages.len() > 1 && d.stages[0].has_fpc {
        return Err(VarianceError::Multistage);
    }
    if psu_totals.len() != d.n_psu() {
        return Err(VarianceError::Length {
            what: "psu_totals",
            got: psu_totals.len(),
            expected: d.n_psu(),
        });
    }
    if let Some(p) = psu_present
        && p.len() != d.n_psu()
    {
        return Err(VarianceError::Length {
            what: "psu_present",
            got: p.len(),
            expected: d.n_psu(),
        });
    }
    for (k, &t) in psu_totals.iter().enumerate() {
        if !t.is_finite() && psu_present.is_none_or(|p| p[k]) {
            return Err(VarianceError::NonFinite {
                what: "PSU total",
                index: k,
                value: t,
            });
        }
    }
    Ok(())
}

fn from_totals(
    d: &Design,
    totals: &[f64],
    psu_present: Option<&[bool]>,
) -> Result<f64, VarianceError> {
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
                d.adjust_domain_lonely,
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
        let e = groups
            .entry(st.stratum[i])
            .or_default()
            .entry(st.unit[i])
            .or_insert((0.0, Vec::new()));
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
        parts.push(stratum_var(
            &totals,
            st.sampsize[h],
            st.popsize[h],
            grand,
            d.lonely,
            d.adjust_domain_lonely,
            &st.stratum_label[h],
            s + 1,
        )?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{DesignSpec, LonelyPsu};
    use crate::estimate::ci::{deff_mean, deff_total, svyvar};
    use crate::frame::{CellState, Column, ColumnData, Frame};
    use crate::test_support::{frame, mean_scores, read_csv, rel, total_scores};

    /// Frame from CSV text: numeric columns where every non-blank cell parses, else text.

    fn num(f: &Frame, name: &str, rows: &[usize]) -> Vec<f64> {
        match &f.column(name).expect("column").data {
            ColumnData::Num(v) => rows.iter().map(|&r| v[r]).collect(),
            ColumnData::Text { .. } => panic!("{name} is text"),
        }
    }

    fn text_eq(f: &Frame, name: &str, value: &str, rows: &[usize]) -> Vec<bool> {
        let c = f.column(name).expect("column");
        rows.iter()
            .map(|&r| c.display(r).as_deref() == Some(value))
            .collect()
    }

    fn spec(strata: Option<&str>, psu: &[&str], fpc: &[&str], weight: &str) -> DesignSpec {
        DesignSpec {
            strata: strata.map(str::to_string).into_iter().collect(),
            psu: psu.iter().map(|s| s.to_string()).collect(),
            fpc: fpc.iter().map(|s| s.to_string()).collect(),
            weight: weight.to_string(),
            nest: false,
            lonely_psu: LonelyPsu::Fail,
            ..Default::default()
        }
    }

    /// Linearized scores of a ratio.
    fn ratio_scores(w: &[f64], y: &[f64], x: &[f64]) -> Vec<f64> {
        let tx: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum();
        let r = w.iter().zip(y).map(|(a, b)| a * b).sum::<f64>() / tx;
        (0..w.len())
            .map(|i| w[i] * (y[i] - r * x[i]) / tx)
            .collect()
    }

    const TOL: f64 = 1e-10;

    #[test]
    fn api_stratified_reference() {
        let f = frame(include_str!("../../fixtures/api/apistrat.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let all = vec![true; rows.len()];
        // (design, fpc, se mean api00, se total enroll, se ratio, deff mean, deff total, se by stype)
        let cases = [
            (
                "strat_fpc",
                true,
                9.40894080278458,
                114641.71610078,
                0.00775710316663788,
                1.20445726853772,
                0.362018122363404,
                [12.3824797939073, 14.9371291853931, 16.2147073081845],
            ),
            (
                "strat_nofpc",
                false,
                9.53613229692516,
                117319.085968965,
                0.00797025904429553,
                1.23724144502163,
                0.379124888872927,
                [12.5249428313782, 15.4577420005349, 16.6282032359826],
            ),
        ];
        for (name, fpc, se_m, se_t, se_r, deff_m, deff_t, se_by) in cases {
            let fp: &[&str] = if fpc { &["fpc"] } else { &[] };
            let d = Design::build(&f, &rows, &spec(Some("stype"), &[], fp, "pw")).expect(name);
            assert_eq!(d.degf(&all), 197.0);
            let w = d.weights().to_vec();
            let api00 = num(&f, "api00", &rows);
            let enroll = num(&f, "enroll", &rows);
            let (_, z) = mean_scores(&w, &api00, &all);
            let v = d.variance(&z, None).expect("var");
            assert!(rel(v.sqrt(), se_m) < TOL, "{name} mean {}", v.sqrt());
            let psum: f64 = w.iter().sum();
            let dm = deff_mean(v, svyvar(&api00, &w).unwrap_or(f64::NAN), psum, 200.0)
                .unwrap_or(f64::NAN);
            assert!(rel(dm, deff_m) < 1e-9, "{name} deff mean {dm}");
            let vt = d
                .variance(&total_scores(&w, &enroll, &all), None)
                .expect("var");
            assert!(rel(vt.sqrt(), se_t) < TOL, "{name} total {}", vt.sqrt());
            let dt = deff_total(vt, svyvar(&enroll, &w).unwrap_or(f64::NAN), psum, 200.0)
                .unwrap_or(f64::NAN);
            assert!(rel(dt, deff_t) < 1e-9, "{name} deff total {dt}");
            let vr = d
                .variance(&ratio_scores(&w, &num(&f, "api.stu", &rows), &enroll), None)
                .expect("var");
            assert!(rel(vr.sqrt(), se_r) < TOL, "{name} ratio {}", vr.sqrt());
            for (k, lev) in ["E", "H", "M"].iter().enumerate() {
                let dom = text_eq(&f, "stype", lev, &rows);
                let (_, z) = mean_scores(&w, &api00, &dom);
                let v = d.variance(&z, Some(&dom)).expect("var");
                assert!(rel(v.sqrt(), se_by[k]) < TOL, "{name} {lev} {}", v.sqrt());
                // Same through precomputed PSU totals.
                let t = psu_totals(&d, &z, Some(&dom));
                let mut pp = vec![false; d.n_psu()];
                for (i, &u) in d.psu_of_row().iter().enumerate() {
                    pp[u as usize] |= dom[i];
                }
                let v2 = d.variance_from_psu_totals(&t, Some(&pp)).expect("var");
                assert!(rel(v2, v) < 1e-13);
            }
        }
    }

    #[test]
    fn api_one_stage_cluster_reference() {
        let f = frame(include_str!("../../fixtures/api/apiclus1.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let all = vec![true; rows.len()];
        let d = Design::build(&f, &rows, &spec(None, &["dnum"], &["fpc"], "pw")).expect("clus1");
        assert_eq!(d.degf(&all), 14.0);
        assert_eq!(d.n_psu(), 15);
        let w = d.weights().to_vec();
        let api00 = num(&f, "api00", &rows);
        let enroll = num(&f, "enroll", &rows);
        let (_, z) = mean_scores(&w, &api00, &all);
        let v = d.variance(&z, None).expect("var");
        assert!(rel(v.sqrt(), 23.542240693781) < TOL, "{}", v.sqrt());
        let psum: f64 = w.iter().sum();
        let dm =
            deff_mean(v, svyvar(&api00, &w).unwrap_or(f64::NAN), psum, 183.0).unwrap_or(f64::NAN);
        assert!(rel(dm, 9.34586945059095) < 1e-9, "deff {dm}");
        let vt = d
            .variance(&total_scores(&w, &enroll, &all), None)
            .expect("var");
        assert!(rel(vt.sqrt(), 932235.027041215) < TOL);
        let dt = deff_total(vt, svyvar(&enroll, &w).unwrap_or(f64::NAN), psum, 183.0)
            .unwrap_or(f64::NAN);
        assert!(rel(dt, 31.3106560943494) < 1e-9, "deff total {dt}");
        for (lev, se) in [
            ("E", 22.3624088938319),
            ("H", 38.0202493594075),
            ("M", 31.6094652272455),
        ] {
            let dom = text_eq(&f, "stype", lev, &rows);
            let (_, z) = mean_scores(&w, &api00, &dom);
            let v = d.variance(&z, Some(&dom)).expect("var");
            assert!(rel(v.sqrt(), se) < TOL, "{lev} {}", v.sqrt());
        }
    }

    #[test]
    fn api_two_stage_reference() {
        let f = frame(include_str!("../../fixtures/api/apiclus2.csv"));
        let wf = frame(include_str!("../../fixtures/api/apiclus2_weights.csv"));
        let mut f = f;
        let w_all = num(&wf, "weight", &(0..wf.n_rows()).collect::<Vec<_>>());
        let n = f.n_rows();
        f.push(Column {
            name: "w".into(),
            data: ColumnData::Num(w_all.into()),
            state: crate::frame::States::AllValue(n),
        })
        .expect("w");
        let rows: Vec<usize> = (0..n).collect();
        let all = vec![true; n];
        let d = Design::build(
            &f,
            &rows,
            &spec(None, &["dnum", "snum"], &["fpc1", "fpc2"], "w"),
        )
        .expect("clus2");
        assert_eq!(d.degf(&all), 39.0);
        let w = d.weights().to_vec();
        let api00 = num(&f, "api00", &rows);
        let (_, z) = mean_scores(&w, &api00, &all);
        let v = d.variance(&z, None).expect("var");
        assert!(rel(v.sqrt(), 30.0990273768366) < TOL, "{}", v.sqrt());
        let psum: f64 = w.iter().sum();
        let dm =
            deff_mean(v, svyvar(&api00, &w).unwrap_or(f64::NAN), psum, 126.0).unwrap_or(f64::NAN);
        assert!(rel(dm, 6.25051375571258) < 1e-9, "deff {dm}");
        // enroll with na.rm: R subsets the (non-calibrated) design to the non-missing rows.
        let enroll: Vec<f64> = num(&f, "enroll", &rows);
        let ok: Vec<bool> = enroll.iter().map(|x| !x.is_nan()).collect();
        let e0: Vec<f64> = enroll
            .iter()
            .map(|x| if x.is_nan() { 0.0 } else { *x })
            .collect();
        let vt = d
            .variance(&total_scores(&w, &e0, &ok), Some(&ok))
            .expect("var");
        assert!(rel(vt.sqrt(), 799637.773648358) < TOL, "{}", vt.sqrt());
        let (_, z) = mean_scores(&w, &e0, &ok);
        let vm = d.variance(&z, Some(&ok)).expect("var");
        assert!(rel(vm.sqrt(), 80.3409839904244) < TOL, "{}", vm.sqrt());
        assert!(matches!(
            d.variance_from_psu_totals(&[0.0; 40], None),
            Err(VarianceError::Multistage)
        ));
    }
    #[test]
    fn lonely_psu_options_match_r() {
        let f = frame(include_str!("../../fixtures/lonely/data.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let all = vec![true; rows.len()];
        let y = num(&f, "y", &rows);
        let dom: Vec<bool> = num(&f, "dom", &rows).iter().map(|&v| v == 1.0).collect();
        let (_, want) = read_csv(include_str!("../../fixtures/lonely/expected.csv"));
        assert_eq!(want.len(), 8);
        for r in &want {
            let g = |k: usize| {
                r[k].as_deref()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            let opt: LonelyPsu = r[0].as_deref().unwrap_or("").parse().expect("option");
            let fpc = r[1].as_deref() == Some("TRUE");
            let mut sp = spec(Some("st"), &["psu"], if fpc { &["N"] } else { &[] }, "w");
            sp.lonely_psu = opt;
            let d = Design::build(&f, &rows, &sp).expect("design");
            let w = d.weights().to_vec();
            let vt = d.variance(&total_scores(&w, &y, &all), None).expect("v");
            assert!(
                rel(vt.sqrt(), g(2)) < TOL,
                "{opt} {fpc} total {} vs {}",
                vt.sqrt(),
                g(2)
            );
            let (_, z) = mean_scores(&w, &y, &all);
            let vm = d.variance(&z, None).expect("v");
            assert!(rel(vm.sqrt(), g(3)) < TOL, "{opt} {fpc} mean");
            let (_, z) = mean_scores(&w, &y, &dom);
            let vd = d.variance(&z, Some(&dom)).expect("v");
            assert!(
                rel(vd.sqrt(), g(4)) < TOL,
                "{opt} {fpc} domain mean {} vs {}",
                vd.sqrt(),
                g(4)
            );
            let vdt = d
                .variance(&total_scores(&w, &y, &dom), Some(&dom))
                .expect("v");
            assert!(
                rel(vdt.sqrt(), g(5)) < TOL,
                "{opt} {fpc} domain total {} vs {}",
                vdt.sqrt(),
                g(5)
            );
        }
        // fail: error naming the stratum, unless the lonely stratum is outside the subset.
        let d = Design::build(&f, &rows, &spec(Some("st"), &["psu"], &[], "w")).expect("design");
        let (_, z) = mean_scores(d.weights(), &y, &all);
        match d.variance(&z, None) {
            Err(VarianceError::LonelyPsu { stratum, stage }) => {
                assert_eq!((stratum.as_str(), stage), ("C", 1))
            }
            other => panic!("expected lonely error, got {other:?}"),
        }
        let not_c: Vec<bool> = (0..rows.len()).map(|i| i < 10).collect();
        let (_, z) = mean_scores(d.weights(), &y, &not_c);
        assert!(d.variance(&z, Some(&not_c)).is_ok());
        assert!(d.variance(&z, None).is_err());
    }

    #[test]
    fn domain_lonely_adjustment_matches_r() {
        // The domain dom = 1 has one PSU in strata S01, S04 and S09, which have more; S02, S06,
        // S07 and S08 are lonely in the whole sample.
        let f = frame(include_str!("../../fixtures/collapse/data.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let y = num(&f, "y", &rows);
        let dom: Vec<bool> = num(&f, "dom", &rows).iter().map(|&v| v == 1.0).collect();
        let (_, want) = read_csv(include_str!(
            "../../fixtures/collapse/domain_lonely_reference.csv"
        ));
        assert_eq!(want.len(), 4);
        for r in &want {
            let g = |k: usize| {
                r[k].as_deref()
                    .and_then(|s| s.parse::<f64>().ok())
                    .expect("number")
            };
            let lonely: LonelyPsu = r[0].as_deref().unwrap_or("").parse().expect("option");
            let domain_lonely = r[1].as_deref() == Some("TRUE");
            let mut sp = spec(Some("stratum"), &["psu"], &[], "w");
            sp.lonely_psu = lonely;
            sp.adjust_domain_lonely = domain_lonely;
            let d = Design::build(&f, &rows, &sp).expect("design");
            let w = d.weights().to_vec();
            let (_, z) = mean_scores(&w, &y, &dom);
            let se_mean = d.variance(&z, Some(&dom)).expect("v").sqrt();
            let se_total = d
                .variance(&total_scores(&w, &y, &dom), Some(&dom))
                .expect("v")
                .sqrt();
            assert!(
                rel(se_mean, g(2)) < TOL,
                "{lonely} {domain_lonely}: {se_mean} vs {}",
                g(2)
            );
            assert!(
                rel(se_total, g(3)) < TOL,
                "{lonely} {domain_lonely}: {se_total} vs {}",
                g(3)
            );
        }
    }

    #[test]
    fn design_errors_and_basics() {
        let f = frame(include_str!("../../fixtures/lonely/data.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        // PSU 1 put in two strata: not nested unless nest = true.
        let mut g = f.clone();
        let mut psu = num(&f, "psu", &rows);
        psu[10] = 1.0;
        psu[11] = 1.0;
        g.set(Column {
            name: "psu".into(),
            data: ColumnData::Num(psu.into()),
            state: vec![CellState::Value; 12].into(),
        })
        .expect("set");
        let e = Design::build(&g, &rows, &spec(Some("st"), &["psu"], &[], "w"))
            .expect_err("not nested");
        let msg = e.to_string();
        assert!(
            msg.contains("PSU 1") && msg.contains("strata A and C") && msg.contains("nest = true"),
            "{msg}"
        );
        let mut sp = spec(Some("st"), &["psu"], &[], "w");
        sp.nest = true;
        let d = Design::build(&g, &rows, &sp).expect("nested");
        assert_eq!((d.n_strata(), d.n_psu()), (3, 6));
        // FPC smaller than n_h, and varying within a stratum.
        let mut h = f.clone();
        let mut n_col = num(&f, "N", &rows);
        n_col[6] = 1.5;
        n_col[7] = 1.5;
        n_col[8] = 1.5;
        n_col[9] = 1.5;
        h.set(Column {
            name: "N".into(),
            data: ColumnData::Num(n_col.clone().into()),
            state: vec![CellState::Value; 12].into(),
        })
        .expect("set");
        let e = Design::build(&h, &rows, &spec(Some("st"), &["psu"], &["N"], "w"))
            .expect_err("too small");
        assert!(
            matches!(e, crate::design::DesignError::FpcTooSmall { ref stratum, .. } if stratum == "B"),
            "{e}"
        );
        n_col[6] = 5.0;
        h.set(Column {
            name: "N".into(),
            data: ColumnData::Num(n_col.into()),
            state: vec![CellState::Value; 12].into(),
        })
        .expect("set");
        let e =
            Design::build(&h, &rows, &spec(Some("st"), &["psu"], &["N"], "w")).expect_err("varies");
        assert!(
            matches!(e, crate::design::DesignError::FpcNotConstant { .. }),
            "{e}"
        );
        assert!(
            !e.to_string().contains("PPS"),
            "counts are not probabilities: {e}"
        );
        // Values that vary within a stratum and are all ≤ 1 look like inclusion probabilities:
        // the message says what to do about a PPS sample.
        let mut p = h.clone();
        p.push(Column {
            name: "p".into(),
            data: ColumnData::Num((0..12).map(|i| 0.05 + 0.01 * i as f64).collect()),
            state: vec![CellState::Value; 12].into(),
        })
        .expect("push");
        let e = Design::build(&p, &rows, &spec(Some("st"), &["psu"], &["p"], "w"))
            .expect_err("probabilities");
        assert!(
            e.to_string()
                .contains("inclusion probabilities of a PPS design")
                && e.to_string()
                    .contains(r#"pps = "brewer" | "overton" | "hartley-rao""#)
                && e.to_string().contains("leave fpc out"),
            "{e}"
        );
        // Sampling fractions give the same variance as population counts.
        let mut k = f.clone();
        let frac = num(&f, "N", &rows);
        let nh = [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0];
        let frac: Vec<f64> = frac.iter().zip(nh).map(|(n, s)| s / n).collect();
        k.push(Column {
            name: "f".into(),
            data: ColumnData::Num(frac.into()),
            state: vec![CellState::Value; 12].into(),
        })
        .expect("push");
        let mut a = spec(Some("st"), &["psu"], &["N"], "w");
        a.lonely_psu = LonelyPsu::Remove;
        let mut b = a.clone();
        b.fpc = vec!["f".into()];
        let y = num(&f, "y", &rows);
        let da = Design::build(&k, &rows, &a).expect("a");
        let db = Design::build(&k, &rows, &b).expect("b");
        let z = total_scores(da.weights(), &y, &[true; 12]);
        assert!(
            rel(
                da.variance(&z, None).expect("v"),
                db.variance(&z, None).expect("v")
            ) < 1e-14
        );
        // Constant scores have zero variance; each row its own PSU works.
        let one = Design::build(&f, &rows, &spec(None, &[], &[], "w")).expect("srs");
        assert_eq!((one.n_psu(), one.degf(&[true; 12])), (12, 11.0));
        assert_eq!(one.variance(&[2.5; 12], None).expect("v"), 0.0);
        assert!("sometimes".parse::<LonelyPsu>().is_err());
        assert!(matches!(
            Design::build(&f, &rows, &spec(None, &["nope"], &[], "w")),
            Err(crate::design::DesignError::MissingColumn(_))
        ));
    }
}
