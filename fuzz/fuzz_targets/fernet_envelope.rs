//! Fuzz target `fernet_envelope`: a thin wrapper; the properties are asserted in `baton_token::fuzzing::fernet_envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_token::fuzzing::fernet_envelope(data);
});
