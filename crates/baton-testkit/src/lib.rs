//! Test support (a dev-dependency only): a real Baton identity server on `127.0.0.1:0` over a
//! throwaway database of any dialect — SQLite in a temp dir, or a fresh database on the
//! machine's PostgreSQL (127.0.0.1:5432) or MariaDB (127.0.0.1:3306), dropped afterwards — with
//! its own Fernet keys, bootstrapped like `baton manage bootstrap`, and helpers to make users,
//! projects and role assignments and to get tokens for them, and the personas of Keystone's
//! default policy as tokens ([`Personas`]).
//!
//! Override the database servers with `BATON_TEST_POSTGRES_URL` / `BATON_TEST_MYSQL_URL`.

use std::sync::Mutex;
use std::time::Duration;

use baton_config::IdentityConfig;
use baton_server::bootstrap::{initialize, BootstrapOptions};
use baton_server::clock::Clock;
use baton_server::AppState;
use baton_store::{Assignment, AssignmentType, Dialect, Project, Store, SystemAssignment, User};
use serde_json::{json, Value};

mod log_capture;
pub use log_capture::captured_text;
mod personas;
pub mod tls;

pub use baton_store::Dialect as DbDialect;
pub use log_capture::capture_logs;
pub use personas::{Personas, PERSONA_DOMAIN, PERSONA_PASSWORD, PERSONA_PROJECT};
pub use reqwest::{Method, StatusCode};

/// The bootstrap admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "Adm1n-Secret-q8Zr2";

/// A database that exists for one test; dropped (server side) by [`TestDb::drop_db`].
pub struct TestDb {
    /// The `[database] connection` URL of the test's database.
    pub url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database of this dialect: a SQLite file in a temporary directory, or a new
    /// database on the PostgreSQL or MariaDB server on loopback.
    pub async fn new(dialect: Dialect) -> TestDb {
        let name = format!(
            "baton_t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        match dialect {
            Dialect::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                TestDb {
                    url: format!("sqlite:///{}/keystone.db", dir.path().display()),
                    cleanup: None,
                    _dir: Some(dir),
                }
            }
            Dialect::Postgres => {
                let server = std::env::var("BATON_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432".into());
                let admin = format!("{server}/postgres");
                admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
                TestDb {
                    url: format!("{server}/{name}"),
                    cleanup: Some((admin, format!("DROP DATABASE {name} WITH (FORCE)"))),
                    _dir: None,
                }
            }
            Dialect::MySql => {
                let server = std::env::var("BATON_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql+pymysql://root@127.0.0.1:3306".into());
                let admin = format!("{server}/test");
                admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
                TestDb {
                    url: format!("{server}/{name}"),
                    cleanup: Some((admin, format!("DROP DATABASE {name}"))),
                    _dir: None,
                }
            }
        }
    }

    /// Drops a server-side database (nothing for SQLite).
    pub async fn drop_db(&mut self) {
        if let Some((admin, sql)) = self.cleanup.take() {
            admin_exec(&admin, &sql).await;
        }
    }
}

impl TestDb {
    /// PostgreSQL only: refuses new connections to the test's database and ends the open ones
    /// (`reachable = false`), or lets connections in again: a database outage and its end,
    /// without touching the server other tests share.
    pub async fn set_reachable(&self, reachable: bool) {
        let Some((admin, _)) = &self.cleanup else {
            panic!("set_reachable needs a server database");
        };
        assert!(
            admin.starts_with("postgres"),
            "set_reachable is PostgreSQL only"
        );
        let name = self.url.rsplit('/').next().expect("database name");
        admin_exec(
            admin,
            &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"),
        )
        .await;
        if !reachable {
            admin_exec(
                admin,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            )
            .await;
        }
    }
}

async fn admin_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let parsed = baton_store::parse_connection(url).expect("test database URL");
    match parsed.dialect {
        Dialect::Postgres => {
            let mut c = sqlx::PgConnection::connect(&parsed.url)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432");
            sqlx::query(sql).execute(&mut c).await.expect(sql);
        }
        Dialect::MySql => {
            let mut c = sqlx::MySqlConnection::connect(&parsed.url)
                .await
                .expect("MariaDB on 127.0.0.1:3306");
            sqlx::query(sql).execute(&mut c).await.expect(sql);
        }
        Dialect::Sqlite => {}
    }
}

/// Another node of a test server's deployment (see [`IdentityServer::second_node`]).
pub struct Node {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The node's state (its token service, caches and revocation list).
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An open transaction holding an uncommitted write (see
/// [`IdentityServer::hold_revocation_event`]).
pub enum HeldWrite {
    /// On PostgreSQL.
    Postgres(sqlx::PgConnection),
    /// On MariaDB.
    MySql(sqlx::MySqlConnection),
}

impl HeldWrite {
    /// Commits the held write, making it visible to every node.
    pub async fn commit(self) {
        match self {
            HeldWrite::Postgres(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await.expect("COMMIT");
            }
            HeldWrite::MySql(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await.expect("COMMIT");
            }
        }
    }
}

/// A running identity server. Dropping it stops the server; call [`IdentityServer::stop`] to
/// also drop a PostgreSQL/MariaDB database.
pub struct IdentityServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's state, for reaching into its token service.
    pub state: AppState,
    /// The server's keystone.conf.
    pub config: IdentityConfig,
    /// A second connection to the same database, for setting up data behind the API's back.
    pub store: Store,
    /// An HTTP client for the tests' requests.
    pub client: reqwest::Client,
    /// The bootstrap admin's user id.
    pub admin_user_id: String,
    /// The bootstrap `admin` project's id.
    pub admin_project_id: String,
    /// The default domain's id.
    pub default_domain_id: String,
    /// Passwords no response may contain (see [`send`]).
    secrets: Mutex<Vec<String>>,
    task: tokio::task::JoinHandle<()>,
    db: TestDb,
    _dir: tempfile::TempDir,
}

impl Drop for IdentityServer {
    /// Also checks that nothing this test process logged (at trace level) holds a token, a
    /// registered password or one of the server's keys; not while the test already panics.
    fn drop(&mut self) {
        self.task.abort();
        if !std::thread::panicking() {
            let secrets = self
                .secrets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            log_capture::assert_no_secret_logged(&secrets, self._dir.path());
        }
    }
}

fn hash(pw: &str) -> String {
    baton_server::password::hash_password(pw, baton_config::PasswordHashAlgorithm::Bcrypt, Some(4))
        .expect("bcrypt")
}

impl IdentityServer {
    /// Starts a server on this backend, bootstrapped like `baton manage bootstrap`.
    pub async fn start(dialect: Dialect) -> IdentityServer {
        IdentityServer::start_with(dialect, |_| {}).await
    }

    /// Starts a server; `tweak` adjusts the configuration before anything is created.
    pub async fn start_with(
        dialect: Dialect,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> IdentityServer {
        IdentityServer::start_with_clock(dialect, Clock::system(), tweak).await
    }

    /// Starts a server whose clock stands still until the test moves it
    /// ([`IdentityServer::next_second`], `clock().advance(..)`).
    pub async fn start_manual_clock(dialect: Dialect) -> IdentityServer {
        IdentityServer::start_with_clock(dialect, Clock::manual(chrono::Utc::now()), |_| {}).await
    }

    /// Starts a server telling time by `clock`.
    pub async fn start_with_clock(
        dialect: Dialect,
        clock: Clock,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> IdentityServer {
        let db = TestDb::new(dialect).await;
        IdentityServer::start_over(db, clock, tweak).await
    }

    /// Starts a server on an empty database the test provides (`[database] connection`), e.g.
    /// on a throwaway database server or a small file system the test fills; nothing is
    /// dropped afterwards.
    pub async fn start_on(
        connection: &str,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> IdentityServer {
        let db = TestDb {
            url: connection.to_string(),
            cleanup: None,
            _dir: None,
        };
        IdentityServer::start_over(db, Clock::system(), tweak).await
    }

    async fn start_over(
        db: TestDb,
        clock: Clock,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> IdentityServer {
        log_capture::capture_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = IdentityConfig::default();
        config.database.connection = Some(db.url.clone());
        config.fernet_tokens.key_repository = dir.path().join("fernet-keys");
        config.credential.key_repository = dir.path().join("credential-keys");
        config.identity.password_hash_rounds = Some(4);
        tweak(&mut config);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let scheme = if config.baton.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let report = initialize(&config, &BootstrapOptions::admin(ADMIN_PASSWORD, &base))
            .await
            .expect("db_sync, fernet_setup and bootstrap");
        let store = Store::connect(&db.url).await.expect("connect");
        // `keystone-manage credential_setup`, which bootstrap leaves to the operator.
        if config.credential.key_distribution == baton_config::KeyDistribution::Database {
            let now = chrono::Utc::now().timestamp();
            baton_server::fleet::manage::setup(
                &config,
                &store,
                baton_server::fleet::manage::Repository::Credential,
                now,
            )
            .await
            .expect("credential_setup (shared)");
        } else {
            baton_token::KeyRepository::new(&config.credential.key_repository, 3)
                .setup()
                .expect("credential_setup");
        }

        let state = AppState::open_with_clock(config.clone(), clock)
            .await
            .expect("AppState::open");
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let _ = baton_server::serve(serve_state, listener).await;
        });
        // The helpers' own client does not check a TLS server's test certificate; the tests
        // of TLS itself use clients that do.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(config.baton.tls.is_some())
            .build()
            .expect("client");
        IdentityServer {
            base,
            state,
            default_domain_id: config.identity.default_domain_id.clone(),
            config,
            store,
            client,
            admin_user_id: report.user_id.clone(),
            admin_project_id: report.project_id.clone().expect("admin project"),
            secrets: Mutex::new(vec![ADMIN_PASSWORD.to_string()]),
            task,
            db,
            _dir: dir,
        }
    }

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        self.task.abort();
        self.state.store.close().await;
        self.store.close().await;
        self.db.drop_db().await;
    }

    /// Adds passwords that [`send`] must never see in a response body.
    pub fn add_secrets(&self, secrets: &[&str]) {
        let mut held = self.secrets.lock().expect("secrets");
        held.extend(secrets.iter().map(|s| s.to_string()));
    }

    /// PostgreSQL only: a database outage (`false`) and its end (`true`); see
    /// [`TestDb::set_reachable`].
    pub async fn set_database_reachable(&self, reachable: bool) {
        self.db.set_reachable(reachable).await;
    }

    /// The server's clock (a manual one only if started so).
    pub fn clock(&self) -> &Clock {
        &self.state.tokens.clock
    }

    /// Waits for the next whole second of the server's clock (jumps a manual one): tokens and
    /// revocation events carry whole seconds.
    pub async fn next_second(&self) {
        use chrono::SubsecRound;
        let next = self.clock().now().trunc_subsecs(0) + chrono::Duration::milliseconds(1020);
        self.clock().sleep_until(next).await;
    }

    /// The URL of a v3 API path, e.g. `url("users")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v3/{}", self.base, path.trim_start_matches('/'))
    }

    /// Starts another node on the same database and key repository, as a second `baton serve`
    /// behind the same load balancer would be. Dropping it stops it.
    pub async fn second_node(&self) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::open_with_clock(self.config.clone(), self.clock().clone())
            .await
            .expect("AppState::open (second node)");
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let _ = baton_server::serve(serve_state, listener).await;
        });
        Node { base, state, task }
    }

    /// Starts another node on the same database with its configuration adjusted by `tweak`
    /// (its own key repository, say), on the server's clock.
    pub async fn node_with(&self, tweak: impl FnOnce(&mut IdentityConfig)) -> Node {
        let mut config = self.config.clone();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = AppState::open_with_clock(config, self.clock().clone())
            .await
            .expect("AppState::open (node)");
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let _ = baton_server::serve(serve_state, listener).await;
        });
        Node { base, state, task }
    }

    /// Opens a transaction on the server's PostgreSQL or MariaDB database that inserts a
    /// revocation event for `audit_id` and stays open until [`HeldWrite::commit`]: a slow writer
    /// whose event takes its id before, and becomes visible after, events written meanwhile.
    pub async fn hold_revocation_event(&self, audit_id: &str) -> HeldWrite {
        use sqlx::Connection;
        let parsed = baton_store::parse_connection(&self.db.url).expect("test database URL");
        let insert = |now: &str| {
            format!(
                "INSERT INTO revocation_event (audit_id, issued_before, revoked_at) \
                 VALUES ('{audit_id}', {now}, {now})"
            )
        };
        match parsed.dialect {
            Dialect::Postgres => {
                let mut c = sqlx::PgConnection::connect(&parsed.url)
                    .await
                    .expect("PostgreSQL");
                for sql in ["BEGIN", &insert("(now() at time zone 'utc')")] {
                    sqlx::query(sql).execute(&mut c).await.expect(sql);
                }
                HeldWrite::Postgres(c)
            }
            Dialect::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&parsed.url)
                    .await
                    .expect("MariaDB");
                for sql in ["BEGIN", &insert("UTC_TIMESTAMP()")] {
                    sqlx::query(sql).execute(&mut c).await.expect(sql);
                }
                HeldWrite::MySql(c)
            }
            Dialect::Sqlite => panic!("SQLite serialises writers: there is no slow writer to hold"),
        }
    }

    /// The store's id of a role by name (global roles).
    pub async fn role_id(&self, name: &str) -> String {
        self.store
            .list_roles()
            .await
            .expect("list roles")
            .into_iter()
            .find(|r| r.name == name && r.domain_id.is_none())
            .unwrap_or_else(|| panic!("role {name} exists"))
            .id
    }

    /// Creates a global role directly in the store.
    pub async fn create_role(&self, name: &str) -> String {
        let id = baton_store::new_id();
        self.store
            .create_role(&baton_store::Role {
                id: id.clone(),
                name: name.into(),
                domain_id: None,
                description: None,
            })
            .await
            .expect("create role");
        self.state.tokens.invalidate_caches();
        id
    }

    /// Creates a domain through the store; gives its id.
    pub async fn create_domain(&self, name: &str) -> String {
        let id = baton_store::new_id();
        self.store
            .create_project(&Project {
                id: id.clone(),
                name: name.into(),
                domain_id: baton_store::ROOT_DOMAIN_ID.into(),
                parent_id: None,
                enabled: true,
                is_domain: true,
                description: None,
                extra: None,
            })
            .await
            .expect("create domain");
        id
    }

    /// Creates a project in a domain through the store; gives its id.
    pub async fn create_project(&self, name: &str, domain_id: &str) -> String {
        let id = baton_store::new_id();
        self.store
            .create_project(&Project {
                id: id.clone(),
                name: name.into(),
                domain_id: domain_id.into(),
                parent_id: Some(domain_id.into()),
                enabled: true,
                is_domain: false,
                description: None,
                extra: None,
            })
            .await
            .expect("create project");
        id
    }

    /// Creates a local user with this password; gives its id.
    pub async fn create_user(&self, name: &str, password: &str, domain_id: &str) -> String {
        self.create_user_with(name, password, domain_id, None).await
    }

    /// A user with a default project (what an unscoped password auth falls back to).
    pub async fn create_user_with(
        &self,
        name: &str,
        password: &str,
        domain_id: &str,
        default_project_id: Option<&str>,
    ) -> String {
        self.add_secrets(&[password]);
        let id = baton_store::new_id();
        self.store
            .create_local_user(
                &User {
                    id: id.clone(),
                    name: name.into(),
                    domain_id: domain_id.into(),
                    enabled: true,
                    default_project_id: default_project_id.map(str::to_string),
                    extra: None,
                    created_at: None,
                },
                Some(&hash(password)),
                chrono::Utc::now().naive_utc(),
            )
            .await
            .expect("create user");
        id
    }

    /// Grants the user the role on a project.
    pub async fn grant_project(&self, user_id: &str, project_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        self.store
            .create_assignment(&Assignment {
                kind: AssignmentType::UserProject,
                actor_id: user_id.into(),
                target_id: project_id.into(),
                role_id,
                inherited: false,
            })
            .await
            .expect("grant");
        self.state.tokens.invalidate_caches();
    }

    /// Grants the user the role on a domain.
    pub async fn grant_domain(&self, user_id: &str, domain_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        self.store
            .create_assignment(&Assignment {
                kind: AssignmentType::UserDomain,
                actor_id: user_id.into(),
                target_id: domain_id.into(),
                role_id,
                inherited: false,
            })
            .await
            .expect("grant");
        self.state.tokens.invalidate_caches();
    }

    /// Grants the user the role on the system.
    pub async fn grant_system(&self, user_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        self.store
            .create_system_assignment(&SystemAssignment {
                is_group: false,
                actor_id: user_id.into(),
                role_id,
                inherited: false,
            })
            .await
            .expect("grant");
        self.state.tokens.invalidate_caches();
    }

    /// Points the identity service's endpoints (in the catalog) at `url`, e.g. a proxy that
    /// counts or breaks the calls clients make to the identity server.
    pub async fn set_identity_endpoint_url(&self, url: &str) {
        let services = self.store.list_services().await.expect("services");
        let identity: Vec<String> = services
            .into_iter()
            .filter(|s| s.service_type == "identity")
            .map(|s| s.id)
            .collect();
        for mut ep in self.store.list_endpoints().await.expect("endpoints") {
            if identity.contains(&ep.service_id) {
                ep.url = url.to_string();
                self.store
                    .update_endpoint(&ep)
                    .await
                    .expect("update endpoint");
            }
        }
        self.state.tokens.invalidate_caches();
    }

    /// Issues a token by password (user in the default domain unless `user_domain_id` given)
    /// for `scope` (a Keystone `scope` object, or `Value::Null` for the default).
    pub async fn token(&self, user_name: &str, password: &str, scope: Value) -> String {
        self.token_in(user_name, &self.default_domain_id.clone(), password, scope)
            .await
    }

    /// Issues a token by password for a user of that domain; gives the token.
    pub async fn token_in(
        &self,
        user_name: &str,
        user_domain_id: &str,
        password: &str,
        scope: Value,
    ) -> String {
        let mut auth = json!({
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user_name, "domain": {"id": user_domain_id}, "password": password}}}
        });
        if !scope.is_null() {
            auth["scope"] = scope;
        }
        let resp = self
            .client
            .post(self.url("auth/tokens"))
            .json(&json!({ "auth": auth }))
            .send()
            .await
            .expect("POST /v3/auth/tokens");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "token for {user_name}: {}",
            resp.text().await.unwrap_or_default()
        );
        resp.headers()
            .get("x-subject-token")
            .expect("X-Subject-Token")
            .to_str()
            .expect("ascii")
            .to_string()
    }

    /// The bootstrap admin, scoped to the admin project (what `openstack` uses by default).
    pub async fn admin_token(&self) -> String {
        self.token(
            "admin",
            ADMIN_PASSWORD,
            json!({"project": {"id": self.admin_project_id}}),
        )
        .await
    }

    /// The bootstrap admin, system-scoped.
    pub async fn system_admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD, json!({"system": {"all": true}}))
            .await
    }

    /// `GET /v3/auth/tokens` of `subject` as the system admin: the status and the body (`Null`
    /// when it is not JSON).
    pub async fn validation(&self, subject: &str) -> (u16, Value) {
        let checker = self.system_admin_token().await;
        let resp = self
            .client
            .get(self.url("auth/tokens"))
            .header("x-auth-token", &checker)
            .header("x-subject-token", subject)
            .send()
            .await
            .expect("validate");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// An answer that may issue a token: its status, JSON body (`Null` when not JSON) and
/// `X-Subject-Token` (empty when absent).
pub async fn token_answer(resp: reqwest::Response) -> (reqwest::StatusCode, Value, String) {
    let status = resp.status();
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        token,
    )
}

/// One API request with an optional `X-Auth-Token`; the status and JSON body (`Null` when
/// empty). Every body is checked for the server's known passwords.
pub async fn send(
    s: &IdentityServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s.client.request(method, s.url(path));
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    for secret in s.secrets.lock().expect("secrets").iter() {
        assert!(
            !text.contains(secret.as_str()),
            "a password in a response: {text}"
        );
    }
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
    };
    (status, body)
}

/// [`send`] with a token.
pub async fn call(
    s: &IdentityServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(s, method, path, Some(token), body).await
}

/// The `name`s of a JSON array of roles (or any named objects), sorted.
pub fn sorted_names(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect();
    out.sort();
    out
}

/// Asserts the status and Keystone's error shape; returns the message.
pub fn error(status: StatusCode, body: &Value, want: u16) -> String {
    assert_eq!(status.as_u16(), want, "status; body {body}");
    assert_eq!(body["error"]["code"], json!(want), "{body}");
    assert!(body["error"]["title"].is_string(), "{body}");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

/// Scope helpers for [`IdentityServer::token`].
pub fn project_scope(project_id: &str) -> Value {
    json!({"project": {"id": project_id}})
}

/// A `scope` on this domain.
pub fn domain_scope(domain_id: &str) -> Value {
    json!({"domain": {"id": domain_id}})
}

/// A `scope` on the whole system.
pub fn system_scope() -> Value {
    json!({"system": {"all": true}})
}

/// Runs each named `async fn(Dialect)` as three tests, `<name>::sqlite`, `<name>::postgres` and
/// `<name>::mariadb`, so every scenario is checked on every backend Baton supports.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::DbDialect::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::DbDialect::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mariadb() {
                    super::$name($crate::DbDialect::MySql).await
                }
            }
        )*
    };
}

/// A client as slow as an attacker likes, on a raw socket: for tests of header and body
/// timeouts in the identity server and the proxy. Every wait is bounded.
pub mod slow_client {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A connection to `addr`, made within 5 s.
    pub async fn connect(addr: &str) -> TcpStream {
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect")
    }

    /// Writes `head` on a fresh connection, then one byte every `every` until the peer closes the
    /// connection (end of stream or reset) or `cap` passes. Returns when the peer closed, counted
    /// from the end of `head` (`None`: still open at `cap`), and what it sent before.
    pub async fn trickle(
        addr: &str,
        head: &[u8],
        every: Duration,
        cap: Duration,
    ) -> (Option<Duration>, Vec<u8>) {
        let (mut rd, mut wr) = connect(addr).await.into_split();
        wr.write_all(head).await.expect("head");
        let start = Instant::now();
        let mut reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return (start.elapsed(), got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                r = &mut reader => {
                    let (at, got) = r.expect("reader");
                    return (Some(at), got);
                }
                _ = tick.tick() => {
                    if start.elapsed() > cap {
                        reader.abort();
                        return (None, Vec::new());
                    }
                    // Fails once the peer is gone; the reader reports that.
                    let _ = wr.write_all(b"1").await;
                }
            }
        }
    }

    /// The connection cap at work: fills `slots` connections with half-sent request heads (held
    /// well within a 30 s header timeout), checks that one more connection sending `request` is
    /// not answered within a second, frees one slot, and returns the answer it then gets.
    pub async fn answer_after_a_slot_frees(
        addr: &str,
        slots: usize,
        request: &str,
        cap: Duration,
    ) -> String {
        let partial = request.split("\r\n").next().unwrap_or("GET / HTTP/1.1");
        let mut holders = Vec::new();
        for _ in 0..slots {
            let mut c = connect(addr).await;
            c.write_all(format!("{partial}\r\n").as_bytes())
                .await
                .expect("partial head");
            holders.push(c);
        }
        let mut extra = connect(addr).await;
        extra.write_all(request.as_bytes()).await.expect("request");
        let mut buf = [0u8; 512];
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf)).await {
            let n = r.unwrap_or(0);
            panic!(
                "a connection was served beyond max_connections = {slots}: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        drop(holders.pop());
        let mut answer = Vec::new();
        tokio::time::timeout(cap, extra.read_to_end(&mut answer))
            .await
            .expect("the waiting connection is served once a slot frees")
            .expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    }
}
