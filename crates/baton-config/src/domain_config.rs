//! The options a domain's own configuration may set (`/v3/domains/{id}/config`), with the
//! values this process's configuration gives them: what `GET /v3/domains/config/default`
//! shows. Keystone lets a domain set `[identity] driver, list_limit` and a fixed list of `[ldap]`
//! options (plus `[ldap] password`, which is sensitive: stored apart and never shown).
//!
//! Baton has no LDAP driver, but it reads the `[ldap]` options a keystone.conf sets, typed and
//! checked as oslo.config checks them, so that the defaults it shows are Keystone's for the
//! same file.

use crate::error::ConfigError;
use crate::reader::SectionReader;
use crate::IniFile;

/// A typed option value, as Keystone's JSON shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// Unset, without a default (`null`).
    Null,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Vec<String>),
}

// Floats are finite (`read_one` refuses NaN and infinities), so equality is total.
impl Eq for OptionValue {}

/// How an option is typed, with its Keystone default.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string; `choices` when oslo.config restricts it.
    Str(Option<&'static str>, &'static [&'static str]),
    /// An integer of at least `min`.
    Int(Option<i64>, Option<i64>),
    Bool(Option<bool>),
    Float(f64),
    List(&'static [&'static str]),
}

use Kind::{Bool, Float, Int, List, Str};

/// Keystone's whitelisted `[ldap]` options (`DomainConfigManager.whitelisted_options`) with
/// their types and defaults, in its order.
const LDAP: &[(&str, Kind)] = &[
    ("url", Str(Some("ldap://localhost"), &[])),
    ("user", Str(None, &[])),
    ("suffix", Str(Some("cn=example,cn=com"), &[])),
    ("query_scope", Str(Some("one"), &["one", "sub"])),
    ("page_size", Int(Some(0), Some(0))),
    (
        "alias_dereferencing",
        Str(
            Some("default"),
            &["never", "searching", "always", "finding", "default"],
        ),
    ),
    ("debug_level", Int(None, Some(-1))),
    ("chase_referrals", Bool(None)),
    ("user_tree_dn", Str(None, &[])),
    ("user_filter", Str(None, &[])),
    ("user_objectclass", Str(Some("inetOrgPerson"), &[])),
    ("user_id_attribute", Str(Some("cn"), &[])),
    ("user_name_attribute", Str(Some("sn"), &[])),
    ("user_mail_attribute", Str(Some("mail"), &[])),
    ("user_description_attribute", Str(Some("description"), &[])),
    ("user_pass_attribute", Str(Some("userPassword"), &[])),
    ("user_enabled_attribute", Str(Some("enabled"), &[])),
    ("user_enabled_invert", Bool(Some(false))),
    ("user_enabled_mask", Int(Some(0), Some(0))),
    ("user_enabled_default", Str(Some("True"), &[])),
    ("user_attribute_ignore", List(&["default_project_id"])),
    ("user_default_project_id_attribute", Str(None, &[])),
    ("user_enabled_emulation", Bool(Some(false))),
    ("user_enabled_emulation_dn", Str(None, &[])),
    ("user_enabled_emulation_use_group_config", Bool(Some(false))),
    ("user_additional_attribute_mapping", List(&[])),
    ("group_tree_dn", Str(None, &[])),
    ("group_filter", Str(None, &[])),
    ("group_objectclass", Str(Some("groupOfNames"), &[])),
    ("group_id_attribute", Str(Some("cn"), &[])),
    ("group_name_attribute", Str(Some("ou"), &[])),
    ("group_members_are_ids", Bool(Some(false))),
    ("group_member_attribute", Str(Some("member"), &[])),
    ("group_desc_attribute", Str(Some("description"), &[])),
    ("group_attribute_ignore", List(&[])),
    ("group_additional_attribute_mapping", List(&[])),
    ("tls_cacertfile", Str(None, &[])),
    ("tls_cacertdir", Str(None, &[])),
    ("use_tls", Bool(Some(false))),
    (
        "tls_req_cert",
        Str(Some("demand"), &["demand", "never", "allow"]),
    ),
    ("use_pool", Bool(Some(true))),
    ("pool_size", Int(Some(10), Some(1))),
    ("pool_retry_max", Int(Some(3), Some(1))),
    ("pool_retry_delay", Float(0.1)),
    ("pool_connection_timeout", Int(Some(-1), Some(-1))),
    ("pool_connection_lifetime", Int(Some(600), Some(1))),
    ("use_auth_pool", Bool(Some(true))),
    ("auth_pool_size", Int(Some(100), Some(1))),
    ("auth_pool_connection_lifetime", Int(Some(60), Some(1))),
];

/// The `[identity]` options a domain may set.
pub const IDENTITY_OPTIONS: &[&str] = &["driver", "list_limit"];

/// The options stored apart and never shown, per group.
pub const SENSITIVE_OPTIONS: &[(&str, &[&str])] = &[("identity", &[]), ("ldap", &["password"])];

/// The `[ldap]` options a domain may set, in Keystone's order.
pub fn ldap_options() -> impl Iterator<Item = &'static str> {
    LDAP.iter().map(|(name, _)| *name)
}

/// The `[ldap]` values this configuration gives, in Keystone's order (defaults where unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapDefaults(pub Vec<(&'static str, OptionValue)>);

impl Default for LdapDefaults {
    fn default() -> Self {
        LdapDefaults(LDAP.iter().map(|(n, k)| (*n, default_of(*k))).collect())
    }
}

fn default_of(kind: Kind) -> OptionValue {
    match kind {
        Str(d, _) => d.map_or(OptionValue::Null, |s| OptionValue::Str(s.into())),
        Int(d, _) => d.map_or(OptionValue::Null, OptionValue::Int),
        Bool(d) => d.map_or(OptionValue::Null, OptionValue::Bool),
        Float(d) => OptionValue::Float(d),
        List(d) => OptionValue::List(d.iter().map(|s| (*s).to_string()).collect()),
    }
}

fn read_one(r: SectionReader, name: &str, kind: Kind) -> Result<Option<OptionValue>, ConfigError> {
    Ok(match kind {
        Str(_, choices) if !choices.is_empty() => r.custom(name, |text| {
            if choices.contains(&text.as_str()) {
                Ok(OptionValue::Str(text))
            } else {
                Err(format!("must be one of {}", choices.join(", ")))
            }
        })?,
        Str(..) => r.option(name).string()?.map(OptionValue::Str),
        Int(_, min) => r
            .int::<i64>(name, min.unwrap_or(i64::MIN), i64::MAX)?
            .map(OptionValue::Int),
        Bool(_) => r.bool(name)?.map(OptionValue::Bool),
        Float(_) => r.custom(name, |text| match text.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(OptionValue::Float(f)),
            _ => Err("not a finite number".to_owned()),
        })?,
        List(_) => r.list(name)?.map(OptionValue::List),
    })
}

/// Reads `[ldap]`'s whitelisted options (others stay ignored, as Baton has no LDAP driver).
pub(crate) fn read_ldap(ini: &IniFile) -> Result<LdapDefaults, ConfigError> {
    let r = ini.reader("ldap");
    let mut out = Vec::with_capacity(LDAP.len());
    for (name, kind) in LDAP {
        let value = read_one(r, name, *kind)?.unwrap_or_else(|| default_of(*kind));
        out.push((*name, value));
    }
    Ok(LdapDefaults(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_options_typed_and_checked() {
        let ini = IniFile::parse(
            "[ldap]\nurl = ldap://dir\npage_size = 50\nuse_tls = true\nuser_attribute_ignore = a, b\n",
            "k.conf",
        )
        .unwrap();
        let d = read_ldap(&ini).unwrap();
        let get = |n: &str| d.0.iter().find(|(k, _)| *k == n).unwrap().1.clone();
        assert_eq!(get("url"), OptionValue::Str("ldap://dir".into()));
        assert_eq!(get("page_size"), OptionValue::Int(50));
        assert_eq!(get("use_tls"), OptionValue::Bool(true));
        assert_eq!(get("user"), OptionValue::Null);
        assert_eq!(get("pool_retry_delay"), OptionValue::Float(0.1));
        assert_eq!(
            get("user_attribute_ignore"),
            OptionValue::List(vec!["a".into(), "b".into()])
        );
        for bad in [
            "query_scope = deep",
            "pool_size = 0",
            "use_pool = maybe",
            "pool_retry_delay = nan",
        ] {
            let ini = IniFile::parse(&format!("[ldap]\n{bad}\n"), "k.conf").unwrap();
            let e = read_ldap(&ini).unwrap_err().to_string();
            assert!(e.contains("[ldap]"), "{e}");
        }
        assert_eq!(LdapDefaults::default().0.len(), 49);
    }
}
