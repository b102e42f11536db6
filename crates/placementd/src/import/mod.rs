//! `placementd import`: adopting the data of a running Placement.
//!
//! ```text
//! placementd import --from-db mysql+pymysql://placement:PASS@db/placement --peer 10.0.0.1:8779 \
//!     [--cert admin.pem --key admin-key.pem --ca ca.pem] \
//!     [--source-url http://placement:8778 --target-url https://placementd:8778]
//! placementd import --verify --source-url URL --target-url URL
//! ```
//!
//! `--from-db` reads the whole Placement database in one read-only snapshot (`source`),
//! turns its rows into placementd's records keeping every uuid, name and generation
//! (`convert`), and writes them into an **empty** cluster through the Raft log, in bounded
//! batches proposed through a member's admin API (`load`, `POST /admin/import` in
//! `admin.rs`; `placement-core`'s `apply/import.rs` has the rules every batch meets). The
//! first batch is refused unless the cluster is empty, atomically, so two imports or an
//! import into a used cluster cannot mix data.
//!
//! Progress goes to stderr (a bar on a terminal, one line per batch otherwise); the report
//! of what was read and written, and the time taken, to stdout. With `--source-url` and
//! `--target-url` (or `--verify`) the import ends by comparing both sides through the REST
//! API (`verify`); `--verify` without `--from-db` only compares.
//!
//! # When it fails
//! Nothing is rolled back: a batch is one log entry and is either applied everywhere or
//! nowhere, but the batches before it stay. The error then says plainly that the target
//! holds a partial import, which batches landed, and how to start over (a fresh cluster).
//! Writes to the source must be stopped during the cut-over (`docs/migrate.md`); the import
//! reads one snapshot either way, so what it loads is consistent.

mod convert;
pub mod load;
mod source;
pub mod verify;

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use placement_types::{Timestamp, Uuid};

use crate::admin::paths;
use crate::members::Admin;
use convert::Counts;
use load::{ImportRequest, SendError, Tally};

/// The flags of `placementd import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The running Placement's database: the `[placement_database] connection` value of
    /// placement.conf (mysql+pymysql://USER:PASS@HOST[:PORT]/placement, or
    /// sqlite:////path/placement.db). Read in one read-only transaction.
    #[arg(
        long,
        value_name = "URL",
        env = "PLACEMENTD_IMPORT_FROM_DB",
        hide_env_values = true
    )]
    pub from_db: Option<String>,

    /// The (empty) target cluster: `--peer` names any member, `--cert/--key/--ca` as for
    /// `placementd cluster`.
    #[command(flatten)]
    pub conn: crate::cli::PeerConn,

    /// Compare the running Placement (--source-url) with placementd (--target-url) through
    /// the REST API, print the first differences, and fail if there are any. Alone: only
    /// compare; with --from-db: compare after loading (also done when both URLs are given).
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub verify_args: verify::VerifyArgs,
}

/// Runs `placementd import`.
pub async fn run(args: ImportArgs) -> Result<(), String> {
    let Some(url) = &args.from_db else {
        if args.verify {
            return verify::run(&args.verify_args).await;
        }
        return Err(
            "give --from-db URL (the `[placement_database] connection` of \
                    placement.conf) to import, or --verify to compare"
                .into(),
        );
    };
    import(&args, url).await?;
    let urls = args.verify_args.source_url.is_some() && args.verify_args.target_url.is_some();
    if args.verify || urls {
        verify::run(&args.verify_args).await?;
    }
    Ok(())
}

/// Why a request could not be sent, with every cause.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

async fn import(args: &ImportArgs, url: &str) -> Result<(), String> {
    let started = Instant::now();
    let source = source::parse_url(url)?;
    let peer = args.conn.peer.as_str();
    let admin = Admin::new(&args.conn, Duration::from_secs(60))?;
    let endpoint = admin.url(peer, paths::IMPORT);

    // The target first: a wrong --peer or missing certificates fail before the source is
    // read, which may take a while.
    let reached = admin
        .request(reqwest::Method::GET, peer, paths::STATUS)
        .send()
        .await;
    let reached = reached.map_err(|e| admin.unreachable(peer, &e))?;
    if !reached.status().is_success() {
        let answer: serde_json::Value = reached.json().await.unwrap_or_default();
        return Err(format!(
            "the admin API at {} refused this client: {}",
            peer,
            answer["error"].as_str().unwrap_or("no error message")
        ));
    }

    eprintln!("import: reading the {}", source.describe());
    let tables = source::read(&source).await?;
    let dump = convert::convert(&tables, now())?;
    let counts = dump.counts.clone();
    let read_time = started.elapsed();
    eprintln!(
        "import: read schema {} in {:.1}s: {}",
        tables.version,
        read_time.as_secs_f64(),
        describe_read(&counts)
    );
    drop(tables);

    let batches = load::batches(dump);
    let mut total = Tally::default();
    batches.iter().for_each(|b| total.add(Tally::of(b)));
    let count = batches.len();
    let progress = Progress::new(&total);
    let mut landed = Tally::default();
    let load_started = Instant::now();
    for (applied, batch) in batches.into_iter().enumerate() {
        let tally = Tally::of(&batch);
        let request = ImportRequest {
            id: Uuid::new_v4(),
            batch,
        };
        if let Err(e) = load::send(admin.http(), &endpoint, &request).await {
            progress.finish();
            return Err(failure(e, applied, count, &landed, &total));
        }
        landed.add(tally);
        progress.update(applied + 1, count, &landed, &total);
    }
    progress.finish();
    let load_time = load_started.elapsed();
    println!(
        "import: read from the {} in {:.1}s: {}",
        source.describe(),
        read_time.as_secs_f64(),
        describe_read(&counts)
    );
    println!(
        "import: wrote {} in {count} batches in {:.1}s",
        describe_tally(&landed),
        load_time.as_secs_f64()
    );
    println!("import: done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The error of an import that stopped at batch `applied` (0-based) of `count`.
fn failure(e: SendError, applied: usize, count: usize, landed: &Tally, total: &Tally) -> String {
    let (why, maybe) = match e {
        SendError::Refused(m) | SendError::Unreachable(m) => (m, false),
        SendError::Unknown(m) => (m, true),
    };
    if applied == 0 && !maybe {
        return format!("the import was not applied, nothing was written: {why}");
    }
    let landed_text = if applied == 0 {
        "nothing for certain".to_string()
    } else {
        format!(
            "batches 0 to {} of {count}: {}",
            applied - 1,
            describe_tally(landed)
        )
    };
    format!(
        "the import stopped at batch {applied} of {count}: {why}. The target now holds a \
         partial import{}; landed: {landed_text}; of {}. Do not send clients to it: to \
         start over, stop every member, delete their data directories, start a fresh \
         cluster and run the import again.",
        if maybe {
            format!(" (batch {applied} itself may or may not have been applied)")
        } else {
            String::new()
        },
        describe_tally(total)
    )
}

fn describe_read(c: &Counts) -> String {
    format!(
        "{} custom resource classes, {} custom traits, {} providers ({} inventories, {} \
         traits set, {} aggregates in {} memberships), {} consumers of {} projects, {} users \
         and {} consumer types ({} without allocations skipped), {} allocations",
        c.resource_classes,
        c.traits,
        c.providers,
        c.inventories,
        c.provider_traits,
        c.aggregates,
        c.provider_aggregates,
        c.consumers,
        c.projects,
        c.users,
        c.consumer_types,
        c.skipped_consumers,
        c.allocations
    )
}

fn describe_tally(t: &Tally) -> String {
    format!(
        "{} resource classes, {} traits, {} providers, {} consumers with {} allocations",
        t.resource_classes, t.traits, t.providers, t.consumers, t.allocations
    )
}

/// Progress on stderr: a bar on a terminal, otherwise a line per batch.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
}

impl Progress {
    fn new(total: &Tally) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total.records() as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "import {bar:40} {pos}/{len} records, {msg} ({elapsed})",
            ) {
                bar.set_style(style);
            }
            Progress::Bar(bar)
        } else {
            Progress::Lines
        }
    }

    fn update(&self, done: usize, count: usize, landed: &Tally, total: &Tally) {
        let stage = stage(landed, total);
        match self {
            Progress::Bar(bar) => {
                bar.set_position(landed.records() as u64);
                bar.set_message(stage);
            }
            Progress::Lines => eprintln!("import: batch {done}/{count}: {stage}"),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish();
        }
    }
}

/// `providers 4000/10000`: the kind of record being written, and how far.
fn stage(landed: &Tally, total: &Tally) -> String {
    let stages = [
        (
            "resource classes",
            landed.resource_classes,
            total.resource_classes,
        ),
        ("traits", landed.traits, total.traits),
        ("providers", landed.providers, total.providers),
        ("consumers", landed.consumers, total.consumers),
    ];
    let current = stages
        .iter()
        .find(|(_, done, all)| done < all)
        .or_else(|| stages.iter().rev().find(|(_, _, all)| *all > 0))
        .unwrap_or(&stages[0]);
    format!("{} {}/{}", current.0, current.1, current.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_is_the_first_kind_not_done() {
        let total = Tally {
            resource_classes: 2,
            traits: 0,
            providers: 10_000,
            consumers: 50,
            allocations: 100,
        };
        let mut landed = Tally {
            resource_classes: 2,
            providers: 4_000,
            ..Tally::default()
        };
        assert_eq!(stage(&landed, &total), "providers 4000/10000");
        landed.providers = 10_000;
        landed.consumers = 50;
        assert_eq!(stage(&landed, &total), "consumers 50/50");
        assert_eq!(
            stage(&Tally::default(), &Tally::default()),
            "resource classes 0/0"
        );
    }

    #[test]
    fn a_failure_after_the_first_batch_says_what_landed_and_how_to_start_over() {
        let landed = Tally {
            resource_classes: 1,
            providers: 2_000,
            ..Tally::default()
        };
        let total = Tally {
            providers: 10_000,
            ..landed
        };
        let m = failure(
            SendError::Refused("409 Conflict: boom".into()),
            2,
            6,
            &landed,
            &total,
        );
        assert!(
            m.contains("stopped at batch 2 of 6: 409 Conflict: boom"),
            "{m}"
        );
        assert!(m.contains("partial import"), "{m}");
        assert!(m.contains("batches 0 to 1 of 6: 1 resource classes, 0 traits, 2000 providers"));
        assert!(m.contains("start a fresh cluster"), "{m}");
        let m = failure(
            SendError::Refused("409 Conflict: Import refused".into()),
            0,
            6,
            &Tally::default(),
            &total,
        );
        assert!(
            m.starts_with("the import was not applied, nothing was written"),
            "{m}"
        );
        let m = failure(
            SendError::Unknown("no answer".into()),
            0,
            6,
            &Tally::default(),
            &total,
        );
        assert!(m.contains("may or may not have been applied"), "{m}");
    }
}
