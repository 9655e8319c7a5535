//! Tests of the XLSForm expression translation.
//!
//! The central test evaluates each skip rule two ways over many combinations of answers: with a
//! small evaluator of the XPath subset that follows JavaRosa (ODK Collect), where a blank field is
//! the empty string, and with cvsurvey's own expression machinery on the translation, where a
//! blank cell is not applicable or missing. The question must be asked (the translation true)
//! exactly where ODK Collect would ask it.

use super::*;
use crate::frame::{CellState, Column, ColumnData, Frame};
use crate::questionnaire::Questionnaire;
use crate::questionnaire::expr::{EvalState, Expr, ExprType, VarInfo};

fn select_one(name: &str, codes: &[&str]) -> FormField {
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    let numeric = codes.iter().all(|c| c.parse::<f64>().is_ok());
    FormField {
        name: name.into(),
        column: name.into(),
        kind: FieldKind::SelectOne { codes, numeric },
    }
}

fn plain(name: &str, column: &str, kind: FieldKind) -> FormField {
    FormField {
        name: name.into(),
        column: column.into(),
        kind,
    }
}

/// A household and victimization survey form: the fields the skip rules below use.
fn form() -> Vec<FormField> {
    let crimes = ["theft", "assault", "burglary", "other", "none"];
    vec![
        plain("age", "age", FieldKind::Number),
        plain("hh_size", "hh_size", FieldKind::Number),
        plain("income", "income", FieldKind::Number),
        plain("bribe_amount", "bribe amount", FieldKind::Number),
        select_one("consent", &["yes", "no"]),
        select_one("sex", &["1", "2"]),
        select_one("victim", &["1", "2", "3"]),
        select_one("education", &["0", "1", "2", "3", "4", "5"]),
        select_one("region", &["north", "south", "east"]),
        select_one("reported", &["01", "02", "other"]),
        plain(
            "crimes",
            "crimes",
            FieldKind::SelectMultiple {
                items: crimes
                    .iter()
                    .map(|c| SelectItem {
                        code: c.to_string(),
                        column: format!("crimes/{c}"),
                    })
                    .collect(),
            },
        ),
        plain("name", "name", FieldKind::Text),
        plain("calc_total", "calc_total", FieldKind::Calculated),
    ]
}

/// Answers tried for each field, blank first; boundary values of the rules below included.
fn candidates(name: &str) -> Vec<&'static str> {
    match name {
        "age" => vec![
            "", "0", "5", "12", "14", "15", "16", "18", "49", "50", "120",
        ],
        "hh_size" => vec!["", "0", "1", "2", "5"],
        "income" => vec!["", "0", "599.99", "600", "600.01", "12000"],
        "bribe_amount" => vec!["", "0", "10"],
        "consent" => vec!["", "yes", "no"],
        "sex" => vec!["", "1", "2"],
        "victim" => vec!["", "1", "2", "3"],
        "education" => vec!["", "0", "2", "3", "5"],
        "region" => vec!["", "north", "south", "east"],
        "reported" => vec!["", "01", "02", "other"],
        "crimes" => vec![
            "",
            "theft",
            "assault",
            "none",
            "theft burglary",
            "other assault theft",
        ],
        "name" => vec!["", "Ana", "x"],
        "calc_total" => vec!["", "0", "3"],
        _ => vec![""],
    }
}

fn lookup_in(fields: &[FormField]) -> Box<FieldLookup<'_>> {
    Box::new(move |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("no field named {name} in the survey sheet"))
    })
}

// ---------------------------------------------------------------------------------------------
// ODK Collect's evaluation (JavaRosa semantics), written independently of the translator.

#[derive(Debug, Clone)]
enum Xv {
    B(bool),
    N(f64),
    S(String),
}

fn odk_number(v: &Xv) -> f64 {
    match v {
        Xv::B(b) => f64::from(u8::from(*b)),
        Xv::N(x) => *x,
        Xv::S(s) => {
            let t = s.trim();
            let body = t.strip_prefix('-').unwrap_or(t);
            let ok = body.bytes().any(|b| b.is_ascii_digit())
                && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && body.matches('.').count() <= 1;
            if ok {
                t.parse().unwrap_or(f64::NAN)
            } else {
                f64::NAN
            }
        }
    }
}

fn odk_bool(v: &Xv) -> bool {
    match v {
        Xv::B(b) => *b,
        Xv::N(x) => x.abs() > 1e-12 && !x.is_nan(),
        Xv::S(s) => !s.is_empty(),
    }
}

fn odk_string(v: &Xv) -> String {
    match v {
        Xv::B(b) => b.to_string(),
        Xv::N(x) if x.is_nan() => "NaN".into(),
        Xv::N(x) => crate::frame::format_number(*x),
        Xv::S(s) => s.clone(),
    }
}

/// One respondent's answers: field name → raw answer ('' when blank).
type Answers<'s> = Vec<(&'s str, &'s str)>;

fn odk_eval(ast: &Ast, fields: &[FormField], answers: &Answers<'_>) -> Xv {
    let ev = |a: &Ast| odk_eval(a, fields, answers);
    match ast {
        Ast::Field(name) => {
            let raw = answers
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| *v);
            let f = fields.iter().find(|f| &f.name == name).expect("field");
            match f.kind {
                // Integer and decimal answers unpack to numbers; a blank is ''.
                FieldKind::Number if !raw.is_empty() => Xv::N(raw.parse().expect("number")),
                _ => Xv::S(raw.to_string()),
            }
        }
        Ast::Current => panic!("`.` outside a constraint"),
        Ast::Str(s) => Xv::S(s.clone()),
        Ast::Num(x) => Xv::N(*x),
        Ast::Neg(a) => Xv::N(-odk_number(&ev(a))),
        Ast::Bin(op, a, b) => {
            let (x, y) = (ev(a), ev(b));
            match op {
                Op::Or => Xv::B(odk_bool(&x) || odk_bool(&y)),
                Op::And => Xv::B(odk_bool(&x) && odk_bool(&y)),
                Op::Eq | Op::Ne => {
                    let eq = match (&x, &y) {
                        (Xv::B(_), _) | (_, Xv::B(_)) => odk_bool(&x) == odk_bool(&y),
                        (Xv::N(_), _) | (_, Xv::N(_)) => {
                            (odk_number(&x) - odk_number(&y)).abs() < 1e-12
                        }
                        (Xv::S(p), Xv::S(q)) => p == q,
                    };
                    Xv::B(eq == (*op == Op::Eq))
                }
                Op::Lt => Xv::B(odk_number(&x) < odk_number(&y)),
                Op::Le => Xv::B(odk_number(&x) <= odk_number(&y)),
                Op::Gt => Xv::B(odk_number(&x) > odk_number(&y)),
                Op::Ge => Xv::B(odk_number(&x) >= odk_number(&y)),
                Op::Add => Xv::N(odk_number(&x) + odk_number(&y)),
                Op::Sub => Xv::N(odk_number(&x) - odk_number(&y)),
                Op::Mul => Xv::N(odk_number(&x) * odk_number(&y)),
                Op::Div => Xv::N(odk_number(&x) / odk_number(&y)),
                Op::Mod => Xv::N(odk_number(&x) % odk_number(&y)),
            }
        }
        Ast::Call(name, args) => {
            let v: Vec<Xv> = args.iter().map(ev).collect();
            match name.as_str() {
                "true" => Xv::B(true),
                "false" => Xv::B(false),
                "not" => Xv::B(!odk_bool(&v[0])),
                "boolean" => Xv::B(odk_bool(&v[0])),
                "number" => Xv::N(odk_number(&v[0])),
                "selected" => {
                    let list = odk_string(&v[0]);
                    let choice = odk_string(&v[1]);
                    Xv::B(list.split_whitespace().any(|c| c == choice.trim()))
                }
                "count-selected" => Xv::N(odk_string(&v[0]).split_whitespace().count() as f64),
                "string-length" => Xv::N(odk_string(&v[0]).chars().count() as f64),
                "if" => {
                    if odk_bool(&v[0]) {
                        v[1].clone()
                    } else {
                        v[2].clone()
                    }
                }
                "coalesce" => {
                    if odk_string(&v[0]).is_empty() {
                        v[1].clone()
                    } else {
                        v[0].clone()
                    }
                }
                other => panic!("the test evaluator has no {other}()"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The same answers as cvsurvey data.

/// How a blank cell is stored: legitimately skipped, or item-missing.
#[derive(Clone, Copy)]
enum Blank {
    Skipped,
    Missing,
}

fn blank_state(b: Blank) -> CellState {
    match b {
        Blank::Skipped => CellState::NotAsked,
        Blank::Missing => CellState::DontKnow,
    }
}

fn num_column(name: &str, cells: &[(Option<f64>, Blank)]) -> Column {
    Column {
        name: name.into(),
        data: ColumnData::Num(cells.iter().map(|(v, _)| v.unwrap_or(f64::NAN)).collect()),
        state: cells
            .iter()
            .map(|(v, b)| {
                if v.is_some() {
                    CellState::Value
                } else {
                    blank_state(*b)
                }
            })
            .collect(),
    }
}

fn text_column(name: &str, cells: &[(Option<&str>, Blank)]) -> Column {
    let mut levels: Vec<String> = Vec::new();
    let mut codes = Vec::new();
    let mut state = Vec::new();
    for (v, b) in cells {
        match v {
            Some(s) => {
                let k = levels.iter().position(|l| l == s).unwrap_or_else(|| {
                    levels.push((*s).to_string());
                    levels.len() - 1
                });
                codes.push(k as u32);
                state.push(CellState::Value);
            }
            None => {
                codes.push(u32::MAX);
                state.push(blank_state(*b));
            }
        }
    }
    Column {
        name: name.into(),
        data: ColumnData::Text { codes, levels },
        state: state.into_iter().collect(),
    }
}

/// The data columns of `fields` for rows of answers, each blank stored as `blanks[row]` says.
fn frame_of(fields: &[&FormField], rows: &[(Answers<'_>, Vec<Blank>)]) -> Frame {
    let mut frame = Frame::new(rows.len());
    for (k, f) in fields.iter().enumerate() {
        let raw = |r: &(Answers<'_>, Vec<Blank>)| -> (Option<String>, Blank) {
            let v =
                r.0.iter()
                    .find(|(n, _)| *n == f.name)
                    .map_or("", |(_, v)| *v);
            ((!v.is_empty()).then(|| v.to_string()), r.1[k])
        };
        let cells: Vec<(Option<String>, Blank)> = rows.iter().map(raw).collect();
        let columns = match &f.kind {
            FieldKind::Number | FieldKind::Calculated => vec![num_column(
                &f.column,
                &cells
                    .iter()
                    .map(|(v, b)| (v.as_ref().map(|s| s.parse().expect("number")), *b))
                    .collect::<Vec<_>>(),
            )],
            FieldKind::SelectOne { numeric: true, .. } => vec![num_column(
                &f.column,
                &cells
                    .iter()
                    .map(|(v, b)| (v.as_ref().map(|s| s.parse().expect("code")), *b))
                    .collect::<Vec<_>>(),
            )],
            FieldKind::SelectOne { .. } | FieldKind::Text => vec![text_column(
                &f.column,
                &cells
                    .iter()
                    .map(|(v, b)| (v.as_deref(), *b))
                    .collect::<Vec<_>>(),
            )],
            FieldKind::SelectMultiple { items } => items
                .iter()
                .map(|item| {
                    let cells: Vec<(Option<f64>, Blank)> = cells
                        .iter()
                        .map(|(v, b)| {
                            let picked = v
                                .as_ref()
                                .map(|s| f64::from(u8::from(s.split(' ').any(|c| c == item.code))));
                            (picked, *b)
                        })
                        .collect();
                    num_column(&item.column, &cells)
                })
                .collect(),
        };
        for c in columns {
            frame.push(c).expect("distinct columns");
        }
    }
    frame
}

/// What the questionnaire would declare for each column of the form.
fn scope_of(fields: &[FormField]) -> impl Fn(&str) -> Result<VarInfo, String> + '_ {
    move |col: &str| {
        for f in fields {
            match &f.kind {
                FieldKind::SelectMultiple { items } => {
                    if items.iter().any(|i| i.column == col) {
                        return Ok(VarInfo {
                            ty: ExprType::Num,
                            codes: vec!["0".into(), "1".into()],
                            missing_codes: vec![],
                            zero_one: true,
                        });
                    }
                }
                _ if f.column != col => {}
                FieldKind::SelectOne { codes, numeric } => {
                    return Ok(VarInfo {
                        ty: if *numeric {
                            ExprType::Num
                        } else {
                            ExprType::Text
                        },
                        codes: codes
                            .iter()
                            .map(|c| if *numeric { numeric_code(c) } else { c.clone() })
                            .collect(),
                        missing_codes: vec![],
                        zero_one: false,
                    });
                }
                FieldKind::Text => return Ok(VarInfo::of_type(ExprType::Text)),
                _ => return Ok(VarInfo::of_type(ExprType::Num)),
            }
        }
        Err(format!("no column {col}"))
    }
}

fn fields_used(ast: &Ast, out: &mut Vec<String>) {
    match ast {
        Ast::Field(n) if !out.contains(n) => out.push(n.clone()),
        Ast::Neg(a) => fields_used(a, out),
        Ast::Bin(_, a, b) => {
            fields_used(a, out);
            fields_used(b, out);
        }
        Ast::Call(_, args) => args.iter().for_each(|a| fields_used(a, out)),
        _ => {}
    }
}

/// Every combination of the candidate answers of `names`, each stored three ways: blanks all
/// skipped, all missing, and alternating.
fn answer_rows<'s>(names: &'s [String]) -> Vec<(Answers<'s>, Vec<Blank>)> {
    let mut combos: Vec<Answers<'s>> = vec![Vec::new()];
    for n in names {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                candidates(n).into_iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((n.as_str(), v));
                    c
                })
            })
            .collect();
    }
    let mut rows = Vec::new();
    for c in combos {
        let k = names.len();
        rows.push((c.clone(), vec![Blank::Skipped; k]));
        rows.push((c.clone(), vec![Blank::Missing; k]));
        let mixed = (0..k)
            .map(|i| {
                if i % 2 == 0 {
                    Blank::Missing
                } else {
                    Blank::Skipped
                }
            })
            .collect();
        rows.push((c, mixed));
    }
    rows
}

/// Realistic `relevant` expressions, as found in pyxform's tests, the ODK documentation and
/// household and victimization survey forms.
const RELEVANTS: &[&str] = &[
    "${age} > 15",
    "${age} >= 18",
    "${age} < 5",
    "${age} >= 15 and ${age} <= 49",
    "${age}>=12 and ${sex}='2'",
    "${consent} = 'yes'",
    "${consent} != 'no'",
    "${consent} = 'yes' and ${age} >= 18",
    "${consent} = 'yes' or ${age} < 18",
    "${sex} = '2'",
    "${sex} = 2",
    "${sex} != '1'",
    "selected(${crimes}, 'theft')",
    "selected(${crimes}, 'theft') or selected(${crimes}, 'burglary')",
    "not(selected(${crimes}, 'none'))",
    "count-selected(${crimes}) > 1",
    "count-selected(${crimes}) >= 1 and not(selected(${crimes}, 'none'))",
    "count-selected(${crimes}) = 0",
    "${name} != ''",
    "${name} = ''",
    "string-length(${name}) > 0",
    "string-length(${name}) = 0",
    "not(${age} > 15)",
    "${hh_size} > 1",
    "${hh_size} - 1 > 0",
    "${income} div 12 > 50",
    "${income} * 12 >= 7200",
    "${victim} = 1 or ${victim} = 2",
    "${victim} != 3",
    "${education} >= 3",
    "${education} > '2'",
    "${region} = 'north' or ${region} = 'south'",
    "${region} != 'east' and ${consent} = 'yes'",
    "${region} = 'west'",
    "${region} != ''",
    "${reported} = '01'",
    "${reported} = 1",
    "${reported} > 1",
    "${reported} != 'other'",
    "${age} = ''",
    "${age} != ''",
    "${age} = '18'",
    "${age} = 'eighteen'",
    "(${age} >= 18 or ${hh_size} = 1) and ${consent} = 'yes'",
    "not(${consent} = 'no' or ${age} < 15)",
    "${age} != 15 and ${sex} = 1",
    "${age} >= ${hh_size}",
    "${age} = ${hh_size}",
    "${age} != ${hh_size}",
    "${consent}",
    "${age}",
    "true()",
    "if(${age} > 15, selected(${crimes}, 'theft'), ${consent} = 'yes')",
    "coalesce(${income}, 0) > 100",
    "-${age} < -15",
    "${age} > 15 and not(${consent} = 'no')",
    "${bribe_amount} > 0",
    "selected(${consent}, 'yes')",
    "${name} = 'Ana' or ${name} = 'x'",
    "not(${name} = '')",
    "${age} >= 15 and ${age} < 50 and ${sex} = 2",
    "number(${age}) > 15",
    "(${age} > 15) = false()",
    "(${age} > 15) = (${consent} = 'yes')",
    "selected(${crimes}, 'theft') != (${hh_size} > 2)",
    "not(${victim} = 1) and ${hh_size} > 1",
    "${crimes} = ''",
    "not(${sex} = 2 and ${age} > 49)",
    "${age} > 17 or not(${region} = 'north')",
];

/// The form as a drafted questionnaire: one variable per column, codes as the draft declares
/// them (a select_multiple item is a 0/1 categorical), plus one question `asked_k` per skip rule
/// with the translation as its `asked_if`.
fn questionnaire_of(fields: &[FormField], skip_rules: &[String]) -> Questionnaire {
    let mut toml = String::from("[questionnaire]\nid = \"xlsform\"\nversion = \"1\"\n");
    let mut var = |name: &str, body: String| {
        toml.push_str(&format!("\n[[variables]]\nname = \"{name}\"\n{body}\n"));
    };
    for f in fields {
        match &f.kind {
            FieldKind::Number => var(&f.column, "type = \"numeric\"".into()),
            FieldKind::Text => var(&f.column, "type = \"text\"".into()),
            FieldKind::SelectOne { codes, .. } => {
                let codes: Vec<String> =
                    codes.iter().map(|c| format!("\"{c}\" = \"{c}\"")).collect();
                var(&f.column, format!("codes = {{ {} }}", codes.join(", ")));
            }
            FieldKind::SelectMultiple { items } => {
                for i in items {
                    var(&i.column, "codes = { 0 = \"no\", 1 = \"yes\" }".into());
                }
            }
            FieldKind::Calculated => {}
        }
    }
    for (k, rule) in skip_rules.iter().enumerate() {
        var(
            &format!("asked_{k}"),
            format!("type = \"integer\"\nasked_if = '{rule}'"),
        );
    }
    Questionnaire::from_toml_str(&toml, std::path::Path::new("xlsform.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

/// The first set of answers where `asked` (the translation evaluated on the answers as data)
/// differs from ODK Collect's evaluation of `xpath`, if any.
fn disagreement(xpath: &str, asked: &Expr, fields: &[FormField]) -> Option<String> {
    let ast = parse(xpath).expect("parses");
    let mut names = Vec::new();
    fields_used(&ast, &mut names);
    let rows = answer_rows(&names);
    let used: Vec<&FormField> = names
        .iter()
        .map(|n| fields.iter().find(|f| &f.name == n).expect("field"))
        .collect();
    let frame = frame_of(&used, &rows);
    let ours = asked.eval_true(&frame).expect("evaluates");
    rows.iter().zip(ours).find_map(|((answers, _), ours)| {
        let odk = odk_bool(&odk_eval(&ast, fields, answers));
        (odk != ours).then(|| format!("answers {answers:?}: ODK asks {odk}, cvsurvey asks {ours}"))
    })
}

#[test]
fn relevant_asks_exactly_where_odk_collect_asks() {
    let fields = form();
    let lookup = lookup_in(&fields);
    assert!(RELEVANTS.len() >= 40);
    let translated: Vec<String> = RELEVANTS
        .iter()
        .map(|x| {
            translate_relevant(x, &*lookup)
                .unwrap_or_else(|u| panic!("{x}: not translated: {}", u.reason))
        })
        .collect();
    let q = questionnaire_of(&fields, &translated);
    for (k, xpath) in RELEVANTS.iter().enumerate() {
        let name = format!("asked_{k}");
        let v = q
            .variables
            .iter()
            .find(|v| v.name == name)
            .expect("variable");
        let asked = v.asked_if.as_ref().expect("asked_if");
        if let Some(d) = disagreement(xpath, asked, &fields) {
            panic!("{xpath} → {}: {d}", translated[k]);
        }
    }
}

#[test]
fn the_odk_comparison_catches_a_naive_translation() {
    let fields = form();
    let scope = scope_of(&fields);
    for (xpath, naive) in [
        ("not(${age} > 15)", "age <= 15"),
        ("${consent} != 'no'", "consent != \"no\""),
        ("${name} = ''", "name == \"\""),
        ("${age} = ${hh_size}", "age == hh_size"),
        (
            "count-selected(${crimes}) = 0",
            "sum(`crimes/theft`, `crimes/assault`) == 0",
        ),
    ] {
        let expr = Expr::parse(naive, &scope).expect("parses");
        assert!(
            disagreement(xpath, &expr, &fields).is_some(),
            "{xpath} vs {naive}"
        );
    }
}

/// Calculations as found in forms; their results are numbers or true/false.
const CALCULATIONS: &[&str] = &[
    "${age} * 12",
    "${hh_size} - 1",
    "${income} div 12",
    "${income} div ${hh_size}",
    "if(${age} >= 18, 1, 0)",
    "if(selected(${crimes}, 'theft'), 1, 0)",
    "count-selected(${crimes})",
    "coalesce(${income}, 0)",
    "${age} > 15",
    "${consent} = 'yes'",
    "not(${consent} = 'no')",
    "selected(${crimes}, 'theft') + selected(${crimes}, 'assault')",
    "-${age}",
    "number(${age}) + 1",
    "${sex}",
    "${age} + ${hh_size}",
    "if(${consent} = 'yes', ${income}, 0)",
    "${calc_total} * 2",
    "(${age} - 15) * (${hh_size} + 1)",
    "${age} - ${hh_size} - 1",
    "${income} div (${hh_size} * 2)",
];

/// Where ODK's result is a number or true/false, ours is that value; where ODK's is NaN,
/// Infinity or '' (a blank input), ours is unknown.
#[test]
fn calculations_give_odk_values_and_unknown_where_odk_has_none() {
    let fields = form();
    let lookup = lookup_in(&fields);
    let scope = scope_of(&fields);
    for &xpath in CALCULATIONS {
        let translated = translate_calculation(xpath, &*lookup)
            .unwrap_or_else(|u| panic!("{xpath}: not translated: {}", u.reason));
        let expr = Expr::parse(&translated, &scope)
            .unwrap_or_else(|e| panic!("{xpath} → {translated}: {}", e.message));
        let ast = parse(xpath).expect("parses");
        let mut names = Vec::new();
        fields_used(&ast, &mut names);
        let rows = answer_rows(&names);
        let used: Vec<&FormField> = names
            .iter()
            .map(|n| fields.iter().find(|f| &f.name == n).expect("field"))
            .collect();
        let ours = expr.eval(&frame_of(&used, &rows)).expect("evaluates");
        for (r, (answers, _)) in rows.iter().enumerate() {
            let odk = match odk_eval(&ast, &fields, answers) {
                Xv::B(b) => Some(f64::from(u8::from(b))),
                Xv::S(s) if s.is_empty() => None,
                v => Some(odk_number(&v)).filter(|x| x.is_finite()),
            };
            let got = (ours.state[r] == EvalState::Value).then_some(ours.values[r]);
            let same = match (odk, got) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                (None, None) => true,
                _ => false,
            };
            assert!(
                same,
                "{xpath} → {translated}: answers {answers:?}: ODK {odk:?}, cvsurvey {got:?}"
            );
        }
    }
}

#[test]
fn calculations_read_plainly() {
    let fields = form();
    let lookup = lookup_in(&fields);
    for (xpath, expected) in [
        ("${age} * 12", "age * 12"),
        ("${income} div (${hh_size} * 2)", "income / (hh_size * 2)"),
        ("${age} - (${hh_size} - 1)", "age - (hh_size - 1)"),
        (
            "if(${age} >= 18, 1, 0)",
            "if(coalesce(age >= 18, false), 1, 0)",
        ),
        ("coalesce(${income}, 0)", "coalesce(income, 0)"),
        ("${consent} = 'yes'", "coalesce(consent == \"yes\", false)"),
        ("${calc_total} * 2", "calc_total * 2"),
        ("${age} > 15", "coalesce(age > 15, false)"),
        (
            "count-selected(${crimes}) + 1",
            "coalesce(sum(`crimes/theft`, `crimes/assault`, `crimes/burglary`, `crimes/other`, `crimes/none`), 0) + 1",
        ),
        ("-${age}", "-age"),
        ("3 + 4", "7"),
    ] {
        assert_eq!(
            translate_calculation(xpath, &*lookup).as_deref(),
            Ok(expected),
            "{xpath}"
        );
    }
}

#[test]
fn constraint_ranges_are_inclusive_bounds_on_the_current_field() {
    let inf = f64::INFINITY;
    for (xpath, expected) in [
        (". >= 0 and . <= 120", Some((0.0, 120.0))),
        (".>=0 and .<=120", Some((0.0, 120.0))),
        (". <= 99", Some((-inf, 99.0))),
        (". >= -1", Some((-1.0, inf))),
        ("0 <= . and 120 >= .", Some((0.0, 120.0))),
        ("(. >= 0) and (. <= 5)", Some((0.0, 5.0))),
        (". >= 0 and . >= 5 and . <= 10", Some((5.0, 10.0))),
        (". >= 1.5", Some((1.5, inf))),
        // Strict bounds are a range only for whole numbers, which the constraint cannot tell.
        (". > 0", None),
        (". >= 0 and . < 120", None),
        (". != 5", None),
        (". >= 0 or . = 999", None),
        (". >= 10 and . <= 5", None),
        ("${age} >= 0", None),
        ("regex(., '^[0-9]+$')", None),
        (". >= 0 and . <= 120 and . != 99", None),
        (". >= ${age}", None),
        (". >= '0'", None),
        ("", None),
        (". >=", None),
    ] {
        assert_eq!(constraint_range(xpath), expected, "{xpath}");
    }
}

#[test]
fn translations_read_as_a_person_would_write_them() {
    let fields = form();
    let lookup = lookup_in(&fields);
    for (xpath, expected) in [
        ("${age} > 15", "age > 15"),
        ("${age} >= 15 and ${age} <= 49", "age >= 15 and age <= 49"),
        ("${sex} = '2'", "sex == 2"),
        ("${consent} = 'yes'", "consent == \"yes\""),
        ("${consent} != 'no'", "coalesce(consent != \"no\", true)"),
        ("not(${age} > 15)", "coalesce(age <= 15, true)"),
        ("${name} != ''", "answered(name)"),
        ("${name} = ''", "not answered(name)"),
        ("string-length(${name}) > 0", "answered(name)"),
        ("selected(${crimes}, 'theft')", "`crimes/theft` == 1"),
        ("selected(${crimes}, 'arson')", "false"),
        ("${region} = 'west'", "false"),
        ("${victim} = 1 or ${victim} = 2", "victim in [1, 2]"),
        (
            "${region} != 'east' and ${consent} = 'yes'",
            "coalesce(region != \"east\", true) and consent == \"yes\"",
        ),
        ("${bribe_amount} > 0", "`bribe amount` > 0"),
        (
            "${age} > 15 and not(${consent} = 'no')",
            "age > 15 and coalesce(consent != \"no\", true)",
        ),
        (
            "count-selected(${crimes}) > 1",
            "coalesce(sum(`crimes/theft`, `crimes/assault`, `crimes/burglary`, `crimes/other`, \
             `crimes/none`), 0) > 1",
        ),
        ("${reported} = 1", "reported == \"01\""),
        ("${reported} > 1", "reported == \"02\""),
        ("${education} >= 3", "education >= 3"),
        ("${age} != 5", "coalesce(age != 5, true)"),
        (
            "${age} = ${hh_size}",
            "age == hh_size or (not answered(age) and not answered(hh_size))",
        ),
        ("${age}", "age != 0"),
        ("${consent}", "answered(consent)"),
        ("${victim} != 3", "coalesce(victim != 3, true)"),
        ("${victim} = 1 or ${victim} = 3", "victim in [1, 3]"),
        (
            "${hh_size} != 1 and ${age} > 2",
            "coalesce(hh_size != 1, true) and age > 2",
        ),
        ("count-selected(${sex}) = 1", "if(answered(sex), 1, 0) == 1"),
        (
            "(${age} >= 18 or ${hh_size} = 1) and ${consent} = 'yes'",
            "(age >= 18 or hh_size == 1) and consent == \"yes\"",
        ),
    ] {
        assert_eq!(
            translate_relevant(xpath, &*lookup).as_deref(),
            Ok(expected),
            "{xpath}"
        );
    }
}

fn reason_relevant(xpath: &str) -> String {
    let fields = form();
    let lookup = lookup_in(&fields);
    match translate_relevant(xpath, &*lookup) {
        Ok(t) => panic!("{xpath} was translated as {t}"),
        Err(u) => u.reason,
    }
}

#[test]
fn what_is_not_translated_says_why() {
    for (xpath, says) in [
        (
            "jr:choice-name(${sex}, '${sex}')",
            "function jr:choice-name() is not translated",
        ),
        (
            "regex(${name}, '[a-z]+')",
            "function regex() is not translated",
        ),
        (
            "int(${income}) > 3",
            "int() is not translated: cvsurvey expressions have no rounding",
        ),
        ("round(${income}, 0) > 3", "round() is not translated"),
        ("${age} mod 2 = 0", "`mod` is not translated"),
        (
            "${age} div ${hh_size} > 2",
            "division by a field in a skip rule",
        ),
        (
            "${unknown_q} = 1",
            "${unknown_q}: no field named unknown_q in the survey sheet",
        ),
        (
            "${calc_total} > 2",
            "${calc_total} is a calculate field: a skip rule cannot use a derived variable",
        ),
        (
            "${name} = 3",
            "${name} is a text or date field compared as a number",
        ),
        (
            "${name} > 'a'",
            "${name} is a text or date field compared as a number",
        ),
        (
            "${crimes} = 'theft'",
            "${crimes} is a select_multiple compared with a value",
        ),
        (
            "${name} + 1 > 2",
            "${name} is a text field used as a number",
        ),
        (
            "string-length(${name}) > 3",
            "depends on the length of the answer",
        ),
        (
            "if(${age} > 15, ${age}, 0) > 3",
            "if() choosing between values",
        ),
        (
            "coalesce(${age}, ${hh_size}) > 3",
            "coalesce() in a skip rule is translated only",
        ),
        (
            ". > 3",
            "`.` (the current field) is translated only in a constraint",
        ),
        (
            "/data/age > 3",
            "path expressions (`/` at character 1) are not translated",
        ),
        (
            "../age > 3",
            "path expressions (`..` at character 1) are not translated",
        ),
        ("age > 3", "path expressions (`age` at character 1)"),
        (
            "${age} > ",
            "syntax error at character 10: expected a value, found the end",
        ),
        ("(${age} > 3", "syntax error at character 12: expected `)`"),
        (
            "${age} > 3)",
            "syntax error at character 11: expected an operator or the end, found `)`",
        ),
        (
            "${consent} = 'yes",
            "syntax error at character 14: text is not closed",
        ),
        (
            "${age} # 3",
            "syntax error at character 8: unexpected character `#`",
        ),
        ("${} = 1", "syntax error at character 1: empty field name"),
        ("", "the expression is empty"),
        (
            "selected(${crimes})",
            "selected() takes 2 arguments, found 1",
        ),
        (
            "selected(${name}, 'a')",
            "selected(${name}, ...) is translated only for a select field",
        ),
        (
            "(${age} > 15) < true()",
            "ordering true/false values is not translated",
        ),
        (
            "${name} = ${age}",
            "a text field compared with a number, or ordered",
        ),
    ] {
        let reason = reason_relevant(xpath);
        assert!(reason.contains(says), "{xpath}: {reason}");
    }
    let deep = format!("{}1{}", "(".repeat(300), ")".repeat(300));
    assert!(reason_relevant(&deep).contains("nested more than 200 levels"));
    let minus = format!("{}1 > 0", "-".repeat(300));
    assert!(reason_relevant(&minus).contains("nested more than 200 levels"));
    let chain = vec!["${age} = 1"; 5000].join(" or ");
    assert!(reason_relevant(&chain).contains("nested more than 200 levels"));
    let fields = form();
    let lookup = lookup_in(&fields);
    let long_but_real = (0..120)
        .map(|k| format!("${{age}} = {k}"))
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(translate_relevant(&long_but_real, &*lookup).is_ok());
    let backtick = [plain("q", "q`1", FieldKind::Number)];
    let lookup_bt = lookup_in(&backtick);
    assert!(
        translate_relevant("${q} > 1", &*lookup_bt)
            .is_err_and(|u| u.reason.contains("contains a backtick"))
    );
    assert!(
        translate_calculation("concat(${name}, 'x')", &*lookup)
            .is_err_and(|u| u.reason == "function concat() is not translated")
    );
    assert!(
        translate_calculation("'abc'", &*lookup).is_err_and(|u| u.reason.contains("gives text"))
    );
    assert!(
        translate_calculation("if(${calc_total} = 'yes', 1, 0)", &*lookup)
            .is_err_and(|u| u.reason.contains("compared with the text 'yes'"))
    );
    assert!(
        translate_calculation("${name}", &*lookup)
            .is_err_and(|u| u.reason.contains("gives the text of ${name}"))
    );
}

/// A small seeded generator (xorshift64), so that the random skip rules are the same each run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'v>(&mut self, v: &[&'v str]) -> &'v str {
        v[self.below(v.len())]
    }
}

/// A random skip rule over the form: comparisons of fields with literals (answers, codes, '',
/// numbers given as text), of fields with fields, arithmetic, the select functions, `not`,
/// `and`, `or`.
fn random_rule(rng: &mut Rng, depth: usize) -> String {
    let fields = [
        "age", "hh_size", "income", "consent", "sex", "region", "reported", "name",
    ];
    let ops = ["=", "!=", "<", "<=", ">", ">="];
    if depth > 0 && rng.below(3) > 0 {
        let (a, b) = (random_rule(rng, depth - 1), random_rule(rng, depth - 1));
        return match rng.below(7) {
            0 => format!("not({a})"),
            1 | 2 => format!("({a}) or ({b})"),
            3 => format!("if({a}, {b}, {})", random_rule(rng, depth - 1)),
            4 => format!("({a}) = ({b})"),
            _ => format!("{a} and {b}"),
        };
    }
    let f = rng.pick(&fields);
    let op = rng.pick(&ops);
    let literal = |rng: &mut Rng| {
        let pool = candidates(f);
        match rng.below(5) {
            0 => "''".to_string(),
            1 => rng.pick(&["0", "1", "2", "15", "-1", "600"]).to_string(),
            2 => format!("'{}'", rng.pick(&["1", "01", "2.0", "yes", "x"])),
            _ => format!("'{}'", rng.pick(&pool)),
        }
    };
    match rng.below(12) {
        0 => format!("${{{f}}} {op} ${{{}}}", rng.pick(&fields)),
        9 => format!(
            "coalesce(${{{}}}, 0) {op} {}",
            rng.pick(&["age", "income"]),
            literal(rng)
        ),
        10 => format!("${{age}} - ${{hh_size}} * 2 {op} {}", literal(rng)),
        11 => format!(
            "selected(${{{}}}, '{}')",
            rng.pick(&["sex", "consent"]),
            rng.pick(&["2", "yes", "x"])
        ),
        1 => format!("${{{f}}} + 1 {op} {}", literal(rng)),
        2 => format!(
            "selected(${{crimes}}, '{}')",
            rng.pick(&["theft", "none", "arson"])
        ),
        3 => format!("count-selected(${{crimes}}) {op} {}", rng.below(3)),
        4 => format!("string-length(${{{f}}}) {op} {}", rng.below(2)),
        5 => format!("${{{f}}}"),
        _ => format!("${{{f}}} {op} {}", literal(rng)),
    }
}

#[test]
fn random_skip_rules_ask_exactly_where_odk_collect_asks() {
    let fields = form();
    let lookup = lookup_in(&fields);
    let scope = scope_of(&fields);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut translated = 0;
    for _ in 0..2000 {
        let xpath = random_rule(&mut rng, 2);
        let Ok(text) = translate_relevant(&xpath, &*lookup) else {
            continue;
        };
        translated += 1;
        let expr = Expr::parse(&text, &scope)
            .unwrap_or_else(|e| panic!("{xpath} → {text}: {}", e.message));
        if let Some(d) = disagreement(&xpath, &expr, &fields) {
            panic!("{xpath} → {text}: {d}");
        }
    }
    // Most rules are within the translated subset (the rest compare text fields as numbers).
    assert!(translated > 1200, "{translated} of 2000 translated");
}

#[test]
fn long_chains_stay_within_the_depth_cvsurvey_parses() {
    let fields = form();
    let lookup = lookup_in(&fields);
    let scope = scope_of(&fields);
    for sep in [" or ", " and "] {
        let xpath = (0..150)
            .map(|k| match k % 3 {
                0 => format!("${{age}} > {k}"),
                1 => format!("${{hh_size}} != {}", k % 7),
                _ => format!("not(${{income}} < {k})"),
            })
            .collect::<Vec<_>>()
            .join(sep);
        let text = translate_relevant(&xpath, &*lookup).expect("translates");
        let expr = Expr::parse(&text, &scope).unwrap_or_else(|e| panic!("{text}: {}", e.message));
        assert_eq!(disagreement(&xpath, &expr, &fields), None, "{text}");
    }
}
