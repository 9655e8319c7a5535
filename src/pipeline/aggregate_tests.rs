//! The estimators computed on sums (calibration residuals by PSU and domain, replicates on
//! the PSU × cell table) against the same estimators computed row by row, on the demo survey:
//! every calibration method, domains, lonely PSUs.

use super::*;
use crate::design::LonelyPsu;
use crate::estimate::DomainDf;
use crate::weighting::{CalibrationMethodName, TrimConfig, TrimTarget, WeightingSpec};

struct Demo {
    p: Pipeline,
    q: Questionnaire,
    ingested: Ingested,
}

fn demo() -> Demo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/pipeline.toml");
    let (p, q) = prepare(&path).expect("demo config");
    let ingested = read_data(&p, &q, RunOptions::default()).expect("demo data");
    Demo { p, q, ingested }
}

/// One scheme per calibration method and option that changes the residuals or the weights.
fn calibrated_specs(p: &Pipeline) -> Vec<WeightingSpec> {
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
fn respondents(d: &Demo, lonely: bool) -> Vec<usize> {
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

fn rel(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (None, None) => 0.0,
        (Some(a), Some(b)) if a == b => 0.0,
        (Some(a), Some(b)) => (a - b).abs() / a.abs().max(b.abs()),
        _ => f64::INFINITY,
    }
}

#[test]
fn calibrated_taylor_on_sums_equals_row_residuals() {
    let d = demo();
    let specs = calibrated_specs(&d.p);
    let indicators: Vec<&Indicator> = d.q.indicators.iter().collect();
    let base_weights = numeric_column(&d.ingested, &d.p.design.weight);
    for (lonely, lonely_psu, domain_df) in [
        (false, LonelyPsu::Fail, DomainDf::Subset),
        (true, LonelyPsu::Adjust, DomainDf::Full),
        (true, LonelyPsu::Average, DomainDf::Subset),
    ] {
        let respondents = respondents(&d, lonely);
        let mut spec = d.p.design.clone();
        spec.lonely_psu = lonely_psu;
        let design = Design::build(&d.ingested.frame, &respondents, &spec).expect("design");
        let schemes = crate::weighting::compute(
            &d.ingested.frame,
            &d.ingested.row_numbers,
            &base_weights,
            &respondents,
            &specs,
        )
        .expect("schemes");
        for s in &schemes {
            let greg_or_post = s.calibrated && s.name != "rake";
            assert_eq!(
                crate::estimate::uses_grouped_residuals(&design, s),
                greg_or_post,
                "scheme {}",
                s.name
            );
        }
        let frame = d.ingested.frame.take(&respondents);
        let request = EstimationRequest {
            frame: &frame,
            design: &design,
            schemes: &schemes,
            indicators: &indicators,
            domains: &d.p.estimation.domains,
            ci: &d.p.estimation.ci,
            level: 0.95,
            domain_df,
            variance: VarianceMethod::Taylor,
        };
        let fast = crate::estimate::estimate(&request).expect("grouped");
        let rows = crate::estimate::estimate_row_residuals(&request).expect("rows");
        assert_eq!(fast.len(), rows.len());
        let context = format!("lonely {lonely}");
        assert_same_rows(&fast, &rows, 1e-10, true, &context);
    }
}

/// Replicate estimates on the (PSU × calibration cell) sums against the same replicates
/// weighted and estimated row by row (the path taken when the replicate weights are
/// published): every calibration method, domains, a lonely PSU under JKn.
#[test]
fn replicates_on_sums_equal_replicates_on_rows() {
    let d = demo();
    let specs = calibrated_specs(&d.p);
    let indicators: Vec<&Indicator> = d.q.indicators.iter().collect();
    let base_weights = numeric_column(&d.ingested, &d.p.design.weight);
    for (lonely, lonely_psu, method) in [
        (false, LonelyPsu::Fail, VarianceMethod::Bootstrap),
        (true, LonelyPsu::Adjust, VarianceMethod::Jkn),
    ] {
        let respondents = respondents(&d, lonely);
        let mut p = d.p.clone();
        p.design.lonely_psu = lonely_psu;
        p.replicate.replicates = Some(20);
        p.replicate.nonresponse = crate::config::ReplicateNonresponse::Fixed;
        let design = Design::build(&d.ingested.frame, &respondents, &p.design).expect("design");
        let schemes = crate::weighting::compute(
            &d.ingested.frame,
            &d.ingested.row_numbers,
            &base_weights,
            &respondents,
            &specs,
        )
        .expect("schemes");
        for s in &schemes {
            assert_eq!(
                s.chain.cells().is_some(),
                s.name != "linear_trim_weights",
                "scheme {}",
                s.name
            );
        }
        let frame = d.ingested.frame.take(&respondents);
        let request = EstimationRequest {
            frame: &frame,
            design: &design,
            schemes: &schemes,
            indicators: &indicators,
            domains: &p.estimation.domains,
            ci: &p.estimation.ci,
            level: 0.95,
            domain_df: DomainDf::Subset,
            variance: method,
        };
        let run = |keep_weights: bool| {
            replication::run(&replication::Inputs {
                pipeline: &p,
                frame: &d.ingested.frame,
                base_weights: &base_weights,
                respondents: &respondents,
                design: &design,
                schemes: &schemes,
                request: &request,
                keep_weights,
                progress: &crate::progress::Silent,
            })
            .expect("replicates")
        };
        let sums = run(false);
        let rows = run(true);
        assert!(sums.weights.is_empty() && !rows.weights.is_empty());
        assert_eq!(sums.rows.len(), rows.rows.len());
        assert_eq!(sums.warnings, rows.warnings);
        let context = format!("{method:?}");
        assert_same_rows(&sums.rows, &rows.rows, 1e-9, false, &context);
    }
}

/// The two paths give the same rows: identical df and counts, estimates (and weighted counts
/// when `same_weighted_n`) within 1e-13 relative (the sums are added in a different order), and
/// SEs, interval ends and deffs within `tol` relative.
fn assert_same_rows(
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
            rel(a.estimate, b.estimate) < 1e-13,
            "{what}: {:?} vs {:?}",
            a.estimate,
            b.estimate
        );
        assert_eq!(a.df, b.df, "{what}");
        assert_eq!(a.n_unweighted, b.n_unweighted, "{what}");
        if same_weighted_n {
            let (x, y) = (Some(a.n_weighted), Some(b.n_weighted));
            assert!(rel(x, y) < 1e-13, "{what}: {x:?} vs {y:?}");
        }
        for (x, y) in [
            (a.se, b.se),
            (a.ci_low, b.ci_low),
            (a.ci_high, b.ci_high),
            (a.deff, b.deff),
        ] {
            assert!(rel(x, y) < tol, "{what}: {x:?} vs {y:?}");
        }
    }
}
