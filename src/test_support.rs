//! Fixture loaders shared by the unit tests: CSV text into rows, rows into a [`Frame`], and the
//! demo survey.

use std::path::Path;

use crate::config::Pipeline;
use crate::design::{Design, DesignSpec};
use crate::frame::{CellState, Column, ColumnData, Frame};
use crate::ingest::Ingested;
use crate::pipeline::RunOptions;
use crate::questionnaire::Questionnaire;
use crate::weighting::{CalibrationMethodName, Scheme, TrimConfig, TrimTarget, WeightingSpec};

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
            Some(v) => ColumnData::Num(v.into()),
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

// The demo survey, for the tests that check the estimators on sums against the same estimators
// row by row (`estimate::calibrated_sums_tests`, `replicates::stage_tests`).

/// The demo survey (`fixtures/demo/`) as a run reads it.
pub(crate) struct Demo {
    pub p: Pipeline,
    pub q: Questionnaire,
    pub ingested: Ingested,
}

pub(crate) fn demo() -> Demo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/pipeline.toml");
    let (p, q) = crate::pipeline::prepare(&path).expect("demo config");
    let ingested = crate::pipeline::read_data(&p, &q, RunOptions::default()).expect("demo data");
    Demo { p, q, ingested }
}

/// One scheme per calibration method and option that changes the residuals or the weights.
pub(crate) fn calibrated_specs(p: &Pipeline) -> Vec<WeightingSpec> {
    let find = |name: &str| {
        p.weighting
            .iter()
            .find(|w| w.name == name)
            .expect("demo scheme")
            .clone()
    };
    let raked = find("raked");
    let variant = |name: &str,
                   method: CalibrationMethodName,
                   bounds: Option<(f64, f64)>,
                   trim: Option<TrimConfig>| {
        let mut s = raked.clone();
        s.name = name.to_string();
        let c = s.calibration.as_mut().expect("calibrated");
        c.method = method;
        c.bounds = bounds;
        c.trim = trim;
        s
    };
    vec![
        variant("raking", CalibrationMethodName::Raking, None, None),
        variant("linear", CalibrationMethodName::Linear, None, None),
        variant(
            "truncated",
            CalibrationMethodName::Truncated,
            Some((0.5, 2.0)),
            None,
        ),
        variant(
            "logit",
            CalibrationMethodName::Logit,
            Some((0.4, 2.2)),
            None,
        ),
        variant(
            "raking_trim_g",
            CalibrationMethodName::Raking,
            None,
            Some(TrimConfig {
                lower: 0.8,
                upper: 1.5,
                on: TrimTarget::G,
                strict: false,
            }),
        ),
        variant(
            "linear_trim_weights",
            CalibrationMethodName::Linear,
            None,
            Some(TrimConfig {
                lower: 100.0,
                upper: 400.0,
                on: TrimTarget::Weights,
                strict: true,
            }),
        ),
        variant("rake", CalibrationMethodName::Rake, None, None),
        find("poststrat"),
        find("design"),
    ]
}

/// Respondents of the demo; with `lonely`, the first stratum keeps one PSU only.
pub(crate) fn respondents(d: &Demo, lonely: bool) -> Vec<usize> {
    let frame = &d.ingested.frame;
    let all: Vec<usize> = (0..frame.n_rows())
        .filter(|&r| d.ingested.respondent[r])
        .collect();
    if !lonely {
        return all;
    }
    let stratum = frame.column("stratum").expect("stratum");
    let psu = frame.column("psu").expect("psu");
    let first = all[0];
    let (h0, p0) = (stratum.display(first), psu.display(first));
    all.into_iter()
        .filter(|&r| stratum.display(r) != h0 || psu.display(r) == p0)
        .collect()
}

/// The demo's design over `respondents` (as `spec` draws it) and its weighting schemes `specs`.
pub(crate) fn design_and_schemes(
    d: &Demo,
    respondents: &[usize],
    spec: &DesignSpec,
    specs: &[WeightingSpec],
) -> (Design, Vec<Scheme>) {
    let base_weights = crate::pipeline::numeric_column(&d.ingested, &spec.weight);
    let design = Design::build(&d.ingested.frame, respondents, spec).expect("design");
    let schemes = crate::weighting::compute(
        &d.ingested.frame,
        &d.ingested.row_numbers,
        &base_weights,
        respondents,
        None,
        specs,
    )
    .expect("schemes");
    (design, schemes)
}

/// |a − b| / max(|a|, |b|); 0 when both are absent, infinite when one is.
fn rel_opt(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (None, None) => 0.0,
        (Some(a), Some(b)) if a == b => 0.0,
        (Some(a), Some(b)) => (a - b).abs() / a.abs().max(b.abs()),
        _ => f64::INFINITY,
    }
}

/// The two paths give the same rows: identical df and counts, estimates (and weighted counts
/// when `same_weighted_n`) within 1e-13 relative (the sums are added in a different order), and
/// SEs, interval ends and deffs within `tol` relative.
pub(crate) fn assert_same_rows(
    fast: &[crate::estimate::EstimateRow],
    rows: &[crate::estimate::EstimateRow],
    tol: f64,
    same_weighted_n: bool,
    context: &str,
) {
    assert_eq!(fast.len(), rows.len());
    for (a, b) in fast.iter().zip(rows) {
        let what = format!(
            "{} {} {}={} {} ({context})",
            a.indicator, a.weighting, a.domain_var, a.domain_value, a.ci_method
        );
        assert_eq!(
            (&a.indicator, &a.weighting, &a.domain_var, &a.domain_value),
            (&b.indicator, &b.weighting, &b.domain_var, &b.domain_value)
        );
        assert!(
            rel_opt(a.estimate, b.estimate) < 1e-13,
            "{what}: {:?} vs {:?}",
            a.estimate,
            b.estimate
        );
        assert_eq!(a.df, b.df, "{what}");
        assert_eq!(a.n_unweighted, b.n_unweighted, "{what}");
        if same_weighted_n {
            let (x, y) = (Some(a.n_weighted), Some(b.n_weighted));
            assert!(rel_opt(x, y) < 1e-13, "{what}: {x:?} vs {y:?}");
        }
        for (x, y) in [
            (a.se, b.se),
            (a.ci_low, b.ci_low),
            (a.ci_high, b.ci_high),
            (a.deff, b.deff),
        ] {
            assert!(rel_opt(x, y) < tol, "{what}: {x:?} vs {y:?}");
        }
    }
}

/// What estimation receives for every indicator of `q`: distributions as their parts
/// (proportions), quantiles as they are (their own path through the same sums).
pub(crate) fn estimated_indicators(
    q: &crate::questionnaire::Questionnaire,
) -> Vec<&crate::questionnaire::Indicator> {
    q.indicators
        .iter()
        .flat_map(crate::questionnaire::Indicator::estimated)
        .collect()
}

/// Linearized scores of a weighted domain mean (zero outside `dom`) and the mean itself.
pub(crate) fn mean_scores(w: &[f64], y: &[f64], dom: &[bool]) -> (f64, Vec<f64>) {
    let n_hat: f64 = (0..w.len()).filter(|&i| dom[i]).map(|i| w[i]).sum();
    let m = (0..w.len())
        .filter(|&i| dom[i])
        .map(|i| w[i] * y[i])
        .sum::<f64>()
        / n_hat;
    (
        m,
        (0..w.len())
            .map(|i| {
                if dom[i] {
                    w[i] * (y[i] - m) / n_hat
                } else {
                    0.0
                }
            })
            .collect(),
    )
}

/// Scores of a weighted domain total (zero outside `dom`).
pub(crate) fn total_scores(w: &[f64], y: &[f64], dom: &[bool]) -> Vec<f64> {
    (0..w.len())
        .map(|i| if dom[i] { w[i] * y[i] } else { 0.0 })
        .collect()
}
