//! Entry points for the `request_body` and `policy_file` fuzz targets in `fuzz/` and for
//! replaying their corpora in the normal test suite (`tests/server/fuzz_corpus.rs`). Not part
//! of the crate's API.
//!
//! `request_body` runs, for one route picked by the first byte, the body readers its handler
//! runs before the policy check, in the handler's order (everything after needs a database).

use baton_store::Project;
use chrono::NaiveDateTime;

use super::admin::{
    application_credentials as app_creds, catalog, credentials, domains, projects, roles, trusts,
    users, JsonBody, Obj, NAME_MAX,
};
use crate::error::{ApiError, ApiResult};

/// The body readers of one route.
type Reader = fn(&[u8]) -> ApiResult<()>;

/// The routes with a JSON body, in the order the first byte picks them.
const ROUTES: [Reader; 19] = [
    auth_tokens,
    user_create,
    user_update,
    project_create,
    project_update,
    domain_create,
    role_create,
    role_update,
    group_create,
    trust_create,
    app_cred_create,
    credential_create,
    credential_update,
    service_write,
    endpoint_write,
    region_write,
    ec2tokens,
    oauth1_authorize,
    oauth1_signed,
];

/// Feeds `data[1..]` to the body readers of route `data[0] % 19`: never panics, and every
/// refusal is a 4xx client error in Keystone's error shape, never a 500.
pub fn request_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let route = ROUTES[usize::from(pick) % ROUTES.len()];
    if let Err(e) = route(body) {
        assert_client_error(&e);
    }
}

fn assert_client_error(e: &ApiError) {
    let status = e.status();
    assert!(
        status.is_client_error(),
        "a body was refused with {status}: {e:?}"
    );
    let _ = e.render(false, None);
}

fn member(body: &[u8], key: &str) -> ApiResult<Obj> {
    JsonBody::parse(body)?.member(key)
}

fn auth_tokens(body: &[u8]) -> ApiResult<()> {
    let doc = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed request body: {e}")))?;
    if let serde_json::Value::Object(map) = &doc {
        super::admin::refuse_nul(map)?;
    }
    let methods = ["password", "token", "application_credential", "totp"].map(String::from);
    super::auth::parse_auth_request(&doc, &methods).map(drop)
}

fn user_fields(obj: &Obj) -> ApiResult<()> {
    obj.id("domain_id", false)?;
    obj.boolean("enabled")?;
    obj.id("default_project_id", true)?;
    obj.nullable_string("description", usize::MAX)?;
    users::read_secret(obj, "password", true, Some(4096))?;
    users::read_options(obj)?;
    users::refuse_federated(obj)
}

fn user_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "user")?;
    obj.required_name("name")?;
    user_fields(&obj)
}

fn user_update(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "user")?;
    obj.not_empty()?;
    obj.name("name")?;
    user_fields(&obj)
}

fn project_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "project")?;
    obj.name_within("name", projects::PROJECT_NAME_MAX)?;
    obj.nullable_string("description", usize::MAX)?;
    obj.id("domain_id", true)?;
    obj.id("parent_id", true)?;
    obj.boolean("enabled")?;
    obj.boolean("is_domain")?;
    projects::read_tags(&obj)?;
    projects::read_options(&obj)?;
    let _ = obj.extra(projects::NOT_EXTRA);
    Ok(())
}

fn project_update(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "project")?;
    let current = Project {
        id: "fuzz".into(),
        name: "fuzz".into(),
        domain_id: "default".into(),
        parent_id: Some("default".into()),
        enabled: true,
        is_domain: false,
        description: None,
        extra: None,
    };
    projects::read_changes(&obj, &current)?;
    obj.id("domain_id", true)?;
    obj.id("parent_id", true)?;
    obj.boolean("is_domain").map(drop)
}

fn domain_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "domain")?;
    obj.name_within("name", projects::PROJECT_NAME_MAX)?;
    obj.nullable_string("description", usize::MAX)?;
    obj.boolean("enabled")?;
    projects::read_tags(&obj)?;
    projects::read_options(&obj)?;
    domains::explicit_domain_id(&obj).map(drop)
}

fn role_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "role")?;
    obj.required_name("name")?;
    obj.nullable_string("description", roles::DESCRIPTION_MAX)?;
    roles::domain_id_field(&obj)?;
    roles::options_field(&obj).map(drop)
}

fn role_update(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "role")?;
    obj.not_empty()?;
    obj.name("name")?;
    obj.nullable_string("description", roles::DESCRIPTION_MAX)?;
    roles::domain_id_field(&obj)?;
    roles::options_field(&obj).map(drop)
}

fn group_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "group")?;
    obj.name_within("name", super::admin::groups::GROUP_NAME_MAX)?;
    obj.id("domain_id", false)?;
    obj.nullable_string("description", usize::MAX).map(drop)
}

fn trust_create(body: &[u8]) -> ApiResult<()> {
    trusts::read_new_trust(JsonBody::parse(body)?).map(drop)
}

fn app_cred_create(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "application_credential")?;
    obj.only(app_creds::CREATE_FIELDS)?;
    obj.required_name("name")?;
    obj.string("id", usize::MAX)?;
    obj.nullable_string("secret", usize::MAX)?;
    obj.nullable_string("description", usize::MAX)?;
    let now = NaiveDateTime::default();
    app_creds::expiry(&obj, now)?;
    app_creds::nullable_bool(&obj, "unrestricted")?;
    app_creds::read_roles(&obj)?;
    app_creds::read_access_rules(&obj)?;
    obj.string("project_id", usize::MAX)?;
    obj.nullable_string("system", usize::MAX).map(drop)
}

/// Keystone's `get_json(silent=True) or {}`, as the credential handlers read it.
fn lenient_object(body: &[u8]) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(m)) => super::admin::refuse_nul(&m).map(|()| m),
        _ => Ok(serde_json::Map::new()),
    }
}

fn credential_create(body: &[u8]) -> ApiResult<()> {
    let body = lenient_object(body)?;
    credentials::check_create(credentials::credential_member(&body)?)
}

fn credential_update(body: &[u8]) -> ApiResult<()> {
    let body = lenient_object(body)?;
    credentials::check_update(credentials::credential_member(&body)?).map(drop)
}

fn service_write(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "service")?;
    catalog::required(&obj, "type")?;
    catalog::check_service_fields(&obj)
}

fn endpoint_write(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "endpoint")?;
    for key in ["interface", "service_id", "url"] {
        catalog::required(&obj, key)?;
    }
    catalog::check_endpoint_fields(&obj)?;
    obj.string("id", usize::MAX).map(drop)
}

fn region_write(body: &[u8]) -> ApiResult<()> {
    let obj = member(body, "region")?;
    catalog::check_region_fields(&obj, true)?;
    obj.nullable_string("id", NAME_MAX).map(drop)
}

/// `POST /v3/ec2tokens` reads leniently; the signature check needs the database.
fn ec2tokens(body: &[u8]) -> ApiResult<()> {
    let _ = serde_json::from_slice::<serde_json::Value>(body);
    Ok(())
}

/// `PUT /v3/OS-OAUTH1/authorize/{id}` reads `roles` leniently, then checks its schema.
fn oauth1_authorize(body: &[u8]) -> ApiResult<()> {
    let roles = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("roles").cloned())
        .unwrap_or_else(|| serde_json::json!([]));
    super::oauth1::authorized_roles(&roles).map(|_| ())
}

/// The OAuth1 endpoints read the `Authorization` header (the input's first line) and the
/// query string (the rest): parsing, oauthlib's checks and the signature never panic.
fn oauth1_signed(data: &[u8]) -> ApiResult<()> {
    let text = String::from_utf8_lossy(data);
    let (header, query) = text.split_once('\n').unwrap_or((&text, ""));
    let Some(params) = crate::oauth1_signature::parse_authorization(header) else {
        return Err(ApiError::BadRequest(
            "Malformed authorization header".into(),
        ));
    };
    let req = crate::oauth1_signature::OAuthRequest::new(params, Some(query))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let _ = req.signature_matches(
        "POST",
        "http://h/v3/OS-OAUTH1/request_token",
        "s",
        Some("t"),
    );
    req.check_mandatory(1_700_000_000)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// An `[oslo_policy] policy_file`'s text: parsing, linking and the cycle check never panic.
pub fn policy_file(data: &[u8]) {
    crate::policy::fuzz_policy_file(&String::from_utf8_lossy(data));
}
