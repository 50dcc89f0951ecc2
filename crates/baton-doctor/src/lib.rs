//! `baton doctor`: finds which of the three places that must agree for service tokens is
//! misconfigured — each sending service's `[service_user]`, each receiving service's
//! `[keystone_authtoken]`, and the identity server's keystone.conf — before users find out from
//! a failed live migration or a volume stuck detaching.
//!
//! This crate owns:
//!
//! * the static checks ([`diagnose_static`]): Nova, Cinder, Glance and Neutron files read as
//!   they are written, with the readers the services use (baton-config's [`IniFile`] and
//!   [`IdentityConfig`](baton_config::IdentityConfig), baton-client's
//!   [`AuthConfig`](baton_client::AuthConfig) and [`SessionConfig`](baton_client::SessionConfig),
//!   baton-authtoken's [`AuthTokenConfig`](baton_authtoken::AuthTokenConfig)), each reading only
//!   its own sections;
//! * the live checks ([`diagnose`] with [`Options::live`]): each service user and middleware
//!   user authenticates, holds an accepted role on the right project, and the production
//!   sequence (service token, then the user token with `allow_expired=1`) passes; the clock
//!   offset to the identity server;
//! * the Fernet retention arithmetic and the decision behind
//!   `baton manage fernet_rotate --rotation-interval` ([`Retention`]);
//! * the report ([`Report`]): one line per finding, or the JSON document of `docs/doctor.md`,
//!   with stable [`Code`]s and the exit status.
//!
//! No finding, message or log line holds a password, secret or token: values of secret options
//! are never read into messages, and tokens are shown only as SHA-256 fingerprints.
//!
//! [`IniFile`]: baton_config::IniFile

mod checks;
pub mod live;
pub mod report;
pub mod retention;

use std::path::PathBuf;
use std::time::Duration;

use baton_config::ConfigError;

pub use live::{clock_finding, ClockSample, LiveOptions};
pub use report::{
    Code, Finding, Location, Report, Severity, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, JSON_VERSION,
};
pub use retention::{human, rotate_decision, Retention, RotationCheck, Verdict};

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The identity server's keystone.conf (several: layered, later ones win).
    pub identity: Vec<PathBuf>,
    /// Files of services that send service tokens (`[service_user]`): nova.conf, cinder.conf.
    pub senders: Vec<PathBuf>,
    /// Files of services that receive them (`[keystone_authtoken]`): cinder.conf,
    /// glance-api.conf, neutron.conf, nova.conf.
    pub receivers: Vec<PathBuf>,
    /// The longest operation users run (a live migration, a large image upload):
    /// `allow_expired_window` must cover it.
    pub longest_operation: Option<Duration>,
    /// How often `fernet_rotate` runs.
    pub rotation_interval: Option<Duration>,
    /// The roles the service users hold (default `service`); receivers must accept one.
    pub service_roles: Vec<String>,
    /// Run the live checks too.
    pub live: Option<LiveOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: Vec::new(),
            senders: Vec::new(),
            receivers: Vec::new(),
            longest_operation: None,
            rotation_interval: None,
            service_roles: vec![baton_client::SERVICE_ROLE.to_string()],
            live: None,
        }
    }
}

/// Why the doctor could not run at all (exit status [`EXIT_USAGE`]). One line.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read or is not oslo.config INI.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The options make no sense together.
    #[error("{0}")]
    Usage(String),
}

fn validate(opts: &Options) -> Result<(), InputError> {
    if opts.identity.is_empty() && opts.senders.is_empty() && opts.receivers.is_empty() {
        return Err(InputError::Usage(
            "nothing to check: give --identity, --sender and/or --receiver files".into(),
        ));
    }
    if opts.rotation_interval.is_some_and(|d| d.is_zero()) {
        return Err(InputError::Usage(
            "--rotation-interval must be above 0".into(),
        ));
    }
    if opts.service_roles.is_empty() {
        return Err(InputError::Usage("--service-role must name a role".into()));
    }
    Ok(())
}

/// The static checks only: reads the files, never the network.
pub fn diagnose_static(opts: &Options) -> Result<Report, InputError> {
    validate(opts)?;
    let mut report = Report::default();
    checks::run(opts, &mut report)?;
    Ok(report)
}

/// The static checks, then the live ones when [`Options::live`] is set.
pub async fn diagnose(opts: &Options) -> Result<Report, InputError> {
    validate(opts)?;
    let mut report = Report::default();
    let inputs = checks::run(opts, &mut report)?;
    if let Some(live) = &opts.live {
        live::run(&inputs, opts, live, &mut report).await;
    }
    Ok(report)
}
