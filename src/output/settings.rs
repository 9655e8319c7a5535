//! The publication settings, checked together ([`PublicationConfig`]): which products to write
//! (`[output] formats`), the reliability rules (`[reliability]`) and the SDMX settings
//! (`[sdmx]`). Each table is checked by the product it configures; this file puts them together
//! and checks what spans them (an `sdmx` format needs an `[sdmx]` table).

use serde::Deserialize;

use super::PublicationConfigError;
use super::reliability::{RawReliability, ReliabilityRules};
use super::sdmx::{RawSdmx, SdmxConfig};
use crate::questionnaire::Questionnaire;

/// An output format of `[output] formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `estimates.parquet` (written by the pipeline itself).
    Parquet,
    /// `estimates.csv`.
    Csv,
    /// `sdmx.csv`.
    Sdmx,
    /// `tables.xlsx`.
    Xlsx,
    /// `report.html`.
    Html,
}

impl Format {
    /// Name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Sdmx => "sdmx",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// Check `[output] formats`; absent means `["parquet", "csv"]`, so that every run leaves a
    /// table any spreadsheet opens.
    pub fn check_list(
        formats: Option<&[String]>,
    ) -> Result<Vec<Format>, Vec<PublicationConfigError>> {
        let Some(list) = formats else {
            return Ok(vec![Format::Parquet, Format::Csv]);
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for name in list {
            let f = match name.as_str() {
                "parquet" => Format::Parquet,
                "csv" => Format::Csv,
                "sdmx" => Format::Sdmx,
                "xlsx" => Format::Xlsx,
                "html" => Format::Html,
                other => {
                    errors.push(PublicationConfigError {
                        key: "output.formats".into(),
                        message: format!(
                            "\"{other}\" is not one of parquet, csv, sdmx, xlsx, html"
                        ),
                    });
                    continue;
                }
            };
            if out.contains(&f) {
                errors.push(PublicationConfigError {
                    key: "output.formats".into(),
                    message: format!("\"{name}\" is listed twice"),
                });
            } else {
                out.push(f);
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// The raw publication settings, as the config parser hands them over.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawPublication {
    /// `[reliability]`.
    #[serde(default)]
    pub reliability: Option<RawReliability>,
    /// `[sdmx]`.
    #[serde(default)]
    pub sdmx: Option<RawSdmx>,
    /// `[output] formats`.
    #[serde(default)]
    pub formats: Option<Vec<String>>,
}

/// Checked publication settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicationConfig {
    /// Formats to write (`Parquet` is the pipeline's own `estimates.parquet`).
    pub formats: Vec<Format>,
    /// Reliability rules (NCHS 2017 with suppression when `[reliability]` is absent).
    pub reliability: ReliabilityRules,
    /// `[sdmx]`, required when `sdmx` is among the formats.
    pub sdmx: Option<SdmxConfig>,
}

impl Default for PublicationConfig {
    fn default() -> PublicationConfig {
        PublicationConfig {
            formats: vec![Format::Parquet, Format::Csv],
            reliability: ReliabilityRules::default(),
            sdmx: None,
        }
    }
}

impl PublicationConfig {
    /// Check the three raw parts together; every problem is returned at once.
    pub fn check(
        reliability: Option<&RawReliability>,
        sdmx: Option<&RawSdmx>,
        formats: Option<&[String]>,
    ) -> Result<PublicationConfig, Vec<PublicationConfigError>> {
        let mut errors = Vec::new();
        let formats = Format::check_list(formats).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        });
        let reliability = match reliability {
            // Without a [reliability] table cells are flagged (NCHS 2017) but never blanked:
            // suppression is a publication decision the user states.
            None => ReliabilityRules {
                suppress: false,
                ..ReliabilityRules::default()
            },
            Some(r) => r.check().unwrap_or_else(|e| {
                errors.extend(e);
                ReliabilityRules::default()
            }),
        };
        let sdmx = match sdmx {
            None => None,
            Some(s) => match s.check() {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.extend(e);
                    None
                }
            },
        };
        if formats.contains(&Format::Sdmx) && sdmx.is_none() && errors.is_empty() {
            errors.push(PublicationConfigError {
                key: "output.formats".into(),
                message: "\"sdmx\" needs an [sdmx] table with ref_area and time_period".into(),
            });
        }
        if errors.is_empty() {
            Ok(PublicationConfig {
                formats,
                reliability,
                sdmx,
            })
        } else {
            Err(errors)
        }
    }

    /// Check [`RawPublication`] (the three parts in one struct).
    pub fn check_raw(
        raw: &RawPublication,
    ) -> Result<PublicationConfig, Vec<PublicationConfigError>> {
        PublicationConfig::check(
            raw.reliability.as_ref(),
            raw.sdmx.as_ref(),
            raw.formats.as_deref(),
        )
    }

    /// Cross-check against the questionnaire (call before reading data).
    pub fn check_against(&self, q: &Questionnaire) -> Result<(), Vec<PublicationConfigError>> {
        let errors = self
            .sdmx
            .as_ref()
            .map(|s| s.check_against(q))
            .unwrap_or_default();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// True when `f` is to be written.
    pub fn wants(&self, f: Format) -> bool {
        self.formats.contains(&f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_checked() {
        assert_eq!(
            Format::check_list(Some(&["csv".into(), "html".into()])).expect("ok"),
            vec![Format::Csv, Format::Html]
        );
        let e =
            Format::check_list(Some(&["pdf".into(), "csv".into(), "csv".into()])).expect_err("bad");
        assert_eq!(e.len(), 2);
        assert!(
            e[0].to_string().starts_with("output.formats: \"pdf\""),
            "{}",
            e[0]
        );
        let e = PublicationConfig::check(None, None, Some(&["sdmx".into()])).expect_err("no sdmx");
        assert!(e[0].message.contains("[sdmx]"), "{e:?}");
    }
}
