//! The Raft network of a node that has no peer transport yet.
//!
//! A one-node cluster never sends a Raft RPC (a node never opens a client to itself), so the
//! factory only has to exist. Every RPC answers `Unreachable`, which openraft treats as "back
//! off and retry later" — the right behaviour should a membership ever name another node
//! before the peer transport exists. The peer transport (bincode over the peer port) replaces
//! this module in the multi-node step; its snapshot type is already
//! [`placement_storage::SnapshotFile`].

use std::future::Future;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use placement_storage::{NodeId, PeerNode, SnapshotFile, TypeConfig, Vote};

type Snapshot = placement_storage::Snapshot;

/// Creates [`NoPeer`] clients.
#[derive(Debug, Default, Clone)]
pub struct NoPeerNetwork;

/// A client for a peer that cannot be reached (there is no transport).
#[derive(Debug)]
pub struct NoPeer {
    target: NodeId,
}

impl NoPeer {
    fn unreachable(&self) -> Unreachable<TypeConfig> {
        Unreachable::from_string(format!(
            "node {} unreachable: this build has no peer transport",
            self.target
        ))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoPeerNetwork {
    type Network = NoPeer;

    async fn new_client(&mut self, target: NodeId, _node: &PeerNode) -> NoPeer {
        NoPeer { target }
    }
}

impl RaftNetworkV2<TypeConfig> for NoPeer {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn pre_vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        // Not a grant: an unreachable peer must never count towards a pre-vote quorum.
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(self.unreachable()))
    }
}
