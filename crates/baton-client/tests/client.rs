//! baton-client against a real Baton identity server on loopback.
//!
//! Each test starts a `baton-testkit` identity server (`baton_server::serve`) in-process on `127.0.0.1:0` with its own temporary
//! SQLite database and Fernet keys, bootstrapped like `baton manage bootstrap` (admin, roles,
//! identity endpoints in RegionOne) plus users made through the store:
//!
//! * `nova`: role `service` on project `service` (a proper service user);
//! * `alice`: `member` on `demo` (her default project) and on the default domain;
//! * `plain`: `member` on `service`, no `service` role.
//!
//! Small axum servers on loopback stand in where Baton cannot: an echo service that returns the
//! headers it received (and refuses with `X-Auth-Failure-Reason` on demand), an identity
//! endpoint answering application-credential auth (Baton does not implement that method) or
//! malformed responses, and discovery documents of other shapes. Every wait is bounded.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "client/fuzz_corpus.rs"]
mod fuzz_corpus;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap as AxHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use baton_client::discover::{parse_versions, pick_v3};
use baton_client::{
    AccessInfo, AppCredRef, ApplicationCredential, AuthConfig, AuthFailureReason, AuthPlugin,
    AuthToken, AuthType, ContinuationAuth, Credentials, DomainRef, EndpointFilter, Error,
    HttpClient, HttpOptions, Interface, Password, RetryPolicy, Scope, ServiceTokenAuth,
    ServiceUserConfig, Session, SessionConfig, Token, Url, UserRef, UserToken, ValidateOptions,
    WhichToken, AUTH_FAILURE_REASON_HEADER,
};
use baton_config::IniFile;
use baton_testkit::{DbDialect, IdentityServer, ADMIN_PASSWORD as ADMIN_PW};
use baton_types::TokenBody;
use chrono::Utc;
use serde_json::{json, Value};

const NOVA_PW: &str = "N0va-Secret-p3Wq8";
const USER_PW: &str = "Us3r-Secret-k1Lm9";
const WRONG_PW: &str = "Wr0ng-Secret-x4Yt7";
const APP_SECRET: &str = "App-Secret-z9Vb4";

// ----- the identity server -------------------------------------------------------------------

struct Ids {
    admin: String,
    nova: String,
    alice: String,
    plain: String,
    demo: String,
    service_project: String,
}

struct Server {
    base: String,
    ids: Ids,
    _identity: IdentityServer,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(None).await
    }

    /// `expiration`: `[token] expiration` in seconds.
    async fn start_with(expiration: Option<u32>) -> Server {
        Server::start_tweaked(|c| {
            if let Some(e) = expiration {
                c.token.expiration = e;
            }
        })
        .await
    }

    /// `tweak` adjusts the identity server's configuration.
    async fn start_tweaked(tweak: impl FnOnce(&mut baton_config::IdentityConfig)) -> Server {
        let identity = IdentityServer::start_with(DbDialect::Sqlite, tweak).await;
        let dom = identity.default_domain_id.clone();
        let demo = identity.create_project("demo", &dom).await;
        let service = identity.create_project("service", &dom).await;
        let nova = identity.create_user("nova", NOVA_PW, &dom).await;
        let alice = identity
            .create_user_with("alice", USER_PW, &dom, Some(&demo))
            .await;
        let plain = identity.create_user("plain", USER_PW, &dom).await;
        identity.grant_project(&nova, &service, "service").await;
        identity.grant_project(&alice, &demo, "member").await;
        identity.grant_domain(&alice, &dom, "member").await;
        identity.grant_project(&plain, &service, "member").await;
        Server {
            base: identity.base.clone(),
            ids: Ids {
                admin: identity.admin_user_id.clone(),
                nova,
                alice,
                plain,
                demo,
                service_project: service,
            },
            _identity: identity,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).expect("url")
    }

    fn v3(&self) -> Url {
        self.url("/v3")
    }

    fn nova(&self) -> Password {
        Password::new(
            self.v3(),
            UserRef::name("nova", DomainRef::Name("Default".into())),
            NOVA_PW,
        )
        .with_scope(Scope::project_name(
            "service",
            DomainRef::Id("default".into()),
        ))
    }

    fn alice(&self) -> Password {
        Password::new(self.v3(), UserRef::id(&self.ids.alice), USER_PW)
    }

    /// Revokes `token` with itself as the caller (Keystone's `token_subject` rule).
    async fn revoke(&self, token: &AuthToken) {
        let resp = reqwest::Client::new()
            .delete(format!("{}/v3/auth/tokens", self.base))
            .header("x-auth-token", token.expose())
            .header("x-subject-token", token.expose())
            .send()
            .await
            .expect("DELETE");
        assert_eq!(resp.status(), 204, "revoke");
    }
}

fn http() -> HttpClient {
    HttpOptions::default().build().expect("http client")
}

fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy {
        connect_retries: n,
        status_retries: n,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

/// Waits (bounded) until `now` is past `t`.
async fn sleep_until(t: chrono::DateTime<Utc>) {
    let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    assert!(wait < Duration::from_secs(40), "refusing to wait {wait:?}");
    tokio::time::sleep(wait).await;
}

// ----- stand-in servers ----------------------------------------------------------------------

async fn spawn(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

/// The `{"token": ...}` body of a made-up token, with a catalog.
fn token_body(method: &str, catalog: Value) -> Value {
    json!({"token": {
        "methods": [method],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "u-1", "name": "appuser",
                 "password_expires_at": null},
        "audit_ids": ["aud1"],
        "expires_at": (Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
        "issued_at": Utc::now().format("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
        "project": {"domain": {"id": "default", "name": "Default"}, "id": "p-1", "name": "proj"},
        "is_domain": false,
        "roles": [{"id": "r-1", "name": "member"}, {"id": "r-2", "name": "reader"}],
        "catalog": catalog,
    }})
}

#[derive(Default)]
struct Recorder {
    bodies: Mutex<Vec<Value>>,
    /// (X-Auth-Token, X-Service-Token) of each request.
    seen: Mutex<Vec<(Option<String>, Option<String>)>>,
    hits: AtomicUsize,
}

fn header(h: &AxHeaders, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An identity stand-in under `/mock/v3`: records auth bodies; `?mode=` on the auth URL is not
/// possible (keystoneauth-style URL), so the mode is the path segment before `/v3`.
fn identity_stub(rec: Arc<Recorder>) -> Router {
    async fn auth(
        State(rec): State<Arc<Recorder>>,
        axum::extract::Path(mode): axum::extract::Path<String>,
        Json(body): Json<Value>,
    ) -> Response {
        rec.bodies.lock().unwrap().push(body);
        let good = token_body("application_credential", json!([]));
        match mode.as_str() {
            "ok" => (
                StatusCode::CREATED,
                [("x-subject-token", "stub-token-1")],
                Json(good),
            )
                .into_response(),
            "noheader" => (StatusCode::CREATED, Json(good)).into_response(),
            "nokey" => (
                StatusCode::CREATED,
                [("x-subject-token", "stub-token-2")],
                Json(json!({"tokens": good["token"].clone()})),
            )
                .into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn broken_discovery() -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    async fn list_form(headers: AxHeaders) -> Json<Value> {
        let host = header(&headers, "host").unwrap_or_default();
        Json(json!({"versions": [
            {"id": "v2.0", "status": "deprecated",
             "links": [{"rel": "self", "href": format!("http://{host}/list/v2.0/")}]},
            {"id": "v3.10", "status": "current",
             "links": [{"rel": "self", "href": format!("http://{host}/list/v3/")}]},
            {"id": "v3.99", "status": "experimental",
             "links": [{"rel": "self", "href": format!("http://{host}/list/v3-exp/")}]},
        ]}))
    }
    Router::new()
        .route("/{mode}/v3/auth/tokens", post(auth))
        .route("/{mode}/v3", get(broken_discovery))
        .route("/{mode}", get(broken_discovery))
        .route("/list", get(list_form))
        .route("/list/v3/auth/tokens", post(auth_list))
        .with_state(rec)
}

async fn auth_list(State(rec): State<Arc<Recorder>>, Json(body): Json<Value>) -> Response {
    rec.bodies.lock().unwrap().push(body);
    (
        StatusCode::CREATED,
        [("x-subject-token", "stub-token-list")],
        Json(token_body("password", json!([]))),
    )
        .into_response()
}

/// A service that echoes the auth headers it got (`/echo`), refuses with a reason (`/reject`),
/// or is unavailable twice before answering (`/flaky`).
fn echo_service(rec: Arc<Recorder>) -> Router {
    async fn echo(State(rec): State<Arc<Recorder>>, headers: AxHeaders) -> Json<Value> {
        let (a, s) = (
            header(&headers, "x-auth-token"),
            header(&headers, "x-service-token"),
        );
        rec.seen.lock().unwrap().push((a.clone(), s.clone()));
        Json(json!({"x-auth-token": a, "x-service-token": s}))
    }
    async fn reject(
        State(rec): State<Arc<Recorder>>,
        Query(q): Query<HashMap<String, String>>,
        headers: AxHeaders,
    ) -> Response {
        rec.seen.lock().unwrap().push((
            header(&headers, "x-auth-token"),
            header(&headers, "x-service-token"),
        ));
        let body = Json(json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}));
        match q.get("reason") {
            Some(r) => (
                StatusCode::UNAUTHORIZED,
                [(AUTH_FAILURE_REASON_HEADER, r.as_str())],
                body,
            )
                .into_response(),
            None => (StatusCode::UNAUTHORIZED, body).into_response(),
        }
    }
    async fn flaky(State(rec): State<Arc<Recorder>>) -> Response {
        let n = rec.hits.fetch_add(1, Ordering::SeqCst);
        if n < 2 {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (AUTH_FAILURE_REASON_HEADER, "identity_unreachable"),
                    ("x-openstack-request-id", "req-flaky"),
                ],
                "The Keystone service is temporarily unavailable.",
            )
                .into_response()
        } else {
            Json(json!({"ok": n})).into_response()
        }
    }
    Router::new()
        .route("/echo", any(echo))
        .route("/reject", any(reject))
        .route("/flaky", any(flaky))
        .with_state(rec)
}

// ----- auth plugins --------------------------------------------------------------------------

#[tokio::test]
async fn password_every_user_form_and_scope() {
    let s = Server::start().await;
    let http = http();
    let default = || DomainRef::Name("Default".into());
    let default_id = || DomainRef::Id("default".into());
    let users = [
        UserRef::id(&s.ids.alice),
        UserRef::name("alice", default_id()),
        UserRef::name("alice", default()),
    ];
    // Each user form, with and without /v3 in auth_url (keystoneauth's v3 path rule).
    for (i, user) in users.iter().enumerate() {
        let auth_url = if i % 2 == 0 { s.v3() } else { s.url("") };
        let p = Password::new(auth_url, user.clone(), USER_PW)
            .with_scope(Scope::project_id(&s.ids.demo));
        let a = p.get_access(&http).await.expect("password auth");
        assert_eq!(a.user_id(), s.ids.alice);
        assert_eq!(a.user_name(), "alice");
        assert_eq!(a.user_domain_id(), "default");
        assert_eq!(a.project_id(), Some(s.ids.demo.as_str()));
        assert!(
            a.has_role("member") && !a.has_role("service"),
            "{:?}",
            a.role_names()
        );
        assert!(!a.is_expired() && !a.will_expire_soon(Duration::from_secs(60)));
        assert_eq!(a.methods(), ["password"]);
        assert!(!a.catalog().is_empty());
    }

    let cases: Vec<(Scope, &str)> = vec![
        (Scope::project_name("demo", default_id()), "project"),
        (Scope::project_name("demo", default()), "project"),
        (Scope::domain_id("default"), "domain"),
        (Scope::domain_name("Default"), "domain"),
        (Scope::Unscoped, "unscoped"),
        (Scope::Default, "project"), // alice's default project
    ];
    for (scope, kind) in cases {
        let a = s
            .alice()
            .with_scope(scope.clone())
            .get_access(&http)
            .await
            .unwrap_or_else(|e| panic!("{scope:?}: {e}"));
        match kind {
            "project" => {
                assert_eq!(a.project_id(), Some(s.ids.demo.as_str()), "{scope:?}");
                assert_eq!(a.project_name(), Some("demo"));
                assert_eq!(a.project_domain_id(), Some("default"));
                assert_eq!(a.project_domain_name(), Some("Default"));
            }
            "domain" => {
                assert_eq!(a.domain_id(), Some("default"), "{scope:?}");
                assert_eq!(a.domain_name(), Some("Default"));
                assert!(a.project_id().is_none());
            }
            _ => {
                assert!(!a.is_scoped(), "{scope:?}");
                assert!(a.role_names().is_empty());
                assert!(a.catalog().is_empty());
            }
        }
    }

    // System scope: the bootstrap admin.
    let admin =
        Password::new(s.v3(), UserRef::id(&s.ids.admin), ADMIN_PW).with_scope(Scope::System);
    let a = admin.get_access(&http).await.expect("system scope");
    assert!(a.system_scoped() && a.has_role("admin"));

    // ?nocatalog
    let a = s
        .alice()
        .with_scope(Scope::project_id(&s.ids.demo))
        .include_catalog(false)
        .get_access(&http)
        .await
        .expect("nocatalog");
    assert!(a.catalog().is_empty() && a.project_id().is_some());

    // A wrong password: one-line error naming the user, never the password.
    let err = Password::new(s.v3(), UserRef::name("alice", default()), WRONG_PW)
        .get_access(&http)
        .await
        .expect_err("wrong password");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::AuthenticationFailed { status: 401, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("alice@Default") && msg.contains("/v3/auth/tokens"),
        "{msg}"
    );
    assert!(!msg.contains(WRONG_PW) && !msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn token_plugin_rescopes_and_caches() {
    let s = Server::start().await;
    let http = http();
    let unscoped = s
        .alice()
        .with_scope(Scope::Unscoped)
        .get_access(&http)
        .await
        .expect("unscoped");
    let rescoped = Token::new(s.url(""), unscoped.token().clone()).with_scope(Scope::project_name(
        "demo",
        DomainRef::Name("Default".into()),
    ));
    let a = rescoped.get_access(&http).await.expect("re-scope");
    assert_eq!(a.project_id(), Some(s.ids.demo.as_str()));
    assert_ne!(a.token(), unscoped.token());
    assert_eq!(
        a.expires_at(),
        unscoped.expires_at(),
        "re-scoped tokens keep the expiry"
    );
    assert!(
        a.methods().contains(&"token".to_string()) && a.methods().contains(&"password".to_string())
    );
    // Cached: the same token again, until invalidated.
    let again = rescoped.get_token(&http).await.expect("cached");
    assert_eq!(&again, a.token());
    assert!(rescoped.invalidate());
    let fresh = rescoped.get_token(&http).await.expect("again");
    assert_ne!(&fresh, a.token());

    // With discovery (auth_type = token) and an unversioned auth_url.
    let generic = Token::new(s.url(""), unscoped.token().clone())
        .with_discovery(true)
        .with_scope(Scope::domain_id("default"));
    assert_eq!(
        generic
            .get_access(&http)
            .await
            .expect("generic")
            .domain_id(),
        Some("default")
    );

    // A garbage token: Keystone's 404 for the token method.
    let err = Token::new(s.v3(), AuthToken::new("not-a-token"))
        .get_access(&http)
        .await
        .expect_err("bad token");
    assert!(
        matches!(err, Error::AuthenticationFailed { status: 404, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-a-token"), "{err}");
}

#[tokio::test]
async fn application_credential_bodies_and_invalid_responses() {
    let rec = Arc::new(Recorder::default());
    let (base, _task) = spawn(identity_stub(rec.clone())).await;
    let http = http();
    let url = |mode: &str| Url::parse(&format!("{base}/{mode}/v3")).unwrap();

    let by_id = ApplicationCredential::new(url("ok"), AppCredRef::Id("ac-1".into()), APP_SECRET);
    let a = by_id.get_access(&http).await.expect("app cred by id");
    assert_eq!(a.token().expose(), "stub-token-1");
    assert_eq!(a.methods(), ["application_credential"]);
    let by_name = ApplicationCredential::new(
        url("ok"),
        AppCredRef::Name {
            name: "backup".into(),
            user: UserRef::name("appuser", DomainRef::Id("default".into())),
        },
        APP_SECRET,
    );
    by_name.get_access(&http).await.expect("app cred by name");
    let bodies = rec.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies[0],
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "ac-1", "secret": APP_SECRET}}}})
    );
    assert_eq!(
        bodies[1],
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"name": "backup", "secret": APP_SECRET,
                "user": {"name": "appuser", "domain": {"id": "default"}}}}}})
    );
    assert!(
        bodies.iter().all(|b| b["auth"].get("scope").is_none()),
        "no scope is sent"
    );

    // Missing X-Subject-Token, missing `token` key: InvalidResponse that says so.
    let err = Password::new(url("noheader"), UserRef::id("u"), USER_PW)
        .get_access(&http)
        .await
        .expect_err("no header");
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err}");
    assert!(err.to_string().contains("X-Subject-Token"), "{err}");
    let err = Password::new(url("nokey"), UserRef::id("u"), USER_PW)
        .get_access(&http)
        .await
        .expect_err("no token key");
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err}");
    assert!(err.to_string().contains("no `token` key"), "{err}");
    // Password bodies, for the record: user by id plus password, no scope key by default.
    let last = rec.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last,
        json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"id": "u", "password": USER_PW}}}}})
    );

    // Against Baton, an unknown credential id: Keystone's 404, as a clear error, not a panic.
    let s = Server::start().await;
    let err = ApplicationCredential::new(s.v3(), AppCredRef::Id("ac".into()), APP_SECRET)
        .get_access(&http)
        .await
        .expect_err("no such credential");
    assert!(
        matches!(err, Error::AuthenticationFailed { status: 404, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains(APP_SECRET));
}

#[tokio::test]
async fn user_token_is_used_as_given() {
    let s = Server::start().await;
    let http = http();
    let alice = s
        .alice()
        .with_scope(Scope::project_id(&s.ids.demo))
        .get_access(&http)
        .await
        .expect("alice");

    // Bare token: headers work, token data does not, invalidate does nothing.
    let bare = UserToken::new(alice.token().clone());
    let headers = bare.get_headers(&http).await.expect("headers");
    assert_eq!(headers["x-auth-token"], alice.token().expose());
    assert!(headers["x-auth-token"].is_sensitive());
    assert!(!bare.invalidate());
    let err = bare.get_access(&http).await.expect_err("no body");
    assert!(
        matches!(err, Error::NotAvailable(_)) && err.to_string().contains("with_body"),
        "{err}"
    );

    // With the body the receiving side validated: user, project and catalog.
    let known = UserToken::new(alice.token().clone()).with_body(alice.body().clone());
    let session = Session::new(Arc::new(known)).expect("session");
    let access = session.get_access().await.expect("access");
    assert_eq!(access.project_id(), Some(s.ids.demo.as_str()));
    let identity = session
        .get_endpoint(&EndpointFilter::new("identity"))
        .await
        .expect("endpoint from the given catalog");
    assert_eq!(identity, s.v3());
    let catalog: Value = session
        .get("identity", "/auth/catalog")
        .send_json()
        .await
        .expect("GET /v3/auth/catalog as alice");
    assert!(catalog["catalog"].is_array());
}

// ----- catalog, endpoints, discovery ---------------------------------------------------------

#[tokio::test]
async fn catalog_lookup_and_endpoint_overrides() {
    let s = Server::start().await;
    let nova = Arc::new(s.nova());
    let session = Session::builder()
        .endpoint_override(
            "volumev3",
            Url::parse("http://127.0.0.1:1/volume/v3").unwrap(),
        )
        .build(nova.clone())
        .expect("session");
    let access = session.get_access().await.expect("nova");
    assert_eq!(access.user_id(), s.ids.nova);
    assert_eq!(access.project_id(), Some(s.ids.service_project.as_str()));
    assert!(access.has_role("service"));

    // Baton's bootstrap catalog: identity public + internal in RegionOne, no admin.
    for iface in [Interface::Public, Interface::Internal] {
        assert_eq!(access.endpoint_for("identity", iface, None), Some(s.v3()));
        assert_eq!(
            access.endpoint_for("identity", iface, Some("RegionOne")),
            Some(s.v3())
        );
    }
    assert_eq!(
        access.endpoint_for("identity", Interface::Admin, None),
        None
    );
    assert_eq!(
        access.endpoint_for("identity", Interface::Public, Some("RegionTwo")),
        None
    );
    assert_eq!(
        access.endpoint_for("compute", Interface::Public, None),
        None
    );

    let f = EndpointFilter::new("identity")
        .interface(Interface::Internal)
        .region(Some("RegionOne"));
    assert_eq!(session.get_endpoint(&f).await.unwrap(), s.v3());
    let err = session
        .get_endpoint(&EndpointFilter::new("identity").interface(Interface::Admin))
        .await
        .expect_err("no admin endpoint");
    assert_eq!(
        err.to_string(),
        "the service catalog has no admin endpoint for service type \"identity\""
    );
    // Overrides: the filter's own, then the session's per service type.
    let o = Url::parse("http://127.0.0.1:1/override").unwrap();
    assert_eq!(
        session
            .get_endpoint(&EndpointFilter::new("identity").endpoint_override(o.clone()))
            .await
            .unwrap(),
        o
    );
    assert_eq!(
        session
            .get_endpoint(&EndpointFilter::new("volumev3"))
            .await
            .unwrap()
            .as_str(),
        "http://127.0.0.1:1/volume/v3"
    );
    // The identity v3 endpoint through the catalog.
    assert_eq!(
        session
            .identity_endpoint(Interface::Internal, None)
            .await
            .unwrap(),
        s.v3()
    );

    // keystoneauth's rules on a catalog of other shapes: `URL` suffixes, `region` without
    // `region_id`, several services of one type, first match wins.
    let catalog = json!([
        {"id": "s1", "type": "volumev3", "name": "cinderv3", "endpoints": [
            {"id": "e1", "interface": "publicURL", "region": "RegionOne", "url": "http://one/volume/v3"},
            {"id": "e2", "interface": "internal", "region_id": "RegionTwo", "region": "RegionTwo", "url": "http://two-internal/volume/v3"},
            {"id": "e3", "interface": "adminURL", "region_id": "RegionOne", "url": "http://admin/volume/v3"}]},
        {"id": "s2", "type": "volumev3", "name": "other", "endpoints": [
            {"id": "e4", "interface": "internal", "region_id": "RegionOne", "url": "http://other/volume/v3"}]},
        {"id": "s3", "type": "compute", "name": "nova", "endpoints": [
            {"id": "e5", "interface": "public", "region_id": "RegionOne", "url": "not a url"},
            {"id": "e6", "interface": "public", "region_id": "RegionOne", "url": "http://compute/v2.1"}]}
    ]);
    let body: TokenBody =
        serde_json::from_value(token_body("password", catalog)["token"].clone()).unwrap();
    let a = AccessInfo::new(AuthToken::new("t"), body.clone());
    let ep = |t: &str, i, r| a.endpoint_for(t, i, r).map(|u| u.to_string());
    assert_eq!(
        ep("volumev3", Interface::Public, None).as_deref(),
        Some("http://one/volume/v3")
    );
    assert_eq!(
        ep("volumev3", Interface::Public, Some("RegionOne")).as_deref(),
        Some("http://one/volume/v3")
    );
    assert_eq!(ep("volumev3", Interface::Public, Some("RegionTwo")), None);
    assert_eq!(
        ep("volumev3", Interface::Internal, Some("RegionTwo")).as_deref(),
        Some("http://two-internal/volume/v3")
    );
    assert_eq!(
        ep("volumev3", Interface::Internal, Some("RegionOne")).as_deref(),
        Some("http://other/volume/v3")
    );
    assert_eq!(
        ep("volumev3", Interface::Admin, None).as_deref(),
        Some("http://admin/volume/v3")
    );
    assert_eq!(
        ep("compute", Interface::Public, None).as_deref(),
        Some("http://compute/v2.1")
    );
    assert_eq!("internalURL".parse::<Interface>(), Ok(Interface::Internal));
    assert!("private".parse::<Interface>().is_err());
    // Service name filter through a session.
    let by_name = Session::new(Arc::new(
        UserToken::new(AuthToken::new("t")).with_body(body),
    ))
    .unwrap();
    let f = EndpointFilter::new("volumev3")
        .interface(Interface::Internal)
        .service_name("other");
    assert_eq!(
        by_name.get_endpoint(&f).await.unwrap().as_str(),
        "http://other/volume/v3"
    );
}

#[tokio::test]
async fn version_discovery_forms_and_fallback() {
    let s = Server::start().await;
    let http = http();
    // Baton: GET / is 300 with versions.values, GET /v3 is {"version": ...}.
    let root = baton_client::discover::discover_v3(&http, &s.url("/"))
        .await
        .expect("root");
    assert_eq!(root, s.v3());
    let v3 = baton_client::discover::discover_v3(&http, &s.v3())
        .await
        .expect("/v3");
    assert_eq!(v3, s.v3());
    // auth_type = password with an unversioned auth_url.
    let p = Password::new(s.url(""), UserRef::id(&s.ids.alice), USER_PW).with_discovery(true);
    assert_eq!(
        p.get_access(&http).await.expect("discovered").user_id(),
        s.ids.alice
    );

    // The three document shapes.
    let base = Url::parse("http://h:5000/").unwrap();
    let link = |id: &str, href: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]});
    let values = json!({"versions": {"values": [link("v3.14", "http://h:5000/v3/", "stable")]}});
    let list = json!({"versions": [link("v2.0", "/v2.0/", "deprecated"), link("v3.4", "/v3/", "current")]});
    let single = json!({"version": link("v3.14", "http://h:5000/v3/", "stable")});
    for doc in [&values, &list, &single] {
        let versions = parse_versions(doc, &base).expect("parses");
        let v = pick_v3(&versions).expect("a v3");
        assert_eq!(v.url.as_str(), "http://h:5000/v3/", "{doc}");
        assert_eq!(v.version.0, 3);
    }
    assert!(parse_versions(&json!({"other": 1}), &base).is_err());
    assert!(pick_v3(
        &parse_versions(
            &json!({"versions": [link("v2.0", "/v2.0/", "stable")]}),
            &base
        )
        .unwrap()
    )
    .is_none());

    // A list-form server that advertises an experimental 3.99: the current 3.10 is chosen.
    let rec = Arc::new(Recorder::default());
    let (stub, _task) = spawn(identity_stub(rec.clone())).await;
    let list_url = Url::parse(&format!("{stub}/list")).unwrap();
    let found = baton_client::discover::discover_v3(&http, &list_url)
        .await
        .expect("list form");
    assert_eq!(found.as_str(), format!("{stub}/list/v3"));
    let p = Password::new(list_url, UserRef::id("u"), USER_PW).with_discovery(true);
    assert_eq!(
        p.get_access(&http)
            .await
            .expect("auth after list discovery")
            .token()
            .expose(),
        "stub-token-list"
    );

    // Discovery fails (500) on a URL whose path names v3: the URL is used as is.
    let p = Password::new(
        Url::parse(&format!("{stub}/ok/v3")).unwrap(),
        UserRef::id("u"),
        USER_PW,
    )
    .with_discovery(true);
    assert_eq!(
        p.get_access(&http)
            .await
            .expect("fallback")
            .token()
            .expose(),
        "stub-token-1"
    );
    // ... and on an unversioned one: an error saying what auth_url should be.
    let err = Password::new(
        Url::parse(&format!("{stub}/ok")).unwrap(),
        UserRef::id("u"),
        USER_PW,
    )
    .with_discovery(true)
    .get_access(&http)
    .await
    .expect_err("no v3 to fall back to");
    assert!(matches!(err, Error::Discovery { .. }), "{err}");
    assert!(
        err.to_string().contains("500") && err.to_string().contains("auth_url should be"),
        "{err}"
    );
}

// ----- token lifetime ------------------------------------------------------------------------

#[tokio::test]
async fn reauthenticates_before_expiry_and_validates_expired_tokens() {
    let s = Server::start_with(Some(5)).await;
    let http = http();
    let alice = s
        .alice()
        .with_scope(Scope::project_id(&s.ids.demo))
        .with_stale_window(Duration::from_secs(2));
    let t1 = alice.get_access(&http).await.expect("first");
    let lifetime = t1.expires_at() - t1.issued_at();
    assert_eq!(lifetime.num_seconds(), 5);
    assert_eq!(
        alice.get_token(&http).await.unwrap(),
        *t1.token(),
        "cached while fresh"
    );
    sleep_until(
        t1.expires_at() - chrono::Duration::seconds(2) + chrono::Duration::milliseconds(50),
    )
    .await;
    let t2 = alice.get_access(&http).await.expect("refreshed");
    assert_ne!(
        t2.token(),
        t1.token(),
        "re-authenticated inside the stale window"
    );
    assert!(t2.expires_at() >= t1.expires_at());

    // The middleware's use: nova validates alice's token, and after expiry only with
    // allow_expired (Keystone's 404 otherwise).
    let nova = Session::new(Arc::new(s.nova())).expect("nova session");
    let opts = ValidateOptions::default();
    let v = nova.validate_token(t1.token(), &opts).await.expect("valid");
    assert_eq!(v.user_id(), s.ids.alice);
    assert_eq!(v.token(), t1.token());
    sleep_until(t1.expires_at() + chrono::Duration::milliseconds(1100)).await;
    assert!(t1.is_expired());
    let err = nova
        .validate_token(t1.token(), &opts)
        .await
        .expect_err("expired");
    assert!(matches!(err, Error::TokenNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&t1.token().fingerprint())
            && !err.to_string().contains(t1.token().expose())
    );
    let late = ValidateOptions {
        allow_expired: true,
        include_catalog: false,
        ..ValidateOptions::default()
    };
    let v = nova
        .validate_token(t1.token(), &late)
        .await
        .expect("allow_expired");
    assert!(v.is_expired() && v.catalog().is_empty());
    // A garbage subject: 404 -> TokenNotFound.
    let err = nova
        .validate_token(&AuthToken::new("gAAAAAgarbage"), &opts)
        .await
        .expect_err("garbage");
    assert!(matches!(err, Error::TokenNotFound { .. }), "{err}");
}

#[tokio::test]
async fn reauthenticates_once_on_401() {
    let s = Server::start().await;
    let alice = Arc::new(s.alice().with_scope(Scope::project_id(&s.ids.demo)));
    let session = Session::new(alice.clone()).expect("session");
    let cat: Value = session
        .get("identity", "auth/catalog")
        .send_json()
        .await
        .expect("catalog");
    assert!(cat["catalog"].is_array());
    let t1 = session.get_token().await.unwrap();
    s.revoke(&t1).await;
    // The cached token is now refused; the session re-authenticates once and succeeds.
    let resp = session
        .get("identity", "auth/catalog")
        .send()
        .await
        .expect("after 401");
    assert_eq!(resp.status(), 200);
    let t2 = session.get_token().await.unwrap();
    assert_ne!(t1, t2);
    assert_eq!(alice.cached().unwrap().token(), &t2);

    // A token as given cannot re-authenticate: one request, and an error saying the token
    // was refused.
    let given = Session::new(Arc::new(UserToken::new(t1.clone()))).unwrap();
    let err = given
        .get(s.v3(), "auth/catalog")
        .send()
        .await
        .expect_err("revoked token");
    match &err {
        Error::Unauthorized {
            refused,
            request_id,
            ..
        } => {
            assert!(!refused.service_token_sent && refused.reasons.is_empty());
            assert!(request_id.as_deref().is_some_and(|r| r.starts_with("req-")));
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains("the token (X-Auth-Token) was refused"),
        "{err}"
    );

    // Exactly once: a receiver that always refuses sees two requests from a password session,
    // one from a given token.
    let rec = Arc::new(Recorder::default());
    let (echo, _task) = spawn(echo_service(rec.clone())).await;
    let reject = Url::parse(&format!("{echo}/reject")).unwrap();
    session
        .get(&reject, "")
        .send()
        .await
        .expect_err("always 401");
    assert_eq!(rec.seen.lock().unwrap().len(), 2);
    let seen = rec.seen.lock().unwrap().clone();
    assert_ne!(seen[0].0, seen[1].0, "the retry carried a new token");
    given.get(&reject, "").send().await.expect_err("always 401");
    assert_eq!(rec.seen.lock().unwrap().len(), 3);
    // allow_reauth(false) and raise_for_status(false) give the bare 401.
    let resp = session
        .get(&reject, "")
        .allow_reauth(false)
        .raise_for_status(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(rec.seen.lock().unwrap().len(), 4);
}

// ----- transport -----------------------------------------------------------------------------

#[tokio::test]
async fn retries_connection_errors_and_503_with_backoff() {
    // A port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = Url::parse(&format!("http://127.0.0.1:{port}/v3")).unwrap();
    let client = HttpOptions {
        retry: fast_retries(2),
        ..HttpOptions::default()
    }
    .build()
    .unwrap();
    let started = Instant::now();
    let err = Password::new(dead.clone(), UserRef::id("u"), USER_PW)
        .get_access(&client)
        .await
        .expect_err("refused");
    let took = started.elapsed();
    match &err {
        Error::Connection { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("{other}"),
    }
    // Backoff 50 ms then 100 ms.
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    let once = HttpOptions {
        retry: RetryPolicy::none(),
        ..HttpOptions::default()
    }
    .build()
    .unwrap();
    match Password::new(dead, UserRef::id("u"), USER_PW)
        .get_access(&once)
        .await
    {
        Err(Error::Connection { attempts: 1, .. }) => {}
        other => panic!("{other:?}"),
    }

    // 503 twice, then 200: retried with backoff; with one retry only, the 503 surfaces with
    // the receiver's reason and request id.
    let rec = Arc::new(Recorder::default());
    let (echo, _task) = spawn(echo_service(rec.clone())).await;
    let flaky = Url::parse(&format!("{echo}/flaky")).unwrap();
    let session = Session::builder()
        .retry(fast_retries(3))
        .timeout(Some(Duration::from_secs(5)))
        .connect_timeout(Duration::from_secs(2))
        .build(Arc::new(UserToken::new(AuthToken::new("tok"))))
        .unwrap();
    let ok: Value = session
        .get(&flaky, "")
        .send_json()
        .await
        .expect("third try");
    assert_eq!(ok, json!({"ok": 2}));
    rec.hits.store(0, Ordering::SeqCst);
    let impatient = Session::builder()
        .retry(fast_retries(1))
        .build(Arc::new(UserToken::new(AuthToken::new("tok"))))
        .unwrap();
    let err = impatient
        .get(flaky.as_str(), "")
        .send()
        .await
        .expect_err("503");
    match &err {
        Error::Http {
            status: 503,
            reasons,
            request_id,
            ..
        } => {
            assert_eq!(reasons, &[AuthFailureReason::IdentityUnreachable]);
            assert_eq!(request_id.as_deref(), Some("req-flaky"));
        }
        other => panic!("{other}"),
    }

    // TLS options: an unreadable or non-PEM CA file is a clear error.
    let err = HttpOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..HttpOptions::default()
    }
    .build()
    .expect_err("missing CA file");
    assert!(
        err.to_string()
            .starts_with("cannot read CA file /nonexistent/ca.pem"),
        "{err}"
    );
    let mut junk = tempfile::NamedTempFile::new().unwrap();
    junk.write_all(b"not a certificate").unwrap();
    let err = HttpOptions {
        ca_file: Some(junk.path().into()),
        ..HttpOptions::default()
    }
    .build()
    .expect_err("junk CA file");
    assert!(
        err.to_string().contains("holds no certificate") || err.to_string().contains("not PEM"),
        "{err}"
    );
    HttpOptions {
        insecure: true,
        ..HttpOptions::default()
    }
    .build()
    .expect("insecure builds");
}

// ----- the service-token wrapper ---------------------------------------------------------------

#[tokio::test]
async fn service_token_auth_sends_both_headers_and_says_which_was_refused() {
    let s = Server::start().await;
    let http = http();
    let user_access = s
        .alice()
        .with_scope(Scope::project_id(&s.ids.demo))
        .get_access(&http)
        .await
        .expect("alice");
    let service = Arc::new(s.nova());
    let wrapper = ServiceTokenAuth::new(
        Arc::new(UserToken::new(user_access.token().clone()).with_body(user_access.body().clone())),
        service.clone(),
    );
    let rec = Arc::new(Recorder::default());
    let (echo, _task) = spawn(echo_service(rec.clone())).await;
    let session = Session::builder()
        .endpoint_override("echo", Url::parse(&echo).unwrap())
        .build(Arc::new(wrapper))
        .unwrap();
    let got: Value = session
        .get("echo", "/echo")
        .send_json()
        .await
        .expect("echo");
    let service_token = service.cached().expect("service token").token().clone();
    assert_eq!(got["x-auth-token"], json!(user_access.token().expose()));
    assert_eq!(got["x-service-token"], json!(service_token.expose()));
    // User identity and catalog come from the user plugin.
    assert_eq!(session.get_access().await.unwrap().user_id(), s.ids.alice);
    assert_eq!(session.get_token().await.unwrap(), *user_access.token());
    assert_eq!(
        session
            .identity_endpoint(Interface::Public, None)
            .await
            .unwrap(),
        s.v3()
    );

    // The receiver blames the service token: only it is renewed, and the request is retried once.
    rec.seen.lock().unwrap().clear();
    let err = session
        .get("echo", "/reject?reason=service_token_invalid")
        .send()
        .await
        .expect_err("refused");
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, seen[1].0, "same user token");
    assert_ne!(seen[0].1, seen[1].1, "a new service token");
    match &err {
        Error::Unauthorized { refused, .. } => {
            assert!(refused.blames(WhichToken::Service) && !refused.blames(WhichToken::User));
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains("the service token (X-Service-Token) was refused"),
        "{err}"
    );
    // The user token is blamed: it cannot be renewed, so no retry.
    rec.seen.lock().unwrap().clear();
    let err = session
        .get("echo", "/reject?reason=user_token_expired")
        .send()
        .await
        .expect_err("refused");
    assert_eq!(rec.seen.lock().unwrap().len(), 1);
    assert!(
        err.to_string()
            .contains("the user token (X-Auth-Token) was refused: expired"),
        "{err}"
    );
    rec.seen.lock().unwrap().clear();
    let err = session
        .get("echo", "/reject?reason=service_token_missing_role")
        .send()
        .await
        .expect_err("refused");
    assert_eq!(
        rec.seen.lock().unwrap().len(),
        1,
        "a new token would lack the role too"
    );
    assert!(err.to_string().contains("service_token_roles"), "{err}");
    // Silent receiver (Keystone's middleware): both invalidated, one retry, and the error says
    // it cannot tell.
    rec.seen.lock().unwrap().clear();
    let err = session
        .get("echo", "/reject")
        .send()
        .await
        .expect_err("refused");
    assert_eq!(rec.seen.lock().unwrap().len(), 2);
    assert!(
        err.to_string()
            .contains("refused (receiver did not say which token)"),
        "{err}"
    );

    // invalidate() reaches both plugins (the user token cannot be replaced).
    assert!(session.invalidate());
    assert!(service.cached().is_none());
}

// ----- continuation tokens (docs/continuation.md) ---------------------------------------------

/// A session for a long operation of alice's on the echo service (type `volume`), by nova.
async fn operation_session(
    s: &Server,
    echo: &str,
    audience: &[&str],
) -> (Session, Arc<ContinuationAuth>) {
    let user = s
        .alice()
        .with_scope(Scope::project_id(&s.ids.demo))
        .get_access(&http())
        .await
        .expect("alice");
    let nova = Session::new(Arc::new(s.nova())).unwrap();
    let auth = Arc::new(ContinuationAuth::new(
        Arc::new(UserToken::from_access((*user).clone())),
        nova,
        audience,
    ));
    let session = Session::builder()
        .endpoint_override("volume", Url::parse(echo).unwrap())
        .build(auth.clone())
        .unwrap();
    (session, auth)
}

/// The session's request carries the service-token pair.
async fn sends_the_pair(session: &Session, auth: &ContinuationAuth) {
    let got: Value = session
        .get("volume", "/echo")
        .send_json()
        .await
        .expect("echo");
    assert!(got["x-service-token"].is_string(), "{got}");
    assert!(!auth.is_continuing());
}

#[tokio::test]
async fn continuation_auth_sends_a_continuation_token_when_offered_and_the_pair_otherwise() {
    // Continuation tokens live 20 s: always within the 30 s renewal window, so every request
    // renews.
    let s = Server::start_tweaked(|c| {
        c.continuation.senders = vec![("nova".into(), 600)];
        c.continuation.receivers = vec![("volume".into(), "cinder".into())];
        c.continuation.token_lifetime = 20;
    })
    .await;
    let rec = Arc::new(Recorder::default());
    let (echo, _task) = spawn(echo_service(rec.clone())).await;
    let (session, auth) = operation_session(&s, &echo, &["volume"]).await;
    let offer = Session::new(Arc::new(s.nova()))
        .unwrap()
        .continuation_offer()
        .await
        .unwrap()
        .expect("offered");
    assert_eq!(
        (offer.token_lifetime, offer.audiences.clone()),
        (20, vec!["volume".to_string()])
    );
    for _ in 0..2 {
        let got: Value = session
            .get("volume", "/echo")
            .send_json()
            .await
            .expect("echo");
        assert!(
            got["x-service-token"].is_string(),
            "the service token beside it: {got}"
        );
        assert!(auth.is_continuing());
    }
    let seen = rec.seen.lock().unwrap().clone();
    assert_ne!(seen[0].0, seen[1].0, "renewed within the stale window");
    // What was sent is a continuation token of alice's, nova acting.
    let nova = Session::new(Arc::new(s.nova())).unwrap();
    let sent = AuthToken::new(seen[1].0.clone().unwrap());
    let access = nova
        .validate_token(&sent, &ValidateOptions::default())
        .await
        .expect("the actor validates it");
    assert_eq!(access.user_id(), s.ids.alice);
    let actor = access.body().continuation.as_ref().expect("continuation");
    assert_eq!(actor.actor.id, s.ids.nova);
    // A receiver refusing it: the request is retried once with the pair.
    rec.seen.lock().unwrap().clear();
    let err = session
        .get("volume", "/reject")
        .send()
        .await
        .expect_err("refused");
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{err}");
    assert_ne!(seen[0].0, seen[1].0, "then the user's own token: {seen:?}");
    assert!(seen[1].1.is_some(), "with the service token: {seen:?}");
    assert!(!auth.is_continuing());

    // An audience the server does not serve: the pair from the start.
    let (session, auth) = operation_session(&s, &echo, &["image"]).await;
    sends_the_pair(&session, &auth).await;
}

#[tokio::test]
async fn continuation_auth_sends_the_pair_to_a_server_without_continuations() {
    let s = Server::start().await;
    let rec = Arc::new(Recorder::default());
    let (echo, _task) = spawn(echo_service(rec.clone())).await;
    let (session, auth) = operation_session(&s, &echo, &["volume"]).await;
    sends_the_pair(&session, &auth).await;
}

#[tokio::test]
async fn service_token_is_refreshed_within_30_seconds_of_expiry() {
    // Tokens live 33 s, so the default 30 s window is entered about 3 s after issue.
    let s = Server::start_with(Some(33)).await;
    let http = http();
    let user = s.alice().get_access(&http).await.expect("alice");
    let service = Arc::new(s.nova());
    let wrapper = ServiceTokenAuth::new(
        Arc::new(UserToken::new(user.token().clone())),
        service.clone(),
    );
    let h1 = wrapper.get_headers(&http).await.unwrap();
    let h2 = wrapper.get_headers(&http).await.unwrap();
    assert_eq!(
        h1["x-service-token"], h2["x-service-token"],
        "cached while fresh"
    );
    assert!(h1["x-service-token"].is_sensitive());
    let first = service.cached().unwrap();
    sleep_until(
        first.expires_at() - chrono::Duration::seconds(30) + chrono::Duration::milliseconds(50),
    )
    .await;
    let h3 = wrapper.get_headers(&http).await.unwrap();
    assert_ne!(
        h3["x-service-token"], h1["x-service-token"],
        "refreshed inside 30 s of expiry"
    );
    assert_eq!(
        h3["x-auth-token"], h1["x-auth-token"],
        "the user token is sent as given"
    );
}

// ----- [service_user] ------------------------------------------------------------------------

fn ini(text: &str) -> IniFile {
    IniFile::parse(text, "nova.conf").expect("INI parses")
}

fn su(text: &str) -> Result<Option<ServiceUserConfig>, baton_config::ConfigError> {
    ServiceUserConfig::from_ini(&ini(text), "service_user")
}

#[track_caller]
fn su_err(text: &str, want: &[&str]) {
    let err = su(text).expect_err("must be refused").to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.starts_with("nova.conf:"), "names the file: {err}");
    for w in want {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
    for secret in [NOVA_PW, "s3cr3t-token"] {
        assert!(!err.contains(secret), "secret in {err}");
    }
}

#[test]
fn service_user_section_parsing() {
    // Off, or absent: no service tokens, no error.
    assert!(su("[DEFAULT]\n").unwrap().is_none());
    assert!(
        su("[service_user]\nsend_service_user_token = false\nauth_type = password\n")
            .unwrap()
            .is_none()
    );

    // The usual Nova/Cinder section.
    let good = "[service_user]\nsend_service_user_token = true\nauth_type = password\n\
        auth_url = http://controller:5000/v3\nusername = nova\nuser_domain_name = Default\n\
        password = N0va-Secret-p3Wq8\nproject_name = service\nproject_domain_name = Default\n\
        cafile = /etc/passwd\ninsecure = false\ntimeout = 30\n";
    let cfg = su(good).unwrap().expect("configured");
    assert_eq!(cfg.auth.auth_type, AuthType::Password);
    assert!(cfg.auth.auth_type.discovers());
    assert_eq!(cfg.auth.auth_url.as_str(), "http://controller:5000/v3");
    match &cfg.auth.credentials {
        Credentials::Password { user, password } => {
            assert_eq!(
                user,
                &UserRef::name("nova", DomainRef::Name("Default".into()))
            );
            assert_eq!(password.expose(), NOVA_PW);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cfg.auth.scope,
        Scope::project_name("service", DomainRef::Name("Default".into()))
    );
    assert_eq!(
        cfg.session,
        SessionConfig {
            cafile: Some("/etc/passwd".into()),
            timeout: Some(Duration::from_secs(30)),
            ..SessionConfig::default()
        }
    );
    let debug = format!("{cfg:?}");
    assert!(!debug.contains(NOVA_PW), "{debug}");

    // auth_section: auth options (auth_type included) from another section, session options
    // from [service_user]; generic default_domain_name fills both domains.
    let cfg = su("[service_user]\nsend_service_user_token = yes\nauth_section = keystone_authtoken\ninsecure = true\n\
        [keystone_authtoken]\nauth_type = password\nauth_url = http://ctl:5000\nusername = cinder\n\
        password = x\nproject_name = service\ndefault_domain_name = Default\nmemcached_servers = a:1\n")
        .unwrap()
        .expect("via auth_section");
    assert_eq!(cfg.auth.section, "keystone_authtoken");
    assert!(cfg.session.insecure);
    assert_eq!(
        cfg.auth.scope,
        Scope::project_name("service", DomainRef::Name("Default".into()))
    );

    // Other types.
    let cfg = su(
        "[service_user]\nsend_service_user_token = true\nauth_type = v3password\n\
        auth_url = http://ctl/identity\nuser_id = abc\npassword = x\nsystem_scope = all\n",
    )
    .unwrap()
    .unwrap();
    assert!(!cfg.auth.auth_type.discovers());
    assert_eq!(cfg.auth.scope, Scope::System);
    let cfg = su("[service_user]\nsend_service_user_token = true\nauth_type = v3applicationcredential\n\
        auth_url = http://ctl/v3\napplication_credential_id = ac\napplication_credential_secret = s\n").unwrap().unwrap();
    assert!(matches!(
        cfg.auth.credentials,
        Credentials::ApplicationCredential {
            credential: AppCredRef::Id(_),
            ..
        }
    ));
    let cfg = su(
        "[service_user]\nsend_service_user_token = true\nauth_type = token\n\
        auth_url = http://ctl/v3\ntoken = s3cr3t-token\ndomain_name = Default\n",
    )
    .unwrap()
    .unwrap();
    assert_eq!(cfg.auth.scope, Scope::domain_name("Default"));
    assert!(!format!("{cfg:?}").contains("s3cr3t-token"));

    // Broken forms: each a one-line error naming the file, section and option.
    let on = "[service_user]\nsend_service_user_token = true\n";
    let pw = "auth_type = password\nauth_url = http://ctl:5000/v3\nusername = nova\nuser_domain_name = Default\n";
    su_err(
        on,
        &[
            "nova.conf:2",
            "[service_user] send_service_user_token",
            "auth_type is not set",
        ],
    );
    su_err(
        &format!("{on}auth_section = ks\n[ks]\nauth_url = http://x\n"),
        &["auth_type is not set", "[ks]"],
    );
    su_err(
        &format!("{on}auth_section = nowhere\n"),
        &["[service_user] auth_section", "no such section"],
    );
    su_err(
        &format!("{on}{pw}"),
        &["nova.conf:1: [service_user]", "option password is not set"],
    );
    su_err(
        &format!("{on}{pw}password =\n"),
        &["option password is not set"],
    );
    su_err(
        &format!("{on}auth_type = passwd\n"),
        &["[service_user] auth_type", "unknown auth type"],
    );
    su_err(
        &format!("{on}auth_type = password\nusername = nova\npassword = x\n"),
        &["option auth_url is not set"],
    );
    su_err(
        &format!("{on}auth_type = password\nauth_url = ctl:5000\nusername = nova\npassword = x\n"),
        &["[service_user] auth_url", "http"],
    );
    su_err(&format!("{on}auth_type = password\nauth_url = http://c/v3\nusername = nova\npassword = N0va-Secret-p3Wq8\n"), &["option user_domain_name is not set"]);
    su_err(
        &format!(
            "{on}auth_type = password\nauth_url = http://c/v3\npassword = N0va-Secret-p3Wq8\n"
        ),
        &["option username is not set"],
    );
    su_err(
        &format!("{on}{pw}password = x\nproject_name = service\n"),
        &["option project_domain_name is not set"],
    );
    su_err(
        &format!("{on}{pw}password = x\nproject_id = p\ndomain_id = d\n"),
        &["project_id, domain_id", "only one"],
    );
    su_err(
        &format!("{on}{pw}password = x\nsystem_scope = everything\n"),
        &["[service_user] system_scope"],
    );
    su_err(
        &format!("{on}{pw}password = x\ntrust_id = t\nproject_id = p\n"),
        &["trust_id, project_id", "only one"],
    );
    su_err(&format!("{on}auth_type = v3applicationcredential\nauth_url = http://c/v3\napplication_credential_id = a\napplication_credential_secret = s\nproject_name = p\n"), &["[service_user] project_name", "own scope"]);
    su_err(&format!("{on}auth_type = v3applicationcredential\nauth_url = http://c/v3\napplication_credential_name = a\napplication_credential_secret = s\n"), &["option username is not set"]);
    su_err(
        &format!("{on}auth_type = token\nauth_url = http://c/v3\n"),
        &["option token is not set"],
    );
    su_err(
        &format!("{on}{pw}password = x\ncafile = /nonexistent/ca.pem\n"),
        &["[service_user] cafile", "cannot read"],
    );
    su_err(
        &format!("{on}{pw}password = x\ncertfile = /etc/passwd\n"),
        &["option keyfile is not set"],
    );
    su_err(
        &format!("{on}{pw}password = x\ntimeout = soon\n"),
        &["[service_user] timeout", "not an integer"],
    );
    su_err(
        "[service_user]\nsend_service_user_token = perhaps\n",
        &["send_service_user_token", "not a boolean"],
    );

    // AuthConfig on its own (e.g. [keystone_authtoken]): None without auth_type.
    assert!(AuthConfig::from_ini(
        &ini("[keystone_authtoken]\nauth_url = http://x\n"),
        "keystone_authtoken"
    )
    .unwrap()
    .is_none());
}

#[tokio::test]
async fn validate_at_startup_against_the_server() {
    let s = Server::start().await;
    let section = |auth_url: &str, user: &str, pw: &str| {
        ini(&format!(
            "[service_user]\nsend_service_user_token = true\nauth_type = password\nauth_url = {auth_url}\n\
             username = {user}\nuser_domain_name = Default\npassword = {pw}\nproject_name = service\n\
             project_domain_id = default\n"
        ))
    };
    let load = |i: IniFile| {
        ServiceUserConfig::from_ini(&i, "service_user")
            .unwrap()
            .unwrap()
    };

    let good = load(section(&s.base, "nova", NOVA_PW));
    let check = good.validate_at_startup().await.expect("good credentials");
    assert_eq!(check.user_id, s.ids.nova);
    assert_eq!(
        check.project_id.as_deref(),
        Some(s.ids.service_project.as_str())
    );
    assert!(check.roles.contains(&"service".to_string()));
    assert!(check.warnings.is_empty(), "{:?}", check.warnings);
    // The configured plugin, through a session, carries the service token.
    let plugin = good.auth_plugin();
    assert!(plugin
        .get_access(&http())
        .await
        .unwrap()
        .has_role("service"));

    let err = load(section(&s.base, "nova", WRONG_PW))
        .validate_at_startup()
        .await
        .expect_err("wrong password");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "[service_user] in nova.conf: cannot authenticate the service user: identity at"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("refused to authenticate nova@Default: 401"),
        "{msg}"
    );
    assert!(!msg.contains(WRONG_PW) && !msg.contains('\n'));

    let err = load(section(&format!("{}/keystone", s.base), "nova", NOVA_PW))
        .validate_at_startup()
        .await
        .expect_err("wrong auth_url path");
    assert!(
        err.to_string().contains("found no identity v3 API") && err.to_string().contains("404"),
        "{err}"
    );

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = load(section(
        &format!("http://127.0.0.1:{port}/v3"),
        "nova",
        NOVA_PW,
    ))
    .validate_at_startup()
    .await
    .expect_err("nothing listening");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string()
            .contains("cannot connect to http://127.0.0.1:"),
        "{err}"
    );

    // A service user without the `service` role: an error at start-up, naming the user, its
    // roles and the fix, not a silent fall-back.
    let err = load(section(&s.base, "plain", USER_PW))
        .validate_at_startup()
        .await
        .expect_err("no service role");
    let msg = err.to_string();
    assert!(
        msg.starts_with("[service_user] in nova.conf: service user plain (")
            && msg.contains(&s.ids.plain)
            && msg.contains("has roles [member, reader] on project service but none of [service]")
            && msg.contains("openstack role add --user plain --project service service"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains(USER_PW), "{msg}");
    // Receivers configured with other roles: checked against those; none: no role check.
    let cfg = load(section(&s.base, "plain", USER_PW));
    let check = cfg
        .validate_at_startup_with_roles(&["member", "service"])
        .await
        .expect("member is accepted");
    assert_eq!(check.user_id, s.ids.plain);
    assert!(check.warnings.is_empty(), "{:?}", check.warnings);
    cfg.validate_at_startup_with_roles(&[])
        .await
        .expect("no role check");
}

// ----- secrets -------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_token_or_password_in_logs_debug_or_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = Server::start().await;
    let nova = Arc::new(s.nova());
    let session = Session::new(nova.clone()).unwrap();
    let t1 = session.get_token().await.unwrap();
    session
        .get("identity", "auth/catalog")
        .send()
        .await
        .unwrap();
    s.revoke(&t1).await;
    session
        .get("identity", "auth/catalog")
        .send()
        .await
        .expect("re-auth after revoke");
    let t2 = session.get_token().await.unwrap();
    let bad = Password::new(s.v3(), UserRef::id(&s.ids.nova), WRONG_PW);
    let err = bad.get_access(session.http()).await.unwrap_err();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("request_id=req-"),
        "request ids are logged:\n{text}"
    );
    assert!(
        text.contains(&t2.fingerprint()),
        "tokens are identified by fingerprint:\n{text}"
    );
    let debug = format!(
        "{nova:?} {session:?} {:?} {t1:?} {bad:?} {err:?}",
        nova.cached().unwrap()
    );
    for secret in [t1.expose(), t2.expose(), NOVA_PW, WRONG_PW] {
        assert!(!text.contains(secret), "secret in logs");
        assert!(!debug.contains(secret), "secret in Debug: {debug}");
        assert!(!err.to_string().contains(secret));
    }
    assert!(
        debug.contains("<redacted>") && debug.contains(&format!("sha256:{}", t1.fingerprint()))
    );
}
