//! `placementd debug dump`: a data directory in readable form (what toyDB's `toydump` does).
//!
//! Opens the RocksDB read-only (the node must be stopped, or point it at a copy), then prints
//! the Raft metadata (format, node id, vote, committed, purged), the state machine's applied
//! log id and membership, the log entries (all, or the last `entries`), every record (one
//! line each: providers, consumers, custom classes, traits), the remembered request outcomes,
//! and the snapshot files with their metadata. Nothing is written.

use std::io::Write;
use std::path::Path;

use rocksdb::{IteratorMode, Options, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dedup::Remembered;
use crate::error::{Error, Result};
use crate::keys::{
    self, MetaKey, ALL_CFS, APPLIED, CF_RAFT_LOG, CF_SM_RECORDS, COMMITTED, FORMAT, LAST_PURGED,
    MEMBERSHIP, NODE_ID, VOTE,
};
use crate::snapshot::SnapshotFile;
use crate::store::{cf, DB_DIR, SNAPSHOT_DIR};
use crate::types::Entry;

/// What to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct DumpOptions {
    /// Only the last this many log entries (all when `None`).
    pub entries: Option<usize>,
}

/// Prints the data directory `dir` to `out`.
pub fn dump(dir: &Path, options: DumpOptions, out: &mut dyn Write) -> Result<()> {
    let db_path = dir.join(DB_DIR);
    if !db_path.is_dir() {
        return Err(Error::corrupt(format!(
            "{} is not a placementd data directory (no {DB_DIR}/)",
            dir.display()
        )));
    }
    let db = DB::open_cf_for_read_only(&Options::default(), &db_path, ALL_CFS, false).map_err(
        |source| Error::Open {
            path: db_path.clone(),
            source,
        },
    )?;
    writeln!(out, "# {}", dir.display())?;
    writeln!(out, "\n## raft metadata")?;
    meta(&db, &FORMAT, out)?;
    meta(&db, &NODE_ID, out)?;
    meta(&db, &VOTE, out)?;
    meta(&db, &COMMITTED, out)?;
    meta(&db, &LAST_PURGED, out)?;
    writeln!(out, "\n## state machine metadata")?;
    meta(&db, &APPLIED, out)?;
    meta(&db, &MEMBERSHIP, out)?;

    // The log's indexes are contiguous from the first to the last key: its length and where
    // the last `entries` start follow from the two ends, without a scan.
    let log = cf(&db, CF_RAFT_LOG)?;
    let end = |mode| -> Result<Option<u64>> {
        match db.iterator_cf(log, mode).next() {
            Some(item) => Ok(Some(keys::log_index(&item?.0)?)),
            None => Ok(None),
        }
    };
    let (first, last) = (end(IteratorMode::Start)?, end(IteratorMode::End)?);
    let total = match (first, last) {
        (Some(first), Some(last)) => last.saturating_sub(first) + 1,
        _ => 0,
    };
    let shown = options.entries.map_or(total, |n| total.min(n as u64));
    writeln!(out, "\n## raft log ({total} entries, showing {shown})")?;
    let from = keys::log_key(last.map_or(0, |l| (l + 1).saturating_sub(shown)));
    let mode = IteratorMode::From(&from, rocksdb::Direction::Forward);
    for item in db.iterator_cf(log, mode) {
        let (key, value) = item?;
        let index = keys::log_index(&key)?;
        match placement_types::decode::<Entry>(&value) {
            Ok(entry) => writeln!(out, "{index:>10} {}", one_line(&entry))?,
            Err(e) => writeln!(out, "{index:>10} UNDECODABLE ({e}): {}", keys::hex(&value))?,
        }
    }

    let records = cf(&db, CF_SM_RECORDS)?;
    writeln!(out, "\n## state records")?;
    let mut requests = Vec::new();
    for item in db.iterator_cf(records, IteratorMode::Start) {
        let (key, value) = item?;
        if keys::is_request_key(&key) {
            requests.push((key, value));
            continue;
        }
        match keys::decode_record(&key, &value) {
            Ok(record) => writeln!(out, "{}", one_line(&record))?,
            Err(e) => writeln!(out, "UNDECODABLE {}: {e}", keys::hex(&key))?,
        }
    }
    writeln!(out, "\n## remembered request outcomes ({})", requests.len())?;
    for (key, value) in requests {
        let id = keys::request_id(&key)?;
        match placement_types::decode::<Remembered>(&value) {
            Ok(r) => writeln!(out, "{id} index {} {}", r.index, one_line(&r.result))?,
            Err(e) => writeln!(out, "{id} UNDECODABLE: {e}")?,
        }
    }

    writeln!(out, "\n## snapshots")?;
    let mut files: Vec<_> = std::fs::read_dir(dir.join(SNAPSHOT_DIR))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for path in files {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let meta = SnapshotFile::open(&path)
            .map_err(Error::from)
            .and_then(|mut f| f.read_meta());
        match meta {
            Ok(meta) => writeln!(out, "{} ({len} bytes): {}", path.display(), one_line(&meta))?,
            Err(e) => writeln!(out, "{} ({len} bytes): unreadable: {e}", path.display())?,
        }
    }
    Ok(())
}

fn meta<T: Serialize + DeserializeOwned + std::fmt::Debug>(
    db: &DB,
    key: &MetaKey<T>,
    out: &mut dyn Write,
) -> Result<()> {
    match crate::store::get_meta(db, key) {
        Ok(Some(v)) => writeln!(out, "{:<12} {}", key.name, one_line(&v))?,
        Ok(None) => writeln!(out, "{:<12} (none)", key.name)?,
        Err(e) => writeln!(out, "{:<12} UNDECODABLE: {e}", key.name)?,
    }
    Ok(())
}

/// `Debug` on one line.
fn one_line(v: &dyn std::fmt::Debug) -> String {
    format!("{v:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn dumps_a_fresh_data_directory_and_refuses_another_one() {
        let dir = tempfile::TempDir::new().expect("dump test");
        drop(Store::open(dir.path()).expect("dump test"));
        let mut out = Vec::new();
        dump(dir.path(), DumpOptions::default(), &mut out).expect("dump test");
        let text = String::from_utf8(out).expect("dump test");
        assert!(text.contains("format       1"), "{text}");
        assert!(text.contains("## raft log (0 entries"), "{text}");
        let empty = tempfile::TempDir::new().expect("dump test");
        let err =
            dump(empty.path(), DumpOptions::default(), &mut Vec::new()).expect_err("an error");
        assert!(
            err.to_string().contains("not a placementd data directory"),
            "{err}"
        );
    }
}
