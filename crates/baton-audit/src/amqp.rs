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
use amqprs::tls::TlsAdaptor;
use amqprs::{BasicProperties, FieldTable};
use baton_config::RabbitTls;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use crate::{Metrics, Outgoing};

/// A connection attempt taking longer than this counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts to reach the broker.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One broker of a `rabbit://` transport URL, with its credentials.
#[derive(Clone)]
pub(crate) struct Host {
    host: String,
    port: u16,
    user: String,
    password: String,
}

/// Where the brokers are: every host of a `rabbit://` transport URL, tried in turn (oslo.messaging's
/// round-robin failover), the virtual host, and TLS when `[oslo_messaging_rabbit] ssl` is set.
#[derive(Clone)]
pub(crate) struct Transport {
    hosts: Vec<Host>,
    vhost: String,
    tls: Option<TlsConnector>,
}

impl Transport {
    /// Reads `rabbit://user:password@host:port[,user:password@host:port...]/vhost`
    /// (oslo.messaging's form: each host with its own credentials, `guest` when absent). The
    /// error never repeats a password.
    pub(crate) fn parse(url: &str, tls: Option<&RabbitTls>) -> Result<Transport, String> {
        let rest = url
            .strip_prefix("rabbit://")
            .ok_or("transport_url: only rabbit:// is supported")?;
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        // The host list ends at the first '/' after the last '@' (credentials are
        // percent-encoded, so a '/' before it would be part of one).
        let hosts_end = rest.rfind('@').unwrap_or(0);
        let (netloc, path) = match rest[hosts_end..].find('/') {
            Some(i) => rest.split_at(hosts_end + i),
            None => (rest, ""),
        };
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut hosts = Vec::new();
        for one in netloc.split(',').filter(|h| !h.is_empty()) {
            let parsed = url::Url::parse(&format!("rabbit://{one}/")).map_err(|e| {
                format!("transport_url: host {} is not valid ({e})", hosts.len() + 1)
            })?;
            hosts.push(Host {
                host: parsed.host_str().unwrap_or("localhost").to_string(),
                port: parsed.port().unwrap_or(5672),
                user: match parsed.username() {
                    "" => "guest".into(),
                    u => decode(u),
                },
                password: parsed.password().map_or_else(|| "guest".into(), decode),
            });
        }
        if hosts.is_empty() {
            hosts.push(Host {
                host: "localhost".into(),
                port: 5672,
                user: "guest".into(),
                password: "guest".into(),
            });
        }
        let vhost = match path.trim_start_matches('/') {
            "" => "/".to_string(),
            v => decode(v),
        };
        let tls = match tls {
            None => None,
            Some(t) => {
                let config =
                    baton_config::tls::client_config(t.ca_file.as_deref(), t.client.as_ref())
                        .map_err(|e| format!("[oslo_messaging_rabbit] ssl: {e}"))?;
                Some(TlsConnector::from(Arc::new(config)))
            }
        };
        Ok(Transport { hosts, vhost, tls })
    }
}

struct Session {
    connection: Connection,
    channel: Channel,
    exchange: String,
    declared: HashSet<String>,
}

impl Session {
    async fn open(t: &Transport, h: &Host, exchange: &str) -> Result<Session, String> {
        let mut args = OpenConnectionArguments::new(&h.host, h.port, &h.user, &h.password);
        args.virtual_host(&t.vhost)
            .connection_name("baton identity notifications");
        if let Some(connector) = &t.tls {
            // The certificate is checked against the host name the URL gives.
            args.tls_adaptor(TlsAdaptor::new(connector.clone(), h.host.clone()));
        }
        let args = args.finish();
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
    // The host to try next; a failure moves on to the following one, and only a whole round
    // of failures waits.
    let mut next = 0;
    loop {
        let host = &transport.hosts[next % transport.hosts.len()];
        next = (next + 1) % transport.hosts.len();
        let mut session = match Session::open(&transport, host, &exchange).await {
            Ok(s) => s,
            Err(error) => {
                metrics.connect_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    host = %host.host, port = host.port, %error,
                    "notifications: cannot reach the message broker; events wait in the buffer"
                );
                if next == 0 {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        // After a broken connection, the same broker is tried first again.
        next = (next + transport.hosts.len() - 1) % transport.hosts.len();
        metrics.connects.fetch_add(1, Ordering::Relaxed);
        // One line for what was lost while the broker was away, not one per event.
        let dropped = metrics.dropped.load(Ordering::Relaxed);
        tracing::info!(
            host = %host.host,
            port = host.port,
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
        let one = |t: &Transport, i: usize| {
            let h = &t.hosts[i];
            (h.host.clone(), h.port, h.user.clone(), h.password.clone())
        };
        let t = Transport::parse("rabbit://nova:s%40cret@10.0.0.5:5673/openstack", None).unwrap();
        assert_eq!(
            one(&t, 0),
            ("10.0.0.5".into(), 5673, "nova".into(), "s@cret".into())
        );
        assert_eq!(t.vhost, "openstack");
        let t = Transport::parse("rabbit://u:p@h1:5672,v:q@h2:5673/", None).unwrap();
        assert_eq!(t.hosts.len(), 2);
        assert_eq!(one(&t, 1), ("h2".into(), 5673, "v".into(), "q".into()));
        assert_eq!(t.vhost, "/");
        let t = Transport::parse("rabbit://a:b@h1,h2/v%2Fx?ssl=0", None).unwrap();
        assert_eq!(
            one(&t, 1),
            ("h2".into(), 5672, "guest".into(), "guest".into())
        );
        assert_eq!(t.vhost, "v/x");
        let t = Transport::parse("rabbit://127.0.0.1", None).unwrap();
        assert_eq!(
            one(&t, 0),
            ("127.0.0.1".into(), 5672, "guest".into(), "guest".into())
        );
        let e = Transport::parse("kafka://u:topsecret@h", None)
            .err()
            .unwrap();
        assert!(!e.contains("topsecret"), "{e}");
        let e = Transport::parse("rabbit://u:topsecret@h:notaport/", None)
            .err()
            .unwrap();
        assert!(!e.contains("topsecret"), "{e}");
    }
}
