//! [`PeerLink`]: how the bytes of one peer call travel, below everything that gives them a
//! meaning.
//!
//! A peer call is a POST of a body to a path on another member's peer port, answered with a
//! status and a body. What the messages mean — encoding, bounds on answers, error mapping,
//! snapshot framing, batching — is the same whatever carries them, and lives in
//! [`PeerClient`](super::PeerClient). Only the carrying differs:
//! - [`ChannelLink`](super::channel::ChannelLink): a persistent multiplexed channel per
//!   member, with mutual TLS, in production; it sends snapshot streams, and calls to members
//!   that do not take channels, over
//! - [`HttpLink`](super::http::HttpLink): HTTP/1.1 over TCP, with mutual TLS;
//! - [`MemoryNetwork`](super::memory::MemoryNetwork): the target node's own peer router
//!   called in-process, with dropped, delayed and partitioned messages on demand, so that
//!   several nodes run in one test process.
//!
//! So an in-process test exercises the same client, the same router and the same guards as a
//! deployed cluster; it swaps only sockets for function calls.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::client::TransportError;
use super::wire::Peer;

/// The body of a peer call.
pub enum PeerBody {
    /// A whole encoded message.
    Full(Vec<u8>),
    /// A stream of chunks (a snapshot: the sender never holds the whole of it).
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
}

impl fmt::Debug for PeerBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerBody::Full(bytes) => write!(f, "PeerBody::Full({} bytes)", bytes.len()),
            PeerBody::Stream(_) => f.write_str("PeerBody::Stream"),
        }
    }
}

/// The answer to a peer call: its HTTP status and its body, which a link reads up to
/// [`MAX_PEER_BODY`](crate::MAX_PEER_BODY) bytes and no further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Carries one peer call to a member and brings back its answer.
///
/// A link reports a call that never reached the member (nothing listening, no route) as
/// [`TransportError::Connect`], and one that reached it but broke off (a timeout, a reset, an
/// answer over the size bound) as [`TransportError::Call`]: openraft backs off after the
/// first and retries at once after the second. The whole call, answer included, must finish
/// within `timeout`.
pub trait PeerLink: Send + Sync + fmt::Debug + 'static {
    /// POSTs `body` to `path` on `peer`'s peer port.
    fn post(
        &self,
        peer: &Peer,
        path: &'static str,
        body: PeerBody,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<PeerReply, TransportError>>;
}
