//! The Taylor variance of calibrated schemes on sums (calibration residuals by PSU and domain)
//! against the same variance from the residuals row by row, on the demo survey: every
//! calibration method, domains, lonely PSUs; and the contrasts from the scores each path keeps.

use super::{ContrastSpec, EstimationRequest};
use crate::design::LonelyPsu;
use crate::estimate::DomainDf;
use crate::estimate::VarianceMethod;
use crate::test_support::{
    assert_same_rows, calibrated_specs, demo, design_and_schemes, estimated_indicators, respondents,
};

#[test]
fn calibrated_taylor_on_sums_equals_row_residuals() {
    let d = demo();
    let specs = calibrated_specs(&d.p);
    let indicators = estimated_indicators(&d.q);
    let contrasts = [ContrastSpec {
        name: "gap".into(),
        indicators: indicators
            .iter()
            .filter(|i| i.category.is_none() && i.quantile.is_none())
            .map(|i| i.id.clone())
            .collect(),
        by: "sex".into(),
        first: "2".into(),
        second: "1".into(),
        within: vec!["region".into(), "urban".into()],
    }];
    for (lonely, lonely_psu, domain_df) in [
        (false, LonelyPsu::Fail, DomainDf::Subset),
        (true, LonelyPsu::Adjust, DomainDf::Full),
        (true, LonelyPsu::Average, DomainDf::Subset),
    ] {
        let respondents = respondents(&d, lonely);
        let mut spec = d.p.design.clone();
        spec.lonely_psu = lonely_psu;
        let (design, schemes) = design_and_schemes(&d, &respondents, &spec, &specs);
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
            contrasts: &contrasts,
            tests: &[],
        };
        let fast = crate::estimate::estimate_with_progress(&request, &crate::progress::Silent)
            .expect("grouped");
        let rows = crate::estimate::estimate_row_residuals(&request).expect("rows");
        assert_eq!(fast.rows.len(), rows.rows.len());
        let context = format!("lonely {lonely}");
        assert_same_rows(&fast.rows, &rows.rows, 1e-10, true, &context);
        // Contrasts: scores kept as PSU totals (grouped) or rows (row residuals) agree.
        assert_eq!(fast.contrasts.len(), rows.contrasts.len());
        assert!(fast.contrasts.len() > 30, "{}", fast.contrasts.len());
        for (a, b) in fast.contrasts.iter().zip(&rows.contrasts) {
            assert_eq!(
                (&a.contrast, &a.indicator, &a.weighting, &a.within_value),
                (&b.contrast, &b.indicator, &b.weighting, &b.within_value)
            );
            for (x, y) in [
                (a.estimate, b.estimate),
                (a.se, b.se),
                (a.p_value, b.p_value),
            ] {
                match (x, y) {
                    (Some(x), Some(y)) => assert!(
                        (x - y).abs() <= 1e-10 * x.abs().max(1e-6),
                        "{context}, {}/{}/{}/{}: {x} vs {y}",
                        a.contrast,
                        a.indicator,
                        a.weighting,
                        a.within_value
                    ),
                    (x, y) => assert_eq!(x, y, "{context}: {a:?}"),
                }
            }
        }
    }
}
