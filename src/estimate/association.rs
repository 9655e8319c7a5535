//! Rao–Scott test of association in a two-way table, as R's `svychisq` computes it.
//!
//! A pure kernel: it takes the estimated cell shares of an r × c table, their design covariance,
//! the number of rows of the (sub)design and the design degrees of freedom, and returns the
//! first-order-corrected F statistic or the Rao–Scott chi-squared test. Building those inputs
//! from a design is the caller's business.
//!
//! With p̂ the k = r·c cell shares (row variable varying fastest), V̂ their design covariance,
//! N the number of design rows and ν the design degrees of freedom:
//!
//! * Pearson's statistic on the table N·p̂ (R: `chisq.test(svytable(~a + b, design, Ntotal = N),
//!   correct = FALSE)`): X² = Σ (O − E)²/E with O = N p̂_ij and E = O_i+ O_+j / O_++;
//! * the generalized design effects matrix Δ = (C′ D⁻¹ C / N)⁻¹ (C′ D⁻¹ V̂ D⁻¹ C), where
//!   D = diag(p̂) (D⁻¹ taken as 0 for an empty cell) and C is a basis of the interaction
//!   contrasts: the k × (r−1)(c−1) residuals of the interaction columns of the saturated
//!   model on the main-effects model (R: `qr.resid(qr(X1), X12[, -(1:(r+c-1))])`);
//! * statistic "F" (the default of `svychisq`): F = X² / tr Δ on d₀ = (tr Δ)² / tr Δ² and
//!   d₀ ν degrees of freedom (Rao & Scott's second-order, Satterthwaite, correction, with the
//!   denominator degrees of freedom Thomas & Rao 1987 recommend);
//! * statistic "Chisq": X² as it stands, with p = P(χ²_{(r−1)(c−1)} > X² / δ̄), δ̄ = tr Δ /
//!   (r−1)(c−1) (the first-order correction).
//!
//! Δ depends on C only through its column space (another basis T gives T⁻¹ Δ T), so tr Δ and
//! tr Δ² do not depend on the basis. Here C is the treatment-contrast interaction columns
//! residualised on the main effects in closed form: the r × c grid is a balanced design with
//! one observation per cell, so the projection on the main effects of an indicator of cell
//! (a, b) is its row mean plus column mean minus grand mean; this is exactly R's `qr.resid`.
//!
//! References: Rao, J.N.K. & Scott, A.J. (1984), "On chi-squared tests for multiway contingency
//! tables with cell proportions estimated from survey data", Ann. Statist. 12:46–60; Thomas,
//! D.R. & Rao, J.N.K. (1987), JASA 82:630–636; Lumley, T., R package `survey`, `svychisq`
//! (R/surveychisq.R, survey 4.5). Golden values: `fixtures/api/make_association_kernel.R`.

use super::probability::{pchisq_upper, pf_upper};

/// Equilibrated pivot (the matrix scaled to a unit diagonal) at or below which the
/// denominator C′D⁻¹C/N is treated as singular. R's `solve` stops when the reciprocal
/// condition number falls below machine epsilon; a smaller pivot than this already leaves
/// tr Δ with fewer than about four correct digits.
const PIVOT_TOL: f64 = 1e-12;

/// Which statistic of `svychisq` to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationStatistic {
    /// R's `statistic = "F"`: X² / tr Δ on an F(d₀, d₀ ν) reference distribution.
    F,
    /// R's `statistic = "Chisq"`: X² with the Rao–Scott first-order corrected p-value.
    Chisq,
}

impl AssociationStatistic {
    /// Both statistics.
    pub const ALL: [AssociationStatistic; 2] =
        [AssociationStatistic::F, AssociationStatistic::Chisq];

    /// The name R's `svychisq` gives it (`"F"`, `"Chisq"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AssociationStatistic::F => "F",
            AssociationStatistic::Chisq => "Chisq",
        }
    }

    /// The statistic whose [`AssociationStatistic::as_str`] is `name`.
    pub fn from_name(name: &str) -> Option<AssociationStatistic> {
        AssociationStatistic::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The estimated two-way table a test of association is made on.
#[derive(Debug, Clone, Copy)]
pub struct TwoWayShares<'a> {
    /// Number of levels of the row variable (R's `nr`), at least 2.
    pub nr: usize,
    /// Number of levels of the column variable (R's `nc`), at least 2.
    pub nc: usize,
    /// Estimated share of each cell among the rows where both variables are defined, length
    /// nr·nc, the row variable varying fastest: cell (i, j) at `i + nr·j` (R's
    /// `interaction(factor(rows), factor(cols))` order, that of `expand.grid(rows, cols)`).
    /// R: `svymean(mm, design, na.rm = TRUE)`. Non-negative; zero for an empty cell.
    pub cell_share: &'a [f64],
    /// Design covariance of the cell shares, nr·nc × nr·nc, row-major (R:
    /// `attr(svymean(mm, design, na.rm = TRUE), "var")`).
    pub covariance: &'a [f64],
    /// Number of rows of the (sub)design, including rows where either variable is missing
    /// (R's `N = nrow(mm)`): the table is scaled to this total for Pearson's X².
    pub n_rows: f64,
    /// Design degrees of freedom (R's `nu = degf(design)`); used by the F statistic only.
    pub design_df: f64,
}

/// Pearson's statistic and the design effects of a table: everything either statistic needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RaoScott {
    /// Pearson's X² on the table scaled to `n_rows` (R's `chisq.test(...)$statistic`).
    pub pearson: f64,
    /// tr Δ: the sum of the generalized design effects.
    pub delta_trace: f64,
    /// tr Δ².
    pub delta_sq_trace: f64,
    /// (nr − 1)(nc − 1): the number of interaction contrasts (the order of Δ).
    pub df: usize,
    /// Design degrees of freedom ν.
    pub design_df: f64,
}

/// A test of association as `svychisq` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssociationTest {
    /// Which statistic.
    pub statistic: AssociationStatistic,
    /// F = X² / tr Δ for [`AssociationStatistic::F`]; X² itself for
    /// [`AssociationStatistic::Chisq`] (R divides by the mean design effect only inside the
    /// p-value).
    pub value: f64,
    /// Numerator degrees of freedom d₀ = (tr Δ)² / tr Δ² (F), or (nr − 1)(nc − 1) (Chisq).
    pub ndf: f64,
    /// Denominator degrees of freedom d₀ ν (F); none for Chisq.
    pub ddf: Option<f64>,
    /// Upper-tail p-value: P(F(d₀, d₀ν) > F), or P(χ²_{(nr−1)(nc−1)} > X² / mean diag Δ).
    pub p_value: f64,
}

/// Which margin of the table a level belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Margin {
    /// The row variable.
    Row,
    /// The column variable.
    Column,
}

impl std::fmt::Display for Margin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Margin::Row => "row",
            Margin::Column => "column",
        })
    }
}

/// Why a test of association cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssociationError {
    /// A variable has a single level.
    #[error(
        "a test of association needs at least 2 levels of each variable, but the table is \
         {nr} × {nc}: drop the variable with one level"
    )]
    TooFewLevels {
        /// Row levels.
        nr: usize,
        /// Column levels.
        nc: usize,
    },
    /// `cell_share` or `covariance` does not have the table's size.
    #[error("{what} has {got} entries, but a {nr} × {nc} table needs {expected}")]
    Length {
        /// `cell_share` or `covariance`.
        what: &'static str,
        /// Row levels.
        nr: usize,
        /// Column levels.
        nc: usize,
        /// nr·nc or (nr·nc)².
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A cell share is negative or not finite.
    #[error(
        "the share of cell (row level {row}, column level {column}) is {value}: shares must be \
         finite and non-negative (negative calibrated weights?)"
    )]
    InvalidShare {
        /// Row level, from 1.
        row: usize,
        /// Column level, from 1.
        column: usize,
        /// The share.
        value: f64,
    },
    /// The covariance has a non-finite entry.
    #[error("the covariance of the cell shares has a non-finite entry at ({0}, {1})")]
    InvalidCovariance(usize, usize),
    /// The row count is not a positive number.
    #[error("the number of design rows is {0}: it must be positive and finite")]
    InvalidRowCount(f64),
    /// A level has no respondents: Pearson's expected counts vanish and Δ is undefined.
    #[error(
        "{margin} level {level} has no respondents with both variables defined: drop the \
         level (or merge it with another) before testing"
    )]
    EmptyLevel {
        /// Row or column.
        margin: Margin,
        /// The level, from 1.
        level: usize,
    },
    /// The empty cells leave some interaction unidentified (C′D⁻¹C singular; R's `solve`
    /// stops with "system is computationally singular").
    #[error(
        "the non-empty cells do not identify every interaction (a block of empty cells, such \
         as two row levels × two column levels with no respondents, makes C'D^-1 C singular): \
         merge or drop levels"
    )]
    Singular,
    /// tr Δ is not positive: the cell shares have no design variance.
    #[error(
        "the design effects sum to {0}: the cell shares have no design variance (a census, \
         or a covariance of zeros?), so the Rao–Scott correction is undefined"
    )]
    NoVariance(f64),
    /// The F statistic needs positive design degrees of freedom.
    #[error(
        "the design has {0} degrees of freedom: the F statistic needs at least one (more PSUs \
         than strata); use the Chisq statistic instead"
    )]
    NoDesignDf(f64),
}

impl RaoScott {
    /// d₀ = (tr Δ)² / tr Δ²: the Satterthwaite numerator degrees of freedom.
    pub fn d0(&self) -> f64 {
        self.delta_trace * self.delta_trace / self.delta_sq_trace
    }

    /// The statistic `svychisq(..., statistic = )` reports.
    pub fn test(
        &self,
        statistic: AssociationStatistic,
    ) -> Result<AssociationTest, AssociationError> {
        match statistic {
            AssociationStatistic::F => {
                let nu = self.design_df;
                if !(nu > 0.0 && nu.is_finite()) {
                    return Err(AssociationError::NoDesignDf(nu));
                }
                let value = self.pearson / self.delta_trace;
                let d0 = self.d0();
                Ok(AssociationTest {
                    statistic,
                    value,
                    ndf: d0,
                    ddf: Some(d0 * nu),
                    p_value: pf_upper(value, d0, d0 * nu),
                })
            }
            AssociationStatistic::Chisq => {
                let df = self.df as f64;
                let mean_effect = self.delta_trace / df;
                Ok(AssociationTest {
                    statistic,
                    value: self.pearson,
                    ndf: df,
                    ddf: None,
                    p_value: pchisq_upper(self.pearson / mean_effect, df),
                })
            }
        }
    }
}

/// The Rao–Scott test of association of `table` (R's `svychisq(~rows + cols, design,
/// statistic = )`).
pub fn test_association(
    table: &TwoWayShares<'_>,
    statistic: AssociationStatistic,
) -> Result<AssociationTest, AssociationError> {
    rao_scott(table)?.test(statistic)
}

/// Pearson's X² and the traces of the design effects matrix Δ of `table`.
pub fn rao_scott(table: &TwoWayShares<'_>) -> Result<RaoScott, AssociationError> {
    validate(table)?;
    let (nr, nc) = (table.nr, table.nc);
    let k = nr * nc;
    let p = table.cell_share;
    let n = table.n_rows;

    let pearson = pearson_x2(nr, nc, p, n);

    // G = D⁻¹C (k × m, row-major), with D⁻¹ = 0 on empty cells as R sets it.
    let m = (nr - 1) * (nc - 1);
    let mut g = vec![0.0; k * m];
    for j in 0..nc {
        for i in 0..nr {
            let cell = i + nr * j;
            if p[cell] == 0.0 {
                continue;
            }
            for b in 1..nc {
                for a in 1..nr {
                    g[cell * m + contrast_index(nr, a, b)] =
                        interaction_residual(nr, nc, i, j, a, b) / p[cell];
                }
            }
        }
    }
    // Denominator A = C′D⁻¹C / N and numerator B = G′ V G, both m × m.
    let mut denom = vec![0.0; m * m];
    for j in 0..nc {
        for i in 0..nr {
            let cell = i + nr * j;
            let g_row = &g[cell * m..(cell + 1) * m];
            for b in 1..nc {
                for a in 1..nr {
                    let c = interaction_residual(nr, nc, i, j, a, b) / n;
                    let row = &mut denom[contrast_index(nr, a, b) * m..][..m];
                    for (d, gv) in row.iter_mut().zip(g_row) {
                        *d += c * gv;
                    }
                }
            }
        }
    }
    // V G (k × m), then G′(V G).
    let mut vg = vec![0.0; k * m];
    for r in 0..k {
        let out = &mut vg[r * m..(r + 1) * m];
        for s in 0..k {
            let v = table.covariance[r * k + s];
            if v == 0.0 {
                continue;
            }
            for (o, gv) in out.iter_mut().zip(&g[s * m..(s + 1) * m]) {
                *o += v * gv;
            }
        }
    }
    let mut numer = vec![0.0; m * m];
    for r in 0..k {
        let vg_row = &vg[r * m..(r + 1) * m];
        for u in 0..m {
            let gu = g[r * m + u];
            if gu == 0.0 {
                continue;
            }
            for (o, x) in numer[u * m..(u + 1) * m].iter_mut().zip(vg_row) {
                *o += gu * x;
            }
        }
    }

    // Δ = A⁻¹ B, column by column.
    let factor = Cholesky::new(&denom, m).ok_or(AssociationError::Singular)?;
    let mut delta = vec![0.0; m * m];
    let mut column = vec![0.0; m];
    for v in 0..m {
        for u in 0..m {
            column[u] = numer[u * m + v];
        }
        factor.solve(&mut column);
        for u in 0..m {
            delta[u * m + v] = column[u];
        }
    }
    let delta_trace: f64 = (0..m).map(|u| delta[u * m + u]).sum();
    let mut delta_sq_trace = 0.0;
    for u in 0..m {
        for v in 0..m {
            delta_sq_trace += delta[u * m + v] * delta[v * m + u];
        }
    }
    if !(delta_trace > 0.0 && delta_trace.is_finite() && delta_sq_trace > 0.0) {
        return Err(AssociationError::NoVariance(delta_trace));
    }
    Ok(RaoScott {
        pearson,
        delta_trace,
        delta_sq_trace,
        df: m,
        design_df: table.design_df,
    })
}

/// Checks sizes and values, and that every level has respondents.
fn validate(table: &TwoWayShares<'_>) -> Result<(), AssociationError> {
    let (nr, nc) = (table.nr, table.nc);
    if nr < 2 || nc < 2 {
        return Err(AssociationError::TooFewLevels { nr, nc });
    }
    let k = nr * nc;
    if table.cell_share.len() != k {
        return Err(AssociationError::Length {
            what: "cell_share",
            nr,
            nc,
            expected: k,
            got: table.cell_share.len(),
        });
    }
    if table.covariance.len() != k * k {
        return Err(AssociationError::Length {
            what: "covariance",
            nr,
            nc,
            expected: k * k,
            got: table.covariance.len(),
        });
    }
    if let Some(cell) = table
        .cell_share
        .iter()
        .position(|&x| !(x >= 0.0 && x.is_finite()))
    {
        return Err(AssociationError::InvalidShare {
            row: cell % nr + 1,
            column: cell / nr + 1,
            value: table.cell_share[cell],
        });
    }
    if let Some(at) = table.covariance.iter().position(|x| !x.is_finite()) {
        return Err(AssociationError::InvalidCovariance(at / k + 1, at % k + 1));
    }
    if !(table.n_rows > 0.0 && table.n_rows.is_finite()) {
        return Err(AssociationError::InvalidRowCount(table.n_rows));
    }
    let share = |i: usize, j: usize| table.cell_share[i + nr * j];
    if let Some(i) = (0..nr).find(|&i| (0..nc).all(|j| share(i, j) == 0.0)) {
        return Err(AssociationError::EmptyLevel {
            margin: Margin::Row,
            level: i + 1,
        });
    }
    if let Some(j) = (0..nc).find(|&j| (0..nr).all(|i| share(i, j) == 0.0)) {
        return Err(AssociationError::EmptyLevel {
            margin: Margin::Column,
            level: j + 1,
        });
    }
    Ok(())
}

/// Pearson's X² of the table `n · share` (arranged nr × nc), without continuity correction.
fn pearson_x2(nr: usize, nc: usize, share: &[f64], n: f64) -> f64 {
    let observed: Vec<f64> = share.iter().map(|&s| n * s).collect();
    let mut row_total = vec![0.0; nr];
    let mut col_total = vec![0.0; nc];
    for j in 0..nc {
        for i in 0..nr {
            row_total[i] += observed[i + nr * j];
            col_total[j] += observed[i + nr * j];
        }
    }
    // chisq.test divides by the table's own total, which is N only up to rounding.
    let total: f64 = observed.iter().sum();
    let mut x2 = 0.0;
    for j in 0..nc {
        for i in 0..nr {
            let expected = row_total[i] * col_total[j] / total;
            let d = observed[i + nr * j] - expected;
            x2 += d * d / expected;
        }
    }
    x2
}

/// Column of C for the interaction of row level `a` ≥ 1 and column level `b` ≥ 1, in R's
/// `X12` order (row level varying fastest).
fn contrast_index(nr: usize, a: usize, b: usize) -> usize {
    (a - 1) + (nr - 1) * (b - 1)
}

/// Entry (i, j) of the indicator of cell (a, b) minus its projection on the main effects:
/// [i=a][j=b] − [i=a]/nc − [j=b]/nr + 1/(nr·nc).
fn interaction_residual(nr: usize, nc: usize, i: usize, j: usize, a: usize, b: usize) -> f64 {
    let row = if i == a { 1.0 } else { 0.0 };
    let col = if j == b { 1.0 } else { 0.0 };
    row * col - row / nc as f64 - col / nr as f64 + 1.0 / (nr * nc) as f64
}

/// Cholesky factor of a symmetric positive definite matrix scaled to a unit diagonal (so the
/// singularity check does not depend on the scale of N or of the shares).
struct Cholesky {
    m: usize,
    /// Lower-triangular factor of S A S, row-major.
    l: Vec<f64>,
    /// S = diag(1 / sqrt(A_uu)).
    scale: Vec<f64>,
}

impl Cholesky {
    /// None when A is not (numerically) positive definite.
    fn new(a: &[f64], m: usize) -> Option<Cholesky> {
        let mut scale = vec![0.0; m];
        for u in 0..m {
            let d = a[u * m + u];
            if !(d > 0.0 && d.is_finite()) {
                return None;
            }
            scale[u] = 1.0 / d.sqrt();
        }
        let mut l = vec![0.0; m * m];
        for u in 0..m {
            for v in 0..=u {
                let mut s = a[u * m + v] * scale[u] * scale[v];
                for w in 0..v {
                    s -= l[u * m + w] * l[v * m + w];
                }
                if u == v {
                    if s.is_nan() || s <= PIVOT_TOL {
                        return None;
                    }
                    l[u * m + u] = s.sqrt();
                } else {
                    l[u * m + v] = s / l[v * m + v];
                }
            }
        }
        Some(Cholesky { m, l, scale })
    }

    /// Solves A x = b in place.
    fn solve(&self, b: &mut [f64]) {
        let m = self.m;
        for (x, s) in b.iter_mut().zip(&self.scale) {
            *x *= s;
        }
        // L y = S b, then L′ z = y; x = S z.
        for u in 0..m {
            let done: f64 = self.l[u * m..u * m + u]
                .iter()
                .zip(&b[..u])
                .map(|(l, y)| l * y)
                .sum();
            b[u] = (b[u] - done) / self.l[u * m + u];
        }
        for u in (0..m).rev() {
            let done: f64 = b[u + 1..]
                .iter()
                .enumerate()
                .map(|(o, z)| self.l[(u + 1 + o) * m + u] * z)
                .sum();
            b[u] = (b[u] - done) / self.l[u * m + u];
        }
        for (x, s) in b.iter_mut().zip(&self.scale) {
            *x *= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / b.abs().max(1e-300)
        }
    }

    /// One case of `fixtures/api/association_kernel.csv`: key → values in index order.
    struct Case {
        name: String,
        values: Vec<(String, Vec<f64>)>,
    }

    impl Case {
        fn get(&self, key: &str) -> &[f64] {
            self.values
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_slice())
                .unwrap_or_else(|| panic!("case {} has no {key}", self.name))
        }

        fn scalar(&self, key: &str) -> f64 {
            self.get(key)[0]
        }

        fn table(&self) -> TwoWayShares<'_> {
            TwoWayShares {
                nr: self.scalar("nr") as usize,
                nc: self.scalar("nc") as usize,
                cell_share: self.get("cell_share"),
                covariance: self.get("covariance"),
                n_rows: self.scalar("n_rows"),
                design_df: self.scalar("design_df"),
            }
        }
    }

    fn golden_cases() -> Vec<Case> {
        let text = include_str!("../../fixtures/api/association_kernel.csv");
        let mut cases: Vec<Case> = Vec::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 4, "{line}");
            let index: usize = f[2].parse().expect("index");
            let value: f64 = f[3].parse().expect("value");
            if cases.last().is_none_or(|c| c.name != f[0]) {
                cases.push(Case {
                    name: f[0].to_string(),
                    values: Vec::new(),
                });
            }
            let case = cases.last_mut().expect("pushed");
            if case.values.last().is_none_or(|(k, _)| k != f[1]) {
                case.values.push((f[1].to_string(), Vec::new()));
            }
            let values = &mut case.values.last_mut().expect("pushed").1;
            assert_eq!(values.len() + 1, index, "{line}: out of order");
            values.push(value);
        }
        cases
    }

    #[test]
    fn matches_r_svychisq() {
        let cases = golden_cases();
        assert!(cases.len() >= 6, "only {} cases", cases.len());
        let mut worst = 0.0f64;
        for case in &cases {
            let table = case.table();
            let check = |what: &str, got: f64, want: f64, worst: &mut f64| {
                let r = rel(got, want);
                assert!(
                    r < 1e-9,
                    "{} {what}: got {got:e}, R {want:e}, rel {r:e}",
                    case.name
                );
                *worst = worst.max(r);
            };
            let f = test_association(&table, AssociationStatistic::F).expect("F");
            check("F value", f.value, case.scalar("F_value"), &mut worst);
            check("F ndf", f.ndf, case.scalar("F_ndf"), &mut worst);
            check(
                "F ddf",
                f.ddf.expect("F has ddf"),
                case.scalar("F_ddf"),
                &mut worst,
            );
            check("F p", f.p_value, case.scalar("F_p"), &mut worst);
            let x = test_association(&table, AssociationStatistic::Chisq).expect("Chisq");
            check(
                "Chisq value",
                x.value,
                case.scalar("Chisq_value"),
                &mut worst,
            );
            check("Chisq ndf", x.ndf, case.scalar("Chisq_ndf"), &mut worst);
            assert_eq!(x.ddf, None);
            check("Chisq p", x.p_value, case.scalar("Chisq_p"), &mut worst);
        }
        eprintln!(
            "association: {} cases, worst relative error vs R {worst:e}",
            cases.len()
        );
    }

    /// The same table with the variables swapped: cell (i, j) of the r × c table is cell (j, i)
    /// of the c × r one.
    fn transposed(table: &TwoWayShares<'_>) -> (Vec<f64>, Vec<f64>) {
        let (nr, nc) = (table.nr, table.nc);
        let k = nr * nc;
        // new position of each old cell
        let to_new = |old: usize| (old / nr) + nc * (old % nr);
        let mut share = vec![0.0; k];
        let mut cov = vec![0.0; k * k];
        for r in 0..k {
            share[to_new(r)] = table.cell_share[r];
            for s in 0..k {
                cov[to_new(r) * k + to_new(s)] = table.covariance[r * k + s];
            }
        }
        (share, cov)
    }

    #[test]
    fn transposing_the_table_changes_nothing() {
        for case in &golden_cases() {
            let table = case.table();
            let (share, cov) = transposed(&table);
            let swapped = TwoWayShares {
                nr: table.nc,
                nc: table.nr,
                cell_share: &share,
                covariance: &cov,
                ..table
            };
            for statistic in AssociationStatistic::ALL {
                let a = test_association(&table, statistic).expect("original");
                let b = test_association(&swapped, statistic).expect("transposed");
                assert!(rel(b.value, a.value) < 1e-12, "{} {statistic:?}", case.name);
                assert!(rel(b.ndf, a.ndf) < 1e-12, "{} {statistic:?}", case.name);
                assert!(
                    rel(b.p_value, a.p_value) < 1e-10,
                    "{} {statistic:?}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn scaling_the_row_count_leaves_the_test_unchanged() {
        for case in &golden_cases() {
            let table = case.table();
            let scaled = TwoWayShares {
                n_rows: table.n_rows * 7.3,
                ..table
            };
            let a = test_association(&table, AssociationStatistic::F).expect("F");
            let b = test_association(&scaled, AssociationStatistic::F).expect("F scaled");
            assert!(rel(b.value, a.value) < 1e-12, "{}", case.name);
            assert!(rel(b.ndf, a.ndf) < 1e-12, "{}", case.name);
            assert!(rel(b.p_value, a.p_value) < 1e-10, "{}", case.name);
            // X² grows with N, and so does the mean design effect: the p-value stays.
            let a = test_association(&table, AssociationStatistic::Chisq).expect("Chisq");
            let b = test_association(&scaled, AssociationStatistic::Chisq).expect("Chisq scaled");
            assert!(rel(b.value, 7.3 * a.value) < 1e-12, "{}", case.name);
            assert!(rel(b.p_value, a.p_value) < 1e-10, "{}", case.name);
        }
    }

    /// Multinomial covariance (D − p p′)/N: every design effect is 1, so Δ = I.
    #[test]
    fn simple_random_sampling_has_unit_design_effects() {
        let (nr, nc) = (3, 4);
        let share: Vec<f64> = (1..=12).map(|x| f64::from(x) / 78.0).collect();
        let n = 500.0;
        let k = nr * nc;
        let mut cov = vec![0.0; k * k];
        for r in 0..k {
            for s in 0..k {
                let d = if r == s { share[r] } else { 0.0 };
                cov[r * k + s] = (d - share[r] * share[s]) / n;
            }
        }
        let table = TwoWayShares {
            nr,
            nc,
            cell_share: &share,
            covariance: &cov,
            n_rows: n,
            design_df: 499.0,
        };
        let rs = rao_scott(&table).expect("srs");
        assert_eq!(rs.df, 6);
        assert!(rel(rs.delta_trace, 6.0) < 1e-12, "{}", rs.delta_trace);
        assert!(rel(rs.delta_sq_trace, 6.0) < 1e-12, "{}", rs.delta_sq_trace);
        let x = rs.test(AssociationStatistic::Chisq).expect("chisq");
        assert!(rel(x.p_value, pchisq_upper(rs.pearson, 6.0)) < 1e-12);
    }

    fn srs_cov(share: &[f64], n: f64) -> Vec<f64> {
        let k = share.len();
        let mut cov = vec![0.0; k * k];
        for r in 0..k {
            for s in 0..k {
                let d = if r == s { share[r] } else { 0.0 };
                cov[r * k + s] = 1.3 * (d - share[r] * share[s]) / n;
            }
        }
        cov
    }

    #[test]
    fn errors_name_the_problem() {
        let share = [0.25; 4];
        let cov = srs_cov(&share, 100.0);
        let table = TwoWayShares {
            nr: 2,
            nc: 2,
            cell_share: &share,
            covariance: &cov,
            n_rows: 100.0,
            design_df: 30.0,
        };
        assert!(rao_scott(&table).is_ok());
        let too_few = TwoWayShares {
            nr: 1,
            nc: 4,
            ..table
        };
        assert_eq!(
            rao_scott(&too_few),
            Err(AssociationError::TooFewLevels { nr: 1, nc: 4 })
        );
        let short = TwoWayShares {
            cell_share: &share[..3],
            ..table
        };
        assert!(matches!(
            rao_scott(&short),
            Err(AssociationError::Length {
                what: "cell_share",
                ..
            })
        ));
        let short = TwoWayShares {
            covariance: &cov[..15],
            ..table
        };
        assert!(matches!(
            rao_scott(&short),
            Err(AssociationError::Length {
                what: "covariance",
                ..
            })
        ));
        let negative = [0.3, -0.05, 0.4, 0.35];
        assert!(matches!(
            rao_scott(&TwoWayShares {
                cell_share: &negative,
                ..table
            }),
            Err(AssociationError::InvalidShare {
                row: 2,
                column: 1,
                ..
            })
        ));
        // Column level 2 is empty.
        let empty = [0.5, 0.5, 0.0, 0.0];
        let err = rao_scott(&TwoWayShares {
            cell_share: &empty,
            ..table
        });
        assert_eq!(
            err,
            Err(AssociationError::EmptyLevel {
                margin: Margin::Column,
                level: 2
            })
        );
        assert!(
            err.expect_err("empty")
                .to_string()
                .contains("column level 2 has no respondents")
        );
        let zero_cov = [0.0; 16];
        assert!(matches!(
            rao_scott(&TwoWayShares {
                covariance: &zero_cov,
                ..table
            }),
            Err(AssociationError::NoVariance(_))
        ));
        let no_df = TwoWayShares {
            design_df: 0.0,
            ..table
        };
        assert_eq!(
            test_association(&no_df, AssociationStatistic::F),
            Err(AssociationError::NoDesignDf(0.0))
        );
        assert!(test_association(&no_df, AssociationStatistic::Chisq).is_ok());
    }

    /// Rows 1–2 × columns 1–2 empty: the interaction supported there has no data.
    #[test]
    fn a_block_of_empty_cells_is_singular() {
        let (nr, nc) = (3, 3);
        let mut share = vec![0.0; 9];
        for (i, j) in [(0, 2), (1, 2), (2, 0), (2, 1), (2, 2)] {
            share[i + nr * j] = 0.2;
        }
        let cov = srs_cov(&share, 100.0);
        let table = TwoWayShares {
            nr,
            nc,
            cell_share: &share,
            covariance: &cov,
            n_rows: 100.0,
            design_df: 30.0,
        };
        assert_eq!(rao_scott(&table), Err(AssociationError::Singular));
        // One empty cell only: fine.
        let mut share = vec![1.0 / 8.0; 9];
        share[4] = 0.0;
        let cov = srs_cov(&share, 100.0);
        let table = TwoWayShares {
            cell_share: &share,
            covariance: &cov,
            ..table
        };
        assert!(rao_scott(&table).is_ok());
    }

    #[test]
    fn statistic_names_are_r_s() {
        for s in AssociationStatistic::ALL {
            assert_eq!(AssociationStatistic::from_name(s.as_str()), Some(s));
        }
        assert_eq!(AssociationStatistic::from_name("Wald"), None);
    }
}
