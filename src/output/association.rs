//! `tests.parquet` and `tests.csv`: the tests of association of a run (`[[test]]`), one row per
//! test × weighting × variance method × statistic (`rao_scott_f`, then `rao_scott_chisq`).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::{OutputError, StagedFiles, write_batch};
use crate::estimate::TestRow;

/// Columns of `tests.parquet` and `tests.csv`, in order.
pub const COLUMNS: [&str; 10] = [
    "test",
    "weighting",
    "variance",
    "rows",
    "cols",
    "statistic",
    "value",
    "ndf",
    "ddf",
    "p_value",
];

const TEXT: usize = 6;
const NUMBERS: usize = 4;

/// Arrow schema of `tests.parquet`: the text columns non-null, the numbers nullable (a test
/// whose table has an empty margin has no statistic).
pub fn schema() -> Schema {
    let mut fields: Vec<Field> = COLUMNS[..TEXT]
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, false))
        .collect();
    fields.extend(
        COLUMNS[TEXT..]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    Schema::new(fields)
}

fn text(r: &TestRow) -> [&str; TEXT] {
    [
        &r.test,
        &r.weighting,
        r.variance.as_str(),
        &r.rows,
        &r.cols,
        r.statistic,
    ]
}

fn numbers(r: &TestRow) -> [Option<f64>; NUMBERS] {
    [r.value, r.ndf, r.ddf, r.p_value]
}

fn batch(rows: &[TestRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = (0..TEXT)
        .map(|j| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| text(r)[j]),
            )) as ArrayRef
        })
        .collect();
    columns.extend((0..NUMBERS).map(|j| {
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| numbers(r)[j]))) as ArrayRef
    }));
    RecordBatch::try_new(Arc::new(schema()), columns)
}

/// Write `tests.parquet` with the run's key-value `metadata`.
pub fn write_parquet(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[TestRow],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let batch = batch(rows).map_err(|e| OutputError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_batch(staged, path, &batch, metadata)
}

/// Write `tests.csv`.
pub fn write_csv(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[TestRow],
) -> Result<(), OutputError> {
    super::stage_csv(staged, path, csv_bytes(rows))
}

/// `tests.csv`: the Parquet columns, numbers as `csv_number` writes them, text spreadsheet-safe.
fn csv_bytes(rows: &[TestRow]) -> Result<Vec<u8>, csv::Error> {
    super::csv_table(&COLUMNS, rows, |r| {
        (text(r).to_vec(), numbers(r).to_vec(), Vec::new())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::estimate::VarianceMethod;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;

    /// The two statistics of one test, as estimation writes them.
    pub(crate) fn rows() -> Vec<TestRow> {
        let row = |statistic: &'static str, value: f64, ddf: Option<f64>, p: f64| TestRow {
            test: "=safety by sex".into(),
            weighting: "raked".into(),
            variance: VarianceMethod::Taylor,
            rows: "safe".into(),
            cols: "sex".into(),
            statistic,
            value: Some(value),
            ndf: Some(0.9876543210987654),
            ddf,
            p_value: Some(p),
        };
        vec![
            row("rao_scott_f", 12.5, Some(39.5), 0.00105),
            row("rao_scott_chisq", 14.25, None, 1.0e-4),
        ]
    }

    #[test]
    fn csv_has_the_contract_columns_and_blank_missing_numbers() {
        let text = String::from_utf8(csv_bytes(&rows()).expect("csv")).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "test,weighting,variance,rows,cols,statistic,value,ndf,ddf,p_value",
                "'=safety by sex,raked,taylor,safe,sex,rao_scott_f,12.5,0.9876543210987654,39.5,0.00105",
                "'=safety by sex,raked,taylor,safe,sex,rao_scott_chisq,14.25,0.9876543210987654,,0.0001",
            ]
        );
    }

    #[test]
    fn parquet_round_trips() {
        let dir =
            std::env::temp_dir().join(format!("cvsurvey-tests-parquet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let folder = super::super::OutputFolder::begin(&dir, &[]).expect("folder");
        let mut staged = folder.stage();
        let path = dir.join("tests.parquet");
        let meta = [("cvsurvey.version".to_string(), "test".to_string())];
        write_parquet(&mut staged, &path, &rows(), &meta).expect("write");
        folder.commit(staged).expect("commit");
        let file = std::fs::File::open(&path).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.schema().fields(), schema().fields());
        let statistic = b
            .column_by_name("statistic")
            .expect("statistic")
            .as_string::<i32>();
        assert_eq!(statistic.value(0), "rao_scott_f");
        assert_eq!(statistic.value(1), "rao_scott_chisq");
        let number = |name: &str| {
            b.column_by_name(name)
                .expect(name)
                .as_primitive::<Float64Type>()
                .clone()
        };
        let ndf = number("ndf");
        assert_eq!(ndf.value(1), 0.9876543210987654, "bits kept");
        let ddf = number("ddf");
        assert_eq!(ddf.value(0), 39.5);
        assert!(ddf.is_null(1), "the chi-squared has no denominator df");
        assert_eq!(number("p_value").value(1), 1.0e-4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
