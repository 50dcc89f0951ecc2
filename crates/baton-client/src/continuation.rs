//! The sending side of continuation tokens (Baton's own; docs/continuation.md).
//!
//! [`ContinuationAuth`] is a drop-in for [`ServiceTokenAuth`] in a long operation: on its first
//! request it asks the identity server whether it offers continuation tokens
//! (`GET /v3/baton/continuations`); if it does, and for every service type of the audience, it
//! exchanges the user's token (with the service user's token) for one, sends it in
//! `X-Auth-Token` beside the service user's token in `X-Service-Token` (so that a receiver's
//! service-only rules, such as Cinder's since CVE-2023-2088, still see the service), and
//! renews it within [`STALE_TOKEN_DURATION`] of its expiry. Otherwise (a
//! Keystone server, the feature off, an audience the server does not serve) it sends the
//! service-token pair as [`ServiceTokenAuth`] does. A continuation token a receiver refuses
//! (401) also falls back to the pair, once.

use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};
use serde_json::json;

use crate::access::{AccessInfo, STALE_TOKEN_DURATION};
use crate::discover::{join_path, v3_url_from_path};
use crate::error::{display_url, Error, Refused, Result};
use crate::http::{read_error, read_limited, HttpClient};
use crate::plugin::{secret_header, subject_token, AuthPlugin, BoxFuture};
use crate::secret::AuthToken;
use crate::service_token::ServiceTokenAuth;
use crate::session::Session;

/// What `GET /v3/baton/continuations` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuationOffer {
    /// Seconds one continuation token lives.
    pub token_lifetime: u64,
    /// The service types the server's continuation tokens may name.
    pub audiences: Vec<String>,
}

impl Session {
    /// The identity server this session authenticates against, as a v3 URL: its plugin's
    /// `auth_url`, else the catalog's identity endpoint.
    async fn own_identity_v3(&self) -> Result<Url> {
        match self.auth().auth_url() {
            Some(url) => Ok(v3_url_from_path(url)),
            None => {
                self.identity_endpoint(crate::access::Interface::Public, None)
                    .await
            }
        }
    }

    /// `GET <v3>/baton/continuations`: the offer, or `None` when the server has none (404, as
    /// Keystone answers).
    pub async fn continuation_offer(&self) -> Result<Option<ContinuationOffer>> {
        let v3 = self.own_identity_v3().await?;
        let resp = self
            .request(Method::GET, v3.clone(), "baton/continuations")
            .authenticated(false)
            .raise_for_status(false)
            .send()
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let url = join_path(&v3, "baton/continuations");
        if !resp.status().is_success() {
            let (status, message, _) = read_error(resp).await;
            return Err(Error::InvalidResponse {
                url: display_url(&url),
                reason: format!("{status}: {message}"),
            });
        }
        let body: serde_json::Value = serde_json::from_slice(&read_limited(resp, 64 * 1024).await)
            .map_err(|e| Error::InvalidResponse {
                url: display_url(&url),
                reason: e.to_string(),
            })?;
        let c = &body["continuation"];
        Ok(Some(ContinuationOffer {
            token_lifetime: c["token_lifetime"].as_u64().unwrap_or(0),
            audiences: c["audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
        }))
    }

    /// `POST <v3>/baton/continuations` as this session's (service) user: starts an operation
    /// for `subject` (a user's token) with `audience`, or, with an empty audience, renews the
    /// operation whose current continuation token `subject` is.
    pub async fn continuation(
        &self,
        subject: &AuthToken,
        audience: &[String],
    ) -> Result<AccessInfo> {
        let v3 = self.own_identity_v3().await?;
        let url = join_path(&v3, "baton/continuations");
        let mut req = self
            .request(Method::POST, v3, "baton/continuations")
            .header_value(
                HeaderName::from_static(baton_types::headers::SUBJECT_TOKEN),
                secret_header(subject)?,
            )
            .raise_for_status(false);
        if !audience.is_empty() {
            req = req.json(&json!({"continuation": {"audience": audience}}));
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let (status, message, request_id) = read_error(resp).await;
            return Err(Error::AuthenticationFailed {
                url: display_url(&url),
                who: format!("a continuation of token sha256:{}", subject.fingerprint()),
                status: status.as_u16(),
                message,
                request_id,
            });
        }
        let token = subject_token(&resp, &display_url(&url))?;
        let body = read_limited(resp, 16 * 1024 * 1024).await;
        AccessInfo::from_json(token, &body).map_err(|reason| Error::InvalidResponse {
            url: display_url(&url),
            reason,
        })
    }
}

/// Where a [`ContinuationAuth`] stands.
#[derive(Debug, Clone)]
enum Mode {
    /// Nothing asked yet.
    Unknown,
    /// Sending this continuation token.
    Continuing(Arc<AccessInfo>),
    /// Sending the user's token and the service user's (no offer, or a refusal).
    Pair,
}

/// A long operation's credentials: a continuation token (with the service token) when the
/// identity server offers them, else the service-token pair (see the module documentation).
#[derive(Debug)]
pub struct ContinuationAuth {
    pair: ServiceTokenAuth,
    /// The service user's session: it asks for and renews the continuation tokens.
    service: Session,
    audience: Vec<String>,
    mode: Mutex<Mode>,
    /// One exchange or renewal at a time.
    exchange: tokio::sync::Mutex<()>,
}

impl ContinuationAuth {
    /// `user` is the user's token (a [`crate::UserToken`]), `service` a session authenticated
    /// as the service user, `audience` the service types the operation calls.
    pub fn new(user: Arc<dyn AuthPlugin>, service: Session, audience: &[&str]) -> ContinuationAuth {
        ContinuationAuth {
            pair: ServiceTokenAuth::new(user, service.auth().clone()),
            service,
            audience: audience.iter().map(|a| (*a).to_string()).collect(),
            mode: Mutex::new(Mode::Unknown),
            exchange: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether requests now carry a continuation token (false before the first request, and
    /// when it fell back to the pair).
    pub fn is_continuing(&self) -> bool {
        matches!(self.mode(), Mode::Continuing(_))
    }

    /// Asks for the offer and, when there is one, starts the operation now (while the user's
    /// token is still valid); otherwise the pair is used from here on.
    pub async fn prepare(&self, http: &HttpClient) -> Result<()> {
        self.current(http).await.map(|_| ())
    }

    fn mode(&self) -> Mode {
        self.mode.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// The continuation token to send, or `None` for the pair: asks for the offer and starts
    /// the operation on first use, renews near expiry.
    async fn current(&self, http: &HttpClient) -> Result<Option<Arc<AccessInfo>>> {
        let _one = self.exchange.lock().await;
        let next = match self.mode() {
            Mode::Pair => return Ok(None),
            Mode::Continuing(a) if !a.will_expire_soon(STALE_TOKEN_DURATION) => return Ok(Some(a)),
            Mode::Continuing(a) => self.service.continuation(a.token(), &[]).await?,
            Mode::Unknown => {
                let offered = self.service.continuation_offer().await?;
                let served =
                    offered.is_some_and(|o| self.audience.iter().all(|a| o.audiences.contains(a)));
                if !served || self.audience.is_empty() {
                    tracing::debug!("no continuation tokens for this audience: service-token pair");
                    self.set_mode(Mode::Pair);
                    return Ok(None);
                }
                let user = self.pair.user.get_token(http).await?;
                self.service.continuation(&user, &self.audience).await?
            }
        };
        tracing::debug!(
            token = %next.token().fingerprint(),
            expires_at = %next.expires_at(),
            "continuation token obtained"
        );
        let next = Arc::new(next);
        self.set_mode(Mode::Continuing(next.clone()));
        Ok(Some(next))
    }
}

impl AuthPlugin for ContinuationAuth {
    fn get_access<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<Arc<AccessInfo>>> {
        // The user's own: user, project and catalog are the same.
        self.pair.get_access(http)
    }

    fn get_token<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<AuthToken>> {
        Box::pin(async move {
            match self.current(http).await? {
                Some(a) => Ok(a.token().clone()),
                None => self.pair.get_token(http).await,
            }
        })
    }

    fn get_headers<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<HeaderMap>> {
        Box::pin(async move {
            let mut headers = self.pair.get_headers(http).await?;
            if let Some(a) = self.current(http).await? {
                headers.insert(baton_types::headers::AUTH_TOKEN, secret_header(a.token())?);
            }
            Ok(headers)
        })
    }

    fn invalidate(&self) -> bool {
        match self.mode() {
            // A receiver refused the continuation token: the pair, which it may accept.
            Mode::Continuing(_) => {
                tracing::info!(
                    "continuation token refused: falling back to the service-token pair"
                );
                self.set_mode(Mode::Pair);
                true
            }
            Mode::Pair => self.pair.invalidate(),
            Mode::Unknown => false,
        }
    }

    fn invalidate_refused(&self, refused: &Refused) -> bool {
        match self.mode() {
            Mode::Pair => self.pair.invalidate_refused(refused),
            _ => self.invalidate(),
        }
    }

    fn auth_url(&self) -> Option<&Url> {
        self.pair.auth_url()
    }
}
