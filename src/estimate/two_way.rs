//! Tests of association of a run (`[[test]]`): for each two-way table, the cell shares and their
//! covariance under the design (Taylor) or the replicates, given to the Rao–Scott kernel
//! ([`super::association`]).

use super::EstimateError;
use super::association::{AssociationStatistic, TwoWayShares, rao_scott};
use super::method::VarianceMethod;
use crate::questionnaire::Expr;
use crate::weighting::Scheme;

/// One `[[test]]` as estimation needs it.
#[derive(Debug, Clone)]
pub struct TestSpec {
    /// Free text, unique within a run.
    pub name: String,
    /// Row variable (declared codes).
    pub rows: String,
    /// Column variable (declared codes).
    pub cols: String,
    /// Who is tested: rows where this is true (unknown counts as false); none: every respondent.
    pub universe: Option<Expr>,
}

/// One row of `tests.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    /// The `[[test]]` name.
    pub test: String,
    /// Weighting scheme.
    pub weighting: String,
    /// Variance method of the covariance of the cell shares.
    pub variance: VarianceMethod,
    /// Row variable.
    pub rows: String,
    /// Column variable.
    pub cols: String,
    /// `rao_scott_f` (R `svychisq(statistic = "F")`) or `rao_scott_chisq` (`statistic =
    /// "Chisq"`).
    pub statistic: &'static str,
    /// The statistic: F = X²/tr Δ, or Pearson's X² as R reports it.
    pub value: Option<f64>,
    /// Numerator df: d₀ for F, (r−1)(c−1) for the chi-squared.
    pub ndf: Option<f64>,
    /// Denominator df: d₀ ν for F; none for the chi-squared.
    pub ddf: Option<f64>,
    /// Upper-tail p-value.
    pub p_value: Option<f64>,
}

/// A test's table over the respondent rows: the levels present in its universe and each row's
/// cell, shared by every scheme and replicate.
pub(super) struct TablePlan {
    nr: usize,
    nc: usize,
    /// Cell `i + nr·j` of each row in the universe with both variables defined.
    cell_of_row: Vec<Option<u32>>,
    /// Rows in the universe (R's rows of the tested subset).
    in_universe: Vec<bool>,
}

impl TablePlan {
    fn cells(&self) -> usize {
        self.nr * self.nc
    }
}

/// The tables of the request's tests. A variable with fewer than two categories among the
/// universe's respondents is an error: there is nothing to test.
pub(super) fn table_plans(
    frame: &crate::frame::Frame,
    tests: &[TestSpec],
) -> Result<Vec<TablePlan>, EstimateError> {
    tests
        .iter()
        .map(|t| {
            let err = |message: String| EstimateError::Test {
                test: t.name.clone(),
                message,
            };
            let n = frame.n_rows();
            let in_universe = match &t.universe {
                None => vec![true; n],
                Some(e) => e.eval_true(frame).map_err(|e| err(e.to_string()))?,
            };
            let rows = super::breakdown(frame, &t.rows)?;
            let cols = super::breakdown(frame, &t.cols)?;
            // Levels present in the universe, renumbered in their (sorted) order, as R's
            // factor() of the tested subset.
            let present = |b: &super::Breakdown, var: &str| -> Result<Vec<Option<u32>>, EstimateError> {
                let mut seen = vec![false; b.labels.len()];
                for (r, v) in b.of_row.iter().enumerate() {
                    if let (true, Some(v)) = (in_universe[r], v) {
                        seen[v as usize] = true;
                    }
                }
                let kept: Vec<&String> = b
                    .labels
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| **s)
                    .map(|(l, _)| l)
                    .collect();
                if kept.len() < 2 {
                    return Err(err(format!(
                        "{var} has {} among the tested respondents ({}); a test needs two or more categories of each variable: choose another variable or widen the universe",
                        if kept.is_empty() { "no category".to_string() } else { "one category".to_string() },
                        kept.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
                let mut index = vec![None; b.labels.len()];
                let mut k = 0u32;
                for (slot, s) in index.iter_mut().zip(&seen) {
                    if *s {
                        *slot = Some(k);
                        k += 1;
                    }
                }
                Ok(index)
            };
            let row_index = present(&rows, &t.rows)?;
            let col_index = present(&cols, &t.cols)?;
            let nr = row_index.iter().flatten().count();
            let nc = col_index.iter().flatten().count();
            let cell_of_row = (0..n)
                .map(|r| {
                    if !in_universe[r] {
                        return None;
                    }
                    let i = rows.of_row.at(r).and_then(|v| row_index[v as usize])?;
                    let j = cols.of_row.at(r).and_then(|v| col_index[v as usize])?;
                    Some(i + nr as u32 * j)
                })
                .collect();
            Ok(TablePlan {
                nr,
                nc,
                cell_of_row,
                in_universe,
            })
        })
        .collect()
}

/// Cell shares Σ w 1[cell] / Σ w over the rows with a cell (R's `svymean(mm, na.rm = TRUE)`).
pub(super) fn cell_shares(plan: &TablePlan, w: &[f64]) -> Vec<f64> {
    let mut sums = vec![0.0; plan.cells()];
    let mut total = 0.0;
    for (c, &wi) in plan.cell_of_row.iter().zip(w) {
        if let Some(c) = c {
            sums[*c as usize] += wi;
            total += wi;
        }
    }
    sums.iter().map(|s| s / total).collect()
}

/// The symmetric covariance matrix from the variances of the statistics and of their pairwise
/// sums (V(a + b) = V(a) + V(b) + 2 Cov(a, b)).
fn covariance_by_polarization(
    k: usize,
    variance_of_sum: &mut dyn FnMut(usize, usize) -> Result<f64, String>,
) -> Result<Vec<f64>, String> {
    let mut v = vec![0.0; k * k];
    for a in 0..k {
        v[a * k + a] = variance_of_sum(a, a)? / 4.0;
    }
    for a in 0..k {
        for b in a + 1..k {
            let c = (variance_of_sum(a, b)? - v[a * k + a] - v[b * k + b]) / 2.0;
            v[a * k + b] = c;
            v[b * k + a] = c;
        }
    }
    Ok(v)
}

/// Both Rao–Scott rows of one test under one scheme and variance method.
fn test_rows(
    spec: &TestSpec,
    plan: &TablePlan,
    scheme: &Scheme,
    variance: VarianceMethod,
    shares: &[f64],
    covariance: &[f64],
    n_rows: f64,
    design_df: f64,
) -> Result<Vec<TestRow>, EstimateError> {
    let table = TwoWayShares {
        nr: plan.nr,
        nc: plan.nc,
        cell_share: shares,
        covariance,
        n_rows,
        design_df,
    };
    let result = rao_scott(&table).map_err(|e| EstimateError::Test {
        test: spec.name.clone(),
        message: format!("weighting {}: {e}", scheme.name),
    })?;
    AssociationStatistic::ALL
        .into_iter()
        .map(|statistic| {
            let t = result.test(statistic).map_err(|e| EstimateError::Test {
                test: spec.name.clone(),
                message: format!("weighting {}: {e}", scheme.name),
            })?;
            Ok(TestRow {
                test: spec.name.clone(),
                weighting: scheme.name.clone(),
                variance,
                rows: spec.rows.clone(),
                cols: spec.cols.clone(),
                statistic: match statistic {
                    AssociationStatistic::F => "rao_scott_f",
                    AssociationStatistic::Chisq => "rao_scott_chisq",
                },
                value: t.value.is_finite().then_some(t.value),
                ndf: t.ndf.is_finite().then_some(t.ndf),
                ddf: t.ddf.filter(|x| x.is_finite()),
                p_value: t.p_value.is_finite().then_some(t.p_value),
            })
        })
        .collect()
}

/// Taylor rows of every test under one scheme: the cell shares' linearized scores
/// z_k = w (1[cell = k] − p̂_k) / Σ w over the rows with a cell (zero elsewhere), their
/// calibration residuals for a calibrated scheme, and their design covariance over the tested
/// subset (R's `svymean(mm, subset(design, universe), na.rm = TRUE)`).
pub(super) fn taylor_tests(
    req: &super::EstimationRequest<'_>,
    plans: &[TablePlan],
    scheme: &Scheme,
) -> Result<Vec<TestRow>, EstimateError> {
    let design = req.design;
    let w = &scheme.weights;
    let n = w.len();
    let mut out = Vec::new();
    for (spec, plan) in req.tests.iter().zip(plans) {
        let shares = cell_shares(plan, w);
        let total: f64 = plan
            .cell_of_row
            .iter()
            .zip(w)
            .filter(|(c, _)| c.is_some())
            .map(|(_, wi)| wi)
            .sum();
        let k = plan.cells();
        let scores: Vec<Vec<f64>> = (0..k)
            .map(|cell| {
                let mut z: Vec<f64> = (0..n)
                    .map(|r| match plan.cell_of_row[r] {
                        Some(c) => {
                            w[r] * ((c as usize == cell) as u8 as f64 - shares[cell]) / total
                        }
                        None => 0.0,
                    })
                    .collect();
                if let Some(cal) = &scheme.calibration {
                    cal.residualizer.residualize(&mut z);
                }
                z
            })
            .collect();
        // R's subset keeps a calibrated design's other rows (zero weight) and drops a plain
        // design's (see domain_estimate).
        let with_cell: Vec<bool> = plan.cell_of_row.iter().map(Option::is_some).collect();
        let present = (!scheme.calibrated).then_some(with_cell.as_slice());
        let psu_of_row = design.psu_of_row();
        let totals: Vec<Vec<f64>> = scores
            .iter()
            .map(|z| {
                let mut t = vec![0.0; design.n_psu()];
                for (r, &p) in psu_of_row.iter().enumerate() {
                    if present.is_none_or(|m| m[r]) {
                        t[p as usize] += z[r];
                    }
                }
                t
            })
            .collect();
        let psu_present = present.map(|m| {
            let mut seen = vec![false; design.n_psu()];
            for (r, &p) in psu_of_row.iter().enumerate() {
                if m[r] {
                    seen[p as usize] = true;
                }
            }
            seen
        });
        let mut sum = vec![0.0; design.n_psu()];
        let mut row_sum = vec![0.0; n];
        let covariance = covariance_by_polarization(k, &mut |a, b| {
            for (s, (x, y)) in sum.iter_mut().zip(totals[a].iter().zip(&totals[b])) {
                *s = x + y;
            }
            match design.variance_from_psu_totals(&sum, psu_present.as_deref()) {
                Err(crate::design::VarianceError::Multistage) => {
                    for (s, (x, y)) in row_sum.iter_mut().zip(scores[a].iter().zip(&scores[b])) {
                        *s = x + y;
                    }
                    design
                        .variance(&row_sum, present)
                        .map_err(|e| e.to_string())
                }
                other => other.map_err(|e| e.to_string()),
            }
        })
        .map_err(|message| EstimateError::Test {
            test: spec.name.clone(),
            message: format!("weighting {}: {message}", scheme.name),
        })?;
        let n_rows = if scheme.calibrated {
            n
        } else {
            plan.in_universe.iter().filter(|&&u| u).count()
        };
        let include: Vec<bool> = plan
            .in_universe
            .iter()
            .zip(w)
            .map(|(&u, &wi)| u && wi != 0.0)
            .collect();
        out.extend(test_rows(
            spec,
            plan,
            scheme,
            req.variance,
            &shares,
            &covariance,
            n_rows as f64,
            design.degf(&include),
        )?);
    }
    Ok(out)
}

/// Statistics per replicate of every test: the cell shares under the replicate's weights.
pub(super) fn replicate_shares(plans: &[TablePlan], w: &[f64]) -> Vec<f64> {
    plans.iter().flat_map(|p| cell_shares(p, w)).collect()
}

/// Number of statistics [`replicate_shares`] gives.
pub(super) fn n_replicate_shares(plans: &[TablePlan]) -> usize {
    plans.iter().map(TablePlan::cells).sum()
}

/// Replicate rows of every test under one scheme from the replicates' cell shares (`thetas`,
/// statistic after statistic, `n_rep` each): R's `svychisq` on the replicate design, whose
/// subset drops the rows outside the universe.
pub(super) fn replicate_tests(
    req: &super::EstimationRequest<'_>,
    plans: &[TablePlan],
    scheme: &Scheme,
    thetas: &[f64],
    n_rep: usize,
    variance: &dyn Fn(&[f64], f64) -> f64,
    df_of: &super::ReplicateDf<'_>,
) -> Result<Vec<TestRow>, EstimateError> {
    let w = &scheme.weights;
    let psu_of_row = req.design.psu_of_row();
    let mut out = Vec::new();
    let mut offset = 0;
    let mut sum = vec![0.0; n_rep];
    for (spec, plan) in req.tests.iter().zip(plans) {
        let shares = cell_shares(plan, w);
        let k = plan.cells();
        let column = |c: usize| &thetas[(offset + c) * n_rep..(offset + c + 1) * n_rep];
        let covariance = covariance_by_polarization(k, &mut |a, b| {
            for (s, (x, y)) in sum.iter_mut().zip(column(a).iter().zip(column(b))) {
                *s = x + y;
            }
            Ok(variance(&sum, shares[a] + shares[b]))
        })
        .map_err(|message| EstimateError::Test {
            test: spec.name.clone(),
            message,
        })?;
        offset += k;
        let kept: Vec<usize> = (0..w.len())
            .filter(|&r| plan.in_universe[r] && w[r] != 0.0)
            .collect();
        let mut psus: Vec<u32> = kept.iter().map(|&r| psu_of_row[r]).collect();
        psus.sort_unstable();
        psus.dedup();
        let design_df = df_of(&psus, kept.len(), &|| kept.as_slice().into());
        let n_rows = plan.in_universe.iter().filter(|&&u| u).count();
        out.extend(test_rows(
            spec,
            plan,
            scheme,
            req.variance,
            &shares,
            &covariance,
            n_rows as f64,
            design_df,
        )?);
    }
    Ok(out)
}
