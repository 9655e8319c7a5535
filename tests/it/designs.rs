//! Sampling designs run end to end by the CLI. PPS sampling without replacement:
//! `fixtures/pps/election.toml` (R's election_pps, fpc = inclusion probabilities) with each
//! `pps` method against `fixtures/pps/reference.csv` (R 4.2.2, survey 4.5, `make_pps.R`).

use std::collections::HashMap;
use std::path::Path;

use crate::common::{cvsurvey_run, relocated_config, root, scratch};

/// Rows of a CSV file as maps from column name to cell.
fn read_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("open csv");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// `fixtures/pps/election.toml` in a scratch folder with its `pps = ` line replaced by `pps`
/// (and `extra` lines replaced as well).
fn election_config(name: &str, pps: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = scratch(&format!("designs-{name}"));
    let mut replace = vec![("pps = ", pps)];
    replace.extend_from_slice(extra);
    relocated_config(&root().join("fixtures/pps/election.toml"), &dir, &replace)
}

#[test]
fn pps_without_replacement_estimates_match_r() {
    let reference = read_rows(&root().join("fixtures/pps/reference.csv"));
    for method in ["brewer", "overton", "hartley-rao"] {
        let line = format!("pps = \"{method}\"");
        let config = election_config(method, &line, &[]);
        let (code, message) = cvsurvey_run(&config);
        assert_eq!(code, 0, "{method}: {message}");
        let ours = read_rows(&config.with_file_name("out").join("estimates.csv"));
        let mut checked = 0;
        for want in reference
            .iter()
            .filter(|r| r["case"] == "election" && r["method"] == method)
        {
            let indicator = format!("{}_{}", want["variable"].to_lowercase(), want["statistic"]);
            let (domain_var, domain_value) = if want["domain"].is_empty() {
                ("_T", "_T")
            } else {
                ("winner", want["domain"].as_str())
            };
            let row = ours
                .iter()
                .find(|r| {
                    r["indicator"] == indicator
                        && r["variance"] == "taylor"
                        && r["domain_var"] == domain_var
                        && r["domain_value"] == domain_value
                })
                .unwrap_or_else(|| panic!("{method}: no row {indicator} {domain_value}"));
            for (ours_col, r_col) in [("estimate", "estimate"), ("se", "se")] {
                let got: f64 = row[ours_col].parse().expect("number");
                let r: f64 = want[r_col].parse().expect("number");
                assert!(
                    ((got - r) / r).abs() < 1e-8,
                    "{method} {indicator} {domain_value} {ours_col}: {got} vs R {r}"
                );
            }
            checked += 1;
        }
        assert_eq!(checked, 12, "{method}");
    }
}

#[test]
fn probabilities_as_fpc_without_pps_point_to_pps() {
    let config = election_config("no-pps", "", &[]);
    let (code, message) = cvsurvey_run(&config);
    assert_ne!(code, 0, "{message}");
    assert!(
        message.contains("fpc column p is not constant within stratum")
            && message.contains(r#"pps = "brewer" | "overton" | "hartley-rao""#),
        "{message}"
    );
}

#[test]
fn pps_refuses_replicate_methods_and_population_sizes() {
    let config = election_config(
        "jk1",
        r#"pps = "overton""#,
        &[("[estimation]", "[variance]\nmethod = \"jk1\"\n[estimation]")],
    );
    let (code, message) = cvsurvey_run(&config);
    assert_ne!(code, 0, "{message}");
    assert!(
        message.contains("jk1") && message.contains("not available with pps"),
        "{message}"
    );
    let config = election_config(
        "votes",
        r#"pps = "brewer""#,
        &[("fpc = ", "fpc = \"votes\"")],
    );
    let (code, message) = cvsurvey_run(&config);
    assert_ne!(code, 0, "{message}");
    assert!(
        message.contains("fpc column votes")
            && message.contains("not an inclusion probability in (0, 1]")
            && message.contains("looks like a population size"),
        "{message}"
    );
}
