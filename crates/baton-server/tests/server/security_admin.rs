//! Regressions for the security review of 2026-12 (`shared/research/security-review-2026-12.md`)
//! in the admin API, on every database:
//!
//! * #10: policy answers before existence. A caller the policy refuses gets 403 whether or not
//!   the project, domain, role or actor of the path exists; only a caller it allows learns of a
//!   404. (Keystone 30 does this for `/v3/projects/{id}` and `GET /v3/domains/{id}`; its grant
//!   routes and `PATCH`/`DELETE /v3/domains/{id}` answer 404 before policy, which Baton does not
//!   copy: see `tests/interop/test_review_existence.py`.)
//! * #12: a body's `id`, `domain_id`, `parent_id` or `is_domain` is never stored in `extra`, and a
//!   stored `extra` never shadows a column when a project or domain is shown.

use baton_store::Dialect;
use baton_testkit::{call, error, on_every_database, IdentityServer, Personas};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "Secur1ty-Review-Pw-5517";
/// An id nothing has.
const NOPE: &str = "0123456789abcdef0123456789abcdef";

/// What the checks need besides the [`Personas`] (whose project is the member's and reader's own,
/// and whose domain is the domain manager's).
struct World {
    /// A project in the default domain no persona has a role on.
    other: String,
    /// A project in the domain personas' domain.
    dxp: String,
    /// Holds `member` on `other`.
    victim: String,
    member_role: String,
}

impl World {
    async fn new(s: &IdentityServer, p: &Personas) -> World {
        let dom = s.default_domain_id.clone();
        let other = s.create_project("review-other", &dom).await;
        let dxp = s.create_project("review-dxp", &p.domain_id).await;
        let victim = s.create_user("review-victim", PW, &dom).await;
        s.grant_project(&victim, &other, "member").await;
        World {
            other,
            dxp,
            victim,
            member_role: s.role_id("member").await,
        }
    }
}

/// The body a write needs to get past its schema, so that only policy and existence decide.
fn body_for(method: &Method, path: &str) -> Option<Value> {
    match *method {
        Method::PATCH if path.starts_with("domains/") => {
            Some(json!({"domain": {"description": "probe"}}))
        }
        Method::PATCH => Some(json!({"project": {"description": "probe"}})),
        Method::PUT if path.ends_with("/tags") => Some(json!({"tags": ["a"]})),
        _ => None,
    }
}

async fn status(s: &IdentityServer, method: Method, path: &str, token: &str) -> u16 {
    let body = body_for(&method, path);
    call(s, method, path, token, body).await.0.as_u16()
}

async fn project_routes_answer_403_before_404(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let p = Personas::build(&s).await;
    let w = World::new(&s, &p).await;
    let long = "x".repeat(300);
    let project_routes = |p: &str| {
        vec![
            (Method::GET, format!("projects/{p}")),
            (Method::HEAD, format!("projects/{p}")),
            (Method::PATCH, format!("projects/{p}")),
            (Method::DELETE, format!("projects/{p}")),
            (Method::GET, format!("projects/{p}/tags")),
            (Method::PUT, format!("projects/{p}/tags")),
            (Method::DELETE, format!("projects/{p}/tags")),
            (Method::GET, format!("projects/{p}/tags/t1")),
            (Method::HEAD, format!("projects/{p}/tags/t1")),
            (Method::PUT, format!("projects/{p}/tags/t1")),
            (Method::DELETE, format!("projects/{p}/tags/t1")),
        ]
    };
    // The review's reproduction: a member of one project asks about another, existing or not.
    for (who, token) in [
        ("member", &p.project_member),
        ("reader", &p.project_reader),
        ("domain manager", &p.domain_manager),
    ] {
        for project in [w.other.as_str(), NOPE, long.as_str()] {
            for (m, path) in project_routes(project) {
                assert_eq!(
                    status(&s, m.clone(), &path, token).await,
                    403,
                    "{who}: {m} {path}"
                );
            }
        }
    }
    // The domain manager's own domain: the policy places a project only when it exists.
    assert_eq!(
        status(
            &s,
            Method::GET,
            &format!("projects/{}", w.dxp),
            &p.domain_manager
        )
        .await,
        200
    );
    // A caller the policy allows learns that there is no such project, with Keystone's message.
    for project in [NOPE, long.as_str()] {
        for (m, path) in project_routes(project) {
            let (st, body) = call(&s, m.clone(), &path, &p.system_admin, body_for(&m, &path)).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "system admin: {m} {path}");
            if m != Method::HEAD {
                assert_eq!(
                    body["error"]["message"],
                    json!(format!("Could not find project: {project}.")),
                    "{m} {path}"
                );
            }
        }
    }
    // Nothing changed behind the 403s.
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("projects/{}", w.other),
        &p.system_admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["project"]["description"], json!(""));
    assert_eq!(body["project"]["tags"], json!([]));
    s.stop().await;
}

async fn domain_routes_answer_403_before_404(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let p = Personas::build(&s).await;
    // Keystone 30: GET /v3/domains/{id} builds its target with whatever exists.
    for (who, token, own_domain) in [
        ("member", &p.project_member, s.default_domain_id.as_str()),
        ("reader", &p.project_reader, s.default_domain_id.as_str()),
        ("domain manager", &p.domain_manager, p.domain_id.as_str()),
    ] {
        let path = format!("domains/{own_domain}");
        assert_eq!(status(&s, Method::GET, &path, token).await, 200, "{who}");
        let foreign = if own_domain == p.domain_id {
            "default"
        } else {
            &p.domain_id
        };
        for dom in [foreign, NOPE] {
            for m in [Method::GET, Method::HEAD, Method::PATCH, Method::DELETE] {
                let path = format!("domains/{dom}");
                assert_eq!(
                    status(&s, m.clone(), &path, token).await,
                    403,
                    "{who}: {m} {path}"
                );
            }
        }
    }
    for m in [Method::GET, Method::PATCH, Method::DELETE] {
        let (st, body) = call(
            &s,
            m.clone(),
            &format!("domains/{NOPE}"),
            &p.system_admin,
            body_for(&m, "domains/"),
        )
        .await;
        assert_eq!(
            error(st, &body, 404),
            format!("Could not find domain: {NOPE}."),
            "{m}"
        );
    }
    s.stop().await;
}

async fn grant_routes_answer_403_before_404(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let p = Personas::build(&s).await;
    let w = World::new(&s, &p).await;
    let (other, own, dx, dxp) = (&w.other, &p.project_id, &p.domain_id, &w.dxp);
    let (alice, victim, mgr, role) = (
        &p.project_member_id,
        &w.victim,
        &p.domain_manager_id,
        &w.member_role,
    );
    // Each path with one part missing, and the same path with everything there: a refused caller
    // cannot tell them apart.
    let pairs: Vec<(String, String)> = vec![
        (
            format!("projects/{other}/users/{NOPE}/roles/{role}"),
            format!("projects/{other}/users/{alice}/roles/{role}"),
        ),
        (
            format!("projects/{NOPE}/users/{alice}/roles/{role}"),
            format!("projects/{other}/users/{alice}/roles/{role}"),
        ),
        (
            format!("projects/{other}/users/{victim}/roles/{NOPE}"),
            format!("projects/{other}/users/{victim}/roles/{role}"),
        ),
        (
            format!("projects/{other}/groups/{NOPE}/roles/{role}"),
            format!("projects/{other}/users/{victim}/roles/{role}"),
        ),
        (
            format!("domains/{NOPE}/users/{alice}/roles/{role}"),
            format!("domains/{dx}/users/{alice}/roles/{role}"),
        ),
        (
            format!("domains/{dx}/users/{NOPE}/roles/{role}"),
            format!("domains/{dx}/users/{alice}/roles/{role}"),
        ),
        (
            format!("system/users/{NOPE}/roles/{role}"),
            format!("system/users/{alice}/roles/{role}"),
        ),
        (
            format!("system/users/{alice}/roles/{NOPE}"),
            format!("system/users/{alice}/roles/{role}"),
        ),
    ];
    for (who, token) in [("member", &p.project_member), ("reader", &p.project_reader)] {
        for (missing, present) in &pairs {
            for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
                for path in [missing, present] {
                    assert_eq!(
                        status(&s, m.clone(), path, token).await,
                        403,
                        "{who}: {m} {path}"
                    );
                }
            }
        }
        for path in [
            format!("projects/{other}/users/{NOPE}/roles"),
            format!("projects/{other}/users/{alice}/roles"),
            format!("projects/{NOPE}/users/{alice}/roles"),
            format!("domains/{NOPE}/users/{alice}/roles"),
            format!("system/users/{NOPE}/roles"),
            format!("system/users/{victim}/roles"),
        ] {
            assert_eq!(
                status(&s, Method::GET, &path, token).await,
                403,
                "{who}: {path}"
            );
        }
    }
    // The domain manager may read the grants of its own domain's users on its own domain's
    // projects; a user the policy cannot place in the domain is refused, existing or not.
    for path in [
        format!("projects/{dxp}/users/{NOPE}/roles/{role}"),
        format!("projects/{dxp}/users/{alice}/roles/{role}"),
        format!("projects/{own}/users/{alice}/roles/{role}"),
        format!("projects/{NOPE}/users/{mgr}/roles/{role}"),
    ] {
        assert_eq!(
            status(&s, Method::GET, &path, &p.domain_manager).await,
            403,
            "domain manager: {path}"
        );
    }
    let (st, body) = call(
        &s,
        Method::GET,
        &format!("projects/{dxp}/users/{mgr}/roles/{role}"),
        &p.domain_manager,
        None,
    )
    .await;
    assert!(error(st, &body, 404).starts_with("Could not find role assignment"));

    // Allowed callers get Keystone's 404s, in its order of lookups.
    for (path, want) in [
        (
            format!("projects/{NOPE}/users/{NOPE}/roles/{NOPE}"),
            format!("Could not find role: {NOPE}."),
        ),
        (
            format!("projects/{NOPE}/users/{NOPE}/roles/{role}"),
            format!("Could not find user: {NOPE}."),
        ),
        (
            format!("projects/{NOPE}/users/{alice}/roles/{role}"),
            format!("Could not find project: {NOPE}."),
        ),
        (
            format!("domains/{NOPE}/users/{NOPE}/roles/{NOPE}"),
            format!("Could not find domain: {NOPE}."),
        ),
        (
            format!("domains/{dx}/users/{NOPE}/roles/{NOPE}"),
            format!("Could not find role: {NOPE}."),
        ),
        (
            format!("domains/{dx}/groups/{NOPE}/roles/{role}"),
            format!("Could not find group: {NOPE}."),
        ),
        (
            format!("system/users/{NOPE}/roles/{NOPE}"),
            format!("Could not find role: {NOPE}."),
        ),
        (
            format!("system/users/{NOPE}/roles/{role}"),
            format!("Could not find user: {NOPE}."),
        ),
    ] {
        for m in [Method::GET, Method::PUT] {
            let (st, body) = call(&s, m.clone(), &path, &p.system_admin, None).await;
            assert_eq!(error(st, &body, 404), want, "{m} {path}");
        }
    }
    // A revocation may name an actor that is gone.
    let (st, body) = call(
        &s,
        Method::DELETE,
        &format!("projects/{other}/users/{NOPE}/roles/{role}"),
        &p.system_admin,
        None,
    )
    .await;
    assert!(error(st, &body, 404).starts_with("Could not find role assignment"));
    for path in [
        format!("projects/{other}/users/{NOPE}/roles"),
        format!("domains/{NOPE}/users/{alice}/roles"),
        format!("system/users/{NOPE}/roles"),
    ] {
        assert_eq!(
            status(&s, Method::GET, &path, &p.system_admin).await,
            404,
            "{path}"
        );
    }

    // Nothing changed behind the 403s: the victim still holds her role, nobody else got one.
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("projects/{other}/users/{victim}/roles/{role}"),
        &p.system_admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("projects/{other}/users/{alice}/roles/{role}"),
        &p.system_admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.stop().await;
}

on_every_database!(
    project_routes_answer_403_before_404,
    domain_routes_answer_403_before_404,
    grant_routes_answer_403_before_404,
);

// ----- #12: body fields never shadow a column ----------------------------------------------------

/// What a domain's or project's row keeps in `extra`, as stored.
async fn stored_extra(s: &IdentityServer, id: &str) -> Value {
    let p = s
        .store
        .get_project(id)
        .await
        .expect("get_project")
        .expect("row");
    serde_json::from_str(p.extra.as_deref().unwrap_or("{}")).expect("extra is JSON")
}

#[track_caller]
fn assert_no_column_keys(extra: &Value) {
    for k in [
        "id",
        "domain_id",
        "parent_id",
        "is_domain",
        "explicit_domain_id",
    ] {
        assert!(extra.get(k).is_none(), "{k} stored in extra: {extra}");
    }
}

const SPOOF_ID: &str = "c0ffee00c0ffee00c0ffee00c0ffee00";

async fn domain_body_cannot_set_columns(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    // The review's reproduction.
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(
            json!({"domain": {"name": "dspoof", "is_domain": false, "domain_id": "default",
            "parent_id": "x", "id": SPOOF_ID, "ticket": "OPS-1"}}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let dom = body["domain"].clone();
    let id = dom["id"].as_str().unwrap().to_string();
    assert_ne!(id, SPOOF_ID);
    let mut keys: Vec<&str> = dom
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    // Keystone 30's answer, key for key.
    assert_eq!(
        keys,
        [
            "description",
            "enabled",
            "id",
            "links",
            "name",
            "options",
            "tags",
            "ticket"
        ]
    );
    assert_no_column_keys(&stored_extra(&s, &id).await);
    let (st, shown) = call(&s, Method::GET, &format!("domains/{id}"), &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(shown["domain"], dom);
    assert_eq!(
        call(
            &s,
            Method::GET,
            &format!("domains/{SPOOF_ID}"),
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // An update cannot set them either (Keystone overwrites them with the domain's own).
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("domains/{id}"),
        &admin,
        Some(json!({"domain": {"is_domain": false, "domain_id": "default", "parent_id": "x"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["domain"], dom);
    assert_no_column_keys(&stored_extra(&s, &id).await);

    // The projects API shows the domain as a root project acting as a domain.
    let (st, body) = call(
        &s,
        Method::GET,
        "projects?is_domain=true&name=dspoof",
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let p = &body["projects"][0];
    assert_eq!(p["id"], json!(id));
    assert_eq!(p["is_domain"], json!(true));
    assert_eq!(p["domain_id"], json!(null));
    assert_eq!(p["parent_id"], json!(null));

    // Keystone's explicit_domain_id chooses the id; it is not an attribute.
    let chosen = "5e1f0c1d2b3a49d8a7f6e5d4c3b2a190";
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "dexplicit", "explicit_domain_id": chosen}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["domain"]["id"], json!(chosen));
    assert!(body["domain"].get("explicit_domain_id").is_none(), "{body}");
    assert_no_column_keys(&stored_extra(&s, chosen).await);
    for bad in [
        "5E1F0C1D2B3A49D8A7F6E5D4C3B2A190",
        "5e1f0c1d-2b3a-49d8-a7f6-e5d4c3b2a190",
        "nope",
    ] {
        let (st, body) = call(
            &s,
            Method::POST,
            "domains",
            &admin,
            Some(json!({"domain": {"name": "dbad", "explicit_domain_id": bad}})),
        )
        .await;
        assert_eq!(
            error(st, &body, 400),
            "Domain ID does not conform to required UUID format.",
            "{bad}"
        );
    }
    let (st, body) = call(
        &s,
        Method::POST,
        "domains",
        &admin,
        Some(json!({"domain": {"name": "dexplicit2", "explicit_domain_id": chosen}})),
    )
    .await;
    error(st, &body, 409);
    s.stop().await;
}

async fn project_body_cannot_set_columns(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "pspoof", "id": SPOOF_ID, "ticket": "OPS-2"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let id = body["project"]["id"].as_str().unwrap().to_string();
    assert_ne!(id, SPOOF_ID);
    assert_eq!(body["project"]["ticket"], json!("OPS-2"));
    let extra = stored_extra(&s, &id).await;
    assert_no_column_keys(&extra);
    assert_eq!(extra, json!({"ticket": "OPS-2"}));

    // A project acting as a domain is a root: Keystone refuses a parent or a domain.
    for fields in [
        json!({"parent_id": "default"}),
        json!({"domain_id": "default"}),
    ] {
        let mut p = json!({"name": "pdspoof", "is_domain": true});
        for (k, v) in fields.as_object().unwrap() {
            p[k] = v.clone();
        }
        let (st, body) = call(
            &s,
            Method::POST,
            "projects",
            &admin,
            Some(json!({ "project": p })),
        )
        .await;
        assert_eq!(
            error(st, &body, 400),
            "only root projects are allowed to act as domains.",
            "{fields}"
        );
    }
    let (st, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(
            json!({"project": {"name": "pdspoof", "is_domain": true, "id": SPOOF_ID,
            "domain_id": null, "parent_id": null}}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let did = body["project"]["id"].as_str().unwrap().to_string();
    assert_ne!(did, SPOOF_ID);
    assert_eq!(body["project"]["is_domain"], json!(true));
    assert_eq!(body["project"]["domain_id"], json!(null));
    assert_no_column_keys(&stored_extra(&s, &did).await);
    s.stop().await;
}

/// Rows written by an older Baton may hold column names in `extra`: they are never shown.
async fn stored_extra_never_shadows_a_column(d: Dialect) {
    let s = IdentityServer::start(d).await;
    let admin = s.admin_token().await;
    let poison = json!({"id": SPOOF_ID, "name": "spoofed", "domain_id": "default",
        "parent_id": "x", "is_domain": false, "enabled": false, "description": "spoofed",
        "tags": ["spoofed"], "options": {"spoofed": true}, "ticket": "OPS-3"})
    .to_string();
    let dom = s.create_domain("dpoisoned").await;
    let proj = s.create_project("ppoisoned", &s.default_domain_id).await;
    for id in [&dom, &proj] {
        let mut p = s.store.get_project(id).await.unwrap().unwrap();
        p.extra = Some(poison.clone());
        s.store.update_project(&p).await.unwrap();
    }
    s.state.tokens.invalidate_caches();
    let (st, body) = call(&s, Method::GET, &format!("domains/{dom}"), &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let d = &body["domain"];
    assert_eq!(d["id"], json!(dom));
    assert_eq!(d["name"], json!("dpoisoned"));
    assert_eq!(d["enabled"], json!(true));
    assert_eq!(d["description"], json!(""));
    assert_eq!(d["tags"], json!([]));
    assert_eq!(d["options"], json!({}));
    assert_eq!(d["ticket"], json!("OPS-3"));
    for k in ["domain_id", "parent_id", "is_domain"] {
        assert!(d.get(k).is_none(), "{k}: {d}");
    }
    let (st, body) = call(&s, Method::GET, &format!("projects/{proj}"), &admin, None).await;
    assert_eq!(st, StatusCode::OK);
    let p = &body["project"];
    assert_eq!(p["id"], json!(proj));
    assert_eq!(p["name"], json!("ppoisoned"));
    assert_eq!(p["domain_id"], json!(s.default_domain_id));
    assert_eq!(p["parent_id"], json!(s.default_domain_id));
    assert_eq!(p["is_domain"], json!(false));
    assert_eq!(p["enabled"], json!(true));
    assert_eq!(p["tags"], json!([]));
    assert_eq!(p["ticket"], json!("OPS-3"));
    s.stop().await;
}

on_every_database!(
    domain_body_cannot_set_columns,
    project_body_cannot_set_columns,
    stored_extra_never_shadows_a_column,
);

// ----- #11: strict_password_check ---------------------------------------------------------------

/// bcrypt's limit, then one byte over it, and over it in bytes but not in characters.
const AT_LIMIT: &str = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp9";
const OVER: &str = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp9X";

fn too_long(limit: usize) -> String {
    format!(
        "The password length must be less than or equal to {limit}. The server could not comply with the request because the password is invalid."
    )
}

async fn login(s: &IdentityServer, user_id: &str, password: &str) -> u16 {
    let body = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"id": user_id, "password": password}}}}});
    baton_testkit::send(s, Method::POST, "auth/tokens", None, Some(body))
        .await
        .0
        .as_u16()
}

async fn create_user(s: &IdentityServer, admin: &str, name: &str, pw: &str) -> (StatusCode, Value) {
    call(
        s,
        Method::POST,
        "users",
        admin,
        Some(json!({"user": {"name": name, "password": pw}})),
    )
    .await
}

async fn change_password(
    s: &IdentityServer,
    user_id: &str,
    original: &str,
    new: &str,
) -> (StatusCode, Value) {
    baton_testkit::send(
        s,
        Method::POST,
        &format!("users/{user_id}/password"),
        None,
        Some(json!({"user": {"original_password": original, "password": new}})),
    )
    .await
}

async fn strict_password_check_refuses_truncation(d: Dialect) {
    let s = IdentityServer::start_with(d, |c| c.default.strict_password_check = true).await;
    let multibyte = "é".repeat(37); // 37 characters, 74 bytes
    s.add_secrets(&[AT_LIMIT, OVER, &multibyte, "n3w-Passw0rd-1"]);
    let admin = s.admin_token().await;
    assert_eq!(AT_LIMIT.len(), 72);

    // Create: Keystone 30 answers 403 (PasswordVerificationError) and creates nothing.
    for (name, pw) in [("sp-over", OVER), ("sp-multibyte", multibyte.as_str())] {
        let (st, body) = create_user(&s, &admin, name, pw).await;
        assert_eq!(error(st, &body, 403), too_long(72), "{name}");
        let (_, list) = call(&s, Method::GET, &format!("users?name={name}"), &admin, None).await;
        assert_eq!(list["users"], json!([]), "{name}");
    }
    let (st, body) = create_user(&s, &admin, "sp-user", AT_LIMIT).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let uid = body["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(login(&s, &uid, AT_LIMIT).await, 201);

    // Update: refused, the password unchanged.
    let (st, body) = call(
        &s,
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"password": OVER}})),
    )
    .await;
    assert_eq!(error(st, &body, 403), too_long(72));
    assert_eq!(login(&s, &uid, AT_LIMIT).await, 201);

    // Self-service change: a new password over the limit is refused after the original is
    // checked (a wrong original is still a 401), an original over the limit for anyone.
    let (st, body) = change_password(&s, &uid, AT_LIMIT, OVER).await;
    assert_eq!(error(st, &body, 403), too_long(72));
    let (st, body) = change_password(&s, &uid, "wr0ng-Passw0rd", OVER).await;
    error(st, &body, 401);
    for who in [uid.as_str(), NOPE] {
        let (st, body) = change_password(&s, who, OVER, "n3w-Passw0rd-1").await;
        assert_eq!(error(st, &body, 403), too_long(72), "{who}");
    }
    assert_eq!(login(&s, &uid, AT_LIMIT).await, 201);
    let (st, body) = change_password(&s, &uid, AT_LIMIT, "n3w-Passw0rd-1").await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(login(&s, &uid, "n3w-Passw0rd-1").await, 201);
    s.stop().await;

    // Below bcrypt's limit, `[identity] max_password_length` is the limit.
    let s = IdentityServer::start_with(d, |c| {
        c.default.strict_password_check = true;
        c.identity.max_password_length = 50;
    })
    .await;
    let admin = s.admin_token().await;
    let (st, body) = create_user(&s, &admin, "sp-short", &"q".repeat(51)).await;
    assert_eq!(error(st, &body, 403), too_long(50));
    let (st, _) = create_user(&s, &admin, "sp-short", &"q".repeat(50)).await;
    assert_eq!(st, StatusCode::CREATED);
    s.stop().await;
}

/// Without the option (Keystone's default) a long password is truncated to bcrypt's 72 bytes.
async fn without_strict_password_check_passwords_are_truncated(d: Dialect) {
    let s = IdentityServer::start(d).await;
    s.add_secrets(&[AT_LIMIT, OVER]);
    let admin = s.admin_token().await;
    let (st, body) = create_user(&s, &admin, "sp-over", OVER).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let uid = body["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(login(&s, &uid, OVER).await, 201);
    assert_eq!(login(&s, &uid, AT_LIMIT).await, 201);
    s.stop().await;
}

on_every_database!(
    strict_password_check_refuses_truncation,
    without_strict_password_check_passwords_are_truncated,
);
