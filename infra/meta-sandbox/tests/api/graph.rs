//! The Graph API rules, each with the code and HTTP status Meta uses.

use crate::helpers::*;
use meta_sandbox::InboundRequest;
use serde_json::json;

/// An open window lets a text through with Meta's success shape.
#[tokio::test]
async fn text_inside_the_window_is_accepted_with_a_wamid() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    let (status, body) = app.send(&text_message(CSM, "Churn risk: Acme")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["input"], CSM);
    assert_eq!(body["contacts"][0]["wa_id"], "919876543210");
    assert!(body["messages"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    let msgs = app
        .control
        .messages(Some(&app.tenant.phone_number_id), Some(CSM))
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].text.as_deref(), Some("Churn risk: Acme"));
    assert_eq!(
        msgs[0].biz_opaque_callback_data.as_deref(),
        Some("alert-42")
    );
}

/// A wrong token is 190 (401); a missing one is 104 (401).
#[tokio::test]
async fn wrong_or_missing_token_is_rejected() {
    let app = spawn_app().await;
    let path = format!("{}/messages", app.tenant.phone_number_id);
    let (status, body) = app
        .post_as("EAAGwrong", &path, &text_message(CSM, "x"))
        .await;
    assert_eq!((status, body["error"]["code"].as_i64()), (401, Some(190)));
    assert_eq!(body["error"]["type"], "OAuthException");
    let resp = app
        .http
        .post(app.graph(&path))
        .json(&text_message(CSM, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 104);
}

/// After rotation the old token is 190 and the new one works.
#[tokio::test]
async fn rotated_token_replaces_the_old_one() {
    let app = spawn_app().await;
    app.control
        .rotate_token(&app.tenant.phone_number_id, "EAAGnew")
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (401, Some(190)));
    let (status, _) = app.get_as("EAAGnew", &app.tenant.phone_number_id).await;
    assert_eq!(status, 200);
}

/// Unknown phone number ids and WABA ids are Graph's 100/33; so is another tenant's object.
#[tokio::test]
async fn unknown_objects_are_100_subcode_33() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_as(
            &app.tenant.access_token,
            "999999/messages",
            &text_message(CSM, "x"),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (Some(100), Some(33))
    );
    let (status, body) = app
        .get_as(&app.tenant.access_token, "888888/message_templates")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["error_subcode"], 33);

    // A second tenant's token cannot reach the first tenant's number.
    let other = meta_sandbox::TenantSpec {
        phone_number_id: "555000111".into(),
        waba_id: "555000222".into(),
        access_token: "EAAGother".into(),
        app_secret: "s".into(),
        webhook_url: app.receiver.url.clone(),
        display_phone_number: None,
        verified_name: None,
    };
    app.control.register_tenant(&other).await.unwrap();
    let (status, body) = app
        .post_as(
            "EAAGother",
            &format!("{}/messages", app.tenant.phone_number_id),
            &text_message(CSM, "x"),
        )
        .await;
    assert_eq!(
        (status, body["error"]["error_subcode"].as_i64()),
        (400, Some(33))
    );
}

/// Missing `to`, wrong product, unknown type, bad JSON: 100, 400.
#[tokio::test]
async fn malformed_sends_are_100() {
    let app = spawn_app().await;
    for bad in [
        json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
        json!({"messaging_product": "sms", "to": CSM, "type": "text", "text": {"body": "x"}}),
        json!({"messaging_product": "whatsapp", "to": CSM, "type": "carrier_pigeon"}),
    ] {
        let (status, body) = app.send(&bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(100)),
            "{bad}"
        );
    }
    let resp = app
        .http
        .post(app.graph(&format!("{}/messages", app.tenant.phone_number_id)))
        .bearer_auth(&app.tenant.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

/// Sync mode: a text outside the window is an HTTP 400 with 131047.
#[tokio::test]
async fn text_outside_window_is_131047_in_sync_mode() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131047))
    );
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
    assert!(app.control.messages(None, None).await.unwrap().is_empty());
}

/// Async mode (Meta's): accepted with a wamid, then a `failed` webhook with errors[131047].
#[tokio::test]
async fn text_outside_window_fails_by_webhook_in_async_mode() {
    let app = spawn_app().await;
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(status, 200, "{body}");
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_string();
    let got = app.receiver.wait_for(1).await;
    let st = &got[0].body["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(st["id"], wamid.as_str());
    assert_eq!(st["status"], "failed");
    assert_eq!(st["errors"][0]["code"], 131047);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        app.receiver.all().len(),
        1,
        "no sent/delivered after a failure"
    );
}

/// An inbound message older than 24 h does not open the window.
#[tokio::test]
async fn an_old_inbound_message_leaves_the_window_closed() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    let old = meta_sandbox::Clock::system().now_s() - 25 * 3600;
    app.control
        .inbound(&InboundRequest {
            phone_number_id: app.tenant.phone_number_id.clone(),
            from: CSM.into(),
            text: "old".into(),
            timestamp: Some(old),
            profile_name: None,
        })
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131047))
    );
    app.open_window(CSM).await;
    let (status, _) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(status, 200);
}

/// Knob-listed recipients are 131026: sync 400, or an async failed webhook.
#[tokio::test]
async fn undeliverable_recipient_is_131026() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(&json!({"undeliverable": [CSM], "window_error_mode": "sync"}))
        .await
        .unwrap();
    let (status, body) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131026))
    );
    app.control
        .set_knobs(&json!({"window_error_mode": "async"}))
        .await
        .unwrap();
    let (status, _) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(status, 200);
    let statuses: Vec<_> = app.receiver.wait_for(2).await;
    let st = &statuses.last().unwrap().body["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(
        (st["status"].as_str(), st["errors"][0]["code"].as_i64()),
        (Some("failed"), Some(131026))
    );
}

/// More than `mps_cap` sends in one second: 130429 (429), and stats prove the cap held.
#[tokio::test]
async fn throughput_cap_is_130429_and_held() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"mps_cap": 5, "pair_limit": {"burst": 1000, "refill_ms": 1}, "status_progression": []}))
        .await
        .unwrap();
    let recipients: Vec<String> = (0..8).map(|i| format!("+91987654{i:04}")).collect();
    for to in &recipients {
        app.open_window(to).await;
    }
    let mut codes = Vec::new();
    for to in &recipients {
        let (status, body) = app.send(&text_message(to, "x")).await;
        codes.push((status, body["error"]["code"].as_i64()));
    }
    assert_eq!(codes.iter().filter(|c| c.0 == 200).count(), 5, "{codes:?}");
    assert!(codes.contains(&(429, Some(130429))));
    let stats = app.control.stats().await.unwrap();
    assert_eq!(
        stats.per_phone_number[&app.tenant.phone_number_id].max_per_rolling_second,
        5
    );
    assert_eq!(stats.rejections_by_code["130429"], 3);
}

/// A burst to one recipient beyond the pair bucket is 131056 (400).
#[tokio::test]
async fn pair_rate_limit_is_131056() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    app.control
        .set_knobs(&json!({"pair_limit": {"burst": 2, "refill_ms": 60000}}))
        .await
        .unwrap();
    assert_eq!(app.send(&text_message(CSM, "1")).await.0, 200);
    assert_eq!(app.send(&text_message(CSM, "2")).await.0, 200);
    let (status, body) = app.send(&text_message(CSM, "3")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131056))
    );
    // Another recipient is not affected.
    app.open_window("+14155550100").await;
    assert_eq!(app.send(&text_message("+14155550100", "x")).await.0, 200);
}

/// `GET /{phone-number-id}` answers the tenant's phone number info.
#[tokio::test]
async fn phone_number_info_is_served() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_as(&app.tenant.access_token, &app.tenant.phone_number_id)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], app.tenant.phone_number_id.as_str());
    assert_eq!(body["verified_name"], "Fincelo");
    assert_eq!(body["quality_rating"], "GREEN");
}

/// Reset clears messages and keeps tenants by default.
#[tokio::test]
async fn reset_clears_messages_but_keeps_tenants() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    assert_eq!(app.send(&text_message(CSM, "x")).await.0, 200);
    app.control.reset(&Default::default()).await.unwrap();
    assert!(app.control.messages(None, None).await.unwrap().is_empty());
    assert_eq!(app.control.stats().await.unwrap().accepted, 0);
    // Tenant kept, but the window was cleared too.
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    assert_eq!(
        app.send(&text_message(CSM, "x")).await.1["error"]["code"],
        131047
    );
}
