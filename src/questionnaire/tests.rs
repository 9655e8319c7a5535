//! Tests of questionnaire loading and of the cvs-core indicators against the R reference.

use std::path::{Path, PathBuf};

use super::*;
use crate::frame::{CellState, Column, ColumnData, Frame};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn cvs_core() -> Questionnaire {
    Questionnaire::load(&repo("questionnaires/cvs-core.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Test-only loader: reads a CSV into a frame following the questionnaire's codes, missing
/// codes and skip rules (blank and asked → NoResponse; blank and not asked → NotAsked). Keeps
/// only rows where `keep(header, record)` holds.
fn load_csv(
    q: &Questionnaire,
    path: &Path,
    keep: &dyn Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
) -> Frame {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = rdr.headers().expect("header").clone();
    let records: Vec<csv::StringRecord> = rdr
        .records()
        .map(|r| r.expect("record"))
        .filter(|r| keep(&header, r))
        .collect();
    let mut frame = Frame::new(records.len());
    let mut blanks: Vec<Vec<bool>> = Vec::new();
    for v in &q.variables {
        // Declared but absent (e.g. `fpc1` outside apiclus2): not loaded.
        let Some(idx) = header.iter().position(|h| h == v.name) else {
            blanks.push(Vec::new());
            continue;
        };
        let mut state = Vec::with_capacity(records.len());
        let mut blank = Vec::with_capacity(records.len());
        let mut values = Vec::new();
        let mut codes = Vec::new();
        let mut levels: Vec<String> = Vec::new();
        for r in &records {
            let cell = r.get(idx).unwrap_or("").trim();
            blank.push(cell.is_empty());
            let missing = v.missing.iter().find(|m| {
                m.code == cell || matches!((m.code.parse::<f64>(), cell.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
            });
            let s = if cell.is_empty() {
                CellState::NoResponse
            } else if let Some(m) = missing {
                match m.meaning {
                    MissingMeaning::DontKnow => CellState::DontKnow,
                    MissingMeaning::Refused => CellState::Refused,
                    MissingMeaning::NotApplicable => CellState::NotAsked,
                    MissingMeaning::NoResponse => CellState::NoResponse,
                    MissingMeaning::Other => CellState::OtherMissing,
                }
            } else {
                CellState::Value
            };
            state.push(s);
            if v.numeric_storage {
                values.push(if s == CellState::Value {
                    cell.parse::<f64>()
                        .unwrap_or_else(|_| panic!("{}: {cell:?} is not a number", v.name))
                } else {
                    f64::NAN
                });
            } else if s == CellState::Value {
                let k = levels.iter().position(|l| l == cell).unwrap_or_else(|| {
                    levels.push(cell.to_string());
                    levels.len() - 1
                });
                codes.push(k as u32);
            } else {
                codes.push(u32::MAX);
            }
        }
        let data = if v.numeric_storage {
            ColumnData::Num(values.into())
        } else {
            ColumnData::Text { codes, levels }
        };
        frame
            .push(Column {
                name: v.name.clone(),
                data,
                state: state.into(),
            })
            .expect("push");
        blanks.push(blank);
    }
    for (v, blank) in q.variables.iter().zip(&blanks) {
        let Some(cond) = &v.asked_if else { continue };
        if frame.column(&v.name).is_none() {
            continue;
        }
        let asked = cond.eval(&frame).unwrap_or_else(|e| panic!("{e}"));
        let mut col = frame.column(&v.name).expect("column").clone();
        for (i, &b) in blank.iter().enumerate() {
            if b {
                col.state.set(
                    i,
                    if asked.is_true(i) {
                        CellState::NoResponse
                    } else {
                        CellState::NotAsked
                    },
                );
            }
        }
        frame.set(col).expect("set");
    }
    frame
}

/// Per respondent: the indicator's value where it is defined (value known, universe true).
fn defined_values(value: &EvalColumn, universe: Option<&EvalColumn>) -> Vec<Option<f64>> {
    (0..value.state.len())
        .map(|i| {
            let in_universe = universe.is_none_or(|u| u.is_true(i));
            (in_universe && value.state[i] == EvalState::Value).then(|| value.values[i])
        })
        .collect()
}

#[test]
fn cvs_core_indicators_match_r_reference() {
    let q = cvs_core();
    let responded = |h: &csv::StringRecord, r: &csv::StringRecord| {
        let i = h
            .iter()
            .position(|c| c == "responded")
            .expect("responded column");
        r.get(i) == Some("1")
    };
    let mut frame = load_csv(&q, &repo("fixtures/demo/data.csv"), &responded);
    assert_eq!(frame.n_rows(), 17022);
    q.add_derived(&mut frame).unwrap_or_else(|e| panic!("{e}"));

    let mut rdr = csv::Reader::from_path(repo("fixtures/demo/indicators_per_respondent.csv"))
        .expect("reference");
    let header = rdr.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("record")).collect();
    assert_eq!(rows.len(), frame.n_rows());
    let ids = frame.column("resp_id").expect("resp_id");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(ids.display(i).as_deref(), r.get(0), "row {i}");
    }
    let reference = |col: &str| -> Vec<Option<f64>> {
        let j = header
            .iter()
            .position(|h| h == col)
            .unwrap_or_else(|| panic!("no column {col}"));
        rows.iter()
            .map(|r| {
                r.get(j)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<f64>().expect("number"))
            })
            .collect()
    };
    let cases = [
        ("bribery_prevalence", "I1"),
        ("bribery_prevalence_police", "I2_police"),
        ("bribery_prevalence_land", "I2_land"),
        ("bribe_frequency", "I3"),
        ("bribery_reporting_rate", "I4"),
        ("assault_prevalence", "I5"),
        ("theft_prevalence", "I6"),
        ("violence_prevalence", "I7"),
        ("assault_reporting_rate", "I8"),
        ("feel_safe_dark", "I9"),
    ];
    let mut checked = 0;
    let mut compare = |name: &str, ours: Vec<Option<f64>>, theirs: Vec<Option<f64>>| {
        let bad: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
        if let Some(&i) = bad.first() {
            panic!(
                "{name}: {} of {} respondents differ; first: resp_id {:?}: ours {:?}, R {:?}",
                bad.len(),
                ours.len(),
                ids.display(i),
                ours[i],
                theirs[i]
            );
        }
        checked += 1;
    };
    for (id, col) in cases {
        let ind = q
            .indicator(id)
            .unwrap_or_else(|| panic!("no indicator {id}"));
        let value = ind
            .value
            .as_ref()
            .expect("value")
            .eval(&frame)
            .expect("eval");
        let universe = ind.universe.as_ref().map(|u| u.eval(&frame).expect("eval"));
        compare(
            id,
            defined_values(&value, universe.as_ref()),
            reference(col),
        );
    }
    let i10 = q.indicator("assault_incidence_per_1000").expect("I10");
    assert_eq!((i10.kind, i10.multiplier), (IndicatorKind::Ratio, 1000.0));
    let universe = i10
        .universe
        .as_ref()
        .expect("universe")
        .eval(&frame)
        .expect("eval");
    let num = i10
        .numerator
        .as_ref()
        .expect("numerator")
        .eval(&frame)
        .expect("eval");
    let den = i10
        .denominator
        .as_ref()
        .expect("denominator")
        .eval(&frame)
        .expect("eval");
    compare(
        "I10_num",
        defined_values(&num, Some(&universe)),
        reference("I10_num"),
    );
    compare(
        "I10_den",
        defined_values(&den, Some(&universe)),
        reference("I10_den"),
    );
    assert_eq!(checked, 12);
}

#[test]
fn cvs_core_declares_every_data_column() {
    let q = cvs_core();
    let mut rdr = csv::Reader::from_path(repo("fixtures/demo/data.csv")).expect("data");
    let header = rdr.headers().expect("header").clone();
    let declared: Vec<&str> = q.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(header.iter().collect::<Vec<_>>(), declared);
    let frame_vars: Vec<&str> = q
        .variables
        .iter()
        .filter(|v| v.frame)
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        frame_vars,
        [
            "resp_id",
            "region",
            "urban",
            "stratum",
            "psu",
            "design_weight",
            "psu_pop",
            "responded"
        ]
    );
    // 11 one-number indicators, the bribe amount quartiles and two distributions.
    assert_eq!(q.indicators.len(), 14);
    let bp = q.indicator("bribery_prevalence").expect("I1");
    assert_eq!(bp.sdg_series.as_deref(), Some("IU_COR_BRIB"));
    assert_eq!(
        q.indicator("bribe_frequency").map(|i| i.kind),
        Some(IndicatorKind::Mean)
    );
    let region = q.variable("region").expect("region");
    assert!(!region.numeric_storage);
    let bribe = q.variable("bribe_police").expect("bribe_police");
    assert!(bribe.numeric_storage);
    assert_eq!(bribe.var_type, VarType::Categorical);
    assert_eq!(bribe.missing.len(), 2);
    assert_eq!(bribe.missing[0].meaning, MissingMeaning::DontKnow);
    assert_eq!(
        bribe.asked_if.as_ref().map(Expr::source),
        Some("contact_police == 1")
    );
}

#[test]
fn api_fixture_loads_and_evaluates() {
    let q = Questionnaire::load(&repo("fixtures/api/api.toml")).unwrap_or_else(|e| panic!("{e}"));
    let frame = load_csv(&q, &repo("fixtures/api/apistrat.csv"), &|_, _| true);
    assert_eq!(frame.n_rows(), 200);
    let sch = q.indicator("sch_wide").expect("sch_wide");
    let v = sch
        .value
        .as_ref()
        .expect("value")
        .eval(&frame)
        .expect("eval");
    let yes = (0..200).filter(|&i| v.is_true(i)).count();
    let wide = frame.column("sch.wide").expect("sch.wide");
    let yes_direct = (0..200)
        .filter(|&i| wide.display(i).as_deref() == Some("Yes"))
        .count();
    assert_eq!(yes, yes_direct);
    assert!(yes > 0 && yes < 200);
    let ratio = q.indicator("api_stu_per_enroll").expect("ratio");
    assert_eq!(ratio.kind, IndicatorKind::Ratio);
    for id in [
        "api00",
        "enroll_total",
        "enroll_mean",
        "sch_wide",
        "api_stu_per_enroll",
    ] {
        assert!(q.indicator(id).is_some(), "{id}");
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match Questionnaire::from_toml_str(text, Path::new("q.toml")) {
        Ok(_) => panic!("should fail:\n{text}"),
        Err(QuestionnaireError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("{e}"),
    }
}

const HEAD: &str = "[questionnaire]\nid = \"t\"\nversion = \"1\"\n";

#[test]
fn unknown_keys_are_reported_with_position() {
    let p = problems(&format!(
        "{HEAD}[[variables]]\nname = \"a\"\ntype = \"integer\"\nlabl = \"x\"\n"
    ));
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("labl"), "{}", p[0].message);
    assert_eq!(p[0].line, Some(7));
    let err = Questionnaire::from_toml_str(&format!("{HEAD}colour = 1\n"), Path::new("dir/q.toml"))
        .expect_err("fails");
    let text = err.to_string();
    assert!(
        text.starts_with("dir/q.toml:4:1: ") && text.contains("colour"),
        "{text}"
    );
}

#[test]
fn expression_errors_point_into_the_file() {
    let text = format!(
        "{HEAD}[[variables]]\nname = \"a\"\ntype = \"integer\"\n\n[[variables]]\nname = \"b\"\ntype = \"integer\"\nasked_if = \"a == 1 and zz == 2\"\n"
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    // line 11 is the asked_if line; `zz` starts at column 24 (12 for `asked_if = "` + 11 + 1)
    assert_eq!((p[0].line, p[0].column), (Some(11), Some(24)), "{:?}", p[0]);
    assert!(
        p[0].message.contains("unknown variable zz"),
        "{}",
        p[0].message
    );
}

#[test]
fn expression_positions_in_literal_and_multiline_strings() {
    let base = format!(
        "{HEAD}[[variables]]\nname = \"a\"\ntype = \"integer\"\n\n[[indicators]]\nid = \"x\"\nkind = \"mean\"\n"
    );
    // line 11: value = 'a + zz'  -> `zz` at column 14
    let p = problems(&format!("{base}value = 'a + zz'\n"));
    assert_eq!((p[0].line, p[0].column), (Some(11), Some(14)), "{:?}", p[0]);
    // multi-line basic string: the newline after the opening quotes is dropped
    let p = problems(&format!("{base}value = \"\"\"\na +\n  zz\"\"\"\n"));
    assert_eq!((p[0].line, p[0].column), (Some(13), Some(3)), "{:?}", p[0]);
    // with an escape the offset cannot be mapped: the string start and the character are given
    let p = problems(&format!("{base}value = \"\\u0061 + zz\"\n"));
    assert_eq!((p[0].line, p[0].column), (Some(11), Some(9)), "{:?}", p[0]);
    assert!(p[0].message.contains("at character 5"), "{}", p[0].message);
}

#[test]
fn semantic_errors_are_all_reported() {
    let text = format!(
        r#"{HEAD}
[codesets.yn]
codes = {{ 1 = "Yes", 2 = "No" }}
missing = {{ 8 = "dunno" }}

[[variables]]
name = "a"
codeset = "nope"

[[variables]]
name = "a"
type = "integer"

[[variables]]
name = "t"
type = "text"

[[variables]]
name = "q"
type = "integer"
asked_if = "a + 1"

[[derived]]
name = "d1"
expr = "d2 + 1"

[[derived]]
name = "d2"
expr = "t == 1"

[[indicators]]
id = "p"
kind = "proportion"
value = "q"

[[indicators]]
id = "r"
kind = "ratio"
value = "q"

[[indicators]]
id = "p"
kind = "mean"
value = "q"
universe = "q"
multiplier = 0
"#
    );
    let p = problems(&text);
    let all: Vec<&str> = p.iter().map(|x| x.message.as_str()).collect();
    for needle in [
        "meaning \"dunno\"",
        "codeset nope is not defined",
        "variable a is declared twice",
        "asked_if: must be true/false",
        "defined at or after this one",
        "cannot compare text with number",
        "value of a proportion must be true/false",
        "a ratio has numerator and denominator, not value",
        "a ratio needs numerator",
        "indicator p is defined twice",
        "universe must be true/false",
        "multiplier must be a positive number",
    ] {
        assert!(
            all.iter().any(|m| m.contains(needle)),
            "missing {needle:?} in {all:#?}"
        );
    }
    assert!(p.iter().all(|x| x.line.is_some()), "{p:#?}");
}

#[test]
fn codes_and_storage() {
    let text = format!(
        r#"{HEAD}
[[variables]]
name = "stype"
codes = {{ E = "Elementary", H = "High", M = "Middle" }}

[[variables]]
name = "flag"
codes = {{ 0 = "No", 1 = "Yes" }}
missing = {{ 9 = {{ meaning = "refused", label = "Did not say" }} }}

[[derived]]
name = "both"
expr = "flag == 1 and stype == \"E\""

[[indicators]]
id = "f"
kind = "proportion"
value = "flag"
"#
    );
    let q =
        Questionnaire::from_toml_str(&text, Path::new("q.toml")).unwrap_or_else(|e| panic!("{e}"));
    let stype = q.variable("stype").expect("stype");
    assert_eq!(
        (stype.var_type, stype.numeric_storage),
        (VarType::Categorical, false)
    );
    assert_eq!(
        stype.codes[1],
        CodeLabel {
            code: "H".into(),
            label: "High".into()
        }
    );
    let flag = q.variable("flag").expect("flag");
    assert!(flag.numeric_storage);
    assert_eq!(flag.missing[0].label, "Did not say");
    assert_eq!(
        q.derived_variable("both").map(|d| d.expr.output_type()),
        Some(ExprType::Bool)
    );

    // add_derived pushes a 1/0 column with mapped states
    let mut frame = Frame::new(3);
    frame
        .push(Column {
            name: "stype".into(),
            data: ColumnData::Text {
                codes: vec![0, 1, u32::MAX],
                levels: vec!["E".into(), "H".into()],
            },
            state: vec![CellState::Value, CellState::Value, CellState::NotAsked].into(),
        })
        .expect("push");
    frame
        .push(Column {
            name: "flag".into(),
            data: ColumnData::Num(vec![1.0, 1.0, 1.0].into()),
            state: vec![CellState::Value; 3].into(),
        })
        .expect("push");
    q.add_derived(&mut frame).expect("derived");
    let both = frame.column("both").expect("both");
    assert_eq!(
        both.state,
        vec![CellState::Value, CellState::Value, CellState::NotAsked]
    );
    match &both.data {
        ColumnData::Num(v) => assert_eq!(&v.to_vec()[..2], &[1.0, 0.0]),
        other => panic!("{other:?}"),
    }
    // a second call is refused rather than silently overwriting
    assert!(q.add_derived(&mut frame).is_err());
}

#[test]
fn malformed_files_do_not_panic() {
    for text in [
        "",
        "[questionnaire]",
        "[questionnaire]\nid = 1\nversion = \"1\"",
        "x = \"\u{0}\"",
        "[[variables]]\nname = \"a\"",
        &format!("{HEAD}[[variables]]\nname = \"\"\ntype = \"integer\""),
        &format!("{HEAD}[[variables]]\nname = \"a\"\ntype = \"integer\"\nrange = [1]"),
        &format!("{HEAD}[[variables]]\nname = \"a\"\ntype = \"integer\"\nasked_if = 'a == \"'"),
        &format!("{HEAD}[[indicators]]\nid = \"x\"\nkind = \"median\"\nvalue = \"1\""),
        &format!("{HEAD}[[indicators]]\nid = \"x\"\nkind = \"mean\"\nvalue = \"\"\"\n1 +\"\"\""),
        &format!("{HEAD}[[indicators]]\nid = \"x\"\nkind = \"mean\"\nvalue = \"\\u00e9 + 1\""),
    ] {
        assert!(
            Questionnaire::from_toml_str(text, Path::new("q.toml")).is_err(),
            "{text}"
        );
    }
}

#[test]
fn a_range_may_have_one_open_end() {
    let with_range = |range: &str| {
        Questionnaire::from_toml_str(
            &format!("{HEAD}[[variables]]\nname = \"n\"\ntype = \"integer\"\nrange = {range}"),
            Path::new("q.toml"),
        )
    };
    let q = with_range("[0, inf]").expect("no upper limit");
    assert_eq!(q.variables[0].range, Some((0.0, f64::INFINITY)));
    let q = with_range("[-inf, 99]").expect("no lower limit");
    assert_eq!(q.variables[0].range, Some((f64::NEG_INFINITY, 99.0)));
    for bad in [
        "[-inf, inf]",
        "[inf, inf]",
        "[nan, 3]",
        "[5, 1]",
        "[inf, 0]",
    ] {
        let e = with_range(bad).expect_err(bad).to_string();
        assert!(e.contains("must be two numbers, low first"), "{bad}: {e}");
    }
}

#[test]
fn stata_extended_missing_codes_keep_numeric_storage() {
    let text = r#"
[questionnaire]
id = "t"
version = "1"
title = "t"
[[variables]]
name = "x"
type = "categorical"
codes = { 1 = "Yes", 2 = "No" }
missing = { ".a" = "dont_know", 9 = "refused" }
[[variables]]
name = "n"
type = "integer"
missing = { ".b" = "refused" }
[[variables]]
name = "s"
type = "categorical"
codes = { 1 = "Yes", 2 = "No" }
missing = { DK = "dont_know" }
"#;
    let q = Questionnaire::from_toml_str(text, Path::new("q.toml")).expect("parses");
    assert!(
        q.variable("x").expect("x").numeric_storage,
        ".a does not make x text"
    );
    assert!(q.variable("n").expect("n").numeric_storage);
    assert!(
        !q.variable("s").expect("s").numeric_storage,
        "other text codes still do"
    );
    // ".ab" or ".A" are not Stata extended missing values.
    let bad = text.replace(r#"".b" = "refused""#, r#"".ab" = "refused""#);
    assert!(Questionnaire::from_toml_str(&bad, Path::new("q.toml")).is_err());
}

#[test]
fn text_with_codes_is_categorical_stored_as_text() {
    let text = r#"
[questionnaire]
id = "t"
version = "1"
[[variables]]
name = "agree"
type = "text"
codes = { "1" = "Yes", "2" = "No" }
missing = { "8" = "dont_know" }
[[variables]]
name = "n"
type = "categorical"
codes = { "1" = "Yes", "2" = "No" }
[[indicators]]
id = "agree_share"
kind = "proportion"
value = 'agree == "1"'
"#;
    let q = Questionnaire::from_toml_str(text, Path::new("q.toml")).expect("parses");
    let agree = q.variable("agree").expect("agree");
    assert_eq!(agree.var_type, VarType::Categorical);
    assert!(!agree.numeric_storage, "type = text keeps \"1\" text");
    assert_eq!(agree.codes.len(), 2);
    // Without type = "text", the same quoted codes are numbers (TOML keys are text anyway).
    assert!(q.variable("n").expect("n").numeric_storage);
    // The codes are checked in expressions: "3" is not one, and a number is not text.
    for bad in [r#"'agree == "3"'"#, "'agree == 1'"] {
        let t = text.replace(r#"'agree == "1"'"#, bad);
        let e = Questionnaire::from_toml_str(&t, Path::new("q.toml")).expect_err(bad);
        assert!(e.to_string().contains("agree"), "{e}");
    }
    // Integer and numeric variables still have no codes.
    let t = text.replacen("type = \"text\"", "type = \"integer\"", 1);
    let e = Questionnaire::from_toml_str(&t, Path::new("q.toml")).expect_err("integer codes");
    assert!(e.to_string().contains("no valid codes"), "{e}");
}

#[test]
fn missing_ranges_are_read_and_checked() {
    let head = "[questionnaire]\nid = \"t\"\nversion = \"1\"\n[[variables]]\nname = \"x\"\n";
    let text = format!(
        "{head}type = \"integer\"\nmissing = {{ 97 = \"refused\" }}\n\
         missing_ranges = [{{ low = 97, high = 99, meaning = \"other\" }}, \
         {{ low = -inf, high = -1, meaning = \"dont_know\", label = \"Negative codes\" }}]\n"
    );
    let q = Questionnaire::from_toml_str(&text, Path::new("q.toml")).expect("parses");
    let x = q.variable("x").expect("x");
    assert_eq!(x.missing_ranges.len(), 2);
    assert_eq!(
        (x.missing_ranges[0].low, x.missing_ranges[0].high),
        (97.0, 99.0)
    );
    assert_eq!(x.missing_ranges[0].meaning, MissingMeaning::Other);
    assert_eq!(x.missing_ranges[0].label, "Other missing");
    assert_eq!(x.missing_ranges[1].low, f64::NEG_INFINITY);
    assert_eq!(x.missing_ranges[1].label, "Negative codes");
    assert!(x.missing_ranges[1].contains(-5.0) && !x.missing_ranges[1].contains(0.0));
    // In a codeset too.
    let cs = "[questionnaire]\nid = \"t\"\nversion = \"1\"\n[codesets.s]\ncodes = { 1 = \"a\", 2 = \"b\" }\n\
              missing_ranges = [{ low = 8, high = 9, meaning = \"refused\" }]\n\
              [[variables]]\nname = \"x\"\ncodeset = \"s\"\n";
    let q = Questionnaire::from_toml_str(cs, Path::new("q.toml")).expect("codeset ranges");
    assert_eq!(q.variable("x").expect("x").missing_ranges.len(), 1);

    for (body, says) in [
        (
            "type = \"text\"\nmissing_ranges = [{ low = 1, high = 2, meaning = \"other\" }]",
            "stored as text",
        ),
        (
            "codes = { 1 = \"a\", 98 = \"b\" }\nmissing_ranges = [{ low = 97, high = 99, meaning = \"other\" }]",
            "lies in the missing range",
        ),
        (
            "type = \"integer\"\nmissing_ranges = [{ low = 9, high = 1, meaning = \"other\" }]",
            "low first",
        ),
        (
            "type = \"integer\"\nmissing_ranges = [{ low = 1, high = 2, meaning = \"unknown\" }]",
            "has meaning",
        ),
        (
            "type = \"integer\"\nmissing_ranges = [{ low = 1, high = 2, meaning = \"other\", lable = \"x\" }]",
            "lable",
        ),
    ] {
        let e = Questionnaire::from_toml_str(&format!("{head}{body}\n"), Path::new("q.toml"))
            .expect_err(body);
        assert!(e.to_string().contains(says), "{body}: {e}");
    }
}

#[test]
fn only_the_derived_variables_a_run_reads_are_built_with_their_inputs() {
    let q = Questionnaire::from_toml_str(
        r#"[questionnaire]
id = "d"
version = "1"
title = "Derived chain"

[[variables]]
name = "x"
type = "numeric"

[[derived]]
name = "doubled"
expr = "x * 2"

[[derived]]
name = "unused"
expr = "x + 100"

[[derived]]
name = "quadrupled"
expr = "doubled * 2"
"#,
        Path::new("d.toml"),
    )
    .expect("questionnaire");
    let frame = || {
        let mut f = Frame::new(2);
        f.push(Column {
            name: "x".into(),
            data: ColumnData::Num(vec![1.0, 3.0].into()),
            state: vec![CellState::Value; 2].into(),
        })
        .expect("push");
        f
    };
    let mut f = frame();
    q.add_derived_needed(&mut f, &["quadrupled".to_string()])
        .expect("derived");
    assert!(f.column("unused").is_none(), "nothing reads it");
    assert!(
        f.column("doubled").is_some(),
        "quadrupled is computed from it"
    );
    match &f.column("quadrupled").expect("quadrupled").data {
        ColumnData::Num(v) => assert_eq!(v, &vec![4.0, 12.0]),
        other => panic!("{other:?}"),
    }
    let mut all = frame();
    q.add_derived(&mut all).expect("derived");
    assert!(all.column("unused").is_some());
    let mut none = frame();
    q.add_derived_needed(&mut none, &["x".to_string()])
        .expect("derived");
    assert_eq!(none.columns().len(), 1);
}

const ANALYSES_VARS: &str = r#"
[[variables]]
name = "safe"
codes = { 1 = "Safe", 2 = "Unsafe", 3 = "Never out" }
missing = { 9 = "refused" }

[[variables]]
name = "kind"
type = "text"
codes = { "A" = "Alpha", "B" = "Beta" }

[[variables]]
name = "item_a"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "item_b"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "amount"
type = "numeric"
"#;

#[test]
fn distributions_expand_into_one_proportion_per_code_or_item() {
    let text = format!(
        r#"{HEAD}{ANALYSES_VARS}
[[indicators]]
id = "safe_dist"
kind = "distribution"
value = "safe"
universe = "amount > 0"

[[indicators]]
id = "kind_dist"
kind = "distribution"
value = "kind"

[[indicators]]
id = "items"
kind = "distribution"
items = ["item_a", "item_b"]

[[indicators]]
id = "amount_q"
kind = "quantile"
value = "amount"
probs = [0.1, 0.5]
qrule = "hf7"
ci = "quantile"
"#
    );
    let q =
        Questionnaire::from_toml_str(&text, Path::new("q.toml")).unwrap_or_else(|e| panic!("{e}"));
    let safe = q.indicator("safe_dist").expect("safe_dist");
    let parts = safe.estimated();
    assert_eq!(parts.len(), 3);
    for (part, code) in parts.iter().zip(["1", "2", "3"]) {
        assert_eq!(part.kind, IndicatorKind::Proportion);
        assert_eq!(part.id, "safe_dist");
        assert_eq!(part.category.as_ref().map(|c| c.code.as_str()), Some(code));
        assert_eq!(
            part.value.as_ref().map(Expr::source),
            Some(format!("safe == {code}").as_str())
        );
        assert_eq!(
            part.universe.as_ref().map(Expr::source),
            Some("(amount > 0) and (safe in [1, 2, 3])")
        );
    }
    let kind = q.indicator("kind_dist").expect("kind_dist").estimated();
    assert_eq!(
        kind[1].value.as_ref().map(Expr::source),
        Some("kind == \"B\"")
    );
    let items = q.indicator("items").expect("items").estimated();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.category.as_ref().is_some_and(|c| c.mention))
    );
    assert_eq!(
        items[1].value.as_ref().map(Expr::source),
        Some("(item_b) == 1")
    );
    let quantile = q.indicator("amount_q").expect("amount_q");
    assert_eq!(quantile.estimated().len(), 1);
    let spec = quantile.quantile.as_ref().expect("spec");
    assert_eq!(spec.probs, [0.1, 0.5]);
    assert_eq!(spec.rule, QuantileRule::Hf7);
    assert_eq!(spec.interval, QuantileInterval::ReplicateQuantiles);
}

#[test]
fn analyses_keys_are_checked() {
    let bad = |indicator: &str, expect: &[&str]| {
        let p = problems(&format!(
            "{HEAD}{ANALYSES_VARS}\n[[indicators]]\n{indicator}"
        ));
        let all: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        for e in expect {
            assert!(all.iter().any(|m| m.contains(e)), "{e:?} not in {all:?}");
        }
    };
    bad(
        "id = \"d\"\nkind = \"distribution\"\nvalue = \"amount\"\n",
        &["must be a variable with declared codes"],
    );
    bad(
        "id = \"d\"\nkind = \"distribution\"\nvalue = \"safe\"\nitems = [\"item_a\"]\n",
        &["either value", "not both"],
    );
    bad(
        "id = \"d\"\nkind = \"distribution\"\nitems = [\"item_a\", \"nope\"]\n",
        &["item nope is not a declared variable"],
    );
    bad(
        "id = \"p\"\nkind = \"proportion\"\nvalue = \"item_a == 1\"\ncount = \"== 1\"\nprobs = [0.5]\n",
        &["count belongs to", "probs belongs to quantile"],
    );
    bad(
        "id = \"q\"\nkind = \"quantile\"\nvalue = \"amount\"\nprobs = [0.5, 0.25]\n",
        &["increasing"],
    );
    bad(
        "id = \"q\"\nkind = \"quantile\"\nvalue = \"amount\"\nprobs = [0.0, 1.0]\n",
        &["strictly between 0 and 1"],
    );
    bad(
        "id = \"q\"\nkind = \"quantile\"\nvalue = \"amount\"\nprobs = [0.5]\nqrule = \"hf9\"\nci = \"wald\"\n",
        &["qrule must be", "ci must be"],
    );
    bad(
        "id = \"q\"\nkind = \"quantile\"\nvalue = \"kind == \\\"A\\\"\"\nprobs = [0.5]\n",
        &["must be a number"],
    );
    bad(
        "id = \"q\"\nkind = \"quantile\"\nvalue = \"amount\"\n",
        &["needs probs"],
    );
}

#[test]
fn sdmx_mappings_are_read_and_checked() {
    let head = "[questionnaire]\nid = \"t\"\nversion = \"1\"\n\n";
    let good = format!(
        "{head}[[variables]]\nname = \"sex\"\ncodes = {{ 1 = \"Male\", 2 = \"Female\" }}\n\
         sdmx = {{ dimension = \"SEX\", codes = {{ 1 = \"M\", 2 = \"F\" }} }}\n\n\
         [[variables]]\nname = \"age\"\ntype = \"integer\"\n\n\
         [[derived]]\nname = \"age_group\"\nexpr = \"if(age < 30, 1, 2)\"\ncodes = {{ 1 = \"18-29\", 2 = \"30+\" }}\n\
         sdmx = {{ dimension = \"AGE\", codes = {{ 1 = \"Y18T29\", 2 = \"Y_GE30\" }} }}\n"
    );
    let q =
        Questionnaire::from_toml_str(&good, Path::new("q.toml")).unwrap_or_else(|e| panic!("{e}"));
    let m = q.sdmx_mappings();
    assert_eq!(m["sex"].dimension, "SEX");
    assert_eq!(m["sex"].codes["2"], "F");
    assert_eq!(m["age_group"].codes["2"], "Y_GE30");
    assert_eq!(m.len(), 2);

    let bad = format!(
        "{head}[[variables]]\nname = \"sex\"\ncodes = {{ 1 = \"Male\", 2 = \"Female\" }}\n\
         sdmx = {{ dimension = \"GENDER\", codes = {{ 1 = \"M\", 3 = \"F\" }} }}\n\n\
         [[variables]]\nname = \"sex2\"\ncodes = {{ 1 = \"Male\", 2 = \"Female\" }}\n\
         sdmx = {{ dimension = \"SEX\", codes = {{ 1 = \"M\", 2 = \"F\" }} }}\n\n\
         [[variables]]\nname = \"sex4\"\ncodes = {{ 1 = \"Male\", 2 = \"Female\" }}\n\
         sdmx = {{ dimension = \"AGE\", codes = {{ 1 = \"M\", 2 = \"_T\" }} }}\n\n\
         [[variables]]\nname = \"sex3\"\ncodes = {{ 1 = \"Male\", 2 = \"Female\" }}\n\
         sdmx = {{ dimension = \"SEX\", codes = {{ 1 = \"M\", 2 = \"F\" }} }}\n\n\
         [[variables]]\nname = \"income\"\ntype = \"numeric\"\n\
         sdmx = {{ dimension = \"INCOME_WEALTH_QUANTILE\", codes = {{ 1 = \"Q1\" }} }}\n"
    );
    let text: Vec<String> = problems(&bad).into_iter().map(|p| p.message).collect();
    for expected in [
        "variable sex, sdmx: dimension \"GENDER\" is not a breakdown dimension",
        "variable sex, sdmx: \"3\" is not a valid code of the variable (codes: 1, 2)",
        "variable sex, sdmx: code(s) 2 have no SDG code",
        "variable sex4, sdmx: \"_T\" (for code \"2\") is not an SDMX code of a category",
        "sex3, sdmx: dimension SEX is already mapped from sex2",
        "variable income, sdmx: only a variable with codes can be mapped",
    ] {
        assert!(
            text.iter().any(|m| m.starts_with(expected)),
            "{expected} not in {text:#?}"
        );
    }
}

#[test]
fn multiple_response_items_named_as_exports_name_them_are_written_in_backticks() {
    let text = format!(
        r#"{HEAD}
[[variables]]
name = "likes/apple"
codes = {{ 0 = "No", 1 = "Yes" }}

[[variables]]
name = "likes/kiwi"
codes = {{ 0 = "No", 1 = "Yes" }}

[[indicators]]
id = "likes"
kind = "distribution"
items = ["likes/apple", "likes/kiwi"]
universe = "answered(`likes/apple`)"
"#
    );
    let q =
        Questionnaire::from_toml_str(&text, Path::new("q.toml")).unwrap_or_else(|e| panic!("{e}"));
    let items = q.indicator("likes").expect("likes").estimated();
    assert_eq!(
        items[1].value.as_ref().map(Expr::source),
        Some("(`likes/kiwi`) == 1")
    );
    assert_eq!(
        items[1].category.as_ref().map(|c| c.code.as_str()),
        Some("likes/kiwi")
    );
}
