//! `GET /admin/tenants/{tenant_id}/parked`: the tenant's parked alerts,
//! newest first, each with its key, the machine-readable reason, the
//! detail, Meta's code when Meta gave the reason, and when it was parked
//! (what `fwa parked` shows).
//!
//! Read from the tenant's parked list ([`crate::store::ParkedAlert`]), not
//! from the send DLQ: the DLQ is one queue for every tenant, reading it hides
//! its messages for a while, and it cannot be searched by key. The list
//! holds what the sender could name: a request too broken to name a
//! configured tenant and its key is only in the DLQ, with its reason in the
//! message attributes (see docs/operating.md, "Parked alerts").
//!
//! An entry leaves the list when the alert is redriven ([`super::redrive`]);
//! the ledger stays the truth about the alert (`fwa timeline KEY`).

use serde_json::json;

use super::when::iso8601;
use super::{configured, AdminError, AdminResponse};
use crate::ids::TenantId;
use crate::startup::App;

pub async fn list(app: &App, tenant: &TenantId) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    let parked: Vec<_> = app
        .store
        .list_parked(tenant)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "idempotency_key": p.idempotency_key,
                "reason": p.reason,
                "detail": p.detail,
                "meta_code": p.meta_code,
                "parked_at": iso8601(p.parked_at),
                "parked_at_unix": p.parked_at,
            })
        })
        .collect();
    Ok(AdminResponse::json(
        200,
        json!({"tenant_id": tenant, "count": parked.len(), "parked": parked}),
    ))
}
