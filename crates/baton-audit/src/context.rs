//! Who made the current request, for the events it causes.
//!
//! The server's outermost layer opens a [`scope`] per request with the peer address, the
//! `User-Agent` and the request id; the step that authenticates the caller's token adds the
//! caller ([`set_caller`]). Code deep in a write (creating a project, revoking a grant) then names
//! its initiator with [`current`] without every function passing it along, as Keystone's
//! `build_audit_initiator` reads the request.

use std::future::Future;
use std::sync::{Arc, OnceLock};

tokio::task_local! {
    static REQUEST: Arc<RequestContext>;
}

/// The authenticated caller of a request (from its `X-Auth-Token`): a user with the scope of
/// their token.
pub type Caller = crate::cadf::User;

/// One request as events describe it.
#[derive(Debug, Default)]
pub struct RequestContext {
    /// The peer address.
    pub address: Option<String>,
    /// The `User-Agent` header (empty when absent, as Keystone shows it).
    pub agent: String,
    /// The request id answered in `X-OpenStack-Request-Id`.
    pub request_id: String,
    /// The caller's own request id (`X-OpenStack-Request-Id` sent in the request, when it has
    /// the `req-<uuid>` form), which ties the calls of one operation across services.
    pub global_request_id: Option<String>,
    caller: OnceLock<Caller>,
}

impl RequestContext {
    /// A request from `address` with `agent`, answered as `request_id`.
    pub fn new(address: Option<String>, agent: String, request_id: String) -> RequestContext {
        RequestContext {
            address,
            agent,
            request_id,
            global_request_id: None,
            caller: OnceLock::new(),
        }
    }

    /// Keeps the caller's `X-OpenStack-Request-Id` as the global request id when it is a
    /// request id (`req-` and a UUID), as oslo.middleware does.
    pub fn with_global_request_id(mut self, sent: Option<&str>) -> RequestContext {
        self.global_request_id = sent
            .filter(|s| {
                s.strip_prefix("req-")
                    .is_some_and(|u| u.len() == 36 && uuid::Uuid::parse_str(u).is_ok())
            })
            .map(str::to_string);
        self
    }

    /// The caller, once its token was validated.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.get()
    }
}

/// Runs `f` as the request described by `ctx`.
pub async fn scope<F: Future>(ctx: RequestContext, f: F) -> F::Output {
    REQUEST.scope(Arc::new(ctx), f).await
}

/// Records the caller of the current request (the first one set stays); `caller` is only
/// called inside a request that may send events.
pub fn set_caller(caller: impl FnOnce() -> Caller) {
    let _ = REQUEST.try_with(|r| {
        r.caller.get_or_init(caller);
    });
}

/// The current request, when running inside one.
pub fn current() -> Option<Arc<RequestContext>> {
    REQUEST.try_with(Arc::clone).ok()
}
