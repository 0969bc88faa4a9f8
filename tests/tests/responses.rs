//! Issue 19: a CSM's answer to an alert reaches Fincelo as `alert.response`,
//! end to end against the sandbox. A template's quick-reply tap, a reply
//! button inside the window and a quoted reply a week later each resolve to
//! the alert, once, whatever Meta replays; what does not name one of the
//! tenant's alerts (too long, forged, another tenant's, an unknown quote, a
//! stranger's tap) is a plain `csm.message_received`, and the webhook still
//! answers 200.

use std::time::Duration;

use fincelo::store::LedgerState;
use meta_sandbox::{InboundContext, InboundMessage, InboundResult, MessageRecord};
use serde_json::{json, Value};

use crate::helpers::*;

/// Enqueues `req`, waits until it is sent, and returns what Meta received.
pub(crate) async fn sent_alert(w: &World, req: &SendRequestBuilder) -> MessageRecord {
    w.enqueue(&req.json()).await;
    eventually(Duration::from_secs(30), || async {
        w.ledger(&req.key)
            .await
            .is_some_and(|l| l.state == LedgerState::Sent)
    })
    .await;
    w.messages_to_tenant()
        .await
        .into_iter()
        .find(|m| m.biz_opaque_callback_data.as_deref() == Some(req.key.as_str()))
        .expect("Meta received the alert")
}

/// The payload Meta would hand back for the template button labelled `label`.
pub(crate) fn quick_reply(m: &MessageRecord, label: &str) -> String {
    let t = m.template.as_ref().expect("a template alert");
    t.quick_replies
        .iter()
        .find(|q| q.text == label)
        .unwrap_or_else(|| panic!("no {label} button: {:?}", t.quick_replies))
        .payload
        .clone()
}

/// The CSM `from` sends `m` (type, content, context) to the tenant's number.
pub(crate) async fn csm_sends(
    w: &World,
    phone_number_id: &str,
    from: &str,
    mut m: Value,
) -> InboundResult {
    m["phone_number_id"] = json!(phone_number_id);
    m["from"] = json!(from);
    let msg: InboundMessage = serde_json::from_value(m).expect("inbound shape");
    let r = w.meta.inbound_message(&msg).await.expect("inbound");
    assert!(
        r.webhook
            .iter()
            .all(|d| d.delivered && d.status_code == Some(200)),
        "the webhook answers 200: {:?}",
        r.webhook
    );
    r
}

/// A template quick-reply tap on `alert`, quoting it.
pub(crate) fn tap(alert: &MessageRecord, payload: &str, label: &str) -> Value {
    json!({
        "type": "button",
        "button": {"payload": payload, "text": label},
        "context": InboundContext { id: alert.wamid.clone(), from: None },
    })
}

/// Drains events until one `csm.message_received` names each of `ids`.
async fn events_for(w: &World, ids: &[&str]) -> Vec<Value> {
    w.drain_until("EventsQueue", Duration::from_secs(20), |got| {
        ids.iter().all(|id| {
            got.iter()
                .any(|e| e["type"] == "csm.message_received" && e["message_id"] == *id)
        })
    })
    .await
}

fn responses(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "alert.response")
        .collect()
}

/// A template alert carries a payload on each quick reply; the CSM's tap on
/// Acknowledge is published once as `alert.response` naming the alert, the
/// CSM, the action and when, beside the `csm.message_received`; Meta's
/// replay of the same webhook publishes nothing more; the CSM's message is
/// marked read; the timeline shows the response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_tap_is_published_once_as_an_alert_response() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let alert = sent_alert(&w, &req).await;
    assert_eq!(alert.kind, "template");
    let payload = quick_reply(&alert, "Acknowledge");
    assert!(payload.len() <= 256, "{payload}");
    let snooze = quick_reply(&alert, "Snooze 7 days");
    assert_ne!(payload, snooze, "each button names its own action");

    let r = csm_sends(
        &w,
        &w.tenant.phone_number_id,
        &csm,
        tap(&alert, &payload, "Acknowledge"),
    )
    .await;
    let events = events_for(&w, &[&r.message_id]).await;
    let got = responses(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    let e = got[0];
    assert_eq!(e["version"], 1);
    assert_eq!(e["tenant_id"], w.tenant.tenant_id);
    assert_eq!(e["idempotency_key"], req.key);
    assert_eq!(e["wamid"], alert.wamid);
    assert_eq!(e["action"], "acknowledge");
    assert_eq!(e["message_id"], r.message_id);
    assert_eq!(e["csm"]["phone"], csm);
    assert_eq!(e["at"], rfc3339(r.timestamp));
    assert!(e["snooze_until"].is_null() && e["text"].is_null(), "{e}");

    // Meta delivers the same body again: one response, one event.
    let bodies = w
        .meta
        .webhooks(Some("messages"))
        .await
        .expect("webhook log");
    let body = bodies
        .iter()
        .rev()
        .find(|b| b.body.to_string().contains(&r.message_id))
        .expect("the tap's webhook")
        .body
        .to_string();
    assert_eq!(w.post_signed(body.as_bytes()).await.status(), 200);
    let again = w
        .drain_until("EventsQueue", Duration::from_secs(3), |_| false)
        .await;
    assert!(
        responses(&again).is_empty(),
        "a replay publishes nothing: {again:?}"
    );

    // Read receipt, through the sender.
    eventually(Duration::from_secs(20), || async {
        w.meta
            .reads(Some(&w.tenant.phone_number_id))
            .await
            .expect("reads")
            .iter()
            .any(|rd| rd.message_id == r.message_id)
    })
    .await;

    let timeline = w.timeline(&req.key).await;
    let shown: Vec<&Value> = timeline["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .collect();
    assert_eq!(shown.len(), 1, "{timeline}");
    assert_eq!(shown[0]["action"], "acknowledge");
    assert_eq!(shown[0]["csm"]["phone"], csm);
    assert_eq!(shown[0]["at"], rfc3339(r.timestamp));
    w.shutdown().await;
}

/// Inside the window a free-form alert offers three reply buttons with the
/// same payloads; tapping Snooze 3 days publishes a snooze until three days
/// from now on the app's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_button_snoozes_the_alert_for_three_days() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85% of its Pro plan.");
    let alert = sent_alert(&w, &req).await;
    assert_eq!(alert.kind, "interactive");
    let buttons = &alert.interactive.as_ref().expect("buttons").buttons;
    let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(titles, ["Acknowledge", "Snooze 3 days", "Escalate"]);
    let snooze = &buttons[1];

    let before = w.now();
    let r = csm_sends(
        &w,
        &w.tenant.phone_number_id,
        &csm,
        json!({
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": snooze.id, "title": snooze.title}},
            "context": {"id": alert.wamid},
        }),
    )
    .await;
    let events = events_for(&w, &[&r.message_id]).await;
    let got = responses(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["action"], "snooze");
    assert_eq!(got[0]["idempotency_key"], req.key);
    let until = got[0]["snooze_until"].as_str().expect("snooze_until");
    let three_days = 3 * 24 * 3600;
    assert!(
        (before + three_days..=w.now() + three_days)
            .map(rfc3339)
            .any(|t| t == until),
        "{until}"
    );
    w.shutdown().await;
}

/// A week after a template alert, the CSM replies to it quoting it: the
/// reply resolves through the alert's wamid and is published with its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_reply_to_a_week_old_alert_resolves() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let alert = sent_alert(&w, &req).await;
    // Meta's `sent` status carries the key (biz_opaque_callback_data).
    eventually(Duration::from_secs(10), || async {
        w.message_status(&alert.wamid)
            .await
            .is_some_and(|s| s.idempotency_key.is_some())
    })
    .await;
    w.advance(Duration::from_secs(7 * 24 * 3600)).await;

    let r = csm_sends(
        &w,
        &w.tenant.phone_number_id,
        &csm,
        json!({"type": "text", "text": "Called them, all good", "context": {"id": alert.wamid}}),
    )
    .await;
    let events = events_for(&w, &[&r.message_id]).await;
    let got = responses(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["action"], "reply");
    assert_eq!(got[0]["text"], "Called them, all good");
    assert_eq!(got[0]["idempotency_key"], req.key);
    assert_eq!(got[0]["wamid"], alert.wamid);
    w.shutdown().await;
}

/// None of these names an alert of the tenant, so none is a response: a
/// payload longer than Meta allows, a forged one, one of another tenant's
/// alerts tapped on this tenant's number, a quote of a message that is not
/// an alert, and a real payload tapped from a number the alert did not go
/// to (not on the roster). Each is still a `csm.message_received`, and the
/// webhook answers 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_names_no_alert_of_the_tenant_is_no_response() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let alert = sent_alert(&w, &req).await;
    let ack = quick_reply(&alert, "Acknowledge");
    let other = w.add_other_tenant().await;
    let pnid = w.tenant.phone_number_id.clone();

    let mut ids = Vec::new();
    // Too long.
    let long = format!("{ack}{}", "0".repeat(300));
    ids.push(
        csm_sends(&w, &pnid, &csm, tap(&alert, &long, "Acknowledge"))
            .await
            .message_id,
    );
    // Forged: our format, a reference no alert has.
    let forged = format!("fw1.ack.{}", uuid::Uuid::new_v4().simple());
    ids.push(
        csm_sends(&w, &pnid, &csm, tap(&alert, &forged, "Acknowledge"))
            .await
            .message_id,
    );
    // This tenant's payload, tapped on the other tenant's number.
    ids.push(
        csm_sends(
            &w,
            &other.phone_number_id,
            &csm,
            tap(&alert, &ack, "Acknowledge"),
        )
        .await
        .message_id,
    );
    // A quote of a message that is no alert.
    ids.push(
        csm_sends(
            &w,
            &pnid,
            &csm,
            json!({"type": "text", "text": "what is this?", "context": {"id": "wamid.HBgMNOTANALERT0000"}}),
        )
        .await
        .message_id,
    );
    // The real payload, tapped from a number the alert did not go to.
    let stranger = csm_number();
    ids.push(
        csm_sends(&w, &pnid, &stranger, tap(&alert, &ack, "Acknowledge"))
            .await
            .message_id,
    );

    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let events = events_for(&w, &id_refs).await;
    assert!(responses(&events).is_empty(), "{events:?}");
    for id in &ids {
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "csm.message_received" && e["message_id"] == *id),
            "{id} still received: {events:?}"
        );
    }
    assert!(w.timeline(&req.key).await["responses"]
        .as_array()
        .is_some_and(Vec::is_empty));
    w.shutdown().await;
}

/// An alert parked after Meta took it (say Meta refused it later) may still
/// be on the CSM's phone: a tap on it is the CSM's answer all the same, and
/// is published; the timeline shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_on_a_parked_alert_is_still_its_response() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    // A poor account: fincelo_usage_risk, with Acknowledge and Escalate.
    let req = send_request(&w.tenant.tenant_id, &csm).event("usage_threshold", "poor", false);
    let alert = sent_alert(&w, &req).await;
    // Parked since: the state an operator would see after a late refusal.
    w.stack
        .app
        .store
        .client()
        .update_item()
        .table_name(w.stack.app.store.table_name())
        .key(
            "pk",
            attr(&format!("T#{}#SEND#{}", w.tenant.tenant_id, req.key)),
        )
        .key("sk", attr("LEDGER"))
        .update_expression("SET #s = :p, last_error = :e")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":p", attr("parked"))
        .expression_attribute_values(":e", attr("meta:131050 reported after Meta accepted it"))
        .send()
        .await
        .expect("park");
    let payload = quick_reply(&alert, "Escalate");
    let r = csm_sends(
        &w,
        &w.tenant.phone_number_id,
        &csm,
        tap(&alert, &payload, "Escalate"),
    )
    .await;
    let events = events_for(&w, &[&r.message_id]).await;
    let got = responses(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["action"], "escalate");
    let timeline = w.timeline(&req.key).await;
    assert_eq!(timeline["state"], "parked");
    assert_eq!(timeline["responses"][0]["action"], "escalate");
    w.shutdown().await;
}

fn attr(s: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(s.to_string())
}

/// A Meta webhook body holding `csm`'s tap of `payload` on `alert`.
fn tap_body(w: &World, csm: &str, alert: &MessageRecord, payload: &str, id: &str) -> Vec<u8> {
    let wa = csm.trim_start_matches('+');
    let ts = w.now();
    let md =
        json!({"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id});
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "time": ts, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
            "contacts": [{"profile": {"name": "CSM"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": id, "timestamp": ts.to_string(), "type": "button",
                "context": {"from": "15550001111", "id": alert.wamid},
                "button": {"payload": payload, "text": "Acknowledge"}}]}}
    ]}]}))
    .expect("json")
}

fn signed(w: &World, body: &[u8]) -> fincelo::webhook::WebhookRequest {
    let mut headers = http::HeaderMap::new();
    let sig = fincelo::webhook::signature::sign(w.tenant.app_secret.as_bytes(), body);
    headers.insert(
        "x-hub-signature-256",
        http::HeaderValue::from_str(&sig).expect("header"),
    );
    fincelo::webhook::WebhookRequest {
        method: http::Method::POST,
        query: None,
        headers,
        body: bytes::Bytes::from(body.to_vec()),
    }
}

/// The events queue refuses the tap's events: the webhook answers 500 and
/// the response stays owed on its record; Meta's retry a minute later
/// publishes it once, and a further retry publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_whose_publish_failed_is_published_by_metas_retry() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let alert = sent_alert(&w, &req).await;
    w.stack.drain("EventsQueue").await.expect("drain");
    let id = format!("wamid.tap-{}", short_id());
    let body = tap_body(&w, &csm, &alert, &quick_reply(&alert, "Acknowledge"), &id);

    let broken = w.app_with_broken_events_queue();
    let first = fincelo::webhook::handle(&broken, signed(&w, &body)).await;
    assert_eq!(first.status, 500, "the publish failed, so Meta retries");

    w.advance(Duration::from_secs(60)).await;
    for _ in 0..2 {
        let retry = fincelo::webhook::handle(&w.stack.app, signed(&w, &body)).await;
        assert_eq!(retry.status, 200);
    }
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(3), |_| false)
        .await;
    let got = responses(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0]["message_id"], id);
    assert_eq!(got[0]["idempotency_key"], req.key);
    w.shutdown().await;
}

/// With `READ_RECEIPTS=false` the response is published and the CSM's
/// message is left unread at Meta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_can_be_turned_off() {
    let mut opts = WorldOptions::default();
    opts.env.insert("READ_RECEIPTS".into(), "false".into());
    let w = spawn_world_with(opts).await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let alert = sent_alert(&w, &req).await;
    let tap = InboundMessage::tap(&alert, "Acknowledge").expect("button");
    let r = w.meta.inbound_message(&tap).await.expect("inbound");
    let events = events_for(&w, &[&r.message_id]).await;
    assert_eq!(responses(&events).len(), 1, "{events:?}");
    // The sender polls every moment; give a receipt time to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reads = w
        .meta
        .reads(Some(&w.tenant.phone_number_id))
        .await
        .expect("reads");
    assert!(reads.is_empty(), "{reads:?}");
    w.shutdown().await;
}
