//! End-to-end tests of the reference services: real HTTP between the identity server, compute,
//! volume, image and network on loopback, tokens of 2 s, operations of 3 s.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

use std::sync::Arc;
use std::time::Duration;

use baton_services::cloud::{Cloud, CloudOptions, Mode};
use baton_services::compute::{CallAuth, TaskState};
use baton_services::scenario::{self, Scenario};
use baton_services::{run_demo, DemoOptions, Output};
use reqwest::Method;
use serde_json::json;

const EXPIRATION: u32 = 2;

async fn cloud(dir: &tempfile::TempDir, mode: Mode) -> Cloud {
    let mut opts = CloudOptions::new(dir.path().join("run"), EXPIRATION);
    opts.operation = Duration::from_millis(3000);
    Cloud::start(opts, mode).await.expect("deployment starts")
}

/// Runs one scenario in one mode in a fresh deployment and checks the scenario's verdict plus
/// the essentials directly.
async fn check(scenario: Scenario, mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = cloud(&dir, mode).await;
    let report = scenario::run(&cloud, scenario, mode, None)
        .await
        .expect("scenario runs");
    let text = report.timeline.to_text();
    assert!(
        report.as_expected,
        "{scenario} / {mode}: {:?}\n{text}",
        report.mismatch
    );
    let task = report
        .task
        .as_ref()
        .expect("compute accepted the operation");
    if mode == Mode::ServiceUser {
        // Compute's [service_user] logs in with nova's application credential.
        let conf = cloud.nova_conf(mode);
        assert!(
            conf.contains("auth_type = v3applicationcredential")
                && conf.contains(&format!(
                    "application_credential_id = {}",
                    cloud.ids.nova_app_cred
                )),
            "{conf}"
        );
    }
    match (scenario, mode) {
        (Scenario::DetachCve, Mode::NoServiceUser) => {
            let e = task.error.as_ref().expect("refused");
            assert_eq!(e.status, 409, "{text}");
            assert!(e.message.contains("using the Compute API"), "{text}");
        }
        (_, Mode::NoServiceUser) => {
            let e = task.error.as_ref().expect("failed");
            assert_eq!(e.status, 401, "{text}");
            assert_eq!(e.reason.as_deref(), Some("user_token_expired"), "{text}");
            let failed = task.calls.last().expect("calls");
            assert!(failed.user_token_expired, "{text}");
            assert!(
                task.calls[..task.calls.len() - 1]
                    .iter()
                    .all(|c| c.status < 400 && (c.auth == CallAuth::Own || !c.user_token_expired)),
                "{text}"
            );
            assert!(text.contains("401 user_token_expired"), "{text}");
            assert!(text.contains("refused (user_token_expired)"), "{text}");
        }
        (_, Mode::ServiceUser) => {
            assert_eq!(task.state, TaskState::Completed, "{text}");
            assert!(task.calls.iter().all(|c| c.status < 400), "{text}");
            if scenario != Scenario::DetachCve {
                assert!(
                    task.calls
                        .iter()
                        .any(|c| c.user_token_expired && c.service_token.is_some()),
                    "some call went out with the expired user token and a service token:\n{text}"
                );
                // The receivers judged the pair in one call; the identity server's audit event
                // for it is on the timeline.
                assert!(
                    text.contains("identity.expired_token.accepted (actor nova"),
                    "{text}"
                );
                // And the receiver's own audit record of such a call says so.
                assert!(text.contains("for nova, user token expired"), "{text}");
            }
            // Admin calls (Neutron bindings) carry compute's own token and no service token.
            for c in task.calls.iter().filter(|c| c.auth == CallAuth::Own) {
                assert!(
                    c.service_token.is_none() && c.user_token.is_none(),
                    "{text}"
                );
            }
        }
        (_, Mode::ServiceUserWithoutRole) => {
            let e = task.error.as_ref().expect("refused");
            assert_eq!(e.status, 401, "{text}");
            assert_eq!(
                e.reason.as_deref(),
                Some("service_token_missing_role"),
                "{text}"
            );
        }
        (_, Mode::Continuation) => {
            assert_eq!(task.state, TaskState::Completed, "{text}");
            // Every call as the user carries the operation's continuation token (never the
            // user's own, never expired) and nova's service token.
            let as_user: Vec<_> = task
                .calls
                .iter()
                .filter(|c| c.auth != CallAuth::Own)
                .collect();
            assert!(!as_user.is_empty(), "{text}");
            for c in &as_user {
                assert_eq!(c.auth, CallAuth::Continuation, "{text}");
                assert_ne!(c.user_token, Some(task.user_token.clone()), "{text}");
                assert!(c.service_token.is_some(), "{text}");
            }
            if scenario != Scenario::DetachCve {
                assert!(as_user.iter().any(|c| c.user_token_expired), "{text}");
            }
            // The identity server's audit events for the operation are on the timeline.
            assert!(
                text.contains("identity.continuation.issued (actor nova"),
                "{text}"
            );
            assert!(
                text.contains("alice through nova's continuation token, accepted"),
                "{text}"
            );
        }
    }
    // Every call of the timeline carries its callee's audit record.
    assert!(
        report.timeline.entries.iter().all(|e| e.recorded.is_some()),
        "{text}"
    );
    if scenario == Scenario::DetachCve {
        // The user's direct attempt was refused in every mode.
        let first = &report.timeline.entries[0];
        assert_eq!((first.from.as_str(), first.status), ("user", 409), "{text}");
    }
    cloud.stop().await;
}

macro_rules! four_ways {
    ($($name:ident => $scenario:expr),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn without_service_user() {
                    check($scenario, Mode::NoServiceUser).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn with_service_user() {
                    check($scenario, Mode::ServiceUser).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn with_service_user_lacking_role() {
                    check($scenario, Mode::ServiceUserWithoutRole).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn with_continuation_tokens() {
                    check($scenario, Mode::Continuation).await
                }
            }
        )*
    };
}

four_ways! {
    live_migration_shared => Scenario::LiveMigrationShared,
    live_migration_block => Scenario::LiveMigrationBlock,
    snapshot => Scenario::Snapshot,
    boot_from_volume => Scenario::BootFromVolume,
    cve_2023_2088_detach => Scenario::DetachCve,
}

/// The state the services end in after a completed live migration and snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_operations_leave_consistent_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = cloud(&dir, Mode::ServiceUser).await;
    let r = scenario::run(
        &cloud,
        Scenario::LiveMigrationShared,
        Mode::ServiceUser,
        None,
    )
    .await
    .expect("runs");
    let task = r.task.expect("task");
    let server = cloud.compute.server(&task.server_id).expect("server");
    assert_eq!(server.host, "compute-2");
    assert_eq!(server.status, "ACTIVE");
    let v = &server.volumes[0];
    let att = cloud
        .volume
        .attachment(&v.attachment_id)
        .expect("new attachment");
    assert_eq!(att.attach_status, "attached");
    assert_eq!(
        cloud.volume.volume(&v.volume_id).expect("volume").status,
        "in-use"
    );
    assert_eq!(
        cloud
            .volume
            .volume(&v.volume_id)
            .unwrap()
            .attachment_ids
            .len(),
        1,
        "the source attachment was deleted"
    );
    let port = cloud.network.port(&server.ports[0]).expect("port");
    assert_eq!(port.binding_host_id, "compute-2");

    let r = scenario::run(&cloud, Scenario::Snapshot, Mode::ServiceUser, None)
        .await
        .expect("runs");
    let image_id = r.task.and_then(|t| t.image_id).expect("image id");
    let image = cloud.image.image(&image_id).expect("image");
    assert_eq!(image.status, "active");
    assert_eq!(image.uploaded_by_service_request, Some(true));
    cloud.stop().await;
}

/// Follows a task through compute's HTTP task API, and reads why a failed one failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_api_shows_progress_and_failure_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = cloud(&dir, Mode::NoServiceUser).await;
    let f = cloud.seed_server("followed");
    let token = cloud.user_token().await.expect("token");
    let compute = format!("{}/v2.1", cloud.compute_url);
    let (status, headers, _) = cloud
        .call(
            &token,
            Method::POST,
            &format!("{compute}/servers/{}/action", f.server_id),
            Some(json!({"os-migrateLive": {"host": null, "block_migration": true}})),
        )
        .await
        .expect("POST");
    assert_eq!(status, 202);
    let rid = baton_services::compute::request_id_of(&headers).expect("request id");
    let mut seen_progress = Vec::new();
    let body = loop {
        // A fresh token each time, as a client re-authenticating would have.
        let t = cloud.user_token().await.expect("token");
        let (s, _, body) = cloud
            .call(&t, Method::GET, &format!("{compute}/tasks/{rid}"), None)
            .await
            .expect("GET task");
        assert_eq!(s, 200, "{body}");
        seen_progress.push(body["task"]["progress"].as_u64().unwrap_or(0));
        if body["task"]["state"] != "running" {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(body["task"]["state"], "failed", "{body}");
    assert_eq!(body["task"]["error"]["status"], 401, "{body}");
    assert_eq!(
        body["task"]["error"]["reason"], "user_token_expired",
        "{body}"
    );
    assert_eq!(
        body["task"]["error"]["step"], "post_live_migration",
        "{body}"
    );
    assert!(
        seen_progress.windows(2).all(|w| w[0] <= w[1])
            && seen_progress.iter().any(|p| *p > 10 && *p < 92),
        "progress was followed: {seen_progress:?}"
    );
    // The same through Nova's instance-actions API, and the server is in ERROR.
    let t = cloud.user_token().await.expect("token");
    let (s, _, body) = cloud
        .call(
            &t,
            Method::GET,
            &format!(
                "{compute}/servers/{}/os-instance-actions/{rid}",
                f.server_id
            ),
            None,
        )
        .await
        .expect("GET action");
    assert_eq!(s, 200);
    assert_eq!(body["instanceAction"]["action"], "live-migration");
    assert!(body["instanceAction"]["events"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
    let (_, _, server) = cloud
        .call(
            &t,
            Method::GET,
            &format!("{compute}/servers/{}", f.server_id),
            None,
        )
        .await
        .expect("GET server");
    assert_eq!(server["server"]["status"], "ERROR");
    // No token in what the API shows: only fingerprints.
    let raw = body.to_string();
    assert!(!raw.contains(token.token().expose()));
    cloud.stop().await;
}

/// Every guarded Cinder action refuses a user and accepts a service request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_guards_in_use_attachments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = cloud(&dir, Mode::ServiceUser).await;
    let f = cloud.seed_server("guarded");
    let token = cloud.user_token().await.expect("token");
    let vol = format!("{}/v3", cloud.volume_url);
    for body in [
        json!({"os-detach": {"attachment_id": f.attachment_id}}),
        json!({"os-terminate_connection": {"connector": {"host": "compute-1"}}}),
    ] {
        let (s, _, b) = cloud
            .call(
                &token,
                Method::POST,
                &format!("{vol}/volumes/{}/action", f.volume_id),
                Some(body),
            )
            .await
            .expect("action");
        assert_eq!(s, 409, "{b}");
        assert_eq!(
            b["conflictingRequest"]["message"],
            format!(
                "Detach volume from instance {} using the Compute API",
                f.server_id
            )
        );
    }
    // os-force_detach is admin-only; alice is not admin.
    let (s, _, _) = cloud
        .call(
            &token,
            Method::POST,
            &format!("{vol}/volumes/{}/action", f.volume_id),
            Some(json!({"os-force_detach": {"attachment_id": f.attachment_id}})),
        )
        .await
        .expect("force");
    assert_eq!(s, 403);
    // A spoofed X-Service-Roles header is stripped by the middleware: still 409.
    let resp = reqwest::Client::new()
        .delete(format!("{vol}/attachments/{}", f.attachment_id))
        .header("x-auth-token", token.token().expose())
        .header("x-service-roles", "service")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), 409);
    // A reserved attachment (no connection yet) may be deleted by the user.
    let free = cloud.seed_volume("free");
    let (s, _, b) = cloud
        .call(
            &token,
            Method::POST,
            &format!("{vol}/attachments"),
            Some(json!({"attachment": {"volume_uuid": free, "instance_uuid": f.server_id}})),
        )
        .await
        .expect("create");
    assert_eq!(s, 200, "{b}");
    let id = b["attachment"]["id"].as_str().expect("id").to_string();
    let (s, _, _) = cloud
        .call(
            &token,
            Method::DELETE,
            &format!("{vol}/attachments/{id}"),
            None,
        )
        .await
        .expect("delete");
    assert_eq!(s, 200);
    assert_eq!(
        cloud.volume.volume(&free).expect("volume").status,
        "available"
    );
    cloud.stop().await;
}

/// The identity server goes away in the middle of a block migration and comes back: the
/// migration still completes (the late calls validate against the restarted server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_restart_mid_operation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = Arc::new(cloud(&dir, Mode::ServiceUser).await);
    let runner = {
        let cloud = cloud.clone();
        tokio::spawn(async move {
            scenario::run(
                &cloud,
                Scenario::LiveMigrationBlock,
                Mode::ServiceUser,
                None,
            )
            .await
        })
    };
    // The copy phase runs from about 0.1 s to 1.9 s: no calls then.
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokio::task::block_in_place(|| cloud.identity.stop());
    assert!(!cloud.identity.is_running());
    let down = reqwest::Client::new()
        .get(format!("{}/v3", cloud.identity_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(down.is_err(), "the identity server is really down");
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::block_in_place(|| cloud.identity.restart()).expect("restart");
    let after_restart = cloud.identity.stats.snapshot();
    let report = runner.await.expect("join").expect("runs");
    // The late calls needed the restarted server: the service tokens had expired meanwhile, so
    // compute got a new one there and the receivers validated it there (the user token's
    // allow_expired validation was still cached from the early calls).
    let served = cloud.identity.stats.snapshot().since(&after_restart);
    assert!(served.issue > 0 && served.validate > 0, "{served:?}");
    let text = report.timeline.to_text();
    assert!(report.as_expected, "{:?}\n{text}", report.mismatch);
    assert_eq!(
        cloud
            .identity
            .stats
            .starts
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let task = report.task.expect("task");
    assert!(task.calls.iter().any(|c| c.user_token_expired), "{text}");
    if let Ok(cloud) = Arc::try_unwrap(cloud) {
        cloud.stop().await;
    }
}

/// `baton demo` in `dir` with the tests' token lifetime and operation length: its report and
/// what it printed.
async fn demo(dir: &tempfile::TempDir, opts: DemoOptions) -> (baton_services::DemoReport, String) {
    let (out, buffer) = Output::buffer();
    let report = run_demo(
        DemoOptions {
            dir: dir.path().to_path_buf(),
            token_expiration: EXPIRATION,
            operation: Some(Duration::from_millis(3000)),
            ..opts
        },
        &out,
    )
    .await
    .expect("demo runs");
    (report, buffer.text())
}

/// `baton demo` itself: the library entry point the CLI calls, all scenarios, all modes; its
/// table and timelines are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_and_prints_its_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, printed) = demo(&dir, DemoOptions::default()).await;
    assert!(report.all_as_expected(), "{printed}");
    assert_eq!(report.runs.len(), 20);
    // The table: a header, one row per scenario and mode, each as expected.
    let table: Vec<&str> = report.table.lines().collect();
    assert!(table[0].starts_with("scenario") && table[0].contains("[service_user]"));
    assert_eq!(table.len(), 2 + 20, "{}", report.table);
    for sc in Scenario::ALL {
        for mode in Mode::ALL {
            let row = table
                .iter()
                .find(|l| l.starts_with(sc.label()) && l.contains(mode.label()))
                .unwrap_or_else(|| panic!("row for {sc} / {mode}:\n{}", report.table));
            assert!(row.contains("  yes  "), "{row}");
            let expected_word = match (sc, mode) {
                (_, Mode::ServiceUser | Mode::Continuation) => "completed",
                _ => "failed",
            };
            assert!(row.contains(expected_word), "{row}");
            match (sc, mode) {
                (Scenario::DetachCve, Mode::NoServiceUser) => assert!(row.contains("409")),
                (_, Mode::NoServiceUser) => {
                    assert!(row.contains("401 user_token_expired"), "{row}")
                }
                (_, Mode::ServiceUserWithoutRole) => {
                    assert!(row.contains("service_token_missing_role"), "{row}")
                }
                (Scenario::DetachCve, Mode::Continuation) => {}
                (_, Mode::Continuation) => {
                    assert!(row.contains("continuation token"), "{row}")
                }
                _ => {}
            }
        }
    }
    assert!(printed.contains(&report.table), "the table is printed");
    assert!(
        printed.contains("[########################] 100%"),
        "progress bars: {printed}"
    );
    // The timelines were written next to the run, and hold no token.
    let text = std::fs::read_to_string(&report.timeline_text).expect("timeline.txt");
    let html = std::fs::read_to_string(&report.timeline_html).expect("timeline.html");
    assert!(text.contains("---- user token expired ----"));
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && !html.contains("<script")
    );
    assert_eq!(
        report.timeline_html.parent(),
        Some(report.run_dir.as_path())
    );
    for f in ["nova.conf", "cinder.conf", "keystone.db", "alice-openrc"] {
        assert!(report.run_dir.join(f).exists(), "{f} in the run directory");
    }
    assert!(!printed.contains("gAAAA"), "no Fernet token in the output");
}

/// `baton demo --allow-expired-window 0`: what security teams see today (the service-token
/// mode fails once the user token has expired) and what continuation tokens change (every
/// operation completes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_without_allow_expired_window_completes_only_with_continuation_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        modes: vec![Mode::ServiceUser, Mode::Continuation],
        scenarios: vec![Scenario::Snapshot, Scenario::DetachCve],
        allow_expired_window: Some(0),
        ..DemoOptions::default()
    };
    let (report, printed) = demo(&dir, opts).await;
    assert!(report.all_as_expected(), "{printed}");
    for r in &report.runs {
        let completed = r.result == "completed";
        let should = r.mode == Mode::Continuation || r.scenario == Scenario::DetachCve;
        assert_eq!(completed, should, "{}: {}", r.scenario, r.detail);
    }
    let text = std::fs::read_to_string(&report.timeline_text).expect("timeline.txt");
    assert!(text.contains("continuation("), "{text}");
}

/// The identity server is down exactly when the late calls go out: the calls wait (the client's
/// and the middlewares' connection retries) and the operation completes once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_down_during_late_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = Arc::new(cloud(&dir, Mode::ServiceUser).await);
    let runner = {
        let cloud = cloud.clone();
        tokio::spawn(async move {
            scenario::run(&cloud, Scenario::Snapshot, Mode::ServiceUser, None).await
        })
    };
    // The upload comes at about 3.0 s; the server is away from 2.5 s to 3.7 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    tokio::task::block_in_place(|| cloud.identity.stop());
    let stopped_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tokio::task::block_in_place(|| cloud.identity.restart()).expect("restart");
    let restarted_at = chrono::Utc::now();
    let report = runner.await.expect("join").expect("runs");
    let text = report.timeline.to_text();
    assert!(report.as_expected, "{:?}\n{text}", report.mismatch);
    let task = report.task.expect("task");
    let upload = task
        .calls
        .iter()
        .find(|c| c.method == "PUT")
        .expect("upload call");
    // On a slow machine the upload may miss the outage; when it did not, it waited it out.
    if upload.at > stopped_at && upload.at < restarted_at {
        let done = upload.at + chrono::Duration::milliseconds(upload.duration_ms as i64 + 5);
        assert!(
            done >= restarted_at,
            "the upload waited for the identity server: {text}"
        );
    } else {
        eprintln!("the upload was not sent during the outage; only completion was checked");
    }
    if let Ok(cloud) = Arc::try_unwrap(cloud) {
        cloud.stop().await;
    }
}
