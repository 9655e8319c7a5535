//! Reliability flags for published cells: `flag` ([`Flag`], written `""` reliable, `"caution"`,
//! `"suppressed"`) and `flag_reason` (which rule fired), from a preset agency standard or custom
//! thresholds.
//!
//! The rules, their sources and which of them apply to proportions and to other estimators are
//! written down in `docs/reliability-flags.md`. In short:
//!
//! * `nchs-2017`: NCHS Data Presentation Standards for Proportions (Parker et al. 2017, Vital
//!   Health Stat 2(175)), as implemented by NCHS's own R package `surveytable`; other estimators
//!   get the NCHS "30/30" rule (n < 30 suppressed, RSE ≥ 30 % flagged).
//! * `eurostat`: EU-SILC publication limits: fewer than 20 observations not published, 20–49
//!   published with the low-reliability flag `u`.
//! * `ine-chile`: INE Chile (2020) standard for household-survey estimates: n ≥ 60 and df ≥ 9,
//!   then SE ≤ p^(2/3)/9 (proportions, with p the smaller of p̂ and 1 − p̂) or CV bands
//!   15 % / 30 % (other estimators).
//! * `statcan`: Statistics Canada CV bands: CV > 33.3 % suppressed, 16.6 %–33.3 % use with caution.
//!
//! Suppression never deletes a row: with `suppress = true` the estimate, SE, CV and interval
//! become null and the flag says why; sample sizes, df and deff stay.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Deserialize;

use super::PublicationConfigError;
use crate::estimate::ci::CiMethod;
use crate::estimate::{EstimateRow, Flag};
use crate::questionnaire::Questionnaire;

/// The `[reliability]` table as written in `pipeline.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawReliability {
    /// `nchs-2017`, `eurostat`, `ine-chile`, `statcan` or `custom` (default `nchs-2017`).
    #[serde(default)]
    pub preset: Option<String>,
    /// Blank the estimate, SE, CV and interval of suppressed cells (default true).
    #[serde(default)]
    pub suppress: Option<bool>,
    /// custom: suppress when the unweighted n is below this.
    #[serde(default)]
    pub min_n: Option<f64>,
    /// custom: caution when the unweighted n is below this.
    #[serde(default)]
    pub caution_n: Option<f64>,
    /// custom: suppress when the effective n (n / deff) is below this.
    #[serde(default)]
    pub min_effective_n: Option<f64>,
    /// custom: suppress when the CV is above this (a fraction: 0.3 = 30 %).
    #[serde(default)]
    pub max_cv: Option<f64>,
    /// custom: caution when the CV is above this.
    #[serde(default)]
    pub caution_cv: Option<f64>,
    /// custom: caution when the degrees of freedom are below this.
    #[serde(default)]
    pub min_df: Option<f64>,
    /// Any preset: caution on a total whose `item_missing_share` is above this (default 0.05).
    #[serde(default)]
    pub max_item_missing_share: Option<f64>,
}

/// A named reliability standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// NCHS Data Presentation Standards for Proportions (2017).
    Nchs2017,
    /// Eurostat EU-SILC publication limits.
    Eurostat,
    /// INE Chile household-survey standard (2020).
    IneChile,
    /// Statistics Canada CV bands.
    Statcan,
    /// Thresholds from the config.
    Custom,
}

impl Preset {
    /// Name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Nchs2017 => "nchs-2017",
            Preset::Eurostat => "eurostat",
            Preset::IneChile => "ine-chile",
            Preset::Statcan => "statcan",
            Preset::Custom => "custom",
        }
    }

    /// One-line description with the source, for the methods sections of the products.
    pub fn description(self) -> &'static str {
        match self {
            Preset::Nchs2017 => {
                "NCHS Data Presentation Standards for Proportions (Parker et al. 2017, Vital Health Stat 2(175)): \
                 proportions are suppressed when the effective sample size is below 30, the Korn-Graubard interval \
                 is 0.30 wide or more, or between 0.05 and 0.30 wide with a relative width above 130 %; flagged for \
                 review when df < 8, the estimate is 0 % or 100 %, or the complement's relative width exceeds 130 %. \
                 Other estimators: n < 30 suppressed, relative standard error of 30 % or more flagged, df < 8 flagged."
            }
            Preset::Eurostat => {
                "Eurostat EU-SILC publication limits: estimates based on fewer than 20 sample observations are not \
                 published; 20 to 49 observations are published with the low-reliability flag (u)."
            }
            Preset::IneChile => {
                "INE Chile (2020) standard for household-survey estimates: n < 60 or df < 9 is not reliable; \
                 proportions with SE above p^(2/3)/9 (p the smaller of p and 1 - p) are weakly reliable; other \
                 estimators are weakly reliable for a CV in (15 %, 30 %] and not reliable above 30 %."
            }
            Preset::Statcan => {
                "Statistics Canada: CV above 33.3 % too unreliable to be published; 16.6 % to 33.3 % use with caution."
            }
            Preset::Custom => "Thresholds set in the [reliability] table of the configuration.",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = ();
    fn from_str(s: &str) -> Result<Preset, ()> {
        Ok(match s {
            "nchs-2017" => Preset::Nchs2017,
            "eurostat" => Preset::Eurostat,
            "ine-chile" => Preset::IneChile,
            "statcan" => Preset::Statcan,
            "custom" => Preset::Custom,
            _ => return Err(()),
        })
    }
}

/// Thresholds of the `custom` preset (each optional; an absent one does not apply).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CustomThresholds {
    /// Suppress below this unweighted n.
    pub min_n: Option<f64>,
    /// Caution below this unweighted n.
    pub caution_n: Option<f64>,
    /// Suppress below this effective n.
    pub min_effective_n: Option<f64>,
    /// Suppress above this CV.
    pub max_cv: Option<f64>,
    /// Caution above this CV.
    pub caution_cv: Option<f64>,
    /// Caution below these df.
    pub min_df: Option<f64>,
}

/// Checked reliability settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityRules {
    /// The standard applied.
    pub preset: Preset,
    /// Blank suppressed cells.
    pub suppress: bool,
    /// Thresholds of the custom preset (unused otherwise).
    pub custom: CustomThresholds,
    /// Limit on a total's `item_missing_share` (`None`: the preset's, [`total_item_missing_limit`]).
    pub max_item_missing_share: Option<f64>,
}

impl ReliabilityRules {
    /// The `item_missing_share` above which a total is flagged.
    pub fn item_missing_limit(&self) -> f64 {
        self.max_item_missing_share
            .unwrap_or_else(|| total_item_missing_limit(self.preset))
    }
}

impl Default for ReliabilityRules {
    fn default() -> ReliabilityRules {
        ReliabilityRules {
            preset: Preset::Nchs2017,
            suppress: true,
            custom: CustomThresholds::default(),
            max_item_missing_share: None,
        }
    }
}

impl RawReliability {
    /// Check the table; every problem is returned, each naming its key under `reliability.`.
    pub fn check(&self) -> Result<ReliabilityRules, Vec<PublicationConfigError>> {
        let mut errors = Vec::new();
        let err = |key: &str, message: String| PublicationConfigError {
            key: format!("reliability.{key}"),
            message,
        };
        let preset = match self.preset.as_deref() {
            None => Preset::Nchs2017,
            Some(name) => name.parse::<Preset>().unwrap_or_else(|()| {
                errors.push(err(
                    "preset",
                    format!(
                        "\"{name}\" is not one of nchs-2017, eurostat, ine-chile, statcan, custom"
                    ),
                ));
                Preset::Custom
            }),
        };
        let thresholds = [
            ("min_n", self.min_n),
            ("caution_n", self.caution_n),
            ("min_effective_n", self.min_effective_n),
            ("max_cv", self.max_cv),
            ("caution_cv", self.caution_cv),
            ("min_df", self.min_df),
        ];
        let given: Vec<&str> = thresholds
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        if preset != Preset::Custom && self.preset.is_some() && !given.is_empty() {
            errors.push(err(
                given[0],
                format!(
                    "thresholds apply to preset = \"custom\" only; preset \"{}\" has fixed rules (see docs/reliability-flags.md)",
                    preset.as_str()
                ),
            ));
        }
        for (key, value) in thresholds {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                errors.push(err(key, format!("{v} must be a non-negative number")));
            }
        }
        for key in ["max_cv", "caution_cv"] {
            let v = if key == "max_cv" {
                self.max_cv
            } else {
                self.caution_cv
            };
            if let Some(v) = v
                && v > 5.0
            {
                errors.push(err(
                    key,
                    format!(
                        "{v} looks like a percentage; write the CV as a fraction (0.3 for 30 %)"
                    ),
                ));
            }
        }
        if let (Some(c), Some(m)) = (self.caution_cv, self.max_cv)
            && c > m
        {
            errors.push(err(
                "caution_cv",
                format!(
                    "caution_cv {c} is above max_cv {m}: cautions must start below suppression"
                ),
            ));
        }
        if let Some(v) = self.max_item_missing_share
            && !(0.0..=1.0).contains(&v)
        {
            errors.push(err(
                "max_item_missing_share",
                format!("{v} is not a share in [0, 1] (0.05 = 5 % of the universe)"),
            ));
        }
        if preset == Preset::Custom && self.preset.is_some() && given.is_empty() {
            errors.push(err(
                "preset",
                "custom needs at least one of min_n, caution_n, min_effective_n, max_cv, caution_cv, min_df".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ReliabilityRules {
            preset,
            suppress: self.suppress.unwrap_or(true),
            custom: CustomThresholds {
                min_n: self.min_n,
                caution_n: self.caution_n,
                min_effective_n: self.min_effective_n,
                max_cv: self.max_cv,
                caution_cv: self.caution_cv,
                min_df: self.min_df,
            },
            max_item_missing_share: self.max_item_missing_share,
        })
    }
}

/// The outcome of the rules for one cell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// The cell's flag.
    pub flag: Flag,
    /// The rules that fired, `"; "`-separated, without numbers so that equal reasons group.
    pub reason: String,
}

struct Collector {
    preset: &'static str,
    suppress: Vec<&'static str>,
    caution: Vec<&'static str>,
}

impl Collector {
    fn new(preset: Preset) -> Collector {
        Collector {
            preset: preset.as_str(),
            suppress: Vec::new(),
            caution: Vec::new(),
        }
    }
    fn finish(self) -> Assessment {
        let (flag, reasons) = if !self.suppress.is_empty() {
            (Flag::Suppressed, self.suppress)
        } else if !self.caution.is_empty() {
            (Flag::Caution, self.caution)
        } else {
            return Assessment::default();
        };
        Assessment {
            flag,
            reason: format!("{}: {}", self.preset, reasons.join("; ")),
        }
    }
}

/// What the rules look at, on the proportion scale (estimate / multiplier) for proportions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellStats {
    /// True for proportions.
    pub proportion: bool,
    /// Estimate (a proportion in [0, 1] when `proportion`).
    pub estimate: Option<f64>,
    /// Standard error on the same scale.
    pub se: Option<f64>,
    /// Interval bounds on the same scale.
    pub ci: Option<(f64, f64)>,
    /// Unweighted n.
    pub n: f64,
    /// Effective n (n / deff), if defined.
    pub n_effective: Option<f64>,
    /// Degrees of freedom.
    pub df: Option<f64>,
    /// CV (se / |estimate|).
    pub cv: Option<f64>,
}

/// Apply `rules` to one cell.
pub fn assess(rules: &ReliabilityRules, s: &CellStats) -> Assessment {
    let mut c = Collector::new(rules.preset);
    match rules.preset {
        Preset::Nchs2017 if s.proportion => nchs_proportion(s, &mut c),
        Preset::Nchs2017 => {
            if s.n < 30.0 {
                c.suppress.push("sample size < 30");
            }
            match s.cv {
                Some(cv) if cv >= 0.30 => c.caution.push("relative standard error >= 30%"),
                None => c.caution.push("relative standard error undefined"),
                _ => {}
            }
            if s.df.is_some_and(|df| df < 8.0) {
                c.caution.push("df < 8 (statistical review)");
            }
        }
        Preset::Eurostat => {
            if s.n < 20.0 {
                c.suppress.push("fewer than 20 sample observations");
            } else if s.n < 50.0 {
                c.caution
                    .push("20 to 49 sample observations (low reliability, u)");
            }
        }
        Preset::IneChile => {
            if s.n < 60.0 {
                c.suppress.push("sample size < 60 (not reliable)");
            }
            if s.df.is_none_or(|df| df < 9.0) {
                c.suppress.push("df < 9 (not reliable)");
            }
            let p = s
                .estimate
                .filter(|p| s.proportion && (0.0..=1.0).contains(p));
            match p {
                Some(p) => {
                    let q = p.min(1.0 - p);
                    let limit = q.powf(2.0 / 3.0) / 9.0;
                    if s.se.is_none_or(|se| se > limit) {
                        c.caution.push("SE > p^(2/3)/9 (weakly reliable)");
                    }
                }
                None => match s.cv {
                    Some(cv) if cv > 0.30 => c.suppress.push("CV > 30% (not reliable)"),
                    Some(cv) if cv > 0.15 => {
                        c.caution.push("CV between 15% and 30% (weakly reliable)")
                    }
                    Some(_) => {}
                    None => c.caution.push("CV undefined"),
                },
            }
        }
        Preset::Statcan => match s.cv {
            Some(cv) if cv > 0.333 => c
                .suppress
                .push("CV > 33.3% (too unreliable to be published)"),
            Some(cv) if cv >= 0.166 => c.caution.push("CV 16.6% to 33.3% (use with caution)"),
            Some(_) => {}
            None => c.caution.push("CV undefined"),
        },
        Preset::Custom => {
            let t = &rules.custom;
            if t.min_n.is_some_and(|m| s.n < m) {
                c.suppress.push("sample size below min_n");
            }
            if let Some(m) = t.min_effective_n
                && s.n_effective.is_some_and(|ne| ne < m)
            {
                c.suppress
                    .push("effective sample size below min_effective_n");
            }
            if let Some(m) = t.max_cv {
                match s.cv {
                    Some(cv) if cv > m => c.suppress.push("CV above max_cv"),
                    None => c.caution.push("CV undefined"),
                    _ => {}
                }
            }
            if t.caution_n.is_some_and(|m| s.n < m) {
                c.caution.push("sample size below caution_n");
            }
            if let Some(m) = t.caution_cv
                && s.cv.is_some_and(|cv| cv > m)
                && !t.max_cv.is_some_and(|x| s.cv.is_some_and(|cv| cv > x))
            {
                c.caution.push("CV above caution_cv");
            }
            if t.min_df.is_some_and(|m| s.df.is_none_or(|df| df < m)) {
                c.caution.push("df below min_df");
            }
        }
    }
    c.finish()
}

/// NCHS 2017 proportions, following the order of the standard's flow chart and NCHS's
/// `surveytable` implementation (`.lpe_percents`): effective n, absolute then relative width,
/// then the review flags (complement, df, 0 %/100 %).
fn nchs_proportion(s: &CellStats, c: &mut Collector) {
    let Some(p) = s.estimate else {
        c.suppress.push("estimate undefined");
        return;
    };
    let extreme = p <= 0.0 || p >= 1.0;
    // Effective n = p(1-p)/SE² (= n / deff), never above n; n itself at 0 % or 100 %.
    let n_eff = if extreme {
        s.n
    } else {
        s.n_effective
            .or_else(|| {
                s.se.filter(|se| *se > 0.0)
                    .map(|se| p * (1.0 - p) / (se * se))
            })
            .unwrap_or(s.n)
            .min(s.n)
    };
    let width = if extreme {
        0.0
    } else {
        nchs_korn_graubard(p, s.se, s.n, s.df).map_or(f64::INFINITY, |(lo, hi)| hi - lo)
    };
    let present = if n_eff < 30.0 {
        c.suppress.push("effective sample size < 30");
        false
    } else if width <= 0.05 {
        true
    } else if width >= 0.30 {
        c.suppress.push("confidence interval width >= 0.30");
        false
    } else if width / p > 1.30 {
        c.suppress.push("relative confidence interval width > 130%");
        false
    } else {
        if width / (1.0 - p) > 1.30 {
            c.caution
                .push("complement's relative confidence interval width > 130% (footnote)");
        }
        true
    };
    if present {
        if s.df.is_some_and(|df| df < 8.0) {
            c.caution.push("df < 8 (statistical review)");
        }
        if extreme {
            c.caution
                .push("estimate of 0% or 100% (statistical review)");
        }
    }
}

/// The 95 % Korn–Graubard interval the NCHS standard judges widths on (Parker et al. 2017;
/// NCHS `surveytable::svyciprop_adjusted`): the Clopper–Pearson interval on the effective sample
/// size `p(1−p)/SE²` adjusted for the design df and capped at the sample size,
/// `n_eff = min(n, p(1−p)/SE² · (t_{n−1}/t_df)²)` (`n` at p = 0; a df-adjustment of 0 when
/// df ≤ 0, which gives the widest interval). R's `svyciprop(method = "beta")` (the `beta` rows)
/// does not cap; the preset computes its own interval, whichever intervals are requested.
pub fn nchs_korn_graubard(p: f64, se: Option<f64>, n: f64, df: Option<f64>) -> Option<(f64, f64)> {
    use crate::estimate::probability::{qbeta, qt};
    const ALPHA: f64 = 0.05;
    if !(0.0..=1.0).contains(&p) || n.is_nan() || n < 1.0 {
        return None;
    }
    let adjustment = match df {
        Some(df) if df > 0.0 => (qt(ALPHA / 2.0, n - 1.0) / qt(ALPHA / 2.0, df)).powi(2),
        _ => 0.0,
    };
    let n_eff = if p > 0.0 {
        let se = se?;
        // SE = 0 with p inside (0, 1): an infinite effective size, capped at n.
        let base = if se > 0.0 {
            p * (1.0 - p) / (se * se)
        } else {
            f64::INFINITY
        };
        (base * adjustment).min(n)
    } else {
        n
    };
    let lo = if p == 0.0 {
        0.0
    } else {
        qbeta(ALPHA / 2.0, n_eff * p, n_eff * (1.0 - p) + 1.0)
    };
    let hi = if p == 1.0 {
        1.0
    } else {
        qbeta(1.0 - ALPHA / 2.0, n_eff * p + 1.0, n_eff * (1.0 - p))
    };
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// The kind and multiplier of each indicator, to put proportions back on [0, 1].
fn indicator_info(q: &Questionnaire) -> BTreeMap<&str, (bool, f64)> {
    q.indicators
        .iter()
        .map(|i| {
            let m = if i.multiplier.is_finite() && i.multiplier != 0.0 {
                i.multiplier
            } else {
                1.0
            };
            (i.id.as_str(), (i.estimates_shares(), m))
        })
        .collect()
}

/// Fill `flag` and `flag_reason` of every row and, when `rules.suppress`, blank the estimate,
/// SE, CV and interval of suppressed cells.
///
/// The rows of one cell (indicator × weighting × variance × domain × category) differ only by interval
/// method; they get one decision, taken on the Korn–Graubard (`beta`) row when there is one
/// (the NCHS standard is defined on that interval), else on the cell's first row. Indicators
/// not in `questionnaire` are treated as non-proportions with multiplier 1.
pub fn apply_reliability(
    rows: &mut [EstimateRow],
    rules: &ReliabilityRules,
    questionnaire: &Questionnaire,
) {
    let info = indicator_info(questionnaire);
    let totals = total_indicators(questionnaire);
    // The category keeps a distribution's parts and a quantile's probabilities apart: each is
    // a cell of its own.
    type Cell<'r> = ([&'r str; 5], Option<&'r str>);
    let mut cells: BTreeMap<Cell<'_>, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        cells
            .entry((
                [
                    &r.indicator,
                    &r.weighting,
                    r.variance.as_str(),
                    &r.domain_var,
                    &r.domain_value,
                ],
                r.category.as_deref(),
            ))
            .or_default()
            .push(i);
    }
    // Each decision may invert the beta distribution (the Korn–Graubard interval): in
    // parallel, collected in cell order.
    let cells: Vec<Vec<usize>> = cells.into_values().collect();
    let read: &[EstimateRow] = rows;
    let decisions: Vec<(Vec<usize>, Assessment)> = cells
        .into_par_iter()
        .map(|idx| {
            let reference = idx
                .iter()
                .copied()
                .find(|&i| read[i].ci_method == CiMethod::Beta)
                .unwrap_or(idx[0]);
            let r = &read[reference];
            let (proportion, m) = info
                .get(r.indicator.as_str())
                .copied()
                .unwrap_or((false, 1.0));
            let scale = |x: Option<f64>| if proportion { x.map(|v| v / m) } else { x };
            let stats = CellStats {
                proportion,
                estimate: scale(r.estimate),
                se: scale(r.se),
                ci: scale(r.ci_low).zip(scale(r.ci_high)),
                n: r.n_unweighted as f64,
                n_effective: r.n_effective,
                df: r.df,
                cv: r.cv,
            };
            (idx, assess(rules, &stats))
        })
        .collect();
    for (idx, a) in decisions {
        for i in idx {
            let r = &mut rows[i];
            r.flag = a.flag;
            r.flag_reason = a.reason.clone();
            let item_missing = item_missing_reason(r, rules.item_missing_limit(), &totals);
            for why in undefined_reason(r, &info).into_iter().chain(item_missing) {
                if r.flag == Flag::Reliable {
                    r.flag = Flag::Caution;
                    r.flag_reason = why;
                } else {
                    r.flag_reason = format!("{}; {why}", r.flag_reason);
                }
            }
            if rules.suppress && a.flag == Flag::Suppressed {
                r.estimate = None;
                r.se = None;
                r.cv = None;
                r.ci_low = None;
                r.ci_high = None;
            }
        }
    }
}

/// Largest `item_missing_share` a total may have before it is flagged `caution`, per preset.
///
/// None of the presets' standards sets a limit for item nonresponse in a total; they flag
/// precision. A total over items with blanks sums only the given answers, so it is biased
/// downward by about the weighted share of the universe with a missing item (exactly that share
/// when the missing answers average like the given ones), whatever the sample size. 5 % keeps
/// that bias below the relative standard errors the presets tolerate without a flag (NCHS and
/// INE Chile flag from 15 % to 30 %, Statistics Canada from 16.6 %), so that a bias of the same
/// size as the reported uncertainty is never left unflagged. (For comparison, NCES Statistical
/// Standard 4-4 (2012) asks for a nonresponse bias analysis below an 85 % item response rate,
/// OMB's Standards for Statistical Surveys (2006), guideline 3.2.9, below 70 %; both are about
/// estimates that item nonresponse biases only when it is not ignorable, where a total is biased
/// by any.) Means, proportions and ratios are not flagged: they leave the missing out of
/// numerator and denominator alike.
pub fn total_item_missing_limit(preset: Preset) -> f64 {
    match preset {
        Preset::Nchs2017 | Preset::Eurostat | Preset::IneChile | Preset::Statcan => 0.05,
        Preset::Custom => 0.05,
    }
}

/// Ids of the questionnaire's `total` indicators.
fn total_indicators(q: &Questionnaire) -> std::collections::BTreeSet<&str> {
    q.indicators
        .iter()
        .filter(|i| i.kind == crate::questionnaire::IndicatorKind::Total)
        .map(|i| i.id.as_str())
        .collect()
}

/// Caution for a total whose universe has more item nonresponse than `limit` (the preset's
/// [`total_item_missing_limit`] or `max_item_missing_share`).
fn item_missing_reason(
    r: &EstimateRow,
    limit: f64,
    totals: &std::collections::BTreeSet<&str>,
) -> Option<String> {
    let share = r.item_missing_share?;
    (totals.contains(r.indicator.as_str()) && share > limit).then(|| {
        format!(
            "total with item nonresponse above {}% of the universe (biased downward)",
            limit * 100.0
        )
    })
}

/// Why a row's estimate, standard error or interval is blank or degenerate, whatever the
/// preset: a blank statistic in a published table always comes with a reason.
///
/// - estimate blank: no respondent with a positive weight in the domain;
/// - standard error blank: the variance could not be computed (a replicate with an empty
///   domain, a calibration that failed in a replicate);
/// - interval blank: df = 0 (the domain lies in one PSU, or every stratum has one PSU), or the
///   interval's inputs are undefined;
/// - a logit, xlogit or asin interval at p̂ = 0 or 1 is the point [p̂, p̂]: those scales are
///   undefined there (Korn–Graubard `beta` gives the Clopper–Pearson interval instead);
/// - a distribution's category without respondents in the domain: its share is 0.
fn undefined_reason(r: &EstimateRow, info: &BTreeMap<&str, (bool, f64)>) -> Option<String> {
    let Some(estimate) = r.estimate else {
        return Some("estimate undefined".into());
    };
    if r.se.is_none() {
        return Some("standard error undefined".into());
    }
    if r.ci_low.is_none() || r.ci_high.is_none() {
        return Some(match r.df {
            Some(df) if df > 0.0 => "confidence interval undefined".into(),
            Some(_) => "confidence interval undefined: df = 0".into(),
            None => "confidence interval undefined: df undefined".into(),
        });
    }
    let (proportion, multiplier) = info
        .get(r.indicator.as_str())
        .copied()
        .unwrap_or((false, 1.0));
    let p = estimate / multiplier;
    if proportion && r.category.is_some() && p == 0.0 {
        // A distribution's category nobody in the domain falls in: reported, never dropped.
        return Some("no respondent in this category (reported as 0)".into());
    }
    if proportion
        && (p <= 0.0 || p >= 1.0)
        && matches!(
            r.ci_method,
            CiMethod::Logit | CiMethod::Xlogit | CiMethod::Asin
        )
    {
        return Some(format!(
            "{} interval undefined at 0% or 100% (given as the point estimate)",
            r.ci_method.as_str()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(p: f64, se: f64, lo: f64, hi: f64, n: f64, df: f64) -> CellStats {
        CellStats {
            proportion: true,
            estimate: Some(p),
            se: Some(se),
            ci: Some((lo, hi)),
            n,
            n_effective: None,
            df: Some(df),
            cv: Some(se / p),
        }
    }

    fn rules(preset: Preset) -> ReliabilityRules {
        ReliabilityRules {
            preset,
            ..ReliabilityRules::default()
        }
    }

    #[test]
    fn each_category_of_a_distribution_gets_its_own_decision() {
        let q = crate::output::present::tests::toml_questionnaire();
        let mut reliable = crate::output::present::tests::row(("_T", "_T"), Some("1"), "logit");
        reliable.n_unweighted = 5000;
        reliable.ci_low = Some(0.24);
        reliable.ci_high = Some(0.26);
        let mut small = crate::output::present::tests::row(("_T", "_T"), Some("2"), "logit");
        small.n_unweighted = 12;
        let mut rows = vec![reliable, small];
        apply_reliability(&mut rows, &ReliabilityRules::default(), &q);
        assert_eq!(rows[0].flag, Flag::Reliable, "{}", rows[0].flag_reason);
        assert_eq!(rows[1].flag, Flag::Suppressed, "{}", rows[1].flag_reason);
        assert_eq!(rows[0].estimate, Some(0.25));
        assert_eq!(rows[1].estimate, None);
    }

    #[test]
    fn nchs_effective_n_below_30_is_suppressed() {
        // p(1-p)/se² = 0.25/0.01 = 25 < 30.
        let a = assess(
            &rules(Preset::Nchs2017),
            &prop(0.5, 0.1, 0.3, 0.7, 500.0, 50.0),
        );
        assert_eq!(a.flag, Flag::Suppressed);
        assert!(
            a.reason.contains("effective sample size < 30"),
            "{}",
            a.reason
        );
    }

    #[test]
    fn nchs_effective_n_is_capped_at_n() {
        let mut s = prop(0.5, 0.01, 0.48, 0.52, 25.0, 50.0);
        s.n_effective = Some(2500.0);
        assert_eq!(assess(&rules(Preset::Nchs2017), &s).flag, Flag::Suppressed);
    }

    #[test]
    fn nchs_width_rules() {
        let r = rules(Preset::Nchs2017);
        // Korn–Graubard width 0.041: presented.
        assert_eq!(
            assess(&r, &prop(0.5, 0.01, 0.48, 0.52, 3000.0, 50.0)).flag,
            Flag::Reliable
        );
        // SE 0.08 (effective n 39): width 0.32 >= 0.30, suppressed.
        let a = assess(&r, &prop(0.5, 0.08, 0.35, 0.65, 3000.0, 50.0));
        assert_eq!(
            (a.flag, a.reason.as_str()),
            (
                Flag::Suppressed,
                "nchs-2017: confidence interval width >= 0.30"
            )
        );
        // p = 0.05, SE 0.03 (effective n 53): width 0.14, 280 % of p: suppressed.
        let a = assess(&r, &prop(0.05, 0.03, 0.01, 0.11, 3000.0, 50.0));
        assert!(
            a.reason
                .contains("relative confidence interval width > 130%"),
            "{}",
            a.reason
        );
        // p = 0.95, SE 0.02: width 0.09, 180 % of the complement: footnote only.
        let a = assess(&r, &prop(0.95, 0.02, 0.89, 0.99, 3000.0, 50.0));
        assert_eq!(a.flag, Flag::Caution);
        assert!(a.reason.contains("complement"), "{}", a.reason);
    }

    #[test]
    fn nchs_widths_are_judged_on_the_korn_graubard_interval_whatever_is_requested() {
        let r = rules(Preset::Nchs2017);
        // A narrow logit interval does not save a cell whose df-adjusted Korn–Graubard interval is
        // wide: 3 df shrink the effective n from 84 to 13 (≥ 30 before the adjustment).
        let s = prop(0.7, 0.05, 0.66, 0.74, 60.0, 3.0);
        let (lo, hi) = nchs_korn_graubard(0.7, Some(0.05), 60.0, Some(3.0)).expect("interval");
        assert!(hi - lo >= 0.30, "{lo} {hi}");
        let a = assess(&r, &s);
        assert_eq!(
            (a.flag, a.reason.as_str()),
            (
                Flag::Suppressed,
                "nchs-2017: confidence interval width >= 0.30"
            )
        );
        // No df: the adjustment is 0 and no interval can be presented.
        let mut s = prop(0.5, 0.01, 0.48, 0.52, 3000.0, 50.0);
        s.df = None;
        assert_eq!(assess(&r, &s).flag, Flag::Suppressed);
    }

    #[test]
    fn nchs_korn_graubard_interval_matches_r() {
        let (header, rows) = crate::test_support::read_csv(include_str!(
            "../../fixtures/reliability/nchs_korn_graubard.csv"
        ));
        assert_eq!(header, ["p", "se", "n", "df", "ci_low", "ci_high"]);
        assert_eq!(rows.len(), 10);
        for row in &rows {
            let v: Vec<f64> = row
                .iter()
                .map(|c| c.as_deref().and_then(|x| x.parse().ok()).expect("number"))
                .collect();
            let (lo, hi) = nchs_korn_graubard(v[0], Some(v[1]), v[2], Some(v[3])).expect("ci");
            for (got, want) in [(lo, v[4]), (hi, v[5])] {
                let tol = 1e-10 * want.abs().max(1e-300);
                assert!((got - want).abs() <= tol, "{v:?}: {got} vs {want}");
            }
        }
        // The cap binds at SE 0.001, n 200: the interval is that of n = 200 exactly.
        let capped = nchs_korn_graubard(0.5, Some(0.001), 200.0, Some(40.0)).expect("ci");
        let at_n = nchs_korn_graubard(0.5, Some((0.25f64 / 200.0).sqrt() / 4.0), 200.0, Some(40.0));
        assert_eq!(Some(capped), at_n);
    }

    #[test]
    fn nchs_review_flags() {
        let r = rules(Preset::Nchs2017);
        let a = assess(&r, &prop(0.5, 0.01, 0.48, 0.52, 3000.0, 7.0));
        assert_eq!(
            (a.flag, a.reason.as_str()),
            (Flag::Caution, "nchs-2017: df < 8 (statistical review)")
        );
        let a = assess(&r, &prop(0.0, 0.0, 0.0, 0.01, 100.0, 50.0));
        assert_eq!(a.flag, Flag::Caution);
        assert!(a.reason.contains("0% or 100%"));
        // 0 % on fewer than 30 respondents: suppressed.
        assert_eq!(
            assess(&r, &prop(0.0, 0.0, 0.0, 0.1, 20.0, 50.0)).flag,
            Flag::Suppressed
        );
    }

    #[test]
    fn nchs_non_proportions_use_the_30_30_rule() {
        let r = rules(Preset::Nchs2017);
        let mut s = prop(2.0, 0.2, 1.6, 2.4, 29.0, 50.0);
        s.proportion = false;
        assert_eq!(assess(&r, &s).flag, Flag::Suppressed);
        s.n = 30.0;
        assert_eq!(assess(&r, &s).flag, Flag::Reliable);
        s.cv = Some(0.30);
        assert_eq!(assess(&r, &s).flag, Flag::Caution);
    }

    #[test]
    fn eurostat_sample_size_limits() {
        let r = rules(Preset::Eurostat);
        let s = |n| prop(0.5, 0.01, 0.48, 0.52, n, 50.0);
        assert_eq!(assess(&r, &s(19.0)).flag, Flag::Suppressed);
        assert_eq!(assess(&r, &s(20.0)).flag, Flag::Caution);
        assert_eq!(assess(&r, &s(49.0)).flag, Flag::Caution);
        assert_eq!(assess(&r, &s(50.0)).flag, Flag::Reliable);
    }

    #[test]
    fn ine_chile_rules() {
        let r = rules(Preset::IneChile);
        // p = 0.2: limit 0.2^(2/3)/9 = 0.03799.
        assert_eq!(
            assess(&r, &prop(0.2, 0.037, 0.1, 0.3, 60.0, 9.0)).flag,
            Flag::Reliable
        );
        assert_eq!(
            assess(&r, &prop(0.2, 0.039, 0.1, 0.3, 60.0, 9.0)).flag,
            Flag::Caution
        );
        // p = 0.8 uses 1 - p.
        assert_eq!(
            assess(&r, &prop(0.8, 0.037, 0.7, 0.9, 60.0, 9.0)).flag,
            Flag::Reliable
        );
        assert_eq!(
            assess(&r, &prop(0.2, 0.01, 0.1, 0.3, 59.0, 9.0)).flag,
            Flag::Suppressed
        );
        assert_eq!(
            assess(&r, &prop(0.2, 0.01, 0.1, 0.3, 60.0, 8.0)).flag,
            Flag::Suppressed
        );
        let mut mean = prop(10.0, 1.0, 8.0, 12.0, 100.0, 20.0);
        mean.proportion = false;
        mean.cv = Some(0.15);
        assert_eq!(assess(&r, &mean).flag, Flag::Reliable);
        mean.cv = Some(0.2);
        assert_eq!(assess(&r, &mean).flag, Flag::Caution);
        mean.cv = Some(0.31);
        assert_eq!(assess(&r, &mean).flag, Flag::Suppressed);
    }

    #[test]
    fn statcan_cv_bands() {
        let r = rules(Preset::Statcan);
        let with_cv = |cv| CellStats {
            cv: Some(cv),
            ..prop(0.5, 0.01, 0.48, 0.52, 100.0, 50.0)
        };
        assert_eq!(assess(&r, &with_cv(0.165)).flag, Flag::Reliable);
        assert_eq!(assess(&r, &with_cv(0.166)).flag, Flag::Caution);
        assert_eq!(assess(&r, &with_cv(0.333)).flag, Flag::Caution);
        assert_eq!(assess(&r, &with_cv(0.334)).flag, Flag::Suppressed);
    }

    #[test]
    fn an_empty_category_is_flagged_whatever_the_preset() {
        let row = |category: Option<&str>, estimate: f64| EstimateRow {
            indicator: "dist".into(),
            weighting: "w".into(),
            variance: crate::estimate::VarianceMethod::Taylor,
            domain_var: "sex".into(),
            domain_value: "1".into(),
            category: category.map(String::from),
            estimate: Some(estimate),
            se: Some(0.0),
            ci_low: Some(estimate),
            ci_high: Some(estimate),
            ci_method: CiMethod::Beta,
            df: Some(10.0),
            cv: None,
            deff: None,
            n_unweighted: 40,
            n_weighted: 400.0,
            n_effective: None,
            item_missing_share: None,
            flag: Flag::Reliable,
            flag_reason: String::new(),
            level: crate::questionnaire::Level::Person,
        };
        let info: BTreeMap<&str, (bool, f64)> = [("dist", (true, 1.0))].into_iter().collect();
        assert_eq!(
            undefined_reason(&row(Some("3"), 0.0), &info).as_deref(),
            Some("no respondent in this category (reported as 0)")
        );
        assert_eq!(undefined_reason(&row(Some("3"), 0.2), &info), None);
        assert_eq!(undefined_reason(&row(None, 0.0), &info), None);
    }

    #[test]
    fn custom_thresholds() {
        let raw = RawReliability {
            preset: Some("custom".into()),
            min_n: Some(50.0),
            max_cv: Some(0.3),
            caution_cv: Some(0.15),
            min_df: Some(8.0),
            ..RawReliability::default()
        };
        let r = raw.check().expect("valid");
        let s = |n, cv, df| CellStats {
            cv: Some(cv),
            n,
            df: Some(df),
            ..prop(0.5, 0.01, 0.48, 0.52, 100.0, 50.0)
        };
        assert_eq!(assess(&r, &s(49.0, 0.1, 20.0)).flag, Flag::Suppressed);
        assert_eq!(assess(&r, &s(50.0, 0.31, 20.0)).flag, Flag::Suppressed);
        assert_eq!(
            assess(&r, &s(50.0, 0.2, 20.0)).reason,
            "custom: CV above caution_cv"
        );
        assert_eq!(
            assess(&r, &s(50.0, 0.1, 7.0)).reason,
            "custom: df below min_df"
        );
        assert_eq!(assess(&r, &s(50.0, 0.1, 20.0)).flag, Flag::Reliable);
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |raw: RawReliability, key: &str| {
            let errors = raw.check().expect_err("invalid");
            assert!(
                errors.iter().any(|e| e.key == format!("reliability.{key}")),
                "{key}: {errors:?}"
            );
        };
        bad(
            RawReliability {
                preset: Some("nchs".into()),
                ..Default::default()
            },
            "preset",
        );
        bad(
            RawReliability {
                preset: Some("statcan".into()),
                max_cv: Some(0.2),
                ..Default::default()
            },
            "max_cv",
        );
        bad(
            RawReliability {
                preset: Some("custom".into()),
                max_cv: Some(30.0),
                ..Default::default()
            },
            "max_cv",
        );
        bad(
            RawReliability {
                preset: Some("custom".into()),
                ..Default::default()
            },
            "preset",
        );
        let toml_err = toml::from_str::<RawReliability>("preset = \"custom\"\nmax_cvv = 0.3")
            .expect_err("unknown key");
        assert!(toml_err.to_string().contains("max_cvv"), "{toml_err}");
    }
}
