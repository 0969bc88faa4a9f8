//! Publishing the events of changes already made, without losing one the
//! events queue refuses.
//!
//! A change is written first and its event published after, so a refused
//! publish would otherwise leave the change made and its event gone: the
//! retry (Meta's, or the next reconcile) finds nothing left to change. Each
//! event therefore travels with how to keep it ([`Keep`]): on a refused
//! publish it is kept on its record (a write made only on that failure),
//! the retry finds the mark ([`crate::store::Change::Unpublished`],
//! [`crate::store::TemplateRecord::status_event_owed`]) and publishes the
//! owed event, and the mark is dropped once it went out.

use tracing::{info, warn};

use crate::events::Event;
use crate::ids::TenantId;
use crate::queues::QueueError;
use crate::startup::App;
use crate::store::{StoreError, TemplateStatusChange};

/// An event of a change, and how to keep it if the queue refuses it.
pub struct Produced<'a> {
    pub event: Event,
    pub keep: Keep<'a>,
    /// The change was made on an earlier attempt and only its event goes
    /// out now: its mark is dropped once it has.
    pub replay: bool,
}

/// How a refused event is kept for the retry.
pub enum Keep<'a> {
    /// An inbound message's sighting is forgotten: the retry sees it as new.
    Sighting { message_id: &'a str },
    /// The message's status record is marked with the status whose event is owed.
    Status { wamid: &'a str, status: &'a str },
    /// The template's record is marked with the change whose event is owed.
    Template {
        name: &'a str,
        language: &'a str,
        change: TemplateStatusChange<'a>,
        ts: i64,
    },
}

impl Keep<'_> {
    /// Keeps the event (`owed`), or, once an owed event went out, drops what
    /// kept it. `false`: nothing to keep or drop (the record moved on, or
    /// the mark is gone).
    async fn set_owed(&self, app: &App, t: &TenantId, owed: bool) -> Result<bool, StoreError> {
        match self {
            // A sighting once forgotten is recorded again by the retry itself.
            Keep::Sighting { .. } if !owed => Ok(true),
            Keep::Sighting { message_id } => app
                .store
                .forget_sighting(t, "msg", message_id)
                .await
                .map(|()| true),
            Keep::Status { wamid, status } => {
                app.store
                    .set_status_event_owed(t, wamid, status, owed)
                    .await
            }
            Keep::Template {
                name,
                language,
                change,
                ts,
            } => {
                app.store
                    .set_template_event_owed(t, name, language, change, *ts, owed)
                    .await
            }
        }
    }

    /// How the event is named in the logs: in full, but an inbound message
    /// by its id alone (its CSM's number and text stay out of the logs).
    fn shown(&self, event: &Event) -> String {
        match self {
            Keep::Sighting { message_id } => format!("csm.message_received {message_id}"),
            _ => event.to_json(),
        }
    }
}

/// Publishes the events in one request. If the queue refuses them, each is
/// kept for the retry and the queue's error returned (the caller fails, so
/// the retry comes); an event is lost only if keeping it fails too, and is
/// then logged at `error`. Returns how many were published.
pub async fn publish_or_keep(
    app: &App,
    t: &TenantId,
    produced: Vec<Produced<'_>>,
) -> Result<usize, QueueError> {
    let (events, keeps): (Vec<Event>, Vec<(Keep<'_>, bool)>) = produced
        .into_iter()
        .map(|p| (p.event, (p.keep, p.replay)))
        .unzip();
    if let Err(e) = app.queues.publish(&events).await {
        for (event, (keep, _)) in events.iter().zip(&keeps) {
            let event = keep.shown(event);
            match keep.set_owed(app, t, true).await {
                Ok(true) => warn!(event = %event, "event not published; kept for the retry"),
                // The record moved on meanwhile: a later change's event supersedes this one.
                Ok(false) => {
                    info!(event = %event, "event not published and superseded by a later change")
                }
                Err(e) => tracing::error!(
                    error = %e,
                    event = %event,
                    "event not published and could not be kept for the retry; it is lost"
                ),
            }
        }
        return Err(e);
    }
    // A mark left behind (its write failed) only publishes the event once
    // more, on a later retry of the same change.
    for (keep, _) in keeps.iter().filter(|(_, replay)| *replay) {
        if let Err(e) = keep.set_owed(app, t, false).await {
            warn!(error = %e, "an owed event was published but its mark stays; a retry may publish it again");
        }
    }
    Ok(events.len())
}
