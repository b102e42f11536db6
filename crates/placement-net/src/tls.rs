//! TLS configurations built from PEM files, and their reload without a restart.
//!
//! A [`TlsSource`] reads a certificate chain, its private key and (for the peer port) the
//! cluster CA, and builds from them:
//!
//! - the **server** configuration of a port. On the peer port ([`TlsRole::Peer`]) it
//!   requires a client certificate issued by the cluster CA: a connection without one is
//!   refused during the handshake, so no plaintext or anonymous request ever reaches a
//!   handler. The API port ([`TlsRole::Api`]) asks for none (clients authenticate with
//!   tokens).
//! - on the peer port, the **client** configuration this node uses to call the other
//!   members: it presents the node's certificate and verifies the member it calls with
//!   [`ClusterServerVerifier`]. A peer is addressed by its identity name (`node<ID>`, see
//!   [`crate::identity`]), and the verifier accepts only a certificate from the cluster CA
//!   that names exactly that node; any other server name (an address, from the admin CLI)
//!   is verified the usual way, against the certificate's subject alternative names.
//!
//! # Reload
//! Certificates are read again when a file changes (checked every [`RELOAD_POLL`]) or on
//! SIGHUP ([`spawn_reloader`]). Each new connection takes the configuration current at its
//! accept (etcd's rule); established connections keep theirs. A reload that fails (a key
//! that does not match, a half-written file) keeps the previous configuration and logs why.
//!
//! Only the `ring` provider is used: it builds in seconds, where aws-lc-rs is a long C
//! build.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::identity::{identity_of, parse_node_name, Identity};

/// How often certificate files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_secs(10);

/// Largest PEM file read (a chain of a few certificates is a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The files of one TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain, the holder's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM certificates of the CA(s) whose certificates are trusted; required on the peer
    /// port, unused on the API port.
    pub ca: Option<PathBuf>,
}

/// Which port a [`TlsSource`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRole {
    /// The peer port: client certificates from the CA required; a client configuration too.
    Peer,
    /// The REST API: server authentication only.
    Api,
}

/// The crypto provider of every configuration: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, e))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(file_error(path, "larger than 1 MiB: not a PEM file"));
    }
    Ok(bytes)
}

/// Reads every certificate of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| file_error(path, format!("bad PEM key: {e}")))
}

/// A root store of every certificate in a PEM file.
pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("not a CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The configurations one set of files gives.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    pub server: Arc<ServerConfig>,
    /// On the peer port: how this node calls the others.
    pub client: Option<Arc<ClientConfig>>,
    /// Who this node's own certificate names.
    pub identity: Identity,
}

/// Builds the configurations of `paths` for `role`.
pub fn build(paths: &TlsPaths, role: TlsRole) -> Result<TlsConfigs, TlsError> {
    let chain = load_certs(&paths.cert)?;
    let key = load_key(&paths.key)?;
    let identity =
        identity_of(chain[0].as_ref()).map_err(|e| file_error(&paths.cert, e.to_string()))?;
    let provider = provider();
    let versions = |e: rustls::Error| TlsError::Config(format!("TLS versions: {e}"));
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(versions)?;
    let (server, client) = match role {
        TlsRole::Api => (server.with_no_client_auth(), None),
        TlsRole::Peer => {
            let ca = paths.ca.as_ref().ok_or_else(|| {
                TlsError::Config("the peer port needs the cluster CA (--peer-ca)".into())
            })?;
            let roots = load_roots(ca)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| file_error(ca, format!("client verifier: {e}")))?;
            let client = client_config(roots, chain.clone(), key.clone_key())
                .map_err(|e| file_error(&paths.key, e))?;
            (server.with_client_cert_verifier(verifier), Some(client))
        }
    };
    let mut server = server
        .with_single_cert(chain, key)
        .map_err(|e| file_error(&paths.key, format!("certificate and key do not match: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfigs {
        server: Arc::new(server),
        client,
        identity,
    })
}

/// A client configuration that presents `chain` and trusts the members `roots` certified
/// (verified by [`ClusterServerVerifier`]).
pub fn client_config(
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let verifier = Arc::new(ClusterServerVerifier::new(roots, provider.clone())?);
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(Arc::new(config))
}

/// The client configuration of the admin CLI: its own certificate, the cluster CA.
pub fn admin_client_config(paths: &TlsPaths) -> Result<Arc<ClientConfig>, TlsError> {
    let ca = paths
        .ca
        .as_ref()
        .ok_or_else(|| TlsError::Config("the cluster CA is needed (--ca)".into()))?;
    client_config(
        load_roots(ca)?,
        load_certs(&paths.cert)?,
        load_key(&paths.key)?,
    )
    .map_err(|e| file_error(&paths.key, e))
}

/// Verifies the member a node calls: see the module doc.
#[derive(Debug)]
pub struct ClusterServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    by_address: Arc<WebPkiServerVerifier>,
}

impl ClusterServerVerifier {
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let by_address =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| format!("server verifier: {e}"))?;
        Ok(ClusterServerVerifier {
            roots,
            provider,
            by_address,
        })
    }
}

impl ServerCertVerifier for ClusterServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let node = match server_name {
            ServerName::DnsName(name) => parse_node_name(name.as_ref()),
            _ => None,
        };
        let Some(expected) = node else {
            return self.by_address.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match identity_of(end_entity.as_ref()) {
            Ok(Identity::Node(id)) if id == expected => Ok(ServerCertVerified::assertion()),
            Ok(other) => Err(rustls::Error::General(format!(
                "the peer's certificate names {other}, not node{expected}"
            ))),
            Err(e) => Err(rustls::Error::General(e.to_string())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.by_address.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.by_address.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.by_address.supported_verify_schemes()
    }
}

/// When each file was last changed, to notice a rotation.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(paths: &TlsPaths) -> Stamp {
    [Some(&paths.cert), Some(&paths.key), paths.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// The TLS configuration of one port, reloaded when its files change.
#[derive(Debug)]
pub struct TlsSource {
    name: &'static str,
    paths: TlsPaths,
    role: TlsRole,
    current: RwLock<TlsConfigs>,
    stamp: Mutex<Stamp>,
    generation: AtomicU64,
}

impl TlsSource {
    /// Loads the files; `name` labels the port in logs.
    pub fn load(name: &'static str, paths: TlsPaths, role: TlsRole) -> Result<Arc<Self>, TlsError> {
        let stamp = stamp(&paths);
        let configs = build(&paths, role)?;
        Ok(Arc::new(TlsSource {
            name,
            paths,
            role,
            current: RwLock::new(configs),
            stamp: Mutex::new(stamp),
            generation: AtomicU64::new(0),
        }))
    }

    fn configs(&self) -> TlsConfigs {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The server configuration for a new connection.
    pub fn server(&self) -> Arc<ServerConfig> {
        self.configs().server
    }

    /// The client configuration for calls to other members (peer port only).
    pub fn client(&self) -> Option<Arc<ClientConfig>> {
        self.configs().client
    }

    /// Who this node's certificate names.
    pub fn identity(&self) -> Identity {
        self.configs().identity
    }

    pub fn paths(&self) -> &TlsPaths {
        &self.paths
    }

    /// Counts successful reloads: a client that caches something built from
    /// [`Self::client`] rebuilds it when this changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the files again if they changed since the last load (always with `force`).
    /// Returns whether a new configuration is in use; on error the old one stays.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let now = stamp(&self.paths);
        {
            let last = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
            if !force && *last == now {
                return Ok(false);
            }
        }
        let configs = build(&self.paths, self.role)?;
        let was = self.identity();
        if configs.identity != was {
            return Err(TlsError::Config(format!(
                "the new certificate names {}, the running node is {was}: not reloaded",
                configs.identity
            )));
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = now;
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(port = self.name, cert = %self.paths.cert.display(), "TLS certificates reloaded");
        Ok(true)
    }
}

/// Reloads `sources` when their files change (every [`RELOAD_POLL`]) and on every SIGHUP,
/// until the runtime stops.
pub fn spawn_reloader(sources: Vec<Arc<TlsSource>>) {
    if sources.is_empty() {
        return;
    }
    crate::reload::spawn("TLS certificates", RELOAD_POLL, move |force| {
        for source in &sources {
            // A few small files: read in place.
            if let Err(e) = source.reload(force) {
                tracing::error!(port = source.name, error = %e,
                    "TLS certificates not reloaded; the previous ones stay in use");
            }
        }
    });
}
