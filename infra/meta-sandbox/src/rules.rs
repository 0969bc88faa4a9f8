//! Meta's rules as pure functions: the 24 h window, template placeholders
//! and review, and the two rate limits (request parsing is in
//! [`crate::requests`], re-exported here).
//!
//! Nothing here touches the network or the store, so each rule is unit-tested
//! beside its code; `graph_routes` strings them together in Meta's order.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::errors::MetaError;
use crate::knobs::PairLimit;

/// The customer service window: Meta allows free-form messages only within
/// 24 hours of the user's last message to the business (error 131047 after).
pub const SERVICE_WINDOW_SECS: i64 = 24 * 60 * 60;

use crate::requests::str_field;
pub use crate::requests::{parse_send, wa_id_of, SendKind, SendRequest};

/// The number of distinct `{{n}}` placeholders in a template body.
pub fn placeholder_count(text: &str) -> usize {
    placeholders(text).len()
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let inner = after[..end].trim();
                if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    found.insert(inner.to_string());
                }
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    found
}

/// True while a free-form message may go out: the last inbound message is
/// less than 24 h old.
pub fn within_service_window(last_inbound_unix: Option<i64>, now_unix: i64) -> bool {
    match last_inbound_unix {
        Some(t) => now_unix - t < SERVICE_WINDOW_SECS,
        None => false,
    }
}

/// A template submission, once parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSubmission {
    pub name: String,
    pub language: String,
    pub category: String,
    pub components: Value,
    pub body_text: String,
}

/// Parses `POST /{WABA-ID}/message_templates`; shape errors are 100.
pub fn parse_template_submission(body: &Value) -> Result<TemplateSubmission, MetaError> {
    let name = str_field(body, "name")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter name is required."))?;
    // Meta: names are lowercase alphanumerics and underscores, at most 512 chars.
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(MetaError::invalid_parameter(
            "Param name may contain only lowercase alphanumeric characters and underscores.",
        ));
    }
    let language = str_field(body, "language")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter language is required."))?;
    let category = str_field(body, "category")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter category is required."))?;
    if !matches!(category, "UTILITY" | "MARKETING" | "AUTHENTICATION") {
        return Err(MetaError::invalid_parameter(
            "Param category must be one of {UTILITY, MARKETING, AUTHENTICATION}.",
        ));
    }
    let components = body
        .get("components")
        .filter(|c| c.is_array())
        .ok_or_else(|| MetaError::invalid_parameter("The parameter components is required."))?;
    let body_text = components
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| str_field(c, "type") == Some("BODY"))
        .and_then(|c| str_field(c, "text"))
        .ok_or_else(|| MetaError::invalid_parameter("A BODY component with text is required."))?;
    Ok(TemplateSubmission {
        name: name.to_string(),
        language: language.to_string(),
        category: category.to_string(),
        components: components.clone(),
        body_text: body_text.to_string(),
    })
}

/// The outcome of the sandbox's template review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    Approved,
    Rejected { reason: &'static str },
}

/// Meta's formatting rule: "Variable parameters can't be at the start or end
/// of the template body" — such templates are rejected with reason
/// `INVALID_FORMAT`. Names in the `reject_templates` knob are rejected the same way.
pub fn review_template(body_text: &str, name: &str, reject_list: &[String]) -> Review {
    let t = body_text.trim();
    let starts = t.starts_with("{{") && t.find("}}").is_some();
    let ends = t.ends_with("}}") && t.rfind("{{").is_some();
    if starts || ends || reject_list.iter().any(|n| n == name) {
        Review::Rejected {
            reason: "INVALID_FORMAT",
        }
    } else {
        Review::Approved
    }
}

/// Messages accepted in the last rolling second, for the per-number cap.
#[derive(Debug, Default)]
pub struct RollingSecond {
    hits: VecDeque<Instant>,
}

impl RollingSecond {
    fn prune(&mut self, now: Instant) {
        while let Some(front) = self.hits.front() {
            if now.duration_since(*front) >= Duration::from_secs(1) {
                self.hits.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether one more message fits under `cap` now (does not record it).
    pub fn has_room(&mut self, now: Instant, cap: u32) -> bool {
        self.prune(now);
        self.hits.len() < cap as usize
    }

    /// Records an accepted message; returns how many are now in the window.
    pub fn record(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.hits.push_back(now);
        self.hits.len()
    }
}

/// The pair rate limit's token bucket.
#[derive(Debug)]
pub struct PairBucket {
    tokens: f64,
    last: Instant,
}

impl PairBucket {
    pub fn new(limit: PairLimit, now: Instant) -> Self {
        PairBucket {
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, limit: PairLimit, now: Instant) -> bool {
        let elapsed_ms = now.duration_since(self.last).as_millis() as f64;
        let refill = if limit.refill_ms == 0 {
            f64::INFINITY
        } else {
            elapsed_ms / limit.refill_ms as f64
        };
        self.tokens = (self.tokens + refill).min(f64::from(limit.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_once_each() {
        assert_eq!(placeholder_count("Hi {{1}}, {{2}} and {{1}} again"), 2);
        assert_eq!(placeholder_count("no vars"), 0);
    }

    #[test]
    fn body_starting_or_ending_with_a_variable_is_rejected() {
        assert_eq!(
            review_template("{{1}} is due", "a", &[]),
            Review::Rejected {
                reason: "INVALID_FORMAT"
            }
        );
        assert_eq!(
            review_template("Due: {{1}}", "a", &[]),
            Review::Rejected {
                reason: "INVALID_FORMAT"
            }
        );
        assert_eq!(review_template("Hi {{1}}, ok.", "a", &[]), Review::Approved);
        assert_eq!(
            review_template("Hi {{1}}, ok.", "a", &["a".into()]),
            Review::Rejected {
                reason: "INVALID_FORMAT"
            }
        );
    }

    #[test]
    fn window_is_open_for_just_under_24h() {
        assert!(within_service_window(
            Some(1000),
            1000 + SERVICE_WINDOW_SECS - 1
        ));
        assert!(!within_service_window(
            Some(1000),
            1000 + SERVICE_WINDOW_SECS
        ));
        assert!(!within_service_window(None, 1000));
    }

    #[test]
    fn rolling_second_caps_and_forgets() {
        let t0 = Instant::now();
        let mut w = RollingSecond::default();
        for _ in 0..3 {
            assert!(w.has_room(t0, 3));
            w.record(t0);
        }
        assert!(!w.has_room(t0, 3));
        assert!(w.has_room(t0 + Duration::from_millis(1000), 3));
    }

    #[test]
    fn pair_bucket_allows_burst_then_refills() {
        let limit = PairLimit {
            burst: 2,
            refill_ms: 100,
        };
        let t0 = Instant::now();
        let mut b = PairBucket::new(limit, t0);
        assert!(b.try_take(limit, t0));
        assert!(b.try_take(limit, t0));
        assert!(!b.try_take(limit, t0));
        assert!(b.try_take(limit, t0 + Duration::from_millis(100)));
    }
}
