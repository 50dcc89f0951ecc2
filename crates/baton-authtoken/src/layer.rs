//! The tower [`Layer`] and [`Service`] around [`Authenticator`], for axum and hyper services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tower::{Layer, Service};

use crate::authenticator::{Authenticator, Decision, FAILURE_REASON_HEADER};
use crate::context::strip_identity_headers;

/// The response body of the layered service: the middleware's own (401/503) or the inner
/// service's.
pub type AuthBody<B> = Either<Full<Bytes>, B>;

/// Puts the auth_token middleware in front of a service.
///
/// ```no_run
/// # async fn f(cfg: baton_authtoken::AuthTokenConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{routing::get, Extension, Router};
/// use baton_authtoken::{AuthTokenLayer, Authenticator, IdentityContext};
///
/// let auth = Authenticator::new(cfg)?;
/// auth.startup_check().await?;
/// let app: Router = Router::new()
///     .route("/volumes", get(|Extension(id): Extension<IdentityContext>| async move {
///         format!("project {:?}, service request: {}", id.project_id(), id.is_service_request())
///     }))
///     .layer(AuthTokenLayer::new(auth));
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthTokenLayer {
    auth: Authenticator,
}

impl AuthTokenLayer {
    /// The layer, deciding with `auth` (clone one [`Authenticator`] for every route).
    pub fn new(auth: Authenticator) -> AuthTokenLayer {
        AuthTokenLayer { auth }
    }
}

impl fmt::Debug for AuthTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthTokenLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthTokenLayer {
    type Service = AuthTokenService<S>;

    fn layer(&self, inner: S) -> AuthTokenService<S> {
        AuthTokenService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service made by [`AuthTokenLayer`]: strips incoming identity headers, authenticates, and
/// either answers (401/503) or calls the inner service with the [`crate::IdentityContext`] in
/// the request extensions and keystonemiddleware's headers set. The token headers reaching the
/// inner service are exactly the tokens the middleware read (one value each, canonical
/// spelling). A 401 from the inner service gets `WWW-Authenticate` too.
#[derive(Clone)]
pub struct AuthTokenService<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> fmt::Debug for AuthTokenService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthTokenService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthTokenService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Use the instance that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            strip_identity_headers(req.headers_mut());
            let context = match auth
                .authenticate(req.method(), req.uri().path(), req.headers())
                .await
            {
                Decision::Reject(r) => {
                    return Ok(auth.rejection_response(&r).map(Either::Left));
                }
                Decision::Forward(context) => context,
            };
            // Only the tokens that were read go on (2026-12 review, #6). A WSGI server maps
            // `X_Auth_Token` and `X-Auth-Token` to one HTTP_X_AUTH_TOKEN and joins or
            // overwrites repeats, so a second value or spelling would become the service's
            // auth_token (used for onward calls) while the identity headers describe the
            // first. Normalised rather than refused with 400: with keystonemiddleware inside
            // the WSGI process the service's token is by construction the one validated, and
            // this restores exactly that with one rule for every combination, including an
            // X-Storage-Token beside X-Auth-Token, which keystonemiddleware accepts (a refusal
            // rule would have to let it through and strip it anyway).
            context.keep_only_read_tokens(req.headers_mut());
            context.apply_headers(req.headers_mut(), auth.config().include_service_catalog);
            let reasons = context.failure_reasons.clone();
            req.extensions_mut().insert(*context);
            let mut resp = inner.call(req).await?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                let h = resp.headers_mut();
                let ours = auth.www_authenticate();
                if !h.get_all(WWW_AUTHENTICATE).iter().any(|v| v == ours) {
                    h.append(WWW_AUTHENTICATE, ours.clone());
                }
                if !h.contains_key(HeaderName::from_static(FAILURE_REASON_HEADER)) {
                    auth.add_reasons(h, &reasons);
                }
            }
            Ok(resp.map(Either::Right))
        })
    }
}
