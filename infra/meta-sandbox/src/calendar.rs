//! Civil (UTC) dates from unix time and back, for the few rules that Meta
//! states in dates: version expiry, the calendar month of a pricing allowance.
//! Howard Hinnant's `days_from_civil` algorithm; no date crate needed.

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds of midnight UTC at the start of `YYYY-MM-DD`; `None` if malformed.
pub fn parse_date_ms(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400_000)
}

/// The UTC `(year, month)` a unix-millisecond instant falls in.
pub fn year_month(ms: i64) -> (i64, u32) {
    let (year, month, _) = civil_from_days(ms.div_euclid(86_400_000));
    (year, month)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a unix-second instant (people read ISO-8601 UTC).
pub fn iso8601(unix_s: i64) -> String {
    let (y, m, d) = civil_from_days(unix_s.div_euclid(86_400));
    let secs = unix_s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_unix_time() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        // 2026-09-24 00:00:00 UTC
        assert_eq!(parse_date_ms("2026-09-24"), Some(1_790_208_000_000));
        assert_eq!(year_month(1_790_208_000_000), (2026, 9));
        assert_eq!(
            year_month(parse_date_ms("2024-02-29").unwrap_or(0)),
            (2024, 2)
        );
        assert_eq!(parse_date_ms("2026-13-01"), None);
        assert_eq!(iso8601(1_790_208_000 + 3661), "2026-09-24T01:01:01Z");
    }
}
