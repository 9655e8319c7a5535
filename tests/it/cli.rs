//! The `cvsurvey` binary: the demo run, and clear one-line errors on bad input with no partial
//! output left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{cvsurvey, read_estimates, relocated_config, root, scratch};

fn demo_config(dir: &Path) -> PathBuf {
    relocated_config(&root().join("fixtures/demo/pipeline.toml"), dir, &[])
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn run_on_the_demo_prints_a_summary_and_writes_outputs() {
    let dir = scratch("cli-demo");
    let config = demo_config(&dir);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("20028 read = 20028 used + 0 quarantined"),
        "{stdout}"
    );
    assert!(stdout.contains("bribery_prevalence"), "{stdout}");
    for f in [
        "estimates.parquet",
        "weights.parquet",
        "weighting.json",
        "quarantine.csv",
        "findings.csv",
    ] {
        assert!(dir.join("out").join(f).is_file(), "{f} missing");
    }
    let quarantine = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert_eq!(
        quarantine.trim_end(),
        "row,id,column,value,kind,reason,action",
        "header only when nothing is quarantined"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("out"))
        .expect("out")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_nothing_beside_out(&dir);
    // The folder holds exactly the files of the manifest (and the manifest).
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/manifest.json")).expect("manifest"),
    )
    .expect("manifest parses");
    let mut listed: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["file"].as_str().expect("name").to_string())
        .chain(["manifest.json".to_string()])
        .collect();
    listed.sort();
    assert_eq!(names_in(&dir.join("out")), listed);
    // The folder belongs to the last run: validate replaces the estimates with its reports.
    let (code, _, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        names_in(&dir.join("out")),
        ["findings.csv", "quarantine.csv"]
    );
}

#[test]
fn compare_puts_schemes_side_by_side() {
    let dir = scratch("cli-compare");
    let config = demo_config(&dir);
    let (code, stdout, stderr) = cvsurvey(&["compare", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stdout.contains("weighting schemes") && stdout.contains("n_eff"),
        "{stdout}"
    );
    let side_by_side = stdout
        .split("estimate (SE) [deff] per scheme")
        .nth(1)
        .expect("comparison table");
    let line = side_by_side
        .lines()
        .find(|l| l.trim_start().starts_with("bribery_prevalence "))
        .expect("indicator line");
    assert_eq!(line.matches('(').count(), 5, "one cell per scheme: {line}");
    assert!(dir.join("out/comparison.parquet").is_file());
    let manifest = std::fs::read_to_string(dir.join("out/manifest.json")).expect("manifest");
    assert!(
        manifest.contains("\"comparison.parquet\""),
        "the manifest lists every file of the folder: {manifest}"
    );
    let json = std::fs::read_to_string(dir.join("out/weighting.json")).expect("weighting.json");
    assert!(
        json.contains("\"kish_deff\"") && json.contains("\"nr_adjusted\""),
        "{json}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("weighting.json parses");
    let raked = parsed["schemes"]
        .as_array()
        .expect("schemes")
        .iter()
        .find(|s| s["name"] == "raked")
        .expect("raked");
    assert_eq!(raked["calibration"]["method"], "raking");
    assert_eq!(raked["calibration"]["converged"], true);
    assert!(
        raked["calibration"]["max_margin_error"]
            .as_f64()
            .expect("error")
            < 1e-6
    );
}

#[test]
fn validate_checks_without_estimating() {
    let dir = scratch("cli-validate");
    let config = demo_config(&dir);
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("item_nonresponse (kept)"), "{stdout}");
    assert!(!dir.join("out/estimates.parquet").exists());
    assert!(dir.join("out/quarantine.csv").is_file());
    // --strict leaves item nonresponse alone (a property of the answers, not a fault)...
    let (code, _, stderr) = cvsurvey(&["validate", "--strict", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "item nonresponse is never fatal: {stderr}");
    // ...and turns a real finding into an error.
    let data = demo_data_with(&dir, 7, "sex", "7");
    repoint(&config, &data);
    let (code, _, stderr) = cvsurvey(&["validate", "--strict", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &[
            "--strict",
            "1 validation finding(s) besides item nonresponse",
            "row 7",
            "sex",
        ],
    );
}

fn assert_one_line_error(code: i32, stderr: &str, expected: i32, must_contain: &[&str]) {
    assert_eq!(code, expected, "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for m in must_contain {
        assert!(stderr.contains(m), "{m:?} not in {stderr}");
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = scratch("cli-unknown-key");
    let config = demo_config(&dir);
    replace_in(&config, "nest = true", "nest = true\nstrata_typo = 1");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["strata_typo", "pipeline.toml"]);
    assert!(!dir.join("out").exists(), "no output on a config error");
}

#[test]
fn missing_column_is_named() {
    let dir = scratch("cli-missing-column");
    let config = demo_config(&dir);
    replace_in(&config, "strata = \"stratum\"", "strata = \"stratum_code\"");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["stratum_code", "data.csv"]);
    assert!(!dir.join("out/estimates.parquet").exists());
}

#[test]
fn unsupported_and_empty_data_files_are_errors() {
    let dir = scratch("cli-bad-files");
    let config = demo_config(&dir);
    let data = root()
        .join("fixtures/demo/data.csv")
        .canonicalize()
        .expect("data");
    // Each file replaces the previous one in the config; each error names the file.
    let mut previous = data;
    for (name, content, expected) in [
        ("data.json", "not really", ".csv or .parquet"),
        (
            "fake.xlsx",
            "not really",
            "not a readable Excel or OpenDocument workbook",
        ),
        ("empty.csv", "", "empty"),
        ("fake.parquet", "a,b\n1,2\n", "Parquet"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        replace_in(
            &config,
            previous.to_str().expect("utf8"),
            path.to_str().expect("utf8"),
        );
        let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
        assert_one_line_error(code, &stderr, 1, &[name, expected]);
        previous = path;
    }
    assert!(!dir.join("out/estimates.parquet").exists());
}

#[test]
fn broken_questionnaire_is_reported_with_its_location() {
    let dir = scratch("cli-bad-questionnaire");
    let q = root().join("questionnaires/cvs-core.toml");
    let text = std::fs::read_to_string(&q).expect("questionnaire");
    let broken = text.replacen("contact_police == 1", "contact_police == = 1", 1);
    assert_ne!(text, broken);
    let qpath = dir.join("broken.toml");
    std::fs::write(&qpath, broken).expect("write");
    let config = demo_config(&dir);
    let text = std::fs::read_to_string(&config).expect("config");
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("questionnaire = ") {
                format!("questionnaire = \"{}\"", qpath.display())
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&config, text.join("\n")).expect("write");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["broken.toml:", "=="]);
    let location = stderr.split("broken.toml:").nth(1).expect("location");
    let mut parts = location.splitn(3, ':');
    let (line, column) = (parts.next().expect("line"), parts.next().expect("column"));
    assert!(
        line.parse::<u32>().is_ok() && column.parse::<u32>().is_ok(),
        "file:line:column in {stderr}"
    );
}

#[test]
fn bad_rows_are_quarantined_with_reasons_and_accounted_for() {
    let dir = scratch("cli-quarantine");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (sex, weight, id) = (col("sex"), col("design_weight"), col("resp_id"));
    let edit = |line: &str, j: usize, v: &str| {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        f[j] = v.to_string();
        f.join(",")
    };
    lines[1] = edit(&lines[1], sex, "7"); // invalid code
    lines[2] = edit(&lines[2], weight, "-3"); // invalid weight
    let dup = lines[3].split(',').nth(id).expect("id").to_string();
    lines[4] = edit(&lines[4], id, &dup); // duplicate id: both rows quarantined
    lines[5] = "1,2,3".to_string(); // malformed
    let data = dir.join("data.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("20028 read = 20023 used + 5 quarantined"),
        "{stdout}"
    );
    let q = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert!(q.contains(",sex,7,invalid_code,"), "{q}");
    assert!(q.contains(",design_weight,-3,invalid_weight,"), "{q}");
    assert_eq!(q.matches("duplicate_id").count(), 2, "{q}");
    assert!(q.contains("malformed_row"), "{q}");
    assert!(
        q.lines().any(|l| l.starts_with("1,") && l.contains("sex")),
        "row numbers are data rows: {q}"
    );
}

#[test]
fn outputs_are_byte_identical_across_runs_and_thread_counts() {
    // One config (its SHA-256 is in the metadata); every output file (estimates, weights,
    // tables, report, SDMX, manifest, run summary) read back after each run. No timestamp is
    // written unless asked for, so the bytes must not change.
    let dir = scratch("cli-determinism");
    let config = demo_config(&dir);
    let runs = ["1", "1", "2", "16"];
    let mut outputs: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    for threads in runs {
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
            .args(["run", config.to_str().expect("utf8")])
            .env("RAYON_NUM_THREADS", threads)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("out"))
            .expect("out")
            .map(|e| {
                let path = e.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read(&path).expect("output"))
            })
            .collect();
        files.sort();
        assert!(
            files.len() >= 10,
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        outputs.push(files);
    }
    for (k, threads) in runs.iter().enumerate().skip(1) {
        assert_eq!(outputs[0].len(), outputs[k].len());
        for ((name, a), (other, b)) in outputs[0].iter().zip(&outputs[k]) {
            assert_eq!(name, other);
            assert!(
                a == b,
                "{name} differs between 1 and {threads} threads (run {k})"
            );
        }
    }
}

#[test]
fn a_formula_in_the_data_cannot_reach_a_spreadsheet() {
    let dir = scratch("cli-csv-injection");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let region = header.iter().position(|h| *h == "region").expect("region");
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[region] = "=HYPERLINK(\"http://x\";\"y\")".replace(',', ";");
    lines[1] = fields.join(",");
    let data = dir.join("data.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let q = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    let mut reader = csv::Reader::from_reader(q.as_bytes());
    let values: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[3].to_string())
        .collect();
    assert!(values.iter().any(|v| v.starts_with("'=HYPERLINK")), "{q}");
    assert!(!values.iter().any(|v| v.starts_with('=')), "{q}");
}

#[test]
fn a_formula_in_a_label_cannot_reach_a_spreadsheet() {
    // Labels come from the questionnaire a user writes (or drafts from an SPSS file): a region
    // label and an indicator label that a spreadsheet would run as formulas.
    let dir = scratch("cli-label-injection");
    let questionnaire = std::fs::read_to_string(root().join("questionnaires/cvs-core.toml"))
        .expect("questionnaire")
        .replace(
            "R01 = \"Region 01\"",
            "R01 = \"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\"",
        )
        .replace(
            "label = \"Bribery prevalence: share",
            "label = \"@SUM(1+1) Bribery prevalence: share",
        );
    assert!(questionnaire.contains("=HYPERLINK") && questionnaire.contains("@SUM"));
    let q = dir.join("cvs-core.toml");
    std::fs::write(&q, questionnaire).expect("write questionnaire");
    let line = format!("questionnaire = \"{}\"", q.display());
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("questionnaire = ", &line)],
    );
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    // Every text of the workbook (shared strings and inline strings of every sheet).
    let file = std::fs::File::open(dir.join("out/tables.xlsx")).expect("tables.xlsx");
    let mut archive = zip::ZipArchive::new(file).expect("xlsx is a zip");
    let mut texts = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        if !entry.name().is_ok_and(|n| n.ends_with(".xml")) {
            continue;
        }
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut entry, &mut xml).expect("xml");
        for piece in xml.split("<t").skip(1) {
            let Some(start) = piece.find('>') else {
                continue;
            };
            let body = &piece[start + 1..];
            texts.push(body[..body.find("</t>").unwrap_or(0)].to_string());
        }
    }
    let decoded: Vec<String> = texts.iter().map(|t| t.replace("&quot;", "\"")).collect();
    assert!(
        decoded.iter().any(|t| t.starts_with("'@SUM(1+1)")),
        "{decoded:?}"
    );
    for t in &decoded {
        assert!(
            !t.starts_with(['=', '+', '@', '\t', '\r']),
            "unsafe cell text: {t}"
        );
    }
}

/// A run killed with SIGKILL in the middle leaves the previous outputs byte for byte, and no
/// partial file under a final name.
#[test]
fn a_killed_run_leaves_the_previous_outputs_intact() {
    let dir = scratch("cli-killed");
    let config = demo_config(&dir);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.join("out");
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .expect("out")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .map(|name| {
                let bytes = std::fs::read(dir.join(&name)).expect("output");
                (name, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&out);
    assert!(before.iter().any(|(n, _)| n == "estimates.parquet"));

    // A slow run into the same folder: a larger synthetic survey with 200 bootstrap replicates.
    let data = dir.join("big.parquet");
    cvsurvey::synth::generate(&cvsurvey::synth::SynthRequest {
        questionnaire: root().join("questionnaires/cvs-core.toml"),
        spec: cvsurvey::synth::SynthSpec {
            rows: 200_000,
            regions: 12,
            seed: 3,
            ..Default::default()
        },
        out: data.clone(),
        format: None,
        margins: None,
        questionnaire_out: None,
    })
    .expect("synthetic data");
    let slow = dir.join("slow.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("path = ") {
                format!("path = \"{}\"", data.display())
            } else if l.starts_with("method = ") {
                "method = [\"taylor\", \"bootstrap\"]\nreplicates = 200".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&slow, text.join("\n")).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(["run", slow.to_str().expect("utf8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let still_running = child.try_wait().expect("wait").is_none();
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        still_running,
        "the slow run finished before it could be killed; make it slower"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "outputs under their final names are the previous ones"
    );
    // The killed run's lock file and staging folder are cleared by the next run.
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "after a killed run: {stderr}");
    assert_eq!(snapshot(&out), before, "same inputs, same bytes");
    assert_nothing_beside_out(&dir);
}

#[test]
fn a_named_pipe_as_data_is_refused_before_reading() {
    // Two readers of one pipe would each get part of the stream; with no writer the run hung.
    let dir = scratch("cli-fifo");
    let fifo = dir.join("data.csv");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let config = demo_config(&dir);
    let original = root()
        .join("fixtures/demo/data.csv")
        .canonicalize()
        .expect("data");
    replace_in(
        &config,
        original.to_str().expect("utf8"),
        fifo.to_str().expect("utf8"),
    );
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["data.csv", "not a file"]);
    assert!(!dir.join("out/estimates.parquet").exists());
    // A folder in the data file's place is refused the same way.
    let folder = dir.join("folder.csv");
    std::fs::create_dir_all(&folder).expect("mkdir");
    replace_in(
        &config,
        fifo.to_str().expect("utf8"),
        folder.to_str().expect("utf8"),
    );
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["folder.csv", "a folder"]);
}

#[test]
fn a_control_character_in_a_stratum_quarantines_its_row_instead_of_making_a_stratum() {
    let dir = scratch("cli-nul-stratum");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    // Rows 1 and 2 are in stratum R01-U: give one a NUL byte, the other a tab inside the code
    // (blanks around a value are trimmed, inside it they are not).
    assert!(lines[1].contains(",R01-U,") && lines[2].contains(",R01-U,"));
    lines[1] = lines[1].replacen(",R01-U,", ",R01-U\0,", 1);
    lines[2] = lines[2].replacen(",R01-U,", ",R01\t-U,", 1);
    let data = dir.join("data.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("20028 read = 20026 used + 2 quarantined"),
        "{stdout}"
    );
    assert!(stdout.contains("design    24 strata"), "{stdout}");
    let q = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert_eq!(q.matches("control_character").count(), 2, "{q}");
    assert!(q.contains("R01-U\\0"), "the value is shown escaped: {q}");
}

/// The demo config reading `data` instead of the shipped file.
fn demo_config_on(dir: &Path, data: &Path) -> PathBuf {
    let config = demo_config(dir);
    repoint(&config, data);
    config
}

/// Point a relocated demo config at `data` instead of the shipped data file.
fn repoint(config: &Path, data: &Path) {
    let original = root()
        .join("fixtures/demo/data.csv")
        .canonicalize()
        .expect("data");
    replace_in(
        config,
        original.to_str().expect("utf8"),
        data.to_str().expect("utf8"),
    );
}

/// The demo data with the cell of data row `row` (1 = first after the header) in `column` set
/// to `value`, written as `dir/data.csv`.
fn demo_data_with(dir: &Path, row: usize, column: &str, value: &str) -> PathBuf {
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    let j = lines[0]
        .split(',')
        .position(|h| h == column)
        .expect("column");
    let mut fields: Vec<String> = lines[row].split(',').map(str::to_string).collect();
    fields[j] = value.into();
    lines[row] = fields.join(",");
    let data = dir.join("data.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    data
}

#[test]
fn na_and_dot_in_numeric_columns_are_blank_cells() {
    let dir = scratch("cli-na");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    // Every blank cell written as R's write.csv (NA) or Stata's export (.) writes it.
    let mut k = 0;
    let rewritten: Vec<String> = src
        .lines()
        .map(|line| {
            line.split(',')
                .map(|f| {
                    if f.is_empty() {
                        k += 1;
                        if k % 2 == 0 { "NA" } else { "." }
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert!(k > 1000, "the demo has blank cells to rewrite");
    let data = dir.join("data.csv");
    std::fs::write(&data, rewritten.join("\n") + "\n").expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("20028 read = 20028 used + 0 quarantined"),
        "{stdout}"
    );
    let base_dir = scratch("cli-na-base");
    let (code, _, stderr) = cvsurvey(&["run", demo_config(&base_dir).to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let (ours, _) = read_estimates(&dir.join("out/estimates.parquet"));
    let (base, _) = read_estimates(&base_dir.join("out/estimates.parquet"));
    assert_eq!(ours, base, "NA and . give the estimates of blank cells");

    // Text variables keep NA as a value (a country code, say): region has declared codes, so
    // NA there is an invalid code, not a blank.
    let mut lines = rewritten.clone();
    lines[1] = lines[1].replacen(",R01,", ",NA,", 1);
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ 1 quarantined"), "{stdout}");
    let q = std::fs::read_to_string(dir.join("out/quarantine.csv")).expect("quarantine");
    assert!(q.contains(",region,NA,invalid_code,"), "{q}");

    // `[data] na` replaces the list: without NA and ".", they are not numbers. Answers that
    // are not numbers are blanked (the rows are kept, and read as the blanks they were);
    // under `invalid_answer = "quarantine"` every row with one is quarantined.
    std::fs::write(&data, rewritten.join("\n") + "\n").expect("write");
    replace_in(&config, "id = \"resp_id\"", "id = \"resp_id\"\nna = [\"\"]");
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ 0 quarantined"), "{stdout}");
    assert!(stdout.contains("not_a_number (blanked)"), "{stdout}");
    let findings = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    assert!(
        findings
            .lines()
            .any(|l| l.ends_with(",NA,not_a_number,not a number,blanked")),
        "the finding keeps the value as written and says it was blanked"
    );
    let (blanked, _) = read_estimates(&dir.join("out/estimates.parquet"));
    assert_eq!(
        blanked, base,
        "blanked answers give the estimates of blank cells"
    );
    replace_in(
        &config,
        "[design]",
        "[validation]\ninvalid_answer = \"quarantine\"\n\n[design]",
    );
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ 20028 quarantined"), "{stdout}");
    assert!(stdout.contains("not_a_number"), "{stdout}");
    let findings = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    assert!(
        !findings.contains(",blanked"),
        "nothing is blanked under quarantine"
    );
}

#[test]
fn estimates_csv_by_default_and_show_prints_a_table() {
    let dir = scratch("cli-show");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("formats = ", "")],
    );
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(dir.join("out/estimates.csv")).expect("estimates.csv");
    assert_eq!(csv.lines().count(), 7106, "header and 7105 estimates");
    assert!(stdout.contains("flags     nchs-2017: "), "{stdout}");
    let out = dir.join("out");
    let (code, table, stderr) = cvsurvey(&[
        "show",
        out.to_str().expect("utf8"),
        "--indicator",
        "bribery_prevalence",
        "--domain",
        "sex",
        "--weighting",
        "raked",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "header, total, two sexes: {table}");
    assert!(lines[0].starts_with("indicator") && lines[0].contains("estimate"));
    assert!(
        lines[1].contains("total") && lines[1].contains("0.3261"),
        "{table}"
    );
    assert!(
        lines[2].contains("sex=1") && lines[3].contains("sex=2"),
        "{table}"
    );
    assert!(lines[1].contains("logit"), "first interval method: {table}");
    // A filter that keeps nothing says what the file has.
    let (code, _, stderr) = cvsurvey(&["show", out.to_str().expect("utf8"), "--indicator", "nope"]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &["no estimate matches", "bribery_prevalence"],
    );
}

#[test]
fn without_an_id_column_rows_are_identified_by_their_number() {
    let dir = scratch("cli-no-id");
    let config = demo_config(&dir);
    replace_in(&config, "id = \"resp_id\"\n", "");
    let data = demo_data_with(&dir, 3, "sex", "7");
    repoint(&config, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("no [data] id: rows are identified by their row number"),
        "{stdout}"
    );
    // Row 3 is a unit nonrespondent: its invalid sex is blanked (the row is kept).
    let q = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    assert!(
        q.contains("\n3,3,sex,7,invalid_code,") && q.contains(",blanked\n"),
        "row 3 with id 3: {q}"
    );
}

#[test]
fn the_df_line_shows_the_df_of_replicate_estimates() {
    let dir = scratch("cli-df-line");
    let config = relocated_config(
        &root().join("fixtures/replicates/supplied_nr.toml"),
        &dir,
        &[("method = ", "method = [\"taylor\", \"supplied\"]")],
    );
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("design "))
        .expect("design line");
    // Taylor: the design's df; the 40 supplied bootstrap replicates: rank 40, 39 df.
    assert!(line.contains(" (taylor)"), "{line}");
    assert!(line.contains("39 (supplied)"), "{line}");
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file of `dir` (hidden ones too) with its bytes.
fn contents_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    names_in(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).expect("output");
            (name, bytes)
        })
        .collect()
}

/// Nothing of a run (lock file, staging or set-aside folder) is left beside `dir/out`.
fn assert_nothing_beside_out(dir: &Path) {
    let litter: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("out."))
        .collect();
    assert!(
        litter.is_empty(),
        "left beside the output folder: {litter:?}"
    );
}

#[cfg(unix)]
#[test]
fn an_input_at_an_output_path_is_refused_before_anything_is_computed() {
    let dir = scratch("cli-input-is-output");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out");
    // A valid data file kept where the run writes findings.csv: without the check the run
    // would succeed and overwrite it.
    let data = out.join("findings.csv");
    std::fs::copy(root().join("fixtures/demo/data.csv"), &data).expect("copy");
    let before = std::fs::read(&data).expect("data");
    let config = demo_config_on(&dir, &data);
    for command in ["run", "validate", "compare"] {
        let (code, stdout, stderr) = cvsurvey(&[command, config.to_str().expect("utf8")]);
        assert_one_line_error(
            code,
            &stderr,
            1,
            &[
                "the data file (data.path) is also the output",
                "out/findings.csv: ",
                "out/findings.csv, which this run replaces",
            ],
        );
        assert!(stdout.is_empty(), "nothing computed: {stdout}");
        assert_eq!(std::fs::read(&data).expect("data"), before, "{command}");
        assert_eq!(names_in(&out), ["findings.csv"], "nothing written");
    }
    // A margins file where estimates.csv goes, reached through a link to the output folder.
    let config = demo_config(&dir);
    let margins = out.join("estimates.csv");
    std::fs::copy(root().join("fixtures/demo/margins.csv"), &margins).expect("copy");
    std::os::unix::fs::symlink(&out, dir.join("alias")).expect("link");
    let original = root()
        .join("fixtures/demo/margins.csv")
        .canonicalize()
        .expect("margins");
    let alias = dir.join("alias/estimates.csv");
    replace_in(
        &config,
        original.to_str().expect("utf8"),
        alias.to_str().expect("utf8"),
    );
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &["margins file of weighting \"raked\"", "out/estimates.csv"],
    );
    assert_eq!(
        std::fs::read(&margins).expect("margins"),
        std::fs::read(root().join("fixtures/demo/margins.csv")).expect("margins")
    );
    assert_nothing_beside_out(&dir);
}

/// A run that fails after some files of the new set are written (the largest output exceeds
/// the file-size limit it runs under) leaves the previous outputs byte for byte.
#[cfg(unix)]
#[test]
fn a_run_that_fails_midway_leaves_the_previous_outputs_whole() {
    let dir = scratch("cli-failed-write");
    // The demo's one-number indicators, so that the file sizes below hold.
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[(
            "indicators = ",
            "indicators = [\"bribery_prevalence\", \"bribery_prevalence_police\", \"bribery_prevalence_land\", \"bribe_frequency\", \"bribery_reporting_rate\", \"assault_prevalence\", \"theft_prevalence\", \"violence_prevalence\", \"assault_reporting_rate\", \"feel_safe_dark\"]",
        )],
    );
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.join("out");
    let before = contents_of(&out);
    let size = |name: &str| std::fs::metadata(out.join(name)).expect(name).len();
    // `ulimit -f 300` is 150 kB or 300 kB depending on the shell's block size: estimates.csv is
    // larger than both, every file written before it smaller than both.
    assert!(size("estimates.csv") > 307_200, "{}", size("estimates.csv"));
    for name in ["estimates.parquet", "weights.parquet", "findings.csv"] {
        assert!(size(name) < 153_600, "{name}: {}", size(name));
    }
    // A file-size limit binds root too; with SIGXFSZ ignored the write fails with EFBIG.
    let limited = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 300 && exec \"$0\" run \"$1\"",
            env!("CARGO_BIN_EXE_cvsurvey"),
            config.to_str().expect("utf8"),
        ])
        .output();
    let Ok(limited) = limited else {
        eprintln!("skipped: no sh to set a file-size limit");
        return;
    };
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert_one_line_error(
        limited.status.code().unwrap_or(-1),
        &stderr,
        2,
        &["estimates.csv"],
    );
    assert!(contents_of(&out) == before, "the previous outputs changed");
    assert_nothing_beside_out(&dir);
}

#[test]
fn a_second_run_into_a_folder_in_use_is_refused() {
    let dir = scratch("cli-in-use");
    let config = demo_config(&dir);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.join("out");
    let before = contents_of(&out);
    // This test process holds the folder as a run does.
    let held = cvsurvey::output::OutputFolder::begin(&out, &[]).expect("hold the folder");
    for command in ["run", "compare", "validate"] {
        let (code, stdout, stderr) = cvsurvey(&[command, config.to_str().expect("utf8")]);
        assert_one_line_error(
            code,
            &stderr,
            2,
            &[
                "another cvsurvey run",
                &format!("(pid {})", std::process::id()),
                "delete the stale lock file",
                "out.lock",
            ],
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
    assert!(contents_of(&out) == before, "the outputs changed");
    drop(held);
    assert_nothing_beside_out(&dir);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "free again once released: {stderr}");
    // A lock file left by a run that was killed (nobody holds it) is taken over.
    std::fs::write(dir.join("out.lock"), "4000000\n").expect("stale lock");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "a stale lock is taken over: {stderr}");
    assert_nothing_beside_out(&dir);
}

#[test]
fn an_unusable_output_folder_fails_before_the_data_is_read() {
    let dir = scratch("cli-unwritable");
    // The data would fail at ingest (exit 1, "empty"): the output error must come first.
    let data = dir.join("empty.csv");
    std::fs::write(&data, "").expect("data");
    let config = demo_config_on(&dir, &data);
    // A regular file where a folder of the output path should be: not writable, even by root.
    std::fs::write(dir.join("blocker"), "a regular file").expect("blocker");
    let blocked = dir.join("blocker/out");
    replace_in(
        &config,
        dir.join("out").to_str().expect("utf8"),
        blocked.to_str().expect("utf8"),
    );
    for command in ["run", "compare", "validate"] {
        let (code, _, stderr) = cvsurvey(&[command, config.to_str().expect("utf8")]);
        assert_one_line_error(
            code,
            &stderr,
            2,
            &["blocker/out: cannot use this output folder"],
        );
        assert!(!stderr.contains("empty"), "{stderr}");
    }
    // An output folder holding a file cvsurvey did not write is refused the same way, and
    // the file is kept.
    replace_in(
        &config,
        blocked.to_str().expect("utf8"),
        dir.join("out").to_str().expect("utf8"),
    );
    std::fs::create_dir_all(dir.join("out")).expect("out");
    std::fs::write(dir.join("out/notes.txt"), "mine").expect("notes");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        2,
        &["holds notes.txt, which cvsurvey did not write"],
    );
    assert_eq!(names_in(&dir.join("out")), ["notes.txt"]);
    assert_nothing_beside_out(&dir);
}

#[test]
fn when_every_row_is_quarantined_quarantine_csv_says_why() {
    let dir = scratch("cli-no-respondents");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines = src.lines();
    let header = lines.next().expect("header");
    let weight = header
        .split(',')
        .position(|h| h == "design_weight")
        .expect("weight");
    let mut text = format!("{header}\n");
    for line in lines.take(30) {
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[weight] = "-1";
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    let data = dir.join("data.csv");
    std::fs::write(&data, text).expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &[
            "no usable respondent rows (30 read, 30 quarantined)",
            "out/quarantine.csv",
        ],
    );
    assert!(stdout.is_empty(), "{stdout}");
    let out = dir.join("out");
    assert_eq!(names_in(&out), ["findings.csv", "quarantine.csv"]);
    let q = std::fs::read_to_string(out.join("quarantine.csv")).expect("quarantine");
    assert_eq!(
        q.matches(",design_weight,-1,invalid_weight,").count(),
        30,
        "{q}"
    );
    assert_nothing_beside_out(&dir);
}

#[test]
fn a_lonely_psu_under_fail_is_a_data_error_with_exit_code_1() {
    let dir = scratch("cli-lonely-fail");
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let (stratum, psu) = (
        header
            .iter()
            .position(|h| *h == "stratum")
            .expect("stratum"),
        header.iter().position(|h| *h == "psu").expect("psu"),
    );
    // Every row of stratum R01-U in one PSU.
    for line in lines.iter_mut().skip(1) {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        if f[stratum] == "R01-U" {
            f[psu] = "1".into();
            *line = f.join(",");
        }
    }
    let data = dir.join("data.csv");
    std::fs::write(&data, lines.join("\n") + "\n").expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["R01-U", "lonely_psu"]);
}

fn cvsurvey_with_memory(limit: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args(args)
        .env("CVSURVEY_MEMORY_LIMIT", limit)
        .output()
        .expect("run cvsurvey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tables_sized_from_declared_counts_are_refused_with_the_figures_when_they_do_not_fit() {
    let dir = scratch("cli-memory");
    // A Parquet file declares its rows in the footer; the columns would be sized from it.
    let data = dir.join("data.parquet");
    let q = root().join("questionnaires/cvs-core.toml");
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        q.to_str().expect("utf8"),
        "--rows",
        "20000",
        "--seed",
        "3",
        "--out",
        data.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let config = demo_config_on(&dir, &data);
    let (code, _, stderr) = cvsurvey_with_memory("1M", &["run", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &["data.parquet", "20000 rows", "needs about", "available"],
    );
    assert!(!dir.join("out/estimates.parquet").exists());
    // The same file within the limit runs.
    let (code, _, stderr) = cvsurvey_with_memory("8G", &["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stderr}");
    // A CSV file has no row count: it is estimated from the first block's bytes per row. The
    // demo's 20,028 rows × 46 columns need about 9 MB.
    let demo = relocated_config(&root().join("fixtures/demo/pipeline.toml"), &dir, &[]);
    let (code, _, stderr) = cvsurvey_with_memory("4M", &["run", demo.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["data.csv", "rows", "needs about 9 MB"]);
    // Replicates: 274 PSUs × 5,000 bootstrap replicates (11 MB) do not fit in 10 MB.
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("method = ", "method = \"bootstrap\"\nreplicates = 5000")],
    );
    let (code, _, stderr) = cvsurvey_with_memory("10M", &["run", config.to_str().expect("utf8")]);
    assert_one_line_error(
        code,
        &stderr,
        1,
        &[
            "5000 replicates × 274 units",
            "needs about",
            "fewer replicates",
        ],
    );
}

#[test]
fn a_csv_without_line_breaks_is_refused_instead_of_read_into_one_record() {
    let dir = scratch("cli-long-line");
    // 20 MB of header with no line break (a 2 GB one took 12.6 GB of memory).
    let data = dir.join("data.csv");
    let mut text = String::from("resp_id");
    while text.len() < 20 << 20 {
        text.push_str(",column_with_a_long_name");
    }
    std::fs::write(&data, text).expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["data.csv", "longer than 16 MiB"]);
    // The same in a data row, after a good header and rows.
    let src = std::fs::read_to_string(root().join("fixtures/demo/data.csv")).expect("data");
    let mut lines: Vec<String> = src.lines().take(5).map(str::to_string).collect();
    lines.push("x".repeat(17 << 20));
    std::fs::write(&data, lines.join("\n")).expect("write");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["data row 5", "longer than 16 MiB"]);
}

#[test]
fn error_messages_cut_long_user_text() {
    let dir = scratch("cli-long-text");
    // A header whose first name is 100,000 characters long: the missing-columns message lists
    // the file's columns.
    let data = dir.join("data.csv");
    std::fs::write(&data, format!("{},b\n1,2\n", "n".repeat(100_000))).expect("write");
    let config = demo_config_on(&dir, &data);
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["missing column", "more characters)"]);
    assert!(
        stderr.chars().count() < 2_100,
        "{} characters",
        stderr.len()
    );
}

#[test]
fn a_device_as_questionnaire_or_margins_is_refused_not_read_forever() {
    let dir = scratch("cli-devices");
    let config = demo_config(&dir);
    let text = std::fs::read_to_string(&config).expect("config");
    let margins_line = text
        .lines()
        .find(|l| l.contains("margins = \""))
        .expect("a margins line")
        .to_string();
    let start = margins_line.find("margins = \"").expect("margins") + "margins = \"".len();
    let margins = &margins_line[start..start + margins_line[start..].find('"').expect("quote")];
    replace_in(&config, margins, "/dev/zero");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_one_line_error(code, &stderr, 1, &["/dev/zero", "not a regular file"]);
    let config = demo_config(&dir);
    let text = std::fs::read_to_string(&config).expect("config");
    let q_line = text
        .lines()
        .find(|l| l.starts_with("questionnaire = "))
        .expect("questionnaire line")
        .to_string();
    replace_in(&config, &q_line, "questionnaire = \"/dev/zero\"");
    let (code, _, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("not a regular file"),
        "{stderr}"
    );
}
