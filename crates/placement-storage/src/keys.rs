//! Column families and key encodings.
//!
//! One RocksDB per node, four column families:
//!
//! | CF           | key                                   | value                         |
//! |--------------|---------------------------------------|-------------------------------|
//! | `raft_log`   | log index, u64 big-endian (8 bytes)   | bincode `Entry`               |
//! | `raft_meta`  | one-byte [`MetaKey`] constant         | bincode vote / log id / u32   |
//! | `sm_records` | record tag (1 byte) + id (see below)  | bincode record                |
//! | `sm_meta`    | one-byte [`MetaKey`] constant         | bincode log id / membership   |
//!
//! Big-endian integers sort numerically as bytes, so "last log entry" is a reverse seek and a
//! range of indexes is one forward scan. Record keys are the tag followed by the 16 raw bytes
//! of a UUID (providers, consumers) or the UTF-8 name (custom resource classes and traits,
//! whose names are their identity); the tag keeps each kind in its own contiguous key range.
//!
//! Metadata keys are typed: a [`MetaKey<T>`] names its column family and the type stored
//! under it, so a vote can never be read back as a log id.

use std::marker::PhantomData;

use placement_core::{Change, Record};
use placement_types::{Consumer, ResourceClass, ResourceProvider, Trait, Uuid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::types::{LogId, NodeId, StoredMembership, Vote};

/// Raft log entries by index.
pub const CF_RAFT_LOG: &str = "raft_log";
/// Vote, committed log id, last purged log id, node id, format version.
pub const CF_RAFT_META: &str = "raft_meta";
/// The state machine's records (providers, consumers, custom classes and traits).
pub const CF_SM_RECORDS: &str = "sm_records";
/// The state machine's applied log id and last membership.
pub const CF_SM_META: &str = "sm_meta";

/// Every column family, in the order the database is opened with.
pub const ALL_CFS: [&str; 4] = [CF_RAFT_LOG, CF_RAFT_META, CF_SM_RECORDS, CF_SM_META];

/// A metadata key: its column family, its fixed one-byte key, and the type of its value.
pub struct MetaKey<T> {
    pub cf: &'static str,
    pub key: [u8; 1],
    pub name: &'static str,
    _value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> MetaKey<T> {
    const fn new(cf: &'static str, key: u8, name: &'static str) -> Self {
        MetaKey {
            cf,
            key: [key],
            name,
            _value: PhantomData,
        }
    }

    pub fn encode(&self, value: &T) -> Result<Vec<u8>> {
        Ok(placement_types::encode(value)?)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<T> {
        placement_types::decode(bytes)
            .map_err(|e| Error::corrupt(format!("metadata {}: {e}", self.name)))
    }
}

/// The storage format this build writes and reads; bumped on any incompatible key or value
/// change.
pub const FORMAT_VERSION: u32 = 1;

/// Storage format version, written once when the database is created.
pub const FORMAT: MetaKey<u32> = MetaKey::new(CF_RAFT_META, 0x01, "format");
/// The node id this data directory belongs to, written once at first start.
pub const NODE_ID: MetaKey<NodeId> = MetaKey::new(CF_RAFT_META, 0x02, "node_id");
/// The last vote (`save_vote`), synced.
pub const VOTE: MetaKey<Vote> = MetaKey::new(CF_RAFT_META, 0x03, "vote");
/// The last committed log id (`save_committed`), a hint for replay after restart.
pub const COMMITTED: MetaKey<LogId> = MetaKey::new(CF_RAFT_META, 0x04, "committed");
/// The last purged log id: entries up to it are gone (`purge`).
pub const LAST_PURGED: MetaKey<LogId> = MetaKey::new(CF_RAFT_META, 0x05, "last_purged");
/// The last log id applied to the state machine, written with every apply.
pub const APPLIED: MetaKey<LogId> = MetaKey::new(CF_SM_META, 0x01, "applied");
/// The last membership applied to the state machine.
pub const MEMBERSHIP: MetaKey<StoredMembership> = MetaKey::new(CF_SM_META, 0x02, "membership");

// ---- Raft log keys -----------------------------------------------------------------------

/// The key of log entry `index`.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// A key greater than every log key, as the exclusive end of a range delete.
pub const LOG_KEY_END: [u8; 9] = [0xFF; 9];

/// The index stored in a log key.
pub fn log_index(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::corrupt(format!("log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

// ---- State-machine record keys -----------------------------------------------------------

/// Record tags. Invariant: every tag is below [`RECORD_KEY_END`]`[0]`.
const TAG_RESOURCE_CLASS: u8 = 0x01;
const TAG_TRAIT: u8 = 0x02;
const TAG_PROVIDER: u8 = 0x03;
const TAG_CONSUMER: u8 = 0x04;
/// A remembered request outcome (`dedup.rs`): tag + the 16 bytes of the request id. Kept in
/// the record column family so that snapshots carry it like any other record.
const TAG_REQUEST: u8 = 0x05;

/// Inclusive start and exclusive end of the whole record key space (for a range delete).
pub const RECORD_KEY_START: [u8; 1] = [0x00];
pub const RECORD_KEY_END: [u8; 1] = [0xFF];

fn uuid_key(tag: u8, uuid: &Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(tag);
    key.extend_from_slice(uuid.as_bytes());
    key
}

fn name_key(tag: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(tag);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The key of a changed record and its new encoded value (`None`: delete the key).
pub fn encode_change(change: &Change) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    fn value<T: Serialize>(v: &Option<T>) -> Result<Option<Vec<u8>>> {
        Ok(match v {
            Some(v) => Some(placement_types::encode(v)?),
            None => None,
        })
    }
    Ok(match change {
        Change::Provider(uuid, p) => (uuid_key(TAG_PROVIDER, uuid), value(p)?),
        Change::Consumer(uuid, c) => (uuid_key(TAG_CONSUMER, uuid), value(c)?),
        Change::ResourceClass(name, rc) => (name_key(TAG_RESOURCE_CLASS, name), value(rc)?),
        Change::Trait(name, t) => (name_key(TAG_TRAIT, name), value(t)?),
    })
}

/// The key under which the outcome of request `id` is remembered.
pub fn request_key(id: &Uuid) -> Vec<u8> {
    uuid_key(TAG_REQUEST, id)
}

/// Whether a record key holds a remembered request outcome rather than a Placement record.
pub fn is_request_key(key: &[u8]) -> bool {
    key.first() == Some(&TAG_REQUEST)
}

/// The request id in a [`request_key`].
pub fn request_id(key: &[u8]) -> Result<Uuid> {
    match key.split_first() {
        Some((&TAG_REQUEST, id)) => {
            Uuid::from_slice(id).map_err(|_| Error::corrupt(format!("request key {}", hex(key))))
        }
        _ => Err(Error::corrupt(format!("not a request key: {}", hex(key)))),
    }
}

/// Decodes one stored record, checking that its key matches its contents.
pub fn decode_record(key: &[u8], value: &[u8]) -> Result<Record> {
    fn de<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
        placement_types::decode(value)
            .map_err(|e| Error::corrupt(format!("record {}: {e}", hex(key))))
    }
    let mismatch = || Error::corrupt(format!("record key {} does not match its value", hex(key)));
    let (tag, id) = key
        .split_first()
        .ok_or_else(|| Error::corrupt("empty record key"))?;
    let record = match *tag {
        TAG_PROVIDER => {
            let p: ResourceProvider = de(key, value)?;
            if p.uuid.as_bytes() != id {
                return Err(mismatch());
            }
            Record::Provider(p)
        }
        TAG_CONSUMER => {
            let c: Consumer = de(key, value)?;
            if c.uuid.as_bytes() != id {
                return Err(mismatch());
            }
            Record::Consumer(c)
        }
        TAG_RESOURCE_CLASS => {
            let rc: ResourceClass = de(key, value)?;
            if rc.name.as_bytes() != id {
                return Err(mismatch());
            }
            Record::ResourceClass(rc)
        }
        TAG_TRAIT => {
            let t: Trait = de(key, value)?;
            if t.name.as_bytes() != id {
                return Err(mismatch());
            }
            Record::Trait(t)
        }
        other => return Err(Error::corrupt(format!("unknown record tag {other:#04x}"))),
    };
    Ok(record)
}

/// Lower-case hex of a key, for error messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_types::Timestamp;

    #[test]
    fn log_keys_sort_numerically() {
        let mut keys: Vec<[u8; 8]> = [300u64, 2, 1 << 40, 0, 255, 256]
            .iter()
            .map(|i| log_key(*i))
            .collect();
        keys.sort();
        let back: Vec<u64> = keys
            .iter()
            .map(|k| log_index(k).expect("8 bytes"))
            .collect();
        assert_eq!(back, vec![0, 2, 255, 256, 300, 1 << 40]);
        assert!(keys.iter().all(|k| k.as_slice() < LOG_KEY_END.as_slice()));
    }

    #[test]
    fn log_index_rejects_bad_width() {
        assert!(matches!(log_index(&[1, 2, 3]), Err(Error::Corrupt(_))));
    }

    #[test]
    fn record_round_trips_and_checks_key() {
        let t = Trait {
            name: "CUSTOM_X".into(),
            created_at: Timestamp(5),
        };
        let (key, value) =
            encode_change(&Change::Trait(t.name.clone(), Some(t.clone()))).expect("encodes");
        let value = value.expect("put");
        assert_eq!(
            decode_record(&key, &value).expect("decodes"),
            Record::Trait(t)
        );
        assert!(key.as_slice() > RECORD_KEY_START.as_slice());
        assert!(key.as_slice() < RECORD_KEY_END.as_slice());

        let mut other_key = key.clone();
        other_key.push(b'Y');
        assert!(matches!(
            decode_record(&other_key, &value),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_record(&[0x7F], &value),
            Err(Error::Corrupt(_))
        ));
    }
}
