//! Output files: `estimates.parquet`, `quarantine.csv`, `findings.csv`.
//!
//! Every file is written into a staging folder beside the output folder, and the staging folder
//! replaces the output folder as a whole only after all of them were written ([`staging`]), so
//! a failed run never leaves a half-written file, nor a mix of two runs, under the final names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::estimate::EstimateRow;
use crate::frame::Column;
use crate::ingest::FindingRef;
use crate::questionnaire::Level;

pub mod association;
pub mod context;
pub mod contrasts;
pub mod fieldwork;
pub mod html;
pub mod present;
pub mod publish;
pub mod reliability;
pub mod sdmx;
pub mod settings;
pub mod show;
pub mod staging;
pub mod xlsx;

pub use staging::{OUTPUT_FILES, OutputFolder, StagedFiles};

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// File system error.
    #[error("{path}: {message}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Arrow/Parquet encoding error.
    #[error("{path}: cannot encode Parquet: {message}")]
    Parquet {
        /// File concerned.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// An input of the run sits where the run writes an output: the run would replace it.
    #[error(
        "{input}: the {what} is also the output {output}, which this run replaces; move it out of the output folder or choose another [output] dir"
    )]
    InputIsOutput {
        /// Which input, e.g. `data file (data.path)`.
        what: String,
        /// The input as configured.
        input: PathBuf,
        /// The output at the same path.
        output: PathBuf,
    },
    /// Another run holds the output folder's lock.
    #[error(
        "{folder}: another cvsurvey run (pid {pid}) is writing this output folder; wait for it to finish, or, if no cvsurvey run is using the folder, delete the stale lock file {lock}"
    )]
    InUse {
        /// The output folder.
        folder: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// The pid written in the lock file (`unknown` when empty).
        pid: String,
    },
    /// The output folder holds something cvsurvey does not write; a run replaces the folder as a
    /// whole, so it refuses rather than delete it.
    #[error(
        "{folder}: holds {entry}{}, which cvsurvey did not write; each run replaces the output folder as a whole, so move it elsewhere or choose another [output] dir",
        if *others > 0 { format!(" and {others} other file(s)") } else { String::new() }
    )]
    Foreign {
        /// The output folder.
        folder: PathBuf,
        /// The first such entry, by name.
        entry: String,
        /// How many more there are.
        others: usize,
    },
}

impl OutputError {
    /// 1 when the config is at fault (an input at an output's path), 2 for file-system errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            OutputError::InputIsOutput { .. } => 1,
            _ => 2,
        }
    }
}

/// A problem in the publication settings, naming its key (e.g. `sdmx.series.bribery`).
///
/// Every product checks its own table (`[reliability]`, `[sdmx]`, `[output] formats`) and
/// reports in these terms, so the config lists all problems at once, each under its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PublicationConfigError {
    /// Full key, e.g. `reliability.preset`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// A number as CSV text that reads back as the same f64: plain digits, or scientific notation
/// for the very small and very large (a p-value of 1e-130 would be 130 digits long).
fn csv_number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-5..1e16).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A CSV file in memory: `header`, then one record per row from `record` (text, made
/// spreadsheet-safe; numbers as [`csv_number`], empty for none; counts).
fn csv_table<R>(
    header: &[&str],
    rows: &[R],
    record: impl Fn(&R) -> (Vec<&str>, Vec<Option<f64>>, Vec<i64>),
) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        let (text, numbers, counts) = record(r);
        let mut cells: Vec<String> = text
            .iter()
            .map(|t| spreadsheet_safe(t).into_owned())
            .collect();
        cells.extend(
            numbers
                .into_iter()
                .map(|x| x.map(csv_number).unwrap_or_default()),
        );
        cells.extend(counts.into_iter().map(|n| n.to_string()));
        w.write_record(&cells)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Stage a CSV file made in memory (`bytes`, or the CSV writer's error) at `path`.
fn stage_csv(
    staged: &mut StagedFiles,
    path: &Path,
    bytes: Result<Vec<u8>, csv::Error>,
) -> Result<(), OutputError> {
    let bytes = bytes.map_err(|e| io_err(path, e))?;
    staged.write(path, |out| {
        std::io::Write::write_all(out, &bytes).map_err(|e| io_err(path, e))
    })
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Arrow schema of `estimates.parquet` (the output contract).
pub fn estimates_schema() -> Schema {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    let f64n = |n: &str| Field::new(n, DataType::Float64, true);
    Schema::new(vec![
        utf8("indicator"),
        utf8("weighting"),
        utf8("variance"),
        utf8("domain_var"),
        utf8("domain_value"),
        Field::new("category", DataType::Utf8, true),
        f64n("estimate"),
        f64n("se"),
        f64n("ci_low"),
        f64n("ci_high"),
        utf8("ci_method"),
        f64n("df"),
        f64n("cv"),
        f64n("deff"),
        Field::new("n_unweighted", DataType::Int64, false),
        Field::new("n_weighted", DataType::Float64, false),
        Field::new("n_effective", DataType::Float64, true),
        utf8("flag"),
        utf8("flag_reason"),
        f64n("item_missing_share"),
    ])
}

/// Build the Arrow record batch of the estimates.
pub fn estimates_batch(rows: &[EstimateRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let s = |f: fn(&EstimateRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let o = |f: fn(&EstimateRow) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        s(|r| &r.indicator),
        s(|r| &r.weighting),
        s(|r| r.variance.as_str()),
        s(|r| &r.domain_var),
        s(|r| &r.domain_value),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.category.as_deref()),
        )),
        o(|r| r.estimate),
        o(|r| r.se),
        o(|r| r.ci_low),
        o(|r| r.ci_high),
        s(|r| r.ci_method.as_str()),
        o(|r| r.df),
        o(|r| r.cv),
        o(|r| r.deff),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.n_unweighted),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.n_weighted),
        )),
        o(|r| r.n_effective),
        s(|r| r.flag.as_str()),
        s(|r| &r.flag_reason),
        o(|r| r.item_missing_share),
    ];
    let mut columns = columns;
    let mut schema = estimates_schema();
    // A survey of households and persons says which unit each row is estimated over; the
    // files of one unit keep their columns.
    if rows.iter().any(|r| r.level == Level::Household) {
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("level", DataType::Utf8, false));
        schema = Schema::new(fields);
        columns.push(s(|r| r.level.as_str()));
    }
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// Write `estimates.parquet` (ZSTD) with key-value `metadata`.
pub fn write_estimates(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[EstimateRow],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let batch = estimates_batch(rows).map_err(|e| OutputError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_batch(staged, path, &batch, metadata)
}

/// Names a finding's (data row, column) as the data file's own viewer shows it.
pub type CellNamer<'a> = &'a dyn Fn(u64, &str) -> String;

/// Write findings as CSV with columns `row,id,column,value,kind,reason,action`, and `cell`
/// when `cell_of` names a finding's (row, column) as the data file's own viewer shows it (a
/// workbook's `data!J6`; empty for a finding about the whole file).
///
/// `quarantine.csv` gets the findings that excluded their row; `findings.csv` all of them.
pub fn write_findings<'a>(
    staged: &mut StagedFiles,
    path: &Path,
    findings: impl Iterator<Item = FindingRef<'a>>,
    cell_of: Option<CellNamer<'_>>,
) -> Result<(), OutputError> {
    staged.write(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        let e = |err: csv::Error| io_err(path, err);
        let columns = [
            "row", "id", "column", "value", "kind", "reason", "action", "cell",
        ];
        let width = if cell_of.is_some() { 8 } else { 7 };
        w.write_record(&columns[..width]).map_err(e)?;
        for f in findings {
            let cell = match cell_of {
                Some(name) if f.row > 0 => name(f.row, f.column),
                _ => String::new(),
            };
            let row = f.row.to_string();
            let record = [
                row.as_str(),
                &spreadsheet_safe(f.id),
                &spreadsheet_safe(f.column),
                &spreadsheet_safe(f.value),
                f.kind.as_str(),
                &spreadsheet_safe(&f.reason),
                f.action.as_str(),
                &spreadsheet_safe(&cell),
            ];
            w.write_record(&record[..width]).map_err(e)?;
        }
        w.flush().map_err(|err| io_err(path, err))?;
        Ok(())
    })
}

/// Text from user files written to CSV: a cell starting with `=`, `+`, `-`, `@`, tab or carriage
/// return could be run as a formula by a spreadsheet, so it is prefixed with `'` (OWASP CSV
/// injection guidance). Plain numbers such as `-3` are left as they are.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Write a plain text file.
pub fn write_text(staged: &mut StagedFiles, path: &Path, text: &str) -> Result<(), OutputError> {
    staged.write(path, |out| {
        out.write_all(text.as_bytes()).map_err(|e| io_err(path, e))
    })
}

/// Write `weights.parquet`: one row per used input row, in input order, with the id, whether
/// the row is a respondent, its design weight, and its final weight under each scheme (null for
/// unit nonrespondents, who carry no analysis weight).
pub fn write_weights(
    staged: &mut StagedFiles,
    path: &Path,
    ids: Option<&Column>,
    respondent: &[bool],
    design_weight: &[f64],
    schemes: &[(String, Vec<Option<f64>>)],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let perr = |e: &dyn std::fmt::Display| OutputError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("respondent", DataType::Boolean, false),
        Field::new("design_weight", DataType::Float64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(id_array(ids, respondent.len())),
        Arc::new(arrow_array::BooleanArray::from(respondent.to_vec())),
        Arc::new(Float64Array::from(design_weight.to_vec())),
    ];
    for (name, weights) in schemes {
        fields.push(Field::new(name, DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(weights.clone())));
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| perr(&e))?;
    // One row per input row: ids are all different and weights nearly so, so a dictionary
    // would be built and dropped, and the fastest zstd level keeps the write off the run's
    // critical path (the file is 8 % larger than at level 3).
    let layout = Layout {
        dictionary: false,
        zstd_level: 1,
    };
    write_batch_with(staged, path, &batch, metadata, layout)
}

/// The ids as written in the data (empty where a cell has none, and for every row when there
/// is no id column), one buffer for all rows rather than a string per row.
fn id_array(ids: Option<&Column>, n_rows: usize) -> StringArray {
    let mut builder = StringBuilder::with_capacity(n_rows, n_rows * 8);
    let mut cell = String::new();
    for r in 0..n_rows {
        cell.clear();
        if let Some(col) = ids {
            col.display_into(r, &mut cell);
        }
        builder.append_value(&cell);
    }
    builder.finish()
}

/// Write `comparison.parquet`: one row per indicator × variance method × domain × category
/// (nullable `category` after `domain_value`, as in `estimates.parquet`), with
/// `<scheme>_estimate`, `<scheme>_se`, `<scheme>_deff`, `<scheme>_item_missing_share` and
/// `<scheme>_n` for every scheme in `schemes` order. Estimate, SE and deff do not depend on the interval method, so the first
/// interval row of each group is used.
pub fn write_comparison(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[EstimateRow],
    schemes: &[String],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let perr = |e: &dyn std::fmt::Display| OutputError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let table = comparison_table(rows, schemes);
    let mut fields = vec![
        Field::new("indicator", DataType::Utf8, false),
        Field::new("variance", DataType::Utf8, false),
        Field::new("domain_var", DataType::Utf8, false),
        Field::new("domain_value", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, true),
    ];
    let key = |i: usize| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            table.iter().map(|r| r.key[i].as_str()),
        ))
    };
    let mut columns: Vec<ArrayRef> = vec![key(0), key(1), key(2), key(3)];
    columns.push(Arc::new(StringArray::from_iter(
        table.iter().map(|r| r.category.as_deref()),
    )));
    for (k, name) in schemes.iter().enumerate() {
        for (suffix, pick) in [
            (
                "estimate",
                (|r: &EstimateRow| r.estimate) as fn(&EstimateRow) -> Option<f64>,
            ),
            ("se", |r: &EstimateRow| r.se),
            ("deff", |r: &EstimateRow| r.deff),
            ("item_missing_share", |r: &EstimateRow| r.item_missing_share),
        ] {
            fields.push(Field::new(
                format!("{name}_{suffix}"),
                DataType::Float64,
                true,
            ));
            columns.push(Arc::new(Float64Array::from_iter(
                table.iter().map(|r| r.by_scheme[k].and_then(pick)),
            )));
        }
        fields.push(Field::new(format!("{name}_n"), DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from_iter(
            table.iter().map(|r| r.by_scheme[k].map(|x| x.n_unweighted)),
        )));
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| perr(&e))?;
    write_batch(staged, path, &batch, metadata)
}

/// One row of the scheme comparison: the key and, per scheme, the matching estimate row.
#[derive(Debug)]
pub struct ComparisonRow<'a> {
    /// indicator, variance, domain_var, domain_value.
    pub key: [String; 4],
    /// The category of a distribution or the probability of a quantile (part of the key).
    pub category: Option<String>,
    /// The estimate row of each scheme (in scheme order), if any.
    pub by_scheme: Vec<Option<&'a EstimateRow>>,
}

/// Pivot estimates to one row per indicator × variance × domain × category, schemes side by
/// side, in the order the keys first appear in `rows`.
pub fn comparison_table<'a>(rows: &'a [EstimateRow], schemes: &[String]) -> Vec<ComparisonRow<'a>> {
    type Key = ([String; 4], Option<String>);
    let mut index: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    let mut table: Vec<ComparisonRow<'a>> = Vec::new();
    for r in rows {
        let key = [
            r.indicator.clone(),
            r.variance.as_str().to_string(),
            r.domain_var.clone(),
            r.domain_value.clone(),
        ];
        let Some(k) = schemes.iter().position(|s| *s == r.weighting) else {
            continue;
        };
        let i = *index
            .entry((key.clone(), r.category.clone()))
            .or_insert_with(|| {
                table.push(ComparisonRow {
                    key,
                    category: r.category.clone(),
                    by_scheme: vec![None; schemes.len()],
                });
                table.len() - 1
            });
        if table[i].by_scheme[k].is_none() {
            table[i].by_scheme[k] = Some(r);
        }
    }
    table
}

fn write_batch(
    staged: &mut StagedFiles,
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let layout = Layout {
        dictionary: true,
        zstd_level: 3,
    };
    write_batch_with(staged, path, batch, metadata, layout)
}

/// How a Parquet file's columns are encoded.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Dictionary encoding of every column.
    dictionary: bool,
    /// zstd compression level.
    zstd_level: i32,
}

/// [`write_batch`] with a given [`Layout`].
fn write_batch_with(
    staged: &mut StagedFiles,
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
    layout: Layout,
) -> Result<(), OutputError> {
    let perr = |e: &dyn std::fmt::Display| OutputError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let zstd = ZstdLevel::try_new(layout.zstd_level).map_err(|e| perr(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(layout.dictionary)
        .set_coerce_types(true)
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ))
        .build();
    staged.write(path, |out| {
        encode_parquet(out, batch, props).map_err(|e| perr(&e))
    })
}

/// `batch` as a Parquet file written to `out`, the columns of each row group encoded at the same
/// time and appended in schema order: the bytes `ArrowWriter::write` gives (row groups of
/// `props`' size, the same pages), in a fraction of the time for a file with a row per input row.
fn encode_parquet<W: Write + Send>(
    out: W,
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<(), parquet::errors::ParquetError> {
    let rows_per_group = props
        .max_row_group_row_count()
        .unwrap_or(parquet::file::properties::DEFAULT_MAX_ROW_GROUP_ROW_COUNT)
        .max(1);
    let writer = ArrowWriter::try_new(out, batch.schema(), Some(props))?;
    let (mut file, groups) = writer.into_serialized_writer()?;
    let schema = batch.schema();
    let mut start = 0;
    while start < batch.num_rows() {
        let rows = batch.slice(start, rows_per_group.min(batch.num_rows() - start));
        let writers = groups.create_column_writers(file.flushed_row_groups().len())?;
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in schema.fields().iter().zip(rows.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        let chunks: Vec<_> = writers
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut writer, leaf)| {
                writer.write(&leaf)?;
                writer.close()
            })
            .collect();
        let mut group = file.next_row_group()?;
        for chunk in chunks {
            chunk?.append_to_row_group(&mut group)?;
        }
        group.close()?;
        start += rows.num_rows();
    }
    file.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_numbers_read_back_exactly_and_stay_short() {
        for x in [
            0.0,
            1.0,
            -2.5,
            0.05,
            1e-5,
            7.242167093390781e-99,
            1.7e-130,
            3.4e20,
            -1e-7,
            123456.789,
        ] {
            let text = csv_number(x);
            assert_eq!(text.parse::<f64>().ok(), Some(x), "{text}");
            assert!(text.len() <= 24, "{text}");
        }
        assert_eq!(csv_number(0.05), "0.05");
        assert_eq!(csv_number(7.242167093390781e-99), "7.242167093390781e-99");
    }

    #[test]
    fn columns_encoded_at_once_give_the_bytes_of_the_arrow_writer() {
        // Several row groups and several pages in each, nulls and text included.
        let n = 3_500usize;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("w", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("R{i:05}")),
                )),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| (i * i % 97) as i64),
                )),
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| (i % 7 != 0).then(|| 1.0 + i as f64 / 3.0)),
                )),
            ],
        )
        .expect("batch");
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
                .set_max_row_group_row_count(Some(1000))
                .set_data_page_row_count_limit(300)
                .set_key_value_metadata(Some(vec![KeyValue::new("k".to_string(), "v".to_string())]))
                .build()
        };
        let mut plain = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut plain, batch.schema(), Some(props())).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let mut fast = Vec::new();
        encode_parquet(&mut fast, &batch, props()).expect("encode");
        assert!(plain.len() > 1000);
        assert!(
            plain == fast,
            "{} and {} bytes differ",
            plain.len(),
            fast.len()
        );
        // An empty batch: a file without row groups, as the writer makes it.
        let empty = batch.slice(0, 0);
        let (mut plain, mut fast) = (Vec::new(), Vec::new());
        let writer = ArrowWriter::try_new(&mut plain, empty.schema(), Some(props()));
        writer.expect("writer").close().expect("close");
        encode_parquet(&mut fast, &empty, props()).expect("encode");
        assert!(plain == fast);
    }

    #[test]
    fn comparison_parquet_has_a_nullable_category_after_domain_value() {
        let mut plain = present::tests::row(("_T", "_T"), None, "logit");
        plain.indicator = "bribery".into();
        let rows = vec![plain, present::tests::row(("_T", "_T"), Some("2"), "logit")];
        let dir = std::env::temp_dir().join(format!("cvsurvey-comparison-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let folder = OutputFolder::begin(&dir, &[]).expect("folder");
        let mut staged = folder.stage();
        let path = dir.join("comparison.parquet");
        write_comparison(&mut staged, &path, &rows, &["design".into()], &[]).expect("write");
        folder.commit(staged).expect("commit");
        let file = std::fs::File::open(&path).expect("open");
        let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .expect("reader")
            .next()
            .expect("a batch")
            .expect("batch");
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[3..6], ["domain_value", "category", "design_estimate"]);
        assert!(schema.field(4).is_nullable());
        use arrow_array::Array;
        let category = arrow_array::cast::AsArray::as_string::<i32>(batch.column(4));
        assert!(category.is_null(0));
        assert_eq!(category.value(1), "2");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn comparison_keeps_the_categories_of_a_domain_apart() {
        let row = |weighting: &str, category: &str, estimate: f64| {
            let mut r = present::tests::row(("sex", "1"), Some(category), "logit");
            r.weighting = weighting.into();
            r.estimate = Some(estimate);
            r
        };
        let rows = vec![
            row("design", "1", 0.3),
            row("design", "2", 0.7),
            row("raked", "1", 0.35),
            row("raked", "2", 0.65),
        ];
        let schemes = vec!["design".to_string(), "raked".to_string()];
        let table = comparison_table(&rows, &schemes);
        assert_eq!(table.len(), 2);
        for (t, (code, design, raked)) in table.iter().zip([("1", 0.3, 0.35), ("2", 0.7, 0.65)]) {
            assert_eq!(t.category.as_deref(), Some(code));
            let est: Vec<Option<f64>> = t
                .by_scheme
                .iter()
                .map(|r| r.and_then(|r| r.estimate))
                .collect();
            assert_eq!(est, [Some(design), Some(raked)]);
        }
    }

    #[test]
    fn formulas_are_neutralised_numbers_kept() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+cmd"), "'+cmd");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("\tx"), "'\tx");
        assert_eq!(spreadsheet_safe("-3"), "-3");
        assert_eq!(spreadsheet_safe("-1e5"), "-1e5");
        assert_eq!(spreadsheet_safe("R07"), "R07");
    }
}
