//! Templates: creation, review, duplicates, sending rules, pagination.

use crate::helpers::*;
use meta_sandbox::TemplateDecision;
use serde_json::{json, Value};

const BODY: &str = "Hi {{1}}, account {{2}} needs attention.";

/// Creation answers PENDING with a numeric id, then the review approves it.
#[tokio::test]
async fn created_template_is_pending_then_approved() {
    let app = spawn_app().await;
    let (status, body) = app
        .create_template("churn_alert", BODY, &["Asha", "Acme"])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["category"], "UTILITY");
    assert!(body["id"]
        .as_str()
        .unwrap()
        .chars()
        .all(|c| c.is_ascii_digit()));
    let got = app.receiver.wait_for(1).await;
    let v = &got[0].body["entry"][0]["changes"][0];
    assert_eq!(v["field"], "message_template_status_update");
    assert_eq!(v["value"]["event"], "APPROVED");
    assert_eq!(v["value"]["reason"], "NONE");
    assert_eq!(v["value"]["message_template_name"], "churn_alert");
    assert_eq!(v["value"]["message_template_language"], "en");
    assert_eq!(
        v["value"]["message_template_id"].to_string(),
        body["id"].as_str().unwrap()
    );
}

/// Meta's rule: a body starting or ending with a variable is REJECTED, INVALID_FORMAT; so is a knob-listed name.
#[tokio::test]
async fn variable_at_start_or_end_is_rejected() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"reject_templates": ["banned_name"]}))
        .await
        .unwrap();
    app.create_template("ends_with_var", "Your renewal date is {{1}}", &["May 1"])
        .await;
    app.create_template("banned_name", "Hello {{1}} there", &["x"])
        .await;
    let got = app.receiver.wait_for(2).await;
    for r in &got {
        let v = &r.body["entry"][0]["changes"][0]["value"];
        assert_eq!(
            (v["event"].as_str(), v["reason"].as_str()),
            (Some("REJECTED"), Some("INVALID_FORMAT"))
        );
    }
}

/// Same name and language again: code 100, subcode 2388024.
#[tokio::test]
async fn duplicate_template_is_2388024() {
    let app = spawn_app().await;
    assert_eq!(app.create_template("dup", BODY, &["a", "b"]).await.0, 200);
    let (status, body) = app.create_template("dup", BODY, &["a", "b"]).await;
    assert_eq!(status, 400);
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (Some(100), Some(2388024))
    );
}

/// Template sends: unknown → 132001 (404); wrong param count → 132000; approved → accepted.
#[tokio::test]
async fn template_send_rules() {
    let app = spawn_app().await;
    let (status, body) = app.send(&template_message(CSM, "nope", &["a"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (404, Some(132001))
    );
    app.approved_template("churn_alert", BODY, &["a", "b"])
        .await;
    let (status, body) = app
        .send(&template_message(CSM, "churn_alert", &["only one"]))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(132000))
    );
    let (status, body) = app
        .send(&template_message(CSM, "churn_alert", &["Asha", "Acme"]))
        .await;
    assert_eq!(status, 200, "{body}");
    let msgs = app.control.messages(None, None).await.unwrap();
    let t = msgs[0].template.as_ref().unwrap();
    assert_eq!(
        (t.name.as_str(), t.parameters.clone()),
        ("churn_alert", vec!["Asha".to_string(), "Acme".to_string()])
    );
}

/// Pending, rejected, paused and disabled templates cannot be sent: 132001, 132001, 132015, 132016.
#[tokio::test]
async fn unapproved_paused_disabled_templates_are_refused() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"template_approval_delay_ms": 60000}))
        .await
        .unwrap();
    app.create_template("t1", BODY, &["a", "b"]).await;
    let (status, body) = app.send(&template_message(CSM, "t1", &["a", "b"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (404, Some(132001)),
        "pending"
    );
    for (st, code) in [
        ("REJECTED", 132001),
        ("PAUSED", 132015),
        ("DISABLED", 132016),
    ] {
        let d = TemplateDecision {
            waba_id: app.tenant.waba_id.clone(),
            name: "t1".into(),
            language: "en".into(),
            status: st.into(),
            reason: None,
            webhook: Some(false),
        };
        let r = app.control.decide_template(&d).await.unwrap();
        assert!(r.webhook.is_empty());
        let (_, body) = app.send(&template_message(CSM, "t1", &["a", "b"])).await;
        assert_eq!(body["error"]["code"].as_i64(), Some(code), "{st}");
    }
    assert!(app.receiver.all().is_empty(), "webhook:false sends nothing");
}

/// A manual decision sends the status webhook by default.
#[tokio::test]
async fn manual_decision_sends_a_webhook() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"template_approval_delay_ms": 60000}))
        .await
        .unwrap();
    app.create_template("t2", BODY, &["a", "b"]).await;
    let d = TemplateDecision {
        waba_id: app.tenant.waba_id.clone(),
        name: "t2".into(),
        language: "en".into(),
        status: "PAUSED".into(),
        reason: None,
        webhook: None,
    };
    let r = app.control.decide_template(&d).await.unwrap();
    assert!(r.webhook[0].delivered);
    assert_eq!(
        app.receiver.all()[0].body["entry"][0]["changes"][0]["value"]["event"],
        "PAUSED"
    );
}

/// Listing follows `paging.next` to the end; the last page has no `next`.
#[tokio::test]
async fn pagination_follows_next_to_the_end() {
    let app = spawn_app().await;
    for i in 0..7 {
        assert_eq!(
            app.create_template(&format!("tpl_{i}"), BODY, &["a", "b"])
                .await
                .0,
            200
        );
    }
    let mut url = app.graph(&format!("{}/message_templates?limit=3", app.tenant.waba_id));
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let body: Value = app
            .http
            .get(&url)
            .bearer_auth(&app.tenant.access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for t in body["data"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
            assert!(t["id"].is_string() && t["status"].is_string() && t["components"].is_array());
        }
        assert!(body["paging"]["cursors"]["after"].is_string());
        match body["paging"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..7).map(|i| format!("tpl_{i}")).collect::<Vec<_>>()
    );
}

fn decision(app: &TestApp, name: &str, status: &str, reason: Option<&str>) -> TemplateDecision {
    TemplateDecision {
        waba_id: app.tenant.waba_id.clone(),
        name: name.into(),
        language: "en".into(),
        status: status.into(),
        reason: reason.map(String::from),
        webhook: None,
    }
}

async fn send_tpl(app: &TestApp, name: &str) -> (u16, Value) {
    app.send(&template_message(CSM, name, &["a", "b"])).await
}

/// The last template status webhook's `value`.
fn last_value(app: &TestApp) -> Value {
    app.receiver.all().last().unwrap().body["entry"][0]["changes"][0]["value"].clone()
}

/// `template_review: manual`: a template stays PENDING (however long) until
/// the control endpoint decides it; then Meta's webhook goes out.
#[tokio::test]
async fn manual_review_keeps_a_template_pending_until_decided() {
    let clock = TestClock::default();
    let app = spawn_app_on(&clock).await;
    app.control
        .set_knobs(&json!({"template_review": "manual"}))
        .await
        .unwrap();
    app.create_template("manual_one", BODY, &["a", "b"]).await;
    clock.advance_hours(72);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(
        app.control.templates(&app.tenant.waba_id).await.unwrap()[0].status,
        "PENDING"
    );
    assert!(app.receiver.all().is_empty(), "no review webhook");
    let r = app
        .control
        .decide_template(&decision(&app, "manual_one", "APPROVED", None))
        .await
        .unwrap();
    assert!(r.webhook[0].delivered);
    assert_eq!(last_value(&app)["event"], "APPROVED");
    let (status, _) = app
        .send(&template_message(CSM, "manual_one", &["a", "b"]))
        .await;
    assert_eq!(status, 200);
}

/// A rejection for INVALID_FORMAT carries Meta's `rejection_info`; sending is 132001.
#[tokio::test]
async fn a_rejection_carries_its_reason_and_rejection_info() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"template_review": "manual"}))
        .await
        .unwrap();
    app.create_template("bad_one", BODY, &["a", "b"]).await;
    app.control
        .decide_template(&decision(
            &app,
            "bad_one",
            "REJECTED",
            Some("INVALID_FORMAT"),
        ))
        .await
        .unwrap();
    let v = last_value(&app);
    assert_eq!(
        (v["event"].as_str(), v["reason"].as_str()),
        (Some("REJECTED"), Some("INVALID_FORMAT"))
    );
    assert!(v["rejection_info"]["reason"].is_string());
    assert!(v["rejection_info"]["recommendation"].is_string());
    let (status, body) = app
        .send(&template_message(CSM, "bad_one", &["a", "b"]))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (404, Some(132001))
    );
    let unknown = app
        .control
        .decide_template(&decision(&app, "bad_one", "REJECTED", Some("BORING")))
        .await;
    assert!(unknown.is_err(), "an unknown reason is refused");
}

/// Pauses as Meta runs them: the first for 3 hours (`other_info`
/// FIRST_PAUSE, sends are 132015), ended on the clock by an APPROVED webhook;
/// the second for 6 hours; the third disables the template (`disable_info`,
/// sends are 132016).
#[tokio::test]
async fn pauses_end_on_the_clock_and_the_third_disables() {
    let clock = TestClock::default();
    let app = spawn_app_on(&clock).await;
    app.approved_template("paused_one", BODY, &["a", "b"]).await;

    app.control
        .decide_template(&decision(&app, "paused_one", "PAUSED", None))
        .await
        .unwrap();
    let v = last_value(&app);
    assert_eq!(v["event"], "PAUSED");
    assert_eq!(v["other_info"]["title"], "FIRST_PAUSE");
    assert!(v["other_info"]["description"].is_string());
    assert_eq!(
        send_tpl(&app, "paused_one").await.1["error"]["code"],
        132015
    );

    clock.advance_hours(3);
    let n = app.receiver.all().len();
    let got = app.receiver.wait_for(n + 1).await;
    let v = &got.last().unwrap().body["entry"][0]["changes"][0]["value"];
    assert_eq!(v["event"], "APPROVED");
    assert_eq!(v["other_info"]["title"], "UNPAUSE");
    assert_eq!(send_tpl(&app, "paused_one").await.0, 200);

    app.control
        .decide_template(&decision(&app, "paused_one", "PAUSED", None))
        .await
        .unwrap();
    assert_eq!(last_value(&app)["other_info"]["title"], "SECOND_PAUSE");
    clock.advance_hours(3);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        send_tpl(&app, "paused_one").await.1["error"]["code"],
        132015,
        "still paused at 3 h of 6"
    );

    let r = app
        .control
        .decide_template(&decision(&app, "paused_one", "PAUSED", None))
        .await
        .unwrap();
    assert_eq!(r.value["event"], "DISABLED");
    assert!(r.value["disable_info"]["disable_date"].is_i64());
    assert_eq!(
        send_tpl(&app, "paused_one").await.1["error"]["code"],
        132016
    );
}

/// FLAGGED keeps the template approved (with the date it would be disabled);
/// REINSTATED too; IN_APPEAL, ARCHIVED and PENDING_DELETION are 132001.
#[tokio::test]
async fn flagged_and_reinstated_stay_sendable_other_states_do_not() {
    let app = spawn_app().await;
    app.approved_template("flagged_one", BODY, &["a", "b"])
        .await;
    let r = app
        .control
        .decide_template(&decision(&app, "flagged_one", "FLAGGED", None))
        .await
        .unwrap();
    assert_eq!(
        (r.template.status.as_str(), r.value["event"].as_str()),
        ("APPROVED", Some("FLAGGED"))
    );
    assert!(r.value["disable_info"]["disable_date"].is_i64());
    assert_eq!(send_tpl(&app, "flagged_one").await.0, 200);
    for (event, code) in [
        ("IN_APPEAL", Some(132001)),
        ("REINSTATED", None),
        ("ARCHIVED", Some(132001)),
        ("UNARCHIVED", None),
        ("PENDING_DELETION", Some(132001)),
    ] {
        app.control
            .decide_template(&decision(&app, "flagged_one", event, None))
            .await
            .unwrap();
        let (status, body) = send_tpl(&app, "flagged_one").await;
        assert_eq!(
            body["error"]["code"].as_i64(),
            code,
            "{event}: {status} {body}"
        );
    }
}
