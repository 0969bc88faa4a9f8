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
use crate::knobs::{MsRange, Progression};
use crate::model::{DeliveryOutcome, MessageRecord, TemplateRecord, WebhookLogEntry};
use crate::state::{AppState, Tenant};
use crate::template_events::{self, StatusUpdate};

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

/// One status webhook (`sent`, `delivered`, `read` or `failed`), stamped
/// `now_s` (unix seconds on the sandbox's clock).
pub fn status_payload(
    tenant: &Tenant,
    msg: &MessageRecord,
    status: &str,
    error: Option<&MetaError>,
    now_s: i64,
) -> Value {
    let mut st = json!({
        "id": msg.wamid,
        "status": status,
        "timestamp": now_s.to_string(),
        "recipient_id": msg.wa_id,
    });
    let category = if msg.kind == "template" {
        "utility"
    } else {
        "service"
    };
    // Meta sends conversation and pricing with sent and delivered, not with read.
    if matches!(status, "sent" | "delivered") {
        let conv_id = hex::encode(&msg.wamid.as_bytes()[msg.wamid.len().saturating_sub(16)..]);
        let mut conversation = json!({"id": conv_id, "origin": {"type": category}});
        if status == "sent" {
            conversation["expiration_timestamp"] = json!((now_s + 24 * 3600).to_string());
        }
        st["conversation"] = conversation;
        st["pricing"] = json!({"billable": true, "pricing_model": "PMP", "category": category});
    }
    if let Some(e) = error {
        st["errors"] = json!([e.webhook_error()]);
    }
    if let Some(cb) = &msg.biz_opaque_callback_data {
        st["biz_opaque_callback_data"] = json!(cb);
    }
    envelope(
        &tenant.spec.waba_id,
        "messages",
        json!({"messaging_product": "whatsapp", "metadata": metadata(tenant), "statuses": [st]}),
    )
}

/// An inbound text message webhook.
pub fn inbound_payload(
    tenant: &Tenant,
    from: &str,
    name: &str,
    id: &str,
    ts: i64,
    text: &str,
) -> Value {
    envelope(
        &tenant.spec.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(tenant),
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{
                "from": from,
                "id": id,
                "timestamp": ts.to_string(),
                "type": "text",
                "text": {"body": text}
            }]
        }),
    )
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
/// `failed` status carrying `error`.
pub fn spawn_statuses(
    state: AppState,
    tenant: Tenant,
    msg: MessageRecord,
    error: Option<MetaError>,
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
            let body = status_payload(&tenant, &msg, name, error.as_ref(), state.now_s());
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
