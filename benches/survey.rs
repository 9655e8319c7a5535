//! Benchmarks on synthetic surveys of 100k and 1M rows (`cargo bench --bench survey`):
//!
//! * `ingest_csv`, `ingest_parquet`: read and validate the file against the questionnaire
//!   (`cvsurvey::ingest::read`, skip logic and derived variables included);
//! * `taylor_estimate`: every indicator of `cvs-core` under two weighting schemes (design,
//!   nonresponse-adjusted), Taylor variance, for five domain sets — estimation only, on data
//!   already read;
//! * `run_taylor`: the whole `cvsurvey run` on the Parquet file (read, design, weighting,
//!   estimation, outputs);
//! * `run_raking_bootstrap`: the run with raking to population margins and Taylor + 200
//!   bootstrap replicates. Skipped, with a note, while the pipeline rejects that config.
//!
//! The data are generated at start with `cvsurvey::synth` (40 regions × urban/rural, seed 7) into
//! `target/bench-data/`, and reused while the files exist. `CVSURVEY_BENCH_SIZES=100000` limits
//! the sizes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cvsurvey::config::Pipeline;
use cvsurvey::design::Design;
use cvsurvey::estimate::{EstimationRequest, VarianceMethod, estimate};
use cvsurvey::ingest::{IngestSpec, read};
use cvsurvey::questionnaire::{Indicator, Questionnaire};
use cvsurvey::synth::{SynthRequest, SynthSpec};
use cvsurvey::weighting::Scheme;
use divan::Bencher;

const SEED: u64 = 7;
const REGIONS: u32 = 40;
const SIZES: [usize; 2] = [100_000, 1_000_000];
const DOMAIN_SETS: [&str; 5] = [
    "total",
    "sex",
    "sex+age_group",
    "region",
    "sex+age_group+region+urban",
];

fn main() {
    // Generate (or reuse) the data before any timing.
    for &n in sizes() {
        let _ = data(n);
    }
    if raking_sizes().is_empty() {
        println!(
            "note: run_raking_bootstrap skipped: the pipeline rejects raking + bootstrap ({})",
            REJECTED.get().map(String::as_str).unwrap_or("")
        );
    }
    divan::main();
}

fn sizes() -> &'static [usize] {
    static S: OnceLock<Vec<usize>> = OnceLock::new();
    S.get_or_init(|| match std::env::var("CVSURVEY_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => SIZES.to_vec(),
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files of one generated survey.
struct Data {
    csv: PathBuf,
    parquet: PathBuf,
    questionnaire: PathBuf,
    margins: PathBuf,
    dir: PathBuf,
}

fn data(rows: usize) -> Data {
    let dir = root().join("target/bench-data");
    let stem = format!("synth-s{SEED}-r{REGIONS}-n{rows}");
    let d = Data {
        csv: dir.join(format!("{stem}.csv")),
        parquet: dir.join(format!("{stem}.parquet")),
        questionnaire: dir.join(format!("{stem}.questionnaire.toml")),
        margins: dir.join(format!("{stem}.margins.csv")),
        dir: dir.clone(),
    };
    for (out, margins) in [(&d.parquet, Some(d.margins.clone())), (&d.csv, None)] {
        if out.exists() && d.questionnaire.exists() && d.margins.exists() {
            continue;
        }
        let req = SynthRequest {
            questionnaire: root().join("questionnaires/cvs-core.toml"),
            spec: SynthSpec {
                rows: rows as u64,
                regions: REGIONS,
                psus: None,
                psu_size: None,
                seed: SEED,
                nonresponse: 0.15,
            },
            out: out.clone(),
            format: None,
            margins: margins.or_else(|| Some(d.margins.clone())),
            questionnaire_out: Some(d.questionnaire.clone()),
        };
        cvsurvey::synth::generate(&req).expect("generate benchmark data");
    }
    d
}

/// A pipeline config on the generated Parquet file; `extra` replaces the weighting and variance
/// sections.
fn config(rows: usize, name: &str, weighting_and_variance: &str) -> PathBuf {
    let d = data(rows);
    let text = format!(
        r#"questionnaire = "{q}"
[data]
path = "{data}"
id = "resp_id"
response = "responded"
[design]
strata = "stratum"
psu = "psu"
weight = "design_weight"
nest = true
{weighting_and_variance}
[estimation]
indicators = ["*"]
domains = ["sex", "age_group", "region", "urban"]
ci = ["logit"]
[output]
dir = "{out}"
"#,
        q = d.questionnaire.display(),
        data = d.parquet.display(),
        out = d.dir.join(format!("out-{name}-{rows}")).display(),
    );
    let path = d.dir.join(format!("{name}-{rows}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

const TAYLOR: &str = r#"[[weighting]]
name = "design"
[[weighting]]
name = "nr_adjusted"
nonresponse = { classes = ["stratum"] }
[variance]
method = "taylor""#;

fn raking_bootstrap(margins: &Path) -> String {
    format!(
        r#"[[weighting]]
name = "raked"
nonresponse = {{ classes = ["stratum"] }}
calibration = {{ method = "raking", margins = "{}" }}
[variance]
method = ["taylor", "bootstrap"]
replicates = 200"#,
        margins.display()
    )
}

fn ingest_spec(rows: usize, path: &Path) -> (IngestSpec, Questionnaire) {
    let q = Questionnaire::load(&data(rows).questionnaire).expect("questionnaire");
    let spec = IngestSpec {
        path: path.to_path_buf(),
        text_format: Default::default(),
        sheet: None,
        id: Some("resp_id".into()),
        response: Some("responded".into()),
        design_columns: vec!["stratum".into(), "psu".into()],
        positive_columns: vec!["design_weight".into()],
        required_columns: vec!["stratum".into()],
        column_patterns: Vec::new(),
        na: Vec::new(),
        derived: None,
        invalid_answer: Default::default(),
        unit_columns: Vec::new(),
        optional_columns: Vec::new(),
        household_link: None,
        dispositions: None,
        without_sha256: false,
    };
    (spec, q)
}

#[divan::bench(args = sizes(), sample_count = 3, sample_size = 1)]
fn ingest_csv(bencher: Bencher, rows: usize) {
    let (spec, q) = ingest_spec(rows, &data(rows).csv);
    bencher.bench(|| read(&spec, &q).expect("ingest"));
}

#[divan::bench(args = sizes(), sample_count = 3, sample_size = 1)]
fn ingest_parquet(bencher: Bencher, rows: usize) {
    let (spec, q) = ingest_spec(rows, &data(rows).parquet);
    bencher.bench(|| read(&spec, &q).expect("ingest"));
}

/// Data read, design built and weights computed once per size: what estimation starts from.
struct Prepared {
    pipeline: Pipeline,
    questionnaire: Questionnaire,
    frame: cvsurvey::frame::Frame,
    design: Design,
    schemes: Vec<Scheme>,
}

fn prepared(rows: usize) -> Arc<Prepared> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Prepared>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().expect("cache");
    guard
        .entry(rows)
        .or_insert_with(|| {
            let pipeline = Pipeline::load(&config(rows, "taylor", TAYLOR)).expect("config");
            let (spec, questionnaire) = ingest_spec(rows, &data(rows).parquet);
            let ingested = read(&spec, &questionnaire).expect("ingest");
            let respondents: Vec<usize> = (0..ingested.frame.n_rows())
                .filter(|&r| ingested.respondent[r])
                .collect();
            let design =
                Design::build(&ingested.frame, &respondents, &pipeline.design).expect("design");
            let base: Vec<f64> = match &ingested.frame.column("design_weight").expect("weight").data
            {
                cvsurvey::frame::ColumnData::Num(v) => v.to_vec(),
                _ => panic!("numeric weights"),
            };
            let schemes = cvsurvey::weighting::compute(
                &ingested.frame,
                &ingested.row_numbers,
                &base,
                &respondents,
                None,
                &pipeline.weighting,
            )
            .expect("weighting");
            let frame = ingested.frame.take(&respondents);
            Arc::new(Prepared {
                pipeline,
                questionnaire,
                frame,
                design,
                schemes,
            })
        })
        .clone()
}

/// Size × domain set cases, as `rows/set`.
fn taylor_cases() -> Vec<String> {
    sizes()
        .iter()
        .flat_map(|n| DOMAIN_SETS.iter().map(move |set| format!("{n}/{set}")))
        .collect()
}

/// Every indicator × 2 schemes, Taylor, by one domain set.
#[divan::bench(args = taylor_cases(), sample_count = 3, sample_size = 1)]
fn taylor_estimate(bencher: Bencher, case: &str) {
    let (n, set) = case.split_once('/').expect("rows/set");
    let p = prepared(n.parse().expect("rows"));
    let domains: Vec<String> = if set == "total" {
        Vec::new()
    } else {
        set.split('+').map(str::to_string).collect()
    };
    let indicators: Vec<&Indicator> = p.questionnaire.indicators.iter().collect();
    let request = EstimationRequest {
        frame: &p.frame,
        design: &p.design,
        schemes: &p.schemes,
        indicators: &indicators,
        domains: &domains,
        ci: &p.pipeline.estimation.ci,
        level: p.pipeline.estimation.level,
        domain_df: p.pipeline.estimation.domain_df,
        variance: VarianceMethod::Taylor,
        contrasts: &[],
        tests: &[],
    };
    bencher.bench(|| estimate(&request).expect("estimate"));
}

#[divan::bench(args = sizes(), sample_count = 3, sample_size = 1)]
fn run_taylor(bencher: Bencher, rows: usize) {
    let cfg = config(rows, "taylor", TAYLOR);
    bencher.bench(|| cvsurvey::pipeline::run(&cfg, Default::default()).expect("run"));
}

static REJECTED: OnceLock<String> = OnceLock::new();

/// Sizes for the raking + bootstrap run: none while the pipeline rejects the config (checked
/// once on the smallest size).
fn raking_sizes() -> &'static [usize] {
    static S: OnceLock<Vec<usize>> = OnceLock::new();
    S.get_or_init(|| {
        let Some(&small) = sizes().iter().min() else {
            return Vec::new();
        };
        let cfg = config(small, "raking", &raking_bootstrap(&data(small).margins));
        match cvsurvey::pipeline::run(&cfg, Default::default()) {
            Ok(_) => sizes().to_vec(),
            Err(e) => {
                let _ = REJECTED.set(e.to_string());
                Vec::new()
            }
        }
    })
}

#[divan::bench(args = raking_sizes(), sample_count = 2, sample_size = 1)]
fn run_raking_bootstrap(bencher: Bencher, rows: usize) {
    let cfg = config(rows, "raking", &raking_bootstrap(&data(rows).margins));
    bencher.bench(|| cvsurvey::pipeline::run(&cfg, Default::default()).expect("run"));
}
