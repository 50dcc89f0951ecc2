use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn repo(max: usize) -> (tempfile::TempDir, KeyRepository) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("fernet-keys"), max);
    (tmp, repo)
}

#[test]
fn setup_creates_two_keys_and_is_idempotent() {
    let (_tmp, repo) = repo(3);
    assert_eq!(
        repo.setup().unwrap(),
        SetupOutcome::Initialized { keys: vec![1, 0] }
    );
    assert_eq!(mode(repo.path()), 0o700);
    assert_eq!(names(repo.path()), ["0", "1"]);
    for name in ["0", "1"] {
        let path = repo.path().join(name);
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 44, "no newline");
        FernetKey::from_base64(&text).unwrap();
    }
    let before: Vec<_> = ["0", "1"]
        .map(|n| fs::read(repo.path().join(n)).unwrap())
        .into();
    assert_eq!(repo.setup().unwrap(), SetupOutcome::AlreadyInitialized);
    let after: Vec<_> = ["0", "1"]
        .map(|n| fs::read(repo.path().join(n)).unwrap())
        .into();
    assert_eq!(before, after);
    assert_eq!(names(repo.path()), ["0", "1"]);
}

#[test]
fn rotation_sequence_with_three_active_keys() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    let staged = fs::read(repo.path().join("0")).unwrap();

    let out = repo.rotate().unwrap();
    assert_eq!(
        out,
        RotateOutcome {
            new_primary: 2,
            removed: vec![],
            keys: vec![2, 1, 0]
        }
    );
    assert_eq!(names(repo.path()), ["0", "1", "2"]);
    // The staged key was promoted, not regenerated.
    assert_eq!(fs::read(repo.path().join("2")).unwrap(), staged);
    assert_ne!(fs::read(repo.path().join("0")).unwrap(), staged);

    let out = repo.rotate().unwrap();
    assert_eq!((out.new_primary, out.removed), (3, vec![1]));
    assert_eq!(names(repo.path()), ["0", "2", "3"]);

    let out = repo.rotate().unwrap();
    assert_eq!((out.new_primary, out.removed), (4, vec![2]));
    assert_eq!(out.keys, [4, 3, 0]);
    assert_eq!(names(repo.path()), ["0", "3", "4"]);
    for name in names(repo.path()) {
        assert_eq!(mode(&repo.path().join(name)), 0o600);
    }

    let info = repo.load().unwrap().key_info();
    let order: Vec<_> = info.iter().map(|k| k.index.unwrap()).collect();
    assert_eq!(order, [4, 3, 0]);
}

#[test]
fn shrinking_max_active_keys_purges_several() {
    let (_tmp, repo) = repo(5);
    repo.setup().unwrap();
    for _ in 0..3 {
        repo.rotate().unwrap();
    }
    assert_eq!(names(repo.path()), ["0", "1", "2", "3", "4"]);
    let smaller = KeyRepository::new(repo.path(), 2);
    let out = smaller.rotate().unwrap();
    assert_eq!(out.removed, [1, 2, 3, 4]);
    assert_eq!(names(repo.path()), ["0", "5"]);
}

#[test]
fn max_active_keys_one_keeps_only_the_staged_key() {
    // Keystone's purge loop deletes even the new primary when max_active_keys is 1.
    let (_tmp, repo) = repo(1);
    assert_eq!(
        repo.setup().unwrap(),
        SetupOutcome::Initialized { keys: vec![0] }
    );
    assert_eq!(names(repo.path()), ["0"]);
    assert_eq!(repo.load().unwrap().len(), 1);

    let (_tmp, zero) = self::repo(0);
    assert!(matches!(
        zero.setup(),
        Err(RepositoryError::InvalidMaxActiveKeys(0))
    ));
}

#[test]
fn load_ignores_non_integer_and_empty_files() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    let dir = repo.path();
    for (name, content) in [
        ("0.tmp", "garbage"),
        ("README", "not a key"),
        ("-1", "x"),
        ("7", ""),
    ] {
        fs::write(dir.join(name), content).unwrap();
        chmod(&dir.join(name), 0o600);
    }
    fs::create_dir(dir.join("9")).unwrap();
    chmod(&dir.join("9"), 0o700);
    let keys = repo.load().unwrap();
    let order: Vec<_> = keys.key_info().iter().map(|k| k.index.unwrap()).collect();
    assert_eq!(order, [1, 0]);
    // Rotation ignores them too: the empty "7" does not count as the highest index.
    assert_eq!(repo.rotate().unwrap().new_primary, 2);
}

#[test]
fn key_with_trailing_newline_is_accepted() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    let path = repo.path().join("1");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}\n")).unwrap();
    let keys = repo.load().unwrap();
    assert_eq!(keys.primary().to_base64(), text);
}

#[test]
fn refusals_name_the_path() {
    let (tmp, repo) = repo(3);
    let err = repo.load().unwrap_err();
    assert!(matches!(err, RepositoryError::Missing { .. }));
    assert!(err.to_string().contains("fernet-keys"), "{err}");

    fs::create_dir(repo.path()).unwrap();
    chmod(repo.path(), 0o700);
    let err = repo.load().unwrap_err();
    assert!(matches!(err, RepositoryError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("fernet-keys"));
    assert!(matches!(repo.rotate(), Err(RepositoryError::Empty { .. })));

    fs::write(repo.path().join("1"), "not a key at all").unwrap();
    chmod(&repo.path().join("1"), 0o600);
    let err = repo.load().unwrap_err();
    assert!(matches!(err, RepositoryError::MalformedKey { .. }));
    let text = err.to_string();
    assert!(text.contains("fernet-keys/1"), "{text}");
    assert!(matches!(
        repo.rotate(),
        Err(RepositoryError::NotInitialized { .. })
    ));

    let null = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, [0u8; 32]);
    fs::write(repo.path().join("1"), null).unwrap();
    let err = repo.load().unwrap_err().to_string();
    assert!(err.contains("all-zero"), "{err}");

    let file = tmp.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let err = KeyRepository::new(&file, 3).load().unwrap_err();
    assert!(matches!(err, RepositoryError::NotADirectory { .. }));
    assert!(matches!(
        KeyRepository::new(&file, 3).setup(),
        Err(RepositoryError::NotADirectory { .. })
    ));
}

#[test]
fn permissions_open_to_other_are_refused() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();

    chmod(repo.path(), 0o755);
    let err = repo.load().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            RepositoryError::InsecurePermissions { mode: 0o755, .. }
        ),
        "{text}"
    );
    assert!(
        text.contains("0755") && text.contains("chmod o-rwx"),
        "{text}"
    );
    assert!(text.contains("fernet-keys"), "{text}");
    assert!(matches!(
        repo.rotate(),
        Err(RepositoryError::InsecurePermissions { .. })
    ));
    chmod(repo.path(), 0o701);
    assert!(repo.load().is_err());
    chmod(repo.path(), 0o750);
    repo.load().unwrap();

    let key = repo.path().join("1");
    chmod(&key, 0o604);
    let err = repo.load().unwrap_err().to_string();
    assert!(
        err.contains("0604") && err.contains("fernet-keys/1"),
        "{err}"
    );
    // Group access is the operator's business (Keystone supports a keystone group).
    chmod(&key, 0o640);
    repo.load().unwrap();
}

#[test]
fn key_ring_picks_up_rotation() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    let ring = KeyRing::load(repo.clone()).unwrap();
    let clone = ring.clone();
    assert!(!ring.reload_if_changed().unwrap());

    let before = ring.current();
    let token = before.encrypt(b"payload");
    let old_primary = before.primary().fingerprint();

    repo.rotate().unwrap();
    assert!(clone.reload_if_changed().unwrap());
    assert!(!ring.reload_if_changed().unwrap());
    let after = ring.current();
    assert_ne!(after.primary().fingerprint(), old_primary);
    assert_eq!(after.len(), 3);
    assert_eq!(after.decrypt(&token).unwrap().payload, b"payload");
    // The Arc handed out earlier still holds the old set.
    assert_eq!(before.len(), 2);

    // Two more rotations retire the key that made `token`.
    repo.rotate().unwrap();
    repo.rotate().unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(
        ring.current().decrypt(&token),
        Err(crate::TokenError::Undecryptable)
    );
}

#[test]
fn failed_reload_keeps_old_keys() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    let ring = KeyRing::load(repo.clone()).unwrap();
    let primary = ring.current().primary().fingerprint();

    let bad = repo.path().join("5");
    fs::write(&bad, "this is not a key").unwrap();
    chmod(&bad, 0o600);
    assert!(matches!(
        ring.reload_if_changed(),
        Err(RepositoryError::MalformedKey { .. })
    ));
    assert_eq!(ring.current().primary().fingerprint(), primary);
    // Still broken: still an error, still the old keys.
    assert!(ring.reload_if_changed().is_err());

    fs::remove_file(&bad).unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(ring.current().primary().fingerprint(), primary);
}

#[test]
fn vanished_primary_keeps_the_keys_until_a_newer_primary() {
    let (_tmp, repo) = repo(3);
    repo.setup().unwrap();
    repo.rotate().unwrap(); // keys 0, 1, 2; primary 2
    let ring = KeyRing::load(repo.clone()).unwrap();
    let token = ring.current().encrypt(b"payload");
    let primary = repo.path().join("2");
    let text = fs::read_to_string(&primary).unwrap();

    // Removed by hand (or a sync half done): the loaded keys stay, every time it is tried.
    fs::remove_file(&primary).unwrap();
    for _ in 0..2 {
        assert!(matches!(
            ring.reload_if_changed(),
            Err(RepositoryError::PrimaryVanished { index: 2, .. })
        ));
    }
    assert_eq!(ring.current().decrypt(&token).unwrap().payload, b"payload");
    // Back as it was: accepted.
    fs::write(&primary, &text).unwrap();
    chmod(&primary, 0o600);
    assert!(ring.reload_if_changed().unwrap());

    // keystone-manage between its renames: 0 already promoted to 3, the new 0 not there yet.
    // The old primary is still a secondary key: accepted.
    fs::rename(repo.path().join("0"), repo.path().join("3")).unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(ring.current().indexed()[0].0, Some(3));

    // A newer primary without the old one (two rotations seen at once): accepted.
    fs::remove_file(repo.path().join("2")).unwrap();
    fs::remove_file(repo.path().join("3")).unwrap();
    fs::write(repo.path().join("5"), FernetKey::generate().to_base64()).unwrap();
    chmod(&repo.path().join("5"), 0o600);
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(ring.current().indexed()[0].0, Some(5));
}

#[test]
fn static_ring_never_reloads() {
    let ring = KeyRing::from_key_set(KeySet::new(vec![FernetKey::generate()]).unwrap());
    assert!(!ring.reload_if_changed().unwrap());
    assert!(ring.repository().is_none());
    let shown = format!("{ring:?}");
    assert!(shown.contains("fingerprint"), "{shown}");
}
