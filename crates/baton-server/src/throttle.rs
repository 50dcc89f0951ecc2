//! Failed password logins throttled per source address and per user name (beyond Keystone,
//! whose only defence is the per-account lockout of `[security_compliance]`).
//!
//! A password spray from one address, or a guessing run at one name, stops costing bcrypt
//! after `[baton] login_failures_per_address` / `login_failures_per_user_name` failures within
//! `login_failure_window` seconds: further password logins from that address or for that name
//! get 429 with `Retry-After` before any hashing, until the window ends. Names are counted
//! whether or not the user exists (the key is what the request named), so the answer tells
//! nothing about existence. Counts live in this node's memory (bounded; a fleet multiplies
//! the limits by its node count).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use baton_config::BatonOptions;
use sha2::{Digest, Sha256};

use crate::tokens::{AuthMethod, DomainRef, UserRef};

/// Most keys remembered; the oldest go first past it.
const MAX_KEYS: u64 = 100_000;

/// Failures counted in one window, by address and by name.
pub struct LoginThrottle {
    per_address: u32,
    per_name: u32,
    window: Duration,
    counts: moka::sync::Cache<[u8; 32], (u32, Instant)>,
}

/// What one login request is counted under.
pub struct LoginKeys {
    keys: Vec<([u8; 32], u32)>,
}

impl LoginThrottle {
    /// The limits of `[baton]` (0 turns a limit off).
    pub fn new(options: &BatonOptions) -> LoginThrottle {
        let window = Duration::from_secs(u64::from(options.login_failure_window.max(1)));
        LoginThrottle {
            per_address: options.login_failures_per_address,
            per_name: options.login_failures_per_user_name,
            window,
            counts: moka::sync::Cache::builder()
                .max_capacity(MAX_KEYS)
                .time_to_live(window)
                .build(),
        }
    }

    /// The keys of a request with a password method; `None` for other logins.
    pub fn keys(&self, peer: Option<IpAddr>, methods: &[AuthMethod]) -> Option<LoginKeys> {
        let who = methods.iter().find_map(|m| match m {
            AuthMethod::Password { user, .. } => Some(user),
            _ => None,
        })?;
        let mut keys = Vec::new();
        if let (Some(ip), true) = (peer, self.per_address > 0) {
            keys.push((key("address", &ip.to_string()), self.per_address));
        }
        if self.per_name > 0 {
            let name = match who {
                UserRef::Id(id) => format!("id:{id}"),
                UserRef::Name { name, domain } => match domain {
                    DomainRef::Id(d) => format!("name:{name}@id:{d}"),
                    DomainRef::Name(d) => format!("name:{name}@name:{d}"),
                },
            };
            keys.push((key("user", &name), self.per_name));
        }
        Some(LoginKeys { keys })
    }

    /// Seconds to wait when any of the keys used up its failures in the current window.
    pub fn refused(&self, login: &LoginKeys) -> Option<u64> {
        login.keys.iter().find_map(|(k, limit)| {
            let (count, since) = self.counts.get(k)?;
            let left = self.window.checked_sub(since.elapsed())?;
            (count >= *limit).then(|| left.as_secs().max(1))
        })
    }

    /// Counts one failed login under every key.
    pub fn failed(&self, login: &LoginKeys) {
        for (k, _) in &login.keys {
            let now = Instant::now();
            let entry = match self.counts.get(k) {
                Some((count, since)) if since.elapsed() < self.window => (count + 1, since),
                _ => (1, now),
            };
            self.counts.insert(*k, entry);
        }
    }
}

fn key(kind: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    h.finalize().into()
}
