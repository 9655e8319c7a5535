//! `cvsurvey show OUT_DIR`: the estimates of a finished run as an aligned table on the terminal,
//! read back from `estimates.parquet`, so that a user needs no Parquet reader to see results.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::OutputError;
use crate::estimate::ci::CiMethod;
use crate::estimate::{EstimateRow, Flag, VarianceMethod};

/// Which rows to print.
#[derive(Debug, Clone, Default)]
pub struct ShowFilter {
    /// Only this indicator.
    pub indicator: Option<String>,
    /// Only the whole population and this domain variable (`_T` alone: the whole population).
    pub domain: Option<String>,
    /// Only this weighting scheme.
    pub weighting: Option<String>,
    /// Only this interval method (default: the first one of each estimate).
    pub ci: Option<String>,
}

/// Read `estimates.parquet` back into rows.
pub fn read_estimates(path: &Path) -> Result<Vec<EstimateRow>, OutputError> {
    let err = |message: String| OutputError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| OutputError::Io {
        path: path.to_path_buf(),
        message: format!("{e}; run `cvsurvey run CONFIG` first, or give the run's output folder"),
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| err(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| err(e.to_string()))?;
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                err(format!(
                    "no column {name}: not an estimates file of cvsurvey"
                ))
            })
        };
        let text = |name: &str| -> Result<_, OutputError> {
            column(name)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| err(format!("column {name} is not text")))
        };
        let number = |name: &str| -> Result<_, OutputError> {
            column(name)?
                .as_primitive_opt::<Float64Type>()
                .cloned()
                .ok_or_else(|| err(format!("column {name} is not a float")))
        };
        let (indicator, weighting, variance) =
            (text("indicator")?, text("weighting")?, text("variance")?);
        let (domain_var, domain_value, ci_method) = (
            text("domain_var")?,
            text("domain_value")?,
            text("ci_method")?,
        );
        let (flag, flag_reason) = (text("flag")?, text("flag_reason")?);
        // Files written before distributions and quantiles have no category column.
        let category = batch
            .column_by_name("category")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        let (estimate, se, ci_low, ci_high) = (
            number("estimate")?,
            number("se")?,
            number("ci_low")?,
            number("ci_high")?,
        );
        let (df, cv, deff, n_weighted, n_effective) = (
            number("df")?,
            number("cv")?,
            number("deff")?,
            number("n_weighted")?,
            number("n_effective")?,
        );
        // Files of one unit have no level column: their rows are persons.
        let level = batch
            .column_by_name("level")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        // Files written before item-level editing have no item_missing_share column.
        let item_missing_share = batch
            .column_by_name("item_missing_share")
            .and_then(|c| c.as_primitive_opt::<Float64Type>().cloned());
        let n_unweighted = column("n_unweighted")?
            .as_primitive_opt::<Int64Type>()
            .cloned()
            .ok_or_else(|| err("column n_unweighted is not an integer".into()))?;
        let opt = |a: &arrow_array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        // These columns hold only the names cvsurvey writes; any other text is not its file.
        let unknown = |name: &str, value: &str| {
            err(format!(
                "column {name} has \"{value}\", which cvsurvey does not write: not an estimates file of cvsurvey"
            ))
        };
        for i in 0..batch.num_rows() {
            rows.push(EstimateRow {
                indicator: indicator.value(i).to_string(),
                weighting: weighting.value(i).to_string(),
                variance: VarianceMethod::from_name(variance.value(i))
                    .ok_or_else(|| unknown("variance", variance.value(i)))?,
                domain_var: domain_var.value(i).to_string(),
                domain_value: domain_value.value(i).to_string(),
                category: category
                    .as_ref()
                    .filter(|c| !c.is_null(i))
                    .map(|c| c.value(i).to_string()),
                estimate: opt(&estimate, i),
                se: opt(&se, i),
                ci_low: opt(&ci_low, i),
                ci_high: opt(&ci_high, i),
                ci_method: ci_method
                    .value(i)
                    .parse::<CiMethod>()
                    .map_err(|_| unknown("ci_method", ci_method.value(i)))?,
                df: opt(&df, i),
                cv: opt(&cv, i),
                deff: opt(&deff, i),
                n_unweighted: n_unweighted.value(i),
                n_weighted: n_weighted.value(i),
                n_effective: opt(&n_effective, i),
                item_missing_share: item_missing_share.as_ref().and_then(|a| opt(a, i)),
                flag: Flag::from_name(flag.value(i))
                    .ok_or_else(|| unknown("flag", flag.value(i)))?,
                flag_reason: flag_reason.value(i).to_string(),
                level: level
                    .as_ref()
                    .and_then(|c| crate::questionnaire::Level::from_name(c.value(i)))
                    .unwrap_or_default(),
            });
        }
    }
    Ok(rows)
}

/// The rows `filter` keeps: one interval method per estimate (the one asked for, else the first
/// in the file), in file order.
pub fn select<'a>(rows: &'a [EstimateRow], filter: &ShowFilter) -> Vec<&'a EstimateRow> {
    let mut kept: Vec<&EstimateRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        let wanted = filter.indicator.as_ref().is_none_or(|i| *i == r.indicator)
            && filter.weighting.as_ref().is_none_or(|w| *w == r.weighting)
            && filter
                .domain
                .as_ref()
                .is_none_or(|d| r.domain_var == crate::estimate::TOTAL || *d == r.domain_var)
            && filter
                .ci
                .as_ref()
                .is_none_or(|c| *c == r.ci_method.as_str());
        if !wanted {
            continue;
        }
        let estimate = (
            &r.indicator,
            &r.weighting,
            r.variance.as_str(),
            &r.domain_var,
            &r.domain_value,
            r.category.as_deref(),
        );
        if seen.insert(estimate) {
            kept.push(r);
        }
    }
    kept
}

/// Aligned table of `rows`: estimate, interval, SE, CV, unweighted n and flag; a category
/// column (a distribution's category or item, a quantile's probability) when a row has one.
pub fn table(rows: &[&EstimateRow]) -> String {
    let number = |x: Option<f64>| match x {
        None => "-".to_string(),
        Some(v) if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) => format!("{v:.4e}"),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.4}"),
    };
    let with_category = rows.iter().any(|r| r.category.is_some());
    let mut header = vec!["indicator", "weighting", "variance", "domain"];
    if with_category {
        header.push("category");
    }
    header.extend(["estimate", "ci", "se", "cv", "n", "flag"]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let domain = if r.domain_var == crate::estimate::TOTAL {
                "total".to_string()
            } else {
                format!("{}={}", r.domain_var, r.domain_value)
            };
            let ci = match (r.ci_low, r.ci_high) {
                (Some(l), Some(h)) => {
                    format!(
                        "[{}, {}] {}",
                        number(Some(l)),
                        number(Some(h)),
                        r.ci_method.as_str()
                    )
                }
                _ => format!("- {}", r.ci_method.as_str()),
            };
            let cv =
                r.cv.map_or("-".to_string(), |c| format!("{:.1}%", 100.0 * c));
            let mut row = vec![
                r.indicator.clone(),
                r.weighting.clone(),
                r.variance.as_str().to_string(),
                domain,
            ];
            if with_category {
                row.push(r.category.clone().unwrap_or_default());
            }
            row.extend([
                number(r.estimate),
                ci,
                number(r.se),
                cv,
                r.n_unweighted.to_string(),
                r.flag.as_str().to_string(),
            ]);
            row
        })
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Text columns to the left, numbers to the right.
    let numeric: Vec<bool> = header
        .iter()
        .map(|h| matches!(*h, "estimate" | "se" | "cv" | "n"))
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for (k, c) in row.iter().enumerate() {
            let pad = width[k] - c.chars().count();
            if k > 0 {
                text.push_str("  ");
            }
            if numeric[k] {
                text.push_str(&" ".repeat(pad));
                text.push_str(c);
            } else {
                text.push_str(c);
                text.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    line(&mut out, &header);
    for row in &cells {
        line(&mut out, row);
    }
    out
}

/// Read `dir/estimates.parquet`, keep the rows `filter` asks for and lay them out; an error
/// when the filter keeps nothing, naming what the file has.
pub fn show(dir: &Path, filter: &ShowFilter) -> Result<String, OutputError> {
    let path = dir.join("estimates.parquet");
    let rows = read_estimates(&path)?;
    let kept = select(&rows, filter);
    if kept.is_empty() {
        let mut have: Vec<String> = Vec::new();
        let mut list = |label: &str, values: Vec<&str>| {
            let mut v = values;
            v.sort_unstable();
            v.dedup();
            have.push(format!("{label}: {}", v.join(", ")));
        };
        list(
            "indicators",
            rows.iter().map(|r| r.indicator.as_str()).collect(),
        );
        list(
            "domains",
            rows.iter().map(|r| r.domain_var.as_str()).collect(),
        );
        list(
            "weighting",
            rows.iter().map(|r| r.weighting.as_str()).collect(),
        );
        list("ci", rows.iter().map(|r| r.ci_method.as_str()).collect());
        return Err(OutputError::Io {
            path,
            message: format!("no estimate matches; the file has {}", have.join("; ")),
        });
    }
    Ok(table(&kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(indicator: &str, domain: (&str, &str), ci: &str, estimate: f64) -> EstimateRow {
        EstimateRow {
            indicator: indicator.into(),
            weighting: "design".into(),
            variance: VarianceMethod::Taylor,
            domain_var: domain.0.into(),
            domain_value: domain.1.into(),
            category: None,
            estimate: Some(estimate),
            se: Some(0.01),
            ci_low: Some(estimate - 0.02),
            ci_high: Some(estimate + 0.02),
            ci_method: ci.parse().expect("interval method"),
            df: Some(10.0),
            cv: Some(0.01 / estimate),
            deff: None,
            n_unweighted: 120,
            n_weighted: 1000.0,
            n_effective: None,
            item_missing_share: None,
            flag: Flag::Reliable,
            flag_reason: String::new(),
            level: crate::questionnaire::Level::Person,
        }
    }

    #[test]
    fn one_interval_per_estimate_and_filters_keep_the_whole_population() {
        let rows = vec![
            row("a", ("_T", "_T"), "logit", 0.3),
            row("a", ("_T", "_T"), "beta", 0.3),
            row("a", ("sex", "1"), "logit", 0.25),
            row("a", ("sex", "1"), "beta", 0.25),
            row("a", ("region", "R1"), "logit", 0.35),
            row("b", ("_T", "_T"), "logit", 0.5),
        ];
        let all = select(&rows, &ShowFilter::default());
        assert_eq!(all.len(), 4, "first interval method of each estimate");
        assert!(all.iter().all(|r| r.ci_method == CiMethod::Logit));
        let filter = ShowFilter {
            indicator: Some("a".into()),
            domain: Some("sex".into()),
            ci: Some("beta".into()),
            ..ShowFilter::default()
        };
        let kept = select(&rows, &filter);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].domain_var, "_T");
        assert_eq!(kept[1].domain_value, "1");
        let text = table(&kept);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].contains("total") && lines[2].contains("sex=1"),
            "{text}"
        );
        assert!(lines[2].contains("[0.2300, 0.2700] beta"), "{text}");
        assert!(lines[2].contains("4.0%"), "{text}");
        // Columns line up: the estimate column ends at the same place on every line.
        let end = |l: &str| l.find("0.2500").or(l.find("0.3000")).map(|p| p + 6);
        assert_eq!(end(lines[1]), end(lines[2]), "{text}");
    }

    #[test]
    fn categories_are_estimates_of_their_own_and_shown() {
        let mut rows = vec![
            row("dist", ("_T", "_T"), "logit", 0.3),
            row("dist", ("_T", "_T"), "beta", 0.3),
            row("dist", ("_T", "_T"), "logit", 0.7),
            row("dist", ("_T", "_T"), "beta", 0.7),
        ];
        for (r, code) in rows.iter_mut().zip(["1", "1", "2", "2"]) {
            r.category = Some(code.into());
        }
        let kept = select(&rows, &ShowFilter::default());
        assert_eq!(kept.len(), 2, "one interval method per category");
        let text = table(&kept);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("domain  category  estimate"), "{text}");
        assert!(
            lines[1].contains("total   1") && lines[2].contains("total   2"),
            "{text}"
        );
        let plain = table(&[&row("a", ("_T", "_T"), "logit", 0.3)]);
        assert!(!plain.contains("category"), "{plain}");
    }

    #[test]
    fn flags_and_variance_methods_read_back_as_written() {
        for flag in Flag::ALL {
            assert_eq!(Flag::from_name(flag.as_str()), Some(flag));
        }
        for (method, _) in VarianceMethod::ALL {
            assert_eq!(VarianceMethod::from_name(method.as_str()), Some(method));
        }
        assert_eq!(Flag::from_name("Caution"), None);
        assert_eq!(VarianceMethod::from_name("jackknife"), None);
    }
}
