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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub enabled: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
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
