//! How estimates read in the publication products: numbers written compactly, methods named in
//! words, domains by their code labels, each indicator on its display scale (percent for
//! proportions), and which rows a table shows.
//!
//! `sdmx.csv`, `tables.xlsx` and `report.html` share these so that the same cell reads the same
//! in every product.

use crate::estimate::{EstimateRow, TOTAL};
use crate::questionnaire::{Indicator, Questionnaire};

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

/// Label of a domain variable and of one of its values, from the questionnaire.
pub fn domain_labels(q: &Questionnaire, var: &str, value: &str) -> (String, String) {
    if var == TOTAL {
        return ("Total".into(), "Total".into());
    }
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

/// The cells shown in tables: for each indicator × weighting × domain, the first row (first
/// variance method, first interval method).
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
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.1234564), "0.123456");
        assert_eq!(number(-0.0000001), "0");
    }
}
