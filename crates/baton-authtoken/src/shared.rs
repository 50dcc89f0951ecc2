//! The optional shared validation cache in Redis, protected by HMAC-SHA256.
//!
//! * Only successful validations are shared (refusals stay in each process, briefly).
//! * Key: `baton-authtoken:<schema>:<key id>:<context>:<sha256 hex of the token>`. The key id is
//!   derived from `cache_secret_key`, so deployments (or a key change) never read each other's
//!   entries; the token itself is never stored.
//! * Value: `<hex HMAC-SHA256(secret, key "\n" json)>.<json>` where the JSON holds the schema,
//!   the context, the wall-clock end of validity and the token body. The MAC covers the key, so
//!   an entry copied to another token's key is refused too; an entry whose MAC, schema, context
//!   or validity does not check out is ignored (and counted, and logged as forged).
//! * Bounded cost when Redis is down: connecting and every operation are bounded by
//!   `redis_timeout`; after a failure Redis is left alone for `redis_retry_interval` (lookups
//!   go straight to the in-process cache and the identity service), the failure is logged once,
//!   and the recovery once. Only one request at a time tries to reconnect; the others skip.
//!   Writes happen in the background, so they never delay a response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_client::{AccessInfo, AuthToken, SecretString};
use baton_types::TokenBody;
use chrono::Utc;
use hmac::{Hmac, Mac};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::cache::{hex, unhex, Ctx, CACHE_SCHEMA};
use crate::config::{redact_url, SharedCacheConfig};
use crate::metrics::{inc, Metrics};

type HmacSha256 = Hmac<Sha256>;

#[derive(Serialize, Deserialize)]
struct Entry {
    schema: String,
    ctx: String,
    /// Unix milliseconds after which the entry must not be used.
    valid_until_ms: i64,
    token: TokenBody,
}

enum State {
    Idle,
    Up(MultiplexedConnection),
    Down { retry_at: Instant },
}

pub(crate) struct SharedCache {
    client: redis::Client,
    secret: SecretString,
    prefix: String,
    shown: String,
    timeout: Duration,
    retry_interval: Duration,
    state: Mutex<State>,
    connecting: AtomicBool,
    metrics: Arc<Metrics>,
}

/// Clears the "connecting" flag however the connect attempt ends (cancellation included).
struct Connecting<'a>(&'a AtomicBool);

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn mac(secret: &SecretString) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length")
}

impl SharedCache {
    pub fn new(cfg: &SharedCacheConfig, metrics: Arc<Metrics>) -> Result<SharedCache, String> {
        let client = redis::Client::open(cfg.redis_url.as_str()).map_err(|e| {
            format!(
                "redis_url {} is not a usable Redis URL ({:?})",
                redact_url(&cfg.redis_url),
                e.kind()
            )
        })?;
        let mut m = mac(&cfg.secret);
        m.update(b"baton-authtoken shared cache key id");
        let key_id = hex(&m.finalize().into_bytes()[..4]);
        Ok(SharedCache {
            client,
            secret: cfg.secret.clone(),
            prefix: format!("baton-authtoken:{CACHE_SCHEMA}:{key_id}"),
            shown: redact_url(&cfg.redis_url),
            timeout: cfg.timeout,
            retry_interval: cfg.retry_interval,
            state: Mutex::new(State::Idle),
            connecting: AtomicBool::new(false),
            metrics,
        })
    }

    pub fn key(&self, ctx: Ctx, hash: &[u8; 32]) -> String {
        format!("{}:{}:{}", self.prefix, ctx.as_str(), hex(hash))
    }

    fn sign(&self, key: &str, json: &[u8]) -> Vec<u8> {
        let mut m = mac(&self.secret);
        m.update(key.as_bytes());
        m.update(b"\n");
        m.update(json);
        m.finalize().into_bytes().to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_down(&self, why: &str) {
        inc(&self.metrics.shared_errors);
        let mut st = self.lock();
        let was_down = matches!(*st, State::Down { .. });
        *st = State::Down {
            retry_at: Instant::now() + self.retry_interval,
        };
        drop(st);
        if !was_down {
            tracing::warn!(
                redis = %self.shown,
                error = %why,
                retry_in_s = self.retry_interval.as_secs_f64(),
                "shared validation cache unavailable: using the in-process cache only until it answers again"
            );
        }
    }

    /// A connection, or `None` (at once) while Redis is marked down or another request is
    /// connecting.
    async fn connection(&self) -> Option<MultiplexedConnection> {
        let was_down = {
            let st = self.lock();
            match &*st {
                State::Up(c) => return Some(c.clone()),
                State::Down { retry_at } if Instant::now() < *retry_at => {
                    inc(&self.metrics.shared_skipped);
                    return None;
                }
                State::Down { .. } => true,
                State::Idle => false,
            }
        };
        if self.connecting.swap(true, Ordering::AcqRel) {
            inc(&self.metrics.shared_skipped);
            return None;
        }
        let _guard = Connecting(&self.connecting);
        match tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
            .await
        {
            Ok(Ok(conn)) => {
                *self.lock() = State::Up(conn.clone());
                if was_down {
                    tracing::info!(redis = %self.shown, "shared validation cache reachable again");
                }
                Some(conn)
            }
            Ok(Err(e)) => {
                self.mark_down(&e.to_string());
                None
            }
            Err(_) => {
                self.mark_down(&format!(
                    "connecting took over {} ms",
                    self.timeout.as_millis()
                ));
                None
            }
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Option<T> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.mark_down(&e.to_string());
                None
            }
            Err(_) => {
                self.mark_down(&format!("no answer within {} ms", self.timeout.as_millis()));
                None
            }
        }
    }

    /// The shared entry for `token` in `ctx`, if there is a genuine, current one; with how much
    /// longer it may be used.
    pub async fn get(
        &self,
        ctx: Ctx,
        hash: &[u8; 32],
        token: &AuthToken,
    ) -> Option<(AccessInfo, Duration)> {
        let key = self.key(ctx, hash);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        let Some(raw) = self.run::<Option<Vec<u8>>>(cmd).await? else {
            inc(&self.metrics.shared_misses);
            return None;
        };
        match self.open(&key, ctx, &raw, token) {
            Ok(found) => {
                inc(&self.metrics.shared_hits);
                Some(found)
            }
            Err(Stale) => {
                inc(&self.metrics.shared_misses);
                None
            }
        }
    }

    fn open(
        &self,
        key: &str,
        ctx: Ctx,
        raw: &[u8],
        token: &AuthToken,
    ) -> Result<(AccessInfo, Duration), Stale> {
        let reject = |why: &str| {
            inc(&self.metrics.shared_rejected);
            tracing::warn!(
                token = %token.fingerprint(),
                context = ctx.as_str(),
                why,
                "shared validation cache entry ignored as forged or tampered (or written with another cache_secret_key)"
            );
            Stale
        };
        let text = std::str::from_utf8(raw).map_err(|_| reject("not UTF-8"))?;
        let (mac_hex, json) = text.split_once('.').ok_or_else(|| reject("no MAC"))?;
        let tag = unhex(mac_hex).ok_or_else(|| reject("MAC is not hex"))?;
        let mut m = mac(&self.secret);
        m.update(key.as_bytes());
        m.update(b"\n");
        m.update(json.as_bytes());
        m.verify_slice(&tag).map_err(|_| reject("MAC mismatch"))?;
        let entry: Entry =
            serde_json::from_str(json).map_err(|_| reject("authentic but unreadable"))?;
        if entry.schema != CACHE_SCHEMA || entry.ctx != ctx.as_str() {
            return Err(reject("schema or context mismatch"));
        }
        let left_ms = entry.valid_until_ms - Utc::now().timestamp_millis();
        if left_ms <= 0 {
            // A genuine entry past its end (Redis expiry lags, or a replay): not used.
            return Err(Stale);
        }
        Ok((
            AccessInfo::new(token.clone(), entry.token),
            Duration::from_millis(left_ms as u64),
        ))
    }

    /// Stores a success for `ttl` (in the background: never delays the request).
    pub fn put(self: &Arc<Self>, ctx: Ctx, hash: &[u8; 32], access: &AccessInfo, ttl: Duration) {
        let key = self.key(ctx, hash);
        let entry = Entry {
            schema: CACHE_SCHEMA.into(),
            ctx: ctx.as_str().into(),
            valid_until_ms: Utc::now().timestamp_millis() + ttl.as_millis() as i64,
            token: access.body().clone(),
        };
        let Ok(json) = serde_json::to_vec(&entry) else {
            return;
        };
        let mut value = hex(&self.sign(&key, &json)).into_bytes();
        value.push(b'.');
        value.extend_from_slice(&json);
        let this = self.clone();
        let ms = ttl.as_millis().max(1) as u64;
        tokio::spawn(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(value).arg("PX").arg(ms);
            let _ = this.run::<()>(cmd).await;
        });
    }
}

/// An entry that is not to be used.
struct Stale;
