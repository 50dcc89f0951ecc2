//! Live checks against the running identity server, with the senders' and receivers' own
//! credentials, through baton-client (the same Session, plugins and `validate_token` the
//! services use).
//!
//! The probe runs what happens in production when Nova calls Cinder with an expired user token:
//! the receiver's middleware validates the service token (plain), then the user token with
//! `GET /v3/auth/tokens?allow_expired=1`, `X-Auth-Token` being the middleware's own token —
//! keystonemiddleware never forwards the service token to Keystone. Only when no receiver is
//! given does the service user's own token stand in as `X-Auth-Token`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_client::discover::v3_url_from_path;
use baton_client::{
    AccessInfo, AuthConfig, AuthToken, Error, HttpOptions, HttpRequest, Interface, Method,
    RetryPolicy, Scope, ServiceUserConfig, Session, SessionConfig, Url, ValidateOptions,
};
use chrono::{DateTime, Utc};

mod app_cred;
mod fleet;

use crate::checks::{describe_user, role_add_command, Inputs, Receiver, Sender};
use crate::report::{Code, Finding, Location, Report, Severity};
use crate::retention::human;
use crate::Options;

/// Clock offsets up to this are fine: well inside keystoneauth's 30 s refresh margin.
pub const SKEW_WARNING: Duration = Duration::from_secs(5);
/// Beyond keystoneauth's 30 s refresh margin, tokens are refused as expired near their end.
pub const SKEW_ERROR: Duration = Duration::from_secs(30);
/// At most this many other projects are tried when looking for a misplaced service role.
const MAX_PROJECTS_TRIED: usize = 10;

/// Options of `--live`.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// A file holding an already-expired user token (the "expired fixture"): the probe then
    /// tests the allow_expired window itself.
    pub expired_token_file: Option<PathBuf>,
    /// Without a fixture, the probe issues a fresh user token; when the server's tokens live at
    /// most this long, it waits for the token to expire before validating it.
    pub probe_wait: Duration,
    /// Connect and total timeout of each request (no retries: the doctor reports, it does not
    /// insist).
    pub timeout: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            expired_token_file: None,
            probe_wait: Duration::ZERO,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One clock reading: the server said `server` (whole seconds) while this host's clock went
/// from `sent` to `received`.
#[derive(Debug, Clone, Copy)]
pub struct ClockSample {
    /// This host's clock when the request left.
    pub sent: DateTime<Utc>,
    /// This host's clock when the answer arrived.
    pub received: DateTime<Utc>,
    /// The server's `Date` header.
    pub server: DateTime<Utc>,
}

impl ClockSample {
    /// Estimated offset (server minus this host) in seconds and its uncertainty: the server's
    /// reading is truncated to the second, so it stands for the middle of that second.
    pub fn offset(&self) -> (f64, f64) {
        let rtt = (self.received - self.sent).num_milliseconds().max(0) as f64 / 1000.0;
        let mid = self.sent + (self.received - self.sent) / 2;
        let offset = (self.server - mid).num_milliseconds() as f64 / 1000.0 + 0.5;
        (offset, 0.5 + rtt / 2.0)
    }
}

/// The clock finding for these samples of one identity server (`url`): the offset that is
/// certain (estimate minus uncertainty) decides the severity.
pub fn clock_finding(url: &str, samples: &[ClockSample]) -> Option<Finding> {
    let (offset, uncertainty) = samples
        .iter()
        .map(ClockSample::offset)
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let certain = (offset.abs() - uncertainty).max(0.0);
    let ahead = if offset >= 0.0 { "ahead of" } else { "behind" };
    let message = format!(
        "the identity server at {url} is {:.1} s {ahead} this host (within ±{:.1} s; from the HTTP Date header and token issued_at)",
        offset.abs(),
        uncertainty
    );
    let loc = Location::default();
    let severity = if certain > SKEW_ERROR.as_secs_f64() {
        Severity::Error
    } else if certain > SKEW_WARNING.as_secs_f64() {
        Severity::Warning
    } else {
        return Some(Finding::ok(Code::LiveClockOk, loc, message));
    };
    Some(
        Finding::new(severity, Code::LiveClockSkew, loc, message)
            .impact("services check token expiry with their own clock: with more than keystoneauth's 30 s refresh margin of skew, tokens are refused as expired (or used after expiry) near their end, and revocations made on one node miss tokens issued in the same seconds on another")
            .fix("synchronise every host with NTP (chrony): chronyc tracking should show an offset well below a second"),
    )
}

fn http_options(session: &SessionConfig, timeout: Duration) -> HttpOptions {
    let mut o = session.http_options();
    o.connect_timeout = timeout;
    o.timeout = Some(timeout);
    o.retry = RetryPolicy::none();
    o
}

fn is_unreachable(e: &Error) -> bool {
    matches!(
        e,
        Error::Connection { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::Discovery { .. }
    )
}

fn section_loc(file: &str, section: &str, option: Option<&str>) -> Location {
    Location {
        file: Some(file.to_string()),
        line: None,
        section: Some(section.to_string()),
        option: option.map(str::to_string),
    }
}

struct LiveSender<'a> {
    input: &'a Sender,
    auth: &'a AuthConfig,
    session: Session,
    access: Arc<AccessInfo>,
}

struct LiveReceiver<'a> {
    input: &'a Receiver,
    session: Session,
    interface: Interface,
    region: Option<String>,
}

/// The state of one run: reports unreachable identity servers once, and collects clock samples.
struct Run<'r> {
    report: &'r mut Report,
    unreachable: BTreeSet<String>,
    clocks: BTreeMap<String, Vec<ClockSample>>,
    /// `expires_at - issued_at` of every token seen, per identity URL.
    lifetimes: BTreeMap<String, i64>,
}

impl Run<'_> {
    fn unreachable(&mut self, url: &Url, file: &str, section: &str, e: &Error) {
        let key = v3_url_from_path(url).to_string();
        if self.unreachable.insert(key) {
            self.report.push(
                Finding::error(
                    Code::LiveIdentityUnreachable,
                    section_loc(file, section, Some("auth_url")),
                    e.to_string(),
                )
                .impact("services configured with this auth_url cannot authenticate or validate tokens: every call fails")
                .fix("check auth_url and the identity server (curl <auth_url>), firewalls and TLS options (cafile)"),
            );
        }
    }

    /// Authenticates `auth` and records the clock reading of its `issued_at`.
    async fn authenticate(
        &mut self,
        session: &Session,
        auth: &AuthConfig,
    ) -> Result<Arc<AccessInfo>, Error> {
        let sent = Utc::now();
        let access = session.get_access().await?;
        let received = Utc::now();
        let key = v3_url_from_path(&auth.auth_url).to_string();
        self.clocks
            .entry(key.clone())
            .or_default()
            .push(ClockSample {
                sent,
                received,
                server: access.issued_at(),
            });
        self.lifetimes.insert(
            key,
            (access.expires_at() - access.issued_at()).num_seconds(),
        );
        Ok(access)
    }

    /// `GET <v3>` without a token: the HTTP `Date` header as a clock reading.
    async fn date_header(&mut self, session: &Session, auth: &AuthConfig) {
        let v3 = v3_url_from_path(&auth.auth_url);
        let sent = Utc::now();
        let Ok(resp) = session
            .http()
            .execute(&HttpRequest::new(Method::GET, v3.clone()))
            .await
        else {
            return;
        };
        let received = Utc::now();
        let server = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
        if let Some(server) = server {
            self.clocks
                .entry(v3.to_string())
                .or_default()
                .push(ClockSample {
                    sent,
                    received,
                    server: server.with_timezone(&Utc),
                });
        }
    }
}

pub(crate) async fn run(inputs: &Inputs, opts: &Options, live: &LiveOptions, report: &mut Report) {
    let mut run = Run {
        report,
        unreachable: BTreeSet::new(),
        clocks: BTreeMap::new(),
        lifetimes: BTreeMap::new(),
    };

    let mut receivers = Vec::new();
    for r in &inputs.receivers {
        if let Some(lr) = connect_receiver(&mut run, r, live).await {
            receivers.push(lr);
        }
    }
    let mut senders = Vec::new();
    for s in &inputs.senders {
        if let Some(ls) = connect_sender(&mut run, s, live).await {
            senders.push(ls);
        }
    }
    for s in &senders {
        check_roles(&mut run, s, &receivers, &opts.service_roles).await;
        app_cred::check(&mut run, s, &receivers, opts.longest_operation).await;
    }
    let expired = read_expired_token(&mut run, live);
    for s in &senders {
        probe(&mut run, s, &receivers, expired.as_ref(), live).await;
    }

    fleet::check(&mut run, &senders).await;
    check_clocks(&mut run, &senders, &receivers).await;
    check_lifetimes(&mut run, inputs);
}

/// `--expired-token-file`: a token that has expired, to probe allow_expired end to end.
fn read_expired_token(run: &mut Run<'_>, live: &LiveOptions) -> Option<AuthToken> {
    match &live.expired_token_file {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) if !t.trim().is_empty() => Some(AuthToken::new(t.trim().to_string())),
            Ok(_) => {
                run.report.push(Finding::error(
                    Code::ConfigInvalidValue,
                    Location::file(&path.display().to_string()),
                    "the expired-token file is empty",
                ).fix("write one token into the file: openstack token issue -f value -c id > FILE, then wait for it to expire"));
                None
            }
            Err(e) => {
                run.report.push(
                    Finding::error(
                        Code::ConfigInvalidValue,
                        Location::file(&path.display().to_string()),
                        format!("cannot read the expired-token file: {e}"),
                    )
                    .fix("pass a readable file holding one token"),
                );
                None
            }
        },
    }
}

/// The clock of every identity server the files name, from its `Date` header: token expiry
/// is judged on each host's own clock.
async fn check_clocks(
    run: &mut Run<'_>,
    senders: &[LiveSender<'_>],
    receivers: &[LiveReceiver<'_>],
) {
    let mut seen = BTreeSet::new();
    let auths: Vec<(&Session, &AuthConfig)> = senders
        .iter()
        .map(|s| (&s.session, s.auth))
        .chain(
            receivers
                .iter()
                .filter_map(|r| r.input.auth.as_ref().map(|a| (&r.session, a))),
        )
        .collect();
    for (session, auth) in auths {
        if seen.insert(v3_url_from_path(&auth.auth_url).to_string()) {
            run.date_header(session, auth).await;
        }
    }
    let clocks = std::mem::take(&mut run.clocks);
    for (url, samples) in &clocks {
        if let Some(f) = clock_finding(url, samples) {
            run.report.push(f);
        }
    }
}

/// The token lifetime the identity servers actually issue against `[token] expiration` of the
/// keystone.conf given.
fn check_lifetimes(run: &mut Run<'_>, inputs: &Inputs) {
    if let Some(config) = inputs
        .identity
        .as_ref()
        .and_then(|i| i.config.as_ref().map(|c| (i, c)))
    {
        let (id, c) = config;
        let configured = i64::from(c.token.expiration);
        for (url, lifetime) in &run.lifetimes {
            if (lifetime - configured).abs() > 1 {
                run.report.push(
                    Finding::warning(
                        Code::LiveExpirationMismatch,
                        Location::option(&id.ini, &id.file, "token", "expiration"),
                        format!("the identity server at {url} issues tokens valid for {}, but this keystone.conf says expiration = {}", human(*lifetime as u64), human(configured as u64)),
                    )
                    .impact("the static checks above used numbers the running server does not: the file given is not the one the server reads, or the server was not restarted after a change")
                    .fix("pass the identity server's own keystone.conf with --identity, or restart it to apply the file"),
                );
            }
        }
    }
}

async fn connect_receiver<'a>(
    run: &mut Run<'_>,
    r: &'a Receiver,
    live: &LiveOptions,
) -> Option<LiveReceiver<'a>> {
    let auth = r.auth.as_ref()?;
    let (http, interface, region) = match &r.config {
        Some(c) => {
            let mut http = c.http.clone();
            http.connect_timeout = live.timeout;
            http.timeout = Some(live.timeout);
            http.retry = RetryPolicy::none();
            (http, c.interface, c.region_name.clone())
        }
        None => (
            http_options(&SessionConfig::default(), live.timeout),
            Interface::Internal,
            None,
        ),
    };
    let session = match Session::builder().http_options(http).build(auth.plugin()) {
        Ok(s) => s,
        Err(e) => {
            run.report.push(Finding::error(
                Code::LiveReceiverAuthFailed,
                section_loc(&r.file, &auth.section, None),
                e.to_string(),
            ));
            return None;
        }
    };
    let access = match run.authenticate(&session, auth).await {
        Ok(a) => a,
        Err(e) if is_unreachable(&e) => {
            run.unreachable(&auth.auth_url, &r.file, &auth.section, &e);
            return None;
        }
        Err(e) => {
            run.report.push(
                Finding::error(
                    Code::LiveReceiverAuthFailed,
                    section_loc(&r.file, &auth.section, Some("password")),
                    format!("the middleware's user {} cannot authenticate: {e}", describe_user(auth)),
                )
                .impact("the middleware cannot validate any token: every request to this service is refused with 503")
                .fix(format!("correct username/password/user_domain_name in [{}], or reset the password: openstack user set --password-prompt <user>", auth.section)),
            );
            return None;
        }
    };
    if access
        .endpoint_for("identity", interface, region.as_deref())
        .is_none()
    {
        run.report.push(
            Finding::error(
                Code::LiveReceiverNoIdentityEndpoint,
                section_loc(&r.file, "keystone_authtoken", Some("interface")),
                format!(
                    "the middleware's token has no {interface} identity endpoint{} in its catalog",
                    region.as_deref().map(|r| format!(" in region {r}")).unwrap_or_default()
                ),
            )
            .impact("the middleware finds where to validate tokens in its own catalog: without that endpoint every request is refused with 503")
            .fix(format!("openstack endpoint create --region <region> identity {interface} <identity URL>, or [keystone_authtoken] interface = one the catalog has")),
        );
        return None;
    }
    Some(LiveReceiver {
        input: r,
        session,
        interface,
        region,
    })
}

async fn connect_sender<'a>(
    run: &mut Run<'_>,
    s: &'a Sender,
    live: &LiveOptions,
) -> Option<LiveSender<'a>> {
    let auth = s.auth.as_ref()?;
    // The service's own reader and session, as it would build them.
    let config = ServiceUserConfig {
        source: s.file.clone(),
        section: "service_user".into(),
        auth: auth.clone(),
        session: s.session.clone(),
    };
    let session = match Session::builder()
        .http_options(http_options(&config.session, live.timeout))
        .build(config.auth_plugin())
    {
        Ok(sess) => sess,
        Err(e) => {
            run.report.push(Finding::error(
                Code::LiveServiceUserAuthFailed,
                section_loc(&s.file, &auth.section, None),
                e.to_string(),
            ));
            return None;
        }
    };
    match run.authenticate(&session, auth).await {
        Ok(access) => Some(LiveSender {
            input: s,
            auth,
            session,
            access,
        }),
        Err(e) if is_unreachable(&e) => {
            run.unreachable(&auth.auth_url, &s.file, &auth.section, &e);
            None
        }
        Err(e) => {
            run.report.push(
                Finding::error(
                    Code::LiveServiceUserAuthFailed,
                    section_loc(&s.file, &auth.section, Some("password")),
                    format!("the service user {} cannot authenticate: {e}", describe_user(auth)),
                )
                .impact("no service token can be sent: Nova falls back to user-only calls (in-use volume detach answers 409, long operations fail once the user's token expires)")
                .fix(format!("correct username/password/user_domain_name/project_name in [{}], or reset the password: openstack user set --password-prompt <user>", auth.section)),
            );
            None
        }
    }
}

/// How to give the service user `role`: a grant, or for an application credential (whose
/// roles are fixed) a new credential.
fn missing_role_fix(s: &LiveSender<'_>, role: &str) -> String {
    if app_cred::credential(s).is_some() {
        app_cred::new_credential_fix(&s.auth.section, role)
    } else {
        role_add_command(s.auth, role)
    }
}

/// The roles of the service user's token against each receiver's `service_token_roles` (or the
/// stated service roles when no receiver is given).
async fn check_roles(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    receivers: &[LiveReceiver<'_>],
    stated: &[String],
) {
    let held: Vec<String> = s
        .access
        .role_names()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let mut wanted: Vec<(Option<&str>, Vec<String>)> = receivers
        .iter()
        .map(|r| (Some(r.input.file.as_str()), r.input.roles.clone()))
        .collect();
    if wanted.is_empty() {
        wanted.push((None, stated.to_vec()));
    }
    let scope = match (s.access.project_name(), s.access.domain_name()) {
        (Some(p), _) => format!("on project {p}"),
        (None, Some(d)) => format!("on domain {d}"),
        _ if s.access.system_scoped() => "on the system".into(),
        _ => "(unscoped token)".into(),
    };
    let mut all_ok = true;
    for (receiver, roles) in wanted {
        if held.iter().any(|h| roles.contains(h)) {
            continue;
        }
        all_ok = false;
        let against = receiver
            .map(|f| format!("{f}'s service_token_roles [{}]", roles.join(", ")))
            .unwrap_or_else(|| format!("the service roles [{}]", roles.join(", ")));
        let role = roles.first().map_or("service", String::as_str);
        let loc = section_loc(&s.input.file, &s.auth.section, Some("project_name"));
        let impact = "the receiver refuses this service's tokens (401 with service_token_roles_required) or does not let them rescue expired user tokens; Cinder answers 409 to Nova's in-use detach";
        if let Some((project, found)) = role_elsewhere(s, &roles).await {
            run.report.push(
                Finding::error(
                    Code::LiveServiceRoleOnWrongProject,
                    loc,
                    format!(
                        "the service user {} holds [{}] {scope}, none of {against}; it holds {found} on project {project} instead",
                        s.access.user_name(),
                        held.join(", ")
                    ),
                )
                .impact(impact)
                .fix(format!(
                    "[{}] project_name = {project}, or {}",
                    s.auth.section,
                    role_add_command(s.auth, &found)
                )),
            );
        } else {
            run.report.push(
                Finding::error(
                    Code::LiveServiceUserMissingRole,
                    loc,
                    format!(
                        "the service user {} holds [{}] {scope}, none of {against}",
                        s.access.user_name(),
                        held.join(", ")
                    ),
                )
                .impact(impact)
                .fix(missing_role_fix(s, role)),
            );
        }
    }
    if all_ok {
        run.report.push(Finding::ok(
            Code::LiveServiceUserOk,
            section_loc(&s.input.file, &s.auth.section, None),
            format!(
                "the service user {} authenticates and holds [{}] {scope}",
                s.access.user_name(),
                held.join(", ")
            ),
        ));
    }
}

/// Another project of the service user where it holds one of `roles`: `GET /v3/auth/projects`
/// with its own token, then a token scoped to each (at most [`MAX_PROJECTS_TRIED`]).
async fn role_elsewhere(s: &LiveSender<'_>, roles: &[String]) -> Option<(String, String)> {
    let v3 = v3_url_from_path(&s.auth.auth_url);
    let doc: serde_json::Value = s.session.get(v3, "auth/projects").send_json().await.ok()?;
    let current = s.access.project_id();
    let projects = doc.get("projects")?.as_array()?;
    for p in projects.iter().take(MAX_PROJECTS_TRIED) {
        let (Some(id), Some(name)) = (
            p.get("id").and_then(|v| v.as_str()),
            p.get("name").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if Some(id) == current {
            continue;
        }
        let mut other = s.auth.clone();
        other.scope = Scope::project_id(id);
        let Ok(access) = other.plugin().get_access(s.session.http()).await else {
            continue;
        };
        if let Some(role) = access
            .role_names()
            .into_iter()
            .find(|r| roles.iter().any(|w| w == r))
        {
            return Some((name.to_string(), role.to_string()));
        }
    }
    None
}

/// The production sequence for each receiver: the receiver validates the service token, then
/// the user token with allow_expired.
async fn probe(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    receivers: &[LiveReceiver<'_>],
    expired: Option<&AuthToken>,
    live: &LiveOptions,
) {
    let Some((user_token, user_expiry)) = probe_user_token(run, s, expired, live).await else {
        return;
    };
    let expired_now = user_expiry.is_none_or(|e| e <= Utc::now());
    let described = describe_user_token(expired.is_some(), user_expiry);

    let user = UserTokenProbe {
        token: &user_token,
        expired: expired_now,
        described: &described,
    };
    if receivers.is_empty() {
        // No receiver to act as: the service user's own token validates.
        let opts = ValidateOptions {
            allow_expired: true,
            diagnosis: true,
            ..ValidateOptions::default()
        };
        let pair = format!("{} (no receiver given)", s.input.file);
        let loc = section_loc(&s.input.file, &s.auth.section, None);
        validate_user(run, &s.session, &user, &opts, &pair, loc).await;
        return;
    }
    for r in receivers {
        let pair = format!("{} -> {}", s.input.file, r.input.file);
        let plain = ValidateOptions {
            allow_expired: false,
            include_catalog: false,
            interface: r.interface,
            region_name: r.region.clone(),
            // As the receiver's middleware asks (it enforces access rules itself).
            enforces_access_rules: true,
            diagnosis: false,
        };
        // Step 1: the receiver validates the service token, as keystonemiddleware does first
        // (fresh from the plugin: the wait above may have outlived a short-lived one).
        let service_token = match s.session.get_token().await {
            Ok(t) => t,
            Err(e) => {
                run.report.push(Finding::error(
                    Code::LiveServiceUserAuthFailed,
                    section_loc(&s.input.file, &s.auth.section, None),
                    format!("{pair}: authenticating the service user again failed: {e}"),
                ));
                continue;
            }
        };
        match r.session.validate_token(&service_token, &plain).await {
            Ok(_) => {}
            Err(Error::TokenNotFound { message, .. }) => {
                run.report.push(
                    Finding::error(
                        Code::LiveServiceTokenNotRecognised,
                        section_loc(&s.input.file, &s.auth.section, Some("auth_url")),
                        format!("{pair}: the receiver's identity server does not accept the service token issued at {}: {message}", s.auth.auth_url),
                    )
                    .impact("every call from this service to the receiver is refused with 401: the two talk to different identity deployments, or their Fernet key repositories differ")
                    .fix("point [service_user] auth_url at the receivers' identity endpoint, and make every identity node hold the same keys (one fernet_rotate, then distribute the whole repository)"),
                );
                continue;
            }
            Err(e) => {
                receiver_validate_error(run, r, &pair, &e);
                continue;
            }
        }
        // Step 2: the user token, allow_expired because the service token holds a role. A
        // probe grants nothing: the server records no expired token accepted for a service.
        let opts = ValidateOptions {
            allow_expired: true,
            diagnosis: true,
            ..plain
        };
        let loc = section_loc(&r.input.file, "keystone_authtoken", None);
        validate_user(run, &r.session, &user, &opts, &pair, loc).await;
    }
}

/// The user token of a probe: the expired fixture, else a fresh token of the service user,
/// waited out when the server's tokens are short-lived enough; with its expiry when known.
async fn probe_user_token(
    run: &mut Run<'_>,
    s: &LiveSender<'_>,
    expired: Option<&AuthToken>,
    live: &LiveOptions,
) -> Option<(AuthToken, Option<DateTime<Utc>>)> {
    Some(match expired {
        Some(t) => (t.clone(), None),
        None => match s.auth.plugin().get_access(s.session.http()).await {
            Ok(a) => {
                let left = (a.expires_at() - Utc::now()).num_milliseconds();
                if left >= 0 && Duration::from_millis(left as u64) <= live.probe_wait {
                    // Expiry is compared in whole seconds: wait past the next one.
                    tokio::time::sleep(Duration::from_millis(left as u64 + 1100)).await;
                }
                (a.token().clone(), Some(a.expires_at()))
            }
            Err(e) => {
                run.report.push(Finding::error(
                    Code::LiveServiceUserAuthFailed,
                    section_loc(&s.input.file, &s.auth.section, None),
                    format!("issuing the probe's user token failed: {e}"),
                ));
                return None;
            }
        },
    })
}

/// How a probe's user token is named in findings: whether it exercised allow_expired.
fn describe_user_token(from_fixture: bool, user_expiry: Option<DateTime<Utc>>) -> String {
    match (from_fixture, user_expiry) {
        (true, _) => "the expired user token from the fixture".to_string(),
        (false, Some(e)) if e <= Utc::now() => {
            format!("a user token expired {} s ago", (Utc::now() - e).num_seconds())
        }
        (false, Some(e)) => format!(
            "a fresh user token (valid {} s more, so the allow_expired window itself was not exercised; pass --expired-token FILE or --probe-wait)",
            (e - Utc::now()).num_seconds()
        ),
        (false, None) => "a user token".to_string(),
    }
}

fn receiver_validate_error(run: &mut Run<'_>, r: &LiveReceiver<'_>, pair: &str, e: &Error) {
    let Some(auth) = r.input.auth.as_ref() else {
        return;
    };
    if let Error::Http { status: 403, .. } = e {
        run.report.push(
            Finding::error(
                Code::LiveReceiverCannotValidate,
                section_loc(&r.input.file, &auth.section, Some("username")),
                format!("{pair}: the middleware's user {} may not validate tokens: {e}", describe_user(auth)),
            )
            .impact("identity:validate_token needs the service or admin role: every request to this service is refused with 503")
            .fix(role_add_command(auth, "service")),
        );
    } else if is_unreachable(e) {
        run.unreachable(&auth.auth_url, &r.input.file, &auth.section, e);
    } else {
        run.report.push(
            Finding::error(
                Code::LiveUserTokenRefused,
                section_loc(&r.input.file, &auth.section, None),
                format!("{pair}: validating the service token failed: {e}"),
            )
            .impact("the receiver cannot confirm this service's tokens: its calls are refused")
            .fix("see the message; check the identity server's log for the request id"),
        );
    }
}

/// What the probe knows about the user token it validates.
struct UserTokenProbe<'a> {
    token: &'a AuthToken,
    expired: bool,
    described: &'a str,
}

async fn validate_user(
    run: &mut Run<'_>,
    validator: &Session,
    user: &UserTokenProbe<'_>,
    opts: &ValidateOptions,
    pair: &str,
    loc: Location,
) {
    let (user_token, expired, described) = (user.token, user.expired, user.described);
    match validator.validate_token(user_token, opts).await {
        Ok(a) => run.report.push(Finding::ok(
            Code::LiveProbeOk,
            loc,
            format!(
                "{pair}: service token accepted, then {described} (expires_at {}) validated with allow_expired=1",
                a.expires_at().format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )),
        Err(Error::TokenNotFound { message, .. }) if expired => run.report.push(
            Finding::error(
                Code::LiveAllowExpiredRefused,
                loc,
                format!("{pair}: {described} was refused with allow_expired=1: {message}"),
            )
            .impact("long operations fail once the user's token expires although a valid service token vouches for it: live migrations, volume attach/detach and snapshots stop part-way with 401")
            .fix("on the identity server: [token] allow_expired_window = 172800 (or the longest operation), with [fernet_tokens] max_active_keys covering expiration + allow_expired_window (see the identity.* findings)"),
        ),
        Err(e) => {
            run.report.push(
                Finding::error(
                    Code::LiveUserTokenRefused,
                    loc,
                    format!("{pair}: {described} was refused: {e}"),
                )
                .impact("the receiver refuses user tokens this identity server issued: every call through it fails")
                .fix("see the message; check the identity server's log for the request id"),
            )
        }
    }
}
