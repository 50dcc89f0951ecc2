//! Trusts (OS-TRUST) over HTTP on every database: create/list/show/delete and the trust's
//! roles with Keystone 30's bodies, refusals and policy; trust-scoped tokens (impersonation or
//! not, by password or token, expiry capped by the trust's, uses consumed atomically), and what
//! ends them (deleting the trust, the trustor losing the role or being disabled); redelegation.

use baton_testkit::{
    call, error, on_every_database, project_scope, send, sorted_names, IdentityServer,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Tru5t-Secret-w8Pq3";

/// A trustor holding `member` on a project, a trustee and a stranger without roles.
struct Cast {
    project: String,
    alice: String,
    bob: String,
    eve: String,
    /// alice's token on the project.
    alice_token: String,
}

async fn cast(s: &IdentityServer) -> Cast {
    let project = s.create_project("trusted", &s.default_domain_id).await;
    let alice = s.create_user("alice", PW, &s.default_domain_id).await;
    let bob = s.create_user("bob", PW, &s.default_domain_id).await;
    let eve = s.create_user("eve", PW, &s.default_domain_id).await;
    s.add_secrets(&[PW]);
    s.grant_project(&alice, &project, "member").await;
    let alice_token = s.token("alice", PW, project_scope(&project)).await;
    Cast {
        project,
        alice,
        bob,
        eve,
        alice_token,
    }
}

fn ok(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "status; body {body}");
}

async fn create(s: &IdentityServer, token: &str, trust: Value) -> (StatusCode, Value) {
    call(
        s,
        Method::POST,
        "OS-TRUST/trusts",
        token,
        Some(json!({ "trust": trust })),
    )
    .await
}

async fn create_ok(s: &IdentityServer, token: &str, trust: Value) -> Value {
    let (st, body) = create(s, token, trust).await;
    ok(st, &body, 201);
    body["trust"].clone()
}

fn trust_of(c: &Cast, impersonation: bool) -> Value {
    json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project,
           "impersonation": impersonation, "roles": [{"name": "member"}]})
}

/// `POST /v3/auth/tokens` with an identity and a trust scope: status, body, token.
async fn trust_auth(s: &IdentityServer, identity: Value, trust_id: &str) -> (u16, Value, String) {
    let body = json!({"auth": {"identity": identity,
                               "scope": {"OS-TRUST:trust": {"id": trust_id}}}});
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("auth");
    let (status, body, token) = baton_testkit::token_answer(resp).await;
    (status.as_u16(), body, token)
}

fn password(user_id: &str) -> Value {
    json!({"methods": ["password"], "password": {"user": {"id": user_id, "password": PW}}})
}

async fn trust_crud(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let c = cast(&s).await;
    let t = create_ok(&s, &c.alice_token, trust_of(&c, true)).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "a UUID in hex: {id}");
    for (k, v) in [
        ("trustor_user_id", json!(c.alice)),
        ("trustee_user_id", json!(c.bob)),
        ("project_id", json!(c.project)),
        ("impersonation", json!(true)),
        ("expires_at", Value::Null),
        ("remaining_uses", Value::Null),
        ("redelegated_trust_id", Value::Null),
        ("redelegation_count", json!(0)),
        ("deleted_at", Value::Null),
    ] {
        assert_eq!(t[k], v, "{k} in {t}");
    }
    assert_eq!(sorted_names(&t["roles"]), ["member"]);
    assert_eq!(
        t["roles"][0]["links"]["self"],
        json!(s.url(&format!("roles/{}", t["roles"][0]["id"].as_str().unwrap())))
    );
    assert_eq!(
        t["links"]["self"],
        json!(s.url(&format!("OS-TRUST/trusts/{id}")))
    );
    // Keystone 30's roles_links lack `OS-TRUST/trusts`.
    assert_eq!(
        t["roles_links"],
        json!({"self": s.url(&format!("{id}/roles")), "next": null, "previous": null})
    );

    let bob = s.token("bob", PW, Value::Null).await;
    let eve = s.token("eve", PW, Value::Null).await;
    let admin = s.admin_token().await;
    // Show: trustor and trustee; a stranger is refused; an unknown trust is 404 first.
    for token in [&c.alice_token, &bob] {
        let (st, body) = call(
            &s,
            Method::GET,
            &format!("OS-TRUST/trusts/{id}"),
            token,
            None,
        )
        .await;
        ok(st, &body, 200);
        assert_eq!(body["trust"]["id"], json!(id));
        assert_eq!(sorted_names(&body["trust"]["roles"]), ["member"]);
    }
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts/{id}"),
        &eve,
        None,
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(&s, Method::GET, "OS-TRUST/trusts/nosuchtrust", &eve, None).await;
    assert_eq!(error(st, &body, 404), "Could not find trust: nosuchtrust.");

    // Lists: by trustor, by trustee, everything (admin only); without roles.
    let list = |q: &'static str, token: String| {
        let s = &s;
        async move { call(s, Method::GET, &format!("OS-TRUST/trusts{q}"), &token, None).await }
    };
    let q_trustor = format!("?trustor_user_id={}", c.alice);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts{q_trustor}"),
        &c.alice_token,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["trusts"].as_array().unwrap().len(), 1);
    assert!(body["trusts"][0].get("roles").is_none(), "{body}");
    assert_eq!(
        body["links"]["self"],
        json!(s.url(&format!("OS-TRUST/trusts{q_trustor}")))
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts?trustee_user_id={}", c.bob),
        &bob,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["trusts"][0]["id"], json!(id));
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts{q_trustor}"),
        &bob,
        None,
    )
    .await;
    error(st, &body, 403);
    let (st, body) = list("", eve.clone()).await;
    error(st, &body, 403);
    let (st, body) = list("", admin.clone()).await;
    ok(st, &body, 200);
    assert_eq!(body["trusts"].as_array().unwrap().len(), 1);

    // The trust's roles, and one of them (GET and HEAD); a role it does not delegate is 404.
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts/{id}/roles"),
        &bob,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(sorted_names(&body["roles"]), ["member"]);
    assert_eq!(body["links"]["self"], json!(s.url(&format!("{id}/roles"))));
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;
    let path = format!("OS-TRUST/trusts/{id}/roles/{member}");
    let (st, body) = call(&s, Method::GET, &path, &bob, None).await;
    ok(st, &body, 200);
    assert_eq!(body["role"]["name"], "member");
    let (st, _) = call(&s, Method::HEAD, &path, &bob, None).await;
    assert_eq!(st, StatusCode::OK);
    let path = format!("OS-TRUST/trusts/{id}/roles/{reader}");
    let (st, body) = call(&s, Method::GET, &path, &bob, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find role: {reader}.")
    );

    // Delete: admin or trustor only.
    let path = format!("OS-TRUST/trusts/{id}");
    for token in [&bob, &eve] {
        let (st, body) = call(&s, Method::DELETE, &path, token, None).await;
        error(st, &body, 403);
    }
    let (st, _) = call(&s, Method::DELETE, &path, &c.alice_token, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = call(&s, Method::GET, &path, &c.alice_token, None).await;
    error(st, &body, 404);
    let (st, body) = call(&s, Method::DELETE, &path, &c.alice_token, None).await;
    error(st, &body, 404);
    // The row stays, soft-deleted, as Keystone keeps it.
    let row = s.store.get_trust(&id).await.unwrap().expect("row");
    assert!(row.deleted_at.is_some());
    let (st, body) = list("", admin).await;
    ok(st, &body, 200);
    assert_eq!(body["trusts"], json!([]));
}

async fn trust_create_refusals(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let c = cast(&s).await;
    let with = |changes: Value| {
        let mut t = trust_of(&c, false);
        for (k, v) in changes.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    };
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        // Policy: the caller must be the trustor.
        (with(json!({"trustor_user_id": c.bob})), 403, None),
        (
            with(json!({"trustee_user_id": "nobody"})),
            404,
            Some("Could not find user: nobody."),
        ),
        (with(json!({"roles": [{"name": "admin"}]})), 404, None),
        (
            with(json!({"roles": [{"name": "nosuchrole"}]})),
            404,
            Some("Role nosuchrole is not defined"),
        ),
        (with(json!({"roles": []})), 403, None),
        (
            with(json!({"project_id": "nosuchproject"})),
            404,
            Some("Could not find project: nosuchproject."),
        ),
        (
            with(json!({"expires_at": "2001-01-01T00:00:00Z"})),
            400,
            None,
        ),
        (with(json!({"expires_at": "yesterday"})), 400, None),
        (with(json!({"remaining_uses": 0})), 400, None),
        (with(json!({"remaining_uses": "x"})), 400, None),
        (with(json!({"impersonation": "yes"})), 400, None),
        (
            with(json!({"roles": [{"id": "a", "name": "b"}]})),
            400,
            None,
        ),
        (
            with(json!({"allow_redelegation": true, "remaining_uses": 3})),
            400,
            Some("remaining_uses must not be set if redelegation is allowed"),
        ),
        (
            with(json!({"allow_redelegation": true, "redelegation_count": 10})),
            403,
            None,
        ),
    ];
    for (trust, want, message) in cases {
        let (st, body) = create(&s, &c.alice_token, trust.clone()).await;
        let got = error(st, &body, want);
        if let Some(m) = message {
            assert_eq!(got, m, "for {trust}");
        }
    }
    // Keystone 30's newer schema messages.
    let (st, body) = create(&s, &c.alice_token, with(json!({"remaining_uses": 0}))).await;
    assert_eq!(
        error(st, &body, 400),
        "Invalid input for field/attribute remaining_uses. Value: 0. 0 is less than the minimum of 1"
    );
    let (st, body) = create(&s, &c.alice_token, with(json!({"roles": [{"id": "a b"}]}))).await;
    assert_eq!(
        error(st, &body, 400),
        "Invalid input for field/attribute id. Value: a b. 'a b' does not match '^[a-zA-Z0-9-]+$'"
    );
    let (st, body) = call(
        &s,
        Method::POST,
        "OS-TRUST/trusts",
        &c.alice_token,
        Some(json!({})),
    )
    .await;
    assert_eq!(error(st, &body, 400), "'trust' is a required property");

    // An application credential's token is delegated: no trust operation at all.
    let (st, body) = call(
        &s,
        Method::POST,
        &format!("users/{}/application_credentials", c.alice),
        &c.alice_token,
        Some(json!({"application_credential": {"name": "ac", "unrestricted": true}})),
    )
    .await;
    ok(st, &body, 201);
    let cred = &body["application_credential"];
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let ac = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let (st, body) = create(&s, &ac, trust_of(&c, false)).await;
    assert_eq!(
        error(st, &body, 403),
        "You are not authorized to perform the requested action: Delegated tokens cannot manage trusts.."
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts?trustor_user_id={}", c.alice),
        &ac,
        None,
    )
    .await;
    error(st, &body, 403);

    let mut missing = trust_of(&c, false);
    missing.as_object_mut().unwrap().remove("impersonation");
    let (st, body) = create(&s, &c.alice_token, missing).await;
    assert!(error(st, &body, 400).contains("'impersonation' is a required property"));
    let (st, body) = send(
        &s,
        Method::POST,
        "OS-TRUST/trusts",
        None,
        Some(json!({"trust": trust_of(&c, false)})),
    )
    .await;
    error(st, &body, 401);

    // Allowed: an expiry, a use limit, a redelegatable trust (count defaults to the maximum),
    // an extra attribute kept and shown.
    let t = create_ok(
        &s,
        &c.alice_token,
        with(json!({"expires_at": "2999-01-02T03:04:05Z", "remaining_uses": 2, "note": "kept"})),
    )
    .await;
    assert_eq!(t["expires_at"], "2999-01-02T03:04:05.000000Z");
    assert_eq!(t["remaining_uses"], 2);
    assert_eq!(t["note"], "kept");
    let t = create_ok(
        &s,
        &c.alice_token,
        with(json!({"allow_redelegation": true})),
    )
    .await;
    assert_eq!(t["redelegation_count"], 3);
    // A duplicate (same trustor, trustee, project, impersonation and expiry) is a conflict.
    let (st, body) = create(
        &s,
        &c.alice_token,
        with(json!({"expires_at": "2999-01-02T03:04:05Z"})),
    )
    .await;
    error(st, &body, 409);

    // Deleting the trustee deletes its trusts, as Keystone does.
    let admin = s.admin_token().await;
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("users/{}", c.bob),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = call(&s, Method::GET, "OS-TRUST/trusts", &admin, None).await;
    ok(st, &body, 200);
    assert_eq!(body["trusts"], json!([]), "{body}");
}

async fn trust_tokens(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let c = cast(&s).await;
    let imp = create_ok(&s, &c.alice_token, trust_of(&c, true)).await;
    let imp_id = imp["id"].as_str().unwrap().to_string();
    let plain = create_ok(&s, &c.alice_token, json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project, "impersonation": false, "roles": [{"name": "reader"}], "expires_at": "2999-01-01T00:00:00Z"})).await;
    let plain_id = plain["id"].as_str().unwrap().to_string();

    // Impersonation: the token shows the trustor; its roles are the trust's and what they imply.
    let (st, body, imp_token) = trust_auth(&s, password(&c.bob), &imp_id).await;
    assert_eq!(st, 201, "{body}");
    let tok = &body["token"];
    assert_eq!(tok["user"]["id"], json!(c.alice));
    assert_eq!(
        tok["OS-TRUST:trust"],
        json!({"id": imp_id, "impersonation": true, "trustee_user": {"id": c.bob}, "trustor_user": {"id": c.alice}})
    );
    assert_eq!(tok["project"]["id"], json!(c.project));
    assert_eq!(sorted_names(&tok["roles"]), ["member", "reader"]);
    assert!(tok.get("is_domain").is_none(), "{tok}");
    assert_eq!(tok["methods"], json!(["password"]));
    let (st, v) = s.validation(&imp_token).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["token"]["OS-TRUST:trust"]["id"], json!(imp_id));
    assert_eq!(v["token"]["user"]["id"], json!(c.alice));

    // Without impersonation: the trustee; the expiry is capped at the trust's? (It is later.)
    let (st, body, plain_token) = trust_auth(&s, password(&c.bob), &plain_id).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["token"]["user"]["id"], json!(c.bob));
    assert_eq!(sorted_names(&body["token"]["roles"]), ["reader"]);

    // By the token method from the trustee's unscoped token.
    let bob_unscoped = s.token("bob", PW, Value::Null).await;
    let ident = json!({"methods": ["token"], "token": {"id": bob_unscoped}});
    let (st, body, _) = trust_auth(&s, ident, &imp_id).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["token"]["methods"], json!(["token", "password"]));

    // Not the trustee: 403. An unknown trust: 401. A trust-scoped token is never exchanged.
    let (st, body, _) = trust_auth(&s, password(&c.eve), &imp_id).await;
    assert_eq!(st, 403, "{body}");
    let (st, body, _) = trust_auth(&s, password(&c.bob), "0123456789abcdef0123456789abcdef").await;
    assert_eq!(st, 401, "{body}");
    let ident = json!({"methods": ["token"], "token": {"id": plain_token}});
    let (st, body, _) = trust_auth(&s, ident.clone(), &plain_id).await;
    assert_eq!(st, 403, "{body}");
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&json!({"auth": {"identity": ident, "scope": project_scope(&c.project)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&json!({"auth": {"identity": password(&c.bob), "scope": {"OS-TRUST:trust": {}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // A trust token works as a caller.
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts/{plain_id}"),
        &plain_token,
        None,
    )
    .await;
    ok(st, &body, 200);

    // The trustor loses the delegated role: both trusts' tokens are refused (Keystone's 403),
    // and so is a new one.
    let member = s.role_id("member").await;
    let admin = s.admin_token().await;
    let grant = format!("projects/{}/users/{}/roles/{member}", c.project, c.alice);
    let (st, _) = call(&s, Method::DELETE, &grant, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for token in [&imp_token, &plain_token] {
        let (st, v) = s.validation(token).await;
        assert!(st == 403 || st == 404, "{st} {v}");
    }
    let (st, body, _) = trust_auth(&s, password(&c.bob), &imp_id).await;
    assert!(st == 403 || st == 401, "{st} {body}");
    let (st, _) = call(&s, Method::PUT, &grant, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body, imp_token) = trust_auth(&s, password(&c.bob), &imp_id).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(s.validation(&imp_token).await.0, 200);

    // Deleting the trust ends its tokens (cached or not) and refuses new ones.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("OS-TRUST/trusts/{imp_id}"),
        &c.alice_token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.validation(&imp_token).await.0, 404);
    let (st, _, _) = trust_auth(&s, password(&c.bob), &imp_id).await;
    assert_eq!(st, 401);
    let events = s.store.list_revocation_events(0, &[]).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.trust_id.as_deref() == Some(imp_id.as_str())));

    // The trustor disabled: the remaining trust's tokens stop and new ones are refused, with
    // Keystone's 403 ('Trustor is disabled.' is checked before revocation events).
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("users/{}", c.alice),
        &admin,
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.validation(&plain_token).await.0, 403);
    let (st, body, _) = trust_auth(&s, password(&c.bob), &plain_id).await;
    assert_eq!(st, 403, "{body}");
}

async fn trust_uses_and_expiry(dialect: baton_testkit::DbDialect) {
    let s = std::sync::Arc::new(IdentityServer::start(dialect).await);
    let c = cast(&s).await;
    // Two uses: two tokens, then 401; a used-up trust is "not found", its tokens too (Keystone).
    let t = create_ok(&s, &c.alice_token, json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}], "remaining_uses": 2})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let (st, _, first) = trust_auth(&s, password(&c.bob), &id).await;
    assert_eq!(st, 201);
    assert_eq!(s.validation(&first).await.0, 200);
    let row = s.store.get_trust(&id).await.unwrap().unwrap();
    assert_eq!(row.remaining_uses, Some(1));
    let (st, _, _) = trust_auth(&s, password(&c.bob), &id).await;
    assert_eq!(st, 201);
    let (st, _, _) = trust_auth(&s, password(&c.bob), &id).await;
    assert_eq!(st, 401);
    assert_eq!(s.validation(&first).await.0, 404);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-TRUST/trusts/{id}"),
        &c.alice_token,
        None,
    )
    .await;
    error(st, &body, 404);

    // One use left and eight concurrent issues: exactly one token.
    let t = create_ok(&s, &c.alice_token, json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project, "impersonation": true, "roles": [{"name": "member"}], "remaining_uses": 1})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (s, bob, id) = (s.clone(), c.bob.clone(), id.clone());
        set.spawn(async move { trust_auth(&s, password(&bob), &id).await.0 });
    }
    let statuses = set.join_all().await;
    assert_eq!(
        statuses.iter().filter(|st| **st == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|st| [201, 401, 403].contains(st)),
        "{statuses:?}"
    );
    assert_eq!(
        s.store
            .get_trust(&id)
            .await
            .unwrap()
            .unwrap()
            .remaining_uses,
        Some(0)
    );

    // A token never outlives its trust.
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%S.000000Z")
        .to_string();
    let t = create_ok(&s, &c.alice_token, json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}], "expires_at": soon})).await;
    let (st, body, _) = trust_auth(&s, password(&c.bob), t["id"].as_str().unwrap()).await;
    assert_eq!(st, 201);
    assert_eq!(body["token"]["expires_at"], json!(soon));
}

async fn trust_redelegation(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let c = cast(&s).await;
    let t1 = create_ok(&s, &c.alice_token, json!({"trustor_user_id": c.alice, "trustee_user_id": c.bob, "project_id": c.project, "impersonation": true, "roles": [{"name": "member"}], "allow_redelegation": true, "redelegation_count": 2})).await;
    let t1_id = t1["id"].as_str().unwrap().to_string();
    let (st, _, bob_trust) = trust_auth(&s, password(&c.bob), &t1_id).await;
    assert_eq!(st, 201);
    // The impersonating token's user is the trustor: it redelegates alice's trust to eve.
    let t2 = create_ok(&s, &bob_trust, json!({"trustor_user_id": c.alice, "trustee_user_id": c.eve, "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}], "allow_redelegation": true})).await;
    assert_eq!(t2["redelegated_trust_id"], json!(t1_id));
    assert_eq!(t2["redelegation_count"], 1);
    let t2_id = t2["id"].as_str().unwrap().to_string();
    let (st, body, eve_trust) = trust_auth(&s, password(&c.eve), &t2_id).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(sorted_names(&body["token"]["roles"]), ["member", "reader"]);
    // A redelegation count other than the one remaining: 403.
    let (st, body) = create(&s, &bob_trust, json!({"trustor_user_id": c.alice, "trustee_user_id": c.eve, "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}], "allow_redelegation": true, "redelegation_count": 2, "expires_at": "2999-01-01T00:00:00Z"})).await;
    error(st, &body, 403);
    // A redelegated trust with a use limit: 403.
    let (st, body) = create(&s, &bob_trust, json!({"trustor_user_id": c.alice, "trustee_user_id": c.eve, "project_id": c.project, "impersonation": false, "roles": [{"name": "member"}], "remaining_uses": 1})).await;
    error(st, &body, 403);
    // Deleting the first trust ends the chain.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("OS-TRUST/trusts/{t1_id}"),
        &c.alice_token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.validation(&eve_trust).await.0, 404);
    let (st, _, _) = trust_auth(&s, password(&c.eve), &t2_id).await;
    assert_eq!(st, 401);
}

/// `[trust] max_redelegation_count` bounds what a create may ask for and the chain's links.
async fn trust_redelegation_limit(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start_with(dialect, |c| c.trust.max_redelegation_count = 1).await;
    let c = cast(&s).await;
    let mut t = trust_of(&c, false);
    t["allow_redelegation"] = json!(true);
    t["redelegation_count"] = json!(2);
    let (st, body) = create(&s, &c.alice_token, t.clone()).await;
    error(st, &body, 403);
    t["redelegation_count"] = Value::Null;
    let made = create_ok(&s, &c.alice_token, t).await;
    assert_eq!(made["redelegation_count"], 1);
}

on_every_database!(
    trust_crud,
    trust_create_refusals,
    trust_tokens,
    trust_uses_and_expiry,
    trust_redelegation,
    trust_redelegation_limit
);
