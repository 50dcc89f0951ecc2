//! The revocation list, held in memory and matched the way Keystone matches events.
//!
//! Events written by this node are added at once; events written by other nodes sharing the
//! database are picked up by polling (see [`crate::TokenService::refresh_revocations`]). Most
//! events revoke one token by audit id, so those sit in a map; the rest are scanned.

use std::collections::HashMap;

use baton_store::RevocationEvent;
use chrono::NaiveDateTime;

/// What Keystone compares events against: a token flattened to its identifying fields.
#[derive(Debug, Clone)]
pub struct TokenValues<'a> {
    pub user_id: &'a str,
    pub identity_domain_id: &'a str,
    pub project_id: Option<&'a str>,
    pub assignment_domain_id: Option<&'a str>,
    pub role_ids: Vec<&'a str>,
    pub audit_id: &'a str,
    pub audit_chain_id: Option<&'a str>,
    /// Whole seconds, as revocation events store them.
    pub expires_at: NaiveDateTime,
    pub issued_at: NaiveDateTime,
}

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
    /// Bumped by every added event, so cached validations know when to look again.
    pub generation: u64,
}

impl RevocationList {
    pub fn len(&self) -> usize {
        self.by_audit_id.len()
            + self.by_audit_chain_id.len()
            + self.by_user_id.len()
            + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

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
        if let Some(before) = self.by_user_id.get(t.user_id) {
            if t.issued_at <= *before {
                return true;
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
    if !field(&e.user_id, Some(t.user_id)) {
        return false;
    }
    if !field(&e.project_id, t.project_id) {
        return false;
    }
    if !field(&e.audit_id, Some(t.audit_id)) {
        return false;
    }
    if e.trust_id.is_some() || e.consumer_id.is_some() || e.access_token_id.is_some() {
        // Baton issues no trust or OAuth1 tokens, so such events match none of its tokens.
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
