//! The in-process validation cache and single flight.
//!
//! * Keys are the SHA-256 of the token plus the validation context ([`Ctx`]: plain, or with
//!   `allow_expired`), under a schema version ([`CACHE_SCHEMA`]) that the shared cache also puts
//!   in its keys and MACs, so that entries of another layout are never read.
//! * Successes and refusals live in two caches. A refusal is kept for `negative_cache_time`
//!   (seconds) and only for the context it was obtained in: "expired, alone" never shadows
//!   "expired, with a service token" (keystonemiddleware bug 1987355).
//! * A success lives for `min(token_cache_time, expires_at - now)`, or for allow_expired
//!   validations `min(token_cache_time, expires_at + allow_expired_window - now)`.
//! * Concurrent misses of one key share a single identity call (`Flights`, private to the
//!   crate).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use sha2::{Digest, Sha256};

use crate::context::Validated;

/// Version of the cache layout: part of every key (local and shared) and of every MAC.
pub const CACHE_SCHEMA: &str = "v1";

/// The validation context of a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    /// `GET /v3/auth/tokens`.
    Plain,
    /// `GET /v3/auth/tokens?allow_expired=1`.
    AllowExpired,
    /// A user token judged with one service token by `GET /v3/baton/token_pairs/validate`
    /// (the key hashes both tokens: the server's window may depend on the sender). Kept in
    /// process only.
    Paired,
}

impl Ctx {
    /// The name used in shared-cache keys and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Ctx::Plain => "plain",
            Ctx::AllowExpired => "allow_expired",
            Ctx::Paired => "paired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub ctx: Ctx,
    pub hash: [u8; 32],
}

pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The key hash of a user token judged with a service token.
pub(crate) fn pair_hash(user: &str, service: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(service.as_bytes());
    h.finalize().into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why the identity service refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Invalid,
    /// Refused plainly, but still accepted with `allow_expired`.
    Expired,
}

#[derive(Clone)]
pub(crate) struct Positive {
    pub access: Arc<Validated>,
    pub until: Instant,
    ttl: Duration,
}

#[derive(Clone, Copy)]
struct Negative {
    refusal: Refusal,
    until: Instant,
    ttl: Duration,
}

struct PositiveExpiry;

impl Expiry<CacheKey, Positive> for PositiveExpiry {
    fn expire_after_create(&self, _: &CacheKey, v: &Positive, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        v: &Positive,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

struct NegativeExpiry;

impl Expiry<CacheKey, Negative> for NegativeExpiry {
    fn expire_after_create(&self, _: &CacheKey, v: &Negative, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        v: &Negative,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// The two in-process caches; either may be off.
pub(crate) struct LocalCache {
    positive: Option<Cache<CacheKey, Positive>>,
    negative: Option<Cache<CacheKey, Negative>>,
}

impl LocalCache {
    pub fn new(enabled: bool, negative_ttl: Duration, capacity: u64) -> LocalCache {
        LocalCache {
            positive: enabled.then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .expire_after(PositiveExpiry)
                    .build()
            }),
            negative: (enabled && !negative_ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .expire_after(NegativeExpiry)
                    .build()
            }),
        }
    }

    pub fn get_positive(&self, key: &CacheKey) -> Option<Positive> {
        let hit = self.positive.as_ref()?.get(key)?;
        (hit.until > Instant::now()).then_some(hit)
    }

    pub fn get_negative(&self, key: &CacheKey) -> Option<Refusal> {
        let hit = self.negative.as_ref()?.get(key)?;
        (hit.until > Instant::now()).then_some(hit.refusal)
    }

    pub fn put_positive(&self, key: CacheKey, access: Arc<Validated>, ttl: Duration) {
        if let Some(c) = &self.positive {
            if let Some(n) = &self.negative {
                n.invalidate(&key);
            }
            c.insert(
                key,
                Positive {
                    access,
                    until: Instant::now() + ttl,
                    ttl,
                },
            );
        }
    }

    pub fn put_negative(&self, key: CacheKey, refusal: Refusal, ttl: Duration) {
        if let Some(c) = &self.negative {
            c.insert(
                key,
                Negative {
                    refusal,
                    until: Instant::now() + ttl,
                    ttl,
                },
            );
        }
    }
}

/// Single flight: the first caller for a key runs the work, concurrent callers for the same key
/// wait for its result. If the running caller is cancelled (its client went away), a waiting
/// caller runs the work instead.
pub(crate) struct Flights<T> {
    running: Mutex<HashMap<CacheKey, Arc<tokio::sync::OnceCell<T>>>>,
}

impl<T: Clone> Flights<T> {
    pub fn new() -> Flights<T> {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `work` for `key` unless it is already running; returns the result and whether this
    /// caller joined a flight started by another.
    pub async fn run<F, Fut>(&self, key: CacheKey, work: F) -> (T, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let (cell, joined) = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.get(&key) {
                Some(cell) => (cell.clone(), true),
                None => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    running.insert(key, cell.clone());
                    (cell, false)
                }
            }
        };
        let value = cell.get_or_init(work).await.clone();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            running.remove(&key);
        }
        (value, joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex("0001abff").unwrap(), b);
        assert!(unhex("0g").is_none() && unhex("abc").is_none());
    }

    #[tokio::test]
    async fn single_flight_runs_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let flights = Arc::new(Flights::<u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let key = CacheKey {
            ctx: Ctx::Plain,
            hash: [7; 32],
        };
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (f, c) = (flights.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                f.run(key, || async {
                    c.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    42
                })
                .await
            }));
        }
        let mut joined = 0;
        for t in tasks {
            let (v, j) = t.await.unwrap();
            assert_eq!(v, 42);
            joined += j as usize;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(joined, 15);
        assert!(flights.running.lock().unwrap().is_empty());
    }
}
