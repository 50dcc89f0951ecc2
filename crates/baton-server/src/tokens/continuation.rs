//! Continuation tokens (Baton's own; docs/continuation.md).
//!
//! A service that starts a long operation for a user (the actor: a sender named in
//! `[continuation] senders`) exchanges the user's still-valid project-scoped token for a
//! continuation token: the same user, project and roles (re-checked at every validation), the
//! actor's id, the service types that may validate it (the audience, each mapped to one service
//! user by `[continuation] receivers`), and an operation deadline set from the sender's limit.
//! Each continuation token lives `[continuation] token_lifetime` seconds; the actor renews it
//! until the deadline. It carries the user token's audit ids, so revoking that token (or
//! disabling the user) ends every continuation of it, and nothing ever accepts an expired
//! token: it works with `[token] allow_expired_window = 0`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use baton_token::{random_audit_id, ContinuationDelegation, Scope, TokenPayload};
use baton_types::{ContinuationActor, IdName, TokenContinuation};
use chrono::SubsecRound;

use super::{to_utc, Checked, Read, Refusal, TokenService, ValidatedToken};
use crate::error::{ApiError, ApiResult};

/// The most receiving services one operation may name (the list travels in every token).
pub const MAX_AUDIENCE: usize = 8;

/// What a sender asks for: an audience and, optionally, a shorter operation than its limit.
/// Both empty for a renewal, which keeps the operation's.
#[derive(Debug, Default)]
pub struct ContinuationRequest {
    /// Service types whose service users may validate the token.
    pub audience: Vec<String>,
    /// Seconds the operation may run; the sender's limit when absent.
    pub operation_lifetime: Option<u32>,
}

/// A refusal with its reason shown to the sender (who is an authenticated service).
fn refuse(reason: impl Into<String>) -> ApiError {
    ApiError::ForbiddenNotSecurity(reason.into())
}

impl TokenService {
    /// Starts an operation (`subject_token` is the user's token) or renews one (it is the
    /// operation's current continuation token) for the service whose token is `actor`.
    pub async fn continuation(
        &self,
        actor: &ValidatedToken,
        subject_token: &str,
        request: ContinuationRequest,
    ) -> ApiResult<(String, Arc<ValidatedToken>)> {
        let result = self.issue_continuation(actor, subject_token, request).await;
        if self.audit.enabled() {
            self.audit_continuation(actor, subject_token, &result).await;
        }
        result
    }

    /// `identity.continuation.issued|renewed|refused` (Baton's events): the user as initiator,
    /// the service user as actor, the continuation token (its audit id, audience and operation
    /// end) as target; a refusal with its reason.
    async fn audit_continuation(
        &self,
        actor: &ValidatedToken,
        subject_token: &str,
        result: &ApiResult<(String, Arc<ValidatedToken>)>,
    ) {
        use baton_audit::cadf::{self, Delegation, Reason};
        // What the subject is, whether or not it was accepted.
        let subject = self
            .formatter
            .validate_token(subject_token)
            .ok()
            .map(|(p, _)| p);
        let renewal = subject.as_ref().is_some_and(|p| p.actor_id().is_some());
        let actor_resource = cadf::requesting_actor(actor.user_id(), &actor.body.user.name);
        let (operation, user, target, reason) = match result {
            Ok((_, issued)) => {
                let (audience, ends) = match &issued.payload.scope {
                    Scope::Continuation {
                        audience,
                        operation_expires_at,
                        ..
                    } => (audience.clone(), *operation_expires_at),
                    _ => (Vec::new(), 0.0),
                };
                let user = issued.audit_user();
                let target = serde_json::json!({
                    "id": issued.payload.audit_ids.first(),
                    "typeURI": "data/security/credential",
                    "audience": audience,
                    "operation_expires_at": to_utc(ends).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                });
                let op = if renewal { "renewed" } else { "issued" };
                (op, user, target, None)
            }
            Err(e) => {
                let user_id = subject.as_ref().map_or("", |p| p.user_id.as_str());
                let name = match self.store.get_user(user_id).await {
                    Ok(Some(u)) => u.name,
                    _ => String::new(),
                };
                let user = cadf::User {
                    id: user_id.to_string(),
                    name,
                    ..Default::default()
                };
                let target = serde_json::json!({"id": subject.as_ref().and_then(|p| p.audit_ids.first()), "typeURI": "data/security/credential"});
                let reason = Reason {
                    message: e.public_message(false),
                    code: e.status().as_u16(),
                };
                ("refused", user, target, Some(reason))
            }
        };
        self.audit
            .delegation(Delegation {
                what: "continuation",
                operation,
                user,
                actor: Some(actor_resource),
                target,
                reason,
                // The user token's audit chain: what a listener ties an operation's events by.
                extra: vec![(
                    "audit_chain_id",
                    serde_json::json!(subject.as_ref().and_then(|p| p.audit_ids.last())),
                )],
            })
            .await;
    }

    async fn issue_continuation(
        &self,
        actor: &ValidatedToken,
        subject_token: &str,
        request: ContinuationRequest,
    ) -> ApiResult<(String, Arc<ValidatedToken>)> {
        let limit = self.continuation_sender_limit(actor)?;
        let now = self.clock.now().trunc_subsecs(0);
        let now_secs = now.timestamp() as f64;
        let subject = self.continuation_subject(subject_token, now_secs).await?;
        let (scope, operation_expires_at) =
            continuation_scope(actor, &subject, request, limit, now_secs, |a| {
                self.continuation_audience(a)
            })?;
        let expires_at = (now_secs + f64::from(self.config.continuation.token_lifetime))
            .min(operation_expires_at);
        // The user token's chain root: revoking the user's token (with cascade, the default)
        // or any token of its chain ends the operation too.
        let mut audit_ids = vec![random_audit_id()];
        audit_ids.extend(subject.payload.audit_ids.last().cloned());
        let payload = TokenPayload {
            user_id: subject.payload.user_id.clone(),
            methods: subject.payload.methods.clone(),
            expires_at,
            audit_ids,
            scope,
        };
        let began = self.write_generation.load(Ordering::Acquire);
        let (token, validated) = self
            .mint(&payload, now)
            .await?
            .map_err(|r| refuse(format!("The continuation token would not validate: {r}.")))?;
        self.cache_validated(&token, began, &validated);
        tracing::info!(
            user_id = %payload.user_id,
            actor_id = %actor.user_id(),
            renewal = subject.payload.actor_id().is_some(),
            token = %baton_types::token_fingerprint(&token),
            "continuation token issued"
        );
        Ok((token, validated))
    }

    /// The subject token, valid now; a refusal says why, and that the operation has ended
    /// when it is a continuation token past its operation's end.
    async fn continuation_subject(
        &self,
        subject_token: &str,
        now_secs: f64,
    ) -> ApiResult<Arc<ValidatedToken>> {
        let reason = match self.validate(subject_token, false).await {
            Err(ApiError::TokenNotFound { reason }) => reason,
            other => return other,
        };
        // A continuation token expires at the latest when its operation ends: say so.
        let ended = self
            .formatter
            .validate_token(subject_token)
            .ok()
            .and_then(|(p, _)| match p.scope {
                Scope::Continuation {
                    operation_expires_at,
                    ..
                } if now_secs >= operation_expires_at => Some(operation_expires_at),
                _ => None,
            });
        Err(refuse(match ended {
            Some(at) => format!(
                "The operation's lifetime ended at {}: start a new one with a user token.",
                to_utc(at).to_rfc3339()
            ),
            None => format!("The subject token cannot be continued: {reason}."),
        }))
    }

    /// The longest operation the actor may run: its own (not delegated) token, a user named in
    /// `[continuation] senders` in the service users' domain, holding one of `actor_roles`.
    fn continuation_sender_limit(&self, actor: &ValidatedToken) -> ApiResult<u32> {
        let opts = &self.config.continuation;
        if !opts.enabled() {
            return Err(ApiError::NotFound(
                "Continuation tokens are not enabled on this server ([continuation] senders is empty).".into(),
            ));
        }
        if actor.payload.trust_id().is_some() || actor.payload.actor_id().is_some() {
            return Err(refuse(
                "A continuation is asked for with the service's own token, not a trust or continuation token.",
            ));
        }
        let user = &actor.body.user;
        let limit = (user.domain.name == opts.service_user_domain_name)
            .then(|| opts.sender_limit(&user.name))
            .flatten()
            .ok_or_else(|| {
                refuse(format!(
                    "User {} of domain {} may not start operations ([continuation] senders).",
                    user.name, user.domain.name
                ))
            })?;
        if !opts.actor_roles.iter().any(|r| actor.has_role(r)) {
            return Err(refuse(format!(
                "The service token holds none of the roles [continuation] actor_roles names ({}).",
                opts.actor_roles.join(", ")
            )));
        }
        Ok(limit)
    }

    /// The requested audience, each a receiving service type `[continuation] receivers` maps,
    /// duplicates dropped.
    fn continuation_audience(&self, requested: Vec<String>) -> ApiResult<Vec<String>> {
        let opts = &self.config.continuation;
        if requested.is_empty() {
            return Err(ApiError::BadRequest(
                "Invalid input for field 'continuation/audience': at least one service type is required."
                    .into(),
            ));
        }
        let mut audience: Vec<String> = Vec::new();
        for service_type in requested {
            if opts.receiver(&service_type).is_none() {
                return Err(refuse(format!(
                    "Service type {service_type:?} is not a receiving service of this server ([continuation] receivers)."
                )));
            }
            if !audience.contains(&service_type) {
                audience.push(service_type);
            }
        }
        if audience.len() > MAX_AUDIENCE {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field 'continuation/audience': at most {MAX_AUDIENCE} service types."
            )));
        }
        Ok(audience)
    }

    /// Whether `caller` may see the subject token: any token but a continuation token, which
    /// only its actor and the service users of its audience may validate (404 otherwise, as
    /// for a token that does not exist).
    pub fn check_audience(
        &self,
        subject: &ValidatedToken,
        caller: &ValidatedToken,
    ) -> ApiResult<()> {
        let Scope::Continuation {
            actor_id, audience, ..
        } = &subject.payload.scope
        else {
            return Ok(());
        };
        let opts = &self.config.continuation;
        let user = &caller.body.user;
        let receiver = user.domain.name == opts.service_user_domain_name
            && audience
                .iter()
                .any(|t| opts.receiver(t) == Some(user.name.as_str()));
        if caller.user_id() == actor_id || receiver {
            return Ok(());
        }
        tracing::info!(
            caller = %caller.user_id(),
            audience = ?audience,
            "continuation token refused to a validator outside its audience"
        );
        Err(ApiError::token_not_found(
            "continuation token validated by a service outside its audience",
        ))
    }

    /// The `baton:continuation` member of a continuation token's body: its actor must exist,
    /// be enabled and be in an enabled domain.
    pub(super) async fn continuation_body(
        &self,
        read: Read,
        scope: &Scope,
    ) -> Checked<TokenContinuation> {
        let Scope::Continuation {
            actor_id,
            audience,
            operation_expires_at,
            ..
        } = scope
        else {
            return Ok(Err(Refusal::ActorUnusable(String::new())));
        };
        Ok(match self.token_user(read, actor_id).await? {
            Ok((facts, domain)) => Ok(TokenContinuation {
                actor: ContinuationActor {
                    id: facts.user.id.clone(),
                    name: facts.user.name.clone(),
                    domain: IdName {
                        id: domain.id.clone(),
                        name: domain.name.clone(),
                    },
                },
                audience: audience.clone(),
                operation_expires_at: to_utc(*operation_expires_at),
            }),
            Err(_) => Err(Refusal::ActorUnusable(actor_id.clone())),
        })
    }
}

/// The new token's scope and its operation's end: a renewal (by the actor alone) keeps the
/// operation's; a start, from a project-scoped token (a user's own, an application
/// credential's or a trust's, whose delegation the continuation keeps), names the audience
/// (`audience` checks it) and ends the operation within the sender's `limit`.
fn continuation_scope(
    actor: &ValidatedToken,
    subject: &ValidatedToken,
    request: ContinuationRequest,
    limit: u32,
    now_secs: f64,
    audience: impl FnOnce(Vec<String>) -> ApiResult<Vec<String>>,
) -> ApiResult<(Scope, f64)> {
    let (project_id, delegation) = match &subject.payload.scope {
        Scope::Continuation {
            actor_id,
            operation_expires_at,
            ..
        } => {
            if actor_id != actor.user_id() {
                return Err(refuse(
                    "Only the service that started an operation may renew its continuation token.",
                ));
            }
            if !request.audience.is_empty() || request.operation_lifetime.is_some() {
                return Err(ApiError::BadRequest(
                    "A renewal keeps the operation's audience and lifetime: send neither.".into(),
                ));
            }
            return Ok((subject.payload.scope.clone(), *operation_expires_at));
        }
        Scope::Project { project_id } if !subject.is_delegated() => (project_id, None),
        // A delegated token is continued with its delegation, which every validation of the
        // continuation checks again (the credential's roles and access rules, the trust).
        Scope::ApplicationCredential {
            project_id,
            app_cred_id,
        } => (
            project_id,
            Some(ContinuationDelegation::ApplicationCredential(
                app_cred_id.clone(),
            )),
        ),
        Scope::Trust {
            project_id,
            trust_id,
        } => (
            project_id,
            Some(ContinuationDelegation::Trust(trust_id.clone())),
        ),
        _ => return Err(refuse(
            "Only a project-scoped token of a user, an application credential or a trust can start an operation (not an unscoped, domain, system, OAuth1 or EC2 token).",
        )),
    };
    let audience = audience(request.audience)?;
    let lifetime = request.operation_lifetime.unwrap_or(limit);
    if lifetime > limit {
        return Err(refuse(format!(
            "An operation of {lifetime} s is longer than {} may run ({limit} s, [continuation] senders).",
            actor.body.user.name
        )));
    }
    let operation_expires_at = now_secs + f64::from(lifetime);
    let scope = Scope::Continuation {
        project_id: project_id.clone(),
        actor_id: actor.user_id().to_string(),
        audience,
        operation_expires_at,
        subject_audit_id: subject
            .payload
            .audit_ids
            .first()
            .cloned()
            .unwrap_or_default(),
        delegation,
    };
    Ok((scope, operation_expires_at))
}
