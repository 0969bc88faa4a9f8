//! A phone number's send rate, shared by every sender instance.
//!
//! Meta caps each business number at a number of messages per second (80
//! by default, up to 1,000 for an upgraded number). A static share of the
//! cap per instance would tie the whole stack's rate to how many instances
//! run; this limiter lets any number of instances share one number's cap
//! exactly, at one conditional write per batch and number rather than per
//! message (`sender::slots` takes the slots).
//!
//! It is a generic cell rate schedule (GCRA) kept on one item per number:
//! `tat` is the time, in microseconds, of the number's next free slot.
//! Slots are `spacing = 1.1 s / cap` apart, so any rolling second holds
//! at most `ceil(cap / 1.1)` of them, which is never more than `cap`. The
//! 10 % is slack for what happens between a slot and Meta's reading of it:
//! a send that leaves late (a busy instance, a slow connection) by up to
//! 100 ms against the send `cap` slots after it still keeps Meta's rolling
//! second. With 2 % (20 ms), the tests' instances, sharing one thread with
//! the emulators, drew one 130429 from the sandbox in a run of 60. A claim takes
//! `k` slots at once:
//!
//! - **extend**: `SET tat = tat + k·spacing` on the condition that `tat`
//!   lies between now and `now + HORIZON - k·spacing`; the new `tat` comes
//!   back with the write, so concurrent claims line up one after another
//!   without refusing each other;
//! - **restart**: when the number was idle (no item, or `tat` in the past),
//!   `SET tat = now + k·spacing` on the condition that it still is.
//!
//! A refused write returns the item as it was, at no extra request
//! ([`super::update_or_old`]), and tells which of the two to try next. The
//! first write is chosen from the schedule as the caller's last claim saw
//! it ([`Hint`]; each instance remembers one per number, `sender::slots`):
//! a number that was idle then and whose end is now past is likely idle
//! still (a few batches a second), so the claim starts with the restart;
//! one that was busy then (a flood several instances share) likely still
//! is, so it starts with the extend, as it does knowing nothing. A guess
//! that is wrong costs one refused write, never a wrong slot: the
//! conditions, not the guess, keep the schedule. A
//! number whose schedule is full for the next [`HORIZON`] answers
//! [`Claim::Full`] with the time until a slot frees up: the caller waits,
//! or gives the batch back. Every slot time handed out is at least
//! `spacing` from every other one, whatever the interleaving, because each
//! write moves `tat` past the slots it hands out, atomically.
//!
//! Times are the injectable clock's (`Clock::now_ms`). Instances' clocks
//! differ by milliseconds (NTP), well inside the slack.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | number rate | `RATE#{phone_number_id}` | `RATE` |

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValue;

use super::{get_n, n, s, update_or_old, Store, StoreError, Written};

const RATE_SK: &str = "RATE";

/// How far ahead a claim may book slots: a batch of 10 at 80/s books
/// 137.5 ms; a second keeps any one instance from booking a number's
/// whole next minute while others wait.
pub const HORIZON: Duration = Duration::from_secs(1);

/// Meta's second with its slack: slots are 1.1 s / cap apart.
const SECOND_WITH_SLACK_US: i64 = 1_100_000;

/// An idle number's item is removed by DynamoDB's TTL after a day.
const IDLE_TTL_SECS: i64 = 86_400;

/// Writes refused by other instances' claims before this one gives up for
/// now and answers [`Claim::Full`].
const MAX_ROUNDS: usize = 8;

/// A number's cap, as Meta sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberRate {
    pub per_second: u32,
}

impl NumberRate {
    /// Microseconds between two slots: `1.1 s / cap`, rounded up, so the
    /// rounding never adds a send.
    pub fn spacing_us(self) -> i64 {
        let cap = i64::from(self.per_second.max(1));
        (SECOND_WITH_SLACK_US + cap - 1) / cap
    }
}

/// Slots claimed for one number: `count` of them, `spacing_us` apart from
/// `first_us` (unix microseconds on the injectable clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub first_us: i64,
    pub spacing_us: i64,
    pub count: u32,
}

impl Slots {
    /// The time of slot `i`, in unix microseconds.
    pub fn at_us(&self, i: u32) -> i64 {
        self.first_us + i64::from(i) * self.spacing_us
    }

    /// Every slot's time, in unix microseconds.
    pub fn times_us(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.count).map(|i| self.at_us(i))
    }
}

/// What a claim got, and what it learnt of the number's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub claim: Claim,
    /// The schedule as this claim last saw it; `None` when it saw no item.
    /// The caller's next claim's hint.
    pub hint: Option<Hint>,
    /// Conditional writes the claim made: 1 when its first guess was right.
    pub writes: u32,
}

/// A number's schedule as one claim saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// The schedule's end (`tat`, unix microseconds).
    pub end_us: i64,
    /// Whether it ran on past the claim's now: other claims were keeping
    /// the number busy. A number busy then is likely busy still (a flood
    /// shared by instances), even when this caller's own last slots are
    /// past; one idle then whose end is past is likely idle.
    pub busy: bool,
}

/// What a claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// These slots are this caller's; no other instance will use them.
    Slots(Slots),
    /// The next [`HORIZON`] is booked: nothing was taken. A slot frees up
    /// in about this long.
    Full(Duration),
}

/// What a claim knows of the stored schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nothing yet: try to extend, the likely case for a busy number.
    Unknown,
    /// No item, or its next free slot is in the past.
    Idle,
    /// The next free slot, in the future.
    Busy(i64),
}

/// The next write to try, decided from what is known; no I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Extend(u32),
    Restart(u32),
    Wait(Duration),
}

/// What a claim assumes before its first write, from the schedule as last
/// seen: idle when it was idle then and its end is past; otherwise the
/// extend's case.
fn first_guess(hint: Option<Hint>, now_us: i64) -> Seen {
    match hint {
        Some(h) if !h.busy && h.end_us < now_us => Seen::Idle,
        _ => Seen::Unknown,
    }
}

fn seen(tat: Option<i64>, now_us: i64) -> Seen {
    match tat {
        Some(t) if t >= now_us => Seen::Busy(t),
        _ => Seen::Idle,
    }
}

fn step(seen: Seen, now_us: i64, want: u32, rate: NumberRate) -> Step {
    let spacing = rate.spacing_us();
    let horizon = i64::try_from(HORIZON.as_micros()).unwrap_or(i64::MAX);
    let most = u32::try_from(horizon / spacing).unwrap_or(u32::MAX).max(1);
    let want = want.clamp(1, most);
    match seen {
        Seen::Unknown => Step::Extend(want),
        Seen::Idle => Step::Restart(want),
        Seen::Busy(tat) => {
            let room = (now_us + horizon - tat) / spacing;
            match u32::try_from(room) {
                Ok(r) if r >= 1 => Step::Extend(want.min(r)),
                _ => {
                    let us = (tat - (now_us + horizon) + spacing).max(1);
                    Step::Wait(Duration::from_micros(u64::try_from(us).unwrap_or(1)))
                }
            }
        }
    }
}

fn rate_pk(phone_number_id: &str) -> String {
    format!("RATE#{phone_number_id}")
}

impl Store {
    /// Claims up to `want` send slots for `phone_number_id` at `now_ms`
    /// (the injectable clock). Fewer come back when the horizon is nearly
    /// booked; none ([`Claim::Full`]) when it is booked. `hint` is the
    /// schedule as the caller's last claim saw it ([`Claimed::hint`]); it
    /// chooses the first write only.
    pub async fn claim_send_slots(
        &self,
        phone_number_id: &str,
        rate: NumberRate,
        want: u32,
        now_ms: i64,
        hint: Option<Hint>,
    ) -> Result<Claimed, StoreError> {
        let now_us = now_ms.saturating_mul(1000);
        let spacing = rate.spacing_us();
        let horizon = i64::try_from(HORIZON.as_micros()).unwrap_or(i64::MAX);
        let ttl = now_ms.div_euclid(1000) + IDLE_TTL_SECS;
        // What both writes share: the item, its idle expiry, and now.
        let write = || {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(rate_pk(phone_number_id)))
                .key("sk", s(RATE_SK))
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":ttl", n(ttl))
                .expression_attribute_values(":now", n(now_us))
        };
        let mut known = first_guess(hint, now_us);
        // The schedule as seen so far: the hint until a write answers.
        let mut saw = hint;
        let mut writes = 0;
        let claimed = |claim, hint, writes| Claimed {
            claim,
            hint,
            writes,
        };
        for _ in 0..MAX_ROUNDS {
            let (count, req) = match step(known, now_us, want, rate) {
                Step::Wait(d) => return Ok(claimed(Claim::Full(d), saw, writes)),
                Step::Extend(k) => {
                    let add = i64::from(k) * spacing;
                    let req = write()
                        .update_expression("SET tat = tat + :add, #ttl = :ttl")
                        .condition_expression("tat >= :now AND tat <= :latest")
                        .expression_attribute_values(":add", n(add))
                        .expression_attribute_values(":latest", n(now_us + horizon - add));
                    (k, req)
                }
                Step::Restart(k) => {
                    let req = write()
                        .update_expression("SET tat = :tat, #ttl = :ttl")
                        .condition_expression("attribute_not_exists(tat) OR tat < :now")
                        .expression_attribute_values(":tat", n(now_us + i64::from(k) * spacing));
                    (k, req)
                }
            };
            writes += 1;
            match update_or_old(req.return_values(ReturnValue::UpdatedNew)).await? {
                Written::Applied(new) => {
                    let tat = get_n(&new, "tat").ok_or_else(|| StoreError::Malformed {
                        pk: rate_pk(phone_number_id),
                        sk: RATE_SK.into(),
                        reason: "the claim's write returned no tat".into(),
                    })?;
                    let slots = Slots {
                        first_us: tat - i64::from(count) * spacing,
                        spacing_us: spacing,
                        count,
                    };
                    // An extend applies only to a schedule running on.
                    let busy = matches!(known, Seen::Unknown | Seen::Busy(_));
                    let hint = Hint { end_us: tat, busy };
                    return Ok(claimed(Claim::Slots(slots), Some(hint), writes));
                }
                Written::Refused(old) => {
                    let tat = get_n(&old, "tat");
                    known = seen(tat, now_us);
                    saw = tat.map(|end_us| Hint {
                        end_us,
                        busy: matches!(known, Seen::Busy(_)),
                    });
                }
            }
        }
        // Other instances kept moving the schedule under this one: it is
        // busy, so try again after about one slot.
        let wait = Duration::from_micros(u64::try_from(spacing).unwrap_or(1));
        Ok(claimed(Claim::Full(wait), saw, writes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn rate(per_second: u32) -> NumberRate {
        NumberRate { per_second }
    }

    #[test]
    fn slots_are_a_second_and_ten_percent_over_the_cap_apart() {
        assert_eq!(rate(80).spacing_us(), 13_750);
        assert_eq!(rate(1000).spacing_us(), 1_100);
        // Rounded up: 1.1 s / 7 = 157,142.86 µs.
        assert_eq!(rate(7).spacing_us(), 157_143);
        // A cap of 0 is read as 1, never a division by zero.
        assert_eq!(rate(0).spacing_us(), 1_100_000);
        // Any rolling second then holds at most the cap.
        for cap in [1, 7, 80, 250, 1000] {
            let within = (1_000_000 + rate(cap).spacing_us() - 1) / rate(cap).spacing_us();
            assert!(within <= i64::from(cap), "cap {cap}: {within}");
        }
    }

    #[test]
    fn an_unknown_schedule_is_extended_and_an_idle_one_restarted() {
        assert_eq!(step(Seen::Unknown, NOW, 10, rate(80)), Step::Extend(10));
        assert_eq!(step(Seen::Idle, NOW, 10, rate(80)), Step::Restart(10));
        assert_eq!(seen(None, NOW), Seen::Idle);
        assert_eq!(seen(Some(NOW - 1), NOW), Seen::Idle);
        assert_eq!(seen(Some(NOW), NOW), Seen::Busy(NOW));
    }

    #[test]
    fn a_schedule_last_seen_idle_and_ended_is_guessed_idle_and_any_other_unknown() {
        let idle = |end_us| {
            Some(Hint {
                end_us,
                busy: false,
            })
        };
        let busy = |end_us| Some(Hint { end_us, busy: true });
        assert_eq!(first_guess(idle(NOW - 1), NOW), Seen::Idle);
        assert_eq!(first_guess(idle(NOW), NOW), Seen::Unknown);
        assert_eq!(first_guess(idle(NOW + 500_000), NOW), Seen::Unknown);
        // Busy when last seen: other instances are likely still extending
        // it, even though this caller's own slots are past.
        assert_eq!(first_guess(busy(NOW - 1), NOW), Seen::Unknown);
        assert_eq!(first_guess(None, NOW), Seen::Unknown);
    }

    #[test]
    fn a_claim_never_books_past_the_horizon() {
        // At 80/s the horizon holds 72 slots (1 s / 13.75 ms).
        assert_eq!(step(Seen::Idle, NOW, 500, rate(80)), Step::Restart(72));
        // 0.9 s booked: 7 slots of room are left (100 ms / 13.75 ms).
        let busy = Seen::Busy(NOW + 900_000);
        assert_eq!(step(busy, NOW, 10, rate(80)), Step::Extend(7));
        // Fully booked: wait until one slot's room frees up.
        let full = Seen::Busy(NOW + 995_000);
        assert_eq!(
            step(full, NOW, 10, rate(80)),
            Step::Wait(Duration::from_micros(8_750))
        );
    }
}
