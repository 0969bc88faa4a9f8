//! The error codes Meta added in 2025-2026, against the sandbox, as Meta
//! reports them by default: the send is accepted, then a `failed` status
//! carries the code (`shared/src/sender/classify.rs` says what each means).
//! And the Graph API version: Meta's current one by default, with a warning
//! before a configured one expires.

use std::time::Duration;

use fincelo::store::LedgerState;
use fincelo::templates::catalog::Catalog;
use meta_sandbox::{AccountSpec, UserSpec};
use serde_json::{json, Value};

use crate::helpers::*;

/// 131049, 131050 and 130472 concern marketing only, and the six templates
/// are UTILITY: these tests have Meta re-categorise them as MARKETING (its
/// `template_category_update`), by submitting them to the sandbox as such,
/// and wait until the service has them APPROVED.
async fn templates_categorised_as_marketing(w: &World) {
    let http = reqwest::Client::new();
    for def in Catalog::builtin().all() {
        let mut body = def.create_request();
        body["category"] = json!("MARKETING");
        let resp = http
            .post(format!(
                "{}/{}/{}/message_templates",
                w.sandbox.base_url(),
                fincelo::graph::CURRENT_VERSION,
                w.tenant.waba_id
            ))
            .bearer_auth(&w.tenant.access_token)
            .json(&body)
            .send()
            .await
            .expect("sandbox reachable");
        assert!(
            resp.status().is_success(),
            "{}",
            resp.text().await.unwrap_or_default()
        );
    }
    eventually(Duration::from_secs(15), || async {
        let list = w
            .stack
            .app
            .store
            .list_templates(&w.tenant_id)
            .await
            .unwrap();
        list.iter().filter(|t| t.is_approved()).count() == 6
    })
    .await;
}

/// The default world's options with `instances` sender pollers and `env`
/// added to its configuration.
fn options(instances: u32, env: &[(&str, &str)]) -> WorldOptions {
    let mut opts = WorldOptions {
        sender_instances: instances,
        ..WorldOptions::default()
    };
    opts.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    opts
}

/// Takes from the send queue, within `timeout`, the first body `pick` wants.
async fn take_from_send_queue(
    w: &World,
    timeout: Duration,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    let got = w
        .drain_until("SendQueue", timeout, |got| got.iter().any(&pick))
        .await;
    got.into_iter()
        .find(|b| pick(b))
        .unwrap_or_else(|| panic!("nothing of the kind on the send queue within {timeout:?}"))
}

/// Meta's per-user marketing limit (131049) on one CSM: the alert is
/// tried once, Meta refuses it (by webhook), and it is not tried again
/// before Meta's 24 hours, however often its copy comes back; another
/// CSM's alert goes out meanwhile. A day later, the limit lifted, it goes
/// out: two attempts in all, no burst.
#[tokio::test]
async fn a_per_user_limit_131049_is_tried_once_then_waits_a_day_for_that_csm_only() {
    let w = spawn_world_with(options(0, &[("SEND_REQUEUE_DELAY_SECS", "1")])).await;
    templates_categorised_as_marketing(&w).await;
    let (limited, other) = (csm_number(), csm_number());
    let user = |limited_now: bool| UserSpec {
        phone_number: Some(limited.clone()),
        marketing_limited: limited_now,
        ..UserSpec::default()
    };
    w.meta.register_user(&user(true)).await.unwrap();
    let a = send_request(&w.tenant.tenant_id, &limited).deliver_by(w.now() + 5 * 86_400);
    let b = send_request(&w.tenant.tenant_id, &other).deliver_by(w.now() + 5 * 86_400);

    assert!(hand_to_sender(&w, &[a.json(), b.json()]).await.is_empty());
    // Meta accepted both; its `failed` status for A comes by webhook, and
    // the webhook hands the refusal to the sender.
    let refusal = take_from_send_queue(&w, Duration::from_secs(15), |b| {
        b["kind"] == "send_refused" && b["idempotency_key"] == a.key.as_str()
    })
    .await;
    assert_eq!(refusal["error"]["code"], 131049, "{refusal}");
    assert!(hand_to_sender(&w, &[refusal]).await.is_empty());

    let entry = w.ledger(&a.key).await.unwrap();
    assert_eq!(entry.state, LedgerState::Retry);
    let retry_at = entry.retry_at.expect("a time for the next try");
    assert!(
        retry_at >= w.now() + 86_400 - 60,
        "{retry_at} vs {}",
        w.now()
    );
    assert_eq!(w.ledger(&b.key).await.unwrap().state, LedgerState::Sent);
    assert_eq!(w.messages_to(&limited).await.len(), 1);

    // Its copy comes back: pushed out, not sent. Again 23 hours later.
    let copy = take_from_send_queue(&w, Duration::from_secs(10), |b| {
        b["idempotency_key"] == a.key.as_str() && b.get("kind").is_none()
    })
    .await;
    assert_eq!(
        hand_to_sender(&w, std::slice::from_ref(&copy)).await.len(),
        1,
        "asked to see it later"
    );
    w.advance(Duration::from_secs(23 * 3600)).await;
    assert_eq!(
        hand_to_sender(&w, std::slice::from_ref(&copy)).await.len(),
        1
    );
    assert_eq!(
        w.messages_to(&limited).await.len(),
        1,
        "no second attempt within 24 h"
    );
    assert_eq!(w.ledger(&a.key).await.unwrap().attempts, 1);

    // A day after the refusal, the limit lifted: it goes out, once.
    w.meta.register_user(&user(false)).await.unwrap();
    w.advance(Duration::from_secs(3600 + 60)).await;
    assert!(hand_to_sender(&w, &[copy]).await.is_empty());
    let entry = w.ledger(&a.key).await.unwrap();
    assert_eq!(entry.state, LedgerState::Sent);
    assert_eq!(entry.attempts, 2);
    let sent = w.messages_to(&limited).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].failed_with, Some(131049));
    assert_eq!(sent[1].failed_with, None);
    w.shutdown().await;
}

/// A CSM who stopped marketing messages (131050): the alert is parked with
/// a reason of its own, Meta's code and title, once, and never retried.
#[tokio::test]
async fn a_csm_who_stopped_marketing_131050_is_parked_with_its_reason() {
    let w = spawn_world().await;
    templates_categorised_as_marketing(&w).await;
    let csm = csm_number();
    w.meta
        .register_user(&UserSpec {
            phone_number: Some(csm.clone()),
            stopped_marketing: true,
            ..UserSpec::default()
        })
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm);
    w.enqueue(&req.json()).await;
    eventually(Duration::from_secs(30), || async {
        w.ledger(&req.key)
            .await
            .is_some_and(|e| e.state == LedgerState::Parked)
    })
    .await;
    let entry = w.ledger(&req.key).await.unwrap();
    assert!(
        entry
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("user_stopped_marketing: meta:131050")),
        "{entry:?}"
    );
    let parked = w.stack.app.store.list_parked(&w.tenant_id).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].reason, "user_stopped_marketing");
    assert_eq!(parked[0].meta_code, Some(131050));
    let dlq = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(10), |g| {
            !g.is_empty()
        })
        .await;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let why = &dlq[0]["parked_reason"];
    assert_eq!(why["reason"], "user_stopped_marketing");
    assert_eq!(why["meta_code"], 131050);
    assert!(
        why["meta_title"]
            .as_str()
            .is_some_and(|t| t.contains("stop receiving marketing messages")),
        "{why}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 1, "never retried");
    w.shutdown().await;
}

/// A payment issue (131042) holds the tenant: the first alert meets it
/// (by webhook) and the hold starts; the tenant's other alerts are then not
/// attempted, and none of them is claimed or counts an attempt, while they
/// come back from the queue; the channel status shows the hold. One alert
/// per probe interval goes through: refused, the hold stays. Once the
/// account is cleared, the next probe is delivered, the hold ends and every
/// alert goes out, each sent once.
///
/// One sender instance, so that the hold it starts is the one it reads at
/// once (another instance reads it within `HOLD_CACHE_TTL`, 10 s).
#[tokio::test]
async fn a_payment_issue_131042_holds_the_tenants_sends_until_it_clears() {
    let w = spawn_world_with(options(1, &[("SEND_REQUEUE_DELAY_SECS", "1")])).await;
    w.approve_all_templates().await;
    let account = |issue: bool| AccountSpec {
        waba_id: w.tenant.waba_id.clone(),
        payment_issue: Some(issue),
        ..AccountSpec::default()
    };
    w.meta.set_account(&account(true)).await.unwrap();

    let first = send_request(&w.tenant.tenant_id, &csm_number());
    w.enqueue(&first.json()).await;
    eventually(Duration::from_secs(30), || async {
        w.stack
            .app
            .store
            .get_hold(&w.tenant_id)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let hold = w
        .stack
        .app
        .store
        .get_hold(&w.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hold.reason.as_str(), hold.meta_code),
        ("payment_issue", 131042)
    );
    eventually(Duration::from_secs(10), || async {
        w.ledger(&first.key)
            .await
            .is_some_and(|e| e.state == LedgerState::Retry)
    })
    .await;

    let others: Vec<SendRequestBuilder> = (0..3)
        .map(|_| send_request(&w.tenant.tenant_id, &csm_number()))
        .collect();
    for r in &others {
        w.enqueue(&r.json()).await;
    }
    // Several trips round the queue (1 s each): nothing goes to Meta.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        w.messages_to_tenant().await.len(),
        1,
        "only the first alert met Meta"
    );
    for r in &others {
        assert!(w.ledger(&r.key).await.is_none(), "{} was claimed", r.key);
    }
    assert_eq!(w.ledger(&first.key).await.unwrap().attempts, 1);
    let status = channel_status(&w).await;
    assert_eq!(status["sends_held"]["reason"], "payment_issue", "{status}");
    assert_eq!(status["sends_held"]["meta_code"], 131042, "{status}");
    assert_eq!(status["sends_held"]["since"], hold.since, "{status}");

    // A probe interval later, one alert goes through as the probe; Meta
    // still refuses it, and the hold stays. Nothing else is attempted.
    w.advance(Duration::from_secs(16 * 60)).await;
    eventually(Duration::from_secs(30), || async {
        w.messages_to_tenant().await.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        w.messages_to_tenant().await.len(),
        2,
        "one probe per interval"
    );
    let hold = w.stack.app.store.get_hold(&w.tenant_id).await.unwrap();
    assert_eq!(
        hold.map(|h| h.probes),
        Some(1),
        "still held after the refused probe"
    );

    // Fixed at Meta; the next probe is delivered and the hold ends.
    w.meta.set_account(&account(false)).await.unwrap();
    w.advance(Duration::from_secs(16 * 60)).await;
    let keys: Vec<&str> = std::iter::once(first.key.as_str())
        .chain(others.iter().map(|r| r.key.as_str()))
        .collect();
    eventually(Duration::from_secs(60), || async {
        for k in &keys {
            if w.ledger(k)
                .await
                .is_none_or(|e| e.state != LedgerState::Sent)
            {
                return false;
            }
        }
        true
    })
    .await;
    eventually(Duration::from_secs(30), || async {
        w.stack
            .app
            .store
            .get_hold(&w.tenant_id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    assert_eq!(channel_status(&w).await["sends_held"], Value::Null);
    // Meta saw the first alert, the refused probe, then each alert once;
    // every attempt counted is one of those, no other was burned.
    let accepted = w.messages_to_tenant().await;
    assert_eq!(
        accepted.len(),
        2 + keys.len(),
        "each alert sent once after the hold"
    );
    assert_eq!(
        accepted
            .iter()
            .filter(|m| m.failed_with == Some(131042))
            .count(),
        2
    );
    let mut attempts = 0;
    for k in &keys {
        attempts += w.ledger(k).await.unwrap().attempts as usize;
    }
    assert_eq!(attempts, accepted.len());
    w.shutdown().await;
}

async fn channel_status(w: &World) -> Value {
    let resp = fincelo::admin::channel::status(&w.stack.app, &w.tenant_id)
        .await
        .expect("status");
    assert_eq!(resp.status, 200);
    resp.body.expect("body")
}

/// Alerts go out on Meta's current Graph API version (v26.0), which the
/// sandbox serves, and start-up has nothing to warn about.
#[tokio::test]
async fn alerts_go_out_on_metas_current_graph_version() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("version check");
    w.enqueue(&req.json()).await;
    eventually(Duration::from_secs(20), || async {
        !w.messages_to(&csm).await.is_empty()
    })
    .await;
    assert_eq!(w.messages_to(&csm).await[0].graph_version, "v26.0");
    assert_eq!(
        fincelo::startup::warn_if_graph_version_expiring(&w.stack.app),
        None
    );
    w.shutdown().await;
}

/// A deployment configured with v25.0 (Meta: expires 2028-07-29) is
/// warned from 90 days before that date, and told it has expired after it.
#[tokio::test]
async fn start_up_warns_ninety_days_before_the_configured_graph_version_expires() {
    let w = spawn_world_with(options(0, &[("GRAPH_API_VERSION", "v25.0")])).await;
    let expires = 1_848_441_600; // 2028-07-29T00:00:00Z
    let check = || fincelo::startup::warn_if_graph_version_expiring(&w.stack.app);
    // 91 days and 23 hours before the expiry: 91 whole days left.
    w.advance(Duration::from_secs(
        u64::try_from(expires - 92 * 86_400 + 3600 - w.now()).expect("before 2028-04"),
    ))
    .await;
    assert_eq!(check(), None, "91 whole days left");
    w.advance(Duration::from_secs(86_400)).await;
    let warning = check().expect("a warning 90 days before");
    assert_eq!(warning.days_left, 90);
    assert!(!warning.expired());
    assert!(
        warning
            .to_string()
            .contains("v25.0 expires on 2028-07-29 (in 90 days)"),
        "{warning}"
    );
    assert!(warning.to_string().contains("to v26.0"), "{warning}");
    // The channel status carries it for `fwa status` (its printing: show.rs).
    let status = channel_status(&w).await;
    assert_eq!(status["graph_api"]["version"], "v25.0");
    assert_eq!(status["graph_api"]["warning"], warning.to_string());

    w.advance(Duration::from_secs(91 * 86_400)).await;
    let warning = check().expect("a warning after expiry");
    assert!(warning.expired());
    assert!(
        warning.to_string().contains("expired on 2028-07-29"),
        "{warning}"
    );
    w.shutdown().await;
}
