//! Findings and the report: severities, the stable finding codes, text and JSON output, and the
//! exit status.

use std::fmt;

use baton_config::{IniFile, Origin};
use serde::Serialize;

/// How bad a finding is. Ordered: `Ok < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Works today, but is insecure, fragile or could not be checked fully.
    Warning,
    /// Something users will hit: a refused call, a stuck volume, a failed migration.
    Error,
}

impl Severity {
    /// The word shown in reports and JSON (`ok`, `warning`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// Every finding code. The string forms are stable: scripts match on them, and
        /// `docs/doctor.md` documents each one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable string form, e.g. `sender.service_token_disabled`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Code::$variant => $name, )*
                }
            }
        }
    };
}

codes! {
    /// An option has a value the service (or Keystone) would refuse to start with.
    ConfigInvalidValue = "config.invalid_value",

    /// `[token] allow_expired_window = 0`: service tokens can no longer rescue expired tokens.
    IdentityWindowZero = "identity.allow_expired_window_zero",
    /// `[token] allow_expired_window` shorter than `--longest-operation`.
    IdentityWindowShort = "identity.allow_expired_window_short",
    /// `allow_expired_window` is long enough.
    IdentityWindowOk = "identity.allow_expired_window_ok",
    /// `allow_expired_window` is 0 or short, and `[continuation]` carries the senders'
    /// operations instead (Baton only).
    IdentityWindowContinuation = "identity.continuation_covers_operations",
    /// `[fernet_tokens] max_active_keys` of 1 or 2: every rotation loses live tokens.
    IdentityFernetKeysTooFew = "identity.fernet_keys_too_few",
    /// Keys are pruned before `expiration + allow_expired_window` has passed.
    IdentityFernetRetentionShort = "identity.fernet_retention_short",
    /// Keys outlive every acceptable token.
    IdentityFernetRetentionOk = "identity.fernet_retention_ok",
    /// No `--rotation-interval`: key retention could not be checked.
    IdentityRotationIntervalUnknown = "identity.rotation_interval_unknown",
    /// Keystone prunes revocation events before the allow_expired window closes.
    IdentityRevocationPrunedEarly = "identity.revocation_pruned_early",

    /// No `[service_user]` section at all.
    SenderServiceUserMissing = "sender.service_user_missing",
    /// `send_service_user_token` is false or unset.
    SenderServiceTokenDisabled = "sender.service_token_disabled",
    /// `[service_user]` has no `auth_type` (directly or through `auth_section`).
    SenderAuthTypeMissing = "sender.auth_type_missing",
    /// `auth_section` names a section that does not exist.
    SenderAuthSectionMissing = "sender.auth_section_missing",
    /// The auth options cannot authenticate (no password, no user domain, ...).
    SenderAuthIncomplete = "sender.auth_incomplete",
    /// No project (or domain/system) scope: the service token may carry no roles.
    SenderServiceUserUnscoped = "sender.service_user_unscoped",
    /// A session option (`cafile`, `certfile`, ...) cannot be used from this host.
    SenderSessionOptionUnreadable = "sender.session_option_unreadable",
    /// The service user authenticates at another identity endpoint than the receivers use.
    SenderIdentityEndpointMismatch = "sender.identity_endpoint_mismatch",
    /// Nova's `[cinder]`/`[neutron]` has no usable auth: calls without a user token fail.
    SenderOnwardAuthMissing = "sender.onward_auth_missing",
    /// `[service_user]` is complete and enabled.
    SenderServiceUserOk = "sender.service_user_ok",

    /// No `[keystone_authtoken]` section.
    ReceiverAuthtokenMissing = "receiver.authtoken_missing",
    /// The middleware's own credentials are incomplete.
    ReceiverAuthIncomplete = "receiver.auth_incomplete",
    /// `service_token_roles_required = false`.
    ReceiverRolesNotRequired = "receiver.service_token_roles_not_required",
    /// `service_token_roles_required` unset (the default changed in keystonemiddleware 13).
    ReceiverRolesRequiredUnset = "receiver.service_token_roles_required_unset",
    /// `service_token_roles` holds none of the roles the service users hold.
    ReceiverRolesMismatch = "receiver.service_token_roles_mismatch",
    /// `admin` is accepted as a service role.
    ReceiverAdminIsServiceRole = "receiver.admin_is_service_role",
    /// memcached token cache without `memcache_security_strategy`.
    ReceiverMemcacheUnprotected = "receiver.memcache_unprotected",
    /// Baton's `[keystone_authtoken] allow_expired_window` differs from the identity server's.
    ReceiverWindowMismatch = "receiver.allow_expired_window_mismatch",
    /// The receiver accepts the service users' tokens, and only theirs.
    ReceiverServiceTokenOk = "receiver.service_token_ok",

    /// The identity server cannot be reached.
    LiveIdentityUnreachable = "live.identity_unreachable",
    /// A sender's service user cannot authenticate.
    LiveServiceUserAuthFailed = "live.service_user_auth_failed",
    /// A receiver's middleware user cannot authenticate.
    LiveReceiverAuthFailed = "live.receiver_auth_failed",
    /// The receiver's token has no identity endpoint for its `interface` in the catalog.
    LiveReceiverNoIdentityEndpoint = "live.receiver_no_identity_endpoint",
    /// The receiver's user may not validate tokens (no `service` or `admin` role).
    LiveReceiverCannotValidate = "live.receiver_cannot_validate",
    /// The receiver's identity server does not recognise the sender's service token.
    LiveServiceTokenNotRecognised = "live.service_token_not_recognised",
    /// The service user's token holds none of the receiver's `service_token_roles`.
    LiveServiceUserMissingRole = "live.service_user_missing_role",
    /// The service role is assigned on another project than the one `[service_user]` names.
    LiveServiceRoleOnWrongProject = "live.service_role_on_wrong_project",
    /// The service user authenticates and holds an accepted role.
    LiveServiceUserOk = "live.service_user_ok",
    /// The `[service_user]` application credential expires before the longest operation would
    /// end (error), or within 30 days (warning).
    LiveAppCredExpiresSoon = "live.app_cred_expires_soon",
    /// The `[service_user]` application credential's access rules name none of a receiver's
    /// `service_type`.
    LiveAppCredAccessRules = "live.app_cred_access_rules",
    /// An expired user token was refused with `allow_expired=1`.
    LiveAllowExpiredRefused = "live.allow_expired_refused",
    /// A user token was refused for another reason than its expiry.
    LiveUserTokenRefused = "live.user_token_refused",
    /// The whole sequence passed.
    LiveProbeOk = "live.probe_ok",
    /// This host's clock and the identity server's disagree.
    LiveClockSkew = "live.clock_skew",
    /// Clocks agree.
    LiveClockOk = "live.clock_ok",
    /// The server issues tokens for another lifetime than the keystone.conf given says.
    LiveExpirationMismatch = "live.expiration_mismatch",
    /// A live node of the fleet holds other keys than the database's shared set.
    LiveFleetKeysDiffer = "live.fleet_keys_differ",
    /// Every live node of the fleet holds the same keys.
    LiveFleetOk = "live.fleet_ok",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a finding points: a file, and in it a line, a section and an option when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file as given on the command line; `None` for findings about the identity server
    /// as a whole (clock skew measured live, for instance).
    pub file: Option<String>,
    /// The line in that file, when the finding is about one option.
    pub line: Option<usize>,
    /// The section, e.g. `keystone_authtoken`.
    pub section: Option<String>,
    /// The option, e.g. `service_token_roles`.
    pub option: Option<String>,
}

impl Location {
    /// The whole file.
    pub fn file(file: &str) -> Location {
        Location {
            file: Some(file.to_string()),
            ..Location::default()
        }
    }

    /// `[section] option` of `file`: the line of its last value when set, else the line of the
    /// section header, else no line. A value from another file of a layered set (or from the
    /// environment) names that origin instead.
    pub fn option(ini: &IniFile, file: &str, section: &str, option: &str) -> Location {
        let mut loc = Location {
            file: Some(file.to_string()),
            line: None,
            section: Some(section.to_string()),
            option: Some(option.to_string()),
        };
        let origin = ini
            .get(section, option)
            .map(|v| v.origin())
            .or_else(|| ini.section(section).map(|s| s.origin()));
        if let Some(o) = origin {
            loc.set_origin(o);
        }
        loc
    }

    /// `[section]` of `file` (its header line when present).
    pub fn section(ini: &IniFile, file: &str, section: &str) -> Location {
        let mut loc = Location {
            file: Some(file.to_string()),
            line: None,
            section: Some(section.to_string()),
            option: None,
        };
        if let Some(s) = ini.section(section) {
            loc.set_origin(s.origin());
        }
        loc
    }

    /// Takes the file and line from `origin` (environment overrides keep the file given).
    pub fn set_origin(&mut self, origin: &Origin) {
        if let Origin::File { name, line } = origin {
            self.file = Some(name.to_string());
            self.line = Some(*line);
        }
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(f) = &self.file {
            out.push_str(f);
            if let Some(l) = self.line {
                out.push_str(&format!(":{l}"));
            }
        }
        if let Some(s) = &self.section {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("[{s}]"));
            if let Some(o) = &self.option {
                out.push_str(&format!(" {o}"));
            }
        }
        if out.is_empty() {
            out.push_str("(identity server)");
        }
        out
    }
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// Which check, as a stable code scripts can match on.
    pub code: Code,
    /// Where in the configuration it points.
    #[serde(flatten)]
    pub location: Location,
    /// What was found, with the numbers.
    pub message: String,
    /// What breaks for users because of it (empty for `ok`).
    pub impact: String,
    /// The exact fix: the line to set or the command to run (empty for `ok`).
    pub fix: String,
}

impl Finding {
    /// A finding without impact or fix yet.
    pub fn new(
        severity: Severity,
        code: Code,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            code,
            location,
            message: message.into(),
            impact: String::new(),
            fix: String::new(),
        }
    }

    /// Something users will hit.
    pub fn error(code: Code, location: Location, message: impl Into<String>) -> Self {
        Finding::new(Severity::Error, code, location, message)
    }

    /// Insecure, fragile, or not fully checked.
    pub fn warning(code: Code, location: Location, message: impl Into<String>) -> Self {
        Finding::new(Severity::Warning, code, location, message)
    }

    /// A check that passed.
    pub fn ok(code: Code, location: Location, message: impl Into<String>) -> Self {
        Finding::new(Severity::Ok, code, location, message)
    }

    /// Says what breaks for users.
    pub fn impact(mut self, impact: impl Into<String>) -> Self {
        self.impact = impact.into();
        self
    }

    /// Says the exact fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    /// The finding as one line of text.
    pub fn to_line(&self) -> String {
        let mut line = format!(
            "{:<7} {} {}: {}",
            self.severity.as_str(),
            self.code,
            self.location.describe(),
            self.message
        );
        if !self.impact.is_empty() {
            line.push_str(" | breaks: ");
            line.push_str(&self.impact);
        }
        if !self.fix.is_empty() {
            line.push_str(" | fix: ");
            line.push_str(&self.fix);
        }
        // Messages are built here, but values come from files: keep one finding on one line.
        line.replace(['\n', '\r'], " ")
    }
}

/// Exit status when no finding is an error.
pub const EXIT_OK: u8 = 0;
/// Exit status when at least one finding is an error.
pub const EXIT_ERRORS: u8 = 1;
/// Exit status when the doctor could not run (bad arguments, unreadable or unparsable file).
pub const EXIT_USAGE: u8 = 2;

/// Version of the JSON document's shape; raised only when a field changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

/// Every finding of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In the order the checks ran.
    pub findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
    ok: usize,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    exit_status: u8,
    summary: Summary,
    findings: &'a [Finding],
}

impl Report {
    /// Adds a finding.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// How many findings have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether any finding is an error (the doctor then exits with [`EXIT_ERRORS`]).
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// [`EXIT_ERRORS`] when any finding is an error, else [`EXIT_OK`].
    pub fn exit_status(&self) -> u8 {
        if self.has_errors() {
            EXIT_ERRORS
        } else {
            EXIT_OK
        }
    }

    /// Findings with this code.
    pub fn with_code(&self, code: Code) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.code == code).collect()
    }

    /// One line per finding, errors first, then a summary line.
    pub fn to_text(&self) -> String {
        let mut sorted: Vec<&Finding> = self.findings.iter().collect();
        // Stable: within a severity, the order the checks ran in.
        sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let mut out = String::new();
        for f in sorted {
            out.push_str(&f.to_line());
            out.push('\n');
        }
        out.push_str(&format!(
            "{} error(s), {} warning(s), {} ok\n",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Ok)
        ));
        out
    }

    /// [`Report::to_json`] as indented text with a final newline.
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The documented JSON document (see `docs/doctor.md`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(JsonReport {
            version: JSON_VERSION,
            exit_status: self.exit_status(),
            summary: Summary {
                errors: self.count(Severity::Error),
                warnings: self.count(Severity::Warning),
                ok: self.count(Severity::Ok),
            },
            findings: &self.findings,
        })
        .unwrap_or_else(|_| serde_json::json!({ "version": JSON_VERSION }))
    }
}
