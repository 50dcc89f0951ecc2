//! The scenarios: what a user starts, what should happen in each [`Mode`], and the runner that
//! drives one run over real HTTP and judges it.
//!
//! | scenario | no `[service_user]` | with the `service` role | without it (roles required) |
//! |---|---|---|---|
//! | live migration, boot from volume, snapshot | fails at the first user-token call after expiry: 401 `user_token_expired` | completes | fails at the first call: 401 `service_token_missing_role` |
//! | CVE-2023-2088 detach | user's own delete: 409; compute's: 409 | user's: 409; compute's: completes | user's: 409; compute's: 401 `service_token_missing_role` |

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use baton_client::AccessInfo;
use chrono::Utc;
use reqwest::Method;
use serde_json::json;

use crate::cloud::{Cloud, Mode};
use crate::compute::{request_id_of, CallAuth, Task, TaskState};
use crate::progress::BarHandle;
use crate::timeline::{describe_record, Entry, Timeline, TokenKind, TokenUse};
use baton_authtoken::RequestRecord;

/// An operation of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Live migration with shared storage: long memory copy, then port and volume moves.
    LiveMigrationShared,
    /// Block live migration: the disk is copied too, so it runs longer.
    LiveMigrationBlock,
    /// A snapshot (`createImage`): the upload to the image service comes last.
    Snapshot,
    /// Boot from volume: reserve, build, network, attach, spawn.
    BootFromVolume,
    /// CVE-2023-2088: deleting an attachment an instance uses.
    DetachCve,
}

impl Scenario {
    /// Every scenario, in the order the demo runs them.
    pub const ALL: [Scenario; 5] = [
        Scenario::LiveMigrationShared,
        Scenario::LiveMigrationBlock,
        Scenario::Snapshot,
        Scenario::BootFromVolume,
        Scenario::DetachCve,
    ];

    /// The long-running ones (everything but the CVE case).
    pub const LONG: [Scenario; 4] = [
        Scenario::LiveMigrationShared,
        Scenario::LiveMigrationBlock,
        Scenario::Snapshot,
        Scenario::BootFromVolume,
    ];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::LiveMigrationShared => "live migration (shared storage)",
            Scenario::LiveMigrationBlock => "live migration (block)",
            Scenario::Snapshot => "snapshot (createImage)",
            Scenario::BootFromVolume => "boot from volume",
            Scenario::DetachCve => "CVE-2023-2088 detach",
        }
    }

    /// The name in file names.
    pub fn slug(self) -> &'static str {
        match self {
            Scenario::LiveMigrationShared => "live-migration-shared",
            Scenario::LiveMigrationBlock => "live-migration-block",
            Scenario::Snapshot => "snapshot",
            Scenario::BootFromVolume => "boot-from-volume",
            Scenario::DetachCve => "cve-2023-2088",
        }
    }

    /// What the scenario should end in for `mode`.
    pub fn expected(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Scenario::DetachCve, Mode::NoServiceUser) => {
                "user's delete 409; compute's delete 409 (no service token)"
            }
            (Scenario::DetachCve, Mode::ServiceUser | Mode::Continuation) => {
                "user's delete 409; compute's completes"
            }
            (Scenario::DetachCve, Mode::ServiceUserWithoutRole) => {
                "user's delete 409; compute's 401 service_token_missing_role"
            }
            (_, Mode::NoServiceUser) => "fails after expiry: 401 user_token_expired",
            (_, Mode::ServiceUser) => {
                "completes (fails after expiry: 401 user_token_invalid with allow_expired_window = 0)"
            }
            (_, Mode::Continuation) => "completes, with allow_expired_window = 0 too",
            (_, Mode::ServiceUserWithoutRole) => "refused: 401 service_token_missing_role",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The operation run.
    pub scenario: Scenario,
    /// How compute sent service tokens.
    pub mode: Mode,
    /// `completed` or `failed`.
    pub result: String,
    /// Where and why, in one line.
    pub detail: String,
    /// The outcome is what the scenario expects for this mode.
    pub as_expected: bool,
    /// Why not, when not.
    pub mismatch: Option<String>,
    /// Every call, with the tokens it carried and what it got.
    pub timeline: Timeline,
    /// The compute task, if one was started.
    pub task: Option<Task>,
}

fn lane(service_type: &str) -> &str {
    match service_type {
        "volumev3" => "volume",
        other => other,
    }
}

fn user_use(token: &AccessInfo, at: chrono::DateTime<Utc>) -> TokenUse {
    TokenUse {
        kind: TokenKind::User,
        fingerprint: token.token().fingerprint(),
        expired: token.expires_at() <= at,
    }
}

fn entries_of(task: &Task) -> Vec<Entry> {
    task.calls
        .iter()
        .map(|c| {
            let mut tokens = Vec::new();
            if let Some(u) = &c.user_token {
                let continuation = c.auth == CallAuth::Continuation;
                tokens.push(TokenUse {
                    kind: if continuation {
                        TokenKind::Continuation
                    } else {
                        TokenKind::User
                    },
                    fingerprint: u.clone(),
                    // A continuation token is never sent expired.
                    expired: c.user_token_expired && !continuation,
                });
            }
            if let Some(s) = &c.service_token {
                tokens.push(TokenUse {
                    kind: TokenKind::Service,
                    fingerprint: s.clone(),
                    expired: false,
                });
            }
            if let Some(o) = &c.own_token {
                tokens.push(TokenUse {
                    kind: TokenKind::Own,
                    fingerprint: o.clone(),
                    expired: false,
                });
            }
            Entry {
                at: c.at,
                duration_ms: c.duration_ms,
                from: "compute".into(),
                to: lane(&c.service_type).into(),
                method: c.method.clone(),
                path: c.path.clone(),
                step: c.step.clone(),
                tokens,
                status: c.status,
                reason: c.reason.clone(),
                message: c.message.clone(),
                recorded: None,
            }
        })
        .collect()
}

/// Waits for a compute task to end, feeding the progress bar.
pub async fn wait_task(
    cloud: &Cloud,
    request_id: &str,
    bar: Option<&BarHandle>,
    limit: Duration,
) -> anyhow::Result<Task> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let task = cloud
            .compute
            .task(request_id)
            .ok_or_else(|| anyhow::anyhow!("task {request_id} does not exist"))?;
        if let Some(b) = bar {
            b.set(task.progress, &task.step);
        }
        if task.state != TaskState::Running {
            return Ok(task);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "task {request_id} still running after {limit:?} (step {})",
                task.step
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `scenario` once against compute as it is configured now (`mode` names that
/// configuration for the report), with a new token for alice.
pub async fn run(
    cloud: &Cloud,
    scenario: Scenario,
    mode: Mode,
    bar: Option<&BarHandle>,
) -> anyhow::Result<RunReport> {
    let token = cloud.user_token().await?;
    run_with_token(cloud, scenario, mode, bar, token).await
}

/// [`run`] with a user token obtained beforehand (the benchmark reuses one, so that the
/// receivers' caches can be warm).
pub async fn run_with_token(
    cloud: &Cloud,
    scenario: Scenario,
    mode: Mode,
    bar: Option<&BarHandle>,
    token: Arc<AccessInfo>,
) -> anyhow::Result<RunReport> {
    let setup = match scenario {
        Scenario::BootFromVolume => Setup::Volume(cloud.seed_volume("boot-volume")),
        _ => Setup::Server(cloud.seed_server(scenario.slug())),
    };
    let start = Utc::now();
    let mut entries = Vec::new();
    let compute = format!("{}/v2.1", cloud.compute_url);

    // The CVE case begins with the user trying it directly.
    let mut direct: Option<(u16, String)> = None;
    if scenario == Scenario::DetachCve {
        let Setup::Server(f) = &setup else {
            unreachable!()
        };
        let (entry, answer) = detach_directly(cloud, &token, f).await?;
        entries.push(entry);
        direct = Some(answer);
    }

    let (method, path, body, step) = user_request(cloud, &setup, scenario);
    let at = Utc::now();
    let (status, headers, answer) = cloud
        .call(&token, method.clone(), &format!("{compute}{path}"), body)
        .await?;
    entries.push(Entry {
        at,
        duration_ms: (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
        from: "user".into(),
        to: "compute".into(),
        method: method.to_string(),
        path: format!("/v2.1{path}"),
        step: step.into(),
        tokens: vec![user_use(&token, at)],
        status,
        reason: reason_of(&headers),
        message: crate::common::error_message(&answer),
        recorded: None,
    });
    let task = match (status, request_id_of(&headers)) {
        (202, Some(rid)) => {
            let limit = cloud.options.operation * 4 + Duration::from_secs(30);
            Some(wait_task(cloud, &rid, bar, limit).await?)
        }
        _ => None,
    };
    entries.extend(task.iter().flat_map(entries_of));
    attach_records(&mut entries, &cloud.records.since(start));
    let end = Utc::now();
    let (result, detail) = describe(&task, status, direct.as_ref(), &token, start);
    let judged = (mode, cloud.options.allow_expired_window == Some(0));
    let mismatch = judge(scenario, judged, &task, status, direct.as_ref(), &token);
    if let Some(b) = bar {
        b.finish(&finished_text(&result, mismatch.is_none()));
    }
    let detail = short_ids(&detail);
    let outcome = format!("{result}: {detail}");
    Ok(RunReport {
        scenario,
        mode,
        result,
        detail,
        as_expected: mismatch.is_none(),
        mismatch,
        timeline: Timeline {
            title: format!("{} — [service_user] {}", scenario.label(), mode.label()),
            start,
            end,
            user_token: token.token().fingerprint(),
            user_token_expires_at: token.expires_at(),
            entries,
            outcome,
            as_expected: false,
            marks: audit_marks(cloud, &token),
        },
        task,
    })
    .map(|mut r| {
        r.timeline.as_expected = r.as_expected;
        r
    })
}

/// Each call's audit record from its callee's auth_token middleware: the first record of
/// that service for the same method, path and `X-Auth-Token`, made after the call was sent.
fn attach_records(entries: &mut [Entry], records: &[(&'static str, RequestRecord)]) {
    let mut used = vec![false; records.len()];
    for e in entries.iter_mut() {
        let first = e.tokens.first().map(|t| t.fingerprint.as_str());
        let path = e.path.split('?').next().unwrap_or(&e.path);
        let found = (0..records.len()).find(|&i| {
            let (lane, r) = &records[i];
            !used[i]
                && *lane == e.to
                && r.method == e.method
                && r.path == path
                && r.user_token.as_deref() == first
                && r.at >= e.at
        });
        if let Some(i) = found {
            used[i] = true;
            let (lane, r) = &records[i];
            e.recorded = Some(describe_record(lane, r));
        }
    }
}

/// What the identity server recorded for `token`'s audit chain: continuation tokens issued
/// and renewed, expired tokens accepted for a service.
fn audit_marks(cloud: &Cloud, token: &AccessInfo) -> Vec<(chrono::DateTime<Utc>, String)> {
    token
        .audit_ids()
        .last()
        .map(|chain| cloud.identity.stats.marks_for(chain))
        .unwrap_or_default()
}

/// What a scenario's progress bar says at the end.
fn finished_text(result: &str, as_expected: bool) -> String {
    format!(
        "{result}{}",
        if as_expected {
            ""
        } else {
            "  (NOT as expected)"
        }
    )
}

/// The CVE-2023-2088 case's first step: the user deletes the attachment at Cinder directly.
/// Gives the timeline entry, and the status and message of the answer.
async fn detach_directly(
    cloud: &Cloud,
    token: &Arc<AccessInfo>,
    f: &crate::cloud::Fixture,
) -> anyhow::Result<(Entry, (u16, String))> {
    let at = Utc::now();
    let path = format!("/v3/attachments/{}", f.attachment_id);
    let (status, headers, body) = cloud
        .call(
            token,
            Method::DELETE,
            &format!("{}{path}", cloud.volume_url),
            None,
        )
        .await?;
    let message = crate::common::error_message(&body).unwrap_or_default();
    let entry = Entry {
        at,
        duration_ms: (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
        from: "user".into(),
        to: "volume".into(),
        method: "DELETE".into(),
        path,
        step: "user deletes the attachment directly".into(),
        tokens: vec![user_use(token, at)],
        status,
        reason: reason_of(&headers),
        message: Some(message.clone()),
        recorded: None,
    };
    Ok((entry, (status, message)))
}

/// The user's request to compute that starts the scenario: method, path under `/v2.1`, body
/// and how the timeline names the step.
fn user_request(
    cloud: &Cloud,
    setup: &Setup,
    scenario: Scenario,
) -> (Method, String, Option<serde_json::Value>, &'static str) {
    match (setup, scenario) {
        (Setup::Volume(vol), _) => (
            Method::POST,
            "/servers".to_string(),
            Some(json!({"server": {
            "name": "bfv", "networks": [{"uuid": cloud.ids.network}],
            "block_device_mapping_v2": [{"uuid": vol, "source_type": "volume",
                "destination_type": "volume", "boot_index": 0}]}})),
            "user boots from volume",
        ),
        (Setup::Server(f), Scenario::LiveMigrationShared | Scenario::LiveMigrationBlock) => (
            Method::POST,
            format!("/servers/{}/action", f.server_id),
            Some(json!({"os-migrateLive": {"host": null,
            "block_migration": scenario == Scenario::LiveMigrationBlock}})),
            "user asks for a live migration",
        ),
        (Setup::Server(f), Scenario::Snapshot) => (
            Method::POST,
            format!("/servers/{}/action", f.server_id),
            Some(json!({"createImage": {"name": "demo-snapshot"}})),
            "user asks for a snapshot",
        ),
        (Setup::Server(f), _) => (
            Method::DELETE,
            format!(
                "/servers/{}/os-volume_attachments/{}",
                f.server_id, f.volume_id
            ),
            None,
            "user asks compute to detach",
        ),
    }
}

enum Setup {
    Server(crate::cloud::Fixture),
    Volume(String),
}

fn reason_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(baton_client::AUTH_FAILURE_REASON_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Seconds from the start of the run (just after the user got the token).
fn offset(start: chrono::DateTime<Utc>, at: chrono::DateTime<Utc>) -> f64 {
    (at - start).num_milliseconds() as f64 / 1000.0
}

/// `result` and a one-line detail.
fn describe(
    task: &Option<Task>,
    status: u16,
    direct: Option<&(u16, String)>,
    token: &AccessInfo,
    start: chrono::DateTime<Utc>,
) -> (String, String) {
    let prefix = match direct {
        Some((s, _)) => format!("user's own DELETE -> {s}; compute's: "),
        None => String::new(),
    };
    let expiry = offset(start, token.expires_at());
    match task {
        None => (
            "failed".into(),
            format!("{prefix}compute answered {status}"),
        ),
        Some(t) if t.state == TaskState::Completed => {
            let late = t
                .calls
                .iter()
                .filter(|c| c.user_token_expired && c.auth == CallAuth::UserAndService)
                .count();
            let continued = t
                .calls
                .iter()
                .filter(|c| c.user_token_expired && c.auth == CallAuth::Continuation)
                .count();
            let detail = if late > 0 {
                format!(
                    "{prefix}{} calls, {late} with the expired user token + service token (token expired at +{expiry:.1}s)",
                    t.calls.len()
                )
            } else if continued > 0 {
                format!(
                    "{prefix}{} calls, {continued} after the user token expired (+{expiry:.1}s) with the operation's continuation token",
                    t.calls.len()
                )
            } else {
                format!(
                    "{prefix}{} call{}",
                    t.calls.len(),
                    if t.calls.len() == 1 { "" } else { "s" }
                )
            };
            ("completed".into(), detail)
        }
        Some(t) => {
            let e = t.error.clone();
            let detail = match e {
                Some(e) => {
                    let call = t.calls.last();
                    let when = call
                        .map(|c| format!(" at +{:.1}s", offset(start, c.at)))
                        .unwrap_or_default();
                    format!(
                        "{prefix}{}: {} -> {}{}{when} (user token expired at +{expiry:.1}s)",
                        e.step,
                        e.call.unwrap_or_default(),
                        e.status,
                        e.reason
                            .map(|r| format!(" {r}"))
                            .unwrap_or_else(|| format!(" {:?}", e.message)),
                    )
                }
                None => format!("{prefix}failed without a reason"),
            };
            ("failed".into(), detail)
        }
    }
}

/// `None` when the run went as the scenario expects in `mode`, else why not.
fn is_user_reason(reason: &str) -> bool {
    reason.starts_with("user_token_")
}

/// A run that should complete: it did, and (but for the detach) some call as the user went out
/// after the user token expired, with the service token or the continuation token.
fn judge_completed(scenario: Scenario, mode: Mode, task: &Task) -> Option<String> {
    if task.state != TaskState::Completed {
        return Some(format!("expected completion, got {:?}", task.error));
    }
    let late_auth = if mode == Mode::Continuation {
        CallAuth::Continuation
    } else {
        CallAuth::UserAndService
    };
    let late = task
        .calls
        .iter()
        .any(|c| c.user_token_expired && c.auth == late_auth);
    if scenario != Scenario::DetachCve && !late {
        return Some(
            "no call was made after the user token expired: the operation is too short for the token lifetime".into(),
        );
    }
    None
}

/// Why the run did not end as `scenario` expects under `mode` (and `allow_expired_window = 0`
/// when the flag is set), or `None`.
fn judge(
    scenario: Scenario,
    (mode, window_zero): (Mode, bool),
    task: &Option<Task>,
    status: u16,
    direct: Option<&(u16, String)>,
    token: &AccessInfo,
) -> Option<String> {
    if scenario == Scenario::DetachCve {
        match direct {
            Some((409, m)) if m.contains("using the Compute API") => {}
            other => return Some(format!("the user's own delete gave {other:?}, not 409")),
        }
    }
    let Some(task) = task else {
        return Some(format!("compute answered {status}, not 202"));
    };
    let error = task.error.as_ref();
    match (scenario, mode) {
        // No window: the expired user token is refused even with the service token.
        (_, Mode::ServiceUser) if window_zero && scenario != Scenario::DetachCve => match error {
            Some(e) if e.status == 401 && e.reason.as_deref().is_some_and(is_user_reason) => None,
            other => Some(format!(
                "expected 401 for the expired user token (allow_expired_window = 0), got {other:?}"
            )),
        },
        (_, Mode::ServiceUser | Mode::Continuation) => judge_completed(scenario, mode, task),
        (_, Mode::ServiceUserWithoutRole) => match error {
            Some(e)
                if e.status == 401
                    && e.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("service_token_missing_role")) =>
            {
                None
            }
            other => Some(format!(
                "expected 401 service_token_missing_role, got {other:?}"
            )),
        },
        (Scenario::DetachCve, Mode::NoServiceUser) => match error {
            Some(e) if e.status == 409 => None,
            other => Some(format!(
                "expected compute's delete to get 409, got {other:?}"
            )),
        },
        (_, Mode::NoServiceUser) => {
            let Some(e) = error else {
                return Some(
                    "expected a failure after the user token expired; it completed".into(),
                );
            };
            // With no allow_expired_window the layer cannot tell an expired token from an
            // invalid one (its diagnosis asks with allow_expired).
            let reason_ok = match e.reason.as_deref() {
                Some("user_token_expired") => true,
                Some("user_token_invalid") => window_zero,
                _ => false,
            };
            if e.status != 401 || !reason_ok {
                return Some(format!("expected 401 user_token_expired, got {e:?}"));
            }
            // The failed call must be the first user-token call after expiry.
            let user_calls: Vec<_> = task
                .calls
                .iter()
                .filter(|c| c.auth != CallAuth::Own)
                .collect();
            let Some((last, before)) = user_calls.split_last() else {
                return Some("no user call was recorded".into());
            };
            if last.at < token.expires_at() {
                return Some("the failing call was sent before the user token expired".into());
            }
            if let Some(c) = before
                .iter()
                .find(|c| c.user_token_expired || c.status >= 400)
            {
                return Some(format!(
                    "an earlier call ({} {}) was already after expiry or failed",
                    c.method, c.path
                ));
            }
            None
        }
    }
}

/// UUIDs cut to their first 8 digits (`4a5775c2…`), so that a table row fits a terminal.
pub fn short_ids(s: &str) -> String {
    let b = s.as_bytes();
    let is_uuid = |i: usize| -> bool {
        b.len() >= i + 36
            && (0..36).all(|k| match k {
                8 | 13 | 18 | 23 => b[i + k] == b'-',
                _ => b[i + k].is_ascii_hexdigit(),
            })
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if is_uuid(i) {
            out.push_str(&s[i..i + 8]);
            out.push('…');
            i += 36;
        } else {
            let c = s[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::short_ids;

    #[test]
    fn uuids_are_shortened() {
        assert_eq!(
            short_ids("DELETE /v3/attachments/4a3a40b0-183e-4bbf-ac9d-03f718a65b3c -> 409 é"),
            "DELETE /v3/attachments/4a3a40b0… -> 409 é"
        );
        assert_eq!(short_ids("no ids"), "no ids");
    }
}
