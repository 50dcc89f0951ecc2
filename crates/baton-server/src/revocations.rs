//! The revocation list, held in memory and matched the way Keystone matches events.
//!
//! Events written by this node are added at once; events written by other nodes sharing the
//! database are picked up by polling (see [`crate::TokenService::refresh_revocations`]). Most
//! events revoke one token by audit id, so those sit in a map; the rest are scanned.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use baton_store::RevocationEvent;
use chrono::NaiveDateTime;

/// What Keystone compares events against: a token flattened to its identifying fields.
#[derive(Debug, Clone)]
pub struct TokenValues<'a> {
    /// The token's user.
    pub user_id: &'a str,
    /// The domain that owns the user.
    pub identity_domain_id: &'a str,
    /// The project of a project-scoped token.
    pub project_id: Option<&'a str>,
    /// The scope's domain: the project's domain, or the domain of a domain-scoped token.
    pub assignment_domain_id: Option<&'a str>,
    /// The ids of the token's roles.
    pub role_ids: Vec<&'a str>,
    /// The token's own audit id (revoked alone by a logout).
    pub audit_id: &'a str,
    /// The audit id of the first token of its rescoping chain.
    pub audit_chain_id: Option<&'a str>,
    /// Whole seconds, as revocation events store them.
    pub expires_at: NaiveDateTime,
    /// When the token was issued: only events at or after it apply.
    pub issued_at: NaiveDateTime,
    /// The trust of a trust-scoped token.
    pub trust_id: Option<&'a str>,
    /// A trust token's trustor: events naming a user match it too, as in Keystone.
    pub trustor_id: Option<&'a str>,
    /// A trust token's trustee, likewise.
    pub trustee_id: Option<&'a str>,
}

impl TokenValues<'_> {
    /// The users an event's `user_id` may name to match the token (Keystone compares it with
    /// the token's user, trustor and trustee).
    fn users(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.user_id)
            .chain(self.trustor_id)
            .chain(self.trustee_id)
    }
}

/// Every revocation event still able to match a valid token, indexed for the common kinds.
#[derive(Default)]
pub struct RevocationList {
    /// audit_id -> latest `issued_before` among events that name only an audit id.
    by_audit_id: HashMap<String, NaiveDateTime>,
    /// audit_chain_id -> latest `issued_before` among events that name only an audit chain
    /// (Keystone 30's cascading revoke: every token rescoped from the revoked one).
    by_audit_chain_id: HashMap<String, NaiveDateTime>,
    /// user_id -> latest `issued_before` among events that name only a user (password change,
    /// disable, delete, group removal): the common kind, looked up instead of scanned.
    by_user_id: HashMap<String, NaiveDateTime>,
    others: Vec<RevocationEvent>,
    /// Highest event id seen, for polling.
    pub last_id: i64,
    /// Ids below `last_id` not read yet, with when they were first missed. PostgreSQL and
    /// MySQL hand out an id at insert and show the row at commit, so a slower writer's event can
    /// appear below ids already read; the poll asks for these again until [`GAP_PATIENCE`].
    gaps: BTreeMap<i64, Instant>,
    /// When the whole table was last read.
    pub loaded_at: Option<Instant>,
    /// Bumped by every added event, so cached validations know when to look again.
    pub generation: u64,
}

/// How long an id below the highest one read is asked for again. Rolled-back inserts and
/// Galera's `auto_increment_increment` leave ids that never fill; the periodic full reload
/// ([`crate::TokenService::refresh_revocations`]) covers writers slower than this.
pub const GAP_PATIENCE: Duration = Duration::from_secs(60);

/// How often every node reads the whole event table again, whatever it has polled.
pub const FULL_RELOAD_EVERY: Duration = Duration::from_secs(300);

/// At most this many missing ids are tracked (and asked for in one poll); a larger jump is
/// left to the full reload.
pub const MAX_GAPS: usize = 500;

impl RevocationList {
    /// Adds the events of one poll (any order, possibly already seen) and returns how many were
    /// new. Ids skipped between those read become gaps to ask for again.
    pub fn add_polled(&mut self, mut events: Vec<RevocationEvent>, now: Instant) -> usize {
        events.sort_by_key(|e| e.id);
        let first_load = self.last_id == 0 && self.generation == 0;
        let mut added = 0;
        for ev in events {
            if ev.id > self.last_id {
                // Ids below the very first load's are pruned or long committed: not gaps.
                if !first_load || added > 0 {
                    let missing = self.last_id + 1..ev.id;
                    let room = MAX_GAPS.saturating_sub(self.gaps.len());
                    if (missing.end - missing.start) as usize <= room {
                        self.gaps.extend(missing.map(|id| (id, now)));
                    }
                }
                self.add(ev);
            } else if self.gaps.remove(&ev.id).is_some() {
                self.add(ev);
            } else {
                continue;
            }
            added += 1;
        }
        self.gaps
            .retain(|_, missed| now.saturating_duration_since(*missed) < GAP_PATIENCE);
        added
    }

    /// The ids the next poll asks for again besides those above `last_id`.
    pub fn gaps(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.by_audit_id.len()
            + self.by_audit_chain_id.len()
            + self.by_user_id.len()
            + self.others.len()
    }

    /// No event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one event (the caller has checked it is new).
    pub fn add(&mut self, ev: RevocationEvent) {
        self.last_id = self.last_id.max(ev.id);
        self.generation += 1;
        let nothing_else = ev.project_id.is_none()
            && ev.domain_id.is_none()
            && ev.role_id.is_none()
            && ev.trust_id.is_none()
            && ev.consumer_id.is_none()
            && ev.access_token_id.is_none()
            && ev.expires_at.is_none();
        let index = match (&ev.user_id, &ev.audit_id, &ev.audit_chain_id) {
            (None, Some(a), None) if nothing_else => Some((&mut self.by_audit_id, a.clone())),
            (None, None, Some(c)) if nothing_else => Some((&mut self.by_audit_chain_id, c.clone())),
            (Some(u), None, None) if nothing_else => Some((&mut self.by_user_id, u.clone())),
            _ => None,
        };
        match index {
            Some((map, key)) => {
                let slot = map.entry(key).or_insert(ev.issued_before);
                *slot = (*slot).max(ev.issued_before);
            }
            None => self.others.push(ev),
        }
    }

    /// Forgets events revoked before `cutoff` (their tokens can no longer validate at all).
    pub fn prune(&mut self, cutoff: NaiveDateTime) {
        self.others.retain(|e| e.revoked_at >= cutoff);
        // Indexed entries keep issued_before == revoked_at, so prune them by that.
        for index in [
            &mut self.by_audit_id,
            &mut self.by_audit_chain_id,
            &mut self.by_user_id,
        ] {
            index.retain(|_, issued_before| *issued_before >= cutoff);
        }
    }

    /// Whether an event revokes the token: every field the event sets matches, and the token was
    /// issued at or before the event's `issued_before`.
    pub fn is_revoked(&self, t: &TokenValues<'_>) -> bool {
        if let Some(before) = self.by_audit_id.get(t.audit_id) {
            if t.issued_at <= *before {
                return true;
            }
        }
        if let Some(chain) = t.audit_chain_id {
            if let Some(before) = self.by_audit_chain_id.get(chain) {
                if t.issued_at <= *before {
                    return true;
                }
            }
        }
        for user in t.users() {
            if let Some(before) = self.by_user_id.get(user) {
                if t.issued_at <= *before {
                    return true;
                }
            }
        }
        self.others.iter().any(|e| matches(e, t))
    }
}

/// Keystone's rule: every field the event sets must match the token, and the token must have
/// been issued no later than `issued_before`.
fn matches(e: &RevocationEvent, t: &TokenValues<'_>) -> bool {
    if t.issued_at > e.issued_before {
        return false;
    }
    let field = |ev: &Option<String>, tok: Option<&str>| match ev {
        None => true,
        Some(v) => tok == Some(v.as_str()),
    };
    if let Some(u) = &e.user_id {
        if !t.users().any(|tu| tu == u) {
            return false;
        }
    }
    if !field(&e.trust_id, t.trust_id) {
        return false;
    }
    if !field(&e.project_id, t.project_id) {
        return false;
    }
    if !field(&e.audit_id, Some(t.audit_id)) {
        return false;
    }
    if e.consumer_id.is_some() || e.access_token_id.is_some() {
        // Baton issues no OAuth1 tokens, so such events match none of its tokens.
        return false;
    }
    if let Some(d) = &e.domain_id {
        if Some(d.as_str()) != Some(t.identity_domain_id)
            && Some(d.as_str()) != t.assignment_domain_id
        {
            return false;
        }
    }
    if let Some(exp) = e.expires_at {
        if exp != t.expires_at {
            return false;
        }
    }
    if !field(&e.audit_chain_id, t.audit_chain_id) {
        return false;
    }
    if let Some(role) = &e.role_id {
        if !t.role_ids.contains(&role.as_str()) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc()
    }

    fn token<'a>(roles: &'a [String]) -> TokenValues<'a> {
        TokenValues {
            user_id: "u1",
            identity_domain_id: "default",
            project_id: Some("p1"),
            assignment_domain_id: Some("default"),
            role_ids: roles.iter().map(String::as_str).collect(),
            audit_id: "audit-1",
            audit_chain_id: None,
            expires_at: ts(2000),
            issued_at: ts(1000),
            trust_id: None,
            trustor_id: None,
            trustee_id: None,
        }
    }

    /// Keystone's rules for trust tokens: a `trust_id` event matches only that trust's tokens,
    /// and a user event matches the token's user, trustor or trustee.
    #[test]
    fn trust_events_and_user_events_match_trust_tokens() {
        let roles = vec![];
        let trust_token = TokenValues {
            trust_id: Some("t1"),
            trustor_id: Some("alice"),
            trustee_id: Some("u1"),
            ..token(&roles)
        };
        let event = |id: i64, trust: Option<&str>, user: Option<&str>, project: Option<&str>| {
            RevocationEvent {
                id,
                trust_id: trust.map(Into::into),
                user_id: user.map(Into::into),
                project_id: project.map(Into::into),
                issued_before: ts(1000),
                revoked_at: ts(1000),
                ..Default::default()
            }
        };
        let mut list = RevocationList::default();
        list.add(event(1, Some("t2"), None, None));
        assert!(!list.is_revoked(&trust_token));
        assert!(!list.is_revoked(&token(&roles)));
        list.add(event(2, Some("t1"), None, None));
        assert!(list.is_revoked(&trust_token));
        assert!(!list.is_revoked(&token(&roles)), "not a trust token");

        // The trustor's user event (indexed) and a user+project event (scanned).
        for ev in [
            event(3, None, Some("alice"), None),
            event(4, None, Some("alice"), Some("p1")),
        ] {
            let mut list = RevocationList::default();
            list.add(ev);
            assert!(list.is_revoked(&trust_token));
            assert!(!list.is_revoked(&token(&roles)));
        }
    }

    #[test]
    fn audit_id_events_revoke_only_tokens_issued_before() {
        let roles = vec![];
        let mut list = RevocationList::default();
        list.add(RevocationEvent {
            id: 1,
            audit_id: Some("audit-1".into()),
            issued_before: ts(999),
            revoked_at: ts(999),
            ..Default::default()
        });
        assert!(!list.is_revoked(&token(&roles)));
        list.add(RevocationEvent {
            id: 2,
            audit_id: Some("audit-1".into()),
            issued_before: ts(1000),
            revoked_at: ts(1000),
            ..Default::default()
        });
        assert!(list.is_revoked(&token(&roles)));
        assert_eq!(list.last_id, 2);
    }

    #[test]
    fn user_and_project_events_match_every_set_field() {
        let roles = vec!["r1".to_string()];
        let mut list = RevocationList::default();
        list.add(RevocationEvent {
            id: 1,
            user_id: Some("u1".into()),
            project_id: Some("p2".into()),
            issued_before: ts(1500),
            revoked_at: ts(1500),
            ..Default::default()
        });
        assert!(!list.is_revoked(&token(&roles)), "other project");
        list.add(RevocationEvent {
            id: 2,
            user_id: Some("u1".into()),
            role_id: Some("r1".into()),
            issued_before: ts(1500),
            revoked_at: ts(1500),
            ..Default::default()
        });
        assert!(list.is_revoked(&token(&roles)));
        list.prune(ts(1600));
        assert!(list.is_empty());
    }

    fn audit_event(id: i64, audit_id: &str) -> RevocationEvent {
        RevocationEvent {
            id,
            audit_id: Some(audit_id.into()),
            issued_before: ts(1000),
            revoked_at: ts(1000),
            ..Default::default()
        }
    }

    /// Review 2026-12 #1: an event whose id was taken before, and committed after, a higher one
    /// that was already read must still be picked up.
    #[test]
    fn late_commits_below_the_highest_id_are_read_again() {
        let roles = vec![];
        let t0 = Instant::now();
        let mut list = RevocationList::default();
        assert_eq!(list.add_polled(vec![audit_event(3, "other")], t0), 1);
        assert!(
            list.gaps().is_empty(),
            "ids below the first load are not gaps"
        );
        // 4 is still in its transaction when 5 is read.
        assert_eq!(list.add_polled(vec![audit_event(5, "x")], t0), 1);
        assert_eq!(list.gaps(), vec![4]);
        let generation = list.generation;
        assert_eq!(
            list.add_polled(vec![audit_event(4, "audit-1"), audit_event(5, "x")], t0),
            1,
            "the late event is new, the repeated one is not"
        );
        assert!(list.generation > generation);
        assert!(list.gaps().is_empty());
        assert!(list.is_revoked(&token(&roles)));
    }

    #[test]
    fn gaps_are_forgotten_after_the_patience_and_bounded() {
        let t0 = Instant::now();
        let mut list = RevocationList::default();
        list.add_polled(vec![audit_event(1, "a"), audit_event(3, "b")], t0);
        assert_eq!(list.gaps(), vec![2]);
        list.add_polled(Vec::new(), t0 + GAP_PATIENCE);
        assert!(list.gaps().is_empty());
        // A jump larger than the bound is left to the full reload.
        list.add_polled(vec![audit_event(10_000, "c")], t0);
        assert!(list.gaps().is_empty());
        assert_eq!(list.last_id, 10_000);
    }

    #[test]
    fn chain_events_revoke_tokens_rescoped_from_the_revoked_one() {
        let roles = vec![];
        let mut list = RevocationList::default();
        list.add(RevocationEvent {
            id: 1,
            audit_chain_id: Some("root".into()),
            issued_before: ts(1000),
            revoked_at: ts(1000),
            ..Default::default()
        });
        let mut t = token(&roles);
        assert!(!list.is_revoked(&t), "a token outside the chain");
        t.audit_chain_id = Some("root");
        assert!(list.is_revoked(&t));
    }
}
