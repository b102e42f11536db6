//! Hostile peers and clients against real `placementd` processes: every finding of the
//! security review (issue 8) replayed, and the cluster must fail each attempt safely and keep
//! serving.
//!
//! | finding | test |
//! |---|---|
//! | 1. peer/admin port without authentication | `without_a_cluster_certificate_nothing_reaches_the_peer_port`, `a_certificate_of_the_ca_is_not_enough_to_be_a_member` |
//! | 2. forged writes through `/cluster/write` and `/cluster/writes` | `a_certificate_of_the_ca_is_not_enough_to_be_a_member`, `forged_writes_cannot_store_what_the_api_would_refuse` |
//! | 3. a vote with term 2^64−1 | `forged_votes_with_extreme_terms_are_refused_and_elections_go_on` |
//! | 4. a 46-byte message with a 2^60 length prefix; rising forged terms | `hostile_bytes_on_every_peer_endpoint_fail_safely`, `forged_votes_with_extreme_terms_are_refused_and_elections_go_on` |
//! | 5. unbounded snapshot uploads | `snapshot_uploads_are_checked_before_a_byte_is_written` |
//! | 6. a far-future timestamp panicking a handler | `forged_writes_cannot_store_what_the_api_would_refuse` (and unit tests) |
//! | 7. slow headers, idle connections | `slow_headers_and_idle_connections_are_closed_and_capped` |
//! | 8. no TLS | every TLS test; `certificates_are_reloaded_without_a_restart` |
//! | 9. candidates without `limit` | `a_huge_candidates_query_neither_explodes_nor_holds_up_writes` |
//! | 10. data directory 0755, files 0644 | `the_data_directory_is_private_to_the_user` |
//! | (peer channels, since) the same guards and bounds as HTTP | `a_peer_channel_meets_the_same_guards_and_bounds` |
//!
//! Every hostile request goes to loopback ports of processes the test started.

use std::time::{Duration, Instant};

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use placement_raft::{paths, Forwarded, MembershipChange, SnapshotHeader, TypeConfig};
use placement_storage::{SnapshotMeta, Vote};
use placement_types::{encode, Command, Origin, Request, Timestamp, Uuid};
use placementd_tests::{allocation_body, Cluster, Node, Pki, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn peer_url(node: &Node, path: &str) -> Result<String> {
    Ok(format!("https://{}{path}", node.peer_addr()?))
}

/// POSTs `body` to `path` on `node`'s peer port with `http`; the status, or `None` when no
/// HTTP answer came (refused handshake, reset).
async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Option<u16> {
    match http.post(url).body(body).send().await {
        Ok(r) => Some(r.status().as_u16()),
        Err(_) => None,
    }
}

/// POSTs `body` to `path` on `node`'s peer port and checks the status of the answer
/// (`None`: no HTTP answer at all, as when the TLS handshake is refused).
async fn expect_post(
    http: &reqwest::Client,
    node: &Node,
    path: &str,
    body: Vec<u8>,
    want: Option<u16>,
) -> Result<()> {
    let got = post(http, &peer_url(node, path)?, body).await;
    if got != want {
        return Err(format!("POST {path}: {got:?}, expected {want:?}").into());
    }
    Ok(())
}

/// The cluster still serves: a leader is known, and a write through every node works.
async fn still_serving(cluster: &Cluster) -> Result<()> {
    cluster.leader(LEADER_TIMEOUT).await?;
    for node in cluster.nodes.iter().filter(|n| n.is_running()) {
        let name = format!("still-{}", Uuid::new_v4());
        node.client()?.create_provider(&name).await?;
    }
    Ok(())
}

fn members_of(node: &Node) -> Result<Vec<u64>> {
    let status = node.admin(&["status"])?;
    Ok(status["members"]
        .as_array()
        .ok_or("status without members")?
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect())
}

fn vote_request(term: u64, candidate: u64) -> Vec<u8> {
    encode(&VoteRequest::<TypeConfig>::new(
        Vote::new(term, candidate),
        None,
    ))
    .expect("encode")
}

fn forged(at: Timestamp, command: Command) -> Forwarded {
    Forwarded {
        request: Request {
            id: Uuid::new_v4(),
            at,
            command,
        },
        origin: Origin::default(),
    }
}

fn forged_write(at: Timestamp, command: Command) -> Vec<u8> {
    encode(&forged(at, command)).expect("encode")
}

/// A batch of forwarded writes (`/cluster/writes`) holding one write.
fn forged_batch(at: Timestamp, command: Command) -> Vec<u8> {
    encode(&vec![forged(at, command)]).expect("encode")
}

/// A forwarded write creating a provider named `forged` (what a test asserts never lands).
fn forged_provider() -> Vec<u8> {
    forged_write(
        Timestamp(1_700_000_000_000_000),
        Command::CreateProvider {
            uuid: Uuid::new_v4(),
            name: "forged".into(),
            parent: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_cluster_certificate_nothing_reaches_the_peer_port() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    let target = &cluster.nodes[1];
    let add = serde_json::to_vec(
        &json!({"id": 9, "api_addr": "127.0.0.1:1", "peer_addr": "127.0.0.1:2"}),
    )?;

    // Plaintext HTTP, as the reviewer's curl: no HTTP answer at all.
    let plain = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
    let url = format!("http://{}{}", target.peer_addr()?, "/admin/members");
    assert_eq!(
        post(&plain, &url, add.clone()).await,
        None,
        "plaintext answered"
    );

    // TLS that trusts the cluster CA but presents no certificate: the handshake fails.
    let anonymous = pki.http(None, CALL_TIMEOUT)?;
    let url = peer_url(target, "/admin/members")?;
    assert_eq!(
        post(&anonymous, &url, add.clone()).await,
        None,
        "no certificate answered"
    );
    for path in ["/admin/backup", "/admin/digest", "/admin/status"] {
        let got = anonymous.get(peer_url(target, path)?).send().await;
        assert!(got.is_err(), "{path} answered without a certificate");
    }

    // A rogue node: its own CA, a certificate naming node1.
    let rogue = Pki::new()?;
    rogue.issue_node(1, &["127.0.0.1:1".into()])?;
    let (cert, key) = rogue.files("node1");
    let mut identity = std::fs::read(cert)?;
    identity.extend(std::fs::read(key)?);
    let impostor = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(pki.ca())?)?)
        .identity(reqwest::Identity::from_pem(&identity)?)
        .build()?;
    assert_eq!(
        post(&impostor, &url, add.clone()).await,
        None,
        "rogue CA answered"
    );
    let write = forged_provider();
    let url = peer_url(target, paths::WRITE)?;
    assert_eq!(
        post(&impostor, &url, write).await,
        None,
        "rogue write answered"
    );
    expect_post(&impostor, target, paths::VOTE, vote_request(99, 1), None).await?;

    // The API port speaks only HTTPS.
    let api = format!("http://127.0.0.1:{}/", target.port());
    assert!(
        plain.get(api).send().await.is_err(),
        "plaintext API answered"
    );

    assert_eq!(members_of(&cluster.nodes[0])?, vec![1, 2, 3]);
    let providers = cluster.nodes[0]
        .client()?
        .get("/resource_providers")
        .await?
        .expect(200)?;
    assert_eq!(
        providers.body["resource_providers"],
        json!([]),
        "a forged write landed"
    );
    still_serving(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_of_the_ca_is_not_enough_to_be_a_member() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    let target = &cluster.nodes[1];
    // A certificate of the cluster CA for a node that is not a member.
    pki.issue_node(9, &["127.0.0.1:1".into()])?;
    let outsider = pki.http(Some("node9"), CALL_TIMEOUT)?;

    let add = serde_json::to_vec(
        &json!({"id": 9, "api_addr": "127.0.0.1:1", "peer_addr": "127.0.0.1:2"}),
    )?;
    expect_post(&outsider, target, "/admin/members", add, Some(403)).await?;
    let removed = outsider
        .delete(peer_url(target, "/admin/members/1")?)
        .send()
        .await?;
    assert_eq!(removed.status().as_u16(), 403);
    for path in ["/admin/backup", "/admin/digest"] {
        let got = outsider.get(peer_url(target, path)?).send().await?;
        assert_eq!(got.status().as_u16(), 403, "{path}");
    }
    let write = forged_provider();
    expect_post(&outsider, target, paths::WRITE, write, Some(403)).await?;
    let batch = forged_batch(
        Timestamp(1_700_000_000_000_000),
        Command::CreateProvider {
            uuid: Uuid::new_v4(),
            name: "forged".into(),
            parent: None,
        },
    );
    expect_post(&outsider, target, paths::WRITES, batch, Some(403)).await?;
    expect_post(
        &outsider,
        target,
        paths::READ_INDEX,
        encode(&())?,
        Some(403),
    )
    .await?;
    let change = encode(&MembershipChange::Remove { id: 1 })?;
    expect_post(&outsider, target, paths::MEMBERSHIP, change, Some(403)).await?;
    // Votes and pre-votes from a node that is not a voter.
    for path in [paths::VOTE, paths::PRE_VOTE] {
        expect_post(&outsider, target, path, vote_request(1_000, 9), Some(403)).await?;
    }

    // A member's certificate speaks only for its node.
    let node2 = pki.http(Some("node2"), CALL_TIMEOUT)?;
    let target = &cluster.nodes[0];
    expect_post(
        &node2,
        target,
        paths::VOTE,
        vote_request(1_000, 3),
        Some(403),
    )
    .await?;
    let append = encode(&AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1_000, 3),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    })?;
    expect_post(&node2, target, paths::APPEND, append, Some(403)).await?;

    // An operator certificate may administer, and is no node.
    let admin = pki.http(Some("admin"), CALL_TIMEOUT)?;
    let status = admin.get(peer_url(target, "/admin/status")?).send().await?;
    assert_eq!(status.status().as_u16(), 200);
    expect_post(
        &admin,
        target,
        paths::VOTE,
        vote_request(1_000, 1),
        Some(403),
    )
    .await?;

    assert_eq!(members_of(&cluster.nodes[2])?, vec![1, 2, 3]);
    still_serving(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_votes_with_extreme_terms_are_refused_and_elections_go_on() -> Result<()> {
    // Plaintext, as the reviewer's cluster: the bounds hold without any certificate.
    let mut cluster = Cluster::start_plain(3, &[]).await?;
    let plain = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
    for node in &cluster.nodes {
        let base = format!("http://{}", node.peer_addr()?);
        for path in [paths::VOTE, paths::PRE_VOTE] {
            let url = format!("{base}{path}");
            assert_eq!(
                post(&plain, &url, vote_request(u64::MAX, 2)).await,
                Some(400)
            );
            assert_eq!(
                post(&plain, &url, vote_request(1 << 41, 2)).await,
                Some(400)
            );
        }
        // Rising terms from an id that is no voter keep nobody from leading.
        for term in 2..40u64 {
            let url = format!("{base}{}", paths::VOTE);
            assert_eq!(post(&plain, &url, vote_request(term, 9)).await, Some(403));
        }
    }
    // An election after the attempts: kill the leader, the others elect one and serve.
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    cluster.nodes[leader].kill9()?;
    still_serving(&cluster).await?;
    let term = Cluster::readyz(&cluster.nodes[(leader + 1) % 3]).await["term"]
        .as_u64()
        .ok_or("no term")?;
    assert!(term < 100, "term {term}");
    // The killed node restarts on its data (it stored no forged vote) and rejoins.
    cluster.nodes[leader].restart().await?;
    still_serving(&cluster).await
}

/// Bodies meant to break decoders: the 46-byte message with a 2^60 length prefix, valid
/// encodings cut short or with bytes flipped, random bytes.
fn hostile_bodies(valid: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = seed;
    let mut next = move || {
        // xorshift64*: deterministic, good enough to spray bytes.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut bodies = Vec::new();
    let mut huge = vec![0xFD];
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let mut prefixed = huge.clone();
    prefixed.resize(46, 0x41);
    bodies.push(prefixed);
    for at in 0..valid.len().min(24) {
        let mut b = valid[..at].to_vec();
        b.extend_from_slice(&huge);
        b.resize(b.len().max(46), 0);
        bodies.push(b);
    }
    for cut in [0, 1, valid.len() / 2, valid.len().saturating_sub(1)] {
        bodies.push(valid[..cut.min(valid.len())].to_vec());
    }
    for _ in 0..60 {
        let mut b = valid.to_vec();
        for _ in 0..3 {
            if !b.is_empty() {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
        }
        bodies.push(b);
    }
    for _ in 0..60 {
        let len = (next() % 512) as usize;
        bodies.push((0..len).map(|_| next() as u8).collect());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bytes_on_every_peer_endpoint_fail_safely() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    // A member's certificate, so that the bytes get past authentication to the decoders.
    let member = pki.http(Some("node2"), CALL_TIMEOUT)?;
    // A follower: a body that happens to decode into a valid write or membership change is
    // answered "not the leader" at once instead of being carried out.
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let target = &cluster.nodes[(leader + 1) % 3];
    let valid_write = forged_write(
        Timestamp(1_700_000_000_000_000),
        Command::EnsureTrait {
            name: "CUSTOM_X".into(),
        },
    );
    let valid_batch = forged_batch(
        Timestamp(1_700_000_000_000_000),
        Command::EnsureTrait {
            name: "CUSTOM_X".into(),
        },
    );
    let valid_append = encode(&AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, 2),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    })?;
    let valid_member = encode(&MembershipChange::Remove { id: 4242 })?;
    let endpoints: Vec<(&str, Vec<u8>)> = vec![
        (paths::APPEND, valid_append),
        (paths::VOTE, vote_request(1, 2)),
        (paths::PRE_VOTE, vote_request(1, 2)),
        (paths::TRANSFER_LEADER, vote_request(1, 2)),
        (paths::WRITE, valid_write),
        (paths::WRITES, valid_batch),
        (paths::READ_INDEX, encode(&())?),
        (paths::MEMBERSHIP, valid_member),
    ];
    let mut answered = 0usize;
    for (i, (path, valid)) in endpoints.iter().enumerate() {
        let url = peer_url(target, path)?;
        for body in hostile_bodies(valid, 0x9E37_79B9_7F4A_7C15 ^ i as u64) {
            let status = post(&member, &url, body.clone()).await.ok_or_else(|| {
                format!(
                    "{path}: no answer to a hostile body of {} bytes",
                    body.len()
                )
            })?;
            // Refused (400/403), or harmless if some random body happens to decode.
            assert!(
                matches!(status, 200 | 400 | 403 | 503),
                "{path}: {status} for {body:?}"
            );
            answered += 1;
        }
    }
    // Larger than any peer message may be: refused without reading it all.
    let oversized = vec![0u8; placement_raft::MAX_PEER_BODY + 1];
    expect_post(&member, target, paths::APPEND, oversized, Some(413)).await?;
    assert!(answered > 900, "{answered}");
    assert_eq!(members_of(target)?, vec![1, 2, 3]);
    still_serving(&cluster).await
}

/// A channel to `node`'s peer port, presenting `name`'s certificate of `pki`.
async fn channel_as(
    pki: &Pki,
    name: &str,
    node: &Node,
) -> std::result::Result<placement_net::Channel, placement_net::ChannelError> {
    let (cert, key) = pki.files(name);
    let paths = placement_net::TlsPaths {
        cert,
        key,
        ca: Some(pki.ca()),
    };
    let tls = placement_net::TlsSource::load("test", paths, placement_net::TlsRole::Peer)
        .map_err(|e| placement_net::ChannelError::Connect(e.to_string()))?;
    let client = tls.client().ok_or_else(|| {
        placement_net::ChannelError::Connect("no client configuration".to_string())
    })?;
    let server = placement_net::node_name(node.node_id());
    let addr = node
        .peer_addr()
        .map_err(|e| placement_net::ChannelError::Connect(e.to_string()))?;
    placement_net::Channel::dial(
        &addr,
        Some((client, server)),
        CALL_TIMEOUT,
        placement_raft::MAX_CHANNEL_FRAME,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_channel_meets_the_same_guards_and_bounds() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let target = &cluster.nodes[(leader + 1) % 3];

    // A certificate of the CA for a node that is not a member: the channel opens (the
    // handshake checks the CA, as for HTTP), and every call on it is refused as over HTTP.
    pki.issue_node(9, &["127.0.0.1:1".into()])?;
    let outsider = channel_as(&pki, "node9", target).await?;
    let write = forged_provider();
    for (path, body) in [
        (paths::WRITE, write),
        (paths::READ_INDEX, encode(&())?),
        (paths::VOTE, vote_request(1_000, 9)),
        (paths::PRE_VOTE, vote_request(1_000, 9)),
        (
            paths::MEMBERSHIP,
            encode(&MembershipChange::Remove { id: 1 })?,
        ),
    ] {
        let answer = outsider.call(path, body, CALL_TIMEOUT).await?;
        assert_eq!(
            answer.status, 403,
            "{path} from a non-member over a channel"
        );
    }
    // A member's certificate speaks only for its node.
    let node2 = channel_as(&pki, "node2", &cluster.nodes[0]).await?;
    let answer = node2
        .call(paths::VOTE, vote_request(1_000, 3), CALL_TIMEOUT)
        .await?;
    assert_eq!(answer.status, 403);
    // Hostile bodies over a member's channel: answered like over HTTP, never a broken node.
    let member = channel_as(&pki, "node2", target).await?;
    let valid_append = encode(&AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, 2),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    })?;
    let mut answered = 0usize;
    for (i, (path, valid)) in [
        (paths::APPEND, valid_append),
        (paths::VOTE, vote_request(1, 2)),
        (paths::READ_INDEX, encode(&())?),
    ]
    .into_iter()
    .enumerate()
    {
        for body in hostile_bodies(&valid, 0x51_7CC1_B727_220A ^ i as u64) {
            let answer = member.call(path, body.clone(), CALL_TIMEOUT).await?;
            assert!(
                matches!(answer.status, 200 | 400 | 403 | 503),
                "{path}: {} for {body:?}",
                answer.status
            );
            answered += 1;
        }
    }
    assert!(answered > 300, "{answered}");
    // A body larger than any peer message may be: the router's limit answers, as over HTTP.
    let oversized = vec![0u8; placement_raft::MAX_PEER_BODY + 1];
    let answer = member.call(paths::APPEND, oversized, CALL_TIMEOUT).await?;
    assert_eq!(answer.status, 413);
    // The channel is still good after all that.
    let answer = member
        .call(paths::READ_INDEX, encode(&())?, CALL_TIMEOUT)
        .await?;
    assert_eq!(answer.status, 200);
    assert_eq!(members_of(target)?, vec![1, 2, 3]);
    still_serving(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_uploads_are_checked_before_a_byte_is_written() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let target = &cluster.nodes[(leader + 1) % 3];
    let other = cluster.nodes[(leader + 2) % 3].node_id();
    let incoming = target.data_dir().join("incoming");

    // A snapshot body: the header, then `bytes` of file.
    let snapshot = |leader: u64, term: u64, declared: u64, bytes: usize| -> Result<Vec<u8>> {
        let header = encode(&SnapshotHeader {
            vote: Vote::new_committed(term, leader),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: Default::default(),
            },
            len: declared,
        })?;
        let mut body = (header.len() as u32).to_be_bytes().to_vec();
        body.extend(header);
        body.resize(body.len() + bytes, 0xAB);
        Ok(body)
    };
    let url = peer_url(target, paths::SNAPSHOT)?;

    // No certificate: refused at the handshake.
    let anonymous = pki.http(None, CALL_TIMEOUT)?;
    assert_eq!(
        post(&anonymous, &url, snapshot(1, 1_000, 2 << 30, 1 << 20)?).await,
        None
    );

    // 2 GiB declared by a member that names another node as the leader: refused on the
    // header, before the file is created.
    let name = format!("node{other}");
    let member = pki.http(Some(&name), Duration::from_secs(30))?;
    let leader_id = cluster.nodes[leader].node_id();
    // (The refused uploads send only a little of their body: the node answers without
    // reading the rest and closes the connection, which a client still sending sees as a
    // reset instead of the answer.)
    let status = post(&member, &url, snapshot(leader_id, 1_000, 2 << 30, 1 << 10)?).await;
    assert_eq!(status, Some(403));
    // Declared larger than any snapshot may be.
    let status = post(&member, &url, snapshot(other, 1_000, u64::MAX, 1 << 10)?).await;
    assert_eq!(status, Some(400));
    // 2 GiB declared by a member that is not the leader, with an old vote: answered with the
    // newer vote (as Raft answers a deposed leader), nothing written.
    let status = post(&member, &url, snapshot(other, 0, 2 << 30, 1 << 10)?).await;
    assert_eq!(status, Some(200));
    // More bytes than declared: cut off at the declared size, nothing installed (the answer
    // may be lost to the reset described above).
    let status = post(&member, &url, snapshot(other, 1_000, 64 << 10, 4 << 20)?).await;
    assert!(matches!(status, None | Some(200)), "{status:?}");
    let left = std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "an incoming snapshot file was left behind");
    // A garbage header.
    let status = post(&member, &url, vec![0, 0, 0, 9, 1, 2, 3]).await;
    assert!(matches!(status, Some(200 | 400)), "{status:?}");

    assert_eq!(members_of(target)?, vec![1, 2, 3]);
    still_serving(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_writes_cannot_store_what_the_api_would_refuse() -> Result<()> {
    // Plaintext, so that a forged forward reaches the leader as the reviewer's did.
    let cluster = Cluster::start_plain(3, &[]).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let plain = reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?;
    let url = format!(
        "http://{}{}",
        cluster.nodes[leader].peer_addr()?,
        paths::WRITE
    );
    let rp = Uuid::new_v4();
    let far_future = Timestamp(i64::MAX);
    let body = forged_write(
        far_future,
        Command::CreateProvider {
            uuid: rp,
            name: "from-the-future".into(),
            parent: None,
        },
    );
    assert_eq!(post(&plain, &url, body).await, Some(200));
    // The state machine refused it: nothing stored, and listings (which format
    // `last-modified` from stored times) answer.
    let client = cluster.nodes[leader].client()?;
    let got = client.get(&format!("/resource_providers/{rp}")).await?;
    assert_eq!(got.status, 404, "{}", got.text);
    let list = client
        .with_microversion("1.15")
        .get("/resource_providers")
        .await?;
    assert_eq!(list.status, 200, "{}", list.text);
    still_serving(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_and_idle_connections_are_closed_and_capped() -> Result<()> {
    const HEADER_TIMEOUT_S: u64 = 2;
    const MAX_CONNECTIONS: usize = 64;
    let mut node = Node::start().await?;
    node.set_more_args(&[
        "--header-timeout",
        &HEADER_TIMEOUT_S.to_string(),
        "--max-connections",
        &MAX_CONNECTIONS.to_string(),
    ]);
    node.restart().await?;
    let addr = format!("127.0.0.1:{}", node.port());
    let pid = node.pid().ok_or("no pid")?;
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count());
    let fds_before = fds()?;

    // 20 clients that send half a request line and stop.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(b"GET /resource_providers HTTP/1.1\r\nHost: x")
            .await?;
        slow.push(s);
    }
    let started = Instant::now();
    for mut s in slow {
        let mut buf = [0u8; 512];
        // The server closes the connection (perhaps after a 408): read until EOF.
        let closed = tokio::time::timeout(Duration::from_secs(HEADER_TIMEOUT_S + 5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a slow client was not closed");
    }
    assert!(started.elapsed() < Duration::from_secs(HEADER_TIMEOUT_S + 5));

    // Thousands of idle connections: the process holds at most the cap.
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = fds()?;
    assert!(
        held <= fds_before + MAX_CONNECTIONS + 8,
        "{held} descriptors open with {} idle clients (cap {MAX_CONNECTIONS})",
        idle.len()
    );
    // Once the idle ones time out, the node serves again, with the idle clients still
    // connected on their side.
    let client = node.client()?;
    let deadline = Instant::now() + Duration::from_secs(HEADER_TIMEOUT_S + 10);
    loop {
        if let Ok(r) = client.get("/resource_providers").await {
            if r.status == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the node did not serve again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(idle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_candidates_query_neither_explodes_nor_holds_up_writes() -> Result<()> {
    // Unbounded first, to show that even a large read holds up no write; then the bound.
    let mut node = Node::start().await?;
    node.set_more_args(&["--max-allocation-candidates", "-1"]);
    node.restart().await?;
    let client = node.client()?;
    let root = client.create_provider("root").await?;
    const CHILDREN: usize = 18;
    for i in 0..CHILDREN {
        let child = Uuid::new_v4().to_string();
        client
            .post(
                "/resource_providers",
                &json!({"name": format!("child-{i}"), "uuid": child, "parent_provider_uuid": root}),
            )
            .await?
            .expect(200)?;
        client.set_inventory(&child, &[("VCPU", 4)]).await?;
    }
    let target = client.create_provider("writes").await?;
    client
        .set_inventory(&target, &[("MEMORY_MB", 1 << 30)])
        .await?;
    let query = "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1\
                 &resources3=VCPU:1&resources4=VCPU:1&group_policy=isolate";

    // The answer is tens of megabytes: counted as bytes, not parsed, so that this process
    // does not compete with the node for the CPU more than it must.
    let count = |body: &[u8]| {
        body.windows(b"{\"allocations\":".len())
            .filter(|w| *w == b"{\"allocations\":")
            .count()
    };
    let http = node.http(Duration::from_secs(120))?;
    let url = format!("{}{query}", node.url());
    let read = tokio::spawn(async move {
        let started = Instant::now();
        let r = http
            .get(url)
            .header("x-auth-token", "admin")
            .header("openstack-api-version", "placement 1.39")
            .send()
            .await;
        let r = match r {
            Ok(r) => r.bytes().await.map(|b| b.to_vec()),
            Err(e) => Err(e),
        };
        (r, started.elapsed())
    });
    // Writes while the query runs: each must commit in well under a second.
    let mut slowest = Duration::ZERO;
    let (mut writes, mut during_read) = (0, 0);
    while !read.is_finished() || writes < 20 {
        if !read.is_finished() {
            during_read += 1;
        }
        let consumer = Uuid::new_v4().to_string();
        let started = Instant::now();
        client
            .put(
                &format!("/allocations/{consumer}"),
                &allocation_body(&[(target.as_str(), &[("MEMORY_MB", 1)])], None),
            )
            .await?
            .expect(204)?;
        slowest = slowest.max(started.elapsed());
        writes += 1;
        assert!(writes < 100_000, "the query never finished");
    }
    let (answer, took) = read.await?;
    let answer = answer?;
    // 18 * 17 * 16 * 15 ordered choices of four children.
    assert_eq!(count(&answer), 73_440, "unbounded answer");
    // Before, every write waited for the whole read (45 s in the review): at most one
    // write could start while it ran.
    assert!(
        during_read >= 10,
        "only {during_read} writes ran beside a {took:?} read"
    );
    assert!(
        slowest < Duration::from_millis(900),
        "a write took {slowest:?} while a {took:?} read ran ({during_read} writes beside it)"
    );
    eprintln!("{during_read} writes beside a {took:?} read; slowest write {slowest:?}");

    // With the default bound, the same query stops at it.
    node.set_more_args(&[]);
    node.restart().await?;
    let bounded = node.client()?.get(query).await?.expect(200)?;
    let n = bounded.body["allocation_requests"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(n, 10_000, "bounded answer");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_are_reloaded_without_a_restart() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let pki = cluster.nodes[0].pki().cloned().ok_or("TLS cluster")?;
    let node = &cluster.nodes[0];
    let presented = || async {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .tls_info(true)
            .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(pki.ca())?)?)
            .build()?;
        let r = http.get(format!("{}/", node.url())).send().await?;
        let info = r
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
            .ok_or("no TLS info")?;
        Result::<Vec<u8>>::Ok(info)
    };
    let rotate = || -> Result<()> {
        // A new certificate (and key) for node1 in place of the old one.
        let (cert, key) = pki.files("node1");
        std::fs::remove_file(&cert)?;
        std::fs::remove_file(&key)?;
        pki.issue_node(
            1,
            &[format!("127.0.0.1:{}", node.port()), node.peer_addr()?],
        )?;
        Ok(())
    };
    let wait_for_change = |before: Vec<u8>, within: Duration| async move {
        let deadline = Instant::now() + within;
        loop {
            let now = presented().await?;
            if now != before {
                return Result::<Vec<u8>>::Ok(now);
            }
            if Instant::now() > deadline {
                return Err("the new certificate was not picked up".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // A changed file is noticed by itself (checked every 10 s)...
    let first = presented().await?;
    rotate()?;
    let second = wait_for_change(first, Duration::from_secs(20)).await?;
    // ... and at once on SIGHUP.
    rotate()?;
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(node.pid().ok_or("no pid")?.to_string())
        .status()?;
    assert!(status.success());
    wait_for_change(second, Duration::from_secs(3)).await?;
    // Peers still talk to the node with its new certificate.
    still_serving(&cluster).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_port_on_the_network_without_tls_is_warned_about() -> Result<()> {
    let mut node = Node::start().await?;
    let peer = placementd_tests::free_port()?;
    let listen = format!("0.0.0.0:{peer}");
    node.set_more_args(&["--peer-listen", &listen]);
    node.restart().await?;
    let log = node.log_with("INSECURE").await;
    assert!(log.contains("INSECURE"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private_to_the_user() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut node = Node::start().await?;
    // Written by the node: the directory 0700, every file without group or other bits.
    let mode = |p: &std::path::Path| -> Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    let data = node.data_dir();
    assert_eq!(mode(&data)?, 0o700, "{}", data.display());
    let mut files = 0;
    let mut pending = vec![data.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            assert_eq!(
                mode(&path)? & 0o077,
                0,
                "{} is open to others",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files > 3, "{files} files");
    // A directory an older version left readable by others is closed at the next start.
    node.kill9()?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
    let leftover = data.join("leftover");
    std::fs::write(&leftover, b"x")?;
    std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o644))?;
    node.restart().await?;
    assert_eq!(mode(&data)?, 0o700);
    assert_eq!(mode(&leftover)?, 0o600);
    Ok(())
}
