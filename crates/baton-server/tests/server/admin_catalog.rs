//! `/v3/services`, `/v3/endpoints` and `/v3/regions` over HTTP against a real server: the
//! lifecycle on every database (with the catalog of new and existing tokens following each
//! write), Keystone's schema errors, and Keystone 30's default policy for each persona.

use baton_store::Dialect;
use baton_testkit::{call, error, on_every_database, project_scope, IdentityServer, Personas};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn get(s: &IdentityServer, path: &str, token: &str) -> (StatusCode, Value) {
    call(s, Method::GET, path, token, None).await
}

fn ok(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "body {body}");
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

/// The catalog service of `service_type` in a token body or `/v3/auth/catalog` answer.
fn catalog_entry<'a>(catalog: &'a Value, service_type: &str) -> Option<&'a Value> {
    catalog
        .as_array()
        .expect("catalog array")
        .iter()
        .find(|s| s["type"] == service_type)
}

/// A new project-scoped admin token's catalog, as issued.
async fn issued_catalog(s: &IdentityServer) -> Value {
    let resp = s
        .client
        .post(s.url("auth/tokens"))
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": s.default_domain_id},
                "password": baton_testkit::ADMIN_PASSWORD}}},
            "scope": project_scope(&s.admin_project_id)}}))
        .send()
        .await
        .expect("issue");
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.expect("token body");
    body["token"]["catalog"].clone()
}

/// The catalog of an existing token as `GET /v3/auth/tokens` renders it now.
async fn validated_catalog(s: &IdentityServer, admin: &str, subject: &str) -> Value {
    let resp = s
        .client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", admin)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("validate");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("token body");
    body["token"]["catalog"].clone()
}

async fn catalog_lifecycle(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let sys = s.system_admin_token().await;
    let base = s.base.clone();

    // ----- regions
    let (st, body) = call(
        &s,
        Method::POST,
        "regions",
        &sys,
        Some(
            json!({"region": {"id": "RegionTwo", "description": "second",
            "parent_region_id": "RegionOne", "rack": "r1"}}),
        ),
    )
    .await;
    ok(st, &body, 201);
    let r = &body["region"];
    assert_eq!(r["id"], "RegionTwo");
    assert_eq!(r["description"], "second");
    assert_eq!(r["parent_region_id"], "RegionOne");
    assert_eq!(r["rack"], "r1", "extra attributes are kept");
    assert_eq!(
        r["links"]["self"],
        json!(format!("{base}/v3/regions/RegionTwo"))
    );

    // PUT chooses the id; a null description is stored as "".
    let (st, body) = call(
        &s,
        Method::PUT,
        "regions/RegionTwoChild",
        &admin,
        Some(json!({"region": {"description": null, "parent_region_id": "RegionTwo"}})),
    )
    .await;
    ok(st, &body, 201);
    assert_eq!(body["region"]["id"], "RegionTwoChild");
    assert_eq!(body["region"]["description"], "");

    // POST without an id gets a new one.
    let (st, body) = call(
        &s,
        Method::POST,
        "regions",
        &sys,
        Some(json!({"region": {}})),
    )
    .await;
    ok(st, &body, 201);
    let generated = body["region"]["id"].as_str().unwrap().to_string();
    assert_eq!(generated.len(), 32);
    assert_eq!(body["region"]["parent_region_id"], Value::Null);

    // The same id again: 409, by PUT or POST.
    let (st, body) = call(
        &s,
        Method::PUT,
        "regions/RegionTwo",
        &sys,
        Some(json!({"region": {}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store region - Duplicate ID, RegionTwo..",
        "Keystone's message, doubled full stop included"
    );
    let (st, body) = call(
        &s,
        Method::POST,
        "regions",
        &sys,
        Some(json!({"region": {"id": "RegionOne"}})),
    )
    .await;
    error(st, &body, 409);

    // An unknown parent: 404 naming it.
    let (st, body) = call(
        &s,
        Method::POST,
        "regions",
        &sys,
        Some(json!({"region": {"id": "Orphan", "parent_region_id": "Nowhere"}})),
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find region: Nowhere.");
    let (st, body) = get(&s, "regions/Orphan", &sys).await;
    assert_eq!(error(st, &body, 404), "Could not find region: Orphan.");

    let (st, body) = get(&s, "regions/RegionTwo", &admin).await;
    ok(st, &body, 200);
    assert_eq!(body["region"]["rack"], "r1");
    let (st, body) = get(&s, "regions", &admin).await;
    ok(st, &body, 200);
    let mut want = vec![
        "RegionOne".to_string(),
        "RegionTwo".into(),
        "RegionTwoChild".into(),
        generated.clone(),
    ];
    want.sort();
    assert_eq!(ids(&body, "regions"), want);
    assert_eq!(body["links"]["self"], json!(format!("{base}/v3/regions")));
    let (st, body) = get(&s, "regions?parent_region_id=RegionOne", &admin).await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "regions"), ["RegionTwo"]);

    let (st, body) = call(
        &s,
        Method::PATCH,
        "regions/RegionTwo",
        &sys,
        Some(json!({"region": {"description": "changed", "rack": "r2", "id": "RegionTwo"}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["region"]["description"], "changed");
    assert_eq!(body["region"]["rack"], "r2");
    assert_eq!(body["region"]["parent_region_id"], "RegionOne");

    // No cycles: not onto itself, not below one of its descendants.
    for (region, parent) in [("RegionTwo", "RegionTwo"), ("RegionOne", "RegionTwoChild")] {
        let (st, body) = call(
            &s,
            Method::PATCH,
            &format!("regions/{region}"),
            &sys,
            Some(json!({"region": {"parent_region_id": parent}})),
        )
        .await;
        let msg = error(st, &body, 400);
        assert_eq!(
            msg,
            format!(
                "The specified parent region {parent} would create a circular region hierarchy."
            )
        );
    }
    let (st, body) = call(
        &s,
        Method::PATCH,
        "regions/RegionTwo",
        &sys,
        Some(json!({"region": {"parent_region_id": "Nowhere"}})),
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find region: Nowhere.");
    // Detach and reattach: the parent can be cleared.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("regions/{generated}"),
        &sys,
        Some(json!({"region": {"parent_region_id": "RegionTwo"}})),
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("regions/{generated}"),
        &sys,
        Some(json!({"region": {"parent_region_id": null}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["region"]["parent_region_id"], Value::Null);

    // ----- services
    let before = s.admin_token().await;
    let (st, body) = call(
        &s,
        Method::POST,
        "services",
        &admin,
        Some(
            json!({"service": {"type": "compute", "name": "nova", "description": "Compute",
            "owner": "ops", "id": "ignored"}}),
        ),
    )
    .await;
    ok(st, &body, 201);
    let svc = &body["service"];
    let nova = svc["id"].as_str().unwrap().to_string();
    assert_eq!(nova.len(), 32, "Keystone assigns its own id");
    assert_eq!(svc["type"], "compute");
    assert_eq!(svc["name"], "nova");
    assert_eq!(svc["description"], "Compute");
    assert_eq!(svc["enabled"], true);
    assert_eq!(svc["owner"], "ops");
    assert_eq!(
        svc["links"]["self"],
        json!(format!("{base}/v3/services/{nova}"))
    );

    // Kept where Keystone keeps them: name and description in `extra`.
    let stored = s.store.get_service(&nova).await.expect("stored");
    assert_eq!(stored.extra["name"], "nova");
    assert_eq!(stored.extra["description"], "Compute");
    assert_eq!(stored.extra["owner"], "ops");

    // Without a name: Keystone stores "".
    let (st, body) = call(
        &s,
        Method::POST,
        "services",
        &sys,
        Some(json!({"service": {"type": "image", "enabled": false}})),
    )
    .await;
    ok(st, &body, 201);
    let glance = body["service"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["service"]["name"], "");
    assert_eq!(body["service"]["enabled"], false);

    let (st, body) = get(&s, "services?type=compute", &admin).await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "services"), [nova.as_str()]);
    let (st, body) = get(&s, "services?name=keystone", &admin).await;
    ok(st, &body, 200);
    assert_eq!(body["services"][0]["type"], "identity");
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    let (st, body) = get(&s, "services", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["services"].as_array().unwrap().len(), 3);

    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("services/{nova}"),
        &sys,
        Some(json!({"service": {"name": "nova-api", "owner": "team", "enabled": true}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["service"]["name"], "nova-api");
    assert_eq!(
        body["service"]["description"], "Compute",
        "untouched attributes stay"
    );
    assert_eq!(body["service"]["owner"], "team");
    let (st, body) = get(&s, &format!("services/{nova}"), &admin).await;
    ok(st, &body, 200);
    assert_eq!(body["service"]["name"], "nova-api");

    // ----- endpoints
    let (st, body) = call(
        &s,
        Method::POST,
        "endpoints",
        &admin,
        Some(
            json!({"endpoint": {"service_id": nova, "interface": "public",
            "url": "http://nova.example:8774/v2.1/$(project_id)s", "region_id": "RegionTwo",
            "name": "nova public"}}),
        ),
    )
    .await;
    ok(st, &body, 201);
    let ep = &body["endpoint"];
    let public = ep["id"].as_str().unwrap().to_string();
    assert_eq!(ep["service_id"], json!(nova));
    assert_eq!(ep["interface"], "public");
    assert_eq!(ep["region_id"], "RegionTwo");
    assert_eq!(ep["region"], "RegionTwo");
    assert_eq!(ep["enabled"], true);
    assert_eq!(ep["name"], "nova public");
    assert_eq!(ep["url"], "http://nova.example:8774/v2.1/$(project_id)s");
    assert_eq!(
        ep["links"]["self"],
        json!(format!("{base}/v3/endpoints/{public}"))
    );

    // The legacy `region` attribute creates its region.
    let (st, body) = call(
        &s,
        Method::POST,
        "endpoints",
        &sys,
        Some(
            json!({"endpoint": {"service_id": nova, "interface": "internal",
            "url": "http://nova.internal:8774/v2.1", "region": "RegionLegacy"}}),
        ),
    )
    .await;
    ok(st, &body, 201);
    let internal = body["endpoint"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["endpoint"]["region_id"], "RegionLegacy");
    let (st, body) = get(&s, "regions/RegionLegacy", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["region"]["description"], "");

    // An endpoint of the second service, to delete on its own.
    let (st, body) = call(
        &s,
        Method::POST,
        "endpoints",
        &sys,
        Some(
            json!({"endpoint": {"service_id": glance, "interface": "admin",
            "url": "http://glance:9292", "enabled": false}}),
        ),
    )
    .await;
    ok(st, &body, 201);
    let glance_admin = body["endpoint"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["endpoint"]["region_id"], Value::Null);
    assert_eq!(body["endpoint"]["region"], Value::Null);
    assert_eq!(body["endpoint"]["enabled"], false);

    let mut both = vec![public.clone(), internal.clone()];
    both.sort();
    let (st, body) = get(&s, &format!("endpoints?service_id={nova}"), &admin).await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "endpoints"), both);
    let (st, body) = get(
        &s,
        &format!("endpoints?service_id={nova}&interface=public"),
        &admin,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "endpoints"), [public.as_str()]);
    let (st, body) = get(&s, "endpoints?region_id=RegionLegacy", &sys).await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "endpoints"), [internal.as_str()]);
    let (st, body) = get(&s, "endpoints", &sys).await;
    ok(st, &body, 200);
    assert_eq!(
        body["endpoints"].as_array().unwrap().len(),
        5,
        "2 identity + 3 new"
    );
    assert!(body.get("truncated").is_none());

    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("endpoints/{internal}"),
        &sys,
        Some(
            json!({"endpoint": {"url": "http://nova.internal:8775/v2.1", "region_id": "RegionTwo",
            "note": "moved"}}),
        ),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["endpoint"]["url"], "http://nova.internal:8775/v2.1");
    assert_eq!(body["endpoint"]["region_id"], "RegionTwo");
    assert_eq!(body["endpoint"]["region"], "RegionTwo");
    assert_eq!(body["endpoint"]["interface"], "internal");
    assert_eq!(body["endpoint"]["note"], "moved");
    let (st, body) = get(&s, &format!("endpoints/{internal}"), &admin).await;
    ok(st, &body, 200);
    assert_eq!(body["endpoint"]["url"], "http://nova.internal:8775/v2.1");

    // ----- the catalog follows: new tokens, /v3/auth/catalog, and existing tokens
    let catalog = issued_catalog(&s).await;
    let compute = catalog_entry(&catalog, "compute").expect("compute in a new token");
    assert_eq!(compute["id"], json!(nova));
    assert_eq!(compute["name"], "nova-api");
    let urls: Vec<&str> = compute["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(
        urls.contains(&format!("http://nova.example:8774/v2.1/{}", s.admin_project_id).as_str()),
        "$(project_id)s filled in: {urls:?}"
    );
    assert!(urls.contains(&"http://nova.internal:8775/v2.1"), "{urls:?}");
    assert!(
        catalog_entry(&catalog, "image").is_none(),
        "a disabled service stays out of the catalog"
    );
    let (st, body) = get(&s, "auth/catalog", &admin).await;
    ok(st, &body, 200);
    assert!(
        catalog_entry(&body["catalog"], "compute").is_some(),
        "{body}"
    );
    // A token issued before the endpoints existed shows them when validated now.
    let old = validated_catalog(&s, &admin, &before).await;
    assert!(catalog_entry(&old, "compute").is_some(), "{old}");

    // A disabled endpoint leaves the catalog.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("endpoints/{public}"),
        &sys,
        Some(json!({"endpoint": {"enabled": false}})),
    )
    .await;
    ok(st, &body, 200);
    let catalog = issued_catalog(&s).await;
    let compute = catalog_entry(&catalog, "compute").expect("compute");
    assert_eq!(
        compute["endpoints"].as_array().unwrap().len(),
        1,
        "{compute}"
    );

    // ----- regions with endpoints cannot go, directly or through a child
    for region in ["RegionTwo", "RegionOne"] {
        let (st, body) = call(&s, Method::DELETE, &format!("regions/{region}"), &sys, None).await;
        assert_eq!(
            error(st, &body, 403),
            format!("Unable to delete region {region} because it or its child regions have associated endpoints.")
        );
    }

    // ----- deletes
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("endpoints/{glance_admin}"),
        &sys,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = get(&s, &format!("endpoints/{glance_admin}"), &sys).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find endpoint: {glance_admin}.")
    );
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("endpoints/{glance_admin}"),
        &sys,
        None,
    )
    .await;
    error(st, &body, 404);

    // Deleting a service deletes its endpoints.
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("services/{nova}"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = get(&s, &format!("services/{nova}"), &admin).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find service: {nova}.")
    );
    for ep in [&public, &internal] {
        let (st, body) = get(&s, &format!("endpoints/{ep}"), &admin).await;
        error(st, &body, 404);
    }
    let (st, body) = get(&s, &format!("endpoints?service_id={nova}"), &admin).await;
    ok(st, &body, 200);
    assert!(ids(&body, "endpoints").is_empty());
    assert!(catalog_entry(&issued_catalog(&s).await, "compute").is_none());
    let old = validated_catalog(&s, &admin, &before).await;
    assert!(catalog_entry(&old, "compute").is_none(), "{old}");
    assert!(catalog_entry(&old, "identity").is_some(), "{old}");
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("services/{nova}"),
        &admin,
        None,
    )
    .await;
    error(st, &body, 404);

    // Now RegionTwo has no endpoints: it goes, with the region below it.
    let (st, body) = call(&s, Method::DELETE, "regions/RegionTwo", &sys, None).await;
    ok(st, &body, 204);
    for region in ["RegionTwo", "RegionTwoChild"] {
        let (st, body) = get(&s, &format!("regions/{region}"), &sys).await;
        error(st, &body, 404);
    }
    let (st, body) = call(&s, Method::DELETE, "regions/RegionTwo", &sys, None).await;
    error(st, &body, 404);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("services/{glance}"),
        &sys,
        None,
    )
    .await;
    ok(st, &body, 204);

    // What bootstrap made is intact.
    let (st, body) = get(&s, "endpoints", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["endpoints"].as_array().unwrap().len(), 2, "{body}");
    s.stop().await;
}

/// Keystone's schema errors and lookups that fail, one request each.
async fn catalog_validation(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let sys = s.system_admin_token().await;
    let (_, body) = call(
        &s,
        Method::POST,
        "services",
        &sys,
        Some(json!({"service": {"type": "compute"}})),
    )
    .await;
    let svc = body["service"]["id"].as_str().unwrap().to_string();
    let (_, body) = call(
        &s,
        Method::POST,
        "endpoints",
        &sys,
        Some(
            json!({"endpoint": {"service_id": svc, "interface": "public",
            "url": "http://nova:8774"}}),
        ),
    )
    .await;
    let ep = body["endpoint"]["id"].as_str().unwrap().to_string();
    let long = "r".repeat(256);

    let cases: Vec<(Method, String, Value, &str)> = vec![
        // services
        (
            Method::POST,
            "services".into(),
            json!({"service": {"name": "nova"}}),
            "'type' is a required property",
        ),
        (
            Method::POST,
            "services".into(),
            json!({"service": {"type": ""}}),
            "service/type",
        ),
        (
            Method::POST,
            "services".into(),
            json!({"service": {"type": "x".repeat(256)}}),
            "too long",
        ),
        (
            Method::POST,
            "services".into(),
            json!({"service": {"type": "compute", "name": 7}}),
            "service/name",
        ),
        (
            Method::POST,
            "services".into(),
            json!({"service": {"type": "compute", "enabled": "yes"}}),
            "'boolean'",
        ),
        (
            Method::POST,
            "services".into(),
            json!({"service": "compute"}),
            "'object'",
        ),
        (
            Method::PATCH,
            format!("services/{svc}"),
            json!({"service": {}}),
            "should be non-empty",
        ),
        (
            Method::PATCH,
            format!("services/{svc}"),
            json!({"service": {"id": "other"}}),
            "Cannot change ID",
        ),
        // endpoints
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "private", "url": "http://x"}}),
            "is not one of ['admin', 'internal', 'public']",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public", "url": "not a url"}}),
            "does not match '^[a-zA-Z0-9+.-]+:.+'",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public",
            "url": format!("http://{}", "x".repeat(220))}}),
            "is too long",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public",
            "url": "http://x/$(flavor)s"}}),
            "Cannot create an endpoint with an invalid URL: http://x/$(flavor)s.",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public"}}),
            "'url' is a required property",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": "nope", "interface": "public", "url": "http://x"}}),
            "Expecting to find endpoint service_id in service table",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://x",
            "region_id": "Nowhere"}}),
            "Expecting to find endpoint region_id in region table",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://x",
            "enabled": 1}}),
            "'boolean'",
        ),
        (
            Method::POST,
            "endpoints".into(),
            json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://x"},
            "other": 1}),
            "'other' was unexpected",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {"interface": "private"}}),
            "is not one of",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {"url": "x"}}),
            "does not match",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {"service_id": "nope"}}),
            "Expecting to find endpoint service_id in service table",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {"region_id": "Nowhere"}}),
            "Expecting to find endpoint region_id in region table",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {"id": "other"}}),
            "Cannot change ID",
        ),
        (
            Method::PATCH,
            format!("endpoints/{ep}"),
            json!({"endpoint": {}}),
            "should be non-empty",
        ),
        // regions
        (
            Method::POST,
            "regions".into(),
            json!({"region": {"id": long}}),
            "is too long",
        ),
        (
            Method::POST,
            "regions".into(),
            json!({"region": {"parent_region_id": ""}}),
            "region/parent_region_id",
        ),
        (
            Method::POST,
            "regions".into(),
            json!({"region": {"description": "d".repeat(256)}}),
            "region/description",
        ),
        (
            Method::POST,
            "regions".into(),
            json!({"region": {"id": 5}}),
            "region/id",
        ),
        (
            Method::PUT,
            "regions/RegionX".into(),
            json!({"region": {"id": "RegionY"}}),
            "Conflicting region IDs specified: \"RegionX\" != \"RegionY\"",
        ),
        (
            Method::PUT,
            format!("regions/{long}"),
            json!({"region": {}}),
            "too long",
        ),
        (
            Method::PATCH,
            "regions/RegionOne".into(),
            json!({"region": {"id": "RegionY"}}),
            "Cannot change ID",
        ),
        (
            Method::PATCH,
            "regions/RegionOne".into(),
            json!({"region": {}}),
            "should be non-empty",
        ),
    ];
    for (method, path, body, needle) in cases {
        let (st, resp) = call(&s, method.clone(), &path, &sys, Some(body.clone())).await;
        let msg = error(st, &resp, 400);
        assert!(msg.contains(needle), "{method} {path} {body} -> {msg}");
    }
    // Nothing above was written.
    let (_, body) = get(&s, "services", &sys).await;
    assert_eq!(body["services"].as_array().unwrap().len(), 2);
    let (_, body) = get(&s, "endpoints", &sys).await;
    assert_eq!(body["endpoints"].as_array().unwrap().len(), 3);
    let (_, body) = get(&s, "regions", &sys).await;
    assert_eq!(ids(&body, "regions"), ["RegionOne"]);

    // Query checks.
    let (st, body) = get(&s, "endpoints?interface=bogus", &sys).await;
    assert!(error(st, &body, 400).contains("'bogus' is not one of"));
    let (st, body) = get(&s, "regions?limit=1", &sys).await;
    assert!(error(st, &body, 400).contains("'limit' was unexpected"));
    let (st, body) = get(&s, "regions?parent_region_id=", &sys).await;
    error(st, &body, 400);

    // Unknown ids: 404 with Keystone's message, for every verb.
    for (kind, path) in [
        ("service", "services"),
        ("endpoint", "endpoints"),
        ("region", "regions"),
    ] {
        let (st, body) = get(&s, &format!("{path}/nope"), &sys).await;
        assert_eq!(
            error(st, &body, 404),
            format!("Could not find {kind}: nope.")
        );
        let patch = json!({ kind: {"description": "x"} });
        let (st, body) = call(
            &s,
            Method::PATCH,
            &format!("{path}/nope"),
            &sys,
            Some(patch),
        )
        .await;
        assert_eq!(
            error(st, &body, 404),
            format!("Could not find {kind}: nope.")
        );
        let (st, body) = call(&s, Method::DELETE, &format!("{path}/nope"), &sys, None).await;
        assert_eq!(
            error(st, &body, 404),
            format!("Could not find {kind}: nope.")
        );
    }
    s.stop().await;
}

/// Each persona against each route: Keystone 30's defaults let admins (system, or any
/// project-scoped admin) write, system readers read services and endpoints, and anyone read
/// regions; domain-scoped tokens are outside the scope types of everything but region reads.
async fn catalog_personas(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let p = Personas::build(&s).await;
    let personas = [
        ("system admin", p.system_admin, true, true),
        ("project admin", p.project_admin, true, true),
        ("system reader", p.system_reader, true, false),
        ("domain admin", p.domain_admin, false, false),
        ("project member", p.project_member, false, false),
        ("project reader", p.project_reader, false, false),
    ];
    let sys = personas[0].1.clone();
    let (_, body) = get(&s, "services?type=identity", &sys).await;
    let identity = body["services"][0]["id"].as_str().unwrap().to_string();
    let (_, body) = get(&s, "endpoints", &sys).await;
    let endpoint = body["endpoints"][0]["id"].as_str().unwrap().to_string();

    let deny = |st: StatusCode, body: &Value, who: &str, rule: &str| {
        let msg = error(st, body, 403);
        assert_eq!(
            msg,
            format!("You are not authorized to perform the requested action: {rule}."),
            "{who}"
        );
    };

    for (n, (who, token, reads, writes)) in personas.iter().enumerate() {
        let reads = *reads;
        let writes = *writes;
        // Reads of services and endpoints.
        for (path, rule) in [
            ("services".to_string(), "identity:list_services"),
            (format!("services/{identity}"), "identity:get_service"),
            ("endpoints".to_string(), "identity:list_endpoints"),
            (format!("endpoints/{endpoint}"), "identity:get_endpoint"),
        ] {
            let (st, body) = get(&s, &path, token).await;
            if reads {
                ok(st, &body, 200);
            } else {
                deny(st, &body, who, rule);
            }
        }
        // Regions are readable by every scoped token.
        let (st, body) = get(&s, "regions", token).await;
        ok(st, &body, 200);
        let (st, body) = get(&s, "regions/RegionOne", token).await;
        ok(st, &body, 200);

        // Writes: a full create/update/delete round for admins, a refusal of each for others.
        let region = format!("Region-{n}");
        let (st, body) = call(
            &s,
            Method::PUT,
            &format!("regions/{region}"),
            token,
            Some(json!({"region": {}})),
        )
        .await;
        if writes {
            ok(st, &body, 201);
        } else {
            deny(st, &body, who, "identity:create_region");
            // Made by the system admin so the refusals below are about policy, not absence.
            let (st, body) = call(
                &s,
                Method::PUT,
                &format!("regions/{region}"),
                &sys,
                Some(json!({"region": {}})),
            )
            .await;
            ok(st, &body, 201);
        }
        let (st, body) = call(
            &s,
            Method::POST,
            "regions",
            token,
            Some(json!({"region": {}})),
        )
        .await;
        if writes {
            ok(st, &body, 201);
        } else {
            deny(st, &body, who, "identity:create_region");
        }
        let (st, body) = call(
            &s,
            Method::POST,
            "services",
            token,
            Some(json!({"service": {"type": format!("t{n}")}})),
        )
        .await;
        let service = if writes {
            ok(st, &body, 201);
            body["service"]["id"].as_str().unwrap().to_string()
        } else {
            deny(st, &body, who, "identity:create_service");
            let (st, body) = call(
                &s,
                Method::POST,
                "services",
                &sys,
                Some(json!({"service": {"type": format!("t{n}")}})),
            )
            .await;
            ok(st, &body, 201);
            body["service"]["id"].as_str().unwrap().to_string()
        };
        let endpoint_body = json!({"endpoint": {"service_id": service, "interface": "public",
            "url": "http://x.example", "region_id": region}});
        let (st, body) = call(
            &s,
            Method::POST,
            "endpoints",
            token,
            Some(endpoint_body.clone()),
        )
        .await;
        let ep = if writes {
            ok(st, &body, 201);
            body["endpoint"]["id"].as_str().unwrap().to_string()
        } else {
            deny(st, &body, who, "identity:create_endpoint");
            let (st, body) = call(&s, Method::POST, "endpoints", &sys, Some(endpoint_body)).await;
            ok(st, &body, 201);
            body["endpoint"]["id"].as_str().unwrap().to_string()
        };
        for (method, path, body, rule, status) in [
            (
                Method::PATCH,
                format!("regions/{region}"),
                Some(json!({"region": {"description": "d"}})),
                "identity:update_region",
                200,
            ),
            (
                Method::PATCH,
                format!("services/{service}"),
                Some(json!({"service": {"name": "n"}})),
                "identity:update_service",
                200,
            ),
            (
                Method::PATCH,
                format!("endpoints/{ep}"),
                Some(json!({"endpoint": {"enabled": false}})),
                "identity:update_endpoint",
                200,
            ),
            (
                Method::DELETE,
                format!("endpoints/{ep}"),
                None,
                "identity:delete_endpoint",
                204,
            ),
            (
                Method::DELETE,
                format!("services/{service}"),
                None,
                "identity:delete_service",
                204,
            ),
            (
                Method::DELETE,
                format!("regions/{region}"),
                None,
                "identity:delete_region",
                204,
            ),
        ] {
            let (st, resp) = call(&s, method.clone(), &path, token, body).await;
            if writes {
                ok(st, &resp, status);
            } else {
                deny(st, &resp, who, rule);
            }
        }
        if !writes {
            // The refused writes changed nothing.
            let (st, body) = get(&s, &format!("endpoints/{ep}"), &sys).await;
            ok(st, &body, 200);
            assert_eq!(body["endpoint"]["enabled"], true, "{who}");
            let (st, body) = get(&s, &format!("services/{service}"), &sys).await;
            ok(st, &body, 200);
            assert_eq!(body["service"]["name"], "", "{who}");
        }
    }

    // No token, or a bad one: 401 on every collection.
    for path in ["services", "endpoints", "regions"] {
        let resp = s.client.get(s.url(path)).send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let (st, body) = get(&s, path, "not-a-token").await;
        error(st, &body, 401);
    }
    s.stop().await;
}

/// `[catalog] list_limit` cuts services and endpoints before `[DEFAULT] list_limit` does;
/// regions are never cut (Keystone's region list ignores both).
async fn catalog_list_limits(d: Dialect) {
    let s = IdentityServer::start_with(d, |c| {
        c.catalog.list_limit = Some(1);
        c.default.list_limit = Some(2);
    })
    .await;
    let sys = s.system_admin_token().await;
    for kind in ["compute", "image"] {
        let (st, body) = call(
            &s,
            Method::POST,
            "services",
            &sys,
            Some(json!({"service": {"type": kind}})),
        )
        .await;
        ok(st, &body, 201);
    }
    for id in ["RegionA", "RegionB"] {
        let (st, body) = call(
            &s,
            Method::PUT,
            &format!("regions/{id}"),
            &sys,
            Some(json!({"region": {}})),
        )
        .await;
        ok(st, &body, 201);
    }
    let (st, body) = get(&s, "services", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    assert_eq!(body["truncated"], true);
    let next = body["links"]["next"]
        .as_str()
        .expect("next link")
        .to_string();
    assert!(next.contains("marker="), "{next}");
    let (st, body) = get(&s, "endpoints", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(body["truncated"], true);
    let (st, body) = get(&s, "regions", &sys).await;
    ok(st, &body, 200);
    assert_eq!(body["regions"].as_array().unwrap().len(), 3);
    assert!(body.get("truncated").is_none());
    s.stop().await;

    let s = IdentityServer::start_with(d, |c| c.default.list_limit = Some(1)).await;
    let sys = s.system_admin_token().await;
    let (st, body) = get(&s, "endpoints", &sys).await;
    ok(st, &body, 200);
    assert_eq!(
        body["endpoints"].as_array().unwrap().len(),
        1,
        "[DEFAULT] list_limit"
    );
    assert_eq!(body["truncated"], true);
    s.stop().await;
}

on_every_database!(catalog_lifecycle, catalog_validation);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn catalog_personas() {
        super::catalog_personas(Dialect::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn catalog_list_limits() {
        super::catalog_list_limits(Dialect::Sqlite).await
    }
}
