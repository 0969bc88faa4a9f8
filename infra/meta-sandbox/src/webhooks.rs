//! Webhooks as Meta sends them: the payloads, the `X-Hub-Signature-256`
//! signature, and delivery with bounded retries in background tasks.
//!
//! Shapes follow Meta's examples (`fixtures/meta/webhook-examples/`
//! `status_delivered`, `template_status_approved`) and the spec's
//! `WebhookPayload` / `StatusMessageValue` / `Statuses` schemas. The signature
//! is Meta's: `sha256=` + lowercase hex HMAC-SHA256 of the exact body bytes,
//! keyed with the app secret. Meta retries failed deliveries for up to 7 days;
//! here the tries are bounded by the `webhook_max_attempts` knob with doubling
//! back-off from `webhook_retry_base_ms`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::errors::MetaError;
use crate::identity::{self, User};
use crate::knobs::{MsRange, Progression};
use crate::model::{DeliveryOutcome, MessageRecord, TemplateRecord, WebhookLogEntry};
use crate::state::{AppState, Tenant};
use crate::template_events::{self, StatusUpdate};
use crate::versions;

/// `sha256=<hex>` of `body` under `secret`, as in Meta's `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn envelope(waba_id: &str, field: &str, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{ "value": value, "field": field }]
        }]
    })
}

fn metadata(tenant: &Tenant) -> Value {
    json!({
        "display_phone_number": tenant.display_phone_number(),
        "phone_number_id": tenant.spec.phone_number_id,
    })
}

/// Who a message went to, when the sandbox knows the user: status webhooks
/// then carry Meta's 2026 identity fields.
#[derive(Debug, Clone)]
pub struct StatusIdentity {
    pub user: User,
    /// Whether Meta's phone-number rules let the webhook show the phone.
    pub phone_shown: bool,
}

/// One status webhook (`sent`, `delivered`, `read` or `failed`), stamped
/// `now_s` (unix seconds on the sandbox's clock).
///
/// Identity (Meta's BSUID document, "Status messages webhooks"): for a known
/// user, `sent`/`delivered`/`read` carry a `contacts` block (`profile.name`,
/// `username` from `delivered` on, `wa_id` when shown, `user_id`,
/// `parent_user_id`) and the status carries `recipient_user_id` (and
/// `recipient_parent_user_id`); `failed` has no `contacts`, and no
/// `recipient_user_id` when the message went to a phone number.
/// `recipient_id` is the phone, present when sent to a phone number or when
/// Meta may show it. `pricing` goes with `sent` and `delivered`; the
/// `conversation` object only for Graph versions before v24.
pub fn status_payload(
    tenant: &Tenant,
    msg: &MessageRecord,
    status: &str,
    error: Option<&MetaError>,
    now_s: i64,
    who: Option<&StatusIdentity>,
) -> Value {
    let to_phone = msg.recipient.is_none();
    let show_phone = to_phone || who.is_some_and(|w| w.phone_shown);
    let failed = status == "failed";
    let mut st = json!({
        "id": msg.wamid,
        "status": status,
        "timestamp": now_s.to_string(),
    });
    if show_phone && !msg.wa_id.is_empty() {
        st["recipient_id"] = json!(msg.wa_id);
    }
    let user = who.map(|w| &w.user);
    if !(failed && to_phone) {
        if let Some(u) = user.and_then(|u| u.spec.user_id.as_ref()) {
            st["recipient_user_id"] = json!(u);
        }
        if let Some(p) = user.and_then(|u| u.spec.parent_user_id.as_ref()) {
            st["recipient_parent_user_id"] = json!(p);
        }
    }
    if matches!(status, "sent" | "delivered") {
        if let Some(p) = &msg.pricing {
            if versions::major_of(&msg.graph_version)
                .is_some_and(|m| m < versions::NO_CONVERSATION_FROM_MAJOR)
            {
                let conv_id =
                    hex::encode(&msg.wamid.as_bytes()[msg.wamid.len().saturating_sub(16)..]);
                let mut conversation = json!({"id": conv_id, "origin": {"type": p.category}});
                if status == "sent" {
                    conversation["expiration_timestamp"] = json!((now_s + 24 * 3600).to_string());
                }
                st["conversation"] = conversation;
            }
            st["pricing"] = json!(p);
        }
    }
    if let Some(e) = error {
        st["errors"] = json!([e.webhook_error()]);
    }
    if let Some(cb) = &msg.biz_opaque_callback_data {
        st["biz_opaque_callback_data"] = json!(cb);
    }
    let mut value =
        json!({"messaging_product": "whatsapp", "metadata": metadata(tenant), "statuses": [st]});
    if let Some(u) = user.filter(|u| !failed && u.spec.user_id.is_some()) {
        value["contacts"] = json!([identity::contact(u, show_phone, status != "sent")]);
    }
    envelope(&tenant.spec.waba_id, "messages", value)
}

/// An inbound `messages` webhook: `contacts` and one message object, as
/// built by [`crate::inbound`].
pub fn inbound_payload(tenant: &Tenant, contact: Value, message: Value) -> Value {
    envelope(
        &tenant.spec.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(tenant),
            "contacts": [contact],
            "messages": [message]
        }),
    )
}

/// A `messages` webhook of one system message (no `contacts`: Meta's system
/// messages reference says they carry none).
pub fn system_payload(tenant: &Tenant, message: Value) -> Value {
    envelope(
        &tenant.spec.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(tenant),
            "messages": [message]
        }),
    )
}

/// A webhook of `field` for `tenant` whose value has Meta's `metadata`
/// (`user_id_update`).
pub fn phone_payload(tenant: &Tenant, field: &str, mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = metadata(tenant);
    envelope(&tenant.spec.waba_id, field, value)
}

/// An account-level webhook (`phone_number_quality_update`,
/// `business_capability_update`, `account_update`): the value as given, the
/// entry stamped with `time`.
pub fn account_payload(waba_id: &str, field: &str, value: Value, now_s: i64) -> Value {
    let mut body = envelope(waba_id, field, value);
    body["entry"][0]["time"] = json!(now_s);
    body
}

/// A `message_template_status_update` webhook, as Meta's
/// `template_status_approved` example (with `time` on the entry, `now_s`).
pub fn template_status_payload(t: &TemplateRecord, update: &StatusUpdate, now_s: i64) -> Value {
    let mut body = envelope(
        &t.waba_id,
        "message_template_status_update",
        template_events::webhook_value(t, update),
    );
    body["entry"][0]["time"] = json!(now_s);
    body
}

fn field_of(body: &Value) -> String {
    body["entry"][0]["changes"][0]["field"]
        .as_str()
        .unwrap_or("messages")
        .to_string()
}

fn draw(state: &AppState, range: MsRange) -> Duration {
    if range.max == 0 {
        return Duration::ZERO;
    }
    let mut store = state.lock();
    Duration::from_millis(store.rng.random_range(range.min..=range.max))
}

/// POSTs one signed body with retries; logs it and counts it. A
/// `webhook_duplicate_rate` hit posts it once more.
pub async fn deliver(state: &AppState, url: &str, secret: &str, body: &Value) -> DeliveryOutcome {
    let duplicate = {
        let mut store = state.lock();
        let rate = store.knobs.webhook_duplicate_rate;
        rate > 0.0 && store.rng.random_bool(rate.clamp(0.0, 1.0))
    };
    let outcome = deliver_once(state, url, secret, body, false).await;
    if duplicate {
        state.lock().stats.webhooks.duplicated += 1;
        deliver_once(state, url, secret, body, true).await;
    }
    outcome
}

async fn deliver_once(
    state: &AppState,
    url: &str,
    secret: &str,
    body: &Value,
    duplicate: bool,
) -> DeliveryOutcome {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let signature = sign(secret, &bytes);
    let (max_attempts, base_ms) = {
        let s = state.lock();
        (
            s.knobs.webhook_max_attempts.max(1),
            s.knobs.webhook_retry_base_ms,
        )
    };
    let mut attempts = 0;
    let mut status_code = None;
    let mut error = None;
    let mut delivered = false;
    while attempts < max_attempts && !state.closed.load(Ordering::Relaxed) {
        if attempts > 0 {
            let backoff = base_ms.saturating_mul(1 << (attempts - 1).min(10));
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
        attempts += 1;
        let sent = state
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", &signature)
            .header("User-Agent", "facebookexternalua")
            .body(bytes.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                status_code = Some(resp.status().as_u16());
                if resp.status().is_success() {
                    delivered = true;
                    error = None;
                    break;
                }
                error = Some(format!("HTTP {}", resp.status().as_u16()));
            }
            Err(e) => error = Some(e.to_string()),
        }
        tracing::debug!(url, attempts, error = ?error, "webhook attempt failed");
    }
    let mut store = state.lock();
    if delivered {
        store.stats.webhooks.delivered += 1;
    } else {
        store.stats.webhooks.failed += 1;
        tracing::warn!(url, attempts, "webhook delivery gave up");
    }
    store.stats.webhooks.retries += u64::from(attempts.saturating_sub(1));
    let seq = store.webhooks.len() as u64 + 1;
    store.webhooks.push(WebhookLogEntry {
        seq,
        url: url.to_string(),
        field: field_of(body),
        body: body.clone(),
        delivered,
        attempts,
        status_code,
        duplicate,
    });
    DeliveryOutcome {
        url: url.to_string(),
        delivered,
        attempts,
        status_code,
        error,
    }
}

/// Sends an accepted message's status webhooks in a background task, in
/// progression order (or shuffled under `webhook_reorder`), or a single
/// `failed` status carrying `error`. A `delivered` status counts the
/// message's pricing in the stats (once, whatever the webhook's fate).
pub fn spawn_statuses(
    state: AppState,
    tenant: Tenant,
    msg: MessageRecord,
    error: Option<MetaError>,
    who: Option<StatusIdentity>,
) {
    tokio::spawn(async move {
        let (statuses, reorder, delay) = {
            let s = state.lock();
            (
                s.knobs.status_progression.clone(),
                s.knobs.webhook_reorder,
                s.knobs.webhook_delay_ms,
            )
        };
        let mut names: Vec<&'static str> = match &error {
            Some(_) => vec!["failed"],
            None => statuses.iter().map(|p: &Progression| p.as_str()).collect(),
        };
        if reorder && names.len() > 1 {
            let mut store = state.lock();
            let first = names.clone();
            // Shuffle until the order actually changes, so "reordered" is observable.
            for _ in 0..8 {
                names.shuffle(&mut store.rng);
                if names != first {
                    break;
                }
            }
        }
        for name in names {
            let d = draw(&state, delay);
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            if name == "delivered" {
                if let Some(p) = &msg.pricing {
                    *state
                        .lock()
                        .stats
                        .pricing
                        .entry(msg.phone_number_id.clone())
                        .or_default()
                        .entry(p.category.clone())
                        .or_default()
                        .entry(p.pricing_type.clone())
                        .or_default() += 1;
                }
            }
            let body = status_payload(
                &tenant,
                &msg,
                name,
                error.as_ref(),
                state.now_s(),
                who.as_ref(),
            );
            deliver(
                &state,
                &tenant.spec.webhook_url,
                &tenant.spec.app_secret,
                &body,
            )
            .await;
        }
    });
}

/// Sends a template status webhook to each distinct webhook of the WABA's tenants.
pub async fn send_template_status(
    state: &AppState,
    t: &TemplateRecord,
    update: &StatusUpdate,
) -> Vec<DeliveryOutcome> {
    let body = template_status_payload(t, update, state.now_s());
    send_to_waba(state, &t.waba_id, &body).await
}

/// Posts `body` once to each distinct webhook (URL and secret) of the WABA's tenants.
pub async fn send_to_waba(state: &AppState, waba_id: &str, body: &Value) -> Vec<DeliveryOutcome> {
    let tenants = state.lock().tenants_of_waba(waba_id);
    let mut seen = Vec::new();
    let mut outcomes = Vec::new();
    for tenant in tenants {
        let key = (
            tenant.spec.webhook_url.clone(),
            tenant.spec.app_secret.clone(),
        );
        if seen.contains(&key) {
            continue;
        }
        outcomes.push(deliver(state, &key.0, &key.1, body).await);
        seen.push(key);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_lowercase_hex_hmac_sha256() {
        // RFC 4231-style known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            sign("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
