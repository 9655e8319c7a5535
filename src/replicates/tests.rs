//! Tests against R `survey` 4.1-1 outputs in `fixtures/replicates/` (made by `make_fixtures.R`)
//! and the oracle exports in `fixtures/api/`.

use super::reference::Statistic;
use super::*;
use crate::design::{Design, DesignSpec, LonelyPsu};
use crate::frame::{CellState, Column, ColumnData, Frame};
use crate::questionnaire::IndicatorKind;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");

/// CSV file → (header, rows of optional cells).
fn read(path: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let text = std::fs::read_to_string(format!("{FIX}{path}")).expect("fixture");
    crate::test_support::read_csv(&text)
}

/// Frame with numeric columns where every cell parses, else text.
fn frame(path: &str) -> Frame {
    crate::test_support::frame(&std::fs::read_to_string(format!("{FIX}{path}")).expect("fixture"))
}

fn num(f: &Frame, name: &str) -> Vec<f64> {
    match &f.column(name).expect("column").data {
        ColumnData::Num(v) => v.to_vec(),
        ColumnData::Text { .. } => panic!("{name} is text"),
    }
}

fn spec(strata: Option<&str>, psu: &[&str], fpc: &[&str], lonely: LonelyPsu) -> DesignSpec {
    DesignSpec {
        strata: strata.map(str::to_string).into_iter().collect(),
        psu: psu.iter().map(|s| s.to_string()).collect(),
        fpc: fpc.iter().map(|s| s.to_string()).collect(),
        weight: "pw".into(),
        nest: false,
        lonely_psu: lonely,
        ..Default::default()
    }
}

fn design(f: &Frame, s: &DesignSpec) -> Design {
    let rows: Vec<usize> = (0..f.n_rows()).collect();
    Design::build(f, &rows, s).expect("design")
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

/// Mean api00, total enroll, ratio api.stu/enroll over the whole sample.
fn api_stats(f: &Frame) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>) {
    let n = f.n_rows();
    (
        num(f, "api00"),
        num(f, "enroll"),
        num(f, "api.stu"),
        vec![true; n],
    )
}

fn se_of(rd: &ReplicateDesign, f: &Frame) -> [f64; 3] {
    let (api00, enroll, apistu, all) = api_stats(f);
    let stats = [
        Statistic {
            kind: IndicatorKind::Mean,
            y: &api00,
            x: None,
            domain: &all,
        },
        Statistic {
            kind: IndicatorKind::Total,
            y: &enroll,
            x: None,
            domain: &all,
        },
        Statistic {
            kind: IndicatorKind::Ratio,
            y: &apistu,
            x: Some(&enroll),
            domain: &all,
        },
    ];
    let res = rd.estimate(&stats);
    [
        res.variance[0].sqrt(),
        res.variance[1].sqrt(),
        res.variance[2].sqrt(),
    ]
}

/// Rows of an R output table for one design: (statistic → se), degf, scale, R.
fn r_rows(path: &str, design: &str) -> ([f64; 3], f64, f64, usize) {
    let (h, rows) = read(path);
    let col = |n: &str| h.iter().position(|x| x == n).expect("col");
    let mut se = [f64::NAN; 3];
    let (mut degf, mut scale, mut nrep) = (0.0, 0.0, 0);
    for r in rows.iter().filter(|r| r[0].as_deref() == Some(design)) {
        let get = |n: &str| {
            r[col(n)]
                .as_deref()
                .expect("cell")
                .parse::<f64>()
                .expect("num")
        };
        let k = match r[col("statistic")].as_deref() {
            Some("mean_api00") => 0,
            Some("total_enroll") => 1,
            _ => 2,
        };
        se[k] = get("se");
        degf = get("degf");
        scale = get("scale");
        nrep = get("n_replicates") as usize;
    }
    assert!(se.iter().all(|x| x.is_finite()), "{design} not in {path}");
    (se, degf, scale, nrep)
}

fn check(rd: &ReplicateDesign, f: &Frame, path: &str, name: &str, tol: f64) -> f64 {
    let (se_r, degf, scale, nrep) = r_rows(path, name);
    let se = se_of(rd, f);
    assert_eq!(rd.n_replicates(), nrep, "{name} replicates");
    assert_eq!(rd.degf(), degf, "{name} degf");
    assert!(
        rel(rd.scale(), scale) < 1e-14,
        "{name} scale {}",
        rd.scale()
    );
    let mut worst: f64 = 0.0;
    for k in 0..3 {
        let d = rel(se[k], se_r[k]);
        worst = worst.max(d);
        assert!(d < tol, "{name} stat {k}: {} vs R {}", se[k], se_r[k]);
    }
    eprintln!("{name}: max rel diff of SE vs R {worst:.2e}");
    worst
}

const OPT: ReplicateOptions = ReplicateOptions {
    mse: false,
    certainty: Certainty::Psu,
};
const MSE: ReplicateOptions = ReplicateOptions {
    mse: true,
    certainty: Certainty::Psu,
};

#[test]
fn replicates_hadamard_matches_r() {
    let (_, rows) = read("replicates/hadamard.csv");
    for r in rows {
        let n: usize = r[0].as_deref().expect("n").parse().expect("n");
        let want = r[1].clone().expect("matrix");
        let h = hadamard::hadamard(n);
        let got: Vec<String> = (0..h.order)
            .map(|i| (0..h.order).map(|j| (b'0' + h.get(i, j)) as char).collect())
            .collect();
        assert_eq!(got.join("/"), want, "hadamard({n})");
        assert!(h.is_hadamard(), "hadamard({n}) is not Hadamard");
    }
}

#[test]
fn replicates_jkn_apistrat_matches_r_exports() {
    let f = frame("api/apistrat.csv");
    let d = design(&f, &spec(Some("stype"), &[], &[], LonelyPsu::Fail));
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
    assert_eq!(rd.n_replicates(), 200);
    assert_eq!(rd.degf(), 197.0);
    assert_eq!(rd.degf_rule(), DegfRule::Exact);
    // Analysis weights and rscales as exported by R.
    let (h, rows) = read("replicates/apistrat_jkn_repweights.csv");
    let first = h.iter().position(|c| c == "rep001").expect("rep001");
    let mut worst: f64 = 0.0;
    for r in 0..200 {
        let w = rd.replicate_weights(r);
        for (i, row) in rows.iter().enumerate() {
            let want: f64 = row[first + r].as_deref().expect("w").parse().expect("w");
            worst = worst.max((w[i] - want).abs() / want.max(1.0));
        }
    }
    eprintln!("JKn analysis weights vs R export: max rel diff {worst:.2e}");
    assert!(worst < 1e-13, "repweights max rel diff {worst}");
    let (_, rs) = read("replicates/apistrat_jkn_rscales.csv");
    for (r, row) in rs.iter().enumerate() {
        let want: f64 = row[2].as_deref().expect("rscale").parse().expect("rscale");
        assert!((rd.rscales()[r] - want).abs() < 1e-15);
    }
    // SE of mean api00 in fixtures/api/reference.csv (A074, A075).
    let se = se_of(&rd, &f)[0];
    assert!(rel(se, 9.53613229692519) < 1e-12, "{se}");
    let rd_mse = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &MSE).expect("jkn");
    assert!(rel(se_of(&rd_mse, &f)[0], 9.53613229692519) < 1e-12);
    check(
        &rd,
        &f,
        "replicates/replicate_se.csv",
        "strat_nofpc_JKn",
        1e-12,
    );
    // With the FPC: rscales (n_h − 1)/n_h · (1 − f_h).
    let d = design(&f, &spec(Some("stype"), &[], &["fpc"], LonelyPsu::Fail));
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
    let (_, rs) = read("replicates/jkn_fpc_rscales.csv");
    for (r, row) in rs.iter().enumerate() {
        let want: f64 = row[0].as_deref().expect("rscale").parse().expect("rscale");
        assert!(rel(rd.rscales()[r], want) < 1e-14);
    }
    check(
        &rd,
        &f,
        "replicates/replicate_se.csv",
        "strat_fpc_JKn",
        1e-12,
    );
}

#[test]
fn replicates_jk1_apiclus1_matches_r() {
    let f = frame("api/apiclus1.csv");
    let d = design(&f, &spec(None, &["dnum"], &["fpc"], LonelyPsu::Fail));
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jk1, &OPT).expect("jk1");
    assert!(rel(rd.scale(), 0.914839277851167) < 1e-14);
    assert!(rel(se_of(&rd, &f)[0], 26.3293605895276) < 1e-12);
    let rd_mse = ReplicateDesign::from_design(&d, &ReplicateMethod::Jk1, &MSE).expect("jk1");
    assert!(rel(se_of(&rd_mse, &f)[0], 26.3348576684592) < 1e-12);
    check(
        &rd,
        &f,
        "replicates/replicate_se.csv",
        "clus1_fpc_JK1",
        1e-12,
    );
    let d = design(&f, &spec(None, &["dnum"], &[], LonelyPsu::Fail));
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jk1, &OPT).expect("jk1");
    check(
        &rd,
        &f,
        "replicates/replicate_se.csv",
        "clus1_nofpc_JK1",
        1e-12,
    );
}

#[test]
fn replicates_method_errors() {
    let f = frame("api/apistrat.csv");
    let d = design(&f, &spec(Some("stype"), &[], &[], LonelyPsu::Fail));
    assert_eq!(
        ReplicateDesign::from_design(&d, &ReplicateMethod::Jk1, &OPT),
        Err(ReplicateError::Jk1Stratified)
    );
    let e = ReplicateDesign::from_design(&d, &ReplicateMethod::Brr, &OPT).expect_err("brr");
    let msg = e.to_string();
    assert!(
        msg.contains("stratum E has 100") && msg.contains("small"),
        "{msg}"
    );
    let f1 = frame("api/apiclus1.csv");
    let d1 = design(&f1, &spec(None, &["dnum"], &[], LonelyPsu::Fail));
    assert_eq!(
        ReplicateDesign::from_design(&d1, &ReplicateMethod::Jkn, &OPT),
        Err(ReplicateError::Unstratified("JKn"))
    );
    let f2 = frame("replicates/lonely_data.csv");
    let d2 = design(&f2, &spec(Some("pair"), &["psu"], &[], LonelyPsu::Fail));
    assert_eq!(
        ReplicateDesign::from_design(&d2, &ReplicateMethod::Jkn, &OPT),
        Err(ReplicateError::LonelyPsu("H05".into()))
    );
}

#[test]
fn replicates_brr_fay_match_r() {
    let f = frame("replicates/brr_data.csv");
    let d = design(&f, &spec(Some("pair"), &["psu"], &[], LonelyPsu::Fail));
    for (label, method) in [
        ("BRR", ReplicateMethod::Brr),
        ("Fay0.5", ReplicateMethod::Fay { rho: 0.5 }),
        ("Fay0.3", ReplicateMethod::Fay { rho: 0.3 }),
    ] {
        let rd = ReplicateDesign::from_design(&d, &method, &OPT).expect(label);
        assert_eq!(rd.degf_rule(), DegfRule::Exact);
        // PSU factors as R's compressed repweights (PSUs in order of first appearance).
        let (_, rows) = read(&format!("replicates/brr_factors_{label}.csv"));
        assert_eq!(rows.len(), d.n_psu());
        for r in 0..rd.n_replicates() {
            let fr = rd.psu_factors(r).expect("factors");
            for (p, row) in rows.iter().enumerate() {
                let want: f64 = row[r + 1].as_deref().expect("f").parse().expect("f");
                assert!((fr[p] - want).abs() < 1e-15, "{label} rep {r} psu {p}");
            }
        }
        check(&rd, &f, "replicates/replicate_se.csv", label, 1e-12);
        let rd = ReplicateDesign::from_design(&d, &method, &MSE).expect(label);
        check(
            &rd,
            &f,
            "replicates/replicate_se.csv",
            &format!("{label}_mse"),
            1e-12,
        );
    }
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
    check(&rd, &f, "replicates/replicate_se.csv", "pairs_JKn", 1e-12);
    // The numerical rank agrees with the exact rules.
    for method in [ReplicateMethod::Brr, ReplicateMethod::Jkn] {
        let rd = ReplicateDesign::from_design(&d, &method, &OPT).expect("rd");
        let Factors::Psu { n_psu, f, .. } = &rd.factors else {
            panic!("psu factors")
        };
        assert_eq!(
            numerical_rank(f, *n_psu, rd.n_replicates()) as f64 - 1.0,
            rd.degf()
        );
    }
}

#[test]
fn replicates_jkn_lonely_psu_matches_r() {
    let f = frame("replicates/lonely_data.csv");
    for (lonely, name) in [
        (LonelyPsu::Adjust, "lonely_JKn_adjust"),
        (LonelyPsu::Average, "lonely_JKn_average"),
        (LonelyPsu::Remove, "lonely_JKn_remove"),
        (LonelyPsu::Certainty, "lonely_JKn_certainty"),
    ] {
        let d = design(&f, &spec(Some("pair"), &["psu"], &[], lonely));
        let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect(name);
        check(&rd, &f, "replicates/replicate_se.csv", name, 1e-12);
    }
}

/// Supplied replicate weights (R's own bootstrap draws) reproduce R's SEs.
#[test]
fn replicates_supplied_bootstrap_matches_r() {
    for (ds, data, scale, se_ref, se_ref_mse) in [
        (
            "apistrat",
            "api/apistrat.csv",
            0.00511029724895665,
            8.76114979585902,
            8.77329355821005,
        ),
        (
            "apiclus1",
            "api/apiclus1.csv",
            0.0053840631730079,
            24.3487343099415,
            24.378172741053,
        ),
    ] {
        let mut f = frame(data);
        let (h, rows) = read(&format!("replicates/{ds}_boot200_repweights.csv"));
        let snum = num(&f, "snum");
        let mut columns = Vec::new();
        for (j, name) in h.iter().enumerate().filter(|(_, n)| n.starts_with("rep")) {
            let v: Vec<f64> = rows
                .iter()
                .map(|r| r[j].as_deref().expect("w").parse().expect("w"))
                .collect();
            f.push(Column {
                name: name.clone(),
                data: ColumnData::Num(v.into()),
                state: vec![CellState::Value; rows.len()].into(),
            })
            .expect("push");
            columns.push(name.clone());
        }
        for (i, r) in rows.iter().enumerate() {
            let s: f64 = r[1].as_deref().expect("snum").parse().expect("snum");
            assert_eq!(s, snum[i], "row order");
        }
        let d = design(&f, &spec(None, &[], &[], LonelyPsu::Fail));
        let mut sup = SuppliedSpec {
            columns,
            kind: SuppliedKind::Bootstrap,
            scale: Some(scale),
            rscales: Some(vec![1.0]),
            combined_weights: true,
            replicates: Some(200),
        };
        for (opt, name, se1) in [
            (OPT, format!("{ds}_supplied_boot"), se_ref),
            (MSE, format!("{ds}_supplied_boot_mse"), se_ref_mse),
        ] {
            let rd = ReplicateDesign::build(&f, &d, &ReplicateMethod::Supplied(sup.clone()), &opt)
                .expect("supplied");
            assert!(rel(se_of(&rd, &f)[0], se1) < 1e-8);
            check(&rd, &f, "replicates/supplied_se.csv", &name, 1e-8);
        }
        // Checks: declared count, negative and NaN weights.
        sup.replicates = Some(199);
        assert_eq!(
            ReplicateDesign::build(&f, &d, &ReplicateMethod::Supplied(sup.clone()), &OPT),
            Err(ReplicateError::ReplicateCount {
                expected: 199,
                got: 200
            })
        );
        let base = d.weights().to_vec();
        let mut bad = vec![base.clone(), base.clone()];
        bad[1][3] = -1.0;
        let s2 = SuppliedSpec {
            columns: vec!["a".into(), "b".into()],
            replicates: None,
            ..sup.clone()
        };
        assert!(matches!(
            ReplicateDesign::supplied(&base, bad.clone(), &s2, &OPT),
            Err(ReplicateError::InvalidWeight { row: 3, .. })
        ));
        bad[1][3] = f64::NAN;
        assert!(matches!(
            ReplicateDesign::supplied(&base, bad, &s2, &OPT),
            Err(ReplicateError::InvalidWeight { .. })
        ));
    }
}

/// For a total, JKn with rscales (n_h − 1)/n_h equals the with-replacement Taylor variance.
#[test]
fn replicates_jkn_total_equals_taylor() {
    let f = frame("replicates/brr_data.csv");
    for s in [
        spec(Some("stype"), &[], &[], LonelyPsu::Fail),
        spec(Some("pair"), &["psu"], &[], LonelyPsu::Fail),
        spec(Some("stype"), &["psu"], &[], LonelyPsu::Fail),
    ] {
        let d = design(&f, &s);
        let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
        let enroll = num(&f, "enroll");
        let w = d.weights();
        let z: Vec<f64> = w.iter().zip(&enroll).map(|(a, b)| a * b).collect();
        let taylor = d.variance(&z, None).expect("taylor");
        let all = vec![true; f.n_rows()];
        let stat = [Statistic {
            kind: IndicatorKind::Total,
            y: &enroll,
            x: None,
            domain: &all,
        }];
        let v = rd.estimate(&stat).variance[0];
        let d_rel = rel(v, taylor);
        eprintln!("JKn vs Taylor total ({:?}): rel diff {d_rel:.2e}", s.strata);
        assert!(d_rel < 1e-12, "{v} vs {taylor}");
    }
}

#[test]
fn replicates_bootstrap_deterministic_across_threads() {
    let f = frame("api/apiclus1.csv");
    let d = design(&f, &spec(None, &["dnum"], &["fpc"], LonelyPsu::Fail));
    let g = frame("api/apistrat.csv");
    let dg = design(&g, &spec(Some("stype"), &[], &[], LonelyPsu::Fail));
    for (des, method) in [
        (
            &d,
            ReplicateMethod::Bootstrap {
                replicates: 300,
                seed: 7,
            },
        ),
        (
            &dg,
            ReplicateMethod::Bootstrap {
                replicates: 300,
                seed: 7,
            },
        ),
        (
            &dg,
            ReplicateMethod::Subbootstrap {
                replicates: 300,
                seed: 7,
            },
        ),
    ] {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| ReplicateDesign::from_design(des, &method, &OPT).expect("boot"))
        };
        let (a, b) = (run(1), run(8));
        assert_eq!(a, b);
        // Each replicate draws n_h PSUs per stratum (n_h − 1 rescaled for the subbootstrap).
        for r in 0..a.n_replicates() {
            let s: f64 = a.psu_factors(r).expect("f").iter().sum();
            assert!((s - des.n_psu() as f64).abs() < 1e-9, "{s}");
        }
    }
}

/// Bootstrap, subbootstrap and SDR SEs agree with Taylor SEs within Monte-Carlo error.
#[test]
fn replicates_bootstrap_close_to_taylor() {
    let f = frame("api/apistrat.csv");
    let d = design(&f, &spec(Some("stype"), &[], &[], LonelyPsu::Fail));
    let (api00, _, _, all) = api_stats(&f);
    let w = d.weights();
    let sw: f64 = w.iter().sum();
    let m: f64 = w.iter().zip(&api00).map(|(a, b)| a * b).sum::<f64>() / sw;
    let z: Vec<f64> = w
        .iter()
        .zip(&api00)
        .map(|(a, y)| a * (y - m) / sw)
        .collect();
    let taylor = d.variance(&z, None).expect("taylor").sqrt();
    let stat = [Statistic {
        kind: IndicatorKind::Mean,
        y: &api00,
        x: None,
        domain: &all,
    }];
    let reps = 2000;
    for method in [
        ReplicateMethod::Bootstrap {
            replicates: reps,
            seed: 20261129,
        },
        ReplicateMethod::Subbootstrap {
            replicates: reps,
            seed: 20261129,
        },
    ] {
        let rd = ReplicateDesign::from_design(&d, &method, &OPT).expect("boot");
        let se = rd.estimate(&stat).variance[0].sqrt();
        // Relative Monte-Carlo SD of a bootstrap SE ≈ 1/sqrt(2R) = 1.6%; allow 4 SD.
        let tol = 4.0 / (2.0 * reps as f64).sqrt();
        eprintln!(
            "{}: SE {se} vs Taylor {taylor}, rel diff {:.3} (tol {tol:.3})",
            method.name(),
            rel(se, taylor)
        );
        assert!(rel(se, taylor) < tol);
    }
}

#[test]
fn replicates_svr_var_centring() {
    let th = [1.0, 2.0, 4.0];
    // mean 7/3; Σ(θ − θ̄)² = 14/3.
    assert!((svr_var(&th, 0.0, 1.0, &[1.0; 3], false) - 14.0 / 3.0).abs() < 1e-15);
    assert!((svr_var(&th, 2.0, 0.5, &[1.0; 3], true) - 0.5 * 5.0).abs() < 1e-15);
    // A non-finite replicate is dropped with its rscale.
    let th = [1.0, f64::NAN, 3.0];
    assert!((svr_var(&th, 0.0, 1.0, &[1.0, 9.0, 1.0], false) - 2.0).abs() < 1e-15);
}

/// SDR: for a total, 4/R Σ_r (θ_r − θ̂)² is the successive-difference sum of squares of PSU
/// totals (Fay & Train 1995): ½ Σ (t_p − t_{p+1})² around the circle when every Hadamard row
/// is used, plus the end terms ½ t_1² + ½ t_n² otherwise.
#[test]
fn replicates_sdr_successive_differences() {
    let f = frame("api/apiclus1.csv");
    let d = design(&f, &spec(None, &["dnum"], &[], LonelyPsu::Fail));
    let enroll = num(&f, "enroll");
    let mut t = vec![0.0; d.n_psu()];
    for (i, &p) in d.psu_of_row().iter().enumerate() {
        t[p as usize] += d.weights()[i] * enroll[i];
    }
    let n = t.len();
    let open: f64 = (0..n - 1).map(|p| (t[p] - t[p + 1]).powi(2)).sum::<f64>() / 2.0;
    let circular = open + (t[n - 1] - t[0]).powi(2) / 2.0;
    let ends = open + (t[0] * t[0] + t[n - 1] * t[n - 1]) / 2.0;
    let all = vec![true; f.n_rows()];
    let stat = [Statistic {
        kind: IndicatorKind::Total,
        y: &enroll,
        x: None,
        domain: &all,
    }];
    for (reps, want) in [(None, circular), (Some(28), ends)] {
        let rd = ReplicateDesign::from_design(
            &d,
            &ReplicateMethod::Sdr {
                replicates: reps,
                sort: None,
                circular: false,
            },
            &MSE,
        )
        .expect("sdr");
        let v = rd.estimate(&stat).variance[0];
        eprintln!(
            "SDR {} replicates: rel diff to the successive-difference formula {:.2e}",
            rd.n_replicates(),
            rel(v, want)
        );
        assert!(rel(v, want) < 1e-12, "{v} vs {want}");
    }
    assert!(matches!(
        ReplicateDesign::from_design(
            &d,
            &ReplicateMethod::Sdr {
                replicates: Some(30),
                sort: None,
                circular: false,
            },
            &OPT
        ),
        Err(ReplicateError::Replicates(_))
    ));
}

/// On the demo survey, bootstrap and JKn SEs of several proportions agree with the Taylor SEs
/// (bootstrap: within Monte-Carlo error; JKn: to the usual jackknife-vs-linearisation gap).
#[test]
fn replicates_demo_bootstrap_close_to_taylor() {
    let f = frame("demo/data.csv");
    let responded = num(&f, "responded");
    let rows: Vec<usize> = (0..f.n_rows()).filter(|&r| responded[r] == 1.0).collect();
    let s = DesignSpec {
        strata: vec!["stratum".into()],
        psu: vec!["psu".into()],
        fpc: vec![],
        weight: "design_weight".into(),
        nest: true,
        lonely_psu: LonelyPsu::Fail,
        ..Default::default()
    };
    let d = Design::build(&f, &rows, &s).expect("demo design");
    let w = d.weights();
    let items = ["theft_12m", "assault_12m", "burglary_12m", "fraud_12m"];
    let mut ys = Vec::new();
    let mut doms = Vec::new();
    for it in items {
        let v = num(&f, it);
        ys.push(
            rows.iter()
                .map(|&r| f64::from(v[r] == 1.0))
                .collect::<Vec<f64>>(),
        );
        doms.push(
            rows.iter()
                .map(|&r| v[r] == 1.0 || v[r] == 2.0)
                .collect::<Vec<bool>>(),
        );
    }
    let stats: Vec<Statistic<'_>> = (0..items.len())
        .map(|k| Statistic {
            kind: IndicatorKind::Proportion,
            y: &ys[k],
            x: None,
            domain: &doms[k],
        })
        .collect();
    let taylor: Vec<f64> = (0..items.len())
        .map(|k| {
            let (y, dm) = (&ys[k], &doms[k]);
            let sw: f64 = (0..w.len()).filter(|&i| dm[i]).map(|i| w[i]).sum();
            let p: f64 = (0..w.len())
                .filter(|&i| dm[i])
                .map(|i| w[i] * y[i])
                .sum::<f64>()
                / sw;
            let z: Vec<f64> = (0..w.len())
                .map(|i| if dm[i] { w[i] * (y[i] - p) / sw } else { 0.0 })
                .collect();
            d.variance(&z, Some(dm)).expect("taylor").sqrt()
        })
        .collect();
    let reps = 500;
    let boot = ReplicateDesign::from_design(
        &d,
        &ReplicateMethod::Bootstrap {
            replicates: reps,
            seed: 1,
        },
        &OPT,
    )
    .expect("boot");
    let jkn = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
    assert_eq!(jkn.degf(), d.degf(&vec![true; rows.len()]));
    let tol = 4.0 / (2.0 * reps as f64).sqrt();
    for (name, rd, tol) in [("bootstrap", &boot, tol), ("JKn", &jkn, 0.01)] {
        let v = rd.estimate(&stats).variance;
        for k in 0..items.len() {
            let se = v[k].sqrt();
            eprintln!(
                "demo {} {name}: SE {se:.6e} vs Taylor {:.6e}, rel diff {:.4}",
                items[k],
                taylor[k],
                rel(se, taylor[k])
            );
            assert!(rel(se, taylor[k]) < tol, "{name} {}", items[k]);
        }
    }
}

/// A tall n × m matrix, column after column, of pseudo-random entries in (0.5, 1.5).
fn tall_matrix(n: usize, m: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n * m)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.5 + (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn rank_shown_on_a_subset_equals_the_full_computation() {
    let (n, m) = (2000, 20);
    let a = tall_matrix(n, m, 7);
    assert!(full_rank_on_subset(&a, n, m));
    assert_eq!(numerical_rank(&a, n, m), m);
    assert_eq!(rank_by_gram_schmidt(&a, n, m), m);
}

#[test]
fn a_dependent_column_falls_back_to_the_full_computation() {
    let (n, m) = (2000, 20);
    let mut a = tall_matrix(n, m, 11);
    // Column 5 = column 1 + column 2: rank m − 1 by either route.
    for i in 0..n {
        a[5 * n + i] = a[n + i] + a[2 * n + i];
    }
    assert!(!full_rank_on_subset(&a, n, m));
    assert_eq!(numerical_rank(&a, n, m), m - 1);
    assert_eq!(rank_by_gram_schmidt(&a, n, m), m - 1);
}

#[test]
fn a_column_independent_only_off_the_subset_keeps_full_rank() {
    let (n, m) = (2000, 20);
    let mut a = tall_matrix(n, m, 13);
    // Column 3 equals column 0 on every row of the subset (every 25th row) but not on row 1:
    // the subset cannot show independence, the full computation finds it.
    for i in 0..n {
        a[3 * n + i] = a[i];
    }
    a[3 * n + 1] += 1.0;
    assert!(!full_rank_on_subset(&a, n, m));
    assert_eq!(numerical_rank(&a, n, m), m);
}

/// A stratified one-stage design in CSV: stratum sizes `sizes`, one row per PSU with y and
/// weight pw (deterministic values), and an fpc column when `popsize` is given.
fn synthetic_strata(sizes: &[usize], popsize: Option<&[f64]>) -> Frame {
    let mut text = String::from("h,psu,y,pw,fpc\n");
    let mut p = 0;
    for (h, &n) in sizes.iter().enumerate() {
        for j in 0..n {
            p += 1;
            let y = 10.0 + ((p * 37 + h * 11) % 23) as f64 + j as f64 * 0.5;
            let pw = 3.0 + (p % 4) as f64;
            let fpc = popsize.map_or(1000.0, |v| v[h]);
            text.push_str(&format!("S{h},{p},{y},{pw},{fpc}\n"));
        }
    }
    crate::test_support::frame(&text)
}

/// Replicate variance of the total of y (replicate totals of Σ f w y) for a replicate design.
fn total_variance(rd: &ReplicateDesign, y: &[f64]) -> f64 {
    let full: f64 = rd.base_weights().iter().zip(y).map(|(w, y)| w * y).sum();
    let thetas: Vec<f64> = (0..rd.n_replicates())
        .map(|r| {
            rd.replicate_weights(r)
                .iter()
                .zip(y)
                .map(|(w, y)| w * y)
                .sum()
        })
        .collect();
    rd.variance(&thetas, full)
}

/// Mean and Monte-Carlo standard error of `v(seed)` over `seeds` seeds.
fn monte_carlo(seeds: u64, v: impl Fn(u64) -> f64) -> (f64, f64) {
    let vs: Vec<f64> = (1..=seeds).map(v).collect();
    let n = vs.len() as f64;
    let mean = vs.iter().sum::<f64>() / n;
    let var = vs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Rao–Wu (n_h − 1 draws, factor n_h/(n_h − 1)) with SAS's 1/(R − 1) is unbiased for the
/// with-replacement Taylor variance of a total; R's bootweights counts (n_h draws) with the
/// same 1/(R − 1) — what the Stata/SAS profiles did before — have expectation
/// Σ_h (n_h − 1)/n_h V_h, short by (n_h − 1)/n_h. Fixed seeds: deterministic.
#[test]
fn rao_wu_bootstrap_expected_variance_of_a_total_is_the_with_replacement_taylor_variance() {
    let sizes = [2, 3, 5, 8];
    let f = synthetic_strata(&sizes, None);
    let d = design(&f, &spec(Some("h"), &["psu"], &[], LonelyPsu::Fail));
    let y = num(&f, "y");
    let scores: Vec<f64> = d.weights().iter().zip(&y).map(|(w, y)| w * y).collect();
    let taylor = d.variance(&scores, None).expect("taylor");
    // Per-stratum Taylor variances, to give the expectation of the n_h-draw bootstrap.
    let short: f64 = (0..sizes.len())
        .map(|h| {
            let in_h: Vec<f64> = scores
                .iter()
                .zip(d.stratum_of_row())
                .map(|(&z, &s)| if s as usize == h { z } else { 0.0 })
                .collect();
            let n = sizes[h] as f64;
            (n - 1.0) / n * d.variance(&in_h, None).expect("v_h")
        })
        .sum();
    let reps = 100;
    let (mean, mc_se) = monte_carlo(2000, |seed| {
        let rd = ReplicateDesign::from_design(
            &d,
            &ReplicateMethod::RaoWu {
                replicates: reps,
                seed,
            },
            &OPT,
        )
        .expect("rao-wu");
        assert_eq!(rd.scale(), 1.0 / (reps as f64 - 1.0));
        total_variance(&rd, &y)
    });
    eprintln!("Rao-Wu: E[v] {mean} ± {mc_se}, Taylor {taylor}");
    assert!(
        (mean - taylor).abs() < 4.0 * mc_se,
        "{mean} ± {mc_se} vs {taylor}"
    );
    assert!(mc_se < 0.005 * taylor, "too few seeds to tell: {mc_se}");
    // The old convention: n_h draws with replacement, 1/(R − 1).
    let (old, old_se) = monte_carlo(2000, |seed| {
        let mut rd = ReplicateDesign::from_design(
            &d,
            &ReplicateMethod::Bootstrap {
                replicates: reps,
                seed,
            },
            &OPT,
        )
        .expect("bootstrap");
        rd.set_scale(1.0 / (reps as f64 - 1.0));
        total_variance(&rd, &y)
    });
    eprintln!("n_h draws: E[v] {old} ± {old_se}, expected {short}");
    assert!((old - short).abs() < 4.0 * old_se);
    assert!(
        taylor - old > 10.0 * old_se,
        "the understatement is visible"
    );
}

/// Rao–Wu in strata of one PSU follows lonely_psu: fail and adjust are errors naming the
/// stratum, remove and certainty keep its factor at 1, average also scales the variance by
/// H / (H − lonely strata); a certainty stratum (N_h = n_h) keeps factor 1.
#[test]
fn rao_wu_lonely_strata_follow_lonely_psu() {
    let f = synthetic_strata(&[3, 1, 4], None);
    let method = ReplicateMethod::RaoWu {
        replicates: 20,
        seed: 5,
    };
    let build = |lonely| {
        let d = design(&f, &spec(Some("h"), &["psu"], &[], lonely));
        ReplicateDesign::from_design(&d, &method, &OPT)
    };
    assert_eq!(
        build(LonelyPsu::Fail).expect_err("refused"),
        ReplicateError::LonelyPsu("S1".into())
    );
    assert_eq!(
        build(LonelyPsu::Adjust).expect_err("refused"),
        ReplicateError::LonelyAdjust("S1".into())
    );
    let remove = build(LonelyPsu::Remove).expect("remove");
    let certainty = build(LonelyPsu::Certainty).expect("certainty");
    let average = build(LonelyPsu::Average).expect("average");
    assert_eq!(remove, certainty);
    for r in 0..remove.n_replicates() {
        // PSU 3 (0-based) is the lonely stratum's.
        assert_eq!(remove.psu_factors(r).expect("f")[3], 1.0);
    }
    assert!((average.scale() - remove.scale() * 3.0 / 2.0).abs() < 1e-15);
    // Certainty stratum: factor 1 in every replicate.
    let g = synthetic_strata(&[3, 2, 4], Some(&[100.0, 2.0, 50.0]));
    let d = design(&g, &spec(Some("h"), &["psu"], &["fpc"], LonelyPsu::Fail));
    let rd = ReplicateDesign::from_design(&d, &method, &OPT).expect("rao-wu");
    for r in 0..rd.n_replicates() {
        assert_eq!(&rd.psu_factors(r).expect("f")[3..5], &[1.0, 1.0]);
    }
}

const SSU: ReplicateOptions = ReplicateOptions {
    mse: false,
    certainty: Certainty::Ssu,
};

/// SEs of mean(y), total(y) and ratio(y/x) over the whole sample.
fn certainty_se(rd: &ReplicateDesign, f: &Frame) -> [f64; 3] {
    let (y, x) = (num(f, "y"), num(f, "x"));
    let all = vec![true; f.n_rows()];
    let stat = |kind| Statistic {
        kind,
        y: &y,
        x: None,
        domain: &all,
    };
    let stats = [
        stat(IndicatorKind::Mean),
        stat(IndicatorKind::Total),
        Statistic {
            x: Some(&x),
            ..stat(IndicatorKind::Ratio)
        },
    ];
    let v = rd.estimate(&stats).variance;
    [v[0].sqrt(), v[1].sqrt(), v[2].sqrt()]
}

/// R's SEs by column of `certainty_se.csv`.
fn certainty_reference(column: &str) -> [f64; 3] {
    let (h, rows) = read("replicates/certainty_se.csv");
    let c = h.iter().position(|x| x == column).expect("column");
    let get = |k: usize| {
        rows[k][c]
            .as_deref()
            .expect("cell")
            .parse::<f64>()
            .expect("number")
    };
    [get(0), get(1), get(2)]
}

fn certainty_design(f: &Frame) -> Design {
    let mut s = spec(Some("h"), &["psu", "ssu"], &["N1", "N2"], LonelyPsu::Fail);
    s.nest = true;
    design(f, &s)
}

/// JKn with certainty = "ssu" deletes households within the certainty PSUs: it equals R's JKn on
/// the variance strata (a certainty PSU a stratum of its households) to rounding, and is close
/// to R's multistage Taylor SE, which adds only f_h V_2h in the other strata on top. Without it
/// the certainty strata carry no variance at all.
#[test]
fn jkn_with_certainty_ssu_matches_r_on_certainty_psus() {
    let f = frame("replicates/certainty_data.csv");
    let d = certainty_design(&f);
    let rd = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &SSU).expect("jkn ssu");
    let se = certainty_se(&rd, &f);
    let jkn_r = certainty_reference("jkn_variance_strata");
    let taylor_r = certainty_reference("taylor_multistage");
    for k in 0..3 {
        assert!(
            rel(se[k], jkn_r[k]) < 1e-10,
            "{k}: {} vs R {}",
            se[k],
            jkn_r[k]
        );
        assert!(
            rel(se[k], taylor_r[k]) < 0.02,
            "{k}: {} vs Taylor {}",
            se[k],
            taylor_r[k]
        );
    }
    // One replicate per household of the certainty PSUs A1..A3, B1, B2 and per PSU elsewhere.
    let vunit = match &f.column("vunit").expect("vunit").data {
        ColumnData::Text { codes, .. } => codes.clone(),
        ColumnData::Num(_) => panic!("vunit is text"),
    };
    let mut units = vunit.clone();
    units.sort_unstable();
    units.dedup();
    assert_eq!(rd.n_replicates(), units.len());
    // The memory check counts the same units without building them.
    assert_eq!(
        super::n_replication_units(&d, super::Certainty::Ssu),
        units.len()
    );
    assert_eq!(
        super::n_replication_units(&d, super::Certainty::Psu),
        d.n_psu()
    );
    // Our own Taylor variance agrees with R's multistage one (the reference is consistent).
    let y = num(&f, "y");
    let scores: Vec<f64> = d.weights().iter().zip(&y).map(|(w, y)| w * y).collect();
    let taylor = d.variance(&scores, None).expect("taylor").sqrt();
    assert!(
        rel(taylor, taylor_r[1]) < 1e-10,
        "{taylor} vs {}",
        taylor_r[1]
    );
    // First-stage PSUs only: the certainty strata give no replicate, the SE is too small.
    let psu = ReplicateDesign::from_design(&d, &ReplicateMethod::Jkn, &OPT).expect("jkn");
    let se_psu = certainty_se(&psu, &f);
    assert!(se_psu[1] < 0.95 * se[1], "{} vs {}", se_psu[1], se[1]);
    // BRR cannot pair households; a one-stage design has no households.
    assert_eq!(
        ReplicateDesign::from_design(&d, &ReplicateMethod::Brr, &SSU).expect_err("refused"),
        ReplicateError::CertaintyPairs("BRR")
    );
    let one_stage = design(&f, &spec(Some("h"), &["psu"], &["N1"], LonelyPsu::Fail));
    assert_eq!(
        ReplicateDesign::from_design(&one_stage, &ReplicateMethod::Jkn, &SSU).expect_err("refused"),
        ReplicateError::CertaintyOneStage
    );
}

/// Rao–Wu with certainty = "ssu": over many seeds the variance of a total averages to the
/// with-replacement Taylor variance of the variance strata (households in certainty PSUs, PSUs
/// elsewhere); R's bootweights with ssu come within Monte-Carlo error of the Taylor SE with FPC.
#[test]
fn bootstrap_with_certainty_ssu_is_unbiased_for_the_variance_strata() {
    let f = frame("replicates/certainty_data.csv");
    let d = certainty_design(&f);
    let y = num(&f, "y");
    let strata = design(&f, &spec(Some("vstrat"), &["vunit"], &[], LonelyPsu::Fail));
    let scores: Vec<f64> = d.weights().iter().zip(&y).map(|(w, y)| w * y).collect();
    let taylor = strata.variance(&scores, None).expect("taylor");
    let (mean, mc_se) = monte_carlo(1000, |seed| {
        let method = ReplicateMethod::RaoWu {
            replicates: 100,
            seed,
        };
        let rd = ReplicateDesign::from_design(&d, &method, &SSU).expect("rao-wu");
        total_variance(&rd, &y)
    });
    eprintln!("Rao-Wu ssu: E[v] {mean} ± {mc_se}, Taylor {taylor}");
    assert!(
        (mean - taylor).abs() < 4.0 * mc_se,
        "{mean} ± {mc_se} vs {taylor}"
    );
    assert!(mc_se < 0.01 * taylor);
    let reps = 4000;
    let method = ReplicateMethod::Bootstrap {
        replicates: reps,
        seed: 20261207,
    };
    let rd = ReplicateDesign::from_design(&d, &method, &SSU).expect("bootstrap");
    let se = total_variance(&rd, &y).sqrt();
    let taylor_r = certainty_reference("taylor_multistage")[1];
    // R's bootweights are exact only on average over strata (harmonic-mean correction): allow
    // 4 Monte-Carlo SDs (1/sqrt(2R) relative) plus 5% for that approximation.
    let tol = 4.0 / (2.0 * reps as f64).sqrt() + 0.05;
    eprintln!("bootstrap ssu: SE {se} vs Taylor {taylor_r}");
    assert!(rel(se, taylor_r) < tol, "{se} vs {taylor_r}");
}
