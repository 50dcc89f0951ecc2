//! Application credentials over HTTP on every database: CRUD by the owner, another user and a
//! system admin, Keystone's refusals (roles the creator lacks, expiry in the past, a duplicate
//! name, a restricted credential's token), authentication by id and by name, and what ends a
//! credential's tokens (deleting it, the creator losing a role or being disabled).

use baton_testkit::{
    call, error, on_every_database, project_scope, send, sorted_names, IdentityServer, Personas,
    PERSONA_PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ok(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "status; body {body}");
}

/// A request without a body.
async fn bare(s: &IdentityServer, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
    call(s, method, path, token, None).await
}

fn creds_path(user_id: &str) -> String {
    format!("users/{user_id}/application_credentials")
}

async fn create(
    s: &IdentityServer,
    token: &str,
    user_id: &str,
    cred: Value,
) -> (StatusCode, Value) {
    call(
        s,
        Method::POST,
        &creds_path(user_id),
        token,
        Some(json!({ "application_credential": cred })),
    )
    .await
}

/// Creates a credential, asserting 201: its id and the created credential.
async fn create_ok(s: &IdentityServer, token: &str, user_id: &str, cred: Value) -> (String, Value) {
    let (st, body) = create(s, token, user_id, cred).await;
    ok(st, &body, 201);
    let c = body["application_credential"].clone();
    (c["id"].as_str().unwrap().to_string(), c)
}

/// `POST /v3/auth/tokens` with `identity` under the `application_credential` method.
async fn app_cred_auth(
    s: &IdentityServer,
    identity: Value,
    scope: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut auth = json!({"identity": {"methods": ["application_credential"], "application_credential": identity}});
    if let Some(sc) = scope {
        auth["scope"] = sc;
    }
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&json!({ "auth": auth }))
        .send()
        .await
        .expect("auth");
    let status = resp.status();
    let token = resp
        .headers()
        .get("x-subject-token")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, token)
}

async fn app_cred_crud(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let owner = &p.project_member_id;
    let other = &p.project_reader_id;

    // Create with the token's roles (member and the reader it implies) and a generated secret.
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "c1", "description": "one"}),
    )
    .await;
    ok(st, &body, 201);
    let c1 = body["application_credential"].clone();
    let c1_id = c1["id"].as_str().unwrap().to_string();
    let secret = c1["secret"].as_str().unwrap().to_string();
    assert_eq!(
        secret.len(),
        86,
        "Keystone's secret: 64 bytes, urlsafe base64, no padding"
    );
    assert_eq!(sorted_names(&c1["roles"]), ["member", "reader"]);
    assert_eq!(c1["project_id"], json!(p.project_id));
    assert_eq!(c1["unrestricted"], json!(false));
    assert_eq!(c1["expires_at"], Value::Null);
    // Keystone's create response shows the owner; never the hash.
    assert_eq!(c1["user_id"], json!(owner));
    assert!(c1.get("secret_hash").is_none(), "{c1}");
    assert_eq!(
        c1["links"]["self"],
        json!(s.url(&format!("application_credentials/{c1_id}")))
    );
    // The hash, not the secret, is stored.
    let row = s
        .store
        .get_application_credential(&c1_id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.secret_hash.starts_with("$2b$"), "bcrypt hash stored");

    // Reads: the owner and a system reader see it; another user gets 403, also when naming
    // their own id in the path.
    for token in [&p.project_member, &p.system_reader, &p.system_admin] {
        let (st, body) = bare(&s, Method::GET, &creds_path(owner), token).await;
        ok(st, &body, 200);
        assert_eq!(body["application_credentials"].as_array().unwrap().len(), 1);
        let (st, body) = bare(
            &s,
            Method::GET,
            &format!("{}/{c1_id}", creds_path(owner)),
            token,
        )
        .await;
        ok(st, &body, 200);
        assert_eq!(body["application_credential"]["user_id"], json!(owner));
        assert!(body["application_credential"].get("secret").is_none());
    }
    let (st, body) = bare(
        &s,
        Method::GET,
        &format!("{}?name=c1", creds_path(owner)),
        &p.project_member,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["application_credentials"][0]["id"], json!(c1_id));
    // The list leaves out `user_id` and `system`, as Keystone's does.
    assert!(body["application_credentials"][0].get("user_id").is_none());
    let (st, body) = bare(
        &s,
        Method::GET,
        &format!("{}?name=nope", creds_path(owner)),
        &p.project_member,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["application_credentials"], json!([]));
    let (st, body) = bare(&s, Method::GET, &creds_path(owner), &p.project_reader).await;
    error(st, &body, 403);
    for path in [
        format!("{}/{c1_id}", creds_path(owner)),
        format!("{}/{c1_id}", creds_path(other)),
    ] {
        let (st, body) = bare(&s, Method::GET, &path, &p.project_reader).await;
        error(st, &body, 403);
        let (st, body) = bare(&s, Method::DELETE, &path, &p.project_reader).await;
        error(st, &body, 403);
    }
    // 403 before 404 for another user; 404 for the owner.
    let (st, body) = bare(
        &s,
        Method::GET,
        &format!("{}/nope", creds_path(owner)),
        &p.project_member,
    )
    .await;
    error(st, &body, 404);
    // Creating for another user: 403, even for a system admin.
    let (st, body) = create(&s, &p.project_reader, owner, json!({"name": "x"})).await;
    error(st, &body, 403);
    let (st, body) = create(&s, &p.system_admin, owner, json!({"name": "x"})).await;
    error(st, &body, 403);

    // Bad input.
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "x", "roles": [{"name": "admin"}]}),
    )
    .await;
    let msg = error(st, &body, 400);
    assert!(
        msg.contains("Cannot create an application credential with unassigned role"),
        "{msg}"
    );
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "x", "expires_at": "2001-01-01T00:00:00"}),
    )
    .await;
    let msg = error(st, &body, 400);
    assert!(msg.contains("'expires_at' must not be before now"), "{msg}");
    let (st, body) = create(&s, &p.project_member, owner, json!({"name": "c1"})).await;
    error(st, &body, 409);
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"description": "no name"}),
    )
    .await;
    error(st, &body, 400);
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "x", "bogus": 1}),
    )
    .await;
    error(st, &body, 400);

    // Authentication by id, by name with the user's id, by name with user name and domain.
    let by_id = json!({"id": c1_id, "secret": secret});
    let by_name = json!({"name": "c1", "secret": secret, "user": {"id": owner}});
    let by_user_name = json!({"name": "c1", "secret": secret,
        "user": {"name": "pmember", "domain": {"id": s.default_domain_id}}});
    let mut tokens = Vec::new();
    for identity in [&by_id, &by_name, &by_user_name] {
        let (st, body, token) = app_cred_auth(&s, identity.clone(), None).await;
        ok(st, &body, 201);
        let t = &body["token"];
        assert_eq!(t["methods"], json!(["application_credential"]));
        assert_eq!(t["project"]["id"], json!(p.project_id));
        assert_eq!(
            t["application_credential"],
            json!({"id": c1_id, "name": "c1", "restricted": true})
        );
        assert_eq!(sorted_names(&t["roles"]), ["member", "reader"]);
        tokens.push(token.unwrap());
    }
    let (st, body) = s.validation(&tokens[0]).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["token"]["application_credential"]["id"], json!(c1_id));
    // Wrong secret, a requested scope, an unknown name: 401.
    let (st, body, _) = app_cred_auth(&s, json!({"id": c1_id, "secret": "wrong"}), None).await;
    error(st, &body, 401);
    let (st, body, _) = app_cred_auth(&s, by_id.clone(), Some(project_scope(&p.project_id))).await;
    error(st, &body, 401);
    let (st, body, _) = app_cred_auth(
        &s,
        json!({"name": "nope", "secret": secret, "user": {"id": owner}}),
        None,
    )
    .await;
    error(st, &body, 401);

    // Its token is not exchanged for another (that could leave the credential's roles).
    for scope in [None, Some(project_scope(&p.project_id))] {
        let mut auth = json!({"identity": {"methods": ["token"], "token": {"id": tokens[0]}}});
        if let Some(sc) = scope {
            auth["scope"] = sc;
        }
        let (st, body) = send(
            &s,
            Method::POST,
            "auth/tokens",
            None,
            Some(json!({ "auth": auth })),
        )
        .await;
        let msg = error(st, &body, 403);
        assert!(msg.contains("delegated token"), "{msg}");
    }

    // A restricted credential's token may not create or delete credentials.
    let (st, body) = create(&s, &tokens[0], owner, json!({"name": "c9"})).await;
    let msg = error(st, &body, 403);
    assert!(msg.contains("application_credential"), "{msg}");
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{}/{c1_id}", creds_path(owner)),
        &tokens[0],
    )
    .await;
    error(st, &body, 403);

    // An unrestricted credential with one role: its token holds that role only and may create.
    let (st, body) = create(&s, &p.project_member, owner,
        json!({"name": "c2", "unrestricted": true, "roles": [{"name": "reader"}], "secret": "my-own-secret"})).await;
    ok(st, &body, 201);
    assert_eq!(
        body["application_credential"]["secret"],
        json!("my-own-secret")
    );
    let c2_id = body["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, body, token) =
        app_cred_auth(&s, json!({"id": c2_id, "secret": "my-own-secret"}), None).await;
    ok(st, &body, 201);
    assert_eq!(sorted_names(&body["token"]["roles"]), ["reader"]);
    assert_eq!(
        body["token"]["application_credential"]["restricted"],
        json!(false)
    );
    let c2_token = token.unwrap();
    let (st, body) = create(&s, &c2_token, owner, json!({"name": "c3"})).await;
    ok(st, &body, 201);
    assert_eq!(
        sorted_names(&body["application_credential"]["roles"]),
        ["reader"]
    );

    // Access rules: made with a credential, reused by id, refused while in use.
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "c4", "secret": "c4-secret",
        "access_rules": [{"service": "compute", "path": "/v2.1/servers", "method": "GET"}]}),
    )
    .await;
    ok(st, &body, 201);
    let c4_id = body["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rule = body["application_credential"]["access_rules"][0].clone();
    let rule_id = rule["id"].as_str().unwrap().to_string();
    assert_eq!(rule["path"], json!("/v2.1/servers"));
    let (st, body) = create(
        &s,
        &p.project_member,
        owner,
        json!({"name": "c5", "access_rules": [{"id": rule_id}]}),
    )
    .await;
    ok(st, &body, 201);
    let c5_id = body["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        body["application_credential"]["access_rules"][0]["id"],
        json!(rule_id)
    );
    let (st, body) = create(
        &s,
        &p.project_reader,
        other,
        json!({"name": "steal", "access_rules": [{"id": rule_id}]}),
    )
    .await;
    error(st, &body, 404);
    // Keystone validates a token of a credential with access rules only for a validator that
    // says it enforces them (OpenStack-Identity-Access-Rules >= 1.0).
    let (st, body, token) =
        app_cred_auth(&s, json!({"id": c4_id, "secret": "c4-secret"}), None).await;
    ok(st, &body, 201);
    let c4_token = token.unwrap();
    assert_eq!(
        body["token"]["application_credential"]["access_rules"][0]["path"],
        json!("/v2.1/servers")
    );
    let admin = s.system_admin_token().await;
    for (header, want) in [
        (None, 404),
        (Some("0.9"), 404),
        (Some("1"), 200),
        (Some("1.0"), 200),
    ] {
        let mut rb = s
            .client
            .get(s.url("auth/tokens"))
            .header("x-auth-token", &admin)
            .header("x-subject-token", &c4_token);
        if let Some(h) = header {
            rb = rb.header("openstack-identity-access-rules", h);
        }
        assert_eq!(
            rb.send().await.unwrap().status().as_u16(),
            want,
            "{header:?}"
        );
    }
    let (st, body) = bare(&s, Method::GET, &creds_path(owner), &c4_token).await;
    error(st, &body, 401);
    let rules_path = format!("users/{owner}/access_rules");
    let (st, body) = bare(&s, Method::GET, &rules_path, &p.project_member).await;
    ok(st, &body, 200);
    assert_eq!(body["access_rules"].as_array().unwrap().len(), 1);
    let (st, body) = bare(&s, Method::GET, &rules_path, &p.project_reader).await;
    error(st, &body, 403);
    let (st, body) = bare(
        &s,
        Method::GET,
        &format!("{rules_path}/{rule_id}"),
        &p.system_reader,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["access_rule"]["method"], json!("GET"));
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{rules_path}/{rule_id}"),
        &p.project_member,
    )
    .await;
    error(st, &body, 403);
    for id in [&c4_id, &c5_id] {
        let (st, body) = bare(
            &s,
            Method::DELETE,
            &format!("{}/{id}", creds_path(owner)),
            &p.project_member,
        )
        .await;
        ok(st, &body, 204);
    }
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{rules_path}/{rule_id}"),
        &p.project_member,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = bare(
        &s,
        Method::GET,
        &format!("{rules_path}/{rule_id}"),
        &p.project_member,
    )
    .await;
    error(st, &body, 404);

    // Deleting a credential ends its tokens (cached validations included) and its logins.
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{}/{c1_id}", creds_path(owner)),
        &p.project_member,
    )
    .await;
    ok(st, &body, 204);
    for t in &tokens {
        assert_eq!(s.validation(t).await.0, 404);
    }
    let (st, _, _) = app_cred_auth(&s, by_id, None).await;
    assert!(st.is_client_error() && st != StatusCode::CREATED, "{st}");
    let (st, body, _) = app_cred_auth(&s, by_name, None).await;
    error(st, &body, 401);
    // A system admin deletes another user's credential.
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{}/{c2_id}", creds_path(owner)),
        &p.system_admin,
    )
    .await;
    ok(st, &body, 204);
    assert_eq!(s.validation(&c2_token).await.0, 404);
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{}/{c2_id}", creds_path(owner)),
        &p.system_admin,
    )
    .await;
    error(st, &body, 404);
}

async fn app_cred_tokens_follow_the_user(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let owner = p.project_member_id.clone();
    let extra = s.create_role("extra").await;
    s.grant_project(&owner, &p.project_id, "extra").await;
    let member_token = s
        .token("pmember", PERSONA_PASSWORD, project_scope(&p.project_id))
        .await;

    let (id, created) = create_ok(
        &s,
        &member_token,
        &owner,
        json!({"name": "all", "secret": "s3cret-all"}),
    )
    .await;
    assert_eq!(
        sorted_names(&created["roles"]),
        ["extra", "member", "reader"]
    );
    let login = json!({"id": id, "secret": "s3cret-all"});
    let (st, body, token) = app_cred_auth(&s, login.clone(), None).await;
    ok(st, &body, 201);
    let first = token.unwrap();
    assert_eq!(
        sorted_names(&body["token"]["roles"]),
        ["extra", "member", "reader"]
    );

    // The creator loses one role: new tokens carry the credential's roles the user still has.
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("projects/{}/users/{owner}/roles/{extra}", p.project_id),
        &p.system_admin,
    )
    .await;
    ok(st, &body, 204);
    let (st, body, token) = app_cred_auth(&s, login.clone(), None).await;
    ok(st, &body, 201);
    assert_eq!(sorted_names(&body["token"]["roles"]), ["member", "reader"]);
    let second = token.unwrap();
    let (st, body) = s.validation(&second).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(sorted_names(&body["token"]["roles"]), ["member", "reader"]);
    let _ = first;

    // Deleted behind this node's back (another node, or Keystone on the shared database): the
    // cached validation does not keep its token alive.
    let (else_id, _) = create_ok(
        &s,
        &member_token,
        &owner,
        json!({"name": "elsewhere", "secret": "s3cret-else"}),
    )
    .await;
    let (st, body, token) =
        app_cred_auth(&s, json!({"id": else_id, "secret": "s3cret-else"}), None).await;
    ok(st, &body, 201);
    let else_token = token.unwrap();
    assert_eq!(s.validation(&else_token).await.0, 200);
    assert!(s
        .store
        .delete_application_credential(&else_id)
        .await
        .unwrap());
    assert_eq!(s.validation(&else_token).await.0, 404);

    // The creator is disabled: the tokens end, and so does the credential (Keystone deletes it).
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{owner}"),
        &p.system_admin,
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(s.validation(&second).await.0, 404);
    let (st, _, _) = app_cred_auth(&s, login.clone(), None).await;
    assert!(st.is_client_error(), "{st}");
    assert!(s
        .store
        .get_application_credential(&id)
        .await
        .unwrap()
        .is_none());
}

async fn app_cred_expiry(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start_manual_clock(dialect).await;
    let p = Personas::build(&s).await;
    let owner = p.project_member_id.clone();
    let soon = (s.clock().now() + chrono::Duration::seconds(120))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let (st, body) = create(
        &s,
        &p.project_member,
        &owner,
        json!({"name": "brief", "secret": "brief-secret", "expires_at": soon}),
    )
    .await;
    ok(st, &body, 201);
    assert!(body["application_credential"]["expires_at"]
        .as_str()
        .unwrap()
        .starts_with(&soon));
    let id = body["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let login = json!({"id": id, "secret": "brief-secret"});
    let (st, body, token) = app_cred_auth(&s, login.clone(), None).await;
    ok(st, &body, 201);
    // The token does not outlive the credential.
    assert!(
        body["token"]["expires_at"]
            .as_str()
            .unwrap()
            .starts_with(&soon),
        "{body}"
    );
    let token = token.unwrap();
    s.clock().advance(chrono::Duration::seconds(121));
    let (st, body, _) = app_cred_auth(&s, login, None).await;
    error(st, &body, 401);
    assert_eq!(s.validation(&token).await.0, 404);

    // Deleting a role deletes the credentials of its holders on their projects (Keystone).
    let temp = s.create_role("temp").await;
    s.grant_project(&owner, &p.project_id, "temp").await;
    let temp_token = s
        .token("pmember", PERSONA_PASSWORD, project_scope(&p.project_id))
        .await;
    let (temp_cred, _) = create_ok(&s, &temp_token, &owner, json!({"name": "with-temp"})).await;
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("roles/{temp}"),
        &p.system_admin,
    )
    .await;
    ok(st, &body, 204);
    assert!(s
        .store
        .get_application_credential(&temp_cred)
        .await
        .unwrap()
        .is_none());
    // Keystone deletes all of the holder's credentials on that project, not only those with
    // the role.
    assert!(s
        .store
        .get_application_credential(&id)
        .await
        .unwrap()
        .is_none());
}

on_every_database!(
    app_cred_crud,
    app_cred_tokens_follow_the_user,
    app_cred_expiry
);

/// `[application_credential] user_limit`: Keystone's 403 once the user holds that many,
/// expired ones counted; deleting one makes room.
#[tokio::test]
async fn app_cred_user_limit() {
    let s = IdentityServer::start_with(baton_testkit::DbDialect::Sqlite, |c| {
        c.application_credential.user_limit = Some(2);
    })
    .await;
    let p = Personas::build(&s).await;
    let owner = p.project_member_id.clone();
    let (first, _) = create_ok(&s, &p.project_member, &owner, json!({"name": "one"})).await;
    create_ok(&s, &p.project_member, &owner, json!({"name": "two"})).await;
    let (st, body) = create(&s, &p.project_member, &owner, json!({"name": "three"})).await;
    assert_eq!(
        error(st, &body, 403),
        "Unable to create additional application credentials, maximum of 2 already exceeded for user."
    );
    let (st, body) = bare(
        &s,
        Method::DELETE,
        &format!("{}/{first}", creds_path(&owner)),
        &p.project_member,
    )
    .await;
    ok(st, &body, 204);
    create_ok(&s, &p.project_member, &owner, json!({"name": "three"})).await;
}
