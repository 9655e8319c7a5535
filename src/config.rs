//! The pipeline configuration file (`pipeline.toml`, documented in `docs/pipeline.md`).
//!
//! Reading happens in two steps, as in ripgrep's low/high arguments: serde deserializes the raw
//! TOML into `Raw*` structs that reject unknown keys, then [`Pipeline::load`] checks the values
//! and resolves paths relative to the config file, so that every config error is reported before
//! any data is read.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::design::{CollapseSpec, DesignSpec, LonelyPsu, PpsMethod};
use crate::estimate::ContrastSpec;
use crate::estimate::ci::CiMethod;
use crate::estimate::{DomainDf, VarianceMethod};
use crate::fieldwork::{DEFAULT_OUTLIER_Z, Date, DispositionMap, EligibilityRate, Outcome};
use crate::ingest::{InvalidAnswer, TextFormat};
use crate::output::reliability::RawReliability;
use crate::output::sdmx::RawSdmx;
use crate::output::settings::PublicationConfig;
use crate::questionnaire::Level;
use crate::replicates::{Certainty, ReplicateDfRule, ReplicateNonresponse, ReplicateProfile};
use crate::weighting::{
    CalibrationConfig, CalibrationMethodName, RakeConvergence, TrimConfig, TrimTarget,
    WeightingSpec,
};

/// Errors reading or checking a pipeline configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the pipeline config: {source}")]
    Read {
        /// Config path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown/missing keys.
    #[error("{path}{location}: {message}")]
    Toml {
        /// Config path.
        path: PathBuf,
        /// `:line:column` of the problem, when the parser gives one.
        location: String,
        /// What the parser reported, with the table and key it concerns.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// Config path.
        path: PathBuf,
        /// The offending key, e.g. `estimation.ci`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A TOML error as one line: `:line:column` (1-based, in characters) and the parser's message
/// preceded by the key it concerns (`design.strata_typo`), found from the text at the error's
/// position and the table header above it.
fn toml_problem(text: &str, e: &toml::de::Error) -> (String, String) {
    const MAX_MESSAGE: usize = 300;
    let mut message: String = e.message().trim().replace('\n', "; ");
    if message.chars().count() > MAX_MESSAGE {
        message = message.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    let Some(span) = e.span() else {
        return (String::new(), message);
    };
    let mut offset = span.start.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let full_key = match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(format!("[{t}]")),
        (None, None) => None,
    };
    let message = match full_key {
        Some(k) if !message.contains(&k) => format!("{k}: {message}"),
        _ => message,
    };
    (format!(":{line}:{column}"), message)
}

/// One string or a list of strings (`psu = "psu"` or `psu = ["dnum", "snum"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    questionnaire: String,
    data: RawData,
    design: RawDesign,
    #[serde(default)]
    weighting: Vec<RawWeighting>,
    #[serde(default)]
    variance: Option<RawVariance>,
    #[serde(default)]
    estimation: Option<RawEstimation>,
    #[serde(default)]
    reliability: Option<RawReliability>,
    #[serde(default)]
    sdmx: Option<RawSdmx>,
    #[serde(default)]
    contrast: Vec<RawContrast>,
    #[serde(default)]
    test: Vec<RawTest>,
    #[serde(default)]
    validation: Option<RawValidation>,
    #[serde(default)]
    dispositions: Option<RawDispositions>,
    #[serde(default)]
    fieldwork: Option<RawFieldwork>,
    output: RawOutput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidation {
    #[serde(default)]
    invalid_answer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContrast {
    name: String,
    indicators: Vec<String>,
    by: String,
    compare: Vec<String>,
    #[serde(default)]
    within: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    rows: String,
    cols: String,
    #[serde(default)]
    universe: Option<String>,
}

/// One `[[test]]`: a Rao–Scott test of association between two coded variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConfig {
    /// Free text, unique within a run.
    pub name: String,
    /// Row variable.
    pub rows: String,
    /// Column variable.
    pub cols: String,
    /// Who is tested, as an expression of the questionnaire (checked by the pipeline).
    pub universe: Option<String>,
}

impl RawPipeline {
    /// Enumerated values are matched whatever their case (`"BRR"`, `"Raking"`, `"NCHS-2017"`);
    /// from here on, and in every output, they carry their canonical lower-case names.
    fn canonicalise(&mut self) {
        fn lower(s: &mut String) {
            *s = s.trim().to_ascii_lowercase();
        }
        self.design.lonely_psu.iter_mut().for_each(lower);
        for w in &mut self.weighting {
            if let Some(c) = &mut w.calibration {
                lower(&mut c.method);
                c.convergence.iter_mut().for_each(lower);
                if let Some(t) = &mut c.trim {
                    t.on.iter_mut().for_each(lower);
                }
            }
        }
        if let Some(v) = &mut self.variance {
            match &mut v.method {
                Some(OneOrMany::One(m)) => lower(m),
                Some(OneOrMany::Many(ms)) => ms.iter_mut().for_each(lower),
                None => {}
            }
            v.profile.iter_mut().for_each(lower);
            v.nonresponse.iter_mut().for_each(lower);
            v.supplied_type.iter_mut().for_each(lower);
            v.replicate_df.iter_mut().for_each(lower);
        }
        if let Some(e) = &mut self.estimation {
            e.ci.iter_mut().flatten().for_each(lower);
            e.domain_df.iter_mut().for_each(lower);
        }
        if let Some(r) = &mut self.reliability {
            r.preset.iter_mut().for_each(lower);
        }
        self.output.formats.iter_mut().flatten().for_each(lower);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    path: String,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    decimal: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    na: Option<Vec<String>>,
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    household_id: Option<String>,
    #[serde(default)]
    household: Option<RawHouseholdData>,
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    interviewer: Option<String>,
    #[serde(default)]
    interview_date: Option<String>,
}

/// `[data.household]`: the household file of a survey of households and persons.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHouseholdData {
    path: String,
    id: String,
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    decimal: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    sheet: Option<String>,
}

/// `[design.person]`: how a person's design weight follows from the household's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersonDesign {
    #[serde(default)]
    selection_factor: Option<String>,
    #[serde(default)]
    weight: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDesign {
    #[serde(default)]
    strata: Option<OneOrMany>,
    #[serde(default)]
    psu: Option<OneOrMany>,
    #[serde(default)]
    weight: Option<String>,
    #[serde(default)]
    fpc: Option<OneOrMany>,
    #[serde(default)]
    nest: bool,
    #[serde(default)]
    lonely_psu: Option<String>,
    #[serde(default)]
    collapse_order: Option<String>,
    #[serde(default)]
    collapse_within: Option<String>,
    #[serde(default)]
    adjust_domain_lonely: bool,
    #[serde(default)]
    pps: Option<String>,
    #[serde(default)]
    person: Option<RawPersonDesign>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeighting {
    name: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    household_scheme: Option<String>,
    #[serde(default)]
    nonresponse: Option<RawNonresponse>,
    #[serde(default)]
    calibration: Option<RawCalibration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalibration {
    method: String,
    margins: String,
    #[serde(default)]
    bounds: Option<[f64; 2]>,
    #[serde(default)]
    trim: Option<RawTrim>,
    #[serde(default)]
    max_iter: Option<usize>,
    #[serde(default)]
    tolerance: Option<f64>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    convergence: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrim {
    #[serde(default)]
    lower: Option<f64>,
    #[serde(default)]
    upper: Option<f64>,
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    strict: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNonresponse {
    classes: Vec<String>,
    #[serde(default)]
    eligibility: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariance {
    #[serde(default)]
    method: Option<OneOrMany>,
    #[serde(default)]
    replicates: Option<usize>,
    #[serde(default)]
    max_replicates: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    fay_rho: Option<f64>,
    #[serde(default)]
    mse: Option<bool>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    nonresponse: Option<String>,
    #[serde(default)]
    drop_failed: bool,
    #[serde(default)]
    columns: Option<OneOrMany>,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    rscales: Option<Vec<f64>>,
    #[serde(default, rename = "type")]
    supplied_type: Option<String>,
    #[serde(default)]
    combined_weights: Option<bool>,
    #[serde(default)]
    replicate_df: Option<String>,
    #[serde(default)]
    certainty: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    circular: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEstimation {
    #[serde(default)]
    indicators: Option<Vec<String>>,
    #[serde(default)]
    domains: Vec<RawDomain>,
    #[serde(default)]
    ci: Option<Vec<String>>,
    #[serde(default)]
    level: Option<f64>,
    #[serde(default)]
    domain_df: Option<String>,
}

/// A domain: one variable, or a list of variables whose cross-classification is estimated.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDomain {
    One(String),
    Cross(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: String,
    #[serde(default)]
    formats: Option<Vec<String>>,
    #[serde(default)]
    replicate_weights: bool,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    reference_period: Option<String>,
}

/// Input data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Path of the CSV or Parquet file (absolute or relative to the working directory).
    pub path: PathBuf,
    /// Unique respondent id column; `None`: the data row number identifies a row.
    pub id: Option<String>,
    /// Texts read as blank in numeric columns (default `""`, `NA`, `.`).
    pub na: Vec<String>,
    /// Response indicator column (1 respondent, 0 unit nonrespondent); `None`: all respond.
    pub response: Option<String>,
    /// How a CSV/TSV file is written (`delimiter`, `decimal`, `encoding`).
    pub text_format: TextFormat,
    /// `sheet`: the sheet of a workbook (`.xlsx`, `.xlsm`, `.xls`, `.ods`); `None`: the first.
    pub sheet: Option<String>,
}

/// `delimiter`, `decimal` and `encoding` of the table `section` (`data`, `data.household`)
/// checked: the key and what is wrong otherwise.
fn text_format(
    section: &str,
    delimiter: Option<&str>,
    decimal: Option<&str>,
    encoding: Option<&str>,
) -> Result<TextFormat, (String, String)> {
    let key = |k: &str| format!("{section}.{k}");
    let delimiter = match delimiter {
        None => None,
        Some(",") => Some(b','),
        Some(";") => Some(b';'),
        Some("\t" | "tab" | "\\t") => Some(b'\t'),
        Some("|") => Some(b'|'),
        Some(other) => {
            return Err((
                key("delimiter"),
                format!(
                    "\"{other}\" is not one of \",\", \";\", \"\\t\" (or \"tab\"), \"|\"; leave the key \
                     out to detect the delimiter from the header"
                ),
            ));
        }
    };
    let decimal_comma = match decimal {
        None | Some(".") => false,
        Some(",") => true,
        Some(other) => {
            return Err((
                key("decimal"),
                format!("\"{other}\" is not one of \".\" (the default), \",\""),
            ));
        }
    };
    if decimal_comma && delimiter == Some(b',') {
        return Err((
            key("decimal"),
            "decimal = \",\" with delimiter = \",\": a number such as 1,5 would be two cells; \
             set the delimiter the file uses (\";\", \"tab\" or \"|\")"
                .into(),
        ));
    }
    let encoding = match encoding {
        None => None,
        Some(label) => match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
            // The WHATWG "replacement" encoding decodes any file to a single error.
            Some(e) if e != encoding_rs::REPLACEMENT => Some(e),
            _ => {
                return Err((
                    key("encoding"),
                    format!(
                        "\"{label}\" is not an encoding label (WHATWG Encoding Standard); e.g. \
                         windows-1250, iso-8859-2, windows-1252, utf-8"
                    ),
                ));
            }
        },
    };
    Ok(TextFormat {
        delimiter,
        decimal_comma,
        encoding,
    })
}

/// Settings of the replicate variance methods.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicateSettings {
    /// Number of replicates for bootstrap, subbootstrap and SDR (and the expected count of
    /// supplied columns, when given).
    pub replicates: Option<usize>,
    /// Seed of the bootstrap draws.
    pub seed: u64,
    /// Fay's ρ.
    pub fay_rho: f64,
    /// Centre on the full-sample estimate (true) or on the replicate mean (false, R default).
    pub mse: Option<bool>,
    /// Package conventions.
    pub profile: ReplicateProfile,
    /// Nonresponse adjustment in replicates.
    pub nonresponse: ReplicateNonresponse,
    /// Drop a replicate whose calibration fails, with a warning, instead of stopping (R
    /// `options(survey.drop.replicates)`).
    pub drop_failed: bool,
    /// Supplied replicate weights: column names or `*` patterns, in replicate order.
    pub columns: Vec<String>,
    /// Supplied: overall scale.
    pub scale: Option<f64>,
    /// Supplied: per-replicate scales.
    pub rscales: Option<Vec<f64>>,
    /// Supplied: replication type (`bootstrap`, `jk1`, `jkn`, `brr`, `fay`, `sdr`, `other`).
    pub supplied_type: String,
    /// Supplied: the columns are final analysis weights (true, default) or factors.
    pub combined_weights: bool,
    /// Degrees of freedom of replicate rows; unset: as the profile says (R: the rank rule).
    pub replicate_df: Option<ReplicateDfRule>,
    /// Replication units of certainty strata (`certainty = "ssu"`: their second-stage units).
    pub certainty: Certainty,
    /// SDR: column ordering the replication units (`None`: file order).
    pub sort: Option<String>,
    /// SDR: ACS convention, the last unit paired with the first.
    pub circular: bool,
}

/// Which indicators to estimate, by domain, with which intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimationSpec {
    /// Indicator ids; `["*"]` means all, in questionnaire order.
    pub indicators: Vec<String>,
    /// Domain variables (each estimated separately, plus the total population). A
    /// cross-classification is written as its variables joined by `:` (`sex:age_group`), the
    /// `domain_var` of its rows.
    pub domains: Vec<String>,
    /// Interval methods for proportions (means, ratios and totals get `mean`, plus `normal`
    /// when listed).
    pub ci: Vec<CiMethod>,
    /// Confidence level, in (0, 1).
    pub level: f64,
    /// Degrees of freedom for domain intervals.
    pub domain_df: DomainDf,
}

/// The household file of a survey of households and persons (`[data.household]`,
/// `[data] household_id`, `[design.person]`).
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdSpec {
    /// Household file: one row per sampled household, respondents and nonrespondents.
    pub path: PathBuf,
    /// Household id column of the household file.
    pub id: String,
    /// Household response column (1 responding, 0 not); `None`: every household responded.
    pub response: Option<String>,
    /// Column of the person file naming each person's household.
    pub person_household_id: String,
    /// How a person's design weight follows from the household's.
    pub person_weight: PersonWeight,
    /// How the household file is written, if text (`[data.household] delimiter`, `decimal`,
    /// `encoding`; each defaults to `[data]`'s).
    pub text_format: TextFormat,
    /// The household file's sheet, if a workbook; `None`: its first sheet.
    pub sheet: Option<String>,
}

/// A person's design weight (`[design.person]`).
#[derive(Debug, Clone, PartialEq)]
pub enum PersonWeight {
    /// Household design weight × this column (one adult selected at random among the eligible:
    /// the number of eligible adults).
    SelectionFactor(String),
    /// A person design-weight column of the person file.
    Column(String),
    /// Every member is interviewed: a person carries the household's design weight.
    Household,
}

/// A checked pipeline configuration with paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The config file itself.
    pub config_path: PathBuf,
    /// Questionnaire file.
    pub questionnaire: PathBuf,
    /// Input data.
    pub data: DataSpec,
    /// Sampling design.
    pub design: DesignSpec,
    /// No weight column was named: the design weights follow from the FPCs of every stage
    /// (column [`crate::design::WEIGHT_FROM_FPC`] of the frame).
    pub weight_from_fpc: bool,
    /// Weighting schemes, in config order (at least one); of persons when the survey has a
    /// household file.
    pub weighting: Vec<WeightingSpec>,
    /// The household file, when the survey has households and persons.
    pub households: Option<HouseholdSpec>,
    /// Household weighting schemes (`level = "household"`), in config order; at least one when
    /// the survey has a household file.
    pub household_weighting: Vec<WeightingSpec>,
    /// Person schemes that start from a household scheme's final weights (`household_scheme`):
    /// person scheme → household scheme.
    pub person_scheme_bases: Vec<(String, String)>,
    /// Variance methods, in config order.
    pub variance: Vec<VarianceMethod>,
    /// Settings of the replicate methods.
    pub replicate: ReplicateSettings,
    /// Estimation settings.
    pub estimation: EstimationSpec,
    /// Output folder.
    pub output_dir: PathBuf,
    /// Add the final replicate weights of every scheme to `weights.parquet` (first replicate
    /// method).
    pub output_replicate_weights: bool,
    /// Publication products: formats, reliability rules, SDMX settings.
    pub publication: PublicationConfig,
    /// Title of the publication (`[output] title`); the questionnaire's title when absent.
    pub title: Option<String>,
    /// Reference period (`[output] reference_period`), e.g. `2025`.
    pub reference_period: Option<String>,
    /// `[[contrast]]` tables, in config order; `indicators` may be `["*"]` (every estimated
    /// indicator) until the pipeline resolves it against the questionnaire.
    pub contrasts: Vec<ContrastSpec>,
    /// `[[test]]` tables, in config order.
    pub tests: Vec<TestConfig>,
    /// `[validation] invalid_answer`: what an invalid answer does to its respondent.
    pub invalid_answer: InvalidAnswer,
    /// Final dispositions and the fieldwork outputs (`[data] disposition`, `[dispositions]`,
    /// `[fieldwork]`); `None` without dispositions.
    pub fieldwork: Option<FieldworkSpec>,
}

impl Pipeline {
    /// Read and check a pipeline config; relative paths are taken from the config's folder.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let text = crate::memory::read_text_file(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Pipeline::from_str(&text, path)
    }

    /// Parse config text as if read from `path`.
    pub fn from_str(text: &str, path: &Path) -> Result<Pipeline, ConfigError> {
        let mut raw: RawPipeline = toml::from_str(text).map_err(|e| {
            let (location, message) = toml_problem(text, &e);
            ConfigError::Toml {
                path: path.to_path_buf(),
                location,
                message,
            }
        })?;
        raw.canonicalise();
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let lonely_psu = match raw.design.lonely_psu.as_deref() {
            None => LonelyPsu::Fail,
            Some(s) => s.parse::<LonelyPsu>().map_err(|_| {
                invalid(
                    "design.lonely_psu",
                    format!(
                        "\"{s}\" is not one of fail, remove, certainty, adjust, average, collapse"
                    ),
                )
            })?,
        };
        let pps = match raw.design.pps.as_deref() {
            None => None,
            Some(s) => Some(s.parse::<PpsMethod>().map_err(|_| {
                invalid(
                    "design.pps",
                    format!("\"{s}\" is not one of brewer, overton, hartley-rao"),
                )
            })?),
        };
        for (key, given) in [
            ("design.collapse_order", raw.design.collapse_order.is_some()),
            (
                "design.collapse_within",
                raw.design.collapse_within.is_some(),
            ),
        ] {
            if given && lonely_psu != LonelyPsu::Collapse {
                return Err(invalid(
                    key,
                    "only used with lonely_psu = \"collapse\": set that, or remove the key".into(),
                ));
            }
        }
        if raw.design.adjust_domain_lonely
            && !matches!(lonely_psu, LonelyPsu::Adjust | LonelyPsu::Average)
        {
            return Err(invalid(
                "design.adjust_domain_lonely",
                format!(
                    "changes only lonely_psu = \"adjust\" or \"average\" (R's survey.adjust.domain.lonely), not \"{lonely_psu}\": set one of those, or remove the key"
                ),
            ));
        }
        let psu = raw.design.psu.map(OneOrMany::into_vec).unwrap_or_default();
        let fpc = raw.design.fpc.map(OneOrMany::into_vec).unwrap_or_default();
        if fpc.len() > psu.len().max(1) {
            return Err(invalid(
                "design.fpc",
                format!(
                    "{} fpc columns given for {} sampling stages",
                    fpc.len(),
                    psu.len().max(1)
                ),
            ));
        }
        if raw.design.weight.is_none() && fpc.len() < psu.len().max(1) {
            return Err(invalid(
                "design.weight",
                format!(
                    "no weight column and {} fpc column(s) for {} sampling stage(s): name the design weight column, or give an fpc (population size or sampling fraction) for every stage, from which the weights follow as the product of N/n",
                    fpc.len(),
                    psu.len().max(1)
                ),
            ));
        }
        if let Some(method) = pps {
            if fpc.is_empty() {
                return Err(invalid(
                    "design.pps",
                    format!(
                        "pps = \"{method}\" needs the units' inclusion probabilities as fpc: add fpc = \"<column of probabilities>\" (or leave pps out for the with-replacement approximation)"
                    ),
                ));
            }
            if method != PpsMethod::Brewer && psu.len() > 1 {
                return Err(invalid(
                    "design.pps",
                    format!(
                        "pps = \"{method}\" supports one sampling stage only ({} psu columns given), as in R: use pps = \"brewer\" for a multistage PPS design",
                        psu.len()
                    ),
                ));
            }
        }
        let weight_from_fpc = raw.design.weight.is_none();
        let strata = match raw.design.strata {
            None => Vec::new(),
            Some(listed) => {
                let strata = listed.into_vec();
                if strata.is_empty() || strata.iter().any(|c| c.trim().is_empty()) {
                    return Err(invalid(
                        "design.strata",
                        "the list of stratum columns is empty or has an empty name: name the stratum column(s), or leave the key out for an unstratified design".into(),
                    ));
                }
                strata
            }
        };
        if let Some(c) = strata
            .iter()
            .enumerate()
            .find_map(|(i, c)| strata[..i].contains(c).then_some(c))
        {
            return Err(invalid(
                "design.strata",
                format!("column \"{c}\" is listed twice"),
            ));
        }
        let design = DesignSpec {
            strata,
            psu,
            fpc,
            weight: raw
                .design
                .weight
                .unwrap_or_else(|| crate::design::WEIGHT_FROM_FPC.to_string()),
            nest: raw.design.nest,
            lonely_psu,
            collapse: CollapseSpec {
                order: raw.design.collapse_order.clone(),
                within: raw.design.collapse_within.clone(),
            },
            adjust_domain_lonely: raw.design.adjust_domain_lonely,
            pps,
        };

        // Before the household file's keys, which default to these.
        let data_text_format = text_format(
            "data",
            raw.data.delimiter.as_deref(),
            raw.data.decimal.as_deref(),
            raw.data.encoding.as_deref(),
        )
        .map_err(|(key, message)| invalid(&key, message))?;
        let households = household_spec(&raw.data, raw.design.person.as_ref(), &resolve)
            .map_err(|(key, m)| invalid(&key, m))?;
        let mut weighting: Vec<WeightingSpec> = Vec::new();
        let mut household_weighting: Vec<WeightingSpec> = Vec::new();
        let mut person_scheme_bases = Vec::new();
        for w in raw.weighting {
            let level = match w.level.as_deref() {
                None => Level::Person,
                Some(text) => Level::from_name(text).ok_or_else(|| {
                    invalid(
                        "weighting.level",
                        format!(
                            "scheme \"{}\": level = {text:?}; write \"household\" or \"person\"",
                            w.name
                        ),
                    )
                })?,
            };
            if level == Level::Household && households.is_none() {
                return Err(invalid(
                    "weighting.level",
                    format!(
                        "scheme \"{}\" is a household scheme, but the survey has one file: add [data.household] (and [data] household_id), or remove level",
                        w.name
                    ),
                ));
            }
            if let Some(base) = &w.household_scheme {
                if level == Level::Household {
                    return Err(invalid(
                        "weighting.household_scheme",
                        format!(
                            "scheme \"{}\" is a household scheme; household_scheme names the household scheme a person scheme starts from",
                            w.name
                        ),
                    ));
                }
                if !household_weighting.iter().any(|h| &h.name == base) {
                    return Err(invalid(
                        "weighting.household_scheme",
                        format!(
                            "scheme \"{}\": \"{base}\" is not a household scheme defined before it (household schemes: {})",
                            w.name,
                            if household_weighting.is_empty() {
                                "none".to_string()
                            } else {
                                household_weighting
                                    .iter()
                                    .map(|h| h.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    ));
                }
                person_scheme_bases.push((w.name.clone(), base.clone()));
            }
            let same_level = match level {
                Level::Household => &household_weighting,
                Level::Person => &weighting,
            };
            if same_level.iter().any(|x| x.name == w.name) {
                return Err(invalid(
                    "weighting.name",
                    format!("scheme \"{}\" is defined twice", w.name),
                ));
            }
            let calibration = match w.calibration {
                None => None,
                Some(c) => Some(
                    check_calibration(c, &w.name, &resolve).map_err(|(key, m)| invalid(&key, m))?,
                ),
            };
            if w.name.trim().is_empty() {
                return Err(invalid(
                    "weighting.name",
                    "a weighting scheme needs a name".into(),
                ));
            }
            let (classes, adjust_eligibility) = match w.nonresponse {
                Some(nr) if nr.classes.is_empty() => {
                    return Err(invalid(
                        "weighting.nonresponse.classes",
                        format!("scheme \"{}\": list at least one class column", w.name),
                    ));
                }
                Some(nr) => {
                    let adjust = match nr.eligibility.as_deref() {
                        None | Some("none") => false,
                        Some("adjust") => true,
                        Some(other) => {
                            return Err(invalid(
                                "weighting.nonresponse.eligibility",
                                format!(
                                    "scheme \"{}\": \"{other}\" is not \"adjust\" (spread the weight of unknown-eligibility cases, drop ineligible ones) or \"none\" (every nonrespondent counts as eligible)",
                                    w.name
                                ),
                            ));
                        }
                    };
                    (Some(nr.classes), adjust)
                }
                None => (None, false),
            };
            let spec = WeightingSpec {
                name: w.name,
                nonresponse_classes: classes,
                adjust_eligibility,
                calibration,
            };
            match level {
                Level::Household => household_weighting.push(spec),
                Level::Person => weighting.push(spec),
            }
        }
        // Without a scheme of its own, a unit is estimated with its design weights.
        let design_scheme = || WeightingSpec {
            name: "design".into(),
            nonresponse_classes: None,
            adjust_eligibility: false,
            calibration: None,
        };
        if weighting.is_empty() {
            weighting.push(design_scheme());
        }
        if households.is_some() && household_weighting.is_empty() {
            household_weighting.push(design_scheme());
        }

        let raw_variance = raw.variance.unwrap_or_default();
        let replicate = check_replicates(&raw_variance).map_err(|(key, m)| invalid(&key, m))?;
        if replicate.certainty == Certainty::Ssu && design.psu.len() < 2 {
            return Err(invalid(
                "variance.certainty",
                format!(
                    "\"ssu\" replicates the second-stage units of certainty strata, but [design] names {} sampling stage(s): give psu = [\"<PSU column>\", \"<second-stage unit column>\"] or remove certainty",
                    design.psu.len().max(1)
                ),
            ));
        }
        let methods = raw_variance
            .method
            .map(OneOrMany::into_vec)
            .unwrap_or_else(|| vec!["taylor".to_string()]);
        let mut variance = Vec::new();
        for m in methods {
            let method = VarianceMethod::ALL
                .iter()
                .find(|(_, n)| *n == m)
                .map(|(v, _)| *v)
                .ok_or_else(|| {
                    invalid(
                        "variance.method",
                        format!(
                            "\"{m}\" is not one of {}",
                            VarianceMethod::ALL
                                .iter()
                                .map(|(_, n)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            if !variance.contains(&method) {
                variance.push(method);
            }
        }
        if let (Some(method), Some(m)) = (
            design.pps,
            variance
                .iter()
                .find(|m| !matches!(m, VarianceMethod::Taylor | VarianceMethod::Supplied)),
        ) {
            return Err(invalid(
                "variance.method",
                format!(
                    "replicate method {} is not available with pps = \"{method}\": replicate weights built from the PSUs (R's as.svrepdesign) ignore the without-replacement PPS probabilities; use taylor, or supplied replicate weights made for the PPS design",
                    m.as_str()
                ),
            ));
        }
        if variance.contains(&VarianceMethod::Supplied) && replicate.columns.is_empty() {
            return Err(invalid(
                "variance.columns",
                "supplied replicate weights need columns = \"repw_*\" (names or patterns)".into(),
            ));
        }
        if replicate.supplied_type == "jkn"
            && variance.contains(&VarianceMethod::Supplied)
            && replicate.rscales.is_none()
        {
            return Err(invalid(
                "variance.rscales",
                "supplied JKn replicate weights need rscales".into(),
            ));
        }

        let est = raw.estimation.unwrap_or(RawEstimation {
            indicators: None,
            domains: Vec::new(),
            ci: None,
            level: None,
            domain_df: None,
        });
        let level = est.level.unwrap_or(0.95);
        if !(level > 0.0 && level < 1.0) {
            return Err(invalid(
                "estimation.level",
                format!("{level} is not strictly between 0 and 1"),
            ));
        }
        let mut ci = Vec::new();
        for name in est.ci.unwrap_or_else(|| vec!["logit".into()]) {
            let m = name.parse::<CiMethod>().map_err(|_| {
                invalid(
                    "estimation.ci",
                    format!(
                        "\"{name}\" is not one of mean, normal, logit, beta, xlogit, asin, wilson"
                    ),
                )
            })?;
            if m.is_quantile_interval() {
                return Err(invalid(
                    "estimation.ci",
                    format!(
                        "\"{name}\" is an interval of quantile indicators; set it with the indicator's ci key"
                    ),
                ));
            }
            if !ci.contains(&m) {
                ci.push(m);
            }
        }
        let domain_df = match est.domain_df.as_deref() {
            None | Some("subset") => DomainDf::Subset,
            Some("full") => DomainDf::Full,
            Some(other) => {
                return Err(invalid(
                    "estimation.domain_df",
                    format!("\"{other}\" is not one of subset, full"),
                ));
            }
        };
        let mut domains = Vec::new();
        for d in est.domains {
            let d = check_domain(d).map_err(|m| invalid("estimation.domains", m))?;
            if domains.contains(&d) {
                return Err(invalid(
                    "estimation.domains",
                    format!("domain \"{d}\" is listed twice"),
                ));
            }
            domains.push(d);
        }

        let contrasts = check_contrasts(raw.contrast).map_err(|(key, m)| invalid(&key, m))?;
        let tests = check_tests(raw.test).map_err(|(key, m)| invalid(&key, m))?;

        let publication = PublicationConfig::check(
            raw.reliability.as_ref(),
            raw.sdmx.as_ref(),
            raw.output.formats.as_deref(),
        )
        .map_err(|errors| {
            let key = errors.first().map(|e| e.key.clone()).unwrap_or_default();
            let message = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            invalid(&key, message)
        })?;

        let invalid_answer = match raw.validation.and_then(|v| v.invalid_answer) {
            None => InvalidAnswer::Blank,
            Some(name) => InvalidAnswer::from_name(&name).ok_or_else(|| {
                invalid(
                    "validation.invalid_answer",
                    format!(
                        "\"{name}\" is not one of blank (the item becomes item nonresponse, the \
                         respondent is kept), quarantine (the respondent is excluded)"
                    ),
                )
            })?,
        };

        let fieldwork = check_fieldwork(
            FieldworkColumns {
                disposition: raw.data.disposition.clone(),
                interviewer: raw.data.interviewer.clone(),
                interview_date: raw.data.interview_date.clone(),
            },
            raw.dispositions,
            raw.fieldwork,
        )
        .map_err(|(key, m)| invalid(&key, m))?;
        // The eligibility adjustment reads every sampled case's final disposition, which only
        // the person file (or the one file) carries.
        if let Some(h) = household_weighting.iter().find(|w| w.adjust_eligibility) {
            return Err(invalid(
                "weighting.nonresponse.eligibility",
                format!(
                    "household scheme \"{}\": eligibility = \"adjust\" needs final dispositions, which are read from the person file only; adjust household nonresponse without it",
                    h.name
                ),
            ));
        }
        if fieldwork.is_none()
            && let Some(w) = weighting.iter().find(|w| w.adjust_eligibility)
        {
            return Err(invalid(
                "weighting.nonresponse.eligibility",
                format!(
                    "scheme \"{}\": eligibility = \"adjust\" needs every sampled case's final disposition: add [data] disposition = \"<column>\" and [dispositions] mapping its codes to AAPOR categories",
                    w.name
                ),
            ));
        }

        Ok(Pipeline {
            config_path: path.to_path_buf(),
            questionnaire: resolve(&raw.questionnaire),
            data: DataSpec {
                path: resolve(&raw.data.path),
                id: raw.data.id,
                na: raw
                    .data
                    .na
                    .unwrap_or_else(|| vec![String::new(), "NA".into(), ".".into()]),
                response: raw.data.response,
                text_format: data_text_format,
                sheet: raw.data.sheet,
            },
            design,
            weight_from_fpc,
            weighting,
            households,
            household_weighting,
            person_scheme_bases,
            variance,
            replicate,
            estimation: EstimationSpec {
                indicators: est.indicators.unwrap_or_else(|| vec!["*".into()]),
                domains,
                ci,
                level,
                domain_df,
            },
            output_dir: resolve(&raw.output.dir),
            output_replicate_weights: raw.output.replicate_weights,
            publication,
            title: raw.output.title,
            reference_period: raw.output.reference_period,
            contrasts,
            tests,
            invalid_answer,
            fieldwork,
        })
    }
}

/// Check the `[[test]]` tables on their own (names, two different variables); the pipeline
/// checks the variables and the universe against the questionnaire.
fn check_tests(raw: Vec<RawTest>) -> Result<Vec<TestConfig>, (String, String)> {
    let mut out: Vec<TestConfig> = Vec::new();
    for (k, t) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("test[{}].{field}", k + 1);
        let name = t.name.trim().to_string();
        if name.is_empty() {
            return Err((key("name"), "give the test a name".into()));
        }
        if out.iter().any(|o| o.name == name) {
            return Err((
                key("name"),
                format!("\"{name}\" is the name of an earlier test; give each test its own name"),
            ));
        }
        if t.rows.trim() == t.cols.trim() {
            return Err((
                key("cols"),
                format!(
                    "test \"{name}\": rows and cols are both {}; a test of association needs two different variables",
                    t.rows
                ),
            ));
        }
        out.push(TestConfig {
            name,
            rows: t.rows.trim().to_string(),
            cols: t.cols.trim().to_string(),
            universe: t.universe.filter(|u| !u.trim().is_empty()),
        });
    }
    Ok(out)
}

/// A domain as estimation names it: the variable, or a cross's variables joined by `:`.
fn check_domain(d: RawDomain) -> Result<String, String> {
    let vars = match d {
        RawDomain::One(v) => vec![v],
        RawDomain::Cross(vars) => vars,
    };
    if vars.is_empty() {
        return Err(
            "an empty list is not a domain; list two or more variables to cross them".into(),
        );
    }
    for (k, v) in vars.iter().enumerate() {
        if v.trim().is_empty() || v.contains(':') {
            return Err(format!(
                "\"{v}\" is not a variable name (a cross is written as a list: [\"sex\", \"age_group\"])"
            ));
        }
        if vars[..k].contains(v) {
            return Err(format!(
                "the cross {vars:?} lists {v} twice; a variable crossed with itself is the variable itself"
            ));
        }
    }
    Ok(vars.join(":"))
}

/// Check the `[[contrast]]` tables on their own (names, codes, lists); the pipeline checks
/// them against the questionnaire. Errors are (key, message).
fn check_contrasts(raw: Vec<RawContrast>) -> Result<Vec<ContrastSpec>, (String, String)> {
    let mut out: Vec<ContrastSpec> = Vec::new();
    for (k, c) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("contrast[{}].{field}", k + 1);
        let name = c.name.trim().to_string();
        if name.is_empty() {
            return Err((key("name"), "must not be empty".into()));
        }
        if out.iter().any(|o| o.name == name) {
            return Err((
                key("name"),
                format!(
                    "\"{name}\" is the name of an earlier contrast; give each contrast its own name"
                ),
            ));
        }
        if c.indicators.is_empty() {
            return Err((
                key("indicators"),
                format!("contrast \"{name}\" lists no indicator; list indicator ids or [\"*\"]"),
            ));
        }
        let mut indicators: Vec<String> = Vec::new();
        for i in c.indicators {
            if indicators.contains(&i) {
                return Err((
                    key("indicators"),
                    format!("contrast \"{name}\": indicator \"{i}\" is listed twice"),
                ));
            }
            indicators.push(i);
        }
        if indicators.len() > 1 && indicators.iter().any(|i| i == "*") {
            return Err((
                key("indicators"),
                format!("contrast \"{name}\": \"*\" means every indicator and stands alone"),
            ));
        }
        let by = c.by.trim().to_string();
        if by.is_empty() {
            return Err((
                key("by"),
                format!("contrast \"{name}\": name the variable whose codes are compared"),
            ));
        }
        let [first, second] = c.compare.as_slice() else {
            return Err((
                key("compare"),
                format!(
                    "contrast \"{name}\": compare takes two codes of {by} (first minus second), got {}",
                    c.compare.len()
                ),
            ));
        };
        if first.trim() == second.trim() {
            return Err((
                key("compare"),
                format!("contrast \"{name}\": the two codes are both \"{first}\""),
            ));
        }
        let mut within: Vec<String> = Vec::new();
        for w in c.within {
            if w == by {
                return Err((
                    key("within"),
                    format!("contrast \"{name}\": within cannot be the compared variable {by}"),
                ));
            }
            if within.contains(&w) {
                return Err((
                    key("within"),
                    format!("contrast \"{name}\": \"{w}\" is listed twice"),
                ));
            }
            within.push(w);
        }
        out.push(ContrastSpec {
            name,
            indicators,
            by,
            first: first.trim().to_string(),
            second: second.trim().to_string(),
            within,
        });
    }
    Ok(out)
}

/// `[data.household]`, `[data] household_id` and `[design.person]` checked together; errors are
/// (key, message).
fn household_spec(
    data: &RawData,
    person: Option<&RawPersonDesign>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Option<HouseholdSpec>, (String, String)> {
    let fail = |key: &str, m: &str| Err((key.to_string(), m.to_string()));
    let Some(h) = &data.household else {
        if data.household_id.is_some() {
            return fail(
                "data.household_id",
                "links persons to households, but there is no household file: add [data.household] with path and id, or remove the key",
            );
        }
        if person.is_some() {
            return fail(
                "design.person",
                "says how a person's weight follows from the household's, but there is no household file: add [data.household], or remove [design.person]",
            );
        }
        return Ok(None);
    };
    let Some(link) = &data.household_id else {
        return fail(
            "data.household_id",
            "missing: with a household file, name the person file's column that holds each person's household id",
        );
    };
    if h.id.trim().is_empty() || link.trim().is_empty() {
        return fail(
            "data.household.id",
            "the household id columns must be named",
        );
    }
    let person_weight = match person {
        None => PersonWeight::Household,
        Some(p) => match (&p.selection_factor, &p.weight) {
            (Some(_), Some(_)) => {
                return fail(
                    "design.person",
                    "gives both selection_factor and weight: a person's design weight is either the household weight times the selection factor or a person weight column; keep one",
                );
            }
            (Some(f), None) => PersonWeight::SelectionFactor(f.clone()),
            (None, Some(w)) => PersonWeight::Column(w.clone()),
            (None, None) => PersonWeight::Household,
        },
    };
    // A key the household table leaves out is the person file's: one office exports both
    // files alike. The sheet is not: two files in one workbook are two sheets.
    let text_format = text_format(
        "data.household",
        h.delimiter.as_deref().or(data.delimiter.as_deref()),
        h.decimal.as_deref().or(data.decimal.as_deref()),
        h.encoding.as_deref().or(data.encoding.as_deref()),
    )?;
    Ok(Some(HouseholdSpec {
        path: resolve(&h.path),
        id: h.id.clone(),
        response: h.response.clone(),
        person_household_id: link.clone(),
        person_weight,
        text_format,
        sheet: h.sheet.clone(),
    }))
}

/// Check one `[weighting.calibration]` table; errors are (key, message).
fn check_calibration(
    c: RawCalibration,
    scheme: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<CalibrationConfig, (String, String)> {
    let key = |k: &str| format!("weighting.calibration.{k}");
    let method = match c.method.as_str() {
        "poststratify" => CalibrationMethodName::Poststratify,
        "rake" => CalibrationMethodName::Rake,
        "raking" => CalibrationMethodName::Raking,
        "linear" => CalibrationMethodName::Linear,
        "logit" => CalibrationMethodName::Logit,
        "truncated" => CalibrationMethodName::Truncated,
        other => {
            return Err((
                key("method"),
                format!(
                    "scheme \"{scheme}\": \"{other}\" is not one of poststratify, rake, raking, linear, logit, truncated"
                ),
            ));
        }
    };
    let bounds = c.bounds.map(|[l, u]| (l, u));
    if let Some((l, u)) = bounds
        && !(l < 1.0 && 1.0 < u)
    {
        return Err((
            key("bounds"),
            format!(
                "scheme \"{scheme}\": bounds [{l}, {u}] must satisfy lower < 1 < upper (they bound g = w/d)"
            ),
        ));
    }
    match method {
        CalibrationMethodName::Logit | CalibrationMethodName::Truncated => {
            if !bounds.is_some_and(|(l, u)| l.is_finite() && u.is_finite()) {
                return Err((
                    key("bounds"),
                    format!(
                        "scheme \"{scheme}\": {} calibration needs finite bounds = [lower, upper]",
                        c.method
                    ),
                ));
            }
        }
        CalibrationMethodName::Poststratify | CalibrationMethodName::Rake if bounds.is_some() => {
            return Err((
                key("bounds"),
                format!(
                    "scheme \"{scheme}\": {} takes no bounds; use raking, logit or truncated",
                    c.method
                ),
            ));
        }
        _ => {}
    }
    if c.partial && method != CalibrationMethodName::Poststratify {
        return Err((
            key("partial"),
            format!("scheme \"{scheme}\": partial applies to poststratify only"),
        ));
    }
    if let Some(t) = c.tolerance
        && !(t > 0.0 && t.is_finite())
    {
        return Err((
            key("tolerance"),
            format!("scheme \"{scheme}\": tolerance must be a positive number"),
        ));
    }
    let convergence = match c.convergence.as_deref() {
        None | Some("margins") => RakeConvergence::Margins,
        Some("cross-table") => RakeConvergence::CrossTable,
        Some(other) => {
            return Err((
                key("convergence"),
                format!(
                    "scheme \"{scheme}\": \"{other}\" is not one of margins (R survey 4.5 and later), cross-table (R survey 4.1 to 4.4)"
                ),
            ));
        }
    };
    if c.convergence.is_some() && method != CalibrationMethodName::Rake {
        return Err((
            key("convergence"),
            format!("scheme \"{scheme}\": convergence applies to rake only"),
        ));
    }
    if c.max_iter == Some(0) {
        return Err((
            key("max_iter"),
            format!("scheme \"{scheme}\": max_iter must be at least 1"),
        ));
    }
    let trim = match c.trim {
        None => None,
        Some(t) => {
            let lower = t.lower.unwrap_or(f64::NEG_INFINITY);
            let upper = t.upper.unwrap_or(f64::INFINITY);
            if !(lower < upper) || (t.lower.is_none() && t.upper.is_none()) {
                return Err((
                    key("trim"),
                    format!("scheme \"{scheme}\": trim needs lower < upper (at least one of them)"),
                ));
            }
            let on = match t.on.as_deref() {
                None | Some("weights") => TrimTarget::Weights,
                Some("g") => TrimTarget::G,
                Some(other) => {
                    return Err((
                        key("trim.on"),
                        format!("scheme \"{scheme}\": \"{other}\" is not one of weights, g"),
                    ));
                }
            };
            Some(TrimConfig {
                lower,
                upper,
                on,
                strict: t.strict,
            })
        }
    };
    Ok(CalibrationConfig {
        method,
        margins: resolve(&c.margins),
        bounds,
        trim,
        max_iter: c.max_iter,
        tolerance: c.tolerance,
        force: c.force,
        partial: c.partial,
        convergence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
questionnaire = "q.toml"
[data]
path = "d.csv"
id = "id"
[design]
weight = "w"
[output]
dir = "out"
"#;

    fn parse(extra: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::from_str(
            &format!("{BASE}\n{extra}"),
            Path::new("/tmp/cfg/pipeline.toml"),
        )
    }

    #[test]
    fn defaults_and_relative_paths() {
        let p = parse("").expect("minimal config");
        assert_eq!(p.questionnaire, PathBuf::from("/tmp/cfg/q.toml"));
        assert_eq!(p.data.path, PathBuf::from("/tmp/cfg/d.csv"));
        assert_eq!(p.weighting.len(), 1);
        assert_eq!(p.weighting[0].name, "design");
        assert_eq!(p.variance, vec![VarianceMethod::Taylor]);
        assert_eq!(p.estimation.level, 0.95);
        assert_eq!(p.design.lonely_psu, LonelyPsu::Fail);
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let e = parse("[estimation]\ndomain = [\"sex\"]").expect_err("unknown key");
        let msg = e.to_string();
        assert!(
            msg.contains("domain") && msg.contains("pipeline.toml"),
            "{msg}"
        );
    }

    #[test]
    fn calibration_settings_are_checked() {
        let ok = parse("[[weighting]]\nname = \"r\"\ncalibration = { method = \"logit\", margins = \"m.csv\", bounds = [0.7, 1.7] }")
            .expect("logit with bounds");
        let c = ok.weighting[0].calibration.as_ref().expect("calibration");
        assert_eq!(c.method, CalibrationMethodName::Logit);
        assert_eq!(c.margins, PathBuf::from("/tmp/cfg/m.csv"));
        assert_eq!(c.bounds, Some((0.7, 1.7)));
        for (bad, key) in [
            ("{ method = \"logit\", margins = \"m.csv\" }", "bounds"),
            (
                "{ method = \"raking\", margins = \"m.csv\", bounds = [1.2, 3] }",
                "bounds",
            ),
            ("{ method = \"ipf\", margins = \"m.csv\" }", "method"),
            (
                "{ method = \"rake\", margins = \"m.csv\", trim = { lower = 2, upper = 1 } }",
                "trim",
            ),
            (
                "{ method = \"raking\", margins = \"m.csv\", partial = true }",
                "partial",
            ),
        ] {
            let e =
                parse(&format!("[[weighting]]\nname = \"r\"\ncalibration = {bad}")).expect_err(bad);
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn toml_errors_are_one_line_with_file_line_column_and_key() {
        let e = parse("[design]\nstrata_typo = 1").expect_err("duplicate table or unknown key");
        let msg = e.to_string();
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(!msg.contains(" | "), "no flattened parser art: {msg}");
        assert!(msg.starts_with("/tmp/cfg/pipeline.toml:"), "{msg}");
        let e = Pipeline::from_str(
            "questionnaire = \"q.toml\"\n[data]\npath = \"d.csv\"\nid = \"id\"\n[design]\nweight = \"w\"\nstrata_typo = 1\n[output]\ndir = \"out\"\n",
            Path::new("/tmp/cfg/pipeline.toml"),
        )
        .expect_err("unknown key");
        let msg = e.to_string();
        assert!(
            msg.starts_with("/tmp/cfg/pipeline.toml:7:1: design.strata_typo: "),
            "{msg}"
        );
        let e = Pipeline::from_str("questionnaire = \"q.toml\"\n[data\n", Path::new("p.toml"))
            .expect_err("syntax");
        let msg = e.to_string();
        assert!(msg.starts_with("p.toml:2:"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }

    #[test]
    fn enumerated_values_accept_any_case_and_come_out_canonical() {
        let p = parse(
            "[variance]\nmethod = [\"Taylor\", \"BRR\"]\nprofile = \"SAS\"\nnonresponse = \"Fixed\"\nreplicate_df = \"Design\"\n\
             [estimation]\nci = [\"Logit\", \"BETA\"]\ndomain_df = \"Full\"\n\
             [reliability]\npreset = \"NCHS-2017\"\n\
             [[weighting]]\nname = \"r\"\ncalibration = { method = \"Raking\", margins = \"m.csv\" }",
        )
        .expect("mixed case");
        assert_eq!(
            p.variance,
            vec![VarianceMethod::Taylor, VarianceMethod::Brr]
        );
        assert_eq!(p.variance[1].as_str(), "brr");
        assert_eq!(p.replicate.profile, ReplicateProfile::Sas);
        assert_eq!(p.replicate.nonresponse, ReplicateNonresponse::Fixed);
        assert_eq!(p.replicate.replicate_df, Some(ReplicateDfRule::Design));
        assert_eq!(p.estimation.ci, vec![CiMethod::Logit, CiMethod::Beta]);
        assert_eq!(p.estimation.domain_df, DomainDf::Full);
        assert_eq!(
            p.weighting[0].calibration.as_ref().map(|c| c.method),
            Some(CalibrationMethodName::Raking)
        );
    }

    #[test]
    fn pps_is_parsed_and_checked_before_any_data_is_read() {
        let with = |design: &str, tail: &str| {
            Pipeline::from_str(
                &format!(
                    "questionnaire = \"q.toml\"\n[data]\npath = \"d.csv\"\n[design]\n{design}\n[output]\ndir = \"out\"\n{tail}"
                ),
                Path::new("/tmp/cfg/pipeline.toml"),
            )
        };
        let p = with("fpc = \"p\"\npps = \"Hartley-Rao\"", "").expect("pps");
        assert_eq!(p.design.pps, Some(PpsMethod::HartleyRao));
        assert!(p.weight_from_fpc);
        assert_eq!(parse("").expect("no pps").design.pps, None);
        for (design, tail, expected) in [
            (
                "fpc = \"p\"\npps = \"poisson\"",
                "",
                "not one of brewer, overton, hartley-rao",
            ),
            (
                "weight = \"w\"\npps = \"brewer\"",
                "",
                "needs the units' inclusion probabilities",
            ),
            (
                "psu = [\"a\", \"b\"]\nfpc = [\"p1\", \"p2\"]\npps = \"overton\"",
                "",
                "one sampling stage only",
            ),
            (
                "fpc = \"p\"\npps = \"brewer\"",
                "[variance]\nmethod = [\"taylor\", \"bootstrap\"]",
                "replicate method bootstrap is not available with pps",
            ),
        ] {
            let e = with(design, tail).expect_err(design).to_string();
            assert!(e.contains(expected), "{design}: {e}");
        }
        with("fpc = \"p\"\npps = \"brewer\"", "[variance]\nmethod = [\"taylor\", \"supplied\"]\ncolumns = [\"r*\"]\nrscales = 1\nscale = 1")
            .map(|_| ())
            .unwrap_or_else(|e| assert!(!e.to_string().contains("pps"), "{e}"));
    }

    #[test]
    fn the_replicate_limit_can_be_raised() {
        let p =
            parse("[variance]\nmethod = \"bootstrap\"\nreplicates = 20000\nmax_replicates = 20000")
                .expect("raised limit");
        assert_eq!(p.replicate.replicates, Some(20000));
    }

    #[test]
    fn strata_are_one_column_or_a_list() {
        let with = |strata: &str| {
            Pipeline::from_str(
                &BASE.replace(
                    "weight = \"w\"",
                    &format!("weight = \"w\"\nstrata = {strata}"),
                ),
                Path::new("/tmp/cfg/pipeline.toml"),
            )
        };
        assert!(parse("").expect("none").design.strata.is_empty());
        assert_eq!(with("\"h\"").expect("one").design.strata, ["h"]);
        assert_eq!(
            with("[\"wave\", \"h\"]").expect("two").design.strata,
            ["wave", "h"]
        );
        for bad in ["[]", "[\"h\", \"h\"]", "[\"\"]"] {
            let e = with(bad).expect_err(bad).to_string();
            assert!(e.contains("design.strata"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        for (extra, key) in [
            ("[estimation]\nlevel = 1.5", "level"),
            ("[estimation]\nci = [\"exact\"]", "ci"),
            ("[variance]\nmethod = \"bootstrap-ish\"", "variance.method"),
            (
                "[variance]\nmethod = \"bootstrap\"\nreplicates = 2147483647",
                "max_replicates",
            ),
            (
                "[[weighting]]\nname = \"a\"\n[[weighting]]\nname = \"a\"",
                "twice",
            ),
            (
                "[variance]\nmethod = \"jkn\"\nreplicate_df = \"residual\"",
                "variance.replicate_df",
            ),
        ] {
            let e = parse(extra).expect_err(extra);
            assert!(e.to_string().contains(key), "{extra}: {e}");
        }
        for (design, key) in [
            ("collapse_order = \"o\"", "design.collapse_order"),
            (
                "lonely_psu = \"remove\"\nadjust_domain_lonely = true",
                "design.adjust_domain_lonely",
            ),
        ] {
            let text = BASE.replace("weight = \"w\"", &format!("weight = \"w\"\n{design}"));
            let e =
                Pipeline::from_str(&text, Path::new("/tmp/cfg/pipeline.toml")).expect_err(design);
            assert!(e.to_string().contains(key), "{design}: {e}");
        }
        let text = BASE.replace(
            "weight = \"w\"",
            "weight = \"w\"\nlonely_psu = \"collapse\"\ncollapse_order = \"o\"\ncollapse_within = \"r\"",
        );
        let p = Pipeline::from_str(&text, Path::new("/tmp/cfg/pipeline.toml")).expect("collapse");
        assert_eq!(p.design.lonely_psu, LonelyPsu::Collapse);
        assert_eq!(p.design.collapse.order.as_deref(), Some("o"));
        assert_eq!(p.design.collapse.within.as_deref(), Some("r"));
    }

    #[test]
    fn replicate_units_and_sdr_order_are_checked() {
        let p =
            parse("[variance]\nmethod = \"sdr\"\nsort = \"geo\"\ncircular = true").expect("sdr");
        assert_eq!(p.replicate.sort.as_deref(), Some("geo"));
        assert!(p.replicate.circular);
        assert_eq!(p.replicate.certainty, Certainty::Psu);
        for (extra, key) in [
            ("[variance]\ncertainty = \"ssu\"", "second-stage"),
            (
                "[variance]\ncertainty = \"households\"",
                "variance.certainty",
            ),
            ("[variance]\nsort = \" \"", "variance.sort"),
        ] {
            let e = parse(extra).expect_err(extra);
            assert!(e.to_string().contains(key), "{extra}: {e}");
        }
    }

    #[test]
    fn invalid_answers_are_blanked_unless_quarantine_is_asked_for() {
        assert_eq!(
            parse("").expect("default").invalid_answer,
            InvalidAnswer::Blank
        );
        let p = parse("[validation]\ninvalid_answer = \"quarantine\"").expect("quarantine");
        assert_eq!(p.invalid_answer, InvalidAnswer::Quarantine);
        let p = parse("[validation]\ninvalid_answer = \"blank\"").expect("blank");
        assert_eq!(p.invalid_answer, InvalidAnswer::Blank);
        let e = parse("[validation]\ninvalid_answer = \"drop\"").expect_err("unknown");
        assert!(e.to_string().contains("validation.invalid_answer"), "{e}");
        let e = parse("[validation]\non_invalid = \"blank\"").expect_err("unknown key");
        assert!(e.to_string().contains("on_invalid"), "{e}");
    }

    fn with_data_keys(keys: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::from_str(
            &BASE.replace("id = \"id\"", &format!("id = \"id\"\n{keys}")),
            Path::new("/tmp/cfg/pipeline.toml"),
        )
    }

    #[test]
    fn text_format_keys_are_read_and_checked() {
        let p = with_data_keys("").expect("defaults");
        assert_eq!(p.data.text_format, TextFormat::default());
        assert_eq!(p.data.sheet, None);
        let p = with_data_keys("sheet = \"data\"").expect("a workbook's sheet");
        assert_eq!(p.data.sheet.as_deref(), Some("data"));
        let p = with_data_keys("delimiter = \";\"\ndecimal = \",\"\nencoding = \"Windows-1250\"")
            .expect("a European export");
        assert_eq!(p.data.text_format.delimiter, Some(b';'));
        assert!(p.data.text_format.decimal_comma);
        assert_eq!(p.data.text_format.encoding, Some(encoding_rs::WINDOWS_1250));
        // Latin-1 is windows-1252 under the WHATWG labels, as browsers read it.
        let p = with_data_keys("encoding = \"latin1\"").expect("latin1");
        assert_eq!(p.data.text_format.encoding, Some(encoding_rs::WINDOWS_1252));
        for tab in ["\"\\t\"", "\"tab\"", "'\\t'"] {
            let p = with_data_keys(&format!("delimiter = {tab}")).expect("tab");
            assert_eq!(p.data.text_format.delimiter, Some(b'\t'), "{tab}");
        }
        let e = with_data_keys("encoding = \"windows-1250x\"").expect_err("unknown label");
        let msg = e.to_string();
        assert!(
            msg.contains("data.encoding")
                && msg.contains("\"windows-1250x\"")
                && msg.contains("iso-8859-2"),
            "{msg}"
        );
        let e = with_data_keys("encoding = \"replacement\"").expect_err("replacement");
        assert!(e.to_string().contains("data.encoding"), "{e}");
        let e = with_data_keys("decimal = \",\"\ndelimiter = \",\"").expect_err("comma twice");
        let msg = e.to_string();
        assert!(
            msg.contains("data.decimal") && msg.contains("delimiter"),
            "{msg}"
        );
        let e = with_data_keys("delimiter = \"::\"").expect_err("unknown delimiter");
        assert!(e.to_string().contains("data.delimiter"), "{e}");
        let e = with_data_keys("decimal = \"·\"").expect_err("unknown decimal mark");
        assert!(e.to_string().contains("data.decimal"), "{e}");
    }

    /// BASE with a household file whose table has `keys`, and `[data]` keys `data_keys`.
    fn with_household_keys(data_keys: &str, keys: &str) -> Result<Pipeline, ConfigError> {
        let text = BASE.replace(
            "id = \"id\"",
            &format!("id = \"id\"\nhousehold_id = \"hh\"\n{data_keys}"),
        );
        Pipeline::from_str(
            &format!(
                "{text}\n[data.household]\npath = \"hh.xlsx\"\nid = \"hh\"\n{keys}\n\n\
                 [[weighting]]\nname = \"hh\"\nlevel = \"household\"\n"
            ),
            Path::new("/tmp/cfg/pipeline.toml"),
        )
    }

    #[test]
    fn the_household_file_has_its_own_sheet_and_inherits_the_text_format() {
        let format = |p: &Pipeline| p.households.as_ref().expect("household file").text_format;
        let sheet = |p: &Pipeline| p.households.as_ref().expect("household file").sheet.clone();
        let p = with_household_keys(
            "sheet = \"persons\"\ndelimiter = \";\"\ndecimal = \",\"",
            "",
        )
        .expect("inherited");
        assert_eq!(format(&p).delimiter, Some(b';'));
        assert!(format(&p).decimal_comma);
        // Two files in one workbook are two sheets: the first sheet unless named.
        assert_eq!(sheet(&p), None);
        let p = with_household_keys(
            "delimiter = \";\"\nencoding = \"latin1\"",
            "sheet = \"households\"\ndelimiter = \"tab\"\nencoding = \"utf-8\"",
        )
        .expect("own keys");
        assert_eq!(format(&p).delimiter, Some(b'\t'));
        assert_eq!(format(&p).encoding, Some(encoding_rs::UTF_8));
        assert_eq!(sheet(&p).as_deref(), Some("households"));
        assert_eq!(p.data.text_format.delimiter, Some(b';'));
        let e = with_household_keys("", "encoding = \"klingon\"").expect_err("bad label");
        assert!(e.to_string().contains("data.household.encoding"), "{e}");
        let e =
            with_household_keys("decimal = \",\"", "delimiter = \",\"").expect_err("comma twice");
        assert!(e.to_string().contains("data.household.decimal"), "{e}");
    }
}

/// Default upper bound on `[variance] replicates` (raised with `max_replicates`).
pub const MAX_REPLICATES: usize = 10_000;

/// Check `[variance]` replicate settings; errors are (key, message).
fn check_replicates(v: &RawVariance) -> Result<ReplicateSettings, (String, String)> {
    let key = |k: &str| format!("variance.{k}");
    let profile = match v.profile.as_deref() {
        None | Some("r") => ReplicateProfile::R,
        Some("stata") => ReplicateProfile::Stata,
        Some("sas") => ReplicateProfile::Sas,
        Some(other) => {
            return Err((
                key("profile"),
                format!("\"{other}\" is not one of r, stata, sas"),
            ));
        }
    };
    let nonresponse = match v.nonresponse.as_deref() {
        None | Some("recompute") => ReplicateNonresponse::Recompute,
        Some("fixed") => ReplicateNonresponse::Fixed,
        Some(other) => {
            return Err((
                key("nonresponse"),
                format!("\"{other}\" is not one of recompute, fixed"),
            ));
        }
    };
    if v.replicates == Some(0) || v.replicates == Some(1) {
        return Err((key("replicates"), "at least 2 replicates are needed".into()));
    }
    let max = v.max_replicates.unwrap_or(MAX_REPLICATES);
    if let Some(r) = v.replicates
        && r > max
    {
        return Err((
            key("replicates"),
            format!(
                "{r} is above the limit of {max} replicates (memory and time grow with PSUs × replicates); raise [variance] max_replicates if you mean it"
            ),
        ));
    }
    let fay_rho = v.fay_rho.unwrap_or(0.5);
    if !(0.0..1.0).contains(&fay_rho) {
        return Err((key("fay_rho"), format!("{fay_rho} is not in [0, 1)")));
    }
    if let Some(s) = v.scale
        && !(s > 0.0 && s.is_finite())
    {
        return Err((key("scale"), format!("{s} is not a positive number")));
    }
    if let Some(r) = &v.rscales
        && r.iter().any(|x| !(x.is_finite() && *x >= 0.0))
    {
        return Err((
            key("rscales"),
            "rscales must be finite and non-negative".into(),
        ));
    }
    let replicate_df = match v.replicate_df.as_deref() {
        None => None,
        Some("rank") => Some(ReplicateDfRule::Rank),
        Some("design") => Some(ReplicateDfRule::Design),
        Some(other) => {
            return Err((
                key("replicate_df"),
                format!("\"{other}\" is not one of rank, design"),
            ));
        }
    };
    let certainty = match v.certainty.as_deref() {
        None | Some("psu") => Certainty::Psu,
        Some("ssu") => Certainty::Ssu,
        Some(other) => {
            return Err((
                key("certainty"),
                format!("\"{other}\" is not one of psu, ssu"),
            ));
        }
    };
    if let Some(column) = &v.sort
        && column.trim().is_empty()
    {
        return Err((key("sort"), "name the column that orders the PSUs".into()));
    }
    let supplied_type = v.supplied_type.clone().unwrap_or_else(|| "other".into());
    if !["bootstrap", "jk1", "jkn", "brr", "fay", "sdr", "other"].contains(&supplied_type.as_str())
    {
        return Err((
            key("type"),
            format!("\"{supplied_type}\" is not one of bootstrap, jk1, jkn, brr, fay, sdr, other"),
        ));
    }
    Ok(ReplicateSettings {
        replicates: v.replicates,
        seed: v.seed.unwrap_or(20261129),
        fay_rho,
        mse: v.mse,
        profile,
        nonresponse,
        drop_failed: v.drop_failed,
        columns: v
            .columns
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default(),
        scale: v.scale,
        rscales: v.rscales.clone(),
        supplied_type,
        combined_weights: v.combined_weights.unwrap_or(true),
        replicate_df,
        certainty,
        sort: v.sort.clone(),
        circular: v.circular.unwrap_or(false),
    })
}

/// `[dispositions]`: the survey's disposition codes per AAPOR category.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispositions {
    #[serde(default)]
    complete: Vec<RawCode>,
    #[serde(default)]
    partial: Vec<RawCode>,
    #[serde(default)]
    refusal: Vec<RawCode>,
    #[serde(default)]
    noncontact: Vec<RawCode>,
    #[serde(default)]
    other: Vec<RawCode>,
    #[serde(default)]
    unknown_eligibility: Vec<RawCode>,
    #[serde(default)]
    not_eligible: Vec<RawCode>,
    #[serde(default)]
    partial_is_response: Option<bool>,
    #[serde(default)]
    e: Option<RawEligibilityRate>,
}

/// A disposition code: a number or a text, as the data writes it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCode {
    Integer(i64),
    Number(f64),
    Text(String),
}

impl RawCode {
    fn text(&self) -> String {
        match self {
            RawCode::Integer(i) => i.to_string(),
            RawCode::Number(x) => crate::frame::format_number(*x),
            RawCode::Text(t) => t.trim().to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawEligibilityRate {
    Number(f64),
    Text(String),
}

/// `[fieldwork]`: groups of the rates table, the fieldwork period, the outlier threshold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFieldwork {
    #[serde(default)]
    by: Vec<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    outlier_z: Option<f64>,
}

/// The fieldwork columns of `[data]`.
struct FieldworkColumns {
    disposition: Option<String>,
    interviewer: Option<String>,
    interview_date: Option<String>,
}

/// Final dispositions and what the fieldwork outputs show (`docs/fieldwork.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldworkSpec {
    /// Column of the final disposition code of every sampled case (`[data] disposition`).
    pub disposition: String,
    /// Interviewer column (`[data] interviewer`).
    pub interviewer: Option<String>,
    /// Interview date column, ISO 8601 dates (`[data] interview_date`).
    pub interview_date: Option<String>,
    /// Codes per AAPOR category, partials' response status and the e rule.
    pub dispositions: DispositionMap,
    /// Variables the rates are also given by (`[fieldwork] by`), in config order.
    pub by: Vec<String>,
    /// First day of fieldwork: an earlier interview date is a finding.
    pub start: Option<Date>,
    /// Last day of fieldwork: a later interview date is a finding.
    pub end: Option<Date>,
    /// |robust z| above which an interviewer is an outlier (`[fieldwork] outlier_z`).
    pub outlier_z: f64,
}

/// Check `[data] disposition`, `[dispositions]` and `[fieldwork]` together.
fn check_fieldwork(
    columns: FieldworkColumns,
    dispositions: Option<RawDispositions>,
    fieldwork: Option<RawFieldwork>,
) -> Result<Option<FieldworkSpec>, (String, String)> {
    let (disposition, raw) = match (columns.disposition, dispositions) {
        (Some(column), Some(raw)) => (column, raw),
        (None, None) => {
            let unused = [
                ("data.interviewer", columns.interviewer.is_some()),
                ("data.interview_date", columns.interview_date.is_some()),
                ("fieldwork", fieldwork.is_some()),
            ];
            return match unused.iter().find(|(_, given)| *given) {
                Some((key, _)) => Err((
                    key.to_string(),
                    "the fieldwork outputs need final dispositions: add [data] disposition = \"<column of disposition codes>\" and [dispositions], or remove the key".into(),
                )),
                None => Ok(None),
            };
        }
        (Some(column), None) => {
            return Err((
                "dispositions".into(),
                format!(
                    "[data] disposition = \"{column}\" needs [dispositions] mapping its codes to AAPOR categories (complete, partial, refusal, noncontact, other, unknown_eligibility, not_eligible)"
                ),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "data.disposition".into(),
                "[dispositions] is given but [data] names no disposition column: add disposition = \"<column of disposition codes>\" to [data]".into(),
            ));
        }
    };
    if disposition.trim().is_empty() {
        return Err((
            "data.disposition".into(),
            "the disposition column's name is empty".into(),
        ));
    }
    let lists = [
        (Outcome::Complete, &raw.complete),
        (Outcome::Partial, &raw.partial),
        (Outcome::Refusal, &raw.refusal),
        (Outcome::NonContact, &raw.noncontact),
        (Outcome::Other, &raw.other),
        (Outcome::UnknownEligibility, &raw.unknown_eligibility),
        (Outcome::NotEligible, &raw.not_eligible),
    ];
    let mut pairs: Vec<(String, Outcome)> = Vec::new();
    for (outcome, codes) in lists {
        for code in codes.iter() {
            let text = code.text();
            if text.is_empty() {
                return Err((
                    format!("dispositions.{}", outcome.config_key()),
                    "a code is empty: write each code as the data holds it".into(),
                ));
            }
            let number = text.parse::<f64>().ok();
            let same =
                |c: &String| *c == text || (number.is_some() && c.parse::<f64>().ok() == number);
            if let Some((_, first)) = pairs.iter().find(|(c, _)| same(c)) {
                let key = format!("dispositions.{}", outcome.config_key());
                return Err((
                    key,
                    if *first == outcome {
                        format!("code {text} is listed twice under {}", outcome.config_key())
                    } else {
                        format!(
                            "code {text} is mapped to two categories, {} and {}: keep it in one",
                            first.config_key(),
                            outcome.config_key()
                        )
                    },
                ));
            }
            pairs.push((text, outcome));
        }
    }
    if !pairs.iter().any(|(_, o)| *o == Outcome::Complete) {
        return Err((
            "dispositions.complete".into(),
            "no code of a complete interview: list the code(s) of complete interviews".into(),
        ));
    }
    let e = match raw.e {
        None => EligibilityRate::Estimate,
        Some(RawEligibilityRate::Text(t)) if t.trim().eq_ignore_ascii_case("estimate") => {
            EligibilityRate::Estimate
        }
        Some(RawEligibilityRate::Text(t)) => {
            return Err((
                "dispositions.e".into(),
                format!("\"{t}\" is neither \"estimate\" nor a number in [0, 1]"),
            ));
        }
        Some(RawEligibilityRate::Number(x)) if (0.0..=1.0).contains(&x) => {
            EligibilityRate::Fixed(x)
        }
        Some(RawEligibilityRate::Number(x)) => {
            return Err((
                "dispositions.e".into(),
                format!(
                    "{x} is outside [0, 1]: e is the eligible share among cases of unknown eligibility; give a number in [0, 1] or \"estimate\""
                ),
            ));
        }
    };
    let raw_fieldwork = fieldwork.unwrap_or(RawFieldwork {
        by: Vec::new(),
        start: None,
        end: None,
        outlier_z: None,
    });
    let date = |key: &str, text: &Option<String>| -> Result<Option<Date>, (String, String)> {
        match text {
            None => Ok(None),
            Some(t) => Date::parse(t).map(Some).ok_or_else(|| {
                (
                    format!("fieldwork.{key}"),
                    format!("\"{t}\" is not an ISO 8601 date (YYYY-MM-DD)"),
                )
            }),
        }
    };
    let start = date("start", &raw_fieldwork.start)?;
    let end = date("end", &raw_fieldwork.end)?;
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err((
            "fieldwork.end".into(),
            format!("{e} is before the start, {s}"),
        ));
    }
    let outlier_z = raw_fieldwork.outlier_z.unwrap_or(DEFAULT_OUTLIER_Z);
    if !(outlier_z.is_finite() && outlier_z > 0.0) {
        return Err((
            "fieldwork.outlier_z".into(),
            format!(
                "{outlier_z} is not a positive number (the default, 3.5, is Iglewicz and Hoaglin's)"
            ),
        ));
    }
    let mut by: Vec<String> = Vec::new();
    for v in raw_fieldwork.by {
        if v.trim().is_empty() || by.contains(&v) {
            return Err((
                "fieldwork.by".into(),
                format!("\"{v}\" is empty or listed twice"),
            ));
        }
        by.push(v);
    }
    Ok(Some(FieldworkSpec {
        disposition,
        interviewer: columns.interviewer,
        interview_date: columns.interview_date,
        dispositions: DispositionMap::new(pairs, raw.partial_is_response.unwrap_or(true), e),
        by,
        start,
        end,
        outlier_z,
    }))
}

#[cfg(test)]
mod fieldwork_tests {
    use super::*;

    const BASE: &str = r#"
questionnaire = "q.toml"
[data]
path = "d.csv"
id = "id"
disposition = "outcome"
[design]
weight = "w"
[output]
dir = "out"
"#;

    const CODES: &str = "[dispositions]\ncomplete = [11]\npartial = [12]\nrefusal = [21, 22]\nnoncontact = [\"NC\"]\nunknown_eligibility = [31]\nnot_eligible = [41]\n";

    fn parse(text: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::from_str(text, Path::new("/tmp/cfg/pipeline.toml"))
    }

    fn message(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn eligibility_adjustment_needs_dispositions_and_a_known_value() {
        let scheme = |value: &str| {
            format!(
                "[[weighting]]\nname = \"nr\"\nnonresponse = {{ classes = [\"region\"], eligibility = \"{value}\" }}\n"
            )
        };
        let p = parse(&format!("{BASE}\n{CODES}\n{}", scheme("adjust"))).expect("config");
        assert!(p.weighting[0].adjust_eligibility);
        let p = parse(&format!("{BASE}\n{CODES}\n{}", scheme("none"))).expect("config");
        assert!(!p.weighting[0].adjust_eligibility);
        let m = message(&format!("{BASE}\n{CODES}\n{}", scheme("yes")));
        assert!(
            m.contains("weighting.nonresponse.eligibility") && m.contains("\"yes\""),
            "{m}"
        );
        let without = BASE.replace("disposition = \"outcome\"\n", "");
        let m = message(&format!("{without}\n{}", scheme("adjust")));
        assert!(
            m.contains("weighting.nonresponse.eligibility") && m.contains("[dispositions]"),
            "{m}"
        );
    }

    #[test]
    fn dispositions_map_numbers_and_texts_with_defaults() {
        let p = parse(&format!("{BASE}\n{CODES}")).expect("config");
        let f = p.fieldwork.expect("fieldwork");
        assert_eq!(f.disposition, "outcome");
        assert_eq!(f.dispositions.outcome("22"), Some(Outcome::Refusal));
        assert_eq!(f.dispositions.outcome("NC"), Some(Outcome::NonContact));
        assert_eq!(f.dispositions.outcome("23"), None);
        assert!(f.dispositions.partial_is_response);
        assert_eq!(f.dispositions.e, EligibilityRate::Estimate);
        assert_eq!(f.outlier_z, 3.5);
        assert!(f.by.is_empty() && f.start.is_none());
        assert!(
            parse(BASE.replace("disposition = \"outcome\"\n", "").as_str())
                .expect("no fieldwork")
                .fieldwork
                .is_none()
        );
    }

    #[test]
    fn fieldwork_settings_are_read() {
        let text = format!(
            "{}\n{CODES}partial_is_response = false\ne = 0.8\n[fieldwork]\nby = [\"region\", \"interviewer\"]\nstart = \"2026-03-01\"\nend = \"2026-04-30\"\noutlier_z = 3",
            BASE.replace(
                "id = \"id\"",
                "id = \"id\"\ninterviewer = \"iwer\"\ninterview_date = \"day\""
            )
        );
        let f = parse(&text).expect("config").fieldwork.expect("fieldwork");
        assert!(!f.dispositions.partial_is_response);
        assert_eq!(f.dispositions.e, EligibilityRate::Fixed(0.8));
        assert_eq!(f.by, ["region", "interviewer"]);
        assert_eq!(f.start, Date::parse("2026-03-01"));
        assert_eq!(f.end, Date::parse("2026-04-30"));
        assert_eq!(f.outlier_z, 3.0);
        assert_eq!(f.interviewer.as_deref(), Some("iwer"));
        assert_eq!(f.interview_date.as_deref(), Some("day"));
    }

    #[test]
    fn a_code_in_two_categories_is_named_with_both() {
        let m = message(&format!(
            "{BASE}\n[dispositions]\ncomplete = [11]\nrefusal = [21, 11.0]"
        ));
        assert!(
            m.contains("dispositions.refusal")
                && m.contains("code 11")
                && m.contains("complete and refusal"),
            "{m}"
        );
    }

    #[test]
    fn dispositions_need_their_column_and_the_reverse() {
        let m = message(&format!("{BASE}\n"));
        assert!(
            m.contains("needs [dispositions]") && m.contains("outcome"),
            "{m}"
        );
        let m = message(&format!(
            "{}\n{CODES}",
            BASE.replace("disposition = \"outcome\"\n", "")
        ));
        assert!(m.contains("data.disposition"), "{m}");
        let m = message(&format!(
            "{}\n[fieldwork]\nby = [\"region\"]",
            BASE.replace("disposition = \"outcome\"\n", "")
        ));
        assert!(m.contains("fieldwork") && m.contains("dispositions"), "{m}");
    }

    #[test]
    fn e_outside_zero_one_and_bad_dates_are_refused() {
        for (extra, key, says) in [
            ("e = 1.5", "dispositions.e", "outside [0, 1]"),
            ("e = -0.1", "dispositions.e", "outside [0, 1]"),
            ("e = \"guess\"", "dispositions.e", "estimate"),
            (
                "[fieldwork]\nstart = \"01/03/2026\"",
                "fieldwork.start",
                "ISO 8601",
            ),
            (
                "[fieldwork]\nstart = \"2026-03-01\"\nend = \"2026-02-01\"",
                "fieldwork.end",
                "before the start",
            ),
            (
                "[fieldwork]\noutlier_z = 0",
                "fieldwork.outlier_z",
                "positive",
            ),
        ] {
            let m = message(&format!("{BASE}\n{CODES}{extra}"));
            assert!(m.contains(key) && m.contains(says), "{extra}: {m}");
        }
        let fixed = parse(&format!("{BASE}\n{CODES}e = 1")).expect("e = 1 is allowed");
        assert_eq!(
            fixed.fieldwork.expect("fieldwork").dispositions.e,
            EligibilityRate::Fixed(1.0)
        );
    }
}
