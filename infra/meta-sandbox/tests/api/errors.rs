//! The error codes Meta added in 2025-2026, each triggered per user or per
//! account, with Meta's code, title, details and delivery (HTTP or `failed`
//! status webhook).

use crate::helpers::*;
use meta_sandbox::{AccountSpec, UserSpec};
use serde_json::{json, Value};

const PROMO: &str = "Hi {{1}}, our spring offer is here.";

async fn marketing_app(user: UserSpec) -> TestApp {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        ..user
    })
    .await;
    app.approved_template_in("spring_offer", "MARKETING", PROMO, &["Asha"])
        .await;
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    app
}

/// The `errors[0]` of the first `failed` status, waiting for it.
async fn failed_error(app: &TestApp) -> Value {
    for _ in 0..250 {
        if let Some(s) = app
            .receiver
            .statuses()
            .into_iter()
            .find(|s| s["status"] == "failed")
        {
            return s["errors"][0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no failed status");
}

async fn send_marketing(app: &TestApp) -> (u16, Value) {
    app.send(&template_message(CSM, "spring_offer", &["Asha"]))
        .await
}

/// 131049, Meta's per-user marketing limit: the marketing template is
/// accepted and then fails by webhook with Meta's 2026 title and details; a
/// utility template to the same user goes; under `sync` it is an HTTP 400.
#[tokio::test]
async fn a_per_user_marketing_limit_is_131049_by_webhook() {
    let app = marketing_app(UserSpec {
        marketing_limited: true,
        ..UserSpec::default()
    })
    .await;
    assert_eq!(send_marketing(&app).await.0, 200);
    let e = failed_error(&app).await;
    assert_eq!(e["code"], 131049);
    assert_eq!(
        e["title"],
        "This message was not delivered to maintain healthy ecosystem engagement."
    );
    assert_eq!(
        e["error_data"]["details"],
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
    );
    let (status, _) = app
        .send(&template_message(CSM, "churn_alert", &["a", "b"]))
        .await;
    assert_eq!(status, 200);
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    let (status, body) = send_marketing(&app).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131049))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("(#131049)"));
}

/// 131050: the user stopped marketing messages from the business.
#[tokio::test]
async fn a_user_who_stopped_marketing_is_131050() {
    let app = marketing_app(UserSpec {
        stopped_marketing: true,
        ..UserSpec::default()
    })
    .await;
    assert_eq!(send_marketing(&app).await.0, 200);
    let e = failed_error(&app).await;
    assert_eq!(e["code"], 131050);
    assert!(e["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("stop receiving marketing messages"));
}

/// 130472: a user in Meta's marketing experiment gets no marketing template
/// outside a customer service window; inside one it goes.
#[tokio::test]
async fn a_user_in_the_experiment_is_130472_outside_the_window_only() {
    let app = marketing_app(UserSpec {
        in_experiment: true,
        ..UserSpec::default()
    })
    .await;
    assert_eq!(send_marketing(&app).await.0, 200);
    let e = failed_error(&app).await;
    assert_eq!(
        (e["code"].as_i64(), e["title"].as_str()),
        (Some(130472), Some("User's number is part of an experiment"))
    );
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    assert_eq!(send_marketing(&app).await.1["error"]["code"], 130472);
    app.open_window(CSM).await;
    assert_eq!(send_marketing(&app).await.0, 200);
}

/// 131042: a payment issue fails every send of the WABA (text and
/// templates alike) until it is cleared.
#[tokio::test]
async fn a_payment_issue_fails_every_send_until_cleared() {
    let app = spawn_app().await;
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    app.open_window(CSM).await;
    let account = |payment_issue| AccountSpec {
        waba_id: app.tenant.waba_id.clone(),
        payment_issue: Some(payment_issue),
        ..AccountSpec::default()
    };
    app.control.set_account(&account(true)).await.unwrap();
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    for body in [
        text_message(CSM, "x"),
        template_message("+14155550100", "churn_alert", &["a", "b"]),
    ] {
        let (status, e) = app.send(&body).await;
        assert_eq!(
            (status, e["error"]["code"].as_i64()),
            (400, Some(131042)),
            "{e}"
        );
        assert_eq!(
            e["error"]["error_data"]["details"],
            "Message failed to send because there were one or more errors related to your payment method."
        );
    }
    app.control.set_account(&account(false)).await.unwrap();
    assert_eq!(app.send(&text_message(CSM, "x")).await.0, 200);
}

/// 131063: a WABA whose marketing templates must go through the Marketing
/// Messages API gets a synchronous 400 for them on `/messages`; utility goes.
#[tokio::test]
async fn marketing_templates_on_messages_are_131063_when_the_mm_api_is_required() {
    let app = marketing_app(UserSpec::default()).await;
    app.control
        .set_account(&AccountSpec {
            waba_id: app.tenant.waba_id.clone(),
            marketing_messages_api_only: Some(true),
            ..AccountSpec::default()
        })
        .await
        .unwrap();
    let (status, body) = send_marketing(&app).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131063))
    );
    let (status, _) = app
        .send(&template_message(CSM, "churn_alert", &["a", "b"]))
        .await;
    assert_eq!(status, 200);
}

/// 137000: a send whose `recipient_identity_key_hash` is not the user's
/// current one is refused; the right one goes.
#[tokio::test]
async fn a_stale_identity_key_hash_is_137000() {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        identity_key_hash: Some("eU2Fdi4EMUw=".into()),
        ..UserSpec::default()
    })
    .await;
    app.open_window(CSM).await;
    let mut msg = text_message(CSM, "x");
    msg["recipient_identity_key_hash"] = json!("Rc/eg9RQ0JA=");
    let (status, body) = app.send(&msg).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(137000)),
        "{body}"
    );
    msg["recipient_identity_key_hash"] = json!("eU2Fdi4EMUw=");
    assert_eq!(app.send(&msg).await.0, 200);
}
