//! Replicate-weight variance through the whole pipeline, against R `survey` references:
//! JKn and JK1 replicates recalibrated per replicate, supplied bootstrap weights, and the demo's
//! JKn replicates recalibrated by raking.

use std::path::Path;

use crate::common::{read_estimates, rel_diff, relocated_config, root, scratch};

/// Reference rows (design, weighting) → (estimate, se, ci_low, ci_high, df) for api00.
fn api_references(design: &str) -> Vec<(String, [f64; 5])> {
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/api/reference.csv")).expect("reference");
    reader
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| &r[2] == design && &r[5] == "api00")
        .map(|r| {
            let f = |i: usize| r[i].parse::<f64>().expect("number");
            (r[3].to_string(), [f(8), f(9), f(10), f(11), f(13)])
        })
        .collect()
}

fn check_api(config: &Path, design: &str, variance: &str, extra: &[(&str, &str)]) -> usize {
    let dir = scratch(&format!("rep-{design}"));
    let config = relocated_config(config, &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let refs = api_references(design);
    assert!(!refs.is_empty(), "no reference rows for {design}");
    for (weighting, want) in &refs {
        let ours = rows
            .iter()
            .find(|r| r.weighting == *weighting && r.variance == variance && r.domain_var == "_T")
            .unwrap_or_else(|| panic!("{design}: no {weighting} row"));
        let got = [
            ours.estimate.expect("estimate"),
            ours.se.expect("se"),
            ours.ci_low.expect("low"),
            ours.ci_high.expect("high"),
            ours.df.expect("df"),
        ];
        for (k, name) in ["estimate", "se", "ci_low", "ci_high", "df"]
            .iter()
            .enumerate()
        {
            let d = rel_diff(got[k], want[k]);
            assert!(
                d < 1e-8,
                "{design} {weighting} {name}: ours {} R {} (rel {d:e})",
                got[k],
                want[k]
            );
        }
    }
    refs.len()
}

#[test]
fn jkn_and_jk1_recalibrated_per_replicate_match_r() {
    let jkn = root().join("fixtures/api/strat_nofpc_jkn.toml");
    assert_eq!(check_api(&jkn, "strat_nofpc_rep_JKn", "jkn", &[]), 3);
    assert_eq!(
        check_api(
            &jkn,
            "strat_nofpc_rep_JKn_mse",
            "jkn",
            &[("mse = ", "mse = true")]
        ),
        3
    );
    let jk1 = root().join("fixtures/api/clus1_fpc_jk1.toml");
    assert_eq!(check_api(&jk1, "clus1_fpc_rep_JK1", "jk1", &[]), 2);
    assert_eq!(
        check_api(
            &jk1,
            "clus1_fpc_rep_JK1_mse",
            "jk1",
            &[("mse = ", "mse = true")]
        ),
        2
    );
}

/// apistrat with R's 200 bootstrap replicate weights (`bootweights`, seed 20261129) appended as
/// columns `rep001..rep200`, read back as supplied replicate weights.
fn with_supplied_weights(data: &str, weights: &str, dir: &Path) -> std::path::PathBuf {
    let mut d = csv::Reader::from_path(root().join("fixtures/api").join(data)).expect("data");
    let mut w =
        csv::Reader::from_path(root().join("fixtures/replicates").join(weights)).expect("weights");
    let w_header = w.headers().expect("header").clone();
    let reps: Vec<usize> = (0..w_header.len())
        .filter(|&i| w_header[i].starts_with("rep"))
        .collect();
    let path = dir.join(data);
    let mut out = csv::Writer::from_path(&path).expect("write");
    let mut header: Vec<String> = d
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    header.extend(reps.iter().map(|&i| w_header[i].to_string()));
    out.write_record(&header).expect("header");
    for (a, b) in d.records().zip(w.records()) {
        let (a, b) = (a.expect("row"), b.expect("row"));
        let mut row: Vec<String> = a.iter().map(str::to_string).collect();
        row.extend(reps.iter().map(|&i| b[i].to_string()));
        out.write_record(&row).expect("row");
    }
    out.flush().expect("flush");
    path
}

#[test]
fn supplied_bootstrap_weights_reproduce_r() {
    for (data, weights, design, scale, base) in [
        (
            "apistrat.csv",
            "apistrat_boot200_repweights.csv",
            "strat_nofpc_rep_bootstrap",
            "0.00511029724895665",
            "strat_nofpc_jkn.toml",
        ),
        (
            "apiclus1.csv",
            "apiclus1_boot200_repweights.csv",
            "clus1_fpc_rep_bootstrap",
            "0.0053840631730079",
            "clus1_fpc_jk1.toml",
        ),
    ] {
        let dir = scratch(&format!("supplied-{design}"));
        let merged = with_supplied_weights(data, weights, &dir);
        let path_line = format!("path = \"{}\"", merged.display());
        let variance = format!(
            "method = \"supplied\"\ncolumns = \"rep*\"\ntype = \"bootstrap\"\nscale = {scale}"
        );
        // The supplied weights are R's analysis weights of the design weights: compare the
        // scheme without calibration (R rows with weighting pw).
        let config = root().join("fixtures/api").join(base);
        let relocated = relocated_config(
            &config,
            &dir,
            &[("path = ", &path_line), ("method = ", &variance)],
        );
        cvsurvey::pipeline::run(&relocated, Default::default()).expect("run");
        let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
        for (weighting, want) in api_references(design).iter().filter(|(w, _)| w == "pw") {
            let ours = rows
                .iter()
                .find(|r| r.weighting == *weighting && r.domain_var == "_T")
                .expect("row");
            assert_eq!(ours.variance, "supplied");
            let d = rel_diff(ours.se.expect("se"), want[1]);
            assert!(
                d < 1e-8,
                "{design}: se ours {:?} R {} ({d:e})",
                ours.se,
                want[1]
            );
            assert_eq!(ours.df, Some(want[4]), "{design}: df");
        }
    }
}

#[test]
fn demo_jkn_recalibrated_by_raking_matches_r() {
    let dir = scratch("demo-jkn");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[
            (
                "method = ",
                "method = [\"taylor\", \"jkn\"]\nnonresponse = \"fixed\"",
            ),
            ("suppress = ", "suppress = false"),
        ],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/demo/reference.csv")).expect("reference");
    let mut checked = 0;
    for r in reader
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| &r[2] == "jkn")
    {
        let indicator = r[5].split_once('_').expect("prefix").1.to_string();
        let method = if &r[12] == "t_degf" { "mean" } else { &r[12] };
        let ours = rows
            .iter()
            .find(|x| {
                x.indicator == indicator
                    && x.weighting == r[3]
                    && x.variance == "jkn"
                    && x.domain_var == "_T"
                    && x.ci_method == method
            })
            .unwrap_or_else(|| panic!("no row for {}", &r[0]));
        let f = |i: usize| r[i].parse::<f64>().expect("number");
        for (name, got, want) in [
            ("estimate", ours.estimate, f(8)),
            ("se", ours.se, f(9)),
            ("ci_low", ours.ci_low, f(10)),
            ("ci_high", ours.ci_high, f(11)),
        ] {
            let d = rel_diff(got.expect("value"), want);
            assert!(
                d < 1e-6,
                "{} {indicator} {name}: ours {got:?} R {want} ({d:e})",
                &r[0]
            );
        }
        assert_eq!(ours.df, Some(f(13)), "{} df", &r[0]);
        checked += 1;
    }
    assert_eq!(checked, 20);
}

#[test]
fn seeded_bootstrap_is_byte_identical_across_thread_counts() {
    let dir = scratch("bootstrap-determinism");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[
            (
                "method = ",
                "method = \"bootstrap\"\nreplicates = 20\nseed = 7",
            ),
            ("formats = ", "formats = [\"parquet\"]"),
        ],
    );
    let mut outputs = Vec::new();
    for threads in ["1", "3"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
            .args(["run", config.to_str().expect("utf8")])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(std::fs::read(dir.join("out/estimates.parquet")).expect("estimates"));
    }
    assert_eq!(outputs[0], outputs[1]);
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    assert!(rows.iter().all(|r| r.variance == "bootstrap"));
    assert!(
        rows.iter()
            .filter(|r| r.domain_var == "_T")
            .all(|r| r.se.is_some_and(|s| s > 0.0))
    );
}

#[test]
fn replicate_weights_are_published_when_asked() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    let dir = scratch("rep-weights-out");
    let config = relocated_config(
        &root().join("fixtures/api/clus1_fpc_jk1.toml"),
        &dir,
        &[(
            "dir = ",
            &format!(
                "dir = \"{}\"\nreplicate_weights = true",
                dir.join("out").display()
            ),
        )],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let batch = weights_batch(&dir);
    // 15 JK1 replicates (one per sampled district) for each of the two schemes.
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("pw_jk1_")).count(),
        15,
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("rake_stype_jk1_"))
            .count(),
        15
    );
    // JK1 replicate 1 drops one district (weight 0) and scales the others by 15/14.
    let pw = batch
        .column_by_name("pw")
        .expect("pw")
        .as_primitive::<Float64Type>()
        .clone();
    let rep = batch
        .column_by_name("pw_jk1_001")
        .expect("rep")
        .as_primitive::<Float64Type>()
        .clone();
    let mut dropped = 0;
    for i in 0..batch.num_rows() {
        let (w, r) = (pw.value(i), rep.value(i));
        if r == 0.0 {
            dropped += 1;
        } else {
            assert!(rel_diff(r, w * 15.0 / 14.0) < 1e-12, "row {i}: {r} vs {w}");
        }
    }
    assert!(dropped > 0, "one district is dropped in replicate 1");
}

#[test]
fn supplied_weights_with_recomputed_nonresponse_match_r() {
    let dir = scratch("supplied-nr");
    let config = relocated_config(
        &root().join("fixtures/replicates/supplied_nr.toml"),
        &dir,
        &[],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let mut reader = csv::Reader::from_path(root().join("fixtures/replicates/supplied_nr_se.csv"))
        .expect("reference");
    let mut checked = 0;
    for r in reader.records().map(|r| r.expect("record")) {
        let indicator = match r[1].trim() {
            "mean_api00" => "api00",
            "total_enroll" => "enroll_total",
            "ratio_apistu_enroll" => "api_stu_per_enroll",
            other => panic!("unknown statistic {other}"),
        };
        let want = |i: usize| r[i].trim().parse::<f64>().expect("number");
        let ours = rows
            .iter()
            .find(|x| {
                x.indicator == indicator
                    && x.weighting == r[0].trim()
                    && x.variance == "supplied"
                    && x.domain_var == "_T"
            })
            .unwrap_or_else(|| panic!("no row for {indicator} {}", &r[0]));
        for (name, got, want) in [
            ("estimate", ours.estimate, want(2)),
            ("se", ours.se, want(3)),
            ("df", ours.df, want(4)),
        ] {
            let got = got.unwrap_or_else(|| panic!("{indicator} {name} missing"));
            let d = rel_diff(got, want);
            assert!(
                d < 1e-8,
                "{} {indicator} {name}: ours {got} R {want} ({d:e})",
                &r[0]
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn recomputed_nonresponse_changes_supplied_replicate_se() {
    // The same run with the adjustment held fixed must give other SEs: the setting is used.
    let fixed_dir = scratch("supplied-nr-fixed");
    let recompute_dir = scratch("supplied-nr-recompute");
    let se_of = |dir: &Path, extra: &[(&str, &str)]| {
        let config = relocated_config(
            &root().join("fixtures/replicates/supplied_nr.toml"),
            dir,
            extra,
        );
        cvsurvey::pipeline::run(&config, Default::default()).expect("run");
        let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
        rows.iter()
            .find(|x| x.indicator == "api00" && x.weighting == "nr" && x.domain_var == "_T")
            .and_then(|x| x.se)
            .expect("se")
    };
    let recomputed = se_of(&recompute_dir, &[]);
    let fixed = se_of(
        &fixed_dir,
        &[("type = ", "type = \"bootstrap\"\nnonresponse = \"fixed\"")],
    );
    assert!(
        rel_diff(recomputed, fixed) > 1e-6,
        "recompute {recomputed} fixed {fixed}"
    );
}

/// Rows of one run keyed by (indicator, weighting, variance, domain_var, domain_value) → df.
fn dfs(config: &Path, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String, f64)> {
    let dir = scratch(name);
    let config = relocated_config(config, &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    rows.into_iter()
        .map(|r| {
            (
                format!(
                    "{}|{}|{}={}",
                    r.indicator, r.weighting, r.domain_var, r.domain_value
                ),
                r.variance,
                r.df.expect("df"),
            )
        })
        .collect()
}

#[test]
fn replicate_df_rules_and_full_domain_df_apply_to_replicate_rows() {
    let jkn = root().join("fixtures/api/strat_nofpc_jkn.toml");
    let base = [
        ("method = ", "method = [\"taylor\", \"jkn\"]"),
        (
            "indicators = ",
            "indicators = [\"api00\"]\ndomains = [\"stype\", \"sch.wide\"]",
        ),
    ];
    // replicate_df = "design": each replicate row has the Taylor row's df (PSUs − strata of
    // the domain).
    let mut extra = base.to_vec();
    extra.push(("mse = ", "mse = false\nreplicate_df = \"design\""));
    let rows = dfs(&jkn, "rep-df-design", &extra);
    let mut compared = 0;
    for (key, variance, df) in rows.iter().filter(|r| r.1 == "jkn") {
        let taylor = rows
            .iter()
            .find(|r| r.0 == *key && r.1 == "taylor")
            .unwrap_or_else(|| panic!("no taylor row for {key}"));
        assert_eq!(*df, taylor.2, "{key} {variance}");
        compared += 1;
    }
    // 3 schemes × (whole + 3 school types + 2 sch.wide values).
    assert_eq!(compared, 18);
    // Each school type is one stratum: 100, 50 and 50 PSUs.
    let stype_df: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 == "jkn" && r.0.starts_with("api00|pw|stype="))
        .map(|r| r.2)
        .collect();
    assert_eq!(stype_df, vec![99.0, 49.0, 49.0]);

    // domain_df = "full": every replicate row of a scheme has the whole design's df, under the
    // rank rule (R's degf(design)) and under the design rule (200 PSUs − 3 strata).
    for (rule, name) in [
        ("rank", "rep-df-full-rank"),
        ("design", "rep-df-full-design"),
    ] {
        let mut extra = base.to_vec();
        let rule_line = format!("mse = false\nreplicate_df = \"{rule}\"");
        extra.push(("mse = ", rule_line.as_str()));
        extra.push(("[estimation]", "[estimation]\ndomain_df = \"full\""));
        let rows = dfs(&jkn, name, &extra);
        for (key, _, df) in rows.iter().filter(|r| r.1 == "jkn") {
            let scheme = key.split('|').nth(1).expect("scheme");
            let whole = rows
                .iter()
                .find(|r| r.1 == "jkn" && r.0 == format!("api00|{scheme}|_T=_T"))
                .expect("whole-population row");
            assert_eq!(*df, whole.2, "{rule} {key}");
            if rule == "design" {
                assert_eq!(*df, 197.0, "{key}");
            }
        }
    }
}

/// R's SE of `statistic` in column `column` of `fixtures/replicates/certainty_se.csv`.
fn certainty_reference(statistic: &str, column: &str) -> f64 {
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/replicates/certainty_se.csv")).expect("csv");
    let header = reader.headers().expect("header").clone();
    let c = header.iter().position(|h| h == column).expect("column");
    reader
        .records()
        .map(|r| r.expect("record"))
        .find(|r| &r[0] == statistic)
        .map(|r| r[c].parse::<f64>().expect("number"))
        .expect("statistic")
}

/// `certainty = "ssu"` through the pipeline: JKn SEs equal R's JKn on the variance strata (a
/// certainty PSU a stratum of its households) and stay within 1% of R's multistage Taylor SE;
/// the run summary says what is still dropped. Without the key, the warning says the certainty
/// strata carry no variance and how to keep it.
#[test]
fn certainty_psus_replicate_their_households_as_r() {
    let config = root().join("fixtures/replicates/certainty_jkn.toml");
    let dir = scratch("rep-certainty");
    let relocated = relocated_config(&config, &dir, &[]);
    let report = cvsurvey::pipeline::run(&relocated, Default::default()).expect("run");
    let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
    for statistic in ["mean_y", "total_y", "ratio_y_x"] {
        let ours = rows
            .iter()
            .find(|r| r.indicator == statistic && r.domain_var == "_T")
            .and_then(|r| r.se)
            .expect("se");
        let jkn = certainty_reference(statistic, "jkn_variance_strata");
        let taylor = certainty_reference(statistic, "taylor_multistage");
        assert!(
            rel_diff(ours, jkn) < 1e-8,
            "{statistic}: {ours} vs R JKn {jkn}"
        );
        assert!(
            rel_diff(ours, taylor) < 0.01,
            "{statistic}: {ours} vs Taylor {taylor}"
        );
    }
    let summary = std::fs::read_to_string(dir.join("out/run_summary.json")).expect("summary");
    assert!(summary.contains("not certainty strata"), "{summary}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("not certainty strata"))
    );

    let dir = scratch("rep-certainty-psu");
    let relocated = relocated_config(&config, &dir, &[("certainty", "")]);
    let report = cvsurvey::pipeline::run(&relocated, Default::default()).expect("run");
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("later sampling stages"))
        .expect("warning");
    assert!(warning.contains("2 certainty strata") && warning.contains("certainty = \"ssu\""));
    let summary = std::fs::read_to_string(dir.join("out/run_summary.json")).expect("summary");
    assert!(summary.contains("later sampling stages"));
}

/// Bad input: certainty = "ssu" on a one-stage design is a config error naming the key.
#[test]
fn certainty_ssu_needs_a_second_stage() {
    let config = root().join("fixtures/replicates/certainty_jkn.toml");
    let dir = scratch("rep-certainty-one-stage");
    let relocated = relocated_config(
        &config,
        &dir,
        &[("psu = ", "psu = \"psu\""), ("fpc = ", "fpc = \"N1\"")],
    );
    let err = cvsurvey::pipeline::run(&relocated, Default::default())
        .map(|_| ())
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("variance.certainty") && err.contains("second-stage"),
        "{err}"
    );
}

/// SDR with a sort column, with and without the ACS circular pairing, and in file order: SEs
/// equal R's svrepdesign(type = "successive-difference" / "ACS") on the same construction
/// (`fixtures/replicates/make_sdr.R`); file order is noted in the run summary.
#[test]
fn sdr_sorted_and_circular_match_r() {
    let config = root().join("fixtures/replicates/sdr_api.toml");
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/replicates/sdr_se.csv")).expect("csv");
    let references: Vec<(String, String, f64)> = reader
        .records()
        .map(|r| r.expect("record"))
        .map(|r| {
            (
                r[0].to_string(),
                r[1].to_string(),
                r[2].parse().expect("se"),
            )
        })
        .collect();
    for (case, extra) in [
        ("sorted_circular", vec![]),
        ("sorted", vec![("circular", "circular = false")]),
        ("file_order", vec![("circular", ""), ("sort", "")]),
    ] {
        let dir = scratch(&format!("rep-sdr-{case}"));
        let relocated = relocated_config(&config, &dir, &extra);
        let report = cvsurvey::pipeline::run(&relocated, Default::default()).expect("run");
        let (rows, _) = read_estimates(&dir.join("out/estimates.parquet"));
        for (_, statistic, want) in references.iter().filter(|r| r.0 == case) {
            let ours = rows
                .iter()
                .find(|r| &r.indicator == statistic && r.domain_var == "_T")
                .and_then(|r| r.se)
                .expect("se");
            assert!(
                rel_diff(ours, *want) < 1e-8,
                "{case} {statistic}: {ours} vs R {want}"
            );
        }
        let noted = report
            .warnings
            .iter()
            .any(|w| w.contains("order of the data file"));
        assert_eq!(noted, case == "file_order", "{case}: {:?}", report.warnings);
    }
    // A sort column that is not in the data is an error naming it.
    let dir = scratch("rep-sdr-unknown");
    let relocated = relocated_config(&config, &dir, &[("sort", "sort = \"api98\"")]);
    let err = cvsurvey::pipeline::run(&relocated, Default::default())
        .map(|_| ())
        .expect_err("refused")
        .to_string();
    assert!(err.contains("sort column api98"), "{err}");
}

/// The bootstrap of the Stata and SAS profiles is Rao–Wu through the pipeline: in a stratum of
/// n_h PSUs a PSU's factor is k · n_h/(n_h − 1) for its k draws out of n_h − 1; R's profile keeps
/// `bootweights` counts (k out of n_h). Both put n_h in total on each stratum.
#[test]
fn stata_and_sas_profiles_build_rao_wu_bootstrap_weights() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    let mut strata =
        csv::Reader::from_path(root().join("fixtures/api/apistrat.csv")).expect("apistrat");
    let header = strata.headers().expect("header").clone();
    let at = header.iter().position(|h| h == "stype").expect("stype");
    let stype: Vec<String> = strata
        .records()
        .map(|r| r.expect("record")[at].to_string())
        .collect();
    let n_h = |s: &str| if s == "E" { 100.0 } else { 50.0 };
    for profile in ["r", "stata", "sas"] {
        let dir = scratch(&format!("rep-profile-{profile}"));
        let config = relocated_config(
            &root().join("fixtures/api/strat_nofpc_jkn.toml"),
            &dir,
            &[
                (
                    "method = ",
                    "method = \"bootstrap\"\nreplicates = 20\nseed = 7",
                ),
                ("mse = ", &format!("profile = \"{profile}\"")),
                (
                    "dir = ",
                    &format!(
                        "dir = \"{}\"\nreplicate_weights = true",
                        dir.join("out").display()
                    ),
                ),
            ],
        );
        cvsurvey::pipeline::run(&config, Default::default()).expect("run");
        let batch = weights_batch(&dir);
        assert_eq!(batch.num_rows(), stype.len());
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{profile}: no column {name}"))
                .as_primitive::<Float64Type>()
                .clone()
        };
        let pw = column("pw");
        for r in 1..=20 {
            let rep = column(&format!("pw_bootstrap_{r:03}"));
            let mut per_stratum = std::collections::BTreeMap::<&str, f64>::new();
            for i in 0..batch.num_rows() {
                let factor = rep.value(i) / pw.value(i);
                let n = n_h(&stype[i]);
                // Draw counts: the factor itself (R), or the factor over n_h/(n_h − 1).
                let draws = if profile == "r" {
                    factor
                } else {
                    factor * (n - 1.0) / n
                };
                assert!(
                    (draws - draws.round()).abs() < 1e-9,
                    "{profile} replicate {r} row {i}: factor {factor}"
                );
                // apistrat has one school per PSU: a row's factor is its PSU's.
                *per_stratum.entry(stype[i].as_str()).or_default() += factor;
            }
            for (s, total) in per_stratum {
                assert!((total - n_h(s)).abs() < 1e-9, "{profile} {r} {s}: {total}");
            }
        }
    }
}

/// The first record batch of a run's `out/weights.parquet` (the fixtures' files fit in one).
fn weights_batch(dir: &Path) -> arrow_array::RecordBatch {
    let file = std::fs::File::open(dir.join("out/weights.parquet")).expect("weights.parquet");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("batch")
}
