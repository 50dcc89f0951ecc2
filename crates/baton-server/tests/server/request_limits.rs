//! Request limits against a real server, each compared with Keystone 30 by
//! tests/interop/test_request_limits.py: body size (`[oslo_middleware] max_request_body_size`,
//! 413), header fields (431, the limit of Keystone's WSGI servers), JSON nesting, name and id
//! lengths (Keystone's column sizes), list sizes (project tags) and NUL and control characters
//! (other control characters accepted as Keystone accepts them; NUL refused on every database).

use baton_store::Dialect;
use baton_testkit::{call, error, on_every_database, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A raw body to `path` with the admin token: status and JSON body.
async fn post_raw(
    s: &IdentityServer,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = s
        .client
        .post(s.url(path))
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn nested(depth: usize) -> String {
    format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_and_json_depth() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let admin = s.admin_token().await;
    // 114688 bytes by default, as oslo.middleware's sizelimit: 413 past it.
    let big = json!({"user": {"name": "big", "description": "d".repeat(120_000)}});
    let (st, body) = post_raw(&s, "users", &admin, big.to_string().into_bytes()).await;
    assert_eq!(error(st, &body, 413), "Request is too large.");
    let fits = json!({"user": {"name": "fits", "description": "d".repeat(100_000)}});
    let (st, body) = post_raw(&s, "users", &admin, fits.to_string().into_bytes()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    // Stricter than Keystone on purpose: serde_json stops at 128 levels (400), where Keystone
    // takes ~1000 levels into `extra` and answers 500 beyond (Python's recursion limit).
    let shallow = format!(
        r#"{{"project": {{"name": "shallow", "x": {}}}}}"#,
        nested(100)
    );
    let (st, body) = post_raw(&s, "projects", &admin, shallow.into_bytes()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    for depth in [200, 5000] {
        let deep = format!(
            r#"{{"project": {{"name": "deep", "x": {}}}}}"#,
            nested(depth)
        );
        let (st, body) = post_raw(&s, "projects", &admin, deep.into_bytes()).await;
        assert!(error(st, &body, 400).starts_with("Malformed request body"));
        let auth = format!(r#"{{"auth": {}}}"#, nested(depth));
        let (st, body) = post_raw(&s, "auth/tokens", &admin, auth.into_bytes()).await;
        error(st, &body, 400);
    }
    // Not JSON at all: a raw NUL or invalid UTF-8 in a string, as Keystone: 400.
    for raw in [
        &b"{\"user\": {\"name\": \"a\x00b\"}}"[..],
        b"{\"user\": {\"name\": \"\xff\xfe\"}}",
    ] {
        let (st, body) = post_raw(&s, "users", &admin, raw.to_vec()).await;
        error(st, &body, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_fields() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let admin = s.admin_token().await;
    let get = |extra: Vec<(String, String)>| {
        let mut req = s
            .client
            .get(s.url("auth/tokens"))
            .header("x-auth-token", &admin)
            .header("x-subject-token", &admin);
        for (k, v) in extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let resp = get(vec![("x-big".into(), "a".repeat(8000))]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // gunicorn's and Apache's 8190 bytes per field; gunicorn's status, Keystone's error shape.
    let resp = get(vec![("x-big".into(), "a".repeat(9000))]).await.unwrap();
    let st = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(error(st, &body, 431).contains("larger than 8190 bytes"));
    let resp = get(vec![("x-subject-token".into(), "a".repeat(20_000))])
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 431);
    // More than 100 fields: hyper's limit, gunicorn's and Apache's too.
    let many = (0..120)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    let resp = get(many).await.unwrap();
    assert_eq!(resp.status().as_u16(), 431);
}

/// Keystone's lengths: names of users and roles 255, of projects, domains and groups 64, ids 64;
/// project tags at most 80 of at most 255 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_and_list_lengths() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let admin = s.admin_token().await;
    let cases: [(&str, &str, usize); 5] = [
        ("users", "user", 255),
        ("roles", "role", 255),
        ("projects", "project", 64),
        ("domains", "domain", 64),
        ("groups", "group", 64),
    ];
    for (path, member, max) in cases {
        let (st, body) = call(
            &s,
            Method::POST,
            path,
            &admin,
            Some(json!({member: {"name": "n".repeat(max)}})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{path}: {body}");
        let (st, body) = call(
            &s,
            Method::POST,
            path,
            &admin,
            Some(json!({member: {"name": "n".repeat(max + 1)}})),
        )
        .await;
        assert!(
            error(st, &body, 400).contains("is too long"),
            "{path}: {body}"
        );
    }
    let user = json!({"user": {"name": "u", "domain_id": "d".repeat(65)}});
    let (st, body) = call(&s, Method::POST, "users", &admin, Some(user)).await;
    error(st, &body, 400);

    let tags =
        |n: usize, len: usize| -> Vec<String> { (0..n).map(|i| format!("{i:0>len$}")).collect() };
    let project =
        |name: &str, tags: Vec<String>| Some(json!({"project": {"name": name, "tags": tags}}));
    // Keystone's project schema: at most 80 tags, each at most 255 characters.
    for (name, count, len, created) in [
        ("tags80", 80, 3, true),
        ("tags81", 81, 3, false),
        ("tag255", 1, 255, true),
        ("tag256", 1, 256, false),
    ] {
        let (st, body) = call(
            &s,
            Method::POST,
            "projects",
            &admin,
            project(name, tags(count, len)),
        )
        .await;
        if created {
            assert_eq!(st, StatusCode::CREATED, "{name}: {body}");
        } else {
            error(st, &body, 400);
        }
    }
}

/// Control characters inside JSON strings are data to Keystone (its schemas only ask names for a
/// non-blank character): stored and shown back, on every database. A NUL is refused with 400 on
/// every database (stricter than Keystone on purpose: PostgreSQL cannot store it, and Keystone
/// answers 500 there, 201 on SQLite and MariaDB); in a path it names nothing (404).
async fn control_characters(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    for name in ["a\u{1}b\u{1f}c", "line\nbreak"] {
        let user = json!({"user": {"name": name, "description": name}});
        let (st, body) = call(&s, Method::POST, "users", &admin, Some(user)).await;
        assert_eq!(st, StatusCode::CREATED, "{name:?}: {body}");
        assert_eq!(body["user"]["name"], json!(name));
        let id = body["user"]["id"].as_str().unwrap().to_string();
        let (st, body) = call(&s, Method::GET, &format!("users/{id}"), &admin, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(body["user"]["name"], json!(name));
    }
    let nul_bodies = [
        ("users", json!({"user": {"name": "nul\u{0}inside"}})),
        (
            "users",
            json!({"user": {"name": "n", "description": "x\u{0}"}}),
        ),
        (
            "projects",
            json!({"project": {"name": "p", "tags": ["a\u{0}b"]}}),
        ),
        ("roles", json!({"role": {"name": "r", "x\u{0}": 1}})),
        (
            "credentials",
            json!({"credential": {"blob": "\u{0}", "type": "cert", "user_id": "u"}}),
        ),
    ];
    for (path, body) in nul_bodies {
        let (st, resp) = call(&s, Method::POST, path, &admin, Some(body)).await;
        assert!(error(st, &resp, 400).contains("NUL"), "{path}: {resp}");
    }
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ad\u{0}min", "domain": {"id": "default"}, "password": "p"}}}}});
    let (st, resp) = call(&s, Method::POST, "auth/tokens", &admin, Some(auth)).await;
    error(st, &resp, 400);
    let (st, body) = call(&s, Method::GET, "users/%00", &admin, None).await;
    assert_eq!(error(st, &body, 404), "Could not find user: \u{0}.");
    let (st, body) = call(&s, Method::GET, "projects/abc%00def", &admin, None).await;
    error(st, &body, 404);
    // In a list filter: never a 500. Keystone answers 200 (an empty list) on SQLite and 500 on
    // PostgreSQL; Baton matches nothing where the database can compare it and answers 400 where
    // it cannot (PostgreSQL).
    for path in [
        "users?name=a%00b",
        "projects?name=%00",
        "roles?name=x%00",
        "groups?name=%00",
    ] {
        let (st, body) = call(&s, Method::GET, path, &admin, None).await;
        match st {
            StatusCode::OK => {
                let list = body
                    .as_object()
                    .and_then(|o| o.values().find_map(Value::as_array));
                assert_eq!(list.map(Vec::len), Some(0), "{path}: {body}");
            }
            _ => assert!(error(st, &body, 400).contains("NUL"), "{path}: {body}"),
        }
    }
}

on_every_database!(control_characters);
