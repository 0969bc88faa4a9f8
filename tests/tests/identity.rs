//! Issue 18: CSMs as Meta names them in 2026, end to end against the
//! sandbox. A `wa_id` that is not the number's digits (Mexico, Brazil,
//! Argentina), a user known only by a BSUID and a username, and a user who
//! changes their BSUID: in each case the reply opens the window the next
//! alert reads, that alert goes free-form, and the events name the person.

use std::time::Duration;

use fincelo::identity::Identity;
use fincelo::ids::CsmId;
use fincelo::store::LedgerState;
use meta_sandbox::{InboundRequest, MessageRecord, UserIdChange, UserSpec};
use serde_json::{json, Value};

use crate::helpers::*;

/// The person `who` is, as the webhook stored their window.
async fn has_window(w: &World, who: &Identity) -> bool {
    w.stack
        .app
        .store
        .get_window(&w.tenant_id, who)
        .await
        .expect("window read")
        .is_some()
}

/// The user writes to the business number from `from` (any of their ids).
async fn writes(w: &World, from: &str) {
    let r = w
        .meta
        .inbound(&InboundRequest {
            phone_number_id: w.tenant.phone_number_id.clone(),
            from: from.to_string(),
            text: "on it".into(),
            timestamp: None,
            profile_name: None,
        })
        .await
        .expect("inbound");
    assert!(r.webhook.iter().all(|d| d.delivered), "{:?}", r.webhook);
}

/// Enqueues an alert to `recipient` and waits until it is sent; returns
/// what Meta received for it.
async fn alert(w: &World, recipient: Value) -> MessageRecord {
    let mut req = send_request(&w.tenant.tenant_id, "+15550000000")
        .text("Globex crossed 90% of its seats.")
        .json();
    req["recipient"] = recipient;
    let key = req["idempotency_key"].as_str().expect("key").to_string();
    w.enqueue(&req).await;
    // Meta's pair limit paces a second alert to one person by seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !w
        .ledger(&key)
        .await
        .is_some_and(|l| l.state == LedgerState::Sent)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} not sent within 60 s: {}",
            w.timeline(&key).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = w
        .meta
        .messages(Some(&w.tenant.phone_number_id), None)
        .await
        .expect("sandbox messages");
    sent.into_iter()
        .find(|m| m.biz_opaque_callback_data.as_deref() == Some(key.as_str()))
        .expect("Meta received the alert")
}

/// The events of `kind` among `events`.
fn of_kind<'e>(events: &'e [Value], kind: &str) -> Vec<&'e Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Drains the events queue until `enough` holds for what was drained.
async fn events_until(w: &World, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    w.drain_until("EventsQueue", Duration::from_secs(20), enough)
        .await
}

/// A roster CSM whose `wa_id` is another form of the roster's number writes
/// before any alert went to them: the reply opens the CSM's window, the
/// alert goes free-form to the roster's number, and the events name the
/// CSM with the `wa_id` Meta reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_a_wa_id_that_is_not_the_number_opens_the_roster_csms_window() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let cases = [
        ("csm-mx", "+525512345678", "5215512345678"),
        ("csm-br", "+5511987654321", "551187654321"),
        ("csm-ar", "+541123456789", "5491123456789"),
    ];
    for (csm_id, number, wa_id) in cases {
        let path = format!("/admin/tenants/{}/csms/{csm_id}", w.tenant.tenant_id);
        let (status, body, _) =
            admin(&w, "PUT", &path, Some(json!({"whatsapp_number": number}))).await;
        assert_eq!(status, 201, "{body}");
        w.meta
            .register_user(&UserSpec {
                phone_number: Some(number.into()),
                wa_id: Some(wa_id.into()),
                ..UserSpec::default()
            })
            .await
            .expect("user");

        writes(&w, wa_id).await;
        let csm = Identity::Csm(CsmId::parse(csm_id).expect("id"));
        eventually(Duration::from_secs(10), || has_window(&w, &csm)).await;

        let sent = alert(&w, json!({"csm_id": csm_id})).await;
        assert_eq!(
            sent.kind, FREE_FORM,
            "{csm_id}: inside the window, free-form"
        );
        assert_eq!(sent.to.trim_start_matches('+'), &number[1..]);
        assert_eq!(sent.wa_id, wa_id);
    }

    let names = |e: &Value, field: &str, csm_id: &str| e[field]["csm_id"] == csm_id;
    let events = events_until(&w, |got| {
        cases.iter().all(|(id, ..)| {
            got.iter().any(|e| names(e, "who", id)) && got.iter().any(|e| names(e, "recipient", id))
        })
    })
    .await;
    let received = of_kind(&events, "csm.message_received");
    for (csm_id, _, wa_id) in cases {
        let e = received
            .iter()
            .find(|e| e["who"]["csm_id"] == csm_id)
            .unwrap_or_else(|| panic!("{csm_id}'s reply names them: {received:?}"));
        assert_eq!(e["who"]["wa_id"], wa_id);
    }
    let statuses = of_kind(&events, "message.status_changed");
    for (csm_id, _, wa_id) in cases {
        let s = statuses
            .iter()
            .find(|s| s["recipient"]["csm_id"] == csm_id)
            .unwrap_or_else(|| panic!("a status names {csm_id}: {statuses:?}"));
        assert_eq!(s["recipient"]["wa_id"], wa_id);
    }
    w.shutdown().await;
}

/// Someone off the roster, alerted first: the template's answer says which
/// `wa_id` the number became (Brazil, without the ninth digit), so their
/// reply from it opens the window of the number, and the next alert goes
/// free-form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wa_id_a_send_reports_leads_the_reply_to_the_numbers_window() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let (number, wa_id) = ("+5511912345678", "551112345678");
    w.meta
        .register_user(&UserSpec {
            phone_number: Some(number.into()),
            wa_id: Some(wa_id.into()),
            ..UserSpec::default()
        })
        .await
        .expect("user");

    let first = alert(&w, json!({"phone": number})).await;
    assert_eq!(first.kind, "template", "no window yet");
    assert_eq!(first.wa_id, wa_id);

    writes(&w, wa_id).await;
    eventually(Duration::from_secs(10), || async {
        w.window(number).await.is_some()
    })
    .await;
    let second = alert(&w, json!({"phone": number})).await;
    assert_eq!(
        second.kind, FREE_FORM,
        "the reply opened the number's window"
    );
    w.shutdown().await;
}

/// A user with a username who never shared their number: Meta's webhooks
/// carry only their BSUID. Their message opens a window, an alert named by
/// `user_id` goes free-form through Meta's `recipient`, and the events carry
/// the BSUID and the username. After they change their BSUID, an alert named
/// by the old one finds the same window and goes to the new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csm_known_only_by_bsuid_is_answered_free_form_across_an_id_change() {
    // One sender instance, so both alerts meet the same warm caches.
    let w = spawn_world_with(WorldOptions {
        sender_instances: 1,
        ..WorldOptions::default()
    })
    .await;
    w.approve_all_templates().await;
    let old = "US.13491208655302741918";
    w.meta
        .register_user(&UserSpec {
            phone_number: Some("+14155550123".into()),
            user_id: Some(old.into()),
            username: Some("@ana.csm".into()),
            ..UserSpec::default()
        })
        .await
        .expect("user");

    writes(&w, old).await;
    let who = Identity::User(old.into());
    eventually(Duration::from_secs(10), || has_window(&w, &who)).await;
    let events = events_until(&w, |got| !of_kind(got, "csm.message_received").is_empty()).await;
    let received = of_kind(&events, "csm.message_received");
    assert_eq!(received[0]["who"]["user_id"], old, "{received:?}");
    assert_eq!(received[0]["who"]["username"], "@ana.csm");
    assert!(received[0]["who"]["wa_id"].is_null(), "{received:?}");

    let first = alert(&w, json!({"user_id": old})).await;
    assert_eq!(first.kind, FREE_FORM);
    assert_eq!(first.recipient.as_deref(), Some(old));

    let change = w
        .meta
        .change_user_id(&UserIdChange {
            phone_number_id: w.tenant.phone_number_id.clone(),
            user: old.into(),
            ..UserIdChange::default()
        })
        .await
        .expect("id change");
    assert!(change.webhook.iter().all(|d| d.delivered), "{change:?}");
    let new = change.user.spec.user_id.clone().expect("a new BSUID");
    assert_ne!(new, old);
    let renamed = Identity::User(new.clone());
    eventually(Duration::from_secs(10), || has_window(&w, &renamed)).await;

    let second = alert(&w, json!({"user_id": old})).await;
    assert_eq!(second.kind, FREE_FORM, "the window followed the new id");
    assert_eq!(second.recipient.as_deref(), Some(new.as_str()));
    let events = events_until(&w, |got| {
        got.iter().any(|s| {
            s["type"] == "message.status_changed"
                && s["wamid"] == second.wamid.as_str()
                && s["recipient"]["user_id"] == new.as_str()
        })
    })
    .await;
    assert!(
        events
            .iter()
            .any(|s| s["wamid"] == second.wamid.as_str()
                && s["recipient"]["user_id"] == new.as_str()),
        "a status of the second alert names the new BSUID: {events:?}"
    );
    w.shutdown().await;
}
