//! Per-phone-number pacing so Meta's messages-per-second cap is never
//! exceeded, across concurrent instances too.
//!
//! Each instance spaces its sends for a number at least
//! `max_concurrency / cap` seconds apart (plus 2 %). A rolling one-second
//! window can then hold at most `cap / max_concurrency` sends of one
//! instance, and at most `max_concurrency` instances run (the event source
//! mapping's `MaximumConcurrency`), so together they stay within `cap` with
//! no shared counter and no extra request per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Pacer {
    interval: Duration,
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    pub fn new(cap_per_sec: u32, max_concurrency: u32) -> Self {
        let secs = f64::from(max_concurrency.max(1)) / f64::from(cap_per_sec.max(1)) * 1.02;
        Pacer {
            interval: Duration::from_secs_f64(secs),
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for this number's next free slot and takes it.
    pub async fn wait(&self, phone_number_id: &str) {
        let slot = {
            let mut map = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let next = map.entry(phone_number_id.to_string()).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_instance_stays_within_its_share() {
        let pacer = Pacer::new(80, 2);
        let start = tokio::time::Instant::now();
        for _ in 0..41 {
            pacer.wait("123").await;
        }
        // 41 sends need 40 intervals of 25.5 ms: more than one second, so no
        // rolling second holds more than 40 (= 80 / 2).
        assert!(
            start.elapsed() > Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        // Another number is paced on its own.
        let t = tokio::time::Instant::now();
        pacer.wait("456").await;
        assert!(t.elapsed() < Duration::from_millis(1));
    }
}
