//! Authorization as Keystone does it: oslo.policy check strings over the caller's credentials
//! and a flattened target, with Keystone 30's registered defaults (`defaults.rs`) overlaid by an
//! operator's `policy.yaml`.
//!
//! Baton reimplements oslo.policy rather than hard-coding decisions so that an operator's
//! existing policy file means the same thing to Baton as to Keystone. What oslo.policy 6 does
//! and Baton mirrors: scope types are always enforced for the rule named by the action (an
//! unscoped token counts as project-scoped); `rule:x` for an undefined `x` falls back to a
//! `default` rule when a file defines one, else is false; a missing target key makes a check
//! false. Where oslo would log and deny (an unparsable check string) Baton refuses to load
//! instead, and an action with no rule is denied (Keystone refuses unregistered actions before
//! oslo sees them).
//!
//! # Credentials
//!
//! [`Credentials`] holds what Keystone's request context gives oslo
//! (`RequestContext.to_policy_values()` plus the rendered token): `user_id`,
//! `user_domain_id`, `project_id`, `project_domain_id`, `domain_id` (domain-scoped token),
//! `system_scope` (`all`), `system` (only when system-scoped), `roles` (names),
//! `is_admin_project`, the `service_*` keys (always `None`/empty: no service token reaches the
//! identity API's policy), and `token.user.id`, `token.user.name`, `token.user.domain.id`,
//! `token.user.domain.name`, `token.project.{id,name,domain.id,domain.name}`,
//! `token.domain.{id,name}`, `token.system.all`, `token.roles.{id,name}`. The plain keys exist
//! with value `None` when unset (so `domain_id:None` matches a token without domain scope);
//! `token.*` keys are absent when that part of the token is. Any other key (including
//! `is_admin`, which Keystone's `admin_required` mentions) is absent, so its check is false.
//!
//! # Targets
//!
//! [`Target`] keys are Keystone's `enforce_call` dict flattened with dots. The default rules
//! read these (Keystone 30's `keystone/api/*.py` decides what each API puts there):
//!
//! | actions | target keys read | filled with |
//! |---|---|---|
//! | `get_user` | `target.user.id`, `target.user.domain_id` | the stored user |
//! | `update_user`, `delete_user` | `target.user.domain_id` | the stored user |
//! | `create_user` | `target.user.domain_id` | the request body's user (absent if the body has no `domain_id`) |
//! | `list_users`, `list_projects`, `list_role_assignments` | `target.domain_id` | the caller's `domain_id`, set only for a domain-scoped token (not the `?domain_id=` filter) |
//! | `list_user_projects` | `target.user.id`, `target.user.domain_id` | the user of the path |
//! | `list_groups_for_user` | `target.user.domain_id`, and `user_id` | the user of the path; `user_id` is the path parameter (URL parameters sit at the top level, unprefixed) |
//! | `get_group`, `update_group`, `delete_group`, `list_users_in_group` | `target.group.domain_id` | the stored group |
//! | `create_group` | `target.group.domain_id` | the request body's group |
//! | `list_groups` | `target.group.domain_id` | the caller's `domain_id`, domain-scoped token only |
//! | `check_user_in_group`, `add_user_to_group`, `remove_user_from_group` | `target.group.domain_id`, `target.user.domain_id` | the stored group and user |
//! | `get_project`, `list_project_tags`, `get_project_tag` | `target.project.id`, `target.project.domain_id` | the stored project |
//! | `update_project`, `delete_project`, `create_project_tag`, `update_project_tags`, `delete_project_tag(s)` | `target.project.domain_id` | the stored project |
//! | `create_project` | `target.project.domain_id` | the request body's project (absent if the body has no `domain_id`) |
//! | `list_role_assignments_for_tree` | `target.domain_id` | the domain of the `?scope.project.id` project (with `target.project.*` = that project) |
//! | `get_domain` | `target.domain.id` | the stored domain |
//! | `list_domains` | `target.domain.id` | the caller's `domain_id`, domain-scoped token only |
//! | `get_role` | `target.role.name` | the stored role |
//! | `check_grant`, `create_grant`, `revoke_grant` | `target.role.domain_id`, `target.role.name`, `target.user.domain_id` or `target.group.domain_id`, `target.project.domain_id` or `target.domain.id` | the role, actor and project/domain of the path |
//! | `list_grants` | as the grants above, without the role | |
//! | `validate_token`, `check_token`, `revoke_token` | `target.token.user_id` (also filled: `target.token.user.domain.id`) | the subject token |
//!
//! Rules of `update_domain`, `delete_domain`, domain roles, implied roles, system grants,
//! services, endpoints and regions read no target key (Keystone still fills `target.domain`,
//! `target.role`, `target.prior_role`/`target.implied_role`, `target.user`/`target.group`).
//! A value Keystone has as `None` (a global role's `domain_id`, a domain's own project's
//! `domain_id`) must be set as `None` with [`Target::with_opt`]: the grant rules test
//! `None:%(target.role.domain_id)s`. Query filters live under `filter_attr.<name>` and request
//! bodies under `request_body.*`; no default rule reads them. `identity:change_password` does
//! not exist: Keystone 30 does not enforce policy on `POST /v3/users/{id}/password` (the
//! original password is the check).

mod defaults;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use baton_types::TokenBody;
use rules::{Rule, Scopes};

use crate::error::{ApiError, ApiResult};
use crate::tokens::ValidatedToken;

/// The policy file could not be used; the message is one line naming the file (and the rule).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("{}: cannot read policy file: {reason}", path.display())]
    Read {
        /// `[oslo_policy] policy_file`, resolved.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// The file is not a YAML or JSON mapping of rule names to check strings.
    #[error("{}: {reason}", path.display())]
    Format {
        /// `[oslo_policy] policy_file`, resolved.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// One rule cannot be used: its check string does not parse, is not a string, or its
    /// `rule:` references loop back to it.
    #[error("{}: rule {rule:?}: {reason}", path.display())]
    Rule {
        /// `[oslo_policy] policy_file`, resolved.
        path: PathBuf,
        /// The rule's name (`identity:get_user`, ...).
        rule: String,
        /// What is wrong with its check string.
        reason: String,
    },
}

/// Parsed rules, linked so that evaluation is a walk over the tree.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    by_name: HashMap<Box<str>, usize>,
}

impl Policy {
    /// Keystone 30's defaults. Parses them: build once and keep it.
    pub fn keystone_defaults() -> Policy {
        Policy::build(&[], None).expect("Keystone's default rules parse and link")
    }

    /// The defaults overlaid with the rules of the file at `path` (YAML, or JSON). A missing
    /// file is an error only when `explicitly_configured`.
    pub fn load(path: &Path, explicitly_configured: bool) -> Result<Policy, PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicitly_configured => {
                tracing::debug!(path = %path.display(), "no policy file: Keystone's default rules apply");
                return Ok(Policy::keystone_defaults());
            }
            Err(err) => {
                return Err(PolicyError::Read {
                    path: path.to_owned(),
                    reason: err.to_string(),
                })
            }
        };
        let overrides = parse_file(path, &text)?;
        let policy = Policy::build(&overrides, Some(path))?;
        tracing::info!(path = %path.display(), rules = overrides.len(), "policy file loaded");
        Ok(policy)
    }

    /// Ok(()) or Err(ApiError::Forbidden(action)).
    pub fn enforce(&self, action: &str, creds: &Credentials, target: &Target) -> ApiResult<()> {
        if self.allows(action, creds, target) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(action.to_string()))
        }
    }

    /// Whether `action` is allowed: its rule's scope types admit the token's scope and its
    /// check string holds. An action without a rule is denied.
    pub fn allows(&self, action: &str, creds: &Credentials, target: &Target) -> bool {
        let Some(&index) = self.by_name.get(action) else {
            tracing::warn!(action, "no policy rule for this action: denied");
            return false;
        };
        let rule = &self.rules[index];
        rule.scopes.admits(creds.scope()) && rule.expr.eval(&self.rules, creds, target)
    }

    /// The check string in force for `name`, as written.
    pub fn check_str(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(|&i| &*self.rules[i].check)
    }

    /// Defaults, then `overrides` (from the file at `path`), then `rule:` links and a cycle
    /// check.
    fn build(overrides: &[(String, String)], path: Option<&Path>) -> Result<Policy, PolicyError> {
        let rule_error = |rule: &str, reason: String| PolicyError::Rule {
            path: path.unwrap_or(Path::new("<defaults>")).to_owned(),
            rule: rule.to_owned(),
            reason,
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(
            defaults::KEYSTONE_DEFAULTS.len() + defaults::BATON_DEFAULTS.len() + overrides.len(),
        );
        let mut by_name: HashMap<Box<str>, usize> = HashMap::with_capacity(rules.capacity());
        let defaults = defaults::KEYSTONE_DEFAULTS
            .iter()
            .chain(defaults::BATON_DEFAULTS)
            .map(|(name, scopes, check)| (*name, *check, *scopes));
        let from_file = overrides
            .iter()
            .map(|(name, check)| (name.as_str(), check.as_str(), Scopes::ANY));
        for (name, check, scopes) in defaults.chain(from_file) {
            let expr = rules::parse(check).map_err(|reason| rule_error(name, reason))?;
            let mut unsupported = Vec::new();
            expr.unsupported(&mut unsupported);
            for source in unsupported {
                tracing::warn!(rule = name, check = %source, "policy check kind not supported: evaluates to false");
            }
            match by_name.get(name) {
                // A file keeps the registered scope types of the rule it overrides.
                Some(&i) => {
                    rules[i] = Rule {
                        name: name.into(),
                        check: check.into(),
                        scopes: rules[i].scopes,
                        expr,
                    };
                }
                None => {
                    by_name.insert(name.into(), rules.len());
                    rules.push(Rule {
                        name: name.into(),
                        check: check.into(),
                        scopes,
                        expr,
                    });
                }
            }
        }

        let fallback = by_name.get("default").copied();
        for rule in &mut rules {
            rule.expr.rule_refs_mut(&mut |name, index| {
                *index = by_name.get(name).copied().or(fallback);
            });
        }
        if let Some((rule, reason)) = check_references(&rules) {
            return Err(rule_error(&rule, reason));
        }
        Ok(Policy { rules, by_name })
    }
}

/// The `policy_file` fuzz target's body (see `api::fuzzing`): a policy file's text is parsed,
/// overlaid on the defaults and linked, and every rule it names is evaluated for a
/// project-scoped member, never panicking.
#[doc(hidden)]
pub fn fuzz_policy_file(text: &str) {
    let Ok(overrides) = parse_file(Path::new("fuzz.yaml"), text) else {
        return;
    };
    let Ok(policy) = Policy::build(&overrides, Some(Path::new("fuzz.yaml"))) else {
        return;
    };
    let body: Result<TokenBody, _> = serde_json::from_value(serde_json::json!({
        "methods": ["password"],
        "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"},
                 "password_expires_at": null},
        "audit_ids": ["AAAAAAAAAAAAAAAAAAAAAA"],
        "expires_at": "2030-01-01T00:00:00.000000Z",
        "issued_at": "2029-12-31T23:00:00.000000Z",
        "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
        "is_domain": false,
        "roles": [{"id": "r1", "name": "member"}]
    }));
    let body = body.expect("a fixed, valid token body");
    let creds = Credentials::from_body(&body);
    let target = Target::new()
        .with("target.project.id", "p1")
        .with("user_id", "u1");
    for (name, _) in &overrides {
        let _ = policy.allows(name, &creds, &target);
    }
}

/// How deep `rule:` references may chain. oslo.policy has no bound but Python's recursion limit;
/// real policy files chain a few rules (Keystone's defaults at most 3), and with
/// [`rules::MAX_NESTING`] inside each rule this keeps evaluation well within a thread's stack.
pub(super) const MAX_RULE_DEPTH: usize = 32;

/// A rule that reaches itself through `rule:` references (oslo would recurse until Python's
/// limit), or a chain of references deeper than [`MAX_RULE_DEPTH`]: the rule and why. The walk
/// keeps its own stack, so a hostile file with a chain of thousands of rules is refused rather
/// than overflowing the thread's stack.
fn check_references(rules: &[Rule]) -> Option<(String, String)> {
    // 0 = unvisited, 1 = on the current path, 2 = done (its depth known).
    let mut state = vec![0u8; rules.len()];
    let mut depth = vec![0usize; rules.len()];
    let children = |i: usize| {
        let mut next = Vec::new();
        rules[i].expr.rule_indices(&mut next);
        next
    };
    for root in 0..rules.len() {
        if state[root] != 0 {
            continue;
        }
        state[root] = 1;
        // (rule, the rules it references, how many of those were looked at)
        let mut stack = vec![(root, children(root), 0usize)];
        while let Some(top) = stack.last_mut() {
            let next = top.1.get(top.2).copied();
            top.2 += 1;
            match next {
                Some(j) if state[j] == 1 => {
                    let start = stack.iter().position(|f| f.0 == j).unwrap_or(0);
                    let mut names: Vec<&str> =
                        stack[start..].iter().map(|f| &*rules[f.0].name).collect();
                    names.push(&rules[j].name);
                    let reason = format!("rule references loop back to it: {}", names.join(" -> "));
                    return Some((names[0].to_owned(), reason));
                }
                Some(j) if state[j] == 0 => {
                    state[j] = 1;
                    stack.push((j, children(j), 0));
                }
                Some(_) => {}
                None => {
                    let (i, refs, _) = stack.pop()?;
                    depth[i] = 1 + refs.iter().map(|&k| depth[k]).max().unwrap_or(0);
                    state[i] = 2;
                    if depth[i] > MAX_RULE_DEPTH {
                        let reason =
                            format!("rule references chain more than {MAX_RULE_DEPTH} rules deep");
                        return Some((rules[i].name.to_string(), reason));
                    }
                }
            }
        }
    }
    None
}

/// oslo.policy's `parse_file_contents`: JSON first, then YAML; empty means no rules; the
/// document must map rule names to check strings.
fn parse_file(path: &Path, text: &str) -> Result<Vec<(String, String)>, PolicyError> {
    let format_error = |reason: String| PolicyError::Format {
        path: path.to_owned(),
        reason: reason.replace('\n', " "),
    };
    let rule_error = |rule: &str, reason: &str| PolicyError::Rule {
        path: path.to_owned(),
        rule: rule.to_owned(),
        reason: reason.to_owned(),
    };
    const NOT_A_MAPPING: &str = "expected a mapping of rule names to check strings";
    const NOT_A_STRING: &str =
        "the check string must be a string (oslo reads a null as \"allow everyone\": write \"\" for that)";

    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        return match json {
            serde_json::Value::Null => Ok(Vec::new()),
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(name, check)| match check {
                    serde_json::Value::String(check) => Ok((name, check)),
                    _ => Err(rule_error(&name, NOT_A_STRING)),
                })
                .collect(),
            _ => Err(format_error(NOT_A_MAPPING.to_owned())),
        };
    }

    use saphyr::{LoadableYamlNode, Scalar, Yaml};
    let documents =
        Yaml::load_from_str(text).map_err(|e| format_error(format!("not valid YAML: {e}")))?;
    let document = match documents.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => one,
        _ => return Err(format_error("more than one YAML document".to_owned())),
    };
    let text_of = |node: &Yaml| match node {
        Yaml::Value(Scalar::String(s)) => Some(s.to_string()),
        _ => None,
    };
    match document {
        Yaml::Value(Scalar::Null) => Ok(Vec::new()),
        Yaml::Mapping(map) => map
            .iter()
            .map(|(name, check)| {
                let name = text_of(name).ok_or_else(|| {
                    format_error(format!("{NOT_A_MAPPING}: a rule name is not a string"))
                })?;
                let check = text_of(check).ok_or_else(|| rule_error(&name, NOT_A_STRING))?;
                Ok((name, check))
            })
            .collect(),
        _ => Err(format_error(NOT_A_MAPPING.to_owned())),
    }
}

/// A credential key of a check's left side, resolved when the rule is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredKey {
    UserId,
    UserDomainId,
    SystemScope,
    System,
    DomainId,
    ProjectId,
    ProjectDomainId,
    Roles,
    IsAdminProject,
    /// `service_user_id` and the other `service_*` identifiers.
    ServiceId,
    ServiceRoles,
    TokenUserId,
    TokenUserName,
    TokenUserDomainId,
    TokenUserDomainName,
    TokenProjectId,
    TokenProjectName,
    TokenProjectDomainId,
    TokenProjectDomainName,
    TokenDomainId,
    TokenDomainName,
    TokenSystemAll,
    TokenRoleIds,
    TokenRoleNames,
    /// Not in Keystone's credentials: the check is false.
    Absent,
}

impl CredKey {
    pub(crate) fn parse(key: &str) -> CredKey {
        match key {
            "user_id" => CredKey::UserId,
            "user_domain_id" => CredKey::UserDomainId,
            "system_scope" => CredKey::SystemScope,
            "system" => CredKey::System,
            "domain_id" => CredKey::DomainId,
            "project_id" => CredKey::ProjectId,
            "project_domain_id" => CredKey::ProjectDomainId,
            "roles" => CredKey::Roles,
            "is_admin_project" => CredKey::IsAdminProject,
            "service_user_id"
            | "service_user_domain_id"
            | "service_project_id"
            | "service_project_domain_id" => CredKey::ServiceId,
            "service_roles" => CredKey::ServiceRoles,
            "token.user.id" => CredKey::TokenUserId,
            "token.user.name" => CredKey::TokenUserName,
            "token.user.domain.id" => CredKey::TokenUserDomainId,
            "token.user.domain.name" => CredKey::TokenUserDomainName,
            "token.project.id" => CredKey::TokenProjectId,
            "token.project.name" => CredKey::TokenProjectName,
            "token.project.domain.id" => CredKey::TokenProjectDomainId,
            "token.project.domain.name" => CredKey::TokenProjectDomainName,
            "token.domain.id" => CredKey::TokenDomainId,
            "token.domain.name" => CredKey::TokenDomainName,
            "token.system.all" => CredKey::TokenSystemAll,
            "token.roles.id" => CredKey::TokenRoleIds,
            "token.roles.name" => CredKey::TokenRoleNames,
            _ => CredKey::Absent,
        }
    }
}

/// A credential value as oslo's `GenericCheck` compares it: `str(value) == match`, any element
/// of a list, and a missing key never matches.
enum CredValue<'c> {
    Absent,
    None,
    Str(&'c str),
    Bool(bool),
    List(&'c [&'c str]),
}

impl CredValue<'_> {
    fn matches(&self, wanted: &str) -> bool {
        match self {
            CredValue::Absent => false,
            CredValue::None => wanted == "None",
            CredValue::Str(s) => *s == wanted,
            CredValue::Bool(b) => wanted == if *b { "True" } else { "False" },
            CredValue::List(items) => items.contains(&wanted),
        }
    }
}

/// The caller, as oslo.policy sees Keystone's request context. Borrows from the token.
#[derive(Debug, Clone, Default)]
pub struct Credentials<'a> {
    /// The caller's user id.
    pub user_id: Option<&'a str>,
    /// The caller's user name.
    pub user_name: Option<&'a str>,
    /// The domain that owns the caller's user.
    pub user_domain_id: Option<&'a str>,
    /// That domain's name.
    pub user_domain_name: Option<&'a str>,
    /// The project of a project-scoped token.
    pub project_id: Option<&'a str>,
    /// That project's name.
    pub project_name: Option<&'a str>,
    /// The domain that owns that project.
    pub project_domain_id: Option<&'a str>,
    /// That domain's name.
    pub project_domain_name: Option<&'a str>,
    /// Set for a domain-scoped token only.
    pub domain_id: Option<&'a str>,
    /// The name of a domain-scoped token's domain.
    pub domain_name: Option<&'a str>,
    /// `Some("all")` for a system-scoped token.
    pub system_scope: Option<&'a str>,
    /// Role names (effective roles, implied ones included, as in the token).
    pub roles: Vec<&'a str>,
    /// Role ids of the same roles.
    pub role_ids: Vec<&'a str>,
    /// The token is scoped to `[resource] admin_project_name` (the cloud's admin project).
    pub is_admin_project: bool,
}

impl<'a> Credentials<'a> {
    /// The credentials of a validated token (the caller's, or a subject's).
    pub fn from_token(t: &'a ValidatedToken) -> Credentials<'a> {
        Credentials::from_body(&t.body)
    }

    /// The credentials of a token body.
    pub fn from_body(body: &'a TokenBody) -> Credentials<'a> {
        let project = body.project.as_ref();
        let domain = body.domain.as_ref();
        Credentials {
            user_id: Some(&body.user.id),
            user_name: Some(&body.user.name),
            user_domain_id: Some(&body.user.domain.id),
            user_domain_name: Some(&body.user.domain.name),
            project_id: project.map(|p| p.id.as_str()),
            project_name: project.map(|p| p.name.as_str()),
            project_domain_id: project.map(|p| p.domain.id.as_str()),
            project_domain_name: project.map(|p| p.domain.name.as_str()),
            domain_id: domain.map(|d| d.id.as_str()),
            domain_name: domain.map(|d| d.name.as_str()),
            system_scope: body.is_system_scoped().then_some("all"),
            roles: body.role_names().collect(),
            role_ids: body.roles.iter().flatten().map(|r| r.id.as_str()).collect(),
            // keystonemiddleware's default when the token says nothing; Keystone forces
            // False for domain scope.
            is_admin_project: domain.is_none() && body.is_admin_project.unwrap_or(true),
        }
    }

    /// The token's scope as oslo decides it for scope types.
    fn scope(&self) -> Scopes {
        if self.system_scope.is_some_and(|s| !s.is_empty()) {
            Scopes::SYSTEM
        } else if self.domain_id.is_some_and(|d| !d.is_empty()) {
            Scopes::DOMAIN
        } else {
            Scopes::PROJECT
        }
    }

    fn value(&self, key: CredKey) -> CredValue<'_> {
        let plain = |v: Option<&'a str>| v.map_or(CredValue::None, CredValue::Str);
        // `token.*` paths exist only for the parts the token has.
        let token_part = |present: bool, v: Option<&'a str>| match v {
            Some(v) if present => CredValue::Str(v),
            _ => CredValue::Absent,
        };
        let has_project = self.project_id.is_some();
        let has_domain = self.domain_id.is_some();
        let has_user = self.user_id.is_some();
        match key {
            CredKey::UserId => plain(self.user_id),
            CredKey::UserDomainId => plain(self.user_domain_id),
            CredKey::SystemScope => plain(self.system_scope),
            CredKey::System => self.system_scope.map_or(CredValue::Absent, CredValue::Str),
            CredKey::DomainId => plain(self.domain_id),
            CredKey::ProjectId => plain(self.project_id),
            CredKey::ProjectDomainId => plain(self.project_domain_id),
            CredKey::Roles => CredValue::List(&self.roles),
            CredKey::IsAdminProject => CredValue::Bool(self.is_admin_project),
            CredKey::ServiceId => CredValue::None,
            CredKey::ServiceRoles => CredValue::List(&[]),
            CredKey::TokenUserId => token_part(has_user, self.user_id),
            CredKey::TokenUserName => token_part(has_user, self.user_name),
            CredKey::TokenUserDomainId => token_part(has_user, self.user_domain_id),
            CredKey::TokenUserDomainName => token_part(has_user, self.user_domain_name),
            CredKey::TokenProjectId => token_part(has_project, self.project_id),
            CredKey::TokenProjectName => token_part(has_project, self.project_name),
            CredKey::TokenProjectDomainId => token_part(has_project, self.project_domain_id),
            CredKey::TokenProjectDomainName => token_part(has_project, self.project_domain_name),
            CredKey::TokenDomainId => token_part(has_domain, self.domain_id),
            CredKey::TokenDomainName => token_part(has_domain, self.domain_name),
            CredKey::TokenSystemAll if self.system_scope.is_some() => CredValue::Bool(true),
            CredKey::TokenSystemAll | CredKey::Absent => CredValue::Absent,
            CredKey::TokenRoleIds => CredValue::List(&self.role_ids),
            CredKey::TokenRoleNames => CredValue::List(&self.roles),
        }
    }
}

/// Flat keys as Keystone's enforcer flattens the target dict, e.g. `target.user.domain_id`.
/// See the module documentation for the keys each rule reads.
#[derive(Debug, Clone, Default)]
pub struct Target {
    entries: Vec<(Box<str>, String)>,
}

impl Target {
    /// An empty target (rules that read no `target.*` key).
    pub fn new() -> Self {
        Target::default()
    }

    /// The target with `key` set, e.g. `target.project.domain_id`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// `None` becomes Python's `str(None)`, `"None"`, which is what the rules compare with.
    pub fn with_opt(mut self, key: &str, value: Option<impl Into<String>>) -> Self {
        self.set_opt(key, value);
        self
    }

    /// Sets `key`, replacing any value it had.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| **k == *key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.into(), value)),
        }
    }

    /// Sets `key`, `None` as Python's `"None"`.
    pub fn set_opt(&mut self, key: &str, value: Option<impl Into<String>>) {
        match value {
            Some(value) => self.set(key, value),
            None => self.set(key, "None"),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| v.as_str())
    }
}

// ----- the token API ------------------------------------------------------------------------

/// The token API's decision: Keystone puts the subject token's user under `target.token`.
pub fn enforce_on_subject(
    policy: &Policy,
    action: &str,
    caller: &TokenBody,
    subject: &TokenBody,
) -> ApiResult<()> {
    let target = Target::new()
        .with("target.token.user_id", subject.user.id.as_str())
        .with(
            "target.token.user.domain.id",
            subject.user.domain.id.as_str(),
        );
    policy.enforce(action, &Credentials::from_body(caller), &target)
}
