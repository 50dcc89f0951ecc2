//! `[security_compliance]`: the options Baton enforces are read (bad values are one-line errors
//! naming the file, the section and the option); the options whose loss weakens nothing stay
//! accepted and ignored.

use baton_config::{ConfigError, IdentityConfig, Ignored, IniFile};

fn identity(text: &str) -> Result<(IdentityConfig, Vec<Ignored>), ConfigError> {
    IdentityConfig::from_ini_with_ignored(&IniFile::parse(text, "keystone.conf")?)
}

#[test]
fn disable_user_account_days_inactive_is_read() {
    let text = "[DEFAULT]\ndebug = false\n\n[security_compliance]\ndisable_user_account_days_inactive = 90\n";
    let (config, ignored) = identity(text).expect("accepted");
    assert_eq!(
        config
            .security_compliance
            .disable_user_account_days_inactive,
        Some(90)
    );
    assert!(ignored.is_empty(), "{ignored:?}");
    let err = identity("[security_compliance]\ndisable_user_account_days_inactive = 0\n")
        .expect_err("0 refused, as oslo.config's min=1");
    assert!(
        err.to_string().starts_with(
            "keystone.conf:2: [security_compliance] disable_user_account_days_inactive = \"0\": must be at least 1"
        ),
        "{err}"
    );
}

#[test]
fn keystone_defaults_and_harmless_options_are_accepted_and_ignored() {
    let text = "\
[security_compliance]
lockout_duration = 1800
unique_last_password_count = 0
minimum_password_age = 0
password_regex =
lockout_failure_attempts =
change_password_upon_first_use = false
password_regex_description = at least 7 characters, one letter and one digit
report_invalid_password_hash = event
invalid_password_hash_secret_key = s3cret-for-hmac
invalid_password_hash_function = sha256
invalid_password_hash_max_chars = 5
allow_insecure_admin_trust_cross_project_credentials_access = false
allow_insecure_application_credential_trust_escalation = false
";
    let (config, ignored) = identity(text).expect("accepted");
    assert!(
        ignored.iter().any(|i| i.section == "security_compliance"
            && i.option.as_deref()
                == Some("allow_insecure_admin_trust_cross_project_credentials_access")),
        "the harmless options are reported as ignored: {ignored:?}"
    );
    let hash = config
        .security_compliance
        .invalid_password_hash
        .as_ref()
        .expect("report_invalid_password_hash = event is read");
    assert_eq!(
        (hash.secret_key.as_str(), hash.function, hash.max_chars),
        (
            "s3cret-for-hmac",
            baton_config::HashFunction::Sha256,
            Some(5)
        )
    );
    assert!(
        !format!("{hash:?}").contains("s3cret"),
        "the key is not printed"
    );
    assert!(
        !ignored
            .iter()
            .any(|i| i.option.as_deref() == Some("lockout_duration")),
        "lockout is enforced, not ignored: {ignored:?}"
    );
    assert_eq!(config.security_compliance.lockout_failure_attempts, None);
    assert_eq!(config.security_compliance.lockout_duration, 1800);
}

#[test]
fn password_regex_is_read_and_must_compile() {
    let (config, _) = identity(
        "[security_compliance]\npassword_regex = ^(?=.*\\d)(?=.*[a-zA-Z]).{7,}$\npassword_regex_description = seven or more, a digit and a letter\n",
    )
    .expect("accepted");
    assert_eq!(
        config.security_compliance.password_regex.as_deref(),
        Some("^(?=.*\\d)(?=.*[a-zA-Z]).{7,}$")
    );
    assert_eq!(
        config
            .security_compliance
            .password_regex_description
            .as_deref(),
        Some("seven or more, a digit and a letter")
    );
    let err =
        identity("[security_compliance]\npassword_regex = ^(unclosed\n").expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("keystone.conf:2: [security_compliance] password_regex = \"^(unclosed\": not a valid regular expression"),
        "{err}"
    );
}

#[test]
fn lockout_options_are_read() {
    let (config, _) =
        identity("[security_compliance]\nlockout_failure_attempts = 3\nlockout_duration = 60\n")
            .expect("accepted");
    assert_eq!(config.security_compliance.lockout_failure_attempts, Some(3));
    assert_eq!(config.security_compliance.lockout_duration, 60);
}

#[test]
fn invalid_values_are_errors_too() {
    for (line, want) in [
        ("report_invalid_password_hash = log", "\"log\" is not one of: event"),
        (
            "report_invalid_password_hash = event",
            "needs [security_compliance] invalid_password_hash_secret_key",
        ),
        (
            "report_invalid_password_hash = event\ninvalid_password_hash_secret_key = k\ninvalid_password_hash_function = whirlpool",
            "\"whirlpool\" is not a digest Baton has (sha1, sha224, sha256, sha384, sha512)",
        ),
        ("lockout_failure_attempts = 0", "must be at least 1"),
        ("lockout_failure_attempts = many", "not an integer"),
        (
            "change_password_upon_first_use = maybe",
            "not a boolean (use true/false, yes/no, on/off or 1/0)",
        ),
    ] {
        let err = identity(&format!("[security_compliance]\n{line}\n"))
            .err()
            .unwrap_or_else(|| panic!("{line} accepted"));
        assert!(err.to_string().ends_with(want), "{line}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with("keystone.conf:") && text.contains(": [security_compliance] "),
            "{text}"
        );
    }
}

#[test]
fn environment_overrides_are_checked_as_well() {
    let mut ini = IniFile::parse("[security_compliance]\n", "keystone.conf").unwrap();
    ini.apply_env([(
        "BATON__SECURITY_COMPLIANCE__DISABLE_USER_ACCOUNT_DAYS_INACTIVE",
        "0",
    )])
    .unwrap();
    let err = IdentityConfig::from_ini_with_ignored(&ini).expect_err("refused");
    assert!(
        err.to_string().contains(
            "[security_compliance] disable_user_account_days_inactive = \"0\": must be at least 1"
        ),
        "{err}"
    );
}
