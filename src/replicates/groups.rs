//! The fast path of the replicate stage: every replicate weight as the adjusted weight times one
//! multiplier per (first-stage PSU, calibration cell) group, so that replicates are estimated on
//! group sums instead of rows (`docs/variance.md`, `docs/performance.md`).

use super::{ReplicateDesign, numerical_rank};
use crate::weighting::ChainCells;

/// Respondent rows grouped by (first-stage PSU, calibration cell). Within a group every
/// replicate weight is a_i · F_r,k: the PSU's replicate factor f_r,p times the cell's g_r,c
/// from calibrating the cell totals Σ_{i∈c} f_r,p(i) a_i ([`ChainCells`]), a_i the adjusted
/// weight. Exact, not an approximation: the calibration sees the rows only through those cell
/// totals (see `CalibrationModel::collapse`), and the estimators only through sums.
pub(super) struct Groups<'a> {
    cells: ChainCells<'a>,
    /// Group of every respondent row.
    pub(super) of_row: Vec<u32>,
    /// PSU and cell of every group.
    pub(super) psu: Vec<u32>,
    cell: Vec<u32>,
    /// Σ a over the group.
    base: Vec<f64>,
    /// One row per group, with a ≠ 0 where the group has one.
    pub(super) representative: Vec<usize>,
}

impl<'a> Groups<'a> {
    /// `unit_of_row`: the replication unit of every row ([`ReplicateDesign::unit_of_row`]).
    pub(super) fn build(
        unit_of_row: &[u32],
        adjusted: &[f64],
        cells: ChainCells<'a>,
    ) -> Groups<'a> {
        let psu_of_row = unit_of_row;
        let mut id: std::collections::HashMap<(u32, u32), u32> = std::collections::HashMap::new();
        let mut g = Groups {
            cells,
            of_row: Vec::with_capacity(adjusted.len()),
            psu: Vec::new(),
            cell: Vec::new(),
            base: Vec::new(),
            representative: Vec::new(),
        };
        for (i, &a) in adjusted.iter().enumerate() {
            let key = (psu_of_row[i], g.cells.cell_of(i));
            let k = *id.entry(key).or_insert_with(|| {
                g.psu.push(key.0);
                g.cell.push(key.1);
                g.base.push(0.0);
                g.representative.push(i);
                (g.psu.len() - 1) as u32
            }) as usize;
            g.of_row.push(k as u32);
            g.base[k] += a;
            if adjusted[g.representative[k]] == 0.0 && a != 0.0 {
                g.representative[k] = i;
            }
        }
        g
    }

    /// F_r per group. A calibration that fails on the cell totals is redone on the rows, which
    /// gives the error message (naming a design row), or the weights when only rounding made
    /// the cells fail.
    pub(super) fn multipliers(
        &self,
        rep: &ReplicateDesign,
        r: usize,
        adjusted: &[f64],
        weights_for: &dyn Fn(usize) -> Result<Vec<f64>, String>,
    ) -> Result<Vec<f64>, String> {
        let f = rep.psu_factors(r).ok_or("replicate factors unavailable")?;
        let mut totals = vec![0.0; self.cells.n_cells()];
        for k in 0..self.psu.len() {
            totals[self.cell[k] as usize] += f[self.psu[k] as usize] * self.base[k];
        }
        Ok(match self.cells.calibrate(&totals) {
            Ok(g) => (0..self.psu.len())
                .map(|k| f[self.psu[k] as usize] * g[self.cell[k] as usize])
                .collect(),
            Err(_) => {
                let w = weights_for(r)?;
                self.representative
                    .iter()
                    .map(|&i| {
                        if adjusted[i] != 0.0 {
                            w[i] / adjusted[i]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        })
    }

    /// Numerical rank of the replicate weights a_i F_r,k(i) over `rows` (replicates as
    /// columns, dropped replicates left out), as [`super::stage`]'s `replicate_rank` on the rows.
    pub(super) fn rank(
        &self,
        multipliers: &[Option<Vec<f64>>],
        adjusted: &[f64],
        rows: &[usize],
    ) -> usize {
        let columns: Vec<&Vec<f64>> = multipliers.iter().flatten().collect();
        let m = columns.len();
        if m == 0 || rows.is_empty() {
            return 0;
        }
        let mut a = Vec::with_capacity(rows.len() * m);
        for c in &columns {
            a.extend(
                rows.iter()
                    .map(|&i| adjusted[i] * c[self.of_row[i] as usize]),
            );
        }
        numerical_rank(&a, rows.len(), m)
    }
}
