//! Scraping a node's `/metrics` (served with `--metrics-listen 127.0.0.1:0`).

use std::collections::BTreeMap;

use crate::{Node, Result};

/// The metrics address a node logged at start (`--metrics-listen 127.0.0.1:0` lets the OS
/// choose the port, so no two tests can race for one).
pub async fn metrics_addr(node: &Node) -> Result<String> {
    let log = node.log_with("serving metrics").await;
    log.lines()
        .filter(|l| l.contains("serving metrics"))
        .find_map(|l| {
            let rest = &l[l.find("metrics_listen=")? + "metrics_listen=".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
        .ok_or_else(|| format!("no `serving metrics` line in the log:\n{}", node.log_tail()).into())
}

/// A scrape: its text and its samples (`series` as written → value).
pub struct Scrape {
    pub text: String,
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The one sample named exactly `series` (0 when absent).
    pub fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// Samples whose series starts with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> Vec<(&str, f64)> {
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), *v))
            .collect()
    }
}

pub async fn scrape(http: &reqwest::Client, addr: &str) -> Result<Scrape> {
    let response = http.get(format!("http://{addr}/metrics")).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await?;
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').ok_or("a sample line")?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse()?,
        };
        samples.insert(series.to_string(), value);
    }
    Ok(Scrape { text, samples })
}
