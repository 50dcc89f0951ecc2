//! End-to-end tests of the public API: realistic keystone.conf and nova.conf
//! files, multi-file merging, environment overrides and the exact one-line
//! error messages operators see.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "config/fuzz_corpus.rs"]
mod fuzz_corpus;
#[path = "config/key_distribution.rs"]
mod key_distribution;
#[path = "config/security_compliance.rs"]
mod security_compliance;

use std::path::{Path, PathBuf};

use baton_config::{
    parse_duration, ConfigError, ConfigErrorKind, IdentityConfig, Ignored, IniFile, Origin,
    PasswordHashAlgorithm,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn identity(text: &str) -> Result<IdentityConfig, ConfigError> {
    IdentityConfig::from_ini(&IniFile::parse(text, "keystone.conf")?)
}

fn identity_error(text: &str) -> String {
    identity(text).unwrap_err().to_string()
}

const NO_ENV: [(&str, &str); 0] = [];
const NO_FILES: [&str; 0] = [];

#[test]
fn realistic_keystone_conf_parses_cleanly() {
    let ini = IniFile::load(fixture("keystone.conf")).unwrap();
    let (config, ignored) = IdentityConfig::from_ini_with_ignored(&ini).unwrap();

    assert!(config.default.debug, "the later `debug = True` wins");
    assert_eq!(config.default.max_token_size, 16384);
    assert_eq!(
        config.default.public_endpoint.as_deref(),
        Some("https://keystone.example.net:5000")
    );
    assert_eq!(
        config.database.connection.as_deref(),
        Some("mysql+pymysql://keystone:S3cr#tDb@10.0.0.10:3306/keystone")
    );
    assert_eq!(config.database.connection_recycle_time, Some(10));
    assert_eq!(config.database.max_pool_size, Some(1));
    assert_eq!(config.token.expiration, 86400);
    assert_eq!(config.token.allow_expired_window, 172_800);
    assert!(!config.token.revoke_by_id);
    assert_eq!(
        config.auth.methods,
        [
            "password",
            "token",
            "openid",
            "application_credential",
            "totp"
        ]
    );
    assert_eq!(
        config.identity.password_hash_algorithm,
        PasswordHashAlgorithm::Bcrypt
    );
    assert_eq!(config.identity.password_hash_rounds, Some(12));
    assert_eq!(config.fernet_tokens.max_active_keys, 4);
    assert_eq!(
        config.fernet_receipts,
        IdentityConfig::default().fernet_receipts
    );
    assert_eq!(config.resource.admin_project_name.as_deref(), Some("admin"));
    assert_eq!(
        config.resource.admin_project_domain_name.as_deref(),
        Some("Default")
    );
    assert!(config.oslo_policy.enforce_scope);
    assert_eq!(config.baton.bind.to_string(), "0.0.0.0:5000");
    assert_eq!(config.baton.data_dir, Some(PathBuf::from("/var/lib/baton")));

    // The continuation lines of default_log_levels were joined.
    assert_eq!(
        ini.get("DEFAULT", "default_log_levels").unwrap().raw(),
        "amqp=WARN,amqplib=WARN,boto=WARN,\nsqlalchemy=WARN,suds=INFO,oslo.messaging=INFO,\ndogpile=INFO,routes=INFO"
    );
    // driver = noop: no notifications, whatever the transport says.
    assert!(!config.notifications.enabled());
    assert_eq!(
        config.notifications.transport_url.as_deref(),
        Some("rabbit://openstack:Rabb1tPass@10.0.0.11:5672//")
    );
    // Multi-valued options keep every occurrence.
    assert_eq!(ini.get_all("federation", "trusted_dashboard").len(), 2);

    let described: Vec<String> = ignored
        .iter()
        .map(
            |Ignored {
                 section, option, ..
             }| match option {
                Some(option) => format!("[{section}] {option}"),
                None => format!("[{section}]"),
            },
        )
        .collect();
    assert_eq!(
        described,
        [
            "[DEFAULT] log_file",
            "[DEFAULT] use_stderr",
            "[DEFAULT] logging_context_format_string",
            "[DEFAULT] default_log_levels",
            "[oslo_middleware] enable_proxy_headers_parsing",
            "[database] max_retries",
            "[token] cache_on_issue",
            "[auth] openid",
            "[cache]",
            "[oslo_messaging_rabbit] heartbeat_in_pthread",
            "[oslo_messaging_rabbit] rabbit_quorum_queue",
            "[identity] domain_specific_drivers_enabled",
            "[identity] domain_config_dir",
            "[openid]",
            "[federation]",
            "[healthcheck]",
        ]
    );
    let log_file = &ignored[0];
    assert_eq!(
        log_file.origin,
        Origin::File {
            name: fixture("keystone.conf").display().to_string().into(),
            line: 6
        }
    );
}

#[test]
fn later_files_and_environment_override() {
    let env = [
        ("HOME", "/root"),
        ("BATON__TOKEN__CACHING", "off"),
        ("BATON__DEFAULT__DEBUG", "no"),
        ("BATON__IDENTITY__PASSWORD_HASH_ALGORITHM", "scrypt"),
    ];
    let config =
        IdentityConfig::load([fixture("keystone.conf"), fixture("override.conf")], env).unwrap();
    assert_eq!(
        config.token.expiration, 3600,
        "override.conf wins over keystone.conf"
    );
    assert_eq!(
        config.baton.worker_threads,
        Some(4),
        "[Baton] matches [baton]"
    );
    assert_eq!(
        config.baton.bind.to_string(),
        "0.0.0.0:5000",
        "untouched values remain"
    );
    assert!(!config.token.caching);
    assert!(!config.default.debug);
    assert_eq!(
        config.identity.password_hash_algorithm,
        PasswordHashAlgorithm::Scrypt
    );

    let mut ini = IniFile::load_all([fixture("keystone.conf"), fixture("override.conf")]).unwrap();
    let origin = ini.get("token", "expiration").unwrap().origin().to_string();
    assert!(origin.ends_with("override.conf:3"), "{origin}");
    ini.apply_env([("BATON__TOKEN__EXPIRATION", "120")])
        .unwrap();
    assert_eq!(ini.get_all("token", "expiration").len(), 1);
}

#[test]
fn environment_errors_name_the_variable() {
    let bad_value = IdentityConfig::load(
        [fixture("override.conf")],
        [("BATON__TOKEN__EXPIRATION", "abc")],
    )
    .unwrap_err();
    assert_eq!(
        bad_value.to_string(),
        "environment BATON__TOKEN__EXPIRATION: [token] expiration = \"abc\": not an integer"
    );

    let typo = IdentityConfig::load(NO_FILES, [("BATON__TOKEN__EXPIRATON", "60")]).unwrap_err();
    assert_eq!(
        typo.to_string(),
        "environment BATON__TOKEN__EXPIRATON: [token] expiraton = \"60\": unknown option (did you mean \"expiration\"?)"
    );

    let section = IdentityConfig::load(NO_FILES, [("BATON__TOKNE__EXPIRATION", "60")]).unwrap_err();
    assert_eq!(
        section.to_string(),
        "environment BATON__TOKNE__EXPIRATION: [tokne]: unknown section (did you mean [token]?)"
    );

    let malformed = IdentityConfig::load(NO_FILES, [("BATON__EXPIRATION", "60")]).unwrap_err();
    assert_eq!(
        malformed.to_string(),
        "environment BATON__EXPIRATION: expected BATON__<SECTION>__<OPTION>"
    );
}

#[test]
fn the_documented_error_example() {
    let text = "[DEFAULT]\n\n\n\n\n\n\n\n\n\n[token]\nexpiration = abc\n";
    assert_eq!(
        identity_error(text),
        "keystone.conf:12: [token] expiration = \"abc\": not an integer"
    );
}

#[test]
fn typos_are_caught() {
    assert_eq!(
        identity_error("[token]\nexpiraton = 7200\n"),
        "keystone.conf:2: [token] expiraton = \"7200\": unknown option (did you mean \"expiration\"?)"
    );
    assert_eq!(
        identity_error("[tokne]\nexpiration = 7200\n"),
        "keystone.conf:1: [tokne]: unknown section (did you mean [token]?)"
    );
    assert_eq!(
        identity_error("[default]\ndebug = true\n"),
        "keystone.conf:1: [default]: unknown section (did you mean [DEFAULT]?)"
    );
    assert_eq!(
        identity_error("[DEFAULT]\nmy_ip = 10.0.0.1\n"),
        "keystone.conf:2: [DEFAULT] my_ip = \"10.0.0.1\": unknown option"
    );
    assert_eq!(
        identity_error("[keystone_authtoken]\nauth_url = http://x\n"),
        "keystone.conf:1: [keystone_authtoken]: unknown section"
    );
    assert_eq!(
        identity_error("[fernet_tokens]\nkey_repo = /tmp\n"),
        "keystone.conf:2: [fernet_tokens] key_repo = \"/tmp\": unknown option"
    );
    assert_eq!(
        identity_error("[baton]\nbnid = 0.0.0.0:5000\n"),
        "keystone.conf:2: [baton] bnid = \"0.0.0.0:5000\": unknown option (did you mean \"bind\"?)"
    );
    // An [auth] plugin option or method section needs the method enabled.
    assert_eq!(
        identity_error("[auth]\nmethods = password,token\nopenid = mapped\n"),
        "keystone.conf:3: [auth] openid = \"mapped\": unknown option"
    );
    assert_eq!(
        identity_error("[openid]\nremote_id_attribute = X\n"),
        "keystone.conf:1: [openid]: unknown section"
    );
    // The default methods' plugin options are always accepted.
    assert!(identity("[auth]\npassword = sql\n").is_ok());
}

#[test]
fn unknown_option_errors_hide_secrets() {
    assert_eq!(
        identity_error("[DEFAULT]\nadmin_password = hunter2\n"),
        "keystone.conf:2: [DEFAULT] admin_password = <redacted>: unknown option"
    );
    assert_eq!(
        identity_error("[database]\nconnection = mysql+pymysql://k:pa$word@db/keystone\n"),
        "keystone.conf:2: [database] connection = <redacted>: unresolved substitution $word (write $$ for a literal $)"
    );
}

#[test]
fn value_error_messages() {
    let cases = [
        (
            "[token]\nprovider = jws\n",
            "keystone.conf:2: [token] provider = \"jws\": Baton supports only the fernet token provider",
        ),
        (
            "[identity]\ndriver = ldap\n",
            "keystone.conf:2: [identity] driver = \"ldap\": Baton supports only the sql identity driver",
        ),
        (
            "[identity]\npassword_hash_algorithm = md5\n",
            "keystone.conf:2: [identity] password_hash_algorithm = \"md5\": must be one of: bcrypt, bcrypt_sha256, scrypt, pbkdf2_sha512",
        ),
        (
            "[identity]\nmax_password_length = 5000\n",
            "keystone.conf:2: [identity] max_password_length = \"5000\": must be at most 4096",
        ),
        (
            "[identity]\ndefault_domain_id =\n",
            "keystone.conf:2: [identity] default_domain_id = \"\": must not be empty",
        ),
        (
            "[auth]\nmethods = password, token,password\n",
            "keystone.conf:2: [auth] methods = \"password, token,password\": duplicate method \"password\"",
        ),
        (
            "[auth]\nmethods = ,\n",
            "keystone.conf:2: [auth] methods = \",\": at least one method is required",
        ),
        (
            "[token]\nexpiration = 0\n",
            "keystone.conf:2: [token] expiration = \"0\": must be at least 1",
        ),
        (
            "[token]\nallow_expired_window = -1\n",
            "keystone.conf:2: [token] allow_expired_window = \"-1\": must be at least 0",
        ),
        (
            "[fernet_receipts]\nmax_active_keys = 0\n",
            "keystone.conf:2: [fernet_receipts] max_active_keys = \"0\": must be at least 1",
        ),
        (
            "[fernet_tokens]\nkey_repository = ''\n",
            "keystone.conf:2: [fernet_tokens] key_repository = \"\": must not be empty",
        ),
        (
            "[token]\ncaching = t\n",
            "keystone.conf:2: [token] caching = \"t\": not a boolean (use true/false, yes/no, on/off or 1/0)",
        ),
        (
            "[DEFAULT]\npublic_endpoint = keystone.example.net\n",
            "keystone.conf:2: [DEFAULT] public_endpoint = \"keystone.example.net\": not an http:// or https:// URL",
        ),
        (
            "[baton]\nbind = localhost:5000\n",
            "keystone.conf:2: [baton] bind = \"localhost:5000\": not an IP address and port (e.g. 127.0.0.1:5000 or [::]:5000)",
        ),
        (
            "[baton]\nworker_threads = 0\n",
            "keystone.conf:2: [baton] worker_threads = \"0\": must be at least 1",
        ),
        (
            "[token]\nexpiration = 4294967296\n",
            "keystone.conf:2: [token] expiration = \"4294967296\": must be at most 4294967295",
        ),
    ];
    for (text, expected) in cases {
        let message = identity_error(text);
        assert_eq!(message, expected);
        assert!(!message.contains('\n'));
    }
}

#[test]
fn accepted_spellings_and_empty_values() {
    let config = identity(
        "[token]\nprovider = fernet\ncaching = NO\nexpiration =\ncache_time = 30\n\
         [identity]\ndriver = sql\npassword_hash_algorithm = pbkdf2_sha512\n\
         [DEFAULT]\npublic_endpoint =\nlist_limit = 100\n\
         [database]\nconnection =\n\
         [baton]\nbind = [::1]:35357\nvalidation_cache_ttl = 0\n",
    )
    .unwrap();
    assert!(!config.token.caching);
    assert_eq!(
        config.token.expiration, 3600,
        "empty integer means unset, as in oslo"
    );
    assert_eq!(config.token.cache_time, Some(30));
    assert_eq!(
        config.identity.password_hash_algorithm,
        PasswordHashAlgorithm::Pbkdf2Sha512
    );
    assert_eq!(
        config.identity.password_hash_algorithm.as_str(),
        "pbkdf2_sha512"
    );
    assert_eq!(config.default.public_endpoint, None);
    assert_eq!(config.default.list_limit, Some(100));
    assert_eq!(config.database.connection, None);
    assert_eq!(config.baton.bind.to_string(), "[::1]:35357");
    assert_eq!(config.baton.validation_cache_ttl, 0);
}

#[test]
fn substitution_in_keystone_conf() {
    let config = identity(
        "[DEFAULT]\n[fernet_tokens]\nkey_repository = ${baton.data_dir}/fernet-keys\n\
         [fernet_receipts]\nkey_repository = ${fernet_tokens.key_repository}\n\
         [baton]\ndata_dir = /srv/baton\n",
    )
    .unwrap();
    assert_eq!(
        config.fernet_tokens.key_repository,
        PathBuf::from("/srv/baton/fernet-keys")
    );
    assert_eq!(
        config.fernet_receipts.key_repository,
        config.fernet_tokens.key_repository
    );
    // `$key_repository` resolves in its own section first: a self-reference.
    assert!(identity("[fernet_receipts]\nkey_repository = $key_repository\n").is_err());
}

#[test]
fn nova_conf_service_user_and_authtoken_via_the_generic_reader() {
    let ini = IniFile::load(fixture("nova.conf")).unwrap();

    let su = "service_user";
    assert_eq!(
        ini.get_bool(su, "send_service_user_token").unwrap(),
        Some(true)
    );
    assert_eq!(
        ini.get_str(su, "auth_type").unwrap().as_deref(),
        Some("password")
    );
    assert_eq!(
        ini.get_str(su, "auth_url").unwrap().as_deref(),
        Some("http://10.0.0.10:5000")
    );
    assert_eq!(
        ini.get_str(su, "user_domain_name").unwrap().as_deref(),
        Some("Default")
    );
    // Quotes removed, `$$` is a literal dollar.
    assert_eq!(
        ini.get_str(su, "password").unwrap().as_deref(),
        Some("N0va$Pass")
    );
    assert_eq!(ini.get(su, "password").unwrap().raw(), "N0va$$Pass");
    // `$state_path` comes from [DEFAULT].
    assert_eq!(
        ini.get_str(su, "cafile").unwrap().as_deref(),
        Some("/var/lib/nova/ca.pem")
    );
    assert_eq!(ini.get_int(su, "timeout", Some(0), None).unwrap(), Some(30));
    assert_eq!(ini.get_str(su, "insecure").unwrap(), None);
    // [DEFAULT] is only visible on request.
    assert_eq!(ini.get_str(su, "transport_url").unwrap(), None);
    assert!(ini.option_or_default(su, "transport_url").is_set());

    let ka = "keystone_authtoken";
    assert_eq!(
        ini.get_bool(ka, "service_token_roles_required").unwrap(),
        Some(true)
    );
    assert_eq!(
        ini.get_list(ka, "service_token_roles").unwrap().unwrap(),
        ["service"]
    );
    assert_eq!(
        ini.get_list(ka, "memcached_servers").unwrap().unwrap(),
        ["10.0.0.11:11211", "10.0.0.12:11211"]
    );
    assert_eq!(
        ini.get_int(ka, "token_cache_time", Some(0), None).unwrap(),
        Some(300)
    );
    assert_eq!(
        ini.get_str(ka, "password").unwrap().as_deref(),
        Some("N0va$Pass")
    );
    assert_eq!(
        ini.get_str("oslo_concurrency", "lock_path")
            .unwrap()
            .as_deref(),
        Some("/var/lib/nova/tmp")
    );
    let origin = ini.get(ka, "auth_type").unwrap().origin().to_string();
    assert!(origin.ends_with("nova.conf:10"), "{origin}");
}

#[test]
fn read_errors_are_one_line() {
    let err = IdentityConfig::load([fixture("missing.conf")], NO_ENV).unwrap_err();
    assert!(matches!(err.kind(), ConfigErrorKind::Read { .. }));
    assert_eq!(err.origin(), None);
    assert!(err
        .to_string()
        .contains("missing.conf: cannot read configuration file: "));
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn durations_for_later_tools() {
    assert_eq!(parse_duration("6h").unwrap().as_secs(), 21_600);
    assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
    assert!(parse_duration("6 hours").is_err());
}

#[test]
fn policy_file_is_found_next_to_the_config_file() {
    let fixtures = fixture("");
    // keystone.conf sets `policy_file = policy.yaml`: relative to keystone.conf's directory.
    let config = IdentityConfig::load([fixture("keystone.conf")], NO_ENV).unwrap();
    assert_eq!(config.oslo_policy.policy_file, fixtures.join("policy.yaml"));
    assert!(config.oslo_policy.policy_file_explicit);

    // Unset: the default name, next to the (last) configuration file, and optional.
    let config = IdentityConfig::load([fixture("override.conf")], NO_ENV).unwrap();
    assert_eq!(config.oslo_policy.policy_file, fixtures.join("policy.yaml"));
    assert!(!config.oslo_policy.policy_file_explicit);
    let config = identity("").unwrap();
    assert_eq!(config.oslo_policy.policy_file, PathBuf::from("policy.yaml"));
    assert!(!config.oslo_policy.policy_file_explicit);

    // An environment override is relative to the configuration file too; absolute stays.
    let config = IdentityConfig::load(
        [fixture("override.conf")],
        [("BATON__OSLO_POLICY__POLICY_FILE", "policies/custom.yaml")],
    )
    .unwrap();
    assert_eq!(
        config.oslo_policy.policy_file,
        fixtures.join("policies/custom.yaml")
    );
    assert!(config.oslo_policy.policy_file_explicit);
    let config = identity("[oslo_policy]\npolicy_file = /etc/keystone/custom.yaml\n").unwrap();
    assert_eq!(
        config.oslo_policy.policy_file,
        PathBuf::from("/etc/keystone/custom.yaml")
    );

    assert_eq!(
        identity_error("[oslo_policy]\npolicy_file =\n"),
        "keystone.conf:2: [oslo_policy] policy_file = \"\": must not be empty"
    );
    assert_eq!(
        identity_error("[oslo_policy]\npolicy_fille = x.yaml\n"),
        "keystone.conf:2: [oslo_policy] policy_fille = \"x.yaml\": unknown option (did you mean \"policy_file\"?)"
    );
}

#[test]
fn application_credential_user_limit() {
    let read = |text: &str| {
        let ini = IniFile::parse(text, "keystone.conf").unwrap();
        IdentityConfig::from_ini(&ini)
            .unwrap()
            .application_credential
            .user_limit
    };
    assert_eq!(read(""), None, "Keystone's default -1: no limit");
    assert_eq!(read("[application_credential]\nuser_limit = -1\n"), None);
    assert_eq!(read("[application_credential]\nuser_limit = 0\n"), Some(0));
    assert_eq!(
        read("[application_credential]\nuser_limit = 25\n"),
        Some(25)
    );
    // Keystone's other options of the section are accepted and ignored.
    assert_eq!(
        read("[application_credential]\ncaching = true\nuser_limit = 3\n"),
        Some(3)
    );
}

/// `[oslo_messaging_rabbit] ssl` and its files: read (a bad file stops the start with one line
/// naming it), the rest of the section ignored; off, the files are not looked at.
#[test]
fn broker_tls_options() {
    let off =
        identity("[oslo_messaging_rabbit]\nssl = false\nssl_ca_file = /nonexistent.pem\n").unwrap();
    assert_eq!(off.notifications.rabbit_tls, None);
    let on = identity("[oslo_messaging_rabbit]\nssl = true\nrabbit_ha_queues = true\n").unwrap();
    assert_eq!(
        on.notifications.rabbit_tls,
        Some(baton_config::RabbitTls {
            ca_file: None,
            client: None
        })
    );
    let e = identity_error("[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = /nonexistent.pem\n");
    assert!(
        e.starts_with("keystone.conf:3: [oslo_messaging_rabbit] ssl_ca_file = \"/nonexistent.pem\": cannot read /nonexistent.pem"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = identity_error("[oslo_messaging_rabbit]\nssl = true\nssl_cert_file = /c.pem\n");
    assert!(e.contains("ssl_key_file"), "{e}");
}
