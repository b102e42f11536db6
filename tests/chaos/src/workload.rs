//! The workload: clients that send random Placement requests to every node and record each
//! one in the history.
//!
//! What it does (documented in docs/chaos.md):
//! - **Providers**: a few small ones (`--providers`, VCPU 16 and MEMORY_MB 8192 each), so
//!   that capacity is often hit, and one large "set" provider for the one-shot consumers.
//! - **Register consumers** (`4 x clients` of them): PUT /allocations/{c} with the consumer
//!   generation the client last saw (sometimes a deliberately wrong one), POST /allocations
//!   for two at once, DELETE /allocations/{c}, GET /allocations/{c}. Each is a register whose
//!   history the linearizability checker searches.
//! - **One-shot consumers**: a fresh consumer written once (1 VCPU on the set provider) and
//!   never touched again, so a lost acknowledged write stays visible at the end.
//! - **Provider reads**: GET /resource_providers/{p}/usages and /resource_providers/{p} (usage
//!   against capacity, generations that must never go backwards).
//!
//! Every client sends one request at a time, to the members in turn (so consecutive requests
//! of one client go to different nodes). Outcomes: 2xx = ok; 4xx = a definite failure (the
//! server refused and changed nothing); a connection that could not be opened = a definite
//! failure (nothing was sent); a timeout, a reset connection or a 5xx = unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::history::{KeyWrite, Op, OpKind, Outcome, Seen, Value, CONCURRENT_UPDATE};

/// Microversion of every request: consumer generations and types.
const MICROVERSION: &str = "placement 1.39";
/// Capacity of each small provider.
pub const SMALL_VCPU: u64 = 16;
pub const SMALL_MEMORY_MB: u64 = 8192;
/// Capacity of the set provider (never the limit).
const SET_VCPU: u64 = 1_000_000_000;

/// What the clients and the driver share.
pub struct Shared {
    pub start: Instant,
    /// `(node id, base URL)` of every current member, in the order clients use them.
    pub members: RwLock<Vec<(u64, String)>>,
    pub ops: Mutex<Vec<Op>>,
    next_id: AtomicU64,
    pub stop: AtomicBool,
    pub http: reqwest::Client,
    pub op_timeout: Duration,
    pub project: Uuid,
    pub providers: Vec<Uuid>,
    pub set_provider: Uuid,
    pub registers: Vec<Uuid>,
    pub one_shot: Mutex<BTreeSet<Uuid>>,
}

impl Shared {
    pub fn new(
        http: reqwest::Client,
        op_timeout: Duration,
        providers: usize,
        clients: usize,
    ) -> Shared {
        Shared {
            start: Instant::now(),
            members: RwLock::new(Vec::new()),
            ops: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            http,
            op_timeout,
            project: Uuid::new_v4(),
            providers: (0..providers).map(|_| Uuid::new_v4()).collect(),
            set_provider: Uuid::new_v4(),
            registers: (0..clients * 4).map(|_| Uuid::new_v4()).collect(),
            one_shot: Mutex::new(BTreeSet::new()),
        }
    }

    /// Nanoseconds since the run started: the history's clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Capacity per provider and class.
    pub fn capacity(&self) -> BTreeMap<Uuid, BTreeMap<String, u64>> {
        let mut cap = BTreeMap::new();
        for p in &self.providers {
            cap.insert(
                *p,
                BTreeMap::from([
                    ("VCPU".to_string(), SMALL_VCPU),
                    ("MEMORY_MB".to_string(), SMALL_MEMORY_MB),
                ]),
            );
        }
        cap.insert(
            self.set_provider,
            BTreeMap::from([("VCPU".to_string(), SET_VCPU)]),
        );
        cap
    }

    pub fn record(&self, client: u32, node: u64, invoke_ns: u64, kind: OpKind, outcome: Outcome) {
        let op = Op {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            client,
            node,
            invoke_ns,
            complete_ns: self.now(),
            kind,
            outcome,
        };
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
    }
}

/// An HTTP answer reduced to what the history needs.
pub struct Answer {
    pub outcome: Outcome,
    pub body: Json,
}

/// Sends one Placement request; classifies the answer.
pub async fn call(
    http: &reqwest::Client,
    timeout: Duration,
    method: reqwest::Method,
    url: String,
    body: Option<&Json>,
) -> Answer {
    let mut req = http
        .request(method, url)
        .timeout(timeout)
        .header("X-Auth-Token", "admin")
        .header("OpenStack-API-Version", MICROVERSION);
    if let Some(b) = body {
        req = req.json(b);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = match resp.bytes().await {
                Ok(b) => serde_json::from_slice(&b).unwrap_or(Json::Null),
                Err(e) => {
                    return Answer {
                        outcome: Outcome::Unknown {
                            why: format!("{status} with an unreadable body: {e}"),
                        },
                        body: Json::Null,
                    }
                }
            };
            let outcome = match status {
                200..=299 => Outcome::Ok,
                400..=499 => Outcome::Fail {
                    status,
                    code: body["errors"][0]["code"].as_str().map(str::to_string),
                },
                _ => Outcome::Unknown {
                    why: format!("HTTP {status}"),
                },
            };
            Answer { outcome, body }
        }
        // Nothing reached the server: the connection was never opened.
        Err(e) if e.is_connect() => Answer {
            outcome: Outcome::Fail {
                status: 0,
                code: Some("connect".into()),
            },
            body: Json::Null,
        },
        Err(e) => Answer {
            outcome: Outcome::Unknown {
                why: if e.is_timeout() {
                    "timeout".into()
                } else {
                    format!("{e}")
                },
            },
            body: Json::Null,
        },
    }
}

/// `GET {url}/readyz`: whether it answered 2xx, and its JSON body (`None`: no answer).
pub async fn readyz(http: &reqwest::Client, url: &str) -> Option<(bool, Json)> {
    let r = http
        .get(format!("{url}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let ok = r.status().is_success();
    Some((ok, r.json().await.unwrap_or(Json::Null)))
}

/// The allocations of a GET /allocations/{c} body, canonical.
pub fn seen_of(body: &Json) -> Seen {
    let mut value = Value::new();
    if let Some(allocs) = body["allocations"].as_object() {
        for (rp, a) in allocs {
            if let Some(res) = a["resources"].as_object() {
                for (rc, n) in res {
                    value.insert(format!("{rp}/{rc}"), n.as_u64().unwrap_or(0));
                }
            }
        }
    }
    Seen {
        generation: body["consumer_generation"].as_u64(),
        value,
    }
}

/// The `usages` of a GET /resource_providers/{p}/usages body.
pub fn usages_of(body: &Json) -> BTreeMap<String, u64> {
    body["usages"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The request body of one consumer's write.
fn write_body(shared: &Shared, w: &KeyWrite) -> Json {
    let mut allocations = serde_json::Map::new();
    for (key, n) in &w.value {
        if let Some((rp, rc)) = key.split_once('/') {
            let entry = allocations
                .entry(rp.to_string())
                .or_insert_with(|| json!({"resources": {}}));
            entry["resources"][rc] = json!(n);
        }
    }
    json!({
        "allocations": allocations,
        "consumer_generation": w.expected_generation,
        "project_id": shared.project,
        "user_id": shared.project,
        "consumer_type": "INSTANCE",
    })
}

/// Creates the providers and their inventories through `base` (retrying while the cluster
/// elects its first leader).
pub async fn setup(shared: &Shared, base: &str, deadline: Duration) -> Result<(), String> {
    let end = Instant::now() + deadline;
    let mut todo: Vec<(Uuid, Json)> = shared
        .providers
        .iter()
        .map(|p| {
            (
                *p,
                json!({"VCPU": {"total": SMALL_VCPU}, "MEMORY_MB": {"total": SMALL_MEMORY_MB}}),
            )
        })
        .collect();
    todo.push((shared.set_provider, json!({"VCPU": {"total": SET_VCPU}})));
    for (i, (rp, inv)) in todo.iter().enumerate() {
        loop {
            let t = Duration::from_secs(10);
            let a = call(
                &shared.http,
                t,
                reqwest::Method::POST,
                format!("{base}/resource_providers"),
                Some(&json!({"name": format!("chaos-{i}-{rp}"), "uuid": rp})),
            )
            .await;
            let created = matches!(a.outcome, Outcome::Ok)
                || matches!(a.outcome, Outcome::Fail { status: 409, .. });
            if created {
                let a = call(
                    &shared.http,
                    t,
                    reqwest::Method::PUT,
                    format!("{base}/resource_providers/{rp}/inventories"),
                    Some(&json!({"resource_provider_generation": 0, "inventories": inv})),
                )
                .await;
                if matches!(a.outcome, Outcome::Ok) {
                    break;
                }
                // 409: already set by an earlier attempt whose answer was lost.
                let got = call(
                    &shared.http,
                    t,
                    reqwest::Method::GET,
                    format!("{base}/resource_providers/{rp}/inventories"),
                    None,
                )
                .await;
                if got.body["inventories"]["VCPU"]["total"].is_u64() {
                    break;
                }
            }
            if Instant::now() > end {
                return Err(format!("could not create provider {rp}: {:?}", a.outcome));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// One client: requests until `shared.stop`, one at a time.
pub async fn client(shared: Arc<Shared>, id: u32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // The generation this client last learnt for each register (None: absent).
    let mut gens: HashMap<Uuid, Option<u64>> = HashMap::new();
    let mut turn = id as usize;
    while !shared.stop.load(Ordering::Relaxed) {
        turn += 1;
        let member = shared
            .members
            .read()
            .ok()
            .and_then(|m| m.get(turn % m.len().max(1)).cloned());
        let Some((node, base)) = member else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let roll = rng.random_range(0..100);
        let reg = |rng: &mut StdRng| shared.registers[rng.random_range(0..shared.registers.len())];
        match roll {
            0..=34 => {
                let c = reg(&mut rng);
                let w = key_write(&shared, &mut rng, c, &gens);
                let o = write(&shared, id, node, &base, vec![w], &mut gens).await;
                if matches!(&o, Outcome::Fail { code: Some(code), .. } if code == CONCURRENT_UPDATE)
                {
                    read_consumer(&shared, id, node, &base, c, &mut gens).await;
                }
            }
            35..=44 => {
                let a = reg(&mut rng);
                let mut b = reg(&mut rng);
                while b == a {
                    b = reg(&mut rng);
                }
                let ws = vec![
                    key_write(&shared, &mut rng, a, &gens),
                    key_write(&shared, &mut rng, b, &gens),
                ];
                write(&shared, id, node, &base, ws, &mut gens).await;
            }
            45..=54 => {
                let c = reg(&mut rng);
                let t = shared.now();
                let a = call(
                    &shared.http,
                    shared.op_timeout,
                    reqwest::Method::DELETE,
                    format!("{base}/allocations/{c}"),
                    None,
                )
                .await;
                if matches!(a.outcome, Outcome::Ok | Outcome::Fail { status: 404, .. }) {
                    gens.insert(c, None);
                }
                shared.record(id, node, t, OpKind::Delete { consumer: c }, a.outcome);
            }
            55..=74 => {
                let c = reg(&mut rng);
                read_consumer(&shared, id, node, &base, c, &mut gens).await;
            }
            75..=89 => {
                let p = shared.providers[rng.random_range(0..shared.providers.len())];
                let usages = roll < 85;
                let path = if usages {
                    format!("{base}/resource_providers/{p}/usages")
                } else {
                    format!("{base}/resource_providers/{p}")
                };
                let t = shared.now();
                let a = call(
                    &shared.http,
                    shared.op_timeout,
                    reqwest::Method::GET,
                    path,
                    None,
                )
                .await;
                let ok = matches!(a.outcome, Outcome::Ok);
                let generation = if usages {
                    a.body["resource_provider_generation"].as_u64()
                } else {
                    a.body["generation"].as_u64()
                };
                let usages = (usages && ok).then(|| usages_of(&a.body));
                let kind = OpKind::ReadProvider {
                    provider: p,
                    generation: generation.filter(|_| ok),
                    usages,
                };
                shared.record(id, node, t, kind, a.outcome);
            }
            _ => {
                one_shot_write(&shared, id, node, &base, shared.op_timeout).await;
            }
        }
    }
}

/// A random write of register `c`: usually with the generation last seen, sometimes wrong.
fn key_write(
    shared: &Shared,
    rng: &mut StdRng,
    c: Uuid,
    gens: &HashMap<Uuid, Option<u64>>,
) -> KeyWrite {
    let known = gens.get(&c).copied().flatten();
    let expected_generation = if rng.random_bool(0.1) {
        // Deliberately wrong (or right by chance): the server must refuse a mismatch.
        if rng.random_bool(0.3) {
            None
        } else {
            Some(rng.random_range(1..6))
        }
    } else {
        known
    };
    let mut value = Value::new();
    let first = rng.random_range(0..shared.providers.len());
    let count = if shared.providers.len() > 1 && rng.random_bool(0.3) {
        2
    } else {
        1
    };
    for k in 0..count {
        let p = shared.providers[(first + k) % shared.providers.len()];
        value.insert(format!("{p}/VCPU"), rng.random_range(1..=4));
        if rng.random_bool(0.5) {
            value.insert(format!("{p}/MEMORY_MB"), 512 * rng.random_range(1..=6));
        }
    }
    KeyWrite {
        consumer: c,
        expected_generation,
        value,
    }
}

/// Writes a fresh one-shot consumer (1 VCPU on the set provider, generation null) through
/// `base`, after adding it to the set the lost-writes checker follows; records the op.
pub async fn one_shot_write(
    shared: &Shared,
    client: u32,
    node: u64,
    base: &str,
    timeout: Duration,
) -> Outcome {
    let c = Uuid::new_v4();
    if let Ok(mut s) = shared.one_shot.lock() {
        s.insert(c);
    }
    let w = KeyWrite {
        consumer: c,
        expected_generation: None,
        value: Value::from([(format!("{}/VCPU", shared.set_provider), 1)]),
    };
    let t = shared.now();
    let a = call(
        &shared.http,
        timeout,
        reqwest::Method::PUT,
        format!("{base}/allocations/{c}"),
        Some(&write_body(shared, &w)),
    )
    .await;
    let outcome = a.outcome.clone();
    shared.record(
        client,
        node,
        t,
        OpKind::Write { writes: vec![w] },
        a.outcome,
    );
    outcome
}

/// PUT (one write) or POST (several); records the op; updates the client's generations.
async fn write(
    shared: &Shared,
    client: u32,
    node: u64,
    base: &str,
    writes: Vec<KeyWrite>,
    gens: &mut HashMap<Uuid, Option<u64>>,
) -> Outcome {
    let t = shared.now();
    let a = if let [w] = writes.as_slice() {
        call(
            &shared.http,
            shared.op_timeout,
            reqwest::Method::PUT,
            format!("{base}/allocations/{}", w.consumer),
            Some(&write_body(shared, w)),
        )
        .await
    } else {
        let body: serde_json::Map<String, Json> = writes
            .iter()
            .map(|w| (w.consumer.to_string(), write_body(shared, w)))
            .collect();
        call(
            &shared.http,
            shared.op_timeout,
            reqwest::Method::POST,
            format!("{base}/allocations"),
            Some(&Json::Object(body)),
        )
        .await
    };
    for w in &writes {
        // After an unknown outcome the next write of this client may conflict; it then
        // reads again.
        if a.outcome == Outcome::Ok {
            gens.insert(w.consumer, Some(w.expected_generation.map_or(1, |g| g + 1)));
        }
    }
    let outcome = a.outcome.clone();
    shared.record(client, node, t, OpKind::Write { writes }, a.outcome);
    outcome
}

/// GET /allocations/{c}; records it and learns the generation.
async fn read_consumer(
    shared: &Shared,
    client: u32,
    node: u64,
    base: &str,
    c: Uuid,
    gens: &mut HashMap<Uuid, Option<u64>>,
) {
    let t = shared.now();
    let a = call(
        &shared.http,
        shared.op_timeout,
        reqwest::Method::GET,
        format!("{base}/allocations/{c}"),
        None,
    )
    .await;
    let seen = matches!(a.outcome, Outcome::Ok).then(|| seen_of(&a.body));
    if let Some(s) = &seen {
        gens.insert(c, s.generation);
    }
    shared.record(
        client,
        node,
        t,
        OpKind::ReadConsumer { consumer: c, seen },
        a.outcome,
    );
}
