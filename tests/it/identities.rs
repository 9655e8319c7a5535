//! Known identities: estimates do not depend on row order; CSV and Parquet give the same
//! numbers; nonresponse adjustment preserves class totals; row accounting holds.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;

use crate::common::{rel_diff, relocated_config, root, scratch};

fn demo_csv() -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/demo/data.csv")).expect("demo data");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn write_csv(path: &std::path::Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("csv");
    w.write_record(header).expect("header");
    for r in rows {
        w.write_record(r).expect("row");
    }
    w.flush().expect("flush");
}

fn run_on(data: &std::path::Path, name: &str) -> Vec<crate::common::Row> {
    crate::common::run_demo_on(data, name)
}

#[test]
fn estimates_do_not_depend_on_row_order() {
    let (header, mut rows) = demo_csv();
    let dir = scratch("shuffled-data");
    // A fixed permutation: reverse, then interleave halves.
    rows.reverse();
    let half = rows.len() / 2;
    let (a, b) = rows.split_at(half);
    let shuffled: Vec<Vec<String>> = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| [y.clone(), x.clone()])
        .chain(b[a.len()..].iter().cloned())
        .collect();
    assert_eq!(shuffled.len(), rows.len());
    let path = dir.join("shuffled.csv");
    write_csv(&path, &header, &shuffled);
    let original = run_on(&root().join("fixtures/demo/data.csv"), "order-original");
    let permuted = run_on(&path, "order-permuted");
    assert_eq!(original.len(), permuted.len());
    for (x, y) in original.iter().zip(&permuted) {
        assert_eq!(
            (
                &x.indicator,
                &x.weighting,
                &x.domain_var,
                &x.domain_value,
                &x.ci_method
            ),
            (
                &y.indicator,
                &y.weighting,
                &y.domain_var,
                &y.domain_value,
                &y.ci_method
            )
        );
        for (a, b) in [
            (x.estimate, y.estimate),
            (x.se, y.se),
            (x.ci_low, y.ci_low),
            (x.ci_high, y.ci_high),
        ] {
            let (a, b) = (a.expect("value"), b.expect("value"));
            assert!(
                rel_diff(a, b) < 1e-10,
                "{} {}={}: {a} vs {b}",
                x.indicator,
                x.domain_var,
                x.domain_value
            );
        }
        assert_eq!(x.n_unweighted, y.n_unweighted);
        assert_eq!(x.df, y.df);
    }
}

#[test]
fn parquet_input_gives_the_same_estimates_as_csv() {
    let (header, rows) = demo_csv();
    let dir = scratch("parquet-input");
    let text_columns = ["region", "stratum"];
    let float_columns = ["design_weight"];
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (j, name) in header.iter().enumerate() {
        let cells = rows.iter().map(|r| r[j].as_str());
        if text_columns.contains(&name.as_str()) {
            arrays.push(Arc::new(StringArray::from_iter(
                cells.map(|c| (!c.is_empty()).then_some(c)),
            )));
            fields.push(arrow_schema::Field::new(
                name,
                arrow_schema::DataType::Utf8,
                true,
            ));
        } else if float_columns.contains(&name.as_str()) {
            arrays.push(Arc::new(Float64Array::from_iter(
                cells.map(|c| c.parse::<f64>().ok()),
            )));
            fields.push(arrow_schema::Field::new(
                name,
                arrow_schema::DataType::Float64,
                true,
            ));
        } else {
            arrays.push(Arc::new(Int64Array::from_iter(
                cells.map(|c| c.parse::<i64>().ok()),
            )));
            fields.push(arrow_schema::Field::new(
                name,
                arrow_schema::DataType::Int64,
                true,
            ));
        }
    }
    let batch =
        RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), arrays).expect("batch");
    let path = dir.join("data.parquet");
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&path).expect("file"),
        batch.schema(),
        None,
    )
    .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let from_csv = run_on(&root().join("fixtures/demo/data.csv"), "csv-input");
    let from_parquet = run_on(&path, "parquet-input-run");
    assert!(!from_csv.is_empty());
    assert_eq!(from_csv, from_parquet);
}

#[test]
fn nonresponse_adjustment_preserves_the_sampled_weight_total() {
    let (header, rows) = demo_csv();
    let w = header
        .iter()
        .position(|h| h == "design_weight")
        .expect("weight column");
    let total: f64 = rows
        .iter()
        .map(|r| r[w].parse::<f64>().expect("weight"))
        .sum();
    let dir = scratch("nr-total");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("suppress = ", "suppress = false")],
    );
    let report = cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let sum = report
        .schemes
        .iter()
        .find(|s| s.0 == "nr_adjusted")
        .expect("scheme")
        .1
        .sum;
    assert!(
        rel_diff(sum, total) < 1e-12,
        "nr-adjusted weights sum {sum}, sampled design weights {total}"
    );
    let resp_sum = report
        .schemes
        .iter()
        .find(|s| s.0 == "design")
        .expect("scheme")
        .1
        .sum;
    assert!(
        resp_sum < total,
        "respondents' design weights alone fall short of the sample total"
    );
    assert_eq!(report.rows_read, report.rows_used + report.rows_quarantined);
    assert_eq!(report.rows_read, 20028);
    assert_eq!(report.respondents, 17022);
}

/// `weights.parquet` of the demo run against R's final weights (`fixtures/demo/weights.csv`),
/// and the calibrated weights against the margins they were calibrated to.
#[test]
fn demo_weights_match_r_and_reproduce_the_margins() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use std::collections::HashMap;

    let dir = scratch("demo-weights");
    let config = relocated_config(
        &root().join("fixtures/demo/pipeline.toml"),
        &dir,
        &[("suppress = ", "suppress = false")],
    );
    cvsurvey::pipeline::run(&config, Default::default()).expect("run");
    let file = std::fs::File::open(dir.join("out/weights.parquet")).expect("weights.parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let schemes = ["design", "nr_adjusted", "raked", "linear", "poststrat"];
    let mut ours: HashMap<String, Vec<f64>> = HashMap::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let ids = batch
            .column_by_name("id")
            .expect("id")
            .as_string::<i32>()
            .clone();
        for s in schemes {
            let col = batch
                .column_by_name(s)
                .expect(s)
                .as_primitive::<Float64Type>()
                .clone();
            for i in 0..batch.num_rows() {
                if !arrow_array::Array::is_null(&col, i) {
                    ours.entry(ids.value(i).to_string())
                        .or_default()
                        .push(col.value(i));
                }
            }
        }
    }
    let mut reader =
        csv::Reader::from_path(root().join("fixtures/demo/weights.csv")).expect("R weights");
    let mut worst = [0.0f64; 5];
    let mut n = 0;
    for rec in reader.records() {
        let rec = rec.expect("record");
        let mine = ours
            .get(&rec[0])
            .unwrap_or_else(|| panic!("respondent {} has no weights", &rec[0]));
        assert_eq!(mine.len(), 5, "respondent {}", &rec[0]);
        for k in 0..5 {
            let r: f64 = rec[k + 1].parse().expect("weight");
            worst[k] = worst[k].max(rel_diff(mine[k], r));
        }
        n += 1;
    }
    assert_eq!(n, 17022);
    for (k, s) in schemes.iter().enumerate() {
        assert!(
            worst[k] < 1e-8,
            "{s}: largest relative difference from R {:e}",
            worst[k]
        );
    }
    eprintln!(
        "weights vs R (relative): {:?}",
        schemes.iter().zip(worst).collect::<Vec<_>>()
    );

    // Margins: weighted totals of each calibrated scheme against margins.csv / poststrata.csv.
    let (header, rows) = demo_csv();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (id, resp) = (col("resp_id"), col("responded"));
    let respondents: Vec<&Vec<String>> = rows.iter().filter(|r| r[resp] == "1").collect();
    let mut margins =
        csv::Reader::from_path(root().join("fixtures/demo/margins.csv")).expect("margins");
    for rec in margins.records() {
        let rec = rec.expect("record");
        let (var, cat, total): (&str, &str, f64) =
            (&rec[0], &rec[1], rec[2].parse().expect("total"));
        for (k, tol) in [(2usize, 1e-6), (3, 1e-9)] {
            let sum: f64 = respondents
                .iter()
                .filter(|r| r[col(var)] == cat)
                .map(|r| ours[&r[id]][k])
                .sum();
            assert!(
                rel_diff(sum, total) < tol,
                "{} {var}={cat}: {sum} vs {total}",
                schemes[k]
            );
        }
    }
    let mut cells =
        csv::Reader::from_path(root().join("fixtures/demo/poststrata.csv")).expect("poststrata");
    for rec in cells.records() {
        let rec = rec.expect("record");
        let total: f64 = rec[2].parse().expect("total");
        let sum: f64 = respondents
            .iter()
            .filter(|r| r[col("sex")] == rec[0] && r[col("age_group")] == rec[1])
            .map(|r| ours[&r[id]][4])
            .sum();
        assert!(
            rel_diff(sum, total) < 1e-9,
            "poststrat cell {}/{}: {sum} vs {total}",
            &rec[0],
            &rec[1]
        );
    }
}
