//! The service-token wrapper (keystoneauth's `ServiceTokenAuthWrapper`).

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::Url;

use crate::access::AccessInfo;
use crate::error::{AuthFailureReason, Refused, Result, WhichToken};
use crate::http::HttpClient;
use crate::plugin::{secret_header, AuthPlugin, BoxFuture};
use crate::secret::AuthToken;

/// Combines the user's auth with the calling service's own: requests carry the user's
/// `X-Auth-Token` and the service user's `X-Service-Token`, so that a receiver can accept the
/// user's token even after it expired (keystonemiddleware's `service_token_roles` +
/// `allow_expired`).
///
/// * User id, project, catalog and endpoints come from `user`.
/// * The service token is taken from `service` on every request; a caching plugin (e.g.
///   [`crate::Password`]) refreshes it within its stale window, 30 s by default.
/// * [`AuthPlugin::invalidate`] invalidates both. On a 401 whose
///   [`crate::AUTH_FAILURE_REASON_HEADER`] blames only one token, only that one is invalidated
///   (and for `service_token_missing_role` nothing: a new token would lack the role too).
#[derive(Debug, Clone)]
pub struct ServiceTokenAuth {
    /// The user (`X-Auth-Token`): user id, project, catalog and endpoints come from it.
    pub user: Arc<dyn AuthPlugin>,
    /// The service user (`X-Service-Token`), normally a [`crate::Password`] plugin of
    /// `[service_user]`.
    pub service: Arc<dyn AuthPlugin>,
}

impl ServiceTokenAuth {
    /// The user's plugin with the service user's next to it.
    pub fn new(user: Arc<dyn AuthPlugin>, service: Arc<dyn AuthPlugin>) -> ServiceTokenAuth {
        ServiceTokenAuth { user, service }
    }
}

impl AuthPlugin for ServiceTokenAuth {
    fn get_access<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<Arc<AccessInfo>>> {
        self.user.get_access(http)
    }

    fn get_token<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<AuthToken>> {
        self.user.get_token(http)
    }

    fn get_headers<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<HeaderMap>> {
        Box::pin(async move {
            let mut headers = self.user.get_headers(http).await?;
            let service = self.service.get_token(http).await?;
            if !service.expose().is_empty() {
                headers.insert(
                    baton_types::headers::SERVICE_TOKEN,
                    secret_header(&service)?,
                );
            }
            Ok(headers)
        })
    }

    fn invalidate(&self) -> bool {
        let user = self.user.invalidate();
        let service = self.service.invalidate();
        user || service
    }

    fn invalidate_refused(&self, refused: &Refused) -> bool {
        // A valid service token without the required role stays without it: no retry.
        if !refused.reasons.is_empty()
            && refused
                .reasons
                .iter()
                .all(|r| *r == AuthFailureReason::ServiceTokenMissingRole)
        {
            return false;
        }
        match (
            refused.blames(WhichToken::User),
            refused.blames(WhichToken::Service),
        ) {
            (true, false) => self.user.invalidate(),
            (false, true) => self.service.invalidate(),
            _ => self.invalidate(),
        }
    }

    fn auth_url(&self) -> Option<&Url> {
        self.user.auth_url().or_else(|| self.service.auth_url())
    }
}
