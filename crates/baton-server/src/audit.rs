//! Keystone's notifications from the server: the one place that turns what a write, a login or
//! a delegation did into events ([`baton_audit`] builds and publishes them).
//!
//! Identity writes (`crate::identity`) call [`Audit::resource`] and friends after they commit;
//! password logins call [`Audit::authenticate`]; continuation tokens and pair validations call
//! [`Audit::delegation`]. The observer of every event is the identity service's id in the
//! catalog, looked up at most once a minute (Keystone lists the services for every event).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_audit::cadf::{self, Assignment, Delegation, Outcome, Reason};
use baton_audit::Notifier;
use baton_store::Store;
use serde_json::Value;

/// How long the identity service's id is remembered.
const OBSERVER_TTL: Duration = Duration::from_secs(60);

/// The server's notifier with what its events need from the database.
pub struct Audit {
    notifier: Notifier,
    store: Store,
    observer: Mutex<Option<(Instant, Option<String>)>>,
}

impl Audit {
    /// Events to `notifier` (which may be off), observed by the identity service in `store`.
    pub fn new(notifier: Notifier, store: Store) -> Audit {
        Audit {
            notifier,
            store,
            observer: Mutex::new(None),
        }
    }

    /// The notifier (for its metrics).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Whether events are sent at all (callers skip building what an event needs otherwise).
    pub fn enabled(&self) -> bool {
        self.notifier.enabled()
    }

    async fn observer(&self) -> Option<String> {
        if let Ok(cached) = self.observer.lock() {
            if let Some((at, id)) = cached.as_ref() {
                if at.elapsed() < OBSERVER_TTL {
                    return id.clone();
                }
            }
        }
        let id = match self.store.list_services().await {
            Ok(services) => services
                .into_iter()
                .find(|s| s.service_type == "identity")
                .map(|s| s.id),
            Err(e) => {
                tracing::debug!(error = %e, "notifications: could not list the services");
                None
            }
        };
        if let Ok(mut cached) = self.observer.lock() {
            *cached = Some((Instant::now(), id.clone()));
        }
        id
    }

    /// Sends what `event` builds, with the observer's id, when events are sent at all.
    async fn send(&self, event: impl FnOnce(&Notifier, Option<&str>)) {
        if !self.enabled() {
            return;
        }
        let observer = self.observer().await;
        event(&self.notifier, observer.as_deref());
    }

    /// `identity.<resource_type>.<operation>` for a resource written by the current request.
    pub async fn resource(&self, operation: &str, resource_type: &str, id: &str) {
        self.send(|n, o| cadf::resource(n, operation, resource_type, id, o))
            .await;
    }

    /// A user added to (`added`) or removed from a group.
    pub async fn membership(&self, added: bool, group_id: &str, user_id: &str) {
        self.send(|n, o| cadf::membership(n, added, group_id, user_id, o))
            .await;
    }

    /// `identity.role_assignment.created|deleted` for a project or domain grant.
    pub async fn role_assignment(&self, created: bool, a: &baton_store::Assignment) {
        use baton_store::AssignmentType as T;
        let (actor, target) = match a.kind {
            T::UserProject => ("user", "project"),
            T::GroupProject => ("group", "project"),
            T::UserDomain => ("user", "domain"),
            T::GroupDomain => ("group", "domain"),
        };
        let assignment = Assignment {
            role_id: &a.role_id,
            actor: (actor, &a.actor_id),
            target: Some((target, &a.target_id)),
            inherited: a.inherited,
        };
        self.send(|n, o| cadf::role_assignment(n, created, &assignment, o))
            .await;
    }

    /// `identity.authenticate` for a password login; `initiator` from
    /// [`cadf::user_initiator`] or [`cadf::unknown_user_initiator`].
    pub async fn authenticate(
        &self,
        outcome: Outcome,
        initiator: Value,
        reason: Option<Reason>,
        partial_password_hash: Option<String>,
    ) {
        self.send(|n, o| {
            cadf::authenticate(
                n,
                outcome,
                initiator,
                reason.as_ref(),
                partial_password_hash.as_deref(),
                o,
            )
        })
        .await;
    }

    /// Baton's events for a service acting for a user.
    pub async fn delegation(&self, d: Delegation<'_>) {
        self.send(|n, o| cadf::delegation(n, d, o)).await;
    }
}
