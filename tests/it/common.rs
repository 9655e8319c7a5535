//! Shared helpers: run a config into a scratch folder and read `estimates.parquet` back.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Questionnaire TOML for a small test survey: its header and the design columns `id`,
/// `stratum`, `psu` and weight `w`; the caller appends its own variables and indicators.
pub fn design_questionnaire(id: &str, rest: &str) -> String {
    format!(
        r#"[questionnaire]
id = "{id}"
version = "1"
title = "Test survey {id}"

[[variables]]
name = "id"
type = "text"
frame = true

[[variables]]
name = "stratum"
type = "text"
frame = true

[[variables]]
name = "psu"
type = "integer"
frame = true

[[variables]]
name = "w"
type = "numeric"
frame = true
{rest}"#
    )
}

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch folder under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target").join("it-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Copy `config` into `dir` with `[output] dir` pointing at `dir/out` and relative paths made
/// absolute, so tests never write into `fixtures/`.
pub fn relocated_config(config: &Path, dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let base = config
        .parent()
        .expect("config has a folder")
        .canonicalize()
        .expect("canonical");
    let text = std::fs::read_to_string(config).expect("read config");
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let mut line = line.to_string();
        for key in ["questionnaire", "path"] {
            if let Some(rest) = trimmed.strip_prefix(&format!("{key} = \"")) {
                let value = rest.split('"').next().unwrap_or_default();
                line = format!("{key} = \"{}\"", base.join(value).display());
            }
        }
        if let Some(at) = line.find("margins = \"") {
            let start = at + "margins = \"".len();
            if let Some(len) = line[start..].find('"') {
                let value = line[start..start + len].to_string();
                line = format!(
                    "{}{}{}",
                    &line[..start],
                    base.join(&value).display(),
                    &line[start + len..]
                );
            }
        }
        if trimmed.starts_with("dir = ") {
            line = format!("dir = \"{}\"", dir.join("out").display());
        }
        for (from, to) in extra {
            if trimmed.starts_with(from) {
                line = to.to_string();
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let path = dir.join(config.file_name().expect("file name"));
    std::fs::write(&path, out).expect("write config");
    path
}

/// Run the demo config on another data file (suppression off) and read its estimates.
pub fn run_demo_on(data: &Path, name: &str) -> Vec<Row> {
    let dir = scratch(name);
    let path_line = format!("path = \"{}\"", data.display());
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("path = ", &path_line), ("suppress = ", "suppress = false")],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    read_estimates(&dir.join("out/estimates.parquet")).0
}

/// One row of `estimates.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub indicator: String,
    pub weighting: String,
    pub variance: String,
    pub domain_var: String,
    pub domain_value: String,
    pub estimate: Option<f64>,
    pub se: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub ci_method: String,
    pub df: Option<f64>,
    pub cv: Option<f64>,
    pub deff: Option<f64>,
    pub n_unweighted: i64,
    pub n_weighted: f64,
    pub flag: String,
    pub flag_reason: String,
}

/// Read `estimates.parquet` and its key-value metadata.
pub fn read_estimates(path: &Path) -> (Vec<Row>, HashMap<String, String>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open parquet"))
        .expect("parquet");
    let meta: HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for batch in builder.build().expect("reader") {
        let batch: RecordBatch = batch.expect("batch");
        let s = |name: &str| {
            batch
                .column_by_name(name)
                .expect(name)
                .as_string::<i32>()
                .clone()
        };
        let f = |name: &str| {
            batch
                .column_by_name(name)
                .expect(name)
                .as_primitive::<Float64Type>()
                .clone()
        };
        let (flag, flag_reason) = (s("flag"), s("flag_reason"));
        let (ind, wt, var, dv, dval, cim) = (
            s("indicator"),
            s("weighting"),
            s("variance"),
            s("domain_var"),
            s("domain_value"),
            s("ci_method"),
        );
        let (est, se, lo, hi, df, cv, deff, nw) = (
            f("estimate"),
            f("se"),
            f("ci_low"),
            f("ci_high"),
            f("df"),
            f("cv"),
            f("deff"),
            f("n_weighted"),
        );
        let n = batch
            .column_by_name("n_unweighted")
            .expect("n")
            .as_primitive::<Int64Type>()
            .clone();
        let opt = |a: &arrow_array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        for i in 0..batch.num_rows() {
            rows.push(Row {
                indicator: ind.value(i).into(),
                weighting: wt.value(i).into(),
                variance: var.value(i).into(),
                domain_var: dv.value(i).into(),
                domain_value: dval.value(i).into(),
                estimate: opt(&est, i),
                se: opt(&se, i),
                ci_low: opt(&lo, i),
                ci_high: opt(&hi, i),
                ci_method: cim.value(i).into(),
                df: opt(&df, i),
                cv: opt(&cv, i),
                deff: opt(&deff, i),
                n_unweighted: n.value(i),
                n_weighted: nw.value(i),
                flag: flag.value(i).into(),
                flag_reason: flag_reason.value(i).into(),
            });
        }
    }
    (rows, meta)
}

/// |a − b| / max(|b|, tiny).
pub fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    (a - b).abs() / b.abs().max(1e-300)
}

/// The demo's ingest settings (id, response, strata, PSU, weight) for reading `path`.
pub fn demo_ingest_spec(path: PathBuf) -> cvsurvey::ingest::IngestSpec {
    cvsurvey::ingest::IngestSpec {
        path,
        text_format: Default::default(),
        sheet: None,
        id: Some("resp_id".into()),
        response: Some("responded".into()),
        design_columns: vec!["stratum".into(), "psu".into()],
        positive_columns: vec!["design_weight".into()],
        required_columns: Vec::new(),
        column_patterns: Vec::new(),
        na: Vec::new(),
        derived: None,
        invalid_answer: Default::default(),
        unit_columns: Vec::new(),
        optional_columns: Vec::new(),
        household_link: None,
        dispositions: None,
        without_sha256: false,
    }
}

/// The demo's questionnaire, `questionnaires/cvs-core.toml`.
pub fn cvs_core() -> cvsurvey::questionnaire::Questionnaire {
    cvsurvey::questionnaire::Questionnaire::load(&root().join("questionnaires/cvs-core.toml"))
        .expect("cvs-core")
}

/// The demo config in `dir` reading `data` with the `[data]` lines `keys`, writing CSV only.
pub fn config_for(dir: &Path, data: &Path, keys: &str) -> PathBuf {
    let data_lines = format!("path = \"{}\"\n{keys}", data.display());
    relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        dir,
        &[
            ("path = ", &data_lines),
            ("formats = ", "formats = [\"csv\"]"),
        ],
    )
}

/// Run the binary with `args`; exit code, stdout and stderr.
pub fn cvsurvey(args: &[&str]) -> (i32, String, String) {
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

/// The demo data as rows of cells (header first).
pub fn demo_rows() -> Vec<Vec<String>> {
    csv_rows(&root().join("fixtures/demo/data.csv"))
}

/// A CSV file as rows of cells (header first).
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .expect("CSV file");
    reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_string).collect())
        .collect()
}

/// Run the binary on `config`; exit code and stdout + stderr.
pub fn cvsurvey_run(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(["run", config.to_str().expect("utf8")])
        .output()
        .expect("run cvsurvey");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A CSV file as rows of column name → cell.
pub fn read_csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}
