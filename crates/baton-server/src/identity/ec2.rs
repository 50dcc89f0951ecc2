//! EC2 credentials: creating one for a user on a project (`OS-EC2`), and Keystone's
//! `/v3/ec2tokens` exchange of a signed EC2 request for a project-scoped token.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::credentials::{ec2_credential_id, Credential, NewCredential, EC2};
use super::Identity;
use crate::ec2_signature::{self, py_str};
use crate::error::{ApiError, ApiResult};
use crate::tokens::ValidatedToken;

/// The auth method Keystone records on tokens minted from an EC2 credential.
pub const EC2_METHOD: &str = "ec2credential";

/// An access key longer than this names no credential (Keystone's are 32 hex characters).
const MAX_ACCESS_LEN: usize = 1024;

/// An EC2 credential's blob, read as Keystone reads it.
pub struct Ec2Blob {
    /// The access key.
    pub access: Option<String>,
    /// The signing secret.
    pub secret: Option<String>,
    /// Set when it was made with a trust-scoped token.
    pub trust_id: Option<String>,
    /// Set when it was made with an application credential token.
    pub app_cred_id: Option<String>,
    /// Set when it was made with an OAuth1 access token.
    pub access_token_id: Option<String>,
}

impl Ec2Blob {
    /// Parses a blob (a JSON object; anything else reads as empty).
    pub fn parse(blob: &str) -> Ec2Blob {
        let map = serde_json::from_str::<Map<String, Value>>(blob).unwrap_or_default();
        let get = |k: &str| match map.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(py_str(v)),
        };
        Ec2Blob {
            access: get("access"),
            secret: get("secret"),
            trust_id: get("trust_id"),
            app_cred_id: get("app_cred_id"),
            access_token_id: get("access_token_id"),
        }
    }
}

/// Keystone's `_check_timestamp`: a request signed more than `[credential] auth_ttl` minutes
/// ago is refused; one without a timestamp is not checked.
fn check_timestamp(
    creds: &Map<String, Value>,
    ttl_minutes: u32,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let from = |obj: &str, key: &str| {
        creds
            .get(obj)
            .and_then(Value::as_object)
            .and_then(|m| m.get(key))
            .map(py_str)
            .filter(|s| !s.is_empty())
    };
    let Some(text) = from("params", "Timestamp")
        .or_else(|| from("headers", "X-Amz-Date"))
        .or_else(|| from("params", "X-Amz-Date"))
    else {
        return Ok(());
    };
    let at = parse_isotime(&text).ok_or_else(|| {
        ApiError::unauthorized(format!("Credential timestamp is invalid: {text:?}"))
    })?;
    if now.naive_utc() > at + chrono::Duration::minutes(i64::from(ttl_minutes)) {
        return Err(ApiError::unauthorized("Credential is expired"));
    }
    Ok(())
}

/// oslo's `parse_isotime` for the forms signers send: extended or basic ISO 8601, with `Z`, an
/// offset, or no zone (UTC); returned as naive UTC.
fn parse_isotime(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.naive_utc());
    }
    for fmt in ["%Y%m%dT%H%M%S%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Some(d.naive_utc());
        }
    }
    let plain = t.strip_suffix('Z').unwrap_or(t);
    [
        "%Y%m%dT%H%M%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(plain, fmt).ok())
}

/// The `credentials` object of an ec2tokens body (Keystone accepts three spellings).
fn credentials_of(body: &Map<String, Value>) -> Map<String, Value> {
    ["credentials", "credential", "ec2Credentials"]
        .iter()
        .filter_map(|k| body.get(*k))
        .find(|v| {
            !matches!(v, Value::Null | Value::Bool(false))
                && v.as_object().is_none_or(|m| !m.is_empty())
        })
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

impl Identity {
    /// Creates an EC2 credential for `user_id` on `project_id`: random access key and secret
    /// (32 hex characters each, as Keystone's `uuid4().hex`), id the access key's hash.
    pub async fn create_ec2_credential(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> ApiResult<Credential> {
        let access = uuid::Uuid::new_v4().simple().to_string();
        let secret = uuid::Uuid::new_v4().simple().to_string();
        // Keystone's json.dumps of {"access", "secret", "trust_id"} (no trust: it refuses
        // delegated callers).
        let blob = json!({"access": access, "secret": secret, "trust_id": null});
        self.create_credential(NewCredential {
            id: Some(ec2_credential_id(&access)),
            user_id: user_id.to_string(),
            project_id: Some(project_id.to_string()),
            kind: EC2.to_string(),
            blob: super::credentials::py_json(&blob),
            extra: Map::new(),
        })
        .await
    }

    /// `POST /v3/ec2tokens`: finds the credential of the request's access key, checks the
    /// signature (v0/v1/v2/v4, and v2 again without the host's port), the project and user,
    /// the timestamp, and mints a project-scoped `ec2credential` token for the credential's
    /// user.
    pub async fn authenticate_ec2(
        &self,
        body: &Map<String, Value>,
    ) -> ApiResult<(String, Arc<ValidatedToken>)> {
        if !self.config.auth.methods.iter().any(|m| m == EC2_METHOD) {
            return Err(ApiError::ServiceUnavailable(
                "Cannot mint a token from an EC2 or S3 credential: the ec2credential auth method is not enabled. Add ec2credential to the [auth] methods configuration option.".into(),
            ));
        }
        if body.is_empty() {
            return Err(ApiError::BadRequest(
                "request must include a request body".into(),
            ));
        }
        let creds = credentials_of(body);
        let Some(access) = creds.get("access").map(py_str) else {
            return Err(ApiError::unauthorized("EC2 Signature not supplied"));
        };
        let unknown = || ApiError::NotFound("EC2 access key not found.".into());
        if access.len() > MAX_ACCESS_LEN {
            return Err(unknown());
        }
        let cred = self
            .get_credential(&ec2_credential_id(&access))
            .await?
            .filter(|c| c.kind == EC2)
            .ok_or_else(unknown)?;
        let blob = Ec2Blob::parse(&cred.blob);
        let secret = blob.secret.clone().unwrap_or_else(|| "None".into());
        match ec2_signature::verify(&creds, &secret) {
            Ok(true) => {}
            Ok(false) => return Err(ApiError::unauthorized("Invalid EC2 signature.")),
            Err(e) => return Err(ApiError::unauthorized(format!("EC2 signature: {e}"))),
        }
        let project_id = cred.project_id.clone().unwrap_or_else(|| "None".into());
        if self.store.get_project(&project_id).await?.is_none() {
            return Err(ApiError::not_found("project", &project_id));
        }
        if self.store.get_user(&cred.user_id).await?.is_none() {
            return Err(super::users::user_not_found(&cred.user_id));
        }
        check_timestamp(
            &creds,
            self.config.credential.auth_ttl,
            self.tokens.clock.now(),
        )?;
        if blob.trust_id.is_some() || blob.app_cred_id.is_some() || blob.access_token_id.is_some() {
            // Keystone mints a trust, application-credential or OAuth1 token here; Baton does
            // not issue those yet.
            return Err(ApiError::unauthorized(
                "EC2 credential bound to a trust, application credential or OAuth1 token",
            ));
        }
        self.tokens
            .issue_for_credential(
                &cred.user_id,
                baton_token::Scope::Project {
                    project_id: project_id.clone(),
                },
                EC2_METHOD,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T03:20:00Z")
            .unwrap()
            .to_utc();
        let at = |ts: &str| {
            let c = json!({"params": {"Timestamp": ts}});
            check_timestamp(c.as_object().unwrap(), 15, now)
        };
        assert!(at("2024-01-02T03:10:00Z").is_ok());
        assert!(at("2024-01-02T03:04:00Z").is_err());
        assert!(at("20240102T031000Z").is_ok());
        assert!(at("2024-01-02T04:10:00+01:00").is_ok());
        assert!(at("yesterday").is_err());
        assert!(check_timestamp(&Map::new(), 15, now).is_ok());
    }

    #[test]
    fn blob_and_body_spellings() {
        let b = Ec2Blob::parse(r#"{"access": "a", "secret": "s", "trust_id": null}"#);
        assert_eq!(
            (b.access.as_deref(), b.secret.as_deref()),
            (Some("a"), Some("s"))
        );
        assert!(b.trust_id.is_none());
        let body = json!({"credential": {"access": "x"}});
        assert_eq!(credentials_of(body.as_object().unwrap())["access"], "x");
        let body = json!({"credentials": {}, "ec2Credentials": {"access": "y"}});
        assert_eq!(credentials_of(body.as_object().unwrap())["access"], "y");
    }
}
