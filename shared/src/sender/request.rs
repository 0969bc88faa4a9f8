//! The send-request contract (version 1) and the hand-back message.
//!
//! Upstream Fincelo systems put one JSON send request per alert on the send
//! queue; `schemas/send-request.v1.schema.json` is its JSON Schema and
//! `docs/integrating.md` shows examples. Parsing is strict (unknown fields are refused, so a
//! typo such as `delivery_by` is caught instead of silently ignored) and every
//! refusal has a machine-readable reason: an invalid request is permanent and
//! goes to the DLQ at once.
//!
//! The webhook function puts a second kind of message on the same queue, a
//! [`Handback`]: Meta refused a free-form message after accepting it
//! (131047), so the sender must send the template instead.

use serde::{Deserialize, Serialize};

use crate::ids::{IdempotencyKey, TenantId};
use crate::phone::E164;
use crate::templates::catalog::{AlertEvent, Health};

/// The contract version this code reads.
pub const VERSION: u32 = 1;

/// A parsed, valid send request.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub to: E164,
    pub csm_id: Option<String>,
    pub event: AlertEvent,
    pub customer_name: String,
    pub health: Health,
    pub premium: bool,
    /// Positional template parameters, in the template's order.
    pub params: Vec<String>,
    /// The free-form body to use inside the window.
    pub text: Option<String>,
    /// Unix seconds after which the alert is stale.
    pub deliver_by: Option<i64>,
}

/// Why a request is invalid. `code()` is the machine-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("unsupported version {0}; this sender reads version 1")]
    UnsupportedVersion(String),
    #[error("request does not match the schema: {0}")]
    Schema(String),
    #[error("invalid tenant_id: {0}")]
    TenantId(String),
    #[error("invalid idempotency_key: {0}")]
    IdempotencyKey(String),
    #[error("recipient.phone is not a valid E.164 number: {0}")]
    Phone(String),
    #[error("unknown event type {0:?}; expected usage_threshold, overdue_invoice or escalation")]
    UnknownEvent(String),
    #[error("unknown customer health {0:?}; expected platinum, good, average, poor or critical")]
    UnknownHealth(String),
    #[error("deliver_by is not an RFC 3339 time: {0:?}")]
    DeliverBy(String),
    #[error("text must not be empty and at most 4096 characters")]
    Text,
    #[error("customer name must not be empty")]
    CustomerName,
}

impl InvalidRequest {
    pub fn code(&self) -> &'static str {
        match self {
            InvalidRequest::NotJson(_) => "not_json",
            InvalidRequest::UnsupportedVersion(_) => "unsupported_version",
            InvalidRequest::Schema(_) => "schema",
            InvalidRequest::TenantId(_) => "invalid_tenant_id",
            InvalidRequest::IdempotencyKey(_) => "invalid_idempotency_key",
            InvalidRequest::Phone(_) => "invalid_phone",
            InvalidRequest::UnknownEvent(_) => "unknown_event",
            InvalidRequest::UnknownHealth(_) => "unknown_health",
            InvalidRequest::DeliverBy(_) => "invalid_deliver_by",
            InvalidRequest::Text => "invalid_text",
            InvalidRequest::CustomerName => "invalid_customer",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: serde_json::Value,
    tenant_id: String,
    idempotency_key: String,
    recipient: RawRecipient,
    event: RawEvent,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    deliver_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    phone: String,
    #[serde(default)]
    csm_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    customer: RawCustomer,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomer {
    name: String,
    health: String,
    #[serde(default)]
    premium: bool,
}

/// Meta's limit on a text message body.
const TEXT_MAX: usize = 4096;

impl SendRequest {
    /// Parses and validates a queue message body.
    pub fn parse(body: &str) -> Result<SendRequest, InvalidRequest> {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| InvalidRequest::NotJson(e.to_string()))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => return Err(InvalidRequest::UnsupportedVersion(v.to_string())),
            None => return Err(InvalidRequest::Schema("missing field `version`".into())),
        }
        let raw: Raw =
            serde_json::from_value(value).map_err(|e| InvalidRequest::Schema(e.to_string()))?;
        let _ = raw.version;
        let event = match raw.event.kind.as_str() {
            "usage_threshold" => AlertEvent::UsageThreshold,
            "overdue_invoice" => AlertEvent::OverdueInvoice,
            "escalation" => AlertEvent::Escalation,
            other => return Err(InvalidRequest::UnknownEvent(other.to_string())),
        };
        let health = match raw.event.customer.health.as_str() {
            "platinum" => Health::Platinum,
            "good" => Health::Good,
            "average" => Health::Average,
            "poor" => Health::Poor,
            "critical" => Health::Critical,
            other => return Err(InvalidRequest::UnknownHealth(other.to_string())),
        };
        if raw.event.customer.name.trim().is_empty() {
            return Err(InvalidRequest::CustomerName);
        }
        if let Some(t) = &raw.text {
            if t.trim().is_empty() || t.chars().count() > TEXT_MAX {
                return Err(InvalidRequest::Text);
            }
        }
        let deliver_by = match raw.deliver_by {
            None => None,
            Some(s) => {
                let t = humantime::parse_rfc3339_weak(&s)
                    .map_err(|_| InvalidRequest::DeliverBy(s.clone()))?;
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|_| InvalidRequest::DeliverBy(s.clone()))?
                    .as_secs();
                Some(i64::try_from(secs).map_err(|_| InvalidRequest::DeliverBy(s))?)
            }
        };
        Ok(SendRequest {
            tenant_id: TenantId::parse(raw.tenant_id)
                .map_err(|e| InvalidRequest::TenantId(e.reason.to_string()))?,
            idempotency_key: IdempotencyKey::parse(raw.idempotency_key)
                .map_err(|e| InvalidRequest::IdempotencyKey(e.reason.to_string()))?,
            to: E164::parse(&raw.recipient.phone)
                .map_err(|e| InvalidRequest::Phone(e.to_string()))?,
            csm_id: raw.recipient.csm_id,
            event,
            customer_name: raw.event.customer.name,
            health,
            premium: raw.event.customer.premium,
            params: raw.event.params,
            text: raw.text,
            deliver_by,
        })
    }
}

/// "Send this alert's template instead": Meta refused the free-form message
/// `wamid` with 131047 after accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handback {
    pub kind: String,
    pub version: u32,
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub wamid: String,
}

impl Handback {
    pub const KIND: &'static str = "template_handback";

    pub fn new(tenant_id: TenantId, idempotency_key: IdempotencyKey, wamid: String) -> Self {
        Handback {
            kind: Self::KIND.into(),
            version: 1,
            tenant_id,
            idempotency_key,
            wamid,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A queue body is a hand-back if it says so; anything else is a send request.
    pub fn detect(body: &str) -> Option<Handback> {
        if !body.contains(Self::KIND) {
            return None;
        }
        serde_json::from_str::<Handback>(body)
            .ok()
            .filter(|h| h.kind == Self::KIND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn valid() -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "tenant_id": "acme",
            "idempotency_key": "usage-42-2026-11-25",
            "recipient": {"phone": "+919876543210", "csm_id": "csm-7"},
            "event": {"type": "usage_threshold", "customer": {"name": "Globex", "health": "good", "premium": false},
                      "params": ["Globex", "85", "Pro", "good"]},
            "text": "Globex is at 85% of its Pro plan.",
            "deliver_by": "2026-11-26T10:00:00Z"
        })
    }

    #[test]
    fn a_valid_request_parses() {
        let r = SendRequest::parse(&valid().to_string()).expect("valid");
        assert_eq!(r.to.as_str(), "+919876543210");
        assert_eq!(r.event, AlertEvent::UsageThreshold);
        assert_eq!(r.health, Health::Good);
        assert_eq!(r.deliver_by, Some(1_795_687_200));
    }

    #[test]
    fn each_invalid_field_has_its_own_reason() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("version", serde_json::json!(2), "unsupported_version"),
            ("tenant_id", serde_json::json!("a b"), "invalid_tenant_id"),
            (
                "idempotency_key",
                serde_json::json!(""),
                "invalid_idempotency_key",
            ),
            (
                "recipient",
                serde_json::json!({"phone": "9876543210"}),
                "invalid_phone",
            ),
            (
                "event",
                serde_json::json!({"type": "birthday", "customer": {"name": "x", "health": "good"}}),
                "unknown_event",
            ),
            (
                "event",
                serde_json::json!({"type": "escalation", "customer": {"name": "x", "health": "meh"}}),
                "unknown_health",
            ),
            (
                "deliver_by",
                serde_json::json!("tomorrow"),
                "invalid_deliver_by",
            ),
            ("text", serde_json::json!("  "), "invalid_text"),
            (
                "delivery_by",
                serde_json::json!("2026-11-26T10:00:00Z"),
                "schema",
            ),
        ];
        for (field, value, code) in cases {
            let mut v = valid();
            v[field] = value;
            let err = SendRequest::parse(&v.to_string()).expect_err(field);
            assert_eq!(err.code(), code, "{field}: {err}");
        }
        assert_eq!(
            SendRequest::parse("{not json").expect_err("json").code(),
            "not_json"
        );
    }

    /// The examples in `examples/` are valid for both the JSON Schema and the parser,
    /// and a request the parser refuses is refused by the schema too.
    #[test]
    fn the_examples_match_the_schema_and_the_parser() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{root}/schemas/send-request.v1.schema.json"))
                .expect("schema"),
        )
        .expect("schema json");
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let mut seen = 0;
        for entry in std::fs::read_dir(format!("{root}/examples")).expect("examples") {
            let path = entry.expect("entry").path();
            let body = std::fs::read_to_string(&path).expect("read");
            let value: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert!(validator.is_valid(&value), "{path:?} fails the schema");
            SendRequest::parse(&body).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            seen += 1;
        }
        assert!(seen >= 2);
        let mut bad = valid();
        bad["delivery_by"] = serde_json::json!("2026-11-26T10:00:00Z");
        assert!(!validator.is_valid(&bad));
        let mut bad = valid();
        bad["event"]["type"] = serde_json::json!("birthday");
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn handbacks_are_told_apart_from_requests() {
        let h = Handback::new(
            TenantId::parse("acme").expect("id"),
            IdempotencyKey::parse("k").expect("key"),
            "wamid.1".into(),
        );
        assert_eq!(Handback::detect(&h.to_json()), Some(h));
        assert_eq!(Handback::detect(&valid().to_string()), None);
    }
}
