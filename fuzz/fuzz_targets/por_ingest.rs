#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cvsurvey_fuzz::por_ingest(data);
});
