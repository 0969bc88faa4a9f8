//! The send-request contract (version 1).
//!
//! Upstream Fincelo systems put one JSON send request per alert on the send
//! queue; `schemas/send-request.v1.schema.json` is its JSON Schema and
//! `docs/integrating.md` shows examples. Parsing is strict (unknown fields are refused, so a
//! typo such as `delivery_by` is caught instead of silently ignored) and every
//! refusal has a machine-readable reason: an invalid request is permanent and
//! goes to the DLQ at once.
//!
//! The service's own messages on the same queue (hand-backs, release
//! nudges, the sweep) are in [`super::message`].

use serde::Deserialize;

use crate::identity::Alias;
use crate::ids::{CsmId, IdempotencyKey, TenantId};
use crate::phone::E164;
use crate::templates::catalog::{AlertEvent, Catalog, Health, ParamError};

/// The contract version this code reads.
pub const VERSION: u32 = 1;

/// A parsed, valid send request.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    /// Who it goes to: at least one of the three. A `csm_id` on the
    /// tenant's roster wins (the roster's number is used); else the number;
    /// else the BSUID ([`crate::addressing::addressee`]).
    pub phone: Option<E164>,
    pub csm_id: Option<CsmId>,
    pub user_id: Option<String>,
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
///
/// The messages name the field, never its value: they reach the logs and
/// the DLQ's `detail`, and a value may be a CSM's number or a customer's
/// name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("body is not JSON ({0})")]
    NotJson(String),
    #[error("unsupported version; this sender reads version 1")]
    UnsupportedVersion,
    #[error("request does not match the schema: {0}")]
    Schema(String),
    #[error("invalid tenant_id: {0}")]
    TenantId(String),
    #[error("invalid idempotency_key: {0}")]
    IdempotencyKey(String),
    #[error("recipient.phone is not a valid E.164 number: {0}")]
    Phone(String),
    #[error("recipient names nobody: give phone, csm_id or user_id")]
    NoRecipient,
    #[error("recipient.csm_id is invalid: {0}")]
    CsmId(String),
    #[error("recipient.user_id is not a business-scoped user id (a country code, a dot, letters and digits)")]
    UserId,
    #[error("unknown event.type; expected usage_threshold, overdue_invoice or escalation")]
    UnknownEvent,
    #[error("unknown event.customer.health; expected platinum, good, average, poor or critical")]
    UnknownHealth,
    #[error("deliver_by is not an RFC 3339 time")]
    DeliverBy,
    #[error("text must not be empty and at most 4096 characters")]
    Text,
    #[error("customer name must not be empty")]
    CustomerName,
    /// The parameters do not fit the template the request would be sent
    /// as outside the window (count, empty, too long, Meta's whitespace rules).
    #[error("event.params: {0}")]
    TemplateParams(#[source] ParamError),
}

impl InvalidRequest {
    pub fn code(&self) -> &'static str {
        match self {
            InvalidRequest::NotJson(_) => "not_json",
            InvalidRequest::UnsupportedVersion => "unsupported_version",
            InvalidRequest::Schema(_) => "schema",
            InvalidRequest::TenantId(_) => "invalid_tenant_id",
            InvalidRequest::IdempotencyKey(_) => "invalid_idempotency_key",
            InvalidRequest::Phone(_) => "invalid_phone",
            InvalidRequest::NoRecipient => "no_recipient",
            InvalidRequest::CsmId(_) => "invalid_csm_id",
            InvalidRequest::UserId => "invalid_user_id",
            InvalidRequest::UnknownEvent => "unknown_event",
            InvalidRequest::UnknownHealth => "unknown_health",
            InvalidRequest::DeliverBy => "invalid_deliver_by",
            InvalidRequest::Text => "invalid_text",
            InvalidRequest::CustomerName => "invalid_customer",
            InvalidRequest::TemplateParams(_) => "template_params",
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
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    csm_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
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
            serde_json::from_str(body).map_err(|e| InvalidRequest::NotJson(where_(&e)))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(_) => return Err(InvalidRequest::UnsupportedVersion),
            None => return Err(InvalidRequest::Schema("missing field `version`".into())),
        }
        let raw: Raw = serde_json::from_value(value).map_err(|e| schema_error(&e))?;
        let _ = raw.version;
        let event = match raw.event.kind.as_str() {
            "usage_threshold" => AlertEvent::UsageThreshold,
            "overdue_invoice" => AlertEvent::OverdueInvoice,
            "escalation" => AlertEvent::Escalation,
            _ => return Err(InvalidRequest::UnknownEvent),
        };
        let health = match raw.event.customer.health.as_str() {
            "platinum" => Health::Platinum,
            "good" => Health::Good,
            "average" => Health::Average,
            "poor" => Health::Poor,
            "critical" => Health::Critical,
            _ => return Err(InvalidRequest::UnknownHealth),
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
                let t = humantime::parse_rfc3339_weak(&s).map_err(|_| InvalidRequest::DeliverBy)?;
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|_| InvalidRequest::DeliverBy)?
                    .as_secs();
                Some(i64::try_from(secs).map_err(|_| InvalidRequest::DeliverBy)?)
            }
        };
        let r = &raw.recipient;
        if r.phone.is_none() && r.csm_id.is_none() && r.user_id.is_none() {
            return Err(InvalidRequest::NoRecipient);
        }
        Catalog::builtin()
            .choose(event, health, raw.event.customer.premium)
            .check_values(&raw.event.params)
            .map_err(InvalidRequest::TemplateParams)?;
        Ok(SendRequest {
            tenant_id: TenantId::parse(raw.tenant_id)
                .map_err(|e| InvalidRequest::TenantId(e.reason.to_string()))?,
            idempotency_key: IdempotencyKey::parse(raw.idempotency_key)
                .map_err(|e| InvalidRequest::IdempotencyKey(e.reason.to_string()))?,
            phone: raw
                .recipient
                .phone
                .as_deref()
                .map(E164::parse)
                .transpose()
                .map_err(|e| InvalidRequest::Phone(e.to_string()))?,
            csm_id: raw
                .recipient
                .csm_id
                .map(CsmId::parse)
                .transpose()
                .map_err(|e| InvalidRequest::CsmId(e.reason.to_string()))?,
            user_id: match raw.recipient.user_id {
                Some(u) if Alias::user(&u).is_some() => Some(u),
                Some(_) => return Err(InvalidRequest::UserId),
                None => None,
            },
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

/// The tenant and key of a request that is not valid as a whole, if both
/// can be read: its park is then recorded in its ledger too, so its
/// timeline shows why.
pub fn readable_ids(body: &str) -> Option<(TenantId, IdempotencyKey)> {
    #[derive(Deserialize)]
    struct Ids {
        tenant_id: String,
        idempotency_key: String,
    }
    let ids: Ids = serde_json::from_str(body).ok()?;
    Some((
        TenantId::parse(ids.tenant_id).ok()?,
        IdempotencyKey::parse(ids.idempotency_key).ok()?,
    ))
}

/// The tenant a body names, valid or not as a whole (its fair-queue group:
/// [`super::message::fair_group`]).
pub fn readable_tenant(body: &str) -> Option<TenantId> {
    #[derive(Deserialize)]
    struct Tenant {
        tenant_id: String,
    }
    let t: Tenant = serde_json::from_str(body).ok()?;
    TenantId::parse(t.tenant_id).ok()
}

/// Where in the body serde stopped, without what it read there.
fn where_(e: &serde_json::Error) -> String {
    format!("line {} column {}", e.line(), e.column())
}

/// A schema error that names the field, never the value: serde's "missing
/// field" and "unknown field" name fields only; its other messages can
/// quote the value ("invalid type: string \"Globex\"").
fn schema_error(e: &serde_json::Error) -> InvalidRequest {
    let msg = e.to_string();
    InvalidRequest::Schema(
        if msg.starts_with("missing field") || msg.starts_with("unknown field") {
            msg
        } else {
            "a field has the wrong type".into()
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
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
        assert_eq!(r.phone.as_ref().map(E164::as_str), Some("+919876543210"));
        assert_eq!(r.csm_id.as_ref().map(CsmId::as_str), Some("csm-7"));
        assert_eq!(r.event, AlertEvent::UsageThreshold);
        assert_eq!(r.health, Health::Good);
        assert_eq!(r.deliver_by, Some(1_795_687_200));
    }

    /// A recipient is named by roster id, number or BSUID, at least one.
    #[test]
    fn a_recipient_is_named_by_csm_id_phone_or_user_id() {
        for (recipient, ok) in [
            (serde_json::json!({"csm_id": "csm-42"}), true),
            (
                serde_json::json!({"user_id": "US.13491208655302741918"}),
                true,
            ),
            (serde_json::json!({"phone": "+919876543210"}), true),
            (serde_json::json!({}), false),
            (serde_json::json!({"user_id": "not a bsuid"}), false),
            (serde_json::json!({"csm_id": "a b"}), false),
        ] {
            let mut v = valid();
            v["recipient"] = recipient.clone();
            let parsed = SendRequest::parse(&v.to_string());
            assert_eq!(parsed.is_ok(), ok, "{recipient}: {parsed:?}");
        }
        let mut v = valid();
        v["recipient"] = serde_json::json!({});
        assert_eq!(
            SendRequest::parse(&v.to_string()).expect_err("none").code(),
            "no_recipient"
        );
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
}
