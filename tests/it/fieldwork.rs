//! Fieldwork returns (`docs/fieldwork.md`): `cvsurvey monitor` and `cvsurvey run` on
//! `fixtures/fieldwork`, whose 200 returns carry every AAPOR category; the rates are checked
//! against the Standard Definitions' formulas with the fixture's counts, and bad returns give
//! findings (or, for an unmapped code, an error) naming file, row, column and value.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::{read_csv, relocated_config, root, scratch};

const CONTRACT: [&str; 12] = [
    "group_var",
    "group_value",
    "weighted",
    "rate",
    "value",
    "I",
    "P",
    "R",
    "NC",
    "O",
    "U",
    "NE",
];

fn fixture() -> PathBuf {
    root().join("fixtures/fieldwork")
}

/// The fixture's config in `dir`, with absolute paths, output in `dir/out`, the data file
/// `data` and each (line start, replacement) of `edits` applied.
fn config(dir: &Path, data: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let path = format!("path = \"{}\"", data.display());
    let mut extra = vec![("path = ", path.as_str())];
    extra.extend_from_slice(edits);
    relocated_config(&fixture().join("pipeline.toml"), dir, &extra)
}

/// The fixture's returns with `edit` applied to each row (column name → cell).
fn returns_with(dir: &Path, edit: impl Fn(&mut BTreeMap<String, String>)) -> PathBuf {
    let source = fixture().join("returns.csv");
    let mut reader = csv::Reader::from_path(&source).expect("returns");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let path = dir.join("returns.csv");
    let mut w = csv::Writer::from_path(&path).expect("write returns");
    w.write_record(&header).expect("header");
    for record in read_csv(&source) {
        let mut row = record;
        edit(&mut row);
        w.write_record(header.iter().map(|h| row[h].as_str()))
            .expect("row");
    }
    w.flush().expect("flush");
    path
}

fn cvsurvey(command: &str, config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
        .args([command, config.to_str().expect("utf8")])
        .output()
        .expect("run cvsurvey");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `fieldwork.csv` as (group_var, group_value, weighted, rate) → value.
fn rates(out: &Path) -> BTreeMap<(String, String, String, String), Option<f64>> {
    read_csv(&out.join("fieldwork.csv"))
        .into_iter()
        .map(|r| {
            (
                (
                    r["group_var"].clone(),
                    r["group_value"].clone(),
                    r["weighted"].clone(),
                    r["rate"].clone(),
                ),
                r["value"].parse::<f64>().ok(),
            )
        })
        .collect()
}

fn rate(
    table: &BTreeMap<(String, String, String, String), Option<f64>>,
    group: (&str, &str),
    weighted: bool,
    name: &str,
) -> f64 {
    let key = (
        group.0.to_string(),
        group.1.to_string(),
        weighted.to_string(),
        name.to_string(),
    );
    table
        .get(&key)
        .copied()
        .flatten()
        .unwrap_or_else(|| panic!("no value for {key:?}"))
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{what}: {got} != {want}"
    );
}

/// Every rate by the Standard Definitions' formulas.
fn by_hand(c: [f64; 7], e: f64) -> Vec<(&'static str, f64)> {
    let [i, p, r, nc, o, u, _ne] = c;
    vec![
        ("RR1", i / ((i + p) + (r + nc + o) + u)),
        ("RR2", (i + p) / ((i + p) + (r + nc + o) + u)),
        ("RR3", i / ((i + p) + (r + nc + o) + e * u)),
        ("RR4", (i + p) / ((i + p) + (r + nc + o) + e * u)),
        ("RR5", i / ((i + p) + (r + nc + o))),
        ("RR6", (i + p) / ((i + p) + (r + nc + o))),
        ("COOP1", i / ((i + p) + r + o)),
        ("COOP2", (i + p) / ((i + p) + r + o)),
        ("COOP3", i / ((i + p) + r)),
        ("COOP4", (i + p) / ((i + p) + r)),
        ("REF1", r / ((i + p) + (r + nc + o) + u)),
        ("REF2", r / ((i + p) + (r + nc + o) + e * u)),
        ("REF3", r / ((i + p) + (r + nc + o))),
        ("CON1", ((i + p) + r + o) / ((i + p) + r + o + nc + u)),
        ("CON2", ((i + p) + r + o) / ((i + p) + r + o + nc + e * u)),
        ("CON3", ((i + p) + r + o) / ((i + p) + r + o + nc)),
        ("e", e),
    ]
}

/// The AAPOR category letter of each disposition code of the fixture's config.
fn letter(code: &str) -> usize {
    match code {
        "11" => 0,
        "12" => 1,
        "21" | "24" => 2,
        "22" => 3,
        "23" => 4,
        "31" | "32" => 5,
        "41" => 6,
        other => panic!("code {other}"),
    }
}

#[test]
fn monitor_writes_the_rates_of_the_standard_definitions_and_the_monitoring_page() {
    let dir = scratch("fieldwork-monitor");
    let cfg = config(&dir, &fixture().join("returns.csv"), &[]);
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 0, "{text}");
    let out = dir.join("out");
    for f in [
        "fieldwork.parquet",
        "fieldwork.csv",
        "fieldwork.html",
        "findings.csv",
        "quarantine.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing: {text}");
    }
    assert!(
        !out.join("estimates.parquet").exists(),
        "monitor does not estimate"
    );

    // The contract columns, in order, in both files.
    let header = std::fs::read_to_string(out.join("fieldwork.csv")).expect("csv");
    assert_eq!(header.lines().next(), Some(CONTRACT.join(",").as_str()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(
        File::open(out.join("fieldwork.parquet")).expect("parquet"),
    )
    .expect("reader");
    let schema = reader.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, CONTRACT);
    assert_eq!(schema.field(2).data_type(), &DataType::Boolean);
    assert_eq!(schema.field(4).data_type(), &DataType::Float64);

    // Whole sample: I = 90, P = 12, R = 24 + 6, NC = 25, O = 8, U = 12 + 8, NE = 15.
    let table = rates(&out);
    let counts = [90.0, 12.0, 30.0, 25.0, 8.0, 20.0, 15.0];
    let e = (90.0 + 12.0 + 30.0 + 25.0 + 8.0) / (90.0 + 12.0 + 30.0 + 25.0 + 8.0 + 15.0);
    for (name, want) in by_hand(counts, e) {
        assert_close(rate(&table, ("_T", "_T"), false, name), want, name);
    }
    let first = &read_csv(&out.join("fieldwork.csv"))[0];
    let written: Vec<&str> = ["I", "P", "R", "NC", "O", "U", "NE"]
        .iter()
        .map(|c| first[*c].as_str())
        .collect();
    assert_eq!(written, ["90", "12", "30", "25", "8", "20", "15"]);

    // Weighted, and by region: the counts summed from the returns themselves.
    let returns = read_csv(&fixture().join("returns.csv"));
    let mut weighted = [0.0; 7];
    let mut south = [0.0; 7];
    for r in &returns {
        let k = letter(&r["outcome"]);
        weighted[k] += r["w"].parse::<f64>().expect("w");
        if r["region"] == "S" {
            south[k] += 1.0;
        }
    }
    let e_w = weighted[..5].iter().sum::<f64>() / (weighted[..5].iter().sum::<f64>() + weighted[6]);
    for (name, want) in by_hand(weighted, e_w) {
        assert_close(rate(&table, ("_T", "_T"), true, name), want, name);
    }
    let e_s = south[..5].iter().sum::<f64>() / (south[..5].iter().sum::<f64>() + south[6]);
    for (name, want) in by_hand(south, e_s) {
        assert_close(rate(&table, ("region", "S"), false, name), want, name);
    }
    // Every interviewer has its rows.
    for iw in ["iw01", "iw05"] {
        rate(&table, ("interviewer", iw), true, "RR1");
    }

    // The page: rates overall, by region and interviewer, dates, the outlier interviewer.
    let page = std::fs::read_to_string(out.join("fieldwork.html")).expect("page");
    for part in [
        "<h2 id=\"fieldwork\">Fieldwork</h2>",
        "By region",
        "By interviewer",
        "Returns per interview date",
        "<tr class=\"caution\"><td class=\"l\">iw05</td>",
    ] {
        assert!(page.contains(part), "{part} missing");
    }
    assert!(
        !page.contains("<tr class=\"caution\"><td class=\"l\">iw01</td>"),
        "only iw05 stands out"
    );
    assert!(text.contains("interviewer iw05 stands out"), "{text}");
}

#[test]
fn a_fixed_e_and_partials_as_nonrespondents_are_followed() {
    let dir = scratch("fieldwork-fixed-e");
    let cfg = config(
        &dir,
        &fixture().join("returns.csv"),
        &[
            ("e = ", "e = 0.5"),
            ("partial_is_response", "partial_is_response = false"),
        ],
    );
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 0, "{text}");
    let table = rates(&dir.join("out"));
    for (name, want) in by_hand([90.0, 12.0, 30.0, 25.0, 8.0, 20.0, 15.0], 0.5) {
        assert_close(rate(&table, ("_T", "_T"), false, name), want, name);
    }
    assert!(
        text.contains("(90 respondents"),
        "partials are nonrespondents: {text}"
    );
}

#[test]
fn run_writes_the_fieldwork_outputs_and_dispositions_give_the_response_flags_estimates() {
    let dir = scratch("fieldwork-run");
    let cfg = config(&dir, &fixture().join("returns.csv"), &[]);
    let (code, text) = cvsurvey("run", &cfg);
    assert_eq!(code, 0, "{text}");
    let out = dir.join("out");
    assert!(out.join("fieldwork.parquet").is_file() && out.join("fieldwork.csv").is_file());
    let report = std::fs::read_to_string(out.join("report.html")).expect("report");
    assert!(report.contains("<a href=\"#fieldwork\">Fieldwork</a>"));
    assert!(report.contains("<h2 id=\"fieldwork\">Fieldwork</h2>"));
    let with_dispositions = std::fs::read_to_string(out.join("estimates.csv")).expect("csv");

    // The same survey with the 0/1 response column and no dispositions.
    let plain = scratch("fieldwork-run-response");
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace("disposition = \"outcome\"", "response = \"responded\"")
        .replace(
            &dir.join("out").display().to_string(),
            &plain.join("out").display().to_string(),
        );
    let text: String = text
        .split("[dispositions]")
        .next()
        .expect("before")
        .lines()
        .filter(|l| !l.starts_with("interviewer") && !l.starts_with("interview_date"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "[design]"
        + text.split("[design]").nth(1).expect("design");
    let plain_cfg = plain.join("pipeline.toml");
    std::fs::write(&plain_cfg, text).expect("config");
    let (code, msg) = cvsurvey("run", &plain_cfg);
    assert_eq!(code, 0, "{msg}");
    assert!(!plain.join("out/fieldwork.csv").exists());
    let with_response = std::fs::read_to_string(plain.join("out/estimates.csv")).expect("csv");
    assert_eq!(with_dispositions, with_response);
}

#[test]
fn an_unmapped_code_stops_with_the_code_and_its_rows() {
    let dir = scratch("fieldwork-unmapped");
    let data = returns_with(&dir, |r| {
        if ["5", "9"].contains(&r["resp_id"].as_str()) {
            r.insert("outcome".into(), "99".into());
        }
    });
    let (code, text) = cvsurvey("monitor", &config(&dir, &data, &[]));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("returns.csv")
            && text.contains("column outcome")
            && text.contains("\"99\" (rows 5, 9)"),
        "{text}"
    );
}

#[test]
fn bad_returns_are_findings_with_row_column_and_value() {
    let dir = scratch("fieldwork-bad");
    let data = returns_with(&dir, |r| {
        match r["resp_id"].as_str() {
            // A complete interview (code 11) without any answer.
            "2" => {
                for c in ["sex", "contact_police", "bribe_police", "feel_safe"] {
                    r.insert(c.into(), String::new());
                }
            }
            "4" => {
                r.insert("interview_date".into(), "2999-01-01".into());
            }
            "6" => {
                r.insert("interview_date".into(), "2026-02-01".into());
            }
            "7" => {
                r.insert("interview_date".into(), "03/05/2026".into());
            }
            // Code 31 (unknown eligibility) said to have responded.
            "1" => {
                r.insert("responded".into(), "1".into());
            }
            // No disposition: quarantined like a blank response.
            "10" => {
                r.insert("outcome".into(), String::new());
            }
            _ => {}
        }
    });
    let cfg = config(
        &dir,
        &data,
        &[(
            "id = \"resp_id\"",
            "id = \"resp_id\"\nresponse = \"responded\"",
        )],
    );
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 0, "findings, not an error: {text}");
    let findings = read_csv(&dir.join("out/findings.csv"));
    let find = |kind: &str| {
        findings
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| (f["row"].clone(), f["column"].clone(), f["value"].clone()))
            .collect::<Vec<_>>()
    };
    let t = |r: &str, c: &str, v: &str| (r.to_string(), c.to_string(), v.to_string());
    assert_eq!(find("empty_interview"), [t("2", "outcome", "11")]);
    assert_eq!(
        find("date_outside_fieldwork"),
        [
            t("4", "interview_date", "2999-01-01"),
            t("6", "interview_date", "2026-02-01")
        ]
    );
    assert_eq!(
        find("invalid_date"),
        [t("7", "interview_date", "03/05/2026")]
    );
    assert_eq!(find("disposition_mismatch"), [t("1", "responded", "1")]);
    let page = std::fs::read_to_string(dir.join("out/fieldwork.html")).expect("page");
    assert!(
        page.contains("<td class=\"l\">date_outside_fieldwork</td><td>2</td>"),
        "the page counts the findings"
    );
    // Findings, not quarantine: every row with a disposition is used.
    assert!(text.contains("199 used + 1 quarantined"), "{text}");
    let quarantined = read_csv(&dir.join("out/quarantine.csv"));
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        (
            quarantined[0]["row"].as_str(),
            quarantined[0]["column"].as_str(),
            quarantined[0]["kind"].as_str()
        ),
        ("10", "outcome", "missing_design_value")
    );
}

#[test]
fn config_errors_name_the_code_and_the_missing_half() {
    let dir = scratch("fieldwork-config");
    let data = fixture().join("returns.csv");
    let cfg = config(&dir, &data, &[("other = ", "other = [23, 11]")]);
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("code 11") && text.contains("complete and other"),
        "{text}"
    );
    let cfg = config(&dir, &data, &[("e = ", "e = 1.2")]);
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("dispositions.e"), "{text}");

    // Without dispositions, monitor says what it needs.
    let text = std::fs::read_to_string(fixture().join("pipeline.toml")).expect("config");
    let bare: String = text
        .split("[dispositions]")
        .next()
        .expect("head")
        .lines()
        .filter(|l| !l.starts_with("disposition") && !l.starts_with("interview"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "[design]"
        + text.split("[design]").nth(1).expect("design");
    std::fs::write(dir.join("bare.toml"), &bare).expect("bare");
    let cfg = config(&dir, &data, &[]);
    std::fs::write(
        &cfg,
        bare.replace(
            "questionnaire = \"questionnaire.toml\"",
            &format!(
                "questionnaire = \"{}\"",
                fixture().join("questionnaire.toml").display()
            ),
        )
        .replace(
            "path = \"returns.csv\"",
            &format!("path = \"{}\"", data.display()),
        )
        .replace(
            "dir = \"out\"",
            &format!("dir = \"{}\"", dir.join("out").display()),
        ),
    )
    .expect("config");
    let (code, text) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("monitor needs final dispositions"), "{text}");
}

/// The demo survey of households and persons with its person response flags as dispositions
/// (1 → complete 11, 0 → refusal 21) in the person file: the same estimates, and the rates of
/// the persons by the households' region.
#[test]
fn a_two_file_survey_takes_its_dispositions_from_the_person_file() {
    let demo = root().join("fixtures/demo-households");
    let dir = scratch("fieldwork-households");
    let persons = read_csv(&demo.join("persons.csv"));
    let source = csv::Reader::from_path(demo.join("persons.csv"))
        .expect("persons")
        .headers()
        .expect("header")
        .clone();
    let mut header: Vec<String> = source.iter().map(str::to_string).collect();
    header.push("outcome".into());
    let mut w = csv::Writer::from_path(dir.join("persons.csv")).expect("write");
    w.write_record(&header).expect("header");
    let mut respondents = 0;
    for row in &persons {
        let code = if row["responded"] == "1" { "11" } else { "21" };
        respondents += usize::from(code == "11");
        let cells: Vec<&str> = header
            .iter()
            .map(|h| {
                if h == "outcome" {
                    code
                } else {
                    row[h].as_str()
                }
            })
            .collect();
        w.write_record(cells).expect("row");
    }
    w.flush().expect("flush");
    let text = std::fs::read_to_string(demo.join("pipeline.toml")).expect("config");
    let absolute = |t: &str, out: &Path, persons: &Path| {
        t.replace(
            "\"../../questionnaires/",
            &format!("\"{}/questionnaires/", root().display()),
        )
        .replace("\"persons.csv\"", &format!("\"{}\"", persons.display()))
        .replace(
            "\"households.csv\"",
            &format!("\"{}\"", demo.join("households.csv").display()),
        )
        .replace(
            "\"household_margins.csv\"",
            &format!("\"{}\"", demo.join("household_margins.csv").display()),
        )
        .replace(
            "\"margins.csv\"",
            &format!("\"{}\"", demo.join("margins.csv").display()),
        )
        .replace(
            "dir = \"out\"",
            &format!(
                "dir = \"{}\"\nformats = [\"parquet\", \"csv\"]",
                out.display()
            ),
        )
    };
    let plain = dir.join("plain.toml");
    std::fs::write(
        &plain,
        absolute(&text, &dir.join("plain"), &demo.join("persons.csv")),
    )
    .expect("plain");
    let with = absolute(&text, &dir.join("out"), &dir.join("persons.csv"))
        .replace(
            "response = \"responded\"          #",
            "disposition = \"outcome\"         #",
        )
        .replace(
            "[design]",
            "[dispositions]\ncomplete = [11]\nrefusal = [21]\n\n[fieldwork]\nby = [\"region\"]\n\n[design]",
        );
    assert!(with.contains("disposition = \"outcome\""), "{with}");
    let cfg = dir.join("pipeline.toml");
    std::fs::write(&cfg, with).expect("config");

    let (code, msg) = cvsurvey("run", &plain);
    assert_eq!(code, 0, "{msg}");
    let (code, msg) = cvsurvey("run", &cfg);
    assert_eq!(code, 0, "{msg}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/estimates.csv")).expect("estimates"),
        std::fs::read_to_string(dir.join("plain/estimates.csv")).expect("estimates"),
    );
    let table = rates(&dir.join("out"));
    assert_close(
        rate(&table, ("_T", "_T"), false, "RR1"),
        respondents as f64 / persons.len() as f64,
        "RR1 = I / all persons",
    );
    assert!(
        table
            .keys()
            .any(|(var, value, _, _)| var == "region" && value == "R01")
    );

    let (code, msg) = cvsurvey("monitor", &cfg);
    assert_eq!(code, 0, "{msg}");
    assert!(dir.join("out/fieldwork.html").is_file());
    assert!(
        !table.is_empty()
            && !rates(&dir.join("out"))
                .keys()
                .any(|(_, _, w, _)| w == "true"),
        "monitor's person rates are unweighted"
    );
}

/// `weights.parquet` as id → (design weight, the final weight of each of `schemes`).
fn final_weights(out: &Path, schemes: &[&str]) -> BTreeMap<String, (f64, Vec<Option<f64>>)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    let file = File::open(out.join("weights.parquet")).expect("weights.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut weights = BTreeMap::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let ids = batch.column_by_name("id").expect("id").as_string::<i32>();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("column {name}"))
                .as_primitive::<Float64Type>()
                .clone()
        };
        let design = column("design_weight");
        let finals: Vec<_> = schemes.iter().map(|s| column(s)).collect();
        for i in 0..batch.num_rows() {
            let of_scheme = finals
                .iter()
                .map(|c| (!arrow_array::Array::is_null(c, i)).then(|| c.value(i)))
                .collect();
            weights.insert(ids.value(i).to_string(), (design.value(i), of_scheme));
        }
    }
    weights
}

/// The fixture's config with two schemes adjusting for nonresponse by region, with and
/// without the eligibility adjustment, and replicates that redo both.
fn eligibility_config(dir: &Path, data: &Path) -> PathBuf {
    let cfg = config(dir, data, &[]);
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(
        "\n[[weighting]]\nname = \"eligible\"\nnonresponse = { classes = [\"region\"], eligibility = \"adjust\" }\n\n\
         [[weighting]]\nname = \"naive\"\nnonresponse = { classes = [\"region\"] }\n\n\
         [variance]\nmethod = [\"taylor\", \"bootstrap\", \"jkn\"]\nreplicates = 30\n",
    );
    std::fs::write(&cfg, text).expect("config");
    cfg
}

/// `eligibility = "adjust"`: each respondent's weight is the three steps of the
/// eligibility adjustment done here on the returns (unknown-eligibility weight to the cases of
/// known eligibility of its region, ineligible cases out, eligible nonrespondents' weight to
/// the respondents); the respondents carry the estimated eligible total; the scheme without it
/// carries the whole sample and is warned about; replicates redo it.
#[test]
fn eligibility_in_the_weights_is_the_three_steps_by_region() {
    let dir = scratch("fieldwork-eligibility");
    let returns = fixture().join("returns.csv");
    let cfg = eligibility_config(&dir, &returns);
    let (code, text) = cvsurvey("run", &cfg);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("weighting \"naive\": 15 ineligible case(s) and 20 of unknown eligibility"),
        "{text}"
    );
    assert!(
        !text.contains("weighting \"eligible\": 15 ineligible"),
        "{text}"
    );
    let weights = final_weights(&dir.join("out"), &["eligible", "naive"]);

    // The three steps, region by region, from the returns.
    let rows = read_csv(&returns);
    let mut step = BTreeMap::new();
    let mut eligible_totals = Vec::new();
    for region in ["N", "S"] {
        let of_region: Vec<_> = rows.iter().filter(|r| r["region"] == region).collect();
        let d = |r: &BTreeMap<String, String>| r["w"].parse::<f64>().expect("weight");
        let category = |r: &BTreeMap<String, String>| letter(&r["outcome"]);
        let sum = |keep: &dyn Fn(usize) -> bool| -> f64 {
            of_region
                .iter()
                .filter(|r| keep(category(r)))
                .map(|r| d(r))
                .sum()
        };
        // Categories in AAPOR order: I, P, R, NC, O, U, NE.
        let all = sum(&|_| true);
        let known = sum(&|c| c != 5);
        let mut after_unknown: Vec<(String, usize, f64)> = of_region
            .iter()
            .map(|r| {
                let w = if category(r) == 5 {
                    0.0
                } else {
                    d(r) * all / known
                };
                (r["resp_id"].clone(), category(r), w)
            })
            .collect();
        let eligible: f64 = after_unknown.iter().filter(|x| x.1 < 5).map(|x| x.2).sum();
        let responded: f64 = after_unknown.iter().filter(|x| x.1 < 2).map(|x| x.2).sum();
        for x in &mut after_unknown {
            if x.1 < 2 {
                x.2 *= eligible / responded;
                step.insert(x.0.clone(), x.2);
            }
        }
        eligible_totals.push(eligible);
    }
    let mut n = 0;
    let (mut total, mut naive_total, mut design_total) = (0.0, 0.0, 0.0);
    for (id, (design, finals)) in &weights {
        design_total += design;
        match (step.get(id), finals[0], finals[1]) {
            (Some(&want), Some(got), Some(naive)) => {
                assert_close(got, want, &format!("respondent {id}"));
                total += got;
                naive_total += naive;
                n += 1;
            }
            (None, None, None) => {}
            other => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(n, 102, "interviews (complete and partial)");
    // The respondents carry the estimated eligible total of the two regions.
    assert_close(total, eligible_totals.iter().sum(), "eligible total");
    // Without the adjustment the respondents carry the whole sample.
    assert_close(naive_total, design_total, "naive total");
    assert!(naive_total > total * 1.05, "{naive_total} vs {total}");

    // Replicates redo the adjustment: both schemes have replicate SEs, and they differ.
    let estimates = read_csv(&dir.join("out/estimates.csv"));
    for method in ["bootstrap", "jkn"] {
        let se = |scheme: &str| -> f64 {
            estimates
                .iter()
                .find(|r| {
                    r["variance"] == method && r["weighting"] == scheme && r["domain_var"] == "_T"
                })
                .and_then(|r| r["se"].parse().ok())
                .unwrap_or_else(|| panic!("{method} {scheme}: no se"))
        };
        assert!(se("eligible") > 0.0 && se("naive") > 0.0);
        assert_ne!(se("eligible"), se("naive"), "{method}");
    }
}

/// A quarter of the nonrespondents ineligible and none of unknown eligibility: treating them
/// as nonrespondents over-states the population by exactly their design weight; the
/// adjustment removes it.
#[test]
fn ineligible_cases_counted_as_nonrespondents_inflate_the_population() {
    let dir = scratch("fieldwork-ineligible-quarter");
    let seen = std::cell::Cell::new(0usize);
    let data = returns_with(&dir, |row| {
        let code = row["outcome"].clone();
        if code != "11" && code != "12" {
            seen.set(seen.get() + 1);
            let ineligible = seen.get().is_multiple_of(4);
            row.insert(
                "outcome".into(),
                if ineligible { "41" } else { "21" }.into(),
            );
            if ineligible {
                row.insert("interview_date".into(), String::new());
            }
        }
    });
    let cfg = eligibility_config(&dir, &data);
    let (code, text) = cvsurvey("run", &cfg);
    assert_eq!(code, 0, "{text}");
    let weights = final_weights(&dir.join("out"), &["eligible", "naive"]);
    let rows = read_csv(&data);
    let ineligible: f64 = rows
        .iter()
        .filter(|r| r["outcome"] == "41")
        .map(|r| r["w"].parse::<f64>().expect("w"))
        .sum();
    let nonrespondents = rows
        .iter()
        .filter(|r| r["outcome"] != "11" && r["outcome"] != "12")
        .count();
    let ineligible_count = rows.iter().filter(|r| r["outcome"] == "41").count();
    assert_eq!(ineligible_count, nonrespondents / 4);
    let total = |k: usize| -> f64 { weights.values().filter_map(|(_, f)| f[k]).sum() };
    let design: f64 = weights.values().map(|(d, _)| d).sum();
    assert_close(total(1), design, "naive total");
    assert_close(total(0), design - ineligible, "eligible total");
    assert_close(total(1) - total(0), ineligible, "bias of the naive weights");
}
