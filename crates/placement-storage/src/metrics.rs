//! What the store reports to the metrics endpoint at scrape time: RocksDB's own account of
//! its size. (Timings are recorded where they happen, into `placement_metrics::catalog`.)

use crate::error::Result;
use crate::keys::ALL_CFS;
use crate::store::{cf, Store};

/// RocksDB's SST file sizes summed over the column families, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SstBytes {
    /// `rocksdb.total-sst-files-size`: every SST file, including obsolete ones not yet
    /// deleted (what the disk holds).
    pub total: u64,
    /// `rocksdb.live-sst-files-size`: the files of the current version (what the data
    /// needs).
    pub live: u64,
}

impl Store {
    /// RocksDB's SST sizes (an in-memory property read; cheap).
    pub fn sst_bytes(&self) -> Result<SstBytes> {
        let db = self.db();
        let mut sizes = SstBytes::default();
        for name in ALL_CFS {
            let handle = cf(db, name)?;
            let read = |p| db.property_int_value_cf(handle, p);
            sizes.total += read(rocksdb::properties::TOTAL_SST_FILES_SIZE)?.unwrap_or(0);
            sizes.live += read(rocksdb::properties::LIVE_SST_FILES_SIZE)?.unwrap_or(0);
        }
        Ok(sizes)
    }
}
