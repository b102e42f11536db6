//! The peer transport: what members say to each other on the peer port.
//!
//! - `wire.rs`: the paths and the messages (bincode), shared by both sides and pinned by
//!   `golden/peer.txt`;
//! - `client.rs`: calls to another member (Raft RPCs, snapshot streaming, forwarded writes,
//!   read indexes, membership changes) over pooled HTTP/1.1 connections, with mutual TLS;
//! - `server.rs`: the axum router of this node's peer port, which bounds, checks and
//!   dispatches what arrives.

mod client;
mod server;
mod wire;

pub use client::{
    file_chunks, PeerClient, PeerConnection, PeerNetwork, TransportError, APPEND_TIMEOUT,
    CONNECT_TIMEOUT, MAX_APPEND_BYTES, POOL_IDLE_TIMEOUT, SNAPSHOT_CHUNK,
};
pub use server::{
    peer_router, MAX_FORWARDS_IN_FLIGHT, MAX_PEER_BODY, MAX_SNAPSHOT_BYTES, PEER_REQUEST_TIMEOUT,
    SNAPSHOT_STALL_TIMEOUT,
};
pub use wire::{
    paths, Forwarded, Member, MembershipChange, MembershipOutcome, Peer, PeerError, SnapshotHeader,
    PEER_PROTOCOL_VERSION,
};
