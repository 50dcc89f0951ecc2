//! Rows of Keystone's tables as Baton uses them.

use chrono::NaiveDateTime;

/// A user (`user` joined with `local_user` or `nonlocal_user` for the name).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    /// The `extra` JSON blob as stored.
    pub extra: Option<String>,
    pub created_at: Option<NaiveDateTime>,
}

/// The current password of a local user (the newest `password` row).
#[derive(Clone, PartialEq)]
pub struct PasswordRecord {
    pub hash: String,
    pub expires_at: Option<NaiveDateTime>,
    pub self_service: bool,
}

impl std::fmt::Debug for PasswordRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is secret material too: offline cracking needs only it.
        f.debug_struct("PasswordRecord")
            .field("hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A `project` row; domains are projects with `is_domain` set.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub enabled: bool,
    pub is_domain: bool,
    pub description: Option<String>,
    pub extra: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for a global role (stored as Keystone's `<<null>>`).
    pub domain_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentType {
    UserProject,
    GroupProject,
    UserDomain,
    GroupDomain,
}

impl AssignmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentType::UserProject => "UserProject",
            AssignmentType::GroupProject => "GroupProject",
            AssignmentType::UserDomain => "UserDomain",
            AssignmentType::GroupDomain => "GroupDomain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "UserProject" => AssignmentType::UserProject,
            "GroupProject" => AssignmentType::GroupProject,
            "UserDomain" => AssignmentType::UserDomain,
            "GroupDomain" => AssignmentType::GroupDomain,
            _ => return None,
        })
    }

    pub fn is_group(self) -> bool {
        matches!(
            self,
            AssignmentType::GroupProject | AssignmentType::GroupDomain
        )
    }

    pub fn is_domain(self) -> bool {
        matches!(
            self,
            AssignmentType::UserDomain | AssignmentType::GroupDomain
        )
    }
}

/// A row of `assignment`: a role for a user or group on a project or domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub kind: AssignmentType,
    pub actor_id: String,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

/// A row of `system_assignment` (`type` is `UserSystem` or `GroupSystem`, target `system`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemAssignment {
    pub is_group: bool,
    pub actor_id: String,
    pub role_id: String,
    pub inherited: bool,
}

/// A role as the API shows it: its columns, the `extra` JSON object (attributes a client set
/// beyond Keystone's schema) and its resource options (`role_option`: option id such as `IMMU`
/// and its JSON value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDetail {
    pub role: Role,
    pub extra: Option<String>,
    pub options: Vec<(String, String)>,
}

/// Which `assignment` rows to list; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    pub role_id: Option<String>,
    pub actor_ids: Option<Vec<String>>,
    pub target_ids: Option<Vec<String>>,
    pub kinds: Option<Vec<AssignmentType>>,
    pub inherited: Option<bool>,
}

/// The name and owning domain of a user, group or project, for `include_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    pub name: String,
    pub domain_id: String,
}

/// A project or domain's place in the tree, for expanding inherited assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectNode {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub is_domain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub enabled: bool,
    pub description: Option<String>,
    /// The `extra` JSON object as stored: Keystone keeps `name` and `description` here, with any
    /// other attribute a client set. Written back as is (`name`/`description` above are read
    /// from it).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: bool,
    /// The `extra` JSON object: attributes a client set beyond the columns.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    /// The `extra` JSON object: attributes a client set beyond the columns.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A row of `revocation_event`. Every set field must match a token for it to be revoked, and the
/// token must have been issued at or before `issued_before`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RevocationEvent {
    pub id: i64,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub role_id: Option<String>,
    pub trust_id: Option<String>,
    pub consumer_id: Option<String>,
    pub access_token_id: Option<String>,
    pub issued_before: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: NaiveDateTime,
    pub audit_id: Option<String>,
    pub audit_chain_id: Option<String>,
}

/// A `group` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: Option<String>,
    /// The `extra` JSON blob as stored.
    pub extra: Option<String>,
}

/// Filters of a user listing; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

/// The changes of a user update; `None` leaves a column alone.
#[derive(Clone, Default, PartialEq)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub default_project_id: Option<Option<String>>,
    /// The whole new `extra` JSON blob.
    pub extra: Option<String>,
    /// `(option_id, JSON value)`; a `None` value removes the option (Keystone's `null`).
    pub options: Vec<(String, Option<String>)>,
    /// A new current password: `Some(None)` stores a password row without a hash, as Keystone
    /// does for `"password": null`.
    pub password_hash: Option<Option<String>>,
}

impl std::fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdate")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("default_project_id", &self.default_project_id)
            .field("options", &self.options)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What deleting a group touched: Keystone revokes the members' tokens only when the group
/// held role assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedGroup {
    pub member_ids: Vec<String>,
    pub had_assignments: bool,
}
