//! Live checks of a `[service_user]` that logs in with an application credential
//! (`auth_type = v3applicationcredential`): its expiry against the longest operation, and its
//! access rules against the receivers' service types. (Its roles are checked with every
//! service user's, in `check_roles`; only the fix differs.)

use std::time::Duration;

use baton_client::discover::v3_url_from_path;
use chrono::{NaiveDateTime, Utc};

use super::{section_loc, LiveReceiver, LiveSender, Run};
use crate::report::{Code, Finding};
use crate::retention::human;

/// Below this much time left, an expiring credential is reported even when every operation
/// would still finish: someone has to make the next one.
const RENEW_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// The credential the sender's token came from, if it came from one: (id, name).
pub(super) fn credential(s: &LiveSender<'_>) -> Option<(String, String)> {
    let c = s.access.body().application_credential.as_ref()?;
    Some((c.id.clone(), c.name.clone()))
}

/// The fix when an application credential lacks a role: its roles are fixed at creation.
pub(super) fn new_credential_fix(section: &str, role: &str) -> String {
    format!(
        "an application credential's roles cannot change: as the service user, run openstack application credential create --role {role} <name>, then set application_credential_id and application_credential_secret in [{section}]"
    )
}

/// Both checks, for a sender whose token came from an application credential.
pub(super) async fn check(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    receivers: &[LiveReceiver<'_>],
    longest_operation: Option<Duration>,
) {
    let Some((id, name)) = credential(s) else {
        return;
    };
    check_expiry(run, s, &id, &name, longest_operation).await;
    check_access_rules(run, s, &name, receivers);
}

/// `expires_at` of the credential, read with its own token (the owner may read it).
async fn expires_at(s: &LiveSender<'_>, id: &str) -> Option<NaiveDateTime> {
    let v3 = v3_url_from_path(&s.auth.auth_url);
    let path = format!("users/{}/application_credentials/{id}", s.access.user_id());
    let doc: serde_json::Value = s.session.get(v3, &path).send_json().await.ok()?;
    let text = doc["application_credential"]["expires_at"].as_str()?;
    // Keystone's isotime: `2030-01-02T03:04:05.000000Z`.
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()
}

async fn check_expiry(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    id: &str,
    name: &str,
    longest_operation: Option<Duration>,
) {
    let Some(end) = expires_at(s, id).await else {
        return;
    };
    let left = (end - Utc::now().naive_utc())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let loc = section_loc(
        &s.input.file,
        &s.auth.section,
        Some("application_credential_id"),
    );
    let what = format!(
        "the [{}] application credential {name} expires at {end} UTC, in {}",
        s.auth.section,
        human(left.as_secs())
    );
    let fix = "create a new application credential for the service user (without --expiration, or a later one) and set it in the configuration before this one expires";
    match longest_operation {
        Some(op) if left < op => run.report.push(
            Finding::error(
                Code::LiveAppCredExpiresSoon,
                loc,
                format!(
                    "{what}, before an operation started now would end (--longest-operation {})",
                    human(op.as_secs())
                ),
            )
            .impact("once it expires the service user cannot get service tokens: operations still running fail at their next call with an expired user token")
            .fix(fix),
        ),
        _ if left < RENEW_WARNING => run.report.push(
            Finding::warning(Code::LiveAppCredExpiresSoon, loc, what)
                .impact("when it expires, the service stops sending service tokens")
                .fix(fix),
        ),
        _ => {}
    }
}

/// Each receiver with a `service_type` whose type no rule names. Receivers apply access rules
/// to the user token only, so this matters where the service user's own token is the
/// `X-Auth-Token` (its own calls), not for the service tokens it sends.
fn check_access_rules(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    name: &str,
    receivers: &[LiveReceiver<'_>],
) {
    let Some(rules) = s
        .access
        .body()
        .application_credential
        .as_ref()
        .and_then(|c| c.access_rules.as_ref())
    else {
        return;
    };
    for r in receivers {
        let Some(service_type) = r
            .input
            .config
            .as_ref()
            .and_then(|c| c.service_type.as_deref())
        else {
            continue;
        };
        if rules
            .iter()
            .any(|rule| rule.service.as_deref() == Some(service_type))
        {
            continue;
        }
        run.report.push(
            Finding::warning(
                Code::LiveAppCredAccessRules,
                section_loc(&s.input.file, &s.auth.section, Some("application_credential_id")),
                format!(
                    "the [{}] application credential {name} has access rules, none for {service_type} ({}): the service user's own calls there are refused (401 access_rule_denied); service tokens it sends are not checked against them",
                    s.auth.section, r.input.file
                ),
            )
            .fix(format!(
                "give the service user a credential without access rules, or one with a rule for each call it makes to {service_type} ({{\"service\": \"{service_type}\", \"method\": ..., \"path\": ...}})"
            )),
        );
    }
}
