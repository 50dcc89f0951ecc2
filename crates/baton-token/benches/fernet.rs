//! Hot-path costs: validating a project-scoped token and minting one.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does
#![allow(missing_docs)] // criterion_group! defines an undocumented pub fn

use std::hint::black_box;

use baton_token::{FernetKey, KeyRing, KeySet, PayloadCodec, Scope, TokenFormatter, TokenPayload};
use criterion::{criterion_group, criterion_main, Criterion};

fn project_payload() -> TokenPayload {
    TokenPayload {
        user_id: "ee4dfb6e5540447cb3741905149d9b6e".into(),
        methods: vec!["password".into()],
        expires_at: 1_893_499_200.0,
        audit_ids: vec![baton_token::random_audit_id()],
        scope: Scope::Project {
            project_id: "a6944d763bf64ee6a275f1263fae0352".into(),
        },
    }
}

fn benches(c: &mut Criterion) {
    let keys = KeySet::new(vec![
        FernetKey::generate(),
        FernetKey::generate(),
        FernetKey::generate(),
    ])
    .unwrap();
    let formatter = TokenFormatter::new(
        KeyRing::from_key_set(keys.clone()),
        PayloadCodec::keystone_defaults(),
    );
    let payload = project_payload();
    let token = formatter.create_token(&payload).unwrap();

    c.bench_function("validate project token (primary key)", |b| {
        b.iter(|| formatter.validate_token(black_box(&token)).unwrap())
    });

    // Worst case for a valid token: made by the last key of three.
    let last_only = KeySet::new(vec![keys.keys()[2].clone()]).unwrap();
    let old_token = last_only.encrypt(&formatter.codec().encode(&payload).unwrap());
    c.bench_function("validate project token (third key)", |b| {
        b.iter(|| formatter.validate_token(black_box(&old_token)).unwrap())
    });

    let stranger = KeySet::new(vec![FernetKey::generate()])
        .unwrap()
        .encrypt(b"x");
    c.bench_function("reject token from unknown key (3 HMACs)", |b| {
        b.iter(|| formatter.validate_token(black_box(&stranger)).unwrap_err())
    });

    c.bench_function("create project token", |b| {
        b.iter(|| formatter.create_token(black_box(&payload)).unwrap())
    });
}

criterion_group!(fernet, benches);
criterion_main!(fernet);
