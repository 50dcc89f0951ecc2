//! `/v3/auth/*`: issue, validate, check and revoke tokens; the caller's catalog and scopes.

use axum::body::{Body, Bytes};
use axum::extract::{rejection::BytesRejection, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_store::Project;
use serde_json::{json, Value};
use zeroize::{Zeroize as _, Zeroizing};

use super::extract::{body_rejection, Caller};
use super::{header_str, token_pairs, TokenQuery};
use crate::error::{ApiError, ApiResult};
use crate::policy;
use crate::tokens::{AppCredRef, AuthMethod, DomainRef, RequestedScope, UserRef, ValidatedToken};
use crate::AppState;
use baton_types::headers::{ACCESS_RULES, SUBJECT_TOKEN};

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// A token answer: the body and the token in `X-Subject-Token`.
pub fn token_response(status: StatusCode, body: Bytes, token: &str) -> ApiResult<Response> {
    json_response(status, body, Some(token))
}

fn json_response(status: StatusCode, body: Bytes, subject: Option<&str>) -> ApiResult<Response> {
    let subject = subject
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response_with(status, body, subject))
}

/// [`json_response`] with the subject token's header value as the request carried it.
fn json_response_with(status: StatusCode, body: Bytes, subject: Option<HeaderValue>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(subject) = subject {
        headers.insert(SUBJECT_TOKEN, subject);
    }
    resp
}

// ----- POST /v3/auth/tokens -----------------------------------------------------------------

/// `POST /v3/auth/tokens`: authenticates (password, or a token to rescope) and answers 201
/// with the new token in `X-Subject-Token`.
pub async fn issue(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let query = TokenQuery::parse(query.as_deref())?;
    let body = body.map_err(body_rejection)?;
    let mut doc: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("Malformed request body: {e}")))?;
    let checked = match &doc {
        Value::Object(map) => super::admin::refuse_nul(map),
        _ => Ok(()),
    };
    let parsed = checked.and_then(|()| parse_auth_request(&doc, &state.config.auth.methods));
    // The parsed request holds its own (zeroized) copies of the password or secret.
    zeroize_strings(&mut doc);
    let (methods, scope) = parsed?;
    if let [AuthMethod::OAuth1] = methods.as_slice() {
        // Keystone: the access token fixes the project, whatever scope was asked for.
        let (user_id, project_id, access_token_id) =
            super::oauth1::authenticate(&state, &headers, &uri).await?;
        let scope = baton_token::Scope::OAuth1 {
            project_id,
            access_token_id,
        };
        let (token, validated) = state
            .tokens
            .issue_for_credential(&user_id, scope, "oauth1")
            .await?;
        return json_response(
            StatusCode::CREATED,
            validated.json(!query.nocatalog),
            Some(&token),
        );
    }
    // Password logins past the failure limits are refused before any hashing.
    let peer = peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a.ip());
    let login = state.login_throttle.keys(peer, &methods);
    if let Some(retry) = login.as_ref().and_then(|l| state.login_throttle.refused(l)) {
        tracing::info!(
            retry_after = retry,
            "password login refused: too many failures from this address or for this name"
        );
        return Err(ApiError::TooManyRequests(retry));
    }
    let issued = state.tokens.issue(methods, scope).await;
    if let (Some(login), Err(ApiError::Unauthorized { .. })) = (&login, &issued) {
        state.login_throttle.failed(login);
    }
    let (token, validated) = issued?;
    json_response(
        StatusCode::CREATED,
        validated.json(!query.nocatalog),
        Some(&token),
    )
}

/// Overwrites every string of a parsed request body, passwords and secrets among them, before
/// it is freed. (The raw body buffer belongs to hyper and is not reached.)
fn zeroize_strings(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_strings),
        Value::Object(map) => map.values_mut().for_each(zeroize_strings),
        _ => {}
    }
}

fn obj<'a>(v: &'a Value, path: &str) -> ApiResult<&'a serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        bad(format!(
            "Invalid input for field '{path}': expected an object."
        ))
    })
}

fn string_field(
    m: &serde_json::Map<String, Value>,
    key: &str,
    path: &str,
) -> ApiResult<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 255 && !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(s)) if s.is_empty() => Err(bad(format!(
            "Invalid input for field '{path}/{key}': it is empty."
        ))),
        Some(Value::String(_)) => Err(bad(format!(
            "Invalid input for field '{path}/{key}': it is too long."
        ))),
        Some(_) => Err(bad(format!(
            "Invalid input for field '{path}/{key}': expected a string."
        ))),
    }
}

fn domain_ref(v: &Value, path: &str) -> ApiResult<DomainRef> {
    let m = obj(v, path)?;
    if let Some(id) = string_field(m, "id", path)? {
        return Ok(DomainRef::Id(id));
    }
    if let Some(name) = string_field(m, "name", path)? {
        return Ok(DomainRef::Name(name));
    }
    Err(bad(format!(
        "Invalid input for field '{path}': an id or a name is required."
    )))
}

/// Shape checks of Keystone's auth schema, with 400 and a message naming the field.
pub fn parse_auth_request(
    doc: &Value,
    enabled_methods: &[String],
) -> ApiResult<(Vec<AuthMethod>, RequestedScope)> {
    let auth = doc
        .get("auth")
        .ok_or_else(|| bad("Invalid input for field 'auth': 'auth' is a required property."))?;
    let auth = obj(auth, "auth")?;
    let identity = auth
        .get("identity")
        .ok_or_else(|| bad("Invalid input for field 'auth': 'identity' is a required property."))?;
    let identity = obj(identity, "auth/identity")?;
    let names = method_names(identity, enabled_methods)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let data = identity
            .get(name)
            .ok_or_else(|| bad(format!("The request you have made requires authentication: attribute {name} target identity.")))?;
        if !enabled_methods.iter().any(|e| e == name) {
            return Err(ApiError::unauthorized(format!(
                "method {name} is not in [auth] methods"
            )));
        }
        out.push(match name {
            "password" => password_method(data)?,
            "application_credential" => {
                let method = app_cred_method(data)?;
                // Keystone: the credential fixes the scope.
                if auth.contains_key("scope") {
                    return Err(ApiError::AuthPlugin {
                        detail: "Error authenticating with application credential: Application credentials cannot request a scope.".into(),
                    });
                }
                method
            }
            "oauth1" => AuthMethod::OAuth1,
            "token" => {
                let t = obj(data, "auth/identity/token")?;
                let id = string_field(t, "id", "auth/identity/token")?
                    .ok_or_else(|| bad("Invalid input for field 'auth/identity/token': 'id' is a required property."))?;
                AuthMethod::Token { token: id }
            }
            other => {
                return Err(ApiError::unauthorized(format!(
                    "auth method {other} is not supported by Baton"
                )));
            }
        });
    }
    Ok((out, requested_scope(auth.get("scope"))?))
}

/// `auth/identity/application_credential`: the credential by id, or by name with its owner (by
/// id, or by name within a domain), and its secret.
fn app_cred_method(data: &Value) -> ApiResult<AuthMethod> {
    const MALFORMED: &str = " - the server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";
    let path = "auth/identity/application_credential";
    let a = obj(data, path)?;
    let secret = Zeroizing::new(match a.get("secret") {
        Some(Value::String(s)) => s.clone(),
        // Keystone checks a missing secret like a wrong one.
        _ => String::new(),
    });
    let cred = if let Some(id) = string_field(a, "id", path)? {
        AppCredRef::Id(id)
    } else if let Some(name) = string_field(a, "name", path)? {
        let user = a.get("user").ok_or_else(|| {
            bad(format!(
                "Expecting to find user in application credential{MALFORMED}"
            ))
        })?;
        let user_path = format!("{path}/user");
        let u = obj(user, &user_path)?;
        let who = if let Some(id) = string_field(u, "id", &user_path)? {
            UserRef::Id(id)
        } else {
            let name = string_field(u, "name", &user_path)?.ok_or_else(|| {
                bad(format!(
                    "Invalid input for field '{user_path}': an id or a name is required."
                ))
            })?;
            let domain = u
                .get("domain")
                .ok_or_else(|| bad(format!("Expecting to find domain in user{MALFORMED}")))?;
            UserRef::Name {
                name,
                domain: domain_ref(domain, &format!("{user_path}/domain"))?,
            }
        };
        AppCredRef::Name { name, user: who }
    } else {
        return Err(bad(format!(
            "Expecting to find id or name in application credential{MALFORMED}"
        )));
    };
    Ok(AuthMethod::ApplicationCredential { cred, secret })
}

/// `auth/identity/methods`: each name once, in the order given, as Keystone does.
fn method_names<'a>(
    identity: &'a serde_json::Map<String, Value>,
    enabled_methods: &[String],
) -> ApiResult<Vec<&'a str>> {
    let methods = identity
        .get("methods")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad("Invalid input for field 'auth/identity': 'methods' is a required array.")
        })?;
    if methods.is_empty() {
        return Err(bad(
            "Invalid input for field 'auth/identity/methods': at least one method is required.",
        ));
    }
    // Each method costs a verification (bcrypt for a password): never more entries than there
    // are methods to enable.
    if methods.len() > enabled_methods.len() {
        return Err(bad(format!(
            "Invalid input for field 'auth/identity/methods': at most {} methods may be given.",
            enabled_methods.len()
        )));
    }
    let mut names: Vec<&str> = Vec::with_capacity(methods.len());
    for m in methods {
        let name = m.as_str().ok_or_else(|| {
            bad("Invalid input for field 'auth/identity/methods': expected strings.")
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// `auth/identity/password`: the user by id, or by name within a domain, and the password.
fn password_method(data: &Value) -> ApiResult<AuthMethod> {
    let p = obj(data, "auth/identity/password")?;
    let user = p.get("user").ok_or_else(|| {
        bad("Invalid input for field 'auth/identity/password': 'user' is a required property.")
    })?;
    let u = obj(user, "auth/identity/password/user")?;
    let password = match u.get("password") {
        Some(Value::String(s)) => Zeroizing::new(s.clone()),
        _ => return Err(bad("Invalid input for field 'auth/identity/password/user': 'password' is a required string.")),
    };
    let who = if let Some(id) = string_field(u, "id", "auth/identity/password/user")? {
        UserRef::Id(id)
    } else if let Some(name) = string_field(u, "name", "auth/identity/password/user")? {
        let domain = u.get("domain").ok_or_else(|| {
            bad("Invalid input for field 'auth/identity/password/user': a user name needs a domain.")
        })?;
        UserRef::Name {
            name,
            domain: domain_ref(domain, "auth/identity/password/user/domain")?,
        }
    } else {
        return Err(bad(
            "Invalid input for field 'auth/identity/password/user': an id or a name is required.",
        ));
    };
    Ok(AuthMethod::Password {
        user: who,
        password,
    })
}

/// `auth/scope`: absent (the user's default project), `"unscoped"`, or exactly one of
/// project, domain, system or trust.
fn requested_scope(scope: Option<&Value>) -> ApiResult<RequestedScope> {
    let s = match scope {
        None => return Ok(RequestedScope::Default),
        Some(Value::String(s)) if s == "unscoped" => return Ok(RequestedScope::Unscoped),
        Some(Value::Object(s)) => s,
        Some(_) => {
            return Err(bad(
                "Invalid input for field 'auth/scope': expected an object or \"unscoped\".",
            ))
        }
    };
    let keys: Vec<&String> = s.keys().collect();
    if keys.len() != 1 {
        return Err(bad("Invalid input for field 'auth/scope': only one of system, project, domain, OS-TRUST:trust or unscoped may be given."));
    }
    Ok(match keys[0].as_str() {
        "project" => {
            let p = obj(&s["project"], "auth/scope/project")?;
            if let Some(id) = string_field(p, "id", "auth/scope/project")? {
                RequestedScope::ProjectId(id)
            } else if let Some(name) = string_field(p, "name", "auth/scope/project")? {
                let d = p.get("domain").ok_or_else(|| {
                    bad("Invalid input for field 'auth/scope/project': a project name needs a domain.")
                })?;
                RequestedScope::ProjectName {
                    name,
                    domain: domain_ref(d, "auth/scope/project/domain")?,
                }
            } else {
                return Err(bad(
                    "Invalid input for field 'auth/scope/project': an id or a name is required.",
                ));
            }
        }
        "domain" => RequestedScope::Domain(domain_ref(&s["domain"], "auth/scope/domain")?),
        "system" => match s["system"].get("all") {
            Some(Value::Bool(true)) => RequestedScope::System,
            _ => return Err(bad(
                "Invalid input for field 'auth/scope/system': only {\"all\": true} is supported.",
            )),
        },
        "unscoped" => RequestedScope::Unscoped,
        "OS-TRUST:trust" => {
            let t = obj(&s["OS-TRUST:trust"], "auth/scope/OS-TRUST:trust")?;
            // Keystone's ValidationError for a trust scope without an id.
            let id = string_field(t, "id", "auth/scope/OS-TRUST:trust")?.ok_or_else(|| {
                bad("Expecting to find trust_id in trust. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
            })?;
            RequestedScope::Trust(id)
        }
        other => {
            return Err(bad(format!(
                "Invalid input for field 'auth/scope': unknown scope {other:?}."
            )))
        }
    })
}

// ----- GET / HEAD / DELETE /v3/auth/tokens ---------------------------------------------------

async fn subject_for(
    state: &AppState,
    headers: &HeaderMap,
    allow_expired: bool,
) -> ApiResult<(std::sync::Arc<ValidatedToken>, HeaderValue)> {
    let missing = || ApiError::NotFound("Could not find token: No token in the request.".into());
    let value = headers.get(SUBJECT_TOKEN).ok_or_else(missing)?;
    let subject = header_str(headers, SUBJECT_TOKEN).ok_or_else(missing)?;
    let v = state.tokens.validate(subject, allow_expired).await?;
    v.check_access_rules_support(header_str(headers, ACCESS_RULES))?;
    Ok((v, value.clone()))
}

/// `GET /v3/auth/tokens`: the subject token's body, if the caller may validate it
/// (`?allow_expired` stretches expiry by `[token] allow_expired_window`).
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    // The request itself rather than a copy of its header map: this is the hot path.
    let headers = request.headers();
    let query = TokenQuery::parse(query.as_deref())?;
    let (subject, id) = match subject_for(&state, headers, query.allow_expired).await {
        Err(e @ ApiError::TokenNotFound { .. }) if query.allow_expired && !diagnosis(headers) => {
            audit_expired_refused(&state, &caller, headers).await;
            return Err(e);
        }
        other => other?,
    };
    state.tokens.check_audience(&subject, &caller.token)?;
    policy::enforce_on_subject(
        &state.policy,
        "identity:validate_token",
        &caller.token.body,
        &subject.body,
    )?;
    // keystonemiddleware asks with allow_expired only after the request's service token
    // passed: an expired token accepted here was accepted for a service (unless Baton's layer
    // says it only diagnoses a refusal).
    if query.allow_expired && !diagnosis(headers) && state.tokens.expired_beyond(&subject, 0) {
        let how = (
            state.config.token.allow_expired_window,
            token_pairs::ExpiredPath::AllowExpired,
        );
        token_pairs::audit_expired(&state, &subject, None, &caller.token, how, None).await;
    }
    let body = subject.json(!query.nocatalog);
    Ok(json_response_with(StatusCode::OK, body, Some(id)))
}

/// Whether Baton's receiving layer asks only to tell an expired token from an invalid one.
fn diagnosis(headers: &HeaderMap) -> bool {
    header_str(headers, baton_types::headers::VALIDATION_PURPOSE) == Some("diagnosis")
}

/// `identity.expired_token.refused` for keystonemiddleware's `?allow_expired` call: the
/// subject decrypts and is valid but for its expiry, past `[token] allow_expired_window`.
async fn audit_expired_refused(state: &AppState, caller: &Caller, headers: &HeaderMap) {
    if !state.tokens.audit.enabled() {
        return;
    }
    let Some(subject) = header_str(headers, SUBJECT_TOKEN) else {
        return;
    };
    let window = state.config.token.allow_expired_window;
    if let Ok(v) = state.tokens.validate_ignoring_expiry(subject).await {
        let may_see = policy::enforce_on_subject(
            &state.policy,
            "identity:validate_token",
            &caller.token.body,
            &v.body,
        )
        .is_ok();
        if may_see && state.tokens.expired_beyond(&v, window) {
            let reason =
                format!("the user token expired more than allow_expired_window ({window} s) ago");
            let how = (window, token_pairs::ExpiredPath::AllowExpired);
            token_pairs::audit_expired(state, &v, None, &caller.token, how, Some(reason)).await;
        }
    }
}

/// `HEAD /v3/auth/tokens`: 200 when the subject token is valid, without a body.
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let headers = request.headers();
    let query = TokenQuery::parse(query.as_deref())?;
    let (subject, id) = subject_for(&state, headers, query.allow_expired).await?;
    state.tokens.check_audience(&subject, &caller.token)?;
    policy::enforce_on_subject(
        &state.policy,
        "identity:check_token",
        &caller.token.body,
        &subject.body,
    )?;
    Ok(json_response_with(StatusCode::OK, Bytes::new(), Some(id)))
}

/// `DELETE /v3/auth/tokens`: revokes the subject token and, unless `?cascade` is false, every
/// token rescoped from its chain.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let query = TokenQuery::parse(query.as_deref())?;
    let (subject, _) = subject_for(&state, &headers, false).await?;
    policy::enforce_on_subject(
        &state.policy,
        "identity:revoke_token",
        &caller.token.body,
        &subject.body,
    )?;
    state.tokens.revoke(&subject, query.cascade).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- GET /v3/auth/catalog | projects | domains | system ------------------------------------

fn links(state: &AppState, headers: &HeaderMap, path: &str) -> Value {
    json!({"self": format!("{}/v3/{path}", state.base_url(headers)), "previous": null, "next": null})
}

/// `GET /v3/auth/catalog`: the service catalog of the caller's project-scoped token.
pub async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    // Keystone serves the catalog to project-scoped tokens only (403 for every other scope).
    let Some(project_id) = caller.token.body.project.as_ref().map(|p| p.id.as_str()) else {
        return Err(ApiError::Forbidden(
            "identity:get_auth_catalog (a project-scoped token is required)".into(),
        ));
    };
    let catalog = state.tokens.catalog_for(Some(project_id)).await?;
    Ok(Json(
        json!({"catalog": catalog, "links": links(&state, &headers, "auth/catalog")}),
    ))
}

fn project_json(state: &AppState, headers: &HeaderMap, p: &Project, kind: &str) -> Value {
    let base = state.base_url(headers);
    if kind == "domains" {
        json!({"id": p.id, "name": p.name, "enabled": p.enabled, "description": p.description,
               "tags": [], "options": {}, "links": {"self": format!("{base}/v3/domains/{}", p.id)}})
    } else {
        json!({"id": p.id, "name": p.name, "domain_id": p.domain_id, "enabled": p.enabled,
               "description": p.description, "parent_id": p.parent_id, "is_domain": p.is_domain,
               "tags": [], "options": {}, "links": {"self": format!("{base}/v3/projects/{}", p.id)}})
    }
}

/// `GET /v3/auth/projects` (and its older name `/v3/OS-FEDERATION/projects`): the projects the
/// caller may scope a token to.
pub async fn projects(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Json<Value>> {
    let (projects, _) = state.tokens.scopes_for_user(caller.user_id()).await?;
    let list: Vec<Value> = projects
        .iter()
        .map(|p| project_json(&state, &headers, p, "projects"))
        .collect();
    Ok(Json(
        json!({"projects": list, "links": links(&state, &headers, uri.path().trim_start_matches("/v3/"))}),
    ))
}

/// `GET /v3/auth/domains` (and its older name `/v3/OS-FEDERATION/domains`): the domains the
/// caller may scope a token to.
pub async fn domains(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Json<Value>> {
    let (_, domains) = state.tokens.scopes_for_user(caller.user_id()).await?;
    let list: Vec<Value> = domains
        .iter()
        .map(|d| project_json(&state, &headers, d, "domains"))
        .collect();
    Ok(Json(
        json!({"domains": list, "links": links(&state, &headers, uri.path().trim_start_matches("/v3/"))}),
    ))
}

/// `GET /v3/auth/system`: `[{"all": true}]` when the caller has a role on the system.
pub async fn system(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let system = if state.tokens.has_system_roles(caller.user_id()).await? {
        json!([{"all": true}])
    } else {
        json!([])
    };
    Ok(Json(
        json!({"system": system, "links": links(&state, &headers, "auth/system")}),
    ))
}
