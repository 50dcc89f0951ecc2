//! "Nova calls Cinder" end to end, on loopback: a real Baton identity server whose tokens live
//! a few seconds, a "cinder" axum service behind `AuthTokenLayer` (`service_token_roles_required
//! = true`, configured from its own `[keystone_authtoken]`), and two "nova" services behind the
//! layer too that call cinder through [`OnwardCalls`] from their `[service_user]` — one with
//! `send_service_user_token = true`, one without.
//!
//! Nova's handler holds the request until the user's token has expired (a long operation), then
//! calls cinder's internal endpoint found in the user's catalog. With the service token cinder
//! accepts the expired user token (allow_expired); without it cinder refuses with
//! `user_token_expired`, and the client error says so. Bad `[service_user]` sections fail at
//! `OnwardCalls::from_ini`, i.e. at start-up. With `allow_expired_window = 0` and the identity
//! server offering continuation tokens, `OnwardCalls::operation_session_for` carries the
//! operation past the user token's expiry while the service-token pair is refused.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use baton_authtoken::{
    AuthTokenConfig, AuthTokenLayer, Authenticator, IdentityContext, OnwardCalls,
};
use baton_client::{EndpointFilter, Error, Interface, WhichToken};
use baton_config::IniFile;
use baton_testkit::{DbDialect, IdentityServer, ADMIN_PASSWORD};
use chrono::Utc;
use serde_json::{json, Value};

/// `[token] expiration` of the identity server, seconds.
const EXPIRATION: u32 = 4;
const NOVA_PW: &str = "N0va-Onward-p4Rt9";
const CINDER_PW: &str = "C1nder-Onward-m2Qx8";
const ALICE_PW: &str = "Al1ce-Onward-z7Kd3";
const PLAIN_PW: &str = "Pla1n-Onward-w5Hj6";

fn ini(text: &str, name: &str) -> IniFile {
    IniFile::parse(text, name).expect("INI parses")
}

fn authtoken_section(base: &str, user: &str, pw: &str) -> String {
    format!(
        "[keystone_authtoken]\nwww_authenticate_uri = {base}\nauth_url = {base}\nauth_type = password\n\
         username = {user}\npassword = {pw}\nuser_domain_name = Default\nproject_name = service\n\
         project_domain_name = Default\nservice_token_roles = service\n\
         service_token_roles_required = true\nexpose_failure_reason = true\n"
    )
}

fn service_user_section(base: &str, send: bool, user: &str, pw: &str) -> String {
    format!(
        "[service_user]\nsend_service_user_token = {send}\nauth_type = password\nauth_url = {base}/v3\n\
         username = {user}\npassword = {pw}\nuser_domain_name = Default\nproject_name = service\n\
         project_domain_name = Default\n"
    )
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

async fn layer(conf: &IniFile) -> AuthTokenLayer {
    let cfg = AuthTokenConfig::from_ini(conf, "keystone_authtoken").expect("[keystone_authtoken]");
    let auth = Authenticator::new(cfg).expect("Authenticator");
    auth.startup_check().await.expect("the layer's own user");
    AuthTokenLayer::new(auth)
}

/// Cinder: says who called and how.
async fn volumes(
    Extension(ctx): Extension<IdentityContext>,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    let user = ctx.user.as_ref().expect("confirmed user");
    Json(json!({
        "user_id": user.user_id,
        "project_id": user.project_id,
        "accepted_expired": user.accepted_expired,
        "is_service_request": ctx.is_service_request(),
        "service_user": ctx.service.as_ref().map(|s| s.user_name.clone()),
        "user_token": ctx.user_token().map(|t| t.fingerprint()),
        "service_token": ctx.service_token().map(|t| t.fingerprint()),
        "actor_header": headers
            .get("x-continuation-actor-name")
            .and_then(|v| v.to_str().ok()),
    }))
}

/// Nova: waits (bounded) until the user's token has expired, then calls cinder as the user and
/// says what it sent ([`OnwardCalls::recorded_session_for`]).
async fn attach(
    State(onward): State<OnwardCalls>,
    Extension(ctx): Extension<IdentityContext>,
) -> (StatusCode, Json<Value>) {
    let expires = ctx.user.as_ref().expect("confirmed user").expires_at;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Utc::now() <= expires + chrono::Duration::milliseconds(500) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (session, log) = match onward.recorded_session_for(&ctx) {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
        }
    };
    let r = session
        .get(
            EndpointFilter::new("volumev3").interface(Interface::Internal),
            "/volumes",
        )
        .send_json::<Value>()
        .await;
    let sent = log.last().map(|c| {
        json!({
            "user_token": c.user_token,
            "user_token_expired": c.user_token_expires_at <= Utc::now(),
            "service_token": c.service_token,
        })
    });
    match r {
        Ok(v) => (StatusCode::OK, Json(json!({"cinder": v, "sent": sent}))),
        Err(e) => {
            let (blames_user, blames_service, reasons) = match &e {
                Error::Unauthorized { refused, .. } => (
                    refused.blames(WhichToken::User),
                    refused.blames(WhichToken::Service),
                    refused
                        .reasons
                        .iter()
                        .map(|r| r.as_str().to_string())
                        .collect(),
                ),
                _ => (false, false, Vec::new()),
            };
            (
                StatusCode::BAD_GATEWAY,
                Json(json!({
                    "error": e.to_string(),
                    "sent": sent,
                    "blames_user": blames_user,
                    "blames_service": blames_service,
                    "reasons": reasons,
                })),
            )
        }
    }
}

/// nova.conf (`[keystone_authtoken]` and `[service_user]` as nova, sending service tokens
/// or not) and its onward calls, checked at start-up.
async fn nova(base: &str, send: bool) -> (IniFile, OnwardCalls) {
    let conf = ini(
        &format!(
            "{}{}",
            authtoken_section(base, "nova", NOVA_PW),
            service_user_section(base, send, "nova", NOVA_PW)
        ),
        "nova.conf",
    );
    let onward = OnwardCalls::from_ini(&conf, "service_user")
        .await
        .expect("[service_user] at start-up");
    (conf, onward)
}

/// The users (nova, cinder, alice, plain) and cinder behind the layer, in the catalog as
/// `volumev3` (internal): the demo project's id.
async fn cinder_and_users(id: &IdentityServer) -> String {
    let base = id.base.clone();
    let domain = id.default_domain_id.clone();
    let service_project = id.create_project("service", &domain).await;
    let demo = id.create_project("demo", &domain).await;
    for (name, pw, project, role) in [
        ("nova", NOVA_PW, &service_project, "service"),
        ("cinder", CINDER_PW, &service_project, "service"),
        ("alice", ALICE_PW, &demo, "member"),
        ("plain", PLAIN_PW, &service_project, "member"),
    ] {
        let uid = id.create_user(name, pw, &domain).await;
        id.grant_project(&uid, project, role).await;
    }
    let cinder_conf = ini(
        &authtoken_section(&base, "cinder", CINDER_PW),
        "cinder.conf",
    );
    let cinder = serve(
        Router::new()
            .route("/v3/volumes", get(volumes))
            .layer(layer(&cinder_conf).await),
    )
    .await;
    let admin = id.admin_token().await;
    let admin_post = |path: &str, body: Value| {
        let req = id
            .client
            .post(id.url(path))
            .header("x-auth-token", &admin)
            .json(&body);
        async move {
            let r = req.send().await.expect("admin API");
            assert_eq!(
                r.status().as_u16(),
                201,
                "{}",
                r.text().await.unwrap_or_default()
            );
            r.json::<Value>().await.expect("JSON")
        }
    };
    let svc = admin_post(
        "services",
        json!({"service": {"type": "volumev3", "name": "cinderv3"}}),
    )
    .await;
    admin_post(
        "endpoints",
        json!({"endpoint": {"service_id": svc["service"]["id"], "interface": "internal",
                            "url": format!("{cinder}/v3"), "region_id": "RegionOne"}}),
    )
    .await;
    demo
}

/// Nova in a long operation ([`OnwardCalls::operation_session_for`], audience `volumev3`):
/// takes its session at the start, waits until the user's token has expired, then calls
/// cinder and says what cinder saw.
async fn attach_operation(
    State(onward): State<OnwardCalls>,
    Extension(ctx): Extension<IdentityContext>,
) -> (StatusCode, Json<Value>) {
    let session = match onward.operation_session_for(&ctx, &["volumev3"]).await {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
        }
    };
    let expires = ctx.user.as_ref().expect("confirmed user").expires_at;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Utc::now() <= expires + chrono::Duration::milliseconds(500) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match session
        .get(
            EndpointFilter::new("volumev3").interface(Interface::Internal),
            "/volumes",
        )
        .send_json::<Value>()
        .await
    {
        Ok(v) => (StatusCode::OK, Json(json!({"cinder": v}))),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_allow_expired_window_a_continuation_token_carries_the_operation() {
    let id = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.token.expiration = EXPIRATION;
        c.token.allow_expired_window = 0;
        c.continuation.senders = vec![("nova".into(), 120)];
        c.continuation.receivers = vec![("volumev3".into(), "cinder".into())];
    })
    .await;
    let base = id.base.clone();
    let demo = cinder_and_users(&id).await;
    let (conf, onward) = nova(&base, true).await;
    let operation = Router::new()
        .route("/servers/attach", post(attach_operation))
        .with_state(onward.clone())
        .layer(layer(&conf).await);
    let pair = Router::new()
        .route("/servers/attach", post(attach))
        .with_state(onward)
        .layer(layer(&conf).await);
    let (operation, pair) = (serve(operation).await, serve(pair).await);
    let alice = id
        .token("alice", ALICE_PW, baton_testkit::project_scope(&demo))
        .await;
    let http = reqwest::Client::new();
    let call = |nova: &str| {
        http.post(format!("{nova}/servers/attach"))
            .header("x-auth-token", &alice)
            .send()
    };
    let (op, pair) = tokio::join!(call(&operation), call(&pair));
    let (op, pair) = (op.expect("operation"), pair.expect("pair"));
    // The continuation token: cinder sees alice, not an expired token, and nova's service
    // token beside it.
    let status = op.status().as_u16();
    let body: Value = op.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let seen = &body["cinder"];
    assert_eq!(seen["project_id"], json!(demo), "{body}");
    assert_eq!(seen["accepted_expired"], json!(false), "{body}");
    assert!(seen["service_token"].is_string(), "{body}");
    assert_eq!(seen["is_service_request"], json!(true), "{body}");
    // A service behind the layer (or authproxy) sees who acts for the user.
    assert_eq!(seen["actor_header"], json!("nova"), "{body}");
    // The service-token pair, with allow_expired_window = 0, is refused.
    assert_eq!(pair.status().as_u16(), 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_calls_cinder_with_an_expired_user_token_thanks_to_the_service_token() {
    let id = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.token.expiration = EXPIRATION;
    })
    .await;
    let base = id.base.clone();
    let demo = cinder_and_users(&id).await;

    // Two novas: with and without service tokens; the whole onward path is these few lines.
    let mut novas = Vec::new();
    for send in [true, false] {
        let (conf, onward) = nova(&base, send).await;
        assert_eq!(onward.sends_service_token(), send);
        let router = Router::new()
            .route("/servers/attach", post(attach))
            .with_state(onward)
            .layer(layer(&conf).await);
        novas.push(serve(router).await);
    }

    let alice = id
        .token("alice", ALICE_PW, baton_testkit::project_scope(&demo))
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let call = |nova: &str| {
        http.post(format!("{nova}/servers/attach"))
            .header("x-auth-token", &alice)
            .send()
    };
    let started = Instant::now();
    let (with, without) = tokio::join!(call(&novas[0]), call(&novas[1]));
    let (with, without) = (
        with.expect("nova (service token)"),
        without.expect("nova (user only)"),
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    let status = with.status().as_u16();
    let body: Value = with.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let seen = &body["cinder"];
    assert_eq!(seen["project_id"], json!(demo), "{body}");
    assert_eq!(
        seen["accepted_expired"],
        json!(true),
        "the user token had expired: {body}"
    );
    assert_eq!(seen["is_service_request"], json!(true), "{body}");
    assert_eq!(seen["service_user"], json!("nova"), "{body}");
    // The log names the tokens cinder received.
    let alice_fp = baton_client::token_fingerprint(&alice);
    assert_eq!(body["sent"]["user_token"], json!(alice_fp), "{body}");
    assert_eq!(seen["user_token"], json!(alice_fp), "{body}");
    assert_eq!(body["sent"]["user_token_expired"], json!(true), "{body}");
    assert!(body["sent"]["service_token"].is_string(), "{body}");
    assert_eq!(
        body["sent"]["service_token"], seen["service_token"],
        "{body}"
    );

    let status = without.status().as_u16();
    let body: Value = without.json().await.unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["reasons"], json!(["user_token_expired"]), "{body}");
    assert_eq!(body["blames_user"], json!(true), "{body}");
    assert_eq!(body["blames_service"], json!(false), "{body}");
    assert_eq!(body["sent"]["user_token"], json!(alice_fp), "{body}");
    assert_eq!(body["sent"]["service_token"], Value::Null, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("401 Unauthorized: the user token (X-Auth-Token) was refused: expired"),
        "{msg}"
    );
    assert!(!msg.contains(&alice));

    // Bad [service_user] sections stop the start, each with one clear line.
    let bad = |text: String| async move {
        let conf = ini(&text, "nova.conf");
        let e = OnwardCalls::from_ini(&conf, "service_user")
            .await
            .expect_err("must not start");
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m}");
        for secret in [NOVA_PW, PLAIN_PW, ADMIN_PASSWORD] {
            assert!(!m.contains(secret), "{m}");
        }
        m
    };
    let m = bad(service_user_section(&base, true, "nova", NOVA_PW)
        .replace(&format!("password = {NOVA_PW}\n"), ""))
    .await;
    assert!(
        m.starts_with("nova.conf:1: [service_user]") && m.contains("option password is not set"),
        "{m}"
    );
    let m = bad(service_user_section(
        &format!("{base}/nowhere"),
        true,
        "nova",
        NOVA_PW,
    ))
    .await;
    assert!(
        m.contains("cannot authenticate the service user") && m.contains("404"),
        "{m}"
    );
    let m = bad(service_user_section(&base, true, "nova", "wrong-password")).await;
    assert!(
        m.contains("refused to authenticate nova@Default: 401"),
        "{m}"
    );
    let m = bad(service_user_section(&base, true, "plain", PLAIN_PW)).await;
    assert!(
        m.contains("service user plain") && m.contains("but none of [service]"),
        "{m}"
    );
    let m = bad("[service_user]\nsend_service_user_token = true\n".to_string()).await;
    assert!(m.contains("auth_type is not set"), "{m}");

    // A request the layer let through unconfirmed (delay_auth_decision, no token) cannot be
    // acted for.
    let conf = ini(
        &format!(
            "{}delay_auth_decision = true\n",
            authtoken_section(&base, "nova", NOVA_PW)
        ),
        "nova.conf",
    );
    let router =
        Router::new()
            .route(
                "/whoami",
                get(
                    |State(onward): State<OnwardCalls>,
                     Extension(ctx): Extension<IdentityContext>| async move {
                        let recorded = match onward.recorded_session_for(&ctx) {
                            Ok(_) => "recorded".to_string(),
                            Err(e) => e.to_string(),
                        };
                        match onward.session_for(&ctx) {
                            Ok(_) => "acted".to_string(),
                            Err(e) => format!("{e}\n{recorded}"),
                        }
                    },
                ),
            )
            .with_state(OnwardCalls::new(None).unwrap())
            .layer(layer(&conf).await);
    let delayed = serve(router).await;
    let text = http
        .get(format!("{delayed}/whoami"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (acted, recorded) = text.split_once('\n').expect("two lines");
    for line in [acted, recorded] {
        assert!(
            line.contains(
                "the request's user token was not confirmed (X-Identity-Status: Invalid)"
            ),
            "{text}"
        );
    }
    id.stop().await;
}
