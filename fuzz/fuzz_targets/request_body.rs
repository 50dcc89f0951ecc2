//! Fuzz target `request_body`: a thin wrapper; the properties are asserted in `baton_server::api::fuzzing::request_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_server::api::fuzzing::request_body(data);
});
