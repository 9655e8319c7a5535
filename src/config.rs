//! The pipeline configuration file (`pipeline.toml`, documented in `docs/pipeline.md`).
//!
//! Reading happens in two steps, as in ripgrep's low/high arguments: serde deserializes the raw
//! TOML into `Raw*` structs that reject unknown keys, then [`Pipeline::load`] checks the values
//! and resolves paths relative to the config file, so that every config error is reported before
//! any data is read.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::design::{DesignSpec, LonelyPsu};
use crate::estimate::ci::CiMethod;

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
    #[error("{path}: {message}")]
    Toml {
        /// Config path.
        path: PathBuf,
        /// What serde/toml reported, including the key and line.
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
    output: RawOutput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    path: String,
    id: String,
    #[serde(default)]
    response: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDesign {
    #[serde(default)]
    strata: Option<String>,
    #[serde(default)]
    psu: Option<OneOrMany>,
    weight: String,
    #[serde(default)]
    fpc: Option<OneOrMany>,
    #[serde(default)]
    nest: bool,
    #[serde(default)]
    lonely_psu: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeighting {
    name: String,
    #[serde(default)]
    nonresponse: Option<RawNonresponse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNonresponse {
    classes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariance {
    method: OneOrMany,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEstimation {
    #[serde(default)]
    indicators: Option<Vec<String>>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    ci: Option<Vec<String>>,
    #[serde(default)]
    level: Option<f64>,
    #[serde(default)]
    domain_df: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: String,
}

/// Input data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Path of the CSV or Parquet file (absolute or relative to the working directory).
    pub path: PathBuf,
    /// Unique respondent id column.
    pub id: String,
    /// Response indicator column (1 respondent, 0 unit nonrespondent); `None`: all respond.
    pub response: Option<String>,
}

/// One weighting scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightingSpec {
    /// Name, written to the `weighting` output column.
    pub name: String,
    /// Weighting-class nonresponse adjustment: the classes' columns.
    pub nonresponse_classes: Option<Vec<String>>,
}

/// Variance estimation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarianceMethod {
    /// Taylor linearization (R `svyrecvar`).
    Taylor,
}

impl VarianceMethod {
    /// Name written to the `variance` output column.
    pub fn as_str(self) -> &'static str {
        match self {
            VarianceMethod::Taylor => "taylor",
        }
    }
}

/// Which degrees of freedom a domain's interval uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDf {
    /// `degf()` of the domain subset (R `svyciprop` default on a subset design).
    Subset,
    /// `degf()` of the full design (what `confint(svyby(...), df = degf(design))` uses).
    Full,
}

/// Which indicators to estimate, by domain, with which intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimationSpec {
    /// Indicator ids; `["*"]` means all, in questionnaire order.
    pub indicators: Vec<String>,
    /// Domain variables (each estimated separately, plus the total population).
    pub domains: Vec<String>,
    /// Interval methods for proportions (means, ratios and totals get `mean`, plus `normal`
    /// when listed).
    pub ci: Vec<CiMethod>,
    /// Confidence level, in (0, 1).
    pub level: f64,
    /// Degrees of freedom for domain intervals.
    pub domain_df: DomainDf,
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
    /// Weighting schemes, in config order (at least one).
    pub weighting: Vec<WeightingSpec>,
    /// Variance methods, in config order.
    pub variance: Vec<VarianceMethod>,
    /// Estimation settings.
    pub estimation: EstimationSpec,
    /// Output folder.
    pub output_dir: PathBuf,
}

impl Pipeline {
    /// Read and check a pipeline config; relative paths are taken from the config's folder.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Pipeline::from_str(&text, path)
    }

    /// Parse config text as if read from `path`.
    pub fn from_str(text: &str, path: &Path) -> Result<Pipeline, ConfigError> {
        let raw: RawPipeline = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
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
                    format!("\"{s}\" is not one of fail, remove, certainty, adjust, average"),
                )
            })?,
        };
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
        let design = DesignSpec {
            strata: raw.design.strata,
            psu,
            fpc,
            weight: raw.design.weight,
            nest: raw.design.nest,
            lonely_psu,
        };

        let mut weighting = Vec::new();
        if raw.weighting.is_empty() {
            weighting.push(WeightingSpec {
                name: "design".into(),
                nonresponse_classes: None,
            });
        }
        for w in raw.weighting {
            if w.name.trim().is_empty() {
                return Err(invalid(
                    "weighting.name",
                    "a weighting scheme needs a name".into(),
                ));
            }
            if weighting.iter().any(|x: &WeightingSpec| x.name == w.name) {
                return Err(invalid(
                    "weighting.name",
                    format!("scheme \"{}\" is defined twice", w.name),
                ));
            }
            let classes = match w.nonresponse {
                Some(nr) if nr.classes.is_empty() => {
                    return Err(invalid(
                        "weighting.nonresponse.classes",
                        format!("scheme \"{}\": list at least one class column", w.name),
                    ));
                }
                Some(nr) => Some(nr.classes),
                None => None,
            };
            weighting.push(WeightingSpec {
                name: w.name,
                nonresponse_classes: classes,
            });
        }

        let methods = raw
            .variance
            .map(|v| v.method.into_vec())
            .unwrap_or_else(|| vec!["taylor".into()]);
        let mut variance = Vec::new();
        for m in methods {
            let method = match m.as_str() {
                "taylor" => VarianceMethod::Taylor,
                other => {
                    return Err(invalid(
                        "variance.method",
                        format!("\"{other}\" is not supported; available: taylor"),
                    ));
                }
            };
            if !variance.contains(&method) {
                variance.push(method);
            }
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
            if domains.contains(&d) {
                return Err(invalid(
                    "estimation.domains",
                    format!("domain \"{d}\" is listed twice"),
                ));
            }
            domains.push(d);
        }

        Ok(Pipeline {
            config_path: path.to_path_buf(),
            questionnaire: resolve(&raw.questionnaire),
            data: DataSpec {
                path: resolve(&raw.data.path),
                id: raw.data.id,
                response: raw.data.response,
            },
            design,
            weighting,
            variance,
            estimation: EstimationSpec {
                indicators: est.indicators.unwrap_or_else(|| vec!["*".into()]),
                domains,
                ci,
                level,
                domain_df,
            },
            output_dir: resolve(&raw.output.dir),
        })
    }
}
