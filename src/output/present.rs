//! How estimates read in the publication products: numbers written compactly, methods named in
//! words, domains by their code labels (crossed domains as their parts joined by ×), the
//! categories of a distribution by their labels and the probabilities of a quantile by name,
//! each indicator on its display scale (percent for shares), and which rows a table shows.
//!
//! `sdmx.csv`, `tables.xlsx` and `report.html` share these so that the same cell reads the same
//! in every product.

use crate::estimate::{EstimateRow, TOTAL, TestRow};
use crate::questionnaire::{Indicator, IndicatorKind, Questionnaire};

/// Separator of the variables of a crossed domain (`sex:age_group`) and of their codes (`1:2`).
pub const CROSS: char = ':';

/// Numbers in SDMX and in the text of the products: up to 6 decimals, trailing zeros dropped.
pub fn number(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Readable name of an interval method.
pub fn ci_method_name(method: &str) -> String {
    match method {
        "beta" => "Korn-Graubard (beta)".into(),
        "logit" => "logit".into(),
        "xlogit" => "logit (xlogit)".into(),
        "mean" => "Wald, t quantile".into(),
        "normal" => "Wald, normal quantile".into(),
        "asin" => "arcsine square root".into(),
        "wilson" => "Wilson".into(),
        "woodruff" => "Woodruff".into(),
        "quantile" => "replicate quantiles".into(),
        other => other.into(),
    }
}

/// Readable variance method.
pub fn variance_name(v: &str) -> String {
    match v {
        "taylor" => "Taylor linearization".into(),
        other => other.into(),
    }
}

/// Label of a domain variable and of one of its values, from the questionnaire. A crossed domain
/// (`sex:age_group`, `1:2`) reads as its parts joined by ` × ` (`Sex × Age group`,
/// `Male × 18-29`).
pub fn domain_labels(q: &Questionnaire, var: &str, value: &str) -> (String, String) {
    if var == TOTAL {
        return ("Total".into(), "Total".into());
    }
    let vars: Vec<&str> = var.split(CROSS).collect();
    let values: Vec<&str> = value.split(CROSS).collect();
    // A code containing the separator would split wrongly: then the value is shown as written.
    if vars.len() > 1 && vars.len() == values.len() {
        let parts: Vec<(String, String)> = vars
            .iter()
            .zip(&values)
            .map(|(v, c)| variable_labels(q, v, c))
            .collect();
        let join = |pick: fn(&(String, String)) -> &str| {
            parts.iter().map(pick).collect::<Vec<_>>().join(" × ")
        };
        return (join(|p| &p.0), join(|p| &p.1));
    }
    if vars.len() > 1 {
        let labels: Vec<String> = vars.iter().map(|v| variable_label(q, v)).collect();
        return (labels.join(" × "), value.to_string());
    }
    variable_labels(q, var, value)
}

/// A variable's label (or a derived variable's), its name when the questionnaire has neither.
pub fn variable_label(q: &Questionnaire, var: &str) -> String {
    variable_labels(q, var, "").0
}

fn variable_labels(q: &Questionnaire, var: &str, value: &str) -> (String, String) {
    let (label, codes) = match (q.variable(var), q.derived_variable(var)) {
        (Some(v), _) => (v.label.clone(), v.codes.as_slice()),
        (None, Some(d)) => (d.label.clone(), d.codes.as_slice()),
        (None, None) => (var.to_string(), &[][..]),
    };
    let value_label = codes
        .iter()
        .find(|c| c.code == value)
        .map(|c| c.label.clone())
        .unwrap_or_else(|| value.to_string());
    (label, value_label)
}

/// A quantile's probability (as written in the `category` column) by name: `Median`,
/// `25th percentile`; the text itself when it is not a probability.
pub fn quantile_name(prob: &str) -> String {
    let Ok(p) = prob.parse::<f64>() else {
        return prob.to_string();
    };
    if p == 0.5 {
        return "Median".into();
    }
    let pct = number(p * 100.0);
    // English ordinals: 1st, 2nd, 3rd, but 11th-13th, and 12.5th.
    let suffix = match pct.parse::<u64>() {
        Ok(n) if (11..=13).contains(&(n % 100)) => "th",
        Ok(n) if n % 10 == 1 => "st",
        Ok(n) if n % 10 == 2 => "nd",
        Ok(n) if n % 10 == 3 => "rd",
        _ => "th",
    };
    format!("{pct}{suffix} percentile")
}

/// The rule reading a quantile off the weighted distribution function, in words.
pub fn quantile_rule_name(rule: &str) -> String {
    match rule {
        "math" => {
            "smallest value whose cumulative weight share reaches p (R qrule \"math\")".into()
        }
        "hf7" => {
            "interpolation between order statistics (R qrule \"hf7\", Hyndman-Fan type 7)".into()
        }
        other => other.into(),
    }
}

/// The columns of a distribution's or quantile's table: each category code (or probability)
/// with its label, in the questionnaire's order, then any other code the rows have (an
/// indicator the questionnaire does not declare shows its codes as written).
pub fn category_columns(ind: Option<&Indicator>, cells: &[&EstimateRow]) -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = Vec::new();
    if let Some(i) = ind {
        match i.kind {
            IndicatorKind::Quantile => {
                for p in i.quantile.iter().flat_map(|q| &q.probs) {
                    let code = format!("{p}");
                    let label = quantile_name(&code);
                    columns.push((code, label));
                }
            }
            _ => {
                for part in &i.categories {
                    if let Some(c) = &part.category {
                        columns.push((c.code.clone(), c.label.clone()));
                    }
                }
            }
        }
    }
    let quantile = ind.is_some_and(|i| i.kind == IndicatorKind::Quantile);
    for r in cells {
        if let Some(code) = &r.category
            && !columns.iter().any(|(c, _)| c == code)
        {
            let label = if quantile {
                quantile_name(code)
            } else {
                code.clone()
            };
            columns.push((code.clone(), label));
        }
    }
    columns
}

/// One domain of a distribution's or quantile's table: its cell in each column (none where
/// the estimates have no such row).
#[derive(Debug, Clone, PartialEq)]
pub struct DomainCells<'a> {
    /// Domain variable (`_T` for the whole population).
    pub var: &'a str,
    /// Domain value.
    pub value: &'a str,
    /// The row of each column of [`category_columns`], in that order.
    pub cells: Vec<Option<&'a EstimateRow>>,
}

/// The rows of one indicator, weighting and variance method laid out by domain (in the order
/// the domains first appear) and category (in `columns` order). The first row of each
/// domain × category is kept, as [`table_rows`] keeps the first interval method.
pub fn by_domain<'a>(
    cells: &[&'a EstimateRow],
    columns: &[(String, String)],
) -> Vec<DomainCells<'a>> {
    let mut out: Vec<DomainCells<'a>> = Vec::new();
    for r in cells {
        let Some(k) = columns
            .iter()
            .position(|(c, _)| Some(c.as_str()) == r.category.as_deref())
        else {
            continue;
        };
        let i = match out
            .iter()
            .position(|d| d.var == r.domain_var && d.value == r.domain_value)
        {
            Some(i) => i,
            None => {
                out.push(DomainCells {
                    var: &r.domain_var,
                    value: &r.domain_value,
                    cells: vec![None; columns.len()],
                });
                out.len() - 1
            }
        };
        if out[i].cells[k].is_none() {
            out[i].cells[k] = Some(r);
        }
    }
    out
}

/// How an indicator's numbers are shown: the factor applied to estimate and SE, and the unit
/// text (`%` for proportions, whatever their multiplier).
pub fn display_scale(ind: Option<&Indicator>) -> (f64, String) {
    match ind {
        Some(i) if i.estimates_shares() => {
            let m = if i.multiplier != 0.0 {
                i.multiplier
            } else {
                1.0
            };
            (100.0 / m, "%".into())
        }
        Some(i) => (1.0, i.unit.clone().unwrap_or_default()),
        None => (1.0, String::new()),
    }
}

/// The cells shown in tables: for each indicator × weighting × domain × category, the first row
/// (first variance method, first interval method). The category keeps a distribution's parts
/// and a quantile's probabilities apart.
pub fn table_rows(rows: &[EstimateRow]) -> Vec<&EstimateRow> {
    let variance = rows.first().map(|r| r.variance.as_str());
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .filter(|r| Some(r.variance.as_str()) == variance)
        .filter(|r| {
            seen.insert((
                r.indicator.as_str(),
                r.weighting.as_str(),
                r.domain_var.as_str(),
                r.domain_value.as_str(),
                r.category.as_deref(),
            ))
        })
        .collect()
}

/// The two statistics of one test × weighting × variance method.
pub struct TestGroup<'a> {
    /// `rao_scott_f`.
    pub f: Option<&'a TestRow>,
    /// `rao_scott_chisq`.
    pub chisq: Option<&'a TestRow>,
}

/// Tests grouped by test × weighting × variance method, in the order they first appear.
pub fn test_groups(rows: &[TestRow]) -> Vec<TestGroup<'_>> {
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    let mut groups: Vec<TestGroup<'_>> = Vec::new();
    for r in rows {
        let key = (r.test.as_str(), r.weighting.as_str(), r.variance.as_str());
        let i = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                groups.push(TestGroup {
                    f: None,
                    chisq: None,
                });
                keys.len() - 1
            }
        };
        let slot = if r.statistic == "rao_scott_chisq" {
            &mut groups[i].chisq
        } else {
            &mut groups[i].f
        };
        slot.get_or_insert(r);
    }
    groups
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A questionnaire with a single-choice and a multiple-response distribution and a quantile,
    /// for the table builders' tests.
    pub(crate) fn toml_questionnaire() -> Questionnaire {
        let text = r#"
[questionnaire]
id = "t"
version = "1"
title = "Test"

[[variables]]
name = "sex"
label = "Sex"
codes = { 1 = "Male", 2 = "Female" }

[[variables]]
name = "age_group"
label = "Age group"
codes = { 1 = "18-29", 2 = "30+" }

[[variables]]
name = "safe"
label = "Feels safe"
codes = { 1 = "Safe", 2 = "Unsafe" }

[[variables]]
name = "paid_police"
label = "Paid the police"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "paid_courts"
label = "Paid the courts"
codes = { 1 = "Yes", 2 = "No" }

[[variables]]
name = "income"
label = "Income"
type = "numeric"

[[indicators]]
id = "safety"
label = "Feeling safe"
kind = "distribution"
value = "safe"

[[indicators]]
id = "paid"
label = "Officials paid"
kind = "distribution"
items = ["paid_police", "paid_courts"]
count = "== 1"

[[indicators]]
id = "income_q"
label = "Income quartiles"
kind = "quantile"
value = "income"
probs = [0.25, 0.5]
qrule = "hf7"
"#;
        Questionnaire::from_toml_str(text, std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.1234564), "0.123456");
        assert_eq!(number(-0.0000001), "0");
    }

    /// A publication context over `q` with the given tests, for the products' tests.
    pub(crate) fn context<'a>(
        q: &'a Questionnaire,
        tests: &'a [TestRow],
    ) -> crate::output::context::PublicationContext<'a> {
        crate::output::context::PublicationContext {
            questionnaire: q,
            title: "Test".into(),
            reference_period: "2025".into(),
            tool_version: "test".into(),
            data_file: "data.csv".into(),
            data_sha256: "0".repeat(64),
            rows_read: 10,
            rows_used: 10,
            rows_quarantined: 0,
            respondents: 10,
            findings_by_kind: Default::default(),
            first_findings: Vec::new(),
            design: Default::default(),
            schemes: Vec::new(),
            variance_methods: vec!["taylor".into()],
            ci_level: 0.95,
            ci_methods: vec!["logit".into()],
            domain_df: "subset".into(),
            provenance: Vec::new(),
            contrasts: &[],
            tests,
            fieldwork: None,
        }
    }

    /// Rows of `indicator` for each (domain, category, estimate).
    pub(crate) fn rows_of(
        indicator: &str,
        cells: &[((&str, &str), &str, f64)],
    ) -> Vec<EstimateRow> {
        cells
            .iter()
            .map(|&(domain, category, estimate)| {
                let mut r = row(domain, Some(category), "logit");
                r.indicator = indicator.into();
                r.estimate = Some(estimate);
                r.ci_low = Some(estimate * 0.9);
                r.ci_high = Some(estimate * 1.1);
                r
            })
            .collect()
    }

    pub(crate) fn row(domain: (&str, &str), category: Option<&str>, ci: &str) -> EstimateRow {
        EstimateRow {
            indicator: "safety".into(),
            weighting: "design".into(),
            variance: crate::estimate::VarianceMethod::Taylor,
            domain_var: domain.0.into(),
            domain_value: domain.1.into(),
            category: category.map(str::to_string),
            estimate: Some(0.25),
            se: Some(0.01),
            ci_low: Some(0.23),
            ci_high: Some(0.27),
            ci_method: ci.parse().expect("interval method"),
            df: Some(10.0),
            cv: Some(0.04),
            deff: None,
            n_unweighted: 120,
            n_weighted: 1000.0,
            n_effective: None,
            item_missing_share: None,
            flag: crate::estimate::Flag::Reliable,
            flag_reason: String::new(),
            level: crate::questionnaire::Level::Person,
        }
    }

    #[test]
    fn categories_of_one_domain_are_separate_cells() {
        let rows = vec![
            row(("_T", "_T"), Some("1"), "logit"),
            row(("_T", "_T"), Some("1"), "beta"),
            row(("_T", "_T"), Some("2"), "logit"),
            row(("_T", "_T"), Some("2"), "beta"),
            row(("sex", "1"), Some("1"), "logit"),
            row(("sex", "1"), Some("2"), "logit"),
        ];
        let shown = table_rows(&rows);
        assert_eq!(shown.len(), 4, "one cell per domain and category");
        let codes: Vec<Option<&str>> = shown.iter().map(|r| r.category.as_deref()).collect();
        assert_eq!(codes, [Some("1"), Some("2"), Some("1"), Some("2")]);
        let columns = category_columns(None, &shown);
        assert_eq!(
            columns,
            [("1".into(), "1".into()), ("2".into(), "2".into())]
        );
        let table = by_domain(&shown, &columns);
        assert_eq!(table.len(), 2);
        assert_eq!((table[1].var, table[1].value), ("sex", "1"));
        assert!(table.iter().all(|d| d.cells.iter().all(Option::is_some)));
        assert_eq!(
            table[1].cells[1].and_then(|r| r.category.as_deref()),
            Some("2")
        );
    }

    #[test]
    fn probabilities_read_as_percentiles() {
        assert_eq!(quantile_name("0.5"), "Median");
        assert_eq!(quantile_name("0.25"), "25th percentile");
        assert_eq!(quantile_name("0.01"), "1st percentile");
        assert_eq!(quantile_name("0.02"), "2nd percentile");
        assert_eq!(quantile_name("0.03"), "3rd percentile");
        assert_eq!(quantile_name("0.11"), "11th percentile");
        assert_eq!(quantile_name("0.125"), "12.5th percentile");
        assert_eq!(quantile_name("x"), "x");
    }

    #[test]
    fn crossed_domains_read_as_their_parts() {
        let q: Questionnaire = toml_questionnaire();
        assert_eq!(
            domain_labels(&q, "sex:age_group", "2:1"),
            ("Sex × Age group".into(), "Female × 18-29".into())
        );
        assert_eq!(
            domain_labels(&q, "sex:age_group", "2"),
            ("Sex × Age group".into(), "2".into())
        );
        assert_eq!(domain_labels(&q, "sex", "1"), ("Sex".into(), "Male".into()));
    }
}
