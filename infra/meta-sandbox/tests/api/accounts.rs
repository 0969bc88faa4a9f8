//! Account webhooks with their 2026 shapes: quality and limits, capabilities,
//! account updates; the fields Meta removed in February 2026 are refused.

use crate::helpers::*;
use meta_sandbox::AccountEvent;
use serde_json::{json, Value};

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/meta/webhook-examples"
);

fn example(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{EXAMPLES}/{name}")).unwrap()).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn event(app: &TestApp, field: &str, value: Value) -> AccountEvent {
    AccountEvent {
        waba_id: app.tenant.waba_id.clone(),
        field: field.into(),
        value,
        phone_number_id: Some(app.tenant.phone_number_id.clone()),
    }
}

/// `phone_number_quality_update` carries `max_daily_conversations_per_business`
/// and the display number; `current_limit`, removed in February 2026, is refused.
#[tokio::test]
async fn a_quality_update_has_its_2026_shape() {
    let app = spawn_app().await;
    let r = app
        .control
        .account_event(&event(
            &app,
            "phone_number_quality_update",
            json!({"event": "UPGRADE", "old_limit": "TIER_2K", "max_daily_conversations_per_business": "TIER_10K"}),
        ))
        .await
        .unwrap();
    assert!(r.webhook[0].delivered);
    let body = &app.receiver.all()[0].body;
    let entry = &body["entry"][0];
    assert!(entry["time"].is_i64());
    assert_eq!(entry["changes"][0]["field"], "phone_number_quality_update");
    let v = &entry["changes"][0]["value"];
    assert_eq!(v["display_phone_number"], "15550783881");
    assert_eq!(v["max_daily_conversations_per_business"], "TIER_10K");
    assert!(v.get("current_limit").is_none());
    let removed = app
        .control
        .account_event(&event(
            &app,
            "phone_number_quality_update",
            json!({"event": "UPGRADE", "current_limit": "TIER_10K"}),
        ))
        .await;
    assert!(
        removed.is_err(),
        "current_limit was removed in February 2026"
    );
}

/// `business_capability_update` has the keys of Meta's example;
/// `max_daily_conversation_per_phone` is refused.
#[tokio::test]
async fn a_capability_update_matches_metas_example() {
    let app = spawn_app().await;
    let theirs = example("metadocs__business_capability_update__1.json");
    let value = theirs["entry"][0]["changes"][0]["value"].clone();
    app.control
        .account_event(&event(&app, "business_capability_update", value.clone()))
        .await
        .unwrap();
    let ours = &app.receiver.all()[0].body;
    assert_eq!(keys(ours), keys(&theirs));
    assert_eq!(keys(&ours["entry"][0]), keys(&theirs["entry"][0]));
    assert_eq!(ours["entry"][0]["changes"][0]["value"], value);
    let removed = app
        .control
        .account_event(&event(
            &app,
            "business_capability_update",
            json!({"max_daily_conversation_per_phone": 1000}),
        ))
        .await;
    assert!(removed.is_err());
}

/// `account_update`: a pricing tier update as in Meta's example, and an
/// account restriction with `restriction_info`; a malformed restriction is refused.
#[tokio::test]
async fn account_updates_carry_tier_and_restriction_info() {
    let app = spawn_app().await;
    let theirs = example("metadocs__account_update_volume_based_pricing_tier_update__1.json");
    app.control
        .account_event(&event(
            &app,
            "account_update",
            theirs["entry"][0]["changes"][0]["value"].clone(),
        ))
        .await
        .unwrap();
    let ours = &app.receiver.all()[0].body;
    assert_eq!(
        keys(&ours["entry"][0]["changes"][0]["value"]),
        keys(&theirs["entry"][0]["changes"][0]["value"])
    );
    let restriction = json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1790208000}]});
    app.control
        .account_event(&event(&app, "account_update", restriction.clone()))
        .await
        .unwrap();
    assert_eq!(
        app.receiver.all()[1].body["entry"][0]["changes"][0]["value"],
        restriction
    );
    let bad = app
        .control
        .account_event(&event(
            &app,
            "account_update",
            json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [{"type": "X"}]}),
        ))
        .await;
    assert!(bad.is_err());
}
