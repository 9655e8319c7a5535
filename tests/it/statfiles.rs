//! SPSS and Stata input: the demo survey saved as .sav, .zsav and .dta (fixtures/statfiles)
//! gives exactly the estimates of the CSV; dictionary problems are findings, type clashes are
//! errors naming file and variable.

use std::path::{Path, PathBuf};

use cvsurvey::ingest::{FindingKind, IngestSpec};
use cvsurvey::questionnaire::Questionnaire;

use crate::common::{Row, rel_diff, root, scratch};

fn run_on(data: &std::path::Path, name: &str) -> Vec<crate::common::Row> {
    crate::common::run_demo_on(data, name)
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
        id: Some("resp_id".into()),
        response: Some("responded".into()),
        design_columns: vec!["stratum".into(), "psu".into()],
        positive_columns: vec!["design_weight".into()],
        required_columns: Vec::new(),
        column_patterns: Vec::new(),
        na: Vec::new(),
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

fn imported(file: &Path, codebook: Option<&Path>) -> Questionnaire {
    let text = cvsurvey::questionnaire::import::import(file, codebook).expect("import");
    assert!(text.starts_with("# Questionnaire drafted"), "{text}");
    assert!(text.contains("skip logic"));
    Questionnaire::from_toml_str(&text, Path::new("imported.toml")).expect("imported TOML parses")
}

fn missing_of(q: &Questionnaire, name: &str) -> Vec<(String, MissingMeaning)> {
    q.variable(name)
        .expect(name)
        .missing
        .iter()
        .map(|m| (m.code.clone(), m.meaning))
        .collect()
}

use cvsurvey::questionnaire::MissingMeaning;

#[test]
fn imported_questionnaires_describe_the_files_and_read_them() {
    for file in ["demo.sav", "demo.zsav", "demo.dta", "demo_extmiss.dta"] {
        let q = imported(&statfile(file), None);
        assert_eq!(q.variables.len(), 45, "{file}");
        let bribe = q.variable("bribe_police").expect("bribe_police");
        let codes: Vec<&str> = bribe.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["1", "2"], "{file}");
        let (dk, rf) = if file == "demo_extmiss.dta" {
            (".a", ".b")
        } else {
            ("8", "9")
        };
        assert_eq!(
            missing_of(&q, "bribe_police"),
            [
                (dk.to_string(), MissingMeaning::DontKnow),
                (rf.to_string(), MissingMeaning::Refused)
            ],
            "{file}"
        );
        if file != "demo_extmiss.dta" {
            let label = &q.variable("bribe_police").expect("v").label;
            assert!(
                label.starts_with("Did you give the police money"),
                "{label}"
            );
        }
        // The draft reads its own file: every row, the same missing states as cvs-core.
        let got = cvsurvey::ingest::read(&spec(statfile(file)), &q).expect("read");
        assert_eq!(got.rows_read, 20028, "{file}");
        let reference = cvsurvey::ingest::read(&spec(statfile(file)), &core()).expect("core");
        for name in ["bribe_police", "safe_dark", "education"] {
            let a = got.frame.column(name).expect(name);
            let b = reference.frame.column(name).expect(name);
            let dk = |c: &cvsurvey::frame::Column| {
                c.state
                    .iter()
                    .filter(|s| **s == cvsurvey::frame::CellState::DontKnow)
                    .count()
            };
            assert_eq!(dk(a), dk(b), "{file} {name}");
        }
    }
}

#[test]
fn csv_with_a_codebook_imports() {
    let dir = scratch("import-codebook");
    let cb = dir.join("codebook.csv");
    std::fs::write(
        &cb,
        "variable,label,type,code,code_label,missing\n\
         sex,Sex,,1,Male,\n\
         sex,,,2,Female,\n\
         bribe_police,Gave a bribe to the police,categorical,1,Yes,\n\
         bribe_police,,,2,No,\n\
         bribe_police,,,8,DK,yes\n\
         bribe_police,,,9,Declined,refused\n\
         region,Region,,R01,North,\n\
         region,,,R02,South,\n\
         age,Age in years,integer,,,\n\
         age,,,99,Not stated,no_response\n",
    )
    .expect("codebook");
    let q = imported(&root().join("fixtures/demo/data.csv"), Some(&cb));
    assert_eq!(q.variables.len(), 45);
    assert_eq!(q.variable("sex").expect("sex").label, "Sex");
    assert_eq!(
        missing_of(&q, "bribe_police"),
        [
            ("8".to_string(), MissingMeaning::DontKnow),
            ("9".to_string(), MissingMeaning::Refused)
        ]
    );
    assert!(q.variable("bribe_police").expect("b").numeric_storage);
    assert_eq!(
        missing_of(&q, "age"),
        [("99".to_string(), MissingMeaning::NoResponse)]
    );
    assert!(!q.variable("region").expect("region").numeric_storage);
    // Undeclared variables get their type from the data.
    assert_eq!(
        q.variable("design_weight").expect("w").var_type,
        cvsurvey::questionnaire::VarType::Numeric
    );
    assert_eq!(
        q.variable("stratum").expect("s").var_type,
        cvsurvey::questionnaire::VarType::Text
    );

    std::fs::write(
        &cb,
        "variable,label,type,code,code_label,missing\nsex,Sex,,1,Male,maybe\n",
    )
    .expect("codebook");
    let e =
        cvsurvey::questionnaire::import::import(&root().join("fixtures/demo/data.csv"), Some(&cb))
            .expect_err("bad missing");
    assert!(e.to_string().contains("codebook.csv:2"), "{e}");
}

#[test]
fn cli_prints_the_draft() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(["questionnaire", "import"])
        .arg(statfile("demo.sav"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf8");
    Questionnaire::from_toml_str(&text, Path::new("stdout.toml")).expect("parses");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(["questionnaire", "import"])
        .arg(root().join("fixtures/statfiles/make_statfiles.py"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make_statfiles.py"));
}

fn mini(q1: &str) -> Questionnaire {
    let text = format!(
        "[questionnaire]\nid = \"mini\"\nversion = \"1\"\n\n\
         [[variables]]\nname = \"id\"\ntype = \"integer\"\n\n\
         [[variables]]\nname = \"q1\"\ncodes = {{ 1 = \"Yes\", 2 = \"No\" }}\n{q1}\n\n\
         [[variables]]\nname = \"q2\"\ncodes = {{ 1 = \"Yes\", 2 = \"No\" }}\n"
    );
    Questionnaire::from_toml_str(&text, Path::new("mini.toml")).expect("mini questionnaire")
}

#[test]
fn stata_extended_missing_values_map_to_declared_missing_codes() {
    use cvsurvey::frame::CellState;
    let spec = IngestSpec {
        path: statfile("small_extmiss.dta"),
        id: Some("id".into()),
        ..Default::default()
    };
    let undeclared = |got: &cvsurvey::ingest::Ingested| -> Vec<(String, String)> {
        got.findings
            .iter()
            .filter(|f| f.kind == FindingKind::UndeclaredLabel)
            .map(|f| (f.column.clone(), f.value.clone()))
            .collect()
    };
    // By meaning: .a is labelled "Don't know", the questionnaire's don't-know code is 8.
    let got =
        cvsurvey::ingest::read(&spec, &mini("missing = { 8 = \"dont_know\" }")).expect("read");
    let q1 = got.frame.column("q1").expect("q1");
    assert_eq!(
        q1.state,
        [CellState::Value, CellState::DontKnow, CellState::NoResponse]
    );
    // .c of q2 is unlabelled and undeclared: blank (item nonresponse) and reported once.
    let q2 = got.frame.column("q2").expect("q2");
    assert_eq!(q2.state[0], CellState::NoResponse);
    assert_eq!(undeclared(&got), [("q2".to_string(), ".c".to_string())]);
    assert_eq!(got.rows_quarantined, 0);

    // Declared as ".a": that code wins over the label.
    let got =
        cvsurvey::ingest::read(&spec, &mini("missing = { \".a\" = \"refused\" }")).expect("read");
    assert_eq!(
        got.frame.column("q1").expect("q1").state[1],
        CellState::Refused
    );

    // Not declared at all: blank, and the labelled .a is reported.
    let got = cvsurvey::ingest::read(&spec, &mini("")).expect("read");
    assert_eq!(
        got.frame.column("q1").expect("q1").state[1],
        CellState::NoResponse
    );
    let u = undeclared(&got);
    assert!(u.contains(&("q1".to_string(), ".a".to_string())), "{u:?}");
    assert_eq!(
        u.iter().filter(|(c, v)| c == "q1" && v == ".a").count(),
        1,
        "{u:?}"
    );
}
