//! Fuzz target `ini`: a thin wrapper; the properties are asserted in `baton_config::fuzzing::ini`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_config::fuzzing::ini(data);
});
