//! Pacing against Meta's pair rate limit: one business number may send
//! one message every 6 s to the same user, with short bursts allowed
//! (error 131056).
//!
//! Each instance keeps the whole of Meta's allowance for the pairs it sees,
//! with a generic cell rate (GCRA) per (number, recipient): `burst`
//! messages back to back, then one per `interval` plus a slack: 5 %, and
//! at least [`LATE_SEND_SLACK`], the 100 ms a send may leave late that the
//! number's schedule allows too ([`crate::store::rate`]). Meta counts a
//! message when it arrives: a burst that reached Meta late refills Meta's
//! allowance late, and the next send, leaving on time, must not overtake
//! it. It is not split between instances. A number's cap is shared
//! exactly by every instance through the store ([`super::slots`]), at one
//! write per batch and number; a pair limit shared the same way would cost
//! a write per recipient, up to one more per message, beyond the budget of
//! three DynamoDB requests per alert. Splitting it instead (`burst / n`,
//! `interval * n` for `n` instances) would make a second alert to one CSM
//! wait minutes once many instances run. So alerts to one CSM that land on
//! several instances at once can go over Meta's allowance; Meta then
//! answers 131056 and the alert is retried with backoff like any throttle
//! (nothing sent twice: the refusal means Meta did not take it). Alerts to
//! one CSM come a few a day; a burst past ten of them in six seconds is
//! what it takes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock: the real one in production, the paused one in tests.
use tokio::time::Instant;

pub struct Pacer {
    pair: PairLimit,
    /// Theoretical arrival time of the next message per (number, recipient).
    pair_tat: Mutex<HashMap<(String, String), Instant>>,
}

/// Meta's per-recipient limit, which each instance keeps whole.
#[derive(Debug, Clone, Copy)]
pub struct PairLimit {
    pub burst: u32,
    pub interval: Duration,
    /// Longer waits are not taken here: the caller defers the send.
    pub max_wait: Duration,
}

/// When a message to one recipient may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSlot {
    /// Now, or after this short wait; the slot is taken.
    After(Duration),
    /// Not within `max_wait`; nothing was taken. Try again after this long.
    Defer(Duration),
}

/// The least a paced interval is stretched by (see the module doc): 5 % of
/// Meta's 6 s is 300 ms, but of a test's 1 s only 50 ms, which a loaded
/// machine's late burst overran.
pub const LATE_SEND_SLACK: Duration = Duration::from_millis(100);

/// Beyond this many remembered pairs, forgotten ones are swept.
const PAIR_SWEEP_AT: usize = 10_000;

impl Pacer {
    pub fn new(pair: PairLimit) -> Self {
        Pacer {
            pair: PairLimit {
                burst: pair.burst.max(1),
                interval: pair
                    .interval
                    .mul_f64(1.05)
                    .max(pair.interval + LATE_SEND_SLACK),
                max_wait: pair.max_wait,
            },
            pair_tat: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the next slot for a message from `phone_number_id` to
    /// `recipient` if it comes within `max_wait`.
    pub fn pair_slot(&self, phone_number_id: &str, recipient: &str) -> PairSlot {
        let PairLimit {
            burst,
            interval,
            max_wait,
        } = self.pair;
        let tolerance = interval * burst.saturating_sub(1);
        let mut map = self.pair_tat.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= PAIR_SWEEP_AT {
            map.retain(|_, tat| *tat > now);
        }
        let key = (phone_number_id.to_string(), recipient.to_string());
        let tat = map.get(&key).copied().unwrap_or(now).max(now);
        let wait = tat.duration_since(now).saturating_sub(tolerance);
        if wait > max_wait {
            return PairSlot::Defer(wait);
        }
        map.insert(key, tat + interval);
        PairSlot::After(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(burst: u32, interval_ms: u64, max_wait_ms: u64) -> PairLimit {
        PairLimit {
            burst,
            interval: Duration::from_millis(interval_ms),
            max_wait: Duration::from_millis(max_wait_ms),
        }
    }

    #[test]
    fn a_burst_passes_then_one_per_interval_then_defers() {
        let pacer = Pacer::new(pair(3, 1000, 1500));
        let ms = |slot: PairSlot| match slot {
            PairSlot::After(d) => d.as_millis() as i64,
            PairSlot::Defer(d) => -(d.as_millis() as i64),
        };
        // Three back to back, the fourth 1.1 s later (the 100 ms slack is
        // more than 5 % of 1 s), the fifth 2.2 s.
        let slots: Vec<i64> = (0..5).map(|_| ms(pacer.pair_slot("1", "a"))).collect();
        assert_eq!(slots[..3], [0, 0, 0]);
        assert!((1090..=1100).contains(&slots[3]), "{slots:?}");
        // The fifth (2.2 s away) is beyond the 1.5 s wait: deferred, not taken.
        assert!((-2200..=-2190).contains(&slots[4]), "{slots:?}");
        assert!(matches!(pacer.pair_slot("1", "a"), PairSlot::Defer(_)));
        // Another recipient, and the same recipient of another number, are free.
        assert_eq!(pacer.pair_slot("1", "b"), PairSlot::After(Duration::ZERO));
        assert_eq!(pacer.pair_slot("2", "a"), PairSlot::After(Duration::ZERO));
    }

    #[test]
    fn an_instance_keeps_metas_whole_burst() {
        // Meta's 10 at once then one per 6 s: not split however many
        // instances run (see the module doc).
        let pacer = Pacer::new(pair(10, 6000, 0));
        let taken = (0..20)
            .take_while(|_| pacer.pair_slot("1", "a") == PairSlot::After(Duration::ZERO))
            .count();
        assert_eq!(taken, 10);
        match pacer.pair_slot("1", "a") {
            PairSlot::Defer(d) => assert!(
                (6_290..=6_300).contains(&d.as_millis()),
                "then one per 6 s (+5 %): {d:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
