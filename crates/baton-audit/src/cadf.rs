//! The events: Keystone's CADF payloads (pycadf's `Event.as_dict()`), their `basic` form, and
//! Baton's own events, which follow the same shape.
//!
//! Every function checks `notification_opt_out` itself and sends nothing when notifications
//! are off, so callers just call them.

use baton_config::NotificationFormat;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::context::{self, RequestContext};
use crate::Notifier;

/// CADF's event type URI.
pub const EVENT_TYPE_URI: &str = "http://schemas.dmtf.org/cloud/audit/1.0/event";
/// CADF type of a user acting (initiators and authentication targets).
pub const ACCOUNT_USER: &str = "service/security/account/user";
/// CADF type of the identity service observing.
pub const SERVICE_SECURITY: &str = "service/security";
/// CADF type of a service receiving a call.
pub const SERVICE: &str = "service";

/// `success` or `failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action was done.
    Success,
    /// The action was refused.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Why an action failed: CADF's reason, `reasonType` the message and `reasonCode` the HTTP
/// status.
#[derive(Debug, Clone)]
pub struct Reason {
    /// The message.
    pub message: String,
    /// The HTTP status, as text.
    pub code: u16,
}

/// The CADF type of a resource, as Keystone maps its resource types (`unknown` otherwise).
pub fn target_type_uri(resource_type: &str) -> &'static str {
    match resource_type {
        "group" => "data/security/group",
        "project" => "data/security/project",
        "role" => "data/security/role",
        "user" => "data/security/account/user",
        "domain" => "data/security/domain",
        "region" => "data/security/region",
        "endpoint" => "data/security/endpoint",
        "service" => "data/security/service",
        "policy" => "data/security/policy",
        "OS-TRUST:trust" => "data/security/trust",
        "OS-OAUTH1:access_token" | "OS-OAUTH1:request_token" => "data/security/credential",
        "OS-OAUTH1:consumer" => "data/security/account",
        _ => "unknown",
    }
}

/// pycadf's identifiers: a name-based UUID (namespace from SHA-256 of `openstack`, pycadf's
/// default `[audit] namespace`) of a random one.
fn cadf_id() -> String {
    let digest = Sha256::digest(b"openstack");
    let mut ns = [0u8; 16];
    ns.copy_from_slice(&digest[..16]);
    let ns = uuid::Uuid::from_bytes(ns);
    uuid::Uuid::new_v5(&ns, uuid::Uuid::new_v4().to_string().as_bytes()).to_string()
}

/// Keystone's `resource_uuid`: a UUID stays as it is, anything else becomes a name-based UUID
/// (hex) in Keystone's namespace, so that initiator ids are UUIDs.
pub fn resource_uuid(id: &str) -> String {
    if uuid::Uuid::parse_str(id).is_ok() {
        return id.to_string();
    }
    let ns = uuid::uuid!("4332ecab-770b-4288-a680-b9aca3b1b153");
    uuid::Uuid::new_v5(&ns, id.as_bytes()).simple().to_string()
}

/// A user acting, with the scope of the token they act with: a request's caller, a login's
/// user, the user a service acts for.
#[derive(Debug, Clone, Default)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// The project of the token they act with, if any.
    pub project_id: Option<String>,
    /// The domain of the token they act with, if any.
    pub domain_id: Option<String>,
}

fn host(ctx: &RequestContext) -> Value {
    json!({"address": ctx.address, "agent": ctx.agent})
}

fn insert_request_ids(m: &mut Map<String, Value>, ctx: &RequestContext) {
    m.insert("request_id".into(), ctx.request_id.clone().into());
    if let Some(g) = &ctx.global_request_id {
        m.insert("global_request_id".into(), g.clone().into());
    }
}

/// The `basic` form: the resource id, and the request ids when written by a request.
fn basic(id: &str, more: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    m.insert("resource_info".into(), id.into());
    for (k, v) in more {
        m.insert((*k).into(), (*v).into());
    }
    if let Some(ctx) = context::current() {
        insert_request_ids(&mut m, &ctx);
    }
    Value::Object(m)
}

/// The initiator of the current request: its caller, as Keystone's `build_audit_initiator`
/// (with the user's name added); `None` outside a request or before authentication.
pub fn caller_initiator() -> Option<Value> {
    let ctx = context::current()?;
    Some(user_initiator(ctx.caller()?))
}

/// `user` as the initiator of the current request (a login: the user is known, not yet
/// authenticated), from where the request came.
pub fn user_initiator(user: &User) -> Value {
    user_resource(user, context::current().as_deref())
}

/// `user` as a CADF resource; with `from`, the request's host and ids (only when the user is
/// the one who made the request).
fn user_resource(user: &User, from: Option<&RequestContext>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), resource_uuid(&user.id).into());
    m.insert("typeURI".into(), ACCOUNT_USER.into());
    if let Some(ctx) = from {
        m.insert("host".into(), host(ctx));
        insert_request_ids(&mut m, ctx);
    }
    m.insert("user_id".into(), user.id.clone().into());
    if let Some(p) = &user.project_id {
        m.insert("project_id".into(), p.clone().into());
    }
    if let Some(d) = &user.domain_id {
        m.insert("domain_id".into(), d.clone().into());
    }
    m.insert("name".into(), user.name.clone().into());
    m.insert("username".into(), user.name.clone().into());
    Value::Object(m)
}

/// A login naming a user that does not exist: the name and domain (or the id) asked for.
pub fn unknown_user_initiator(asked: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), cadf_id().into());
    m.insert("typeURI".into(), ACCOUNT_USER.into());
    if let Some(ctx) = context::current() {
        m.insert("host".into(), host(&ctx));
        insert_request_ids(&mut m, &ctx);
    }
    for (k, v) in asked {
        m.insert((*k).into(), (*v).into());
    }
    Value::Object(m)
}

/// The parts of one CADF event.
struct Event<'a> {
    action: &'a str,
    outcome: Outcome,
    initiator: Option<Value>,
    target: Value,
    observer: Option<&'a str>,
    reason: Option<&'a Reason>,
    extra: Vec<(&'a str, Value)>,
}

impl Event<'_> {
    fn payload(self) -> Value {
        let mut m = Map::new();
        m.insert("typeURI".into(), EVENT_TYPE_URI.into());
        m.insert("eventType".into(), "activity".into());
        m.insert("id".into(), cadf_id().into());
        m.insert(
            "eventTime".into(),
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6f+0000")
                .to_string()
                .into(),
        );
        m.insert("action".into(), self.action.into());
        m.insert("outcome".into(), self.outcome.as_str().into());
        // Without an identity service in the catalog pycadf makes up an id.
        let observer = self.observer.map_or_else(cadf_id, str::to_string);
        m.insert(
            "observer".into(),
            json!({"id": observer, "typeURI": SERVICE_SECURITY}),
        );
        if let Some(i) = self.initiator {
            m.insert("initiator".into(), i);
        }
        m.insert("target".into(), self.target);
        if let Some(r) = self.reason {
            m.insert(
                "reason".into(),
                json!({"reasonType": r.message, "reasonCode": r.code.to_string()}),
            );
        }
        for (k, v) in self.extra {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }
}

fn random_user_target() -> Value {
    json!({"id": cadf_id(), "typeURI": ACCOUNT_USER})
}

/// `identity.<resource_type>.<operation>` (`created`, `updated`, `deleted`, `disabled`): a
/// resource written, by the caller of the current request. `observer` is the identity
/// service's id in the catalog.
pub fn resource(
    n: &Notifier,
    operation: &str,
    resource_type: &str,
    id: &str,
    observer: Option<&str>,
) {
    let event_type = format!("identity.{resource_type}.{operation}");
    if !n.wants(&event_type) {
        return;
    }
    let payload = match n.format() {
        NotificationFormat::Basic => basic(id, &[]),
        NotificationFormat::Cadf => Event {
            action: &format!("{operation}.{resource_type}"),
            outcome: Outcome::Success,
            initiator: caller_initiator(),
            target: json!({"id": id, "typeURI": target_type_uri(resource_type)}),
            observer,
            reason: None,
            extra: vec![("resource_info", id.into())],
        }
        .payload(),
    };
    n.info(&event_type, payload);
}

/// A user added to or removed from a group: `identity.group.updated` (the `basic` form names
/// the user as the actor, as Keystone's does).
pub fn membership(
    n: &Notifier,
    added: bool,
    group_id: &str,
    user_id: &str,
    observer: Option<&str>,
) {
    let event_type = "identity.group.updated";
    if !n.wants(event_type) {
        return;
    }
    if n.format() == NotificationFormat::Basic {
        let op = if added { "added" } else { "removed" };
        let more = [
            ("actor_id", user_id),
            ("actor_type", "user"),
            ("actor_operation", op),
        ];
        n.info(event_type, basic(group_id, &more));
        return;
    }
    resource(n, "updated", "group", group_id, observer);
}

/// Who and where a role assignment names.
#[derive(Debug, Clone)]
pub struct Assignment<'a> {
    /// The role.
    pub role_id: &'a str,
    /// `("user", id)` or `("group", id)`.
    pub actor: (&'a str, &'a str),
    /// `("project", id)` or `("domain", id)`; `None` for system assignments.
    pub target: Option<(&'a str, &'a str)>,
    /// `inherited_to_projects`.
    pub inherited: bool,
}

/// `identity.role_assignment.created|deleted`. Keystone sends these as CADF events whatever
/// `notification_format` says.
pub fn role_assignment(n: &Notifier, created: bool, a: &Assignment<'_>, observer: Option<&str>) {
    let op = if created { "created" } else { "deleted" };
    let event_type = format!("identity.role_assignment.{op}");
    if !n.wants(&event_type) {
        return;
    }
    let mut extra = Vec::new();
    if let Some((kind, id)) = a.target {
        extra.push((kind, Value::from(id)));
    }
    extra.push((a.actor.0, a.actor.1.into()));
    extra.push(("inherited_to_projects", a.inherited.into()));
    extra.push(("role", a.role_id.into()));
    let payload = Event {
        action: &format!("{op}.role_assignment"),
        outcome: Outcome::Success,
        initiator: caller_initiator(),
        target: random_user_target(),
        observer,
        reason: None,
        extra,
    }
    .payload();
    n.info(&event_type, payload);
}

/// `identity.authenticate`: a password login that succeeded or failed. Opted out as
/// `identity.authenticate.success|failure` (Keystone's default opts successes out). A failure
/// for a wrong password may carry its partial hash (`[security_compliance]
/// report_invalid_password_hash`), as Keystone attaches it.
pub fn authenticate(
    n: &Notifier,
    outcome: Outcome,
    initiator: Value,
    reason: Option<&Reason>,
    partial_password_hash: Option<&str>,
    observer: Option<&str>,
) {
    if !n.wants(&format!("identity.authenticate.{}", outcome.as_str())) {
        return;
    }
    let payload = Event {
        action: "authenticate",
        outcome,
        initiator: Some(initiator),
        target: random_user_target(),
        observer,
        reason,
        extra: partial_password_hash
            .map(|h| {
                (
                    "attachments",
                    json!([{"typeURI": "mime:text/plain", "content": h, "name": "partial_password_hash"}]),
                )
            })
            .into_iter()
            .collect(),
    }
    .payload();
    n.info("identity.authenticate", payload);
}

/// A service user acting for a user (Baton's events): the actor as a CADF resource.
pub fn actor(id: &str, name: &str) -> Value {
    json!({"id": resource_uuid(id), "typeURI": ACCOUNT_USER, "user_id": id, "name": name})
}

/// [`actor`] when the actor made the current request: with its host and request ids.
pub fn requesting_actor(id: &str, name: &str) -> Value {
    let mut a = actor(id, name);
    if let (Some(ctx), Value::Object(m)) = (context::current(), &mut a) {
        m.insert("host".into(), host(&ctx));
        insert_request_ids(m, &ctx);
    }
    a
}

/// A receiving service: its service type or service user.
pub fn service_target(id: &str, name: &str) -> Value {
    json!({"id": id, "typeURI": SERVICE, "name": name})
}

/// What Baton's delegation events say beyond the CADF core.
#[derive(Debug, Clone)]
pub struct Delegation<'a> {
    /// `identity.<what>.<operation>` parts: e.g. `continuation` / `issued`.
    pub what: &'a str,
    /// The operation: `issued`, `renewed`, `refused`, `accepted`.
    pub operation: &'a str,
    /// The user acted for.
    pub user: User,
    /// The service user acting, when known.
    pub actor: Option<Value>,
    /// The receiving service(s).
    pub target: Value,
    /// Why it was refused.
    pub reason: Option<Reason>,
    /// More facts (`audience`, `operation_expires_at`, `audit_id`...).
    pub extra: Vec<(&'a str, Value)>,
}

/// Baton's events for a service acting for a user: `identity.continuation.issued|renewed|
/// refused` and `identity.expired_token.accepted`; the initiator is the user, `actor` the
/// service user and the target the receiving service.
pub fn delegation(n: &Notifier, d: Delegation<'_>, observer: Option<&str>) {
    let event_type = format!("identity.{}.{}", d.what, d.operation);
    if !n.wants(&event_type) {
        return;
    }
    let outcome = if d.reason.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut extra = Vec::new();
    if let Some(a) = d.actor {
        extra.push(("actor", a));
    }
    extra.extend(d.extra);
    let payload = Event {
        action: &format!("{}.{}", d.operation, d.what),
        outcome,
        // The user did not make this request (a service did): no host of theirs.
        initiator: Some(user_resource(&d.user, None)),
        target: d.target,
        observer,
        reason: d.reason.as_ref(),
        extra,
    }
    .payload();
    n.info(&event_type, payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uuids_match_keystones() {
        // Keystone: utils.resource_uuid('admin') (uuid5 in its namespace, hex).
        assert_eq!(
            resource_uuid("0e5c5b2d-5f5e-4c2b-9a50-fbd4f3cbf28c"),
            "0e5c5b2d-5f5e-4c2b-9a50-fbd4f3cbf28c"
        );
        assert_eq!(resource_uuid("admin"), "db03747ae9c554d097b5e8c328115940");
        assert_eq!(resource_uuid("admin"), resource_uuid("admin"));
        assert!(uuid::Uuid::parse_str(&cadf_id()).is_ok());
    }

    #[test]
    fn targets_are_typed_as_keystone_types_them() {
        assert_eq!(target_type_uri("project"), "data/security/project");
        assert_eq!(target_type_uri("user"), "data/security/account/user");
        assert_eq!(target_type_uri("application_credential"), "unknown");
    }
}
