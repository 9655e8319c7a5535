//! Workbooks as data files (`[data] path = "returns.xlsx"`, `sheet`): the demo as a workbook
//! gives byte-identical estimates to the CSV demo, and a bad sheet or header is refused naming
//! the file and the cell as Excel shows it.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Formula, Workbook, Worksheet};

use crate::common::{config_for, csv_rows, cvsurvey, demo_rows, relocated_config, root, scratch};

/// `rows` written on `sheet` as a spreadsheet user would have them: numbers in numeric cells,
/// text in text cells, blanks left empty. The first data row's `design_weight`, if any, is a
/// formula whose cached value is the weight.
fn write_sheet(sheet: &mut Worksheet, rows: &[Vec<String>]) {
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            if cell.is_empty() {
                continue;
            }
            match cell.parse::<f64>() {
                Ok(x) if r > 0 => sheet.write_number(r, c, x).map(|_| ()),
                _ => sheet.write_string(r, c, cell).map(|_| ()),
            }
            .expect("write cell");
        }
    }
    let Some(weight) = rows[0].iter().position(|c| c == "design_weight") else {
        return;
    };
    let formula = Formula::new(format!("={}*1", rows[1][weight])).set_result(&rows[1][weight]);
    sheet
        .write_formula(1, weight as u16, formula)
        .expect("formula");
}

/// A workbook with a first sheet of notes and the data on the sheet `data`, whose used range
/// runs past the data.
fn demo_workbook(path: &Path, rows: &[Vec<String>]) {
    let mut book = Workbook::new();
    let notes = book.add_worksheet();
    notes.set_name("notes").expect("name");
    notes
        .write_string(0, 0, "Fieldwork returns")
        .expect("write");
    let data = book.add_worksheet();
    data.set_name("data").expect("name");
    write_sheet(data, rows);
    // A styled but empty cell far below the data (the used range runs to it): no data row.
    let shaded = rust_xlsxwriter::Format::new().set_background_color("#FFFF00");
    let below = u32::try_from(rows.len() + 10_000).expect("rows");
    data.write_blank(below, 3, &shaded).expect("blank");
    book.save(path).expect("save workbook");
}

fn run_estimates(dir: &Path, config: &Path) -> Vec<u8> {
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    std::fs::read(dir.join("out/estimates.csv")).expect("estimates.csv")
}

#[test]
fn the_demo_as_a_workbook_gives_byte_identical_estimates() {
    let rows = demo_rows();
    let plain_dir = scratch("workbook-plain");
    let plain_config = config_for(&plain_dir, &root().join("fixtures/demo/data.csv"), "");
    let plain = run_estimates(&plain_dir, &plain_config);

    let dir = scratch("workbook-xlsx");
    let data = dir.join("returns.xlsx");
    demo_workbook(&data, &rows);
    let from_sheet = run_estimates(&dir, &config_for(&dir, &data, "sheet = \"data\""));
    assert!(
        plain == from_sheet,
        "the workbook gives other estimates than the CSV demo"
    );

    // The summary says which sheet was read.
    let config = config_for(&dir, &data, "sheet = \"data\"");
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("returns.xlsx  (sheet data)"), "{stdout}");

    // Without `sheet`, the first sheet (the notes, a header only) is read.
    let config = config_for(&dir, &data, "");
    let (code, stdout, stderr) = cvsurvey(&["run", config.to_str().expect("utf8")]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("returns.xlsx: sheet notes: the sheet has a header but no data rows"),
        "{stderr}"
    );
    assert!(stderr.contains("[data] sheet"), "{stderr}");
}

/// `validate` on the demo with `rows` as a workbook (data on its only sheet, `Sheet1`).
fn validate_workbook(name: &str, rows: &[Vec<String>], keys: &str) -> (i32, String, PathBuf) {
    let dir = scratch(name);
    let data = dir.join("returns.xlsx");
    let mut book = Workbook::new();
    write_sheet(book.add_worksheet(), rows);
    book.save(&data).expect("save");
    let config = config_for(&dir, &data, keys);
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    (code, format!("{stdout}{stderr}"), dir)
}

#[test]
fn an_absent_sheet_is_refused_naming_the_file_the_sheet_and_the_sheets() {
    let (code, out, _) = validate_workbook("workbook-no-sheet", &demo_rows(), "sheet = \"data\"");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("returns.xlsx"), "{out}");
    assert!(out.contains("no sheet \"data\""), "{out}");
    assert!(out.contains("its sheets are: Sheet1"), "{out}");
}

#[test]
fn an_empty_or_repeated_header_cell_is_refused_naming_the_cell() {
    let mut rows = demo_rows();
    rows[0][2] = String::new();
    let (code, out, _) = validate_workbook("workbook-empty-header", &rows, "");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("header cell Sheet1!C1 is empty"), "{out}");

    let mut rows = demo_rows();
    rows[0][3] = rows[0][1].clone();
    let (code, out, _) = validate_workbook("workbook-repeated-header", &rows, "");
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("header cell Sheet1!D1 repeats the column name region of Sheet1!B1"),
        "{out}"
    );
}

#[test]
fn a_merged_header_cell_is_refused_naming_the_merged_cells() {
    let rows = demo_rows();
    let dir = scratch("workbook-merged-header");
    let data = dir.join("returns.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    write_sheet(sheet, &rows);
    sheet
        .merge_range(0, 2, 0, 3, &rows[0][2], &rust_xlsxwriter::Format::new())
        .expect("merge");
    book.save(&data).expect("save");
    let config = config_for(&dir, &data, "");
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("header cell Sheet1!C1:D1 is a merged cell; unmerge it"),
        "{stderr}"
    );
}

#[test]
fn an_error_cell_is_a_finding_naming_the_cell() {
    let rows = demo_rows();
    let age = rows[0].iter().position(|c| c == "age").expect("age");
    let dir = scratch("workbook-error-cell");
    let data = dir.join("returns.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    write_sheet(sheet, &rows);
    // Data row 5 is the sheet's row 6 (the header is row 1).
    sheet
        .write_formula(5, age as u16, Formula::new("=NA()").set_result("#N/A"))
        .expect("formula");
    // A code sex does not have, on data row 9.
    let sex = rows[0].iter().position(|c| c == "sex").expect("sex");
    sheet.write_number(9, sex as u16, 7).expect("cell");
    book.save(&data).expect("save");
    let config = config_for(&dir, &data, "");
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("error_cell"), "{stdout}");
    let findings = std::fs::read_to_string(dir.join("out/findings.csv")).expect("findings");
    let line = findings
        .lines()
        .find(|l| l.contains("error_cell"))
        .unwrap_or_default();
    let column = char::from(b'A' + age as u8);
    assert!(
        line.starts_with(&format!("5,{},age,#N/A,error_cell,", rows[5][0])),
        "{findings}"
    );
    assert!(line.contains(&format!("Sheet1!{column}6")), "{findings}");
    // Every finding names its cell as Excel shows it, in a last column.
    assert!(
        findings.starts_with("row,id,column,value,kind,reason,action,cell\n"),
        "{findings}"
    );
    assert!(line.ends_with(&format!(",Sheet1!{column}6")), "{findings}");
    let sex = rows[0].iter().position(|c| c == "sex").expect("sex");
    let invalid = findings
        .lines()
        .find(|l| l.starts_with(&format!("9,{},sex,7,", rows[9][0])))
        .unwrap_or_default();
    let sex_column = char::from(b'A' + sex as u8);
    assert!(
        invalid.ends_with(&format!(",Sheet1!{sex_column}10")),
        "{findings}"
    );
}

/// Text as XML character data or attribute value.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `rows` as an OpenDocument spreadsheet (the format LibreOffice saves): numbers in float
/// cells, text in string cells, blanks as empty cells, on a sheet named `returns`.
fn write_ods(path: &Path, rows: &[Vec<String>]) {
    use std::io::Write;
    let mut content = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="returns">"#,
    );
    for (r, row) in rows.iter().enumerate() {
        content.push_str("<table:table-row>");
        for cell in row {
            match cell.parse::<f64>() {
                _ if cell.is_empty() => content.push_str("<table:table-cell/>"),
                Ok(x) if r > 0 => content.push_str(&format!(
                    r#"<table:table-cell office:value-type="float" office:value="{x}"><text:p>{x}</text:p></table:table-cell>"#
                )),
                _ => content.push_str(&format!(
                    r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
                    xml_escape(cell)
                )),
            }
        }
        content.push_str("</table:table-row>");
    }
    content.push_str("</table:table></office:spreadsheet></office:body></office:document-content>");
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    let file = std::fs::File::create(path).expect("create ods");
    let mut zip = zip::ZipWriter::new(file);
    // The mimetype comes first and uncompressed, as the OpenDocument package format requires.
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default();
    for (name, body, options) in [
        (
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet",
            stored,
        ),
        ("META-INF/manifest.xml", manifest, deflated),
        ("content.xml", content.as_str(), deflated),
    ] {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish");
}

#[test]
fn the_demo_as_an_opendocument_sheet_gives_byte_identical_estimates() {
    let plain_dir = scratch("workbook-ods-plain");
    let plain_config = config_for(&plain_dir, &root().join("fixtures/demo/data.csv"), "");
    let plain = run_estimates(&plain_dir, &plain_config);

    let dir = scratch("workbook-ods");
    let data = dir.join("returns.ods");
    write_ods(&data, &demo_rows());
    let config = config_for(&dir, &data, "");
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("returns.ods  (sheet returns)"), "{stdout}");
    assert!(
        plain == run_estimates(&dir, &config),
        "the OpenDocument sheet gives other estimates than the CSV demo"
    );
}

#[test]
fn households_and_persons_on_two_sheets_of_one_workbook_give_byte_identical_estimates() {
    let fixture = root().join("fixtures/demo-households");
    let plain_dir = scratch("workbook-two-files-plain");
    let plain = run_estimates(
        &plain_dir,
        &relocated_config(
            &fixture.join("pipeline.toml"),
            &plain_dir,
            &[("formats = ", "formats = [\"csv\"]")],
        ),
    );

    let dir = scratch("workbook-two-files");
    let data = dir.join("returns.xlsx");
    let mut book = Workbook::new();
    for name in ["households", "persons"] {
        let sheet = book.add_worksheet();
        sheet.set_name(name).expect("name");
        write_sheet(sheet, &csv_rows(&fixture.join(format!("{name}.csv"))));
    }
    book.save(&data).expect("save");
    // Both files are the one workbook; [data] reads the persons' sheet, [data.household] the
    // households' (its sheet is not inherited from [data]).
    let config = relocated_config(
        &fixture.join("pipeline.toml"),
        &dir,
        &[("formats = ", "formats = [\"csv\"]")],
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let persons = format!(
        "path = \"{}\"",
        fixture
            .canonicalize()
            .expect("dir")
            .join("persons.csv")
            .display()
    );
    let households = persons.replace("persons.csv", "households.csv");
    let sheet_of = |name: &str| format!("path = \"{}\"\nsheet = \"{name}\"", data.display());
    assert!(
        text.contains(&persons) && text.contains(&households),
        "{text}"
    );
    std::fs::write(
        &config,
        text.replace(&persons, &sheet_of("persons"))
            .replace(&households, &sheet_of("households")),
    )
    .expect("write config");
    assert!(
        plain == run_estimates(&dir, &config),
        "two sheets give other estimates than the two CSV files"
    );
    let (code, stdout, stderr) = cvsurvey(&["validate", config.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("returns.xlsx  (sheet households)"),
        "{stdout}"
    );
    assert!(stdout.contains("returns.xlsx  (sheet persons)"), "{stdout}");
}
