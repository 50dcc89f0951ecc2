//! keystonemiddleware's memcached token cache (`memcached_servers`), shared with it: the same
//! keys, the same protection ([`crate::memcache_crypt`]) and the same value, the JSON of
//! `{"token": <the validation body>}`, stored for at most `token_cache_time`.
//!
//! * keystonemiddleware keeps one entry per token for both validation contexts (plain and
//!   allow_expired), and so does Baton here: a plain lookup refuses an expired body anyway
//!   (`Authenticator::check_user_token`), and an allow_expired one uses it only within
//!   `allow_expired_window` of its expiry (`Authenticator::ttl`).
//! * Only successful validations are stored, as keystonemiddleware 13 does.
//! * keystonemiddleware puts the token itself in the body (`auth_token`); Baton never writes it,
//!   and an entry whose `auth_token` is not the presented token is refused (it can only come
//!   from a writer to an unprotected cache).
//! * An entry that fails its MAC, does not decrypt, or is not a token body is a miss, counted and
//!   logged with the token's fingerprint; the token is validated again.
//! * Writes happen in the background, so they never delay a response.

use std::sync::Arc;
use std::time::Duration;

use baton_client::{AccessInfo, AuthToken, SecretString};
use baton_types::TokenResponse;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::config::MemcacheConfig;
use crate::memcache_crypt::{entry_keys, EntryKeys, Strategy};
use crate::memcached::Memcached;
use crate::metrics::{inc, Metrics};

pub(crate) struct TokenMemcache {
    servers: Memcached,
    strategy: Strategy,
    secret: Option<SecretString>,
    metrics: Arc<Metrics>,
}

/// What Baton stores: keystonemiddleware's `{"token": ...}` without the token itself. One key
/// only: keystonemiddleware takes a two-item value for its old `(data, expires)` pair.
#[derive(Serialize)]
struct Stored<'a> {
    token: &'a baton_types::TokenBody,
}

impl TokenMemcache {
    pub fn new(cfg: &MemcacheConfig, metrics: Arc<Metrics>) -> Result<TokenMemcache, String> {
        let servers = Memcached::new(&cfg.servers, cfg.pool.clone(), metrics.clone())?;
        if cfg.strategy != Strategy::None && cfg.secret.is_none() {
            return Err(
                "memcache_secret_key must be set when memcache_security_strategy is".into(),
            );
        }
        Ok(TokenMemcache {
            servers,
            strategy: cfg.strategy,
            secret: cfg.secret.clone(),
            metrics,
        })
    }

    fn keys(&self, token: &str) -> EntryKeys {
        let secret = self.secret.as_ref().map(|s| s.expose().as_bytes());
        entry_keys(token, secret.unwrap_or_default(), self.strategy)
    }

    /// The memcached key of `token` (for operators and tests).
    pub fn key(&self, token: &str) -> String {
        self.keys(token).key
    }

    /// The validation stored for `token`, if there is a usable one.
    pub async fn get(&self, token: &AuthToken) -> Option<AccessInfo> {
        let keys = self.keys(token.expose());
        let stored = match self.servers.get(&keys.key).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                inc(&self.metrics.memcache_misses);
                return None;
            }
            Err(()) => return None,
        };
        match self.open(&keys, &stored, token) {
            Ok(access) => {
                inc(&self.metrics.memcache_hits);
                Some(access)
            }
            Err(why) => {
                inc(&self.metrics.memcache_rejected);
                tracing::warn!(
                    token = %token.fingerprint(),
                    strategy = self.strategy.as_str(),
                    why,
                    "memcached token cache entry ignored as tampered or unreadable (or written with another memcache_secret_key); validating the token again"
                );
                None
            }
        }
    }

    fn open(
        &self,
        keys: &EntryKeys,
        stored: &[u8],
        token: &AuthToken,
    ) -> Result<AccessInfo, &'static str> {
        let json = keys.unprotect(stored).map_err(|e| e.as_str())?;
        let value: serde_json::Value = serde_json::from_slice(&json).map_err(|_| "not JSON")?;
        if let Some(theirs) = value.pointer("/token/auth_token") {
            let same = theirs
                .as_str()
                .is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.expose().as_bytes())));
            if !same {
                return Err("written for another token");
            }
        }
        let parsed: TokenResponse =
            serde_json::from_value(value).map_err(|_| "not a token validation")?;
        Ok(AccessInfo::new(token.clone(), parsed.token))
    }

    /// Stores a success for `ttl` (in the background: never delays the request).
    pub fn put(self: &Arc<Self>, access: &AccessInfo, ttl: Duration) {
        let keys = self.keys(access.token().expose());
        let Ok(json) = serde_json::to_vec(&Stored {
            token: access.body(),
        }) else {
            return;
        };
        let value = keys.protect(&json);
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.servers.set(&keys.key, value, ttl).await;
        });
    }
}
