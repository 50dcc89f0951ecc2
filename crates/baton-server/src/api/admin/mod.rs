//! The identity admin API (`/v3/domains`, `/v3/projects`, `/v3/users`, `/v3/groups`,
//! `/v3/roles`, grants, `/v3/role_assignments`, `/v3/services`, `/v3/endpoints`, `/v3/regions`)
//! and what its handlers share: the authenticated caller and policy enforcement, request bodies
//! checked the way Keystone's JSON schemas check them, and Keystone's collection envelope
//! (`links`, `truncated`, `limit`/`marker`).

pub mod application_credentials;
pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod domains;
pub mod ec2_credentials;
pub mod endpoint_filter;
pub mod federation;
pub mod grants;
pub mod groups;
pub mod identity_providers;
pub mod limits;
pub mod mapping_schema;
pub mod oauth1;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod schema;
pub mod trusts;
pub mod users;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::extract::body_rejection;
pub use super::extract::Caller;
pub use super::list::{with_self_link, Collection, ListRequest, Page, MAX_DB_LIMIT};
pub use super::query::{matches, matches_extra, matches_flag, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use schema::py_repr;

pub use crate::identity::ID_MAX;
/// Keystone's `name` parameter type: 1 to 255 characters.
pub const NAME_MAX: usize = 255;

/// Every admin route; merged into the identity router.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .merge(domains::routes())
        .merge(domain_config::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(application_credentials::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(grants::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(trusts::routes())
        .merge(credentials::routes())
        .merge(ec2_credentials::routes())
        .merge(limits::routes())
        .merge(endpoint_filter::routes())
        .merge(policies::routes())
        .merge(federation::routes())
        .merge(identity_providers::routes())
        .merge(oauth1::routes())
}

// ----- request bodies --------------------------------------------------------------------------

/// A JSON object request body. Malformed JSON is a 400 and an oversized body a 413, with
/// Keystone's error shape.
pub struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<JsonBody> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        JsonBody::parse(&body)
    }
}

impl JsonBody {
    /// A body's bytes as a JSON object, else Keystone's 400.
    pub fn parse(body: &[u8]) -> ApiResult<JsonBody> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => {
                refuse_nul(&map)?;
                Ok(JsonBody(map))
            }
            Ok(_) => Err(ApiError::BadRequest(
                "The request body must be a JSON object.".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(format!("Malformed request body: {e}"))),
        }
    }

    /// The object under `key` (`{"user": {...}}`), which must be the only top-level key.
    pub fn member(self, key: &str) -> ApiResult<Obj> {
        let JsonBody(mut map) = self;
        let Some(inner) = map.remove(key) else {
            return Err(ApiError::expecting(key, "request body"));
        };
        if let Some(extra) = map.keys().next() {
            return Err(invalid(
                "",
                format!("Additional properties are not allowed ('{extra}' was unexpected)"),
            ));
        }
        match inner {
            Value::Object(fields) => Ok(Obj {
                path: key.to_string(),
                fields,
            }),
            other => Err(invalid(key, format!("{other} is not of type 'object'"))),
        }
    }
}

/// The id a `PUT` chooses for a new row (service providers, identity providers, protocols,
/// mappings): Keystone's columns hold 64 characters and its schemas set no limit, so a longer id
/// fails in its database (500 on MySQL and PostgreSQL); Baton refuses it with a 400.
pub fn chosen_id(kind: &str, id: &str) -> ApiResult<()> {
    if id.chars().count() > ID_MAX {
        return Err(ApiError::BadRequest(format!(
            "Invalid input: {kind} ids are at most {ID_MAX} characters."
        )));
    }
    Ok(())
}

/// The object under `key` as Keystone's `.get(key, {})` reads it (policies, consumers): absent
/// is empty, anything but an object is the schema's type error; errors name fields from inside
/// it.
pub fn member_or_empty(mut map: Map<String, Value>, key: &str) -> ApiResult<Obj> {
    match map.remove(key).unwrap_or_else(|| Value::Object(Map::new())) {
        Value::Object(fields) => Ok(Obj {
            path: String::new(),
            fields,
        }),
        other => Err(invalid(
            "",
            format!("{} is not of type 'object'", schema::py_repr(&other)),
        )),
    }
}

/// Refuses a NUL character in any string or key of a body, with 400 on every database. Stricter
/// than Keystone on purpose: PostgreSQL cannot store one (Keystone answers 500 there), SQLite and
/// MariaDB store it (Keystone answers 201); other control characters are data, as in Keystone.
pub fn refuse_nul(map: &Map<String, Value>) -> ApiResult<()> {
    // Bodies nest at most 128 levels (serde_json's limit), so the walk is bounded.
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(ApiError::BadRequest(
            "Invalid input: a NUL character (\\u0000) is not allowed in the request body.".into(),
        ));
    }
    Ok(())
}

/// Keystone's schema-validation message: `Invalid input for field 'user/name': ...`.
pub fn invalid(path: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(path, detail)
}

/// One JSON object from a request body, read field by field with Keystone's rules; `path` names
/// it in error messages.
#[derive(Debug, Clone)]
pub struct Obj {
    /// Where the object sits in the body (`user`, `project/options`), for messages.
    pub path: String,
    /// Its attributes as sent.
    pub fields: Map<String, Value>,
}

impl Obj {
    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.path)
        }
    }

    /// Refuses keys outside `allowed` (Keystone's `additionalProperties: false`).
    pub fn only(&self, allowed: &[&str]) -> ApiResult<()> {
        let mut unknown: Vec<&str> = self
            .fields
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        let list = unknown
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let verb = if unknown.len() == 1 { "was" } else { "were" };
        Err(invalid(
            &self.path,
            format!("Additional properties are not allowed ({list} {verb} unexpected)"),
        ))
    }

    /// Refuses an empty object (Keystone's `minProperties: 1` on updates).
    pub fn not_empty(&self) -> ApiResult<()> {
        if self.fields.is_empty() {
            Err(invalid(&self.path, "{} should be non-empty"))
        } else {
            Ok(())
        }
    }

    /// Whether the body names `key` at all (even as `null`).
    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn string_within(
        &self,
        key: &str,
        min: usize,
        max: usize,
        nullable: bool,
    ) -> ApiResult<Option<Option<String>>> {
        let Some(v) = self.fields.get(key) else {
            return Ok(None);
        };
        match v {
            Value::Null if nullable => Ok(Some(None)),
            Value::String(s) => {
                let n = s.chars().count();
                if n < min {
                    let what = if min == 1 {
                        "should be non-empty"
                    } else {
                        "is too short"
                    };
                    Err(invalid(
                        &self.field_path(key),
                        format!("{} {what}", py_repr(v)),
                    ))
                } else if n > max {
                    Err(invalid(
                        &self.field_path(key),
                        format!("{} is too long", py_repr(v)),
                    ))
                } else {
                    Ok(Some(Some(s.clone())))
                }
            }
            other => {
                let ty = if nullable {
                    "'string', 'null'"
                } else {
                    "'string'"
                };
                Err(invalid(
                    &self.field_path(key),
                    format!("{} is not of type {ty}", py_repr(other)),
                ))
            }
        }
    }

    /// A name: a string of 1 to 255 characters that is not only whitespace.
    pub fn name(&self, key: &str) -> ApiResult<Option<String>> {
        self.name_within(key, NAME_MAX)
    }

    /// A name of at most `max` characters (64 for projects and domains, as in Keystone).
    pub fn name_within(&self, key: &str, max: usize) -> ApiResult<Option<String>> {
        let v = self
            .string_within(key, 1, max, false)?
            .map(|v| v.unwrap_or_default());
        if let Some(name) = &v {
            if name.trim().is_empty() {
                return Err(invalid(
                    &self.field_path(key),
                    format!("'{name}' does not match '[\\S]+'"),
                ));
            }
        }
        Ok(v)
    }

    /// A required name.
    pub fn required_name(&self, key: &str) -> ApiResult<String> {
        self.name(key)?
            .ok_or_else(|| invalid(&self.path, format!("'{key}' is a required property")))
    }

    /// A string of at most `max` characters (`null` refused).
    pub fn string(&self, key: &str, max: usize) -> ApiResult<Option<String>> {
        Ok(self.string_within(key, 0, max, false)?.flatten())
    }

    /// A string or `null`: `None` absent, `Some(None)` explicitly null.
    pub fn nullable_string(&self, key: &str, max: usize) -> ApiResult<Option<Option<String>>> {
        self.string_within(key, 0, max, true)
    }

    /// An id: 1 to 64 characters of letters, digits, `-` and `_`; `nullable` allows `null`.
    pub fn id(&self, key: &str, nullable: bool) -> ApiResult<Option<Option<String>>> {
        let v = self.string_within(key, 1, ID_MAX, nullable)?;
        if let Some(Some(id)) = &v {
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &self.field_path(key),
                    format!("'{id}' does not match '^[a-zA-Z0-9-_]+$'"),
                ));
            }
        }
        Ok(v)
    }

    /// A `boolean` attribute (`null` is refused, as Keystone's schemas do).
    pub fn boolean(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(invalid(
                &self.field_path(key),
                format!("{} is not of type 'boolean'", py_repr(other)),
            )),
        }
    }

    /// A nested object, e.g. `options`.
    pub fn object(&self, key: &str) -> ApiResult<Option<Obj>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj {
                path: self.field_path(key),
                fields: m.clone(),
            })),
            Some(other) => Err(invalid(
                &self.field_path(key),
                format!("{} is not of type 'object'", py_repr(other)),
            )),
        }
    }

    /// A list of strings each at most `max` characters.
    pub fn string_list(&self, key: &str, max: usize) -> ApiResult<Option<Vec<String>>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if s.chars().count() <= max => out.push(s.clone()),
                        Value::String(_) => {
                            return Err(invalid(
                                &format!("{}/{i}", self.field_path(key)),
                                format!("{} is too long", py_repr(item)),
                            ))
                        }
                        other => {
                            return Err(invalid(
                                &format!("{}/{i}", self.field_path(key)),
                                format!("{} is not of type 'string'", py_repr(other)),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(invalid(
                &self.field_path(key),
                format!("{} is not of type 'array'", py_repr(other)),
            )),
        }
    }

    /// The fields not in `known`, to keep in the `extra` JSON column as Keystone does for
    /// attributes its schema lets through (e.g. a user's `email`).
    pub fn extra(&self, known: &[&str]) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The query's filters, where operators' policy rules can read them (`filter_attr.<name>`).
pub fn list_target(query: &ListQuery, filters: &[&str]) -> crate::policy::Target {
    let mut target = crate::policy::Target::new();
    for f in filters {
        if let Some(v) = query.get(f) {
            target.set(&format!("filter_attr.{f}"), v);
        }
    }
    target
}

/// A path parameter that cannot name anything (too long): answered 404 like any unknown id,
/// without touching the database.
pub fn path_id<'a>(kind: &str, id: &'a str) -> ApiResult<&'a str> {
    // No row has a NUL in its id, and PostgreSQL would refuse the query.
    if id.is_empty() || id.len() > NAME_MAX || id.contains('\0') {
        Err(ApiError::NotFound(format!("Could not find {kind}: {id}.")))
    } else {
        Ok(id)
    }
}

/// The collections Keystone 30 pages in SQL from a `marker` row.
#[derive(Debug, Clone, Copy)]
pub enum MarkerOf {
    /// `/v3/users`.
    User,
    /// `/v3/groups`.
    Group,
    /// Projects and domains (one table).
    Project,
}

/// Keystone 30 answers 404 (`Marker <id> could not be found.`) when a listing of users, groups,
/// projects or domains names a `marker` that is no such row; other listings take the marker as
/// a bound on ids.
pub async fn check_marker(state: &AppState, page: &Page, of: MarkerOf) -> ApiResult<()> {
    let Some(marker) = &page.marker else {
        return Ok(());
    };
    let found = path_id("marker", marker).is_ok()
        && match of {
            MarkerOf::User => state.store.get_user(marker).await?.is_some(),
            MarkerOf::Group => state.store.get_group(marker).await?.is_some(),
            MarkerOf::Project => state.store.get_project(marker).await?.is_some(),
        };
    if found {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "Marker {marker} could not be found."
        )))
    }
}

// ----- responses -------------------------------------------------------------------------------

/// `{base}/v3/{path}`.
pub fn url(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    format!(
        "{}/v3/{}",
        state.base_url(headers),
        path.trim_start_matches('/')
    )
}

/// `{"<key>": entity}` with the entity's self link; `collection_path` like `"users"`.
pub fn member(
    state: &AppState,
    headers: &HeaderMap,
    collection_path: &str,
    key: &str,
    entity: Value,
) -> Json<Value> {
    let base = url(state, headers, collection_path);
    Json(json!({ key: with_self_link(entity, &base) }))
}

/// 201 with the member body.
pub fn created(
    state: &AppState,
    headers: &HeaderMap,
    collection_path: &str,
    key: &str,
    entity: Value,
) -> Response {
    (
        StatusCode::CREATED,
        member(state, headers, collection_path, key, entity),
    )
        .into_response()
}

/// 204 with no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obj_validation() {
        let o = Obj {
            path: "user".into(),
            fields: serde_json::from_str(
                r#"{"name": "", "long": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "flag": "yes", "id": "a b"}"#,
            )
            .unwrap(),
        };
        assert!(o.only(&["name"]).unwrap_err().to_string().contains(
            "Additional properties are not allowed ('flag', 'id', 'long' were unexpected)"
        ));
        assert!(o
            .name("name")
            .unwrap_err()
            .to_string()
            .contains("user/name"));
        assert!(o
            .id("long", false)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(o
            .boolean("flag")
            .unwrap_err()
            .to_string()
            .contains("'boolean'"));
        assert!(o
            .id("id", false)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
        assert_eq!(o.name("missing").unwrap(), None);
        assert!(o
            .required_name("missing")
            .unwrap_err()
            .to_string()
            .contains("'missing' is a required property"));
    }
}
