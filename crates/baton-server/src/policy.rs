//! Keystone's default policy rules for the token API.
//!
//! `identity:validate_token` = admin, or reader on the system, or the `service` role, or the
//! token's own user; `identity:check_token` is the same without `service`;
//! `identity:revoke_token` = admin or the token's own user.

use crate::error::{ApiError, ApiResult};
use crate::tokens::ValidatedToken;

fn admin_required(caller: &ValidatedToken) -> bool {
    caller.has_role("admin")
}

fn system_reader(caller: &ValidatedToken) -> bool {
    caller.body.is_system_scoped() && caller.has_role("reader")
}

fn token_subject(caller: &ValidatedToken, subject: &ValidatedToken) -> bool {
    caller.user_id() == subject.user_id()
}

pub fn validate_token(caller: &ValidatedToken, subject: &ValidatedToken) -> ApiResult<()> {
    if admin_required(caller)
        || system_reader(caller)
        || caller.has_role("service")
        || token_subject(caller, subject)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden("identity:validate_token".into()))
    }
}

pub fn check_token(caller: &ValidatedToken, subject: &ValidatedToken) -> ApiResult<()> {
    if admin_required(caller) || system_reader(caller) || token_subject(caller, subject) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("identity:check_token".into()))
    }
}

pub fn revoke_token(caller: &ValidatedToken, subject: &ValidatedToken) -> ApiResult<()> {
    if admin_required(caller) || token_subject(caller, subject) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("identity:revoke_token".into()))
    }
}
