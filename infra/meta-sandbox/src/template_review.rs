//! Meta's template review as the sandbox runs it: a submitted template stays
//! `PENDING` until its review is due on the sandbox's clock, then the review
//! rules ([`crate::rules::review_template`]) approve or reject it and the
//! `message_template_status_update` webhook goes out.
//!
//! Review times are wall-clock times (Meta takes 24 to 72 hours), so they are
//! read on [`crate::clock`]: a local stack that moves its clock 30 hours ahead
//! sees the approval at once. One background task ([`review_loop`]) polls the
//! due reviews every [`POLL`]; it stops when the sandbox shuts down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::model::TemplateRecord;
use crate::rules;
use crate::state::{AppState, Store};
use crate::webhooks;

/// How often due reviews are looked for (real time).
pub const POLL: Duration = Duration::from_millis(20);

/// Schedules the automatic review of a just-submitted template.
pub fn schedule(store: &mut Store, template_id: &str, now_ms: i64) {
    let delay = i64::try_from(store.knobs.template_approval_delay_ms).unwrap_or(i64::MAX);
    store
        .reviews_due
        .push((template_id.to_string(), now_ms.saturating_add(delay)));
}

/// Decides every review due at `now_ms`; returns the templates that changed.
/// A template decided by hand meanwhile (no longer `PENDING`) is left alone.
pub fn decide_due(store: &mut Store, now_ms: i64) -> Vec<TemplateRecord> {
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
        match rules::review_template(&body_text(t), &t.name, &reject_list) {
            rules::Review::Approved => {
                t.status = "APPROVED".into();
                t.reason = "NONE".into();
            }
            rules::Review::Rejected { reason } => {
                t.status = "REJECTED".into();
                t.reason = reason.into();
            }
        }
        t.decided_at = Some(now_ms);
        decided.push(t.clone());
    }
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
        for t in decided {
            tracing::info!(template = %t.name, status = %t.status, "template reviewed");
            webhooks::send_template_status(&state, &t).await;
        }
        tokio::time::sleep(POLL).await;
    }
}
