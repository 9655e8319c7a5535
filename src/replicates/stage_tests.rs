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

/// The demo survey reshaped for every replicate method with recomputed nonresponse, kept
/// small (the first five PSUs of every stratum): nonresponse classes `nrclass` × `urban` that
/// cut across strata and through PSUs, the fifth PSU of every stratum left without respondents
/// (its unit nonrespondents keep factor 1), strata `pair` of exactly two PSUs (BRR, Fay) and
/// PSU labels `upsu` unique over strata (JK1).
struct Reshaped {
    frame: crate::frame::Frame,
    row_numbers: Vec<u64>,
    base_weights: Vec<f64>,
    /// Respondent flag of every row, before the fifth PSUs lose theirs.
    responded: Vec<bool>,
    respondents: Vec<usize>,
    /// Eligibility of every row, for schemes that adjust for it.
    eligibility: Option<Vec<crate::weighting::Eligibility>>,
}

/// The reshaped demo with final dispositions: every fourth unit nonrespondent ineligible and
/// the next of unknown eligibility (classes then mix all three), and `specs` adjusting for
/// eligibility wherever they adjust for nonresponse.
fn with_eligibility(mut data: Reshaped, specs: &mut [crate::weighting::WeightingSpec]) -> Reshaped {
    use crate::weighting::Eligibility;
    let mut is_respondent = vec![false; data.frame.n_rows()];
    for &r in &data.respondents {
        is_respondent[r] = true;
    }
    let mut k = 0;
    let eligibility = is_respondent
        .iter()
        .map(|&responded| {
            if responded {
                return Eligibility::Eligible;
            }
            k += 1;
            match k % 4 {
                0 => Eligibility::Ineligible,
                1 => Eligibility::Unknown,
                _ => Eligibility::Eligible,
            }
        })
        .collect();
    data.eligibility = Some(eligibility);
    for s in specs {
        s.adjust_eligibility = s.nonresponse_classes.is_some();
    }
    data
}

fn text_column(name: &str, values: Vec<String>) -> crate::frame::Column {
    let mut levels: Vec<String> = Vec::new();
    let codes = values
        .iter()
        .map(|v| match levels.iter().position(|l| l == v) {
            Some(k) => k as u32,
            None => {
                levels.push(v.clone());
                (levels.len() - 1) as u32
            }
        })
        .collect();
    crate::frame::Column {
        name: name.to_string(),
        state: vec![crate::frame::CellState::Value; values.len()].into(),
        data: crate::frame::ColumnData::Text { codes, levels },
    }
}

fn label(frame: &crate::frame::Frame, name: &str, r: usize) -> String {
    frame
        .column(name)
        .and_then(|c| c.display(r))
        .expect("demo column")
}

fn reshaped(d: &crate::test_support::Demo) -> Reshaped {
    let all = &d.ingested.frame;
    let mut psus: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut position = Vec::with_capacity(all.n_rows());
    for r in 0..all.n_rows() {
        let list = psus.entry(label(all, "stratum", r)).or_default();
        let p = label(all, "psu", r);
        position.push(list.iter().position(|x| *x == p).unwrap_or_else(|| {
            list.push(p);
            list.len() - 1
        }));
    }
    let kept: Vec<usize> = (0..all.n_rows()).filter(|&r| position[r] < 5).collect();
    let mut frame = all.take(&kept);
    let (mut pair, mut upsu, mut nrclass) = (vec![], vec![], vec![]);
    for (k, &r) in kept.iter().enumerate() {
        let h = label(&frame, "stratum", k);
        pair.push(format!("{h}/{}", position[r] / 2));
        upsu.push(format!("{h}/{}", label(&frame, "psu", k)));
        let id: u64 = label(&frame, "resp_id", k).parse().expect("numeric id");
        nrclass.push(format!("c{}", id % 3));
    }
    for column in [
        text_column("pair", pair),
        text_column("upsu", upsu),
        text_column("nrclass", nrclass),
    ] {
        frame.push(column).expect("new column");
    }
    // Design weights scaled to the whole sample's total, so that the calibrations to the
    // population margins stay within their bounds.
    let weights = crate::pipeline::numeric_column(&d.ingested, &d.p.design.weight);
    let scale = weights.iter().sum::<f64>() / kept.iter().map(|&r| weights[r]).sum::<f64>();
    let base_weights: Vec<f64> = kept.iter().map(|&r| weights[r] * scale).collect();
    frame
        .set(crate::frame::Column {
            name: d.p.design.weight.clone(),
            data: crate::frame::ColumnData::Num(base_weights.clone().into()),
            state: vec![crate::frame::CellState::Value; kept.len()].into(),
        })
        .expect("design weights");
    let responded: Vec<bool> = kept.iter().map(|&r| d.ingested.respondent[r]).collect();
    let respondents = (0..kept.len())
        .filter(|&k| responded[k] && position[kept[k]] < 4)
        .collect();
    Reshaped {
        frame,
        row_numbers: kept.iter().map(|&r| d.ingested.row_numbers[r]).collect(),
        base_weights,
        responded,
        respondents,
        eligibility: None,
    }
}

/// The demo's weighting schemes with nonresponse classes `classes` (the design-weight scheme
/// keeps none), and a scheme with the nonresponse adjustment alone.
fn recompute_specs(
    d: &crate::test_support::Demo,
    classes: &[&str],
) -> Vec<crate::weighting::WeightingSpec> {
    let mut specs = calibrated_specs(&d.p);
    let mut nr_only = specs[0].clone();
    nr_only.name = "nr_only".into();
    nr_only.calibration = None;
    specs.push(nr_only);
    for s in &mut specs {
        if s.nonresponse_classes.is_some() || s.name == "nr_only" {
            s.nonresponse_classes = Some(classes.iter().map(|c| c.to_string()).collect());
        }
    }
    specs
}

/// Run the replicate stage on the reshaped demo on sums (false) and on rows (true, the
/// replicate weights published).
fn run_both(
    d: &crate::test_support::Demo,
    data: &Reshaped,
    design_spec: &crate::design::DesignSpec,
    specs: &[crate::weighting::WeightingSpec],
    method: VarianceMethod,
    drop_failed: bool,
) -> [Result<stage::Output, String>; 2] {
    let design =
        crate::design::Design::build(&data.frame, &data.respondents, design_spec).expect("design");
    let schemes = crate::weighting::compute(
        &data.frame,
        &data.row_numbers,
        &data.base_weights,
        &data.respondents,
        data.eligibility.as_deref(),
        specs,
    )
    .expect("schemes");
    let indicators = estimated_indicators(&d.q);
    let frame = data.frame.take(&data.respondents);
    let request = EstimationRequest {
        frame: &frame,
        design: &design,
        schemes: &schemes,
        indicators: &indicators,
        domains: &d.p.estimation.domains,
        ci: &d.p.estimation.ci,
        level: 0.95,
        domain_df: DomainDf::Subset,
        variance: method,
        contrasts: &[],
        tests: &[],
    };
    let mut p = d.p.clone();
    p.replicate.replicates = Some(20);
    p.replicate.nonresponse = ReplicateNonresponse::Recompute;
    p.replicate.drop_failed = drop_failed;
    let settings = crate::pipeline::replicate_settings(&p, method).expect("replicate method");
    [false, true].map(|keep_weights| {
        stage::run(&Inputs {
            settings: &settings,
            frame: &data.frame,
            base_weights: &data.base_weights,
            respondents: &data.respondents,
            design: &design,
            design_spec,
            schemes: &schemes,
            request: &request,
            keep_weights,
            progress: &crate::progress::Silent,
        })
        .map_err(|e| e.to_string())
    })
}

fn design_spec(
    d: &crate::test_support::Demo,
    strata: Option<&str>,
    psu: &str,
) -> crate::design::DesignSpec {
    let mut spec = d.p.design.clone();
    spec.strata = strata.map(|s| vec![s.to_string()]).unwrap_or_default();
    spec.psu = vec![psu.to_string()];
    spec.nest = psu == "psu";
    spec
}

/// Same rows ([`assert_same_rows`]), SEs within 1e-12 relative. Interval ends and deffs are
/// held to 1e-9: they subtract or divide nearly equal numbers (an interval end near 0, a logit
/// variance), which multiplies the rounding of the replicate sums.
fn assert_same_rows_and_ses(
    sums: &[crate::estimate::EstimateRow],
    rows: &[crate::estimate::EstimateRow],
    context: &str,
) {
    assert_same_rows(sums, rows, 1e-9, true, context);
    for (a, b) in sums.iter().zip(rows) {
        assert_eq!(a.se.is_some(), b.se.is_some());
        if let (Some(x), Some(y)) = (a.se, b.se) {
            assert!(
                x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                "{} {} {}={} ({context}): se {x} vs {y}",
                a.indicator,
                a.weighting,
                a.domain_var,
                a.domain_value
            );
        }
    }
}

/// With the nonresponse adjustment redone in every replicate, replicates on the (unit,
/// nonresponse class, calibration cell) sums give the estimates, SEs and df of the same
/// replicates weighted row by row through the whole chain, for every constructed method:
/// classes cutting across strata and through PSUs, unit nonrespondents, PSUs without
/// respondents, raking, GREG, bounded and trimmed calibration, post-stratification.
#[test]
fn recomputed_nonresponse_on_sums_equals_the_chain_on_rows() {
    let d = demo();
    let specs = recompute_specs(&d, &["nrclass", "urban"]);
    sums_equal_rows_with_recomputed_nonresponse(&d, &reshaped(&d), &specs);
}

/// The same with the eligibility adjustment redone in every replicate: sums by (unit, class)
/// of the sampled, known-eligibility and eligible units give the rows' replicate weights.
#[test]
fn recomputed_eligibility_adjustment_on_sums_equals_the_chain_on_rows() {
    let d = demo();
    let mut specs = recompute_specs(&d, &["nrclass", "urban"]);
    let data = with_eligibility(reshaped(&d), &mut specs);
    sums_equal_rows_with_recomputed_nonresponse(&d, &data, &specs);
}

fn sums_equal_rows_with_recomputed_nonresponse(
    d: &crate::test_support::Demo,
    data: &Reshaped,
    specs: &[crate::weighting::WeightingSpec],
) {
    for (method, strata, psu) in [
        (VarianceMethod::Bootstrap, Some("stratum"), "psu"),
        (VarianceMethod::Subbootstrap, Some("stratum"), "psu"),
        (VarianceMethod::Jkn, Some("stratum"), "psu"),
        (VarianceMethod::Sdr, Some("stratum"), "psu"),
        (VarianceMethod::Jk1, None, "upsu"),
        (VarianceMethod::Brr, Some("pair"), "upsu"),
        (VarianceMethod::Fay, Some("pair"), "upsu"),
    ] {
        let spec = design_spec(d, strata, psu);
        // Half-samples push bounded calibrations out of their bounds: those replicates are
        // dropped, the same on both paths.
        let [sums, rows] = run_both(d, data, &spec, specs, method, true);
        let (sums, rows) = (sums.expect("sums"), rows.expect("rows"));
        assert!(sums.weights.is_empty() && !rows.weights.is_empty());
        assert_eq!(sums.warnings, rows.warnings);
        assert_same_rows_and_ses(&sums.rows, &rows.rows, &format!("{method:?}"));
    }
}

/// A replicate that deletes the only PSU with respondents of a nonresponse class (whose unit
/// nonrespondents lie in other PSUs) is the chain's empty-class error on sums as on rows, and
/// `drop_failed` drops the same replicates with the same warnings.
#[test]
fn a_class_left_without_respondents_fails_the_same_replicate_on_sums() {
    let d = demo();
    let mut data = reshaped(&d);
    // Class "lone": the respondents of the first respondent's PSU and the unit
    // nonrespondents of a PSU in another stratum; every other row is in class "rest".
    let first = data.respondents[0];
    let (h0, p0) = (
        label(&data.frame, "stratum", first),
        label(&data.frame, "upsu", first),
    );
    let other = (0..data.frame.n_rows())
        .find(|&r| label(&data.frame, "stratum", r) != h0 && !data.responded[r])
        .expect("a nonrespondent elsewhere");
    let p1 = label(&data.frame, "upsu", other);
    let lone: Vec<String> = (0..data.frame.n_rows())
        .map(|r| {
            let u = label(&data.frame, "upsu", r);
            let own = u == p0 && data.responded[r];
            let borrowed = u == p1 && !data.responded[r];
            if own || borrowed { "lone" } else { "rest" }.to_string()
        })
        .collect();
    data.frame
        .push(text_column("lone", lone))
        .expect("new column");
    let specs = recompute_specs(&d, &["lone"]);
    let spec = design_spec(&d, Some("stratum"), "psu");
    for method in [VarianceMethod::Jkn, VarianceMethod::Bootstrap] {
        let [sums, rows] = run_both(&d, &data, &spec, &specs, method, false);
        let (Err(sums), Err(rows)) = (sums, rows) else {
            panic!("{method:?}: the class left without respondents must fail a replicate");
        };
        assert!(sums.contains("nonresponse class lone=lone"), "{sums}");
        assert_eq!(sums, rows);
        let [sums, rows] = run_both(&d, &data, &spec, &specs, method, true);
        let (sums, rows) = (sums.expect("sums"), rows.expect("rows"));
        assert!(
            sums.warnings.iter().any(|w| w.contains("dropped")),
            "{method:?}: some replicate dropped"
        );
        assert_eq!(sums.warnings, rows.warnings);
        assert_same_rows_and_ses(&sums.rows, &rows.rows, &format!("{method:?}"));
    }
}

/// The kernel: with the nonresponse adjustment redone, the design weight times the group's
/// multiplier is the weight the whole chain gives on the rows from the replicate's design
/// weights (unit nonrespondents of PSUs without respondents at factor 1), to 1e-12 relative,
/// for every constructed method; where the chain fails, the error is the same.
/// The reshaped demo's schemes under `specs`, its replicates by `method` on the design
/// (`strata`, `psu`), and the replication unit of every frame row (none for a unit nonrespondent
/// of a PSU without respondents).
fn replicated(
    d: &crate::test_support::Demo,
    data: &Reshaped,
    specs: &[crate::weighting::WeightingSpec],
    method: &super::ReplicateMethod,
    strata: Option<&str>,
    psu: &str,
) -> (
    Vec<crate::weighting::Scheme>,
    super::ReplicateDesign,
    Vec<Option<u32>>,
) {
    let spec = design_spec(d, strata, psu);
    let design =
        crate::design::Design::build(&data.frame, &data.respondents, &spec).expect("design");
    let schemes = crate::weighting::compute(
        &data.frame,
        &data.row_numbers,
        &data.base_weights,
        &data.respondents,
        data.eligibility.as_deref(),
        specs,
    )
    .expect("schemes");
    let options = super::ReplicateOptions {
        mse: false,
        certainty: Default::default(),
    };
    let rep =
        super::ReplicateDesign::build(&data.frame, &design, method, &options).expect("replicates");
    let unit_of_row = rep.unit_of_row().expect("constructed replicates");
    let mut unit_of_psu = std::collections::HashMap::new();
    for (k, &r) in data.respondents.iter().enumerate() {
        unit_of_psu.insert(label(&data.frame, "upsu", r), unit_of_row[k]);
    }
    let unit_of_frame_row: Vec<Option<u32>> = (0..data.frame.n_rows())
        .map(|r| unit_of_psu.get(&label(&data.frame, "upsu", r)).copied())
        .collect();
    (schemes, rep, unit_of_frame_row)
}

/// The groups of a scheme whose replicates recompute its nonresponse adjustment and calibrate
/// on cells; none for other schemes.
fn recomputed_groups<'a>(
    scheme: &'a crate::weighting::Scheme,
    unit_of_row: &'a [u32],
    data: &'a Reshaped,
    unit_of_frame_row: &'a [Option<u32>],
) -> Option<super::groups::Groups<'a>> {
    let (Some(classes), Some(cells)) = (scheme.chain.classes(), scheme.chain.cells()) else {
        return None;
    };
    Some(super::groups::Groups::build(
        unit_of_row,
        &scheme.adjusted,
        cells,
        Some(super::groups::Recompute {
            classes,
            respondents: &data.respondents,
            base_weights: &data.base_weights,
            unit_of_frame_row,
        }),
    ))
}

#[test]
fn group_multipliers_give_the_chains_replicate_weights() {
    let d = demo();
    let specs = recompute_specs(&d, &["nrclass", "urban"]);
    group_multipliers_give_replicate_weights(&d, &reshaped(&d), &specs);
}

#[test]
fn group_multipliers_give_the_chains_replicate_weights_with_eligibility() {
    let d = demo();
    let mut specs = recompute_specs(&d, &["nrclass", "urban"]);
    let data = with_eligibility(reshaped(&d), &mut specs);
    group_multipliers_give_replicate_weights(&d, &data, &specs);
}

fn group_multipliers_give_replicate_weights(
    d: &crate::test_support::Demo,
    data: &Reshaped,
    specs: &[crate::weighting::WeightingSpec],
) {
    use super::ReplicateMethod;
    let bootstrap = ReplicateMethod::Bootstrap {
        replicates: 8,
        seed: 7,
    };
    let subbootstrap = ReplicateMethod::Subbootstrap {
        replicates: 8,
        seed: 7,
    };
    let sdr = ReplicateMethod::Sdr {
        replicates: None,
        sort: None,
        circular: false,
    };
    let mut checked = 0;
    for (method, strata, psu) in [
        (bootstrap, Some("stratum"), "psu"),
        (subbootstrap, Some("stratum"), "psu"),
        (ReplicateMethod::Jkn, Some("stratum"), "psu"),
        (sdr, Some("stratum"), "psu"),
        (ReplicateMethod::Jk1, None, "upsu"),
        (ReplicateMethod::Brr, Some("pair"), "upsu"),
        (ReplicateMethod::Fay { rho: 0.3 }, Some("pair"), "upsu"),
    ] {
        let (schemes, rep, unit_of_frame_row) = replicated(d, data, specs, &method, strata, psu);
        let unit_of_row = rep.unit_of_row().expect("constructed replicates");
        assert!(unit_of_frame_row.iter().any(Option::is_none));
        for scheme in &schemes {
            let Some(groups) = recomputed_groups(scheme, unit_of_row, data, &unit_of_frame_row)
            else {
                continue;
            };
            let on_rows = |r: usize| -> Result<Vec<f64>, String> {
                let f = rep.psu_factors(r).expect("factors");
                let base: Vec<f64> = data
                    .base_weights
                    .iter()
                    .zip(&unit_of_frame_row)
                    .map(|(&w, u)| w * u.map_or(1.0, |k| f[k as usize]))
                    .collect();
                scheme
                    .chain
                    .apply(&base, &data.respondents)
                    .map(|w| w.weights)
                    .map_err(|e| e.to_string())
            };
            for r in 0..rep.n_replicates().min(8) {
                let context = format!("{} {method:?} replicate {r}", scheme.name);
                match (groups.multipliers(&rep, r, &on_rows), on_rows(r)) {
                    (Ok(m), Ok(w)) => {
                        for (i, &w) in w.iter().enumerate() {
                            let g = groups.row_base[i] * m[groups.of_row[i] as usize];
                            assert!(
                                (g - w).abs() <= 1e-12 * w.abs(),
                                "{context}, row {i}: {g} vs {w}"
                            );
                        }
                        checked += 1;
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "{context}"),
                    (a, b) => panic!("{context}: {:?} vs {:?}", a.err(), b.err()),
                }
            }
        }
    }
    assert!(checked > 100, "{checked} replicates compared");
}

/// The rank of a domain's replicate weights over its groups (one row per group scaled by
/// √Σa², `Groups::rank_of_groups`) equals the rank over its rows (`Groups::rank`), for domains
/// that lose rank (a few strata under JKn) and domains that do not (bootstrap), whole and
/// thinned out within groups.
#[test]
fn domain_rank_over_groups_equals_the_rank_over_rows() {
    use super::ReplicateMethod;
    let d = demo();
    let data = reshaped(&d);
    let specs = recompute_specs(&d, &["nrclass", "urban"]);
    let mut compared = 0;
    let mut ranks = Vec::new();
    for method in [
        ReplicateMethod::Jkn,
        ReplicateMethod::Bootstrap {
            replicates: 40,
            seed: 3,
        },
    ] {
        let (schemes, rep, unit_of_frame_row) =
            replicated(&d, &data, &specs, &method, Some("stratum"), "psu");
        let unit_of_row = rep.unit_of_row().expect("constructed replicates");
        let strata: Vec<String> = data
            .respondents
            .iter()
            .map(|&r| label(&data.frame, "stratum", r))
            .collect();
        let mut first_strata: Vec<&String> = strata.iter().collect();
        first_strata.sort();
        first_strata.dedup();
        first_strata.truncate(3);
        let few_strata: Vec<usize> = (0..strata.len())
            .filter(|&i| first_strata.contains(&&strata[i]))
            .collect();
        let thinned: Vec<usize> = few_strata.iter().copied().step_by(3).collect();
        for scheme in &schemes {
            let Some(groups) = recomputed_groups(scheme, unit_of_row, &data, &unit_of_frame_row)
            else {
                continue;
            };
            let on_rows = |_: usize| -> Result<Vec<f64>, String> { Err("not used".into()) };
            let n_rep = rep.n_replicates();
            let n_groups = groups.psu.len();
            let mut multipliers = vec![f64::NAN; n_groups * n_rep];
            let mut succeeded = vec![false; n_rep];
            for r in 0..n_rep {
                if let Ok(m) = groups.multipliers(&rep, r, &on_rows) {
                    for (k, x) in m.iter().enumerate() {
                        multipliers[k * n_rep + r] = *x;
                    }
                    succeeded[r] = true;
                }
            }
            let all: Vec<u32> = (0..n_groups as u32).collect();
            for rows in [&few_strata, &thinned] {
                let on_rows = groups.rank(&multipliers, &all, &succeeded, rows);
                let (present, sum_sq) = groups.present(rows);
                let mut largest = vec![0.0f64; n_rep];
                for row in multipliers.chunks(n_rep) {
                    for (l, &x) in largest.iter_mut().zip(row) {
                        if x.is_finite() {
                            *l = l.max(x.abs());
                        }
                    }
                }
                let on_groups = groups.rank_of_groups(
                    &multipliers,
                    &all,
                    &succeeded,
                    (&present, &sum_sq),
                    &largest,
                );
                assert_eq!(
                    on_groups,
                    on_rows,
                    "{} {method:?}, {} rows",
                    scheme.name,
                    rows.len()
                );
                assert!(on_rows > 1, "{} {method:?}: rank {on_rows}", scheme.name);
                ranks.push(on_rows);
                compared += 1;
            }
        }
    }
    assert!(compared >= 8, "{compared} domains compared");
    // Both kinds occur: bootstrap domains of full rank (40 replicates) and domains short of it.
    assert!(
        ranks.contains(&40) && ranks.iter().any(|&r| r < 40),
        "{ranks:?}"
    );
}
