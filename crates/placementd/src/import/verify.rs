//! `placementd import --verify`: proves that an import kept everything, by reading the
//! running Placement (the *source*) and placementd (the *target*) through the same REST API
//! and comparing what they answer.
//!
//! # What is compared
//! Resource classes, traits, and every provider: its uuid, name, generation, parent and
//! root; its inventories (every field), traits, aggregates, usages and allocations
//! (`GET /resource_providers/{u}/…`). Then every consumer found in an allocation on either
//! side (`GET /allocations/{c}`: generation, project, user, consumer type, resources per
//! provider), and every project found there (`GET /usages?project_id=P`: usage per consumer
//! type). `compare` says which differences are not differences (list order, links, `16`
//! against `16.0`); anything else that differs is printed, the first `MAX_SHOWN` of them,
//! each naming the record, the field and both values, and the command fails.
//!
//! # What it needs
//! Both services must be quiet while they are read: the cut-over stops writes before the
//! import (`docs/migrate.md`), and a write between the two reads would show up as a
//! difference (usually a generation). Both are read at the same time, each with
//! `--verify-concurrency` requests in flight; at 10,000 providers that is about 50,000 GETs
//! per side.
//!
//! # Left out
//! Allocation candidates and other queries are derived from the records compared here, and
//! are not asked for. Resource providers' and consumers' timestamps are not in the bodies
//! at 1.39 and are not carried over by an import (`docs/migrate.md`).

mod compare;
mod fetch;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;

use compare::{Difference, Records};
use fetch::Service;

/// How many differences are printed; the count of all of them is printed too.
const MAX_SHOWN: usize = 20;

/// The flags of `placementd import --verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The running Placement's API (the source of the import), e.g.
    /// http://placement.example:8778/placement.
    #[arg(long, value_name = "URL", env = "PLACEMENTD_VERIFY_SOURCE_URL")]
    pub source_url: Option<String>,

    /// placementd's API (the target of the import): a node or the load balancer in front.
    #[arg(long, value_name = "URL", env = "PLACEMENTD_VERIFY_TARGET_URL")]
    pub target_url: Option<String>,

    /// Token sent to the source as X-Auth-Token; `admin` is what auth_strategy = noauth2
    /// accepts. With Keystone: `openstack token issue -f value -c id` of an admin.
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "admin",
        env = "PLACEMENTD_VERIFY_SOURCE_TOKEN",
        hide_env_values = true
    )]
    pub source_token: String,

    /// Token sent to the target as X-Auth-Token (see --source-token).
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "admin",
        env = "PLACEMENTD_VERIFY_TARGET_TOKEN",
        hide_env_values = true
    )]
    pub target_token: String,

    /// PEM file of the CA(s) that signed the source's HTTPS certificate.
    #[arg(long, value_name = "FILE")]
    pub source_ca_file: Option<PathBuf>,

    /// PEM file of the CA(s) that signed the target's HTTPS certificate (the cluster CA's
    /// ca.pem, for a cluster made with `placementd cert`).
    #[arg(long, value_name = "FILE")]
    pub target_ca_file: Option<PathBuf>,

    /// Requests in flight at once, on each side.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub verify_concurrency: u16,
}

/// Compares the source and the target; `Err` when they differ or cannot be read.
pub async fn run(args: &VerifyArgs) -> Result<(), String> {
    let (Some(source_url), Some(target_url)) = (&args.source_url, &args.target_url) else {
        return Err(
            "--verify needs --source-url (the running Placement's API) and --target-url \
             (placementd's API)"
                .into(),
        );
    };
    let source = Service::new(
        "source",
        source_url,
        &args.source_token,
        args.source_ca_file.as_deref(),
    )?;
    let target = Service::new(
        "target",
        target_url,
        &args.target_token,
        args.target_ca_file.as_deref(),
    )?;
    let concurrency = usize::from(args.verify_concurrency);
    let started = Instant::now();

    let mut sides = [Side::new(&source), Side::new(&target)];
    let [s, t] = &mut sides;
    futures::try_join!(s.read_globals(), t.read_globals())?;
    progress(format!(
        "verify: {} providers in the source, {} in the target; reading each provider",
        s.providers.len(),
        t.providers.len()
    ));
    futures::try_join!(s.read_providers(concurrency), t.read_providers(concurrency))?;

    let consumers: BTreeSet<String> = s.consumers.union(&t.consumers).cloned().collect();
    progress(format!(
        "verify: reading {} consumers ({:.1}s so far)",
        consumers.len(),
        started.elapsed().as_secs_f64()
    ));
    futures::try_join!(
        s.read_consumers(&consumers, concurrency),
        t.read_consumers(&consumers, concurrency)
    )?;
    let projects: BTreeSet<String> = s.projects.union(&t.projects).cloned().collect();
    futures::try_join!(
        s.read_projects(&projects, concurrency),
        t.read_projects(&projects, concurrency)
    )?;

    let differences = compare::compare(&s.records, &t.records);
    let requests = (
        source.requests.load(Ordering::Relaxed),
        target.requests.load(Ordering::Relaxed),
    );
    let seconds = started.elapsed().as_secs_f64();
    report(&s.records, &differences, seconds, requests)
}

/// Prints the summary line, or the first differences; `Err` when there are any.
fn report(
    source: &Records,
    differences: &[Difference],
    seconds: f64,
    (source_requests, target_requests): (u64, u64),
) -> Result<(), String> {
    let counts = source.counts();
    let summary = format!(
        "verify: {counts} compared in {seconds:.1}s ({source_requests} requests to the \
         source, {target_requests} to the target): {} differences",
        differences.len()
    );
    if differences.is_empty() {
        println!("{summary}");
        return Ok(());
    }
    for difference in differences.iter().take(MAX_SHOWN) {
        println!("  {difference}");
    }
    if differences.len() > MAX_SHOWN {
        println!("  … and {} more", differences.len() - MAX_SHOWN);
    }
    println!("{summary}");
    Err(format!(
        "the target differs from the source in {} places (listed above); if nothing wrote to \
         either side while they were read, the import is incomplete: do not switch the \
         endpoint",
        differences.len()
    ))
}

/// `value` percent-encoded for a query string (everything but unreserved characters).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A progress line (stderr: stdout holds the result).
fn progress(line: String) {
    eprintln!("{line}");
}

/// What has been read from one service so far.
struct Side<'a> {
    service: &'a Service,
    records: Records,
    providers: Vec<String>,
    consumers: BTreeSet<String>,
    projects: BTreeSet<String>,
}

/// What is read of each provider, and where it goes.
const PROVIDER_PARTS: [&str; 5] = [
    "inventories",
    "traits",
    "aggregates",
    "usages",
    "allocations",
];

impl<'a> Side<'a> {
    fn new(service: &'a Service) -> Side<'a> {
        Side {
            service,
            records: Records::default(),
            providers: Vec::new(),
            consumers: BTreeSet::new(),
            projects: BTreeSet::new(),
        }
    }

    /// Resource classes, traits and the provider list.
    async fn read_globals(&mut self) -> Result<(), String> {
        let (classes, traits, providers) = futures::try_join!(
            self.service.get("/resource_classes"),
            self.service.get("/traits"),
            self.service.get("/resource_providers"),
        )?;
        let role = self.service.role;
        let on = |e: String| format!("{role}: {e}");
        self.records.add_resource_classes(&classes).map_err(on)?;
        self.records.add_traits(&traits).map_err(on)?;
        self.providers = self.records.add_providers(&providers).map_err(on)?;
        Ok(())
    }

    /// Every provider's inventories, traits, aggregates, usages and allocations.
    async fn read_providers(&mut self, concurrency: usize) -> Result<(), String> {
        let paths = self
            .providers
            .iter()
            .flat_map(|rp| {
                PROVIDER_PARTS
                    .iter()
                    .map(move |part| format!("/resource_providers/{rp}/{part}"))
            })
            .collect();
        let bodies = self.service.get_all(paths, concurrency).await?;
        let role = self.service.role;
        let on = |e: String| format!("{role}: {e}");
        for rp in &self.providers {
            let body = |part: &str| -> Result<&Value, String> {
                bodies
                    .get(&format!("/resource_providers/{rp}/{part}"))
                    .ok_or_else(|| format!("{role}: no answer for provider {rp}'s {part}"))
            };
            let r = &mut self.records;
            r.add_inventories(rp, body("inventories")?).map_err(on)?;
            r.add_provider_traits(rp, body("traits")?).map_err(on)?;
            r.add_aggregates(rp, body("aggregates")?).map_err(on)?;
            r.add_provider_usages(rp, body("usages")?).map_err(on)?;
            let consumers = r
                .add_provider_allocations(rp, body("allocations")?)
                .map_err(on)?;
            self.consumers.extend(consumers);
        }
        Ok(())
    }

    /// Each consumer's allocations, generation, project, user and type.
    async fn read_consumers(
        &mut self,
        consumers: &BTreeSet<String>,
        concurrency: usize,
    ) -> Result<(), String> {
        let paths = consumers
            .iter()
            .map(|c| format!("/allocations/{c}"))
            .collect();
        let bodies = self.service.get_all(paths, concurrency).await?;
        let role = self.service.role;
        for consumer in consumers {
            let body = bodies
                .get(&format!("/allocations/{consumer}"))
                .ok_or_else(|| format!("{role}: no answer for consumer {consumer}"))?;
            if let Some(project) = self
                .records
                .add_consumer(consumer, body)
                .map_err(|e| format!("{role}: {e}"))?
            {
                self.projects.insert(project);
            }
        }
        Ok(())
    }

    /// Each project's usages, by consumer type.
    async fn read_projects(
        &mut self,
        projects: &BTreeSet<String>,
        concurrency: usize,
    ) -> Result<(), String> {
        let path = |p: &str| format!("/usages?project_id={}", query_value(p));
        let paths = projects.iter().map(|p| path(p)).collect();
        let bodies = self.service.get_all(paths, concurrency).await?;
        let role = self.service.role;
        for project in projects {
            let body = bodies
                .get(&path(project))
                .ok_or_else(|| format!("{role}: no answer for project {project}'s usages"))?;
            self.records
                .add_project_usages(project, body)
                .map_err(|e| format!("{role}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::query_value;

    #[test]
    fn project_ids_are_percent_encoded_in_the_query() {
        assert_eq!(query_value("6f2a6c1e-0001_x.y~"), "6f2a6c1e-0001_x.y~");
        assert_eq!(query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
