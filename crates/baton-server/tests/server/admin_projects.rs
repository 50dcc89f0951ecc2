//! `/v3/domains` and `/v3/projects` over HTTP against a real server on every database, with
//! Keystone's default policy for each persona.

use baton_store::Dialect;
use baton_testkit::{call, error, on_every_database, project_scope, IdentityServer, Personas};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Pers0na-Secret-w7Qe1";

/// `GET /v3/auth/tokens` of `subject` with the admin's token: the status only.
async fn validation_status(s: &IdentityServer, admin: &str, subject: &str) -> u16 {
    s.client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", admin)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("validate")
        .status()
        .as_u16()
}

async fn project_lifecycle(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();

    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(
            json!({"project": {"name": "service", "description": "services live here",
            "tags": ["b", "a"], "ticket": "OPS-1"}}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let p = &body["project"];
    let service_id = p["id"].as_str().unwrap().to_string();
    assert_eq!(service_id.len(), 32);
    assert_eq!(p["name"], "service");
    assert_eq!(p["domain_id"], json!(dom));
    assert_eq!(p["parent_id"], json!(dom));
    assert_eq!(p["is_domain"], json!(false));
    assert_eq!(p["enabled"], json!(true));
    assert_eq!(p["description"], "services live here");
    assert_eq!(p["tags"], json!(["b", "a"]));
    assert_eq!(p["ticket"], "OPS-1", "extra attributes are kept");
    assert_eq!(
        p["links"]["self"],
        json!(format!("{}/v3/projects/{service_id}", s.base))
    );

    // Same name in the same domain: 409.
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "service"}})),
    )
    .await;
    assert!(error(st, &body, 409).contains("service"));

    // Schema errors: 400 with the field named.
    for (bad, needle) in [
        (json!({"project": {"name": 7}}), "project/name"),
        (json!({"project": {"name": "x".repeat(65)}}), "too long"),
        (
            json!({"project": {"name": "ok", "enabled": "yes"}}),
            "project/enabled",
        ),
        (
            json!({"project": {"name": "ok", "tags": ["a/b"]}}),
            "tags/0",
        ),
        (
            json!({"project": {"description": "no name"}}),
            "'name' is a required property",
        ),
        (
            json!({"project": {"name": "ok"}, "extra": 1}),
            "'extra' was unexpected",
        ),
        (json!({"projects": {"name": "ok"}}), "project"),
    ] {
        let (st, body) = call(&s, Method::POST, "projects", &admin, Some(bad.clone())).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(needle), "{bad} -> {msg}");
    }

    // A child project, then the hierarchy rules.
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "nova-cells", "parent_id": service_id}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let child_id = body["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["project"]["parent_id"], json!(service_id));
    assert_eq!(body["project"]["domain_id"], json!(dom));

    let (st, body) = call(
        &s,
        Method::GET,
        &format!("projects/{child_id}?parents_as_ids"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        body["project"]["parents"],
        json!({ service_id.clone(): null })
    );

    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("projects/{service_id}"),
        &admin,
        None,
    )
    .await;
    assert!(error(st, &body, 403).contains("not a leaf"));
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("projects/{service_id}"),
        &admin,
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert!(error(st, &body, 403).contains("subtree contains enabled projects"));
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("projects/{child_id}"),
        &admin,
        Some(json!({"project": {"parent_id": s.admin_project_id}})),
    )
    .await;
    assert!(error(st, &body, 403).contains("parent_id"));

    // Update: rename, describe, disable the leaf.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("projects/{child_id}"),
        &admin,
        Some(json!({"project": {"name": "cells", "description": null, "enabled": false}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["project"]["name"], "cells");
    assert_eq!(body["project"]["enabled"], json!(false));
    assert_eq!(body["project"]["description"], "");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("projects/{child_id}"),
        &admin,
        Some(json!({"project": {"name": "admin"}})),
    )
    .await;
    error(st, &body, 409);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("projects/{child_id}"),
        &admin,
        Some(json!({"project": {}})),
    )
    .await;
    error(st, &body, 400);

    // Filters.
    let (st, body) = call(&s, Method::GET, "projects?name=cells", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cells"]);
    assert_eq!(
        body["links"]["self"],
        json!(format!("{}/v3/projects?name=cells", s.base))
    );
    let (_, body) = call(&s, Method::GET, "projects?enabled=false", &admin, None).await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    let (_, body) = call(&s, Method::GET, "projects?tags=a,b", &admin, None).await;
    assert_eq!(body["projects"][0]["id"], json!(service_id));
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    let (_, body) = call(&s, Method::GET, "projects?not-tags-any=a", &admin, None).await;
    assert!(body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != json!(service_id)));
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("projects?parent_id={service_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    // Domains are not listed as projects unless asked for.
    let (_, body) = call(&s, Method::GET, "projects", &admin, None).await;
    assert!(body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["is_domain"] == json!(false)));
    let (_, body) = call(&s, Method::GET, "projects?is_domain=true", &admin, None).await;
    assert!(body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == json!(dom)));

    // A user's token on the leaf stops validating once the leaf is deleted.
    let user = s.create_user("carol", PW, &dom).await;
    s.grant_project(&user, &child_id, "member").await;
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("projects/{child_id}"),
        &admin,
        Some(json!({"project": {"enabled": true}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let carol = s.token("carol", PW, project_scope(&child_id)).await;
    assert_eq!(validation_status(&s, &admin, &carol).await, 200);
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{child_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(validation_status(&s, &admin, &carol).await, 404);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("projects/{child_id}"),
        &admin,
        None,
    )
    .await;
    assert!(error(st, &body, 404).contains(&child_id));
    // Its role assignments went with it.
    let scopes = s.state.tokens.scopes_for_user(&user).await.expect("scopes");
    assert!(scopes.0.is_empty(), "no project left for carol");
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{service_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.stop().await;
}

async fn domain_lifecycle(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.system_admin_token().await;
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "heat", "description": "stacks"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let heat = body["domain"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["domain"]["enabled"], json!(true));
    assert_eq!(body["domain"]["tags"], json!([]));
    assert!(body["domain"].get("domain_id").is_none());
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "heat"}})),
    )
    .await;
    error(st, &body, 409);
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": ""}})),
    )
    .await;
    error(st, &body, 400);

    let (_, body) = call(&s, Method::GET, "domains?name=heat", &admin, None).await;
    assert_eq!(body["domains"].as_array().unwrap().len(), 1);
    assert_eq!(body["domains"][0]["id"], json!(heat));

    // Contents: a project tree, a user with a token, all gone with the domain.
    let p1 = s.create_project("stacks", &heat).await;
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "nested", "parent_id": p1}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["project"]["domain_id"], json!(heat));
    let user = s.create_user("heat_admin", PW, &heat).await;
    s.grant_project(&user, &p1, "member").await;
    let user_token = s
        .token_in("heat_admin", &heat, PW, project_scope(&p1))
        .await;
    assert_eq!(validation_status(&s, &admin, &user_token).await, 200);

    let (st, body) = call(&s, Method::DELETE, &format!("domains/{heat}"), &admin, None).await;
    assert!(error(st, &body, 403).contains("disable it first"));
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("domains/{heat}"),
        &admin,
        Some(json!({"domain": {"enabled": false, "description": "retired"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["domain"]["description"], "retired");
    // A disabled domain's tokens no longer validate.
    assert_eq!(validation_status(&s, &admin, &user_token).await, 404);
    let (st, _) = call(&s, Method::DELETE, &format!("domains/{heat}"), &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, Method::GET, &format!("domains/{heat}"), &admin, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(s.store.get_user(&user).await.unwrap().is_none());
    assert!(s.store.get_project(&p1).await.unwrap().is_none());

    // The default domain cannot be disabled.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("domains/{}", s.default_domain_id),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    error(st, &body, 403);
    s.stop().await;
}

/// The `immutable` resource option on projects and domains: shown on reads, and until cleared
/// (alone) no update, delete or tag change; a domain holding an immutable project is not
/// deleted either.
async fn immutable_option(dialect: Dialect) {
    let s = IdentityServer::start(dialect).await;
    let admin = s.system_admin_token().await;
    let (st, b) = call(&s, Method::POST, "projects", &admin, Some(json!({"project": {"name": "frozen", "domain_id": "default", "options": {"immutable": true}}}))).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["project"]["options"], json!({"immutable": true}));
    let pid = b["project"]["id"].as_str().unwrap().to_string();
    let (_, b) = call(&s, Method::GET, "projects?name=frozen", &admin, None).await;
    assert_eq!(b["projects"][0]["options"], json!({"immutable": true}));
    let refused = format!("Unable to update immutable project resource: `{pid}. Set resource option \"immutable\" to false first.");
    for body in [
        json!({"project": {"description": "x"}}),
        json!({"project": {"description": "x", "options": {"immutable": false}}}),
    ] {
        let (st, b) = call(
            &s,
            Method::PATCH,
            &format!("projects/{pid}"),
            &admin,
            Some(body),
        )
        .await;
        assert_eq!(error(st, &b, 403), refused);
    }
    let (st, b) = call(&s, Method::DELETE, &format!("projects/{pid}"), &admin, None).await;
    assert_eq!(error(st, &b, 403), format!("Unable to delete immutable project resource: `{pid}. Set resource option \"immutable\" to false first."));
    let (st, b) = call(
        &s,
        Method::PUT,
        &format!("projects/{pid}/tags/blue"),
        &admin,
        None,
    )
    .await;
    assert!(error(st, &b, 403).starts_with(&format!(
        "Cannot create project tags for {pid}, project is immutable."
    )));
    let (st, b) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "x", "options": {"bogus": true}}})),
    )
    .await;
    assert_eq!(error(st, &b, 400), "Invalid input for field/attribute options. Value: {'bogus': True}. Additional properties are not allowed ('bogus' was unexpected)");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("projects/{pid}"),
        &admin,
        Some(json!({"project": {"options": {"immutable": false}}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["project"]["options"].clone(),
            b["project"]["extra"].clone()
        ),
        (json!({"immutable": false}), json!({}))
    );
    let (st, _) = call(&s, Method::DELETE, &format!("projects/{pid}"), &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // A domain holding an immutable project stays.
    let (_, b) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "d-frozen"}})),
    )
    .await;
    let did = b["domain"]["id"].as_str().unwrap().to_string();
    let (_, b) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(
            json!({"project": {"name": "inner", "domain_id": did, "options": {"immutable": true}}}),
        ),
    )
    .await;
    let inner = b["project"]["id"].as_str().unwrap().to_string();
    call(
        &s,
        Method::PATCH,
        &format!("domains/{did}"),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    let (st, b) = call(&s, Method::DELETE, &format!("domains/{did}"), &admin, None).await;
    assert_eq!(error(st, &b, 403), format!("Unable to delete immutable project resource: `{inner}. Set resource option \"immutable\" to false first."));
    let (_, b) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "d-frozen2", "options": {"immutable": true}}})),
    )
    .await;
    assert_eq!(b["domain"]["options"], json!({"immutable": true}));
    let did2 = b["domain"]["id"].as_str().unwrap().to_string();
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("domains/{did2}"),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(error(st, &b, 403), format!("Unable to update immutable domain resource: `{did2}. Set resource option \"immutable\" to false first."));
}

/// Keystone 30 pages users, groups, projects and domains from the marker's row: an unknown
/// marker is a 404; a known one lists the ids after it. `[resource] list_limit` cuts projects.
async fn markers_and_list_limit(dialect: Dialect) {
    let s = IdentityServer::start_with(dialect, |c| c.resource.list_limit = Some(2)).await;
    let admin = s.system_admin_token().await;
    for kind in ["users", "groups", "projects", "domains"] {
        let (st, b) = call(
            &s,
            Method::GET,
            &format!("{kind}?marker=nosuch"),
            &admin,
            None,
        )
        .await;
        assert_eq!(
            error(st, &b, 404),
            "Marker nosuch could not be found.",
            "{kind}"
        );
    }
    for name in ["m1", "m2", "m3"] {
        let body = json!({"project": {"name": name, "domain_id": "default"}});
        let (st, _) = call(&s, Method::POST, "projects", &admin, Some(body)).await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (_, b) = call(&s, Method::GET, "projects", &admin, None).await;
    assert_eq!(
        (
            b["projects"].as_array().unwrap().len(),
            b["truncated"].clone()
        ),
        (2, json!(true))
    );
    let first = b["projects"][0]["id"].as_str().unwrap().to_string();
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("projects?marker={first}&limit=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert!(b["projects"][0]["id"].as_str().unwrap() > first.as_str());
}

on_every_database!(
    project_lifecycle,
    domain_lifecycle,
    immutable_option,
    markers_and_list_limit
);

#[tokio::test]
async fn project_and_domain_policy_per_persona() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;
    let new_project =
        |name: &str, domain: &str| Some(json!({"project": {"name": name, "domain_id": domain}}));
    let dom = s.default_domain_id.clone();

    // Creating projects: admins anywhere, a domain admin only in their domain, members never.
    for (who, token, domain, want) in [
        ("system admin", &p.system_admin, &dom, 201),
        ("project admin", &p.project_admin, &dom, 201),
        (
            "domain manager, own domain",
            &p.domain_manager,
            &p.domain_id,
            201,
        ),
        ("domain manager, other domain", &p.domain_manager, &dom, 403),
        ("member", &p.project_member, &dom, 403),
        ("reader", &p.project_reader, &dom, 403),
    ] {
        let name = format!("p-{}", who.replace([' ', ','], "-"));
        let (st, body) = call(
            &s,
            Method::POST,
            "projects",
            token,
            new_project(&name, domain),
        )
        .await;
        assert_eq!(st.as_u16(), want, "{who}: {body}");
        if want == 403 {
            let msg = error(st, &body, 403);
            assert!(msg.contains("identity:create_project"), "{msg}");
        }
    }

    // Reading a project: members and readers of it may; listing all projects they may not.
    for (who, token, want) in [
        ("member", &p.project_member, 200),
        ("reader", &p.project_reader, 200),
        ("domain manager of another domain", &p.domain_manager, 403),
        ("system admin", &p.system_admin, 200),
    ] {
        let (st, body) = call(
            &s,
            Method::GET,
            &format!("projects/{}", p.project_id),
            token,
            None,
        )
        .await;
        assert_eq!(st.as_u16(), want, "{who}: {body}");
    }
    for (who, token, want) in [
        ("member", &p.project_member, 403),
        ("reader", &p.project_reader, 403),
        ("system admin", &p.system_admin, 200),
        ("project admin", &p.project_admin, 200),
    ] {
        let (st, body) = call(&s, Method::GET, "projects", token, None).await;
        assert_eq!(st.as_u16(), want, "{who}: {body}");
    }
    // A domain admin lists only their domain's projects.
    let (st, body) = call(&s, Method::GET, "projects", &p.domain_manager, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let projects = body["projects"].as_array().unwrap();
    assert!(!projects.is_empty());
    assert!(projects
        .iter()
        .all(|x| x["domain_id"] == json!(p.domain_id)));

    // Domains: only admins create or delete; a member cannot even update theirs.
    for (who, token, want) in [
        ("member", &p.project_member, 403),
        ("reader", &p.project_reader, 403),
        ("domain manager", &p.domain_manager, 403),
        ("system admin", &p.system_admin, 201),
    ] {
        let (st, body) = call(
            &s,
            Method::POST,
            "domains",
            token,
            Some(json!({"domain": {"name": format!("d-{}", who.replace(' ', "-"))}})),
        )
        .await;
        assert_eq!(st.as_u16(), want, "{who}: {body}");
    }
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("domains/{}", p.domain_id),
        &p.domain_manager,
        None,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "a domain admin reads their domain: {body}"
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("domains/{dom}"),
        &p.domain_manager,
        None,
    )
    .await;
    error(st, &body, 403);

    // Keystone's defaults make `admin` on any scope a cloud admin: a domain-scoped admin token
    // may create projects in another domain.
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &p.domain_admin,
        new_project("by-domain-admin", &dom),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    // No token, a garbage token: 401 with WWW-Authenticate.
    let resp = s.client.get(s.url("projects")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
    let (st, body) = call(&s, Method::GET, "projects", "gAAAAA-not-a-token", None).await;
    error(st, &body, 401);
    s.stop().await;
}

#[tokio::test]
async fn project_tags_and_pagination() {
    let s = IdentityServer::start_with(Dialect::Sqlite, |c| c.default.list_limit = Some(2)).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let mut ids = vec![s.admin_project_id.clone()];
    for i in 0..4 {
        ids.push(s.create_project(&format!("page-{i}"), &dom).await);
    }
    ids.sort();

    // list_limit cuts the page and says so; `next` continues after the last id.
    let (st, body) = call(&s, Method::GET, "projects", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let got: Vec<String> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids[..2].to_vec());
    assert_eq!(body["truncated"], json!(true));
    let next = body["links"]["next"]
        .as_str()
        .expect("next link")
        .to_string();
    assert!(next.contains(&format!("marker={}", ids[1])), "{next}");
    let resp = s
        .client
        .get(&next)
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let got: Vec<&str> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[3].as_str()]);
    // An explicit limit beats list_limit; the last page is not truncated.
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("projects?limit=10&marker={}", ids[2]),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 2);
    assert!(body.get("truncated").is_none());
    assert_eq!(body["links"]["next"], Value::Null);
    let (st, body) = call(&s, Method::GET, "projects?limit=many", &admin, None).await;
    error(st, &body, 400);

    // Tags: add one (201 + Location), check, replace all, remove, clear.
    let p = &ids[0];
    let resp = s
        .client
        .put(s.url(&format!("projects/{p}/tags/gpu")))
        .header("x-auth-token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/v3/projects/{p}/tags/gpu")));
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("projects/{p}/tags/gpu"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("projects/{p}/tags/cpu"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("projects/{p}/tags"),
        &admin,
        Some(json!({"tags": ["x", "y"]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], json!(["x", "y"]));
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("projects/{p}/tags"),
        &admin,
        Some(json!({"tags": ["x", "x"]})),
    )
    .await;
    error(st, &body, 400);
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("projects/{p}/tags/a,b"),
        &admin,
        None,
    )
    .await;
    error(st, &body, 400);
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{p}/tags/x"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, body) = call(&s, Method::GET, &format!("projects/{p}/tags"), &admin, None).await;
    assert_eq!(body["tags"], json!(["y"]));
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{p}/tags"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, body) = call(&s, Method::GET, &format!("projects/{p}/tags"), &admin, None).await;
    assert_eq!(body["tags"], json!([]));
    s.stop().await;
}

/// An operator's policy.yaml overrides single rules; the others keep Keystone's defaults.
#[tokio::test]
async fn policy_file_overrides_one_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policy.yaml");
    std::fs::write(
        &file,
        "# let project members list projects, and nobody create domains\n\
         \"identity:list_projects\": \"role:member\"\n\
         \"identity:create_domain\": \"!\"\n",
    )
    .expect("write policy.yaml");
    let s = IdentityServer::start_with(Dialect::Sqlite, |c| {
        c.oslo_policy.policy_file = file.clone();
        c.oslo_policy.policy_file_explicit = true;
    })
    .await;
    let p = Personas::build(&s).await;
    let (st, body) = call(&s, Method::GET, "projects", &p.project_member, None).await;
    assert_eq!(st, StatusCode::OK, "overridden rule: {body}");
    let (st, body) = call(&s, Method::GET, "projects", &p.project_reader, None).await;
    assert!(error(st, &body, 403).contains("identity:list_projects"));
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &p.system_admin,
        Some(json!({"domain": {"name": "nope"}})),
    )
    .await;
    assert!(error(st, &body, 403).contains("identity:create_domain"));
    // A rule the file does not mention keeps its default.
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &p.project_member,
        Some(json!({"project": {"name": "x"}})),
    )
    .await;
    error(st, &body, 403);
    s.stop().await;

    // A broken explicitly configured file stops the start with a one-line error naming it.
    std::fs::write(&file, "\"identity:get_project\": \"(role:admin\"\n").expect("write");
    let mut config = baton_config::IdentityConfig::default();
    config.oslo_policy.policy_file = file.clone();
    config.oslo_policy.policy_file_explicit = true;
    config.database.connection = Some(format!("sqlite:///{}/x.db", dir.path().display()));
    let err = baton_server::AppState::open(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("policy.yaml") && err.contains("identity:get_project"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
