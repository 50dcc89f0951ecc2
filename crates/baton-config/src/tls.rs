//! TLS on Baton's own listeners: `[baton]` and `[authproxy]` `tls_cert_file` / `tls_key_file`.
//!
//! A pair is a PEM certificate chain (leaf first, intermediates after it) and its PEM private
//! key (PKCS#8, PKCS#1 or SEC1). Reading the options checks the pair the way serving it will:
//! both files parse and the key belongs to the leaf, so a bad pair stops the start with one line
//! naming file, section and option. While serving, [`CertificateReloader`] looks at both files
//! at most once per second from the handshakes themselves and loads a changed pair for the new
//! connections only; open connections keep theirs. A changed pair that does not load (half
//! written, mismatched) leaves the previous one serving and is logged once per change.
//!
//! The crypto provider is `ring`, the one reqwest already brings in through rustls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::error::ConfigError;
use crate::reader::SectionReader;

/// How often at most the files are looked at for a change.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The certificate and key files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first (`tls_cert_file`).
    pub cert_file: PathBuf,
    /// PEM private key of the leaf (`tls_key_file`).
    pub key_file: PathBuf,
}

/// Why a pair does not load, and which of the two files is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The certificate file cannot be read or holds no usable certificate.
    Cert(String),
    /// The key file cannot be read, holds no usable key, or the key is not the leaf's.
    Key(String),
}

impl std::fmt::Display for PairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PairError::Cert(m) | PairError::Key(m) => f.write_str(m),
        }
    }
}

/// The crypto provider of every TLS listener and client of Baton's own (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The certificates of a PEM CA file (at least one).
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

/// A TLS client of Baton's own (the authproxy's upstream leg, the message broker): the
/// built-in web roots plus `cafile`'s, and a client certificate when `client` is set.
pub fn client_config(
    cafile: Option<&Path>,
    client: Option<&TlsFiles>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = cafile {
        for cert in read_roots(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let Some(files) = client else {
        return Ok(builder.with_no_client_auth());
    };
    load_pair(files).map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(&read(&files.cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key_file)?)
        .map_err(|e| format!("not a PEM private key: {e}"))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate: {e}"))
}

/// Reads and checks a pair: the chain parses, the key parses and is the leaf's.
pub fn load_pair(files: &TlsFiles) -> Result<Arc<CertifiedKey>, PairError> {
    let cert_pem = read(&files.cert_file).map_err(PairError::Cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PairError::Cert(format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(PairError::Cert("holds no PEM certificate".into()));
    }
    let key_pem = read(&files.key_file).map_err(PairError::Key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| PairError::Key(format!("not a PEM private key: {e}")))?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| PairError::Key(format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        PairError::Key(format!(
            "not the key of the certificate in {}: {e}",
            files.cert_file.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

/// Reads a `cert_option` / `key_option` pair of `r`'s section: both or neither, and a pair
/// that loads ([`load_pair`]). Errors name file, line, section and option.
pub fn read_tls_files(
    r: SectionReader,
    cert_option: &str,
    key_option: &str,
) -> Result<Option<TlsFiles>, ConfigError> {
    let section = r.section();
    match (r.text(cert_option)?, r.text(key_option)?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(r.missing(
            key_option,
            &format!("{cert_option} is set, and TLS needs both"),
        )),
        (None, Some(_)) => Err(r.missing(
            cert_option,
            &format!("{key_option} is set, and TLS needs both"),
        )),
        (Some((cert, cert_value)), Some((key, key_value))) => {
            let files = TlsFiles {
                cert_file: PathBuf::from(cert),
                key_file: PathBuf::from(key),
            };
            match load_pair(&files) {
                Ok(_) => Ok(Some(files)),
                Err(PairError::Cert(m)) => Err(cert_value.error(section, cert_option, m)),
                Err(PairError::Key(m)) => Err(key_value.error(section, key_option, m)),
            }
        }
    }
}

/// What identifies a file's content without reading it.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok()?, m.len(), inode))
}

struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: [Stamp; 2],
    checked: Instant,
}

/// The serving certificate, reloaded when its files change (see the module documentation).
pub struct CertificateReloader {
    files: TlsFiles,
    /// What the listener names itself in log lines (`[baton]`, `[authproxy]`).
    section: String,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for CertificateReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertificateReloader {
    /// Loads the pair now (the start fails on a bad one); `section` is for log lines.
    pub fn new(files: TlsFiles, section: &str) -> Result<CertificateReloader, PairError> {
        let stamps = [stamp(&files.cert_file), stamp(&files.key_file)];
        let key = load_pair(&files)?;
        Ok(CertificateReloader {
            files,
            section: section.to_owned(),
            loaded: Mutex::new(Loaded {
                key,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair new connections get, after a look at the files if the last one is over
    /// [`RELOAD_CHECK_INTERVAL`] old.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let stamps = [stamp(&self.files.cert_file), stamp(&self.files.key_file)];
            if stamps != loaded.stamps {
                // Remembered even when the new pair fails, so that it is logged once per change.
                loaded.stamps = stamps;
                match load_pair(&self.files) {
                    Ok(key) => {
                        loaded.key = key;
                        tracing::info!(
                            cert_file = %self.files.cert_file.display(),
                            "[{}] TLS certificate reloaded", self.section
                        );
                    }
                    Err(e) => tracing::error!(
                        cert_file = %self.files.cert_file.display(),
                        key_file = %self.files.key_file.display(),
                        "[{}] changed TLS certificate not loaded, the previous one still serves: {e}",
                        self.section
                    ),
                }
            }
        }
        loaded.key.clone()
    }

    /// A rustls server configuration serving [`CertificateReloader::current`], HTTP/1.1 only.
    pub fn server_config(self: Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertificateReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
