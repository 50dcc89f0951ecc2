//! Keeping a fleet's caches consistent: the shared change feed (`baton_change`, see
//! `baton_store::ChangeMark`).
//!
//! Every write that may change what a token validates to records a change after it commits
//! ([`ChangeFeed::record`], from `Identity::changed` and `TokenService::add_revocation`). Every
//! node looks at the feed every `[baton] change_poll_interval_ms` (and at once when PostgreSQL
//! `NOTIFY`s it); when the feed moved, the node drops its cached validations and snapshots and
//! loads new revocation events before the next validation. A write on one node therefore stops
//! affecting validations on every node within about one poll interval, not after
//! `validation_cache_ttl`. Writes made by Keystone nodes on a shared database record no change;
//! Baton nodes see those after `validation_cache_ttl`, as before.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_store::{ChangeMark, Store};
use tokio::sync::Notify;

use crate::error::ApiResult;
use crate::tokens::TokenService;

/// Changes older than this are pruned; a node that was away longer reloads everything anyway
/// (its caches' time to live is shorter).
const CHANGE_RETENTION: Duration = Duration::from_secs(3600);
/// How often a node prunes the feed (each prune is one extra cache flush on every node).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// A look at the feed that takes longer than this counts as the database being unreachable.
pub const FEED_TIMEOUT: Duration = Duration::from_secs(1);

/// What kind of write a change announces (kept in the row for operators and for finer
/// invalidation later; every kind drops the same caches today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A revocation event was stored.
    Revocation,
    /// Users, groups, projects, domains, roles, grants, the catalog, application credentials
    /// or trusts changed.
    Identity,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Revocation => "revocation",
            ChangeKind::Identity => "identity",
        }
    }
}

/// This node's view of the shared change feed.
pub struct ChangeFeed {
    store: Store,
    seen: Mutex<Option<ChangeMark>>,
    wake: Notify,
    /// Milliseconds between the newest change's writing and this node acting on it (by the
    /// two nodes' clocks), at the last change seen; -1 before any.
    last_lag_ms: AtomicI64,
    last_prune: Mutex<Option<Instant>>,
}

/// What `/healthcheck` and the fleet view show about the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStatus {
    /// Propagation delay of the last change seen, in milliseconds (`None` before any).
    pub last_lag_ms: Option<i64>,
}

impl ChangeFeed {
    /// A feed over `store`'s `baton_change` table.
    pub fn new(store: Store) -> ChangeFeed {
        ChangeFeed {
            store,
            seen: Mutex::new(None),
            wake: Notify::new(),
            last_lag_ms: AtomicI64::new(-1),
            last_prune: Mutex::new(None),
        }
    }

    /// Announces a write to every node. The write itself has committed, so a failure here
    /// is logged, not returned: other nodes then see the write after `validation_cache_ttl`.
    pub async fn record(&self, kind: ChangeKind) {
        if let Err(e) = self.store.record_change(kind.as_str(), now_ms()).await {
            tracing::warn!(error = %e, kind = kind.as_str(), "could not record a change in the change feed; other nodes see it after validation_cache_ttl");
        }
        self.wake.notify_one();
    }

    /// The feed's state for health and fleet views.
    pub fn status(&self) -> FeedStatus {
        let lag = self.last_lag_ms.load(Ordering::Relaxed);
        FeedStatus {
            last_lag_ms: (lag >= 0).then_some(lag),
        }
    }

    /// Looks at the feed once; when it moved since the last look, drops `tokens`' caches and
    /// loads new revocation events. Returns whether it moved. The first look only notes where
    /// the feed stands (the caches are empty then).
    pub async fn poll(&self, tokens: &TokenService) -> ApiResult<bool> {
        let mark = tokio::time::timeout(FEED_TIMEOUT, self.store.change_mark())
            .await
            .map_err(|_| {
                crate::error::ApiError::ServiceUnavailable(
                    "the database did not answer within 1 s".into(),
                )
            })??;
        let previous = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.replace(mark)
        };
        let Some(previous) = previous else {
            return Ok(false);
        };
        if previous == mark {
            return Ok(false);
        }
        tokens.invalidate_caches();
        if let Err(e) = tokens.refresh_revocations().await {
            // Look again next time: until the events are loaded, a revoked token could pass.
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(previous);
            return Err(e);
        }
        if mark.max_id > previous.max_id && mark.newest_at_ms > 0 {
            self.last_lag_ms
                .store((now_ms() - mark.newest_at_ms).max(0), Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Deletes changes older than [`CHANGE_RETENTION`], at most every [`PRUNE_EVERY`].
    async fn prune_if_due(&self) {
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let retention = i64::try_from(CHANGE_RETENTION.as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = self.store.prune_changes(now_ms() - retention).await {
            tracing::warn!(error = %e, "could not prune the change feed");
        }
    }

    /// Follows the feed until the process ends: a look every `interval`, and at once when
    /// PostgreSQL announces a change or this node recorded one.
    pub fn spawn(tokens: Arc<TokenService>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let listen_tokens = tokens.clone();
        tokio::spawn(async move {
            match listen_tokens.changes.store.listen_changes().await {
                Ok(Some(mut listener)) => loop {
                    match listener.next().await {
                        Ok(()) => listen_tokens.changes.wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "change feed LISTEN failed; polling only until it reconnects");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not LISTEN for changes; polling only")
                }
            }
        });
        tokio::spawn(async move {
            let feed = &tokens.changes;
            // One line when the feed becomes unreadable and one when it is back, not one per
            // poll during an outage.
            let mut failing = false;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = feed.wake.notified() => {}
                }
                match feed.poll(&tokens).await {
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not read the change feed; other nodes' writes reach this node after validation_cache_ttl until it is back");
                    }
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("the change feed is readable again");
                    }
                    _ => {}
                }
                if !failing {
                    feed.prune_if_due().await;
                }
            }
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
