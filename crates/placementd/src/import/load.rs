//! Sending the records to the cluster: bounded batches, one Raft log entry each, proposed
//! through a member's admin API (`POST /admin/import`).
//!
//! # Batches
//! [`batches`] cuts the records in their write order (classes, traits, providers parents
//! first, consumers) into [`ImportBatch`]es of at most [`MAX_BATCH_RECORDS`] records
//! (a provider counts with its inventories, traits and aggregates, a consumer with its
//! allocations) and about [`MAX_BATCH_BYTES`] encoded: far below the peer port's body
//! limit, and small enough that one entry replicates in milliseconds. Batch 0 always
//! exists, even for an empty source: it is the entry that checks the target is empty.
//!
//! # Retries
//! Each batch has a request id drawn once; a batch whose answer is lost (timeout, leader
//! change: 503, a connection reset) is sent again with the same id until
//! [`RETRY_FOR`] has passed, and the state machine answers a retry of an applied entry with
//! its first outcome instead of applying it twice. A refusal (the target is not empty, a
//! record collides) is final.

use std::time::{Duration, Instant};

use placement_types::{Consumer, ImportBatch, ResourceProvider, Uuid};
use serde::{Deserialize, Serialize};

use super::convert::Dump;

/// At most this many records (with their sub-records) in one batch.
pub const MAX_BATCH_RECORDS: usize = 2_000;

/// A batch is closed once its records encode to about this many bytes (one record more may
/// go over it). The admin endpoint takes bodies up to [`MAX_IMPORT_BODY`].
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// The largest body `POST /admin/import` accepts: room for a batch of one huge record,
/// still a quarter of `placement_raft::MAX_APPEND_BYTES`' Raft message.
pub const MAX_IMPORT_BODY: usize = 4 << 20;

/// How long a batch is retried while the cluster cannot take it (no leader, 503).
pub const RETRY_FOR: Duration = Duration::from_secs(120);

/// The timeout of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The body of `POST /admin/import` (bincode): a batch and the request id that dedupes
/// its retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub id: Uuid,
    pub batch: ImportBatch,
}

/// What one batch holds, for progress and the final report.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    pub resource_classes: usize,
    pub traits: usize,
    pub providers: usize,
    pub consumers: usize,
    pub allocations: usize,
}

impl Tally {
    pub fn of(batch: &ImportBatch) -> Tally {
        Tally {
            resource_classes: batch.resource_classes.len(),
            traits: batch.traits.len(),
            providers: batch.providers.len(),
            consumers: batch.consumers.len(),
            allocations: batch.consumers.iter().map(|c| c.allocations.len()).sum(),
        }
    }

    pub fn add(&mut self, other: Tally) {
        self.resource_classes += other.resource_classes;
        self.traits += other.traits;
        self.providers += other.providers;
        self.consumers += other.consumers;
        self.allocations += other.allocations;
    }

    pub fn records(&self) -> usize {
        self.resource_classes + self.traits + self.providers + self.consumers
    }
}

fn provider_weight(p: &ResourceProvider) -> usize {
    1 + p.inventories.len() + p.traits.len() + p.aggregates.len()
}

fn consumer_weight(c: &Consumer) -> usize {
    1 + c.allocations.len()
}

/// Cuts the records into batches (see the module doc).
pub fn batches(dump: Dump) -> Vec<ImportBatch> {
    let mut cutter = Cutter {
        done: Vec::new(),
        current: ImportBatch::empty(0),
        records: 0,
        bytes: 0,
    };
    for rc in dump.resource_classes {
        let bytes = encoded_len(&rc);
        cutter.room(1, bytes);
        cutter.current.resource_classes.push(rc);
    }
    for t in dump.traits {
        let bytes = encoded_len(&t);
        cutter.room(1, bytes);
        cutter.current.traits.push(t);
    }
    for p in dump.providers {
        let bytes = encoded_len(&p);
        cutter.room(provider_weight(&p), bytes);
        cutter.current.providers.push(p);
    }
    for c in dump.consumers {
        let bytes = encoded_len(&c);
        cutter.room(consumer_weight(&c), bytes);
        cutter.current.consumers.push(c);
    }
    cutter.done.push(cutter.current);
    cutter.done
}

fn encoded_len<T: Serialize>(value: &T) -> usize {
    // Encoding plain records cannot fail; a failure would show at the real encoding.
    placement_types::encode(value).map_or(0, |b| b.len())
}

struct Cutter {
    done: Vec<ImportBatch>,
    current: ImportBatch,
    records: usize,
    bytes: usize,
}

impl Cutter {
    /// Makes room for a record of `weight` and `bytes`: closes the current batch when the
    /// record would take it over a bound (never while it is empty).
    fn room(&mut self, weight: usize, bytes: usize) {
        let full = self.records > 0
            && (self.records + weight > MAX_BATCH_RECORDS || self.bytes + bytes > MAX_BATCH_BYTES);
        if full {
            let seq = self.current.seq + 1;
            let closed = std::mem::replace(&mut self.current, ImportBatch::empty(seq));
            self.done.push(closed);
            self.records = 0;
            self.bytes = 0;
        }
        self.records += weight;
        self.bytes += bytes;
    }
}

/// How sending a batch failed.
#[derive(Debug)]
pub enum SendError {
    /// The cluster refused the batch (4xx): final, the message says why.
    Refused(String),
    /// The batch may or may not have been applied (no answer within [`RETRY_FOR`]).
    Unknown(String),
    /// No attempt reached the member (every connection failed): not applied.
    Unreachable(String),
}

/// Sends one batch to `url` (the admin import endpoint) until it is applied, refused, or
/// [`RETRY_FOR`] has passed.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    request: &ImportRequest,
) -> Result<(), SendError> {
    let body = placement_types::encode(request)
        .map_err(|e| SendError::Refused(format!("encoding batch {}: {e}", request.batch.seq)))?;
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut reached = false;
    loop {
        let attempt = http
            .post(url)
            .header("content-type", "application/octet-stream")
            .timeout(ATTEMPT_TIMEOUT)
            .body(body.clone())
            .send()
            .await;
        let retry_reason = match attempt {
            Ok(response) => {
                reached = true;
                let status = response.status();
                let answer: serde_json::Value = response.json().await.unwrap_or_default();
                let message = answer["error"]
                    .as_str()
                    .unwrap_or("no error message")
                    .to_string();
                if status.is_success() {
                    return Ok(());
                }
                if status.is_client_error() {
                    return Err(SendError::Refused(format!("{status}: {message}")));
                }
                format!("{status}: {message}")
            }
            Err(e) => {
                // A request that failed to connect was never sent.
                reached |= !e.is_connect();
                super::describe(&e)
            }
        };
        if started.elapsed() >= RETRY_FOR {
            let seq = request.batch.seq;
            return Err(if reached {
                SendError::Unknown(format!(
                    "no answer for batch {seq} within {RETRY_FOR:?}: {retry_reason}"
                ))
            } else {
                SendError::Unreachable(format!(
                    "cannot reach the admin API for batch {seq} within {RETRY_FOR:?}: \
                     {retry_reason}"
                ))
            });
        }
        tracing::debug!(seq = request.batch.seq, %retry_reason, "import batch retried");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use placement_types::{Allocation, Inventory, ResourceClass, Timestamp, Trait, Uuid as U};

    use super::*;
    use crate::import::convert::Counts;

    fn provider(n: u128, inventories: usize) -> ResourceProvider {
        ResourceProvider {
            uuid: U::from_u128(n),
            name: format!("rp{n}"),
            generation: 1,
            parent: None,
            root: U::from_u128(n),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            inventories: (0..inventories)
                .map(|i| (format!("CUSTOM_{i}"), Inventory::with_total(1)))
                .collect::<BTreeMap<_, _>>(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::new(),
        }
    }

    fn consumer(n: u128) -> Consumer {
        Consumer {
            uuid: U::from_u128(n),
            project_id: "p".into(),
            user_id: "u".into(),
            generation: 0,
            consumer_type: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            allocations: vec![Allocation {
                provider: U::from_u128(1),
                resource_class: "VCPU".into(),
                used: 1,
            }],
        }
    }

    #[test]
    fn an_empty_source_is_one_empty_batch_0() {
        let b = batches(Dump::default());
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].seq, 0);
        assert_eq!(Tally::of(&b[0]).records(), 0);
    }

    #[test]
    fn batches_are_bounded_and_keep_the_order() {
        let dump = Dump {
            resource_classes: vec![ResourceClass {
                id: 10_000,
                name: "CUSTOM_A".into(),
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
            }],
            traits: vec![Trait {
                name: "CUSTOM_T".into(),
                created_at: Timestamp(0),
            }],
            // 3000 providers of weight 2, then 1500 consumers of weight 2.
            providers: (1..=3_000).map(|n| provider(n, 1)).collect(),
            consumers: (1..=1_500).map(consumer).collect(),
            counts: Counts::default(),
        };
        let b = batches(dump);
        let seqs: Vec<u32> = b.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, (0..b.len() as u32).collect::<Vec<_>>());
        let mut total = Tally::default();
        let mut order = Vec::new();
        for batch in &b {
            let weight: usize = batch.resource_classes.len()
                + batch.traits.len()
                + batch.providers.iter().map(provider_weight).sum::<usize>()
                + batch.consumers.iter().map(consumer_weight).sum::<usize>();
            assert!(
                weight <= MAX_BATCH_RECORDS,
                "batch {} weighs {weight}",
                batch.seq
            );
            let bytes = placement_types::encode(batch).expect("encodes").len();
            assert!(
                bytes <= MAX_IMPORT_BODY / 2,
                "batch {} is {bytes} bytes",
                batch.seq
            );
            total.add(Tally::of(batch));
            order.extend(batch.providers.iter().map(|p| p.uuid.as_u128()));
        }
        assert_eq!(b[0].resource_classes.len(), 1);
        assert_eq!(b[0].traits.len(), 1);
        assert_eq!((total.providers, total.consumers), (3_000, 1_500));
        assert_eq!(order, (1..=3_000).collect::<Vec<_>>());
        // 9002 of weight in batches of ≤ 2000; consumers start in the last providers' batch.
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn a_huge_record_gets_a_batch_of_its_own() {
        let dump = Dump {
            providers: vec![provider(1, 1), provider(2, 5_000), provider(3, 1)],
            ..Dump::default()
        };
        let b = batches(dump);
        let sizes: Vec<usize> = b.iter().map(|b| b.providers.len()).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
    }
}
