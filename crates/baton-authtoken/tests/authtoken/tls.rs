//! TLS on the receiving side, with a CA made by the test: `[keystone_authtoken]` `cafile` /
//! `insecure` against an https identity server (the testkit server with `[baton]
//! tls_cert_file`), and `baton authproxy` serving HTTPS in front of an `https://` upstream
//! verified with `upstream_cafile`.

use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use baton_authtoken::{AuthTokenConfig, Authenticator, ProxyOptions};
use baton_config::IniFile;
use baton_testkit::tls::TestCa;
use baton_testkit::{DbDialect, IdentityServer, ADMIN_PASSWORD};

fn ini(text: &str) -> IniFile {
    IniFile::parse(text, "cinder.conf").unwrap()
}

/// `[keystone_authtoken]` for the bootstrap admin against `s`, plus `extra` lines (from line 10).
fn authtoken_section(s: &IdentityServer, extra: &str) -> String {
    format!(
        "[keystone_authtoken]\nauth_type = password\nauth_url = {}/v3\nusername = admin\npassword = {ADMIN_PASSWORD}\nuser_domain_id = default\nproject_name = admin\nproject_domain_id = default\nhttp_request_max_retries = 0\n{extra}",
        s.base
    )
}

fn authenticator(s: &IdentityServer, extra: &str) -> Authenticator {
    let cfg = AuthTokenConfig::from_ini(&ini(&authtoken_section(s, extra)), "keystone_authtoken")
        .unwrap();
    Authenticator::new(cfg).unwrap()
}

async fn decide(auth: &Authenticator, token: &str) -> StatusCode {
    let mut h = HeaderMap::new();
    h.insert("x-auth-token", token.parse().unwrap());
    auth.authenticate(&Method::GET, "/", &h).await.status()
}

async fn https_identity(ca: &TestCa) -> IdentityServer {
    let files = ca.write_leaf(ca.dir(), "identity", "identity", 1);
    IdentityServer::start_with(DbDialect::Sqlite, |c| c.baton.tls = Some(files)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_validates_against_an_https_identity_server() {
    let ca = TestCa::new("Baton test CA");
    let s = https_identity(&ca).await;
    let token = s.admin_token().await;
    let cafile = ca.ca_file().display().to_string();

    // cafile: the test CA is trusted, tokens validate.
    let auth = authenticator(&s, &format!("cafile = {cafile}\n"));
    let endpoint = auth.startup_check().await.unwrap();
    assert_eq!(endpoint.as_str(), format!("{}/v3", s.base));
    assert_eq!(decide(&auth, &token).await, StatusCode::OK);
    assert_eq!(decide(&auth, "not-a-token").await, StatusCode::UNAUTHORIZED);

    // Without it the server's certificate is refused: the identity service cannot be asked.
    let auth = authenticator(&s, "");
    assert!(auth.startup_check().await.is_err());
    assert_eq!(decide(&auth, &token).await, StatusCode::SERVICE_UNAVAILABLE);

    // insecure = true: not verified (and, as in keystoneauth, cafile is then not even read).
    let auth = authenticator(&s, "insecure = true\ncafile = /nonexistent/ca.pem\n");
    assert_eq!(decide(&auth, &token).await, StatusCode::OK);

    // A cafile that cannot be read stops the start with one line naming file, section, option.
    let e = AuthTokenConfig::from_ini(
        &ini(&authtoken_section(&s, "cafile = /nonexistent/ca.pem\n")),
        "keystone_authtoken",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(
            "cinder.conf:10: [keystone_authtoken] cafile = \"/nonexistent/ca.pem\": cannot read"
        ),
        "{e}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authproxy_serves_tls_in_front_of_an_https_upstream() {
    let ca = TestCa::new("Baton test CA");
    // The https identity server is also the upstream: its `GET /v3` answers behind the proxy.
    let s = https_identity(&ca).await;
    let token = s.admin_token().await;
    let cafile = ca.ca_file().display().to_string();
    let proxy_files = ca.write_leaf(ca.dir(), "proxy", "authproxy", 7);

    let start = |upstream_cafile: bool| {
        let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listen.local_addr().unwrap();
        let extra = if upstream_cafile {
            format!("upstream_cafile = {cafile}\n")
        } else {
            String::new()
        };
        let text = format!(
            "[authproxy]\nlisten = {addr}\nupstream = {}\nupstream_timeout = 10\ntls_cert_file = {}\ntls_key_file = {}\n{extra}\n{}",
            s.base,
            proxy_files.cert_file.display(),
            proxy_files.key_file.display(),
            authtoken_section(&s, &format!("cafile = {cafile}\n")),
        );
        let ini = ini(&text);
        let opts = ProxyOptions::from_ini(&ini).unwrap();
        let cfg = AuthTokenConfig::from_ini(&ini, "keystone_authtoken").unwrap();
        listen.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listen).unwrap();
        let auth = Authenticator::new(cfg).unwrap();
        tokio::spawn(async move {
            let _ = baton_authtoken::proxy::serve(listener, auth, opts).await;
        });
        format!("https://localhost:{}", addr.port())
    };

    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let proxy = start(true);
    let resp = client
        .get(format!("{proxy}/v3"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["version"]["id"], "v3.14", "{body}");
    let resp = client
        .get(format!("{proxy}/v3"))
        .header("x-auth-token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The upstream's certificate is not trusted without upstream_cafile: 502.
    let proxy = start(false);
    let resp = client
        .get(format!("{proxy}/v3"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);

    // [authproxy] checks its options like keystone.conf's.
    let parse = |text: &str| {
        ProxyOptions::from_ini(&IniFile::parse(text, "proxy.ini").unwrap())
            .unwrap_err()
            .to_string()
    };
    let base = "[authproxy]\nlisten = 127.0.0.1:1\nupstream = https://127.0.0.1:2\n";
    assert_eq!(
        parse(&format!("{base}tls_cert = x\n")),
        "proxy.ini:4: [authproxy] tls_cert = \"x\": unknown option"
    );
    let other = ca.write_leaf(ca.dir(), "other", "other", 8);
    let e = parse(&format!(
        "{base}tls_cert_file = {}\ntls_key_file = {}\n",
        proxy_files.cert_file.display(),
        other.key_file.display()
    ));
    assert!(
        e.starts_with(&format!(
            "proxy.ini:5: [authproxy] tls_key_file = \"{}\": not the key of the certificate",
            other.key_file.display()
        )),
        "{e}"
    );
    let e = parse(&format!("{base}upstream_cafile = /nonexistent/ca.pem\n"));
    assert!(
        e.starts_with(
            "proxy.ini:4: [authproxy] upstream_cafile = \"/nonexistent/ca.pem\": cannot read"
        ),
        "{e}"
    );
    s.stop().await;
}

/// A TLS server that wants a client certificate from the test CA and answers 200 only to the
/// one in `expected` (DER), else 403.
async fn mtls_server(ca: &TestCa, expected: Vec<u8>) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = baton_config::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let leaf = ca.leaf("mtls-server", 40);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let presented = s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let status = if presented.as_deref() == Some(&expected[..]) {
                    "200 OK"
                } else {
                    "403 Forbidden"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certfile_and_keyfile_present_a_client_identity() {
    use baton_client::{HttpRequest, Method, RetryPolicy, SessionConfig, Url};
    use rustls::pki_types::pem::PemObject;
    let ca = TestCa::new("Baton test CA");
    let client = ca.write_leaf(ca.dir(), "nova-client", "nova", 41);
    let expected = rustls::pki_types::CertificateDer::from_pem_file(&client.cert_file)
        .unwrap()
        .to_vec();
    let port = mtls_server(&ca, expected).await;
    let url = Url::parse(&format!("https://localhost:{port}/")).unwrap();
    let call = |section: String| {
        let url = url.clone();
        async move {
            let ini = IniFile::parse(&section, "nova.conf").unwrap();
            let mut http = SessionConfig::from_ini(&ini, "service_user")
                .unwrap()
                .http_options();
            http.retry = RetryPolicy::none();
            let client = http.build().unwrap();
            client
                .execute(&HttpRequest::new(Method::GET, url))
                .await
                .map(|r| r.status().as_u16())
        }
    };
    let cafile = ca.ca_file().display().to_string();
    let with_cert = format!(
        "[service_user]\ncafile = {cafile}\ncertfile = {}\nkeyfile = {}\n",
        client.cert_file.display(),
        client.key_file.display()
    );
    assert_eq!(call(with_cert).await.unwrap(), 200);
    let without = call(format!("[service_user]\ncafile = {cafile}\n")).await;
    assert!(without.is_err(), "{without:?}");
}
