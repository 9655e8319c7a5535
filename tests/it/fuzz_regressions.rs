//! Replays the fuzzing seed corpus (`fuzz/seeds/`) and every input that once crashed a fuzz
//! target (`fuzz/regressions/`) through the fuzz harness, on stable Rust: what the fuzzer found
//! stays fixed without nightly or cargo-fuzz.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

/// Every file under `fuzz/<folder>/<target>/`, sorted.
fn inputs(folder: &str, target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("readable folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run `check` on every seed and regression input of `target`; returns how many ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut ran = 0;
    for folder in ["seeds", "regressions"] {
        for path in inputs(folder, target) {
            let data = std::fs::read(&path).expect("readable input");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} panicked", path.display());
            ran += 1;
        }
    }
    ran
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            let ran = replay(stringify!($target), harness::$target);
            assert!(ran > 0, "fuzz/seeds/{} holds seeds", stringify!($target));
        }
    )*};
}

replay_tests!(
    csv_ingest,
    parquet_ingest,
    sav_ingest,
    por_ingest,
    dta_ingest,
    questionnaire,
    expression,
    pipeline_config,
    margins,
);
