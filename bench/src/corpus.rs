//! The intake corpus: realistic webhook bodies, shaped like Meta's examples in
//! `fixtures/meta/webhook-examples` (compact JSON, non-ASCII escaped as
//! `\uXXXX` as Meta sends it), each signed with the tenant's app secret.
//!
//! The same bytes go to the Rust intake, pywa and whatsapp-api-js (written
//! once to `corpus.json`). The mix leans on statuses, as real traffic does
//! (every sent message brings `sent`, `delivered` and `read`):
//! 10 inbound text messages, 16 status bodies, 8 template updates, 6 mixed.

use serde_json::{json, Value};

/// The tenant every body belongs to (WABA id and phone number id as in
/// Meta's examples); the benchmark's world registers the same ids.
pub const WABA_ID: &str = "102290129340398";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const DISPLAY_NUMBER: &str = "15550783881";
pub const APP_SECRET: &str = "bench-app-secret-6f1c2d9e0b7a4c35";

#[derive(Debug, Clone, serde::Serialize)]
pub struct Body {
    pub kind: &'static str,
    pub body: String,
    pub signature: String,
}

/// Compact JSON with every non-ASCII character escaped, as Meta sends it.
pub fn meta_json(v: &Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn envelope(changes: Vec<Value>) -> Value {
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": WABA_ID, "changes": changes}]})
}

fn metadata() -> Value {
    json!({"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID})
}

fn csm(i: usize) -> String {
    format!("9198765{:05}", 10_000 + i)
}

/// A business-scoped user id, which Meta sends beside (or instead of) the
/// phone number since its 2026 username rollout (pywa 4.5 requires it).
fn bsuid(i: usize) -> String {
    format!("IN.13491208655302{:06}", 100_000 + i)
}

fn wamid(i: usize) -> String {
    format!("wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQkVOQ0g{i:012}QTE2NjhFRTg5AA==")
}

const TEXTS: [&str; 5] = [
    "On it, calling Globex now",
    "Seen. Raising with finance today — will update by 5pm 👍",
    "Can you send me the invoice number?",
    "Escalating to the account director; ETA 30 min",
    "Thanks! Müller GmbH renewal is on track ✅",
];

/// An inbound text message (opens the CSM's window).
pub fn text_message(i: usize, ts: i64) -> Value {
    envelope(vec![json!({"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": metadata(),
        "contacts": [{"profile": {"name": "Priya Sharma"}, "wa_id": csm(i), "user_id": bsuid(i)}],
        "messages": [{"from": csm(i), "id": wamid(100_000 + i), "timestamp": ts.to_string(),
                      "text": {"body": TEXTS[i % TEXTS.len()]}, "type": "text"}]}})])
}

/// One status object for message `i`.
pub fn status(i: usize, st: &str, ts: i64) -> Value {
    let mut s = json!({"id": wamid(i), "status": st, "timestamp": ts.to_string(),
        "recipient_id": csm(i % 50), "recipient_user_id": bsuid(i % 50),
        "biz_opaque_callback_data": format!("usage-acct{i}-2026-11-25")});
    if st != "read" {
        s["conversation"] = json!({"id": format!("{:032x}", i as u128 * 7919),
            "expiration_timestamp": (ts + 86_400).to_string(), "origin": {"type": "utility"}});
        s["pricing"] = json!({"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"});
    }
    if st == "failed" {
        s["errors"] = json!([{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
            "message": "This message was not delivered to maintain healthy ecosystem engagement.",
            "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]);
    }
    s
}

/// A body with the given statuses.
pub fn status_body(statuses: Vec<Value>) -> Value {
    let contacts: Vec<Value> = statuses
        .iter()
        .map(|s| json!({"wa_id": s["recipient_id"], "user_id": s["recipient_user_id"]}))
        .collect();
    envelope(vec![json!({"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": metadata(), "contacts": contacts, "statuses": statuses}})])
}

fn template_change(i: usize, ts: i64) -> Value {
    let all = fincelo::templates::catalog::Catalog::builtin().all();
    let name = all[i % all.len()].name.as_str();
    let id = 1_689_556_908_129_832u64 + i as u64;
    match i % 4 {
        0 => json!({"field": "message_template_status_update", "value": {"event": "APPROVED",
            "message_template_id": id, "message_template_name": name, "message_template_language": "en",
            "reason": "NONE", "message_template_category": "UTILITY"}}),
        1 => json!({"field": "message_template_status_update", "value": {"event": "REJECTED",
            "message_template_id": id, "message_template_name": name, "message_template_language": "en",
            "reason": "INVALID_FORMAT", "message_template_category": "UTILITY"}}),
        2 => json!({"field": "message_template_quality_update", "value": {
            "previous_quality_score": "GREEN", "new_quality_score": "YELLOW",
            "message_template_id": id, "message_template_name": name, "message_template_language": "en"}}),
        _ => json!({"field": "template_category_update", "value": {"message_template_id": id,
            "message_template_name": name, "message_template_language": "en",
            "previous_category": "UTILITY", "new_category": "MARKETING", "correct_category": "MARKETING",
            "category_update_timestamp": ts}}),
    }
}

fn template_body(i: usize, ts: i64) -> Value {
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": WABA_ID, "time": ts, "changes": [template_change(i, ts)]}]})
}

/// A body carrying several kinds at once: a message and statuses in one
/// change, and a second entry with a template update.
fn mixed_body(i: usize, ts: i64) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [
        {"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [{"profile": {"name": "Arjun Mehta"}, "wa_id": csm(40 + i), "user_id": bsuid(40 + i)}],
            "messages": [{"from": csm(40 + i), "id": wamid(200_000 + i), "timestamp": ts.to_string(),
                          "text": {"body": TEXTS[(i + 2) % TEXTS.len()]}, "type": "text"}],
            "statuses": [status(300 + i, "delivered", ts), status(301 + i, "read", ts + 1)]}}]},
        {"id": WABA_ID, "time": ts, "changes": [template_change(i + 1, ts)]}]})
}

/// The corpus, deterministic (same bytes every run).
pub fn corpus() -> Vec<Body> {
    let ts = 1_764_075_000i64;
    let mut out = Vec::new();
    let mut push = |kind: &'static str, v: Value| {
        let body = meta_json(&v);
        let signature = fincelo::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
        out.push(Body {
            kind,
            body,
            signature,
        });
    };
    for i in 0..10 {
        push("text", text_message(i, ts + i as i64));
    }
    for i in 0..16 {
        let st = ["sent", "delivered", "read", "delivered"][i % 4];
        let st = if i == 7 { "failed" } else { st };
        let statuses = if i % 5 == 4 {
            vec![
                status(i, st, ts + i as i64),
                status(i + 1, "delivered", ts + i as i64),
            ]
        } else {
            vec![status(i, st, ts + i as i64)]
        };
        push("statuses", status_body(statuses));
    }
    for i in 0..8 {
        push("template", template_body(i, ts + i as i64));
    }
    for i in 0..6 {
        push("mixed", mixed_body(i, ts + i as i64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped_as_meta_does() {
        assert_eq!(
            meta_json(&json!({"t": "ü✅👍"})),
            r#"{"t":"\u00fc\u2705\ud83d\udc4d"}"#
        );
    }
}
