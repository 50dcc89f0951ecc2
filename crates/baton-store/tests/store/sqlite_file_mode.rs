//! Security review 2026-12, #11: a SQLite database holds password hashes, so the files Baton
//! creates for it (`baton.db`, `-wal`, `-shm`) are readable by their owner only, whatever the
//! umask; a database file that already exists keeps its mode.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use baton_store::Store;

/// The permission bits, in octal.
fn mode(path: &Path) -> String {
    let m = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", m & 0o777)
}

fn side(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

#[tokio::test]
async fn a_new_sqlite_database_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("baton.db");
    let store = Store::connect(&format!("sqlite:///{}", db.display()))
        .await
        .unwrap();
    // What `baton manage db_sync` does: the schema, written through the WAL.
    store.db_sync().await.unwrap();
    for path in [db.clone(), side(&db, "-wal"), side(&db, "-shm")] {
        assert_eq!(mode(&path), "600", "{}", path.display());
    }
    store.close().await;
    // Reopening changes nothing.
    let store = Store::connect(&format!("sqlite:///{}", db.display()))
        .await
        .unwrap();
    assert_eq!(mode(&db), "600");
    store.close().await;
}

#[tokio::test]
async fn an_existing_database_file_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let store = Store::connect(&format!("sqlite:///{}", db.display()))
        .await
        .unwrap();
    store.db_sync().await.unwrap();
    assert_eq!(mode(&db), "640");
    store.close().await;
}

#[tokio::test]
async fn a_missing_directory_is_still_sqlites_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("no-such-dir").join("baton.db");
    let err = Store::connect(&format!("sqlite:///{}", db.display()))
        .await
        .err()
        .expect("no directory, no database");
    assert!(err.to_string().contains("database error"), "{err}");
}
