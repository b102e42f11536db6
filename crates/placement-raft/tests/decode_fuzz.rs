//! Every decoder a socket reaches, fed random bytes, valid encodings with bytes flipped or
//! cut, and valid encodings with a huge length prefix spliced in at every position: none
//! may panic, and none may allocate more than [`BOUND`] bytes.
//!
//! The bound is enforced by the global allocator of this test binary (`cap`): an allocation
//! past it fails, which aborts the process and so fails the test, instead of taking the
//! machine's memory the way a 2^60-byte length prefix did before decoding was bounded.

use std::alloc::System;

use cap::Cap;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    VoteRequest, VoteResponse,
};
use placement_raft::{
    Forwarded, MembershipChange, MembershipOutcome, PeerError, PeerNode, SnapshotHeader, TypeConfig,
};
use placement_storage::{Entry, LogId, SnapshotMeta, Vote};
use placement_types::{
    decode, encode, ApplyResult, Command, ConsumerTypeWrite, ConsumerWrite, GenerationCheck,
    LogPayload, Origin, Request, Timestamp, Uuid,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The most any decode may add to what the process holds: bincode's claim limit for inputs
/// of up to 4 KiB is 64 KiB, plus what the values legitimately hold.
const BOUND: usize = 64 << 20;

/// Decodes `bytes` as every type a peer, a client of the peer port, or the disk hands to
/// `placement_types::decode`. The results do not matter; not panicking does.
fn decode_all(bytes: &[u8]) {
    fn one<T: DeserializeOwned>(bytes: &[u8]) {
        let _ = decode::<T>(bytes);
    }
    one::<AppendEntriesRequest<TypeConfig>>(bytes);
    one::<VoteRequest<TypeConfig>>(bytes);
    one::<TransferLeaderRequest<TypeConfig>>(bytes);
    one::<Forwarded>(bytes);
    one::<MembershipChange>(bytes);
    one::<SnapshotHeader>(bytes);
    one::<()>(bytes);
    one::<Result<AppendEntriesResponse<TypeConfig>, String>>(bytes);
    one::<Result<VoteResponse<TypeConfig>, String>>(bytes);
    one::<Result<SnapshotResponse<TypeConfig>, String>>(bytes);
    one::<Result<(ApplyResult, u64), PeerError>>(bytes);
    one::<Result<u64, PeerError>>(bytes);
    one::<Result<MembershipOutcome, PeerError>>(bytes);
    one::<Entry>(bytes);
    one::<LogPayload>(bytes);
    one::<Vote>(bytes);
    one::<LogId>(bytes);
    one::<placement_types::ResourceProvider>(bytes);
    one::<placement_types::Consumer>(bytes);
}

/// Valid encodings of the peer messages, to mutate.
fn samples() -> Vec<Vec<u8>> {
    let rp = Uuid::from_u128(7);
    let request = Request {
        id: Uuid::from_u128(1),
        at: Timestamp(1_700_000_000_000_000),
        command: Command::WriteAllocations {
            consumers: vec![ConsumerWrite {
                consumer: Uuid::from_u128(2),
                project_id: "project".into(),
                user_id: "user".into(),
                generation: GenerationCheck::Expect(Some(3)),
                consumer_type: ConsumerTypeWrite::Set("INSTANCE".into()),
                allocations: vec![placement_types::Allocation {
                    provider: rp,
                    resource_class: "VCPU".into(),
                    used: 2,
                }],
            }],
        },
    };
    let entry = Entry {
        log_id: LogId::new(
            openraft::vote::RaftLeaderId::to_committed(&<openraft::type_config::alias::LeaderIdOf<
                TypeConfig,
            > as openraft::vote::RaftLeaderId>::new(
                3, 1
            )),
            10,
        ),
        payload: openraft::EntryPayload::Normal(LogPayload::V1(request.clone())),
    };
    let encoded = [
        encode(&AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(entry.log_id),
            entries: vec![entry.clone(), entry],
            leader_commit: None,
        }),
        encode(&VoteRequest::<TypeConfig>::new(Vote::new(4, 2), None)),
        encode(&Forwarded {
            request,
            origin: Origin {
                user_id: "u".into(),
                project_id: Some("p".into()),
            },
        }),
        encode(&MembershipChange::Add {
            id: 4,
            node: PeerNode {
                api_addr: "10.0.0.4:8778".into(),
                peer_addr: "10.0.0.4:8779".into(),
            },
        }),
        encode(&SnapshotHeader {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: Default::default(),
            },
            len: 1 << 20,
        }),
    ];
    encoded
        .into_iter()
        .map(|e| e.expect("samples encode"))
        .collect()
}

/// The 2^60 length prefix of the review, as bincode's varint (0xFD + u64 little-endian).
fn huge_prefix() -> Vec<u8> {
    let mut p = vec![0xFD];
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    p
}

/// Serializes the bounded sections: the limit is process-wide and tests run in threads.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` with at most [`BOUND`] bytes more than are allocated now.
fn bounded(f: impl FnOnce()) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = ALLOCATOR.allocated();
    ALLOCATOR
        .set_limit(before + BOUND)
        .expect("limit above what is allocated");
    f();
    ALLOCATOR.set_limit(usize::MAX).expect("lift the limit");
}

#[test]
fn a_huge_length_prefix_at_any_position_is_refused_within_the_bound() {
    for sample in samples() {
        for at in 0..sample.len() {
            let mut bytes = sample[..at].to_vec();
            bytes.extend(huge_prefix());
            bytes.extend_from_slice(&sample[at..]);
            bounded(|| decode_all(&bytes));
            // The review's message: the prefix and a few bytes more, 46 in all.
            bytes.truncate(at + 9);
            bytes.resize(46.max(bytes.len()), 0x41);
            bounded(|| decode_all(&bytes));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_decode_or_fail_within_the_bound(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        bounded(|| decode_all(&bytes));
    }

    #[test]
    fn mutated_messages_decode_or_fail_within_the_bound(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = samples()[which].clone();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        bounded(|| decode_all(&bytes));
        let cut = cut.index(bytes.len() + 1);
        bounded(|| decode_all(&bytes[..cut]));
    }
}
