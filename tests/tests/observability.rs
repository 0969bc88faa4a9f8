//! Issue 20's operations: every alarm in `template.yaml` notifies the
//! optional `AlarmTopicArn`, and the alarms cover what the operator must
//! hear about (each function's errors and throttles, the send queue's age,
//! both dead-letter queues, a tenant's held sends); and an alert's history
//! carries its DynamoDB TTL (`RETENTION_DAYS`), which the emulator never
//! acts on, so the written attribute is what is asserted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use fincelo::metrics::{self, Metrics, Sink};
use fincelo::queues::Queues;
use fincelo::sender::Sender;
use serde_json::Value;

use aws_sdk_dynamodb::types::AttributeValue;
use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::store::{AmbiguousRecord, ClaimOutcome, LedgerState, SendMode, SentRecord};
use serde_yaml::Value as Yaml;

use crate::helpers::*;
use crate::responses::{csm_sends, quick_reply, sent_alert, tap};
use crate::security::{resource, strings, template, text};

/// Every `AWS::CloudWatch::Alarm`, by logical id.
fn alarms(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (text(id), &r["Properties"]))
        .collect()
}

/// Each alarm notifies through `AlarmTopicArn` when the operator gave one
/// (`HasAlarmTopic`), and nothing otherwise: one optional topic for all.
#[test]
fn every_alarm_notifies_the_optional_topic() {
    let t = template();
    let alarms = alarms(&t);
    assert!(alarms.len() >= 12, "{} alarms", alarms.len());
    for (id, p) in alarms {
        let mut actions = Vec::new();
        strings(&p["AlarmActions"], &mut actions);
        assert_eq!(
            actions,
            ["HasAlarmTopic", "AlarmTopicArn", "AWS::NoValue"],
            "{id}: AlarmActions"
        );
        if !p["OKActions"].is_null() {
            let mut ok = Vec::new();
            strings(&p["OKActions"], &mut ok);
            assert_eq!(ok, actions, "{id}: OKActions");
        }
    }
}

/// The alarms watch each function's errors and throttles, the send queue's
/// oldest message, both dead-letter queues and the held sends.
#[test]
fn the_alarms_cover_functions_queues_and_held_sends() {
    let t = template();
    let watched: Vec<(String, String, String)> = alarms(&t)
        .into_iter()
        .map(|(_, p)| {
            (
                text(&p["Namespace"]),
                text(&p["MetricName"]),
                text(&p["Dimensions"][0]["Value"]),
            )
        })
        .collect();
    let has = |ns: &str, metric: &str, dim: &str| {
        watched
            .iter()
            .any(|(n, m, d)| n == ns && m == metric && d == dim)
    };
    for function in [
        "WebhookFunction",
        "SenderFunction",
        "TemplatesFunction",
        "AdminFunction",
    ] {
        assert!(resource(&t, function)["Type"] == "AWS::Serverless::Function");
        for metric in ["Errors", "Throttles"] {
            assert!(has("AWS/Lambda", metric, function), "{function} {metric}");
        }
    }
    assert!(has(
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "SendQueue.QueueName"
    ));
    for dlq in ["SendDeadLetterQueue", "EventsDeadLetterQueue"] {
        assert!(has(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &format!("{dlq}.QueueName")
        ));
    }
    assert!(watched.iter().any(|(_, m, _)| m == "SendsHeld"));
}

/// Every item under `pk`, as DynamoDB holds it.
async fn items(w: &World, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
    let store = &w.stack.app.store;
    store
        .client()
        .query()
        .table_name(store.table_name())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

fn ttl_of(item: &HashMap<String, AttributeValue>) -> i64 {
    item.get("ttl")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ttl on {item:?}"))
}

/// With `RETENTION_DAYS=30`, an alert's ledger item (which holds its text),
/// its delivery status and the CSM's answer each expire 30 days after they
/// were written; nothing of the alert is kept for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alerts_history_expires_after_the_retention() {
    let w = spawn_world_with(WorldOptions {
        env: HashMap::from([("RETENTION_DAYS".into(), "30".into())]),
        ..WorldOptions::default()
    })
    .await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm);
    let before = w.now();
    let alert = sent_alert(&w, &req).await;
    eventually(Duration::from_secs(20), || async {
        w.message_status(&alert.wamid).await.is_some()
    })
    .await;
    let payload = quick_reply(&alert, "Acknowledge");
    csm_sends(
        &w,
        &w.tenant.phone_number_id,
        &csm,
        tap(&alert, &payload, "Acknowledge"),
    )
    .await;
    eventually(Duration::from_secs(20), || async {
        items(&w, &format!("T#{}#SEND#{}", w.tenant.tenant_id, req.key))
            .await
            .len()
            == 2
    })
    .await;
    let after = w.now();
    let days = 30 * 86_400;
    let within = |ttl: i64, what: &str| {
        assert!(
            (before + days..=after + days).contains(&ttl),
            "{what}: ttl {ttl} not 30 days after {before}..{after}"
        )
    };
    let history = items(&w, &format!("T#{}#SEND#{}", w.tenant.tenant_id, req.key)).await;
    for item in &history {
        let sk = item["sk"].as_s().expect("sk").clone();
        within(ttl_of(item), &sk);
    }
    assert_eq!(
        w.ledger(&req.key).await.map(|l| l.state),
        Some(LedgerState::Sent)
    );
    let status = items(&w, &format!("T#{}#MSG#{}", w.tenant.tenant_id, alert.wamid)).await;
    assert_eq!(status.len(), 1);
    within(ttl_of(&status[0]), "status");
    w.shutdown().await;
}

/// The service's own metrics the dashboard and the alarms name: every
/// metric of `fincelo-whatsapp/<stack>`, in a metric array or a SEARCH.
fn service_metrics_named(t: &Yaml) -> Vec<String> {
    let body = text(&resource(t, "Dashboard")["Properties"]["DashboardBody"]);
    let dashboard: serde_json::Value =
        serde_json::from_str(&body).expect("the dashboard body is JSON");
    let mut names = Vec::new();
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        for m in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if m[0]
                .as_str()
                .is_some_and(|ns| ns.starts_with("fincelo-whatsapp/"))
            {
                names.push(m[1].as_str().expect("metric name").to_string());
            }
            if let Some(search) = m[0]["expression"].as_str() {
                let name = search
                    .split("MetricName=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .expect("a SEARCH names its metric");
                names.push(name.to_string());
            }
        }
    }
    for (_, p) in alarms(t) {
        if text(&p["Namespace"]).starts_with("fincelo-whatsapp/") {
            names.push(text(&p["MetricName"]));
        }
    }
    names
}

/// The dashboard shows every metric `shared/src/metrics.rs` emits, and it
/// and the alarms name no other of the service's metrics than those and
/// the sender's log-filter metric `SendsHeld`: a renamed metric cannot
/// leave an empty graph or an alarm that never fires.
#[test]
fn the_dashboard_and_alarms_name_the_metrics_the_code_emits() {
    let t = template();
    let named = service_metrics_named(&t);
    let log_filter = text(
        &resource(&t, "SendsHeldMetricFilter")["Properties"]["MetricTransformations"][0]
            ["MetricName"],
    );
    for name in &named {
        assert!(
            fincelo::metrics::ALL.contains(&name.as_str()) || *name == log_filter,
            "{name} is named in template.yaml but never emitted"
        );
    }
    for emitted in fincelo::metrics::ALL {
        assert!(
            named.iter().any(|n| n == emitted),
            "{emitted} is emitted but not on the dashboard"
        );
    }
    for alarmed in [
        fincelo::metrics::NUMBER_FLAGGED,
        fincelo::metrics::ACCOUNT_RESTRICTED,
    ] {
        assert!(
            alarms(&t)
                .iter()
                .any(|(_, p)| text(&p["MetricName"]) == alarmed),
            "{alarmed} has an alarm"
        );
    }
}

/// A ledger item expires its retention after its last write, not its
/// first: an alert claimed one day and sent five days later (a wait for
/// Meta's per-user limit, a template in review) is kept 30 days from its
/// send. Likewise an ambiguous send that a status later proves sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_alerts_ledger_expires_its_retention_after_the_send() {
    let w = spawn_world_with(WorldOptions {
        env: HashMap::from([("RETENTION_DAYS".into(), "30".into())]),
        sender_instances: 0,
        ..WorldOptions::default()
    })
    .await;
    let store = &w.stack.app.store;
    let tenant = TenantId::parse(&w.tenant.tenant_id).expect("tenant id");
    let days = 30 * 86_400;
    let claimed_at = w.now();
    let later = claimed_at + 5 * 86_400;

    let sent = IdempotencyKey::parse("ttl-after-send").expect("key");
    let claim = store
        .claim(&tenant, &sent, "{}", "tok-1", claimed_at, 60)
        .await
        .expect("claim");
    assert!(matches!(claim, ClaimOutcome::Claimed(_)));
    assert_eq!(ledger_ttl(&w, &sent).await, claimed_at + days);
    let record = SentRecord {
        mode: SendMode::Template,
        template: Some("alert_generic"),
        wamid: "wamid.TTL1",
        fallback: None,
        queued_ms: claimed_at * 1000,
        sent_ms: later * 1000,
    };
    assert!(store
        .record_sent(&tenant, &sent, "tok-1", record, later)
        .await
        .expect("recorded"));
    assert_eq!(
        ledger_ttl(&w, &sent).await,
        later + days,
        "30 days after the send, not after the claim"
    );

    let doubted = IdempotencyKey::parse("ttl-after-doubt").expect("key");
    store
        .claim(&tenant, &doubted, "{}", "tok-2", claimed_at, 60)
        .await
        .expect("claim");
    let ambiguous = AmbiguousRecord {
        error: "timeout",
        decide_at: claimed_at + 600,
        mode: SendMode::Template,
        template: Some("alert_generic"),
    };
    assert!(store
        .record_ambiguous(&tenant, &doubted, "tok-2", ambiguous, claimed_at)
        .await
        .expect("recorded"));
    assert!(store
        .resolve_ambiguous_as_sent(&tenant, &doubted, "tok-2", "wamid.TTL2", later)
        .await
        .expect("resolved"));
    assert_eq!(ledger_ttl(&w, &doubted).await, later + days);
    w.shutdown().await;
}

/// The `ttl` of the ledger item of `key`.
async fn ledger_ttl(w: &World, key: &IdempotencyKey) -> i64 {
    let item = items(w, &format!("T#{}#SEND#{key}", w.tenant.tenant_id)).await;
    ttl_of(&item[0])
}

/// What `Queues::publish` wrote to its metrics sink, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Each EMF line written so far, parsed.
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }
}

/// A sender of the world's stack whose metrics (those `Queues::publish`
/// writes, and the Meta errors its calls count) go to the returned buffer.
fn sender_writing_metrics(w: &World) -> (Arc<Sender>, Captured) {
    let captured = Captured::default();
    let mut app = w.stack.app.clone();
    let metrics = Metrics::new(
        Some("fincelo-whatsapp/test".into()),
        "sender-fn",
        app.clock.clone(),
    )
    .writing_to(Sink::to(captured.clone()));
    app.queues = Queues::new(
        app.queues.client().clone(),
        app.queues.send_queue_url.clone(),
        app.queues.send_dlq_url.clone(),
        app.queues.events_queue_url.clone(),
        metrics,
    );
    (Sender::new(app), captured)
}

/// The `send.outcome` published for `key`, waited for up to 10 s.
async fn published_outcome(w: &World, key: &str) -> Value {
    let is_it = |e: &Value| e["type"] == "send.outcome" && e["idempotency_key"] == key;
    w.drain_until("EventsQueue", Duration::from_secs(10), |got| {
        got.iter().any(is_it)
    })
    .await
    .into_iter()
    .find(is_it)
    .unwrap_or_else(|| panic!("no send.outcome for {key} was published"))
}

/// A batch of one first delivery of `body`, enqueued at `queued_ms`.
fn one_record(id: &str, body: &Value, queued_ms: i64) -> SqsEvent {
    let mut rec = first_delivery(id, body);
    rec.attributes
        .insert("SentTimestamp".into(), queued_ms.to_string());
    let mut batch = SqsEvent::default();
    batch.records = vec![rec];
    batch
}

/// The sender's outcome of an alert sent free-form inside the window goes
/// out through `Queues::publish`, which writes its EMF lines: the alert is
/// counted by mode, as a window hit and not a fallback, and its
/// enqueue-to-sent latency runs from the record's `SentTimestamp`, which the
/// published event carries as `queued_at` beside `sent_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_alert_is_measured_from_its_enqueue_through_publish() {
    let w = spawn_world_with(WorldOptions {
        sender_instances: 0,
        ..WorldOptions::default()
    })
    .await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let (sender, captured) = sender_writing_metrics(&w);

    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85%.");
    let queued_ms = w.stack.app.clock.now_ms() - 3_000;
    let resp = sender
        .handle_batch(one_record("m-latency", &req.json(), queued_ms))
        .await;
    assert!(resp.batch_item_failures.is_empty(), "sent");

    let outcome = published_outcome(&w, &req.key).await;
    assert_eq!(outcome["outcome"], "sent");
    assert_eq!(outcome["mode"], "free_form");
    assert_eq!(outcome["fallback"], Value::Null, "text inside the window");
    assert_eq!(
        outcome["queued_at"],
        fincelo::admin::when::iso8601_millis(queued_ms),
        "the record's SentTimestamp, ISO-8601 UTC"
    );
    let sent_at = outcome["sent_at"].as_str().expect("sent_at");
    let sent_ms = humantime::parse_rfc3339(sent_at)
        .expect("ISO-8601 UTC")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;

    let lines = captured.lines();
    let with =
        |name: &str| -> Vec<&Value> { lines.iter().filter(|l| !l[name].is_null()).collect() };
    for l in &lines {
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "fincelo-whatsapp/test"
        );
        assert_eq!(l["Function"], "sender-fn");
    }
    let sent = with(metrics::ALERTS_SENT);
    assert_eq!(sent.len(), 1, "{lines:#?}");
    assert_eq!(sent[0]["Mode"], "free_form");
    assert_eq!(with(metrics::WINDOW_HITS).len(), 1, "{lines:#?}");
    assert!(with(metrics::TEMPLATE_FALLBACKS).is_empty(), "{lines:#?}");
    let latency = with(metrics::SEND_LATENCY);
    assert_eq!(latency.len(), 1, "{lines:#?}");
    assert_eq!(latency[0][metrics::SEND_LATENCY], sent_ms - queued_ms);
    assert!((3_000..60_000).contains(&(sent_ms - queued_ms)));
    w.shutdown().await;
}

/// `send.outcome` says why a template went instead of the text an alert
/// carried (`window_closed`, or `meta_131047` when Meta refused the text),
/// says nothing for an alert with no text, and carries Meta's code when
/// Meta's answer parked the alert: what `TemplateFallbacks` and
/// `MetaErrors` count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_outcome_says_why_a_template_went_and_which_code_parked_it() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let gone = csm_number();
    w.meta
        .set_knobs(&serde_json::json!({
            "window_error_mode": "sync",
            "undeliverable": [gone.clone()],
        }))
        .await
        .expect("knobs");
    let (inside, closed, no_text, stale) = (csm_number(), csm_number(), csm_number(), csm_number());
    w.csm_writes(&inside).await;
    // Our table says open, Meta's does not: Meta answers 131047.
    w.window_only_in_our_table(&stale).await;
    let text = |csm: &str| send_request(&w.tenant.tenant_id, csm).text("Globex is at 85%.");
    let reqs = [
        (text(&inside), "sent", Value::Null),
        (text(&closed), "sent", Value::from("window_closed")),
        (
            send_request(&w.tenant.tenant_id, &no_text),
            "sent",
            Value::Null,
        ),
        (text(&stale), "sent", Value::from("meta_131047")),
        (text(&gone), "parked", Value::Null),
    ];
    for (req, _, _) in &reqs {
        w.enqueue(&req.json()).await;
    }
    let outcomes = |events: &[Value]| -> HashMap<String, Value> {
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
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(30), |e| {
            outcomes(e).len() == reqs.len()
        })
        .await;
    let got = outcomes(&events);
    for (req, outcome, fallback) in &reqs {
        let e = got
            .get(req.key.as_str())
            .unwrap_or_else(|| panic!("no outcome for {}: {events:#?}", req.key));
        assert_eq!(e["outcome"], *outcome, "{e}");
        assert_eq!(e["fallback"], *fallback, "{e}");
        if *outcome == "sent" {
            for field in ["queued_at", "sent_at"] {
                let at = e[field].as_str().unwrap_or_else(|| panic!("{field}: {e}"));
                assert!(humantime::parse_rfc3339(at).is_ok(), "{field}: {e}");
            }
            assert_eq!(e["meta_code"], Value::Null, "{e}");
        }
    }
    let parked = &got[reqs[4].0.key.as_str()];
    assert_eq!(parked["reason"], "undeliverable_number");
    assert_eq!(parked["meta_code"], 131026);
    assert_eq!(parked["sent_at"], Value::Null);
    w.shutdown().await;
}

/// Meta's errors are counted as the sender gets them back, once each,
/// whatever becomes of the alert: a throttle (130429), retried, publishes
/// no outcome and still counts; a 131026 that parks the alert counts once,
/// though its parked outcome, published through the same metrics, carries
/// the code too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_errors_count_once_as_the_sender_gets_them_retried_or_parked() {
    let w = spawn_world_with(WorldOptions {
        sender_instances: 0,
        ..WorldOptions::default()
    })
    .await;
    w.approve_all_templates().await;
    let (busy, gone) = (csm_number(), csm_number());
    w.csm_writes(&busy).await;
    let (sender, captured) = sender_writing_metrics(&w);
    let codes = |captured: &Captured| -> Vec<(String, i64)> {
        captured
            .lines()
            .iter()
            .filter(|l| !l[metrics::META_ERRORS].is_null())
            .map(|l| {
                (
                    l["Code"].as_str().unwrap_or("").to_string(),
                    l[metrics::META_ERRORS].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    let now_ms = w.stack.app.clock.now_ms();

    w.meta
        .set_knobs(&serde_json::json!({"throttle_rate": 1.0}))
        .await
        .expect("knobs");
    let throttled = send_request(&w.tenant.tenant_id, &busy).text("Globex is at 85%.");
    let resp = sender
        .handle_batch(one_record("m-throttled", &throttled.json(), now_ms))
        .await;
    assert_eq!(resp.batch_item_failures.len(), 1, "retried later");
    assert_eq!(
        w.ledger(&throttled.key).await.map(|l| l.state),
        Some(LedgerState::Retry)
    );
    assert_eq!(codes(&captured), [("130429".to_string(), 1)]);

    w.meta
        .set_knobs(&serde_json::json!({
            "throttle_rate": 0.0,
            "window_error_mode": "sync",
            "undeliverable": [gone.clone()],
        }))
        .await
        .expect("knobs");
    let parked = send_request(&w.tenant.tenant_id, &gone);
    let resp = sender
        .handle_batch(one_record("m-gone", &parked.json(), now_ms))
        .await;
    assert!(resp.batch_item_failures.is_empty(), "parked, not retried");
    let outcome = published_outcome(&w, &parked.key).await;
    assert_eq!(outcome["meta_code"], 131026, "{outcome}");
    assert_eq!(
        codes(&captured),
        [("130429".to_string(), 1), ("131026".to_string(), 1)]
    );
    w.shutdown().await;
}
