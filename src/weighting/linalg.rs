//! Small dense symmetric linear algebra for calibration (p × p, p ≲ 200).
//!
//! Written here rather than pulled from a crate: calibration only needs to solve `T x = b` for a
//! symmetric positive semi-definite cross-product matrix T of a few dozen columns, and a linear
//! algebra dependency (nalgebra, faer, ndarray-linalg) would add far more build time than these
//! hundred lines. Two solvers:
//!
//! * [`SymFactor`]: Cholesky of the equilibrated matrix D^{-1/2} T D^{-1/2} (D = diag T), which
//!   keeps the accuracy of columns on very different scales (a dummy next to a total of income)
//!   and doubles as the rank check;
//! * [`pinv_solve`]: the Moore–Penrose solution via a cyclic Jacobi eigen-decomposition, with R's
//!   `MASS::ginv(tol = 256 * .Machine$double.eps)` cut-off. Used only when T is singular during
//!   the Newton iterations of bounded calibration (units at a bound have zero derivative), where
//!   R's `grake` uses `ginv`.

/// Relative pivot below which the equilibrated matrix is treated as singular.
pub(crate) const RANK_TOL: f64 = 1e-10;

/// Cholesky factor of an equilibrated symmetric matrix, reusable for many right-hand sides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SymFactor {
    p: usize,
    /// Lower-triangular factor L (row-major, p × p) of the equilibrated matrix.
    l: Vec<f64>,
    /// 1 / sqrt(T_jj).
    scale: Vec<f64>,
}

impl SymFactor {
    /// Workspace for p × p matrices.
    pub(crate) fn new(p: usize) -> SymFactor {
        SymFactor {
            p,
            l: vec![0.0; p * p],
            scale: vec![0.0; p],
        }
    }

    /// Factor `a` (row-major p × p, symmetric). On failure returns the first column whose
    /// pivot is not positive (relative to its own diagonal): that column is a linear
    /// combination of the earlier ones, or is identically zero.
    pub(crate) fn factor(&mut self, a: &[f64]) -> Result<(), usize> {
        let p = self.p;
        for j in 0..p {
            let d = a[j * p + j];
            if !(d > 0.0 && d.is_finite()) {
                return Err(j);
            }
            self.scale[j] = 1.0 / d.sqrt();
        }
        for i in 0..p {
            for j in 0..=i {
                let mut s = a[i * p + j] * self.scale[i] * self.scale[j];
                for k in 0..j {
                    s -= self.l[i * p + k] * self.l[j * p + k];
                }
                if i == j {
                    if !(s > RANK_TOL) {
                        return Err(i);
                    }
                    self.l[i * p + i] = s.sqrt();
                } else {
                    self.l[i * p + j] = s / self.l[j * p + j];
                }
            }
        }
        Ok(())
    }

    /// Solve `T x = b` in place (after a successful [`SymFactor::factor`]).
    pub(crate) fn solve(&self, b: &mut [f64]) {
        let p = self.p;
        for i in 0..p {
            b[i] *= self.scale[i];
        }
        for i in 0..p {
            let mut s = b[i];
            for k in 0..i {
                s -= self.l[i * p + k] * b[k];
            }
            b[i] = s / self.l[i * p + i];
        }
        for i in (0..p).rev() {
            let mut s = b[i];
            for k in i + 1..p {
                s -= self.l[k * p + i] * b[k];
            }
            b[i] = s / self.l[i * p + i];
        }
        for i in 0..p {
            b[i] *= self.scale[i];
        }
    }
}

/// Moore–Penrose solution `x = T⁺ b` of a symmetric matrix (row-major p × p), overwriting `b`.
/// Eigenvalues below `256 ε · max |λ|` are treated as zero, as `MASS::ginv` does with singular
/// values.
pub(crate) fn pinv_solve(t: &[f64], p: usize, b: &mut [f64]) {
    let mut a = t.to_vec();
    let mut v = vec![0.0; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    for _sweep in 0..100 {
        let mut off = 0.0;
        let mut total = 0.0;
        for i in 0..p {
            for j in 0..p {
                let x = a[i * p + j] * a[i * p + j];
                total += x;
                if i != j {
                    off += x;
                }
            }
        }
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for pp in 0..p {
            for q in pp + 1..p {
                let apq = a[pp * p + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * p + q] - a[pp * p + pp]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..p {
                    let akp = a[k * p + pp];
                    let akq = a[k * p + q];
                    a[k * p + pp] = c * akp - s * akq;
                    a[k * p + q] = s * akp + c * akq;
                }
                for k in 0..p {
                    let apk = a[pp * p + k];
                    let aqk = a[q * p + k];
                    a[pp * p + k] = c * apk - s * aqk;
                    a[q * p + k] = s * apk + c * aqk;
                }
                for k in 0..p {
                    let vkp = v[k * p + pp];
                    let vkq = v[k * p + q];
                    v[k * p + pp] = c * vkp - s * vkq;
                    v[k * p + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let lmax = (0..p).map(|i| a[i * p + i].abs()).fold(0.0, f64::max);
    let tol = 256.0 * f64::EPSILON * lmax;
    let mut x = vec![0.0; p];
    for k in 0..p {
        let lambda = a[k * p + k];
        if lambda.abs() <= tol || lmax == 0.0 {
            continue;
        }
        let mut proj = 0.0;
        for i in 0..p {
            proj += v[i * p + k] * b[i];
        }
        let c = proj / lambda;
        for i in 0..p {
            x[i] += c * v[i * p + k];
        }
    }
    b.copy_from_slice(&x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_detects_rank() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let mut f = SymFactor::new(3);
        f.factor(&a).unwrap();
        let x = [1.0, -2.0, 0.5];
        let mut b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        f.solve(&mut b);
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-14);
        }
        // Third column = first + second.
        let s = [1.0, 2.0, 3.0, 2.0, 5.0, 7.0, 3.0, 7.0, 10.0];
        assert_eq!(f.factor(&s), Err(2));
    }

    #[test]
    fn pinv_matches_inverse_and_handles_singular() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let mut b = [1.0, 2.0, 3.0];
        let mut c = b;
        pinv_solve(&a, 3, &mut b);
        let mut f = SymFactor::new(3);
        f.factor(&a).unwrap();
        f.solve(&mut c);
        for i in 0..3 {
            assert!((b[i] - c[i]).abs() < 1e-12);
        }
        // diag(2, 0): the pseudo-inverse ignores the null direction.
        let s = [2.0, 0.0, 0.0, 0.0];
        let mut b = [4.0, 1.0];
        pinv_solve(&s, 2, &mut b);
        assert_eq!(b, [2.0, 0.0]);
    }
}
