//! `baton doctor`: flags onto baton-doctor's [`Options`], the report onto stdout, the exit
//! status (0: no error, 1: errors found, 2: the doctor could not run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use baton_doctor::{LiveOptions, Options, EXIT_USAGE};

fn duration(text: &str) -> Result<Duration, String> {
    baton_config::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One line per finding, then a summary line.
    Text,
    /// The JSON document described in docs/doctor.md.
    Json,
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The identity server's keystone.conf (repeat to layer; default: the --config files).
    #[arg(long, value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// A sending service's file with [service_user] (nova.conf, cinder.conf); repeat.
    #[arg(long, value_name = "FILE")]
    sender: Vec<PathBuf>,
    /// A receiving service's file with [keystone_authtoken] (cinder.conf, glance-api.conf,
    /// neutron.conf, nova.conf); repeat.
    #[arg(long, value_name = "FILE")]
    receiver: Vec<PathBuf>,
    /// The longest operation users run, e.g. 6h: allow_expired_window must cover it.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    longest_operation: Option<Duration>,
    /// How often fernet_rotate runs, e.g. 1d: checks Fernet key retention.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    rotation_interval: Option<Duration>,
    /// A role the service users hold; receivers must accept one (repeat for several).
    #[arg(long = "service-role", value_name = "ROLE", default_value = "service")]
    service_role: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also check against the running identity server with the files' credentials.
    #[arg(long)]
    live: bool,
    /// With --live: a file holding an already-expired user token for the probe.
    #[arg(long, value_name = "FILE", requires = "live")]
    expired_token: Option<PathBuf>,
    /// With --live: wait up to this long for the probe's fresh user token to expire.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0", requires = "live")]
    probe_wait: Duration,
    /// With --live: timeout of each request.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    timeout: Duration,
}

pub async fn run(args: DoctorArgs, config: &[PathBuf]) -> ExitCode {
    let identity = if args.identity.is_empty() {
        config.to_vec()
    } else {
        args.identity
    };
    let opts = Options {
        identity,
        senders: args.sender,
        receivers: args.receiver,
        longest_operation: args.longest_operation,
        rotation_interval: args.rotation_interval,
        service_roles: args.service_role,
        live: args.live.then_some(LiveOptions {
            expired_token_file: args.expired_token,
            probe_wait: args.probe_wait,
            timeout: args.timeout,
        }),
    };
    match baton_doctor::diagnose(&opts).await {
        Ok(report) => {
            match args.format {
                Format::Text => print!("{}", report.to_text()),
                Format::Json => print!("{}", report.to_json_string()),
            }
            ExitCode::from(report.exit_status())
        }
        Err(e) => {
            eprintln!("baton doctor: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
