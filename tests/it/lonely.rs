//! Strata with a single responding PSU: `lonely_psu = "collapse"` through the whole pipeline,
//! against R `survey` on the design with the same strata merged by hand.

use crate::common::{read_estimates, rel_diff, relocated_config, root, scratch};

/// R's rows of `fixtures/collapse/collapse_reference.csv` for one rule:
/// (variance, indicator, domain_var, domain_value) → (estimate, se).
fn reference(rule: &str) -> Vec<([String; 4], f64, f64)> {
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/collapse/collapse_reference.csv"))
            .expect("reference");
    reader
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| &r[0] == rule)
        .map(|r| {
            let f = |i: usize| r[i].parse::<f64>().expect("number");
            ([1, 2, 3, 4].map(|i| r[i].to_string()), f(5), f(6))
        })
        .collect()
}

fn run(name: &str, extra: &[(&str, &str)]) -> (Vec<crate::common::Row>, serde_json::Value) {
    let dir = scratch(name);
    let config = relocated_config(&root().join("fixtures/collapse/pipeline.toml"), &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/run_summary.json")).expect("summary"),
    )
    .expect("json");
    (rows, summary)
}

fn check(rows: &[crate::common::Row], rule: &str) {
    let want = reference(rule);
    assert_eq!(want.len(), 14, "{rule}");
    for (key, estimate, se) in &want {
        let ours = rows
            .iter()
            .find(|r| {
                r.variance == key[0]
                    && r.indicator == key[1]
                    && r.domain_var == key[2]
                    && r.domain_value == key[3]
            })
            .unwrap_or_else(|| panic!("{rule}: no row {key:?}"));
        let (e, s) = (ours.estimate.expect("estimate"), ours.se.expect("se"));
        assert!(
            rel_diff(e, *estimate) < 1e-10,
            "{rule} {key:?} estimate {e} vs {estimate}"
        );
        assert!(rel_diff(s, *se) < 1e-9, "{rule} {key:?} se {s} vs R {se}");
    }
}

fn collapsed(summary: &serde_json::Value) -> Vec<(String, String, String)> {
    summary["design"]["collapsed_strata"]
        .as_array()
        .expect("collapsed_strata listed")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().expect(k).to_string();
            (s("stratum"), s("partner"), s("merged_stratum"))
        })
        .collect()
}

#[test]
fn collapsed_strata_match_r_on_the_design_merged_by_hand() {
    // Next stratum in collapse_order within region.
    let (rows, summary) = run("collapse-order", &[]);
    check(&rows, "order");
    let pair = |a: &str, b: &str, m: &str| (a.to_string(), b.to_string(), m.to_string());
    assert_eq!(
        collapsed(&summary),
        [
            pair("S02", "S01", "S01+S02"),
            pair("S06", "S05", "S05+S06"),
            pair("S07", "S08", "S07+S08"),
        ]
    );
    assert_eq!(summary["design"]["strata"], 7);
    let warnings = summary["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("stratum S06 has one responding PSU"))),
        "{warnings:?}"
    );

    // Without an order: the closest design-weight total within the region.
    let (rows, summary) = run("collapse-weight", &[("collapse_order", "")]);
    check(&rows, "weight");
    let merged: Vec<String> = collapsed(&summary).into_iter().map(|c| c.2).collect();
    assert!(merged.contains(&"S07+S08+S09".to_string()), "{merged:?}");
}

#[test]
fn collapse_without_a_partner_is_an_error_naming_the_stratum() {
    // collapse_within = stratum: no other stratum shares a lonely stratum's value.
    let e = run_err(
        "collapse-no-partner",
        &[("collapse_within", "collapse_within = \"stratum\"")],
    );
    assert!(
        e.contains("stratum S02 has only one responding PSU")
            && e.contains("with the same stratum"),
        "{e}"
    );
    // An order column that varies within a stratum.
    let e = run_err(
        "collapse-varies",
        &[("collapse_order", "collapse_order = \"y\"")],
    );
    assert!(
        e.contains("design column y is not constant within stratum"),
        "{e}"
    );
}

fn run_err(name: &str, extra: &[(&str, &str)]) -> String {
    let dir = scratch(name);
    let config = relocated_config(&root().join("fixtures/collapse/pipeline.toml"), &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default())
        .expect_err("error")
        .to_string()
}
