//! `baton manage fernet_setup | fernet_rotate | credential_setup | credential_rotate |
//! fernet_export` on keys shared through the database, runnable on any node.
//!
//! Rotation keeps `keystone-manage`'s semantics and adds the fleet's rules: the staged key is
//! promoted only when every live node holds it (else a token minted with the new primary would
//! not decrypt on that node), and a key is pruned only once no token that `[token]
//! expiration + allow_expired_window` still accepts can need it (when each key stopped
//! encrypting is recorded in the set). The set is replaced by compare-and-swap on its version:
//! of two rotations at once, one fails and changes nothing.

use std::path::Path;

use baton_config::{IdentityConfig, KeyDistribution};
use baton_store::{KeySetRow, Store};
use baton_token::{FernetKey, KeyRepository, RepositoryError, RotateOutcome, SharedKeys};

use super::{
    fetch, parse_fingerprints, read_kek, FleetError, CREDENTIAL, FERNET_TOKENS, LIVE_WITHIN_SECS,
};

/// Which key repository an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repository {
    /// `[fernet_tokens]`.
    FernetTokens,
    /// `[credential]`.
    Credential,
}

impl Repository {
    /// The `baton_key_set` name.
    pub fn name(self) -> &'static str {
        match self {
            Repository::FernetTokens => FERNET_TOKENS,
            Repository::Credential => CREDENTIAL,
        }
    }

    fn setup_command(self) -> &'static str {
        match self {
            Repository::FernetTokens => "fernet_setup",
            Repository::Credential => "credential_setup",
        }
    }

    /// `key_repository`, `max_active_keys` and `key_distribution` of its section.
    pub fn options(self, config: &IdentityConfig) -> (&Path, usize, KeyDistribution) {
        match self {
            Repository::FernetTokens => (
                &config.fernet_tokens.key_repository,
                config.fernet_tokens.max_active_keys as usize,
                config.fernet_tokens.key_distribution,
            ),
            Repository::Credential => (
                &config.credential.key_repository,
                config.credential.max_active_keys as usize,
                config.credential.key_distribution,
            ),
        }
    }
}

/// What setup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupReport {
    /// A set was stored: imported from `key_repository` or made fresh (keys 0 and 1).
    Created {
        /// Whether the keys came from the existing `key_repository`.
        imported: bool,
        /// Key indices, highest first.
        keys: Vec<u64>,
    },
    /// The database already holds a set; nothing changed.
    AlreadyInitialized {
        /// Its version.
        version: i64,
    },
}

/// `fernet_setup` / `credential_setup` with `key_distribution = database`: stores the set
/// unless one exists, importing a non-empty `key_repository` (so a fleet moving from copied
/// directories keeps its keys) or else making Keystone's initial keys 0 and 1.
pub async fn setup(
    config: &IdentityConfig,
    store: &Store,
    repository: Repository,
    now: i64,
) -> Result<SetupReport, FleetError> {
    let kek = read_kek(config)?;
    store.ensure_baton_tables().await?;
    if let Some(row) = store.get_key_set(repository.name()).await? {
        return Ok(SetupReport::AlreadyInitialized {
            version: row.version,
        });
    }
    let (dir, max, _) = repository.options(config);
    let local = KeyRepository::new(dir, max.max(1));
    let (keys, imported) = match local.load() {
        Ok(set) => (SharedKeys::from_key_set(&set, now.max(0) as u64), true),
        Err(RepositoryError::Missing { .. } | RepositoryError::Empty { .. }) => {
            (SharedKeys::initial(), false)
        }
        // Keys that exist but cannot be read are not silently replaced: tokens depend on them.
        Err(e) => return Err(e.into()),
    };
    let row = sealed_row(&kek, repository, &keys, 1, now)?;
    if !store.create_key_set(&row).await? {
        let version = store
            .get_key_set(repository.name())
            .await?
            .map_or(1, |r| r.version);
        return Ok(SetupReport::AlreadyInitialized { version });
    }
    if let Err(e) = local.mirror(&keys.files()) {
        tracing::warn!(error = %e, "shared keys stored, but not mirrored into the local key repository");
    }
    Ok(SetupReport::Created {
        imported,
        keys: keys.entries().keys().rev().copied().collect(),
    })
}

fn sealed_row(
    kek: &FernetKey,
    repository: Repository,
    keys: &SharedKeys,
    version: i64,
    now: i64,
) -> Result<KeySetRow, FleetError> {
    let sealed = keys
        .seal(kek, repository.name(), version as u64)
        .map_err(|source| FleetError::Sealed {
            repository: repository.name().into(),
            version,
            source,
        })?;
    Ok(KeySetRow {
        repository: repository.name().into(),
        version,
        sealed,
        updated_at: now,
    })
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// The repository's outcome, as `keystone-manage` reports it.
    pub outcome: RotateOutcome,
    /// The set's new version.
    pub version: i64,
    /// Notes for the operator (a rule overridden with `force`).
    pub notes: Vec<String>,
}

/// `fernet_rotate` / `credential_rotate` with `key_distribution = database`. Refused (nothing
/// changed) while a live node lacks the staged key, while pruning would take a key a still
/// acceptable token may need (tokens only; `force` overrides this one), and when another
/// rotation got in first. Credential rows must all be on the primary key beforehand; the
/// caller checks that (`credentials::check_rotatable`).
pub async fn rotate(
    config: &IdentityConfig,
    store: &Store,
    repository: Repository,
    now: i64,
    force: bool,
) -> Result<RotateReport, FleetError> {
    let kek = read_kek(config)?;
    let Some((version, mut keys)) = fetch(store, &kek, repository.name()).await? else {
        return Err(FleetError::NoKeySet {
            repository: repository.name().into(),
            setup: repository.setup_command(),
        });
    };
    check_staged_everywhere(store, repository, &keys, now).await?;
    let (_, max, _) = repository.options(config);
    let mut notes = Vec::new();
    if repository == Repository::FernetTokens {
        if let Err(refusal) = check_pruning(config, &keys, max, now) {
            if !force {
                return Err(FleetError::Refused(format!(
                    "{refusal} (rerun with --force to rotate anyway)"
                )));
            }
            notes.push(format!("rotating anyway (--force), although {refusal}"));
        }
    }
    let outcome = keys
        .rotate(max, now.max(0) as u64)
        .ok_or_else(|| FleetError::Refused("the shared set has no staged key 0".into()))?;
    let next = version + 1;
    let row = sealed_row(&kek, repository, &keys, next, now)?;
    if !store.swap_key_set(version, &row).await? {
        return Err(FleetError::Refused(format!(
            "the shared {} key set changed while rotating (another rotation?); nothing changed: run it again",
            repository.name()
        )));
    }
    Ok(RotateReport {
        outcome,
        version: next,
        notes,
    })
}

/// Every live node must hold the staged key before it becomes the primary.
async fn check_staged_everywhere(
    store: &Store,
    repository: Repository,
    keys: &SharedKeys,
    now: i64,
) -> Result<(), FleetError> {
    let Some(staged) = keys.staged().map(FernetKey::fingerprint) else {
        return Ok(());
    };
    for node in store.list_nodes().await? {
        let age = now - node.heartbeat_at;
        if node.repository != repository.name() || age > LIVE_WITHIN_SECS {
            continue;
        }
        let holds = parse_fingerprints(&node.key_fingerprints)
            .iter()
            .any(|(_, f)| *f == staged);
        if !holds {
            return Err(FleetError::Refused(format!(
                "refusing to rotate: live node {} ({}, heartbeat {age} s ago, key set version {}) has not loaded the staged key {staged} yet; wait for it to catch up (a few seconds) or stop it",
                node.name,
                node.node_id,
                node.key_set_version.map_or("none".into(), |v| v.to_string()),
            )));
        }
    }
    Ok(())
}

/// A pruned key must not be needed by a token still acceptable: one minted until the key
/// stopped encrypting (plus the time nodes take to notice) lives `expiration +
/// allow_expired_window` more, or a continuation token's `[continuation] token_lifetime` when
/// that is longer.
fn check_pruning(
    config: &IdentityConfig,
    keys: &SharedKeys,
    max_active_keys: usize,
    now: i64,
) -> Result<(), String> {
    let accepted =
        i64::from(config.token.expiration) + i64::from(config.token.allow_expired_window);
    let continuation = if config.continuation.enabled() {
        i64::from(config.continuation.token_lifetime)
    } else {
        0
    };
    let retention = accepted.max(continuation) + LIVE_WITHIN_SECS;
    for (index, demoted_at) in keys.would_prune(max_active_keys) {
        let demoted = demoted_at.map_or(now, |d| d as i64);
        let needed_until = demoted + retention;
        if now < needed_until {
            return Err(format!(
                "refusing to rotate: it would prune key {index}, which encrypted tokens until {} s ago; tokens within expiration {} + allow_expired_window {} (or a continuation token's token_lifetime {}) may need it for {} s more (raise [fernet_tokens] max_active_keys or rotate later)",
                now - demoted,
                config.token.expiration,
                config.token.allow_expired_window,
                continuation,
                needed_until - now
            ));
        }
    }
    Ok(())
}

/// `baton manage fernet_export DIR`: the keys as Keystone's numbered files (0600, directory
/// 0700) in `dir`, for Keystone nodes of a mixed fleet. With `filesystem` the local
/// repository is copied. Returns the indices written, highest first.
pub async fn export(
    config: &IdentityConfig,
    store: &Store,
    repository: Repository,
    dir: &Path,
) -> Result<Vec<u64>, FleetError> {
    let (local, max, distribution) = repository.options(config);
    let files = if distribution == KeyDistribution::Database {
        let kek = read_kek(config)?;
        let (_, keys) = fetch(store, &kek, repository.name())
            .await?
            .ok_or_else(|| FleetError::NoKeySet {
                repository: repository.name().into(),
                setup: repository.setup_command(),
            })?;
        keys.files()
    } else {
        let set = KeyRepository::new(local, max.max(1)).load()?;
        SharedKeys::from_key_set(&set, 0).files()
    };
    KeyRepository::new(dir, files.len().max(1)).mirror(&files)?;
    Ok(files.keys().rev().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_waits_for_continuation_tokens_too() {
        let t0 = 1_000_000;
        let mut keys = SharedKeys::initial();
        keys.rotate(3, t0).expect("rotated");
        // The next rotation would prune key 1, which stopped encrypting at t0.
        assert_eq!(keys.would_prune(3), [(1, Some(t0))]);
        let mut config = IdentityConfig::default();
        config.token.expiration = 100;
        config.token.allow_expired_window = 0;
        let now = t0 as i64 + 200;
        assert!(check_pruning(&config, &keys, 3, now).is_ok());
        // Continuation tokens live 900 s: key 1 may still be needed.
        config.continuation.senders = vec![("nova".into(), 3600)];
        config.continuation.token_lifetime = 900;
        let refusal = check_pruning(&config, &keys, 3, now).unwrap_err();
        assert!(refusal.contains("token_lifetime 900"), "{refusal}");
    }
}
