//! SPSS and Stata input: the demo survey saved as .sav, .zsav and .dta (fixtures/statfiles)
//! gives exactly the estimates of the CSV; dictionary problems are findings, type clashes are
//! errors naming file and variable.

use std::path::{Path, PathBuf};

use cvsurvey::ingest::{FindingKind, IngestSpec};
use cvsurvey::questionnaire::Questionnaire;

use crate::common::{Row, read_estimates, rel_diff, relocated_config, root, scratch};

fn run_on(data: &Path, name: &str) -> Vec<Row> {
    let dir = scratch(name);
    let config = relocated_config(&root().join("fixtures/demo/pipeline.toml"), &dir, &[]);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("path = ") {
                format!("path = \"{}\"", data.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).expect("write config");
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    read_estimates(&dir.join("out/estimates.parquet")).0
}

fn assert_same(csv: &[Row], other: &[Row], what: &str) {
    assert_eq!(csv.len(), other.len(), "{what}: number of estimates");
    for (x, y) in csv.iter().zip(other) {
        let key = |r: &Row| {
            (
                r.indicator.clone(),
                r.weighting.clone(),
                r.domain_var.clone(),
                r.domain_value.clone(),
                r.ci_method.clone(),
            )
        };
        assert_eq!(key(x), key(y), "{what}");
        for (a, b) in [
            (x.estimate, y.estimate),
            (x.se, y.se),
            (x.ci_low, y.ci_low),
            (x.ci_high, y.ci_high),
            (x.deff, y.deff),
        ] {
            match (a, b) {
                (Some(a), Some(b)) => assert!(
                    rel_diff(b, a) < 1e-12,
                    "{what}: {} {}={}: {a} vs {b}",
                    x.indicator,
                    x.domain_var,
                    x.domain_value
                ),
                (a, b) => assert_eq!(a, b, "{what}: {}", x.indicator),
            }
        }
        assert_eq!(x.n_unweighted, y.n_unweighted, "{what}: {}", x.indicator);
        assert_eq!(x.n_weighted, y.n_weighted, "{what}: {}", x.indicator);
    }
}

fn statfile(name: &str) -> PathBuf {
    root().join("fixtures/statfiles").join(name)
}

#[test]
fn spss_and_stata_files_give_the_csv_estimates() {
    let csv = run_on(&root().join("fixtures/demo/data.csv"), "stat-csv");
    assert!(!csv.is_empty());
    for (file, name) in [
        ("demo.sav", "stat-sav"),
        ("demo.zsav", "stat-zsav"),
        ("demo.dta", "stat-dta"),
        ("demo_extmiss.dta", "stat-dta-ext"),
    ] {
        let rows = run_on(&statfile(file), name);
        assert_same(&csv, &rows, file);
    }
}

fn spec(path: PathBuf) -> IngestSpec {
    IngestSpec {
        path,
        id: "resp_id".into(),
        response: Some("responded".into()),
        design_columns: vec!["stratum".into(), "psu".into()],
        positive_columns: vec!["design_weight".into()],
        required_columns: Vec::new(),
    }
}

fn core() -> Questionnaire {
    Questionnaire::load(&root().join("questionnaires/cvs-core.toml")).expect("cvs-core")
}

fn edited_core(from: &str, to: &str) -> Questionnaire {
    let path = root().join("questionnaires/cvs-core.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from}");
    Questionnaire::from_toml_str(&text.replacen(from, to, 1), &path).expect("edited cvs-core")
}

#[test]
fn same_rows_findings_and_states_as_csv() {
    let q = core();
    let csv =
        cvsurvey::ingest::read(&spec(root().join("fixtures/demo/data.csv")), &q).expect("csv");
    for file in ["demo.sav", "demo.zsav", "demo.dta", "demo_extmiss.dta"] {
        let got = cvsurvey::ingest::read(&spec(statfile(file)), &q).expect(file);
        assert_eq!(got.rows_read, csv.rows_read, "{file}");
        assert_eq!(got.rows_quarantined, csv.rows_quarantined, "{file}");
        assert_eq!(
            got.findings.len(),
            csv.findings.len(),
            "{file}: {:?}",
            got.findings.first()
        );
        for name in [
            "bribe_police",
            "education",
            "safe_dark",
            "region",
            "stratum",
            "age",
        ] {
            let a = csv.frame.column(name).expect(name);
            let b = got.frame.column(name).expect(name);
            assert_eq!(a.state, b.state, "{file}: states of {name}");
            for r in 0..a.len() {
                assert_eq!(a.display(r), b.display(r), "{file}: {name} row {r}");
            }
        }
    }
}

#[test]
fn labels_unknown_to_the_questionnaire_are_findings_not_errors() {
    // The questionnaire no longer knows education = 9 (refused), nor education = 4.
    let q = edited_core("missing = { 9 = \"refused\" }", "");
    let q2 = edited_core(", 4 = \"Tertiary\" }", " }");
    for (q, column, code) in [(&q, "education", "9"), (&q2, "education", "4")] {
        for file in ["demo.sav", "demo.dta"] {
            let got = cvsurvey::ingest::read(&spec(statfile(file)), q).expect(file);
            let label: Vec<_> = got
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::UndeclaredLabel)
                .collect();
            assert_eq!(label.len(), 1, "{file}: {label:?}");
            assert_eq!(label[0].row, 0);
            assert_eq!(label[0].column, column);
            assert_eq!(label[0].value, code);
            assert!(!FindingKind::UndeclaredLabel.quarantines());
        }
    }
    // Extended missing .b of education means "refused", which the questionnaire no longer has:
    // read as blank and reported.
    let got = cvsurvey::ingest::read(&spec(statfile("demo_extmiss.dta")), &q).expect("dta");
    let ext: Vec<_> = got
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::UndeclaredLabel && f.column == "education")
        .collect();
    assert!(ext.iter().any(|f| f.value == ".b"), "{ext:?}");
}

#[test]
fn text_variable_where_numbers_are_declared_is_an_error_naming_file_and_variable() {
    let q = edited_core(
        "name = \"stratum\"\nlabel = \"Design stratum (region x area type)\"\ntype = \"text\"",
        "name = \"stratum\"\nlabel = \"Design stratum (region x area type)\"\ntype = \"integer\"",
    );
    for file in ["demo.sav", "demo.zsav", "demo.dta"] {
        let e = cvsurvey::ingest::read(&spec(statfile(file)), &q)
            .err()
            .unwrap_or_else(|| panic!("{file} must fail"));
        let msg = e.to_string();
        assert!(msg.contains(file) && msg.contains("stratum"), "{msg}");
    }
}
