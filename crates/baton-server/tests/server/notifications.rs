//! Keystone's notifications (`[oslo_messaging_notifications] driver = messagingv2`) read off
//! the machine's RabbitMQ (127.0.0.1:5672) by a listener of the test's own: the oslo.messaging
//! envelope, the CADF events of logins and writes with the request's initiator, and an outage
//! of the broker (through a relay the test cuts) that requests do not notice: events wait in
//! the bounded buffer, the overflow is dropped and counted, and delivery resumes.
//! (tests/interop/test_notifications.py compares the events with the real Keystone's.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{
    BasicGetArguments, Channel, ExchangeDeclareArguments, QueueBindArguments,
    QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use baton_config::NotificationDriver;
use baton_testkit::{call, project_scope, send, IdentityServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const RABBIT: &str = "127.0.0.1:5672";

/// A TCP relay to RabbitMQ that the test can cut (closing every connection through it and
/// refusing new ones) and restore: a broker outage that touches nobody else's connections.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Relay {
    async fn start() -> Relay {
        Relay::start_with(None).await
    }

    /// A relay that terminates TLS (the broker's side stays plain): RabbitMQ with an
    /// `amqps` listener, as far as Baton can tell.
    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (flag, held) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let tls = tls.clone();
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(RABBIT).await else {
                        return;
                    };
                    match tls {
                        None => {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        Some(acceptor) => {
                            if let Ok(mut inbound) = acceptor.accept(inbound).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                    }
                });
                held.lock().unwrap().push(link);
            }
        });
        Relay {
            port,
            up,
            links,
            _accept: accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The test's listener: a queue of its own bound like oslo.messaging's default queue.
struct Listener {
    _connection: Connection,
    channel: Channel,
    queue: String,
}

impl Listener {
    async fn bind(exchange: &str, routing_key: &str) -> Listener {
        let connection = Connection::open(&OpenConnectionArguments::new(
            "127.0.0.1",
            5672,
            "guest",
            "guest",
        ))
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
        let channel = connection.open_channel(None).await.unwrap();
        channel
            .exchange_declare(ExchangeDeclareArguments::new(exchange, "topic"))
            .await
            .unwrap();
        channel
            .queue_declare(QueueDeclareArguments::new(routing_key))
            .await
            .unwrap();
        channel
            .queue_bind(QueueBindArguments::new(routing_key, exchange, routing_key))
            .await
            .unwrap();
        Listener {
            _connection: connection,
            channel,
            queue: routing_key.to_string(),
        }
    }

    /// The oslo.messaging messages received so far (each checked for the envelope and
    /// kombu's properties), waiting up to 10 s for at least `want`.
    async fn messages(&self, want: usize) -> Vec<Value> {
        let mut got = Vec::new();
        for _ in 0..100 {
            while let Some((_, props, body)) = self
                .channel
                .basic_get(BasicGetArguments::new(&self.queue).no_ack(true).finish())
                .await
                .unwrap()
            {
                assert_eq!(
                    props.content_type().map(String::as_str),
                    Some("application/json")
                );
                assert_eq!(props.content_encoding().map(String::as_str), Some("utf-8"));
                let envelope: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(envelope["oslo.version"], "2.0", "{envelope}");
                let message: Value =
                    serde_json::from_str(envelope["oslo.message"].as_str().unwrap()).unwrap();
                got.push(message);
            }
            if got.len() >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got
    }

    /// Whether an event whose target is `id` arrives (within 50 s), whatever comes before it.
    async fn wait_for_target(&self, id: &str) -> bool {
        for _ in 0..5 {
            let got = self.messages(1).await;
            if got.iter().any(|m| m["payload"]["target"]["id"] == id) {
                return true;
            }
        }
        false
    }

    async fn delete(self) {
        let _ = self
            .channel
            .queue_delete(QueueDeleteArguments::new(&self.queue))
            .await;
    }
}

fn of_type<'a>(messages: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["event_type"] == event_type)
        .collect()
}

async fn server_to(relay: &Relay, topic: &str, buffer: usize) -> IdentityServer {
    let url = format!("rabbit://guest:guest@127.0.0.1:{}/", relay.port);
    server_at(url, topic, buffer, None).await
}

/// A server publishing to `url` on `topic`.
async fn server_at(
    url: String,
    topic: &str,
    buffer: usize,
    tls: Option<baton_config::RabbitTls>,
) -> IdentityServer {
    let topic = topic.to_string();
    IdentityServer::start_with(baton_testkit::DbDialect::Sqlite, move |c| {
        let n = &mut c.notifications;
        n.drivers = vec![NotificationDriver::MessagingV2];
        n.transport_url = Some(url);
        n.topics = vec![topic];
        n.opt_out = Vec::new();
        n.publisher_id = Some("baton-test".into());
        n.buffer = buffer;
        n.rabbit_tls = tls;
    })
    .await
}

/// A relay to RabbitMQ, a listener on a topic of the test's own, and a server publishing there
/// through the relay with `buffer` events of room.
async fn setup(buffer: usize) -> (Relay, Listener, IdentityServer) {
    let relay = Relay::start().await;
    let topic = format!("baton-test-{}", uuid::Uuid::new_v4().simple());
    let listener = Listener::bind("keystone", &format!("{topic}.info")).await;
    let s = server_to(&relay, &topic, buffer).await;
    (relay, listener, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_writes_are_published_in_keystones_form() {
    let (_relay, listener, s) = setup(100).await;
    let admin = s.admin_token().await;
    let resp = s
        .client
        .post(s.url("projects"))
        .header("X-Auth-Token", &admin)
        .header("User-Agent", "notification-test/1")
        .json(&json!({"project": {"name": "audited"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let request_id = resp.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let project = resp.json::<Value>().await.unwrap()["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = send(
        &s,
        Method::POST,
        "auth/tokens",
        None,
        Some(
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "not-the-password"}}},
            "scope": project_scope(&s.admin_project_id)}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let messages = listener.messages(3).await;

    let created = of_type(&messages, "identity.project.created");
    assert_eq!(created.len(), 1, "{messages:#?}");
    let m = created[0];
    assert_eq!(m["publisher_id"], "identity.baton-test");
    assert_eq!(m["priority"], "INFO");
    assert!(
        m["message_id"].is_string() && m["_unique_id"].is_string() && m["timestamp"].is_string()
    );
    let p = &m["payload"];
    assert_eq!(
        p["typeURI"],
        "http://schemas.dmtf.org/cloud/audit/1.0/event"
    );
    assert_eq!(
        (&p["action"], &p["outcome"], &p["eventType"]),
        (
            &json!("created.project"),
            &json!("success"),
            &json!("activity")
        )
    );
    assert_eq!(
        p["target"],
        json!({"id": project, "typeURI": "data/security/project"})
    );
    assert_eq!(p["resource_info"], project);
    let i = &p["initiator"];
    assert_eq!(i["user_id"], s.admin_user_id);
    assert_eq!(i["name"], "admin");
    assert_eq!(i["project_id"], s.admin_project_id);
    assert_eq!(i["request_id"], request_id);
    assert_eq!(
        i["host"],
        json!({"address": "127.0.0.1", "agent": "notification-test/1"})
    );
    assert_eq!(p["observer"]["typeURI"], "service/security");

    let logins = of_type(&messages, "identity.authenticate");
    let outcomes: Vec<&Value> = logins.iter().map(|m| &m["payload"]["outcome"]).collect();
    assert!(
        outcomes.contains(&&json!("success")) && outcomes.contains(&&json!("failure")),
        "{logins:#?}"
    );
    for m in &logins {
        assert_eq!(m["payload"]["initiator"]["user_id"], s.admin_user_id);
        assert_eq!(
            m["payload"]["target"]["typeURI"],
            "service/security/account/user"
        );
    }
    // No password in any event.
    assert!(!serde_json::to_string(&messages)
        .unwrap()
        .contains("not-the-password"));
    listener.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_never_holds_a_request_and_delivery_resumes() {
    let (relay, listener, s) = setup(3).await;
    let admin = s.admin_token().await;
    let create = |name: &'static str| {
        let (s, admin) = (&s, admin.clone());
        async move {
            let (status, body) = call(
                s,
                Method::POST,
                "projects",
                &admin,
                Some(json!({"project": {"name": name}})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["project"]["id"].as_str().unwrap().to_string()
        }
    };
    let before = create("before").await;
    // The admin's login event may come first, or in the same poll.
    assert!(
        listener.wait_for_target(&before).await,
        "delivered before the outage"
    );
    let metrics = s.state.tokens.audit.notifier().metrics();
    assert_eq!(metrics.dropped(), 0);

    relay.cut();
    // The publisher notices the closed connection; every request still answers at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    const DURING: [&str; 10] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"];
    let mut during = Vec::new();
    for name in DURING {
        during.push(create(name).await);
    }
    // Three wait in the buffer and one is held by the publisher: the rest are dropped.
    assert!(metrics.dropped() >= 5, "dropped {}", metrics.dropped());

    relay.restore();
    // The publisher connects again within its backoff (1 s, 2 s, 4 s ... since the cut).
    for _ in 0..300 {
        if metrics.connects() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.connects() >= 2,
        "reconnected: {}",
        metrics.connects()
    );
    let after = create("after").await;
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..6 {
        let got = listener.messages(1).await;
        seen.extend(
            got.iter()
                .filter_map(|m| m["payload"]["target"]["id"].as_str().map(str::to_string)),
        );
        if seen.contains(&after) {
            break;
        }
    }
    // The write after the outage is delivered, and so is what waited in the buffer.
    assert!(seen.contains(&after), "{seen:?}");
    assert!(seen.iter().any(|id| during.contains(id)), "{seen:?}");
    listener.delete().await;
}

/// A transport URL of two brokers, the first one down: the publisher moves on to the second,
/// which it reaches over TLS (`[oslo_messaging_rabbit] ssl`, `ssl_ca_file`), and events flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_broker_is_tried_and_tls_is_spoken() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca = baton_testkit::tls::TestCa::new("broker-ca");
    let leaf = ca.leaf("rabbit", 2);
    let config = rustls::ServerConfig::builder_with_provider(baton_config::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let relay = Relay::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
    // A port nothing listens on: the first broker of the URL is down.
    let down = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_port = down.local_addr().unwrap().port();
    drop(down);
    let topic = format!("baton-test-{}", uuid::Uuid::new_v4().simple());
    let listener = Listener::bind("keystone", &format!("{topic}.info")).await;
    let url = format!(
        "rabbit://guest:guest@127.0.0.1:{down_port},guest:guest@127.0.0.1:{}/",
        relay.port
    );
    let tls = baton_config::RabbitTls {
        ca_file: Some(ca.ca_file()),
        client: None,
    };
    let s = server_at(url, &topic, 100, Some(tls)).await;
    let admin = s.admin_token().await;
    let (status, body) = call(
        &s,
        Method::POST,
        "projects",
        &admin,
        Some(json!({"project": {"name": "over-tls"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["project"]["id"].clone();
    // The admin's login comes first; wait for the project's event.
    assert!(listener.wait_for_target(id.as_str().unwrap()).await);
    let metrics = s.state.tokens.audit.notifier().metrics();
    assert!(
        metrics.connect_failures() >= 1,
        "the first broker was tried"
    );
    assert_eq!(metrics.connects(), 1);
    listener.delete().await;
}
