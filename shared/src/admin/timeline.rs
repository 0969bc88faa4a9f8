//! `GET /admin/tenants/{tenant_id}/messages/{idempotency_key}`: one alert's
//! story, from the sender's ledger (queued, waiting for its template,
//! redriven by an operator, sent as free-form or template, expired, parked
//! with its reason) and Meta's status webhooks (sent,
//! delivered, read, failed with Meta's errors), found by the key Meta echoes
//! in `biz_opaque_callback_data`, and the CSM's responses to it (`responses`:
//! who, what and when, ISO-8601 UTC; each also a `response` event). A
//! reply's text is not kept, so it is not shown: the `alert.response` event
//! carried it.
//!
//! Both reads are keyed under the tenant in the path, so a key that belongs
//! to another tenant is simply not found (404).

use serde_json::{json, Value};

use super::when::iso8601;
use super::{configured, AdminError, AdminResponse};
use crate::ids::{IdempotencyKey, TenantId};
use crate::startup::App;
use crate::store::LedgerState;

pub async fn get(
    app: &App,
    tenant: &TenantId,
    key: &IdempotencyKey,
) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    let ledger = app.store.get_ledger(tenant, key).await?;
    let statuses = app.store.statuses_by_key(tenant, key).await?;
    if ledger.is_none() && statuses.is_empty() {
        return Err(AdminError::not_found(
            "message_not_found",
            format!("message with idempotency key {key}"),
        ));
    }
    let mut events: Vec<Value> = Vec::new();
    if let Some(l) = &ledger {
        events.push(json!({"event": "queued", "at": l.created_at}));
        if let (Some(template), Some(since)) = (&l.waiting_for, l.waiting_since) {
            events.push(json!({
                "event": "waiting",
                "at": since,
                "template": template,
                "until": l.wait_deadline,
            }));
        }
        if let Some(at) = l.redriven_at {
            events.push(json!({
                "event": "redriven",
                "at": at,
                "was": l.redriven_from,
            }));
        }
        if let Some(at) = l.sent_at {
            events.push(json!({
                "event": "sent",
                "at": at,
                "mode": l.mode.map(|m| m.as_str()),
                "template": l.template,
                "wamid": l.wamid,
            }));
        }
        match l.state {
            LedgerState::Parked | LedgerState::Expired => events.push(json!({
                "event": l.state.as_str(),
                "at": l.updated_at,
                "reason": l.last_error,
            })),
            LedgerState::Retry | LedgerState::Ambiguous => events.push(json!({
                "event": l.state.as_str(),
                "at": l.updated_at,
                "attempts": l.attempts,
                "reason": l.last_error,
            })),
            LedgerState::Claimed | LedgerState::Sent | LedgerState::Waiting => {}
        }
    }
    for s in &statuses {
        for (event, at) in [
            ("delivered", s.delivered_at),
            ("read", s.read_at),
            ("failed", s.failed_at),
        ] {
            let Some(at) = at else { continue };
            let mut e = json!({"event": event, "at": at, "wamid": s.wamid});
            if event == "failed" {
                e["errors"] = s
                    .errors_json
                    .as_deref()
                    .and_then(|j| serde_json::from_str::<Value>(j).ok())
                    .unwrap_or(Value::Array(Vec::new()));
            }
            events.push(e);
        }
        // Meta's own "sent" status when the ledger has no send time (the
        // alert was resolved from statuses, or the ledger is gone).
        if let (Some(at), None) = (s.sent_at, ledger.as_ref().and_then(|l| l.sent_at)) {
            events.push(json!({"event": "sent", "at": at, "wamid": s.wamid}));
        }
    }
    // The CSM's answers: who, what, when (see `crate::webhook`'s responses).
    let answered = app.store.responses_of(tenant, key).await?;
    let responses: Vec<Value> = answered
        .iter()
        .map(|r| {
            json!({
                "action": r.action,
                "at": iso8601(r.at),
                "at_unix": r.at,
                "csm": serde_json::from_str::<Value>(&r.csm_json).unwrap_or(Value::Null),
                "snooze_until": r.snooze_until.map(iso8601),
                "message_id": r.message_id,
                "wamid": r.wamid,
            })
        })
        .collect();
    for (r, shown) in answered.iter().zip(&responses) {
        events.push(json!({
            "event": "response",
            "at": r.at,
            "action": r.action,
            "csm": shown["csm"],
            "snooze_until": r.snooze_until,
            "message_id": r.message_id,
        }));
    }
    events.sort_by_key(|e| e["at"].as_i64().unwrap_or(0));
    Ok(AdminResponse::json(
        200,
        json!({
            "tenant_id": tenant,
            "idempotency_key": key,
            "state": ledger.as_ref().map(|l| l.state.as_str()),
            "mode": ledger.as_ref().and_then(|l| l.mode.map(|m| m.as_str())),
            "template": ledger.as_ref().and_then(|l| l.template.clone()),
            "wamid": ledger.as_ref().and_then(|l| l.wamid.clone()).or_else(|| statuses.first().map(|s| s.wamid.clone())),
            "delivery_status": statuses.iter().max_by_key(|s| s.rank).map(|s| s.status.clone()),
            "events": events,
            "responses": responses,
        }),
    ))
}
