//! Validating a user token and a service token in one call (Baton's own,
//! `GET /v3/baton/token_pairs/validate`; docs/continuation.md): what `baton-authtoken` uses
//! instead of keystonemiddleware's two `GET /v3/auth/tokens` calls when the identity server
//! offers it.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::Value;

use crate::access::AccessInfo;
use crate::discover::join_path;
use crate::error::{display_url, Error, Result};
use crate::http::read_limited;
use crate::plugin::secret_header;
use crate::secret::AuthToken;
use crate::session::{Session, ValidateOptions};

/// One token of a pair, as the identity server judged it.
#[derive(Debug, Clone)]
pub enum PairMember {
    /// Valid (within the allowed window for the user token); whether it had expired.
    Valid(Box<AccessInfo>, bool),
    /// Refused, but only because it expired.
    Expired,
    /// Refused.
    Invalid,
}

/// The identity server's judgement of a token pair.
#[derive(Debug, Clone)]
pub struct TokenPairAnswer {
    /// The service token, if one was sent.
    pub service: Option<PairMember>,
    /// The user token, if one was sent.
    pub user: Option<PairMember>,
    /// Whether the user token was judged allowing expiry (the service token is valid and holds
    /// one of the roles sent).
    pub allow_expired: bool,
    /// The window allowed, in seconds, when `allow_expired`.
    pub expired_window: Option<u64>,
}

impl Session {
    /// `GET <v3>/baton/token_pairs`: `None` when the identity server does not validate token
    /// pairs (Keystone: 404), else how many `[token_pairs]` rules it has (answers for a user
    /// token then depend on the sender).
    pub async fn token_pairs_offered(&self, options: &ValidateOptions) -> Result<Option<u64>> {
        let v3 = self
            .identity_endpoint(options.interface, options.region_name.as_deref())
            .await?;
        let resp = self
            .request(Method::GET, v3, "baton/token_pairs")
            .authenticated(false)
            .raise_for_status(false)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let body: Value =
            serde_json::from_slice(&read_limited(resp, 64 * 1024).await).unwrap_or_default();
        Ok(Some(body["token_pairs"]["rules"].as_u64().unwrap_or(0)))
    }

    /// `GET <v3>/baton/token_pairs/validate` as this session (the receiving service) for a
    /// user token and a service token (at least one), `roles` being the receiver's
    /// `service_token_roles`. `options.allow_expired` is ignored: the server decides.
    pub async fn validate_token_pair(
        &self,
        user: Option<&AuthToken>,
        service: Option<&AuthToken>,
        roles: &[String],
        options: &ValidateOptions,
    ) -> Result<TokenPairAnswer> {
        let v3 = self
            .identity_endpoint(options.interface, options.region_name.as_deref())
            .await?;
        let path = "baton/token_pairs/validate";
        let url = join_path(&v3, path);
        let mut req = self
            .request(Method::GET, v3, path)
            .query("service_token_roles", &roles.join(","))
            .raise_for_status(true);
        if !options.include_catalog {
            req = req.query("nocatalog", "");
        }
        for (name, token) in [
            (baton_types::headers::SUBJECT_TOKEN, user),
            (baton_types::headers::SERVICE_TOKEN, service),
        ] {
            if let Some(t) = token {
                req = req.header_value(HeaderName::from_static(name), secret_header(t)?);
            }
        }
        if options.enforces_access_rules {
            req = req.header_value(
                HeaderName::from_static(baton_types::headers::ACCESS_RULES),
                HeaderValue::from_static("1.0"),
            );
        }
        let resp = req.send().await?;
        let invalid = |reason: String| Error::InvalidResponse {
            url: display_url(&url),
            reason,
        };
        let body: Value = serde_json::from_slice(&read_limited(resp, 32 * 1024 * 1024).await)
            .map_err(|e| invalid(e.to_string()))?;
        let pair = &body["token_pair"];
        let member = |v: &Value, token: Option<&AuthToken>| -> Result<Option<PairMember>> {
            let Some(token) = token else {
                return Ok(None);
            };
            Ok(Some(match (&v["token"], v["refused"].as_str()) {
                (t @ Value::Object(_), _) => {
                    let json = serde_json::to_vec(&serde_json::json!({ "token": t }))
                        .map_err(|e| invalid(e.to_string()))?;
                    let access = AccessInfo::from_json(token.clone(), &json).map_err(invalid)?;
                    PairMember::Valid(
                        Box::new(access),
                        v["accepted_expired"].as_bool().unwrap_or(false),
                    )
                }
                (_, Some("expired")) => PairMember::Expired,
                (_, Some("invalid")) => PairMember::Invalid,
                _ => return Err(invalid(format!("unexpected pair member {v}"))),
            }))
        };
        Ok(TokenPairAnswer {
            service: member(&pair["service"], service)?,
            user: member(&pair["user"], user)?,
            allow_expired: pair["allow_expired"].as_bool().unwrap_or(false),
            expired_window: pair["expired_window"].as_u64(),
        })
    }
}
