//! Federation service providers (`/v3/OS-FEDERATION/service_providers`) over HTTP on every
//! database: the newer validator's 400s before policy, who may read and write them, the 404 and
//! 409, and the enabled ones listed in every token (at once on this node, for a token
//! validated before the change too). `tests/interop/test_federation.py` compares the same
//! requests with Keystone 30.

use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::json;

const SPS: &str = "OS-FEDERATION/service_providers";

async fn service_providers(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let good = json!({"service_provider": {"auth_url": "https://sp.test/v3/auth", "sp_url": "https://sp.test/ecp"}});

    // The schema first (a member's bad body is a 400), then policy.
    for (bad, want) in [
        (json!({}), "'service_provider' is a required property".to_string()),
        (
            json!({"service_provider": {"sp_url": "https://x"}}),
            "Invalid input for field/attribute service_provider. Value: {'sp_url': 'https://x'}. 'auth_url' is a required property".to_string(),
        ),
        (
            json!({"service_provider": {"auth_url": "nourl", "sp_url": "https://x"}}),
            "Invalid input for field/attribute auth_url. Value: nourl. 'nourl' does not match '^[a-zA-Z0-9+.-]+:.+'".to_string(),
        ),
        (
            json!({"service_provider": {"auth_url": "https://x", "sp_url": "https://x", "other": 1}}),
            "Invalid input for field/attribute service_provider. Value: {'auth_url': 'https://x', 'other': 1, 'sp_url': 'https://x'}. Additional properties are not allowed ('other' was unexpected)".to_string(),
        ),
    ] {
        let (st, b) = call(&s, Method::PUT, &format!("{SPS}/sp1"), &p.project_member, Some(bad)).await;
        assert_eq!(error(st, &b, 400), want);
    }
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &p.system_reader,
        Some(good.clone()),
    )
    .await;
    error(st, &b, 403);

    // A token before any service provider lists none.
    let before = p.project_member.clone();
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());

    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    assert_eq!(
        b["service_provider"],
        json!({"id": "sp1", "enabled": false, "description": null, "auth_url": "https://sp.test/v3/auth",
               "sp_url": "https://sp.test/ecp", "relay_state_prefix": "ss:mem:",
               "links": {"self": b["service_provider"]["links"]["self"]}})
    );
    assert!(b["service_provider"]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/service_providers/sp1"));
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("{SPS}/sp1"),
        &admin,
        Some(good.clone()),
    )
    .await;
    assert_eq!(error(st, &b, 409), "Conflict occurred attempting to store service_provider - Duplicate entry found with ID sp1.");
    // Disabled: not in tokens.
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());

    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/sp1"),
        &admin,
        Some(json!({"service_provider": {"enabled": true, "description": "remote"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(
        (
            b["service_provider"]["enabled"].clone(),
            b["service_provider"]["description"].clone()
        ),
        (json!(true), json!("remote"))
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/sp1"),
        &admin,
        Some(json!({"service_provider": {}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 400),
        "Invalid input for field/attribute service_provider. Value: {}. {} should be non-empty"
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{SPS}/nosuch"),
        &admin,
        Some(json!({"service_provider": {"enabled": true}})),
    )
    .await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Service Provider: nosuch."
    );

    // Enabled: in every token, a token validated before included.
    let want = json!([{"auth_url": "https://sp.test/v3/auth", "id": "sp1", "sp_url": "https://sp.test/ecp"}]);
    assert_eq!(
        s.validation(&before).await.1["token"]["service_providers"],
        want
    );
    let fresh = s.admin_token().await;
    assert_eq!(
        s.validation(&fresh).await.1["token"]["service_providers"],
        want
    );

    // Reading: admins and system readers.
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{SPS}?enabled=true"),
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b["service_providers"].as_array().unwrap().len(), 1);
    assert!(b["service_providers"][0]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/service_providers/sp1"));
    let (_, b) = call(
        &s,
        Method::GET,
        &format!("{SPS}?enabled=false"),
        &admin,
        None,
    )
    .await;
    assert_eq!(b["service_providers"], json!([]));
    let (st, b) = call(&s, Method::GET, SPS, &p.project_member, None).await;
    error(st, &b, 403);
    let (st, b) = call(&s, Method::GET, &format!("{SPS}/nosuch"), &admin, None).await;
    assert_eq!(
        error(st, &b, 404),
        "Could not find Service Provider: nosuch."
    );

    let (st, _) = call(&s, Method::DELETE, &format!("{SPS}/sp1"), &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, b) = call(&s, Method::DELETE, &format!("{SPS}/sp1"), &admin, None).await;
    error(st, &b, 404);
    assert!(s.validation(&before).await.1["token"]
        .get("service_providers")
        .is_none());
}

on_every_database!(service_providers);
