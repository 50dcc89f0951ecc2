//! Fuzz target `clouds_yaml`: a thin wrapper; the properties are asserted in `baton_client::CloudLoader::fuzz_clouds_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_client::CloudLoader::fuzz_clouds_file(data);
});
