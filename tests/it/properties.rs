//! Property tests (proptest) of the statistics on random stratified cluster samples: Taylor
//! variance is invariant to row order and to relabelling PSUs and strata, scales with the
//! square of the scores, is zero for a constant, and equals the JKn variance of a total; every
//! proportion interval contains its estimate and stays in [0, 1].

use cvsurvey::design::{Design, DesignSpec, LonelyPsu};
use cvsurvey::estimate::ci::{CiMethod, proportion_ci};
use cvsurvey::frame::{CellState, Column, ColumnData, Frame};
use cvsurvey::replicates::{ReplicateDesign, ReplicateMethod, ReplicateOptions};
use proptest::prelude::*;

/// A sample: per row its stratum, PSU (numbered within stratum), weight and value.
#[derive(Debug, Clone)]
struct Sample {
    stratum: Vec<u32>,
    psu: Vec<u32>,
    weight: Vec<f64>,
    y: Vec<f64>,
}

/// 2–5 strata, 2–6 PSUs each, 1–5 rows per PSU, weights 1–1000, values 0–100.
fn sample() -> impl Strategy<Value = Sample> {
    prop::collection::vec(
        prop::collection::vec(
            prop::collection::vec((1.0f64..1000.0, 0.0f64..100.0), 1..6),
            2..7,
        ),
        2..6,
    )
    .prop_map(|strata| {
        let mut s = Sample {
            stratum: Vec::new(),
            psu: Vec::new(),
            weight: Vec::new(),
            y: Vec::new(),
        };
        for (h, psus) in strata.iter().enumerate() {
            for (p, rows) in psus.iter().enumerate() {
                for &(w, y) in rows {
                    s.stratum.push(h as u32);
                    s.psu.push(p as u32);
                    s.weight.push(w);
                    s.y.push(y);
                }
            }
        }
        s
    })
}

fn num(name: &str, v: Vec<f64>) -> Column {
    let state = vec![CellState::Value; v.len()];
    Column {
        name: name.into(),
        data: ColumnData::Num(v.into()),
        state: state.into(),
    }
}

fn design(
    s: &Sample,
    stratum_label: impl Fn(u32) -> f64,
    psu_label: impl Fn(u32, u32) -> f64,
) -> Design {
    let n = s.y.len();
    let mut f = Frame::new(n);
    f.push(num(
        "h",
        s.stratum.iter().map(|&h| stratum_label(h)).collect(),
    ))
    .expect("h");
    f.push(num(
        "p",
        s.stratum
            .iter()
            .zip(&s.psu)
            .map(|(&h, &p)| psu_label(h, p))
            .collect(),
    ))
    .expect("p");
    f.push(num("w", s.weight.clone())).expect("w");
    let spec = DesignSpec {
        strata: vec!["h".into()],
        psu: vec!["p".into()],
        fpc: Vec::new(),
        weight: "w".into(),
        nest: true,
        lonely_psu: LonelyPsu::Fail,
        ..Default::default()
    };
    Design::build(&f, &(0..n).collect::<Vec<_>>(), &spec).expect("design")
}

/// Scores of a weighted mean: w (y − ȳ) / Σw.
fn mean_scores(w: &[f64], y: &[f64]) -> Vec<f64> {
    let sw: f64 = w.iter().sum();
    let mean = w.iter().zip(y).map(|(a, b)| a * b).sum::<f64>() / sw;
    w.iter().zip(y).map(|(a, b)| a * (b - mean) / sw).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300) || (a - b).abs() < 1e-300
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn variance_is_invariant_to_row_order_and_labels(s in sample(), seed in 0u64..1000) {
        let d = design(&s, |h| h as f64, |h, p| (h * 100 + p) as f64);
        let v = d.variance(&mean_scores(&s.weight, &s.y), None).expect("variance");
        // Reverse-rotate the rows and relabel strata and PSUs.
        let n = s.y.len();
        let shift = (seed as usize) % n;
        let order: Vec<usize> = (0..n).rev().cycle().skip(shift).take(n).collect();
        let p = Sample {
            stratum: order.iter().map(|&i| s.stratum[i]).collect(),
            psu: order.iter().map(|&i| s.psu[i]).collect(),
            weight: order.iter().map(|&i| s.weight[i]).collect(),
            y: order.iter().map(|&i| s.y[i]).collect(),
        };
        let d2 = design(&p, |h| 1000.0 - h as f64, |h, q| (7 * h + 31 * q) as f64 + 0.5);
        let v2 = d2.variance(&mean_scores(&p.weight, &p.y), None).expect("variance");
        prop_assert!(close(v, v2, 1e-9), "{v} vs {v2}");
    }

    #[test]
    fn variance_scales_and_vanishes_for_a_constant(s in sample(), c in 0.001f64..1000.0) {
        let d = design(&s, |h| h as f64, |h, p| (h * 100 + p) as f64);
        let totals: Vec<f64> = s.weight.iter().zip(&s.y).map(|(w, y)| w * y).collect();
        let v = d.variance(&totals, None).expect("variance");
        let scaled: Vec<f64> = totals.iter().map(|t| t * c).collect();
        let vc = d.variance(&scaled, None).expect("variance");
        prop_assert!(close(vc, v * c * c, 1e-9), "{vc} vs {}", v * c * c);
        // A mean of a constant has zero variance; multiplying every weight leaves a mean's variance.
        let constant = vec![3.5; s.y.len()];
        let v0 = d.variance(&mean_scores(&s.weight, &constant), None).expect("variance");
        prop_assert!(v0.abs() < 1e-20, "{v0}");
        let w_scaled: Vec<f64> = s.weight.iter().map(|w| w * c).collect();
        let vm = d.variance(&mean_scores(&s.weight, &s.y), None).expect("variance");
        let vm_scaled = d.variance(&mean_scores(&w_scaled, &s.y), None).expect("variance");
        prop_assert!(close(vm_scaled, vm, 1e-9), "{vm_scaled} vs {vm}");
    }

    #[test]
    fn jkn_variance_of_a_total_equals_taylor(s in sample()) {
        let d = design(&s, |h| h as f64, |h, p| (h * 100 + p) as f64);
        let totals: Vec<f64> = s.weight.iter().zip(&s.y).map(|(w, y)| w * y).collect();
        let taylor = d.variance(&totals, None).expect("variance");
        let rep = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &ReplicateOptions::default()).expect("jkn");
        let full: f64 = totals.iter().sum();
        let thetas: Vec<f64> = (0..rep.n_replicates())
            .map(|r| rep.replicate_weights(r).iter().zip(&s.y).map(|(w, y)| w * y).sum())
            .collect();
        let jkn = rep.variance(&thetas, full);
        prop_assert!(close(jkn, taylor, 1e-8), "JKn {jkn} vs Taylor {taylor}");
    }

    #[test]
    fn proportion_intervals_contain_the_estimate(p in 0.0f64..=1.0, se in 0.0f64..0.3, df in 1.0f64..500.0, n in 2.0f64..5000.0) {
        for method in [CiMethod::Mean, CiMethod::Normal, CiMethod::Logit, CiMethod::Xlogit, CiMethod::Asin, CiMethod::Beta, CiMethod::Wilson] {
            if let Some((lo, hi)) = proportion_ci(method, p, se, df, 0.95, n) {
                prop_assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi), "{method:?} [{lo}, {hi}]");
                prop_assert!(lo <= p + 1e-12 && p <= hi + 1e-12, "{method:?} p {p} not in [{lo}, {hi}]");
            }
        }
    }
}
