//! [`ChannelLink`]: the production [`PeerLink`]. Calls to a member travel over one
//! persistent, multiplexed [`Channel`] (`placement_net::channel`) per member; snapshot
//! streams, and every call to a member that does not take channels (a version before them,
//! during a rolling upgrade), go over HTTP ([`HttpLink`]).
//!
//! # Why
//! A leader under write load calls each follower hundreds of times a second (heartbeats,
//! appends), and a follower behind a round-robin balancer forwards batches of writes and
//! asks for read indexes as often. Over HTTP/1.1 each of those calls is a pooled request;
//! on a channel it is a frame, and frames queued together share a write. The calls mean
//! the same either way: the member's peer router serves both.
//!
//! # Channels
//! - One per member, dialled by the first call that needs it; concurrent calls wait for
//!   that dial (at most [`CONNECT_TIMEOUT`]) rather than dialling their own.
//! - Replaced when it broke, when the member's address changed, when this node's
//!   certificates were reloaded (as the HTTP client is rebuilt), and when it has been idle
//!   for [`CHANNEL_REUSE_IDLE`], well before the member would close it.
//! - With TLS, the member is called as `node<ID>` and must present a certificate naming
//!   it, exactly as over HTTP; this node presents its own.
//! - A member that answers the channel preamble with anything else is called over HTTP
//!   for [`UNSUPPORTED_RETRY`] before a channel is tried again.
//!
//! Errors keep the transport's meaning: no connection is [`TransportError::Connect`]
//! (openraft backs off), a call that broke off is [`TransportError::Call`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use placement_net::{Channel, ChannelError, TlsSource};
use placement_storage::NodeId;
use tokio::time::Instant;

use super::client::{TransportError, CONNECT_TIMEOUT};
use super::http::HttpLink;
use super::link::{PeerBody, PeerLink, PeerReply};
use super::wire::Peer;

/// The largest channel frame: a peer body and the frame's own few bytes (and the path).
pub const MAX_CHANNEL_FRAME: usize = crate::MAX_PEER_BODY + 512;

/// A channel unused for this long is replaced rather than reused: the serving side closes
/// it after `placement_net::channel::DEFAULT_IDLE_TIMEOUT` (60 s).
pub const CHANNEL_REUSE_IDLE: Duration = Duration::from_secs(30);

/// How long a member that does not take channels is called over HTTP before a channel is
/// tried again (it may have been upgraded).
pub const UNSUPPORTED_RETRY: Duration = Duration::from_secs(60);

/// The channel to one member, or why there is none.
#[derive(Debug, Default)]
struct Slot {
    open: Option<Open>,
    /// Calls go over HTTP until then.
    unsupported_until: Option<Instant>,
}

#[derive(Debug)]
struct Open {
    channel: Arc<Channel>,
    addr: String,
    tls_generation: u64,
    last_used: Instant,
}

#[derive(Debug)]
struct Inner {
    http: HttpLink,
    tls: Option<Arc<TlsSource>>,
    slots: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// Peer calls over channels, HTTP where a channel cannot go (the module doc).
#[derive(Debug, Clone)]
pub struct ChannelLink {
    inner: Arc<Inner>,
}

impl ChannelLink {
    /// A link that calls members over TLS when `tls` (the peer port's configuration) is
    /// given, in plaintext otherwise.
    pub fn new(tls: Option<Arc<TlsSource>>) -> Result<Self, crate::Error> {
        let http = HttpLink::new(tls.clone())?;
        Ok(ChannelLink {
            inner: Arc::new(Inner {
                http,
                tls,
                slots: Mutex::default(),
            }),
        })
    }
}

impl Inner {
    fn slot(&self, id: NodeId) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default()
            .clone()
    }

    fn tls_generation(&self) -> u64 {
        self.tls.as_ref().map_or(0, |t| t.generation())
    }

    /// The channel to `peer`: the open one if it is still good, else a new one. `None`:
    /// the member does not take channels; call it over HTTP.
    async fn channel(
        &self,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<Option<Arc<Channel>>, TransportError> {
        let slot = self.slot(peer.id);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if slot.unsupported_until.is_some_and(|until| now < until) {
            return Ok(None);
        }
        let generation = self.tls_generation();
        if let Some(open) = &mut slot.open {
            let good = !open.channel.is_closed()
                && open.addr == peer.addr
                && open.tls_generation == generation
                && now.duration_since(open.last_used) < CHANNEL_REUSE_IDLE;
            if good {
                open.last_used = now;
                return Ok(Some(open.channel.clone()));
            }
        }
        slot.open = None;
        let connect = |message: String| TransportError::Connect {
            addr: peer.addr.clone(),
            message,
        };
        let tls = match &self.tls {
            None => None,
            Some(tls) => {
                let config = tls.client().ok_or_else(|| {
                    connect("the peer TLS configuration has no client side".into())
                })?;
                Some((config, placement_net::node_name(peer.id)))
            }
        };
        let timeout = CONNECT_TIMEOUT.min(deadline.saturating_duration_since(now));
        match Channel::dial(&peer.addr, tls, timeout, MAX_CHANNEL_FRAME).await {
            Ok(channel) => {
                placement_metrics::catalog::PEER_CHANNELS_OPENED.inc();
                let channel = Arc::new(channel);
                slot.open = Some(Open {
                    channel: channel.clone(),
                    addr: peer.addr.clone(),
                    tls_generation: generation,
                    last_used: Instant::now(),
                });
                Ok(Some(channel))
            }
            Err(ChannelError::Unsupported) => {
                tracing::info!(peer = peer.id, addr = %peer.addr,
                    "member does not take peer channels; calling it over HTTP");
                slot.unsupported_until = Some(now + UNSUPPORTED_RETRY);
                Ok(None)
            }
            Err(e) => Err(connect(e.to_string())),
        }
    }
}

impl PeerLink for ChannelLink {
    fn post(
        &self,
        peer: &Peer,
        path: &'static str,
        body: PeerBody,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<PeerReply, TransportError>> {
        let bytes = match body {
            PeerBody::Full(bytes) => bytes,
            stream @ PeerBody::Stream(_) => {
                return self.inner.http.post(peer, path, stream, timeout)
            }
        };
        let (inner, peer) = (self.inner.clone(), peer.clone());
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            let Some(channel) = inner.channel(&peer, deadline).await? else {
                placement_metrics::catalog::PEER_HTTP_FALLBACKS.inc();
                let left = deadline.saturating_duration_since(Instant::now());
                return inner
                    .http
                    .post(&peer, path, PeerBody::Full(bytes), left)
                    .await;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match channel.call(path, bytes, left).await {
                Ok(answer) => Ok(PeerReply {
                    status: answer.status,
                    body: answer.body,
                }),
                Err(e) => Err(TransportError::Call {
                    addr: peer.addr.clone(),
                    message: e.to_string(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::routing::post;
    use axum::Router;
    use placement_net::{ChannelLimits, ServeConfig};
    use tokio::net::TcpListener;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// A peer port on `addr` with one route that echoes its body, taking channels or not.
    async fn port(addr: &str, channels: bool) -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind(addr).await.expect("loopback");
        let addr = listener.local_addr().expect("bound").to_string();
        let app = Router::new().route(super::super::paths::VOTE, post(|b: Bytes| async move { b }));
        let config = ServeConfig {
            channels: channels.then(|| ChannelLimits::new(MAX_CHANNEL_FRAME)),
            ..ServeConfig::new("peer", None)
        };
        let task = tokio::spawn(placement_net::serve(
            listener,
            app,
            config,
            std::future::pending(),
        ));
        (addr, task)
    }

    async fn call(link: &ChannelLink, peer: &Peer, body: &[u8]) -> PeerReply {
        link.post(
            peer,
            super::super::paths::VOTE,
            PeerBody::Full(body.to_vec()),
            PATIENCE,
        )
        .await
        .expect("an answer")
    }

    async fn state(link: &ChannelLink, id: NodeId) -> (bool, bool) {
        let slot = link.inner.slot(id);
        let slot = slot.lock().await;
        (slot.open.is_some(), slot.unsupported_until.is_some())
    }

    #[tokio::test]
    async fn members_are_called_over_channels_and_older_ones_over_http() {
        let link = ChannelLink::new(None).expect("a link");
        let (new_addr, new_port) = port("127.0.0.1:0", true).await;
        let (old_addr, old_port) = port("127.0.0.1:0", false).await;
        let new = Peer {
            id: 2,
            addr: new_addr,
        };
        let old = Peer {
            id: 3,
            addr: old_addr,
        };
        for round in 0..3u8 {
            assert_eq!(call(&link, &new, &[round]).await.body, vec![round]);
            assert_eq!(call(&link, &old, &[round]).await.body, vec![round]);
        }
        assert_eq!(
            state(&link, 2).await,
            (true, false),
            "node 2 over a channel"
        );
        assert_eq!(state(&link, 3).await, (false, true), "node 3 over HTTP");

        // A member that went away: the broken channel is replaced when it is back.
        new_port.abort();
        let _ = new_port.await;
        let gone = link
            .post(
                &new,
                super::super::paths::VOTE,
                PeerBody::Full(vec![1]),
                PATIENCE,
            )
            .await;
        assert!(gone.is_err(), "{gone:?}");
        let (_, back) = port(&new.addr, true).await;
        let mut answered = None;
        for _ in 0..50 {
            let reply = link
                .post(
                    &new,
                    super::super::paths::VOTE,
                    PeerBody::Full(vec![9]),
                    PATIENCE,
                )
                .await;
            if let Ok(reply) = reply {
                answered = Some(reply.body);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(answered, Some(vec![9]));
        back.abort();
        old_port.abort();
    }
}
