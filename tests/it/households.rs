//! A survey of households and persons (`fixtures/households/`): household indicators on the
//! household file with household weights, person indicators on the person file with household
//! weight × selection factor, against R (`fixtures/households/make_reference.R`, R 4.2.2, survey
//! 4.5); row accounting per file; and the bad inputs of issue 18 (a person without a household,
//! a selection factor below 1, a household indicator using a person variable, both ways of
//! giving a person weight, a person file whose design column disagrees with its household's).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{cvsurvey_run, read_csv, rel_diff, relocated_config, root, scratch};

const TOL: f64 = 1e-8;

/// The fixture's files copied into a scratch folder, `edit` applied to (file name, text).
fn scratch_survey(name: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let dir = scratch(name);
    let fixture = root().join("fixtures/households");
    for file in [
        "questionnaire.toml",
        "households.csv",
        "persons.csv",
        "pipeline.toml",
    ] {
        let text = std::fs::read_to_string(fixture.join(file)).expect("read fixture");
        std::fs::write(dir.join(file), edit(file, text)).expect("write");
    }
    relocated_config(&dir.join("pipeline.toml"), &dir, &[])
}

/// Run `config`, which must succeed; its output folder.
fn run_ok(config: &Path) -> PathBuf {
    let (code, out) = cvsurvey_run(config);
    assert_eq!(code, 0, "{out}");
    config.parent().expect("dir").join("out")
}

/// `text` with `edit` applied to its lines (header first), ending in a line break.
fn edit_lines(text: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    edit(&mut lines);
    lines.push(String::new());
    lines.join("\n")
}

#[test]
fn household_and_person_estimates_equal_r() {
    let dir = scratch("households_r");
    let config = relocated_config(
        &root().join("fixtures/households/pipeline.toml"),
        &dir,
        &[("domains", "domains = [\"region\", \"sex\"]")],
    );
    let (code, out) = cvsurvey_run(&config);
    assert_eq!(code, 0, "{out}");
    let ours = read_csv(&dir.join("out/estimates.csv"));
    let reference = read_csv(&root().join("fixtures/households/reference.csv"));
    assert_eq!(reference.len(), 42);
    for r in &reference {
        let key = ["indicator", "weighting", "domain_var", "domain_value"];
        let row = ours
            .iter()
            .find(|o| key.iter().all(|k| o[*k] == r[*k]))
            .unwrap_or_else(|| panic!("no row for {r:?}"));
        let household = r["indicator"].starts_with("burglary");
        assert_eq!(row["level"], if household { "household" } else { "person" });
        for k in ["estimate", "se"] {
            let (a, b): (f64, f64) = (row[k].parse().expect("ours"), r[k].parse().expect("R"));
            assert!(rel_diff(a, b) < TOL, "{r:?} {k}: {a} vs R {b}");
        }
    }
    // Household indicators are never crossed by person variables.
    assert!(
        !ours
            .iter()
            .any(|o| o["level"] == "household" && o["domain_var"] == "sex")
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/run_summary.json")).expect("summary"),
    )
    .expect("json");
    let inputs = summary["inputs"].as_array().expect("inputs");
    assert_eq!(inputs[0]["level"], "household");
    assert_eq!(inputs[0]["rows_read"], 72);
    assert_eq!(inputs[1]["level"], "person");
    assert_eq!(inputs[1]["rows_read"], 68);
    assert!(dir.join("out/household_weights.parquet").exists());
    assert!(dir.join("out/household_quarantine.csv").exists());
}

#[test]
fn persons_that_cannot_be_linked_are_quarantined_with_their_reason() {
    let config = scratch_survey("households_bad_links", |file, text| match file {
        "persons.csv" => {
            edit_lines(&text, |lines| {
                // Row 1: a household that does not exist.
                lines[1] = lines[1].replacen(
                    &lines[1].split(',').nth(1).expect("hh").to_string(),
                    "999999",
                    1,
                );
            })
        }
        "households.csv" => {
            // The household of the second person twice: both rows are quarantined as
            // duplicates, and so is its person.
            let persons = std::fs::read_to_string(root().join("fixtures/households/persons.csv"))
                .expect("persons");
            let household = persons
                .lines()
                .nth(2)
                .expect("row 2")
                .split(',')
                .nth(1)
                .expect("hh")
                .to_string();
            edit_lines(&text, |lines| {
                let copy = lines
                    .iter()
                    .find(|l| l.split(',').next() == Some(household.as_str()))
                    .expect("the household")
                    .clone();
                lines.push(copy)
            })
        }
        _ => text,
    });
    let out = run_ok(&config);
    let quarantine = read_csv(&out.join("quarantine.csv"));
    assert!(
        quarantine.iter().any(|q| q["kind"] == "unknown_household"
            && q["value"] == "999999"
            && q["reason"].contains("not in the household file")),
        "{quarantine:?}"
    );
    let household_quarantine = read_csv(&out.join("household_quarantine.csv"));
    assert_eq!(household_quarantine.len(), 2, "{household_quarantine:?}");
    assert!(
        household_quarantine
            .iter()
            .all(|q| q["kind"] == "duplicate_id")
    );
    assert!(
        quarantine.iter().any(|q| q["kind"] == "unknown_household"
            && q["reason"].contains("quarantined in the household file")),
        "{quarantine:?}"
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("run_summary.json")).expect("summary"),
    )
    .expect("json");
    let persons = &summary["inputs"][1];
    assert_eq!(persons["rows_read"], 68);
    assert_eq!(persons["rows_quarantined"], 2);
}

#[test]
fn a_selection_factor_below_one_quarantines_the_person() {
    // A household's eligible_adults of 0, allowed by the questionnaire's range here.
    let config = scratch_survey("households_factor", |file, text| match file {
        "questionnaire.toml" => text.replace(
            "range = [1, 12]\nlevel = \"household\"",
            "range = [0, 12]\nlevel = \"household\"",
        ),
        "households.csv" => edit_lines(&text, |lines| {
            let k = lines
                .iter()
                .position(|l| l.split(',').nth(5) == Some("1"))
                .expect("a responding household");
            let mut cells: Vec<String> = lines[k].split(',').map(str::to_string).collect();
            cells[6] = "0".into();
            lines[k] = cells.join(",");
        }),
        _ => text,
    });
    let out = run_ok(&config);
    let quarantine = read_csv(&out.join("quarantine.csv"));
    assert!(
        quarantine.iter().any(|q| q["column"] == "eligible_adults"
            && q["kind"] == "invalid_weight"
            && q["reason"].contains("≥ 1")),
        "{quarantine:?}"
    );
}

#[test]
fn a_design_column_repeated_in_the_person_file_must_agree() {
    let config = scratch_survey("households_design_mismatch", |file, text| match file {
        "persons.csv" => {
            edit_lines(&text, |lines| {
                lines[0].push_str(",stratum");
                for (k, line) in lines.iter_mut().enumerate().skip(1) {
                    // Every person in stratum 1 except the first, whose household is elsewhere.
                    line.push_str(if k == 1 { ",4" } else { ",1" });
                }
            })
        }
        _ => text,
    });
    let out = run_ok(&config);
    let quarantine = read_csv(&out.join("quarantine.csv"));
    assert!(
        quarantine
            .iter()
            .any(|q| q["kind"] == "household_mismatch" && q["column"] == "stratum"),
        "{quarantine:?}"
    );
}

#[test]
fn config_and_questionnaire_mistakes_are_refused_with_their_reason() {
    let both = scratch_survey("households_both_weights", |file, text| match file {
        "pipeline.toml" => text.replace(
            "selection_factor = \"eligible_adults\"",
            "selection_factor = \"eligible_adults\"\nweight = \"person_weight\"",
        ),
        _ => text,
    });
    let (code, out) = cvsurvey_run(&both);
    assert_ne!(code, 0);
    assert!(out.contains("both selection_factor and weight"), "{out}");

    let person_variable = scratch_survey("households_indicator_level", |file, text| match file {
        "questionnaire.toml" => text.replace(
            "value = \"burglary_12m == 1\"\nlevel = \"household\"",
            "value = \"burglary_12m == 1 and sex == 1\"\nlevel = \"household\"",
        ),
        _ => text,
    });
    let (code, out) = cvsurvey_run(&person_variable);
    assert_ne!(code, 0);
    assert!(out.contains("uses person variables (sex)"), "{out}");

    let no_link = scratch_survey("households_no_link", |file, text| match file {
        "pipeline.toml" => text.replace("household_id = \"hh_id\"\n", ""),
        _ => text,
    });
    let (code, out) = cvsurvey_run(&no_link);
    assert_ne!(code, 0);
    assert!(out.contains("data.household_id"), "{out}");
}

#[test]
fn validate_checks_both_files_and_the_summary_has_both_units() {
    let config = scratch_survey("households_validate", |file, text| match file {
        "persons.csv" => edit_lines(&text, |lines| {
            lines[1] = lines[1].replacen(
                &lines[1].split(',').nth(1).expect("hh").to_string(),
                "999999",
                1,
            );
        }),
        _ => text,
    });
    let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(["validate", config.to_str().expect("utf8")])
        .output()
        .expect("run cvsurvey");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("households\n")
            && stdout
                .contains("rows      72 read = 72 used + 0 quarantined  (68 responding households")
            && stdout.contains("rows      68 read = 67 used + 1 quarantined"),
        "{stdout}"
    );
    let dir = config.parent().expect("dir").join("out");
    let quarantine = read_csv(&dir.join("quarantine.csv"));
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0]["kind"], "unknown_household");
    assert!(dir.join("household_findings.csv").exists());
}
