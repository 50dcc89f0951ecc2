//! Regressions from the 2026-12 security review (`security-review-2026-12.md`), one test per
//! finding, against `baton authproxy` on loopback (and, for #6, the in-process layer too):
//!
//! * #2: a client's `Connection` header deleted the identity headers the proxy had just set;
//! * #5: slow clients (a request head or body trickled a byte at a time over a raw socket) were
//!   never cut off, and connections were not capped;
//! * #6: token headers the middleware had not validated (a second `X-Auth-Token`,
//!   `X_Auth_Token`, `X_Service_Token`, ...) reached the service.
//!
//! The upstream behind the proxy echoes the headers it received; a WSGI service would see every
//! spelling of a name (any case, `_` for `-`) under one environ key, so that is how they are
//! compared. Every wait is bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use baton_authtoken::{Authenticator, ProxyOptions};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use baton_testkit::slow_client::{answer_after_a_slot_frees, connect, trickle};

use super::{client, App, Identity};

/// The upstream: echoes the headers (as received, repeats kept) and counts requests. The body is
/// read, and a broken one tolerated.
async fn echo_headers(State(hits): State<Arc<AtomicUsize>>, req: Request) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let body_len = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map(|b| b.len())
        .ok();
    Json(json!({"headers": headers, "body_len": body_len})).into_response()
}

struct Proxy {
    /// `host:port`, for raw sockets.
    addr: String,
    base: String,
    hits: Arc<AtomicUsize>,
}

impl Proxy {
    /// The echo upstream and `baton authproxy` in front of it, with `extra` lines in
    /// `[authproxy]`.
    async fn start(id: &Identity, extra: &str) -> Proxy {
        let hits = Arc::new(AtomicUsize::new(0));
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream_addr = upstream.local_addr().expect("addr");
        let router = Router::new()
            .fallback(any(echo_headers))
            .with_state(hits.clone());
        tokio::spawn(async move {
            let _ = axum::serve(upstream, router).await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ini = baton_config::IniFile::parse(
            &format!(
                "[authproxy]\nlisten = {addr}\nupstream = http://{upstream_addr}\nupstream_timeout = 30\n{extra}"
            ),
            "proxy.ini",
        )
        .expect("ini");
        let opts = ProxyOptions::from_ini(&ini).expect("[authproxy]");
        let auth = Authenticator::new(id.config().build().expect("config")).expect("auth");
        // As `baton authproxy` runs it: a thread per worker (`workers`, default one per
        // core), each with its own runtime, all accepting from this socket.
        let listener = listener.into_std().expect("std listener");
        tokio::spawn(async move {
            let _ = baton_authtoken::proxy::serve_workers(listener, auth, opts).await;
        });
        Proxy {
            addr: addr.to_string(),
            base: format!("http://{addr}"),
            hits,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Every value the upstream received under any spelling of `name` (any case, `_` for `-`):
/// what a WSGI service finds under `HTTP_<NAME>`, joined or overwritten.
fn wsgi_values(echo: &Value, name: &str) -> Vec<String> {
    let norm = |n: &str| n.to_ascii_lowercase().replace('_', "-");
    let mut out = Vec::new();
    for (k, vs) in echo["headers"].as_object().expect("headers") {
        if norm(k) == norm(name) {
            out.extend(
                vs.as_array()
                    .expect("values")
                    .iter()
                    .map(|v| v.as_str().expect("string").to_string()),
            );
        }
    }
    out
}

/// The one value of `name` the upstream received (exactly that spelling), if any.
fn one(echo: &Value, name: &str) -> Option<String> {
    let v = wsgi_values(echo, name);
    assert!(
        v.len() <= 1,
        "{name} reached the upstream {} times",
        v.len()
    );
    v.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_2_connection_header_cannot_remove_identity_headers() {
    let id = Identity::start().await;
    let proxy = Proxy::start(&id, "").await;
    let c = client();
    let user = id.alice(3600);

    // The review's test and reproduction first, then every kind of protected header in odd
    // spellings. Each would have deleted headers the layer set (or the token) upstream.
    for connection in [
        "X-Identity-Status, X-Is-Admin-Project, X-User-Id",
        "keep-alive, X-User-Id, X-Is-Admin-Project",
        "x_user_id",
        "X-Roles",
        "x-service-identity-status",
        "X_Service_Roles",
        "OpenStack-System-Scope",
        "x-tenant-id",
        "X-Auth-Token",
        "x_storage_token",
        "X-SERVICE-TOKEN",
    ] {
        let resp = c
            .get(format!("{}/x", proxy.base))
            .header("x-auth-token", &user)
            .header("connection", connection)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 400, "Connection: {connection}");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["error"]["code"], 400, "{v}");
        assert_eq!(v["error"]["title"], "Bad Request", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    assert_eq!(proxy.hits(), 0, "a refused request reached the upstream");

    // Other Connection tokens still remove their headers, before the layer: the identity
    // headers arrive, the named ones do not, X-Forwarded-For is the proxy's alone.
    let resp = c
        .get(format!("{}/x", proxy.base))
        .header("x-auth-token", &user)
        .header("connection", "keep-alive, X-Hop, X-Forwarded-For")
        .header("x-hop", "1")
        .header("x-forwarded-for", "10.9.9.9")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(one(&v, "x-identity-status").as_deref(), Some("Confirmed"));
    assert_eq!(one(&v, "x-user-id").as_deref(), Some(id.ids.alice.as_str()));
    assert!(one(&v, "x-is-admin-project").is_some(), "{v}");
    assert_eq!(one(&v, "x-roles").as_deref(), Some("member,reader"));
    assert_eq!(one(&v, "x-auth-token").as_deref(), Some(user.as_str()));
    assert!(one(&v, "x-hop").is_none(), "{v}");
    assert!(one(&v, "connection").is_none(), "{v}");
    assert_eq!(one(&v, "x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(proxy.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_5_slow_clients_are_cut_off_and_connections_are_capped() {
    // The options, their defaults, and one-line errors for bad values.
    let parse = |extra: &str| {
        let ini = baton_config::IniFile::parse(
            &format!("[authproxy]\nlisten = 127.0.0.1:1\nupstream = http://127.0.0.1:2\n{extra}"),
            "proxy.ini",
        )
        .expect("ini");
        ProxyOptions::from_ini(&ini)
    };
    let o = parse("").expect("defaults");
    assert_eq!(o.header_timeout, Duration::from_secs(30));
    assert_eq!(o.body_timeout, Duration::from_secs(30));
    assert_eq!(o.max_connections, 256);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(o.workers, cores);
    let o = parse("header_timeout = 2.5\nbody_timeout = 7\nmax_connections = 9\nworkers = 3\n")
        .expect("set");
    assert_eq!(o.header_timeout, Duration::from_millis(2500));
    assert_eq!(o.body_timeout, Duration::from_secs(7));
    assert_eq!(o.max_connections, 9);
    assert_eq!(o.workers, 3);
    for (option, bad) in [
        ("header_timeout", "0"),
        ("header_timeout", "soon"),
        ("body_timeout", "-1"),
        ("max_connections", "0"),
        ("max_connections", "many"),
        ("workers", "0"),
        ("workers", "all"),
    ] {
        let e = parse(&format!("{option} = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("proxy.ini:4:") && e.contains(option) && !e.contains('\n'),
            "{e}"
        );
    }

    let id = Identity::start().await;
    let user = id.alice(3600);
    let proxy = Proxy::start(&id, "header_timeout = 1\nbody_timeout = 1\n").await;
    let every = Duration::from_millis(50);
    let cap = Duration::from_secs(15);

    // A request head trickled a byte at a time (the review's slow.py): closed after
    // header_timeout, never forwarded.
    let (closed, _) = trickle(
        &proxy.addr,
        b"GET /x HTTP/1.1\r\nHost: proxy\r\nX-Slow: ",
        every,
        cap,
    )
    .await;
    let closed = closed.expect("a head trickled for 15 s is still being read");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");

    // A connection that sends nothing at all is closed too.
    let mut idle = connect(&proxy.addr).await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(cap, idle.read(&mut buf))
        .await
        .expect("an idle connection is still open after 15 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));

    // A valid head, then a body trickled a byte at a time: 408 (if it arrives before the
    // close), and the connection closed after body_timeout.
    let head = format!(
        "POST /x HTTP/1.1\r\nHost: proxy\r\nX-Auth-Token: {user}\r\nContent-Length: 100000\r\n\r\n"
    );
    let (closed, got) = trickle(&proxy.addr, head.as_bytes(), every, cap).await;
    let closed = closed.expect("a body trickled for 15 s is still being read");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || (got.starts_with("HTTP/1.1 408") && got.contains("\"code\":408")),
        "{got}"
    );

    // The connection cap, one bound over every worker: two connections hold both slots
    // (half-sent heads, within the default 30 s header_timeout) whichever workers took them; a
    // third waits unserved until one of them leaves.
    let capped = Proxy::start(&id, "max_connections = 2\nworkers = 3\n").await;
    let answer = answer_after_a_slot_frees(
        &capped.addr,
        2,
        "GET /x HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
        cap,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_6_only_the_validated_tokens_are_forwarded() {
    let id = Identity::start().await;
    let proxy = Proxy::start(&id, "").await;
    let user = id.alice(3600);
    let nova = id.nova(3600);
    let send = |headers: Vec<(&'static str, String)>| {
        let url = format!("{}/x", proxy.base);
        async move {
            let mut rb = client().get(url);
            for (k, v) in headers {
                rb = rb.header(k, v);
            }
            let resp = rb.send().await.expect("request");
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.expect("json")
        }
    };

    // The review's reproduction, plus X-Storage-Token in both spellings.
    let v = send(vec![
        ("x-auth-token", user.clone()),
        ("x-auth-token", "attacker-chosen".into()),
        ("x_auth_token", "other".into()),
        ("x_service_token", "forged".into()),
        ("x-storage-token", "stored".into()),
        ("x_storage_token", "stored-too".into()),
    ])
    .await;
    assert_eq!(one(&v, "x-identity-status").as_deref(), Some("Confirmed"));
    assert_eq!(wsgi_values(&v, "x-auth-token"), [user.as_str()]);
    assert_eq!(wsgi_values(&v, "x-storage-token"), Vec::<String>::new());
    assert_eq!(wsgi_values(&v, "x-service-token"), Vec::<String>::new());
    assert!(one(&v, "x-service-identity-status").is_none());

    // A validated service token goes on alone; its forged companions do not.
    let v = send(vec![
        ("x-auth-token", user.clone()),
        ("x-service-token", nova.clone()),
        ("x-service-token", "forged".into()),
        ("x_service_token", "forged-too".into()),
    ])
    .await;
    assert_eq!(
        one(&v, "x-service-identity-status").as_deref(),
        Some("Confirmed")
    );
    assert_eq!(wsgi_values(&v, "x-service-token"), [nova.as_str()]);
    assert_eq!(wsgi_values(&v, "x-auth-token"), [user.as_str()]);

    // X-Storage-Token alone is the user token and keeps its name; its twin spelling goes.
    let v = send(vec![
        ("x-storage-token", user.clone()),
        ("x_storage_token", "other".into()),
    ])
    .await;
    assert_eq!(one(&v, "x-identity-status").as_deref(), Some("Confirmed"));
    assert_eq!(wsgi_values(&v, "x-storage-token"), [user.as_str()]);
    assert_eq!(wsgi_values(&v, "x-auth-token"), Vec::<String>::new());
    assert_eq!(proxy.hits(), 3);

    // The in-process layer hands its service the same.
    let app = App::start(id.config().build().expect("config")).await;
    let r = app
        .get(&[
            ("x-auth-token", &user),
            ("x-auth-token", "attacker-chosen"),
            ("x_auth_token", "other"),
            ("x-service-token", &nova),
            ("x_service_token", "forged"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(wsgi_values(&r.body, "x-auth-token"), [user.as_str()]);
    assert_eq!(wsgi_values(&r.body, "x-service-token"), [nova.as_str()]);
    assert_eq!(r.ctx()["is_service_request"], true);
}
