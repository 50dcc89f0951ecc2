//! The fuzz targets' corpora (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept)
//! replayed through the same entry points the targets call, on stable Rust: every input that
//! once found a bug stays a regression test.

#[path = "../../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

#[test]
fn ini_corpus() {
    assert!(replay("ini", baton_config::fuzzing::ini) > 0);
}
