//! Identity version discovery (keystoneauth1 `discover.py` rules) and the v3 URL rules.

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::error::{display_url, Error, Result};
use crate::http::{read_limited, HttpClient, HttpRequest};

/// One entry of a discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredVersion {
    /// As sent, e.g. `v3.14`.
    pub id: String,
    /// `(major, minor)` parsed from `id`.
    pub version: (u64, u64),
    /// `stable`, `supported`, `deprecated`, ...
    pub status: String,
    /// The `self` link.
    pub url: Url,
}

/// Reads the versions of a discovery document. Like keystoneauth's `get_version_data`, the list
/// is `versions.values`, or `versions` when it is a list, or the single `version` object.
/// Entries without a parsable id or a `self` link are skipped; relative links are resolved
/// against `base`.
pub fn parse_versions(doc: &Value, base: &Url) -> Result<Vec<DiscoveredVersion>, String> {
    let entries: Vec<&Value> = match (doc.get("versions"), doc.get("version")) {
        (Some(Value::Object(o)), _) => match o.get("values") {
            Some(Value::Array(a)) => a.iter().collect(),
            _ => return Err("`versions` has no `values` list".into()),
        },
        (Some(Value::Array(a)), _) => a.iter().collect(),
        (Some(_), _) => return Err("`versions` is neither an object nor a list".into()),
        (None, Some(v @ Value::Object(_))) => vec![v],
        _ => return Err("the document has neither `versions` nor `version`".into()),
    };
    let mut out = Vec::new();
    for e in entries {
        let Some(id) = e.get("id").and_then(Value::as_str) else {
            continue;
        };
        let Some(version) = parse_version_id(id) else {
            continue;
        };
        let href = e
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some("self"))
            .and_then(|l| l.get("href"))
            .and_then(Value::as_str);
        let Some(url) = href.and_then(|h| base.join(h).ok()) else {
            continue;
        };
        out.push(DiscoveredVersion {
            id: id.to_string(),
            version,
            status: e
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase(),
            url,
        });
    }
    Ok(out)
}

/// `v3.14` → `(3, 14)`, `v3` → `(3, 0)`.
fn parse_version_id(id: &str) -> Option<(u64, u64)> {
    let rest = id.strip_prefix('v').unwrap_or(id);
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

/// The highest non-experimental 3.x version.
pub fn pick_v3(versions: &[DiscoveredVersion]) -> Option<&DiscoveredVersion> {
    versions
        .iter()
        .filter(|v| v.version.0 == 3 && v.status != "experimental")
        .max_by_key(|v| v.version)
}

/// Whether the URL's last path segment is `v3` (`http://h:5000/v3`, `.../identity/v3/`).
pub fn names_v3(url: &Url) -> bool {
    url.path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("v3"))
}

/// keystoneauth's v3 plugin rule: `auth_url` itself when it ends in `v3`, else `<auth_url>/v3`.
pub fn v3_url_from_path(auth_url: &Url) -> Url {
    if names_v3(auth_url) {
        trim_slash(auth_url)
    } else {
        join_path(auth_url, "v3")
    }
}

/// `base` without a trailing slash on its path.
pub(crate) fn trim_slash(base: &Url) -> Url {
    let mut u = base.clone();
    let p = base.path().trim_end_matches('/').to_string();
    u.set_path(&p);
    u
}

/// Appends `path` (which may carry a `?query`) to `base`'s path with exactly one slash.
pub fn join_path(base: &Url, path: &str) -> Url {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut u = base.clone();
    let head = base.path().trim_end_matches('/');
    let tail = path.trim_start_matches('/');
    if !tail.is_empty() {
        u.set_path(&format!("{head}/{tail}"));
    }
    if let Some(q) = query {
        u.set_query(Some(q));
    }
    u
}

/// GETs `url` and returns the v3 identity endpoint it advertises (cached per client).
pub async fn discover_v3(http: &HttpClient, url: &Url) -> Result<Url> {
    if let Some(hit) = http.cached_discovery(url) {
        return Ok(hit);
    }
    let shown = display_url(url);
    let fail = |reason: String| Error::Discovery {
        url: shown.clone(),
        reason,
    };
    let req = HttpRequest::new(Method::GET, url.clone())
        .header(ACCEPT, HeaderValue::from_static("application/json"));
    let resp = http.execute(&req).await?;
    let status = resp.status();
    // 300 Multiple Choices is the normal answer at the root.
    if status.as_u16() >= 400 {
        let rid = crate::http::request_id(resp.headers());
        return Err(fail(format!(
            "GET returned {status}{}",
            rid.map(|r| format!(" (request {r})")).unwrap_or_default()
        )));
    }
    let body = read_limited(resp, 1024 * 1024).await;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
    let versions = parse_versions(&doc, url).map_err(fail)?;
    let v3 = pick_v3(&versions).ok_or_else(|| {
        fail(format!(
            "no 3.x version among [{}]",
            versions
                .iter()
                .map(|v| v.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let found = trim_slash(&v3.url);
    tracing::debug!(url = %shown, v3 = %display_url(&found), version = %v3.id, "discovered identity v3");
    http.cache_discovery(url.clone(), found.clone());
    Ok(found)
}

/// The v3 endpoint behind `auth_url` the way keystoneauth's generic plugins find it: version
/// discovery first; when the server answers but discovery fails, the URL itself if its path
/// names v3; otherwise an error that says what was tried. (keystoneauth also falls back after a
/// connection failure; that only repeats the failure against the same host, so here it is
/// returned at once.)
pub async fn identity_v3_url(http: &HttpClient, auth_url: &Url) -> Result<Url> {
    match discover_v3(http, auth_url).await {
        Ok(url) => Ok(url),
        Err(e @ (Error::Connection { .. } | Error::Timeout { .. })) => Err(e),
        Err(e) if names_v3(auth_url) => {
            tracing::debug!(error = %e, "discovery failed; using the v3 URL as given");
            Ok(trim_slash(auth_url))
        }
        Err(Error::Discovery { url, reason }) => Err(Error::Discovery {
            url,
            reason: format!(
                "{reason}; auth_url should be the identity endpoint, e.g. http://controller:5000/v3"
            ),
        }),
        Err(e) => Err(e),
    }
}
