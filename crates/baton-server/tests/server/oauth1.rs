//! OAuth1 consumers (`/v3/OS-OAUTH1/consumers`) over HTTP on every database: who may read and
//! write them, the older validator's 400s after policy, the secret shown once, extra
//! attributes kept, 404s, and the revocation event a deletion records for the consumer.
//! `tests/interop/test_oauth1_consumers.py` compares the same requests with Keystone 30.
//!
//! The delegation flow (request token, authorization, access token, the `oauth1` method):
//! signed as keystoneclient signs, refused when badly signed, tokens carrying the delegated
//! roles and dying with their access token or consumer.
//! `tests/interop/test_oauth1_delegation.py` compares it with Keystone 30.

use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::json;

const CONSUMERS: &str = "OS-OAUTH1/consumers";

async fn consumers(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();

    let (st, b) = call(
        &s,
        Method::POST,
        CONSUMERS,
        &p.system_reader,
        Some(json!({"consumer": {}})),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(
        &s,
        Method::POST,
        CONSUMERS,
        &admin,
        Some(json!({"consumer": {"description": 5}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field 'description': 5 is not of type 'string', 'null'"
    );
    let (st, b) = call(
        &s,
        Method::POST,
        CONSUMERS,
        &admin,
        Some(json!({"consumer": {"description": "x".repeat(65)}})),
    )
    .await;
    error(st, &b, 400);
    let (st, b) = call(
        &s,
        Method::POST,
        CONSUMERS,
        &admin,
        Some(json!({"consumer": {"description": "app", "a-b": 1, "secret": "mine"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    let c = b["consumer"].clone();
    let id = c["id"].as_str().unwrap().to_string();
    let secret = c["secret"].as_str().unwrap();
    assert!(secret != "mine" && secret.len() == 32, "{c}");
    assert_eq!(c["a_b"], json!(1));

    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{CONSUMERS}/{id}"),
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert!(b["consumer"].get("secret").is_none(), "{b}");
    assert_eq!(b["consumer"]["description"], json!("app"));
    let (st, b) = call(&s, Method::GET, CONSUMERS, &p.project_member, None).await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::GET, CONSUMERS, &admin, None).await;
    assert_eq!(b["consumers"].as_array().map(Vec::len), Some(1), "{st} {b}");
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{CONSUMERS}/nosuch"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Consumer not found");

    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{CONSUMERS}/{id}"),
        &admin,
        Some(json!({"consumer": {}})),
    )
    .await;
    error(st, &b, 400);
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{CONSUMERS}/{id}"),
        &admin,
        Some(json!({"consumer": {"id": "other"}})),
    )
    .await;
    assert_eq!(error(st, &b, 400), "Cannot change ID");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{CONSUMERS}/{id}"),
        &admin,
        Some(json!({"consumer": {"description": "new", "tier": "gold"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        (
            &b["consumer"]["description"],
            &b["consumer"]["tier"],
            &b["consumer"]["a_b"]
        ),
        (&json!("new"), &json!("gold"), &json!(1))
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{CONSUMERS}/nosuch"),
        &admin,
        Some(json!({"consumer": {"description": "x"}})),
    )
    .await;
    assert_eq!(error(st, &b, 404), "Consumer not found");

    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("{CONSUMERS}/{id}"),
        &p.system_member,
        None,
    )
    .await;
    error(st, &b, 403);
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{CONSUMERS}/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(
        &s,
        Method::DELETE,
        &format!("{CONSUMERS}/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Consumer not found");
    let events = s.store.list_revocation_events(0, &[]).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.consumer_id.as_deref() == Some(id.as_str())),
        "a revocation event for the consumer: {events:?}"
    );
}

on_every_database!(consumers);

/// One signed `POST` to `path` (under /v3).
async fn signed_post(
    s: &IdentityServer,
    path: &str,
    oauth: Vec<(&str, &str)>,
    secrets: (&str, Option<&str>),
    project: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let url = s.url(path);
    let now = chrono::Utc::now().timestamp();
    let auth = baton_server::oauth1_signature::sign(
        "POST",
        &url,
        oauth
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        now,
        secrets.0,
        secrets.1,
    );
    let mut req = s.client.post(&url).header("authorization", auth);
    if let Some(p) = project {
        req = req.header("requested-project-id", p);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

fn form(text: &str) -> std::collections::HashMap<String, String> {
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn delegation(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let (_, b) = call(
        &s,
        Method::POST,
        CONSUMERS,
        &p.system_admin,
        Some(json!({"consumer": {}})),
    )
    .await;
    let (key, secret) = (
        b["consumer"]["id"].as_str().unwrap().to_string(),
        b["consumer"]["secret"].as_str().unwrap().to_string(),
    );
    let request_oauth = vec![
        ("oauth_consumer_key", key.as_str()),
        ("oauth_callback", "oob"),
    ];
    let bad = signed_post(
        &s,
        "OS-OAUTH1/request_token",
        request_oauth.clone(),
        ("wrong", None),
        Some(&p.project_id),
        None,
    )
    .await;
    assert_eq!(bad.status().as_u16(), 401);
    let r = signed_post(
        &s,
        "OS-OAUTH1/request_token",
        request_oauth,
        (&secret, None),
        Some(&p.project_id),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        r.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let req = form(&r.text().await.unwrap());
    assert!(req.contains_key("oauth_expires_at"), "{req:?}");

    // Only roles the authorizing user holds on the project; a member may not authorize.
    let authorize = format!("OS-OAUTH1/authorize/{}", req["oauth_token"]);
    let (st, b) = call(
        &s,
        Method::PUT,
        &authorize,
        &p.project_member,
        Some(json!({"roles": [{"name": "member"}]})),
    )
    .await;
    error(st, &b, 403);
    let unheld = s.create_role("unheld-oauth").await;
    let (st, b) = call(
        &s,
        Method::PUT,
        &authorize,
        &p.project_admin,
        Some(json!({"roles": [{"id": unheld}]})),
    )
    .await;
    error(st, &b, 401);
    let (st, b) = call(
        &s,
        Method::PUT,
        &authorize,
        &p.project_admin,
        Some(json!({"roles": [{"name": "member"}]})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let verifier = b["token"]["oauth_verifier"].as_str().unwrap().to_string();

    let oauth = vec![
        ("oauth_consumer_key", key.as_str()),
        ("oauth_token", req["oauth_token"].as_str()),
        ("oauth_verifier", verifier.as_str()),
    ];
    let wrong = vec![
        ("oauth_consumer_key", key.as_str()),
        ("oauth_token", req["oauth_token"].as_str()),
        ("oauth_verifier", "abcdefgh"),
    ];
    let r = signed_post(
        &s,
        "OS-OAUTH1/access_token",
        wrong,
        (&secret, Some(&req["oauth_token_secret"])),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 401);
    let r = signed_post(
        &s,
        "OS-OAUTH1/access_token",
        oauth.clone(),
        (&secret, Some(&req["oauth_token_secret"])),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let acc = form(&r.text().await.unwrap());
    // A request token is exchanged once.
    let r = signed_post(
        &s,
        "OS-OAUTH1/access_token",
        oauth,
        (&secret, Some(&req["oauth_token_secret"])),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);

    let login = vec![
        ("oauth_consumer_key", key.as_str()),
        ("oauth_token", acc["oauth_token"].as_str()),
    ];
    let body = json!({"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}});
    let r = signed_post(
        &s,
        "auth/tokens",
        login.clone(),
        (&secret, Some("wrong")),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status().as_u16(), 401);
    let r = signed_post(
        &s,
        "auth/tokens",
        login.clone(),
        (&secret, Some(&acc["oauth_token_secret"])),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["token"]["methods"], json!(["oauth1"]));
    assert_eq!(
        t["token"]["OS-OAUTH1"],
        json!({"access_token_id": acc["oauth_token"], "consumer_id": key})
    );
    assert_eq!(
        baton_testkit::sorted_names(&t["token"]["roles"]),
        ["member", "reader"]
    );
    assert_eq!(t["token"]["project"]["id"], json!(p.project_id));

    // An OAuth1 token neither rescopes nor manages delegations.
    let (st, b) = call(
        &s,
        Method::POST,
        "auth/tokens",
        &token,
        Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}})),
    )
    .await;
    error(st, &b, 403);
    let user = t["token"]["user"]["id"].as_str().unwrap();
    let tokens = format!("users/{user}/OS-OAUTH1/access_tokens");
    let (st, b) = call(&s, Method::GET, &tokens, &token, None).await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::GET, &tokens, &p.project_admin, None).await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b["access_tokens"][0]["id"], json!(acc["oauth_token"]));
    assert!(b["access_tokens"][0].get("access_secret").is_none());
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{tokens}/{}/roles", acc["oauth_token"]),
        &p.project_admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(baton_testkit::sorted_names(&b["roles"]), ["member"]);

    // Deleting the access token ends its tokens.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{tokens}/{}", acc["oauth_token"]),
        &p.project_admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    assert_eq!(s.validation(&token).await.0, 404);
    let r = signed_post(
        &s,
        "auth/tokens",
        login,
        (&secret, Some(&acc["oauth_token_secret"])),
        None,
        Some(body),
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
}

on_every_database!(delegation);
