#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cvsurvey_fuzz::margins(data);
});
