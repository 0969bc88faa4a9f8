//! One clock: the sandbox reads the time its embedder gives it (the local
//! stack's shifted clock), for every time Meta shows or keeps.

use std::time::Duration;

use crate::helpers::*;
use serde_json::json;

/// A window opened by an inbound message closes 24 hours later on the shared
/// clock, not on the system's: 25 shifted hours in, a text is 131047.
#[tokio::test]
async fn a_window_closes_after_24_hours_on_the_shared_clock() {
    let clock = TestClock::default();
    let app = spawn_app_on(&clock).await;
    app.control
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    app.open_window(CSM).await;
    clock.advance_hours(23);
    assert_eq!(app.send(&text_message(CSM, "still open")).await.0, 200);
    clock.advance_hours(2);
    let (status, body) = app.send(&text_message(CSM, "closed")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131047)),
        "{body}"
    );
}

/// Webhook timestamps, the inbound message's timestamp and `accepted_at` are
/// the shared clock's, even a thousand hours ahead of the system's.
#[tokio::test]
async fn timestamps_meta_shows_read_the_shared_clock() {
    let clock = TestClock::default();
    clock.advance_hours(1000);
    let app = spawn_app_on(&clock).await;
    let before = clock.now_s();
    app.open_window(CSM).await;
    let (status, _) = app.send(&text_message(CSM, "x")).await;
    assert_eq!(status, 200);
    let got = app.receiver.wait_for(4).await;
    let inbound_ts: i64 = got[0].body["entry"][0]["changes"][0]["value"]["messages"][0]
        ["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inbound_ts >= before, "{inbound_ts} < {before}");
    for s in app.receiver.statuses() {
        let ts: i64 = s["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(
            (before..before + 60).contains(&ts),
            "{ts} not near {before}"
        );
    }
    let msgs = app.control.messages(None, None).await.unwrap();
    assert!(msgs[0].accepted_at / 1000 >= before);
}

/// Template review is due on the shared clock: with a 30-hour review, the
/// template waits until the clock moves 30 hours, then is approved at once.
#[tokio::test]
async fn template_review_is_due_on_the_shared_clock() {
    let clock = TestClock::default();
    let app = spawn_app_on(&clock).await;
    app.control
        .set_knobs(&json!({"template_approval_delay_ms": 30 * 3600 * 1000}))
        .await
        .unwrap();
    app.create_template("slow_review", "Hi {{1}} ok", &["a"])
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let t = &app.control.templates(&app.tenant.waba_id).await.unwrap()[0];
    assert_eq!(t.status, "PENDING");
    clock.advance_hours(30);
    let got = app.receiver.wait_for(1).await;
    assert_eq!(
        got[0].body["entry"][0]["changes"][0]["value"]["event"],
        "APPROVED"
    );
    let entry_time = got[0].body["entry"][0]["time"].as_i64().unwrap();
    assert!(entry_time >= clock.now_s() - 5);
    let t = &app.control.templates(&app.tenant.waba_id).await.unwrap()[0];
    assert!(t.decided_at.unwrap() - t.submitted_at >= 30 * 3600 * 1000);
}
