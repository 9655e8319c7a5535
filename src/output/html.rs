//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) for
//! briefing: per indicator a table and a dot-and-whisker chart of the estimate and its interval
//! by domain with flagged cells marked; per distribution a table of its categories by domain and
//! a chart (stacked 100 % bars for a single-choice question, bars with whiskers for a
//! multiple-response set); per quantile indicator a table of domain × probability; the tests of
//! association; data quality (rows read, used, quarantined; findings); weighting (weight
//! distribution, design effect due to weighting, calibration fit); methods generated from the
//! configuration; provenance. All text is HTML-escaped.
//!
//! Indicator tables and charts show the first weighting scheme, variance method and interval
//! method; `tables.xlsx` and `estimates.csv` have all of them. Findings are listed without the
//! offending value or the respondent id, so no microdata reaches the report.

use std::fmt::Write as _;

use super::context::{PublicationContext, eligibility_note};
use super::present::{
    DomainCells, by_domain, category_columns, ci_method_name, display_scale, domain_labels, number,
    quantile_rule_name, table_rows, test_groups, variable_label, variance_name,
};
use super::settings::PublicationConfig;
use crate::estimate::{ContrastRow, EstimateRow, Flag, TOTAL};
use crate::ingest::FindingAction;
use crate::questionnaire::{Indicator, IndicatorKind};

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

const STYLE: &str = "
body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;color:#1a1a1a;margin:24px auto;max-width:1100px;padding:0 16px;line-height:1.4}
h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;border-bottom:2px solid #1f4e79;padding-bottom:4px;margin-top:36px}
h3{font-size:16px;margin-top:28px}.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:8px 0 12px 0;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}
th{background:#dde6f0;text-align:center}td.l,th.l{text-align:left}
tr.group td{font-weight:bold;text-align:left;background:#f4f6f8}
tr.caution td{background:#fff2cc}tr.suppressed td{background:#e7e6e6;color:#555}
.flag{font-weight:bold}.note{color:#555;font-size:12px}
nav a{margin-right:14px}svg{display:block;margin:6px 0 4px 0}
dl{display:grid;grid-template-columns:220px 1fr;gap:4px 12px;font-size:14px}dt{font-weight:bold}dd{margin:0}
.legend{font-size:12px}.legend span.key{margin-right:14px;white-space:nowrap}
.legend span.sw{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border:1px solid #888}
";

/// Fills of a distribution's categories, in declared order (cycled past ten), dark and light
/// alternating so that neighbouring segments of a stacked bar stay apart.
const PALETTE: [&str; 10] = [
    "#1f4e79", "#9dc3e6", "#c55a11", "#f4b183", "#548235", "#c5e0b4", "#7030a0", "#d9c3e9",
    "#7f6000", "#ffe699",
];

fn palette(k: usize) -> &'static str {
    PALETTE[k % PALETTE.len()]
}

/// Text colour readable on a palette fill.
fn ink_on(fill: &str) -> &'static str {
    let channel = |i: usize| {
        fill.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, f64::from)
    };
    let luminance = 0.299 * channel(1) + 0.587 * channel(3) + 0.114 * channel(5);
    if luminance < 140.0 { "#fff" } else { "#1a1a1a" }
}

/// Class of a table row by its flag.
fn flag_class(flag: Flag) -> &'static str {
    match flag {
        Flag::Suppressed => " class=\"suppressed\"",
        Flag::Caution => " class=\"caution\"",
        Flag::Reliable => "",
    }
}

fn fmt(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(String::new, |v| format!("{v:.decimals$}"))
}

/// A "nice" upper bound for an axis.
fn nice_ceiling(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

struct ChartRow {
    label: String,
    group: bool,
    total: bool,
    est: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
    flag: Flag,
}

/// A chart label that fits `width` pixels at 12 px (about 7 px a character), HTML-escaped: a
/// longer one (an item's question text) is cut with an ellipsis, whole in its tooltip.
fn fitted_label(label: &str, width: f64) -> String {
    let fits = (width / 7.0).floor().max(4.0) as usize;
    if label.chars().count() <= fits {
        return escape(label);
    }
    let cut: String = label.chars().take(fits - 1).collect();
    format!(
        "<title>{}</title>{}…",
        escape(label),
        escape(cut.trim_end())
    )
}

/// How [`chart`] draws an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// A dot (estimates by domain).
    Dot,
    /// A bar from zero (the shares of a multiple-response set).
    Bar,
}

/// Dot-and-whisker chart (inline SVG) of estimates and intervals by domain, or bars with
/// whiskers.
fn chart(rows: &[ChartRow], percent: bool, unit: &str, mark: Mark) -> String {
    // Bars are labelled by items, whose question texts are longer than domain labels.
    let (label_w, plot_w, row_h) = match mark {
        Mark::Dot => (230.0, 600.0, 20.0),
        Mark::Bar => (330.0, 500.0, 16.0),
    };
    let top = 10.0;
    let axis_h = 34.0;
    let height = top + row_h * rows.len() as f64 + axis_h;
    let width = label_w + plot_w + 110.0;
    let values = rows
        .iter()
        .flat_map(|r| [r.lo, r.hi, r.est])
        .flatten()
        .filter(|v| v.is_finite());
    let (mut min, mut max) = (0.0f64, 0.0f64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
    }
    let max = if percent {
        nice_ceiling(max).min(100.0)
    } else {
        nice_ceiling(max)
    };
    let min = if min < 0.0 { -nice_ceiling(-min) } else { 0.0 };
    let x = |v: f64| label_w + (v - min) / (max - min) * plot_w;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">"
    );
    let axis_y = top + row_h * rows.len() as f64 + 4.0;
    for k in 0..=5 {
        let v = min + (max - min) * k as f64 / 5.0;
        let xv = x(v);
        let _ = write!(
            s,
            "<line x1=\"{xv:.1}\" y1=\"{top}\" x2=\"{xv:.1}\" y2=\"{axis_y}\" stroke=\"#e3e3e3\"/><text x=\"{xv:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            axis_y + 14.0,
            escape(&number((v * 100.0).round() / 100.0))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
        label_w + plot_w / 2.0,
        axis_y + 29.0,
        escape(unit)
    );
    if let Some(t) = rows.iter().find(|r| r.total).and_then(|r| r.est) {
        let xt = x(t);
        let _ = write!(
            s,
            "<line x1=\"{xt:.1}\" y1=\"{top}\" x2=\"{xt:.1}\" y2=\"{axis_y}\" stroke=\"#1f4e79\" stroke-dasharray=\"4 3\" stroke-width=\"1\"/>"
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let weight = if r.group || r.total {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let indent = if r.group || r.total { 4.0 } else { 16.0 };
        let _ = write!(
            s,
            "<text x=\"{indent}\" y=\"{:.1}\"{weight}>{}</text>",
            y + 4.0,
            fitted_label(&r.label, label_w - indent - 6.0)
        );
        if r.group {
            continue;
        }
        let color = if r.flag == Flag::Caution {
            "#c55a11"
        } else {
            "#1f4e79"
        };
        if mark == Mark::Bar
            && let Some(e) = r.est
        {
            let fill = if r.flag == Flag::Caution {
                "#f8cbad"
            } else {
                "#9dc3e6"
            };
            let (a, b) = (x(0.0_f64.max(min)), x(e));
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"{fill}\"/>",
                a.min(b),
                y - 5.0,
                (b - a).abs()
            );
        }
        if let (Some(lo), Some(hi)) = (r.lo, r.hi) {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"2\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\"/>",
                x(lo),
                x(hi),
                x(lo),
                y - 4.0,
                x(lo),
                y + 4.0,
                x(hi),
                y - 4.0,
                x(hi),
                y + 4.0
            );
        }
        match (r.est, r.flag) {
            (Some(_), _) if mark == Mark::Bar => {}
            (Some(e), Flag::Caution) => {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"#fff\" stroke=\"{color}\" stroke-width=\"2\"/>",
                    x(e)
                );
            }
            (Some(e), _) => {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{color}\"/>",
                    x(e)
                );
            }
            (None, _) => {}
        }
        let note = match r.flag {
            Flag::Suppressed => "suppressed",
            Flag::Caution => "use with caution",
            _ if r.est.is_none() => "not defined",
            _ => "",
        };
        if !note.is_empty() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-style=\"italic\">{note}</text>",
                label_w + plot_w + 8.0,
                y + 4.0,
                if r.flag == Flag::Caution {
                    "#c55a11"
                } else {
                    "#666"
                }
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The heading and the line naming the indicator, scheme, variance and interval methods (and,
/// for a quantile, its rule).
fn section_head(s: &mut String, id: &str, first: &EstimateRow, ctx: &PublicationContext<'_>) {
    let ind = ctx.questionnaire.indicator(id);
    let label = ind.map_or(id, |i| i.label.as_str());
    let _ = write!(s, "<h3 id=\"ind-{}\">{}</h3>", escape(id), escape(label));
    let mut about = format!(
        "Indicator {id}; weighting {}; {}; ",
        first.weighting,
        variance_name(first.variance.as_str()),
    );
    if let Some(rule) = ind.and_then(|i| i.quantile.as_ref()).map(|q| q.rule.name()) {
        let _ = write!(about, "quantile rule: {}; ", quantile_rule_name(rule));
    }
    let _ = write!(
        about,
        "{}% interval: {}",
        number(ctx.ci_level * 100.0),
        ci_method_name(first.ci_method.as_str())
    );
    if let Some(series) = ind.and_then(|i| i.sdg_series.as_deref())
        && !matches!(
            ind.map(|i| i.kind),
            Some(IndicatorKind::Distribution | IndicatorKind::Quantile)
        )
    {
        let _ = write!(about, "; SDG series {series}");
    }
    let _ = write!(s, "<p class=\"note\">{}</p>", escape(&about));
}

/// One cell as the tables write it: estimate (`x` suppressed, `..` undefined), interval, SE,
/// CV (%) and the flag with its reason (HTML), on the indicator's display scale.
struct CellText {
    est: String,
    ci: String,
    se: String,
    cv: String,
    flag: String,
}

fn cell_text(r: &EstimateRow, factor: f64, decimals: usize) -> CellText {
    let d = decimals;
    let ci = match (r.ci_low, r.ci_high) {
        (Some(lo), Some(hi)) => format!(
            "{} – {}",
            fmt(Some(lo * factor), d),
            fmt(Some(hi * factor), d)
        ),
        _ => String::new(),
    };
    let est = match (r.estimate, r.flag) {
        (Some(e), _) => fmt(Some(e * factor), d),
        (None, Flag::Suppressed) => "x".into(),
        (None, _) => "..".into(),
    };
    let flag = if r.flag == Flag::Reliable {
        String::new()
    } else {
        format!(
            "<span class=\"flag\">{}</span>: {}",
            escape(r.flag.as_str()),
            escape(&r.flag_reason)
        )
    };
    CellText {
        est,
        ci,
        se: fmt(r.se.map(|v| v * factor), d + 1),
        cv: fmt(r.cv.map(|v| v * 100.0), 1),
        flag,
    }
}

/// "Estimate (unit)" and the chart's axis text of an indicator's display unit.
fn unit_texts(unit: &str) -> (String, String) {
    let head = if unit.is_empty() {
        "Estimate".to_string()
    } else {
        format!("Estimate ({unit})")
    };
    let axis = if unit == "%" {
        "percent".to_string()
    } else {
        unit.to_string()
    };
    (head, axis)
}

fn indicator_section(
    s: &mut String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) {
    let q = ctx.questionnaire;
    let ind = q.indicator(id);
    let (factor, unit) = display_scale(ind);
    let percent = unit == "%";
    let d = if percent { 1 } else { 2 };
    section_head(s, id, cells[0], ctx);
    let (est_head, unit_text) = unit_texts(&unit);
    let _ = write!(
        s,
        "<table><tr><th class=\"l\">Domain</th><th>{}</th><th>{}% CI</th><th>SE</th><th>CV (%)</th><th>Unweighted n</th><th class=\"l\">Flag</th></tr>",
        escape(&est_head),
        escape(&number(ctx.ci_level * 100.0))
    );
    let mut chart_rows = Vec::new();
    let mut var: Option<&str> = None;
    for r in cells {
        if var != Some(r.domain_var.as_str()) {
            var = Some(&r.domain_var);
            if r.domain_var != TOTAL {
                let (vl, _) = domain_labels(q, &r.domain_var, &r.domain_value);
                let _ = write!(
                    s,
                    "<tr class=\"group\"><td colspan=\"7\">{}</td></tr>",
                    escape(&vl)
                );
                chart_rows.push(ChartRow {
                    label: vl,
                    group: true,
                    total: false,
                    est: None,
                    lo: None,
                    hi: None,
                    flag: Flag::Reliable,
                });
            }
        }
        let (_, value_label) = domain_labels(q, &r.domain_var, &r.domain_value);
        let scale = |x: Option<f64>| x.map(|v| v * factor);
        let t = cell_text(r, factor, d);
        let _ = write!(
            s,
            "<tr{}><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            flag_class(r.flag),
            if r.domain_var == TOTAL {
                "<b>Total</b>".to_string()
            } else {
                escape(&value_label)
            },
            escape(&t.est),
            escape(&t.ci),
            escape(&t.se),
            escape(&t.cv),
            r.n_unweighted,
            t.flag,
        );
        chart_rows.push(ChartRow {
            label: if r.domain_var == TOTAL {
                "Total".into()
            } else {
                value_label
            },
            group: false,
            total: r.domain_var == TOTAL,
            est: scale(r.estimate),
            lo: scale(r.ci_low),
            hi: scale(r.ci_high),
            flag: r.flag,
        });
    }
    s.push_str("</table>");
    s.push_str(&chart(&chart_rows, percent, &unit_text, Mark::Dot));
    s.push_str(
        "<p class=\"note\">Dots: estimates; whiskers: confidence intervals; dashed line: whole population; hollow orange dots: use with caution; suppressed cells have no dot.</p>",
    );
}

/// A domain's heading in the distribution and quantile tables: `Total`, or `Sex: Female`.
fn domain_heading(ctx: &PublicationContext<'_>, var: &str, value: &str) -> String {
    if var == TOTAL {
        return "Total".into();
    }
    let (label, value) = domain_labels(ctx.questionnaire, var, value);
    format!("{label}: {value}")
}

/// True when the categories of a distribution are the answers to one question (their shares
/// add to 100 %), false for a multiple-response set or an indicator the questionnaire does not
/// declare.
fn single_choice(ind: Option<&Indicator>) -> bool {
    ind.is_some_and(|i| {
        i.kind == IndicatorKind::Distribution
            && !i.categories.is_empty()
            && i.categories
                .iter()
                .all(|c| c.category.as_ref().is_some_and(|c| !c.mention))
    })
}

/// A distribution: per domain, a row per category with its share, interval, SE, CV, n and
/// flag; then a chart.
fn distribution_section(
    s: &mut String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) {
    let ind = ctx.questionnaire.indicator(id);
    let (factor, unit) = display_scale(ind);
    let percent = unit == "%";
    let d = if percent { 1 } else { 2 };
    section_head(s, id, cells[0], ctx);
    let single = single_choice(ind);
    s.push_str(if single {
        "<p class=\"note\">Shares of the answers to one question: within a domain they add to 100% (up to rounding and suppressed cells).</p>"
    } else {
        "<p class=\"note\">Share of the indicator's universe mentioning each item: a respondent may mention several, so shares may add to more than 100%.</p>"
    });
    let columns = category_columns(ind, cells);
    let table = by_domain(cells, &columns);
    let (est_head, unit_text) = unit_texts(&unit);
    let _ = write!(
        s,
        "<table><tr><th class=\"l\">Category</th><th>{}</th><th>{}% CI</th><th>SE</th><th>CV (%)</th><th>Unweighted n</th><th class=\"l\">Flag</th></tr>",
        escape(&est_head),
        escape(&number(ctx.ci_level * 100.0))
    );
    let mut chart_rows = Vec::new();
    for dom in &table {
        let heading = domain_heading(ctx, dom.var, dom.value);
        let _ = write!(
            s,
            "<tr class=\"group\"><td colspan=\"7\">{}</td></tr>",
            escape(&heading)
        );
        chart_rows.push(ChartRow {
            label: heading,
            group: true,
            total: false,
            est: None,
            lo: None,
            hi: None,
            flag: Flag::Reliable,
        });
        for ((_, label), cell) in columns.iter().zip(&dom.cells) {
            let Some(r) = cell else { continue };
            let t = cell_text(r, factor, d);
            let _ = write!(
                s,
                "<tr{}><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                flag_class(r.flag),
                escape(label),
                escape(&t.est),
                escape(&t.ci),
                escape(&t.se),
                escape(&t.cv),
                r.n_unweighted,
                t.flag,
            );
            let scale = |x: Option<f64>| x.map(|v| v * factor);
            chart_rows.push(ChartRow {
                label: label.clone(),
                group: false,
                total: false,
                est: scale(r.estimate),
                lo: scale(r.ci_low),
                hi: scale(r.ci_high),
                flag: r.flag,
            });
        }
    }
    s.push_str("</table>");
    if single && percent {
        s.push_str(&stacked_chart(&table, &columns, factor, ctx));
        s.push_str(
            "<p class=\"note\">Each bar is a domain's answers, adding to 100%; faded segments: use with caution; a gap: suppressed or undefined shares.</p>",
        );
    } else {
        s.push_str(&chart(&chart_rows, percent, &unit_text, Mark::Bar));
        s.push_str(
            "<p class=\"note\">Bars: shares; whiskers: confidence intervals; orange: use with caution; suppressed cells have no bar.</p>",
        );
    }
}

/// Stacked 100 % bars (inline SVG) of a single-choice distribution: a bar per domain, grouped
/// under the domain variable, a segment per category in the palette's order, with a legend.
fn stacked_chart(
    table: &[DomainCells<'_>],
    columns: &[(String, String)],
    factor: f64,
    ctx: &PublicationContext<'_>,
) -> String {
    let q = ctx.questionnaire;
    let label_w = 230.0;
    let plot_w = 600.0;
    let row_h = 20.0;
    let top = 10.0;
    // Rows: a heading per domain variable, then a bar per domain value.
    let mut rows: Vec<(String, Option<&DomainCells<'_>>)> = Vec::new();
    let mut var: Option<&str> = None;
    for dom in table {
        if var != Some(dom.var) {
            var = Some(dom.var);
            if dom.var != TOTAL {
                rows.push((domain_labels(q, dom.var, dom.value).0, None));
            }
        }
        let label = if dom.var == TOTAL {
            "Total".to_string()
        } else {
            domain_labels(q, dom.var, dom.value).1
        };
        rows.push((label, Some(dom)));
    }
    let axis_y = top + row_h * rows.len() as f64 + 4.0;
    let height = axis_y + 34.0;
    let width = label_w + plot_w + 110.0;
    let x = |v: f64| label_w + v.clamp(0.0, 100.0) / 100.0 * plot_w;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">"
    );
    for k in 0..=5 {
        let v = 20.0 * k as f64;
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{axis_y}\" stroke=\"#e3e3e3\"/><text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\" fill=\"#444\">{2}</text>",
            x(v),
            axis_y + 14.0,
            number(v)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">percent</text>",
        label_w + plot_w / 2.0,
        axis_y + 29.0
    );
    for (i, (label, dom)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let bold = dom.is_none() || dom.is_some_and(|d| d.var == TOTAL);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\"{}>{}</text>",
            if bold { 4.0 } else { 16.0 },
            y + 4.0,
            if bold { " font-weight=\"bold\"" } else { "" },
            fitted_label(label, label_w - if bold { 10.0 } else { 22.0 })
        );
        let Some(dom) = dom else { continue };
        let mut start = 0.0;
        let mut gaps = 0;
        for (k, cell) in dom.cells.iter().enumerate() {
            let Some(share) = cell.and_then(|r| r.estimate).map(|e| e * factor) else {
                gaps += 1;
                continue;
            };
            let (a, b) = (x(start), x(start + share));
            start += share;
            let fill = palette(k);
            let faded = if cell.is_some_and(|r| r.flag != Flag::Reliable) {
                " fill-opacity=\"0.45\""
            } else {
                ""
            };
            let _ = write!(
                s,
                "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{fill}\"{faded}><title>{}: {}%</title></rect>",
                y - 7.0,
                (b - a).max(0.0),
                escape(&columns[k].1),
                fmt(Some(share), 1)
            );
            // The share is written in its segment when the segment is wide enough for it.
            if b - a >= 30.0 {
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{}\">{}</text>",
                    (a + b) / 2.0,
                    y + 3.5,
                    ink_on(fill),
                    fmt(Some(share), 0)
                );
            }
        }
        if gaps > 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\" font-style=\"italic\">{gaps} not shown</text>",
                label_w + plot_w + 8.0,
                y + 4.0
            );
        }
    }
    s.push_str("</svg><p class=\"legend\">");
    for (k, (_, label)) in columns.iter().enumerate() {
        let _ = write!(
            s,
            "<span class=\"key\"><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            palette(k),
            escape(label)
        );
    }
    s.push_str("</p>");
    s
}

/// A quantile indicator: a row per domain, for each probability the estimate and its interval,
/// then the domain's n and the flags of its cells.
fn quantile_section(
    s: &mut String,
    id: &str,
    cells: &[&EstimateRow],
    ctx: &PublicationContext<'_>,
) {
    let q = ctx.questionnaire;
    let ind = q.indicator(id);
    let (factor, unit) = display_scale(ind);
    section_head(s, id, cells[0], ctx);
    let columns = category_columns(ind, cells);
    let table = by_domain(cells, &columns);
    let (est_head, _) = unit_texts(&unit);
    let level = number(ctx.ci_level * 100.0);
    s.push_str("<table><tr><th class=\"l\" rowspan=\"2\">Domain</th>");
    for (_, label) in &columns {
        let _ = write!(s, "<th colspan=\"2\">{}</th>", escape(label));
    }
    s.push_str(
        "<th rowspan=\"2\">Unweighted n</th><th class=\"l\" rowspan=\"2\">Flag</th></tr><tr>",
    );
    for _ in &columns {
        let _ = write!(
            s,
            "<th>{}</th><th>{}% CI</th>",
            escape(&est_head),
            escape(&level)
        );
    }
    s.push_str("</tr>");
    let width = columns.len() * 2 + 3;
    let mut var: Option<&str> = None;
    for dom in &table {
        if var != Some(dom.var) {
            var = Some(dom.var);
            if dom.var != TOTAL {
                let (label, _) = domain_labels(q, dom.var, dom.value);
                let _ = write!(
                    s,
                    "<tr class=\"group\"><td colspan=\"{width}\">{}</td></tr>",
                    escape(&label)
                );
            }
        }
        let worst = dom
            .cells
            .iter()
            .flatten()
            .map(|r| r.flag)
            .max()
            .unwrap_or(Flag::Reliable);
        let label = if dom.var == TOTAL {
            "<b>Total</b>".to_string()
        } else {
            escape(&domain_labels(q, dom.var, dom.value).1)
        };
        let _ = write!(s, "<tr{}><td class=\"l\">{label}</td>", flag_class(worst));
        let mut flags: Vec<String> = Vec::new();
        for ((_, name), cell) in columns.iter().zip(&dom.cells) {
            match cell {
                Some(r) => {
                    let t = cell_text(r, factor, 2);
                    let _ = write!(s, "<td>{}</td><td>{}</td>", escape(&t.est), escape(&t.ci));
                    if r.flag != Flag::Reliable {
                        flags.push(format!("{} {}", escape(name), t.flag));
                    }
                }
                None => s.push_str("<td></td><td></td>"),
            }
        }
        let n = dom.cells.iter().flatten().map(|r| r.n_unweighted).max();
        let _ = write!(
            s,
            "<td>{}</td><td class=\"l\">{}</td></tr>",
            n.map_or_else(String::new, |n| n.to_string()),
            flags.join("; ")
        );
    }
    s.push_str("</table>");
}

/// "Tests of association": a row per test × weighting × variance method with the Rao–Scott F
/// (ndf, ddf, p-value) and the chi-squared (df, p-value).
fn tests_section(s: &mut String, ctx: &PublicationContext<'_>) {
    let q = ctx.questionnaire;
    s.push_str("<h2 id=\"tests\">Tests of association</h2><p class=\"note\">Rao–Scott tests of independence of two variables under the sampling design (R survey's svychisq). F: Pearson's X² divided by its design-based mean, on ndf and ddf degrees of freedom (statistic = \"F\", the default). X²: Pearson's statistic with its p-value from the first-order corrected chi-squared on (rows − 1)(columns − 1) degrees of freedom (statistic = \"Chisq\").</p>");
    s.push_str("<table><tr><th class=\"l\">Test</th><th class=\"l\">Rows × columns</th><th class=\"l\">Weighting</th><th class=\"l\">Variance</th><th>F</th><th>ndf</th><th>ddf</th><th>p-value</th><th>X²</th><th>df</th><th>p-value</th></tr>");
    for group in test_groups(ctx.tests) {
        let Some(first) = group.f.or(group.chisq) else {
            continue;
        };
        let label = |var: &str| variable_label(q, var);
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{} × {}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            escape(&first.test),
            escape(&label(&first.rows)),
            escape(&label(&first.cols)),
            escape(&first.weighting),
            escape(&variance_name(first.variance.as_str()))
        );
        let dash = |x: Option<f64>, d: usize| x.map_or("–".to_string(), |v| format!("{v:.d$}"));
        match group.f {
            Some(r) => {
                let _ = write!(
                    s,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    dash(r.value, 3),
                    dash(r.ndf, 2),
                    dash(r.ddf, 1),
                    p_value(r.p_value)
                );
            }
            None => s.push_str("<td>–</td><td>–</td><td>–</td><td>–</td>"),
        }
        match group.chisq {
            Some(r) => {
                let _ = write!(
                    s,
                    "<td>{}</td><td>{}</td><td>{}</td>",
                    dash(r.value, 3),
                    dash(r.ndf, 0),
                    p_value(r.p_value)
                );
            }
            None => s.push_str("<td>–</td><td>–</td><td>–</td>"),
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
}

/// A p-value as the tables print it: three decimals, `<0.001` below (HTML-escaped).
fn p_value(p: Option<f64>) -> String {
    p.map_or("–".to_string(), |p| {
        if p < 0.001 {
            "&lt;0.001".to_string()
        } else {
            format!("{p:.3}")
        }
    })
}

/// Render the report.
pub fn render(
    rows: &[EstimateRow],
    ctx: &PublicationContext<'_>,
    cfg: &PublicationConfig,
) -> String {
    let q = ctx.questionnaire;
    let title = ctx.display_title();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    let _ = write!(s, "<h1>{}</h1>", escape(title));
    let _ = write!(
        s,
        "<p class=\"sub\">{} ({} {}) · reference period {} · cvsurvey {}</p>",
        escape(&q.title),
        escape(&q.id),
        escape(&q.version),
        escape(&ctx.reference_period),
        escape(&ctx.tool_version)
    );
    s.push_str("<nav><a href=\"#indicators\">Indicators</a>");
    if !ctx.contrasts.is_empty() {
        s.push_str("<a href=\"#changes\">Changes and differences</a>");
    }
    if !ctx.tests.is_empty() {
        s.push_str("<a href=\"#tests\">Tests of association</a>");
    }
    if ctx.fieldwork.is_some() {
        s.push_str("<a href=\"#fieldwork\">Fieldwork</a>");
    }
    s.push_str("<a href=\"#quality\">Data quality</a><a href=\"#weighting\">Weighting</a><a href=\"#methods\">Methods</a><a href=\"#provenance\">Provenance</a></nav>");

    // Indicators.
    s.push_str("<h2 id=\"indicators\">Indicators</h2>");
    let shown = table_rows(rows);
    let first_scheme = shown.first().map(|r| r.weighting.clone());
    let shown: Vec<&EstimateRow> = shown
        .into_iter()
        .filter(|r| Some(&r.weighting) == first_scheme.as_ref())
        .collect();
    let mut ids: Vec<&str> = Vec::new();
    for r in &shown {
        if !ids.contains(&r.indicator.as_str()) {
            ids.push(&r.indicator);
        }
    }
    if ids.is_empty() {
        s.push_str("<p>No estimates.</p>");
    }
    let (mut n_caution, mut n_suppressed) = (0, 0);
    for r in &shown {
        match r.flag {
            Flag::Caution => n_caution += 1,
            Flag::Suppressed => n_suppressed += 1,
            Flag::Reliable => {}
        }
    }
    let _ = write!(
        s,
        "<p>{} cells shown; {n_caution} to be used with caution, {n_suppressed} suppressed ({}).</p>",
        shown.len(),
        escape(cfg.reliability.preset.as_str())
    );
    // Which kinds of table were shown, for the methods section.
    #[derive(Default)]
    struct Kinds {
        distributions: bool,
        quantiles: bool,
    }
    let mut kinds = Kinds::default();
    for id in ids {
        let cells: Vec<&EstimateRow> = shown
            .iter()
            .copied()
            .filter(|r| r.indicator == id)
            .collect();
        let kind = q.indicator(id).map(|i| i.kind);
        if kind == Some(IndicatorKind::Quantile) {
            quantile_section(&mut s, id, &cells, ctx);
            kinds.quantiles = true;
        } else if cells.iter().any(|r| r.category.is_some()) {
            distribution_section(&mut s, id, &cells, ctx);
            kinds.distributions = true;
        } else {
            indicator_section(&mut s, id, &cells, ctx);
        }
    }

    if !ctx.contrasts.is_empty() {
        changes_section(&mut s, ctx);
    }
    if !ctx.tests.is_empty() {
        tests_section(&mut s, ctx);
    }
    if let Some(f) = ctx.fieldwork {
        fieldwork_section(&mut s, f, false);
    }

    // Data quality.
    s.push_str("<h2 id=\"quality\">Data quality</h2>");
    let _ = write!(
        s,
        "<table><tr><th class=\"l\">Rows</th><th>Count</th></tr><tr><td class=\"l\">Read</td><td>{}</td></tr><tr><td class=\"l\">Used</td><td>{}</td></tr><tr><td class=\"l\">Quarantined</td><td>{}</td></tr><tr><td class=\"l\">Respondents</td><td>{}</td></tr></table>",
        ctx.rows_read, ctx.rows_used, ctx.rows_quarantined, ctx.respondents
    );
    if ctx.findings_by_kind.is_empty() {
        s.push_str("<p>No validation findings.</p>");
    } else {
        s.push_str(
            "<table><tr><th class=\"l\">Finding</th><th>Count</th><th class=\"l\">Effect</th></tr>",
        );
        for ((k, action), n) in &ctx.findings_by_kind {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{n}</td><td class=\"l\">{}</td></tr>",
                escape(k.as_str()),
                match action {
                    FindingAction::Quarantined => "row quarantined",
                    FindingAction::Blanked => "answer blanked, row kept",
                    FindingAction::Kept => "row kept",
                }
            );
        }
        s.push_str("</table>");
    }
    if !ctx.first_findings.is_empty() {
        let _ = write!(
            s,
            "<p>First {} findings (values and ids are in findings.csv, not here):</p><table><tr><th>Row</th><th class=\"l\">Column</th><th class=\"l\">Kind</th><th class=\"l\">Reason</th></tr>",
            ctx.first_findings.len()
        );
        for f in &ctx.first_findings {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                f.row,
                escape(&f.column),
                escape(f.kind.as_str()),
                escape(&f.reason)
            );
        }
        s.push_str("</table>");
    }

    // Weighting.
    s.push_str("<h2 id=\"weighting\">Weighting</h2><table><tr><th class=\"l\">Scheme</th><th>n</th><th>Sum</th><th>Min</th><th>Q1</th><th>Median</th><th>Q3</th><th>Max</th><th>Max/min</th><th>Deff (1+CV²)</th><th>Effective n</th></tr>");
    for sc in &ctx.schemes {
        let w = &sc.weights;
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{:.0}</td></tr>",
            escape(&sc.name),
            w.n,
            w.sum,
            w.min,
            w.q1,
            w.median,
            w.q3,
            w.max,
            w.ratio_max_min,
            w.kish_deff,
            w.effective_n
        );
    }
    s.push_str("</table>");
    s.push_str(&weights_chart(ctx));
    s.push_str("<p class=\"note\">Boxes: quartiles of the final weights; whiskers: minimum and maximum. The design effect due to weighting is Kish's 1 + CV² = n Σw² / (Σw)².</p>");
    for sc in &ctx.schemes {
        let adj = match &sc.nonresponse_classes {
            Some(c) => format!(
                "nonresponse adjustment within classes of {}{}",
                c.join(" × "),
                eligibility_note(sc.eligibility_adjusted)
            ),
            None => "design weights of respondents".into(),
        };
        let _ = write!(s, "<p><b>{}</b>: {}.", escape(&sc.name), escape(&adj));
        if let Some(c) = &sc.calibration {
            let _ = write!(
                s,
                " Calibration ({}): {} iterations, largest relative margin error {:.2e}{}.",
                escape(&c.method),
                c.iterations,
                c.max_margin_error,
                if c.converged {
                    ""
                } else {
                    ", <b>did not converge</b>"
                }
            );
        }
        s.push_str("</p>");
    }

    // Methods.
    let d = &ctx.design;
    s.push_str("<h2 id=\"methods\">Methods</h2><dl>");
    let mut item = |k: &str, v: String| {
        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    item("Sampling design", d.describe());
    item(
        "Variance",
        format!(
            "{}; domain estimates keep the full design (domain estimation).",
            ctx.variance_methods
                .iter()
                .map(|v| variance_name(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    item(
        "Confidence intervals",
        format!(
            "{}% level. Proportions: {}; the first is shown here and sent to SDMX. Means, ratios and totals: Wald interval with the t quantile on the design df. Domain df: {}.",
            number(ctx.ci_level * 100.0),
            ctx.ci_methods
                .iter()
                .map(|m| ci_method_name(m))
                .collect::<Vec<_>>()
                .join(", "),
            ctx.domain_df
        ),
    );
    if kinds.distributions {
        item(
            "Distributions",
            "Each category's share is a proportion over the indicator's universe, with the proportions' interval methods. The shares of a single-choice question add to 100%; an item of a multiple-response set counts the respondents of the universe who mention it, so those shares may add to more than 100%.".into(),
        );
    }
    if kinds.quantiles {
        item(
            "Quantiles",
            "Weighted quantiles read off the weighted distribution function by the rule named under each table (R survey's svyquantile). Woodruff intervals: the confidence interval of the distribution function at the estimated quantile, read back through the same rule; replicate quantile intervals: the quantile ± t × the standard error of the replicates' quantiles.".into(),
        );
    }
    item(
        "Reliability",
        cfg.reliability.preset.description().to_string(),
    );
    item(
        "Suppression",
        if cfg.reliability.suppress {
            "Suppressed cells show no estimate, SE, CV or interval; the row and its reason remain."
                .into()
        } else {
            "suppress = false: values of cells flagged suppressed are shown; not for publication."
                .into()
        },
    );
    item(
        "Data",
        format!("{} (SHA-256 {}).", ctx.data_file, ctx.data_sha256),
    );
    s.push_str("</dl>");

    // Provenance.
    s.push_str("<h2 id=\"provenance\">Provenance</h2><table><tr><th class=\"l\">Key</th><th class=\"l\">Value</th></tr>");
    for (k, v) in &ctx.provenance {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    s.push_str("</table><p class=\"note\">Estimates only; this report contains no microdata.</p></body></html>\n");
    s
}

/// Box plot (inline SVG) of the final weights of each scheme.
/// "Changes and differences": every contrast of the first weighting scheme and variance method
/// (as the indicator tables), in the indicator's display unit (percentage points for
/// proportions), with its interval and p-value.
fn changes_section(s: &mut String, ctx: &PublicationContext<'_>) {
    let q = ctx.questionnaire;
    let first = &ctx.contrasts[0];
    let _ = write!(
        s,
        "<h2 id=\"changes\">Changes and differences</h2><p class=\"note\">Weighting {}; {}; {}% interval, t on the design df. A difference is the estimate in the first group minus the estimate in the second; its standard error includes the covariance of the two estimates.</p>",
        escape(&first.weighting),
        escape(&variance_name(first.variance.as_str())),
        escape(&number(ctx.ci_level * 100.0))
    );
    let shown: Vec<&ContrastRow> = ctx
        .contrasts
        .iter()
        .filter(|r| r.weighting == first.weighting && r.variance == first.variance)
        .collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &shown {
        if !names.contains(&r.contrast.as_str()) {
            names.push(&r.contrast);
        }
    }
    for name in names {
        let _ = write!(
            s,
            "<h3>{}</h3><table><tr><th class=\"l\">Indicator</th><th class=\"l\">Within</th><th>Difference</th><th>{}% CI</th><th>SE</th><th>p-value</th><th>n (first)</th><th>n (second)</th></tr>",
            escape(name),
            escape(&number(ctx.ci_level * 100.0))
        );
        for r in shown.iter().filter(|r| r.contrast == name) {
            let ind = q.indicator(&r.indicator);
            let (factor, unit) = display_scale(ind);
            let percent = unit == "%";
            let d = if percent { 1 } else { 2 };
            let unit = if percent {
                " pp".to_string()
            } else if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            let scaled = |x: Option<f64>| x.map(|v| v * factor);
            let within = if r.within_var == TOTAL {
                "Total".to_string()
            } else {
                let (label, value) = domain_labels(q, &r.within_var, &r.within_value);
                format!("{label}: {value}")
            };
            let estimate = match scaled(r.estimate) {
                Some(_) => format!("{}{unit}", fmt(scaled(r.estimate), d)),
                None => "–".into(),
            };
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(ind.map_or(r.indicator.as_str(), |i| i.label.as_str())),
                escape(&within),
                escape(&estimate),
                fmt(scaled(r.ci_low), d),
                fmt(scaled(r.ci_high), d),
                fmt(scaled(r.se), d),
                r.p_value.map_or("–".to_string(), |p| if p < 0.001 {
                    "&lt;0.001".to_string()
                } else {
                    format!("{p:.3}")
                }),
                r.n_unweighted_first,
                r.n_unweighted_second
            );
        }
        s.push_str("</table>");
    }
}

fn weights_chart(ctx: &PublicationContext<'_>) -> String {
    let label_w = 160.0;
    let plot_w = 600.0;
    let row_h = 30.0;
    let height = 10.0 + row_h * ctx.schemes.len() as f64 + 34.0;
    let width = label_w + plot_w + 40.0;
    let max = nice_ceiling(
        ctx.schemes
            .iter()
            .map(|s| s.weights.max)
            .filter(|m| m.is_finite())
            .fold(0.0, f64::max),
    );
    let x = |v: f64| label_w + v / max * plot_w;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">"
    );
    let axis_y = 10.0 + row_h * ctx.schemes.len() as f64 + 4.0;
    for k in 0..=5 {
        let v = max * k as f64 / 5.0;
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"10\" x2=\"{0:.1}\" y2=\"{axis_y}\" stroke=\"#e3e3e3\"/><text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\" fill=\"#444\">{2}</text>",
            x(v),
            axis_y + 14.0,
            escape(&number((v * 100.0).round() / 100.0))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">final weight</text>",
        label_w + plot_w / 2.0,
        axis_y + 29.0
    );
    for (i, sc) in ctx.schemes.iter().enumerate() {
        let w = &sc.weights;
        if !(w.min.is_finite() && w.max.is_finite()) {
            continue;
        }
        let y = 10.0 + row_h * i as f64 + row_h / 2.0;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#1f4e79\"/><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"#dde6f0\" stroke=\"#1f4e79\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1f4e79\" stroke-width=\"2\"/>",
            y + 4.0,
            escape(&sc.name),
            x(w.min),
            x(w.max),
            x(w.q1),
            y - 8.0,
            (x(w.q3) - x(w.q1)).max(1.0),
            x(w.median),
            y - 8.0,
            x(w.median),
            y + 8.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::output::present::tests::{context, rows_of, toml_questionnaire};

    fn report(rows: &[EstimateRow], tests: &[crate::estimate::TestRow]) -> String {
        let q = toml_questionnaire();
        render(rows, &context(&q, tests), &PublicationConfig::default())
    }

    #[test]
    fn a_distribution_shows_every_category_of_every_domain() {
        let rows = rows_of(
            "safety",
            &[
                (("_T", "_T"), "1", 0.6),
                (("_T", "_T"), "2", 0.4),
                (("sex", "1"), "1", 0.7),
                (("sex", "1"), "2", 0.3),
                (("sex:age_group", "2:1"), "1", 0.55),
                (("sex:age_group", "2:1"), "2", 0.45),
            ],
        );
        let html = report(&rows, &[]);
        for text in [
            "<tr class=\"group\"><td colspan=\"7\">Total</td></tr><tr><td class=\"l\">Safe</td><td>60.0</td>",
            "<td class=\"l\">Unsafe</td><td>40.0</td>",
            "<td colspan=\"7\">Sex: Male</td></tr><tr><td class=\"l\">Safe</td><td>70.0</td>",
            "<td class=\"l\">Unsafe</td><td>30.0</td>",
            "Sex × Age group: Female × 18-29",
            "<span class=\"sw\" style=\"background:#1f4e79\"></span>Safe</span>",
        ] {
            assert!(html.contains(text), "{text} not in the report");
        }
        assert!(html.contains("<dt>Distributions</dt>"));
        assert!(!html.contains("<dt>Quantiles</dt>"));
    }

    #[test]
    fn a_multiple_response_set_gets_bars_with_whiskers() {
        let rows = rows_of(
            "paid",
            &[
                (("_T", "_T"), "paid_police", 0.25),
                (("_T", "_T"), "paid_courts", 0.05),
            ],
        );
        let html = report(&rows, &[]);
        assert!(html.contains("<td class=\"l\">Paid the police</td><td>25.0</td>"));
        assert!(html.contains("<td class=\"l\">Paid the courts</td><td>5.0</td>"));
        assert!(html.contains("may add to more than 100%"));
        assert!(html.contains("<rect "), "bars");
        assert!(!html.contains("class=\"legend\""), "no stacked bars");
    }

    #[test]
    fn a_quantile_table_has_a_column_pair_per_probability() {
        let mut rows = rows_of(
            "income_q",
            &[
                (("_T", "_T"), "0.25", 1000.0),
                (("_T", "_T"), "0.5", 2000.0),
                (("sex", "2"), "0.25", 900.0),
                (("sex", "2"), "0.5", 1800.0),
            ],
        );
        rows[3].flag = Flag::Caution;
        rows[3].flag_reason = "few PSUs".into();
        let html = report(&rows, &[]);
        for text in [
            "<th colspan=\"2\">25th percentile</th><th colspan=\"2\">Median</th>",
            "<tr><td class=\"l\"><b>Total</b></td><td>1000.00</td><td>900.00 – 1100.00</td><td>2000.00</td><td>1800.00 – 2200.00</td><td>120</td>",
            "<tr class=\"caution\"><td class=\"l\">Female</td><td>900.00</td>",
            "Median <span class=\"flag\">caution</span>: few PSUs",
            "quantile rule: interpolation between order statistics",
            "<dt>Quantiles</dt>",
        ] {
            assert!(html.contains(text), "{text} not in the report");
        }
    }

    #[test]
    fn tests_of_association_list_both_statistics() {
        let tests = crate::output::association::tests::rows();
        let html = report(&rows_of("safety", &[(("_T", "_T"), "1", 0.6)]), &tests);
        assert!(html.contains("<a href=\"#tests\">Tests of association</a>"));
        assert!(html.contains(
            "<td class=\"l\">=safety by sex</td><td class=\"l\">Feels safe × Sex</td><td class=\"l\">raked</td><td class=\"l\">Taylor linearization</td><td>12.500</td><td>0.99</td><td>39.5</td><td>0.001</td><td>14.250</td><td>1</td><td>&lt;0.001</td>"
        ), "{html}");
    }

    #[test]
    fn long_chart_labels_are_cut() {
        assert_eq!(fitted_label("Male", 200.0), "Male");
        let cut = fitted_label(&"x".repeat(60), 70.0);
        assert_eq!(cut, format!("<title>{}</title>xxxxxxxxx…", "x".repeat(60)));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn nice_axis() {
        assert_eq!(nice_ceiling(37.8), 40.0);
        assert_eq!(nice_ceiling(53.1), 60.0);
        assert_eq!(nice_ceiling(0.42), 0.5);
        assert_eq!(nice_ceiling(120.0), 120.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}

/// Rows, quarantine, respondents and findings of the returns, for the monitoring page.
#[derive(Debug, Clone)]
pub struct ReturnsSummary {
    /// Rows read.
    pub rows_read: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Respondents among the used rows.
    pub respondents: u64,
    /// Findings per kind and what was done about them.
    pub findings_by_kind:
        std::collections::BTreeMap<(crate::ingest::FindingKind, FindingAction), usize>,
}

/// A rate as a percentage with one decimal, or a dash where it has no value.
fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{:.1}", 100.0 * v))
}

/// The "Fieldwork" section: AAPOR rates of the whole sample (unweighted and weighted), by each
/// `by` variable, the interviewers (outliers marked) and, with `dates`, returns per interview
/// date.
pub fn fieldwork_section(s: &mut String, report: &crate::fieldwork::FieldworkReport, dates: bool) {
    use crate::fieldwork::{InterviewerMetric, Outcome, RATES};
    s.push_str("<h2 id=\"fieldwork\">Fieldwork</h2>");
    let value = |var: &str, group: &str, weighted: bool, rate: &str| {
        report
            .rates
            .iter()
            .find(|r| {
                r.group_var == var
                    && r.group_value == group
                    && r.weighted == weighted
                    && r.rate == rate
            })
            .and_then(|r| r.value)
    };
    let has_weighted = report.rates.iter().any(|r| r.weighted);
    if let Some(total) = report.rates.first() {
        s.push_str("<h3>Whole sample</h3><table><tr>");
        for o in Outcome::ALL {
            let _ = write!(s, "<th>{}</th>", o.letter());
        }
        s.push_str("</tr><tr>");
        for n in total.counts {
            let _ = write!(s, "<td>{n}</td>");
        }
        s.push_str("</tr></table><table><tr><th class=\"l\">Rate</th><th>Unweighted %</th>");
        if has_weighted {
            s.push_str("<th>Weighted %</th>");
        }
        s.push_str("</tr>");
        for rate in RATES {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{rate}</td><td>{}</td>",
                percent(value("_T", "_T", false, rate))
            );
            if has_weighted {
                let _ = write!(s, "<td>{}</td>", percent(value("_T", "_T", true, rate)));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    let mut vars: Vec<&str> = Vec::new();
    for r in &report.rates {
        if r.group_var != "_T" && !vars.contains(&r.group_var.as_str()) {
            vars.push(&r.group_var);
        }
    }
    const SHOWN: [&str; 6] = ["RR1", "RR3", "COOP1", "REF1", "CON1", "e"];
    for var in vars {
        let _ = write!(
            s,
            "<h3>By {}</h3><table><tr><th class=\"l\">{}</th>",
            escape(var),
            escape(var)
        );
        for o in Outcome::ALL {
            let _ = write!(s, "<th>{}</th>", o.letter());
        }
        for rate in SHOWN {
            let _ = write!(s, "<th>{rate} %</th>");
        }
        if has_weighted {
            s.push_str("<th>RR3 weighted %</th>");
        }
        s.push_str("</tr>");
        let mut groups: Vec<&crate::fieldwork::RateRow> = Vec::new();
        for r in report.rates.iter().filter(|r| r.group_var == var) {
            if !groups.iter().any(|g| g.group_value == r.group_value) {
                groups.push(r);
            }
        }
        for g in groups {
            let _ = write!(s, "<tr><td class=\"l\">{}</td>", escape(&g.group_value));
            for n in g.counts {
                let _ = write!(s, "<td>{n}</td>");
            }
            for rate in SHOWN {
                let _ = write!(
                    s,
                    "<td>{}</td>",
                    percent(value(var, &g.group_value, false, rate))
                );
            }
            if has_weighted {
                let _ = write!(
                    s,
                    "<td>{}</td>",
                    percent(value(var, &g.group_value, true, "RR3"))
                );
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    if !report.interviewers.is_empty() {
        let outliers = report.interviewers.iter().filter(|i| i.outlier).count();
        let _ = write!(
            s,
            "<h3>Interviewers</h3><p>{outliers} of {} interviewers stand out (robust z-score beyond ±{}; marked).</p><table><tr><th class=\"l\">Interviewer</th><th>Cases</th><th>Interviews</th>",
            report.interviewers.len(),
            number(report.outlier_z)
        );
        for m in InterviewerMetric::ALL {
            let _ = write!(s, "<th>{}</th><th>z</th>", escape(m.label()));
        }
        s.push_str("</tr>");
        for i in &report.interviewers {
            let _ = write!(
                s,
                "<tr{}><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
                if i.outlier { " class=\"caution\"" } else { "" },
                escape(&i.interviewer),
                i.cases,
                i.interviews
            );
            for (k, m) in InterviewerMetric::ALL.iter().enumerate() {
                let shown = match m {
                    InterviewerMetric::SkipFindings => {
                        i.values[k].map_or("–".into(), |v| format!("{v:.2}"))
                    }
                    _ => format!("{} %", percent(i.values[k])),
                };
                let flagged = i.z[k].is_some_and(|z| z.abs() > report.outlier_z);
                let _ = write!(
                    s,
                    "<td>{shown}</td><td{}>{}</td>",
                    if flagged { " class=\"flag\"" } else { "" },
                    i.z[k].map_or("–".into(), |z| format!("{z:.1}"))
                );
            }
            s.push_str("</tr>");
        }
        s.push_str("</table><p class=\"note\">Robust z-score: (x − median) / (1.4826 × MAD) among interviewers (Iglewicz and Hoaglin 1993); where MAD is 0, 1.2533 × the mean absolute deviation. Item nonresponse and don't know: shares of the questions asked of the interviewer's respondents.</p>");
    }
    if dates && !report.dates.is_empty() {
        s.push_str("<h3>Returns per interview date</h3><table><tr><th class=\"l\">Date</th><th>Returns</th><th>Respondents</th></tr>");
        for d in &report.dates {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
                d.date, d.returns, d.respondents
            );
        }
        let _ = write!(
            s,
            "</table><p class=\"note\">{} cases without a readable interview date.</p>",
            report.undated
        );
    }
    s.push_str("<p class=\"note\">AAPOR Standard Definitions (2023); formulas in docs/fieldwork.md. A dash: the rate's denominator is zero. Weighted: sums of design weights.</p>");
}

/// `fieldwork.html` of `cvsurvey monitor`: one page with the returns so far.
pub fn render_fieldwork_page(
    title: &str,
    data_file: &str,
    report: &crate::fieldwork::FieldworkReport,
    summary: &ReturnsSummary,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Fieldwork: {}</title><style>{STYLE}</style></head><body><h1>Fieldwork: {}</h1>",
        escape(title),
        escape(title)
    );
    let _ = write!(
        s,
        "<p class=\"sub\">{} · {} rows read, {} quarantined (findings.csv, quarantine.csv) · {} respondents</p>",
        escape(data_file),
        summary.rows_read,
        summary.rows_quarantined,
        summary.respondents
    );
    fieldwork_section(&mut s, report, true);
    s.push_str("<h2 id=\"findings\">Findings</h2>");
    if summary.findings_by_kind.is_empty() {
        s.push_str("<p>No validation findings.</p>");
    } else {
        s.push_str(
            "<table><tr><th class=\"l\">Finding</th><th>Count</th><th class=\"l\">Effect</th></tr>",
        );
        for ((kind, action), n) in &summary.findings_by_kind {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{n}</td><td class=\"l\">{}</td></tr>",
                escape(kind.as_str()),
                escape(action.as_str())
            );
        }
        s.push_str("</table><p class=\"note\">Rows, columns and values: findings.csv.</p>");
    }
    s.push_str("</body></html>\n");
    s
}
