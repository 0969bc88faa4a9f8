//! WhatsApp users as Meta identifies them in 2026: `wa_id`s that are not the
//! digits sent to, BSUIDs, usernames, `recipient` sends and id changes.

use crate::helpers::*;
use meta_sandbox::{InboundMessage, UserIdChange, UserSpec};
use serde_json::{json, Value};

const BSUID: &str = "US.13491208655302741918";
const PARENT: &str = "US.ENT.11815799212886844830";

fn hi_from(from: &str) -> InboundMessage {
    InboundMessage {
        from: from.into(),
        text: Some("hi".into()),
        ..InboundMessage::default()
    }
}

/// Mexico (`521…` for a `+52` mobile), Brazil (no ninth digit) and
/// Argentina (`549…`): a reply from the `wa_id` opens the window of the
/// number the business sends to; the send answers the `wa_id`; statuses use it.
#[tokio::test]
async fn a_wa_id_that_differs_from_the_number_finds_the_same_window() {
    let app = spawn_app().await;
    app.control
        .set_knobs(&json!({"window_error_mode": "sync", "status_progression": ["sent"]}))
        .await
        .unwrap();
    for (i, (number, wa_id)) in [
        ("+52 55 1234 5678", "5215512345678"),
        ("+55 11 91234 5678", "551112345678"),
        ("+54 11 1234 5678", "5491112345678"),
    ]
    .into_iter()
    .enumerate()
    {
        app.register_user(&UserSpec {
            phone_number: Some(number.into()),
            wa_id: Some(wa_id.into()),
            ..UserSpec::default()
        })
        .await;
        app.inbound(hi_from(wa_id)).await;
        let (status, body) = app.send(&text_message(number, "Churn risk")).await;
        assert_eq!(status, 200, "{number}: {body}");
        assert_eq!(body["contacts"][0]["input"], number);
        assert_eq!(body["contacts"][0]["wa_id"], wa_id);
        assert!(body["contacts"][0].get("user_id").is_none());
        // One inbound and one `sent` status per country.
        app.receiver.wait_for(2 * (i + 1)).await;
        let statuses = app.receiver.statuses();
        assert_eq!(statuses.len(), i + 1);
        assert_eq!(statuses[i]["recipient_id"], wa_id);
    }
}

/// A user with a username and no phone-number history writes with
/// `from_user_id` and no `from`; `contacts[]` has `user_id`,
/// `parent_user_id` and `profile.username` and no `wa_id`. Once the business
/// sends to their number, Meta shows it again.
#[tokio::test]
async fn a_username_hides_the_phone_until_the_business_uses_it() {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        user_id: Some(BSUID.into()),
        parent_user_id: Some(PARENT.into()),
        username: Some("@asha".into()),
        profile_name: Some("Asha".into()),
        ..UserSpec::default()
    })
    .await;
    app.inbound(hi_from(BSUID)).await;
    let v = &app.values()[0];
    let m = &v["messages"][0];
    assert!(m.get("from").is_none(), "{m}");
    assert_eq!(m["from_user_id"], BSUID);
    assert_eq!(m["from_parent_user_id"], PARENT);
    let c = &v["contacts"][0];
    assert!(c.get("wa_id").is_none(), "{c}");
    assert_eq!(
        (
            c["user_id"].as_str(),
            c["parent_user_id"].as_str(),
            c["profile"]["username"].as_str()
        ),
        (Some(BSUID), Some(PARENT), Some("@asha"))
    );

    // The window opened by the BSUID-only message is the number's too.
    let (status, body) = app.send(&text_message(CSM, "Churn risk: Acme")).await;
    assert_eq!(status, 200, "{body}");
    app.receiver.wait_for(4).await;
    let statuses = app.receiver.statuses();
    for s in &statuses {
        assert_eq!(s["recipient_id"], "919876543210");
        assert_eq!(s["recipient_user_id"], BSUID);
        assert_eq!(s["recipient_parent_user_id"], PARENT);
    }
    let status_values: Vec<Value> = app
        .values()
        .into_iter()
        .filter(|v| v["statuses"].is_array())
        .collect();
    let sent = &status_values[0]["contacts"][0];
    assert_eq!(sent["user_id"], BSUID);
    assert!(
        sent["profile"].get("username").is_none(),
        "no username on sent"
    );
    assert_eq!(
        status_values[1]["contacts"][0]["profile"]["username"],
        "@asha"
    );

    app.inbound(hi_from(BSUID)).await;
    let last = app.values().pop().unwrap();
    assert_eq!(
        last["messages"][0]["from"], "919876543210",
        "shown after the send"
    );
    assert_eq!(last["contacts"][0]["wa_id"], "919876543210");
}

/// `recipient` sends to a BSUID: the response carries `user_id` and no
/// `wa_id`, statuses carry `recipient_user_id` and (the phone being hidden)
/// no `recipient_id`; authentication templates are 131062; a utility one goes.
#[tokio::test]
async fn a_bsuid_send_uses_recipient_except_for_authentication_templates() {
    let app = spawn_app().await;
    app.control
        .set_account(&meta_sandbox::AccountSpec {
            waba_id: app.tenant.waba_id.clone(),
            contact_book: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        user_id: Some(BSUID.into()),
        username: Some("@asha".into()),
        ..UserSpec::default()
    })
    .await;
    app.inbound(hi_from(BSUID)).await;
    let (status, body) = app.send(&text_to_bsuid(BSUID, "Churn risk")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["contacts"][0],
        json!({"input": BSUID, "user_id": BSUID})
    );
    app.receiver.wait_for(4).await;
    for s in app.receiver.statuses() {
        assert!(s.get("recipient_id").is_none(), "{s}");
        assert_eq!(s["recipient_user_id"], BSUID);
    }
    let msgs = app.control.messages(None, Some(BSUID)).await.unwrap();
    assert_eq!(msgs[0].recipient.as_deref(), Some(BSUID));

    app.approved_template_in(
        "otp_code",
        "AUTHENTICATION",
        "Your code is {{1}} ok",
        &["1"],
    )
    .await;
    app.approved_template("churn_alert", "Hi {{1}}, see {{2}}.", &["a", "b"])
        .await;
    let mut auth = template_message(CSM, "otp_code", &["123456"]);
    auth.as_object_mut().unwrap().remove("to");
    auth["recipient"] = json!(BSUID);
    let (status, body) = app.send(&auth).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131062)),
        "{body}"
    );
    let mut utility = template_message(CSM, "churn_alert", &["Asha", "Acme"]);
    utility.as_object_mut().unwrap().remove("to");
    utility["recipient"] = json!(BSUID);
    assert_eq!(app.send(&utility).await.0, 200);

    let (status, body) = app.send(&text_to_bsuid("US.999", "x")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "an unknown BSUID"
    );
}

/// A failed status for a message sent to a phone number: no `contacts`, no
/// `recipient_user_id` (Meta's BSUID document).
#[tokio::test]
async fn a_failed_status_has_no_contacts_and_no_recipient_user_id() {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        user_id: Some(BSUID.into()),
        ..UserSpec::default()
    })
    .await;
    app.send(&text_message(CSM, "outside the window")).await;
    app.receiver.wait_for(1).await;
    let v = &app.values()[0];
    assert_eq!(v["statuses"][0]["status"], "failed");
    assert!(v.get("contacts").is_none());
    assert!(v["statuses"][0].get("recipient_user_id").is_none());
    assert_eq!(v["statuses"][0]["recipient_id"], "919876543210");
}

/// A user changing their id: Meta's `user_id_update` webhook and the
/// `user_changed_user_id` system message; the window stays with the user,
/// the new BSUID works and the old one is unknown.
#[tokio::test]
async fn an_id_change_sends_both_webhooks_and_keeps_the_window() {
    let app = spawn_app().await;
    app.register_user(&UserSpec {
        phone_number: Some(CSM.into()),
        user_id: Some(BSUID.into()),
        parent_user_id: Some(PARENT.into()),
        profile_name: Some("Asha".into()),
        ..UserSpec::default()
    })
    .await;
    app.inbound(hi_from(CSM)).await;
    let r = app
        .control
        .change_user_id(&UserIdChange {
            phone_number_id: app.tenant.phone_number_id.clone(),
            user: CSM.into(),
            new_user_id: Some("US.55551208655302741999".into()),
            ..UserIdChange::default()
        })
        .await
        .unwrap();
    assert_eq!(r.previous_user_id.as_deref(), Some(BSUID));
    assert!(r.webhook.iter().all(|w| w.delivered));

    let update = &app.bodies_of("user_id_update")[0]["entry"][0]["changes"][0]["value"];
    let u = &update["user_id_update"][0];
    assert_eq!(
        u["user_id"],
        json!({"previous": BSUID, "current": "US.55551208655302741999"})
    );
    assert_eq!(u["parent_user_id"]["previous"], PARENT);
    assert!(u["parent_user_id"]["current"]
        .as_str()
        .unwrap()
        .starts_with("US.ENT."));
    assert_eq!(u["wa_id"], "919876543210");
    assert_eq!(update["contacts"][0]["profile"]["name"], "Asha");
    assert!(u["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(
        update["metadata"]["phone_number_id"],
        app.tenant.phone_number_id.as_str()
    );

    let system = app
        .values()
        .into_iter()
        .find(|v| v["messages"][0]["type"] == "system")
        .expect("system message");
    assert!(system.get("contacts").is_none());
    let m = &system["messages"][0];
    assert_eq!(m["system"]["type"], "user_changed_user_id");
    assert_eq!(m["system"]["user_id"], "US.55551208655302741999");
    assert_eq!(
        m["system"]["body"],
        format!("User Asha changed from {BSUID} to US.55551208655302741999")
    );
    assert!(m.get("from").is_none() && m["system"].get("wa_id").is_none());

    let (status, body) = app
        .send(&text_to_bsuid(
            "US.55551208655302741999",
            "still in the window",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.send(&text_to_bsuid(BSUID, "old id")).await;
    assert_eq!(status, 400);
}
