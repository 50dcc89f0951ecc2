//! Fuzz target `token_payload`: a thin wrapper; the properties are asserted in `baton_token::fuzzing::token_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_token::fuzzing::token_payload(data);
});
