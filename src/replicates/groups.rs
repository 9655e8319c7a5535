//! The fast path of the replicate stage: every replicate weight as a full-sample weight times
//! one multiplier per group of rows — (replication unit, calibration cell), and the nonresponse
//! class when replicates redo the nonresponse adjustment —, so that replicates are estimated on
//! group sums instead of rows (`docs/variance.md`, `docs/performance.md`).

use std::borrow::Cow;
use std::collections::HashMap;

use super::{ReplicateDesign, numerical_rank};
use crate::weighting::{ChainCells, ChainClasses, ClassTotals, Eligibility};

/// What the groups need to redo a chain's weighting-class nonresponse adjustment in every
/// replicate (`[variance] nonresponse = "recompute"`).
pub(super) struct Recompute<'a> {
    /// The chain's nonresponse classes.
    pub classes: ChainClasses<'a>,
    /// Frame rows of the respondents (design rows).
    pub respondents: &'a [usize],
    /// Design weight of every used frame row, unit nonrespondents included.
    pub base_weights: &'a [f64],
    /// Replication unit of every used frame row; `None` for a unit nonrespondent whose PSU has
    /// no respondent (its replicate factor is 1, as on the rows).
    pub unit_of_frame_row: &'a [Option<u32>],
}

/// Σ d over the sampled units (respondents and unit nonrespondents) of every (replication
/// unit, nonresponse class) pair that has some, and, with the eligibility adjustment, over its
/// units of known eligibility and its eligible units.
struct ClassSums<'a> {
    classes: ChainClasses<'a>,
    unit: Vec<Option<u32>>,
    class: Vec<u32>,
    sampled: Vec<f64>,
    known: Vec<f64>,
    eligible: Vec<f64>,
}

/// Respondent rows grouped by (replication unit, calibration cell), and by nonresponse class
/// when the adjustment is recomputed. Within a group every replicate weight is a_i · F_r,k:
///
/// * nonresponse fixed: a_i the adjusted weight, F_r,k = f_r,u · g_r,c, the unit's replicate
///   factor times the cell's g from calibrating the cell totals Σ_{i∈c} f_r,u(i) a_i
///   ([`ChainCells`]);
/// * nonresponse recomputed: a_i the design weight d_i, F_r,k = f_r,u · NR_r,l · g_r,c with the
///   class's factor NR_r,l = Σ_{j∈s_l} f_r,u(j) d_j / Σ_{j∈r_l} f_r,u(j) d_j
///   ([`ChainClasses::factors`]) from sums by (unit, class) of the sampled units and of the
///   respondents, and g_r,c from the cell totals Σ_{i∈c} f_r,u(i) NR_r,l(i) d_i.
///
/// Exact, not an approximation: the nonresponse adjustment and the calibration see the rows
/// only through those sums (see `CalibrationModel::collapse`), and the estimators only through
/// sums.
pub(super) struct Groups<'a> {
    cells: ChainCells<'a>,
    nonresponse: Option<ClassSums<'a>>,
    /// Group of every respondent row.
    pub(super) of_row: Vec<u32>,
    /// a_i of every respondent row: the adjusted weight, or the design weight when the
    /// nonresponse adjustment is recomputed.
    pub(super) row_base: Cow<'a, [f64]>,
    /// Replication unit, calibration cell and nonresponse class (0 when fixed) of every group.
    pub(super) psu: Vec<u32>,
    cell: Vec<u32>,
    class: Vec<u32>,
    /// Σ a over the group.
    base: Vec<f64>,
    /// One row per group, with a ≠ 0 where the group has one.
    pub(super) representative: Vec<usize>,
}

impl<'a> Groups<'a> {
    /// `unit_of_row`: the replication unit of every row ([`ReplicateDesign::unit_of_row`]);
    /// `adjusted`: the scheme's adjusted weights; `recompute`: set when every replicate redoes
    /// the nonresponse adjustment.
    pub(super) fn build(
        unit_of_row: &[u32],
        adjusted: &'a [f64],
        cells: ChainCells<'a>,
        recompute: Option<Recompute<'a>>,
    ) -> Groups<'a> {
        let (row_base, class_of_row, nonresponse) = match recompute {
            None => (Cow::Borrowed(adjusted), None, None),
            Some(nr) => {
                let class_of_frame_row = nr.classes.class_of_row();
                let row_base: Vec<f64> =
                    nr.respondents.iter().map(|&r| nr.base_weights[r]).collect();
                let class_of_row: Vec<u32> = nr
                    .respondents
                    .iter()
                    .map(|&r| class_of_frame_row[r] as u32)
                    .collect();
                let eligibility = nr.classes.eligibility_of_row();
                let mut sums = ClassSums {
                    classes: nr.classes,
                    unit: Vec::new(),
                    class: Vec::new(),
                    sampled: Vec::new(),
                    known: Vec::new(),
                    eligible: Vec::new(),
                };
                let mut id: HashMap<(Option<u32>, u32), usize> = HashMap::new();
                for (row, ((&d, &unit), &class)) in nr
                    .base_weights
                    .iter()
                    .zip(nr.unit_of_frame_row)
                    .zip(class_of_frame_row)
                    .enumerate()
                {
                    let key = (unit, class as u32);
                    let e = *id.entry(key).or_insert_with(|| {
                        sums.unit.push(key.0);
                        sums.class.push(key.1);
                        sums.sampled.push(0.0);
                        if eligibility.is_some() {
                            sums.known.push(0.0);
                            sums.eligible.push(0.0);
                        }
                        sums.sampled.len() - 1
                    });
                    sums.sampled[e] += d;
                    match eligibility.map(|el| el[row]) {
                        Some(Eligibility::Eligible) => {
                            sums.known[e] += d;
                            sums.eligible[e] += d;
                        }
                        Some(Eligibility::Ineligible) => sums.known[e] += d,
                        Some(Eligibility::Unknown) | None => {}
                    }
                }
                (Cow::Owned(row_base), Some(class_of_row), Some(sums))
            }
        };
        let n = row_base.len();
        let mut id: HashMap<(u32, u32, u32), u32> = HashMap::new();
        let mut g = Groups {
            cells,
            nonresponse,
            of_row: Vec::with_capacity(n),
            row_base,
            psu: Vec::new(),
            cell: Vec::new(),
            class: Vec::new(),
            base: Vec::new(),
            representative: Vec::new(),
        };
        for i in 0..n {
            let a = g.row_base[i];
            let class = class_of_row.as_ref().map_or(0, |c| c[i]);
            let key = (unit_of_row[i], g.cells.cell_of(i), class);
            let k = *id.entry(key).or_insert_with(|| {
                g.psu.push(key.0);
                g.cell.push(key.1);
                g.class.push(key.2);
                g.base.push(0.0);
                g.representative.push(i);
                (g.psu.len() - 1) as u32
            }) as usize;
            g.of_row.push(k as u32);
            g.base[k] += a;
            if g.row_base[g.representative[k]] == 0.0 && a != 0.0 {
                g.representative[k] = i;
            }
        }
        g
    }

    /// F_r per group. A nonresponse class left without respondent weight is the chain's
    /// error. A calibration that fails on the cell totals is redone on the rows, which gives
    /// the error message (naming a design row), or the weights when only rounding made the
    /// cells fail.
    pub(super) fn multipliers(
        &self,
        rep: &ReplicateDesign,
        r: usize,
        weights_for: &dyn Fn(usize) -> Result<Vec<f64>, String>,
    ) -> Result<Vec<f64>, String> {
        let f = rep.psu_factors(r).ok_or("replicate factors unavailable")?;
        // Before calibration: f_r,u, times NR_r,l when recomputed.
        let mut pre: Vec<f64> = self.psu.iter().map(|&u| f[u as usize]).collect();
        if let Some(nr) = &self.nonresponse {
            let eligibility = !nr.known.is_empty();
            let mut totals = ClassTotals::zeros(nr.classes.n_classes(), eligibility);
            for (e, (&unit, &class)) in nr.unit.iter().zip(&nr.class).enumerate() {
                let fu = unit.map_or(1.0, |u| f[u as usize]);
                let class = class as usize;
                totals.sampled[class] += fu * nr.sampled[e];
                if eligibility {
                    totals.known[class] += fu * nr.known[e];
                    totals.eligible[class] += fu * nr.eligible[e];
                }
            }
            for ((&p, &class), &a) in pre.iter().zip(&self.class).zip(&self.base) {
                totals.responded[class as usize] += p * a;
            }
            let factor = nr.classes.factors(&totals).map_err(|e| e.to_string())?;
            for (p, &class) in pre.iter_mut().zip(&self.class) {
                *p *= factor[class as usize];
            }
        }
        let mut totals = vec![0.0; self.cells.n_cells()];
        for ((&cell, &p), &a) in self.cell.iter().zip(&pre).zip(&self.base) {
            totals[cell as usize] += p * a;
        }
        Ok(match self.cells.calibrate(&totals) {
            Ok(g) => pre
                .iter()
                .zip(&self.cell)
                .map(|(&p, &cell)| p * g[cell as usize])
                .collect(),
            Err(_) => {
                let w = weights_for(r)?;
                self.representative
                    .iter()
                    .map(|&i| {
                        if self.row_base[i] != 0.0 {
                            w[i] / self.row_base[i]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        })
    }

    /// Numerical rank of the replicate weights a_i F_r,k(i) over `rows` (replicates as
    /// columns, those not `succeeded` left out), as [`super::stage`]'s `replicate_rank` on the
    /// rows. `multipliers[p * n_rep + r]` is replicate r's multiplier of group `groups[p]`
    /// (sorted); every row's group must be among them.
    pub(super) fn rank(
        &self,
        multipliers: &[f64],
        groups: &[u32],
        succeeded: &[bool],
        rows: &[usize],
    ) -> usize {
        let n_rep = succeeded.len();
        let kept: Vec<usize> = (0..n_rep).filter(|&r| succeeded[r]).collect();
        let m = kept.len();
        if m == 0 || rows.is_empty() {
            return 0;
        }
        let at: Vec<usize> = rows
            .iter()
            .map(|&i| {
                groups
                    .binary_search(&self.of_row[i])
                    .expect("the df's groups are kept")
                    * n_rep
            })
            .collect();
        let mut a = Vec::with_capacity(rows.len() * m);
        for &r in &kept {
            a.extend(
                rows.iter()
                    .zip(&at)
                    .map(|(&i, &p)| self.row_base[i] * multipliers[p + r]),
            );
        }
        numerical_rank(&a, rows.len(), m)
    }

    /// The groups of `rows` with a non-zero weight, sorted, each with Σ a_i² over its rows among
    /// `rows`: what [`Groups::rank_of_groups`] needs.
    pub(super) fn present(&self, rows: &[usize]) -> (Vec<u32>, Vec<f64>) {
        // One slot per group rather than a sort of the rows: domains run to every row.
        let mut sum_sq = vec![0.0; self.psu.len()];
        for &i in rows {
            let a = self.row_base[i];
            sum_sq[self.of_row[i] as usize] += a * a;
        }
        sum_sq
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x != 0.0)
            .map(|(g, &x)| (g as u32, x))
            .unzip()
    }

    /// The numerical rank of the replicate weights over rows whose groups and Σ a_i² are
    /// `present` ([`Groups::present`]), computed on one row per group, scaled by √(Σ a_i²):
    /// the rows of a group have replicate weights a_i F_r,k, so this matrix has the rows'
    /// inner products between replicate columns (WᵀW), and the column Gram–Schmidt of
    /// [`numerical_rank`] (R's `qr` on the rows) gives the same rank at a cost in groups, not
    /// rows. `multipliers` and `groups` as in [`Groups::rank`].
    /// `largest[r]`: the largest |multiplier| of replicate r over all groups, which bounds the
    /// columns' norms without a pass over the domain's groups.
    pub(super) fn rank_of_groups(
        &self,
        multipliers: &[f64],
        groups: &[u32],
        succeeded: &[bool],
        (present, sum_sq): (&[u32], &[f64]),
        largest: &[f64],
    ) -> usize {
        let n_rep = succeeded.len();
        let kept: Vec<usize> = (0..n_rep).filter(|&r| succeeded[r]).collect();
        let m = kept.len();
        if m == 0 || present.is_empty() {
            return 0;
        }
        let at: Vec<usize> = present
            .iter()
            .map(|g| groups.binary_search(g).expect("the df's groups are kept") * n_rep)
            .collect();
        let scale: Vec<f64> = sum_sq.iter().map(|x| x.sqrt()).collect();
        // Most domains have full rank: shown on a few groups against the whole columns' norms
        // (one pass over the groups, in their multipliers' order), as numerical_rank does on
        // rows, before the whole matrix is formed.
        // A quarter more groups than replicates: m independent columns show on them when the
        // domain has full rank (the multipliers of distinct groups are not proportional), at a
        // fraction of the cost of numerical_rank's four rows per column.
        if let Some(sampled) = super::rank_subset_rows(present.len(), m + m / 4 + 8) {
            let sample: Vec<f64> = kept
                .iter()
                .flat_map(|&r| sampled.iter().map(move |&j| (j, r)))
                .map(|(j, r)| scale[j] * multipliers[at[j] + r])
                .collect();
            // Shown against bounds of the columns' norms (√(Σ a²) times the largest
            // multiplier) it holds against the norms; only when that fails are the norms summed.
            let total: f64 = sum_sq.iter().sum::<f64>().sqrt();
            let bounds: Vec<f64> = kept.iter().map(|&r| total * largest[r]).collect();
            if super::full_rank_shown(&sample, sampled.len(), m, &bounds) {
                return m;
            }
            let mut norms = vec![0.0; m];
            for (&p, s) in at.iter().zip(&scale) {
                let row = &multipliers[p..p + n_rep];
                for (norm, &r) in norms.iter_mut().zip(&kept) {
                    let x = s * row[r];
                    *norm += x * x;
                }
            }
            norms.iter_mut().for_each(|x| *x = x.sqrt());
            if super::full_rank_shown(&sample, sampled.len(), m, &norms) {
                return m;
            }
        }
        let mut a = Vec::with_capacity(present.len() * m);
        for &r in &kept {
            a.extend(at.iter().zip(&scale).map(|(&p, s)| s * multipliers[p + r]));
        }
        numerical_rank(&a, present.len(), m)
    }
}
