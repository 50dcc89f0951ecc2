//! Policy blobs (`/v3/policies`) and endpoint policy (`OS-ENDPOINT-POLICY`) over HTTP on every
//! database: who may read and write them under Keystone's default policy, the schema's 400s, the
//! 404s for each missing part, one policy per target, and which policy an endpoint uses (its
//! own, its service's in its region or a parent region, its service's).
//! `tests/interop/test_policies.py` compares the same requests with Keystone 30.

use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::{json, Value};

const EP: &str = "OS-ENDPOINT-POLICY";

async fn created(s: &IdentityServer, token: &str, path: &str, body: Value, key: &str) -> String {
    let (st, body) = call(s, Method::POST, path, token, Some(body)).await;
    assert_eq!(st.as_u16(), 201, "{body}");
    body[key]["id"].as_str().unwrap().to_string()
}

async fn status(s: &IdentityServer, method: Method, path: &str, token: &str) -> u16 {
    call(s, method, path, token, None).await.0.as_u16()
}

/// The id of the policy `endpoint` uses, or the 404's message.
async fn policy_of(s: &IdentityServer, token: &str, endpoint: &str) -> Result<String, String> {
    let (st, body) = call(
        s,
        Method::GET,
        &format!("endpoints/{endpoint}/{EP}/policy"),
        token,
        None,
    )
    .await;
    if st.as_u16() == 200 {
        Ok(body["policy"]["id"].as_str().unwrap().to_string())
    } else {
        Err(error(st, &body, 404))
    }
}

async fn endpoints_of(s: &IdentityServer, token: &str, policy: &str) -> Vec<String> {
    let (st, body) = call(
        s,
        Method::GET,
        &format!("policies/{policy}/{EP}/endpoints"),
        token,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{body}");
    let mut ids: Vec<String> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn policy_blobs(s: &IdentityServer, p: &Personas) -> Vec<String> {
    let admin = &p.system_admin;
    let body = json!({"policy": {"blob": "{\"a\": 1}", "type": "application/json", "x-tag": 1}});
    let (st, b) = call(
        s,
        Method::POST,
        "policies",
        &p.project_member,
        Some(body.clone()),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(
        s,
        Method::POST,
        "policies",
        &p.system_reader,
        Some(body.clone()),
    )
    .await;
    error(st, &b, 403);
    let (st, b) = call(s, Method::POST, "policies", admin, Some(body)).await;
    assert_eq!(st.as_u16(), 201, "{b}");
    let p1 = b["policy"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["policy"]["blob"], "{\"a\": 1}");
    assert_eq!(
        b["policy"]["x_tag"], 1,
        "extras kept, names normalized: {b}"
    );
    assert!(b["policy"]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v3/policies/{p1}")));

    // The schema, after policy: a member's bad body is still a 403.
    for (bad, want) in [
        (json!({}), "'blob' is a required property"),
        (
            json!({"policy": {"blob": "x"}}),
            "'type' is a required property",
        ),
        (
            json!({"policy": {"blob": 1, "type": "t"}}),
            "Invalid input for field 'blob': 1 is not of type 'string'",
        ),
        (json!({"policy": "x"}), "'x' is not of type 'object'"),
    ] {
        let (st, b) = call(s, Method::POST, "policies", admin, Some(bad.clone())).await;
        assert_eq!(error(st, &b, 400), want, "{bad}");
        let (st, b) = call(s, Method::POST, "policies", &p.project_member, Some(bad)).await;
        error(st, &b, 403);
    }
    let long = json!({"policy": {"blob": "x", "type": "t".repeat(256)}});
    let (st, b) = call(s, Method::POST, "policies", admin, Some(long)).await;
    assert!(error(st, &b, 400).starts_with("Invalid input for field 'type'"));

    let p2 = created(
        s,
        admin,
        "policies",
        json!({"policy": {"blob": "b2", "type": "text/plain"}}),
        "policy",
    )
    .await;
    let p3 = created(
        s,
        admin,
        "policies",
        json!({"policy": {"blob": "b3", "type": "text/plain"}}),
        "policy",
    )
    .await;

    // Reading: system readers and admins; project members neither list nor show.
    let (st, b) = call(
        s,
        Method::GET,
        "policies?type=text/plain",
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let mut listed: Vec<&str> = b["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut want = vec![p2.as_str(), p3.as_str()];
    want.sort_unstable();
    assert_eq!(listed, want);
    assert_eq!(
        status(s, Method::GET, "policies", &p.project_member).await,
        403
    );
    assert_eq!(
        status(s, Method::GET, &format!("policies/{p1}"), &p.project_member).await,
        403
    );
    let (st, b) = call(s, Method::GET, "policies/nosuch", admin, None).await;
    assert_eq!(error(st, &b, 404), "Could not find policy: nosuch.");

    // Updates keep what they do not name; the id cannot change; an empty body is refused.
    let (st, b) = call(
        s,
        Method::PATCH,
        &format!("policies/{p1}"),
        admin,
        Some(json!({"policy": {"type": "text/x-yaml", "note": "n"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b["policy"]["blob"], "{\"a\": 1}");
    assert_eq!(b["policy"]["type"], "text/x-yaml");
    assert_eq!(
        (b["policy"]["note"].clone(), b["policy"]["x_tag"].clone()),
        (json!("n"), json!(1))
    );
    let (st, b) = call(
        s,
        Method::PATCH,
        &format!("policies/{p1}"),
        admin,
        Some(json!({"policy": {"id": "other"}})),
    )
    .await;
    assert_eq!(error(st, &b, 400), "Cannot change policy ID");
    let (st, b) = call(
        s,
        Method::PATCH,
        &format!("policies/{p1}"),
        admin,
        Some(json!({"policy": {}})),
    )
    .await;
    assert_eq!(error(st, &b, 400), "{} should be non-empty");
    let (st, b) = call(
        s,
        Method::PATCH,
        "policies/nosuch",
        admin,
        Some(json!({"policy": {"blob": "x"}})),
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find policy: nosuch.");
    vec![p1, p2, p3]
}

async fn endpoint_policy(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let [p1, p2, p3]: [String; 3] = policy_blobs(&s, &p).await.try_into().unwrap();

    // A region with a child region, one service, an endpoint in each region and one in none.
    let top = created(
        &s,
        &admin,
        "regions",
        json!({"region": {"id": "ep-top"}}),
        "region",
    )
    .await;
    let sub = created(
        &s,
        &admin,
        "regions",
        json!({"region": {"id": "ep-sub", "parent_region_id": top}}),
        "region",
    )
    .await;
    let svc = created(
        &s,
        &admin,
        "services",
        json!({"service": {"type": "volumev3"}}),
        "service",
    )
    .await;
    let mut eps = Vec::new();
    for region in [Some(&sub), Some(&top), None] {
        let mut e = json!({"service_id": svc, "interface": "public", "url": "http://cinder/"});
        if let Some(r) = region {
            e["region_id"] = json!(r);
        }
        eps.push(
            created(
                &s,
                &admin,
                "endpoints",
                json!({ "endpoint": e }),
                "endpoint",
            )
            .await,
        );
    }
    let (in_sub, in_top, nowhere) = (eps[0].clone(), eps[1].clone(), eps[2].clone());

    // Nothing associated yet.
    assert_eq!(
        policy_of(&s, &admin, &in_sub).await,
        Err(format!("No policy is associated with endpoint {in_sub}."))
    );

    // Endpoint associations: admins write, system readers check, members do neither.
    let e1 = format!("policies/{p1}/{EP}/endpoints/{in_sub}");
    assert_eq!(status(&s, Method::PUT, &e1, &p.system_reader).await, 403);
    assert_eq!(status(&s, Method::PUT, &e1, &p.project_member).await, 403);
    assert_eq!(status(&s, Method::PUT, &e1, &admin).await, 204);
    assert_eq!(
        status(&s, Method::PUT, &e1, &admin).await,
        204,
        "idempotent"
    );
    assert_eq!(status(&s, Method::GET, &e1, &p.system_reader).await, 204);
    assert_eq!(status(&s, Method::HEAD, &e1, &admin).await, 204);
    assert_eq!(status(&s, Method::GET, &e1, &p.project_member).await, 403);
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("policies/{p2}/{EP}/endpoints/{in_sub}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find policy association.");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("policies/{p1}/{EP}/endpoints/nosuch"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find endpoint: nosuch.");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("policies/nosuch/{EP}/endpoints/{in_sub}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find policy: nosuch.");
    // 403 before 404.
    assert_eq!(
        status(
            &s,
            Method::PUT,
            &format!("policies/nosuch/{EP}/endpoints/nosuch"),
            &p.project_member
        )
        .await,
        403
    );

    // Service-and-region and service associations.
    let r2 = format!("policies/{p2}/{EP}/services/{svc}/regions/{top}");
    assert_eq!(status(&s, Method::PUT, &r2, &admin).await, 204);
    assert_eq!(status(&s, Method::GET, &r2, &p.system_reader).await, 204);
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("policies/{p2}/{EP}/services/{svc}/regions/nosuch"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find region: nosuch.");
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("policies/{p2}/{EP}/services/nosuch/regions/{top}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find service: nosuch.");
    let s3 = format!("policies/{p3}/{EP}/services/{svc}");
    assert_eq!(status(&s, Method::PUT, &s3, &admin).await, 204);
    assert_eq!(status(&s, Method::GET, &s3, &admin).await, 204);
    assert_eq!(
        status(
            &s,
            Method::GET,
            &format!("policies/{p2}/{EP}/services/{svc}"),
            &admin
        )
        .await,
        404
    );

    // Which policy each endpoint uses, most specific first.
    assert_eq!(
        policy_of(&s, &p.system_reader, &in_sub).await,
        Ok(p1.clone())
    );
    assert_eq!(policy_of(&s, &admin, &in_top).await, Ok(p2.clone()));
    assert_eq!(policy_of(&s, &admin, &nowhere).await, Ok(p3.clone()));
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("endpoints/{in_sub}/{EP}/policy"),
        &p.project_member,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("endpoints/nosuch/{EP}/policy"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), "Could not find endpoint: nosuch.");

    // A policy's endpoints: its own endpoint; the region's and its child regions'; the service's.
    assert_eq!(endpoints_of(&s, &admin, &p1).await, vec![in_sub.clone()]);
    let mut both = vec![in_sub.clone(), in_top.clone()];
    both.sort();
    assert_eq!(endpoints_of(&s, &p.system_reader, &p2).await, both);
    let mut all = eps.clone();
    all.sort();
    assert_eq!(endpoints_of(&s, &admin, &p3).await, all);

    // Without its own association the endpoint in the child region takes its parent's.
    assert_eq!(status(&s, Method::DELETE, &e1, &admin).await, 204);
    assert_eq!(
        status(&s, Method::DELETE, &e1, &admin).await,
        204,
        "absent is fine"
    );
    assert_eq!(status(&s, Method::GET, &e1, &admin).await, 404);
    assert_eq!(policy_of(&s, &admin, &in_sub).await, Ok(p2.clone()));

    // One policy per target: associating another replaces it.
    let e3 = format!("policies/{p3}/{EP}/endpoints/{in_top}");
    assert_eq!(status(&s, Method::PUT, &e3, &admin).await, 204);
    assert_eq!(
        status(
            &s,
            Method::PUT,
            &format!("policies/{p1}/{EP}/endpoints/{in_top}"),
            &admin
        )
        .await,
        204
    );
    assert_eq!(status(&s, Method::GET, &e3, &admin).await, 404);
    assert_eq!(policy_of(&s, &admin, &in_top).await, Ok(p1.clone()));

    // Deleting a policy leaves its associations, which then lead to a 404 (as in Keystone).
    assert_eq!(
        status(
            &s,
            Method::DELETE,
            &format!("policies/{p3}"),
            &p.system_reader
        )
        .await,
        403
    );
    assert_eq!(
        status(&s, Method::DELETE, &format!("policies/{p3}"), &admin).await,
        204
    );
    assert_eq!(
        status(&s, Method::DELETE, &format!("policies/{p3}"), &admin).await,
        404
    );
    assert_eq!(
        policy_of(&s, &admin, &nowhere).await,
        Err(format!("Could not find policy: {p3}."))
    );
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("policies/{p3}/{EP}/endpoints"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &b, 404), format!("Could not find policy: {p3}."));
}

on_every_database!(endpoint_policy);
