//! Counters of decisions, refusal reasons, identity calls and cache use, with a Prometheus text
//! rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::reason::FailureReason;

/// Atomic counters; read them with the getters or [`Metrics::render_prometheus`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) confirmed: AtomicU64,
    pub(crate) forwarded_unconfirmed: AtomicU64,
    pub(crate) rejected_401: AtomicU64,
    pub(crate) rejected_503: AtomicU64,
    pub(crate) reasons: [AtomicU64; FailureReason::ALL.len()],
    pub(crate) identity_ok: AtomicU64,
    pub(crate) identity_not_found: AtomicU64,
    pub(crate) identity_failed: AtomicU64,
    pub(crate) identity_pairs: AtomicU64,
    pub(crate) local_hits: AtomicU64,
    pub(crate) local_negative_hits: AtomicU64,
    pub(crate) local_misses: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) shared_hits: AtomicU64,
    pub(crate) shared_misses: AtomicU64,
    pub(crate) shared_errors: AtomicU64,
    pub(crate) shared_rejected: AtomicU64,
    pub(crate) shared_skipped: AtomicU64,
    pub(crate) memcache_hits: AtomicU64,
    pub(crate) memcache_misses: AtomicU64,
    pub(crate) memcache_errors: AtomicU64,
    pub(crate) memcache_rejected: AtomicU64,
    pub(crate) memcache_skipped: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Metrics {
    pub(crate) fn reason(&self, r: FailureReason) {
        inc(&self.reasons[r.index()]);
    }

    /// How often `reason` was recorded (once per request it applied to).
    pub fn reason_count(&self, reason: FailureReason) -> u64 {
        get(&self.reasons[reason.index()])
    }

    /// Requests let through with every token confirmed.
    pub fn confirmed(&self) -> u64 {
        get(&self.confirmed)
    }

    /// Requests let through unconfirmed (`delay_auth_decision`).
    pub fn forwarded_unconfirmed(&self) -> u64 {
        get(&self.forwarded_unconfirmed)
    }

    /// Requests refused with 401.
    pub fn rejected_401(&self) -> u64 {
        get(&self.rejected_401)
    }

    /// Requests refused with 503 (the identity service could not be asked).
    pub fn rejected_503(&self) -> u64 {
        get(&self.rejected_503)
    }

    /// `GET /v3/auth/tokens` calls made (any outcome).
    pub fn identity_calls(&self) -> u64 {
        get(&self.identity_ok) + get(&self.identity_not_found) + get(&self.identity_failed)
    }

    /// `GET /v3/baton/token_pairs/validate` calls made (any outcome): one instead of two.
    pub fn identity_pair_calls(&self) -> u64 {
        get(&self.identity_pairs)
    }

    /// Shared-cache entries ignored because their MAC, key or contents did not check out.
    pub fn shared_cache_rejected(&self) -> u64 {
        get(&self.shared_rejected)
    }

    /// Validations found in the shared (Redis) cache.
    pub fn shared_cache_hits(&self) -> u64 {
        get(&self.shared_hits)
    }

    /// Shared-cache operations that failed or timed out.
    pub fn shared_cache_errors(&self) -> u64 {
        get(&self.shared_errors)
    }

    /// Lookups that skipped the shared cache because it is marked down.
    pub fn shared_cache_skipped(&self) -> u64 {
        get(&self.shared_skipped)
    }

    /// Validations found in memcached (`memcached_servers`).
    pub fn memcache_hits(&self) -> u64 {
        get(&self.memcache_hits)
    }

    /// memcached entries ignored because their MAC, encryption or contents did not check out.
    pub fn memcache_rejected(&self) -> u64 {
        get(&self.memcache_rejected)
    }

    /// memcached operations that failed or timed out.
    pub fn memcache_errors(&self) -> u64 {
        get(&self.memcache_errors)
    }

    /// memcached operations skipped because every server for the key is marked dead.
    pub fn memcache_skipped(&self) -> u64 {
        get(&self.memcache_skipped)
    }

    /// Lookups that waited for another request's identity call for the same key.
    pub fn coalesced(&self) -> u64 {
        get(&self.coalesced)
    }

    /// The rows of `baton_authtoken_cache_lookups_total`.
    fn cache_lookup_rows(&self) -> [(&'static str, u64); 10] {
        [
            ("layer=\"local\",result=\"hit\"", get(&self.local_hits)),
            (
                "layer=\"local\",result=\"negative_hit\"",
                get(&self.local_negative_hits),
            ),
            ("layer=\"local\",result=\"miss\"", get(&self.local_misses)),
            ("layer=\"local\",result=\"coalesced\"", self.coalesced()),
            ("layer=\"shared\",result=\"hit\"", self.shared_cache_hits()),
            ("layer=\"shared\",result=\"miss\"", get(&self.shared_misses)),
            (
                "layer=\"shared\",result=\"skipped\"",
                self.shared_cache_skipped(),
            ),
            ("layer=\"memcached\",result=\"hit\"", self.memcache_hits()),
            (
                "layer=\"memcached\",result=\"miss\"",
                get(&self.memcache_misses),
            ),
            (
                "layer=\"memcached\",result=\"skipped\"",
                self.memcache_skipped(),
            ),
        ]
    }

    /// The counters in the Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, value) in rows {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        };
        family(
            "baton_authtoken_requests_total",
            "Requests seen by the auth_token layer, by outcome.",
            &[
                ("outcome=\"confirmed\"", self.confirmed()),
                (
                    "outcome=\"forwarded_unconfirmed\"",
                    self.forwarded_unconfirmed(),
                ),
                ("outcome=\"rejected_401\"", self.rejected_401()),
                ("outcome=\"rejected_503\"", self.rejected_503()),
            ],
        );
        let reason_labels: Vec<String> = FailureReason::ALL
            .iter()
            .map(|r| format!("reason=\"{}\"", r.as_str()))
            .collect();
        let reason_rows: Vec<(&str, u64)> = FailureReason::ALL
            .iter()
            .zip(&reason_labels)
            .map(|(r, l)| (l.as_str(), self.reason_count(*r)))
            .collect();
        family(
            "baton_authtoken_failures_total",
            "Tokens or requests not confirmed, by machine-readable reason.",
            &reason_rows,
        );
        family(
            "baton_authtoken_identity_requests_total",
            "Token validations sent to the identity service, by result.",
            &[
                ("result=\"ok\"", get(&self.identity_ok)),
                ("result=\"not_found\"", get(&self.identity_not_found)),
                ("result=\"error\"", get(&self.identity_failed)),
            ],
        );
        family(
            "baton_authtoken_identity_pair_requests_total",
            "User and service tokens validated together in one call.",
            &[("", get(&self.identity_pairs))],
        );
        family(
            "baton_authtoken_cache_lookups_total",
            "Validation cache lookups, by layer and result.",
            &self.cache_lookup_rows(),
        );
        family(
            "baton_authtoken_shared_cache_errors_total",
            "Shared cache operations that failed or timed out.",
            &[("", self.shared_cache_errors())],
        );
        family(
            "baton_authtoken_shared_cache_rejected_total",
            "Shared cache entries ignored as forged, tampered or malformed.",
            &[("", self.shared_cache_rejected())],
        );
        family(
            "baton_authtoken_memcache_errors_total",
            "memcached operations that failed or timed out.",
            &[("", self.memcache_errors())],
        );
        family(
            "baton_authtoken_memcache_rejected_total",
            "memcached entries ignored as tampered, undecryptable or malformed.",
            &[("", self.memcache_rejected())],
        );
        out
    }
}
