//! Unified limits over HTTP on every database: each route per persona under Keystone's default
//! policy (who may write, who may read which limit, what a listing shows each scope), the
//! write rules (duplicates, limits without a registered limit, a registered limit in use,
//! targets that do not exist), a project's deletion taking its limits, and the
//! `strict_two_level` model's bounds and depth. `tests/interop/test_unified_limits.py` compares
//! the same requests with Keystone 30.

use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::Method;
use serde_json::{json, Value};

/// A service and a region for the limits; their ids.
async fn catalog(s: &IdentityServer, admin: &str) -> (String, String) {
    let (st, body) = call(
        s,
        Method::POST,
        "services",
        admin,
        Some(json!({"service": {"type": "compute", "name": "nova"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let service = body["service"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        s,
        Method::POST,
        "regions",
        admin,
        Some(json!({"region": {"id": "RegionTwo"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    (service, "RegionTwo".into())
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

async fn unified_limits_per_persona(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let (service, region) = catalog(&s, &admin).await;

    // Registered limits: admins write, everyone reads.
    let reg = json!({"registered_limits": [
        {"service_id": service, "resource_name": "cores", "default_limit": 10},
        {"service_id": service, "region_id": region, "resource_name": "ram", "default_limit": 512}
    ]});
    for (who, token) in [
        ("system member", &p.system_member),
        ("domain manager", &p.domain_manager),
        ("project member", &p.project_member),
    ] {
        let (st, body) = call(
            &s,
            Method::POST,
            "registered_limits",
            token,
            Some(reg.clone()),
        )
        .await;
        assert_eq!(st.as_u16(), 403, "{who}: {body}");
    }
    let (st, body) = call(
        &s,
        Method::POST,
        "registered_limits",
        &p.project_admin,
        Some(reg),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let reg_ids = ids(&body, "registered_limits");
    assert_eq!(body["registered_limits"][1]["region_id"], region.as_str());
    assert!(
        body.get("links").is_none(),
        "a create answers without collection links"
    );
    for token in [&p.project_reader, &p.domain_reader, &p.system_reader] {
        let (st, body) = call(&s, Method::GET, "registered_limits", token, None).await;
        assert_eq!(st.as_u16(), 200, "{body}");
        assert_eq!(body["registered_limits"].as_array().unwrap().len(), 2);
        let path = format!("registered_limits/{}", reg_ids[0]);
        let (st, _) = call(&s, Method::GET, &path, token, None).await;
        assert_eq!(st.as_u16(), 200);
        let (st, body) = call(&s, Method::GET, "limits/model", token, None).await;
        assert_eq!(st.as_u16(), 200);
        assert_eq!(body["model"]["name"], "flat");
    }
    let (st, body) = call(
        &s,
        Method::GET,
        "registered_limits?region_id=RegionTwo",
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200);
    assert_eq!(ids(&body, "registered_limits"), vec![reg_ids[1].clone()]);
    // A duplicate is a conflict; nothing of a refused batch is kept.
    let dup = json!({"registered_limits": [
        {"service_id": service, "resource_name": "disk", "default_limit": 1},
        {"service_id": service, "resource_name": "cores", "default_limit": 1}
    ]});
    let (st, body) = call(&s, Method::POST, "registered_limits", &admin, Some(dup)).await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store registered_limit - Duplicate entry."
    );
    let (_, body) = call(
        &s,
        Method::GET,
        "registered_limits?resource_name=disk",
        &admin,
        None,
    )
    .await;
    assert!(body["registered_limits"].as_array().unwrap().is_empty());

    // Limits: one on the persona project, one on the persona domain.
    let lim = |owner: Value, value: i64| {
        let mut item =
            json!({"service_id": service, "resource_name": "cores", "resource_limit": value});
        item.as_object_mut()
            .unwrap()
            .extend(owner.as_object().unwrap().clone());
        json!({"limits": [item]})
    };
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &p.domain_manager,
        Some(lim(json!({"domain_id": p.domain_id}), 20)),
    )
    .await;
    assert_eq!(st.as_u16(), 403, "{body}");
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(lim(json!({"project_id": p.project_id}), 5)),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let project_limit = ids(&body, "limits").remove(0);
    assert_eq!(body["limits"][0]["resource_name"], "cores");
    // `create_limits` admits system and project scopes only: a domain admin is refused.
    let (st, _) = call(
        &s,
        Method::POST,
        "limits",
        &p.domain_admin,
        Some(lim(json!({"domain_id": p.domain_id}), 20)),
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &p.project_admin,
        Some(lim(json!({"domain_id": p.domain_id}), 20)),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let domain_limit = ids(&body, "limits").remove(0);
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(lim(json!({"project_id": p.project_id}), 6)),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store limit - Duplicate entry."
    );
    let mut none = lim(json!({"project_id": p.project_id}), 1);
    none["limits"][0]["resource_name"] = json!("gpus");
    let (st, body) = call(&s, Method::POST, "limits", &admin, Some(none)).await;
    assert_eq!(
        error(st, &body, 403),
        "Unable to create a limit that has no corresponding registered limit."
    );
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(lim(json!({"project_id": "nosuch"}), 1)),
    )
    .await;
    assert!(error(st, &body, 400).starts_with("Expecting to find project_id in limit."));
    // A project that is a domain takes a domain limit.
    let mut ram = lim(json!({"project_id": s.default_domain_id}), 64);
    ram["limits"][0]["resource_name"] = json!("ram");
    ram["limits"][0]["region_id"] = json!(region);
    let (st, body) = call(&s, Method::POST, "limits", &admin, Some(ram)).await;
    assert_eq!(st.as_u16(), 201, "{body}");
    assert_eq!(body["limits"][0]["project_id"], Value::Null);
    assert_eq!(body["limits"][0]["domain_id"], s.default_domain_id.as_str());

    // Who reads which limit.
    let project_path = format!("limits/{project_limit}");
    let domain_path = format!("limits/{domain_limit}");
    for (who, token, project_ok, domain_ok) in [
        ("system reader", &p.system_reader, true, true),
        ("domain reader", &p.domain_reader, false, true),
        ("project reader", &p.project_reader, true, false),
        ("project admin", &p.project_admin, true, true),
    ] {
        let (st, _) = call(&s, Method::GET, &project_path, token, None).await;
        assert_eq!(
            st.as_u16() == 200,
            project_ok,
            "{who} reads the project's limit"
        );
        let (st, _) = call(&s, Method::GET, &domain_path, token, None).await;
        assert_eq!(
            st.as_u16() == 200,
            domain_ok,
            "{who} reads the domain's limit"
        );
    }
    // 403 before 404: a reader is refused an unknown limit, an admin told it is not there.
    let (st, _) = call(&s, Method::GET, "limits/nosuch", &p.project_reader, None).await;
    assert_eq!(st.as_u16(), 403);
    let (st, body) = call(&s, Method::GET, "limits/nosuch", &admin, None).await;
    assert_eq!(error(st, &body, 404), "Could not find limit for nosuch.");

    // What a listing shows each scope.
    for (who, token, want) in [
        ("system reader", &p.system_reader, 3),
        ("domain reader", &p.domain_reader, 1),
        ("project reader", &p.project_reader, 1),
        ("project admin", &p.project_admin, 3),
    ] {
        let (st, body) = call(&s, Method::GET, "limits", token, None).await;
        assert_eq!(st.as_u16(), 200, "{body}");
        assert_eq!(
            body["limits"].as_array().unwrap().len(),
            want,
            "{who}: {body}"
        );
    }
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("limits?project_id={}", p.project_id),
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&body, "limits"), vec![project_limit.clone()]);

    // Updates: admins only; 0 is a value.
    let (st, _) = call(
        &s,
        Method::PATCH,
        &project_path,
        &p.project_member,
        Some(json!({"limit": {"resource_limit": 1}})),
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &project_path,
        &admin,
        Some(json!({"limit": {"resource_limit": 0, "description": "none"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{body}");
    assert_eq!(body["limit"]["resource_limit"], 0);
    assert_eq!(body["limit"]["description"], "none");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &project_path,
        &admin,
        Some(json!({"limit": {"resource_limit": -2}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 400),
        "Invalid input for field/attribute resource_limit. Value: -2. -2 is less than the minimum of -1"
    );

    // A registered limit in use stays; once its limits go, it may change and go.
    let reg_path = format!("registered_limits/{}", reg_ids[0]);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &reg_path,
        &admin,
        Some(json!({"registered_limit": {"default_limit": 3}})),
    )
    .await;
    assert!(error(st, &body, 403).starts_with(&format!(
        "Unable to update or delete registered limit {}",
        reg_ids[0]
    )));
    let (st, _) = call(&s, Method::DELETE, &reg_path, &admin, None).await;
    assert_eq!(st.as_u16(), 403);
    for path in [&project_path, &domain_path] {
        let (st, _) = call(&s, Method::DELETE, path, &p.project_member, None).await;
        assert_eq!(st.as_u16(), 403);
        let (st, _) = call(&s, Method::DELETE, path, &admin, None).await;
        assert_eq!(st.as_u16(), 204);
    }
    let (st, body) = call(
        &s,
        Method::PATCH,
        &reg_path,
        &admin,
        Some(json!({"registered_limit": {"default_limit": 3, "description": null}})),
    )
    .await;
    assert_eq!(st.as_u16(), 200, "{body}");
    assert_eq!(body["registered_limit"]["default_limit"], 3);
    let (st, _) = call(&s, Method::DELETE, &reg_path, &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, body) = call(&s, Method::GET, &reg_path, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find registered limit for {}.", reg_ids[0])
    );

    // A project's deletion takes its limits.
    let doomed = s.create_project("doomed", &s.default_domain_id).await;
    let mut ram = lim(json!({"project_id": doomed}), 32);
    ram["limits"][0]["resource_name"] = json!("ram");
    ram["limits"][0]["region_id"] = json!(region);
    let (st, body) = call(&s, Method::POST, "limits", &admin, Some(ram)).await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let doomed_limit = format!("limits/{}", ids(&body, "limits")[0]);
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{doomed}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let (st, _) = call(&s, Method::GET, &doomed_limit, &admin, None).await;
    assert_eq!(st.as_u16(), 404);
    s.stop().await;
}

async fn strict_two_level(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start_with(dialect, |c| {
        c.unified_limit.enforcement_model = baton_config::EnforcementModel::StrictTwoLevel;
    })
    .await;
    let admin = s.system_admin_token().await;
    let (service, _) = catalog(&s, &admin).await;
    let dom = s.default_domain_id.clone();
    let top = s.create_project("top", &dom).await;
    let reg = json!({"registered_limits": [{"service_id": service, "resource_name": "cores", "default_limit": 10}]});
    let (st, _) = call(&s, Method::POST, "registered_limits", &admin, Some(reg)).await;
    assert_eq!(st.as_u16(), 201);
    let limit = |owner: &str, id: &str, value: i64| json!({"limits": [{"service_id": service, "resource_name": "cores", "resource_limit": value, owner: id}]});
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(limit("project_id", &top, 11)),
    )
    .await;
    assert!(error(st, &body, 403).contains("doesn't satisfy current hierarchy model"));
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(limit("project_id", &top, 6)),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(limit("domain_id", &dom, 5)),
    )
    .await;
    assert!(error(st, &body, 403).contains(&format!(
        "(domain_id: {dom}, resource_name: cores, resource_limit: 5"
    )));
    let (st, body) = call(
        &s,
        Method::POST,
        "limits",
        &admin,
        Some(limit("domain_id", &dom, 8)),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let domain_limit = format!("limits/{}", ids(&body, "limits")[0]);
    let (st, _) = call(
        &s,
        Method::PATCH,
        &domain_limit,
        &admin,
        Some(json!({"limit": {"resource_limit": 4}})),
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (_, body) = call(&s, Method::GET, "limits/model", &admin, None).await;
    assert_eq!(body["model"]["name"], "strict_two_level");
    // Two levels of projects at most.
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "sub", "parent_id": top}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let sub = body["project"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "deep", "parent_id": sub}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("Max hierarchy depth reached for {sub} branch.")
    );
    s.stop().await;
}

/// Keystone refuses to start under `strict_two_level` with projects three levels deep; so does
/// Baton, naming them.
async fn strict_two_level_refuses_a_deep_tree(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let admin = s.system_admin_token().await;
    let mut parent = s.default_domain_id.clone();
    let mut deepest = String::new();
    for name in ["one", "two", "three"] {
        let body = json!({"project": {"name": name, "parent_id": parent}});
        let (st, body) = call(&s, Method::POST, "projects", &admin, Some(body)).await;
        assert_eq!(st.as_u16(), 201, "{body}");
        deepest = body["project"]["id"].as_str().unwrap().to_string();
        parent = deepest.clone();
    }
    let mut config = s.config.clone();
    config.unified_limit.enforcement_model = baton_config::EnforcementModel::StrictTwoLevel;
    let refused = baton_server::AppState::open(config.clone())
        .await
        .err()
        .expect("refused to start")
        .to_string();
    assert!(
        refused.contains("strict_two_level allows two levels of projects")
            && refused.contains(&deepest),
        "{refused}"
    );
    // Two levels are fine.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{deepest}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let state = baton_server::AppState::open(config).await.expect("starts");
    drop(state);
    s.stop().await;
}

on_every_database!(
    unified_limits_per_persona,
    strict_two_level,
    strict_two_level_refuses_a_deep_tree
);
