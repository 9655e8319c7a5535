//! Replicates on the (PSU × calibration cell) sums against the same replicates weighted and
//! estimated row by row, on the demo survey: every calibration method, domains, lonely PSUs.

use super::ReplicateNonresponse;
use super::stage::{self, Inputs};
use crate::design::LonelyPsu;
use crate::estimate::DomainDf;
use crate::estimate::EstimationRequest;
use crate::estimate::VarianceMethod;
use crate::test_support::{
    assert_same_rows, calibrated_specs, demo, design_and_schemes, estimated_indicators, respondents,
};

/// Replicate estimates on the (PSU × calibration cell) sums against the same replicates
/// weighted and estimated row by row (the path taken when the replicate weights are
/// published): every calibration method, domains, a lonely PSU under JKn.
#[test]
fn replicates_on_sums_equal_replicates_on_rows() {
    let d = demo();
    let specs = calibrated_specs(&d.p);
    let indicators = estimated_indicators(&d.q);
    let base_weights = crate::pipeline::numeric_column(&d.ingested, &d.p.design.weight);
    for (lonely, lonely_psu, method) in [
        (false, LonelyPsu::Fail, VarianceMethod::Bootstrap),
        (true, LonelyPsu::Adjust, VarianceMethod::Jkn),
    ] {
        let respondents = respondents(&d, lonely);
        let mut p = d.p.clone();
        p.design.lonely_psu = lonely_psu;
        p.replicate.replicates = Some(20);
        p.replicate.nonresponse = ReplicateNonresponse::Fixed;
        let (design, schemes) = design_and_schemes(&d, &respondents, &p.design, &specs);
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
            contrasts: &[],
            tests: &[],
        };
        let settings = crate::pipeline::replicate_settings(&p, method).expect("replicate method");
        let run = |keep_weights: bool| {
            stage::run(&Inputs {
                settings: &settings,
                frame: &d.ingested.frame,
                base_weights: &base_weights,
                respondents: &respondents,
                design: &design,
                design_spec: &p.design,
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
