#![no_main]

libfuzzer_sys::fuzz_target!(
    init: cvsurvey_fuzz::let_library_panics_unwind(),
    |data: &[u8]| {
        cvsurvey_fuzz::parquet_ingest(data);
    }
);
