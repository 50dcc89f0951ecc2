//! What the persona matrix against the real Keystone (`tests/interop/test_persona_matrix.py`)
//! found, pinned here: the domain list a domain-scoped token sees, and the routes where a caller
//! the policy refuses must get 403 whether or not the target exists (Keystone looks these
//! targets up before asking policy and answers 404 to anyone; Baton answers as the policy
//! does). None of this depends on the database, so SQLite only.

use std::collections::BTreeSet;

use baton_store::{Dialect, Group};
use baton_testkit::{call, error, IdentityServer, Personas, PERSONA_DOMAIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn denied(status: StatusCode, body: &Value, rule: &str) {
    assert_eq!(
        error(status, body, 403),
        format!("You are not authorized to perform the requested action: {rule}.")
    );
}

async fn status(s: &IdentityServer, method: Method, path: &str, token: &str) -> u16 {
    call(s, method, path, token, None).await.0.as_u16()
}

fn ids(body: &Value, key: &str) -> BTreeSet<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}: {body}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_list_is_the_tokens_own_domain() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;
    let default = s.default_domain_id.clone();
    let both = BTreeSet::from([default.clone(), p.domain_id.clone()]);

    // A domain-scoped token lists its own domain only, whatever it filters on.
    for token in [&p.domain_admin, &p.domain_manager, &p.domain_reader] {
        let (st, body) = call(&s, Method::GET, "domains", token, None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(ids(&body, "domains"), BTreeSet::from([p.domain_id.clone()]));
        let (_, body) = call(&s, Method::GET, "domains?name=Default", token, None).await;
        assert_eq!(ids(&body, "domains"), BTreeSet::new());
        let path = format!("domains?name={PERSONA_DOMAIN}");
        let (_, body) = call(&s, Method::GET, &path, token, None).await;
        assert_eq!(ids(&body, "domains"), BTreeSet::from([p.domain_id.clone()]));
    }
    // System readers and admins see every domain; a project member none.
    for token in [&p.system_admin, &p.system_reader, &p.project_admin] {
        let (st, body) = call(&s, Method::GET, "domains", token, None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(ids(&body, "domains"), both);
    }
    let (st, body) = call(&s, Method::GET, "domains", &p.project_member, None).await;
    denied(st, &body, "identity:list_domains");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_missing_group_is_refused_before_it_is_looked_up() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;
    for token in [
        &p.domain_manager,
        &p.domain_reader,
        &p.system_reader,
        &p.project_member,
    ] {
        let (st, body) = call(&s, Method::DELETE, "groups/nope", token, None).await;
        denied(st, &body, "identity:delete_group");
    }
    for token in [&p.system_admin, &p.domain_admin, &p.project_admin] {
        let (st, body) = call(&s, Method::DELETE, "groups/nope", token, None).await;
        assert_eq!(error(st, &body, 404), "Could not find group: nope.");
    }
    // An existing group: the domain manager may delete it in its own domain only.
    let mut groups = Vec::new();
    for dom in [p.domain_id.clone(), s.default_domain_id.clone()] {
        let id = baton_store::new_id();
        s.store
            .create_group(&Group {
                id: id.clone(),
                name: "pm-g".into(),
                domain_id: dom,
                description: None,
                extra: None,
            })
            .await
            .expect("create group");
        groups.push(id);
    }
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("groups/{}", groups[1]),
        &p.domain_manager,
        None,
    )
    .await;
    denied(st, &body, "identity:delete_group");
    let path = format!("groups/{}", groups[0]);
    assert_eq!(
        status(&s, Method::DELETE, &path, &p.domain_manager).await,
        204
    );
    assert_eq!(status(&s, Method::GET, &path, &p.system_admin).await, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_roles_are_404_only_to_callers_the_policy_allows() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;
    let member = s.role_id("member").await;

    // GET/HEAD /v3/roles/{id}: identity:get_role, which system readers and admins of any
    // scope pass; a domain manager only for the roles it manages, so not for a missing one.
    for token in [&p.domain_manager, &p.domain_reader, &p.project_member] {
        let (st, body) = call(&s, Method::GET, "roles/nope", token, None).await;
        denied(st, &body, "identity:get_role");
        assert_eq!(status(&s, Method::HEAD, "roles/nope", token).await, 403);
    }
    for token in [
        &p.system_admin,
        &p.system_reader,
        &p.domain_admin,
        &p.project_admin,
    ] {
        let (st, body) = call(&s, Method::GET, "roles/nope", token, None).await;
        assert_eq!(error(st, &body, 404), "Could not find role: nope.");
        assert_eq!(status(&s, Method::HEAD, "roles/nope", token).await, 404);
    }
    // The domain manager may see the roles it may grant.
    let path = format!("roles/{member}");
    assert_eq!(status(&s, Method::GET, &path, &p.domain_manager).await, 200);

    // PATCH/DELETE: identity:update_role/delete_role, admins of system or project scope only.
    let body = json!({"role": {"description": "probe"}});
    for (method, rule) in [
        (Method::PATCH, "identity:update_role"),
        (Method::DELETE, "identity:delete_role"),
    ] {
        for token in [
            &p.system_reader,
            &p.domain_admin,
            &p.domain_manager,
            &p.project_member,
        ] {
            let (st, resp) =
                call(&s, method.clone(), "roles/nope", token, Some(body.clone())).await;
            denied(st, &resp, rule);
        }
        for token in [&p.system_admin, &p.project_admin] {
            let (st, resp) =
                call(&s, method.clone(), "roles/nope", token, Some(body.clone())).await;
            assert_eq!(error(st, &resp, 404), "Could not find role: nope.");
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implied_roles_of_missing_roles_are_404_only_to_callers_the_policy_allows() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;
    let prior = s.create_role("pm-prior").await;

    // Reads: system readers and admins of system or project scope.
    let reads = [
        (
            "roles/nope/implies".to_string(),
            "identity:list_implied_roles",
        ),
        (
            format!("roles/{member}/implies/nope"),
            "identity:get_implied_role",
        ),
        (
            format!("roles/nope/implies/{reader}"),
            "identity:get_implied_role",
        ),
    ];
    for (path, rule) in &reads {
        for token in [&p.domain_admin, &p.domain_reader, &p.project_member] {
            let (st, body) = call(&s, Method::GET, path, token, None).await;
            denied(st, &body, rule);
        }
        for token in [&p.system_admin, &p.system_reader, &p.project_admin] {
            let (st, body) = call(&s, Method::GET, path, token, None).await;
            assert_eq!(
                error(st, &body, 404),
                "Could not find role: nope.",
                "{path}"
            );
        }
    }
    for path in [
        format!("roles/{member}/implies/nope"),
        format!("roles/nope/implies/{reader}"),
    ] {
        assert_eq!(status(&s, Method::HEAD, &path, &p.domain_admin).await, 403);
        assert_eq!(status(&s, Method::HEAD, &path, &p.system_reader).await, 404);
    }
    // The implication itself still answers as before to those allowed.
    let path = format!("roles/{member}/implies/{reader}");
    assert_eq!(status(&s, Method::GET, &path, &p.system_reader).await, 200);
    assert_eq!(status(&s, Method::GET, &path, &p.project_member).await, 403);

    // Writes: admins of system or project scope only.
    for (method, rule) in [
        (Method::PUT, "identity:create_implied_role"),
        (Method::DELETE, "identity:delete_implied_role"),
    ] {
        for path in [
            format!("roles/nope/implies/{reader}"),
            format!("roles/{prior}/implies/nope"),
        ] {
            for token in [&p.system_reader, &p.domain_admin, &p.project_member] {
                let (st, body) = call(&s, method.clone(), &path, token, None).await;
                denied(st, &body, rule);
            }
            for token in [&p.system_admin, &p.project_admin] {
                let (st, body) = call(&s, method.clone(), &path, token, None).await;
                assert_eq!(error(st, &body, 404), "Could not find role: nope.");
            }
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_assignments_of_a_missing_tree_and_of_both_actors() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    let p = Personas::build(&s).await;

    // include_subtree on a project that does not exist (Keystone: a 500 for everyone).
    let path = "role_assignments?scope.project.id=nope&include_subtree=true";
    for token in [
        &p.domain_admin,
        &p.domain_reader,
        &p.domain_manager,
        &p.project_member,
    ] {
        // A domain admin passes admin_required: only the domain readers' rule needs the
        // project's domain.
        let (st, body) = call(&s, Method::GET, path, token, None).await;
        if token == &p.domain_admin {
            assert_eq!(error(st, &body, 404), "Could not find project: nope.");
        } else {
            denied(st, &body, "identity:list_role_assignments_for_tree");
        }
    }
    for token in [&p.system_admin, &p.system_reader, &p.project_admin] {
        let (st, body) = call(&s, Method::GET, path, token, None).await;
        assert_eq!(error(st, &body, 404), "Could not find project: nope.");
    }

    // A user and a group at once: refused (400) before the policy check, as Keystone's query
    // schema does.
    for token in [&p.project_member, &p.domain_reader, &p.system_admin] {
        let (st, body) = call(
            &s,
            Method::GET,
            "role_assignments?user.id=u1&group.id=g1",
            token,
            None,
        )
        .await;
        assert_eq!(error(st, &body, 400), "Specify a user or group, not both");
    }
    s.stop().await;
}
