//! Publication outputs: the entry point [`write_publication`], which writes the products chosen
//! in the [`PublicationConfig`] (`sdmx.csv`, `tables.xlsx`, `report.html`), the CSV mirror
//! `estimates.csv` and `manifest.json`.
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

use sha2::{Digest, Sha256};

use super::context::{PublicationContext, source_date_epoch};
use super::settings::{Format, PublicationConfig};
use super::{OutputError, StagedFiles, spreadsheet_safe};
use crate::estimate::EstimateRow;

/// Columns of `estimates.csv` (those of `estimates.parquet`).
pub const CSV_COLUMNS: [&str; 20] = [
    "indicator",
    "weighting",
    "variance",
    "domain_var",
    "domain_value",
    "category",
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
    "item_missing_share",
];

/// Shortest text that reads back as the same f64; empty for none.
fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_default()
}

/// `estimates.csv`: the rows with the Parquet columns, text made spreadsheet-safe.
pub fn estimates_csv(rows: &[EstimateRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // `level` last, in a survey of households and persons only (as in `estimates.parquet`).
    let two_units = rows
        .iter()
        .any(|r| r.level == crate::questionnaire::Level::Household);
    let level: &[&str] = if two_units { &["level"] } else { &[] };
    w.write_record(CSV_COLUMNS.iter().chain(level))?;
    for r in rows {
        let level: &[&str] = if two_units { &[r.level.as_str()] } else { &[] };
        w.write_record(
            [
                spreadsheet_safe(&r.indicator).as_ref(),
                &spreadsheet_safe(&r.weighting),
                r.variance.as_str(),
                &spreadsheet_safe(&r.domain_var),
                &spreadsheet_safe(&r.domain_value),
                &spreadsheet_safe(r.category.as_deref().unwrap_or_default()),
                &num(r.estimate),
                &num(r.se),
                &num(r.ci_low),
                &num(r.ci_high),
                r.ci_method.as_str(),
                &num(r.df),
                &num(r.cv),
                &num(r.deff),
                &r.n_unweighted.to_string(),
                &format!("{}", r.n_weighted),
                &num(r.n_effective),
                r.flag.as_str(),
                &spreadsheet_safe(&r.flag_reason),
                &num(r.item_missing_share),
            ]
            .into_iter()
            .chain(level.iter().copied()),
        )?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
    use crate::estimate::ci::CiMethod;
    use crate::estimate::{Flag, VarianceMethod};

    #[test]
    fn unix_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
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
            variance: VarianceMethod::Taylor,
            domain_var: "_T".into(),
            domain_value: "-x".into(),
            category: None,
            estimate: Some(0.25),
            se: None,
            ci_low: None,
            ci_high: None,
            ci_method: CiMethod::Logit,
            df: Some(10.0),
            cv: None,
            deff: None,
            n_unweighted: 12,
            n_weighted: 100.5,
            n_effective: None,
            item_missing_share: None,
            flag: Flag::Reliable,
            flag_reason: String::new(),
            level: crate::questionnaire::Level::Person,
        };
        let text = String::from_utf8(estimates_csv(&[row]).expect("csv")).expect("utf8");
        let line = text.lines().nth(1).expect("row");
        assert_eq!(
            line,
            "'=cmd,w,taylor,_T,'-x,,0.25,,,,logit,10,,,12,100.5,,,,"
        );
    }
}
