//! What the records of one SQS batch share: the reads they make together
//! (who each request goes to, and the CSMs' windows), and the outcome events
//! they queue, published together when every record has finished.
//!
//! At least once: [`Sender::publish_then_acknowledge`] publishes the batch's
//! outcome events first and acknowledges the records after; a record whose
//! events were not published is redelivered, not acknowledged, and its
//! redelivery publishes them again from the ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures::future::{BoxFuture, Shared};
use tracing::{error, warn};

use super::decide::{self, Acknowledge};
use super::message::QueueMessage;
use super::outcome::Reported;
use super::reach::{named, Reached};
use super::request::SendRequest;
use super::{Disposition, Sender, SenderError};
use crate::events::Event;
use crate::identity::Identity;
use crate::ids::{IdempotencyKey, TenantId};
use crate::store::{LedgerEntry, Named, Window};

impl Sender {
    /// At least once, as one named step: every record's outcome events in
    /// one publish, then each record acknowledged or not. A record whose
    /// events could not be published is redelivered whatever it came to
    /// ([`decide::acknowledge`]); its redelivery finds the alert finished
    /// and publishes the outcome again from the ledger.
    pub(super) async fn publish_then_acknowledge(
        &self,
        finished: Vec<Finished<'_>>,
    ) -> SqsBatchResponse {
        let events: Vec<Event> = finished
            .iter()
            .flat_map(|f| f.events.iter().cloned())
            .collect();
        let published = match self.app.queues.publish(&events).await {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "could not publish the batch's outcome events; their records will be redelivered");
                // The redelivered records find their alerts finished and
                // publish their outcomes again from the ledger; logged too,
                // for the record that runs out of receives first.
                for event in &events {
                    error!(event = %event.to_json(), "outcome event not published");
                }
                false
            }
        };
        let mut failures = Vec::new();
        for f in finished {
            let events_lost = !f.events.is_empty() && !published;
            let disposition = match &f.result {
                Ok(d) => Some(*d),
                Err(e) => {
                    if !events_lost {
                        error!(error = %e, source = %std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default(), "record failed; SQS will redeliver it");
                    }
                    None
                }
            };
            let retry_after = match decide::acknowledge(disposition, events_lost) {
                Acknowledge::Delete => continue,
                Acknowledge::Redeliver => None,
                Acknowledge::RedeliverAfter(secs) => Some(secs),
            };
            if let (Some(secs), Some(handle)) = (retry_after, f.rec.receipt_handle.as_deref()) {
                if let Err(e) = self.app.queues.delay_retry(handle, secs).await {
                    warn!(error = %e, "could not push the retry out; SQS's visibility timeout applies");
                }
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = f.rec.message_id.clone().unwrap_or_default();
            failures.push(failure);
        }
        let mut resp = SqsBatchResponse::default();
        resp.batch_item_failures = failures;
        resp
    }

    /// What the batch's records read together: who each request goes to
    /// (from the cache, or all the misses in one read), then the windows of
    /// those that may go as free-form text, in one read. A failed read is
    /// logged and leaves each record to read its own.
    pub(super) async fn read_batch(&self, requests: Vec<SendRequest>) -> Arc<BatchReads> {
        let reached = match self.reach_all(&requests).await {
            Ok(reached) => reached,
            Err(e) => {
                warn!(error = %e, "could not read the batch's recipients together; each record reads its own");
                return Arc::default();
            }
        };
        let csms: Vec<_> = requests
            .iter()
            .zip(&reached)
            .filter_map(|(req, r)| match r {
                Reached::To(to) if req.text.is_some() => {
                    Some((req.tenant_id.clone(), to.identity.clone()))
                }
                _ => None,
            })
            .collect();
        let reached = requests.iter().map(named).zip(reached).collect();
        if csms.is_empty() {
            return Arc::new(BatchReads {
                reached,
                windows: Windows::new(),
            });
        }
        let windows = match self.app.store.get_windows(&csms).await {
            Ok(windows) => windows,
            Err(e) => {
                warn!(error = %e, "could not read the batch's windows together; each record reads its own");
                Windows::new()
            }
        };
        Arc::new(BatchReads { reached, windows })
    }
}

/// The CSMs' windows as read for a batch: a CSM missing here is read alone.
pub(super) type Windows = HashMap<(TenantId, Identity), Option<Window>>;

/// The batch's send requests: the ones whose recipients (and, for those
/// that may go as free-form text, windows) the batch reads together.
pub(super) fn requests_of(bodies: &[QueueMessage]) -> Vec<SendRequest> {
    bodies
        .iter()
        .filter_map(|b| match b {
            QueueMessage::Request(Ok(req)) => Some(req.clone()),
            _ => None,
        })
        .collect()
}

/// What a batch's records read together.
#[derive(Debug, Default)]
pub(super) struct BatchReads {
    /// Who each request goes to; a request missing here is read alone.
    pub(super) reached: HashMap<Named, Reached>,
    pub(super) windows: Windows,
}

/// What one record's processing shares with the rest of its batch.
pub(super) struct InBatch<'b> {
    /// The batch's reads (recipients, windows), awaited by the records.
    pub(super) reads: Shared<BoxFuture<'b, Arc<BatchReads>>>,
    /// The batch's send slots, shared by its records ([`super::slots`]).
    pub(super) slots: &'b super::slots::SendSlots,
    /// The record's outcome events, published with the batch's.
    pub(super) events: Mutex<Vec<Event>>,
}

impl InBatch<'_> {
    /// Queues the record's outcome event; [`Sender::handle_batch`]
    /// publishes it with the batch's.
    pub(super) fn outcome(&self, req: &SendRequest, reported: Reported) {
        self.outcome_for(&req.tenant_id, &req.idempotency_key, reported)
    }

    /// [`InBatch::outcome`] for an alert known only by its tenant and key
    /// (a request too broken to parse whole).
    pub(super) fn outcome_for(&self, tenant: &TenantId, key: &IdempotencyKey, reported: Reported) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reported.event(tenant, key));
    }

    /// Queues again the outcome event of an alert that finished earlier.
    ///
    /// A request delivered after its alert finished may be the redelivery of
    /// a record whose batch could not publish its events; nothing tells the
    /// two apart without a write per message, so the outcome always goes out
    /// again. An event repeated (same key, outcome and wamid) is one a
    /// consumer drops; an event lost is gone.
    pub(super) fn repeat_outcome(&self, req: &SendRequest, entry: &LedgerEntry) {
        self.repeat_outcome_for(&req.tenant_id, &req.idempotency_key, entry)
    }

    /// [`InBatch::repeat_outcome`] by tenant and key.
    pub(super) fn repeat_outcome_for(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        entry: &LedgerEntry,
    ) {
        if let Some(reported) = Reported::of_ledger(entry) {
            self.outcome_for(tenant, key, reported)
        }
    }

    pub(super) fn into_events(self) -> Vec<Event> {
        self.events.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one record of a batch came to: its processing's result and the
/// outcome events it queued, not published yet.
pub(super) struct Finished<'r> {
    pub(super) rec: &'r SqsMessage,
    pub(super) result: Result<Disposition, SenderError>,
    pub(super) events: Vec<Event>,
}
