//! Per-phone-number pacing so Meta's messages-per-second cap is never
//! exceeded, across concurrent instances too.
//!
//! Each instance allows itself `share = cap / max_concurrency` sends for a
//! number in any rolling 1.02 s (a sliding-window log of its last `share`
//! slots): a batch goes out at once while the share lasts, and the next
//! send waits until the oldest of the last `share` is 1.02 s old. At most
//! `max_concurrency` instances run (the event source mapping's
//! `MaximumConcurrency`), so together they stay within `cap` in any rolling
//! second with no shared counter and no extra request per message.
//!
//! Meta also limits one business number to one message every 6 s to the
//! same user, with short bursts allowed (pair rate limit, error 131056).
//! [`Pacer::pair_slot`] keeps within that the same way: a generic cell rate
//! (GCRA) per (number, recipient) lets `burst / max_concurrency` messages
//! through back to back, then one per `interval * max_concurrency` (plus
//! 5 %). Over any span `t` one instance then sends at most
//! `burst / n + t / (interval * n)`, so `n` instances together stay within
//! Meta's `burst + t / interval`. A 131056 can still come from clock jitter
//! or a limit Meta lowered; it is retried like any other throttle.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock: the real one in production, the paused one in tests.
use tokio::time::Instant;

pub struct Pacer {
    /// Sends one instance may make per number in any rolling `WINDOW`.
    share: usize,
    /// The last `share` slots taken per number, oldest first.
    slots: Mutex<HashMap<String, VecDeque<Instant>>>,
    pair: PairLimit,
    /// Theoretical arrival time of the next message per (number, recipient).
    pair_tat: Mutex<HashMap<(String, String), Instant>>,
}

/// Meta's per-recipient limit, for all instances together; each
/// instance keeps its share.
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

/// A second plus 2 %: slack for the clocks of Meta and of this instance.
const WINDOW: Duration = Duration::from_millis(1020);

/// Beyond this many remembered pairs, forgotten ones are swept.
const PAIR_SWEEP_AT: usize = 10_000;

impl Pacer {
    pub fn new(cap_per_sec: u32, max_concurrency: u32, pair: PairLimit) -> Self {
        let n = max_concurrency.max(1);
        let share = usize::try_from((cap_per_sec / n).max(1)).unwrap_or(1);
        let pair_share = PairLimit {
            burst: (pair.burst / n).max(1),
            interval: pair.interval.mul_f64(f64::from(n) * 1.05),
            max_wait: pair.max_wait,
        };
        Pacer {
            share,
            slots: Mutex::new(HashMap::new()),
            pair: pair_share,
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

    /// Waits for this number's next free slot and takes it.
    pub async fn wait(&self, phone_number_id: &str) {
        let slot = {
            let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let taken = map.entry(phone_number_id.to_string()).or_default();
            let mut slot = now;
            if taken.len() >= self.share {
                if let Some(oldest) = taken.front() {
                    slot = slot.max(*oldest + WINDOW);
                }
            }
            if let Some(last) = taken.back() {
                slot = slot.max(*last);
            }
            taken.push_back(slot);
            while taken.len() > self.share {
                taken.pop_front();
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
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

    #[tokio::test(start_paused = true)]
    async fn one_instance_stays_within_its_share() {
        let pacer = Pacer::new(80, 2, pair(10, 6000, 5000));
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..200 {
            pacer.wait("123").await;
            at.push(start.elapsed());
        }
        // The share (80 / 2 = 40) goes out at once...
        assert!(at[39] < Duration::from_millis(1), "{:?}", at[39]);
        assert!(at[40] >= Duration::from_millis(1020), "{:?}", at[40]);
        // ...and no rolling second ever holds more than 40.
        for (k, t) in at.iter().enumerate() {
            let within = at[k..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(within <= 40, "{within} sends in the second from {t:?}");
        }
        // 200 sends take four more windows, not more: the share is used.
        assert!(
            at[199] < Duration::from_millis(4 * 1020 + 5),
            "{:?}",
            at[199]
        );
        // Another number is paced on its own.
        let t = tokio::time::Instant::now();
        pacer.wait("456").await;
        assert!(t.elapsed() < Duration::from_millis(1));
    }

    #[test]
    fn a_burst_passes_then_one_per_interval_then_defers() {
        let pacer = Pacer::new(80, 1, pair(3, 1000, 1500));
        let ms = |slot: PairSlot| match slot {
            PairSlot::After(d) => d.as_millis() as i64,
            PairSlot::Defer(d) => -(d.as_millis() as i64),
        };
        // Three back to back, the fourth 1.05 s later, the fifth 2.1 s.
        let slots: Vec<i64> = (0..5).map(|_| ms(pacer.pair_slot("1", "a"))).collect();
        assert_eq!(slots[..3], [0, 0, 0]);
        assert!((1040..=1050).contains(&slots[3]), "{slots:?}");
        // The fifth (2.1 s away) is beyond the 1.5 s wait: deferred, not taken.
        assert!((-2100..=-2090).contains(&slots[4]), "{slots:?}");
        assert!(matches!(pacer.pair_slot("1", "a"), PairSlot::Defer(_)));
        // Another recipient, and the same recipient of another number, are free.
        assert_eq!(pacer.pair_slot("1", "b"), PairSlot::After(Duration::ZERO));
        assert_eq!(pacer.pair_slot("2", "a"), PairSlot::After(Duration::ZERO));
    }

    #[test]
    fn instances_split_the_pair_limit_between_them() {
        // Meta's 10 at once then one per 6 s, shared by two instances.
        let pacer = Pacer::new(80, 2, pair(10, 6000, 0));
        let taken = (0..10)
            .take_while(|_| pacer.pair_slot("1", "a") == PairSlot::After(Duration::ZERO))
            .count();
        assert_eq!(taken, 5, "each instance gets half the burst");
        match pacer.pair_slot("1", "a") {
            PairSlot::Defer(d) => assert!(
                (12_590..=12_600).contains(&d.as_millis()),
                "then one per 2 x 6 s (+5 %): {d:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
