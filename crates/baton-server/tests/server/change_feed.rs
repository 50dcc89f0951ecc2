//! Several nodes on one database: a write on one node stops affecting validations on the
//! others through the change feed, long before the validation cache's time to live; and
//! `/healthcheck` as load balancers read it, and the fast 503 while the database is away. The propagation figures (p50/p99) are measured by
//! `scripts/bench-fleet.sh`; these tests only prove that the feed, not the cache's time to
//! live, ends the stale answer.

use super::*;
use baton_testkit::{call, on_every_database, project_scope};

/// Revokes `subject` on `base` (`DELETE /v3/auth/tokens`) as `checker`; the status.
async fn revoke_on(a: &IdentityServer, base: &str, checker: &str, subject: &str) -> StatusCode {
    a.client
        .delete(format!("{base}/v3/auth/tokens"))
        .header("x-auth-token", checker)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("revoke")
        .status()
}

/// Longer than any test here: a stale answer that ends must have been ended by the feed.
const CACHE_TTL: u32 = 3600;
/// Generous for loaded CI machines; the feed polls every 200 ms.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(5);

/// Validates `subject` on `base` (any node) as `checker`; the status and the JSON body (null
/// when there is none).
pub(crate) async fn validate_body_on(
    a: &IdentityServer,
    base: &str,
    checker: &str,
    subject: &str,
) -> (StatusCode, Value) {
    let resp = a
        .client
        .get(format!("{base}/v3/auth/tokens"))
        .header("x-auth-token", checker)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("validate");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Validates `subject` on `base` as `checker`; the status.
pub(crate) async fn validate_on(
    a: &IdentityServer,
    base: &str,
    checker: &str,
    subject: &str,
) -> StatusCode {
    validate_body_on(a, base, checker, subject).await.0
}

/// How long node `base` keeps accepting `subject` after a write made elsewhere.
async fn refused_within(
    a: &IdentityServer,
    base: &str,
    checker: &str,
    subject: &str,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < PROPAGATION_LIMIT {
        if validate_on(a, base, checker, subject).await == StatusCode::NOT_FOUND {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Each kind of write made on node A ends a token that node B has cached: role assignment
/// removed, user disabled, token revoked, project disabled.
async fn writes_reach_other_nodes(dialect: DbDialect) {
    let a = IdentityServer::start_with(dialect, |c| c.baton.validation_cache_ttl = CACHE_TTL).await;
    let b = a.second_node().await;
    let admin = a.admin_token().await;
    let checker = a.system_admin_token().await;
    let project = a.create_project("fleet-p", "default").await;
    let member = a.role_id("member").await;
    let mut results = Vec::new();
    for kind in [
        "role removed",
        "user disabled",
        "token revoked",
        "project disabled",
    ] {
        let name = format!("fleet-{}", kind.replace(' ', "-"));
        let user = a.create_user(&name, USER_PW, "default").await;
        a.grant_project(&user, &project, "member").await;
        let scope = project_scope(&project);
        let scope = if kind == "project disabled" {
            let p = a.create_project(&format!("{name}-p"), "default").await;
            a.grant_project(&user, &p, "member").await;
            project_scope(&p)
        } else {
            scope
        };
        let subject = a.token(&name, USER_PW, scope.clone()).await;
        // Node B caches the answer.
        for _ in 0..2 {
            assert_eq!(
                validate_on(&a, &b.base, &checker, &subject).await,
                StatusCode::OK
            );
        }
        let (status, _) = match kind {
            "role removed" => {
                call(
                    &a,
                    Method::DELETE,
                    &format!("projects/{project}/users/{user}/roles/{member}"),
                    &admin,
                    None,
                )
                .await
            }
            "user disabled" => {
                call(
                    &a,
                    Method::PATCH,
                    &format!("users/{user}"),
                    &admin,
                    Some(json!({"user": {"enabled": false}})),
                )
                .await
            }
            "token revoked" => (revoke_on(&a, &a.base, &admin, &subject).await, Value::Null),
            _ => {
                let p = scope["project"]["id"]
                    .as_str()
                    .expect("project id")
                    .to_string();
                call(
                    &a,
                    Method::PATCH,
                    &format!("projects/{p}"),
                    &admin,
                    Some(json!({"project": {"enabled": false}})),
                )
                .await
            }
        };
        assert!(status.is_success(), "{kind}: {status}");
        let took = refused_within(&a, &b.base, &checker, &subject).await;
        assert!(
            took.is_some(),
            "{kind}: node B still accepts the token after {PROPAGATION_LIMIT:?}"
        );
        results.push(format!("{kind}: {:?}", took.unwrap_or_default()));
    }
    eprintln!("{dialect:?} propagation to node B: {}", results.join(", "));
    drop(b);
    a.stop().await;
}

on_every_database!(writes_reach_other_nodes);

/// Issue 18: a node prunes revocation events by time, those another node wrote included, at
/// its recheck (never by reading the whole table again), and the rows go from the database.
async fn revocations_are_pruned_on_a_node_that_did_not_write_them(dialect: DbDialect) {
    let a = IdentityServer::start_manual_clock(dialect).await;
    let b = a.second_node().await;
    let admin = a.admin_token().await;
    let subject = a.admin_token().await;
    assert_eq!(
        revoke_on(&a, &a.base, &admin, &subject).await,
        StatusCode::NO_CONTENT
    );
    b.state.tokens.refresh_revocations().await.expect("poll B");
    let held = b.state.tokens.revocation_entries();
    assert!(held >= 1, "node B holds A's events");
    assert_eq!(
        validate_on(&a, &b.base, &admin, &subject).await,
        StatusCode::NOT_FOUND
    );

    let t = &a.config.token;
    let retention = chrono::Duration::seconds(
        i64::from(t.expiration)
            + i64::from(t.allow_expired_window)
            + i64::from(a.config.revoke.expiration_buffer),
    );
    // Within the retention a recheck keeps them: an expired token may still be presented
    // with allow_expired.
    a.clock().advance(retention - chrono::Duration::seconds(10));
    b.state
        .tokens
        .recheck_revocations()
        .await
        .expect("recheck B");
    assert_eq!(b.state.tokens.revocation_entries(), held);
    a.clock().advance(chrono::Duration::seconds(11));
    b.state
        .tokens
        .recheck_revocations()
        .await
        .expect("recheck B");
    assert_eq!(b.state.tokens.revocation_entries(), 0, "pruned on node B");
    assert_eq!(a.store.revocation_event_count().await.expect("count"), 0);
    drop(b);
    a.stop().await;
}

on_every_database!(revocations_are_pruned_on_a_node_that_did_not_write_them);

/// `/healthcheck` in oslo.middleware's shape: any method, text by default, JSON and HTML by
/// `Accept`, 204 for HEAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_answers_as_oslo_middleware() {
    let a = IdentityServer::start(DbDialect::Sqlite).await;
    let url = format!("{}/healthcheck", a.base);
    let r = a.client.get(&url).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(r.text().await.expect("body"), "OK");
    let r = a
        .client
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("get json");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.text().await.expect("body"),
        "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}"
    );
    let r = a
        .client
        .get(&url)
        .header("accept", "text/html;q=0.5, application/json")
        .send()
        .await
        .expect("get by quality");
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = a
        .client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("get html");
    assert_eq!(r.headers()["content-type"], "text/html; charset=UTF-8");
    assert!(r.text().await.expect("body").contains("<TD>OK</TD>"));
    let r = a.client.head(&url).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = a.client.post(&url).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    a.stop().await;
}

/// With its database unreachable a node says 503 with the reason at once (load balancers take
/// it out), cached validations keep working, and it recovers alone when the database returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_follows_a_database_outage_postgres() {
    let a = IdentityServer::start(DbDialect::Postgres).await;
    let checker = a.system_admin_token().await;
    let subject = a.admin_token().await;
    assert_eq!(
        validate_on(&a, &a.base, &checker, &subject).await,
        StatusCode::OK
    );
    let url = format!("{}/healthcheck", a.base);

    a.set_database_reachable(false).await;
    let start = Instant::now();
    let r = a.client.get(&url).send().await.expect("get");
    let took = start.elapsed();
    let health_took = took;
    let mut slowest = Duration::ZERO;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.text().await.expect("body"), "DATABASE UNREACHABLE");
    assert!(took < Duration::from_secs(3), "healthcheck took {took:?}");
    // The cached validation needs no database.
    assert_eq!(
        validate_on(&a, &a.base, &checker, &subject).await,
        StatusCode::OK
    );
    // What needs the database fails fast with Keystone's error body and Retry-After.
    for (method, path, body) in [
        (Method::GET, "users", None),
        (
            Method::POST,
            "auth/tokens",
            Some(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PW}}}}}),
            ),
        ),
    ] {
        let start = Instant::now();
        let mut req = a
            .client
            .request(method.clone(), a.url(path))
            .header("x-auth-token", &subject);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let took = start.elapsed();
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.expect("error JSON");
        assert_eq!(body["error"]["code"], 503, "{body}");
        assert!(
            took < Duration::from_secs(2),
            "{method} {path} took {took:?}"
        );
        slowest = slowest.max(took);
    }

    a.set_database_reachable(true).await;
    let back = Instant::now();
    let got = eventually(Duration::from_secs(10), StatusCode::OK, || async {
        a.client.get(&url).send().await.expect("get").status()
    })
    .await;
    assert_eq!(got, StatusCode::OK, "the node did not recover by itself");
    println!(
        "FIGURE test=postgres_outage slowest_503_ms={} healthcheck_503_ms={} healthy_after_db_back_ms={}",
        slowest.as_millis(),
        health_took.as_millis(),
        back.elapsed().as_millis()
    );
    let (status, _) = call(&a, Method::GET, "users", &subject, None).await;
    assert_eq!(status, StatusCode::OK);
    a.stop().await;
}
