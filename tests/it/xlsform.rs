//! `cvsurvey questionnaire import FORM.xlsx`: every XLSForm in `fixtures/xlsform/` drafts a
//! questionnaire that parses, `synth` makes data from it, and that data validates against the
//! draft with nothing quarantined; bad forms are one-line errors naming the cell.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::Workbook;

use crate::common::{cvsurvey, read_csv, root, scratch};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Forms in the fixtures that are not valid XLSForms on purpose (pyxform's own tests of
/// refusals), with the error each must give.
const REFUSED: [(&str, &str); 2] = [
    ("survey_no_name.xlsx", "no `survey` sheet (sheets: Sheet1)"),
    (
        "unknown_question_type.xls",
        "survey!A2: unknown question type \"set form title\" in row 2",
    ),
];

fn forms() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("fixtures/xlsform")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures/xlsform") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if cvsurvey::questionnaire::xlsform::is_xlsform(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Draft, synthesise and validate one form; returns the draft.
fn draft_synth_validate(form: &Path, dir: &Path) -> String {
    let (code, draft, stderr) = cvsurvey(&["questionnaire", "import", s(form)]);
    assert_eq!(code, 0, "{}: {stderr}", form.display());
    assert!(stderr.contains("variables from"), "summary: {stderr}");
    let q = dir.join("draft.toml");
    std::fs::write(&q, &draft).expect("write draft");
    // A roster: households and persons, linked by the export's keys (KEY, PARENT_KEY).
    let two_files = draft.contains("level = \"household\"");
    let out = if two_files {
        format!("{}/", dir.display())
    } else {
        s(&dir.join("data.csv")).to_string()
    };
    let (code, _, stderr) = cvsurvey(&[
        "synth",
        "--questionnaire",
        s(&q),
        "--rows",
        "300",
        "--regions",
        "2",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{}: synth: {stderr}", form.display());
    let data = if two_files {
        format!(
            "[data]\npath = \"{}\"\nid = \"resp_id\"\nresponse = \"responded\"\nhousehold_id = \"PARENT_KEY\"\n\
             [data.household]\npath = \"{}\"\nid = \"KEY\"\nresponse = \"hh_responded\"\n\
             [design]\nstrata = \"stratum\"\npsu = \"psu\"\nweight = \"hh_weight\"\nnest = true\n",
            s(&dir.join("persons.csv")),
            s(&dir.join("households.csv"))
        )
    } else {
        format!(
            "[data]\npath = \"{}\"\nid = \"id\"\nresponse = \"responded\"\n\
             [design]\nstrata = \"stratum\"\npsu = \"psu\"\nweight = \"design_weight\"\nnest = true\n",
            s(&dir.join("data.csv"))
        )
    };
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "questionnaire = \"{}\"\n{data}[output]\ndir = \"{}\"\n",
            s(&q),
            s(&dir.join("out"))
        ),
    )
    .expect("write config");
    let (code, stdout, stderr) = cvsurvey(&["validate", s(&config)]);
    assert_eq!(code, 0, "{}: validate: {stdout}{stderr}", form.display());
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("quarantined") && !l.contains("+ 0 quarantined")),
        "{}: rows quarantined:\n{stdout}",
        form.display()
    );
    // synth leaves about 1 % of integer answers blank on purpose (item nonresponse); any other
    // finding means the data do not fit the draft.
    for findings in ["findings.csv", "household_findings.csv"] {
        let path = dir.join("out").join(findings);
        if !path.exists() {
            continue;
        }
        for row in read_csv(&path) {
            assert_eq!(
                row["kind"],
                "item_nonresponse",
                "{}: finding {row:?}",
                form.display()
            );
        }
    }
    for quarantine in ["quarantine.csv", "household_quarantine.csv"] {
        let path = dir.join("out").join(quarantine);
        if path.exists() {
            assert!(
                read_csv(&path).is_empty(),
                "{}: {quarantine}",
                form.display()
            );
        }
    }
    draft
}

#[test]
fn every_fixture_form_drafts_a_questionnaire_whose_synthetic_data_validate() {
    let forms = forms();
    assert!(forms.len() >= 40, "forms: {}", forms.len());
    for form in &forms {
        let name = form.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dir = scratch(&format!("xlsform-{name}"));
        if let Some((_, expect)) = REFUSED.iter().find(|(f, _)| *f == name) {
            let (code, stdout, stderr) = cvsurvey(&["questionnaire", "import", s(form)]);
            assert_eq!(code, 2, "{name}: {stderr}");
            assert!(stdout.is_empty());
            assert!(stderr.contains(expect), "{name}: {stderr}");
            continue;
        }
        draft_synth_validate(form, &dir);
    }
}

#[test]
fn a_roster_is_drafted_as_households_and_persons_with_the_export_keys() {
    let form = root().join("fixtures/xlsform/kobocat/new_repeats.xls");
    let draft = draft_synth_validate(&form, &scratch("xlsform-roster"));
    let q = cvsurvey::questionnaire::Questionnaire::from_toml_str(&draft, Path::new("d.toml"))
        .expect("draft parses");
    use cvsurvey::questionnaire::Level;
    assert_eq!(q.variable("KEY").map(|v| v.level), Some(Level::Household));
    assert_eq!(
        q.variable("PARENT_KEY").map(|v| v.level),
        Some(Level::Person)
    );
    assert_eq!(
        q.variable("kids/kids_details/kids_name").map(|v| v.level),
        Some(Level::Person)
    );
    assert_eq!(
        q.variable("info/name").map(|v| v.level),
        Some(Level::Household)
    );
}

#[test]
fn the_export_header_given_with_data_names_the_columns() {
    // transportation_export.csv is KoboToolbox's export of transportation.xls (kobocat tests).
    let form = root().join("fixtures/xlsform/kobocat/transportation.xls");
    let data = root().join("fixtures/xlsform/kobocat/transportation_export.csv");
    let (code, draft, stderr) =
        cvsurvey(&["questionnaire", "import", s(&form), "--data", s(&data)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        draft.contains(
            "name = \"transport/available_transportation_types_to_referral_facility/ambulance\""
        ),
        "{draft}"
    );
    assert!(
        draft.contains(
            "name = \"transport/available_transportation_types_to_referral_facility_other\""
        ),
        "or_other adds the text question <name>_other: {draft}"
    );
    // A loop's questions once per choice of its list, as the export has them.
    assert!(
        draft.contains(
            "name = \"transport/loop_over_transport_types_frequency/bus/frequency_to_referral_facility\""
        ),
        "{draft}"
    );
    assert!(
        stderr.contains("20 of 20 main-file columns found"),
        "{stderr}"
    );

    // An export that names items q_choice and drops group names.
    let dir = scratch("xlsform-data-naming");
    let header = dir.join("export.csv");
    std::fs::write(
        &header,
        "available_transportation_types_to_referral_facility_ambulance;available_transportation_types_to_referral_facility_bicycle;KEY\n",
    )
    .expect("write header");
    let (code, draft, stderr) =
        cvsurvey(&["questionnaire", "import", s(&form), "--data", s(&header)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        draft.contains("name = \"available_transportation_types_to_referral_facility_bicycle\""),
        "{draft}"
    );
}

#[test]
fn language_and_data_apply_to_xlsforms_only() {
    let csv = root().join("fixtures/demo/data.csv");
    for flag in ["--language", "--data"] {
        let (code, _, stderr) = cvsurvey(&["questionnaire", "import", s(&csv), flag, "x"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("--language and --data apply to an XLSForm"),
            "{stderr}"
        );
    }
}

/// A workbook with `survey` rows (header first) and `choices` rows.
fn workbook(path: &Path, survey: &[&[&str]], choices: &[&[&str]]) {
    let mut book = Workbook::new();
    for (name, rows) in [("survey", survey), ("choices", choices)] {
        if rows.is_empty() {
            continue;
        }
        let sheet = book.add_worksheet();
        sheet.set_name(name).expect("name");
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if !cell.is_empty() {
                    sheet
                        .write_string(r as u32, c as u16, *cell)
                        .expect("write");
                }
            }
        }
    }
    book.save(path).expect("save");
}

const YES_NO: &[&[&str]] = &[
    &[
        "list_name",
        "name",
        "label::English (en)",
        "label::Français (fr)",
    ],
    &["yn", "1", "Yes", "Oui"],
    &["yn", "2", "No", "Non"],
];

fn import_error(name: &str, survey: &[&[&str]], choices: &[&[&str]], args: &[&str]) -> String {
    let dir = scratch(&format!("xlsform-bad-{name}"));
    let form = dir.join(format!("{name}.xlsx"));
    workbook(&form, survey, choices);
    let mut all = vec!["questionnaire", "import", s(&form)];
    all.extend(args);
    let (code, stdout, stderr) = cvsurvey(&all);
    assert_eq!(code, 2, "{name}: {stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn bad_forms_are_one_line_errors_naming_the_cell() {
    let header: &[&str] = &[
        "type",
        "name",
        "label::English (en)",
        "label::Français (fr)",
    ];
    let e = import_error("nosurvey", &[], YES_NO, &[]);
    assert!(e.contains("no `survey` sheet (sheets: choices)"), "{e}");

    let e = import_error(
        "missinglist",
        &[header, &["select_one yesno", "q1", "Q1", "Q1"]],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!A2: `q1` selects from list \"yesno\"") && e.contains("(lists: yn)"),
        "{e}"
    );

    let e = import_error(
        "dupname",
        &[
            header,
            &["integer", "age", "Age", "Âge"],
            &["text", "age", "Age", "Âge"],
        ],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!B3: the name \"age\" is already used at survey!B2"),
        "{e}"
    );

    let dup_codes: &[&[&str]] = &[
        &["list_name", "name", "label"],
        &["yn", "1", "Yes"],
        &["yn", "1", "No"],
    ];
    let e = import_error(
        "dupcode",
        &[header, &["select_one yn", "q1", "Q1", "Q1"]],
        dup_codes,
        &[],
    );
    assert!(
        e.contains("choices!B3: list \"yn\" has the code \"1\" twice (first at choices!B2)"),
        "{e}"
    );

    let e = import_error(
        "unknowntype",
        &[
            header,
            &["integer", "a", "A", "A"],
            &["integr", "b", "B", "B"],
        ],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!A3: unknown question type \"integr\" in row 3"),
        "{e}"
    );

    let e = import_error(
        "unended",
        &[
            header,
            &["begin_group", "g", "G", "G"],
            &["integer", "a", "A", "A"],
        ],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!A2: begin_group g is never ended; add an end_group row"),
        "{e}"
    );

    let e = import_error(
        "unbegun",
        &[
            header,
            &["integer", "a", "A", "A"],
            &["end_repeat", "", "", ""],
        ],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!A3: end_repeat without a begin_repeat above it"),
        "{e}"
    );

    let e = import_error(
        "crossed",
        &[
            header,
            &["begin_repeat", "r", "R", "R"],
            &["integer", "a", "A", "A"],
            &["end_group", "", "", ""],
        ],
        YES_NO,
        &[],
    );
    assert!(
        e.contains("survey!A4: end_group while repeat r (begun at survey!A2) is open"),
        "{e}"
    );

    let e = import_error(
        "language",
        &[header, &["select_one yn", "q1", "Q1", "Q1"]],
        YES_NO,
        &["--language", "Deutsch"],
    );
    assert!(
        e.contains("no language \"Deutsch\"; its languages: English (en), Français (fr)"),
        "{e}"
    );
}

#[test]
fn the_language_is_chosen_by_name_or_code() {
    let dir = scratch("xlsform-language");
    let form = dir.join("form.xlsx");
    let header: &[&str] = &[
        "type",
        "name",
        "label::English (en)",
        "label::Français (fr)",
    ];
    workbook(
        &form,
        &[header, &["select_one yn", "q1", "Agree?", "D'accord ?"]],
        YES_NO,
    );
    let (code, draft, stderr) = cvsurvey(&["questionnaire", "import", s(&form)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(draft.contains("label = \"Agree?\""), "{draft}");
    assert!(
        stderr.contains("English (en) (chosen), Français (fr)"),
        "{stderr}"
    );
    let (code, draft, stderr) =
        cvsurvey(&["questionnaire", "import", s(&form), "--language", "fr"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(draft.contains("label = \"D'accord ?\""), "{draft}");
    assert!(draft.contains("2 = \"Non\""), "{draft}");
}

#[test]
fn a_survey_sheet_with_a_million_styled_empty_rows_ends_at_its_last_question() {
    let dir = scratch("xlsform-styled-rows");
    let form = dir.join("styled.xlsx");
    let mut book = Workbook::new();
    let survey = book.add_worksheet();
    survey.set_name("survey").expect("name");
    for (c, h) in ["type", "name", "label"].iter().enumerate() {
        survey.write_string(0, c as u16, *h).expect("write");
    }
    for (c, h) in ["integer", "age", "Age"].iter().enumerate() {
        survey.write_string(1, c as u16, *h).expect("write");
    }
    let shaded = rust_xlsxwriter::Format::new().set_background_color("#FFFF00");
    for r in 2..1_000_000u32 {
        survey.write_blank(r, 0, &shaded).expect("blank");
    }
    book.save(&form).expect("save");
    let (code, draft, stderr) = cvsurvey(&["questionnaire", "import", s(&form)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(draft.contains("name = \"age\""), "{draft}");
    assert!(stderr.contains("1 variables from 1 questions"), "{stderr}");
}

/// The demo survey's questionnaire (`questionnaires/cvs-core.toml`) as a bilingual XLSForm, as a
/// national office would have written it for its tablets: `fixtures/xlsform/cvsurvey/*.tsv`, one
/// file per sheet, written into a workbook here.
fn demo_survey_form(dir: &Path) -> PathBuf {
    let mut book = Workbook::new();
    for name in ["survey", "choices", "settings"] {
        let text =
            std::fs::read_to_string(root().join(format!("fixtures/xlsform/cvsurvey/{name}.tsv")))
                .expect("form sheet");
        let sheet = book.add_worksheet();
        sheet.set_name(name).expect("sheet name");
        for (r, line) in text.lines().enumerate() {
            for (c, cell) in line.split('\t').enumerate() {
                if !cell.is_empty() {
                    sheet
                        .write_string(r as u32, c as u16, cell)
                        .expect("write cell");
                }
            }
        }
    }
    let path = dir.join("cvs-core.xlsx");
    book.save(&path).expect("save form");
    path
}

/// (row, column, kind) of every finding of a `validate` run.
fn findings_of(dir: &Path) -> std::collections::BTreeSet<(String, String, String)> {
    read_csv(&dir.join("out/findings.csv"))
        .into_iter()
        .map(|f| (f["row"].clone(), f["column"].clone(), f["kind"].clone()))
        .collect()
}

#[test]
fn the_demo_survey_as_an_xlsform_asks_what_its_questionnaire_asks() {
    let dir = scratch("xlsform-demo-survey");
    let form = demo_survey_form(&dir);
    let demo = root().join("fixtures/demo/data.csv");
    let (code, draft, stderr) =
        cvsurvey(&["questionnaire", "import", s(&form), "--data", s(&demo)]);
    assert_eq!(code, 0, "{stderr}");
    // Every skip rule and calculation of the form translates.
    assert!(
        stderr.contains("skip rules: 20 translated, 0 not translated"),
        "{stderr}"
    );
    assert!(draft.contains("name = \"age_group_calc\""), "{draft}");
    assert!(draft.contains("name = \"victim_any\""), "{draft}");
    // The export's columns carry no group path (detected from the demo data's header).
    assert!(draft.contains("name = \"bribe_police\""), "{draft}");
    let draft_path = dir.join("draft.toml");
    std::fs::write(&draft_path, &draft).expect("write draft");
    // Like every fixture form: synthetic data from the draft validate against it.
    let synth_dir = dir.join("synth");
    std::fs::create_dir_all(&synth_dir).expect("synth folder");
    draft_synth_validate(&form, &synth_dir);

    // The demo returns with answers where the skip rules say none belong and blanks where they
    // say a question was asked, so that the two questionnaires' skip rules are put to work.
    let mut rows = crate::common::demo_rows();
    let col = |name: &str| rows[0].iter().position(|c| c == name).expect(name);
    let (bribe, nbribes, amount) = (
        col("bribe_police"),
        col("nbribes_police"),
        col("bribe_amount"),
    );
    let (assault_n, reported, contact) = (
        col("assault_n"),
        col("assault_reported"),
        col("contact_courts"),
    );
    for (r, row) in rows.iter_mut().enumerate().skip(1) {
        if r % 13 == 0 {
            row[bribe] = "1".into();
            row[nbribes] = "3".into();
        }
        if r % 17 == 0 {
            row[reported] = String::new();
            row[amount] = String::new();
        }
        if r % 19 == 0 {
            row[assault_n] = "2".into();
        }
        if r % 29 == 0 {
            row[contact] = "8".into();
        }
    }
    let data = dir.join("returns.csv");
    let mut w = csv::Writer::from_path(&data).expect("write returns");
    for row in &rows {
        w.write_record(row).expect("row");
    }
    w.flush().expect("flush");

    let validate = |name: &str, questionnaire: &Path| {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).expect("run folder");
        let config = run.join("pipeline.toml");
        std::fs::write(
            &config,
            format!(
                "questionnaire = \"{}\"\n[data]\npath = \"{}\"\nid = \"resp_id\"\nresponse = \"responded\"\n\
                 [design]\nstrata = \"stratum\"\npsu = \"psu\"\nweight = \"design_weight\"\nnest = true\n\
                 [[weighting]]\nname = \"design\"\n[output]\ndir = \"{}\"\n",
                questionnaire.display(),
                data.display(),
                run.join("out").display()
            ),
        )
        .expect("config");
        let (code, stdout, stderr) = cvsurvey(&["validate", s(&config)]);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
        findings_of(&run)
    };
    // A form does not know which of its questions are frame columns, filled for unit
    // nonrespondents too (region, urban): those are the questionnaire's only other findings.
    let frame = |f: &(String, String, String)| f.1 == "region" || f.1 == "urban";
    let from_toml = validate("toml", &root().join("questionnaires/cvs-core.toml"));
    let mut from_form = validate("xlsform", &draft_path);
    assert!(
        from_form
            .iter()
            .any(|f| frame(f) && f.2 == "nonrespondent_answers"),
        "region and urban are no frame columns in the draft"
    );
    from_form.retain(|f| !frame(f));
    for kind in ["answered_not_asked", "item_nonresponse"] {
        assert!(
            from_toml.iter().any(|f| f.2 == kind),
            "the perturbed returns have no {kind} finding"
        );
    }
    let differ: Vec<_> = from_form
        .symmetric_difference(&from_toml)
        .take(20)
        .collect();
    assert!(
        differ.is_empty(),
        "the XLSForm's draft and the questionnaire find different cells (of {} and {}), e.g. {differ:?}",
        from_form.len(),
        from_toml.len()
    );
}
