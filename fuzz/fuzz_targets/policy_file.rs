//! Fuzz target `policy_file`: a thin wrapper; the properties are asserted in `baton_server::api::fuzzing::policy_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_server::api::fuzzing::policy_file(data);
});
