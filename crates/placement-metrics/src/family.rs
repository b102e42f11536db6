//! [`Family`]: one metric with labels, e.g. HTTP requests by method, route and status. Each
//! distinct set of label values is a child holding its own value.
//!
//! Finding a child takes a short lock (a map lookup); the child's update is then an atomic
//! add like any other metric. Children are created on first use and kept for the life of the
//! process. At most [`MAX_CHILDREN`] exist; label sets beyond that all share one child whose
//! label values read `overflow` (callers bound their labels, this is the backstop).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::text::{Encode, Samples, Text};

/// Most label sets one family reports.
pub const MAX_CHILDREN: usize = 2000;

/// The label value of the shared child past [`MAX_CHILDREN`].
pub const OVERFLOW: &str = "overflow";

/// One child: its label values and its value.
type Child<M, const N: usize> = ([String; N], Arc<M>);

/// A labelled metric with `N` label names.
pub struct Family<M, const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    make: fn() -> M,
    /// Keyed by the label values, length-prefixed so no two sets share a key.
    children: Mutex<BTreeMap<String, Child<M, N>>>,
}

impl<M, const N: usize> std::fmt::Debug for Family<M, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<M, const N: usize> Family<M, N> {
    /// A family named `name` whose children are made by `make`.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        make: fn() -> M,
    ) -> Self {
        Family {
            name,
            help,
            labels,
            make,
            children: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The child for these label values (in the order of the family's label names).
    pub fn with(&self, values: [&str; N]) -> Arc<M> {
        let mut key = String::new();
        for v in &values {
            key.push_str(&v.len().to_string());
            key.push(':');
            key.push_str(v);
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, child)) = children.get(&key) {
            return child.clone();
        }
        let (key, values) = if children.len() >= MAX_CHILDREN {
            let overflow = [OVERFLOW; N];
            let key: String = overflow
                .iter()
                .map(|v| format!("{}:{v}", v.len()))
                .collect();
            (key, overflow)
        } else {
            (key, values)
        };
        children
            .entry(key)
            .or_insert_with(|| (values.map(str::to_string), Arc::new((self.make)())))
            .1
            .clone()
    }

    /// How many label sets the family holds.
    pub fn len(&self) -> usize {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M: Samples + Send + Sync, const N: usize> Encode for Family<M, N> {
    fn encode(&self, out: &mut Text) {
        // The children are copied out first: the lock is not held while encoding.
        let children: Vec<Child<M, N>> = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        out.header(self.name, self.help, M::KIND);
        for (values, child) in children {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            child.write_samples(self.name, &labels, out);
        }
    }
}
