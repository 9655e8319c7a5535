//! `sdmx.csv`: the SDG series in SDMX-CSV (version 1) following the SDG data structure
//! (`IAEG-SDGs:SDG`), as sent to custodian agencies such as UNODC.
//!
//! One observation per series × domain: the `[sdmx] weighting` scheme (default the first in the
//! estimates), the first variance method and the first interval method of each cell. Proportions
//! are sent in percent (`UNIT_MEASURE = PT`, value × 100). Domain values are mapped to SDG codes
//! through `[sdmx.dimensions]`; domain variables not listed there have no SDG dimension and are
//! not sent. A crossed domain (`sex:age_group`) is sent when every one of its variables is
//! mapped, each to its own dimension. Distributions and quantiles are not sent: their rows are
//! per category or probability, which no dimension of the SDG data structure holds.
//! `OBS_STATUS` is `A` (normal), `U` (low reliability: flag `caution`), `Q` (missing value;
//! suppressed) or `O` (missing value: the estimate is undefined). Layout and mapping are
//! documented in `docs/publication.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::PublicationConfigError;
use super::present::{CROSS, ci_method_name, number};
use crate::estimate::{EstimateRow, Flag, TOTAL};
use crate::questionnaire::{IndicatorKind, Questionnaire, SdmxMapping};

/// Dimensions of the SDG DSD, in the order of the SDG data flows, between `REPORTING_TYPE` and
/// `TIME_PERIOD` (SERIES and REF_AREA first). The questionnaire owns the list, because its
/// variables declare their dimension.
pub const BREAKDOWN_DIMENSIONS: [&str; 11] = crate::questionnaire::SDG_BREAKDOWN_DIMENSIONS;

/// Default data flow (the SDG global harmonized data flow).
pub const DEFAULT_DATAFLOW: &str = "IAEG-SDGs:DF_SDG_GLH(1.24)";

/// Header of `sdmx.csv`.
pub fn header() -> Vec<&'static str> {
    let mut h = vec!["DATAFLOW", "FREQ", "REPORTING_TYPE", "SERIES", "REF_AREA"];
    h.extend(BREAKDOWN_DIMENSIONS);
    h.extend([
        "TIME_PERIOD",
        "OBS_VALUE",
        "OBS_STATUS",
        "UNIT_MULT",
        "UNIT_MEASURE",
        "NATURE",
        "LOWER_BOUND",
        "UPPER_BOUND",
        "SOURCE_DETAIL",
        "COMMENT_OBS",
    ]);
    h
}

/// One `[sdmx.dimensions.<domain>]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDimension {
    /// SDG dimension, e.g. `SEX`.
    pub dimension: String,
    /// Domain value as written in the data → SDG code.
    pub codes: BTreeMap<String, String>,
}

/// The `[sdmx]` table as written in `pipeline.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSdmx {
    /// Reference area, UN M49 code (e.g. `"688"`).
    pub ref_area: String,
    /// Time period (e.g. `"2025"`).
    pub time_period: String,
    /// Indicator id → SDG series code; indicators with `sdg_series` in the questionnaire are
    /// sent even when not listed here.
    #[serde(default)]
    pub series: BTreeMap<String, String>,
    /// Domain variable → SDG dimension and code mapping.
    #[serde(default)]
    pub dimensions: BTreeMap<String, RawDimension>,
    /// Data flow written in the `DATAFLOW` column (default [`DEFAULT_DATAFLOW`]).
    #[serde(default)]
    pub dataflow: Option<String>,
    /// `REPORTING_TYPE`: `N` national (default) or `G` global.
    #[serde(default)]
    pub reporting_type: Option<String>,
    /// `NATURE`: default `C` (country data).
    #[serde(default)]
    pub nature: Option<String>,
    /// Weighting scheme whose estimates are sent (default: the first in the estimates).
    #[serde(default)]
    pub weighting: Option<String>,
    /// Indicator id → `UNIT_MEASURE` for non-proportions (default `NUMBER`).
    #[serde(default)]
    pub unit_measure: BTreeMap<String, String>,
    /// `SOURCE_DETAIL` text (e.g. the survey's name).
    #[serde(default)]
    pub source_detail: Option<String>,
}

/// Checked `[sdmx]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SdmxConfig {
    /// `DATAFLOW` column.
    pub dataflow: String,
    /// `REPORTING_TYPE`.
    pub reporting_type: String,
    /// `REF_AREA`.
    pub ref_area: String,
    /// `TIME_PERIOD`.
    pub time_period: String,
    /// `NATURE`.
    pub nature: String,
    /// Indicator → series, from the config (the questionnaire's `sdg_series` fill the rest).
    pub series: BTreeMap<String, String>,
    /// Domain variable → its dimension and codes, from `[sdmx.dimensions]`; the questionnaire's
    /// `sdmx` mappings fill the rest ([`SdmxConfig::dimensions_for`]).
    pub dimensions: BTreeMap<String, SdmxMapping>,
    /// Scheme sent.
    pub weighting: Option<String>,
    /// Non-proportion units.
    pub unit_measure: BTreeMap<String, String>,
    /// `SOURCE_DETAIL`.
    pub source_detail: String,
}

/// SDMX identifiers: letters, digits, `_`, `@`, `$`, `-`; not empty.
fn is_sdmx_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '$' | '-'))
}

impl RawSdmx {
    /// Check the table; every problem is returned, each naming its key under `sdmx.`.
    pub fn check(&self) -> Result<SdmxConfig, Vec<PublicationConfigError>> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| {
            errors.push(PublicationConfigError {
                key: format!("sdmx.{key}"),
                message,
            })
        };
        if !(1..=3).contains(&self.ref_area.len())
            || !self.ref_area.chars().all(|c| c.is_ascii_digit())
        {
            err(
                "ref_area".into(),
                format!(
                    "\"{}\" is not a UN M49 code (1 to 3 digits, e.g. \"688\")",
                    self.ref_area
                ),
            );
        }
        let tp = &self.time_period;
        let year_ok = |y: &str| y.len() == 4 && y.chars().all(|c| c.is_ascii_digit());
        let period_ok = year_ok(tp)
            || tp.split_once('-').is_some_and(|(a, b)| {
                year_ok(a) && (year_ok(b) || b.starts_with('Q') || b.len() == 2)
            });
        if !period_ok {
            err(
                "time_period".into(),
                format!("\"{tp}\" is not an SDMX time period such as \"2025\""),
            );
        }
        for (ind, code) in &self.series {
            if !is_sdmx_id(code) {
                err(
                    format!("series.{ind}"),
                    format!("\"{code}\" is not an SDMX code"),
                );
            }
        }
        let mut used: BTreeMap<&str, &str> = BTreeMap::new();
        for (var, dim) in &self.dimensions {
            if var == TOTAL {
                err(
                    format!("dimensions.{var}"),
                    "_T is the whole population and needs no mapping".into(),
                );
            }
            if !BREAKDOWN_DIMENSIONS.contains(&dim.dimension.as_str()) {
                err(
                    format!("dimensions.{var}.dimension"),
                    format!(
                        "\"{}\" is not a breakdown dimension of the SDG DSD ({})",
                        dim.dimension,
                        BREAKDOWN_DIMENSIONS.join(", ")
                    ),
                );
            } else if let Some(other) = used.insert(dim.dimension.as_str(), var.as_str()) {
                err(
                    format!("dimensions.{var}.dimension"),
                    format!(
                        "{} is already mapped from domain \"{other}\"; one domain variable per SDG dimension",
                        dim.dimension
                    ),
                );
            }
            if dim.codes.is_empty() {
                err(
                    format!("dimensions.{var}.codes"),
                    "map at least one domain value to an SDG code".into(),
                );
            }
            for (value, code) in &dim.codes {
                if !is_sdmx_id(code) || code == TOTAL {
                    err(
                        format!("dimensions.{var}.codes.{value}"),
                        format!("\"{code}\" is not an SDMX code of a category (and not _T)"),
                    );
                }
            }
        }
        let reporting_type = self.reporting_type.clone().unwrap_or_else(|| "N".into());
        if !matches!(reporting_type.as_str(), "N" | "G") {
            err(
                "reporting_type".into(),
                format!("\"{reporting_type}\" is not N (national) or G (global)"),
            );
        }
        let nature = self.nature.clone().unwrap_or_else(|| "C".into());
        if !matches!(nature.as_str(), "C" | "CA" | "E" | "G" | "M" | "N") {
            err(
                "nature".into(),
                format!("\"{nature}\" is not one of C, CA, E, G, M, N"),
            );
        }
        for (ind, unit) in &self.unit_measure {
            if !is_sdmx_id(unit) {
                err(
                    format!("unit_measure.{ind}"),
                    format!("\"{unit}\" is not an SDMX code"),
                );
            }
        }
        let dataflow = self
            .dataflow
            .clone()
            .unwrap_or_else(|| DEFAULT_DATAFLOW.into());
        if dataflow.contains([',', '"', '\n']) || dataflow.is_empty() {
            err(
                "dataflow".into(),
                format!("\"{dataflow}\" is not a data flow reference such as {DEFAULT_DATAFLOW}"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SdmxConfig {
            dataflow,
            reporting_type,
            ref_area: self.ref_area.clone(),
            time_period: self.time_period.clone(),
            nature,
            series: self.series.clone(),
            dimensions: self
                .dimensions
                .iter()
                .map(|(k, d)| {
                    (
                        k.clone(),
                        SdmxMapping {
                            dimension: d.dimension.clone(),
                            codes: d.codes.clone(),
                        },
                    )
                })
                .collect(),
            weighting: self.weighting.clone(),
            unit_measure: self.unit_measure.clone(),
            source_detail: self.source_detail.clone().unwrap_or_default(),
        })
    }
}

impl SdmxConfig {
    /// Cross-check against the questionnaire, before data is read: series of unknown
    /// indicators, series that contradict the questionnaire's `sdg_series`, dimensions of
    /// unknown variables, and declared codes of a mapped variable that have no SDG code.
    pub fn check_against(&self, q: &Questionnaire) -> Vec<PublicationConfigError> {
        let mut errors = Vec::new();
        let ids: Vec<&str> = q.indicators.iter().map(|i| i.id.as_str()).collect();
        for (ind, code) in &self.series {
            match q.indicator(ind) {
                None => errors.push(PublicationConfigError {
                    key: format!("sdmx.series.{ind}"),
                    message: format!(
                        "\"{ind}\" is not an indicator of {} (has: {})",
                        q.id,
                        ids.join(", ")
                    ),
                }),
                Some(i) if matches!(
                    i.kind,
                    IndicatorKind::Distribution | IndicatorKind::Quantile
                ) =>
                {
                    errors.push(PublicationConfigError {
                        key: format!("sdmx.series.{ind}"),
                        message: format!(
                            "{ind} is a {}: its estimates are one per {}, which no SDG dimension holds, so it is not sent; remove it from [sdmx.series]",
                            if i.kind == IndicatorKind::Quantile {
                                "quantile"
                            } else {
                                "distribution"
                            },
                            if i.kind == IndicatorKind::Quantile {
                                "probability"
                            } else {
                                "category"
                            }
                        ),
                    })
                }
                Some(i) => {
                    if let Some(declared) = &i.sdg_series
                        && declared != code
                    {
                        errors.push(PublicationConfigError {
                            key: format!("sdmx.series.{ind}"),
                            message: format!(
                                "\"{code}\" contradicts the questionnaire's sdg_series = \"{declared}\""
                            ),
                        });
                    }
                }
            }
        }
        for ind in self.unit_measure.keys() {
            if q.indicator(ind).is_none() {
                errors.push(PublicationConfigError {
                    key: format!("sdmx.unit_measure.{ind}"),
                    message: format!("\"{ind}\" is not an indicator of {}", q.id),
                });
            }
        }
        for (var, SdmxMapping { codes, .. }) in &self.dimensions {
            let declared: Option<Vec<&str>> = match (q.variable(var), q.derived_variable(var)) {
                (Some(v), _) => Some(v.codes.iter().map(|c| c.code.as_str()).collect()),
                (None, Some(d)) => Some(d.codes.iter().map(|c| c.code.as_str()).collect()),
                (None, None) => None,
            };
            match declared {
                None => errors.push(PublicationConfigError {
                    key: format!("sdmx.dimensions.{var}"),
                    message: format!(
                        "\"{var}\" is neither a variable nor a derived variable of {}",
                        q.id
                    ),
                }),
                Some(declared) => {
                    let missing: Vec<&str> = declared
                        .iter()
                        .copied()
                        .filter(|c| !codes.contains_key(*c))
                        .collect();
                    if !missing.is_empty() {
                        errors.push(PublicationConfigError {
                            key: format!("sdmx.dimensions.{var}.codes"),
                            message: format!(
                                "domain value(s) {} of {var} have no SDG code; map every declared code",
                                missing.join(", ")
                            ),
                        });
                    }
                }
            }
        }
        errors
    }

    /// Domain variable → its dimension and codes as sent: the questionnaire's `sdmx` mappings,
    /// then `[sdmx.dimensions]`. A config entry replaces the questionnaire's mapping of the same
    /// variable, and also the questionnaire's mapping of another variable to the same dimension
    /// (one variable per dimension, so that no key is sent twice).
    pub fn dimensions_for(&self, q: &Questionnaire) -> BTreeMap<String, SdmxMapping> {
        let configured: BTreeSet<&str> = self
            .dimensions
            .values()
            .map(|m| m.dimension.as_str())
            .collect();
        let mut map: BTreeMap<String, SdmxMapping> = q
            .sdmx_mappings()
            .into_iter()
            .filter(|(_, m)| !configured.contains(m.dimension.as_str()))
            .map(|(var, m)| (var.to_string(), m.clone()))
            .collect();
        map.extend(self.dimensions.clone());
        map
    }

    /// Indicator → series: the questionnaire's `sdg_series`, overridden by `[sdmx.series]`.
    /// A distribution's or quantile's `sdg_series` is left out: it has no observation to send.
    pub fn series_map(&self, q: &Questionnaire) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = q
            .indicators
            .iter()
            .filter(|i| {
                !matches!(
                    i.kind,
                    IndicatorKind::Distribution | IndicatorKind::Quantile
                )
            })
            .filter_map(|i| i.sdg_series.clone().map(|s| (i.id.clone(), s)))
            .collect();
        map.extend(self.series.clone());
        map
    }
}

/// One SDMX-CSV row (all fields as text, in [`header`] order).
pub type SdmxRow = Vec<String>;

/// Build the SDMX rows. Errors name a domain value without an SDG code.
pub fn sdmx_rows(
    rows: &[EstimateRow],
    cfg: &SdmxConfig,
    q: &Questionnaire,
    ci_level: f64,
) -> Result<Vec<SdmxRow>, String> {
    let series = cfg.series_map(q);
    let dimensions = cfg.dimensions_for(q);
    let weighting = cfg
        .weighting
        .clone()
        .or_else(|| rows.first().map(|r| r.weighting.clone()));
    let variance = rows.first().map(|r| r.variance);
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut out: Vec<(Vec<String>, SdmxRow)> = Vec::new();
    'rows: for r in rows {
        if Some(&r.weighting) != weighting.as_ref() || Some(r.variance) != variance {
            continue;
        }
        let Some(code) = series.get(&r.indicator) else {
            continue;
        };
        // A category (a distribution's part, a quantile's probability) is no SDG observation:
        // the series would get several values under one key.
        if r.category.is_some() {
            continue;
        }
        // The first interval method of each cell only.
        if !seen.insert((
            r.indicator.clone(),
            r.domain_var.clone(),
            r.domain_value.clone(),
        )) {
            continue;
        }
        let mut dims: BTreeMap<&str, String> = BTreeMap::new();
        if r.domain_var != TOTAL {
            let vars: Vec<&str> = r.domain_var.split(CROSS).collect();
            // A crossed domain goes out only when each of its variables has a dimension: with
            // one of them unmapped, its cells would be sent as the other's totals.
            let Some(mapped) = vars
                .iter()
                .map(|v| dimensions.get(*v))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let values: Vec<&str> = r.domain_value.split(CROSS).collect();
            if values.len() != vars.len() {
                return Err(format!(
                    "domain {} value \"{}\" does not split into one code per variable at '{CROSS}'",
                    r.domain_var, r.domain_value
                ));
            }
            for ((var, SdmxMapping { dimension, codes }), value) in
                vars.iter().zip(mapped).zip(values)
            {
                let Some(c) = codes.get(value) else {
                    return Err(format!(
                        "domain {var} value \"{value}\" has no SDG code (mapped: {}); map it in [sdmx.dimensions.{var}.codes] or in the questionnaire's sdmx codes of {var}",
                        codes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                };
                // A variable crossed with itself has one dimension for two codes.
                if dims.insert(dimension.as_str(), c.clone()).is_some() {
                    continue 'rows;
                }
            }
        }
        let ind = q.indicator(&r.indicator);
        let proportion = ind.is_some_and(|i| i.estimates_shares());
        let multiplier = ind.map_or(1.0, |i| i.multiplier);
        let scale = |x: Option<f64>| {
            x.map(|v| {
                if proportion {
                    v / multiplier * 100.0
                } else {
                    v
                }
            })
        };
        let unit = if proportion {
            "PT".to_string()
        } else {
            cfg.unit_measure
                .get(&r.indicator)
                .cloned()
                .unwrap_or_else(|| "NUMBER".into())
        };
        let value = scale(r.estimate);
        let status = match (value, r.flag) {
            (None, Flag::Suppressed) => "Q",
            (None, _) => "O",
            (Some(_), Flag::Reliable) => "A",
            // A suppressed cell still has a value when `suppress = false` keeps it.
            (Some(_), Flag::Caution | Flag::Suppressed) => "U",
        };
        let fmt = |x: Option<f64>| x.map(number).unwrap_or_default();
        let mut comment = format!(
            "{}% CI, {}; weighting {}; {} variance",
            number(ci_level * 100.0),
            ci_method_name(r.ci_method.as_str()),
            r.weighting,
            r.variance.as_str()
        );
        if !r.flag_reason.is_empty() {
            comment.push_str(&format!("; {}", r.flag_reason));
        }
        let mut row: SdmxRow = vec![
            cfg.dataflow.clone(),
            "A".into(),
            cfg.reporting_type.clone(),
            code.clone(),
            cfg.ref_area.clone(),
        ];
        for d in BREAKDOWN_DIMENSIONS {
            row.push(dims.get(d).cloned().unwrap_or_else(|| TOTAL.into()));
        }
        row.extend([
            cfg.time_period.clone(),
            fmt(value),
            status.into(),
            "0".into(),
            unit,
            cfg.nature.clone(),
            fmt(scale(r.ci_low)),
            fmt(scale(r.ci_high)),
            cfg.source_detail.clone(),
            comment,
        ]);
        // Sort key: series, then the dimension codes (totals first), as SDMX tools list them.
        let mut key = vec![code.clone()];
        for (i, d) in BREAKDOWN_DIMENSIONS.iter().enumerate() {
            let v = &row[5 + i];
            key.push(if v == TOTAL {
                String::new()
            } else {
                format!("{d}={v}")
            });
        }
        out.push((key, row));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Render rows as SDMX-CSV text (RFC 4180 quoting).
pub fn to_csv(rows: &[SdmxRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header())?;
    for r in rows {
        w.write_record(r)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSdmx {
        toml::from_str(
            r#"
ref_area = "688"
time_period = "2025"
series = { bribery_prevalence = "IU_COR_BRIB" }
dimensions = { sex = { dimension = "SEX", codes = { 1 = "M", 2 = "F" } } }
"#,
        )
        .expect("toml")
    }

    fn estimate(indicator: &str, domain: (&str, &str), category: Option<&str>) -> EstimateRow {
        let mut r = crate::output::present::tests::row(domain, category, "logit");
        r.indicator = indicator.into();
        r
    }

    /// `SEX` and `AGE` of each SDMX row.
    fn sex_and_age(rows: &[SdmxRow]) -> Vec<(String, String)> {
        let h = header();
        let at = |name: &str| h.iter().position(|c| *c == name).expect("column");
        rows.iter()
            .map(|r| (r[at("SEX")].clone(), r[at("AGE")].clone()))
            .collect()
    }

    #[test]
    fn a_cross_is_sent_only_when_every_variable_is_mapped() {
        let q = crate::output::present::tests::toml_questionnaire();
        let mut raw = raw();
        raw.dimensions.insert(
            "age_group".into(),
            RawDimension {
                dimension: "AGE".into(),
                codes: BTreeMap::from([
                    ("1".into(), "Y18T29".into()),
                    ("2".into(), "Y_GE30".into()),
                ]),
            },
        );
        let cfg = raw.check().expect("valid");
        let rows = vec![
            estimate("bribery_prevalence", ("_T", "_T"), None),
            estimate("bribery_prevalence", ("sex:age_group", "2:1"), None),
            estimate("bribery_prevalence", ("sex:region", "2:R01"), None),
            estimate("bribery_prevalence", ("region:sex", "R01:2"), None),
        ];
        let out = sdmx_rows(&rows, &cfg, &q, 0.95).expect("rows");
        assert_eq!(
            sex_and_age(&out),
            [("_T".into(), "_T".into()), ("F".into(), "Y18T29".into())],
            "the crosses with region (unmapped) are not sent"
        );
        let unmapped = vec![estimate(
            "bribery_prevalence",
            ("sex:age_group", "2:3"),
            None,
        )];
        let e = sdmx_rows(&unmapped, &cfg, &q, 0.95).expect_err("no code for age 3");
        assert!(
            e.contains("domain age_group value \"3\" has no SDG code"),
            "{e}"
        );
    }

    /// `toml_questionnaire` with SDG mappings on sex and age_group.
    fn mapped_questionnaire() -> Questionnaire {
        let mut q = crate::output::present::tests::toml_questionnaire();
        for (var, dimension, codes) in [
            ("sex", "SEX", [("1", "M"), ("2", "F")]),
            ("age_group", "AGE", [("1", "Y18T29"), ("2", "Y_GE30")]),
        ] {
            let v = q
                .variables
                .iter_mut()
                .find(|v| v.name == var)
                .expect("variable");
            v.sdmx = Some(crate::questionnaire::SdmxMapping {
                dimension: dimension.into(),
                codes: codes
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            });
        }
        q
    }

    #[test]
    fn questionnaire_mappings_are_sent_without_config_and_the_config_overrides_them() {
        let q = mapped_questionnaire();
        let rows = vec![
            estimate("bribery_prevalence", ("sex", "2"), None),
            estimate("bribery_prevalence", ("age_group", "2"), None),
        ];
        let mut bare = raw();
        bare.dimensions.clear();
        let cfg = bare.check().expect("valid");
        let out = sdmx_rows(&rows, &cfg, &q, 0.95).expect("rows");
        assert_eq!(
            sex_and_age(&out),
            [("_T".into(), "Y_GE30".into()), ("F".into(), "_T".into())],
            "both breakdowns from the questionnaire alone"
        );

        // The config maps sex to other codes, and maps a second variable (safe) to AGE: the
        // questionnaire's age_group mapping gives way, so age_group is not sent.
        let mut over = raw();
        over.dimensions.insert(
            "sex".into(),
            RawDimension {
                dimension: "SEX".into(),
                codes: BTreeMap::from([("1".into(), "M".into()), ("2".into(), "FEM".into())]),
            },
        );
        over.dimensions.insert(
            "safe".into(),
            RawDimension {
                dimension: "AGE".into(),
                codes: BTreeMap::from([
                    ("1".into(), "Y15T24".into()),
                    ("2".into(), "Y_GE25".into()),
                ]),
            },
        );
        let cfg = over.check().expect("valid");
        let dims = cfg.dimensions_for(&q);
        assert!(!dims.contains_key("age_group"), "{dims:?}");
        assert_eq!(dims["safe"].dimension, "AGE");
        let out = sdmx_rows(&rows, &cfg, &q, 0.95).expect("rows");
        assert_eq!(sex_and_age(&out), [("FEM".into(), "_T".into())]);
    }

    #[test]
    fn categories_are_not_sdg_observations() {
        let q = crate::output::present::tests::toml_questionnaire();
        let mut raw = raw();
        raw.series.insert("safety".into(), "VC_SNS_WALN_DRK".into());
        let cfg = raw.check().expect("valid");
        let rows = vec![
            estimate("safety", ("_T", "_T"), Some("1")),
            estimate("safety", ("_T", "_T"), Some("2")),
            estimate("bribery_prevalence", ("sex", "1"), None),
        ];
        let out = sdmx_rows(&rows, &cfg, &q, 0.95).expect("rows");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][3], "IU_COR_BRIB");
        let keys: Vec<String> = cfg.check_against(&q).into_iter().map(|e| e.key).collect();
        assert!(keys.contains(&"sdmx.series.safety".to_string()), "{keys:?}");
    }

    #[test]
    fn valid_table_checks() {
        let c = raw().check().expect("valid");
        assert_eq!(c.reporting_type, "N");
        assert_eq!(c.nature, "C");
        assert_eq!(c.dimensions["sex"].codes["2"], "F");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut r = raw();
        r.ref_area = "SRB".into();
        r.time_period = "last year".into();
        r.dimensions.insert(
            "urban".into(),
            RawDimension {
                dimension: "URBAN".into(),
                codes: BTreeMap::from([("1".into(), "U".into())]),
            },
        );
        r.dimensions.insert(
            "sex2".into(),
            RawDimension {
                dimension: "SEX".into(),
                codes: BTreeMap::from([("1".into(), "M F".into())]),
            },
        );
        let keys: Vec<String> = r
            .check()
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.key)
            .collect();
        for k in [
            "sdmx.ref_area",
            "sdmx.time_period",
            "sdmx.dimensions.urban.dimension",
            "sdmx.dimensions.sex2.dimension",
            "sdmx.dimensions.sex2.codes.1",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
    }
}
