//! AAPOR outcome rates (Standard Definitions, 10th edition, 2023): every formula is in
//! [`outcome_rates`].

use super::{Grouping, Outcome};

/// How e, the estimated share of eligible cases among those of unknown eligibility, is set
/// (`[dispositions] e`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EligibilityRate {
    /// AAPOR's default estimate: the eligible share among the cases of known eligibility of the
    /// same group, (I+P+R+NC+O) / (I+P+R+NC+O+NE).
    Estimate,
    /// A value in [0, 1] the survey justifies from elsewhere.
    Fixed(f64),
}

/// Cases (or their summed design weights) per AAPOR category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Complete interviews.
    pub i: f64,
    /// Partial interviews.
    pub p: f64,
    /// Refusals and break-offs.
    pub r: f64,
    /// Non-contacts.
    pub nc: f64,
    /// Other eligible non-interviews.
    pub o: f64,
    /// Unknown eligibility (UH + UO).
    pub u: f64,
    /// Not eligible.
    pub ne: f64,
}

impl Counts {
    /// Add a case of category `outcome` with weight `w` (1 for the unweighted counts).
    pub fn add(&mut self, outcome: Outcome, w: f64) {
        let slot = match outcome {
            Outcome::Complete => &mut self.i,
            Outcome::Partial => &mut self.p,
            Outcome::Refusal => &mut self.r,
            Outcome::NonContact => &mut self.nc,
            Outcome::Other => &mut self.o,
            Outcome::UnknownEligibility => &mut self.u,
            Outcome::NotEligible => &mut self.ne,
        };
        *slot += w;
    }

    /// The counts in the order of [`Outcome::ALL`].
    pub fn in_order(&self) -> [f64; 7] {
        [self.i, self.p, self.r, self.nc, self.o, self.u, self.ne]
    }
}

/// Names of the rates, in output order (the `rate` column).
pub const RATES: [&str; 17] = [
    "RR1", "RR2", "RR3", "RR4", "RR5", "RR6", "COOP1", "COOP2", "COOP3", "COOP4", "REF1", "REF2",
    "REF3", "CON1", "CON2", "CON3", "e",
];

/// The value of each of [`RATES`] for one group's counts.
pub type Rates = [Option<f64>; 17];

/// The AAPOR outcome rates of one group, in the order of [`RATES`]. A rate whose denominator is
/// zero is `None` (written as an empty cell), as is a rate that needs e when e cannot be
/// estimated (no case of known eligibility) and the group has cases of unknown eligibility.
///
/// AAPOR Standard Definitions (2023), with UH + UO = U:
/// ```text
/// RR1   = I / ((I+P) + (R+NC+O) + (UH+UO))
/// RR2   = (I+P) / ((I+P) + (R+NC+O) + (UH+UO))
/// RR3   = I / ((I+P) + (R+NC+O) + e(UH+UO))
/// RR4   = (I+P) / ((I+P) + (R+NC+O) + e(UH+UO))
/// RR5   = I / ((I+P) + (R+NC+O))
/// RR6   = (I+P) / ((I+P) + (R+NC+O))
/// COOP1 = I / ((I+P) + R + O)
/// COOP2 = (I+P) / ((I+P) + R + O)
/// COOP3 = I / ((I+P) + R)
/// COOP4 = (I+P) / ((I+P) + R)
/// REF1  = R / ((I+P) + (R+NC+O) + (UH+UO))
/// REF2  = R / ((I+P) + (R+NC+O) + e(UH+UO))
/// REF3  = R / ((I+P) + (R+NC+O))
/// CON1  = ((I+P) + R + O) / ((I+P) + R + O + NC + (UH+UO))
/// CON2  = ((I+P) + R + O) / ((I+P) + R + O + NC + e(UH+UO))
/// CON3  = ((I+P) + R + O) / ((I+P) + R + O + NC)
/// e     = (I+P+R+NC+O) / (I+P+R+NC+O+NE)      (default; or the configured number)
/// ```
pub fn outcome_rates(c: &Counts, e_rule: EligibilityRate) -> Rates {
    let ratio = |num: f64, den: f64| (den > 0.0 && num.is_finite()).then(|| num / den);
    let interviews = c.i + c.p;
    let eligible_nonint = c.r + c.nc + c.o;
    let known_eligible = interviews + eligible_nonint;
    let e = match e_rule {
        EligibilityRate::Fixed(e) => Some(e),
        EligibilityRate::Estimate => ratio(known_eligible, known_eligible + c.ne),
    };
    // e matters only through e·U: without unknown-eligibility cases a rate needs no e.
    let e_u = match e {
        Some(e) => Some(e * c.u),
        None if c.u == 0.0 => Some(0.0),
        None => None,
    };
    let with_e = |num: f64, den: Option<f64>| den.and_then(|d| ratio(num, d));
    let contacted = interviews + c.r + c.o;
    [
        ratio(c.i, known_eligible + c.u),
        ratio(interviews, known_eligible + c.u),
        with_e(c.i, e_u.map(|x| known_eligible + x)),
        with_e(interviews, e_u.map(|x| known_eligible + x)),
        ratio(c.i, known_eligible),
        ratio(interviews, known_eligible),
        ratio(c.i, interviews + c.r + c.o),
        ratio(interviews, interviews + c.r + c.o),
        ratio(c.i, interviews + c.r),
        ratio(interviews, interviews + c.r),
        ratio(c.r, known_eligible + c.u),
        with_e(c.r, e_u.map(|x| known_eligible + x)),
        ratio(c.r, known_eligible),
        ratio(contacted, contacted + c.nc + c.u),
        with_e(contacted, e_u.map(|x| contacted + c.nc + x)),
        ratio(contacted, contacted + c.nc),
        e,
    ]
}

/// One row of `fieldwork.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRow {
    /// Grouping variable, `_T` for the whole sample.
    pub group_var: String,
    /// Group label, `_T` for the whole sample.
    pub group_value: String,
    /// Rate computed from design-weighted counts.
    pub weighted: bool,
    /// One of [`RATES`].
    pub rate: &'static str,
    /// The rate; `None` where its denominator is zero.
    pub value: Option<f64>,
    /// Unweighted cases of the group per category, in the order of [`Outcome::ALL`].
    pub counts: [u64; 7],
}

/// The rates table: the whole sample, then each grouping's groups in label order; within a
/// group the unweighted rates, then the rates weighted by `weights` (the design weights of the
/// cases; none: unweighted only).
pub fn group_rates(
    outcomes: &[Outcome],
    weights: Option<&[f64]>,
    groupings: &[Grouping],
    e_rule: EligibilityRate,
) -> Vec<RateRow> {
    let mut rows = Vec::new();
    let whole = Grouping {
        var: "_T".into(),
        labels: vec!["_T".into()],
        of_row: vec![0; outcomes.len()],
    };
    for g in std::iter::once(&whole).chain(groupings) {
        let k = g.labels.len();
        let mut counts = vec![[0u64; 7]; k];
        let mut weighted = vec![Counts::default(); k];
        for (r, &o) in outcomes.iter().enumerate() {
            let group = g.of_row[r] as usize;
            counts[group][o as usize] += 1;
            if let Some(w) = weights {
                weighted[group].add(o, w[r]);
            }
        }
        for (group, label) in g.labels.iter().enumerate() {
            let mut unweighted = Counts::default();
            for o in Outcome::ALL {
                unweighted.add(o, counts[group][o as usize] as f64);
            }
            let mut sets = vec![(false, outcome_rates(&unweighted, e_rule))];
            if weights.is_some() {
                sets.push((true, outcome_rates(&weighted[group], e_rule)));
            }
            for (is_weighted, values) in sets {
                for (rate, value) in RATES.iter().zip(values) {
                    rows.push(RateRow {
                        group_var: g.var.clone(),
                        group_value: label.clone(),
                        weighted: is_weighted,
                        rate,
                        value: value.filter(|v| v.is_finite()),
                        counts: counts[group],
                    });
                }
            }
        }
    }
    rows
}
