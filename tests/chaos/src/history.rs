//! The recorded history of a chaos run: what every client asked, when, and what it got.
//!
//! Times are nanoseconds on one monotonic clock (the driver's start), so "A completed
//! before B was invoked" is `a.complete_ns < b.invoke_ns` whichever client or node ran them.
//! An operation's [`Outcome`] is what the client can know: `Ok` (the server acknowledged it),
//! `Fail` (a definite refusal: a 4xx the server answers only when it changed nothing), or
//! `Unknown` (timeout, reset connection, 5xx: the write may or may not have taken effect, at
//! any time after it was invoked, even after the client gave up).
//!
//! A consumer's allocations are a [`Value`]: `"<provider uuid>/<resource class>" -> amount`,
//! ordered, so two equal allocation sets are equal values. An absent consumer (never written,
//! deleted, or its allocations emptied) reads as [`Seen::absent`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Canonical allocations of one consumer: `"<provider>/<class>" -> amount`.
pub type Value = BTreeMap<String, u64>;

/// What the client learnt about an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Acknowledged (2xx).
    Ok,
    /// Definitely refused, nothing changed: `status` and Placement's error `code`
    /// (`placement.concurrent_update` for a consumer generation conflict).
    Fail { status: u16, code: Option<String> },
    /// Timeout, connection error or 5xx: may have taken effect, at any time after invoke.
    Unknown { why: String },
}

/// The Placement error code of a consumer generation conflict.
pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";

/// One consumer's part of a write (PUT /allocations/{c} has one, POST /allocations several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyWrite {
    pub consumer: Uuid,
    /// `consumer_generation` sent: `None` = null (the consumer must not exist).
    pub expected_generation: Option<u64>,
    /// The allocations written (never empty: removal is a [`OpKind::Delete`]).
    pub value: Value,
}

/// A consumer as read: `generation: None` and an empty value when it does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub generation: Option<u64>,
    pub value: Value,
}

impl Seen {
    /// The reading of a consumer that does not exist.
    pub fn absent() -> Seen {
        Seen {
            generation: None,
            value: Value::new(),
        }
    }
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum OpKind {
    /// PUT /allocations/{c} (one write) or POST /allocations (several, atomically).
    Write { writes: Vec<KeyWrite> },
    /// DELETE /allocations/{c}: `Ok` means it existed, `Fail{404}` that it did not.
    Delete { consumer: Uuid },
    /// GET /allocations/{c}; `seen` is set when the outcome is `Ok`.
    ReadConsumer { consumer: Uuid, seen: Option<Seen> },
    /// GET /resource_providers/{p}/usages, or GET /resource_providers/{p} (then `usages`
    /// is `None`); `generation` is set when the outcome is `Ok`.
    ReadProvider {
        provider: Uuid,
        generation: Option<u64>,
        usages: Option<BTreeMap<String, u64>>,
    },
}

/// One request, from invoke to completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Unique, in invoke order.
    pub id: u64,
    /// The client (one task, one request at a time).
    pub client: u32,
    /// The node id the request was sent to.
    pub node: u64,
    pub invoke_ns: u64,
    /// When the client got the answer or gave up (for `Unknown`, the effect may be later).
    pub complete_ns: u64,
    #[serde(flatten)]
    pub kind: OpKind,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One node's state after healing and convergence, read with every other node up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFinal {
    pub node: u64,
    /// Every consumer the workload ever touched, as this node reads it.
    pub consumers: BTreeMap<Uuid, Seen>,
    /// Per provider: generation, usages, and the sum per class of
    /// GET /resource_providers/{p}/allocations.
    pub providers: BTreeMap<Uuid, ProviderFinal>,
    /// `placementd cluster digest` of this member (hex), if it answered.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFinal {
    pub generation: u64,
    pub usages: BTreeMap<String, u64>,
    pub allocated: BTreeMap<String, u64>,
}

/// Everything the checkers need.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// Capacity per provider and class (total - reserved, allocation ratio 1).
    pub capacity: BTreeMap<Uuid, BTreeMap<String, u64>>,
    /// Consumers written once and never touched again (the "set" of the lost-write check).
    pub one_shot: BTreeSet<Uuid>,
    pub ops: Vec<Op>,
    /// Final state of every member after healing; its reads are invoked after every op
    /// completed.
    pub finals: Vec<NodeFinal>,
}
