//! Snapshot files: the state machine's records at one applied log id, as a stream.
//!
//! # Format (version [`SNAPSHOT_FORMAT`])
//! ```text
//! "PLSNAP\0\x01"                        8-byte magic (the last byte is the format)
//! frame*                                 u32 big-endian length + bincode(Frame)
//!   Frame::Header { meta }               first: the openraft SnapshotMeta
//!   Frame::Record { key, value }         each record, exactly as stored in `sm_records`
//!   Frame::End { records, checksum }     last: count + FNV-1a 64 of all frame bodies before it
//! ```
//! A file without a valid `End` is rejected, so a snapshot cut short (crash, network) can never
//! be installed as if it were complete.
//!
//! # Files on disk
//! `snapshots/snapshot-<index, 20 digits>.snap` (or `snapshot-none.snap` before anything was
//! applied). A file is written as `*.tmp`, fsynced, renamed into place and the directory is
//! fsynced; only then are older snapshots removed. The current snapshot is the one with the
//! greatest index. Leftover `*.tmp` files are removed at start.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::SnapshotMeta;

/// The snapshot file format version.
pub const SNAPSHOT_FORMAT: u8 = 1;

const MAGIC: [u8; 8] = [b'P', b'L', b'S', b'N', b'A', b'P', 0, SNAPSHOT_FORMAT];

/// Largest frame accepted when reading, so a corrupt length cannot make us allocate
/// gigabytes. A single record (one provider with its inventories and traits, or one consumer
/// with its allocations) is far below this.
const MAX_FRAME_LEN: u32 = 64 << 20;

/// Buffer size for reading and writing snapshot files.
const IO_BUFFER: usize = 256 << 10;

#[derive(Serialize, Deserialize)]
enum Frame {
    Header { meta: SnapshotMeta },
    Record { key: Vec<u8>, value: Vec<u8> },
    End { records: u64, checksum: u64 },
}

/// FNV-1a, 64 bit: a cheap integrity check against truncation and bit rot in transit (not
/// a defence against a malicious sender; peers are trusted members of the cluster).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The data of one snapshot: an open file in the snapshot format. This is openraft's
/// `SnapshotData` for placementd; the peer transport streams the file's bytes and, on the
/// receiving side, hands a file it wrote back through [`SnapshotFile::open`].
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
}

impl SnapshotFile {
    /// Opens a snapshot file for reading (positioned at its start).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)?;
        Ok(SnapshotFile { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for streaming its bytes.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    /// The metadata in the file's header.
    pub fn read_meta(&mut self) -> Result<SnapshotMeta> {
        self.file.rewind()?;
        let reader = SnapshotReader::new(BufReader::new(&mut self.file))?;
        let meta = reader.meta.clone();
        self.file.rewind()?;
        Ok(meta)
    }
}

/// Bytes a snapshot file is written ahead of the disk at most: [`PacedFile`] syncs its data
/// each time this much more was written.
pub(crate) const SYNC_EVERY: u64 = 4 << 20;

/// A file being written that syncs its data every [`SYNC_EVERY`] bytes, so that the disk
/// takes it in steps as it grows rather than all at once at the final `fsync`.
///
/// Why: a snapshot file is the whole state (240 MiB at 100,000 providers and 1,000,000
/// allocations), and by default the kernel starts writing dirty pages back only when a tenth
/// of the free memory is dirty (`vm.dirty_background_ratio`: gigabytes on a server) or after
/// 30 s, so without this the file reached the disk in one burst at its `fsync`. The Raft log's synced appends share that disk, and an append that came during the
/// burst waited for it (the journal commit its `fsync` needs orders behind the snapshot's
/// data): a write stall as long as the disk took to take the file. In steps, an append waits
/// for one step at most. The writer is the snapshot's own thread, which the steps slow down,
/// not the log.
pub(crate) struct PacedFile {
    file: File,
    unsynced: u64,
}

impl PacedFile {
    pub(crate) fn new(file: File) -> Self {
        PacedFile { file, unsynced: 0 }
    }

    /// Syncs the rest of the data and the metadata, and returns the file.
    pub(crate) fn finish(self) -> io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for PacedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes a snapshot file frame by frame.
pub(crate) struct SnapshotWriter {
    out: BufWriter<PacedFile>,
    sum: Fnv,
    records: u64,
}

impl SnapshotWriter {
    pub(crate) fn create(path: &Path, meta: &SnapshotMeta) -> Result<Self> {
        let file = PacedFile::new(File::create(path)?);
        let mut out = BufWriter::with_capacity(IO_BUFFER, file);
        out.write_all(&MAGIC)?;
        let mut writer = SnapshotWriter {
            out,
            sum: Fnv::new(),
            records: 0,
        };
        writer.frame(&Frame::Header { meta: meta.clone() })?;
        Ok(writer)
    }

    fn frame(&mut self, frame: &Frame) -> Result<()> {
        let body = placement_types::encode(frame)?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|l| *l <= MAX_FRAME_LEN)
            .ok_or_else(|| Error::corrupt(format!("snapshot frame of {} bytes", body.len())))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&body)?;
        self.sum.update(&body);
        Ok(())
    }

    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.records += 1;
        self.frame(&Frame::Record {
            key: key.to_vec(),
            value: value.to_vec(),
        })
    }

    /// Writes the trailer and fsyncs the file.
    pub(crate) fn finish(mut self) -> Result<()> {
        let end = Frame::End {
            records: self.records,
            checksum: self.sum.0,
        };
        let body = placement_types::encode(&end)?;
        let len = u32::try_from(body.len()).map_err(|_| Error::corrupt("snapshot trailer"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&body)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?;
        // Synced: the file is renamed into place next, and a renamed file must be complete.
        file.finish()?;
        Ok(())
    }
}

/// Reads a snapshot file: the header on construction, then records until the verified end.
pub(crate) struct SnapshotReader<R: Read> {
    input: R,
    pub(crate) meta: SnapshotMeta,
    sum: Fnv,
    records: u64,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    pub(crate) fn new(mut input: R) -> Result<Self> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|e| Error::corrupt(format!("snapshot header: {e}")))?;
        if magic[..7] != MAGIC[..7] {
            return Err(Error::corrupt("not a placementd snapshot file"));
        }
        if magic[7] != SNAPSHOT_FORMAT {
            return Err(Error::corrupt(format!(
                "snapshot format {} (this build reads {SNAPSHOT_FORMAT})",
                magic[7]
            )));
        }
        let mut sum = Fnv::new();
        let body = read_frame(&mut input)?;
        sum.update(&body);
        let meta = match decode_frame(&body)? {
            Frame::Header { meta } => meta,
            _ => return Err(Error::corrupt("snapshot does not start with a header")),
        };
        Ok(SnapshotReader {
            input,
            meta,
            sum,
            records: 0,
            done: false,
        })
    }

    /// The next record `(key, value)`, or `None` after a verified trailer.
    pub(crate) fn next_record(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let body = read_frame(&mut self.input)?;
        match decode_frame(&body)? {
            Frame::Record { key, value } => {
                self.sum.update(&body);
                self.records += 1;
                Ok(Some((key, value)))
            }
            Frame::End { records, checksum } => {
                if records != self.records || checksum != self.sum.0 {
                    return Err(Error::corrupt(format!(
                        "snapshot trailer mismatch: {records} records / {checksum:#x} declared, \
                         {} / {:#x} read",
                        self.records, self.sum.0
                    )));
                }
                self.done = true;
                Ok(None)
            }
            Frame::Header { .. } => Err(Error::corrupt("second header in snapshot")),
        }
    }
}

fn read_frame(input: &mut impl Read) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| Error::corrupt(format!("snapshot truncated: {e}")))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME_LEN {
        return Err(Error::corrupt(format!("snapshot frame of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    input
        .read_exact(&mut body)
        .map_err(|e| Error::corrupt(format!("snapshot truncated: {e}")))?;
    Ok(body)
}

fn decode_frame(body: &[u8]) -> Result<Frame> {
    placement_types::decode(body).map_err(|e| Error::corrupt(format!("snapshot frame: {e}")))
}

/// The directory holding snapshot files. Publishing (rename + cleanup) is serialized by a
/// lock because a snapshot build runs in its own task, concurrently with installs.
#[derive(Debug)]
pub(crate) struct SnapshotDir {
    path: PathBuf,
    publish: Mutex<()>,
    tmp_seq: AtomicU64,
}

/// Where a snapshot file sorts: `None` (nothing applied) before any index.
type SnapshotKey = Option<u64>;

fn file_name(meta: &SnapshotMeta) -> String {
    match &meta.last_log_id {
        Some(id) => format!("snapshot-{:020}.snap", id.index),
        None => "snapshot-none.snap".to_string(),
    }
}

fn parse_file_name(name: &str) -> Option<SnapshotKey> {
    let stem = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if stem == "none" {
        return Some(None);
    }
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Some)
}

impl SnapshotDir {
    pub(crate) fn open(path: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&path)?;
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                // A build or install interrupted by a crash; it was never published.
                fs::remove_file(entry.path())?;
            }
        }
        Ok(SnapshotDir {
            path,
            publish: Mutex::new(()),
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// A fresh temporary path in the directory (removed at next start if left behind).
    pub(crate) fn tmp_path(&self, purpose: &str) -> PathBuf {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        self.path
            .join(format!("{purpose}-{}-{seq}.tmp", std::process::id()))
    }

    fn published(&self) -> io::Result<Vec<(SnapshotKey, PathBuf)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if let Some(key) = parse_file_name(&entry.file_name().to_string_lossy()) {
                found.push((key, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The current (greatest) published snapshot file, opened under the publish lock so a
    /// concurrent publish cannot remove it between listing and opening.
    pub(crate) fn open_current(&self) -> io::Result<Option<SnapshotFile>> {
        let _guard = self.publish.lock().unwrap_or_else(|e| e.into_inner());
        match self.published()?.pop() {
            Some((_, path)) => Ok(Some(SnapshotFile::open(path)?)),
            None => Ok(None),
        }
    }

    /// Renames a complete, fsynced temporary file into place for `meta`, makes the rename
    /// durable, opens it, then removes every other published snapshot but the greatest.
    pub(crate) fn publish(&self, tmp: &Path, meta: &SnapshotMeta) -> Result<SnapshotFile> {
        let _guard = self.publish.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path.join(file_name(meta));
        fs::rename(tmp, &path)?;
        // Synced: fsync the directory so the rename itself survives a power failure.
        File::open(&self.path)?.sync_all()?;
        let file = SnapshotFile::open(&path)?;
        let mut published = self.published()?;
        published.pop();
        for (_, old) in published {
            if let Err(e) = fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot remove old snapshot");
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StoredMembership, TypeConfig};

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id::<TypeConfig>(2, 1, index)),
            last_membership: StoredMembership::default(),
        }
    }

    #[test]
    fn a_paced_file_holds_every_byte_written_across_its_sync_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("paced");
        let step = usize::try_from(SYNC_EVERY).expect("fits");
        // Pieces that straddle the steps, as a BufWriter hands them over.
        let bytes: Vec<u8> = (0..3 * step + 12_345).map(|i| (i % 251) as u8).collect();
        let mut out = BufWriter::with_capacity(
            IO_BUFFER,
            PacedFile::new(File::create(&path).expect("create")),
        );
        for piece in bytes.chunks(100_003) {
            out.write_all(piece).expect("write");
        }
        let out = out.into_inner().map_err(|e| e.into_error()).expect("flush");
        assert!(
            out.unsynced < SYNC_EVERY,
            "a step was synced: {}",
            out.unsynced
        );
        out.finish().expect("finish");
        assert_eq!(fs::read(&path).expect("read"), bytes);
    }

    fn write(path: &Path, meta: &SnapshotMeta, records: &[(&[u8], &[u8])]) {
        let mut w = SnapshotWriter::create(path, meta).expect("create");
        for (k, v) in records {
            w.record(k, v).expect("record");
        }
        w.finish().expect("finish");
    }

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    fn read_all(path: &Path) -> Result<(SnapshotMeta, Records)> {
        let mut r = SnapshotReader::new(BufReader::new(File::open(path)?))?;
        let mut out = Vec::new();
        while let Some(kv) = r.next_record()? {
            out.push(kv);
        }
        Ok((r.meta.clone(), out))
    }

    #[test]
    fn file_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        write(&path, &meta(7), &[(b"\x01a", b"1"), (b"\x03b", b"22")]);
        let (m, records) = read_all(&path).expect("reads");
        assert_eq!(m, meta(7));
        assert_eq!(
            records,
            vec![
                (b"\x01a".to_vec(), b"1".to_vec()),
                (b"\x03b".to_vec(), b"22".to_vec())
            ]
        );
    }

    #[test]
    fn truncated_or_damaged_file_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        write(&path, &meta(7), &[(b"\x01a", b"1"), (b"\x03b", b"22")]);
        let bytes = fs::read(&path).expect("read");
        for cut in [4, 12, bytes.len() - 1] {
            fs::write(&path, &bytes[..cut]).expect("write");
            assert!(
                matches!(read_all(&path), Err(Error::Corrupt(_))),
                "cut at {cut}"
            );
        }
        // Flip one byte inside the last record's value: the checksum catches it.
        let mut flipped = bytes.clone();
        let pos = bytes
            .windows(2)
            .rposition(|w| w == b"22")
            .expect("value present");
        flipped[pos] = b'3';
        fs::write(&path, &flipped).expect("write");
        assert!(matches!(read_all(&path), Err(Error::Corrupt(_))));
    }

    #[test]
    fn publish_keeps_only_the_greatest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snaps = SnapshotDir::open(dir.path().join("snapshots")).expect("open");
        for index in [9, 10, 3] {
            let tmp = snaps.tmp_path("test");
            write(&tmp, &meta(index), &[]);
            snaps.publish(&tmp, &meta(index)).expect("publish");
        }
        let mut current = snaps.open_current().expect("list").expect("some");
        assert_eq!(current.read_meta().expect("meta"), meta(10));
        assert_eq!(snaps.published().expect("list").len(), 1);
        assert_eq!(parse_file_name("snapshot-none.snap"), Some(None));
        assert_eq!(parse_file_name("snapshot-12.snap"), None);
    }

    #[test]
    fn leftover_tmp_files_are_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snapshots");
        fs::create_dir_all(&path).expect("mkdir");
        fs::write(path.join("build-1-0.tmp"), b"partial").expect("write");
        let _snaps = SnapshotDir::open(path.clone()).expect("open");
        assert_eq!(fs::read_dir(&path).expect("ls").count(), 0);
    }
}
