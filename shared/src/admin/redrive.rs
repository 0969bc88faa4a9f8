//! `POST /admin/tenants/{tenant_id}/messages/{idempotency_key}/redrive`:
//! puts a parked alert back on the send queue once its cause is fixed (a
//! template approved after an edit, Meta's outage over), as `fwa redrive KEY`.
//!
//! Only a key whose ledger says `parked` is redriven; any other key answers
//! 409 `not_parked` with its state in plain words (sent, waiting, expired,
//! ...), and a key the tenant never had answers 404. The request sent is
//! the one the ledger kept when the alert was first claimed, unchanged: its
//! `deliver_by`, and the template wait counted from its first attempt,
//! still hold (an alert past them expires or parks again). A request that
//! needs changing is enqueued anew with a new idempotency key.
//!
//! The steps, in this order:
//! 1. the ledger moves `parked` → `retry` (conditional), marked
//!    `redrive_pending` ([`crate::store::Store::reopen_parked`]). The key must
//!    be claimable before any copy of the request is on the queue: a copy
//!    the sender reads while the key is still `parked` is acknowledged as
//!    finished, and the alert would never go out;
//! 2. the key leaves the tenant's parked list. Before the enqueue, because
//!    once a copy is on the queue the sender may park it again and list it
//!    anew, and a later removal would hide that second park;
//! 3. the stored request goes on the send queue;
//! 4. the mark is removed ([`crate::store::Store::finish_redrive`]).
//!
//! Safe to repeat: a redrive that failed after step 1 left `retry` with the
//! mark, and the same call finishes it from step 2 (409 only once the mark
//! is gone). Two copies on the queue (a repeat after a lost answer) cost
//! nothing: the sender's claim lets one through. The DLQ's own copy stays
//! until its 14 days end (it cannot be found by key).

use serde_json::json;
use tracing::info;

use super::when::iso8601;
use super::{configured, AdminError, AdminResponse};
use crate::ids::{IdempotencyKey, TenantId};
use crate::startup::App;
use crate::store::{LedgerEntry, LedgerState};

pub async fn post(
    app: &App,
    tenant: &TenantId,
    key: &IdempotencyKey,
) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    let store = &app.store;
    let not_found = || {
        AdminError::not_found(
            "message_not_found",
            format!("message with idempotency key {key} (a request too broken to name its tenant and key is only in the send DLQ)"),
        )
    };
    let mut entry = store.get_ledger(tenant, key).await?.ok_or_else(not_found)?;
    let resumed = entry.redrive_pending && entry.state == LedgerState::Retry;
    if entry.state == LedgerState::Parked {
        if entry.request_json.is_none() {
            return Err(AdminError::Conflict {
                code: "no_stored_request",
                message: format!("alert {key} is parked but its request was not kept; enqueue it again with a new idempotency key"),
            });
        }
        let parked_for = entry.last_error.clone().unwrap_or_default();
        let now = app.clock.now();
        // Applied or not (a concurrent redrive may have moved it first),
        // what counts is the state read again below.
        store.reopen_parked(tenant, key, &parked_for, now).await?;
        entry = store.get_ledger(tenant, key).await?.ok_or_else(not_found)?;
    }
    if !(entry.state == LedgerState::Retry && entry.redrive_pending) {
        return Err(AdminError::Conflict {
            code: "not_parked",
            message: format!("alert {key} is not parked: {}", in_plain_words(&entry)),
        });
    }
    let (Some(redriven_at), Some(body)) = (entry.redriven_at, entry.request_json.as_deref()) else {
        return Err(AdminError::Conflict {
            code: "no_stored_request",
            message: format!("alert {key} has no stored request to redrive; enqueue it again with a new idempotency key"),
        });
    };
    store.delete_parked(tenant, key).await?;
    app.queues.enqueue_send(body).await?;
    store.finish_redrive(tenant, key, redriven_at).await?;
    info!(idempotency_key = %key, resumed, "parked alert redriven to the send queue");
    Ok(AdminResponse::json(
        200,
        json!({
            "tenant_id": tenant,
            "idempotency_key": key,
            "state": "redriven",
            "redriven_at": iso8601(redriven_at),
            "redriven_at_unix": redriven_at,
            "was": entry.redriven_from,
            "resumed": resumed,
        }),
    ))
}

/// Where an alert is, as a sentence an operator reads.
pub fn in_plain_words(e: &LedgerEntry) -> String {
    let reason = e.last_error.as_deref().unwrap_or("no reason recorded");
    match e.state {
        LedgerState::Sent => {
            let how = match (e.mode.map(|m| m.as_str()), e.template.as_deref()) {
                (Some("template"), Some(t)) => format!(" as template {t}"),
                (Some("free_form"), _) => " as free-form text".to_string(),
                _ => String::new(),
            };
            match e.sent_at {
                Some(at) => format!("it was sent{how} at {}", iso8601(at)),
                None => format!("it was sent{how}"),
            }
        }
        LedgerState::Claimed => "it is being sent right now".to_string(),
        LedgerState::Retry => format!("it is queued for another attempt (last: {reason})"),
        LedgerState::Ambiguous => "its last send may have reached Meta; the sender waits for Meta's status before deciding".to_string(),
        LedgerState::Expired => format!("it expired without being sent ({reason})"),
        LedgerState::Waiting => match (e.waiting_for.as_deref(), e.wait_deadline) {
            (Some(t), Some(until)) => format!(
                "it is waiting for template {t} to be approved (until {})",
                iso8601(until)
            ),
            _ => "it is waiting for its template to be approved".to_string(),
        },
        LedgerState::Parked => format!("it is parked ({reason})"),
    }
}
