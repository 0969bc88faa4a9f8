//! Issues 4 and 8: the public webhook URL under garbage and attack. Every
//! hostile request gets its documented status, nothing panics, and nothing
//! is written or published; one tenant's signed body never touches another's
//! data.

use std::collections::BTreeMap;

use crate::helpers::now;
use bytes::Bytes;
use fincelo::phone::E164;
use fincelo::store::{StatusChange, TemplateChangeAt, TemplateStatusChange};
use fincelo::webhook::signature::sign;
use fincelo::webhook::{handle, WebhookRequest};
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::{csm_number, short_id, spawn_world, World};

fn request(body: Vec<u8>, signature: Option<String>) -> WebhookRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(sig) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
        headers.insert("x-hub-signature-256", sig);
    }
    WebhookRequest {
        method: Method::POST,
        query: None,
        headers,
        body: Bytes::from(body),
    }
}

async fn post(w: &World, body: Vec<u8>, signature: Option<String>) -> u16 {
    handle(&w.stack.app, request(body, signature)).await.status
}

fn signed(w: &World, body: &[u8]) -> Option<String> {
    Some(sign(w.tenant.app_secret.as_bytes(), body))
}

/// A Meta-shaped body for this tenant: an inbound message, a status and a
/// template update in one.
fn meta_body(w: &World, csm: &str, ts: i64) -> Value {
    let wa = csm.trim_start_matches('+');
    let md =
        json!({"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id});
    json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "time": ts, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
            "contacts": [{"profile": {"name": "CSM"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": format!("wamid.in-{}", short_id()), "timestamp": ts.to_string(), "type": "text", "text": {"body": "on it"}}]}},
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
            "statuses": [{"id": format!("wamid.out-{}", short_id()), "status": "delivered", "timestamp": ts, "recipient_id": wa,
                "biz_opaque_callback_data": "alert-1"}]}},
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1234567890_u64,
            "message_template_name": "fincelo_usage_risk", "message_template_language": "en", "reason": "NONE"}}
    ]}]})
}

/// Refused requests, each with the status the handler documents; after all
/// of them the table and the events queue are exactly as before.
#[tokio::test]
async fn hostile_bodies_get_their_documented_status_and_write_nothing() {
    let w = spawn_world().await;
    let other = w.add_other_tenant().await;
    let csm = csm_number();
    let good = meta_body(&w, &csm, now()).to_string().into_bytes();
    let before = w.item_count().await;

    let truncated = good[..good.len() / 2].to_vec();
    let utf16: Vec<u8> = String::from_utf8(good.clone())
        .unwrap()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut latin1 = good.clone();
    let at = latin1.iter().position(|&b| b == b'o').unwrap();
    latin1[at] = 0xF6; // "ö" in Latin-1: not UTF-8
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let nested_in_meta = {
        let mut v = meta_body(&w, &csm, now());
        let mut deep = json!("x");
        for _ in 0..200 {
            deep = json!({ "a": deep });
        }
        v["entry"][0]["changes"][0]["value"]["extra"] = deep;
        serde_json::to_vec(&v).unwrap()
    };
    let hex = sign(w.tenant.app_secret.as_bytes(), &good);
    let short_sig = hex[..hex.len() - 1].to_string();
    let long_sig = format!("{hex}0");
    let sha1_style = hex.replacen("sha256=", "sha1=", 1);
    let for_other = Some(sign(other.app_secret.as_bytes(), &good));

    let cases: Vec<(&str, Vec<u8>, Option<String>, u16)> = vec![
        (
            "truncated JSON, signed",
            truncated.clone(),
            signed(&w, &truncated),
            400,
        ),
        (
            "UTF-16 body, signed",
            utf16.clone(),
            signed(&w, &utf16),
            400,
        ),
        (
            "Latin-1 byte in the body, signed",
            latin1.clone(),
            signed(&w, &latin1),
            400,
        ),
        (
            "100,000 nested arrays, signed",
            nested.clone(),
            signed(&w, &nested),
            400,
        ),
        (
            "a body nested 200 deep, signed",
            nested_in_meta.clone(),
            signed(&w, &nested_in_meta),
            400,
        ),
        ("signature missing", good.clone(), None, 401),
        (
            "signature one hex digit short",
            good.clone(),
            Some(short_sig),
            401,
        ),
        (
            "signature one hex digit long",
            good.clone(),
            Some(long_sig),
            401,
        ),
        (
            "signature with another algorithm's prefix",
            good.clone(),
            Some(sha1_style),
            401,
        ),
        ("signature empty", good.clone(), Some(String::new()), 401),
        (
            "signed with another tenant's app secret",
            good.clone(),
            for_other,
            401,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, body, sig, expected) in cases {
        let got = post(&w, body, sig).await;
        if got != expected {
            wrong.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(w.item_count().await, before, "a refused request wrote");
    assert!(w.stack.drain("EventsQueue").await.unwrap().is_empty());
    // The same body, correctly signed, is accepted: the refusals were the
    // signatures' and encodings' doing, not the body's.
    assert_eq!(post(&w, good.clone(), signed(&w, &good)).await, 200);
    assert!(w.item_count().await > before);
    w.shutdown().await;
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("whatsapp_business_account"),
            Just("messages"),
            Just("statuses"),
            Just("text"),
            Just("failed"),
            Just("read"),
            Just("APPROVED")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}",
                    Just("entry".to_string()),
                    Just("changes".to_string()),
                    Just("value".to_string()),
                    Just("id".to_string()),
                    Just("timestamp".to_string()),
                    Just("errors".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers to every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// The handler under arbitrary input: arbitrary bytes and arbitrary JSON
/// (with no signature, a garbage one, or a correct one) are refused with 400
/// or 401 and write nothing; Meta-shaped bodies of this tenant with one
/// node replaced by arbitrary JSON, correctly signed, get 200 or 400 (401
/// only when the replaced node held the tenant's ids; never 500). Nothing
/// panics.
#[test]
fn the_handler_withstands_arbitrary_bodies() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let w = rt.block_on(spawn_world());
    let before = rt.block_on(w.item_count());
    let config = || Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    };

    let garbage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
    ];
    let signature_mode = 0u8..4;
    TestRunner::new(config())
        .run(
            &(garbage, signature_mode, "[0-9a-f]{64}"),
            |(body, mode, hex)| {
                let sig = match mode {
                    0 => None,
                    1 => Some(format!("sha256={hex}")),
                    2 => signed(&w, &body),
                    _ => Some(String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned()),
                };
                let status = rt.block_on(post(&w, body.clone(), sig));
                prop_assert!(
                    status == 400 || status == 401,
                    "status {} for {:?}",
                    status,
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(rt.block_on(w.item_count()), before, "a refused body wrote");
    assert!(rt
        .block_on(w.stack.drain("EventsQueue"))
        .unwrap()
        .is_empty());

    let csm = csm_number();
    let base = meta_body(&w, &csm, now());
    let mut paths = Vec::new();
    pointers(&base, String::new(), &mut paths);
    let by_status: std::sync::Mutex<BTreeMap<u16, u32>> = Default::default();
    TestRunner::new(config())
        .run(
            &(any::<prop::sample::Index>(), arb_json()),
            |(at, replacement)| {
                let mut body = base.clone();
                let path = at.get(&paths);
                if let Some(node) = body.pointer_mut(path) {
                    *node = replacement;
                }
                // Replacing a node that holds the tenant's ids may leave a body
                // that names no tenant (or an unknown one): 401 is then right.
                let id_paths = ["/entry/0/id".to_string()].into_iter().chain(
                    (0..2).map(|i| format!("/entry/0/changes/{i}/value/metadata/phone_number_id")),
                );
                let names_tenant_still =
                    !id_paths.into_iter().any(|p| p.starts_with(path.as_str()));
                let bytes = serde_json::to_vec(&body).unwrap();
                let status = rt.block_on(post(&w, bytes.clone(), signed(&w, &bytes)));
                *by_status.lock().unwrap().entry(status).or_default() += 1;
                prop_assert!(
                    status == 200 || status == 400 || (status == 401 && !names_tenant_still),
                    "status {} at {} for {}",
                    status,
                    path,
                    body
                );
                Ok(())
            },
        )
        .unwrap();
    let by_status = by_status.into_inner().unwrap();
    assert!(
        by_status.get(&200).copied().unwrap_or(0) > 20,
        "the mutations should mostly reach the handler's writes: {by_status:?}"
    );
    rt.block_on(w.shutdown());
}

/// Tenant A's correctly signed body names B's wamid, B's CSM and B's
/// template: it changes only A's records; B's window, status and template
/// stay as they were.
#[tokio::test]
async fn one_tenants_webhook_cannot_touch_anothers_records() {
    let w = spawn_world().await;
    let b = w.add_other_tenant().await;
    let b_id = fincelo::ids::TenantId::parse(&b.tenant_id).unwrap();
    let store = &w.stack.app.store;
    let csm = csm_number();
    let e164 = E164::parse(&csm).unwrap();
    let then = now() - 3600;
    // B's state: a window from an hour ago, a sent message, a pending template.
    store
        .open_window(
            &b_id,
            &fincelo::identity::Identity::Number(e164.clone()),
            then,
            "wamid.b-inbound",
        )
        .await
        .unwrap();
    let b_wamid = format!("wamid.b-{}", short_id());
    store
        .apply_status(&StatusChange {
            tenant: &b_id,
            wamid: &b_wamid,
            status: "sent",
            rank: 1,
            timestamp: then,
            recipient_id: csm.trim_start_matches('+'),
            errors_json: None,
            callback_key: None,
            now: then,
        })
        .await
        .unwrap();
    store
        .apply_template_change(
            &b_id,
            &TemplateChangeAt {
                name: "fincelo_usage_risk",
                language: "en",
                template_id: None,
                change: &TemplateStatusChange::Status {
                    status: "PENDING",
                    reason: None,
                },
                at: then,
                event_owed_at: None,
            },
        )
        .await
        .unwrap();
    let b_window = store
        .get_window(&b_id, &fincelo::identity::Identity::Number(e164.clone()))
        .await
        .unwrap();
    let b_status = store.get_message_status(&b_id, &b_wamid).await.unwrap();
    let b_template = store
        .get_template(&b_id, "fincelo_usage_risk", "en")
        .await
        .unwrap();

    // A's body: the same CSM writes now, B's wamid is read, the template is approved.
    let mut body = meta_body(&w, &csm, now());
    body["entry"][0]["changes"][1]["value"]["statuses"][0]["id"] = json!(b_wamid);
    body["entry"][0]["changes"][1]["value"]["statuses"][0]["status"] = json!("read");
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(post(&w, bytes.clone(), signed(&w, &bytes)).await, 200);

    // A got its own records...
    assert!(w
        .window(&csm)
        .await
        .is_some_and(|win| win.is_open(now(), 0)));
    assert_eq!(
        w.message_status(&b_wamid).await.map(|s| s.status),
        Some("read".to_string())
    );
    assert_eq!(
        w.template("fincelo_usage_risk").await.map(|t| t.status),
        Some("APPROVED".to_string())
    );
    // ...and B's are untouched.
    assert_eq!(
        store
            .get_window(&b_id, &fincelo::identity::Identity::Number(e164.clone()))
            .await
            .unwrap(),
        b_window
    );
    assert_eq!(
        store.get_message_status(&b_id, &b_wamid).await.unwrap(),
        b_status
    );
    assert_eq!(
        store
            .get_template(&b_id, "fincelo_usage_risk", "en")
            .await
            .unwrap(),
        b_template
    );
    w.shutdown().await;
}

/// The events queue refuses the publish after a body's writes applied: the
/// answer is 500, and Meta's retry of the same body publishes each of its
/// events once (the inbound message, the status, the template update),
/// although every write was already done (each carries its owed mark); a
/// third delivery publishes nothing.
#[tokio::test]
async fn events_lost_to_a_failed_publish_come_back_once_with_metas_retry() {
    let w = spawn_world().await;
    let broken = w.app_with_broken_events_queue();
    let csm = csm_number();
    let body = serde_json::to_vec(&meta_body(&w, &csm, now())).unwrap();

    let first = handle(&broken, request(body.clone(), signed(&w, &body))).await;
    assert_eq!(first.status, 500, "Meta must retry");
    assert!(w.window(&csm).await.is_some(), "the writes applied");
    assert!(w.stack.drain("EventsQueue").await.unwrap().is_empty());

    // A retry at once may meet the first delivery still publishing: 500,
    // retried later. Meta's retries come later still.
    assert_eq!(post(&w, body.clone(), signed(&w, &body)).await, 500);
    w.advance(std::time::Duration::from_secs(31)).await;
    assert_eq!(post(&w, body.clone(), signed(&w, &body)).await, 200);
    assert_eq!(post(&w, body.clone(), signed(&w, &body)).await, 200);
    let events = w.stack.drain("EventsQueue").await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("csm.message_received"), 1, "{events:#?}");
    assert_eq!(count("message.status_changed"), 1, "{events:#?}");
    assert_eq!(count("template.status_changed"), 1, "{events:#?}");
    assert_eq!(events.len(), 3, "{events:#?}");
    let status = events
        .iter()
        .find(|e| e["type"] == "message.status_changed")
        .unwrap();
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["idempotency_key"], "alert-1");
    let template = events
        .iter()
        .find(|e| e["type"] == "template.status_changed")
        .unwrap();
    assert_eq!(template["status"], "APPROVED");
    w.shutdown().await;
}

/// An owed status event is superseded by a later status: `delivered` is
/// refused by the events queue, `read` arrives and is published, and the
/// retry of `delivered` then publishes nothing (statuses only move
/// forward, on the queue as in the record).
#[tokio::test]
async fn an_owed_status_event_is_superseded_by_a_later_status() {
    let w = spawn_world().await;
    let broken = w.app_with_broken_events_queue();
    let csm = csm_number();
    let wamid = format!("wamid.out-{}", short_id());
    let status_body = |status: &str, ts: i64| {
        let md = json!({"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id});
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "time": ts, "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
                "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": csm.trim_start_matches('+')}]}}
        ]}]}))
        .unwrap()
    };
    let ts = now();
    let delivered = status_body("delivered", ts);
    let read = status_body("read", ts + 5);

    let first = handle(&broken, request(delivered.clone(), signed(&w, &delivered))).await;
    assert_eq!(first.status, 500);
    assert_eq!(post(&w, read.clone(), signed(&w, &read)).await, 200);
    assert_eq!(
        post(&w, delivered.clone(), signed(&w, &delivered)).await,
        200
    );
    let events = w.stack.drain("EventsQueue").await.unwrap();
    let statuses: Vec<&str> = events.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses, ["read"], "{events:#?}");
    w.shutdown().await;
}

/// Issue 23: ids are validated before anything looks them up, and a body
/// over the caps is refused however it is signed. An id over 2 KB (which
/// DynamoDB refuses as a key: a 500 on AWS before) names no tenant, 401; beside a
/// valid WABA id it is only skipped, 200, and its change is not applied;
/// 1001 entries are more than Meta sends in one body, 400. No status is
/// recorded and no event published for any of them.
#[tokio::test]
async fn ids_are_validated_and_bodies_over_the_caps_refused_before_any_lookup() {
    let w = spawn_world().await;
    let long = "1".repeat(2100);
    let wamid = format!("wamid.out-{}", short_id());
    let long_waba =
        json!({"object": "whatsapp_business_account", "entry": [{"id": long, "changes": []}]});
    let long_pnid = json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": long},
            "statuses": [{"id": wamid, "status": "delivered", "timestamp": now(), "recipient_id": "15550001111"}]}}]}]});
    let entries: Vec<Value> = (0..=fincelo::webhook::payload::MAX_PER_LIST_KIND)
        .map(|_| json!({"id": w.tenant.waba_id, "changes": []}))
        .collect();
    let over_cap = json!({"object": "whatsapp_business_account", "entry": entries});
    let cases = [
        ("an entry id over 2 KB", long_waba, 401),
        (
            "a phone number id over 2 KB beside the WABA id",
            long_pnid,
            200,
        ),
        ("1001 entries", over_cap, 400),
    ];
    let mut wrong = Vec::new();
    for (name, body, expected) in cases {
        let bytes = serde_json::to_vec(&body).unwrap();
        let got = post(&w, bytes.clone(), signed(&w, &bytes)).await;
        if got != expected {
            wrong.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        w.message_status(&wamid).await,
        None,
        "the skipped change was applied"
    );
    assert!(w.stack.drain("EventsQueue").await.unwrap().is_empty());
    w.shutdown().await;
}
