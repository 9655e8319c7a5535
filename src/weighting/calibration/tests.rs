//! Calibration against R `survey` 4.1.1 (R 4.2.2): api (apistrat) and the demo survey, plus
//! identities and bad-input cases.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::design::{Design, DesignSpec, LonelyPsu};
use crate::frame::{CellState, Column, ColumnData, Frame};
use crate::weighting::margins::Margins;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A CSV file as columns of strings (header order), blanks as "".
fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let mut cols = vec![Vec::new(); header.len()];
    for rec in r.records() {
        let rec = rec.unwrap();
        for (c, f) in rec.iter().enumerate() {
            cols[c].push(f.to_string());
        }
    }
    (header, cols)
}

fn column(name: &str, values: &[String]) -> Column {
    let numeric = values
        .iter()
        .all(|v| v.is_empty() || v.parse::<f64>().is_ok());
    let state: Vec<CellState> = values
        .iter()
        .map(|v| {
            if v.is_empty() {
                CellState::NotAsked
            } else {
                CellState::Value
            }
        })
        .collect();
    let data = if numeric {
        ColumnData::Num(
            values
                .iter()
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect(),
        )
    } else {
        let mut levels: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let codes = values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    return u32::MAX;
                }
                *index.entry(v.clone()).or_insert_with(|| {
                    levels.push(v.clone());
                    (levels.len() - 1) as u32
                })
            })
            .collect();
        ColumnData::Text { codes, levels }
    };
    Column {
        name: name.to_string(),
        data,
        state: state.into(),
    }
}

fn read_frame(path: &Path) -> Frame {
    let (header, cols) = read_table(path);
    let mut f = Frame::new(cols.first().map_or(0, Vec::len));
    for (h, c) in header.iter().zip(&cols) {
        f.push(column(h, c)).unwrap();
    }
    f
}

fn small_frame(cols: &[(&str, &[&str])]) -> Frame {
    let mut f = Frame::new(cols[0].1.len());
    for (name, vals) in cols {
        let v: Vec<String> = vals.iter().map(|s| s.to_string()).collect();
        f.push(column(name, &v)).unwrap();
    }
    f
}

fn num(frame: &Frame, name: &str, rows: &[usize]) -> Vec<f64> {
    match &frame.column(name).unwrap().data {
        ColumnData::Num(v) => rows.iter().map(|&r| v[r]).collect(),
        _ => panic!("{name} is not numeric"),
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Mean score z_i = w_i (y_i − ȳ) / Σw over rows with `in_dom`, 0 elsewhere; returns (ȳ, z).
fn mean_scores(w: &[f64], y: &[f64], in_dom: &[bool]) -> (f64, Vec<f64>) {
    let sw: f64 = (0..w.len()).filter(|&i| in_dom[i]).map(|i| w[i]).sum();
    let swy: f64 = (0..w.len())
        .filter(|&i| in_dom[i])
        .map(|i| w[i] * y[i])
        .sum();
    let m = swy / sw;
    let z = (0..w.len())
        .map(|i| {
            if in_dom[i] {
                w[i] * (y[i] - m) / sw
            } else {
                0.0
            }
        })
        .collect();
    (m, z)
}

struct Reference {
    rows: Vec<HashMap<String, String>>,
}

impl Reference {
    fn load(path: &Path) -> Reference {
        let (header, cols) = read_table(path);
        let n = cols[0].len();
        let rows = (0..n)
            .map(|i| {
                header
                    .iter()
                    .zip(&cols)
                    .map(|(h, c)| (h.clone(), c[i].clone()))
                    .collect()
            })
            .collect();
        Reference { rows }
    }

    /// (estimate, se) of the first row matching all `(column, value)` pairs.
    fn get(&self, keys: &[(&str, &str)]) -> (f64, f64) {
        let r = self
            .rows
            .iter()
            .find(|r| keys.iter().all(|(k, v)| r[*k] == *v))
            .unwrap_or_else(|| panic!("no reference row {keys:?}"));
        (r["estimate"].parse().unwrap(), r["se"].parse().unwrap())
    }
}

fn api_spec(scheme: &str) -> (CalibrationSpec, &'static str) {
    match scheme {
        "poststrat" => (
            CalibrationSpec::new(CalMethod::PostStratify),
            "api_poststrata_stype.csv",
        ),
        "rake_stype_schwide" => (
            CalibrationSpec::new(CalMethod::Rake),
            "api_stype_schwide.csv",
        ),
        "cal_linear" => (
            CalibrationSpec::new(CalMethod::Linear),
            "api_stype_api99.csv",
        ),
        "cal_raking" => (
            CalibrationSpec::new(CalMethod::Raking),
            "api_stype_api99.csv",
        ),
        "cal_logit_0.7_1.7" => (
            CalibrationSpec::new(CalMethod::Logit).with_bounds(0.7, 1.7),
            "api_stype_api99.csv",
        ),
        _ => unreachable!(),
    }
}

const API_SCHEMES: [&str; 5] = [
    "poststrat",
    "rake_stype_schwide",
    "cal_linear",
    "cal_raking",
    "cal_logit_0.7_1.7",
];

#[test]
fn api_weights_and_ses_match_r() {
    let frame = read_frame(&root().join("fixtures/api/apistrat.csv"));
    let rows: Vec<usize> = (0..frame.n_rows()).collect();
    let pw = num(&frame, "pw", &rows);
    let (wh, wc) = read_table(&root().join("fixtures/weighting/apistrat_calibrated_weights.csv"));
    let reference = Reference::load(&root().join("fixtures/api/reference.csv"));
    let api00 = num(&frame, "api00", &rows);
    let schwide = frame.column("sch.wide").unwrap();
    let yes: Vec<f64> = rows
        .iter()
        .map(|&r| f64::from(u8::from(schwide.display(r).as_deref() == Some("Yes"))))
        .collect();
    let all = vec![true; rows.len()];
    let mut worst_w: f64 = 0.0;
    let mut worst_se: f64 = 0.0;
    for design_name in ["strat_fpc", "strat_nofpc"] {
        let design = Design::build(
            &frame,
            &rows,
            &DesignSpec {
                strata: vec!["stype".into()],
                psu: vec![],
                fpc: if design_name == "strat_fpc" {
                    vec!["fpc".into()]
                } else {
                    vec![]
                },
                weight: "pw".into(),
                nest: false,
                lonely_psu: LonelyPsu::Fail,
                ..Default::default()
            },
        )
        .unwrap();
        for scheme in API_SCHEMES {
            let (spec, file) = api_spec(scheme);
            let margins = Margins::load(root().join("fixtures/weighting").join(file)).unwrap();
            let model = CalibrationModel::build(&frame, &rows, &margins).unwrap();
            let cal = calibrate(&model, &pw, &spec).unwrap();
            let col = wh
                .iter()
                .position(|h| *h == format!("{design_name}__{scheme}"))
                .unwrap();
            for (i, w) in cal.weights.iter().enumerate() {
                let r: f64 = wc[col][i].parse().unwrap();
                let d = rel(*w, r);
                worst_w = worst_w.max(d);
                assert!(d < 1e-8, "{design_name} {scheme} row {i}: {w} vs R {r}");
            }
            for (variable, y, estimator, method) in [
                ("api00", &api00, "svymean", "t_degf"),
                ("sch.wide==Yes", &yes, "svyciprop", "logit"),
            ] {
                let (est, mut z) = mean_scores(&cal.weights, y, &all);
                cal.residualizer.residualize(&mut z);
                let se = design.variance(&z, None).unwrap().sqrt();
                let (r_est, r_se) = reference.get(&[
                    ("design", design_name),
                    ("weighting", scheme),
                    ("estimator", estimator),
                    ("variable", variable),
                    ("ci_method", method),
                ]);
                assert!(rel(est, r_est) < 1e-8, "{design_name} {scheme} {variable}");
                // After rake(~stype, ~sch.wide) R's sch.wide SE is rounding noise (~1e-10).
                if r_se < 1e-8 {
                    assert!(se < 1e-8, "{design_name} {scheme} {variable}: se {se}");
                    continue;
                }
                let d = rel(se, r_se);
                worst_se = worst_se.max(d);
                assert!(
                    d < 1e-6,
                    "{design_name} {scheme} {variable}: se {se} vs R {r_se}"
                );
            }
        }
    }
    eprintln!("api: max rel diff weights {worst_w:.2e}, SEs {worst_se:.2e}");
}

struct Demo {
    frame: Frame,
    respondents: Vec<usize>,
    nr: Vec<f64>,
    design: Design,
}

fn demo() -> Demo {
    let mut frame = read_frame(&root().join("fixtures/demo/data.csv"));
    let n = frame.n_rows();
    let all: Vec<usize> = (0..n).collect();
    let responded = num(&frame, "responded", &all);
    let dw = num(&frame, "design_weight", &all);
    let stratum = frame.column("stratum").unwrap().clone();
    let respondents: Vec<usize> = (0..n).filter(|&r| responded[r] == 1.0).collect();
    let mut sampled: HashMap<String, f64> = HashMap::new();
    let mut resp: HashMap<String, f64> = HashMap::new();
    for r in 0..n {
        let s = stratum.display(r).unwrap();
        *sampled.entry(s.clone()).or_default() += dw[r];
        if responded[r] == 1.0 {
            *resp.entry(s).or_default() += dw[r];
        }
    }
    let w_nr: Vec<String> = (0..n)
        .map(|r| {
            let s = stratum.display(r).unwrap();
            format!("{:e}", dw[r] * sampled[&s] / resp[&s])
        })
        .collect();
    frame.push(column("w_nr", &w_nr)).unwrap();
    let nr = num(&frame, "w_nr", &respondents);
    let design = Design::build(
        &frame,
        &respondents,
        &DesignSpec {
            strata: vec!["stratum".into()],
            psu: vec!["psu".into()],
            fpc: vec![],
            weight: "w_nr".into(),
            nest: true,
            lonely_psu: LonelyPsu::Fail,
            ..Default::default()
        },
    )
    .unwrap();
    Demo {
        frame,
        respondents,
        nr,
        design,
    }
}

fn demo_spec(scheme: &str) -> (CalibrationSpec, &'static str) {
    match scheme {
        "raked" => (CalibrationSpec::new(CalMethod::Raking), "margins.csv"),
        "linear" => (CalibrationSpec::new(CalMethod::Linear), "margins.csv"),
        "poststrat" => (
            CalibrationSpec::new(CalMethod::PostStratify),
            "poststrata.csv",
        ),
        _ => unreachable!(),
    }
}

#[test]
fn demo_weights_and_ses_match_r() {
    let demo = demo();
    let (wh, wc) = read_table(&root().join("fixtures/demo/weights.csv"));
    let ids = num(&demo.frame, "resp_id", &demo.respondents);
    let pos: HashMap<i64, usize> = wc[0]
        .iter()
        .enumerate()
        .map(|(i, v)| (v.parse::<f64>().unwrap() as i64, i))
        .collect();
    let r_col = |name: &str| -> Vec<f64> {
        let c = wh.iter().position(|h| h == name).unwrap();
        ids.iter()
            .map(|id| wc[c][pos[&(*id as i64)]].parse().unwrap())
            .collect()
    };
    for (a, b) in demo.nr.iter().zip(r_col("nr_adjusted")) {
        assert!(rel(*a, b) < 1e-10);
    }
    let reference = Reference::load(&root().join("fixtures/demo/reference.csv"));
    let assault = num(&demo.frame, "assault_12m", &demo.respondents);
    let sex = num(&demo.frame, "sex", &demo.respondents);
    let defined: Vec<bool> = assault.iter().map(|&a| a == 1.0 || a == 2.0).collect();
    let y: Vec<f64> = assault
        .iter()
        .map(|&a| f64::from(u8::from(a == 1.0)))
        .collect();
    let mut worst_w: f64 = 0.0;
    let mut worst_se: f64 = 0.0;
    for scheme in ["raked", "linear", "poststrat"] {
        let (spec, file) = demo_spec(scheme);
        let margins = Margins::load(root().join("fixtures/demo").join(file)).unwrap();
        let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins).unwrap();
        let cal = calibrate(&model, &demo.nr, &spec).unwrap();
        eprintln!(
            "demo {scheme}: iterations {}, g in [{:.4}, {:.4}], max margin error {:.1e}, negative {}",
            cal.iterations,
            cal.g.iter().copied().fold(f64::INFINITY, f64::min),
            cal.g.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            cal.max_margin_error,
            cal.negative_weights
        );
        for (w, r) in cal.weights.iter().zip(r_col(scheme)) {
            let d = rel(*w, r);
            worst_w = worst_w.max(d);
            assert!(d < 1e-8, "{scheme}: {w} vs R {r}");
        }
        for (dom_var, dom_val) in [("overall", "all"), ("sex", "1"), ("sex", "2")] {
            let in_dom: Vec<bool> = (0..y.len())
                .map(|i| {
                    defined[i]
                        && (dom_var == "overall" || sex[i] == dom_val.parse::<f64>().unwrap())
                })
                .collect();
            let (est, mut z) = mean_scores(&cal.weights, &y, &in_dom);
            cal.residualizer.residualize(&mut z);
            let se = demo.design.variance(&z, None).unwrap().sqrt();
            let (r_est, r_se) = reference.get(&[
                ("design", "taylor"),
                ("weighting", scheme),
                ("variable", "I5_assault_prevalence"),
                ("domain_var", dom_var),
                ("domain_value", dom_val),
                ("ci_method", "beta"),
            ]);
            assert!(rel(est, r_est) < 1e-8, "{scheme} {dom_var}={dom_val}");
            let d = rel(se, r_se);
            worst_se = worst_se.max(d);
            assert!(
                d < 1e-6,
                "{scheme} {dom_var}={dom_val}: se {se} vs R {r_se}"
            );
        }
    }
    eprintln!("demo: max rel diff weights {worst_w:.2e}, SEs {worst_se:.2e}");
}

#[test]
fn calibrated_weights_reproduce_the_margins() {
    let demo = demo();
    let margins = Margins::load(root().join("fixtures/demo/margins.csv")).unwrap();
    let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins).unwrap();
    assert_eq!(model.columns()[0], "(Intercept)");
    assert_eq!(model.columns()[1], "sex2");
    assert_eq!(model.columns().len(), 1 + 1 + 3 + 11 + 1);
    for (spec, tol) in [
        (CalibrationSpec::new(CalMethod::Linear), 1e-9),
        (CalibrationSpec::new(CalMethod::Raking), 1e-7),
        (
            CalibrationSpec::new(CalMethod::Logit).with_bounds(0.3, 3.0),
            1e-7,
        ),
        (
            CalibrationSpec::new(CalMethod::Truncated).with_bounds(0.5, 2.0),
            1e-7,
        ),
    ] {
        let cal = calibrate(&model, &demo.nr, &spec).unwrap();
        let totals = model.weighted_totals(&cal.weights);
        for (t, p) in totals.iter().zip(model.population()) {
            assert!((t - p).abs() / (1.0 + p.abs()) < tol, "{:?}", spec.method);
        }
        assert!(cal.max_margin_error < tol * 2.0, "{:?}", spec.method);
        if let Some((l, u)) = spec.bounds {
            assert!(cal.g.iter().all(|&g| g >= l - 1e-12 && g <= u + 1e-12));
        }
    }
    let ps = Margins::load(root().join("fixtures/demo/poststrata.csv")).unwrap();
    let psm = CalibrationModel::build(&demo.frame, &demo.respondents, &ps).unwrap();
    let cal = calibrate(
        &psm,
        &demo.nr,
        &CalibrationSpec::new(CalMethod::PostStratify),
    )
    .unwrap();
    assert!(cal.max_margin_error < 1e-12);
    // Rake: the last margin is exact, the others within epsilon (absolute weight units).
    let mut spec = CalibrationSpec::new(CalMethod::Rake);
    spec.maxit = Some(100);
    let cal = calibrate(&model, &demo.nr, &spec).unwrap();
    let totals = model.weighted_totals(&cal.weights);
    for (t, p) in totals.iter().zip(model.population()) {
        assert!((t - p).abs() < 1.0 + 1e-9 * p, "{t} vs {p}");
    }
}

#[test]
fn results_do_not_depend_on_row_order() {
    let frame = read_frame(&root().join("fixtures/api/apistrat.csv"));
    let rows: Vec<usize> = (0..frame.n_rows()).collect();
    let mut shuffled = rows.clone();
    // A fixed permutation: reverse, then interleave.
    shuffled.reverse();
    let shuffled: Vec<usize> = shuffled
        .iter()
        .step_by(2)
        .chain(shuffled.iter().skip(1).step_by(2))
        .copied()
        .collect();
    for scheme in API_SCHEMES {
        let (spec, file) = api_spec(scheme);
        let margins = Margins::load(root().join("fixtures/weighting").join(file)).unwrap();
        let a = CalibrationModel::build(&frame, &rows, &margins).unwrap();
        let b = CalibrationModel::build(&frame, &shuffled, &margins).unwrap();
        let ca = calibrate(&a, &num(&frame, "pw", &rows), &spec).unwrap();
        let cb = calibrate(&b, &num(&frame, "pw", &shuffled), &spec).unwrap();
        let y = num(&frame, "api00", &rows);
        let ys = num(&frame, "api00", &shuffled);
        let (_, mut za) = mean_scores(&ca.weights, &y, &vec![true; 200]);
        let (_, mut zb) = mean_scores(&cb.weights, &ys, &vec![true; 200]);
        ca.residualizer.residualize(&mut za);
        cb.residualizer.residualize(&mut zb);
        for (k, &r) in shuffled.iter().enumerate() {
            assert!(rel(cb.weights[k], ca.weights[r]) < 1e-12, "{scheme}");
            assert!((zb[k] - za[r]).abs() < 1e-9 * za.iter().map(|x| x.abs()).fold(0.0, f64::max));
        }
    }
}

fn toy() -> Frame {
    small_frame(&[
        ("sex", &["1", "2", "1", "2", "1", "2", "1", "2"]),
        ("age", &["a", "a", "b", "b", "c", "c", "a", "b"]),
        ("x", &["1", "2", "3", "4", "5", "6", "7", "8"]),
    ])
}

fn margins(text: &str) -> Margins {
    Margins::parse("m.csv", text).unwrap()
}

#[test]
fn hand_computed_post_stratification_and_linear() {
    let f = toy();
    let rows: Vec<usize> = (0..8).collect();
    let d = vec![10.0; 8];
    let m = margins("sex,total\n1,60\n2,20\n");
    let model = CalibrationModel::build(&f, &rows, &m).unwrap();
    let cal = calibrate(&model, &d, &CalibrationSpec::new(CalMethod::PostStratify)).unwrap();
    assert_eq!(
        cal.weights,
        vec![15.0, 5.0, 15.0, 5.0, 15.0, 5.0, 15.0, 5.0]
    );
    // Residuals of a total of y within post-strata: x_i - w_i * mean(x/w) (d constant).
    let mut z: Vec<f64> = (0..8).map(|i| cal.weights[i] * (i as f64)).collect();
    cal.residualizer.residualize(&mut z);
    let s1: f64 = (0..8).step_by(2).map(|i| z[i]).sum();
    assert!(s1.abs() < 1e-12);
    // Linear calibration on sex alone is post-stratification.
    let m = margins("variable,category,total\nsex,1,60\nsex,2,20\n");
    let model = CalibrationModel::build(&f, &rows, &m).unwrap();
    let lin = calibrate(&model, &d, &CalibrationSpec::new(CalMethod::Linear)).unwrap();
    for (a, b) in lin.weights.iter().zip(&cal.weights) {
        assert!((a - b).abs() < 1e-12);
    }
    let rak = calibrate(&model, &d, &CalibrationSpec::new(CalMethod::Raking)).unwrap();
    for (a, b) in rak.weights.iter().zip(&cal.weights) {
        assert!((a - b).abs() < 1e-6 * b);
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let f = toy();
    let rows: Vec<usize> = (0..8).collect();
    let d = vec![10.0; 8];
    // A population category without respondent.
    let e = CalibrationModel::build(
        &f,
        &rows,
        &margins("variable,category,total\nage,a,20\nage,b,20\nage,c,20\nage,d,20\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("category d of age has no respondent"), "{e}");
    // A data value without population total.
    let e = CalibrationModel::build(
        &f,
        &rows,
        &margins("variable,category,total\nage,a,40\nage,b,40\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("age = c occurs in 2 respondent rows"), "{e}");
    // A blank calibration value.
    let g = small_frame(&[("sex", &["1", "", "2", "1"])]);
    let e = CalibrationModel::build(
        &g,
        &[0, 1, 2, 3],
        &margins("variable,category,total\nsex,1,5\nsex,2,5\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sex has no value in frame row 1"), "{e}");
    // Redundant margins: a second copy of sex under another name.
    let h = small_frame(&[
        ("sex", &["1", "2", "1", "2"]),
        ("sex2", &["m", "f", "m", "f"]),
    ]);
    let e = CalibrationModel::build(
        &h,
        &[0, 1, 2, 3],
        &margins("variable,category,total\nsex,1,5\nsex,2,5\nsex2,f,5\nsex2,m,5\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sex2m is a linear combination"), "{e}");
    // Infeasible bounds: sex 1 needs g = 70/40 = 1.75 > 1.5.
    let m = margins("variable,category,total\nsex,1,70\nsex,2,10\n");
    let model = CalibrationModel::build(&f, &rows, &m).unwrap();
    let e = calibrate(
        &model,
        &d,
        &CalibrationSpec::new(CalMethod::Logit).with_bounds(0.5, 1.5),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot reach the total of sex = 1"), "{e}");
    let e = calibrate(
        &model,
        &d,
        &CalibrationSpec::new(CalMethod::Logit).with_bounds(1.5, 2.0),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("L < 1 < U"), "{e}");
    // Joint post-strata with an empty cell: error, or ignored with partial.
    let m = margins("sex,age,total\n1,a,10\n1,b,10\n1,c,10\n2,a,10\n2,b,10\n2,c,10\n2,d,10\n");
    let model = CalibrationModel::build(&f, &rows, &m).unwrap();
    let e = calibrate(&model, &d, &CalibrationSpec::new(CalMethod::PostStratify))
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 8") && e.contains("sex=2,age=d"), "{e}");
    let mut spec = CalibrationSpec::new(CalMethod::PostStratify);
    spec.partial = true;
    let cal = calibrate(&model, &d, &spec).unwrap();
    assert_eq!(cal.warnings.len(), 1);
    assert!(
        cal.warnings[0].starts_with("1 post-strata"),
        "{:?}",
        cal.warnings
    );
    assert!(cal.weights.iter().all(|w| w.is_finite()));
    // Many empty post-strata: one warning naming the first five and counting the rest.
    let mut table = String::from("sex,age,total\n1,a,10\n1,b,10\n1,c,10\n2,a,10\n2,b,10\n2,c,10\n");
    for k in 0..200 {
        table.push_str(&format!("2,empty{k},1\n"));
    }
    let model = CalibrationModel::build(&f, &rows, &margins(&table)).unwrap();
    let cal = calibrate(&model, &d, &spec).unwrap();
    assert_eq!(cal.warnings.len(), 1, "{:?}", cal.warnings);
    assert!(
        cal.warnings[0].starts_with("200 post-strata") && cal.warnings[0].ends_with("and 195 more"),
        "{}",
        cal.warnings[0]
    );
    // Negative base weight, wrong length.
    let model = CalibrationModel::build(
        &f,
        &rows,
        &margins("variable,category,total\nsex,1,60\nsex,2,20\n"),
    )
    .unwrap();
    let mut bad = d.clone();
    bad[3] = -1.0;
    assert!(calibrate(&model, &bad, &CalibrationSpec::new(CalMethod::Linear)).is_err());
    assert!(calibrate(&model, &d[..4], &CalibrationSpec::new(CalMethod::Linear)).is_err());
}

#[test]
fn non_convergence_is_an_error_unless_forced() {
    let demo = demo();
    let margins = Margins::load(root().join("fixtures/demo/margins.csv")).unwrap();
    let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins).unwrap();
    let mut spec = CalibrationSpec::new(CalMethod::Raking);
    spec.maxit = Some(2);
    let e = calibrate(&model, &demo.nr, &spec).unwrap_err().to_string();
    assert!(e.contains("did not converge in 3 iterations"), "{e}");
    spec.force = true;
    let cal = calibrate(&model, &demo.nr, &spec).unwrap();
    assert!(!cal.converged && !cal.warnings.is_empty());
    assert!(cal.weights.iter().all(|w| w.is_finite()));
}

#[test]
fn trimming_follows_r() {
    // trimWeights: clamp, then share the trimmed amount equally among the others.
    let mut w = vec![1.0, 2.0, 3.0, 10.0];
    let (k, _) = trim_weights(&mut w, 0.0, 5.0, false).unwrap();
    assert_eq!(k, 1);
    let s = 5.0 / 3.0;
    for (a, b) in w.iter().zip([1.0 + s, 2.0 + s, 3.0 + s, 5.0]) {
        assert!((a - b).abs() < 1e-14);
    }
    let mut w = vec![1.0, 2.0, 3.0, 10.0];
    let (_, failed) = trim_weights(&mut w, 0.0, 4.0, true).unwrap();
    assert!(failed.is_none());
    // survey 4.5's strict rounds by hand: [3, 4, 5, 4] (6 shared by three), then 1 shared by
    // the two never trimmed, [3.5, 4.5, 4, 4], then 0.5 to the last one: all 4. (Survey 4.1
    // also gave shares to trimmed weights and ends elsewhere.)
    for x in &w {
        assert!((x - 4.0).abs() < 1e-12, "{w:?}");
    }
    assert!((w.iter().sum::<f64>() - 16.0).abs() < 1e-12);
    // Nobody left to take a share: R warns "trimming failed" and keeps the clamped weights.
    let mut w = vec![10.0, 10.0, 1.0];
    let (k, failed) = trim_weights(&mut w, 0.0, 4.0, true).unwrap();
    assert_eq!(k, 2);
    assert_eq!(w, vec![4.0, 4.0, 4.0]);
    let failed = failed.expect("a warning");
    assert!(
        failed.contains("trimming failed") && failed.contains("-9"),
        "{failed}"
    );
}

/// `fixtures/weighting/demo_extra.R`: rake(), truncated linear, logit, g-trimming and
/// trimWeights on the demo, weights and SEs of the assault prevalence.
#[test]
fn demo_extra_methods_match_r() {
    let demo = demo();
    let margins = Margins::load(root().join("fixtures/demo/margins.csv")).unwrap();
    let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins).unwrap();
    let (wh, wc) = read_table(&root().join("fixtures/weighting/demo_extra_weights.csv"));
    let (_, sc) = read_table(&root().join("fixtures/weighting/demo_extra_se.csv"));
    let ids = num(&demo.frame, "resp_id", &demo.respondents);
    let pos: HashMap<i64, usize> = wc[0]
        .iter()
        .enumerate()
        .map(|(i, v)| (v.parse::<f64>().unwrap() as i64, i))
        .collect();
    let assault = num(&demo.frame, "assault_12m", &demo.respondents);
    let sex = num(&demo.frame, "sex", &demo.respondents);
    let y: Vec<f64> = assault
        .iter()
        .map(|&a| f64::from(u8::from(a == 1.0)))
        .collect();
    let mut worst_w: f64 = 0.0;
    let mut worst_se: f64 = 0.0;
    for (c, scheme) in wh.iter().enumerate().skip(1) {
        let spec = match scheme.as_str() {
            "rake" => CalibrationSpec::new(CalMethod::Rake),
            "truncated_0.7_1.6" => CalibrationSpec::new(CalMethod::Truncated).with_bounds(0.7, 1.6),
            "logit_0.6_1.8" => CalibrationSpec::new(CalMethod::Logit).with_bounds(0.6, 1.8),
            "raking_trim_0.8_1.5" => CalibrationSpec {
                trim: Some(Trim::G {
                    lower: 0.8,
                    upper: 1.5,
                }),
                ..CalibrationSpec::new(CalMethod::Raking)
            },
            s => CalibrationSpec {
                trim: Some(Trim::Weights {
                    lower: 100.0,
                    upper: 400.0,
                    strict: s.ends_with("strict"),
                }),
                ..CalibrationSpec::new(CalMethod::Raking)
            },
        };
        let cal = calibrate(&model, &demo.nr, &spec).unwrap();
        for (k, id) in ids.iter().enumerate() {
            let r: f64 = wc[c][pos[&(*id as i64)]].parse().unwrap();
            let d = rel(cal.weights[k], r);
            worst_w = worst_w.max(d);
            assert!(d < 1e-8, "{scheme}: {} vs R {r}", cal.weights[k]);
        }
        for (j, dom) in sc[1].iter().enumerate() {
            if sc[0][j] != *scheme {
                continue;
            }
            let in_dom: Vec<bool> = (0..y.len())
                .map(|i| {
                    (assault[i] == 1.0 || assault[i] == 2.0)
                        && (dom == "all" || sex[i] == dom.parse::<f64>().unwrap())
                })
                .collect();
            let (est, mut z) = mean_scores(&cal.weights, &y, &in_dom);
            cal.residualizer.residualize(&mut z);
            let se = demo.design.variance(&z, None).unwrap().sqrt();
            let r_est: f64 = sc[2][j].parse().unwrap();
            let r_se: f64 = sc[3][j].parse().unwrap();
            assert!(rel(est, r_est) < 1e-8, "{scheme} {dom}: {est} vs {r_est}");
            let d = rel(se, r_se);
            worst_se = worst_se.max(d);
            assert!(d < 1e-6, "{scheme} sex={dom}: se {se} vs R {r_se}");
        }
    }
    eprintln!("demo extra: max rel diff weights {worst_w:.2e}, SEs {worst_se:.2e}");
}

#[test]
fn raking_converges_where_r_plain_newton_diverges() {
    // A 46-person sample whose margins are far from the population's (age group 3 holds 41 % of
    // the sample weight and 6 % of the population). R 4.2.2 / survey 4.1.1
    // `calibrate(calfun = "raking")` on it stops with "Failed to converge: eps=9.3e+79 in 51
    // iterations": its full Newton step overshoots. The halved step reaches the unique
    // solution, which iterative proportional fitting (`rake`) confirms.
    let sex = "1212122121122122122112122121122221112112121122";
    let age = "1231232123333313313221231331112223333111313231";
    let d = [
        96.30183683722467,
        163.1444538689353,
        289.19724721204824,
        140.80185561915067,
        140.65457744595705,
        460.9310330928615,
        378.15933609661016,
        406.4385459537049,
        186.8733525975084,
        18.15213655768278,
        126.989343993751,
        382.4162606287429,
        39.94456781811773,
        191.9872419712344,
        61.95281737236229,
        373.2779485406681,
        90.0843276034311,
        362.08251836178243,
        462.3165057544636,
        434.3108301996975,
        325.279976187997,
        487.47621269169707,
        29.04756547921902,
        185.05201026442808,
        229.089815893889,
        364.8086331185854,
        489.7924138418743,
        24.67569826515701,
        182.9558730812215,
        420.6663125115757,
        220.95813916805588,
        58.80582549430505,
        487.1667300705046,
        256.79254330866337,
        77.58656730607153,
        7.7985431534930605,
        15.65892373341181,
        176.8558148038972,
        320.8142122578818,
        171.37997114508116,
        50.41469836805505,
        316.726598851158,
        14.961603063494636,
        255.79511384000534,
        482.69296144280344,
        143.29192249054327,
    ];
    let chars = |s: &str| -> Vec<String> { s.chars().map(String::from).collect() };
    let (sex, age) = (chars(sex), chars(age));
    let mut f = Frame::new(d.len());
    f.push(column("sex", &sex)).unwrap();
    f.push(column("agegrp", &age)).unwrap();
    let rows: Vec<usize> = (0..d.len()).collect();
    let m = margins(
        "variable,category,total\nsex,1,651673.8625808302\nsex,2,298981.95797354233\n\
         agegrp,1,419607.1780516487\nagegrp,2,472142.78658737254\nagegrp,3,58905.85591535143\n",
    );
    let model = CalibrationModel::build(&f, &rows, &m).unwrap();
    let raking = calibrate(&model, &d, &CalibrationSpec::new(CalMethod::Raking)).unwrap();
    assert!(raking.converged);
    let mut spec = CalibrationSpec::new(CalMethod::Rake);
    spec.maxit = Some(10_000);
    spec.epsilon = Some(1e-13);
    let ipf = calibrate(&model, &d, &spec).unwrap();
    for (a, b) in raking.weights.iter().zip(&ipf.weights) {
        assert!(rel(*a, *b) < 1e-5, "{a} vs {b}");
    }
    let total = |var: &[String], code: &str| -> f64 {
        (0..d.len())
            .filter(|&i| var[i] == code)
            .map(|i| raking.weights[i])
            .sum()
    };
    let population = 651673.8625808302 + 298981.95797354233;
    assert!((total(&age, "3") - 58905.85591535143).abs() < 1e-6 * population);
    assert!((total(&sex, "1") - 651673.8625808302).abs() < 1e-6 * population);
}

/// `fixtures/weighting/make_rake_versions.R`: rake() on the demo's four margins with epsilon
/// 1, 100 and 2000 under survey 4.1.1 (cross-table test) and 4.5 (test per margin); the two stop
/// at different sweeps, and each convergence test matches its release.
#[test]
fn rake_convergence_follows_each_release_of_r_survey() {
    let demo = demo();
    let margins = Margins::load(root().join("fixtures/demo/margins.csv")).unwrap();
    let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins).unwrap();
    let (header, columns) = read_table(&root().join("fixtures/weighting/rake_versions.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut checked = 0;
    let mut differ = 0;
    for row in 0..columns[0].len() {
        let version = &columns[col("survey")][row];
        let epsilon: f64 = columns[col("epsilon")][row].parse().unwrap();
        let test = if version.starts_with("4.1") {
            RakeTest::CrossTable
        } else {
            RakeTest::Margins
        };
        let spec = CalibrationSpec {
            epsilon: Some(epsilon),
            rake_test: test,
            ..CalibrationSpec::new(CalMethod::Rake)
        };
        let other = CalibrationSpec {
            rake_test: if test == RakeTest::Margins {
                RakeTest::CrossTable
            } else {
                RakeTest::Margins
            },
            ..spec
        };
        let cal = calibrate(&model, &demo.nr, &spec).unwrap();
        let alt = calibrate(&model, &demo.nr, &other).unwrap();
        for (name, k) in [("w1", 0usize), ("w2", 1), ("w100", 99)] {
            let r: f64 = columns[col(name)][row].parse().unwrap();
            assert!(
                rel(cal.weights[k], r) < 1e-10,
                "survey {version} epsilon {epsilon} {name}: {} vs R {r}",
                cal.weights[k]
            );
            if rel(alt.weights[k], r) > 1e-10 {
                differ += 1;
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
    assert!(
        differ > 0,
        "the two tests must disagree somewhere for this to test anything"
    );
}

/// The full-sample fast path (`calibrate_on_cells`) is the row path up to summation order:
/// weights, g, residualized scores, iterations and margin error, for every method that
/// collapses, with some rows of zero base weight (R's `rake` reports g = 1 for them). The
/// Newton methods stop about 1e-8 from their solution, where the order of the sums moves the
/// last step, and linear calibration's T − Σ d m cancels: 1.3e-12 relative at most here, hence
/// 1e-11 (post-stratification: 0; `rake`: 2e-14).
#[test]
fn calibration_on_cells_equals_calibration_on_rows() {
    let demo = demo();
    let mut d = demo.nr.clone();
    for i in (0..d.len()).step_by(37) {
        d[i] = 0.0;
    }
    let n = d.len();
    let y = num(&demo.frame, "age", &demo.respondents);
    let mut rake = CalibrationSpec::new(CalMethod::Rake);
    rake.maxit = Some(100);
    let cases = [
        (CalibrationSpec::new(CalMethod::Raking), "margins.csv"),
        (CalibrationSpec::new(CalMethod::Linear), "margins.csv"),
        (
            CalibrationSpec::new(CalMethod::Logit).with_bounds(0.3, 3.0),
            "margins.csv",
        ),
        (
            CalibrationSpec::new(CalMethod::Truncated).with_bounds(0.5, 2.0),
            "margins.csv",
        ),
        (rake, "margins.csv"),
        (
            CalibrationSpec::new(CalMethod::PostStratify),
            "poststrata.csv",
        ),
    ];
    for (spec, file) in cases {
        let margins = Margins::load(root().join("fixtures/demo").join(file)).expect("demo fixture");
        let model = CalibrationModel::build(&demo.frame, &demo.respondents, &margins)
            .expect("demo fixture");
        let cells = model.collapse(&spec).expect("factor margins collapse");
        assert!(
            cells.n_cells() < n / 4,
            "{:?}: cells are fewer than rows",
            spec.method
        );
        let rows = calibrate(&model, &d, &spec).expect("demo fixture");
        let fast = calibrate_on_cells(&model, &cells, &d, &spec).expect("demo fixture");
        let m = spec.method;
        assert_eq!(fast.iterations, rows.iterations, "{m:?}");
        assert_eq!(fast.converged, rows.converged, "{m:?}");
        assert_eq!(fast.negative_weights, rows.negative_weights, "{m:?}");
        assert!(
            (fast.max_margin_error - rows.max_margin_error).abs() < 1e-9,
            "{m:?}"
        );
        let worst_g = (0..n)
            .map(|i| rel(fast.g[i], rows.g[i]))
            .fold(0.0, f64::max);
        let worst_w = (0..n)
            .filter(|&i| rows.weights[i] != 0.0)
            .map(|i| rel(fast.weights[i], rows.weights[i]))
            .fold(0.0, f64::max);
        assert!(
            worst_g < 1e-11 && worst_w < 1e-11,
            "{m:?}: {worst_g:e}, {worst_w:e}"
        );
        if matches!(m, CalMethod::PostStratify | CalMethod::Rake) {
            assert!(worst_g < 1e-13, "{m:?}: {worst_g:e}");
        }
        let (_, mut zr) = mean_scores(&rows.weights, &y, &vec![true; n]);
        let mut zf = zr.clone();
        rows.residualizer.residualize(&mut zr);
        fast.residualizer.residualize(&mut zf);
        let scale = zr.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for i in 0..n {
            assert!((zf[i] - zr[i]).abs() < 1e-11 * scale, "{m:?} row {i}");
        }
    }
}

/// Where a message must name a design row, the fast path gives the row path's error.
#[test]
fn calibration_on_cells_reports_row_errors() {
    let demo = demo();
    let margins = Margins::load(root().join("fixtures/demo/margins.csv")).expect("demo fixture");
    let model =
        CalibrationModel::build(&demo.frame, &demo.respondents, &margins).expect("demo fixture");
    let spec = CalibrationSpec::new(CalMethod::Raking);
    let cells = model.collapse(&spec).expect("demo fixture");
    let mut d = demo.nr.clone();
    d[5] = -1.0;
    let rows = calibrate(&model, &d, &spec)
        .expect_err("an error")
        .to_string();
    let fast = calibrate_on_cells(&model, &cells, &d, &spec)
        .expect_err("an error")
        .to_string();
    assert_eq!(fast, rows);
    assert!(fast.contains("design row 6"), "{fast}");
}
