//! Hand-made histories for the checkers' unit tests.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::history::{
    History, KeyWrite, NodeFinal, Op, OpKind, Outcome, ProviderFinal, Seen, Value,
    CONCURRENT_UPDATE,
};

/// A deterministic UUID.
pub(crate) fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A value with one allocation: `"<provider>/<class>" -> amount`.
pub(crate) fn val(provider: Uuid, class: &str, amount: u64) -> Value {
    let mut v = Value::new();
    v.insert(format!("{provider}/{class}"), amount);
    v
}

/// What a present consumer reads as.
pub(crate) fn seen(generation: u64, value: &Value) -> Seen {
    Seen {
        generation: Some(generation),
        value: value.clone(),
    }
}

pub(crate) fn ok() -> Outcome {
    Outcome::Ok
}

pub(crate) fn unknown() -> Outcome {
    Outcome::Unknown {
        why: "timeout".to_string(),
    }
}

/// A consumer generation conflict.
pub(crate) fn conflict() -> Outcome {
    Outcome::Fail {
        status: 409,
        code: Some(CONCURRENT_UPDATE.to_string()),
    }
}

pub(crate) fn fail(status: u16) -> Outcome {
    Outcome::Fail { status, code: None }
}

/// Milliseconds to the history's nanoseconds.
pub(crate) fn t(ms: u64) -> u64 {
    ms * 1_000_000
}

/// Builds a [`History`] op by op; ids are assigned in call order, times are in ms.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub(crate) h: History,
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, client: u32, span: (u64, u64), kind: OpKind, outcome: Outcome) {
        let id = self.h.ops.len() as u64;
        self.h.ops.push(Op {
            id,
            client,
            node: u64::from(client % 3) + 1,
            invoke_ns: t(span.0),
            complete_ns: t(span.1),
            kind,
            outcome,
        });
    }

    /// A single-key write (PUT /allocations/{c}).
    pub(crate) fn write(
        &mut self,
        client: u32,
        span: (u64, u64),
        consumer: Uuid,
        expected: Option<u64>,
        value: &Value,
        outcome: Outcome,
    ) -> &mut Builder {
        let writes = vec![KeyWrite {
            consumer,
            expected_generation: expected,
            value: value.clone(),
        }];
        self.push(client, span, OpKind::Write { writes }, outcome);
        self
    }

    /// A multi-key write (POST /allocations).
    pub(crate) fn write_many(
        &mut self,
        client: u32,
        span: (u64, u64),
        writes: &[(Uuid, Option<u64>, Value)],
        outcome: Outcome,
    ) -> &mut Builder {
        let writes = writes
            .iter()
            .map(|(consumer, expected, value)| KeyWrite {
                consumer: *consumer,
                expected_generation: *expected,
                value: value.clone(),
            })
            .collect();
        self.push(client, span, OpKind::Write { writes }, outcome);
        self
    }

    pub(crate) fn delete(
        &mut self,
        client: u32,
        span: (u64, u64),
        consumer: Uuid,
        outcome: Outcome,
    ) -> &mut Builder {
        self.push(client, span, OpKind::Delete { consumer }, outcome);
        self
    }

    /// A successful GET /allocations/{c}.
    pub(crate) fn read(
        &mut self,
        client: u32,
        span: (u64, u64),
        consumer: Uuid,
        saw: Seen,
    ) -> &mut Builder {
        let kind = OpKind::ReadConsumer {
            consumer,
            seen: Some(saw),
        };
        self.push(client, span, kind, ok());
        self
    }

    /// A successful provider read, with usages if given.
    pub(crate) fn read_provider(
        &mut self,
        client: u32,
        span: (u64, u64),
        provider: Uuid,
        generation: u64,
        usages: Option<&[(&str, u64)]>,
    ) -> &mut Builder {
        let usages = usages.map(|u| {
            u.iter()
                .map(|(class, n)| ((*class).to_string(), *n))
                .collect::<BTreeMap<String, u64>>()
        });
        let kind = OpKind::ReadProvider {
            provider,
            generation: Some(generation),
            usages,
        };
        self.push(client, span, kind, ok());
        self
    }

    /// Adds one node's final state per node id, all with the same consumers and digest.
    pub(crate) fn finals(&mut self, nodes: &[u64], consumers: &[(Uuid, Seen)]) -> &mut Builder {
        for &node in nodes {
            self.h.finals.push(NodeFinal {
                node,
                consumers: consumers.iter().cloned().collect(),
                providers: BTreeMap::new(),
                digest: Some("d1g35t".to_string()),
            });
        }
        self
    }

    pub(crate) fn build(&self) -> History {
        self.h.clone()
    }
}

/// A provider's final state with the same numbers for usages and allocated.
pub(crate) fn provider_final(generation: u64, usages: &[(&str, u64)]) -> ProviderFinal {
    let map: BTreeMap<String, u64> = usages
        .iter()
        .map(|(class, n)| ((*class).to_string(), *n))
        .collect();
    ProviderFinal {
        generation,
        usages: map.clone(),
        allocated: map,
    }
}
