//! OAuth1 consumers (`/v3/OS-OAUTH1/consumers`) over HTTP on every database: who may read and
//! write them, the older validator's 400s after policy, the secret shown once, extra
//! attributes kept, 404s, and the revocation event a deletion records for the consumer.
//! `tests/interop/test_oauth1_consumers.py` compares the same requests with Keystone 30.

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
