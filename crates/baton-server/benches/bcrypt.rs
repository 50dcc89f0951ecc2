//! The floor under password authentication: one bcrypt verify at Keystone's default cost (12),
//! through the same function the server calls. `scripts/bench-identity.sh` turns the mean into
//! the bcrypt-bound issue throughput (cores / verify time).
//!
//! `cargo bench -p baton-server --bench bcrypt` (BATON_BENCH_BCRYPT_COST overrides the cost).

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does
#![allow(missing_docs)] // criterion_group! defines an undocumented pub fn

use std::hint::black_box;
use std::time::Duration;

use baton_config::PasswordHashAlgorithm;
use baton_server::password::{hash_password, verify_password};
use criterion::{criterion_group, criterion_main, Criterion};

fn bcrypt_verify(c: &mut Criterion) {
    let cost: u32 = std::env::var("BATON_BENCH_BCRYPT_COST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let hash = hash_password("adminpass", PasswordHashAlgorithm::Bcrypt, Some(cost)).unwrap();
    let mut group = c.benchmark_group("bcrypt");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function(format!("verify_cost_{cost}"), |b| {
        b.iter(|| assert!(verify_password(black_box("adminpass"), black_box(&hash)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bcrypt_verify);
criterion_main!(benches);
