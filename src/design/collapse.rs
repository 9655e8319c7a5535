//! Collapsing strata with a single responding PSU (`lonely_psu = "collapse"`).
//!
//! A stratum whose design rows fall in one first-stage PSU has no within-stratum variance
//! estimate. The classical remedy (Wolter 2007, §2.5 "collapsed stratum estimator"; Rust &
//! Kalton 1987) merges it with a similar stratum and estimates the variance as if the merged
//! strata were one, which overstates the variance by the spread between the merged strata's
//! means. The partner is chosen by a rule written down before seeing the outcome:
//!
//! 1. with `collapse_order`, the next stratum in that order (the previous one for the last), among
//!    the strata with the same `collapse_within` value when that is given;
//! 2. otherwise the stratum whose design-weight total is closest (same `collapse_within` value
//!    when given; ties: the stratum seen first in the file).
//!
//! Lonely strata are taken in order of first appearance; a lonely stratum already merged into a
//! group of two or more PSUs (as an earlier stratum's partner) is not merged again. The merged
//! stratum is labelled with its members' labels joined by `+`, its `n_h` is the members' PSUs and
//! its `N_h` the sum of theirs. Only the first stage is collapsed: later stages keep their
//! strata (the first-stage units).

use super::{Design, DesignError, keys_of, label_of};
use crate::frame::{ColumnData, Frame};

/// How partners are found (`[design] collapse_order`, `collapse_within`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollapseSpec {
    /// Column giving the order of the strata; the lonely stratum joins the next one.
    pub order: Option<String>,
    /// Column whose value a stratum and its partner share (a region, say).
    pub within: Option<String>,
}

/// Which rule chose a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollapseRule {
    /// The next (or, for the last, the previous) stratum in `collapse_order`.
    Order,
    /// The stratum with the closest design-weight total.
    WeightTotal,
}

impl CollapseRule {
    /// Name written to `run_summary.json` and `weighting.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            CollapseRule::Order => "next in collapse_order",
            CollapseRule::WeightTotal => "closest design-weight total",
        }
    }
}

/// One lonely stratum and the stratum it was merged with.
#[derive(Debug, Clone, PartialEq)]
pub struct CollapsedStratum {
    /// The stratum with one responding PSU.
    pub stratum: String,
    /// Its partner.
    pub partner: String,
    /// The merged stratum's label (members joined by `+`).
    pub merged: String,
    /// The rule that chose the partner.
    pub rule: CollapseRule,
}

/// A stratum's value of an order column: numbers compare as numbers, text as text.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum OrderValue {
    Number(f64),
    Text(String),
}

/// The value of column `name` for each first-stage stratum, checked constant within strata.
fn per_stratum<T: Clone + PartialEq>(
    design: &Design,
    name: &str,
    value_of: impl Fn(usize) -> T,
    label: impl Fn(usize) -> String,
) -> Result<Vec<T>, DesignError> {
    let st = &design.stages[0];
    let mut seen: Vec<Option<(T, usize)>> = vec![None; st.sampsize.len()];
    for (i, &h) in st.stratum.iter().enumerate() {
        let v = value_of(i);
        match &seen[h as usize] {
            None => seen[h as usize] = Some((v, i)),
            Some((first, at)) if *first != v => {
                return Err(DesignError::CollapseColumnVaries {
                    column: name.to_string(),
                    stratum: st.stratum_label[h as usize].clone(),
                    a: label(*at),
                    b: label(i),
                });
            }
            Some(_) => {}
        }
    }
    Ok(seen
        .into_iter()
        .map(|v| v.map(|(v, _)| v).expect("every stratum has a design row"))
        .collect())
}

fn find(parent: &mut [usize], h: usize) -> usize {
    let mut root = h;
    while parent[root] != root {
        root = parent[root];
    }
    let mut x = h;
    while parent[x] != root {
        let next = parent[x];
        parent[x] = root;
        x = next;
    }
    root
}

impl Design {
    /// Merge every first-stage stratum with a single PSU among the design rows into a partner
    /// chosen by the module's rule; returns the merges (none when no stratum is lonely).
    pub(crate) fn collapse_lonely_strata(
        &mut self,
        frame: &Frame,
        spec: &CollapseSpec,
    ) -> Result<Vec<CollapsedStratum>, DesignError> {
        let st = &self.stages[0];
        let n_strata = st.sampsize.len();
        let lonely: Vec<usize> = (0..n_strata).filter(|&h| st.sampsize[h] == 1.0).collect();
        if lonely.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.rows.clone();
        let group: Vec<u64> = match &spec.within {
            None => vec![0; n_strata],
            Some(name) => {
                let keys = keys_of(frame, name, &rows)?;
                per_stratum(self, name, |i| keys[i], |i| label_of(frame, name, &rows, i))?
            }
        };
        let order: Option<Vec<OrderValue>> = match &spec.order {
            None => None,
            Some(name) => {
                // keys_of checks presence and finiteness.
                keys_of(frame, name, &rows)?;
                let col = frame
                    .column(name)
                    .ok_or_else(|| DesignError::MissingColumn(name.clone()))?;
                let value = |i: usize| match &col.data {
                    ColumnData::Num(v) => OrderValue::Number(v[rows[i]]),
                    ColumnData::Text { .. } => {
                        OrderValue::Text(col.display(rows[i]).unwrap_or_default())
                    }
                };
                Some(per_stratum(self, name, value, |i| {
                    label_of(frame, name, &rows, i)
                })?)
            }
        };
        let st = &self.stages[0];
        let mut weight_total = vec![0.0; n_strata];
        for (i, &h) in st.stratum.iter().enumerate() {
            weight_total[h as usize] += self.weights[i];
        }
        let mut parent: Vec<usize> = (0..n_strata).collect();
        let mut psus: Vec<f64> = st.sampsize.clone();
        let mut merges: Vec<(usize, usize, CollapseRule)> = Vec::new();
        for &h in &lonely {
            let root = find(&mut parent, h);
            if psus[root] >= 2.0 {
                continue;
            }
            let mut candidates: Vec<usize> = (0..n_strata)
                .filter(|&g| g != h && group[g] == group[h])
                .collect();
            if candidates.is_empty() {
                return Err(DesignError::NoCollapsePartner {
                    stratum: st.stratum_label[h].clone(),
                    within: spec.within.clone(),
                });
            }
            let (partner, rule) = match &order {
                Some(order) => {
                    candidates.push(h);
                    candidates.sort_by(|&a, &b| {
                        order[a]
                            .partial_cmp(&order[b])
                            .unwrap_or(std::cmp::Ordering::Equal)
                            .then(a.cmp(&b))
                    });
                    let at = candidates.iter().position(|&g| g == h).unwrap_or(0);
                    let partner = if at + 1 < candidates.len() {
                        candidates[at + 1]
                    } else {
                        candidates[at - 1]
                    };
                    (partner, CollapseRule::Order)
                }
                None => {
                    let distance = |g: usize| (weight_total[g] - weight_total[h]).abs();
                    let partner = candidates
                        .iter()
                        .copied()
                        .min_by(|&a, &b| {
                            distance(a)
                                .partial_cmp(&distance(b))
                                .unwrap_or(std::cmp::Ordering::Equal)
                                .then(a.cmp(&b))
                        })
                        .unwrap_or(candidates[0]);
                    (partner, CollapseRule::WeightTotal)
                }
            };
            let (a, b) = (root, find(&mut parent, partner));
            if a != b {
                let (keep, gone) = (a.min(b), a.max(b));
                parent[gone] = keep;
                psus[keep] += psus[gone];
            }
            merges.push((h, partner, rule));
        }

        // New dense codes in order of each merged stratum's first member.
        let mut code_of_root = vec![u32::MAX; n_strata];
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut new_code = vec![0u32; n_strata];
        for h in 0..n_strata {
            let root = find(&mut parent, h);
            if code_of_root[root] == u32::MAX {
                code_of_root[root] = members.len() as u32;
                members.push(Vec::new());
            }
            new_code[h] = code_of_root[root];
            members[new_code[h] as usize].push(h);
        }
        let st = &mut self.stages[0];
        let labels: Vec<String> = members
            .iter()
            .map(|m| {
                m.iter()
                    .map(|&h| st.stratum_label[h].as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        let sampsize = members
            .iter()
            .map(|m| m.iter().map(|&h| st.sampsize[h]).sum())
            .collect();
        let popsize = members
            .iter()
            .map(|m| m.iter().map(|&h| st.popsize[h]).sum())
            .collect();
        let collapsed = merges
            .iter()
            .map(|&(h, partner, rule)| CollapsedStratum {
                stratum: st.stratum_label[h].clone(),
                partner: st.stratum_label[partner].clone(),
                merged: labels[new_code[h] as usize].clone(),
                rule,
            })
            .collect();
        for h in st.stratum.iter_mut() {
            *h = new_code[*h as usize];
        }
        for h in st.unit_stratum.iter_mut() {
            *h = new_code[*h as usize];
        }
        st.sampsize = sampsize;
        st.popsize = popsize;
        st.stratum_label = labels;
        Ok(collapsed)
    }
}
