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
//! - a request whose `Content-Length` hyper would refuse reaches the router with that
//!   header renamed ([`crate::head_guard`]), and its answer closes the connection;
//! - accept errors (out of file descriptors) pause the loop briefly instead of spinning.
//!
//! Each request carries a [`ConnInfo`] extension: the TCP peer, whether the connection is
//! TLS, and the identity of its verified client certificate, if the port asks for one.
//!
//! Left out: a write timeout for clients that stop reading a response (the connection cap
//! and the request timeout in [`crate::layers`] bound what they hold).

use std::convert::Infallible;
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

use crate::channel::{self, ChannelLimits, Prefixed, Speaks};
use crate::head_guard::{HeadGuard, RENAMED_CONTENT_LENGTH};
use crate::identity::{identity_of, ConnInfo};
use crate::tls::TlsSource;

/// Default cap on open connections per port.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time a client has to send a whole request head (and the idle keep-alive time).
/// HAProxy's common `timeout http-request 10s` closes slower clients earlier.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time a TLS handshake may take.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest request head: long `allocation_candidates` query strings fit.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 << 10;
/// hyper's smallest read buffer (it refuses a smaller one): a lower
/// [`ServeConfig::max_head_bytes`] means this.
const MIN_HEAD_BYTES: usize = 8192;
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
    /// Whether the port also takes [`crate::channel`]s, and their bounds (`None`: HTTP
    /// only, and a connection's first bytes go straight to hyper).
    pub channels: Option<ChannelLimits>,
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
            channels: None,
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
    // Channels are not hyper connections: they watch this instead.
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
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
        let (app, config, closing) = (app.clone(), config.clone(), closing_seen.clone());
        tokio::spawn(async move {
            let ends = Ends { watcher, closing };
            connection(stream, remote, app, &config, ends).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
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

/// How a connection learns that the port shuts down: hyper's graceful watcher, or for a
/// channel the port's closing flag.
struct Ends {
    watcher: Watcher,
    closing: tokio::sync::watch::Receiver<bool>,
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    config: &ServeConfig,
    ends: Ends,
) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = &config.tls else {
        let info = ConnInfo {
            remote,
            tls: false,
            client: None,
        };
        return speak(stream, info, app, config, ends).await;
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
    speak(stream, info, app, config, ends).await
}

/// Serves a connection as HTTP or, on a port that takes them and when its first bytes are
/// the preamble, as a channel.
async fn speak<IO>(mut io: IO, info: ConnInfo, app: Router, config: &ServeConfig, ends: Ends)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(limits) = &config.channels else {
        return http(io, info, app, config, ends.watcher).await;
    };
    match channel::sniff(&mut io, config.header_timeout).await {
        Speaks::Nothing => {}
        Speaks::Other(seen) => http(Prefixed::new(seen, io), info, app, config, ends.watcher).await,
        Speaks::Channel(after) => {
            // Not hyper's: the graceful watcher would wait for it.
            drop(ends.watcher);
            let io = Prefixed::new(after, io);
            channel::serve_channel(io, info, app, limits, ends.closing, config.name).await
        }
    }
}

async fn http<IO>(io: IO, info: ConnInfo, app: Router, config: &ServeConfig, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        // The guard renamed a Content-Length hyper would refuse, so hyper read no body: the
        // bytes the client sent as one must not be read as the next request.
        let close = request.headers().contains_key(RENAMED_CONTENT_LENGTH);
        let answer = app.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let mut response = answer.await?;
            if close {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(response)
        }
    });
    let max_head = config.max_head_bytes.max(MIN_HEAD_BYTES);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(max_head)
        .keep_alive(true);
    let io = HeadGuard::new(io, max_head);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(port = config.name, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use http::HeaderMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// How long a test waits for an answer.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Says whether a request's length was refused (and what it was), or echoes its body.
    fn echo() -> Router {
        Router::new().route(
            "/",
            get(|| async { "hello" }).post(|headers: HeaderMap, body: String| async move {
                match headers.get(RENAMED_CONTENT_LENGTH) {
                    Some(length) => format!("refused length {length:?}"),
                    None => format!("body {body}"),
                }
            }),
        )
    }

    /// Serves `echo` on a loopback port until the returned task is aborted.
    async fn start(tls: Option<Arc<TlsSource>>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let addr = listener.local_addr().expect("bound");
        let config = ServeConfig::new("test", tls);
        let task = tokio::spawn(serve(listener, echo(), config, std::future::pending()));
        (addr, task)
    }

    /// Reads one response from `stream`: its head (lower-cased) and its body.
    async fn response(stream: &mut (impl AsyncRead + Unpin)) -> (String, String) {
        let mut bytes = Vec::new();
        let mut byte = [0u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
                .await
                .expect("an answer in time")
                .expect("a readable stream");
            assert_eq!(n, 1, "the stream ended mid-head: {bytes:?}");
            bytes.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|l| l.trim().parse::<usize>().ok())
            .expect("a content-length in the answer");
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.expect("the whole body");
        (head, String::from_utf8_lossy(&body).into_owned())
    }

    /// The stream ends (the server closed it) without another byte.
    async fn ends(stream: &mut (impl AsyncRead + Unpin)) {
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
            .await
            .expect("closed in time")
            .expect("a readable stream");
        assert_eq!(String::from_utf8_lossy(&rest), "");
    }

    const REFUSED: &[u8] = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                             content-length: hi mom\r\n\r\n{\"uuid\": \"x\"}";

    #[tokio::test]
    async fn a_refused_length_reaches_the_router_and_closes() {
        let (addr, server) = start(None).await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(REFUSED).await.expect("send");
        let (head, body) = response(&mut client).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert_eq!(body, "refused length \"hi mom\"");
        // The body was not read as a request of its own.
        ends(&mut client).await;
        server.abort();
    }

    #[tokio::test]
    async fn keep_alive_connections_are_followed() {
        let (addr, server) = start(None).await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("send");
        assert_eq!(response(&mut client).await.1, "hello");
        // A body that reads as a request with a refused length stays a body.
        let body = "POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n";
        let request = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).await.expect("send");
        let (head, answer) = response(&mut client).await;
        assert_eq!(answer, format!("body {body}"));
        assert!(!head.contains("connection: close"), "{head}");
        // Two requests in one write.
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("send");
        assert_eq!(response(&mut client).await.1, "hello");
        assert_eq!(response(&mut client).await.1, "hello");
        // And a refused length later on the same connection.
        client.write_all(REFUSED).await.expect("send");
        assert_eq!(response(&mut client).await.1, "refused length \"hi mom\"");
        ends(&mut client).await;
        server.abort();
    }

    #[tokio::test]
    async fn a_trickled_head_still_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let addr = listener.local_addr().expect("bound");
        let config = ServeConfig {
            header_timeout: Duration::from_millis(300),
            ..ServeConfig::new("test", None)
        };
        let server = tokio::spawn(serve(listener, echo(), config, std::future::pending()));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        for byte in b"GET / HTTP/1.1\r\nhost: x\r\n".iter().cycle().take(20) {
            if client.write_all(&[*byte]).await.is_err() {
                break; // closed already
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, client.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection was not closed");
        assert!(!String::from_utf8_lossy(&rest).contains("hello"));
        server.abort();
    }

    #[tokio::test]
    async fn tls_connections_are_guarded_too() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = crate::certs::node1_files(dir.path());
        let source = TlsSource::load("test", paths.clone(), crate::tls::TlsRole::Api)
            .expect("a TLS configuration");
        let (addr, server) = start(Some(source)).await;
        let connector = tokio_rustls::TlsConnector::from(
            crate::tls::admin_client_config(&paths).expect("a client configuration"),
        );
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("an address");
        let mut client = connector.connect(name, tcp).await.expect("a TLS handshake");
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("send");
        assert_eq!(response(&mut client).await.1, "hello");
        client.write_all(REFUSED).await.expect("send");
        let (head, body) = response(&mut client).await;
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert_eq!(body, "refused length \"hi mom\"");
        server.abort();
    }
}
