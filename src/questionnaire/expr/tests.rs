//! Unit tests of the expression language: typing, errors and the missing-aware truth tables.

use super::*;
use crate::frame::{CellState, Column, ColumnData, Frame};

/// Cell shorthand: a number, NotAsked (`S`kipped) or don't know (`M`issing).
#[derive(Clone, Copy)]
enum C {
    V(f64),
    S,
    M,
}

fn num_col(name: &str, cells: &[C]) -> Column {
    let values = cells
        .iter()
        .map(|c| if let C::V(x) = c { *x } else { f64::NAN })
        .collect();
    let state = cells
        .iter()
        .map(|c| match c {
            C::V(_) => CellState::Value,
            C::S => CellState::NotAsked,
            C::M => CellState::DontKnow,
        })
        .collect();
    Column {
        name: name.into(),
        data: ColumnData::Num(values),
        state,
    }
}

fn text_col(name: &str, cells: &[Option<&str>]) -> Column {
    let mut levels: Vec<String> = Vec::new();
    let mut codes = Vec::new();
    let mut state = Vec::new();
    for c in cells {
        match c {
            Some(s) => {
                let k = match levels.iter().position(|l| l == s) {
                    Some(k) => k,
                    None => {
                        levels.push((*s).to_string());
                        levels.len() - 1
                    }
                };
                codes.push(k as u32);
                state.push(CellState::Value);
            }
            None => {
                codes.push(u32::MAX);
                state.push(CellState::NoResponse);
            }
        }
    }
    Column {
        name: name.into(),
        data: ColumnData::Text { codes, levels },
        state: state.into(),
    }
}

fn scope(name: &str) -> Result<VarInfo, String> {
    match name {
        "a" | "b" | "c" | "n" | "m" => Ok(VarInfo::of_type(ExprType::Num)),
        "flag" => Ok(VarInfo::of_type(ExprType::Bool)),
        "sch.wide" | "t" => Ok(VarInfo::of_type(ExprType::Text)),
        "coded" => Ok(VarInfo {
            ty: ExprType::Num,
            codes: vec!["1".into(), "2".into()],
            missing_codes: vec!["8".into(), "9".into()],
            zero_one: false,
        }),
        "stype" => Ok(VarInfo {
            ty: ExprType::Text,
            codes: vec!["E".into(), "H".into(), "M".into()],
            missing_codes: vec![],
            zero_one: false,
        }),
        _ => Err(format!("unknown variable {name}")),
    }
}

fn parse(src: &str) -> Result<Expr, ExprError> {
    Expr::parse(src, &scope)
}

/// Every combination of the three states for a and b: V1, V0, S, M.
fn ab_frame() -> Frame {
    let cells = [C::V(1.0), C::V(0.0), C::S, C::M];
    let mut a = Vec::new();
    let mut b = Vec::new();
    for x in cells {
        for y in cells {
            a.push(x);
            b.push(y);
        }
    }
    let mut f = Frame::new(16);
    f.push(num_col("a", &a)).expect("push");
    f.push(num_col("b", &b)).expect("push");
    f
}

/// Render a result as `1`, `0`, `S` (not applicable), `M` (missing), or the number.
fn show(col: &EvalColumn) -> String {
    col.values
        .iter()
        .zip(&col.state)
        .map(|(x, s)| match s {
            EvalState::Value => crate::frame::format_number(*x),
            EvalState::NotApplicable => "S".into(),
            EvalState::Missing => "M".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(src: &str, f: &Frame) -> String {
    show(
        &parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(f)
            .unwrap_or_else(|e| panic!("{src}: {e}")),
    )
}

// Rows of ab_frame, a-major: a ∈ {1, 0, S, M} × b ∈ {1, 0, S, M}.

#[test]
fn kleene_and_or() {
    let f = ab_frame();
    assert_eq!(
        run("a == 1 and b == 1", &f),
        "1 0 S M  0 0 0 0  S 0 S M  M 0 M M".replace("  ", " ")
    );
    assert_eq!(
        run("a == 1 or b == 1", &f),
        "1 1 1 1  1 0 S M  1 S S M  1 M M M".replace("  ", " ")
    );
    assert_eq!(run("not a == 1", &f), "0 0 0 0 1 1 1 1 S S S S M M M M");
}

#[test]
fn comparisons_and_arithmetic_propagate() {
    let f = ab_frame();
    assert_eq!(run("a + b", &f), "2 1 S M 1 0 S M S S S M M M M M");
    assert_eq!(run("a == b", &f), "1 0 S M 0 1 S M S S S M M M M M");
    assert_eq!(run("a in [1]", &f), "1 1 1 1 0 0 0 0 S S S S M M M M");
    assert_eq!(run("a not in [1]", &f), "0 0 0 0 1 1 1 1 S S S S M M M M");
    // division by zero is unknown
    assert_eq!(run("1 / b", &f), "1 M S M 1 M S M 1 M S M 1 M S M");
    assert_eq!(run("-a * 2 + 1", &f), "-1 -1 -1 -1 1 1 1 1 S S S S M M M M");
}

#[test]
fn aggregates_skip_not_applicable() {
    let f = ab_frame();
    assert_eq!(
        run("any(a == 1, b == 1)", &f),
        "1 1 1 1 1 0 0 M 1 0 S M 1 M M M"
    );
    assert_eq!(
        run("all(a == 1, b == 1)", &f),
        "1 0 1 M 0 0 0 0 1 0 S M M 0 M M"
    );
    assert_eq!(run("sum(a, b)", &f), "2 1 1 M 1 0 0 M 1 0 S M M M M M");
    assert_eq!(
        run("count(a == 1, b == 1)", &f),
        "2 1 1 M 1 0 0 M 1 0 S M M M M M"
    );
    assert_eq!(run("min(a, b)", &f), "1 0 1 M 0 0 0 M 1 0 S M M M M M");
    assert_eq!(run("max(a, b)", &f), "1 1 1 M 1 0 0 M 1 0 S M M M M M");
    // cap propagates like arithmetic
    assert_eq!(run("cap(a, b)", &f), "1 0 S M 0 0 S M S S S M M M M M");
}

#[test]
fn if_coalesce_and_state_functions() {
    let f = ab_frame();
    assert_eq!(
        run("if(a == 1, b, 5)", &f),
        "1 0 S M 5 5 5 5 S S S S M M M M"
    );
    assert_eq!(run("coalesce(a, b)", &f), "1 1 1 1 0 0 0 0 1 0 S M 1 0 M M");
    assert_eq!(run("answered(a)", &f), "1 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0");
    assert_eq!(run("missing(a)", &f), "0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1");
    assert_eq!(run("skipped(a + b)", &f), "0 0 1 0 0 0 1 0 1 1 1 0 0 0 0 0");
}

#[test]
fn text_comparisons() {
    let mut f = Frame::new(4);
    f.push(text_col(
        "sch.wide",
        &[Some("Yes"), Some("No"), None, Some("Yes")],
    ))
    .expect("push");
    f.push(text_col(
        "t",
        &[Some("No"), Some("No"), Some("Yes"), Some("Maybe")],
    ))
    .expect("push");
    f.push(text_col(
        "stype",
        &[Some("E"), Some("H"), Some("M"), Some("E")],
    ))
    .expect("push");
    assert_eq!(run("sch.wide == \"Yes\"", &f), "1 0 M 1");
    assert_eq!(run("\"Yes\" != sch.wide", &f), "0 1 M 0");
    assert_eq!(run("sch.wide == t", &f), "0 1 M 0");
    assert_eq!(run("t in [\"Yes\", \"Maybe\"]", &f), "0 0 1 1");
    assert_eq!(run("stype not in [\"E\"]", &f), "0 1 1 0");
    assert_eq!(run("answered(sch.wide)", &f), "1 1 0 1");
    // a literal absent from the data is simply never equal
    assert_eq!(run("t == \"Absent\"", &f), "0 0 0 0");
}

#[test]
fn bool_variables_and_types() {
    let mut f = Frame::new(3);
    f.push(num_col("flag", &[C::V(1.0), C::V(0.0), C::S]))
        .expect("push");
    f.push(num_col("a", &[C::V(3.0), C::V(4.0), C::V(5.0)]))
        .expect("push");
    assert_eq!(run("flag and a > 3", &f), "0 0 S");
    assert_eq!(run("flag + a", &f), "4 4 S");
    let e = parse("flag or a == 1").expect("parses");
    assert_eq!(e.output_type(), ExprType::Bool);
    assert_eq!(e.variables(), vec!["flag".to_string(), "a".to_string()]);
    assert!(e.is_zero_one());
    assert!(!parse("a + 1").expect("parses").is_zero_one());
    assert!(parse("if(a > 1, 1, 0)").expect("parses").is_zero_one());
    assert_eq!(
        parse("count(a > 1)").expect("parses").output_type(),
        ExprType::Num
    );
}

#[test]
fn type_errors() {
    for (src, needle) in [
        ("t == 1", "cannot compare text"),
        ("t < \"a\"", "compares numbers"),
        ("a and b == 1", "needs true/false"),
        ("any(a)", "needs true/false"),
        ("sum(t)", "needs a number"),
        ("t", "text value can only be compared"),
        ("if(a, 1, 2)", "needs true/false"),
        ("cap(a)", "takes 2 arguments"),
        ("foo(a)", "unknown function"),
        ("zzz == 1", "unknown variable zzz"),
        ("coded == 8", "missing-value code of coded"),
        ("coded in [1, 3]", "not a code of coded"),
        ("stype == \"X\"", "not a code of stype"),
        ("a in [\"x\"]", "list of texts"),
        ("t in [1]", "double quotes"),
        ("a == 1 == 1", "chained"),
        ("[1, 2]", "a list can only follow"),
        ("a in b", "needs a list"),
        ("a +", "found the end"),
        ("(a", "`)`"),
        ("", "empty"),
        ("a b", "unexpected"),
    ] {
        match parse(src) {
            Ok(_) => panic!("{src:?} should not parse"),
            Err(e) => assert!(
                e.message.contains(needle),
                "{src:?}: {} (wanted {needle:?})",
                e.message
            ),
        }
    }
}

#[test]
fn error_positions() {
    let e = parse("a == 1 and zzz == 2").expect_err("unknown variable");
    assert_eq!((e.start, e.end), (11, 14));
    let e = parse("any(a == 1, b)").expect_err("not bool");
    assert_eq!((e.start, e.end), (12, 13));
}

#[test]
fn missing_column() {
    let f = Frame::new(2);
    match parse("a == 1").expect("parses").eval(&f) {
        Err(EvalError::MissingColumn { column, .. }) => assert_eq!(column, "a"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_input_does_not_panic() {
    let deep_parens = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    let deep_not = format!("{} a == 1", "not ".repeat(100_000));
    let long_sum = vec!["a"; 100_000].join(" + ");
    let long_any = format!("any({})", vec!["a == 1"; 10_000].join(", "));
    let minus = format!("{}1", "-".repeat(100_000));
    // A list literal opening lists inside itself: once a stack overflow at ~15,400 levels.
    let deep_list = format!("a in {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    for src in [
        deep_parens.as_str(),
        &deep_not,
        &long_sum,
        &minus,
        &deep_list,
    ] {
        assert!(parse(src).is_err());
    }
    let e = parse(&deep_list).expect_err("deep list");
    assert!(e.message.contains("nested more than"), "{}", e.message);
    assert!(parse(&long_any).is_ok());
    for src in [
        "\u{0}",
        "é == 1",
        "a == \"é",
        "`",
        "[",
        "]",
        "in",
        "not",
        ",",
        "a(",
        "any(,)",
        "1..2",
        "a in [",
        "\\",
    ] {
        let _ = parse(src);
    }
    // every prefix of a valid expression
    let full = "if(any(a == 1, b in [1, 2]) and not missing(c), cap(n, 5) / 2, coalesce(m, -1))";
    for (i, _) in full.char_indices() {
        let _ = parse(&full[..i]);
    }
    assert!(parse(full).is_ok());
}
