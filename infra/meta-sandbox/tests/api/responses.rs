//! Answerable alerts: reply buttons, template quick replies, read receipts,
//! and the CSM's taps and quoted replies coming back with Meta's shapes.

use crate::helpers::*;
use meta_sandbox::{InboundContext, InboundMessage, UserSpec};
use serde_json::{json, Value};

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/meta/webhook-examples"
);

fn buttons_message(to: &str, buttons: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Churn risk: Acme renews in 30 days."},
            "footer": {"text": "Fincelo alerts"},
            "action": {"buttons": buttons}
        }
    })
}

fn reply(id: &str, title: &str) -> Value {
    json!({"type": "reply", "reply": {"id": id, "title": title}})
}

/// Reply buttons go inside the window (recorded with their ids and titles);
/// outside it they fail like text (131047); Meta's limits are 131009.
#[tokio::test]
async fn reply_buttons_follow_the_window_and_metas_limits() {
    let app = spawn_app().await;
    let three = json!([
        reply("ack:k1", "Acknowledge"),
        reply("snz:k1", "Snooze 7 days"),
        reply("esc:k1", "Escalate")
    ]);
    let (status, _) = app.send(&buttons_message(CSM, three.clone())).await;
    assert_eq!(status, 200);
    let got = app.receiver.wait_for(1).await;
    assert_eq!(
        got[0].body["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"],
        131047
    );
    app.open_window(CSM).await;
    let (status, body) = app.send(&buttons_message(CSM, three)).await;
    assert_eq!(status, 200, "{body}");
    let msgs = app.control.messages(None, Some(CSM)).await.unwrap();
    let sent = msgs.last().unwrap();
    assert_eq!(sent.kind, "interactive");
    let buttons = &sent.interactive.as_ref().unwrap().buttons;
    assert_eq!(
        (buttons[0].id.as_str(), buttons[2].title.as_str()),
        ("ack:k1", "Escalate")
    );
    for (bad, what) in [
        (
            json!([reply("a", "A title over twenty chars")]),
            "title > 20",
        ),
        (
            json!([reply("a", "Same"), reply("b", "Same")]),
            "duplicate titles",
        ),
        (
            json!([
                reply("a", "A"),
                reply("b", "B"),
                reply("c", "C"),
                reply("d", "D")
            ]),
            "4 buttons",
        ),
    ] {
        let (status, body) = app.send(&buttons_message(CSM, bad)).await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(131009)),
            "{what}"
        );
    }
}

fn quick_reply_template(to: &str, index: &str, payload: &str) -> Value {
    let mut msg = template_message(to, "churn_alert", &["Asha", "Acme"]);
    msg["template"]["components"].as_array_mut().unwrap().push(
        json!({"type": "button", "sub_type": "quick_reply", "index": index,
                     "parameters": [{"type": "payload", "payload": payload}]}),
    );
    msg
}

/// Quick-reply payloads are checked against the template's own buttons and
/// the payload limit (132018) and recorded with the button's text.
#[tokio::test]
async fn quick_reply_payloads_are_checked_against_the_template() {
    let app = spawn_app().await;
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    let (status, body) = app
        .send(&quick_reply_template(CSM, "0", "ack:t1:k42"))
        .await;
    assert_eq!(status, 200, "{body}");
    let t = app.control.messages(None, None).await.unwrap()[0]
        .template
        .clone()
        .unwrap();
    assert_eq!(t.quick_replies[0].payload, "ack:t1:k42");
    assert_eq!(t.quick_replies[0].text, "Acknowledge");
    for (index, payload) in [("1", "x"), ("0", &"p".repeat(257)[..])] {
        let (status, body) = app.send(&quick_reply_template(CSM, index, payload)).await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(132018)),
            "index {index}: {body}"
        );
    }
}

/// Mark as read answers `{"success": true}` for a message this number
/// received, is listed with its typing indicator, and is 100 for an unknown
/// message or another number's.
#[tokio::test]
async fn read_receipts_are_accepted_for_received_messages_only() {
    let app = spawn_app().await;
    let received = app
        .inbound(InboundMessage {
            from: CSM.into(),
            text: Some("ack".into()),
            ..InboundMessage::default()
        })
        .await;
    let read = json!({"messaging_product": "whatsapp", "status": "read",
                      "message_id": received.message_id, "typing_indicator": {"type": "text"}});
    let (status, body) = app.send(&read).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let reads = app
        .control
        .reads(Some(&app.tenant.phone_number_id))
        .await
        .unwrap();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].message_id, received.message_id);
    assert!(reads[0].typing_indicator);

    let (status, body) = app
        .send(
            &json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.NOPE"}),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(100)));

    let mut other = app.tenant.clone();
    other.phone_number_id = format!("9{}", random_digits(14));
    app.control.register_tenant(&other).await.unwrap();
    let path = format!("{}/messages", other.phone_number_id);
    let (status, _) = app.post_as(&other.access_token, &path, &read).await;
    assert_eq!(status, 400, "another number's message");
}

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{EXAMPLES}/{name}")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["entry"][0]["changes"][0]["value"]["messages"][0]
        .clone()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// A template tap, a reply-button tap, a list reply and a quoted text reply
/// arrive with Meta's shapes (keys of Meta's examples), each with `context`
/// naming the business number and the wamid answered.
#[tokio::test]
async fn taps_and_quoted_replies_have_metas_shapes() {
    let app = spawn_app().await;
    let ctx = || {
        Some(InboundContext {
            id: "wamid.ALERT1".into(),
            from: None,
        })
    };
    let cases = [
        (
            InboundMessage {
                kind: Some("button".into()),
                button: Some(json!({"payload": "ack:t1:k42", "text": "Acknowledge"})),
                ..InboundMessage::default()
            },
            Some("metadocs__message_button__1.json"),
        ),
        (
            InboundMessage {
                kind: Some("interactive".into()),
                interactive: Some(
                    json!({"type": "button_reply", "button_reply": {"id": "ack:k1", "title": "Acknowledge"}}),
                ),
                ..InboundMessage::default()
            },
            Some("metadocs__message_interactive_button_reply__1.json"),
        ),
        (
            InboundMessage {
                kind: Some("interactive".into()),
                interactive: Some(
                    json!({"type": "list_reply", "list_reply": {"id": "snz:7", "title": "Snooze 7 days", "description": "Remind me next week"}}),
                ),
                ..InboundMessage::default()
            },
            Some("metadocs__message_interactive_list_reply__1.json"),
        ),
        (
            InboundMessage {
                text: Some("Calling them now".into()),
                ..InboundMessage::default()
            },
            None,
        ),
    ];
    for (i, (msg, example_file)) in cases.into_iter().enumerate() {
        app.inbound(InboundMessage {
            from: CSM.into(),
            context: ctx(),
            ..msg
        })
        .await;
        let m = app.values()[i]["messages"][0].clone();
        assert_eq!(
            m["context"],
            json!({"from": "15550783881", "id": "wamid.ALERT1"})
        );
        match example_file {
            Some(f) => {
                let theirs = example(f);
                let ours_keys: Vec<String> = keys(&m)
                    .into_iter()
                    .filter(|k| k != "from_logical_id")
                    .collect();
                let their_keys: Vec<String> = keys(&theirs)
                    .into_iter()
                    .filter(|k| k != "from_logical_id")
                    .collect();
                assert_eq!(ours_keys, their_keys, "{f}");
                let t = theirs["type"].as_str().unwrap();
                assert_eq!(keys(&m[t]), keys(&theirs[t]), "{f}");
            }
            None => assert_eq!(m["text"]["body"], "Calling them now"),
        }
    }
    assert_eq!(
        app.values()[0]["messages"][0]["button"]["payload"],
        "ack:t1:k42"
    );
    assert_eq!(
        app.values()[2]["messages"][0]["interactive"]["list_reply"]["description"],
        "Remind me next week"
    );
}

/// A tap from a registered user carries the user's identity fields, and any
/// inbound message (a tap too) opens the user's window.
#[tokio::test]
async fn a_tap_from_a_registered_user_carries_their_identity() {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        user_id: Some("IN.1648738043044942".into()),
        ..UserSpec::default()
    })
    .await;
    app.inbound(InboundMessage {
        from: "IN.1648738043044942".into(),
        kind: Some("button".into()),
        button: Some(json!({"payload": "ack:t1:k42", "text": "Acknowledge"})),
        context: Some(InboundContext {
            id: "wamid.ALERT1".into(),
            from: None,
        }),
        ..InboundMessage::default()
    })
    .await;
    let v = &app.values()[0];
    assert_eq!(v["messages"][0]["from"], "919876543210");
    assert_eq!(v["messages"][0]["from_user_id"], "IN.1648738043044942");
    assert_eq!(v["contacts"][0]["user_id"], "IN.1648738043044942");
    let (status, _) = app.send(&text_message(CSM, "Snoozed for 7 days")).await;
    assert_eq!(status, 200);
    app.receiver.wait_for(2).await;
    assert_ne!(app.receiver.statuses()[0]["status"], "failed");
}
