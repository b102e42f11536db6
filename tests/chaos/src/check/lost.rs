//! "lost-writes": every one-shot consumer ends up exactly as its single write said.
//!
//! A one-shot consumer is created by one write (with `consumer_generation: null`) and never
//! touched again, so its final state is fully determined by that write's outcome:
//!
//! * acknowledged: it exists with generation 1 and the written value, on *every* node (a
//!   node that lost it lost an acknowledged, committed write);
//! * refused (any definite failure): the server changed nothing, so it is absent everywhere;
//! * unknown: it may or may not have been applied, but all nodes must agree, and if present
//!   it holds exactly the written value at generation 1.
//!
//! This is the classic set test: it needs no search and catches lost acknowledged writes
//! (e.g. a leader acknowledging before commit, or a snapshot dropping entries) with
//! certainty, plus phantom writes and divergence on these keys. A node whose final read
//! lacks the consumer is a failure too: the check could not be done, so it must not pass.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{count, describe_op, short_seen, Report, Violations};
use crate::history::{History, KeyWrite, Op, OpKind, Outcome, Seen};

const NAME: &str = "lost-writes";

/// Checks that every consumer of `h.one_shot` is, on every final node, as its only write
/// determined. Fails when there are no final reads.
pub fn lost_writes(h: &History) -> Report {
    if h.finals.is_empty() {
        return Report::new(
            NAME,
            false,
            format!(
                "{} one-shot writes, but no final node state: nothing to check against",
                count(h.one_shot.len())
            ),
            "History::finals is empty: the final reads did not happen".to_string(),
        );
    }

    // The writes and deletes touching each one-shot consumer.
    let mut writes: BTreeMap<Uuid, Vec<(&Op, &KeyWrite)>> = BTreeMap::new();
    let mut deletes: BTreeMap<Uuid, Vec<&Op>> = BTreeMap::new();
    for op in &h.ops {
        match &op.kind {
            OpKind::Write { writes: ws } => {
                for kw in ws.iter().filter(|kw| h.one_shot.contains(&kw.consumer)) {
                    writes.entry(kw.consumer).or_default().push((op, kw));
                }
            }
            OpKind::Delete { consumer } if h.one_shot.contains(consumer) => {
                deletes.entry(*consumer).or_default().push(op);
            }
            _ => {}
        }
    }

    let nodes = h.finals.len();
    let absent = Seen::absent();
    let mut v = Violations::default();
    let (mut acked, mut lost) = (0usize, 0usize);
    let (mut refused, mut phantom) = (0usize, 0usize);
    let (mut unknown, mut applied, mut split) = (0usize, 0usize, 0usize);
    let (mut unread, mut malformed) = (0usize, 0usize);

    for c in &h.one_shot {
        let ws = writes.get(c).map(Vec::as_slice).unwrap_or_default();
        let ds = deletes.get(c).map(Vec::as_slice).unwrap_or_default();
        let (op, kw) = match (ws, ds) {
            ([(op, kw)], []) => (*op, *kw),
            _ => {
                malformed += 1;
                v.push(|| {
                    let ids: Vec<String> = ws
                        .iter()
                        .map(|(op, _)| format!("#{}", op.id))
                        .chain(ds.iter().map(|op| format!("#{} (delete)", op.id)))
                        .collect();
                    format!(
                        "MALFORMED consumer {c}: one-shot but touched by {} writes and {} deletes \
                         (expected exactly one write) [{}]",
                        ws.len(),
                        ds.len(),
                        ids.join(", ")
                    )
                });
                continue;
            }
        };

        // What each node read.
        let finals: Vec<(u64, Option<&Seen>)> = h
            .finals
            .iter()
            .map(|f| (f.node, f.consumers.get(c)))
            .collect();
        let reading = |s: Option<&Seen>| s.map_or_else(|| "no final read".to_string(), short_seen);
        let listing = || {
            finals
                .iter()
                .map(|(node, s)| format!("node {node}: {}", reading(*s)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if finals.iter().any(|(_, s)| s.is_none()) {
            unread += 1;
            v.push(|| {
                format!(
                    "UNREAD consumer {c}: missing from some node's final read; write {}; {}",
                    describe_op(op),
                    listing()
                )
            });
            continue;
        }
        let present = Seen {
            generation: Some(1),
            value: kw.value.clone(),
        };
        let all = |want: &Seen| finals.iter().all(|(_, s)| *s == Some(want));

        match &op.outcome {
            Outcome::Ok => {
                acked += 1;
                if !all(&present) {
                    lost += 1;
                    v.push(|| {
                        format!(
                            "LOST consumer {c}: acknowledged write {} expects {} on every node; {}",
                            describe_op(op),
                            short_seen(&present),
                            listing()
                        )
                    });
                }
            }
            Outcome::Fail { .. } => {
                refused += 1;
                if !all(&absent) {
                    phantom += 1;
                    v.push(|| {
                        format!(
                            "PHANTOM consumer {c}: refused write {} must leave it absent; {}",
                            describe_op(op),
                            listing()
                        )
                    });
                }
            }
            Outcome::Unknown { .. } => {
                unknown += 1;
                if all(&present) {
                    applied += 1;
                } else if !all(&absent) {
                    split += 1;
                    v.push(|| {
                        format!(
                            "SPLIT consumer {c}: unknown write {} must be {} on all nodes or absent \
                             on all; {}",
                            describe_op(op),
                            short_seen(&present),
                            listing()
                        )
                    });
                }
            }
        }
    }

    let presence = if lost == 0 {
        format!("all present on {nodes} nodes")
    } else {
        format!("{} not present on every one of {nodes} nodes", count(lost))
    };
    let mut summary = format!(
        "{} one-shot writes: {} acknowledged, {presence}; {} refused ({} reappeared); \
         {} unknown ({} applied, {} split); {} lost",
        count(h.one_shot.len()),
        count(acked),
        count(refused),
        count(phantom),
        count(unknown),
        count(applied),
        count(split),
        count(lost),
    );
    if unread > 0 {
        summary.push_str(&format!("; {} not read on every node", count(unread)));
    }
    if malformed > 0 {
        summary.push_str(&format!("; {} not written exactly once", count(malformed)));
    }
    Report::new(NAME, v.is_empty(), summary, v.into_detail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    /// Four one-shot consumers: acknowledged, refused, unknown applied, unknown not applied.
    fn history() -> (Builder, [Uuid; 4]) {
        let p = uid(100);
        let c = [uid(1), uid(2), uid(3), uid(4)];
        let mut b = Builder::new();
        b.write(1, (0, 10), c[0], None, &val(p, "VCPU", 1), ok())
            .write(2, (5, 12), c[1], None, &val(p, "VCPU", 99), fail(409))
            .write(3, (6, 30), c[2], None, &val(p, "VCPU", 2), unknown())
            .write(1, (11, 40), c[3], None, &val(p, "VCPU", 3), unknown())
            .read(2, (13, 14), c[0], seen(1, &val(p, "VCPU", 1)));
        b.h.one_shot = c.iter().copied().collect();
        (b, c)
    }

    #[test]
    fn passes_when_every_outcome_is_reflected() {
        let p = uid(100);
        let (mut b, c) = history();
        b.finals(
            &[1, 2, 3],
            &[
                (c[0], seen(1, &val(p, "VCPU", 1))),
                (c[1], Seen::absent()),
                (c[2], seen(1, &val(p, "VCPU", 2))),
                (c[3], Seen::absent()),
            ],
        );
        let r = lost_writes(&b.build());
        assert!(r.ok, "{r:?}");
        assert!(r.detail.is_empty());
        assert!(
            r.summary.contains("1 acknowledged, all present on 3 nodes"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("2 unknown (1 applied"), "{}", r.summary);
    }

    #[test]
    fn fails_a_lost_acknowledged_write() {
        let p = uid(100);
        let (mut b, c) = history();
        b.finals(
            &[1, 2, 3],
            &[
                (c[0], seen(1, &val(p, "VCPU", 1))),
                (c[1], Seen::absent()),
                (c[2], Seen::absent()),
                (c[3], Seen::absent()),
            ],
        );
        // Node 3 lost the acknowledged write.
        b.h.finals[2].consumers.insert(c[0], Seen::absent());
        let r = lost_writes(&b.build());
        assert!(!r.ok);
        assert!(r.summary.ends_with("1 lost"), "{}", r.summary);
        assert!(r.detail.contains("LOST consumer"), "{}", r.detail);
        assert!(r.detail.contains("node 3: absent"), "{}", r.detail);
    }

    #[test]
    fn fails_phantom_split_unread_and_no_finals() {
        let p = uid(100);
        let (b, c) = history();
        assert!(!lost_writes(&b.build()).ok, "no finals");

        let mut bad = Builder { h: b.build() };
        bad.finals(
            &[1, 2],
            &[
                (c[0], seen(1, &val(p, "VCPU", 1))),
                (c[1], seen(1, &val(p, "VCPU", 99))),
                (c[2], seen(1, &val(p, "VCPU", 2))),
            ],
        );
        bad.h.finals[1].consumers.insert(c[2], Seen::absent());
        let r = lost_writes(&bad.build());
        assert!(!r.ok);
        assert!(r.detail.contains("PHANTOM"), "{}", r.detail);
        assert!(r.detail.contains("SPLIT"), "{}", r.detail);
        assert!(r.detail.contains("UNREAD"), "{}", r.detail);
    }

    #[test]
    fn fails_a_one_shot_consumer_written_twice() {
        let p = uid(100);
        let (mut b, c) = history();
        b.write(1, (50, 60), c[0], Some(1), &val(p, "VCPU", 5), ok());
        b.finals(&[1], &[(c[0], seen(2, &val(p, "VCPU", 5)))]);
        let r = lost_writes(&b.build());
        assert!(!r.ok);
        assert!(r.detail.contains("MALFORMED"), "{}", r.detail);
    }
}
