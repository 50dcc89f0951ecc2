//! Every configuration set: the exact errors and warnings, with file, section and option.

use baton_doctor::{diagnose_static, Code, Severity};

use crate::common::{assert_no_secrets, key, problems, set_options, Key};

use Severity::{Error, Warning};

struct Case {
    /// Directory under tests/fixtures (None: the healthy files only).
    dir: Option<&'static str>,
    longest: &'static str,
    rotation: &'static str,
    expect: &'static [(
        Severity,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
}

const fn case(
    dir: &'static str,
    expect: &'static [(
        Severity,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
) -> Case {
    Case {
        dir: Some(dir),
        longest: "12h",
        rotation: "1d",
        expect,
    }
}

const SU: &str = "service_user";
const KA: &str = "keystone_authtoken";

const CASES: &[Case] = &[
    case("healthy", &[]),
    case(
        "sender-service-token-disabled",
        &[(
            Error,
            "sender.service_token_disabled",
            "nova.conf",
            SU,
            "send_service_user_token",
        )],
    ),
    case(
        "sender-no-service-user",
        &[(Error, "sender.service_user_missing", "cinder.conf", SU, "")],
    ),
    case(
        "sender-auth-type-missing",
        &[(
            Error,
            "sender.auth_type_missing",
            "nova.conf",
            SU,
            "auth_type",
        )],
    ),
    case(
        "sender-auth-section-dangling",
        &[(
            Error,
            "sender.auth_section_missing",
            "nova.conf",
            SU,
            "auth_section",
        )],
    ),
    case(
        "sender-auth-incomplete",
        &[(
            Error,
            "sender.auth_incomplete",
            "cinder.conf",
            SU,
            "user_domain_name",
        )],
    ),
    case(
        "sender-unscoped",
        &[(
            Warning,
            "sender.service_user_unscoped",
            "cinder.conf",
            SU,
            "project_name",
        )],
    ),
    case(
        "sender-other-identity",
        &[(
            Warning,
            "sender.identity_endpoint_mismatch",
            "nova.conf",
            SU,
            "auth_url",
        )],
    ),
    case(
        "nova-cinder-auth-missing",
        &[(
            Warning,
            "sender.onward_auth_missing",
            "nova.conf",
            "cinder",
            "auth_type",
        )],
    ),
    case(
        "sender-invalid-flag",
        &[(
            Error,
            "config.invalid_value",
            "nova.conf",
            SU,
            "send_service_user_token",
        )],
    ),
    case(
        "receiver-roles-not-required",
        &[(
            Error,
            "receiver.service_token_roles_not_required",
            "cinder.conf",
            KA,
            "service_token_roles_required",
        )],
    ),
    case(
        "receiver-roles-required-unset",
        &[(
            Warning,
            "receiver.service_token_roles_required_unset",
            "glance-api.conf",
            KA,
            "service_token_roles_required",
        )],
    ),
    case(
        "receiver-admin-role",
        &[
            (
                Error,
                "receiver.service_token_roles_mismatch",
                "cinder.conf",
                KA,
                "service_token_roles",
            ),
            (
                Warning,
                "receiver.admin_is_service_role",
                "cinder.conf",
                KA,
                "service_token_roles",
            ),
        ],
    ),
    case(
        "receiver-auth-missing",
        &[(
            Error,
            "receiver.auth_incomplete",
            "neutron.conf",
            KA,
            "auth_type",
        )],
    ),
    case(
        "receiver-memcache-plain",
        &[(
            Warning,
            "receiver.memcache_unprotected",
            "glance-api.conf",
            KA,
            "memcached_servers",
        )],
    ),
    case(
        "identity-window-zero",
        &[(
            Error,
            "identity.allow_expired_window_zero",
            "keystone.conf",
            "token",
            "allow_expired_window",
        )],
    ),
    case(
        "identity-window-zero-continuation",
        &[(
            Warning,
            "identity.continuation_covers_operations",
            "keystone.conf",
            "token",
            "allow_expired_window",
        )],
    ),
    case(
        "identity-window-shorter-than-operation",
        &[(
            Error,
            "identity.allow_expired_window_short",
            "keystone.conf",
            "token",
            "allow_expired_window",
        )],
    ),
    case(
        "identity-three-keys",
        &[(
            Error,
            "identity.fernet_retention_short",
            "keystone.conf",
            "fernet_tokens",
            "max_active_keys",
        )],
    ),
    case(
        "identity-two-keys",
        &[(
            Error,
            "identity.fernet_keys_too_few",
            "keystone.conf",
            "fernet_tokens",
            "max_active_keys",
        )],
    ),
    Case {
        dir: None,
        longest: "12h",
        rotation: "1h",
        expect: &[(
            Error,
            "identity.fernet_retention_short",
            "keystone.conf",
            "fernet_tokens",
            "max_active_keys",
        )],
    },
    Case {
        dir: None,
        longest: "12h",
        rotation: "",
        expect: &[(
            Warning,
            "identity.rotation_interval_unknown",
            "keystone.conf",
            "fernet_tokens",
            "max_active_keys",
        )],
    },
    case(
        "identity-revocation-pruned-early",
        &[(
            Warning,
            "identity.revocation_pruned_early",
            "keystone.conf",
            "revoke",
            "expiration_buffer",
        )],
    ),
];

fn expected(case: &Case) -> Vec<Key> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut v: Vec<Key> = case
        .expect
        .iter()
        .map(|(sev, code, file, section, option)| {
            (
                *sev,
                code.to_string(),
                file.to_string(),
                opt(section),
                opt(option),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_set_gives_exactly_its_findings() {
    let mut distinct = std::collections::BTreeSet::new();
    for case in CASES {
        let name = format!("{:?} (rotation {:?})", case.dir, case.rotation);
        let report = diagnose_static(&set_options(case.dir, case.longest, case.rotation))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            problems(&report),
            expected(case),
            "{name}:\n{}",
            report.to_text()
        );
        assert_no_secrets(&report.to_text());
        assert_no_secrets(&report.to_json_string());
        if !case.expect.is_empty() {
            distinct.insert(format!("{:?}{}", case.dir, case.rotation));
        }
        // Every finding about an option that is set points at its line.
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Ok)
        {
            if f.location.option.is_some() && f.code != Code::SenderServiceUserMissing {
                assert!(f.location.line.is_some(), "{name}: no line in {f:?}");
            }
            assert!(!f.fix.is_empty() && !f.impact.is_empty(), "{name}: {f:?}");
        }
    }
    assert!(
        distinct.len() >= 15,
        "only {} misconfigurations",
        distinct.len()
    );
}

#[test]
fn healthy_set_passes_every_check() {
    let report = diagnose_static(&set_options(Some("healthy"), "12h", "1d")).unwrap();
    assert_eq!(report.count(Severity::Error), 0, "{}", report.to_text());
    assert_eq!(report.count(Severity::Warning), 0, "{}", report.to_text());
    let oks: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    for (code, n) in [
        ("identity.allow_expired_window_ok", 1),
        ("identity.fernet_retention_ok", 1),
        ("sender.service_user_ok", 2),
        ("receiver.service_token_ok", 4),
    ] {
        assert_eq!(
            oks.iter().filter(|c| **c == code).count(),
            n,
            "{code}: {oks:?}"
        );
    }
    assert_eq!(report.exit_status(), 0);
}

#[test]
fn repeated_key_and_locations_are_the_ones_oslo_config_uses() {
    // The later of two service_token_roles_required lines wins, and the finding names its line.
    let report = diagnose_static(&set_options(
        Some("receiver-roles-not-required"),
        "12h",
        "1d",
    ))
    .unwrap();
    let f = report.with_code(Code::ReceiverRolesNotRequired);
    assert_eq!(f.len(), 1);
    let text = std::fs::read_to_string(crate::common::fixture(
        Some("receiver-roles-not-required"),
        "cinder.conf",
    ))
    .unwrap();
    let line = text
        .lines()
        .position(|l| l == "service_token_roles_required = false")
        .unwrap()
        + 1;
    assert_eq!(f[0].location.line, Some(line));
    // nova's [service_user] reads its credentials through auth_section: the endpoint compared is
    // [keystone_authtoken]'s, and it matches the receivers'.
    let healthy = diagnose_static(&set_options(Some("healthy"), "", "1d")).unwrap();
    let ok = healthy.with_code(Code::SenderServiceUserOk);
    assert!(
        ok.iter().any(|f| f.message.contains("nova@Default")),
        "{ok:?}"
    );
}

#[test]
fn stated_service_roles_change_the_receiver_check() {
    let mut opts = set_options(Some("receiver-admin-role"), "12h", "1d");
    opts.service_roles = vec!["admin".into()];
    let report = diagnose_static(&opts).unwrap();
    // cinder now matches, the three others (service) do not.
    let mismatched: Vec<String> = report
        .with_code(Code::ReceiverRolesMismatch)
        .iter()
        .map(|f| key(f).2)
        .collect();
    assert_eq!(mismatched, ["glance-api.conf", "neutron.conf", "nova.conf"]);
}

#[test]
fn a_real_keystone_conf_with_unknown_sections_is_read() {
    // healthy/keystone.conf has [matchmaker_redis], which Baton's server refuses: the doctor reads
    // [token], [fernet_tokens] and [revoke] with the same reader and checks them.
    let mut opts = set_options(Some("identity-two-keys"), "12h", "1d");
    opts.senders.clear();
    opts.receivers.clear();
    let report = diagnose_static(&opts).unwrap();
    assert_eq!(report.with_code(Code::IdentityFernetKeysTooFew).len(), 1);
    let f = report.with_code(Code::IdentityFernetKeysTooFew)[0];
    assert!(f.fix.contains("max_active_keys = 5"), "{}", f.fix);
}

#[test]
fn unreadable_input_is_a_one_line_usage_error() {
    let mut opts = set_options(Some("healthy"), "", "");
    opts.receivers.push("/nonexistent/glance-api.conf".into());
    let e = diagnose_static(&opts).unwrap_err().to_string();
    assert!(
        e.starts_with("/nonexistent/glance-api.conf: cannot read"),
        "{e}"
    );
    assert!(!e.contains('\n'));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("nova.conf");
    std::fs::write(
        &bad,
        "[DEFAULT]\ndebug = true\n  continued\n[service_user\n",
    )
    .unwrap();
    let opts = baton_doctor::Options {
        senders: vec![bad.clone()],
        ..baton_doctor::Options::default()
    };
    let e = diagnose_static(&opts).unwrap_err().to_string();
    assert!(
        e.contains("nova.conf:4") && e.contains("section header"),
        "{e}"
    );

    let e = diagnose_static(&baton_doctor::Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing to check"), "{e}");
}
