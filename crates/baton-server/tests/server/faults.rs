//! Faults below the API: a MariaDB that goes away and comes back, a full disk under SQLite,
//! and a Fernet key repository caught mid-change. None of them may produce a 500, lose a
//! committed row or drop the keys in use; each prints a `FIGURE` line with what it measured
//! (see bench/results/durability-*.md).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::*;
use baton_testkit::call;

/// How long a request may take to answer 503 while the database is away.
const FAST_503: Duration = Duration::from_secs(2);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn password_auth() -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PW}}}}})
}

/// A request that needs the database: its status, headers' Retry-After, body and duration.
async fn timed(
    a: &IdentityServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value, Duration) {
    let start = Instant::now();
    let mut req = a
        .client
        .request(method, a.url(path))
        .header("x-auth-token", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry, body, start.elapsed())
}

fn assert_keystone_503(status: StatusCode, retry: Option<&str>, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(retry, Some("1"), "{what}: Retry-After");
    assert_eq!(body["error"]["code"], 503, "{what}: {body}");
    assert_eq!(
        body["error"]["title"], "Service Unavailable",
        "{what}: {body}"
    );
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

// ----- MariaDB outage ------------------------------------------------------------------------

/// A `mariadbd` of the test's own (private data directory, port and socket), so that it can
/// be killed without touching the server other tests share.
struct ThrowawayMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl ThrowawayMariaDb {
    /// None when MariaDB's programs are not installed.
    async fn start() -> Option<ThrowawayMariaDb> {
        let dir = tempfile::tempdir().expect("tempdir");
        let installed = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}/data", dir.path().display()))
            .arg("--auth-root-authentication-method=normal")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !installed.is_ok_and(|s| s.success()) {
            return None;
        }
        let mut db = ThrowawayMariaDb {
            dir,
            port: free_port(),
            child: None,
        };
        db.run().await;
        sqlx_exec(&db.admin_url(), "CREATE DATABASE keystone").await;
        Some(db)
    }

    fn admin_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.port)
    }

    fn connection(&self) -> String {
        format!("mysql+pymysql://root@127.0.0.1:{}/keystone", self.port)
    }

    /// Starts `mariadbd` on the data directory and waits until it answers.
    async fn run(&mut self) {
        let d = self.dir.path().display();
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1"])
            .arg("--skip-name-resolve")
            .arg(format!("--datadir={d}/data"))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={d}/sock"))
            .arg(format!("--pid-file={d}/pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            use sqlx::Connection;
            if sqlx::MySqlConnection::connect(&self.admin_url())
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills `mariadbd` (SIGKILL, as in a crash) and waits for it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn sqlx_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connect to the throwaway MariaDB");
    sqlx::query(sql).execute(&mut c).await.expect(sql);
}

/// With its MariaDB killed a node answers 503 fast (Keystone's error body, Retry-After), its
/// healthcheck says why, cached validations keep working, and it recovers alone when MariaDB
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_answers_503_fast_and_recovers() {
    let Some(mut db) = ThrowawayMariaDb::start().await else {
        eprintln!("skipped: mariadb-install-db / mariadbd not installed");
        return;
    };
    let a = IdentityServer::start_on(&db.connection(), |_| {}).await;
    let checker = a.system_admin_token().await;
    let subject = a.admin_token().await;
    let validate = || async {
        a.client
            .get(a.url("auth/tokens"))
            .header("x-auth-token", &checker)
            .header("x-subject-token", &subject)
            .send()
            .await
            .expect("validate")
            .status()
    };
    assert_eq!(validate().await, StatusCode::OK);
    let health = format!("{}/healthcheck", a.base);

    db.kill();
    let down = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut first_503 = None;
    for (method, path, body) in [
        (Method::GET, "users", None),
        (Method::POST, "auth/tokens", Some(password_auth())),
        (
            Method::POST,
            "projects",
            Some(json!({"project": {"name": "during-outage", "domain_id": "default"}})),
        ),
    ] {
        let (status, retry, body, took) = timed(&a, method.clone(), path, &subject, body).await;
        assert_keystone_503(status, retry.as_deref(), &body, &format!("{method} {path}"));
        assert!(took < FAST_503, "{method} {path} took {took:?}");
        slowest = slowest.max(took);
        first_503.get_or_insert(down.elapsed());
    }
    let start = Instant::now();
    let r = a.client.get(&health).send().await.expect("healthcheck");
    let health_took = start.elapsed();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.text().await.expect("body"), "DATABASE UNREACHABLE");
    // The cached validation needs no database.
    assert_eq!(validate().await, StatusCode::OK);

    db.run().await;
    let back = Instant::now();
    let got = eventually(Duration::from_secs(20), StatusCode::OK, || async {
        a.client.get(&health).send().await.expect("get").status()
    })
    .await;
    let recovered = back.elapsed();
    assert_eq!(got, StatusCode::OK, "the node did not recover by itself");
    let (status, _) = call(&a, Method::GET, "users", &subject, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &a,
        Method::POST,
        "projects",
        &subject,
        Some(json!({"project": {"name": "after-outage", "domain_id": "default"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    println!(
        "FIGURE test=mariadb_outage first_503_after_kill_ms={} slowest_503_ms={} healthcheck_503_ms={} \
         healthy_after_db_back_ms={}",
        first_503.unwrap_or_default().as_millis(),
        slowest.as_millis(),
        health_took.as_millis(),
        recovered.as_millis()
    );
    a.stop().await;
}

// ----- full disk under SQLite ----------------------------------------------------------------

/// A small tmpfs mounted on a temporary directory (we run as root in CI's containers);
/// unmounted when dropped. None when `mount` is not allowed here.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn sqlite_integrity(path: &Path) -> String {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database file");
    let (v,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut c)
        .await
        .expect("integrity_check");
    v
}

/// On a full disk SQLite writes answer 503 with Keystone's error body and Retry-After (the
/// write is rolled back), reads keep working, the file stays sound, and writes work again once
/// space returns. The full disk is a real one: a 6 MiB tmpfs filled by another file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_answers_503_and_recovers() {
    let Some(disk) = SmallDisk::mount("6m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)");
        return;
    };
    let file = disk.path().join("keystone.db");
    let a = IdentityServer::start_on(&format!("sqlite:///{}", file.display()), |c| {
        c.default.insecure_debug = true;
    })
    .await;
    let token = a.admin_token().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let (status, body) = call(
            &a,
            Method::POST,
            "projects",
            &token,
            Some(json!({"project": {"name": format!("before-{i}"), "domain_id": "default"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        created.push(body["project"]["id"].as_str().expect("id").to_string());
    }

    let filler = disk.fill();
    // Pages SQLite already holds (the WAL's) may take a few more rows; then the disk is full.
    let mut full = None;
    for i in 0..2000 {
        let name = format!("while-full-{i}");
        let (status, retry, body, took) = timed(
            &a,
            Method::POST,
            "projects",
            &token,
            Some(json!({"project": {"name": name, "domain_id": "default", "description": "y".repeat(2000)}})),
        )
        .await;
        if status == StatusCode::CREATED {
            created.push(body["project"]["id"].as_str().expect("id").to_string());
            continue;
        }
        assert_keystone_503(status, retry.as_deref(), &body, "a write on a full disk");
        full = Some((i, took));
        break;
    }
    let (accepted, took) = full.expect("the disk never filled");
    // Still full: the next write is refused the same way; reads keep working.
    let (status, retry, body, _) = timed(
        &a,
        Method::PATCH,
        &format!("projects/{}", created[0]),
        &token,
        Some(json!({"project": {"description": "z".repeat(4000)}})),
    )
    .await;
    if status != StatusCode::OK {
        assert_keystone_503(status, retry.as_deref(), &body, "an update on a full disk");
    }
    let (status, _) = call(&a, Method::GET, "projects", &token, None).await;
    assert_eq!(status, StatusCode::OK);

    std::fs::remove_file(&filler).expect("free the disk");
    let (status, body) = call(
        &a,
        Method::POST,
        "projects",
        &token,
        Some(json!({"project": {"name": "after-full", "domain_id": "default"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    created.push(body["project"]["id"].as_str().expect("id").to_string());
    for id in &created {
        let (status, _) = call(&a, Method::GET, &format!("projects/{id}"), &token, None).await;
        assert_eq!(status, StatusCode::OK, "project {id} lost");
    }
    assert_eq!(sqlite_integrity(&file).await, "ok");
    println!(
        "FIGURE test=sqlite_full_disk method=tmpfs writes_accepted_after_fill={accepted} \
         first_503_ms={} rows_checked={} integrity=ok",
        took.as_millis(),
        created.len()
    );
    a.stop().await;
    drop(disk);
}

// ----- key repository caught mid-change ------------------------------------------------------

/// Validates `subject` (never validated before, so decrypted now) as `checker`.
async fn validate_fresh(a: &IdentityServer, checker: &str, subject: &str) -> StatusCode {
    super::change_feed::validate_on(a, &a.base, checker, subject).await
}

/// Issues a token and validates it, plus one issued before the fault: neither may fail.
async fn still_serving(a: &IdentityServer, checker: &str, earlier: &str, what: &str) {
    a.state.tokens.reload_keys();
    let fresh = a.admin_token().await;
    assert_eq!(
        validate_fresh(a, checker, &fresh).await,
        StatusCode::OK,
        "{what}: a token issued now"
    );
    assert_eq!(
        validate_fresh(a, checker, earlier).await,
        StatusCode::OK,
        "{what}: a token issued before"
    );
}

/// A half-written, garbage, emptied or vanished key file and a vanished directory keep the
/// last good keys in use (no 500, no token of the primary key refused), are logged once
/// (`key_reload_failure`), and a repository put right is picked up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_repository_mid_change_keeps_the_keys_in_use() {
    let a = IdentityServer::start(DbDialect::Sqlite).await;
    let repo = a.config.fernet_tokens.key_repository.clone();
    let checker = a.system_admin_token().await;
    let primary = repo.join("1");
    let good = std::fs::read_to_string(&primary).expect("primary key");
    let write = |path: &Path, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).expect("write key file");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };

    let faults: [(&str, &dyn Fn()); 5] = [
        ("a truncated primary key file", &|| {
            write(&primary, &good[..20])
        }),
        ("a garbage primary key file", &|| {
            write(&primary, "not-a-key-at-all!!\u{7f}");
        }),
        ("a half-written 0.tmp beside the keys", &|| {
            write(&repo.join("0.tmp"), &good[..10]);
        }),
        ("the primary key file vanished", &|| {
            std::fs::remove_file(&primary).expect("rm primary");
        }),
        ("the key directory vanished", &|| {
            std::fs::rename(&repo, repo.with_extension("away")).expect("mv repo");
        }),
    ];
    for (what, fault) in faults {
        let earlier = a.admin_token().await;
        fault();
        still_serving(&a, &checker, &earlier, what).await;
        if what != "a half-written 0.tmp beside the keys" {
            let failure = a.state.tokens.key_reload_failure();
            assert!(failure.is_some(), "{what}: the failure is not reported");
        }
        // Put right: the directory back, the key as it was.
        if !repo.exists() {
            std::fs::rename(repo.with_extension("away"), &repo).expect("mv repo back");
        }
        let _ = std::fs::remove_file(repo.join("0.tmp"));
        write(&primary, &good);
        a.state.tokens.reload_keys();
        assert_eq!(
            a.state.tokens.key_reload_failure(),
            None,
            "{what}: not cleared"
        );
        still_serving(&a, &checker, &earlier, &format!("{what} (put right)")).await;
    }

    // A rotation made by another process is still picked up: the old primary stays as a
    // secondary key, so nothing issued before is refused.
    let earlier = a.admin_token().await;
    KeyRepository::new(&repo, 3).rotate().expect("rotate");
    a.state.tokens.reload_keys();
    assert_eq!(a.state.tokens.key_reload_failure(), None);
    assert!(repo.join("2").exists());
    still_serving(&a, &checker, &earlier, "after a rotation").await;
    a.stop().await;
}

/// The credential key repository likewise: vanished or holding a half-written primary, the
/// keys read before stay in use, so stored credentials still decrypt and new ones are sealed
/// with the same primary key (never a 500, never Keystone's null key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_key_repository_mid_change_keeps_the_keys_in_use() {
    let a = IdentityServer::start(DbDialect::Sqlite).await;
    let repo = a.config.credential.key_repository.clone();
    let token = a.admin_token().await;
    let (server, tok) = (&a, token.as_str());
    let create = move |blob: &'static str| {
        let body =
            json!({"credential": {"type": "cert", "user_id": server.admin_user_id, "blob": blob}});
        call(server, Method::POST, "credentials", tok, Some(body))
    };
    let (status, body) = create("before").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["credential"]["id"].as_str().expect("id").to_string();
    let hash_before = a
        .store
        .get_credential(&id)
        .await
        .expect("row")
        .expect("row")
        .key_hash;

    let primary = repo.join("1");
    let good = std::fs::read_to_string(&primary).expect("primary");
    std::fs::write(&primary, &good[..12]).expect("truncate");
    let (status, body) = call(&a, Method::GET, &format!("credentials/{id}"), &token, None).await;
    assert_eq!(status, StatusCode::OK, "a half-written primary: {body}");
    assert_eq!(body["credential"]["blob"], "before");

    std::fs::rename(&repo, repo.with_extension("away")).expect("mv");
    let (status, body) = call(&a, Method::GET, &format!("credentials/{id}"), &token, None).await;
    assert_eq!(status, StatusCode::OK, "a vanished repository: {body}");
    let (status, body) = create("during").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let during = body["credential"]["id"].as_str().expect("id").to_string();
    let row = a
        .store
        .get_credential(&during)
        .await
        .expect("row")
        .expect("row");
    assert_eq!(
        row.key_hash, hash_before,
        "sealed with the primary key in use"
    );

    std::fs::rename(repo.with_extension("away"), &repo).expect("mv back");
    std::fs::write(&primary, &good).expect("restore");
    let (status, body) = call(
        &a,
        Method::GET,
        &format!("credentials/{during}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    a.stop().await;
}
