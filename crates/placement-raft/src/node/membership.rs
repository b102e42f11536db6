//! Membership: the members as the log records them, adding (learner, then voter) and
//! removing members, and handing leadership over (on SIGTERM, or to a chosen voter).

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use placement_storage::{NodeId, TypeConfig};

use crate::transport::{Member, MembershipChange, MembershipOutcome};
use crate::Error;

use super::writes::Leader;
use super::{PlacementNode, HANDOVER_TIMEOUT, MEMBERSHIP_TIMEOUT};

impl PlacementNode {
    /// The current membership: every voter and learner with its addresses.
    pub fn members(&self) -> Vec<Member> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        members_of(m.membership_config.membership())
    }

    /// Adds or removes a member through the leader (this node, or forwarded to it), retrying
    /// across leader changes until [`MEMBERSHIP_TIMEOUT`]. Both changes are idempotent:
    /// adding a present voter with the same addresses or removing an absent node reports
    /// `changed: false`.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipOutcome, Error> {
        let change = &change;
        self.on_leader(
            MEMBERSHIP_TIMEOUT,
            || format!("membership change not done in {MEMBERSHIP_TIMEOUT:?}"),
            |leader, remaining| async move {
                match leader {
                    Leader::Here => self.change_membership_local(change.clone()).await,
                    Leader::At(peer) => Ok(self
                        .peers
                        .change_membership(&peer, change, remaining)
                        .await??),
                }
            },
        )
        .await
    }

    /// The leader's half of a membership change (see [`Self::change_membership`]).
    pub(crate) async fn change_membership_local(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipOutcome, Error> {
        let membership = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            if m.state != ServerState::Leader {
                return Err(Error::NotLeader {
                    leader: m.current_leader,
                    leader_api_addr: None,
                });
            }
            m.membership_config.membership().clone()
        };
        let is_voter = |id: NodeId| membership.voter_ids().any(|v| v == id);
        let changed = match change {
            MembershipChange::Add { id, node } => {
                if node.peer_addr.is_empty() || node.api_addr.is_empty() {
                    return Err(Error::Refused(format!(
                        "node {id} needs an API address and a peer address"
                    )));
                }
                match membership.get_node(&id) {
                    Some(known) if *known != node => {
                        return Err(Error::Refused(format!(
                            "node {id} is already a member with API {} and peer {}; node ids \
                             are never reused: give the new node a new id",
                            known.api_addr, known.peer_addr
                        )));
                    }
                    Some(_) if is_voter(id) => false,
                    _ => {
                        tracing::info!(node_id = id, api = %node.api_addr, peer = %node.peer_addr,
                            "adding a learner; it becomes a voter once it has caught up");
                        let add = self.raft.add_learner(id, node, true);
                        membership_result(
                            tokio::time::timeout(MEMBERSHIP_TIMEOUT, add).await,
                            "add learner",
                        )?;
                        let promote = self
                            .raft
                            .change_membership(ChangeMembers::AddVoterIds([id].into()), false);
                        membership_result(
                            tokio::time::timeout(MEMBERSHIP_TIMEOUT, promote).await,
                            "promote to voter",
                        )?;
                        tracing::info!(node_id = id, "node added as a voter");
                        true
                    }
                }
            }
            MembershipChange::Remove { id } => {
                if membership.get_node(&id).is_none() {
                    false
                } else {
                    if is_voter(id) && membership.voter_ids().all(|v| v == id) {
                        return Err(Error::Refused(format!(
                            "node {id} is the only voter; a cluster cannot remove its last voter"
                        )));
                    }
                    tracing::info!(node_id = id, "removing a member");
                    let change = if is_voter(id) {
                        ChangeMembers::RemoveVoters([id].into())
                    } else {
                        ChangeMembers::RemoveNodes([id].into())
                    };
                    // retain = false: a removed voter does not stay on as a learner.
                    let remove = self.raft.change_membership(change, false);
                    membership_result(
                        tokio::time::timeout(MEMBERSHIP_TIMEOUT, remove).await,
                        "remove member",
                    )?;
                    tracing::info!(node_id = id, "member removed");
                    true
                }
            }
        };
        Ok(MembershipOutcome {
            changed,
            members: self.members(),
        })
    }

    /// If this node leads, hands leadership to the most up-to-date other voter and waits (up
    /// to [`HANDOVER_TIMEOUT`]) until another node leads, so a planned restart costs clients
    /// a round trip instead of an election timeout. Returns whether another node leads. Call
    /// it before [`Self::shutdown`], while the peer port still serves.
    pub async fn hand_over_leadership(&self) -> bool {
        let target = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            if m.state != ServerState::Leader {
                return false;
            }
            let matched = |v: &NodeId| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(v).cloned().flatten())
                    .map(|id| id.index)
            };
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|v| *v != self.id)
                .max_by_key(|v| matched(v))
        };
        let Some(to) = target else {
            tracing::info!(node_id = self.id, "no other voter to hand leadership to");
            return false;
        };
        tracing::info!(node_id = self.id, to, "handing leadership over");
        if let Err(e) = self.raft.trigger().transfer_leader(to).await {
            tracing::warn!(error = %e, "leadership handover not started");
            return false;
        }
        let me = self.id;
        let handed = self
            .raft
            .wait(Some(HANDOVER_TIMEOUT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "another node leads",
            )
            .await
            .is_ok();
        if handed {
            tracing::info!(node_id = me, to, "leadership handed over");
        } else {
            tracing::warn!(node_id = me, to, "leadership handover timed out");
        }
        handed
    }

    /// `placementd cluster transfer-leader`: on the leader, hands leadership to voter `to`
    /// and waits up to `timeout` until `to` leads. Refused on a follower (the caller asks the
    /// leader) and for a node that is not a voter; nothing to do if `to` already leads.
    pub async fn transfer_leadership(&self, to: NodeId, timeout: Duration) -> Result<(), Error> {
        let (leader, is_voter) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let is_voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == to);
            (m.current_leader, is_voter)
        };
        if leader == Some(to) {
            return Ok(());
        }
        if !is_voter {
            return Err(Error::Refused(format!(
                "node {to} is not a voter of the cluster"
            )));
        }
        if leader != Some(self.id) {
            return Err(Error::Refused(format!(
                "node {} is not the leader (the leader is {leader:?}): ask the leader",
                self.id
            )));
        }
        tracing::info!(
            node_id = self.id,
            to,
            "transferring leadership (operator request)"
        );
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader == Some(to), "the new leader leads")
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Timeout(format!(
                    "node {to} did not become the leader within {timeout:?} ({e}); the \
                     cluster elects whichever voter is most up to date, check `cluster status`"
                ))
            })
    }
}

/// The members of `membership`, voters and learners, in id order.
pub(super) fn members_of(membership: &placement_storage::Membership) -> Vec<Member> {
    let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            api_addr: node.api_addr.clone(),
            peer_addr: node.peer_addr.clone(),
            voter: voters.contains(id),
        })
        .collect()
}

/// Maps the result of a (timed) membership call to [`Error`].
pub(super) fn membership_result<T>(
    answer: Result<
        Result<T, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
        tokio::time::error::Elapsed,
    >,
    what: &str,
) -> Result<T, Error> {
    match answer {
        Err(_) => Err(Error::Timeout(format!(
            "{what}: not done within {MEMBERSHIP_TIMEOUT:?}"
        ))),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(f.into()),
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(e),
        )))) => Err(Error::NoQuorum(format!("{what}: {e}"))),
        Ok(Err(RaftError::APIError(e))) => Err(Error::Refused(format!("{what}: {e}"))),
        Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
    }
}
