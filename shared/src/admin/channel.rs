//! `PUT|GET /admin/tenants/{tenant_id}/channel`: a tenant's Meta connection.
//!
//! Saving, in this order, so that a refused or failed save never leaves a
//! half-written tenant:
//! 1. validate the body ([`super::input::channel`]);
//! 2. ask Meta whether the token works for the phone number id
//!    (`GET /{v}/{phone-number-id}`); a refusal is answered 422 with Meta's
//!    reason and nothing is written;
//! 3. refuse (409) ids or a verify token another tenant already owns;
//! 4. stage the new values as pending versions of the tenant's two secrets
//!    ([`crate::secrets::SecretStore::stage`]): nothing reads them yet;
//! 5. write the configuration and its aliases in one transaction, removing
//!    aliases the tenant gave up;
//! 6. only then promote the staged versions to `AWSCURRENT`
//!    ([`crate::secrets::SecretStore::promote`]).
//!
//! Why staged rather than written then undone: a transaction refused at
//! step 5 (an alias another tenant claimed between step 3 and step 5: 409,
//! or DynamoDB failing: 502) leaves the old secret current, so the webhook
//! handshake still answers with the old verify token and signatures still
//! check against the old app secret; no reader ever saw the new values,
//! while an undo would leave a window in which a function could read and
//! cache them for `SECRET_CACHE_TTL_SECS`, and an undo can fail too. If
//! the promotion itself fails after the commit, the answer is 502 and the
//! same PUT, repeated, finishes it: its ids are the tenant's own by then.
//!
//! The status (`GET`) also says whether the tenant's sends are held
//! (`sends_held`: Meta refuses them for a payment issue, 131042; see
//! [`crate::sender`]), and what Meta's account webhooks last said of the
//! messaging limit, the number's quality and the account's standing
//! (`account`, each with Meta's time `at`, or `null`; see
//! [`crate::store::AccountAspect`]). Template quality and paused state are
//! in `templates` (`quality`, `status`).
//!
//! Running functions pick the new values up within `SECRET_CACHE_TTL_SECS`
//! (secrets) and `TENANT_CACHE_TTL_SECS` (ids); a sender that meets a 190
//! first refreshes at once ([`crate::tenants`]).

use secrecy::ExposeSecret;
use serde_json::json;
use tracing::info;

use super::{configured, input, AdminError, AdminResponse};
use crate::ids::TenantId;
use crate::startup::App;
use crate::store::{
    verify_token_digest, AliasKind, SendHold, StoreError, TenantRecord, DLQ_RETENTION_DAYS,
};

/// `PUT`: validate, check with Meta, store.
pub async fn put(app: &App, tenant: &TenantId, body: &[u8]) -> Result<AdminResponse, AdminError> {
    let input = input::channel(body)?;
    let info = app
        .graph
        .phone_number(input.phone_number_id.as_str(), &input.secrets.access_token)
        .await?;
    if info.id != input.phone_number_id.as_str() {
        return Err(AdminError::invalid(
            "phone_number_mismatch",
            "Meta answered for a different phone number id",
        ));
    }
    let digest = verify_token_digest(input.secrets.verify_token.expose_secret());
    for (kind, value) in [
        (AliasKind::PhoneNumberId, input.phone_number_id.as_str()),
        (AliasKind::Waba, input.waba_id.as_str()),
        (AliasKind::VerifyTokenDigest, digest.as_str()),
    ] {
        if app
            .store
            .tenant_by_alias(kind, value)
            .await?
            .is_some_and(|owner| &owner != tenant)
        {
            return Err(AdminError::AliasTaken);
        }
    }
    let previous = app.store.get_tenant(tenant).await?;
    let stale = match &previous {
        Some(p) => stale_aliases(app, p).await,
        None => Vec::new(),
    };
    let secrets = app.directory.secret_store();
    let staged = secrets
        .stage(
            tenant,
            &input.secrets,
            app.config.tenant_secret_kms_key_id.as_deref(),
        )
        .await?;
    let rec = TenantRecord {
        tenant_id: tenant.clone(),
        phone_number_id: input.phone_number_id,
        waba_id: input.waba_id,
        secret_id: staged.base.clone(),
        display_phone_number: info.display_phone_number,
        verified_name: info.verified_name,
        messages_per_second: input.messages_per_second,
        updated_at: app.clock.now(),
    };
    match app.store.put_tenant_replacing(&rec, &digest, &stale).await {
        Ok(()) => {}
        Err(StoreError::AliasTaken { .. }) => return Err(AdminError::AliasTaken),
        Err(e) => return Err(e.into()),
    }
    secrets.promote(&staged).await?;
    app.directory.invalidate(tenant);
    info!(
        phone_number_id = %rec.phone_number_id,
        waba_id = %rec.waba_id,
        created = previous.is_none(),
        "channel config saved"
    );
    Ok(AdminResponse::json(
        if previous.is_none() { 201 } else { 200 },
        with_ids(
            app,
            &rec,
            json!({
                "quality_rating": info.quality_rating,
                "secrets_picked_up_within_secs": app.config.cache.secret_ttl.as_secs(),
            }),
        ),
    ))
}

/// The aliases the tenant had before: the ids from its configuration and,
/// if its old secret can still be read, its old verify token's digest.
/// Aliases that stay the same are skipped by the store.
async fn stale_aliases(app: &App, previous: &TenantRecord) -> Vec<(AliasKind, String)> {
    let mut stale = vec![
        (
            AliasKind::PhoneNumberId,
            previous.phone_number_id.to_string(),
        ),
        (AliasKind::Waba, previous.waba_id.to_string()),
    ];
    match app
        .directory
        .secret_store()
        .fetch_webhook(&previous.secret_id)
        .await
    {
        Ok(old) => stale.push((
            AliasKind::VerifyTokenDigest,
            verify_token_digest(old.verify_token.expose_secret()),
        )),
        // Without it the old verify-token alias stays; the handshake still
        // compares the token with the current secret, so it cannot pass.
        Err(e) => {
            tracing::warn!(error = %e, "old secret unreadable; its verify-token alias is left")
        }
    }
    stale
}

/// `GET`: what the backend shows on the channel settings page (and `fwa
/// status`): ids, templates, the last webhook, parked alerts, the roster,
/// how many alerts wait for a template's approval (`waiting_alerts`), and
/// the account's limits and standing (`account`).
pub async fn status(app: &App, tenant: &TenantId) -> Result<AdminResponse, AdminError> {
    let rec = configured(app, tenant).await?;
    let templates = app.store.list_templates(tenant).await?;
    let activity = app.store.activity(tenant, app.clock.now()).await?;
    let csms = super::roster::roster(app, tenant).await?;
    let waiting = app.store.count_waiting(tenant).await?;
    let hold = app.store.get_hold(tenant).await?;
    let mut account = serde_json::Map::new();
    for a in crate::store::AccountAspect::ALL {
        account.insert(a.as_str().to_string(), serde_json::Value::Null);
    }
    for (aspect, fact) in app.store.account_facts(tenant).await? {
        let mut v = fact.value;
        v["at"] = json!(fact.at);
        account.insert(aspect.as_str().to_string(), v);
    }
    Ok(AdminResponse::json(
        200,
        with_ids(
            app,
            &rec,
            json!({
                "templates": templates,
                "last_webhook_at": activity.last_webhook_at,
                "dlq": {
                    "parked": activity.parked_in_dlq,
                    "last_parked_at": activity.last_parked_at,
                    "window_days": DLQ_RETENTION_DAYS,
                },
                "csms": csms,
                "waiting_alerts": waiting,
                "sends_held": hold.as_ref().map(sends_held),
                "account": account,
                "graph_api": graph_api(app),
            }),
        ),
    ))
}

/// The Graph API version the functions call, and the warning start-up logs
/// when it is within 90 days of its expiry (`null` otherwise), so `fwa
/// status` shows it to the operator who would miss the log line.
fn graph_api(app: &App) -> serde_json::Value {
    let version = &app.config.graph.version;
    json!({
        "version": version,
        "warning": crate::graph::version_warning(version, app.clock.now()).map(|w| w.to_string()),
    })
}

/// The tenant's send hold, as the status shows it (`null` when its sends
/// are not held): why, since when (unix seconds, like the status's other
/// times), Meta's code and title, and when the next alert goes through to
/// find out whether it has cleared ([`crate::store::SendHold`]).
fn sends_held(hold: &SendHold) -> serde_json::Value {
    json!({
        "reason": hold.reason,
        "since": hold.since,
        "meta_code": hold.meta_code,
        "meta_title": hold.meta_title,
        "detail": hold.detail,
        "probes": hold.probes,
        "next_probe_at": hold.next_probe_at,
    })
}

/// A saved channel's ids and names, which every answer about it starts
/// with, merged with `rest`. Never a secret: the record holds none.
fn with_ids(app: &App, rec: &TenantRecord, rest: serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "tenant_id": rec.tenant_id,
        "phone_number_id": rec.phone_number_id,
        "waba_id": rec.waba_id,
        "display_phone_number": rec.display_phone_number,
        "verified_name": rec.verified_name,
        "messages_per_second": rec.messages_per_second.unwrap_or(app.config.sender.mps_cap),
        "updated_at": rec.updated_at,
    });
    if let (Some(map), serde_json::Value::Object(more)) = (body.as_object_mut(), rest) {
        map.extend(more);
    }
    body
}
