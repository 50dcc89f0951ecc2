//! `/healthcheck` in oslo.middleware's shape (Keystone mounts that middleware there): 200 when
//! this node can serve, 503 with the reasons when it cannot; any method; `HEAD` answers 204
//! with no body; the body is text, HTML or JSON by `Accept` (text first on a tie, text when
//! nothing matches, never 406). Load balancers take a node out of rotation on the 503.
//!
//! Keystone with no backends configured answers an empty 200; Baton always checks its
//! database (within [`FEED_TIMEOUT`]) and, with `key_distribution = database`, that its keys
//! are the fleet's (`Fleet::key_lag`), and says `OK`, as oslo.middleware does with backends.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::changes::FEED_TIMEOUT;
use crate::AppState;

/// Why this node cannot serve, or nothing when it can.
async fn problems(state: &AppState) -> Vec<String> {
    let mut reasons = Vec::new();
    match tokio::time::timeout(FEED_TIMEOUT, state.store.change_mark()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "healthcheck: the database is unreachable");
            reasons.push("DATABASE UNREACHABLE".to_string());
        }
        Err(_) => {
            tracing::warn!("healthcheck: the database did not answer within 1 s");
            reasons.push("DATABASE UNREACHABLE".to_string());
        }
    }
    if let Some(lag) = state.fleet.key_lag() {
        tracing::warn!(reason = %lag, "healthcheck: this node's keys lag the fleet");
        reasons.push(format!("KEYS LAG THE FLEET: {lag}"));
    }
    reasons
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Text,
    Html,
    Json,
}

/// oslo.middleware's offers in its order (text/plain, text/html, application/json): the one
/// with the highest quality in `Accept` wins; equal qualities go to the earlier offer.
fn negotiate(headers: &HeaderMap) -> Body {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Body::Text;
    };
    let offers = [
        ("text/plain", Body::Text),
        ("text/html", Body::Html),
        ("application/json", Body::Json),
    ];
    let mut best: Option<(f32, Body)> = None;
    for (offer, body) in offers {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut q_best: Option<f32> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let matches = media == offer || media == "*/*" || media == format!("{kind}/*");
            if matches {
                q_best = Some(q_best.map_or(q, |b: f32| b.max(q)));
            }
        }
        if let Some(q) = q_best.filter(|q| *q > 0.0) {
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, body));
            }
        }
    }
    best.map_or(Body::Text, |(_, b)| b)
}

fn render(body: Body, reasons: &[String]) -> (String, &'static str) {
    match body {
        Body::Text => (reasons.join("\n"), "text/plain; charset=UTF-8"),
        Body::Json => {
            // Python's `json.dumps(indent=4, sort_keys=True)`, as oslo.middleware writes it.
            let value = serde_json::json!({ "detailed": false, "reasons": reasons });
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            let text = serde::Serialize::serialize(&value, &mut ser)
                .ok()
                .and_then(|()| String::from_utf8(out).ok())
                .unwrap_or_default();
            (text, "application/json")
        }
        Body::Html => {
            let rows: String = reasons
                .iter()
                .map(|r| format!("<TR>\n\n    <TD>{}</TD>\n\n</TR>\n", html_escape(r)))
                .collect();
            let page = format!(
                "<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of {} checks:</H2>\n\
                 <TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n{rows}</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>",
                reasons.len()
            );
            (page, "text/html; charset=UTF-8")
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `ANY /healthcheck`.
pub async fn healthcheck(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut reasons = problems(&state).await;
    let healthy = reasons.is_empty();
    if healthy {
        reasons.push("OK".to_string());
    }
    let status = match (healthy, method == Method::HEAD) {
        (true, true) => StatusCode::NO_CONTENT,
        (true, false) => StatusCode::OK,
        (false, _) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let (text, content_type) = if method == Method::HEAD {
        (String::new(), "text/plain; charset=UTF-8")
    } else {
        render(negotiate(&headers), &reasons)
    };
    let mut resp = (status, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if !healthy {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}
