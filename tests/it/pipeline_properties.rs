//! Property tests of whole runs (`cvsurvey::pipeline::run`) on random stratified cluster samples:
//! calibrated weights reproduce every margin; estimates do not depend on row order; multiplying
//! every design weight by a constant leaves means, proportions and ratios (and their SEs) as they
//! were and scales totals; domain totals add up to the overall total.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;

use crate::common::{Row, design_questionnaire, read_estimates, scratch};

/// The variables after the design columns of `common::design_questionnaire`.
const VARIABLES: &str = r#"
[[variables]]
name = "sex"
codes = { 1 = "Male", 2 = "Female" }
frame = true

[[variables]]
name = "agegrp"
codes = { 1 = "Young", 2 = "Middle", 3 = "Old" }
frame = true

[[variables]]
name = "y"
codes = { 1 = "Yes", 2 = "No" }
missing = { 8 = "dont_know" }

[[variables]]
name = "x"
type = "numeric"

[[indicators]]
id = "share"
kind = "proportion"
value = "y == 1"
universe = "y in [1, 2]"

[[indicators]]
id = "mean_x"
kind = "mean"
value = "x"

[[indicators]]
id = "total_x"
kind = "total"
value = "x"

[[indicators]]
id = "ratio"
kind = "ratio"
numerator = "x"
denominator = "if(y == 1, 1, 2)"
universe = "y in [1, 2]"
"#;

/// One respondent: stratum, PSU, weight, sex, age group, y (1, 2 or 8 = don't know), x.
type Person = (u32, u32, f64, u32, u32, u32, f64);

/// 2–4 strata × 2–4 PSUs × 2–6 persons; every sex and age group appears (the first six
/// persons are forced to cover them) so that calibration has respondents in every category.
fn sample() -> impl Strategy<Value = Vec<Person>> {
    let person = (
        1.0f64..500.0,
        1u32..=2,
        1u32..=3,
        prop_oneof![4 => Just(1u32), 4 => Just(2u32), 1 => Just(8u32)],
        0.0f64..100.0,
    );
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(person, 2..7), 2..5),
        2..5,
    )
    .prop_map(|strata| {
        let mut people = Vec::new();
        for (h, psus) in strata.into_iter().enumerate() {
            for (p, persons) in psus.into_iter().enumerate() {
                for (w, sex, age, y, x) in persons {
                    people.push((h as u32, p as u32 + 1, w, sex, age, y, x));
                }
            }
        }
        for (k, person) in people.iter_mut().take(6).enumerate() {
            person.3 = 1 + (k % 2) as u32;
            person.4 = 1 + (k % 3) as u32;
        }
        people
    })
}

/// Population totals of sex and age group that agree (both add up to `population`).
fn margins() -> impl Strategy<Value = ([f64; 2], [f64; 3])> {
    (0.2f64..0.8, 0.1f64..0.5, 0.1f64..0.5, 1e3f64..1e7).prop_map(|(male, young, middle, n)| {
        let old = (1.0 - young - middle).max(0.05);
        let s = young + middle + old;
        (
            [male * n, (1.0 - male) * n],
            [young / s * n, middle / s * n, old / s * n],
        )
    })
}

/// Write the questionnaire, data, margins and config into `dir`; return the config path.
fn write_run(
    dir: &Path,
    people: &[Person],
    weight_factor: f64,
    margins: ([f64; 2], [f64; 3]),
) -> PathBuf {
    std::fs::write(dir.join("q.toml"), design_questionnaire("prop", VARIABLES))
        .expect("questionnaire");
    let mut csv = String::from("id,stratum,psu,w,sex,agegrp,y,x\n");
    for (i, (h, p, w, sex, age, y, x)) in people.iter().enumerate() {
        writeln!(
            csv,
            "p{i},S{h},{p},{},{sex},{age},{y},{x}",
            w * weight_factor
        )
        .expect("row");
    }
    std::fs::write(dir.join("data.csv"), csv).expect("data");
    let mut m = String::from("variable,category,total\n");
    for (k, t) in margins.0.iter().enumerate() {
        writeln!(m, "sex,{},{t}", k + 1).expect("margin");
    }
    for (k, t) in margins.1.iter().enumerate() {
        writeln!(m, "agegrp,{},{t}", k + 1).expect("margin");
    }
    std::fs::write(dir.join("margins.csv"), m).expect("margins");
    let config = r#"questionnaire = "q.toml"
[data]
path = "data.csv"
id = "id"
[design]
strata = "stratum"
psu = "psu"
weight = "w"
nest = true
[[weighting]]
name = "design"
[[weighting]]
name = "raked"
calibration = { method = "raking", margins = "margins.csv" }
[[weighting]]
name = "linear"
calibration = { method = "linear", margins = "margins.csv" }
[variance]
method = "taylor"
[estimation]
indicators = ["*"]
domains = ["sex", "agegrp"]
ci = ["logit", "beta"]
[reliability]
suppress = false
[output]
dir = "out"
"#;
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).expect("config");
    path
}

fn run(name: &str, people: &[Person], factor: f64, m: ([f64; 2], [f64; 3])) -> (PathBuf, Vec<Row>) {
    let dir = scratch(name);
    let config = write_run(&dir, people, factor, m);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let rows = read_estimates(&dir.join("out/estimates.parquet")).0;
    (dir, rows)
}

/// Key of an estimate row (everything but the numbers).
fn key(r: &Row) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        r.indicator, r.weighting, r.domain_var, r.domain_value, r.ci_method
    )
}

fn by_key(rows: &[Row]) -> HashMap<String, &Row> {
    rows.iter().map(|r| (key(r), r)).collect()
}

/// |a − b| ≤ tol · max(|a|, |b|, floor), for optional values that must both be present or absent.
fn near(a: Option<f64>, b: Option<f64>, tol: f64, floor: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tol * a.abs().max(b.abs()).max(floor),
        (None, None) => true,
        _ => false,
    }
}

/// The final weights of `scheme` from `weights.parquet` with each respondent's sex and age group.
fn scheme_weights(dir: &Path, scheme: &str) -> Vec<f64> {
    let file = File::open(dir.join("out/weights.parquet")).expect("weights.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let col = batch
            .column_by_name(scheme)
            .expect("scheme column")
            .as_primitive::<Float64Type>();
        for i in 0..col.len() {
            if !col.is_null(i) {
                out.push(col.value(i));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn calibrated_weights_reproduce_every_margin(people in sample(), m in margins()) {
        let (dir, _) = run("prop-margins", &people, 1.0, m);
        for scheme in ["raked", "linear"] {
            let w = scheme_weights(&dir, scheme);
            prop_assert_eq!(w.len(), people.len());
            let mut sex = [0.0; 2];
            let mut age = [0.0; 3];
            for (wi, p) in w.iter().zip(&people) {
                sex[p.3 as usize - 1] += wi;
                age[p.4 as usize - 1] += wi;
            }
            // Raking stops when every model total is within 1e-7 × (1 + total) (R's epsilon);
            // the model has an intercept, so a category's error is a sum of such misfits and
            // is bounded relative to the population, not to the category.
            let population: f64 = m.0.iter().sum();
            let tol = if scheme == "linear" { 1e-10 } else { 1e-6 };
            for (got, want) in sex.iter().chain(&age).zip(m.0.iter().chain(&m.1)) {
                prop_assert!((got - want).abs() <= tol * population, "{}: {} vs {}", scheme, got, want);
            }
        }
    }

    #[test]
    fn estimates_do_not_depend_on_row_order(people in sample(), m in margins(), seed in 0u64..1000) {
        let mut shuffled = people.clone();
        // A deterministic Fisher–Yates shuffle driven by `seed`.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (state >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let (_, a) = run("prop-order-a", &people, 1.0, m);
        let (_, b) = run("prop-order-b", &shuffled, 1.0, m);
        prop_assert_eq!(a.len(), b.len());
        let b = by_key(&b);
        for r in &a {
            let s = b.get(&key(r)).expect("same rows");
            // Sums are added in a different order, so a zero SE (a degenerate domain) can come
            // out as rounding noise of the estimate's size: differences are judged against the
            // estimate's magnitude as well as their own.
            let scale = r.estimate.map_or(0.0, f64::abs).max(1e-12);
            for (x, y) in [(r.estimate, s.estimate), (r.se, s.se), (r.ci_low, s.ci_low), (r.ci_high, s.ci_high)] {
                prop_assert!(near(x, y, 1e-9, scale), "{}: {:?} vs {:?}", key(r), x, y);
            }
        }
    }

    #[test]
    fn scaling_the_weights_scales_totals_only(people in sample(), m in margins(), c in 0.001f64..1000.0) {
        let (_, a) = run("prop-scale-a", &people, 1.0, m);
        let (_, b) = run("prop-scale-b", &people, c, m);
        let b = by_key(&b);
        for r in a.iter().filter(|r| r.weighting == "design") {
            let s = b.get(&key(r)).expect("same rows");
            let factor = if r.indicator == "total_x" { c } else { 1.0 };
            let scaled = |v: Option<f64>| v.map(|v| v * factor);
            // An SE that is 0 in exact arithmetic (a constant variable in a domain) comes out as
            // rounding noise of either sign's order 1e-15 × the estimate: compare on the scale of
            // the estimate, not of the SE itself.
            let floor = r.estimate.map_or(1.0, f64::abs).max(1.0) * factor;
            for (x, y) in [(r.estimate, s.estimate), (r.se, s.se), (r.ci_low, s.ci_low), (r.ci_high, s.ci_high)] {
                prop_assert!(near(scaled(x), y, 1e-9, floor), "{}: {:?} × {} vs {:?}", key(r), x, factor, y);
            }
            prop_assert!((r.n_weighted * c - s.n_weighted).abs() <= 1e-9 * s.n_weighted.abs().max(1e-12));
        }
        // Calibrated schemes reach the same population totals whatever the design weights'
        // scale: linear calibration exactly, raking to its convergence tolerance.
        for r in a.iter().filter(|r| r.weighting != "design") {
            let s = b.get(&key(r)).expect("same rows");
            let tol = if r.weighting == "linear" { 1e-8 } else { 1e-5 };
            prop_assert!(near(r.estimate, s.estimate, tol, 1e-9), "{}: {:?} vs {:?}", key(r), r.estimate, s.estimate);
        }
    }

    #[test]
    fn domain_totals_add_up_to_the_overall_total(people in sample(), m in margins()) {
        let (_, rows) = run("prop-domains", &people, 1.0, m);
        for scheme in ["design", "raked", "linear"] {
            let total = |var: &str| -> Vec<f64> {
                rows.iter()
                    .filter(|r| r.indicator == "total_x" && r.weighting == scheme && r.domain_var == var)
                    .filter_map(|r| r.estimate)
                    .collect()
            };
            let overall = total("_T");
            prop_assert_eq!(overall.len(), 1);
            for var in ["sex", "agegrp"] {
                let parts = total(var);
                prop_assert_eq!(parts.len(), if var == "sex" { 2 } else { 3 });
                let sum: f64 = parts.iter().sum();
                prop_assert!((sum - overall[0]).abs() <= 1e-9 * overall[0].abs().max(1e-12),
                    "{} {}: {} vs {}", scheme, var, sum, overall[0]);
            }
        }
    }
}
