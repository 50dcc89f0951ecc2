//! Listing a collection the way Keystone does: the [`ListRequest`] extractor (query string and
//! the base URL for links), [`Page`] (`limit`/`marker`, `list_limit`, `max_db_limit`) and the
//! envelope ([`ListRequest::respond`]: entities sorted by id, `links`, `truncated`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::query::{encode, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Keystone's `[DEFAULT] max_db_limit` default: no page is larger.
pub const MAX_DB_LIMIT: usize = 1000;

/// A GET of a collection: its decoded query string, and what its links need.
pub struct ListRequest {
    /// The decoded query string (filters, `limit`, `marker`).
    pub query: ListQuery,
    /// `[DEFAULT] public_endpoint` or the URL the client used, without `/v3`.
    base: String,
    /// `[DEFAULT] list_limit`.
    default_limit: Option<u32>,
}

impl FromRequestParts<AppState> for ListRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<ListRequest> {
        Ok(ListRequest {
            query: ListQuery::parse(parts.uri.query()),
            base: state.base_url(&parts.headers),
            default_limit: state.config().default.list_limit,
        })
    }
}

/// Which collection a listing shows: `key` names both the body's list and where its members
/// live (`/v3/<key>/<id>`); `path` is the request path after `/v3/` when it differs
/// (`groups/{id}/users`).
pub struct Collection {
    key: &'static str,
    path: Option<String>,
    members: Option<String>,
}

impl Collection {
    /// `/v3/<key>`.
    pub fn of(key: &'static str) -> Collection {
        Collection {
            key,
            path: None,
            members: None,
        }
    }

    /// The same members listed under another path (`users/{id}/groups`).
    pub fn at(self, path: String) -> Collection {
        Collection {
            path: Some(path),
            ..self
        }
    }

    /// Members living under `path` rather than `/v3/<key>` (`OS-FEDERATION/...`).
    pub fn members_under(self, path: String) -> Collection {
        Collection {
            members: Some(path),
            ..self
        }
    }
}

/// How a collection is cut: `limit`/`marker` from the query, the configured `list_limit`, and
/// `max_db_limit` above both, as Keystone does.
pub struct Page {
    /// At most this many entities; `None` for all.
    pub limit: Option<usize>,
    /// Only entities with a greater id (the last id of the previous page).
    pub marker: Option<String>,
}

impl ListRequest {
    /// `{base}/v3/{path}`.
    fn url(&self, path: &str) -> String {
        format!("{}/v3/{}", self.base, path.trim_start_matches('/'))
    }

    /// The page asked for; `list_limit` is the family's own limit (`[identity] list_limit`,
    /// ...), which wins over `[DEFAULT] list_limit`. A configured 0 means no limit.
    pub fn page(&self, list_limit: Option<u32>) -> ApiResult<Page> {
        let limit = self.explicit_limit()?.or_else(|| {
            list_limit
                .filter(|l| *l > 0)
                .or(self.default_limit.filter(|l| *l > 0))
                .map(|l| l as usize)
        });
        Ok(Page {
            limit: limit.map(|l| l.min(MAX_DB_LIMIT)),
            marker: self.marker(),
        })
    }

    /// The page asked for, with no configured limit (Keystone applies none to
    /// `/v3/users/{id}/projects`).
    pub fn explicit_page(&self) -> ApiResult<Page> {
        Ok(Page {
            limit: self.explicit_limit()?,
            marker: self.marker(),
        })
    }

    fn explicit_limit(&self) -> ApiResult<Option<usize>> {
        self.query
            .get("limit")
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| ApiError::BadRequest(format!("Invalid value for limit: {v:?}")))
            })
            .transpose()
    }

    fn marker(&self) -> Option<String> {
        self.query
            .get("marker")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    }

    /// Keystone's collection envelope: entities sorted by id (so `marker` is stable), the page
    /// cut at `limit` with `truncated: true` and a `next` link when it was cut, each entity with
    /// its self link.
    pub fn respond(&self, page: &Page, c: Collection, mut entities: Vec<Value>) -> Response {
        entities.sort_by(|a, b| id_of(a).cmp(id_of(b)));
        if let Some(marker) = &page.marker {
            entities.retain(|v| id_of(v) > marker.as_str());
        }
        let truncated = page.limit.is_some_and(|limit| entities.len() > limit);
        if let (true, Some(limit)) = (truncated, page.limit) {
            entities.truncate(limit);
        }
        let member_base = self.url(c.members.as_deref().unwrap_or(c.key));
        let entities: Vec<Value> = entities
            .into_iter()
            .map(|e| with_self_link(e, &member_base))
            .collect();
        let here = self.url(c.path.as_deref().unwrap_or(c.key));
        let self_link = match self.query.raw() {
            Some(q) if !q.is_empty() => format!("{here}?{q}"),
            _ => here.clone(),
        };
        let next = match (truncated, entities.last()) {
            (true, Some(last)) => Value::String(format!("{here}?{}", self.next_query(page, last))),
            _ => Value::Null,
        };
        let mut body = json!({
            c.key: entities,
            "links": { "self": self_link, "previous": null, "next": next },
        });
        if truncated {
            body["truncated"] = Value::Bool(true);
        }
        Json(body).into_response()
    }

    /// The query of the `next` link: the filters as given, then `marker` and `limit`.
    fn next_query(&self, page: &Page, last: &Value) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .query
            .pairs
            .iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        pairs.push(("marker", id_of(last).to_string()));
        pairs.push((
            "limit",
            page.limit.map(|l| l.to_string()).unwrap_or_default(),
        ));
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn id_of(v: &Value) -> &str {
    v.get("id").and_then(Value::as_str).unwrap_or("")
}

/// Adds `links.self` (`{collection_url}/{id}`) to an entity.
pub fn with_self_link(mut entity: Value, collection_url: &str) -> Value {
    if let Some(obj) = entity.as_object_mut() {
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // Related links an entity already carries (an identity provider's `protocols`) stay.
        let link = Value::String(format!("{collection_url}/{id}"));
        match obj.get_mut("links") {
            Some(Value::Object(links)) => {
                links.insert("self".into(), link);
            }
            _ => {
                obj.insert("links".into(), json!({ "self": link }));
            }
        }
    }
    entity
}
