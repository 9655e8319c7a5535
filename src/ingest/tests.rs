//! Editing of invalid answers: blanked (the default) or quarantined, in each reader path.

use std::path::{Path, PathBuf};

use super::*;
use crate::frame::CellState::{self, NoResponse, NotAsked, Value};

/// q1 yes/no; q2 asked if q1 == 1, 0..100; region a frame variable; d derived from q1.
const QUESTIONNAIRE: &str = r#"
[questionnaire]
id = "t"
version = "1"

[[variables]]
name = "id"
type = "integer"

[[variables]]
name = "region"
type = "categorical"
codes = { 1 = "North", 2 = "South" }
frame = true

[[variables]]
name = "w"
type = "numeric"

[[variables]]
name = "q1"
type = "categorical"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "q2"
type = "numeric"
range = [0, 100]
asked_if = "q1 == 1"

[[derived]]
name = "d"
expr = "q1 == 1"
"#;

fn questionnaire() -> Questionnaire {
    Questionnaire::from_toml_str(QUESTIONNAIRE, Path::new("q.toml")).expect("questionnaire")
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cvsurvey-editing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn spec(path: PathBuf, invalid_answer: InvalidAnswer) -> IngestSpec {
    IngestSpec {
        path,
        id: Some("id".into()),
        positive_columns: vec!["w".into()],
        invalid_answer,
        ..Default::default()
    }
}

fn states(got: &Ingested, name: &str) -> Vec<CellState> {
    got.frame
        .column(name)
        .expect("column")
        .state
        .iter()
        .copied()
        .collect()
}

/// (row, column, value, kind, action) of every finding.
fn findings(got: &Ingested) -> Vec<(u64, &str, &str, FindingKind, FindingAction)> {
    got.findings
        .iter()
        .map(|f| (f.row, f.column, f.value, f.kind, f.action))
        .collect()
}

// Row 1 clean; 2 an undeclared code in q1 (q2 blank); 3 q2 answered where q1 says it was not
// asked; 4 q2 out of range; 5 an invalid weight; 6 an undeclared frame code; 7 q2 blank
// where asked.
const CSV: &str = "id,region,w,q1,q2\n\
                   1,1,10,1,5\n\
                   2,1,20,7,\n\
                   3,2,30,2,4\n\
                   4,2,40,1,500\n\
                   5,1,0,1,5\n\
                   6,9,10,1,5\n\
                   7,1,10,1,\n";

#[test]
fn invalid_answers_in_a_csv_file_are_blanked_and_their_rows_kept() {
    let path = scratch_file("blank.csv", CSV.as_bytes());
    let got = read(&spec(path, InvalidAnswer::Blank), &questionnaire()).expect("read");
    use FindingAction::*;
    use FindingKind::*;
    assert_eq!(
        findings(&got),
        [
            (2, "q1", "7", InvalidCode, Blanked),
            (3, "q2", "4", AnsweredNotAsked, Blanked),
            (4, "q2", "500", OutOfRange, Blanked),
            (5, "w", "0", InvalidWeight, Quarantined),
            (6, "region", "9", InvalidCode, Quarantined),
            (7, "q2", "", ItemNonresponse, Kept),
        ]
    );
    // The weight and the frame variable still quarantine; read = used + quarantined.
    assert_eq!(got.row_numbers, [1, 2, 3, 4, 7]);
    assert_eq!((got.rows_read, got.rows_quarantined), (7, 2));
    assert_eq!(got.rows_read, got.rows_used() + got.rows_quarantined);
    // A blanked answer reads as a blank: item nonresponse where asked, and the question it
    // routes to is not asked; an answer where not asked becomes not asked.
    assert_eq!(states(&got, "q1"), [Value, NoResponse, Value, Value, Value]);
    assert_eq!(
        states(&got, "q2"),
        [Value, NotAsked, NotAsked, NoResponse, NoResponse]
    );
    // The derived variable is computed after editing, so it follows the blanked item.
    assert_eq!(states(&got, "d"), [Value, NoResponse, Value, Value, Value]);
}

#[test]
fn a_blanked_answer_reads_exactly_as_a_blank_in_the_file() {
    let q = questionnaire();
    let edited = read(
        &spec(
            scratch_file("edited.csv", CSV.as_bytes()),
            InvalidAnswer::Blank,
        ),
        &q,
    )
    .expect("read");
    let blanks = CSV
        .replace("2,1,20,7,\n", "2,1,20,,\n")
        .replace("3,2,30,2,4\n", "3,2,30,2,\n")
        .replace("4,2,40,1,500\n", "4,2,40,1,\n");
    let blank = read(
        &spec(
            scratch_file("blanks.csv", blanks.as_bytes()),
            InvalidAnswer::Blank,
        ),
        &q,
    )
    .expect("read");
    for name in ["q1", "q2", "d"] {
        assert_eq!(states(&edited, name), states(&blank, name), "{name}");
        assert_eq!(
            edited.frame.column(name).expect("column").display(1),
            blank.frame.column(name).expect("column").display(1),
            "{name}"
        );
    }
}

#[test]
fn invalid_answer_quarantine_keeps_the_old_behaviour() {
    let path = scratch_file("quarantine.csv", CSV.as_bytes());
    let got = read(&spec(path, InvalidAnswer::Quarantine), &questionnaire()).expect("read");
    use FindingAction::*;
    use FindingKind::*;
    assert_eq!(
        findings(&got),
        [
            (2, "q1", "7", InvalidCode, Quarantined),
            (3, "q2", "4", AnsweredNotAsked, Quarantined),
            (4, "q2", "500", OutOfRange, Quarantined),
            (5, "w", "0", InvalidWeight, Quarantined),
            (6, "region", "9", InvalidCode, Quarantined),
            (7, "q2", "", ItemNonresponse, Kept),
        ]
    );
    assert_eq!(got.row_numbers, [1, 7]);
    assert_eq!((got.rows_read, got.rows_quarantined), (7, 5));
    assert_eq!(states(&got, "d"), [Value, Value]);
}

#[test]
fn invalid_answers_in_weighting_variables_still_quarantine() {
    let path = scratch_file("weighting.csv", CSV.as_bytes());
    let spec = IngestSpec {
        unit_columns: vec!["q1".into()],
        optional_columns: Vec::new(),
        household_link: None,
        ..spec(path, InvalidAnswer::Blank)
    };
    let got = read(&spec, &questionnaire()).expect("read");
    let q1: Vec<FindingAction> = got
        .findings
        .iter()
        .filter(|f| f.column == "q1")
        .map(|f| f.action)
        .collect();
    assert_eq!(q1, [FindingAction::Quarantined]);
    assert_eq!(got.row_numbers, [1, 3, 4, 7]);
}

#[test]
fn invalid_answers_in_a_stata_file_are_blanked() {
    // small_v114.dta: id 1, 2, 3; q1 1, 8, blank (8 is a plain value in a Stata file).
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/statfiles/small_v114.dta");
    let q = Questionnaire::from_toml_str(
        "[questionnaire]\nid = \"t\"\nversion = \"1\"\n\
         [[variables]]\nname = \"id\"\ntype = \"integer\"\n\
         [[variables]]\nname = \"q1\"\ntype = \"categorical\"\ncodes = { 1 = \"Yes\" }\n\
         [[derived]]\nname = \"d\"\nexpr = \"q1 == 1\"\n",
        Path::new("q.toml"),
    )
    .expect("questionnaire");
    let spec = |invalid_answer| IngestSpec {
        path: file.clone(),
        id: Some("id".into()),
        invalid_answer,
        ..Default::default()
    };
    let got = read(&spec(InvalidAnswer::Blank), &q).expect("read");
    assert_eq!(got.rows_quarantined, 0);
    assert_eq!(states(&got, "q1"), [Value, NoResponse, NoResponse]);
    assert_eq!(states(&got, "d"), [Value, NoResponse, NoResponse]);
    let invalid: Vec<_> = findings(&got)
        .into_iter()
        .filter(|f| f.3 == FindingKind::InvalidCode)
        .collect();
    assert_eq!(
        invalid,
        [(
            2,
            "q1",
            "8",
            FindingKind::InvalidCode,
            FindingAction::Blanked
        )]
    );
    let got = read(&spec(InvalidAnswer::Quarantine), &q).expect("read");
    assert_eq!(got.row_numbers, [1, 3]);
    assert_eq!(got.rows_read, got.rows_used() + got.rows_quarantined);
}

/// The CSV table of the tests above as a Parquet file: integer codes, a numeric weight and a
/// nullable q2 (null = blank).
fn parquet_bytes() -> Vec<u8> {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
    use std::sync::Arc;
    let int = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        ("id", int(&[1, 2, 3, 4, 5, 6, 7])),
        ("region", int(&[1, 1, 2, 2, 1, 9, 1])),
        (
            "w",
            Arc::new(Float64Array::from(vec![
                10.0, 20.0, 30.0, 40.0, 0.0, 10.0, 10.0,
            ])) as ArrayRef,
        ),
        ("q1", int(&[1, 7, 2, 1, 1, 1, 1])),
        (
            "q2",
            Arc::new(Float64Array::from(vec![
                Some(5.0),
                None,
                Some(4.0),
                Some(500.0),
                Some(5.0),
                Some(5.0),
                None,
            ])) as ArrayRef,
        ),
    ])
    .expect("batch");
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    bytes
}

#[test]
fn invalid_answers_in_a_parquet_file_are_blanked_as_in_csv() {
    let q = questionnaire();
    let csv = read(
        &spec(
            scratch_file("same.csv", CSV.as_bytes()),
            InvalidAnswer::Blank,
        ),
        &q,
    )
    .expect("csv");
    let parquet = read(
        &spec(
            scratch_file("blank.parquet", &parquet_bytes()),
            InvalidAnswer::Blank,
        ),
        &q,
    )
    .expect("parquet");
    // The same findings and actions (values as each format writes them), the same rows kept
    // and the same cell states.
    let located = |got: &Ingested| -> Vec<(u64, String, FindingKind, FindingAction)> {
        got.findings
            .iter()
            .map(|f| (f.row, f.column.to_string(), f.kind, f.action))
            .collect()
    };
    assert_eq!(located(&parquet), located(&csv));
    assert_eq!(parquet.row_numbers, csv.row_numbers);
    assert_eq!(parquet.rows_quarantined, 2);
    for name in ["q1", "q2", "d"] {
        assert_eq!(states(&parquet, name), states(&csv, name), "{name}");
    }
}

#[test]
fn findings_carry_the_row_id_and_a_duplicate_names_the_other_rows() {
    // Rows 1, 3 and 4 share id 8; row 2 has an undeclared code and an item nonresponse.
    let csv = "id,region,w,q1,q2\n8,1,10,2,\n9,1,10,7,\n8,2,10,2,\n8,1,10,2,\n";
    let path = scratch_file("duplicates.csv", csv.as_bytes());
    let got = read(&spec(path, InvalidAnswer::Blank), &questionnaire()).expect("read");
    let rows: Vec<(u64, &str, &str, FindingKind, String)> = got
        .findings
        .iter()
        .map(|f| (f.row, f.id, f.column, f.kind, f.reason.into_owned()))
        .collect();
    use FindingKind::*;
    assert_eq!(
        rows,
        [
            (
                1,
                "8",
                "id",
                DuplicateId,
                "id also on row(s) 3, 4".to_string()
            ),
            (
                2,
                "9",
                "q1",
                InvalidCode,
                "not a declared code (valid: 1, 2)".to_string()
            ),
            (
                3,
                "8",
                "id",
                DuplicateId,
                "id also on row(s) 1, 4".to_string()
            ),
            (
                4,
                "8",
                "id",
                DuplicateId,
                "id also on row(s) 1, 3".to_string()
            ),
        ]
    );
    let counts = got.findings.counts();
    assert_eq!(counts[&(DuplicateId, FindingAction::Quarantined)], 3);
    assert_eq!(counts[&(InvalidCode, FindingAction::Blanked)], 1);
    assert_eq!(got.row_numbers, [2]);
}

/// The per-cell rules of skip logic, one branch per case: what [`apply_skip_logic`]'s
/// branch-free codes must reproduce.
fn skip_logic_cell_by_cell(
    col: &mut crate::frame::Column,
    v: &crate::questionnaire::Variable,
    cells: &Cells<'_>,
    is_design: bool,
    can_blank: bool,
    findings: &mut FindingsBuilder,
) {
    let all_rows_var = v.frame || is_design;
    for r in 0..col.state.len() {
        let respondent = cells.respondent[r];
        let blank = cells.blank[r];
        let was_asked = cells.asked.is_none_or(|a| a[r]);
        if !respondent && !all_rows_var {
            if !blank {
                let shown = col.display(r).unwrap_or_default();
                findings.push(
                    r,
                    &v.name,
                    &shown,
                    FindingKind::NonrespondentAnswers,
                    "answer recorded for a unit nonrespondent; ignored",
                );
            }
            col.state.set(r, NotAsked);
        } else if blank && was_asked {
            col.state.set(r, NoResponse);
            if !is_design && !cells.edited.is_some_and(|e| e[r]) {
                findings.push(
                    r,
                    &v.name,
                    "",
                    FindingKind::ItemNonresponse,
                    "blank although the question was asked",
                );
            }
        } else if blank {
            col.state.set(r, NotAsked);
        } else if !was_asked {
            let shown = col.display(r).unwrap_or_else(|| "(missing code)".into());
            let rule = v.asked_if.as_ref().map(|e| e.source().to_string());
            findings.push(
                r,
                &v.name,
                &shown,
                FindingKind::AnsweredNotAsked,
                &format!(
                    "answered although not asked (asked_if: {})",
                    rule.unwrap_or_default()
                ),
            );
            if can_blank {
                findings.blank_last();
                col.state.set(r, NotAsked);
                match &mut col.data {
                    ColumnData::Num(values) => values.set(r, f64::NAN),
                    ColumnData::Text { codes, .. } => codes[r] = u32::MAX,
                }
            }
        }
    }
}

#[test]
fn skip_logic_codes_match_the_cell_by_cell_rules() {
    use crate::frame::{Column, NumValues, States};
    let q = questionnaire();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut coin = |one_in: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed.is_multiple_of(one_in)
    };
    // Odd and even lengths (the last packed byte holds one cell or two); every flag of the
    // variable; each input pattern dense enough to meet every combination of a cell's inputs.
    for n in [1usize, 2, 7, 64, 301] {
        for (name, text) in [("q2", false), ("q2", true), ("region", false)] {
            let v = q.variable(name).expect("declared");
            for flags in 0..8u8 {
                let (is_design, can_blank) = (flags & 1 != 0, flags & 2 != 0);
                let with_asked = flags & 4 != 0;
                let blank: Vec<bool> = (0..n).map(|_| coin(3)).collect();
                let respondent: Vec<bool> = (0..n).map(|_| !coin(4)).collect();
                let asked: Vec<bool> = (0..n).map(|_| !coin(2)).collect();
                let edited: Vec<bool> = blank.iter().map(|&b| b && coin(2)).collect();
                let mut state = States::AllValue(0);
                for &blank in &blank {
                    // Blank cells as read, and a few missing codes among the answers.
                    state.push(if blank {
                        NoResponse
                    } else if coin(9) {
                        CellState::Refused
                    } else {
                        Value
                    });
                }
                let data = if text {
                    ColumnData::Text {
                        codes: (0..n).map(|r| (r % 2) as u32).collect(),
                        levels: vec!["a".into(), "b".into()],
                    }
                } else {
                    ColumnData::Num(NumValues::compact((0..n).map(|r| r as f64).collect()))
                };
                let original = Column {
                    name: name.into(),
                    data,
                    state,
                };
                let cells = Cells {
                    blank: &blank,
                    edited: flags.is_multiple_of(3).then_some(&edited[..]),
                    respondent: &respondent,
                    asked: with_asked.then_some(&asked[..]),
                };
                let (mut fast, mut plain) = (original.clone(), original.clone());
                let (mut fast_found, mut plain_found) =
                    (FindingsBuilder::default(), FindingsBuilder::default());
                apply_skip_logic(&mut fast, v, &cells, is_design, can_blank, &mut fast_found);
                skip_logic_cell_by_cell(
                    &mut plain,
                    v,
                    &cells,
                    is_design,
                    can_blank,
                    &mut plain_found,
                );
                let case = format!("{name} text {text}, n {n}, flags {flags}");
                assert_eq!(
                    fast.state.iter().collect::<Vec<_>>(),
                    plain.state.iter().collect::<Vec<_>>(),
                    "{case}"
                );
                for r in 0..n {
                    assert_eq!(fast.display(r), plain.display(r), "{case}, row {r}");
                }
                if let (ColumnData::Num(a), ColumnData::Num(b)) = (&fast.data, &plain.data) {
                    let bits = |v: &NumValues| v.iter().map(f64::to_bits).collect::<Vec<_>>();
                    assert_eq!(bits(a), bits(b), "{case}");
                }
                if let (ColumnData::Text { codes: a, .. }, ColumnData::Text { codes: b, .. }) =
                    (&fast.data, &plain.data)
                {
                    assert_eq!(a, b, "{case}");
                }
                let id = |r: usize, out: &mut String| out.push_str(&r.to_string());
                let (fast_found, plain_found) = (
                    fast_found.finish(Vec::new(), id),
                    plain_found.finish(Vec::new(), id),
                );
                // A design variable asked of everyone has none: its blanks are checked elsewhere.
                let expect_findings = n >= 64 && (!is_design || with_asked);
                assert!(
                    !plain_found.is_empty() || !expect_findings,
                    "{case}: no findings to compare"
                );
                assert_eq!(
                    fast_found.iter().collect::<Vec<_>>(),
                    plain_found.iter().collect::<Vec<_>>(),
                    "{case}"
                );
            }
        }
    }
}

/// A clean 0/1 response column, positive weights and complete design fields are read without a
/// row-by-row check (no finding can come of one); anything else takes the checks row by row.
/// Both give each row's response status as the column says.
#[test]
fn response_status_and_design_checks_on_clean_and_faulty_columns() {
    let read_csv = |name: &str, text: &str| {
        let spec = IngestSpec {
            response: Some("resp".into()),
            design_columns: vec!["region".into()],
            ..spec(scratch_file(name, text.as_bytes()), InvalidAnswer::Blank)
        };
        read(&spec, &questionnaire()).expect("read")
    };
    let clean = read_csv(
        "clean-status.csv",
        "id,region,w,q1,q2,resp\n1,1,10,1,5,1\n2,1,20.5,,,0\n3,2,30,2,,1\n4,2,1,,,0\n",
    );
    assert!(findings(&clean).is_empty(), "{:?}", findings(&clean));
    assert_eq!(clean.respondent, [true, false, true, false]);
    assert_eq!(clean.row_numbers, [1, 2, 3, 4]);
    assert_eq!((clean.rows_read, clean.rows_quarantined), (4, 0));

    // A response of 2, a blank stratum, a negative weight.
    let faulty = read_csv(
        "faulty-status.csv",
        "id,region,w,q1,q2,resp\n1,1,10,1,5,1\n2,1,20,,,0\n3,2,30,2,,2\n4,,40,1,5,1\n5,1,-1,,,0\n",
    );
    use FindingKind::*;
    let kinds: Vec<(u64, &str, FindingKind)> = findings(&faulty)
        .into_iter()
        .map(|(row, column, _, kind, _)| (row, column, kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (3, "resp", InvalidResponse),
            (4, "region", MissingDesignValue),
            (5, "w", InvalidWeight),
        ]
    );
    // Each of rows 3 to 5 is quarantined (a row of unknown response status cannot be
    // weighted); of the rest, row 2 did not respond.
    assert!(
        findings(&faulty)[..3]
            .iter()
            .all(|f| f.4 == FindingAction::Quarantined)
    );
    assert_eq!(faulty.row_numbers, [1, 2]);
    assert_eq!(faulty.respondent, [true, false]);
}
