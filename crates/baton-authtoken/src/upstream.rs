//! `baton authproxy`'s connections to its one upstream: HTTP/1.1 keep-alive connections (TLS
//! for an `https://` upstream) kept in a per-worker pool.
//!
//! The proxy talks to a single origin, so the pool is a stack of idle senders, not a map keyed
//! by host. A connection goes back on the stack when its response body has been read to the
//! end; one whose body was dropped early, failed or was answered `Connection: close` is never
//! reused (hyper closes it). A request that could not be written on a reused connection
//! (the upstream had closed it while it sat idle) is sent again on another one; a request
//! that was written is never sent twice.
//!
//! hyper-util's general client did the same with a keyed pool, a lazily raced connect and a
//! task spawned per request to hand the connection back: about 6,000 instructions per proxied
//! request (`scripts/bench-proxy.sh`'s callgrind run), which this avoids.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower::Service;

use crate::proxy::{BoxError, ProxyBody};

/// How long an idle connection may wait for its next request before it is dropped (the
/// upstream may close it any time; a shorter idle life makes that race rarer).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pooled connections to one upstream.
pub(crate) struct UpstreamPool {
    connector: HttpsConnector<HttpConnector>,
    /// The upstream's URL, which the connector reads the scheme, host and port from.
    upstream: Uri,
    /// Idle connections, the most recently used last (so their idle times are in order).
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
}

struct Idle {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

impl UpstreamPool {
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        upstream: Uri,
        max_idle: usize,
    ) -> Arc<UpstreamPool> {
        Arc::new(UpstreamPool {
            connector,
            upstream,
            idle: Mutex::new(Vec::new()),
            max_idle,
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) and returns the response head; its body hands
    /// the connection back to the pool when read to the end.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, BoxError> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(e.into());
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = PooledBody::new(body, sender, self.clone());
                    return Ok(Response::from_parts(parts, ProxyBody::new(body)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and young enough.
    fn take(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() > IDLE_TIMEOUT {
                // The rest waited longer still.
                idle.clear();
                return None;
            }
            if !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_back(&self, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= self.max_idle {
            return;
        }
        let since = Instant::now();
        // Drop the connections that have waited too long, the oldest first.
        let stale = idle.partition_point(|e| since.duration_since(e.since) > IDLE_TIMEOUT);
        idle.drain(..stale);
        idle.push(Idle { sender, since });
    }

    /// A new connection (TCP, and TLS for `https://`), its protocol task spawned.
    async fn connect(&self) -> Result<SendRequest<ProxyBody>, BoxError> {
        let io = self.connector.clone().call(self.upstream.clone()).await?;
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// An upstream response body that returns its connection to the pool once read to the end.
struct PooledBody {
    inner: Incoming,
    /// Until the end of the body.
    connection: Option<(SendRequest<ProxyBody>, Arc<UpstreamPool>)>,
}

impl PooledBody {
    fn new(inner: Incoming, sender: SendRequest<ProxyBody>, pool: Arc<UpstreamPool>) -> Self {
        let mut body = PooledBody {
            inner,
            connection: Some((sender, pool)),
        };
        // Bodiless responses (HEAD, 204, 304, `Content-Length: 0`) never get polled to the end.
        if body.inner.is_end_stream() {
            body.release();
        }
        body
    }

    fn release(&mut self) {
        if let Some((sender, pool)) = self.connection.take() {
            pool.put_back(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            // A failed body leaves the connection in no state to reuse.
            Poll::Ready(Some(Err(_))) => self.connection = None,
            _ => {}
        }
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
