//! What a CSM can answer to an alert, and how an answer names its alert.
//!
//! Every alert offers a few actions (acknowledge, snooze, escalate, call me)
//! as buttons: a template's quick replies, or, inside the window, the reply
//! buttons of an interactive message. Each button carries a *payload* that
//! Meta hands back when it is tapped (`button.payload` for a quick reply,
//! `interactive.button_reply.id` for a reply button). The payload names the
//! action and the alert:
//!
//! ```text
//! fw1.ack.3f9c0a6e2b7d4c1e8a5f0b2c9d7e6a41
//! └┬┘ └┬┘ └──────────────┬───────────────┘
//!  │   │                 the alert's reference: 128 random bits, made when
//!  │   │                 the alert is first claimed and kept on its ledger
//!  │   │                 item (`response_ref`, indexed as gsi1
//!  │   │                 `T#{tenant}#REF#{ref}`)
//!  │   action code ([`Action::code`])
//!  version of this format
//! ```
//!
//! The reference is not the idempotency key (which the upstream system chose
//! and may be long or guessable) and means nothing outside its tenant: the
//! webhook looks it up under the tenant its signed body belongs to, so
//! another tenant's payload, or a made-up one, resolves to nothing.
//!
//! # Meta's limits
//! - Reply buttons (`interactive.type: button`): at most 3 buttons, title at
//!   most 20 characters, id at most 256, body text at most 1024
//!   (WhatsApp's Node.js SDK reference, "Reply Buttons Object",
//!   <https://whatsapp.github.io/WhatsApp-Nodejs-SDK/api-reference/types/ButtonObject>;
//!   Meta's OpenAPI spec v23.0, `ActionObject` and `BodyObject`, in
//!   `fixtures/meta/openapi`).
//! - A template's quick-reply payload (`components[{type: button, sub_type:
//!   quick_reply, index, parameters: [{type: payload, payload}]}]`, Meta's
//!   OpenAPI spec v23.0, `ButtonComponent`): Meta documents it as
//!   "developer-defined" with no length; the same 256 as a reply id is held
//!   here (and by the sandbox). Ours are 40 characters.

use std::fmt;

use serde_json::{json, Value};

use crate::templates::catalog::AlertEvent;

/// Longest reply-button id Meta accepts, and the bound held for a quick-reply
/// payload (see the module doc).
pub const PAYLOAD_MAX: usize = 256;
/// Longest reply-button title.
pub const REPLY_TITLE_MAX: usize = 20;
/// Most reply buttons in one interactive message.
pub const REPLY_BUTTONS_MAX: usize = 3;
/// Longest body of an interactive message; a longer alert goes as plain text.
pub const INTERACTIVE_BODY_MAX: usize = 1024;

/// The payload format's prefix.
const PREFIX: &str = "fw1";
/// A reference is 32 lowercase hex digits (a v4 UUID's 122 random bits).
pub const REF_LEN: usize = 32;

/// What a CSM answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    /// Put the alert off for this many days.
    Snooze {
        days: u8,
    },
    Escalate,
    CallMe,
    /// A text that quotes the alert.
    Reply,
}

impl Action {
    /// The button label of each tappable action, as in `templates.yaml`.
    const LABELS: [(&'static str, Action); 5] = [
        ("Acknowledge", Action::Acknowledge),
        ("Snooze 7 days", Action::Snooze { days: 7 }),
        ("Snooze 3 days", Action::Snooze { days: 3 }),
        ("Escalate", Action::Escalate),
        ("Call me", Action::CallMe),
    ];

    /// The action a button label stands for.
    pub fn from_label(label: &str) -> Option<Action> {
        Self::LABELS
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, a)| *a)
    }

    /// The button label of a tappable action (`None` for a reply).
    pub fn label(self) -> Option<&'static str> {
        Self::LABELS
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(l, _)| *l)
    }

    /// The name an event gives the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Snooze { .. } => "snooze",
            Action::Escalate => "escalate",
            Action::CallMe => "call_me",
            Action::Reply => "reply",
        }
    }

    /// The short code in a payload.
    fn code(self) -> String {
        match self {
            Action::Acknowledge => "ack".into(),
            Action::Snooze { days } => format!("s{days}"),
            Action::Escalate => "esc".into(),
            Action::CallMe => "call".into(),
            Action::Reply => "reply".into(),
        }
    }

    fn from_code(code: &str) -> Option<Action> {
        Some(match code {
            "ack" => Action::Acknowledge,
            "esc" => Action::Escalate,
            "call" => Action::CallMe,
            "s3" => Action::Snooze { days: 3 },
            "s7" => Action::Snooze { days: 7 },
            _ => return None,
        })
    }

    /// How long a snooze puts the alert off, in seconds.
    pub fn snooze_secs(self) -> Option<i64> {
        match self {
            Action::Snooze { days } => Some(i64::from(days) * 24 * 3600),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new alert reference: 128 random bits as 32 hex digits.
pub fn new_reference() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The payload of `action` on the alert with reference `reference`.
pub fn payload(action: Action, reference: &str) -> String {
    format!("{PREFIX}.{}.{reference}", action.code())
}

/// The longest payload a tappable action can have.
pub fn longest_payload() -> usize {
    Action::LABELS
        .iter()
        .map(|(_, a)| payload(*a, &"0".repeat(REF_LEN)).len())
        .max()
        .unwrap_or(0)
}

/// What a tapped payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// One of ours: an action on the alert with this reference.
    Ours { action: Action, reference: String },
    /// Not in our format (a template sent without payloads answers with its
    /// button text): the alert is found from the quoted message, if any.
    Foreign,
    /// In our format but not valid (too long, an unknown action, a malformed
    /// reference): forged or damaged; never resolved.
    Invalid(&'static str),
}

/// Reads a tapped payload.
pub fn parse_payload(p: &str) -> Payload {
    if p.len() > PAYLOAD_MAX {
        return Payload::Invalid("payload longer than Meta allows");
    }
    let Some(rest) = p.strip_prefix(PREFIX).and_then(|r| r.strip_prefix('.')) else {
        return Payload::Foreign;
    };
    let Some((code, reference)) = rest.split_once('.') else {
        return Payload::Invalid("payload without a reference");
    };
    let Some(action) = Action::from_code(code) else {
        return Payload::Invalid("payload with an unknown action");
    };
    if reference.len() != REF_LEN
        || !reference
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Payload::Invalid("payload with a malformed reference");
    }
    Payload::Ours {
        action,
        reference: reference.to_string(),
    }
}

/// The three reply buttons a free-form alert offers, by its event.
///
/// Meta allows three reply buttons; each event gets the three answers its
/// reader most needs:
/// - a usage alert: **Acknowledge** (I'm on it), **Snooze 3 days** (I'll
///   look after the next check-in; a usage trend moves in days, not weeks),
///   **Escalate** (at risk, a manager should see it);
/// - an overdue invoice: **Acknowledge**, **Snooze 3 days** (wait for the
///   contact's answer), **Escalate** (the payment is stuck);
/// - an escalation (read by a manager): **Acknowledge** (I take ownership),
///   **Call me** (the CSM should brief them), **Escalate** (it goes higher).
pub fn reply_actions(event: AlertEvent) -> [Action; REPLY_BUTTONS_MAX] {
    match event {
        AlertEvent::UsageThreshold | AlertEvent::OverdueInvoice => [
            Action::Acknowledge,
            Action::Snooze { days: 3 },
            Action::Escalate,
        ],
        AlertEvent::Escalation => [Action::Acknowledge, Action::CallMe, Action::Escalate],
    }
}

/// The `interactive` object of a reply-button alert, or `None` when the text
/// is too long for an interactive body (it then goes as plain text).
pub fn interactive(text: &str, event: AlertEvent, reference: &str) -> Option<Value> {
    if text.chars().count() > INTERACTIVE_BODY_MAX || text.trim().is_empty() {
        return None;
    }
    let buttons: Vec<Value> = reply_actions(event)
        .iter()
        .map(|a| {
            json!({
                "type": "reply",
                "reply": {"id": payload(*a, reference), "title": a.label().unwrap_or_default()},
            })
        })
        .collect();
    Some(json!({
        "type": "button",
        "body": {"text": text},
        "action": {"buttons": buttons},
    }))
}

/// The send-time components of a template's quick replies: one `button`
/// component per label, with its payload (Meta's OpenAPI spec v23.0,
/// `ButtonComponent`: `index` is the button's position, as a string).
pub fn quick_reply_components(labels: &[String], reference: &str) -> Vec<Value> {
    labels
        .iter()
        .enumerate()
        .filter_map(|(i, label)| {
            let action = Action::from_label(label)?;
            Some(json!({
                "type": "button",
                "sub_type": "quick_reply",
                "index": i.to_string(),
                "parameters": [{"type": "payload", "payload": payload(action, reference)}],
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_as_its_action_and_reference() {
        let r = new_reference();
        for (_, a) in Action::LABELS {
            assert_eq!(
                parse_payload(&payload(a, &r)),
                Payload::Ours {
                    action: a,
                    reference: r.clone()
                }
            );
        }
        assert!(longest_payload() <= PAYLOAD_MAX);
    }

    #[test]
    fn forged_long_or_foreign_payloads_do_not_resolve() {
        assert_eq!(parse_payload("Acknowledge"), Payload::Foreign);
        assert!(matches!(
            parse_payload(&format!("fw1.ack.{}", "a".repeat(300))),
            Payload::Invalid(_)
        ));
        assert!(matches!(
            parse_payload("fw1.ack.not-a-reference"),
            Payload::Invalid(_)
        ));
        assert!(matches!(
            parse_payload(&format!("fw1.pay.{}", "a".repeat(REF_LEN))),
            Payload::Invalid(_)
        ));
    }

    #[test]
    fn every_event_offers_three_buttons_within_metas_limits() {
        for e in AlertEvent::ALL {
            let i = interactive("Acme is at 92%", e, &new_reference()).expect("short text");
            let buttons = i["action"]["buttons"].as_array().expect("buttons");
            assert_eq!(buttons.len(), REPLY_BUTTONS_MAX);
            for b in buttons {
                assert!(
                    b["reply"]["title"].as_str().expect("title").chars().count() <= REPLY_TITLE_MAX
                );
                assert!(b["reply"]["id"].as_str().expect("id").len() <= PAYLOAD_MAX);
            }
        }
        assert!(interactive(
            &"x".repeat(INTERACTIVE_BODY_MAX + 1),
            AlertEvent::Escalation,
            "r"
        )
        .is_none());
    }
}
