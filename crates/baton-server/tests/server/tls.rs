//! `[baton] tls_cert_file` / `tls_key_file`: the identity server over TLS with a CA made by the
//! test, the pair reloaded when its files change (new connections get the new certificate, open
//! ones go on), a bad new pair leaving the old one serving, and a bad pair stopping the start
//! with one line naming file, section and option.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_config::tls::TlsFiles;
use baton_config::IdentityConfig;
use baton_testkit::tls::{replace, TestCa};
use baton_testkit::{DbDialect, IdentityServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A client that trusts the test CA only.
fn verifying_client(ca: &TestCa) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A TLS connection to `addr` verified against `ca` for the name `localhost`.
async fn tls_connect(addr: &str, ca: &TestCa) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(baton_config::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// The leaf certificate the server presented on `stream`.
fn served(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The leaf certificate in a PEM file.
fn leaf_in(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

/// `GET /v3` on an open connection, keeping it open; the status line and body.
async fn get_v3(stream: &mut TlsStream<TcpStream>) -> String {
    stream
        .write_all(b"GET /v3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= length {
                    return format!("{} {body}", head.lines().next().unwrap());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tls_and_reloads_the_certificate() {
    let ca = TestCa::new("Baton test CA");
    let first = ca.write_leaf(ca.dir(), "server", "baton-1", 1);
    let files = first.clone();
    let s = IdentityServer::start_with(DbDialect::Sqlite, |c| c.baton.tls = Some(files)).await;
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let addr = s.base.trim_start_matches("https://").to_string();

    // A client trusting the test CA: discovery links and the token API are https, the peer
    // address still reaches the handlers (a password login is throttled by source address).
    let client = verifying_client(&ca);
    let v3: serde_json::Value = client
        .get(format!("{}/v3", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let href = v3["version"]["links"][0]["href"].as_str().unwrap();
    assert_eq!(href, format!("{}/v3/", s.base));
    let resp = client
        .post(format!("{}/v3/auth/tokens", s.base))
        .json(
            &serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": "admin", "domain": {"id": "default"}, "password": "wrong"}}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Keystone uri=\"https://"));
    assert!(!s.admin_token().await.is_empty());

    // Without the CA a client refuses the server; plain HTTP gets no answer.
    let strict = reqwest::Client::builder().build().unwrap();
    let refused = strict.get(format!("{}/v3", s.base)).send().await;
    assert!(refused.is_err(), "{refused:?}");
    let plain = reqwest::get(format!("http://{addr}/v3")).await;
    assert!(plain.is_err(), "{plain:?}");

    let mut open = tls_connect(&addr, &ca).await;
    let first_cert = leaf_in(&first.cert_file);
    assert_eq!(served(&open), first_cert);
    assert!(get_v3(&mut open).await.starts_with("HTTP/1.1 200"));

    // A new pair in the same files: new connections see it within about a second, the open
    // connection goes on.
    let second = ca.write_leaf(ca.dir(), "server", "baton-2", 2);
    let new_cert = leaf_in(&second.cert_file);
    assert_ne!(new_cert, first_cert);
    let mut seen = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if served(&tls_connect(&addr, &ca).await) == new_cert {
            seen = true;
            break;
        }
    }
    assert!(seen, "the new certificate was not served within 4 s");
    assert!(get_v3(&mut open).await.starts_with("HTTP/1.1 200"));

    // A bad new pair (the certificate of another key): the second pair keeps serving.
    let other = ca.leaf("baton-3", 3);
    replace(&second.cert_file, &other.cert_pem);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        assert_eq!(served(&tls_connect(&addr, &ca).await), new_cert);
    }
    let resp = client.get(format!("{}/v3", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Its key arrives too: the third pair serves.
    replace(&second.key_file, &other.key_pem);
    let third = leaf_in(&second.cert_file);
    let mut seen = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if served(&tls_connect(&addr, &ca).await) == third {
            seen = true;
            break;
        }
    }
    assert!(seen, "the third certificate was not served within 4 s");
    s.stop().await;
}

/// Writes a keystone.conf with these `[baton]` lines and reads it.
fn read_conf(dir: &Path, baton: &str) -> String {
    let path = dir.join("keystone.conf");
    std::fs::write(&path, format!("[DEFAULT]\n\n[baton]\n{baton}")).unwrap();
    IdentityConfig::load([&path], std::iter::empty::<(String, String)>())
        .unwrap_err()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pair_stops_the_start_with_one_line() {
    let ca = TestCa::new("Baton test CA");
    let good = ca.write_leaf(ca.dir(), "good", "baton", 1);
    let other = ca.write_leaf(ca.dir(), "other", "baton", 2);
    let dir = ca.dir();
    let conf = dir.join("keystone.conf").display().to_string();
    let cert = good.cert_file.display().to_string();
    let wrong_key = other.key_file.display().to_string();

    let e = read_conf(
        dir,
        &format!("tls_cert_file = {cert}\ntls_key_file = {wrong_key}\n"),
    );
    assert!(
        e.starts_with(&format!(
            "{conf}:5: [baton] tls_key_file = \"{wrong_key}\": not the key of the certificate in {cert}"
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");

    let missing = dir.join("missing.crt").display().to_string();
    let e = read_conf(
        dir,
        &format!("tls_cert_file = {missing}\ntls_key_file = {wrong_key}\n"),
    );
    assert!(
        e.starts_with(&format!(
            "{conf}:4: [baton] tls_cert_file = \"{missing}\": cannot read {missing}: "
        )),
        "{e}"
    );

    std::fs::write(dir.join("junk.crt"), "not a certificate\n").unwrap();
    let junk = dir.join("junk.crt").display().to_string();
    let e = read_conf(
        dir,
        &format!("tls_cert_file = {junk}\ntls_key_file = {wrong_key}\n"),
    );
    assert!(
        e.starts_with(&format!(
            "{conf}:4: [baton] tls_cert_file = \"{junk}\": holds no PEM certificate"
        )),
        "{e}"
    );

    let e = read_conf(dir, &format!("tls_cert_file = {cert}\n"));
    assert_eq!(
        e,
        format!("{conf}:3: [baton]: option tls_key_file is not set: tls_cert_file is set, and TLS needs both")
    );
    let e = read_conf(dir, &format!("tls_certfile = {cert}\n"));
    assert!(
        e.contains("[baton] tls_certfile = ")
            && e.contains("unknown option (did you mean \"tls_cert_file\"?)"),
        "{e}"
    );

    // The same checks when the configuration was built in code: serve refuses to start.
    let s = IdentityServer::start(DbDialect::Sqlite).await;
    let mut config = (*s.state.config).clone();
    config.baton.tls = Some(TlsFiles {
        cert_file: good.cert_file.clone(),
        key_file: other.key_file.clone(),
    });
    let state = baton_server::AppState::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        baton_server::serve(state, listener),
    )
    .await
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "[baton] tls_key_file = {wrong_key}: not the key of the certificate in {cert}"
        )),
        "{e}"
    );
    s.stop().await;
}
