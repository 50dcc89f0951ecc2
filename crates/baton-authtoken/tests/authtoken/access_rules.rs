//! Application-credential access rules on the receiving side (issue 12, item 5): the layer and
//! `baton authproxy` allow a restricted token only the requests its rules name for this
//! `service_type`; a chain of calls (a valid service token with a service role) is not bound by
//! them; anything else in `X-Service-Token` does not lift them (keystonemiddleware bug
//! 2129016); a service that cannot check them refuses the token.

use std::time::Duration;

use axum::routing::any;
use axum::Router;
use baton_authtoken::{AuthTokenConfig, AuthTokenLayer, Authenticator};
use serde_json::{json, Value};

use super::{client, echo, AuthProxy, Identity, Reply, USER_PW};

/// The rules of the credential every test here uses.
fn rules() -> Value {
    json!([
        {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
        {"service": "compute", "method": "GET", "path": "/v2.1/servers/*"},
        {"service": "compute", "method": "POST", "path": "/v2.1/servers/{server_id}/action"},
        {"service": "volumev3", "method": "DELETE", "path": "/v3/**"},
    ])
}

/// Alice's project token, and a token of her application credential restricted by [`rules`];
/// the catalog gets a `compute` service so that tokens carry one.
async fn tokens(id: &Identity) -> (String, String) {
    let http = client();
    let admin = id.server.admin_token().await;
    let post = |path: &str, token: &str, body: Value| {
        http.post(format!("{}{path}", id.base))
            .header("x-auth-token", token)
            .json(&body)
    };
    let resp = post(
        "/v3/services",
        &admin,
        json!({"service": {"type": "compute", "name": "nova"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let service: Value = resp.json().await.unwrap();
    let endpoint = json!({"endpoint": {"service_id": service["service"]["id"],
        "interface": "internal", "url": "http://compute.example/v2.1"}});
    let resp = post("/v3/endpoints", &admin, endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let login = |body: Value| {
        let req = http.post(format!("{}/v3/auth/tokens", id.base)).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 201);
            resp.headers()["x-subject-token"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let alice = login(json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": id.ids.alice, "password": USER_PW}}},
        "scope": {"project": {"id": id.ids.demo}}}}))
    .await;
    let resp = post(
        &format!("/v3/users/{}/application_credentials", id.ids.alice),
        &alice,
        json!({"application_credential": {
            "name": "ruled", "secret": "ruled-secret", "access_rules": rules()}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let cred: Value = resp.json().await.unwrap();
    let ruled = login(json!({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {
            "id": cred["application_credential"]["id"], "secret": "ruled-secret"}}}}))
    .await;
    (alice, ruled)
}

/// The layer in front of an echo app that answers every method and path.
struct RuledApp {
    base: String,
}

impl RuledApp {
    async fn start(config: AuthTokenConfig) -> RuledApp {
        let auth = Authenticator::new(config).expect("Authenticator::new");
        let router = Router::new()
            .fallback(any(echo))
            .layer(AuthTokenLayer::new(auth));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        RuledApp { base }
    }
}

/// `method path` on `base` with the user token and, if given, a service token.
async fn send(base: &str, method: &str, path: &str, user: &str, service: Option<&str>) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = client()
        .request(method, format!("{base}{path}"))
        .timeout(Duration::from_secs(20))
        .header("x-auth-token", user);
    if let Some(s) = service {
        rb = rb.header("x-service-token", s);
    }
    let resp = rb.send().await.expect("request");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restricted_token_gets_only_what_its_rules_name() {
    let id = Identity::start().await;
    let (alice, ruled) = tokens(&id).await;
    let app = RuledApp::start(id.config().service_type("compute").build().unwrap()).await;
    let nova = id.nova(3600);

    // (method, path, status, reason): the credential alone.
    let cases = [
        ("GET", "/v2.1/servers", 200, None),
        ("GET", "/v2.1/servers/abc", 200, None),
        ("POST", "/v2.1/servers/abc/action", 200, None),
        ("POST", "/v2.1/servers", 401, Some("access_rule_denied")),
        ("GET", "/v2.1/servers/", 401, Some("access_rule_denied")),
        (
            "GET",
            "/v2.1/servers/abc/os-interface",
            401,
            Some("access_rule_denied"),
        ),
        (
            "DELETE",
            "/v2.1/servers/abc",
            401,
            Some("access_rule_denied"),
        ),
        // A rule for another service type allows nothing here.
        ("DELETE", "/v3/volumes/abc", 401, Some("access_rule_denied")),
    ];
    for (method, path, status, reason) in cases {
        let r = send(&app.base, method, path, &ruled, None).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.raw);
        assert_eq!(r.reason().as_deref(), reason, "{method} {path}");
        if status == 200 {
            assert_eq!(r.seen("x-identity-status").as_deref(), Some("Confirmed"));
        }
    }
    // An unrestricted token is not affected.
    assert_eq!(
        send(&app.base, "POST", "/v2.1/servers", &alice, None)
            .await
            .status,
        200
    );
    // A chain of calls: a valid service token with a service role lifts the rules, as in
    // keystonemiddleware.
    let r = send(&app.base, "POST", "/v2.1/servers", &ruled, Some(&nova)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.ctx()["is_service_request"], true);
    // An invalid service token does not (keystonemiddleware bug 2129016): both are refused.
    let r = send(&app.base, "POST", "/v2.1/servers", &ruled, Some("junk")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.reason().as_deref(),
        Some("service_token_invalid,access_rule_denied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_service_role_lifts_the_rules() {
    let id = Identity::start().await;
    let (_, ruled) = tokens(&id).await;
    // Under delay_auth_decision keystonemiddleware forwards a user token Confirmed past its
    // rules when anything at all comes in X-Service-Token; here the user stays Invalid.
    let delayed = RuledApp::start(
        id.config()
            .service_type("compute")
            .delay_auth_decision(true)
            .build()
            .unwrap(),
    )
    .await;
    let r = send(&delayed.base, "POST", "/v2.1/servers", &ruled, Some("junk")).await;
    assert_eq!(r.status, 200, "forwarded, unconfirmed: {}", r.raw);
    assert_eq!(r.seen("x-identity-status").as_deref(), Some("Invalid"));
    assert_eq!(
        r.failure_reasons(),
        ["service_token_invalid", "access_rule_denied"]
    );
    // A valid token without a service role, accepted as a service token only because
    // service_token_roles_required is off, does not lift them either.
    let lax = RuledApp::start(
        id.config()
            .service_type("compute")
            .service_token_roles_required(false)
            .build()
            .unwrap(),
    )
    .await;
    let r = send(
        &lax.base,
        "POST",
        "/v2.1/servers",
        &ruled,
        Some(&id.plain()),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.raw);
    assert_eq!(r.reason().as_deref(), Some("access_rule_denied"));
    let r = send(&lax.base, "GET", "/v2.1/servers", &ruled, Some(&id.plain())).await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_that_cannot_check_the_rules_refuses_the_token() {
    let id = Identity::start().await;
    let (alice, ruled) = tokens(&id).await;
    let nova = id.nova(3600);
    // No service_type: nothing can be checked, not even for a chain of calls.
    let unset = RuledApp::start(id.config().build().unwrap()).await;
    for service in [None, Some(nova.as_str())] {
        let r = send(&unset.base, "GET", "/v2.1/servers", &ruled, service).await;
        assert_eq!(r.status, 401, "{}", r.raw);
        assert_eq!(r.reason().as_deref(), Some("access_rules_unenforceable"));
    }
    assert_eq!(
        send(&unset.base, "GET", "/x", &alice, None).await.status,
        200
    );
    // A type the token's catalog does not have.
    let wrong = RuledApp::start(id.config().service_type("volumev3").build().unwrap()).await;
    let r = send(&wrong.base, "DELETE", "/v3/volumes/a", &ruled, None).await;
    assert_eq!(r.reason().as_deref(), Some("access_rules_unenforceable"));
    // The identity service may always validate a token.
    let identity = RuledApp::start(id.config().service_type("identity").build().unwrap()).await;
    assert_eq!(
        send(&identity.base, "GET", "/v3/auth/tokens", &ruled, None)
            .await
            .status,
        200
    );
    let r = send(&identity.base, "GET", "/v3/users", &ruled, None).await;
    assert_eq!(r.reason().as_deref(), Some("access_rule_denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_authproxy_enforces_the_same_rules() {
    let id = Identity::start().await;
    let (_, ruled) = tokens(&id).await;
    let config = id.config().service_type("compute").build().unwrap();
    let proxy = AuthProxy::start_with(config, false).await;
    let r = send(&proxy.base, "GET", "/v2.1/servers/abc", &ruled, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = send(&proxy.base, "POST", "/v2.1/servers", &ruled, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.reason().as_deref(), Some("access_rule_denied"));
    assert_eq!(
        proxy.hits(),
        1,
        "the refused request never reached upstream"
    );
    let metrics = client()
        .get(format!("{}/metrics", proxy.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("reason=\"access_rule_denied\"") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[test]
fn service_type_is_read_from_keystone_authtoken() {
    let ini = baton_config::IniFile::parse(
        "[keystone_authtoken]\nauth_type = password\nauth_url = http://127.0.0.1:1/v3\nusername = cinder\npassword = x\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\nservice_type = volumev3\n",
        "cinder.conf",
    )
    .unwrap();
    let cfg = AuthTokenConfig::from_ini(&ini, "keystone_authtoken").unwrap();
    assert_eq!(cfg.service_type.as_deref(), Some("volumev3"));
}
