//! `/v3/credentials`: parse (Keystone 30's JSON schemas and their messages), build Keystone's
//! policy target, enforce, call one `state.identity` operation, render. Encryption and the
//! write rules live in `identity/credentials.rs`.
//!
//! As in Keystone, a missing or another user's credential is a 403 for a caller who is not
//! an admin (the target is built from the stored credential, or empty), and a token from a
//! delegated credential (application credential, EC2, trust, ...) may not touch credentials
//! at all; in a listing such credentials are left out instead.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::CredentialFilter;
use serde_json::{json, Map, Value};

use super::schema::{body_json, py_repr, schema_error};
use super::{created, member, Caller, Collection, ListRequest};
use crate::error::{ApiError, ApiResult};
use crate::identity::credentials::{ec2_credential_id, not_found, Credential, NewCredential, EC2};
use crate::policy::Target;
use crate::AppState;

/// The credential routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/credentials", get(list).post(create))
        .route(
            "/v3/credentials/{credential_id}",
            get(show).patch(update).delete(remove),
        )
}

/// Keystone's `_require_primary_auth` (403).
pub fn refuse_delegated(caller: &Caller) -> ApiResult<()> {
    if caller.token.is_delegated() {
        return Err(ApiError::Forbidden(
            "Delegated tokens cannot access credentials directly".into(),
        ));
    }
    Ok(())
}

/// A credential as Keystone shows it: its extra attributes, then its columns and blob.
pub fn render(c: &Credential) -> Value {
    let mut obj = c.extra.clone();
    obj.insert("id".into(), json!(c.id));
    obj.insert("user_id".into(), json!(c.user_id));
    obj.insert("project_id".into(), json!(c.project_id));
    obj.insert("type".into(), json!(c.kind));
    obj.insert("blob".into(), json!(c.blob));
    Value::Object(obj)
}

fn target_of(c: Option<&Credential>) -> Target {
    match c {
        Some(c) => Target::new()
            .with("target.credential.id", c.id.clone())
            .with("target.credential.user_id", c.user_id.clone())
            .with_opt("target.credential.project_id", c.project_id.clone())
            .with("target.credential.type", c.kind.clone()),
        None => Target::new(),
    }
}

// ----- request bodies (keystone/credential/schema.py, keystone/api/validation) ---------------

/// `{"credential": {...}}`: the object, or Keystone's 400.
pub(crate) fn credential_member(body: &Map<String, Value>) -> ApiResult<&Map<String, Value>> {
    match body.get("credential") {
        None => Err(ApiError::BadRequest(
            "'credential' is a required property".into(),
        )),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(schema_error(
            "credential",
            other,
            format!("{} is not of type 'object'", py_repr(other)),
        )),
    }
}

fn string_prop(obj: &Map<String, Value>, key: &str, nullable: bool) -> ApiResult<()> {
    match obj.get(key) {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Null) if nullable => Ok(()),
        Some(v) => {
            let ty = if nullable {
                "'string', 'null'"
            } else {
                "'string'"
            };
            Err(schema_error(
                key,
                v,
                format!("{} is not of type {ty}", py_repr(v)),
            ))
        }
    }
}

fn required(obj: &Map<String, Value>, keys: &[&str]) -> ApiResult<()> {
    match keys.iter().find(|k| !obj.contains_key(**k)) {
        Some(k) => Err(schema_error(
            "credential",
            &Value::Object(obj.clone()),
            format!("'{k}' is a required property"),
        )),
        None => Ok(()),
    }
}

/// `create_request_body`: `blob`, `type`, `user_id` required (and `project_id` for `ec2`),
/// each a string (`project_id` may be null); other attributes allowed.
pub(crate) fn check_create(obj: &Map<String, Value>) -> ApiResult<()> {
    string_prop(obj, "id", false)?;
    string_prop(obj, "blob", false)?;
    string_prop(obj, "project_id", true)?;
    string_prop(obj, "type", false)?;
    string_prop(obj, "user_id", false)?;
    required(obj, &["blob", "type", "user_id"])?;
    if obj.get("type").and_then(Value::as_str) == Some(EC2) {
        required(obj, &["project_id"])?;
    }
    Ok(())
}

/// `update_request_body`: exactly `{"blob": "..."}`.
pub(crate) fn check_update(obj: &Map<String, Value>) -> ApiResult<String> {
    string_prop(obj, "blob", false)?;
    let mut extra: Vec<&String> = obj.keys().filter(|k| *k != "blob").collect();
    if !extra.is_empty() {
        extra.sort();
        let list = extra
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let verb = if extra.len() == 1 { "was" } else { "were" };
        return Err(schema_error(
            "credential",
            &Value::Object(obj.clone()),
            format!("Additional properties are not allowed ({list} {verb} unexpected)"),
        ));
    }
    required(obj, &["blob"])?;
    Ok(obj
        .get("blob")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Keystone's `_validate_blob_json` for an `ec2` blob: a JSON object with a non-null
/// `access`; returns the access key.
fn ec2_access(blob: &str) -> ApiResult<String> {
    let parsed: Value = serde_json::from_str(blob)
        .map_err(|_| ApiError::BadRequest("Invalid blob in credential".into()))?;
    let expecting = |attr: &str| ApiError::expecting(attr, "credential");
    let obj = parsed
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| expecting("blob"))?;
    match obj.get("access") {
        None | Some(Value::Null) => Err(expecting("access")),
        Some(v) => Ok(crate::ec2_signature::py_str(v)),
    }
}

/// The create request as the identity layer takes it: Keystone normalizes attribute names
/// (`:` and `-` to `_`), ignores a given `id` (an `ec2` id is its access key's hash), and keeps
/// unknown attributes in `extra`.
fn new_credential(obj: &Map<String, Value>) -> ApiResult<NewCredential> {
    let mut norm: Map<String, Value> = obj
        .iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
        .collect();
    let text = |m: &mut Map<String, Value>, k: &str| match m.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let user_id = text(&mut norm, "user_id").unwrap_or_default();
    let kind = text(&mut norm, "type").unwrap_or_default();
    let blob = text(&mut norm, "blob").unwrap_or_default();
    let project_id = text(&mut norm, "project_id");
    for k in ["id", "extra", "encrypted_blob", "key_hash", "links"] {
        norm.remove(k);
    }
    let id = if kind.to_lowercase() == EC2 {
        Some(ec2_credential_id(&ec2_access(&blob)?))
    } else {
        None
    };
    Ok(NewCredential {
        id,
        user_id,
        project_id,
        kind,
        blob,
        extra: norm,
    })
}

// ----- handlers --------------------------------------------------------------------------------

const COLLECTION: &str = "credentials";

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let obj = credential_member(&body)?;
    check_create(obj)?;
    let target = Target::new()
        .with_opt(
            "target.credential.user_id",
            obj.get("user_id").and_then(Value::as_str),
        )
        .with_opt(
            "target.credential.project_id",
            obj.get("project_id").and_then(Value::as_str),
        )
        .with_opt(
            "target.credential.type",
            obj.get("type").and_then(Value::as_str),
        );
    caller.enforce(&state, "identity:create_credential", &target)?;
    refuse_delegated(&caller)?;
    let new = new_credential(obj)?;
    let made = state.identity.create_credential(new).await?;
    Ok(created(
        &state,
        &headers,
        COLLECTION,
        "credential",
        render(&made),
    ))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    let system = caller.token.body.system.is_some();
    let target = if system {
        Target::new()
    } else {
        Target::new().with("target.credential.user_id", caller.user_id().to_string())
    };
    caller.enforce(&state, "identity:list_credentials", &target)?;
    let page = list.page(None)?;
    let filter = CredentialFilter {
        user_id: list.query.get("user_id").map(str::to_string),
        kind: list.query.get("type").map(str::to_string),
        project_id: None,
    };
    let delegated = caller.token.is_delegated();
    let mut out = Vec::new();
    for c in state.identity.list_credentials(&filter).await? {
        // Keystone checks each credential as a GET would, leaving out what that would refuse.
        if !delegated && caller.allows(&state, "identity:get_credential", &target_of(Some(&c))) {
            out.push(render(&c));
        }
    }
    Ok(list.respond(&page, Collection::of(COLLECTION), out))
}

/// The stored credential (decrypted) and the target Keystone builds from it.
async fn with_target(state: &AppState, id: &str) -> ApiResult<(Option<Credential>, Target)> {
    let cred = if id.len() > 255 {
        None
    } else {
        state.identity.get_credential(id).await?
    };
    let target = target_of(cred.as_ref());
    Ok((cred, target))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (cred, target) = with_target(&state, &id).await?;
    caller.enforce(&state, "identity:get_credential", &target)?;
    let cred = cred.ok_or_else(|| not_found(&id))?;
    refuse_delegated(&caller)?;
    Ok(member(
        &state,
        &headers,
        COLLECTION,
        "credential",
        render(&cred),
    ))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body_json(body)?;
    let obj = credential_member(&body)?;
    let blob = check_update(obj)?;
    let (cred, target) = with_target(&state, &id).await?;
    caller.enforce(&state, "identity:update_credential", &target)?;
    let cred = cred.ok_or_else(|| not_found(&id))?;
    refuse_delegated(&caller)?;
    let updated = state.identity.update_credential_blob(cred, blob).await?;
    Ok(member(
        &state,
        &headers,
        COLLECTION,
        "credential",
        render(&updated),
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (cred, target) = with_target(&state, &id).await?;
    caller.enforce(&state, "identity:delete_credential", &target)?;
    if cred.is_none() {
        return Err(not_found(&id));
    }
    refuse_delegated(&caller)?;
    state.identity.delete_credential(&id).await?;
    Ok(super::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_messages() {
        let obj = json!({"type": "ec2", "user_id": "u", "blob": "{}"});
        let e = check_create(obj.as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Invalid input for field/attribute credential. Value: {'blob': '{}', 'type': 'ec2', 'user_id': 'u'}. 'project_id' is a required property");
        let obj = json!({"type": "cert", "user_id": "u", "blob": 5});
        let e = check_create(obj.as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Invalid input for field/attribute blob. Value: 5. 5 is not of type 'string'"
        );
        let obj = json!({"blob": "x", "type": "cert"});
        assert!(check_update(obj.as_object().unwrap())
            .unwrap_err()
            .to_string()
            .ends_with("Additional properties are not allowed ('type' was unexpected)"));
    }

    #[test]
    fn ec2_blobs() {
        assert_eq!(ec2_access(r#"{"access": "a"}"#).unwrap(), "a");
        assert_eq!(
            ec2_access("nope").unwrap_err().to_string(),
            "Invalid blob in credential"
        );
        assert!(ec2_access("{}")
            .unwrap_err()
            .to_string()
            .starts_with("Expecting to find blob"));
        assert!(ec2_access(r#"{"secret": "s"}"#)
            .unwrap_err()
            .to_string()
            .starts_with("Expecting to find access"));
    }
}
