//! How long an alert's history is kept: its ledger item (which holds the
//! alert's request, so its text), its responses and its message statuses
//! expire through DynamoDB's TTL (`ttl`, epoch seconds) `RETENTION_DAYS`
//! (default 90, the `RetentionDays` template parameter) after their last
//! write. Cost counters keep their own 13 months ([`super::COST_TTL_SECS`]).
//!
//! DynamoDB deletes an item some time (typically within days) after its
//! `ttl` has passed, and an expired item still shows in reads until then
//! (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html).
//! Nothing here needs it gone on time: a redelivered send request lives
//! four days on its queue, far inside any retention. The emulator never
//! expires items, so tests read the attribute.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{n, Store};

/// Days an alert's history is kept after its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    /// `RETENTION_DAYS` when unset.
    pub const DEFAULT_DAYS: u32 = 90;

    /// At least one day.
    pub fn days(days: u32) -> Retention {
        Retention { days: days.max(1) }
    }

    pub fn in_days(self) -> u32 {
        self.days
    }

    /// The `ttl` of an item written at `now` (unix seconds).
    pub fn expires_at(self, now: i64) -> i64 {
        now + i64::from(self.days) * 86_400
    }
}

impl Default for Retention {
    fn default() -> Retention {
        Retention::days(Retention::DEFAULT_DAYS)
    }
}

impl Store {
    /// The `ttl` value of an alert's history item written at `now`.
    pub(super) fn retained_until(&self, now: i64) -> AttributeValue {
        n(self.retention.expires_at(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_expires_its_retention_after_the_write() {
        assert_eq!(Retention::default().expires_at(1_000), 1_000 + 90 * 86_400);
        assert_eq!(Retention::days(7).expires_at(0), 7 * 86_400);
        assert_eq!(Retention::days(0).in_days(), 1, "never zero days");
    }
}
