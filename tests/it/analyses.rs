//! Distributions (one variable's codes, and multiple response), survey quantiles, crossed
//! domains and Rao-Scott tests of association on R's api data, against
//! `fixtures/api/make_analyses.R` (R 4.2.2, survey 4.5): `analyses_reference.csv` and
//! `analyses_tests_reference.csv`. Each config of `fixtures/api/` runs once with the questionnaire
//! `fixtures/api/analyses.toml`, the `[estimation]` block [`ESTIMATION`] and the tests
//! [`TESTS`]; then identities that hold whatever the data, and bad inputs that must stop a run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{cvsurvey_run, relocated_config, root, scratch};

/// The configs of `fixtures/api/` with references (the designs of `make_analyses.R`).
const CONFIGS: [&str; 4] = [
    "strat_fpc",
    "clus1_fpc",
    "clus2_fpc2stage",
    "strat_nofpc_jkn",
];

/// Replaces the config's `indicators = ` line; its `domains = `, `ci = ` and `domain_df = `
/// lines are removed. `domain_df = "subset"`: R's svyby, svyciprop and svyquantile use `degf()`
/// of each domain subset.
const ESTIMATION: &str = r#"indicators = ["api00", "awards_share", "stype_dist", "sch_wide_dist", "stype_dist_large", "school_flags", "api00_q_math", "api00_q_hf7", "enroll_q_math", "enroll_q_hf7", "api00_q_math_rep", "api00_q_hf7_rep"]
domains = ["stype", "yr.rnd", ["stype", "sch.wide"]]
ci = ["logit", "beta", "asin", "mean", "xlogit", "normal", "wilson"]
domain_df = "subset""#;

/// Appended to every config: R `svychisq(~sch.wide + stype, des)` and on
/// `subset(des, enroll > 500)`.
const TESTS: &str = r#"
[[test]]
name = "sch_wide_by_stype"
rows = "sch.wide"
cols = "stype"

[[test]]
name = "sch_wide_by_stype_large"
rows = "sch.wide"
cols = "stype"
universe = "enroll > 500"
"#;

/// Single-variable distributions of `analyses.toml` and their declared codes.
const DISTRIBUTIONS: [(&str, &[&str]); 3] = [
    ("stype_dist", &["E", "H", "M"]),
    ("sch_wide_dist", &["Yes", "No"]),
    ("stype_dist_large", &["E", "H", "M"]),
];

/// The multiple-response indicator and its items.
const MULTIPLE: (&str, [&str; 5]) = (
    "school_flags",
    ["sch.wide", "comp.imp", "both", "awards", "yr.rnd"],
);

/// Quantile indicators (all with `probs = [0.25, 0.5, 0.75]`).
const QUANTILES: [&str; 6] = [
    "api00_q_math",
    "api00_q_hf7",
    "enroll_q_math",
    "enroll_q_hf7",
    "api00_q_math_rep",
    "api00_q_hf7_rep",
];

/// Relative tolerance against R.
const TOL: f64 = 1e-8;

/// A CSV file read as text, cells by column name.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let mut reader =
            csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let header = reader
            .headers()
            .expect("header")
            .iter()
            .map(String::from)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                r.expect("record")
                    .iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        Table { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// Index of the rows by the cells of `key`; a repeated key is an error.
    fn index(&self, key: &[&str], what: &str) -> HashMap<Vec<String>, usize> {
        let cols: Vec<usize> = key.iter().map(|k| self.col(k)).collect();
        let mut out = HashMap::new();
        for (i, r) in self.rows.iter().enumerate() {
            let k: Vec<String> = cols.iter().map(|&c| r[c].clone()).collect();
            if let Some(j) = out.insert(k.clone(), i) {
                panic!(
                    "{what}: rows {} and {} have the same key {k:?}",
                    j + 2,
                    i + 2
                );
            }
        }
        out
    }
}

/// One run's outputs.
struct Outputs {
    dir: PathBuf,
    estimates: Table,
    tests: Table,
}

/// `config` (a file of `fixtures/api/`) copied into `dir` with the analyses questionnaire,
/// `estimation` in place of its `indicators = ` line and `tail` appended.
fn analyses_config(
    config: &str,
    dir: &Path,
    estimation: &str,
    questionnaire: &Path,
    tail: &str,
) -> PathBuf {
    let q = format!("questionnaire = \"{}\"", questionnaire.display());
    let path = relocated_config(
        &root().join(format!("fixtures/api/{config}.toml")),
        dir,
        &[
            ("questionnaire = ", &q),
            ("indicators = ", estimation),
            ("domains = ", ""),
            ("ci = ", ""),
            ("domain_df = ", ""),
        ],
    );
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(tail);
    std::fs::write(&path, text).expect("write config");
    path
}

fn analyses_toml() -> PathBuf {
    root().join("fixtures/api/analyses.toml")
}

/// The run of `config` (once per test binary).
fn outputs(config: &str) -> &'static Outputs {
    static RUNS: [OnceLock<Outputs>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let k = CONFIGS
        .iter()
        .position(|c| *c == config)
        .expect("known config");
    RUNS[k].get_or_init(|| {
        let dir = scratch(&format!("analyses-{config}"));
        let path = analyses_config(config, &dir, ESTIMATION, &analyses_toml(), TESTS);
        cvsurvey::pipeline::run(&path, Default::default())
            .unwrap_or_else(|e| panic!("{config}: run failed: {e}"));
        let out = dir.join("out");
        Outputs {
            estimates: Table::read(&out.join("estimates.csv")),
            tests: Table::read(&out.join("tests.csv")),
            dir: out,
        }
    })
}

fn parse(cell: &str) -> Option<f64> {
    (!cell.is_empty()).then(|| {
        cell.parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number: {cell:?}"))
    })
}

/// `ours` against R's `want`: relative [`TOL`] plus an absolute `floor` (for values at 0: an
/// estimate of 0, a bound of a zero SE); `None` when they agree, else the complaint.
fn disagreement(ours: Option<f64>, want: f64, floor: f64) -> Option<String> {
    let Some(got) = ours else {
        return Some(format!("no value, R has {want}"));
    };
    let diff = (got - want).abs();
    if diff <= TOL * want.abs() + floor {
        None
    } else {
        Some(format!(
            "cvsurvey {got}, R {want} (rel {:.2e})",
            diff / want.abs().max(1e-300)
        ))
    }
}

/// Every reference row of `config` has a row in estimates.csv (matched by indicator, weighting,
/// variance, domain, category and CI method) with the same estimate, SE, CI and df.
/// Empty reference cells (R gives no number: see the `note` column) are not compared. An SE that
/// R computes as 0 or rounding noise (< 1e-9 of the estimate) must be as small in ours.
fn estimates_match_r(config: &str) {
    let out = outputs(config);
    let est = &out.estimates;
    assert_eq!(
        est.col("category"),
        est.col("domain_value") + 1,
        "estimates.csv: category comes right after domain_value: {:?}",
        est.header
    );
    let key = [
        "indicator",
        "weighting",
        "variance",
        "domain_var",
        "domain_value",
        "category",
        "ci_method",
    ];
    let ours = est.index(&key, "estimates.csv");
    let reference = Table::read(&root().join("fixtures/api/analyses_reference.csv"));
    let rkey: Vec<usize> = key.iter().map(|k| reference.col(k)).collect();
    let rconfig = reference.col("config");
    let mut failures = Vec::new();
    let mut checked = 0;
    for r in reference.rows.iter().filter(|r| r[rconfig] == config) {
        checked += 1;
        let k: Vec<String> = rkey.iter().map(|&c| r[c].clone()).collect();
        let what = format!("{config} {}", k.join("/"));
        let Some(&row) = ours.get(&k) else {
            failures.push(format!("{what}: no row in estimates.csv"));
            continue;
        };
        let row = &est.rows[row];
        let want = |c: &str| parse(&r[reference.col(c)]);
        let got = |c: &str| parse(&row[est.col(c)]);
        let r_est = want("estimate").expect("R estimate");
        for c in ["estimate", "se", "ci_low", "ci_high"] {
            let Some(w) = want(c) else { continue };
            let complaint = if c == "se" && w < 1e-9 * r_est.abs() {
                match got("se") {
                    Some(s) if s.abs() <= 1e-9 * r_est.abs().max(1e-300) => None,
                    s => Some(format!("cvsurvey {s:?}, R {w} (0 up to rounding)")),
                }
            } else {
                disagreement(got(c), w, 1e-13)
            };
            if let Some(complaint) = complaint {
                failures.push(format!("{what} {c}: {complaint}"));
            }
        }
        if let Some(w) = want("df")
            && got("df") != Some(w)
        {
            failures.push(format!("{what} df: cvsurvey {:?}, R {w}", got("df")));
        }
    }
    assert!(checked > 500, "{config}: only {checked} reference rows");
    assert!(
        failures.is_empty(),
        "{config}: {} differences from R over {checked} reference rows, e.g.\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{config}: {checked} reference rows agree with R");
}

#[test]
fn stratified_design_with_calibrations_matches_r() {
    estimates_match_r("strat_fpc");
}

#[test]
fn one_stage_cluster_design_matches_r() {
    estimates_match_r("clus1_fpc");
}

#[test]
fn two_stage_cluster_design_matches_r() {
    estimates_match_r("clus2_fpc2stage");
}

#[test]
fn jkn_replicates_with_recalibration_match_r() {
    estimates_match_r("strat_nofpc_jkn");
}

/// tests.csv (and tests.parquet) against R's `svychisq(~sch.wide + stype, des, statistic = "F")`
/// and `"Chisq"`, with and without the universe, for every design and scheme.
#[test]
fn tests_of_association_match_r() {
    let reference = Table::read(&root().join("fixtures/api/analyses_tests_reference.csv"));
    let key = ["test", "weighting", "variance", "statistic"];
    let rkey: Vec<usize> = key.iter().map(|k| reference.col(k)).collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for config in CONFIGS {
        let out = outputs(config);
        assert!(
            out.dir.join("tests.parquet").is_file(),
            "{config}: no tests.parquet"
        );
        let t = &out.tests;
        assert_eq!(
            t.header,
            [
                "test",
                "weighting",
                "variance",
                "rows",
                "cols",
                "statistic",
                "value",
                "ndf",
                "ddf",
                "p_value"
            ],
            "{config}: tests.csv columns"
        );
        let ours = t.index(&key, "tests.csv");
        for r in reference
            .rows
            .iter()
            .filter(|r| r[reference.col("config")] == config)
        {
            checked += 1;
            let k: Vec<String> = rkey.iter().map(|&c| r[c].clone()).collect();
            let what = format!("{config} {}", k.join("/"));
            let Some(&row) = ours.get(&k) else {
                failures.push(format!("{what}: no row in tests.csv"));
                continue;
            };
            let row = &t.rows[row];
            for c in ["rows", "cols"] {
                if row[t.col(c)] != r[reference.col(c)] {
                    failures.push(format!("{what} {c}: {:?}", row[t.col(c)]));
                }
            }
            for c in ["value", "ndf", "ddf", "p_value"] {
                let got = parse(&row[t.col(c)]);
                match parse(&r[reference.col(c)]) {
                    Some(w) => {
                        if let Some(complaint) = disagreement(got, w, 0.0) {
                            failures.push(format!("{what} {c}: {complaint}"));
                        }
                    }
                    None => {
                        if got.is_some() {
                            failures.push(format!("{what} {c}: {got:?}, R has none"));
                        }
                    }
                }
            }
        }
    }
    // 8 design x scheme combinations x 2 tests x 2 statistics.
    assert_eq!(checked, 32, "reference rows");
    assert!(
        failures.is_empty(),
        "{} test rows differ from R:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Groups of estimates.csv rows of the `indicators` by indicator, weighting, variance, domain
/// and CI method: category → estimate.
fn groups(out: &Outputs, indicators: &[&str]) -> BTreeMap<Vec<String>, Vec<(String, Option<f64>)>> {
    let est = &out.estimates;
    let cols: Vec<usize> = [
        "indicator",
        "weighting",
        "variance",
        "domain_var",
        "domain_value",
        "ci_method",
    ]
    .iter()
    .map(|c| est.col(c))
    .collect();
    let (cat, value) = (est.col("category"), est.col("estimate"));
    let ind = est.col("indicator");
    let mut out: BTreeMap<Vec<String>, Vec<(String, Option<f64>)>> = BTreeMap::new();
    for r in est
        .rows
        .iter()
        .filter(|r| indicators.contains(&r[ind].as_str()))
    {
        out.entry(cols.iter().map(|&c| r[c].clone()).collect())
            .or_default()
            .push((r[cat].clone(), parse(&r[value])));
    }
    out
}

/// The categories of a distribution are its declared codes, all of them (an absent one is a row
/// with estimate 0), and their proportions sum to 1.
#[test]
fn distribution_categories_sum_to_one() {
    for config in CONFIGS {
        let out = outputs(config);
        for (id, codes) in DISTRIBUTIONS {
            let g = groups(out, &[id]);
            assert!(!g.is_empty(), "{config}: no rows of {id}");
            for (key, cats) in g {
                let mut names: Vec<&str> = cats.iter().map(|(c, _)| c.as_str()).collect();
                names.sort_unstable();
                let mut want = codes.to_vec();
                want.sort_unstable();
                assert_eq!(names, want, "{config} {key:?}: categories");
                let sum: f64 = cats
                    .iter()
                    .map(|(c, e)| e.unwrap_or_else(|| panic!("{config} {key:?} {c}: no estimate")))
                    .sum();
                assert!(
                    (sum - 1.0).abs() <= 1e-12,
                    "{config} {key:?}: categories sum to {sum}"
                );
            }
        }
    }
}

/// Quantiles at 0.25, 0.5, 0.75 (written shortest) are non-decreasing in p.
#[test]
fn quantiles_are_non_decreasing_in_p() {
    for config in CONFIGS {
        let g = groups(outputs(config), &QUANTILES);
        assert!(!g.is_empty(), "{config}: no quantile rows");
        for (key, mut cats) in g {
            cats.sort_by(|a, b| {
                parse(&a.0)
                    .expect("probability")
                    .total_cmp(&parse(&b.0).expect("probability"))
            });
            let names: Vec<&str> = cats.iter().map(|(c, _)| c.as_str()).collect();
            assert_eq!(names, ["0.25", "0.5", "0.75"], "{config} {key:?}");
            let q: Vec<f64> = cats
                .iter()
                .map(|(c, e)| e.unwrap_or_else(|| panic!("{config} {key:?} {c}: no estimate")))
                .collect();
            assert!(
                q.windows(2).all(|w| w[0] <= w[1]),
                "{config} {key:?}: quantiles {q:?}"
            );
        }
    }
}

/// Multiple response: one row per item, each share in [0, 1] (up to rounding, 1e-12); the shares
/// are not normalised (overall they sum to more than 1 on the api data).
#[test]
fn multiple_response_shares_lie_in_the_unit_interval() {
    let (id, items) = MULTIPLE;
    for config in CONFIGS {
        let g = groups(outputs(config), &[id]);
        assert!(!g.is_empty(), "{config}: no rows of {id}");
        for (key, cats) in g {
            let mut names: Vec<&str> = cats.iter().map(|(c, _)| c.as_str()).collect();
            names.sort_unstable();
            let mut want = items.to_vec();
            want.sort_unstable();
            assert_eq!(names, want, "{config} {key:?}: items");
            let mut sum = 0.0;
            for (c, e) in &cats {
                let e = e.unwrap_or_else(|| panic!("{config} {key:?} {c}: no estimate"));
                assert!(
                    (-1e-12..=1.0 + 1e-12).contains(&e),
                    "{config} {key:?} {c}: share {e}"
                );
                sum += e;
            }
            if key[3] == "_T" {
                assert!(sum > 1.0, "{config} {key:?}: shares sum to {sum}");
            }
        }
    }
}

/// Every test's p-value lies in [0, 1] and its statistic is not negative.
#[test]
fn test_p_values_lie_in_the_unit_interval() {
    for config in CONFIGS {
        let t = &outputs(config).tests;
        // Two tests x two statistics per scheme and variance method.
        assert!(
            !t.rows.is_empty() && t.rows.len().is_multiple_of(4),
            "{config}: {} rows in tests.csv",
            t.rows.len()
        );
        for r in &t.rows {
            let p = parse(&r[t.col("p_value")]).unwrap_or_else(|| panic!("{config} {r:?}: p"));
            assert!((0.0..=1.0).contains(&p), "{config} {r:?}: p-value {p}");
            let v = parse(&r[t.col("value")]).unwrap_or_else(|| panic!("{config} {r:?}: value"));
            assert!(v >= 0.0, "{config} {r:?}: statistic {v}");
        }
    }
}

/// No H or M school of apiclus1 is year-round, and no H school of apiclus2: their rows in that
/// domain are there, with estimate 0 (and E 1 in apiclus1).
#[test]
fn a_category_absent_from_a_domain_is_reported_as_zero() {
    for (config, absent, present) in [
        ("clus1_fpc", &["H", "M"][..], "E"),
        ("clus2_fpc2stage", &["H"][..], ""),
    ] {
        let est = &outputs(config).estimates;
        let cell = |r: &Vec<String>, c: &str| r[est.col(c)].clone();
        let rows: Vec<&Vec<String>> = est
            .rows
            .iter()
            .filter(|r| {
                cell(r, "indicator") == "stype_dist"
                    && cell(r, "weighting") == "pw"
                    && cell(r, "domain_var") == "yr.rnd"
                    && cell(r, "domain_value") == "Yes"
            })
            .collect();
        for code in absent {
            let of: Vec<_> = rows
                .iter()
                .filter(|r| cell(r, "category") == *code)
                .collect();
            assert!(
                !of.is_empty(),
                "{config}: no stype_dist row for {code} in yr.rnd = Yes"
            );
            for r in of {
                assert_eq!(
                    parse(&cell(r, "estimate")),
                    Some(0.0),
                    "{config}: {code} in yr.rnd = Yes: {r:?}"
                );
            }
        }
        if !present.is_empty() {
            for r in rows.iter().filter(|r| cell(r, "category") == present) {
                assert_eq!(parse(&cell(r, "estimate")), Some(1.0), "{config}: {r:?}");
            }
        }
    }
}

/// The strat_fpc config with `analyses.toml` plus `indicator` (TOML appended to the
/// questionnaire), `estimation` and `tail`, run by the binary: it must fail with a message
/// containing every one of `expected` (case-insensitive).
fn must_fail(name: &str, indicator: &str, estimation: &str, tail: &str, expected: &[&str]) {
    let dir = scratch(&format!("analyses-bad-{name}"));
    let questionnaire = dir.join("analyses_bad.toml");
    let mut q = std::fs::read_to_string(analyses_toml()).expect("questionnaire");
    q.push_str(indicator);
    std::fs::write(&questionnaire, q).expect("write questionnaire");
    let config = analyses_config("strat_fpc", &dir, estimation, &questionnaire, tail);
    let (code, message) = cvsurvey_run(&config);
    assert_ne!(code, 0, "{name}: the run must fail: {message}");
    let lower = message.to_lowercase();
    for e in expected {
        assert!(
            lower.contains(&e.to_lowercase()),
            "{name}: the message does not name {e:?}: {message}"
        );
    }
}

/// A quantile indicator with `probs`.
fn quantile_with(probs: &str) -> String {
    format!(
        "\n[[indicators]]\nid = \"bad_probs\"\nkind = \"quantile\"\nvalue = \"api00\"\nprobs = {probs}\n"
    )
}

const BAD_PROBS_ESTIMATION: &str = r#"indicators = ["bad_probs"]"#;

#[test]
fn unsorted_probs_are_an_error() {
    must_fail(
        "probs-unsorted",
        &quantile_with("[0.5, 0.25]"),
        BAD_PROBS_ESTIMATION,
        "",
        &["bad_probs", "probs"],
    );
}

#[test]
fn probs_outside_the_open_unit_interval_are_an_error() {
    must_fail(
        "probs-zero",
        &quantile_with("[0, 0.5]"),
        BAD_PROBS_ESTIMATION,
        "",
        &["bad_probs", "probs"],
    );
    must_fail(
        "probs-above-one",
        &quantile_with("[0.5, 1.2]"),
        BAD_PROBS_ESTIMATION,
        "",
        &["bad_probs", "probs", "1.2"],
    );
}

#[test]
fn a_distribution_over_a_variable_without_codes_is_an_error() {
    must_fail(
        "distribution-numeric",
        "\n[[indicators]]\nid = \"api00_dist\"\nkind = \"distribution\"\nvalue = \"api00\"\n",
        r#"indicators = ["api00_dist"]"#,
        "",
        &["api00_dist", "codes"],
    );
}

#[test]
fn a_cross_of_a_variable_with_itself_is_an_error() {
    must_fail(
        "cross-itself",
        "",
        "indicators = [\"api00\"]\ndomains = [\"stype\", [\"stype\", \"stype\"]]",
        "",
        &["domains", "stype"],
    );
}

/// Within the universe every school is elementary: stype has one category, no test.
#[test]
fn a_test_over_a_variable_with_one_category_is_an_error() {
    must_fail(
        "test-one-category",
        "",
        "indicators = [\"api00\"]",
        "\n[[test]]\nname = \"one_type\"\nrows = \"stype\"\ncols = \"sch.wide\"\nuniverse = 'stype == \"E\"'\n",
        &["one_type", "stype"],
    );
}

/// The demo's quantiles of the bribe amount, its distributions, the sex × age group cross and
/// the sex × feeling-safe test under all five Taylor weighting schemes, against
/// `fixtures/demo/analyses_reference.csv` (made by `fixtures/demo/make_analyses.R`).
#[test]
fn demo_analyses_match_r() {
    let dir = scratch("analyses-demo");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("suppress = ", "suppress = false")],
    );
    let mut text = std::fs::read_to_string(&config).expect("config");
    text = text.replace(
        "[reliability]",
        "[[test]]\nname = \"sex_by_safe_dark_universe\"\nrows = \"sex\"\ncols = \"safe_dark\"\nuniverse = \"safe_dark in [1, 2, 3, 4, 5]\"\n\n[reliability]",
    );
    std::fs::write(&config, text).expect("write config");
    cvsurvey::pipeline::run(&config, Default::default()).expect("demo run");
    let out = dir.join("out");
    let estimates = Table::read(&out.join("estimates.csv"));
    let tests = Table::read(&out.join("tests.csv"));
    let ours = estimates.index(
        &[
            "indicator",
            "weighting",
            "variance",
            "domain_var",
            "domain_value",
            "category",
            "ci_method",
        ],
        "demo estimates.csv",
    );
    let reference = Table::read(&root().join("fixtures/demo/analyses_reference.csv"));
    let col = |name: &str| reference.col(name);
    let mut problems = Vec::new();
    let (mut estimates_checked, mut tests_checked) = (0, 0);
    for r in &reference.rows {
        let indicator = r[col("indicator")].as_str();
        let (domain_var, domain_value) = match r[col("domain_var")].as_str() {
            "overall" => ("_T".to_string(), "_T".to_string()),
            var => (var.to_string(), r[col("domain_value")].clone()),
        };
        if indicator.starts_with("sex_by_safe_dark") {
            // Test rows: (statistic name, what) with what = statistic, ndf, ddf, p_value.
            let statistic = match r[col("ci_method")].as_str() {
                "F" => "rao_scott_f",
                _ => "rao_scott_chisq",
            };
            let what = r[col("category")].as_str();
            let column = match what {
                "statistic" => "value",
                "ndf" | "ddf" | "p_value" => what,
                _ => continue,
            };
            let Some(row) = tests.rows.iter().find(|t| {
                t[tests.col("test")] == indicator
                    && t[tests.col("weighting")] == r[col("weighting")]
                    && t[tests.col("statistic")] == statistic
            }) else {
                problems.push(format!("no tests.csv row for {indicator} {statistic}"));
                continue;
            };
            let want = parse(&r[col("estimate")]).expect("reference value");
            if let Some(p) = disagreement(parse(&row[tests.col(column)]), want, 0.0) {
                problems.push(format!("{indicator} {} {statistic} {column}: {p}", r[0]));
            }
            tests_checked += 1;
            continue;
        }
        if indicator.ends_with("_hf7") {
            continue;
        }
        let category = if indicator == "bribery_prevalence" {
            String::new()
        } else {
            r[col("category")].clone()
        };
        let key = vec![
            indicator.to_string(),
            r[col("weighting")].clone(),
            r[col("variance")].clone(),
            domain_var,
            domain_value,
            category,
            r[col("ci_method")].clone(),
        ];
        let Some(&i) = ours.get(&key) else {
            problems.push(format!("no estimates.csv row for {key:?}"));
            continue;
        };
        for column in ["estimate", "se", "ci_low", "ci_high", "df"] {
            let Some(want) = parse(&r[col(column)]) else {
                continue;
            };
            let got = parse(&estimates.rows[i][estimates.col(column)]);
            if let Some(p) = disagreement(got, want, 1e-13) {
                problems.push(format!("{key:?} {column}: {p}"));
            }
        }
        estimates_checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} disagreements with R, e.g.\n{}",
        problems.len(),
        problems[..problems.len().min(40)].join("\n")
    );
    assert!(
        estimates_checked >= 500,
        "{estimates_checked} estimate rows checked"
    );
    assert_eq!(
        tests_checked, 60,
        "F and Chisq of both tests under five schemes"
    );
}
