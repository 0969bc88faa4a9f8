//! Status and inbound webhooks: shape, order, signature, retries.

use std::time::Duration;

use crate::helpers::*;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

fn expected_signature(secret: &str, raw: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(raw);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An accepted message yields signed sent → delivered → read, echoing biz_opaque_callback_data.
#[tokio::test]
async fn accepted_message_gets_signed_sent_delivered_read() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    let (_, body) = app.send(&text_message(CSM, "x")).await;
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let got = app.receiver.wait_for(4).await; // inbound + 3 statuses
    for r in &got {
        assert_eq!(
            r.signature.as_deref(),
            Some(expected_signature(&app.tenant.app_secret, &r.raw).as_str())
        );
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.body["object"], "whatsapp_business_account");
        assert_eq!(r.body["entry"][0]["id"], app.tenant.waba_id.as_str());
    }
    let statuses = app.receiver.statuses();
    let order: Vec<_> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, ["sent", "delivered", "read"]);
    for s in &statuses {
        assert_eq!(s["id"], wamid.as_str());
        assert_eq!(s["recipient_id"], "919876543210");
        assert_eq!(s["biz_opaque_callback_data"], "alert-42");
        assert!(s["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
    }
    let md = &got[1].body["entry"][0]["changes"][0]["value"]["metadata"];
    assert_eq!(md["phone_number_id"], app.tenant.phone_number_id.as_str());
}

/// A signature made with another secret does not match (the test would catch a wrong key).
#[tokio::test]
async fn signature_depends_on_the_app_secret() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    let r = &app.receiver.wait_for(1).await[0];
    assert_ne!(
        r.signature.as_deref(),
        Some(expected_signature("other", &r.raw).as_str())
    );
}

/// Inbound simulation posts Meta's messages webhook and reports the delivery.
#[tokio::test]
async fn inbound_posts_a_messages_webhook() {
    let app = spawn_app().await;
    let res = app
        .control
        .inbound(&meta_sandbox::InboundRequest {
            phone_number_id: app.tenant.phone_number_id.clone(),
            from: CSM.into(),
            text: "ack".into(),
            timestamp: None,
            profile_name: Some("Asha".into()),
        })
        .await
        .unwrap();
    assert!(res.webhook[0].delivered);
    let v = &app.receiver.all()[0].body["entry"][0]["changes"][0]["value"];
    assert_eq!(v["messages"][0]["id"], res.message_id.as_str());
    assert_eq!(v["messages"][0]["from"], "919876543210");
    assert_eq!(v["messages"][0]["text"]["body"], "ack");
    assert_eq!(v["contacts"][0]["profile"]["name"], "Asha");
}

/// A receiver failing twice still gets the webhook; stats count retries; a dead URL counts as failed.
#[tokio::test]
async fn failed_deliveries_are_retried_then_counted() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"webhook_retry_base_ms": 10, "webhook_max_attempts": 3}))
        .await
        .unwrap();
    *app.receiver.state.fail_first.lock().unwrap() = 2;
    app.open_window(CSM).await;
    assert_eq!(app.receiver.all().len(), 1);
    let stats = app.control.stats().await.unwrap();
    assert_eq!((stats.webhooks.delivered, stats.webhooks.retries), (1, 2));

    let mut dead = app.tenant.clone();
    dead.webhook_url = "http://127.0.0.1:9/nowhere".into();
    app.control.register_tenant(&dead).await.unwrap();
    let res = app
        .control
        .inbound(&meta_sandbox::InboundRequest {
            phone_number_id: dead.phone_number_id.clone(),
            from: CSM.into(),
            text: "x".into(),
            timestamp: None,
            profile_name: None,
        })
        .await
        .unwrap();
    assert!(!res.webhook[0].delivered);
    assert_eq!(res.webhook[0].attempts, 3);
    assert_eq!(app.control.stats().await.unwrap().webhooks.failed, 1);
    let log = app.control.webhooks(Some("messages")).await.unwrap();
    assert_eq!(log.len(), 2);
}

/// `status_progression` chooses which statuses are emitted.
#[tokio::test]
async fn status_progression_is_configurable() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"status_progression": ["sent"]}))
        .await
        .unwrap();
    app.open_window(CSM).await;
    app.send(&text_message(CSM, "x")).await;
    app.receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let order: Vec<_> = app
        .receiver
        .statuses()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, ["sent"]);
}
