//! The tail of the Raft log, in memory, as appended.
//!
//! # Why
//! An entry is read back right after it is appended: on the leader by the replication stream
//! of every follower and by the state machine, on a follower by the state machine. Each read
//! was a RocksDB iterator over the memtable and a bincode decode of the entry; on a 3-node
//! cluster that is five reads and decodes per write, 4 % of the cluster's CPU in the
//! `put_alloc` profile (docs/benchmarks.md). A clone from memory is cheaper than both.
//!
//! # Invariant
//! The cache holds a contiguous run of entries that ends at the log's last entry (a suffix of
//! the log), or nothing. Every change to the log's tail goes through [`LogCache::appended`]
//! and [`LogCache::truncated_after`], every change to its head through
//! [`LogCache::purged_upto`], each called after the database write it mirrors, so the cache
//! never shows an entry the database would not. An append that does not continue the cached
//! run (the first after a start, when the cache is empty) starts a new run. A read the
//! cache cannot serve whole goes to the database.
//!
//! # Bound
//! At most [`MAX_CACHED_ENTRIES`] entries and [`MAX_CACHED_BYTES`] bytes of their encodings;
//! the oldest go first. Followers catching up from far behind read from the database, as
//! before.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

use openraft::entry::RaftEntry;

use crate::types::Entry;

/// Entries kept: a few group-commit batches under heavy load (an append carries up to
/// `WRITE_BATCH_ENTRIES` = 4,096 entries).
pub const MAX_CACHED_ENTRIES: usize = 16_384;

/// Bytes of encoded entries kept (entries are a few hundred bytes; an import or a reshape
/// can be megabytes).
pub const MAX_CACHED_BYTES: usize = 64 << 20;

/// The cached tail of the log (see the module doc).
#[derive(Debug, Default)]
pub struct LogCache {
    /// Entries with consecutive indexes, and the encoded size of each.
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl LogCache {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    fn next_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.index() + 1)
    }

    /// `entry`, `encoded_len` bytes in the log, was appended after the cached run (or, if it
    /// does not continue the run, starts a new one).
    pub fn appended(&mut self, entry: Entry, encoded_len: usize) {
        if self.next_index() != Some(entry.index()) {
            self.clear();
        }
        self.bytes += encoded_len;
        self.entries.push_back((entry, encoded_len));
        while self.entries.len() > MAX_CACHED_ENTRIES
            || (self.bytes > MAX_CACHED_BYTES && self.entries.len() > 1)
        {
            self.pop_front();
        }
    }

    /// Entries after `index` were deleted from the log (`None`: all of them).
    pub fn truncated_after(&mut self, index: Option<u64>) {
        while let Some((last, _)) = self.entries.back() {
            if index.is_some_and(|i| last.index() <= i) {
                break;
            }
            let (_, len) = self.entries.pop_back().expect("non-empty");
            self.bytes -= len;
        }
    }

    /// Entries up to `index` were purged from the log.
    pub fn purged_upto(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, len)) = self.entries.pop_front() {
            self.bytes -= len;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries of `range` if the cache holds all of them that the log holds: the range
    /// starts within the cached run (or right after it). Entries past the log's end are
    /// absent, as in the database. `None`: ask the database.
    pub fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        let next = self.next_index()?;
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        if start < first || start > next {
            return None;
        }
        let end = end.min(next);
        if start >= end {
            return Some(Vec::new());
        }
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        Some(
            self.entries
                .range(from..to)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry;

    fn entry(index: u64) -> Entry {
        Entry::new_blank(openraft::testing::log_id::<crate::TypeConfig>(1, 1, index))
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        entries.map(|es| es.iter().map(|e| e.index()).collect())
    }

    fn cache_of(range: std::ops::RangeInclusive<u64>) -> LogCache {
        let mut cache = LogCache::default();
        for i in range {
            cache.appended(entry(i), 10);
        }
        cache
    }

    #[test]
    fn serves_ranges_within_the_tail_and_refuses_the_rest() {
        let cache = cache_of(5..=9);
        assert_eq!(indexes(cache.get(&(5..=9))), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(indexes(cache.get(&(7..))), Some(vec![7, 8, 9]));
        assert_eq!(indexes(cache.get(&(6..8))), Some(vec![6, 7]));
        // Past the end: absent, as in the database.
        assert_eq!(indexes(cache.get(&(8..20))), Some(vec![8, 9]));
        assert_eq!(indexes(cache.get(&(10..20))), Some(vec![]));
        // Before the cached run, or with a gap after it: the database answers.
        assert_eq!(indexes(cache.get(&(4..=6))), None);
        assert_eq!(indexes(cache.get(&(11..20))), None);
        assert_eq!(indexes(LogCache::default().get(&(0..))), None);
    }

    #[test]
    fn follows_truncation_purge_and_a_new_run() {
        let mut cache = cache_of(1..=10);
        cache.truncated_after(Some(6));
        assert_eq!(indexes(cache.get(&(1..))), Some(vec![1, 2, 3, 4, 5, 6]));
        cache.appended(entry(7), 10);
        cache.purged_upto(3);
        assert_eq!(indexes(cache.get(&(4..))), Some(vec![4, 5, 6, 7]));
        assert_eq!(cache.get(&(3..)).map(|v| v.len()), None);
        // An append that does not continue the run replaces it.
        cache.appended(entry(42), 10);
        assert_eq!(indexes(cache.get(&(42..))), Some(vec![42]));
        assert_eq!(cache.get(&(7..)).map(|v| v.len()), None);
        cache.truncated_after(None);
        assert_eq!(indexes(cache.get(&(0..))), None);
        assert_eq!(cache.bytes, 0);
    }

    #[test]
    fn keeps_within_its_bounds() {
        let mut cache = LogCache::default();
        for i in 1..=(MAX_CACHED_ENTRIES as u64 + 5) {
            cache.appended(entry(i), 1);
        }
        assert_eq!(cache.entries.len(), MAX_CACHED_ENTRIES);
        assert_eq!(cache.first_index(), Some(6));
        cache.appended(entry(MAX_CACHED_ENTRIES as u64 + 6), MAX_CACHED_BYTES);
        // One huge entry evicts the rest but stays itself.
        assert_eq!(cache.entries.len(), 1);
    }
}
