//! What travels on the send queue, read once per record.
//!
//! Upstream systems put send requests (the v1 contract, [`super::request`]).
//! The service itself puts three control messages on the same queue, told
//! apart by their `kind` (a send request has no `kind`: its contract refuses
//! unknown fields):
//!
//! | `kind` | put by | asks the sender to |
//! |---|---|---|
//! | `template_handback` | webhook: Meta refused a free-form message with 131047 after accepting it | send the alert's template instead |
//! | `send_refused` | webhook: Meta refused a message after accepting it with a code the sender acts on ([`super::classify::acted_on_after_acceptance`]: 131049, 131042, 131050, ...) | conclude the alert as if the send had answered with that code |
//! | `release` | webhook: a template was approved, rejected or disabled, or a CSM with waiting alerts wrote; template reconcile; the sender itself, when a pass ran out of budget | run the tenant's release pass over its waiting alerts ([`super::release`]) |
//! | `sweep` | an EventBridge schedule, every 5 minutes | start a release pass for every tenant with waiting alerts (deadlines; a release that was missed) |
//! | `mark_read` | webhook: a CSM responded to an alert ([`crate::webhook`]; the webhook holds no access token) | mark the CSM's message read at Meta, once, best effort |
//!
//! The control messages are the service's own: one that cannot be read is
//! parked like an invalid request, so it is seen rather than retried.

use serde::{Deserialize, Serialize};

use super::request::{InvalidRequest, SendRequest};
use crate::ids::{IdempotencyKey, TenantId};

/// Version of every control message below.
const CONTROL_VERSION: u32 = 1;

/// A send-queue body, read.
#[derive(Debug)]
pub enum QueueMessage {
    Request(Result<SendRequest, InvalidRequest>),
    Control(Control),
}

impl QueueMessage {
    /// Reads a body: a JSON object with a top-level `kind` is a control
    /// message, anything else a send request.
    pub fn read(body: &str) -> QueueMessage {
        #[derive(Deserialize)]
        struct Probe {
            kind: Option<serde::de::IgnoredAny>,
        }
        match serde_json::from_str::<Probe>(body) {
            Ok(Probe { kind: Some(_) }) => match serde_json::from_str::<Control>(body) {
                Ok(control) => QueueMessage::Control(control),
                Err(_) => QueueMessage::Request(Err(InvalidRequest::Schema(
                    "a control message (with a `kind`) that this sender cannot read".into(),
                ))),
            },
            _ => QueueMessage::Request(SendRequest::parse(body)),
        }
    }
}

/// The service's own messages on the send queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    TemplateHandback(Handback),
    SendRefused(Refused),
    Release(Release),
    Sweep(Sweep),
    MarkRead(MarkRead),
}

impl Control {
    /// Send the alert's template instead of the free-form message `wamid`.
    pub fn handback(
        tenant_id: TenantId,
        idempotency_key: IdempotencyKey,
        wamid: String,
    ) -> Control {
        Control::TemplateHandback(Handback {
            version: CONTROL_VERSION,
            tenant_id,
            idempotency_key,
            wamid,
        })
    }

    /// Meta refused the message `wamid` with `code` after accepting it.
    pub fn refused(
        tenant_id: TenantId,
        idempotency_key: IdempotencyKey,
        wamid: String,
        error: RefusalError,
    ) -> Control {
        Control::SendRefused(Refused {
            version: CONTROL_VERSION,
            tenant_id,
            idempotency_key,
            wamid,
            error,
        })
    }

    /// Run a release pass over the tenant's waiting alerts.
    pub fn release(tenant_id: TenantId, why: ReleaseWhy) -> Control {
        Control::Release(Release {
            version: CONTROL_VERSION,
            tenant_id,
            why,
        })
    }

    /// Mark the CSM's message `message_id` read.
    pub fn mark_read(tenant_id: TenantId, message_id: String) -> Control {
        Control::MarkRead(MarkRead {
            version: CONTROL_VERSION,
            tenant_id,
            message_id,
        })
    }

    /// The scheduled sweep.
    pub fn sweep() -> Control {
        Control::Sweep(Sweep {
            version: CONTROL_VERSION,
        })
    }

    pub fn to_json(&self) -> String {
        // Plain structs of strings and numbers: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// "Mark this CSM message read": the CSM responded to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    pub version: u32,
    pub tenant_id: TenantId,
    pub message_id: String,
}

/// "Send this alert's template instead": Meta refused the free-form message
/// `wamid` with 131047 after accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handback {
    pub version: u32,
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub wamid: String,
}

/// "Meta refused this accepted message": a `failed` status whose code
/// changes what becomes of the alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub version: u32,
    pub tenant_id: TenantId,
    pub idempotency_key: IdempotencyKey,
    pub wamid: String,
    pub error: RefusalError,
}

/// Meta's error as the `failed` status carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalError {
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `error_data.details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// "Look at this tenant's waiting alerts now", and why (for the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: u32,
    pub tenant_id: TenantId,
    pub why: ReleaseWhy,
}

/// What prompted a release pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseWhy {
    /// A template's status changed at Meta (approved, rejected, disabled).
    TemplateStatus,
    /// A CSM with waiting alerts wrote: their window is open.
    WindowOpened,
    /// The scheduled sweep.
    Sweep,
    /// The previous pass ran out of its budget.
    Continuation,
    /// A producer newer than this sender.
    #[serde(other)]
    Other,
}

impl ReleaseWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseWhy::TemplateStatus => "template_status",
            ReleaseWhy::WindowOpened => "window_opened",
            ReleaseWhy::Sweep => "sweep",
            ReleaseWhy::Continuation => "continuation",
            ReleaseWhy::Other => "other",
        }
    }
}

/// The scheduled sweep (EventBridge puts `{"kind":"sweep","version":1}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, IdempotencyKey) {
        (
            TenantId::parse("acme").expect("id"),
            IdempotencyKey::parse("k").expect("key"),
        )
    }

    #[test]
    fn each_control_message_reads_back_as_itself() {
        let (t, k) = ids();
        for control in [
            Control::handback(t.clone(), k.clone(), "wamid.1".into()),
            Control::refused(
                t.clone(),
                k,
                "wamid.2".into(),
                RefusalError {
                    code: 131049,
                    title: Some("healthy ecosystem".into()),
                    details: None,
                },
            ),
            Control::release(t, ReleaseWhy::TemplateStatus),
            Control::sweep(),
        ] {
            match QueueMessage::read(&control.to_json()) {
                QueueMessage::Control(c) => assert_eq!(c, control),
                other => panic!("{} read as {other:?}", control.to_json()),
            }
        }
    }

    /// The hand-back's wire format is the one earlier senders wrote, so a
    /// hand-back queued before a deploy is still read after it.
    #[test]
    fn a_handback_keeps_its_wire_format() {
        let body = r#"{"kind":"template_handback","version":1,"tenant_id":"acme","idempotency_key":"k","wamid":"wamid.1"}"#;
        let (t, k) = ids();
        match QueueMessage::read(body) {
            QueueMessage::Control(c) => assert_eq!(c, Control::handback(t, k, "wamid.1".into())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_send_request_mentioning_a_kind_in_its_text_is_still_a_request() {
        let body = serde_json::json!({
            "version": 1, "tenant_id": "acme", "idempotency_key": "k",
            "recipient": {"phone": "+919876543210"},
            "event": {"type": "escalation", "customer": {"name": "template_handback", "health": "good"},
                      "params": ["a", "b", "c"]},
            "text": "\"kind\": \"template_handback\""
        });
        assert!(matches!(
            QueueMessage::read(&body.to_string()),
            QueueMessage::Request(_)
        ));
    }

    #[test]
    fn an_unreadable_control_message_is_an_invalid_request() {
        for body in [
            r#"{"kind":"sweep"}"#,
            r#"{"kind":"launch_rockets","version":1}"#,
            r#"{"kind":"release","version":1,"tenant_id":"a b","why":"sweep"}"#,
        ] {
            match QueueMessage::read(body) {
                QueueMessage::Request(Err(e)) => assert_eq!(e.code(), "schema", "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_release_reason_still_releases() {
        let body = r#"{"kind":"release","version":1,"tenant_id":"acme","why":"from_the_future"}"#;
        match QueueMessage::read(body) {
            QueueMessage::Control(Control::Release(r)) => assert_eq!(r.why, ReleaseWhy::Other),
            other => panic!("{other:?}"),
        }
    }
}
