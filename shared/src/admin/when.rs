//! Times as the admin API and `fwa` show them to people: ISO-8601 UTC to
//! the second (`2026-11-30T10:00:00Z`). Answers that a program may read
//! give the unix seconds beside it (`parked_at` and `parked_at_unix`), so
//! neither has to parse the other's form.

use std::time::{Duration, UNIX_EPOCH};

/// Unix seconds as ISO-8601 UTC, e.g. `2026-11-30T10:00:00Z`. Times before
/// 1970 (none are stored) show as the epoch.
pub fn iso8601(unix: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Unix milliseconds as ISO-8601 UTC to the millisecond, e.g.
/// `2026-11-30T10:00:00.250Z`: the form of an event's times that a
/// latency is read from ([`crate::events::EventTime`]).
pub fn iso8601_millis(unix_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_read_as_utc_to_the_second() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_764_496_800), "2025-11-30T10:00:00Z");
        assert_eq!(iso8601(-5), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601_millis(1_764_496_800_250),
            "2025-11-30T10:00:00.250Z"
        );
    }
}
