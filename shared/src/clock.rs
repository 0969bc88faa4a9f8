//! The one clock every handler reads for wall-clock time.
//!
//! Production reads the system clock. The local stack and the tests read a
//! *shifted* clock: the system's time plus an offset that they move
//! forward, so the 24 to 72 hours an alert can wait for Meta's template
//! approval, or a CSM's 24-hour window, pass in seconds. The Meta sandbox
//! reads the same offset in those runs, so both sides of a conversation
//! agree on the time.
//!
//! Only the time that is written down or compared with stored times is
//! shifted (ledger times, windows, deadlines, TTLs). Durations measured in
//! the process (cache lifetimes, pacing, timeouts) use `Instant` and stay
//! real: a shifted clock must not make a cache or a rate limiter lie.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Wall-clock time: the system's, or the system's plus an offset that the
/// holder of the offset moves (the local runner's time control).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` in production.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock: what every Lambda function reads.
    pub fn system() -> Clock {
        Clock { offset_ms: None }
    }

    /// The system clock shifted by `offset_ms`, read on every call, so
    /// whoever holds the offset moves this clock and every clone of it.
    pub fn shifted(offset_ms: Arc<AtomicI64>) -> Clock {
        Clock {
            offset_ms: Some(offset_ms),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        match &self.offset_ms {
            Some(offset) => system.saturating_add(offset.load(Ordering::Relaxed)),
            None => system,
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_moves_with_its_offset_and_the_system_clock_does_not() {
        let offset = Arc::new(AtomicI64::new(0));
        let shifted = Clock::shifted(offset.clone());
        let system = Clock::system();
        let before = shifted.now();
        offset.fetch_add(30 * 3600 * 1000, Ordering::Relaxed);
        let after = shifted.clone().now();
        assert!(after - before >= 30 * 3600, "{before} → {after}");
        assert!(system.now() < after - 29 * 3600);
    }
}
