//! Each fault knob, with a fixed seed and rate 1.0 (or a measured frequency).

use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::json;

/// error_5xx_rate=1: Meta's transient code 2 with HTTP 503; control routes unaffected.
#[tokio::test]
async fn error_5xx_fault_returns_code_2() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"seed": 7, "error_5xx_rate": 1.0}))
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (503, Some(2)));
    assert_eq!(body["error"]["is_transient"], true);
    assert!(
        app.control.stats().await.is_ok(),
        "control routes never fault"
    );
}

/// throttle_rate=1: 130429 with HTTP 429 even under the cap.
#[tokio::test]
async fn throttle_fault_returns_130429() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"seed": 7, "throttle_rate": 1.0}))
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (429, Some(130429))
    );
}

/// A rate of 0.3 hits roughly 30% of requests, and the same seed replays the same pattern.
#[tokio::test]
async fn fault_rate_is_measured_and_seed_reproducible() {
    let app = spawn_app().await;
    let run = |app: &TestApp| {
        let app_http = app.http.clone();
        let url = app.graph(&app.tenant.phone_number_id);
        let token = app.tenant.access_token.clone();
        async move {
            let mut pattern = Vec::new();
            for _ in 0..200 {
                let s = app_http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                pattern.push(s == 503);
            }
            pattern
        }
    };
    app.control
        .set_knobs(&json!({"seed": 42, "error_5xx_rate": 0.3}))
        .await
        .unwrap();
    let first = run(&app).await;
    let hits = first.iter().filter(|h| **h).count();
    assert!((40..=80).contains(&hits), "{hits} of 200");
    app.control.set_knobs(&json!({"seed": 42})).await.unwrap();
    assert_eq!(run(&app).await, first);
}

/// latency_ms adds delay to Graph routes.
#[tokio::test]
async fn latency_fault_delays_responses() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"latency_ms": {"min": 150, "max": 200}}))
        .await
        .unwrap();
    let t = Instant::now();
    app.http
        .get(app.graph(&app.tenant.phone_number_id))
        .bearer_auth(&app.tenant.access_token)
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
}

/// timeout_rate=1: the client times out and the message is NOT recorded.
#[tokio::test]
async fn timeout_fault_does_not_accept() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(&json!({"timeout_rate": 1.0, "timeout_hold_ms": 2000}))
        .await
        .unwrap();
    let res = app
        .send_within(&text_message(CSM, "x"), Duration::from_millis(300))
        .await;
    assert!(res.is_err_and(|e| e.is_timeout()));
    assert!(app.control.messages(None, None).await.unwrap().is_empty());
}

/// response_lost_rate=1: the client times out, yet the message is recorded and its webhooks go out.
#[tokio::test]
async fn response_lost_fault_accepts_but_drops_the_answer() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(&json!({"response_lost_rate": 1.0, "timeout_hold_ms": 300}))
        .await
        .unwrap();
    let res = app
        .send_within(&text_message(CSM, "x"), Duration::from_secs(3))
        .await;
    // After the hold the connection is dropped: no usable 200 body reaches the client.
    let usable = match res {
        Ok(r) => r
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|b| b["messages"][0]["id"].is_string()),
        Err(_) => false,
    };
    assert!(!usable);
    let msgs = app.control.messages(None, None).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].response_lost);
    assert_eq!(app.receiver.wait_for(4).await.len(), 4);
}

/// webhook_duplicate_rate=1: every webhook arrives twice; stats count duplicates.
#[tokio::test]
async fn duplicate_fault_sends_webhooks_twice() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"webhook_duplicate_rate": 1.0, "status_progression": ["sent"]}))
        .await
        .unwrap();
    app.open_window(CSM).await;
    app.send(&text_message(CSM, "x")).await;
    let got = app.receiver.wait_for(4).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[2].raw, got[3].raw);
    assert_eq!(app.control.stats().await.unwrap().webhooks.duplicated, 2);
}

/// webhook_reorder: a message's statuses arrive in a non-progression order.
#[tokio::test]
async fn reorder_fault_shuffles_statuses() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(&json!({"seed": 3, "webhook_reorder": true}))
        .await
        .unwrap();
    app.send(&text_message(CSM, "x")).await;
    app.receiver.wait_for(4).await;
    let order: Vec<_> = app
        .receiver
        .statuses()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ["delivered", "read", "sent"]);
    assert_ne!(order, ["sent", "delivered", "read"]);
}

/// webhook_delay_ms delays status webhooks.
#[tokio::test]
async fn webhook_delay_fault_delays_statuses() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(
            &json!({"webhook_delay_ms": {"min": 300, "max": 300}, "status_progression": ["sent"]}),
        )
        .await
        .unwrap();
    app.send(&text_message(CSM, "x")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.receiver.all().len(), 1, "status not yet sent");
    assert_eq!(app.receiver.wait_for(2).await.len(), 2);
}

/// template_approval_delay_ms holds templates PENDING for that long.
#[tokio::test]
async fn approval_delay_keeps_template_pending() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"template_approval_delay_ms": 300}))
        .await
        .unwrap();
    app.create_template("slow", "Hi {{1}} ok", &["a"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.control.templates(&app.tenant.waba_id).await.unwrap()[0].status,
        "PENDING"
    );
    app.receiver.wait_for(1).await;
    assert_eq!(
        app.control.templates(&app.tenant.waba_id).await.unwrap()[0].status,
        "APPROVED"
    );
}

/// edge_failure_rate=1: the message IS accepted (recorded, its statuses go
/// out) but the answer is Meta's edge failing: a 502 with an HTML page, or a
/// 504 with no body; never a Graph error body.
#[tokio::test]
async fn an_edge_failure_answers_502_or_504_without_a_graph_body() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(
            &json!({"edge_failure_rate": 1.0, "edge_failure": {"status": 502, "body": "html"}}),
        )
        .await
        .unwrap();
    let resp = app
        .send_within(&text_message(CSM, "x"), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 502);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html")));
    let page = resp.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&page).is_err(),
        "{page}"
    );
    app.control
        .set_knobs(&json!({"edge_failure": {"status": 504, "body": "empty"}}))
        .await
        .unwrap();
    let resp = app
        .send_within(&text_message(CSM, "y"), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 504);
    assert!(resp.bytes().await.unwrap().is_empty());
    let msgs = app.control.messages(None, None).await.unwrap();
    assert_eq!(
        msgs.iter().map(|m| m.edge_failure).collect::<Vec<_>>(),
        vec![Some(502), Some(504)]
    );
    assert_eq!(
        app.receiver.wait_for(7).await.len(),
        7,
        "inbound + 2 × 3 statuses"
    );
    assert_eq!(app.control.stats().await.unwrap().edge_failures, 2);
    assert!(app
        .control
        .set_knobs(&json!({"edge_failure": {"status": 500, "body": "empty"}}))
        .await
        .is_err());
}
