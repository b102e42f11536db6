//! Wire and domain types of placementd: the records the state machine stores, the
//! [`Command`]s that travel through the Raft log, and the [`Outcome`]s and [`DomainError`]s
//! that applying a command produces.
//!
//! Everything here is plain data. The rules that give it meaning (capacity, generations,
//! consumers) live in `placement-core`; how it is stored lives in `placement-storage`.
//!
//! # Invariants every producer of a [`Request`] must keep
//! - A command is *syntactically* valid before it is proposed (schemas, microversion rules,
//!   name formats). `apply` checks the state-independent rules again before anything else
//!   (`placement-core`'s `apply/validate.rs`), so that a wrong or forged proposal is refused
//!   alike on every node rather than stored; a valid producer never meets those refusals.
//! - Everything not derivable from the log (the time, generated UUIDs, the request id) is
//!   stamped into the [`Request`] by the proposer, so `apply` is deterministic.
//!
//! # Encoding
//! Log entries are [`LogPayload`]s encoded with bincode ([`encode`] / [`decode`]); the enum
//! variant is the format version, so a future `V2` can be added while old logs stay readable.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
pub use uuid::Uuid;

pub mod golden;
pub mod standard;

/// Placement's largest integer (`MAX_INT` in its schemas and database).
pub const MAX_INT: i64 = 0x7FFF_FFFF;

/// Microseconds since the Unix epoch, stamped by the proposer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The last instant of the year 9999: HTTP dates and Placement's `DATETIME` columns
    /// have four-digit years, so no later time can be shown or stored.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Whole seconds since the epoch (what `last-modified` shows).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Whether this is a time a proposer's clock can stamp: from the epoch to
    /// [`Timestamp::MAX`]. `apply` refuses requests stamped outside it.
    pub fn is_valid(self) -> bool {
        (0..=Self::MAX.0).contains(&self.0)
    }
}

/// One inventory record of a provider for one resource class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// An inventory with Placement's defaults for everything but `total`.
    pub fn with_total(total: i64) -> Self {
        Inventory {
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: MAX_INT,
            step_size: 1,
            allocation_ratio: 1.0,
        }
    }

    /// `(total - reserved) * allocation_ratio`, truncated, as Placement computes capacity.
    /// Total on any record: the subtraction is done in floating point (exact for every value
    /// `apply` accepts) and the conversion back saturates, so a record written before
    /// inventories were validated at apply cannot overflow it.
    pub fn capacity(&self) -> i64 {
        ((self.total as f64 - self.reserved as f64) * self.allocation_ratio) as i64
    }
}

/// A resource provider as stored: its own fields plus inventories, traits and aggregates,
/// so that one record is one key in the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceProvider {
    pub uuid: Uuid,
    pub name: String,
    pub generation: u32,
    pub parent: Option<Uuid>,
    /// The root of this provider's tree (itself when `parent` is `None`); maintained by apply.
    pub root: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub inventories: BTreeMap<String, Inventory>,
    pub traits: BTreeSet<String>,
    pub aggregates: BTreeSet<Uuid>,
}

/// One allocation line: `used` units of `resource_class` from `provider`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Allocation {
    pub provider: Uuid,
    pub resource_class: String,
    pub used: i64,
}

/// A consumer and its complete allocation set. A consumer with no allocations does not
/// exist (Placement deletes it), so `allocations` is never empty in stored state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub uuid: Uuid,
    pub project_id: String,
    pub user_id: String,
    pub generation: u32,
    /// `None` shows as `unknown` from microversion 1.38.
    pub consumer_type: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub allocations: Vec<Allocation>,
}

/// A custom resource class (standard classes are not stored; see [`standard`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceClass {
    pub id: u32,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A custom trait (standard traits are not stored; see [`standard`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trait {
    pub name: String,
    pub created_at: Timestamp,
}

/// How a write checks the consumer generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenerationCheck {
    /// Before microversion 1.28: last writer wins.
    Unchecked,
    /// `Some(g)`: the consumer must exist with generation `g`;
    /// `None`: the consumer must not exist yet (`consumer_generation: null`).
    Expect(Option<u32>),
}

/// What to do with a consumer's type on write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerTypeWrite {
    /// Before 1.38: an existing consumer keeps its type, a new one has none.
    Keep,
    Set(String),
}

/// The complete new allocation set of one consumer (replace-all semantics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerWrite {
    pub consumer: Uuid,
    pub project_id: String,
    pub user_id: String,
    pub generation: GenerationCheck,
    pub consumer_type: ConsumerTypeWrite,
    /// Empty means: remove all of this consumer's allocations (and the consumer).
    pub allocations: Vec<Allocation>,
}

/// How a provider update treats the parent (rules differ by microversion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParentUpdate {
    /// The request did not mention a parent (or predates 1.14): keep it.
    Keep,
    /// 1.14–1.36: a parent may be set where there was none or kept as is, never changed or
    /// removed.
    SetOnce(Option<Uuid>),
    /// 1.37+: re-parent or un-parent freely (no cycles).
    Set(Option<Uuid>),
}

/// One mutation of Placement's state: exactly one Raft log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateProvider {
        uuid: Uuid,
        name: String,
        parent: Option<Uuid>,
    },
    UpdateProvider {
        uuid: Uuid,
        name: String,
        parent: ParentUpdate,
    },
    DeleteProvider {
        uuid: Uuid,
    },
    /// `PUT /resource_providers/{uuid}/inventories`: replace all.
    SetInventories {
        provider: Uuid,
        generation: u32,
        inventories: BTreeMap<String, Inventory>,
    },
    /// `POST /resource_providers/{uuid}/inventories`: add one class. Placement's POST body
    /// carries no generation; `Some` makes apply check it anyway.
    CreateInventory {
        provider: Uuid,
        generation: Option<u32>,
        resource_class: String,
        inventory: Inventory,
    },
    /// `PUT /resource_providers/{uuid}/inventories/{rc}`: update one class.
    UpdateInventory {
        provider: Uuid,
        generation: u32,
        resource_class: String,
        inventory: Inventory,
    },
    /// `DELETE /resource_providers/{uuid}/inventories/{rc}`.
    DeleteInventory {
        provider: Uuid,
        resource_class: String,
    },
    /// `DELETE /resource_providers/{uuid}/inventories` (1.5).
    DeleteAllInventories {
        provider: Uuid,
    },
    /// `POST /resource_classes`: fails if the name exists.
    CreateResourceClass {
        name: String,
    },
    /// `PUT /resource_classes/{name}` at 1.7+: create if missing.
    EnsureResourceClass {
        name: String,
    },
    /// `PUT /resource_classes/{name}` before 1.7: rename.
    RenameResourceClass {
        name: String,
        new_name: String,
    },
    DeleteResourceClass {
        name: String,
    },
    /// `PUT /traits/{name}`: create if missing.
    EnsureTrait {
        name: String,
    },
    DeleteTrait {
        name: String,
    },
    /// `PUT /resource_providers/{uuid}/traits`.
    SetProviderTraits {
        provider: Uuid,
        generation: u32,
        traits: BTreeSet<String>,
    },
    /// `DELETE /resource_providers/{uuid}/traits`.
    DeleteProviderTraits {
        provider: Uuid,
    },
    /// `PUT /resource_providers/{uuid}/aggregates`: `generation` is `Some` from 1.19 on,
    /// when the provider generation is checked and bumped; before 1.19 neither happens.
    SetProviderAggregates {
        provider: Uuid,
        generation: Option<u32>,
        aggregates: BTreeSet<Uuid>,
    },
    /// `PUT /allocations/{consumer}` (one consumer) and `POST /allocations` (many), applied
    /// atomically.
    WriteAllocations {
        consumers: Vec<ConsumerWrite>,
    },
    /// `DELETE /allocations/{consumer}`.
    DeleteAllocations {
        consumer: Uuid,
    },
    /// `POST /reshaper` (1.30): inventories and allocations changed atomically.
    Reshape {
        inventories: Vec<ReshapeInventory>,
        allocations: Vec<ConsumerWrite>,
    },
    /// `placementd import` (admin API): one batch of records read from a running Placement's
    /// database, written verbatim (uuids, names, generations, timestamps). Appended last:
    /// bincode stores the variant index, so variants are never reordered.
    Import(Box<ImportBatch>),
}

/// One batch of an import (`Command::Import`): records exactly as the source database holds
/// them. `apply` writes them without bumping a generation; it refuses the first batch
/// (`seq == 0`) unless the state is empty, and any record that collides with one already
/// stored or refers to one that is not (a parent, a class, a trait, a provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBatch {
    /// The batch's place in its import, from 0. Only 0 is special (the empty-state check);
    /// the number also names the batch in errors.
    pub seq: u32,
    /// Custom resource classes, with the ids the source gave them.
    pub resource_classes: Vec<ResourceClass>,
    /// Custom traits.
    pub traits: Vec<Trait>,
    /// Providers with their inventories, traits and aggregates; a parent comes before its
    /// children (in an earlier batch or earlier in this one).
    pub providers: Vec<ResourceProvider>,
    /// Consumers with their allocations (never empty), against providers already written.
    pub consumers: Vec<Consumer>,
}

impl ImportBatch {
    /// Batch `seq` with no records yet.
    pub fn empty(seq: u32) -> ImportBatch {
        ImportBatch {
            seq,
            resource_classes: Vec::new(),
            traits: Vec::new(),
            providers: Vec::new(),
            consumers: Vec::new(),
        }
    }
}

/// One provider's new inventory set in a reshape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReshapeInventory {
    pub provider: Uuid,
    pub generation: u32,
    pub inventories: BTreeMap<String, Inventory>,
}

/// A command with what the proposer stamped on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Unique per client request; lets the state machine recognise a retried forward.
    pub id: Uuid,
    /// The proposer's clock when the request was built; the only time `apply` knows.
    pub at: Timestamp,
    pub command: Command,
}

/// Who asked for a write: the API caller a follower served. It travels with a forwarded
/// write so that the leader's log names who a write is for; it is not part of the command
/// and never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub user_id: String,
    /// `None` for a system-scoped caller.
    pub project_id: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.project_id {
            Some(project) => write!(f, "user {:?} of project {project:?}", self.user_id),
            None => write!(f, "user {:?} (system scope)", self.user_id),
        }
    }
}

/// What goes into a Raft log entry. The variant is the format version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LogPayload {
    V1(Request),
}

/// A short form for logs and openraft's tracing (openraft requires app data to be `Display`);
/// the command itself is left to `Debug`.
impl std::fmt::Display for LogPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPayload::V1(request) => write!(f, "v1 request {}", request.id),
        }
    }
}

/// The successful result of applying a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    /// The provider as it is after the command (providers, inventories, traits, aggregates).
    Provider(Box<ResourceProvider>),
    ResourceClass(ResourceClass),
    /// For idempotent creates: whether something new was created.
    Created(bool),
}

/// Placement's error codes (`code` in error bodies from microversion 1.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    Undefined,
    InventoryInUse,
    ConcurrentUpdate,
    DuplicateName,
    ProviderInUse,
    CannotDeleteParent,
    ProviderNotFound,
    QueryDuplicateKey,
    QueryBadValue,
    QueryMissingValue,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Undefined => "placement.undefined_code",
            ErrorCode::InventoryInUse => "placement.inventory.inuse",
            ErrorCode::ConcurrentUpdate => "placement.concurrent_update",
            ErrorCode::DuplicateName => "placement.duplicate_name",
            ErrorCode::ProviderInUse => "placement.resource_provider.inuse",
            ErrorCode::CannotDeleteParent => "placement.resource_provider.cannot_delete_parent",
            ErrorCode::ProviderNotFound => "placement.resource_provider.not_found",
            ErrorCode::QueryDuplicateKey => "placement.query.duplicate_key",
            ErrorCode::QueryBadValue => "placement.query.bad_value",
            ErrorCode::QueryMissingValue => "placement.query.missing_value",
        }
    }
}

/// The class of a rejected command; the API crate maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    Conflict,
}

/// A command rejected by `apply` because of the state it met. Deterministic: every node
/// rejects the same entry with the same error, and the entry still counts as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{detail}")]
pub struct DomainError {
    pub kind: ErrorKind,
    pub code: ErrorCode,
    /// Placement's message, word for word where its test suite checks it.
    pub detail: String,
}

impl DomainError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::BadRequest,
            code: ErrorCode::Undefined,
            detail: detail.into(),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::NotFound,
            code: ErrorCode::Undefined,
            detail: detail.into(),
        }
    }
    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::Conflict,
            code,
            detail: detail.into(),
        }
    }
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }
}

/// The result of applying one command; stored as the response of its log entry.
pub type ApplyResult = Result<Outcome, DomainError>;

/// Encoding errors (a corrupt or unknown log entry / record).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A value ended before its input did: every encoding is decoded whole.
    #[error("decode: {} bytes after the value (of {len})", len - read)]
    Trailing { read: usize, len: usize },
}

/// The bincode configuration used for every stored or transmitted value. Decoding adds a
/// limit on top of it (see [`decode`]); the limit is not part of the format.
pub fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value with placementd's bincode configuration.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, bincode_config())?)
}

/// How many bytes bincode may claim while decoding, per byte of input. bincode claims, for
/// every value it reads, the size of that value in memory (a `u128` read from a one-byte
/// varint claims 16 bytes; a string claims its length before it allocates it), so a valid
/// encoding never claims more than 16 times its own length.
pub const DECODE_CLAIM_PER_INPUT_BYTE: usize = 16;

/// Decodes a value written by [`encode`], allocating at most about
/// [`DECODE_CLAIM_PER_INPUT_BYTE`] times the input's length (at least 64 KiB). The input
/// must be exactly one value: trailing bytes are an error.
///
/// Bytes from a socket or a disk are never trusted: without a limit, a length prefix of
/// 2^60 in a 46-byte message makes bincode allocate a 2^60-byte string and abort the process.
/// bincode's limit is a compile-time constant, so the input picks the smallest of a ladder of
/// limits that covers 16 times its length; a length prefix larger than what the input could
/// hold is then refused before anything is allocated.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    macro_rules! with_limit {
        ($limit:expr) => {{
            let config = bincode_config().with_limit::<{ $limit }>();
            let (value, read) = bincode::serde::decode_from_slice(bytes, config)?;
            if read != bytes.len() {
                return Err(CodecError::Trailing {
                    read,
                    len: bytes.len(),
                });
            }
            Ok(value)
        }};
    }
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    const GIB: usize = 1 << 30;
    let claim = bytes.len().saturating_mul(DECODE_CLAIM_PER_INPUT_BYTE);
    if claim <= 64 * KIB {
        with_limit!(64 * KIB)
    } else if claim <= MIB {
        with_limit!(MIB)
    } else if claim <= 16 * MIB {
        with_limit!(16 * MIB)
    } else if claim <= 256 * MIB {
        with_limit!(256 * MIB)
    } else if claim <= GIB {
        with_limit!(GIB)
    } else {
        with_limit!(16 * GIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_payload_round_trips() {
        let req = LogPayload::V1(Request {
            id: Uuid::from_u128(7),
            at: Timestamp(1_700_000_000_000_000),
            command: Command::SetInventories {
                provider: Uuid::from_u128(1),
                generation: 3,
                inventories: [("VCPU".to_string(), Inventory::with_total(8))].into(),
            },
        });
        let bytes = encode(&req).expect("encodes");
        assert_eq!(decode::<LogPayload>(&bytes).expect("decodes"), req);
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating_it() {
        // A `Request` whose command is `EnsureTrait { name }` with a name "of 2^60 bytes":
        // the id (16 bytes), the time, the variant, then the length prefix (0xFD + u64 LE).
        let mut bytes = encode(&Request {
            id: Uuid::from_u128(1),
            at: Timestamp(0),
            command: Command::EnsureTrait { name: "x".into() },
        })
        .expect("encodes");
        let len_at = bytes.len() - 2; // one-byte length prefix, then "x"
        bytes.truncate(len_at);
        bytes.push(0xFD);
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let err = decode::<Request>(&bytes).expect_err("refused");
        assert!(err.to_string().contains("LimitExceeded"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Timestamp(5)).expect("encodes");
        assert_eq!(decode::<Timestamp>(&bytes).expect("decodes"), Timestamp(5));
        bytes.push(0);
        assert!(matches!(
            decode::<Timestamp>(&bytes),
            Err(CodecError::Trailing { read: 1, len: 2 })
        ));
    }

    #[test]
    fn large_valid_values_still_decode() {
        let name = "T".repeat(3 << 20);
        let req = Request {
            id: Uuid::from_u128(2),
            at: Timestamp(5),
            command: Command::EnsureTrait { name },
        };
        let bytes = encode(&req).expect("encodes");
        assert_eq!(decode::<Request>(&bytes).expect("decodes"), req);
    }

    #[test]
    fn capacity_never_overflows() {
        let mut inv = Inventory::with_total(i64::MAX);
        inv.reserved = i64::MIN;
        assert_eq!(inv.capacity(), i64::MAX);
        inv.allocation_ratio = f64::NAN;
        assert_eq!(inv.capacity(), 0);
    }

    #[test]
    fn capacity_truncates_like_placement() {
        let mut inv = Inventory::with_total(10);
        inv.reserved = 1;
        inv.allocation_ratio = 1.5;
        assert_eq!(inv.capacity(), 13);
    }
}
