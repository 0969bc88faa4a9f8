//! Template status events as Meta sends them in `message_template_status_update`,
//! and what each does to the template's status and to sending it.
//!
//! Sources (read with the search tool, November 2026):
//! - Meta's webhook reference, <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/message_template_status_update>
//!   (updated 2026-04-13): `event`, `message_template_id` (a number),
//!   `message_template_name`, `message_template_language`, `reason`,
//!   `message_template_category`, and three optional objects:
//!   `disable_info {disable_date}` ("only included if template disabled"),
//!   `other_info {title, description}` ("only included if template locked or
//!   unlocked"; pywa's model describes `title` as the "title of template pause
//!   or unpause event") and `rejection_info {reason, recommendation}` ("only
//!   included if template rejected with INVALID_FORMAT reason").
//! - The event values are pywa's `TemplateStatus` (pywa/types/templates.py):
//!   APPROVED, DISABLED, IN_APPEAL, PENDING, REINSTATED, REJECTED, DELETED,
//!   PENDING_DELETION, FLAGGED, PAUSED, LIMIT_EXCEEDED, ARCHIVED, LOCKED; Meta's
//!   reference adds archive/unarchive triggers. Rejection reasons are pywa's
//!   `TemplateRejectionReason` (ABUSIVE_CONTENT, INCORRECT_CATEGORY,
//!   INVALID_FORMAT, NONE, PROMOTIONAL, SCAM, TAG_CONTENT_MISMATCH).
//! - Pauses: a low-quality template is paused for 3 hours the first time, 6
//!   hours the second, and disabled the third; when a pause ends Meta sends
//!   APPROVED (YCloud's template webhook examples, and META-2026.md). FLAGGED
//!   leaves the template APPROVED with the date it will be disabled.
//!
//! The pause `other_info` titles (FIRST_PAUSE, SECOND_PAUSE, UNPAUSE) and the
//! wording of descriptions are the sandbox's; Meta documents only that pauses
//! carry a title and a description.

use serde_json::{json, Value};

use crate::calendar::iso8601;
use crate::model::TemplateRecord;

/// Events `POST /_sandbox/templates/decide` accepts (Meta's `event` values).
pub const EVENTS: &[&str] = &[
    "APPROVED",
    "REJECTED",
    "PENDING",
    "PAUSED",
    "DISABLED",
    "FLAGGED",
    "REINSTATED",
    "IN_APPEAL",
    "ARCHIVED",
    "UNARCHIVED",
    "PENDING_DELETION",
    "DELETED",
    "LOCKED",
    "UNLOCKED",
    "LIMIT_EXCEEDED",
];

/// Meta's rejection reasons.
pub const REASONS: &[&str] = &[
    "NONE",
    "ABUSIVE_CONTENT",
    "INCORRECT_CATEGORY",
    "INVALID_FORMAT",
    "PROMOTIONAL",
    "SCAM",
    "TAG_CONTENT_MISMATCH",
];

/// Hours a template stays paused: the first pause, then the second.
pub const PAUSE_HOURS: [i64; 2] = [3, 6];

/// Days between FLAGGED and the date Meta says it will disable the template.
pub const FLAGGED_DISABLE_AFTER_DAYS: i64 = 7;

/// One status update: what goes into the webhook besides the template's ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusUpdate {
    pub event: String,
    pub reason: String,
    pub disable_info: Option<Value>,
    pub other_info: Option<Value>,
    pub rejection_info: Option<Value>,
}

/// What a caller may add to a decision.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub reason: Option<String>,
    pub other_info: Option<Value>,
    pub rejection_info: Option<Value>,
    pub disable_date: Option<i64>,
}

/// Why a decision cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("status must be one of {}", EVENTS.join(", "))]
    UnknownEvent,
    #[error("reason must be one of {}", REASONS.join(", "))]
    UnknownReason,
}

/// The status a template has after `event` (FLAGGED and the like keep it sendable).
pub fn status_after(event: &str, current: &str) -> String {
    match event {
        "FLAGGED" | "REINSTATED" | "UNARCHIVED" => "APPROVED".into(),
        "LOCKED" | "UNLOCKED" => current.to_string(),
        other => other.to_string(),
    }
}

/// Applies `event` to `t` at `now_ms` (unix ms on the sandbox's clock) and
/// returns the webhook's content. Pauses count up and end on the clock.
pub fn apply(
    t: &mut TemplateRecord,
    event: &str,
    extras: Extras,
    now_ms: i64,
) -> Result<StatusUpdate, EventError> {
    let now_s = now_ms.div_euclid(1000);
    let event = event.to_ascii_uppercase();
    if !EVENTS.contains(&event.as_str()) {
        return Err(EventError::UnknownEvent);
    }
    let reason = extras.reason.clone().unwrap_or_else(|| "NONE".into());
    if !REASONS.contains(&reason.as_str()) {
        return Err(EventError::UnknownReason);
    }
    let was_paused = t.status == "PAUSED";
    let mut update = StatusUpdate {
        event: event.clone(),
        reason: reason.clone(),
        other_info: extras.other_info.clone(),
        rejection_info: extras.rejection_info.clone(),
        disable_info: None,
    };
    t.paused_until = None;
    match event.as_str() {
        "PAUSED" if t.pause_count >= 2 => {
            // Meta: the third pause disables the template.
            update.event = "DISABLED".into();
            update.other_info = None;
            update.disable_info = Some(json!({
                "disable_date": extras.disable_date.unwrap_or(now_s)
            }));
        }
        "PAUSED" => {
            let hours = if t.pause_count == 0 {
                PAUSE_HOURS[0]
            } else {
                PAUSE_HOURS[1]
            };
            t.pause_count += 1;
            let until = now_s + hours * 3600;
            t.paused_until = Some(until * 1000);
            let title = if t.pause_count == 1 {
                "FIRST_PAUSE"
            } else {
                "SECOND_PAUSE"
            };
            update.other_info.get_or_insert_with(|| {
                json!({
                    "title": title,
                    "description": format!(
                        "Your message template {} has been paused for {hours} hours until {} because of low quality.",
                        t.name,
                        iso8601(until)
                    ),
                })
            });
        }
        "APPROVED" if was_paused => {
            update.other_info.get_or_insert_with(|| {
                json!({
                    "title": "UNPAUSE",
                    "description": format!("Your message template {} has been unpaused.", t.name),
                })
            });
        }
        "DISABLED" => {
            update.disable_info = Some(json!({
                "disable_date": extras.disable_date.unwrap_or(now_s)
            }));
        }
        "FLAGGED" => {
            update.disable_info = Some(json!({
                "disable_date": extras
                    .disable_date
                    .unwrap_or(now_s + FLAGGED_DISABLE_AFTER_DAYS * 86_400)
            }));
        }
        "REJECTED" if reason == "INVALID_FORMAT" => {
            update.rejection_info.get_or_insert_with(|| {
                json!({
                    "reason": "The template's format is invalid: a variable parameter is at the start or end of the body, or the body is malformed.",
                    "recommendation": "Move variables away from the start and end of the body and resubmit the template.",
                })
            });
        }
        _ => {}
    }
    t.status = status_after(&update.event, &t.status);
    t.reason = reason;
    t.last_event = Some(update.event.clone());
    t.decided_at = Some(now_ms);
    Ok(update)
}

/// The webhook's `value` for `update` of `t`.
pub fn webhook_value(t: &TemplateRecord, update: &StatusUpdate) -> Value {
    let id: Value =
        t.id.parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(t.id));
    let mut value = json!({
        "event": update.event,
        "message_template_id": id,
        "message_template_name": t.name,
        "message_template_language": t.language,
        "reason": update.reason,
        "message_template_category": t.category,
    });
    if let Some(d) = &update.disable_info {
        value["disable_info"] = d.clone();
    }
    if let Some(o) = &update.other_info {
        value["other_info"] = o.clone();
    }
    if let Some(r) = &update.rejection_info {
        value["rejection_info"] = r.clone();
    }
    value
}

/// Templates whose pause has ended at `now_ms`: they are APPROVED again, as
/// Meta does when a pause runs out.
pub fn end_pauses(
    templates: &mut [TemplateRecord],
    now_ms: i64,
) -> Vec<(TemplateRecord, StatusUpdate)> {
    let mut ended = Vec::new();
    for t in templates.iter_mut() {
        if t.status == "PAUSED" && t.paused_until.is_some_and(|until| until <= now_ms) {
            if let Ok(update) = apply(t, "APPROVED", Extras::default(), now_ms) {
                ended.push((t.clone(), update));
            }
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> TemplateRecord {
        TemplateRecord {
            id: "1234".into(),
            waba_id: "9".into(),
            name: "churn_alert".into(),
            language: "en".into(),
            category: "UTILITY".into(),
            status: "APPROVED".into(),
            components: json!([]),
            reason: "NONE".into(),
            body_placeholders: 0,
            submitted_at: 0,
            decided_at: None,
            last_event: None,
            pause_count: 0,
            paused_until: None,
        }
    }

    #[test]
    fn the_first_pause_lasts_three_hours_and_the_second_six() {
        let mut t = template();
        let first = apply(&mut t, "PAUSED", Extras::default(), 1_000_000).expect("applies");
        assert_eq!(
            first.other_info.as_ref().map(|o| o["title"].clone()),
            Some(json!("FIRST_PAUSE"))
        );
        assert_eq!(t.paused_until, Some((1_000 + 3 * 3600) * 1000));
        assert!(end_pauses(std::slice::from_mut(&mut t), (1_000 + 3 * 3600) * 1000 - 1).is_empty());
        let ended = end_pauses(std::slice::from_mut(&mut t), (1_000 + 3 * 3600) * 1000);
        assert_eq!(ended[0].1.event, "APPROVED");
        let second = apply(&mut t, "PAUSED", Extras::default(), 50_000_000).expect("applies");
        assert_eq!(
            second.other_info.map(|o| o["title"].clone()),
            Some(json!("SECOND_PAUSE"))
        );
        assert_eq!(t.paused_until, Some((50_000 + 6 * 3600) * 1000));
    }

    #[test]
    fn the_third_pause_disables_the_template() {
        let mut t = template();
        for _ in 0..2 {
            apply(&mut t, "PAUSED", Extras::default(), 0).expect("applies");
        }
        let third = apply(&mut t, "PAUSED", Extras::default(), 5_000).expect("applies");
        assert_eq!(
            (third.event.as_str(), t.status.as_str()),
            ("DISABLED", "DISABLED")
        );
        assert_eq!(third.disable_info, Some(json!({"disable_date": 5})));
    }

    #[test]
    fn flagged_keeps_a_template_sendable_and_names_the_disable_date() {
        let mut t = template();
        let u = apply(&mut t, "FLAGGED", Extras::default(), 10_000).expect("applies");
        assert_eq!(t.status, "APPROVED");
        assert_eq!(
            u.disable_info,
            Some(json!({"disable_date": 10 + 7 * 86_400}))
        );
    }

    #[test]
    fn unknown_events_and_reasons_are_refused() {
        let mut t = template();
        assert_eq!(
            apply(&mut t, "SHREDDED", Extras::default(), 0),
            Err(EventError::UnknownEvent)
        );
        let extras = Extras {
            reason: Some("BORING".into()),
            ..Extras::default()
        };
        assert_eq!(
            apply(&mut t, "REJECTED", extras, 0),
            Err(EventError::UnknownReason)
        );
    }
}
