//! Regressions from the 2026-12 security review (`security-review-2026-12.md`), finding #5 on
//! the identity server: a request body trickled a byte at a time (the review's `slowbody.py`)
//! was read for ever, and connections were not capped. Raw sockets against `baton_server::serve`
//! with short `[baton] header_timeout` / `body_timeout` and a small `max_connections`. Every wait
//! is bounded.

use std::time::Duration;

use baton_testkit::slow_client::{answer_after_a_slot_frees, connect, trickle};
use baton_testkit::{DbDialect, IdentityServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for something that should happen after a one-second timeout.
const CAP: Duration = Duration::from_secs(15);

fn addr(s: &IdentityServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_5_server_cuts_off_slow_request_bodies_and_heads() {
    let s = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.baton.header_timeout = 1;
        c.baton.body_timeout = 1;
    })
    .await;
    let addr = addr(&s);
    let every = Duration::from_millis(50);

    // slowbody.py: a token request announcing 100 000 bytes, sent a byte at a time. 408 (when it
    // arrives before the close) and the connection closed after body_timeout.
    let head = format!(
        "POST /v3/auth/tokens HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    );
    let (closed, got) = trickle(&addr, head.as_bytes(), every, CAP).await;
    let closed = closed.expect("a body trickled for 15 s is still being read");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty()
            || (got.starts_with("HTTP/1.1 408")
                && got.contains(r#"{"error":{"code":408,"title":"Request Timeout","#)),
        "{got}"
    );

    // A head trickled a byte at a time: closed after header_timeout.
    let (closed, _) = trickle(
        &addr,
        b"GET /v3 HTTP/1.1\r\nHost: baton\r\nX-Slow: ",
        every,
        CAP,
    )
    .await;
    let closed = closed.expect("a head trickled for 15 s is still being read");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");

    // A connection that sends nothing at all, or the start of an HTTP/2 preface: closed too.
    for first in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut c = connect(&addr).await;
        c.write_all(first).await.expect("write");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(CAP, c.read_to_end(&mut got))
            .await
            .expect("a silent connection is still open after 15 s");
    }

    // A prompt client is unaffected.
    let resp = s
        .client
        .get(format!("{}/v3", s.base))
        .send()
        .await
        .expect("GET /v3");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_5_server_caps_connections() {
    let s = IdentityServer::start_with(DbDialect::Sqlite, |c| {
        c.baton.max_connections = 2;
    })
    .await;
    let addr = addr(&s);

    // Two connections hold both slots (half-sent heads, within the default 30 s
    // header_timeout); a third waits unserved until one of them leaves.
    let answer = answer_after_a_slot_frees(
        &addr,
        2,
        "GET /v3 HTTP/1.1\r\nHost: baton\r\nConnection: close\r\n\r\n",
        CAP,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
