//! HTTP tests against a running Baton on loopback.
//!
//! Every test starts the real server (`baton_server::serve`, through `baton-testkit`) in-process
//! on `127.0.0.1:0` with its own temporary SQLite database and Fernet key repository, bootstraps
//! it like
//! `baton manage bootstrap`, adds users, projects and role assignments through the store, and
//! drives it over HTTP with reqwest. Every response goes through [`Server::send`], which checks
//! the invariants Keystone keeps on all responses: `Vary: X-Auth-Token`, a fresh
//! `x-openstack-request-id`, the `{"error": {code, title, message}}` body on errors, the
//! `WWW-Authenticate` header and generic message on 401s, and no password anywhere.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "server/admin_catalog.rs"]
mod admin_catalog;
#[path = "server/admin_projects.rs"]
mod admin_projects;
#[path = "server/admin_roles.rs"]
mod admin_roles;
#[path = "server/admin_users.rs"]
mod admin_users;
#[path = "server/application_credentials.rs"]
mod application_credentials;
#[path = "server/change_feed.rs"]
mod change_feed;
#[path = "server/continuations.rs"]
mod continuations;
#[path = "server/credentials.rs"]
mod credentials;
#[path = "server/domain_config.rs"]
mod domain_config;
#[path = "server/endpoint_filter.rs"]
mod endpoint_filter;
#[path = "server/faults.rs"]
mod faults;
#[path = "server/federation.rs"]
mod federation;
#[path = "server/fleet.rs"]
mod fleet;
#[path = "server/fuzz_corpus.rs"]
mod fuzz_corpus;
#[path = "server/identity_model.rs"]
mod identity_model;
#[path = "server/limits.rs"]
mod limits;
#[path = "server/notifications.rs"]
mod notifications;
#[path = "server/oauth1.rs"]
mod oauth1;
#[path = "server/persona_matrix.rs"]
mod persona_matrix;
#[path = "server/policies.rs"]
mod policies;
#[path = "server/query_plans.rs"]
mod query_plans;
#[path = "server/request_limits.rs"]
mod request_limits;
#[path = "server/security_admin.rs"]
mod security_admin;
#[path = "server/security_compliance.rs"]
mod security_compliance;
#[path = "server/security_serve.rs"]
mod security_serve;
#[path = "server/security_tokens.rs"]
mod security_tokens;
#[path = "server/snapshot.rs"]
mod snapshot;
#[path = "server/tls.rs"]
mod tls;
#[path = "server/token_pairs.rs"]
mod token_pairs;
#[path = "server/trusts.rs"]
mod trusts;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_config::IdentityConfig;
use baton_server::clock::Clock;
use baton_server::AppState;
use baton_store::{Assignment, AssignmentType, Store};
use baton_testkit::{DbDialect, IdentityServer, ADMIN_PASSWORD as ADMIN_PW};
use baton_token::{
    random_audit_id, KeyRepository, KeyRing, PayloadCodec, Scope, TokenFormatter, TokenPayload,
};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

const USER_PW: &str = "Us3r-Secret-k1Lm9";
const WRONG_PW: &str = "Wr0ng-Secret-x4Yt7";
/// No response body or header may ever contain one of these.
const PASSWORDS: [&str; 3] = [ADMIN_PW, USER_PW, WRONG_PW];
/// Sent on every request; Keystone never echoes a client's request id.
const CLIENT_REQUEST_ID: &str = "req-11111111-2222-4333-8444-555555555555";
const GENERIC_401: &str = "The request you have made requires authentication.";

// ----- harness -------------------------------------------------------------------------------

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    fn subject(&self) -> String {
        self.header("x-subject-token")
            .expect("X-Subject-Token header")
            .to_string()
    }

    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// The error message, after checking the status.
    #[track_caller]
    fn error(&self, status: StatusCode) -> String {
        self.expect(status);
        self.json()["error"]["message"]
            .as_str()
            .expect("error.message")
            .to_string()
    }
}

/// Users, projects and roles every server starts with.
struct Ids {
    admin: String,
    admin_project: String,
    /// Member of `demo` (her default project) and of the default domain.
    alice: String,
    /// Member of `demo`, without a default project.
    bob: String,
    /// Holds only the `service` role, on the `service` project.
    svc: String,
    demo: String,
    service_project: String,
}

struct Server {
    base: String,
    client: reqwest::Client,
    state: AppState,
    config: IdentityConfig,
    keys: KeyRepository,
    ids: Ids,
    request_ids: Mutex<HashSet<String>>,
    /// The testkit server behind all of this; dropping it stops the server.
    identity: IdentityServer,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut IdentityConfig)) -> Server {
        Server::start_with_clock(Clock::system(), tweak).await
    }

    /// A server whose clock moves only when the test moves it.
    async fn start_manual_clock() -> Server {
        Server::start_with_clock(Clock::manual(Utc::now()), |_| {}).await
    }

    async fn start_with_clock(clock: Clock, tweak: impl FnOnce(&mut IdentityConfig)) -> Server {
        let identity = IdentityServer::start_with_clock(DbDialect::Sqlite, clock, tweak).await;
        let config = identity.config.clone();
        let keys = KeyRepository::new(
            &config.fernet_tokens.key_repository,
            config.fernet_tokens.max_active_keys as usize,
        );

        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            "x-openstack-request-id",
            CLIENT_REQUEST_ID.parse().expect("header"),
        );
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(default_headers)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");

        let mut server = Server {
            base: identity.base.clone(),
            client,
            state: identity.state.clone(),
            config,
            keys,
            ids: Ids {
                admin: identity.admin_user_id.clone(),
                admin_project: identity.admin_project_id.clone(),
                alice: String::new(),
                bob: String::new(),
                svc: String::new(),
                demo: String::new(),
                service_project: String::new(),
            },
            request_ids: Mutex::new(HashSet::new()),
            identity,
        };
        let demo = server.create_project("demo", "default").await;
        let service_project = server.create_project("service", "default").await;
        let alice = server.create_user("alice", "default", Some(&demo)).await;
        let bob = server.create_user("bob", "default", None).await;
        let svc = server.create_user("nova", "default", None).await;
        server
            .grant(AssignmentType::UserProject, &alice, &demo, "member")
            .await;
        server
            .grant(AssignmentType::UserDomain, &alice, "default", "member")
            .await;
        server
            .grant(AssignmentType::UserProject, &bob, &demo, "member")
            .await;
        server
            .grant(
                AssignmentType::UserProject,
                &svc,
                &service_project,
                "service",
            )
            .await;
        server.ids.alice = alice;
        server.ids.bob = bob;
        server.ids.svc = svc;
        server.ids.demo = demo;
        server.ids.service_project = service_project;
        server
    }

    fn store(&self) -> &Store {
        &self.state.store
    }

    // ----- fixtures ----------------------------------------------------------------------

    async fn role_id(&self, name: &str) -> String {
        self.identity.role_id(name).await
    }

    async fn create_domain(&self, name: &str) -> String {
        self.identity.create_domain(name).await
    }

    async fn create_project(&self, name: &str, domain_id: &str) -> String {
        self.identity.create_project(name, domain_id).await
    }

    /// A user with the shared test password.
    async fn create_user(
        &self,
        name: &str,
        domain_id: &str,
        default_project: Option<&str>,
    ) -> String {
        self.identity
            .create_user_with(name, USER_PW, domain_id, default_project)
            .await
    }

    async fn assignment(
        &self,
        kind: AssignmentType,
        actor: &str,
        target: &str,
        role: &str,
    ) -> Assignment {
        Assignment {
            kind,
            actor_id: actor.into(),
            target_id: target.into(),
            role_id: self.role_id(role).await,
            inherited: false,
        }
    }

    async fn grant(&self, kind: AssignmentType, actor: &str, target: &str, role: &str) {
        let a = self.assignment(kind, actor, target, role).await;
        self.store().create_assignment(&a).await.expect("grant");
    }

    // ----- HTTP --------------------------------------------------------------------------

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Sends a request and checks what must hold for every response.
    async fn send(&self, rb: RequestBuilder) -> Resp {
        let (client, req) = rb.build_split();
        let req = req.expect("request");
        let is_head = req.method() == Method::HEAD;
        let resp = client.execute(req).await.expect("HTTP request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("body");
        let r = Resp {
            status,
            headers,
            body,
        };

        assert_eq!(r.header("vary"), Some("X-Auth-Token"), "Vary on {status}");
        let rid = r
            .header("x-openstack-request-id")
            .expect("x-openstack-request-id")
            .to_string();
        assert_ne!(rid, CLIENT_REQUEST_ID, "the client's request id was echoed");
        let uuid = rid
            .strip_prefix("req-")
            .unwrap_or_else(|| panic!("request id {rid:?} lacks req-"));
        uuid::Uuid::parse_str(uuid).unwrap_or_else(|e| panic!("request id {rid:?}: {e}"));
        assert!(
            self.request_ids.lock().unwrap().insert(rid.clone()),
            "request id {rid} reused"
        );
        for pw in PASSWORDS {
            assert!(
                !r.body.contains(pw),
                "a password leaked into a {status} body"
            );
            for (name, value) in &r.headers {
                assert!(
                    !String::from_utf8_lossy(value.as_bytes()).contains(pw),
                    "a password leaked into header {name}"
                );
            }
        }
        if status.is_client_error() || status.is_server_error() {
            if is_head {
                assert!(r.body.is_empty(), "HEAD {status} with a body");
            } else {
                assert!(
                    r.header("content-type")
                        .is_some_and(|c| c.starts_with("application/json")),
                    "error content type {:?}",
                    r.header("content-type")
                );
                let v = r.json();
                let err = v["error"]
                    .as_object()
                    .unwrap_or_else(|| panic!("error body lacks an `error` object: {}", r.body));
                let keys: BTreeSet<&str> = err.keys().map(String::as_str).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["code", "message", "title"]),
                    "error keys: {}",
                    r.body
                );
                assert_eq!(err["code"], json!(status.as_u16()));
                assert_eq!(
                    err["title"],
                    json!(status.canonical_reason().expect("reason")),
                    "error title"
                );
                assert!(
                    err["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "error message: {}",
                    r.body
                );
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                r.header("www-authenticate"),
                Some(format!("Keystone uri=\"{}/v3\"", self.base).as_str()),
                "WWW-Authenticate"
            );
            if !is_head {
                assert_eq!(r.json()["error"]["message"], json!(GENERIC_401));
            }
        }
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500: {}", r.body);
        r
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut rb = self.req(Method::GET, path);
        if let Some(t) = token {
            rb = rb.header("x-auth-token", t);
        }
        self.send(rb).await
    }

    async fn post_tokens(&self, query: &str, body: &Value) -> Resp {
        self.send(
            self.req(Method::POST, &format!("/v3/auth/tokens{query}"))
                .json(body),
        )
        .await
    }

    /// Issues a token; asserts 201 and returns it with its body.
    async fn token(&self, body: &Value) -> (String, Value) {
        let r = self.post_tokens("", body).await;
        r.expect(StatusCode::CREATED);
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        (r.subject(), r.json())
    }

    /// A fresh admin token scoped to the admin project.
    async fn admin_token(&self) -> String {
        let body = auth(
            pw_id(&self.ids.admin, ADMIN_PW),
            Some(json!({"project": {"id": self.ids.admin_project}})),
        );
        self.token(&body).await.0
    }

    async fn user_token(&self, user_id: &str, scope: Option<Value>) -> String {
        self.token(&auth(pw_id(user_id, USER_PW), scope)).await.0
    }

    async fn user_token_pw(&self, user_id: &str, pw: &str, scope: Option<Value>) -> String {
        self.token(&auth(pw_id(user_id, pw), scope)).await.0
    }

    async fn subject_request(
        &self,
        method: Method,
        caller: Option<&str>,
        subject: Option<&str>,
        query: &str,
    ) -> Resp {
        let mut rb = self.req(method, &format!("/v3/auth/tokens{query}"));
        if let Some(c) = caller {
            rb = rb.header("x-auth-token", c);
        }
        if let Some(s) = subject {
            rb = rb.header("x-subject-token", s);
        }
        self.send(rb).await
    }

    async fn validate(&self, caller: &str, subject: &str, query: &str) -> Resp {
        self.subject_request(Method::GET, Some(caller), Some(subject), query)
            .await
    }

    async fn check(&self, caller: &str, subject: &str) -> Resp {
        self.subject_request(Method::HEAD, Some(caller), Some(subject), "")
            .await
    }

    async fn revoke(&self, caller: &str, subject: &str) -> Resp {
        self.subject_request(Method::DELETE, Some(caller), Some(subject), "")
            .await
    }
}

fn pw_id(user_id: &str, pw: &str) -> Value {
    json!({"methods": ["password"], "password": {"user": {"id": user_id, "password": pw}}})
}

fn pw_name(name: &str, domain: Value, pw: &str) -> Value {
    json!({"methods": ["password"],
           "password": {"user": {"name": name, "domain": domain, "password": pw}}})
}

fn token_identity(token: &str) -> Value {
    json!({"methods": ["token"], "token": {"id": token}})
}

fn auth(identity: Value, scope: Option<Value>) -> Value {
    let mut a = json!({ "identity": identity });
    if let Some(s) = scope {
        a["scope"] = s;
    }
    json!({ "auth": a })
}

/// Parses Keystone's `YYYY-MM-DDTHH:MM:SS.000000Z`, insisting on exactly that form.
#[track_caller]
fn keystone_time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp {v}"));
    assert_eq!(s.len(), 27, "timestamp {s}");
    assert!(s.ends_with(".000000Z"), "timestamp {s}");
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S.000000Z")
        .unwrap_or_else(|e| panic!("timestamp {s}: {e}"))
        .and_utc()
}

fn role_names(token: &Value) -> BTreeSet<String> {
    token["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["name"].as_str().expect("role name").to_string())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn sleep_until(t: DateTime<Utc>) {
    let left = (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left).await;
}

/// Polls `f` until it yields `want` or `limit` passes; returns the last status.
async fn eventually<F, Fut>(limit: Duration, want: StatusCode, mut f: F) -> StatusCode
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    let start = Instant::now();
    loop {
        let got = f().await;
        if got == want || start.elapsed() > limit {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----- version discovery ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_discovery() {
    let s = Server::start().await;
    let r = s.get("/", None).await;
    r.expect(StatusCode::MULTIPLE_CHOICES);
    let v = r.json();
    let version = &v["versions"]["values"][0];
    assert_eq!(version["id"], "v3.14");
    assert_eq!(version["status"], "stable");
    assert_eq!(version["updated"], "2020-04-07T00:00:00Z");
    assert_eq!(version["links"][0]["rel"], "self");
    assert_eq!(version["links"][0]["href"], format!("{}/v3/", s.base));
    assert_eq!(
        version["media-types"][0]["type"],
        "application/vnd.openstack.identity-v3+json"
    );
    assert_eq!(
        r.header("location"),
        Some(format!("{}/v3/", s.base).as_str())
    );

    for path in ["/v3", "/v3/"] {
        let r = s.get(path, None).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.json()["version"]["id"], "v3.14");
        assert_eq!(
            r.json()["version"]["links"][0]["href"],
            format!("{}/v3/", s.base)
        );
    }

    // Unknown paths answer with Keystone's error body too (checked in `send`).
    s.get("/v3/no-such-thing", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

// ----- POST /v3/auth/tokens ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_password_and_every_scope() {
    let s = Server::start().await;
    let ids = &s.ids;

    // Password by user id, explicit "unscoped".
    let (tok, body) = s
        .token(&auth(pw_id(&ids.bob, USER_PW), Some(json!("unscoped"))))
        .await;
    assert!(!tok.is_empty() && !tok.contains('='), "padding is stripped");
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["id"], json!(ids.bob));
    assert_eq!(t["user"]["name"], "bob");
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert!(t["user"]
        .as_object()
        .unwrap()
        .contains_key("password_expires_at"));
    assert_eq!(t["audit_ids"].as_array().unwrap().len(), 1);
    assert_eq!(t["audit_ids"][0].as_str().unwrap().len(), 22);
    for k in ["project", "domain", "system", "roles", "catalog"] {
        assert!(t.get(k).is_none(), "unscoped token has {k}");
    }
    let issued = keystone_time(&t["issued_at"]);
    let expires = keystone_time(&t["expires_at"]);
    assert_eq!((expires - issued).num_seconds(), 3600);
    assert!((Utc::now() - issued).num_seconds().abs() <= 5);

    // The old `{"unscoped": {}}` form.
    let (_, body) = s
        .token(&auth(
            pw_id(&ids.bob, USER_PW),
            Some(json!({"unscoped": {}})),
        ))
        .await;
    assert!(body["token"].get("project").is_none());

    // By name with the domain's name, and with the domain's id.
    for domain in [json!({"name": "Default"}), json!({"id": "default"})] {
        let (_, body) = s
            .token(&auth(
                pw_name("alice", domain, USER_PW),
                Some(json!("unscoped")),
            ))
            .await;
        assert_eq!(body["token"]["user"]["id"], json!(ids.alice));
    }

    // Project scope by id: roles, project, catalog.
    let (_, body) = s
        .token(&auth(
            pw_id(&ids.bob, USER_PW),
            Some(json!({"project": {"id": ids.demo}})),
        ))
        .await;
    let t = &body["token"];
    assert_eq!(
        t["project"],
        json!({"domain": {"id": "default", "name": "Default"}, "id": ids.demo, "name": "demo"})
    );
    assert_eq!(t["is_domain"], json!(false));
    assert_eq!(role_names(t), names(&["member", "reader"]));
    let catalog = t["catalog"].as_array().expect("catalog");
    let identity = catalog
        .iter()
        .find(|svc| svc["type"] == "identity")
        .expect("identity service");
    assert_eq!(identity["name"], "keystone");
    assert!(identity["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["interface"] == "public"
            && e["url"] == format!("{}/v3", s.base)
            && e["region_id"] == "RegionOne"));

    // ?nocatalog (bare and with a value) leaves the catalog out.
    for q in ["?nocatalog", "?nocatalog=1"] {
        let r = s
            .post_tokens(
                q,
                &auth(
                    pw_id(&ids.bob, USER_PW),
                    Some(json!({"project": {"id": ids.demo}})),
                ),
            )
            .await;
        r.expect(StatusCode::CREATED);
        assert!(r.json()["token"].get("catalog").is_none(), "{q}");
        assert!(r.json()["token"].get("roles").is_some());
    }

    // Project scope by name + domain name / domain id.
    for domain in [json!({"name": "Default"}), json!({"id": "default"})] {
        let (_, body) = s
            .token(&auth(
                pw_id(&ids.bob, USER_PW),
                Some(json!({"project": {"name": "demo", "domain": domain}})),
            ))
            .await;
        assert_eq!(body["token"]["project"]["id"], json!(ids.demo));
    }

    // Domain scope, by id and by name.
    for domain in [json!({"id": "default"}), json!({"name": "Default"})] {
        let (_, body) = s
            .token(&auth(
                pw_id(&ids.alice, USER_PW),
                Some(json!({ "domain": domain })),
            ))
            .await;
        let t = &body["token"];
        assert_eq!(t["domain"], json!({"id": "default", "name": "Default"}));
        assert!(t.get("project").is_none());
        assert_eq!(role_names(t), names(&["member", "reader"]));
        assert!(t["catalog"].is_array());
    }

    // System scope: admin, with its implied roles.
    let (_, body) = s
        .token(&auth(
            pw_id(&ids.admin, ADMIN_PW),
            Some(json!({"system": {"all": true}})),
        ))
        .await;
    let t = &body["token"];
    assert_eq!(t["system"], json!({"all": true}));
    assert_eq!(
        role_names(t),
        names(&["admin", "manager", "member", "reader"])
    );
    assert!(t.get("project").is_none() && t.get("domain").is_none());

    // No scope: alice has a default project with a role there, so the token is scoped to it.
    let (_, body) = s.token(&auth(pw_id(&ids.alice, USER_PW), None)).await;
    assert_eq!(body["token"]["project"]["id"], json!(ids.demo));
    assert_eq!(role_names(&body["token"]), names(&["member", "reader"]));
    // bob has none: unscoped.
    let (_, body) = s.token(&auth(pw_id(&ids.bob, USER_PW), None)).await;
    assert!(body["token"].get("project").is_none());
    assert!(body["token"].get("roles").is_none());
    assert!(body["token"].get("catalog").is_none());

    // A default project without a role there also gives an unscoped token.
    let carol = s
        .create_user("carol", "default", Some(&ids.admin_project))
        .await;
    let (_, body) = s.token(&auth(pw_id(&carol, USER_PW), None)).await;
    assert!(body["token"].get("project").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_rescope_with_token_method() {
    let s = Server::start_manual_clock().await;
    let ids = &s.ids;
    let (unscoped, body) = s.token(&auth(pw_id(&ids.bob, USER_PW), None)).await;
    let original = &body["token"];
    let original_audit = original["audit_ids"][0].as_str().unwrap().to_string();

    // Let a second pass, so that a recomputed expiry would differ from the original one.
    s.state
        .tokens
        .clock
        .advance(chrono::Duration::milliseconds(1100));
    let (scoped, body) = s
        .token(&auth(
            token_identity(&unscoped),
            Some(json!({"project": {"id": ids.demo}})),
        ))
        .await;
    let t = &body["token"];
    assert_eq!(t["expires_at"], original["expires_at"], "expiry is kept");
    assert_ne!(t["issued_at"], original["issued_at"]);
    let audit: Vec<&str> = t["audit_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(audit.len(), 2);
    assert_ne!(audit[0], original_audit);
    assert_eq!(audit[1], original_audit);
    let methods: BTreeSet<&str> = t["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(methods, BTreeSet::from(["password", "token"]));
    assert_eq!(t["project"]["id"], json!(ids.demo));
    assert_eq!(t["user"]["id"], json!(ids.bob));

    // Re-scoping the re-scoped token keeps the original chain id as the parent.
    let (_, body) = s
        .token(&auth(token_identity(&scoped), Some(json!("unscoped"))))
        .await;
    let t = &body["token"];
    assert_eq!(t["audit_ids"][1], json!(original_audit));
    assert_eq!(t["expires_at"], original["expires_at"]);
    assert!(t.get("project").is_none());

    // The re-scoped token validates like any other.
    let admin = s.admin_token().await;
    let r = s.validate(&admin, &scoped, "").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["token"]["audit_ids"][1], json!(original_audit));

    // Re-scoping to a project without a role is 401.
    let r = s
        .post_tokens(
            "",
            &auth(
                token_identity(&unscoped),
                Some(json!({"project": {"id": ids.admin_project}})),
            ),
        )
        .await;
    r.expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_rejects_bad_credentials_with_401() {
    let s = Server::start().await;
    let ids = &s.ids;
    let unauthorized = |r: Resp| {
        assert_eq!(r.error(StatusCode::UNAUTHORIZED), GENERIC_401);
    };

    // Wrong password, by id and by name.
    unauthorized(
        s.post_tokens("", &auth(pw_id(&ids.bob, WRONG_PW), None))
            .await,
    );
    unauthorized(
        s.post_tokens(
            "",
            &auth(pw_name("bob", json!({"name": "Default"}), WRONG_PW), None),
        )
        .await,
    );
    // Unknown user, by id and by name; unknown domain.
    unauthorized(
        s.post_tokens("", &auth(pw_id(&baton_store::new_id(), USER_PW), None))
            .await,
    );
    unauthorized(
        s.post_tokens(
            "",
            &auth(pw_name("nobody", json!({"id": "default"}), USER_PW), None),
        )
        .await,
    );
    unauthorized(
        s.post_tokens(
            "",
            &auth(
                pw_name("bob", json!({"name": "NoSuchDomain"}), USER_PW),
                None,
            ),
        )
        .await,
    );

    // Disabled user, with the right password.
    let dave = s.create_user("dave", "default", None).await;
    s.token(&auth(pw_id(&dave, USER_PW), None)).await;
    s.store().set_user_enabled(&dave, false).await.unwrap();
    unauthorized(s.post_tokens("", &auth(pw_id(&dave, USER_PW), None)).await);

    // A user whose domain is disabled.
    let dom = s.create_domain("Elsewhere").await;
    let erin = s.create_user("erin", &dom, None).await;
    s.token(&auth(
        pw_name("erin", json!({"name": "Elsewhere"}), USER_PW),
        None,
    ))
    .await;
    s.store().set_project_enabled(&dom, false).await.unwrap();
    unauthorized(s.post_tokens("", &auth(pw_id(&erin, USER_PW), None)).await);
    unauthorized(
        s.post_tokens(
            "",
            &auth(pw_name("erin", json!({"id": dom}), USER_PW), None),
        )
        .await,
    );

    // Scopes the user holds no role on, or that do not exist.
    let bob = || pw_id(&ids.bob, USER_PW);
    for scope in [
        json!({"project": {"id": ids.admin_project}}),
        json!({"project": {"name": "admin", "domain": {"id": "default"}}}),
        json!({"project": {"id": baton_store::new_id()}}),
        json!({"project": {"name": "nope", "domain": {"name": "Default"}}}),
        json!({"domain": {"id": "default"}}),
        json!({"domain": {"name": "NoSuchDomain"}}),
        json!({"system": {"all": true}}),
    ] {
        unauthorized(s.post_tokens("", &auth(bob(), Some(scope))).await);
    }

    // A disabled project cannot be scoped to.
    let off = s.create_project("off", "default").await;
    s.grant(AssignmentType::UserProject, &ids.bob, &off, "member")
        .await;
    s.token(&auth(bob(), Some(json!({"project": {"id": off}}))))
        .await;
    s.store().set_project_enabled(&off, false).await.unwrap();
    unauthorized(
        s.post_tokens("", &auth(bob(), Some(json!({"project": {"id": off}}))))
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_rejects_malformed_bodies_with_400_and_large_ones_with_413() {
    let s = Server::start().await;
    let bob = s.ids.bob.clone();

    let raw = |body: &'static str| {
        s.req(Method::POST, "/v3/auth/tokens")
            .header("content-type", "application/json")
            .body(body)
    };
    s.send(raw("this is not JSON"))
        .await
        .expect(StatusCode::BAD_REQUEST);
    s.send(raw("{\"auth\": "))
        .await
        .expect(StatusCode::BAD_REQUEST);

    let bad = [
        json!({}),
        json!({"auth": {}}),
        json!({"auth": {"identity": {}}}),
        json!({"auth": {"identity": {"methods": "password",
            "password": {"user": {"id": bob, "password": USER_PW}}}}}),
        // A method without its object.
        json!({"auth": {"identity": {"methods": ["password"]}}}),
        // A name without a domain.
        json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": "bob", "password": USER_PW}}}}}),
        // Neither id nor name.
        json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"password": USER_PW}}}}}),
        // Two scopes at once.
        auth(
            pw_id(&bob, USER_PW),
            Some(json!({"project": {"id": s.ids.demo},
                                               "domain": {"id": "default"}})),
        ),
        // A project name without a domain.
        auth(
            pw_id(&bob, USER_PW),
            Some(json!({"project": {"name": "demo"}})),
        ),
        // Scope of the wrong type.
        auth(pw_id(&bob, USER_PW), Some(json!(["project"]))),
    ];
    for body in &bad {
        let r = s.post_tokens("", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }

    // Larger than [oslo_middleware] max_request_body_size.
    let limit = s.config.oslo_middleware.max_request_body_size as usize;
    let mut big = auth(pw_id(&bob, USER_PW), None);
    big["padding"] = json!("x".repeat(limit + 1));
    s.post_tokens("", &big)
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is fine.
    let mut fits = auth(pw_id(&bob, USER_PW), None);
    fits["padding"] = json!("x".repeat(limit - 1024));
    s.post_tokens("", &fits).await.expect(StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_method_with_an_invalid_token_is_404() {
    let s = Server::start().await;
    let (good, _) = s.token(&auth(pw_id(&s.ids.bob, USER_PW), None)).await;
    let admin = s.admin_token().await;
    let revoked = s.user_token(&s.ids.bob, None).await;
    s.revoke(&admin, &revoked)
        .await
        .expect(StatusCode::NO_CONTENT);
    for bad in [
        "garbage".to_string(),
        good[..good.len() - 10].to_string(),
        format!("{good}AAAA"),
        revoked,
    ] {
        let r = s
            .post_tokens("", &auth(token_identity(&bad), Some(json!("unscoped"))))
            .await;
        r.expect(StatusCode::NOT_FOUND);
    }
}

// ----- GET / HEAD /v3/auth/tokens ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_returns_the_token_body() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let (subject, issued_body) = s
        .token(&auth(
            pw_id(&s.ids.alice, USER_PW),
            Some(json!({"project": {"id": s.ids.demo}})),
        ))
        .await;

    let r = s.validate(&admin, &subject, "").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("x-subject-token"), Some(subject.as_str()));
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let body = r.json();
    let t = &body["token"];
    assert_eq!(body, issued_body, "issue and validate render the same body");
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["user"]["id"], json!(s.ids.alice));
    assert_eq!(
        t["project"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["project"]["name"], "demo");
    assert_eq!(t["methods"], json!(["password"]));
    let issued = keystone_time(&t["issued_at"]);
    let expires = keystone_time(&t["expires_at"]);
    assert!(issued <= Utc::now());
    assert_eq!((expires - issued).num_seconds(), 3600);
    assert!(t["catalog"].is_array());

    // The admin's own token: admin implies manager, member and reader.
    let r = s.validate(&admin, &admin, "").await;
    r.expect(StatusCode::OK);
    let t = &r.json()["token"];
    assert_eq!(
        role_names(t),
        names(&["admin", "manager", "member", "reader"])
    );
    assert_eq!(t["project"]["id"], json!(s.ids.admin_project));

    // ?nocatalog.
    let r = s.validate(&admin, &subject, "?nocatalog").await;
    r.expect(StatusCode::OK);
    assert!(r.json()["token"].get("catalog").is_none());
    assert!(r.json()["token"].get("roles").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_errors_401_and_404() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let subject = s.user_token(&s.ids.bob, None).await;

    // No caller token, or an invalid one: 401.
    s.subject_request(Method::GET, None, Some(&subject), "")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    s.subject_request(Method::HEAD, None, Some(&subject), "")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    for caller in ["garbage", &admin[..admin.len() - 3]] {
        s.validate(caller, &subject, "")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }

    // No subject token: 404 with Keystone's message.
    let r = s.subject_request(Method::GET, Some(&admin), None, "").await;
    assert_eq!(
        r.error(StatusCode::NOT_FOUND),
        "Could not find token: No token in the request."
    );

    // Malformed, truncated, garbage subjects: 404.
    let mut flipped = subject.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let extended = format!("{subject}x");
    let long = "A".repeat(300);
    let bads: [&str; 8] = [
        "garbage",
        "gAAAAA",
        "!!!!not-base64!!!!",
        &subject[..subject.len() - 1],
        &subject[..subject.len() / 2],
        flipped.as_str(),
        extended.as_str(),
        long.as_str(),
    ];
    for bad in bads {
        let r = s.validate(&admin, bad, "").await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "subject {bad:?}: {}",
            r.body
        );
        s.subject_request(Method::HEAD, Some(&admin), Some(bad), "")
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    // The real subject still validates, also with its base64 padding restored (Keystone
    // restores it before decoding).
    s.validate(&admin, &subject, "")
        .await
        .expect(StatusCode::OK);
    let padded = format!("{subject}{}", "=".repeat((4 - subject.len() % 4) % 4));
    s.validate(&admin, &padded, "").await.expect(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_and_check_policies() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let alice = s.user_token(&s.ids.alice, None).await;
    let bob = s
        .user_token(&s.ids.bob, Some(json!({"project": {"id": s.ids.demo}})))
        .await;
    let svc = s
        .user_token(
            &s.ids.svc,
            Some(json!({"project": {"id": s.ids.service_project}})),
        )
        .await;

    // A member-only user may not validate someone else's token.
    let msg = s
        .validate(&bob, &alice, "")
        .await
        .error(StatusCode::FORBIDDEN);
    assert!(msg.contains("identity:validate_token"), "{msg}");
    // Also with an unscoped token.
    let bob_unscoped = s.user_token(&s.ids.bob, None).await;
    s.validate(&bob_unscoped, &alice, "")
        .await
        .expect(StatusCode::FORBIDDEN);
    // The `service` role may.
    let r = s.validate(&svc, &alice, "").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["token"]["user"]["id"], json!(s.ids.alice));
    // Anyone may validate their own token(s).
    s.validate(&bob, &bob, "").await.expect(StatusCode::OK);
    s.validate(&bob_unscoped, &bob, "")
        .await
        .expect(StatusCode::OK);
    // Admin may validate anything.
    s.validate(&admin, &svc, "").await.expect(StatusCode::OK);

    // HEAD: 200 without a body for admin and for the token's own user.
    let r = s.check(&admin, &alice).await;
    r.expect(StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-subject-token"), Some(alice.as_str()));
    s.check(&bob, &bob).await.expect(StatusCode::OK);
    // check_token lacks the service rule.
    s.check(&svc, &alice).await.expect(StatusCode::FORBIDDEN);
    s.check(&bob, &alice).await.expect(StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_expired_inside_and_outside_the_window() {
    let s = Server::start_with(|c| {
        c.token.expiration = 2;
        c.token.allow_expired_window = 2;
        // Prune revocation events as early as Baton ever may: expiry + window, no buffer.
        c.revoke.expiration_buffer = 0;
    })
    .await;
    let scope = Some(json!({"project": {"id": s.ids.demo}}));
    let (subject, body) = s
        .token(&auth(pw_id(&s.ids.bob, USER_PW), scope.clone()))
        .await;
    let (revoked, _) = s.token(&auth(pw_id(&s.ids.bob, USER_PW), scope)).await;
    let expires = keystone_time(&body["token"]["expires_at"]);
    let admin = s.admin_token().await;
    s.validate(&admin, &subject, "")
        .await
        .expect(StatusCode::OK);
    s.revoke(&admin, &revoked)
        .await
        .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &revoked, "?allow_expired=1")
        .await
        .expect(StatusCode::NOT_FOUND);

    // Just past expiry.
    sleep_until(expires + chrono::Duration::milliseconds(300)).await;
    let admin = s.admin_token().await;
    s.validate(&admin, &subject, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.check(&admin, &subject)
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &subject, "?allow_expired=0")
        .await
        .expect(StatusCode::NOT_FOUND);
    for q in [
        "?allow_expired=1",
        "?allow_expired=true",
        "?allow_expired=yes&nocatalog",
    ] {
        let r = s.validate(&admin, &subject, q).await;
        r.expect(StatusCode::OK);
        let t = &r.json()["token"];
        assert_eq!(keystone_time(&t["expires_at"]), expires, "{q}");
        assert!(keystone_time(&t["expires_at"]) < Utc::now());
        assert_eq!(r.header("x-subject-token"), Some(subject.as_str()));
    }
    let r = s.subject_request(
        Method::HEAD,
        Some(&admin),
        Some(&subject),
        "?allow_expired=1",
    );
    r.await.expect(StatusCode::OK);
    // An expired token is no good as the caller's own token, allow_expired or not.
    s.validate(&subject, &admin, "?allow_expired=1")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // Nor for the token method (404) or for revocation (404).
    s.post_tokens("", &auth(token_identity(&subject), None))
        .await
        .expect(StatusCode::NOT_FOUND);
    s.revoke(&admin, &subject)
        .await
        .expect(StatusCode::NOT_FOUND);

    // Over `expiration` seconds after the revocation (when Keystone, which keeps events for
    // expiration + expiration_buffer only, has pruned the event and the revoked token comes back
    // through allow_expired) but still inside the window.
    sleep_until(expires + chrono::Duration::milliseconds(1200)).await;
    let admin = s.admin_token().await;
    // Another revocation makes the server prune old events.
    let other = s.user_token(&s.ids.bob, None).await;
    s.revoke(&admin, &other)
        .await
        .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &subject, "?allow_expired=1")
        .await
        .expect(StatusCode::OK);
    s.validate(&admin, &revoked, "?allow_expired=1")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &revoked, "?allow_expired=true&nocatalog")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(s.store().revocation_event_count().await.unwrap() >= 1);

    // Past expiry + window: 404 even with allow_expired.
    sleep_until(expires + chrono::Duration::milliseconds(2300)).await;
    let admin = s.admin_token().await;
    for q in ["?allow_expired=1", "?allow_expired=true", ""] {
        s.validate(&admin, &subject, q)
            .await
            .expect(StatusCode::NOT_FOUND);
        s.validate(&admin, &revoked, q)
            .await
            .expect(StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabled_users_and_lost_roles_invalidate_tokens() {
    // These writes bypass the server (no admin API yet), like a write by another node: the
    // validation cache TTL bounds how long a stale result may be served.
    let s = Server::start_with(|c| c.baton.validation_cache_ttl = 1).await;
    let demo = Some(json!({"project": {"id": s.ids.demo}}));
    let limit = Duration::from_secs(4);

    // Disabling the user.
    let alice = s.user_token(&s.ids.alice, demo.clone()).await;
    let alice_unscoped = s.user_token(&s.ids.alice, None).await;
    let admin = s.admin_token().await;
    s.validate(&admin, &alice, "").await.expect(StatusCode::OK);
    s.store()
        .set_user_enabled(&s.ids.alice, false)
        .await
        .unwrap();
    let got = eventually(limit, StatusCode::NOT_FOUND, || async {
        s.validate(&admin, &alice, "").await.status
    })
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    s.validate(&admin, &alice_unscoped, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &alice, "?allow_expired=1")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&alice, &alice, "")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    s.post_tokens("", &auth(pw_id(&s.ids.alice, USER_PW), None))
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Removing bob's last role on the project.
    let bob = s.user_token(&s.ids.bob, demo.clone()).await;
    let bob_unscoped = s.user_token(&s.ids.bob, None).await;
    s.validate(&admin, &bob, "").await.expect(StatusCode::OK);
    let grant = s
        .assignment(
            AssignmentType::UserProject,
            &s.ids.bob,
            &s.ids.demo,
            "member",
        )
        .await;
    assert!(s.store().delete_assignment(&grant).await.unwrap());
    let got = eventually(limit, StatusCode::NOT_FOUND, || async {
        s.validate(&admin, &bob, "").await.status
    })
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    s.validate(&admin, &bob, "?allow_expired=1")
        .await
        .expect(StatusCode::NOT_FOUND);
    // His unscoped token does not depend on the role.
    s.validate(&admin, &bob_unscoped, "")
        .await
        .expect(StatusCode::OK);
    s.post_tokens("", &auth(pw_id(&s.ids.bob, USER_PW), demo.clone()))
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Disabling the project.
    let svc_scope = Some(json!({"project": {"id": s.ids.service_project}}));
    let svc = s.user_token(&s.ids.svc, svc_scope).await;
    s.validate(&admin, &svc, "").await.expect(StatusCode::OK);
    s.store()
        .set_project_enabled(&s.ids.service_project, false)
        .await
        .unwrap();
    let got = eventually(limit, StatusCode::NOT_FOUND, || async {
        s.validate(&admin, &svc, "").await.status
    })
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
}

// ----- DELETE /v3/auth/tokens ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_tokens() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let bob1 = s.user_token(&s.ids.bob, None).await;
    let bob2 = s.user_token(&s.ids.bob, None).await;
    let alice = s.user_token(&s.ids.alice, None).await;

    // Admin revokes bob1: 204 with no body; then it is gone, bob2 is not.
    let r = s.revoke(&admin, &bob1).await;
    r.expect(StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    s.validate(&admin, &bob1, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.check(&admin, &bob1).await.expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &bob2, "").await.expect(StatusCode::OK);
    // Revoking it again: 404; using it as the caller: 401.
    s.revoke(&admin, &bob1).await.expect(StatusCode::NOT_FOUND);
    s.validate(&bob1, &bob2, "")
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // A non-admin may not revoke someone else's token.
    let msg = s.revoke(&bob2, &alice).await.error(StatusCode::FORBIDDEN);
    assert!(msg.contains("identity:revoke_token"), "{msg}");
    s.validate(&admin, &alice, "").await.expect(StatusCode::OK);
    // A service-role user neither.
    let svc = s
        .user_token(
            &s.ids.svc,
            Some(json!({"project": {"id": s.ids.service_project}})),
        )
        .await;
    s.revoke(&svc, &alice).await.expect(StatusCode::FORBIDDEN);

    // Revoking one's own token: 204, and then it can no longer authenticate.
    s.revoke(&alice, &alice)
        .await
        .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &alice, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&alice, &alice, "")
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Missing headers and bad subjects.
    s.subject_request(Method::DELETE, None, Some(&bob2), "")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    s.subject_request(Method::DELETE, Some(&admin), None, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.revoke(&admin, "garbage")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.revoke("garbage", &bob2)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    s.validate(&admin, &bob2, "").await.expect(StatusCode::OK);

    // Revoking a re-scoped token does not touch the token it came from.
    let child = s
        .token(&auth(
            token_identity(&bob2),
            Some(json!({"project": {"id": s.ids.demo}})),
        ))
        .await
        .0;
    s.revoke(&admin, &child)
        .await
        .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &child, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &bob2, "").await.expect(StatusCode::OK);

    // Revoking a parent cascades to the tokens re-scoped from it (Keystone 30's default) unless
    // `?cascade=false` is given.
    let rescope = |t: &str| {
        auth(
            token_identity(t),
            Some(json!({"project": {"id": s.ids.demo}})),
        )
    };
    let parent = s.user_token(&s.ids.bob, None).await;
    let child = s.token(&rescope(&parent)).await.0;
    let grandchild = s.token(&rescope(&child)).await.0;
    s.revoke(&admin, &parent)
        .await
        .expect(StatusCode::NO_CONTENT);
    for t in [&parent, &child, &grandchild] {
        s.validate(&admin, t, "")
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    let parent = s.user_token(&s.ids.bob, None).await;
    let child = s.token(&rescope(&parent)).await.0;
    s.subject_request(
        Method::DELETE,
        Some(&admin),
        Some(&parent),
        "?cascade=false",
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &parent, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &child, "").await.expect(StatusCode::OK);
}

// ----- key rotation --------------------------------------------------------------------------

/// A token minted with the key repository directly, as another Baton or Keystone node sharing
/// the repository would: this server has never seen (nor cached) it.
fn external_token(s: &Server, user_id: &str, project_id: &str) -> String {
    let ring = KeyRing::load(KeyRepository::new(
        &s.config.fernet_tokens.key_repository,
        s.config.fernet_tokens.max_active_keys as usize,
    ))
    .expect("load keys");
    let formatter = TokenFormatter::new(
        ring,
        PayloadCodec::new(s.config.auth.methods.clone(), "default".into()),
    );
    formatter
        .create_token(&TokenPayload {
            user_id: user_id.into(),
            methods: vec!["password".into()],
            expires_at: (Utc::now().timestamp() + 3600) as f64,
            audit_ids: vec![random_audit_id()],
            scope: Scope::Project {
                project_id: project_id.into(),
            },
        })
        .expect("create token")
}

/// The index of the server's current primary key (the first key of its loaded set).
fn server_primary(s: &Server) -> Option<u64> {
    s.state.tokens.formatter().ring().current().key_info()[0].index
}

async fn wait_for_primary(s: &Server, index: u64) {
    let start = Instant::now();
    while server_primary(s) != Some(index) {
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the server did not pick up key {index} (it has {:?})",
            server_primary(s)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_is_picked_up_without_restart() {
    let s = Server::start_with(|c| c.fernet_tokens.max_active_keys = 3).await;
    let (bob, demo) = (s.ids.bob.clone(), s.ids.demo.clone());
    let (admin_id, admin_project) = (s.ids.admin.clone(), s.ids.admin_project.clone());
    assert_eq!(server_primary(&s), Some(1));
    let admin1 = s.admin_token().await;

    // Under key 1, the first primary: one issued here (and so cached), one minted by another
    // node and validated, one minted and not looked at before the rotations.
    let local = s
        .user_token(&bob, Some(json!({"project": {"id": demo}})))
        .await;
    let ext1 = external_token(&s, &bob, &demo);
    let ext1_unseen = external_token(&s, &bob, &demo);
    s.validate(&admin1, &local, "").await.expect(StatusCode::OK);
    s.validate(&admin1, &ext1, "").await.expect(StatusCode::OK);

    // Rotation 1: the staged key becomes primary 2. Other nodes encrypt with it at once, and
    // this server, which already holds it as its staged key, validates their tokens.
    let out = s.keys.rotate().expect("rotate");
    assert_eq!((out.new_primary, out.removed.len()), (2, 0));
    let ext2 = external_token(&s, &bob, &demo);
    let r = s.validate(&admin1, &ext2, "").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["token"]["user"]["id"], json!(bob));
    // The server starts encrypting with key 2 within a second or so, with no restart.
    wait_for_primary(&s, 2).await;
    let admin2 = s.admin_token().await;
    // Tokens under the previous primary still validate after one rotation.
    s.validate(&admin2, &ext1_unseen, "?nocatalog")
        .await
        .expect(StatusCode::OK);
    s.validate(&admin2, &local, "").await.expect(StatusCode::OK);
    s.validate(&admin2, &ext1, "").await.expect(StatusCode::OK);
    s.validate(&admin1, &admin2, "")
        .await
        .expect(StatusCode::OK);

    // Rotation 2 deletes key 1: every token under it stops validating, cached or not.
    let out = s.keys.rotate().expect("rotate");
    assert_eq!((out.new_primary, out.removed.clone()), (3, vec![1]));
    let ext3 = external_token(&s, &bob, &demo);
    s.validate(&admin2, &ext3, "").await.expect(StatusCode::OK);
    let limit = Duration::from_secs(4);
    for (what, token) in [
        ("issued here", &local),
        ("minted elsewhere", &ext1),
        ("minted elsewhere, validated once", &ext1_unseen),
    ] {
        let got = eventually(limit, StatusCode::NOT_FOUND, || async {
            s.validate(&admin2, token, "?allow_expired=1").await.status
        })
        .await;
        assert_eq!(
            got,
            StatusCode::NOT_FOUND,
            "token {what} under a deleted key"
        );
    }
    wait_for_primary(&s, 3).await;
    // The admin token under key 1 can no longer authenticate; key 2 (now secondary) and
    // key 3 (primary) tokens work.
    s.validate(&admin1, &ext2, "")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    s.validate(&admin2, &ext2, "").await.expect(StatusCode::OK);
    s.validate(&admin2, &ext3, "").await.expect(StatusCode::OK);

    // Two rotations back to back (keys 2 and 3 go; 4 and 5 remain): the new primary 5 was
    // written as the staged key by rotation 3, which this server has not loaded unless its
    // once-a-second refresh happened to run in between. A token under key 5 still validates
    // at once: a token that does not decrypt makes the server look at the repository.
    s.keys.rotate().expect("rotate");
    let out = s.keys.rotate().expect("rotate");
    assert_eq!((out.new_primary, out.removed.clone()), (5, vec![3]));
    let admin5 = external_token(&s, &admin_id, &admin_project);
    let r = s.validate(&admin5, &admin5, "").await;
    r.expect(StatusCode::OK);
    assert!(role_names(&r.json()["token"]).contains("admin"));
    assert_eq!(server_primary(&s), Some(5));
    for token in [&ext2, &ext3, &admin2] {
        s.validate(&admin5, token, "")
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    let fresh = s.admin_token().await;
    s.validate(&admin5, &fresh, "").await.expect(StatusCode::OK);
}

// ----- /v3/auth/catalog, projects, domains, system -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_catalog_projects_domains_system() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let admin_system = s
        .user_token_pw(
            &s.ids.admin,
            ADMIN_PW,
            Some(json!({"system": {"all": true}})),
        )
        .await;
    let alice_unscoped = s.user_token(&s.ids.alice, Some(json!("unscoped"))).await;
    let alice_domain = s
        .user_token(&s.ids.alice, Some(json!({"domain": {"id": "default"}})))
        .await;
    let bob = s
        .user_token(&s.ids.bob, Some(json!({"project": {"id": s.ids.demo}})))
        .await;

    // Catalog: project-scoped tokens get it; Keystone refuses every other scope with 403.
    for token in [&admin, &bob] {
        let r = s.get("/v3/auth/catalog", Some(token)).await;
        r.expect(StatusCode::OK);
        let v = r.json();
        let identity = v["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|svc| svc["type"] == "identity")
            .expect("identity service")
            .clone();
        assert!(identity["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["url"] == format!("{}/v3", s.base)));
        assert_eq!(
            v["links"]["self"],
            json!(format!("{}/v3/auth/catalog", s.base))
        );
    }
    for token in [&alice_unscoped, &alice_domain, &admin_system] {
        let msg = s
            .get("/v3/auth/catalog", Some(token))
            .await
            .error(StatusCode::FORBIDDEN);
        assert!(msg.contains("identity:get_auth_catalog"), "{msg}");
    }
    for path in [
        "/v3/auth/catalog",
        "/v3/auth/projects",
        "/v3/auth/domains",
        "/v3/auth/system",
    ] {
        s.get(path, None).await.expect(StatusCode::UNAUTHORIZED);
        s.get(path, Some("garbage"))
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }

    let ids_of = |v: &Value, key: &str| -> BTreeSet<String> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {v}"))
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Projects: wherever the user holds a role, whatever the token's scope.
    let r = s.get("/v3/auth/projects", Some(&alice_unscoped)).await;
    r.expect(StatusCode::OK);
    let v = r.json();
    assert_eq!(ids_of(&v, "projects"), BTreeSet::from([s.ids.demo.clone()]));
    assert_eq!(v["projects"][0]["name"], "demo");
    assert_eq!(v["projects"][0]["domain_id"], "default");
    assert_eq!(
        v["links"]["self"],
        json!(format!("{}/v3/auth/projects", s.base))
    );
    let r = s.get("/v3/auth/projects", Some(&admin)).await;
    assert_eq!(
        ids_of(&r.json(), "projects"),
        BTreeSet::from([s.ids.admin_project.clone()])
    );

    // Domains.
    let r = s.get("/v3/auth/domains", Some(&alice_unscoped)).await;
    r.expect(StatusCode::OK);
    let v = r.json();
    assert_eq!(
        ids_of(&v, "domains"),
        BTreeSet::from(["default".to_string()])
    );
    assert_eq!(v["domains"][0]["name"], "Default");
    let r = s.get("/v3/auth/domains", Some(&bob)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["domains"], json!([]));

    // System.
    for token in [&admin, &admin_system] {
        let r = s.get("/v3/auth/system", Some(token)).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.json()["system"], json!([{"all": true}]));
    }
    for token in [&alice_unscoped, &bob] {
        let r = s.get("/v3/auth/system", Some(token)).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.json()["system"], json!([]));
        assert_eq!(
            r.json()["links"]["self"],
            json!(format!("{}/v3/auth/system", s.base))
        );
    }
}

// ----- concurrency ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_revocations_never_lock_the_database() {
    let s = std::sync::Arc::new(Server::start().await);
    let admin = s.admin_token().await;
    let base = s.user_token(&s.ids.bob, None).await;
    const N: usize = 200;

    // 200 distinct tokens (distinct audit ids), issued concurrently through the token method.
    let mut issue = tokio::task::JoinSet::new();
    for _ in 0..N {
        let s = s.clone();
        let base = base.clone();
        issue.spawn(async move {
            let r = s
                .post_tokens(
                    "?nocatalog",
                    &auth(
                        token_identity(&base),
                        Some(json!({"project": {"id": s.ids.demo}})),
                    ),
                )
                .await;
            r.expect(StatusCode::CREATED);
            r.subject()
        });
    }
    let tokens: Vec<String> = issue.join_all().await;
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), N);

    // 200 revocations at once, half by the admin and half by bob himself; without cascade,
    // since with it the first one would revoke its 199 siblings (they share a chain) before
    // the others are validated.
    let mut revoke = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let s = s.clone();
        let token = token.clone();
        let caller = if i % 2 == 0 {
            admin.clone()
        } else {
            base.clone()
        };
        revoke.spawn(async move {
            let r = s
                .subject_request(
                    Method::DELETE,
                    Some(&caller),
                    Some(&token),
                    "?cascade=false",
                )
                .await;
            (r.status, r.body)
        });
    }
    for (status, body) in revoke.join_all().await {
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert!(!body.contains("locked"), "{body}");
    }
    for token in &tokens {
        s.validate(&admin, token, "?allow_expired=1")
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    // The tokens they were re-scoped from are untouched.
    s.validate(&admin, &base, "").await.expect(StatusCode::OK);
    assert!(s.store().revocation_event_count().await.unwrap() >= N as i64);
}
