//! A small map whose entries expire: the in-process caches of warm
//! instances (tenants, secrets, template approvals).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries expire after their own TTL; expired entries are dropped when the
/// map grows, so junk keys cannot grow it without bound.
pub struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for TtlMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    pub fn new() -> Self {
        TtlMap {
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(k)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, k: K, v: V, ttl: Duration) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            let now = Instant::now();
            map.retain(|_, (until, _)| *until > now);
        }
        map.insert(k, (Instant::now() + ttl, v));
    }

    pub fn remove(&self, k: &K) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(k);
    }
}
