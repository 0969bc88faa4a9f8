//! Issue 4: the webhook over HTTP, as Meta calls it.

use std::time::Duration;

use crate::helpers::now;
use fincelo::store::WINDOW_SECS;
use fincelo_local::LocalTenant;
use serde_json::{json, Value};

use crate::helpers::{csm_number, digits, eventually, short_id, spawn_world, World};

fn envelope(waba: &str, field: &str, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": now(), "changes": [{"field": field, "value": value}]}]})
}

fn inbound_body(w: &World, from: &str, msg_id: &str, ts: i64) -> Vec<u8> {
    let wa = from.trim_start_matches('+');
    envelope(
        &w.tenant.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id},
            "contacts": [{"profile": {"name": "CSM"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": msg_id, "timestamp": ts.to_string(), "type": "text", "text": {"body": "hello"}}]
        }),
    )
    .to_string()
    .into_bytes()
}

fn status_body(w: &World, wamid: &str, status: &str, ts: i64, recipient: &str) -> Vec<u8> {
    envelope(
        &w.tenant.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id},
            "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": recipient.trim_start_matches('+')}]
        }),
    )
    .to_string()
    .into_bytes()
}

async fn get(w: &World, query: &str) -> reqwest::Response {
    w.http()
        .get(format!("{}?{query}", w.stack.webhook_url()))
        .send()
        .await
        .unwrap()
}

/// The handshake with the tenant's verify token answers the challenge byte for byte, as text/plain.
#[tokio::test]
async fn handshake_echoes_the_challenge() {
    let w = spawn_world().await;
    let challenge = format!("1158201444-{}", short_id());
    let r = w.handshake(&w.tenant.verify_token, &challenge).await;
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/plain"), "content-type {ct}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), challenge.as_bytes());
    w.shutdown().await;
}

/// A handshake with a wrong verify token is forbidden; one with missing parameters is a bad request.
#[tokio::test]
async fn handshake_with_wrong_token_or_missing_params_is_refused() {
    let w = spawn_world().await;
    let r = get(
        &w,
        "hub.mode=subscribe&hub.verify_token=not-the-token&hub.challenge=123",
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = get(&w, "hub.mode=subscribe&hub.challenge=123").await;
    assert_eq!(r.status(), 400);
    let r = w.http().get(w.stack.webhook_url()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    w.shutdown().await;
}

/// An unsigned, malformed-signature, wrongly-signed or unknown-tenant POST is 401 and opens no window.
#[tokio::test]
async fn unauthenticated_posts_are_refused_and_write_nothing() {
    let w = spawn_world().await;
    let csm = csm_number();
    let body = inbound_body(&w, &csm, &format!("wamid.{}", short_id()), now());
    let url = w.stack.webhook_url();
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut rb = w
            .http()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = sig {
            rb = rb.header("X-Hub-Signature-256", s);
        }
        rb.send()
    };
    assert_eq!(
        post(None, body.clone()).await.unwrap().status(),
        401,
        "missing header"
    );
    assert_eq!(
        post(Some("sha256=zz-not-hex".into()), body.clone())
            .await
            .unwrap()
            .status(),
        401,
        "bad hex"
    );
    let wrong = fincelo::webhook::signature::sign(b"some-other-secret", &body);
    assert_eq!(
        post(Some(wrong), body.clone()).await.unwrap().status(),
        401,
        "wrong signature"
    );
    // A body naming a tenant nobody has, signed with our secret.
    let stranger = String::from_utf8(body.clone())
        .unwrap()
        .replace(&w.tenant.waba_id, &digits(15))
        .replace(&w.tenant.phone_number_id, &digits(15))
        .into_bytes();
    let sig = fincelo::webhook::signature::sign(w.tenant.app_secret.as_bytes(), &stranger);
    assert_eq!(
        post(Some(sig), stranger).await.unwrap().status(),
        401,
        "unknown tenant"
    );
    let window = w.window(&csm).await;
    assert!(
        window.is_none(),
        "no refused body may open a window: {window:?}"
    );
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(1), |_| false)
        .await;
    assert!(
        events.is_empty(),
        "no refused body may publish: {events:#?}"
    );
    w.shutdown().await;
}

/// A body over 3 MiB is refused as too large, even correctly signed.
#[tokio::test]
async fn oversized_body_is_413() {
    let w = spawn_world().await;
    let mut body = inbound_body(&w, &csm_number(), "wamid.big", now());
    body.extend(std::iter::repeat_n(b' ', 3 * 1024 * 1024 + 10));
    assert_eq!(w.post_signed(&body).await.status(), 413);
    w.shutdown().await;
}

/// A signed body that is not JSON cannot name a tenant: 400 after the header check.
#[tokio::test]
async fn signed_non_json_body_is_400() {
    let w = spawn_world().await;
    assert_eq!(w.post_signed(b"this is {not json").await.status(), 400);
    w.shutdown().await;
}

/// Every example body from Meta's documentation, re-addressed to our tenant, is accepted with 200.
#[tokio::test]
async fn every_documented_webhook_example_is_accepted() {
    let w = spawn_world().await;
    let mut files: Vec<_> = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/meta/webhook-examples"
    ))
    .unwrap()
    .filter_map(|e| e.ok().map(|e| e.path()))
    .filter(|p| p.extension().is_some_and(|x| x == "json"))
    .collect();
    files.sort();
    assert!(files.len() >= 20, "examples present");
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut out = text.clone();
        for entry in v["entry"].as_array().unwrap() {
            if let Some(id) = entry["id"].as_str() {
                out = out.replace(id, &w.tenant.waba_id);
            }
            for c in entry["changes"].as_array().into_iter().flatten() {
                if let Some(p) = c["value"]["metadata"]["phone_number_id"].as_str() {
                    out = out.replace(p, &w.tenant.phone_number_id);
                }
            }
        }
        let status = w.post_signed(out.as_bytes()).await.status();
        if status != 200 {
            failures.push(format!("{}: {status}", f.display()));
        }
    }
    assert!(failures.is_empty(), "refused examples: {failures:#?}");
    w.shutdown().await;
}

/// An inbound message opens a window that expires 24 h after the message's own timestamp; an older message does not shrink it.
#[tokio::test]
async fn inbound_message_opens_a_24h_window() {
    let w = spawn_world().await;
    let csm = csm_number();
    let ts = now() - 600;
    assert_eq!(
        w.post_signed(&inbound_body(
            &w,
            &csm,
            &format!("wamid.{}", short_id()),
            ts
        ))
        .await
        .status(),
        200
    );
    let win = w.window(&csm).await.expect("window opened");
    assert_eq!(win.expires_at, ts + WINDOW_SECS);
    assert_eq!(
        w.post_signed(&inbound_body(
            &w,
            &csm,
            &format!("wamid.{}", short_id()),
            ts - 3600
        ))
        .await
        .status(),
        200
    );
    let win = w.window(&csm).await.unwrap();
    assert_eq!(
        win.expires_at,
        ts + WINDOW_SECS,
        "an older message must not shrink the window"
    );
    w.shutdown().await;
}

/// Posts one signed status webhook per `(status, seconds after t)`, in order.
async fn post_statuses(w: &World, wamid: &str, csm: &str, t: i64, sequence: &[(&str, i64)]) {
    for (status, dt) in sequence {
        let resp = w
            .post_signed(&status_body(w, wamid, status, t + dt, csm))
            .await;
        assert_eq!(resp.status(), 200, "{status}");
    }
}

fn status_events(events: &[Value], wamid: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "message.status_changed" && e["wamid"] == wamid)
        .count()
}

/// Statuses out of order and duplicated (read, sent, delivered, read) end as `read` with one event per forward move.
#[tokio::test]
async fn statuses_only_move_forward_and_publish_once_per_move() {
    let w = spawn_world().await;
    let csm = csm_number();
    let wamid = format!("wamid.{}", short_id());
    let t = now();
    post_statuses(
        &w,
        &wamid,
        &csm,
        t,
        &[("read", 3), ("sent", 1), ("delivered", 2), ("read", 3)],
    )
    .await;
    let rec = w.message_status(&wamid).await.expect("status stored");
    assert_eq!(rec.status, "read");
    // The stragglers still fill in their own times for the timeline.
    assert_eq!(
        (rec.sent_at, rec.delivered_at, rec.read_at),
        (Some(t + 1), Some(t + 2), Some(t + 3))
    );
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(2), |_| false)
        .await;
    assert_eq!(
        status_events(&events, &wamid),
        1,
        "only the first `read` moved forward: {events:#?}"
    );
    w.shutdown().await;
}

/// Sent then delivered are two forward moves: two events, in a forward-only record.
#[tokio::test]
async fn each_forward_status_move_publishes_one_event() {
    let w = spawn_world().await;
    let csm = csm_number();
    let wamid = format!("wamid.{}", short_id());
    let t = now();
    post_statuses(
        &w,
        &wamid,
        &csm,
        t,
        &[("sent", 1), ("delivered", 2), ("delivered", 2), ("sent", 1)],
    )
    .await;
    assert_eq!(w.message_status(&wamid).await.unwrap().status, "delivered");
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(2), |_| false)
        .await;
    assert_eq!(status_events(&events, &wamid), 2, "{events:#?}");
    w.shutdown().await;
}

/// A replayed body (same bytes again) is answered 200 but changes nothing and publishes nothing.
#[tokio::test]
async fn a_replayed_body_changes_nothing() {
    let w = spawn_world().await;
    let csm = csm_number();
    let body = inbound_body(&w, &csm, &format!("wamid.{}", short_id()), now() - 60);
    assert_eq!(w.post_signed(&body).await.status(), 200);
    let before = w.window(&csm).await.expect("window");
    let first = w
        .drain_until("EventsQueue", Duration::from_secs(2), |e| !e.is_empty())
        .await;
    assert!(!first.is_empty(), "the first delivery publishes an event");
    assert_eq!(w.post_signed(&body).await.status(), 200);
    let after = w.window(&csm).await.unwrap();
    assert_eq!(before, after);
    let second = w
        .drain_until("EventsQueue", Duration::from_secs(2), |_| false)
        .await;
    assert!(second.is_empty(), "a replay publishes nothing: {second:#?}");
    w.shutdown().await;
}

/// A `message_template_status_update` webhook updates the template record.
#[tokio::test]
async fn template_status_webhook_updates_the_record() {
    let w = spawn_world().await;
    let body = envelope(
        &w.tenant.waba_id,
        "message_template_status_update",
        json!({"event": "REJECTED", "message_template_id": 594425479261596_u64, "message_template_name": "fincelo_usage_risk", "message_template_language": "en", "reason": "INVALID_FORMAT"}),
    );
    assert_eq!(
        w.post_signed(body.to_string().as_bytes()).await.status(),
        200
    );
    let rec = w
        .template("fincelo_usage_risk")
        .await
        .expect("template record");
    assert_eq!(rec.status, "REJECTED");
    assert_eq!(rec.reason.as_deref(), Some("INVALID_FORMAT"));
    w.shutdown().await;
}

/// A body whose entries name two tenants' WABAs is refused (401), whichever secret signed it.
#[tokio::test]
async fn a_body_mixing_two_tenants_is_401() {
    let w = spawn_world().await;
    let other = LocalTenant::unique("other");
    w.stack.add_tenant(&other).await.unwrap();
    let mut body = envelope(
        &w.tenant.waba_id,
        "account_alerts",
        json!({"entity_type": "WABA", "entity_id": w.tenant.waba_id, "alert_info": {}}),
    );
    let second = json!({"id": other.waba_id, "time": now(), "changes": [{"field": "account_alerts", "value": {}}]});
    body["entry"].as_array_mut().unwrap().push(second);
    assert_eq!(
        w.post_signed(body.to_string().as_bytes()).await.status(),
        401
    );
    w.shutdown().await;
}

/// A message from the sandbox's own inbound flow (a real signed POST) opens the window.
#[tokio::test]
async fn sandbox_inbound_reaches_the_stack_and_opens_the_window() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    eventually(Duration::from_secs(5), || async {
        w.window(&csm)
            .await
            .is_some_and(|win| win.is_open(now(), 60))
    })
    .await;
    w.shutdown().await;
}
