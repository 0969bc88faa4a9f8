//! The JSON types of the control endpoints, shared by the server and
//! [`crate::SandboxClient`] so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /_sandbox/tenants`: one business phone number and what Meta knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSpec {
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub webhook_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
}

/// A tenant as the control API shows it: never its token or app secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantView {
    pub phone_number_id: String,
    pub waba_id: String,
    pub webhook_url: String,
    pub display_phone_number: String,
    pub verified_name: String,
}

/// `POST /_sandbox/tokens`: replace a tenant's access token; the old one stops working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRotation {
    pub phone_number_id: String,
    pub access_token: String,
}

/// `POST /_sandbox/inbound`: a CSM writes to the business number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundRequest {
    pub phone_number_id: String,
    /// The sender's number (digits, `+` allowed).
    pub from: String,
    pub text: String,
    /// Unix seconds; defaults to now. A past value simulates an old window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// `contacts[].profile.name`; defaults to "Sandbox User".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

/// The answer to `POST /_sandbox/inbound`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundResult {
    pub message_id: String,
    pub timestamp: i64,
    pub webhook: Vec<DeliveryOutcome>,
}

/// How one webhook POST ended (after retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    pub url: String,
    pub delivered: bool,
    pub attempts: u32,
    /// The last HTTP status seen, if any answer came.
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A template message's content as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentTemplate {
    pub name: String,
    pub language: String,
    pub parameters: Vec<String>,
}

/// One accepted `POST /messages`, in acceptance order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub wamid: String,
    pub phone_number_id: String,
    /// `to` as the caller sent it.
    pub to: String,
    pub wa_id: String,
    /// `text` or `template`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SentTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// Unix milliseconds.
    pub accepted_at: i64,
    /// True when the `response_lost_rate` fault swallowed the 200.
    pub response_lost: bool,
    /// The code of the async `failed` status sent instead of sent/delivered/read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_with: Option<i64>,
}

/// A message template as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    /// PENDING, APPROVED, REJECTED, PAUSED, DISABLED, IN_APPEAL, ARCHIVED,
    /// PENDING_DELETION, DELETED or LIMIT_EXCEEDED (see [`crate::template_events`]).
    pub status: String,
    pub components: Value,
    /// `NONE` unless rejected/paused.
    pub reason: String,
    /// Number of `{{n}}` placeholders in the BODY.
    pub body_placeholders: usize,
    /// When it was submitted (unix ms on the sandbox's clock).
    #[serde(default)]
    pub submitted_at: i64,
    /// When its status last changed by review or decision (unix ms), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    /// The last `message_template_status_update` event (may differ from `status`: FLAGGED leaves it APPROVED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
    /// Pauses so far (Meta: 3 h, then 6 h, then disabled).
    #[serde(default)]
    pub pause_count: u32,
    /// When the current pause ends (unix ms on the sandbox's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<i64>,
}

/// `POST /_sandbox/templates/decide`: Meta's `event` for one template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDecision {
    pub waba_id: String,
    pub name: String,
    pub language: String,
    /// The event: APPROVED, REJECTED, PENDING, PAUSED, DISABLED, FLAGGED,
    /// REINSTATED, IN_APPEAL, ARCHIVED, UNARCHIVED, PENDING_DELETION, DELETED,
    /// LOCKED, UNLOCKED or LIMIT_EXCEEDED.
    pub status: String,
    /// Meta's reason (NONE, INVALID_FORMAT, PROMOTIONAL, ...); default NONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Send the `message_template_status_update` webhook (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

/// Optional parts of a decision, sent beside [`TemplateDecision`]'s fields in
/// the same JSON body; the sandbox fills Meta-shaped defaults where Meta
/// always sends them (pauses, INVALID_FORMAT rejections, disables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionExtras {
    /// `{title, description}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_info: Option<Value>,
    /// `{reason, recommendation}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_info: Option<Value>,
    /// Unix seconds for `disable_info.disable_date` (DISABLED, FLAGGED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_date: Option<i64>,
}

/// The answer to a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionResult {
    pub template: TemplateRecord,
    pub webhook: Vec<DeliveryOutcome>,
    /// The webhook's `value` as sent (or as it would have been, with `webhook: false`).
    #[serde(default)]
    pub value: Value,
}

/// `POST /_sandbox/reset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// Also forget tenants (default false: tenants are kept).
    #[serde(default)]
    pub clear_tenants: bool,
    /// Also return knobs to the start-up config (default false).
    #[serde(default)]
    pub reset_knobs: bool,
}

/// Per phone number counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhoneStats {
    pub accepted: u64,
    /// Most messages accepted within any rolling 1-second window.
    pub max_per_rolling_second: u64,
}

/// Webhook counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookStats {
    pub delivered: u64,
    pub failed: u64,
    /// Extra copies sent by `webhook_duplicate_rate`.
    pub duplicated: u64,
    /// Attempts beyond the first.
    pub retries: u64,
}

/// `GET /_sandbox/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub accepted: u64,
    /// Graph API error responses by Meta code (as a string key).
    pub rejections_by_code: BTreeMap<String, u64>,
    pub per_phone_number: BTreeMap<String, PhoneStats>,
    pub webhooks: WebhookStats,
}

/// One webhook POST in `GET /_sandbox/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookLogEntry {
    pub seq: u64,
    pub url: String,
    /// `messages` or `message_template_status_update`.
    pub field: String,
    pub body: Value,
    pub delivered: bool,
    pub attempts: u32,
    pub status_code: Option<u16>,
    pub duplicate: bool,
}

/// `{"data": [...]}`, the control API's list envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataList<T> {
    pub data: Vec<T>,
}
