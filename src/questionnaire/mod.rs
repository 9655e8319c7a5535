//! The declarative questionnaire: variables, codes, missing-value codes, skip logic, derived
//! variables and indicator definitions, read from TOML (`docs/questionnaire.md`).
//!
//! CONTRACT (shared by ingest and estimate): the public types below are used downstream;
//! keep their names and fields. Parsing lives in this module, the expression language in
//! [`expr`].

pub mod expr;
pub mod import;
pub mod xlsform;
pub mod xpath;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use expr::{EvalColumn, EvalError, EvalState, Expr, ExprError, ExprType, VarInfo};

/// A parsed and checked questionnaire.
#[derive(Debug, Clone)]
pub struct Questionnaire {
    /// Short identifier, e.g. `cvs-core`.
    pub id: String,
    /// Version string, e.g. `1.0`.
    pub version: String,
    /// Human-readable title.
    pub title: String,
    /// File it was read from.
    pub source: PathBuf,
    /// Variables of the data file, in questionnaire order.
    pub variables: Vec<Variable>,
    /// Derived variables, in definition order (each may use variables and earlier derived ones).
    pub derived: Vec<Derived>,
    /// Indicators, in definition order.
    pub indicators: Vec<Indicator>,
}

/// Storage type of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    /// Coded answers. Stored as numbers when every valid and missing code is numeric,
    /// otherwise as text. A variable declared `type = "text"` with codes is categorical too,
    /// stored as text whatever its codes look like (an SPSS string variable coded "1", "2").
    Categorical,
    /// Whole numbers (counts, ages).
    Integer,
    /// Real numbers (weights, measurements).
    Numeric,
    /// Free text or identifiers.
    Text,
}

/// Meaning of a declared missing-value code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingMeaning {
    /// "Don't know".
    DontKnow,
    /// "Refused".
    Refused,
    /// "Not applicable" written as a code (treated like a legitimate skip).
    NotApplicable,
    /// "No answer" written as a code (item nonresponse).
    NoResponse,
    /// Any other missing code.
    Other,
}

/// One valid code and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeLabel {
    /// The code exactly as written in the data (`"1"`, `"R07"`).
    pub code: String,
    /// Its label.
    pub label: String,
}

/// One missing-value code.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingCode {
    /// The code exactly as written in the data (`"8"`).
    pub code: String,
    /// What it means.
    pub meaning: MissingMeaning,
    /// Its label.
    pub label: String,
}

/// An inclusive range of numbers declared missing, as SPSS declares them
/// (`MISSING VALUES hours (97 THRU 99)`): every value from `low` to `high` is a missing code with
/// this meaning. A valid code may not lie in a range; a single missing code inside one keeps
/// its own meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingRange {
    /// Lowest value of the range; minus infinity for SPSS `LO`.
    pub low: f64,
    /// Highest value of the range; plus infinity for SPSS `HI`.
    pub high: f64,
    /// What a value in the range means.
    pub meaning: MissingMeaning,
    /// Its label.
    pub label: String,
}

impl MissingRange {
    /// True when `x` lies in the range.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The breakdown dimensions of the SDG data structure (`IAEG-SDGs:SDG`), in the order of the SDG
/// data flows. A coded variable may be mapped to one of them ([`SdmxMapping`]).
pub const SDG_BREAKDOWN_DIMENSIONS: [&str; 11] = [
    "SEX",
    "AGE",
    "URBANISATION",
    "INCOME_WEALTH_QUANTILE",
    "EDUCATION_LEV",
    "OCCUPATION",
    "CUST_BREAKDOWN",
    "COMPOSITE_BREAKDOWN",
    "DISABILITY_STATUS",
    "ACTIVITY",
    "PRODUCT",
];

/// How a coded variable is sent as an SDG breakdown in `sdmx.csv`: the questionnaire's
/// `sdmx = { dimension = "SEX", codes = { 1 = "M", 2 = "F" } }`. A pipeline's
/// `[sdmx.dimensions.<variable>]` replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct SdmxMapping {
    /// One of [`SDG_BREAKDOWN_DIMENSIONS`].
    pub dimension: String,
    /// Every valid code of the variable → its SDG code.
    pub codes: BTreeMap<String, String>,
}

/// A variable of the data file.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Column name in the data file.
    pub name: String,
    /// Question text or description.
    pub label: String,
    /// Storage type.
    pub var_type: VarType,
    /// True when the stored values are numbers (Integer, Numeric, and Categorical with numeric codes).
    pub numeric_storage: bool,
    /// Valid codes (categorical only; empty means any value of the type is valid).
    pub codes: Vec<CodeLabel>,
    /// Declared missing-value codes.
    pub missing: Vec<MissingCode>,
    /// Declared ranges of missing values (numerically stored variables only), checked after
    /// the valid and missing codes.
    pub missing_ranges: Vec<MissingRange>,
    /// Inclusive valid range for Integer/Numeric variables.
    pub range: Option<(f64, f64)>,
    /// Skip logic: the question is asked only where this is true. `None`: asked of every
    /// respondent.
    pub asked_if: Option<Expr>,
    /// True for frame/design columns filled for every sampled unit, respondent or not
    /// (ids, strata, PSUs, weights, response status, frame variables such as region).
    pub frame: bool,
    /// The SDG breakdown this variable's codes are sent as, when used as a domain.
    pub sdmx: Option<SdmxMapping>,
    /// The unit the variable is measured on: a household variable is read from the household
    /// file, a person variable from the person file.
    pub level: Level,
}

/// The unit of a variable or an indicator in a survey of households and persons
/// (`docs/questionnaire.md`, "Households and persons"). Household crimes are asked once per
/// household and estimated over households; personal crimes, bribery and feelings of safety over
/// persons. A questionnaire without household variables describes one unit, the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Estimated over households with household weights.
    Household,
    /// Estimated over persons with person weights (the default).
    #[default]
    Person,
}

impl Level {
    /// The name in questionnaires, configs and the `level` output column.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Household => "household",
            Level::Person => "person",
        }
    }

    /// Parse `household` or `person` (any case).
    pub fn from_name(name: &str) -> Option<Level> {
        match name.trim().to_ascii_lowercase().as_str() {
            "household" => Some(Level::Household),
            "person" => Some(Level::Person),
            _ => None,
        }
    }
}

/// A variable computed from others by an expression.
#[derive(Debug, Clone)]
pub struct Derived {
    /// Name (usable in later expressions and as a domain).
    pub name: String,
    /// Description.
    pub label: String,
    /// Definition.
    pub expr: Expr,
    /// Optional code labels (for derived variables used as domains).
    pub codes: Vec<CodeLabel>,
    /// The SDG breakdown this variable's codes are sent as, when used as a domain.
    pub sdmx: Option<SdmxMapping>,
    /// Household when every variable it uses is a household variable (it can then be computed
    /// on the household file), person otherwise.
    pub level: Level,
}

/// What an indicator estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorKind {
    /// Weighted share of the universe where `value` is true (0/1).
    Proportion,
    /// Weighted mean of `value` over the universe.
    Mean,
    /// Ratio of weighted totals Σw·numerator / Σw·denominator over the universe.
    Ratio,
    /// Weighted total of `value` over the universe.
    Total,
    /// Shares of the universe in each category of a coded variable, or mentioning each item of a
    /// multiple-response set: a proportion per category ([`Indicator::categories`]).
    Distribution,
    /// Weighted quantiles of `value` over the universe ([`Indicator::quantile`]).
    Quantile,
}

/// The category one part of a distribution estimates the share of.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The category's code as written in the data (`"1"`, `"E"`), or the item's variable name for
    /// a multiple-response set: the `category` column of the outputs.
    pub code: String,
    /// Its label (the code's label, or the item's question text).
    pub label: String,
    /// An item of a multiple-response set: the share of the universe mentioning it, where a
    /// respondent not asked the item (skipped) does not mention it and one whose answer is
    /// unknown (don't know, refused) is left out of that item's share.
    pub mention: bool,
}

/// How a weighted quantile is read off the weighted distribution function (R `svyquantile`'s
/// `qrule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantileRule {
    /// The smallest value whose cumulative weight share reaches p (R `qrule = "math"`, the
    /// default; Hyndman–Fan type 1).
    Math,
    /// Linear interpolation between order statistics (R `qrule = "hf7"`, Hyndman–Fan type 7, the
    /// default of R's `quantile()` for unweighted data).
    Hf7,
}

impl QuantileRule {
    /// The rule named as R's `qrule` names it: `math` (or its alias `hf1`) or `hf7`.
    pub fn from_name(name: &str) -> Option<QuantileRule> {
        match name {
            "math" | "hf1" => Some(QuantileRule::Math),
            "hf7" => Some(QuantileRule::Hf7),
            _ => None,
        }
    }

    /// The rule's name in configs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            QuantileRule::Math => "math",
            QuantileRule::Hf7 => "hf7",
        }
    }
}

/// The interval of a quantile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantileInterval {
    /// Woodruff's: the interval of the distribution function at the estimated quantile, read back
    /// through the quantile rule (R `interval.type = "mean"`). Taylor and replicate variance.
    Woodruff,
    /// The quantile ± t·SE with the SE from the replicates' own quantiles (R `interval.type =
    /// "quantile"`). Replicate variance only: Taylor rows of such an indicator use Woodruff.
    ReplicateQuantiles,
}

impl QuantileInterval {
    /// The interval named `woodruff` or `quantile` (the `ci` key of a quantile indicator).
    pub fn from_name(name: &str) -> Option<QuantileInterval> {
        match name {
            "woodruff" => Some(QuantileInterval::Woodruff),
            "quantile" => Some(QuantileInterval::ReplicateQuantiles),
            _ => None,
        }
    }
}

/// What a quantile indicator estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSpec {
    /// Probabilities, strictly increasing, each in (0, 1).
    pub probs: Vec<f64>,
    /// How each quantile is read off the weighted distribution.
    pub rule: QuantileRule,
    /// Interval method.
    pub interval: QuantileInterval,
}

/// An indicator definition.
#[derive(Debug, Clone)]
pub struct Indicator {
    /// Identifier used in outputs, e.g. `bribery_prevalence`.
    pub id: String,
    /// Human-readable label.
    pub label: String,
    /// Estimator kind.
    pub kind: IndicatorKind,
    /// Value expression (Proportion: Bool; Mean/Total: Num). `None` for Ratio.
    pub value: Option<Expr>,
    /// Numerator (Ratio only).
    pub numerator: Option<Expr>,
    /// Denominator (Ratio only).
    pub denominator: Option<Expr>,
    /// Who is in the denominator: rows where this is true (unknown counts as false).
    /// `None`: every respondent.
    pub universe: Option<Expr>,
    /// Unit multiplier applied to estimate, SE and CI (e.g. 1000 for "per 1,000"; 1 by default).
    pub multiplier: f64,
    /// Unit of measure, free text (e.g. `percent`, `per 1,000 persons`).
    pub unit: Option<String>,
    /// SDG series code, if the indicator feeds one (e.g. `IU_COR_BRIB`).
    pub sdg_series: Option<String>,
    /// For one part of a distribution: the category whose share it estimates.
    pub category: Option<Category>,
    /// A distribution's parts, one proportion indicator per category or item, in declared order,
    /// each with this indicator's id and its [`Indicator::category`]. Empty for other kinds.
    pub categories: Vec<Indicator>,
    /// A quantile indicator's probabilities, rule and interval.
    pub quantile: Option<QuantileSpec>,
    /// The unit it is estimated over (a household indicator uses household variables only).
    pub level: Level,
}

impl Indicator {
    /// True when the indicator estimates shares (a proportion, or the categories of a
    /// distribution): shown as percentages and judged by the reliability rules for proportions.
    pub fn estimates_shares(&self) -> bool {
        matches!(
            self.kind,
            IndicatorKind::Proportion | IndicatorKind::Distribution
        )
    }

    /// What estimation receives for this indicator: a distribution's parts (proportions), or the
    /// indicator itself.
    pub fn estimated(&self) -> Vec<&Indicator> {
        if self.categories.is_empty() {
            vec![self]
        } else {
            self.categories.iter().collect()
        }
    }
}

impl Questionnaire {
    /// True when some variable is measured on households: the survey then has a household file
    /// and a person file (`[data.household]`).
    pub fn has_households(&self) -> bool {
        self.variables.iter().any(|v| v.level == Level::Household)
    }

    /// The level of a variable or derived variable.
    pub fn level_of(&self, name: &str) -> Option<Level> {
        self.variable(name)
            .map(|v| v.level)
            .or_else(|| self.derived_variable(name).map(|d| d.level))
    }

    /// The household part: household variables, the derived variables computed from them, and
    /// household indicators. The household file is read and estimated with it.
    pub fn household_part(&self) -> Questionnaire {
        let household = Level::Household;
        Questionnaire {
            variables: self
                .variables
                .iter()
                .filter(|v| v.level == household)
                .cloned()
                .collect(),
            derived: self
                .derived
                .iter()
                .filter(|d| d.level == household)
                .cloned()
                .collect(),
            indicators: self
                .indicators
                .iter()
                .filter(|i| i.level == household)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// What the person file is checked against: its variables only. Derived variables, which may
    /// use household variables, are computed once the households are joined.
    pub fn person_file_part(&self) -> Questionnaire {
        Questionnaire {
            variables: self
                .variables
                .iter()
                .filter(|v| v.level == Level::Person)
                .cloned()
                .collect(),
            derived: Vec::new(),
            indicators: Vec::new(),
            ..self.clone()
        }
    }

    /// The person part for estimation: every variable (household ones are joined to their
    /// persons) and the person indicators.
    pub fn person_part(&self) -> Questionnaire {
        Questionnaire {
            indicators: self
                .indicators
                .iter()
                .filter(|i| i.level == Level::Person)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Read and check a questionnaire file.
    pub fn load(path: &Path) -> Result<Questionnaire, QuestionnaireError> {
        parse::load(path)
    }

    /// Look a variable up by name.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// Look an indicator up by id.
    pub fn indicator(&self, id: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.id == id)
    }
}

mod parse;

/// Errors reading a questionnaire. Every variant names the file and, where it applies,
/// line and column (1-based).
#[derive(Debug, thiserror::Error)]
pub enum QuestionnaireError {
    /// The file could not be read.
    #[error("{}: cannot read the questionnaire: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not a valid questionnaire: TOML syntax, unknown or missing keys, bad
    /// references, expression syntax or type errors. All problems found are listed.
    #[error("{}", render_problems(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in file order where positions are known.
        problems: Vec<Problem>,
    },
}

/// One problem found in a questionnaire file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&path.display().to_string());
        if let Some(line) = p.line {
            out.push_str(&format!(":{line}"));
            if let Some(col) = p.column {
                out.push_str(&format!(":{col}"));
            }
        }
        out.push_str(": ");
        out.push_str(&p.message);
    }
    out
}

impl Questionnaire {
    /// Parse and check a questionnaire given as TOML text; `source` is the file name used in
    /// messages and stored in [`Questionnaire::source`].
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Questionnaire, QuestionnaireError> {
        parse::parse_str(text, source)
    }

    /// Look a derived variable up by name.
    pub fn derived_variable(&self, name: &str) -> Option<&Derived> {
        self.derived.iter().find(|d| d.name == name)
    }

    /// The SDG breakdowns the questionnaire declares: variable or derived variable name → its
    /// mapping (`sdmx = { dimension = ..., codes = ... }`), sorted by name.
    pub fn sdmx_mappings(&self) -> BTreeMap<&str, &SdmxMapping> {
        let vars = self
            .variables
            .iter()
            .filter_map(|v| v.sdmx.as_ref().map(|m| (v.name.as_str(), m)));
        let derived = self
            .derived
            .iter()
            .filter_map(|d| d.sdmx.as_ref().map(|m| (d.name.as_str(), m)));
        vars.chain(derived).collect()
    }

    /// Compile an expression written outside the questionnaire (a config's universe) over its
    /// variables and derived variables. The error says what is wrong and where.
    pub fn compile(&self, text: &str) -> Result<Expr, String> {
        let scope = |name: &str| -> Result<VarInfo, String> {
            if let Some(v) = self.variable(name) {
                return Ok(parse::var_info(v));
            }
            if let Some(d) = self.derived_variable(name) {
                return Ok(VarInfo {
                    ty: d.expr.output_type(),
                    codes: d.codes.iter().map(|c| c.code.clone()).collect(),
                    missing_codes: Vec::new(),
                    zero_one: d.expr.is_zero_one(),
                });
            }
            Err(format!(
                "unknown variable {name}: it is neither a variable nor a derived variable of {}",
                self.id
            ))
        };
        Expr::parse(text, &scope).map_err(|e| {
            let col = text.get(..e.start).map_or(e.start, |p| p.chars().count()) + 1;
            format!("at character {col} of `{text}`: {}", e.message)
        })
    }

    /// Compute every derived variable, in definition order, and add it to `frame` as a numeric
    /// column (Bool as 1/0). States map as: Value → Value, NotApplicable → NotAsked,
    /// Missing → NoResponse.
    pub fn add_derived(&self, frame: &mut crate::frame::Frame) -> Result<(), expr::EvalError> {
        self.add_derived_where(frame, |_| true)
    }

    /// [`Questionnaire::add_derived`] for the derived variables named in `needed` and those
    /// they are computed from; the others are not built (each costs a column of the frame).
    pub fn add_derived_needed(
        &self,
        frame: &mut crate::frame::Frame,
        needed: &[String],
    ) -> Result<(), expr::EvalError> {
        let mut wanted: Vec<bool> = self
            .derived
            .iter()
            .map(|d| needed.contains(&d.name))
            .collect();
        // A derived variable reads only variables defined before it: walking back once
        // collects every input of every wanted one.
        for k in (0..self.derived.len()).rev() {
            if !wanted[k] {
                continue;
            }
            for v in self.derived[k].expr.variables() {
                if let Some(j) = self.derived[..k].iter().position(|d| d.name == v) {
                    wanted[j] = true;
                }
            }
        }
        self.add_derived_where(frame, |k| wanted[k])
    }

    fn add_derived_where(
        &self,
        frame: &mut crate::frame::Frame,
        wanted: impl Fn(usize) -> bool,
    ) -> Result<(), expr::EvalError> {
        for (k, d) in self.derived.iter().enumerate() {
            if !wanted(k) {
                continue;
            }
            let (values, state) = d.expr.eval_column(frame)?;
            let column = crate::frame::Column {
                name: d.name.clone(),
                data: crate::frame::ColumnData::Num(values),
                state,
            };
            frame
                .push(column)
                .map_err(|source| expr::EvalError::Frame {
                    name: d.name.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
