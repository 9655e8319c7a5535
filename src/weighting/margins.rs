//! Population totals for calibration, read from a CSV file.
//!
//! Two layouts are accepted (see `docs/weighting.md`):
//!
//! * **long**, header `variable,category,total`: one row per category of each calibration
//!   variable (a factor margin); a row with an empty category is the population total of a
//!   numeric auxiliary variable; an optional row `_N` with an empty category is the population
//!   size (otherwise N is the common total of the factor margins, which must agree);
//! * **joint**, header `<var1>,<var2>,…,total`: one row per post-stratum (cell of the
//!   cross-classification), as R's `postStratify(design, ~var1+var2, population)` table.
//!
//! Categories are matched to data values textually after numeric normalisation, so `1`, `1.0`
//! and ` 1 ` are the same category.

use std::collections::HashMap;
use std::path::Path;

use crate::frame::format_number;

/// Errors reading a margins file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MarginsError {
    /// The margins file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// File.
        path: String,
        /// System message.
        message: String,
    },
    /// The header is neither layout.
    #[error(
        "{path} line 1: header \"{found}\" is neither `variable,category,total` (margins) nor `<variable>,…,total` (joint post-strata)"
    )]
    Header {
        /// File.
        path: String,
        /// Header found.
        found: String,
    },
    /// A malformed line.
    #[error("{path} line {line}: {message}")]
    Syntax {
        /// File.
        path: String,
        /// Line (1-based).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A total that is not a usable number.
    #[error("{path} line {line}: total \"{value}\" of {variable} {category}: {reason}")]
    Total {
        /// File.
        path: String,
        /// Line.
        line: u64,
        /// Variable.
        variable: String,
        /// Category (may be empty).
        category: String,
        /// The value as written.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A category (or cell) given twice.
    #[error(
        "{path} line {line}: category {category} of {variable} is given twice (first on line {first_line})"
    )]
    Duplicate {
        /// File.
        path: String,
        /// Line of the repetition.
        line: u64,
        /// Variable.
        variable: String,
        /// Category.
        category: String,
        /// Line of the first occurrence.
        first_line: u64,
    },
    /// Factor margins (or `_N`) describe populations of different sizes.
    #[error(
        "{path}: margin {variable} sums to {total}, {other} to {other_total}: they differ by {diff}; all margins must describe the same population",
        diff = (.total - .other_total).abs()
    )]
    Disagree {
        /// File.
        path: String,
        /// Margin that disagrees.
        variable: String,
        /// Its total.
        total: f64,
        /// The reference margin (the first one, or `_N`).
        other: String,
        /// The reference total.
        other_total: f64,
    },
}

/// Name of the variable whose row gives the population size in the long layout.
pub const POPULATION_SIZE: &str = "_N";

/// One category of a factor margin.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The category as written in the margins file (trimmed).
    pub label: String,
    /// Normalised key used to match data values (see [`normalise`]).
    pub key: String,
    /// Population total.
    pub total: f64,
    /// Line of the margins file (1-based, header = line 1).
    pub line: u64,
}

/// Population totals of one factor (categorical) calibration variable.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorMargin {
    /// Variable name (a column of the data).
    pub variable: String,
    /// Categories in file order.
    pub categories: Vec<Category>,
}

impl FactorMargin {
    /// Sum of the category totals.
    pub fn sum(&self) -> f64 {
        self.categories.iter().map(|c| c.total).sum()
    }
}

/// Population total of a numeric auxiliary variable.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericTotal {
    /// Variable name.
    pub variable: String,
    /// Population total Σ_U x.
    pub total: f64,
    /// Line of the margins file.
    pub line: u64,
}

/// One cell of a joint post-stratification table.
#[derive(Debug, Clone, PartialEq)]
pub struct JointCell {
    /// Value of each variable, as written.
    pub labels: Vec<String>,
    /// Normalised values (see [`normalise`]).
    pub keys: Vec<String>,
    /// Population count of the cell.
    pub total: f64,
    /// Line of the margins file.
    pub line: u64,
}

/// A joint table of post-strata.
#[derive(Debug, Clone, PartialEq)]
pub struct JointTable {
    /// The cross-classified variables, in file column order.
    pub variables: Vec<String>,
    /// Cells in file order.
    pub cells: Vec<JointCell>,
}

/// Population totals for one weighting scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Margins {
    /// File the totals were read from (for messages).
    pub source: String,
    /// Population size N: the `_N` row, else the common total of the factor margins (or of the
    /// joint table); `None` when neither exists (numeric auxiliaries only, without `_N`).
    pub population_size: Option<f64>,
    /// Factor margins (long layout), in order of first appearance.
    pub factors: Vec<FactorMargin>,
    /// Numeric auxiliary totals (long layout), in order of appearance.
    pub numeric: Vec<NumericTotal>,
    /// The joint table (joint layout).
    pub joint: Option<JointTable>,
}

/// Normalised form of a category or data value: trimmed, and numbers written as
/// [`format_number`] does (`1.0` → `1`, `01` → `1`).
pub fn normalise(s: &str) -> String {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => format_number(x),
        _ => t.to_string(),
    }
}

impl Margins {
    /// Read a margins file (either layout, recognised from the header).
    pub fn load(path: impl AsRef<Path>) -> Result<Margins, MarginsError> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let text = crate::memory::read_text_file(path).map_err(|e| MarginsError::Io {
            path: source.clone(),
            message: e.to_string(),
        })?;
        Margins::parse(&source, &text)
    }

    /// Parse margins from CSV text; `source` names the file in messages.
    pub fn parse(source: &str, text: &str) -> Result<Margins, MarginsError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let csv_err = |line: u64, e: csv::Error| MarginsError::Syntax {
            path: source.to_string(),
            line,
            message: e.to_string(),
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_err(1, e))?
            .iter()
            .map(|h| h.to_string())
            .collect();
        let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                csv_err(line, e)
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            if rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            rows.push((line, rec.iter().map(|f| f.to_string()).collect()));
        }
        let lower: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        if lower == ["variable", "category", "total"] {
            parse_long(source, &rows)
        } else if lower.len() >= 2 && lower.last().map(String::as_str) == Some("total") {
            parse_joint(source, &header[..header.len() - 1], &rows)
        } else {
            Err(MarginsError::Header {
                path: source.to_string(),
                found: header.join(","),
            })
        }
    }

    /// The names of the calibration variables (factor, numeric, or joint-table variables).
    pub fn variables(&self) -> Vec<&str> {
        match &self.joint {
            Some(j) => j.variables.iter().map(String::as_str).collect(),
            None => self
                .factors
                .iter()
                .map(|f| f.variable.as_str())
                .chain(self.numeric.iter().map(|x| x.variable.as_str()))
                .collect(),
        }
    }
}

fn parse_total(
    source: &str,
    line: u64,
    variable: &str,
    category: &str,
    value: &str,
    positive: bool,
) -> Result<f64, MarginsError> {
    let err = |reason: &str| MarginsError::Total {
        path: source.to_string(),
        line,
        variable: variable.to_string(),
        category: category.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let x: f64 = value
        .parse()
        .map_err(|_| err("the total is not a number"))?;
    if !x.is_finite() {
        return Err(err("the total is not a finite number"));
    }
    if positive && x <= 0.0 {
        return Err(err(
            "a population count must be positive (drop the category or merge it with another)",
        ));
    }
    Ok(x)
}

/// Two totals that should be equal, up to rounding in the file.
fn agree(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn parse_long(source: &str, rows: &[(u64, Vec<String>)]) -> Result<Margins, MarginsError> {
    let mut factors: Vec<FactorMargin> = Vec::new();
    let mut numeric: Vec<NumericTotal> = Vec::new();
    let mut n_row: Option<(f64, u64)> = None;
    // (variable, key) -> line, for duplicate detection; variable -> kind.
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut factor_index: HashMap<String, usize> = HashMap::new();
    let mut numeric_line: HashMap<String, u64> = HashMap::new();
    for (line, f) in rows {
        let line = *line;
        let (variable, category, value) = (f[0].as_str(), f[1].as_str(), f[2].as_str());
        if variable.is_empty() {
            return Err(MarginsError::Syntax {
                path: source.to_string(),
                line,
                message: "the variable name is empty".into(),
            });
        }
        if variable == POPULATION_SIZE || variable == "(Intercept)" {
            let total = parse_total(source, line, variable, category, value, true)?;
            if let Some((_, first)) = n_row {
                return Err(MarginsError::Duplicate {
                    path: source.to_string(),
                    line,
                    variable: variable.to_string(),
                    category: category.to_string(),
                    first_line: first,
                });
            }
            n_row = Some((total, line));
            continue;
        }
        if category.is_empty() {
            let total = parse_total(source, line, variable, category, value, false)?;
            let first = numeric_line
                .get(variable)
                .copied()
                .or_else(|| factor_index.get(variable).map(|_| 0));
            if let Some(first) = first {
                return Err(MarginsError::Syntax {
                    path: source.to_string(),
                    line,
                    message: if first == 0 {
                        format!(
                            "variable {variable} has categories and also a numeric total (empty category)"
                        )
                    } else {
                        format!(
                            "numeric total of {variable} is given twice (lines {first} and {line})"
                        )
                    },
                });
            }
            numeric_line.insert(variable.to_string(), line);
            numeric.push(NumericTotal {
                variable: variable.to_string(),
                total,
                line,
            });
            continue;
        }
        if numeric_line.contains_key(variable) {
            return Err(MarginsError::Syntax {
                path: source.to_string(),
                line,
                message: format!(
                    "variable {variable} has a numeric total (empty category) and also category {category}"
                ),
            });
        }
        let total = parse_total(source, line, variable, category, value, true)?;
        let key = normalise(category);
        if let Some(&first) = seen.get(&(variable.to_string(), key.clone())) {
            return Err(MarginsError::Duplicate {
                path: source.to_string(),
                line,
                variable: variable.to_string(),
                category: category.to_string(),
                first_line: first,
            });
        }
        seen.insert((variable.to_string(), key.clone()), line);
        let k = *factor_index.entry(variable.to_string()).or_insert_with(|| {
            factors.push(FactorMargin {
                variable: variable.to_string(),
                categories: Vec::new(),
            });
            factors.len() - 1
        });
        factors[k].categories.push(Category {
            label: category.to_string(),
            key,
            total,
            line,
        });
    }
    if factors.is_empty() && numeric.is_empty() {
        return Err(MarginsError::Syntax {
            path: source.to_string(),
            line: 1,
            message: "no margins: the file has no categories and no numeric totals".into(),
        });
    }
    // Every factor margin (and _N) must describe the same population.
    let reference: Option<(String, f64)> = match n_row {
        Some((n, _)) => Some((POPULATION_SIZE.to_string(), n)),
        None => factors.first().map(|f| (f.variable.clone(), f.sum())),
    };
    if let Some((ref_name, ref_total)) = &reference {
        for f in &factors {
            let s = f.sum();
            if !agree(s, *ref_total) {
                return Err(MarginsError::Disagree {
                    path: source.to_string(),
                    variable: f.variable.clone(),
                    total: s,
                    other: ref_name.clone(),
                    other_total: *ref_total,
                });
            }
        }
    }
    Ok(Margins {
        source: source.to_string(),
        population_size: reference.map(|(_, n)| n),
        factors,
        numeric,
        joint: None,
    })
}

fn parse_joint(
    source: &str,
    variables: &[String],
    rows: &[(u64, Vec<String>)],
) -> Result<Margins, MarginsError> {
    let mut cells = Vec::with_capacity(rows.len());
    let mut seen: HashMap<Vec<String>, u64> = HashMap::new();
    for (line, f) in rows {
        let line = *line;
        let labels: Vec<String> = f[..variables.len()].to_vec();
        let cell_name = variables
            .iter()
            .zip(&labels)
            .map(|(v, l)| format!("{v}={l}"))
            .collect::<Vec<_>>()
            .join(",");
        if let Some(pos) = labels.iter().position(String::is_empty) {
            return Err(MarginsError::Syntax {
                path: source.to_string(),
                line,
                message: format!("the value of {} is empty", variables[pos]),
            });
        }
        let total = parse_total(
            source,
            line,
            &variables.join(":"),
            &cell_name,
            &f[variables.len()],
            true,
        )?;
        let keys: Vec<String> = labels.iter().map(|l| normalise(l)).collect();
        if let Some(&first) = seen.get(&keys) {
            return Err(MarginsError::Duplicate {
                path: source.to_string(),
                line,
                variable: variables.join(":"),
                category: cell_name,
                first_line: first,
            });
        }
        seen.insert(keys.clone(), line);
        cells.push(JointCell {
            labels,
            keys,
            total,
            line,
        });
    }
    if cells.is_empty() {
        return Err(MarginsError::Syntax {
            path: source.to_string(),
            line: 1,
            message: "the joint table has no cells".into(),
        });
    }
    let n = cells.iter().map(|c| c.total).sum();
    Ok(Margins {
        source: source.to_string(),
        population_size: Some(n),
        factors: Vec::new(),
        numeric: Vec::new(),
        joint: Some(JointTable {
            variables: variables.to_vec(),
            cells,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_layout_with_numeric_and_n() {
        let m = Margins::parse(
            "m.csv",
            "variable,category,total\nsex,1,60\nsex,2.0,40\nage,a,30\nage,b,70\nincome,,5000\n_N,,100\n",
        )
        .unwrap();
        assert_eq!(m.population_size, Some(100.0));
        assert_eq!(m.factors.len(), 2);
        assert_eq!(m.factors[0].categories[1].key, "2");
        assert_eq!(m.numeric[0].total, 5000.0);
        assert_eq!(m.variables(), vec!["sex", "age", "income"]);
    }

    #[test]
    fn joint_layout() {
        let m = Margins::parse(
            "p.csv",
            "sex,age_group,total\n1,1,10\n1,2,20\n2,1,30\n2,2,40\n",
        )
        .unwrap();
        let j = m.joint.as_ref().unwrap();
        assert_eq!(j.variables, vec!["sex", "age_group"]);
        assert_eq!(m.population_size, Some(100.0));
    }

    #[test]
    fn errors_name_file_line_and_value() {
        let e = Margins::parse("m.csv", "variable,category,total\nsex,1,60\nsex,2,abc\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.csv line 3") && e.contains("abc"), "{e}");
        let e = Margins::parse("m.csv", "variable,category,total\nsex,1,60\nsex,2,0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("positive"), "{e}");
        let e = Margins::parse("m.csv", "variable,category,total\nsex,1,60\nsex,2,-4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("-4"), "{e}");
        let e = Margins::parse("m.csv", "variable,category,total\nsex,1,60\nsex,1.0,40\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("line 2"), "{e}");
        let e = Margins::parse(
            "m.csv",
            "variable,category,total\nsex,1,60\nsex,2,40\nage_group,1,50\nage_group,2,51\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("margin age_group sums to 101, sex to 100: they differ by 1"),
            "{e}"
        );
        let e = Margins::parse("m.csv", "a,b\n1,2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("header"), "{e}");
    }
}
