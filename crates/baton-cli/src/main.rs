//! The `baton` binary: `serve` runs the identity server, `manage` mirrors keystone-manage
//! (`db_sync`, `fernet_setup`, `fernet_rotate`, `credential_setup`, `bootstrap`) and `quickstart`
//! sets up and runs everything on the embedded SQLite default with one command. `authproxy` puts
//! the auth_token middleware, as a streaming reverse proxy, in front of any HTTP service.
//! `doctor` checks senders, receivers and keystone.conf together (baton-doctor).

// The doc comments of the clap commands and options are the `--help` text, worded like
// python-openstackclient's (`<project>`, `[service_user]`): help for operators, not rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod demo;
mod doctor;
mod manage;
mod os;
mod quickstart;

use std::path::PathBuf;
use std::process::ExitCode;

use baton_config::IdentityConfig;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "OpenStack identity for service-to-service calls"
)]
struct Cli {
    /// keystone.conf-style configuration file; repeat to layer several (later ones win).
    #[arg(
        long = "config",
        alias = "config-file",
        global = true,
        env = "BATON_CONFIG",
        value_delimiter = ','
    )]
    config: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity server.
    Serve {
        /// Address to listen on (default: [baton] bind, 127.0.0.1:5000).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Administration commands with keystone-manage's verbs and flags.
    Manage {
        #[command(subcommand)]
        command: manage::ManageCommand,
    },
    /// Create a data directory with a SQLite database, keys and an admin, then serve.
    Quickstart(quickstart::QuickstartArgs),
    /// Reverse proxy validating Keystone tokens in front of an HTTP service ([authproxy] listen,
    /// upstream, ... plus [keystone_authtoken] in the --config file).
    Authproxy,
    /// Check the senders' [service_user], the receivers' [keystone_authtoken] and keystone.conf
    /// together (and, with --live, against the running identity server).
    Doctor(doctor::DoctorArgs),
    /// Run the long-running operations end to end: an identity server, reference compute,
    /// volume, image and network services, every scenario with and without [service_user].
    Demo(demo::DemoArgs),
    /// The identity commands of `openstack` (token, role, user, project, domain, service,
    /// endpoint, catalog, application credential, access rule, trust), reading clouds.yaml and
    /// OS_* like it.
    #[command(flatten)]
    Os(os::OsCommand),
}

/// Loads the configuration files plus `BATON__SECTION__OPTION` environment overrides.
pub fn load_config(files: &[PathBuf]) -> anyhow::Result<IdentityConfig> {
    for f in files {
        if !f.exists() {
            anyhow::bail!("{}: configuration file not found", f.display());
        }
    }
    Ok(IdentityConfig::load(files, std::env::vars())?)
}

// mimalloc instead of glibc's malloc: every request allocates and frees dozens of small
// blocks, on several threads (docs/performance.md). Built without the default `mimalloc`
// feature, the binary uses the system malloc, which heap profilers can follow.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The doctor reports what the configuration readers would log, as findings.
    let default_filter = match cli.command {
        Command::Doctor(_) => "error",
        // The demo's table and progress bars are its output; the services' logs would bury them.
        Command::Demo(_) => "error",
        // Operator commands print their own results and one-line errors.
        Command::Os(_) => "error",
        _ => "info,sqlx=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = match cli.command {
        Command::Doctor(args) => return runtime.block_on(doctor::run(args, &cli.config)),
        Command::Os(cmd) => return runtime.block_on(os::run(cmd)),
        other => other,
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve { bind } => {
                let config = load_config(&cli.config)?;
                serve(config, bind).await
            }
            Command::Manage { command } => {
                let config = load_config(&cli.config)?;
                manage::run(&config, command).await
            }
            Command::Quickstart(args) => quickstart::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Authproxy => authproxy(&cli.config).await,
            Command::Doctor(_) | Command::Os(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, most general first.
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("baton: {}", msg.join(": "));
            ExitCode::FAILURE
        }
    }
}

async fn authproxy(files: &[PathBuf]) -> anyhow::Result<()> {
    if files.is_empty() {
        anyhow::bail!("authproxy needs --config FILE with [authproxy] and [keystone_authtoken]");
    }
    for f in files {
        if !f.exists() {
            anyhow::bail!("{}: configuration file not found", f.display());
        }
    }
    let ini = baton_config::IniFile::load_all(files)?;
    let config = baton_authtoken::ProxyConfig::from_ini(&ini)?;
    tokio::select! {
        r = baton_authtoken::proxy::run(config) => r.map_err(|e| anyhow::anyhow!(e)),
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            Ok(())
        }
    }
}

/// `baton serve`: the identity server on `bind` (default `[baton] bind`) until Ctrl-C.
pub async fn serve(
    config: IdentityConfig,
    bind: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let addr = bind.unwrap_or(config.baton.bind);
    // `[baton] worker_threads`: threads serving HTTP (one per core by default).
    let workers = config.baton.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let state = baton_server::AppState::open(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .and_then(tokio::net::TcpListener::into_std)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, workers, "Baton identity server listening");
    tokio::select! {
        r = baton_server::serve_workers(state, listener, workers) => r,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            Ok(())
        }
    }
}
