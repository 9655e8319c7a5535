//! The SDG 16 questionnaire (`questionnaires/sdg16-survey.toml`) on its demo
//! (`fixtures/sdg16/`): every estimate, SE, interval and df against the R references of
//! `fixtures/sdg16/make_reference.R` (R 4.2.2, survey 4.5), no quarantined row, and an
//! `sdmx.csv` whose breakdowns come from the questionnaire alone (the config has no
//! `[sdmx.dimensions]`), every code in the SDG code-list extract. Also the UNODC standard tables
//! (`questionnaires/unodc-tables.toml`, `fixtures/unodc/`) against R, and the cvs-core demo
//! sending its breakdowns from the questionnaire alone.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{read_csv, rel_diff, relocated_config, root, scratch};

/// Relative tolerance against R.
const TOL: f64 = 1e-8;

/// The demo run with suppression off (R gives every cell a value), into a scratch folder.
fn run_demo(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let config = relocated_config(
        &root().join("fixtures/sdg16/pipeline.toml"),
        &dir,
        &[("suppress = ", "suppress = false")],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("sdg16 demo run");
    dir.join("out")
}

type Key = (String, String, String, String, String);

fn key(r: &BTreeMap<String, String>) -> Key {
    (
        r["weighting"].clone(),
        r["indicator"].clone(),
        r["domain_var"].clone(),
        r["domain_value"].clone(),
        r["category"].clone(),
    )
}

/// Every row of an R reference against the pipeline's row of the same key: estimate, SE, interval
/// and df to [`TOL`]. R's `svyciprop` has no interval at an estimate of 0 or 1 (NA); there the
/// pipeline's interval must be the estimate itself.
fn assert_matches_r(
    reference: &[BTreeMap<String, String>],
    estimates: &BTreeMap<Key, BTreeMap<String, String>>,
) {
    let mut worst = (0.0_f64, String::new());
    for r in reference {
        let k = key(r);
        let e = estimates
            .get(&k)
            .unwrap_or_else(|| panic!("no estimate for {k:?}"));
        for col in ["estimate", "se", "ci_low", "ci_high", "df"] {
            let got: f64 = e[col]
                .parse()
                .unwrap_or_else(|_| panic!("{k:?} {col}: {:?}", e[col]));
            let want: f64 = if r[col] == "NA" {
                assert!(col.starts_with("ci_"), "{k:?}: R gives no {col}");
                r["estimate"].parse().expect("estimate")
            } else {
                r[col].parse().unwrap_or_else(|_| panic!("{k:?} {col}"))
            };
            let d = rel_diff(got, want);
            if d > worst.0 {
                worst = (d, format!("{k:?} {col}: {got} vs R {want}"));
            }
        }
    }
    assert!(worst.0 < TOL, "largest difference from R: {}", worst.1);
}

#[test]
fn sdg16_demo_matches_r_and_sends_questionnaire_breakdowns() {
    let out = run_demo("sdg16-demo");

    // Every sampled person is used: nothing quarantined.
    let quarantine = std::fs::read_to_string(out.join("quarantine.csv")).expect("quarantine");
    assert_eq!(quarantine.lines().count(), 1, "{quarantine}");

    // Estimates against R, both ways: the same cells, equal to 1e-8.
    let reference = read_csv(&root().join("fixtures/sdg16/reference.csv"));
    let estimates: BTreeMap<Key, BTreeMap<String, String>> = read_csv(&out.join("estimates.csv"))
        .into_iter()
        .map(|r| (key(&r), r))
        .collect();
    let referenced: BTreeSet<Key> = reference.iter().map(key).collect();
    let estimated: BTreeSet<Key> = estimates.keys().cloned().collect();
    assert_eq!(
        estimated.difference(&referenced).collect::<Vec<_>>(),
        Vec::<&Key>::new(),
        "cells without an R reference"
    );
    assert_eq!(reference.len(), 928, "R reference rows");
    assert_matches_r(&reference, &estimates);

    // sdmx.csv: breakdowns from the questionnaire's `sdmx` mappings, codes in the extract.
    let sdmx = read_csv(&out.join("sdmx.csv"));
    let lists: BTreeSet<(String, String)> = read_csv(&root().join("fixtures/sdmx/codelists.csv"))
        .into_iter()
        .map(|r| (r["codelist"].clone(), r["code"].clone()))
        .collect();
    let columns = [
        "SERIES",
        "SEX",
        "AGE",
        "URBANISATION",
        "INCOME_WEALTH_QUANTILE",
        "DISABILITY_STATUS",
        "OBS_STATUS",
        "UNIT_MEASURE",
        "NATURE",
        "FREQ",
        "REPORTING_TYPE",
    ];
    for row in &sdmx {
        for c in columns {
            assert!(
                lists.contains(&(c.to_string(), row[c].clone())),
                "{c} = {} is not in fixtures/sdmx/codelists.csv",
                row[c]
            );
        }
    }
    let codes_of = |c: &str| -> BTreeSet<&str> { sdmx.iter().map(|r| r[c].as_str()).collect() };
    assert_eq!(codes_of("SEX"), BTreeSet::from(["_T", "M", "F"]));
    assert_eq!(
        codes_of("INCOME_WEALTH_QUANTILE"),
        BTreeSet::from(["_T", "Q1", "Q2", "Q3", "Q4", "Q5"])
    );
    assert_eq!(
        codes_of("DISABILITY_STATUS"),
        BTreeSet::from(["_T", "PD", "NPD"])
    );
    assert_eq!(codes_of("URBANISATION"), BTreeSet::from(["_T", "U", "R"]));
    assert_eq!(codes_of("AGE").len(), 5);
    // One observation per series and cell: the total and 2 + 4 + 2 + 2 + 5 domain values.
    let series = codes_of("SERIES");
    assert_eq!(series.len(), 15, "{series:?}");
    assert_eq!(sdmx.len(), series.len() * 16);
    // The observation of the whole population is the raked estimate in percent.
    let total = sdmx
        .iter()
        .find(|r| r["SERIES"] == "IU_COR_BRIB" && columns[1..6].iter().all(|c| r[*c] == "_T"))
        .expect("IU_COR_BRIB total");
    let raked = &estimates[&(
        "raked".to_string(),
        "bribery_paid_or_asked".to_string(),
        "_T".to_string(),
        "_T".to_string(),
        String::new(),
    )];
    let pct: f64 = total["OBS_VALUE"].parse().expect("OBS_VALUE");
    let est: f64 = raked["estimate"].parse().expect("estimate");
    assert!((pct - est * 100.0).abs() < 5e-7, "{pct} vs {est}");
}

/// `questionnaires/unodc-tables.toml` (cvs-core plus the UNODC standard tables) on its demo
/// (`fixtures/unodc/`): nothing quarantined, every indicator estimated, the new tables equal to
/// the R references of `fixtures/unodc/make_reference.R` (R 4.2.2, survey 4.5), the shares of each
/// single-choice distribution add up to 1, and cvs-core's indicators, whose definitions the file
/// repeats, give exactly what `cvs-core.toml` gives on the same file (its extra columns are
/// ignored).
#[test]
fn unodc_tables_run_and_keep_cvs_core_indicators() {
    let dir = scratch("unodc-tables");
    let data = root().join("fixtures/unodc/data.csv");
    let margins = root().join("fixtures/unodc/margins.csv");
    let run = |questionnaire: &str, name: &str| {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).expect("dir");
        let config = sub.join("pipeline.toml");
        std::fs::write(
            &config,
            format!(
                r#"questionnaire = "{}"
[data]
path = "{}"
id = "resp_id"
response = "responded"
[design]
strata = "stratum"
psu = "psu"
weight = "design_weight"
nest = true
[[weighting]]
name = "raked"
nonresponse = {{ classes = ["stratum"] }}
calibration = {{ method = "raking", margins = "{}" }}
[variance]
method = "taylor"
[estimation]
indicators = ["*"]
domains = ["sex", "urban"]
ci = ["logit"]
[output]
dir = "{}"
formats = ["parquet", "csv"]
"#,
                root().join(questionnaire).display(),
                data.display(),
                margins.display(),
                sub.join("out").display()
            ),
        )
        .expect("config");
        cvsurvey::pipeline::run(&config, Default::default()).expect("run");
        let quarantine =
            std::fs::read_to_string(sub.join("out/quarantine.csv")).expect("quarantine");
        assert_eq!(quarantine.lines().count(), 1, "{name}: {quarantine}");
        read_csv(&sub.join("out/estimates.csv"))
    };
    let tables = run("questionnaires/unodc-tables.toml", "tables");
    let core = run("questionnaires/cvs-core.toml", "core");

    let q = cvsurvey::questionnaire::Questionnaire::load(
        &root().join("questionnaires/unodc-tables.toml"),
    )
    .expect("unodc-tables");
    let estimated: BTreeSet<&str> = tables.iter().map(|r| r["indicator"].as_str()).collect();
    for i in &q.indicators {
        assert!(estimated.contains(i.id.as_str()), "{} not estimated", i.id);
    }
    let single_choice: Vec<_> = q
        .indicators
        .iter()
        .filter(|i| i.kind == cvsurvey::questionnaire::IndicatorKind::Distribution)
        // Multiple-response sets may add to more than 1.
        .filter(|i| {
            i.categories
                .iter()
                .all(|c| c.category.as_ref().is_some_and(|c| !c.mention))
        })
        .collect();
    // safe_dark, who initiated, form, and the reasons for not reporting four crimes.
    assert_eq!(single_choice.len(), 7);
    for i in single_choice {
        for dv in ["_T", "1", "2"] {
            let domain_var = if dv == "_T" { "_T" } else { "sex" };
            let sum: f64 = tables
                .iter()
                .filter(|r| r["indicator"] == i.id && r["domain_value"] == dv)
                .filter(|r| r["domain_var"] == domain_var)
                .map(|r| r["estimate"].parse::<f64>().expect("estimate"))
                .sum();
            assert!(
                (sum - 1.0).abs() < 1e-12,
                "{} {dv}: shares sum to {sum}",
                i.id
            );
        }
    }
    let core_ids: BTreeSet<&str> = core.iter().map(|r| r["indicator"].as_str()).collect();

    // The new tables against R: every indicator that cvs-core does not have.
    let reference = read_csv(&root().join("fixtures/unodc/reference.csv"));
    let referenced: BTreeSet<&str> = reference.iter().map(|r| r["indicator"].as_str()).collect();
    let new: BTreeSet<&str> = estimated.difference(&core_ids).copied().collect();
    assert_eq!(referenced, new);
    let by_key: BTreeMap<Key, BTreeMap<String, String>> =
        tables.iter().map(|r| (key(r), r.clone())).collect();
    assert_eq!(
        by_key.keys().filter(|k| new.contains(k.1.as_str())).count(),
        reference.len(),
        "one R row per estimate of the new tables"
    );
    assert_matches_r(&reference, &by_key);

    let shared: Vec<&BTreeMap<String, String>> = tables
        .iter()
        .filter(|r| core_ids.contains(r["indicator"].as_str()))
        .collect();
    assert_eq!(
        shared.len(),
        core.len(),
        "every cvs-core row is in the tables' run"
    );
    let core_by_key: BTreeMap<Key, &BTreeMap<String, String>> =
        core.iter().map(|r| (key(r), r)).collect();
    for r in shared {
        let c = core_by_key[&key(r)];
        for col in ["estimate", "se", "ci_low", "ci_high", "df", "n_unweighted"] {
            assert_eq!(r[col], c[col], "{:?} {col}", key(r));
        }
    }
}

/// The demo's `[sdmx.dimensions]` repeats what `cvs-core.toml` now declares: without it the run
/// sends the same `sdmx.csv`, byte for byte.
#[test]
fn cvs_core_sends_its_breakdowns_without_sdmx_dimensions() {
    let sdmx_of = |name: &str, extra: &[(&str, &str)]| {
        let dir = scratch(name);
        let config = relocated_config(&root().join("fixtures/demo/pipeline.toml"), &dir, extra);
        let text = std::fs::read_to_string(&config).expect("config");
        cvsurvey::pipeline::run(&config, Default::default()).expect("demo run");
        (
            text,
            std::fs::read_to_string(dir.join("out/sdmx.csv")).expect("sdmx.csv"),
        )
    };
    let (with_config, with) = sdmx_of("sdg16-demo-dimensions", &[]);
    let (without_config, without) = sdmx_of(
        "sdg16-demo-no-dimensions",
        &[
            ("[sdmx.dimensions]", ""),
            ("sex = { dimension", ""),
            ("age_group = { dimension", ""),
            ("urban = { dimension", ""),
        ],
    );
    assert!(with_config.contains("[sdmx.dimensions]"));
    assert!(!without_config.contains("dimension ="), "{without_config}");
    assert!(
        without.contains(",F,Y18T29,"),
        "crossed sex x age cells are sent"
    );
    assert_eq!(with, without);
}
