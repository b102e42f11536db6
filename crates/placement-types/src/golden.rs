//! Golden files that pin encodings (test support, used by the format tests of
//! placement-storage and placement-raft).
//!
//! Every persisted or replicated encoding (log entries and every `Command` variant, state
//! keys and records, metadata, dedupe rows, the snapshot header, peer messages) has a named
//! sample whose bytes are written, in hex, to a golden file next to the test. A change of
//! those bytes is a format change: data directories and peers of the previous build would
//! no longer read it. So [`check`] fails on it unless the format version written in the
//! file's first line changed too:
//!
//! - same version, different bytes: failure, always (even with `UPDATE_GOLDEN=1`): bump the
//!   version (`keys::FORMAT_VERSION`, `SNAPSHOT_FORMAT`, a new `LogPayload` variant, or
//!   `PEER_PROTOCOL_VERSION`) and write the migration that reads the old bytes;
//! - a new version: with `UPDATE_GOLDEN=1` the file is rewritten for it, and the previous one
//!   is kept beside it as `<name>.<old version>.txt`, the bytes a migration must still read;
//! - a new sample (a new variant added at the end of an enum): with `UPDATE_GOLDEN=1` it is
//!   added; without, the test asks for it;
//! - a sample that disappeared: failure (its bytes may still be on disk).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The bytes of a sample: `crate::encode`, the encoding of every log entry, record and peer
/// message. Panics if the sample does not encode (test support: a bad sample is a test bug).
pub fn encoded<T: serde::Serialize>(sample: &T) -> Vec<u8> {
    match crate::encode(sample) {
        Ok(bytes) => bytes,
        Err(e) => panic!("golden sample does not encode: {e}"),
    }
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Compares `samples` (name, bytes) with the golden file at `path` written for `version`
/// (a free-form line such as `storage 1, snapshot 1, log payload V1`). Returns a readable
/// explanation of every difference; rewrites the file when `UPDATE_GOLDEN=1` allows it.
pub fn check(path: &Path, version: &str, samples: &[(String, Vec<u8>)]) -> Result<(), String> {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    check_with(path, version, samples, update)
}

/// [`check`] with the `UPDATE_GOLDEN` decision made by the caller.
pub fn check_with(
    path: &Path,
    version: &str,
    samples: &[(String, Vec<u8>)],
    update: bool,
) -> Result<(), String> {
    let header = format!("# format version: {version}");
    let mut body = String::new();
    for (name, bytes) in samples {
        let _ = writeln!(body, "{name} {}", hex(bytes));
    }
    let wanted = format!("{header}\n{body}");
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(_) if update => return write(path, &wanted),
        Err(e) => {
            return Err(format!(
                "{}: {e}; run with UPDATE_GOLDEN=1 to pin the current encodings",
                path.display()
            ))
        }
    };
    let (old_header, pinned) = parse(&old);
    let mut problems = Vec::new();
    let mut new = Vec::new();
    let current: BTreeMap<&str, String> =
        samples.iter().map(|(n, b)| (n.as_str(), hex(b))).collect();
    for (name, bytes) in &pinned {
        match current.get(name.as_str()) {
            None => problems.push(format!("sample `{name}` is pinned but no longer produced")),
            Some(now) if now != bytes => problems.push(format!(
                "`{name}` encodes differently:\n    pinned {bytes}\n    now    {now}"
            )),
            Some(_) => {}
        }
    }
    for (name, _) in samples {
        if !pinned.contains_key(name.as_str()) {
            new.push(name.as_str());
        }
    }
    if old_header != header {
        if update {
            let kept = path.with_extension(format!(
                "{}.txt",
                old_header
                    .trim_start_matches("# format version: ")
                    .replace([' ', ','], "")
            ));
            std::fs::write(&kept, &old).map_err(|e| format!("{}: {e}", kept.display()))?;
            return write(path, &wanted);
        }
        return Err(format!(
            "{}: pinned for `{old_header}`, the code is at `{header}`: run with UPDATE_GOLDEN=1 \
             to pin the new version (the old file is kept beside it)",
            path.display()
        ));
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}: an encoding changed within `{version}`. Data written by the previous build \
             would not read back. Bump the format version and add a migration for the old \
             bytes; UPDATE_GOLDEN=1 then pins the new version.\n  {}",
            path.display(),
            problems.join("\n  ")
        ));
    }
    if !new.is_empty() {
        if update {
            return write(path, &wanted);
        }
        return Err(format!(
            "{}: new samples not pinned yet: {}; run with UPDATE_GOLDEN=1",
            path.display(),
            new.join(", ")
        ));
    }
    Ok(())
}

fn parse(text: &str) -> (String, BTreeMap<String, String>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let pinned = lines
        .filter_map(|l| l.split_once(' '))
        .map(|(n, h)| (n.to_string(), h.to_string()))
        .collect();
    (header, pinned)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(b: u8) -> Vec<(String, Vec<u8>)> {
        vec![("a".into(), vec![1, 2]), ("b".into(), vec![b])]
    }

    #[test]
    fn a_changed_encoding_fails_unless_the_version_changed() {
        let dir = std::env::temp_dir().join(format!("golden-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("golden test");
        let path = dir.join("formats.txt");
        std::fs::write(&path, "# format version: v1\na 0102\nb 03\n").expect("golden test");
        assert!(check_with(&path, "v1", &samples(3), false).is_ok());
        let err = check_with(&path, "v1", &samples(4), false).expect_err("an error");
        assert!(err.contains("`b` encodes differently"), "{err}");
        assert!(err.contains("Bump the format version"), "{err}");
        let err = check_with(&path, "v2", &samples(4), false).expect_err("an error");
        assert!(err.contains("UPDATE_GOLDEN=1"), "{err}");
        let err = check_with(&path, "v1", &samples(3)[..1], false).expect_err("an error");
        assert!(err.contains("no longer produced"), "{err}");
        let mut more = samples(3);
        more.push(("c".into(), vec![5]));
        let err = check_with(&path, "v1", &more, false).expect_err("an error");
        assert!(err.contains("new samples not pinned yet: c"), "{err}");
        // A bump with UPDATE_GOLDEN: re-pinned, the old file kept beside it.
        assert!(check_with(&path, "v2", &samples(4), true).is_ok());
        assert!(check_with(&path, "v2", &samples(4), false).is_ok());
        assert!(dir.join("formats.v1.txt").exists());
        // Within a version, UPDATE_GOLDEN never re-pins changed bytes.
        assert!(check_with(&path, "v2", &samples(5), true).is_err());
        std::fs::remove_dir_all(&dir).expect("golden test");
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
