//! Replicate point estimates from sums by group of rows.
//!
//! When every replicate weight has the form w_r,i = a_i · F_r,k(i) — a_i a full-sample weight,
//! k(i) a group of rows (first-stage PSU × calibration cell) and F_r,k one multiplier per group
//! (the PSU's replicate factor times the cell's calibration g) —, every estimator of
//! [`super::point_estimates`] is a ratio of sums Σ_D w y = Σ_k F_r,k Σ_{i∈k∩D} a_i y_i. The inner
//! sums do not depend on the replicate: they are computed once, by (group, domain value), and each
//! replicate costs a pass over that table instead of over the rows (`docs/performance.md`).

use rayon::prelude::*;

use super::{Breakdown, EstimationRequest, IndicatorValues, Prepared, estimator};
use crate::questionnaire::IndicatorKind;

/// Sums of one indicator × breakdown by (group, domain value), sorted by group, then domain
/// value; only pairs with at least one row.
struct Table {
    kind: IndicatorKind,
    levels: usize,
    group: Vec<u32>,
    value: Vec<u32>,
    /// Σ a, Σ a y and (ratios) Σ a x over the pair's defined rows.
    sw: Vec<f64>,
    swy: Vec<f64>,
    swx: Option<Vec<f64>>,
}

/// Sums by (group, domain value) of every indicator × domain breakdown of a request, for
/// estimates under weights a_i · F_k(i) ([`GroupedSums::point_estimates`]).
pub struct GroupedSums {
    n_groups: usize,
    tables: Vec<Table>,
}

impl GroupedSums {
    /// One pass over the rows per indicator × breakdown (in parallel), rows taken group by
    /// group. `base` = a (one per respondent row), `group_of_row[i]` < `n_groups`.
    pub fn build(
        req: &EstimationRequest<'_>,
        prepared: &Prepared,
        base: &[f64],
        group_of_row: &[u32],
        n_groups: usize,
    ) -> GroupedSums {
        // Rows ordered by group (counting sort; data order within a group).
        let mut start = vec![0usize; n_groups + 1];
        for &g in group_of_row {
            start[g as usize + 1] += 1;
        }
        for k in 0..n_groups {
            start[k + 1] += start[k];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; group_of_row.len()];
        for (i, &g) in group_of_row.iter().enumerate() {
            order[next[g as usize]] = i as u32;
            next[g as usize] += 1;
        }
        let tasks: Vec<(usize, usize)> = (0..req.indicators.len())
            .flat_map(|i| (0..prepared.breakdowns.len()).map(move |b| (i, b)))
            .collect();
        let tables = tasks
            .par_iter()
            .map(|&(i, b)| {
                table(
                    req.indicators[i].kind,
                    &prepared.values[i],
                    &prepared.breakdowns[b],
                    base,
                    &order,
                    &start,
                )
            })
            .collect();
        GroupedSums { n_groups, tables }
    }

    /// Number of groups.
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Number of (group, domain value) entries over all tables (memory and work per replicate).
    pub fn n_entries(&self) -> usize {
        self.tables.iter().map(|t| t.group.len()).sum()
    }

    /// Every statistic of [`super::point_estimates`] under every replicate at once, under the
    /// weights w_r,i = a_i · F_r,k(i): mean / proportion Σ_D w y / Σ_D w, total Σ_D w y, ratio
    /// Σ_D w y / Σ_D w x, with Σ_D w_r y = Σ_k F_r,k Σ_{i∈k∩D} a_i y_i (a domain without weight
    /// gives NaN, as on the rows). `multipliers` holds `n_rep` multipliers per group, group
    /// after group (`[k * n_rep + r]` is replicate r's multiplier of group k); the result holds
    /// `n_rep` estimates per statistic, statistic after statistic, in
    /// [`super::point_estimates`] order. Each table entry adds its sums times its group's row
    /// of multipliers to its domain value's row of replicate totals: a contiguous run the
    /// compiler vectorises, instead of one pass over the table per replicate.
    pub fn point_estimates_all(&self, multipliers: &[f64], n_rep: usize) -> Vec<f64> {
        let per_table: Vec<Vec<f64>> = self
            .tables
            .par_iter()
            .map(|t| t.estimates_all(multipliers, n_rep))
            .collect();
        per_table.concat()
    }
}

impl Table {
    /// This table's statistics under every replicate (see [`GroupedSums::point_estimates_all`]):
    /// `levels` runs of `n_rep` estimates.
    fn estimates_all(&self, multipliers: &[f64], n_rep: usize) -> Vec<f64> {
        let k = self.levels;
        let (mut sw, mut swy) = (vec![0.0; k * n_rep], vec![0.0; k * n_rep]);
        let mut swx = vec![0.0; if self.swx.is_some() { k * n_rep } else { 0 }];
        for e in 0..self.group.len() {
            let g = self.group[e] as usize;
            let m = &multipliers[g * n_rep..(g + 1) * n_rep];
            let d = self.value[e] as usize;
            let at = d * n_rep..(d + 1) * n_rep;
            let (a, ay) = (self.sw[e], self.swy[e]);
            for ((w, wy), &f) in sw[at.clone()].iter_mut().zip(&mut swy[at.clone()]).zip(m) {
                *w += f * a;
                *wy += f * ay;
            }
            if let Some(x) = &self.swx {
                let ax = x[e];
                for (wx, &f) in swx[at].iter_mut().zip(m) {
                    *wx += f * ax;
                }
            }
        }
        (0..k * n_rep)
            .map(|i| estimator::point(self.kind, sw[i], swy[i], swx.get(i).copied().unwrap_or(0.0)))
            .collect()
    }
}

fn table(
    kind: IndicatorKind,
    vals: &IndicatorValues,
    b: &Breakdown,
    base: &[f64],
    order: &[u32],
    start: &[usize],
) -> Table {
    let k = b.labels.len();
    let (mut aw, mut ay, mut ax) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    let mut seen = vec![false; k];
    let mut touched: Vec<usize> = Vec::new();
    let mut t = Table {
        kind,
        levels: k,
        group: Vec::new(),
        value: Vec::new(),
        sw: Vec::new(),
        swy: Vec::new(),
        swx: vals.x.as_ref().map(|_| Vec::new()),
    };
    for g in 0..start.len() - 1 {
        for &i in &order[start[g]..start[g + 1]] {
            let i = i as usize;
            let Some(d) = b.of_row.at(i) else { continue };
            if !vals.defined[i] {
                continue;
            }
            let d = d as usize;
            if !seen[d] {
                seen[d] = true;
                touched.push(d);
            }
            aw[d] += base[i];
            ay[d] += base[i] * vals.y[i];
            if let Some(x) = &vals.x {
                ax[d] += base[i] * x[i];
            }
        }
        touched.sort_unstable();
        for &d in &touched {
            t.group.push(g as u32);
            t.value.push(d as u32);
            t.sw.push(aw[d]);
            t.swy.push(ay[d]);
            if let Some(x) = t.swx.as_mut() {
                x.push(ax[d]);
            }
            aw[d] = 0.0;
            ay[d] = 0.0;
            ax[d] = 0.0;
            seen[d] = false;
        }
        touched.clear();
    }
    t
}
