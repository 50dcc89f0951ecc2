//! A domain's own configuration (`/v3/domains/{id}/config`): which groups and options a domain
//! may set, which are sensitive (stored apart, never shown), and Keystone's rules for creating
//! (replacing), updating (merging; a group or option named in the path must exist already),
//! deleting and reading them, with its 403 (`Invalid domain specific configuration: ...`) and
//! 404 (`Could not find ... in domain configuration for domain ...`) texts. Also the defaults
//! view (this process's `[identity]` and `[ldap]` values) and the readable part of
//! `[security_compliance]` for the default domain.
//!
//! Baton has no per-domain identity driver: it stores and serves the configuration (so a
//! Keystone database holding one keeps it, and deployment tools can manage it), and nothing in
//! Baton reads it.

use baton_config::domain_config::{ldap_options, OptionValue, IDENTITY_OPTIONS, SENSITIVE_OPTIONS};
use baton_store::DomainConfigOption;
use serde_json::{json, Map, Value};

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's 403 for a configuration it does not support.
fn invalid(reason: impl std::fmt::Display) -> ApiError {
    ApiError::ForbiddenNotSecurity(format!("Invalid domain specific configuration: {reason}."))
}

/// Keystone's 404 naming what is missing (`any options`, `group ldap`, `option url in group
/// ldap`).
fn not_found(domain_id: &str, group: Option<&str>, option: Option<&str>) -> ApiError {
    let what = match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_string(),
    };
    ApiError::NotFound(format!(
        "Could not find {what} in domain configuration for domain {domain_id}."
    ))
}

fn whitelisted(group: &str, option: &str) -> bool {
    match group {
        "identity" => IDENTITY_OPTIONS.contains(&option),
        "ldap" => ldap_options().any(|o| o == option),
        _ => false,
    }
}

fn sensitive(group: &str, option: &str) -> bool {
    SENSITIVE_OPTIONS
        .iter()
        .any(|(g, opts)| *g == group && opts.contains(&option))
}

fn known_group(group: &str) -> bool {
    SENSITIVE_OPTIONS.iter().any(|(g, _)| *g == group)
}

/// Keystone's `_assert_valid_group_and_option`: the group must be one a domain may set, and
/// the option one of its options (whitelisted or sensitive).
pub fn check_group_and_option(group: Option<&str>, option: Option<&str>) -> ApiResult<()> {
    let Some(group) = group else {
        return Ok(());
    };
    if !known_group(group) {
        return Err(invalid(format!(
            "Group {group} is not supported for domain specific configurations"
        )));
    }
    if let Some(option) = option {
        if !whitelisted(group, option) && !sensitive(group, option) {
            return Err(invalid(format!(
                "Option {option} in group {group} is not supported for domain specific configurations"
            )));
        }
    }
    Ok(())
}

/// Keystone's `_assert_valid_config`: something given, each group a non-empty object of
/// supported options.
fn check_config(config: &Map<String, Value>) -> ApiResult<()> {
    if config.is_empty() {
        return Err(invalid("No options specified"));
    }
    for (group, options) in config {
        let options = match options {
            Value::Object(m) if !m.is_empty() => m,
            _ => {
                return Err(invalid(format!(
                    "The value of group {group} specified in the config should be a dictionary of options"
                )))
            }
        };
        for option in options.keys() {
            check_group_and_option(Some(group), Some(option))?;
        }
    }
    Ok(())
}

/// The rows of a request's configuration, each marked sensitive or not.
fn to_rows(config: &Map<String, Value>) -> Vec<DomainConfigOption> {
    let mut rows = Vec::new();
    for (group, options) in config {
        if let Value::Object(options) = options {
            for (option, value) in options {
                rows.push(DomainConfigOption {
                    group: group.clone(),
                    option: option.clone(),
                    value: value.clone(),
                    sensitive: sensitive(group, option),
                });
            }
        }
    }
    rows
}

/// Keystone's `_list_to_config`: `{group: {option: value}}`, or `{option: value}` when one
/// option was asked for.
fn to_config(rows: &[DomainConfigOption], one_option: bool) -> Value {
    if one_option {
        if let Some(r) = rows.first() {
            return json!({ r.option.clone(): r.value.clone() });
        }
    }
    let mut out = Map::new();
    for r in rows {
        if let Value::Object(g) = out
            .entry(r.group.clone())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            g.insert(r.option.clone(), r.value.clone());
        }
    }
    Value::Object(out)
}

fn option_json(v: &OptionValue) -> Value {
    match v {
        OptionValue::Null => Value::Null,
        OptionValue::Str(s) => json!(s),
        OptionValue::Int(i) => json!(i),
        OptionValue::Float(f) => json!(f),
        OptionValue::Bool(b) => json!(b),
        OptionValue::List(l) => json!(l),
    }
}

/// A JSON value Python counts as false (`not value`): what Keystone's delete treats as absent.
fn falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

impl Identity {
    /// Every option (shown and sensitive) of a domain's configuration within a group and option.
    async fn config_rows(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> ApiResult<Vec<DomainConfigOption>> {
        let mut rows = self
            .store
            .domain_config_options(domain_id, group, option, false)
            .await?;
        rows.extend(
            self.store
                .domain_config_options(domain_id, group, option, true)
                .await?,
        );
        Ok(rows)
    }

    /// The shown part of a domain's configuration, a group of it or one option (`GET`); 404
    /// when there is none.
    pub async fn domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> ApiResult<Value> {
        check_group_and_option(group, option)?;
        let rows = self
            .store
            .domain_config_options(domain_id, group, option, false)
            .await?;
        if rows.is_empty() {
            return Err(not_found(domain_id, group, option));
        }
        Ok(to_config(&rows, option.is_some()))
    }

    /// Replaces a domain's configuration (`PUT`): the shown part, and whether the domain had
    /// none before (201 rather than 200).
    pub async fn create_domain_config(
        &self,
        domain_id: &str,
        config: &Map<String, Value>,
    ) -> ApiResult<(Value, bool)> {
        let had_one = !self.config_rows(domain_id, None, None).await?.is_empty();
        check_config(config)?;
        self.store
            .write_domain_config(domain_id, &to_rows(config), true)
            .await?;
        self.audit()
            .resource("created", "domain_config", domain_id)
            .await;
        let shown = self
            .store
            .domain_config_options(domain_id, None, None, false)
            .await?;
        Ok((to_config(&shown, false), !had_one))
    }

    /// Merges options into a domain's configuration (`PATCH`); with a group (and option) in the
    /// path, the body may hold only that group (option), which must exist already. Answers the
    /// whole shown configuration.
    pub async fn update_domain_config(
        &self,
        domain_id: &str,
        body: &Map<String, Value>,
        group: Option<&str>,
        option: Option<&str>,
    ) -> ApiResult<Value> {
        // `/config/{group}/{option}` takes `{option: value}`: seen as that one group.
        let config = match (group, option) {
            (Some(g), Some(_)) => {
                let mut m = Map::new();
                m.insert(g.to_string(), Value::Object(body.clone()));
                m
            }
            _ => body.clone(),
        };
        check_config(&config)?;
        check_group_and_option(group, option)?;
        if let Some(g) = group {
            self.check_update_target(domain_id, &config, g, option)
                .await?;
        }
        self.store
            .write_domain_config(domain_id, &to_rows(&config), false)
            .await?;
        self.audit()
            .resource("updated", "domain_config", domain_id)
            .await;
        self.domain_config(domain_id, None, None).await
    }

    /// Keystone's rules for an update naming a group (and option) in its path.
    async fn check_update_target(
        &self,
        domain_id: &str,
        config: &Map<String, Value>,
        group: &str,
        option: Option<&str>,
    ) -> ApiResult<()> {
        let group_options = config.get(group).and_then(Value::as_object);
        let options_given = config
            .values()
            .next()
            .and_then(Value::as_object)
            .map_or(0, Map::len);
        if config.len() != 1 || (option.is_some() && options_given != 1) {
            return Err(invalid(match option {
                Some(o) => format!("Trying to update option {o} in group {group}, so that, and only that, option must be specified  in the config"),
                None => format!("Trying to update group {group}, so that, and only that, group must be specified in the config"),
            }));
        }
        let Some(group_options) = group_options else {
            let other = config.keys().next().cloned().unwrap_or_default();
            return Err(invalid(format!(
                "request to update group {group}, but config provided contains group {other} instead"
            )));
        };
        if let Some(o) = option {
            if !group_options.contains_key(o) {
                let other = group_options.keys().next().cloned().unwrap_or_default();
                return Err(invalid(format!(
                    "Trying to update option {o} in group {group}, but config provided contains option {other} instead"
                )));
            }
        }
        if self
            .config_rows(domain_id, Some(group), option)
            .await?
            .is_empty()
        {
            return Err(not_found(domain_id, Some(group), option));
        }
        Ok(())
    }

    /// Deletes a domain's configuration, a group of it or one option; a group or option named
    /// must be set (a value Python counts as false is not).
    pub async fn delete_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> ApiResult<()> {
        check_group_and_option(group, option)?;
        if let Some(g) = group {
            let rows = self.config_rows(domain_id, Some(g), None).await?;
            if rows.is_empty() {
                return Err(not_found(domain_id, Some(g), None));
            }
            if let Some(o) = option {
                if !rows.iter().any(|r| r.option == o && !falsy(&r.value)) {
                    return Err(not_found(domain_id, Some(g), Some(o)));
                }
            }
        }
        self.store
            .delete_domain_config(domain_id, group, option)
            .await?;
        self.audit()
            .resource("deleted", "domain_config", domain_id)
            .await;
        Ok(())
    }

    /// `[security_compliance] password_regex` and `password_regex_description`, readable for the
    /// default domain only.
    pub fn security_compliance_config(
        &self,
        domain_id: &str,
        option: Option<&str>,
    ) -> ApiResult<Value> {
        if domain_id != self.config.identity.default_domain_id {
            // Keystone's reasons here end with their own full stop (hence two).
            return Err(invalid("Reading security compliance information for any domain other than the default domain is not allowed or supported."));
        }
        let sc = &self.config.security_compliance;
        let readable = [
            ("password_regex", sc.password_regex.clone()),
            (
                "password_regex_description",
                sc.password_regex_description.clone(),
            ),
        ];
        match option {
            Some(o) => match readable.iter().find(|(k, _)| *k == o) {
                Some((k, v)) => Ok(json!({ *k: v })),
                None => Err(invalid("Reading security compliance values other than password_regex and password_regex_description is not allowed.")),
            },
            None => {
                let group: Map<String, Value> = readable
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                Ok(json!({ "security_compliance": group }))
            }
        }
    }

    /// The values this process's configuration gives the options a domain may set: all of
    /// them, a group's, or one option's (sensitive ones have no default to show).
    pub fn default_domain_config(
        &self,
        group: Option<&str>,
        option: Option<&str>,
    ) -> ApiResult<Value> {
        check_group_and_option(group, option)?;
        let identity = [
            ("driver", json!("sql")),
            ("list_limit", json!(self.config.identity.list_limit)),
        ];
        let ldap = self.config.ldap.0.iter().map(|(k, v)| (*k, option_json(v)));
        let all: Vec<(&str, &str, Value)> = identity
            .into_iter()
            .map(|(k, v)| ("identity", k, v))
            .chain(ldap.map(|(k, v)| ("ldap", k, v)))
            .collect();
        if let (Some(g), Some(o)) = (group, option) {
            if !whitelisted(g, o) {
                return Err(invalid(format!(
                    "Reading the default for option {o} in group {g} is not supported"
                )));
            }
        }
        let rows: Vec<DomainConfigOption> = all
            .into_iter()
            .filter(|(g, o, _)| group.is_none_or(|w| w == *g) && option.is_none_or(|w| w == *o))
            .map(|(g, o, value)| DomainConfigOption {
                group: g.to_string(),
                option: o.to_string(),
                value,
                sensitive: false,
            })
            .collect();
        Ok(to_config(&rows, option.is_some()))
    }
}
