//! The identity model's rules seen through every endpoint that uses them (issue 11): where a
//! role assignment takes effect must be the same for token scoping, `/v3/auth/projects`,
//! `/v3/auth/domains` and `/v3/users/{id}/projects`. The same scenario runs against the real
//! Keystone in `tests/interop/test_cross_keystone.py::test_effective_scopes_agree`.

use std::collections::BTreeSet;

use baton_store::Dialect;
use baton_testkit::{call, on_every_database, project_scope, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Heir-Secret-9xQ";

async fn ids_of(s: &IdentityServer, path: &str, token: &str, key: &str) -> BTreeSet<String> {
    let (st, body) = call(s, Method::GET, path, token, None).await;
    assert_eq!(st, StatusCode::OK, "{path}: {body}");
    body[key]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

async fn effective_scopes_agree(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let post = |path: &'static str, body: Value| {
        let (s, admin) = (&s, admin.clone());
        async move {
            let (st, body) = call(s, Method::POST, path, &admin, Some(body)).await;
            assert_eq!(st, StatusCode::CREATED, "{path}: {body}");
            body
        }
    };
    let put = |path: String| {
        let (s, admin) = (&s, admin.clone());
        async move {
            let (st, body) = call(s, Method::PUT, &path, &admin, None).await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{path}: {body}");
        }
    };
    let project = |name: &'static str, extra: Value| {
        let post = &post;
        async move {
            let mut body = json!({"project": {"name": name, "domain_id": "default"}});
            for (k, v) in extra.as_object().expect("object") {
                body["project"][k] = v.clone();
            }
            post("projects", body).await["project"]["id"]
                .as_str()
                .expect("id")
                .to_string()
        }
    };
    let user = s.create_user("heir", PW, "default").await;
    s.add_secrets(&[PW]);
    let dom = post("domains", json!({"domain": {"name": "elsewhere"}})).await["domain"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let parent = project("parent", json!({})).await;
    let child = project("child", json!({"parent_id": parent})).await;
    let grandchild = project("grandchild", json!({"parent_id": child})).await;
    let direct = project("direct", json!({})).await;
    let in_dom = project("indom", json!({"domain_id": dom})).await;
    let drole_only = project("droleonly", json!({})).await;
    let member = s.role_id("member").await;
    let drole = post(
        "roles",
        json!({"role": {"name": "drole", "domain_id": "default"}}),
    )
    .await["role"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    put(format!(
        "OS-INHERIT/projects/{parent}/users/{user}/roles/{member}/inherited_to_projects"
    ))
    .await;
    put(format!(
        "OS-INHERIT/domains/{dom}/users/{user}/roles/{member}/inherited_to_projects"
    ))
    .await;
    put(format!("projects/{direct}/users/{user}/roles/{member}")).await;
    put(format!("domains/{dom}/users/{user}/roles/{member}")).await;
    put(format!("projects/{drole_only}/users/{user}/roles/{drole}")).await;
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("projects/{direct}"),
        &admin,
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    let mine = s.token("heir", PW, json!("unscoped")).await;
    let listed = ids_of(&s, "auth/projects", &mine, "projects").await;
    // Keystone lists projects reached through inheritance and disabled ones, and leaves out a
    // project whose only role is domain-specific.
    let want: BTreeSet<String> = [&child, &grandchild, &direct, &in_dom]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(listed, want);
    assert_eq!(
        ids_of(&s, &format!("users/{user}/projects"), &admin, "projects").await,
        want
    );
    assert_eq!(
        ids_of(&s, "auth/domains", &mine, "domains").await,
        BTreeSet::from([dom.clone()])
    );
    // Every listed enabled project can be the scope of a token.
    for p in [&child, &grandchild, &in_dom] {
        s.token("heir", PW, project_scope(p)).await;
    }
    s.stop().await;
}

on_every_database!(effective_scopes_agree);
