//! `cvsurvey synth`: generated files run through the pipeline with no quarantined row, for the
//! core questionnaire (CSV and Parquet, 12 and 40 regions) and a generic one; bad parameters are
//! one-line errors.

use std::path::Path;
use std::process::Command;

use crate::common::{cvsurvey, root, scratch};

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

// ------------------------------------------------------------------------------------------
// Surveys of households and persons (questionnaires/cvs-households.toml)

/// Header and rows of a generated CSV file (the synthetic files quote nothing).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("generated file");
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

fn synth_households(dir: &Path, out: &str, extra: &[&str], threads: &str) -> (i32, String, String) {
    let q = root().join("questionnaires/cvs-households.toml");
    let mut args = vec![
        "synth",
        "--questionnaire",
        s(&q),
        "--regions",
        "3",
        "--seed",
        "5",
    ];
    // A name ending with `/` keeps it: the output is then a folder.
    let out = dir.join(out).display().to_string();
    args.extend(["--out", out.as_str()]);
    args.extend(extra);
    let result = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(&args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("run cvsurvey");
    (
        result.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

#[test]
fn synth_households_writes_one_person_per_responding_household() {
    let dir = scratch("synth-households");
    let (code, stdout, stderr) =
        synth_households(&dir, "hh.csv", &["--rows", "2400", "--psu-size", "20"], "2");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("households 2400 ("), "{stdout}");
    assert!(stdout.contains("6 strata, 120 PSUs"), "{stdout}");
    let (hh_header, households) = read_csv(&dir.join("hh_households.csv"));
    let (p_header, persons) = read_csv(&dir.join("hh_persons.csv"));
    assert_eq!(
        hh_header[..8],
        [
            "hh_id",
            "region",
            "stratum",
            "psu",
            "urban",
            "psu_pop",
            "hh_weight",
            "hh_responded"
        ]
    );
    assert_eq!(p_header[..3], ["resp_id", "hh_id", "responded"]);
    assert!(
        !p_header
            .iter()
            .any(|c| c == "burglary_12m" || c == "stratum")
    );
    assert!(!hh_header.iter().any(|c| c == "sex" || c == "resp_id"));
    assert_eq!(households.len(), 2400);

    let (hid, hresp, size, adults, burglary) = (
        column(&hh_header, "hh_id"),
        column(&hh_header, "hh_responded"),
        column(&hh_header, "hh_size"),
        column(&hh_header, "eligible_adults"),
        column(&hh_header, "burglary_12m"),
    );
    let mut responding = std::collections::BTreeMap::new();
    for h in &households {
        if h[hresp] == "1" {
            let a: u32 = h[adults]
                .parse()
                .expect("eligible adults of a responding household");
            let n: u32 = h[size].parse().expect("household size");
            assert!((1..=n.min(12)).contains(&a), "{h:?}");
            assert!(!h[burglary].is_empty(), "{h:?}");
            responding.insert(h[hid].clone(), a);
        } else {
            assert_eq!(h[hresp], "0");
            assert!(h[adults].is_empty() && h[burglary].is_empty(), "{h:?}");
        }
    }
    let nonresponse = 1.0 - responding.len() as f64 / households.len() as f64;
    assert!((0.05..0.25).contains(&nonresponse), "{nonresponse}");

    let (pid, link, presp, sex, assault) = (
        column(&p_header, "resp_id"),
        column(&p_header, "hh_id"),
        column(&p_header, "responded"),
        column(&p_header, "sex"),
        column(&p_header, "assault_12m"),
    );
    // Exactly one person per responding household, and no other household.
    let linked: std::collections::BTreeSet<&String> = persons.iter().map(|p| &p[link]).collect();
    assert_eq!(linked.len(), persons.len(), "one person per household");
    assert!(linked.iter().copied().eq(responding.keys()));
    let mut respondents = 0;
    for p in &persons {
        // resp_id = household id × 100 + the selected adult's line among the eligible adults.
        let id: u64 = p[pid].parse().expect("person id");
        let h: u64 = p[link].parse().expect("household id");
        assert_eq!(id / 100, h, "{p:?}");
        assert!(
            (1..=u64::from(responding[&p[link]])).contains(&(id % 100)),
            "{p:?}"
        );
        if p[presp] == "1" {
            respondents += 1;
            assert!(["1", "2"].contains(&p[sex].as_str()), "{p:?}");
        } else {
            assert!(p[sex].is_empty() && p[assault].is_empty(), "{p:?}");
        }
    }
    let person_nonresponse = 1.0 - respondents as f64 / persons.len() as f64;
    assert!(
        (0.04..0.18).contains(&person_nonresponse),
        "{person_nonresponse}"
    );
    assert!(
        stdout.contains(&format!("{} respondents", respondents)),
        "{stdout}"
    );
}

#[test]
fn synth_households_same_files_at_1_and_4_threads() {
    let dir = scratch("synth-households-threads");
    let mut files = Vec::new();
    for (threads, ext) in [
        ("1", "csv"),
        ("4", "csv"),
        ("1", "parquet"),
        ("4", "parquet"),
    ] {
        let name = format!("t{threads}.{ext}");
        let (code, _, stderr) = synth_households(
            &dir,
            &name,
            &["--rows", "20000", "--psu-size", "15"],
            threads,
        );
        assert_eq!(code, 0, "{stderr}");
        let read = |unit: &str| {
            std::fs::read(dir.join(format!("t{threads}_{unit}.{ext}"))).expect("generated file")
        };
        files.push((read("households"), read("persons")));
    }
    assert!(files[0] == files[1], "CSV differs between 1 and 4 threads");
    assert!(
        files[2] == files[3],
        "Parquet differs between 1 and 4 threads"
    );
}

#[test]
fn synth_households_files_ingest_with_zero_quarantined_rows() {
    use cvsurvey::ingest::{IngestSpec, read};
    use cvsurvey::questionnaire::Questionnaire;
    let dir = scratch("synth-households-ingest");
    let (code, _, stderr) = synth_households(
        &dir,
        "d/",
        &["--rows", "3000", "--psu-size", "20", "--format", "parquet"],
        "2",
    );
    assert_eq!(code, 0, "{stderr}");
    let q = Questionnaire::load(&root().join("questionnaires/cvs-households.toml"))
        .expect("questionnaire");
    for (file, part, id, response, required) in [
        (
            "households.parquet",
            q.household_part(),
            "hh_id",
            "hh_responded",
            vec![],
        ),
        (
            "persons.parquet",
            q.person_file_part(),
            "resp_id",
            "responded",
            vec!["hh_id".to_string()],
        ),
    ] {
        let spec = IngestSpec {
            path: dir.join("d").join(file),
            id: Some(id.into()),
            response: Some(response.into()),
            required_columns: required,
            ..Default::default()
        };
        let ingested = read(&spec, &part).expect("ingest");
        assert_eq!(
            ingested.rows_quarantined, 0,
            "{file}: {:?}",
            ingested.findings
        );
        // Codes, ranges and skip rules all kept: the only findings are blanks where asked.
        let kinds: Vec<_> = ingested.findings.counts().keys().map(|(k, _)| *k).collect();
        assert!(
            kinds
                .iter()
                .all(|k| *k == cvsurvey::ingest::FindingKind::ItemNonresponse),
            "{file}: {kinds:?}"
        );
        assert!(
            ingested.absent_variables.is_empty(),
            "{file}: {:?}",
            ingested.absent_variables
        );
        assert!(
            ingested.respondent.iter().any(|&r| !r),
            "{file} has nonrespondents"
        );
    }
}

#[test]
fn synth_households_bad_parameters_are_one_line_errors() {
    let dir = scratch("synth-households-bad");
    for (out, args, expect) in [
        ("x.csv", vec!["--rows", "0"], "--rows must be at least 1"),
        (
            "x.csv",
            vec!["--rows", "3000", "--psu-size", "3001"],
            "--psu-size 3001 is larger than --rows 3000",
        ),
        (
            "x.csv",
            vec!["--rows", "100", "--psu-size", "40"],
            "fewer than 2 PSUs per stratum",
        ),
    ] {
        let (code, _, stderr) = synth_households(&dir, out, &args, "2");
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // A folder for a single-unit questionnaire: which one file would it be?
    let q = root().join("questionnaires/cvs-core.toml");
    let folder = format!("{}/", dir.join("single").display());
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--rows",
        "100",
        "--regions",
        "2",
        "--out",
        &folder,
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is a folder"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("scratch")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn cvs_households_questionnaire_splits_into_household_and_person_parts() {
    use cvsurvey::questionnaire::{Level, Questionnaire};
    let q = Questionnaire::load(&root().join("questionnaires/cvs-households.toml"))
        .expect("questionnaire");
    assert!(q.has_households());
    let ids = |q: &Questionnaire| {
        q.indicators
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>()
    };
    let household = q.household_part();
    let crimes = [
        "burglary",
        "vehicle_theft",
        "theft_from_vehicle",
        "vandalism",
    ];
    let mut expected: Vec<String> = crimes.iter().map(|c| format!("{c}_prevalence")).collect();
    expected.push("household_crime_prevalence".into());
    expected.extend(crimes.iter().map(|c| format!("{c}_incidence_per_1000")));
    expected.extend(crimes.iter().map(|c| format!("{c}_repeat")));
    expected.push("burglary_reporting_rate".into());
    assert_eq!(ids(&household), expected);
    assert!(
        household
            .variables
            .iter()
            .all(|v| v.level == Level::Household)
    );
    assert!(
        household
            .derived
            .iter()
            .all(|d| d.level == Level::Household)
    );
    assert_eq!(
        household.derived.len(),
        q.derived.len(),
        "every derived variable is household"
    );
    for v in [
        "hh_id",
        "region",
        "urban",
        "stratum",
        "psu",
        "psu_pop",
        "hh_weight",
        "eligible_adults",
    ] {
        assert_eq!(q.level_of(v), Some(Level::Household), "{v}");
    }
    let person = q.person_part();
    assert_eq!(ids(&person).len() + expected.len(), q.indicators.len());
    assert!(person.indicators.iter().all(|i| i.level == Level::Person));
    for id in [
        "bribery_paid_or_asked",
        "feel_safe_dark",
        "assault_reporting_rate",
        "robbery_reporting_rate",
    ] {
        assert!(ids(&person).iter().any(|i| i == id), "{id}");
    }
    let person_file = q.person_file_part();
    for v in [
        "resp_id",
        "responded",
        "sex",
        "age_group",
        "safe_dark",
        "bribe_paid",
        "assault_12m",
    ] {
        assert!(person_file.variable(v).is_some(), "{v}");
    }
    assert!(person_file.variable("burglary_12m").is_none());
    // SDMX breakdowns as in cvs-core.
    let sdmx = |v: &str| {
        q.variable(v)
            .and_then(|v| v.sdmx.clone())
            .expect("sdmx")
            .dimension
    };
    assert_eq!(
        [sdmx("sex"), sdmx("age_group"), sdmx("urban")],
        ["SEX", "AGE", "URBANISATION"]
    );
}

/// The demo of a survey of households and persons is what its README's command makes, and its
/// config names columns of the right files.
#[test]
fn demo_households_is_reproducible_and_consistent_with_its_config() {
    let demo = root().join("fixtures/demo-households");
    let dir = scratch("synth-demo-households");
    let out = format!("{}/", dir.display());
    let margins = dir.join("margins.csv");
    let q = root().join("questionnaires/cvs-households.toml");
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--rows",
        "3000",
        "--regions",
        "4",
        "--psu-size",
        "20",
        "--nonresponse",
        "0.12",
        "--seed",
        "11",
        "--out",
        &out,
        "--margins",
        s(&margins),
    ]);
    assert_eq!(code, 0, "{stderr}");
    for f in [
        "households.csv",
        "persons.csv",
        "household_margins.csv",
        "margins.csv",
    ] {
        let made = std::fs::read(dir.join(f)).expect("made");
        let committed = std::fs::read(demo.join(f)).expect("committed");
        assert!(made == committed, "{f} differs from the README's command");
    }
    let readme = std::fs::read_to_string(demo.join("README.md")).expect("README");
    assert!(readme.contains("--rows 3000 --regions 4 --psu-size 20 --nonresponse 0.12 --seed 11"));

    let config = cvsurvey::config::Pipeline::load(&demo.join("pipeline.toml")).expect("config");
    let hh = config.households.as_ref().expect("household file");
    let (hh_header, households) = read_csv(&hh.path);
    let (p_header, _) = read_csv(&config.data.path);
    for c in [&hh.id, hh.response.as_ref().expect("response")]
        .into_iter()
        .chain(&config.design.strata)
        .chain(&config.design.psu)
        .chain([&config.design.weight])
    {
        column(&hh_header, c);
    }
    let cvsurvey::config::PersonWeight::SelectionFactor(factor) = &hh.person_weight else {
        panic!("selection factor expected: {:?}", hh.person_weight);
    };
    column(&hh_header, factor);
    column(&p_header, &hh.person_household_id);
    column(&p_header, config.data.id.as_ref().expect("person id"));
    column(
        &p_header,
        config.data.response.as_ref().expect("person response"),
    );
    // Household margins: every variable a household column, each adding up to the same total.
    let margin_totals = |path: &Path, header: &[String]| {
        let mut totals = std::collections::BTreeMap::<String, f64>::new();
        for line in std::fs::read_to_string(path)
            .expect("margins")
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split(',').collect();
            column(header, f[0]);
            *totals.entry(f[0].into()).or_default() += f[2].parse::<f64>().expect("total");
        }
        totals
    };
    let hm = margin_totals(&demo.join("household_margins.csv"), &hh_header);
    assert_eq!(hm.keys().collect::<Vec<_>>(), ["region", "urban"]);
    let weight = column(&hh_header, "hh_weight");
    let sum: f64 = households
        .iter()
        .map(|h| h[weight].parse::<f64>().expect("weight"))
        .sum();
    assert!(hm.values().all(|&t| t == sum.round()), "{hm:?} vs {sum}");
    let pm = margin_totals(&demo.join("margins.csv"), &p_header);
    assert_eq!(pm.keys().collect::<Vec<_>>(), ["age_group", "sex"]);
    assert_eq!(pm["age_group"], pm["sex"]);
    let schemes = |w: &[cvsurvey::weighting::WeightingSpec]| {
        w.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(schemes(&config.household_weighting), ["hh_raked"]);
    assert_eq!(schemes(&config.weighting), ["raked"]);
}
