//! Mints many distinct project-scoped Keystone Fernet tokens offline, one per line, for load
//! tests (`scripts/bench-identity.sh` drives a million of them through `GET /v3/auth/tokens`).
//!
//! ```text
//! cargo run --release -p baton-token --example mint_tokens -- \
//!     KEY_REPOSITORY USER_ID PROJECT_ID COUNT OUT_FILE [LIFETIME_SECONDS]
//! ```
//!
//! Every token carries the `password` method, a fresh audit id and an expiry LIFETIME_SECONDS
//! (default 7200) from now, encrypted with the repository's primary key, with the payload
//! codec of a default Keystone deployment (`[auth] methods` defaults, domain `default`).

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use baton_token::payload::DEFAULT_AUTH_METHODS;
use baton_token::{
    random_audit_id, KeyRepository, KeyRing, PayloadCodec, Scope, TokenFormatter, TokenPayload,
};

fn run(args: &[String]) -> Result<(), String> {
    if args.len() < 5 || args.len() > 6 {
        return Err(
            "usage: mint_tokens KEY_REPOSITORY USER_ID PROJECT_ID COUNT OUT_FILE [LIFETIME_SECONDS]"
                .into(),
        );
    }
    let (repo, user_id, project_id, out) = (&args[0], &args[1], &args[2], &args[4]);
    let count: u64 = args[3]
        .parse()
        .map_err(|e| format!("COUNT {:?}: {e}", args[3]))?;
    let lifetime: u64 = match args.get(5) {
        Some(s) => s.parse().map_err(|e| format!("LIFETIME {s:?}: {e}"))?,
        None => 7200,
    };
    // max_active_keys only matters for rotation; loading accepts any repository size.
    let ring = KeyRing::load(KeyRepository::new(repo, 3)).map_err(|e| e.to_string())?;
    let codec = PayloadCodec::new(
        DEFAULT_AUTH_METHODS.iter().map(|m| m.to_string()).collect(),
        "default".to_string(),
    );
    let formatter = TokenFormatter::new(ring, codec);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    // Keystone's expiries are whole seconds after the issue time.
    let expires_at = (now + lifetime) as f64;
    let mut w = BufWriter::with_capacity(
        1 << 20,
        File::create(out).map_err(|e| format!("{out}: {e}"))?,
    );
    let started = Instant::now();
    for _ in 0..count {
        let payload = TokenPayload {
            user_id: user_id.clone(),
            methods: vec!["password".to_string()],
            expires_at,
            audit_ids: vec![random_audit_id()],
            scope: Scope::Project {
                project_id: project_id.clone(),
            },
        };
        let token = formatter
            .create_token(&payload)
            .map_err(|e| format!("minting failed: {e}"))?;
        w.write_all(token.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .map_err(|e| format!("{out}: {e}"))?;
    }
    w.flush().map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "minted {count} tokens into {out} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mint_tokens: {e}");
            ExitCode::FAILURE
        }
    }
}
