//! `tables.xlsx`: a cover sheet (source, reference period, design, weighting, variance, interval
//! and reliability methods) and one sheet per indicator: rows are domains with their code labels,
//! columns estimate, confidence interval, SE, CV, unweighted n and flag; flagged rows are
//! shaded and explained in numbered footnotes under the table.
//!
//! The workbook is first built as a plain cell model ([`workbook_model`]) that tests snapshot as
//! text ([`model_text`]), then rendered with `rust_xlsxwriter`. The file is reproducible: the
//! document creation time is `SOURCE_DATE_EPOCH`, or 1980-01-01 when it is unset.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_xlsxwriter::{
    Color, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook,
};

use super::context::{PublicationContext, source_date_epoch};
use super::present::{
    ci_method_name, display_scale, domain_labels, number, table_rows, variance_name,
};
use super::settings::PublicationConfig;
use super::spreadsheet_safe;
use crate::estimate::{ContrastRow, EstimateRow, Flag, TOTAL};
use crate::questionnaire::{Indicator, IndicatorKind};

/// A cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    /// Text (already spreadsheet-safe).
    Text(String),
    /// Number.
    Number(f64),
}

/// How a cell looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    /// Sheet title.
    Title,
    /// Small explanatory text.
    Note,
    /// Table column header.
    Header,
    /// Label in the first column (cover) or a domain-variable heading.
    Label,
    /// Plain text.
    Text,
    /// Number with one decimal.
    Dec1,
    /// Number with two decimals.
    Dec2,
    /// Number with three decimals.
    Dec3,
    /// Whole number with thousands separator.
    Int,
    /// "suppressed" / "n/a" placeholder in a number column.
    Missing,
}

/// Row shading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fill {
    /// None.
    None,
    /// Use with caution.
    Caution,
    /// Suppressed.
    Suppressed,
}

/// One cell of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Row (0-based).
    pub row: u32,
    /// Column (0-based).
    pub col: u16,
    /// Value.
    pub value: CellValue,
    /// Style.
    pub style: Style,
    /// Shading.
    pub fill: Fill,
}

/// One worksheet of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// Worksheet name (≤ 31 characters, unique).
    pub name: String,
    /// Column widths in characters.
    pub widths: Vec<f64>,
    /// First row below the frozen header, if any.
    pub freeze_below: Option<u32>,
    /// Cells, in writing order.
    pub cells: Vec<Cell>,
}

struct SheetBuilder {
    sheet: Sheet,
    row: u32,
}

impl SheetBuilder {
    fn new(name: String, widths: Vec<f64>) -> SheetBuilder {
        SheetBuilder {
            sheet: Sheet {
                name,
                widths,
                freeze_below: None,
                cells: Vec::new(),
            },
            row: 0,
        }
    }
    fn put(&mut self, col: u16, value: CellValue, style: Style, fill: Fill) {
        self.sheet.cells.push(Cell {
            row: self.row,
            col,
            value,
            style,
            fill,
        });
    }
    fn text(&mut self, col: u16, text: &str, style: Style) {
        self.put(
            col,
            CellValue::Text(spreadsheet_safe(text).into_owned()),
            style,
            Fill::None,
        );
    }
    fn line(&mut self, text: &str, style: Style) {
        self.text(0, text, style);
        self.row += 1;
    }
    fn pair(&mut self, label: &str, value: &str) {
        self.text(0, label, Style::Label);
        self.text(1, value, Style::Text);
        self.row += 1;
    }
}

/// A valid, unique worksheet name from an indicator id.
fn sheet_name(id: &str, taken: &mut Vec<String>) -> String {
    let clean: String = id
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let clean = clean.trim_matches('\'').to_string();
    let mut base: String = clean.chars().take(31).collect();
    if base.is_empty() {
        base = "indicator".into();
    }
    let mut name = base.clone();
    let mut k = 2;
    while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) || name.eq_ignore_ascii_case("Cover")
    {
        let suffix = format!("~{k}");
        name = format!(
            "{}{suffix}",
            base.chars().take(31 - suffix.len()).collect::<String>()
        );
        k += 1;
    }
    taken.push(name.clone());
    name
}

/// The number style of an indicator's estimates: one decimal for percentages, whole numbers
/// for totals, two decimals otherwise.
fn number_style(ind: Option<&Indicator>) -> Style {
    match ind.map(|i| i.kind) {
        Some(IndicatorKind::Proportion | IndicatorKind::Distribution) => Style::Dec1,
        Some(IndicatorKind::Total) => Style::Int,
        _ => Style::Dec2,
    }
}

fn fmt_level(level: f64) -> String {
    number(level * 100.0)
}

fn cover(rows: &[EstimateRow], ctx: &PublicationContext<'_>, cfg: &PublicationConfig) -> Sheet {
    let q = ctx.questionnaire;
    let mut b = SheetBuilder::new("Cover".into(), vec![28.0, 110.0]);
    b.line(ctx.display_title(), Style::Title);
    b.line(
        "Estimates only: no microdata. Flagged cells are shaded and explained under each table.",
        Style::Note,
    );
    b.row += 1;
    b.pair(
        "Questionnaire",
        &format!("{} ({} {})", q.title, q.id, q.version),
    );
    b.pair("Reference period", &ctx.reference_period);
    b.pair("Data file", &ctx.data_file);
    b.pair("Data file SHA-256", &ctx.data_sha256);
    b.pair(
        "Rows",
        &format!(
            "{} read, {} used, {} quarantined; {} respondents",
            ctx.rows_read, ctx.rows_used, ctx.rows_quarantined, ctx.respondents
        ),
    );
    b.pair("Produced by", &format!("cvsurvey {}", ctx.tool_version));
    b.row += 1;
    let d = &ctx.design;
    b.pair("Sampling design", &d.describe());
    for s in &ctx.schemes {
        let mut text = match &s.nonresponse_classes {
            Some(c) => format!("nonresponse adjustment within classes of {}", c.join(" × ")),
            None => "design weights".into(),
        };
        if let Some(c) = &s.calibration {
            let _ = write!(
                text,
                "; calibration ({}): {} iterations, max margin error {:.2e}{}",
                c.method,
                c.iterations,
                c.max_margin_error,
                if c.converged { "" } else { ", NOT converged" }
            );
        }
        let _ = write!(
            text,
            "; {} respondents, weights {:.2} to {:.2}, design effect due to weighting (1 + CV²) {:.3}",
            s.weights.n, s.weights.min, s.weights.max, s.weights.kish_deff
        );
        b.pair(&format!("Weighting \"{}\"", s.name), &text);
    }
    b.pair(
        "Variance estimation",
        &ctx.variance_methods
            .iter()
            .map(|v| variance_name(v))
            .collect::<Vec<_>>()
            .join(", "),
    );
    b.pair(
        "Confidence intervals",
        &format!(
            "{}% level; proportions: {} (tables show the first); means, ratios, totals: Wald with the t quantile on the design df; domain df: {}",
            fmt_level(ctx.ci_level),
            ctx.ci_methods
                .iter()
                .map(|m| ci_method_name(m))
                .collect::<Vec<_>>()
                .join(", "),
            ctx.domain_df
        ),
    );
    b.pair("Reliability standard", cfg.reliability.preset.description());
    b.pair(
        "Suppression",
        if cfg.reliability.suppress {
            "cells flagged \"suppressed\" show no estimate, SE, CV or interval"
        } else {
            "values of cells flagged \"suppressed\" are kept (suppress = false): not for publication"
        },
    );
    b.row += 1;
    b.line("Indicators", Style::Header);
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        if seen.insert(r.indicator.as_str()) {
            let label = q
                .indicator(&r.indicator)
                .map_or(r.indicator.clone(), |i| i.label.clone());
            b.pair(&r.indicator, &label);
        }
    }
    b.sheet
}

fn indicator_sheet(
    name: String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) -> Sheet {
    let q = ctx.questionnaire;
    let ind = q.indicator(id);
    let (factor, unit) = display_scale(ind);
    let num_style = number_style(ind);
    let mut b = SheetBuilder::new(name, vec![34.0, 12.0, 12.0, 12.0, 11.0, 9.0, 12.0, 16.0]);
    b.line(ind.map_or(id, |i| i.label.as_str()), Style::Title);
    let mut about = format!("Indicator {id}");
    if !unit.is_empty() {
        let _ = write!(
            about,
            "; unit: {}",
            if unit == "%" { "percent" } else { &unit }
        );
    }
    if let Some(s) = ind.and_then(|i| i.sdg_series.as_deref()) {
        let _ = write!(about, "; SDG series {s}");
    }
    let _ = write!(about, "; reference period {}", ctx.reference_period);
    b.line(&about, Style::Note);
    let mut footnotes: BTreeMap<String, usize> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let level = fmt_level(ctx.ci_level);
    let mut weighting: Option<&str> = None;
    let mut domain_var: Option<&str> = None;
    for r in cells {
        if weighting != Some(r.weighting.as_str()) {
            weighting = Some(&r.weighting);
            domain_var = None;
            b.row += 1;
            b.line(
                &format!(
                    "Weighting: {}; {}; interval: {}",
                    r.weighting,
                    variance_name(r.variance.as_str()),
                    ci_method_name(r.ci_method.as_str())
                ),
                Style::Note,
            );
            let est = if unit.is_empty() {
                "Estimate".to_string()
            } else {
                format!("Estimate ({unit})")
            };
            let headers = [
                "Domain".to_string(),
                est,
                format!("{level}% CI lower"),
                format!("{level}% CI upper"),
                "SE".into(),
                "CV (%)".into(),
                "Unweighted n".into(),
                "Flag".into(),
            ];
            for (c, h) in headers.iter().enumerate() {
                b.text(c as u16, h, Style::Header);
            }
            b.row += 1;
            if b.sheet.freeze_below.is_none() {
                b.sheet.freeze_below = Some(b.row);
            }
        }
        if domain_var != Some(r.domain_var.as_str()) {
            domain_var = Some(&r.domain_var);
            if r.domain_var != TOTAL {
                let (label, _) = domain_labels(q, &r.domain_var, &r.domain_value);
                b.line(&label, Style::Label);
            }
        }
        let fill = match r.flag {
            Flag::Suppressed => Fill::Suppressed,
            Flag::Caution => Fill::Caution,
            Flag::Reliable => Fill::None,
        };
        let (_, value_label) = domain_labels(q, &r.domain_var, &r.domain_value);
        // The label is made safe before it is indented: "  =..." would slip past the check.
        let shown = if r.domain_var == TOTAL {
            "Total".to_string()
        } else {
            format!("  {}", spreadsheet_safe(&value_label))
        };
        b.put(0, CellValue::Text(shown), Style::Text, fill);
        let number = |b: &mut SheetBuilder, col: u16, x: Option<f64>, style: Style| match x {
            Some(v) => b.put(col, CellValue::Number(v), style, fill),
            None => b.put(
                col,
                CellValue::Text(if fill == Fill::Suppressed {
                    "x".into()
                } else {
                    "..".into()
                }),
                Style::Missing,
                fill,
            ),
        };
        let se_style = match num_style {
            Style::Dec1 => Style::Dec2,
            Style::Int => Style::Int,
            _ => Style::Dec3,
        };
        number(&mut b, 1, r.estimate.map(|v| v * factor), num_style);
        number(&mut b, 2, r.ci_low.map(|v| v * factor), num_style);
        number(&mut b, 3, r.ci_high.map(|v| v * factor), num_style);
        number(&mut b, 4, r.se.map(|v| v * factor), se_style);
        number(&mut b, 5, r.cv.map(|v| v * 100.0), Style::Dec1);
        b.put(
            6,
            CellValue::Number(r.n_unweighted as f64),
            Style::Int,
            fill,
        );
        if r.flag != Flag::Reliable {
            let next = footnotes.len() + 1;
            let k = *footnotes.entry(r.flag_reason.clone()).or_insert_with(|| {
                order.push(r.flag_reason.clone());
                next
            });
            b.put(
                7,
                CellValue::Text(format!("{} ({k})", r.flag.as_str())),
                Style::Text,
                fill,
            );
        } else {
            b.put(7, CellValue::Text(String::new()), Style::Text, fill);
        }
        b.row += 1;
    }
    b.row += 1;
    b.line(
        "x: suppressed (not reliable enough to publish); ..: not defined. Shaded rows are flagged:",
        Style::Note,
    );
    for (k, reason) in order.iter().enumerate() {
        b.line(&format!("({}) {reason}", k + 1), Style::Note);
    }
    if order.is_empty() {
        b.line("(no flagged cells)", Style::Note);
    }
    b.sheet
}

/// The workbook as a cell model: the cover, then one sheet per indicator (in estimate order).
pub fn workbook_model(
    rows: &[EstimateRow],
    ctx: &PublicationContext<'_>,
    cfg: &PublicationConfig,
) -> Vec<Sheet> {
    let mut sheets = vec![cover(rows, ctx, cfg)];
    let shown = table_rows(rows);
    let mut taken = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for r in &shown {
        if !ids.contains(&r.indicator.as_str()) {
            ids.push(&r.indicator);
        }
    }
    for id in ids {
        let cells: Vec<&EstimateRow> = shown
            .iter()
            .copied()
            .filter(|r| r.indicator == id)
            .collect();
        let name = sheet_name(id, &mut taken);
        sheets.push(indicator_sheet(name, id, &cells, ctx));
    }
    if !ctx.contrasts.is_empty() {
        let name = sheet_name("Changes", &mut taken);
        sheets.push(changes_sheet(name, ctx.contrasts, ctx));
    }
    sheets
}

/// "Changes and differences": every contrast row (all schemes and variance methods), in the
/// indicator's display unit (percentage points for proportions).
fn changes_sheet(name: String, rows: &[ContrastRow], ctx: &PublicationContext<'_>) -> Sheet {
    let q = ctx.questionnaire;
    let mut b = SheetBuilder::new(
        name,
        vec![
            16.0, 34.0, 12.0, 10.0, 24.0, 12.0, 12.0, 12.0, 11.0, 9.0, 9.0, 11.0, 11.0,
        ],
    );
    b.line("Changes and differences", Style::Title);
    b.line(
        "Estimate in the first group minus the estimate in the second; the standard error includes their covariance; interval and p-value use t on the design df.",
        Style::Note,
    );
    b.row += 1;
    let level = fmt_level(ctx.ci_level);
    let headers = [
        "Contrast".to_string(),
        "Indicator".into(),
        "Weighting".into(),
        "Variance".into(),
        "Within".into(),
        "Difference".into(),
        format!("{level}% CI lower"),
        format!("{level}% CI upper"),
        "SE".into(),
        "df".into(),
        "p-value".into(),
        "n (first)".into(),
        "n (second)".into(),
    ];
    for (c, h) in headers.iter().enumerate() {
        b.text(c as u16, h, Style::Header);
    }
    b.row += 1;
    b.sheet.freeze_below = Some(b.row);
    for r in rows {
        let ind = q.indicator(&r.indicator);
        let (factor, unit) = display_scale(ind);
        let num_style = number_style(ind);
        let within = if r.within_var == TOTAL {
            "Total".to_string()
        } else {
            let (label, value) = domain_labels(q, &r.within_var, &r.within_value);
            format!("{label}: {value}")
        };
        let shown_unit = if unit == "%" { "pp".to_string() } else { unit };
        let label = ind.map_or(r.indicator.clone(), |i| i.label.clone());
        b.text(0, &r.contrast, Style::Text);
        b.text(
            1,
            &if shown_unit.is_empty() {
                label
            } else {
                format!("{label} ({shown_unit})")
            },
            Style::Text,
        );
        b.text(2, &r.weighting, Style::Text);
        b.text(3, &variance_name(r.variance.as_str()), Style::Text);
        b.text(4, &within, Style::Text);
        let number = |b: &mut SheetBuilder, col: u16, x: Option<f64>, style: Style| match x {
            Some(v) => b.put(col, CellValue::Number(v), style, Fill::None),
            None => b.put(
                col,
                CellValue::Text("..".into()),
                Style::Missing,
                Fill::None,
            ),
        };
        let se_style = match num_style {
            Style::Dec1 => Style::Dec2,
            Style::Int => Style::Int,
            _ => Style::Dec3,
        };
        number(&mut b, 5, r.estimate.map(|v| v * factor), num_style);
        number(&mut b, 6, r.ci_low.map(|v| v * factor), num_style);
        number(&mut b, 7, r.ci_high.map(|v| v * factor), num_style);
        number(&mut b, 8, r.se.map(|v| v * factor), se_style);
        number(&mut b, 9, r.df, Style::Dec1);
        number(&mut b, 10, r.p_value, Style::Dec3);
        number(&mut b, 11, Some(r.n_unweighted_first as f64), Style::Int);
        number(&mut b, 12, Some(r.n_unweighted_second as f64), Style::Int);
        b.row += 1;
    }
    b.sheet
}

/// The model as text, one cell per line (`sheet!A1 [style] value`), for snapshot tests.
pub fn model_text(sheets: &[Sheet]) -> String {
    let mut s = String::new();
    for sheet in sheets {
        let _ = writeln!(s, "== {} (widths {:?})", sheet.name, sheet.widths);
        for c in &sheet.cells {
            let col = (b'A' + c.col as u8) as char;
            let value = match &c.value {
                CellValue::Text(t) if t.is_empty() => continue,
                CellValue::Text(t) => t.clone(),
                CellValue::Number(x) => number(*x),
            };
            let fill = match c.fill {
                Fill::None => "",
                Fill::Caution => " caution",
                Fill::Suppressed => " suppressed",
            };
            let _ = writeln!(s, "{col}{} [{:?}{fill}] {value}", c.row + 1, c.style);
        }
    }
    s
}

fn format_for(style: Style, fill: Fill) -> Format {
    let base = Format::new().set_font_name("Calibri").set_font_size(10);
    let f = match style {
        Style::Title => base.set_bold().set_font_size(14),
        Style::Note => base.set_italic().set_font_color(Color::RGB(0x44_4444)),
        Style::Header => base
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center)
            .set_background_color(Color::RGB(0xDD_E6_F0))
            .set_border_bottom(FormatBorder::Thin),
        Style::Label => base.set_bold(),
        Style::Text => base,
        Style::Dec1 => base.set_num_format("0.0"),
        Style::Dec2 => base.set_num_format("0.00"),
        Style::Dec3 => base.set_num_format("0.000"),
        Style::Int => base.set_num_format("#,##0"),
        Style::Missing => base
            .set_align(FormatAlign::Right)
            .set_font_color(Color::RGB(0x80_8080)),
    };
    match fill {
        Fill::None => f,
        Fill::Caution => f.set_background_color(Color::RGB(0xFF_F2_CC)),
        Fill::Suppressed => f.set_background_color(Color::RGB(0xE7_E6_E6)),
    }
}

/// Render a cell model to xlsx bytes.
pub fn render(sheets: &[Sheet]) -> Result<Vec<u8>, String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut wb = Workbook::new();
    let created = match source_date_epoch() {
        Some(secs) => ExcelDateTime::from_timestamp(secs).map_err(e)?,
        None => ExcelDateTime::from_ymd(1980, 1, 1).map_err(e)?,
    };
    wb.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_author("cvsurvey"),
    );
    let mut formats: BTreeMap<(Style, Fill), Format> = BTreeMap::new();
    for sheet in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(&sheet.name).map_err(e)?;
        for (c, w) in sheet.widths.iter().enumerate() {
            ws.set_column_width(c as u16, *w).map_err(e)?;
        }
        if let Some(r) = sheet.freeze_below {
            ws.set_freeze_panes(r, 0).map_err(e)?;
        }
        for cell in &sheet.cells {
            let format = formats
                .entry((cell.style, cell.fill))
                .or_insert_with(|| format_for(cell.style, cell.fill));
            match &cell.value {
                CellValue::Text(t) => {
                    ws.write_string_with_format(cell.row, cell.col, t, format)
                        .map_err(e)?;
                }
                CellValue::Number(x) => {
                    ws.write_number_with_format(cell.row, cell.col, *x, format)
                        .map_err(e)?;
                }
            }
        }
    }
    wb.save_to_buffer().map_err(e)
}

/// `tables.xlsx` as bytes.
pub fn workbook_bytes(
    rows: &[EstimateRow],
    ctx: &PublicationContext<'_>,
    cfg: &PublicationConfig,
) -> Result<Vec<u8>, String> {
    render(&workbook_model(rows, ctx, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_valid_and_unique() {
        let mut taken = Vec::new();
        assert_eq!(sheet_name("a/b:c", &mut taken), "a_b_c");
        let long = "x".repeat(40);
        assert_eq!(sheet_name(&long, &mut taken).len(), 31);
        let second = sheet_name(&long, &mut taken);
        assert_eq!(second.chars().count(), 31);
        assert!(second.ends_with("~2"));
        assert_eq!(sheet_name("cover", &mut taken), "cover~2");
    }
}
