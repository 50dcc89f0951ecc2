//! End-to-end checks against tokens minted by the real Python Keystone
//! (`tests/fixtures/generate.py`, keystone 30.0.0) and the keystone-wire.md test vectors.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "token/fuzz_corpus.rs"]
mod fuzz_corpus;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use baton_token::payload::{python_uuid_bytes, DEFAULT_AUTH_METHODS};
use baton_token::{
    FernetKey, KeyRepository, KeyRing, KeySet, PayloadCodec, Scope, TokenError, TokenFormatter,
    TokenPayload, MAX_TOKEN_LENGTH,
};
use serde_json::Value;

const VECTOR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VECTOR_PLAINTEXT: &str = "960292c3c410ee4dfb6e5540447cb3741905149d9b6e0292c3c410a6944d763bf64ee6a275f1263fae0352cb41dc37205000000091c41000112233445566778899aabbccddeeff";
const VECTOR_TOKEN: &str = "gAAAAABw3HMwAAAAAAAAAAAAAAAAAAAAABcXcDIlYNXbn8TTQgV72oMo5ab3s8YBBk5frgClRZRrbOK-P2GJNav--3Sk4_xw-qh-R7y9RurbKYDlPGSBfhN3879asKWyy8n3_11gvhMuB7D1D7AIxNjzf4zS8nl4H_z8Kxmu-7KK9TENA_wnCww";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture() -> Value {
    let text = fs::read_to_string(fixtures_dir().join("keystone_tokens.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Git keeps no file modes, so copy the fixture keys and give them Keystone's modes.
fn fixture_repository() -> (tempfile::TempDir, KeyRepository) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fernet-keys");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(fixtures_dir().join("keys")).unwrap() {
        let entry = entry.unwrap();
        let target = dir.join(entry.file_name());
        fs::copy(entry.path(), &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    }
    (tmp, KeyRepository::new(dir, 3))
}

fn codec_from(doc: &Value) -> PayloadCodec {
    let config = &doc["config"];
    let methods = config["auth_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    PayloadCodec::new(
        methods,
        config["default_domain_id"].as_str().unwrap().to_string(),
    )
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Keystone's `isotime(subsecond=True)`: microseconds are always shown as zero.
fn keystone_isotime(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// What Keystone's validate_token reported, in the shape of our payload.
fn expected_payload(entry: &Value) -> TokenPayload {
    let e = &entry["expected"];
    let project = opt_str(&e["project_id"]);
    let domain = opt_str(&e["domain_id"]);
    let groups = || strings(&e["federated_group_ids"]);
    let idp = || opt_str(&e["identity_provider_id"]).unwrap();
    let protocol = || opt_str(&e["protocol_id"]).unwrap();
    let scope = match entry["version"].as_u64().unwrap() {
        0 => Scope::Unscoped,
        1 => Scope::Domain {
            domain_id: domain.unwrap(),
        },
        2 => Scope::Project {
            project_id: project.unwrap(),
        },
        3 => Scope::Trust {
            project_id: project.unwrap(),
            trust_id: opt_str(&e["trust_id"]).unwrap(),
        },
        4 => Scope::FederatedUnscoped {
            group_ids: groups(),
            idp_id: idp(),
            protocol_id: protocol(),
        },
        5 => Scope::FederatedProject {
            project_id: project.unwrap(),
            group_ids: groups(),
            idp_id: idp(),
            protocol_id: protocol(),
        },
        6 => Scope::FederatedDomain {
            domain_id: domain.unwrap(),
            group_ids: groups(),
            idp_id: idp(),
            protocol_id: protocol(),
        },
        7 => Scope::OAuth1 {
            project_id: project.unwrap(),
            access_token_id: opt_str(&e["access_token_id"]).unwrap(),
        },
        8 => Scope::System {
            system: opt_str(&e["system"]).unwrap(),
        },
        9 => Scope::ApplicationCredential {
            project_id: project.unwrap(),
            app_cred_id: opt_str(&e["app_cred_id"]).unwrap(),
        },
        10 => Scope::OAuth2Credential {
            project_id: project,
            domain_id: domain,
            thumbprint: opt_str(&e["thumbprint"]).unwrap(),
        },
        v => panic!("unexpected version {v}"),
    };
    let bits = u64::from_str_radix(e["expires_at_float_hex"].as_str().unwrap(), 16).unwrap();
    TokenPayload {
        user_id: opt_str(&e["user_id"]).unwrap(),
        methods: strings(&e["methods"]),
        expires_at: f64::from_bits(bits),
        audit_ids: strings(&e["audit_ids"]),
        scope,
    }
}

/// The payload as the generator handed it to Keystone's create_token (ids not normalised,
/// methods in request order).
fn input_payload(entry: &Value, decoded: &TokenPayload) -> TokenPayload {
    let i = &entry["inputs"];
    let s = |k: &str| opt_str(&i[k]);
    let scope = match decoded.scope.clone() {
        Scope::Unscoped => Scope::Unscoped,
        Scope::Domain { .. } => Scope::Domain {
            domain_id: s("domain_id").unwrap(),
        },
        Scope::Project { .. } => Scope::Project {
            project_id: s("project_id").unwrap(),
        },
        Scope::Trust { .. } => Scope::Trust {
            project_id: s("project_id").unwrap(),
            trust_id: s("trust_id").unwrap(),
        },
        Scope::FederatedUnscoped { .. } => Scope::FederatedUnscoped {
            group_ids: group_inputs(i),
            idp_id: s("identity_provider_id").unwrap(),
            protocol_id: s("protocol_id").unwrap(),
        },
        Scope::FederatedProject { .. } => Scope::FederatedProject {
            project_id: s("project_id").unwrap(),
            group_ids: group_inputs(i),
            idp_id: s("identity_provider_id").unwrap(),
            protocol_id: s("protocol_id").unwrap(),
        },
        Scope::FederatedDomain { .. } => Scope::FederatedDomain {
            domain_id: s("domain_id").unwrap(),
            group_ids: group_inputs(i),
            idp_id: s("identity_provider_id").unwrap(),
            protocol_id: s("protocol_id").unwrap(),
        },
        Scope::OAuth1 { .. } => Scope::OAuth1 {
            project_id: s("project_id").unwrap(),
            access_token_id: s("access_token_id").unwrap(),
        },
        Scope::System { .. } => Scope::System {
            system: s("system").unwrap(),
        },
        Scope::ApplicationCredential { .. } => Scope::ApplicationCredential {
            project_id: s("project_id").unwrap(),
            app_cred_id: s("app_cred_id").unwrap(),
        },
        Scope::OAuth2Credential { .. } => Scope::OAuth2Credential {
            project_id: s("project_id"),
            domain_id: s("domain_id"),
            thumbprint: s("thumbprint").unwrap(),
        },
        // Keystone never makes Baton's own payload, so its vectors hold none.
        c @ Scope::Continuation { .. } => c,
    };
    TokenPayload {
        user_id: s("user_id").unwrap(),
        methods: strings(&i["methods"]),
        expires_at: decoded.expires_at,
        audit_ids: strings(&i["audit_ids"]),
        scope,
    }
}

fn group_inputs(inputs: &Value) -> Vec<String> {
    inputs["federated_group_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn wire_doc_fernet_vector_reproduces() {
    let keys = KeySet::new(vec![FernetKey::from_base64(VECTOR_KEY).unwrap()]).unwrap();
    let token = keys.encrypt_at(&unhex(VECTOR_PLAINTEXT), 1_893_495_600, [0; 16]);
    assert_eq!(token, VECTOR_TOKEN);
    assert_eq!(token.len(), 183);

    // pyca/cryptography agrees (recomputed by the generator).
    let doc = fixture();
    let reference = &doc["reference_vector"];
    assert_eq!(reference["key"], VECTOR_KEY);
    assert_eq!(reference["plaintext_hex"], VECTOR_PLAINTEXT);
    assert_eq!(reference["token"], VECTOR_TOKEN);

    // Accepted both as Keystone emits it and with the base64 padding restored.
    for text in [VECTOR_TOKEN.to_string(), format!("{VECTOR_TOKEN}=")] {
        let out = keys.decrypt(&text).unwrap();
        assert_eq!(hex(&out.payload), VECTOR_PLAINTEXT);
        assert_eq!(out.timestamp, 1_893_495_600);
    }
    let payload = PayloadCodec::new(
        DEFAULT_AUTH_METHODS.map(String::from).to_vec(),
        "default".into(),
    )
    .decode(&unhex(VECTOR_PLAINTEXT))
    .unwrap();
    assert_eq!(payload.user_id, "ee4dfb6e5540447cb3741905149d9b6e");
    assert_eq!(
        payload.project_id(),
        Some("a6944d763bf64ee6a275f1263fae0352")
    );
    assert_eq!(payload.methods, ["password"]);
    assert_eq!(payload.audit_id(), Some("ABEiM0RVZneImaq7zN3u_w"));
}

#[test]
fn keystone_defaults_match_the_fixture_config() {
    let doc = fixture();
    assert_eq!(
        strings(&doc["config"]["auth_methods"]),
        DEFAULT_AUTH_METHODS.to_vec()
    );
    assert_eq!(doc["config"]["default_domain_id"], "default");
    assert_eq!(strings(&doc["keys"]), ["0", "1", "2"]);
}

#[test]
fn python_uuid_cases_agree() {
    let doc = fixture();
    for case in doc["uuid_cases"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let got = python_uuid_bytes(input).map(|b| hex(&b));
        assert_eq!(got, opt_str(&case["hex"]), "{input:?}");
    }
}

#[test]
fn keystone_tokens_decrypt_decode_and_reencode_identically() {
    let doc = fixture();
    let codec = codec_from(&doc);
    let (_tmp, repo) = fixture_repository();
    let keys = repo.load().unwrap();
    let order: Vec<_> = keys.key_info().iter().map(|k| k.index.unwrap()).collect();
    assert_eq!(order, [2, 1, 0]);
    let formatter = TokenFormatter::new(KeyRing::load(repo).unwrap(), codec.clone());

    let entries = doc["tokens"].as_array().unwrap();
    let mut versions = std::collections::BTreeSet::new();
    let mut legacy = 0;
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let token = entry["token"].as_str().unwrap();
        let plaintext_hex = entry["plaintext_hex"].as_str().unwrap();
        let issued_at = entry["issued_at_unix"].as_u64().unwrap();

        // The envelope.
        let decrypted = keys
            .decrypt(token)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex(&decrypted.payload), plaintext_hex, "{name}");
        assert_eq!(decrypted.timestamp, issued_at, "{name}");
        let padded = format!("{token}{}", "=".repeat((4 - token.len() % 4) % 4));
        assert_eq!(keys.decrypt(&padded).unwrap(), decrypted, "{name} padded");

        // The payload, against what Keystone's own validate_token returned.
        let payload = codec.decode(&decrypted.payload).unwrap();
        let expected = expected_payload(entry);
        assert_eq!(payload, expected, "{name}");
        assert_eq!(
            u64::from(payload.payload_version()),
            entry["version"].as_u64().unwrap()
        );
        assert_eq!(
            payload.expires_at.to_bits(),
            expected.expires_at.to_bits(),
            "{name}"
        );
        let e = &entry["expected"];
        assert_eq!(
            payload.expires_at_micros(),
            e["expires_at_micros"].as_i64().unwrap(),
            "{name}"
        );
        // Keystone shows both times with the microseconds zeroed.
        assert_eq!(keystone_isotime(issued_at as i64), e["issued_at"], "{name}");
        assert_eq!(
            keystone_isotime(payload.expires_at_micros().div_euclid(1_000_000)),
            e["expires_at"],
            "{name}"
        );

        // Re-encoding gives Keystone's bytes (modern msgpack for legacy tokens).
        let modern = entry
            .get("modern_plaintext_hex")
            .and_then(Value::as_str)
            .unwrap_or(plaintext_hex);
        assert_eq!(hex(&codec.encode(&payload).unwrap()), modern, "{name}");
        // And so does encoding the very inputs Keystone was given.
        let inputs = input_payload(entry, &payload);
        assert_eq!(
            hex(&codec.encode(&inputs).unwrap()),
            modern,
            "{name} inputs"
        );

        // The formatter path.
        let (via_formatter, at) = formatter.validate_token(token).unwrap();
        assert_eq!((via_formatter, at), (payload.clone(), issued_at));

        versions.insert(payload.payload_version());
        if entry["legacy_msgpack"].as_bool().unwrap() {
            legacy += 1;
            assert_ne!(plaintext_hex, modern, "{name} is really in the old format");
        }
    }
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        (0..=10).collect::<Vec<u8>>()
    );
    assert!(legacy >= 5);
}

#[test]
fn rust_tokens_round_trip_under_the_keystone_keys() {
    let doc = fixture();
    let (_tmp, repo) = fixture_repository();
    let formatter = TokenFormatter::new(KeyRing::load(repo).unwrap(), codec_from(&doc));
    for entry in doc["tokens"].as_array().unwrap() {
        let expected = expected_payload(entry);
        let token = formatter.create_token(&expected).unwrap();
        assert!(!token.contains('='));
        let (payload, issued_at) = formatter.validate_token(&token).unwrap();
        assert_eq!(payload, expected);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(issued_at.abs_diff(now) < 5);
        // Encrypted with the primary, key 2: a set without it cannot read the token.
        let without_primary = KeySet::new(formatter.ring().current().keys()[1..].to_vec()).unwrap();
        assert_eq!(
            without_primary.decrypt(&token),
            Err(TokenError::Undecryptable)
        );
    }
}

#[test]
fn tokens_under_a_retired_key_are_undecryptable() {
    let doc = fixture();
    let (_tmp, repo) = fixture_repository();
    let ring = KeyRing::load(repo.clone()).unwrap();
    let formatter = TokenFormatter::new(ring.clone(), codec_from(&doc));
    let by_name = |name: &str| {
        doc["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let old = by_name("project_uuid"); // made with key 1
    let new = by_name("project_uuid_after_rotation"); // made with key 2
    formatter.validate_token(&old).unwrap();

    // A Baton rotation of the Keystone-made repository retires key 1 (max_active_keys 3).
    let outcome = repo.rotate().unwrap();
    assert_eq!((outcome.new_primary, outcome.removed), (3, vec![1]));
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(
        formatter.validate_token(&old),
        Err(TokenError::Undecryptable)
    );
    formatter.validate_token(&new).unwrap();

    // A completely unrelated key set.
    let stranger = KeySet::new(vec![FernetKey::generate()]).unwrap();
    assert_eq!(stranger.decrypt(&new), Err(TokenError::Undecryptable));
}

#[test]
fn garbage_truncated_and_oversized_tokens() {
    let doc = fixture();
    let (_tmp, repo) = fixture_repository();
    let formatter = TokenFormatter::new(KeyRing::load(repo).unwrap(), codec_from(&doc));
    let token = doc["tokens"][0]["token"].as_str().unwrap();

    let long = "A".repeat(MAX_TOKEN_LENGTH + 1);
    assert!(matches!(
        formatter.validate_token(&long),
        Err(TokenError::TooLong { .. })
    ));
    for bad in [
        "",
        "not a token",
        "gAAAAA",
        &token[..token.len() - 10],
        &token[..100],
        &format!("{token}AAAA"),
        "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ] {
        let err = formatter.validate_token(bad).unwrap_err();
        assert!(
            matches!(err, TokenError::Malformed(_) | TokenError::Undecryptable),
            "{err:?}"
        );
        assert!(bad.is_empty() || !err.to_string().contains(bad));
    }
    // Swapping one character of a valid token breaks the HMAC.
    let mut chars: Vec<char> = token.chars().collect();
    let i = 60;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    assert_eq!(
        formatter.validate_token(&flipped),
        Err(TokenError::Undecryptable)
    );

    // A genuine Fernet token whose plaintext is not a Keystone payload.
    let keys = formatter.ring().current();
    let not_msgpack = keys.encrypt(b"\xc1");
    assert!(matches!(
        formatter.validate_token(&not_msgpack),
        Err(TokenError::InvalidPayload(_))
    ));
    let version_42 = keys.encrypt(&[0x92, 42, 0xc0]);
    assert_eq!(
        formatter.validate_token(&version_42),
        Err(TokenError::UnsupportedPayloadVersion(42))
    );
}

/// The reverse direction: the real Keystone validates tokens minted here. Needs the project
/// venv (`scripts/python-env.sh`), so it is ignored by default; run it with
/// `cargo nextest run -p baton-token --run-ignored only` (or set `BATON_PYTHON`).
#[test]
#[ignore = "needs the Python Keystone venv"]
fn python_keystone_validates_rust_tokens() {
    let python = std::env::var_os("BATON_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let doc = fixture();
    let (tmp, repo) = fixture_repository();
    let formatter = TokenFormatter::new(KeyRing::load(repo.clone()).unwrap(), codec_from(&doc));
    let mut minted = Vec::new();
    for entry in doc["tokens"].as_array().unwrap() {
        let payload = expected_payload(entry);
        let modern = entry
            .get("modern_plaintext_hex")
            .unwrap_or(&entry["plaintext_hex"])
            .clone();
        minted.push(serde_json::json!({
            "name": entry["name"],
            "version": entry["version"],
            "token": formatter.create_token(&payload).unwrap(),
            "plaintext_hex": modern,
            "expected": entry["expected"],
        }));
    }
    let list = tmp.path().join("rust_tokens.json");
    fs::write(&list, serde_json::to_string_pretty(&minted).unwrap()).unwrap();
    let output = std::process::Command::new(&python)
        .arg(fixtures_dir().join("generate.py"))
        .arg("--verify")
        .arg(&list)
        .arg(repo.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
    assert!(stdout.contains("validated identically"), "{stdout}");
}
