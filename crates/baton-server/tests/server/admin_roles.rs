//! `/v3/roles`, implied roles, grants (project, domain, OS-INHERIT, system) and
//! `/v3/role_assignments` over HTTP against a real server, with their effects on tokens and
//! Keystone's default policy per persona.

use std::collections::BTreeSet;

use baton_store::{Dialect, Group};
use baton_testkit::{
    call, domain_scope, error, on_every_database, project_scope, system_scope, IdentityServer,
    Personas,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "R0les-Secret-k3Jd8";

async fn status(s: &IdentityServer, method: Method, path: &str, token: &str) -> u16 {
    call(s, method, path, token, None).await.0.as_u16()
}

/// The role names a token carries when validated now, or the status when it does not validate.
async fn token_roles(
    s: &IdentityServer,
    admin: &str,
    subject: &str,
) -> Result<BTreeSet<String>, u16> {
    let resp = s
        .client
        .get(s.url("auth/tokens?nocatalog"))
        .header("x-auth-token", admin)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("validate");
    let st = resp.status().as_u16();
    if st != 200 {
        return Err(st);
    }
    let body: Value = resp.json().await.expect("token body");
    Ok(body["token"]["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default())
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn create_role(s: &IdentityServer, admin: &str, body: Value) -> String {
    let (st, body) = call(
        s,
        Method::POST,
        "roles",
        admin,
        Some(json!({ "role": body })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    body["role"]["id"].as_str().unwrap().to_string()
}

async fn create_group(s: &IdentityServer, name: &str, domain_id: &str) -> String {
    let id = baton_store::new_id();
    s.store
        .create_group(&Group {
            id: id.clone(),
            name: name.into(),
            domain_id: domain_id.into(),
            description: None,
            extra: None,
        })
        .await
        .expect("create group");
    id
}

async fn add_to_group(s: &IdentityServer, user: &str, group: &str) {
    s.store
        .add_user_to_group(user, group)
        .await
        .expect("membership");
    s.state.tokens.invalidate_caches();
}

/// A child project through the API (the testkit makes top-level ones).
async fn create_child(s: &IdentityServer, admin: &str, name: &str, parent: &str) -> String {
    let (st, body) = call(
        s,
        Method::POST,
        "projects",
        admin,
        Some(json!({"project": {"name": name, "parent_id": parent}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    body["project"]["id"].as_str().unwrap().to_string()
}

// ----- roles -----------------------------------------------------------------------------------

async fn roles_lifecycle(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;

    // Bootstrap's roles are global and immutable.
    let (st, body) = call(&s, Method::GET, "roles", &admin, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let listed: BTreeSet<&str> = body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in ["admin", "manager", "member", "reader", "service"] {
        assert!(listed.contains(n), "{n} in {listed:?}");
    }
    let reader = body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "reader")
        .unwrap()
        .clone();
    let reader_id = reader["id"].as_str().unwrap().to_string();
    assert_eq!(reader["domain_id"], Value::Null);
    assert_eq!(reader["options"], json!({"immutable": true}));
    assert_eq!(
        reader["links"]["self"],
        json!(format!("{}/v3/roles/{reader_id}", s.base))
    );
    assert_eq!(body["links"]["self"], json!(format!("{}/v3/roles", s.base)));

    let (_, body) = call(&s, Method::GET, "roles?name=reader", &admin, None).await;
    assert_eq!(body["roles"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["roles"][0]["id"], json!(reader_id));

    // Create, with an attribute Keystone keeps in `extra`.
    let (st, body) = call(
        &s,
        Method::POST,
        "roles",
        &admin,
        Some(
            json!({"role": {"name": "operator", "description": "runs things", "ticket": "OPS-7"}}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let r = &body["role"];
    let op = r["id"].as_str().unwrap().to_string();
    assert_eq!(op.len(), 32);
    assert_eq!(r["name"], "operator");
    assert_eq!(r["description"], "runs things");
    assert_eq!(r["domain_id"], Value::Null);
    assert_eq!(r["options"], json!({}));
    assert_eq!(r["ticket"], "OPS-7");
    assert_eq!(
        r["links"]["self"],
        json!(format!("{}/v3/roles/{op}", s.base))
    );

    let (st, body) = call(
        &s,
        Method::POST,
        "roles",
        &admin,
        Some(json!({"role": {"name": "operator"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store role - Duplicate entry found with name operator."
    );

    for (bad, needle) in [
        (json!({"role": {}}), "'name' is a required property"),
        (json!({"role": {"name": " "}}), "role/name"),
        (json!({"role": {"name": "x".repeat(256)}}), "too long"),
        (
            json!({"role": {"name": "x", "description": 5}}),
            "role/description",
        ),
        (
            json!({"role": {"name": "x", "domain_id": "a b"}}),
            "role/domain_id",
        ),
        (
            json!({"role": {"name": "x", "options": {"immutable": "yes"}}}),
            "immutable",
        ),
        (
            json!({"role": {"name": "x", "options": {"sticky": true}}}),
            "'sticky' was unexpected",
        ),
        (
            json!({"role": {"name": "x"}, "extra": 1}),
            "'extra' was unexpected",
        ),
        (json!({"rolex": {"name": "x"}}), "role"),
    ] {
        let (st, body) = call(&s, Method::POST, "roles", &admin, Some(bad.clone())).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(needle), "{bad} -> {msg}");
    }

    // Show (GET and HEAD), update, unknown ids.
    let (st, body) = call(&s, Method::GET, &format!("roles/{op}"), &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["role"]["ticket"], "OPS-7");
    assert_eq!(
        status(&s, Method::HEAD, &format!("roles/{op}"), &admin).await,
        200
    );
    let (st, body) = call(&s, Method::GET, "roles/nope", &admin, None).await;
    assert_eq!(error(st, &body, 404), "Could not find role: nope.");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("roles/{op}"),
        &admin,
        Some(json!({"role": {"name": "operators", "description": null, "ticket": "OPS-8"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["role"]["name"], "operators");
    assert_eq!(body["role"]["description"], Value::Null);
    assert_eq!(body["role"]["ticket"], "OPS-8");
    let (_, body) = call(&s, Method::GET, &format!("roles/{op}"), &admin, None).await;
    assert_eq!(body["role"]["name"], "operators", "the update is stored");
    for (bad, status_want, needle) in [
        (json!({"role": {}}), 400, "role"),
        (json!({"role": {"id": "other"}}), 400, "Cannot change ID"),
        (
            json!({"role": {"domain_id": s.default_domain_id}}),
            400,
            "Update of `domain_id` is not allowed.",
        ),
        (
            json!({"role": {"name": "reader"}}),
            409,
            "Duplicate entry found with name reader",
        ),
    ] {
        let (st, body) = call(
            &s,
            Method::PATCH,
            &format!("roles/{op}"),
            &admin,
            Some(bad.clone()),
        )
        .await;
        let msg = error(st, &body, status_want);
        assert!(msg.contains(needle), "{bad} -> {msg}");
    }
    let (st, body) = call(
        &s,
        Method::PATCH,
        "roles/nope",
        &admin,
        Some(json!({"role": {"name": "x"}})),
    )
    .await;
    error(st, &body, 404);

    // Immutable roles: no change but clearing the option, no deletion.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("roles/{reader_id}"),
        &admin,
        Some(json!({"role": {"description": "changed"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("Unable to update immutable role resource: `{reader_id}. Set resource option \"immutable\" to false first.")
    );
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("roles/{reader_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("Unable to delete immutable role resource: `{reader_id}. Set resource option \"immutable\" to false first.")
    );
    let locked = create_role(
        &s,
        &admin,
        json!({"name": "locked", "options": {"immutable": true}}),
    )
    .await;
    let (st, body) = call(&s, Method::DELETE, &format!("roles/{locked}"), &admin, None).await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("roles/{locked}"),
        &admin,
        Some(json!({"role": {"name": "unlocked", "options": {"immutable": false}}})),
    )
    .await;
    error(st, &body, 403);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("roles/{locked}"),
        &admin,
        Some(json!({"role": {"options": {"immutable": false}}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["role"]["options"], json!({"immutable": false}));
    let (st, _) = call(&s, Method::DELETE, &format!("roles/{locked}"), &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, Method::GET, &format!("roles/{locked}"), &admin, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Domain-specific roles stay out of the global list.
    let dom = s.create_domain("tenant-a").await;
    let (st, body) = call(
        &s,
        Method::POST,
        "roles",
        &admin,
        Some(json!({"role": {"name": "operators", "domain_id": dom}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "same name, other domain: {body}");
    let dom_role = body["role"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["role"]["domain_id"], json!(dom));
    let (st, body) = call(
        &s,
        Method::POST,
        "roles",
        &admin,
        Some(json!({"role": {"name": "operators", "domain_id": dom}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        format!("Conflict occurred attempting to store role - Duplicate entry found with name operators at domain ID {dom}.")
    );
    let (_, body) = call(&s, Method::GET, "roles", &admin, None).await;
    assert!(body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != json!(dom_role)));
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("roles?domain_id={dom}"),
        &admin,
        None,
    )
    .await;
    let ids: Vec<&str> = body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![dom_role.as_str()]);
    let (st, body) = call(&s, Method::GET, "roles?domain_id=a%20b", &admin, None).await;
    error(st, &body, 400);

    // Pages: limit, truncated and the next link.
    let (st, body) = call(&s, Method::GET, "roles?limit=2", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["roles"].as_array().unwrap().len(), 2);
    assert_eq!(body["truncated"], json!(true));
    let next = body["links"]["next"]
        .as_str()
        .expect("next link")
        .to_string();
    assert!(
        next.starts_with(&format!("{}/v3/roles?", s.base)) && next.contains("marker="),
        "{next}"
    );

    // Delete.
    let (st, _) = call(&s, Method::DELETE, &format!("roles/{op}"), &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = call(&s, Method::DELETE, &format!("roles/{op}"), &admin, None).await;
    assert_eq!(error(st, &body, 404), format!("Could not find role: {op}."));
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("roles/{dom_role}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.stop().await;
}

on_every_database!(roles_lifecycle);

// ----- implied roles -----------------------------------------------------------------------------

async fn implied_roles(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let ops = create_role(&s, &admin, json!({"name": "ops"})).await;
    let observer = create_role(&s, &admin, json!({"name": "observer"})).await;
    let project = s.create_project("svc", &dom).await;
    let user = s.create_user("opsy", PW, &dom).await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("projects/{project}/users/{user}/roles/{ops}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let token = s.token("opsy", PW, project_scope(&project)).await;
    assert_eq!(token_roles(&s, &admin, &token).await, Ok(names(&["ops"])));

    // PUT answers 201 with the inference.
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("roles/{ops}/implies/{observer}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let role_link = |id: &str| json!(format!("{}/v3/roles/{id}", s.base));
    assert_eq!(
        body,
        json!({
            "role_inference": {
                "prior_role": {"id": ops, "name": "ops", "links": {"self": role_link(&ops)}},
                "implies": {"id": observer, "name": "observer", "links": {"self": role_link(&observer)}},
            },
            "links": {"self": format!("{}/v3/roles/{ops}/implies/{observer}", s.base)},
        })
    );
    // The token already issued now carries the implied role too, and so does a new one.
    assert_eq!(
        token_roles(&s, &admin, &token).await,
        Ok(names(&["ops", "observer"]))
    );
    let fresh = s.token("opsy", PW, project_scope(&project)).await;
    assert_eq!(
        token_roles(&s, &admin, &fresh).await,
        Ok(names(&["ops", "observer"]))
    );

    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("roles/{ops}/implies/{observer}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store implied_role - Duplicate entry."
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("roles/{ops}/implies/{observer}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["role_inference"]["implies"]["id"], json!(observer));
    assert_eq!(
        status(
            &s,
            Method::HEAD,
            &format!("roles/{ops}/implies/{observer}"),
            &admin
        )
        .await,
        204
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("roles/{observer}/implies/{ops}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 404),
        format!("{observer} does not imply {ops}.")
    );
    assert_eq!(
        status(
            &s,
            Method::HEAD,
            &format!("roles/{observer}/implies/{ops}"),
            &admin
        )
        .await,
        404
    );
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("roles/{ops}/implies/nope"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find role: nope.");

    let (st, body) = call(
        &s,
        Method::GET,
        &format!("roles/{ops}/implies"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["role_inference"]["prior_role"]["id"], json!(ops));
    assert_eq!(
        body["role_inference"]["implies"],
        json!([{"id": observer, "name": "observer", "links": {"self": role_link(&observer)}}])
    );
    assert_eq!(
        body["links"]["self"],
        json!(format!("{}/v3/roles/{ops}/implies", s.base))
    );

    // The inference rules: bootstrap's chain plus ours.
    let (st, body) = call(&s, Method::GET, "role_inferences", &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let rules: BTreeSet<(String, String)> = body["role_inferences"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let prior = r["prior_role"]["name"].as_str().unwrap().to_string();
            r["implies"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |i| (prior.clone(), i["name"].as_str().unwrap().to_string()))
        })
        .collect();
    for (p, i) in [
        ("admin", "manager"),
        ("manager", "member"),
        ("member", "reader"),
        ("ops", "observer"),
    ] {
        assert!(
            rules.contains(&(p.into(), i.into())),
            "{p} -> {i} in {rules:?}"
        );
    }

    // Refused implications: nothing implies admin; a global role cannot imply a domain role.
    let admin_role = s.role_id("admin").await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("roles/{ops}/implies/{admin_role}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("{admin_role} cannot be an implied roles.")
    );
    let other = s.create_domain("tenant-b").await;
    let dom_role = create_role(&s, &admin, json!({"name": "dr", "domain_id": other})).await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("roles/{ops}/implies/{dom_role}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("{dom_role} cannot be an implied roles.")
    );
    // A domain role may imply a global one; cycles are accepted and tokens still validate.
    let (st, _) = call(
        &s,
        Method::PUT,
        &format!("roles/{dom_role}/implies/{ops}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = call(
        &s,
        Method::PUT,
        &format!("roles/{observer}/implies/{ops}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        token_roles(&s, &admin, &token).await,
        Ok(names(&["ops", "observer"]))
    );
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("roles/{observer}/implies/{ops}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // Removing the implication takes the role out of tokens.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("roles/{ops}/implies/{observer}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("roles/{ops}/implies/{observer}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 404),
        format!("{ops} does not imply {observer}.")
    );
    assert_eq!(token_roles(&s, &admin, &token).await, Ok(names(&["ops"])));
    s.stop().await;
}

on_every_database!(implied_roles);

// ----- grants --------------------------------------------------------------------------------------

async fn project_and_domain_grants(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let project = s.create_project("service", &dom).await;
    let nova = s.create_user("nova", PW, &dom).await;
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;
    let grant_path = format!("projects/{project}/users/{nova}/roles/{member}");

    // Not granted yet: check is 404 with Keystone's message, and nova cannot scope.
    let (st, body) = call(&s, Method::GET, &grant_path, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find role assignment with role: {member}, user or group: {nova}, project, domain, or system: {project}.")
    );
    let (st, _) = call(&s, Method::PUT, &grant_path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Granting again is not an error.
    let (st, _) = call(&s, Method::PUT, &grant_path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::GET, &grant_path, &admin).await, 204);
    assert_eq!(status(&s, Method::HEAD, &grant_path, &admin).await, 204);

    let (st, body) = call(
        &s,
        Method::GET,
        &format!("projects/{project}/users/{nova}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let roles = body["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1, "{body}");
    assert_eq!(roles[0]["id"], json!(member));
    assert_eq!(roles[0]["name"], "member");
    assert_eq!(roles[0]["options"], json!({"immutable": true}));
    assert_eq!(
        roles[0]["links"]["self"],
        json!(format!("{}/v3/roles/{member}", s.base))
    );
    assert_eq!(
        body["links"]["self"],
        json!(format!(
            "{}/v3/projects/{project}/users/{nova}/roles",
            s.base
        ))
    );

    // A new token has the role and what it implies.
    let token = s.token("nova", PW, project_scope(&project)).await;
    assert_eq!(
        token_roles(&s, &admin, &token).await,
        Ok(names(&["member", "reader"]))
    );

    // A second grant, then revocations: the token loses the role, then stops validating.
    let (st, _) = call(
        &s,
        Method::PUT,
        &format!("projects/{project}/users/{nova}/roles/{reader}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, Method::DELETE, &grant_path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        token_roles(&s, &admin, &token).await,
        Ok(names(&["reader"]))
    );
    let (st, body) = call(&s, Method::DELETE, &grant_path, &admin, None).await;
    assert!(error(st, &body, 404).starts_with("Could not find role assignment with role:"));
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("projects/{project}/users/{nova}/roles/{reader}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &token).await, Err(404));

    // Unknown role, user, group, project: Keystone's 404s, before policy.
    for (path, want) in [
        (
            format!("projects/{project}/users/{nova}/roles/nope"),
            "Could not find role: nope.".to_string(),
        ),
        (
            format!("projects/{project}/users/nope/roles/{member}"),
            "Could not find user: nope.".to_string(),
        ),
        (
            format!("projects/{project}/groups/nope/roles/{member}"),
            "Could not find group: nope.".to_string(),
        ),
        (
            format!("projects/nope/users/{nova}/roles/{member}"),
            "Could not find project: nope.".to_string(),
        ),
        (
            format!("domains/nope/users/{nova}/roles/{member}"),
            "Could not find domain: nope.".to_string(),
        ),
        (
            format!("projects/{dom}/users/{nova}/roles/{member}"),
            format!("Could not find project: {dom}."),
        ),
        (
            format!("domains/{project}/users/{nova}/roles/{member}"),
            format!("Could not find domain: {project}."),
        ),
    ] {
        for m in [Method::PUT, Method::GET] {
            let (st, body) = call(&s, m.clone(), &path, &admin, None).await;
            assert_eq!(error(st, &body, 404), want, "{m} {path}");
        }
    }
    // Revoking for a user that is gone is allowed (the assignment is what is looked for).
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("projects/{project}/users/gone/roles/{member}"),
        &admin,
        None,
    )
    .await;
    assert!(
        error(st, &body, 404).contains("user or group: gone"),
        "{body}"
    );

    // Domain grants: a domain-scoped token.
    let path = format!("domains/{dom}/users/{nova}/roles/{reader}");
    let (st, _) = call(&s, Method::PUT, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::HEAD, &path, &admin).await, 204);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("domains/{dom}/users/{nova}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"][0]["id"], json!(reader), "{body}");
    let dtoken = s.token("nova", PW, domain_scope(&dom)).await;
    assert_eq!(
        token_roles(&s, &admin, &dtoken).await,
        Ok(names(&["reader"]))
    );
    // A domain grant is not inherited by the domain's projects.
    assert!(s
        .client
        .post(s.url("auth/tokens"))
        .json(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": nova, "password": PW}}}, "scope": {"project": {"id": project}}}})
        )
        .send()
        .await
        .unwrap()
        .status()
        .is_client_error());
    let (st, _) = call(&s, Method::DELETE, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &dtoken).await, Err(404));

    // Group grants reach the members.
    let group = create_group(&s, "operators", &dom).await;
    add_to_group(&s, &nova, &group).await;
    let gpath = format!("projects/{project}/groups/{group}/roles/{member}");
    let (st, _) = call(&s, Method::PUT, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::GET, &gpath, &admin).await, 204);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("projects/{project}/groups/{group}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"][0]["id"], json!(member), "{body}");
    let gtoken = s.token("nova", PW, project_scope(&project)).await;
    assert_eq!(
        token_roles(&s, &admin, &gtoken).await,
        Ok(names(&["member", "reader"]))
    );
    let dgpath = format!("domains/{dom}/groups/{group}/roles/{reader}");
    let (st, _) = call(&s, Method::PUT, &dgpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("domains/{dom}/groups/{group}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"][0]["id"], json!(reader), "{body}");
    let (st, _) = call(&s, Method::DELETE, &dgpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, Method::DELETE, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &gtoken).await, Err(404));

    // A domain-specific role only on projects of its domain.
    let other = s.create_domain("elsewhere").await;
    let drole = create_role(&s, &admin, json!({"name": "local", "domain_id": other})).await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("projects/{project}/users/{nova}/roles/{drole}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 403),
        format!("Project {project} must be in the same domain as the role {drole} being assigned.")
    );
    s.stop().await;
}

async fn inherited_grants(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.create_domain("corp").await;
    let parent = s.create_project("platform", &dom).await;
    let child = create_child(&s, &admin, "platform-db", &parent).await;
    let user = s.create_user("dba", PW, &dom).await;
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;

    // Inherited from the domain: every project of the domain, not the domain itself.
    let path =
        format!("OS-INHERIT/domains/{dom}/users/{user}/roles/{reader}/inherited_to_projects");
    assert_eq!(status(&s, Method::GET, &path, &admin).await, 404);
    let (st, _) = call(&s, Method::PUT, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::GET, &path, &admin).await, 204);
    assert_eq!(status(&s, Method::HEAD, &path, &admin).await, 204);
    // The plain domain grant is a different one.
    assert_eq!(
        status(
            &s,
            Method::GET,
            &format!("domains/{dom}/users/{user}/roles/{reader}"),
            &admin
        )
        .await,
        404
    );
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("domains/{dom}/users/{user}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"], json!([]));
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-INHERIT/domains/{dom}/users/{user}/roles/inherited_to_projects"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["roles"][0]["id"], json!(reader));
    let ctoken = s.token_in("dba", &dom, PW, project_scope(&child)).await;
    assert_eq!(
        token_roles(&s, &admin, &ctoken).await,
        Ok(names(&["reader"]))
    );
    let ptoken = s.token_in("dba", &dom, PW, project_scope(&parent)).await;
    assert_eq!(
        token_roles(&s, &admin, &ptoken).await,
        Ok(names(&["reader"]))
    );

    // Inherited from a project: its subtree only.
    let ppath =
        format!("OS-INHERIT/projects/{parent}/users/{user}/roles/{member}/inherited_to_projects");
    let (st, _) = call(&s, Method::PUT, &ppath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::GET, &ppath, &admin).await, 204);
    assert_eq!(
        token_roles(&s, &admin, &ctoken).await,
        Ok(names(&["member", "reader"]))
    );
    assert_eq!(
        token_roles(&s, &admin, &ptoken).await,
        Ok(names(&["reader"]))
    );

    // Groups too.
    let group = create_group(&s, "dbas", &dom).await;
    let gpath =
        format!("OS-INHERIT/domains/{dom}/groups/{group}/roles/{member}/inherited_to_projects");
    let (st, _) = call(&s, Method::PUT, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("OS-INHERIT/domains/{dom}/groups/{group}/roles/inherited_to_projects"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"][0]["id"], json!(member), "{body}");
    let gppath =
        format!("OS-INHERIT/projects/{parent}/groups/{group}/roles/{reader}/inherited_to_projects");
    let (st, _) = call(&s, Method::PUT, &gppath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::HEAD, &gppath, &admin).await, 204);
    let (st, _) = call(&s, Method::DELETE, &gppath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, Method::DELETE, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // Revoking takes the inherited roles away.
    let (st, _) = call(&s, Method::DELETE, &ppath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        token_roles(&s, &admin, &ctoken).await,
        Ok(names(&["reader"]))
    );
    let (st, _) = call(&s, Method::DELETE, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &ctoken).await, Err(404));
    assert_eq!(token_roles(&s, &admin, &ptoken).await, Err(404));
    let (st, body) = call(&s, Method::DELETE, &path, &admin, None).await;
    assert!(error(st, &body, 404).starts_with("Could not find role assignment"));

    // OS-INHERIT looks things up after policy: unknown ones are still 404s.
    for (p, want) in [
        (
            format!("OS-INHERIT/domains/{dom}/users/{user}/roles/nope/inherited_to_projects"),
            "Could not find role: nope.",
        ),
        (
            format!("OS-INHERIT/domains/nope/users/{user}/roles/{reader}/inherited_to_projects"),
            "Could not find domain: nope.",
        ),
        (
            format!("OS-INHERIT/projects/nope/users/{user}/roles/{reader}/inherited_to_projects"),
            "Could not find project: nope.",
        ),
        (
            format!("OS-INHERIT/domains/{dom}/users/nope/roles/{reader}/inherited_to_projects"),
            "Could not find user: nope.",
        ),
    ] {
        let (st, body) = call(&s, Method::PUT, &p, &admin, None).await;
        assert_eq!(error(st, &body, 404), want, "{p}");
    }
    s.stop().await;
}

async fn system_grants(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let auditor = s.create_user("auditor", PW, &dom).await;
    let reader = s.role_id("reader").await;
    let path = format!("system/users/{auditor}/roles/{reader}");

    let (st, body) = call(&s, Method::GET, &path, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Could not find role assignment with role: {reader}, user or group: {auditor}, project, domain, or system: system.")
    );
    let (st, _) = call(&s, Method::PUT, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::GET, &path, &admin).await, 204);
    assert_eq!(status(&s, Method::HEAD, &path, &admin).await, 204);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("system/users/{auditor}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["roles"].as_array().unwrap().len(), 1);
    assert_eq!(body["roles"][0]["name"], "reader");
    assert_eq!(
        body["links"]["self"],
        json!(format!("{}/v3/system/users/{auditor}/roles", s.base))
    );
    let token = s.token("auditor", PW, system_scope()).await;
    assert_eq!(
        token_roles(&s, &admin, &token).await,
        Ok(names(&["reader"]))
    );

    // System grants of a group reach its members.
    let group = create_group(&s, "auditors", &dom).await;
    let other = s.create_user("auditor2", PW, &dom).await;
    add_to_group(&s, &other, &group).await;
    let gpath = format!("system/groups/{group}/roles/{reader}");
    let (st, _) = call(&s, Method::PUT, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(status(&s, Method::HEAD, &gpath, &admin).await, 204);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("system/groups/{group}/roles"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["roles"][0]["id"], json!(reader));
    let gtoken = s.token("auditor2", PW, system_scope()).await;
    assert_eq!(
        token_roles(&s, &admin, &gtoken).await,
        Ok(names(&["reader"]))
    );
    let (st, _) = call(&s, Method::DELETE, &gpath, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &gtoken).await, Err(404));

    // Domain-specific roles have no place on the system.
    let drole = create_role(&s, &admin, json!({"name": "local", "domain_id": dom})).await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("system/users/{auditor}/roles/{drole}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 400),
        format!("Role {drole} is a domain-specific role. Unable to use a domain-specific role in a system assignment.")
    );
    for (p, want) in [
        (
            format!("system/users/{auditor}/roles/nope"),
            "Could not find role: nope.",
        ),
        (
            format!("system/users/nope/roles/{reader}"),
            "Could not find user: nope.",
        ),
        (
            format!("system/groups/nope/roles/{reader}"),
            "Could not find group: nope.",
        ),
    ] {
        let (st, body) = call(&s, Method::PUT, &p, &admin, None).await;
        assert_eq!(error(st, &body, 404), want, "{p}");
    }

    let (st, _) = call(&s, Method::DELETE, &path, &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &token).await, Err(404));
    let (st, body) = call(&s, Method::DELETE, &path, &admin, None).await;
    error(st, &body, 404);
    s.stop().await;
}

/// Deleting a role removes its grants (project, domain, system) and implications, and tokens
/// that held it lose it (or stop validating when it was their only role).
async fn role_deletion_cleans_up(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let project = s.create_project("jobs", &dom).await;
    let user = s.create_user("batch", PW, &dom).await;
    let other = s.create_user("cron", PW, &dom).await;
    let worker = create_role(&s, &admin, json!({"name": "worker"})).await;
    let observer = create_role(&s, &admin, json!({"name": "watcher"})).await;
    let reader = s.role_id("reader").await;
    for p in [
        format!("projects/{project}/users/{user}/roles/{worker}"),
        format!("projects/{project}/users/{other}/roles/{worker}"),
        format!("projects/{project}/users/{other}/roles/{reader}"),
        format!("domains/{dom}/users/{user}/roles/{worker}"),
        format!("system/users/{user}/roles/{worker}"),
        format!("roles/{worker}/implies/{observer}"),
    ] {
        let (st, body) = call(&s, Method::PUT, &p, &admin, None).await;
        assert!(st.is_success(), "{p}: {body}");
    }
    let only = s.token("batch", PW, project_scope(&project)).await;
    let system = s.token("batch", PW, system_scope()).await;
    let mixed = s.token("cron", PW, project_scope(&project)).await;
    assert_eq!(
        token_roles(&s, &admin, &only).await,
        Ok(names(&["worker", "watcher"]))
    );
    assert_eq!(
        token_roles(&s, &admin, &mixed).await,
        Ok(names(&["reader", "worker", "watcher"]))
    );

    let (st, _) = call(&s, Method::DELETE, &format!("roles/{worker}"), &admin, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(token_roles(&s, &admin, &only).await, Err(404));
    assert_eq!(token_roles(&s, &admin, &system).await, Err(404));
    assert_eq!(
        token_roles(&s, &admin, &mixed).await,
        Ok(names(&["reader"]))
    );
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("role_assignments?role.id={worker}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["role_assignments"], json!([]));
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("role_assignments?user.id={user}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        body["role_assignments"],
        json!([]),
        "system and domain grants went too"
    );
    let (_, body) = call(&s, Method::GET, "role_inferences", &admin, None).await;
    assert!(!body.to_string().contains(&worker), "{body}");
    // The revocation event names the role, so a token shown with it elsewhere is refused.
    let events = s.store.list_revocation_events(0, &[]).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.role_id.as_deref() == Some(worker.as_str())),
        "{events:?}"
    );
    // The watcher role itself is untouched.
    assert_eq!(
        status(&s, Method::GET, &format!("roles/{observer}"), &admin).await,
        200
    );
    s.stop().await;
}

on_every_database!(
    project_and_domain_grants,
    inherited_grants,
    system_grants,
    role_deletion_cleans_up
);

// ----- role assignments ------------------------------------------------------------------------

/// `(user or group id, scope, role id, assignment link)` of each listed assignment, sorted;
/// scope is `project:<id>`, `domain:<id>` or `system`, with `+inherited` when so marked.
fn summary(body: &Value, base: &str) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = body["role_assignments"]
        .as_array()
        .unwrap_or_else(|| panic!("role_assignments in {body}"))
        .iter()
        .map(|a| {
            let actor = a["user"]["id"]
                .as_str()
                .or(a["group"]["id"].as_str())
                .unwrap()
                .to_string();
            let sc = &a["scope"];
            let mut scope = if let Some(p) = sc["project"]["id"].as_str() {
                format!("project:{p}")
            } else if let Some(d) = sc["domain"]["id"].as_str() {
                format!("domain:{d}")
            } else {
                assert_eq!(sc["system"], json!({"all": true}), "{a}");
                "system".to_string()
            };
            if sc.get("OS-INHERIT:inherited_to").is_some() {
                assert_eq!(sc["OS-INHERIT:inherited_to"], "projects");
                scope.push_str("+inherited");
            }
            let link = a["links"]["assignment"].as_str().unwrap();
            let link = link
                .strip_prefix(base)
                .unwrap_or_else(|| panic!("{link} under {base}"));
            (
                actor,
                scope,
                a["role"]["id"].as_str().unwrap().to_string(),
                link.to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(actor: &str, scope: &str, role: &str, link: &str) -> (String, String, String, String) {
    (actor.into(), scope.into(), role.into(), link.into())
}

fn sorted(mut v: Vec<(String, String, String, String)>) -> Vec<(String, String, String, String)> {
    v.sort();
    v
}

async fn role_assignments(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let base = format!("{}/v3", s.base);
    let dom = s.create_domain("acme").await;
    let p = s.create_project("platform", &dom).await;
    let c = create_child(&s, &admin, "platform-db", &p).await;
    let alice = s.create_user("alice", PW, &dom).await;
    let bob = s.create_user("bob", PW, &dom).await;
    let g = create_group(&s, "oncall", &dom).await;
    add_to_group(&s, &bob, &g).await;
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;
    let ops = create_role(&s, &admin, json!({"name": "ops"})).await;
    let local = create_role(&s, &admin, json!({"name": "acme-op", "domain_id": dom})).await;
    for path in [
        format!("projects/{p}/users/{alice}/roles/{member}"),
        format!("OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"),
        format!("domains/{dom}/users/{bob}/roles/{ops}"),
        format!("OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"),
        format!("system/users/{alice}/roles/{reader}"),
        format!("projects/{p}/users/{alice}/roles/{local}"),
        format!("roles/{local}/implies/{ops}"),
    ] {
        let (st, body) = call(&s, Method::PUT, &path, &admin, None).await;
        assert!(st.is_success(), "{path}: {body}");
    }
    let list = |q: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let (st, body) = call(
                s,
                Method::GET,
                &format!("role_assignments?{q}"),
                &admin,
                None,
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{q}: {body}");
            body
        }
    };

    // As stored.
    let body = list(format!("user.id={alice}")).await;
    assert_eq!(
        body["links"],
        json!({"self": format!("{base}/role_assignments?user.id={alice}"), "previous": null, "next": null})
    );
    assert_eq!(
        summary(&body, &base),
        sorted(vec![
            row(
                &alice,
                &format!("project:{p}"),
                &member,
                &format!("/projects/{p}/users/{alice}/roles/{member}")
            ),
            row(
                &alice,
                &format!("project:{p}"),
                &local,
                &format!("/projects/{p}/users/{alice}/roles/{local}")
            ),
            row(
                &alice,
                &format!("project:{p}+inherited"),
                &ops,
                &format!(
                    "/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"
                )
            ),
            row(
                &alice,
                "system",
                &reader,
                &format!("/system/users/{alice}/roles/{reader}")
            ),
        ])
    );
    let first = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"]["id"] == json!(member))
        .unwrap();
    assert_eq!(
        first,
        &json!({
            "user": {"id": alice},
            "role": {"id": member},
            "scope": {"project": {"id": p}},
            "links": {"assignment": format!("{base}/projects/{p}/users/{alice}/roles/{member}")},
        })
    );
    assert_eq!(
        summary(&list(format!("group.id={g}")).await, &base),
        vec![row(
            &g,
            &format!("domain:{dom}+inherited"),
            &reader,
            &format!("/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects")
        )]
    );
    assert_eq!(
        summary(&list(format!("scope.project.id={p}")).await, &base).len(),
        3
    );
    assert_eq!(
        summary(
            &list(format!(
                "scope.project.id={p}&scope.OS-INHERIT:inherited_to=projects"
            ))
            .await,
            &base
        ),
        vec![row(
            &alice,
            &format!("project:{p}+inherited"),
            &ops,
            &format!("/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects")
        )]
    );
    assert_eq!(
        summary(&list(format!("scope.domain.id={dom}")).await, &base),
        sorted(vec![
            row(
                &bob,
                &format!("domain:{dom}"),
                &ops,
                &format!("/domains/{dom}/users/{bob}/roles/{ops}")
            ),
            row(
                &g,
                &format!("domain:{dom}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
        ])
    );
    assert_eq!(
        summary(&list(format!("role.id={ops}")).await, &base),
        sorted(vec![
            row(
                &alice,
                &format!("project:{p}+inherited"),
                &ops,
                &format!(
                    "/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"
                )
            ),
            row(
                &bob,
                &format!("domain:{dom}"),
                &ops,
                &format!("/domains/{dom}/users/{bob}/roles/{ops}")
            ),
        ])
    );
    assert_eq!(
        summary(
            &list(format!("scope.system=all&user.id={alice}")).await,
            &base
        ),
        vec![row(
            &alice,
            "system",
            &reader,
            &format!("/system/users/{alice}/roles/{reader}")
        )]
    );
    let everything = summary(&list(String::new()).await, &base);
    let admin_system = s.role_id("admin").await;
    assert!(
        everything
            .iter()
            .any(|r| r.0 == s.admin_user_id && r.1 == "system" && r.2 == admin_system),
        "{everything:?}"
    );
    assert!(everything.len() >= 7, "{everything:?}");

    // Effective: groups expanded to members, inheritance onto projects, implied roles added,
    // domain-specific roles only through what they imply, no system grants.
    let body = list(format!("effective&user.id={bob}")).await;
    assert_eq!(
        summary(&body, &base),
        sorted(vec![
            row(
                &bob,
                &format!("domain:{dom}"),
                &ops,
                &format!("/domains/{dom}/users/{bob}/roles/{ops}")
            ),
            row(
                &bob,
                &format!("project:{p}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
            row(
                &bob,
                &format!("project:{c}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
        ])
    );
    let via_group = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"]["project"]["id"] == json!(c))
        .unwrap();
    assert_eq!(
        via_group["links"]["membership"],
        json!(format!("{base}/groups/{g}/users/{bob}"))
    );

    let body = list(format!("effective&user.id={alice}")).await;
    assert_eq!(
        summary(&body, &base),
        sorted(vec![
            row(
                &alice,
                &format!("project:{p}"),
                &member,
                &format!("/projects/{p}/users/{alice}/roles/{member}")
            ),
            row(
                &alice,
                &format!("project:{p}"),
                &reader,
                &format!("/projects/{p}/users/{alice}/roles/{member}")
            ),
            row(
                &alice,
                &format!("project:{p}"),
                &ops,
                &format!("/projects/{p}/users/{alice}/roles/{local}")
            ),
            row(
                &alice,
                &format!("project:{c}+inherited"),
                &ops,
                &format!(
                    "/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"
                )
            ),
        ])
    );
    let implied = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"]["id"] == json!(reader))
        .unwrap();
    assert_eq!(
        implied["links"]["prior_role"],
        json!(format!("{base}/prior_role/{reader}/implies/{member}"))
    );

    assert_eq!(
        summary(
            &list(format!("effective&scope.project.id={c}")).await,
            &base
        ),
        sorted(vec![
            row(
                &alice,
                &format!("project:{c}+inherited"),
                &ops,
                &format!(
                    "/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"
                )
            ),
            row(
                &bob,
                &format!("project:{c}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
        ])
    );
    assert_eq!(
        summary(
            &list(format!("effective&scope.project.id={p}&include_subtree")).await,
            &base
        ),
        sorted(vec![
            row(
                &alice,
                &format!("project:{p}"),
                &member,
                &format!("/projects/{p}/users/{alice}/roles/{member}")
            ),
            row(
                &alice,
                &format!("project:{p}"),
                &reader,
                &format!("/projects/{p}/users/{alice}/roles/{member}")
            ),
            row(
                &alice,
                &format!("project:{p}"),
                &ops,
                &format!("/projects/{p}/users/{alice}/roles/{local}")
            ),
            row(
                &alice,
                &format!("project:{c}+inherited"),
                &ops,
                &format!(
                    "/OS-INHERIT/projects/{p}/users/{alice}/roles/{ops}/inherited_to_projects"
                )
            ),
            row(
                &bob,
                &format!("project:{p}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
            row(
                &bob,
                &format!("project:{c}+inherited"),
                &reader,
                &format!(
                    "/OS-INHERIT/domains/{dom}/groups/{g}/roles/{reader}/inherited_to_projects"
                )
            ),
        ])
    );
    assert_eq!(
        summary(
            &list(format!("effective&user.id={alice}&role.id={ops}")).await,
            &base
        )
        .len(),
        2
    );
    // The subtree, as stored.
    assert_eq!(
        summary(
            &list(format!("scope.project.id={p}&include_subtree=1")).await,
            &base
        )
        .len(),
        3
    );

    // Names: users, groups, projects, domains and domain-specific roles with their domains.
    let body = list(format!("user.id={alice}&include_names")).await;
    let with_local = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"]["id"] == json!(local))
        .unwrap();
    assert_eq!(
        with_local,
        &json!({
            "user": {"id": alice, "name": "alice", "domain": {"id": dom, "name": "acme"}},
            "role": {"id": local, "name": "acme-op", "domain": {"id": dom, "name": "acme"}},
            "scope": {"project": {"id": p, "name": "platform", "domain": {"id": dom, "name": "acme"}}},
            "links": {"assignment": format!("{base}/projects/{p}/users/{alice}/roles/{local}")},
        })
    );
    let sys = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"].get("system").is_some())
        .unwrap();
    assert_eq!(sys["role"], json!({"id": reader, "name": "reader"}));
    let body = list(format!("scope.domain.id={dom}&include_names")).await;
    let grp = body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a.get("group").is_some())
        .unwrap();
    assert_eq!(
        grp["group"],
        json!({"id": g, "name": "oncall", "domain": {"id": dom, "name": "acme"}})
    );
    assert_eq!(grp["scope"]["domain"], json!({"id": dom, "name": "acme"}));

    // Refused combinations.
    for (q, want) in [
        (format!("user.id={alice}&group.id={g}"), "Specify a user or group, not both"),
        (format!("scope.project.id={p}&scope.domain.id={dom}"), "Specify a domain or project, not both"),
        (format!("scope.system=all&scope.domain.id={dom}"), "Specify system or domain, not both"),
        (format!("scope.system=all&scope.project.id={p}"), "Specify system or project, not both"),
        (format!("effective&group.id={g}"), "Combining effective and group filter will always result in an empty list."),
        (format!("effective&scope.domain.id={dom}&scope.OS-INHERIT:inherited_to=projects"), "Combining effective, domain and inherited filters will always result in an empty list."),
        ("include_subtree".to_string(), "'scope.project.id' is a dependency of 'include_subtree'"),
        ("role.id=a%20b".to_string(), "role.id"),
        (
            "scope.project.id=&include_subtree".to_string(),
            "scope.project.id",
        ),
    ] {
        let (st, body) = call(&s, Method::GET, &format!("role_assignments?{q}"), &admin, None).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(want), "{q}: {msg}");
    }
    let (st, body) = call(
        &s,
        Method::GET,
        "role_assignments?scope.project.id=nope&include_subtree",
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find project: nope.");

    // A domain reader sees the assignments of its own domain only.
    let dreader = s.create_user("dreader", PW, &dom).await;
    s.grant_domain(&dreader, &dom, "reader").await;
    let dtoken = s.token_in("dreader", &dom, PW, domain_scope(&dom)).await;
    let (st, body) = call(&s, Method::GET, "role_assignments", &dtoken, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let seen = summary(&body, &base);
    assert!(!seen.is_empty());
    for r in &seen {
        assert!(
            r.1.starts_with(&format!("domain:{dom}")) || r.1.starts_with(&format!("project:{p}")),
            "{r:?} outside the domain"
        );
    }
    assert!(seen.iter().any(|r| r.0 == dreader));
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("role_assignments?scope.project.id={p}&include_subtree"),
        &dtoken,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    s.stop().await;
}

on_every_database!(role_assignments);

// ----- policy per persona ------------------------------------------------------------------------

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// Run by the admin before each attempt (to have something to revoke).
    setup: Option<(Method, String)>,
    /// Run by the admin after a successful attempt (to undo it).
    undo: Option<(Method, String)>,
    /// The rule named in a 403.
    rule: &'static str,
    /// Statuses for: system admin, project admin, domain admin, domain manager, system reader,
    /// project member, project reader.
    want: [u16; 7],
}

fn case(
    what: &'static str,
    method: Method,
    path: String,
    rule: &'static str,
    want: [u16; 7],
) -> Case {
    Case {
        what,
        method,
        path,
        body: None,
        setup: None,
        undo: None,
        rule,
        want,
    }
}

impl Case {
    fn body(mut self, b: Value) -> Case {
        self.body = Some(b);
        self
    }

    /// Before each attempt, the admin calls the same path with `m`.
    fn setup(mut self, m: Method) -> Case {
        self.setup = Some((m, self.path.clone()));
        self
    }

    /// After a successful attempt, the admin calls the same path with `m`.
    fn undo(mut self, m: Method) -> Case {
        self.undo = Some((m, self.path.clone()));
        self
    }
}

const PERSONAS: [&str; 7] = [
    "system admin",
    "project admin",
    "domain admin",
    "domain manager",
    "system reader",
    "project member",
    "project reader",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_per_persona() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let admin = s.admin_token().await;
    let p = Personas::build(&s).await;
    let (tenant, demo) = (&p.domain_id, &p.project_id);
    let (sreader, reader_user) = (&p.system_reader_id, &p.project_reader_id);
    let tp = s.create_project("tenant-app", tenant).await;
    let tu = s.create_user("tenant-user", PW, tenant).await;
    let tokens = [
        p.system_admin.clone(),
        p.project_admin.clone(),
        p.domain_admin.clone(),
        p.domain_manager.clone(),
        p.system_reader.clone(),
        p.project_member.clone(),
        p.project_reader.clone(),
    ];
    let reader = s.role_id("reader").await;
    let member = s.role_id("member").await;
    let admin_role = s.role_id("admin").await;
    let ops = create_role(&s, &admin, json!({"name": "ops"})).await;
    let tenant_role = create_role(&s, &admin, json!({"name": "tr", "domain_id": tenant})).await;
    // A standing grant to check and list.
    let standing = format!("projects/{tp}/users/{tu}/roles/{reader}");
    assert_eq!(status(&s, Method::PUT, &standing, &admin).await, 204);

    use Method as M;
    #[rustfmt::skip]
    let cases = vec![
        case("list roles", M::GET, "roles".into(), "identity:list_roles", [200, 200, 200, 200, 200, 403, 403]),
        case("show a role a domain manager may hand out", M::GET, format!("roles/{reader}"), "identity:get_role", [200, 200, 200, 200, 200, 403, 403]),
        case("show the admin role", M::GET, format!("roles/{admin_role}"), "identity:get_role", [200, 200, 200, 403, 200, 403, 403]),
        case("create a role", M::POST, "roles".into(), "identity:create_role", [201, 201, 403, 403, 403, 403, 403]),
        case("update a role", M::PATCH, format!("roles/{ops}"), "identity:update_role", [200, 200, 403, 403, 403, 403, 403])
            .body(json!({"role": {"description": "d"}})),
        case("list domain roles", M::GET, format!("roles?domain_id={tenant}"), "identity:list_domain_roles", [200, 200, 403, 403, 200, 403, 403]),
        case("show a domain role", M::GET, format!("roles/{tenant_role}"), "identity:get_domain_role", [200, 200, 403, 403, 200, 403, 403]),
        case("update a domain role", M::PATCH, format!("roles/{tenant_role}"), "identity:update_domain_role", [200, 200, 403, 403, 403, 403, 403])
            .body(json!({"role": {"description": "d"}})),
        case("role inferences", M::GET, "role_inferences".into(), "identity:list_role_inference_rules", [200, 200, 403, 403, 200, 403, 403]),
        case("list implied roles", M::GET, format!("roles/{admin_role}/implies"), "identity:list_implied_roles", [200, 200, 403, 403, 200, 403, 403]),
        case("show an implied role", M::GET, format!("roles/{member}/implies/{reader}"), "identity:get_implied_role", [200, 200, 403, 403, 200, 403, 403]),
        case("check an implied role", M::HEAD, format!("roles/{member}/implies/{reader}"), "identity:check_implied_role", [204, 204, 403, 403, 204, 403, 403]),
        case("create an implied role", M::PUT, format!("roles/{ops}/implies/{reader}"), "identity:create_implied_role", [201, 201, 403, 403, 403, 403, 403])
            .undo(M::DELETE),
        case("delete an implied role", M::DELETE, format!("roles/{ops}/implies/{reader}"), "identity:delete_implied_role", [204, 204, 403, 403, 403, 403, 403])
            .setup(M::PUT),
        case("grant member in the manager's domain", M::PUT, format!("projects/{tp}/users/{tu}/roles/{member}"), "identity:create_grant", [204, 204, 204, 204, 403, 403, 403])
            .undo(M::DELETE),
        case("grant admin in the manager's domain", M::PUT, format!("projects/{tp}/users/{tu}/roles/{admin_role}"), "identity:create_grant", [204, 204, 204, 403, 403, 403, 403])
            .undo(M::DELETE),
        case("grant a custom role in the manager's domain", M::PUT, format!("projects/{tp}/users/{tu}/roles/{ops}"), "identity:create_grant", [204, 204, 204, 403, 403, 403, 403])
            .undo(M::DELETE),
        case("grant outside the manager's domain", M::PUT, format!("projects/{demo}/users/{reader_user}/roles/{member}"), "identity:create_grant", [204, 204, 204, 403, 403, 403, 403])
            .undo(M::DELETE),
        case("grant on the manager's domain", M::PUT, format!("domains/{tenant}/users/{tu}/roles/{member}"), "identity:create_grant", [204, 204, 204, 204, 403, 403, 403])
            .undo(M::DELETE),
        case("inherited grant on the manager's domain", M::PUT, format!("OS-INHERIT/domains/{tenant}/users/{tu}/roles/{member}/inherited_to_projects"), "identity:create_grant", [204, 204, 204, 204, 403, 403, 403])
            .undo(M::DELETE),
        case("revoke in the manager's domain", M::DELETE, format!("projects/{tp}/users/{tu}/roles/{member}"), "identity:revoke_grant", [204, 204, 204, 204, 403, 403, 403])
            .setup(M::PUT),
        case("check a grant", M::GET, standing.clone(), "identity:check_grant", [204, 204, 204, 204, 204, 403, 403]),
        case("list grants", M::GET, format!("projects/{tp}/users/{tu}/roles"), "identity:list_grants", [200, 200, 200, 200, 200, 403, 403]),
        case("system grant", M::PUT, format!("system/users/{tu}/roles/{reader}"), "identity:create_system_grant_for_user", [204, 204, 403, 403, 403, 403, 403])
            .undo(M::DELETE),
        case("revoke a system grant", M::DELETE, format!("system/users/{tu}/roles/{reader}"), "identity:revoke_system_grant_for_user", [204, 204, 403, 403, 403, 403, 403])
            .setup(M::PUT),
        case("list system grants", M::GET, format!("system/users/{sreader}/roles"), "identity:list_system_grants_for_user", [200, 200, 403, 403, 200, 403, 403]),
        case("check a system grant", M::GET, format!("system/users/{sreader}/roles/{reader}"), "identity:check_system_grant_for_user", [204, 204, 403, 403, 204, 403, 403]),
        case("list role assignments", M::GET, "role_assignments".into(), "identity:list_role_assignments", [200, 200, 200, 200, 200, 403, 403]),
        case("list role assignments of a tree", M::GET, format!("role_assignments?scope.project.id={tp}&include_subtree"), "identity:list_role_assignments_for_tree", [200, 200, 200, 200, 200, 403, 403]),
    ];
    for case in &cases {
        for (i, token) in tokens.iter().enumerate() {
            if let Some((m, p)) = &case.setup {
                let st = status(&s, m.clone(), p, &admin).await;
                // 409: still there from a refused attempt.
                assert!((200..300).contains(&st) || st == 409, "setup {p}: {st}");
            }
            let body = match (&case.body, &case.method) {
                (None, &Method::POST) => Some(json!({"role": {"name": format!("made-by-{i}")}})),
                (b, _) => b.clone(),
            };
            let resp = s
                .client
                .request(case.method.clone(), s.url(&case.path))
                .header("x-auth-token", token);
            let resp = match body {
                Some(b) => resp.json(&b),
                None => resp,
            };
            let resp = resp.send().await.unwrap();
            let st = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert_eq!(st, case.want[i], "{} as {}: {text}", case.what, PERSONAS[i]);
            if st == 403 && case.method != Method::HEAD {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    body["error"]["message"],
                    json!(format!(
                        "You are not authorized to perform the requested action: {}.",
                        case.rule
                    )),
                    "{} as {}",
                    case.what,
                    PERSONAS[i]
                );
            }
            if (200..300).contains(&st) {
                if let Some((m, p)) = &case.undo {
                    let st = status(&s, m.clone(), p, &admin).await;
                    assert!((200..300).contains(&st), "undo {p}: {st}");
                }
            }
        }
    }

    // Deleting roles: admins only (the domain admin's scope is not allowed for it).
    for (i, token) in tokens.iter().enumerate().skip(2) {
        let (st, body) = call(&s, Method::DELETE, &format!("roles/{ops}"), token, None).await;
        assert_eq!(
            error(st, &body, 403),
            "You are not authorized to perform the requested action: identity:delete_role.",
            "{}",
            PERSONAS[i]
        );
    }
    assert_eq!(
        status(&s, Method::DELETE, &format!("roles/{ops}"), &tokens[0]).await,
        204
    );
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("roles/{tenant_role}"),
        &tokens[3],
        None,
    )
    .await;
    assert!(error(st, &body, 403).ends_with("identity:delete_domain_role."));
    assert_eq!(
        status(
            &s,
            Method::DELETE,
            &format!("roles/{tenant_role}"),
            &tokens[1]
        )
        .await,
        204
    );

    // Without a token: 401 everywhere.
    for path in ["roles", "role_assignments", "role_inferences", &standing] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    s.stop().await;
}

/// `GET /v3/role_assignments?include_names` at the size the issue names (1,000 users, 100
/// projects, 5,000 assignments). Run it with `--run-ignored only`; it prints the latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: fills a database with 5,000 assignments"]
async fn role_assignments_at_scale() {
    let dialect = match std::env::var("BATON_SCALE_DB").as_deref() {
        Ok("postgres") => Dialect::Postgres,
        Ok("mariadb") => Dialect::MySql,
        _ => Dialect::Sqlite,
    };
    let s = IdentityServer::start(dialect).await;
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let roles = [
        s.role_id("member").await,
        s.role_id("reader").await,
        s.role_id("manager").await,
        s.role_id("service").await,
        s.create_role("ops").await,
    ];
    let mut projects = Vec::new();
    for i in 0..100 {
        projects.push(s.create_project(&format!("project-{i:03}"), &dom).await);
    }
    let hash = baton_server::password::hash_password(
        PW,
        baton_config::PasswordHashAlgorithm::Bcrypt,
        Some(4),
    )
    .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let mut users = Vec::new();
    for i in 0..1000 {
        let id = baton_store::new_id();
        s.store
            .create_local_user(
                &baton_store::User {
                    id: id.clone(),
                    name: format!("user-{i:04}"),
                    domain_id: dom.clone(),
                    enabled: true,
                    default_project_id: None,
                    extra: None,
                    created_at: None,
                },
                Some(&hash),
                now,
            )
            .await
            .unwrap();
        users.push(id);
    }
    for (i, u) in users.iter().enumerate() {
        for k in 0..5 {
            s.store
                .create_assignment(&baton_store::Assignment {
                    kind: baton_store::AssignmentType::UserProject,
                    actor_id: u.clone(),
                    target_id: projects[(i * 7 + k * 13) % 100].clone(),
                    role_id: roles[(i + k) % roles.len()].clone(),
                    inherited: false,
                })
                .await
                .unwrap();
        }
    }
    s.state.tokens.invalidate_caches();
    let mut times = Vec::new();
    for _ in 0..7 {
        // Until the last byte of the body; parsing it is the client's time.
        let t = std::time::Instant::now();
        let resp = s
            .client
            .get(s.url("role_assignments?include_names"))
            .header("x-auth-token", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.bytes().await.unwrap();
        times.push(t.elapsed());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let list = body["role_assignments"].as_array().unwrap();
        // Ours plus bootstrap's two (admin on its project and on the system).
        assert_eq!(list.len(), 5002);
        assert!(list
            .iter()
            .all(|a| a["user"]["name"].as_str().is_some_and(|n| !n.is_empty())));
    }
    times.sort();
    println!(
        "{dialect:?}: GET /v3/role_assignments?include_names, 5,002 assignments: min {:?}, median {:?}, max {:?}",
        times[0], times[3], times[6]
    );
    let t = std::time::Instant::now();
    let (st, body) = call(
        &s,
        Method::GET,
        &format!(
            "role_assignments?user.id={}&scope.project.id={}&include_names",
            users[0], projects[0]
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    println!(
        "{dialect:?}: one user on one project with names: {:?}",
        t.elapsed()
    );
    s.stop().await;
}
