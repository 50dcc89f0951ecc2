//! The memcached servers of `memcached_servers`, reached with `async-memcached` (Shopify's tokio
//! client, text protocol), picked per key as python-memcached picks them, so that
//! keystonemiddleware and Baton put one token's entry on the same server.
//!
//! * Server names as python-memcached reads them: `host:port`, `host` (port 11211),
//!   `inet:host[:port]`, `inet6:[address][:port]`, `unix:/path`.
//! * Choice: `((crc32(key) >> 16) & 0x7fff) % servers`; while that server is marked dead, the
//!   hash is rehashed (`crc32` of its decimal text and the attempt number) up to 10 times,
//!   python-memcached's `_get_server`.
//! * Bounds: connecting, waiting for a connection of the pool and the operation itself together
//!   take at most `memcache_pool_socket_timeout`; a server that fails is left alone for
//!   `memcache_pool_dead_retry` (its failure logged once, its recovery once), and only one request
//!   at a time tries it again. At most `memcache_pool_maxsize` connections per server; idle ones
//!   are closed after `memcache_pool_unused_timeout`.
//! * Values: written with flags 0 (bytes, as keystonemiddleware writes them), read only with
//!   flags 0 (never anything python-memcached would unpickle or decompress) and at most
//!   [`MAX_VALUE_BYTES`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_memcached::{AsciiProtocol, Client};
use crc::{Crc, CRC_32_ISO_HDLC};
use tokio::sync::Semaphore;

use crate::metrics::{inc, Metrics};

/// memcached's default item size limit, and python-memcached's `SERVER_MAX_VALUE_LENGTH`:
/// longer values are neither read nor written.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// memcached's key length limit.
const MAX_KEY_BYTES: usize = 250;
/// python-memcached's `_SERVER_RETRIES`.
const SERVER_RETRIES: usize = 10;
/// Relative expiry times above 30 days are read by memcached as Unix times.
const MAX_RELATIVE_EXPIRY: u64 = 30 * 24 * 3600;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// python-memcached's `cmemcache_hash`.
fn server_hash(bytes: &[u8]) -> u32 {
    (CRC32.checksum(bytes) >> 16) & 0x7fff
}

/// The pool options (`memcache_pool_*`).
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Bound on connecting plus one operation (`memcache_pool_socket_timeout`).
    pub socket_timeout: Duration,
    /// How long a failed server is left alone (`memcache_pool_dead_retry`).
    pub dead_retry: Duration,
    /// Connections per server (`memcache_pool_maxsize`).
    pub maxsize: usize,
    /// Idle connections older than this are closed (`memcache_pool_unused_timeout`).
    pub unused_timeout: Duration,
    /// Longest wait for a free connection (`memcache_pool_conn_get_timeout`), within
    /// `socket_timeout`.
    pub conn_get_timeout: Duration,
}

/// Turns one `memcached_servers` item into async-memcached's address, or says why not.
pub fn server_address(item: &str) -> Result<String, String> {
    let bad = || format!("{item:?} is not host:port, inet6:[address]:port or unix:/path");
    let port_of = |p: Option<&str>| -> Result<u16, String> {
        match p {
            None => Ok(11211),
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad),
        }
    };
    if let Some(path) = item.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(format!("unix://{path}"));
    }
    if let Some(rest) = item.strip_prefix("inet6:") {
        let rest = rest.strip_prefix('[').ok_or_else(bad)?;
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        if host.is_empty() || host.contains(['[', ']']) {
            return Err(bad());
        }
        let port = match after {
            "" => port_of(None)?,
            p => port_of(Some(p.strip_prefix(':').ok_or_else(bad)?))?,
        };
        return Ok(format!("tcp://[{host}]:{port}"));
    }
    let rest = item.strip_prefix("inet:").unwrap_or(item);
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (h, port_of(Some(p))?),
        None => (rest, port_of(None)?),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(bad());
    }
    Ok(format!("tcp://{host}:{port}"))
}

enum Health {
    Up,
    Dead { until: Instant },
}

struct Server {
    /// As configured, for logs.
    name: String,
    address: String,
    idle: Mutex<Vec<(Client, Instant)>>,
    slots: Semaphore,
    health: Mutex<Health>,
    /// Set while one request tries a server whose dead time is over.
    probing: AtomicBool,
}

/// Clears the probing flag however the attempt ends (cancellation included).
struct Probe<'a>(Option<&'a AtomicBool>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.0 {
            flag.store(false, Ordering::Release);
        }
    }
}

/// The configured servers with their pools.
pub(crate) struct Memcached {
    servers: Vec<Server>,
    opts: PoolOptions,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Memcached {
    /// `servers` as configured (checked with [`server_address`]).
    pub fn new(
        servers: &[String],
        opts: PoolOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Memcached, String> {
        let servers = servers
            .iter()
            .map(|s| {
                Ok(Server {
                    name: s.clone(),
                    address: server_address(s)?,
                    idle: Mutex::new(Vec::new()),
                    slots: Semaphore::new(opts.maxsize.max(1)),
                    health: Mutex::new(Health::Up),
                    probing: AtomicBool::new(false),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if servers.is_empty() {
            return Err("memcached_servers lists no server".into());
        }
        Ok(Memcached {
            servers,
            opts,
            metrics,
        })
    }

    /// The server python-memcached would use for `key` now (dead ones skipped), with the probe
    /// guard when it is being tried again after its dead time.
    fn pick(&self, key: &[u8]) -> Option<(&Server, Probe<'_>)> {
        let n = self.servers.len() as u32;
        let mut hash = server_hash(key);
        for attempt in 0..SERVER_RETRIES {
            let server = &self.servers[(hash % n) as usize];
            let dead_until = match *lock(&server.health) {
                Health::Up => None,
                Health::Dead { until } => Some(until),
            };
            match dead_until {
                None => return Some((server, Probe(None))),
                Some(until) if Instant::now() >= until => {
                    if !server.probing.swap(true, Ordering::AcqRel) {
                        return Some((server, Probe(Some(&server.probing))));
                    }
                }
                Some(_) => {}
            }
            hash = server_hash(format!("{hash}{attempt}").as_bytes());
        }
        None
    }

    /// The value stored at `key`, `Ok(None)` when there is none (or it is not one Baton reads:
    /// other flags, too long); `Err` when no server could answer in time.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ()> {
        let found = self
            .run(key, |mut client, key| async move {
                let r = client.get(key.as_bytes()).await;
                (client, r)
            })
            .await?;
        Ok(found.and_then(|v| {
            let data = v.data?;
            (v.flags.unwrap_or(0) == 0 && data.len() <= MAX_VALUE_BYTES).then_some(data)
        }))
    }

    /// Stores `value` at `key` for `ttl` (whole seconds, at least 1); values over
    /// [`MAX_VALUE_BYTES`] are not stored.
    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), ()> {
        if value.len() > MAX_VALUE_BYTES {
            return Ok(());
        }
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = secs.clamp(1, MAX_RELATIVE_EXPIRY) as i64;
        self.run(key, move |mut client, key| async move {
            let r = client
                .set(key.as_bytes(), value.as_slice(), Some(secs), Some(0))
                .await;
            (client, r)
        })
        .await
    }

    /// Runs `op` on a pooled connection to `key`'s server, bounded by the socket timeout.
    async fn run<T, F, Fut>(&self, key: &str, op: F) -> Result<T, ()>
    where
        F: FnOnce(Client, String) -> Fut,
        Fut: std::future::Future<Output = (Client, Result<T, async_memcached::Error>)>,
    {
        if key.len() > MAX_KEY_BYTES {
            return Err(());
        }
        let Some((server, _probe)) = self.pick(key.as_bytes()) else {
            inc(&self.metrics.memcache_skipped);
            return Err(());
        };
        let timeout = self.opts.socket_timeout;
        let attempt = async {
            let wait = self.opts.conn_get_timeout.min(timeout);
            let _slot = tokio::time::timeout(wait, server.slots.acquire())
                .await
                .map_err(|_| "no free connection in the pool".to_string())?
                .map_err(|_| "pool closed".to_string())?;
            let client = match self.idle_client(server) {
                Some(c) => c,
                None => Client::new(&server.address)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let (client, result) = op(client, key.to_string()).await;
            let value = result.map_err(|e| e.to_string())?;
            if !client.is_closed() {
                lock(&server.idle).push((client, Instant::now()));
            }
            Ok::<T, String>(value)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(value)) => {
                self.mark_up(server);
                Ok(value)
            }
            Ok(Err(why)) => {
                self.mark_dead(server, &why);
                Err(())
            }
            Err(_) => {
                self.mark_dead(
                    server,
                    &format!("no answer within {} ms", timeout.as_millis()),
                );
                Err(())
            }
        }
    }

    /// An idle connection not older than `memcache_pool_unused_timeout`.
    fn idle_client(&self, server: &Server) -> Option<Client> {
        let mut idle = lock(&server.idle);
        let now = Instant::now();
        idle.retain(|(_, since)| now.duration_since(*since) < self.opts.unused_timeout);
        idle.pop().map(|(c, _)| c)
    }

    fn mark_up(&self, server: &Server) {
        let was_dead = {
            let mut h = lock(&server.health);
            std::mem::replace(&mut *h, Health::Up)
        };
        if matches!(was_dead, Health::Dead { .. }) {
            tracing::info!(memcached = %server.name, "memcached server reachable again");
        }
    }

    fn mark_dead(&self, server: &Server, why: &str) {
        inc(&self.metrics.memcache_errors);
        lock(&server.idle).clear();
        let was_up = {
            let mut h = lock(&server.health);
            let was_up = matches!(*h, Health::Up);
            *h = Health::Dead {
                until: Instant::now() + self.opts.dead_retry,
            };
            was_up
        };
        if was_up {
            tracing::warn!(
                memcached = %server.name,
                error = %why,
                retry_in_s = self.opts.dead_retry.as_secs_f64(),
                "memcached server unavailable: token validations are cached in this process only until it answers again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_python_memcacheds() {
        assert_eq!(
            server_address("controller:11211").unwrap(),
            "tcp://controller:11211"
        );
        assert_eq!(server_address("10.0.0.5").unwrap(), "tcp://10.0.0.5:11211");
        assert_eq!(server_address("inet:m1:2000").unwrap(), "tcp://m1:2000");
        assert_eq!(
            server_address("inet6:[::1]:11311").unwrap(),
            "tcp://[::1]:11311"
        );
        assert_eq!(
            server_address("inet6:[fd00::5]").unwrap(),
            "tcp://[fd00::5]:11211"
        );
        assert_eq!(
            server_address("unix:/run/memcached.sock").unwrap(),
            "unix:///run/memcached.sock"
        );
        for bad in [
            "",
            "m1:",
            "m1:x",
            "m1:0",
            "m1:99999",
            "inet6:::1",
            "a b:1",
            "unix:",
        ] {
            assert!(server_address(bad).is_err(), "{bad}");
        }
    }

    // python-memcached 1.62's cmemcache_hash and rehash chain for these keys.
    #[test]
    fn servers_are_picked_as_python_memcached_picks_them() {
        assert_eq!(server_hash(b"tokens/b'vyniqawgdGkHu2jdgGZayQ=='"), 30256);
        assert_eq!(server_hash(b"302560"), 17738);
        assert_eq!(server_hash(b"177381"), 24693);
        assert_eq!(server_hash(b"tokens/abc"), 30021);
        let opts = PoolOptions {
            socket_timeout: Duration::from_secs(1),
            dead_retry: Duration::from_secs(60),
            maxsize: 2,
            unused_timeout: Duration::from_secs(60),
            conn_get_timeout: Duration::from_secs(1),
        };
        let names: Vec<String> = ["m0:1", "m1:1", "m2:1"].map(String::from).to_vec();
        let mc = Memcached::new(&names, opts, Arc::default()).unwrap();
        let key = b"tokens/b'vyniqawgdGkHu2jdgGZayQ=='";
        let picked = |mc: &Memcached| mc.pick(key).map(|(s, _)| s.name.clone());
        assert_eq!(picked(&mc).as_deref(), Some("m1:1"));
        *lock(&mc.servers[1].health) = Health::Dead {
            until: Instant::now() + Duration::from_secs(60),
        };
        assert_eq!(picked(&mc).as_deref(), Some("m2:1"));
        *lock(&mc.servers[2].health) = Health::Dead {
            until: Instant::now() + Duration::from_secs(60),
        };
        assert_eq!(picked(&mc).as_deref(), Some("m0:1"));
    }
}
