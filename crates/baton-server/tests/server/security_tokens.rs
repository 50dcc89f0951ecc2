//! Regressions from the 2026-12 security review (`shared/research/security-review-2026-12.md`,
//! issue 19) on the token API: each test failed on 322f02c. The number in a test's name is the
//! finding's. Cache-internal races (#4) are tested beside the cache in `tokens.rs`.

use super::*;
use baton_testkit::{send, IdentityServer};

/// #1: on PostgreSQL and MariaDB an event's id is taken at insert and seen at commit. A slow
/// writer's event whose id is below one already read must still reach every node.
async fn late_committed_revocation_reaches_every_node(dialect: DbDialect) {
    let a = IdentityServer::start(dialect).await;
    let b = a.second_node().await;
    let pw = "V1ctim-Secret-r5Tq";
    let user = a.create_user("victim", pw, "default").await;
    a.grant_project(&user, &a.admin_project_id, "member").await;
    let scope = json!({"project": {"id": a.admin_project_id}});
    let victim = a.token("victim", pw, scope.clone()).await;
    let other = a.token("victim", pw, scope).await;
    let admin = a.admin_token().await;

    let validate_on = |base: String, subject: String| {
        let (a, admin) = (&a, admin.clone());
        async move { super::change_feed::validate_body_on(a, &base, &admin, &subject).await }
    };
    let (status, body) = validate_on(a.base.clone(), victim.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let audit_id = body["token"]["audit_ids"][0].as_str().expect("audit id");

    // The slow writer takes its id first ...
    let held = a.hold_revocation_event(audit_id).await;
    // ... another node's revocation takes a higher one and commits ...
    let r = a
        .client
        .delete(format!("{}/v3/auth/tokens", b.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &other)
        .send()
        .await
        .expect("revoke on node B");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // ... and node A reads past the held id before it commits.
    a.state.tokens.refresh_revocations().await.expect("poll");
    assert_eq!(
        validate_on(a.base.clone(), victim.clone()).await.0,
        StatusCode::OK
    );
    held.commit().await;

    for node in [a.base.clone(), b.base.clone()] {
        let got = eventually(Duration::from_secs(3), StatusCode::NOT_FOUND, || async {
            validate_on(node.clone(), victim.clone()).await.0
        })
        .await;
        assert_eq!(got, StatusCode::NOT_FOUND, "node {node} still accepts it");
    }
    drop(b);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_1_late_committed_revocation_reaches_every_node_postgres() {
    late_committed_revocation_reaches_every_node(DbDialect::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_1_late_committed_revocation_reaches_every_node_mariadb() {
    late_committed_revocation_reaches_every_node(DbDialect::MySql).await
}

/// #3: one request may not buy thousands of bcrypt verifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_3_repeated_auth_methods_are_bounded_and_deduplicated() {
    let s = Server::start().await;
    let mut body = auth(pw_id(&s.ids.bob, USER_PW), None);
    body["auth"]["identity"]["methods"] = json!(vec!["password"; 200]);
    let msg = s
        .post_tokens("", &body)
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(msg.contains("auth/identity/methods"), "{msg}");

    // A repeat within the bound is one method, as in Keystone.
    body["auth"]["identity"]["methods"] = json!(["password", "password"]);
    let (_, token) = s.token(&body).await;
    assert_eq!(token["token"]["methods"], json!(["password"]));
}

/// #7: with `allow_rescope_scoped_token = false` a scoped token is never exchanged, even
/// without a requested scope (which would land on the default project).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_7_scoped_token_is_not_rescoped_without_a_scope() {
    let s = Server::start_with(|c| c.token.allow_rescope_scoped_token = false).await;
    let scoped = s
        .user_token(&s.ids.alice, Some(json!({"project": {"id": s.ids.demo}})))
        .await;
    let domain_scoped = s
        .user_token(&s.ids.alice, Some(json!({"domain": {"id": "default"}})))
        .await;
    for source in [&scoped, &domain_scoped] {
        let msg = s
            .post_tokens("", &auth(token_identity(source), None))
            .await
            .error(StatusCode::FORBIDDEN);
        assert!(msg.contains("rescope"), "{msg}");
    }
    // An unscoped token may still be scoped.
    let unscoped = s.user_token(&s.ids.bob, None).await;
    s.token(&auth(
        token_identity(&unscoped),
        Some(json!({"project": {"id": s.ids.demo}})),
    ))
    .await;
}

/// #8: revoking a rescoped token also ends every token rescoped from it, however deep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_8_cascading_revoke_reaches_tokens_rescoped_twice() {
    let s = Server::start().await;
    let admin = s.admin_token().await;
    let root = s.user_token(&s.ids.bob, Some(json!("unscoped"))).await;
    let demo = json!({"project": {"id": s.ids.demo}});
    let (middle, _) = s.token(&auth(token_identity(&root), Some(demo))).await;
    let (leaf, _) = s
        .token(&auth(token_identity(&middle), Some(json!("unscoped"))))
        .await;

    s.revoke(&admin, &middle)
        .await
        .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &middle, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    s.validate(&admin, &leaf, "")
        .await
        .expect(StatusCode::NOT_FOUND);
    // The login it came from is another token, revoked only by name (as in Keystone).
    s.validate(&admin, &root, "").await.expect(StatusCode::OK);
    // Without cascade only the named token goes.
    let (other, _) = s
        .token(&auth(token_identity(&root), Some(json!("unscoped"))))
        .await;
    let (other_leaf, _) = s
        .token(&auth(token_identity(&other), Some(json!("unscoped"))))
        .await;
    s.send(
        s.req(Method::DELETE, "/v3/auth/tokens?cascade=false")
            .header("x-auth-token", &admin)
            .header("x-subject-token", &other),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    s.validate(&admin, &other_leaf, "")
        .await
        .expect(StatusCode::OK);
}

/// #9: a login minted again because it was born revoked (same second as a revocation of its
/// user) is authenticated again: a password changed meanwhile makes it fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_9_born_revoked_login_checks_the_credentials_again() {
    let s = Server::start().await;
    // Start just after a second boundary, so the attempt and the revocation share a second
    // and the retry waits most of a second.
    let next = Utc::now().trunc_subsecs(0) + chrono::Duration::milliseconds(1050);
    sleep_until(next).await;
    s.state
        .tokens
        .revoke_now(baton_store::RevocationEvent {
            user_id: Some(s.ids.bob.clone()),
            ..Default::default()
        })
        .await
        .expect("revoke bob's tokens");
    let body = auth(pw_id(&s.ids.bob, USER_PW), None);
    let login = s.post_tokens("", &body);
    let change = async {
        // While the login waits for the next second, the password changes underneath it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let hash = baton_server::password::hash_password(
            WRONG_PW,
            baton_config::PasswordHashAlgorithm::Bcrypt,
            Some(4),
        )
        .expect("hash");
        s.store()
            .set_password(&s.ids.bob, &hash, Utc::now().naive_utc())
            .await
            .expect("set password");
    };
    let (r, ()) = tokio::join!(login, change);
    r.expect(StatusCode::UNAUTHORIZED);
    // The retry still serves a login that keeps its credentials.
    s.user_token_pw(&s.ids.bob, WRONG_PW, None).await;
}

/// #4 across the wire: the padded spellings of a token follow a role removal like the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_4_padded_spellings_follow_a_role_removal() {
    let s = IdentityServer::start(DbDialect::Sqlite).await;
    let pw = "Padd3d-Secret-w2Lp";
    let user = s.create_user("padded", pw, "default").await;
    s.grant_project(&user, &s.admin_project_id, "member").await;
    let token = s
        .token("padded", pw, json!({"project": {"id": s.admin_project_id}}))
        .await;
    let admin = s.admin_token().await;
    let spellings = [token.clone(), format!("{token}="), format!("{token}==")];
    let status = |subject: String| {
        let client = s.client.clone();
        let url = s.url("auth/tokens");
        let admin = admin.clone();
        async move {
            client
                .get(url)
                .header("x-auth-token", admin)
                .header("x-subject-token", subject)
                .send()
                .await
                .expect("validate")
                .status()
        }
    };
    for t in &spellings {
        assert_eq!(status(t.clone()).await, StatusCode::OK);
    }
    let member = s.role_id("member").await;
    let (st, _) = send(
        &s,
        Method::DELETE,
        &format!(
            "projects/{}/users/{user}/roles/{member}",
            s.admin_project_id
        ),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for t in &spellings {
        assert_eq!(status(t.clone()).await, StatusCode::NOT_FOUND);
    }
    s.stop().await;
}

/// #11: under `strict_password_check` a login with a password the hash would truncate is
/// refused (403, as Keystone), for an unknown user exactly as for a known one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_11_strict_password_check_refuses_truncated_logins() {
    let s = Server::start_with(|c| c.default.strict_password_check = true).await;
    let long = format!("{USER_PW}{}", "x".repeat(72));
    for user in [s.ids.bob.as_str(), "00000000000000000000000000000000"] {
        let msg = s
            .post_tokens("", &auth(pw_id(user, &long), None))
            .await
            .error(StatusCode::FORBIDDEN);
        assert!(msg.contains("less than or equal to 72"), "{msg}");
    }
    s.user_token(&s.ids.bob, None).await;
}
