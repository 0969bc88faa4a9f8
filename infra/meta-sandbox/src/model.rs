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
    /// The template's category (UTILITY, MARKETING, AUTHENTICATION).
    #[serde(default)]
    pub category: String,
    /// Quick-reply payloads sent, by button index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<SentQuickReply>,
}

/// One quick-reply button parameter of a template send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentQuickReply {
    pub index: usize,
    pub payload: String,
    /// The button's text in the template.
    pub text: String,
}

/// An interactive reply-button message's content as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentButtons {
    pub body: String,
    /// `(id, title)` of each reply button, in order.
    pub buttons: Vec<SentButton>,
}

/// One reply button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentButton {
    pub id: String,
    pub title: String,
}

/// The `pricing` object Meta puts in a message's status webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub billable: bool,
    pub pricing_model: String,
    /// marketing, utility, authentication, service, ...
    pub category: String,
    /// regular, free_customer_service or free_entry_point.
    #[serde(rename = "type")]
    pub pricing_type: String,
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
    /// `recipient` as the caller sent it, when the send used a BSUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The user's BSUID, when the sandbox knows the user (see `POST /_sandbox/users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `type: interactive` reply buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<SentButtons>,
    /// `context.message_id` of the send, when it replies to a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The pricing its status webhooks carry (none for a failed send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// The Graph version that served the send (decides the `conversation` object).
    #[serde(default)]
    pub graph_version: String,
    /// The edge failure the caller saw instead of the 200 (`edge_failure_rate`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_failure: Option<u16>,
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
    /// Accepted sends answered by an edge failure (`edge_failure_rate`).
    #[serde(default)]
    pub edge_failures: u64,
    /// Delivered messages by phone number id, pricing category and pricing
    /// type (`regular` = billed): what a cost ledger fed by the status
    /// webhooks must count, each message once.
    #[serde(default)]
    pub pricing: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
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

/// `POST /_sandbox/users`: one WhatsApp user as Meta knows them in 2026.
///
/// Registering a user is how a test gets Meta's identity behaviours:
/// a `wa_id` that is not the digits of the number sent to (Mexico `521…`,
/// Argentina `549…`, Brazil with or without the ninth digit), a
/// business-scoped user ID and parent BSUID, a username (which hides the
/// phone number in webhooks unless Meta's phone-number rules allow it), and
/// the per-user conditions behind errors 131049, 131050, 130472 and 137000.
/// Unregistered numbers behave as before: `wa_id` = the digits sent to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSpec {
    /// The number a business sends to (digits, `+` allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The `wa_id` Meta reports for it, when it differs from the digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// BSUID: `CC.` and up to 128 alphanumerics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Parent BSUID: `CC.ENT.` and up to 128 alphanumerics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    /// `@handle`; a user with a username has no `from`/`wa_id` in webhooks
    /// unless Meta's phone-number rules show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `contacts[].profile.name` (default "Sandbox User").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// The user's identity key hash; a send whose `recipient_identity_key_hash` differs is 137000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_key_hash: Option<String>,
    /// Meta's per-user marketing limit is reached: marketing templates fail with 131049.
    pub marketing_limited: bool,
    /// The user stopped marketing messages from the business: marketing templates fail with 131050.
    pub stopped_marketing: bool,
    /// The user is in Meta's marketing message experiment: marketing templates
    /// outside a customer service window fail with 130472.
    pub in_experiment: bool,
}

/// A registered user: the spec, normalised (digits), with the sandbox's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    /// The sandbox's handle for the user (stable across id changes).
    pub key: String,
    #[serde(flatten)]
    pub spec: UserSpec,
}

/// `POST /_sandbox/users/change_id`: the user changes phone number, so Meta
/// gives them a new BSUID (and parent BSUID).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserIdChange {
    /// The business number whose webhook reports it.
    pub phone_number_id: String,
    /// Any of the user's ids: number, wa_id, BSUID or parent BSUID.
    pub user: String,
    /// The new BSUID; default: the country code and fresh digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_user_id: Option<String>,
    /// The new parent BSUID, when the user has one; default: fresh digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_parent_user_id: Option<String>,
    /// Send the `user_id_update` webhook (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id_update: Option<bool>,
    /// Send the `user_changed_user_id` system message (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_message: Option<bool>,
}

/// The answer to an id change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdChangeResult {
    pub user: UserView,
    pub previous_user_id: Option<String>,
    pub webhook: Vec<DeliveryOutcome>,
}

/// `POST /_sandbox/accounts`: WhatsApp Business Account conditions. Fields
/// left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountSpec {
    pub waba_id: String,
    /// A payment problem: every send of the WABA fails with 131042 until cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_issue: Option<bool>,
    /// Marketing templates must go through the Marketing Messages API: on `/messages` they are 131063.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketing_messages_api_only: Option<bool>,
    /// Meta's contact book (on by default): a phone number once used stays in webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_book: Option<bool>,
}

/// A WABA's conditions as they stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub waba_id: String,
    pub payment_issue: bool,
    pub marketing_messages_api_only: bool,
    pub contact_book: bool,
}

/// One read receipt a business sent (`status: read`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadRecord {
    pub phone_number_id: String,
    pub message_id: String,
    pub typing_indicator: bool,
    /// Unix ms on the sandbox's clock.
    pub at: i64,
}

/// `context` of an inbound message: the business message it answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundContext {
    /// The wamid answered.
    pub id: String,
    /// The business's number; default: the tenant's display number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// `POST /_sandbox/inbound` in full: [`InboundRequest`]'s fields, plus the
/// message types a CSM answers with and the identity of a registered user.
///
/// - `type: "text"` (default) with `text`, optionally quoting (`context`);
/// - `type: "button"` with `button: {payload, text}`: a template quick-reply tap;
/// - `type: "interactive"` with `interactive: {type: "button_reply", button_reply: {id, title}}`
///   or `{type: "list_reply", list_reply: {id, title, description?}}`.
///
/// `from` is a phone number or the BSUID of a registered user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub phone_number_id: String,
    pub from: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<InboundContext>,
    /// Unix seconds; defaults to now on the sandbox's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

impl From<&InboundRequest> for InboundMessage {
    fn from(r: &InboundRequest) -> Self {
        InboundMessage {
            phone_number_id: r.phone_number_id.clone(),
            from: r.from.clone(),
            text: Some(r.text.clone()),
            timestamp: r.timestamp,
            profile_name: r.profile_name.clone(),
            ..InboundMessage::default()
        }
    }
}

impl InboundMessage {
    /// Who answers `sent`: the number it reached, else the BSUID it went to.
    fn answering(sent: &MessageRecord) -> String {
        if !sent.wa_id.is_empty() {
            return sent.wa_id.clone();
        }
        sent.user_id
            .clone()
            .or_else(|| sent.recipient.clone())
            .unwrap_or_default()
    }

    /// The recipient of `sent` taps its button labelled `label` (ignoring
    /// case), quoting it, in Meta's shape for the button's kind: a template
    /// quick reply is `type: button` with `button: {payload, text}`; an
    /// interactive reply button is `interactive.button_reply: {id, title}`
    /// (Meta's webhook examples `message_button` and
    /// `message_interactive_button_reply`). `None` when `sent` has no such
    /// button.
    pub fn tap(sent: &MessageRecord, label: &str) -> Option<InboundMessage> {
        let (kind, button, interactive) = if let Some(t) = &sent.template {
            let q = t
                .quick_replies
                .iter()
                .find(|q| q.text.eq_ignore_ascii_case(label))?;
            (
                "button",
                Some(serde_json::json!({"payload": q.payload, "text": q.text})),
                None,
            )
        } else {
            let b = sent
                .interactive
                .as_ref()?
                .buttons
                .iter()
                .find(|b| b.title.eq_ignore_ascii_case(label))?;
            (
                "interactive",
                None,
                Some(serde_json::json!({
                    "type": "button_reply",
                    "button_reply": {"id": b.id, "title": b.title},
                })),
            )
        };
        Some(InboundMessage {
            phone_number_id: sent.phone_number_id.clone(),
            from: Self::answering(sent),
            kind: Some(kind.into()),
            button,
            interactive,
            context: Some(InboundContext {
                id: sent.wamid.clone(),
                from: None,
            }),
            ..InboundMessage::default()
        })
    }

    /// The recipient of `sent` replies `text`, quoting it (`context.id`).
    pub fn quoted_reply(sent: &MessageRecord, text: &str) -> InboundMessage {
        InboundMessage {
            phone_number_id: sent.phone_number_id.clone(),
            from: Self::answering(sent),
            kind: Some("text".into()),
            text: Some(text.into()),
            context: Some(InboundContext {
                id: sent.wamid.clone(),
                from: None,
            }),
            ..InboundMessage::default()
        }
    }

    /// The labels `sent` offers to tap.
    pub fn labels(sent: &MessageRecord) -> Vec<String> {
        match (&sent.template, &sent.interactive) {
            (Some(t), _) => t.quick_replies.iter().map(|q| q.text.clone()).collect(),
            (None, Some(i)) => i.buttons.iter().map(|b| b.title.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    fn sent(template: Option<SentTemplate>, interactive: Option<SentButtons>) -> MessageRecord {
        MessageRecord {
            wamid: "wamid.ALERT".into(),
            phone_number_id: "123".into(),
            to: "+919876543210".into(),
            wa_id: "919876543210".into(),
            kind: if template.is_some() {
                "template"
            } else {
                "interactive"
            }
            .into(),
            text: None,
            template,
            biz_opaque_callback_data: None,
            accepted_at: 0,
            response_lost: false,
            failed_with: None,
            recipient: None,
            user_id: None,
            interactive,
            reply_to: None,
            pricing: None,
            graph_version: "v26.0".into(),
            edge_failure: None,
        }
    }

    /// A tap is Meta's shape for the button's kind, quotes the message and
    /// comes from the number it reached; a label the message lacks is none.
    #[test]
    fn a_tap_takes_the_shape_of_the_button_tapped() {
        let t = sent(
            Some(SentTemplate {
                name: "n".into(),
                language: "en".into(),
                parameters: vec![],
                category: "UTILITY".into(),
                quick_replies: vec![SentQuickReply {
                    index: 0,
                    payload: "fw1.ack.x".into(),
                    text: "Acknowledge".into(),
                }],
            }),
            None,
        );
        let tap = InboundMessage::tap(&t, "acknowledge").expect("button");
        assert_eq!(tap.kind.as_deref(), Some("button"));
        assert_eq!(
            tap.button,
            Some(serde_json::json!({"payload": "fw1.ack.x", "text": "Acknowledge"}))
        );
        assert_eq!(
            tap.context.as_ref().map(|c| c.id.as_str()),
            Some("wamid.ALERT")
        );
        assert_eq!(tap.from, "919876543210");
        assert!(InboundMessage::tap(&t, "Escalate").is_none());

        let i = sent(
            None,
            Some(SentButtons {
                body: "b".into(),
                buttons: vec![SentButton {
                    id: "fw1.esc.x".into(),
                    title: "Escalate".into(),
                }],
            }),
        );
        let tap = InboundMessage::tap(&i, "Escalate").expect("button");
        assert_eq!(tap.kind.as_deref(), Some("interactive"));
        assert_eq!(
            tap.interactive
                .as_ref()
                .map(|v| v["button_reply"]["id"].clone()),
            Some(serde_json::json!("fw1.esc.x"))
        );
        let reply = InboundMessage::quoted_reply(&i, "on it");
        assert_eq!(reply.text.as_deref(), Some("on it"));
        assert_eq!(reply.context.map(|c| c.id), Some("wamid.ALERT".into()));
    }
}
