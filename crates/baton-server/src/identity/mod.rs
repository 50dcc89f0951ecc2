//! The rules of the identity model, with no HTTP in them.
//!
//! Reading: the project tree ([`tree`]) and where a user's role assignments take effect
//! ([`roles`]). Token scoping, `/v3/auth/projects|domains`, `/v3/users/{id}/projects` and the
//! role-assignment listing ask these rather than restating the rules.
//!
//! Writing: every change to users, groups, membership, projects, domains, roles, implied roles,
//! grants and the catalog goes through [`Identity`]. It checks Keystone's rules for the write
//! (hierarchy, enable/disable, immutable roles, ...), persists it, and then does what the write
//! means for tokens already issued: a revocation event when tokens must stop validating
//! everywhere, and dropping this node's cached validations and snapshots when what a token shows
//! may have changed. Handlers never do either themselves (see `docs/architecture.md`, "where is
//! X").

pub mod application_credentials;
pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod ec2;
pub mod federation;
pub mod grants;
pub mod limits;
pub mod oauth1;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod tree;
pub mod trusts;
pub mod users;

use std::sync::Arc;

use baton_config::IdentityConfig;
use baton_store::{RevocationEvent, Store};
use chrono::NaiveDateTime;

use crate::error::ApiResult;
use crate::tokens::TokenService;

pub use projects::{NewProject, Placement, ProjectChanges};
pub use roles::{grants_on_domain, grants_on_project, EffectiveTargets};
pub use tree::{ProjectSlice, ProjectTree};
pub use users::{GroupChanges, NewGroup, NewUser, UserChanges};

/// Keystone's `id_string`: at most 64 characters (ids from other deployments, LDAP or
/// federation may hold more than `[a-zA-Z0-9-]`).
pub const ID_MAX: usize = 64;

/// A stored `extra` blob with `new` attributes merged over it (Keystone keeps every attribute
/// that is not a column there, and a PATCH adds to them).
fn merge_extra(stored: Option<&str>, new: serde_json::Map<String, serde_json::Value>) -> String {
    let mut merged: serde_json::Map<String, serde_json::Value> = stored
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    merged.extend(new);
    serde_json::Value::Object(merged).to_string()
}

/// The write side of the identity model; cheap to clone.
#[derive(Clone)]
pub struct Identity {
    config: Arc<IdentityConfig>,
    store: Store,
    tokens: Arc<TokenService>,
    fleet: Arc<crate::fleet::Fleet>,
}

impl Identity {
    /// Keystone's notifications for the writes made here.
    fn audit(&self) -> &crate::audit::Audit {
        &self.tokens.audit
    }

    /// Writes to `store`, telling `tokens` what each write means for issued tokens.
    /// The credential keys come from `fleet` with `[credential] key_distribution = database`.
    pub fn new(
        config: Arc<IdentityConfig>,
        store: Store,
        tokens: Arc<TokenService>,
        fleet: Arc<crate::fleet::Fleet>,
    ) -> Identity {
        Identity {
            config,
            store,
            tokens,
            fleet,
        }
    }

    /// Now, by the token service's clock (manual in tests).
    fn now(&self) -> NaiveDateTime {
        self.tokens.clock.now().naive_utc()
    }

    /// What a token shows (roles, names, catalog) may have changed: this node's cached
    /// validations and snapshots go, and the change feed tells every other node to drop theirs
    /// (within `[baton] change_poll_interval_ms`).
    async fn changed(&self) {
        self.tokens.invalidate_caches();
        self.tokens
            .changes
            .record(crate::changes::ChangeKind::Identity)
            .await;
    }

    /// Tokens matching `event` must stop validating on every node. The event bumps the
    /// revocation generation, so cached validations are matched against it on their next use.
    async fn revoke(&self, event: RevocationEvent) -> ApiResult<()> {
        // The write behind the event (a user disabled or renamed with a new password, a group
        // left) also changes what new tokens validate to: this node's snapshot goes now, not
        // at its next look at the feed.
        self.tokens.invalidate_caches();
        self.tokens.revoke_now(event).await
    }

    /// Every token of the user stops validating (Keystone's
    /// `persist_revocation_event_for_user`): `DELETE /v3/users/{id}/tokens`, a disabled or
    /// deleted user, a new password, leaving a group.
    pub async fn revoke_user_tokens(&self, user_id: &str) -> ApiResult<()> {
        self.revoke(RevocationEvent {
            user_id: Some(user_id.to_string()),
            ..Default::default()
        })
        .await
    }
}
