//! What the four services share: hosting an axum router on a loopback listener that can be
//! stopped and bound again, the auth_token layer built from a `[keystone_authtoken]` section, the
//! OpenStack error bodies, and the receiver-side checks (`is_service_request`, admin, project).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use baton_authtoken::{AuthTokenConfig, Authenticator, IdentityContext, DEFAULT_SECTION};
use baton_client::{
    AuthConfig, AuthPlugin, Credentials, HttpOptions, Password, RetryPolicy, Token,
};
use baton_config::IniFile;
use serde_json::{json, Value};

/// A service listening on loopback. Stopping it closes the listener and asks open connections
/// to finish; [`Hosted::rebind`] serves another router on the same address (a restart).
pub struct Hosted {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hosted {
    /// Serves `router` on an already bound listener.
    pub fn serve(listener: std::net::TcpListener, router: Router) -> anyhow::Result<Hosted> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(Hosted::spawn(listener, router))
    }

    /// Binds `addr` again (SO_REUSEADDR: connections of the previous instance may linger in
    /// TIME_WAIT) and serves `router` there.
    pub fn rebind(addr: SocketAddr, router: Router) -> anyhow::Result<Hosted> {
        Ok(Hosted::spawn(bind_reuse(addr)?, router))
    }

    fn spawn(listener: tokio::net::TcpListener, router: Router) -> Hosted {
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Without TCP_NODELAY a response written in two pieces waits for the client's delayed
        // ACK (40 ms on Linux), which would swamp every latency figure.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Hosted {
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits (briefly) for open requests to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Idle keep-alive connections are closed by the graceful shutdown; do not wait long for
        // a client that keeps one busy.
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A tokio listener on `addr` with SO_REUSEADDR.
pub fn bind_reuse(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
    Ok(socket.listen(1024)?)
}

/// A listener on a free loopback port, bound now so that its URL can go into the catalog before
/// the service starts.
pub fn reserve_port() -> anyhow::Result<std::net::TcpListener> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?)
}

/// The plugin described by an auth section, with its own stale window: with the few-second
/// token lifetimes of the demo, keystoneauth's 30 s window would make every call authenticate
/// again.
pub fn plugin_with_stale_window(auth: &AuthConfig, stale: Duration) -> Arc<dyn AuthPlugin> {
    match &auth.credentials {
        Credentials::Password { user, password } => Arc::new(
            Password::new(auth.auth_url.clone(), user.clone(), password.clone())
                .with_scope(auth.scope.clone())
                .with_discovery(auth.auth_type.discovers())
                .with_stale_window(stale),
        ),
        Credentials::Token { token } => Arc::new(
            Token::new(auth.auth_url.clone(), token.clone())
                .with_scope(auth.scope.clone())
                .with_discovery(auth.auth_type.discovers())
                .with_stale_window(stale),
        ),
        Credentials::ApplicationCredential { .. } => auth.plugin(),
    }
}

/// HTTP options for calls between services and to the identity service: short timeouts, and a
/// few retries of refused connections and 503s (an identity server being restarted).
pub fn http_options() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Some(Duration::from_secs(20)),
        retry: RetryPolicy {
            connect_retries: 4,
            status_retries: 4,
            retry_statuses: vec![503],
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        },
        ..HttpOptions::default()
    }
}

/// The auth_token middleware of a service, from the `[keystone_authtoken]` section of its
/// configuration file text, its own token refreshed `stale` before expiry.
pub fn authenticator(ini: &IniFile, stale: Duration) -> anyhow::Result<Authenticator> {
    let mut cfg = AuthTokenConfig::from_ini(ini, DEFAULT_SECTION)?;
    if let Some(auth) = AuthConfig::from_ini(ini, DEFAULT_SECTION)? {
        cfg.auth = plugin_with_stale_window(&auth, stale);
    }
    cfg.http = HttpOptions {
        retry: RetryPolicy {
            // keystonemiddleware retries refused connections only; a restarted identity server
            // comes back within these.
            connect_retries: 4,
            status_retries: 0,
            retry_statuses: vec![],
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        },
        ..http_options()
    };
    Ok(Authenticator::new(cfg)?)
}

/// `[keystone_authtoken]` text for a service user of the demo deployment.
pub fn keystone_authtoken_section(auth_url: &str, username: &str, password: &str) -> String {
    format!(
        "[keystone_authtoken]\n\
         www_authenticate_uri = {auth_url}\n\
         auth_url = {auth_url}/v3\n\
         auth_type = v3password\n\
         username = {username}\n\
         password = {password}\n\
         user_domain_name = Default\n\
         project_name = service\n\
         project_domain_name = Default\n\
         interface = internal\n\
         service_token_roles = service\n\
         service_token_roles_required = true\n\
         expose_failure_reason = true\n"
    )
}

/// An OpenStack-style error: `{"<fault>": {"code": N, "message": "..."}}` (Nova, Cinder), or
/// Neutron's `{"NeutronError": {...}}` and Glance's plain text are close enough for clients that
/// read the status and the message.
pub fn fault(status: StatusCode, message: impl Into<String>) -> Response {
    let name = match status.as_u16() {
        400 => "badRequest",
        403 => "forbidden",
        404 => "itemNotFound",
        409 => "conflictingRequest",
        _ => "computeFault",
    };
    let message = message.into();
    (
        status,
        Json(json!({ name: { "code": status.as_u16(), "message": message } })),
    )
        .into_response()
}

/// The message of an error body in any of the shapes above.
pub fn error_message(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    obj.values()
        .find_map(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
}

/// Whether the user token holds `admin`.
pub fn is_admin(ctx: &IdentityContext) -> bool {
    ctx.roles().iter().any(|r| r == "admin")
}

/// The project of the request's user token.
pub fn project_of(ctx: &IdentityContext) -> String {
    ctx.project_id().unwrap_or_default().to_string()
}

/// Cinder's `is_service_request`: the `X-Service-Roles` header (set by the middleware only for a
/// valid service token) names one of `service_token_roles`.
pub fn is_service_request(headers: &HeaderMap, service_token_roles: &[String]) -> bool {
    headers
        .get("x-service-roles")
        .and_then(|v| v.to_str().ok())
        .map(|roles| {
            roles
                .split(',')
                .map(str::trim)
                .any(|r| !r.is_empty() && service_token_roles.iter().any(|s| s == r))
        })
        .unwrap_or(false)
}

/// A short random id in UUID form, like the services' own.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `req-<uuid>`: Nova's request id, which also names an instance action.
pub fn request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}
