//! The revocation list, held in memory and matched the way Keystone matches events.
//!
//! Events written by this node are added at once; events written by other nodes sharing the
//! database are picked up by polling (see [`crate::TokenService::refresh_revocations`]). Every
//! event is filed under what it names, so a check is a few hash lookups, however many events
//! there are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// An OAuth1 token's consumer.
    pub consumer_id: Option<&'a str>,
    /// An OAuth1 token's access token.
    pub access_token_id: Option<&'a str>,
}

impl<'a> TokenValues<'a> {
    /// The users an event's `user_id` may name to match the token (Keystone compares it with
    /// the token's user, trustor and trustee).
    fn users(&self) -> impl Iterator<Item = &'a str> {
        std::iter::once(self.user_id)
            .chain(self.trustor_id)
            .chain(self.trustee_id)
    }
}

/// The identifiers an event can name, in the order an event naming several is filed under
/// (the most selective first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Audit,
    AuditChain,
    Trust,
    AccessToken,
    Consumer,
    User,
    Project,
    Role,
    Domain,
}

const FIELDS: usize = 9;

impl Field {
    /// The event's value of each field, in filing order.
    fn of_event(ev: &RevocationEvent) -> [(Field, Option<&String>); FIELDS] {
        [
            (Field::Audit, ev.audit_id.as_ref()),
            (Field::AuditChain, ev.audit_chain_id.as_ref()),
            (Field::Trust, ev.trust_id.as_ref()),
            (Field::AccessToken, ev.access_token_id.as_ref()),
            (Field::Consumer, ev.consumer_id.as_ref()),
            (Field::User, ev.user_id.as_ref()),
            (Field::Project, ev.project_id.as_ref()),
            (Field::Role, ev.role_id.as_ref()),
            (Field::Domain, ev.domain_id.as_ref()),
        ]
    }
}

impl<'a> TokenValues<'a> {
    /// Every (field, value) an event could name to match this token: an event naming a value
    /// of a field matches only if the token has that value there (a user event also matches
    /// the trustor and trustee, a domain event the user's domain or the scope's).
    fn names(&self) -> impl Iterator<Item = (Field, &'a str)> + '_ {
        let one = |f: Field, v: Option<&'a str>| v.map(move |v| (f, v));
        std::iter::once((Field::Audit, self.audit_id))
            .chain(one(Field::AuditChain, self.audit_chain_id))
            .chain(one(Field::Trust, self.trust_id))
            .chain(one(Field::AccessToken, self.access_token_id))
            .chain(one(Field::Consumer, self.consumer_id))
            .chain(self.users().map(|u| (Field::User, u)))
            .chain(one(Field::Project, self.project_id))
            .chain(self.role_ids.iter().map(|r| (Field::Role, *r)))
            .chain(std::iter::once((Field::Domain, self.identity_domain_id)))
            .chain(one(
                Field::Domain,
                self.assignment_domain_id
                    .filter(|d| *d != self.identity_domain_id),
            ))
    }

    /// Whether the token has `value` in `field`, as Keystone compares them.
    fn has(&self, field: Field, value: &str) -> bool {
        match field {
            Field::Audit => self.audit_id == value,
            Field::AuditChain => self.audit_chain_id == Some(value),
            Field::Trust => self.trust_id == Some(value),
            Field::AccessToken => self.access_token_id == Some(value),
            Field::Consumer => self.consumer_id == Some(value),
            Field::User => self.users().any(|u| u == value),
            Field::Project => self.project_id == Some(value),
            Field::Role => self.role_ids.contains(&value),
            Field::Domain => {
                self.identity_domain_id == value || self.assignment_domain_id == Some(value)
            }
        }
    }
}

/// Gives memory back after a prune emptied most of a map. Not after every prune: a map still
/// growing would be shrunk to fit and then doubled again by the next insert, at every recheck,
/// and each such copy leaves the allocator holding more pages
/// (bench/results/heap-2026-12-06T0221Z.md).
fn shrink_if_sparse<V>(map: &mut HashMap<Box<str>, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
    }
}

/// Microseconds since the epoch: a compact, exact stand-in for the stored timestamps.
fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// An event naming more than one identifier (or a token's expiry): every part must match.
#[derive(Debug)]
struct Rule {
    /// Only tokens issued at or before this (microseconds) are revoked.
    issued_before: i64,
    /// Only tokens expiring at this instant (Keystone's per-token events).
    expires_at: Option<NaiveDateTime>,
    /// Every identifier the event names.
    names: Box<[(Field, Box<str>)]>,
}

impl Rule {
    fn matches(&self, t: &TokenValues<'_>) -> bool {
        micros(t.issued_at) <= self.issued_before
            && self.expires_at.is_none_or(|e| e == t.expires_at)
            && self.names.iter().all(|(f, v)| t.has(*f, v))
    }
}

/// Every revocation event still able to match a valid token, filed by what it names, so that
/// checking a token costs a few hash lookups whatever the number of events (issue 18; Keystone
/// scanned every event, bug 1524030).
///
/// An event naming a single identifier (a logout's audit id, a chain, a user after a password
/// change, a deleted project, role or domain) is one map entry: that identifier to the latest
/// `issued_before`. An event naming several is a [`Rule`] filed under the first of them in
/// [`Field`] order; a token looks up every value it has in every field, so it meets every rule
/// that could match it. Only events naming nothing at all (Keystone writes none) are scanned.
#[derive(Default)]
pub struct RevocationList {
    /// Per field: value -> latest `issued_before` (microseconds) of the events naming only it.
    single: [HashMap<Box<str>, i64>; FIELDS],
    /// Per field: value -> the rules filed under it.
    rules: [HashMap<Box<str>, Vec<Rule>>; FIELDS],
    /// Events naming no identifier (at most an expiry): matched one by one.
    unnamed: Vec<Rule>,
    /// How many rules are held (in `rules` and `unnamed`).
    rule_count: usize,
    /// Highest event id seen, for polling.
    pub last_id: i64,
    /// Ids below `last_id` not read yet, with when they were first missed. PostgreSQL and
    /// MySQL hand out an id at insert and show the row at commit, so a slower writer's event can
    /// appear below ids already read; the poll asks for these again until [`GAP_PATIENCE`].
    gaps: BTreeMap<i64, Instant>,
    /// Ids above this were read again by the last recheck or are in `recent`; the next recheck
    /// reads them once more, catching writers slower than [`GAP_PATIENCE`].
    recheck_floor: i64,
    /// The floor the next recheck moves to (see [`RevocationList::rechecked`]).
    next_floor: i64,
    /// The ids above `recheck_floor` already added.
    recent: BTreeSet<i64>,
    /// When the list was last rechecked (pruned, and its recent ids read again); `None` until
    /// the table has been loaded.
    pub rechecked_at: Option<Instant>,
    /// Bumped by every added event, so cached validations know when to look again.
    pub generation: u64,
}

/// How long an id below the highest one read is asked for again. Rolled-back inserts and
/// Galera's `auto_increment_increment` leave ids that never fill; the periodic recheck
/// ([`RECHECK_EVERY`]) covers writers slower than this.
pub const GAP_PATIENCE: Duration = Duration::from_secs(60);

/// How often every node prunes its list by time and reads the events of the last interval
/// again (never the whole table: that would cost in proportion to the events held).
pub const RECHECK_EVERY: Duration = Duration::from_secs(300);

/// At most this many missing ids are tracked (and asked for in one poll); a larger jump is
/// left to the recheck.
pub const MAX_GAPS: usize = 500;

impl RevocationList {
    /// Adds the events of one poll (any order, possibly already seen) and returns how many were
    /// new. Ids skipped between those read become gaps to ask for again.
    pub fn add_polled(&mut self, mut events: Vec<RevocationEvent>, now: Instant) -> usize {
        events.sort_by_key(|e| e.id);
        let mut added = 0;
        for ev in events {
            if ev.id > self.last_id {
                let missing = self.last_id + 1..ev.id;
                let room = MAX_GAPS.saturating_sub(self.gaps.len());
                if (missing.end - missing.start) as usize <= room {
                    self.gaps.extend(missing.map(|id| (id, now)));
                }
            } else if self.gaps.remove(&ev.id).is_none()
                && (ev.id <= self.recheck_floor || self.recent.contains(&ev.id))
            {
                continue;
            }
            self.add(ev);
            added += 1;
        }
        self.gaps
            .retain(|_, missed| now.saturating_duration_since(*missed) < GAP_PATIENCE);
        added
    }

    /// Adds one event of the start-up load (ids ascending, above every id held). Ids missing
    /// from the table then were pruned or are long committed: they are not gaps, and the first
    /// recheck looks only above the last one loaded.
    pub fn add_loaded(&mut self, ev: RevocationEvent) {
        self.file(ev);
        self.recheck_floor = self.last_id;
        self.next_floor = self.last_id;
    }

    /// The ids the next poll asks for again besides those above `last_id`.
    pub fn gaps(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }

    /// An id at or below `last_id` and above the recheck floor that was never added: a row
    /// that committed after higher ids had been read.
    pub fn is_late(&self, id: i64) -> bool {
        id <= self.last_id
            && id > self.recheck_floor
            && !self.recent.contains(&id)
            && !self.gaps.contains_key(&id)
    }

    /// The id above which the next recheck reads events again.
    pub fn recheck_floor(&self) -> i64 {
        self.recheck_floor
    }

    /// After a recheck that read every event above the old floor, given the highest id held
    /// when it began: the next recheck reads the ids above the one given to the recheck before
    /// this one. An id taken before a recheck began is thus read again at least one whole
    /// interval later, so a row is found if it commits within [`RECHECK_EVERY`] of taking
    /// its id (the gaps cover the first [`GAP_PATIENCE`]).
    pub fn rechecked(&mut self, began_at_id: i64, now: Instant) {
        self.recheck_floor = self.recheck_floor.max(self.next_floor);
        self.next_floor = self.next_floor.max(began_at_id);
        self.recent = self.recent.split_off(&(self.recheck_floor + 1));
        self.rechecked_at = Some(now);
    }

    /// How many entries are held: an entry per identifier for single-name events (repeated
    /// events collapse), one per other event.
    pub fn len(&self) -> usize {
        self.single.iter().map(HashMap::len).sum::<usize>() + self.rule_count
    }

    /// No event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one event (the caller has checked it is new).
    pub fn add(&mut self, ev: RevocationEvent) {
        if ev.id > self.recheck_floor {
            self.recent.insert(ev.id);
        }
        self.file(ev);
    }

    /// Files an event under what it names.
    fn file(&mut self, ev: RevocationEvent) {
        self.last_id = self.last_id.max(ev.id);
        self.generation += 1;
        let issued_before = micros(ev.issued_before);
        let mut names = Field::of_event(&ev)
            .into_iter()
            .filter_map(|(f, v)| v.map(|v| (f, Box::<str>::from(v.as_str()))));
        let first = names.next();
        let rest: Box<[_]> = names.collect();
        match first {
            Some((field, value)) if rest.is_empty() && ev.expires_at.is_none() => {
                let slot = self.single[field as usize]
                    .entry(value)
                    .or_insert(issued_before);
                *slot = (*slot).max(issued_before);
            }
            Some((field, value)) => {
                let names = std::iter::once((field, value.clone()))
                    .chain(rest)
                    .collect();
                self.rules[field as usize]
                    .entry(value)
                    .or_default()
                    .push(Rule {
                        issued_before,
                        expires_at: ev.expires_at,
                        names,
                    });
                self.rule_count += 1;
            }
            None => {
                self.unnamed.push(Rule {
                    issued_before,
                    expires_at: ev.expires_at,
                    names: Box::default(),
                });
                self.rule_count += 1;
            }
        }
    }

    /// Forgets events issued before `cutoff`: every token they match was issued earlier, so it
    /// is past its expiry and the `allow_expired` window, and can no longer validate at all.
    /// One walk over the entries; run at each recheck, never per request.
    pub fn prune(&mut self, cutoff: NaiveDateTime) {
        let cutoff = micros(cutoff);
        for map in &mut self.single {
            map.retain(|_, issued_before| *issued_before >= cutoff);
            shrink_if_sparse(map);
        }
        let mut kept = 0;
        for map in &mut self.rules {
            map.retain(|_, rules| {
                rules.retain(|r| r.issued_before >= cutoff);
                kept += rules.len();
                !rules.is_empty()
            });
            shrink_if_sparse(map);
        }
        self.unnamed.retain(|r| r.issued_before >= cutoff);
        self.rule_count = kept + self.unnamed.len();
    }

    /// Whether an event revokes the token: every field the event sets matches, and the token was
    /// issued at or before the event's `issued_before`.
    pub fn is_revoked(&self, t: &TokenValues<'_>) -> bool {
        let issued_at = micros(t.issued_at);
        t.names().any(|(field, value)| {
            self.single[field as usize]
                .get(value)
                .is_some_and(|before| issued_at <= *before)
                || self.rules[field as usize]
                    .get(value)
                    .is_some_and(|rules| rules.iter().any(|r| r.matches(t)))
        }) || self.unnamed.iter().any(|r| r.matches(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keystone's rule read plainly, one event at a time: every field the event sets must
    /// match the token, and the token must have been issued no later than `issued_before`.
    /// The indexed list must agree with it on every input.
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
        if !field(&e.consumer_id, t.consumer_id) || !field(&e.access_token_id, t.access_token_id) {
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
            consumer_id: None,
            access_token_id: None,
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
        list.add_loaded(audit_event(3, "other"));
        assert!(
            list.gaps().is_empty(),
            "ids below the start-up load are not gaps"
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
        list.add_loaded(audit_event(1, "a"));
        list.add_polled(vec![audit_event(3, "b")], t0);
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

    /// A value from a few names, or nothing (more often than not), so that events and tokens
    /// meet often.
    fn name(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
        prop::option::weighted(0.35, prop::sample::select(values))
    }

    /// Whole or half seconds around the tokens' issue time.
    fn instant() -> impl Strategy<Value = NaiveDateTime> {
        (998i64..=1002, prop::bool::ANY).prop_map(|(s, half)| {
            ts(s) + chrono::Duration::milliseconds(if half { 500 } else { 0 })
        })
    }

    fn arb_event() -> impl Strategy<Value = RevocationEvent> {
        let names = (
            name(&["a1", "a2"]),
            name(&["a1", "c1"]),
            name(&["t1", "t2"]),
            name(&["u1", "u2", "alice"]),
            name(&["p1", "p2"]),
            name(&["r1", "r2"]),
            name(&["default", "d2"]),
        );
        let rest = (
            prop::option::weighted(0.1, Just("c")),
            prop::option::weighted(0.1, Just("at")),
            prop::option::weighted(0.15, prop::sample::select(vec![2000i64, 2001])),
            instant(),
        );
        (names, rest).prop_map(
            |(
                (audit, chain, trust, user, project, role, domain),
                (consumer, access, exp, before),
            )| {
                let own = |v: Option<&str>| v.map(String::from);
                RevocationEvent {
                    id: 0,
                    audit_id: own(audit),
                    audit_chain_id: own(chain),
                    trust_id: own(trust),
                    user_id: own(user),
                    project_id: own(project),
                    role_id: own(role),
                    domain_id: own(domain),
                    consumer_id: own(consumer),
                    access_token_id: own(access),
                    expires_at: exp.map(ts),
                    issued_before: before,
                    revoked_at: before,
                }
            },
        )
    }

    #[derive(Debug, Clone)]
    struct ArbToken {
        user: &'static str,
        domain: &'static str,
        project: Option<&'static str>,
        scope_domain: Option<&'static str>,
        roles: Vec<&'static str>,
        audit: &'static str,
        chain: Option<&'static str>,
        expires: i64,
        issued: i64,
        trust: Option<(&'static str, &'static str, &'static str)>,
        oauth1: Option<(&'static str, &'static str)>,
    }

    impl ArbToken {
        fn values(&self) -> TokenValues<'_> {
            TokenValues {
                user_id: self.user,
                identity_domain_id: self.domain,
                project_id: self.project,
                assignment_domain_id: self.scope_domain,
                role_ids: self.roles.clone(),
                audit_id: self.audit,
                audit_chain_id: self.chain,
                expires_at: ts(self.expires),
                issued_at: ts(self.issued),
                trust_id: self.trust.map(|t| t.0),
                trustor_id: self.trust.map(|t| t.1),
                trustee_id: self.trust.map(|t| t.2),
                consumer_id: self.oauth1.map(|o| o.0),
                access_token_id: self.oauth1.map(|o| o.1),
            }
        }
    }

    fn arb_token() -> impl Strategy<Value = ArbToken> {
        let who = (
            prop::sample::select(&["u1", "u2"][..]),
            prop::sample::select(&["default", "d2"][..]),
            name(&["p1", "p2"]),
            name(&["default", "d2"]),
            prop::sample::subsequence(vec!["r1", "r2"], 0..=2),
        );
        let what = (
            prop::sample::select(&["a1", "a2"][..]),
            name(&["a1", "c1"]),
            prop::sample::select(vec![2000i64, 2001]),
            999i64..=1001,
            prop::option::weighted(
                0.3,
                (
                    prop::sample::select(&["t1", "t2"][..]),
                    prop::sample::select(&["alice", "u2"][..]),
                    prop::sample::select(&["u1", "u2"][..]),
                ),
            ),
            prop::option::weighted(
                0.3,
                (
                    prop::sample::select(&["c", "c2"][..]),
                    prop::sample::select(&["at", "at2"][..]),
                ),
            ),
        );
        (who, what).prop_map(
            |(
                (user, domain, project, scope_domain, roles),
                (audit, chain, expires, issued, trust, oauth1),
            )| {
                ArbToken {
                    user,
                    domain,
                    project,
                    scope_domain,
                    roles,
                    audit,
                    chain,
                    expires,
                    issued,
                    trust,
                    oauth1,
                }
            },
        )
    }

    fn list_of(events: &[RevocationEvent]) -> RevocationList {
        let mut list = RevocationList::default();
        for (i, ev) in events.iter().enumerate() {
            list.add(RevocationEvent {
                id: i as i64 + 1,
                ..ev.clone()
            });
        }
        list
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Issue 18: the indexed list decides exactly as Keystone's plain matching over every
        /// event, before and after pruning.
        #[test]
        fn indexed_matching_agrees_with_plain_matching(
            events in prop::collection::vec(arb_event(), 0..12),
            tokens in prop::collection::vec(arb_token(), 1..6),
            cutoff in instant(),
        ) {
            let mut list = list_of(&events);
            for t in &tokens {
                let v = t.values();
                prop_assert_eq!(list.is_revoked(&v), events.iter().any(|e| matches(e, &v)), "{:?}", t);
            }
            list.prune(cutoff);
            let kept: Vec<_> = events.iter().filter(|e| e.issued_before >= cutoff).collect();
            for t in &tokens {
                let v = t.values();
                prop_assert_eq!(list.is_revoked(&v), kept.iter().any(|e| matches(e, &v)), "{:?}", t);
            }
        }
    }

    /// A row that commits after higher ids were read, and after the gap patience, is found by
    /// the next recheck (its id is above the floor and was never added); ids already added or
    /// at or below the floor are not asked for again.
    #[test]
    fn rechecks_find_commits_slower_than_the_gap_patience() {
        let roles = vec![];
        let t0 = Instant::now();
        let mut list = RevocationList::default();
        list.add_loaded(audit_event(1, "x"));
        list.rechecked(list.last_id, t0);
        assert_eq!(list.recheck_floor(), 1);
        list.add_polled(vec![audit_event(3, "y")], t0);
        assert_eq!(list.gaps(), vec![2]);
        list.add_polled(Vec::new(), t0 + GAP_PATIENCE);
        assert!(list.gaps().is_empty(), "2 is given up by the poll");
        let late: Vec<i64> = (0..=4).filter(|id| list.is_late(*id)).collect();
        assert_eq!(late, vec![2], "only the missing id in the window");
        assert_eq!(list.add_polled(vec![audit_event(2, "audit-1")], t0), 1);
        assert!(list.is_revoked(&token(&roles)));
        assert!(!list.is_late(2));
        list.rechecked(3, t0);
        assert_eq!(
            list.recheck_floor(),
            1,
            "the floor lags one recheck behind, so an id taken just before a recheck is read \
             again a whole interval later"
        );
        assert!(!list.is_late(3), "added already");
        list.rechecked(3, t0);
        assert_eq!(list.recheck_floor(), 3);
        assert_eq!(
            list.add_polled(vec![audit_event(3, "y")], t0),
            0,
            "at or below the floor"
        );
    }

    /// Repeated single-name events collapse into one entry with the latest time; pruning by
    /// time empties the list.
    #[test]
    fn single_name_events_share_an_entry() {
        let mut list = RevocationList::default();
        for (id, s) in [(1, 999), (2, 1000), (3, 998)] {
            list.add(RevocationEvent {
                id,
                project_id: Some("p1".into()),
                issued_before: ts(s),
                revoked_at: ts(s),
                ..Default::default()
            });
        }
        assert_eq!(list.len(), 1);
        let roles = vec![];
        assert!(list.is_revoked(&token(&roles)), "the latest (1000) applies");
        list.prune(ts(1000));
        assert_eq!(list.len(), 1);
        list.prune(ts(1001));
        assert!(list.is_empty());
    }

    /// A prune that removes little keeps a growing map's room (no shrink-then-double at every
    /// recheck); one that empties most of it gives the memory back.
    #[test]
    fn prune_shrinks_only_sparse_maps() {
        let mut list = RevocationList::default();
        for id in 0..1000 {
            list.add(RevocationEvent {
                id,
                project_id: Some(format!("p{id}")),
                issued_before: ts(1000 + id),
                revoked_at: ts(1000 + id),
                ..Default::default()
            });
        }
        let project = Field::Project as usize;
        let room = list.single[project].capacity();
        // Half removed: shrinking to fit would halve the room (removal itself may leave a few
        // slots unusable until the next resize, hence the margin).
        list.prune(ts(1500));
        assert_eq!(list.len(), 500);
        assert!(
            list.single[project].capacity() > room * 3 / 4,
            "kept its room"
        );
        list.prune(ts(1950));
        assert_eq!(list.len(), 50);
        assert!(list.single[project].capacity() < room / 4, "gave it back");
    }
}
