//! Excel and OpenDocument workbooks (`.xlsx`, `.xlsm`, `.xls`, `.ods`), read with `calamine`:
//! one sheet, its first used row the header, every row below it a data row, down to the last
//! row holding a value (`docs/data-formats.md`). Cells go into the same column builders as CSV
//! cells, numbers as numbers and text as text, so the same survey as a CSV file and as a
//! workbook loads to the same frame.

use std::collections::HashMap;
use std::path::Path;

use calamine::{Data, Dimensions, Range, Reader, Sheets, open_workbook_auto};

use super::builder::{CellProblem, CellProblems};
use super::read::{Slot, finish_slots, plan_slots};
use super::{ColumnPlan, IngestError, RawTable, SheetPlace};
use crate::frame::format_number;

/// A cell as Excel names it: `Sheet1!C5` (row and column 0-based, as calamine counts them).
pub(crate) fn cell_name(sheet: &str, row: u32, column: u32) -> String {
    cell_name_at(sheet, u64::from(row), column)
}

/// [`cell_name`] for a row counted past the data (a data row number plus the header's row).
pub(crate) fn cell_name_at(sheet: &str, row: u64, column: u32) -> String {
    format!(
        "{}!{}{}",
        sheet_reference(sheet),
        column_letters(column),
        row + 1
    )
}

/// A sheet as Excel writes it before `!`: quoted when it is not a plain word.
pub(crate) fn sheet_reference(sheet: &str) -> String {
    if sheet.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
        sheet.to_string()
    } else {
        format!("'{}'", sheet.replace('\'', "''"))
    }
}

/// A 0-based column as Excel's letters: 0 → A, 26 → AA.
fn column_letters(column: u32) -> String {
    let mut letters = Vec::new();
    let mut c = u64::from(column) + 1;
    while c > 0 {
        let rem = ((c - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        c = (c - 1) / 26;
    }
    letters.into_iter().rev().collect()
}

/// A cell's value as the column builders take it.
enum Cell<'a> {
    Blank,
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
    /// An error value (`#N/A`, `#DIV/0!`): a cell problem naming the cell.
    Error(String),
}

fn cell(data: &Data) -> Cell<'_> {
    match data {
        Data::Empty => Cell::Blank,
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(x) => Cell::Number(*x),
        Data::Bool(b) => Cell::Number(if *b { 1.0 } else { 0.0 }),
        Data::String(s) => Cell::Text(s.as_str().into()),
        Data::DateTimeIso(s) => Cell::Text(trim_midnight(s).into()),
        Data::DurationIso(s) => Cell::Text(s.as_str().into()),
        Data::DateTime(dt) if dt.is_datetime() => Cell::Text(iso_datetime(dt).into()),
        // A duration (`[h]:mm:ss`) is its length in days, as Excel stores it.
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

/// `2026-03-04`, or `2026-03-04T10:30:00` when the cell holds a time of day.
fn iso_datetime(dt: &calamine::ExcelDateTime) -> String {
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    match (h, mi, s, ms) {
        (0, 0, 0, 0) => format!("{y:04}-{mo:02}-{d:02}"),
        (_, _, _, 0) => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        _ => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}"),
    }
}

/// An OpenDocument date cell is written `2026-03-04T00:00:00` even when it holds a date only.
fn trim_midnight(s: &str) -> &str {
    s.strip_suffix("T00:00:00").unwrap_or(s)
}

/// Read one sheet of a workbook: `sheet`, else the first.
pub(crate) fn read_workbook(
    path: &Path,
    sheet: Option<&str>,
    plan: &dyn Fn(&str) -> ColumnPlan,
    na: &[String],
) -> Result<RawTable, IngestError> {
    let malformed = |e: &dyn std::fmt::Display| IngestError::Malformed {
        path: path.to_path_buf(),
        format: "Excel or OpenDocument workbook",
        message: e.to_string(),
    };
    let mut workbook = open_workbook_auto(path).map_err(|e| malformed(&e))?;
    let sheets = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.as_str() == wanted)
            .cloned()
            .ok_or_else(|| IngestError::SheetNotFound {
                path: path.to_path_buf(),
                sheet: wanted.to_string(),
                sheets: sheets.join(", "),
            })?,
        None => sheets.first().cloned().ok_or_else(|| IngestError::Empty {
            path: path.to_path_buf(),
            message: "the workbook has no sheets".into(),
        })?,
    };
    let range = workbook.worksheet_range(&name).map_err(|e| malformed(&e))?;
    // OpenDocument merged cells are not exposed by calamine: there a merged header shows as its
    // first cell followed by empty ones, which the empty-header check names.
    let merged = match &mut workbook {
        Sheets::Xlsx(x) => x
            .merge_cells_by_sheet_name(&name)
            .map_err(|e| malformed(&e))?,
        Sheets::Xls(x) => x
            .merge_cells_by_sheet_name(&name)
            .map_err(|e| malformed(&e))?,
        Sheets::Xlsb(_) | Sheets::Ods(_) => Vec::new(),
    };
    read_range(path, &name, &range, &merged, plan, na)
}

fn read_range(
    path: &Path,
    sheet: &str,
    range: &Range<Data>,
    merged: &[Dimensions],
    plan: &dyn Fn(&str) -> ColumnPlan,
    na: &[String],
) -> Result<RawTable, IngestError> {
    let empty = |message: &str| IngestError::Empty {
        path: path.to_path_buf(),
        message: format!(
            "sheet {sheet}: {message}; if the data are on another sheet, name it in [data] sheet"
        ),
    };
    let Some((top, left)) = range.start() else {
        return Err(empty("the sheet is empty"));
    };
    // The used range can run past the data (cells styled but empty): the data ends at the last
    // row and column holding a value.
    let mut last_row = None;
    let mut width = 0;
    for (r, row) in range.rows().enumerate() {
        if let Some(c) = row.iter().rposition(|d| !matches!(d, Data::Empty)) {
            last_row = Some(r);
            width = width.max(c + 1);
        }
    }
    let Some(last_row) = last_row else {
        return Err(empty("the sheet is empty"));
    };
    let mut rows = range.rows().take(last_row + 1);
    let header_cells = rows.next().map(|r| &r[..width]).unwrap_or_default();
    let name_of = |c: usize| cell_name(sheet, top, left + c as u32);
    let header_error = |c: usize, message: String| IngestError::HeaderCell {
        path: path.to_path_buf(),
        cell: name_of(c),
        message,
    };
    // A merged header cell names one column and leaves the others of its span nameless.
    let header_columns = left..left + width as u32;
    if let Some(m) = merged.iter().find(|m| {
        m.start.0 <= top
            && top <= m.end.0
            && m.start.1 < header_columns.end
            && header_columns.start <= m.end.1
    }) {
        return Err(IngestError::HeaderCell {
            path: path.to_path_buf(),
            cell: format!(
                "{}:{}{}",
                cell_name(sheet, m.start.0, m.start.1),
                column_letters(m.end.1),
                u64::from(m.end.0) + 1
            ),
            message: "is a merged cell; unmerge it and give each column its own name in the \
                      first row"
                .into(),
        });
    }
    let mut header = Vec::with_capacity(width);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (c, d) in header_cells.iter().enumerate() {
        let name = match cell(d) {
            Cell::Text(s) => s.trim().to_string(),
            Cell::Number(x) => format_number(x),
            Cell::Blank => String::new(),
            Cell::Error(e) => {
                return Err(header_error(
                    c,
                    format!("holds the error {e}; put the column's name there"),
                ));
            }
        };
        if name.is_empty() {
            return Err(header_error(
                c,
                "is empty, but the column has values below it; put the column's name there \
                 (or delete the column)"
                    .into(),
            ));
        }
        if let Some(&first) = seen.get(&name) {
            return Err(header_error(
                c,
                format!(
                    "repeats the column name {name} of {}; rename one of the two columns",
                    name_of(first)
                ),
            ));
        }
        seen.insert(name.clone(), c);
        header.push(name);
    }
    let (slot_of, mut slots, ignored) = plan_slots(&header, plan);
    let mut cell_problems = CellProblems::default();
    let mut n_rows = 0usize;
    for row in rows {
        let r = n_rows;
        n_rows += 1;
        for (c, d) in row[..width].iter().enumerate() {
            let Some(k) = slot_of[c] else { continue };
            match (&mut slots[k], cell(d)) {
                (Slot::Typed(b), Cell::Blank) => b.push_null(),
                (Slot::Typed(b), Cell::Number(x)) => {
                    if let Some(p) = b.push_num(x) {
                        cell_problems.push(r, &b.name, &format_number(x), p);
                    }
                }
                (Slot::Typed(b), Cell::Text(s)) => {
                    if let Some(p) = b.push_str(&s) {
                        cell_problems.push(r, &b.name, &s, p);
                    }
                }
                (Slot::Typed(b), Cell::Error(e)) => {
                    b.push_invalid();
                    let problem = CellProblem::ErrorCell {
                        cell: cell_name(sheet, top + 1 + r as u32, left + c as u32).into(),
                    };
                    cell_problems.push(r, &b.name, &e, problem);
                }
                (Slot::Auto(a), Cell::Blank) => a.push(None),
                (Slot::Auto(a), Cell::Number(x)) => a.push(Some(&format_number(x))),
                (Slot::Auto(a), Cell::Text(s)) => a.push(Some(&s)),
                // Columns the questionnaire does not declare (design columns) are checked
                // later as text: the error value is not a number, a weight or an id.
                (Slot::Auto(a), Cell::Error(e)) => a.push(Some(&e)),
            }
        }
    }
    if n_rows == 0 {
        return Err(empty("the sheet has a header but no data rows"));
    }
    Ok(RawTable {
        builders: finish_slots(slots, na, false),
        n_rows,
        cell_problems,
        row_problems: Vec::new(),
        sha256: String::new(),
        ignored,
        sheet: Some(SheetPlace {
            sheet: sheet.to_string(),
            header_row: top,
            columns: header
                .iter()
                .enumerate()
                .map(|(c, name)| (name.clone(), left + c as u32))
                .collect(),
        }),
        header,
        file_findings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_named_as_excel_shows_them() {
        assert_eq!(cell_name("Sheet1", 0, 2), "Sheet1!C1");
        assert_eq!(cell_name("Sheet1", 4, 25), "Sheet1!Z5");
        assert_eq!(cell_name("Sheet1", 0, 26), "Sheet1!AA1");
        assert_eq!(cell_name("Sheet1", 0, 701), "Sheet1!ZZ1");
        assert_eq!(cell_name("Sheet1", 0, 702), "Sheet1!AAA1");
        assert_eq!(cell_name("my data", 1, 0), "'my data'!A2");
    }

    #[test]
    fn a_finding_names_its_cell_below_a_header_that_starts_lower() {
        // The header on Excel row 3 from column B: data row 1 is row 4, `age` is column C.
        let place = SheetPlace {
            sheet: "it's data".into(),
            header_row: 2,
            columns: [("id".to_string(), 1), ("age".to_string(), 2)].into(),
        };
        assert_eq!(place.cell(1, "age"), "'it''s data'!C4");
        assert_eq!(place.cell(10, "id"), "'it''s data'!B13");
        // A row-level finding (no column) names the whole row.
        assert_eq!(place.cell(10, ""), "'it''s data'!13:13");
    }

    #[test]
    fn dates_are_iso_text() {
        use calamine::{ExcelDateTime, ExcelDateTimeType};
        let date = ExcelDateTime::new(46085.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(iso_datetime(&date), "2026-03-04");
        let time = ExcelDateTime::new(46085.4375, ExcelDateTimeType::DateTime, false);
        assert_eq!(iso_datetime(&time), "2026-03-04T10:30:00");
        assert_eq!(trim_midnight("2026-03-04T00:00:00"), "2026-03-04");
    }
}
