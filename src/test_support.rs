//! Fixture loaders shared by the unit tests: CSV text into rows, and rows into a [`Frame`].

use crate::frame::{CellState, Column, ColumnData, Frame};

/// Header and rows of CSV text; empty cells and R's `NA` are `None`.
pub(crate) fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("fixture header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.expect("fixture record")
                .iter()
                .map(|c| (!c.is_empty() && c != "NA").then(|| c.to_string()))
                .collect()
        })
        .collect();
    (header, rows)
}

/// A frame from CSV text: a column is numeric when every filled cell parses as a number, text
/// otherwise; empty cells are item nonresponse.
pub(crate) fn frame(text: &str) -> Frame {
    let (header, rows) = read_csv(text);
    let mut f = Frame::new(rows.len());
    for (j, name) in header.iter().enumerate() {
        let cells: Vec<Option<String>> = rows.iter().map(|r| r.get(j).cloned().flatten()).collect();
        let state = cells
            .iter()
            .map(|c| {
                if c.is_some() {
                    CellState::Value
                } else {
                    CellState::NoResponse
                }
            })
            .collect();
        let nums: Option<Vec<f64>> = cells
            .iter()
            .map(|c| c.as_deref().map_or(Some(f64::NAN), |s| s.parse().ok()))
            .collect();
        let data = match nums {
            Some(v) => ColumnData::Num(v),
            None => {
                let mut levels: Vec<String> = Vec::new();
                let codes = cells
                    .iter()
                    .map(|c| match c {
                        None => u32::MAX,
                        Some(s) => match levels.iter().position(|l| l == s) {
                            Some(k) => k as u32,
                            None => {
                                levels.push(s.clone());
                                (levels.len() - 1) as u32
                            }
                        },
                    })
                    .collect();
                ColumnData::Text { codes, levels }
            }
        };
        f.push(Column {
            name: name.clone(),
            data,
            state,
        })
        .expect("fixture column");
    }
    f
}

/// |a − b| / |b| (0 when equal).
pub(crate) fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(1e-300)
    }
}
