//! Knobs: every behaviour a test may turn, in one serialisable struct.
//!
//! `GET /_sandbox/knobs` returns [`Knobs`] as JSON; `PUT /_sandbox/knobs` takes
//! any subset of its fields and merges them (see [`Knobs::merged`]), so a test
//! says only what it changes. Fault knobs are off by default; the rules' knobs
//! default to Meta's documented limits.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::pricing::PricingRules;

/// How an error that Meta reports asynchronously (131047, 131026) is surfaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowErrorMode {
    /// Meta's behaviour: 200 with a wamid, then a `failed` status webhook.
    Async,
    /// An HTTP 400 with the error body, at once.
    Sync,
}

/// Who decides a submitted template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TemplateReview {
    /// The sandbox's review rules, `template_approval_delay_ms` after submission (on the clock).
    #[default]
    Auto,
    /// Nobody: templates stay `PENDING` until `POST /_sandbox/templates/decide`.
    Manual,
}

/// An inclusive range of milliseconds, drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MsRange {
    pub min: u64,
    pub max: u64,
}

/// The pair rate limit as a token bucket per (phone number, recipient).
///
/// Meta: "a business phone number can send 1 message every 6 seconds to the
/// same WhatsApp user (0.17 messages/second)", with short bursts allowed by
/// borrowing against future quota (Meta's throughput / pair-rate-limit docs,
/// error 131056). The default bucket holds 45 messages (Meta quotes bursts of
/// up to 45 messages) and refills one every 6000 ms, generous enough that
/// ordinary tests never meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLimit {
    pub burst: u32,
    pub refill_ms: u64,
}

impl Default for PairLimit {
    fn default() -> Self {
        PairLimit {
            burst: 45,
            refill_ms: 6000,
        }
    }
}

/// The body of an edge failure: what a proxy in front of Graph answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EdgeBody {
    /// A small HTML error page (`text/html`).
    #[default]
    Html,
    /// No body at all.
    Empty,
}

/// How Meta's edge fails after the message was accepted: a 502 or 504 with
/// no Graph error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeFailure {
    /// 502 or 504.
    pub status: u16,
    pub body: EdgeBody,
}

impl Default for EdgeFailure {
    fn default() -> Self {
        EdgeFailure {
            status: 502,
            body: EdgeBody::Html,
        }
    }
}

/// A status Meta may send for an accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progression {
    Sent,
    Delivered,
    Read,
}

impl Progression {
    pub fn as_str(self) -> &'static str {
        match self {
            Progression::Sent => "sent",
            Progression::Delivered => "delivered",
            Progression::Read => "read",
        }
    }
}

/// All knobs. Field names are the JSON names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Seeds every random choice (faults, latency, shuffles); `null` = entropy.
    pub seed: Option<u64>,
    /// Added latency on Graph routes.
    pub latency_ms: MsRange,
    /// Share of Graph requests answered 503 code 2.
    pub error_5xx_rate: f64,
    /// Share of Graph requests answered 429 code 130429 regardless of load.
    pub throttle_rate: f64,
    /// Share of Graph requests held for `timeout_hold_ms`, then dropped, not accepted.
    pub timeout_rate: f64,
    /// Share of sends accepted (recorded, webhooks sent) whose response is held then dropped.
    pub response_lost_rate: f64,
    /// Share of sends accepted (recorded, webhooks sent) answered by Meta's edge
    /// with `edge_failure` (a 502/504 without a Graph error body).
    pub edge_failure_rate: f64,
    pub edge_failure: EdgeFailure,
    pub timeout_hold_ms: u64,
    /// Share of webhooks posted twice.
    pub webhook_duplicate_rate: f64,
    /// Deliver one message's status webhooks in shuffled order.
    pub webhook_reorder: bool,
    /// Delay before each status webhook.
    pub webhook_delay_ms: MsRange,
    /// Attempts per webhook (first try + retries) before it counts as failed.
    pub webhook_max_attempts: u32,
    /// First retry back-off; doubles per attempt.
    pub webhook_retry_base_ms: u64,
    /// Statuses emitted for an accepted message, in order.
    pub status_progression: Vec<Progression>,
    /// PENDING -> decided after this long on the sandbox's clock (auto review).
    pub template_approval_delay_ms: u64,
    /// `auto` (the review rules decide) or `manual` (only `/_sandbox/templates/decide` does).
    pub template_review: TemplateReview,
    /// How errors Meta reports by `failed` webhook (131047, 131026, 131049,
    /// 131050, 131042, 130472) surface: `async` (Meta's) or `sync` (HTTP 400).
    pub window_error_mode: WindowErrorMode,
    /// Messages accepted per phone number per rolling second (Meta default: 80).
    pub mps_cap: u32,
    pub pair_limit: PairLimit,
    /// Recipients (digits or +digits) that answer 131026.
    pub undeliverable: Vec<String>,
    /// Template names the review REJECTS (reason `INVALID_FORMAT`), besides Meta's formatting rule.
    pub reject_templates: Vec<String>,
    /// Which pricing rules status webhooks follow: `auto` (by the clock's
    /// date), `2025-07` or `2026-10` (see [`crate::pricing`]).
    pub pricing_rules: PricingRules,
    /// Free service messages per phone number per calendar month under the `2026-10` rules.
    pub service_free_allowance: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            seed: None,
            latency_ms: MsRange::default(),
            error_5xx_rate: 0.0,
            throttle_rate: 0.0,
            timeout_rate: 0.0,
            response_lost_rate: 0.0,
            edge_failure_rate: 0.0,
            edge_failure: EdgeFailure::default(),
            timeout_hold_ms: 30_000,
            webhook_duplicate_rate: 0.0,
            webhook_reorder: false,
            webhook_delay_ms: MsRange::default(),
            webhook_max_attempts: 5,
            webhook_retry_base_ms: 100,
            status_progression: vec![Progression::Sent, Progression::Delivered, Progression::Read],
            template_approval_delay_ms: 0,
            template_review: TemplateReview::Auto,
            window_error_mode: WindowErrorMode::Async,
            mps_cap: 80,
            pair_limit: PairLimit::default(),
            undeliverable: Vec::new(),
            reject_templates: Vec::new(),
            pricing_rules: PricingRules::Auto,
            service_free_allowance: 1000,
        }
    }
}

/// A knob update that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    #[error("knobs patch must be a JSON object")]
    NotAnObject,
    #[error("invalid knobs: {0}")]
    Invalid(#[source] serde_json::Error),
    #[error("{0} must be between 0.0 and 1.0")]
    RateOutOfRange(&'static str),
    #[error("{0}: min must not exceed max")]
    BadRange(&'static str),
    #[error("edge_failure.status must be 502 or 504")]
    EdgeStatus,
}

impl Knobs {
    /// These knobs with `patch`'s fields replacing theirs; validated.
    pub fn merged(&self, patch: &Value) -> Result<Knobs, KnobError> {
        let Value::Object(changes) = patch else {
            return Err(KnobError::NotAnObject);
        };
        let mut current = serde_json::to_value(self).map_err(KnobError::Invalid)?;
        if let Value::Object(map) = &mut current {
            for (k, v) in changes {
                map.insert(k.clone(), v.clone());
            }
        }
        let knobs: Knobs = serde_json::from_value(current).map_err(KnobError::Invalid)?;
        knobs.validate()?;
        Ok(knobs)
    }

    pub fn validate(&self) -> Result<(), KnobError> {
        for (name, rate) in [
            ("error_5xx_rate", self.error_5xx_rate),
            ("throttle_rate", self.throttle_rate),
            ("timeout_rate", self.timeout_rate),
            ("response_lost_rate", self.response_lost_rate),
            ("edge_failure_rate", self.edge_failure_rate),
            ("webhook_duplicate_rate", self.webhook_duplicate_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(KnobError::RateOutOfRange(name));
            }
        }
        if self.latency_ms.min > self.latency_ms.max {
            return Err(KnobError::BadRange("latency_ms"));
        }
        if self.webhook_delay_ms.min > self.webhook_delay_ms.max {
            return Err(KnobError::BadRange("webhook_delay_ms"));
        }
        if !matches!(self.edge_failure.status, 502 | 504) {
            return Err(KnobError::EdgeStatus);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_partial_patch_keeps_other_knobs() {
        let k = Knobs::default()
            .merged(&json!({"mps_cap": 5, "window_error_mode": "sync"}))
            .expect("valid patch");
        assert_eq!(k.mps_cap, 5);
        assert_eq!(k.window_error_mode, WindowErrorMode::Sync);
        assert_eq!(k.pair_limit, PairLimit::default());
    }

    #[test]
    fn unknown_knob_and_bad_rate_are_refused() {
        assert!(Knobs::default().merged(&json!({"nope": 1})).is_err());
        assert!(Knobs::default()
            .merged(&json!({"throttle_rate": 1.5}))
            .is_err());
    }
}
