//! Reading a questionnaire: TOML text → raw serde structs (with spans) → checked
//! [`Questionnaire`]. Every problem found is collected and reported at once, each with the line
//! and column it comes from; expression errors point inside the expression.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use super::expr::{Expr, ExprType, VarInfo, is_plain_identifier};
use super::{
    Category, CodeLabel, Derived, Indicator, IndicatorKind, Level, MissingCode, MissingMeaning,
    MissingRange, Problem, QuantileInterval, QuantileRule, QuantileSpec, Questionnaire,
    QuestionnaireError, SDG_BREAKDOWN_DIMENSIONS, SdmxMapping, VarType, Variable,
};

// ---------------------------------------------------------------------------------------------
// Raw file structure

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    questionnaire: RawHeader,
    #[serde(default)]
    codesets: Ordered<Spanned<RawCodeset>>,
    #[serde(default)]
    variables: Vec<Spanned<RawVariable>>,
    #[serde(default)]
    derived: Vec<Spanned<RawDerived>>,
    #[serde(default)]
    indicators: Vec<Spanned<RawIndicator>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    id: String,
    version: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodeset {
    #[serde(default)]
    codes: Ordered<String>,
    #[serde(default)]
    missing: Ordered<MissingSpec>,
    #[serde(default)]
    missing_ranges: Vec<RawMissingRange>,
}

/// `{ low = 97, high = 99, meaning = "refused", label = "..." }`; `low = -inf` and `high = inf`
/// stand for SPSS `LO` and `HI`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMissingRange {
    low: f64,
    high: f64,
    meaning: String,
    label: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawVarType {
    Categorical,
    Integer,
    Numeric,
    Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    name: String,
    #[serde(default)]
    label: String,
    #[serde(rename = "type")]
    var_type: Option<RawVarType>,
    codeset: Option<String>,
    codes: Option<Ordered<String>>,
    missing: Option<Ordered<MissingSpec>>,
    missing_ranges: Option<Vec<RawMissingRange>>,
    range: Option<[f64; 2]>,
    asked_if: Option<Spanned<String>>,
    #[serde(default)]
    frame: bool,
    sdmx: Option<RawSdmxMapping>,
    level: Option<String>,
}

/// `sdmx = { dimension = "SEX", codes = { 1 = "M", 2 = "F" } }` on a variable or derived variable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSdmxMapping {
    dimension: String,
    codes: Ordered<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDerived {
    name: String,
    #[serde(default)]
    label: String,
    expr: Spanned<String>,
    codes: Option<Ordered<String>>,
    sdmx: Option<RawSdmxMapping>,
    level: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Proportion,
    Mean,
    Ratio,
    Total,
    Distribution,
    Quantile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    id: String,
    #[serde(default)]
    label: String,
    kind: RawKind,
    value: Option<Spanned<String>>,
    numerator: Option<Spanned<String>>,
    denominator: Option<Spanned<String>>,
    universe: Option<Spanned<String>>,
    multiplier: Option<f64>,
    unit: Option<String>,
    sdg_series: Option<String>,
    /// Multiple-response items (distribution).
    items: Option<Vec<String>>,
    /// The test appended to each item, e.g. `== 1` (distribution with items).
    count: Option<Spanned<String>>,
    /// Quantile probabilities.
    probs: Option<Vec<f64>>,
    qrule: Option<String>,
    ci: Option<String>,
    level: Option<String>,
}

/// A TOML table read as a list of (key, value) pairs in file order.
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

/// A missing code's description: either just the meaning keyword (`"dont_know"`) or a table
/// `{ meaning = "dont_know", label = "Don't know" }`.
struct MissingSpec {
    meaning: String,
    label: Option<String>,
}

impl<'de> Deserialize<'de> for MissingSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = MissingSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a meaning (\"dont_know\", \"refused\", ...) or a table { meaning = ..., label = ... }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MissingSpec, E> {
                Ok(MissingSpec {
                    meaning: v.to_string(),
                    label: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MissingSpec, A::Error> {
                let mut meaning = None;
                let mut label = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "meaning" => meaning = Some(map.next_value::<String>()?),
                        "label" => label = Some(map.next_value::<String>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["meaning", "label"]));
                        }
                    }
                }
                let meaning = meaning.ok_or_else(|| de::Error::missing_field("meaning"))?;
                Ok(MissingSpec { meaning, label })
            }
        }
        d.deserialize_any(Vis)
    }
}

// ---------------------------------------------------------------------------------------------
// Positions

/// Maps byte offsets of the file to 1-based line and column (in characters).
struct Source<'a> {
    text: &'a str,
}

impl Source<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn problem_at(&self, offset: usize, message: String) -> Problem {
        let (line, column) = self.line_col(offset);
        Problem {
            line: Some(line),
            column: Some(column),
            message,
        }
    }

    /// Where the text of the TOML string at `span` starts in the file, if its content is
    /// written verbatim (no escapes), so that offsets inside `value` map onto the file.
    fn string_content_start(&self, span: &Range<usize>, value: &str) -> Option<usize> {
        let raw = self.text.get(span.clone())?;
        for delim in ["\"\"\"", "'''", "\"", "'"] {
            let d = delim.len();
            if raw.len() >= 2 * d && raw.starts_with(delim) && raw.ends_with(delim) {
                let inner = raw.get(d..raw.len() - d)?;
                if inner == value {
                    return Some(span.start + d);
                }
                if d == 3 {
                    for nl in ["\n", "\r\n"] {
                        if inner.strip_prefix(nl) == Some(value) {
                            return Some(span.start + d + nl.len());
                        }
                    }
                }
                return None;
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

pub(super) fn load(path: &Path) -> Result<Questionnaire, QuestionnaireError> {
    let text = crate::memory::read_text_file(path).map_err(|source| QuestionnaireError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

pub(super) fn parse_str(text: &str, path: &Path) -> Result<Questionnaire, QuestionnaireError> {
    let src = Source { text };
    let invalid = |problems: Vec<Problem>| QuestionnaireError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let message = e.message().trim_end().to_string();
            let problem = match e.span() {
                Some(span) => src.problem_at(span.start, message),
                None => Problem {
                    line: None,
                    column: None,
                    message,
                },
            };
            return Err(invalid(vec![problem]));
        }
    };
    let mut checker = Checker {
        src: &src,
        problems: Vec::new(),
    };
    let q = checker.questionnaire(raw, path);
    if checker.problems.is_empty() {
        Ok(q)
    } else {
        let mut problems = checker.problems;
        problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column.unwrap_or(0)));
        Err(invalid(problems))
    }
}

fn parse_meaning(s: &str) -> Option<MissingMeaning> {
    Some(match s {
        "dont_know" => MissingMeaning::DontKnow,
        "refused" => MissingMeaning::Refused,
        "not_applicable" => MissingMeaning::NotApplicable,
        "no_response" => MissingMeaning::NoResponse,
        "other" => MissingMeaning::Other,
        _ => return None,
    })
}

fn default_missing_label(m: MissingMeaning) -> &'static str {
    match m {
        MissingMeaning::DontKnow => "Don't know",
        MissingMeaning::Refused => "Refused",
        MissingMeaning::NotApplicable => "Not applicable",
        MissingMeaning::NoResponse => "No answer",
        MissingMeaning::Other => "Other missing",
    }
}

/// A numeric code: a finite number written the usual way.
fn numeric_code(code: &str) -> Option<f64> {
    code.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A Stata extended missing value `.a` … `.z`: allowed as a missing code of a numeric variable,
/// which stays numeric (the Stata reader delivers these cells as that text).
fn extended_missing(code: &str) -> bool {
    let b = code.trim().as_bytes();
    b.len() == 2 && b[0] == b'.' && b[1].is_ascii_lowercase()
}

/// A code set after checking.
#[derive(Clone, Default)]
struct Codes {
    codes: Vec<CodeLabel>,
    missing: Vec<MissingCode>,
    ranges: Vec<MissingRange>,
}

struct Checker<'a> {
    src: &'a Source<'a>,
    problems: Vec<Problem>,
}

/// What expressions may reference: variables and derived variables by name.
struct Names {
    vars: HashMap<String, VarInfo>,
    /// Derived variables in order, with their info once checked.
    derived_order: Vec<String>,
    derived: HashMap<String, VarInfo>,
}

impl Checker<'_> {
    fn at(&mut self, offset: usize, message: String) {
        self.problems.push(self.src.problem_at(offset, message));
    }

    fn codes(
        &mut self,
        at: usize,
        what: &str,
        codes: &Ordered<String>,
        missing: &Ordered<MissingSpec>,
        ranges: &[RawMissingRange],
    ) -> Codes {
        let mut out = Codes::default();
        let mut seen = HashSet::new();
        for (code, label) in &codes.0 {
            if !seen.insert(code.clone()) {
                self.at(at, format!("{what}: code {code:?} is declared twice"));
            }
            out.codes.push(CodeLabel {
                code: code.clone(),
                label: label.clone(),
            });
        }
        for (code, spec) in &missing.0 {
            if !seen.insert(code.clone()) {
                self.at(
                    at,
                    format!(
                        "{what}: missing code {code:?} is also declared as a valid code or twice"
                    ),
                );
            }
            match parse_meaning(&spec.meaning) {
                Some(meaning) => out.missing.push(MissingCode {
                    code: code.clone(),
                    meaning,
                    label: spec
                        .label
                        .clone()
                        .unwrap_or_else(|| default_missing_label(meaning).to_string()),
                }),
                None => self.at(
                    at,
                    format!(
                        "{what}: missing code {code:?} has meaning {:?}; use one of dont_know, refused, \
                         not_applicable, no_response, other",
                        spec.meaning
                    ),
                ),
            }
        }
        for r in ranges {
            let shown = format!("{}..{}", r.low, r.high);
            if r.low.is_nan() || r.high.is_nan() || r.low > r.high {
                self.at(
                    at,
                    format!(
                        "{what}: missing range {shown} must be two numbers, low first (-inf and inf \
                         stand for SPSS LO and HI)"
                    ),
                );
                continue;
            }
            if out
                .ranges
                .iter()
                .any(|o| o.low == r.low && o.high == r.high)
            {
                self.at(
                    at,
                    format!("{what}: missing range {shown} is declared twice"),
                );
            }
            match parse_meaning(&r.meaning) {
                Some(meaning) => out.ranges.push(MissingRange {
                    low: r.low,
                    high: r.high,
                    meaning,
                    label: r
                        .label
                        .clone()
                        .unwrap_or_else(|| default_missing_label(meaning).to_string()),
                }),
                None => self.at(
                    at,
                    format!(
                        "{what}: missing range {shown} has meaning {:?}; use one of dont_know, \
                         refused, not_applicable, no_response, other",
                        r.meaning
                    ),
                ),
            }
        }
        out
    }

    /// Parse an expression, reporting errors at their position in the file.
    fn expr(
        &mut self,
        what: &str,
        s: &Spanned<String>,
        scope: &dyn Fn(&str) -> Result<VarInfo, String>,
    ) -> Option<Expr> {
        match Expr::parse(s.get_ref(), scope) {
            Ok(e) => Some(e),
            Err(e) => {
                let span = s.span();
                match self.src.string_content_start(&span, s.get_ref()) {
                    Some(start) => self.at(start + e.start, format!("{what}: {}", e.message)),
                    None => {
                        let col = s
                            .get_ref()
                            .get(..e.start)
                            .map_or(e.start, |p| p.chars().count())
                            + 1;
                        self.at(
                            span.start,
                            format!(
                                "{what}: at character {col} of the expression: {}",
                                e.message
                            ),
                        )
                    }
                }
                None
            }
        }
    }

    fn questionnaire(&mut self, raw: RawFile, path: &Path) -> Questionnaire {
        // Code sets
        let mut codesets: HashMap<String, Codes> = HashMap::new();
        for (name, cs) in &raw.codesets.0 {
            let at = cs.span().start;
            let c = self.codes(
                at,
                &format!("codeset {name}"),
                &cs.get_ref().codes,
                &cs.get_ref().missing,
                &cs.get_ref().missing_ranges,
            );
            if c.codes.is_empty() && c.missing.is_empty() && c.ranges.is_empty() {
                self.at(at, format!("codeset {name} declares no codes"));
            }
            codesets.insert(name.clone(), c);
        }

        // Variables (without skip rules first, so that skip rules may reference any variable)
        let mut variables = Vec::with_capacity(raw.variables.len());
        let mut names = Names {
            vars: HashMap::new(),
            derived_order: Vec::new(),
            derived: HashMap::new(),
        };
        // (variable, SDG dimension, position): one variable per dimension.
        let mut sdmx_dimensions: Vec<(String, String, usize)> = Vec::new();
        for rv in &raw.variables {
            let at = rv.span().start;
            let v = rv.get_ref();
            if let Some(var) = self.variable(at, v, &codesets) {
                if let Some(m) = &var.sdmx {
                    sdmx_dimensions.push((var.name.clone(), m.dimension.clone(), at));
                }
                if names.vars.contains_key(&var.name) {
                    self.at(at, format!("variable {} is declared twice", var.name));
                } else {
                    names.vars.insert(var.name.clone(), var_info(&var));
                }
                variables.push(var);
            }
        }
        for (var, rv) in variables.iter_mut().zip(
            raw.variables
                .iter()
                .filter(|rv| !rv.get_ref().name.is_empty()),
        ) {
            if let Some(cond) = &rv.get_ref().asked_if {
                let own = var.name.clone();
                let scope = |n: &str| -> Result<VarInfo, String> {
                    if n == own {
                        return Err(format!("the skip rule of {own} cannot use {own} itself"));
                    }
                    lookup_vars(
                        &names,
                        n,
                        "skip rules are checked before derived variables exist",
                    )
                };
                if let Some(e) = self.expr(&format!("variable {own}, asked_if"), cond, &scope) {
                    if e.output_type() != ExprType::Bool {
                        self.at(
                            cond.span().start,
                            format!("variable {own}, asked_if: must be true/false, e.g. `x == 1`"),
                        );
                    }
                    var.asked_if = Some(e);
                }
            }
        }

        // Derived variables, in order
        for rd in &raw.derived {
            names.derived_order.push(rd.get_ref().name.clone());
        }
        let mut derived = Vec::with_capacity(raw.derived.len());
        let mut seen_derived = HashSet::new();
        for (i, rd) in raw.derived.iter().enumerate() {
            let at = rd.span().start;
            let d = rd.get_ref();
            if d.name.is_empty() {
                self.at(at, "a derived variable has an empty name".into());
                continue;
            }
            if names.vars.contains_key(&d.name) || !seen_derived.insert(d.name.clone()) {
                self.at(
                    at,
                    format!(
                        "derived variable {} has the name of another variable",
                        d.name
                    ),
                );
                continue;
            }
            let scope = |n: &str| -> Result<VarInfo, String> {
                if let Some(info) = names.derived.get(n) {
                    return Ok(info.clone());
                }
                if let Some(pos) = names.derived_order.iter().position(|x| x == n)
                    && pos >= i
                {
                    return Err(format!(
                        "derived variable {n} is defined at or after this one; derived variables may use only \
                         earlier ones"
                    ));
                }
                lookup_vars(&names, n, "")
            };
            let Some(expr) = self.expr(&format!("derived variable {}", d.name), &d.expr, &scope)
            else {
                continue;
            };
            let codes = match &d.codes {
                Some(c) => {
                    self.codes(
                        at,
                        &format!("derived variable {}", d.name),
                        c,
                        &Ordered::default(),
                        &[],
                    )
                    .codes
                }
                None => Vec::new(),
            };
            if let Some(bad) = codes.iter().find(|c| numeric_code(&c.code).is_none()) {
                self.at(
                    at,
                    format!(
                        "derived variable {}: code {:?} is not a number (derived variables are numeric)",
                        d.name, bad.code
                    ),
                );
            }
            let info = VarInfo {
                ty: expr.output_type(),
                codes: codes.iter().map(|c| c.code.clone()).collect(),
                missing_codes: Vec::new(),
                zero_one: expr.is_zero_one(),
            };
            names.derived.insert(d.name.clone(), info);
            let sdmx = d.sdmx.as_ref().and_then(|m| {
                self.sdmx_mapping(at, &format!("derived variable {}", d.name), m, &codes)
            });
            if let Some(m) = &sdmx {
                sdmx_dimensions.push((d.name.clone(), m.dimension.clone(), at));
            }
            // Household when every input is (a constant too): then it can be computed on the
            // household file, and joined to persons like any household variable.
            let inputs_level = expr
                .variables()
                .iter()
                .map(|n| {
                    variables
                        .iter()
                        .find(|v| &v.name == n)
                        .map(|v| v.level)
                        .or_else(|| {
                            derived
                                .iter()
                                .find(|x: &&Derived| &x.name == n)
                                .map(|x| x.level)
                        })
                        .unwrap_or(Level::Person)
                })
                .max()
                .unwrap_or(Level::Household);
            let what = format!("derived variable {}", d.name);
            let level = match d.level.as_deref() {
                None => inputs_level,
                Some(text) => {
                    let declared = self.level(at, &what, Some(text));
                    if declared == Level::Household && inputs_level == Level::Person {
                        self.at(
                            at,
                            format!(
                                "{what}: declared level = \"household\" but it uses person variables ({}); a household variable can use household variables only",
                                self.person_inputs(&expr, &variables, &derived).join(", ")
                            ),
                        );
                    }
                    declared
                }
            };
            derived.push(Derived {
                name: d.name.clone(),
                label: d.label.clone(),
                expr,
                codes,
                sdmx,
                level,
            });
        }

        // A dimension sent from two variables would give two observations under one key.
        let mut first_of_dimension: HashMap<&str, &str> = HashMap::new();
        for (name, dimension, at) in &sdmx_dimensions {
            if let Some(other) = first_of_dimension.insert(dimension, name) {
                self.at(
                    *at,
                    format!(
                        "{name}, sdmx: dimension {dimension} is already mapped from {other}; one \
                         variable per SDG dimension (map the other in the pipeline's \
                         [sdmx.dimensions] when you publish by it)"
                    ),
                );
            }
        }

        // Indicators
        let mut indicators = Vec::with_capacity(raw.indicators.len());
        let mut ids = HashSet::new();
        let scope = |n: &str| -> Result<VarInfo, String> {
            if let Some(info) = names.derived.get(n) {
                return Ok(info.clone());
            }
            lookup_vars(&names, n, "")
        };
        for ri in &raw.indicators {
            let at = ri.span().start;
            let r = ri.get_ref();
            if r.id.is_empty() {
                self.at(at, "an indicator has an empty id".into());
                continue;
            }
            if !ids.insert(r.id.clone()) {
                self.at(at, format!("indicator {} is defined twice", r.id));
            }
            let labels = |name: &str| -> Option<(String, Vec<CodeLabel>, bool)> {
                if let Some(v) = variables.iter().find(|v| v.name == name) {
                    return Some((v.label.clone(), v.codes.clone(), v.numeric_storage));
                }
                derived
                    .iter()
                    .find(|d| d.name == name)
                    .map(|d| (d.label.clone(), d.codes.clone(), true))
            };
            if let Some(ind) = self.indicator(at, r, &scope, &labels) {
                indicators.push(ind);
            }
        }

        self.check_levels(&variables, &derived, &indicators, &raw);

        Questionnaire {
            id: raw.questionnaire.id,
            version: raw.questionnaire.version,
            title: raw.questionnaire.title,
            source: path.to_path_buf(),
            variables,
            derived,
            indicators,
        }
    }

    fn variable(
        &mut self,
        at: usize,
        v: &RawVariable,
        codesets: &HashMap<String, Codes>,
    ) -> Option<Variable> {
        if v.name.is_empty() {
            self.at(at, "a variable has an empty name".into());
            return None;
        }
        let name = &v.name;
        let what = format!("variable {name}");
        let mut codes = Codes::default();
        if let Some(cs) = &v.codeset {
            match codesets.get(cs) {
                Some(c) => codes = c.clone(),
                None => {
                    let mut known: Vec<&str> = codesets.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    self.at(
                        at,
                        format!(
                            "{what}: codeset {cs} is not defined (codesets: {})",
                            known.join(", ")
                        ),
                    );
                }
            }
            if v.codes.is_some() {
                self.at(
                    at,
                    format!("{what}: give either codeset or codes, not both"),
                );
            }
        }
        let inline = self.codes(
            at,
            &what,
            v.codes.as_ref().unwrap_or(&Ordered::default()),
            v.missing.as_ref().unwrap_or(&Ordered::default()),
            v.missing_ranges.as_deref().unwrap_or_default(),
        );
        codes.codes.extend(inline.codes);
        codes.ranges.extend(inline.ranges);
        for m in inline.missing {
            if codes.missing.iter().any(|x| x.code == m.code)
                || codes.codes.iter().any(|x| x.code == m.code)
            {
                self.at(
                    at,
                    format!(
                        "{what}: missing code {:?} is already declared by the codeset",
                        m.code
                    ),
                );
            } else {
                codes.missing.push(m);
            }
        }
        let var_type = match v.var_type {
            Some(RawVarType::Categorical) => VarType::Categorical,
            Some(RawVarType::Integer) => VarType::Integer,
            Some(RawVarType::Numeric) => VarType::Numeric,
            Some(RawVarType::Text) => VarType::Text,
            None if !codes.codes.is_empty() => VarType::Categorical,
            None => {
                self.at(
                    at,
                    format!("{what}: give its type (categorical, integer, numeric or text)"),
                );
                VarType::Numeric
            }
        };
        if var_type == VarType::Categorical && codes.codes.is_empty() {
            self.at(
                at,
                format!(
                    "{what}: a categorical variable needs codes (codeset or codes); use type = \"text\" for free text"
                ),
            );
        }
        if matches!(var_type, VarType::Integer | VarType::Numeric) && !codes.codes.is_empty() {
            self.at(
                at,
                format!(
                    "{what}: integer and numeric variables have no valid codes; use range for \
                     numbers, or type = \"categorical\" (or \"text\" for codes stored as text)"
                ),
            );
        }
        // `type = "text"` with codes: a categorical variable whose codes are text in the file,
        // even when they look like numbers (an SPSS string variable coded "1", "2").
        let (var_type, text_codes) = if var_type == VarType::Text && !codes.codes.is_empty() {
            (VarType::Categorical, true)
        } else {
            (var_type, false)
        };
        let numeric_storage = match var_type {
            VarType::Integer | VarType::Numeric => true,
            VarType::Text => false,
            VarType::Categorical if text_codes => false,
            VarType::Categorical => codes
                .codes
                .iter()
                .map(|c| &c.code)
                .chain(
                    codes
                        .missing
                        .iter()
                        .map(|m| &m.code)
                        .filter(|c| !extended_missing(c)),
                )
                .all(|c| numeric_code(c).is_some()),
        };
        if matches!(var_type, VarType::Integer | VarType::Numeric)
            && let Some(m) = codes
                .missing
                .iter()
                .find(|m| numeric_code(&m.code).is_none() && !extended_missing(&m.code))
        {
            self.at(
                at,
                format!(
                    "{what}: missing code {:?} of a numeric variable must be a number",
                    m.code
                ),
            );
        }
        if !codes.ranges.is_empty() && !numeric_storage {
            self.at(
                at,
                format!(
                    "{what}: missing_ranges apply to variables stored as numbers; {name} is stored \
                     as text (list its missing codes under missing instead)"
                ),
            );
        }
        for c in &codes.codes {
            if let Some(x) = numeric_code(&c.code)
                && let Some(r) = codes.ranges.iter().find(|r| r.contains(x))
            {
                self.at(
                    at,
                    format!(
                        "{what}: valid code {:?} lies in the missing range {}..{}; narrow the range \
                         or drop the code",
                        c.code, r.low, r.high
                    ),
                );
            }
        }
        let range = match v.range {
            None => None,
            Some([lo, hi]) => {
                if !matches!(var_type, VarType::Integer | VarType::Numeric) {
                    self.at(
                        at,
                        format!("{what}: range applies to integer and numeric variables only"),
                    );
                }
                // An end may be open (`[0, inf]`, a count with no upper limit, as forms'
                // constraints `. >= 0` say), not both.
                let ordered = lo.partial_cmp(&hi).is_some_and(|o| o.is_le());
                if !ordered || (lo.is_infinite() && hi.is_infinite()) {
                    self.at(
                        at,
                        format!(
                            "{what}: range [{lo}, {hi}] must be two numbers, low first (-inf or \
                             inf for an open end)"
                        ),
                    );
                }
                Some((lo, hi))
            }
        };
        let sdmx = v
            .sdmx
            .as_ref()
            .and_then(|m| self.sdmx_mapping(at, &what, m, &codes.codes));
        Some(Variable {
            name: name.clone(),
            label: v.label.clone(),
            var_type,
            numeric_storage,
            codes: codes.codes,
            missing: codes.missing,
            missing_ranges: codes.ranges,
            range,
            asked_if: None,
            frame: v.frame,
            sdmx,
            level: self.level(at, &what, v.level.as_deref()),
        })
    }

    /// `level = "household" | "person"` of a variable, derived variable or indicator.
    fn level(&mut self, at: usize, what: &str, text: Option<&str>) -> Level {
        match text {
            None => Level::Person,
            Some(t) => Level::from_name(t).unwrap_or_else(|| {
                self.at(
                    at,
                    format!("{what}: level = {t:?}; write \"household\" or \"person\""),
                );
                Level::Person
            }),
        }
    }

    /// The person variables an expression uses.
    fn person_inputs(
        &self,
        expr: &Expr,
        variables: &[Variable],
        derived: &[Derived],
    ) -> Vec<String> {
        expr.variables()
            .into_iter()
            .filter(|n| {
                let level = variables
                    .iter()
                    .find(|v| &v.name == n)
                    .map(|v| v.level)
                    .or_else(|| derived.iter().find(|d| &d.name == n).map(|d| d.level));
                level == Some(Level::Person)
            })
            .collect()
    }

    /// A household indicator reads household variables only (it is estimated on the household
    /// file); skip rules stay within their variable's file, which is checked before the files
    /// are joined.
    fn check_levels(
        &mut self,
        variables: &[Variable],
        derived: &[Derived],
        indicators: &[Indicator],
        raw: &RawFile,
    ) {
        let level_of = |n: &str| {
            variables
                .iter()
                .find(|v| v.name == n)
                .map(|v| v.level)
                .or_else(|| derived.iter().find(|d| d.name == n).map(|d| d.level))
        };
        let positions: HashMap<&str, usize> = raw
            .indicators
            .iter()
            .map(|ri| (ri.get_ref().id.as_str(), ri.span().start))
            .collect();
        for ind in indicators.iter().filter(|i| i.level == Level::Household) {
            let mut used: Vec<String> = std::iter::once(ind)
                .chain(&ind.categories)
                .flat_map(|i| [&i.value, &i.numerator, &i.denominator, &i.universe])
                .flatten()
                .flat_map(|e| e.variables())
                .filter(|n| level_of(n) == Some(Level::Person))
                .collect();
            used.sort_unstable();
            used.dedup();
            if !used.is_empty() {
                let at = positions.get(ind.id.as_str()).copied().unwrap_or(0);
                self.at(
                    at,
                    format!(
                        "indicator {}: level = \"household\" but it uses person variables ({}); a household indicator is estimated on the household file and can use household variables only (a person indicator may use household variables)",
                        ind.id,
                        used.join(", ")
                    ),
                );
            }
        }
        if !variables.iter().any(|v| v.level == Level::Household) {
            return;
        }
        for (v, rv) in variables.iter().zip(
            raw.variables
                .iter()
                .filter(|rv| !rv.get_ref().name.is_empty()),
        ) {
            let Some(cond) = &v.asked_if else { continue };
            let other: Vec<String> = cond
                .variables()
                .into_iter()
                .filter(|n| level_of(n).is_some_and(|l| l != v.level))
                .collect();
            if !other.is_empty() {
                self.at(
                    rv.span().start,
                    format!(
                        "variable {}, asked_if: uses {} of the other file ({}); a skip rule is checked while its variable's file is read, before households and persons are joined, so it can use variables of the {} file only",
                        v.name,
                        if v.level == Level::Person { "household variables" } else { "person variables" },
                        other.join(", "),
                        v.level.as_str()
                    ),
                );
            }
        }
    }

    /// Check an `sdmx` mapping: an SDG breakdown dimension, and an SDMX code for every valid code
    /// of the variable (a domain value without one could not be sent) and for no other.
    fn sdmx_mapping(
        &mut self,
        at: usize,
        what: &str,
        raw: &RawSdmxMapping,
        codes: &[CodeLabel],
    ) -> Option<SdmxMapping> {
        let before = self.problems.len();
        if !SDG_BREAKDOWN_DIMENSIONS.contains(&raw.dimension.as_str()) {
            self.at(
                at,
                format!(
                    "{what}, sdmx: dimension {:?} is not a breakdown dimension of the SDG data \
                     structure ({})",
                    raw.dimension,
                    SDG_BREAKDOWN_DIMENSIONS.join(", ")
                ),
            );
        }
        if codes.is_empty() {
            self.at(
                at,
                format!(
                    "{what}, sdmx: only a variable with codes can be mapped to an SDG dimension; \
                     declare its codes (or derive a coded variable from it)"
                ),
            );
        }
        let mut mapped = BTreeMap::new();
        for (value, code) in &raw.codes.0 {
            if !codes.is_empty() && !codes.iter().any(|c| &c.code == value) {
                self.at(
                    at,
                    format!(
                        "{what}, sdmx: {value:?} is not a valid code of the variable (codes: {})",
                        codes
                            .iter()
                            .map(|c| c.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            let sdmx_id = !code.is_empty()
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '$' | '-'));
            if !sdmx_id || code == "_T" {
                self.at(
                    at,
                    format!(
                        "{what}, sdmx: {code:?} (for code {value:?}) is not an SDMX code of a \
                         category; use letters, digits, _ or -, and not _T (the total)"
                    ),
                );
            }
            mapped.insert(value.clone(), code.clone());
        }
        let unmapped: Vec<&str> = codes
            .iter()
            .map(|c| c.code.as_str())
            .filter(|c| !mapped.contains_key(*c))
            .collect();
        if !codes.is_empty() && !unmapped.is_empty() {
            self.at(
                at,
                format!(
                    "{what}, sdmx: code(s) {} have no SDG code; map every valid code",
                    unmapped.join(", ")
                ),
            );
        }
        (self.problems.len() == before).then(|| SdmxMapping {
            dimension: raw.dimension.clone(),
            codes: mapped,
        })
    }

    fn indicator(
        &mut self,
        at: usize,
        r: &RawIndicator,
        scope: &dyn Fn(&str) -> Result<VarInfo, String>,
        labels: &dyn Fn(&str) -> Option<(String, Vec<CodeLabel>, bool)>,
    ) -> Option<Indicator> {
        let id = &r.id;
        let mut ok = true;
        let mut parse = |this: &mut Self, key: &str, s: &Option<Spanned<String>>| -> Option<Expr> {
            let s = s.as_ref()?;
            let e = this.expr(&format!("indicator {id}, {key}"), s, scope);
            if e.is_none() {
                ok = false;
            }
            e
        };
        // A distribution's value names a coded variable, which may be text: its parts compare
        // it with each code (distribution_parts).
        let value = if r.kind == RawKind::Distribution {
            None
        } else {
            parse(self, "value", &r.value)
        };
        let numerator = parse(self, "numerator", &r.numerator);
        let denominator = parse(self, "denominator", &r.denominator);
        let universe = parse(self, "universe", &r.universe);
        let kind = match r.kind {
            RawKind::Proportion => IndicatorKind::Proportion,
            RawKind::Mean => IndicatorKind::Mean,
            RawKind::Ratio => IndicatorKind::Ratio,
            RawKind::Total => IndicatorKind::Total,
            RawKind::Distribution => IndicatorKind::Distribution,
            RawKind::Quantile => IndicatorKind::Quantile,
        };
        let pos = |s: &Option<Spanned<String>>| s.as_ref().map_or(at, |s| s.span().start);
        let multiple_response = kind == IndicatorKind::Distribution && r.items.is_some();
        if kind == IndicatorKind::Ratio {
            if r.value.is_some() {
                self.at(
                    pos(&r.value),
                    format!("indicator {id}: a ratio has numerator and denominator, not value"),
                );
            }
            for (key, raw) in [("numerator", &r.numerator), ("denominator", &r.denominator)] {
                if raw.is_none() {
                    self.at(at, format!("indicator {id}: a ratio needs {key}"));
                }
            }
        } else {
            if multiple_response {
                if r.value.is_some() {
                    self.at(
                        pos(&r.value),
                        format!(
                            "indicator {id}: a distribution has either value (one coded variable) or items (a multiple-response set), not both"
                        ),
                    );
                }
            } else if r.value.is_none() {
                let need = if kind == IndicatorKind::Distribution {
                    "value (a variable with declared codes) or items (a multiple-response set)"
                } else {
                    "value"
                };
                self.at(at, format!("indicator {id}: needs {need}"));
            }
            for (key, raw) in [("numerator", &r.numerator), ("denominator", &r.denominator)] {
                if raw.is_some() {
                    self.at(
                        pos(raw),
                        format!(
                            "indicator {id}: {key} belongs to ratio indicators only; use value"
                        ),
                    );
                }
            }
        }
        let only = |this: &mut Self, key: &str, given: bool, allowed: bool, kinds: &str| {
            if given && !allowed {
                this.at(
                    at,
                    format!("indicator {id}: {key} belongs to {kinds} indicators only"),
                );
            }
        };
        only(
            self,
            "items",
            r.items.is_some(),
            kind == IndicatorKind::Distribution,
            "distribution",
        );
        only(
            self,
            "count",
            r.count.is_some(),
            multiple_response,
            "multiple-response (distribution with items)",
        );
        for (key, given) in [
            ("probs", r.probs.is_some()),
            ("qrule", r.qrule.is_some()),
            ("ci", r.ci.is_some()),
        ] {
            only(
                self,
                key,
                given,
                kind == IndicatorKind::Quantile,
                "quantile",
            );
        }
        if kind == IndicatorKind::Proportion
            && let Some(v) = &value
            && !(v.output_type() == ExprType::Bool || v.is_zero_one())
        {
            self.at(
                pos(&r.value),
                format!(
                    "indicator {id}: the value of a proportion must be true/false or a 0/1 variable, e.g. `x == 1`"
                ),
            );
        }
        if kind == IndicatorKind::Quantile
            && let Some(v) = &value
            && v.output_type() != ExprType::Num
        {
            self.at(
                pos(&r.value),
                format!(
                    "indicator {id}: the value of a quantile must be a number (an amount, an age), not {}",
                    v.output_type().describe()
                ),
            );
        }
        if let Some(u) = &universe
            && u.output_type() != ExprType::Bool
        {
            self.at(
                pos(&r.universe),
                format!("indicator {id}: universe must be true/false, e.g. `x in [1, 2]`"),
            );
        }
        let multiplier = r.multiplier.unwrap_or(1.0);
        if !(multiplier.is_finite() && multiplier > 0.0) {
            self.at(
                at,
                format!("indicator {id}: multiplier must be a positive number, got {multiplier}"),
            );
        }
        let quantile = if kind == IndicatorKind::Quantile {
            self.quantile_spec(at, r)
        } else {
            None
        };
        if !ok || (kind == IndicatorKind::Quantile && quantile.is_none()) {
            return None;
        }
        let mut indicator = Indicator {
            id: id.clone(),
            label: r.label.clone(),
            kind,
            value,
            numerator,
            denominator,
            universe,
            multiplier,
            unit: r.unit.clone(),
            sdg_series: r.sdg_series.clone(),
            category: None,
            categories: Vec::new(),
            quantile,
            level: self.level(at, &format!("indicator {id}"), r.level.as_deref()),
        };
        if kind == IndicatorKind::Distribution {
            indicator.categories = self.distribution_parts(at, r, &indicator, scope, labels)?;
        }
        Some(indicator)
    }

    /// `probs`, `qrule` and `ci` of a quantile indicator, checked.
    fn quantile_spec(&mut self, at: usize, r: &RawIndicator) -> Option<QuantileSpec> {
        let id = &r.id;
        let mut ok = true;
        let probs = r.probs.clone().unwrap_or_default();
        if probs.is_empty() {
            self.at(
                at,
                format!("indicator {id}: a quantile needs probs, e.g. probs = [0.25, 0.5, 0.75]"),
            );
            ok = false;
        }
        if let Some(p) = probs.iter().find(|p| !(**p > 0.0 && **p < 1.0)) {
            self.at(
                at,
                format!(
                    "indicator {id}: probs must lie strictly between 0 and 1, got {p}; write the median as 0.5"
                ),
            );
            ok = false;
        }
        if probs.windows(2).any(|w| w[0] >= w[1]) {
            self.at(
                at,
                format!(
                    "indicator {id}: probs must be increasing without repeats, got {probs:?}; sort them"
                ),
            );
            ok = false;
        }
        let rule = match r.qrule.as_deref() {
            None => QuantileRule::Math,
            Some(name) => QuantileRule::from_name(name).unwrap_or_else(|| {
                self.at(
                    at,
                    format!("indicator {id}: qrule must be \"math\" or \"hf7\", got \"{name}\""),
                );
                ok = false;
                QuantileRule::Math
            }),
        };
        let interval = match r.ci.as_deref() {
            None => QuantileInterval::Woodruff,
            Some(name) => QuantileInterval::from_name(name).unwrap_or_else(|| {
                self.at(
                    at,
                    format!(
                        "indicator {id}: ci must be \"woodruff\" or \"quantile\" (replicate variance), got \"{name}\""
                    ),
                );
                ok = false;
                QuantileInterval::Woodruff
            }),
        };
        ok.then_some(QuantileSpec {
            probs,
            rule,
            interval,
        })
    }

    /// A distribution's parts: one proportion indicator per declared code of `value` (universe:
    /// the indicator's, restricted to rows with a declared code, so that the shares add up to 1),
    /// or per item of a multiple-response set (value `item count`, the indicator's universe).
    fn distribution_parts(
        &mut self,
        at: usize,
        r: &RawIndicator,
        parent: &Indicator,
        scope: &dyn Fn(&str) -> Result<VarInfo, String>,
        labels: &dyn Fn(&str) -> Option<(String, Vec<CodeLabel>, bool)>,
    ) -> Option<Vec<Indicator>> {
        let id = &r.id;
        let universe_text = r.universe.as_ref().map(|u| u.get_ref().trim().to_string());
        let mut ok = true;
        let compile = |this: &mut Self, text: &str| -> Option<Expr> {
            Expr::parse(text, scope)
                .map_err(|e| this.at(at, format!("indicator {id}: in `{text}`: {}", e.message)))
                .ok()
        };
        let part = |value: Option<Expr>, universe: Option<Expr>, category: Category| Indicator {
            kind: IndicatorKind::Proportion,
            value,
            universe,
            category: Some(category),
            categories: Vec::new(),
            quantile: None,
            ..parent.clone()
        };
        let mut parts = Vec::new();
        if let Some(items) = &r.items {
            if items.is_empty() {
                self.at(
                    at,
                    format!("indicator {id}: items is empty; list the item variables"),
                );
                return None;
            }
            let count = r
                .count
                .as_ref()
                .map_or_else(|| "== 1".to_string(), |c| c.get_ref().trim().to_string());
            let mut seen = HashSet::new();
            for item in items {
                if !seen.insert(item) {
                    self.at(at, format!("indicator {id}: item {item} is listed twice"));
                    ok = false;
                    continue;
                }
                let Some((label, _, _)) = labels(item) else {
                    self.at(
                        at,
                        format!(
                            "indicator {id}: item {item} is not a declared variable; declare it under [[variables]] or [[derived]]"
                        ),
                    );
                    ok = false;
                    continue;
                };
                // An item named as exports name them (`q/choice`) is written in backticks.
                let written = if is_plain_identifier(item) {
                    item.clone()
                } else {
                    format!("`{item}`")
                };
                let value = compile(self, &format!("({written}) {count}"));
                ok &= value.is_some();
                if let Some(v) = &value
                    && v.output_type() != ExprType::Bool
                {
                    self.at(
                        at,
                        format!(
                            "indicator {id}: `{item} {count}` must be true/false; write count as a comparison, e.g. count = \"== 1\""
                        ),
                    );
                    ok = false;
                }
                parts.push(part(
                    value,
                    parent.universe.clone(),
                    Category {
                        code: item.clone(),
                        label,
                        mention: true,
                    },
                ));
            }
        } else if let Some(value) = &r.value {
            let name = value.get_ref().trim();
            let declared = labels(name).filter(|(_, codes, _)| !codes.is_empty());
            let Some((_, codes, numeric)) = declared else {
                self.at(
                    value.span().start,
                    format!(
                        "indicator {id}: the value of a distribution must be a variable with declared codes, got `{name}`; give the variable codes, or define the expression as a [[derived]] variable with codes"
                    ),
                );
                return None;
            };
            let literal = |code: &str| {
                if numeric {
                    code.to_string()
                } else {
                    format!("\"{}\"", code.replace('\\', "\\\\").replace('"', "\\\""))
                }
            };
            let all: Vec<String> = codes.iter().map(|c| literal(&c.code)).collect();
            let universe = match &universe_text {
                Some(u) => format!("({u}) and ({name} in [{}])", all.join(", ")),
                None => format!("{name} in [{}]", all.join(", ")),
            };
            let universe = compile(self, &universe);
            ok &= universe.is_some();
            for c in &codes {
                let value = compile(self, &format!("{name} == {}", literal(&c.code)));
                ok &= value.is_some();
                parts.push(part(
                    value,
                    universe.clone(),
                    Category {
                        code: c.code.clone(),
                        label: c.label.clone(),
                        mention: false,
                    },
                ));
            }
        }
        ok.then_some(parts)
    }
}

fn lookup_vars(names: &Names, n: &str, note: &str) -> Result<VarInfo, String> {
    if let Some(info) = names.vars.get(n) {
        return Ok(info.clone());
    }
    if names.derived_order.iter().any(|d| d == n) && !note.is_empty() {
        return Err(format!("{n} is a derived variable; {note}"));
    }
    Err(format!(
        "unknown variable {n}: declare it under [[variables]] or [[derived]]"
    ))
}

/// How expressions see a variable.
pub(super) fn var_info(v: &Variable) -> VarInfo {
    let ty = if v.numeric_storage {
        ExprType::Num
    } else {
        ExprType::Text
    };
    let zero_one = match v.var_type {
        VarType::Categorical => {
            v.numeric_storage
                && v.codes
                    .iter()
                    .all(|c| matches!(numeric_code(&c.code), Some(x) if x == 0.0 || x == 1.0))
        }
        VarType::Integer => v.range.is_some_and(|(lo, hi)| lo >= 0.0 && hi <= 1.0),
        _ => false,
    };
    VarInfo {
        ty,
        codes: if v.var_type == VarType::Categorical {
            v.codes.iter().map(|c| c.code.clone()).collect()
        } else {
            Vec::new()
        },
        missing_codes: v.missing.iter().map(|m| m.code.clone()).collect(),
        zero_one,
    }
}
