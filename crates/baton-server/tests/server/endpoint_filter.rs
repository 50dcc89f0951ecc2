//! Endpoint filtering (`OS-EP-FILTER`) over HTTP on every database: who may read and write
//! endpoint groups and associations under Keystone's default policy, the 404s and 409s, and what
//! the associations do to a project-scoped token's catalog (filtered at once on this node,
//! including for a token validated before the change). `tests/interop/test_endpoint_filter.py`
//! compares the same requests with Keystone 30.

use baton_testkit::{call, error, on_every_database, project_scope, IdentityServer, Personas};
use reqwest::Method;
use serde_json::json;

/// The interfaces of the catalog's `compute` service in a token of `user` scoped to `project`.
async fn compute_interfaces(s: &IdentityServer, token: &str) -> Vec<String> {
    let (_, body) = s.validation(token).await;
    let mut out: Vec<String> = body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|svc| svc["type"] == "compute")
        .flat_map(|svc| svc["endpoints"].as_array().unwrap().clone())
        .map(|e| e["interface"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn endpoint_filtering(dialect: baton_testkit::DbDialect) {
    let s = IdentityServer::start(dialect).await;
    let p = Personas::build(&s).await;
    let admin = p.system_admin.clone();
    let (st, body) = call(
        &s,
        Method::POST,
        "services",
        &admin,
        Some(json!({"service": {"type": "compute", "name": "nova"}})),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let service = body["service"]["id"].as_str().unwrap().to_string();
    let mut endpoints = Vec::new();
    for iface in ["public", "internal"] {
        let e = json!({"endpoint": {"service_id": service, "interface": iface, "url": format!("http://nova/{iface}")}});
        let (st, body) = call(&s, Method::POST, "endpoints", &admin, Some(e)).await;
        assert_eq!(st.as_u16(), 201, "{body}");
        endpoints.push(body["endpoint"]["id"].as_str().unwrap().to_string());
    }
    let (public, internal) = (endpoints[0].clone(), endpoints[1].clone());
    let project = p.project_id.clone();
    let member_token = p.project_member.clone();
    assert_eq!(
        compute_interfaces(&s, &member_token).await,
        ["internal", "public"]
    );

    // Endpoint groups: admins write, system readers read, project members do neither.
    let group_body =
        json!({"endpoint_group": {"name": "internal", "filters": {"interface": "internal"}}});
    let (st, _) = call(
        &s,
        Method::POST,
        "OS-EP-FILTER/endpoint_groups",
        &p.project_member,
        Some(group_body.clone()),
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (st, body) = call(
        &s,
        Method::POST,
        "OS-EP-FILTER/endpoint_groups",
        &admin,
        Some(group_body),
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{body}");
    let group = body["endpoint_group"]["id"].as_str().unwrap().to_string();
    assert!(body["endpoint_group"]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v3/OS-EP-FILTER/endpoint_groups/{group}")));
    let (st, body) = call(
        &s,
        Method::POST,
        "OS-EP-FILTER/endpoint_groups",
        &admin,
        Some(json!({"endpoint_group": {"name": "x", "filters": {}}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 400),
        "filters field is required and cannot be empty"
    );
    let (st, _) = call(
        &s,
        Method::GET,
        "OS-EP-FILTER/endpoint_groups",
        &p.system_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200);
    let (st, _) = call(
        &s,
        Method::GET,
        "OS-EP-FILTER/endpoint_groups",
        &p.project_reader,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 403);
    let (st, body) = call(
        &s,
        Method::GET,
        "OS-EP-FILTER/endpoint_groups/nosuch",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        error(st, &body, 404),
        "Could not find Endpoint Group: nosuch."
    );

    // A group on the project: its token's catalog narrows at once, cached validation included.
    let assoc = format!("OS-EP-FILTER/endpoint_groups/{group}/projects/{project}");
    let (st, _) = call(&s, Method::PUT, &assoc, &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, body) = call(&s, Method::PUT, &assoc, &admin, None).await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store project_endpoint_group - Duplicate entry."
    );
    assert_eq!(compute_interfaces(&s, &member_token).await, ["internal"]);
    let fresh = s
        .token(
            "pmember",
            baton_testkit::PERSONA_PASSWORD,
            project_scope(&project),
        )
        .await;
    assert_eq!(compute_interfaces(&s, &fresh).await, ["internal"]);
    // A token of no project keeps the whole catalog.
    assert_eq!(
        compute_interfaces(&s, &p.system_admin).await,
        ["internal", "public"]
    );

    // An endpoint on the project adds to what its groups give.
    let direct = format!("OS-EP-FILTER/projects/{project}/endpoints/{public}");
    let (st, _) = call(&s, Method::GET, &direct, &admin, None).await;
    assert_eq!(st.as_u16(), 404);
    let (st, _) = call(&s, Method::PUT, &direct, &p.project_admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, _) = call(&s, Method::GET, &direct, &p.system_reader, None).await;
    assert_eq!(st.as_u16(), 204);
    assert_eq!(
        compute_interfaces(&s, &member_token).await,
        ["internal", "public"]
    );
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("OS-EP-FILTER/projects/{project}/endpoints"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 200);
    // The internal group's endpoints (the identity service's internal one among them) and
    // the public endpoint of its own.
    let listed: Vec<(&str, &str)> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["interface"].as_str().unwrap()))
        .collect();
    assert!(listed.contains(&(public.as_str(), "public")), "{body}");
    assert!(listed.contains(&(internal.as_str(), "internal")), "{body}");
    assert!(
        listed
            .iter()
            .all(|(id, iface)| *iface == "internal" || *id == public),
        "{body}"
    );
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("OS-EP-FILTER/endpoints/{public}/projects"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["projects"][0]["id"], project.as_str());
    let (st, body) = call(
        &s,
        Method::PUT,
        "OS-EP-FILTER/projects/nosuch/endpoints/nosuch",
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find endpoint: nosuch.");

    // Removing both restores the whole catalog; deleting a group removes its associations.
    let (st, _) = call(&s, Method::DELETE, &direct, &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, body) = call(&s, Method::DELETE, &direct, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("Endpoint {public} not found in project {project}")
    );
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("OS-EP-FILTER/endpoint_groups/{group}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 204);
    let (st, _) = call(&s, Method::GET, &assoc, &admin, None).await;
    assert_eq!(st.as_u16(), 404);
    assert_eq!(
        compute_interfaces(&s, &member_token).await,
        ["internal", "public"]
    );
    s.stop().await;
}

on_every_database!(endpoint_filtering);
