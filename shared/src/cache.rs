//! A small map whose entries expire: the in-process caches of warm
//! instances (tenants, secrets, template approvals).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries expire after their own TTL; expired entries are dropped when the
/// map grows, so junk keys cannot grow it without bound.
pub struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// One gate per key being loaded, so concurrent misses load once.
    loading: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
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
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the one `load` returns (with its TTL), loading
    /// each key once at a time: the ten records of a cold instance's first
    /// batch that all miss together make one request, not ten.
    pub async fn get_or_load<E, F, Fut>(&self, k: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Duration), E>>,
    {
        if let Some(hit) = self.get(k) {
            return Ok(hit);
        }
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(k.clone())
            .or_default()
            .clone();
        let result = {
            let _turn = gate.lock().await;
            match self.get(k) {
                Some(hit) => Ok(hit),
                None => match load().await {
                    Ok((v, ttl)) => {
                        self.put(k.clone(), v.clone(), ttl);
                        Ok(v)
                    }
                    Err(e) => Err(e),
                },
            }
        };
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        // The map's copy and ours: nobody else is waiting at this gate.
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(k);
        }
        result
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let map: Arc<TtlMap<&str, u32>> = Arc::default();
        let loads = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (map, loads) = (map.clone(), loads.clone());
                tokio::spawn(async move {
                    map.get_or_load(&"k", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>((7, Duration::from_secs(60)))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            map.loading.lock().unwrap().is_empty(),
            "gates are cleaned up"
        );
        // A failed load is not cached: the next call loads again.
        let failed = map
            .get_or_load(&"x", || async { Err::<(u32, Duration), _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let ok = map
            .get_or_load(&"x", || async {
                Ok::<_, &str>((1, Duration::from_secs(1)))
            })
            .await;
        assert_eq!(ok, Ok(1));
    }
}
