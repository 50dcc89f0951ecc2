//! The rules of the identity model, with no HTTP in them: the project tree and where a user's
//! role assignments take effect. Token scoping, `/v3/auth/projects|domains`,
//! `/v3/users/{id}/projects` and the role-assignment listing ask these functions rather than
//! restating the rules (see `docs/architecture.md`, "where is X").

pub mod roles;
pub mod tree;

pub use roles::{grants_on_domain, grants_on_project, EffectiveTargets};
pub use tree::ProjectTree;
