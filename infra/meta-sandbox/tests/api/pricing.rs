//! Meta's per-message pricing in status webhooks, the `conversation` object
//! before v24 only, and the stats a cost ledger is compared with.

use crate::helpers::*;
use serde_json::{json, Value};

/// The `pricing` of the `sent` status of the message with `wamid`.
async fn pricing_of(app: &TestApp, wamid: &str) -> Value {
    for _ in 0..250 {
        if let Some(s) = app
            .receiver
            .statuses()
            .into_iter()
            .find(|s| s["id"] == wamid && s["status"] == "sent")
        {
            return s["pricing"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no sent status for {wamid}");
}

async fn sent(app: &TestApp, body: &Value) -> String {
    let (status, r) = app.send(body).await;
    assert_eq!(status, 200, "{r}");
    r["messages"][0]["id"].as_str().unwrap().to_string()
}

fn expect(category: &str, kind: &str, billable: bool) -> Value {
    json!({"billable": billable, "pricing_model": "PMP", "category": category, "type": kind})
}

async fn priced_app(rules: &str, allowance: u64) -> TestApp {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"pricing_rules": rules, "service_free_allowance": allowance}))
        .await
        .unwrap();
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    app.approved_template_in("spring_offer", "MARKETING", "Hi {{1}}, an offer.", &["a"])
        .await;
    app
}

/// July 2025 rules: a utility template is free inside the window and billed
/// outside; a service message is free; marketing is billed. The stats count
/// delivered messages by phone number, category and type.
#[tokio::test]
async fn july_2025_pricing_frees_utility_and_service_in_the_window() {
    let app = priced_app("2025-07", 1000).await;
    let outside = sent(
        &app,
        &template_message("+14155550100", "churn_alert", &["a", "b"]),
    )
    .await;
    app.open_window(CSM).await;
    let inside = sent(&app, &template_message(CSM, "churn_alert", &["a", "b"])).await;
    let service = sent(&app, &text_message(CSM, "Churn risk")).await;
    let marketing = sent(&app, &template_message(CSM, "spring_offer", &["a"])).await;
    assert_eq!(
        pricing_of(&app, &outside).await,
        expect("utility", "regular", true)
    );
    assert_eq!(
        pricing_of(&app, &inside).await,
        expect("utility", "free_customer_service", false)
    );
    assert_eq!(
        pricing_of(&app, &service).await,
        expect("service", "free_customer_service", false)
    );
    assert_eq!(
        pricing_of(&app, &marketing).await,
        expect("marketing", "regular", true)
    );
    app.receiver.wait_for(1 + 4 * 3).await;
    let stats = app.control.stats().await.unwrap();
    let mine = &stats.pricing[&app.tenant.phone_number_id];
    assert_eq!(mine["utility"]["regular"], 1);
    assert_eq!(mine["utility"]["free_customer_service"], 1);
    assert_eq!(mine["service"]["free_customer_service"], 1);
    assert_eq!(mine["marketing"]["regular"], 1);
}

/// October 2026 rules (as solution providers report them): utility templates
/// are billed inside the window too, and service messages past the monthly
/// free allowance are billed.
#[tokio::test]
async fn october_2026_pricing_bills_utility_in_the_window_and_service_past_the_allowance() {
    let app = priced_app("2026-10", 1).await;
    app.open_window(CSM).await;
    let utility = sent(&app, &template_message(CSM, "churn_alert", &["a", "b"])).await;
    let first = sent(&app, &text_message(CSM, "one")).await;
    let second = sent(&app, &text_message(CSM, "two")).await;
    assert_eq!(
        pricing_of(&app, &utility).await,
        expect("utility", "regular", true)
    );
    assert_eq!(
        pricing_of(&app, &first).await,
        expect("service", "free_customer_service", false)
    );
    assert_eq!(
        pricing_of(&app, &second).await,
        expect("service", "regular", true)
    );
}

/// `auto` picks the rules by the date on the sandbox's clock: a utility
/// template inside the window is free on 2026-09-30 and billed on 2026-10-02.
#[tokio::test]
async fn auto_pricing_follows_the_date_on_the_clock() {
    let clock = TestClock::default();
    clock.set_date("2026-09-30");
    let app = spawn_app_on(&clock).await;
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    app.open_window(CSM).await;
    let before = sent(&app, &template_message(CSM, "churn_alert", &["a", "b"])).await;
    clock.advance_hours(48);
    app.open_window(CSM).await;
    let after = sent(&app, &template_message(CSM, "churn_alert", &["a", "b"])).await;
    assert_eq!(
        pricing_of(&app, &before).await["type"],
        "free_customer_service"
    );
    assert_eq!(pricing_of(&app, &after).await["type"], "regular");
}

/// The `conversation` object goes with messages sent through a Graph
/// version before v24 only; `pricing` goes with both; a failed message has neither.
#[tokio::test]
async fn the_conversation_object_stops_at_v24() {
    let app = spawn_app().await;
    app.open_window(CSM).await;
    let (_, old) = app.send_v("v23.0", &text_message(CSM, "old")).await;
    let (_, new) = app.send_v("v26.0", &text_message(CSM, "new")).await;
    app.receiver.wait_for(7).await;
    let statuses = app.receiver.statuses();
    let of = |r: &Value, st: &str| {
        statuses
            .iter()
            .find(|s| s["id"] == r["messages"][0]["id"] && s["status"] == st)
            .cloned()
            .unwrap()
    };
    assert!(of(&old, "sent")["conversation"]["id"].is_string());
    assert!(of(&old, "sent")["conversation"]["expiration_timestamp"].is_string());
    assert!(of(&new, "sent").get("conversation").is_none());
    assert!(of(&new, "delivered")["pricing"].is_object());
    assert!(of(&new, "read").get("pricing").is_none());
}
