//! baton-authtoken against a real Baton identity server on loopback.
//!
//! Each test starts a `baton-testkit` identity server in-process on `127.0.0.1:0` (temporary
//! SQLite and Fernet keys, bootstrapped like `baton manage bootstrap`) behind a small counting
//! proxy: the
//! catalog's identity endpoints and the middleware's `auth_url` point at the proxy, which counts
//! token validations (`GET /v3/auth/tokens`), can answer 500/401 on demand, and can be stopped
//! (every response closes its connection, so a stopped proxy refuses connections at once).
//!
//! Users: `alice` (member on `demo` and on the default domain), `nova` (role `service` on
//! `service`: a proper sender of service tokens), `plain` (member on `service`: a valid token
//! without the service role) and `cinder` (role `service`: the middleware's own user). Tokens of
//! any expiry are minted with the server's key repository, as another identity node would.
//!
//! Behind the layer a tiny axum app echoes the headers and the `IdentityContext` it received.
//! Every wait is bounded.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "authtoken/access_rules.rs"]
mod access_rules;
#[path = "authtoken/fuzz_corpus.rs"]
mod fuzz_corpus;
#[path = "authtoken/memcache.rs"]
mod memcache;
#[path = "authtoken/onward.rs"]
mod onward;
#[path = "authtoken/security.rs"]
mod security;
#[path = "authtoken/tls.rs"]
mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use baton_authtoken::{
    AuthTokenConfig, AuthTokenConfigBuilder, AuthTokenLayer, Authenticator, FailureReason,
    IdentityContext, SharedCacheConfig,
};
use baton_client::{DomainRef, HttpOptions, Password, RetryPolicy, Scope, Url, UserRef};
use baton_testkit::{DbDialect, IdentityServer};
use baton_token::{
    random_audit_id, KeyRepository, KeyRing, PayloadCodec, Scope as TokenScope, TokenFormatter,
    TokenPayload,
};
use chrono::Utc;
use serde_json::{json, Value};

const NOVA_PW: &str = "N0va-Secret-p3Wq8";
const CINDER_PW: &str = "C1nder-Secret-m5Tz1";
const USER_PW: &str = "Us3r-Secret-k1Lm9";
const WWW_URI: &str = "http://keystone.example:5000/v3";
/// The server's `[token] allow_expired_window` in these tests.
const WINDOW: i64 = 30;
const BODY_401: &str = r#"{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}"#;
const MSG_503: &str = "The Keystone service is temporarily unavailable.";
/// The Redis the shared-cache tests use: `BATON_TEST_REDIS_URL` (set by `scripts/test-all.sh`
/// when it starts a throwaway one), else the machine's on 6379.
fn redis_url() -> String {
    std::env::var("BATON_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// Every line the middleware logs, at trace level, is scanned for tokens and passwords when the
/// test's identity server is dropped (`baton_testkit::capture_logs`).
fn init_tracing() {
    baton_testkit::capture_logs();
}

// ----- the counting proxy in front of the identity server --------------------------------------

const PASS: u8 = 0;
const ERROR_500: u8 = 1;
const UNAUTHORIZED: u8 = 2;

struct ProxyState {
    target: String,
    client: reqwest::Client,
    validations: AtomicUsize,
    auths: AtomicUsize,
    mode: AtomicU8,
    /// With UNAUTHORIZED: how many validations to refuse (then pass again).
    refuse_left: AtomicUsize,
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("connection", "close".parse().expect("value"));
    resp
}

async fn forward(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if path == "/v3/auth/tokens" && method == axum::http::Method::GET {
        st.validations.fetch_add(1, Ordering::SeqCst);
        match st.mode.load(Ordering::SeqCst) {
            ERROR_500 => {
                return closing(
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({"error": {"code": 500, "title": "Internal Server Error", "message": "boom"}})),
                    )
                        .into_response(),
                )
            }
            UNAUTHORIZED => {
                let left = st.refuse_left.load(Ordering::SeqCst);
                if left > 0 {
                    st.refuse_left.fetch_sub(1, Ordering::SeqCst);
                    return closing(
                        (
                            StatusCode::UNAUTHORIZED,
                            Json(json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})),
                        )
                            .into_response(),
                    );
                }
            }
            _ => {}
        }
    }
    if path == "/v3/auth/tokens" && method == axum::http::Method::POST {
        st.auths.fetch_add(1, Ordering::SeqCst);
    }
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .expect("request body");
    let mut rb = st
        .client
        .request(method, format!("{}{path_q}", st.target))
        .body(body);
    for (k, v) in headers.iter() {
        if !matches!(k.as_str(), "host" | "content-length" | "connection") {
            rb = rb.header(k, v);
        }
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return closing((StatusCode::BAD_GATEWAY, e.to_string()).into_response()),
    };
    let status = resp.status();
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers().iter() {
        if !matches!(
            k.as_str(),
            "transfer-encoding" | "connection" | "content-length"
        ) {
            out = out.header(k, v);
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    closing(out.body(axum::body::Body::from(bytes)).expect("response"))
}

struct Proxy {
    base: String,
    state: Arc<ProxyState>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    fn validations(&self) -> usize {
        self.state.validations.load(Ordering::SeqCst)
    }

    fn auths(&self) -> usize {
        self.state.auths.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: u8, refuse: usize) {
        self.state.refuse_left.store(refuse, Ordering::SeqCst);
        self.state.mode.store(mode, Ordering::SeqCst);
    }

    /// Stops accepting: later connections are refused.
    fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----- the identity server -------------------------------------------------------------------

struct Ids {
    admin: String,
    alice: String,
    nova: String,
    plain: String,
    demo: String,
    service_project: String,
}

struct Identity {
    base: String,
    proxy: Proxy,
    ids: Ids,
    key_dir: std::path::PathBuf,
    max_keys: usize,
    methods: Vec<String>,
    /// The server itself (dropping it stops it).
    server: IdentityServer,
}

impl Identity {
    /// A testkit identity server whose catalog sends clients through the counting proxy.
    async fn start() -> Identity {
        Identity::start_with(|_| {}).await
    }

    /// [`Identity::start`], with `tweak` adjusting the server's configuration.
    async fn start_with(tweak: impl FnOnce(&mut baton_config::IdentityConfig)) -> Identity {
        init_tracing();
        let server = IdentityServer::start_with(DbDialect::Sqlite, |c| {
            c.token.allow_expired_window = WINDOW as u32;
            tweak(c);
        })
        .await;
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let proxy_base = format!("http://{}", proxy_listener.local_addr().expect("addr"));
        server
            .set_identity_endpoint_url(&format!("{proxy_base}/v3"))
            .await;
        let dom = server.default_domain_id.clone();
        let demo = server.create_project("demo", &dom).await;
        let service = server.create_project("service", &dom).await;
        let alice = server
            .create_user_with("alice", USER_PW, &dom, Some(&demo))
            .await;
        let nova = server.create_user("nova", NOVA_PW, &dom).await;
        let plain = server.create_user("plain", USER_PW, &dom).await;
        let cinder = server.create_user("cinder", CINDER_PW, &dom).await;
        server.grant_project(&alice, &demo, "member").await;
        server.grant_domain(&alice, &dom, "member").await;
        server.grant_project(&nova, &service, "service").await;
        server.grant_project(&plain, &service, "member").await;
        server.grant_project(&cinder, &service, "service").await;

        let proxy_state = Arc::new(ProxyState {
            target: server.base.clone(),
            client: reqwest::Client::new(),
            validations: AtomicUsize::new(0),
            auths: AtomicUsize::new(0),
            mode: AtomicU8::new(PASS),
            refuse_left: AtomicUsize::new(0),
        });
        let router = Router::new()
            .fallback(any(forward))
            .with_state(proxy_state.clone());
        let proxy_task = tokio::spawn(async move {
            let _ = axum::serve(proxy_listener, router).await;
        });
        Identity {
            base: server.base.clone(),
            proxy: Proxy {
                base: proxy_base,
                state: proxy_state,
                task: Mutex::new(Some(proxy_task)),
            },
            ids: Ids {
                admin: server.admin_user_id.clone(),
                alice,
                nova,
                plain,
                demo,
                service_project: service,
            },
            key_dir: server.config.fernet_tokens.key_repository.clone(),
            max_keys: server.config.fernet_tokens.max_active_keys as usize,
            methods: server.config.auth.methods.clone(),
            server,
        }
    }

    /// A token minted with the server's keys, expiring `expires_in` seconds from now (negative:
    /// already expired).
    fn mint(&self, user_id: &str, scope: TokenScope, expires_in: i64) -> String {
        let ring = KeyRing::load(KeyRepository::new(&self.key_dir, self.max_keys)).expect("keys");
        TokenFormatter::new(
            ring,
            PayloadCodec::new(self.methods.clone(), "default".into()),
        )
        .create_token(&TokenPayload {
            user_id: user_id.into(),
            methods: vec!["password".into()],
            expires_at: (Utc::now().timestamp() + expires_in) as f64,
            audit_ids: vec![random_audit_id()],
            scope,
        })
        .expect("mint")
    }

    fn alice(&self, expires_in: i64) -> String {
        self.mint(
            &self.ids.alice,
            TokenScope::Project {
                project_id: self.ids.demo.clone(),
            },
            expires_in,
        )
    }

    fn nova(&self, expires_in: i64) -> String {
        self.mint(
            &self.ids.nova,
            TokenScope::Project {
                project_id: self.ids.service_project.clone(),
            },
            expires_in,
        )
    }

    fn plain(&self) -> String {
        self.mint(
            &self.ids.plain,
            TokenScope::Project {
                project_id: self.ids.service_project.clone(),
            },
            3600,
        )
    }

    /// Revokes `token` with itself as the caller (Keystone's `token_subject` rule).
    async fn revoke(&self, token: &str) {
        let resp = reqwest::Client::new()
            .delete(format!("{}/v3/auth/tokens", self.base))
            .header("x-auth-token", token)
            .header("x-subject-token", token)
            .send()
            .await
            .expect("DELETE");
        assert_eq!(resp.status(), 204, "revoke");
    }

    /// keystonemiddleware-like settings for the `cinder` service user, with fast retries and the
    /// reason header on.
    fn config(&self) -> AuthTokenConfigBuilder {
        let v3 = Url::parse(&format!("{}/v3", self.proxy.base)).expect("url");
        let plugin = Password::new(
            v3,
            UserRef::name("cinder", DomainRef::Name("Default".into())),
            CINDER_PW,
        )
        .with_scope(Scope::project_name(
            "service",
            DomainRef::Id("default".into()),
        ));
        AuthTokenConfig::builder(Arc::new(plugin))
            .www_authenticate_uri(WWW_URI)
            .http_options(HttpOptions {
                connect_timeout: Duration::from_secs(1),
                timeout: Some(Duration::from_secs(3)),
                retry: RetryPolicy {
                    connect_retries: 1,
                    status_retries: 0,
                    retry_statuses: vec![],
                    initial_delay: Duration::from_millis(100),
                    max_delay: Duration::from_millis(200),
                },
                ..HttpOptions::default()
            })
            .allow_expired_window(Duration::from_secs(WINDOW as u64))
            .expose_failure_reason(true)
            // The tests of caches and faults count keystonemiddleware's calls, one per token;
            // `decision_table` and `token_pairs_*` turn pair validation on.
            .validate_token_pairs(false)
    }
}

// ----- the echo app behind the layer -------------------------------------------------------------

async fn echo(req: Request) -> Json<Value> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let ctx = req.extensions().get::<IdentityContext>().map(|c| {
        json!({
            "value": serde_json::to_value(c).expect("serialize"),
            "is_service_request": c.is_service_request(),
            "is_authenticated": c.is_authenticated(),
            "debug": format!("{c:?}"),
        })
    });
    Json(json!({"headers": headers, "context": ctx}))
}

async fn deny() -> Response {
    (StatusCode::UNAUTHORIZED, "no").into_response()
}

#[derive(Clone)]
struct App {
    base: String,
    client: reqwest::Client,
    auth: Authenticator,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    raw: String,
}

impl Reply {
    /// The single value of a header the app received (panics on repeats).
    fn seen(&self, name: &str) -> Option<String> {
        let v = self.body["headers"][name].as_array()?;
        assert_eq!(
            v.len(),
            1,
            "header {name} reached the app {} times",
            v.len()
        );
        Some(v[0].as_str().expect("string").to_string())
    }

    fn ctx(&self) -> &Value {
        &self.body["context"]
    }

    fn reason(&self) -> Option<String> {
        self.headers
            .get("x-auth-failure-reason")
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    fn failure_reasons(&self) -> Vec<String> {
        self.ctx()["value"]["failure_reasons"]
            .as_array()
            .expect("failure_reasons")
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect()
    }
}

impl App {
    async fn start(config: AuthTokenConfig) -> App {
        let auth = Authenticator::new(config).expect("Authenticator::new");
        let router = Router::new()
            .route("/echo", any(echo))
            .route("/deny", any(deny))
            .layer(AuthTokenLayer::new(auth.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        App {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            auth,
        }
    }

    async fn call(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut rb = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("request to the app");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.text().await.expect("body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    async fn get(&self, headers: &[(&str, &str)]) -> Reply {
        self.call("/echo", headers).await
    }

    /// A request with the user token and, if given, the service token.
    async fn pair(&self, user: &str, service: Option<&str>) -> Reply {
        let mut h = vec![("x-auth-token", user)];
        if let Some(s) = service {
            h.push(("x-service-token", s));
        }
        self.get(&h).await
    }
}

#[track_caller]
fn assert_401(r: &Reply, reasons: &str) {
    assert_eq!(r.status, 401, "status; body {}", r.raw);
    assert_eq!(r.raw, BODY_401);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(format!("Keystone uri=\"{WWW_URI}\"").as_str())
    );
    assert_eq!(r.reason().as_deref(), Some(reasons), "reason header");
}

#[track_caller]
fn assert_503(r: &Reply, reason: &str) {
    assert_eq!(r.status, 503, "status; body {}", r.raw);
    let v: Value = serde_json::from_str(&r.raw).expect("JSON body");
    assert_eq!(
        v,
        json!({"error": {"code": 503, "title": "Service Unavailable", "message": MSG_503}})
    );
    assert_eq!(r.reason().as_deref(), Some(reason), "reason header");
    assert!(r.header("www-authenticate").is_none());
}

// ----- the decision table --------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum U {
    Valid,
    ExpiredInWindow,
    ExpiredPastWindow,
    Revoked,
    Malformed,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sv {
    Absent,
    WithRole,
    WithoutRole,
    Expired,
    Malformed,
}

struct Expect {
    status: u16,
    user: &'static str,
    service: Option<&'static str>,
    reasons: Vec<&'static str>,
    service_request: bool,
}

/// keystonemiddleware 13's outcome, with Baton's reasons.
fn expect(u: U, s: Sv, required: bool, delay: bool) -> Expect {
    let mut reasons = Vec::new();
    let (service, role_ok) = match s {
        Sv::Absent => (None, false),
        Sv::WithRole => (Some("Confirmed"), true),
        Sv::WithoutRole if required => {
            reasons.push("service_token_missing_role");
            (Some("Invalid"), false)
        }
        Sv::WithoutRole => (Some("Confirmed"), false),
        Sv::Expired => {
            reasons.push("service_token_expired");
            (Some("Invalid"), false)
        }
        Sv::Malformed => {
            reasons.push("service_token_invalid");
            (Some("Invalid"), false)
        }
    };
    let user_ok = match u {
        U::Valid => true,
        U::ExpiredInWindow if role_ok => true,
        U::ExpiredInWindow => {
            reasons.push("user_token_expired");
            false
        }
        U::ExpiredPastWindow | U::Revoked | U::Malformed => {
            reasons.push("user_token_invalid");
            false
        }
        U::Missing => {
            reasons.push("user_token_missing");
            false
        }
    };
    let ok = user_ok && service != Some("Invalid");
    Expect {
        status: if ok || delay { 200 } else { 401 },
        user: if user_ok { "Confirmed" } else { "Invalid" },
        service,
        reasons,
        service_request: service == Some("Confirmed") && role_ok,
    }
}

/// The 120 cases with one identity call per token (`validate_token_pairs = false`, what
/// keystonemiddleware does) and with the pair validated in one call: the same outcomes, and
/// fewer identity calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decision_table() {
    let id = Identity::start().await;
    let (two, no_pairs) = decision_table_with(&id, false).await;
    assert_eq!(no_pairs, 0);
    let (singles, pairs) = decision_table_with(&id, true).await;
    assert!(pairs > 0);
    println!(
        "decision table: {two} identity calls with one per token; {} ({pairs} pair calls + {singles} single) with pair validation",
        pairs + singles
    );
    assert!(pairs + singles < two, "{two} vs {pairs} + {singles}");
    // Each expired user token accepted because of a service token left a record naming both.
    let log = baton_testkit::captured_text();
    let record = log
        .lines()
        .find(|l| l.contains("expired user token accepted for a service"))
        .expect("a record of an expired user token accepted");
    assert!(
        record.contains("user_id=")
            && record.contains("service_user_id=")
            && record.contains("expired_for_seconds="),
        "{record}"
    );
}

/// Pair validation applies the server's per-sender windows (`[token_pairs] expired_windows`):
/// nova's service token gets alice's token accepted by cinder (the layer's user) 10 s past its
/// expiry, not the 30 s of `allow_expired_window`, which still applies to the two-call path.
/// With caching off, a pair costs one identity call instead of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_pairs_apply_the_servers_sender_windows_in_one_call() {
    let id = Identity::start_with(|c| {
        c.token_pairs.expired_windows = vec![("nova".into(), "cinder".into(), 10)];
    })
    .await;
    let nova = id.nova(3600);
    let (recent, older) = (id.alice(-5), id.alice(-20));
    let uncached = |pairs: bool| {
        id.config()
            .validate_token_pairs(pairs)
            .token_cache_time(None)
            .build()
            .expect("config")
    };
    let pairs = App::start(uncached(true)).await;
    let two = App::start(uncached(false)).await;
    assert_eq!(pairs.pair(&recent, Some(&nova)).await.status, 200);
    assert_401(&pairs.pair(&older, Some(&nova)).await, "user_token_expired");
    let r = two.pair(&older, Some(&nova)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(two.pair(&recent, Some(&nova)).await.status, 200);
    let (p, t) = (pairs.auth.metrics(), two.auth.metrics());
    assert_eq!((p.identity_pair_calls(), p.identity_calls()), (2, 0));
    assert_eq!((t.identity_pair_calls(), t.identity_calls()), (0, 4));
}

/// Runs the 120 cases; the identity calls made: single validations and pair validations.
async fn decision_table_with(id: &Identity, pairs: bool) -> (u64, u64) {
    let mut calls = (0, 0);
    let revoked = id.alice(3600);
    id.revoke(&revoked).await;
    let users = [
        (U::Valid, Some(id.alice(3600))),
        (U::ExpiredInWindow, Some(id.alice(-5))),
        (U::ExpiredPastWindow, Some(id.alice(-(WINDOW + 60)))),
        (U::Revoked, Some(revoked)),
        (U::Malformed, Some("gAAAAABnot-a-real-token".to_string())),
        (U::Missing, None),
    ];
    let services = [
        (Sv::Absent, None),
        (Sv::WithRole, Some(id.nova(3600))),
        (Sv::WithoutRole, Some(id.plain())),
        (Sv::Expired, Some(id.nova(-5))),
        (Sv::Malformed, Some("definitely-not-a-token".to_string())),
    ];
    let mut cases = 0;
    for required in [true, false] {
        for delay in [false, true] {
            let app = App::start(
                id.config()
                    .service_token_roles_required(required)
                    .delay_auth_decision(delay)
                    .validate_token_pairs(pairs)
                    .build()
                    .expect("config"),
            )
            .await;
            for (u, user_token) in &users {
                for (s, service_token) in &services {
                    let label =
                        format!("user {u:?}, service {s:?}, required {required}, delay {delay}");
                    let mut h = Vec::new();
                    if let Some(t) = user_token {
                        h.push(("x-auth-token", t.as_str()));
                    }
                    if let Some(t) = service_token {
                        h.push(("x-service-token", t.as_str()));
                    }
                    let r = app.get(&h).await;
                    let e = expect(*u, *s, required, delay);
                    assert_eq!(r.status, e.status, "{label}: status; body {}", r.raw);
                    cases += 1;
                    if e.status == 401 {
                        assert_401(&r, &e.reasons.join(","));
                        continue;
                    }
                    assert!(r.reason().is_none(), "{label}: reason header on a 200");
                    assert_eq!(
                        r.seen("x-identity-status").as_deref(),
                        Some(e.user),
                        "{label}: X-Identity-Status"
                    );
                    assert_eq!(
                        r.seen("x-service-identity-status").as_deref(),
                        e.service,
                        "{label}: X-Service-Identity-Status"
                    );
                    assert_eq!(r.failure_reasons(), e.reasons, "{label}: failure_reasons");
                    assert_eq!(
                        r.ctx()["is_service_request"],
                        json!(e.service_request),
                        "{label}: is_service_request"
                    );
                    assert_eq!(
                        r.ctx()["is_authenticated"],
                        json!(e.reasons.is_empty()),
                        "{label}: is_authenticated"
                    );
                    if e.user == "Confirmed" {
                        assert_eq!(r.seen("x-user-id").as_deref(), Some(id.ids.alice.as_str()));
                        assert_eq!(
                            r.seen("x-project-id").as_deref(),
                            Some(id.ids.demo.as_str())
                        );
                        let roles = r.seen("x-roles").expect("X-Roles");
                        assert!(roles.split(',').any(|x| x == "member"), "{label}: {roles}");
                        assert_eq!(
                            r.ctx()["value"]["user"]["accepted_expired"],
                            json!(*u == U::ExpiredInWindow),
                            "{label}"
                        );
                    } else {
                        assert!(r.seen("x-user-id").is_none(), "{label}: X-User-Id");
                        assert!(r.seen("x-roles").is_none(), "{label}: X-Roles");
                        assert!(r.ctx()["value"]["user"].is_null());
                    }
                    if e.service == Some("Confirmed") {
                        let who = if *s == Sv::WithRole {
                            &id.ids.nova
                        } else {
                            &id.ids.plain
                        };
                        assert_eq!(r.seen("x-service-user-id").as_deref(), Some(who.as_str()));
                        let roles = r.seen("x-service-roles").expect("X-Service-Roles");
                        assert_eq!(
                            roles.split(',').any(|x| x == "service"),
                            *s == Sv::WithRole,
                            "{label}: {roles}"
                        );
                    } else {
                        assert!(r.seen("x-service-user-id").is_none(), "{label}");
                        assert!(r.seen("x-service-roles").is_none(), "{label}");
                    }
                }
            }
            // Every refusal was counted under its reasons.
            let text = app.auth.metrics().render_prometheus();
            assert!(
                text.contains("baton_authtoken_failures_total{reason=\"user_token_missing\"} ")
                    && !text.contains("reason=\"user_token_missing\"} 0\n"),
                "{text}"
            );
            let m = app.auth.metrics();
            assert_eq!(
                m.confirmed() + m.rejected_401() + m.forwarded_unconfirmed(),
                30,
                "{text}"
            );
            if required {
                assert!(m.reason_count(FailureReason::ServiceTokenMissingRole) > 0);
            }
            calls.0 += m.identity_calls();
            calls.1 += m.identity_pair_calls();
        }
    }
    assert_eq!(cases, 120);
    calls
}

// ----- headers for proxied services --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn headers_and_context_for_downstream() {
    let id = Identity::start().await;
    let app = App::start(id.config().build().expect("config")).await;
    let user = id.alice(3600);
    let svc = id.nova(3600);
    let r = app.pair(&user, Some(&svc)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    for (name, want) in [
        ("x-identity-status", "Confirmed"),
        ("x-service-identity-status", "Confirmed"),
        ("x-user-id", id.ids.alice.as_str()),
        ("x-user-name", "alice"),
        ("x-user-domain-id", "default"),
        ("x-user-domain-name", "Default"),
        ("x-project-id", id.ids.demo.as_str()),
        ("x-project-name", "demo"),
        ("x-project-domain-id", "default"),
        ("x-project-domain-name", "Default"),
        ("x-is-admin-project", "True"),
        ("x-user", "alice"),
        ("x-tenant-id", id.ids.demo.as_str()),
        ("x-tenant-name", "demo"),
        ("x-tenant", "demo"),
        ("x-service-user-id", id.ids.nova.as_str()),
        ("x-service-user-name", "nova"),
        ("x-service-user-domain-id", "default"),
        ("x-service-user-domain-name", "Default"),
        ("x-service-project-id", id.ids.service_project.as_str()),
        ("x-service-project-name", "service"),
        ("x-service-project-domain-id", "default"),
        ("x-service-project-domain-name", "Default"),
        ("x-service-roles", "service"),
        // The tokens themselves go on (oslo.context reads X-Service-Token).
        ("x-auth-token", user.as_str()),
        ("x-service-token", svc.as_str()),
    ] {
        assert_eq!(r.seen(name).as_deref(), Some(want), "{name}");
    }
    assert_eq!(r.seen("x-roles"), r.seen("x-role"));
    assert!(r.seen("openstack-system-scope").is_none());
    assert!(r.seen("x-domain-id").is_none());
    // The catalog in the v2 form.
    let catalog: Value =
        serde_json::from_str(&r.seen("x-service-catalog").expect("catalog")).expect("catalog JSON");
    let identity = catalog
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["type"] == "identity")
        .expect("identity service");
    assert_eq!(identity["name"], "keystone");
    let ep = &identity["endpoints"][0];
    assert_eq!(ep["region"], "RegionOne");
    assert_eq!(ep["publicURL"], json!(format!("{}/v3", id.proxy.base)));
    assert_eq!(ep["internalURL"], json!(format!("{}/v3", id.proxy.base)));
    // The typed context.
    let ctx = &r.ctx()["value"];
    assert_eq!(ctx["identity_status"], "Confirmed");
    assert_eq!(ctx["user"]["user_name"], "alice");
    assert_eq!(ctx["user"]["project_name"], "demo");
    assert_eq!(ctx["user"]["is_admin_project"], true);
    assert_eq!(ctx["service"]["user_name"], "nova");
    assert_eq!(ctx["service"]["roles"], json!(["service"]));
    assert_eq!(r.ctx()["is_service_request"], true);
    // Debug shows fingerprints, never the tokens.
    let debug = r.ctx()["debug"].as_str().expect("debug");
    assert!(!debug.contains(&user) && !debug.contains(&svc), "{debug}");
    assert!(
        debug.contains(&baton_client::token_fingerprint(&user)),
        "{debug}"
    );

    // Domain scope, system scope, X-Storage-Token.
    let domain = id.mint(
        &id.ids.alice,
        TokenScope::Domain {
            domain_id: "default".into(),
        },
        3600,
    );
    let r = app.get(&[("x-storage-token", &domain)]).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.seen("x-domain-id").as_deref(), Some("default"));
    assert_eq!(r.seen("x-domain-name").as_deref(), Some("Default"));
    assert!(r.seen("x-project-id").is_none() && r.seen("x-tenant-id").is_none());
    let system = id.mint(
        &id.ids.admin,
        TokenScope::System {
            system: "all".into(),
        },
        3600,
    );
    let r = app.get(&[("x-auth-token", &system)]).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.seen("openstack-system-scope").as_deref(), Some("all"));
    assert!(r
        .seen("x-roles")
        .expect("roles")
        .split(',')
        .any(|x| x == "admin"));
    assert_eq!(r.ctx()["value"]["user"]["system_scope"], "all");

    // A 401 of the app itself gets WWW-Authenticate.
    let r = app.call("/deny", &[("x-auth-token", &user)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(format!("Keystone uri=\"{WWW_URI}\"").as_str())
    );
    assert!(r.reason().is_none());
    // ... and, under delay_auth_decision, the reasons the app was not told about.
    let delayed = App::start(
        id.config()
            .delay_auth_decision(true)
            .build()
            .expect("config"),
    )
    .await;
    let r = delayed.call("/deny", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(r.reason().as_deref(), Some("user_token_missing"));

    // Without the catalog, and without the reason header.
    let quiet = App::start(
        id.config()
            .include_service_catalog(false)
            .expose_failure_reason(false)
            .build()
            .expect("config"),
    )
    .await;
    let r = quiet.pair(&user, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.seen("x-service-catalog").is_none());
    let r = quiet.get(&[]).await;
    assert_eq!(r.status, 401);
    assert!(r.reason().is_none());
    assert_eq!(r.raw, BODY_401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spoofed_identity_headers_never_reach_the_app() {
    let id = Identity::start().await;
    let spoofs = [
        ("x-roles", "admin"),
        ("x_roles", "admin"),
        ("x-role", "admin"),
        ("x-service-roles", "service"),
        ("X-Service-Identity-Status", "Confirmed"),
        ("x-identity-status", "Confirmed"),
        ("x-user-id", "evil"),
        ("x-service-user-id", "evil"),
        ("x_service_project_id", "evil"),
        ("x-tenant-id", "evil"),
        ("x-project-id", "evil"),
        ("x-is-admin-project", "True"),
        ("openstack-system-scope", "all"),
        ("x-service-catalog", "[]"),
        ("x-domain-id", "evil"),
        ("x-continuation-actor-id", "evil"),
        ("X_Continuation_Actor_Name", "evil"),
    ];
    let app = App::start(id.config().build().expect("config")).await;
    let user = id.alice(3600);
    let mut h: Vec<(&str, &str)> = spoofs.to_vec();
    h.push(("x-auth-token", &user));
    let r = app.get(&h).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let roles = r.seen("x-roles").expect("X-Roles");
    assert!(!roles.contains("admin"), "{roles}");
    assert_eq!(r.seen("x-identity-status").as_deref(), Some("Confirmed"));
    assert_eq!(r.seen("x-user-id").as_deref(), Some(id.ids.alice.as_str()));
    assert_eq!(
        r.seen("x-project-id").as_deref(),
        Some(id.ids.demo.as_str())
    );
    assert_eq!(r.seen("x-tenant-id").as_deref(), Some(id.ids.demo.as_str()));
    for gone in [
        "x_roles",
        "x-service-roles",
        "x-service-identity-status",
        "x-service-user-id",
        "x_service_project_id",
        "openstack-system-scope",
        "x-domain-id",
        "x-continuation-actor-id",
        "x_continuation_actor_name",
        "x-continuation-actor-name",
    ] {
        assert!(r.seen(gone).is_none(), "{gone} reached the app");
    }
    assert_eq!(r.ctx()["is_service_request"], false);

    // Unauthenticated requests let through by delay_auth_decision carry none of them either.
    let delayed = App::start(
        id.config()
            .delay_auth_decision(true)
            .build()
            .expect("config"),
    )
    .await;
    let r = delayed.get(&spoofs).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.seen("x-identity-status").as_deref(), Some("Invalid"));
    for (name, _) in spoofs {
        if name != "x-identity-status" {
            assert!(
                r.seen(&name.to_ascii_lowercase()).is_none(),
                "{name} reached the app"
            );
        }
    }
    // A service token without the role cannot lend its identity either.
    let plain = id.plain();
    let r = delayed.pair(&user, Some(&plain)).await;
    assert_eq!(
        r.seen("x-service-identity-status").as_deref(),
        Some("Invalid")
    );
    assert!(r.seen("x-service-roles").is_none());
    assert_eq!(r.failure_reasons(), ["service_token_missing_role"]);
    assert_eq!(r.ctx()["is_service_request"], false);
}

// ----- cache: expiry, revocation, contexts ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_results_honour_expiry_revocation_and_context() {
    let id = Identity::start().await;
    let app = App::start(id.config().build().expect("config")).await;

    // A token expiring in 2-3 s: cached while valid.
    let user = id.alice(3);
    let r = app.pair(&user, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let expires: chrono::DateTime<Utc> =
        serde_json::from_value(r.ctx()["value"]["user"]["expires_at"].clone()).expect("expiry");
    let before = id.proxy.validations();
    assert_eq!(app.pair(&user, None).await.status, 200);
    assert_eq!(id.proxy.validations(), before, "served from the cache");
    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    assert!(wait < Duration::from_secs(4));
    tokio::time::sleep(wait).await;

    // Expired, alone: refused, and known to be expired (the entry ended with the token).
    let r = app.pair(&user, None).await;
    assert_401(&r, "user_token_expired");
    assert_eq!(id.proxy.validations(), before + 2, "plain + diagnosis");
    // The refusal is cached for the plain context only: with a service token holding the role,
    // the same token is accepted (keystonemiddleware bug 1987355), from the allow_expired answer
    // the diagnosis cached; only the new service token is validated.
    let svc = id.nova(3600);
    let r = app.pair(&user, Some(&svc)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.ctx()["value"]["user"]["accepted_expired"], true);
    assert_eq!(r.ctx()["is_service_request"], true);
    assert_eq!(id.proxy.validations(), before + 3);
    // And alone again: still refused, from the negative cache.
    assert_401(&app.pair(&user, None).await, "user_token_expired");
    assert_eq!(id.proxy.validations(), before + 3);

    // The same order with no cache at all.
    let uncached = App::start(id.config().token_cache_time(None).build().expect("config")).await;
    let v0 = id.proxy.validations();
    assert_401(&uncached.pair(&user, None).await, "user_token_expired");
    assert_eq!(uncached.pair(&user, Some(&svc)).await.status, 200);
    assert_eq!(uncached.pair(&user, Some(&svc)).await.status, 200);
    assert_eq!(id.proxy.validations(), v0 + 2 + 2 + 2, "every request asks");

    // Revocation: the default cache keeps serving a revoked token (keystonemiddleware's lag, up
    // to token_cache_time); with token_cache_time = 1 s it stops within about a second.
    let short = App::start(
        id.config()
            .token_cache_time(Some(Duration::from_secs(1)))
            .build()
            .expect("config"),
    )
    .await;
    let token = id.alice(3600);
    assert_eq!(app.pair(&token, None).await.status, 200);
    assert_eq!(short.pair(&token, None).await.status, 200);
    id.revoke(&token).await;
    let revoked_at = Instant::now();
    loop {
        let r = short.pair(&token, None).await;
        if r.status == 401 {
            assert_401(&r, "user_token_invalid");
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_millis(2500),
            "a revoked token still works after token_cache_time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revoked_at.elapsed() <= Duration::from_millis(1600));
    assert_eq!(
        app.pair(&token, None).await.status,
        200,
        "default cache lag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_one_validation() {
    let id = Identity::start().await;
    let app = App::start(id.config().build().expect("config")).await;
    app.auth.startup_check().await.expect("startup check");
    let user = id.alice(3600);
    let svc = id.nova(3600);
    let before = id.proxy.validations();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (app, user, svc) = (app.clone(), user.clone(), svc.clone());
        tasks.spawn(async move { app.pair(&user, Some(&svc)).await });
    }
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.ctx()["is_service_request"], true);
    }
    assert_eq!(
        id.proxy.validations() - before,
        2,
        "one validation per token for 40 concurrent requests"
    );
    assert_eq!(app.auth.metrics().identity_calls(), 2);

    // The same for a bad token: one plain refusal and one diagnosis.
    let before = id.proxy.validations();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let app = app.clone();
        tasks.spawn(async move { app.pair("gAAAAAB-unknown-token", None).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_401(&r.expect("task"), "user_token_invalid");
    }
    assert_eq!(id.proxy.validations() - before, 2);
}

// ----- the identity service unavailable ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identity_failures_give_503_within_bounds() {
    let id = Identity::start().await;
    let app = App::start(id.config().build().expect("config")).await;
    let delayed = App::start(
        id.config()
            .delay_auth_decision(true)
            .build()
            .expect("config"),
    )
    .await;
    let cached = id.alice(3600);
    assert_eq!(app.pair(&cached, None).await.status, 200);
    assert_eq!(delayed.pair(&cached, None).await.status, 200);

    // The identity service errs: 503, while cached tokens keep working.
    id.proxy.set_mode(ERROR_500, 0);
    assert_503(&app.pair(&id.alice(3600), None).await, "identity_error");
    assert_503(
        &app.pair(&cached, Some(&id.nova(3600))).await,
        "identity_error",
    );
    assert_eq!(app.pair(&cached, None).await.status, 200);

    // A 401 for the middleware's own token: it authenticates again and retries once.
    let auths = id.proxy.auths();
    id.proxy.set_mode(UNAUTHORIZED, 1);
    let r = app.pair(&id.alice(3600), None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(id.proxy.auths(), auths + 1, "re-authenticated once");
    // Refused again after re-authenticating: 503.
    id.proxy.set_mode(UNAUTHORIZED, 100);
    assert_503(&app.pair(&id.alice(3600), None).await, "identity_error");
    id.proxy.set_mode(PASS, 0);

    // The identity service stopped: 503 quickly (one retry of 100 ms), Invalid when delayed.
    id.proxy.stop();
    let start = Instant::now();
    let r = app.pair(&id.alice(3600), None).await;
    assert_503(&r, "identity_unreachable");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let r = delayed.pair(&id.alice(3600), Some(&id.nova(3600))).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.seen("x-identity-status").as_deref(), Some("Invalid"));
    assert_eq!(
        r.seen("x-service-identity-status").as_deref(),
        Some("Invalid")
    );
    // Both tokens could not be checked; the reason is given once.
    assert_eq!(r.failure_reasons(), ["identity_unreachable"]);
    assert_eq!(app.pair(&cached, None).await.status, 200, "cache serves");
    let m = app.auth.metrics();
    assert!(m.reason_count(FailureReason::IdentityUnreachable) >= 1);
    assert!(m.rejected_503() >= 4);
    assert!(m
        .render_prometheus()
        .contains("baton_authtoken_requests_total{outcome=\"rejected_503\"}"));
}

// ----- the shared cache ------------------------------------------------------------------------------

fn secret() -> String {
    format!(
        "test-secret-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).expect("redis url");
    tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("Redis (BATON_TEST_REDIS_URL or 127.0.0.1:6379) did not answer in time")
    .expect("Redis (BATON_TEST_REDIS_URL or 127.0.0.1:6379)")
}

async fn redis_get(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async::<Option<String>>(conn)
        .await
        .expect("GET")
}

async fn redis_set(conn: &mut redis::aio::MultiplexedConnection, key: &str, value: &str) {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(60)
        .query_async::<()>(conn)
        .await
        .expect("SET");
}

/// Waits (at most 2 s) for the middleware's background write of `key`.
async fn wait_for_entry(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(v) = redis_get(conn, key).await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "no shared entry {key}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_cache_is_shared_and_authenticated() {
    let id = Identity::start().await;
    let mut conn = redis_conn().await;
    let secret = secret();
    let shared = || {
        id.config()
            .redis(redis_url(), secret.as_str())
            .build()
            .expect("config")
    };
    let a = App::start(shared()).await;
    let user = id.alice(3600);
    let svc = id.nova(3600);
    assert_eq!(a.pair(&user, Some(&svc)).await.status, 200);
    let user_key = a.auth.shared_cache_key(&user, true).expect("key");
    let svc_key = a.auth.shared_cache_key(&svc, false).expect("key");
    assert!(!user_key.contains(&user), "the token is not in the key");
    let genuine = wait_for_entry(&mut conn, &user_key).await;
    wait_for_entry(&mut conn, &svc_key).await;
    assert!(!genuine.contains(&user), "the token is not stored");

    // Another process with the same secret validates nothing itself.
    let b = App::start(shared()).await;
    let before = id.proxy.validations();
    let r = b.pair(&user, Some(&svc)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.ctx()["is_service_request"], true);
    assert_eq!(
        id.proxy.validations(),
        before,
        "both tokens came from Redis"
    );
    assert_eq!(b.auth.metrics().shared_cache_hits(), 2);

    // A forged entry for an unknown token (MACed with another secret) is ignored.
    let bogus = "gAAAAAB-bogus-token-for-forgery";
    let c = App::start(shared()).await;
    let (_, json_part) = genuine.split_once('.').expect("mac.json");
    let forged_json = json_part.replace("\"allow_expired\"", "\"plain\"");
    let forged_key = c.auth.shared_cache_key(bogus, false).expect("key");
    {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"attacker-secret").expect("hmac");
        mac.update(forged_key.as_bytes());
        mac.update(b"\n");
        mac.update(forged_json.as_bytes());
        let tag: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        redis_set(&mut conn, &forged_key, &format!("{tag}.{forged_json}")).await;
    }
    assert_401(&c.pair(bogus, None).await, "user_token_invalid");
    assert!(c.auth.metrics().shared_cache_rejected() >= 1);

    // A genuine entry copied to another token's key is refused too (the MAC covers the key).
    let bogus2 = "gAAAAAB-bogus-token-for-copying";
    let copied_key = c.auth.shared_cache_key(bogus2, true).expect("key");
    redis_set(&mut conn, &copied_key, &genuine).await;
    let rejected = c.auth.metrics().shared_cache_rejected();
    assert_401(&c.pair(bogus2, Some(&svc)).await, "user_token_invalid");
    assert!(c.auth.metrics().shared_cache_rejected() > rejected);

    // A tampered genuine entry (roles edited, MAC kept) is ignored: the token is validated
    // again and keeps its real roles.
    let (tag, body) = genuine.split_once('.').expect("mac.json");
    assert!(body.contains("\"member\""));
    let tampered = format!("{tag}.{}", body.replace("\"member\"", "\"admin\""));
    redis_set(&mut conn, &user_key, &tampered).await;
    let d = App::start(shared()).await;
    let before = id.proxy.validations();
    let r = d.pair(&user, Some(&svc)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let roles = r.seen("x-roles").expect("roles");
    assert!(!roles.split(',').any(|x| x == "admin"), "{roles}");
    assert_eq!(d.auth.metrics().shared_cache_rejected(), 1);
    assert_eq!(id.proxy.validations(), before + 1, "the user token only");

    // Another secret reads none of these entries (different keys).
    let other = App::start(
        id.config()
            .redis(redis_url(), "another-secret-entirely")
            .build()
            .expect("config"),
    )
    .await;
    assert_ne!(other.auth.shared_cache_key(&user, true), Some(user_key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_changes_nothing_but_latency() {
    let id = Identity::start().await;
    // A closed port: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let app = App::start(
        id.config()
            .shared_cache(SharedCacheConfig {
                redis_url: format!("redis://127.0.0.1:{closed}/"),
                secret: "0123456789abcdef0123".into(),
                timeout: Duration::from_millis(200),
                retry_interval: Duration::from_secs(60),
            })
            .build()
            .expect("config"),
    )
    .await;
    app.auth.startup_check().await.expect("startup");
    for i in 0..4 {
        let user = id.alice(3600);
        let svc = id.nova(3600);
        let start = Instant::now();
        let r = app.pair(&user, Some(&svc)).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.ctx()["is_service_request"], true);
        assert!(start.elapsed() < Duration::from_secs(1), "request {i}");
        assert_401(&app.pair("gAAAAAB-nope", None).await, "user_token_invalid");
    }
    let m = app.auth.metrics();
    assert_eq!(m.shared_cache_errors(), 1, "one failure, then left alone");
    assert!(m.shared_cache_skipped() >= 3);

    // A Redis that accepts connections and never answers: bounded by redis_timeout.
    let hung = SilentServer::start().await;
    let hung_port = hung.addr.port();
    let app = App::start(
        id.config()
            .shared_cache(SharedCacheConfig {
                redis_url: format!("redis://127.0.0.1:{hung_port}/"),
                secret: "0123456789abcdef0123".into(),
                timeout: Duration::from_millis(200),
                retry_interval: Duration::from_millis(700),
            })
            .build()
            .expect("config"),
    )
    .await;
    app.auth.startup_check().await.expect("startup");
    let start = Instant::now();
    let r = app.pair(&id.alice(3600), None).await;
    let first = start.elapsed();
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(first >= Duration::from_millis(200), "{first:?}");
    assert!(first < Duration::from_millis(1500), "{first:?}");
    assert_eq!(app.auth.metrics().shared_cache_errors(), 1);
    // Marked down: the next requests do not wait for it.
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(app.pair(&id.alice(3600), None).await.status, 200);
    }
    assert!(start.elapsed() < first * 3, "{:?}", start.elapsed());
    assert_eq!(app.auth.metrics().shared_cache_errors(), 1);
    // After redis_retry_interval it is tried again (and found still hung).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.pair(&id.alice(3600), None).await.status, 200);
    assert_eq!(app.auth.metrics().shared_cache_errors(), 2);
    drop(hung);
}

// ----- `baton authproxy`: the layer as a reverse proxy ------------------------------------------

/// The upstream behind the proxy: echoes method, path, headers, body length and SHA-256, and
/// counts its requests. `/big` answers 1 MiB.
async fn upstream_echo(State(hits): State<Arc<AtomicUsize>>, req: Request) -> Response {
    use sha2::Digest;
    hits.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/base/big" {
        return big_body().into_response();
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(req.into_body(), 8 << 20)
        .await
        .expect("upstream body");
    let digest: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Json(json!({
        "method": method, "path": path, "headers": headers,
        "body_len": body.len(), "body_sha256": digest,
    }))
    .into_response()
}

fn big_body() -> Vec<u8> {
    (0..(1usize << 20)).map(|i| (i % 251) as u8).collect()
}

struct AuthProxy {
    base: String,
    /// `http://addr` of the proxy's `metrics_listen`.
    metrics: String,
    hits: Arc<AtomicUsize>,
}

impl AuthProxy {
    /// Upstream echo (or, with `upstream_down`, a closed port) plus the proxy, both in-process.
    async fn start(id: &Identity, upstream_down: bool) -> AuthProxy {
        AuthProxy::start_with(id.config().build().expect("config"), upstream_down).await
    }

    /// [`AuthProxy::start`] with the middleware's settings given.
    async fn start_with(config: AuthTokenConfig, upstream_down: bool) -> AuthProxy {
        let hits = Arc::new(AtomicUsize::new(0));
        let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream = upstream_listener.local_addr().expect("addr");
        if upstream_down {
            drop(upstream_listener);
        } else {
            let router = Router::new()
                .fallback(any(upstream_echo))
                .with_state(hits.clone());
            tokio::spawn(async move {
                let _ = axum::serve(upstream_listener, router).await;
            });
        }
        AuthProxy::in_front_of(config, upstream, hits).await
    }

    /// The proxy in front of an upstream the caller serves at `upstream`.
    async fn in_front_of(
        config: AuthTokenConfig,
        upstream: std::net::SocketAddr,
        hits: Arc<AtomicUsize>,
    ) -> AuthProxy {
        let upstream = format!("http://{upstream}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let metrics_addr = metrics_listener.local_addr().expect("addr");
        // The [authproxy] section goes through the INI reader, as `baton authproxy` reads it.
        let ini = baton_config::IniFile::parse(
            &format!(
                "[authproxy]\nlisten = {addr}\nupstream = {upstream}/base/\nupstream_timeout = 5\nmax_header_bytes = 16384\nmetrics_listen = {metrics_addr}\n"
            ),
            "proxy.ini",
        )
        .expect("ini");
        let opts = baton_authtoken::ProxyOptions::from_ini(&ini).expect("[authproxy]");
        assert_eq!(opts.listen, addr);
        assert_eq!(opts.metrics_listen, Some(metrics_addr));
        let auth = Authenticator::new(config).expect("auth");
        let metrics_auth = auth.clone();
        tokio::spawn(async move {
            baton_authtoken::proxy::serve_metrics(metrics_listener, metrics_auth).await;
        });
        tokio::spawn(async move {
            let _ = baton_authtoken::proxy::serve(listener, auth, opts).await;
        });
        AuthProxy {
            base: format!("http://{addr}"),
            metrics: format!("http://{metrics_addr}"),
            hits,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `GET /x` through the proxy with `token` as `X-Auth-Token`.
    async fn get_with_token(&self, client: &reqwest::Client, token: &str) -> reqwest::Response {
        client
            .get(format!("{}/x", self.base))
            .header("x-auth-token", token)
            .send()
            .await
            .expect("request")
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A POST with a chunked body written piece by piece on a raw socket (so nothing upstream of the
/// proxy can know its length), `Connection: close`; returns the status and the response body.
async fn chunked_post(base: &str, token: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let head = format!(
        "POST /upload?x=1 HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    for chunk in body.chunks(64 * 1024) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk");
        s.write_all(chunk).await.expect("chunk");
        s.write_all(b"\r\n").await.expect("chunk");
        tokio::task::yield_now().await;
    }
    s.write_all(b"0\r\n\r\n").await.expect("end");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authproxy_forwards_confirmed_requests_and_streams() {
    let id = Identity::start().await;
    let proxy = AuthProxy::start(&id, false).await;
    let c = client();
    let user = id.alice(3600);

    // A valid token, spoofed identity headers, a hop-by-hop header named in Connection.
    let resp = c
        .get(format!("{}/v2.1/servers?limit=1", proxy.base))
        .header("x-auth-token", &user)
        .header("x-roles", "admin")
        .header("x-service-roles", "service")
        .header("x-identity-status", "Confirmed")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("x-forwarded-for", "10.0.0.9")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    let seen = |name: &str| -> Option<String> {
        let a = v["headers"][name].as_array()?;
        assert_eq!(a.len(), 1, "{name} reached the upstream {} times", a.len());
        Some(a[0].as_str().expect("string").to_string())
    };
    assert_eq!(v["path"], "/base/v2.1/servers?limit=1");
    assert_eq!(seen("x-identity-status").as_deref(), Some("Confirmed"));
    assert_eq!(seen("x-user-id").as_deref(), Some(id.ids.alice.as_str()));
    assert_eq!(seen("x-user-name").as_deref(), Some("alice"));
    assert_eq!(seen("x-project-id").as_deref(), Some(id.ids.demo.as_str()));
    assert_eq!(seen("x-project-name").as_deref(), Some("demo"));
    // member implies reader; the spoofed admin is gone.
    assert_eq!(seen("x-roles").as_deref(), Some("member,reader"));
    assert_eq!(seen("x-auth-token").as_deref(), Some(user.as_str()));
    assert!(seen("x-service-roles").is_none(), "spoofed X-Service-Roles");
    assert!(seen("x-service-identity-status").is_none());
    assert!(seen("x-hop").is_none(), "hop-by-hop header forwarded");
    assert!(seen("connection").is_none());
    assert_eq!(
        seen("x-forwarded-for").as_deref(),
        Some("10.0.0.9, 127.0.0.1")
    );
    assert_eq!(seen("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(proxy.hits(), 1);

    // An expired user token with nova's service token: Confirmed, X-Service-* set.
    let resp = c
        .get(format!("{}/x", proxy.base))
        .header("x-auth-token", id.alice(-5))
        .header("x-service-token", id.nova(3600))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["headers"]["x-service-roles"][0], "service");
    assert_eq!(v["headers"]["x-service-identity-status"][0], "Confirmed");
    assert_eq!(v["headers"]["x-service-user-id"][0], id.ids.nova.as_str());

    // No token: the proxy answers 401 itself; the upstream never sees it.
    let before = proxy.hits();
    let resp = c
        .post(format!("{}/x", proxy.base))
        .header("x-roles", "admin")
        .body("payload")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Keystone uri=\"{WWW_URI}\"").as_str())
    );
    assert_eq!(
        resp.headers()
            .get("x-auth-failure-reason")
            .and_then(|v| v.to_str().ok()),
        Some("user_token_missing")
    );
    assert_eq!(resp.text().await.expect("body"), BODY_401);
    // A role-less service token: 401 too.
    let resp = c
        .get(format!("{}/x", proxy.base))
        .header("x-auth-token", &user)
        .header("x-service-token", id.plain())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        proxy.hits(),
        before,
        "a refused request reached the upstream"
    );

    // 1 MiB request body, chunked and written piecewise, arrives intact.
    let big = big_body();
    let (status, body) = chunked_post(&proxy.base, &user, &big).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let want: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&big)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(v["method"], "POST");
    assert_eq!(v["body_len"], big.len());
    assert_eq!(v["body_sha256"], want.as_str());
    assert!(
        v["headers"]["transfer-encoding"].is_null()
            || v["headers"]["transfer-encoding"][0] == "chunked"
    );

    // 1 MiB response body, intact.
    let resp = c
        .get(format!("{}/big", proxy.base))
        .header("x-auth-token", &user)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let got = resp.bytes().await.expect("body");
    assert_eq!(got.len(), big.len());
    assert!(got.as_ref() == big.as_slice(), "response body differs");

    // A request head over max_header_bytes: 431 before any validation.
    let resp = c
        .get(format!("{}/x", proxy.base))
        .header("x-auth-token", &user)
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 431);

    // The counters of this proxy's layer, on its own metrics listener, with reasons.
    let resp = c
        .get(format!("{}/x", proxy.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    let text = c
        .get(format!("{}/metrics", proxy.metrics))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    assert!(value("baton_authtoken_requests_total{outcome=\"confirmed\"}") >= 2);
    assert!(value("baton_authtoken_requests_total{outcome=\"rejected_401\"}") >= 1);
    assert!(value("baton_authtoken_failures_total{reason=\"user_token_missing\"}") >= 1);
    assert!(!text.contains(&user), "a token in the metrics");
    let resp = c
        .get(format!("{}/other", proxy.metrics))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authproxy_answers_502_when_the_upstream_is_down() {
    let id = Identity::start().await;
    let proxy = AuthProxy::start(&id, true).await;
    let started = Instant::now();
    let resp = proxy.get_with_token(&client(), &id.alice(3600)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], 502);
    assert_eq!(v["error"]["title"], "Bad Gateway");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Authentication still comes first: no token is 401, not 502.
    let resp = client()
        .get(format!("{}/x", proxy.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
}

/// An upstream on a raw socket: answers every request with `response`, counts its connections
/// and closes each one after `per_connection` answers (as an upstream whose keep-alive limit ran
/// out, without saying so in the response). An empty `response` is an upstream that never
/// answers.
async fn counting_upstream(
    listener: tokio::net::TcpListener,
    response: &'static [u8],
    per_connection: usize,
    connections: Arc<AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            for _ in 0..per_connection {
                // Requests here have no body: a request ends with its head.
                loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        break;
                    }
                    if matches!(socket.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                        return;
                    }
                }
                if socket.write_all(response).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test]
async fn authproxy_reuses_upstream_connections_and_drops_closed_ones() {
    let id = Identity::start().await;
    let token = id.alice(3600);
    for (response, per_connection, requests, expected) in [
        // A body read to the end hands the connection back; after three answers the upstream
        // closes it, and the next request goes on a new one instead of failing.
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
            3,
            7,
            3,
        ),
        // A bodiless answer hands it back at once.
        (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], 100, 5, 1),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        tokio::spawn(counting_upstream(
            listener,
            response,
            per_connection,
            connections.clone(),
        ));
        let config = id.config().build().expect("config");
        let proxy = AuthProxy::in_front_of(config, upstream, Arc::default()).await;
        let client = client();
        for i in 0..requests {
            let resp = proxy.get_with_token(&client, &token).await;
            let status = resp.status();
            let body = resp.bytes().await.expect("body");
            assert!(status.is_success(), "request {i}: {status} {body:?}");
            // Time for the proxy to see a connection the upstream closed.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(connections.load(Ordering::SeqCst), expected);
    }
}

#[tokio::test]
async fn authproxy_answers_504_when_the_upstream_does_not_answer() {
    let id = Identity::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream = listener.local_addr().expect("addr");
    tokio::spawn(counting_upstream(listener, b"", 2, Arc::default()));
    let config = id.config().build().expect("config");
    let proxy = AuthProxy::in_front_of(config, upstream, Arc::default()).await;
    let started = Instant::now();
    let resp = proxy.get_with_token(&client(), &id.alice(3600)).await;
    // `upstream_timeout = 5` in the proxy's [authproxy].
    assert_eq!(resp.status(), 504);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], 504);
}

#[test]
fn authproxy_config_errors_name_the_option() {
    let parse = |text: &str| {
        let ini = baton_config::IniFile::parse(text, "proxy.ini").expect("ini");
        baton_authtoken::ProxyOptions::from_ini(&ini)
    };
    let e = parse("[authproxy]\nupstream = http://127.0.0.1:1\n").unwrap_err();
    assert!(e.to_string().contains("listen"), "{e}");
    let e = parse("[authproxy]\nlisten = 127.0.0.1:1\nupstream = ftp://x:1\n").unwrap_err();
    assert!(e.to_string().contains("upstream"), "{e}");
    // An https upstream is verified with the built-in roots (and upstream_cafile).
    let o = parse("[authproxy]\nlisten = 127.0.0.1:1\nupstream = https://x:1\n").expect("https");
    assert_eq!(o.upstream.scheme_str(), Some("https"));
    let o = parse(
        "[authproxy]\nlisten = 127.0.0.1:1\nupstream = http://127.0.0.1:2\nmax_body_bytes = 10\n",
    )
    .expect("valid");
    assert_eq!(o.max_body_bytes, Some(10));
    assert_eq!(o.upstream_timeout, None);
}

/// A server (Redis or memcached, as far as a client can tell) that accepts connections and
/// never answers; stopped when dropped.
pub(crate) struct SilentServer {
    pub(crate) addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    pub(crate) async fn start() -> SilentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            // Held open, never read.
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        SilentServer { addr, task }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
