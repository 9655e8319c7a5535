//! Harness shared by the fuzz targets (`fuzz_targets/`, run with `cargo fuzz`) and by the
//! regression test `tests/it/fuzz_regressions.rs`, which replays every committed seed and every
//! input that once crashed through the same functions on stable Rust.
//!
//! Each function feeds one kind of user file to the parser a user's file reaches and checks what
//! must hold whatever the bytes: no panic, and for data files the row accounting
//! `read = used + quarantined`. Errors are fine: bad input is expected to be refused.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cvsurvey::config::Pipeline;
use cvsurvey::frame::{CellState, Column, ColumnData, Frame};
use cvsurvey::ingest::{self, IngestSpec};
use cvsurvey::questionnaire::expr::{EvalState, Expr, ExprType, VarInfo};
use cvsurvey::questionnaire::{Questionnaire, import};
use cvsurvey::weighting::margins::Margins;

/// The project root, whether this file is compiled in the fuzz crate or in the main crate's tests.
fn project_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if here.join("questionnaires").is_dir() {
        here
    } else {
        here.join("..")
    }
}

/// The shipped questionnaire, which the data-file targets validate against.
fn core_questionnaire() -> &'static Questionnaire {
    static Q: OnceLock<Questionnaire> = OnceLock::new();
    Q.get_or_init(|| {
        Questionnaire::load(&project_root().join("questionnaires/cvs-core.toml"))
            .expect("the shipped questionnaire loads")
    })
}

/// The first rows of the demo data, which the questionnaire target validates against.
fn demo_head() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let text = std::fs::read_to_string(project_root().join("fixtures/demo/data.csv"))
            .expect("demo data is readable");
        let head: Vec<&str> = text.lines().take(60).collect();
        let path = scratch_path("demo-head", "csv");
        std::fs::write(&path, head.join("\n")).expect("scratch file is writable");
        path
    })
}

/// A fresh scratch file name, so parallel fuzzing jobs and test threads do not trample each other.
fn scratch_path(stem: &str, extension: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "cvsurvey-fuzz-{stem}-{}-{k}.{extension}",
        std::process::id()
    ))
}

/// The demo's ingest settings: id, response, design and weight columns.
fn demo_spec(path: PathBuf) -> IngestSpec {
    IngestSpec {
        path,
        text_format: Default::default(),
        sheet: None,
        id: Some("resp_id".into()),
        response: Some("responded".into()),
        design_columns: vec!["stratum".into(), "psu".into()],
        positive_columns: vec!["design_weight".into()],
        required_columns: vec!["region".into()],
        column_patterns: Vec::new(),
        na: vec![String::new(), "NA".into(), ".".into()],
        derived: None,
        invalid_answer: Default::default(),
        unit_columns: Vec::new(),
        optional_columns: Vec::new(),
        household_link: None,
        dispositions: None,
        without_sha256: false,
    }
}

/// Ingest `spec` against `questionnaire` and check the accounting when it is accepted.
fn ingest_and_account(spec: &IngestSpec, questionnaire: &Questionnaire) {
    let Ok(ingested) = ingest::read(spec, questionnaire) else {
        return;
    };
    assert_eq!(
        ingested.rows_read,
        ingested.rows_used() + ingested.rows_quarantined,
        "read = used + quarantined"
    );
    let n = ingested.frame.n_rows();
    assert_eq!(ingested.row_numbers.len(), n);
    assert_eq!(ingested.respondent.len(), n);
    for column in ingested.frame.columns() {
        assert_eq!(
            column.len(),
            n,
            "column {} has the frame's length",
            column.name
        );
        assert_eq!(column.state.len(), n);
    }
    let mut quarantined_rows: Vec<u64> = ingested
        .findings
        .iter()
        .filter(|f| f.action == cvsurvey::ingest::FindingAction::Quarantined)
        .map(|f| f.row)
        .collect();
    quarantined_rows.dedup();
    assert_eq!(
        quarantined_rows.len() as u64,
        ingested.rows_quarantined,
        "each quarantined row has a finding saying why"
    );
}

/// Write `data` to a scratch file with `extension`, ingest it with the demo settings, and when
/// `draft` is set also draft a questionnaire from it; the file is removed afterwards.
fn ingest_bytes(data: &[u8], extension: &str, draft: bool) {
    let path = scratch_path("input", extension);
    std::fs::write(&path, data).expect("scratch file is writable");
    ingest_and_account(&demo_spec(path.clone()), core_questionnaire());
    let drafted = if draft {
        import::import(&path, None)
    } else {
        Ok(String::new())
    };
    let _ = std::fs::remove_file(&path);
    if let Err(import::ImportError::Draft(message)) = drafted {
        panic!("a drafted questionnaire does not parse: {message}");
    }
}

/// A CSV fieldwork file.
pub fn csv_ingest(data: &[u8]) {
    ingest_bytes(data, "csv", false);
}

/// A Parquet fieldwork file.
pub fn parquet_ingest(data: &[u8]) {
    ingest_bytes(data, "parquet", false);
}

/// An SPSS file (`.sav`; zlib-compressed `.zsav` files carry the same magic and are told apart
/// by their header): ingest, and draft a questionnaire from its dictionary.
pub fn sav_ingest(data: &[u8]) {
    ingest_bytes(data, "sav", true);
}

/// A Stata file: ingest, and draft a questionnaire from its dictionary.
pub fn dta_ingest(data: &[u8]) {
    ingest_bytes(data, "dta", true);
}

/// An SPSS portable file (`.por`): ingest, and draft a questionnaire from it.
pub fn por_ingest(data: &[u8]) {
    ingest_bytes(data, "por", true);
}

/// A questionnaire: parse it, then validate the demo's first rows against it (skip logic,
/// derived variables, indicators).
pub fn questionnaire(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = Questionnaire::from_toml_str(text, Path::new("fuzz.toml")) else {
        return;
    };
    ingest_and_account(&demo_spec(demo_head().to_path_buf()), &q);
}

/// A pipeline config.
pub fn pipeline_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Pipeline::from_str(text, &project_root().join("fixtures/demo/fuzz.toml"));
    }
}

/// A margins file (long or joint layout).
pub fn margins(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = Margins::parse("fuzz.csv", text)
    {
        assert!(
            !m.variables().is_empty(),
            "accepted margins name a variable"
        );
    }
}

/// The frame expressions are evaluated on: every cell state, text and numbers, edge values.
fn expression_frame() -> &'static Frame {
    static F: OnceLock<Frame> = OnceLock::new();
    F.get_or_init(|| {
        let states = [
            CellState::Value,
            CellState::Value,
            CellState::Value,
            CellState::NotAsked,
            CellState::DontKnow,
            CellState::Refused,
            CellState::NoResponse,
            CellState::Value,
        ];
        let n = states.len();
        let masked = |v: [f64; 8]| -> Vec<f64> {
            v.iter()
                .zip(states)
                .map(|(&x, s)| if s == CellState::Value { x } else { f64::NAN })
                .collect()
        };
        let mut frame = Frame::new(n);
        let columns = [
            Column {
                name: "a".into(),
                data: ColumnData::Num(masked([0.0, 1.0, -3.5, 0.0, 0.0, 0.0, 0.0, 1e300]).into()),
                state: states.to_vec().into(),
            },
            Column {
                name: "b".into(),
                data: ColumnData::Num(masked([1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0]).into()),
                state: states.to_vec().into(),
            },
            Column {
                name: "flag".into(),
                data: ColumnData::Num(masked([1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).into()),
                state: states.to_vec().into(),
            },
            Column {
                name: "t".into(),
                data: ColumnData::Text {
                    codes: states
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            if *s == CellState::Value {
                                (i % 2) as u32
                            } else {
                                u32::MAX
                            }
                        })
                        .collect(),
                    levels: vec!["R01".into(), "=x".into()],
                },
                state: states.to_vec().into(),
            },
        ];
        for column in columns {
            frame
                .push(column)
                .expect("distinct names and equal lengths");
        }
        frame
    })
}

/// The scope matching [`expression_frame`].
fn expression_scope(name: &str) -> Result<VarInfo, String> {
    match name {
        "a" => Ok(VarInfo::of_type(ExprType::Num)),
        "b" => Ok(VarInfo {
            ty: ExprType::Num,
            codes: vec!["1".into(), "2".into()],
            missing_codes: vec!["8".into(), "9".into()],
            zero_one: false,
        }),
        "flag" => Ok(VarInfo::of_type(ExprType::Bool)),
        "t" => Ok(VarInfo {
            ty: ExprType::Text,
            codes: Vec::new(),
            missing_codes: Vec::new(),
            zero_one: false,
        }),
        other => Err(format!("unknown variable {other}")),
    }
}

/// An expression (skip logic, derived variable, indicator): parse, type-check and evaluate.
pub fn expression(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(source, &expression_scope) else {
        return;
    };
    let frame = expression_frame();
    let Ok(column) = expr.eval(frame) else {
        return;
    };
    assert_eq!(column.values.len(), frame.n_rows());
    assert_eq!(column.state.len(), frame.n_rows());
    for (value, state) in column.values.iter().zip(&column.state) {
        if *state != EvalState::Value {
            assert!(value.is_nan(), "a cell without a value holds NaN");
        }
    }
    if expr.is_zero_one() {
        for (value, state) in column.values.iter().zip(&column.state) {
            if *state == EvalState::Value {
                assert!(
                    *value == 0.0 || *value == 1.0,
                    "a 0/1 expression gives {value}"
                );
            }
        }
    }
}

/// For the fuzz targets only: the fuzzer's panic hook aborts on every panic, even one that
/// cvsurvey catches. The Parquet reader turns panics of the parquet and arrow crates inside
/// page decoding into errors (`ingest::read`), so those unwind to that catch; any other panic
/// still aborts and is reported.
#[allow(dead_code)] // The regression test includes this file but has no fuzzer hook to undo.
pub fn let_library_panics_unwind() {
    let fuzzer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_library = info.location().is_some_and(|l| {
            let file = l.file();
            file.contains("/parquet-") || file.contains("/arrow-")
        });
        if !in_library {
            fuzzer_hook(info);
        }
    }));
}
