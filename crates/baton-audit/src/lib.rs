//! Keystone's notifications: what happened in the identity service, published the way
//! Keystone 30 publishes it, so that the real oslo.messaging listeners (Ceilometer, Panko-style
//! consumers, security tooling) read Baton's events unchanged.
//!
//! - [`cadf`]: the events themselves: Keystone's CADF events (`identity.authenticate`,
//!   `identity.<resource>.created|updated|deleted`, `identity.role_assignment.*`), their
//!   `basic` form, and Baton's own (continuation tokens issued, renewed and refused; expired user
//!   tokens accepted for a service).
//! - [`context`]: who made the current request (address, agent, request id, the caller's user and
//!   scope), kept per request so that the code that writes a row can name its initiator.
//! - [`Notifier`]: the publisher. `[oslo_messaging_notifications] driver = messagingv2` sends
//!   oslo.messaging's version 2 envelope to the `[DEFAULT] control_exchange` topic exchange
//!   (`keystone`) with routing key `<topic>.info` over `rabbit://`; `log` writes one line per
//!   event. Publishing never blocks or fails a request: events wait in a bounded buffer while
//!   the broker is away, the connection is made again with backoff, and events that do not fit
//!   are dropped and counted ([`Metrics`]).

mod amqp;
pub mod cadf;
pub mod context;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baton_config::{NotificationDriver, NotificationFormat, NotificationOptions};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

/// What publishing has done since start (for `/healthcheck`-style reports and tests).
#[derive(Debug, Default)]
pub struct Metrics {
    published: AtomicU64,
    dropped: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
}

impl Metrics {
    /// Messages handed to the broker.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
    /// Messages dropped because the buffer was full (the broker away for long).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Connections made to the broker (the first and every reconnection).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }
    /// Attempts to connect that failed.
    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }
}

/// One message for the broker: its routing key and its body, ready to send.
#[derive(Debug)]
pub(crate) struct Outgoing {
    routing_key: String,
    body: Vec<u8>,
}

struct Inner {
    options: NotificationOptions,
    publisher_id: String,
    queue: Option<mpsc::Sender<Outgoing>>,
    /// In-process subscribers (the `Local` driver).
    local: Option<broadcast::Sender<Arc<Value>>>,
    metrics: Arc<Metrics>,
}

/// Sends notifications; cheap to clone. [`Notifier::off`] sends nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Notifier {
    /// A notifier that sends nothing (no driver configured).
    pub fn off() -> Notifier {
        Notifier::default()
    }

    /// Starts publishing as `options` say, with at most `options.buffer` events waiting for the
    /// broker. Must run inside a tokio runtime (the publisher is a task of its own). The broker need not
    /// be up: the task connects when it can.
    pub fn start(options: &NotificationOptions) -> Result<Notifier, String> {
        if !options.enabled() {
            return Ok(Notifier::off());
        }
        let metrics = Arc::new(Metrics::default());
        let amqp = options.drivers.iter().any(|d| {
            matches!(
                d,
                NotificationDriver::MessagingV2 | NotificationDriver::Messaging
            )
        });
        let local = options
            .drivers
            .contains(&NotificationDriver::Local)
            .then(|| broadcast::channel(1024).0);
        let queue = match (amqp, &options.transport_url) {
            (true, Some(url)) => {
                let transport = amqp::Transport::parse(url, options.rabbit_tls.as_ref())?;
                let (tx, rx) = mpsc::channel(options.buffer.max(1));
                tokio::spawn(amqp::publish(
                    transport,
                    options.control_exchange.clone(),
                    rx,
                    metrics.clone(),
                ));
                Some(tx)
            }
            (true, None) => return Err("no transport_url for the messaging driver".into()),
            (false, _) => None,
        };
        let host = options.publisher_id.clone().unwrap_or_else(host_name);
        Ok(Notifier {
            inner: Some(Arc::new(Inner {
                options: options.clone(),
                publisher_id: format!("identity.{host}"),
                queue,
                local,
                metrics,
            })),
        })
    }

    /// Whether anything is sent.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// `[DEFAULT] notification_format`.
    pub fn format(&self) -> NotificationFormat {
        self.inner
            .as_ref()
            .map_or(NotificationFormat::Cadf, |i| i.options.format)
    }

    /// Whether `event_type` would be sent: enabled and not in `notification_opt_out`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| !i.options.opted_out(event_type))
    }

    /// Every message from now on (the oslo.messaging message: `event_type`, `payload`, ...),
    /// with the `Local` driver; a subscriber that falls behind loses the oldest.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Value>>> {
        self.inner
            .as_ref()
            .and_then(|i| i.local.as_ref())
            .map(broadcast::Sender::subscribe)
    }

    /// What publishing has done (all zero when off).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner
            .as_ref()
            .map_or_else(Default::default, |i| i.metrics.clone())
    }

    /// Sends `payload` as an `INFO` notification of `event_type`, to every driver and topic.
    /// Never waits: when the buffer is full the event is dropped and counted.
    pub fn info(&self, event_type: &str, payload: Value) {
        let Some(inner) = &self.inner else { return };
        let message = json!({
            "message_id": uuid::Uuid::new_v4().to_string(),
            "publisher_id": inner.publisher_id,
            "event_type": event_type,
            "priority": "INFO",
            "payload": payload,
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            "_unique_id": uuid::Uuid::new_v4().simple().to_string(),
        });
        for driver in &inner.options.drivers {
            match driver {
                NotificationDriver::Log => {
                    tracing::info!(target: "baton::notification", "{message}");
                }
                NotificationDriver::MessagingV2 => {
                    let body = json!({"oslo.version": "2.0", "oslo.message": message.to_string()});
                    inner.send(body.to_string().into_bytes());
                }
                NotificationDriver::Messaging => inner.send(message.to_string().into_bytes()),
                NotificationDriver::Local => {
                    if let Some(local) = &inner.local {
                        // No subscriber is not an error.
                        let _ = local.send(Arc::new(message.clone()));
                    }
                }
            }
        }
    }
}

impl Inner {
    fn send(&self, body: Vec<u8>) {
        let Some(queue) = &self.queue else { return };
        for topic in &self.options.topics {
            let out = Outgoing {
                routing_key: format!("{topic}.info"),
                body: body.clone(),
            };
            if queue.try_send(out).is_err() {
                let dropped = self.metrics.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // The first drop and every thousandth after it, not a line per event.
                if dropped % 1000 == 1 {
                    tracing::warn!(
                        dropped_since_start = dropped,
                        "notifications dropped: the broker is away and [baton] notification_buffer is full"
                    );
                }
            }
        }
    }
}

/// This machine's name, as Keystone's default `publisher_id` uses it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
