//! The account webhooks against the sandbox: the messaging limit, the
//! number's quality and the account's restrictions land on the tenant's
//! channel status, each change published once as `account.limits_changed`,
//! and an older or replayed webhook changes nothing.

use std::time::Duration;

use meta_sandbox::AccountEvent;
use serde_json::{json, Value};

use crate::helpers::*;

/// Meta sends an account webhook (through the sandbox); returns its body.
async fn meta_sends(w: &World, field: &str, value: Value) -> Value {
    let sent = w
        .meta
        .account_event(&AccountEvent {
            waba_id: w.tenant.waba_id.clone(),
            field: field.into(),
            value,
            phone_number_id: Some(w.tenant.phone_number_id.clone()),
        })
        .await
        .expect("sandbox sends the account webhook");
    assert!(
        sent.webhook.iter().all(|d| d.status_code == Some(200)),
        "{:?}",
        sent.webhook
    );
    sent.body
}

async fn account(w: &World) -> Value {
    let (status, v, text) = admin(
        w,
        "GET",
        &format!("/admin/tenants/{}/channel", w.tenant.tenant_id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    v["account"].clone()
}

fn limits_changed(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "account.limits_changed")
        .collect()
}

/// A limit upgrade, a quality flag and a restriction are each stored on
/// the tenant and published once; Meta's retry of a body and a webhook
/// older than what is stored change nothing.
#[tokio::test]
async fn account_webhooks_land_on_the_channel_status_once_and_in_meta_order() {
    let w = spawn_world().await;
    let before = account(&w).await;
    assert!(before["messaging_limit"].is_null(), "{before}");

    let upgrade = meta_sends(
        &w,
        "phone_number_quality_update",
        json!({"event": "UPGRADE", "old_limit": "TIER_250", "max_daily_conversations_per_business": "TIER_2K"}),
    )
    .await;
    w.advance(Duration::from_secs(60)).await;
    meta_sends(
        &w,
        "phone_number_quality_update",
        json!({"event": "FLAGGED"}),
    )
    .await;
    meta_sends(
        &w,
        "account_update",
        json!({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": "2026-12-19T13:59:20+0000"}
        ]}),
    )
    .await;

    let a = account(&w).await;
    assert_eq!(a["messaging_limit"]["limit"], "TIER_2K", "{a}");
    assert_eq!(a["messaging_limit"]["old_limit"], "TIER_250", "{a}");
    assert_eq!(
        a["messaging_limit"]["at"], upgrade["entry"][0]["time"],
        "Meta's time: {a}"
    );
    assert_eq!(a["quality"]["event"], "FLAGGED", "{a}");
    assert_eq!(
        a["standing"]["restrictions"][0]["type"], "RESTRICTED_BIZ_INITIATED_MESSAGING",
        "{a}"
    );
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(10), |got| {
            limits_changed(got).len() >= 3
        })
        .await;
    let aspects: Vec<&str> = limits_changed(&events)
        .iter()
        .filter_map(|e| e["aspect"].as_str())
        .collect();
    assert_eq!(aspects.len(), 3, "{events:#?}");
    for aspect in ["messaging_limit", "quality", "standing"] {
        assert!(aspects.contains(&aspect), "{aspect}: {events:#?}");
    }
    let limit = limits_changed(&events)
        .into_iter()
        .find(|e| e["aspect"] == "messaging_limit")
        .expect("the limit's event");
    assert_eq!(limit["version"], 1);
    assert_eq!(limit["detail"]["limit"], "TIER_2K");

    // Meta retries the upgrade; then a downgrade from before it arrives late.
    assert_eq!(
        w.post_signed(upgrade.to_string().as_bytes()).await.status(),
        200
    );
    let mut stale = upgrade.clone();
    let change = &mut stale["entry"][0]["changes"][0]["value"];
    change["event"] = json!("DOWNGRADE");
    change["max_daily_conversations_per_business"] = json!("TIER_250");
    change["old_limit"] = json!("TIER_1K");
    let earlier = upgrade["entry"][0]["time"].as_i64().expect("entry time") - 3600;
    stale["entry"][0]["time"] = json!(earlier);
    assert_eq!(
        w.post_signed(stale.to_string().as_bytes()).await.status(),
        200
    );
    let after = account(&w).await;
    assert_eq!(after["messaging_limit"]["limit"], "TIER_2K", "{after}");
    let again = w
        .drain_until("EventsQueue", Duration::from_secs(2), |_| false)
        .await;
    assert!(limits_changed(&again).is_empty(), "{again:#?}");
    w.shutdown().await;
}
