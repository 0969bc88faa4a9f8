//! Issue 5: the sender, through the send queue, against the Meta sandbox.

use std::time::Duration;

use crate::helpers::now;
use fincelo::ids::IdempotencyKey;
use fincelo::store::{ClaimOutcome, LedgerState};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{
    body_of, csm_number, eventually, send_request, spawn_world, SendRequestBuilder, World,
    FREE_FORM, TEMPLATE_ROWS,
};

async fn wait_for_messages(
    w: &World,
    csm: &str,
    n: usize,
    timeout: Duration,
) -> Vec<meta_sandbox::MessageRecord> {
    eventually(timeout, || async { w.messages_to(csm).await.len() >= n }).await;
    w.messages_to(csm).await
}

async fn wait_for_state(w: &World, key: &str, state: LedgerState, timeout: Duration) {
    eventually(timeout, || async {
        w.ledger(key).await.is_some_and(|l| l.state == state)
    })
    .await;
}

fn parked_reasons(dlq: &[Value], key: &str) -> Vec<String> {
    dlq.iter()
        .filter(|m| m["request"].as_str().is_some_and(|r| r.contains(key)))
        .map(|m| {
            m["parked_reason"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Inside the CSM's window, a request with text goes out as free-form text carrying the idempotency key as callback data.
#[tokio::test]
async fn in_window_request_is_sent_as_free_form_text() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85% of its Pro plan.");
    w.enqueue(&req.json()).await;
    let msgs = wait_for_messages(&w, &csm, 1, Duration::from_secs(20)).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, FREE_FORM);
    assert_eq!(
        body_of(&msgs[0]).as_deref(),
        Some("Globex is at 85% of its Pro plan.")
    );
    assert_eq!(
        msgs[0].biz_opaque_callback_data.as_deref(),
        Some(req.key.as_str())
    );
    wait_for_state(&w, &req.key, LedgerState::Sent, Duration::from_secs(10)).await;
    assert_eq!(
        w.ledger(&req.key).await.unwrap().wamid.as_deref(),
        Some(msgs[0].wamid.as_str())
    );
    w.shutdown().await;
}

/// Outside the window each row of the seed's table picks its template (premium wins for an at-risk overdue invoice).
#[tokio::test]
async fn out_of_window_requests_use_the_template_the_table_chooses() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let rows = TEMPLATE_ROWS;
    let mut cases = Vec::new();
    for (event, health, premium, template) in rows {
        let csm = csm_number();
        let req = send_request(&w.tenant.tenant_id, &csm)
            .event(event, health, premium)
            .text("would be free-form if the window were open");
        w.enqueue(&req.json()).await;
        cases.push((csm, req, template));
    }
    for (csm, req, template) in &cases {
        let msgs = wait_for_messages(&w, csm, 1, Duration::from_secs(20)).await;
        assert_eq!(msgs.len(), 1, "{template}");
        assert_eq!(msgs[0].kind, "template", "{template}");
        let t = msgs[0].template.as_ref().unwrap();
        assert_eq!(
            t.name, *template,
            "{} / {} / premium={}",
            req.event, req.health, req.premium
        );
        assert_eq!(t.parameters, req.params);
        assert_eq!(
            msgs[0].biz_opaque_callback_data.as_deref(),
            Some(req.key.as_str())
        );
    }
    w.shutdown().await;
}

/// A template that was never submitted is not sent; the alert waits for it
/// (state `waiting`), off the send queue.
#[tokio::test]
async fn unapproved_template_is_not_sent() {
    let w = spawn_world().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Waiting, Duration::from_secs(15)).await;
    eventually(Duration::from_secs(10), || async {
        w.queue_depth("SendQueue").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.messages_to(&csm).await.is_empty());
    assert!(w.meta.stats().await.unwrap().accepted == 0);
    w.shutdown().await;
}

/// The same idempotency key enqueued twice yields one WhatsApp message.
#[tokio::test]
async fn a_duplicated_request_is_sent_once() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("once only");
    w.enqueue(&req.json()).await;
    w.enqueue(&req.json()).await;
    wait_for_messages(&w, &csm, 1, Duration::from_secs(20)).await;
    wait_for_state(&w, &req.key, LedgerState::Sent, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 1);
    w.shutdown().await;
}

/// An invalid request is parked in the DLQ at once with an `invalid_request:` reason, and never retried.
#[tokio::test]
async fn invalid_request_is_parked_with_its_reason() {
    let w = spawn_world().await;
    let mut bad = send_request(&w.tenant.tenant_id, "9876543210").json();
    bad["recipient"]["phone"] = json!("9876543210");
    let key = bad["idempotency_key"].as_str().unwrap().to_string();
    w.enqueue(&bad).await;
    let dlq = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(15), |d| {
            !parked_reasons(d, &key).is_empty()
        })
        .await;
    let reasons = parked_reasons(&dlq, &key);
    assert_eq!(reasons.len(), 1, "{dlq:#?}");
    assert!(reasons[0].starts_with("invalid_request:"), "{}", reasons[0]);
    // Never retried: no second copy, nothing sent.
    let later = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(4), |_| false)
        .await;
    assert!(
        parked_reasons(&later, &key).is_empty(),
        "parked twice: {later:#?}"
    );
    assert_eq!(w.meta.stats().await.unwrap().accepted, 0);
    w.shutdown().await;
}

/// A request whose `deliver_by` has passed is recorded as expired and not sent.
#[tokio::test]
async fn stale_request_is_expired_not_sent() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm)
        .text("too late")
        .deliver_by(now() - 60);
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Expired, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.messages_to(&csm).await.is_empty());
    w.shutdown().await;
}

/// Meta's 131026 (not a WhatsApp number) parks the alert with reason `undeliverable_number`.
#[tokio::test]
async fn undeliverable_number_is_parked() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    w.meta
        .set_knobs(
            &json!({"undeliverable": [csm.trim_start_matches('+')], "window_error_mode": "sync"}),
        )
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm);
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Parked, Duration::from_secs(20)).await;
    let dlq = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(10), |d| {
            !parked_reasons(d, &req.key).is_empty()
        })
        .await;
    assert_eq!(
        parked_reasons(&dlq, &req.key),
        vec!["undeliverable_number".to_string()]
    );
    assert!(w.messages_to(&csm).await.is_empty());
    let flagged = w
        .stack
        .app
        .store
        .is_undeliverable(&w.tenant_id, &fincelo::phone::E164::parse(&csm).unwrap())
        .await
        .unwrap();
    assert!(flagged, "the CSM's number is flagged undeliverable");
    w.shutdown().await;
}

/// While Meta answers 5xx the alert waits in `retry`; once Meta recovers it is sent exactly once.
#[tokio::test]
async fn transient_5xx_is_retried_until_sent_once() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(&json!({"error_5xx_rate": 1.0}))
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm).text("after the outage");
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Retry, Duration::from_secs(15)).await;
    assert!(w.messages_to(&csm).await.is_empty());
    w.meta
        .set_knobs(&json!({"error_5xx_rate": 0.0}))
        .await
        .unwrap();
    wait_for_messages(&w, &csm, 1, Duration::from_secs(40)).await;
    wait_for_state(&w, &req.key, LedgerState::Sent, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 1);
    w.shutdown().await;
}

/// A lost response makes the send ambiguous; the status webhook echoing the key resolves it to `sent` without a second message.
#[tokio::test]
async fn lost_response_is_resolved_from_the_status_webhook() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(&json!({"response_lost_rate": 1.0, "timeout_hold_ms": 4000}))
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm).text("did it arrive?");
    w.enqueue(&req.json()).await;
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(20), |e| {
            e.iter().any(|e| {
                e["type"] == "send.outcome"
                    && e["idempotency_key"] == req.key.as_str()
                    && e["outcome"] == "ambiguous"
            })
        })
        .await;
    assert!(
        events.iter().any(|e| e["type"] == "send.outcome"
            && e["idempotency_key"] == req.key.as_str()
            && e["outcome"] == "ambiguous"),
        "went ambiguous first: {events:#?}"
    );
    wait_for_state(&w, &req.key, LedgerState::Sent, Duration::from_secs(30)).await;
    let msgs = w.messages_to(&csm).await;
    assert_eq!(msgs.len(), 1, "no second message");
    assert!(msgs[0].response_lost);
    assert_eq!(
        w.ledger(&req.key).await.unwrap().wamid.as_deref(),
        Some(msgs[0].wamid.as_str())
    );
    w.shutdown().await;
}

/// A send whose answer was lost and for which no status ever arrives is
/// judged lost at `decide_at`; if the alert is stale by then it is expired,
/// not sent a second time.
#[tokio::test]
async fn a_stale_alert_in_doubt_is_expired_not_resent() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(
            &json!({"response_lost_rate": 1.0, "timeout_hold_ms": 4000, "status_progression": []}),
        )
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm)
        .text("in doubt")
        .deliver_by(now() + 3);
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Expired, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let msgs = w.messages_to(&csm).await;
    assert_eq!(msgs.len(), 1, "the lost send only: {msgs:?}");
    assert!(msgs[0].response_lost);
    w.shutdown().await;
}

/// What a sender instance that died right after its claim leaves behind:
/// the key claimed, under a claim token no running instance holds, with
/// its lease running. The request itself is still on the queue (the dead
/// instance never acknowledged it); the test delivers it.
async fn claim_as_a_dead_instance(w: &World, req: &SendRequestBuilder) {
    let key = IdempotencyKey::parse(req.key.as_str()).expect("key");
    let lease = w.stack.app.config.sender.claim_lease.as_secs() as i64;
    let claimed = w
        .stack
        .app
        .store
        .claim(
            &w.tenant_id,
            &key,
            &req.json().to_string(),
            "claim-of-a-dead-instance",
            w.now(),
            lease,
        )
        .await
        .expect("claim written");
    assert!(
        matches!(claimed, ClaimOutcome::Claimed(_)),
        "the dead instance held the key"
    );
}

/// What a sender instance that died after Meta accepted its send, before
/// recording it, leaves behind: its claim, and the message at Meta carrying
/// the key as callback data (as the sender writes it), whose statuses Meta
/// then reports to the webhook.
async fn send_as_a_dead_instance(w: &World, req: &SendRequestBuilder) {
    claim_as_a_dead_instance(w, req).await;
    let message = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": req.phone,
        "type": "text",
        "text": {"preview_url": false, "body": req.text.as_deref().unwrap_or_default()},
        "biz_opaque_callback_data": req.key,
    });
    w.stack
        .app
        .graph
        .send_message(
            &w.tenant.phone_number_id,
            &SecretString::from(w.tenant.access_token.clone()),
            &message,
        )
        .await
        .expect("Meta accepted the dead instance's send");
}

/// A world whose CSM wrote (a window is open) and a text alert to them.
async fn an_alert_inside_the_window() -> (World, String, SendRequestBuilder) {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("survives a crash");
    (w, csm, req)
}

/// Delivers the request of a dead instance to the running senders and
/// waits until it is recorded as sent, with exactly one message at Meta.
async fn delivered_after_a_crash(w: &World, csm: &str, req: &SendRequestBuilder) {
    w.enqueue(&req.json()).await;
    wait_for_state(w, &req.key, LedgerState::Sent, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.messages_to(csm).await.len(), 1, "exactly one message");
}

/// An instance dying between claim and send: the lease runs out, another attempt sends, exactly one message.
#[tokio::test]
async fn crash_after_claim_still_sends_exactly_once() {
    let (w, csm, req) = an_alert_inside_the_window().await;
    claim_as_a_dead_instance(&w, &req).await;
    delivered_after_a_crash(&w, &csm, &req).await;
    // The abandoned claim was taken over once its lease and the ambiguity delay ran out.
    assert_eq!(w.ledger(&req.key).await.unwrap().attempts, 2);
    w.shutdown().await;
}

/// An instance dying after Meta accepted: the next attempt finds the status by key and does not resend.
#[tokio::test]
async fn crash_after_send_does_not_send_twice() {
    let (w, csm, req) = an_alert_inside_the_window().await;
    send_as_a_dead_instance(&w, &req).await;
    delivered_after_a_crash(&w, &csm, &req).await;
    // Resolved from Meta's status webhook, not by a second attempt.
    assert_eq!(w.ledger(&req.key).await.unwrap().attempts, 1);
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(1), |_| false)
        .await;
    assert!(
        events.iter().any(|e| e["type"] == "send.outcome"
            && e["idempotency_key"] == req.key.as_str()
            && e["reason"] == "resolved from status webhook"),
        "{events:#?}"
    );
    w.shutdown().await;
}
