//! Variance under PPS sampling without replacement, as R's `svydesign(fpc = ~p, pps = ...)`
//! (survey 4.5): the fpc columns give each unit's inclusion probability π_i and the variance of a
//! total of scores uses an approximation to the joint inclusion probabilities.
//!
//! With `t_i` the total of the (already weighted) scores of unit `i` of a stratum with `n` sampled
//! units and `t̄ = Σ_i t_i / n`:
//!
//! - **Brewer** (Brewer 2002, ch. 9; option 2 of Berger 2004; R's `onestrat` with unit-level fpc):
//!   `V_h = n/(n−1) · Σ_i (1 − π_i)(t_i − t̄)²`. Works stratified and multistage: each later stage
//!   adds its within-unit variance multiplied by the unit's π_i (R's `multistage` factor
//!   `n_h / (n_h/π_i)`); a stage without fpc is with replacement. Lonely units follow
//!   `lonely_psu` with `1 − π_i` as the finite population correction.
//! - **Overton** (Overton 1985) and **Hartley–Rao** (Hartley & Rao 1962, truncated) are
//!   Horvitz–Thompson forms `V_h = Σ_i Σ_j Δ̌_ij t_i t_j` with `Δ̌_ii = 1 − π_i` and, for `i ≠ j`,
//!   `Δ̌_ij = 1 − (n − (π_i + π_j)/2)/(n − 1)` (Overton) or
//!   `Δ̌_ij = 1 − (n − π_i − π_j + Σ_k π_k/n)/(n − 1)` (Hartley–Rao with R's `HR()` estimate of
//!   `Σ_U π_k²/n` by the sample mean of π). One stage only (R refuses subsampling); strata are
//!   independent; `lonely_psu` does not apply (a single unit contributes `(1 − π_i) t_i²`).
//!
//! Domains: R subsets a PPS design by zeroing weights, never by dropping units, so the rows
//! outside a domain count as zero scores and every unit and stratum stays in the design (so
//! `adjust_domain_lonely` never applies: no stratum is reduced to one unit by a domain).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::variance::{VarianceError, check_psu_totals, check_scores, combine, stratum_var};
use super::{Design, DesignError};

/// Approximation used for PPS sampling without replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PpsMethod {
    /// Brewer's approximation (R `pps = "brewer"`).
    Brewer,
    /// Overton's approximation of the joint probabilities (R `pps = "overton"`).
    Overton,
    /// Truncated Hartley–Rao approximation, `Σ_U π²/n` estimated from the sample (R `pps = HR()`).
    HartleyRao,
}

impl PpsMethod {
    /// Config name.
    pub fn as_str(self) -> &'static str {
        match self {
            PpsMethod::Brewer => "brewer",
            PpsMethod::Overton => "overton",
            PpsMethod::HartleyRao => "hartley-rao",
        }
    }
}

impl fmt::Display for PpsMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PpsMethod {
    type Err = DesignError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "brewer" => Ok(PpsMethod::Brewer),
            "overton" => Ok(PpsMethod::Overton),
            "hartley-rao" => Ok(PpsMethod::HartleyRao),
            _ => Err(DesignError::PpsMethod(s.to_string())),
        }
    }
}

/// Units of one stage-stratum: (unit code, total of its scores).
type StratumUnits = Vec<(u32, f64)>;

/// [`Design::variance`] of a PPS design.
pub(super) fn variance(
    d: &Design,
    method: PpsMethod,
    scores: &[f64],
    present: Option<&[bool]>,
) -> Result<f64, VarianceError> {
    check_scores(d, scores, present)?;
    let scores: Vec<f64> = match present {
        None => scores.to_vec(),
        Some(p) => scores
            .iter()
            .zip(p)
            .map(|(&z, &keep)| if keep { z } else { 0.0 })
            .collect(),
    };
    let rows: Vec<usize> = (0..d.n_rows()).collect();
    by_stage(d, method, 0, &rows, &scores)
}

/// [`Design::variance_from_psu_totals`] of a PPS design whose variance is its first stage.
pub(super) fn variance_from_psu_totals(
    d: &Design,
    method: PpsMethod,
    psu_totals: &[f64],
    psu_present: Option<&[bool]>,
) -> Result<f64, VarianceError> {
    check_psu_totals(d, psu_totals, psu_present)?;
    let st = &d.stages[0];
    let mut strata: BTreeMap<u32, StratumUnits> = BTreeMap::new();
    for (k, &h) in st.unit_stratum.iter().enumerate() {
        let t = if psu_present.is_none_or(|p| p[k]) {
            psu_totals[k]
        } else {
            0.0
        };
        strata.entry(h).or_default().push((k as u32, t));
    }
    let grand: f64 = strata.values().flatten().map(|&(_, t)| t).sum();
    stage_variance(d, method, 0, &strata, grand)
}

/// Variance at stage `s` of the rows `rows` (all of one stage-`s` stratum's parent unit, or the
/// whole design at stage 0), plus the later stages (Brewer only: the others are one-stage).
fn by_stage(
    d: &Design,
    method: PpsMethod,
    s: usize,
    rows: &[usize],
    scores: &[f64],
) -> Result<f64, VarianceError> {
    let st = &d.stages[s];
    let mut units: BTreeMap<(u32, u32), (f64, Vec<usize>)> = BTreeMap::new();
    let mut grand = 0.0;
    for &i in rows {
        let e = units
            .entry((st.stratum[i], st.unit[i]))
            .or_insert((0.0, Vec::new()));
        e.0 += scores[i];
        e.1.push(i);
        grand += scores[i];
    }
    let mut strata: BTreeMap<u32, StratumUnits> = BTreeMap::new();
    for (&(h, u), (t, _)) in &units {
        strata.entry(h).or_default().push((u, *t));
    }
    let mut v = stage_variance(d, method, s, &strata, grand)?;
    // R's multistage: each unit's next-stage variance times n_h/N_h, here n_h/(n_h/π_i) = π_i;
    // a stage without fpc is with replacement and ends the recursion (factor 0).
    if s + 1 < d.stages.len() && !st.inclusion.is_empty() {
        for (&(_, u), (_, sub)) in &units {
            v += by_stage(d, method, s + 1, sub, scores)? * st.inclusion[u as usize];
        }
    }
    Ok(v)
}

/// Between-unit variance of stage `s` from its unit totals by stratum; `grand` is the sum of all
/// totals of the stage call (for `lonely_psu = "adjust"`).
fn stage_variance(
    d: &Design,
    method: PpsMethod,
    s: usize,
    strata: &BTreeMap<u32, StratumUnits>,
    grand: f64,
) -> Result<f64, VarianceError> {
    let st = &d.stages[s];
    let n_units: f64 = strata.keys().map(|&h| st.sampsize[h as usize]).sum();
    let grand_mean = grand / n_units;
    let mut parts = Vec::with_capacity(strata.len());
    for (&h, units) in strata {
        let h = h as usize;
        let totals: Vec<f64> = units.iter().map(|&(_, t)| t).collect();
        let label = &st.stratum_label[h];
        if st.inclusion.is_empty() {
            // A Brewer stage after the last fpc: with replacement.
            parts.push(stratum_var(
                &totals,
                st.sampsize[h],
                st.popsize[h],
                grand_mean,
                d.lonely,
                d.adjust_domain_lonely,
                label,
                s + 1,
            )?);
            continue;
        }
        let probs: Vec<f64> = units
            .iter()
            .map(|&(u, _)| st.inclusion[u as usize])
            .collect();
        parts.push(match method {
            PpsMethod::Brewer if totals.len() == 1 => {
                // R's onestrat with popsize n_h/π_i = 1/π_i: the lonely PSU rules, fpc 1 − π.
                stratum_var(
                    &totals,
                    1.0,
                    1.0 / probs[0],
                    grand_mean,
                    d.lonely,
                    d.adjust_domain_lonely,
                    label,
                    s + 1,
                )?
            }
            PpsMethod::Brewer => Some(brewer(&totals, &probs)),
            PpsMethod::Overton | PpsMethod::HartleyRao => {
                Some(joint_probability(method, &totals, &probs))
            }
        });
    }
    combine(&parts, s + 1)
}

/// Brewer's approximation for one stratum of n ≥ 2 units:
/// `n/(n−1) · Σ_i (1 − π_i)(t_i − t̄)²`, 0 when every unit is taken with certainty (R's
/// `all(f < 1e-7)`).
fn brewer(totals: &[f64], probs: &[f64]) -> f64 {
    let n = totals.len() as f64;
    if probs.iter().all(|&p| 1.0 - p < 1e-7) {
        return 0.0;
    }
    let mean = totals.iter().sum::<f64>() / n;
    let ss: f64 = totals
        .iter()
        .zip(probs)
        .map(|(&t, &p)| (1.0 - p) * (t - mean) * (t - mean))
        .sum();
    n / (n - 1.0) * ss
}

/// `Σ_i Σ_j Δ̌_ij t_i t_j` for Overton's or the Hartley–Rao approximation in one stratum, in
/// O(n): off the diagonal both have the form `Δ̌_ij = c(π_i + π_j) + b`, so the double sum
/// reduces to sums over units. It is expanded around the mean total `t̄` (`u_i = t_i − t̄`),
/// where `Σ_ij Δ̌_ij = 0` for both methods, which keeps the large `t̄²` terms out of the sum:
///
/// ```text
/// V = 2 t̄ Σ_i u_i R_i + Σ_i (1 − π_i) u_i² + 2c Σ_i π_i u_i (U − u_i) + b (U² − Σ_i u_i²)
/// R_i = Σ_j Δ̌_ij = (1 − π_i) + c((n − 2)π_i + P) + b(n − 1),  P = Σ π,  U = Σ u
/// ```
fn joint_probability(method: PpsMethod, totals: &[f64], probs: &[f64]) -> f64 {
    let n_units = totals.len();
    if n_units == 1 {
        return (1.0 - probs[0]) * totals[0] * totals[0];
    }
    let n = n_units as f64;
    let big_p: f64 = probs.iter().sum();
    // Overton: 1 − (n − (π_i + π_j)/2)/(n − 1); Hartley–Rao: 1 − (n − π_i − π_j + p̄)/(n − 1)
    // with p̄ the stratum's mean π (R's HR() without argument).
    let (c, b) = match method {
        PpsMethod::Overton => (0.5 / (n - 1.0), -1.0 / (n - 1.0)),
        _ => (1.0 / (n - 1.0), -(1.0 + big_p / n) / (n - 1.0)),
    };
    let mean = totals.iter().sum::<f64>() / n;
    let u: Vec<f64> = totals.iter().map(|t| t - mean).collect();
    let big_u: f64 = u.iter().sum();
    let mut cross = 0.0;
    let mut diag = 0.0;
    let mut pair_p = 0.0;
    let mut sum_u2 = 0.0;
    for (&ui, &p) in u.iter().zip(probs) {
        let r = (1.0 - p) + c * ((n - 2.0) * p + big_p) + b * (n - 1.0);
        cross += ui * r;
        diag += (1.0 - p) * ui * ui;
        pair_p += p * ui * (big_u - ui);
        sum_u2 += ui * ui;
    }
    let mut v = 2.0 * mean * cross + diag + 2.0 * c * pair_p + b * (big_u * big_u - sum_u2);
    if method == PpsMethod::HartleyRao {
        v -= (c + b) * sum_one_pairs(totals, probs);
    }
    v
}

/// `Σ t_i t_j` over ordered pairs `i ≠ j` whose probabilities add up to exactly 1 in floating
/// point. R's `HRDcheck` zeroes Δ̌_ij where `π_i + π_j == 1` (a test it shares with Overton's,
/// where `(π_i + π_j)/2 == 1` means two certainty units and Δ̌_ij is 0 anyway); the Hartley–Rao
/// value there is not 0, so it is taken out again to give R's number.
fn sum_one_pairs(totals: &[f64], probs: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let sorted: Vec<f64> = order.iter().map(|&k| probs[k]).collect();
    let mut prefix = Vec::with_capacity(order.len() + 1);
    prefix.push(0.0);
    for &k in &order {
        prefix.push(prefix[prefix.len() - 1] + totals[k]);
    }
    let mut sum = 0.0;
    for (i, (&t, &p)) in totals.iter().zip(probs).enumerate() {
        // p + q is non-decreasing in q, so the partners form one run of the sorted list.
        let lo = sorted.partition_point(|&q| p + q < 1.0);
        let hi = sorted.partition_point(|&q| p + q <= 1.0);
        if lo == hi {
            continue;
        }
        let mut partners = prefix[hi] - prefix[lo];
        if p + p == 1.0 {
            partners -= totals[i];
        }
        sum += t * partners;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{DesignSpec, LonelyPsu};
    use crate::frame::{Column, ColumnData, Frame};
    use crate::test_support::{frame, read_csv, rel};

    fn num(f: &Frame, name: &str) -> Vec<f64> {
        match &f.column(name).expect("column").data {
            ColumnData::Num(v) => v.to_vec(),
            ColumnData::Text { .. } => panic!("{name} is text"),
        }
    }

    fn spec(strata: &[&str], psu: &[&str], fpc: &[&str], pps: PpsMethod) -> DesignSpec {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        DesignSpec {
            strata: names(strata),
            psu: names(psu),
            fpc: names(fpc),
            weight: "w".into(),
            nest: false,
            lonely_psu: LonelyPsu::Fail,
            pps: Some(pps),
            ..Default::default()
        }
    }

    /// The design with the weights R derives from the probabilities (no weight column).
    fn design(f: &mut Frame, spec: &DesignSpec) -> Design {
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let w = Design::weights_from_fpc(f, &rows, spec).expect("weights");
        let n = f.n_rows();
        f.push(Column {
            name: "w".into(),
            data: ColumnData::Num(w.into()),
            state: crate::frame::States::AllValue(n),
        })
        .expect("w");
        Design::build(f, &rows, spec).expect("design")
    }

    struct Case {
        name: &'static str,
        data: &'static str,
        strata: &'static [&'static str],
        psu: &'static [&'static str],
        fpc: &'static [&'static str],
        domain: &'static str,
    }

    const CASES: [Case; 4] = [
        Case {
            name: "election",
            data: include_str!("../../fixtures/pps/election_pps.csv"),
            strata: &[],
            psu: &[],
            fpc: &["p"],
            domain: "winner",
        },
        Case {
            name: "apistrat",
            data: include_str!("../../fixtures/pps/apistrat_pps.csv"),
            strata: &["stratum"],
            psu: &[],
            fpc: &["pi"],
            domain: "sch.wide",
        },
        Case {
            name: "apiclus2",
            data: include_str!("../../fixtures/pps/apiclus2_pps.csv"),
            strata: &[],
            psu: &["dnum", "snum"],
            fpc: &["pi1", "pi2"],
            domain: "stype",
        },
        Case {
            name: "apiclus1",
            data: include_str!("../../fixtures/pps/apiclus2_pps.csv"),
            strata: &[],
            psu: &["dnum"],
            fpc: &["pi1"],
            domain: "stype",
        },
    ];

    /// Every row of fixtures/pps/reference.csv (R survey 4.5): estimate and variance of totals and
    /// means, whole sample and domains, through both variance entry points.
    #[test]
    fn pps_variances_match_r() {
        let (header, want) = read_csv(include_str!("../../fixtures/pps/reference.csv"));
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (c_case, c_method, c_var, c_stat, c_dom, c_est, c_v) = (
            col("case"),
            col("method"),
            col("variable"),
            col("statistic"),
            col("domain"),
            col("estimate"),
            col("variance"),
        );
        let mut checked = 0;
        let mut worst = 0.0f64;
        for r in &want {
            let cell = |k: usize| r[k].clone().unwrap_or_default();
            let case = CASES.iter().find(|c| c.name == cell(c_case)).expect("case");
            let method: PpsMethod = cell(c_method).parse().expect("method");
            let mut f = frame(case.data);
            let d = design(&mut f, &spec(case.strata, case.psu, case.fpc, method));
            let w = d.weights().to_vec();
            let y = num(&f, &cell(c_var));
            let dom_col = f.column(case.domain).expect("domain");
            let level = cell(c_dom);
            let dom: Vec<bool> = (0..f.n_rows())
                .map(|i| level.is_empty() || dom_col.display(i).as_deref() == Some(level.as_str()))
                .collect();
            let (estimate, scores): (f64, Vec<f64>) = match cell(c_stat).as_str() {
                "total" => {
                    let scores = crate::test_support::total_scores(&w, &y, &dom);
                    (scores.iter().sum(), scores)
                }
                _ => crate::test_support::mean_scores(&w, &y, &dom),
            };
            let r_est: f64 = cell(c_est).parse().expect("estimate");
            let r_var: f64 = cell(c_v).parse().expect("variance");
            let what = format!("{} {} {:?}", cell(c_case), method, &r[2..5]);
            assert!(
                rel(estimate, r_est) < 1e-12,
                "{what}: estimate {estimate} vs {r_est}"
            );
            // The variance is a difference of terms of the size of estimate² (Overton's variance
            // of a total proportional to the size measure is 0 up to R's rounding).
            let close =
                |v: f64| (v - r_var).abs() <= 1e-8 * r_var.abs() + 1e-14 * estimate * estimate;
            let present = (!level.is_empty()).then_some(dom.as_slice());
            let v = d.variance(&scores, present).expect("variance");
            assert!(close(v), "{what}: variance {v} vs R {r_var}");
            if r_var > 1e-12 * estimate * estimate {
                worst = worst.max(rel(v.sqrt(), r_var.sqrt()));
            }
            if d.n_stages() == 1 {
                let mut t = vec![0.0; d.n_psu()];
                let mut pp = vec![false; d.n_psu()];
                for (i, &u) in d.psu_of_row().iter().enumerate() {
                    t[u as usize] += scores[i];
                    pp[u as usize] |= dom[i];
                }
                let v2 = d
                    .variance_from_psu_totals(&t, Some(&pp))
                    .expect("from totals");
                assert!(close(v2), "{what}: from PSU totals {v2} vs R {r_var}");
            } else {
                assert_eq!(
                    d.variance_from_psu_totals(&vec![0.0; d.n_psu()], None),
                    Err(VarianceError::Multistage)
                );
            }
            checked += 1;
        }
        assert_eq!(checked, want.len());
        assert!(checked >= 100, "{checked}");
        eprintln!("largest relative SE difference from R: {worst:e}");
        assert!(worst < 1e-9, "{worst}");
    }

    /// The O(n) Overton/Hartley–Rao sums equal the pairwise double sum of R's Δ̌ matrix,
    /// including R's zeroing of Hartley–Rao pairs whose probabilities add up to 1.
    #[test]
    fn joint_probability_sums_equal_the_pairwise_form() {
        let probs = [0.5, 0.25, 0.75, 0.5, 0.1, 0.9, 0.3, 1.0];
        let totals = [12.0, -3.5, 7.25, 40.0, 1.0, -9.0, 5.5, 2.0];
        let n = probs.len() as f64;
        let p2bar = probs.iter().sum::<f64>() / n;
        for method in [PpsMethod::Overton, PpsMethod::HartleyRao] {
            let mut pairwise = 0.0;
            for i in 0..probs.len() {
                for j in 0..probs.len() {
                    let d = if i == j {
                        1.0 - probs[i]
                    } else if method == PpsMethod::Overton {
                        let fbar = (probs[i] + probs[j]) / 2.0;
                        if fbar == 1.0 {
                            0.0
                        } else {
                            1.0 - (n - fbar) / (n - 1.0)
                        }
                    } else {
                        let fbar = probs[i] + probs[j];
                        if fbar == 1.0 {
                            0.0
                        } else {
                            1.0 - (n - fbar + p2bar) / (n - 1.0)
                        }
                    };
                    pairwise += d * totals[i] * totals[j];
                }
            }
            let fast = joint_probability(method, &totals, &probs);
            assert!(
                rel(fast, pairwise) < 1e-13,
                "{method}: {fast} vs {pairwise}"
            );
        }
        // A single unit: (1 − π) t².
        assert_eq!(joint_probability(PpsMethod::Overton, &[4.0], &[0.75]), 4.0);
    }

    #[test]
    fn brewer_with_every_unit_certain_is_zero_and_a_constant_has_zero_variance() {
        assert_eq!(brewer(&[3.0, 5.0], &[1.0, 1.0]), 0.0);
        assert_eq!(brewer(&[2.0, 2.0, 2.0], &[0.2, 0.5, 0.9]), 0.0);
        let b = brewer(&[1.0, 3.0], &[0.5, 0.25]);
        // n/(n−1) Σ (1−π)(t − t̄)² = 2 (0.5 + 0.75).
        assert!(rel(b, 2.5) < 1e-15);
    }

    fn with_column(f: &Frame, name: &str, values: Vec<f64>) -> Frame {
        let mut g = f.clone();
        let n = g.n_rows();
        let col = Column {
            name: name.into(),
            data: ColumnData::Num(values.into()),
            state: crate::frame::States::AllValue(n),
        };
        if g.column(name).is_some() {
            g.set(col).expect("set");
        } else {
            g.push(col).expect("push");
        }
        g
    }

    #[test]
    fn bad_probabilities_are_errors_naming_column_row_and_value() {
        let f = frame(include_str!("../../fixtures/pps/apiclus2_pps.csv"));
        let rows: Vec<usize> = (0..f.n_rows()).collect();
        let f = with_column(&f, "w", vec![1.0; rows.len()]);
        let pi1 = num(&f, "pi1");
        let brewer = spec(&[], &["dnum", "snum"], &["pi1", "pi2"], PpsMethod::Brewer);
        for (bad, hint) in [(0.0, false), (-0.2, false), (f64::NAN, false), (12.0, true)] {
            let mut p = pi1.clone();
            p[7] = bad;
            let g = with_column(&f, "pi1", p);
            let e = Design::build(&g, &rows, &brewer).expect_err("bad probability");
            let msg = e.to_string();
            assert!(
                matches!(e, DesignError::PpsProbability { row: 7, .. })
                    && msg.contains("fpc column pi1, row 7")
                    && msg.contains(&format!("value {bad}"))
                    && msg.contains("(0, 1]")
                    && msg.contains("population size") == hint,
                "{msg}"
            );
        }
        // Rows 2 and 3 are two schools of one district: its probability must not differ.
        assert_eq!(num(&f, "dnum")[2], num(&f, "dnum")[3]);
        let mut p = pi1.clone();
        p[3] = p[2] / 2.0;
        let g = with_column(&f, "pi1", p.clone());
        let e = Design::build(&g, &rows, &brewer).expect_err("varies within PSU");
        let msg = e.to_string();
        let dnum = num(&f, "dnum")[2];
        assert!(
            matches!(e, DesignError::PpsNotConstant { .. })
                && msg.contains(&format!("within unit {dnum}"))
                && msg.contains(&format!("{} and {}", pi1[2], p[3])),
            "{msg}"
        );
        // Overton and Hartley–Rao are one-stage methods; every method needs probabilities.
        let e = Design::build(
            &f,
            &rows,
            &spec(&[], &["dnum", "snum"], &["pi1", "pi2"], PpsMethod::Overton),
        )
        .expect_err("multistage overton");
        assert!(e.to_string().contains("one sampling stage only"), "{e}");
        let e = Design::build(&f, &rows, &spec(&[], &["dnum"], &[], PpsMethod::HartleyRao))
            .expect_err("no fpc");
        assert!(matches!(e, DesignError::PpsNeedsFpc { .. }), "{e}");
        assert!("hartley_rao".parse::<PpsMethod>().is_err());
        assert_eq!(
            "Hartley-Rao".parse::<PpsMethod>(),
            Ok(PpsMethod::HartleyRao)
        );
    }

    /// Under PPS, rows outside a domain are zero scores (R zeroes their weights, never drops
    /// units): a `present` mask gives the variance of the zero-filled scores, whatever the
    /// scores outside it hold.
    #[test]
    fn a_pps_domain_keeps_every_unit() {
        let mut f = frame(include_str!("../../fixtures/pps/election_pps.csv"));
        let d = design(&mut f, &spec(&[], &[], &["p"], PpsMethod::Brewer));
        let y = num(&f, "Bush");
        let dom: Vec<bool> = (0..f.n_rows()).map(|i| i % 3 == 0).collect();
        let z: Vec<f64> = (0..y.len())
            .map(|i| {
                if dom[i] {
                    d.weights()[i] * y[i]
                } else {
                    f64::NAN
                }
            })
            .collect();
        let zero: Vec<f64> = z
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        let with_mask = d.variance(&z, Some(&dom)).expect("masked");
        let zeros = d.variance(&zero, None).expect("zeros");
        assert!(rel(with_mask, zeros) < 1e-15, "{with_mask} vs {zeros}");
    }

    /// fixtures/pps/small_reference.csv (R survey 4.5): Brewer with a single-unit stratum under
    /// each lonely_psu option and a certainty unit; Overton and Hartley–Rao with pairs whose
    /// probabilities add up to 1.
    #[test]
    fn lonely_strata_and_pairs_summing_to_one_match_r() {
        let (header, want) = read_csv(include_str!("../../fixtures/pps/small_reference.csv"));
        assert_eq!(
            header,
            [
                "method",
                "lonely",
                "total",
                "mean",
                "domain_total",
                "domain_mean"
            ]
        );
        let mut f = frame(include_str!("../../fixtures/pps/small.csv"));
        let y = num(&f, "y");
        let dom: Vec<bool> = num(&f, "dom").iter().map(|&v| v == 1.0).collect();
        let all = vec![true; y.len()];
        let base = design(&mut f, &spec(&["st"], &[], &["p"], PpsMethod::Brewer));
        let w = base.weights().to_vec();
        let total = |dom: &[bool]| crate::test_support::total_scores(&w, &y, dom);
        let mean = |dom: &[bool]| crate::test_support::mean_scores(&w, &y, dom).1;
        let cases = [
            (total(&all), None),
            (mean(&all), None),
            (total(&dom), Some(dom.as_slice())),
            (mean(&dom), Some(dom.as_slice())),
        ];
        for r in &want {
            let method: PpsMethod = r[0].as_deref().unwrap_or("").parse().expect("method");
            let lonely: LonelyPsu = r[1].as_deref().unwrap_or("").parse().expect("lonely");
            let mut sp = spec(&["st"], &[], &["p"], method);
            sp.lonely_psu = lonely;
            let d = Design::build(&f, &(0..y.len()).collect::<Vec<_>>(), &sp).expect("design");
            for (k, (scores, present)) in cases.iter().enumerate() {
                let r_var: f64 = r[2 + k].as_deref().unwrap_or("").parse().expect("variance");
                let v = d.variance(scores, *present).expect("variance");
                assert!(
                    rel(v, r_var) < 1e-12,
                    "{method} {lonely} {}: {v} vs R {r_var}",
                    header[2 + k]
                );
            }
        }
        // Under fail, Brewer's single-unit stratum is an error naming it.
        let d = Design::build(
            &f,
            &(0..y.len()).collect::<Vec<_>>(),
            &spec(&["st"], &[], &["p"], PpsMethod::Brewer),
        )
        .expect("design");
        assert!(matches!(
            d.variance(&cases[0].0, None),
            Err(VarianceError::LonelyPsu { ref stratum, stage: 1 }) if stratum == "3"
        ));
    }
}
