//! `PUT|GET|DELETE /admin/tenants/{tenant_id}/csms/{csm_id}`: the CSM
//! roster, one CSM at a time; `GET /admin/tenants/{tenant_id}/csms`: the
//! whole roster (what `fwa csm list` shows, and the channel status's `csms`).
//!
//! A number is normalised to E.164 ([`super::input::whatsapp_number`]) and
//! stored under the CSM id, and becomes an alias of the CSM's identity
//! ([`crate::identity`]): a send to the number, or a reply from it, finds the
//! CSM's window. Whether Meta found a number undeliverable
//! (131026, flagged by the sender or the webhook) is shown with it; the flag
//! stays until the CSM's number is changed (see
//! [`crate::store::Store::put_csm_number`]).

use serde_json::{json, Value};
use tracing::info;

use super::{configured, input, AdminError, AdminResponse};
use crate::addressing::link;
use crate::identity::{Alias, Identity};
use crate::ids::{CsmId, TenantId};
use crate::startup::App;

/// The tenant's roster as every answer shows it: `csm_id`,
/// `whatsapp_number`, `undeliverable`, `updated_at`, by CSM id. Two queries
/// of the tenant's partition, whatever the roster's size.
pub async fn roster(app: &App, tenant: &TenantId) -> Result<Vec<Value>, AdminError> {
    let flagged = app.store.undeliverable_numbers(tenant).await?;
    Ok(app
        .store
        .list_csms(tenant)
        .await?
        .into_iter()
        .map(|entry| {
            json!({
                "csm_id": entry.csm_id,
                "undeliverable": flagged.contains(entry.whatsapp_number.as_str()),
                "whatsapp_number": entry.whatsapp_number,
                "updated_at": entry.updated_at,
            })
        })
        .collect())
}

/// `GET .../csms`: the whole roster.
pub async fn list(app: &App, tenant: &TenantId) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    Ok(AdminResponse::json(
        200,
        json!({"tenant_id": tenant, "csms": roster(app, tenant).await?}),
    ))
}

pub async fn put(
    app: &App,
    tenant: &TenantId,
    csm: &CsmId,
    body: &[u8],
) -> Result<AdminResponse, AdminError> {
    let number = input::csm_number(body)?;
    configured(app, tenant).await?;
    let now = app.clock.now();
    let previous = app.store.put_csm_number(tenant, csm, &number, now).await?;
    // The number now leads to this CSM (a window it had moves along), and
    // a number the CSM gave up no longer does.
    let who = Identity::Csm(csm.clone());
    link(
        &app.store,
        tenant,
        &Alias::Number(number.clone()),
        &who,
        now,
    )
    .await?;
    if let Some(old) = previous.as_ref().filter(|p| p.whatsapp_number != number) {
        app.store
            .unlink_alias(tenant, &Alias::Number(old.whatsapp_number.clone()), &who)
            .await?;
    }
    let undeliverable = app.store.is_undeliverable(tenant, &number).await?;
    let changed = previous
        .as_ref()
        .is_none_or(|p| p.whatsapp_number != number);
    info!(csm_id = %csm, number = %number.masked(), changed, "CSM number saved");
    Ok(AdminResponse::json(
        if previous.is_none() { 201 } else { 200 },
        json!({
            "tenant_id": tenant,
            "csm_id": csm,
            "whatsapp_number": number,
            "undeliverable": undeliverable,
            "changed": changed,
        }),
    ))
}

pub async fn get(app: &App, tenant: &TenantId, csm: &CsmId) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    let entry = app
        .store
        .get_csm(tenant, csm)
        .await?
        .ok_or_else(|| AdminError::not_found("csm_not_found", format!("CSM {csm}")))?;
    let undeliverable = app
        .store
        .is_undeliverable(tenant, &entry.whatsapp_number)
        .await?;
    Ok(AdminResponse::json(
        200,
        json!({
            "tenant_id": tenant,
            "csm_id": entry.csm_id,
            "whatsapp_number": entry.whatsapp_number,
            "undeliverable": undeliverable,
            "updated_at": entry.updated_at,
        }),
    ))
}

pub async fn delete(
    app: &App,
    tenant: &TenantId,
    csm: &CsmId,
) -> Result<AdminResponse, AdminError> {
    configured(app, tenant).await?;
    let entry = app.store.get_csm(tenant, csm).await?;
    if !app.store.delete_csm(tenant, csm).await? {
        return Err(AdminError::not_found("csm_not_found", format!("CSM {csm}")));
    }
    if let Some(entry) = entry {
        app.store
            .unlink_alias(
                tenant,
                &Alias::Number(entry.whatsapp_number),
                &Identity::Csm(csm.clone()),
            )
            .await?;
    }
    info!(csm_id = %csm, "CSM removed from the roster");
    Ok(AdminResponse {
        status: 204,
        body: None,
    })
}
