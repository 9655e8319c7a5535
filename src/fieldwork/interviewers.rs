//! Interviewers whose returns stand out among interviewers: response rate, item nonresponse,
//! don't-know answers and skip-logic findings, each scored with a robust z-score.

use super::{Grouping, Outcome};

/// Iglewicz and Hoaglin (1993) recommend flagging a modified z-score above 3.5 in absolute value.
pub const DEFAULT_OUTLIER_Z: f64 = 3.5;

/// What is compared across interviewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterviewerMetric {
    /// RR1 of the interviewer's cases.
    ResponseRate,
    /// Blank answers where the question was asked, over the items asked of the interviewer's
    /// respondents.
    ItemNonresponse,
    /// "Don't know" answers over the items asked.
    DontKnow,
    /// Skip-logic findings (answers where the question was not asked) per interview.
    SkipFindings,
}

impl InterviewerMetric {
    /// Every metric, in table order.
    pub const ALL: [InterviewerMetric; 4] = [
        InterviewerMetric::ResponseRate,
        InterviewerMetric::ItemNonresponse,
        InterviewerMetric::DontKnow,
        InterviewerMetric::SkipFindings,
    ];

    /// Heading in the report.
    pub fn label(self) -> &'static str {
        match self {
            InterviewerMetric::ResponseRate => "response rate (RR1)",
            InterviewerMetric::ItemNonresponse => "item nonresponse",
            InterviewerMetric::DontKnow => "don't know",
            InterviewerMetric::SkipFindings => "skip-logic findings per interview",
        }
    }
}

/// Per sampled case: its interviewer and what its return holds. Counts are zero for
/// nonrespondents.
#[derive(Debug, Clone, Copy)]
pub struct InterviewerReturns<'a> {
    /// Interviewer of each case.
    pub interviewer: &'a Grouping,
    /// Final outcome of each case.
    pub outcomes: &'a [Outcome],
    /// Unit respondent or not.
    pub respondent: &'a [bool],
    /// Questions asked of the respondent.
    pub asked: &'a [u32],
    /// Of those, left blank.
    pub no_response: &'a [u32],
    /// Of those, answered "don't know".
    pub dont_know: &'a [u32],
    /// Answers recorded where skip logic says the question was not asked.
    pub skip_findings: &'a [u32],
}

/// One interviewer's row of the monitoring table.
#[derive(Debug, Clone, PartialEq)]
pub struct InterviewerRow {
    /// Interviewer label.
    pub interviewer: String,
    /// Cases assigned.
    pub cases: usize,
    /// Unit respondents.
    pub interviews: usize,
    /// The value of each of [`InterviewerMetric::ALL`] (`None`: no denominator).
    pub values: [Option<f64>; 4],
    /// Robust z-score of each value among interviewers.
    pub z: [Option<f64>; 4],
    /// Some |z| is above the threshold.
    pub outlier: bool,
}

/// The interviewer table: one row per interviewer, in label order, with z-scores and outlier
/// flags at `threshold`.
pub fn interviewer_table(r: &InterviewerReturns<'_>, threshold: f64) -> Vec<InterviewerRow> {
    let k = r.interviewer.labels.len();
    #[derive(Default, Clone, Copy)]
    struct Sums {
        outcomes: super::Counts,
        cases: usize,
        interviews: usize,
        asked: u64,
        no_response: u64,
        dont_know: u64,
        skip: u64,
    }
    let mut sums = vec![Sums::default(); k];
    for (case, &g) in r.interviewer.of_row.iter().enumerate() {
        let s = &mut sums[g as usize];
        s.cases += 1;
        s.outcomes.add(r.outcomes[case], 1.0);
        if r.respondent[case] {
            s.interviews += 1;
            s.asked += u64::from(r.asked[case]);
            s.no_response += u64::from(r.no_response[case]);
            s.dont_know += u64::from(r.dont_know[case]);
            s.skip += u64::from(r.skip_findings[case]);
        }
    }
    let share = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    let values: Vec<[Option<f64>; 4]> = sums
        .iter()
        .map(|s| {
            [
                // RR1 from the one formula of the rates table.
                super::outcome_rates(&s.outcomes, super::EligibilityRate::Estimate)[0],
                share(s.no_response, s.asked),
                share(s.dont_know, s.asked),
                share(s.skip, s.interviews as u64),
            ]
        })
        .collect();
    let mut z = vec![[None; 4]; k];
    for m in 0..4 {
        let column: Vec<Option<f64>> = values.iter().map(|v| v[m]).collect();
        for (row, score) in robust_z(&column).into_iter().enumerate() {
            z[row][m] = score;
        }
    }
    (0..k)
        .map(|g| InterviewerRow {
            interviewer: r.interviewer.labels[g].clone(),
            cases: sums[g].cases,
            interviews: sums[g].interviews,
            values: values[g],
            z: z[g],
            outlier: z[g].iter().flatten().any(|s| s.abs() > threshold),
        })
        .collect()
}

/// Robust (modified) z-scores, Iglewicz and Hoaglin (1993): `(x - median) / (1.4826 · MAD)`,
/// MAD the median absolute deviation from the median. Where MAD is 0 (more than half the values
/// equal), the mean absolute deviation scaled by 1.2533 (√(π/2), its normal consistency factor)
/// stands in; where that is 0 too every value is the median and no score is given. Missing
/// values get no score and do not count.
pub fn robust_z(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let Some(centre) = median(&present) else {
        return vec![None; values.len()];
    };
    let deviations: Vec<f64> = present.iter().map(|x| (x - centre).abs()).collect();
    let mad = median(&deviations).unwrap_or(0.0);
    let scale = if mad > 0.0 {
        1.4826 * mad
    } else {
        1.253_314 * deviations.iter().sum::<f64>() / deviations.len() as f64
    };
    values
        .iter()
        .map(|x| x.filter(|_| scale > 0.0).map(|x| (x - centre) / scale))
        .collect()
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
