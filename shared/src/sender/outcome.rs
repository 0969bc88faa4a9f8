//! What a record reports: the `send.outcome` event of what became of its
//! alert, built here from the outcome and what goes with it.
//!
//! Events are queued per record ([`super::batch::InBatch`]) and published
//! with the batch's; a finished alert's outcome is built again from its
//! ledger entry ([`Reported::of_ledger`]), because the request may be the
//! redelivery of a record whose batch could not publish (at least once).

use crate::events::{Event, EventTime, Fallback};
use crate::ids::{IdempotencyKey, TenantId};
use crate::queues::ParkReason;
use crate::store::{LedgerEntry, LedgerState, Outcome, SendMode};

/// A `send.outcome` event, before it is told whose alert it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reported {
    outcome: Outcome,
    mode: Option<SendMode>,
    template: Option<String>,
    wamid: Option<String>,
    reason: Option<String>,
    /// Unix ms.
    queued_at: Option<i64>,
    /// Unix ms.
    sent_at: Option<i64>,
    meta_code: Option<i64>,
    fallback: Option<Fallback>,
}

impl Reported {
    /// Meta took it; `note` says how we know, when not from Meta's answer.
    pub(super) fn sent(
        mode: Option<SendMode>,
        template: Option<String>,
        wamid: String,
        note: Option<String>,
    ) -> Reported {
        Reported {
            outcome: Outcome::Sent,
            mode,
            template,
            wamid: Some(wamid),
            reason: note,
            ..Reported::bare(Outcome::Sent, None)
        }
    }

    /// A send Meta accepted at `sent_ms` of a request queued at
    /// `queued_ms` (unix ms), as a template instead of its text for
    /// `fallback`.
    pub(super) fn accepted(
        self,
        queued_ms: i64,
        sent_ms: i64,
        fallback: Option<Fallback>,
    ) -> Reported {
        Reported {
            queued_at: Some(queued_ms),
            sent_at: Some(sent_ms),
            fallback,
            ..self
        }
    }

    pub(super) fn expired(reason: &str) -> Reported {
        Reported::bare(Outcome::Expired, Some(reason.to_string()))
    }

    /// Parked; the event carries the reason code and Meta's code, not the
    /// detail.
    pub(super) fn parked(reason: &ParkReason) -> Reported {
        Reported {
            meta_code: reason.meta_code,
            ..Reported::bare(Outcome::Parked, Some(reason.reason.clone()))
        }
    }

    /// In doubt; `meta_code` when Meta answered with one.
    pub(super) fn ambiguous(
        mode: SendMode,
        template: Option<String>,
        detail: String,
        meta_code: Option<i64>,
    ) -> Reported {
        Reported {
            mode: Some(mode),
            template,
            meta_code,
            ..Reported::bare(Outcome::Ambiguous, Some(detail))
        }
    }

    pub(super) fn waiting(template: String, reason: Option<String>) -> Reported {
        Reported {
            template: Some(template),
            ..Reported::bare(Outcome::Waiting, reason)
        }
    }

    fn bare(outcome: Outcome, reason: Option<String>) -> Reported {
        Reported {
            outcome,
            mode: None,
            template: None,
            wamid: None,
            reason,
            queued_at: None,
            sent_at: None,
            meta_code: None,
            fallback: None,
        }
    }

    /// The outcome of an alert that finished earlier, as its ledger entry
    /// tells it; `None` while it is not finished (nor waiting). It may be
    /// the only copy the Fincelo app gets (the first batch's publish
    /// failed), so it says what the first said: the ledger keeps the queue
    /// and send times, the fallback and Meta's code of a park. An item
    /// written before those were kept gives the send time to the second
    /// and nothing else.
    pub(super) fn of_ledger(entry: &LedgerEntry) -> Option<Reported> {
        Some(match entry.state {
            LedgerState::Sent => Reported {
                mode: entry.mode,
                template: entry.template.clone(),
                wamid: entry.wamid.clone(),
                queued_at: entry.queued_ms,
                sent_at: entry
                    .sent_ms
                    .or(entry.sent_at.map(|s| s.saturating_mul(1000))),
                fallback: entry.fallback,
                ..Reported::bare(Outcome::Sent, None)
            },
            LedgerState::Expired => Reported::bare(Outcome::Expired, entry.last_error.clone()),
            LedgerState::Parked => Reported {
                meta_code: entry.meta_code,
                ..Reported::bare(
                    Outcome::Parked,
                    entry
                        .last_error
                        .as_deref()
                        .map(|e| ParkReason::from_ledger_text(e).reason),
                )
            },
            LedgerState::Waiting => Reported {
                template: entry.waiting_for.clone(),
                ..Reported::bare(Outcome::Waiting, entry.last_error.clone())
            },
            LedgerState::Claimed | LedgerState::Retry | LedgerState::Ambiguous => return None,
        })
    }

    /// The event, for the alert `key` of `tenant`.
    pub(super) fn event(self, tenant: &TenantId, key: &IdempotencyKey) -> Event {
        Event::SendOutcome {
            tenant_id: tenant.to_string(),
            idempotency_key: key.to_string(),
            outcome: self.outcome,
            mode: self.mode,
            template: self.template,
            wamid: self.wamid,
            reason: self.reason,
            queued_at: self.queued_at.map(EventTime::from_unix_ms),
            sent_at: self.sent_at.map(EventTime::from_unix_ms),
            meta_code: self.meta_code,
            fallback: self.fallback,
        }
    }
}
