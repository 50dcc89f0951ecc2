//! The embedded identity server of the demo: Baton's own server (baton-server over an SQLite
//! database in the run directory) on a runtime and threads of its own, so that it can be stopped
//! and started again on the same port in the middle of an operation, and so that its CPU time can
//! be told apart from the services' (every one of its threads is named `baton-identity`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::ListenerExt;
use baton_config::IdentityConfig;

/// Name of every thread of the identity server's runtime (at most 15 bytes: Linux's `comm`).
pub const THREAD_NAME: &str = "baton-identity";

/// Requests the identity server answered, by kind.
#[derive(Debug, Default)]
pub struct IdentityStats {
    /// `POST /v3/auth/tokens`: password authentications (users, service users, middlewares).
    pub issue: AtomicU64,
    /// `GET /v3/auth/tokens` without `allow_expired`.
    pub validate: AtomicU64,
    /// `GET /v3/auth/tokens?allow_expired=1`.
    pub validate_allow_expired: AtomicU64,
    /// Anything else (version discovery, `HEAD`, ...).
    pub other: AtomicU64,
    /// Times the server was started.
    pub starts: AtomicU64,
}

/// A copy of [`IdentityStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityCounts {
    /// Token issues (`POST /v3/auth/tokens`).
    pub issue: u64,
    /// Validations without allow_expired.
    pub validate: u64,
    /// Validations with allow_expired (an expired user token vouched for by a service token).
    pub validate_allow_expired: u64,
    /// Anything else.
    pub other: u64,
}

impl IdentityCounts {
    /// Every request counted.
    pub fn total(&self) -> u64 {
        self.issue + self.validate + self.validate_allow_expired + self.other
    }

    /// The requests made since `before`.
    pub fn since(&self, before: &IdentityCounts) -> IdentityCounts {
        IdentityCounts {
            issue: self.issue - before.issue,
            validate: self.validate - before.validate,
            validate_allow_expired: self.validate_allow_expired - before.validate_allow_expired,
            other: self.other - before.other,
        }
    }
}

impl IdentityStats {
    /// The counts now.
    pub fn snapshot(&self) -> IdentityCounts {
        IdentityCounts {
            issue: self.issue.load(Ordering::Relaxed),
            validate: self.validate.load(Ordering::Relaxed),
            validate_allow_expired: self.validate_allow_expired.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// A Baton identity server that can be stopped and started again on the same address.
pub struct EmbeddedIdentity {
    /// Where it listens (the same after a restart).
    pub addr: SocketAddr,
    /// Its keystone.conf.
    pub config: IdentityConfig,
    /// Requests served, by kind.
    pub stats: Arc<IdentityStats>,
    running: Mutex<Option<Running>>,
    /// CPU time of the identity threads of earlier (stopped) instances.
    cpu_before: Mutex<Duration>,
}

impl EmbeddedIdentity {
    /// Configuration for a server over `dir/keystone.db` and `dir/fernet-keys` whose tokens live
    /// `expiration` seconds. The schema, keys and bootstrap are the caller's ([`crate::cloud`]).
    pub fn config(dir: &Path, expiration: u32) -> IdentityConfig {
        let mut config = IdentityConfig::default();
        config.database.connection =
            Some(format!("sqlite:///{}", dir.join("keystone.db").display()));
        config.fernet_tokens.key_repository = dir.join("fernet-keys");
        config.token.expiration = expiration;
        // The demo's passwords are generated and thrown away: the cheapest bcrypt cost keeps
        // the many service-user authentications of a few-second token lifetime cheap.
        config.identity.password_hash_rounds = Some(4);
        // Continuation tokens for nova's operations (docs/continuation.md), used in the demo's
        // continuation mode; the receivers are the other three services' users.
        config.continuation.senders = vec![("nova".into(), 3600)];
        config.continuation.receivers = vec![
            ("volumev3".into(), "cinder".into()),
            ("image".into(), "glance".into()),
            ("network".into(), "neutron".into()),
        ];
        config
    }

    /// Starts serving on `listener` (already bound, so that its URL could be bootstrapped).
    pub fn start(
        config: IdentityConfig,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<EmbeddedIdentity> {
        let addr = listener.local_addr()?;
        let stats = Arc::new(IdentityStats::default());
        let running = spawn(config.clone(), Bind::Listener(listener), stats.clone())?;
        Ok(EmbeddedIdentity {
            addr,
            config,
            stats,
            running: Mutex::new(Some(running)),
            cpu_before: Mutex::new(Duration::ZERO),
        })
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether it is serving now (it can be stopped to show what an outage does).
    pub fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Stops the server: the listener closes and every open connection is dropped.
    pub fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = running {
            // The threads go away with their runtime; keep what they used.
            *self.cpu_before.lock().unwrap_or_else(|e| e.into_inner()) += live_thread_cpu();
            let _ = r.shutdown.send(());
            let _ = r.thread.join();
        }
    }

    /// Starts the server again on the same address, database and keys.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.stop();
        let r = spawn(
            self.config.clone(),
            Bind::Addr(self.addr),
            self.stats.clone(),
        )?;
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        Ok(())
    }

    /// CPU time (user + system) the identity server's threads used since it was first started.
    pub fn cpu_time(&self) -> Duration {
        *self.cpu_before.lock().unwrap_or_else(|e| e.into_inner()) + live_thread_cpu()
    }
}

impl Drop for EmbeddedIdentity {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Bind {
    Listener(std::net::TcpListener),
    Addr(SocketAddr),
}

fn spawn(config: IdentityConfig, bind: Bind, stats: Arc<IdentityStats>) -> anyhow::Result<Running> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(THREAD_NAME)
                // Blocking threads (bcrypt) must not exit between runs: their CPU time would be
                // lost from the count.
                .thread_keep_alive(Duration::from_secs(24 * 3600))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let started = async {
                    let listener = match bind {
                        Bind::Listener(l) => {
                            l.set_nonblocking(true)?;
                            tokio::net::TcpListener::from_std(l)?
                        }
                        Bind::Addr(a) => crate::common::bind_reuse(a)?,
                    };
                    let state = baton_server::AppState::open(config).await?;
                    anyhow::Ok((listener, state))
                };
                let (listener, state) = match started.await {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                stats.starts.fetch_add(1, Ordering::Relaxed);
                let _refreshers = state.spawn_refreshers();
                let counted = stats.clone();
                let app = baton_server::router(state).layer(axum::middleware::from_fn(
                    move |req: Request, next: Next| {
                        let stats = counted.clone();
                        async move { count(&stats, req, next).await }
                    },
                ));
                let _ = ready_tx.send(Ok(()));
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = shutdown_rx => {}
                }
            });
            // Drops every connection task with the runtime.
            rt.shutdown_timeout(Duration::from_millis(500));
        })?;
    match ready_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => Ok(Running {
            shutdown: shutdown_tx,
            thread,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e.context("identity server did not start"))
        }
        Err(_) => anyhow::bail!("identity server did not start within 30 s"),
    }
}

async fn count(stats: &IdentityStats, req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_end_matches('/');
    let counter = if path.ends_with("/v3/auth/tokens") {
        match *req.method() {
            Method::POST => &stats.issue,
            Method::GET
                if req.uri().query().is_some_and(|q| {
                    q.split('&')
                        .any(|kv| kv.starts_with("allow_expired=") && kv != "allow_expired=0")
                }) =>
            {
                &stats.validate_allow_expired
            }
            Method::GET => &stats.validate,
            _ => &stats.other,
        }
    } else {
        &stats.other
    };
    counter.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

/// CPU time of this process's live threads named [`THREAD_NAME`]: `schedstat`'s run time
/// (nanoseconds), else `stat`'s utime + stime (clock ticks, assumed 100 Hz).
fn live_thread_cpu() -> Duration {
    let mut total = Duration::ZERO;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for task in tasks.flatten() {
        let dir: PathBuf = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != THREAD_NAME {
            continue;
        }
        total += thread_cpu(&dir);
    }
    total
}

fn thread_cpu(dir: &Path) -> Duration {
    if let Ok(s) = std::fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return Duration::from_nanos(ns);
        }
    }
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
