//! Issue 23: a 131047 hand-back whose template send does not finish at
//! once (the template is not approved yet, the send fails transiently or
//! times out, the instance dies) is resumed from where the ledger stands,
//! and the CSM still gets the alert, once.

use std::time::Duration;

use fincelo::sender::message::Control;
use fincelo::store::{LedgerState, SendMode};
use serde_json::json;

use crate::helpers::{csm_number, eventually, send_request, spawn_world, World, FREE_FORM};

/// An alert our table sends free-form (the CSM's window is open there)
/// while Meta's window is closed: Meta accepts the text, then reports
/// 131047 in a `failed` status and the webhook hands the alert back.
async fn enqueue_free_form_meta_refuses(w: &World, csm: &str) -> String {
    w.window_only_in_our_table(csm).await;
    let req = send_request(&w.tenant.tenant_id, csm).text("Globex is at 85%.");
    w.enqueue(&req.json()).await;
    req.key
}

async fn wait_for(
    w: &World,
    key: &str,
    timeout: Duration,
    ok: impl Fn(&fincelo::store::LedgerEntry) -> bool,
) {
    eventually(timeout, || async {
        w.ledger(key).await.is_some_and(|l| ok(&l))
    })
    .await;
}

/// The template went out once after the refused text.
async fn assert_text_then_template(w: &World, csm: &str, key: &str) {
    wait_for(w, key, Duration::from_secs(30), |l| {
        l.state == LedgerState::Sent && l.mode == Some(SendMode::Template)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kinds: Vec<String> = w
        .messages_to(csm)
        .await
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        kinds,
        [FREE_FORM, "template"],
        "the refused free-form alert, then the template once"
    );
}

/// The hand-back meets a template still in review: the alert waits for it,
/// and goes out as the template when Meta approves it.
#[tokio::test]
async fn a_handback_whose_template_is_pending_waits_and_is_sent_on_approval() {
    let w = spawn_world().await;
    w.submit_templates_pending().await;
    let csm = csm_number();
    let key = enqueue_free_form_meta_refuses(&w, &csm).await;
    wait_for(&w, &key, Duration::from_secs(30), |l| {
        l.state == LedgerState::Waiting && l.force_template
    })
    .await;
    w.decide_template("fincelo_usage_opportunity", "APPROVED", None)
        .await;
    assert_text_then_template(&w, &csm, &key).await;
    w.shutdown().await;
}

/// The hand-back's template send fails with a 5xx: the hand-back is
/// retried from state `retry` until the template goes out.
#[tokio::test]
async fn a_handback_whose_template_send_fails_is_retried_until_sent() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    w.meta
        .set_knobs(&json!({"webhook_delay_ms": {"min": 1500, "max": 1500}}))
        .await
        .unwrap();
    let csm = csm_number();
    let key = enqueue_free_form_meta_refuses(&w, &csm).await;
    wait_for(&w, &key, Duration::from_secs(20), |l| {
        l.state == LedgerState::Sent && l.mode == Some(SendMode::FreeForm)
    })
    .await;
    w.meta
        .set_knobs(&json!({"error_5xx_rate": 1.0}))
        .await
        .unwrap();
    wait_for(&w, &key, Duration::from_secs(20), |l| {
        l.state == LedgerState::Retry && l.force_template
    })
    .await;
    w.meta
        .set_knobs(&json!({"error_5xx_rate": 0.0}))
        .await
        .unwrap();
    assert_text_then_template(&w, &csm, &key).await;
    w.shutdown().await;
}

/// The hand-back's template send times out (Meta did not take it): the
/// send is in doubt. The refused text's own statuses carry the same key,
/// but they do not resolve the doubt: the template is sent again, once.
#[tokio::test]
async fn a_handback_whose_template_send_times_out_is_resolved_and_sent() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    w.meta
        .set_knobs(
            &json!({"webhook_delay_ms": {"min": 1500, "max": 1500}, "timeout_hold_ms": 2500}),
        )
        .await
        .unwrap();
    let csm = csm_number();
    let key = enqueue_free_form_meta_refuses(&w, &csm).await;
    wait_for(&w, &key, Duration::from_secs(20), |l| {
        l.state == LedgerState::Sent && l.mode == Some(SendMode::FreeForm)
    })
    .await;
    w.meta
        .set_knobs(&json!({"timeout_rate": 1.0}))
        .await
        .unwrap();
    wait_for(&w, &key, Duration::from_secs(20), |l| {
        l.state == LedgerState::Ambiguous && l.force_template
    })
    .await;
    w.meta
        .set_knobs(&json!({"timeout_rate": 0.0}))
        .await
        .unwrap();
    assert_text_then_template(&w, &csm, &key).await;
    w.shutdown().await;
}

/// The instance that took the hand-back died before it sent: the next
/// delivery of the hand-back finds the key claimed, waits out the lease and
/// the ambiguity delay, and sends the template.
#[tokio::test]
async fn a_handback_whose_instance_died_is_taken_over_and_sent() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85%.");
    w.enqueue(&req.json()).await;
    wait_for(&w, &req.key, Duration::from_secs(20), |l| {
        l.state == LedgerState::Sent
    })
    .await;
    let wamid = w
        .ledger(&req.key)
        .await
        .and_then(|l| l.wamid)
        .expect("wamid");
    // What the dead instance left: the key claimed for the template.
    let key = fincelo::ids::IdempotencyKey::parse(&req.key).unwrap();
    w.stack
        .app
        .store
        .claim_handback(&w.tenant_id, &key, &wamid, "dead-instance", w.now(), 3)
        .await
        .expect("claimed");
    // Later (past its lease and the ambiguity delay), SQS delivers the
    // hand-back again.
    w.advance(Duration::from_secs(10)).await;
    w.stack
        .enqueue(&Control::handback(w.tenant_id.clone(), key, wamid).to_json())
        .await
        .unwrap();
    assert_text_then_template(&w, &csm, &req.key).await;
    w.shutdown().await;
}

/// Meta's edge answers a send with a 502 and its own page, no Graph error
/// body, after Meta accepted the message: the send is in doubt, not failed.
/// The status webhook that follows resolves it, and the alert is not sent
/// again (the sandbox would accept a second copy).
#[tokio::test]
async fn a_502_from_metas_edge_is_resolved_from_the_status_not_resent() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(
            &json!({"edge_failure_rate": 1.0, "edge_failure": {"status": 502, "body": "html"}}),
        )
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85%.");
    w.enqueue(&req.json()).await;
    wait_for(&w, &req.key, Duration::from_secs(30), |l| {
        l.state == LedgerState::Sent
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let msgs = w.messages_to(&csm).await;
    assert_eq!(msgs.len(), 1, "sent once: {msgs:?}");
    assert_eq!(
        w.ledger(&req.key).await.and_then(|l| l.wamid),
        Some(msgs[0].wamid.clone())
    );
    w.shutdown().await;
}
