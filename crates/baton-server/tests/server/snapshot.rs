//! The validation snapshot (issue 15 item 2): users, projects and role assignments kept in
//! memory for tokens new to a node. Every kind of write that changes what a token validates to
//! is seen by the next validation on the node that made it, and within the change feed's delay
//! on another node, even when both nodes hold the old data warm; and a warm node validates a
//! token it has never seen without reading those tables.

use super::change_feed::validate_body_on as validate;
use super::*;
use baton_testkit::{call, on_every_database, project_scope};

/// Generous for loaded CI machines; the feed polls every 200 ms.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(5);

/// What a validation must show after a write.
enum Expect {
    UserName(&'static str),
    ProjectName(&'static str),
    DomainName(&'static str),
    WithRole(&'static str),
    /// Without the role (or refused outright: Keystone's rules may revoke on removal).
    WithoutRole(&'static str),
    Refused,
}

impl Expect {
    fn met(&self, status: StatusCode, body: &Value) -> bool {
        let t = &body["token"];
        let has_role = |name: &str| {
            t["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["name"] == json!(name)))
        };
        match self {
            Expect::Refused => status == StatusCode::NOT_FOUND,
            Expect::WithoutRole(r) => status == StatusCode::NOT_FOUND || !has_role(r),
            _ if status != StatusCode::OK => false,
            Expect::UserName(n) => t["user"]["name"] == json!(n),
            Expect::ProjectName(n) => t["project"]["name"] == json!(n),
            Expect::DomainName(n) => {
                t["user"]["domain"]["name"] == json!(n)
                    && t["project"]["domain"]["name"] == json!(n)
            }
            Expect::WithRole(r) => has_role(r),
        }
    }
}

async fn created(a: &IdentityServer, admin: &str, path: &str, body: Value) -> String {
    let (status, got) = call(a, Method::POST, path, admin, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {got}");
    let key = path.trim_end_matches('s');
    got[key]["id"].as_str().expect("id").to_string()
}

async fn write(a: &IdentityServer, admin: &str, method: Method, path: &str, body: Option<Value>) {
    let (status, got) = call(a, method, path, admin, body).await;
    assert!(status.is_success(), "{path}: {status} {got}");
}

async fn every_write_reaches_cold_validations(dialect: DbDialect) {
    // Longer than the test: a stale answer that ends was ended by the write, not by time.
    let a = IdentityServer::start_with(dialect, |c| c.baton.validation_cache_ttl = 3600).await;
    let b = a.second_node().await;
    let admin = a.admin_token().await;
    let checker = a.system_admin_token().await;
    let domain = created(&a, &admin, "domains", json!({"domain": {"name": "snap-d"}})).await;
    let parent = created(
        &a,
        &admin,
        "projects",
        json!({"project": {"name": "snap-parent", "domain_id": domain}}),
    )
    .await;
    let project = created(
        &a,
        &admin,
        "projects",
        json!({"project": {"name": "snap-p", "domain_id": domain, "parent_id": parent}}),
    )
    .await;
    let user = created(
        &a,
        &admin,
        "users",
        json!({"user": {"name": "snap-u", "domain_id": domain, "password": USER_PW}}),
    )
    .await;
    let group = created(
        &a,
        &admin,
        "groups",
        json!({"group": {"name": "snap-g", "domain_id": domain}}),
    )
    .await;
    let mut role = std::collections::HashMap::new();
    for name in [
        "snap-r1", "snap-r2", "snap-r3", "snap-r4", "snap-r5", "snap-r6",
    ] {
        let id = created(&a, &admin, "roles", json!({"role": {"name": name}})).await;
        role.insert(name, id);
    }
    let member = a.role_id("member").await;
    let reader = a.role_id("reader").await;
    let put = Method::PUT;
    write(
        &a,
        &admin,
        put.clone(),
        &format!("projects/{project}/users/{user}/roles/{member}"),
        None,
    )
    .await;
    write(
        &a,
        &admin,
        put.clone(),
        &format!("system/users/{user}/roles/{reader}"),
        None,
    )
    .await;
    write(
        &a,
        &admin,
        put.clone(),
        &format!(
            "projects/{project}/groups/{group}/roles/{}",
            role["snap-r2"]
        ),
        None,
    )
    .await;
    a.add_secrets(&[USER_PW]);

    let token = |scope: Value| {
        let (a, domain) = (&a, domain.clone());
        async move { a.token_in("snap-u", &domain, USER_PW, scope).await }
    };
    let system = json!({"system": {"all": true}});
    let warm_project = token(project_scope(&project)).await;
    let warm_system = token(system.clone()).await;

    type Step = (&'static str, Method, String, Option<Value>, Expect, bool);
    let steps: Vec<Step> = vec![
        (
            "user renamed",
            Method::PATCH,
            format!("users/{user}"),
            Some(json!({"user": {"name": "snap-u2"}})),
            Expect::UserName("snap-u2"),
            false,
        ),
        (
            "project renamed",
            Method::PATCH,
            format!("projects/{project}"),
            Some(json!({"project": {"name": "snap-p2"}})),
            Expect::ProjectName("snap-p2"),
            false,
        ),
        (
            "domain renamed",
            Method::PATCH,
            format!("domains/{domain}"),
            Some(json!({"domain": {"name": "snap-d2"}})),
            Expect::DomainName("snap-d2"),
            false,
        ),
        (
            "role granted",
            put.clone(),
            format!("projects/{project}/users/{user}/roles/{}", role["snap-r1"]),
            None,
            Expect::WithRole("snap-r1"),
            false,
        ),
        (
            "added to a group",
            put.clone(),
            format!("groups/{group}/users/{user}"),
            None,
            Expect::WithRole("snap-r2"),
            false,
        ),
        (
            "inherited from the parent",
            put.clone(),
            format!(
                "OS-INHERIT/projects/{parent}/users/{user}/roles/{}/inherited_to_projects",
                role["snap-r3"]
            ),
            None,
            Expect::WithRole("snap-r3"),
            false,
        ),
        (
            "inherited from the domain",
            put.clone(),
            format!(
                "OS-INHERIT/domains/{domain}/users/{user}/roles/{}/inherited_to_projects",
                role["snap-r4"]
            ),
            None,
            Expect::WithRole("snap-r4"),
            false,
        ),
        (
            "role implied",
            put.clone(),
            format!("roles/{member}/implies/{}", role["snap-r5"]),
            None,
            Expect::WithRole("snap-r5"),
            false,
        ),
        (
            "system role granted",
            put.clone(),
            format!("system/users/{user}/roles/{}", role["snap-r6"]),
            None,
            Expect::WithRole("snap-r6"),
            true,
        ),
        (
            "role removed",
            Method::DELETE,
            format!("projects/{project}/users/{user}/roles/{}", role["snap-r1"]),
            None,
            Expect::WithoutRole("snap-r1"),
            false,
        ),
        (
            "project disabled",
            Method::PATCH,
            format!("projects/{project}"),
            Some(json!({"project": {"enabled": false}})),
            Expect::Refused,
            false,
        ),
        (
            "domain disabled",
            Method::PATCH,
            format!("domains/{domain}"),
            Some(json!({"domain": {"enabled": false}})),
            Expect::Refused,
            true,
        ),
    ];
    // One token per step, issued before any write and never validated before its step.
    let mut fresh = Vec::new();
    for (_, _, _, _, _, system_scoped) in &steps {
        fresh.push(
            token(if *system_scoped {
                system.clone()
            } else {
                project_scope(&project)
            })
            .await,
        );
    }
    let mut elsewhere = Vec::new();
    for ((kind, method, path, body, expect, system_scoped), subject) in steps.into_iter().zip(fresh)
    {
        let warm = if system_scoped {
            &warm_system
        } else {
            &warm_project
        };
        // Both nodes hold the current data.
        for base in [&a.base, &b.base] {
            let (status, got) = validate(&a, base, &checker, warm).await;
            assert_eq!(status, StatusCode::OK, "{kind}: warm-up on {base}: {got}");
        }
        write(&a, &admin, method, &path, body).await;
        let (status, got) = validate(&a, &a.base, &checker, &subject).await;
        assert!(
            expect.met(status, &got),
            "{kind}: the writing node answered {status} {got}"
        );
        let start = Instant::now();
        loop {
            let (status, got) = validate(&a, &b.base, &checker, &subject).await;
            if expect.met(status, &got) {
                elsewhere.push(format!("{kind}: {:?}", start.elapsed()));
                break;
            }
            assert!(
                start.elapsed() < PROPAGATION_LIMIT,
                "{kind}: node B still answers {status} {got} after {PROPAGATION_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("{dialect:?}: seen on node B after {}", elsewhere.join(", "));
    assert!(
        a.state.tokens.snapshot_bytes() > 0,
        "the snapshot was in use"
    );
    drop(b);
    a.stop().await;
}

on_every_database!(every_write_reaches_cold_validations);

/// A write that revokes the user's tokens (here a new name with a new password) also empties
/// the writing node's snapshot when it answers, and a token issued afterwards on another node
/// shows the new name on the writing node.
async fn a_revoking_write_empties_the_snapshot(dialect: DbDialect) {
    let a = IdentityServer::start_with(dialect, |c| c.baton.validation_cache_ttl = 3600).await;
    let b = a.second_node().await;
    let admin = a.admin_token().await;
    let checker = a.system_admin_token().await;
    let project = a.create_project("snap-rp", "default").await;
    let user = a.create_user("snap-ru", USER_PW, "default").await;
    a.grant_project(&user, &project, "member").await;
    a.add_secrets(&[USER_PW, WRONG_PW]);
    let before = a.token("snap-ru", USER_PW, project_scope(&project)).await;
    a.state.tokens.invalidate_caches();
    let (status, got) = validate(&a, &a.base, &checker, &before).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    write(
        &a,
        &admin,
        Method::PATCH,
        &format!("users/{user}"),
        Some(json!({"user": {"name": "snap-ru2", "password": WRONG_PW}})),
    )
    .await;
    assert_eq!(
        a.state.tokens.snapshot_bytes(),
        0,
        "the writing node still holds the old user"
    );
    // A token of the same second as the revocation is born revoked (Keystone's rule).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = a
        .client
        .post(format!("{}/v3/auth/tokens", b.base))
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "id": user, "password": WRONG_PW}}},
            "scope": project_scope(&project)}}))
        .send()
        .await
        .expect("issue on node B");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let after = resp.headers()["x-subject-token"]
        .to_str()
        .expect("ascii")
        .to_string();
    let (status, got) = validate(&a, &a.base, &checker, &after).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["token"]["user"]["name"], json!("snap-ru2"), "{got}");
    drop(b);
    a.stop().await;
}

on_every_database!(a_revoking_write_empties_the_snapshot);

/// With `snapshot_cache_bytes = 0` validation reads the database each time, and says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_snapshot_validates_the_same() {
    let a =
        IdentityServer::start_with(DbDialect::Sqlite, |c| c.baton.snapshot_cache_bytes = 0).await;
    let admin = a.admin_token().await;
    let other = a.admin_token().await;
    // Issuing cached the answer; this validation must build it.
    a.state.tokens.invalidate_caches();
    let (status, body) = validate(&a, &a.base, &admin, &other).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token"]["user"]["name"], json!("admin"));
    assert_eq!(a.state.tokens.snapshot_bytes(), 0);
    a.stop().await;
}
