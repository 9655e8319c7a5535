//! Fieldwork files as national offices and CAPI systems export them (`[data] delimiter`,
//! `decimal`, `encoding`; `.tsv` files): the same survey in each form gives byte-identical
//! estimates, and a format that does not fit the file is refused naming the file, key and value.

use std::path::Path;

use crate::common::{config_for, cvsurvey, demo_rows, root, scratch};

/// The demo data as a European export: semicolons, decimal commas, and the stratum labels
/// (a text column) led by accented place names, in Windows-1250. The common lead keeps the
/// strata in the same order, so their labels change and nothing else does.
fn european_export(rows: &[Vec<String>]) -> Vec<u8> {
    let stratum = rows[0]
        .iter()
        .position(|c| c == "stratum")
        .expect("stratum column");
    let mut text = String::new();
    for (r, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(k, cell)| {
                if r > 0 && k == stratum {
                    format!("Čačak–Łódź {cell}")
                } else if cell.parse::<f64>().is_ok() {
                    cell.replace('.', ",")
                } else {
                    cell.clone()
                }
            })
            .collect();
        text.push_str(&cells.join(";"));
        text.push_str("\r\n");
    }
    assert!(text.contains("185,8943"), "decimal commas written");
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1250.encode(&text);
    assert!(!lossy, "every character has a Windows-1250 byte");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the file is not UTF-8"
    );
    bytes.into_owned()
}

fn run_estimates(dir: &Path, config: &Path) -> (String, Vec<u8>) {
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let estimates = std::fs::read(dir.join("out/estimates.csv")).expect("estimates.csv");
    (stdout, estimates)
}

#[test]
fn the_demo_as_a_european_export_or_a_tsv_file_gives_byte_identical_estimates() {
    let rows = demo_rows();
    let plain_dir = scratch("locale-plain");
    let plain_config = config_for(&plain_dir, &root().join("fixtures/demo/data.csv"), "");
    let (stdout, plain) = run_estimates(&plain_dir, &plain_config);
    assert!(
        !stdout.contains("(delimiter"),
        "a comma is not said: {stdout}"
    );

    let dir = scratch("locale-european");
    let data = dir.join("returns.csv");
    std::fs::write(&data, european_export(&rows)).expect("write");
    let keys = "delimiter = \";\"\ndecimal = \",\"\nencoding = \"windows-1250\"";
    let (stdout, european) = run_estimates(&dir, &config_for(&dir, &data, keys));
    assert!(stdout.contains("(delimiter \";\")"), "{stdout}");
    assert!(!stdout.contains("invalid_encoding"), "{stdout}");
    assert!(
        plain == european,
        "the European export gives other estimates than the plain demo"
    );
    // The delimiter detected from the header (said in the summary) gives the same.
    let dir = scratch("locale-european-detected");
    let data = dir.join("returns.csv");
    std::fs::write(&data, european_export(&rows)).expect("write");
    let keys = "decimal = \",\"\nencoding = \"cp1250\"";
    let (stdout, detected) = run_estimates(&dir, &config_for(&dir, &data, keys));
    assert!(stdout.contains("(delimiter \";\")"), "{stdout}");
    assert!(plain == detected, "detected delimiter: other estimates");

    // Tab-separated, UTF-8, decimal points: a .tsv file needs no key.
    let dir = scratch("locale-tsv");
    let data = dir.join("returns.tsv");
    let tsv: String = rows.iter().map(|r| r.join("\t") + "\n").collect();
    std::fs::write(&data, tsv).expect("write");
    let (stdout, tab) = run_estimates(&dir, &config_for(&dir, &data, ""));
    assert!(stdout.contains("(delimiter tab)"), "{stdout}");
    assert!(plain == tab, "the .tsv file gives other estimates");
}

#[test]
fn a_point_in_a_decimal_comma_file_is_a_finding_naming_row_column_and_value() {
    let mut rows = demo_rows();
    let age = rows[0].iter().position(|c| c == "age").expect("age");
    // The trailing space (trimmed by the reader) keeps the point through `european_export`.
    rows[5][age] = "30.5 ".into();
    let dir = scratch("locale-point-finding");
    let data = dir.join("returns.csv");
    std::fs::write(&data, european_export(&rows)).expect("write");
    let keys = "delimiter = \";\"\ndecimal = \",\"\nencoding = \"windows-1250\"";
    let config = config_for(&dir, &data, keys);
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("not_a_number"), "{stdout}");
    let findings = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    let line = findings
        .lines()
        .find(|l| l.contains("30.5"))
        .unwrap_or_default();
    // Data row 5 (the header is not a data row), its respondent, column and value.
    assert!(
        line.starts_with(&format!("5,{},age,30.5,not_a_number,", rows[5][0])),
        "{findings}"
    );
}

#[test]
fn formats_that_do_not_fit_are_refused_naming_the_file_key_and_value() {
    let demo = root().join("fixtures/demo/data.csv");
    let refused = |name: &str, keys: &str| {
        let dir = scratch(name);
        let config = config_for(&dir, &demo, keys);
        let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
        assert_ne!(code, 0, "{stdout}");
        assert!(!dir.join("out/findings.csv").exists(), "nothing is written");
        stderr
    };
    let e = refused("locale-bad-encoding", "encoding = \"windows-1250x\"");
    assert!(
        e.contains("pipeline.toml")
            && e.contains("data.encoding")
            && e.contains("\"windows-1250x\"")
            && e.contains("windows-1250, iso-8859-2"),
        "{e}"
    );
    let e = refused("locale-bad-delimiter", "delimiter = \";\"");
    assert!(
        e.contains("data.csv")
            && e.contains("the delimiter is \";\"")
            && e.contains("resp_id,region,urban")
            && e.contains("delimiter = \",\""),
        "{e}"
    );
    let e = refused("locale-comma-twice", "decimal = \",\"\ndelimiter = \",\"");
    assert!(
        e.contains("pipeline.toml") && e.contains("data.decimal") && e.contains("delimiter"),
        "{e}"
    );
    // A decimal comma in a file whose header is comma-separated.
    let e = refused("locale-comma-detected", "decimal = \",\"");
    assert!(
        e.contains("data.csv") && e.contains("comma-separated") && e.contains("resp_id | region"),
        "{e}"
    );
}
