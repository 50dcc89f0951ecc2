//! The fuzz targets' corpora (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept)
//! replayed through the same entry points the targets call, on stable Rust: every input that
//! once found a bug stays a regression test.

#[path = "../../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

#[test]
fn authtoken_headers_corpus() {
    assert!(replay("authtoken_headers", baton_authtoken::fuzzing::headers) > 0);
}
