//! Quantile indicators by domain (`kind = "quantile"`), as R's `svyquantile` with `ci = TRUE`:
//! each domain's weighted quantile by the indicator's rule, and its interval
//!
//! * Woodruff (R `interval.type = "mean"`): the interval of the distribution function at the
//!   quantile, F̂(q̂) = Σ_{y ≤ q̂} w / Σ w, a proportion of the domain whose variance is that of
//!   every proportion: Taylor from the same sums by (domain, PSU) ([`super::grouped_domain_stats`],
//!   or row scores where the design needs them), replicate from the replicates' F̂_r(q̂); its ends
//!   are read back through the rule (`quantile::woodruff_interval`);
//! * replicate quantiles (R `interval.type = "quantile"`, replicate variance only): q̂ ± t·√v with
//!   v the replicate variance of the replicates' own quantiles.
//!
//! SE = interval width / (2 t), as R's `SE()` of a `svyquantile`. Rules and intervals:
//! `estimate/quantile.rs`; method and references: `docs/methods.md` (Quantiles).

use super::ci::CiMethod;
use super::quantile::{
    QuantileBounds, QuantileOrder, SortedDomain, replicate_quantile_interval, woodruff_interval,
};
use super::{
    Block, Breakdown, CalibratedSums, CellSums, EstimateError, EstimateRow, EstimationRequest,
    Flag, IndicatorValues, PsuCell, ReplicateDf, SumsPath, TOTAL, domain_estimate, finite,
    grouped_domain_stats, item_missing_shares,
};
use crate::questionnaire::{Indicator, IndicatorKind, QuantileInterval};
use crate::weighting::Scheme;

/// Per breakdown (empty when it is not published), each domain's rows with a defined value in
/// order of value: one sort per quantile indicator, shared by every scheme and replicate.
pub(super) struct DomainOrders {
    by_breakdown: Vec<Vec<QuantileOrder>>,
}

pub(super) fn domain_orders(vals: &IndicatorValues, breakdowns: &[Breakdown]) -> DomainOrders {
    let all = QuantileOrder::of_rows(
        &vals.y.as_f64(0..vals.y.len()),
        (0..vals.y.len()).filter(|&r| vals.defined[r]),
    );
    DomainOrders {
        by_breakdown: breakdowns
            .iter()
            .map(|b| {
                if b.published {
                    all.split(|r| b.of_row.at(r), b.labels.len())
                } else {
                    Vec::new()
                }
            })
            .collect(),
    }
}

/// The probability as the `category` column writes it: shortest text that reads back the same.
pub(super) fn prob_label(p: f64) -> String {
    format!("{p}")
}

/// Taylor rows of one quantile indicator under one scheme: breakdown, domain value, then
/// probability.
#[allow(clippy::too_many_arguments)]
pub(super) fn taylor_block(
    req: &EstimationRequest<'_>,
    ind: &Indicator,
    vals: &IndicatorValues,
    orders: &DomainOrders,
    scheme: &Scheme,
    breakdowns: &[Breakdown],
    sums: Option<&CalibratedSums<'_>>,
    path: SumsPath<'_>,
    full_df: f64,
) -> Result<Block, EstimateError> {
    let Some(spec) = &ind.quantile else {
        return Ok(Block {
            rows: Vec::new(),
            kept: Vec::new(),
        });
    };
    let w = &scheme.weights;
    let n = w.len();
    let mut rows = Vec::new();
    for (index, b) in breakdowns.iter().enumerate() {
        if !b.published {
            continue;
        }
        let item_missing = item_missing_shares(vals, w, b);
        let domains: Vec<SortedDomain> = orders.by_breakdown[index]
            .iter()
            .map(|o| SortedDomain::from_order(o, &vals.y.as_f64(0..vals.y.len()), w))
            .collect();
        // An uncalibrated single-stage scheme forms F̂'s sums by (domain, PSU) from the sorted
        // rows: the rows at or below q̂ are a prefix of each domain's order.
        let prefix_sums = !scheme.calibrated && !matches!(path, SumsPath::Rows);
        let base = prefix_sums.then(|| domain_psu_base(&orders.by_breakdown[index], w, req));
        // Per probability: the domains' quantiles and the Taylor statistics of F̂ at them.
        let mut per_prob = Vec::with_capacity(spec.probs.len());
        for &p in &spec.probs {
            let q: Vec<f64> = domains.iter().map(|d| d.quantile(p, spec.rule)).collect();
            if let Some(base) = &base {
                let given = prefix_cell_sums(base, &orders.by_breakdown[index], vals, w, &q, req);
                let stats = grouped_domain_stats(
                    req,
                    IndicatorKind::Proportion,
                    vals,
                    scheme,
                    b,
                    full_df,
                    None,
                    None,
                    None,
                    None,
                    Some(given),
                )
                .map(|all| {
                    all.into_iter()
                        .enumerate()
                        .map(|(d, s)| match s {
                            None => Ok(None),
                            Some(Ok((stats, _))) => Ok(Some((stats.se, stats.df))),
                            Some(Err(message)) => Err((d, message)),
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
                if let Some(stats) = stats {
                    let stats = stats.map_err(|(d, message)| EstimateError::Variance {
                        indicator: ind.id.clone(),
                        weighting: scheme.name.clone(),
                        domain: domain_name(b, d),
                        message,
                    })?;
                    per_prob.push((q, stats));
                    continue;
                }
            }
            let below = IndicatorValues {
                y: (0..n)
                    .map(|r| match b.of_row.at(r) {
                        Some(d) if vals.defined[r] && vals.y[r] <= q[d as usize] => 1.0,
                        _ => 0.0,
                    })
                    .collect(),
                x: None,
                defined: vals.defined.clone(),
                item_missing: None,
            };
            let stats = cdf_stats(req, &below, scheme, b, sums, path, full_df).map_err(
                |(d, message)| EstimateError::Variance {
                    indicator: ind.id.clone(),
                    weighting: scheme.name.clone(),
                    domain: domain_name(b, d),
                    message,
                },
            )?;
            per_prob.push((q, stats));
        }
        for (d, domain) in domains.iter().enumerate() {
            let n_rows = orders.by_breakdown[index][d].len();
            if n_rows == 0 {
                continue;
            }
            for (k, &p) in spec.probs.iter().enumerate() {
                let (q, stats) = &per_prob[k];
                let Some((se, df)) = stats[d] else { continue };
                let bounds = woodruff_interval(
                    domain,
                    domain.cdf_taylor(q[d]),
                    se,
                    df,
                    req.level,
                    spec.rule,
                );
                rows.push(quantile_row(
                    req,
                    ind,
                    scheme,
                    b,
                    d,
                    p,
                    q[d],
                    bounds,
                    CiMethod::Woodruff,
                    df,
                    (n_rows, domain_weight(&orders.by_breakdown[index][d], w)),
                    item_missing[d],
                ));
            }
        }
    }
    Ok(Block {
        rows,
        kept: Vec::new(),
    })
}

/// Per domain of a breakdown: its sums by PSU over all its rows (weight, rows, rows of non-zero
/// weight), the part of F̂'s sums that does not depend on q̂.
fn domain_psu_base(orders: &[QuantileOrder], w: &[f64], req: &EstimationRequest<'_>) -> CellSums {
    let n_psu = req.design.n_psu();
    let psu_of_row = req.design.psu_of_row();
    let k = orders.len();
    let mut base = CellSums {
        cells: vec![PsuCell::default(); k * n_psu],
        pairs: None,
        sw: vec![0.0; k],
        swy: vec![0.0; k],
        swx: vec![0.0; k],
        count: vec![0; k],
        nobs: vec![0; k],
        ss: vec![0.0; k],
        rhs: Vec::new(),
    };
    for (d, order) in orders.iter().enumerate() {
        for &r in order.rows() {
            let c = &mut base.cells[d * n_psu + psu_of_row[r] as usize];
            c.w += w[r];
            c.rows += 1;
            base.sw[d] += w[r];
            base.count[d] += 1;
            if w[r] != 0.0 {
                c.nonzero += 1;
                base.nobs[d] += 1;
            }
        }
    }
    base
}

/// F̂'s sums by (domain, PSU) at the domains' quantiles `q`: the base plus Σ w over the prefix
/// of each domain's order at or below its q̂ (the proportion's Σ w y), the rows in data order's
/// sums as [`super::row_sums`] forms them.
fn prefix_cell_sums(
    base: &CellSums,
    orders: &[QuantileOrder],
    vals: &IndicatorValues,
    w: &[f64],
    q: &[f64],
    req: &EstimationRequest<'_>,
) -> CellSums {
    let n_psu = req.design.n_psu();
    let psu_of_row = req.design.psu_of_row();
    let mut out = CellSums {
        cells: base.cells.clone(),
        pairs: None,
        sw: base.sw.clone(),
        swy: vec![0.0; orders.len()],
        swx: base.swx.clone(),
        count: base.count.clone(),
        nobs: base.nobs.clone(),
        ss: vec![0.0; orders.len()],
        rhs: Vec::new(),
    };
    for (d, order) in orders.iter().enumerate() {
        let rows = order.rows();
        let cut = rows.partition_point(|&r| vals.y[r] <= q[d]);
        for &r in &rows[..cut] {
            out.cells[d * n_psu + psu_of_row[r] as usize].wy += w[r];
            out.swy[d] += w[r];
        }
        // Σ w (y − ȳ)² of a 0/1 variable (design effects are not reported for quantiles).
        out.ss[d] = out.swy[d] - out.swy[d] * out.swy[d] / out.sw[d];
    }
    out
}

/// Σ w over a domain's rows, zero weights included (the `n_weighted` of every row).
fn domain_weight(order: &QuantileOrder, w: &[f64]) -> f64 {
    order.rows().iter().map(|&r| w[r]).sum()
}

fn domain_name(b: &Breakdown, d: usize) -> String {
    if b.var == TOTAL {
        TOTAL.to_string()
    } else {
        format!("{}={}", b.var, b.labels.get(d).map_or("", String::as_str))
    }
}

/// SE and df of the domains' F̂ (the proportion `below`) under the Taylor variance: from sums by
/// (domain, PSU) where the design allows, else from row scores. `None` for a domain without rows.
#[allow(clippy::type_complexity)]
fn cdf_stats(
    req: &EstimationRequest<'_>,
    below: &IndicatorValues,
    scheme: &Scheme,
    b: &Breakdown,
    sums: Option<&CalibratedSums<'_>>,
    path: SumsPath<'_>,
    full_df: f64,
) -> Result<Vec<Option<(f64, f64)>>, (usize, String)> {
    let kind = IndicatorKind::Proportion;
    let grouped = if matches!(path, SumsPath::Rows) {
        None
    } else {
        grouped_domain_stats(
            req, kind, below, scheme, b, full_df, None, sums, None, None, None,
        )
    };
    if let Some(all) = grouped {
        return all
            .into_iter()
            .enumerate()
            .map(|(d, s)| match s {
                None => Ok(None),
                Some(Ok((stats, _))) => Ok(Some((stats.se, stats.df))),
                Some(Err(message)) => Err((d, message)),
            })
            .collect();
    }
    let n = below.y.len();
    let mut mask = vec![false; n];
    let mut scores = vec![0.0; n];
    (0..b.labels.len())
        .map(|d| {
            for (r, m) in mask.iter_mut().enumerate() {
                *m = below.defined[r] && b.of_row.at(r) == Some(d as u32);
            }
            if !mask.contains(&true) {
                return Ok(None);
            }
            domain_estimate(
                req,
                kind,
                below,
                scheme,
                &mask,
                &mut scores,
                full_df,
                None,
                false,
            )
            .map(|s| Some((s.se, s.df)))
            .map_err(|message| (d, message))
        })
        .collect()
}

/// One output row of a quantile.
#[allow(clippy::too_many_arguments)]
fn quantile_row(
    req: &EstimationRequest<'_>,
    ind: &Indicator,
    scheme: &Scheme,
    b: &Breakdown,
    d: usize,
    p: f64,
    estimate: f64,
    bounds: QuantileBounds,
    method: CiMethod,
    df: f64,
    (n_unweighted, n_weighted): (usize, f64),
    item_missing_share: Option<f64>,
) -> EstimateRow {
    let m = ind.multiplier;
    let est = estimate * m;
    let se = bounds.se * m;
    EstimateRow {
        indicator: ind.id.clone(),
        weighting: scheme.name.clone(),
        variance: req.variance,
        domain_var: b.var.clone(),
        domain_value: b.labels[d].clone(),
        category: Some(prob_label(p)),
        estimate: finite(est),
        se: finite(se),
        ci_low: finite(bounds.lower * m),
        ci_high: finite(bounds.upper * m),
        ci_method: method,
        df: finite(df),
        cv: (est != 0.0 && se.is_finite())
            .then(|| se / est.abs())
            .and_then(finite),
        deff: None,
        n_unweighted: n_unweighted as i64,
        n_weighted,
        n_effective: None,
        item_missing_share,
        flag: Flag::Reliable,
        flag_reason: String::new(),
        level: crate::questionnaire::Level::Person,
    }
}

/// The full-sample quantiles of one scheme's replicate rows, in a fixed order: quantile
/// indicator (request order), published breakdown, domain value, probability. Each replicate
/// gives two statistics per entry: F̂_r(q̂) (Woodruff) and its own quantile q̂_r.
pub struct QuantilePlan {
    entries: Vec<PlanEntry>,
}

struct PlanEntry {
    indicator: usize,
    breakdown: usize,
    domain: usize,
    prob: usize,
    quantile: f64,
    cdf: f64,
}

impl QuantilePlan {
    /// True when the request has no quantile indicator with a domain.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Statistics per replicate: two per entry.
    pub fn n_statistics(&self) -> usize {
        2 * self.entries.len()
    }
}

/// The plan of the request's quantiles under the full-sample weights `w`.
pub fn quantile_plan(
    req: &EstimationRequest<'_>,
    prepared: &super::Prepared,
    w: &[f64],
) -> QuantilePlan {
    let mut entries = Vec::new();
    for (i, ind) in req.indicators.iter().enumerate() {
        let (Some(spec), Some(orders)) = (&ind.quantile, &prepared.quantile_orders[i]) else {
            continue;
        };
        let vals = &prepared.values[i];
        for (index, by_domain) in orders.by_breakdown.iter().enumerate() {
            for (d, order) in by_domain.iter().enumerate() {
                if order.is_empty() {
                    continue;
                }
                let domain = SortedDomain::from_order(order, &vals.y.as_f64(0..vals.y.len()), w);
                for (k, &p) in spec.probs.iter().enumerate() {
                    let quantile = domain.quantile(p, spec.rule);
                    entries.push(PlanEntry {
                        indicator: i,
                        breakdown: index,
                        domain: d,
                        prob: k,
                        quantile,
                        cdf: domain.cdf(quantile),
                    });
                }
            }
        }
    }
    QuantilePlan { entries }
}

/// One replicate's statistics of the plan under its weights `w`: per entry F̂_r(q̂), then q̂_r.
pub fn quantile_replicate_statistics(
    req: &EstimationRequest<'_>,
    prepared: &super::Prepared,
    plan: &QuantilePlan,
    w: &[f64],
) -> Vec<f64> {
    let mut out = Vec::with_capacity(plan.n_statistics());
    let mut domain = SortedDomain::default();
    let mut current = None;
    for e in &plan.entries {
        let key = (e.indicator, e.breakdown, e.domain);
        let vals = &prepared.values[e.indicator];
        if current != Some(key) {
            if let Some(orders) = &prepared.quantile_orders[e.indicator] {
                domain.refill(
                    &orders.by_breakdown[e.breakdown][e.domain],
                    &vals.y.as_f64(0..vals.y.len()),
                    w,
                );
            }
            current = Some(key);
        }
        let rule = req.indicators[e.indicator]
            .quantile
            .as_ref()
            .map_or(crate::questionnaire::QuantileRule::Math, |s| s.rule);
        let p = req.indicators[e.indicator]
            .quantile
            .as_ref()
            .map_or(f64::NAN, |s| s.probs[e.prob]);
        out.push(domain.cdf(e.quantile));
        out.push(domain.quantile(p, rule));
    }
    out
}

/// Replicate rows of one scheme's quantiles from the replicate statistics (`thetas`, statistic
/// after statistic, `n_rep` each), `variance` (R's `svrVar` about a centre) and the replicate
/// df of a domain.
#[allow(clippy::too_many_arguments)]
pub fn quantile_replicate_rows(
    req: &EstimationRequest<'_>,
    prepared: &super::Prepared,
    plan: &QuantilePlan,
    scheme: &Scheme,
    thetas: &[f64],
    n_rep: usize,
    variance: &dyn Fn(&[f64], f64) -> f64,
    df_of: &ReplicateDf<'_>,
) -> Vec<EstimateRow> {
    let w = &scheme.weights;
    let psu_of_row = req.design.psu_of_row();
    let mut rows = Vec::new();
    let mut domain = SortedDomain::default();
    let mut current = None;
    let mut df = f64::NAN;
    // item_missing_share of the current (indicator, breakdown), per domain value.
    let mut shares: Option<((usize, usize), Vec<Option<f64>>)> = None;
    for (k, e) in plan.entries.iter().enumerate() {
        let ind = req.indicators[e.indicator];
        let (Some(spec), Some(orders)) = (&ind.quantile, &prepared.quantile_orders[e.indicator])
        else {
            continue;
        };
        let order = &orders.by_breakdown[e.breakdown][e.domain];
        let vals = &prepared.values[e.indicator];
        if current != Some((e.indicator, e.breakdown, e.domain)) {
            domain.refill(order, &vals.y.as_f64(0..vals.y.len()), w);
            let kept: Vec<usize> = order
                .rows()
                .iter()
                .copied()
                .filter(|&r| w[r] != 0.0)
                .collect();
            let mut psus: Vec<u32> = kept.iter().map(|&r| psu_of_row[r]).collect();
            psus.sort_unstable();
            psus.dedup();
            df = df_of(&psus, kept.len(), &|| {
                let mut rows = kept.clone();
                rows.sort_unstable();
                rows.into()
            });
            current = Some((e.indicator, e.breakdown, e.domain));
        }
        let column = |s: usize| &thetas[s * n_rep..(s + 1) * n_rep];
        let (bounds, method) = match spec.interval {
            QuantileInterval::Woodruff => {
                let v = variance(column(2 * k), e.cdf);
                (
                    woodruff_interval(&domain, e.cdf, v.sqrt(), df, req.level, spec.rule),
                    CiMethod::Woodruff,
                )
            }
            QuantileInterval::ReplicateQuantiles => {
                let v = variance(column(2 * k + 1), e.quantile);
                (
                    replicate_quantile_interval(e.quantile, v, df, req.level),
                    CiMethod::ReplicateQuantile,
                )
            }
        };
        let b = &prepared.breakdowns[e.breakdown];
        if shares
            .as_ref()
            .is_none_or(|(at, _)| *at != (e.indicator, e.breakdown))
        {
            shares = Some(((e.indicator, e.breakdown), item_missing_shares(vals, w, b)));
        }
        let item_missing_share = shares.as_ref().and_then(|(_, s)| s[e.domain]);
        rows.push(quantile_row(
            req,
            ind,
            scheme,
            b,
            e.domain,
            spec.probs[e.prob],
            e.quantile,
            bounds,
            method,
            df,
            (order.len(), domain_weight(order, w)),
            item_missing_share,
        ));
    }
    rows
}
