//! Fernet key retention against `expiration + allow_expired_window`, and the decision behind
//! `baton manage fernet_rotate --rotation-interval`.
//!
//! With `max_active_keys` K the repository holds the staged key, the primary and K - 2
//! secondaries. A key stops encrypting at the rotation that demotes it and is pruned K - 2
//! rotations later, so a token minted just before a rotation stays decryptable for (K - 2) x R
//! (R: the rotation interval). That must cover `expiration + allow_expired_window`, the time
//! Keystone may still be asked to validate the token with `allow_expired` — Keystone's FAQ
//! formula `max_active_keys = (expiration + allow_expired_window) / R + 2` — and a continuation
//! token's `[continuation] token_lifetime` when that is longer (continuation tokens are never
//! accepted expired, but may live longer than `expiration`; the database key distribution's
//! pruning check in `baton-server` `fleet/manage.rs` counts it the same way).

use std::time::Duration;

use baton_config::IdentityConfig;

/// The numbers retention depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `[token] expiration`, seconds.
    pub expiration: u64,
    /// `[token] allow_expired_window`, seconds.
    pub allow_expired_window: u64,
    /// `[continuation] token_lifetime` when continuation tokens are enabled, else 0.
    pub continuation_lifetime: u64,
    /// `[fernet_tokens] max_active_keys`.
    pub max_active_keys: u64,
}

/// What [`Retention::check`] concluded about a rotation interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every token stays decryptable while it can be accepted.
    Safe,
    /// Rotating on this schedule makes acceptable tokens undecryptable.
    Unsafe,
    /// No interval was given and `max_active_keys` is at least 3: nothing to decide.
    Unchecked,
}

/// A verdict with the numbers behind it, as one line for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationCheck {
    /// Whether the rotation schedule keeps every acceptable token decryptable.
    pub verdict: Verdict,
    /// The numbers behind the verdict, as one line for operators.
    pub explanation: String,
    /// The smallest `max_active_keys` that is safe for the interval given, if one was.
    pub min_keys: Option<u64>,
    /// The shortest safe rotation interval for the configured key count, in seconds (`None`
    /// when K <= 2: no interval is safe).
    pub min_interval: Option<u64>,
}

impl Retention {
    /// The numbers of keystone.conf: `[token] expiration` and `allow_expired_window`,
    /// `[fernet_tokens] max_active_keys`.
    pub fn from_config(config: &IdentityConfig) -> Retention {
        Retention {
            expiration: u64::from(config.token.expiration),
            allow_expired_window: u64::from(config.token.allow_expired_window),
            continuation_lifetime: if config.continuation.enabled() {
                u64::from(config.continuation.token_lifetime)
            } else {
                0
            },
            max_active_keys: u64::from(config.fernet_tokens.max_active_keys),
        }
    }

    /// How long after issue a token may still be validated: `expiration +
    /// allow_expired_window`, or a continuation token's lifetime when longer.
    pub fn required(&self) -> u64 {
        self.expiration
            .saturating_add(self.allow_expired_window)
            .max(self.continuation_lifetime)
    }

    /// How long a token is guaranteed to stay decryptable when keys rotate every `interval`
    /// seconds: (K - 2) x interval.
    pub fn guaranteed(&self, interval: u64) -> u64 {
        self.max_active_keys
            .saturating_sub(2)
            .saturating_mul(interval)
    }

    /// The fewest keys that keep every acceptable token decryptable when rotating every
    /// `interval` seconds: 2 + ceil(required / interval).
    pub fn min_keys(&self, interval: u64) -> u64 {
        2 + self.required().div_ceil(interval.max(1))
    }

    /// The most frequent safe rotation for the configured key count, as the shortest interval in
    /// seconds: ceil(required / (K - 2)). `None` when K <= 2.
    pub fn min_interval(&self) -> Option<u64> {
        let secondaries = self.max_active_keys.checked_sub(2).filter(|n| *n > 0)?;
        Some(self.required().div_ceil(secondaries))
    }

    /// Whether rotating every `interval` keeps tokens decryptable for as long as they can be
    /// accepted. With K <= 2 no interval is safe, so the answer is `Unsafe` even without one.
    pub fn check(&self, interval: Option<Duration>) -> RotationCheck {
        let k = self.max_active_keys;
        let accepted = self.expiration.saturating_add(self.allow_expired_window);
        let need = if self.continuation_lifetime > accepted {
            format!(
                "a continuation token's token_lifetime {} (longer than expiration {} + allow_expired_window {}) must stay decryptable",
                human(self.continuation_lifetime),
                human(self.expiration),
                human(self.allow_expired_window)
            )
        } else {
            format!(
                "expiration {} + allow_expired_window {} = {} must stay decryptable",
                human(self.expiration),
                human(self.allow_expired_window),
                human(self.required())
            )
        };
        let min_interval = self.min_interval();
        let Some(interval) = interval.map(|d| d.as_secs()) else {
            return match min_interval {
                None => RotationCheck {
                    verdict: Verdict::Unsafe,
                    explanation: format!(
                        "{need}, but with max_active_keys = {k} a rotation prunes the key every live token was minted with (no secondary key is kept)"
                    ),
                    min_keys: None,
                    min_interval,
                },
                Some(min) => RotationCheck {
                    verdict: Verdict::Unchecked,
                    explanation: format!(
                        "{need}; with max_active_keys = {k}, rotate no more often than every {}",
                        human(min)
                    ),
                    min_keys: None,
                    min_interval,
                },
            };
        };
        let min_keys = self.min_keys(interval);
        let guaranteed = self.guaranteed(interval);
        let schedule = format!(
            "max_active_keys = {k} and a rotation every {} keep a token decryptable for ({k} - 2) x {} = {}",
            human(interval),
            human(interval),
            human(guaranteed)
        );
        let shortest = match min_interval {
            Some(min) => format!("rotate no more often than every {}", human(min)),
            None => "no rotation interval is safe with this key count".to_string(),
        };
        if guaranteed >= self.required() {
            RotationCheck {
                verdict: Verdict::Safe,
                explanation: format!("{need}; {schedule}"),
                min_keys: Some(min_keys),
                min_interval,
            }
        } else {
            RotationCheck {
                verdict: Verdict::Unsafe,
                explanation: format!(
                    "{need}, but {schedule}: set [fernet_tokens] max_active_keys = {min_keys} for this schedule, or {shortest}"
                ),
                min_keys: Some(min_keys),
                min_interval,
            }
        }
    }
}

/// Seconds as `176400 s (2d 1h)`: exact for copying into a file, readable at a glance.
pub fn human(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut left = seconds;
    let mut parts = Vec::new();
    for (size, unit) in units {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        }
    }
    format!("{seconds} s ({})", parts.join(" "))
}

/// What `baton manage fernet_rotate` does with a check: `Ok(note)` to rotate (printing the note,
/// if any), `Err(refusal)` to stop without touching the keys. `--force` turns a refusal into a
/// note.
pub fn rotate_decision(check: &RotationCheck, force: bool) -> Result<Option<String>, String> {
    match check.verdict {
        Verdict::Safe => Ok(Some(format!("key retention is safe: {}", check.explanation))),
        Verdict::Unchecked => Ok(Some(format!(
            "key retention not checked (no --rotation-interval): {}",
            check.explanation
        ))),
        Verdict::Unsafe if force => Ok(Some(format!(
            "rotating anyway (--force), although {}",
            check.explanation
        ))),
        Verdict::Unsafe => Err(format!(
            "refusing to rotate: {}; tokens inside expiration + allow_expired_window would become undecryptable (rerun with --force to rotate anyway)",
            check.explanation
        )),
    }
}
