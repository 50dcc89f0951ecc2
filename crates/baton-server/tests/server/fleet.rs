//! Several nodes on one database with `key_distribution = database`: each node starts with an
//! empty key repository, loads the keys from the database and mirrors them; tokens minted on
//! any node validate on every node, also while `fernet_rotate` (the function `baton manage`
//! calls) runs; rotation waits for lagging nodes and never prunes a key an acceptable token may
//! need; a bad sealed set or an unusable key-encryption key never drops the keys in use; the
//! fleet view; credentials encrypted with the shared keys on any node.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_config::{IdentityConfig, KeyDistribution};
use baton_server::fleet::manage::{self, Repository};
use baton_server::fleet::{self, FERNET_TOKENS};
use baton_server::AppState;
use baton_store::{KeySetRow, NodeRow};
use baton_testkit::{on_every_database, DbDialect, IdentityServer, ADMIN_PASSWORD};
use baton_token::{FernetKey, KeyRepository};
use serde_json::{json, Value};

/// A key-encryption key file (0600) in `dir`.
fn write_kek(dir: &Path) -> PathBuf {
    let path = dir.join("kek");
    std::fs::write(&path, FernetKey::generate().to_base64()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Shared keys for tokens and credentials, this node's repositories under `dir/name`.
fn shared(config: &mut IdentityConfig, kek: &Path, dir: &Path, name: &str) {
    config.fernet_tokens.key_distribution = KeyDistribution::Database;
    config.credential.key_distribution = KeyDistribution::Database;
    config.fernet_tokens.key_encryption_key_file = Some(kek.to_path_buf());
    config.fernet_tokens.key_repository = dir.join(name).join("fernet-keys");
    config.credential.key_repository = dir.join(name).join("credential-keys");
}

async fn start(dialect: DbDialect, dir: &Path, max_keys: u32) -> IdentityServer {
    let kek = write_kek(dir);
    let dir = dir.to_path_buf();
    IdentityServer::start_with(dialect, move |c| {
        shared(c, &kek, &dir, "a");
        c.fernet_tokens.max_active_keys = max_keys;
    })
    .await
}

async fn node(s: &IdentityServer, dir: &Path, name: &str) -> baton_testkit::Node {
    let kek = s
        .config
        .fernet_tokens
        .key_encryption_key_file
        .clone()
        .unwrap();
    let dir = dir.to_path_buf();
    let repo = dir.join(name).join("fernet-keys");
    assert!(!repo.exists(), "a new node starts with no key repository");
    s.node_with(|c| shared(c, &kek, &dir, name)).await
}

/// The admin's project token, issued by the node at `base`.
async fn issue(client: &reqwest::Client, base: &str, project_id: &str) -> Result<String, String> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"id": project_id}}}});
    let resp = client
        .post(format!("{base}/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 201 {
        return Err(format!("issue on {base}: {}", resp.status()));
    }
    Ok(resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string())
}

/// `GET /v3/auth/tokens` on the node at `base`: the status.
async fn validate(client: &reqwest::Client, base: &str, caller: &str, subject: &str) -> u16 {
    client
        .get(format!("{base}/v3/auth/tokens"))
        .header("x-auth-token", caller)
        .header("x-subject-token", subject)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", e.path().display());
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Waits (at most 10 s) until every node has loaded version `version` of the token keys.
async fn loaded(states: &[&AppState], version: i64) {
    for _ in 0..100 {
        if states
            .iter()
            .all(|s| s.fleet.loaded_version(FERNET_TOKENS) == Some(version))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nodes did not load key set version {version}");
}

/// Rotates as `baton manage fernet_rotate` does, retrying while a node has not yet reported
/// the staged key (heartbeats come right after a node loads a set).
async fn rotate(s: &IdentityServer) -> manage::RotateReport {
    let mut last = String::new();
    for _ in 0..50 {
        let now = s.clock().now().timestamp();
        match manage::rotate(&s.config, &s.store, Repository::FernetTokens, now, false).await {
            Ok(report) => return report,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("rotation kept being refused: {last}");
}

async fn tokens_validate_on_every_node(dialect: DbDialect) {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dialect, dir.path(), 3).await;
    let b = node(&s, dir.path(), "b").await;
    let client = &s.client;
    let bases = [s.base.clone(), b.base.clone()];
    let mut minted = Vec::new();
    for base in &bases {
        minted.push(issue(client, base, &s.admin_project_id).await.unwrap());
    }
    for base in &bases {
        for (i, subject) in minted.iter().enumerate() {
            assert_eq!(
                validate(client, base, &minted[i], subject).await,
                200,
                "{base}"
            );
        }
    }
    // The node's empty repository now mirrors the database's set.
    let mirrored = files(&dir.path().join("b").join("fernet-keys"));
    assert_eq!(mirrored.keys().collect::<Vec<_>>(), ["0", "1"]);
    assert_eq!(mirrored, files(&dir.path().join("a").join("fernet-keys")));
    s.stop().await;
}

async fn rotation_under_load_fails_no_validation() {
    let dir = tempfile::tempdir().unwrap();
    // Five keys: three rotations prune nothing (pruning has its own test).
    let s = start(DbDialect::Postgres, dir.path(), 5).await;
    let b = node(&s, dir.path(), "b").await;
    let c = node(&s, dir.path(), "c").await;
    let bases = vec![s.base.clone(), b.base.clone(), c.base.clone()];
    let project = s.admin_project_id.clone();
    let mut minted = Vec::new();
    for base in &bases {
        minted.push(issue(&s.client, base, &project).await.unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut loops = Vec::new();
    for (n, base) in bases.iter().enumerate() {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (base, bases, minted, client, project) = (
            base.clone(),
            bases.clone(),
            minted.clone(),
            s.client.clone(),
            project.clone(),
        );
        loops.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // A fresh token from one node, checked on this one, with older tokens too.
                let fresh = issue(&client, &bases[(n + round) % bases.len()], &project).await;
                let Ok(fresh) = fresh else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                for subject in minted.iter().chain([&fresh]) {
                    if validate(&client, &base, &fresh, subject).await == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                round += 1;
            }
        }));
    }
    let states = [&s.state, &b.state, &c.state];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let report = rotate(&s).await;
        assert!(report.outcome.removed.is_empty());
        loaded(&states, report.version).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rotation under load: {ok} validations, {failed} failed");
    assert!(ok > 30, "{ok}");
    assert_eq!(failed, 0);
    // Every mirror, and fernet_export, hold the database's set.
    let export = dir.path().join("export");
    let written = manage::export(&s.config, &s.store, Repository::FernetTokens, &export)
        .await
        .unwrap();
    assert_eq!(written, [4, 3, 2, 1, 0]);
    let exported = files(&export);
    for name in ["a", "b", "c"] {
        assert_eq!(files(&dir.path().join(name).join("fernet-keys")), exported);
    }
    drop((b, c));
    s.stop().await;
}

/// A live node that has not reported the staged key.
fn lagging(node_id: &str, now: i64, fingerprints: &str) -> NodeRow {
    NodeRow {
        node_id: node_id.into(),
        repository: FERNET_TOKENS.into(),
        name: "lagging-node".into(),
        address: None,
        started_at: now - 100,
        heartbeat_at: now,
        key_set_version: Some(1),
        key_fingerprints: fingerprints.into(),
        primary_key_id: Some(1),
        change_lag_ms: None,
    }
}

async fn rotation_waits_for_live_nodes_and_keeps_needed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let token = issue(&s.client, &s.base, &s.admin_project_id)
        .await
        .unwrap();
    // A node joining later needs no file copy.
    let b = node(&s, dir.path(), "b").await;
    assert_eq!(validate(&s.client, &b.base, &token, &token).await, 200);

    let now = s.clock().now().timestamp();
    s.store
        .heartbeat(&lagging("lagger", now, "1:00000000"))
        .await
        .unwrap();
    let refused = manage::rotate(&s.config, &s.store, Repository::FernetTokens, now, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("lagging-node") && refused.contains("staged key"),
        "{refused}"
    );
    // Once it is stale (no heartbeat for 3 intervals) it no longer holds rotation up.
    let old = now - fleet::LIVE_WITHIN_SECS - 1;
    s.store
        .heartbeat(&lagging("lagger", old, "1:00000000"))
        .await
        .unwrap();
    let first = rotate(&s).await;
    assert_eq!(first.outcome.new_primary, 2);
    loaded(&[&s.state, &b.state], first.version).await;

    // With max_active_keys = 3 the next rotation prunes key 1, which encrypted tokens until
    // the last rotation: refused while expiration + allow_expired_window runs.
    let now = s.clock().now().timestamp();
    let refused = manage::rotate(&s.config, &s.store, Repository::FernetTokens, now, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("prune key 1"), "{refused}");
    let forced = manage::rotate(&s.config, &s.store, Repository::FernetTokens, now, true)
        .await
        .unwrap();
    assert_eq!(forced.outcome.removed, [1]);
    assert!(forced.notes[0].contains("--force"), "{:?}", forced.notes);
    let later = now + 3600 + 48 * 3600 + 100;
    loaded(&[&s.state, &b.state], forced.version).await;
    let pruned = manage::rotate(&s.config, &s.store, Repository::FernetTokens, later, false)
        .await
        .unwrap();
    assert_eq!(pruned.outcome.removed, [2]);

    // Two rotations from the same version: the compare-and-swap lets one through.
    let row = s.store.get_key_set(FERNET_TOKENS).await.unwrap().unwrap();
    let stale = KeySetRow {
        version: row.version + 1,
        ..row.clone()
    };
    assert!(s.store.swap_key_set(row.version, &stale).await.unwrap());
    assert!(!s.store.swap_key_set(row.version, &stale).await.unwrap());
    drop(b);
    s.stop().await;
}

async fn a_bad_sealed_set_keeps_the_keys_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let token = issue(&s.client, &s.base, &s.admin_project_id)
        .await
        .unwrap();
    assert_eq!(s.state.fleet.key_lag(), None);
    let row = s.store.get_key_set(FERNET_TOKENS).await.unwrap().unwrap();
    let mut bytes = row.sealed.clone().into_bytes();
    bytes[80] = if bytes[80] == b'A' { b'B' } else { b'A' };
    let tampered = KeySetRow {
        version: row.version + 1,
        sealed: String::from_utf8(bytes).unwrap(),
        ..row.clone()
    };
    assert!(s.store.swap_key_set(row.version, &tampered).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lag = s.state.fleet.key_lag().expect("the node reports its lag");
    assert!(lag.contains("fernet_tokens"), "{lag}");
    assert!(!lag.contains(&row.sealed[..20]));
    assert_eq!(
        s.state.fleet.loaded_version(FERNET_TOKENS),
        Some(row.version)
    );
    assert_eq!(validate(&s.client, &s.base, &token, &token).await, 200);
    let fresh = issue(&s.client, &s.base, &s.admin_project_id)
        .await
        .unwrap();
    assert_eq!(validate(&s.client, &s.base, &fresh, &token).await, 200);
    // A node starting now refuses to start on a set it cannot open.
    let kek = s
        .config
        .fernet_tokens
        .key_encryption_key_file
        .clone()
        .unwrap();
    let mut config = s.config.clone();
    shared(&mut config, &kek, dir.path(), "late");
    let err = AppState::open(config).await.err().unwrap().to_string();
    assert!(err.contains("does not open"), "{err}");
    // The set put right again (a newer version) is taken, and the lag clears.
    let kek = baton_token::read_key_encryption_key(&kek).unwrap();
    let keys = baton_token::SharedKeys::open(&kek, &row.sealed, FERNET_TOKENS, row.version as u64)
        .unwrap();
    let good = KeySetRow {
        version: row.version + 2,
        sealed: keys
            .seal(&kek, FERNET_TOKENS, (row.version + 2) as u64)
            .unwrap(),
        ..row.clone()
    };
    assert!(s.store.swap_key_set(row.version + 1, &good).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.state.fleet.key_lag(), None);
    assert_eq!(
        s.state.fleet.loaded_version(FERNET_TOKENS),
        Some(row.version + 2)
    );
    s.stop().await;
}

async fn an_unreachable_database_keeps_the_keys_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let b = node(&s, dir.path(), "b").await;
    let before = b.state.tokens.formatter().ring().current().key_info();
    // The node's pool closed: every poll fails from now on.
    b.state.store.close().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lag = b.state.fleet.key_lag().expect("lag reported");
    assert!(lag.contains("does not answer"), "{lag}");
    assert_eq!(
        b.state.tokens.formatter().ring().current().key_info(),
        before
    );
    assert_eq!(b.state.fleet.loaded_version(FERNET_TOKENS), Some(1));
    assert_eq!(s.state.fleet.key_lag(), None);
    drop(b);
    s.stop().await;
}

async fn an_unusable_kek_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let kek = s
        .config
        .fernet_tokens
        .key_encryption_key_file
        .clone()
        .unwrap();
    let mut config = s.config.clone();
    shared(&mut config, &kek, dir.path(), "x");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = AppState::open(config.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("[fernet_tokens] key_encryption_key_file")
            && err.contains("chmod 600")
            && !err.contains('\n'),
        "{err}"
    );
    config.fernet_tokens.key_encryption_key_file = Some(dir.path().join("absent"));
    let err = AppState::open(config.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("absent: cannot read"), "{err}");
    // Another KEK: the set does not open.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    config.fernet_tokens.key_encryption_key_file = Some(write_kek(&other));
    let err = AppState::open(config).await.err().unwrap().to_string();
    assert!(err.contains("does not open"), "{err}");
    s.stop().await;
}

async fn fleet_view_is_admin_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let b = node(&s, dir.path(), "b").await;
    loaded(&[&s.state, &b.state], 1).await;
    s.state.fleet.heartbeat(&s.state.tokens).await;
    b.state.fleet.heartbeat(&b.state.tokens).await;
    let url = s.url("baton/fleet");
    let resp = s.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    let project_admin = s.admin_token().await;
    let resp = s
        .client
        .get(&url)
        .header("x-auth-token", &project_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    let system_admin = s.system_admin_token().await;
    let resp = s
        .client
        .get(&url)
        .header("x-auth-token", &system_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let nodes = body["fleet"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{body}");
    for n in nodes {
        assert_eq!(n["state"], "live", "{n}");
        assert_eq!(n["keys"]["fernet_tokens"]["matches"], true, "{n}");
        assert_eq!(n["keys"]["fernet_tokens"]["key_set_version"], 1, "{n}");
        assert_eq!(n["keys"]["credential"]["matches"], true, "{n}");
    }
    assert_eq!(nodes.iter().filter(|n| n["this_node"] == true).count(), 1);
    let text = body.to_string();
    for key in files(&dir.path().join("a").join("fernet-keys")).values() {
        assert!(!text.contains(key.as_str()), "no key material in the view");
    }
    drop(b);
    s.stop().await;
}

async fn credentials_use_the_shared_keys_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(DbDialect::Postgres, dir.path(), 3).await;
    let b = node(&s, dir.path(), "b").await;
    let token = s.admin_token().await;
    let create = |base: String, blob: &'static str| {
        let client = s.client.clone();
        let token = token.clone();
        let user = s.admin_user_id.clone();
        async move {
            let resp = client
                .post(format!("{base}/v3/credentials"))
                .header("x-auth-token", &token)
                .json(&json!({"credential": {"type": "cert", "user_id": user, "blob": blob}}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201);
            let body: Value = resp.json().await.unwrap();
            body["credential"]["id"].as_str().unwrap().to_string()
        }
    };
    let read = |base: String, id: String| {
        let client = s.client.clone();
        let token = token.clone();
        async move {
            let resp = client
                .get(format!("{base}/v3/credentials/{id}"))
                .header("x-auth-token", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let body: Value = resp.json().await.unwrap();
            body["credential"]["blob"].as_str().unwrap().to_string()
        }
    };
    let on_a = create(s.base.clone(), "blob-from-a").await;
    assert_eq!(read(b.base.clone(), on_a.clone()).await, "blob-from-a");
    // credential_rotate as `baton manage` runs it, then a write on B read on A.
    let keys = baton_server::identity::credentials::CredentialKeys::for_config(&s.config, &s.store)
        .await
        .unwrap();
    baton_server::identity::credentials::check_rotatable_with(&s.store, &keys)
        .await
        .unwrap();
    let now = s.clock().now().timestamp();
    let report = manage::rotate(&s.config, &s.store, Repository::Credential, now, false)
        .await
        .unwrap();
    for _ in 0..50 {
        if b.state.fleet.loaded_version(fleet::CREDENTIAL) == Some(report.version) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_b = create(b.base.clone(), "blob-from-b").await;
    assert_eq!(read(s.base.clone(), on_b).await, "blob-from-b");
    assert_eq!(read(s.base.clone(), on_a).await, "blob-from-a");
    // The mirror holds the rotated credential keys.
    let mirrored = KeyRepository::new(dir.path().join("b").join("credential-keys"), 3)
        .load()
        .unwrap();
    assert_eq!(mirrored.len(), 3);
    drop(b);
    s.stop().await;
}

on_every_database!(tokens_validate_on_every_node);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_rotation_under_load_fails_no_validation() {
    rotation_under_load_fails_no_validation().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_waits_for_live_nodes_and_keeps_needed_keys() {
    rotation_waits_for_live_nodes_and_keeps_needed_keys().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_bad_sealed_set_keeps_the_keys_in_use() {
    a_bad_sealed_set_keeps_the_keys_in_use().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_unreachable_database_keeps_the_keys_in_use() {
    an_unreachable_database_keeps_the_keys_in_use().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_unusable_kek_is_refused_at_start() {
    an_unusable_kek_is_refused_at_start().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fleet_view_is_admin_only() {
    fleet_view_is_admin_only().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_credentials_use_the_shared_keys_on_every_node() {
    credentials_use_the_shared_keys_on_every_node().await;
}
