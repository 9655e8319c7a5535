//! `fieldwork.parquet` and `fieldwork.csv`: the AAPOR outcome rates of the whole sample (`_T`)
//! and of each `[fieldwork] by` group, unweighted and design-weighted, with the group's counts
//! per category. Columns are the output contract of `docs/fieldwork.md`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::{OutputError, StagedFiles, write_batch};
use crate::fieldwork::{Outcome, RateRow};

/// Columns of `fieldwork.parquet` and `fieldwork.csv`, in order.
pub const COLUMNS: [&str; 12] = [
    "group_var",
    "group_value",
    "weighted",
    "rate",
    "value",
    "I",
    "P",
    "R",
    "NC",
    "O",
    "U",
    "NE",
];

fn schema() -> Schema {
    let mut fields = vec![
        Field::new(COLUMNS[0], DataType::Utf8, false),
        Field::new(COLUMNS[1], DataType::Utf8, false),
        Field::new(COLUMNS[2], DataType::Boolean, false),
        Field::new(COLUMNS[3], DataType::Utf8, false),
        Field::new(COLUMNS[4], DataType::Float64, true),
    ];
    fields.extend(
        Outcome::ALL
            .iter()
            .map(|o| Field::new(o.letter(), DataType::Int64, false)),
    );
    Schema::new(fields)
}

/// Write `fieldwork.parquet` with the run's key-value `metadata`.
pub fn write_parquet(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[RateRow],
    metadata: &[(String, String)],
) -> Result<(), OutputError> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.group_var.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.group_value.as_str()),
        )),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.weighted)),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.rate))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.value))),
    ];
    for k in 0..Outcome::ALL.len() {
        columns.push(Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.counts[k] as i64),
        )));
    }
    let batch =
        RecordBatch::try_new(Arc::new(schema()), columns).map_err(|e| OutputError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_batch(staged, path, &batch, metadata)
}

/// Write `fieldwork.csv`.
pub fn write_csv(
    staged: &mut StagedFiles,
    path: &Path,
    rows: &[RateRow],
) -> Result<(), OutputError> {
    super::stage_csv(staged, path, csv_bytes(rows))
}

/// `fieldwork.csv`: the Parquet columns; `weighted` as `true`/`false`, a rate without a value
/// (zero denominator) as an empty cell.
fn csv_bytes(rows: &[RateRow]) -> Result<Vec<u8>, csv::Error> {
    super::csv_table(&COLUMNS, rows, |r| {
        (
            vec![
                r.group_var.as_str(),
                r.group_value.as_str(),
                if r.weighted { "true" } else { "false" },
                r.rate,
            ],
            vec![r.value],
            r.counts.iter().map(|&n| n as i64).collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_the_contract_columns_and_an_empty_cell_for_no_value() {
        let row = |weighted, value| RateRow {
            group_var: "_T".into(),
            group_value: "_T".into(),
            weighted,
            rate: "RR1",
            value,
            counts: [1, 2, 3, 4, 5, 6, 7],
        };
        let bytes = csv_bytes(&[row(false, Some(0.25)), row(true, None)]).expect("csv");
        let text = String::from_utf8(bytes).expect("utf8");
        assert_eq!(
            text,
            "group_var,group_value,weighted,rate,value,I,P,R,NC,O,U,NE\n\
             _T,_T,false,RR1,0.25,1,2,3,4,5,6,7\n\
             _T,_T,true,RR1,,1,2,3,4,5,6,7\n"
        );
    }
}
