//! Events for the Fincelo app, published to the events queue.
//!
//! Small, versioned JSON (`"version": 1`, `"type": "..."`). A consumer must
//! ignore fields it does not know; a breaking change bumps `version`. Events
//! are published once per state change: a replayed webhook changes no state
//! and so publishes nothing, unless the change's event was refused by the
//! queue when it was made (then the replay publishes it, once). `send.outcome` is the exception, at least once:
//! a send request delivered after its alert finished publishes the outcome
//! again from the ledger, because it may be the redelivery of a record whose
//! batch could not publish (see `sender`).

use serde::Serialize;

/// The version of every event below.
pub const EVENT_VERSION: u32 = 1;

/// One event. Serialised with `type` and `version` beside the fields.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type")]
pub enum Event {
    /// A CSM wrote to the business number; their 24-hour window is open.
    #[serde(rename = "csm.message_received")]
    CsmMessageReceived {
        tenant_id: String,
        /// The CSM's number (E.164) when Meta sent it; `None` for a user
        /// Meta names only by a BSUID (a username).
        csm: Option<String>,
        /// Everything known of who wrote.
        who: EventCsm,
        message_id: String,
        kind: String,
        timestamp: i64,
        text: Option<String>,
        window_expires_at: i64,
    },
    /// A message's delivery status moved forward.
    #[serde(rename = "message.status_changed")]
    MessageStatusChanged {
        tenant_id: String,
        wamid: String,
        idempotency_key: Option<String>,
        status: String,
        timestamp: i64,
        errors: Vec<EventError>,
        /// Whom the message went to: the person Fincelo knows (a roster
        /// `csm_id` when there is one) with the ids Meta reported. `None`
        /// when the status named nobody.
        recipient: Option<EventCsm>,
        /// What Meta bills for the message, when the status says
        /// (`sent`, `delivered`, `read` under per-message pricing).
        pricing: Option<EventPricing>,
    },
    /// A template's status, quality or category changed at Meta.
    #[serde(rename = "template.status_changed")]
    TemplateStatusChanged {
        tenant_id: String,
        name: String,
        language: String,
        status: Option<String>,
        reason: Option<String>,
        quality: Option<String>,
        category: Option<String>,
    },
    /// A CSM answered an alert: tapped one of its buttons, or replied to it
    /// quoting it. Published once per response, in addition to the
    /// `csm.message_received` of the same message.
    #[serde(rename = "alert.response")]
    AlertResponse {
        tenant_id: String,
        idempotency_key: String,
        /// The wamid of the alert answered.
        wamid: Option<String>,
        /// Who answered.
        csm: EventCsm,
        /// `acknowledge`, `snooze`, `escalate`, `call_me`, `reply`.
        action: String,
        /// For a snooze: until when, ISO-8601 UTC.
        snooze_until: Option<String>,
        /// For a reply: what the CSM wrote.
        text: Option<String>,
        /// The wamid of the CSM's message.
        message_id: String,
        /// When the CSM answered (Meta's timestamp), ISO-8601 UTC.
        at: String,
    },
    /// Meta reported a change of the tenant's messaging limit, its number's
    /// quality, or its account's standing (restrictions, violations, bans).
    /// One event per aspect that changed, in Meta's order.
    #[serde(rename = "account.limits_changed")]
    AccountLimitsChanged {
        tenant_id: String,
        waba_id: String,
        /// `messaging_limit`, `quality` or `standing`.
        aspect: String,
        /// The webhook field it came in: `phone_number_quality_update`,
        /// `business_capability_update`, `account_update`.
        field: String,
        /// Meta's time of the change, ISO-8601 UTC.
        at: String,
        /// What Meta said, as the status API shows it: `{event, limit,
        /// old_limit, ...}`, `{event}`, or `{event, restrictions[{type,
        /// expiration}], violation_type, ban_state, ban_date}`.
        detail: serde_json::Value,
    },
    /// What the sender did with a send request.
    #[serde(rename = "send.outcome")]
    SendOutcome {
        tenant_id: String,
        idempotency_key: String,
        outcome: crate::store::Outcome,
        mode: Option<crate::store::SendMode>,
        template: Option<String>,
        wamid: Option<String>,
        reason: Option<String>,
        /// A `sent` outcome: when the request that was sent reached the
        /// send queue (SQS's `SentTimestamp` of its record, epoch ms, which
        /// a redelivery keeps; a re-queued copy has its own:
        /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html>).
        /// `None` on an
        /// outcome repeated from the ledger, which does not keep it.
        queued_at: Option<EventTime>,
        /// A `sent` outcome: when Meta accepted the message (`None` when
        /// the send was resolved from Meta's status after a lost answer).
        sent_at: Option<EventTime>,
        /// Meta's error code, when Meta's answer to the send parked the
        /// alert or left it ambiguous.
        meta_code: Option<i64>,
        /// A `sent` template: why it went instead of the text the request
        /// carried. `None` for free-form text, and for an alert that had no
        /// text (the template is what it asked for).
        fallback: Option<Fallback>,
    },
}

/// Who a CSM is, as an event tells it: their roster id if they are on the
/// roster, and the ids Meta sent (a number, a `wa_id` that may differ from
/// it, a BSUID, a username).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EventCsm {
    pub csm_id: Option<String>,
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
}

impl EventCsm {
    /// The person `identity` is, with the ids Meta sent.
    pub fn of(
        identity: &crate::identity::Identity,
        ids: crate::webhook::payload::UserRef<'_>,
    ) -> EventCsm {
        use crate::identity::Identity;
        let phone = match identity {
            Identity::Number(n) => Some(n.to_string()),
            _ => ids
                .wa_id
                .and_then(|w| crate::phone::E164::from_wa_id(w).ok())
                .map(|n| n.to_string()),
        };
        EventCsm {
            csm_id: match identity {
                Identity::Csm(id) => Some(id.to_string()),
                _ => None,
            },
            phone,
            wa_id: ids.wa_id.map(str::to_string),
            user_id: ids.user_id.map(str::to_string),
            parent_user_id: ids.parent_user_id.map(str::to_string),
            username: ids.username.map(str::to_string),
        }
    }
}

/// A status's `pricing`, as Meta sent it, and whether Meta bills it
/// (`type` is `regular`; see [`crate::costs`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventPricing {
    pub billable: bool,
    /// `PMP`.
    pub pricing_model: Option<String>,
    /// `utility`, `marketing`, `authentication`, `service`, ...
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// A time in an event, kept to the millisecond: ISO-8601 UTC in the JSON
/// (`2026-11-30T10:00:00.250Z`), unix milliseconds to the code that reads
/// a latency from it ([`crate::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub unix_ms: i64,
}

impl EventTime {
    pub fn from_unix_ms(unix_ms: i64) -> EventTime {
        EventTime { unix_ms }
    }
}

impl Serialize for EventTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::admin::when::iso8601_millis(self.unix_ms))
    }
}

/// Why an alert that carried text went as a template instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Fallback {
    /// The CSM's window was closed (or never opened), as the service
    /// knows it.
    #[serde(rename = "window_closed")]
    WindowClosed,
    /// Meta refused the text as outside the window (131047), in its answer
    /// to the send or in a later `failed` status (the hand-back); the code
    /// as [`crate::sender::classify`] reads it from Meta's error reference
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>).
    #[serde(rename = "meta_131047")]
    Meta131047,
}

impl Fallback {
    /// Its name in `send.outcome`, and in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::WindowClosed => "window_closed",
            Fallback::Meta131047 => "meta_131047",
        }
    }

    /// The fallback [`Fallback::as_str`] names.
    pub fn parse(name: &str) -> Option<Fallback> {
        [Fallback::WindowClosed, Fallback::Meta131047]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// A Meta error inside an event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventError {
    pub code: i64,
    pub title: Option<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: u32,
    #[serde(flatten)]
    event: &'a Event,
}

impl Event {
    /// The JSON body of the SQS message.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail.
        serde_json::to_string(&Envelope {
            version: EVENT_VERSION,
            event: self,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_type_and_version() {
        let e = Event::MessageStatusChanged {
            tenant_id: "acme".into(),
            wamid: "wamid.X".into(),
            idempotency_key: Some("k1".into()),
            status: "read".into(),
            timestamp: 1,
            errors: vec![],
            recipient: None,
            pricing: Some(EventPricing {
                billable: true,
                pricing_model: Some("PMP".into()),
                category: Some("utility".into()),
                kind: Some("regular".into()),
            }),
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).expect("json");
        assert_eq!(v["type"], "message.status_changed");
        assert_eq!(v["version"], 1);
        assert_eq!(v["wamid"], "wamid.X");
        assert_eq!(v["pricing"]["type"], "regular");
        assert_eq!(v["pricing"]["billable"], true);
    }
}
