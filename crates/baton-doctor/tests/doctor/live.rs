//! Live checks against a real Baton on 127.0.0.1.
//!
//! Each test starts a `baton-testkit` identity server (in-process on `127.0.0.1:0`, its own
//! SQLite database and Fernet keys, bootstrapped like `baton manage bootstrap`: admin, default
//! roles, identity endpoints in RegionOne), plus users made through the store:
//!
//! * `nova`: `service` on project `service` (a correct sender);
//! * `cinder`: `service` on `service` (a correct receiver middleware user);
//! * `norole`: only `member` on `service`;
//! * `elsewhere`: `member` on `service`, `service` on project `other`;
//! * `glance`: only `member` on `service` (a receiver user that may not validate tokens).
//!
//! The files the doctor reads are written next to the database, pointing at the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_doctor::{
    clock_finding, diagnose, ClockSample, Code, LiveOptions, Options, Report, Severity,
};
use baton_testkit::{DbDialect, IdentityServer, ADMIN_PASSWORD as ADMIN_PW};
use chrono::Utc;

use crate::common::key;

const PW: &str = "Serv1ce-Live-Secret-w8Kd";
const WRONG_PW: &str = "Wr0ng-Live-Secret-z2Px";

/// A testkit identity server plus a directory for the configuration files the doctor reads.
struct Server {
    base: String,
    dir: tempfile::TempDir,
    identity: IdentityServer,
    nova_id: String,
    service_project: String,
}

#[derive(Clone, Copy)]
struct ServerConfig {
    expiration: u32,
    allow_expired_window: u32,
}

const NORMAL: ServerConfig = ServerConfig {
    expiration: 3600,
    allow_expired_window: 172_800,
};

/// Tokens that expire within the probe's wait.
const SHORT: ServerConfig = ServerConfig {
    expiration: 2,
    allow_expired_window: 172_800,
};

impl Server {
    async fn start(sc: ServerConfig) -> Server {
        let identity = IdentityServer::start_with(DbDialect::Sqlite, |c| {
            c.token.expiration = sc.expiration;
            c.token.allow_expired_window = sc.allow_expired_window;
        })
        .await;
        let dom = identity.default_domain_id.clone();
        let service = identity.create_project("service", &dom).await;
        let other = identity.create_project("other", &dom).await;
        let grants: [(&str, &[(&str, &str)]); 5] = [
            ("nova", &[(&service, "service")]),
            ("cinder", &[(&service, "service")]),
            ("norole", &[(&service, "member")]),
            ("elsewhere", &[(&service, "member"), (&other, "service")]),
            ("glance", &[(&service, "member")]),
        ];
        let mut nova_id = String::new();
        for (name, assignments) in grants {
            let id = identity.create_user(name, PW, &dom).await;
            if name == "nova" {
                nova_id = id.clone();
            }
            for (project, role) in assignments {
                identity.grant_project(&id, project, role).await;
            }
        }
        Server {
            base: identity.base.clone(),
            dir: tempfile::tempdir().expect("tempdir"),
            identity,
            nova_id,
            service_project: service,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A nova.conf whose `[service_user]` authenticates as `user` with `password`.
    fn sender(&self, user: &str, password: &str) -> PathBuf {
        let p = self.path(&format!("nova-{user}.conf"));
        std::fs::write(
            &p,
            format!(
                "[DEFAULT]\nstate_path = /var/lib/nova\n\n[service_user]\nsend_service_user_token = true\nauth_type = password\nauth_url = {}/v3\nusername = {user}\npassword = {password}\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n",
                self.base
            ),
        )
        .unwrap();
        p
    }

    /// A cinder.conf whose middleware authenticates as `user`; `extra` lines are appended to
    /// `[keystone_authtoken]`.
    fn receiver(&self, user: &str, password: &str, extra: &str) -> PathBuf {
        let p = self.path(&format!("cinder-{user}.conf"));
        std::fs::write(
            &p,
            format!(
                "[DEFAULT]\nenabled_backends = lvm\n\n[keystone_authtoken]\nwww_authenticate_uri = {base}\nauth_url = {base}/v3\nauth_type = password\nusername = {user}\npassword = {password}\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\nservice_token_roles = service\nservice_token_roles_required = true\n{extra}\n",
                base = self.base
            ),
        )
        .unwrap();
        p
    }
}

fn live(probe_wait: u64) -> LiveOptions {
    LiveOptions {
        expired_token_file: None,
        probe_wait: Duration::from_secs(probe_wait),
        timeout: Duration::from_secs(10),
    }
}

async fn run(senders: &[&Path], receivers: &[&Path], live: LiveOptions) -> Report {
    let opts = Options {
        senders: senders.iter().map(|p| p.to_path_buf()).collect(),
        receivers: receivers.iter().map(|p| p.to_path_buf()).collect(),
        live: Some(live),
        ..Options::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), diagnose(&opts))
        .await
        .expect("the doctor finishes within 60 s")
        .expect("runs");
    let text = report.to_text() + &report.to_json_string();
    for secret in [PW, WRONG_PW, ADMIN_PW] {
        assert!(!text.contains(secret), "output shows a password:\n{text}");
    }
    report
}

fn codes(report: &Report, severity: Severity) -> Vec<&'static str> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.code.as_str())
        .collect()
}

#[tokio::test]
async fn correct_set_up_passes_the_whole_sequence_with_an_expired_user_token() {
    let server = Server::start(SHORT).await;
    let nova = server.sender("nova", PW);
    let cinder = server.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(5)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        report.to_text()
    );
    assert_eq!(
        codes(&report, Severity::Warning),
        Vec::<&str>::new(),
        "{}",
        report.to_text()
    );
    let ok = codes(&report, Severity::Ok);
    for code in ["live.service_user_ok", "live.probe_ok", "live.clock_ok"] {
        assert!(ok.contains(&code), "{code} missing: {}", report.to_text());
    }
    let probe = report.with_code(Code::LiveProbeOk)[0];
    assert!(probe.message.contains("expired"), "{}", probe.message);
    assert!(!probe.message.contains("fresh"), "{}", probe.message);
    assert_eq!(report.exit_status(), 0);
}

#[tokio::test]
async fn allow_expired_window_zero_on_the_server_fails_the_probe_at_the_user_token() {
    let server = Server::start(ServerConfig {
        expiration: 2,
        allow_expired_window: 0,
    })
    .await;
    let nova = server.sender("nova", PW);
    let cinder = server.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(5)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        ["live.allow_expired_refused"],
        "{}",
        report.to_text()
    );
    let f = report.with_code(Code::LiveAllowExpiredRefused)[0];
    assert!(f
        .location
        .file
        .as_deref()
        .unwrap()
        .ends_with("cinder-cinder.conf"));
    assert!(f.fix.contains("allow_expired_window"), "{}", f.fix);
    assert_eq!(report.exit_status(), 1);
}

#[tokio::test]
async fn an_expired_token_fixture_is_validated_through_the_window() {
    let server = Server::start(SHORT).await;
    // A user token issued now and saved, as an operator would with `openstack token issue`.
    let auth = baton_client::Password::new(
        baton_client::Url::parse(&format!("{}/v3", server.base)).unwrap(),
        baton_client::UserRef::name("nova", baton_client::DomainRef::Name("Default".into())),
        PW,
    );
    let session = baton_client::Session::new(std::sync::Arc::new(auth)).unwrap();
    let access = session.get_access().await.unwrap();
    let file = server.path("expired.token");
    std::fs::write(&file, format!("{}\n", access.token().expose())).unwrap();
    let wait = (access.expires_at() - Utc::now()).num_milliseconds().max(0) as u64 + 1100;
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let nova = server.sender("nova", PW);
    let cinder = server.receiver("cinder", PW, "");
    let mut options = live(0);
    options.expired_token_file = Some(file);
    let report = run(&[&nova], &[&cinder], options).await;
    assert_eq!(
        codes(&report, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        report.to_text()
    );
    let probe = report.with_code(Code::LiveProbeOk);
    assert!(probe[0].message.contains("fixture"), "{}", probe[0].message);
    // The token itself never appears.
    assert!(!report.to_text().contains(access.token().expose()));
}

#[tokio::test]
async fn service_user_with_a_wrong_password() {
    let server = Server::start(NORMAL).await;
    let nova = server.sender("nova", WRONG_PW);
    let cinder = server.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(0)).await;
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(key)
        .collect();
    assert_eq!(
        errors,
        [(
            Severity::Error,
            "live.service_user_auth_failed".to_string(),
            "nova-nova.conf".to_string(),
            Some("service_user".to_string()),
            Some("password".to_string())
        )],
        "{}",
        report.to_text()
    );
    assert!(report.findings[0..]
        .iter()
        .any(|f| f.message.contains("401")));
}

#[tokio::test]
async fn service_user_without_the_service_role() {
    let server = Server::start(NORMAL).await;
    let nova = server.sender("norole", PW);
    let cinder = server.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(0)).await;
    assert!(
        codes(&report, Severity::Error).contains(&"live.service_user_missing_role"),
        "{}",
        report.to_text()
    );
    let f = report.with_code(Code::LiveServiceUserMissingRole)[0];
    assert_eq!(
        f.fix,
        "openstack role add --user norole --user-domain Default --project service --project-domain Default service"
    );
    assert!(f.message.contains("member"), "{}", f.message);
    assert!(report
        .with_code(Code::LiveServiceRoleOnWrongProject)
        .is_empty());
}

#[tokio::test]
async fn service_role_on_the_wrong_project() {
    let server = Server::start(NORMAL).await;
    let nova = server.sender("elsewhere", PW);
    let cinder = server.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(0)).await;
    let f = report.with_code(Code::LiveServiceRoleOnWrongProject);
    assert_eq!(f.len(), 1, "{}", report.to_text());
    assert!(
        f[0].message.contains("service on project other"),
        "{}",
        f[0].message
    );
    assert!(
        f[0].fix.starts_with("[service_user] project_name = other"),
        "{}",
        f[0].fix
    );
    assert!(report
        .with_code(Code::LiveServiceUserMissingRole)
        .is_empty());
}

#[tokio::test]
async fn receiver_user_that_may_not_validate_tokens() {
    let server = Server::start(NORMAL).await;
    let nova = server.sender("nova", PW);
    let glance = server.receiver("glance", PW, "");
    let report = run(&[&nova], &[&glance], live(0)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        ["live.receiver_cannot_validate"],
        "{}",
        report.to_text()
    );
    let f = report.with_code(Code::LiveReceiverCannotValidate)[0];
    assert!(
        f.fix.contains("--user glance") && f.fix.ends_with(" service"),
        "{}",
        f.fix
    );
}

#[tokio::test]
async fn receiver_with_a_wrong_password_or_a_missing_catalog_interface() {
    let server = Server::start(NORMAL).await;
    let nova = server.sender("nova", PW);
    let wrong = server.receiver("cinder", WRONG_PW, "");
    let report = run(&[&nova], &[&wrong], live(0)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        ["live.receiver_auth_failed"],
        "{}",
        report.to_text()
    );
    // Bootstrap made no admin endpoint: a middleware asking for it cannot validate anything.
    let admin = server.receiver("cinder", PW, "interface = admin");
    let report = run(&[&nova], &[&admin], live(0)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        ["live.receiver_no_identity_endpoint"],
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn service_token_from_another_identity_deployment() {
    // Two servers with their own keys: Nova's service user authenticates at the second, Cinder
    // validates at the first (another region, or a key repository out of sync).
    let first = Server::start(NORMAL).await;
    let second = Server::start(NORMAL).await;
    let nova = second.sender("nova", PW);
    let cinder = first.receiver("cinder", PW, "");
    let report = run(&[&nova], &[&cinder], live(0)).await;
    assert!(
        codes(&report, Severity::Error).contains(&"live.service_token_not_recognised"),
        "{}",
        report.to_text()
    );
    assert_eq!(
        report.with_code(Code::SenderIdentityEndpointMismatch).len(),
        1
    );
}

#[tokio::test]
async fn unreachable_identity_server_is_reported_once() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let nova = dir.path().join("nova.conf");
    std::fs::write(
        &nova,
        format!("[service_user]\nsend_service_user_token = true\nauth_type = v3password\nauth_url = http://127.0.0.1:{port}/v3\nusername = nova\npassword = {PW}\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n"),
    )
    .unwrap();
    let mut options = live(0);
    options.timeout = Duration::from_secs(2);
    let report = run(&[&nova], &[], options).await;
    assert_eq!(
        codes(&report, Severity::Error),
        ["live.identity_unreachable"],
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn keystone_conf_that_is_not_the_one_the_server_reads() {
    let server = Server::start(SHORT).await;
    let nova = server.sender("nova", PW);
    let keystone = server.path("keystone.conf");
    std::fs::write(&keystone, "[token]\nexpiration = 3600\n").unwrap();
    let opts = Options {
        identity: vec![keystone],
        senders: vec![nova],
        rotation_interval: Some(Duration::from_secs(86_400)),
        live: Some(live(0)),
        ..Options::default()
    };
    let report = diagnose(&opts).await.unwrap();
    let f = report.with_code(Code::LiveExpirationMismatch);
    assert_eq!(f.len(), 1, "{}", report.to_text());
    assert!(f[0].message.contains("valid for 2 s"), "{}", f[0].message);
    assert_eq!(f[0].location.option.as_deref(), Some("expiration"));
    // Without a receiver the service user's own token validates the user token.
    assert_eq!(
        report.with_code(Code::LiveProbeOk).len(),
        1,
        "{}",
        report.to_text()
    );
}

#[test]
fn clock_offsets_are_classified_with_their_uncertainty() {
    let now = Utc::now();
    let sample = |server_offset_ms: i64, rtt_ms: i64| ClockSample {
        sent: now,
        received: now + chrono::Duration::milliseconds(rtt_ms),
        // The server's reading is truncated to the second, like an HTTP Date header.
        server: chrono::DateTime::from_timestamp(
            (now + chrono::Duration::milliseconds(rtt_ms / 2 + server_offset_ms)).timestamp(),
            0,
        )
        .unwrap(),
    };
    let sev = |s: &[ClockSample]| {
        let f = clock_finding("http://ks/v3", s).unwrap();
        (f.severity, f.code)
    };
    assert_eq!(sev(&[sample(0, 10)]), (Severity::Ok, Code::LiveClockOk));
    assert_eq!(
        sev(&[sample(12_000, 10)]),
        (Severity::Warning, Code::LiveClockSkew)
    );
    assert_eq!(
        sev(&[sample(-120_000, 10)]),
        (Severity::Error, Code::LiveClockSkew)
    );
    // A slow round trip widens the uncertainty: 6 s measured over a 4 s round trip is not proof.
    assert_eq!(
        sev(&[sample(6_000, 4_000)]),
        (Severity::Ok, Code::LiveClockOk)
    );
    // The most precise sample decides.
    assert_eq!(
        sev(&[sample(6_000, 4_000), sample(45_000, 20)]).0,
        Severity::Error
    );
    let f = clock_finding("http://ks/v3", &[sample(-120_000, 10)]).unwrap();
    assert!(f.message.contains("behind"), "{}", f.message);
    assert!(f.fix.contains("NTP"));
    assert!(clock_finding("http://ks/v3", &[]).is_none());
}

const APP_CRED_SECRET: &str = "AppCred-Live-Secret-q4Rz";

impl Server {
    /// Nova makes an application credential with `body`'s roles, expiry and access rules; a
    /// nova.conf whose `[service_user]` logs in with it.
    async fn app_cred_sender(&self, name: &str, body: serde_json::Value) -> PathBuf {
        let scope = serde_json::json!({"project": {"id": self.service_project}});
        let token = self.identity.token("nova", PW, scope).await;
        let mut cred = body;
        cred["name"] = name.into();
        cred["secret"] = APP_CRED_SECRET.into();
        let (status, created) = baton_testkit::call(
            &self.identity,
            baton_testkit::Method::POST,
            &format!("users/{}/application_credentials", self.nova_id),
            &token,
            Some(serde_json::json!({ "application_credential": cred })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let id = created["application_credential"]["id"].as_str().unwrap();
        let p = self.path(&format!("nova-{name}.conf"));
        std::fs::write(
            &p,
            format!(
                "[service_user]\nsend_service_user_token = true\nauth_type = v3applicationcredential\nauth_url = {}/v3\napplication_credential_id = {id}\napplication_credential_secret = {APP_CRED_SECRET}\n",
                self.base
            ),
        )
        .unwrap();
        p
    }
}

async fn run_with(senders: &[&Path], receivers: &[&Path], longest: Duration) -> Report {
    let opts = Options {
        senders: senders.iter().map(|p| p.to_path_buf()).collect(),
        receivers: receivers.iter().map(|p| p.to_path_buf()).collect(),
        live: Some(live(0)),
        longest_operation: Some(longest),
        ..Options::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), diagnose(&opts))
        .await
        .expect("the doctor finishes within 60 s")
        .expect("runs");
    let text = report.to_text() + &report.to_json_string();
    assert!(
        !text.contains(APP_CRED_SECRET),
        "output shows the secret:\n{text}"
    );
    report
}

#[tokio::test]
async fn service_user_from_an_application_credential() {
    let server = Server::start(NORMAL).await;
    let cinder = server.receiver("cinder", PW, "service_type = volumev3");
    let in_an_hour = (Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();

    // A good one: the service role, no expiry, no rules.
    let good = server
        .app_cred_sender("good", serde_json::json!({"roles": [{"name": "service"}]}))
        .await;
    let report = run_with(&[&good], &[&cinder], Duration::from_secs(7200)).await;
    assert_eq!(
        codes(&report, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        report.to_text()
    );
    assert!(codes(&report, Severity::Ok).contains(&"live.service_user_ok"));

    // Expires in an hour, operations last two.
    let expiring = server
        .app_cred_sender(
            "expiring",
            serde_json::json!({"roles": [{"name": "service"}], "expires_at": in_an_hour}),
        )
        .await;
    let report = run_with(&[&expiring], &[&cinder], Duration::from_secs(7200)).await;
    let f = report.with_code(Code::LiveAppCredExpiresSoon);
    assert_eq!(f.len(), 1, "{}", report.to_text());
    assert_eq!(f[0].severity, Severity::Error);
    assert!(f[0].message.contains("expiring"), "{}", f[0].message);
    // With short operations it is only a reminder.
    let report = run_with(&[&expiring], &[&cinder], Duration::from_secs(600)).await;
    assert_eq!(
        report.with_code(Code::LiveAppCredExpiresSoon)[0].severity,
        Severity::Warning
    );

    // Rules that name nothing on the receiver's service type.
    let ruled = server
        .app_cred_sender(
            "ruled",
            serde_json::json!({"roles": [{"name": "service"}], "access_rules": [
                {"service": "compute", "method": "GET", "path": "/v2.1/servers"}]}),
        )
        .await;
    let report = run_with(&[&ruled], &[&cinder], Duration::from_secs(600)).await;
    let f = report.with_code(Code::LiveAppCredAccessRules);
    assert_eq!(f.len(), 1, "{}", report.to_text());
    assert!(f[0].message.contains("volumev3"), "{}", f[0].message);
    assert_eq!(
        codes(&report, Severity::Error),
        Vec::<&str>::new(),
        "{}",
        report.to_text()
    );
}

#[tokio::test]
async fn application_credential_without_the_service_role() {
    let server = Server::start(NORMAL).await;
    // Nova holds member too, and makes a credential with only that.
    server
        .identity
        .grant_project(&server.nova_id, &server.service_project, "member")
        .await;
    let cinder = server.receiver("cinder", PW, "");
    let member = server
        .app_cred_sender(
            "memberonly",
            serde_json::json!({"roles": [{"name": "member"}]}),
        )
        .await;
    let report = run_with(&[&member], &[&cinder], Duration::from_secs(600)).await;
    let f = report.with_code(Code::LiveServiceUserMissingRole);
    assert_eq!(f.len(), 1, "{}", report.to_text());
    assert!(
        f[0].fix
            .contains("openstack application credential create --role service"),
        "{}",
        f[0].fix
    );
}

/// Baton's fleet view, read with a system admin's `[service_user]`: every live node in step is
/// `live.fleet_ok`; a live node holding other keys is `live.fleet_keys_differ`, named.
#[tokio::test]
async fn a_live_node_with_other_keys_is_an_error() {
    let s = Server::start(NORMAL).await;
    let p = s.path("nova-system-admin.conf");
    std::fs::write(
        &p,
        format!(
            "[service_user]\nsend_service_user_token = true\nauth_type = password\nauth_url = {}/v3\nusername = admin\npassword = {ADMIN_PW}\nuser_domain_name = Default\nsystem_scope = all\n",
            s.base
        ),
    )
    .unwrap();
    // The server's first heartbeat is written when it starts serving.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = run(&[&p], &[], live(0)).await;
    assert!(
        codes(&report, Severity::Ok).contains(&"live.fleet_ok"),
        "{}",
        report.to_text()
    );
    let now = Utc::now().timestamp();
    s.identity
        .store
        .heartbeat(&baton_store::NodeRow {
            node_id: "other-node".into(),
            repository: "fernet_tokens".into(),
            name: "keystone-3".into(),
            address: Some("10.0.0.3:5000".into()),
            started_at: now - 60,
            heartbeat_at: now,
            key_set_version: None,
            key_fingerprints: "0:00000000,1:11111111".into(),
            primary_key_id: Some(1),
            change_lag_ms: None,
        })
        .await
        .unwrap();
    let report = run(&[&p], &[], live(0)).await;
    let differ: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code == Code::LiveFleetKeysDiffer)
        .collect();
    assert_eq!(differ.len(), 1, "{}", report.to_text());
    assert!(
        differ[0].message.contains("keystone-3"),
        "{}",
        differ[0].message
    );
    // A project-scoped service user may not read the view: nothing is said.
    let nova = s.sender("nova", PW);
    let report = run(&[&nova], &[], live(0)).await;
    assert!(!report
        .findings
        .iter()
        .any(|f| f.code == Code::LiveFleetKeysDiffer || f.code == Code::LiveFleetOk));
}
