use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::KeyRepository;

fn kek() -> FernetKey {
    FernetKey::generate()
}

#[test]
fn sealing_round_trips_keys_indices_and_demotion_times() {
    let kek = kek();
    let mut set = SharedKeys::initial();
    set.rotate(3, 1_000).unwrap();
    let sealed = set.seal(&kek, "fernet_tokens", 7).unwrap();
    let opened = SharedKeys::open(&kek, &sealed, "fernet_tokens", 7).unwrap();
    assert_eq!(opened.fingerprints(), set.fingerprints());
    assert_eq!(opened.entries()[&1].demoted_at, Some(1_000));
    assert_eq!(opened.entries()[&2].demoted_at, None);
    assert!(!sealed.contains(&set.staged().unwrap().to_base64()));
}

#[test]
fn another_kek_a_tampered_blob_or_a_swapped_row_is_refused() {
    let kek = kek();
    let set = SharedKeys::initial();
    let sealed = set.seal(&kek, "fernet_tokens", 1).unwrap();
    assert_eq!(
        SharedKeys::open(&FernetKey::generate(), &sealed, "fernet_tokens", 1).unwrap_err(),
        SealError::Undecryptable
    );
    let mut bytes = sealed.clone().into_bytes();
    bytes[60] = if bytes[60] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(SharedKeys::open(&kek, &tampered, "fernet_tokens", 1).is_err());
    assert!(matches!(
        SharedKeys::open(&kek, &sealed, "credential", 1),
        Err(SealError::Mismatch { .. })
    ));
    assert!(matches!(
        SharedKeys::open(&kek, &sealed, "fernet_tokens", 2),
        Err(SealError::Mismatch { .. })
    ));
    let text = format!("{:?}", SharedKeys::open(&kek, "junk", "fernet_tokens", 1));
    assert!(!text.contains(&kek.to_base64()));
}

#[test]
fn rotation_follows_keystone_like_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("k"), 3);
    repo.setup().unwrap();
    let mut shared = SharedKeys::from_key_set(&repo.load().unwrap(), 50);
    for round in 0..4u64 {
        let staged = shared.staged().unwrap().clone();
        let predicted: Vec<u64> = shared.would_prune(3).iter().map(|(i, _)| *i).collect();
        let out_disk = repo.rotate().unwrap();
        let out_mem = shared.rotate(3, 100 + round).unwrap();
        assert_eq!(out_disk, RotateOutcome { ..out_mem.clone() });
        assert_eq!(predicted, out_mem.removed);
        assert_eq!(
            shared.entries()[&out_mem.new_primary].key,
            staged,
            "the staged key is promoted"
        );
    }
    assert_eq!(shared.primary_index(), Some(5));
    assert_eq!(shared.entries()[&4].demoted_at, Some(103));
}

#[test]
fn imported_secondaries_count_as_demoted_at_import() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("k"), 3);
    repo.setup().unwrap();
    repo.rotate().unwrap();
    let shared = SharedKeys::from_key_set(&repo.load().unwrap(), 42);
    let demoted: Vec<_> = shared
        .entries()
        .iter()
        .map(|(i, k)| (*i, k.demoted_at))
        .collect();
    assert_eq!(demoted, [(0, None), (1, Some(42)), (2, None)]);
}

fn write_kek(dir: &Path, mode: u32, text: &str) -> PathBuf {
    let path = dir.join("kek");
    let _ = fs::remove_file(&path);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn the_kek_file_must_be_private_and_hold_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let key = FernetKey::generate();
    let path = write_kek(tmp.path(), 0o600, &format!("{}\n", key.to_base64()));
    assert_eq!(read_key_encryption_key(&path).unwrap(), key);
    for mode in [0o640, 0o604, 0o644] {
        let path = write_kek(tmp.path(), mode, &key.to_base64());
        let err = read_key_encryption_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("kek"), "{err}");
    }
    let path = write_kek(tmp.path(), 0o600, "not a key");
    let err = read_key_encryption_key(&path).unwrap_err().to_string();
    assert!(err.contains("does not hold a Fernet key"), "{err}");
    let err = read_key_encryption_key(&tmp.path().join("absent"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent: cannot read"), "{err}");
}

#[test]
fn mirror_writes_exactly_the_set_and_leaves_unchanged_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("mirror"), 3);
    let mut shared = SharedKeys::initial();
    assert!(repo.mirror(&shared.files()).unwrap());
    let meta = fs::metadata(repo.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let inode_1 = fs::metadata(repo.path().join("1")).unwrap().ino();
    assert!(!repo.mirror(&shared.files()).unwrap(), "nothing to change");
    shared.rotate(2, 1).unwrap();
    assert!(repo.mirror(&shared.files()).unwrap());
    let mut names: Vec<String> = fs::read_dir(repo.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0", "2"]);
    assert_ne!(fs::metadata(repo.path().join("2")).unwrap().ino(), inode_1);
    for name in &names {
        let m = fs::metadata(repo.path().join(name)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    let loaded = repo.load().unwrap();
    assert_eq!(
        loaded
            .key_info()
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect::<Vec<_>>(),
        shared
            .key_set()
            .unwrap()
            .key_info()
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_reader_never_sees_a_partial_key_file_while_the_mirror_rotates() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("mirror"), 4);
    let mut shared = SharedKeys::initial();
    repo.mirror(&shared.files()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let dir = repo.path().to_path_buf();
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for entry in fs::read_dir(&dir).unwrap() {
                    let entry = entry.unwrap();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.parse::<u64>().is_err() {
                        continue;
                    }
                    // Removed between listing and reading: fine, never partial.
                    if let Ok(text) = fs::read_to_string(entry.path()) {
                        FernetKey::from_base64(&text)
                            .unwrap_or_else(|e| panic!("partial key file {name}: {e}"));
                        reads += 1;
                    }
                }
                // The directory always holds a loadable set (a key removed between listing
                // and reading is the only error, and a retry's business).
                match KeyRepository::new(&dir, 4).load() {
                    Ok(_) | Err(crate::RepositoryError::Io { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            reads
        })
    };
    for round in 0..300 {
        shared.rotate(4, round).unwrap();
        repo.mirror(&shared.files()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}
