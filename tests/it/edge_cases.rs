//! Edge cases with defined answers: p̂ = 0 and 1, a domain of one respondent, a domain inside one
//! PSU (df = 0), zero weights, weights from 1e-6 to 1e9, a stratum of certainty PSUs. Whatever
//! the case, the outputs hold no NaN and no infinity, a blank statistic comes with a flag and a
//! reason, and every input row is used or quarantined.

use std::fmt::Write as _;
use std::path::Path;

use crate::common::{design_questionnaire, read_estimates, scratch};

/// The variables after the design columns of `common::design_questionnaire`.
const VARIABLES: &str = r#"
[[variables]]
name = "psus_in_stratum"
type = "numeric"
frame = true

[[variables]]
name = "dom"
codes = { all0 = "Nobody", all1 = "Everybody", one = "One respondent", onepsu = "One PSU", mixed = "Mixed" }

[[variables]]
name = "y"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "x"
type = "numeric"

[[indicators]]
id = "share"
kind = "proportion"
value = "y == 1"

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

[[indicators]]
id = "ratio_zero_denominator"
kind = "ratio"
numerator = "x"
denominator = "if(y == 1, 1, 0)"
"#;

/// Rows: (stratum, psu, weight, domain, y, x). Stratum C's two PSUs are the whole stratum
/// (certainty units, FPC = 2); stratum X has weights from 1e-6 to 1e9; two rows weigh 0.
fn data_rows() -> Vec<(&'static str, u32, f64, &'static str, u8, f64)> {
    let mut rows = Vec::new();
    let domains = ["all0", "all1", "mixed", "mixed", "mixed"];
    for psu in 1..=4u32 {
        for k in 0..5usize {
            let dom = domains[k];
            let y = match dom {
                "all0" => 2,
                "all1" => 1,
                _ => 1 + ((psu as usize + k) % 2) as u8,
            };
            rows.push((
                "A",
                psu,
                10.0 + psu as f64,
                dom,
                y,
                (psu * 3 + k as u32) as f64,
            ));
        }
    }
    // One respondent in domain "one"; a domain whose respondents are all in PSU 5.
    rows.push(("B", 5, 20.0, "one", 1, 7.0));
    for k in 0..4 {
        rows.push(("B", 5, 20.0, "onepsu", 1 + (k % 2) as u8, 2.0 + k as f64));
    }
    rows.push(("B", 6, 25.0, "mixed", 2, 4.0));
    rows.push(("B", 6, 25.0, "all0", 2, 4.5));
    for psu in [7, 8] {
        for k in 0..3 {
            rows.push(("C", psu, 1.0, "mixed", 1 + (k % 2) as u8, 5.0 + k as f64));
        }
    }
    for (psu, w) in [(9, 1e-6), (10, 1e9)] {
        for k in 0..3 {
            rows.push((
                "X",
                psu,
                w,
                "mixed",
                1 + ((psu + k) % 2) as u8,
                1.0 + k as f64,
            ));
        }
    }
    rows.push(("A", 1, 0.0, "mixed", 1, 1.0));
    rows.push(("B", 6, 0.0, "mixed", 2, 1.0));
    rows
}

fn write_case(dir: &Path, variance: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("edge.toml"),
        design_questionnaire("edge", VARIABLES),
    )
    .expect("write questionnaire");
    let mut csv = String::from("id,stratum,psu,w,psus_in_stratum,dom,y,x\n");
    let psus = |s: &str| match s {
        "A" => 40.0,
        "B" => 10.0,
        "C" => 2.0,
        _ => 1e6,
    };
    for (i, (s, psu, w, dom, y, x)) in data_rows().into_iter().enumerate() {
        writeln!(csv, "r{i},{s},{psu},{w},{},{dom},{y},{x}", psus(s)).expect("format");
    }
    std::fs::write(dir.join("data.csv"), csv).expect("write data");
    let config = format!(
        r#"questionnaire = "edge.toml"
[data]
path = "data.csv"
id = "id"
[design]
strata = "stratum"
psu = "psu"
weight = "w"
fpc = "psus_in_stratum"
[[weighting]]
name = "design"
[variance]
method = {variance}
[estimation]
indicators = ["*"]
domains = ["dom"]
ci = ["logit", "beta", "xlogit", "asin", "wilson", "mean", "normal"]
[reliability]
preset = "eurostat"
suppress = false
[output]
dir = "out"
"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

fn run_case(name: &str, variance: &str) -> Vec<crate::common::Row> {
    let dir = scratch(name);
    let config = write_case(&dir, variance);
    let report = cvsurvey::pipeline::run(&config, Default::default())
        .unwrap_or_else(|e| panic!("run on edge cases: {e}"));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/run_summary.json")).expect("run summary"),
    )
    .expect("json");
    let rows = &summary["inputs"][0];
    assert_eq!(rows["rows_read"], data_rows().len(), "{summary}");
    assert_eq!(
        rows["rows_quarantined"], 2,
        "the two zero weights: {summary}"
    );
    let quarantine = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert_eq!(quarantine.lines().count(), 3, "{quarantine}");
    assert!(quarantine.contains(",w,0,"), "{quarantine}");
    drop(report);
    read_estimates(&dir.join("out/estimates.parquet")).0
}

/// Every statistic is finite or blank, and a blank one has a flag and a reason.
fn assert_defined_or_flagged(rows: &[crate::common::Row]) {
    assert!(!rows.is_empty());
    for r in rows {
        let what = format!(
            "{} {} {} {}={}",
            r.indicator, r.variance, r.ci_method, r.domain_var, r.domain_value
        );
        for (name, v) in [
            ("estimate", r.estimate),
            ("se", r.se),
            ("ci_low", r.ci_low),
            ("ci_high", r.ci_high),
            ("df", r.df),
            ("cv", r.cv),
            ("deff", r.deff),
        ] {
            if let Some(v) = v {
                assert!(v.is_finite(), "{what}: {name} = {v}");
            }
        }
        assert!(r.n_weighted.is_finite(), "{what}");
        let blank = r.estimate.is_none() || r.se.is_none() || r.ci_low.is_none();
        if blank {
            assert!(
                !r.flag.is_empty() && !r.flag_reason.is_empty(),
                "{what}: blank without a flag: {r:?}"
            );
        }
        if let (Some(lo), Some(hi), Some(est)) = (r.ci_low, r.ci_high, r.estimate)
            && r.ci_method != "asin"
        {
            let tol = 1e-9 * est.abs().max(1.0);
            assert!(
                lo <= est + tol && est <= hi + tol,
                "{what}: {lo} {est} {hi}"
            );
        }
        if r.indicator == "share"
            && let (Some(lo), Some(hi)) = (r.ci_low, r.ci_high)
            && r.ci_method != "asin"
        {
            assert!(
                (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
                "{what}"
            );
        }
    }
}

fn find<'a>(
    rows: &'a [crate::common::Row],
    indicator: &str,
    domain: &str,
    ci: &str,
) -> &'a crate::common::Row {
    rows.iter()
        .find(|r| r.indicator == indicator && r.domain_value == domain && r.ci_method == ci)
        .unwrap_or_else(|| panic!("no row {indicator} {domain} {ci}"))
}

#[test]
fn taylor_edge_cases_are_defined_or_flagged() {
    let rows = run_case("edge-taylor", "\"taylor\"");
    assert_defined_or_flagged(&rows);
    // p̂ = 0 and 1: Korn–Graubard is the Clopper–Pearson closed form, with one end at 0 or 1.
    let zero = find(&rows, "share", "all0", "beta");
    assert_eq!(zero.estimate, Some(0.0));
    assert_eq!(zero.ci_low, Some(0.0));
    assert!(zero.ci_high.is_some_and(|h| h > 0.0 && h < 1.0), "{zero:?}");
    let one = find(&rows, "share", "all1", "beta");
    assert_eq!(one.estimate, Some(1.0));
    assert_eq!(one.ci_high, Some(1.0));
    assert!(one.ci_low.is_some_and(|l| l > 0.0 && l < 1.0), "{one:?}");
    // The domain inside one PSU has df = 0: no interval, and a flag that says why.
    let inside = find(&rows, "mean_x", "onepsu", "mean");
    assert_eq!(inside.df, Some(0.0), "{inside:?}");
    assert!(
        inside.ci_low.is_none() && inside.estimate.is_some(),
        "{inside:?}"
    );
    assert!(inside.flag_reason.contains("df = 0"), "{inside:?}");
    // A ratio whose denominator is 0 throughout a domain: that row is blank and flagged (R
    // gives NaN), the other domains are estimated.
    let undefined = find(&rows, "ratio_zero_denominator", "all0", "mean");
    assert!(
        undefined.estimate.is_none() && undefined.se.is_none() && !undefined.flag.is_empty(),
        "{undefined:?}"
    );
    let defined = find(&rows, "ratio_zero_denominator", "all1", "mean");
    assert!(defined.estimate.is_some(), "{defined:?}");
    // One respondent: the estimate is that respondent's value.
    let single = find(&rows, "mean_x", "one", "mean");
    assert_eq!(single.estimate, Some(7.0));
    assert_eq!(single.n_unweighted, 1);
    // The overall total carries the 1e9 weights and stays finite.
    let total = find(&rows, "total_x", "_T", "mean");
    assert!(total.estimate.is_some_and(|t| t > 1e9), "{total:?}");
}

#[test]
fn replicate_edge_cases_are_defined_or_flagged() {
    let rows = run_case("edge-replicate", "[\"jkn\", \"bootstrap\"]");
    assert_defined_or_flagged(&rows);
    assert!(rows.iter().any(|r| r.variance == "jkn"));
    assert!(rows.iter().any(|r| r.variance == "bootstrap"));
}
