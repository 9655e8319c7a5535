//! Fine cells: respondent rows grouped by (first-stage PSU, the value of every domain
//! breakdown, calibration cell).
//!
//! Every quantity of the grouped Taylor pass of one breakdown is a sum over the rows of a
//! (domain value, PSU) cell: Σ w, Σ w y, Σ w x, rows, rows with non-zero weight, Σ w (y − ȳ_d)²
//! and, for a calibrated scheme, Σ m b z ([`super::LinearResidual`]). A fine cell lies inside
//! exactly one (domain value, PSU) cell of every breakdown, and inside one calibration cell,
//! where the model row m is constant. So one pass over the rows per indicator, into the fine
//! cells, gives every breakdown's sums by adding fine cells, instead of one pass over the rows
//! per indicator × breakdown. A survey's domains are few and PSUs hold tens of respondents, so
//! there are far fewer fine cells than rows (36,000 for 851,000 rows in the benchmark); when
//! there are not, the caller keeps the per-breakdown passes.
//!
//! The within-domain sum of squares comes from shifted sums: with c a constant (the first
//! defined value of the indicator), Σ w (y − ȳ)² = Σ w (y − c)² − 2 (ȳ − c) Σ w (y − c) +
//! (ȳ − c)² Σ w, which keeps the precision of the two-pass form when the values are far from
//! zero (Chan, Golub & LeVeque 1983, "shifted data").

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::{Breakdown, IndicatorValues, PsuCell, estimator};
use crate::questionnaire::IndicatorKind;

/// A breakdown's value of a fine cell whose rows have no value of that domain variable.
const NO_VALUE: u32 = u32::MAX;

/// Rows of a matrix stored by their non-zero entries, in column order.
#[derive(Debug, Default)]
pub(super) struct SparseRows {
    start: Vec<usize>,
    column: Vec<u32>,
    value: Vec<f64>,
}

impl SparseRows {
    /// The rows of `n_rows` × `dim` row-major `dense`, without its exact zeros.
    pub(super) fn from_dense(dense: &[f64], dim: usize) -> SparseRows {
        let mut rows = SparseRows::default();
        rows.start.push(0);
        for row in dense.chunks_exact(dim.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    rows.column.push(j as u32);
                    rows.value.push(v);
                }
            }
            rows.start.push(rows.column.len());
        }
        rows
    }

    /// Σ_j row_i[j] · `v[j]` over the non-zero entries in column order: the dense row's
    /// sum with its zero products left out, which changes nothing but the sign of a zero
    /// result when `v` is finite.
    #[inline]
    pub(super) fn dot(&self, i: usize, v: &[f64]) -> f64 {
        let (a, b) = (self.start[i], self.start[i + 1]);
        self.column[a..b]
            .iter()
            .zip(&self.value[a..b])
            .map(|(&j, &m)| m * v[j as usize])
            .sum::<f64>()
    }

    /// Adds `s` · row i to `out`.
    #[inline]
    fn add_scaled(&self, i: usize, s: f64, out: &mut [f64]) {
        let (a, b) = (self.start[i], self.start[i + 1]);
        for (&j, &m) in self.column[a..b].iter().zip(&self.value[a..b]) {
            out[j as usize] += m * s;
        }
    }
}

/// Respondent rows grouped by (PSU, domain values, calibration cell).
pub(super) struct FineCells {
    /// Fine cell of every row.
    of_row: Vec<u32>,
    /// First-stage PSU of every fine cell.
    psu: Vec<u32>,
    /// Per breakdown (in the request's order, `_T` first), the domain value of every fine cell
    /// ([`NO_VALUE`] where the variable has none).
    value: Vec<Vec<u32>>,
    /// The first row of every fine cell (its calibration model row stands for all its rows).
    first_row: Vec<u32>,
    /// The calibration model row of every fine cell, taken once from its first row for
    /// every indicator × breakdown that reads it (cells split by calibration cell only).
    model: Option<SparseRows>,
    /// Per breakdown, its (domain value, PSU) pairs, formed when first asked for.
    domain_psus: Vec<OnceLock<Arc<DomainPsus>>>,
}

/// Per-indicator sums of one fine cell over its defined rows.
#[derive(Clone, Copy, Default)]
pub(super) struct FineSum {
    w: f64,
    wy: f64,
    wx: f64,
    /// Σ w (y − c) and Σ w (y − c)², c the indicator's shift.
    wd: f64,
    wdd: f64,
    /// Σ b w y and Σ b w x̃ (x̃ = 1 for means and proportions, x for ratios, 0 for totals):
    /// Σ m b z over the cell is m (Σ b w y − θ Σ b w x̃).
    sy: f64,
    sx: f64,
    rows: u32,
    nonzero: u32,
}

/// Calls `f(j, m_ij)` for the non-zero entries of row i's calibration model row.
pub(super) type ModelTerms<'a> = dyn Fn(usize, &mut dyn FnMut(usize, f64)) + 'a;

/// One indicator's sums by fine cell.
pub(super) struct FineTotals {
    sums: Vec<FineSum>,
    shift: f64,
}

/// The (domain value, PSU) pairs of a breakdown that hold fine cells: domain after domain,
/// PSUs ascending within a domain (most pairs are empty: a region's domain has only that
/// region's PSUs).
#[derive(Debug)]
pub(super) struct DomainPsus {
    /// Position of every fine cell's pair ([`NO_VALUE`] for a cell without a domain value).
    pair_of_cell: Vec<u32>,
    /// PSU of every pair.
    pub psu: Vec<u32>,
    /// Pairs of domain value d: `domain_start[d]..domain_start[d + 1]`.
    pub domain_start: Vec<usize>,
}

/// A breakdown's sums, as the grouped Taylor pass needs them.
pub(super) struct DomainSums {
    /// By (domain value, PSU), domain-major: every pair (`pairs` none, `n_psu` per domain
    /// value) or those of `pairs`.
    pub cells: Vec<PsuCell>,
    pub pairs: Option<Arc<DomainPsus>>,
    pub sw: Vec<f64>,
    pub swy: Vec<f64>,
    pub swx: Vec<f64>,
    pub count: Vec<usize>,
    pub nobs: Vec<usize>,
    /// Σ w (y − ȳ_d)² per domain value (zero for ratios, which have no design effect).
    pub ss: Vec<f64>,
    /// Σ_D m b z per domain value (domain-major, `dim` entries each); empty without calibration.
    pub rhs: Vec<f64>,
}

impl DomainSums {
    /// The cells of domain value `d` and, when they are not all `n_psu` PSUs in order, the
    /// PSU of each (ascending).
    pub(super) fn of_domain(&self, d: usize, n_psu: usize) -> (&[PsuCell], Option<&[u32]>) {
        match &self.pairs {
            None => (&self.cells[d * n_psu..(d + 1) * n_psu], None),
            Some(pairs) => {
                let range = pairs.domain_start[d]..pairs.domain_start[d + 1];
                (&self.cells[range.clone()], Some(&pairs.psu[range]))
            }
        }
    }
}

/// A component of the fine-cell key: its code of a row, below `radix`.
type Component<'a> = (&'a (dyn Fn(usize) -> u32 + Sync), u64);

/// Rows numbered by (PSU, `previous` cell, the codes of `components`), in order of first
/// appearance: the fine cell of every row, and the number of cells. The components are packed
/// into 32-bit keys (several per key, mixed radix), each key refining the cells of the one
/// before.
fn cells_within_psus(
    psu_of_row: &[u32],
    n_psu: usize,
    previous: Option<&[u32]>,
    components: &[Component<'_>],
) -> (Vec<u32>, usize) {
    type Strided<'a> = (&'a (dyn Fn(usize) -> u32 + Sync), u64);
    let mut groups: Vec<(Vec<Strided<'_>>, u64)> = Vec::new();
    for &(code, radix) in components {
        match groups.last_mut() {
            Some((group, product)) if product.checked_mul(radix).is_some_and(|p| p <= 1 << 32) => {
                group.push((code, *product));
                *product *= radix;
            }
            _ => groups.push((vec![(code, 1)], radix)),
        }
    }
    let mut cells: Option<(Vec<u32>, usize)> = None;
    for (group, _) in &groups {
        let before = cells
            .as_ref()
            .map(|(of_row, _)| of_row.as_slice())
            .or(previous);
        let key = |r: usize| -> u64 {
            let packed: u64 = group
                .iter()
                .map(|&(code, stride)| u64::from(code(r)) * stride)
                .sum();
            (u64::from(before.map_or(0, |p| p[r])) << 32) | packed
        };
        cells = Some(number_within_psus(psu_of_row, n_psu, &key));
    }
    cells.unwrap_or_else(|| {
        number_within_psus(psu_of_row, n_psu, &|r| {
            previous.map_or(0, |p| u64::from(p[r]))
        })
    })
}

/// Rows numbered by (PSU, `key`) in order of first appearance. A PSU's rows are taken
/// together (as they lie when the data is sorted by PSU, else after a counting sort) and
/// sorted by key there, PSUs in parallel; the numbering is then one pass in row order.
fn number_within_psus(
    psu_of_row: &[u32],
    n_psu: usize,
    key: &(dyn Fn(usize) -> u64 + Sync),
) -> (Vec<u32>, usize) {
    let n = psu_of_row.len();
    // (row, first row of its cell), PSU after PSU, rows ascending within a PSU.
    let mut by_psu: Vec<(u32, u32)> = if psus_contiguous(psu_of_row, n_psu) {
        (0..n as u32).map(|r| (r, 0)).collect()
    } else {
        let mut start = vec![0usize; n_psu + 1];
        for &p in psu_of_row {
            start[p as usize + 1] += 1;
        }
        for p in 0..n_psu {
            start[p + 1] += start[p];
        }
        let mut out = vec![(0u32, 0u32); n];
        for (r, &p) in psu_of_row.iter().enumerate() {
            out[start[p as usize]].0 = r as u32;
            start[p as usize] += 1;
        }
        out
    };
    by_psu
        .par_chunk_by_mut(|a, b| psu_of_row[a.0 as usize] == psu_of_row[b.0 as usize])
        .for_each_init(Vec::new, |sorted: &mut Vec<(u64, u32)>, rows| {
            sorted.clear();
            sorted.extend(
                rows.iter()
                    .enumerate()
                    .map(|(i, &(r, _))| (key(r as usize), i as u32)),
            );
            // Equal keys keep their rows' order, so a cell's first entry is its first row.
            sorted.sort_unstable();
            let mut first = 0u32;
            for (k, &(key, i)) in sorted.iter().enumerate() {
                if k == 0 || sorted[k - 1].0 != key {
                    first = rows[i as usize].0;
                }
                rows[i as usize].1 = first;
            }
        });
    let mut of_row = vec![0u32; n];
    for &(r, first) in &by_psu {
        of_row[r as usize] = first;
    }
    // Cells numbered in order of their first rows: a cell's first row comes at or before each
    // of its rows, so its number is known when a later row asks for it.
    let mut number_of_first = by_psu;
    let mut next = 0u32;
    for r in 0..n {
        let first = of_row[r] as usize;
        if first == r {
            number_of_first[r].0 = next;
            next += 1;
        }
        of_row[r] = number_of_first[first].0;
    }
    (of_row, next as usize)
}

/// Whether each PSU's rows are one run of consecutive rows.
fn psus_contiguous(psu_of_row: &[u32], n_psu: usize) -> bool {
    let mut seen = vec![false; n_psu];
    let mut current = None;
    for &p in psu_of_row {
        if current != Some(p) {
            if std::mem::replace(&mut seen[p as usize], true) {
                return false;
            }
            current = Some(p);
        }
    }
    true
}

impl FineCells {
    /// The fine cells of `breakdowns` over PSUs `psu_of_row` (codes below `n_psu`); a
    /// calibrated scheme's split them by calibration cell
    /// ([`FineCells::split_by_calibration`]). `None` when they would number more than half the
    /// rows: the per-breakdown passes are then as cheap.
    pub(super) fn build(
        psu_of_row: &[u32],
        n_psu: usize,
        breakdowns: &[Breakdown],
    ) -> Option<FineCells> {
        let n = psu_of_row.len();
        if n == 0 || breakdowns.iter().any(|b| b.of_row.len() != n) {
            return None;
        }
        // A breakdown splits the PSUs unless every row has the same value (the whole sample).
        let codes: Vec<(&[u32], u64)> = breakdowns
            .iter()
            .filter(|b| {
                let codes = b.of_row.codes();
                b.labels.len() > 1 || codes.iter().any(|&c| c != codes[0])
            })
            .map(|b| {
                // No value (`u32::MAX`) takes the code after the last label.
                (b.of_row.codes(), b.labels.len() as u64 + 1)
            })
            .collect();
        let by_code: Vec<Box<dyn Fn(usize) -> u32 + Sync + '_>> = codes
            .iter()
            .map(|&(c, radix)| -> Box<dyn Fn(usize) -> u32 + Sync + '_> {
                let none = (radix - 1) as u32;
                Box::new(move |r: usize| c[r].min(none))
            })
            .collect();
        let components: Vec<Component<'_>> = by_code
            .iter()
            .zip(&codes)
            .map(|(f, &(_, radix))| (f.as_ref(), radix))
            .collect();
        // The PSUs alone are the cells of the whole sample, however many.
        if components.is_empty() {
            return Some(FineCells::numbered(
                psu_of_row.to_vec(),
                n_psu,
                psu_of_row,
                breakdowns,
            ));
        }
        let (of_row, count) = cells_within_psus(psu_of_row, n_psu, None, &components);
        (count <= n / 2).then(|| FineCells::numbered(of_row, count, psu_of_row, breakdowns))
    }

    /// These cells split further by calibration cell `cell_of` (codes below `n_cells`), numbered
    /// in order of first appearance as the cells of (PSU, domain values, calibration cell),
    /// without grouping the rows by the domain values again. `terms` gives the
    /// model row of a design row (see [`FineCells::domain_sums`]).
    pub(super) fn split_by_calibration(
        &self,
        psu_of_row: &[u32],
        n_psu: usize,
        breakdowns: &[Breakdown],
        cell_of: &(dyn Fn(usize) -> u32 + Sync),
        n_cells: usize,
        terms: &ModelTerms<'_>,
    ) -> Option<FineCells> {
        let (of_row, count) = cells_within_psus(
            psu_of_row,
            n_psu,
            Some(&self.of_row),
            &[(cell_of, n_cells.max(1) as u64)],
        );
        if count > of_row.len() / 2 {
            return None;
        }
        let mut cells = FineCells::numbered(of_row, count, psu_of_row, breakdowns);
        let mut model = SparseRows::default();
        model.start.push(0);
        for &r in &cells.first_row {
            terms(r as usize, &mut |j, m| {
                model.column.push(j as u32);
                model.value.push(m);
            });
            model.start.push(model.column.len());
        }
        cells.model = Some(model);
        Some(cells)
    }

    /// The cells of rows numbered `of_row` (below `count`, in order of first appearance).
    fn numbered(
        of_row: Vec<u32>,
        count: usize,
        psu_of_row: &[u32],
        breakdowns: &[Breakdown],
    ) -> FineCells {
        let mut first_row = vec![u32::MAX; count];
        for (r, &c) in of_row.iter().enumerate() {
            let slot = &mut first_row[c as usize];
            if *slot == u32::MAX {
                *slot = r as u32;
            }
        }
        let psu = first_row.iter().map(|&r| psu_of_row[r as usize]).collect();
        let value = breakdowns
            .iter()
            .map(|b| {
                first_row
                    .iter()
                    .map(|&r| b.of_row.at(r as usize).unwrap_or(NO_VALUE))
                    .collect()
            })
            .collect();
        FineCells {
            of_row,
            psu,
            value,
            first_row,
            model: None,
            domain_psus: breakdowns.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Number of fine cells.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.psu.len()
    }

    /// One pass over the rows: the sums of indicator `vals` under weights `w` by fine cell;
    /// `score_weight` = b_i w_i of a calibrated scheme.
    pub(super) fn totals(
        &self,
        kind: IndicatorKind,
        vals: &IndicatorValues,
        w: &[f64],
        score_weight: Option<&[f64]>,
    ) -> FineTotals {
        let shift = (0..vals.y.len())
            .find(|&r| vals.defined[r])
            .map_or(0.0, |r| vals.y[r]);
        let mut sums = vec![FineSum::default(); self.psu.len()];
        for (r, &c) in self.of_row.iter().enumerate() {
            if !vals.defined[r] {
                continue;
            }
            let (wr, y) = (w[r], vals.y[r]);
            let x = vals.x.as_ref().map_or(0.0, |x| x[r]);
            let dy = y - shift;
            let e = &mut sums[c as usize];
            e.w += wr;
            e.wy += wr * y;
            e.wx += wr * x;
            e.wd += wr * dy;
            e.wdd += wr * dy * dy;
            e.rows += 1;
            e.nonzero += u32::from(wr != 0.0);
            if let Some(sw) = score_weight {
                e.sy += sw[r] * y;
                e.sx += sw[r] * estimator::theta_coefficient(kind, x);
            }
        }
        FineTotals { sums, shift }
    }

    /// Rows with a defined value (`defined`) by domain value of every breakdown marked in
    /// `wanted` (an empty list for the others): one pass over the rows into the fine cells.
    pub(super) fn defined_counts(
        &self,
        defined: &[bool],
        wanted: &[bool],
        breakdowns: &[Breakdown],
    ) -> Vec<Vec<usize>> {
        let mut per_cell = vec![0usize; self.psu.len()];
        for (&c, &d) in self.of_row.iter().zip(defined) {
            per_cell[c as usize] += usize::from(d);
        }
        breakdowns
            .iter()
            .zip(wanted)
            .zip(&self.value)
            .map(|((bd, &w), value)| {
                let mut n = vec![0usize; if w { bd.labels.len() } else { 0 }];
                if w {
                    for (&v, &rows) in value.iter().zip(&per_cell) {
                        if v != NO_VALUE {
                            n[v as usize] += rows;
                        }
                    }
                }
                n
            })
            .collect()
    }

    /// Breakdown `b`'s (domain value, PSU) pairs among the fine cells (`levels` values,
    /// `n_psu` PSUs).
    fn pairs_of(&self, b: usize, levels: usize, n_psu: usize) -> DomainPsus {
        let values = &self.value[b];
        // Cells by domain value (a counting sort), then each value's PSUs marked and listed.
        let mut start = vec![0usize; levels + 1];
        for &d in values.iter().filter(|&&d| d != NO_VALUE) {
            start[d as usize + 1] += 1;
        }
        for d in 0..levels {
            start[d + 1] += start[d];
        }
        let mut fill = start.clone();
        let mut cells_by_value = vec![0u32; start[levels]];
        for (c, &d) in values.iter().enumerate().filter(|(_, d)| **d != NO_VALUE) {
            cells_by_value[fill[d as usize]] = c as u32;
            fill[d as usize] += 1;
        }
        let mut pair_of_cell = vec![NO_VALUE; values.len()];
        let mut psu = Vec::new();
        let mut domain_start = Vec::with_capacity(levels + 1);
        let mut pair_at_psu = vec![NO_VALUE; n_psu];
        let mut listed = Vec::new();
        for d in 0..levels {
            domain_start.push(psu.len());
            let cells = &cells_by_value[start[d]..start[d + 1]];
            listed.clear();
            for &c in cells {
                let p = self.psu[c as usize];
                if pair_at_psu[p as usize] == NO_VALUE {
                    pair_at_psu[p as usize] = 0;
                    listed.push(p);
                }
            }
            listed.sort_unstable();
            for &p in &listed {
                pair_at_psu[p as usize] = psu.len() as u32;
                psu.push(p);
            }
            for &c in cells {
                pair_of_cell[c as usize] = pair_at_psu[self.psu[c as usize] as usize];
            }
            for &p in &listed {
                pair_at_psu[p as usize] = NO_VALUE;
            }
        }
        domain_start.push(psu.len());
        DomainPsus {
            pair_of_cell,
            psu,
            domain_start,
        }
    }

    /// Breakdown `b`'s Σ w, Σ w y and Σ w x by domain value (`levels` values), from one
    /// indicator's fine-cell sums: what a point estimate needs.
    pub(super) fn domain_totals(
        &self,
        b: usize,
        levels: usize,
        totals: &FineTotals,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut sw, mut swy, mut swx) = (vec![0.0; levels], vec![0.0; levels], vec![0.0; levels]);
        for (t, &d) in totals.sums.iter().zip(&self.value[b]) {
            if t.rows == 0 || d == NO_VALUE {
                continue;
            }
            let d = d as usize;
            sw[d] += t.w;
            swy[d] += t.wy;
            swx[d] += t.wx;
        }
        (sw, swy, swx)
    }

    /// Breakdown `b`'s sums (with `levels` domain values, over `n_psu` PSUs) from one
    /// indicator's fine-cell sums. `terms(i, f)` calls `f(j, m_ij)` for the model row of row
    /// `i` of a calibrated scheme of model dimension `dim` (0 without calibration).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn domain_sums(
        &self,
        b: usize,
        levels: usize,
        n_psu: usize,
        kind: IndicatorKind,
        totals: &FineTotals,
        dim: usize,
        terms: &ModelTerms<'_>,
    ) -> DomainSums {
        let k = levels;
        let pairs = Arc::clone(
            self.domain_psus[b].get_or_init(|| Arc::new(self.pairs_of(b, levels, n_psu))),
        );
        let mut out = DomainSums {
            cells: vec![PsuCell::default(); pairs.psu.len()],
            pairs: Some(Arc::clone(&pairs)),
            sw: vec![0.0; k],
            swy: vec![0.0; k],
            swx: vec![0.0; k],
            count: vec![0; k],
            nobs: vec![0; k],
            ss: vec![0.0; k],
            rhs: vec![0.0; k * dim],
        };
        let (mut wd, mut wdd) = (vec![0.0; k], vec![0.0; k]);
        let values = &self.value[b];
        for (c, t) in totals.sums.iter().enumerate() {
            let d = values[c];
            if t.rows == 0 || d == NO_VALUE {
                continue;
            }
            let d = d as usize;
            let cell = &mut out.cells[pairs.pair_of_cell[c] as usize];
            cell.w += t.w;
            cell.wy += t.wy;
            cell.wx += t.wx;
            cell.rows += t.rows;
            cell.nonzero += t.nonzero;
            out.sw[d] += t.w;
            out.swy[d] += t.wy;
            out.swx[d] += t.wx;
            out.count[d] += t.rows as usize;
            out.nobs[d] += t.nonzero as usize;
            wd[d] += t.wd;
            wdd[d] += t.wdd;
        }
        let estimate: Vec<f64> = (0..k)
            .map(|d| estimator::point(kind, out.sw[d], out.swy[d], out.swx[d]))
            .collect();
        if kind != IndicatorKind::Ratio {
            for d in 0..k {
                let off = out.swy[d] / out.sw[d] - totals.shift;
                let ss = wdd[d] - 2.0 * off * wd[d] + off * off * out.sw[d];
                // Rounding can leave a constant domain's sum of squares a hair below zero (a
                // domain without weight keeps its NaN, as on the rows).
                out.ss[d] = if ss < 0.0 { 0.0 } else { ss };
            }
        }
        if dim > 0 {
            for (c, t) in totals.sums.iter().enumerate() {
                let d = values[c];
                if t.rows == 0 || d == NO_VALUE {
                    continue;
                }
                let d = d as usize;
                let s = t.sy - estimate[d] * t.sx;
                if s != 0.0 {
                    let row = &mut out.rhs[d * dim..(d + 1) * dim];
                    match &self.model {
                        Some(model) => model.add_scaled(c, s, row),
                        None => terms(self.first_row[c] as usize, &mut |j, m| row[j] += m * s),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakdown(var: &str, labels: usize, of_row: Vec<Option<u32>>) -> Breakdown {
        Breakdown {
            var: var.into(),
            labels: (0..labels).map(|l| l.to_string()).collect(),
            of_row: of_row.into_iter().collect(),
            published: true,
        }
    }

    #[test]
    fn cells_split_rows_by_psu_domains_and_calibration_cell() {
        // Six rows, each twice (a fine cell per two rows at most, under the half-the-rows cap).
        let twice = |v: &[u32]| -> Vec<u32> { v.iter().flat_map(|&x| [x, x]).collect() };
        let psu = twice(&[0, 0, 0, 1, 1, 1]);
        let total = breakdown("_T", 1, vec![Some(0); 12]);
        let sex_values = [Some(0), Some(1), Some(0), Some(0), None, Some(0)];
        let sex = breakdown("sex", 2, sex_values.iter().flat_map(|&x| [x, x]).collect());
        let cal = twice(&[0, 0, 1, 0, 0, 0]);
        let cal_of = |r: usize| cal[r];
        let breakdowns = [total, sex];
        let fine = FineCells::build(&psu, 2, &breakdowns)
            .and_then(|cells| {
                cells.split_by_calibration(&psu, 2, &breakdowns, &cal_of, 2, &|_, _| {})
            })
            .expect("cells");
        // (psu 0, F, cell 0), (psu 0, M, 0), (psu 0, F, 1), (psu 1, F, 0), (psu 1, none, 0).
        assert_eq!(fine.len(), 5);
        assert_eq!(fine.of_row, twice(&[0, 1, 2, 3, 4, 3]));
        assert_eq!(fine.psu, vec![0, 0, 0, 1, 1]);
        assert_eq!(fine.value[1], vec![0, 1, 0, 0, NO_VALUE]);
        assert_eq!(fine.first_row, vec![0, 2, 4, 6, 8]);
    }

    /// Respondents by domain value from the fine cells equal the count over the rows, for a
    /// plain breakdown and a cross of two, with undefined rows and rows without a value.
    #[test]
    fn defined_counts_equal_counts_over_rows() {
        let n = 400;
        let psu: Vec<u32> = (0..n).map(|r| (r / 100) as u32).collect();
        let total = breakdown("_T", 1, vec![Some(0); n]);
        let sex = breakdown("sex", 2, (0..n).map(|r| Some((r % 2) as u32)).collect());
        let region = breakdown(
            "region",
            3,
            (0..n)
                .map(|r| (r % 7 != 0).then_some((r % 3) as u32))
                .collect(),
        );
        let crossed = super::super::cross(&sex, &region);
        let breakdowns = [total, sex, region, crossed];
        let fine = FineCells::build(&psu, 4, &breakdowns).expect("cells");
        let defined: Vec<bool> = (0..n).map(|r| r % 5 != 0).collect();
        let wanted = [false, true, true, true];
        let counts = fine.defined_counts(&defined, &wanted, &breakdowns);
        assert!(counts[0].is_empty());
        for (b, bd) in breakdowns.iter().enumerate().skip(1) {
            let mut direct = vec![0usize; bd.labels.len()];
            for r in 0..n {
                if let (Some(d), true) = (bd.of_row.at(r), defined[r]) {
                    direct[d as usize] += 1;
                }
            }
            assert_eq!(counts[b], direct, "{}", bd.var);
        }
        assert_eq!(breakdowns[3].labels.len(), 6);
    }

    /// Pseudo-random codes below `m` (a fixed linear congruential sequence).
    fn codes(n: usize, m: u32, seed: u64) -> Vec<u32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((x >> 33) % u64::from(m)) as u32
            })
            .collect()
    }

    /// Numbering by a map of (PSU, codes) in row order: the definition of the cells.
    fn numbered_by_map(psu: &[u32], codes: &[Vec<u32>]) -> (Vec<u32>, usize) {
        let mut map = std::collections::HashMap::new();
        let of_row: Vec<u32> = (0..psu.len())
            .map(|r| {
                let key: Vec<u32> = std::iter::once(psu[r])
                    .chain(codes.iter().map(|c| c[r]))
                    .collect();
                let next = map.len() as u32;
                *map.entry(key).or_insert(next)
            })
            .collect();
        (of_row, map.len())
    }

    /// Cells within PSUs number as a map of (PSU, codes) in row order does: PSUs in runs or
    /// scattered, components packed into one key or several (radices past 2^32), and on top
    /// of earlier cells.
    #[test]
    fn cells_within_psus_number_rows_in_order_of_first_appearance() {
        let n = 5000;
        for (scattered, radices) in [
            (false, vec![3u32, 6, 41]),
            (true, vec![3, 6, 41]),
            (true, vec![70_000, 70_000, 2]),
            (false, vec![1]),
        ] {
            let psu: Vec<u32> = if scattered {
                codes(n, 60, 21)
            } else {
                (0..n).map(|r| (r / 83) as u32).collect()
            };
            let n_psu = psu.iter().max().map_or(0, |&m| m as usize + 1);
            // Few distinct values of the large radices, so that cells repeat.
            let values: Vec<Vec<u32>> = radices
                .iter()
                .enumerate()
                .map(|(k, &radix)| {
                    codes(n, radix.min(4), 30 + k as u64)
                        .into_iter()
                        .map(|c| c * (radix / radix.min(4)))
                        .collect()
                })
                .collect();
            let code_fns: Vec<Box<dyn Fn(usize) -> u32 + Sync + '_>> = values
                .iter()
                .map(|v| -> Box<dyn Fn(usize) -> u32 + Sync + '_> { Box::new(move |r| v[r]) })
                .collect();
            let components: Vec<Component<'_>> = code_fns
                .iter()
                .zip(&radices)
                .map(|(f, &radix)| (f.as_ref(), u64::from(radix)))
                .collect();
            let got = cells_within_psus(&psu, n_psu, None, &components);
            let want = numbered_by_map(&psu, &values);
            assert_eq!(got, want, "scattered {scattered}, radices {radices:?}");
            assert!(want.1 > n_psu || radices == [1]);
            // The same cells refined by one more code.
            let extra = codes(n, 5, 40);
            let extra_fn = |r: usize| extra[r];
            let refined = cells_within_psus(&psu, n_psu, Some(&got.0), &[(&extra_fn, 5)]);
            let mut all = values.clone();
            all.push(extra.clone());
            assert_eq!(refined, numbered_by_map(&psu, &all));
        }
    }

    /// A breakdown with one label and rows without a value splits the cells: its rows with and
    /// without the value are not summed together.
    #[test]
    fn a_one_valued_breakdown_with_blank_rows_splits_the_cells() {
        let psu = vec![0u32; 8];
        let total = breakdown("_T", 1, vec![Some(0); 8]);
        let urban = breakdown(
            "urban",
            1,
            vec![
                None,
                Some(0),
                Some(0),
                None,
                Some(0),
                None,
                Some(0),
                Some(0),
            ],
        );
        let fine = FineCells::build(&psu, 1, &[total, urban]).expect("cells");
        assert_eq!(fine.len(), 2);
        assert_eq!(fine.value[1], vec![NO_VALUE, 0]);
        let vals = IndicatorValues {
            y: vec![1.0; 8].into(),
            x: None,
            defined: vec![true; 8],
            item_missing: None,
        };
        let totals = fine.totals(IndicatorKind::Total, &vals, &[1.0; 8], None);
        let sums = fine.domain_sums(1, 1, 1, IndicatorKind::Total, &totals, 0, &|_, _| {});
        assert_eq!(sums.count, vec![5]);
        assert_eq!(sums.sw, vec![5.0]);
    }

    /// Splitting the cells of the breakdowns by calibration cell numbers rows as a map of
    /// (PSU, domain values, calibration cell) in row order does.
    #[test]
    fn splitting_by_calibration_numbers_cells_by_first_appearance() {
        let n = 6000;
        let psu: Vec<u32> = (0..n).map(|r| (r / 300) as u32).collect();
        let total = breakdown("_T", 1, vec![Some(0); n]);
        let sex_codes = codes(n, 3, 5);
        let sex = breakdown(
            "sex",
            2,
            sex_codes.iter().map(|&c| (c < 2).then_some(c)).collect(),
        );
        let age = breakdown("age", 4, codes(n, 4, 6).into_iter().map(Some).collect());
        let breakdowns = [total, sex, age];
        let cal = codes(n, 12, 7);
        let cal_of = |r: usize| cal[r];
        // A model row constant within a calibration cell: intercept and the cell's column.
        let terms = |i: usize, f: &mut dyn FnMut(usize, f64)| {
            f(0, 1.0);
            f(1 + cal[i] as usize, 2.0 + f64::from(cal[i]));
        };
        let split = FineCells::build(&psu, 20, &breakdowns)
            .expect("cells")
            .split_by_calibration(&psu, 20, &breakdowns, &cal_of, 12, &terms)
            .expect("cells");
        let codes_of = |b: &Breakdown| b.of_row.codes().to_vec();
        let by_map = numbered_by_map(
            &psu,
            &[
                codes_of(&breakdowns[1]),
                codes_of(&breakdowns[2]),
                cal.clone(),
            ],
        );
        assert!(by_map.1 > 20 * 100);
        assert_eq!((split.of_row.clone(), split.len()), by_map);
        // The model rows kept per cell give the sums Σ m b z the model of each first row gives.
        let at_once = FineCells::numbered(split.of_row.clone(), split.len(), &psu, &breakdowns);
        assert!(at_once.model.is_none() && split.model.is_some());
        let y: Vec<f64> = codes(n, 5, 8).into_iter().map(f64::from).collect();
        let w: Vec<f64> = codes(n, 7, 9)
            .into_iter()
            .map(|c| 1.0 + f64::from(c))
            .collect();
        let b_w: Vec<f64> = w.iter().map(|w| 0.9 * w).collect();
        let vals = IndicatorValues {
            y: y.into(),
            x: None,
            defined: codes(n, 10, 11).into_iter().map(|c| c > 0).collect(),
            item_missing: None,
        };
        let kind = IndicatorKind::Mean;
        for (b, breakdown) in breakdowns.iter().enumerate() {
            let levels = breakdown.labels.len();
            let sums = |cells: &FineCells| {
                let totals = cells.totals(kind, &vals, &w, Some(&b_w));
                cells
                    .domain_sums(b, levels, 20, kind, &totals, 14, &terms)
                    .rhs
            };
            let (kept, from_rows) = (sums(&split), sums(&at_once));
            assert!(kept.iter().any(|&x| x != 0.0));
            assert_eq!(
                kept.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                from_rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    /// A breakdown's (domain value, PSU) cells hold exactly the rows of that value in that PSU,
    /// every PSU with such rows listed once, ascending, with PSUs scattered over the rows.
    #[test]
    fn domain_psu_cells_hold_the_rows_of_each_pair() {
        let n = 4000;
        let psu = codes(n, 50, 61);
        let total = breakdown("_T", 1, vec![Some(0); n]);
        let region_of_psu = codes(50, 6, 62);
        let region = breakdown(
            "region",
            6,
            (0..n)
                .map(|r| Some(region_of_psu[psu[r] as usize]))
                .collect(),
        );
        let sex_codes = codes(n, 3, 63);
        let sex = breakdown(
            "sex",
            2,
            sex_codes.iter().map(|&c| (c < 2).then_some(c)).collect(),
        );
        let breakdowns = [total, region, sex];
        let fine = FineCells::build(&psu, 50, &breakdowns).expect("cells");
        let w: Vec<f64> = codes(n, 9, 64)
            .into_iter()
            .map(|c| 1.0 + f64::from(c))
            .collect();
        let vals = IndicatorValues {
            y: vec![1.0; n].into(),
            x: None,
            defined: codes(n, 7, 65).into_iter().map(|c| c > 0).collect(),
            item_missing: None,
        };
        let totals = fine.totals(IndicatorKind::Mean, &vals, &w, None);
        for (b, bd) in breakdowns.iter().enumerate() {
            let levels = bd.labels.len();
            let sums = fine.domain_sums(b, levels, 50, IndicatorKind::Mean, &totals, 0, &|_, _| {});
            let mut rows = vec![vec![0u32; 50]; levels];
            for r in (0..n).filter(|&r| vals.defined[r]) {
                if let Some(d) = bd.of_row.at(r) {
                    rows[d as usize][psu[r] as usize] += 1;
                }
            }
            for (d, want) in rows.iter().enumerate() {
                let (cells, psu_of) = sums.of_domain(d, 50);
                let psu_of = psu_of.expect("pairs");
                assert!(psu_of.windows(2).all(|p| p[0] < p[1]));
                let mut got = vec![0u32; 50];
                for (c, &p) in cells.iter().zip(psu_of) {
                    got[p as usize] = c.rows;
                }
                assert_eq!(&got, want, "breakdown {b}, value {d}");
            }
            // A region's domain lists that region's PSUs only.
            if b == 1 {
                let (cells, _) = sums.of_domain(0, 50);
                assert!(cells.len() < 50);
            }
        }
    }

    /// The sparse rows' product is the dense row's (zeros left out).
    #[test]
    fn sparse_rows_dot_equals_the_dense_product() {
        let dense = [0.0, 2.5, 0.0, -1.0, 0.0, 0.0, 3.0, 0.0, 0.25];
        let rows = SparseRows::from_dense(&dense, 3);
        let v = [0.1, 0.7, -3.0];
        for (i, row) in dense.chunks(3).enumerate() {
            let full: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
            assert_eq!(rows.dot(i, &v), full);
        }
        assert_eq!(rows.column, vec![1, 0, 0, 2]);
        let mut out = [0.0; 3];
        rows.add_scaled(2, 2.0, &mut out);
        assert_eq!(out, [6.0, 0.0, 0.5]);
    }

    #[test]
    fn too_many_cells_give_none() {
        // Every row its own PSU: more cells than half the rows.
        let psu: Vec<u32> = (0..10).collect();
        let total = breakdown("_T", 1, vec![Some(0); 10]);
        assert!(FineCells::build(&psu, 10, &[total]).is_some());
        let id = breakdown("id", 10, (0..10).map(Some).collect());
        let psu = vec![0u32; 10];
        let total = breakdown("_T", 1, vec![Some(0); 10]);
        assert!(FineCells::build(&psu, 1, &[total, id]).is_none());
    }

    #[test]
    fn shifted_sum_of_squares_matches_two_passes() {
        // Values far from zero: the shifted sums keep the two-pass precision.
        let psu = [0u32, 0, 1, 1, 1];
        let total = breakdown("_T", 1, vec![Some(0); 5]);
        let fine = FineCells::build(&psu, 2, &[total]).expect("cells");
        let y = vec![1e9 + 1.0, 1e9 + 2.0, 1e9 + 4.0, 1e9 + 8.0, 1e9 + 16.0];
        let w = vec![1.0, 2.0, 1.5, 0.5, 3.0];
        let vals = IndicatorValues {
            y: y.clone().into(),
            x: None,
            defined: vec![true; 5],
            item_missing: None,
        };
        let totals = fine.totals(IndicatorKind::Mean, &vals, &w, None);
        let sums = fine.domain_sums(0, 1, 2, IndicatorKind::Mean, &totals, 0, &|_, _| {});
        let sw: f64 = w.iter().sum();
        let mean = y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>() / sw;
        let ss: f64 = y.iter().zip(&w).map(|(y, w)| w * (y - mean).powi(2)).sum();
        assert!(
            (sums.ss[0] - ss).abs() <= 1e-6 * ss,
            "{} vs {ss}",
            sums.ss[0]
        );
        assert_eq!(sums.count, vec![5]);
        assert_eq!(sums.cells[0].rows, 2);
        assert_eq!(sums.cells[1].rows, 3);
    }
}
