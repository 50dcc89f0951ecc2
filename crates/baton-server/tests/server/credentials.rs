//! Credentials over HTTP on every database: `/v3/credentials` CRUD with Keystone's encryption
//! (rows checked against the key repository), validation messages, 403 before 404, listings
//! filtered to what the caller may see; EC2 credentials (`OS-EC2`) and `POST /v3/ec2tokens`
//! with signed requests (v2 with and without the host's port, v4, expired, wrong); the
//! delegated-token refusals; key rotation and migration as `baton manage` runs them.

use baton_server::ec2_signature::SignedRequest;
use baton_server::identity::credentials::{self, ec2_credential_id, key_hash};
use baton_testkit::{call, error, on_every_database, send, IdentityServer, Personas};
use baton_token::KeyRepository;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

fn ok(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "status; body {body}");
}

async fn create(s: &IdentityServer, token: &str, cred: Value) -> (StatusCode, Value) {
    call(
        s,
        Method::POST,
        "credentials",
        token,
        Some(json!({ "credential": cred })),
    )
    .await
}

fn keys(s: &IdentityServer) -> KeyRepository {
    KeyRepository::new(&s.config.credential.key_repository, 3)
}

/// The stored row decrypts with the repository's keys to `blob`, and carries the primary
/// key's hash.
async fn assert_encrypted(s: &IdentityServer, id: &str, plaintext: &str) {
    let row = s.store.get_credential(id).await.unwrap().expect("row");
    assert!(!row.encrypted_blob.contains(plaintext));
    // Padded, as Python's Fernet writes and requires.
    assert_eq!(row.encrypted_blob.len() % 4, 0);
    let set = keys(s).load().unwrap();
    assert_eq!(row.key_hash, key_hash(set.primary()));
    let plain = set.decrypt(&row.encrypted_blob).unwrap().payload;
    assert_eq!(String::from_utf8(plain).unwrap(), plaintext);
}

async fn credential_crud(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let me = &p.project_member_id;

    let (st, body) = create(
        &s,
        &p.project_member,
        json!({"type": "cert", "user_id": me, "blob": "secret-blob-1", "note": "kept", "id": "ignored"}),
    )
    .await;
    ok(st, &body, 201);
    let c = &body["credential"];
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(c["user_id"], json!(me));
    assert_eq!(c["project_id"], Value::Null);
    assert_eq!(c["type"], "cert");
    assert_eq!(c["blob"], "secret-blob-1");
    assert_eq!(c["note"], "kept");
    assert_eq!(
        c["links"]["self"],
        json!(s.url(&format!("credentials/{id}")))
    );
    assert_encrypted(&s, &id, "secret-blob-1").await;

    // An ec2 blob is encrypted as its JSON encoding; its id is the access key's hash.
    let blob = r#"{"access": "ak-1", "secret": "sk-1"}"#;
    let (st, body) = create(
        &s,
        &p.project_member,
        json!({"type": "ec2", "user_id": me, "project_id": p.project_id, "blob": blob}),
    )
    .await;
    ok(st, &body, 201);
    let ec2_id = ec2_credential_id("ak-1");
    assert_eq!(body["credential"]["id"], json!(ec2_id));
    assert_encrypted(&s, &ec2_id, &serde_json::to_string(blob).unwrap()).await;
    let (st, body) = create(
        &s,
        &p.project_member,
        json!({"type": "ec2", "user_id": me, "project_id": p.project_id, "blob": blob}),
    )
    .await;
    error(st, &body, 409);

    // Keystone's validation (before policy) and blob checks.
    let cases = [
        (
            json!({"type": "cert", "user_id": me}),
            "'blob' is a required property",
        ),
        (
            json!({"type": "ec2", "user_id": me, "blob": "{}"}),
            "'project_id' is a required property",
        ),
        (
            json!({"type": "cert", "user_id": me, "blob": 1}),
            "Invalid input for field/attribute blob. Value: 1. 1 is not of type 'string'",
        ),
        (
            json!({"type": "ec2", "user_id": me, "project_id": "x", "blob": "nope"}),
            "Invalid blob in credential",
        ),
        (
            json!({"type": "ec2", "user_id": me, "project_id": "x", "blob": "{\"secret\": \"s\"}"}),
            "Expecting to find access in credential.",
        ),
    ];
    for (cred, want) in cases {
        let (st, body) = create(&s, &p.project_member, cred).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(want), "{msg} should contain {want}");
    }
    let (st, body) = call(
        &s,
        Method::POST,
        "credentials",
        &p.project_member,
        Some(json!({})),
    )
    .await;
    assert_eq!(error(st, &body, 400), "'credential' is a required property");

    // Another user's credential: not creatable, readable or deletable (403, as for a missing
    // one), and left out of listings.
    let (st, body) = create(
        &s,
        &p.project_member,
        json!({"type": "cert", "user_id": p.project_reader_id, "blob": "x"}),
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("credentials/{id}"),
        &p.project_reader,
        None,
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::GET,
        "credentials/missing",
        &p.project_member,
        None,
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::GET,
        "credentials/missing",
        &p.system_admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find credential: missing.");
    let (st, body) = call(&s, Method::GET, "credentials", &p.project_reader, None).await;
    ok(st, &body, 200);
    assert_eq!(body["credentials"], json!([]));
    let (st, body) = call(&s, Method::GET, "credentials", &p.system_admin, None).await;
    assert_eq!(body["credentials"].as_array().unwrap().len(), 2);
    let (st2, body2) = call(
        &s,
        Method::GET,
        "credentials?type=ec2",
        &p.project_member,
        None,
    )
    .await;
    ok(st2, &body2, 200);
    ok(st, &body, 200);
    assert_eq!(body2["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(body2["credentials"][0]["blob"], blob);

    // PATCH changes only the blob.
    let path = format!("credentials/{id}");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &path,
        &p.project_member,
        Some(json!({"credential": {"blob": "two"}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["credential"]["blob"], "two");
    assert_encrypted(&s, &id, "two").await;
    let (st, body) = call(
        &s,
        Method::PATCH,
        &path,
        &p.project_member,
        Some(json!({"credential": {"blob": "x", "type": "ec2"}})),
    )
    .await;
    assert!(error(st, &body, 400)
        .ends_with("Additional properties are not allowed ('type' was unexpected)"));
    let (st, body) = call(&s, Method::GET, &path, &p.project_member, None).await;
    ok(st, &body, 200);
    assert_eq!(body["credential"]["blob"], "two");
    assert_eq!(body["credential"]["note"], "kept");

    let (st, body) = call(&s, Method::DELETE, &path, &p.project_reader, None).await;
    error(st, &body, 403);
    let (st, body) = call(&s, Method::DELETE, &path, &p.project_member, None).await;
    ok(st, &body, 204);
    let (st, body) = call(&s, Method::DELETE, &path, &p.system_admin, None).await;
    error(st, &body, 404);

    // Deleting the user deletes their credentials (Keystone's cascade).
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{me}"),
        &p.system_admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    assert!(s.store.get_credential(&ec2_id).await.unwrap().is_none());
    s.stop().await;
}

/// A v2-signed request for `access`, signed with `secret` for `signed_host`, sent as `host`.
fn signed_v2(access: &str, secret: &str, host: &str, signed_host: &str, timestamp: &str) -> Value {
    let mut creds = json!({
        "access": access,
        "host": signed_host,
        "verb": "GET",
        "path": "/",
        "params": {"Action": "DescribeInstances", "AWSAccessKeyId": access,
                   "SignatureMethod": "HmacSHA256", "SignatureVersion": "2",
                   "Timestamp": timestamp},
    });
    let map: Map<String, Value> = creds.as_object().unwrap().clone();
    let sig = SignedRequest::new(&map)
        .unwrap()
        .expected(secret, signed_host)
        .unwrap();
    creds["signature"] = json!(sig);
    creds["host"] = json!(host);
    creds
}

fn signed_v4(access: &str, secret: &str, date: &str) -> Value {
    let mut creds = json!({
        "access": access, "host": "ec2.example.com", "verb": "POST", "path": "/",
        "params": {}, "body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "headers": {
            "Host": "ec2.example.com",
            "X-Amz-Date": date,
            "Authorization": format!("AWS4-HMAC-SHA256 Credential={access}/{}/RegionOne/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=x", &date[..8]),
        },
    });
    let map: Map<String, Value> = creds.as_object().unwrap().clone();
    let sig = SignedRequest::new(&map)
        .unwrap()
        .expected(secret, "")
        .unwrap();
    creds["signature"] = json!(sig);
    creds
}

async fn ec2tokens(
    s: &IdentityServer,
    token: Option<&str>,
    creds: Value,
) -> (StatusCode, Value, Option<String>) {
    let mut req = s
        .client
        .post(s.url("ec2tokens"))
        .json(&json!({ "credentials": creds }));
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let subject = resp
        .headers()
        .get("x-subject-token")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        subject,
    )
}

async fn ec2_credentials_and_tokens(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let me = &p.project_member_id;
    let base = format!("users/{me}/credentials/OS-EC2");

    let (st, body) = call(
        &s,
        Method::POST,
        &base,
        &p.project_member,
        Some(json!({"tenant_id": p.project_id})),
    )
    .await;
    ok(st, &body, 201);
    let c = body["credential"].clone();
    let access = c["access"].as_str().unwrap().to_string();
    let secret = c["secret"].as_str().unwrap().to_string();
    assert_eq!((access.len(), secret.len()), (32, 32));
    assert_eq!(c["user_id"], json!(me));
    assert_eq!(c["tenant_id"], json!(p.project_id));
    assert_eq!(c["trust_id"], Value::Null);
    assert_eq!(
        c["links"]["self"],
        json!(s.url(&format!("{base}/{access}")))
    );
    let (st, body) = call(&s, Method::POST, &base, &p.project_member, Some(json!({}))).await;
    assert_eq!(error(st, &body, 404), "Could not find project: None.");
    let other = format!("users/{}/credentials/OS-EC2", p.project_reader_id);
    let (st, body) = call(
        &s,
        Method::POST,
        &other,
        &p.project_member,
        Some(json!({"tenant_id": p.project_id})),
    )
    .await;
    error(st, &body, 403);

    let (st, body) = call(&s, Method::GET, &base, &p.project_member, None).await;
    ok(st, &body, 200);
    assert_eq!(body["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(body["credentials"][0]["secret"], json!(secret));
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("{base}/{access}"),
        &p.project_member,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["credential"]["access"], json!(access));
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("{base}/{access}"),
        &p.project_reader,
        None,
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("{base}/nope"),
        &p.project_member,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find credential: {}.", ec2_credential_id("nope"))
    );

    // The exchange: a service or admin presents the signed request.
    let now = chrono::Utc::now();
    let ts = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (st, body, subject) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2(
            &access,
            &secret,
            "ec2.example.com:8773",
            "ec2.example.com:8773",
            &ts,
        ),
    )
    .await;
    ok(st, &body, 200);
    let token = subject.expect("X-Subject-Token");
    assert_eq!(body["token"]["methods"], json!(["ec2credential"]));
    assert_eq!(body["token"]["user"]["id"], json!(me));
    assert_eq!(body["token"]["project"]["id"], json!(p.project_id));
    assert!(body["token"]["catalog"].is_array());
    // Signed without the port, sent with it: Keystone's retry accepts it.
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2(
            &access,
            &secret,
            "EC2.example.com:8773",
            "ec2.example.com",
            &ts,
        ),
    )
    .await;
    ok(st, &body, 200);
    let amz = now.format("%Y%m%dT%H%M%SZ").to_string();
    let (st, body, _) =
        ec2tokens(&s, Some(&p.system_admin), signed_v4(&access, &secret, &amz)).await;
    ok(st, &body, 200);
    // Refusals.
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2(&access, "wrong", "h", "h", &ts),
    )
    .await;
    error(st, &body, 401);
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2(&access, &secret, "h", "h", "2001-01-01T00:00:00Z"),
    )
    .await;
    error(st, &body, 401);
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2("unknown", &secret, "h", "h", &ts),
    )
    .await;
    assert_eq!(error(st, &body, 404), "EC2 access key not found.");
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.project_member),
        signed_v2(&access, &secret, "h", "h", &ts),
    )
    .await;
    error(st, &body, 403);
    let (st, body, _) = ec2tokens(&s, None, signed_v2(&access, &secret, "h", "h", &ts)).await;
    error(st, &body, 401);

    // An EC2 token authorizes no API call (Keystone's auth_context refuses it, LP#2153453) and
    // is never exchanged for another token; services only validate it.
    let generic = "You are not authorized to perform the requested action.";
    let refused = [
        (Method::GET, "credentials".to_string(), None),
        (
            Method::POST,
            "credentials".to_string(),
            Some(json!({"credential": {"type": "cert", "user_id": me, "blob": "x"}})),
        ),
        (Method::GET, base.clone(), None),
        (
            Method::POST,
            format!("users/{me}/application_credentials"),
            Some(json!({"application_credential": {"name": "from-ec2"}})),
        ),
        (Method::GET, "auth/projects".to_string(), None),
    ];
    for (method, path, body) in refused {
        let (st, got) = call(&s, method, &path, &token, body).await;
        assert_eq!(error(st, &got, 403), generic, "{path}");
    }
    let (st, body) = send(
        &s,
        Method::POST,
        "auth/tokens",
        None,
        Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}})),
    )
    .await;
    error(st, &body, 403);
    let checked = s
        .client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", &p.system_admin)
        .header("x-subject-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status().as_u16(), 200);

    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("{base}/{access}"),
        &p.project_member,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body, _) = ec2tokens(
        &s,
        Some(&p.system_admin),
        signed_v2(&access, &secret, "h", "h", &ts),
    )
    .await;
    error(st, &body, 404);
    s.stop().await;
}

/// `baton manage credential_rotate` refuses while rows are on an older key;
/// `credential_migrate` moves them to the primary key, and they still read.
async fn credential_rotation(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let admin = s.system_admin_token().await;
    let (st, body) = create(
        &s,
        &admin,
        json!({"type": "totp", "user_id": s.admin_user_id, "blob": "seed"}),
    )
    .await;
    ok(st, &body, 201);
    let id = body["credential"]["id"].as_str().unwrap().to_string();
    let opts = &s.config.credential;
    credentials::check_rotatable(&s.store, opts).await.unwrap();
    keys(&s).rotate().unwrap();
    let refused = credentials::check_rotatable(&s.store, opts)
        .await
        .unwrap_err();
    assert!(refused
        .to_string()
        .starts_with("Unable to rotate credential keys"));
    let (st, body) = call(&s, Method::GET, &format!("credentials/{id}"), &admin, None).await;
    ok(st, &body, 200);
    assert_eq!(credentials::migrate(&s.store, opts).await.unwrap(), 1);
    assert_eq!(credentials::migrate(&s.store, opts).await.unwrap(), 0);
    credentials::check_rotatable(&s.store, opts).await.unwrap();
    assert_encrypted(&s, &id, "seed").await;
    s.stop().await;
}

/// `[credential] user_limit`: Keystone's 403 once a user owns that many.
async fn credential_user_limit(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start_with(dialect, |c| c.credential.user_limit = 1).await;
    let admin = s.system_admin_token().await;
    let cred = json!({"type": "cert", "user_id": s.admin_user_id, "blob": "one"});
    let (st, body) = create(&s, &admin, cred.clone()).await;
    ok(st, &body, 201);
    let (st, body) = create(&s, &admin, cred).await;
    assert_eq!(
        error(st, &body, 403),
        "Unable to create additional credentials, maximum of 1 already exceeded for user."
    );
    s.stop().await;
}

on_every_database!(
    credential_user_limit,
    credential_crud,
    ec2_credentials_and_tokens,
    credential_rotation
);

/// CVE-2026-43001: an unrestricted application credential of project A could create an EC2
/// credential for project B (where its user also holds a role) and exchange it at
/// `/v3/ec2tokens` for a token scoped to B. As in Keystone 30, a token from an application
/// credential (any delegated token) may not touch credentials at all, so neither route to B
/// exists.
#[tokio::test]
async fn cve_2026_43001_app_cred_cannot_mint_ec2_credentials_for_another_project() {
    let s = IdentityServer::start(baton_testkit::DbDialect::Sqlite).await;
    let p = Personas::build(&s).await;
    let me = p.project_member_id.clone();
    let other = s.create_project("project-b", &p.domain_id).await;
    s.grant_project(&me, &other, "member").await;
    let (st, body) = call(
        &s,
        Method::POST,
        &format!("users/{me}/application_credentials"),
        &p.project_member,
        Some(json!({"application_credential": {
            "name": "pivot", "secret": "pivot-secret", "unrestricted": true}})),
    )
    .await;
    ok(st, &body, 201);
    let login = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": body["application_credential"]["id"], "secret": "pivot-secret"}}}});
    let resp = reqwest::Client::new()
        .post(s.url("auth/tokens"))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let app_token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();

    let blob = json!({"access": "pivot-access", "secret": "pivot-ec2-secret"}).to_string();
    let (st, body) = create(
        &s,
        &app_token,
        json!({"type": "ec2", "user_id": me, "project_id": other, "blob": blob}),
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        "You are not authorized to perform the requested action: Delegated tokens cannot access credentials directly."
    );
    let (st, body) = call(
        &s,
        Method::POST,
        &format!("users/{me}/credentials/OS-EC2"),
        &app_token,
        Some(json!({"tenant_id": other})),
    )
    .await;
    error(st, &body, 403);
    // Nothing was stored for project B.
    assert!(s
        .store
        .list_credentials(&Default::default())
        .await
        .unwrap()
        .iter()
        .all(|c| c.project_id.as_deref() != Some(other.as_str())));
}
