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
//!
//! Every message also names the tenant it works for ([`fair_group`]): the
//! send queue is an Amazon SQS fair queue, and its `MessageGroupId` is that
//! tenant, so one tenant's flood does not hold back the others' alerts.

use serde::{Deserialize, Serialize};

use super::request::{readable_tenant, InvalidRequest, SendRequest};
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

    /// The tenant the message works for: every send request and every
    /// control message but the sweep names one.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            QueueMessage::Request(Ok(r)) => Some(&r.tenant_id),
            QueueMessage::Request(Err(_)) => None,
            QueueMessage::Control(c) => match c {
                Control::TemplateHandback(h) => Some(&h.tenant_id),
                Control::SendRefused(r) => Some(&r.tenant_id),
                Control::Release(r) => Some(&r.tenant_id),
                Control::MarkRead(m) => Some(&m.tenant_id),
                Control::Sweep(_) => None,
            },
        }
    }
}

/// The fair-queue group of what names no tenant: the sweep (it works for
/// every tenant) and a body too broken to name one. A fixed group rather
/// than none: SQS treats each message without a group as a tenant of its
/// own, so a run of broken bodies would never be seen as one noisy sender,
/// whereas in one group it is, and is served after the tenants' alerts.
/// A `.` is in no tenant id ([`TenantId`]: letters, digits, `-`, `_`), so
/// no tenant can share it.
pub const SERVICE_GROUP: &str = "fincelo.service";

/// The `MessageGroupId` a send-queue body is put on the queue with: the
/// tenant it names, else [`SERVICE_GROUP`]. Every writer of the send queue
/// takes it from here ([`crate::queues::Queues::enqueue_send_delayed`], the
/// operator CLI, the local runner), and upstream is asked to set the same
/// (docs/integrating.md).
///
/// Why: on a standard queue, a `MessageGroupId` makes it an Amazon SQS fair
/// queue. SQS takes the group as the tenant; once one group holds a
/// disproportionate share of the messages in flight (more than about 10 %
/// and at least 30 of them) or of the consumers' time, it hands consumers
/// the quiet groups' messages first, so their dwell time stays low; the
/// noisy group's messages are delayed, never dropped. Consumers change
/// nothing (SQS chooses what a receive returns), and unlike FIFO groups,
/// messages of one group are still received in parallel.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>,
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues-detailed.html>.
///
/// A group id is up to 128 characters of letters, digits and ASCII
/// punctuation (SQS `SendMessage`, `MessageGroupId`); a tenant id is at
/// most 64 letters, digits, `-` and `_` ([`TenantId`]), and
/// [`SERVICE_GROUP`] fits too, also within EventBridge's 100 for the sweep
/// schedule's target (`SqsParameters.MessageGroupId`,
/// <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_SqsParameters.html>).
pub fn fair_group(body: &str) -> String {
    let tenant = match QueueMessage::read(body) {
        QueueMessage::Request(Err(_)) => readable_tenant(body),
        read => read.tenant().cloned(),
    };
    tenant.map_or_else(|| SERVICE_GROUP.to_string(), |t| t.as_str().to_string())
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

    /// Each message goes in its tenant's fair-queue group; the sweep, and
    /// a body too broken to name a tenant, in the service's own group. An
    /// invalid request that still names its tenant stays in that tenant's.
    #[test]
    fn each_message_is_grouped_by_the_tenant_it_names() {
        let (t, k) = ids();
        let request = serde_json::json!({
            "version": 1, "tenant_id": "acme", "idempotency_key": "k",
            "recipient": {"phone": "+919876543210"},
            "event": {"type": "escalation", "customer": {"name": "Globex", "health": "good"},
                      "params": ["a", "b", "c"]},
            "text": "hello"
        })
        .to_string();
        for body in [
            request,
            Control::handback(t.clone(), k.clone(), "wamid.1".into()).to_json(),
            Control::release(t.clone(), ReleaseWhy::Sweep).to_json(),
            Control::mark_read(t, "wamid.2".into()).to_json(),
            r#"{"version":1,"tenant_id":"acme","unknown":"field"}"#.to_string(),
            r#"{"kind":"launch_rockets","tenant_id":"acme"}"#.to_string(),
        ] {
            assert_eq!(fair_group(&body), "acme", "{body}");
        }
        for body in [
            Control::sweep().to_json(),
            "not json".to_string(),
            r#"{"tenant_id":"not a tenant"}"#.to_string(),
            r#"{"tenant_id":42}"#.to_string(),
        ] {
            assert_eq!(fair_group(&body), SERVICE_GROUP, "{body}");
        }
        assert!(TenantId::parse(SERVICE_GROUP).is_err());
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
