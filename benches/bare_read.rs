//! Bare read of a Parquet file's columns into Arrow arrays, nothing else: the floor against which
//! `benches/compare/run.sh` sets the Taylor job ("within 3× of a bare read of the same columns").
//!
//! `cargo bench --bench bare_read -- FILE.parquet [COLUMN,...]` prints `bare_read_seconds S rows N`
//! (best of three reads; all columns when none are named).

use std::fs::File;
use std::time::Instant;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first() else {
        println!("bare_read: pass a Parquet file (cargo bench --bench bare_read -- FILE.parquet)");
        return;
    };
    let wanted: Vec<String> = args
        .get(1)
        .map(|c| c.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut best = f64::INFINITY;
    let mut rows = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let file = File::open(path).expect("open");
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        let schema = builder.parquet_schema().clone();
        let fields = builder.schema().fields().clone();
        let roots: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| wanted.is_empty() || wanted.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        let reader = builder
            .with_projection(ProjectionMask::roots(&schema, roots))
            .with_batch_size(65536)
            .build()
            .expect("reader");
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.expect("batch"));
        }
        rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        best = best.min(start.elapsed().as_secs_f64());
        drop(batches);
    }
    println!("bare_read_seconds {best:.4} rows {rows}");
}
