//! Item-level editing and totals with item nonresponse, through `cvsurvey run`: an invalid
//! answer is blanked (or quarantines its row), and each estimate reports the weighted share of
//! its universe with a missing item (`item_missing_share`), flagging totals above 5 %.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::{design_questionnaire, scratch};

const VARIABLES: &str = r#"
[[variables]]
name = "sex"
codes = { 1 = "Male", 2 = "Female" }

[[variables]]
name = "spend"
type = "numeric"
range = [0, 1000]

[[indicators]]
id = "total_spend"
kind = "total"
value = "spend"

[[indicators]]
id = "mean_spend"
kind = "mean"
value = "spend"
"#;

/// (stratum, psu, weight, sex, spend as written): row 3 is blank, row 6 out of range.
const ROWS: [(&str, u32, f64, u8, &str); 8] = [
    ("A", 1, 10.0, 1, "100"),
    ("A", 1, 12.0, 2, "80"),
    ("A", 2, 14.0, 1, ""),
    ("A", 2, 16.0, 2, "60"),
    ("B", 3, 18.0, 1, "40"),
    ("B", 3, 20.0, 2, "5000"),
    ("B", 4, 22.0, 1, "20"),
    ("B", 4, 24.0, 2, "10"),
];

fn write_case(dir: &Path, invalid_answer: &str) -> PathBuf {
    std::fs::write(
        dir.join("q.toml"),
        design_questionnaire("editing", VARIABLES),
    )
    .expect("questionnaire");
    let mut csv = String::from("id,stratum,psu,w,sex,spend\n");
    for (i, (s, psu, w, sex, spend)) in ROWS.iter().enumerate() {
        writeln!(csv, "r{i},{s},{psu},{w},{sex},{spend}").expect("format");
    }
    std::fs::write(dir.join("data.csv"), csv).expect("data");
    let config = format!(
        r#"questionnaire = "q.toml"
[data]
path = "data.csv"
id = "id"
[design]
strata = "stratum"
psu = "psu"
weight = "w"
[validation]
invalid_answer = "{invalid_answer}"
[estimation]
domains = ["sex"]
[reliability]
preset = "statcan"
suppress = false
[output]
dir = "out"
formats = ["parquet", "csv"]
"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// (indicator, domain value) → (item_missing_share, flag, flag_reason), from estimates.csv.
fn shares(dir: &Path) -> Vec<(String, String, Option<f64>, String, String)> {
    let mut reader = csv::Reader::from_path(dir.join("out/estimates.csv")).expect("csv");
    let header = reader.headers().expect("header").clone();
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert_eq!(
        header.iter().next_back(),
        Some("item_missing_share"),
        "the new column comes last"
    );
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            (
                r[at("indicator")].to_string(),
                r[at("domain_value")].to_string(),
                r[at("item_missing_share")].parse::<f64>().ok(),
                r[at("flag")].to_string(),
                r[at("flag_reason")].to_string(),
            )
        })
        .collect()
}

fn share_of(rows: &[(String, String, Option<f64>, String, String)], ind: &str, dom: &str) -> f64 {
    rows.iter()
        .find(|r| r.0 == ind && r.1 == dom)
        .and_then(|r| r.2)
        .unwrap_or_else(|| panic!("{ind} {dom}: {rows:?}"))
}

#[test]
fn blanked_answers_count_as_item_nonresponse_and_flag_the_total() {
    let dir = scratch("editing-blank");
    let config = write_case(&dir, "blank");
    let report = cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    assert_eq!((report.rows_read, report.rows_quarantined), (8, 0));
    let findings = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    assert!(
        findings.contains("r5,spend,5000,out_of_range,") && findings.contains(",blanked\n"),
        "{findings}"
    );
    let rows = shares(&dir);
    let total_w: f64 = ROWS.iter().map(|r| r.2).sum();
    // Rows 3 (blank, w 14) and 6 (blanked, w 20) have no spend.
    let expected = (14.0 + 20.0) / total_w;
    for ind in ["total_spend", "mean_spend"] {
        assert!((share_of(&rows, ind, "_T") - expected).abs() < 1e-14);
    }
    let male_w: f64 = ROWS.iter().filter(|r| r.3 == 1).map(|r| r.2).sum();
    assert!((share_of(&rows, "total_spend", "1") - 14.0 / male_w).abs() < 1e-14);
    // Only the total is flagged for it (the mean leaves the missing out of both sums).
    for r in &rows {
        let flagged = r.4.contains("item nonresponse");
        assert_eq!(flagged, r.0 == "total_spend", "{r:?}");
        if flagged {
            // At least a caution; a cell the preset suppresses stays suppressed.
            assert!(r.3 == "caution" || r.3 == "suppressed", "{r:?}");
        }
    }
}

#[test]
fn quarantine_removes_the_row_and_leaves_the_blank() {
    let dir = scratch("editing-quarantine");
    let config = write_case(&dir, "quarantine");
    let report = cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    assert_eq!((report.rows_read, report.rows_quarantined), (8, 1));
    let quarantine = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("q");
    assert!(
        quarantine.contains("r5,spend,5000,out_of_range,"),
        "{quarantine}"
    );
    assert!(
        quarantine.trim_end().ends_with(",quarantined"),
        "{quarantine}"
    );
    let rows = shares(&dir);
    let kept_w: f64 = ROWS.iter().map(|r| r.2).sum::<f64>() - 20.0;
    assert!((share_of(&rows, "total_spend", "_T") - 14.0 / kept_w).abs() < 1e-14);
    // Women: nothing missing once row 6 is gone.
    assert_eq!(share_of(&rows, "total_spend", "2"), 0.0);
}

#[test]
fn max_item_missing_share_sets_the_limit_for_totals() {
    let dir = scratch("editing-limit");
    let config = write_case(&dir, "blank");
    let text = std::fs::read_to_string(&config).expect("config");
    // The whole-population share is 34 / Σw, well under 90 %: nothing is flagged for it.
    std::fs::write(
        &config,
        text.replace(
            "suppress = false",
            "suppress = false\nmax_item_missing_share = 0.9",
        ),
    )
    .expect("config");
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let rows = shares(&dir);
    assert!(rows.iter().any(|r| r.0 == "total_spend"));
    for r in &rows {
        if r.2.is_some_and(|s| s <= 0.9) {
            assert!(!r.4.contains("item nonresponse"), "{r:?}");
        }
    }
    let e = cvsurvey::pipeline::run(
        {
            std::fs::write(
                &config,
                text.replace(
                    "suppress = false",
                    "suppress = false\nmax_item_missing_share = 5",
                ),
            )
            .expect("config");
            &config
        },
        Default::default(),
    )
    .expect_err("a percentage")
    .to_string();
    assert!(e.contains("reliability.max_item_missing_share"), "{e}");
}
