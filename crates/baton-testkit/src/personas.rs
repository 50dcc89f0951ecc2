//! The personas Keystone's default policy tells apart, as tokens on a test server: one builder for
//! every policy test, laid out like the interop persona matrix (`tests/interop/
//! test_persona_matrix.py`) except that the project is in the default domain, so that the
//! domain personas' domain and the project personas' project have nothing to do with each other.
//!
//! * System: the bootstrap admin (system-scoped), and `sysmember` and `sysreader` in the default
//!   domain holding `member` and `reader` on the system.
//! * Domain: `dadmin`, `dmanager`, `dmember` and `dreader`, users of the domain
//!   [`PERSONA_DOMAIN`] holding `admin`, `manager`, `member` and `reader` on it, domain-scoped.
//! * Project: `padmin`, `pmanager`, `pmember` and `preader`, users of the default domain holding
//!   `admin`, `manager`, `member` and `reader` on the project [`PERSONA_PROJECT`] (in the default
//!   domain), project-scoped.
//!
//! Nothing else is made: no groups, no other domain or project. Keystone's defaults make `admin`
//! on any scope a cloud admin; its domain persona is `manager` on a domain.

use crate::{domain_scope, project_scope, system_scope, IdentityServer};

/// The password of every persona's user (the bootstrap admin keeps its own).
pub const PERSONA_PASSWORD: &str = "Pers0na-World-Pw-4418";
/// The name of the domain the domain personas belong to and hold their roles on.
pub const PERSONA_DOMAIN: &str = "pm-dx";
/// The name of the project (in the default domain) the project personas hold their roles on.
pub const PERSONA_PROJECT: &str = "pm-pd";

/// A token of each persona, and the user behind it.
#[derive(Debug, Clone)]
pub struct Personas {
    /// The domain named [`PERSONA_DOMAIN`].
    pub domain_id: String,
    /// The project named [`PERSONA_PROJECT`], in the default domain.
    pub project_id: String,

    /// The bootstrap admin, system-scoped.
    pub system_admin: String,
    /// A token of a user with `member` on the system.
    pub system_member: String,
    /// A token of a user with `reader` on the system.
    pub system_reader: String,
    /// A token of a user with `admin` on the persona domain, domain-scoped.
    pub domain_admin: String,
    /// A token of a user with `manager` on the persona domain, domain-scoped.
    pub domain_manager: String,
    /// A token of a user with `member` on the persona domain, domain-scoped.
    pub domain_member: String,
    /// A token of a user with `reader` on the persona domain, domain-scoped.
    pub domain_reader: String,
    /// A token of a user with `admin` on the persona project, project-scoped.
    pub project_admin: String,
    /// A token of a user with `manager` on the persona project, project-scoped.
    pub project_manager: String,
    /// A token of a user with `member` on the persona project, project-scoped.
    pub project_member: String,
    /// A token of a user with `reader` on the persona project, project-scoped.
    pub project_reader: String,

    /// The bootstrap admin.
    pub system_admin_id: String,
    /// The user behind `system_member`.
    pub system_member_id: String,
    /// The user behind `system_reader`.
    pub system_reader_id: String,
    /// The user behind `domain_admin`.
    pub domain_admin_id: String,
    /// The user behind `domain_manager`.
    pub domain_manager_id: String,
    /// The user behind `domain_member`.
    pub domain_member_id: String,
    /// The user behind `domain_reader`.
    pub domain_reader_id: String,
    /// The user behind `project_admin`.
    pub project_admin_id: String,
    /// The user behind `project_manager`.
    pub project_manager_id: String,
    /// The user behind `project_member`.
    pub project_member_id: String,
    /// The user behind `project_reader`.
    pub project_reader_id: String,
}

impl Personas {
    /// Makes the domain, the project and the persona users on `s` (directly in its store) and
    /// logs each persona in over HTTP.
    pub async fn build(s: &IdentityServer) -> Personas {
        let default = s.default_domain_id.clone();
        let domain_id = s.create_domain(PERSONA_DOMAIN).await;
        let project_id = s.create_project(PERSONA_PROJECT, &default).await;
        let system = On::System;
        let domain = On::Domain(&domain_id);
        let project = On::Project(&project_id);

        let (system_member, system_member_id) = persona(s, "sysmember", "member", system).await;
        let (system_reader, system_reader_id) = persona(s, "sysreader", "reader", system).await;
        let (domain_admin, domain_admin_id) = persona(s, "dadmin", "admin", domain).await;
        let (domain_manager, domain_manager_id) = persona(s, "dmanager", "manager", domain).await;
        let (domain_member, domain_member_id) = persona(s, "dmember", "member", domain).await;
        let (domain_reader, domain_reader_id) = persona(s, "dreader", "reader", domain).await;
        let (project_admin, project_admin_id) = persona(s, "padmin", "admin", project).await;
        let (project_manager, project_manager_id) =
            persona(s, "pmanager", "manager", project).await;
        let (project_member, project_member_id) = persona(s, "pmember", "member", project).await;
        let (project_reader, project_reader_id) = persona(s, "preader", "reader", project).await;
        Personas {
            domain_id,
            project_id,
            system_admin: s.system_admin_token().await,
            system_member,
            system_reader,
            domain_admin,
            domain_manager,
            domain_member,
            domain_reader,
            project_admin,
            project_manager,
            project_member,
            project_reader,
            system_admin_id: s.admin_user_id.clone(),
            system_member_id,
            system_reader_id,
            domain_admin_id,
            domain_manager_id,
            domain_member_id,
            domain_reader_id,
            project_admin_id,
            project_manager_id,
            project_member_id,
            project_reader_id,
        }
    }
}

/// Where a persona holds its role.
#[derive(Clone, Copy)]
enum On<'a> {
    System,
    Domain(&'a str),
    Project(&'a str),
}

/// A user `name` holding `role` on `on`, and its token scoped there: the user belongs to the
/// domain it holds a role on, else to the default domain.
async fn persona(s: &IdentityServer, name: &str, role: &str, on: On<'_>) -> (String, String) {
    let pw = PERSONA_PASSWORD;
    let user_domain = match on {
        On::Domain(d) => d.to_string(),
        On::System | On::Project(_) => s.default_domain_id.clone(),
    };
    let id = s.create_user(name, pw, &user_domain).await;
    let scope = match on {
        On::System => {
            s.grant_system(&id, role).await;
            system_scope()
        }
        On::Domain(d) => {
            s.grant_domain(&id, d, role).await;
            domain_scope(d)
        }
        On::Project(p) => {
            s.grant_project(&id, p, role).await;
            project_scope(p)
        }
    };
    (s.token_in(name, &user_domain, pw, scope).await, id)
}
