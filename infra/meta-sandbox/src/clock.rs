//! The sandbox's wall clock: the one source of every time Meta shows or keeps.
//!
//! The service under test reads a *shifted* clock in local runs and tests
//! (days pass in seconds), and Meta's side of the conversation must read the
//! same time, or a window opened "30 hours ago" on one side is open on the
//! other. So every time the sandbox writes into a payload or compares with a
//! stored time reads [`Clock`]: webhook `timestamp`s and entry `time`s, the
//! 24-hour customer service window, template review and decision times,
//! `accepted_at`, pricing windows, the 30-day phone-number rule for users with
//! usernames, and the expiry of Graph API versions.
//!
//! Durations measured inside the process stay on monotonic time
//! (`Instant`, tokio timers): the messages-per-second cap, the pair bucket,
//! webhook retry back-off and fault latencies. A shifted clock must not make a
//! rate limiter or a retry loop lie.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of unix milliseconds.
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Wall-clock time for the sandbox: the system clock by default, or any
/// function the embedder passes (the local stack passes
/// `move || clock.now_ms()` so both sides read one shifted clock).
#[derive(Clone)]
pub struct Clock {
    now_ms: NowMs,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::from_fn(system_now_ms)
    }

    /// A clock reading `now_ms` on every call.
    pub fn from_fn(now_ms: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock {
            now_ms: Arc::new(now_ms),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        (self.now_ms)()
    }

    /// Unix seconds now.
    pub fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now_ms = {})", self.now_ms())
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[test]
    fn a_clock_reads_its_function_on_every_call() {
        let t = Arc::new(AtomicI64::new(1_000));
        let source = t.clone();
        let clock = Clock::from_fn(move || source.load(Ordering::Relaxed));
        assert_eq!(clock.now_s(), 1);
        t.store(30 * 3600 * 1000, Ordering::Relaxed);
        assert_eq!(clock.clone().now_s(), 30 * 3600);
    }
}
