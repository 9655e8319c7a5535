use super::*;

/// The counts of `fixtures/fieldwork/returns.csv` (whole sample).
const I: f64 = 90.0;
const P: f64 = 12.0;
const R: f64 = 30.0;
const NC: f64 = 25.0;
const O: f64 = 8.0;
const U: f64 = 20.0;
const NE: f64 = 15.0;

fn counts(i: f64, p: f64, r: f64, nc: f64, o: f64, u: f64, ne: f64) -> Counts {
    Counts {
        i,
        p,
        r,
        nc,
        o,
        u,
        ne,
    }
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no value"));
    assert!(
        (got - want).abs() <= 1e-14 * want.abs().max(1.0),
        "{what}: {got} != {want}"
    );
}

/// Every rate from the Standard Definitions' formulas, written out with the counts.
fn by_hand(i: f64, p: f64, r: f64, nc: f64, o: f64, u: f64, e: f64) -> [f64; 17] {
    [
        i / ((i + p) + (r + nc + o) + u),
        (i + p) / ((i + p) + (r + nc + o) + u),
        i / ((i + p) + (r + nc + o) + e * u),
        (i + p) / ((i + p) + (r + nc + o) + e * u),
        i / ((i + p) + (r + nc + o)),
        (i + p) / ((i + p) + (r + nc + o)),
        i / ((i + p) + r + o),
        (i + p) / ((i + p) + r + o),
        i / ((i + p) + r),
        (i + p) / ((i + p) + r),
        r / ((i + p) + (r + nc + o) + u),
        r / ((i + p) + (r + nc + o) + e * u),
        r / ((i + p) + (r + nc + o)),
        ((i + p) + r + o) / ((i + p) + r + o + nc + u),
        ((i + p) + r + o) / ((i + p) + r + o + nc + e * u),
        ((i + p) + r + o) / ((i + p) + r + o + nc),
        e,
    ]
}

#[test]
fn every_rate_equals_the_standard_definitions_formula() {
    let got = outcome_rates(&counts(I, P, R, NC, O, U, NE), EligibilityRate::Estimate);
    // e = (I+P+R+NC+O) / (I+P+R+NC+O+NE) = 165 / 180.
    let e = (90.0 + 12.0 + 30.0 + 25.0 + 8.0) / (90.0 + 12.0 + 30.0 + 25.0 + 8.0 + 15.0);
    close(got[16], 165.0 / 180.0, "e");
    // RR1 = I / ((I+P) + (R+NC+O) + (UH+UO)) = 90 / (102 + 63 + 20) = 90 / 185.
    close(got[0], 90.0 / 185.0, "RR1");
    // COOP1 = I / ((I+P) + R + O) = 90 / 140.
    close(got[6], 90.0 / 140.0, "COOP1");
    // CON3 = ((I+P) + R + O) / ((I+P) + R + O + NC) = 140 / 165.
    close(got[15], 140.0 / 165.0, "CON3");
    for (k, want) in by_hand(I, P, R, NC, O, U, e).into_iter().enumerate() {
        close(got[k], want, RATES[k]);
    }
}

#[test]
fn a_fixed_e_replaces_the_estimate_in_rr3_rr4_ref2_con2_only() {
    let c = counts(I, P, R, NC, O, U, NE);
    let got = outcome_rates(&c, EligibilityRate::Fixed(0.5));
    for (k, want) in by_hand(I, P, R, NC, O, U, 0.5).into_iter().enumerate() {
        close(got[k], want, RATES[k]);
    }
    let estimated = outcome_rates(&c, EligibilityRate::Estimate);
    for k in [0, 1, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15] {
        assert_eq!(got[k], estimated[k], "{}", RATES[k]);
    }
    // e = 1 makes RR3 equal RR1; e = 0 makes it RR5.
    let one = outcome_rates(&c, EligibilityRate::Fixed(1.0));
    close(one[2], one[0].expect("RR1"), "RR3 at e = 1");
    let zero = outcome_rates(&c, EligibilityRate::Fixed(0.0));
    close(zero[2], zero[4].expect("RR5"), "RR3 at e = 0");
}

#[test]
fn zero_denominators_give_no_value_rather_than_a_panic() {
    // Only unknown-eligibility cases: e cannot be estimated, and RR3 needs it.
    let got = outcome_rates(
        &counts(0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0),
        EligibilityRate::Estimate,
    );
    assert_eq!(got[16], None, "e");
    assert_eq!(got[2], None, "RR3");
    assert_eq!(got[0], Some(0.0), "RR1 = 0 / 5");
    assert_eq!(got[4], None, "RR5 = 0 / 0");
    // No case at all.
    assert!(
        outcome_rates(&Counts::default(), EligibilityRate::Estimate)
            .iter()
            .all(Option::is_none)
    );
    // Only ineligible cases: e = 0, and no eligible case for any rate.
    let ne = outcome_rates(
        &counts(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0),
        EligibilityRate::Estimate,
    );
    assert_eq!(ne[16], Some(0.0));
    assert_eq!(ne[0], None);
}

#[test]
fn weighted_rates_use_the_summed_design_weights_and_their_own_e() {
    // Two cases per category with weights 1 and 3, except refusals (weight 10 once).
    let mut outcomes = Vec::new();
    let mut weights = Vec::new();
    for o in Outcome::ALL {
        if o == Outcome::Refusal {
            outcomes.push(o);
            weights.push(10.0);
        } else {
            outcomes.extend([o, o]);
            weights.extend([1.0, 3.0]);
        }
    }
    let rows = group_rates(&outcomes, Some(&weights), &[], EligibilityRate::Estimate);
    assert_eq!(rows.len(), 2 * RATES.len());
    let value = |weighted: bool, rate: &str| {
        rows.iter()
            .find(|r| r.weighted == weighted && r.rate == rate)
            .and_then(|r| r.value)
    };
    // Weighted counts: I = P = NC = O = U = NE = 4, R = 10; e = 26 / 30.
    let e = (4.0 + 4.0 + 10.0 + 4.0 + 4.0) / (4.0 + 4.0 + 10.0 + 4.0 + 4.0 + 4.0);
    for (k, want) in by_hand(4.0, 4.0, 10.0, 4.0, 4.0, 4.0, e)
        .into_iter()
        .enumerate()
    {
        close(value(true, RATES[k]), want, RATES[k]);
    }
    // Unweighted: 2 of each, R = 1; e = 9 / 11.
    let e = 9.0 / 11.0;
    for (k, want) in by_hand(2.0, 2.0, 1.0, 2.0, 2.0, 2.0, e)
        .into_iter()
        .enumerate()
    {
        close(value(false, RATES[k]), want, RATES[k]);
    }
    assert!(rows.iter().all(|r| r.counts == [2, 2, 1, 2, 2, 2, 2]));
}

#[test]
fn groups_follow_the_whole_sample_in_label_order_with_their_own_counts() {
    let outcomes = [
        Outcome::Complete,
        Outcome::Refusal,
        Outcome::Complete,
        Outcome::NotEligible,
    ];
    let labels: Vec<String> = ["10", "9", "9", "north"].map(String::from).to_vec();
    let g = Grouping::from_labels("region", &labels);
    assert_eq!(g.labels, ["9", "10", "north"]);
    let rows = group_rates(&outcomes, None, &[g], EligibilityRate::Estimate);
    let rr1: Vec<(&str, &str, Option<f64>)> = rows
        .iter()
        .filter(|r| r.rate == "RR1")
        .map(|r| (r.group_var.as_str(), r.group_value.as_str(), r.value))
        .collect();
    assert_eq!(
        rr1,
        [
            ("_T", "_T", Some(2.0 / 3.0)),
            ("region", "9", Some(0.5)),
            ("region", "10", Some(1.0)),
            ("region", "north", None),
        ]
    );
    assert!(rows.iter().all(|r| !r.weighted));
}

#[test]
fn codes_match_as_numbers_and_partials_respond_as_configured() {
    let map = DispositionMap::new(
        [
            ("11".to_string(), Outcome::Complete),
            ("12".to_string(), Outcome::Partial),
            ("x9".to_string(), Outcome::NotEligible),
        ],
        false,
        EligibilityRate::Estimate,
    );
    assert_eq!(map.outcome("11"), Some(Outcome::Complete));
    assert_eq!(map.outcome("11.0"), Some(Outcome::Complete));
    assert_eq!(map.outcome(" 12 "), Some(Outcome::Partial));
    assert_eq!(map.outcome("x9"), Some(Outcome::NotEligible));
    assert_eq!(map.outcome("13"), None);
    assert!(map.is_respondent(Outcome::Complete));
    assert!(!map.is_respondent(Outcome::Partial));
    assert!(!map.is_respondent(Outcome::Refusal));
}

#[test]
fn robust_z_is_the_deviation_over_the_scaled_median_absolute_deviation() {
    // Median 3, absolute deviations 2, 1, 0, 1, 7: MAD 1.
    let z = robust_z(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(10.0), None]);
    close(z[0], -2.0 / 1.4826, "z of 1");
    close(z[4], 7.0 / 1.4826, "z of 10");
    assert_eq!(z[5], None);
    // More than half equal: MAD 0, the scaled mean absolute deviation stands in.
    let z = robust_z(&[Some(0.0), Some(0.0), Some(0.0), Some(4.0)]);
    close(z[3], 4.0 / (1.253_314 * 1.0), "mean absolute deviation");
    // All equal: no score.
    assert!(
        robust_z(&[Some(2.0), Some(2.0)])
            .iter()
            .all(Option::is_none)
    );
}

#[test]
fn an_interviewer_far_from_the_others_is_an_outlier() {
    // Five interviewers, four cases each; interviewer E gets no interview.
    let labels: Vec<String> = ["A", "B", "C", "D", "E"]
        .iter()
        .flat_map(|l| std::iter::repeat_n(l.to_string(), 4))
        .collect();
    let g = Grouping::from_labels("interviewer", &labels);
    let outcomes: Vec<Outcome> = (0..20)
        .map(|c| {
            if c >= 16 || c % 4 == 3 {
                Outcome::Refusal
            } else {
                Outcome::Complete
            }
        })
        .collect();
    let respondent: Vec<bool> = outcomes.iter().map(|&o| o == Outcome::Complete).collect();
    let asked: Vec<u32> = respondent.iter().map(|&r| if r { 10 } else { 0 }).collect();
    let zeros = vec![0u32; 20];
    let table = interviewer_table(
        &InterviewerReturns {
            interviewer: &g,
            outcomes: &outcomes,
            respondent: &respondent,
            asked: &asked,
            no_response: &zeros,
            dont_know: &zeros,
            skip_findings: &zeros,
        },
        DEFAULT_OUTLIER_Z,
    );
    assert_eq!(table.len(), 5);
    close(table[0].values[0], 0.75, "RR1 of A");
    assert_eq!(table[4].values[0], Some(0.0));
    assert_eq!(
        table[4].values[1], None,
        "no interview, no item nonresponse share"
    );
    let outliers: Vec<&str> = table
        .iter()
        .filter(|r| r.outlier)
        .map(|r| r.interviewer.as_str())
        .collect();
    assert_eq!(outliers, ["E"]);
}

#[test]
fn iso_dates_parse_and_impossible_days_do_not() {
    let d = Date::parse("2026-03-01").expect("date");
    assert_eq!(d.to_string(), "2026-03-01");
    assert_eq!(Date::parse("2026-03-01T10:15:00"), Some(d));
    assert!(Date::parse("2024-02-29").is_some());
    for bad in [
        "2026-02-29",
        "2026-13-01",
        "01/03/2026",
        "2026-3-1",
        "",
        "yesterday",
    ] {
        assert_eq!(Date::parse(bad), None, "{bad}");
    }
    assert!(Date::parse("2026-02-28") < Date::parse("2026-03-01"));
    assert_eq!(Date::from_unix(0).to_string(), "1970-01-01");
}
