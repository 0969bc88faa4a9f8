//! Issue 5, continued: each of Meta's error classes met head-on, the
//! per-number and per-recipient rate limits, and a batch in which one record
//! cannot be processed.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::{first_delivery, now};
use aws_lambda_events::sqs::SqsEvent;
use fincelo::ids::IdempotencyKey;
use fincelo::store::{LedgerState, SendMode, TemplateChangeAt};
use serde_json::{json, Value};

use crate::helpers::{
    body_of, csm_number, eventually, send_request, spawn_world, spawn_world_with,
    spawn_world_without_sender, SendRequestBuilder, World, WorldOptions, FREE_FORM,
};

async fn wait_sent(w: &World, key: &str, timeout: Duration) -> fincelo::store::LedgerEntry {
    eventually(timeout, || async {
        w.ledger(key)
            .await
            .is_some_and(|l| l.state == LedgerState::Sent)
    })
    .await;
    w.ledger(key).await.expect("ledger entry")
}

async fn rejections(w: &World, code: &str) -> u64 {
    let stats = w.meta.stats().await.expect("sandbox stats");
    stats.rejections_by_code.get(code).copied().unwrap_or(0)
}

/// Our table says the window is open but Meta's does not (the CSM's last
/// message is older than we think). Meta answers 131047 at once: the same
/// invocation closes the window and sends the template instead.
#[tokio::test]
async fn sync_131047_closes_the_window_and_sends_the_template_at_once() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    w.meta
        .set_knobs(&json!({"window_error_mode": "sync"}))
        .await
        .unwrap();
    let csm = csm_number();
    w.window_only_in_our_table(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85%.");
    w.enqueue(&req.json()).await;

    let entry = wait_sent(&w, &req.key, Duration::from_secs(20)).await;
    assert_eq!(entry.mode, Some(SendMode::Template));
    assert_eq!(entry.template.as_deref(), Some("fincelo_usage_opportunity"));
    assert_eq!(entry.attempts, 1, "one delivery did both calls");
    let msgs = w.messages_to(&csm).await;
    assert_eq!(msgs.len(), 1, "only the template was accepted: {msgs:?}");
    assert_eq!(msgs[0].kind, "template");
    assert_eq!(entry.wamid.as_deref(), Some(msgs[0].wamid.as_str()));
    assert_eq!(rejections(&w, "131047").await, 1);
    let window = w.window(&csm).await.expect("window item kept");
    assert!(!window.is_open(now(), 0), "window closed: {window:?}");
    w.shutdown().await;
}

/// Meta's real behaviour: the free-form send is accepted, then a `failed`
/// status with 131047 arrives. The webhook closes the window and hands the
/// alert back; the sender sends the template, so the CSM still gets it.
#[tokio::test]
async fn async_131047_hands_the_alert_back_and_the_template_goes_out() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    w.window_only_in_our_table(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm)
        .event("overdue_invoice", "critical", false)
        .text("Globex's invoice is 30 days overdue.");
    w.enqueue(&req.json()).await;

    eventually(Duration::from_secs(30), || async {
        w.ledger(&req.key)
            .await
            .is_some_and(|l| l.state == LedgerState::Sent && l.mode == Some(SendMode::Template))
    })
    .await;
    let entry = w.ledger(&req.key).await.unwrap();
    assert_eq!(
        entry.template.as_deref(),
        Some("fincelo_collections_urgent")
    );
    let msgs = w.messages_to(&csm).await;
    let kinds: Vec<&str> = msgs.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, [FREE_FORM, "template"], "{msgs:?}");
    assert_eq!(entry.wamid.as_deref(), Some(msgs[1].wamid.as_str()));
    // The text's failure is on record with Meta's code.
    let failed = w.message_status(&msgs[0].wamid).await.expect("status kept");
    assert_eq!(failed.status, "failed");
    assert!(
        failed
            .errors_json
            .as_deref()
            .unwrap_or("")
            .contains("131047"),
        "{failed:?}"
    );
    let window = w.window(&csm).await.expect("window item kept");
    assert!(!window.is_open(now(), 0), "window closed: {window:?}");
    // A second hand-back (Meta retrying the failed webhook) sends nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 2);
    w.shutdown().await;
}

/// The token was rotated at Meta and in Secrets Manager while the sender
/// held the old one in its cache: Meta answers 190, the sender refreshes
/// once and the same delivery goes out.
#[tokio::test]
async fn a_190_refreshes_the_token_once_and_the_alert_goes_out() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let warm = send_request(&w.tenant.tenant_id, &csm).text("first");
    w.enqueue(&warm.json()).await;
    wait_sent(&w, &warm.key, Duration::from_secs(20)).await;

    w.rotate_token().await;

    let req = send_request(&w.tenant.tenant_id, &csm).text("second");
    w.enqueue(&req.json()).await;
    let entry = wait_sent(&w, &req.key, Duration::from_secs(20)).await;
    assert_eq!(entry.attempts, 1, "refreshed within the same delivery");
    assert_eq!(rejections(&w, "190").await, 1, "exactly one refused call");
    assert_eq!(w.messages_to(&csm).await.len(), 2);
    w.shutdown().await;
}

/// Meta throttles (130429): the alert is retried later with backoff, and
/// sent exactly once when Meta lets it through.
#[tokio::test]
async fn a_throttled_send_is_retried_with_backoff_then_sent_once() {
    let w = spawn_world().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(&json!({"throttle_rate": 1.0}))
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm).text("throttled");
    w.enqueue(&req.json()).await;
    eventually(Duration::from_secs(15), || async {
        w.ledger(&req.key).await.is_some_and(|l| {
            l.state == LedgerState::Retry
                && l.last_error.as_deref().unwrap_or("").contains("130429")
        })
    })
    .await;
    assert!(w.messages_to(&csm).await.is_empty());
    w.meta
        .set_knobs(&json!({"throttle_rate": 0.0}))
        .await
        .unwrap();
    let entry = wait_sent(&w, &req.key, Duration::from_secs(30)).await;
    assert!(entry.attempts >= 2, "{entry:?}");
    assert_eq!(w.messages_to(&csm).await.len(), 1);
    assert!(rejections(&w, "130429").await >= 1);
    w.shutdown().await;
}

/// A template our table believes approved but Meta does not know (132001)
/// is permanent: parked with Meta's code and title, never retried.
#[tokio::test]
async fn a_template_meta_does_not_know_is_parked_with_metas_code() {
    let w = spawn_world().await;
    let csm = csm_number();
    let change = fincelo::store::TemplateStatusChange::Status {
        status: "APPROVED",
        reason: None,
    };
    w.stack
        .app
        .store
        .apply_template_change(
            &w.tenant_id,
            &TemplateChangeAt {
                name: "fincelo_usage_opportunity",
                language: "en",
                template_id: None,
                change: &change,
                at: now(),
                event_owed_at: None,
            },
        )
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm);
    w.enqueue(&req.json()).await;
    let dlq = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(20), |got| {
            !got.is_empty()
        })
        .await;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let reason = &dlq[0]["parked_reason"];
    assert_eq!(reason["reason"], "meta_permanent");
    assert_eq!(reason["meta_code"], 132001);
    assert!(reason["meta_title"].as_str().is_some_and(|t| !t.is_empty()));
    let entry = w.ledger(&req.key).await.unwrap();
    assert_eq!(entry.state, LedgerState::Parked);
    assert_eq!(entry.attempts, 1);
    assert!(w.messages_to(&csm).await.is_empty());
    w.shutdown().await;
}

/// One record of a batch cannot be processed now (another instance holds its
/// key); one is garbage. The partial batch response names only the held
/// one; the garbage is parked with its reason; the others are sent.
#[tokio::test]
async fn a_batch_fails_only_the_record_that_failed() {
    let w = spawn_world_without_sender().await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let a = send_request(&w.tenant.tenant_id, &csm).text("a");
    let b = send_request(&w.tenant.tenant_id, &csm).text("b");
    let held = send_request(&w.tenant.tenant_id, &csm).text("held");
    let key = IdempotencyKey::parse(&held.key).unwrap();
    w.stack
        .app
        .store
        .claim(
            &w.tenant_id,
            &key,
            &held.json().to_string(),
            "other-instance",
            now(),
            300,
        )
        .await
        .unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![
        first_delivery("m-a", &a.json()),
        first_delivery("m-held", &held.json()),
        first_delivery(
            "m-garbage",
            &json!({"version": 1, "tenant_id": w.tenant.tenant_id}),
        ),
        first_delivery("m-b", &b.json()),
    ];
    let resp = w.stack.sender.handle_batch(event).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-held"]);
    for k in [&a.key, &b.key] {
        assert_eq!(w.ledger(k).await.unwrap().state, LedgerState::Sent, "{k}");
    }
    let texts: Vec<String> = w
        .messages_to(&csm)
        .await
        .into_iter()
        .filter_map(|m| body_of(&m))
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"a".to_string()) && texts.contains(&"b".to_string()));
    let dlq = w.stack.drain("SendDeadLetterQueue").await.unwrap();
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert!(dlq[0]["parked_reason"]["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("invalid_request:")));
    w.shutdown().await;
}

/// Two sender instances, a cap of 10 messages per second for the number,
/// and 60 alerts at once: Meta (the sandbox, which counts every rolling
/// second) never sees more than 10 in a second and throttles none, and the
/// run did press against the cap.
// Two threads: the sandbox reads its clock as each send arrives, and on
// one thread shared with the instances it could read a send late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_number_cap_holds_across_two_instances() {
    let mut opts = WorldOptions::default();
    opts.env.insert("SEND_MPS_CAP".into(), "10".into());
    opts.sender_instances = 2;
    let w = spawn_world_with(opts).await;
    sixty_alerts_stay_within_ten_a_second(w, 6).await;
}

/// A tenant whose number's cap is 10 on its channel configuration (the
/// stack's default is 80), four sender instances, and 60 alerts at once:
/// the instances share the number's cap through the store, so Meta never
/// sees more than 10 in a rolling second, however many instances run.
// Two threads: the sandbox reads its clock as each send arrives, and on
// one thread shared with the instances it could read a send late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_own_cap_holds_across_four_instances() {
    let w = spawn_world_with(WorldOptions {
        sender_instances: 4,
        tenant_cap: Some(10),
        ..Default::default()
    })
    .await;
    sixty_alerts_stay_within_ten_a_second(w, 12).await;
}

/// Sends 60 alerts (free-form, to `csms` CSMs in turn) and checks that
/// Meta (the sandbox, which counts every rolling second) never saw more
/// than 10 in a second, throttled none, and the run pressed the cap.
async fn sixty_alerts_stay_within_ten_a_second(w: World, csms: usize) {
    w.meta.set_knobs(&json!({"mps_cap": 10})).await.unwrap();
    let csms: Vec<String> = (0..csms).map(|_| csm_number()).collect();
    for csm in &csms {
        w.csm_writes(csm).await;
    }
    let mut keys = Vec::new();
    for i in 0..60 {
        let req = send_request(&w.tenant.tenant_id, &csms[i % csms.len()]).text("cap");
        keys.push(req.key.clone());
        w.enqueue(&req.json()).await;
    }
    eventually(Duration::from_secs(60), || async {
        w.meta.stats().await.unwrap().accepted >= 60
    })
    .await;
    let stats = w.meta.stats().await.unwrap();
    let number = &stats.per_phone_number[&w.tenant.phone_number_id];
    assert_eq!(number.accepted, 60);
    assert!(
        number.max_per_rolling_second <= 10,
        "cap exceeded: {number:?}"
    );
    assert!(
        number.max_per_rolling_second >= 8,
        "the run never pressed the cap, so it proves nothing: {number:?}"
    );
    assert_eq!(rejections(&w, "130429").await, 0);
    for k in &keys {
        assert_eq!(w.ledger(k).await.unwrap().state, LedgerState::Sent);
    }
    w.shutdown().await;
}

async fn burst_to_one_csm(pair_burst: &str, instances: u32) -> (World, String, Vec<String>) {
    let mut opts = WorldOptions {
        sender_instances: instances,
        ..Default::default()
    };
    opts.env.extend(
        [
            ("PAIR_BURST", pair_burst),
            ("PAIR_INTERVAL_MS", "1000"),
            ("PAIR_MAX_WAIT_MS", "1500"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let w = spawn_world_with(opts).await;
    w.meta
        .set_knobs(&json!({"pair_limit": {"burst": 4, "refill_ms": 1000}}))
        .await
        .unwrap();
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let mut keys = Vec::new();
    for i in 0..8 {
        let req = send_request(&w.tenant.tenant_id, &csm).text(&format!("alert {i}"));
        keys.push(req.key.clone());
        w.enqueue(&req.json()).await;
    }
    for k in &keys {
        wait_sent(&w, k, Duration::from_secs(60)).await;
    }
    (w, csm, keys)
}

/// Eight alerts to one CSM at once against Meta's pair limit (here: a
/// burst of 4, then one a second). Paced to the same limit, one instance
/// never meets 131056; with the pacing opened wide (or, rarely, alerts to
/// one CSM spread over several instances, each of which keeps Meta's whole
/// allowance), Meta refuses some with 131056, which are retried as
/// transient. Both runs deliver each alert exactly once.
#[tokio::test]
async fn pair_pacing_keeps_131056_away_and_131056_is_retried() {
    let (paced, csm, _) = burst_to_one_csm("4", 1).await;
    assert_eq!(rejections(&paced, "131056").await, 0);
    assert_eq!(paced.messages_to(&csm).await.len(), 8);
    paced.shutdown().await;

    let (unpaced, csm, keys) = burst_to_one_csm("1000", 2).await;
    assert!(
        rejections(&unpaced, "131056").await > 0,
        "without pacing Meta's pair limit should bite"
    );
    assert_eq!(unpaced.messages_to(&csm).await.len(), 8);
    let retried = {
        let mut n = 0;
        for k in &keys {
            if unpaced.ledger(k).await.unwrap().attempts > 1 {
                n += 1;
            }
        }
        n
    };
    assert!(retried > 0, "131056 refusals were retried");
    unpaced.shutdown().await;
}

/// What a batch costs in AWS requests, counted at the SDK layer: a cold
/// instance's first batch of ten reads the tenant, its secret and its send
/// hold (cached 10 s) once (not once per record), and who its ten
/// recipients are (roster, aliases, undeliverable flags) in one request.
/// Every batch reads its CSMs' windows in one request and publishes its
/// outcome events in one, so a warm batch of ten free-form alerts
/// (recipients cached) costs 22 to 25 DynamoDB requests (the windows, the
/// number's send slots, once or, on a slow emulator, a few times, then
/// claim and record per alert), one SQS request and no Secrets Manager read.
#[tokio::test]
async fn a_batch_reads_tenant_secret_and_windows_once_and_two_dynamodb_writes_per_alert() {
    use fincelo_bench::counting::{counted_clients, RequestCounter};

    let w = spawn_world_without_sender().await;
    let csms: Vec<String> = (0..10).map(|_| csm_number()).collect();
    for csm in &csms {
        w.csm_writes(csm).await;
    }
    let counter = RequestCounter::default();
    let (dynamo, sqs, secrets) = counted_clients(&w.stack.sdk, &counter);
    let app =
        fincelo::startup::App::from_clients((*w.stack.app.config).clone(), dynamo, sqs, secrets)
            .unwrap();
    let cold = fincelo::sender::Sender::new(app);
    let batch = |tag: &str| {
        let mut event = SqsEvent::default();
        event.records = csms
            .iter()
            .enumerate()
            .map(|(i, csm)| {
                let req = send_request(&w.tenant.tenant_id, csm).text(tag);
                first_delivery(&format!("{tag}-{i}"), &req.json())
            })
            .collect();
        event
    };

    let first = cold.handle_batch(batch("cold")).await;
    assert!(first.batch_item_failures.is_empty());
    let dynamo_cold = counter.calls_to("DynamoDB");
    assert_eq!(
        counter.calls_to("Secrets Manager"),
        1,
        "{:?}",
        counter.snapshot()
    );
    // The number's send slots: one claim for the batch, two writes when
    // the number was idle (the first finds no schedule to extend). A cold
    // instance does not know its claim's round trip yet, so on a slow
    // emulator its first slots can come back too late to use and are
    // claimed once more.
    let rate_writes = dynamo_cold.checked_sub(1 + 1 + 1 + 1 + 2 * 10);
    assert!(
        matches!(rate_writes, Some(1..=4)),
        "tenant once, its send hold once, the recipients together, the windows together, the number's slots once, then claim and record per alert: {:?}",
        counter.snapshot()
    );
    assert_eq!(
        counter.calls_to("SQS"),
        1,
        "the outcome events together: {:?}",
        counter.snapshot()
    );

    counter.reset();
    let second = cold.handle_batch(batch("warm")).await;
    assert!(second.batch_item_failures.is_empty());
    let rate_writes = counter.calls_to("DynamoDB").checked_sub(1 + 2 * 10);
    assert!(
        matches!(rate_writes, Some(1..=4)),
        "{:?}",
        counter.snapshot()
    );
    assert_eq!(counter.calls_to("SQS"), 1, "{:?}", counter.snapshot());
    assert_eq!(counter.calls_to("Secrets Manager"), 0);
    assert_eq!(w.meta.stats().await.unwrap().accepted, 20);
    for csm in &csms {
        let texts: Vec<Option<String>> = w
            .messages_to(csm)
            .await
            .into_iter()
            .map(|m| body_of(&m))
            .collect();
        assert_eq!(
            texts,
            [Some("cold".to_string()), Some("warm".to_string())],
            "free-form inside the window read with the batch's"
        );
    }
    let events = w.stack.drain("EventsQueue").await.unwrap();
    let sent = events
        .iter()
        .filter(|e| e["type"] == "send.outcome" && e["outcome"] == "sent")
        .count();
    assert_eq!(sent, 20, "{events:#?}");
    w.shutdown().await;
}

/// The windows read for a batch decide per CSM: two alerts to a CSM whose
/// window is open go as text, one to a CSM without a window goes as the
/// template. (That the read is one request, with the CSM named twice asked
/// for once, is checked by the request count above and by the store's own
/// test.)
#[tokio::test]
async fn a_batch_read_of_windows_decides_per_csm() {
    let w = spawn_world_without_sender().await;
    w.approve_all_templates().await;
    let (open, closed) = (csm_number(), csm_number());
    w.csm_writes(&open).await;
    let a = send_request(&w.tenant.tenant_id, &open).text("a");
    let b = send_request(&w.tenant.tenant_id, &open).text("b");
    let c = send_request(&w.tenant.tenant_id, &closed).text("c");
    let mut event = SqsEvent::default();
    event.records = vec![
        first_delivery("m-a", &a.json()),
        first_delivery("m-b", &b.json()),
        first_delivery("m-c", &c.json()),
    ];
    let resp = w.stack.sender.handle_batch(event).await;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    for (k, mode) in [
        (&a.key, SendMode::FreeForm),
        (&b.key, SendMode::FreeForm),
        (&c.key, SendMode::Template),
    ] {
        let entry = w.ledger(k).await.unwrap();
        assert_eq!(
            (entry.state, entry.mode),
            (LedgerState::Sent, Some(mode)),
            "{k}"
        );
    }
    let to_closed = w.messages_to(&closed).await;
    assert_eq!(to_closed.len(), 1);
    assert_eq!(to_closed[0].kind, "template");
    w.shutdown().await;
}

/// The batch's outcome events cannot be published: the alerts were sent
/// and recorded, so their records are reported as failed (as when each
/// record published its own), and their redelivery is acknowledged without
/// a second send and publishes the outcomes from the ledger: nothing lost.
#[tokio::test]
async fn a_batch_whose_events_cannot_be_published_is_redelivered_not_resent_and_its_events_come_back(
) {
    let w = spawn_world_without_sender().await;
    let broken = fincelo::sender::Sender::new(w.app_with_broken_events_queue());
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let a = send_request(&w.tenant.tenant_id, &csm).text("a");
    let b = send_request(&w.tenant.tenant_id, &csm).text("b");
    let batch = || {
        let mut event = SqsEvent::default();
        event.records = vec![
            first_delivery("m-a", &a.json()),
            first_delivery("m-b", &b.json()),
        ];
        event
    };

    let resp = broken.handle_batch(batch()).await;
    let mut failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort();
    assert_eq!(failed, ["m-a", "m-b"]);
    for k in [&a.key, &b.key] {
        assert_eq!(w.ledger(k).await.unwrap().state, LedgerState::Sent, "{k}");
    }

    let outcomes = || async {
        let events = w.stack.drain("EventsQueue").await.unwrap();
        events
            .into_iter()
            .filter(|e| e["type"] == "send.outcome")
            .collect::<Vec<_>>()
    };
    assert!(
        outcomes().await.is_empty(),
        "the broken publish published nothing"
    );

    let again = w.stack.sender.handle_batch(batch()).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    assert_eq!(w.messages_to(&csm).await.len(), 2, "sent once each");
    let events = outcomes().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    for k in [&a.key, &b.key] {
        let ledger = w.ledger(k).await.unwrap();
        let event = events
            .iter()
            .find(|e| e["idempotency_key"] == k.as_str())
            .unwrap_or_else(|| panic!("no event for {k}: {events:#?}"));
        assert_eq!(event["type"], "send.outcome");
        assert_eq!(event["outcome"], "sent");
        assert_eq!(event["mode"], "free_form");
        assert_eq!(event["wamid"].as_str(), ledger.wamid.as_deref(), "{k}");
    }
    w.shutdown().await;
}

/// A request delivered again after its alert finished (a redelivery, or
/// upstream enqueuing it twice) sends nothing and repeats, from the ledger,
/// the outcome it had, field for field: the repeat may be the only copy
/// the Fincelo app gets (the first batch's publish failed). An expired
/// alert says expired with its reason; a sent one its wamid, queue and
/// send times, and the fallback that made it a template; a parked one
/// Meta's code. Outcome events are at least once.
#[tokio::test]
async fn a_finished_alert_delivered_again_repeats_its_outcome_and_sends_nothing() {
    let w = spawn_world_without_sender().await;
    w.approve_all_templates().await;
    let (csm, closed, gone) = (csm_number(), csm_number(), csm_number());
    w.csm_writes(&csm).await;
    w.meta
        .set_knobs(&json!({"window_error_mode": "sync", "undeliverable": [gone.clone()]}))
        .await
        .unwrap();
    let sent = send_request(&w.tenant.tenant_id, &csm).text("once");
    let stale = send_request(&w.tenant.tenant_id, &csm)
        .text("too late")
        .deliver_by(now() - 60);
    let fallback = send_request(&w.tenant.tenant_id, &closed).text("window closed");
    let parked = send_request(&w.tenant.tenant_id, &gone);
    let requests = [&sent, &stale, &fallback, &parked];
    let batch = |id: &str| {
        let mut event = SqsEvent::default();
        event.records = requests
            .iter()
            .enumerate()
            .map(|(i, r)| first_delivery(&format!("{id}-{i}"), &r.json()))
            .collect();
        event
    };
    let outcomes = |events: &[Value]| -> BTreeMap<String, Value> {
        events
            .iter()
            .filter(|e| e["type"] == "send.outcome")
            .map(|e| {
                (
                    e["idempotency_key"].as_str().unwrap_or("").to_string(),
                    e.clone(),
                )
            })
            .collect()
    };

    let first = w.stack.sender.handle_batch(batch("first")).await;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    let first_events = outcomes(&w.stack.drain("EventsQueue").await.unwrap());
    let again = w.stack.sender.handle_batch(batch("again")).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    let again_events = outcomes(&w.stack.drain("EventsQueue").await.unwrap());

    let first_of = |r: &SendRequestBuilder| first_events[r.key.as_str()].clone();
    let wamid = w.ledger(&sent.key).await.unwrap().wamid.expect("wamid");
    assert_eq!(first_of(&sent)["outcome"], "sent");
    assert_eq!(first_of(&sent)["wamid"], wamid.as_str());
    assert_eq!(first_of(&stale)["outcome"], "expired");
    assert_eq!(
        first_of(&stale)["reason"],
        "deliver_by passed before sending"
    );
    assert_eq!(first_of(&fallback)["fallback"], "window_closed");
    assert_eq!(first_of(&parked)["outcome"], "parked");
    assert_eq!(first_of(&parked)["meta_code"], 131026);
    for r in [&sent, &fallback] {
        for field in ["queued_at", "sent_at"] {
            assert!(first_of(r)[field].is_string(), "{field}: {}", first_of(r));
        }
    }
    assert_eq!(first_events.len(), requests.len(), "{first_events:#?}");
    assert_eq!(again_events, first_events, "the same outcomes, repeated");
    assert_eq!(w.messages_to(&csm).await.len(), 1, "sent once");
    assert_eq!(w.messages_to(&closed).await.len(), 1, "sent once");
    assert_eq!(
        w.ledger(&stale.key).await.unwrap().state,
        LedgerState::Expired
    );
    w.shutdown().await;
}
