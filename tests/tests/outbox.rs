//! Issue 23: an instance that dies between a change's write and its event's
//! publish loses no event. Each change is written with its owed mark
//! (`fincelo::owed`), so the retry of the same change publishes the event.

use fincelo::templates::handler::Action;
use std::time::Duration;

use fincelo::webhook::{handle, WebhookRequest};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;

use crate::helpers::{csm_number, now, short_id, spawn_world, World};

/// An inbound message and a delivery status, in one body.
fn body(w: &World, csm: &str, ts: i64) -> Vec<u8> {
    let wa = csm.trim_start_matches('+');
    let md =
        json!({"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id});
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "time": ts, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
            "contacts": [{"profile": {"name": "CSM"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": format!("wamid.in-{}", short_id()), "timestamp": ts.to_string(), "type": "text", "text": {"body": "on it"}}]}},
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": md,
            "statuses": [{"id": format!("wamid.out-{}", short_id()), "status": "delivered", "timestamp": ts.to_string(), "recipient_id": wa}]}}
    ]}]}))
    .expect("json")
}

fn signed_request(w: &World, body: &[u8]) -> WebhookRequest {
    let mut headers = HeaderMap::new();
    let sig = fincelo::webhook::signature::sign(w.tenant.app_secret.as_bytes(), body);
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sig).expect("header"),
    );
    WebhookRequest {
        method: Method::POST,
        query: None,
        headers,
        body: bytes::Bytes::from(body.to_vec()),
    }
}

/// The webhook applies a body's changes and dies waiting for the events
/// queue. Meta's retry, a minute later, publishes each event once; a
/// further retry publishes nothing.
#[tokio::test]
async fn a_webhook_that_dies_before_its_publish_loses_no_event() {
    let w = spawn_world().await;
    let (dying, _listener) = w.app_whose_queues_hang().await;
    let csm = csm_number();
    let body = body(&w, &csm, now());

    let crashed = tokio::time::timeout(
        Duration::from_secs(3),
        handle(&dying, signed_request(&w, &body)),
    )
    .await;
    assert!(crashed.is_err(), "the handler never got past the publish");
    assert!(w.window(&csm).await.is_some(), "the writes applied");
    assert!(w.stack.drain("EventsQueue").await.unwrap().is_empty());

    w.advance(Duration::from_secs(60)).await;
    for _ in 0..2 {
        let retry = handle(&w.stack.app, signed_request(&w, &body)).await;
        assert_eq!(retry.status, 200);
    }
    let events = w.stack.drain("EventsQueue").await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("csm.message_received"), 1, "{events:#?}");
    assert_eq!(count("message.status_changed"), 1, "{events:#?}");
    assert_eq!(events.len(), 2, "{events:#?}");
    w.shutdown().await;
}

/// The reconcile repairs a template whose approval webhook was missed and
/// dies waiting for the events queue: the next reconcile publishes the
/// owed event once, and the one after publishes nothing.
#[tokio::test]
async fn a_reconcile_that_dies_before_its_publish_loses_no_event() {
    let w = spawn_world().await;
    w.meta
        .set_knobs(&json!({"template_review": "manual"}))
        .await
        .unwrap();
    let (status, body) = w
        .stack
        .invoke_templates(Action::Submit {
            tenant_id: w.tenant_id.clone(),
        })
        .await;
    assert_eq!(status, 200, "{body}");
    w.meta
        .decide_template(&meta_sandbox::TemplateDecision {
            waba_id: w.tenant.waba_id.clone(),
            name: "fincelo_escalation_notify".into(),
            language: "en".into(),
            status: "APPROVED".into(),
            reason: None,
            webhook: Some(false),
        })
        .await
        .unwrap();
    w.stack.drain("EventsQueue").await.unwrap();
    let (dying, _listener) = w.app_whose_queues_hang().await;
    let crashed = tokio::time::timeout(
        Duration::from_secs(3),
        fincelo::templates::submit::reconcile(&dying, &w.tenant_id),
    )
    .await;
    assert!(crashed.is_err(), "the reconcile never got past the publish");
    assert_eq!(
        w.template("fincelo_escalation_notify")
            .await
            .map(|t| t.status),
        Some("APPROVED".into()),
        "the repair applied"
    );

    w.advance(Duration::from_secs(3600)).await;
    let approved = |events: Vec<serde_json::Value>| {
        events
            .iter()
            .filter(|e| e["name"] == "fincelo_escalation_notify" && e["status"] == "APPROVED")
            .count()
    };
    for expected in [1, 0] {
        let (status, body) = w
            .stack
            .invoke_templates(Action::Reconcile {
                tenant_id: w.tenant_id.clone(),
            })
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            approved(w.stack.drain("EventsQueue").await.unwrap()),
            expected
        );
    }
    w.shutdown().await;
}
