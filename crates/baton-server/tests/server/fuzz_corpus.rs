//! The fuzz targets' corpora (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept)
//! replayed through the same entry points the targets call, on stable Rust: every input that
//! once found a bug stays a regression test.

#[path = "../../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

#[test]
fn policy_file_corpus() {
    assert!(replay("policy_file", baton_server::api::fuzzing::policy_file) > 0);
}

#[test]
fn request_body_corpus() {
    assert!(replay("request_body", baton_server::api::fuzzing::request_body) > 0);
}
