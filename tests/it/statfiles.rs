//! SPSS and Stata input: the demo survey saved as .sav, .zsav and .dta (fixtures/statfiles)
//! gives exactly the estimates of the CSV; dictionary problems are findings, type clashes are
//! errors naming file and variable.

use std::path::{Path, PathBuf};

use cvsurvey::ingest::{FindingAction, FindingKind, IngestSpec, InvalidAnswer};
use cvsurvey::questionnaire::Questionnaire;

use crate::common::{Row, cvs_core, demo_ingest_spec, rel_diff, root, scratch};

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

fn edited_core(from: &str, to: &str) -> Questionnaire {
    let path = root().join("questionnaires/cvs-core.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from}");
    Questionnaire::from_toml_str(&text.replacen(from, to, 1), &path).expect("edited cvs-core")
}

#[test]
fn same_rows_findings_and_states_as_csv() {
    let q = cvs_core();
    let csv = cvsurvey::ingest::read(&demo_ingest_spec(root().join("fixtures/demo/data.csv")), &q)
        .expect("csv");
    for file in ["demo.sav", "demo.zsav", "demo.dta", "demo_extmiss.dta"] {
        let got = cvsurvey::ingest::read(&demo_ingest_spec(statfile(file)), &q).expect(file);
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
            let got = cvsurvey::ingest::read(&demo_ingest_spec(statfile(file)), q).expect(file);
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
    let got =
        cvsurvey::ingest::read(&demo_ingest_spec(statfile("demo_extmiss.dta")), &q).expect("dta");
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
        let e = cvsurvey::ingest::read(&demo_ingest_spec(statfile(file)), &q)
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
        assert_eq!(q.variables.len(), 46, "{file}");
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
        let got = cvsurvey::ingest::read(&demo_ingest_spec(statfile(file)), &q).expect("read");
        assert_eq!(got.rows_read, 20028, "{file}");
        let reference =
            cvsurvey::ingest::read(&demo_ingest_spec(statfile(file)), &cvs_core()).expect("core");
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
    assert_eq!(q.variables.len(), 46, "every column of the demo file");
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
            .map(|f| (f.column.to_string(), f.value.to_string()))
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

/// Every SPSS and Stata file in fixtures/statfiles.
fn statfile_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/statfiles"))
        .expect("fixtures/statfiles")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "sav" | "zsav" | "por" | "dta"))
        })
        .collect();
    files.sort();
    files
}

/// Draft a questionnaire from `file`, then read `file` with it (every row a respondent, the
/// first variable as id).
fn draft_and_read(file: &Path) -> (String, Questionnaire, cvsurvey::ingest::Ingested) {
    let text = cvsurvey::questionnaire::import::import(file, None)
        .unwrap_or_else(|e| panic!("{}: import: {e}", file.display()));
    let q = Questionnaire::from_toml_str(&text, Path::new("draft.toml"))
        .unwrap_or_else(|e| panic!("{}: draft does not load: {e}\n{text}", file.display()));
    let id = q.variables[0].name.clone();
    let spec = IngestSpec {
        path: file.to_path_buf(),
        id: Some(id),
        ..Default::default()
    };
    let got = cvsurvey::ingest::read(&spec, &q).unwrap_or_else(|e| {
        panic!(
            "{}: the draft does not read its file: {e}\n{text}",
            file.display()
        )
    });
    (text, q, got)
}

#[test]
fn every_drafted_questionnaire_validates_the_file_it_was_drafted_from() {
    let files = statfile_fixtures();
    assert!(files.len() >= 18, "{files:?}");
    for file in &files {
        let (text, _, got) = draft_and_read(file);
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        assert_eq!(
            got.rows_quarantined,
            0,
            "{name}: {:?}\n{text}",
            got.findings.first()
        );
        let other: Vec<_> = got
            .findings
            .iter()
            .filter(|f| {
                !matches!(
                    f.kind,
                    FindingKind::ItemNonresponse | FindingKind::NonrespondentAnswers
                )
            })
            .collect();
        assert!(other.is_empty(), "{name}: {other:?}\n{text}");
        // Item nonresponse only where the file has a blank (system missing, empty string).
        assert!(got.rows_read > 0, "{name}");
    }
}

fn states(got: &cvsurvey::ingest::Ingested, name: &str) -> Vec<cvsurvey::frame::CellState> {
    got.frame
        .column(name)
        .expect(name)
        .state
        .iter()
        .copied()
        .collect()
}

fn shown(got: &cvsurvey::ingest::Ingested, name: &str) -> Vec<Option<String>> {
    let c = got.frame.column(name).expect(name);
    (0..c.len()).map(|r| c.display(r)).collect()
}

#[test]
fn a_string_variable_with_number_like_codes_is_drafted_as_text_codes() {
    use cvsurvey::frame::CellState::*;
    let file = statfile("draft_strcodes.sav");
    let (text, q, got) = draft_and_read(&file);
    assert!(
        text.contains("type = \"text\"\ncodes = { \"1\" = \"Yes\", \"2\" = \"No\" }"),
        "{text}"
    );
    let agree = q.variable("agree").expect("agree");
    assert!(!agree.numeric_storage);
    assert_eq!(
        shown(&got, "agree"),
        [
            Some("1".into()),
            Some("2".into()),
            None,
            None,
            Some("1".into())
        ]
    );
    assert_eq!(
        states(&got, "agree"),
        [Value, Value, DontKnow, NoResponse, Value]
    );

    // Written by hand: quoted codes on a text variable read the file; compared as text.
    let hand = r#"
[questionnaire]
id = "hand"
version = "1"
[[variables]]
name = "id"
type = "integer"
[[variables]]
name = "agree"
type = "text"
codes = { "1" = "Yes", "2" = "No" }
missing = { "8" = "dont_know" }
[[indicators]]
id = "agree_share"
kind = "proportion"
value = 'agree == "1"'
"#;
    let q = Questionnaire::from_toml_str(hand, Path::new("hand.toml")).expect("hand");
    let spec = IngestSpec {
        path: file.clone(),
        id: Some("id".into()),
        ..Default::default()
    };
    let got = cvsurvey::ingest::read(&spec, &q).expect("text codes read the string variable");
    assert_eq!(got.rows_quarantined, 0);
    assert_eq!(
        states(&got, "agree"),
        [Value, Value, DontKnow, NoResponse, Value]
    );
    // Declared categorical (numbers), the same codes clash with the file's text storage.
    let numbers = hand
        .replace("type = \"text\"\ncodes", "type = \"categorical\"\ncodes")
        .replace(r#"'agree == "1"'"#, "'agree == 1'");
    let q = Questionnaire::from_toml_str(&numbers, Path::new("hand.toml")).expect("numbers");
    let e = cvsurvey::ingest::read(&spec, &q).expect_err("text stored, numbers declared");
    assert!(e.to_string().contains("type = \"text\""), "{e}");
}

#[test]
fn a_scale_labelled_at_its_ends_is_drafted_as_an_integer_with_its_range() {
    use cvsurvey::frame::CellState::*;
    for (file, refused) in [("draft_scale.sav", "99"), ("draft_scale.dta", "\".r\"")] {
        let (text, q, got) = draft_and_read(&statfile(file));
        let trust = q.variable("trust").expect("trust");
        assert_eq!(
            trust.var_type,
            cvsurvey::questionnaire::VarType::Integer,
            "{file}"
        );
        assert_eq!(trust.range, Some((1.0, 7.0)), "{file}");
        assert!(trust.codes.is_empty(), "{file}");
        // The labels are kept, in a comment above the variable.
        assert!(
            text.contains("1 = \"Not at all\", 7 = \"Completely\""),
            "{file}: {text}"
        );
        assert!(
            text.contains(&format!(
                "missing = {{ {refused} = {{ meaning = \"refused\""
            )),
            "{file}: {text}"
        );
        assert_eq!(got.rows_quarantined, 0, "{file}");
        let st = states(&got, "trust");
        assert_eq!(
            st.iter().filter(|s| **s == Value).count(),
            8,
            "{file}: {st:?}"
        );
        assert_eq!(st[7], Refused, "{file}");
        assert_eq!(st[8], NoResponse, "{file}");
    }
}

#[test]
fn stata_extended_missing_labels_are_drafted_as_missing_codes() {
    use cvsurvey::frame::CellState::*;
    let (text, q, got) = draft_and_read(&statfile("draft_extlabels.dta"));
    assert!(!text.contains("cannot be a missing code"), "{text}");
    let codes = |name: &str| -> Vec<(String, MissingMeaning)> { missing_of(&q, name) };
    assert_eq!(
        codes("income"),
        [
            (".d".to_string(), MissingMeaning::DontKnow),
            (".h".to_string(), MissingMeaning::Other),
            (".r".to_string(), MissingMeaning::Refused),
            // Unlabelled, but in the data.
            (".z".to_string(), MissingMeaning::Other),
        ]
    );
    assert!(q.variable("income").expect("income").numeric_storage);
    assert_eq!(
        codes("weight_kg"),
        [(".a".to_string(), MissingMeaning::Other)]
    );
    assert_eq!(
        states(&got, "income"),
        [Value, DontKnow, Value, Refused, OtherMissing, OtherMissing]
    );
    assert_eq!(
        shown(&got, "weight_kg")[..2],
        [Some("70.5".into()), Some("81.25".into())]
    );
    assert_eq!(states(&got, "weight_kg")[2], OtherMissing);
    assert_eq!(
        states(&got, "q1"),
        [Value, Value, OtherMissing, Value, Value, NoResponse]
    );
}

#[test]
fn spss_string_user_missing_values_are_drafted_and_read() {
    use cvsurvey::frame::CellState::*;
    let (text, q, got) = draft_and_read(&statfile("draft_strmiss.sav"));
    // A short string (missing values in the variable record) and a long one (record 7.22).
    assert_eq!(
        missing_of(&q, "answer"),
        [
            ("DK".to_string(), MissingMeaning::DontKnow),
            ("RF".to_string(), MissingMeaning::Other)
        ],
        "{text}"
    );
    assert_eq!(
        missing_of(&q, "comment"),
        [("NOANSWER".to_string(), MissingMeaning::Other)],
        "{text}"
    );
    assert_eq!(
        states(&got, "answer"),
        [Value, DontKnow, OtherMissing, NoResponse, Value]
    );
    assert_eq!(
        states(&got, "comment"),
        [Value, OtherMissing, Value, OtherMissing, NoResponse]
    );
}

#[test]
fn spss_missing_ranges_are_drafted_as_missing_ranges() {
    use cvsurvey::frame::CellState::*;
    let (text, q, got) = draft_and_read(&statfile("draft_ranges.sav"));
    assert!(!text.contains("only its labelled values"), "{text}");
    let hours = q.variable("hours").expect("hours");
    assert_eq!(hours.missing_ranges.len(), 1, "{text}");
    assert_eq!(
        (hours.missing_ranges[0].low, hours.missing_ranges[0].high),
        (97.0, 99.0)
    );
    let debt = q.variable("debt").expect("debt");
    assert_eq!(debt.missing_ranges[0].low, f64::NEG_INFINITY, "LO");
    // hours: 40, 97 (labelled "Refused"), 98, 12, 99, blank.
    assert_eq!(
        states(&got, "hours"),
        [
            Value,
            Refused,
            OtherMissing,
            Value,
            OtherMissing,
            NoResponse
        ]
    );
    // debt: 15.5, -1, -2.5, 0, 1200.25, -99 (LO THRU -1).
    assert_eq!(
        states(&got, "debt"),
        [
            Value,
            OtherMissing,
            OtherMissing,
            Value,
            Value,
            OtherMissing
        ]
    );
    // q5: 1, 5, 8 ("Don't know"), 9 (in 8 THRU 9), 0 ("Not asked", the discrete value), 3.
    assert_eq!(
        states(&got, "q5"),
        [Value, Value, DontKnow, OtherMissing, NotAsked, Value]
    );
}

#[test]
fn missing_ranges_apply_to_csv_data_too() {
    use cvsurvey::frame::CellState::*;
    let dir = scratch("missing-ranges-csv");
    let data = dir.join("data.csv");
    std::fs::write(&data, "id,hours\n1,40\n2,97\n3,98.5\n4,-3\n5,\n6,100\n").expect("csv");
    let q = Questionnaire::from_toml_str(
        "[questionnaire]\nid = \"t\"\nversion = \"1\"\n\
         [[variables]]\nname = \"id\"\ntype = \"integer\"\n\
         [[variables]]\nname = \"hours\"\ntype = \"numeric\"\nrange = [0, 99]\n\
         missing = { 97 = \"refused\" }\n\
         missing_ranges = [{ low = 97, high = 99, meaning = \"dont_know\" }, \
         { low = -inf, high = -1, meaning = \"not_applicable\" }]\n",
        Path::new("q.toml"),
    )
    .expect("questionnaire");
    let spec = IngestSpec {
        path: data,
        id: Some("id".into()),
        ..Default::default()
    };
    let got = cvsurvey::ingest::read(&spec, &q).expect("read");
    // 97 is its own code (refused); 98.5 is in the range; 100 is out of range, not missing:
    // blanked, it is item nonresponse like the blank of row 5.
    assert_eq!(
        states(&got, "hours"),
        [Value, Refused, DontKnow, NotAsked, NoResponse, NoResponse]
    );
    assert_eq!(got.rows_quarantined, 0);
    let out_of_range = |got: &cvsurvey::ingest::Ingested| {
        got.findings
            .iter()
            .filter(|f| f.kind == FindingKind::OutOfRange && f.value == "100")
            .map(|f| f.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(out_of_range(&got), [FindingAction::Blanked]);
    let spec = IngestSpec {
        invalid_answer: InvalidAnswer::Quarantine,
        ..spec
    };
    let got = cvsurvey::ingest::read(&spec, &q).expect("read");
    assert_eq!(
        states(&got, "hours"),
        [Value, Refused, DontKnow, NotAsked, NoResponse]
    );
    assert_eq!(got.rows_quarantined, 1);
    assert_eq!(out_of_range(&got), [FindingAction::Quarantined]);
}

#[test]
fn stata_release_113_is_read_with_labels_and_extended_missing_values() {
    use cvsurvey::frame::CellState::*;
    let file = statfile("draft_v113.dta");
    let dict = cvsurvey::ingest::statfile::read_dictionary(&file).expect("113 dictionary");
    assert_eq!(dict.version, "113");
    assert_eq!(dict.label, "release 113 test file");
    let (_, q, got) = draft_and_read(&file);
    assert_eq!(
        missing_of(&q, "q1"),
        [(".a".to_string(), MissingMeaning::DontKnow)]
    );
    let size: Vec<&str> = q
        .variable("size")
        .expect("size")
        .codes
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(size, ["Small", "Medium", "Large"]);
    assert_eq!(
        states(&got, "q1"),
        [Value, Value, DontKnow, NoResponse, Value]
    );
    assert_eq!(
        shown(&got, "name"),
        [
            Some("Ana".into()),
            Some("Zoë".into()),
            None,
            Some("Li".into()),
            Some("Bo".into())
        ]
    );
    assert_eq!(
        shown(&got, "score"),
        [
            Some("1.5".into()),
            Some("2.25".into()),
            None,
            Some("0".into()),
            Some("-3".into())
        ]
    );
}

#[test]
fn older_stata_releases_name_a_converter() {
    let dir = scratch("old-formats");
    // small_v113.dta relabelled as release 112 (Stata 8 beta): refused with the ways out.
    let mut bytes = std::fs::read(statfile("small_v113.dta")).expect("v113");
    bytes[0] = 112;
    let old = dir.join("old.dta");
    std::fs::write(&old, &bytes).expect("write");
    let e = cvsurvey::questionnaire::import::import(&old, None).expect_err("112");
    let msg = e.to_string();
    assert!(
        msg.contains("old.dta") && msg.contains("112") && msg.contains("haven::write_dta"),
        "{msg}"
    );
    let q = mini("");
    let spec = IngestSpec {
        path: old,
        id: Some("id".into()),
        ..Default::default()
    };
    let e = cvsurvey::ingest::read(&spec, &q).expect_err("112");
    assert!(e.to_string().contains("saveold"), "{e}");
}

#[test]
fn an_spss_portable_file_reads_as_the_system_file_pspp_wrote_beside_it() {
    use cvsurvey::frame::CellState::*;
    // make_por.sps wrote the same data with EXPORT (small.por) and SAVE (small_por.sav).
    // Portable files keep 8-character upper-case names; the system file has the lower-case
    // ones. Draft from each, read each with its draft: the same cells, states and labels.
    let (_, q_por, por) = draft_and_read(&statfile("small.por"));
    let (_, q_sav, sav) = draft_and_read(&statfile("small_por.sav"));
    assert_eq!(por.rows_read, 6);
    assert_eq!(por.rows_read, sav.rows_read);
    for v in &q_sav.variables {
        let upper = v.name.to_uppercase();
        let w = q_por.variable(&upper).expect(&upper);
        assert_eq!(w.var_type, v.var_type, "{upper}");
        assert_eq!(w.codes, v.codes, "{upper}");
        assert_eq!(w.missing, v.missing, "{upper}");
        assert_eq!(w.missing_ranges, v.missing_ranges, "{upper}");
        assert_eq!(w.range, v.range, "{upper}");
        assert_eq!(states(&por, &upper), states(&sav, &v.name), "{upper}");
        assert_eq!(shown(&por, &upper), shown(&sav, &v.name), "{upper}");
    }
    assert_eq!(
        shown(&por, "SCORE"),
        [
            Some("1.5".into()),
            None,
            Some("1000000.5".into()),
            None,
            Some("0.1".into()),
            Some("-0.001".into())
        ]
    );
    // -2.25 lies in LO THRU -1.
    assert_eq!(
        states(&por, "SCORE"),
        [Value, OtherMissing, Value, NoResponse, Value, Value]
    );
    assert_eq!(shown(&por, "NAME")[0].as_deref(), Some("Zoë"));
    assert_eq!(shown(&por, "NOTE")[4].as_deref(), Some("ÆØÅ"));
    assert_eq!(
        states(&por, "Q1"),
        [Value, DontKnow, NoResponse, Value, Refused, Value]
    );
    assert_eq!(
        states(&por, "HOURS"),
        [
            Value,
            Refused,
            OtherMissing,
            NoResponse,
            Value,
            OtherMissing
        ]
    );
    assert_eq!(states(&por, "NOTE")[1], OtherMissing);
    // The scale labelled at 1 and 7 only is an integer with its range.
    assert_eq!(
        q_por.variable("TRUST").expect("TRUST").range,
        Some((1.0, 7.0))
    );
}

#[test]
fn truncated_files_say_where_they_end_and_what_was_expected() {
    let dir = scratch("truncated");
    // Stata: cut inside the variable types (which start at byte 301) and inside the data.
    let bytes = std::fs::read(statfile("demo.dta")).expect("demo.dta");
    for (cut, section) in [
        (400usize, "the variable types"),
        (bytes.len() / 2, "the data rows"),
    ] {
        let p = dir.join(format!("cut{cut}.dta"));
        std::fs::write(&p, &bytes[..cut]).expect("write");
        let e = cvsurvey::questionnaire::import::import(&p, None).expect_err("truncated");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("cut{cut}.dta"))
                && msg.contains("truncated")
                && msg.contains(&format!("{cut} bytes"))
                && msg.contains(section),
            "{msg}"
        );
        assert!(!msg.contains("failed to fill whole buffer"), "{msg}");
    }
    // SPSS: cut in the dictionary and in the cases.
    let bytes = std::fs::read(statfile("demo.sav")).expect("demo.sav");
    for cut in [300usize, bytes.len() / 2, bytes.len() - 3] {
        let p = dir.join(format!("cut{cut}.sav"));
        std::fs::write(&p, &bytes[..cut]).expect("write");
        let e = cvsurvey::questionnaire::import::import(&p, None).expect_err("truncated");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("cut{cut}.sav"))
                && msg.contains("truncated")
                && msg.contains(&cut.to_string()),
            "{msg}"
        );
    }
}

#[test]
fn a_csv_with_a_byte_order_mark_mixed_line_endings_and_quotes_gives_the_same_estimates() {
    let plain = root().join("fixtures/demo/data.csv");
    let text = std::fs::read_to_string(&plain).expect("demo data");
    // As spreadsheet tools on Windows write it: a byte-order mark, every field quoted, CRLF
    // line endings, with some LF lines from a later append.
    let mut out = "\u{feff}".to_string();
    for (i, line) in text.lines().enumerate() {
        let quoted: Vec<String> = line.split(',').map(|f| format!("\"{f}\"")).collect();
        out.push_str(&quoted.join(","));
        out.push_str(if i % 3 == 2 { "\n" } else { "\r\n" });
    }
    let dir = scratch("stat-csv-windows");
    let windows = dir.join("data.csv");
    std::fs::write(&windows, out).expect("write");
    let expected = run_on(&plain, "stat-csv-plain");
    assert!(!expected.is_empty());
    assert_same(
        &expected,
        &run_on(&windows, "stat-csv-windows-run"),
        "quoted CRLF csv",
    );
}
