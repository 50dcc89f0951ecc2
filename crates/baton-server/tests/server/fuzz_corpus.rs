//! The fuzz targets' corpora (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept)
//! replayed through the same entry points the targets call, on stable Rust: every input that
//! once found a bug stays a regression test.

use std::path::Path;

/// Runs `entry` on every file of fuzz/corpus/`target`; returns how many there were.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let started = std::time::Instant::now();
        entry(&data);
        // The targets promise bounded time; a corpus input is tiny.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        count += 1;
    }
    count
}

#[test]
fn policy_file_corpus() {
    assert!(replay("policy_file", baton_server::api::fuzzing::policy_file) > 0);
}

#[test]
fn request_body_corpus() {
    assert!(replay("request_body", baton_server::api::fuzzing::request_body) > 0);
}
