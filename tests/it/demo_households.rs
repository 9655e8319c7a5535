//! The demo survey of households and persons (`fixtures/demo-households/`,
//! `questionnaires/cvs-households.toml`) against the R references of
//! `fixtures/demo-households/make_reference.R` (R 4.2.2, survey 4.5): every indicator at its
//! level, every domain of that level, estimate, SE, interval and df, under Taylor linearisation
//! and under JKn replicates that redo the nonresponse adjustment and the raking of each unit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cvsurvey::questionnaire::{Level, Questionnaire};

use crate::common::{read_csv, rel_diff, relocated_config, root, scratch};

/// Relative tolerance against R.
const TOL: f64 = 1e-8;

/// Domains of household variables: the only ones a household indicator may be estimated by.
const HOUSEHOLD_DOMAINS: [&str; 3] = ["_T", "region", "urban"];

type Row = BTreeMap<String, String>;
type Key = (String, String, String, String, String);

fn key(r: &Row) -> Key {
    (
        r["weighting"].clone(),
        r["variance"].clone(),
        r["indicator"].clone(),
        r["domain_var"].clone(),
        r["domain_value"].clone(),
    )
}

/// The demo run into a scratch folder with `[variance] method = {method}` and any other config
/// lines replaced. The demo has no `suppress = true`, so every estimate is written.
fn run_demo(name: &str, method: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(name);
    let method = format!("method = {method}");
    let mut lines = vec![("method = ", method.as_str())];
    lines.extend_from_slice(extra);
    let config = relocated_config(
        &root().join("fixtures/demo-households/pipeline.toml"),
        &dir,
        &lines,
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("households demo run");
    dir.join("out")
}

fn reference(file: &str) -> Vec<Row> {
    read_csv(&root().join("fixtures/demo-households").join(file))
}

/// The run's rows of one variance method, by key; their cells must be exactly the reference's.
fn estimates_of(out: &Path, variance: &str, reference: &[Row]) -> BTreeMap<Key, Row> {
    let estimates: BTreeMap<Key, Row> = read_csv(&out.join("estimates.csv"))
        .into_iter()
        .filter(|r| r["variance"] == variance)
        .map(|r| (key(&r), r))
        .collect();
    let referenced: BTreeSet<Key> = reference.iter().map(key).collect();
    let estimated: BTreeSet<Key> = estimates.keys().cloned().collect();
    assert_eq!(
        estimated
            .symmetric_difference(&referenced)
            .collect::<Vec<_>>(),
        Vec::<&Key>::new(),
        "cells of the run without an R reference, or the reverse"
    );
    estimates
}

/// Every reference row against the pipeline's row of the same key, each pipeline column against
/// its reference column (`(ours, R's)`) to [`TOL`]; an interval R does not give (NA, at an
/// estimate of 0 or 1) must be the estimate itself. The `level` columns must agree.
fn assert_matches_r(reference: &[Row], estimates: &BTreeMap<Key, Row>, columns: &[(&str, &str)]) {
    let mut worst = (0.0_f64, String::new());
    for r in reference {
        let k = key(r);
        let e = &estimates[&k];
        assert_eq!(e["level"], r["level"], "{k:?}: level");
        for &(ours, theirs) in columns {
            let got: f64 = e[ours]
                .parse()
                .unwrap_or_else(|_| panic!("{k:?} {ours}: {:?}", e[ours]));
            let want: f64 = if r[theirs] == "NA" {
                assert!(ours.starts_with("ci_"), "{k:?}: R gives no {theirs}");
                r["estimate"].parse().expect("estimate")
            } else {
                r[theirs]
                    .parse()
                    .unwrap_or_else(|_| panic!("{k:?} {theirs}"))
            };
            let d = rel_diff(got, want);
            if d > worst.0 {
                worst = (d, format!("{k:?} {ours}: {got} vs R {theirs} {want}"));
            }
        }
    }
    assert!(worst.0 < TOL, "largest difference from R: {}", worst.1);
}

const SAME_COLUMNS: [(&str, &str); 5] = [
    ("estimate", "estimate"),
    ("se", "se"),
    ("ci_low", "ci_low"),
    ("ci_high", "ci_high"),
    ("df", "df"),
];

#[test]
fn demo_households_matches_r_under_taylor_at_both_levels() {
    let out = run_demo("demo-households-taylor", "\"taylor\"", &[]);

    // Every sampled household and person is used: nothing quarantined in either file.
    for file in ["quarantine.csv", "household_quarantine.csv"] {
        let text = std::fs::read_to_string(out.join(file)).expect(file);
        assert_eq!(text.lines().count(), 1, "{file}: {text}");
    }

    let reference = reference("reference.csv");
    assert_eq!(reference.len(), 241, "R reference rows");
    let estimates = estimates_of(&out, "taylor", &reference);
    assert_matches_r(&reference, &estimates, &SAME_COLUMNS);

    // Levels from the questionnaire: each indicator's rows carry its level and its scheme;
    // household rows only have household domains, person rows every domain.
    let questionnaire =
        Questionnaire::load(&root().join("questionnaires/cvs-households.toml")).expect("load");
    let level_of: BTreeMap<&str, Level> = questionnaire
        .indicators
        .iter()
        .map(|i| (i.id.as_str(), i.level))
        .collect();
    let mut person_domains = BTreeSet::new();
    for e in estimates.values() {
        let household = level_of[e["indicator"].as_str()] == Level::Household;
        let (level, scheme) = if household {
            ("household", "hh_raked")
        } else {
            ("person", "raked")
        };
        assert_eq!(
            (e["level"].as_str(), e["weighting"].as_str()),
            (level, scheme)
        );
        if household {
            assert!(
                HOUSEHOLD_DOMAINS.contains(&e["domain_var"].as_str()),
                "household row by a person domain: {e:?}"
            );
        } else {
            person_domains.insert(e["domain_var"].clone());
        }
    }
    assert_eq!(
        person_domains,
        ["_T", "age_group", "region", "sex", "urban"]
            .map(String::from)
            .into(),
    );
    let indicators: BTreeSet<&str> = estimates.keys().map(|k| k.2.as_str()).collect();
    assert_eq!(
        indicators.len(),
        questionnaire.indicators.len(),
        "every indicator estimated"
    );
}

/// JKn replicates per unit, each redoing the nonresponse adjustment and the raking, with the
/// whole replicate design's df for every domain (`domain_df = "full"`, R's
/// `confint(..., df = degf(design))`): every cell against R, the logit intervals of the
/// proportions from the replicates' logits (R refits `svyglm` on every replicate).
#[test]
fn demo_households_jkn_matches_r_with_the_whole_designs_df() {
    let out = run_demo(
        "demo-households-jkn-full",
        "[\"taylor\", \"jkn\"]",
        &[("ci = ", "ci = [\"logit\"]\ndomain_df = \"full\"")],
    );
    let reference = reference("reference_jkn.csv");
    let estimates = estimates_of(&out, "jkn", &reference);
    assert_matches_r(
        &reference,
        &estimates,
        &[
            ("estimate", "estimate"),
            ("se", "se"),
            ("ci_low", "ci_low_full"),
            ("ci_high", "ci_high_full"),
            ("df", "df_full"),
        ],
    );
}

/// R's `degf()` of a domain of a reweighted replicate design is the rank of the domain's own
/// replicate weights. Domains made of whole strata or calibration cells (region, urban, sex, age
/// group) have far lower rank than the whole design (region R04 of households: 34 against
/// 145), so the domain's own rank must be computed whatever its size.
#[test]
fn demo_households_jkn_domain_df_is_the_rank_of_the_domains_replicate_weights() {
    let out = run_demo("demo-households-jkn", "[\"taylor\", \"jkn\"]", &[]);
    let reference = reference("reference_jkn.csv");
    let estimates = estimates_of(&out, "jkn", &reference);
    assert_matches_r(&reference, &estimates, &SAME_COLUMNS);
}
