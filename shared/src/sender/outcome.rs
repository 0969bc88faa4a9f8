//! What a record reports: the `send.outcome` event of what became of its
//! alert, built here from the outcome and what goes with it.
//!
//! Events are queued per record ([`super::batch::InBatch`]) and published
//! with the batch's; a finished alert's outcome is built again from its
//! ledger entry ([`Reported::of_ledger`]), because the request may be the
//! redelivery of a record whose batch could not publish (at least once).

use crate::events::Event;
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
        }
    }

    pub(super) fn expired(reason: &str) -> Reported {
        Reported::bare(Outcome::Expired, Some(reason.to_string()))
    }

    /// Parked; the event carries the reason code, not its detail.
    pub(super) fn parked(reason: &ParkReason) -> Reported {
        Reported::bare(Outcome::Parked, Some(reason.reason.clone()))
    }

    pub(super) fn ambiguous(mode: SendMode, template: Option<String>, detail: String) -> Reported {
        Reported {
            outcome: Outcome::Ambiguous,
            mode: Some(mode),
            template,
            wamid: None,
            reason: Some(detail),
        }
    }

    pub(super) fn waiting(template: String, reason: Option<String>) -> Reported {
        Reported {
            outcome: Outcome::Waiting,
            mode: None,
            template: Some(template),
            wamid: None,
            reason,
        }
    }

    fn bare(outcome: Outcome, reason: Option<String>) -> Reported {
        Reported {
            outcome,
            mode: None,
            template: None,
            wamid: None,
            reason,
        }
    }

    /// The outcome of an alert that finished earlier, as its ledger entry
    /// tells it; `None` while it is not finished (nor waiting).
    pub(super) fn of_ledger(entry: &LedgerEntry) -> Option<Reported> {
        Some(match entry.state {
            LedgerState::Sent => Reported {
                outcome: Outcome::Sent,
                mode: entry.mode,
                template: entry.template.clone(),
                wamid: entry.wamid.clone(),
                reason: None,
            },
            LedgerState::Expired => Reported::bare(Outcome::Expired, entry.last_error.clone()),
            LedgerState::Parked => Reported::bare(
                Outcome::Parked,
                entry
                    .last_error
                    .as_deref()
                    .map(|e| ParkReason::from_ledger_text(e).reason),
            ),
            LedgerState::Waiting => Reported {
                outcome: Outcome::Waiting,
                mode: None,
                template: entry.waiting_for.clone(),
                wamid: None,
                reason: entry.last_error.clone(),
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
        }
    }
}
