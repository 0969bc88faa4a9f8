//! Events owed by changes already made: an outbox on each record, so that
//! no event is lost to a crash or to a publish the events queue refuses.
//!
//! A change that has an event is written together with a mark saying that
//! its event is owed, in the same conditional write: a message's status
//! (`owed_event`), a template's status, quality or category (`owed_*`), an
//! inbound message's sighting and a response to an alert (`owed_at`). The event is published after the
//! write, and its mark cleared after the publish. Whatever stops the writer
//! in between (the function times out or crashes, the queue refuses the
//! publish), the mark stays, and the retry of the same change (Meta's retry
//! of the body, or the next reconcile) finds it: its conditional write is
//! refused and returns the record as it was, whose mark says the event is
//! still owed ([`crate::store::Change::Owed`]); the retry publishes it and
//! clears the mark.
//!
//! A mark younger than [`crate::store::OWED_LEASE_SECS`] may belong to a
//! writer that is publishing right now (the same body delivered twice at
//! once): that retry fails instead ([`crate::store::Change::InFlight`]), so
//! it comes back once the writer is done or gone, and the event goes out
//! once. The one way to publish an event twice is a writer that dies after
//! its publish and before clearing the mark: events are at least once,
//! never lost. Each event costs one more write, the clear.

use futures::future::join_all;
use tracing::{info, warn};

use crate::events::Event;
use crate::ids::TenantId;
use crate::queues::QueueError;
use crate::startup::App;
use crate::store::{StoreError, TemplateStatusChange};

/// An event of a change that is written, owed until it is published.
pub struct Owed<'a> {
    pub event: Event,
    /// The record whose mark says so.
    pub mark: Mark<'a>,
}

/// Where an owed event's mark is.
pub enum Mark<'a> {
    /// An inbound message's sighting.
    Sighting { message_id: &'a str },
    /// A response to an alert ([`crate::store::ResponseRecord`]).
    Response {
        key: crate::ids::IdempotencyKey,
        message_id: &'a str,
    },
    /// A message's status record, marked with its current status.
    Status { wamid: &'a str, status: &'a str },
    /// A template's record, marked with the change (value and Meta's time).
    Template {
        name: &'a str,
        language: &'a str,
        change: TemplateStatusChange<'a>,
        ts: i64,
    },
    /// The tenant's account item, marked with an aspect's change.
    Account {
        aspect: crate::store::AccountAspect,
        mark: String,
    },
}

impl Mark<'_> {
    /// Clears the mark once its event is published. `false`: there was none
    /// (a later change replaced it, and its own event supersedes this one).
    async fn clear(&self, app: &App, t: &TenantId) -> Result<bool, StoreError> {
        match self {
            Mark::Sighting { message_id } => {
                app.store.clear_sighting_owed(t, "msg", message_id).await
            }
            Mark::Response { key, message_id } => {
                app.store.clear_response_owed(t, key, message_id).await
            }
            Mark::Status { wamid, status } => app.store.clear_status_owed(t, wamid, status).await,
            Mark::Template {
                name,
                language,
                change,
                ts,
            } => {
                app.store
                    .clear_template_owed(t, name, language, change, *ts)
                    .await
            }
            Mark::Account { aspect, mark } => app.store.clear_account_owed(t, *aspect, mark).await,
        }
    }

    /// How the event is named in the logs: in full, but an inbound message
    /// by its id alone (its CSM's number and text stay out of the logs).
    fn shown(&self, event: &Event) -> String {
        match self {
            Mark::Sighting { message_id } => format!("csm.message_received {message_id}"),
            Mark::Response { message_id, .. } => format!("alert.response {message_id}"),
            _ => event.to_json(),
        }
    }
}

/// Publishes owed events in one request, then clears their marks. If the
/// queue refuses them, their marks stay (the retry publishes them) and the
/// queue's error is returned, so the caller fails and the retry comes.
/// Returns how many were published.
pub async fn publish_owed(
    app: &App,
    t: &TenantId,
    owed: Vec<Owed<'_>>,
) -> Result<usize, QueueError> {
    if owed.is_empty() {
        return Ok(0);
    }
    let (events, marks): (Vec<Event>, Vec<Mark<'_>>) =
        owed.into_iter().map(|o| (o.event, o.mark)).unzip();
    if let Err(e) = app.queues.publish(&events).await {
        for (event, mark) in events.iter().zip(&marks) {
            warn!(event = %mark.shown(event), "event not published; it stays owed on its record for the retry");
        }
        return Err(e);
    }
    let cleared = join_all(marks.iter().map(|m| m.clear(app, t))).await;
    for ((event, mark), result) in events.iter().zip(&marks).zip(cleared) {
        match result {
            Ok(true) => {}
            Ok(false) => info!("an event was published after a later change replaced its mark"),
            Err(e) => {
                warn!(error = %e, event = %mark.shown(event), "event published, but its mark stays; a retry of the same change publishes it again")
            }
        }
    }
    Ok(events.len())
}
