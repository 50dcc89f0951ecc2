//! `/v3/users` and `/v3/groups` over HTTP against a real server: CRUD, membership, filters,
//! conflicts, schema errors, password changes and the revocations Keystone makes on writes
//! (on every database), Keystone's default policy per persona, and pagination.

use std::time::Duration;

use baton_store::{Assignment, AssignmentType, Dialect, Project};
use baton_testkit::{
    call, error, on_every_database, project_scope, send, system_scope, IdentityServer, Personas,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Pers0na-Secret-w7Qe1";
const NEW_PW: &str = "N3w-Secret-p0Lk8";
const OTHER_PW: &str = "0ther-Secret-z9Xc3";
/// No response body may ever contain one of these.
const SECRETS: [&str; 3] = [PW, NEW_PW, OTHER_PW];

fn ok(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "status; body {body}");
}

/// `GET /v3/auth/tokens` of `subject` with a system admin's token: the status only.
async fn validation_status(s: &IdentityServer, subject: &str) -> u16 {
    let checker = s.system_admin_token().await;
    s.client
        .get(s.url("auth/tokens"))
        .header("x-auth-token", &checker)
        .header("x-subject-token", subject)
        .send()
        .await
        .expect("validate")
        .status()
        .as_u16()
}

/// Status of an unscoped password authentication.
async fn auth_status(s: &IdentityServer, user_id: &str, password: &str) -> u16 {
    s.client
        .post(s.url("auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"id": user_id, "password": password}}}}}))
        .send()
        .await
        .expect("auth")
        .status()
        .as_u16()
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn names(body: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn create_user(s: &IdentityServer, token: &str, user: Value) -> Value {
    let (st, body) = call(
        s,
        Method::POST,
        "users",
        token,
        Some(json!({ "user": user })),
    )
    .await;
    ok(st, &body, 201);
    body["user"].clone()
}

// ----- on every database -------------------------------------------------------------------

async fn user_crud(d: Dialect) {
    let s = IdentityServer::start(d).await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();

    let u = create_user(
        &s,
        &admin,
        json!({"name": "  nova  ", "password": PW, "email": "nova@example.org",
            "description": "compute", "default_project_id": s.admin_project_id,
            "options": {"ignore_password_expiry": true, "multi_factor_auth_rules": [["password"]]},
            "ticket-id": "OPS-7"}),
    )
    .await;
    let nova = u["id"].as_str().unwrap().to_string();
    assert_eq!(nova.len(), 32);
    assert_eq!(u["name"], "nova", "names are stripped");
    assert_eq!(u["domain_id"], json!(dom));
    assert_eq!(u["enabled"], json!(true));
    assert_eq!(u["email"], "nova@example.org");
    assert_eq!(u["description"], "compute");
    assert_eq!(
        u["ticket_id"], "OPS-7",
        "extra names normalized like Keystone's"
    );
    assert_eq!(u["default_project_id"], json!(s.admin_project_id));
    assert_eq!(u["password_expires_at"], Value::Null);
    assert_eq!(
        u["options"],
        json!({"ignore_password_expiry": true, "multi_factor_auth_rules": [["password"]]})
    );
    assert!(u.get("password").is_none());
    assert_eq!(
        u["links"]["self"],
        json!(format!("{}/v3/users/{nova}", s.base))
    );
    assert_eq!(auth_status(&s, &nova, PW).await, 201, "the password works");

    // Keystone's minimal user: no default project key, empty options.
    let bare = create_user(&s, &admin, json!({"name": "bare"})).await;
    assert!(bare.get("default_project_id").is_none(), "{bare}");
    assert_eq!(bare["options"], json!({}));
    let bare_id = bare["id"].as_str().unwrap().to_string();
    assert_eq!(
        auth_status(&s, &bare_id, PW).await,
        401,
        "no password, no token"
    );

    let (st, body) = call(&s, Method::GET, &format!("users/{nova}"), &admin, None).await;
    ok(st, &body, 200);
    let mut created = u.clone();
    created.as_object_mut().unwrap().remove("links");
    let mut shown = body["user"].clone();
    shown.as_object_mut().unwrap().remove("links");
    assert_eq!(shown, created);

    // Same name in the domain: 409 with Keystone's message.
    let (st, body) = call(
        &s,
        Method::POST,
        "users",
        &admin,
        Some(json!({"user": {"name": "nova"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        format!("Conflict occurred attempting to store user - Duplicate entry found with name nova at domain ID {dom}.")
    );

    // Schema errors: 400 naming the field; passwords never echoed.
    for (bad, needle) in [
        (
            json!({"user": {"email": "x"}}),
            "'name' is a required property",
        ),
        (json!({"user": {"name": "x".repeat(256)}}), "user/name"),
        (json!({"user": {"name": "   "}}), "user/name"),
        (json!({"user": {"name": 7}}), "user/name"),
        (
            json!({"user": {"name": "ok", "enabled": "yes"}}),
            "user/enabled",
        ),
        (
            json!({"user": {"name": "ok", "password": 12345}}),
            "user/password",
        ),
        (
            json!({"user": {"name": "ok", "domain_id": "x".repeat(65)}}),
            "user/domain_id",
        ),
        (
            json!({"user": {"name": "ok", "options": {"colour": "blue"}}}),
            "'colour' was unexpected",
        ),
        (
            json!({"user": {"name": "ok", "options": {"lock_password": "yes"}}}),
            "options/lock_password",
        ),
        (
            json!({"user": {"name": "ok", "options": {"multi_factor_auth_rules": [[]]}}}),
            "multi_factor_auth_rules",
        ),
        (
            json!({"user": {"name": "ok", "options": {"multi_factor_auth_enabled": true}}}),
            "not enforced",
        ),
        (
            json!({"user": {"name": "ok"}, "extra": 1}),
            "'extra' was unexpected",
        ),
        (json!({"users": {"name": "ok"}}), "user"),
        (
            json!({"user": {"name": "ok", "default_project_id": dom}}),
            "cannot be a domain ID",
        ),
    ] {
        let (st, body) = call(&s, Method::POST, "users", &admin, Some(bad.clone())).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(needle), "{bad} -> {msg}");
        assert!(!msg.contains("12345"), "{msg}");
    }
    let (st, body) = call(
        &s,
        Method::POST,
        "users",
        &admin,
        Some(json!({"user": {"name": "ok", "domain_id": "nosuchdomain"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 404),
        "Could not find domain: nosuchdomain."
    );

    // Update: extras merge over the stored ones, columns change, the domain cannot.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{nova}"),
        &admin,
        Some(
            json!({"user": {"name": "nova-compute", "email": "ops@example.org",
            "description": null, "default_project_id": null,
            "options": {"ignore_password_expiry": null, "lock_password": false}}}),
        ),
    )
    .await;
    ok(st, &body, 200);
    let u = &body["user"];
    assert_eq!(u["name"], "nova-compute");
    assert_eq!(u["email"], "ops@example.org");
    assert_eq!(u["description"], Value::Null);
    assert_eq!(u["ticket_id"], "OPS-7", "untouched extras stay");
    assert!(u.get("default_project_id").is_none(), "{u}");
    assert_eq!(
        u["options"],
        json!({"lock_password": false, "multi_factor_auth_rules": [["password"]]})
    );
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{nova}"),
        &admin,
        Some(json!({"user": {"name": "bare"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        "Conflict occurred attempting to store user - Duplicate entry found with name bare."
    );
    for (bad, status, needle) in [
        (
            json!({"user": {"domain_id": "other"}}),
            400,
            "Cannot change Domain ID",
        ),
        (json!({"user": {"id": "other"}}), 400, "Cannot change ID"),
        (json!({"user": {}}), 400, "should be non-empty"),
        (json!({"user": {"enabled": 1}}), 400, "user/enabled"),
    ] {
        let (st, body) = call(
            &s,
            Method::PATCH,
            &format!("users/{nova}"),
            &admin,
            Some(bad.clone()),
        )
        .await;
        let msg = error(st, &body, status);
        assert!(msg.contains(needle), "{bad} -> {msg}");
    }
    let (st, body) = call(
        &s,
        Method::PATCH,
        "users/nosuchuser",
        &admin,
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find user: nosuchuser.");
    let (st, body) = call(&s, Method::GET, "users/nosuchuser", &admin, None).await;
    assert_eq!(error(st, &body, 404), "Could not find user: nosuchuser.");

    // Filters.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{bare_id}"),
        &admin,
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = call(&s, Method::GET, "users", &admin, None).await;
    ok(st, &body, 200);
    assert_eq!(names(&body, "users"), ["admin", "bare", "nova-compute"]);
    assert_eq!(body["links"]["self"], json!(format!("{}/v3/users", s.base)));
    let (_, body) = call(&s, Method::GET, "users?name=nova-compute", &admin, None).await;
    assert_eq!(ids(&body, "users"), [nova.as_str()]);
    let (_, body) = call(&s, Method::GET, "users?enabled=false", &admin, None).await;
    assert_eq!(ids(&body, "users"), [bare_id.as_str()]);
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("users?domain_id={dom}&enabled=true"),
        &admin,
        None,
    )
    .await;
    assert_eq!(names(&body, "users"), ["admin", "nova-compute"]);
    let (_, body) = call(
        &s,
        Method::GET,
        "users?domain_id=nosuchdomain",
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&body, "users"), Vec::<String>::new());

    // Delete: 204, then 404.
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{bare_id}"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = call(&s, Method::GET, &format!("users/{bare_id}"), &admin, None).await;
    error(st, &body, 404);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{bare_id}"),
        &admin,
        None,
    )
    .await;
    error(st, &body, 404);
    s.stop().await;
}

async fn password_and_revocation(d: Dialect) {
    let s = IdentityServer::start_manual_clock(d).await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let uid = create_user(&s, &admin, json!({"name": "cinder", "password": PW})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let project = s
        .create_project("service", &s.default_domain_id.clone())
        .await;
    s.grant_project(&uid, &project, "member").await;
    let old = s.token("cinder", PW, project_scope(&project)).await;
    assert_eq!(validation_status(&s, &old).await, 200);

    // Self-service change: no token needed; the original password is the check.
    let path = format!("users/{uid}/password");
    let (st, body) = send(
        &s,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": OTHER_PW, "password": NEW_PW}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 401),
        "The request you have made requires authentication."
    );
    let (st, body) = send(
        &s,
        Method::POST,
        "users/nosuchuser/password",
        None,
        Some(json!({"user": {"original_password": PW, "password": NEW_PW}})),
    )
    .await;
    error(st, &body, 401);
    for bad in [
        json!({"user": {"password": NEW_PW}}),
        json!({"user": {"original_password": PW}}),
        json!({"user": {"original_password": PW, "password": 5}}),
        json!({"user": {"original_password": PW, "password": NEW_PW, "name": "x"}}),
    ] {
        let (st, body) = send(&s, Method::POST, &path, None, Some(bad.clone())).await;
        error(st, &body, 400);
    }
    assert_eq!(
        validation_status(&s, &old).await,
        200,
        "failed attempts revoke nothing"
    );
    let (st, body) = send(&s, Method::GET, &path, Some(&admin), None).await;
    error(st, &body, 405);
    let (st, body) = send(
        &s,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": PW, "password": NEW_PW}})),
    )
    .await;
    ok(st, &body, 204);
    assert_eq!(
        validation_status(&s, &old).await,
        404,
        "tokens from before the change are revoked"
    );
    assert_eq!(auth_status(&s, &uid, PW).await, 401);
    s.next_second().await;
    let fresh = s.token("cinder", NEW_PW, project_scope(&project)).await;
    assert_eq!(validation_status(&s, &fresh).await, 200);
    assert!(
        s.store
            .get_password(&uid)
            .await
            .unwrap()
            .unwrap()
            .self_service
    );

    // lock_password stops self-service changes (Keystone's PasswordSelfServiceDisabled).
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"options": {"lock_password": true}}})),
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = send(
        &s,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": NEW_PW, "password": OTHER_PW}})),
    )
    .await;
    assert!(error(st, &body, 400).contains("password policy disallowing password changes"));
    assert_eq!(validation_status(&s, &fresh).await, 200);

    // An administrative reset revokes as well; the old password stops working.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"password": OTHER_PW}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(validation_status(&s, &fresh).await, 404);
    assert_eq!(auth_status(&s, &uid, NEW_PW).await, 401);
    assert!(
        !s.store
            .get_password(&uid)
            .await
            .unwrap()
            .unwrap()
            .self_service
    );
    s.next_second().await;
    let again = s.token("cinder", OTHER_PW, project_scope(&project)).await;

    // An update that changes neither revokes nothing.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"email": "c@example.org", "enabled": true}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(validation_status(&s, &again).await, 200);

    // Disabling revokes; so does DELETE /v3/users/{id}/tokens.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(validation_status(&s, &again).await, 404);
    assert_eq!(auth_status(&s, &uid, OTHER_PW).await, 401);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    ok(st, &body, 200);
    s.next_second().await;
    let t = s.token("cinder", OTHER_PW, project_scope(&project)).await;
    assert_eq!(validation_status(&s, &t).await, 200);
    let (st, body) = call(&s, Method::DELETE, &format!("users/{uid}/tokens"), &t, None).await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &t).await, 404);

    // Over-long passwords are refused without being echoed.
    let long = "p".repeat(s.config.identity.max_password_length as usize + 1);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"password": long}})),
    )
    .await;
    let msg = error(st, &body, 400);
    assert!(
        msg.contains("user/password") && !msg.contains("ppp"),
        "{msg}"
    );
    s.stop().await;
}

async fn groups_and_membership(d: Dialect) {
    let s = IdentityServer::start_manual_clock(d).await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();

    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &admin,
        Some(json!({"group": {"name": "ops", "description": "operators", "pager": "on"}})),
    )
    .await;
    ok(st, &body, 201);
    let g = &body["group"];
    let ops = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["name"], "ops");
    assert_eq!(g["domain_id"], json!(dom));
    assert_eq!(g["description"], "operators");
    assert_eq!(g["pager"], "on");
    assert_eq!(
        g["links"]["self"],
        json!(format!("{}/v3/groups/{ops}", s.base))
    );
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &admin,
        Some(json!({"group": {"name": "quiet"}})),
    )
    .await;
    ok(st, &body, 201);
    assert_eq!(
        body["group"]["description"], "",
        "Keystone's default description"
    );
    let quiet = body["group"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &admin,
        Some(json!({"group": {"name": "ops"}})),
    )
    .await;
    assert_eq!(
        error(st, &body, 409),
        format!("Conflict occurred attempting to store group - Duplicate entry found with name ops at domain ID {dom}.")
    );
    for (bad, needle) in [
        (
            json!({"group": {"description": "x"}}),
            "'name' is a required property",
        ),
        (json!({"group": {"name": "x".repeat(65)}}), "group/name"),
        (
            json!({"group": {"name": "ok", "description": 3}}),
            "group/description",
        ),
        (
            json!({"group": {"name": "ok", "domain_id": "a b"}}),
            "group/domain_id",
        ),
    ] {
        let (st, body) = call(&s, Method::POST, "groups", &admin, Some(bad.clone())).await;
        let msg = error(st, &body, 400);
        assert!(msg.contains(needle), "{bad} -> {msg}");
    }

    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("groups/{ops}"),
        &admin,
        Some(json!({"group": {"name": "operators", "description": null}})),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["group"]["name"], "operators");
    assert_eq!(body["group"]["description"], Value::Null);
    assert_eq!(body["group"]["pager"], "on");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("groups/{ops}"),
        &admin,
        Some(json!({"group": {"name": "quiet"}})),
    )
    .await;
    error(st, &body, 409);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("groups/{ops}"),
        &admin,
        Some(json!({"group": {"domain_id": "x"}})),
    )
    .await;
    assert_eq!(error(st, &body, 400), "Cannot change Domain ID");
    let (st, body) = call(&s, Method::GET, &format!("groups/{ops}"), &admin, None).await;
    ok(st, &body, 200);
    assert_eq!(body["group"]["name"], "operators");
    let (_, body) = call(&s, Method::GET, "groups", &admin, None).await;
    assert_eq!(names(&body, "groups"), ["operators", "quiet"]);
    let (_, body) = call(&s, Method::GET, "groups?name=quiet", &admin, None).await;
    assert_eq!(ids(&body, "groups"), [quiet.as_str()]);
    let (_, body) = call(&s, Method::GET, "groups?domain_id=other", &admin, None).await;
    assert_eq!(ids(&body, "groups"), Vec::<String>::new());

    // Membership, through a group grant on a project.
    let alice = s.create_user("alice", PW, &dom).await;
    let bob = s.create_user("bob", PW, &dom).await;
    let project = s.create_project("web", &dom).await;
    let member_role = s.role_id("member").await;
    s.store
        .create_assignment(&Assignment {
            kind: AssignmentType::GroupProject,
            actor_id: ops.clone(),
            target_id: project.clone(),
            role_id: member_role,
            inherited: false,
        })
        .await
        .unwrap();
    let member_path = format!("groups/{ops}/users/{alice}");
    let (st, body) = call(&s, Method::HEAD, &member_path, &admin, None).await;
    ok(st, &body, 404);
    let (st, body) = call(&s, Method::GET, &member_path, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("User '{alice}' not found in group '{ops}'")
    );
    for _ in 0..2 {
        let (st, body) = call(&s, Method::PUT, &member_path, &admin, None).await;
        ok(st, &body, 204);
    }
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{quiet}/users/{bob}"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, _) = call(&s, Method::HEAD, &member_path, &admin, None).await;
    assert_eq!(st.as_u16(), 204);
    let (st, body) = call(&s, Method::GET, &member_path, &admin, None).await;
    ok(st, &body, 204);
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{ops}/users/nosuchuser"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find user: nosuchuser.");
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/nosuchgroup/users/{alice}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(error(st, &body, 404), "Could not find group: nosuchgroup.");
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("groups/{ops}/users"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "users"), [alice.as_str()]);
    assert_eq!(
        body["users"][0]["links"]["self"],
        json!(format!("{}/v3/users/{alice}", s.base))
    );
    assert_eq!(
        body["links"]["self"],
        json!(format!("{}/v3/groups/{ops}/users", s.base))
    );
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("groups/{ops}/users?name=bob"),
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&body, "users"), Vec::<String>::new());
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{alice}/groups"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "groups"), [ops.as_str()]);
    assert_eq!(body["groups"][0]["membership_expires_at"], Value::Null);

    // The group's grant reaches alice's token and her project list; leaving revokes.
    let alice_token = s.token("alice", PW, project_scope(&project)).await;
    // Unscoped tokens do not depend on roles: only a revocation event stops them.
    let alice_unscoped = s.token("alice", PW, Value::Null).await;
    let bob_token = s.token("bob", PW, Value::Null).await;
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{alice}/projects"),
        &alice_token,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "projects"), [project.as_str()]);
    let (st, body) = call(&s, Method::DELETE, &member_path, &admin, None).await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &alice_token).await, 404);
    assert_eq!(
        validation_status(&s, &alice_unscoped).await,
        404,
        "leaving a group revokes"
    );
    let (st, body) = call(&s, Method::DELETE, &member_path, &admin, None).await;
    assert_eq!(
        error(st, &body, 404),
        format!("User '{alice}' not found in group '{ops}'")
    );

    // Deleting a group without grants revokes nothing; with grants, its members' tokens.
    let (st, body) = call(&s, Method::DELETE, &format!("groups/{quiet}"), &admin, None).await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &bob_token).await, 200);
    assert!(s.store.list_user_group_ids(&bob).await.unwrap().is_empty());
    s.next_second().await;
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{ops}/users/{bob}"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    let bob_scoped = s.token("bob", PW, project_scope(&project)).await;
    let bob_unscoped = s.token("bob", PW, Value::Null).await;
    let (st, body) = call(&s, Method::DELETE, &format!("groups/{ops}"), &admin, None).await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &bob_scoped).await, 404);
    assert_eq!(
        validation_status(&s, &bob_unscoped).await,
        404,
        "members of a granting group are revoked"
    );
    assert!(s
        .store
        .list_assignments_for_actors(std::slice::from_ref(&ops))
        .await
        .unwrap()
        .is_empty());
    let (st, body) = call(&s, Method::GET, &format!("groups/{ops}"), &admin, None).await;
    error(st, &body, 404);
    let (st, body) = call(&s, Method::DELETE, &format!("groups/{ops}"), &admin, None).await;
    error(st, &body, 404);
    s.stop().await;
}

async fn user_projects_and_deletion(d: Dialect) {
    let s = IdentityServer::start(d).await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let other = s.create_domain("other").await;
    let uid = s.create_user("glance", PW, &dom).await;
    let direct = s.create_project("direct", &dom).await;
    let in_other = s.create_project("in-other", &other).await;
    let parent = s.create_project("parent", &dom).await;
    let child = baton_store::new_id();
    s.store
        .create_project(&Project {
            id: child.clone(),
            name: "child".into(),
            domain_id: dom.clone(),
            parent_id: Some(parent.clone()),
            enabled: true,
            is_domain: false,
            description: None,
            extra: None,
        })
        .await
        .unwrap();
    let reader = s.role_id("reader").await;
    let inherited = |kind, target: &str| Assignment {
        kind,
        actor_id: uid.clone(),
        target_id: target.to_string(),
        role_id: reader.clone(),
        inherited: true,
    };
    s.grant_project(&uid, &direct, "member").await;
    s.store
        .create_assignment(&inherited(AssignmentType::UserDomain, &other))
        .await
        .unwrap();
    s.store
        .create_assignment(&inherited(AssignmentType::UserProject, &parent))
        .await
        .unwrap();
    s.grant_system(&uid, "reader").await;
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &admin,
        Some(json!({"group": {"name": "g"}})),
    )
    .await;
    ok(st, &body, 201);
    let gid = body["group"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{gid}/users/{uid}"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 204);

    let mut want = vec![direct.clone(), in_other.clone(), child.clone()];
    want.sort();
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{uid}/projects"),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(
        ids(&body, "projects"),
        want,
        "direct, domain-inherited and subtree-inherited; not the parent"
    );
    let p = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(direct))
        .unwrap();
    assert_eq!(p["name"], "direct");
    assert_eq!(p["domain_id"], json!(dom));
    assert_eq!(
        p["links"]["self"],
        json!(format!("{}/v3/projects/{direct}", s.base))
    );
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("users/{uid}/projects?domain_id={other}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&body, "projects"), [in_other.as_str()]);
    let (st, body) = call(&s, Method::GET, "users/nosuchuser/projects", &admin, None).await;
    error(st, &body, 404);

    // Deleting the user removes its rows and revokes its tokens.
    let token = s.token("glance", PW, project_scope(&direct)).await;
    let sys_token = s.token("glance", PW, system_scope()).await;
    let (st, body) = call(&s, Method::DELETE, &format!("users/{uid}"), &admin, None).await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &token).await, 404);
    assert_eq!(validation_status(&s, &sys_token).await, 404);
    let actors = std::slice::from_ref(&uid);
    assert!(s.store.get_user(&uid).await.unwrap().is_none());
    assert!(s.store.get_password(&uid).await.unwrap().is_none());
    assert!(s.store.list_user_group_ids(&uid).await.unwrap().is_empty());
    assert!(s
        .store
        .list_assignments_for_actors(actors)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .store
        .list_system_assignments_for_actors(actors)
        .await
        .unwrap()
        .is_empty());
    let (_, body) = call(
        &s,
        Method::GET,
        &format!("groups/{gid}/users"),
        &admin,
        None,
    )
    .await;
    assert_eq!(ids(&body, "users"), Vec::<String>::new());
    // The name is free again.
    s.create_user("glance", PW, &dom).await;
    s.stop().await;
}

on_every_database!(
    user_crud,
    password_and_revocation,
    groups_and_membership,
    user_projects_and_deletion
);

// ----- personas (SQLite) -------------------------------------------------------------------

fn denied(status: StatusCode, body: &Value, rule: &str) {
    assert_eq!(
        error(status, body, 403),
        format!("You are not authorized to perform the requested action: {rule}.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_policy_per_persona() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    s.add_secrets(&SECRETS);
    let p = Personas::build(&s).await;
    let default = s.default_domain_id.clone();

    // No token: 401.
    let (st, body) = send(&s, Method::GET, "users", None, None).await;
    error(st, &body, 401);

    // Creating users: admins anywhere (Keystone's admin_required is any admin token), a
    // domain manager in its own domain only, and only when the body names that domain.
    for (who, token) in [
        ("system", &p.system_admin),
        ("project", &p.project_admin),
        ("domain", &p.domain_admin),
    ] {
        let u = create_user(
            &s,
            token,
            json!({"name": format!("by-{who}-admin"), "domain_id": default}),
        )
        .await;
        assert_eq!(u["domain_id"], json!(default));
    }
    let u = create_user(
        &s,
        &p.domain_manager,
        json!({"name": "m1", "domain_id": p.domain_id}),
    )
    .await;
    let m1 = u["id"].as_str().unwrap().to_string();
    for body in [
        json!({"user": {"name": "m2", "domain_id": default}}),
        json!({"user": {"name": "m2"}}),
    ] {
        let (st, resp) = call(&s, Method::POST, "users", &p.domain_manager, Some(body)).await;
        denied(st, &resp, "identity:create_user");
    }
    for token in [&p.project_member, &p.project_reader, &p.domain_reader] {
        let (st, body) = call(
            &s,
            Method::POST,
            "users",
            token,
            Some(json!({"user": {"name": "nope", "domain_id": p.domain_id}})),
        )
        .await;
        denied(st, &body, "identity:create_user");
    }
    // A domain-scoped admin's user lands in its domain when none is named.
    let u = create_user(&s, &p.domain_admin, json!({"name": "implicit"})).await;
    assert_eq!(u["domain_id"], json!(p.domain_id));

    // Listing: admins and system/domain readers; a domain-scoped caller sees its domain only.
    for token in [&p.system_admin, &p.project_admin] {
        let (st, body) = call(&s, Method::GET, "users", token, None).await;
        ok(st, &body, 200);
        assert!(names(&body, "users").contains(&"pmember".to_string()));
    }
    for token in [&p.domain_admin, &p.domain_manager, &p.domain_reader] {
        let (st, body) = call(
            &s,
            Method::GET,
            &format!("users?domain_id={default}"),
            token,
            None,
        )
        .await;
        ok(st, &body, 200);
        assert_eq!(
            ids(&body, "users"),
            Vec::<String>::new(),
            "no other domain's users"
        );
        let (_, body) = call(&s, Method::GET, "users", token, None).await;
        assert_eq!(
            names(&body, "users"),
            ["dadmin", "dmanager", "dmember", "dreader", "implicit", "m1"]
        );
    }
    for token in [&p.project_member, &p.project_reader] {
        let (st, body) = call(&s, Method::GET, "users", token, None).await;
        denied(st, &body, "identity:list_users");
    }

    // Reading: oneself always; a domain reader within its domain; nobody else.
    let member_path = format!("users/{}", p.project_member_id);
    let (st, body) = call(&s, Method::GET, &member_path, &p.project_member, None).await;
    ok(st, &body, 200);
    assert_eq!(body["user"]["name"], "pmember");
    let (st, body) = call(&s, Method::GET, &member_path, &p.project_reader, None).await;
    denied(st, &body, "identity:get_user");
    let (st, body) = call(&s, Method::GET, &member_path, &p.domain_reader, None).await;
    denied(st, &body, "identity:get_user");
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{m1}"),
        &p.domain_reader,
        None,
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{}/groups", p.project_member_id),
        &p.project_member,
        None,
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{}/projects", p.project_member_id),
        &p.project_member,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{m1}/projects"),
        &p.project_member,
        None,
    )
    .await;
    denied(st, &body, "identity:list_user_projects");
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users/{m1}/groups"),
        &p.project_reader,
        None,
    )
    .await;
    denied(st, &body, "identity:list_groups_for_user");

    // Updating and deleting: admins, and a domain manager in its domain.
    let patch = json!({"user": {"description": "touched"}});
    for token in [&p.project_member, &p.project_reader, &p.domain_reader] {
        let (st, body) = call(
            &s,
            Method::PATCH,
            &format!("users/{m1}"),
            token,
            Some(patch.clone()),
        )
        .await;
        denied(st, &body, "identity:update_user");
        let (st, body) = call(&s, Method::DELETE, &format!("users/{m1}"), token, None).await;
        denied(st, &body, "identity:delete_user");
    }
    let (st, body) = call(
        &s,
        Method::PATCH,
        &member_path,
        &p.domain_manager,
        Some(patch.clone()),
    )
    .await;
    denied(st, &body, "identity:update_user");
    let (st, body) = call(&s, Method::DELETE, &member_path, &p.domain_manager, None).await;
    denied(st, &body, "identity:delete_user");
    // Unknown user: the rule cannot match for a domain manager (403); an admin learns 404.
    let (st, body) = call(
        &s,
        Method::DELETE,
        "users/nosuchuser",
        &p.domain_manager,
        None,
    )
    .await;
    denied(st, &body, "identity:delete_user");
    let (st, body) = call(
        &s,
        Method::DELETE,
        "users/nosuchuser",
        &p.system_admin,
        None,
    )
    .await;
    error(st, &body, 404);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{m1}"),
        &p.domain_manager,
        Some(patch.clone()),
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(body["user"]["description"], "touched");
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{m1}"),
        &p.domain_manager,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = call(
        &s,
        Method::PATCH,
        &member_path,
        &p.project_admin,
        Some(patch),
    )
    .await;
    ok(st, &body, 200);

    // Revoking someone else's tokens: admins and the owner only.
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{}/tokens", p.project_member_id),
        &p.project_reader,
        None,
    )
    .await;
    denied(st, &body, "identity:revoke_tokens_for_user");
    assert_eq!(validation_status(&s, &p.project_member).await, 200);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("users/{}/tokens", p.project_member_id),
        &p.system_admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    assert_eq!(validation_status(&s, &p.project_member).await, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_policy_per_persona() {
    let s = IdentityServer::start(Dialect::Sqlite).await;
    s.add_secrets(&SECRETS);
    let p = Personas::build(&s).await;
    let default = s.default_domain_id.clone();
    let in_dom = s.create_user("dom-user", PW, &p.domain_id).await;

    let create = |name: &str, domain: &str| json!({"group": {"name": name, "domain_id": domain}});
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &p.domain_manager,
        Some(create("dg", &p.domain_id)),
    )
    .await;
    ok(st, &body, 201);
    let dg = body["group"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &p.domain_manager,
        Some(create("dg2", &default)),
    )
    .await;
    denied(st, &body, "identity:create_group");
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &p.system_admin,
        Some(create("sg", &default)),
    )
    .await;
    ok(st, &body, 201);
    let sg = body["group"]["id"].as_str().unwrap().to_string();
    let (st, body) = call(
        &s,
        Method::POST,
        "groups",
        &p.project_admin,
        Some(create("pg", &default)),
    )
    .await;
    ok(st, &body, 201);
    for token in [&p.project_member, &p.project_reader, &p.domain_reader] {
        let (st, body) = call(
            &s,
            Method::POST,
            "groups",
            token,
            Some(create("x", &p.domain_id)),
        )
        .await;
        denied(st, &body, "identity:create_group");
    }

    // Reading: admins, system readers, domain readers within their domain.
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("groups/{dg}"),
        &p.domain_reader,
        None,
    )
    .await;
    ok(st, &body, 200);
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("groups/{sg}"),
        &p.domain_reader,
        None,
    )
    .await;
    denied(st, &body, "identity:get_group");
    for token in [&p.project_member, &p.project_reader] {
        let (st, body) = call(&s, Method::GET, &format!("groups/{sg}"), token, None).await;
        denied(st, &body, "identity:get_group");
        let (st, body) = call(&s, Method::GET, "groups", token, None).await;
        denied(st, &body, "identity:list_groups");
        let (st, body) = call(&s, Method::GET, &format!("groups/{sg}/users"), token, None).await;
        denied(st, &body, "identity:list_users_in_group");
    }
    let (st, body) = call(&s, Method::GET, "groups", &p.domain_reader, None).await;
    ok(st, &body, 200);
    assert_eq!(
        ids(&body, "groups"),
        [dg.as_str()],
        "a domain-scoped caller sees its domain only"
    );
    let (st, body) = call(&s, Method::GET, "groups", &p.system_admin, None).await;
    ok(st, &body, 200);
    assert_eq!(names(&body, "groups"), ["dg", "pg", "sg"]);

    // Membership: a domain manager only joins users and groups of its own domain.
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{dg}/users/{in_dom}"),
        &p.domain_manager,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{dg}/users/{}", p.project_member_id),
        &p.domain_manager,
        None,
    )
    .await;
    denied(st, &body, "identity:add_user_to_group");
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{sg}/users/{in_dom}"),
        &p.domain_manager,
        None,
    )
    .await;
    denied(st, &body, "identity:add_user_to_group");
    let (st, body) = call(
        &s,
        Method::HEAD,
        &format!("groups/{dg}/users/{in_dom}"),
        &p.domain_reader,
        None,
    )
    .await;
    ok(st, &body, 204);
    for token in [&p.project_member, &p.project_reader] {
        let (st, body) = call(
            &s,
            Method::PUT,
            &format!("groups/{sg}/users/{}", p.project_member_id),
            token,
            None,
        )
        .await;
        denied(st, &body, "identity:add_user_to_group");
        let (st, body) = call(
            &s,
            Method::GET,
            &format!("groups/{dg}/users/{in_dom}"),
            token,
            None,
        )
        .await;
        denied(st, &body, "identity:check_user_in_group");
        let (st, body) = call(
            &s,
            Method::DELETE,
            &format!("groups/{dg}/users/{in_dom}"),
            token,
            None,
        )
        .await;
        denied(st, &body, "identity:remove_user_from_group");
    }
    let (st, body) = call(
        &s,
        Method::PUT,
        &format!("groups/{sg}/users/{}", p.project_member_id),
        &p.project_admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("groups/{dg}/users/{in_dom}"),
        &p.domain_manager,
        None,
    )
    .await;
    ok(st, &body, 204);

    // Updating and deleting.
    let rename = json!({"group": {"name": "renamed"}});
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("groups/{sg}"),
        &p.domain_manager,
        Some(rename.clone()),
    )
    .await;
    denied(st, &body, "identity:update_group");
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("groups/{dg}"),
        &p.domain_manager,
        Some(rename),
    )
    .await;
    ok(st, &body, 200);
    for token in [&p.project_member, &p.project_reader, &p.domain_reader] {
        let (st, body) = call(&s, Method::DELETE, &format!("groups/{dg}"), token, None).await;
        denied(st, &body, "identity:delete_group");
    }
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("groups/{sg}"),
        &p.domain_manager,
        None,
    )
    .await;
    denied(st, &body, "identity:delete_group");
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("groups/{dg}"),
        &p.domain_manager,
        None,
    )
    .await;
    ok(st, &body, 204);
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("groups/{sg}"),
        &p.domain_admin,
        None,
    )
    .await;
    ok(st, &body, 204);
    s.stop().await;
}

// ----- pagination (SQLite) -----------------------------------------------------------------

/// Follows `links.next` from `path` and returns every id, checking each page's size.
async fn walk(s: &IdentityServer, token: &str, path: &str, key: &str, page: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = s.url(path);
    for _ in 0..50 {
        let resp = s
            .client
            .get(&url)
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        let got = ids(&body, key);
        assert!(got.len() <= page, "{body}");
        out.extend(got.clone());
        match body["links"]["next"].as_str() {
            Some(next) => {
                assert_eq!(body["truncated"], json!(true), "{body}");
                assert_eq!(got.len(), page);
                url = next.to_string();
            }
            None => {
                assert!(body.get("truncated").is_none(), "{body}");
                return out;
            }
        }
    }
    panic!("more than 50 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_follows_list_limits() {
    let s = IdentityServer::start_with(Dialect::Sqlite, |c| c.default.list_limit = Some(2)).await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let mut want = vec![s.admin_user_id.clone()];
    for i in 0..4 {
        want.push(s.create_user(&format!("u{i}"), PW, &dom).await);
    }
    want.sort();
    assert_eq!(walk(&s, &admin, "users", "users", 2).await, want);
    // An explicit limit and marker win over the configured limit.
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("users?limit=3&marker={}", want[0]),
        &admin,
        None,
    )
    .await;
    ok(st, &body, 200);
    assert_eq!(ids(&body, "users"), want[1..4].to_vec());
    assert_eq!(body["truncated"], json!(true));
    let next = body["links"]["next"].as_str().unwrap();
    assert!(
        next.contains(&format!("marker={}", want[3])) && next.contains("limit=3"),
        "{next}"
    );
    let (_, body) = call(&s, Method::GET, "users?name=u1", &admin, None).await;
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    assert!(body.get("truncated").is_none());

    let mut groups = Vec::new();
    for i in 0..3 {
        let (st, body) = call(
            &s,
            Method::POST,
            "groups",
            &admin,
            Some(json!({"group": {"name": format!("g{i}")}})),
        )
        .await;
        ok(st, &body, 201);
        let gid = body["group"]["id"].as_str().unwrap().to_string();
        for uid in &want {
            let (st, body) = call(
                &s,
                Method::PUT,
                &format!("groups/{gid}/users/{uid}"),
                &admin,
                None,
            )
            .await;
            ok(st, &body, 204);
        }
        groups.push(gid);
    }
    groups.sort();
    assert_eq!(walk(&s, &admin, "groups", "groups", 2).await, groups);
    assert_eq!(
        walk(
            &s,
            &admin,
            &format!("groups/{}/users", groups[0]),
            "users",
            2
        )
        .await,
        want
    );
    assert_eq!(
        walk(
            &s,
            &admin,
            &format!("users/{}/groups", want[0]),
            "groups",
            2
        )
        .await,
        groups
    );
    s.stop().await;

    // `[identity] list_limit` comes before `[DEFAULT] list_limit` for users and groups.
    let s = IdentityServer::start_with(Dialect::Sqlite, |c| {
        c.default.list_limit = Some(1);
        c.identity.list_limit = Some(3);
    })
    .await;
    s.add_secrets(&SECRETS);
    let admin = s.admin_token().await;
    let dom = s.default_domain_id.clone();
    let mut want = vec![s.admin_user_id.clone()];
    for i in 0..4 {
        want.push(s.create_user(&format!("u{i}"), PW, &dom).await);
    }
    want.sort();
    assert_eq!(walk(&s, &admin, "users", "users", 3).await, want);
    s.stop().await;
}

/// A password change revokes the user's tokens up to that instant; a login with the new password
/// in the same second must still get a token that validates (Baton mints it in the next second;
/// tokens carry whole seconds, so minting at once would give a token born revoked).
#[tokio::test]
async fn login_right_after_a_password_change_gets_a_valid_token() {
    let s = IdentityServer::start_manual_clock(Dialect::Sqlite).await;
    s.add_secrets(&SECRETS);
    let admin = s.system_admin_token().await;
    let dom = s.default_domain_id.clone();
    let user = s.create_user("frank", PW, &dom).await;
    let old = s.token("frank", PW, Value::Null).await;
    // Start of a second: the change and the login below fall in the same one.
    s.next_second().await;
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{user}"),
        &admin,
        Some(json!({"user": {"password": NEW_PW}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let started = std::time::Instant::now();
    let fresh = s.token("frank", NEW_PW, Value::Null).await;
    assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");
    assert_eq!(
        validation_status(&s, &fresh).await,
        200,
        "the new token validates"
    );
    assert_eq!(
        validation_status(&s, &old).await,
        404,
        "the old token is revoked"
    );
    s.stop().await;
}
