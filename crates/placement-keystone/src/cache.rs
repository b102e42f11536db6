//! The token cache: what Keystone said of a token, kept for at most `token_cache_time` and
//! never past the token's expiry, keyed by a SHA-256 of the token (the token itself is never
//! kept). Refusals are cached too, so a client repeating a bad token costs Keystone one call
//! per `token_cache_time`. Bounded: when full, expired entries go first, then the oldest.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::token::Validated;

/// The cache key of a token.
pub type Key = [u8; 32];

pub fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

/// What is remembered of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(Arc<Validated>),
    Invalid,
}

#[derive(Debug)]
struct Entry {
    verdict: Verdict,
    until: Instant,
}

#[derive(Debug)]
pub struct TokenCache {
    ttl: Option<Duration>,
    capacity: usize,
    entries: HashMap<Key, Entry>,
    /// Keys in insertion order (may hold keys already gone or re-inserted).
    order: VecDeque<Key>,
}

impl TokenCache {
    /// `ttl` `None` disables caching (`token_cache_time = -1`).
    pub fn new(ttl: Option<Duration>, capacity: usize) -> TokenCache {
        TokenCache {
            ttl: ttl.filter(|t| !t.is_zero()),
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verdict on `key`, if remembered and still fresh at `now`.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Verdict> {
        self.entries
            .get(key)
            .filter(|e| e.until > now)
            .map(|e| e.verdict.clone())
    }

    /// Remembers a verdict reached at `now` (`wall` is the wall-clock time of `now`, to
    /// compare with the token's expiry).
    pub fn put(&mut self, key: Key, verdict: Verdict, now: Instant, wall: SystemTime) {
        let Some(ttl) = self.ttl else { return };
        let mut until = now + ttl;
        if let Verdict::Valid(v) = &verdict {
            let left = v.expires_at.duration_since(wall).unwrap_or(Duration::ZERO);
            until = until.min(now + left);
        }
        if until <= now {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        self.entries.insert(key, Entry { verdict, until });
        self.order.push_back(key);
        // Stale keys in `order` (removed or re-inserted entries) are bounded by this.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            let mut seen = std::collections::HashSet::new();
            self.order
                .retain(|k| entries.contains_key(k) && seen.insert(*k));
        }
    }

    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.until > now);
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_api::context::Caller;

    fn valid(expires_in: Duration, wall: SystemTime) -> Verdict {
        Verdict::Valid(Arc::new(Validated {
            caller: Caller::default(),
            expires_at: wall + expires_in,
        }))
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_verdict_lasts_the_cache_time_and_never_past_the_tokens_expiry() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut c = TokenCache::new(Some(5 * MINUTE), 10);
        c.put(key("long"), valid(60 * MINUTE, wall), now, wall);
        c.put(key("short"), valid(MINUTE, wall), now, wall);
        c.put(key("bad"), Verdict::Invalid, now, wall);
        let at = |m: u32| now + m * MINUTE - Duration::from_millis(1);
        assert!(c.get(&key("long"), at(5)).is_some());
        assert!(c.get(&key("long"), at(6)).is_none());
        assert!(c.get(&key("short"), at(1)).is_some());
        assert!(c.get(&key("short"), at(2)).is_none());
        assert_eq!(c.get(&key("bad"), at(5)), Some(Verdict::Invalid));
        assert!(c.get(&key("bad"), at(6)).is_none());
        assert!(c.get(&key("other"), now).is_none());
    }

    #[test]
    fn an_expired_token_and_a_disabled_cache_remember_nothing() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut c = TokenCache::new(Some(MINUTE), 10);
        c.put(
            key("old"),
            Verdict::Valid(Arc::new(Validated {
                caller: Caller::default(),
                expires_at: wall - MINUTE,
            })),
            now,
            wall,
        );
        assert!(c.is_empty());
        let mut off = TokenCache::new(None, 10);
        off.put(key("t"), Verdict::Invalid, now, wall);
        assert!(off.is_empty());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut c = TokenCache::new(Some(MINUTE), 3);
        for i in 0..3 {
            c.put(key(&i.to_string()), Verdict::Invalid, now, wall);
        }
        c.put(key("3"), Verdict::Invalid, now, wall);
        assert_eq!(c.len(), 3);
        assert!(c.get(&key("0"), now).is_none(), "the oldest went");
        assert!(c.get(&key("3"), now).is_some());
        // Much later, everything expired: room without evicting anything fresh.
        let later = now + 2 * MINUTE;
        c.put(key("4"), Verdict::Invalid, later, wall + 2 * MINUTE);
        assert_eq!(c.len(), 1);
        for i in 0..10_000 {
            c.put(key(&format!("x{i}")), Verdict::Invalid, later, wall);
        }
        assert_eq!(c.len(), 3);
        assert!(c.order.len() <= 6);
    }
}
