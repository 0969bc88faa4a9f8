//! Which Graph API versions Meta publishes, and when each expires: the
//! table behind the start-up warning and `fwa status`.
//!
//! Meta's changelog, "Available Graph API versions",
//! <https://developers.facebook.com/docs/graph-api/changelog/versions/>
//! (read with the search tool on 2026-11-30; the page in its German, Spanish
//! and Russian editions lists v26.0 as the latest). Each version lives until
//! two years after the next one is released; the newest has no expiry yet
//! ("TBD"). A call to an expired version is not refused: Meta serves it as
//! the oldest version still available
//! (<https://developers.facebook.com/docs/graph-api/guides/versioning>), so
//! an expired configuration keeps working, on rules it was not written for.
//! Hence a warning [`WARN_DAYS`] before the date, not an error on it.
//!
//! When Meta publishes a new version or an expiry date, add it here (and move
//! [`CURRENT_VERSION`] and the `GraphApiVersion` default in `template.yaml`).

use std::fmt;

/// Meta's latest stable Graph API version, the default of `GRAPH_API_VERSION`.
pub const CURRENT_VERSION: &str = "v26.0";

/// When the table above was read from Meta's changelog.
pub const TABLE_READ_ON: &str = "2026-11-30";

/// How long before a version's expiry start-up and `fwa status` warn.
pub const WARN_DAYS: i64 = 90;

/// `(version, released, expires)` as Meta's changelog lists them, newest
/// first; `None`: not announced yet.
const VERSIONS: &[(&str, &str, Option<&str>)] = &[
    ("v26.0", "2026-07-29", None),
    ("v25.0", "2026-02-18", Some("2028-07-29")),
    ("v24.0", "2025-10-08", Some("2028-02-18")),
    ("v23.0", "2025-05-29", Some("2027-10-08")),
    ("v22.0", "2025-01-21", Some("2027-05-20")),
    ("v21.0", "2024-10-02", Some("2027-01-21")),
    ("v20.0", "2024-05-21", Some("2026-09-24")),
    ("v19.0", "2024-01-23", Some("2026-05-21")),
    ("v18.0", "2023-09-12", Some("2026-01-26")),
    ("v17.0", "2023-05-23", Some("2025-09-12")),
    ("v16.0", "2023-02-02", Some("2025-05-14")),
];

/// A configured version that has expired or expires within [`WARN_DAYS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionWarning {
    /// The configured version, e.g. `v21.0`.
    pub version: String,
    /// Its expiry, `YYYY-MM-DD` (UTC), or `None` for a version older than
    /// the table (expired long ago).
    pub expires_on: Option<&'static str>,
    /// Whole days until the expiry; 0 or less once it has passed.
    pub days_left: i64,
}

impl VersionWarning {
    pub fn expired(&self) -> bool {
        self.days_left <= 0
    }
}

impl fmt::Display for VersionWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.version;
        match (self.expires_on, self.expired()) {
            (Some(on), false) => write!(
                f,
                "Graph API version {v} expires on {on} (in {} days)",
                self.days_left
            )?,
            (Some(on), true) => write!(
                f,
                "Graph API version {v} expired on {on}: Meta now serves its calls as the oldest version still available"
            )?,
            (None, _) => write!(
                f,
                "Graph API version {v} is older than every version Meta still lists: it has expired"
            )?,
        }
        write!(
            f,
            "; set GRAPH_API_VERSION (template parameter GraphApiVersion) to {CURRENT_VERSION}, Meta's current version"
        )
    }
}

/// The warning for `version` at `now` (unix seconds), if it has expired or
/// expires within [`WARN_DAYS`] by Meta's table; `None` for a version with
/// no announced expiry, or one newer than the table.
pub fn version_warning(version: &str, now: i64) -> Option<VersionWarning> {
    let asked = major_minor(version)?;
    if let Some((v, _, expires)) = VERSIONS
        .iter()
        .find(|(v, _, _)| major_minor(v) == Some(asked))
    {
        let on = (*expires)?;
        let days_left = (day_start(on)? - now).div_euclid(86_400);
        return (days_left <= WARN_DAYS).then(|| VersionWarning {
            version: (*v).to_string(),
            expires_on: Some(on),
            days_left,
        });
    }
    let oldest = VERSIONS.last().and_then(|(v, _, _)| major_minor(v))?;
    (asked < oldest).then(|| VersionWarning {
        version: version.to_string(),
        expires_on: None,
        days_left: 0,
    })
}

/// `(major, minor)` of `v<major>.<minor>`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Unix seconds at 00:00 UTC of `YYYY-MM-DD`.
fn day_start(date: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> i64 {
        day_start(date).expect("date")
    }

    #[test]
    fn every_date_in_the_table_reads_and_the_newest_is_current() {
        assert_eq!(VERSIONS[0].0, CURRENT_VERSION);
        for (v, released, expires) in VERSIONS {
            assert!(major_minor(v).is_some(), "{v}");
            assert!(day_start(released).is_some(), "{v} {released}");
            if let Some(e) = expires {
                assert!(at(e) > at(released), "{v}");
            }
        }
        assert!(day_start(TABLE_READ_ON).is_some());
    }

    #[test]
    fn the_current_version_never_warns() {
        assert_eq!(version_warning(CURRENT_VERSION, at("2030-01-01")), None);
        assert_eq!(version_warning("v27.0", at("2026-11-30")), None);
    }

    #[test]
    fn a_version_warns_from_ninety_days_before_its_expiry() {
        // v23.0 expires on 2027-10-08.
        assert_eq!(version_warning("v23.0", at("2027-07-09")), None);
        let w = version_warning("v23.0", at("2027-07-10")).expect("warns");
        assert_eq!(w.days_left, 90);
        assert!(!w.expired());
        assert_eq!(
            w.to_string(),
            "Graph API version v23.0 expires on 2027-10-08 (in 90 days); set GRAPH_API_VERSION (template parameter GraphApiVersion) to v26.0, Meta's current version"
        );
    }

    #[test]
    fn an_expired_version_says_so() {
        let w = version_warning("v20.0", at("2026-11-30")).expect("warns");
        assert!(w.expired());
        assert!(w.to_string().contains("expired on 2026-09-24"), "{w}");
        let w = version_warning("v12.0", at("2026-11-30")).expect("warns");
        assert!(w.expired());
        assert!(w.to_string().contains("older than every version"), "{w}");
    }

    #[test]
    fn on_the_day_the_table_was_read_v21_is_the_one_near_its_end() {
        let today = at(TABLE_READ_ON);
        let warned: Vec<&str> = VERSIONS
            .iter()
            .filter(|(v, _, _)| version_warning(v, today).is_some_and(|w| !w.expired()))
            .map(|(v, _, _)| *v)
            .collect();
        assert_eq!(warned, ["v21.0"]);
    }
}
