//! Publication outputs: the entry point [`write_publication`], what the products need to know
//! about the run ([`PublicationContext`]), the checked publication config
//! ([`PublicationConfig`]), the CSV mirror `estimates.csv` and `manifest.json`.
//!
//! Every file goes through [`StagedFiles`], so the publication products appear together with
//! `estimates.parquet` and the others, or not at all. `manifest.json` lists every file staged
//! for the output folder by this run (including those staged before this call) with its SHA-256,
//! and the provenance block; it has no timestamp unless `SOURCE_DATE_EPOCH` is set.
//! No product contains microdata: only estimates, counts and weight summaries.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::reliability::{RawReliability, ReliabilityRules};
use super::sdmx::{RawSdmx, SdmxConfig};
use super::{OutputError, StagedFiles, spreadsheet_safe};
use crate::estimate::{ContrastRow, EstimateRow};
use crate::ingest::{Finding, FindingKind};
use crate::questionnaire::Questionnaire;
use crate::weighting::WeightSummary;

/// A problem in the publication settings, naming its key (e.g. `sdmx.series.bribery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationConfigError {
    /// Full key, e.g. `reliability.preset`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for PublicationConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for PublicationConfigError {}

/// An output format of `[output] formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `estimates.parquet` (written by the pipeline itself).
    Parquet,
    /// `estimates.csv`.
    Csv,
    /// `sdmx.csv`.
    Sdmx,
    /// `tables.xlsx`.
    Xlsx,
    /// `report.html`.
    Html,
}

impl Format {
    /// Name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Sdmx => "sdmx",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// Check `[output] formats`; absent means `["parquet", "csv"]`, so that every run leaves a
    /// table any spreadsheet opens.
    pub fn check_list(
        formats: Option<&[String]>,
    ) -> Result<Vec<Format>, Vec<PublicationConfigError>> {
        let Some(list) = formats else {
            return Ok(vec![Format::Parquet, Format::Csv]);
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for name in list {
            let f = match name.as_str() {
                "parquet" => Format::Parquet,
                "csv" => Format::Csv,
                "sdmx" => Format::Sdmx,
                "xlsx" => Format::Xlsx,
                "html" => Format::Html,
                other => {
                    errors.push(PublicationConfigError {
                        key: "output.formats".into(),
                        message: format!(
                            "\"{other}\" is not one of parquet, csv, sdmx, xlsx, html"
                        ),
                    });
                    continue;
                }
            };
            if out.contains(&f) {
                errors.push(PublicationConfigError {
                    key: "output.formats".into(),
                    message: format!("\"{name}\" is listed twice"),
                });
            } else {
                out.push(f);
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// The raw publication settings, as the config parser hands them over.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawPublication {
    /// `[reliability]`.
    #[serde(default)]
    pub reliability: Option<RawReliability>,
    /// `[sdmx]`.
    #[serde(default)]
    pub sdmx: Option<RawSdmx>,
    /// `[output] formats`.
    #[serde(default)]
    pub formats: Option<Vec<String>>,
}

/// Checked publication settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicationConfig {
    /// Formats to write (`Parquet` is the pipeline's own `estimates.parquet`).
    pub formats: Vec<Format>,
    /// Reliability rules (NCHS 2017 with suppression when `[reliability]` is absent).
    pub reliability: ReliabilityRules,
    /// `[sdmx]`, required when `sdmx` is among the formats.
    pub sdmx: Option<SdmxConfig>,
}

impl Default for PublicationConfig {
    fn default() -> PublicationConfig {
        PublicationConfig {
            formats: vec![Format::Parquet, Format::Csv],
            reliability: ReliabilityRules::default(),
            sdmx: None,
        }
    }
}

impl PublicationConfig {
    /// Check the three raw parts together; every problem is returned at once.
    pub fn check(
        reliability: Option<&RawReliability>,
        sdmx: Option<&RawSdmx>,
        formats: Option<&[String]>,
    ) -> Result<PublicationConfig, Vec<PublicationConfigError>> {
        let mut errors = Vec::new();
        let formats = Format::check_list(formats).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        });
        let reliability = match reliability {
            // Without a [reliability] table cells are flagged (NCHS 2017) but never blanked:
            // suppression is a publication decision the user states.
            None => ReliabilityRules {
                suppress: false,
                ..ReliabilityRules::default()
            },
            Some(r) => r.check().unwrap_or_else(|e| {
                errors.extend(e);
                ReliabilityRules::default()
            }),
        };
        let sdmx = match sdmx {
            None => None,
            Some(s) => match s.check() {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.extend(e);
                    None
                }
            },
        };
        if formats.contains(&Format::Sdmx) && sdmx.is_none() && errors.is_empty() {
            errors.push(PublicationConfigError {
                key: "output.formats".into(),
                message: "\"sdmx\" needs an [sdmx] table with ref_area and time_period".into(),
            });
        }
        if errors.is_empty() {
            Ok(PublicationConfig {
                formats,
                reliability,
                sdmx,
            })
        } else {
            Err(errors)
        }
    }

    /// Check [`RawPublication`] (the three parts in one struct).
    pub fn check_raw(
        raw: &RawPublication,
    ) -> Result<PublicationConfig, Vec<PublicationConfigError>> {
        PublicationConfig::check(
            raw.reliability.as_ref(),
            raw.sdmx.as_ref(),
            raw.formats.as_deref(),
        )
    }

    /// Cross-check against the questionnaire (call before reading data).
    pub fn check_against(&self, q: &Questionnaire) -> Result<(), Vec<PublicationConfigError>> {
        let errors = self
            .sdmx
            .as_ref()
            .map(|s| s.check_against(q))
            .unwrap_or_default();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// True when `f` is to be written.
    pub fn wants(&self, f: Format) -> bool {
        self.formats.contains(&f)
    }
}

/// Fit of a calibration, for the weighting sections.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationFit {
    /// Method name as configured (e.g. `raking`).
    pub method: String,
    /// Iterations used.
    pub iterations: usize,
    /// Largest |calibrated total − population total| / population total over the margins.
    pub max_margin_error: f64,
    /// Whether the algorithm converged.
    pub converged: bool,
}

/// One weighting scheme as the products describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeSummary {
    /// Scheme name.
    pub name: String,
    /// Nonresponse adjustment classes, if any.
    pub nonresponse_classes: Option<Vec<String>>,
    /// Distribution of the final weights.
    pub weights: WeightSummary,
    /// Calibration fit, when the scheme is calibrated.
    pub calibration: Option<CalibrationFit>,
}

impl DesignSummary {
    /// One sentence for methods sections (report and workbook cover).
    pub fn describe(&self) -> String {
        format!(
            "Stratified by {}, clusters {}, weight {}, FPC {}: {} strata, {} PSUs, {} design degrees of freedom; lonely PSUs: {}.",
            self.strata.as_deref().unwrap_or("(none)"),
            if self.psu.is_empty() {
                "(elements)".into()
            } else {
                self.psu.join(" > ")
            },
            self.weight,
            if self.fpc.is_empty() {
                "(none)".into()
            } else {
                self.fpc.join(", ")
            },
            self.n_strata,
            self.n_psu,
            super::sdmx::number(self.df),
            self.lonely_psu
        )
    }
}

/// The sampling design as the products describe it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DesignSummary {
    /// Strata column.
    pub strata: Option<String>,
    /// PSU column(s), one per stage.
    pub psu: Vec<String>,
    /// Design weight column.
    pub weight: String,
    /// FPC column(s).
    pub fpc: Vec<String>,
    /// Lonely-PSU rule.
    pub lonely_psu: String,
    /// Strata among respondents.
    pub n_strata: usize,
    /// PSUs among respondents.
    pub n_psu: usize,
    /// Design degrees of freedom.
    pub df: f64,
}

/// What the publication products say about the run besides the estimates.
#[derive(Debug, Clone)]
pub struct PublicationContext<'a> {
    /// The questionnaire (labels, units, code labels, kinds).
    pub questionnaire: &'a Questionnaire,
    /// Title of the publication (config); the questionnaire's title when empty.
    pub title: String,
    /// Reference period (config), e.g. `2025`.
    pub reference_period: String,
    /// cvsurvey version.
    pub tool_version: String,
    /// Data file name (no folder).
    pub data_file: String,
    /// SHA-256 of the data file.
    pub data_sha256: String,
    /// Rows read.
    pub rows_read: u64,
    /// Rows used.
    pub rows_used: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Respondents among used rows.
    pub respondents: u64,
    /// Findings per kind.
    pub findings_by_kind: BTreeMap<FindingKind, usize>,
    /// The first findings (the caller chooses how many; 20 reads well).
    pub first_findings: Vec<Finding>,
    /// Design.
    pub design: DesignSummary,
    /// Weighting schemes, in config order.
    pub schemes: Vec<SchemeSummary>,
    /// Variance methods, e.g. `["taylor"]`.
    pub variance_methods: Vec<String>,
    /// Confidence level, e.g. 0.95.
    pub ci_level: f64,
    /// Interval methods, in config order (the first is the one tables and SDMX show).
    pub ci_methods: Vec<String>,
    /// Domain df rule (`subset` or `full`).
    pub domain_df: String,
    /// Provenance key-value pairs (the Parquet metadata block).
    pub provenance: Vec<(String, String)>,
    /// Contrasts of the run (`contrasts.parquet`); none without `[[contrast]]`.
    pub contrasts: &'a [ContrastRow],
}

impl PublicationContext<'_> {
    /// Title, falling back to the questionnaire's.
    pub fn display_title(&self) -> &str {
        if self.title.trim().is_empty() {
            &self.questionnaire.title
        } else {
            &self.title
        }
    }
}

/// Columns of `estimates.csv` (those of `estimates.parquet`).
pub const CSV_COLUMNS: [&str; 18] = [
    "indicator",
    "weighting",
    "variance",
    "domain_var",
    "domain_value",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "ci_method",
    "df",
    "cv",
    "deff",
    "n_unweighted",
    "n_weighted",
    "n_effective",
    "flag",
    "flag_reason",
];

/// Shortest text that reads back as the same f64; empty for none.
fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_default()
}

/// `estimates.csv`: the rows with the Parquet columns, text made spreadsheet-safe.
pub fn estimates_csv(rows: &[EstimateRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for r in rows {
        w.write_record([
            spreadsheet_safe(&r.indicator).as_ref(),
            &spreadsheet_safe(&r.weighting),
            &spreadsheet_safe(&r.variance),
            &spreadsheet_safe(&r.domain_var),
            &spreadsheet_safe(&r.domain_value),
            &num(r.estimate),
            &num(r.se),
            &num(r.ci_low),
            &num(r.ci_high),
            &r.ci_method,
            &num(r.df),
            &num(r.cv),
            &num(r.deff),
            &r.n_unweighted.to_string(),
            &format!("{}", r.n_weighted),
            &num(r.n_effective),
            &r.flag,
            &spreadsheet_safe(&r.flag_reason),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `SOURCE_DATE_EPOCH` as seconds, when set to a valid integer.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
}

/// (year, month, day, hour, minute, second) in UTC of Unix seconds (Hinnant's civil_from_days).
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// RFC 3339 UTC time of Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn io(path: &Path, e: impl fmt::Display) -> OutputError {
    OutputError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The text of `manifest.json` for `files` (name → SHA-256 and size).
pub fn manifest_json(
    files: &BTreeMap<String, (String, u64)>,
    provenance: &[(String, String)],
    created: Option<i64>,
) -> String {
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(
            |(name, (sha, size))| serde_json::json!({ "file": name, "sha256": sha, "bytes": size }),
        )
        .collect();
    let provenance: serde_json::Map<String, serde_json::Value> = provenance
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut root = serde_json::Map::new();
    root.insert("manifest_version".into(), serde_json::json!(1));
    if let Some(secs) = created {
        root.insert("created".into(), serde_json::json!(rfc3339(secs)));
    }
    root.insert("provenance".into(), serde_json::Value::Object(provenance));
    root.insert("files".into(), serde_json::Value::Array(files));
    let mut text =
        serde_json::to_string_pretty(&serde_json::Value::Object(root)).unwrap_or_default();
    text.push('\n');
    text
}

/// Write the publication products chosen in `cfg.formats` into `dir` (`estimates.csv`,
/// `sdmx.csv`, `tables.xlsx`, `report.html`), then `manifest.json` covering every file staged
/// in `dir` by this run. Returns the final paths of the files written here.
///
/// `rows` should already carry reliability flags ([`super::reliability::apply_reliability`]).
pub fn write_publication(
    staged: &mut StagedFiles,
    dir: &Path,
    rows: &[EstimateRow],
    ctx: &PublicationContext<'_>,
    cfg: &PublicationConfig,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut products: Vec<(&str, Vec<u8>)> = Vec::new();
    if cfg.wants(Format::Csv) {
        let path = dir.join("estimates.csv");
        products.push((
            "estimates.csv",
            estimates_csv(rows).map_err(|e| io(&path, e))?,
        ));
    }
    if cfg.wants(Format::Sdmx) {
        let path = dir.join("sdmx.csv");
        let sdmx = cfg
            .sdmx
            .as_ref()
            .ok_or_else(|| io(&path, "sdmx output needs an [sdmx] table"))?;
        let table = super::sdmx::sdmx_rows(rows, sdmx, ctx.questionnaire, ctx.ci_level)
            .map_err(|m| io(&path, m))?;
        products.push((
            "sdmx.csv",
            super::sdmx::to_csv(&table).map_err(|e| io(&path, e))?,
        ));
    }
    if cfg.wants(Format::Xlsx) {
        let path = dir.join("tables.xlsx");
        products.push((
            "tables.xlsx",
            super::xlsx::workbook_bytes(rows, ctx, cfg).map_err(|m| io(&path, m))?,
        ));
    }
    if cfg.wants(Format::Html) {
        products.push((
            "report.html",
            super::html::render(rows, ctx, cfg).into_bytes(),
        ));
    }
    let mut hashes: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for (name, temp) in staged.written()? {
        let bytes = std::fs::read(&temp).map_err(|e| io(&temp, e))?;
        hashes.insert(name, (sha256_hex(&bytes), bytes.len() as u64));
    }
    let mut written = Vec::new();
    for (name, bytes) in &products {
        let path = dir.join(name);
        staged.write(&path, |out| out.write_all(bytes).map_err(|e| io(&path, e)))?;
        hashes.insert((*name).to_string(), (sha256_hex(bytes), bytes.len() as u64));
        written.push(path);
    }
    let manifest = manifest_json(&hashes, &ctx.provenance, source_date_epoch());
    let path = dir.join("manifest.json");
    staged.write(&path, |out| {
        out.write_all(manifest.as_bytes()).map_err(|e| io(&path, e))
    })?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn formats_are_checked() {
        assert_eq!(
            Format::check_list(Some(&["csv".into(), "html".into()])).expect("ok"),
            vec![Format::Csv, Format::Html]
        );
        let e =
            Format::check_list(Some(&["pdf".into(), "csv".into(), "csv".into()])).expect_err("bad");
        assert_eq!(e.len(), 2);
        assert!(
            e[0].to_string().starts_with("output.formats: \"pdf\""),
            "{}",
            e[0]
        );
        let e = PublicationConfig::check(None, None, Some(&["sdmx".into()])).expect_err("no sdmx");
        assert!(e[0].message.contains("[sdmx]"), "{e:?}");
    }

    #[test]
    fn staged_files_are_found_for_the_manifest() {
        let dir = std::env::temp_dir().join(format!("cvsurvey-manifest-{}", std::process::id()));
        let out = dir.join("out");
        let folder = super::super::OutputFolder::begin(&out, &[]).expect("begin");
        let mut staged = folder.stage();
        super::super::write_text(&mut staged, &out.join("weighting.json"), "hello").expect("stage");
        let found = staged.written().expect("scan");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "weighting.json");
        let bytes = std::fs::read(&found[0].1).expect("read staged file");
        assert_eq!(bytes, b"hello");
        drop(folder);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn csv_mirror_neutralises_formulas() {
        let row = EstimateRow {
            indicator: "=cmd".into(),
            weighting: "w".into(),
            variance: "taylor".into(),
            domain_var: "_T".into(),
            domain_value: "-x".into(),
            estimate: Some(0.25),
            se: None,
            ci_low: None,
            ci_high: None,
            ci_method: "logit".into(),
            df: Some(10.0),
            cv: None,
            deff: None,
            n_unweighted: 12,
            n_weighted: 100.5,
            n_effective: None,
            flag: String::new(),
            flag_reason: String::new(),
        };
        let text = String::from_utf8(estimates_csv(&[row]).expect("csv")).expect("utf8");
        let line = text.lines().nth(1).expect("row");
        assert_eq!(line, "'=cmd,w,taylor,_T,'-x,0.25,,,,logit,10,,,12,100.5,,,");
    }
}
