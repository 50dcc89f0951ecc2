//! `[fernet_tokens] key_distribution` / `key_encryption_key_file` and `[credential]
//! key_distribution`: `filesystem` by default (Keystone's way), `database` only with a
//! key-encryption key file, refused otherwise with one line naming file, section and option.

use baton_config::{IdentityConfig, IniFile, KeyDistribution};

fn identity(text: &str) -> Result<IdentityConfig, String> {
    let ini = IniFile::parse(text, "keystone.conf").map_err(|e| e.to_string())?;
    IdentityConfig::from_ini(&ini).map_err(|e| e.to_string())
}

#[test]
fn filesystem_is_the_default() {
    let c = identity("").unwrap();
    assert_eq!(
        c.fernet_tokens.key_distribution,
        KeyDistribution::Filesystem
    );
    assert_eq!(c.credential.key_distribution, KeyDistribution::Filesystem);
    assert_eq!(c.fernet_tokens.key_encryption_key_file, None);
}

#[test]
fn database_needs_a_key_encryption_key_file() {
    let c = identity(
        "[fernet_tokens]\nkey_distribution = database\nkey_encryption_key_file = /etc/baton/kek\n\n[credential]\nkey_distribution = database\n",
    )
    .unwrap();
    assert_eq!(c.fernet_tokens.key_distribution, KeyDistribution::Database);
    assert_eq!(c.credential.key_distribution, KeyDistribution::Database);
    assert_eq!(
        c.fernet_tokens.key_encryption_key_file.as_deref(),
        Some(std::path::Path::new("/etc/baton/kek"))
    );

    let err = identity("[fernet_tokens]\nkey_distribution = database\n").unwrap_err();
    assert!(
        err.contains("keystone.conf")
            && err.contains("[fernet_tokens]")
            && err.contains("key_encryption_key_file")
            && !err.contains('\n'),
        "{err}"
    );
    let err = identity("[credential]\nkey_distribution = database\n").unwrap_err();
    assert!(
        err.contains("[credential]") && err.contains("key_encryption_key_file"),
        "{err}"
    );
    let err = identity("[fernet_tokens]\nkey_distribution = rsync\n").unwrap_err();
    assert!(err.contains("filesystem, database"), "{err}");
    // Receipts have no shared form.
    let err = identity("[fernet_receipts]\nkey_distribution = database\n").unwrap_err();
    assert!(err.contains("key_distribution"), "{err}");
}
