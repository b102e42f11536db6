//! What the peer port checks before openraft (or the leader's write path) sees a message:
//! who sent it, and whether its numbers are sane.
//!
//! # Who may say what
//! On a port with TLS every connection carries a certificate from the cluster CA, and its
//! identity ([`placement_net::Identity`]) is the sender. Then:
//!
//! | message | accepted from |
//! |---|---|
//! | vote, pre-vote | a voter of this node's membership (anyone certified as a node while this node has no membership yet: a new cluster's first election reaches nodes before they learn it) |
//! | append entries, snapshot | any node, naming itself as the leader in the message |
//! | transfer leadership | a member, naming itself as the leader in the message |
//! | forwarded write, read index, membership change | a member |
//! | admin API | `admin`, or a member |
//!
//! and a node may only speak for itself: the leader or candidate id a Raft message names must
//! be the node its certificate names. Appends and snapshots are not limited to members
//! because membership is learnt from the log: a follower that has not yet received the entry
//! that added the current leader must still accept that leader's appends, or it could never
//! catch up. That opens nothing to a removed member: its votes and pre-votes are refused, so
//! it cannot become leader (pre-vote keeps it from raising its term, `config.rs`), and only a
//! leader's appends with the current term are accepted by Raft.
//!
//! Without TLS (a development setup; the binary warns loudly) there is no identity, so only
//! the membership rules are applied, to the ids the messages claim.
//!
//! # Sane numbers
//! Terms above [`MAX_TERM`] and log indexes above [`MAX_LOG_INDEX`] are refused before
//! openraft sees them, in requests and in answers: a vote with term 2^64−1, once granted and
//! stored, made the next election overflow the term and panic every node, again at every
//! restart. The bounds are far beyond what a cluster reaches (2^40 elections; 2^62 entries)
//! and far below overflow. An append's entries must also follow its `prev_log_id` one index
//! at a time, with terms no greater than the leader's.

use placement_net::{ConnInfo, Identity};
use placement_storage::{LogId, NodeId, Vote};

use openraft::entry::RaftEntry;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use openraft::vote::RaftLeaderId;

use crate::TypeConfig;

/// The largest term a message may carry.
pub const MAX_TERM: u64 = 1 << 40;

/// The largest log index a message may carry.
pub const MAX_LOG_INDEX: u64 = 1 << 62;

/// Why a peer message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender may not send it (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Its content is not sane (400).
    #[error("refused: {0}")]
    Insane(String),
}

fn insane(message: String) -> Refusal {
    Refusal::Insane(message)
}

/// Who sent a request, as far as its connection proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A plaintext port: nothing is proved.
    Unauthenticated,
    /// A TLS client with this certificate identity.
    Certified(Identity),
}

impl Sender {
    /// The sender of a request that came with `conn` (absent in in-process tests).
    pub fn of(conn: Option<&ConnInfo>) -> Self {
        match conn.and_then(|c| c.client.clone()) {
            Some(identity) => Sender::Certified(identity),
            None => Sender::Unauthenticated,
        }
    }

    /// Checks that the sender may speak for node `claimed`: a certificate must name that node
    /// (on a plaintext port the claim stands as it is).
    pub fn speaks_for(&self, claimed: NodeId) -> Result<(), Refusal> {
        match self {
            Sender::Unauthenticated => Ok(()),
            Sender::Certified(Identity::Node(id)) if *id == claimed => Ok(()),
            Sender::Certified(other) => Err(Refusal::Forbidden(format!(
                "a message of node {claimed} sent with the certificate of {other}"
            ))),
        }
    }

    /// The node the certificate names, if any (`None` on a plaintext port).
    pub fn node(&self) -> Result<Option<NodeId>, Refusal> {
        match self {
            Sender::Unauthenticated => Ok(None),
            Sender::Certified(Identity::Node(id)) => Ok(Some(*id)),
            Sender::Certified(other) => Err(Refusal::Forbidden(format!(
                "{other} is not a node of this cluster"
            ))),
        }
    }
}

fn sane_term(term: u64, what: &str) -> Result<(), Refusal> {
    if term > MAX_TERM {
        return Err(insane(format!("{what}: term {term} is beyond {MAX_TERM}")));
    }
    Ok(())
}

/// A vote's term is sane.
pub fn sane_vote(vote: &Vote, what: &str) -> Result<(), Refusal> {
    sane_term(vote.leader_id().term(), what)
}

/// A log id's term and index are sane.
pub fn sane_log_id(id: &LogId, what: &str) -> Result<(), Refusal> {
    sane_term(id.committed_leader_id().term(), what)?;
    if id.index() > MAX_LOG_INDEX {
        return Err(insane(format!(
            "{what}: index {} is beyond {MAX_LOG_INDEX}",
            id.index()
        )));
    }
    Ok(())
}

fn sane_opt_log_id(id: Option<&LogId>, what: &str) -> Result<(), Refusal> {
    id.map_or(Ok(()), |id| sane_log_id(id, what))
}

/// The node a vote names (the candidate, or the leader).
pub fn voter_of(vote: &Vote) -> NodeId {
    *vote.leader_id().node_id()
}

/// Checks a vote or pre-vote request's numbers; returns the candidate.
pub fn vote_request(rpc: &VoteRequest<TypeConfig>) -> Result<NodeId, Refusal> {
    sane_vote(&rpc.vote, "vote")?;
    sane_opt_log_id(rpc.last_log_id.as_ref(), "last log id")?;
    Ok(voter_of(&rpc.vote))
}

/// Checks an append's numbers: sane, its entries consecutive after `prev_log_id`, none of
/// a later term than the leader's. Returns the leader.
pub fn append_request(rpc: &AppendEntriesRequest<TypeConfig>) -> Result<NodeId, Refusal> {
    sane_vote(&rpc.vote, "append vote")?;
    sane_opt_log_id(rpc.prev_log_id.as_ref(), "prev log id")?;
    sane_opt_log_id(rpc.leader_commit.as_ref(), "leader commit")?;
    let leader_term = rpc.vote.leader_id().term();
    let first = rpc.prev_log_id.as_ref().map_or(0, |id| id.index() + 1);
    for (next, entry) in (first..).zip(&rpc.entries) {
        let id = entry.log_id();
        sane_log_id(&id, "entry")?;
        if id.index() != next {
            return Err(insane(format!(
                "entry {} where entry {next} was due",
                id.index()
            )));
        }
        if id.committed_leader_id().term() > leader_term {
            return Err(insane(format!(
                "entry {} of term {} from a leader of term {leader_term}",
                id.index(),
                id.committed_leader_id().term()
            )));
        }
    }
    Ok(voter_of(&rpc.vote))
}

/// Checks a leadership transfer's numbers; returns the leader that asks.
pub fn transfer_request(rpc: &TransferLeaderRequest<TypeConfig>) -> Result<NodeId, Refusal> {
    sane_vote(rpc.from_leader(), "transfer vote")?;
    sane_opt_log_id(rpc.last_log_id(), "transfer last log id")?;
    Ok(voter_of(rpc.from_leader()))
}

/// Checks a snapshot's vote and metadata; returns the leader that sends it.
pub fn snapshot_request(
    vote: &Vote,
    meta: &placement_storage::SnapshotMeta,
) -> Result<NodeId, Refusal> {
    sane_vote(vote, "snapshot vote")?;
    sane_opt_log_id(meta.last_log_id.as_ref(), "snapshot last log id")?;
    Ok(voter_of(vote))
}

/// Who this node's current membership names, for the checks above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// Voters, of every configuration of a joint membership.
    pub voters: std::collections::BTreeSet<NodeId>,
    /// Voters and learners.
    pub members: std::collections::BTreeSet<NodeId>,
}

impl MembershipView {
    /// Whether this node has a membership at all (a fresh node waiting to be contacted has
    /// none).
    pub fn known(&self) -> bool {
        !self.members.is_empty()
    }

    /// A candidate for an election must be a voter (any node, while none is known).
    pub fn admit_candidate(&self, id: NodeId) -> Result<(), Refusal> {
        if !self.known() || self.voters.contains(&id) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "node {id} is not a voter of this cluster"
            )))
        }
    }

    /// A forwarding node or a leader handing over must be a member.
    pub fn admit_member(&self, id: NodeId) -> Result<(), Refusal> {
        if self.members.contains(&id) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "node {id} is not a member of this cluster"
            )))
        }
    }

    /// The admin API: an operator (`admin`), or a member node; anyone on a plaintext port.
    pub fn admit_admin(&self, sender: &Sender) -> Result<(), Refusal> {
        match sender {
            Sender::Unauthenticated | Sender::Certified(Identity::Admin) => Ok(()),
            Sender::Certified(Identity::Node(id)) => self.admit_member(*id),
            Sender::Certified(other) => Err(Refusal::Forbidden(format!(
                "{other} may not use the admin API"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(voters: &[u64], learners: &[u64]) -> MembershipView {
        MembershipView {
            voters: voters.iter().copied().collect(),
            members: voters.iter().chain(learners).copied().collect(),
        }
    }

    #[test]
    fn only_voters_campaign_and_only_members_forward() {
        let v = view(&[1, 2, 3], &[4]);
        assert!(v.admit_candidate(2).is_ok());
        assert!(v.admit_candidate(4).is_err());
        assert!(v.admit_candidate(9).is_err());
        assert!(v.admit_member(4).is_ok());
        assert!(v.admit_member(9).is_err());
        // A fresh node knows no membership: the first election must reach it.
        assert!(view(&[], &[]).admit_candidate(9).is_ok());
        assert!(view(&[], &[]).admit_member(9).is_err());
    }

    #[test]
    fn a_certificate_speaks_only_for_its_node() {
        let node2 = Sender::Certified(Identity::Node(2));
        assert!(node2.speaks_for(2).is_ok());
        assert!(node2.speaks_for(3).is_err());
        assert!(Sender::Certified(Identity::Admin).speaks_for(1).is_err());
        assert!(Sender::Unauthenticated.speaks_for(7).is_ok());
        let v = view(&[1, 2], &[]);
        assert!(v.admit_admin(&Sender::Certified(Identity::Admin)).is_ok());
        assert!(v.admit_admin(&node2).is_ok());
        assert!(v
            .admit_admin(&Sender::Certified(Identity::Node(5)))
            .is_err());
        assert!(v
            .admit_admin(&Sender::Certified(Identity::Other("x".into())))
            .is_err());
    }

    #[test]
    fn terms_and_indexes_beyond_the_bounds_are_refused() {
        use openraft::vote::RaftLeaderId;
        let log_id = |term: u64, index: u64| {
            let leader = <openraft::type_config::alias::LeaderIdOf<TypeConfig>>::new(term, 1);
            LogId::new(leader.to_committed(), index)
        };
        assert!(sane_vote(&Vote::new(MAX_TERM, 1), "v").is_ok());
        assert!(sane_vote(&Vote::new(u64::MAX, 1), "v").is_err());
        assert!(sane_log_id(&log_id(3, MAX_LOG_INDEX), "l").is_ok());
        assert!(sane_log_id(&log_id(3, MAX_LOG_INDEX + 1), "l").is_err());
        assert!(sane_log_id(&log_id(u64::MAX, 1), "l").is_err());
        let forged = VoteRequest::<TypeConfig>::new(Vote::new(u64::MAX, 2), None);
        assert!(matches!(vote_request(&forged), Err(Refusal::Insane(_))));
        let fine = VoteRequest::<TypeConfig>::new(Vote::new(7, 2), Some(log_id(6, 40)));
        assert_eq!(vote_request(&fine), Ok(2));
    }

    #[test]
    fn append_entries_must_follow_their_previous_entry() {
        use openraft::vote::RaftLeaderId;
        let log_id = |term: u64, index: u64| {
            let leader = <openraft::type_config::alias::LeaderIdOf<TypeConfig>>::new(term, 1);
            LogId::new(leader.to_committed(), index)
        };
        let entry = |term: u64, index: u64| placement_storage::Entry {
            log_id: log_id(term, index),
            payload: openraft::EntryPayload::Blank,
        };
        let append =
            |prev: Option<LogId>, entries: Vec<placement_storage::Entry>| AppendEntriesRequest::<
                TypeConfig,
            > {
                vote: Vote::new_committed(5, 1),
                prev_log_id: prev,
                entries,
                leader_commit: None,
            };
        assert_eq!(
            append_request(&append(None, vec![entry(1, 0), entry(5, 1)])),
            Ok(1)
        );
        assert_eq!(
            append_request(&append(Some(log_id(4, 9)), vec![entry(5, 10)])),
            Ok(1)
        );
        // A gap, a repeat, a later term than the leader's.
        assert!(append_request(&append(Some(log_id(4, 9)), vec![entry(5, 11)])).is_err());
        assert!(append_request(&append(None, vec![entry(1, 0), entry(1, 0)])).is_err());
        assert!(append_request(&append(None, vec![entry(6, 0)])).is_err());
    }
}
