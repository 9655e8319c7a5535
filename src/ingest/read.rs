//! Parquet files (Arrow record batches, every column on its own reader), and the column plan
//! every reader shares (CSV files: `csv_reader`).

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
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};

use rayon::prelude::*;

use super::builder::{AutoBuilder, CellProblem, CellProblems, ColumnBuilder};
use super::{ColumnPlan, IngestError, RawTable, input_sha256};
use crate::progress::Progress;

pub(super) enum Slot {
    Typed(Box<ColumnBuilder>),
    Auto(AutoBuilder),
}

pub(super) fn check_header(path: &Path, header: &[String]) -> Result<(), IngestError> {
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

pub(super) fn plan_slots(
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
                slots.push(Slot::Typed(Box::new(ColumnBuilder::new(name, rules, 0))));
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

/// The columns of a file, those the questionnaire does not declare typed from their cells
/// (numbers written with a decimal comma when `decimal_comma`).
pub(super) fn finish_slots(
    slots: Vec<Slot>,
    na: &[String],
    decimal_comma: bool,
) -> Vec<ColumnBuilder> {
    slots
        .into_iter()
        .map(|s| match s {
            Slot::Typed(b) => *b,
            Slot::Auto(a) => a.into_builder_with_na(na, decimal_comma),
        })
        .collect()
}

/// Run `read` while the other core hashes the file, and put the hash in the table.
pub(super) fn hashed_beside(
    path: &Path,
    read: impl FnOnce() -> Result<RawTable, IngestError> + Send,
) -> Result<RawTable, IngestError> {
    let (sha256, table) = rayon::join(|| input_sha256(path), read);
    let sha256 = sha256?;
    let mut table = table?;
    table.sha256 = sha256;
    Ok(table)
}

/// Longest line (header or data row) a CSV file may have: survey rows are a few kilobytes, and
/// a file with no line breaks (a binary file, `/dev/zero` copied to disk) would otherwise be
/// read whole into one record.
pub(super) const MAX_LINE_BYTES: u64 = 16 << 20;

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

/// Room for `capacity` rows in every typed column, after checking that `rows` rows fit in
/// memory; refused with the figures when they do not.
pub(super) fn reserve_columns(
    path: &Path,
    slots: &mut [Slot],
    rows: u64,
    capacity: usize,
) -> Result<(), IngestError> {
    let per_row: u64 = slots
        .iter()
        .map(|s| match s {
            Slot::Typed(b) => b.bytes_per_cell(),
            // Inferred columns keep their text until the end: count a short one.
            Slot::Auto(_) => 32,
        })
        .sum();
    let columns = slots.len();
    let too_large = |message: String| IngestError::TooLarge {
        path: path.to_path_buf(),
        rows,
        columns,
        message,
    };
    crate::memory::check(per_row.saturating_mul(rows)).map_err(too_large)?;
    for slot in slots {
        if let Slot::Typed(b) = slot {
            b.try_reserve(capacity)
                .map_err(|e| too_large(format!("need more memory than the system grants ({e})")))?;
        }
    }
    Ok(())
}

/// Read a Parquet file, streaming the needed columns only. The file's hash is computed alongside
/// the read, and every column is read by its own reader, in parallel (each column on its own,
/// in row order, so the result does not depend on the number of threads): Parquet stores a
/// column's pages together, so a column can be decoded and validated without the others.
pub(crate) fn read_parquet(
    path: &Path,
    plan: &(dyn Fn(&str) -> ColumnPlan + Sync),
    na: &[String],
    fingerprint: bool,
    progress: &dyn Progress,
) -> Result<RawTable, IngestError> {
    let read = || read_parquet_columns(path, plan, na, progress);
    if fingerprint {
        hashed_beside(path, read)
    } else {
        read()
    }
}

/// Cell problems of one column: (row index, value as written, problem).
type ColumnProblems = Vec<(usize, String, CellProblem)>;

/// Rows per record batch: large enough that per-batch overhead vanishes, small enough that a
/// batch of one column stays in cache while it is validated.
const PARQUET_BATCH_ROWS: usize = 65536;

fn read_parquet_columns(
    path: &Path,
    plan: &(dyn Fn(&str) -> ColumnPlan + Sync),
    na: &[String],
    progress: &dyn Progress,
) -> Result<RawTable, IngestError> {
    let io = |e: &dyn std::fmt::Display| IngestError::io(path, e);
    let malformed = |e: &dyn std::fmt::Display| IngestError::Malformed {
        path: path.to_path_buf(),
        format: "Parquet",
        message: e.to_string(),
    };
    let file = File::open(path).map_err(|e| io(&e))?;
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())
        .map_err(|e| malformed(&e))?;
    let header: Vec<String> = metadata
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    check_header(path, &header)?;
    let (slot_of, mut slots, ignored) = plan_slots(&header, plan);
    // The row count is in the footer: columns are allocated once, at their final size. A
    // damaged footer can claim any count, so the reservation is capped by what the file's
    // bytes could plausibly encode (64 rows a byte); past it, the columns simply grow.
    let file_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let claimed = u64::try_from(metadata.metadata().file_metadata().num_rows()).unwrap_or(0);
    let file_rows = usize::try_from(claimed.min(file_bytes.saturating_mul(64))).unwrap_or(0);
    // A file that declares more rows than the machine can hold is refused with the figures
    // (a legitimate 82 MB file can hold 50 million rows, 25 GB once loaded).
    reserve_columns(path, &mut slots, file_rows as u64, file_rows)?;
    // Progress counts cells: every column advances by its batches' rows.
    let n_slots = slots.len().max(1);
    progress.start(
        "ingest",
        file_rows
            .saturating_mul(n_slots)
            .try_into()
            .unwrap_or(u64::MAX),
    );
    let wanted: Vec<usize> = slot_of
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some())
        .map(|(i, _)| i)
        .collect();
    // Slots are in file order, as are the wanted columns.
    let results: Vec<Result<(usize, ColumnProblems), IngestError>> = slots
        .par_iter_mut()
        .zip(wanted.par_iter())
        .map(|(slot, &col_index)| {
            // One file handle per column: the reader seeks, and handles cloned from one file
            // would share its position.
            let file = File::open(path).map_err(|e| io(&e))?;
            let mask = ProjectionMask::roots(metadata.parquet_schema(), [col_index]);
            let mut reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
                    .with_projection(mask)
                    .with_batch_size(PARQUET_BATCH_ROWS)
                    .build()
                    .map_err(|e| malformed(&e))?;
            let name = header[col_index].as_str();
            let mut found = Vec::new();
            let mut n_rows = 0usize;
            while let Some(batch) = next_batch(&mut reader).map_err(|m| malformed(&m))? {
                let batch = batch.map_err(|e| malformed(&e))?;
                push_array(path, name, batch.column(0), slot, n_rows, &mut found)?;
                n_rows += batch.num_rows();
                progress.advance(batch.num_rows().try_into().unwrap_or(0));
            }
            Ok((n_rows, found))
        })
        .collect();
    // The first failing column in file order, whatever the thread that saw it.
    let mut n_rows = None;
    let mut problems = Vec::with_capacity(results.len());
    for (result, &col_index) in results.into_iter().zip(&wanted) {
        let (rows, found) = result?;
        match n_rows {
            None => n_rows = Some(rows),
            Some(n) if n != rows => {
                return Err(malformed(&format!(
                    "column {} has {rows} rows, the columns before it {n}",
                    header[col_index]
                )));
            }
            Some(_) => {}
        }
        problems.push(found);
    }
    let n_rows = n_rows.unwrap_or(0);
    if n_rows == 0 {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
            message: "the file has no data rows".into(),
        });
    }
    // Findings are sorted by row and column later; the order here does not matter.
    let mut cell_problems = CellProblems::default();
    for (slot, found) in slots.iter().zip(problems) {
        for (row, value, p) in found {
            cell_problems.push(row, slot_name(slot), &value, p);
        }
    }
    Ok(RawTable {
        builders: finish_slots(slots, na, false),
        n_rows,
        cell_problems,
        row_problems: Vec::new(),
        sha256: String::new(),
        ignored,
        header,
        file_findings: Vec::new(),
        sheet: None,
    })
}

fn slot_name(slot: &Slot) -> &str {
    match slot {
        Slot::Typed(b) => &b.name,
        Slot::Auto(a) => &a.name,
    }
}

fn push_array(
    path: &Path,
    name: &str,
    array: &ArrayRef,
    slot: &mut Slot,
    first_row: usize,
    problems: &mut ColumnProblems,
) -> Result<(), IngestError> {
    // Declared numeric columns: straight over the value slice and validity bitmap.
    macro_rules! numeric {
        ($t:ty, $whole:expr) => {{
            let a = array.as_primitive::<$t>();
            match slot {
                Slot::Typed(b) if b.stores_numbers() => {
                    let mut found = Vec::new();
                    match a.nulls().filter(|n| n.null_count() > 0) {
                        None => b.push_numbers(a.values(), |_| true, $whole, &mut found),
                        Some(nulls) => {
                            b.push_numbers(a.values(), |i| nulls.is_valid(i), $whole, &mut found)
                        }
                    }
                    problems.extend(
                        found
                            .into_iter()
                            .map(|(i, x, p)| (first_row + i, crate::frame::format_number(x), p)),
                    );
                }
                _ => {
                    for r in 0..a.len() {
                        let v = if a.is_null(r) {
                            None
                        } else {
                            Some(a.value(r) as f64)
                        };
                        push_value(slot, v, first_row + r, problems);
                    }
                }
            }
        }};
    }
    macro_rules! text {
        ($a:expr) => {{
            let a = $a;
            let cells = (0..a.len()).map(|r| if a.is_null(r) { None } else { Some(a.value(r)) });
            match slot {
                Slot::Typed(b) => {
                    let mut found = Vec::new();
                    b.push_texts(cells, &mut found);
                    problems.extend(
                        found
                            .into_iter()
                            .map(|(i, value, p)| (first_row + i, value, p)),
                    );
                }
                Slot::Auto(auto) => cells.for_each(|c| auto.push(c)),
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => numeric!(Int8Type, true),
        DataType::Int16 => numeric!(Int16Type, true),
        DataType::Int32 => numeric!(Int32Type, true),
        DataType::Int64 => numeric!(Int64Type, true),
        DataType::UInt8 => numeric!(UInt8Type, true),
        DataType::UInt16 => numeric!(UInt16Type, true),
        DataType::UInt32 => numeric!(UInt32Type, true),
        DataType::UInt64 => numeric!(UInt64Type, true),
        DataType::Float32 => numeric!(Float32Type, false),
        DataType::Float64 => numeric!(Float64Type, false),
        DataType::Boolean => {
            let a = array.as_boolean();
            for r in 0..a.len() {
                let v = if a.is_null(r) {
                    None
                } else {
                    Some(if a.value(r) { 1.0 } else { 0.0 })
                };
                push_value(slot, v, first_row + r, problems);
            }
        }
        DataType::Utf8 => text!(array.as_string::<i32>()),
        DataType::LargeUtf8 => text!(array.as_string::<i64>()),
        DataType::Utf8View => text!(array.as_string_view()),
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

/// One numeric cell, for the cases without a bulk path (booleans, numbers into a text column or
/// a column whose type is inferred).
fn push_value(slot: &mut Slot, value: Option<f64>, row: usize, problems: &mut ColumnProblems) {
    match slot {
        Slot::Typed(b) => match value {
            None => b.push_null(),
            // The value is written out only for a problem: formatting every cell costs more
            // than reading it.
            Some(x) => {
                if let Some(p) = b.push_num(x) {
                    problems.push((row, crate::frame::format_number(x), p));
                }
            }
        },
        Slot::Auto(a) => match value {
            None => a.push(None),
            Some(x) => a.push(Some(&crate::frame::format_number(x))),
        },
    }
}
