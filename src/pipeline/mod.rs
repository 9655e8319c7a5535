//! Orchestration of `cvsurvey run` and `cvsurvey validate`: config → questionnaire → ingest →
//! design → weighting → replicates → estimate → output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod households;
mod monitor;
use households::compute_households_and_persons;
pub use monitor::monitor;

use crate::config::{ConfigError, Pipeline};
use crate::design::{Design, DesignError};
use crate::estimate::{
    ContrastRow, EstimateError, EstimateRow, EstimationRequest, TOTAL, VarianceMethod,
};
use crate::fieldwork::Outcome;
use crate::frame::ColumnData;
use crate::ingest::{FindingAction, FindingKind, IngestError, IngestSpec, Ingested};
use crate::output::{OutputError, OutputFolder, StagedFiles};
use crate::progress::{Progress, Silent};
use crate::questionnaire::{Indicator, IndicatorKind, Questionnaire, QuestionnaireError};
use crate::replicates::stage::{self, ReplicateStageSettings};
use crate::replicates::{ReplicateMethod, ReplicateStageError, SuppliedKind, SuppliedSpec};
use crate::weighting::{Eligibility, Scheme, WeightSummary, WeightingError};

/// Tool version written to output metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Options of a run.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Treat any validation finding as an error.
    pub strict: bool,
    /// Record wall time per stage in `run_summary.json` (off by default so that repeated runs
    /// give byte-identical files).
    pub timings: bool,
    /// Where the long stages report their progress (none by default).
    pub progress: Option<&'a dyn Progress>,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("strict", &self.strict)
            .field("timings", &self.timings)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl RunOptions<'_> {
    fn progress(&self) -> &dyn Progress {
        self.progress.unwrap_or(&Silent)
    }
}

/// Errors that stop a run. `exit_code` maps them to the CLI's exit status.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Config file problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Questionnaire problem.
    #[error(transparent)]
    Questionnaire(#[from] QuestionnaireError),
    /// Config refers to something the questionnaire does not define.
    #[error("{config}: {message}")]
    Reference {
        /// Config file.
        config: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Data could not be read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// `--strict` and the data has findings other than item nonresponse.
    #[error(
        "{path}: {count} validation finding(s) besides item nonresponse and --strict was given; first: row {row}, column {column}, value \"{value}\": {reason}"
    )]
    Strict {
        /// Data file.
        path: PathBuf,
        /// Number of findings.
        count: usize,
        /// First finding's row.
        row: u64,
        /// Its column.
        column: String,
        /// Its value.
        value: String,
        /// Its reason.
        reason: String,
    },
    /// No usable respondent (the row reports were written, nothing else).
    #[error(
        "{path}: no usable respondent rows ({read} read, {quarantined} quarantined); the reason for each row is in {reports}"
    )]
    NoRespondents {
        /// Data file.
        path: PathBuf,
        /// Rows read.
        read: u64,
        /// Rows quarantined.
        quarantined: u64,
        /// The `quarantine.csv` written.
        reports: PathBuf,
    },
    /// Design problem.
    #[error(transparent)]
    Design(#[from] DesignError),
    /// Weighting problem.
    #[error(transparent)]
    Weighting(#[from] WeightingError),
    /// Estimation problem.
    #[error(transparent)]
    Estimate(#[from] EstimateError),
    /// Output problem.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Replicate variance problem (construction, or a replicate's weighting).
    #[error(transparent)]
    Replicate(#[from] ReplicateStageError),
}

impl PipelineError {
    /// 1 when the data or the config failed validation, 2 for any other error.
    pub fn exit_code(&self) -> i32 {
        match self {
            PipelineError::Config(_)
            | PipelineError::Questionnaire(_)
            | PipelineError::Reference { .. }
            | PipelineError::Strict { .. }
            | PipelineError::NoRespondents { .. }
            | PipelineError::Design(_)
            | PipelineError::Weighting(_)
            // What estimation and replicates refuse is the data or the design as configured
            // (a lonely PSU under `fail`, a replicate whose calibration has no solution).
            | PipelineError::Estimate(_)
            | PipelineError::Replicate(_) => 1,
            PipelineError::Ingest(e) => match e {
                IngestError::Io { .. } => 2,
                _ => 1,
            },
            PipelineError::Output(e) => e.exit_code(),
        }
    }
}

/// What a run did, for the summary.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Questionnaire id and version.
    pub questionnaire: String,
    /// Data file.
    pub data_path: PathBuf,
    /// The delimiter a text data file was read with (given or detected).
    pub delimiter: Option<u8>,
    /// The sheet a workbook data file was read from (given or the first).
    pub sheet: Option<String>,
    /// Rows read, used, quarantined.
    pub rows_read: u64,
    /// Rows used.
    pub rows_used: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Respondents among used rows.
    pub respondents: u64,
    /// Findings per kind and action (kept, blanked, quarantined).
    pub findings_by_kind: BTreeMap<(FindingKind, FindingAction), usize>,
    /// Strata and PSUs among respondents, and the design df.
    pub design: Option<(usize, usize, f64)>,
    /// Schemes with the distribution of their final weights.
    pub schemes: Vec<(String, WeightSummary)>,
    /// Estimates produced (empty for `validate`).
    pub estimates: Vec<EstimateRow>,
    /// Contrast rows (`contrasts.parquet`), empty without `[[contrast]]`.
    pub contrasts: Vec<ContrastRow>,
    /// Tests of association (`tests.parquet`), empty without `[[test]]`.
    pub tests: Vec<crate::estimate::TestRow>,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Non-fatal findings of weighting and replicate stages (calibration kept with `force`,
    /// dropped replicates).
    pub warnings: Vec<String>,
    /// The reliability preset in force and whether it blanks suppressed cells.
    pub reliability: (String, bool),
    /// No id column was named: rows are identified by their data row number.
    pub row_number_ids: bool,
    /// The household file of a survey of households and persons (the fields above are then the
    /// person file's; `estimates` holds the rows of both).
    pub households: Option<HouseholdReport>,
}

/// The household file's part of a run's summary.
#[derive(Debug, Clone)]
pub struct HouseholdReport {
    /// Household file.
    pub data_path: PathBuf,
    /// The delimiter a text household file was read with (given or detected).
    pub delimiter: Option<u8>,
    /// The sheet a workbook household file was read from (given or the first).
    pub sheet: Option<String>,
    /// Rows read.
    pub rows_read: u64,
    /// Rows used.
    pub rows_used: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Responding households.
    pub respondents: u64,
    /// Findings per kind and action.
    pub findings_by_kind: BTreeMap<(FindingKind, FindingAction), usize>,
    /// Strata and PSUs among responding households, and the design df (`run` only).
    pub design: Option<(usize, usize, f64)>,
    /// Household schemes with the distribution of their final weights.
    pub schemes: Vec<(String, WeightSummary)>,
}

impl HouseholdReport {
    fn of(ingested: &Ingested, path: &Path, design: Option<&Design>, schemes: &[Scheme]) -> Self {
        HouseholdReport {
            data_path: path.to_path_buf(),
            delimiter: ingested.delimiter,
            sheet: ingested.sheet.as_ref().map(|s| s.sheet.clone()),
            rows_read: ingested.rows_read,
            rows_used: ingested.rows_used(),
            rows_quarantined: ingested.rows_quarantined,
            respondents: ingested.respondent.iter().filter(|&&r| r).count() as u64,
            findings_by_kind: findings_by_kind(ingested),
            design: design.map(design_summary),
            schemes: schemes
                .iter()
                .map(|s| (s.name.clone(), s.summary().clone()))
                .collect(),
        }
    }
}

/// Strata, PSUs and design df of a design.
fn design_summary(design: &Design) -> (usize, usize, f64) {
    let all_rows: Vec<bool> = vec![true; design.n_rows()];
    (design.n_strata(), design.n_psu(), design.degf(&all_rows))
}

/// Load the config and questionnaire and check every cross-reference before data is read.
pub(crate) fn prepare(config_path: &Path) -> Result<(Pipeline, Questionnaire), PipelineError> {
    let mut pipeline = Pipeline::load(config_path)?;
    let questionnaire = Questionnaire::load(&pipeline.questionnaire)?;
    let reference = |message: String| PipelineError::Reference {
        config: config_path.to_path_buf(),
        message,
    };
    let known = |name: &str| {
        questionnaire.variable(name).is_some()
            || questionnaire.derived.iter().any(|d| d.name == name)
    };
    let mut problems = Vec::new();
    for id in &pipeline.estimation.indicators {
        if id != "*" && questionnaire.indicator(id).is_none() {
            let ids: Vec<&str> = questionnaire
                .indicators
                .iter()
                .map(|i| i.id.as_str())
                .collect();
            problems.push(format!(
                "estimation.indicators: \"{id}\" is not an indicator of {} (has: {})",
                questionnaire.id,
                ids.join(", ")
            ));
        }
    }
    for d in pipeline
        .estimation
        .domains
        .iter()
        .flat_map(|d| d.split(':'))
    {
        if !known(d) {
            problems.push(format!(
                "estimation.domains: \"{d}\" is neither a variable nor a derived variable of {}",
                questionnaire.id
            ));
        }
    }
    for w in &pipeline.weighting {
        for c in w.nonresponse_classes.iter().flatten() {
            if questionnaire.derived.iter().any(|d| &d.name == c) {
                problems.push(format!("weighting \"{}\": nonresponse class \"{c}\" must be a data column, not a derived variable", w.name));
            }
        }
    }
    if let Err(errors) = pipeline.publication.check_against(&questionnaire) {
        problems.extend(errors.iter().map(|e| e.to_string()));
    }
    // Contrasts compare one number per domain: distributions and quantiles are left out of
    // `["*"]` (and refused by name).
    let contrasted = |id: &str| {
        questionnaire.indicator(id).is_some_and(|i| {
            !matches!(
                i.kind,
                IndicatorKind::Distribution | IndicatorKind::Quantile
            )
        })
    };
    let estimated: Vec<String> = if pipeline.estimation.indicators.iter().any(|i| i == "*") {
        questionnaire
            .indicators
            .iter()
            .map(|i| i.id.clone())
            .filter(|id| contrasted(id))
            .collect()
    } else {
        pipeline.estimation.indicators.clone()
    };
    for c in &mut pipeline.contrasts {
        problems.extend(check_contrast(c, &questionnaire, &estimated, &known));
    }
    for t in &pipeline.tests {
        for (key, var) in [("rows", &t.rows), ("cols", &t.cols)] {
            if !known(var) {
                problems.push(format!(
                    "test \"{}\": {key} \"{var}\" is neither a variable nor a derived variable of {}",
                    t.name, questionnaire.id
                ));
            }
        }
        if let Some(u) = &t.universe
            && let Err(e) = questionnaire.compile(u)
        {
            problems.push(format!("test \"{}\": universe {e}", t.name));
        }
    }
    if !problems.is_empty() {
        return Err(reference(problems.join("; ")));
    }
    Ok((pipeline, questionnaire))
}

/// Check a contrast against the questionnaire, and replace `["*"]` by the estimated
/// indicators. Returns the problems found.
fn check_contrast(
    c: &mut crate::estimate::ContrastSpec,
    q: &Questionnaire,
    estimated: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let name = c.name.clone();
    if c.indicators.iter().any(|i| i == "*") {
        c.indicators = estimated.to_vec();
    }
    for id in &c.indicators {
        if q.indicator(id).is_none() {
            problems.push(format!(
                "contrast \"{name}\": \"{id}\" is not an indicator of {} (has: {})",
                q.id,
                q.indicators
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if q.indicator(id).is_some_and(|i| {
            matches!(
                i.kind,
                IndicatorKind::Distribution | IndicatorKind::Quantile
            )
        }) {
            problems.push(format!(
                "contrast \"{name}\": indicator \"{id}\" is a distribution or a quantile; contrasts compare proportions, means, ratios and totals"
            ));
        } else if !estimated.contains(id) {
            problems.push(format!(
                "contrast \"{name}\": indicator \"{id}\" is not estimated; add it to estimation.indicators"
            ));
        }
    }
    for (key, var) in std::iter::once(("by", &c.by)).chain(c.within.iter().map(|w| ("within", w))) {
        if !known(var) {
            problems.push(format!(
                "contrast \"{name}\": {key} \"{var}\" is neither a variable nor a derived variable of {}",
                q.id
            ));
        }
    }
    if let Some(v) = q.variable(&c.by)
        && !v.codes.is_empty()
    {
        for code in [&c.first, &c.second] {
            let declared = v.codes.iter().any(|d| {
                d.code == *code
                    || matches!((d.code.parse::<f64>(), code.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
            });
            if !declared {
                problems.push(format!(
                    "contrast \"{name}\": compare code \"{code}\" is not a code of {} (codes: {})",
                    c.by,
                    v.codes
                        .iter()
                        .map(|d| d.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    problems
}

/// Every variable a stage after ingest reads: the estimated indicators' expressions, the
/// domains and the calibration margins' variables (a margins file that cannot be read names
/// nothing here; the weighting stage reports it).
fn read_after_ingest(p: &Pipeline, q: &Questionnaire) -> Vec<String> {
    let all = p.estimation.indicators.iter().any(|i| i == "*");
    let mut names: Vec<String> = q
        .indicators
        .iter()
        .filter(|i| all || p.estimation.indicators.contains(&i.id))
        .flat_map(Indicator::estimated)
        .flat_map(|i| {
            [&i.value, &i.numerator, &i.denominator, &i.universe]
                .into_iter()
                .flatten()
                .flat_map(|e| e.variables())
        })
        .collect();
    names.extend(
        p.estimation
            .domains
            .iter()
            .flat_map(|d| d.split(':'))
            .map(str::to_string),
    );
    names.extend(contrast_variables(p));
    for t in &p.tests {
        names.extend([t.rows.clone(), t.cols.clone()]);
        if let Some(u) = t.universe.as_deref().and_then(|u| q.compile(u).ok()) {
            names.extend(u.variables());
        }
    }
    for w in &p.weighting {
        if let Some(c) = &w.calibration
            && let Ok(m) = crate::weighting::margins::Margins::load(&c.margins)
        {
            names.extend(m.variables().into_iter().map(str::to_string));
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// The variables the weighting reads in every row (nonresponse classes, calibration margins)
/// and, for derived ones, the variables they are computed from: a blank in any of them stops
/// the weighting, so ingest quarantines a row with an invalid value there instead of blanking it.
fn weighting_variables(p: &Pipeline, q: &Questionnaire) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for w in &p.weighting {
        names.extend(w.nonresponse_classes.iter().flatten().cloned());
        if let Some(c) = &w.calibration
            && let Ok(m) = crate::weighting::margins::Margins::load(&c.margins)
        {
            names.extend(m.variables().into_iter().map(str::to_string));
        }
    }
    let mut k = 0;
    while k < names.len() {
        if let Some(d) = q.derived_variable(&names[k]) {
            for v in d.expr.variables() {
                if !names.contains(&v) {
                    names.push(v);
                }
            }
        }
        k += 1;
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// The variables contrasts compare and cross by.
fn contrast_variables(p: &Pipeline) -> impl Iterator<Item = String> + '_ {
    p.contrasts
        .iter()
        .flat_map(|c| std::iter::once(&c.by).chain(&c.within))
        .cloned()
}

fn ingest_spec(p: &Pipeline, q: &Questionnaire) -> IngestSpec {
    let d = &p.design;
    let mut design_columns: Vec<String> = d.strata.iter().cloned().collect();
    design_columns.extend(d.psu.iter().cloned());
    design_columns.extend(d.fpc.iter().cloned());
    design_columns.extend(d.collapse.order.iter().cloned());
    design_columns.extend(d.collapse.within.iter().cloned());
    let mut required: Vec<String> = Vec::new();
    for w in &p.weighting {
        required.extend(w.nonresponse_classes.iter().flatten().cloned());
    }
    if let Some(f) = &p.fieldwork {
        for c in f.interviewer.iter().chain(&f.by) {
            if !required.contains(c) {
                required.push(c.clone());
            }
        }
    }
    IngestSpec {
        path: p.data.path.clone(),
        text_format: p.data.text_format,
        sheet: p.data.sheet.clone(),
        id: p.data.id.clone(),
        response: p.data.response.clone(),
        design_columns,
        positive_columns: if p.weight_from_fpc {
            Vec::new()
        } else {
            vec![d.weight.clone()]
        },
        required_columns: required,
        na: p.data.na.clone(),
        derived: Some(read_after_ingest(p, q)),
        invalid_answer: p.invalid_answer,
        unit_columns: weighting_variables(p, q),
        column_patterns: if p.variance.contains(&VarianceMethod::Supplied) {
            p.replicate.columns.clone()
        } else {
            Vec::new()
        },
        optional_columns: Vec::new(),
        household_link: None,
        dispositions: p
            .fieldwork
            .as_ref()
            .map(|f| crate::ingest::DispositionSpec {
                column: f.disposition.clone(),
                map: f.dispositions.clone(),
                interview_date: f.interview_date.clone(),
                start: f.start,
                end: f.end,
                today: crate::fieldwork::Date::today(),
            }),
        without_sha256: false,
    }
}

pub(crate) fn read_data(
    p: &Pipeline,
    q: &Questionnaire,
    opts: RunOptions<'_>,
) -> Result<Ingested, PipelineError> {
    read_with_spec(p, q, &ingest_spec(p, q), opts)
}

/// Read a file as `spec` says; under `--strict` any finding but item nonresponse stops the run.
fn read_with_spec(
    p: &Pipeline,
    q: &Questionnaire,
    spec: &IngestSpec,
    opts: RunOptions<'_>,
) -> Result<Ingested, PipelineError> {
    let ingested = crate::ingest::read_with_progress(spec, q, opts.progress())?;
    // Item nonresponse is a property of the answers, not an error in the file: never fatal.
    let real = |kind: FindingKind| kind != FindingKind::ItemNonresponse;
    let first = opts
        .strict
        .then(|| ingested.findings.iter().find(|f| real(f.kind)))
        .flatten()
        .map(|f| f.into_owned());
    if let Some(f) = first {
        return Err(PipelineError::Strict {
            path: p.data.path.clone(),
            count: ingested
                .findings
                .counts()
                .iter()
                .filter(|((kind, _), _)| real(*kind))
                .map(|(_, n)| n)
                .sum(),
            row: f.row,
            column: f.column,
            value: f.value.chars().take(200).collect(),
            reason: f.reason,
        });
    }
    Ok(ingested)
}

/// Findings counted by kind and by what was done about them (an invalid code is blanked in an
/// answer and quarantines its row in a frame variable).
fn findings_by_kind(ingested: &Ingested) -> BTreeMap<(FindingKind, FindingAction), usize> {
    ingested.findings.counts().clone()
}

fn write_row_reports(
    staged: &mut StagedFiles,
    dir: &Path,
    ingested: &Ingested,
    prefix: &str,
) -> Result<(), PipelineError> {
    let cell_of = ingested
        .sheet
        .as_ref()
        .map(|s| move |row: u64, column: &str| s.cell(row, column));
    let cell_of = cell_of.as_ref().map(|f| f as crate::output::CellNamer<'_>);
    crate::output::write_findings(
        staged,
        &dir.join(format!("{prefix}quarantine.csv")),
        ingested
            .findings
            .iter()
            .filter(|f| f.action == FindingAction::Quarantined),
        cell_of,
    )?;
    crate::output::write_findings(
        staged,
        &dir.join(format!("{prefix}findings.csv")),
        ingested.findings.iter(),
        cell_of,
    )?;
    Ok(())
}

/// Reserve the output folder before any data is read: an input at an output's path, another
/// run writing the folder, or a folder that cannot be written fails here (`output::staging`).
fn output_folder(p: &Pipeline) -> Result<OutputFolder, PipelineError> {
    let mut inputs = vec![
        ("config file".to_string(), p.config_path.clone()),
        ("questionnaire file".to_string(), p.questionnaire.clone()),
        ("data file (data.path)".to_string(), p.data.path.clone()),
    ];
    for w in &p.weighting {
        if let Some(c) = &w.calibration {
            let what = format!("margins file of weighting \"{}\"", w.name);
            inputs.push((what, c.margins.clone()));
        }
    }
    Ok(OutputFolder::begin(&p.output_dir, &inputs)?)
}

/// `cvsurvey validate`: read and check the data only; writes `quarantine.csv` and `findings.csv`.
pub fn validate(config_path: &Path, opts: RunOptions<'_>) -> Result<RunReport, PipelineError> {
    let (p, q) = prepare(config_path)?;
    let output = output_folder(&p)?;
    if let Some(h) = &p.households {
        let two = households::read_two_files(&p, &q, h, opts)?;
        let mut staged = output.stage();
        write_row_reports(&mut staged, &p.output_dir, &two.persons, "")?;
        write_row_reports(&mut staged, &p.output_dir, &two.households, "household_")?;
        let files = output.commit(staged)?;
        let mut report = report(&p, &q, &two.persons, None, &[], Vec::new(), files);
        report.households = Some(HouseholdReport::of(&two.households, &h.path, None, &[]));
        return Ok(report);
    }
    // `validate` writes no manifest: the file is read without its SHA-256.
    let spec = IngestSpec {
        without_sha256: true,
        ..ingest_spec(&p, &q)
    };
    let ingested = read_with_spec(&p, &q, &spec, opts)?;
    let mut staged = output.stage();
    write_row_reports(&mut staged, &p.output_dir, &ingested, "")?;
    let files = output.commit(staged)?;
    Ok(report(&p, &q, &ingested, None, &[], Vec::new(), files))
}

/// Wall time per pipeline stage.
#[derive(Debug, Clone)]
struct StageClock {
    last: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl StageClock {
    fn new() -> StageClock {
        StageClock {
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    /// A stage that ran beside another: its own wall time, `took`; the next lap starts now.
    fn lap_of(&mut self, stage: &'static str, took: std::time::Duration) {
        self.laps.push((stage, took.as_secs_f64() * 1e3));
        self.last = std::time::Instant::now();
    }

    fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.laps
            .push((stage, (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
    }
}

/// Everything a run computed, before anything is written.
struct Computed {
    /// The output folder, reserved before the data was read.
    output: OutputFolder,
    /// Non-fatal findings of the weighting and replicate stages.
    warnings: Vec<String>,
    /// Replicate weights to publish: (column name, weight per respondent).
    replicate_weights: Vec<(String, Vec<f64>)>,
    timings: Option<StageClock>,
    pipeline: Pipeline,
    questionnaire: Questionnaire,
    ingested: Ingested,
    design: Design,
    schemes: Vec<Scheme>,
    estimates: Vec<EstimateRow>,
    contrasts: Vec<ContrastRow>,
    /// Rows of the tests of association: test, scheme, variance method, statistic.
    tests: Vec<crate::estimate::TestRow>,
    /// The households of a survey of households and persons; the fields above are then the
    /// persons' (estimates, contrasts, tests and warnings of both units).
    household: Option<Box<HouseholdPart>>,
    /// Outcome rates and interviewers, with dispositions only (of the person file in a survey
    /// of households and persons).
    fieldwork: Option<crate::fieldwork::FieldworkReport>,
}

/// The household unit of a run.
struct HouseholdPart {
    /// The run's config as the households see it: their file, design weight and schemes.
    pipeline: Pipeline,
    ingested: Ingested,
    design: Design,
    schemes: Vec<Scheme>,
    replicate_weights: Vec<(String, Vec<f64>)>,
}

fn compute(config_path: &Path, opts: RunOptions<'_>) -> Result<Computed, PipelineError> {
    let mut clock = StageClock::new();
    let (p, q) = prepare(config_path)?;
    let output = output_folder(&p)?;
    clock.lap("config");
    if p.households.is_some() {
        return compute_households_and_persons(p, q, output, opts, clock);
    }
    let mut ingested = read_data(&p, &q, opts)?;
    clock.lap("ingest");
    let respondents = respondents_with_weights(&p, &mut ingested, &output, "")?;
    // Before the answers are freed: the interviewer figures read them.
    let fieldwork = fieldwork_of(&p, &q, &ingested);
    let unit = compute_unit(
        &p,
        &q,
        &mut ingested,
        &respondents,
        AnswersAfterCopy::Free,
        opts,
        &mut clock,
    )?;
    let mut computed = Computed::assemble(
        output,
        opts.timings.then_some(clock),
        p,
        q,
        ingested,
        unit,
        None,
    );
    computed.fieldwork = fieldwork;
    Ok(computed)
}

/// The respondents' rows; the design weights derived from the fpc when no weight column is
/// named. No respondent left stops the run, after the row reports (prefixed `prefix`) that say
/// why every row was quarantined.
fn respondents_with_weights(
    p: &Pipeline,
    ingested: &mut Ingested,
    output: &OutputFolder,
    prefix: &str,
) -> Result<Vec<usize>, PipelineError> {
    let respondents: Vec<usize> = (0..ingested.frame.n_rows())
        .filter(|&r| ingested.respondent[r])
        .collect();
    if respondents.is_empty() {
        // The row reports say why every row was quarantined; they replace the folder's
        // previous outputs as `validate` would.
        let mut staged = output.stage();
        write_row_reports(&mut staged, &p.output_dir, ingested, prefix)?;
        output.commit(staged)?;
        return Err(PipelineError::NoRespondents {
            path: p.data.path.clone(),
            read: ingested.rows_read,
            quarantined: ingested.rows_quarantined,
            reports: p.output_dir.join(format!("{prefix}quarantine.csv")),
        });
    }
    if p.weight_from_fpc {
        // R's svydesign without weights: N/n per stage over every sampled unit.
        let all: Vec<usize> = (0..ingested.frame.n_rows()).collect();
        let weights = Design::weights_from_fpc(&ingested.frame, &all, &p.design)?;
        let n = weights.len();
        ingested
            .frame
            .push(crate::frame::Column {
                name: crate::design::WEIGHT_FROM_FPC.to_string(),
                data: ColumnData::Num(weights.into()),
                state: crate::frame::States::AllValue(n),
            })
            .map_err(|_| IngestError::DuplicateColumn {
                path: p.data.path.clone(),
                column: format!(
                    "{} (the name of the weights derived from the fpc; rename that column of the file)",
                    crate::design::WEIGHT_FROM_FPC
                ),
            })?;
    }

    Ok(respondents)
}

/// The fieldwork rates and interviewer figures of a run with dispositions, weighted by the
/// design weights where every row has one.
fn fieldwork_of(
    p: &Pipeline,
    q: &Questionnaire,
    ingested: &Ingested,
) -> Option<crate::fieldwork::FieldworkReport> {
    let (f, outcomes) = (p.fieldwork.as_ref()?, ingested.outcomes.as_ref()?);
    let weights = numeric_column(ingested, &p.design.weight);
    let weights = weights.iter().all(|w| w.is_finite()).then_some(weights);
    Some(monitor::fieldwork_report(
        f,
        q,
        ingested,
        outcomes,
        weights.as_deref(),
    ))
}

/// A case's eligibility for the nonresponse adjustment from its AAPOR category: interviews
/// and eligible non-interviews (refusal, noncontact, other) are eligible.
fn eligibility_of(outcome: Outcome) -> Eligibility {
    match outcome {
        Outcome::Complete
        | Outcome::Partial
        | Outcome::Refusal
        | Outcome::NonContact
        | Outcome::Other => Eligibility::Eligible,
        Outcome::UnknownEligibility => Eligibility::Unknown,
        Outcome::NotEligible => Eligibility::Ineligible,
    }
}

/// One unit's design, weighting and estimates.
struct Unit {
    design: Design,
    schemes: Vec<Scheme>,
    estimates: Vec<EstimateRow>,
    contrasts: Vec<ContrastRow>,
    tests: Vec<crate::estimate::TestRow>,
    warnings: Vec<String>,
    replicate_weights: Vec<(String, Vec<f64>)>,
}

/// What becomes of the ingested frame's other columns once estimation has its copy of the
/// respondents' estimation columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswersAfterCopy {
    /// Kept: the frame serves another unit after this one (the persons of several groups).
    Keep,
    /// Freed: only the columns that the replicate stage and the outputs read stay (the
    /// design's columns, the id and the design weight), which lowers the run's peak memory.
    Free,
}

/// The columns of the ingested frame that the stages after weighting read: the design's
/// (the replicate stage's units, SDR sort order), the id and the design weight
/// (`weights.parquet`). `None`: every column (supplied replicate weights name their columns by
/// patterns).
fn columns_read_after_weighting(p: &Pipeline) -> Option<Vec<String>> {
    if p.variance
        .contains(&crate::estimate::VarianceMethod::Supplied)
    {
        return None;
    }
    let d = &p.design;
    let mut names: Vec<String> = d
        .strata
        .iter()
        .chain(&d.psu)
        .chain(&d.fpc)
        .cloned()
        .collect();
    names.push(d.weight.clone());
    names.extend(d.collapse.order.iter().chain(&d.collapse.within).cloned());
    names.extend(p.replicate.sort.iter().cloned());
    names.push(
        p.data
            .id
            .clone()
            .unwrap_or_else(|| crate::ingest::ROW_ID.to_string()),
    );
    Some(names)
}

/// Design, weighting, and the estimates of every variance method for the unit of `ingested`.
fn compute_unit(
    p: &Pipeline,
    q: &Questionnaire,
    ingested: &mut Ingested,
    respondents: &[usize],
    answers: AnswersAfterCopy,
    opts: RunOptions<'_>,
    clock: &mut StageClock,
) -> Result<Unit, PipelineError> {
    let respondents = respondents.to_vec();
    // A distribution is estimated as its parts, one proportion per category or item.
    let indicators: Vec<&Indicator> = if p.estimation.indicators.iter().any(|i| i == "*") {
        q.indicators.iter().flat_map(Indicator::estimated).collect()
    } else {
        p.estimation
            .indicators
            .iter()
            .filter_map(|id| q.indicator(id))
            .flat_map(Indicator::estimated)
            .collect()
    };
    let tests: Result<Vec<crate::estimate::TestSpec>, PipelineError> = p
        .tests
        .iter()
        .map(|t| {
            let universe = t
                .universe
                .as_deref()
                .map(|u| q.compile(u))
                .transpose()
                .map_err(|message| PipelineError::Reference {
                    config: p.config_path.clone(),
                    message: format!("test \"{}\": universe {message}", t.name),
                })?;
            Ok(crate::estimate::TestSpec {
                name: t.name.clone(),
                rows: t.rows.clone(),
                cols: t.cols.clone(),
                universe,
            })
        })
        .collect();
    // Estimation reads the indicators' variables and the domains only: copy just those columns
    // of the respondents (a copy of the whole frame is most of the run's peak memory).
    let estimation_columns: Vec<String> = indicators
        .iter()
        .flat_map(|i| {
            [&i.value, &i.numerator, &i.denominator, &i.universe]
                .into_iter()
                .flatten()
                .flat_map(|e| e.variables())
        })
        .chain(
            p.estimation
                .domains
                .iter()
                .flat_map(|d| d.split(':'))
                .map(str::to_string),
        )
        .chain(contrast_variables(p))
        .chain(tests.iter().flatten().flat_map(|t| {
            [t.rows.clone(), t.cols.clone()]
                .into_iter()
                .chain(t.universe.iter().flat_map(|u| u.variables()))
        }))
        .collect();
    let base_weights = numeric_column(ingested, &p.design.weight);
    let eligibility: Option<Vec<Eligibility>> = ingested
        .outcomes
        .as_ref()
        .filter(|_| p.weighting.iter().any(|w| w.adjust_eligibility))
        .map(|outcomes| outcomes.iter().map(|&o| eligibility_of(o)).collect());
    // The design and the respondents' copy do not depend on the weights: they are formed while
    // the weighting runs (its calibration has long stretches on one thread). Each stage's
    // time is its own wall time, so the two laps overlap.
    let frame = &ingested.frame;
    let ((design_and_copy, design_time), (schemes, weighting_time)) = rayon::join(
        || {
            let start = std::time::Instant::now();
            let design = Design::build(frame, &respondents, &p.design);
            let design_time = start.elapsed();
            let with_copy = design.map(|d| {
                let copy = frame.take_columns(&respondents, |name| {
                    estimation_columns.iter().any(|c| c == name)
                });
                (d, copy)
            });
            (with_copy, design_time)
        },
        || {
            let start = std::time::Instant::now();
            let schemes = crate::weighting::compute(
                frame,
                &ingested.row_numbers,
                &base_weights,
                &respondents,
                eligibility.as_deref(),
                &p.weighting,
            );
            (schemes, start.elapsed())
        },
    );
    let (design, resp_frame) = design_and_copy?;
    clock.lap_of("design", design_time);
    let schemes = schemes?;
    clock.lap_of("weighting", weighting_time);
    drop(eligibility);
    let tests = tests?;
    if answers == AnswersAfterCopy::Free
        && let Some(keep) = columns_read_after_weighting(p)
    {
        ingested
            .frame
            .retain_columns(|name| keep.iter().any(|c| c == name));
    }
    let mut estimates = Vec::new();
    let mut contrasts = Vec::new();
    let mut test_rows = Vec::new();
    // Collapsed strata change every variance: said on the console and in run_summary.json.
    let mut warnings: Vec<String> = design
        .collapsed_strata()
        .iter()
        .map(|c| {
            format!(
                "lonely_psu = collapse: stratum {} has one responding PSU; merged with {} ({}) into stratum {}",
                c.stratum,
                c.partner,
                c.rule.as_str(),
                c.merged
            )
        })
        .collect();
    if let Some(outcomes) = &ingested.outcomes {
        let count = |o: Outcome| outcomes.iter().filter(|&&x| x == o).count();
        let (unknown, ineligible) = (
            count(Outcome::UnknownEligibility),
            count(Outcome::NotEligible),
        );
        for w in &p.weighting {
            if w.nonresponse_classes.is_some() && !w.adjust_eligibility && unknown + ineligible > 0
            {
                warnings.push(format!(
                    "weighting \"{}\": {ineligible} ineligible case(s) and {unknown} of unknown eligibility are adjusted for as eligible nonrespondents, which inflates the weights by the ineligible share; set nonresponse = {{ classes = [...], eligibility = \"adjust\" }}",
                    w.name
                ));
            }
        }
    }
    let mut replicate_weights = Vec::new();
    for &variance in &p.variance {
        let request = EstimationRequest {
            frame: &resp_frame,
            design: &design,
            schemes: &schemes,
            indicators: &indicators,
            domains: &p.estimation.domains,
            ci: &p.estimation.ci,
            level: p.estimation.level,
            domain_df: p.estimation.domain_df,
            variance,
            contrasts: &p.contrasts,
            tests: &tests,
        };
        match replicate_settings(p, variance) {
            // Taylor linearization.
            None => {
                let taylor = crate::estimate::estimate_with_progress(&request, opts.progress())?;
                estimates.extend(taylor.rows);
                contrasts.extend(taylor.contrasts);
                test_rows.extend(taylor.tests);
            }
            Some(settings) => {
                let keep = p.output_replicate_weights && replicate_weights.is_empty();
                let out = stage::run(&stage::Inputs {
                    settings: &settings,
                    frame: &ingested.frame,
                    base_weights: &base_weights,
                    respondents: &respondents,
                    design: &design,
                    design_spec: &p.design,
                    schemes: &schemes,
                    request: &request,
                    keep_weights: keep,
                    progress: opts.progress(),
                })?;
                estimates.extend(out.rows);
                contrasts.extend(out.contrasts);
                test_rows.extend(out.tests);
                warnings.extend(out.warnings);
                if keep {
                    replicate_weights = out.weights;
                }
            }
        }
    }
    crate::output::reliability::apply_reliability(&mut estimates, &p.publication.reliability, q);
    // Contrast after contrast, indicator, scheme, then variance method (config order each).
    let position = |list: &[String], x: &str| list.iter().position(|y| y == x);
    contrasts.sort_by_key(|r| {
        let c = p.contrasts.iter().position(|c| c.name == r.contrast);
        let i = c.and_then(|c| position(&p.contrasts[c].indicators, &r.indicator));
        let s = schemes.iter().position(|s| s.name == r.weighting);
        (c, i, s)
    });
    test_rows.sort_by_key(|r| {
        (
            p.tests.iter().position(|t| t.name == r.test),
            schemes.iter().position(|s| s.name == r.weighting),
        )
    });
    clock.lap("estimate");
    Ok(Unit {
        design,
        schemes,
        estimates,
        contrasts,
        tests: test_rows,
        warnings,
        replicate_weights,
    })
}

impl Computed {
    /// The run of one unit, or of persons with `household` beside them.
    fn assemble(
        output: OutputFolder,
        timings: Option<StageClock>,
        pipeline: Pipeline,
        questionnaire: Questionnaire,
        ingested: Ingested,
        unit: Unit,
        household: Option<Box<HouseholdPart>>,
    ) -> Computed {
        Computed {
            fieldwork: None,
            output,
            warnings: unit.warnings,
            replicate_weights: unit.replicate_weights,
            timings,
            pipeline,
            questionnaire,
            ingested,
            design: unit.design,
            schemes: unit.schemes,
            estimates: unit.estimates,
            contrasts: unit.contrasts,
            tests: unit.tests,
            household,
        }
    }
}

/// The replicate stage's settings for `variance` from `[variance]`; none for Taylor, which is not
/// a replicate method.
pub(crate) fn replicate_settings(
    p: &Pipeline,
    variance: VarianceMethod,
) -> Option<ReplicateStageSettings> {
    let s = &p.replicate;
    let replicates = s.replicates.unwrap_or(200);
    let method = match variance {
        VarianceMethod::Taylor => return None,
        VarianceMethod::Jk1 => ReplicateMethod::Jk1,
        VarianceMethod::Jkn => ReplicateMethod::Jkn,
        VarianceMethod::Brr => ReplicateMethod::Brr,
        VarianceMethod::Fay => ReplicateMethod::Fay { rho: s.fay_rho },
        VarianceMethod::Bootstrap => ReplicateMethod::Bootstrap {
            replicates,
            seed: s.seed,
        },
        VarianceMethod::Subbootstrap => ReplicateMethod::Subbootstrap {
            replicates,
            seed: s.seed,
        },
        VarianceMethod::Sdr => ReplicateMethod::Sdr {
            replicates: s.replicates,
            sort: s.sort.clone(),
            circular: s.circular,
        },
        VarianceMethod::Supplied => ReplicateMethod::Supplied(SuppliedSpec {
            // Names or `*` patterns: the stage matches them against the data.
            columns: s.columns.clone(),
            kind: match s.supplied_type.as_str() {
                "bootstrap" => SuppliedKind::Bootstrap,
                "jk1" => SuppliedKind::Jk1,
                "jkn" => SuppliedKind::Jkn,
                "brr" => SuppliedKind::Brr,
                "fay" => SuppliedKind::Fay { rho: s.fay_rho },
                "sdr" => SuppliedKind::Sdr,
                _ => SuppliedKind::Other,
            },
            scale: s.scale,
            rscales: s.rscales.clone(),
            combined_weights: s.combined_weights,
            replicates: s.replicates,
        }),
    };
    Some(ReplicateStageSettings {
        name: variance.as_str().to_string(),
        method,
        mse: s.mse,
        profile: s.profile,
        nonresponse: s.nonresponse,
        drop_failed: s.drop_failed,
        replicate_df: s.replicate_df,
        certainty: s.certainty,
    })
}

/// Write the outputs every run produces, and `comparison.parquet` for `compare`.
fn stage_outputs(c: &Computed, comparison: bool) -> Result<StagedFiles, PipelineError> {
    let dir = &c.pipeline.output_dir;
    let metadata = provenance(&c.pipeline, &c.questionnaire, &c.ingested)?;
    // The two largest files are encoded and synced at the same time: the estimates with the
    // row reports, and the weights (one row per input row).
    let (first, weights) = rayon::join(
        || -> Result<StagedFiles, PipelineError> {
            let mut staged = c.output.stage();
            crate::output::write_estimates(
                &mut staged,
                &dir.join("estimates.parquet"),
                &c.estimates,
                &metadata,
            )?;
            write_row_reports(&mut staged, dir, &c.ingested, "")?;
            if let Some(h) = &c.household {
                write_row_reports(&mut staged, dir, &h.ingested, "household_")?;
            }
            Ok(staged)
        },
        || -> Result<StagedFiles, PipelineError> {
            let mut staged = c.output.stage();
            write_weights_file(
                &mut staged,
                &dir.join("weights.parquet"),
                (&c.pipeline, &c.ingested, &c.schemes, &c.replicate_weights),
                &metadata,
            )?;
            if let Some(h) = &c.household {
                write_weights_file(
                    &mut staged,
                    &dir.join("household_weights.parquet"),
                    (&h.pipeline, &h.ingested, &h.schemes, &h.replicate_weights),
                    &metadata,
                )?;
            }
            Ok(staged)
        },
    );
    let mut staged = first?;
    staged.absorb(weights?);
    crate::output::write_text(&mut staged, &dir.join("weighting.json"), &weighting_json(c))?;
    crate::output::write_text(
        &mut staged,
        &dir.join("run_summary.json"),
        &run_summary_json(c),
    )?;
    if !c.pipeline.contrasts.is_empty() {
        let path = dir.join("contrasts.parquet");
        crate::output::contrasts::write_parquet(&mut staged, &path, &c.contrasts, &metadata)?;
        if c.pipeline
            .publication
            .formats
            .contains(&crate::output::settings::Format::Csv)
        {
            let path = dir.join("contrasts.csv");
            crate::output::contrasts::write_csv(&mut staged, &path, &c.contrasts)?;
        }
    }
    if !c.pipeline.tests.is_empty() {
        let path = dir.join("tests.parquet");
        crate::output::association::write_parquet(&mut staged, &path, &c.tests, &metadata)?;
        if c.pipeline
            .publication
            .formats
            .contains(&crate::output::settings::Format::Csv)
        {
            let path = dir.join("tests.csv");
            crate::output::association::write_csv(&mut staged, &path, &c.tests)?;
        }
    }
    if let Some(f) = &c.fieldwork {
        monitor::stage_fieldwork(&mut staged, dir, f, &metadata)?;
    }
    if comparison {
        // Before the publication products, so that manifest.json lists it too.
        let names: Vec<String> = c.schemes.iter().map(|s| s.name.clone()).collect();
        let path = dir.join("comparison.parquet");
        crate::output::write_comparison(&mut staged, &path, &c.estimates, &names, &metadata)?;
    }
    let context = publication_context(c, metadata);
    crate::output::publish::write_publication(
        &mut staged,
        dir,
        &c.estimates,
        &context,
        &c.pipeline.publication,
    )?;
    Ok(staged)
}

/// `weights.parquet`: every input row's id, response status, design weight and the final
/// weight of every scheme (and of every replicate when they are published).
fn write_weights_file(
    staged: &mut StagedFiles,
    path: &Path,
    (pipeline, ingested, schemes, replicate_weights): (
        &Pipeline,
        &Ingested,
        &[Scheme],
        &[(String, Vec<f64>)],
    ),
    metadata: &[(String, String)],
) -> Result<(), PipelineError> {
    struct Unit<'a> {
        pipeline: &'a Pipeline,
        ingested: &'a Ingested,
        schemes: &'a [Scheme],
        replicate_weights: &'a [(String, Vec<f64>)],
    }
    let c = Unit {
        pipeline,
        ingested,
        schemes,
        replicate_weights,
    };
    let base = numeric_column(c.ingested, &c.pipeline.design.weight);
    let mut per_scheme: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for s in c.schemes {
        let mut full = vec![None; c.ingested.frame.n_rows()];
        let mut k = 0;
        for (r, slot) in full.iter_mut().enumerate() {
            if c.ingested.respondent[r] {
                *slot = Some(s.weights[k]);
                k += 1;
            }
        }
        per_scheme.push((s.name.clone(), full));
    }
    for (name, weights) in c.replicate_weights {
        let mut full = vec![None; c.ingested.frame.n_rows()];
        let mut k = 0;
        for (r, slot) in full.iter_mut().enumerate() {
            if c.ingested.respondent[r] {
                *slot = Some(weights[k]).filter(|w| w.is_finite());
                k += 1;
            }
        }
        per_scheme.push((name.clone(), full));
    }
    crate::output::write_weights(
        staged,
        path,
        c.ingested.frame.column(
            c.pipeline
                .data
                .id
                .as_deref()
                .unwrap_or(crate::ingest::ROW_ID),
        ),
        &c.ingested.respondent,
        &base,
        &per_scheme,
        metadata,
    )?;
    Ok(())
}

/// What the publication products (tables, SDMX, report, manifest) say about the run.
fn publication_context(
    c: &Computed,
    provenance: Vec<(String, String)>,
) -> crate::output::context::PublicationContext<'_> {
    use crate::output::context::{
        CalibrationFit, DesignSummary, PublicationContext, SchemeSummary,
    };
    let p = &c.pipeline;
    let all_rows = vec![true; c.design.n_rows()];
    PublicationContext {
        questionnaire: &c.questionnaire,
        contrasts: &c.contrasts,
        tests: &c.tests,
        fieldwork: c.fieldwork.as_ref(),
        title: p.title.clone().unwrap_or_default(),
        reference_period: p.reference_period.clone().unwrap_or_default(),
        tool_version: VERSION.to_string(),
        data_file: file_name(&p.data.path),
        data_sha256: c.ingested.sha256.clone(),
        rows_read: c.ingested.rows_read,
        rows_used: c.ingested.rows_used(),
        rows_quarantined: c.ingested.rows_quarantined,
        respondents: c.ingested.respondent.iter().filter(|&&r| r).count() as u64,
        findings_by_kind: findings_by_kind(&c.ingested),
        first_findings: c
            .ingested
            .findings
            .iter()
            .take(20)
            .map(|f| f.into_owned())
            .collect(),
        design: DesignSummary {
            strata: (!p.design.strata.is_empty()).then(|| p.design.strata.join(" × ")),
            psu: p.design.psu.clone(),
            weight: if p.weight_from_fpc {
                "N/n per stage, from the fpc".into()
            } else {
                p.design.weight.clone()
            },
            fpc: p.design.fpc.clone(),
            lonely_psu: p.design.lonely_psu.as_str().to_string(),
            n_strata: c.design.n_strata(),
            n_psu: c.design.n_psu(),
            df: c.design.degf(&all_rows),
        },
        // Household schemes first (as their rows in the tables), then the persons'; each
        // matched to its definition by name.
        schemes: c
            .household
            .iter()
            .map(|h| (&h.pipeline, h.schemes.as_slice()))
            .chain(std::iter::once((p, c.schemes.as_slice())))
            .flat_map(|(p, schemes)| {
                schemes.iter().filter_map(move |s| {
                    let spec = p.weighting.iter().find(|w| w.name == s.name)?;
                    Some(SchemeSummary {
                        name: s.name.clone(),
                        nonresponse_classes: spec.nonresponse_classes.clone(),
                        eligibility_adjusted: spec.adjust_eligibility,
                        weights: s.summary().clone(),
                        calibration: s.calibration.as_ref().map(|k| CalibrationFit {
                            method: k.method.clone(),
                            iterations: k.iterations,
                            max_margin_error: k.max_margin_error,
                            converged: k.converged,
                        }),
                    })
                })
            })
            .collect(),
        variance_methods: p.variance.iter().map(|v| v.as_str().to_string()).collect(),
        ci_level: p.estimation.level,
        ci_methods: p
            .estimation
            .ci
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
        domain_df: match p.estimation.domain_df {
            crate::estimate::DomainDf::Subset => "subset".into(),
            crate::estimate::DomainDf::Full => "full".into(),
        },
        provenance,
    }
}

/// The design in `run_summary.json`; `collapsed_strata` only when strata were collapsed.
fn design_json(design: &Design) -> serde_json::Value {
    let mut json = serde_json::json!({
        "strata": design.n_strata(),
        "psus": design.n_psu(),
        "rows": design.n_rows(),
    });
    if !design.collapsed_strata().is_empty() {
        json["collapsed_strata"] = collapsed_strata_json(design);
    }
    json
}

/// The strata merged by `lonely_psu = "collapse"`.
fn collapsed_strata_json(design: &Design) -> serde_json::Value {
    design
        .collapsed_strata()
        .iter()
        .map(|c| {
            serde_json::json!({
                "stratum": c.stratum,
                "partner": c.partner,
                "merged_stratum": c.merged,
                "rule": c.rule.as_str(),
            })
        })
        .collect()
}

/// Per scheme its definition and the distribution of its final weights.
fn schemes_json(p: &Pipeline, schemes: &[Scheme]) -> serde_json::Value {
    // Schemes are in config order: match each to its definition by name.
    schemes
        .iter()
        .filter_map(|s| {
            p.weighting
                .iter()
                .find(|w| w.name == s.name)
                .map(|w| (w, s))
        })
        .map(|(spec, s)| {
            let calibration = s.calibration.as_ref().map(|c| {
                serde_json::json!({
                    "method": c.method,
                    "margins": c.margins,
                    "bounds": spec.calibration.as_ref().and_then(|k| k.bounds).map(|(l, u)| [l, u]),
                    "iterations": c.iterations,
                    "converged": c.converged,
                    "max_margin_error": c.max_margin_error,
                    "negative_weights": c.negative_weights,
                    "trimmed": c.trimmed,
                    "g_min": c.g_range.0,
                    "g_max": c.g_range.1,
                    "warnings": c.warnings,
                })
            });
            let mut scheme = serde_json::json!({
                "name": s.name,
                "nonresponse_classes": spec.nonresponse_classes,
                "calibration": calibration,
                "weights": s.summary().clone(),
            });
            if spec.adjust_eligibility {
                scheme["eligibility"] = "adjust".into();
            }
            scheme
        })
        .collect()
}

/// `weighting.json`: per scheme its definition and the distribution of its final weights.
fn weighting_json(c: &Computed) -> String {
    let mut json = serde_json::json!({ "schemes": schemes_json(&c.pipeline, &c.schemes) });
    if !c.design.collapsed_strata().is_empty() {
        json["collapsed_strata"] = collapsed_strata_json(&c.design);
    }
    if let Some(h) = &c.household {
        json["household_schemes"] = schemes_json(&h.pipeline, &h.schemes);
    }
    let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
    text.push('\n');
    text
}

/// Per kind: the count, whether any of them quarantined its row, and the count per action.
fn findings_json(i: &Ingested) -> serde_json::Value {
    let mut findings: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for ((k, action), n) in findings_by_kind(i) {
        let entry = findings
            .entry(k.as_str())
            .or_insert_with(|| serde_json::json!({ "count": 0, "quarantines": false }));
        entry["count"] = serde_json::json!(entry["count"].as_u64().unwrap_or(0) + n as u64);
        if action == FindingAction::Quarantined {
            entry["quarantines"] = serde_json::json!(true);
        }
        entry[action.as_str()] = serde_json::json!(n);
    }
    findings.into()
}

/// The last component of a path, as outputs name input files.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One input file's row accounting in `run_summary.json`.
fn input_json(path: &Path, i: &Ingested) -> serde_json::Value {
    serde_json::json!({
        "file": file_name(path),
        "sha256": i.sha256,
        "rows_read": i.rows_read,
        "rows_used": i.rows_used(),
        "rows_quarantined": i.rows_quarantined,
        "respondents": i.respondent.iter().filter(|&&r| r).count(),
        "ignored_columns": i.ignored_columns,
        "absent_variables": i.absent_variables,
    })
}

/// `run_summary.json`: row accounting per input file, findings by kind, what was run, and (with
/// `--timings`) the wall time of each stage.
fn run_summary_json(c: &Computed) -> String {
    let i = &c.ingested;
    assert_eq!(
        i.rows_read,
        i.rows_used() + i.rows_quarantined,
        "row accounting"
    );
    let findings = findings_json(i);
    let mut summary = serde_json::json!({
        "tool": { "name": "cvsurvey", "version": VERSION },
        "questionnaire": { "id": c.questionnaire.id, "version": c.questionnaire.version },
        "inputs": [input_json(&c.pipeline.data.path, i)],
        "findings": findings,
        "design": design_json(&c.design),
        "weighting": c.schemes.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "variance": c.pipeline.variance.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        "estimates": c.estimates.len(),
        "warnings": c.warnings,
    });
    if let Some(h) = &c.household {
        // Households and persons are counted separately: each file's rows, findings, design.
        let i = &h.ingested;
        let mut household = input_json(&h.pipeline.data.path, i);
        household["level"] = serde_json::json!("household");
        summary["inputs"][0]["level"] = serde_json::json!("person");
        if let Some(inputs) = summary["inputs"].as_array_mut() {
            inputs.insert(0, household);
        }
        summary["household_findings"] = findings_json(i);
        summary["household_design"] = design_json(&h.design);
        summary["household_weighting"] = h
            .schemes
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .into();
    }
    if let Some(clock) = &c.timings {
        summary["wall_time_ms"] = clock
            .laps
            .iter()
            .map(|(stage, ms)| (stage.to_string(), serde_json::json!(ms)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    text.push('\n');
    text
}

/// `cvsurvey run`: the whole pipeline; writes `estimates.parquet`, `weights.parquet`,
/// `weighting.json`, `quarantine.csv` and `findings.csv` into the configured output folder.
pub fn run(config_path: &Path, opts: RunOptions<'_>) -> Result<RunReport, PipelineError> {
    let c = compute(config_path, opts)?;
    let files = c.output.commit(stage_outputs(&c, false)?)?;
    Ok(finish(c, files))
}

/// `cvsurvey compare`: the run, plus `comparison.parquet` putting each indicator × domain's
/// estimate, SE and deff under every scheme side by side; the report's `comparison()` prints it.
pub fn compare(config_path: &Path, opts: RunOptions<'_>) -> Result<RunReport, PipelineError> {
    let c = compute(config_path, opts)?;
    let files = c.output.commit(stage_outputs(&c, true)?)?;
    Ok(finish(c, files))
}

fn finish(c: Computed, files: Vec<PathBuf>) -> RunReport {
    let design_summary = Some(design_summary(&c.design));
    let households = c.household.as_ref().map(|h| {
        HouseholdReport::of(
            &h.ingested,
            &h.pipeline.data.path,
            Some(&h.design),
            &h.schemes,
        )
    });
    let Computed {
        pipeline,
        questionnaire,
        ingested,
        schemes,
        estimates,
        contrasts,
        tests,
        warnings,
        ..
    } = c;
    let mut report = report(
        &pipeline,
        &questionnaire,
        &ingested,
        design_summary,
        &schemes,
        estimates,
        files,
    );
    report.warnings.extend(warnings);
    report.contrasts = contrasts;
    report.tests = tests;
    report.households = households;
    report
}

/// One file's lines of the console summary.
struct UnitLines<'a> {
    data_path: &'a Path,
    delimiter: Option<u8>,
    sheet: Option<&'a str>,
    row_number_ids: bool,
    rows_read: u64,
    rows_used: u64,
    rows_quarantined: u64,
    respondents: u64,
    /// What a respondent is: "respondents", "responding households".
    respondent_word: &'static str,
    findings_by_kind: &'a BTreeMap<(FindingKind, FindingAction), usize>,
    design: Option<(usize, usize, f64)>,
    schemes: &'a [(String, WeightSummary)],
    /// The file's estimates.
    estimates: &'a [EstimateRow],
}

/// Data, rows, findings, design, weights and the whole-population estimates of one file.
fn write_unit(s: &mut String, u: &UnitLines<'_>) {
    let _ = writeln!(
        s,
        "data      {}{}{}{}",
        u.data_path.display(),
        // A delimiter other than the comma is said, as it may have been detected.
        match u.delimiter {
            Some(d) if d != b',' => format!("  (delimiter {})", crate::ingest::delimiter_name(d)),
            _ => String::new(),
        },
        // The sheet is said, as it may be the first one by default.
        match u.sheet {
            Some(name) => format!("  (sheet {name})"),
            None => String::new(),
        },
        if u.row_number_ids {
            "  (no [data] id: rows are identified by their row number)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "rows      {} read = {} used + {} quarantined  ({} {}, {} unit nonrespondents)",
        u.rows_read,
        u.rows_used,
        u.rows_quarantined,
        u.respondents,
        u.respondent_word,
        u.rows_used - u.respondents
    );
    if u.findings_by_kind.is_empty() {
        let _ = writeln!(s, "findings  none");
    } else {
        let parts: Vec<String> = u
            .findings_by_kind
            .iter()
            .map(|((k, action), n)| match action {
                FindingAction::Quarantined => format!("{n} {k}"),
                _ => format!("{n} {k} ({action})"),
            })
            .collect();
        let _ = writeln!(s, "findings  {}", parts.join(", "));
    }
    if let Some((strata, psus, df)) = u.design {
        // The df the whole-population estimates use, per variance method: the design's for
        // Taylor, the replicate weights' rank for replicate methods.
        let mut by_method: Vec<(&str, f64, f64)> = Vec::new();
        for r in u.estimates.iter().filter(|r| r.domain_var == TOTAL) {
            let Some(d) = r.df else { continue };
            match by_method.iter_mut().find(|m| m.0 == r.variance.as_str()) {
                Some(m) => {
                    m.1 = m.1.min(d);
                    m.2 = m.2.max(d);
                }
                None => by_method.push((r.variance.as_str(), d, d)),
            }
        }
        let df_text = if by_method.iter().all(|&(_, lo, hi)| lo == df && hi == df) {
            format!("{df} df")
        } else {
            let used: Vec<String> = by_method
                .iter()
                .map(|(m, lo, hi)| {
                    if lo == hi {
                        format!("{lo} ({m})")
                    } else {
                        format!("{lo}–{hi} ({m})")
                    }
                })
                .collect();
            format!(
                "{df} df; whole-population estimates use df {}",
                used.join(", ")
            )
        };
        let _ = writeln!(s, "design    {strata} strata, {psus} PSUs, {df_text}");
    }
    for (name, w) in u.schemes {
        let _ = writeln!(
            s,
            "weights   {name}: min {:.4}, max {:.4}, sum {:.1}, Kish deff {:.3}",
            w.min, w.max, w.sum, w.kish_deff
        );
    }
    if !u.estimates.is_empty() {
        let names: Vec<String> = u.schemes.iter().map(|(n, _)| n.clone()).collect();
        let table = crate::output::comparison_table(u.estimates, &names);
        let _ = writeln!(
            s,
            "estimates {} rows; whole population, estimate (SE) by weighting scheme:",
            u.estimates.len()
        );
        let mut header = format!("  {:<34}", "indicator");
        for n in &names {
            header.push_str(&format!(" {n:>18}"));
        }
        let _ = writeln!(s, "{header}");
        for row in table.iter().filter(|r| r.key[2] == TOTAL) {
            let mut line = format!("  {:<34}", row_label(row));
            for cell in &row.by_scheme {
                let f = |x: Option<f64>| x.map_or("NA".to_string(), |v| format!("{v:.4}"));
                let text = cell.map_or("-".to_string(), |r| {
                    format!("{} ({})", f(r.estimate), f(r.se))
                });
                line.push_str(&format!(" {text:>18}"));
            }
            let _ = writeln!(s, "{line}");
        }
    }
}

/// An indicator in the console tables: its id, with the category (a distribution's code, a
/// quantile's probability) in brackets.
fn row_label(row: &crate::output::ComparisonRow<'_>) -> String {
    match &row.category {
        Some(c) => format!("{}[{c}]", row.key[0]),
        None => row.key[0].clone(),
    }
}

pub(crate) fn numeric_column(ingested: &Ingested, name: &str) -> Vec<f64> {
    match ingested.frame.column(name).map(|c| &c.data) {
        Some(ColumnData::Num(v)) => v.to_vec(),
        // Ingest quarantines rows whose weight is not a positive number, so a text weight column
        // can only reach here when every row was quarantined.
        _ => vec![f64::NAN; ingested.frame.n_rows()],
    }
}

fn provenance(
    p: &Pipeline,
    q: &Questionnaire,
    ingested: &Ingested,
) -> Result<Vec<(String, String)>, PipelineError> {
    let hash = |path: &Path| {
        crate::ingest::sha256_file(path).map_err(|e| OutputError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    };
    Ok(vec![
        ("cvsurvey.version".into(), VERSION.into()),
        ("cvsurvey.questionnaire.id".into(), q.id.clone()),
        ("cvsurvey.questionnaire.version".into(), q.version.clone()),
        (
            "cvsurvey.questionnaire.file".into(),
            file_name(&p.questionnaire),
        ),
        (
            "cvsurvey.questionnaire.sha256".into(),
            hash(&p.questionnaire)?,
        ),
        ("cvsurvey.config.file".into(), file_name(&p.config_path)),
        ("cvsurvey.config.sha256".into(), hash(&p.config_path)?),
        ("cvsurvey.data.file".into(), file_name(&p.data.path)),
        ("cvsurvey.data.sha256".into(), ingested.sha256.clone()),
        (
            "cvsurvey.ci.level".into(),
            format!("{}", p.estimation.level),
        ),
    ])
}

fn report(
    p: &Pipeline,
    q: &Questionnaire,
    ingested: &Ingested,
    design: Option<(usize, usize, f64)>,
    schemes: &[Scheme],
    estimates: Vec<EstimateRow>,
    files: Vec<PathBuf>,
) -> RunReport {
    RunReport {
        questionnaire: format!("{} {}", q.id, q.version),
        data_path: p.data.path.clone(),
        delimiter: ingested.delimiter,
        sheet: ingested.sheet.as_ref().map(|s| s.sheet.clone()),
        rows_read: ingested.rows_read,
        rows_used: ingested.rows_used(),
        rows_quarantined: ingested.rows_quarantined,
        respondents: ingested.respondent.iter().filter(|&&r| r).count() as u64,
        findings_by_kind: findings_by_kind(ingested),
        design,
        schemes: schemes
            .iter()
            .map(|s| (s.name.clone(), s.summary().clone()))
            .collect(),
        estimates,
        contrasts: Vec::new(),
        tests: Vec::new(),
        files,
        row_number_ids: p.data.id.is_none(),
        households: None,
        reliability: (
            p.publication.reliability.preset.as_str().to_string(),
            p.publication.reliability.suppress,
        ),
        warnings: schemes
            .iter()
            .flat_map(|s| {
                s.calibration.iter().flat_map(move |c| {
                    c.warnings
                        .iter()
                        .map(move |w| format!("weighting \"{}\": {w}", s.name))
                })
            })
            .collect(),
    }
}

impl RunReport {
    /// The short human summary printed on stdout.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "cvsurvey {VERSION} · questionnaire {}",
            self.questionnaire
        );
        let all = self.estimates.as_slice();
        let person_lines = |estimates| UnitLines {
            data_path: &self.data_path,
            delimiter: self.delimiter,
            sheet: self.sheet.as_deref(),
            row_number_ids: self.row_number_ids,
            rows_read: self.rows_read,
            rows_used: self.rows_used,
            rows_quarantined: self.rows_quarantined,
            respondents: self.respondents,
            respondent_word: "respondents",
            findings_by_kind: &self.findings_by_kind,
            design: self.design,
            schemes: &self.schemes,
            estimates,
        };
        match &self.households {
            None => write_unit(&mut s, &person_lines(all)),
            Some(h) => {
                // Each unit with its own rows: households first, as in the outputs.
                let (household_rows, person_rows): (Vec<EstimateRow>, Vec<EstimateRow>) = all
                    .iter()
                    .cloned()
                    .partition(|r| r.level == crate::questionnaire::Level::Household);
                let _ = writeln!(s, "households");
                write_unit(
                    &mut s,
                    &UnitLines {
                        data_path: &h.data_path,
                        delimiter: h.delimiter,
                        sheet: h.sheet.as_deref(),
                        row_number_ids: false,
                        rows_read: h.rows_read,
                        rows_used: h.rows_used,
                        rows_quarantined: h.rows_quarantined,
                        respondents: h.respondents,
                        respondent_word: "responding households",
                        findings_by_kind: &h.findings_by_kind,
                        design: h.design,
                        schemes: &h.schemes,
                        estimates: &household_rows,
                    },
                );
                let _ = writeln!(s, "persons");
                write_unit(&mut s, &person_lines(&person_rows));
            }
        }
        if !self.estimates.is_empty() {
            let count = |flag| self.estimates.iter().filter(|r| r.flag == flag).count();
            let (preset, blanks) = &self.reliability;
            let suppressed = count(crate::estimate::Flag::Suppressed);
            let _ = writeln!(
                s,
                "flags     {preset}: {} of {} rows caution, {suppressed} suppressed{}",
                count(crate::estimate::Flag::Caution),
                self.estimates.len(),
                if *blanks {
                    " (blanked)"
                } else if suppressed > 0 {
                    " (flagged, not blanked: [reliability] suppress = true blanks them)"
                } else {
                    ""
                }
            );
        }
        if !self.contrasts.is_empty() {
            let mut names: Vec<&str> = Vec::new();
            for r in &self.contrasts {
                if !names.contains(&r.contrast.as_str()) {
                    names.push(&r.contrast);
                }
            }
            let significant = self
                .contrasts
                .iter()
                .filter(|r| r.p_value.is_some_and(|p| p < 0.05))
                .count();
            let _ = writeln!(
                s,
                "contrasts {} rows ({}); {significant} with p < 0.05",
                self.contrasts.len(),
                names.join(", ")
            );
        }
        if !self.tests.is_empty() {
            let f_rows: Vec<&crate::estimate::TestRow> = self
                .tests
                .iter()
                .filter(|r| r.statistic == "rao_scott_f")
                .collect();
            let significant = f_rows
                .iter()
                .filter(|r| r.p_value.is_some_and(|p| p < 0.05))
                .count();
            let _ = writeln!(
                s,
                "tests     {} Rao–Scott F tests (test × scheme × variance); {significant} with p < 0.05",
                f_rows.len()
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning   {w}");
        }
        for f in &self.files {
            let _ = writeln!(s, "wrote     {}", f.display());
        }
        s
    }
}

impl RunReport {
    /// The side-by-side comparison of schemes printed by `cvsurvey compare`: per scheme its
    /// weight distribution, then per indicator the whole-population estimate (SE) and deff
    /// under each scheme.
    pub fn comparison(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "weighting schemes");
        let _ = writeln!(
            s,
            "  {:<14} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7} {:>9}",
            "scheme", "n", "min", "q1", "median", "q3", "max", "max/min", "1+CV²", "n_eff"
        );
        for (name, w) in &self.schemes {
            let _ = writeln!(
                s,
                "  {:<14} {:>7} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>8.2} {:>7.3} {:>9.1}",
                name,
                w.n,
                w.min,
                w.q1,
                w.median,
                w.q3,
                w.max,
                w.ratio_max_min,
                w.kish_deff,
                w.effective_n
            );
        }
        let names: Vec<String> = self.schemes.iter().map(|(n, _)| n.clone()).collect();
        let table = crate::output::comparison_table(&self.estimates, &names);
        let _ = writeln!(s, "\nwhole population: estimate (SE) [deff] per scheme");
        let mut header = format!("  {:<34}", "indicator");
        for n in &names {
            header.push_str(&format!(" {:>28}", n));
        }
        let _ = writeln!(s, "{header}");
        for row in table.iter().filter(|r| r.key[2] == TOTAL) {
            let mut line = format!("  {:<34}", row_label(row));
            for cell in &row.by_scheme {
                let text = match cell {
                    Some(r) => format!(
                        "{} ({}) [{}]",
                        r.estimate.map_or("NA".into(), |v| format!("{v:.4}")),
                        r.se.map_or("NA".into(), |v| format!("{v:.4}")),
                        r.deff.map_or("-".into(), |v| format!("{v:.2}"))
                    ),
                    None => "-".into(),
                };
                line.push_str(&format!(" {text:>28}"));
            }
            let _ = writeln!(s, "{line}");
        }
        s
    }
}
