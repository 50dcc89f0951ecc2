//! The AMQP side of [`crate::Notifier`]: one connection and channel to the broker, the
//! exchange and default queues declared as oslo.messaging declares them (so Keystone and Baton
//! nodes can share a broker and a queue), and reconnection with backoff.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use amqprs::channel::{
    BasicPublishArguments, Channel, ExchangeDeclareArguments, QueueBindArguments,
    QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{BasicProperties, FieldTable};
use tokio::sync::mpsc;

use crate::{Metrics, Outgoing};

/// A connection attempt taking longer than this counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts to reach the broker.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where the broker is: the first host of a `rabbit://` transport URL.
#[derive(Clone)]
pub(crate) struct Transport {
    host: String,
    port: u16,
    user: String,
    password: String,
    vhost: String,
}

impl Transport {
    /// Reads `rabbit://user:password@host:port/vhost` (oslo.messaging's form; several hosts
    /// separated by commas use the first). The error never repeats the password.
    pub(crate) fn parse(url: &str) -> Result<Transport, String> {
        let first = match url.split_once('@') {
            // rabbit://u:p@h1:5672,u:p@h2:5672/vhost: keep the first host and the vhost.
            Some((creds, rest)) if rest.contains(',') => {
                let vhost = rest.find('/').map_or("", |i| &rest[i..]);
                let host = rest.split(',').next().unwrap_or(rest);
                let host = host.split('/').next().unwrap_or(host);
                format!("{creds}@{host}{vhost}")
            }
            _ => url.to_string(),
        };
        let parsed =
            url::Url::parse(&first).map_err(|e| format!("transport_url is not a URL ({e})"))?;
        if parsed.scheme() != "rabbit" {
            return Err("transport_url: only rabbit:// is supported".into());
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let vhost = match parsed.path().trim_start_matches('/') {
            "" => "/".to_string(),
            v => decode(v),
        };
        Ok(Transport {
            host: parsed.host_str().unwrap_or("localhost").to_string(),
            port: parsed.port().unwrap_or(5672),
            user: match parsed.username() {
                "" => "guest".into(),
                u => decode(u),
            },
            password: parsed.password().map_or_else(|| "guest".into(), decode),
            vhost,
        })
    }
}

struct Session {
    connection: Connection,
    channel: Channel,
    exchange: String,
    declared: HashSet<String>,
}

impl Session {
    async fn open(t: &Transport, exchange: &str) -> Result<Session, String> {
        let args = OpenConnectionArguments::new(&t.host, t.port, &t.user, &t.password)
            .virtual_host(&t.vhost)
            .connection_name("baton identity notifications")
            .finish();
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&args))
            .await
            .map_err(|_| "no answer within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        let channel = connection
            .open_channel(None)
            .await
            .map_err(|e| e.to_string())?;
        // oslo.messaging's notification exchange: topic, not durable, not auto-deleted.
        channel
            .exchange_declare(ExchangeDeclareArguments::new(exchange, "topic"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Session {
            connection,
            channel,
            exchange: exchange.to_string(),
            declared: HashSet::new(),
        })
    }

    fn is_open(&self) -> bool {
        self.connection.is_open() && self.channel.is_open()
    }

    /// oslo.messaging declares a queue named after the routing key, bound to the exchange, so
    /// that events sent before any listener starts wait for it.
    async fn declare_queue(&mut self, routing_key: &str) -> Result<(), String> {
        if self.declared.contains(routing_key) {
            return Ok(());
        }
        self.channel
            .queue_declare(QueueDeclareArguments::new(routing_key))
            .await
            .map_err(|e| e.to_string())?;
        self.channel
            .queue_bind(QueueBindArguments::new(
                routing_key,
                &self.exchange,
                routing_key,
            ))
            .await
            .map_err(|e| e.to_string())?;
        self.declared.insert(routing_key.to_string());
        Ok(())
    }

    async fn publish(&mut self, out: &Outgoing) -> Result<(), String> {
        self.declare_queue(&out.routing_key).await?;
        // The properties kombu gives oslo.messaging's JSON messages.
        let properties = BasicProperties::default()
            .with_content_type("application/json")
            .with_content_encoding("utf-8")
            .with_headers(FieldTable::new())
            .with_delivery_mode(amqprs::DELIVERY_MODE_PERSISTENT)
            .with_priority(0)
            .finish();
        self.channel
            .basic_publish(
                properties,
                out.body.clone(),
                BasicPublishArguments::new(&self.exchange, &out.routing_key),
            )
            .await
            .map_err(|e| e.to_string())
    }
}

/// The publishing task: takes events from `queue` and sends them, connecting again (1 s, 2 s,
/// ... up to 30 s apart) whenever the broker is away. An event being sent when the connection
/// fails is kept and sent first after reconnecting. Ends when every sender is gone.
pub(crate) async fn publish(
    transport: Transport,
    exchange: String,
    mut queue: mpsc::Receiver<Outgoing>,
    metrics: Arc<Metrics>,
) {
    let mut pending: Option<Outgoing> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut session = match Session::open(&transport, &exchange).await {
            Ok(s) => s,
            Err(error) => {
                metrics.connect_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    host = %transport.host, port = transport.port, %error,
                    "notifications: cannot reach the message broker; events wait in the buffer"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        metrics.connects.fetch_add(1, Ordering::Relaxed);
        // One line for what was lost while the broker was away, not one per event.
        let dropped = metrics.dropped.load(Ordering::Relaxed);
        tracing::info!(
            host = %transport.host,
            port = transport.port,
            dropped_since_start = dropped,
            "notifications: connected to the message broker"
        );
        loop {
            let out = match pending.take() {
                Some(out) => out,
                None => match queue.recv().await {
                    Some(out) => out,
                    None => return,
                },
            };
            if !session.is_open() {
                pending = Some(out);
                break;
            }
            match session.publish(&out).await {
                Ok(()) => {
                    metrics.published.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(%error, "notifications: publishing failed; reconnecting");
                    pending = Some(out);
                    break;
                }
            }
        }
        let _ = session.connection.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::Transport;

    #[test]
    fn transport_urls_are_read_as_oslo_messaging_does() {
        let t = Transport::parse("rabbit://nova:s%40cret@10.0.0.5:5673/openstack").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.password.as_str(),
                t.vhost.as_str()
            ),
            ("10.0.0.5", 5673, "nova", "s@cret", "openstack")
        );
        let t = Transport::parse("rabbit://u:p@h1:5672,u:p@h2:5672/").unwrap();
        assert_eq!((t.host.as_str(), t.vhost.as_str()), ("h1", "/"));
        let t = Transport::parse("rabbit://127.0.0.1").unwrap();
        assert_eq!(
            (t.user.as_str(), t.password.as_str(), t.port),
            ("guest", "guest", 5672)
        );
        let e = Transport::parse("kafka://u:topsecret@h").err().unwrap();
        assert!(!e.contains("topsecret"), "{e}");
    }
}
