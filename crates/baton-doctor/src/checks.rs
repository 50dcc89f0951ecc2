//! Static checks: reads the files with the readers the services themselves use (baton-config's
//! `IdentityConfig`, baton-client's `AuthConfig` and `SessionConfig` — the two halves of
//! `ServiceUserConfig` —, baton-authtoken's `AuthTokenConfig`) and compares the three places
//! with each other.

use std::path::Path;
use std::time::Duration;

use baton_authtoken::AuthTokenConfig;
use baton_client::discover::v3_url_from_path;
use baton_client::{
    AuthConfig, AuthType, Credentials, DomainRef, ProjectRef, Scope, SessionConfig, Url, UserRef,
};
use baton_config::{ConfigError, ConfigErrorKind, IdentityConfig, IniFile};

use crate::report::{Code, Finding, Location, Report};
use crate::retention::{human, Retention, Verdict};
use crate::{InputError, Options};

const SERVICE_USER: &str = "service_user";
const AUTHTOKEN: &str = "keystone_authtoken";

/// What breaks when a sender sends no service token.
const NO_SERVICE_TOKEN: &str = "since CVE-2023-2088 (OSSA-2023-003) Cinder answers 409 to every in-use volume detach or attachment delete that carries no service token (volumes stay attached or stuck detaching), and long operations (live migration, snapshot, boot from volume) fail with 401 once the user's token expires (nova bug 1571722); nova-status upgrade check fails";

/// Keystone's default `allow_expired_window` (2 days), the fix when none is stated.
const DEFAULT_WINDOW: u64 = 48 * 3600;

/// The keystone.conf given with `--identity`.
pub(crate) struct IdentityInput {
    pub file: String,
    pub ini: IniFile,
    /// `None` when `[token]`/`[fernet_tokens]` themselves hold invalid values.
    pub config: Option<IdentityConfig>,
}

/// A `--sender` file and what could be read of its `[service_user]`.
pub(crate) struct Sender {
    pub file: String,
    /// `[service_user]`'s auth options (following `auth_section`), when complete.
    pub auth: Option<AuthConfig>,
    /// Where `auth_url` is set (in the `auth_section` target when there is one).
    pub auth_url_at: Location,
    pub session: SessionConfig,
}

/// A `--receiver` file and what could be read of its `[keystone_authtoken]`.
pub(crate) struct Receiver {
    pub file: String,
    pub auth: Option<AuthConfig>,
    pub config: Option<AuthTokenConfig>,
    /// `service_token_roles` (keystonemiddleware's default `service` when unset).
    pub roles: Vec<String>,
}

/// Everything read from the files.
pub(crate) struct Inputs {
    pub identity: Option<IdentityInput>,
    pub senders: Vec<Sender>,
    pub receivers: Vec<Receiver>,
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn load(path: &Path) -> Result<IniFile, InputError> {
    IniFile::load(path).map_err(InputError::Config)
}

/// Reads every file and runs the static checks.
pub(crate) fn run(opts: &Options, report: &mut Report) -> Result<Inputs, InputError> {
    let identity = if opts.identity.is_empty() {
        None
    } else {
        let ini = IniFile::load_all(&opts.identity).map_err(InputError::Config)?;
        Some(read_identity(shown(&opts.identity[0]), ini, report))
    };
    let mut senders = Vec::new();
    for path in &opts.senders {
        let ini = load(path)?;
        senders.push(check_sender(shown(path), &ini, report));
    }
    let mut receivers = Vec::new();
    for path in &opts.receivers {
        let ini = load(path)?;
        receivers.push(check_receiver(
            shown(path),
            &ini,
            &opts.service_roles,
            identity.as_ref().and_then(|i| i.config.as_ref()),
            report,
        ));
    }
    if let Some(id) = &identity {
        check_identity(id, opts.longest_operation, opts.rotation_interval, report);
    }
    check_endpoints(&senders, &receivers, report);
    Ok(Inputs {
        identity,
        senders,
        receivers,
    })
}

// ----- helpers -------------------------------------------------------------------------------

/// Where a configuration error points: its file and line, section and option.
fn error_location(err: &ConfigError, file: &str, section: &str) -> Location {
    let mut loc = Location::file(file);
    loc.section = Some(section.to_string());
    match err.kind() {
        ConfigErrorKind::Value {
            origin,
            section,
            option,
            ..
        } => {
            loc.set_origin(origin);
            loc.section = Some(section.clone());
            loc.option = Some(option.clone());
        }
        ConfigErrorKind::Section {
            origin,
            section,
            reason,
        } => {
            loc.set_origin(origin);
            loc.section = Some(section.clone());
            // "option X is not set: ..." names the missing option.
            loc.option = reason
                .strip_prefix("option ")
                .and_then(|r| r.split_once(" is not set"))
                .map(|(o, _)| o.to_string());
        }
        ConfigErrorKind::Syntax { origin, .. } => loc.set_origin(origin),
        ConfigErrorKind::Read { .. }
        | ConfigErrorKind::Environment { .. }
        | ConfigErrorKind::Cloud { .. } => {}
    }
    loc
}

fn invalid_value(err: &ConfigError, file: &str, section: &str, what: &str) -> Finding {
    Finding::error(
        Code::ConfigInvalidValue,
        error_location(err, file, section),
        err.to_string(),
    )
    .impact(what)
    .fix("correct the value named in the message")
}

fn user_args(user: &UserRef) -> String {
    match user {
        UserRef::Id(id) => format!("--user {id}"),
        UserRef::Name { name, domain } => {
            format!("--user {name} --user-domain {}", domain_arg(domain))
        }
    }
}

fn domain_arg(d: &DomainRef) -> &str {
    match d {
        DomainRef::Id(s) | DomainRef::Name(s) => s,
    }
}

fn scope_args(scope: &Scope) -> String {
    match scope {
        Scope::Project(ProjectRef::Id(id)) => format!("--project {id}"),
        Scope::Project(ProjectRef::Name { name, domain }) => {
            format!("--project {name} --project-domain {}", domain_arg(domain))
        }
        Scope::Domain(d) => format!("--domain {}", domain_arg(d)),
        Scope::System => "--system all".to_string(),
        // A trust's roles are the trustor's to give: no grant on the trustee helps.
        Scope::Trust(id) => format!("--project <the project of trust {id}> (grant the trustor, whose roles the trust passes on)"),
        Scope::Default | Scope::Unscoped => {
            "--project service --project-domain Default".to_string()
        }
    }
}

/// The `openstack role add` that gives the user of `auth` `role` where its token is scoped.
pub(crate) fn role_add_command(auth: &AuthConfig, role: &str) -> String {
    let user = match &auth.credentials {
        Credentials::Password { user, .. } => user_args(user),
        Credentials::ApplicationCredential { .. } => {
            return format!("openstack role add --user <owner of the application credential> --project <its project> {role} (then create a new application credential: existing ones keep their roles)");
        }
        Credentials::Token { .. } => "--user <the token's user>".to_string(),
    };
    format!(
        "openstack role add {user} {} {role}",
        scope_args(&auth.scope)
    )
}

pub(crate) fn describe_user(auth: &AuthConfig) -> String {
    match &auth.credentials {
        Credentials::Password { user, .. } => user.describe(),
        Credentials::ApplicationCredential { .. } => "an application credential".to_string(),
        Credentials::Token { .. } => "a fixed token".to_string(),
    }
}

/// scheme, host, port and the v3 path: two auth URLs naming the same identity API compare equal
/// (`http://ks:5000`, `http://ks:5000/v3/` and `http://ks/v3` on port 80 included).
fn endpoint_key(url: &Url) -> String {
    let v3 = v3_url_from_path(url);
    format!(
        "{}://{}:{}{}",
        v3.scheme(),
        v3.host_str().unwrap_or("").to_ascii_lowercase(),
        v3.port_or_known_default().unwrap_or(0),
        v3.path().trim_end_matches('/')
    )
}

// ----- identity ------------------------------------------------------------------------------

fn read_identity(file: String, ini: IniFile, report: &mut Report) -> IdentityInput {
    let config = match IdentityConfig::from_ini_with_ignored(&ini) {
        Ok((c, _)) => Some(c),
        Err(_) => {
            // A real Keystone's keystone.conf holds sections and drivers Baton's server refuses;
            // the doctor needs only these, read with the same reader.
            let subset = ini.retain_sections(&["token", "fernet_tokens", "revoke", "continuation"]);
            match IdentityConfig::from_ini_with_ignored(&subset) {
                Ok((c, _)) => Some(c),
                Err(e) => {
                    report.push(invalid_value(
                        &e,
                        &file,
                        "token",
                        "Keystone refuses to start with this value; the token lifetime and key retention checks were skipped",
                    ));
                    None
                }
            }
        }
    };
    IdentityInput { file, ini, config }
}

fn check_identity(
    id: &IdentityInput,
    longest: Option<Duration>,
    interval: Option<Duration>,
    report: &mut Report,
) {
    let Some(config) = &id.config else {
        return;
    };
    let r = Retention::from_config(config);
    if !continuation_covers(id, config, &r, longest, report) {
        check_window(id, &r, longest, report);
    }
    check_key_retention(id, &r, interval, report);
    check_revocation(id, config, report);
}

/// A window of 0 or shorter than the longest operation is no error when `[continuation]` lets
/// every sender run operations that long (Baton's continuation tokens, docs/continuation.md):
/// a warning says what that relies on. Whether it applied.
fn continuation_covers(
    id: &IdentityInput,
    config: &baton_config::IdentityConfig,
    r: &Retention,
    longest: Option<Duration>,
    report: &mut Report,
) -> bool {
    let c = &config.continuation;
    let longest = longest.map(|d| d.as_secs());
    let short = r.allow_expired_window == 0 || longest.is_some_and(|l| r.allow_expired_window < l);
    let shortest_sender = c.senders.iter().map(|(_, s)| u64::from(*s)).min();
    let covered = shortest_sender.is_some_and(|s| longest.is_none_or(|l| s >= l));
    if !short || !covered {
        return false;
    }
    let names: Vec<&str> = c.senders.iter().map(|(n, _)| n.as_str()).collect();
    report.push(
        Finding::warning(
            Code::IdentityWindowContinuation,
            Location::option(&id.ini, &id.file, "token", "allow_expired_window"),
            format!(
                "allow_expired_window = {}, and [continuation] lets {} run operations of at least {} with continuation tokens",
                human(r.allow_expired_window),
                names.join(", "),
                human(shortest_sender.unwrap_or_default())
            ),
        )
        .impact(
            "long operations survive only where the sender asks for continuation tokens (Baton's client, OnwardCalls::operation_session_for) and the receivers validate at a Baton server; a Keystone node or a sender using the plain service-token pair still fails with 401 after the user token expires",
        )
        .fix("keep it so if every sender and identity node is Baton; otherwise [token] allow_expired_window must cover the longest operation"),
    );
    true
}

/// `[token] allow_expired_window` against the longest operation (`--longest-operation`).
fn check_window(id: &IdentityInput, r: &Retention, longest: Option<Duration>, report: &mut Report) {
    let (ini, file) = (&id.ini, id.file.as_str());
    let window = r.allow_expired_window;
    let longest = longest.map(|d| d.as_secs());
    let loc_window = Location::option(ini, file, "token", "allow_expired_window");
    let wanted_window = longest.map_or(DEFAULT_WINDOW, |l| l.max(1));
    if window == 0 {
        report.push(
            Finding::error(
                Code::IdentityWindowZero,
                loc_window,
                "allow_expired_window = 0: the identity server refuses every expired user token, even when a valid service token vouches for it",
            )
            .impact(format!(
                "any operation that outlives the user's token (expiration {}) fails part-way with 401: live migrations, volume attach/detach, snapshots and image uploads are left half done",
                human(r.expiration)
            ))
            .fix(format!("[token] allow_expired_window = {wanted_window}")),
        );
    } else if let Some(l) = longest.filter(|l| window < *l) {
        report.push(
            Finding::error(
                Code::IdentityWindowShort,
                loc_window,
                format!(
                    "allow_expired_window = {} is shorter than the longest operation, {}",
                    human(window),
                    human(l)
                ),
            )
            .impact(format!(
                "an operation that runs longer than expiration + allow_expired_window ({}) fails with 401 at its next inter-service call, although the service token is valid",
                human(r.required())
            ))
            .fix(format!(
                "[token] allow_expired_window = {l} (then recheck [fernet_tokens] max_active_keys: it must cover expiration + allow_expired_window)"
            )),
        );
    } else {
        let stated = match longest {
            Some(l) => format!("covers the longest operation, {}", human(l)),
            None => "no --longest-operation was given to compare with".to_string(),
        };
        report.push(Finding::ok(
            Code::IdentityWindowOk,
            loc_window,
            format!("allow_expired_window = {}: {stated}", human(window)),
        ));
    }
}

/// `[fernet_tokens] max_active_keys` against the rotation interval: a key must outlive every
/// token it encrypted, allow_expired_window included.
fn check_key_retention(
    id: &IdentityInput,
    r: &Retention,
    interval: Option<Duration>,
    report: &mut Report,
) {
    let (ini, file) = (&id.ini, id.file.as_str());
    let check = r.check(interval);
    let loc_keys = Location::option(ini, file, "fernet_tokens", "max_active_keys");
    let shortest = check
        .min_interval
        .map(|m| format!(" or rotate no more often than every {}", human(m)))
        .unwrap_or_default();
    if r.max_active_keys <= 2 {
        let keys = check.min_keys.unwrap_or_else(|| r.min_keys(86_400));
        let per = if check.min_keys.is_some() {
            "for this rotation interval"
        } else {
            "for a daily rotation"
        };
        report.push(
            Finding::error(Code::IdentityFernetKeysTooFew, loc_keys, check.explanation)
                .impact("every fernet_rotate makes all tokens issued before it undecryptable: users and services get 401 right after each rotation, and no expired token can be rescued by a service token")
                .fix(format!("[fernet_tokens] max_active_keys = {keys} ({per})")),
        );
        return;
    }
    match check.verdict {
        Verdict::Safe => report.push(Finding::ok(
            Code::IdentityFernetRetentionOk,
            loc_keys,
            check.explanation,
        )),
        Verdict::Unsafe => {
            let keys = check.min_keys.unwrap_or(r.max_active_keys);
            report.push(
                Finding::error(Code::IdentityFernetRetentionShort, loc_keys, check.explanation)
                    .impact("tokens minted shortly before a rotation become undecryptable before expiration + allow_expired_window has passed: expired user tokens carried by service tokens are refused (404 at the identity server, 401 at the receiver), the exact case allow_expired exists for")
                    .fix(format!("[fernet_tokens] max_active_keys = {keys}{shortest}")),
            );
        }
        Verdict::Unchecked => report.push(
            Finding::warning(Code::IdentityRotationIntervalUnknown, loc_keys, check.explanation)
                .impact("not known: a fernet_rotate schedule faster than the interval above makes acceptable tokens undecryptable")
                .fix("state the schedule of fernet_rotate, e.g. --rotation-interval 1d"),
        ),
    }
}

fn check_revocation(id: &IdentityInput, config: &IdentityConfig, report: &mut Report) {
    let buffer = u64::from(config.revoke.expiration_buffer);
    let window = u64::from(config.token.allow_expired_window);
    if window > buffer {
        report.push(
            Finding::warning(
                Code::IdentityRevocationPrunedEarly,
                Location::option(&id.ini, &id.file, "revoke", "expiration_buffer"),
                format!(
                    "Keystone prunes a revocation event expiration + expiration_buffer ({}) after it, but accepts revoked tokens' data with allow_expired for expiration + allow_expired_window ({})",
                    human(u64::from(config.token.expiration) + buffer),
                    human(u64::from(config.token.expiration) + window)
                ),
            )
            .impact("with Keystone as the identity server (Baton keeps events for the whole window), a revoked token (logout, password change) validates again through allow_expired once its event is pruned, for whoever holds a service-role token")
            .fix(format!("[revoke] expiration_buffer = {window}")),
        );
    }
}

// ----- senders -------------------------------------------------------------------------------

fn check_sender(file: String, ini: &IniFile, report: &mut Report) -> Sender {
    let mut sender = Sender {
        file: file.clone(),
        auth: None,
        auth_url_at: Location::file(&file),
        session: SessionConfig::default(),
    };
    if ini.section(SERVICE_USER).is_none() {
        let mut loc = Location::file(&file);
        loc.section = Some(SERVICE_USER.into());
        report.push(
            Finding::error(
                Code::SenderServiceUserMissing,
                loc,
                "no [service_user] section: this service sends no service token with its calls to other services",
            )
            .impact(NO_SERVICE_TOKEN)
            .fix("add [service_user] with send_service_user_token = true, auth_type = password, auth_url, username, password, user_domain_name, project_name = service, project_domain_name"),
        );
        check_onward_auth(&file, ini, report);
        return sender;
    }
    let before = report.count(crate::Severity::Error);
    let send = check_send_flag(&file, ini, report);
    let auth_section_note = match ini.get(SERVICE_USER, "auth_section") {
        Some(v) => format!(" (auth_section = {})", v.raw().trim()),
        None => String::new(),
    };
    match AuthConfig::from_ini(ini, SERVICE_USER) {
        Ok(None) => report.push(
            Finding::error(
                Code::SenderAuthTypeMissing,
                Location::option(ini, &file, SERVICE_USER, "auth_type"),
                format!("[service_user] has no auth_type{auth_section_note}"),
            )
            .impact("Nova logs \"Unable to load auth from [service_user] configuration\" and silently sends only the user's token (nova bug 1733642); Cinder refuses to start (ServiceUserTokenNoAuth). Either way no service token is sent")
            .fix("[service_user] auth_type = password (with auth_url, username, password, user_domain_name, project_name, project_domain_name)"),
        ),
        Err(e) => report.push(sender_auth_unreadable(&e, &file)),
        Ok(Some(auth)) => {
            check_sender_scope_and_session(&mut sender, ini, &auth, report);
            if send == Some(true) && report.count(crate::Severity::Error) == before {
                report.push(Finding::ok(
                    Code::SenderServiceUserOk,
                    Location::section(ini, &file, SERVICE_USER),
                    format!(
                        "sends service tokens as {} from {}",
                        describe_user(&auth),
                        auth.auth_url
                    ),
                ));
            }
            sender.auth_url_at = Location::option(ini, &file, &auth.section, "auth_url");
            sender.auth = Some(auth);
        }
    }
    check_onward_auth(&file, ini, report);
    sender
}

/// `send_service_user_token`: must be true for the service to send service tokens at all.
fn check_send_flag(file: &str, ini: &IniFile, report: &mut Report) -> Option<bool> {
    let (send, readable) = match ini.get_bool(SERVICE_USER, "send_service_user_token") {
        Ok(v) => (v, true),
        Err(e) => {
            report.push(invalid_value(
                &e,
                file,
                SERVICE_USER,
                "the service refuses to start",
            ));
            (None, false)
        }
    };
    if readable && send != Some(true) {
        let state = if send.is_none() {
            "is not set (the default is false)"
        } else {
            "is false"
        };
        report.push(
            Finding::error(
                Code::SenderServiceTokenDisabled,
                Location::option(ini, file, SERVICE_USER, "send_service_user_token"),
                format!("send_service_user_token {state}: calls to other services carry only the user's token"),
            )
            .impact(NO_SERVICE_TOKEN)
            .fix("[service_user] send_service_user_token = true"),
        );
    }
    send
}

/// The `Finding` for a `[service_user]` whose auth options cannot be read: a missing
/// `auth_section` target, or an option the plugin needs.
fn sender_auth_unreadable(e: &ConfigError, file: &str) -> Finding {
    let loc = error_location(e, file, SERVICE_USER);
    let code = if loc.option.as_deref() == Some("auth_section") {
        Code::SenderAuthSectionMissing
    } else {
        Code::SenderAuthIncomplete
    };
    let fix = if code == Code::SenderAuthSectionMissing {
        "add the section auth_section names (with auth_type, auth_url, username, password, ...), or point auth_section at the section that has them".to_string()
    } else {
        "set the option named in the message".to_string()
    };
    Finding::error(code, loc, e.to_string())
        .impact("the service user cannot authenticate: no service token is sent (Nova falls back to user-only calls, Cinder fails its calls to Nova and Glance)")
        .fix(fix)
}

/// The service user's scope (a service token needs roles, so a project) and the session
/// options the service will call with.
fn check_sender_scope_and_session(
    sender: &mut Sender,
    ini: &IniFile,
    auth: &AuthConfig,
    report: &mut Report,
) {
    // An application credential carries its own project: no scope options to check.
    let own_scope = auth.auth_type == AuthType::V3ApplicationCredential;
    if !own_scope && matches!(auth.scope, Scope::Default | Scope::Unscoped) {
        report.push(
            Finding::warning(
                Code::SenderServiceUserUnscoped,
                Location::option(ini, &sender.file, &auth.section, "project_name"),
                format!("the service user {} asks for no scope: its token is scoped to its default project if it has one, else unscoped and without roles", describe_user(auth)),
            )
            .impact("an unscoped service token has no roles, so receivers refuse it (service_token_roles) and expired user tokens are not rescued")
            .fix(format!("[{}] project_name = service and project_domain_name = Default", auth.section)),
        );
    }
    // Session options stay in [service_user] even with auth_section (keystoneauth).
    match SessionConfig::from_ini(ini, SERVICE_USER) {
        Ok(s) => sender.session = s,
        Err(e) => report.push(
            Finding::warning(
                Code::SenderSessionOptionUnreadable,
                error_location(&e, &sender.file, SERVICE_USER),
                e.to_string(),
            )
            .impact("on the service's own host this stops every call made with the service token (the CA or client certificate cannot be loaded); on another host it only limits the --live checks")
            .fix("point the option at a readable file, or run the doctor on the service's host"),
        ),
    }
}

/// Nova's `[cinder]`/`[neutron]` (and Cinder's or Neutron's `[nova]`) authenticate the calls
/// made without a user token: periodic tasks, `nova-manage`, notifications.
fn check_onward_auth(file: &str, ini: &IniFile, report: &mut Report) {
    for section in ["cinder", "neutron", "nova"] {
        let Some(s) = ini.section(section) else {
            continue;
        };
        if s.entries().next().is_none() {
            continue;
        }
        let problem = match AuthConfig::from_ini(ini, section) {
            Ok(Some(_)) => continue,
            Ok(None) => format!("[{section}] has no auth_type"),
            Err(e) => e.to_string(),
        };
        report.push(
            Finding::warning(
                Code::SenderOnwardAuthMissing,
                Location::option(ini, file, section, "auth_type"),
                problem,
            )
            .impact(format!("calls to {section} made without a user's token (periodic tasks, nova-manage volume_attachment refresh, external events) cannot authenticate; since OSSA-2023-003 errata 1 these calls carry the service token on top of this auth"))
            .fix(format!("[{section}] auth_type = password with auth_url, username, password, user_domain_name, project_name, project_domain_name")),
        );
    }
}

// ----- receivers -----------------------------------------------------------------------------

fn check_receiver(
    file: String,
    ini: &IniFile,
    service_roles: &[String],
    identity: Option<&IdentityConfig>,
    report: &mut Report,
) -> Receiver {
    let mut receiver = Receiver {
        file: file.clone(),
        auth: None,
        config: None,
        roles: vec![baton_client::SERVICE_ROLE.to_string()],
    };
    if ini.section(AUTHTOKEN).is_none() {
        let mut loc = Location::file(&file);
        loc.section = Some(AUTHTOKEN.into());
        report.push(
            Finding::error(
                Code::ReceiverAuthtokenMissing,
                loc,
                "no [keystone_authtoken] section: the auth_token middleware of this service is not configured",
            )
            .impact("the service cannot validate any token: every API call fails (401 or 503), service tokens included")
            .fix("add [keystone_authtoken] with www_authenticate_uri, auth_url, auth_type = password, username, password, user_domain_name, project_name, project_domain_name, service_token_roles = service, service_token_roles_required = true"),
        );
        return receiver;
    }
    let before = report.count(crate::Severity::Error);
    read_receiver_auth(&mut receiver, ini, report);
    check_roles_required(&file, ini, report);
    check_service_roles(&mut receiver, ini, service_roles, report);
    check_memcache(&file, ini, report);
    check_receiver_window(&file, ini, identity, report);
    if report.count(crate::Severity::Error) == before {
        report.push(Finding::ok(
            Code::ReceiverServiceTokenOk,
            Location::section(ini, &file, AUTHTOKEN),
            format!(
                "accepts service tokens holding one of [{}]",
                receiver.roles.join(", ")
            ),
        ));
    }
    receiver
}

/// The middleware's own service user (`auth_type` and its options), then the whole
/// `[keystone_authtoken]` as the middleware reads it.
fn read_receiver_auth(receiver: &mut Receiver, ini: &IniFile, report: &mut Report) {
    match AuthConfig::from_ini(ini, AUTHTOKEN) {
        Ok(Some(auth)) => receiver.auth = Some(auth),
        Ok(None) => report.push(
            Finding::error(
                Code::ReceiverAuthIncomplete,
                Location::option(ini, &receiver.file, AUTHTOKEN, "auth_type"),
                "[keystone_authtoken] has no auth_type: the middleware has no credentials of its own to validate tokens with",
            )
            .impact("every request to this service is refused with 503 (the middleware cannot ask the identity server)")
            .fix("[keystone_authtoken] auth_type = password with auth_url, username, password, user_domain_name, project_name, project_domain_name"),
        ),
        Err(e) => report.push(
            Finding::error(
                Code::ReceiverAuthIncomplete,
                error_location(&e, &receiver.file, AUTHTOKEN),
                e.to_string(),
            )
            .impact("every request to this service is refused with 503 (the middleware cannot authenticate to validate tokens)")
            .fix("set the option named in the message"),
        ),
    }
    if receiver.auth.is_some() {
        match AuthTokenConfig::from_ini(ini, AUTHTOKEN) {
            Ok(c) => receiver.config = Some(c),
            Err(e) => report.push(invalid_value(
                &e,
                &receiver.file,
                AUTHTOKEN,
                "the auth_token middleware refuses to load, so the service does not start",
            )),
        }
    }
}

/// `service_token_roles_required`: without it any valid token passes as a service token.
fn check_roles_required(file: &str, ini: &IniFile, report: &mut Report) {
    let required_loc = Location::option(ini, file, AUTHTOKEN, "service_token_roles_required");
    match ini.get_bool(AUTHTOKEN, "service_token_roles_required") {
        Err(e) => report.push(invalid_value(&e, file, AUTHTOKEN, "the middleware refuses to load")),
        Ok(Some(true)) => {}
        Ok(Some(false)) => report.push(
            Finding::error(
                Code::ReceiverRolesNotRequired,
                required_loc,
                "service_token_roles_required = false: any valid token sent as X-Service-Token is accepted as a service token, with or without a service role",
            )
            .impact("insecure (keystonemiddleware bug 2129016): any user can add their own token as X-Service-Token to bypass application-credential access rules and make a call look like a service's; Cinder then answers 409 instead of 401 to misconfigured senders")
            .fix("[keystone_authtoken] service_token_roles_required = true"),
        ),
        Ok(None) => report.push(
            Finding::warning(
                Code::ReceiverRolesRequiredUnset,
                required_loc,
                "service_token_roles_required is not set: keystonemiddleware up to 12.x defaults to false (insecure), 13.0 and Baton to true",
            )
            .impact("the behaviour changes with the keystonemiddleware package: on <= 12.x any valid token counts as a service token; upgrading to 13 starts refusing senders whose users lack the role")
            .fix("[keystone_authtoken] service_token_roles_required = true"),
        ),
    }
}

/// `service_token_roles` against the roles the service users hold (`--service-role`), and
/// never `admin`.
fn check_service_roles(
    receiver: &mut Receiver,
    ini: &IniFile,
    service_roles: &[String],
    report: &mut Report,
) {
    let roles_loc = Location::option(ini, &receiver.file, AUTHTOKEN, "service_token_roles");
    match ini.get_list(AUTHTOKEN, "service_token_roles") {
        Err(e) => report.push(invalid_value(
            &e,
            &receiver.file,
            AUTHTOKEN,
            "the middleware refuses to load",
        )),
        Ok(roles) => {
            if let Some(roles) = roles {
                receiver.roles = roles;
            }
            let accepted: Vec<&String> = receiver
                .roles
                .iter()
                .filter(|r| service_roles.contains(r))
                .collect();
            if accepted.is_empty() {
                report.push(
                    Finding::error(
                        Code::ReceiverRolesMismatch,
                        roles_loc.clone(),
                        format!(
                            "service_token_roles = [{}] holds none of the roles the service users hold ([{}]; role names compare exactly)",
                            receiver.roles.join(", "),
                            service_roles.join(", ")
                        ),
                    )
                    .impact("service tokens from the other services are refused (401 with service_token_roles_required) or do not rescue expired user tokens; Cinder treats Nova's detach as a user call and answers 409")
                    .fix(format!(
                        "[keystone_authtoken] service_token_roles = {} (or give the service users a listed role: openstack role add --user <service user> --project service {})",
                        service_roles.first().map_or("service", String::as_str),
                        receiver.roles.first().map_or("service", String::as_str)
                    )),
                );
            }
            if receiver
                .roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case("admin"))
            {
                report.push(
                    Finding::warning(
                        Code::ReceiverAdminIsServiceRole,
                        roles_loc,
                        "service_token_roles accepts admin: every admin user's token counts as a service token",
                    )
                    .impact("any cloud administrator (or anything holding an admin token) can vouch for expired user tokens and pass Cinder's service-only checks; an over-privileged identity proves service-ness (kolla-ansible bug 2049762)")
                    .fix("[keystone_authtoken] service_token_roles = service, and openstack role add --user <service user> --project service service"),
                );
            }
        }
    }
}

/// A memcached token cache needs `memcache_security_strategy`, or anyone reaching memcached
/// can read or forge validations.
fn check_memcache(file: &str, ini: &IniFile, report: &mut Report) {
    let memcached = ini
        .get(AUTHTOKEN, "memcached_servers")
        .is_some_and(|v| !v.raw().trim().is_empty());
    let strategy = ini
        .get(AUTHTOKEN, "memcache_security_strategy")
        .map(|v| v.raw().trim().to_ascii_lowercase())
        .unwrap_or_default();
    if memcached && matches!(strategy.as_str(), "" | "none") {
        report.push(
            Finding::warning(
                Code::ReceiverMemcacheUnprotected,
                Location::option(ini, file, AUTHTOKEN, "memcached_servers"),
                "token validations are cached in memcached as plain data (memcache_security_strategy is not set)",
            )
            .impact("whoever can read memcached reads every user's token data; whoever can write to it can plant a validation result and act as any user")
            .fix("[keystone_authtoken] memcache_security_strategy = MAC and memcache_secret_key = <a long random secret>"),
        );
    }
}

/// Baton's `allow_expired_window` should equal the identity server's `[token]` one.
fn check_receiver_window(
    file: &str,
    ini: &IniFile,
    identity: Option<&IdentityConfig>,
    report: &mut Report,
) {
    if let (Some(id), Some(v)) = (identity, ini.get(AUTHTOKEN, "allow_expired_window")) {
        let server = u64::from(id.token.allow_expired_window);
        if let Ok(Some(n)) = ini.get_int(AUTHTOKEN, "allow_expired_window", Some(0), None) {
            if n as u64 != server {
                let mut loc = Location::file(file);
                loc.set_origin(v.origin());
                loc.section = Some(AUTHTOKEN.into());
                loc.option = Some("allow_expired_window".into());
                report.push(
                    Finding::warning(
                        Code::ReceiverWindowMismatch,
                        loc,
                        format!("Baton's allow_expired_window = {} differs from the identity server's [token] allow_expired_window = {}", human(n as u64), human(server)),
                    )
                    .impact("Baton's middleware bounds how long it reuses a cached allow_expired validation by this value: a longer one honours expired tokens the identity server would refuse, a shorter one asks the identity server more often")
                    .fix(format!("[keystone_authtoken] allow_expired_window = {server}")),
                );
            }
        }
    }
}

// ----- across files --------------------------------------------------------------------------

fn check_endpoints(senders: &[Sender], receivers: &[Receiver], report: &mut Report) {
    let known: Vec<(&str, String, &Url)> = receivers
        .iter()
        .filter_map(|r| {
            r.auth
                .as_ref()
                .map(|a| (r.file.as_str(), endpoint_key(&a.auth_url), &a.auth_url))
        })
        .collect();
    if known.is_empty() {
        return;
    }
    for s in senders {
        let Some(auth) = &s.auth else { continue };
        let key = endpoint_key(&auth.auth_url);
        if known.iter().any(|(_, k, _)| *k == key) {
            continue;
        }
        // One entry per URL, with the files using it.
        let mut theirs: Vec<(String, Vec<&str>)> = Vec::new();
        for (f, _, u) in &known {
            match theirs.iter_mut().find(|(url, _)| *url == u.as_str()) {
                Some((_, files)) => files.push(f),
                None => theirs.push((u.to_string(), vec![f])),
            }
        }
        let theirs: Vec<String> = theirs
            .iter()
            .map(|(u, files)| format!("{u} ({})", files.join(", ")))
            .collect();
        let loc = s.auth_url_at.clone();
        report.push(
            Finding::warning(
                Code::SenderIdentityEndpointMismatch,
                loc,
                format!(
                    "the service user authenticates at {}, but the receivers' middleware authenticates at {}",
                    auth.auth_url,
                    theirs.join(", ")
                ),
            )
            .impact("if these are different identity deployments (another region, another key repository), the receivers cannot validate this service's tokens and refuse its calls; if both names reach the same Keystone with the same keys nothing breaks (baton doctor --live tells which)")
            .fix(format!(
                "[{}] auth_url = {} (the receivers' identity endpoint)",
                auth.section, known[0].2
            )),
        );
    }
}
