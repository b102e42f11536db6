//! The peer transport: what members say to each other on the peer port.
//!
//! - `wire.rs`: the paths and the messages (bincode), shared by both sides and pinned by
//!   `golden/peer.txt`;
//! - `client.rs`: calls to another member (Raft RPCs, snapshot streaming, forwarded writes,
//!   read indexes, membership changes): what each call means, over a link;
//! - `link.rs`: [`PeerLink`], what carries a call's bytes; `channel.rs` its production
//!   implementation (one persistent multiplexed connection per member, with mutual TLS),
//!   which falls back to `http.rs` (pooled HTTP/1.1 connections) for snapshot streams and
//!   members that do not take channels; `memory.rs` an in-process one for tests that run
//!   several members in one process, with dropped, delayed and partitioned messages;
//! - `server.rs`: the axum router of this node's peer port, which bounds, checks and
//!   dispatches what arrives.

mod channel;
mod client;
mod http;
mod link;
pub mod memory;
mod server;
mod wire;

pub use channel::{ChannelLink, MAX_CHANNEL_FRAME};
pub use client::{
    file_chunks, PeerClient, PeerConnection, PeerNetwork, TransportError, APPEND_TIMEOUT,
    CONNECT_TIMEOUT, MAX_APPEND_BYTES, POOL_IDLE_TIMEOUT, SNAPSHOT_CHUNK,
};
pub use http::HttpLink;
pub use link::{PeerBody, PeerLink, PeerReply};
pub use server::{
    peer_router, MAX_FORWARDS_IN_FLIGHT, MAX_PEER_BODY, MAX_SNAPSHOT_BYTES, PEER_REQUEST_TIMEOUT,
    SNAPSHOT_STALL_TIMEOUT,
};
pub use wire::{
    paths, Forwarded, Member, MembershipChange, MembershipOutcome, Peer, PeerError, SnapshotHeader,
    PEER_PROTOCOL_VERSION,
};
