//! Channels against the real accept loop ([`crate::serve()`]) on loopback ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Extension;
use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::serve::{serve, ServeConfig};
use crate::tls::{TlsRole, TlsSource};

/// How long a test waits for anything.
const PATIENCE: Duration = Duration::from_secs(10);
const MAX_FRAME: usize = 1 << 20;

/// `/echo` answers its body; `/slow` waits the milliseconds its body names first;
/// `/who` says who the connection's certificate names; `/teapot` is a 418.
fn app() -> Router {
    Router::new()
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/slow",
            post(|body: String| async move {
                let ms: u64 = body.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                body
            }),
        )
        .route(
            "/who",
            post(|Extension(info): Extension<ConnInfo>| async move {
                format!(
                    "tls={} client={:?}",
                    info.tls,
                    info.client.map(|c| c.to_string())
                )
            }),
        )
        .route(
            "/teapot",
            post(|| async { (http::StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route("/", get(|| async { "hello" }))
}

async fn start(config: ServeConfig) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
    let addr = listener.local_addr().expect("bound");
    let task = tokio::spawn(serve(listener, app(), config, std::future::pending()));
    (addr, task)
}

fn with_channels(limits: ChannelLimits) -> ServeConfig {
    ServeConfig {
        channels: Some(limits),
        ..ServeConfig::new("test", None)
    }
}

async fn dial(addr: SocketAddr) -> Result<Channel, ChannelError> {
    Channel::dial(&addr.to_string(), None, PATIENCE, MAX_FRAME).await
}

/// Everything `stream` receives until the server closes it (within [`PATIENCE`]).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut seen))
        .await
        .expect("closed in time")
        .expect("read");
    seen
}

/// Waits (at most [`PATIENCE`]) until `channel` is closed; `what` says why it should be.
async fn closed_in_time(channel: &Channel, what: &str) {
    tokio::time::timeout(PATIENCE, async {
        while !channel.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect(what);
}

#[tokio::test]
async fn calls_share_one_channel_and_are_answered_out_of_order() {
    let (addr, server) = start(with_channels(ChannelLimits::new(MAX_FRAME))).await;
    let channel = Arc::new(dial(addr).await.expect("a channel"));
    let answer = channel
        .call("/echo", b"ping".to_vec(), PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(
        answer,
        Answer {
            status: 200,
            body: b"ping".to_vec()
        }
    );
    let teapot = channel
        .call("/teapot", Vec::new(), PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(
        (teapot.status, &teapot.body[..]),
        (418, &b"short and stout"[..])
    );
    let missing = channel
        .call("/nowhere", Vec::new(), PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(missing.status, 404);
    let who = channel
        .call("/who", Vec::new(), PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(String::from_utf8_lossy(&who.body), "tls=false client=None");

    // A slow call does not hold back the quick ones sent after it.
    let slow = {
        let channel = channel.clone();
        tokio::spawn(async move { channel.call("/slow", b"400".to_vec(), PATIENCE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let quick: Vec<_> = (0..50)
        .map(|i| {
            let channel = channel.clone();
            tokio::spawn(async move {
                channel
                    .call("/echo", format!("{i}").into_bytes(), PATIENCE)
                    .await
            })
        })
        .collect();
    for (i, call) in quick.into_iter().enumerate() {
        let answer = call.await.expect("joined").expect("an answer");
        assert_eq!(answer.body, format!("{i}").into_bytes());
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !slow.is_finished(),
        "the slow call ended before the quick ones"
    );
    assert_eq!(slow.await.expect("joined").expect("an answer").body, b"400");

    // The port still speaks HTTP.
    let mut http = TcpStream::connect(addr).await.expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, http.read_to_string(&mut text))
        .await
        .expect("in time")
        .expect("read");
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("hello"),
        "{text}"
    );
    server.abort();
}

#[tokio::test]
async fn a_port_without_channels_is_told_apart() {
    let (addr, server) = start(ServeConfig::new("test", None)).await;
    assert!(matches!(dial(addr).await, Err(ChannelError::Unsupported)));
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
    let nobody = closed.local_addr().expect("bound");
    drop(closed);
    assert!(matches!(dial(nobody).await, Err(ChannelError::Connect(_))));
    server.abort();
}

#[tokio::test]
async fn a_call_too_large_is_refused_by_either_side() {
    let (addr, server) = start(with_channels(ChannelLimits::new(1024))).await;
    // The client refuses to send it.
    let channel = Channel::dial(&addr.to_string(), None, PATIENCE, 1024)
        .await
        .expect("a channel");
    let refused = channel.call("/echo", vec![7; 2000], PATIENCE).await;
    assert!(matches!(refused, Err(ChannelError::Call(_))), "{refused:?}");
    assert!(!channel.is_closed());
    // A client that sends one anyway is cut off; the length alone allocates nothing.
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    raw.write_all(PREAMBLE).await.expect("send");
    raw.write_all(&u32::MAX.to_be_bytes()).await.expect("send");
    let seen = read_until_closed(&mut raw).await;
    assert_eq!(seen, PREAMBLE, "only the preamble was answered");
    server.abort();
}

#[tokio::test]
async fn a_broken_preamble_or_a_stalled_frame_is_closed() {
    let limits = ChannelLimits {
        frame_timeout: Duration::from_millis(200),
        ..ChannelLimits::new(MAX_FRAME)
    };
    let (addr, server) = start(with_channels(limits)).await;
    let mut broken = TcpStream::connect(addr).await.expect("connect");
    broken
        .write_all(b"\0placementd-chat/9\n")
        .await
        .expect("send");
    let seen = read_until_closed(&mut broken).await;
    assert!(seen.is_empty(), "{seen:?}");

    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(PREAMBLE).await.expect("send");
    stalled
        .write_all(&100u32.to_be_bytes())
        .await
        .expect("send");
    stalled.write_all(&[0; 10]).await.expect("send");
    let seen = read_until_closed(&mut stalled).await;
    assert_eq!(seen, PREAMBLE);
    server.abort();
}

#[tokio::test]
async fn an_idle_channel_is_closed_and_its_calls_fail_fast() {
    let limits = ChannelLimits {
        idle_timeout: Duration::from_millis(200),
        ..ChannelLimits::new(MAX_FRAME)
    };
    let (addr, server) = start(with_channels(limits)).await;
    let channel = dial(addr).await.expect("a channel");
    // A call longer than the idle timeout is not cut off by it.
    let slow = channel.call("/slow", b"500".to_vec(), PATIENCE).await;
    assert_eq!(slow.expect("an answer").body, b"500");
    closed_in_time(&channel, "closed when idle").await;
    let started = std::time::Instant::now();
    assert!(matches!(
        channel.call("/echo", Vec::new(), PATIENCE).await,
        Err(ChannelError::Call(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(1));
    server.abort();
}

#[tokio::test]
async fn a_shutdown_finishes_calls_in_flight_then_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
    let addr = listener.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        app(),
        with_channels(ChannelLimits::new(MAX_FRAME)),
        async move {
            let _ = stopped.await;
        },
    ));
    let channel = Arc::new(dial(addr).await.expect("a channel"));
    let slow = {
        let channel = channel.clone();
        tokio::spawn(async move { channel.call("/slow", b"300".to_vec(), PATIENCE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = stop.send(());
    assert_eq!(slow.await.expect("joined").expect("answered").body, b"300");
    closed_in_time(&channel, "closed after the shutdown").await;
    let _ = tokio::time::timeout(PATIENCE, server).await;
}

#[tokio::test]
async fn over_tls_a_channel_carries_the_client_certificate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let paths = crate::certs::node1_files(dir.path());
    let source = TlsSource::load("test", paths, TlsRole::Peer).expect("a TLS configuration");
    let config = ServeConfig {
        channels: Some(ChannelLimits::new(MAX_FRAME)),
        ..ServeConfig::new("test", Some(source.clone()))
    };
    let (addr, server) = start(config).await;
    let client = source.client().expect("a peer client configuration");
    let channel = Channel::dial(
        &addr.to_string(),
        Some((client.clone(), "node1".into())),
        PATIENCE,
        MAX_FRAME,
    )
    .await
    .expect("a channel over TLS");
    let who = channel
        .call("/who", Vec::new(), PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(
        String::from_utf8_lossy(&who.body),
        "tls=true client=Some(\"node1\")"
    );
    // The server's certificate must name the member called.
    let wrong = Channel::dial(
        &addr.to_string(),
        Some((client, "node2".into())),
        PATIENCE,
        MAX_FRAME,
    )
    .await;
    assert!(matches!(wrong, Err(ChannelError::Connect(_))), "{wrong:?}");
    server.abort();
}
