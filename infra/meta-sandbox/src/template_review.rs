//! Meta's template review as the sandbox runs it: a submitted template stays
//! `PENDING` until its review is due on the sandbox's clock, then the review
//! rules ([`crate::rules::review_template`]) approve or reject it and the
//! `message_template_status_update` webhook goes out.
//!
//! Review times are wall-clock times (Meta takes 24 to 72 hours), so they are
//! read on [`crate::clock`]: a local stack that moves its clock 30 hours ahead
//! sees the approval at once. One background task ([`review_loop`]) polls the
//! due reviews every [`POLL`]; it stops when the sandbox shuts down. The same
//! loop ends pauses whose time is up ([`template_events::end_pauses`]).
//!
//! Under the `template_review: "manual"` knob nothing is decided
//! automatically: templates stay `PENDING` until `POST /_sandbox/templates/decide`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::knobs::TemplateReview;
use crate::model::TemplateRecord;
use crate::rules;
use crate::state::{AppState, Store};
use crate::template_events::{self, Extras, StatusUpdate};
use crate::webhooks;

/// How often due reviews are looked for (real time).
pub const POLL: Duration = Duration::from_millis(20);

/// Schedules the automatic review of a just-submitted template.
pub fn schedule(store: &mut Store, template_id: &str, now_ms: i64) {
    if store.knobs.template_review == TemplateReview::Manual {
        return;
    }
    let delay = i64::try_from(store.knobs.template_approval_delay_ms).unwrap_or(i64::MAX);
    store
        .reviews_due
        .push((template_id.to_string(), now_ms.saturating_add(delay)));
}

/// Decides every review due at `now_ms`, and ends the pauses that are over;
/// returns the templates that changed with their webhook content. A template
/// decided by hand meanwhile (no longer `PENDING`) is left alone.
pub fn decide_due(store: &mut Store, now_ms: i64) -> Vec<(TemplateRecord, StatusUpdate)> {
    let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut store.reviews_due)
        .into_iter()
        .partition(|(_, at)| *at <= now_ms);
    store.reviews_due = waiting;
    let reject_list = store.knobs.reject_templates.clone();
    let mut decided = Vec::new();
    for (id, _) in due {
        let Some(t) = store.templates.iter_mut().find(|t| t.id == id) else {
            continue;
        };
        if t.status != "PENDING" {
            continue;
        }
        let (event, reason) = match rules::review_template(&body_text(t), &t.name, &reject_list) {
            rules::Review::Approved => ("APPROVED", None),
            rules::Review::Rejected { reason } => ("REJECTED", Some(reason.to_string())),
        };
        let extras = Extras {
            reason,
            ..Extras::default()
        };
        if let Ok(update) = template_events::apply(t, event, extras, now_ms) {
            decided.push((t.clone(), update));
        }
    }
    decided.extend(template_events::end_pauses(&mut store.templates, now_ms));
    decided
}

fn body_text(t: &TemplateRecord) -> String {
    t.components
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "BODY")
        .and_then(|c| c["text"].as_str())
        .unwrap_or("")
        .to_string()
}

/// Runs the due reviews until the sandbox closes.
pub async fn review_loop(state: AppState) {
    while !state.closed.load(Ordering::Relaxed) {
        let decided = {
            let now = state.now_ms();
            let mut store = state.lock();
            decide_due(&mut store, now)
        };
        for (t, update) in decided {
            tracing::info!(template = %t.name, event = %update.event, "template status changed");
            webhooks::send_template_status(&state, &t, &update).await;
        }
        tokio::time::sleep(POLL).await;
    }
}
