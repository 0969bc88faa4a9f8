//! Issue 17: alerts enqueued while their templates wait for Meta's approval
//! (24 to 72 hours) are held outside the send queue and then sent, parked
//! or kept, on a clock that lets days pass in seconds.

use std::collections::HashMap;
use std::time::Duration;

use fincelo::store::LedgerState;
use serde_json::{json, Value};

use crate::helpers::{
    csm_number, eventually, send_request, short_id, spawn_world, spawn_world_with, World,
    WorldOptions, FREE_FORM,
};

const HOUR: u64 = 3600;
/// The template the default request (usage threshold, good health) uses.
const TEMPLATE: &str = "fincelo_usage_opportunity";

/// Waits until every key's ledger is in `state`.
async fn wait_all(w: &World, keys: &[String], state: LedgerState, timeout: Duration) {
    eventually(timeout, || async {
        for k in keys {
            if w.ledger(k).await.map(|l| l.state) != Some(state) {
                return false;
            }
        }
        true
    })
    .await;
}

/// The tenant's waiting alerts, as the status API counts them.
async fn waiting_count(w: &World) -> u64 {
    w.stack
        .app
        .store
        .count_waiting(&w.tenant_id)
        .await
        .expect("count")
}

/// Everything on the send DLQ now: (reason attribute, body).
async fn dlq(w: &World) -> Vec<(Option<String>, Value)> {
    let sqs = w.stack.app.queues.client();
    let url = w.stack.resources.queue("SendDeadLetterQueue");
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("reason"))
                .and_then(|v| v.string_value().map(str::to_string));
            let body = serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
            out.push((reason, body));
        }
    }
}

/// The `send.outcome` events published so far, per key, in order.
async fn outcomes(w: &World, seen: &mut Vec<Value>) -> HashMap<String, Vec<String>> {
    seen.extend(w.stack.drain("EventsQueue").await.expect("drain"));
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for e in seen.iter().filter(|e| e["type"] == "send.outcome") {
        by_key
            .entry(e["idempotency_key"].as_str().unwrap_or_default().into())
            .or_default()
            .push(e["outcome"].as_str().unwrap_or_default().into());
    }
    by_key
}

/// Enqueues `n` alerts without `deliver_by` (the 72-hour wait limit
/// applies), one per CSM, with keys that sort in enqueue order.
async fn enqueue_alerts(w: &World, n: usize, text: Option<&str>) -> Vec<String> {
    let run = short_id();
    let mut keys = Vec::new();
    for i in 0..n {
        let mut req = send_request(&w.tenant.tenant_id, &csm_number())
            .no_deliver_by()
            .key(&format!("wait-{run}-{i:04}"));
        if let Some(t) = text {
            req = req.text(t);
        }
        w.enqueue(&req.json()).await;
        keys.push(req.key);
    }
    keys
}

/// Templates go in on day one; Meta approves at hour 30. The alerts
/// enqueued meanwhile leave the send queue (nothing is received again and
/// again), wait, and are then sent once each, in the order they were
/// enqueued (ten at a time: a chunk goes out after the one before it).
#[tokio::test]
async fn alerts_waiting_for_approval_at_hour_30_are_sent_once_in_enqueue_order() {
    let w = spawn_world().await;
    w.submit_templates_pending().await;
    let keys = enqueue_alerts(&w, 25, None).await;
    wait_all(&w, &keys, LedgerState::Waiting, Duration::from_secs(60)).await;
    // The same alert enqueued again while it waits is held once.
    let again = w
        .ledger(&keys[0])
        .await
        .expect("ledger")
        .request_json
        .expect("request");
    w.stack.enqueue(&again).await.expect("enqueue");
    eventually(Duration::from_secs(20), || async {
        w.queue_depth("SendQueue").await == 0
    })
    .await;
    assert_eq!(waiting_count(&w).await, 25, "one waiting item per alert");

    w.advance(Duration::from_secs(30 * HOUR)).await;
    w.decide_template(TEMPLATE, "APPROVED", None).await;
    wait_all(&w, &keys, LedgerState::Sent, Duration::from_secs(60)).await;

    let sent: Vec<String> = w
        .meta
        .messages(Some(&w.tenant.phone_number_id), None)
        .await
        .expect("messages")
        .into_iter()
        .filter_map(|m| m.biz_opaque_callback_data)
        .collect();
    for k in &keys {
        assert_eq!(sent.iter().filter(|s| *s == k).count(), 1, "{k} sent once");
    }
    let position = |k: &String| sent.iter().position(|s| s == k).expect("sent");
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate() {
            if i / 10 < j / 10 {
                assert!(
                    position(a) < position(b),
                    "{a} was enqueued a chunk before {b}"
                );
            }
        }
    }
    eventually(Duration::from_secs(10), || async {
        waiting_count(&w).await == 0
    })
    .await;
    let mut seen = Vec::new();
    let by_key = outcomes(&w, &mut seen).await;
    for k in &keys {
        let got = by_key.get(k).cloned().unwrap_or_default();
        assert!(
            got.contains(&"waiting".to_string()) && got.contains(&"sent".to_string()),
            "{k}: {got:?}"
        );
    }
    assert!(dlq(&w).await.is_empty(), "nothing parked");
    w.shutdown().await;
}

/// Meta rejects the template at hour 20: every alert waiting for it is
/// parked at once with reason `template_rejected` and Meta's reason, in the
/// DLQ, the ledger, the tenant's parked list and the outcome events.
#[tokio::test]
async fn a_template_rejected_at_hour_20_parks_its_waiting_alerts_with_metas_reason() {
    let w = spawn_world().await;
    w.submit_templates_pending().await;
    let keys = enqueue_alerts(&w, 3, None).await;
    wait_all(&w, &keys, LedgerState::Waiting, Duration::from_secs(30)).await;

    w.advance(Duration::from_secs(20 * HOUR)).await;
    w.decide_template(TEMPLATE, "REJECTED", Some("INVALID_FORMAT"))
        .await;
    wait_all(&w, &keys, LedgerState::Parked, Duration::from_secs(30)).await;

    let parked = dlq(&w).await;
    assert_eq!(parked.len(), 3, "{parked:?}");
    for (reason, body) in &parked {
        assert_eq!(reason.as_deref(), Some("template_rejected"));
        assert_eq!(body["parked_reason"]["reason"], "template_rejected");
        let detail = body["parked_reason"]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("REJECTED") && detail.contains("INVALID_FORMAT"),
            "{detail}"
        );
    }
    let listed = w
        .stack
        .app
        .store
        .list_parked(&w.tenant_id)
        .await
        .expect("parked");
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|p| p.reason == "template_rejected"));
    let mut seen = Vec::new();
    let by_key = outcomes(&w, &mut seen).await;
    for k in &keys {
        assert_eq!(
            by_key.get(k).and_then(|o| o.last()).map(String::as_str),
            Some("parked")
        );
    }
    assert!(
        w.messages_to_tenant().await.is_empty(),
        "nothing reached Meta"
    );
    assert_eq!(waiting_count(&w).await, 0);
    w.shutdown().await;
}

/// A template Meta never approves: an alert with a `deliver_by` 10 hours out
/// is parked once that passes, one without at hour 72 (the wait limit), each
/// with reason `template_not_approved`. No message reaches the DLQ without a
/// reason, and none is left on the send queue.
#[tokio::test]
async fn alerts_never_approved_are_parked_at_their_deliver_by_or_at_hour_72() {
    let w = spawn_world().await;
    w.submit_templates_pending().await;
    let late = send_request(&w.tenant.tenant_id, &csm_number()).no_deliver_by();
    let soon = send_request(&w.tenant.tenant_id, &csm_number()).deliver_by(w.now() + 10 * 3600);
    w.enqueue(&late.json()).await;
    w.enqueue(&soon.json()).await;
    let both = [late.key.clone(), soon.key.clone()];
    wait_all(&w, &both, LedgerState::Waiting, Duration::from_secs(30)).await;

    w.advance(Duration::from_secs(11 * HOUR)).await;
    wait_all(&w, &both[1..], LedgerState::Parked, Duration::from_secs(30)).await;
    assert_eq!(
        w.ledger(&late.key).await.map(|l| l.state),
        Some(LedgerState::Waiting)
    );

    w.advance(Duration::from_secs(61 * HOUR + 60)).await;
    wait_all(&w, &both, LedgerState::Parked, Duration::from_secs(30)).await;

    let parked = dlq(&w).await;
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(
        parked.iter().all(
            |(reason, body)| reason.as_deref() == Some("template_not_approved")
                && body["parked_reason"]["reason"] == "template_not_approved"
        ),
        "{parked:?}"
    );
    // The release passes' own messages drain; nothing is left to be
    // received again and again.
    eventually(Duration::from_secs(20), || async {
        w.queue_depth("SendQueue").await == 0
    })
    .await;
    assert!(w.messages_to_tenant().await.is_empty());
    w.shutdown().await;
}

/// 500 alerts wait for one template; its approval releases them all, each
/// once, and Meta never sees more than the per-number cap in any second.
#[tokio::test]
async fn five_hundred_waiting_alerts_are_released_within_the_per_number_cap() {
    let cap = 40;
    let mut opts = WorldOptions::default();
    opts.env.insert("SEND_MPS_CAP".into(), cap.to_string());
    let w = spawn_world_with(opts).await;
    w.submit_templates_pending().await;
    let keys = enqueue_many(&w, 500).await;
    wait_all(&w, &keys, LedgerState::Waiting, Duration::from_secs(180)).await;
    eventually(Duration::from_secs(20), || async {
        w.queue_depth("SendQueue").await == 0
    })
    .await;

    w.decide_template(TEMPLATE, "APPROVED", None).await;
    wait_all(&w, &keys, LedgerState::Sent, Duration::from_secs(240)).await;

    let stats = w.meta.stats().await.expect("stats");
    let ours = &stats.per_phone_number[&w.tenant.phone_number_id];
    assert_eq!(ours.accepted, 500, "each alert once");
    assert!(
        ours.max_per_rolling_second <= cap,
        "{} messages in one second; the cap is {cap}",
        ours.max_per_rolling_second
    );
    w.shutdown().await;
}

/// A waiting alert whose CSM writes meanwhile goes out as free-form text at
/// once, and the template's later approval sends nothing more.
#[tokio::test]
async fn a_waiting_alert_whose_csm_writes_is_sent_free_form_once() {
    let w = spawn_world().await;
    w.submit_templates_pending().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm)
        .no_deliver_by()
        .text("Globex is at 85% of its Pro plan.");
    w.enqueue(&req.json()).await;
    wait_all(
        &w,
        std::slice::from_ref(&req.key),
        LedgerState::Waiting,
        Duration::from_secs(30),
    )
    .await;

    w.advance(Duration::from_secs(2 * HOUR)).await;
    w.csm_writes_at(&csm, Some(w.now())).await;
    wait_all(
        &w,
        std::slice::from_ref(&req.key),
        LedgerState::Sent,
        Duration::from_secs(30),
    )
    .await;
    let ledger = w.ledger(&req.key).await.expect("ledger");
    assert_eq!(ledger.mode, Some(fincelo::store::SendMode::FreeForm));

    w.decide_template(TEMPLATE, "APPROVED", None).await;
    w.stack.sweep().await.expect("sweep");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let msgs = w.messages_to(&csm).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].kind, FREE_FORM);
    assert_eq!(waiting_count(&w).await, 0);
    w.shutdown().await;
}

/// Puts `n` alerts on the send queue ten per request, with keys that sort
/// in enqueue order.
async fn enqueue_many(w: &World, n: usize) -> Vec<String> {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let run = short_id();
    let keys: Vec<String> = (0..n).map(|i| format!("many-{run}-{i:04}")).collect();
    for chunk in keys.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let body = send_request(&w.tenant.tenant_id, &csm_number())
                    .no_deliver_by()
                    .key(k)
                    .json();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body.to_string())
                    .build()
                    .expect("entry")
            })
            .collect();
        w.stack
            .app
            .queues
            .client()
            .send_message_batch()
            .queue_url(w.stack.resources.queue("SendQueue"))
            .set_entries(Some(entries))
            .send()
            .await
            .expect("batch");
    }
    keys
}

/// A request whose parameters do not fit the template it would be sent as
/// (too few, a line break) is parked at once, even inside the CSM's window
/// where it would have gone free-form first; so is an invalid number. Each
/// shows in its timeline, parked and why, and never reaches Meta.
#[tokio::test]
async fn requests_that_cannot_be_sent_are_parked_at_once_and_show_in_their_timeline() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let tid = w.tenant.tenant_id.clone();
    let cases = [
        (
            send_request(&tid, &csm)
                .text("in the window")
                .params(&["Globex"])
                .json(),
            "invalid_request:template_params",
        ),
        (
            send_request(&tid, &csm)
                .text("in the window")
                .params(&["Globex", "85", "Pro\nplan", "good"])
                .json(),
            "invalid_request:template_params",
        ),
        (
            {
                let mut r = send_request(&tid, &csm).json();
                r["recipient"]["phone"] = json!("98765");
                r
            },
            "invalid_request:invalid_phone",
        ),
    ];
    for (req, _) in &cases {
        w.enqueue(req).await;
    }
    for (req, reason) in &cases {
        let key = req["idempotency_key"].as_str().expect("key");
        eventually(Duration::from_secs(20), || async {
            w.ledger(key)
                .await
                .is_some_and(|l| l.state == LedgerState::Parked)
        })
        .await;
        let timeline = w.timeline(key).await;
        assert_eq!(timeline["state"], "parked", "{timeline}");
        let parked = timeline["events"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["event"] == "parked"))
            .unwrap_or_else(|| panic!("{timeline}"));
        assert!(
            parked["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(reason)),
            "{parked}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.messages_to(&csm).await.is_empty(), "nothing reached Meta");
    let parked = dlq(&w).await;
    assert_eq!(parked.len(), 3);
    for (reason, body) in parked {
        let detail = body["parked_reason"]["detail"].as_str().unwrap_or_default();
        assert!(reason.is_some());
        assert!(
            !detail.contains("98765") && !detail.contains("Globex"),
            "no value in {detail}"
        );
    }
    w.shutdown().await;
}

/// An instance that saw a template in review seconds ago still believes it
/// (its cache), but the template was approved meanwhile: the next alert is
/// sent, not held until the sweep. The record decides, not the cache.
#[tokio::test]
async fn an_approval_is_seen_at_once_by_an_instance_that_cached_the_review() {
    use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
    let w = crate::helpers::spawn_world_without_sender().await;
    w.submit_templates_pending().await;
    let instance = w.stack.sender.sibling();
    let batch = |req: &Value| {
        let mut rec = SqsMessage::default();
        rec.message_id = Some(short_id());
        rec.body = Some(req.to_string());
        let mut event = SqsEvent::default();
        event.records = vec![rec];
        event
    };
    let first = send_request(&w.tenant.tenant_id, &csm_number()).no_deliver_by();
    instance.handle_batch(batch(&first.json())).await;
    assert_eq!(
        w.ledger(&first.key).await.map(|l| l.state),
        Some(LedgerState::Waiting)
    );

    w.decide_template(TEMPLATE, "APPROVED", None).await;
    let second = send_request(&w.tenant.tenant_id, &csm_number()).no_deliver_by();
    instance.handle_batch(batch(&second.json())).await;
    assert_eq!(
        w.ledger(&second.key).await.map(|l| l.state),
        Some(LedgerState::Sent)
    );
    w.shutdown().await;
}
