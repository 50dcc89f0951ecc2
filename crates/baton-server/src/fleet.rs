//! Several nodes on one database: Fernet and credential keys shared through it
//! (`key_distribution = database`), node heartbeats, and the fleet view.
//!
//! With `database`, the key set of a repository lives in `baton_key_set`, sealed with
//! `[fernet_tokens] key_encryption_key_file` (see `baton_token::shared`). Every node loads it
//! at start, looks at its `version` on every refresher tick (1 s), installs a newer set at
//! once and mirrors it into its own `key_repository` (atomically, for tools and Keystone
//! nodes reading that directory). A node never drops the keys in use because the database
//! is unreachable or holds a bad or older set: it keeps them and logs one line.
//!
//! Every node heartbeats into `baton_node` every [`HEARTBEAT_INTERVAL`] (and right after
//! loading a new set) with the fingerprints of the keys it holds; a node is live while its
//! heartbeat is younger than [`LIVE_WITHIN_SECS`]. `fernet_rotate` promotes the staged key
//! only when every live node holds it ([`manage`]).

pub mod manage;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_config::{IdentityConfig, KeyDistribution};
use baton_store::{NodeRow, Store, StoreError};
use baton_token::{
    read_key_encryption_key, FernetKey, KeyRepository, KeyRing, RepositoryError, SealError,
    SharedKeys,
};
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::tokens::TokenService;

/// The `baton_key_set` / `baton_node` name of the token keys.
pub const FERNET_TOKENS: &str = "fernet_tokens";
/// The `baton_key_set` / `baton_node` name of the credential keys.
pub const CREDENTIAL: &str = "credential";
/// How often a node records its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A node is live while its last heartbeat is at most this old (3 heartbeats).
pub const LIVE_WITHIN_SECS: i64 = 15;
/// Nodes silent for longer are forgotten.
const FORGET_AFTER_SECS: i64 = 7 * 24 * 3600;

/// Why shared keys could not be set up, loaded, rotated or exported. No variant holds key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The key-encryption key file is unusable.
    #[error("[fernet_tokens] key_encryption_key_file {0}")]
    Kek(String),
    /// A key directory is unusable.
    #[error("{0}")]
    Repository(#[from] RepositoryError),
    /// The sealed set does not open or is not what its row says.
    #[error("shared {repository} key set (version {version}): {source}")]
    Sealed {
        /// `fernet_tokens` or `credential`.
        repository: String,
        /// The row's version.
        version: i64,
        /// What is wrong.
        #[source]
        source: SealError,
    },
    /// No set in the database yet.
    #[error("the database holds no shared {repository} key set: run `baton manage {setup}` (key_distribution = database)")]
    NoKeySet {
        /// `fernet_tokens` or `credential`.
        repository: String,
        /// The setup command.
        setup: &'static str,
    },
    /// A rule refused the operation (lagging node, pruning too early, concurrent change).
    #[error("{0}")]
    Refused(String),
}

/// What a node holds of one shared repository.
#[derive(Default)]
struct Held {
    /// The version loaded from the database.
    version: Option<i64>,
    /// The keys loaded.
    keys: Option<SharedKeys>,
    /// The newest version seen in the database.
    seen: Option<i64>,
    /// Why `seen` is not the loaded version (one line, no key material).
    problem: Option<String>,
}

/// This node's part in the fleet; cheap to share (`Arc`).
pub struct Fleet {
    node_id: String,
    name: String,
    address: Mutex<Option<String>>,
    started_at: i64,
    config: Arc<IdentityConfig>,
    store: Store,
    clock: Clock,
    kek: Option<FernetKey>,
    tokens: Mutex<Held>,
    credential: Mutex<Held>,
    last_heartbeat: Mutex<Option<Instant>>,
    heartbeat_failing: AtomicBool,
    /// Since when the database has not answered the key poll (Unix seconds).
    unreachable_since: Mutex<Option<i64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host name, for the fleet view (no dependency: Linux exposes it as a file).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether any repository is shared through the database.
pub fn uses_database(config: &IdentityConfig) -> bool {
    config.fernet_tokens.key_distribution == KeyDistribution::Database
        || config.credential.key_distribution == KeyDistribution::Database
}

/// Reads `[fernet_tokens] key_encryption_key_file`.
pub fn read_kek(config: &IdentityConfig) -> Result<FernetKey, FleetError> {
    let path = config
        .fernet_tokens
        .key_encryption_key_file
        .as_deref()
        .ok_or_else(|| FleetError::Kek("is not set (key_distribution = database)".into()))?;
    read_key_encryption_key(path).map_err(|e| FleetError::Kek(e.to_string()))
}

/// `index:fingerprint,...`, the heartbeat's form of a key list.
pub fn fingerprint_list(fps: &[(u64, String)]) -> String {
    fps.iter()
        .map(|(i, f)| format!("{i}:{f}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The fingerprints of a heartbeat's list.
pub fn parse_fingerprints(text: &str) -> Vec<(u64, String)> {
    text.split(',')
        .filter_map(|item| {
            let (i, f) = item.split_once(':')?;
            Some((i.parse().ok()?, f.to_string()))
        })
        .collect()
}

/// Loads and opens the shared set of `repository`: `None` when there is none.
pub async fn fetch(
    store: &Store,
    kek: &FernetKey,
    repository: &str,
) -> Result<Option<(i64, SharedKeys)>, FleetError> {
    let Some(row) = store.get_key_set(repository).await? else {
        return Ok(None);
    };
    let version = u64::try_from(row.version).unwrap_or(0);
    let keys = SharedKeys::open(kek, &row.sealed, repository, version).map_err(|source| {
        FleetError::Sealed {
            repository: repository.to_string(),
            version: row.version,
            source,
        }
    })?;
    Ok(Some((row.version, keys)))
}

/// Writes `keys` into `dir` as Keystone's numbered files (best effort for a node's mirror:
/// the node works from memory; a failure is logged).
fn mirror(dir: &std::path::Path, keys: &SharedKeys) {
    let files = keys.files();
    let repo = KeyRepository::new(dir, files.len().max(1));
    if let Err(e) = repo.mirror(&files) {
        tracing::warn!(error = %e, "could not mirror the shared keys into the key repository; serving from the database's set");
    }
}

impl Fleet {
    /// Joins the fleet: creates Baton's tables if missing, reads the KEK when a repository is
    /// shared, and returns the token key ring (from the database, mirrored into
    /// `key_repository`, or from `key_repository` with `filesystem`).
    pub async fn open(
        config: Arc<IdentityConfig>,
        store: Store,
        clock: Clock,
    ) -> Result<(Fleet, KeyRing), FleetError> {
        store.ensure_baton_tables().await?;
        let kek = if uses_database(&config) {
            Some(read_kek(&config)?)
        } else {
            None
        };
        let fleet = Fleet {
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            name: host_name(),
            address: Mutex::new(None),
            started_at: clock.now().timestamp(),
            config,
            store,
            clock,
            kek,
            tokens: Mutex::new(Held::default()),
            credential: Mutex::new(Held::default()),
            last_heartbeat: Mutex::new(None),
            heartbeat_failing: AtomicBool::new(false),
            unreachable_since: Mutex::new(None),
        };
        let ring = fleet.open_token_keys().await?;
        if fleet.config.credential.key_distribution == KeyDistribution::Database {
            // Credential keys may be set up later; the refresher picks them up then.
            if let Err(e) = fleet.catch_up(CREDENTIAL, None).await {
                tracing::warn!(error = %e, "shared credential keys not loaded");
            }
        }
        Ok((fleet, ring))
    }

    async fn open_token_keys(&self) -> Result<KeyRing, FleetError> {
        let opts = &self.config.fernet_tokens;
        if opts.key_distribution == KeyDistribution::Filesystem {
            let repo = KeyRepository::new(&opts.key_repository, opts.max_active_keys as usize);
            return Ok(KeyRing::load(repo)?);
        }
        let kek = self
            .kek
            .as_ref()
            .ok_or_else(|| FleetError::Kek("is not set".into()))?;
        let Some((version, keys)) = fetch(&self.store, kek, FERNET_TOKENS).await? else {
            return Err(FleetError::NoKeySet {
                repository: FERNET_TOKENS.into(),
                setup: "fernet_setup",
            });
        };
        let set = keys.key_set().ok_or_else(|| FleetError::Sealed {
            repository: FERNET_TOKENS.into(),
            version,
            source: SealError::Count(0),
        })?;
        mirror(&opts.key_repository, &keys);
        let mut held = lock(&self.tokens);
        held.version = Some(version);
        held.seen = Some(version);
        held.keys = Some(keys);
        Ok(KeyRing::from_key_set(set))
    }

    /// This node's id in `baton_node`.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Records where this node listens (shown in the fleet view).
    pub fn set_address(&self, address: String) {
        *lock(&self.address) = Some(address);
    }

    /// The version of the shared set of `repository` this node has loaded.
    pub fn loaded_version(&self, repository: &str) -> Option<i64> {
        lock(self.held(repository)).version
    }

    /// The credential keys loaded from the database (`[credential] key_distribution =
    /// database`), if any set exists.
    pub fn credential_keys(&self) -> Option<SharedKeys> {
        lock(&self.credential).keys.clone()
    }

    fn held(&self, repository: &str) -> &Mutex<Held> {
        if repository == CREDENTIAL {
            &self.credential
        } else {
            &self.tokens
        }
    }

    fn shared(&self, repository: &str) -> bool {
        let d = if repository == CREDENTIAL {
            self.config.credential.key_distribution
        } else {
            self.config.fernet_tokens.key_distribution
        };
        d == KeyDistribution::Database
    }

    /// Why this node's keys lag the database's sets, or `None` when they are in step (always
    /// with `filesystem`). Cheap: no database call (the refresher's last look is used), so a
    /// health check may call it on every request.
    pub fn key_lag(&self) -> Option<String> {
        for repository in [FERNET_TOKENS, CREDENTIAL] {
            if !self.shared(repository) {
                continue;
            }
            let held = lock(self.held(repository));
            if let Some(problem) = &held.problem {
                return Some(format!("{repository} keys: {problem}"));
            }
            if held.seen.is_some() && held.seen != held.version {
                return Some(format!(
                    "{repository} keys: version {:?} loaded, {:?} in the database",
                    held.version, held.seen
                ));
            }
        }
        let since = *lock(&self.unreachable_since);
        match since {
            Some(t) if self.shared(FERNET_TOKENS) || self.shared(CREDENTIAL) => Some(format!(
                "shared key sets not checked for {} s: the database does not answer",
                self.clock.now().timestamp() - t
            )),
            _ => None,
        }
    }

    /// One refresher tick: loads newer shared sets (installing token keys into `tokens`),
    /// then heartbeats when due or when keys changed.
    pub async fn refresh(&self, tokens: &TokenService) {
        let mut changed = false;
        if self.kek.is_some() {
            match self.store.key_set_versions().await {
                Ok(versions) => {
                    *lock(&self.unreachable_since) = None;
                    for (repository, version) in versions {
                        if !self.shared(&repository) {
                            continue;
                        }
                        changed |= self.apply(&repository, version, tokens).await;
                    }
                }
                Err(e) => {
                    let mut since = lock(&self.unreachable_since);
                    if since.is_none() {
                        *since = Some(self.clock.now().timestamp());
                        tracing::error!(error = %e, "cannot poll the shared key sets; keeping the loaded keys");
                    }
                }
            }
        }
        let due = lock(&self.last_heartbeat).is_none_or(|t| t.elapsed() >= HEARTBEAT_INTERVAL);
        if changed || due {
            self.heartbeat(tokens).await;
        }
    }

    /// Catches up with `version` of `repository` seen in the database; whether keys changed.
    async fn apply(&self, repository: &str, version: i64, tokens: &TokenService) -> bool {
        let loaded = lock(self.held(repository)).version;
        if loaded == Some(version) {
            return false;
        }
        match self.catch_up(repository, Some(version)).await {
            Ok(Some(keys)) => {
                if repository == FERNET_TOKENS {
                    if let Some(set) = keys.key_set() {
                        tokens.install_keys(set);
                    }
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                let line = e.to_string();
                let mut held = lock(self.held(repository));
                if held.problem.as_deref() != Some(line.as_str()) {
                    tracing::error!(repository, error = %line, "shared keys not loaded; keeping the loaded keys");
                    held.problem = Some(line);
                }
                false
            }
        }
    }

    /// Loads the database's set of `repository` if it is newer than the loaded one (never an
    /// older one: a replayed row must not bring retired keys back), mirrors it, and returns
    /// it when it was taken.
    async fn catch_up(
        &self,
        repository: &str,
        seen: Option<i64>,
    ) -> Result<Option<SharedKeys>, FleetError> {
        let kek = self
            .kek
            .as_ref()
            .ok_or_else(|| FleetError::Kek("is not set".into()))?;
        let loaded = {
            let mut held = lock(self.held(repository));
            if seen.is_some() {
                held.seen = seen;
            }
            held.version
        };
        let Some((version, keys)) = fetch(&self.store, kek, repository).await? else {
            return Ok(None);
        };
        if loaded.is_some_and(|l| version < l) {
            return Err(FleetError::Refused(format!(
                "the database holds version {version}, older than the loaded {}: not going back (a restored database? restart the nodes)",
                loaded.unwrap_or_default()
            )));
        }
        let dir = if repository == CREDENTIAL {
            &self.config.credential.key_repository
        } else {
            &self.config.fernet_tokens.key_repository
        };
        mirror(dir, &keys);
        let fps = keys.fingerprints();
        let mut held = lock(self.held(repository));
        held.version = Some(version);
        held.seen = Some(version.max(held.seen.unwrap_or(version)));
        held.keys = Some(keys.clone());
        held.problem = None;
        drop(held);
        tracing::info!(repository, version, keys = %fingerprint_list(&fps), "loaded shared keys");
        Ok(Some(keys))
    }

    /// Writes this node's heartbeat rows (and forgets long-silent nodes).
    pub async fn heartbeat(&self, tokens: &TokenService) {
        *lock(&self.last_heartbeat) = Some(Instant::now());
        let now = self.clock.now().timestamp();
        let mut rows = vec![self.token_row(tokens, now)];
        if self.shared(CREDENTIAL) {
            rows.push(self.shared_row(CREDENTIAL, now));
        }
        let lag = tokens.change_feed_status().last_lag_ms;
        for row in &mut rows {
            row.change_lag_ms = lag;
        }
        for row in &rows {
            if let Err(e) = self.store.heartbeat(row).await {
                // One line when heartbeats start failing, not one every interval.
                if !self.heartbeat_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "could not record the heartbeat");
                }
                return;
            }
        }
        if self.heartbeat_failing.swap(false, Ordering::Relaxed) {
            tracing::info!("heartbeats recorded again");
        }
        if let Err(e) = self.store.prune_nodes(now - FORGET_AFTER_SECS).await {
            tracing::debug!(error = %e, "could not forget silent nodes");
        }
    }

    fn base_row(&self, repository: &str, now: i64) -> NodeRow {
        NodeRow {
            node_id: self.node_id.clone(),
            repository: repository.into(),
            name: self.name.clone(),
            address: lock(&self.address).clone(),
            started_at: self.started_at,
            heartbeat_at: now,
            key_set_version: None,
            key_fingerprints: String::new(),
            primary_key_id: None,
            change_lag_ms: None,
        }
    }

    fn token_row(&self, tokens: &TokenService, now: i64) -> NodeRow {
        if self.shared(FERNET_TOKENS) {
            return self.shared_row(FERNET_TOKENS, now);
        }
        let info = tokens.formatter().ring().current().key_info();
        let mut fps: Vec<(u64, String)> = info
            .iter()
            .filter_map(|k| Some((k.index?, k.fingerprint.clone())))
            .collect();
        fps.sort();
        NodeRow {
            key_fingerprints: fingerprint_list(&fps),
            primary_key_id: info.first().and_then(|k| k.index).map(|i| i as i64),
            ..self.base_row(FERNET_TOKENS, now)
        }
    }

    fn shared_row(&self, repository: &str, now: i64) -> NodeRow {
        let held = lock(self.held(repository));
        let keys = held.keys.as_ref();
        NodeRow {
            key_set_version: held.version,
            key_fingerprints: keys
                .map(|k| fingerprint_list(&k.fingerprints()))
                .unwrap_or_default(),
            primary_key_id: keys.and_then(SharedKeys::primary_index).map(|i| i as i64),
            ..self.base_row(repository, now)
        }
    }

    /// `GET /v3/baton/fleet`: every node with its heartbeat, liveness and keys, and whether
    /// they match the database's sets (with `filesystem`: this node's keys).
    pub async fn view(&self, tokens: &TokenService) -> Result<Value, FleetError> {
        let now = self.clock.now().timestamp();
        let nodes = self.store.list_nodes().await?;
        let mut reference = serde_json::Map::new();
        let mut sets = serde_json::Map::new();
        for repository in [FERNET_TOKENS, CREDENTIAL] {
            let fps = self.reference(repository, tokens).await;
            if let Some((version, fps)) = &fps {
                sets.insert(
                    repository.into(),
                    json!({
                        "distribution": if self.shared(repository) { "database" } else { "filesystem" },
                        "version": version,
                        "fingerprints": fps.iter().map(|(i, f)| json!({"index": i, "fingerprint": f})).collect::<Vec<_>>(),
                    }),
                );
                reference.insert(repository.into(), json!(fingerprint_list(fps)));
            }
        }
        let mut out: Vec<Value> = Vec::new();
        for row in nodes {
            let matches = reference
                .get(&row.repository)
                .and_then(Value::as_str)
                .map(|r| r == row.key_fingerprints);
            let keys = json!({
                "key_set_version": row.key_set_version,
                "fingerprints": parse_fingerprints(&row.key_fingerprints).iter().map(|(i, f)| json!({"index": i, "fingerprint": f})).collect::<Vec<_>>(),
                "primary_key_id": row.primary_key_id,
                "matches": matches,
            });
            if let Some(node) = out.iter_mut().find(|n| n["id"] == row.node_id.as_str()) {
                node["keys"][&row.repository] = keys;
                continue;
            }
            let live = now - row.heartbeat_at <= LIVE_WITHIN_SECS;
            out.push(json!({
                "id": row.node_id,
                "name": row.name,
                "address": row.address,
                "started_at": iso(row.started_at),
                "last_heartbeat": iso(row.heartbeat_at),
                "state": if live { "live" } else { "stale" },
                "this_node": row.node_id == self.node_id,
                "change_feed_lag_ms": row.change_lag_ms,
                "keys": { row.repository.clone(): keys },
            }));
        }
        Ok(json!({"fleet": {"key_sets": sets, "nodes": out}}))
    }

    /// What nodes' keys are compared with: the database's set when shared, else this node's.
    async fn reference(
        &self,
        repository: &str,
        tokens: &TokenService,
    ) -> Option<(Option<i64>, Vec<(u64, String)>)> {
        if self.shared(repository) {
            let kek = self.kek.as_ref()?;
            return match fetch(&self.store, kek, repository).await {
                Ok(Some((v, keys))) => Some((Some(v), keys.fingerprints())),
                _ => None,
            };
        }
        if repository != FERNET_TOKENS {
            return None;
        }
        let mut fps: Vec<(u64, String)> = tokens
            .formatter()
            .ring()
            .current()
            .key_info()
            .iter()
            .filter_map(|k| Some((k.index?, k.fingerprint.clone())))
            .collect();
        fps.sort();
        Some((None, fps))
    }
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S.000000Z")
        .to_string()
}
