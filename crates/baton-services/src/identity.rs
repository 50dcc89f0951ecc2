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
    /// The audit events of a service acting for a user (docs/notifications.md), for the
    /// timelines.
    pub events: Mutex<Vec<AuditEvent>>,
}

/// The most audit events kept for the timelines.
const MAX_AUDIT_EVENTS: usize = 100_000;

/// One audit event of the identity server, as a timeline shows it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// When it was received.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The user token's audit chain (which run it belongs to).
    pub audit_chain_id: String,
    /// One line: what happened (event type, actor, target, reason).
    pub text: String,
}

impl AuditEvent {
    /// The event a notification describes, when it is one of a service acting for a user.
    fn from_message(message: &serde_json::Value) -> Option<AuditEvent> {
        let event_type = message["event_type"].as_str()?;
        let p = &message["payload"];
        let chain = p["audit_chain_id"].as_str()?;
        let mut text = format!(
            "identity: {event_type} (actor {}",
            p["actor"]["name"].as_str().unwrap_or("?")
        );
        if let Some(receiver) = p["target"]["name"].as_str() {
            text.push_str(&format!(", for {receiver}"));
        }
        if let Some(reason) = p["reason"]["reasonType"].as_str() {
            text.push_str(&format!(": {reason}"));
        }
        text.push(')');
        Some(AuditEvent {
            at: chrono::Utc::now(),
            audit_chain_id: chain.to_string(),
            text,
        })
    }
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
    /// The audit events of the user token whose audit chain is `chain`, as timeline marks.
    pub fn marks_for(&self, chain: &str) -> Vec<(chrono::DateTime<chrono::Utc>, String)> {
        self.events
            .lock()
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e.audit_chain_id == chain)
                    .map(|e| (e.at, e.text.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

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
        // Audit events in-process only: the timelines show them.
        config.notifications.drivers = vec![baton_config::NotificationDriver::Local];
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
                record_audit_events(&state, &stats);
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

/// Keeps the server's audit events of services acting for users in `stats` (for the
/// timelines), from a task on the server's runtime.
fn record_audit_events(state: &baton_server::AppState, stats: &Arc<IdentityStats>) {
    let Some(mut events) = state.tokens.audit.notifier().subscribe() else {
        return;
    };
    let stats = stats.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(message) => {
                    if let (Some(e), Ok(mut all)) =
                        (AuditEvent::from_message(&message), stats.events.lock())
                    {
                        // Bounded for long benchmark runs: the oldest go.
                        if all.len() >= MAX_AUDIT_EVENTS {
                            all.drain(..MAX_AUDIT_EVENTS / 2);
                        }
                        all.push(e);
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
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
