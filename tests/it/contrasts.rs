//! `[[contrast]]`: differences between two domain estimates with their covariance, against R's
//! `svyby(..., covmat = TRUE)` + `svycontrast` on two pooled survey waves
//! (`fixtures/waves/make_waves.R`), and the bad inputs that must stop a run before the data is
//! read.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::{read_estimates, relocated_config, root, scratch};

/// One row of `contrasts.parquet`.
#[derive(Debug, Clone)]
struct Contrast {
    key: [String; 6],
    estimate: Option<f64>,
    se: Option<f64>,
    ci: (Option<f64>, Option<f64>),
    df: Option<f64>,
    p_value: Option<f64>,
    n: (i64, i64),
}

fn read_contrasts(path: &Path) -> Vec<Contrast> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.expect("batch");
        let s = |n: &str| batch.column_by_name(n).expect(n).as_string::<i32>().clone();
        let f = |n: &str| {
            batch
                .column_by_name(n)
                .expect(n)
                .as_primitive::<Float64Type>()
                .clone()
        };
        let i = |n: &str| {
            batch
                .column_by_name(n)
                .expect(n)
                .as_primitive::<Int64Type>()
                .clone()
        };
        let text: Vec<_> = [
            "contrast",
            "indicator",
            "weighting",
            "variance",
            "within_var",
            "within_value",
        ]
        .iter()
        .map(|n| s(n))
        .collect();
        let nums: Vec<_> = ["estimate", "se", "ci_low", "ci_high", "df", "p_value"]
            .iter()
            .map(|n| f(n))
            .collect();
        let (first, second) = (i("n_unweighted_first"), i("n_unweighted_second"));
        let opt = |a: &arrow_array::Float64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));
        for r in 0..batch.num_rows() {
            out.push(Contrast {
                key: std::array::from_fn(|k| text[k].value(r).to_string()),
                estimate: opt(&nums[0], r),
                se: opt(&nums[1], r),
                ci: (opt(&nums[2], r), opt(&nums[3], r)),
                df: opt(&nums[4], r),
                p_value: opt(&nums[5], r),
                n: (first.value(r), second.value(r)),
            });
        }
    }
    out
}

fn run_waves(config: &str, name: &str, extra: &[(&str, &str)]) -> (PathBuf, Vec<Contrast>) {
    let dir = scratch(name);
    let config = relocated_config(&root().join("fixtures/waves").join(config), &dir, extra);
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let out = dir.join("out");
    let rows = read_contrasts(&out.join("contrasts.parquet"));
    (out, rows)
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no value, R has {want}"));
    let rel = (got - want).abs() / want.abs().max(1e-300);
    assert!(
        rel < 1e-8,
        "{what}: cvsurvey {got}, R {want} (rel {rel:.2e})"
    );
}

/// Compare every row of R's reference for `variances` with the run's rows.
fn against_r(rows: &[Contrast], variances: &[&str]) {
    let text = std::fs::read_to_string(root().join("fixtures/waves/reference.csv")).expect("ref");
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if !variances.contains(&f[3]) {
            continue;
        }
        let key: [String; 6] = std::array::from_fn(|k| f[k].to_string());
        let row = rows
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no contrast row {key:?}"));
        let num = |k: usize| f[k].parse::<f64>().expect("number");
        let what = key.join("/");
        close(row.estimate, num(6), &format!("{what} estimate"));
        close(row.se, num(7), &format!("{what} se"));
        close(row.df, num(8), &format!("{what} df"));
        close(row.p_value, num(9), &format!("{what} p-value"));
        checked += 1;
    }
    // 2 contrasts x 3 indicators x 2 schemes x 3 levels per variance method.
    assert_eq!(checked, 36 * variances.len());
}

#[test]
fn taylor_and_jkn_contrasts_match_r() {
    let (_, rows) = run_waves("waves.toml", "contrasts-waves", &[]);
    against_r(&rows, &["taylor", "jkn"]);
    assert_eq!(
        rows.len(),
        72,
        "contrast x indicator x scheme x method x level"
    );
}

#[test]
fn supplied_bootstrap_contrasts_match_r() {
    let (_, rows) = run_waves("waves_supplied.toml", "contrasts-waves-supplied", &[]);
    against_r(&rows, &["supplied"]);
}

/// Waves are independent samples (each has its own strata): the variance of the change is the
/// sum of the two waves' variances, read from `estimates.parquet`; the interval is the Wald
/// interval on the design df and the counts are the domains' respondents.
#[test]
fn change_between_independent_waves_has_no_covariance() {
    let (out, rows) = run_waves(
        "waves.toml",
        "contrasts-independent",
        &[("method = ", "method = \"taylor\"")],
    );
    let (estimates, _) = read_estimates(&out.join("estimates.parquet"));
    let mut checked = 0;
    for c in rows
        .iter()
        .filter(|c| c.key[0] == "change" && c.key[4] == "_T" && c.key[2] == "design")
    {
        let wave = |code: &str| {
            estimates
                .iter()
                .find(|e| {
                    e.indicator == c.key[1]
                        && e.weighting == "design"
                        && e.domain_var == "wave"
                        && e.domain_value == code
                })
                .expect("wave estimate")
        };
        let (a, b) = (wave("2025"), wave("2022"));
        let (ea, eb) = (a.estimate.expect("a"), b.estimate.expect("b"));
        let (sa, sb) = (a.se.expect("a"), b.se.expect("b"));
        close(c.estimate, ea - eb, "difference of the wave estimates");
        close(c.se, (sa * sa + sb * sb).sqrt(), "se of independent waves");
        assert_eq!(c.n, (a.n_unweighted, b.n_unweighted));
        let (est, se, df) = (c.estimate.expect("e"), c.se.expect("se"), c.df.expect("df"));
        let q = (c.ci.1.expect("hi") - est) / se;
        close(c.ci.0, est - q * se, "symmetric interval");
        // The t quantile on 80 df at 95 %, R qt(0.975, 80).
        assert_eq!(df, 80.0);
        assert!((q - 1.990_063_421_028_204).abs() < 1e-9, "t quantile {q}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Contrast rows do not depend on the order of the input rows.
#[test]
fn contrasts_are_invariant_to_row_order() {
    let (_, rows) = run_waves(
        "waves.toml",
        "contrasts-order-a",
        &[("method = ", "method = \"taylor\"")],
    );
    let dir = scratch("contrasts-order-b");
    let text = std::fs::read_to_string(root().join("fixtures/waves/waves.csv")).expect("data");
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let data = dir.join("reversed.csv");
    std::fs::write(&data, format!("{header}\n{}\n", lines.join("\n"))).expect("write");
    let path_line = format!("path = \"{}\"", data.display());
    let config = relocated_config(
        &root().join("fixtures/waves/waves.toml"),
        &dir,
        &[
            ("path = ", &path_line),
            ("method = ", "method = \"taylor\""),
        ],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let reversed = read_contrasts(&dir.join("out/contrasts.parquet"));
    assert_eq!(rows.len(), reversed.len());
    for (a, b) in rows.iter().zip(&reversed) {
        assert_eq!(a.key, b.key);
        assert_eq!(a.n, b.n);
        for (x, y) in [
            (a.estimate, b.estimate),
            (a.se, b.se),
            (a.p_value, b.p_value),
        ] {
            let (x, y) = (x.expect("x"), y.expect("y"));
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1e-3),
                "{:?}: {x} vs {y}",
                a.key
            );
        }
    }
}

/// A config whose contrasts are wrong stops with an error naming the contrast, before the data
/// is read (the data path points at nothing).
#[test]
fn bad_contrasts_are_config_errors() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "by = \"wave\"",
            "by = \"season\"",
            "by \"season\" is neither a variable",
        ),
        (
            "compare = [\"2025\", \"2022\"]",
            "compare = [\"2025\", \"2019\"]",
            "compare code \"2019\" is not a code of wave",
        ),
        (
            "indicators = [\"*\"]",
            "indicators = [\"no_such_indicator\"]",
            "\"no_such_indicator\" is not an indicator",
        ),
        (
            "name = \"gap\"",
            "name = \"change\"",
            "\"change\" is the name of an earlier contrast",
        ),
        (
            "compare = [\"2025\", \"2022\"]",
            "compare = [\"2025\"]",
            "compare takes two codes of wave",
        ),
    ];
    for (k, (from, to, expected)) in cases.iter().enumerate() {
        let dir = scratch(&format!("contrasts-bad-{k}"));
        let config = relocated_config(
            &root().join("fixtures/waves/waves.toml"),
            &dir,
            &[("path = ", "path = \"/nonexistent/waves.csv\"")],
        );
        let text = std::fs::read_to_string(&config).expect("config");
        assert!(text.contains(from), "{from}");
        std::fs::write(&config, text.replacen(from, to, 1)).expect("write");
        let err = cvsurvey::pipeline::run(&config, Default::default())
            .expect_err("bad contrast must fail")
            .to_string();
        assert!(err.contains(expected), "{to}: {err}");
        assert!(
            !err.contains("nonexistent"),
            "failed on the data, not the config: {err}"
        );
    }
}

/// A code of an undeclared (free-text or numeric) `by` variable that no respondent has is an
/// error naming the codes present.
#[test]
fn compare_code_without_respondents_is_an_error() {
    let dir = scratch("contrasts-absent-code");
    let config = relocated_config(
        &root().join("fixtures/waves/waves.toml"),
        &dir,
        &[("method = ", "method = \"taylor\"")],
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replacen("by = \"wave\"", "by = \"wave_stratum\"", 1)
        .replacen(
            "compare = [\"2025\", \"2022\"]",
            "compare = [\"2025-R01-U\", \"2019-R01-U\"]",
            1,
        );
    std::fs::write(&config, text).expect("write");
    let err = cvsurvey::pipeline::run(&config, Default::default())
        .expect_err("absent code")
        .to_string();
    assert!(
        err.contains("compare code \"2019-R01-U\" of wave_stratum has no respondents"),
        "{err}"
    );
}

/// `[design] strata = ["wave", "stratum"]`: the combination of the two columns is the stratum,
/// the same design as a column holding wave-stratum codes, so the same estimates and contrasts.
#[test]
fn strata_from_two_columns_equal_their_combined_codes() {
    let taylor = [("method = ", "method = [\"taylor\", \"jkn\"]")];
    let (combined_out, combined) = run_waves("waves.toml", "contrasts-strata-combined", &taylor);
    let (listed_out, listed) = run_waves(
        "waves.toml",
        "contrasts-strata-listed",
        &[taylor[0], ("strata = ", "strata = [\"wave\", \"stratum\"]")],
    );
    assert_eq!(combined.len(), listed.len());
    for (a, b) in combined.iter().zip(&listed) {
        assert_eq!(a.key, b.key);
        assert_eq!(
            (a.estimate, a.se, a.df, a.n),
            (b.estimate, b.se, b.df, b.n),
            "{:?}",
            a.key
        );
    }
    let (e1, _) = read_estimates(&combined_out.join("estimates.parquet"));
    let (e2, _) = read_estimates(&listed_out.join("estimates.parquet"));
    assert_eq!(e1, e2);
}

/// Elementary minus high schools on R's api data, overall and within sch.wide: single-stage
/// designs with and without calibration, a two-stage design (row scores) and JKn replicates
/// recalibrated per replicate (`fixtures/api/make_contrasts.R`).
#[test]
fn api_contrasts_match_r() {
    let text =
        std::fs::read_to_string(root().join("fixtures/api/contrasts_reference.csv")).expect("ref");
    let mut checked = 0;
    for config in [
        "strat_fpc",
        "clus1_fpc",
        "clus2_fpc2stage",
        "strat_nofpc_jkn",
    ] {
        let dir = scratch(&format!("contrasts-api-{config}"));
        let path = relocated_config(
            &root().join(format!("fixtures/api/{config}.toml")),
            &dir,
            &[("indicators = ", "indicators = [\"*\"]")],
        );
        let mut toml = std::fs::read_to_string(&path).expect("config");
        toml.push_str(
            "\n[[contrast]]\nname = \"E_minus_H\"\nindicators = [\"api00\", \"enroll_total\", \"api_stu_per_enroll\"]\nby = \"stype\"\ncompare = [\"E\", \"H\"]\nwithin = [\"sch.wide\"]\n",
        );
        std::fs::write(&path, toml).expect("write");
        cvsurvey::pipeline::run(&path, Default::default()).expect("run");
        let rows = read_contrasts(&dir.join("out/contrasts.parquet"));
        for line in text
            .lines()
            .skip(1)
            .filter(|l| l.starts_with(&format!("{config},")))
        {
            let f: Vec<&str> = line.split(',').collect();
            let key: [String; 6] = std::array::from_fn(|k| f[k + 1].to_string());
            let row = rows
                .iter()
                .find(|r| r.key == key)
                .unwrap_or_else(|| panic!("{config}: no contrast row {key:?}"));
            let num = |k: usize| f[k].parse::<f64>().expect("number");
            let what = format!("{config}/{}", key.join("/"));
            close(row.estimate, num(7), &format!("{what} estimate"));
            close(row.se, num(8), &format!("{what} se"));
            close(row.df, num(9), &format!("{what} df"));
            close(row.p_value, num(10), &format!("{what} p-value"));
            checked += 1;
        }
    }
    assert_eq!(checked, 72);
}
