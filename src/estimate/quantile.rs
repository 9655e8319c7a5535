//! Survey quantiles: the weighted quantile rules and interval formulas of R `survey`'s
//! `svyquantile` (survey ≥ 4.1, Lumley's `newsvyquantile.R` and `qrule.R`), as a pure kernel.
//!
//! For one domain with values x_i and weights w_i (rows of weight zero dropped, as every R
//! `qrule_*` drops them), sorted ascending (ties in row order, as R's stable `order()`), with
//! cumulative weights C_k = Σ_{j ≤ k} w_j and total W = C_n:
//!
//! * **`math`** (`qrule_math` = `qrule_hf1`, Hyndman & Fan 1996 type 1, the inverse of the
//!   weighted distribution function): k = the last position with C_k ≤ p·W (the first if
//!   none); q̂ = x_k if p − C_k/W ≤ 0, else x_{k+1} (x_n at the end).
//! * **`hf7`** (`qrule_hf7`, Hyndman & Fan type 7 with weights): linear interpolation of the
//!   points (p_k, x_k) with p_1 = 0, p_k = C_{k−1}/C_{n−1}, so p_n = 1; p outside [0, 1] gives
//!   x_1 or x_n (R's `approx(rule = 2)`); a single value is returned for every p. Because
//!   the grid point of the last row of a group of tied values leaves out that row's weight,
//!   hf7 (in R as here) depends on the row order of tied values with unequal weights; `math`
//!   does not depend on row order.
//!
//! Intervals (`svyquantile(..., ci = TRUE)`), with qcrit = `qt(·, df)` (`qnorm` for infinite
//! df) and α = 1 − level:
//!
//! * **Woodruff** (1952, interval.type `"mean"`, R's `woodruffCI`): with
//!   F̂ = Σ_{x ≤ q̂} w / Σ w and its standard error s (Taylor or replicate), the interval
//!   [F̂ + s·qcrit(α/2), F̂ + s·qcrit(1 − α/2)] on the probability scale is mapped back through
//!   the quantile rule; an end below 0 (above 1) is NaN; se = (upper − lower) / (2·qcrit(1 − α/2)).
//! * **Replicate quantiles** (interval.type `"quantile"`, R's `repCI`): with the replicate
//!   variance v of the replicate quantiles (`svrVar`), q̂ ∓ qcrit(1 − α/2)·√v, and the same se
//!   formula (√v up to rounding).
//!
//! Sums are taken as R takes them: R's `sum` and `cumsum` accumulate in x87 long double, which
//! is exact for the weights of a survey domain (a few thousand weights of similar size), so a
//! cumulative weight can equal p·W exactly where a plain `f64` running sum would be off by an
//! ulp and the `math` rule would jump to the next value. Here sums use a double-double
//! accumulator, exact in the same cases, rounded once to `f64` as R rounds its long double.
//!
//! References: Woodruff, R. S. (1952) Confidence intervals for medians and other position
//! measures. JASA 47:635–646. Hyndman, R. J. & Fan, Y. (1996) Sample quantiles in statistical
//! packages. The American Statistician 50:361–365. Lumley, T. `survey` R package,
//! `svyquantile` (R/newsvyquantile.R, R/qrule.R).

use std::cmp::Ordering;

use super::probability::qt;

pub use crate::questionnaire::QuantileRule;

/// `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly (Knuth's TwoSum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Running sum standing in for R's long double accumulator: a double-double (hi, lo) whose
/// `hi` is the exact sum rounded to `f64` whenever the exact sum fits in about 106 bits, which
/// covers every case where R's 64-bit long double sum is itself exact.
#[derive(Debug, Clone, Copy, Default)]
struct LongSum {
    hi: f64,
    lo: f64,
}

impl LongSum {
    fn add(&mut self, x: f64) {
        let (s, e) = two_sum(self.hi, x);
        if !s.is_finite() {
            // Overflow, infinities or NaN: the error term would be NaN; R's sum is s.
            self.hi = s;
            self.lo = 0.0;
            return;
        }
        (self.hi, self.lo) = two_sum(s, e + self.lo);
    }

    fn value(self) -> f64 {
        self.hi
    }
}

/// R's ordering of values for `order()`: ascending, NaN (R's NA) last, −0 equal to 0.
fn value_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// One domain's rows in ascending order of their values, for quantiles under several weight
/// vectors (the full-sample weights and every replicate's) with a single sort.
///
/// Ties keep row order, as R's stable `order()` does; this matters for `hf7`, whose grid
/// point for a group of tied values depends on which tied row comes last. Rows of any weight
/// are kept: a replicate may give weight zero to rows the full sample weights, so zero weights
/// are dropped when a weight vector is applied ([`SortedDomain::refill`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantileOrder {
    rows: Vec<usize>,
}

impl QuantileOrder {
    /// Every row of `values`, sorted.
    pub fn new(values: &[f64]) -> QuantileOrder {
        QuantileOrder::of_rows(values, 0..values.len())
    }

    /// The domain `rows` (indices into `values`), sorted by value and, among tied values, by
    /// row index, which is R's order of the domain's rows in data order.
    ///
    /// # Panics
    /// If a row is not an index of `values`.
    pub fn of_rows(values: &[f64], rows: impl IntoIterator<Item = usize>) -> QuantileOrder {
        let mut rows: Vec<usize> = rows.into_iter().collect();
        rows.sort_unstable_by(|&a, &b| value_order(values[a], values[b]).then(a.cmp(&b)));
        QuantileOrder { rows }
    }

    /// Row indices in ascending order of value.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Number of rows in the domain.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// These rows split among `k` domains (`domain_of` a row), each domain's in this order: the
    /// order of every domain of a breakdown from one sort.
    pub fn split(&self, domain_of: impl Fn(usize) -> Option<u32>, k: usize) -> Vec<QuantileOrder> {
        let mut out = vec![QuantileOrder::default(); k];
        for &r in &self.rows {
            if let Some(d) = domain_of(r) {
                out[d as usize].rows.push(r);
            }
        }
        out
    }

    /// Whether the domain has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One domain's values sorted ascending with their weights, rows of weight zero dropped (as
/// R's qrules drop them) and ties in row order, with the cumulative weights the rules need.
/// Built once per weight vector, it answers every probability and both rules.
///
/// Quantiles are NaN where R's `svyquantile` would give NA or stop: a kept row (non-zero
/// weight) with a NaN (missing) value or a non-finite weight, or no kept row at all. R's
/// qrules themselves sort NA values last and may still return a number; the caller is expected
/// to drop missing rows first, as `svyquantile(na.rm = TRUE)` does.
#[derive(Debug, Clone, Default)]
pub struct SortedDomain {
    /// Values of the kept rows, ascending.
    values: Vec<f64>,
    /// Their weights, in the same order.
    weights: Vec<f64>,
    /// Cumulative weights C_k, as R's `cumsum` of the sorted weights.
    cumulative: Vec<f64>,
    /// Total weight W, as R's `sum`.
    total: f64,
    /// Every kept weight is positive, so C_k is non-decreasing and binary searches apply.
    positive: bool,
    /// No kept row has a NaN value or a non-finite weight.
    defined: bool,
}

impl SortedDomain {
    /// The domain of all rows of `values` with weights `weights` (same length, row order).
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn new(values: &[f64], weights: &[f64]) -> SortedDomain {
        assert_eq!(
            values.len(),
            weights.len(),
            "one weight per value is needed"
        );
        SortedDomain::from_order(&QuantileOrder::new(values), values, weights)
    }

    /// The domain of `order`'s rows, with `values` and `weights` indexed by row.
    ///
    /// # Panics
    /// If a row of `order` is not an index of `values` and `weights`.
    pub fn from_order(order: &QuantileOrder, values: &[f64], weights: &[f64]) -> SortedDomain {
        let mut domain = SortedDomain::default();
        domain.refill(order, values, weights);
        domain
    }

    /// Refill with another weight vector over the same sorted rows (a replicate's weights),
    /// without sorting again and, once the buffers have grown, without allocating.
    ///
    /// # Panics
    /// If a row of `order` is not an index of `values` and `weights`.
    pub fn refill(&mut self, order: &QuantileOrder, values: &[f64], weights: &[f64]) {
        self.values.clear();
        self.weights.clear();
        self.cumulative.clear();
        self.positive = true;
        self.defined = true;
        let mut sum = LongSum::default();
        for &r in order.rows() {
            let (x, w) = (values[r], weights[r]);
            // R's `w == 0` test; a NaN weight is kept (and makes the domain undefined).
            if w == 0.0 {
                continue;
            }
            self.positive &= w > 0.0;
            self.defined &= !x.is_nan() && w.is_finite();
            sum.add(w);
            self.values.push(x);
            self.weights.push(w);
            self.cumulative.push(sum.value());
        }
        // R's `sum(w)` runs in row order, its `cumsum` in sorted order; both are exact (or
        // the exact sum rounded once) in the cases the accumulator reproduces, hence equal.
        self.total = sum.value();
        self.defined &= !self.values.is_empty();
    }

    /// Number of rows kept (non-zero weight).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no row has a non-zero weight.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Values of the kept rows, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Weights of the kept rows, in the order of [`SortedDomain::values`].
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Total weight of the domain, Σ w (R's `sum(w)`).
    pub fn total_weight(&self) -> f64 {
        self.total
    }

    /// The p-quantile by `rule`, as R's `qrule_math(x, w, p)` / `qrule_hf7(x, w, p)`.
    ///
    /// p outside [0, 1] gives the smallest or largest value (both rules; R does the same).
    /// NaN p gives NaN (R stops for `math`, returns NA for `hf7`), except that `hf7` returns
    /// a domain's single value for any p, as R does. NaN also for an undefined domain (see
    /// [`SortedDomain`]).
    pub fn quantile(&self, p: f64, rule: QuantileRule) -> f64 {
        if !self.defined {
            return f64::NAN;
        }
        match rule {
            QuantileRule::Math => self.quantile_math(p),
            QuantileRule::Hf7 => self.quantile_hf7(p),
        }
    }

    /// R's `qs()` followed by `qrule_math`'s choice between its two values.
    fn quantile_math(&self, p: f64) -> f64 {
        let n = self.values.len();
        let target = p * self.total;
        if target.is_nan() {
            // `cumw <= NA` is NA throughout: R stops in `last()`.
            return f64::NAN;
        }
        // `last(cumw <= p * sum(w))`: the last position satisfying it, the first if none.
        let pos = if self.positive {
            self.cumulative
                .partition_point(|&c| c <= target)
                .saturating_sub(1)
        } else {
            self.cumulative
                .iter()
                .rposition(|&c| c <= target)
                .unwrap_or(0)
        };
        let next = if pos + 1 == n { pos } else { pos + 1 };
        let wlow = p - self.cumulative[pos] / self.total;
        if wlow.is_nan() {
            // R stops on `if (NA <= 0)`.
            f64::NAN
        } else if wlow <= 0.0 {
            self.values[pos]
        } else {
            self.values[next]
        }
    }

    /// `qrule_hf7`: `approx(pk, x, p, rule = 2)` with pk = c(0, C_1..C_{n−1}) / C_{n−1}.
    fn quantile_hf7(&self, p: f64) -> f64 {
        let n = self.values.len();
        if n == 1 {
            // R returns x before looking at p.
            return self.values[0];
        }
        if p.is_nan() {
            // approx() gives NA for an NA abscissa.
            return f64::NAN;
        }
        let denom = self.cumulative[n - 2];
        let grid = |k: usize| {
            if k == 0 {
                0.0 / denom
            } else {
                self.cumulative[k - 1] / denom
            }
        };
        if self.positive {
            // The grid is non-decreasing: interpolate on it directly.
            interpolate(n, grid, |k| self.values[k], p)
        } else {
            // A negative weight: the grid may decrease or hold NaN (0/0). approx() drops the
            // NaN points and sorts the rest stably, as done here.
            let mut points: Vec<(f64, f64)> = (0..n)
                .map(|k| (grid(k), self.values[k]))
                .filter(|(g, _)| !g.is_nan())
                .collect();
            points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
            interpolate(points.len(), |k| points[k].0, |k| points[k].1, p)
        }
    }

    /// Index just past the kept values at or below `q` (NaN q: none).
    fn cut(&self, q: f64) -> usize {
        self.values.partition_point(|&x| x <= q)
    }

    /// The estimated distribution function at `q`, F̂(q) = Σ_{x ≤ q} w / Σ w, as a ratio of
    /// two sums: R's `svymean(x <= q, design)` on a replicate-weight design
    /// (`colSums(w * x) / sum(w)`), for the full sample and for each replicate (after
    /// [`SortedDomain::refill`] with its weights). NaN for an undefined domain or NaN `q`.
    pub fn cdf(&self, q: f64) -> f64 {
        if !self.defined || q.is_nan() {
            return f64::NAN;
        }
        let cut = self.cut(q);
        let below = if cut == 0 {
            0.0
        } else {
            self.cumulative[cut - 1]
        };
        below / self.total
    }

    /// F̂(q) as R's `svymean(x <= q, design)` on a Taylor (`survey.design2`) design forms it,
    /// a sum of shares Σ_{x ≤ q} (w / Σ w). Equal to [`SortedDomain::cdf`] up to rounding; the
    /// rounding matters when the Woodruff interval has width zero and its ends fall exactly on
    /// a cumulative weight. NaN for an undefined domain or NaN `q`.
    pub fn cdf_taylor(&self, q: f64) -> f64 {
        if !self.defined || q.is_nan() {
            return f64::NAN;
        }
        let mut sum = LongSum::default();
        for &w in &self.weights[..self.cut(q)] {
            sum.add(w / self.total);
        }
        sum.value()
    }
}

/// R's `approx(grid, y, v, method = "linear", rule = 2)` (ties = mean) on a non-decreasing
/// grid of `n` points: below (above) the grid the first (last) value; on a grid point its
/// value; between two grid points the straight line, with R's arithmetic. Points sharing a
/// grid value count as one, valued at the mean of their y's (R's `ties = mean`); fewer than
/// two distinct grid values give NaN (R stops).
fn interpolate(n: usize, grid: impl Fn(usize) -> f64, y: impl Fn(usize) -> f64, v: f64) -> f64 {
    if n == 0 || grid(0) == grid(n - 1) {
        return f64::NAN;
    }
    // The y of the tie group around point k.
    let group_value = |k: usize| {
        let g = grid(k);
        let first = (0..k)
            .rev()
            .take_while(|&i| grid(i) == g)
            .last()
            .unwrap_or(k);
        let end = (k + 1..n).find(|&i| grid(i) != g).unwrap_or(n);
        if end - first == 1 {
            y(k)
        } else {
            let mut sum = LongSum::default();
            for i in first..end {
                sum.add(y(i));
            }
            sum.value() / (end - first) as f64
        }
    };
    if v < grid(0) {
        return group_value(0);
    }
    if v > grid(n - 1) {
        return group_value(n - 1);
    }
    // j: the first grid point at or above v.
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if grid(mid) < v {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let j = lo;
    if grid(j) == v {
        return group_value(j);
    }
    // grid(j − 1) < v < grid(j); j ≥ 1 because v ≥ grid(0).
    let i = j - 1;
    let (xi, xj) = (grid(i), grid(j));
    let (yi, yj) = (group_value(i), group_value(j));
    yi + (yj - yi) * ((v - xi) / (xj - xi))
}

/// A quantile's confidence interval and standard error, as R's `confint()` and `SE()` of a
/// `svyquantile` result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileBounds {
    /// Lower end (NaN where R gives NaN).
    pub lower: f64,
    /// Upper end (NaN where R gives NaN).
    pub upper: f64,
    /// Standard error implied by the interval: (upper − lower) / (2·qcrit(1 − α/2)).
    pub se: f64,
}

/// R's critical value `qcrit(prob)`: `qt(prob, df)`, the normal quantile for infinite df
/// (`probability::qt` switches to it itself).
fn qcrit(prob: f64, df: f64) -> f64 {
    qt(prob, df)
}

/// The standard error `svyquantile` reports from an interval: its width over 2·qcrit(1 − α/2).
fn interval_se(lower: f64, upper: f64, level: f64, df: f64) -> f64 {
    let alpha = 1.0 - level;
    (upper - lower) / (2.0 * qcrit(1.0 - alpha / 2.0, df))
}

/// Woodruff's (1952) interval for a quantile of `domain` by `rule`, as R's `woodruffCI`
/// (interval.type `"mean"`) and `svyquantile`'s standard error.
///
/// `cdf` is F̂ = Σ_{x ≤ q̂} w / Σ w at the quantile estimate q̂ and `cdf_se` its standard error
/// (Taylor or replicate; R's `svymean(x <= qhat, design)`); `df` the design degrees of freedom
/// (infinite for the normal quantile); `level` the confidence level, e.g. 0.95 (R's
/// `1 − alpha`). The probability interval is R's `confint(m, level = 1 − alpha, df = df)`,
/// F̂ + s·qt(a, df) and F̂ + s·qt(1 − a, df) with a = (1 − level)/2; each end inside [0, 1]
/// (R's test: NaN, < 0, > 1 give NaN) is mapped to the domain's quantile by the same rule.
pub fn woodruff_interval(
    domain: &SortedDomain,
    cdf: f64,
    cdf_se: f64,
    df: f64,
    level: f64,
    rule: QuantileRule,
) -> QuantileBounds {
    let a = (1.0 - level) / 2.0;
    let p_low = cdf + cdf_se * qcrit(a, df);
    let p_high = cdf + cdf_se * qcrit(1.0 - a, df);
    let lower = if p_low.is_nan() || p_low < 0.0 {
        f64::NAN
    } else {
        domain.quantile(p_low, rule)
    };
    let upper = if p_high.is_nan() || p_high > 1.0 {
        f64::NAN
    } else {
        domain.quantile(p_high, rule)
    };
    QuantileBounds {
        lower,
        upper,
        se: interval_se(lower, upper, level, df),
    }
}

/// The interval from replicate quantiles, as R's `repCI` (interval.type `"quantile"`):
/// `estimate` ∓ qcrit(1 − α/2)·√v with v = `replicate_variance`, the variance of the
/// replicate quantiles about `estimate` (R's `svrVar` with the design's scale and rscales).
/// The se is taken back from the interval as `svyquantile` does: √v up to rounding.
pub fn replicate_quantile_interval(
    estimate: f64,
    replicate_variance: f64,
    df: f64,
    level: f64,
) -> QuantileBounds {
    let alpha = 1.0 - level;
    let half = replicate_variance.sqrt() * qcrit(1.0 - alpha / 2.0, df);
    let (lower, upper) = (estimate - half, estimate + half);
    QuantileBounds {
        lower,
        upper,
        se: interval_se(lower, upper, level, df),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::rel;
    use std::collections::BTreeMap;

    /// `fixtures/api/quantile_rules.csv` (made by `make_quantile_rules.R`, R 4.2.2, survey 4.5).
    const GOLDEN: &str = include_str!("../../fixtures/api/quantile_rules.csv");

    /// One case of the fixture: inputs in row order and R's results by (item, rule, p).
    #[derive(Default)]
    struct Case {
        x: Vec<f64>,
        w: Vec<f64>,
        results: Vec<(String, QuantileRule, f64, f64)>,
    }

    impl Case {
        fn result(&self, item: &str, rule: QuantileRule, p: f64) -> f64 {
            self.results
                .iter()
                .find(|(i, r, q, _)| i == item && *r == rule && *q == p)
                .map(|r| r.3)
                .unwrap_or_else(|| panic!("no {item} for {} at p = {p}", rule.name()))
        }
    }

    fn number(text: &str) -> f64 {
        if text == "NA" {
            f64::NAN
        } else {
            text.parse()
                .unwrap_or_else(|_| panic!("not a number: {text}"))
        }
    }

    fn golden() -> BTreeMap<String, Case> {
        let mut cases: BTreeMap<String, Case> = BTreeMap::new();
        for line in GOLDEN.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            let case = cases.entry(f[0].to_string()).or_default();
            let value = number(f[5]);
            match f[1] {
                "x" => case.x.push(value),
                "w" => case.w.push(value),
                item => {
                    let rule = QuantileRule::from_name(f[3]).expect("rule name");
                    case.results
                        .push((item.to_string(), rule, number(f[4]), value));
                }
            }
        }
        cases
    }

    /// Relative error, 0 when both are NaN (or equal), infinite when only one is NaN.
    fn err(a: f64, b: f64) -> f64 {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => 0.0,
            (false, false) => rel(a, b),
            _ => f64::INFINITY,
        }
    }

    const RULES: [QuantileRule; 2] = [QuantileRule::Math, QuantileRule::Hf7];

    #[test]
    fn rule_names_round_trip() {
        for rule in RULES {
            assert_eq!(QuantileRule::from_name(rule.name()), Some(rule));
        }
        assert_eq!(QuantileRule::from_name("hf1"), Some(QuantileRule::Math));
        assert_eq!(QuantileRule::from_name("hf8"), None);
    }

    /// Every qrule_math / qrule_hf7 value of the fixture, through a domain built from the
    /// rows and through the replicate path (one sort order, a scratch domain reused across
    /// cases), to 1e-12 relative.
    #[test]
    fn qrules_match_r() {
        let cases = golden();
        let mut scratch = SortedDomain::default();
        let (mut checked, mut worst) = (0, 0.0f64);
        for (name, case) in &cases {
            if case.results.iter().any(|r| r.0 != "quantile") {
                continue;
            }
            let domain = SortedDomain::new(&case.x, &case.w);
            let order = QuantileOrder::new(&case.x);
            for (_, rule, p, r) in &case.results {
                let q = domain.quantile(*p, *rule);
                let e = err(q, *r);
                assert!(e <= 1e-12, "{name} {} p = {p}: {q} vs R {r}", rule.name());
                scratch.refill(&order, &case.x, &case.w);
                let q2 = scratch.quantile(*p, *rule);
                assert_eq!(q2.to_bits(), q.to_bits(), "{name} replicate path");
                worst = worst.max(e);
                checked += 1;
            }
        }
        assert!(checked >= 2 * 13 * 15, "only {checked} values checked");
        eprintln!("qrules: {checked} values, max relative error {worst:e}");
    }

    /// The replicate-like weight vectors of one set of values share the full sample's sort
    /// order (zero weights dropped per vector).
    #[test]
    fn one_order_serves_every_replicate() {
        let cases = golden();
        let base = &cases["ties_unequal"];
        let order = QuantileOrder::new(&base.x);
        let mut scratch = SortedDomain::default();
        for name in ["ties_unequal", "ties_rep1", "ties_rep2"] {
            let case = &cases[name];
            assert_eq!(case.x, base.x);
            scratch.refill(&order, &case.x, &case.w);
            for (_, rule, p, r) in &case.results {
                let q = scratch.quantile(*p, *rule);
                assert!(err(q, *r) <= 1e-12, "{name} {} p = {p}", rule.name());
            }
        }
    }

    #[test]
    fn edge_cases_as_r() {
        // No kept row, NaN p: R stops (NaN here); hf7 returns a single value for any p.
        let zeros = SortedDomain::new(&[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0]);
        assert!(zeros.is_empty());
        for rule in RULES {
            assert!(zeros.quantile(0.5, rule).is_nan());
        }
        let single = SortedDomain::new(&[5.0], &[1.0]);
        assert!(single.quantile(f64::NAN, QuantileRule::Math).is_nan());
        assert_eq!(single.quantile(f64::NAN, QuantileRule::Hf7), 5.0);
        let three = SortedDomain::new(&[3.0, 1.0, 2.0], &[1.0, 1.0, 1.0]);
        for rule in RULES {
            assert!(three.quantile(f64::NAN, rule).is_nan());
            assert_eq!(three.quantile(f64::NEG_INFINITY, rule), 1.0);
            assert_eq!(three.quantile(f64::INFINITY, rule), 3.0);
        }
        // A missing value on a kept row: NaN (the caller drops missing rows); on a dropped
        // row (weight zero) it does not matter.
        let missing = SortedDomain::new(&[1.0, f64::NAN, 2.0], &[1.0, 1.0, 1.0]);
        assert!(missing.quantile(0.5, QuantileRule::Math).is_nan());
        assert!(missing.cdf(1.5).is_nan());
        let dropped = SortedDomain::new(&[1.0, f64::NAN, 2.0], &[1.0, 0.0, 1.0]);
        assert_eq!(dropped.quantile(0.5, QuantileRule::Math), 1.0);
        assert_eq!(dropped.cdf(1.5), 0.5);
    }

    /// R's `svyquantile(~api00, design, c(0.25, 0.5), ci = TRUE, se = TRUE)` with Woodruff
    /// intervals on the stratified design (Taylor F̂ and SE) and on its JKn replicate design
    /// (replicate F̂ SE), and with `interval.type = "quantile"` on the JKn design: estimates,
    /// F̂, confint() and SE() to 1e-10.
    #[test]
    fn intervals_match_r_svyquantile() {
        let cases = golden();
        let mut worst = 0.0f64;
        let mut check = |what: &str, ours: f64, r: f64, tol: f64| {
            let e = err(ours, r);
            // R's se is 0 where the replicate variance is 0.
            let e = if r == 0.0 { ours.abs() } else { e };
            assert!(e <= tol, "{what}: {ours} vs R {r}");
            worst = worst.max(e);
        };
        for name in ["dstrat_woodruff", "jkn_woodruff", "jkn_quantile"] {
            let case = &cases[name];
            let domain = SortedDomain::new(&case.x, &case.w);
            for rule in RULES {
                for p in [0.25, 0.5] {
                    let what = format!("{name} {} p = {p}", rule.name());
                    let r = |item: &str| case.result(item, rule, p);
                    let qhat = domain.quantile(p, rule);
                    check(&format!("{what} quantile"), qhat, r("quantile"), 1e-12);
                    let interval = if name == "jkn_quantile" {
                        replicate_quantile_interval(qhat, r("repvar"), r("df"), r("level"))
                    } else {
                        let ours_cdf = if name == "dstrat_woodruff" {
                            domain.cdf_taylor(qhat)
                        } else {
                            domain.cdf(qhat)
                        };
                        check(&format!("{what} fhat"), ours_cdf, r("fhat"), 1e-14);
                        woodruff_interval(
                            &domain,
                            r("fhat"),
                            r("fhat_se"),
                            r("df"),
                            r("level"),
                            rule,
                        )
                    };
                    check(&format!("{what} lower"), interval.lower, r("lower"), 1e-10);
                    check(&format!("{what} upper"), interval.upper, r("upper"), 1e-10);
                    check(&format!("{what} se"), interval.se, r("se"), 1e-10);
                }
            }
        }
        eprintln!("intervals: max relative error {worst:e}");
    }

    #[test]
    fn interval_ends_outside_unit_interval_are_nan() {
        let domain = SortedDomain::new(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 1.0, 1.0]);
        let i = woodruff_interval(&domain, 0.1, 0.1, f64::INFINITY, 0.95, QuantileRule::Math);
        assert!(i.lower.is_nan() && i.se.is_nan());
        assert_eq!(i.upper, 2.0);
        let i = woodruff_interval(&domain, 0.95, 0.1, 30.0, 0.95, QuantileRule::Hf7);
        assert!(i.upper.is_nan() && !i.lower.is_nan());
        let i = woodruff_interval(&domain, 0.5, f64::NAN, 30.0, 0.95, QuantileRule::Hf7);
        assert!(i.lower.is_nan() && i.upper.is_nan());
    }

    /// F̂ of a domain refilled with a replicate's weights equals the domain built from them, and
    /// both are Σ_{x ≤ q} w / Σ w.
    #[test]
    fn replicate_cdf_through_the_order() {
        let cases = golden();
        let case = &cases["ties_rep1"];
        let order = QuantileOrder::new(&case.x);
        let domain = SortedDomain::from_order(&order, &case.x, &case.w);
        let mut refilled = SortedDomain::default();
        refilled.refill(&order, &case.x, &vec![1.0; case.x.len()]);
        refilled.refill(&order, &case.x, &case.w);
        for q in [0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, f64::NAN] {
            let direct = refilled.cdf(q);
            assert_eq!(direct.to_bits(), domain.cdf(q).to_bits(), "q = {q}");
            let below: f64 = case
                .x
                .iter()
                .zip(&case.w)
                .filter(|(x, _)| **x <= q)
                .map(|(_, w)| w)
                .sum();
            let total: f64 = case.w.iter().sum();
            if !q.is_nan() {
                assert!(err(direct, below / total) <= 1e-14);
                assert!(err(domain.cdf_taylor(q), direct) <= 1e-14);
            }
        }
    }

    /// Deterministic pseudo-random permutation of 0..n (64-bit LCG, Fisher–Yates).
    fn permutation(n: usize, seed: u64) -> Vec<usize> {
        let mut state = seed;
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let j = ((state >> 33) % (i as u64 + 1)) as usize;
            perm.swap(i, j);
        }
        perm
    }

    /// Permuting the rows changes no quantile. For `math` any permutation; for `hf7` the
    /// permutation keeps tied values in their row order, because R's hf7 depends on it (the
    /// fixture's `tie_order_a`/`tie_order_b`: 2.3 and 2 for the same multiset of rows).
    #[test]
    fn permuting_rows_changes_no_quantile() {
        let cases = golden();
        let probs = [
            0.0,
            0.01,
            0.1,
            0.25,
            0.3,
            0.5,
            0.7,
            0.75,
            0.9,
            0.99,
            1.0,
            0.123456789,
        ];
        for (name, case) in &cases {
            let n = case.x.len();
            let domain = SortedDomain::new(&case.x, &case.w);
            for seed in 1..=5u64 {
                let perm = permutation(n, seed);
                let px: Vec<f64> = perm.iter().map(|&i| case.x[i]).collect();
                let pw: Vec<f64> = perm.iter().map(|&i| case.w[i]).collect();
                let any = SortedDomain::new(&px, &pw);
                // Tie-preserving: the positions the permutation gives a tied group are filled
                // with the group's rows in their original order.
                let mut kept = perm.clone();
                let mut by_value: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
                for (pos, &i) in perm.iter().enumerate() {
                    by_value.entry(case.x[i].to_bits()).or_default().push(pos);
                }
                for positions in by_value.values() {
                    let mut rows: Vec<usize> = positions.iter().map(|&pos| perm[pos]).collect();
                    rows.sort_unstable();
                    for (&pos, &row) in positions.iter().zip(&rows) {
                        kept[pos] = row;
                    }
                }
                let kx: Vec<f64> = kept.iter().map(|&i| case.x[i]).collect();
                let kw: Vec<f64> = kept.iter().map(|&i| case.w[i]).collect();
                let tie_kept = SortedDomain::new(&kx, &kw);
                for p in probs {
                    let q = domain.quantile(p, QuantileRule::Math);
                    let qa = any.quantile(p, QuantileRule::Math);
                    assert_eq!(q.to_bits(), qa.to_bits(), "{name} math p = {p}");
                    let q = domain.quantile(p, QuantileRule::Hf7);
                    let qk = tie_kept.quantile(p, QuantileRule::Hf7);
                    assert_eq!(q.to_bits(), qk.to_bits(), "{name} hf7 p = {p}");
                }
            }
        }
        let (a, b) = (&cases["tie_order_a"], &cases["tie_order_b"]);
        assert_ne!(
            a.result("quantile", QuantileRule::Hf7, 0.5),
            b.result("quantile", QuantileRule::Hf7, 0.5)
        );
    }
}
