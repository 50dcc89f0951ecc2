// The corpus replay shared by every crate's `fuzz_corpus` test module (each includes this file
// with `#[path]`, so the crates need no common test dependency): the fuzz targets' corpora
// (fuzz/corpus/<target>/, grown by cargo-fuzz, crashes kept) run through the same entry points
// the targets call, on stable Rust, so every input that once found a bug stays a regression test.

use std::path::Path;

/// Runs `entry` on every file of fuzz/corpus/`target`; returns how many there were.
pub fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let started = std::time::Instant::now();
        entry(&data);
        // A hang guard, not a speed target: a corpus input is tiny, and the targets promise
        // bounded work (a debug build on a loaded machine stays far below this).
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        count += 1;
    }
    count
}
