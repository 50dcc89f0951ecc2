//! `GET /v3/baton/token_pairs[/validate]` (Baton's own) over HTTP: the offer, the pair's
//! answers (the service token strict, the user token allowed to have expired only with a
//! service role, within the `[token_pairs]` window of that sender and receiver), refusals.
//! The receiving side's use of it is `baton-authtoken`'s `decision_table` (the same 120
//! outcomes with one call as with two).

use baton_server::clock::Clock;
use baton_testkit::{error, project_scope, send, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Pa1r-Secret-h3Vn8";

async fn judge(
    s: &IdentityServer,
    caller: &str,
    user: Option<&str>,
    service: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = s
        .client
        .get(s.url("baton/token_pairs/validate?service_token_roles=service"))
        .header("x-auth-token", caller);
    if let Some(t) = user {
        req = req.header("x-subject-token", t);
    }
    if let Some(t) = service {
        req = req.header("x-service-token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The payload of the last `event_type` event logged (`driver = log`).
fn last_event(event_type: &str) -> Value {
    let log = baton_testkit::captured_text();
    let line = log
        .lines()
        .rfind(|l| l.contains(&format!("\"event_type\":\"{event_type}\"")))
        .unwrap_or_else(|| panic!("no {event_type} event"));
    let event: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    event["payload"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_pairs_are_judged_together() {
    let s = IdentityServer::start_with_clock(
        baton_testkit::DbDialect::Sqlite,
        Clock::manual(chrono::Utc::now()),
        |c| {
            c.token.expiration = 600;
            c.token.allow_expired_window = 100;
            c.token_pairs.expired_windows = vec![("nova".into(), "glance".into(), 0)];
            c.notifications.drivers = vec![baton_config::NotificationDriver::Log];
        },
    )
    .await;
    s.add_secrets(&[PW]);
    let dom = s.default_domain_id.clone();
    let work = s.create_project("work", &dom).await;
    let service = s.create_project("service", &dom).await;
    let alice = s.create_user("alice", PW, &dom).await;
    s.grant_project(&alice, &work, "member").await;
    for name in ["nova", "cinder", "glance", "plain"] {
        let id = s.create_user(name, PW, &dom).await;
        let role = if name == "plain" { "member" } else { "service" };
        s.grant_project(&id, &service, role).await;
    }
    let (st, offer) = send(&s, Method::GET, "baton/token_pairs", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(offer["token_pairs"]["rules"], json!(1));

    let user = s.token("alice", PW, project_scope(&work)).await;
    s.clock().advance(chrono::Duration::seconds(650));
    let token = |name: &'static str| s.token(name, PW, project_scope(&service));
    let (nova, cinder, glance, plain) = (
        token("nova").await,
        token("cinder").await,
        token("glance").await,
        token("plain").await,
    );
    // Expired 50 s ago: with nova's service token cinder accepts it (allow_expired_window).
    let (st, body) = judge(&s, &cinder, Some(&user), Some(&nova)).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let pair = &body["token_pair"];
    assert_eq!(pair["allow_expired"], json!(true));
    assert_eq!(pair["expired_window"], json!(100));
    assert_eq!(pair["user"]["token"]["user"]["id"], json!(alice), "{body}");
    assert_eq!(pair["user"]["accepted_expired"], json!(true));
    assert!(pair["service"]["token"]["roles"].is_array(), "{body}");
    // The audit event: alice's expired token accepted for cinder because of nova.
    let log = baton_testkit::captured_text();
    let line = log
        .lines()
        .find(|l| l.contains("identity.expired_token.accepted"))
        .expect("an identity.expired_token.accepted event");
    let event: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    let p = &event["payload"];
    assert_eq!(p["initiator"]["user_id"], json!(alice), "{p}");
    assert_eq!(p["actor"]["name"], "nova", "{p}");
    assert_eq!(p["target"]["name"], "cinder", "{p}");
    assert_eq!(p["target"]["typeURI"], "service", "{p}");
    assert_eq!(p["expired_window"], 100, "{p}");
    // glance's rule for nova is 0 s: refused, as expired.
    let (_, body) = judge(&s, &glance, Some(&user), Some(&nova)).await;
    assert_eq!(
        body["token_pair"]["user"],
        json!({"refused": "expired"}),
        "{body}"
    );
    assert_eq!(body["token_pair"]["expired_window"], json!(0));
    let refused = last_event("identity.expired_token.refused");
    assert_eq!(refused["outcome"], "failure", "{refused}");
    assert_eq!(refused["target"]["name"], "glance", "{refused}");
    assert_eq!(refused["actor"]["name"], "nova", "{refused}");
    assert!(
        refused["reason"]["reasonType"]
            .as_str()
            .unwrap()
            .contains("window of 0 s"),
        "{refused}"
    );
    // A service token without the role does not stretch anything; the user token alone is
    // refused as expired (it would validate with allow_expired), a garbage one as invalid.
    let (_, body) = judge(&s, &cinder, Some(&user), Some(&plain)).await;
    assert_eq!(body["token_pair"]["allow_expired"], json!(false));
    assert_eq!(
        body["token_pair"]["user"],
        json!({"refused": "expired"}),
        "{body}"
    );
    let (_, body) = judge(&s, &cinder, Some(&user), Some("gAAAAAgarbage")).await;
    assert_eq!(
        body["token_pair"]["service"],
        json!({"refused": "invalid"}),
        "{body}"
    );
    assert_eq!(
        body["token_pair"]["user"],
        json!({"refused": "expired"}),
        "{body}"
    );
    let refused = last_event("identity.expired_token.refused");
    assert_eq!(refused["actor"], Value::Null, "{refused}");
    assert!(
        refused["reason"]["reasonType"]
            .as_str()
            .unwrap()
            .contains("service token is invalid"),
        "{refused}"
    );
    let (_, body) = judge(&s, &cinder, None, Some(&nova)).await;
    assert_eq!(body["token_pair"]["user"], Value::Null, "{body}");

    // keystonemiddleware's two calls: cinder asks with allow_expired after nova's service
    // token passed. The server never saw that token: the event names no actor.
    let allow_expired = |caller: String| {
        let (s, user) = (&s, user.clone());
        async move {
            s.client
                .get(s.url("auth/tokens?allow_expired=1"))
                .header("x-auth-token", caller)
                .header("x-subject-token", user)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(allow_expired(cinder.clone()).await, StatusCode::OK);
    let accepted = last_event("identity.expired_token.accepted");
    assert_eq!(accepted["validated_by"], "allow_expired", "{accepted}");
    assert_eq!(accepted["actor"], Value::Null, "{accepted}");
    assert_eq!(accepted["target"]["name"], "cinder", "{accepted}");
    assert_eq!(accepted["initiator"]["user_id"], json!(alice), "{accepted}");
    // Baton's layer asking only to tell expired from invalid leaves no such event.
    let accepted_events = || {
        baton_testkit::captured_text()
            .matches("\"event_type\":\"identity.expired_token.accepted\"")
            .count()
    };
    let before = accepted_events();
    let st = s
        .client
        .get(s.url("auth/tokens?allow_expired=1"))
        .header("x-auth-token", &cinder)
        .header("x-subject-token", &user)
        .header("baton-validation-purpose", "diagnosis")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, StatusCode::OK);
    assert_eq!(accepted_events(), before);
    // Past the window: invalid.
    s.clock().advance(chrono::Duration::seconds(100));
    let nova = s.token("nova", PW, project_scope(&service)).await;
    let cinder = s.token("cinder", PW, project_scope(&service)).await;
    let (_, body) = judge(&s, &cinder, Some(&user), Some(&nova)).await;
    assert_eq!(
        body["token_pair"]["user"],
        json!({"refused": "invalid"}),
        "{body}"
    );
    assert_eq!(allow_expired(cinder.clone()).await, StatusCode::NOT_FOUND);
    let refused = last_event("identity.expired_token.refused");
    assert_eq!(refused["validated_by"], "allow_expired", "{refused}");
    assert!(
        refused["reason"]["reasonType"]
            .as_str()
            .unwrap()
            .contains("allow_expired_window (100 s)"),
        "{refused}"
    );

    // Neither token: 400; a caller the policy does not let validate others' tokens: 403.
    let (st, body) = judge(&s, &cinder, None, None).await;
    assert!(error(st, &body, 400).contains("X-Subject-Token"));
    let (st, body) = judge(&s, &plain, Some(&nova), None).await;
    error(st, &body, 403);
}
