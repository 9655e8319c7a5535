//! Estimates against R `survey` 4.1 references (`fixtures/*/reference.csv`, copied from the
//! oracle; see `fixtures/README.md`).

use std::collections::HashMap;
use std::path::Path;

use crate::common::{Row, read_estimates, rel_diff, relocated_config, root, scratch};

/// One reference row.
#[derive(Debug, Clone)]
struct Reference {
    case: String,
    design: String,
    weighting: String,
    estimator: String,
    variable: String,
    domain_var: String,
    domain_value: String,
    estimate: f64,
    se: f64,
    ci_low: f64,
    ci_high: f64,
    ci_method: String,
    df: f64,
    deff: Option<f64>,
    n_unweighted: i64,
}

fn references(path: &Path) -> Vec<Reference> {
    let mut reader = csv::Reader::from_path(path).expect("reference.csv");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let idx: HashMap<&str, usize> = [
        "case",
        "design",
        "weighting",
        "estimator",
        "variable",
        "domain_var",
        "domain_value",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "ci_method",
        "df",
        "deff",
        "n_unweighted",
    ]
    .into_iter()
    .map(|n| (n, col(n)))
    .collect();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            let s = |n: &str| r[idx[n]].to_string();
            let f = |n: &str| {
                r[idx[n]]
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("{n} of {}", &r[0]))
            };
            Reference {
                case: s("case"),
                design: s("design"),
                weighting: s("weighting"),
                estimator: s("estimator"),
                variable: s("variable"),
                domain_var: s("domain_var"),
                domain_value: s("domain_value"),
                estimate: f("estimate"),
                se: f("se"),
                ci_low: f("ci_low"),
                ci_high: f("ci_high"),
                ci_method: s("ci_method"),
                df: f("df"),
                deff: r[idx["deff"]].parse::<f64>().ok(),
                n_unweighted: r[idx["n_unweighted"]].parse::<i64>().expect("n"),
            }
        })
        .collect()
}

/// Find our row for a reference row; `indicator` is our indicator id.
fn lookup<'a>(rows: &'a [Row], r: &Reference, indicator: &str, weighting: &str) -> Option<&'a Row> {
    let (dvar, dval) = if r.domain_var == "overall" {
        ("_T", "_T")
    } else {
        (r.domain_var.as_str(), r.domain_value.as_str())
    };
    let method = match r.ci_method.as_str() {
        "t_degf" | "t_degf_full" => "mean",
        m => m,
    };
    rows.iter().find(|x| {
        x.indicator == indicator
            && x.weighting == weighting
            && x.domain_var == dvar
            && x.domain_value == dval
            && x.ci_method == method
    })
}

/// Compare estimate, SE, CI bounds, df, deff and n; returns the largest relative difference
/// over estimate/SE/CI.
fn compare(ours: &Row, r: &Reference, tol: f64) -> f64 {
    let mut worst: f64 = 0.0;
    for (name, a, b) in [
        ("estimate", ours.estimate, r.estimate),
        ("se", ours.se, r.se),
        ("ci_low", ours.ci_low, r.ci_low),
        ("ci_high", ours.ci_high, r.ci_high),
    ] {
        let a = a.unwrap_or_else(|| panic!("{}: {name} is null", r.case));
        // An SE that R computes as rounding noise (a margin fixed by calibration: api
        // rake_stype_schwide, sch.wide ~ 1e-10) is compared absolutely.
        if name == "se" && b.abs() < 1e-8 * r.estimate.abs() {
            assert!(
                a.abs() < 1e-8 * r.estimate.abs(),
                "{}: se ours {a} R {b}",
                r.case
            );
            continue;
        }
        let d = rel_diff(a, b);
        assert!(
            d <= tol,
            "{} {} {} {}={}: {name} ours {a} R {b} (rel diff {d:e})",
            r.case,
            r.variable,
            r.weighting,
            r.domain_var,
            r.domain_value
        );
        worst = worst.max(d);
    }
    assert_eq!(ours.df, Some(r.df), "{}: df", r.case);
    assert_eq!(
        ours.n_unweighted, r.n_unweighted,
        "{}: n_unweighted",
        r.case
    );
    if let Some(deff) = r.deff {
        let ours_deff = ours
            .deff
            .unwrap_or_else(|| panic!("{}: deff is null", r.case));
        assert!(
            rel_diff(ours_deff, deff) <= tol,
            "{}: deff ours {ours_deff} R {deff}",
            r.case
        );
    }
    worst
}

/// Reference rows replaced by `fixtures/demo/reference_fixes.csv` (made by
/// `reference_fixes.R`): on 54 small calibrated region domains R's `svyciprop(method = "logit")`
/// fit fails and returns 0 [0, 0]; the replacement is R's `xlogit` interval, the same closed form.
fn apply_reference_fixes(refs: &mut [Reference]) -> usize {
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/demo/reference_fixes.csv")).expect("fixes");
    let mut fixed = 0;
    for rec in reader.records() {
        let rec = rec.expect("record");
        let f = |i: usize| rec[i].parse::<f64>().expect("number");
        let r = refs
            .iter_mut()
            .find(|r| r.case == rec[0])
            .expect("fixed case exists");
        assert_eq!(
            r.estimate, 0.0,
            "{}: the reference row still shows R's failed fit",
            r.case
        );
        (r.estimate, r.se, r.ci_low, r.ci_high) = (f(1), f(2), f(3), f(4));
        fixed += 1;
    }
    fixed
}

#[test]
fn demo_matches_r_survey_for_every_taylor_weighting() {
    let dir = scratch("demo-oracle");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("suppress = ", "suppress = false")],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("demo run");
    let (rows, meta) = read_estimates(&dir.join("out/estimates.parquet"));
    assert_eq!(
        meta.get("cvsurvey.questionnaire.id").map(String::as_str),
        Some("cvs-core")
    );
    let mut refs = references(&root().join("fixtures/demo/reference.csv"));
    assert_eq!(apply_reference_fixes(&mut refs), 54);
    let mut checked = 0;
    let mut worst: std::collections::BTreeMap<String, f64> = Default::default();
    for r in refs.iter().filter(|r| r.design == "taylor") {
        let indicator = r
            .variable
            .split_once('_')
            .map(|(_, rest)| rest)
            .expect("I<n>_ prefix");
        let ours = lookup(&rows, r, indicator, &r.weighting)
            .unwrap_or_else(|| panic!("no row for {} ({indicator})", r.case));
        let d = compare(ours, r, 1e-6);
        let w = worst.entry(r.weighting.clone()).or_default();
        *w = w.max(d);
        checked += 1;
    }
    assert_eq!(
        checked, 2100,
        "every Taylor reference row (5 weightings) is checked"
    );
    eprintln!(
        "demo: {checked} reference rows; largest relative difference by weighting: {worst:?}"
    );
}

/// The api cases: each design is a config in `fixtures/api/`.
fn api_case(config: &str, design: &str, domain_df_full: bool) {
    api_case_with(config, design, domain_df_full, &[]);
}

/// [`api_case`] with more config lines replaced (line prefix → new line).
fn api_case_with(config: &str, design: &str, domain_df_full: bool, more: &[(&str, &str)]) {
    let dir = scratch(&format!("api-{config}-{}", more.len()));
    let mut extra: Vec<(&str, &str)> = if domain_df_full {
        vec![("domain_df", "domain_df = \"full\"")]
    } else {
        vec![]
    };
    extra.extend_from_slice(more);
    let config = relocated_config(&root().join("fixtures/api").join(config), &dir, &extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("api run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let refs = references(&root().join("fixtures/api/reference.csv"));
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for r in refs.iter().filter(|r| r.design == design) {
        if r.ci_method == "likelihood" {
            continue; // svyciprop(method = "likelihood") is not offered: see docs/methods.md
        }
        let indicator = match (r.estimator.as_str(), r.variable.as_str()) {
            ("svymean" | "svyby_svymean", "api00") => "api00",
            ("svytotal" | "svytotal_narm", "enroll") => "enroll_total",
            ("svymean_narm", "enroll") => "enroll_mean",
            ("svyciprop", "sch.wide==Yes") => "sch_wide",
            ("svyratio", "api.stu/enroll") => "api_stu_per_enroll",
            other => panic!("unmapped api reference {other:?}"),
        };
        let weighting = if r.weighting == "implied_by_fpc" {
            "pw"
        } else {
            r.weighting.as_str()
        };
        let ours = lookup(&rows, r, indicator, weighting)
            .unwrap_or_else(|| panic!("no row for {} ({indicator}, {weighting})", r.case));
        worst = worst.max(compare(ours, r, 1e-6));
        checked += 1;
    }
    assert!(checked > 0, "no api reference rows for {design}");
    eprintln!("{design}: {checked} reference rows, largest relative difference {worst:e}");
}

#[test]
fn api_stratified_with_fpc() {
    api_case("strat_fpc.toml", "strat_fpc", true);
}

#[test]
fn api_stratified_without_fpc() {
    api_case("strat_nofpc.toml", "strat_nofpc", true);
}

#[test]
fn api_one_stage_cluster_with_fpc() {
    api_case("clus1_fpc.toml", "clus1_fpc", true);
}

#[test]
fn api_two_stage_cluster_with_fpc() {
    api_case("clus2_fpc2stage.toml", "clus2_fpc2stage", true);
}

#[test]
fn design_weights_follow_from_the_fpc_when_no_weight_column_is_named() {
    // R: svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2) without weights
    // (the references' `implied_by_fpc` rows), and the stratified design with N_h/n_h.
    api_case_with(
        "clus2_fpc2stage.toml",
        "clus2_fpc2stage",
        true,
        &[("weight = ", "")],
    );
    api_case_with("strat_fpc.toml", "strat_fpc", true, &[("weight = ", "")]);
}
