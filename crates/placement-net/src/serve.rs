//! The accept loop both ports share: TLS, a connection cap, header and handshake timeouts,
//! and graceful shutdown, around an axum [`Router`].
//!
//! Every port assumes hostile clients:
//!
//! - at most [`ServeConfig::max_connections`] connections are open at once; one more is
//!   accepted and closed at once (so the listen queue never fills with connections nobody
//!   will serve), and counted in a warning;
//! - a TLS handshake must finish within [`ServeConfig::handshake_timeout`];
//! - a request head (request line and headers) must arrive whole within
//!   [`ServeConfig::header_timeout`] of the connection opening or of the previous response:
//!   a client that trickles a header, or a keep-alive connection left idle, is closed then;
//! - a request head is at most [`ServeConfig::max_head_bytes`] (hyper answers 431 beyond);
//! - accept errors (out of file descriptors) pause the loop briefly instead of spinning.
//!
//! Each request carries a [`ConnInfo`] extension: the TCP peer, whether the connection is
//! TLS, and the identity of its verified client certificate, if the port asks for one.
//!
//! Left out: a write timeout for clients that stop reading a response (the connection cap
//! and the request timeout in [`crate::layers`] bound what they hold).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::identity::{identity_of, ConnInfo};
use crate::tls::TlsSource;

/// Default cap on open connections per port.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time a client has to send a whole request head (and the idle keep-alive time).
/// HAProxy's common `timeout http-request 10s` closes slower clients earlier.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time a TLS handshake may take.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest request head: long `allocation_candidates` query strings fit; hyper
/// needs at least 8 KiB.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 << 10;
/// Default time connections get to finish their requests after shutdown begins.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. no file descriptor left) before the next one.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one "connection cap reached" warning this often.
const SHED_WARN_EVERY: Duration = Duration::from_secs(10);

/// How a port serves its connections.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Names the port in logs (`api`, `peer`).
    pub name: &'static str,
    /// TLS, or plaintext when `None`.
    pub tls: Option<Arc<TlsSource>>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_head_bytes: usize,
    /// After shutdown begins, how long requests in flight may take to finish; connections
    /// still open then are left to the process's exit.
    pub drain_timeout: Duration,
}

impl ServeConfig {
    /// The defaults above for port `name`.
    pub fn new(name: &'static str, tls: Option<Arc<TlsSource>>) -> Self {
        ServeConfig {
            name,
            tls,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight (idle ones close at once; at most
/// [`ServeConfig::drain_timeout`]) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let shed = ShedLog::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(port = config.name, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closing at once frees the descriptor; the client sees a reset, like a full
            // listen queue but without holding anything.
            drop(stream);
            shed.note(&config);
            continue;
        };
        let watcher = graceful.watcher();
        let (app, config) = (app.clone(), config.clone());
        tokio::spawn(async move {
            connection(stream, remote, app, &config, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            port = config.name,
            drain_timeout = ?config.drain_timeout,
            "connections still open after the drain timeout; not waiting for them"
        );
    }
}

/// Counts connections refused at the cap and warns about them now and then.
#[derive(Default)]
struct ShedLog {
    refused: AtomicU64,
    last_warning: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl ShedLog {
    fn note(&self, config: &ServeConfig) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= SHED_WARN_EVERY) {
            *last = Some(now);
            tracing::warn!(
                port = config.name,
                max_connections = config.max_connections,
                refused_total = refused,
                "connection cap reached: new connections are closed at once"
            );
        }
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    config: &ServeConfig,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = &config.tls else {
        let info = ConnInfo {
            remote,
            tls: false,
            client: None,
        };
        return http(stream, info, app, config, watcher).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server());
    let stream = match tokio::time::timeout(config.handshake_timeout, acceptor.accept(stream)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(port = config.name, %remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(port = config.name, %remote, "TLS handshake timed out");
            return;
        }
    };
    let client = match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        None => None,
        Some(cert) => match identity_of(cert.as_ref()) {
            Ok(identity) => Some(identity),
            Err(e) => {
                tracing::warn!(port = config.name, %remote, error = %e,
                    "client certificate refused");
                return;
            }
        },
    };
    let info = ConnInfo {
        remote,
        tls: true,
        client,
    };
    http(stream, info, app, config, watcher).await
}

async fn http<IO>(io: IO, info: ConnInfo, app: Router, config: &ServeConfig, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_head_bytes.max(8192))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(port = config.name, error = %e, "connection ended with an error");
    }
}
