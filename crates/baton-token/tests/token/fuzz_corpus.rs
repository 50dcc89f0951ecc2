//! The fuzz targets' corpora (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept)
//! replayed through the same entry points the targets call, on stable Rust: every input that
//! once found a bug stays a regression test.

#[path = "../../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

#[test]
fn fernet_envelope_corpus() {
    assert!(replay("fernet_envelope", baton_token::fuzzing::fernet_envelope) > 0);
}

#[test]
fn token_payload_corpus() {
    assert!(replay("token_payload", baton_token::fuzzing::token_payload) > 0);
}
