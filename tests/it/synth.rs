//! `cvsurvey synth`: generated files run through the pipeline with no quarantined row, for the
//! core questionnaire (CSV and Parquet, 12 and 40 regions) and a generic one; bad parameters are
//! one-line errors.

use std::path::Path;
use std::process::Command;

use crate::common::{root, scratch};

fn cvsurvey(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(args)
        .output()
        .expect("run cvsurvey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// A demo-like config: two schemes, all indicators by sex, age group, region and urban.
fn config(dir: &Path, questionnaire: &Path, data: &Path) -> std::path::PathBuf {
    let text = format!(
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
name = "design"
[[weighting]]
name = "nr_adjusted"
nonresponse = {{ classes = ["stratum"] }}
[variance]
method = "taylor"
[estimation]
indicators = ["*"]
domains = ["sex", "age_group", "region", "urban"]
ci = ["logit"]
[output]
dir = "{}"
"#,
        questionnaire.display(),
        data.display(),
        dir.join("out").display()
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn synth_and_run(name: &str, ext: &str, regions: &str) -> String {
    let dir = scratch(name);
    let data = dir.join(format!("data.{ext}"));
    let margins = dir.join("margins.csv");
    let q = root().join("questionnaires/cvs-core.toml");
    let (code, stdout, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--rows",
        "20000",
        "--regions",
        regions,
        "--seed",
        "7",
        "--out",
        s(&data),
        "--margins",
        s(&margins),
    ]);
    assert_eq!(code, 0, "synth failed: {stderr}");
    assert!(stdout.contains("rows      20000"), "{stdout}");
    let used_q = if regions == "12" {
        q
    } else {
        dir.join("data.questionnaire.toml")
    };
    let cfg = config(&dir, &used_q, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", s(&cfg)]);
    assert_eq!(code, 0, "run failed: {stderr}");
    assert!(
        stdout.contains("20000 read = 20000 used + 0 quarantined"),
        "{stdout}"
    );
    let quarantine = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert_eq!(quarantine.lines().count(), 1, "{quarantine}");
    let m = std::fs::read_to_string(&margins).expect("margins");
    assert!(m.starts_with("variable,category,total\nsex,1,"), "{m}");
    stdout
}

#[test]
fn synth_csv_runs_with_zero_quarantined_rows() {
    let out = synth_and_run("synth-csv", "csv", "12");
    assert!(out.contains("24 strata"), "{out}");
}

#[test]
fn synth_parquet_with_40_regions_runs_with_zero_quarantined_rows() {
    let out = synth_and_run("synth-parquet", "parquet", "40");
    assert!(out.contains("80 strata"), "{out}");
}

#[test]
fn synth_csv_and_parquet_hold_the_same_data() {
    let dir = scratch("synth-same");
    let q = root().join("questionnaires/cvs-core.toml");
    for ext in ["csv", "parquet"] {
        let data = dir.join(format!("d.{ext}"));
        let (code, _, stderr) = cvsurvey(&[
            "synth",
            "--questionnaire",
            s(&q),
            "--rows",
            "5000",
            "--regions",
            "4",
            "--seed",
            "3",
            "--out",
            s(&data),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }
    let mut estimates = Vec::new();
    for ext in ["csv", "parquet"] {
        let sub = dir.join(ext);
        std::fs::create_dir_all(&sub).expect("dir");
        let cfg = config(&sub, &q, &dir.join(format!("d.{ext}")));
        let (code, stdout, stderr) = cvsurvey(&["run", s(&cfg)]);
        assert_eq!(code, 0, "{stderr}");
        estimates.push(
            stdout
                .lines()
                .filter(|l| !l.starts_with("wrote") && !l.starts_with("data"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    assert_eq!(estimates[0], estimates[1]);
}

#[test]
fn synth_generic_questionnaire_validates_cleanly() {
    let dir = scratch("synth-generic");
    let q = dir.join("generic.toml");
    std::fs::write(
        &q,
        r#"[questionnaire]
id = "generic"
version = "0.1"

[[variables]]
name = "owns_car"
codes = { Y = "Yes", N = "No" }
missing = { DK = "dont_know" }

[[variables]]
name = "cars"
type = "integer"
range = [1, 9]
asked_if = 'owns_car == "Y"'

[[variables]]
name = "income"
type = "numeric"
range = [0, 5000]

[[indicators]]
id = "car_ownership"
kind = "proportion"
value = 'owns_car == "Y"'
universe = 'owns_car in ["Y", "N"]'

[[indicators]]
id = "mean_income"
kind = "mean"
value = "income"
"#,
    )
    .expect("write questionnaire");
    let data = dir.join("g.parquet");
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--rows",
        "4000",
        "--regions",
        "3",
        "--out",
        s(&data),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "questionnaire = \"{}\"\n[data]\npath = \"{}\"\nid = \"id\"\nresponse = \"responded\"\n[design]\nstrata = \"stratum\"\npsu = \"psu\"\nweight = \"design_weight\"\nnest = true\n[output]\ndir = \"{}\"\n",
            q.display(),
            data.display(),
            dir.join("out").display()
        ),
    )
    .expect("write config");
    let (code, stdout, stderr) = cvsurvey(&["run", s(&cfg)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("4000 read = 4000 used + 0 quarantined"),
        "{stdout}"
    );
}

#[test]
fn synth_bad_parameters_are_one_line_errors() {
    let dir = scratch("synth-bad");
    let q = root().join("questionnaires/cvs-core.toml");
    let out = dir.join("x.csv");
    for (args, expect) in [
        (vec!["--rows", "0"], "--rows must be at least 1"),
        (
            vec!["--rows", "100", "--regions", "0"],
            "--regions must be at least 1",
        ),
        (
            vec!["--rows", "100", "--regions", "2", "--psus", "500"],
            "500 PSUs for 100 rows",
        ),
    ] {
        let mut a = vec!["synth", "--questionnaire", s(&q), "--out", s(&out)];
        a.extend(args);
        let (code, _, stderr) = cvsurvey(&a);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!out.exists());
}

#[test]
fn synth_psu_size_and_format_csv_are_deterministic() {
    let dir = scratch("synth-psu-size");
    let q = root().join("questionnaires/cvs-core.toml");
    let make = |name: &str, seed: &str| {
        // No .csv extension: --format says it.
        let data = dir.join(name);
        let (code, stdout, stderr) = cvsurvey(&[
            "synth",
            "--questionnaire",
            s(&q),
            "--rows",
            "20000",
            "--regions",
            "40",
            "--psu-size",
            "100",
            "--format",
            "csv",
            "--seed",
            seed,
            "--out",
            s(&data),
            "--questionnaire-out",
            s(&dir.join("q.toml")),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("80 strata, 200 PSUs"), "{stdout}");
        std::fs::read(&data).expect("generated file")
    };
    let a = make("a.dat", "5");
    assert_eq!(a, make("b.dat", "5"), "same seed, same bytes");
    assert_ne!(a, make("c.dat", "6"));
    let text = String::from_utf8(a).expect("utf8");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let psu = header.iter().position(|c| *c == "psu").expect("psu column");
    let mut per_psu = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines().skip(1) {
        let field = line.split(',').nth(psu).expect("psu field").to_string();
        *per_psu.entry(field).or_default() += 1;
    }
    assert_eq!(per_psu.len(), 200);
    assert!(per_psu.values().all(|&n| n == 100), "{per_psu:?}");
}

#[test]
fn synth_bad_psu_size_and_format_are_one_line_errors() {
    let dir = scratch("synth-bad-psu-size");
    let q = root().join("questionnaires/cvs-core.toml");
    let csv = dir.join("x.csv");
    let parquet = dir.join("x.parquet");
    for (out, args, expect) in [
        (
            &csv,
            vec!["--rows", "1000", "--psu-size", "0"],
            "--psu-size 0",
        ),
        (
            &csv,
            vec!["--rows", "1000", "--psu-size", "1001"],
            "--psu-size 1001 is larger than --rows 1000",
        ),
        (
            &csv,
            vec!["--rows", "1000", "--regions", "2", "--psu-size", "400"],
            "fewer than 2 PSUs per stratum",
        ),
        (
            &parquet,
            vec!["--rows", "1000", "--format", "csv"],
            "--format csv but --out",
        ),
    ] {
        let mut a = vec!["synth", "--questionnaire", s(&q), "--out", s(out)];
        a.extend(args);
        let (code, _, stderr) = cvsurvey(&a);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!out.exists());
    }
    // clap refuses both counts at once (exit 2, its own usage message).
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--out",
        s(&csv),
        "--rows",
        "1000",
        "--psus",
        "10",
        "--psu-size",
        "10",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--psu-size"), "{stderr}");
}
