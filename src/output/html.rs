//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) for
//! briefing: per indicator a table and a dot-and-whisker chart of the estimate and its interval
//! by domain with flagged cells marked; data quality (rows read, used, quarantined; findings);
//! weighting (weight distribution, design effect due to weighting, calibration fit); methods
//! generated from the configuration; provenance. All text is HTML-escaped.
//!
//! Indicator tables and charts show the first weighting scheme, variance method and interval
//! method; `tables.xlsx` and `estimates.csv` have all of them. Findings are listed without the
//! offending value or the respondent id, so no microdata reaches the report.

use std::fmt::Write as _;

use super::context::PublicationContext;
use super::present::{
    ci_method_name, display_scale, domain_labels, number, table_rows, variance_name,
};
use super::settings::PublicationConfig;
use crate::estimate::{ContrastRow, EstimateRow, Flag, TOTAL};

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
";

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

/// Dot-and-whisker chart (inline SVG) of estimates and intervals by domain.
fn chart(rows: &[ChartRow], percent: bool, unit: &str) -> String {
    let label_w = 230.0;
    let plot_w = 600.0;
    let row_h = 20.0;
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
            escape(&r.label)
        );
        if r.group {
            continue;
        }
        let color = if r.flag == Flag::Caution {
            "#c55a11"
        } else {
            "#1f4e79"
        };
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
    let label = ind.map_or(id, |i| i.label.as_str());
    let _ = write!(s, "<h3 id=\"ind-{}\">{}</h3>", escape(id), escape(label));
    let first = cells[0];
    let mut about = format!(
        "Indicator {id}; weighting {}; {}; {}% interval: {}",
        first.weighting,
        variance_name(first.variance.as_str()),
        number(ctx.ci_level * 100.0),
        ci_method_name(first.ci_method.as_str())
    );
    if let Some(series) = ind.and_then(|i| i.sdg_series.as_deref()) {
        let _ = write!(about, "; SDG series {series}");
    }
    let _ = write!(s, "<p class=\"note\">{}</p>", escape(&about));
    let unit_text = if percent {
        "percent".to_string()
    } else {
        unit.clone()
    };
    let est_head = if unit.is_empty() {
        "Estimate".to_string()
    } else {
        format!("Estimate ({})", unit)
    };
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
        let class = match r.flag {
            Flag::Suppressed => " class=\"suppressed\"",
            Flag::Caution => " class=\"caution\"",
            _ => "",
        };
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
        let _ = write!(
            s,
            "<tr{class}><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{flag}</td></tr>",
            if r.domain_var == TOTAL {
                "<b>Total</b>".to_string()
            } else {
                escape(&value_label)
            },
            escape(&est),
            escape(&ci),
            escape(&fmt(scale(r.se), d + 1)),
            escape(&fmt(r.cv.map(|v| v * 100.0), 1)),
            r.n_unweighted,
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
    s.push_str(&chart(&chart_rows, percent, &unit_text));
    s.push_str(
        "<p class=\"note\">Dots: estimates; whiskers: confidence intervals; dashed line: whole population; hollow orange dots: use with caution; suppressed cells have no dot.</p>",
    );
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
    for id in ids {
        let cells: Vec<&EstimateRow> = shown
            .iter()
            .copied()
            .filter(|r| r.indicator == id)
            .collect();
        indicator_section(&mut s, id, &cells, ctx);
    }

    if !ctx.contrasts.is_empty() {
        changes_section(&mut s, ctx);
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
        for (k, n) in &ctx.findings_by_kind {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{n}</td><td class=\"l\">{}</td></tr>",
                escape(k.as_str()),
                if k.quarantines() {
                    "row quarantined"
                } else {
                    "row kept"
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
            Some(c) => format!("nonresponse adjustment within classes of {}", c.join(" × ")),
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
