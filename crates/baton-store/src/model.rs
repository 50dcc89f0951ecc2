//! Rows of Keystone's tables as Baton uses them.

use chrono::NaiveDateTime;

/// A user (`user` joined with `local_user` or `nonlocal_user` for the name).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user's id (32 hex digits for users Baton creates).
    pub id: String,
    /// The login name, unique within the user's domain.
    pub name: String,
    /// The domain that owns the user.
    pub domain_id: String,
    /// A disabled user cannot authenticate, and its tokens stop validating.
    pub enabled: bool,
    /// The project a token is scoped to when the login asks for no scope.
    pub default_project_id: Option<String>,
    /// The `extra` JSON blob as stored.
    pub extra: Option<String>,
    /// When the user was created (`None` for rows Keystone wrote without it).
    pub created_at: Option<NaiveDateTime>,
}

/// The current password of a local user (the newest `password` row).
#[derive(Clone, PartialEq)]
pub struct PasswordRecord {
    /// The password hash as Keystone writes it (bcrypt, bcrypt_sha256, scrypt or pbkdf2_sha512).
    pub hash: String,
    /// When the password expires; after that the user must change it before logging in.
    pub expires_at: Option<NaiveDateTime>,
    /// The user set it themselves (`POST /v3/users/{id}/password`) rather than an admin.
    pub self_service: bool,
    /// When it was set (`None` for rows without Keystone's microsecond column).
    pub created_at: Option<NaiveDateTime>,
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
    /// The project's (or domain's) id.
    pub id: String,
    /// The name, unique among the projects of the domain.
    pub name: String,
    /// The owning domain; a domain row points at Keystone's root-of-domains row.
    pub domain_id: String,
    /// The parent project, or the domain for a top-level project; `None` for a domain.
    pub parent_id: Option<String>,
    /// A disabled project (or domain) cannot be a token's scope.
    pub enabled: bool,
    /// The row is a domain.
    pub is_domain: bool,
    /// Free text for operators.
    pub description: Option<String>,
    /// The `extra` JSON blob as stored: attributes a client set beyond the columns.
    pub extra: Option<String>,
}

/// A `role` row: global, or specific to one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's id.
    pub id: String,
    /// The role's name, which policies check (`admin`, `member`, `reader`, `service`, ...).
    pub name: String,
    /// `None` for a global role (stored as Keystone's `<<null>>`).
    pub domain_id: Option<String>,
    /// Free text for operators.
    pub description: Option<String>,
}

/// What an `assignment` row grants to whom: a user or a group, on a project or a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentType {
    /// A user's role on a project.
    UserProject,
    /// A group's role on a project, held by every member.
    GroupProject,
    /// A user's role on a domain.
    UserDomain,
    /// A group's role on a domain, held by every member.
    GroupDomain,
}

impl AssignmentType {
    /// The `type` column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentType::UserProject => "UserProject",
            AssignmentType::GroupProject => "GroupProject",
            AssignmentType::UserDomain => "UserDomain",
            AssignmentType::GroupDomain => "GroupDomain",
        }
    }

    /// Reads the `type` column's text; `None` for an unknown type.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "UserProject" => AssignmentType::UserProject,
            "GroupProject" => AssignmentType::GroupProject,
            "UserDomain" => AssignmentType::UserDomain,
            "GroupDomain" => AssignmentType::GroupDomain,
            _ => return None,
        })
    }

    /// The actor is a group.
    pub fn is_group(self) -> bool {
        matches!(
            self,
            AssignmentType::GroupProject | AssignmentType::GroupDomain
        )
    }

    /// The target is a domain.
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
    /// Who gets the role on what.
    pub kind: AssignmentType,
    /// The user or group holding the role.
    pub actor_id: String,
    /// The project or domain the role is held on.
    pub target_id: String,
    /// The role granted.
    pub role_id: String,
    /// The grant applies to the projects below the target rather than the target itself
    /// (OS-INHERIT).
    pub inherited: bool,
}

/// A row of `system_assignment` (`type` is `UserSystem` or `GroupSystem`, target `system`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SystemAssignment {
    /// The actor is a group rather than a user.
    pub is_group: bool,
    /// The user or group holding the role on the system.
    pub actor_id: String,
    /// The role granted.
    pub role_id: String,
    /// Stored as Keystone stores it; a system grant has nothing below it to inherit.
    pub inherited: bool,
}

/// A role as the API shows it: its columns, the `extra` JSON object (attributes a client set
/// beyond Keystone's schema) and its resource options (`role_option`: option id such as `IMMU`
/// and its JSON value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDetail {
    /// The role's columns.
    pub role: Role,
    /// The `extra` JSON blob as stored.
    pub extra: Option<String>,
    /// `(option id, JSON value)` pairs, such as `("IMMU", "true")` for an immutable role.
    pub options: Vec<(String, String)>,
}

/// Which `assignment` rows to list; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    /// Only grants of this role.
    pub role_id: Option<String>,
    /// Only grants to these users or groups.
    pub actor_ids: Option<Vec<String>>,
    /// Only grants on these projects or domains.
    pub target_ids: Option<Vec<String>>,
    /// Only these kinds of grant.
    pub kinds: Option<Vec<AssignmentType>>,
    /// Only inherited, or only direct, grants.
    pub inherited: Option<bool>,
}

impl AssignmentFilter {
    /// Whether `a` is a row [`crate::Store::list_assignments`] would return for this filter
    /// (for rows already in memory).
    pub fn matches(&self, a: &Assignment) -> bool {
        let within =
            |ids: &Option<Vec<String>>, id: &String| ids.as_ref().is_none_or(|v| v.contains(id));
        self.role_id.as_ref().is_none_or(|r| *r == a.role_id)
            && within(&self.actor_ids, &a.actor_id)
            && within(&self.target_ids, &a.target_id)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&a.kind))
            && self.inherited.is_none_or(|i| i == a.inherited)
    }
}

/// The name and owning domain of a user, group or project, for `include_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    /// The user's, group's or project's name.
    pub name: String,
    /// The domain that owns it.
    pub domain_id: String,
}

/// A project or domain's place in the tree, for expanding inherited assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectNode {
    /// The project's (or domain's) id.
    pub id: String,
    /// Its name, for `include_names`.
    pub name: String,
    /// The owning domain.
    pub domain_id: String,
    /// The parent project, or the domain for a top-level project.
    pub parent_id: Option<String>,
    /// The node is a domain.
    pub is_domain: bool,
}

/// A `service` row of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's id.
    pub id: String,
    /// The type clients look it up by (`compute`, `volumev3`, `identity`, ...).
    pub service_type: String,
    /// The service's name (`nova`, `cinderv3`, ...), read from `extra`.
    pub name: String,
    /// A disabled service is left out of token catalogs.
    pub enabled: bool,
    /// Free text for operators, read from `extra`.
    pub description: Option<String>,
    /// The `extra` JSON object as stored: Keystone keeps `name` and `description` here, with any
    /// other attribute a client set. Written back as is (`name`/`description` above are read
    /// from it).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An `endpoint` row: where one interface of a service answers in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint's id.
    pub id: String,
    /// The service it belongs to.
    pub service_id: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region it serves, if any.
    pub region_id: Option<String>,
    /// The URL clients call.
    pub url: String,
    /// A disabled endpoint is left out of token catalogs.
    pub enabled: bool,
    /// The `extra` JSON object: attributes a client set beyond the columns.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A `region` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// The region's id, which is also its name (`RegionOne`).
    pub id: String,
    /// Free text for operators.
    pub description: String,
    /// The region this one is a sub-region of.
    pub parent_region_id: Option<String>,
    /// The `extra` JSON object: attributes a client set beyond the columns.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A row of `revocation_event`. Every set field must match a token for it to be revoked, and the
/// token must have been issued at or before `issued_before`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RevocationEvent {
    /// The row's id; polling reads the events with higher ids.
    pub id: i64,
    /// Tokens of users of this domain, or scoped to it.
    pub domain_id: Option<String>,
    /// Tokens scoped to this project.
    pub project_id: Option<String>,
    /// Tokens of this user.
    pub user_id: Option<String>,
    /// Tokens holding this role.
    pub role_id: Option<String>,
    /// Tokens issued through this trust (Keystone's; Baton issues none).
    pub trust_id: Option<String>,
    /// Tokens of this OAuth1 consumer (Keystone's; Baton issues none).
    pub consumer_id: Option<String>,
    /// Tokens of this OAuth1 access token (Keystone's; Baton issues none).
    pub access_token_id: Option<String>,
    /// Only tokens issued at or before this instant are revoked.
    pub issued_before: NaiveDateTime,
    /// Only tokens expiring at this instant (Keystone's per-token revocation).
    pub expires_at: Option<NaiveDateTime>,
    /// When the event was recorded; events are pruned once no token they match can be valid.
    pub revoked_at: NaiveDateTime,
    /// The one token with this audit id (a logout).
    pub audit_id: Option<String>,
    /// Every token of the chain rescoped from the token with this audit id.
    pub audit_chain_id: Option<String>,
}

/// A `group` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's id.
    pub id: String,
    /// The name, unique within the group's domain.
    pub name: String,
    /// The domain that owns the group.
    pub domain_id: String,
    /// Free text for operators.
    pub description: Option<String>,
    /// The `extra` JSON blob as stored.
    pub extra: Option<String>,
}

/// Filters of a user listing; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only users of this domain.
    pub domain_id: Option<String>,
    /// Only the user of this name.
    pub name: Option<String>,
    /// Only enabled, or only disabled, users.
    pub enabled: Option<bool>,
}

/// The changes of a user update; `None` leaves a column alone.
#[derive(Clone, Default, PartialEq)]
pub struct UserUpdate {
    /// A new login name, unique within the user's domain.
    pub name: Option<String>,
    /// Enable or disable the user (enabling forgives failed logins).
    pub enabled: Option<bool>,
    /// A new default project; `Some(None)` clears it.
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
    /// The members at the time of the delete, whose tokens may need revoking.
    pub member_ids: Vec<String>,
    /// The group held role assignments, so its members' tokens lose roles.
    pub had_assignments: bool,
}
