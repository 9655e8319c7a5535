//! `tables.xlsx`: a cover sheet (source, reference period, design, weighting, variance, interval
//! and reliability methods) and one sheet per indicator: rows are domains with their code labels,
//! columns estimate, confidence interval, SE, CV, unweighted n and flag; flagged rows are
//! shaded and explained in numbered footnotes under the table. A distribution's sheet has a row
//! per category under each domain; a quantile's sheet a row per domain with the estimate and
//! interval of each probability. `Changes` lists the contrasts and `Tests` the tests of
//! association, when the run has them.
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
    by_domain, category_columns, ci_method_name, display_scale, domain_labels, number,
    quantile_rule_name, table_rows, test_groups, variable_label, variance_name,
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
    /// Column headers from column 0, then the next row.
    fn header_row<S: AsRef<str>>(&mut self, headers: &[S]) {
        for (c, h) in headers.iter().enumerate() {
            self.text(c as u16, h.as_ref(), Style::Header);
        }
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
            Some(c) => format!(
                "nonresponse adjustment within classes of {}{}",
                c.join(" × "),
                super::context::eligibility_note(s.eligibility_adjusted)
            ),
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
    if !ctx.tests.is_empty() {
        b.row += 1;
        b.line("Tests of association (sheet Tests)", Style::Header);
        let mut seen = std::collections::HashSet::new();
        for t in ctx.tests {
            if seen.insert(t.test.as_str()) {
                b.pair(
                    &t.test,
                    &format!(
                        "{} × {}",
                        variable_label(q, &t.rows),
                        variable_label(q, &t.cols)
                    ),
                );
            }
        }
    }
    b.sheet
}

/// One line of an indicator's table: a heading (a domain variable, or a domain of a
/// distribution), or a cell with the text of its first column.
enum Line<'a> {
    Heading(String),
    Cell { label: String, row: &'a EstimateRow },
}

/// The sheet's title and the line under it: id, unit, SDG series, reference period.
fn sheet_head(b: &mut SheetBuilder, id: &str, ctx: &PublicationContext<'_>) {
    let ind = ctx.questionnaire.indicator(id);
    let (_, unit) = display_scale(ind);
    b.line(ind.map_or(id, |i| i.label.as_str()), Style::Title);
    let mut about = format!("Indicator {id}");
    if !unit.is_empty() {
        let _ = write!(
            about,
            "; unit: {}",
            if unit == "%" { "percent" } else { &unit }
        );
    }
    if let Some(s) = ind.and_then(|i| i.sdg_series.as_deref())
        && !matches!(
            ind.map(|i| i.kind),
            Some(IndicatorKind::Distribution | IndicatorKind::Quantile)
        )
    {
        let _ = write!(about, "; SDG series {s}");
    }
    let _ = write!(about, "; reference period {}", ctx.reference_period);
    b.line(&about, Style::Note);
}

/// Numbered footnotes of the flag reasons of a sheet, in the order they are met.
#[derive(Default)]
struct Footnotes {
    number: BTreeMap<String, usize>,
    order: Vec<String>,
}

impl Footnotes {
    fn of(&mut self, reason: &str) -> usize {
        let next = self.number.len() + 1;
        *self.number.entry(reason.to_string()).or_insert_with(|| {
            self.order.push(reason.to_string());
            next
        })
    }

    /// The legend of `x` and `..` and the numbered reasons, under the table.
    fn write(&self, b: &mut SheetBuilder) {
        b.row += 1;
        b.line(
            "x: suppressed (not reliable enough to publish); ..: not defined. Shaded rows are flagged:",
            Style::Note,
        );
        for (k, reason) in self.order.iter().enumerate() {
            b.line(&format!("({}) {reason}", k + 1), Style::Note);
        }
        if self.order.is_empty() {
            b.line("(no flagged cells)", Style::Note);
        }
    }
}

fn fill_of(flag: Flag) -> Fill {
    match flag {
        Flag::Suppressed => Fill::Suppressed,
        Flag::Caution => Fill::Caution,
        Flag::Reliable => Fill::None,
    }
}

/// A number cell, or `x` (suppressed) / `..` (undefined) in its place.
fn number_cell(b: &mut SheetBuilder, col: u16, x: Option<f64>, style: Style, fill: Fill) {
    match x {
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
    }
}

/// The SE's style next to an estimate's: one more decimal.
fn se_style(num_style: Style) -> Style {
    match num_style {
        Style::Dec1 => Style::Dec2,
        Style::Int => Style::Int,
        _ => Style::Dec3,
    }
}

/// An indicator's sheet: per weighting scheme a table whose first column is `first_header`
/// (domains, or a distribution's categories), with estimate, interval, SE, CV, n and flag.
fn table_sheet(
    name: String,
    id: &str,
    first_header: &str,
    blocks: &[Vec<Line<'_>>],
    ctx: &PublicationContext<'_>,
) -> Sheet {
    let ind = ctx.questionnaire.indicator(id);
    let (factor, unit) = display_scale(ind);
    let num_style = number_style(ind);
    let mut b = SheetBuilder::new(name, vec![34.0, 12.0, 12.0, 12.0, 11.0, 9.0, 12.0, 16.0]);
    sheet_head(&mut b, id, ctx);
    let mut notes = Footnotes::default();
    let level = fmt_level(ctx.ci_level);
    for lines in blocks {
        let Some(first) = lines.iter().find_map(|l| match l {
            Line::Cell { row, .. } => Some(*row),
            Line::Heading(_) => None,
        }) else {
            continue;
        };
        b.row += 1;
        b.line(
            &format!(
                "Weighting: {}; {}; interval: {}",
                first.weighting,
                variance_name(first.variance.as_str()),
                ci_method_name(first.ci_method.as_str())
            ),
            Style::Note,
        );
        let est = if unit.is_empty() {
            "Estimate".to_string()
        } else {
            format!("Estimate ({unit})")
        };
        let headers = [
            first_header.to_string(),
            est,
            format!("{level}% CI lower"),
            format!("{level}% CI upper"),
            "SE".into(),
            "CV (%)".into(),
            "Unweighted n".into(),
            "Flag".into(),
        ];
        b.header_row(&headers);
        if b.sheet.freeze_below.is_none() {
            b.sheet.freeze_below = Some(b.row);
        }
        for line in lines {
            let (label, r) = match line {
                Line::Heading(text) => {
                    b.line(text, Style::Label);
                    continue;
                }
                Line::Cell { label, row } => (label, *row),
            };
            let fill = fill_of(r.flag);
            b.put(0, CellValue::Text(label.clone()), Style::Text, fill);
            number_cell(&mut b, 1, r.estimate.map(|v| v * factor), num_style, fill);
            number_cell(&mut b, 2, r.ci_low.map(|v| v * factor), num_style, fill);
            number_cell(&mut b, 3, r.ci_high.map(|v| v * factor), num_style, fill);
            number_cell(
                &mut b,
                4,
                r.se.map(|v| v * factor),
                se_style(num_style),
                fill,
            );
            number_cell(&mut b, 5, r.cv.map(|v| v * 100.0), Style::Dec1, fill);
            b.put(
                6,
                CellValue::Number(r.n_unweighted as f64),
                Style::Int,
                fill,
            );
            let flag = if r.flag == Flag::Reliable {
                String::new()
            } else {
                format!("{} ({})", r.flag.as_str(), notes.of(&r.flag_reason))
            };
            b.put(7, CellValue::Text(flag), Style::Text, fill);
            b.row += 1;
        }
    }
    notes.write(&mut b);
    b.sheet
}

/// A label made safe before it is indented: "  =..." would slip past the check.
fn indented(label: &str) -> String {
    format!("  {}", spreadsheet_safe(label))
}

/// The cells of one indicator split into blocks of one weighting scheme, in order.
fn by_weighting<'a>(cells: &[&'a EstimateRow]) -> Vec<Vec<&'a EstimateRow>> {
    let mut blocks: Vec<Vec<&'a EstimateRow>> = Vec::new();
    for r in cells {
        match blocks.last_mut() {
            Some(block) if block[0].weighting == r.weighting => block.push(r),
            _ => blocks.push(vec![r]),
        }
    }
    blocks
}

fn indicator_sheet(
    name: String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) -> Sheet {
    let q = ctx.questionnaire;
    let blocks: Vec<Vec<Line<'_>>> = by_weighting(cells)
        .into_iter()
        .map(|block| {
            let mut lines = Vec::new();
            let mut domain_var: Option<&str> = None;
            for r in block {
                if domain_var != Some(r.domain_var.as_str()) {
                    domain_var = Some(&r.domain_var);
                    if r.domain_var != TOTAL {
                        lines.push(Line::Heading(
                            domain_labels(q, &r.domain_var, &r.domain_value).0,
                        ));
                    }
                }
                let label = if r.domain_var == TOTAL {
                    "Total".to_string()
                } else {
                    indented(&domain_labels(q, &r.domain_var, &r.domain_value).1)
                };
                lines.push(Line::Cell { label, row: r });
            }
            lines
        })
        .collect();
    table_sheet(name, id, "Domain", &blocks, ctx)
}

/// A domain's heading in the distribution and quantile sheets: `Total`, or `Sex: Female`.
fn domain_heading(ctx: &PublicationContext<'_>, var: &str, value: &str) -> String {
    if var == TOTAL {
        return "Total".into();
    }
    let (label, value) = domain_labels(ctx.questionnaire, var, value);
    format!("{label}: {value}")
}

/// A distribution's sheet: per weighting scheme, per domain a heading and a row per category.
fn distribution_sheet(
    name: String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) -> Sheet {
    let columns = category_columns(ctx.questionnaire.indicator(id), cells);
    let blocks: Vec<Vec<Line<'_>>> = by_weighting(cells)
        .into_iter()
        .map(|block| {
            let mut lines = Vec::new();
            for dom in by_domain(&block, &columns) {
                lines.push(Line::Heading(domain_heading(ctx, dom.var, dom.value)));
                for ((_, label), cell) in columns.iter().zip(&dom.cells) {
                    if let Some(r) = cell {
                        lines.push(Line::Cell {
                            label: indented(label),
                            row: r,
                        });
                    }
                }
            }
            lines
        })
        .collect();
    table_sheet(name, id, "Category", &blocks, ctx)
}

/// A quantile indicator's sheet: per weighting scheme a table of domains by probability, each
/// with its estimate and interval, then the domain's n and the flags of its cells.
fn quantile_sheet(
    name: String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) -> Sheet {
    let q = ctx.questionnaire;
    let ind = q.indicator(id);
    let (factor, unit) = display_scale(ind);
    let num_style = number_style(ind);
    let columns = category_columns(ind, cells);
    let mut widths = vec![34.0];
    widths.extend(std::iter::repeat_n(12.0, columns.len() * 3));
    widths.extend([12.0, 28.0]);
    let mut b = SheetBuilder::new(name, widths);
    sheet_head(&mut b, id, ctx);
    let level = fmt_level(ctx.ci_level);
    let n_col = 1 + 3 * columns.len() as u16;
    let mut notes = Footnotes::default();
    for block in by_weighting(cells) {
        let first = block[0];
        b.row += 1;
        let mut about = format!(
            "Weighting: {}; {}; ",
            first.weighting,
            variance_name(first.variance.as_str())
        );
        if let Some(spec) = ind.and_then(|i| i.quantile.as_ref()) {
            let _ = write!(
                about,
                "quantile rule: {}; ",
                quantile_rule_name(spec.rule.name())
            );
        }
        let _ = write!(
            about,
            "interval: {}",
            ci_method_name(first.ci_method.as_str())
        );
        b.line(&about, Style::Note);
        b.text(0, "Domain", Style::Header);
        for (k, (_, label)) in columns.iter().enumerate() {
            b.text(1 + 3 * k as u16, label, Style::Header);
        }
        b.text(n_col, "Unweighted n", Style::Header);
        b.text(n_col + 1, "Flag", Style::Header);
        b.row += 1;
        let est = if unit.is_empty() {
            "Estimate".to_string()
        } else {
            format!("Estimate ({unit})")
        };
        for k in 0..columns.len() as u16 {
            b.text(1 + 3 * k, &est, Style::Header);
            b.text(2 + 3 * k, &format!("{level}% CI lower"), Style::Header);
            b.text(3 + 3 * k, &format!("{level}% CI upper"), Style::Header);
        }
        b.row += 1;
        if b.sheet.freeze_below.is_none() {
            b.sheet.freeze_below = Some(b.row);
        }
        let mut domain_var: Option<&str> = None;
        for dom in by_domain(&block, &columns) {
            if domain_var != Some(dom.var) {
                domain_var = Some(dom.var);
                if dom.var != TOTAL {
                    b.line(&domain_labels(q, dom.var, dom.value).0, Style::Label);
                }
            }
            let worst = fill_of(
                dom.cells
                    .iter()
                    .flatten()
                    .map(|r| r.flag)
                    .max()
                    .unwrap_or(Flag::Reliable),
            );
            let label = if dom.var == TOTAL {
                "Total".to_string()
            } else {
                indented(&domain_labels(q, dom.var, dom.value).1)
            };
            b.put(0, CellValue::Text(label), Style::Text, worst);
            let mut flags: Vec<String> = Vec::new();
            for (k, ((_, name), cell)) in columns.iter().zip(&dom.cells).enumerate() {
                let col = 1 + 3 * k as u16;
                let Some(r) = cell else {
                    for c in col..col + 3 {
                        b.put(c, CellValue::Text("..".into()), Style::Missing, Fill::None);
                    }
                    continue;
                };
                let fill = fill_of(r.flag);
                number_cell(&mut b, col, r.estimate.map(|v| v * factor), num_style, fill);
                number_cell(
                    &mut b,
                    col + 1,
                    r.ci_low.map(|v| v * factor),
                    num_style,
                    fill,
                );
                number_cell(
                    &mut b,
                    col + 2,
                    r.ci_high.map(|v| v * factor),
                    num_style,
                    fill,
                );
                if r.flag != Flag::Reliable {
                    flags.push(format!(
                        "{name}: {} ({})",
                        r.flag.as_str(),
                        notes.of(&r.flag_reason)
                    ));
                }
            }
            let n = dom.cells.iter().flatten().map(|r| r.n_unweighted).max();
            match n {
                Some(n) => b.put(n_col, CellValue::Number(n as f64), Style::Int, worst),
                None => b.put(n_col, CellValue::Text("..".into()), Style::Missing, worst),
            }
            b.put(
                n_col + 1,
                CellValue::Text(spreadsheet_safe(&flags.join("; ")).into_owned()),
                Style::Text,
                worst,
            );
            b.row += 1;
        }
    }
    notes.write(&mut b);
    b.sheet
}

/// "Tests of association": a row per test × weighting × variance method with the Rao–Scott F
/// (ndf, ddf, p-value) and the chi-squared (df, p-value).
fn tests_sheet(name: String, ctx: &PublicationContext<'_>) -> Sheet {
    let q = ctx.questionnaire;
    let mut b = SheetBuilder::new(
        name,
        vec![
            24.0, 28.0, 28.0, 14.0, 22.0, 10.0, 8.0, 9.0, 10.0, 10.0, 8.0, 10.0,
        ],
    );
    b.line("Tests of association", Style::Title);
    b.line(
        "Rao-Scott tests of independence under the sampling design (R survey's svychisq). F: Pearson's X² divided by its design-based mean, on ndf and ddf degrees of freedom (statistic = \"F\"). X²: Pearson's statistic with its p-value from the first-order corrected chi-squared on (rows - 1)(columns - 1) df (statistic = \"Chisq\").",
        Style::Note,
    );
    b.row += 1;
    let headers = [
        "Test",
        "Rows",
        "Columns",
        "Weighting",
        "Variance",
        "F",
        "ndf",
        "ddf",
        "p-value (F)",
        "X²",
        "df",
        "p-value (X²)",
    ];
    b.header_row(&headers);
    b.sheet.freeze_below = Some(b.row);
    let label = |var: &str| variable_label(q, var);
    let number = |b: &mut SheetBuilder, col: u16, x: Option<f64>, style: Style| match x {
        Some(v) => b.put(col, CellValue::Number(v), style, Fill::None),
        None => b.put(
            col,
            CellValue::Text("..".into()),
            Style::Missing,
            Fill::None,
        ),
    };
    for group in test_groups(ctx.tests) {
        let Some(first) = group.f.or(group.chisq) else {
            continue;
        };
        b.text(0, &first.test, Style::Text);
        b.text(1, &label(&first.rows), Style::Text);
        b.text(2, &label(&first.cols), Style::Text);
        b.text(3, &first.weighting, Style::Text);
        b.text(4, &variance_name(first.variance.as_str()), Style::Text);
        let f = group.f;
        number(&mut b, 5, f.and_then(|r| r.value), Style::Dec3);
        number(&mut b, 6, f.and_then(|r| r.ndf), Style::Dec2);
        number(&mut b, 7, f.and_then(|r| r.ddf), Style::Dec1);
        number(&mut b, 8, f.and_then(|r| r.p_value), Style::Dec3);
        let c = group.chisq;
        number(&mut b, 9, c.and_then(|r| r.value), Style::Dec3);
        number(&mut b, 10, c.and_then(|r| r.ndf), Style::Dec1);
        number(&mut b, 11, c.and_then(|r| r.p_value), Style::Dec3);
        b.row += 1;
    }
    b.sheet
}

/// The workbook as a cell model: the cover, then one sheet per indicator (in estimate order),
/// then `Changes` (contrasts) and `Tests` (tests of association) when the run has them.
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
        let kind = ctx.questionnaire.indicator(id).map(|i| i.kind);
        sheets.push(if kind == Some(IndicatorKind::Quantile) {
            quantile_sheet(name, id, &cells, ctx)
        } else if cells.iter().any(|r| r.category.is_some()) {
            distribution_sheet(name, id, &cells, ctx)
        } else {
            indicator_sheet(name, id, &cells, ctx)
        });
    }
    if !ctx.contrasts.is_empty() {
        let name = sheet_name("Changes", &mut taken);
        sheets.push(changes_sheet(name, ctx.contrasts, ctx));
    }
    if !ctx.tests.is_empty() {
        let name = sheet_name("Tests", &mut taken);
        sheets.push(tests_sheet(name, ctx));
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
    b.header_row(&headers);
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

    use crate::output::present::tests::{context, rows_of, toml_questionnaire};

    fn model(rows: &[EstimateRow], tests: &[crate::estimate::TestRow]) -> String {
        let q = toml_questionnaire();
        let sheets = workbook_model(rows, &context(&q, tests), &PublicationConfig::default());
        model_text(&sheets[1..])
    }

    #[test]
    fn a_distribution_sheet_has_a_row_per_category_of_each_domain() {
        let mut rows = rows_of(
            "safety",
            &[
                (("_T", "_T"), "1", 0.6),
                (("_T", "_T"), "2", 0.4),
                (("sex", "2"), "1", 0.7),
                (("sex", "2"), "2", 0.3),
            ],
        );
        rows[3].flag = Flag::Suppressed;
        rows[3].flag_reason = "effective sample size < 30".into();
        rows[3].estimate = None;
        let text = model(&rows, &[]);
        for line in [
            "A5 [Header] Category",
            "B5 [Header] Estimate (%)",
            "A6 [Label] Total",
            "A7 [Text]   Safe",
            "B7 [Dec1] 60",
            "A8 [Text]   Unsafe",
            "B8 [Dec1] 40",
            "A9 [Label] Sex: Female",
            "B10 [Dec1] 70",
            "B11 [Missing suppressed] x",
            "H11 [Text suppressed] suppressed (1)",
            "A14 [Note] (1) effective sample size < 30",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_quantile_sheet_has_estimate_and_interval_per_probability() {
        let mut rows = rows_of(
            "income_q",
            &[
                (("_T", "_T"), "0.25", 1000.0),
                (("_T", "_T"), "0.5", 2000.0),
                (("sex", "1"), "0.5", 2100.0),
            ],
        );
        rows[2].flag = Flag::Caution;
        rows[2].flag_reason = "df < 8".into();
        let text = model(&rows, &[]);
        for line in [
            "A4 [Note] Weighting: design; Taylor linearization; quantile rule: interpolation between order statistics (R qrule \"hf7\", Hyndman-Fan type 7); interval: logit",
            "B5 [Header] 25th percentile",
            "E5 [Header] Median",
            "H5 [Header] Unweighted n",
            "C6 [Header] 95% CI lower",
            "A7 [Text] Total",
            "B7 [Dec2] 1000",
            "F7 [Dec2] 1800",
            "G7 [Dec2] 2200",
            "A8 [Label] Sex",
            "A9 [Text caution]   Male",
            "B9 [Missing] ..",
            "E9 [Dec2 caution] 2100",
            "I9 [Text caution] Median: caution (1)",
            "A12 [Note] (1) df < 8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn the_tests_sheet_lists_both_statistics() {
        let tests = crate::output::association::tests::rows();
        let text = model(&rows_of("safety", &[(("_T", "_T"), "1", 0.6)]), &tests);
        let sheet = text.split("== Tests").nth(1).expect("a Tests sheet");
        let q = toml_questionnaire();
        let sheets = workbook_model(&[], &context(&q, &tests), &PublicationConfig::default());
        let cover = model_text(&sheets[..1]);
        assert!(
            cover.contains("[Label] '=safety by sex\nB") && cover.contains("Feels safe × Sex"),
            "{cover}"
        );
        for line in [
            "A5 [Text] '=safety by sex",
            "B5 [Text] Feels safe",
            "C5 [Text] Sex",
            "F5 [Dec3] 12.5",
            "H5 [Dec1] 39.5",
            "I5 [Dec3] 0.00105",
            "J5 [Dec3] 14.25",
            "L5 [Dec3] 0.0001",
        ] {
            assert!(
                sheet.lines().any(|l| l.starts_with(line) || l == line),
                "{line} not in\n{sheet}"
            );
        }
    }

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
