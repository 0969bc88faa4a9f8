//! Graph API versions: which exist, which have expired, and what Meta does
//! with a call to an expired one.
//!
//! The table is Meta's changelog ("Available Graph API versions",
//! <https://developers.facebook.com/docs/graph-api/changelog/versions/>, read
//! with the search tool in November 2026): v26.0 released 2026-07-29 is the
//! latest, v20.0 expired on 2026-09-24. Each version lives two years after the
//! next one is released.
//!
//! A call to an expired version is not refused: Meta's versioning guide says
//! "once a version is no longer usable, any calls made to it will be
//! defaulted to the next oldest usable version"
//! (<https://developers.facebook.com/docs/graph-api/guides/versioning>). So the
//! sandbox serves it as the oldest version still available on its clock and
//! says which in the `facebook-api-version` response header, as Graph does.
//! Versions newer than the latest are served as asked (not verified against
//! Meta). Expiry is read on the sandbox's [`crate::clock`], so a test can move
//! time past an expiry date.

use crate::calendar::parse_date_ms;
use crate::errors::MetaError;

/// Meta's latest stable Graph API version (released 2026-07-29).
pub const CURRENT_VERSION: &str = "v26.0";

/// The first version whose status webhooks no longer carry the `conversation`
/// object (Meta's status webhook reference: "Omitted for v24.0+ unless webhook
/// is for a free entry point conversation").
pub const NO_CONVERSATION_FROM_MAJOR: u32 = 24;

/// `(major, released, expires)` from Meta's changelog, newest first.
const VERSIONS: &[(u32, &str, Option<&str>)] = &[
    (26, "2026-07-29", None),
    (25, "2026-02-18", Some("2028-07-29")),
    (24, "2025-10-08", Some("2028-02-18")),
    (23, "2025-05-29", Some("2027-10-08")),
    (22, "2025-01-21", Some("2027-05-20")),
    (21, "2024-10-02", Some("2027-01-21")),
    (20, "2024-05-21", Some("2026-09-24")),
    (19, "2024-01-23", Some("2026-05-21")),
    (18, "2023-09-12", Some("2026-01-26")),
    (17, "2023-05-23", Some("2025-09-12")),
    (16, "2023-02-02", Some("2025-05-14")),
];

/// The version a request names and the version that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVersion {
    /// As in the path, e.g. `v20.0`.
    pub requested: String,
    /// What Meta serves it as: the same, or the oldest usable version.
    pub effective: String,
    pub effective_major: u32,
}

impl ResolvedVersion {
    /// Whether status webhooks for messages sent with this version carry `conversation`.
    pub fn sends_conversation(&self) -> bool {
        self.effective_major < NO_CONVERSATION_FROM_MAJOR
    }
}

/// The major number of `v<major>.<minor>`.
pub fn major_of(version: &str) -> Option<u32> {
    parse(version).map(|(major, _)| major)
}

fn parse(version: &str) -> Option<(u32, u32)> {
    let (a, b) = version.strip_prefix('v')?.split_once('.')?;
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn expired(expires: Option<&str>, now_ms: i64) -> bool {
    expires
        .and_then(parse_date_ms)
        .is_some_and(|at| now_ms >= at)
}

/// The oldest version still usable at `now_ms`.
pub fn oldest_usable(now_ms: i64) -> u32 {
    VERSIONS
        .iter()
        .rev()
        .find(|(_, _, expires)| !expired(*expires, now_ms))
        .map(|(major, _, _)| *major)
        .unwrap_or(26)
}

/// Resolves the `{version}` path segment: a malformed one is Graph's 100; an
/// expired (or pre-table) one is served as the oldest usable version.
pub fn resolve(version: &str, now_ms: i64) -> Result<ResolvedVersion, MetaError> {
    let Some((major, minor)) = parse(version) else {
        let mut e = MetaError::invalid_parameter("Invalid version format. Use format like 'v26.0'");
        e.message = "Invalid version format. Use format like 'v26.0'".into();
        return Err(e);
    };
    let oldest = VERSIONS.last().map(|v| v.0).unwrap_or(0);
    let listed = VERSIONS.iter().find(|(m, _, _)| *m == major);
    let is_expired = match listed {
        Some((_, _, expires)) => expired(*expires, now_ms),
        None => major < oldest,
    };
    if is_expired {
        let usable = oldest_usable(now_ms);
        return Ok(ResolvedVersion {
            requested: version.to_string(),
            effective: format!("v{usable}.0"),
            effective_major: usable,
        });
    }
    Ok(ResolvedVersion {
        requested: version.to_string(),
        effective: format!("v{major}.{minor}"),
        effective_major: major,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> i64 {
        parse_date_ms(date).unwrap_or(0)
    }

    #[test]
    fn an_expired_version_is_served_as_the_oldest_usable_one() {
        let now = at("2026-11-30");
        let v20 = resolve("v20.0", now).expect("served");
        assert_eq!(v20.effective, "v21.0");
        let v19 = resolve("v19.0", now).expect("served");
        assert_eq!(v19.effective, "v21.0");
        assert_eq!(
            resolve("v23.0", now).map(|v| v.effective),
            Ok("v23.0".into())
        );
        // Before its expiry date v20 was still itself.
        assert_eq!(
            resolve("v20.0", at("2026-09-23")).map(|v| v.effective),
            Ok("v20.0".into())
        );
    }

    #[test]
    fn conversation_objects_stop_at_v24() {
        let now = at("2026-11-30");
        assert!(resolve("v23.0", now).is_ok_and(|v| v.sends_conversation()));
        assert!(resolve("v24.0", now).is_ok_and(|v| !v.sends_conversation()));
        assert!(resolve("v26.0", now).is_ok_and(|v| !v.sends_conversation()));
    }

    #[test]
    fn a_malformed_version_is_100() {
        assert_eq!(resolve("latest", 0).map_err(|e| e.code), Err(100));
    }
}
