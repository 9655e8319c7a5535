//! File readers: CSV (the `csv` crate, straight into typed builders) and Parquet (Arrow record
//! batches, streamed one batch at a time).

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::builder::{AutoBuilder, ColumnBuilder};
use super::{ColumnPlan, FindingKind, IngestError, RawTable, input_sha256};

enum Slot {
    Typed(ColumnBuilder),
    Auto(AutoBuilder),
}

fn check_header(path: &Path, header: &[String]) -> Result<(), IngestError> {
    let mut seen = HashSet::new();
    for h in header {
        if !seen.insert(h.as_str()) {
            return Err(IngestError::DuplicateColumn {
                path: path.to_path_buf(),
                column: h.clone(),
            });
        }
    }
    Ok(())
}

fn plan_slots(
    header: &[String],
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> (Vec<Option<usize>>, Vec<Slot>, Vec<String>) {
    let mut slot_of = Vec::with_capacity(header.len());
    let mut slots = Vec::new();
    let mut ignored = Vec::new();
    for name in header {
        match plan(name) {
            ColumnPlan::Declared(rules) => {
                slot_of.push(Some(slots.len()));
                slots.push(Slot::Typed(ColumnBuilder::new(name, rules, 0)));
            }
            ColumnPlan::Inferred => {
                slot_of.push(Some(slots.len()));
                slots.push(Slot::Auto(AutoBuilder::new(name)));
            }
            ColumnPlan::Ignore => {
                slot_of.push(None);
                ignored.push(name.clone());
            }
        }
    }
    (slot_of, slots, ignored)
}

fn finish_slots(slots: Vec<Slot>) -> Vec<ColumnBuilder> {
    slots
        .into_iter()
        .map(|s| match s {
            Slot::Typed(b) => b,
            Slot::Auto(a) => a.into_builder(),
        })
        .collect()
}

/// Read a CSV file (header row, comma separated, optional double quotes).
pub(crate) fn read_csv(
    path: &Path,
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> Result<RawTable, IngestError> {
    let io = |e: &dyn std::fmt::Display| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let sha256 = input_sha256(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| io(&e))?;
    let mut records = reader.byte_records();
    let header_record = match records.next() {
        None => {
            return Err(IngestError::Empty {
                path: path.to_path_buf(),
                message: "the file is empty; expected a header row and data rows".into(),
            });
        }
        Some(r) => r.map_err(|e| IngestError::Malformed {
            path: path.to_path_buf(),
            format: "CSV",
            message: e.to_string(),
        })?,
    };
    let header: Vec<String> = header_record
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    check_header(path, &header)?;
    let (slot_of, mut slots, ignored) = plan_slots(&header, plan);

    let mut cell_problems = Vec::new();
    let mut row_problems = Vec::new();
    let mut n_rows = 0usize;
    for record in records {
        let row = n_rows;
        n_rows += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                row_problems.push((
                    row,
                    FindingKind::MalformedRow,
                    format!("unreadable CSV record: {e}"),
                ));
                push_null_row(&mut slots);
                continue;
            }
        };
        if record.len() != header.len() {
            row_problems.push((
                row,
                FindingKind::MalformedRow,
                format!(
                    "{} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            push_null_row(&mut slots);
            continue;
        }
        let fields: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let Ok(fields) = fields else {
            row_problems.push((
                row,
                FindingKind::InvalidEncoding,
                "the row is not valid UTF-8".into(),
            ));
            push_null_row(&mut slots);
            continue;
        };
        for (field, slot) in fields.iter().zip(&slot_of) {
            let Some(i) = *slot else { continue };
            match &mut slots[i] {
                Slot::Typed(b) => {
                    if let Some(p) = b.push_str(field) {
                        cell_problems.push((row, b.name.clone(), field.trim().to_string(), p));
                    }
                }
                Slot::Auto(a) => a.push(Some(field)),
            }
        }
    }
    if n_rows == 0 {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
            message: "the file has a header but no data rows".into(),
        });
    }
    Ok(RawTable {
        builders: finish_slots(slots),
        n_rows,
        cell_problems,
        row_problems,
        sha256,
        ignored,
        header,
        file_findings: Vec::new(),
    })
}

fn push_null_row(slots: &mut [Slot]) {
    for s in slots {
        match s {
            Slot::Typed(b) => b.push_null(),
            Slot::Auto(a) => a.push(None),
        }
    }
}

/// The next record batch. The parquet crate (60) can panic on some damaged pages (a definition
/// level run longer than its page, found by fuzzing) instead of returning an error; that panic
/// is turned into an error here, the only place our code calls into its page decoding.
fn next_batch(
    reader: &mut ParquetRecordBatchReader,
) -> Result<Option<Result<RecordBatch, ArrowError>>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next())).map_err(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("damaged data page ({detail})")
    })
}

/// Read a Parquet file, streaming record batches of the needed columns only.
pub(crate) fn read_parquet(
    path: &Path,
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> Result<RawTable, IngestError> {
    let io = |e: &dyn std::fmt::Display| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let malformed = |e: &dyn std::fmt::Display| IngestError::Malformed {
        path: path.to_path_buf(),
        format: "Parquet",
        message: e.to_string(),
    };
    let sha256 = input_sha256(path)?;
    let file = File::open(path).map_err(|e| io(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| malformed(&e))?;
    let schema = builder.schema().clone();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    check_header(path, &header)?;
    let (slot_of, mut slots, ignored) = plan_slots(&header, plan);
    let wanted: Vec<usize> = slot_of
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some())
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()
        .map_err(|e| malformed(&e))?;

    let mut cell_problems = Vec::new();
    let mut n_rows = 0usize;
    let mut reader = reader;
    while let Some(batch) = next_batch(&mut reader).map_err(|m| malformed(&m))? {
        let batch = batch.map_err(|e| malformed(&e))?;
        for (k, &col_index) in wanted.iter().enumerate() {
            let Some(i) = slot_of[col_index] else {
                continue;
            };
            let array = batch.column(k);
            push_array(
                path,
                &header[col_index],
                array,
                &mut slots[i],
                n_rows,
                &mut cell_problems,
            )?;
        }
        n_rows += batch.num_rows();
    }
    if n_rows == 0 {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
            message: "the file has no data rows".into(),
        });
    }
    Ok(RawTable {
        builders: finish_slots(slots),
        n_rows,
        cell_problems,
        row_problems: Vec::new(),
        sha256,
        ignored,
        header,
        file_findings: Vec::new(),
    })
}

fn push_array(
    path: &Path,
    name: &str,
    array: &ArrayRef,
    slot: &mut Slot,
    first_row: usize,
    problems: &mut Vec<(usize, String, String, super::builder::CellProblem)>,
) -> Result<(), IngestError> {
    macro_rules! numeric {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            for r in 0..a.len() {
                let v = if a.is_null(r) {
                    None
                } else {
                    Some(a.value(r) as f64)
                };
                push_value(slot, v.map(Cell::Num), first_row + r, name, problems);
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => numeric!(Int8Type),
        DataType::Int16 => numeric!(Int16Type),
        DataType::Int32 => numeric!(Int32Type),
        DataType::Int64 => numeric!(Int64Type),
        DataType::UInt8 => numeric!(UInt8Type),
        DataType::UInt16 => numeric!(UInt16Type),
        DataType::UInt32 => numeric!(UInt32Type),
        DataType::UInt64 => numeric!(UInt64Type),
        DataType::Float32 => numeric!(Float32Type),
        DataType::Float64 => numeric!(Float64Type),
        DataType::Boolean => {
            let a = array.as_boolean();
            for r in 0..a.len() {
                let v = if a.is_null(r) {
                    None
                } else {
                    Some(if a.value(r) { 1.0 } else { 0.0 })
                };
                push_value(slot, v.map(Cell::Num), first_row + r, name, problems);
            }
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for r in 0..a.len() {
                let v = if a.is_null(r) { None } else { Some(a.value(r)) };
                push_value(slot, v.map(Cell::Str), first_row + r, name, problems);
            }
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            for r in 0..a.len() {
                let v = if a.is_null(r) { None } else { Some(a.value(r)) };
                push_value(slot, v.map(Cell::Str), first_row + r, name, problems);
            }
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            for r in 0..a.len() {
                let v = if a.is_null(r) { None } else { Some(a.value(r)) };
                push_value(slot, v.map(Cell::Str), first_row + r, name, problems);
            }
        }
        other => {
            return Err(IngestError::UnsupportedType {
                path: path.to_path_buf(),
                column: name.to_string(),
                data_type: other.to_string(),
            });
        }
    }
    Ok(())
}

enum Cell<'a> {
    Num(f64),
    Str(&'a str),
}

fn push_value(
    slot: &mut Slot,
    value: Option<Cell<'_>>,
    row: usize,
    name: &str,
    problems: &mut Vec<(usize, String, String, super::builder::CellProblem)>,
) {
    match slot {
        Slot::Typed(b) => {
            // The value is written out only for a problem: formatting every cell costs more
            // than reading it.
            match value {
                None => b.push_null(),
                Some(Cell::Num(x)) => {
                    if let Some(p) = b.push_num(x) {
                        problems.push((row, name.to_string(), crate::frame::format_number(x), p));
                    }
                }
                Some(Cell::Str(s)) => {
                    if let Some(p) = b.push_str(s) {
                        problems.push((row, name.to_string(), s.trim().to_string(), p));
                    }
                }
            }
        }
        Slot::Auto(a) => match value {
            None => a.push(None),
            Some(Cell::Num(x)) => a.push(Some(&crate::frame::format_number(x))),
            Some(Cell::Str(s)) => a.push(Some(s)),
        },
    }
}
