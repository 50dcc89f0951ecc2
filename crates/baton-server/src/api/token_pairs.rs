//! `/v3/baton/token_pairs` (Baton's own; docs/continuation.md, "The pair in one call"): a
//! receiving service sends the user token and the service token that came with a request in
//! one validation call, and the server judges the pair: the service token strictly, then the
//! user token, allowed to have expired within a window only when the service token holds one
//! of the receiver's `service_token_roles`. The window is the first `[token_pairs]
//! expired_windows` rule matching the sender (the service token's user) and the receiver (the
//! caller), else `[token] allow_expired_window`. Without rules the answers are exactly those
//! of the two `GET /v3/auth/tokens` calls keystonemiddleware makes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_types::headers::{ACCESS_RULES, SERVICE_TOKEN, SUBJECT_TOKEN};
use serde_json::{json, Value};

use super::extract::Caller;
use super::header_str;
use super::query::ListQuery;
use crate::error::{ApiError, ApiResult};
use crate::policy;
use crate::tokens::ValidatedToken;
use crate::AppState;

/// The routes; merged into the identity router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/baton/token_pairs", get(describe))
        .route("/v3/baton/token_pairs/validate", get(validate))
}

/// `GET /v3/baton/token_pairs`: tells a receiver that pair validation is offered (Keystone
/// answers 404).
async fn describe(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"token_pairs": {
        "validate": "/v3/baton/token_pairs/validate",
        "rules": state.config.token_pairs.expired_windows.len(),
    }}))
}

/// One token of the pair, judged.
enum Member {
    /// Valid within the window; whether it had expired.
    Valid(Arc<ValidatedToken>, bool),
    /// Refused, but would validate were it not expired.
    Expired(Arc<ValidatedToken>),
    /// Refused.
    Invalid,
}

/// `GET /v3/baton/token_pairs/validate` with the receiver's token in `X-Auth-Token`, the user
/// token in `X-Subject-Token`, the service token in `X-Service-Token` (either may be absent)
/// and the receiver's `?service_token_roles=` (default `service`); `?nocatalog` as for
/// `GET /v3/auth/tokens`.
async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let query = ListQuery::parse(query.as_deref());
    let roles: Vec<&str> = query
        .get("service_token_roles")
        .unwrap_or("service")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    let include_catalog = !query.has("nocatalog");
    let user = header_str(&headers, SUBJECT_TOKEN);
    let service = header_str(&headers, SERVICE_TOKEN);
    if user.is_none() && service.is_none() {
        return Err(ApiError::BadRequest(
            "X-Subject-Token (the user token) or X-Service-Token is required.".into(),
        ));
    }
    let rules_header = header_str(&headers, ACCESS_RULES);
    let judge = |token, window, ruled| member(&state, &caller, token, window, ruled, rules_header);
    let service = match service {
        Some(t) => Some(judge(t, 0, false).await?),
        None => None,
    };
    let sender = match &service {
        Some(Member::Valid(v, _)) if roles.iter().any(|r| v.has_role(r)) => Some(v.clone()),
        _ => None,
    };
    let (window, ruled) = match &sender {
        Some(v) => {
            let pairs = &state.config.token_pairs;
            let name = |t: &ValidatedToken| {
                let u = &t.body.user;
                (u.domain.name == pairs.service_user_domain_name).then_some(u.name.clone())
            };
            let rule = pairs.expired_window(name(v).as_deref(), name(&caller.token).as_deref());
            (
                rule.unwrap_or(state.config.token.allow_expired_window),
                rule.is_some(),
            )
        }
        None => (0, false),
    };
    let user = match user {
        Some(t) => Some(judge(t, window, ruled).await?),
        None => None,
    };
    audit_pair(
        &state,
        &caller.token,
        (&user, &service, sender.as_deref()),
        &roles,
        window,
    )
    .await;
    // The members' bodies are the cached token JSON spliced in, never parsed again.
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"token_pair\":{\"service\":");
    render(&mut out, service, include_catalog);
    out.extend_from_slice(b",\"user\":");
    render(&mut out, user, include_catalog);
    let tail = json!({
        "allow_expired": sender.is_some(),
        "expired_window": sender.is_some().then_some(window),
    })
    .to_string();
    // `{"allow_expired":..}` minus its opening brace closes both objects but one.
    out.push(b',');
    out.extend_from_slice(&tail.as_bytes()[1..]);
    out.push(b'}');
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(out),
    )
        .into_response())
}

/// The pair's event, if any: an expired user token accepted because of the service token, or
/// presented with a service token and refused.
async fn audit_pair(
    state: &AppState,
    receiver: &ValidatedToken,
    (user, service, sender): (&Option<Member>, &Option<Member>, Option<&ValidatedToken>),
    roles: &[&str],
    window: u32,
) {
    let how = (window, ExpiredPath::TokenPair);
    match user {
        Some(Member::Valid(v, true)) if sender.is_some() => {
            audit_expired(state, v, sender, receiver, how, None).await;
        }
        Some(Member::Expired(v)) if service.is_some() => {
            let reason = refusal_reason(service.as_ref(), sender.is_some(), roles, window);
            let sent_by = match service {
                Some(Member::Valid(s, _) | Member::Expired(s)) => Some(&**s),
                _ => None,
            };
            audit_expired(state, v, sent_by, receiver, how, Some(reason)).await;
        }
        _ => {}
    }
}

/// How the server learnt of a service presenting a user's expired token.
#[derive(Clone, Copy)]
pub(super) enum ExpiredPath {
    /// The pair in one call: the service token judged here, so the actor is known.
    TokenPair,
    /// keystonemiddleware's second call (`GET /v3/auth/tokens?allow_expired=1`): the receiver
    /// judged the service token; the server never sees it, so the actor is unknown.
    AllowExpired,
}

/// `identity.expired_token.accepted|refused` (Baton's events): the user's expired token
/// accepted (or, with `refused`'s reason, refused) for the receiving service `receiver`,
/// because of `sender`'s service token when the server saw it.
pub(super) async fn audit_expired(
    state: &AppState,
    user: &ValidatedToken,
    sender: Option<&ValidatedToken>,
    receiver: &ValidatedToken,
    (window, path): (u32, ExpiredPath),
    refused: Option<String>,
) {
    use baton_audit::cadf;
    let audit = &state.tokens.audit;
    if !audit.enabled() {
        return;
    }
    let event = cadf::Delegation {
        what: "expired_token",
        operation: if refused.is_some() {
            "refused"
        } else {
            "accepted"
        },
        user: user.audit_user(),
        actor: sender.map(|s| cadf::actor(s.user_id(), &s.body.user.name)),
        target: cadf::service_target(receiver.user_id(), &receiver.body.user.name),
        // The receiver answers the request 401.
        reason: refused.map(|message| cadf::Reason { message, code: 401 }),
        extra: vec![
            ("token_audit_id", json!(user.payload.audit_ids.first())),
            ("audit_chain_id", json!(user.payload.audit_ids.last())),
            (
                "token_expires_at",
                json!(user
                    .body
                    .expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            ),
            ("expired_window", json!(window)),
            (
                "validated_by",
                json!(match path {
                    ExpiredPath::TokenPair => "token_pair",
                    ExpiredPath::AllowExpired => "allow_expired",
                }),
            ),
        ],
    };
    audit.delegation(event).await;
}

/// Why a pair's expired user token was refused, for the event: the service token's fault or
/// the window's (`sender`: the service token passed and holds a role).
fn refusal_reason(service: Option<&Member>, sender: bool, roles: &[&str], window: u32) -> String {
    match service {
        _ if sender => format!("the user token expired more than the window of {window} s ago"),
        Some(Member::Valid(..)) => format!(
            "the service token holds none of service_token_roles ({})",
            roles.join(", ")
        ),
        Some(Member::Expired(_)) => "the service token has expired".into(),
        _ => "the service token is invalid".into(),
    }
}

/// A member as JSON: `null`, `{"token": ..., "accepted_expired": ..}` (the token's cached body
/// with one member added before its closing brace) or `{"refused": ..}`.
fn render(out: &mut Vec<u8>, member: Option<Member>, include_catalog: bool) {
    match member {
        None => out.extend_from_slice(b"null"),
        Some(Member::Valid(v, expired)) => {
            let body = v.json(include_catalog);
            out.extend_from_slice(&body[..body.len() - 1]);
            out.extend_from_slice(if expired {
                b",\"accepted_expired\":true}"
            } else {
                b",\"accepted_expired\":false}"
            });
        }
        Some(Member::Expired(_)) => out.extend_from_slice(b"{\"refused\":\"expired\"}"),
        Some(Member::Invalid) => out.extend_from_slice(b"{\"refused\":\"invalid\"}"),
    }
}

/// One token as `GET /v3/auth/tokens` would judge it for `caller`, with `window` seconds of
/// expiry allowed. A token merely expired is [`Member::Expired`] when it would validate within
/// `[token] allow_expired_window` and no window was asked for (what keystonemiddleware learns
/// by asking again with `allow_expired`), or when a `[token_pairs]` rule (`ruled`) set a
/// window it is past. A caller the policy refuses is a 403 for the whole call.
async fn member(
    state: &AppState,
    caller: &Caller,
    token: &str,
    window: u32,
    ruled: bool,
    rules_header: Option<&str>,
) -> ApiResult<Member> {
    let tokens = &state.tokens;
    let v = match tokens.validate_ignoring_expiry(token).await {
        Ok(v) => v,
        Err(ApiError::TokenNotFound { .. }) => return Ok(Member::Invalid),
        Err(e) => return Err(e),
    };
    let usable = v.check_access_rules_support(rules_header).is_ok()
        && tokens.check_audience(&v, &caller.token).is_ok();
    if !usable {
        return Ok(Member::Invalid);
    }
    policy::enforce_on_subject(
        &state.policy,
        "identity:validate_token",
        &caller.token.body,
        &v.body,
    )?;
    if !tokens.expired_beyond(&v, window) {
        let expired = tokens.expired_beyond(&v, 0);
        return Ok(Member::Valid(v, expired));
    }
    let diagnosable =
        window == 0 && !tokens.expired_beyond(&v, state.config.token.allow_expired_window);
    Ok(if diagnosable || ruled {
        Member::Expired(v)
    } else {
        Member::Invalid
    })
}
