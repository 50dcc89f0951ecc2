//! A trivial axum app for load tests (`scripts/bench-authtoken.sh`): every request gets 200 "ok".
//!
//! ```text
//! cargo run --release -p baton-authtoken --example bench_app -- LISTEN [CONFIG_INI]
//! ```
//!
//! With CONFIG_INI, the app sits behind [`AuthTokenLayer`], configured from the file's
//! `[keystone_authtoken]` section (keystonemiddleware's option names), and its handler reads the
//! [`IdentityContext`] the layer put in the request extensions, as a real service would. Without
//! it there is no authentication at all: the baseline, and the upstream behind `baton authproxy`.
//! Logs go to stderr (`RUST_LOG`, default `warn`).

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::Router;
use baton_authtoken::{AuthTokenConfig, AuthTokenLayer, Authenticator, IdentityContext};

/// Behind the layer: the identity must be there and confirmed.
async fn with_identity(req: Request) -> (StatusCode, &'static str) {
    match req.extensions().get::<IdentityContext>() {
        Some(id) if id.is_authenticated() => (StatusCode::OK, "ok"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "no identity"),
    }
}

async fn plain() -> &'static str {
    "ok"
}

async fn run(args: &[String]) -> Result<(), String> {
    let (listen, ini) = match args {
        [listen] => (listen, None),
        [listen, ini] => (listen, Some(ini)),
        _ => return Err("usage: bench_app LISTEN [CONFIG_INI]".into()),
    };
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| format!("LISTEN {listen:?}: {e}"))?;
    let app = match ini {
        None => Router::new().fallback(plain),
        Some(path) => {
            let ini = baton_config::IniFile::load(path).map_err(|e| e.to_string())?;
            let cfg = AuthTokenConfig::from_ini(&ini, baton_authtoken::DEFAULT_SECTION)
                .map_err(|e| e.to_string())?;
            let auth = Authenticator::new(cfg).map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(15), auth.startup_check()).await {
                Ok(Ok(url)) => tracing::info!(identity = %url, "validating tokens here"),
                Ok(Err(e)) => return Err(format!("start-up check failed: {e}")),
                Err(_) => return Err("start-up check timed out".into()),
            }
            Router::new()
                .fallback(with_identity)
                .layer(AuthTokenLayer::new(auth))
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "bench_app listening on {listen} ({})",
        if ini.is_some() {
            "auth_token layer"
        } else {
            "no auth"
        }
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_app: {e}");
            ExitCode::FAILURE
        }
    }
}
