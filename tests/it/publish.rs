//! Publication products on the demo: reliability flags, SDMX-CSV (codes checked against the
//! SDG code-list extracts), `estimates.csv`, `manifest.json`, the Excel cell model and the HTML
//! report (text snapshot, plus a Chromium screenshot when Chromium is installed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cvsurvey::config::Pipeline;
use cvsurvey::estimate::{EstimateRow, Flag};
use cvsurvey::output::OutputFolder;
use cvsurvey::output::context::{DesignSummary, PublicationContext, SchemeSummary};
use cvsurvey::output::publish::write_publication;
use cvsurvey::output::reliability::apply_reliability;
use cvsurvey::output::settings::{PublicationConfig, RawPublication};
use cvsurvey::pipeline::{RunOptions, RunReport};
use cvsurvey::questionnaire::Questionnaire;

use crate::common::{relocated_config, root, scratch};

const DEMO_PUBLICATION: &str = r#"
formats = ["parquet", "csv", "sdmx", "xlsx", "html"]

[reliability]
preset = "nchs-2017"
suppress = true

[sdmx]
ref_area = "688"
time_period = "2025"
source_detail = "Demo corruption and crime victimisation survey"
series = { bribery_prevalence = "IU_COR_BRIB", feel_safe_dark = "VC_SNS_WALN_DRK" }

[sdmx.dimensions]
sex = { dimension = "SEX", codes = { 1 = "M", 2 = "F" } }
age_group = { dimension = "AGE", codes = { 1 = "Y18T29", 2 = "Y30T44", 3 = "Y45T59", 4 = "Y_GE60" } }
urban = { dimension = "URBANISATION", codes = { 1 = "U", 2 = "R" } }
"#;

/// The demo run, its questionnaire and config.
struct Demo {
    dir: PathBuf,
    pipeline: Pipeline,
    questionnaire: Questionnaire,
    report: RunReport,
}

fn demo(name: &str) -> Demo {
    demo_with(name, "")
}

/// The demo with `indicators` (TOML) added to its questionnaire.
fn demo_with(name: &str, indicators: &str) -> Demo {
    let dir = scratch(name);
    let questionnaire = dir.join("questionnaire.toml");
    let core = std::fs::read_to_string(root().join("questionnaires/cvs-core.toml"))
        .expect("questionnaire");
    std::fs::write(&questionnaire, format!("{core}\n{indicators}")).expect("write questionnaire");
    let questionnaire_line = format!("questionnaire = \"{}\"", questionnaire.display());
    // The run flags cells but keeps their values, so the tests can apply their own rules.
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[
            ("suppress = ", "suppress = false"),
            ("questionnaire = ", &questionnaire_line),
        ],
    );
    let report = cvsurvey::pipeline::run(&config, RunOptions::default()).expect("demo run");
    let pipeline = Pipeline::load(&config).expect("config");
    let questionnaire = Questionnaire::load(&pipeline.questionnaire).expect("questionnaire");
    Demo {
        dir,
        pipeline,
        questionnaire,
        report,
    }
}

fn publication_config(text: &str) -> PublicationConfig {
    let raw: RawPublication = toml::from_str(text).expect("publication toml");
    PublicationConfig::check_raw(&raw).expect("valid publication config")
}

fn context<'a>(d: &'a Demo) -> PublicationContext<'a> {
    let (n_strata, n_psu, df) = d.report.design.expect("design summary");
    let spec = &d.pipeline.design;
    PublicationContext {
        questionnaire: &d.questionnaire,
        title: "Demo survey on corruption and crime victimisation".into(),
        contrasts: &[],
        tests: &[],
        fieldwork: None,
        reference_period: "2025".into(),
        tool_version: "test".into(),
        data_file: "data.csv".into(),
        data_sha256: "0".repeat(64),
        rows_read: d.report.rows_read,
        rows_used: d.report.rows_used,
        rows_quarantined: d.report.rows_quarantined,
        respondents: d.report.respondents,
        findings_by_kind: d.report.findings_by_kind.clone(),
        first_findings: Vec::new(),
        design: DesignSummary {
            strata: spec.strata.first().cloned(),
            psu: spec.psu.clone(),
            weight: spec.weight.clone(),
            fpc: spec.fpc.clone(),
            lonely_psu: spec.lonely_psu.as_str().into(),
            n_strata,
            n_psu,
            df,
        },
        schemes: d
            .pipeline
            .weighting
            .iter()
            .zip(&d.report.schemes)
            .map(|(w, (name, summary))| SchemeSummary {
                name: name.clone(),
                nonresponse_classes: w.nonresponse_classes.clone(),
                eligibility_adjusted: w.adjust_eligibility,
                weights: summary.clone(),
                calibration: None,
            })
            .collect(),
        variance_methods: d
            .pipeline
            .variance
            .iter()
            .map(|v| v.as_str().to_string())
            .collect(),
        ci_level: d.pipeline.estimation.level,
        ci_methods: d
            .pipeline
            .estimation
            .ci
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        domain_df: "subset".into(),
        provenance: vec![
            ("cvsurvey.version".into(), "test".into()),
            ("cvsurvey.data.file".into(), "data.csv".into()),
        ],
    }
}

/// Flagged rows of the demo, with the reliability rules applied.
fn flagged_rows(d: &Demo, cfg: &PublicationConfig) -> Vec<EstimateRow> {
    let mut rows = d.report.estimates.clone();
    apply_reliability(&mut rows, &cfg.reliability, &d.questionnaire);
    rows
}

/// Run the whole publication into `dir/pub` and return the files written.
fn publish(d: &Demo, cfg: &PublicationConfig) -> (PathBuf, Vec<PathBuf>) {
    let out = d.dir.join("pub");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("pub dir");
    let rows = flagged_rows(d, cfg);
    let ctx = context(d);
    let folder = OutputFolder::begin(&out, &[]).expect("output folder");
    let mut staged = folder.stage();
    cvsurvey::output::write_estimates(&mut staged, &out.join("estimates.parquet"), &rows, &[])
        .expect("parquet");
    let written = write_publication(&mut staged, &out, &rows, &ctx, cfg).expect("publication");
    folder.commit(staged).expect("commit");
    (out, written)
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("csv");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|x| x.expect("record").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn reliability_flags_every_row_and_suppression_keeps_rows() {
    let d = demo("publish-reliability");
    let cfg = publication_config(DEMO_PUBLICATION);
    let rows = flagged_rows(&d, &cfg);
    assert_eq!(rows.len(), d.report.estimates.len(), "no row is deleted");
    let mut by_flag: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *by_flag.entry(r.flag.as_str()).or_default() += 1;
        assert!(
            ["", "caution", "suppressed"].contains(&r.flag.as_str()),
            "{r:?}"
        );
        assert_eq!(r.flag == Flag::Reliable, r.flag_reason.is_empty(), "{r:?}");
        if r.flag == Flag::Suppressed {
            assert!(r.estimate.is_none() && r.se.is_none() && r.ci_low.is_none());
            assert!(r.flag_reason.starts_with("nchs-2017: "), "{r:?}");
        }
    }
    // The demo has small domains (bribery among land-registry users by region): some cells
    // must be suppressed, most must not.
    assert!(
        by_flag.get("suppressed").copied().unwrap_or(0) > 0,
        "{by_flag:?}"
    );
    assert!(
        by_flag.get("").copied().unwrap_or(0) > rows.len() / 2,
        "{by_flag:?}"
    );
    // One decision per cell whatever the interval method.
    type Cell = (String, String, String, String, Option<String>);
    let mut cells: BTreeMap<Cell, BTreeSet<Flag>> = BTreeMap::new();
    for r in &rows {
        cells
            .entry((
                r.indicator.clone(),
                r.weighting.clone(),
                r.domain_var.clone(),
                r.domain_value.clone(),
                r.category.clone(),
            ))
            .or_default()
            .insert(r.flag);
    }
    assert!(cells.values().all(|f| f.len() == 1));
}

#[test]
fn publication_files_sdmx_codes_and_manifest() {
    let d = demo("publish-files");
    let cfg = publication_config(DEMO_PUBLICATION);
    let (out, written) = publish(&d, &cfg);
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "estimates.csv",
            "sdmx.csv",
            "tables.xlsx",
            "report.html",
            "manifest.json"
        ]
    );
    for n in &names {
        assert!(out.join(n).is_file(), "{n} missing after commit");
    }

    // SDMX: every coded column uses codes of the SDG code-list extracts.
    let (header, rows) = read_csv(&out.join("sdmx.csv"));
    let (_, lists) = read_csv(&root().join("fixtures/sdmx/codelists.csv"));
    let mut codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in lists {
        codes.entry(l[0].clone()).or_default().insert(l[1].clone());
    }
    assert!(!rows.is_empty());
    for (col, name) in header.iter().enumerate() {
        let allowed = match codes.get(name) {
            Some(a) => a,
            None if [
                "INCOME_WEALTH_QUANTILE",
                "EDUCATION_LEV",
                "OCCUPATION",
                "CUST_BREAKDOWN",
                "COMPOSITE_BREAKDOWN",
                "DISABILITY_STATUS",
                "ACTIVITY",
                "PRODUCT",
            ]
            .contains(&name.as_str()) =>
            {
                for r in &rows {
                    assert_eq!(r[col], "_T", "{name}");
                }
                continue;
            }
            None => continue,
        };
        for r in &rows {
            assert!(
                allowed.contains(&r[col]),
                "{name} = {:?} is not in the code list",
                r[col]
            );
        }
    }
    // One observation per key.
    let key_cols = 0..header
        .iter()
        .position(|h| h == "OBS_VALUE")
        .expect("OBS_VALUE");
    let keys: BTreeSet<Vec<String>> = rows.iter().map(|r| r[key_cols.clone()].to_vec()).collect();
    assert_eq!(keys.len(), rows.len(), "duplicate SDMX keys");
    // Suppressed observations have no value.
    let status = header
        .iter()
        .position(|h| h == "OBS_STATUS")
        .expect("status");
    let value = header.iter().position(|h| h == "OBS_VALUE").expect("value");
    for r in &rows {
        assert_eq!(
            r[status] == "Q" || r[status] == "O",
            r[value].is_empty(),
            "{r:?}"
        );
    }

    // estimates.csv mirrors every row.
    let (csv_header, csv_rows) = read_csv(&out.join("estimates.csv"));
    assert_eq!(csv_header.len(), 20);
    assert_eq!(csv_header[5], "category");
    assert_eq!(csv_rows.len(), d.report.estimates.len());

    // manifest.json: every file with its SHA-256 and size, no timestamp, provenance included.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let files = manifest["files"].as_array().expect("files");
    let listed: Vec<&str> = files
        .iter()
        .map(|f| f["file"].as_str().expect("file"))
        .collect();
    assert_eq!(
        listed,
        [
            "estimates.csv",
            "estimates.parquet",
            "report.html",
            "sdmx.csv",
            "tables.xlsx"
        ]
    );
    for f in files {
        let path = out.join(f["file"].as_str().expect("file"));
        let bytes = std::fs::read(&path).expect("file");
        assert_eq!(
            f["sha256"].as_str(),
            Some(cvsurvey::output::publish::sha256_hex(&bytes).as_str()),
            "{}",
            path.display()
        );
    }
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        assert!(manifest.get("created").is_none());
    }
    assert_eq!(manifest["provenance"]["cvsurvey.version"], "test");
}

#[test]
fn publication_is_deterministic() {
    let d = demo("publish-determinism");
    let cfg = publication_config(DEMO_PUBLICATION);
    let (out, _) = publish(&d, &cfg);
    let first = std::fs::read(out.join("manifest.json")).expect("manifest");
    let (out, _) = publish(&d, &cfg);
    let second = std::fs::read(out.join("manifest.json")).expect("manifest");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "same inputs, same bytes (the manifest hashes every file)"
    );
}

#[test]
fn sdmx_rows_snapshot() {
    let d = demo("publish-sdmx-snapshot");
    let cfg = publication_config(DEMO_PUBLICATION);
    let (out, _) = publish(&d, &cfg);
    let text = std::fs::read_to_string(out.join("sdmx.csv")).expect("sdmx");
    insta::assert_snapshot!("sdmx_demo", text);
}

#[test]
fn config_errors_against_the_questionnaire() {
    let d = demo("publish-config-errors");
    let bad = DEMO_PUBLICATION
        .replace(
            "feel_safe_dark = \"VC_SNS_WALN_DRK\"",
            "feel_safe = \"VC_SNS_WALN_DRK\"",
        )
        .replace("3 = \"Y45T59\", ", "");
    let cfg = publication_config(&bad);
    let errors = cfg
        .check_against(&d.questionnaire)
        .expect_err("unknown indicator and unmapped code");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.starts_with("sdmx.series.feel_safe: \"feel_safe\" is not an indicator")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("sdmx.dimensions.age_group.codes: domain value(s) 3")),
        "{text:?}"
    );
    let raw: RawPublication =
        toml::from_str(&DEMO_PUBLICATION.replace("nchs-2017", "nchs")).expect("toml");
    let e = PublicationConfig::check_raw(&raw).expect_err("bad preset");
    assert_eq!(e[0].key, "reliability.preset");
    // A domain value seen in the data without a code is an error at write time too.
    let cfg = publication_config(&DEMO_PUBLICATION.replace("2 = \"R\"", "3 = \"R\""));
    let rows = flagged_rows(&d, &cfg);
    let sdmx = cfg.sdmx.as_ref().expect("sdmx");
    let e = cvsurvey::output::sdmx::sdmx_rows(&rows, sdmx, &d.questionnaire, 0.95)
        .expect_err("urban = 2 has no code");
    assert!(
        e.contains("domain urban value \"2\" has no SDG code"),
        "{e}"
    );
}

#[test]
fn xlsx_cell_model_snapshot_and_readback() {
    let d = demo("publish-xlsx");
    let cfg = publication_config(DEMO_PUBLICATION);
    let rows = flagged_rows(&d, &cfg);
    let ctx = context(&d);
    let model = cvsurvey::output::xlsx::workbook_model(&rows, &ctx, &cfg);
    assert_eq!(model[0].name, "Cover");
    assert_eq!(model.len(), 1 + d.questionnaire.indicators.len());
    insta::assert_snapshot!(
        "xlsx_model_demo",
        cvsurvey::output::xlsx::model_text(&model)
    );
    // The rendered file is a zip with one worksheet per sheet of the model.
    let bytes = cvsurvey::output::xlsx::render(&model).expect("xlsx");
    assert_eq!(&bytes[..2], b"PK");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&format!("xl/worksheets/sheet{}.xml", model.len())));
}

const DISTRIBUTIONS: &str = r#"
[[indicators]]
id = "feeling_safe_dist"
label = "Feeling safe walking alone after dark"
kind = "distribution"
value = "safe_dark"
"#;

#[test]
fn distributions_in_the_report_workbook_and_sdmx() {
    let d = demo_with("publish-distributions", DISTRIBUTIONS);
    let cfg = publication_config(DEMO_PUBLICATION);
    let rows = flagged_rows(&d, &cfg);
    let ctx = context(&d);
    let html = cvsurvey::output::html::render(&rows, &ctx, &cfg);
    let text = html_text(&html);
    let section = text
        .split("Feeling safe walking alone after dark\n")
        .nth(1)
        .expect("a section for the distribution");
    let total: Vec<&str> = section
        .lines()
        .skip_while(|l| *l != "Total")
        .skip(1)
        .take(5)
        .map(|l| l.split(" | ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        total,
        [
            "Very safe",
            "Fairly safe",
            "A bit unsafe",
            "Very unsafe",
            "Never goes out alone after dark"
        ],
        "{section}"
    );
    assert!(
        html.contains("class=\"legend\""),
        "stacked bars of one question"
    );
    let officials = text
        .split("Types of official bribed, among bribe payers (multiple response)\n")
        .nth(1)
        .expect("a section for the multiple-response set");
    assert!(officials.contains("may add to more than 100%"));

    // A sheet per distribution, with a row per category of the whole population.
    let model = cvsurvey::output::xlsx::workbook_model(&rows, &ctx, &cfg);
    assert_eq!(model.len(), 1 + d.questionnaire.indicators.len());
    let sheet = model
        .iter()
        .find(|s| s.name == "bribe_officials")
        .expect("sheet");
    let text = cvsurvey::output::xlsx::model_text(std::slice::from_ref(sheet));
    // Five schemes × 29 domains (the total, 20 values of four variables, 8 sex × age groups) ×
    // 8 items.
    assert_eq!(text.matches("Did you give").count(), 5 * 29 * 8, "{text}");

    // SDMX: the same observations as without distributions.
    let sdmx = cfg.sdmx.as_ref().expect("sdmx");
    let with =
        cvsurvey::output::sdmx::sdmx_rows(&rows, sdmx, &d.questionnaire, 0.95).expect("sdmx");
    let plain: Vec<EstimateRow> = rows
        .iter()
        .filter(|r| r.category.is_none())
        .cloned()
        .collect();
    let without =
        cvsurvey::output::sdmx::sdmx_rows(&plain, sdmx, &d.questionnaire, 0.95).expect("sdmx");
    assert_eq!(with, without);
}

/// The report as text: scripts and SVG dropped, tags replaced by line breaks, entities decoded.
fn html_text(html: &str) -> String {
    let mut s = html.to_string();
    while let (Some(a), Some(b)) = (s.find("<svg"), s.find("</svg>")) {
        s.replace_range(a..b + "</svg>".len(), "[chart]\n");
    }
    if let (Some(a), Some(b)) = (s.find("<style>"), s.find("</style>")) {
        s.replace_range(a..b + "</style>".len(), "");
    }
    let mut out = String::new();
    let mut in_tag = false;
    let mut tag = String::new();
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let name = tag.trim_start_matches('/');
                if ["tr", "h1", "h2", "h3", "p", "dt", "dd", "table", "nav"]
                    .iter()
                    .any(|t| name == *t || name.starts_with(&format!("{t} ")))
                {
                    out.push('\n');
                } else if ["td", "th"]
                    .iter()
                    .any(|t| tag == *t || tag.starts_with(&format!("{t} ")))
                {
                    out.push_str(" | ");
                }
            }
            _ if in_tag => tag.push(c),
            _ => out.push(c),
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.lines()
        .map(|l| l.trim().trim_start_matches("| ").trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn html_report_text_snapshot_and_escaping() {
    let d = demo("publish-html");
    let cfg = publication_config(DEMO_PUBLICATION);
    let rows = flagged_rows(&d, &cfg);
    let ctx = context(&d);
    let html = cvsurvey::output::html::render(&rows, &ctx, &cfg);
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no network"
    );
    assert!(!html.contains(" src="), "no external resources");
    insta::assert_snapshot!("html_text_demo", html_text(&html));

    // Labels are escaped: a hostile title and code label cannot inject markup.
    let mut q = d.questionnaire.clone();
    q.title = "<img src=x onerror=alert(1)>".into();
    if let Some(v) = q.variables.iter_mut().find(|v| v.name == "sex") {
        v.codes[0].label = "</td><script>alert(1)</script>".into();
    }
    let mut ctx = context(&d);
    ctx.questionnaire = &q;
    let html = cvsurvey::output::html::render(&rows, &ctx, &cfg);
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// Render `report.html` in headless Chromium to a PNG (skipped when Chromium is absent).
#[test]
fn html_report_renders_in_chromium() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        eprintln!("skipped: Chromium not found (Debian: apt-get install -y chromium)");
        return;
    };
    let d = demo("publish-chromium");
    let cfg = publication_config(DEMO_PUBLICATION);
    let (out, _) = publish(&d, &cfg);
    let png = d.dir.join("report.png");
    let profile = d.dir.join("chromium-profile");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,3000")
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .expect("run chromium");
    assert!(
        status.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 20_000,
        "a blank page compresses to almost nothing"
    );
    eprintln!("screenshot: {}", png.display());
}
