//! Restoring a backup: a fresh data directory made from a snapshot file, as the first member
//! of a new cluster.
//!
//! A backup is a snapshot file (`placementd cluster backup` downloads a member's current
//! one): the checksummed stream of every state-machine record up to a log id `L`, with the
//! membership of the cluster that wrote it. [`restore`] turns it into a data directory that
//! opens as a **one-node cluster of the restoring node** whose log was compacted up to `L`:
//!
//! - the records are written to the state machine, `applied = L`;
//! - the membership is replaced by `{node_id: its addresses}` (in the state machine and in a
//!   re-written snapshot file, which becomes the node's current snapshot);
//! - the Raft log is empty with `last purged = committed = L`, and the vote is the restoring
//!   node's, committed, in `L`'s term, so its first election moves to a later term and every
//!   new entry gets a log id after `L`.
//!
//! Members added later (`placementd cluster add`) cannot get entries at or before `L` (they
//! are purged), so they start from the snapshot: the restored state reaches every member by
//! the ordinary snapshot install. The request-id table travels with the records (it is part
//! of them), so the dedup window survives too.
//!
//! Only an empty data directory is restored into; anything else is refused, so a restore
//! can never overwrite a member's state.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::Path;

use openraft::vote::RaftLeaderId;
use rocksdb::{IteratorMode, WriteBatch};

use crate::error::{Error, Result};
use crate::keys::{APPLIED, CF_RAFT_LOG, CF_SM_RECORDS, COMMITTED, LAST_PURGED, MEMBERSHIP, VOTE};
use crate::snapshot::{SnapshotReader, SnapshotWriter};
use crate::store::{cf, get_meta, put_meta, synced, Store};
use crate::types::{LogId, Membership, NodeId, PeerNode, SnapshotMeta, StoredMembership, Vote};

/// What [`restore`] restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The log id the backup covers (`applied` of the restored node).
    pub last_log_id: LogId,
    /// Records written (Placement records and remembered request ids).
    pub records: u64,
}

/// Restores the snapshot file `backup` into the empty data directory `data_dir` for node
/// `node_id` reachable at `me` (see the module doc). Blocking.
pub fn restore(data_dir: &Path, node_id: NodeId, me: PeerNode, backup: &Path) -> Result<Restored> {
    let store = Store::open(data_dir)?;
    let db = store.db();
    let empty_cf = |name| -> Result<bool> {
        Ok(db
            .iterator_cf(cf(db, name)?, IteratorMode::Start)
            .next()
            .is_none())
    };
    if store.node_id()?.is_some()
        || get_meta(db, &VOTE)?.is_some()
        || get_meta(db, &APPLIED)?.is_some()
        || !empty_cf(CF_RAFT_LOG)?
        || !empty_cf(CF_SM_RECORDS)?
    {
        return Err(Error::Restore(format!(
            "{} is not an empty data directory; a backup is only restored into a new one",
            data_dir.display()
        )));
    }

    let file = std::fs::File::open(backup)?;
    let mut reader = SnapshotReader::new(BufReader::new(file))?;
    let Some(last_log_id) = reader.meta.last_log_id else {
        return Err(Error::Restore(
            "the backup covers no log entry: nothing to restore".into(),
        ));
    };
    let membership = Membership::new(
        vec![BTreeSet::from([node_id])],
        BTreeMap::from([(node_id, me)]),
    )
    .map_err(|e| Error::Restore(format!("membership of node {node_id}: {e}")))?;
    let stored = StoredMembership::new(Some(last_log_id), membership);
    let meta = SnapshotMeta {
        last_log_id: Some(last_log_id),
        last_membership: stored.clone(),
    };

    store.bind_node_id(node_id)?;
    let snapshots = store.snapshots();
    let tmp = snapshots.tmp_path("restore");
    let mut writer = SnapshotWriter::create(&tmp, &meta)?;
    let cf_records = cf(db, CF_SM_RECORDS)?;
    let mut batch = WriteBatch::default();
    let mut records = 0u64;
    while let Some((key, value)) = reader.next_record()? {
        writer.record(&key, &value)?;
        batch.put_cf(cf_records, key, value);
        records += 1;
    }
    writer.finish()?;

    let term = last_log_id.committed_leader_id().term();
    let vote = Vote::new_committed(term, node_id);
    put_meta(db, &mut batch, &APPLIED, &last_log_id)?;
    put_meta(db, &mut batch, &MEMBERSHIP, &stored)?;
    put_meta(db, &mut batch, &VOTE, &vote)?;
    put_meta(db, &mut batch, &COMMITTED, &last_log_id)?;
    put_meta(db, &mut batch, &LAST_PURGED, &last_log_id)?;
    // Synced, one batch: the directory is either still empty (but bound to the id) or fully
    // restored.
    db.write_opt(batch, &synced())?;
    snapshots.publish(&tmp, &meta)?;
    tracing::info!(
        index = last_log_id.index,
        records,
        node_id,
        "backup restored"
    );
    Ok(Restored {
        last_log_id,
        records,
    })
}
