//! `contrasts.parquet` and `contrasts.csv`: one row per contrast × indicator × weighting ×
//! variance method × level (the whole population `_T`, then each level of each `within`
//! variable). Columns are the output contract of `docs/contrasts.md`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::{OutputError, StagedFiles, write_batch};
use crate::estimate::ContrastRow;

/// Columns of `contrasts.parquet` and `contrasts.csv`, in order.
pub const COLUMNS: [&str; 14] = [
    "contrast",
    "indicator",
    "weighting",
    "variance",
    "within_var",
    "within_value",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "p_value",
    "n_unweighted_first",
    "n_unweighted_second",
];

const TEXT: usize = 6;
const NUMBERS: usize = 6;

fn schema() -> Schema {
    let mut fields: Vec<Field> = COLUMNS[..TEXT]
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, false))
        .collect();
    fields.extend(
        COLUMNS[TEXT..TEXT + NUMBERS]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    fields.extend(
        COLUMNS[TEXT + NUMBERS..]
            .iter()
            .map(|n| Field::new(*n, DataType::Int64, false)),
    );
    Schema::new(fields)
}

fn text(r: &ContrastRow) -> [&str; TEXT] {
    [
        &r.contrast,
        &r.indicator,
        &r.weighting,
        r.variance.as_str(),
        &r.within_var,
        &r.within_value,
    ]
}

fn numbers(r: &ContrastRow) -> [Option<f64>; NUMBERS] {
    [r.estimate, r.se, r.ci_low, r.ci_high, r.df, r.p_value]
}

/// Write `contrasts.parquet` with the run's key-value `metadata`.
pub fn write_parquet(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[ContrastRow],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
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
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.n_unweighted_first),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.n_unweighted_second),
    )));
    let batch =
        RecordBatch::try_new(Arc::new(schema()), columns).map_err(|e| OutputError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_batch(staged, path, &batch, metadata)
}

/// Write `contrasts.csv`.
pub fn write_csv(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[ContrastRow],
) -> Result<(), OutputError> {
    super::stage_csv(staged, path, csv_bytes(rows))
}

/// `contrasts.csv`: the Parquet columns, numbers as `csv_number` writes them, text spreadsheet-safe.
fn csv_bytes(rows: &[ContrastRow]) -> Result<Vec<u8>, csv::Error> {
    super::csv_table(&COLUMNS, rows, |r| {
        (
            text(r).to_vec(),
            numbers(r).to_vec(),
            vec![r.n_unweighted_first, r.n_unweighted_second],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::VarianceMethod;

    fn row(estimate: Option<f64>) -> ContrastRow {
        ContrastRow {
            contrast: "=change".into(),
            indicator: "bribery".into(),
            weighting: "raked".into(),
            variance: VarianceMethod::Taylor,
            within_var: "_T".into(),
            within_value: "_T".into(),
            estimate,
            se: Some(0.5),
            ci_low: None,
            ci_high: None,
            df: Some(40.0),
            p_value: Some(0.25),
            n_unweighted_first: 10,
            n_unweighted_second: 0,
        }
    }

    #[test]
    fn csv_has_the_contract_columns_and_blank_missing_numbers() {
        let bytes = csv_bytes(&[row(Some(-1.5)), row(None)]).expect("csv");
        let text = String::from_utf8(bytes).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "contrast,indicator,weighting,variance,within_var,within_value,estimate,se,ci_low,ci_high,df,p_value,n_unweighted_first,n_unweighted_second"
            )
        );
        assert_eq!(
            lines.next(),
            Some("'=change,bribery,raked,taylor,_T,_T,-1.5,0.5,,,40,0.25,10,0")
        );
        assert_eq!(
            lines.next(),
            Some("'=change,bribery,raked,taylor,_T,_T,,0.5,,,40,0.25,10,0")
        );
    }
}
