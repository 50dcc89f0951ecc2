//! Fuzz target `authtoken_headers`: a thin wrapper; the properties are asserted in `baton_authtoken::fuzzing::headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_authtoken::fuzzing::headers(data);
});
