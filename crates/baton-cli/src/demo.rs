//! `baton demo`: the long-running operations end to end (baton-services), from one command.

use std::path::PathBuf;
use std::time::Duration;

use baton_services::{run_demo, DemoOptions, Output};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where each run's directory (database, keys, configuration files, timelines) is made.
    #[arg(long, default_value = "baton-demo")]
    dir: PathBuf,
    /// Token lifetime of the demo's identity server, in seconds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=600))]
    token_expiration: u32,
    /// Length of the long phase of each operation, in seconds (default: 1.5 × the token lifetime).
    #[arg(long)]
    operation_seconds: Option<f64>,
    /// Leave the identity server and the services running afterwards and print how to call them.
    #[arg(long)]
    keep_running: bool,
    /// `[token] allow_expired_window` of the demo's identity server, in seconds (default:
    /// Keystone's 172800). With 0 the service-token mode fails after the user token expires
    /// and the continuation mode still completes.
    #[arg(long, value_parser = clap::value_parser!(u32))]
    allow_expired_window: Option<u32>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let operation = match args.operation_seconds {
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => anyhow::bail!("--operation-seconds must be between 0 and 3600"),
        None => None,
    };
    let report = run_demo(
        DemoOptions {
            dir: args.dir,
            token_expiration: args.token_expiration,
            operation,
            keep_running: args.keep_running,
            allow_expired_window: args.allow_expired_window,
            ..DemoOptions::default()
        },
        &Output::stdout(),
    )
    .await?;
    if !report.all_as_expected() {
        anyhow::bail!(
            "some runs did not go as expected; see the table and {}",
            report.timeline_text.display()
        );
    }
    Ok(())
}
