//! Continuation tokens (Baton's own, docs/continuation.md) over HTTP on every database, with
//! `[token] allow_expired_window = 0`: a sender exchanges a user's token for one, renews it
//! past the user token's expiry up to its operation limit and no further; only the audience
//! (and the actor) may validate it; revoking the user's token, disabling the user or the actor,
//! or removing the user's role ends it; every bad request is refused with its reason.

use baton_server::clock::Clock;
use baton_testkit::{call, error, on_every_database, project_scope, sorted_names, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "C0ntinue-Secret-q7Zr2";
/// A user token lives 600 s; each continuation token 300 s; nova's operations 1000 s.
const CONFIG: &str = "nova:1000, placement:1000";

struct Cast {
    s: IdentityServer,
    project: String,
    /// The project the service users hold `service` on.
    service: String,
    alice: String,
    nova: String,
    /// alice's token on the project.
    alice_token: String,
    nova_token: String,
    cinder_token: String,
    glance_token: String,
    /// Holds `service` but is neither a sender nor a receiver.
    eve_token: String,
}

async fn cast(dialect: baton_testkit::DbDialect) -> Cast {
    cast_with(dialect, |_| {}).await
}

/// [`cast`] with `tweak` applied to the configuration last.
async fn cast_with(
    dialect: baton_testkit::DbDialect,
    tweak: impl FnOnce(&mut baton_config::IdentityConfig),
) -> Cast {
    let s = IdentityServer::start_with_clock(dialect, Clock::manual(chrono::Utc::now()), |c| {
        c.token.expiration = 600;
        c.token.allow_expired_window = 0;
        c.continuation = baton_config::IdentityConfig::from_ini(
            &baton_config::IniFile::parse(
                &format!(
                    "[continuation]\nsenders = {CONFIG}\nreceivers = volume:cinder, image:glance, compute:nova\ntoken_lifetime = 300\n"
                ),
                "keystone.conf",
            )
            .unwrap(),
        )
        .unwrap()
        .continuation;
        // Every event as a log line (`driver = log`), read back from the test's log.
        c.notifications.drivers = vec![baton_config::NotificationDriver::Log];
        c.notifications.opt_out = Vec::new();
        tweak(c);
    })
    .await;
    s.add_secrets(&[PW]);
    let dom = s.default_domain_id.clone();
    let project = s.create_project("work", &dom).await;
    let service = s.create_project("service", &dom).await;
    let alice = s.create_user("alice", PW, &dom).await;
    s.grant_project(&alice, &project, "member").await;
    let mut ids = Vec::new();
    for name in ["nova", "cinder", "glance", "eve"] {
        let id = s.create_user(name, PW, &dom).await;
        s.grant_project(&id, &service, "service").await;
        ids.push(id);
    }
    let placement = s.create_user("placement", PW, &dom).await;
    s.grant_project(&placement, &service, "member").await;
    let svc = project_scope(&service);
    Cast {
        alice_token: s.token("alice", PW, project_scope(&project)).await,
        nova_token: s.token("nova", PW, svc.clone()).await,
        cinder_token: s.token("cinder", PW, svc.clone()).await,
        glance_token: s.token("glance", PW, svc.clone()).await,
        eve_token: s.token("eve", PW, svc).await,
        nova: ids[0].clone(),
        s,
        project,
        service,
        alice,
    }
}

/// `POST /v3/baton/continuations` as `sender` for `subject`: status, body, new token.
async fn exchange(
    s: &IdentityServer,
    sender: &str,
    subject: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let mut req = s
        .client
        .post(s.url("baton/continuations"))
        .header("x-auth-token", sender);
    if let Some(t) = subject {
        req = req.header("x-subject-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    baton_testkit::token_answer(req.send().await.expect("request")).await
}

async fn start(c: &Cast, audience: &[&str]) -> (Value, String) {
    start_for(c, &c.alice_token, audience).await
}

/// nova starts an operation from `user_token`: the body and the continuation token.
async fn start_for(c: &Cast, user_token: &str, audience: &[&str]) -> (Value, String) {
    let (st, body, token) = exchange(
        &c.s,
        &c.nova_token,
        Some(user_token),
        Some(json!({"continuation": {"audience": audience}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    (body, token)
}

/// Enables or disables a user through the API.
async fn set_enabled(s: &IdentityServer, admin: &str, user_id: &str, enabled: bool) {
    let path = format!("users/{user_id}");
    let body = json!({"user": {"enabled": enabled}});
    let (st, body) = call(s, Method::PATCH, &path, admin, Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// A fresh token of a service user, on the service project.
async fn fresh(c: &Cast, name: &str) -> String {
    c.s.token(name, PW, project_scope(&c.service)).await
}

/// A renewal with a fresh token of nova's (its own token lives 600 s too).
async fn renew(c: &Cast, current: &str) -> (StatusCode, Value, String) {
    let nova = c.s.token("nova", PW, project_scope(&c.service)).await;
    exchange(&c.s, &nova, Some(current), None).await
}

/// `GET /v3/auth/tokens` of `subject` as `validator`: the status.
async fn validated_by(s: &IdentityServer, validator: &str, subject: &str) -> u16 {
    s.client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", validator)
        .header("x-subject-token", subject)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn advance(s: &IdentityServer, secs: i64) {
    s.clock().advance(chrono::Duration::seconds(secs));
}

async fn continuation_lifecycle(dialect: baton_testkit::DbDialect) {
    let c = cast(dialect).await;
    let s = &c.s;
    let (st, offer) = baton_testkit::send(s, Method::GET, "baton/continuations", None, None).await;
    assert_eq!(st, StatusCode::OK, "{offer}");
    assert_eq!(offer["continuation"]["token_lifetime"], json!(300));
    assert_eq!(
        offer["continuation"]["audiences"],
        json!(["volume", "image", "compute"])
    );

    let (body, k1) = start(&c, &["volume", "volume"]).await;
    // One audience entry keeps it within Keystone's [DEFAULT] max_token_size.
    assert!(k1.len() <= 255, "{} characters", k1.len());
    let t = &body["token"];
    assert_eq!(t["user"]["id"], json!(c.alice));
    assert_eq!(t["project"]["id"], json!(c.project));
    assert_eq!(t["roles"][0]["name"], json!("member"), "{t}");
    let cont = &t["baton:continuation"];
    assert_eq!(cont["actor"]["id"], json!(c.nova), "{t}");
    assert_eq!(cont["actor"]["name"], json!("nova"));
    assert_eq!(cont["audience"], json!(["volume"]), "duplicates dropped");
    assert!(t["catalog"].is_array(), "{t}");
    // Only the audience (cinder for volume) and the actor validate it; others see 404.
    assert_eq!(validated_by(s, &c.cinder_token, &k1).await, 200);
    assert_eq!(validated_by(s, &c.nova_token, &k1).await, 200);
    assert_eq!(validated_by(s, &c.glance_token, &k1).await, 404);
    assert_eq!(validated_by(s, &c.eve_token, &k1).await, 404);
    assert_eq!(
        validated_by(s, &s.system_admin_token().await, &k1).await,
        404
    );
    // It authorizes nothing at the identity server, and is never exchanged for a token.
    let (st, body) = call(s, Method::GET, "auth/projects", &k1, None).await;
    error(st, &body, 401);
    let (st, body) = baton_testkit::send(
        s,
        Method::POST,
        "auth/tokens",
        None,
        Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": k1}}}})),
    )
    .await;
    // 403 (a delegated token), or 400 when it is longer than [DEFAULT] max_token_size.
    assert!(matches!(st.as_u16(), 400 | 403), "{st} {body}");

    // Renewed by the actor only, past the user token's expiry (600 s) with no
    // allow_expired_window at all, up to nova's 1000 s and no further.
    let (st, body, _) = exchange(s, &c.cinder_token, Some(&k1), None).await;
    assert!(error(st, &body, 403).contains("may not start operations"));
    let mut current = k1;
    for _ in 0..3 {
        advance(s, 250);
        let (st, body, next) = renew(&c, &current).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert_eq!(
            validated_by(s, &fresh(&c, "cinder").await, &next).await,
            200
        );
        current = next;
    }
    // Now at 750 s: the user's own token has expired, its continuation has not.
    assert_eq!(
        validated_by(s, &fresh(&c, "cinder").await, &c.alice_token).await,
        404
    );
    assert_eq!(
        validated_by(s, &fresh(&c, "cinder").await, &current).await,
        200
    );
    advance(s, 200);
    let (st, body, last) = renew(&c, &current).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    // Capped at the operation's end, 1000 s after it started.
    let cont = &body["token"]["baton:continuation"];
    assert_eq!(
        body["token"]["expires_at"], cont["operation_expires_at"],
        "{body}"
    );
    advance(s, 50);
    let (st, body, _) = renew(&c, &last).await;
    assert!(error(st, &body, 403).contains("lifetime ended"), "{body}");
    assert_eq!(
        validated_by(s, &fresh(&c, "cinder").await, &last).await,
        404
    );
    // The audit trail: issued, renewed and refused, each naming alice and nova.
    let log = baton_testkit::captured_text();
    for (event, outcome) in [
        ("identity.continuation.issued", "success"),
        ("identity.continuation.renewed", "success"),
        ("identity.continuation.refused", "failure"),
    ] {
        let line = log
            .lines()
            .filter(|l| l.contains(&format!("\"event_type\":\"{event}\"")))
            .find(|l| outcome == "success" || l.contains("lifetime ended"))
            .unwrap_or_else(|| panic!("no {event} event"));
        let message: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
        let p = &message["payload"];
        assert_eq!(p["outcome"], outcome, "{p}");
        assert_eq!(p["initiator"]["user_id"], json!(c.alice), "{p}");
        assert_eq!(p["actor"]["user_id"], json!(c.nova), "{p}");
        if outcome == "failure" {
            assert!(
                p["reason"]["reasonType"]
                    .as_str()
                    .unwrap()
                    .contains("lifetime ended"),
                "{p}"
            );
            assert_eq!(p["reason"]["reasonCode"], "403");
        } else {
            assert_eq!(p["target"]["audience"], json!(["volume"]), "{p}");
        }
    }
}

async fn what_ends_a_continuation(dialect: baton_testkit::DbDialect) {
    let c = cast(dialect).await;
    let s = &c.s;
    let admin = s.admin_token().await;
    let revoke = |subject: String, by: String, query: &'static str| async move {
        let st = s
            .client
            .delete(s.url(&format!("auth/tokens{query}")))
            .header("x-auth-token", by)
            .header("x-subject-token", subject)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::NO_CONTENT);
    };
    let fresh_user_token = || s.token("alice", PW, project_scope(&c.project));

    // The user's token revoked (with and without cascade) ends its continuations.
    let (_, k) = start(&c, &["volume"]).await;
    s.next_second().await;
    revoke(c.alice_token.clone(), admin.clone(), "").await;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);
    s.next_second().await;
    let user_token = fresh_user_token().await;
    let k = start_for(&c, &user_token, &["volume"]).await.1;
    s.next_second().await;
    revoke(user_token, admin.clone(), "?cascade=false").await;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);

    // Revoking the continuation token (Keystone's policy: an admin or its user) ends it, not
    // the user's token it came from.
    s.next_second().await;
    let user_token = fresh_user_token().await;
    let k = start_for(&c, &user_token, &["volume"]).await.1;
    s.next_second().await;
    revoke(k.clone(), admin.clone(), "").await;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);
    assert_eq!(validated_by(s, &c.cinder_token, &user_token).await, 200);

    // The user's role removed: the continuation shows the roles of now, so it ends.
    let k = start_for(&c, &user_token, &["volume"]).await.1;
    let member = s.role_id("member").await;
    let grant = format!("projects/{}/users/{}/roles/{member}", c.project, c.alice);
    let (st, body) = call(s, Method::DELETE, &grant, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);
    let (st, body) = call(s, Method::PUT, &grant, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");

    // The user disabled, then the actor disabled.
    s.next_second().await;
    let user_token = fresh_user_token().await;
    let k = start_for(&c, &user_token, &["volume"]).await.1;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 200);
    set_enabled(s, &admin, &c.alice, false).await;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);
    set_enabled(s, &admin, &c.alice, true).await;
    s.next_second().await;
    let user_token = fresh_user_token().await;
    let k = start_for(&c, &user_token, &["volume"]).await.1;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 200);
    set_enabled(s, &admin, &c.nova, false).await;
    assert_eq!(validated_by(s, &c.cinder_token, &k).await, 404);
}

async fn continuation_refusals(dialect: baton_testkit::DbDialect) {
    let c = cast(dialect).await;
    let s = &c.s;
    let audience = |a: Value| Some(json!({"continuation": {"audience": a}}));
    let refused = |got: (StatusCode, Value, String), want: u16, says: &str| {
        let msg = error(got.0, &got.1, want);
        assert!(msg.contains(says), "wanted {says:?} in {msg:?}");
        assert!(got.2.is_empty(), "no token on a refusal");
    };
    let nova = c.nova_token.as_str();
    let user = Some(c.alice_token.as_str());
    refused(
        exchange(s, nova, None, audience(json!(["volume"]))).await,
        400,
        "X-Subject-Token",
    );
    refused(
        exchange(s, nova, user, audience(json!([]))).await,
        400,
        "continuation/audience",
    );
    refused(
        exchange(s, nova, user, audience(json!("volume"))).await,
        400,
        "continuation/audience",
    );
    refused(
        exchange(
            s,
            nova,
            user,
            Some(json!({"continuation": {"audience": ["volume"], "ttl": 5}})),
        )
        .await,
        400,
        "additional property",
    );
    refused(
        exchange(s, nova, user, audience(json!(["identity"]))).await,
        403,
        "not a receiving service",
    );
    refused(
        exchange(
            s,
            nova,
            user,
            Some(json!({"continuation": {"audience": ["volume"], "operation_lifetime": 5000}})),
        )
        .await,
        403,
        "longer than nova may run (1000 s",
    );
    refused(
        exchange(s, &c.eve_token, user, audience(json!(["volume"]))).await,
        403,
        "may not start operations",
    );
    // A sender without the service role (placement holds only member).
    let placement = s.token("placement", PW, project_scope(&c.service)).await;
    refused(
        exchange(s, &placement, user, audience(json!(["volume"]))).await,
        403,
        "actor_roles",
    );
    // Only a user's own project-scoped token starts an operation.
    let unscoped = s.token("alice", PW, Value::Null).await;
    refused(
        exchange(s, nova, Some(&unscoped), audience(json!(["volume"]))).await,
        403,
        "project-scoped",
    );
    // A user token already expired (no allow_expired_window here, nor anywhere).
    advance(s, 601);
    let nova = s.token("nova", PW, project_scope(&c.service)).await;
    refused(
        exchange(s, &nova, user, audience(json!(["volume"]))).await,
        403,
        "cannot be continued",
    );
    // A renewal names neither audience nor lifetime.
    let fresh = s.token("alice", PW, project_scope(&c.project)).await;
    let (st, body, k) = exchange(s, &nova, Some(&fresh), audience(json!(["volume"]))).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    refused(
        exchange(s, &nova, Some(&k), audience(json!(["image"]))).await,
        400,
        "renewal keeps",
    );

    // Off unless configured: 404 for both routes, as on Keystone.
    let off = IdentityServer::start(dialect).await;
    let admin = off.admin_token().await;
    let (st, body) =
        baton_testkit::send(&off, Method::GET, "baton/continuations", None, None).await;
    error(st, &body, 404);
    refused(
        exchange(&off, &admin, Some(&admin), audience(json!(["volume"]))).await,
        404,
        "not enabled",
    );
}

/// The token `POST /v3/auth/tokens` issues for `auth`, asserting 201.
async fn issued(s: &IdentityServer, auth: &Value) -> String {
    let resp = s.client.post(s.url("auth/tokens")).json(auth).send().await;
    let (st, body, token) = baton_testkit::token_answer(resp.unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    token
}

/// The body of `GET /v3/auth/tokens` of `subject` as `validator`, asserting 200.
async fn body_for(s: &IdentityServer, validator: &str, subject: &str) -> Value {
    let resp = s
        .client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", validator)
        .header("x-subject-token", subject)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// An application-credential token and a trust token start operations too: the continuation
/// keeps the delegation (the credential's roles, the trust and its impersonation), renewals
/// keep it, and deleting the credential or the trust ends the operation.
async fn delegated_subjects(dialect: baton_testkit::DbDialect) {
    let c = cast(dialect).await;
    let s = &c.s;
    let admin = s.admin_token().await;

    // alice's credential delegates reader only, although she holds member (which implies it).
    let (st, body) = call(
        s,
        Method::POST,
        &format!("users/{}/application_credentials", c.alice),
        &c.alice_token,
        Some(json!({"application_credential": {"name": "batch", "roles": [{"name": "reader"}]}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let cred = body["application_credential"].clone();
    let cred_id = cred["id"].as_str().unwrap().to_string();
    let auth = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": cred_id, "secret": cred["secret"]}}}});
    let cred_token = issued(s, &auth).await;
    let (_, k) = start_for(&c, &cred_token, &["volume"]).await;
    let t = body_for(s, &c.cinder_token, &k).await["token"].clone();
    assert_eq!(t["application_credential"]["id"], json!(cred_id), "{t}");
    assert_eq!(sorted_names(&t["roles"]), ["reader"], "{t}");
    assert_eq!(t["baton:continuation"]["actor"]["id"], json!(c.nova), "{t}");
    assert_eq!(t["methods"], json!(["application_credential"]), "{t}");
    advance(s, 100);
    let (st, body, renewed) = renew(&c, &k).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["token"]["application_credential"]["id"],
        json!(cred_id)
    );
    let path = format!("users/{}/application_credentials/{cred_id}", c.alice);
    let (st, body) = call(s, Method::DELETE, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let cinder = fresh(&c, "cinder").await;
    assert_eq!(validated_by(s, &cinder, &renewed).await, 404);

    // bob acts for alice through an impersonating trust; nova continues bob's trust token.
    let dom = s.default_domain_id.clone();
    let bob = s.create_user("bob", PW, &dom).await;
    let alice_token = s.token("alice", PW, project_scope(&c.project)).await;
    let (st, body) = call(
        s,
        Method::POST,
        "OS-TRUST/trusts",
        &alice_token,
        Some(
            json!({"trust": {"trustor_user_id": c.alice, "trustee_user_id": bob,
            "project_id": c.project, "impersonation": true, "roles": [{"name": "member"}]}}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let trust_id = body["trust"]["id"].as_str().unwrap().to_string();
    let auth = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"id": bob, "password": PW}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}}}});
    let trust_token = issued(s, &auth).await;
    let (_, k) = start_for(&c, &trust_token, &["volume"]).await;
    let t = body_for(s, &cinder, &k).await["token"].clone();
    assert_eq!(t["OS-TRUST:trust"]["id"], json!(trust_id), "{t}");
    assert_eq!(t["user"]["id"], json!(c.alice), "impersonation: {t}");
    assert_eq!(sorted_names(&t["roles"]), ["member", "reader"], "{t}");
    // The trust token expires (issued at 100 s, it lives 600 s); the renewed continuation
    // still carries the trust.
    let mut current = k;
    for _ in 0..3 {
        advance(s, 220);
        let (st, body, next) = renew(&c, &current).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        current = next;
    }
    let cinder = fresh(&c, "cinder").await;
    assert_eq!(validated_by(s, &cinder, &trust_token).await, 404);
    assert_eq!(validated_by(s, &cinder, &current).await, 200);
    let admin = s.admin_token().await;
    let path = format!("OS-TRUST/trusts/{trust_id}");
    let (st, body) = call(s, Method::DELETE, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(validated_by(s, &cinder, &current).await, 404);
}

on_every_database!(
    continuation_lifecycle,
    what_ends_a_continuation,
    delegated_subjects
);

/// `baton:create_continuation` lets a policy file narrow who may exchange tokens beyond
/// `[continuation] senders`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_rule_can_narrow_the_senders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "\"baton:create_continuation\": \"role:admin\"\n").expect("policy");
    let c = cast_with(baton_testkit::DbDialect::Sqlite, |conf| {
        conf.oslo_policy.policy_file = file.clone();
        conf.oslo_policy.policy_file_explicit = true;
    })
    .await;
    let body = Some(json!({"continuation": {"audience": ["volume"]}}));
    let (st, body, token) = exchange(&c.s, &c.nova_token, Some(&c.alice_token), body).await;
    assert!(
        error(st, &body, 403).contains("baton:create_continuation"),
        "{body}"
    );
    assert!(token.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_refusals_sqlite() {
    continuation_refusals(baton_testkit::DbDialect::Sqlite).await;
}
