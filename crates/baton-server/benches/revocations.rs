//! The revocation check as events pile up (issue 18): one token checked against lists of 0,
//! 100,000 and 1,000,000 events, mixed as a cloud writes them (logouts, chains, users,
//! projects, user+project pairs), none matching it; and the memory a list takes, reported as
//! resident bytes per event while the list is built.
//!
//! `cargo bench -p baton-server --bench revocations`

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(missing_docs)] // criterion_group! defines an undocumented pub fn

use std::hint::black_box;
use std::time::Duration;

use baton_server::revocations::{RevocationList, TokenValues};
use baton_store::RevocationEvent;
use chrono::NaiveDateTime;
use criterion::{criterion_group, criterion_main, Criterion};

fn at(s: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc()
}

/// A 32-hex-digit id, as Keystone's user and project ids.
fn hex(n: u64, salt: u64) -> String {
    format!(
        "{:016x}{:016x}",
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        salt ^ n
    )
}

/// A 22-character audit id.
fn audit(n: u64) -> String {
    format!(
        "{:022}",
        n.wrapping_mul(0x2545_f491_4f6c_dd1d) % 10u64.pow(19)
    )
}

/// `n` events in the bench script's mix: 60% logouts, 15% chains, 15% users, 5% projects,
/// 5% user+project pairs.
fn events(n: u64) -> impl Iterator<Item = RevocationEvent> {
    (0..n).map(|i| {
        let t = at(1_000_000 + (i % 86_400) as i64);
        let mut ev = RevocationEvent {
            id: i as i64 + 1,
            issued_before: t,
            revoked_at: t,
            ..Default::default()
        };
        match i % 20 {
            0..=11 => ev.audit_id = Some(audit(i)),
            12..=14 => ev.audit_chain_id = Some(audit(i)),
            15..=17 => ev.user_id = Some(hex(i, 1)),
            18 => ev.project_id = Some(hex(i, 2)),
            _ => {
                ev.user_id = Some(hex(i, 3));
                ev.project_id = Some(hex(i, 4));
            }
        }
        ev
    })
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn check(c: &mut Criterion) {
    let roles = ["r1", "r2", "r3"];
    let token = TokenValues {
        user_id: "u-not-revoked",
        identity_domain_id: "default",
        project_id: Some("p-not-revoked"),
        assignment_domain_id: Some("default"),
        role_ids: roles.to_vec(),
        audit_id: "audit-not-revoked",
        audit_chain_id: Some("chain-not-revoked"),
        expires_at: at(2_000_000),
        issued_at: at(1_050_000),
        trust_id: None,
        trustor_id: None,
        trustee_id: None,
        consumer_id: None,
        access_token_id: None,
    };
    let mut group = c.benchmark_group("revocation_check");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [0u64, 100_000, 1_000_000] {
        let before = rss();
        let mut list = RevocationList::default();
        for ev in events(n) {
            list.add(ev);
        }
        if n > 0 {
            let per = (rss().saturating_sub(before)) as f64 / n as f64;
            println!(
                "revocation list of {n} events: {} entries, {per:.0} resident bytes per event",
                list.len()
            );
        }
        assert!(!list.is_revoked(&token));
        group.bench_function(format!("events_{n}"), |b| {
            b.iter(|| black_box(list.is_revoked(black_box(&token))))
        });
        drop(list);
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
