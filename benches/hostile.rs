//! Validation time of files where most cells are findings, at 10k and 100k rows
//! (`cargo bench --bench hostile`). Linear work grows 10× from one size to the next; the
//! quadratic scans this guards against (every design cell looked up among all findings, every
//! duplicate id listing every other row) grew 100×.
//!
//! * `fpc_not_a_number`: the FPC column holds text in every row (one finding per row, each a
//!   design cell without a value);
//! * `one_id_everywhere`: every row carries the same id (every row a duplicate of all others).

use std::path::{Path, PathBuf};

use cvsurvey::ingest::{IngestSpec, read};
use cvsurvey::questionnaire::Questionnaire;
use divan::Bencher;

const SIZES: [usize; 2] = [10_000, 100_000];

fn main() {
    divan::main();
}

fn folder() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/hostile");
    std::fs::create_dir_all(&dir).expect("bench folder");
    dir
}

fn questionnaire() -> Questionnaire {
    let path = folder().join("q.toml");
    std::fs::write(
        &path,
        r#"[questionnaire]
id = "hostile"
version = "1"
title = "Findings at scale"

[[variables]]
name = "id"
type = "text"
frame = true

[[variables]]
name = "stratum"
type = "text"
frame = true

[[variables]]
name = "fpc"
type = "integer"
frame = true

[[variables]]
name = "w"
type = "numeric"
frame = true

[[variables]]
name = "y"
codes = { 1 = "Yes", 2 = "No" }
"#,
    )
    .expect("questionnaire");
    Questionnaire::load(&path).expect("load")
}

/// A file of `rows` rows; `cell(i)` gives (id, fpc) of row i.
fn file(name: &str, rows: usize, cell: impl Fn(usize) -> (String, String)) -> PathBuf {
    let path = folder().join(format!("{name}-{rows}.csv"));
    let mut text = String::from("id,stratum,fpc,w,y\n");
    for i in 0..rows {
        let (id, fpc) = cell(i);
        text.push_str(&format!("{id},S{},{fpc},10,{}\n", i % 20, 1 + i % 2));
    }
    std::fs::write(&path, text).expect("data");
    path
}

fn spec(path: PathBuf) -> IngestSpec {
    IngestSpec {
        path,
        text_format: Default::default(),
        sheet: None,
        id: Some("id".into()),
        response: None,
        design_columns: vec!["stratum".into(), "fpc".into()],
        positive_columns: vec!["w".into()],
        required_columns: Vec::new(),
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

#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn fpc_not_a_number(bencher: Bencher, rows: usize) {
    let q = questionnaire();
    let spec = spec(file("fpc-text", rows, |i| (format!("r{i}"), "many".into())));
    bencher.bench(|| read(&spec, &q).expect("ingest"));
}

#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn one_id_everywhere(bencher: Bencher, rows: usize) {
    let q = questionnaire();
    let spec = spec(file("same-id", rows, |_| ("r1".into(), "1000000".into())));
    bencher.bench(|| read(&spec, &q).expect("ingest"));
}
