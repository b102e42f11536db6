//! Pinned peer protocol: the bytes of every message members exchange on the peer port,
//! compared with `golden/peer.txt` (rules in `placement_types::golden`). During a rolling
//! upgrade old and new members talk to each other, so a change here needs a
//! [`PEER_PROTOCOL_VERSION`] bump and a build that still reads the old messages first.
//! The Command encodings inside forwarded writes and log entries are pinned by
//! placement-storage's `golden/formats.txt`.

use std::collections::BTreeMap;

use openraft::entry::RaftEntry;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, TransferLeaderRequest, VoteRequest, VoteResponse,
};
use placement_storage::{Entry, LogId, Membership, PeerNode, SnapshotMeta, StoredMembership};
use placement_types::golden::encoded as enc;
use placement_types::{
    Command, DomainError, ErrorCode, LogPayload, Origin, Outcome, Request, Timestamp, Uuid,
};

use crate::transport::{
    Forwarded, Member, MembershipChange, MembershipOutcome, PeerError, SnapshotHeader,
    PEER_PROTOCOL_VERSION,
};
use crate::TypeConfig;

const P: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

fn log_id(index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(3, 2, index)
}

fn vote() -> placement_storage::Vote {
    placement_storage::Vote::new_committed(3, 2)
}

fn request() -> Request {
    Request {
        id: P,
        at: Timestamp(1_764_979_200_000_000),
        command: Command::DeleteAllocations { consumer: P },
    }
}

fn node(n: u8) -> PeerNode {
    PeerNode {
        api_addr: format!("10.0.0.{n}:8778"),
        peer_addr: format!("10.0.0.{n}:8779"),
    }
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let forwarded = Forwarded {
        request: request(),
        origin: Origin {
            user_id: "user".into(),
            project_id: Some("project".into()),
        },
    };
    let ok: Result<(placement_types::ApplyResult, u64), PeerError> = Ok((Ok(Outcome::Done), 42));
    let refused: Result<(placement_types::ApplyResult, u64), PeerError> = Ok((
        Err(DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            "consumer generation conflict",
        )),
        43,
    ));
    let not_leader: Result<(placement_types::ApplyResult, u64), PeerError> =
        Err(PeerError::NotLeader { leader: Some(2) });
    let batch_answer: Result<Vec<_>, PeerError> =
        Ok(vec![ok.clone(), refused.clone(), not_leader.clone()]);
    let membership = Membership::new(
        vec![[1u64, 2].into()],
        BTreeMap::from([(1u64, node(1)), (2u64, node(2))]),
    )
    .expect("valid membership");
    let append = AppendEntriesRequest::<TypeConfig> {
        vote: vote(),
        prev_log_id: Some(log_id(8)),
        entries: vec![Entry::new_normal(log_id(9), LogPayload::V1(request()))],
        leader_commit: Some(log_id(8)),
    };
    let header = SnapshotHeader {
        vote: vote(),
        meta: SnapshotMeta {
            last_log_id: Some(log_id(11)),
            last_membership: StoredMembership::new(Some(log_id(11)), membership),
        },
        len: 4096,
    };
    let read_index: Result<u64, PeerError> = Ok(42);
    vec![
        ("forward.write".into(), enc(&forwarded)),
        ("forward.writes".into(), enc(&&[&forwarded, &forwarded][..])),
        ("forward.answer.ok".into(), enc(&ok)),
        ("forward.answer.refused".into(), enc(&refused)),
        ("forward.answer.not_leader".into(), enc(&not_leader)),
        (
            "forward.answer.unavailable".into(),
            enc(&Err::<u64, _>(PeerError::Unavailable("no quorum".into()))),
        ),
        ("forward.writes.answer".into(), enc(&batch_answer)),
        ("read_index.request".into(), enc(&())),
        ("read_index.answer".into(), enc(&read_index)),
        (
            "membership.add".into(),
            enc(&MembershipChange::Add {
                id: 4,
                node: node(4),
            }),
        ),
        (
            "membership.remove".into(),
            enc(&MembershipChange::Remove { id: 4 }),
        ),
        (
            "membership.outcome".into(),
            enc(&Ok::<_, PeerError>(MembershipOutcome {
                changed: true,
                members: vec![Member {
                    id: 1,
                    api_addr: "10.0.0.1:8778".into(),
                    peer_addr: "10.0.0.1:8779".into(),
                    voter: true,
                }],
            })),
        ),
        (
            "raft.vote.request".into(),
            enc(&VoteRequest::<TypeConfig>::new(vote(), Some(log_id(9)))),
        ),
        (
            "raft.vote.response".into(),
            enc(&VoteResponse::<TypeConfig>::new(
                vote(),
                Some(log_id(9)),
                true,
            )),
        ),
        ("raft.append.request".into(), enc(&append)),
        (
            "raft.append.response.success".into(),
            enc(&AppendEntriesResponse::<TypeConfig>::Success),
        ),
        (
            "raft.append.response.higher_vote".into(),
            enc(&AppendEntriesResponse::<TypeConfig>::HigherVote(vote())),
        ),
        (
            "raft.transfer_leader.request".into(),
            enc(&TransferLeaderRequest::<TypeConfig>::new(
                vote(),
                3,
                Some(log_id(9)),
            )),
        ),
        ("snapshot.header".into(), enc(&header)),
    ]
}

#[test]
fn every_peer_message_matches_its_golden_bytes() {
    let path = placement_testkit::crate_dir!().join("golden/peer.txt");
    let version = format!("peer protocol {PEER_PROTOCOL_VERSION}");
    if let Err(e) = placement_types::golden::check(&path, &version, &samples()) {
        panic!("{e}");
    }
}
