//! `placementd import --from-db` against a database the real Placement 16.0.0 made.
//!
//! The source is a SQLite file: the real `placement-manage db sync` creates the schema, then
//! the real Placement WSGI application (loaded in-process from the venv of
//! `scripts/placement-venv`, which it also creates when missing) fills it through its own
//! REST API: a nested tree, a sharing provider in an aggregate, custom classes and traits,
//! consumer types, allocations, a consumer generation moved by rewrites and a deleted
//! consumer. The same script answers every GET this test then sends to placementd, so the
//! comparison is against what Placement itself says, not against what this test expects.
//!
//! The import goes into a 3-node cluster with mutual TLS (the admin certificate, as an
//! operator runs it) through a follower's peer port. Then: every answer compared; a second
//! import refused (the target is not empty) with nothing changed; a database of another
//! schema version and a database that is not Placement's refused with one clear sentence.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use placementd_tests::{placementd_bin, Cluster, Node, Result};
use serde_json::Value;

/// Seeds the database through Placement's API and writes `{path: body}` of every GET to
/// compare, as one JSON document. argv: config dir, output file.
const SEED: &str = r#"
import json, os, sys
os.environ['OS_PLACEMENT_CONFIG_DIR'] = sys.argv[1]
from placement import wsgi
import webob

app = wsgi.init_application()
HEADERS = {'x-auth-token': 'admin', 'openstack-api-version': 'placement 1.39',
           'accept': 'application/json'}

def call(method, path, body=None):
    headers = dict(HEADERS)
    if body is not None:
        headers['content-type'] = 'application/json'
    req = webob.Request.blank(path, method=method, headers=headers,
                              body=json.dumps(body).encode() if body is not None else b'')
    resp = req.get_response(app)
    if resp.status_int >= 300:
        sys.exit('%s %s: %s %s' % (method, path, resp.status, resp.text))
    return json.loads(resp.body) if resp.body else None

U = lambda n: '00000000-0000-0000-0000-%012d' % n
AGG = U(900)
call('PUT', '/resource_classes/CUSTOM_GOLD')
call('PUT', '/traits/CUSTOM_FAST')
call('PUT', '/traits/CUSTOM_UNUSED')
tree = [(1, 'compute-1', None), (2, 'compute-1_numa0', 1), (3, 'compute-1_numa1', 1),
        (4, 'compute-1_numa0_pf', 2), (5, 'shared-storage', None), (6, 'compute-2', None)]
for n, name, parent in tree:
    body = {'uuid': U(n), 'name': name}
    if parent:
        body['parent_provider_uuid'] = U(parent)
    call('POST', '/resource_providers', body)

def inventories(n, inv):
    gen = call('GET', '/resource_providers/%s' % U(n))['generation']
    call('PUT', '/resource_providers/%s/inventories' % U(n),
         {'resource_provider_generation': gen, 'inventories': inv})

inventories(1, {'VCPU': {'total': 16, 'allocation_ratio': 16.0},
                'MEMORY_MB': {'total': 32768, 'reserved': 512, 'allocation_ratio': 1.5,
                              'max_unit': 16384, 'step_size': 256}})
inventories(2, {'CUSTOM_GOLD': {'total': 10, 'min_unit': 1, 'max_unit': 5}})
inventories(4, {'SRIOV_NET_VF': {'total': 8}})
inventories(5, {'DISK_GB': {'total': 2000, 'reserved': 100}})
inventories(6, {'VCPU': {'total': 8}, 'MEMORY_MB': {'total': 4096}})
inventories(6, {'VCPU': {'total': 4}, 'MEMORY_MB': {'total': 4096}})
for n, traits in [(1, ['HW_CPU_X86_AVX2', 'CUSTOM_FAST']), (5, ['MISC_SHARES_VIA_AGGREGATE'])]:
    gen = call('GET', '/resource_providers/%s' % U(n))['generation']
    call('PUT', '/resource_providers/%s/traits' % U(n),
         {'resource_provider_generation': gen, 'traits': traits})
for n in (1, 5, 6):
    gen = call('GET', '/resource_providers/%s' % U(n))['generation']
    call('PUT', '/resource_providers/%s/aggregates' % U(n),
         {'resource_provider_generation': gen, 'aggregates': [AGG]})

def allocate(c, allocations, ctype, gen, project='project-a', user='user-a'):
    call('PUT', '/allocations/%s' % U(c), {
        'allocations': {U(p): {'resources': r} for p, r in allocations},
        'project_id': project, 'user_id': user, 'consumer_generation': gen,
        'consumer_type': ctype})

allocate(100, [(1, {'VCPU': 2, 'MEMORY_MB': 2048}), (5, {'DISK_GB': 20})], 'INSTANCE', None)
allocate(100, [(1, {'VCPU': 4, 'MEMORY_MB': 2048}), (5, {'DISK_GB': 20})], 'INSTANCE', 1)
allocate(101, [(1, {'VCPU': 1}), (2, {'CUSTOM_GOLD': 3}), (4, {'SRIOV_NET_VF': 2})],
         'MIGRATION', None, project='project-b', user='user-b')
allocate(102, [(6, {'VCPU': 4, 'MEMORY_MB': 512})], 'INSTANCE', None)
allocate(103, [(6, {'MEMORY_MB': 512})], 'INSTANCE', None)
call('DELETE', '/allocations/%s' % U(103))

paths = ['/resource_classes', '/traits', '/traits?name=startswith:CUSTOM_',
         '/resource_providers', '/resource_providers?member_of=%s' % AGG,
         '/usages?project_id=project-a', '/usages?project_id=project-b']
for n, _, _ in tree:
    base = '/resource_providers/%s' % U(n)
    paths += [base] + [base + '/' + s for s in
                       ('inventories', 'traits', 'aggregates', 'usages', 'allocations')]
paths += ['/allocations/%s' % U(c) for c in (100, 101, 102, 103)]
with open(sys.argv[2], 'w') as out:
    json.dump({p: call('GET', p) for p in paths}, out)
"#;

/// Runs a program; `Err` with its stderr unless it exits 0.
fn run(command: &mut Command) -> Result<Output> {
    let out = command.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

/// The venv with the real Placement 16.0.0 (made by `scripts/placement-venv` if missing).
fn placement_venv() -> Result<PathBuf> {
    let script = placement_testkit::crate_dir!().join("../scripts/placement-venv");
    let out = run(&mut Command::new(script))?;
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .ok_or("scripts/placement-venv printed no path")?;
    Ok(PathBuf::from(path))
}

/// A Placement database made and filled by the real Placement; returns its connection URL
/// and every GET's answer.
fn real_placement_database(venv: &Path, dir: &Path) -> Result<(String, Value)> {
    let url = format!("sqlite:///{}", dir.join("placement.sqlite").display());
    std::fs::write(
        dir.join("placement.conf"),
        format!(
            "[DEFAULT]\nuse_stderr = True\n[api]\nauth_strategy = noauth2\n\
             [placement_database]\nconnection = {url}\nsync_on_startup = False\n"
        ),
    )?;
    run(Command::new(venv.join("bin/placement-manage"))
        .arg("--config-dir")
        .arg(dir)
        .args(["db", "sync"]))?;
    let answers = dir.join("answers.json");
    run(Command::new(venv.join("bin/python"))
        .args(["-c", SEED])
        .arg(dir)
        .arg(&answers))?;
    let answers: Value = serde_json::from_slice(&std::fs::read(answers)?)?;
    Ok((url, answers))
}

/// Runs `placementd import` against `node`'s peer port with the admin certificate.
fn import(node: &Node, args: &[&str]) -> Result<Output> {
    Ok(Command::new(placementd_bin()?)
        .arg("import")
        .args(node.admin_args()?)
        .args(args)
        .stdin(Stdio::null())
        .output()?)
}

/// A body with what may legitimately differ taken out: `links`, the order of lists, and
/// `16` against `16.0`.
fn normalized(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "links")
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalized).collect();
            items.sort_by_key(|v| v.to_string());
            Value::Array(items)
        }
        Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
        other => other.clone(),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_placement_database_imports_into_a_cluster_unchanged() -> Result<()> {
    let venv = placement_venv()?;
    let dir = tempfile::tempdir()?;
    let (url, answers) = real_placement_database(&venv, dir.path())?;
    let answers = answers.as_object().ok_or("the seed printed no object")?;

    let cluster = Cluster::start(3).await?;
    let leader = cluster.leader(Duration::from_secs(20)).await?;
    let follower = &cluster.nodes[(leader + 1) % 3];
    let out = import(follower, &["--from-db", &url])?;
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    // Consumer 103's allocations were deleted, and Placement deleted the consumer with them.
    let written = "wrote 1 resource classes, 2 traits, 6 providers, 3 consumers with 8 allocations";
    assert!(report.contains(written), "{report}");

    // Every answer of Placement, from every member.
    for node in &cluster.nodes {
        let client = node.client()?;
        let mut differences = Vec::new();
        for (path, want) in answers {
            let got = client.get(path).await?;
            if got.status != 200 || normalized(&got.body) != normalized(want) {
                differences.push(format!(
                    "GET {path}: placementd {} {}\n  Placement {want}",
                    got.status, got.body
                ));
            }
        }
        assert!(
            differences.is_empty(),
            "node {}: {} differences:\n{}",
            node.node_id(),
            differences.len(),
            differences.join("\n")
        );
    }

    // A second import is refused by the first batch, and changes nothing.
    let digest = cluster.nodes[leader].admin(&["digest"])?;
    let again = import(&cluster.nodes[leader], &["--from-db", &url])?;
    assert!(!again.status.success());
    let message = text(&again);
    assert!(message.contains("nothing was written"), "{message}");
    assert!(
        message.contains("already holds data (6 providers"),
        "{message}"
    );
    let after = cluster.nodes[leader].admin(&["digest"])?;
    assert_eq!(digest["sha256"], after["sha256"]);

    // Another schema version, and a database that is not Placement's.
    let py = venv.join("bin/python");
    let old = dir.path().join("old.sqlite");
    std::fs::copy(dir.path().join("placement.sqlite"), &old)?;
    run(Command::new(&py).args([
        "-c",
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
         c.execute(\"UPDATE alembic_version SET version_num = 'b5c396305c25'\"); c.commit()",
        &old.display().to_string(),
    ]))?;
    let refused = import(
        follower,
        &["--from-db", &format!("sqlite:///{}", old.display())],
    )?;
    let message = text(&refused);
    assert!(!refused.status.success());
    assert!(
        message.contains("schema version b5c396305c25")
            && message.contains("a082b8bb98d0")
            && message.contains("16.0.0"),
        "{message}"
    );
    let other = dir.path().join("other.sqlite");
    run(Command::new(&py).args([
        "-c",
        "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('CREATE TABLE t (a)')",
        &other.display().to_string(),
    ]))?;
    let refused = import(
        follower,
        &["--from-db", &format!("sqlite:///{}", other.display())],
    )?;
    let message = text(&refused);
    assert!(!refused.status.success());
    assert!(message.contains("is not a Placement database"), "{message}");
    Ok(())
}
