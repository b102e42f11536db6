//! Request deduplication: the state machine remembers the outcome of recent requests by id.
//!
//! A follower forwards a client's write to the leader; if the leader dies or leadership moves
//! while the write is in flight, the follower cannot tell whether the entry was committed, so
//! it forwards the same [`placement_types::Request`] (same id) again. Without this table the
//! second copy would be applied as a new command (a second allocation, a generation bumped
//! twice). With it, an entry whose request id was already applied is not applied again: it
//! answers the remembered [`ApplyResult`] and changes nothing but the applied log id.
//!
//! # Invariants
//! - **Deterministic.** Membership of the table depends only on the log: every applied
//!   request is remembered under its log index, and an entry is forgotten when the applied
//!   index passes `index + DEDUP_WINDOW_ENTRIES`. Every replica therefore makes the same
//!   apply-or-skip decision for the same entry.
//! - **Durable and in snapshots.** Each remembered outcome is a row in the record column
//!   family (key tag `0x05` + request id, see `keys.rs`), written and evicted in the same
//!   `WriteBatch` as the apply it belongs to, so a snapshot (which copies that column family)
//!   and a restart carry the table with the records it guards.
//!
//! Left out: per-client sessions (Raft thesis §6.3). Request ids are generated per HTTP
//! request by the proposing node, so a window by log position is all a retried forward needs.

use std::collections::{BTreeMap, HashMap};

use placement_types::{ApplyResult, Uuid};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys;

/// How many log entries a request outcome is remembered for. A forward is retried for at
/// most the write deadline (10 s); at 10 000 writes/s that is 100 000 entries. Each
/// remembered outcome costs a few dozen bytes (most outcomes are `Done`).
pub const DEDUP_WINDOW_ENTRIES: u64 = 100_000;

/// One remembered outcome, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    /// The log index of the entry that applied the request.
    pub index: u64,
    /// What `apply` answered.
    pub result: ApplyResult,
}

/// The rows one remembered request writes: its own, and the rows it pushes out of the window.
#[derive(Debug)]
pub(crate) struct PlannedRows {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub evicted: Vec<Vec<u8>>,
}

/// The in-memory table (rebuilt from the stored rows at start and after a snapshot install).
#[derive(Debug, Default)]
pub(crate) struct RequestTable {
    by_id: HashMap<Uuid, Remembered>,
    by_index: BTreeMap<u64, Uuid>,
}

impl RequestTable {
    /// Adds a row read from storage.
    pub fn load(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let id = keys::request_id(key)?;
        let remembered: Remembered = placement_types::decode(value)
            .map_err(|e| Error::corrupt(format!("remembered request {id}: {e}")))?;
        self.by_index.insert(remembered.index, id);
        self.by_id.insert(id, remembered);
        Ok(())
    }

    /// The outcome of `id`, if it was applied within the window.
    pub fn get(&self, id: &Uuid) -> Option<&Remembered> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The rows to write when entry `index` applied request `id` with `result`: the put of
    /// the new row and the deletes of rows that fall out of the window. Call [`Self::commit`]
    /// with the same arguments once the batch is written.
    pub fn plan(&self, index: u64, id: &Uuid, result: &ApplyResult) -> Result<PlannedRows> {
        let value = placement_types::encode(&Remembered {
            index,
            result: result.clone(),
        })?;
        let evicted = self
            .expired(index)
            .map(|(_, id)| keys::request_key(id))
            .collect();
        Ok(PlannedRows {
            key: keys::request_key(id),
            value,
            evicted,
        })
    }

    /// Applies what [`Self::plan`] wrote.
    pub fn commit(&mut self, index: u64, id: Uuid, result: ApplyResult) {
        let expired: Vec<u64> = self.expired(index).map(|(i, _)| *i).collect();
        for i in expired {
            if let Some(old) = self.by_index.remove(&i) {
                self.by_id.remove(&old);
            }
        }
        self.by_index.insert(index, id);
        self.by_id.insert(id, Remembered { index, result });
    }

    /// Rows whose index is at or below `index - DEDUP_WINDOW_ENTRIES`.
    fn expired(&self, index: u64) -> impl Iterator<Item = (&u64, &Uuid)> {
        let limit = index.saturating_sub(DEDUP_WINDOW_ENTRIES);
        self.by_index.range(..=limit).filter(move |_| limit > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_types::Outcome;

    #[test]
    fn window_evicts_by_log_index() {
        let mut t = RequestTable::default();
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        t.commit(1, a, Ok(Outcome::Done));
        assert!(t.get(&a).is_some());
        let planned = t
            .plan(DEDUP_WINDOW_ENTRIES, &b, &Ok(Outcome::Done))
            .expect("plan");
        assert!(
            planned.evicted.is_empty(),
            "index 1 is still inside the window"
        );
        let planned = t
            .plan(DEDUP_WINDOW_ENTRIES + 1, &b, &Ok(Outcome::Done))
            .expect("plan");
        assert_eq!(planned.evicted, vec![keys::request_key(&a)]);
        t.commit(DEDUP_WINDOW_ENTRIES + 1, b, Ok(Outcome::Done));
        assert!(t.get(&a).is_none());
        assert_eq!(t.get(&b).map(|r| r.index), Some(DEDUP_WINDOW_ENTRIES + 1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn rows_round_trip() {
        let t = RequestTable::default();
        let id = Uuid::from_u128(9);
        let planned = t.plan(5, &id, &Ok(Outcome::Created(true))).expect("plan");
        let mut loaded = RequestTable::default();
        loaded.load(&planned.key, &planned.value).expect("load");
        assert_eq!(
            loaded.get(&id),
            Some(&Remembered {
                index: 5,
                result: Ok(Outcome::Created(true))
            })
        );
    }
}
