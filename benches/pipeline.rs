//! End-to-end benchmark of `cvsurvey run` on the demo survey (20,028 rows, 11 indicators,
//! 2 weighting schemes, 4 domain variables), timed without a benchmarking framework to keep the
//! build lean. Run with `cargo bench --bench pipeline`; prints the median and minimum wall time
//! of each stage-complete run over repeated iterations.

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scratch = root.join("target").join("bench-scratch");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let source = root.join("fixtures/demo/pipeline.toml");
    let text = std::fs::read_to_string(&source).expect("demo config");
    let base = root.join("fixtures/demo");
    let config = scratch.join("pipeline.toml");
    let text: String = text
        .lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("questionnaire = \"") {
                format!(
                    "questionnaire = \"{}\"",
                    base.join(rest.trim_end_matches('"')).display()
                )
            } else if let Some(rest) = l.strip_prefix("path = \"") {
                format!(
                    "path = \"{}\"",
                    base.join(rest.trim_end_matches('"')).display()
                )
            } else if let Some(at) = l.find("margins = \"") {
                let start = at + "margins = \"".len();
                let len = l[start..].find('"').unwrap_or(0);
                format!(
                    "{}{}{}",
                    &l[..start],
                    base.join(&l[start..start + len]).display(),
                    &l[start + len..]
                )
            } else if l.starts_with("dir = ") {
                format!("dir = \"{}\"", scratch.join("out").display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).expect("write config");

    let iterations = 30;
    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let report = cvsurvey::pipeline::run(&config, Default::default()).expect("demo run");
        times.push(start.elapsed());
        assert_eq!(report.rows_read, 20028);
    }
    times.sort();
    println!(
        "pipeline/run demo (20,028 rows, 840 estimates): median {:.1} ms, min {:.1} ms over {iterations} runs, {} threads",
        times[iterations / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        rayon::current_num_threads()
    );
}
