//! Issue 8: the promises of `docs/reliability.md`, checked under
//! the conditions production brings, at volume.
//!
//! * [`fault_run_sends_every_alert_exactly_once_or_parks_it`]: send requests
//!   through the local stack (the real SQS pollers running the real `Sender`)
//!   while the Meta sandbox injects 5xx, 130429, timeouts, accepted-but-
//!   response-lost, and duplicates and reorders its status webhooks; 10 % of
//!   the requests are enqueued twice. Afterwards every key reached Meta once,
//!   or is parked in the DLQ with a permanent reason, and the ledger agrees
//!   with the sandbox on every message.
//! * [`webhook_storm_ends_in_the_ordered_deduplicated_state`]: status and
//!   inbound-message events with replays, shuffled, several per body, posted
//!   concurrently; every stored record and every published event is compared
//!   with a model that applies the distinct events in order.
//!
//! Sizes come from the environment so `make soak` runs the same tests longer:
//!
//! | variable | `make test` | `make soak` |
//! |---|---|---|
//! | `FWA_FAULT_N` (send requests) | 300 | 2000 |
//! | `FWA_STORM_EVENTS` (event deliveries, replays included) | 2000 | 10000 |
//!
//! moto serialises DynamoDB and slows as a table grows: on a 2-core machine
//! the storm posts about 50 events/s at 2,000 events and under 20 events/s at
//! 10,000, so `make test` runs the smaller size and `make soak` the full one.
//!
//! Each test prints its tally (`--nocapture` shows it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::now;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use fincelo::ids::IdempotencyKey;
use fincelo::phone::E164;
use fincelo::store::{LedgerEntry, LedgerState, SendMode, WINDOW_SECS};
use futures::stream::{self, StreamExt};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::helpers::{
    csm_number, send_request, short_id, spawn_world, spawn_world_with, World, WorldOptions,
    FREE_FORM, TEMPLATE_ROWS,
};

/// A size from the environment, or its default.
fn env_size(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------
// Fault run
// ---------------------------------------------------------------------------

/// What a request of the fault run is expected to end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Inside the CSM's window, with text: one free-form message.
    FreeForm,
    /// No window: one template message, the one the seed's table picks.
    Template(&'static str),
    /// Meta answers 131026 for the number: parked `undeliverable_number`.
    Undeliverable,
    /// Not a valid request (bad phone): parked `invalid_request:invalid_phone`.
    Invalid,
}

struct Planned {
    key: String,
    body: String,
    expect: Expect,
    duplicated: bool,
}

/// The sender's settings for the fault run, as environment variables would
/// give them: short, with production's proportions. The Graph timeout
/// (1.5 s) sits well inside the claim lease (20 s, room for moto's queueing
/// on a loaded machine); the ambiguity delay (5 s) is longer than the sandbox
/// takes to deliver a status webhook (its delay knob is at most 300 ms), as
/// the 10-minute production delay is longer than Meta takes. The send queue's
/// visibility timeout is 5 s, shorter than a slow batch, so SQS also
/// redelivers messages still being processed.
const FAULT_RUN_ENV: [(&str, &str); 6] = [
    ("GRAPH_TIMEOUT_MS", "1500"),
    ("AMBIGUOUS_SEND_DELAY_SECS", "5"),
    ("SEND_CLAIM_LEASE_SECS", "20"),
    ("SEND_MAX_ATTEMPTS", "20"),
    ("WINDOW_SAFETY_MARGIN_SECS", "60"),
    ("SEND_MPS_CAP", "80"),
];

/// The fault mix of issue 8, plus 131026 for a few numbers (answered at
/// once, so it parks rather than being accepted and failed later).
fn fault_knobs(undeliverable: &[String]) -> Value {
    json!({
        "error_5xx_rate": 0.10,
        "throttle_rate": 0.05,
        "timeout_rate": 0.02,
        "response_lost_rate": 0.02,
        "timeout_hold_ms": 2000,
        "webhook_duplicate_rate": 0.25,
        "webhook_reorder": true,
        "webhook_delay_ms": {"min": 0, "max": 300},
        "window_error_mode": "sync",
        "undeliverable": undeliverable,
    })
}

/// `FWA_FAULT_N` send requests (default 300) through the local stack under
/// 10 % HTTP 5xx, 5 % 130429, 2 % timeouts, 2 % accepted-but-response-lost,
/// 10 % duplicated SQS deliveries and duplicated, reordered, delayed status
/// webhooks. Proves: every valid key reached the sandbox exactly once (zero
/// duplicates, zero lost) and the ledger records it as sent with the
/// sandbox's wamid and mode; every key that cannot be sent (131026, an
/// invalid request) is in the DLQ with its permanent reason and never reached
/// Meta; nothing else is in the DLQ; the cost ledger counts every delivered
/// message once, exactly as the sandbox billed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_run_sends_every_alert_exactly_once_or_parks_it() {
    let n = env_size("FWA_FAULT_N", 300);
    let started = Instant::now();
    let mut opts = WorldOptions::default();
    opts.env.extend(
        FAULT_RUN_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    opts.visibility_secs = Some(5);
    let w = spawn_world_with(opts).await;
    w.approve_all_templates().await;

    // CSMs: ten alerts each (well inside Meta's pair-rate burst of 45), half
    // of them with an open window; a few numbers Meta refuses.
    let csm_count = (n / 10).max(8);
    let csms: Vec<String> = (0..csm_count).map(|_| csm_number()).collect();
    let open: Vec<&String> = csms.iter().step_by(2).collect();
    stream::iter(open.iter())
        .for_each_concurrent(8, |c| w.csm_writes(c))
        .await;
    let undeliverable: Vec<String> = (0..(n / 100).max(2)).map(|_| csm_number()).collect();

    let run = short_id();
    let mut rng = rand::rng();
    let plan: Vec<Planned> = (0..n)
        .map(|i| {
            let key = format!("fault-{run}-{i:05}");
            let (expect, mut req) = match i % 50 {
                7 => (
                    Expect::Invalid,
                    send_request(&w.tenant.tenant_id, "12345").text("bad number"),
                ),
                23 | 41 => {
                    let to = &undeliverable[i % undeliverable.len()];
                    (Expect::Undeliverable, send_request(&w.tenant.tenant_id, to))
                }
                _ => {
                    let csm = &csms[i % csm_count];
                    let row = TEMPLATE_ROWS[(i / csm_count) % TEMPLATE_ROWS.len()];
                    let r = send_request(&w.tenant.tenant_id, csm)
                        .event(row.0, row.1, row.2)
                        .text(&format!("alert {i}: Globex is at 85% of its plan"));
                    let expect = if i % csm_count % 2 == 0 {
                        Expect::FreeForm
                    } else {
                        Expect::Template(row.3)
                    };
                    (expect, r)
                }
            };
            req.key = key.clone();
            let mut body = req.json();
            if expect == Expect::Invalid {
                body["recipient"]["phone"] = json!("12345");
            }
            Planned {
                key,
                body: body.to_string(),
                expect,
                duplicated: i % 10 == 3,
            }
        })
        .collect();

    w.meta
        .set_knobs(&fault_knobs(&undeliverable))
        .await
        .expect("fault knobs set");

    // Every body once, 10 % of them twice (same idempotency key), shuffled.
    let mut bodies: Vec<&str> = plan.iter().map(|p| p.body.as_str()).collect();
    bodies.extend(
        plan.iter()
            .filter(|p| p.duplicated)
            .map(|p| p.body.as_str()),
    );
    bodies.shuffle(&mut rng);
    let enqueue_started = Instant::now();
    enqueue_all(&w, &bodies).await;
    let enqueued_in = enqueue_started.elapsed();

    let valid: Vec<&Planned> = plan
        .iter()
        .filter(|p| p.expect != Expect::Invalid)
        .collect();
    // moto's pace, not the sender's, sets the time: about 0.15 s per request on 2 cores.
    let settle_limit = Duration::from_secs(120 + n as u64 / 2);
    let ledgers = wait_until_settled(&w, &valid, settle_limit).await;
    let settled_in = started.elapsed();

    // The queue is empty and every key final: nothing can be sent any more.
    let accepted = w
        .meta
        .messages(Some(&w.tenant.phone_number_id), None)
        .await
        .expect("sandbox messages");
    let dlq = w.stack.drain("SendDeadLetterQueue").await.expect("dlq");
    let stats = w.meta.stats().await.expect("sandbox stats");

    let mut by_key: HashMap<&str, Vec<&meta_sandbox::MessageRecord>> = HashMap::new();
    for m in &accepted {
        let key = m.biz_opaque_callback_data.as_deref().unwrap_or("(none)");
        by_key.entry(key).or_default().push(m);
    }
    let mut parked: HashMap<String, Vec<String>> = HashMap::new();
    let mut unexplained_dlq = Vec::new();
    for d in &dlq {
        let request: Option<Value> = d["request"]
            .as_str()
            .and_then(|r| serde_json::from_str(r).ok());
        let key = request
            .as_ref()
            .and_then(|r| r["idempotency_key"].as_str())
            .map(str::to_string);
        match (key, d["parked_reason"]["reason"].as_str()) {
            (Some(k), Some(reason)) => parked.entry(k).or_default().push(reason.to_string()),
            // A redrive after maxReceiveCount (no reason), or an unreadable copy.
            _ => unexplained_dlq.push(d.clone()),
        }
    }

    let mut problems: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    let planned_keys: HashSet<&str> = plan.iter().map(|p| p.key.as_str()).collect();
    for key in by_key.keys() {
        if !planned_keys.contains(key) {
            problems.push(format!(
                "the sandbox holds a message for an unknown key {key}"
            ));
        }
    }
    for p in &plan {
        let msgs = by_key.get(p.key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let reasons = parked.get(&p.key).cloned().unwrap_or_default();
        let ledger = ledgers.get(&p.key);
        match p.expect {
            Expect::FreeForm | Expect::Template(_) => {
                match msgs.len() {
                    0 => {
                        tally.lost += 1;
                        problems.push(format!(
                            "{}: lost (ledger {:?}, dlq {reasons:?})",
                            p.key,
                            ledger.map(|l| l.state)
                        ));
                    }
                    1 => {}
                    k => {
                        tally.duplicates += k - 1;
                        problems.push(format!("{}: reached Meta {k} times", p.key));
                    }
                }
                if !reasons.is_empty() {
                    problems.push(format!("{}: sent, yet parked {reasons:?}", p.key));
                }
                let Some(m) = msgs.first() else { continue };
                let (want_kind, want_mode) = match p.expect {
                    Expect::FreeForm => (FREE_FORM, SendMode::FreeForm),
                    _ => ("template", SendMode::Template),
                };
                if m.kind == FREE_FORM {
                    tally.free_form += 1;
                } else {
                    tally.template += 1;
                }
                if m.kind != want_kind {
                    problems.push(format!(
                        "{}: sent as {}, expected {want_kind}",
                        p.key, m.kind
                    ));
                }
                if let Expect::Template(name) = p.expect {
                    let got = m.template.as_ref().map(|t| t.name.as_str());
                    if got != Some(name) {
                        problems.push(format!("{}: template {got:?}, expected {name}", p.key));
                    }
                }
                if m.response_lost {
                    tally.resolved_from_status += 1;
                }
                match ledger {
                    Some(l)
                        if l.state == LedgerState::Sent
                            && l.wamid.as_deref() == Some(m.wamid.as_str())
                            && l.mode == Some(want_mode) =>
                    {
                        *tally.attempts.entry(l.attempts).or_default() += 1;
                    }
                    other => problems.push(format!(
                        "{}: ledger disagrees with the sandbox (wamid {}, {want_kind}): {:?}",
                        p.key,
                        m.wamid,
                        other.map(|l| (l.state, l.wamid.clone(), l.mode))
                    )),
                }
            }
            Expect::Undeliverable | Expect::Invalid => {
                let want = if p.expect == Expect::Invalid {
                    "invalid_request:invalid_phone"
                } else {
                    "undeliverable_number"
                };
                if !msgs.is_empty() {
                    problems.push(format!(
                        "{}: should not reach Meta, reached it {} times",
                        p.key,
                        msgs.len()
                    ));
                }
                if reasons.is_empty() {
                    tally.lost += 1;
                    problems.push(format!(
                        "{}: not in the DLQ (ledger {:?})",
                        p.key,
                        ledger.map(|l| l.state)
                    ));
                } else if reasons.iter().any(|r| r != want) {
                    problems.push(format!("{}: parked {reasons:?}, expected {want}", p.key));
                }
                *tally.parked.entry(want.to_string()).or_default() += 1;
                tally.dlq_copies += reasons.len();
                if reasons.len() > 1 {
                    tally.parked_more_than_once.push(p.key.clone());
                }
                if p.expect == Expect::Undeliverable {
                    match ledger {
                        Some(l) if l.state == LedgerState::Parked => {
                            *tally.attempts.entry(l.attempts).or_default() += 1;
                        }
                        other => problems.push(format!(
                            "{}: ledger should say parked: {:?}",
                            p.key,
                            other.map(|l| l.state)
                        )),
                    }
                }
            }
        }
    }
    // Every delivered message is in the cost ledger once, as the sandbox
    // billed it, despite duplicated and reordered status webhooks.
    let priced = accepted.iter().filter(|m| m.pricing.is_some()).count() as u64;
    let costs = crate::costs::ledger_agrees_with_sandbox(&w, priced, Duration::from_secs(60)).await;
    if let Err(e) = &costs {
        problems.push(e.clone());
    }
    for (key, reasons) in &parked {
        if !planned_keys.contains(key.as_str()) {
            problems.push(format!("the DLQ holds an unknown key {key}: {reasons:?}"));
        }
    }
    if !unexplained_dlq.is_empty() {
        problems.push(format!(
            "DLQ entries without a reason (redriven?): {unexplained_dlq:?}"
        ));
    }

    let w_stats = &stats.webhooks;
    println!(
        "fault run: {n} requests ({} enqueued twice, {} SQS messages, enqueued in {:.1} s), {} CSMs ({} with an open window), settled in {:.1} s\n  sent: {} free-form + {} template = {}; duplicates: {}; lost: {}\n  parked by reason: {} ({} DLQ copies; parked more than once: {})\n  ambiguous (response lost) resolved from a status webhook without a resend: {}\n  attempts per key (ledger claims): {}\n  sandbox: {} accepted, rejections by code: {}; webhooks: {} delivered, {} failed, {} duplicated, {} retries\n  cost ledger: {} delivered, {} billable, estimated {} {}",
        plan.iter().filter(|p| p.duplicated).count(),
        bodies.len(),
        enqueued_in.as_secs_f64(),
        csm_count,
        open.len(),
        settled_in.as_secs_f64(),
        tally.free_form,
        tally.template,
        tally.free_form + tally.template,
        tally.duplicates,
        tally.lost,
        listed(&tally.parked),
        tally.dlq_copies,
        if tally.parked_more_than_once.is_empty() {
            "none".to_string()
        } else {
            tally.parked_more_than_once.join(", ")
        },
        tally.resolved_from_status,
        listed(&tally.attempts),
        stats.accepted,
        listed(&stats.rejections_by_code),
        w_stats.delivered,
        w_stats.failed,
        w_stats.duplicated,
        w_stats.retries,
        costs.as_ref().map(|v| v["totals"]["messages"].to_string()).unwrap_or_default(),
        costs.as_ref().map(|v| v["totals"]["billable"].to_string()).unwrap_or_default(),
        costs
            .as_ref()
            .map(|v| match &v["totals"]["estimated_cost"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default(),
        costs
            .as_ref()
            .ok()
            .and_then(|v| v["currency"].as_str())
            .unwrap_or(""),
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The faults really happened, or the run proved nothing.
    for code in ["2", "130429"] {
        assert!(
            stats.rejections_by_code.get(code).copied().unwrap_or(0) > 0,
            "no {code} was injected: {stats:?}"
        );
    }
    assert!(stats.webhooks.duplicated > 0, "no webhook was duplicated");
    if n >= 200 {
        assert!(
            tally.resolved_from_status > 0,
            "no response was lost: raise FWA_FAULT_N"
        );
    }
    w.shutdown().await;
}

#[derive(Default)]
struct Tally {
    free_form: usize,
    template: usize,
    duplicates: usize,
    lost: usize,
    parked: BTreeMap<String, usize>,
    dlq_copies: usize,
    /// Keys with more than one DLQ copy (allowed: the DLQ copy is written
    /// before the ledger, so a failure in between parks again; never lost).
    parked_more_than_once: Vec<String>,
    resolved_from_status: usize,
    attempts: BTreeMap<u32, usize>,
}

/// A tally's counts as a person reads them: `key: count, ...`, or `none`.
fn listed<K: std::fmt::Display, V: std::fmt::Display>(counts: &BTreeMap<K, V>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts the bodies on the send queue, ten per request, several requests at once.
async fn enqueue_all(w: &World, bodies: &[&str]) {
    let sqs = w.stack.app.queues.client();
    let url = w.stack.resources.queue("SendQueue");
    stream::iter(bodies.chunks(10))
        .for_each_concurrent(8, |chunk| async move {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(*b)
                        .build()
                        .expect("entry")
                })
                .collect();
            let out = sqs
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("SendMessageBatch");
            assert!(
                out.failed.is_empty(),
                "SendMessageBatch refused some: {:?}",
                out.failed
            );
        })
        .await;
}

/// Waits until every key's ledger entry is final and the send queue holds
/// nothing (visible or in flight); returns the final ledger entries.
async fn wait_until_settled(
    w: &World,
    keys: &[&Planned],
    limit: Duration,
) -> HashMap<String, LedgerEntry> {
    let deadline = Instant::now() + limit;
    let mut done: HashMap<String, LedgerEntry> = HashMap::new();
    loop {
        let pending: Vec<&str> = keys
            .iter()
            .map(|p| p.key.as_str())
            .filter(|k| !done.contains_key(*k))
            .collect();
        let read: Vec<(String, Option<LedgerEntry>)> = stream::iter(pending)
            .map(|k| async move { (k.to_string(), w.ledger(k).await) })
            .buffer_unordered(16)
            .collect()
            .await;
        for (k, l) in read {
            if let Some(l) = l.filter(|l| l.state.is_final()) {
                done.insert(k, l);
            }
        }
        let in_queue = queue_depth(w, "SendQueue").await;
        if done.len() == keys.len() && in_queue == 0 {
            return done;
        }
        if Instant::now() > deadline {
            let waiting: Vec<_> = keys
                .iter()
                .filter(|p| !done.contains_key(&p.key))
                .take(20)
                .map(|p| p.key.clone())
                .collect();
            panic!(
                "not settled within {limit:?}: {} of {} keys final, {in_queue} messages on the send queue; e.g. {waiting:?}",
                done.len(),
                keys.len()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Messages on a queue, visible or in flight.
async fn queue_depth(w: &World, logical_id: &str) -> u64 {
    let out = w
        .stack
        .app
        .queues
        .client()
        .get_queue_attributes()
        .queue_url(w.stack.resources.queue(logical_id))
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("GetQueueAttributes");
    out.attributes()
        .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Webhook storm
// ---------------------------------------------------------------------------

/// One distinct event of the storm.
#[derive(Debug, Clone)]
enum StormEvent {
    Status {
        wamid: String,
        status: &'static str,
        ts: i64,
        recipient: String,
        key: Option<String>,
        error_code: Option<i64>,
    },
    Inbound {
        id: String,
        from: String,
        ts: i64,
    },
}

impl StormEvent {
    fn json(&self) -> Value {
        match self {
            StormEvent::Status {
                wamid,
                status,
                ts,
                recipient,
                key,
                error_code,
            } => {
                let mut v = json!({"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": recipient});
                if let Some(k) = key {
                    v["biz_opaque_callback_data"] = json!(k);
                }
                if let Some(code) = error_code {
                    v["errors"] = json!([{"code": code, "title": format!("error {code}"), "message": format!("error {code}"), "error_data": {"details": "storm"}}]);
                }
                v
            }
            StormEvent::Inbound { id, from, ts } => {
                json!({"from": from, "id": id, "timestamp": ts.to_string(), "type": "text", "text": {"body": format!("reply {id}")}})
            }
        }
    }
}

/// The statuses a message may go through, in Meta's order (some skip `sent`,
/// as when Meta's `sent` webhook is lost for good).
const PROGRESSIONS: [&[&str]; 6] = [
    &["sent"],
    &["sent", "delivered"],
    &["sent", "delivered", "read"],
    &["delivered", "read"],
    &["sent", "failed"],
    &["failed"],
];

/// The furthest status among a message's storm events (the one its record must end at).
fn furthest_status(seen: &[&StormEvent]) -> &'static str {
    seen.iter()
        .filter_map(|e| match e {
            StormEvent::Status { status, .. } => Some(*status),
            _ => None,
        })
        .max_by_key(|s| rank(s))
        .expect("a status")
}

fn rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        other => panic!("unknown status {other}"),
    }
}

/// A signed-ready body: the events split over one or two changes (and
/// entries), statuses and messages mixed as Meta may mix them.
fn storm_body(w: &World, events: &[&StormEvent]) -> Vec<u8> {
    let split = if events.len() > 1 && events.len() % 2 == 0 {
        events.len() / 2
    } else {
        events.len()
    };
    let value = |part: &[&StormEvent]| {
        let statuses: Vec<Value> = part
            .iter()
            .filter(|e| matches!(e, StormEvent::Status { .. }))
            .map(|e| e.json())
            .collect();
        let messages: Vec<Value> = part
            .iter()
            .filter(|e| matches!(e, StormEvent::Inbound { .. }))
            .map(|e| e.json())
            .collect();
        let mut v = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id},
        });
        if !statuses.is_empty() {
            v["statuses"] = json!(statuses);
        }
        if !messages.is_empty() {
            let contacts: Vec<Value> = part
                .iter()
                .filter_map(|e| match e {
                    StormEvent::Inbound { from, .. } => {
                        Some(json!({"profile": {"name": "CSM"}, "wa_id": from}))
                    }
                    _ => None,
                })
                .collect();
            v["contacts"] = json!(contacts);
            v["messages"] = json!(messages);
        }
        json!({"field": "messages", "value": v})
    };
    let (a, b) = events.split_at(split);
    let entries: Vec<Value> = [a, b]
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| json!({"id": w.tenant.waba_id, "changes": [value(p)]}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": entries})
        .to_string()
        .into_bytes()
}

/// `FWA_STORM_EVENTS` event deliveries (default 2,000; 10,000 in `make soak`): delivery statuses
/// over many wamids and inbound messages over many CSMs, 20 % of them
/// replays (half as the same body bytes again, half as the same event in
/// another body), one to eight per body, shuffled, signed, posted 24 at a
/// time. Proves that the stored state equals an ordered, de-duplicated
/// delivery: each message's status is its furthest (failed keeps its errors),
/// with every status's own timestamp; each CSM's window ends 24 h after their
/// newest message; each inbound message is published exactly once; no status
/// is published twice for a message, and its furthest status is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_storm_ends_in_the_ordered_deduplicated_state() {
    let total = env_size("FWA_STORM_EVENTS", 2_000);
    let w = spawn_world().await;
    let mut rng = rand::rng();
    let base = now() - 3600;
    let replays = total / 5;
    let distinct = total - replays;
    let inbound_n = distinct * 2 / 5;

    // Inbound messages: ten per CSM, at distinct times within the last day.
    let csm_count = (inbound_n / 10).max(4);
    let csms: Vec<String> = (0..csm_count)
        .map(|_| csm_number().trim_start_matches('+').to_string())
        .collect();
    let run = short_id();
    let mut events: Vec<StormEvent> = Vec::with_capacity(distinct);
    let mut used_ts: HashSet<(usize, i64)> = HashSet::new();
    for i in 0..inbound_n {
        let c = i % csm_count;
        let ts = loop {
            let ts = base - rng.random_range(0..20 * 3600);
            if used_ts.insert((c, ts)) {
                break ts;
            }
        };
        events.push(StormEvent::Inbound {
            id: format!("wamid.IN{run}{i:06}"),
            from: csms[c].clone(),
            ts,
        });
    }
    // Statuses: one progression per wamid, a third of them with a callback key.
    let mut m = 0;
    while events.len() < distinct {
        let progression = PROGRESSIONS[rng.random_range(0..PROGRESSIONS.len())];
        let wamid = format!("wamid.OUT{run}{m:06}");
        let key = (m % 3 == 0).then(|| format!("storm-{run}-{m}"));
        let recipient = csms[m % csm_count].clone();
        let start = base + rng.random_range(0..3000);
        for (step, status) in progression.iter().enumerate() {
            if events.len() == distinct {
                break;
            }
            events.push(StormEvent::Status {
                wamid: wamid.clone(),
                status,
                ts: start + 7 * step as i64,
                recipient: recipient.clone(),
                key: key.clone(),
                error_code: (*status == "failed").then(|| [131049, 131053, 131000][m % 3]),
            });
        }
        m += 1;
    }
    let status_events = events.len() - inbound_n;

    // Half the replays as the same event in another body...
    let mut deliveries: Vec<&StormEvent> = events.iter().collect();
    for _ in 0..replays / 2 {
        deliveries.push(&events[rng.random_range(0..events.len())]);
    }
    deliveries.shuffle(&mut rng);
    let mut bodies: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut rest = deliveries.as_slice();
    while !rest.is_empty() {
        let k = rng.random_range(1..=8).min(rest.len());
        let (now_, later) = rest.split_at(k);
        bodies.push((storm_body(&w, now_), now_.len()));
        rest = later;
    }
    // ...and half as a body delivered again, byte for byte.
    let originals = bodies.len();
    let mut replayed_in_bodies = 0;
    let mut body_replays = 0;
    while replayed_in_bodies < replays - replays / 2 {
        let (b, k) = bodies[rng.random_range(0..originals)].clone();
        replayed_in_bodies += k;
        body_replays += 1;
        bodies.push((b, k));
    }
    bodies.shuffle(&mut rng);
    let deliveries_total: usize = bodies.iter().map(|(_, k)| k).sum();

    let events_drain = Drain::start(&w, "EventsQueue", 2);
    let posted = Instant::now();
    let url = w.stack.webhook_url();
    let http = reqwest::Client::new();
    let secret = w.tenant.app_secret.clone();
    let results: Vec<(u16, u32)> = stream::iter(bodies.iter())
        .map(|(body, _)| {
            let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
            async move { post_until_ok(&http, &url, &secret, body).await }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    let post_time = posted.elapsed();
    let retried: u32 = results.iter().map(|(_, tries)| tries - 1).sum();
    let refused: Vec<u16> = results
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 200)
        .collect();
    assert!(refused.is_empty(), "bodies refused: {refused:?}");

    // The model: the distinct events applied in time order, each once.
    let mut want_status: BTreeMap<&str, Vec<&StormEvent>> = BTreeMap::new();
    let mut want_window: HashMap<&str, i64> = HashMap::new();
    for e in &events {
        match e {
            StormEvent::Status { wamid, .. } => want_status.entry(wamid).or_default().push(e),
            StormEvent::Inbound { from, ts, .. } => {
                let t = want_window.entry(from).or_insert(*ts);
                *t = (*t).max(*ts);
            }
        }
    }

    let checked = Instant::now();
    let mut problems = Vec::new();
    let store = &w.stack.app.store;
    let tenant = &w.tenant_id;
    let records: Vec<_> = stream::iter(want_status.keys())
        .map(|wamid| async move {
            (
                *wamid,
                store
                    .get_message_status(tenant, wamid)
                    .await
                    .expect("status read"),
            )
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (wamid, rec) in records {
        let seen = &want_status[wamid];
        let Some(rec) = rec else {
            problems.push(format!("{wamid}: no status record"));
            continue;
        };
        let furthest = furthest_status(seen);
        let at = |name: &str| {
            seen.iter().find_map(|e| match e {
                StormEvent::Status { status, ts, .. } if *status == name => Some(*ts),
                _ => None,
            })
        };
        let (key, code) = match seen[0] {
            StormEvent::Status { key, .. } => (
                key.clone(),
                seen.iter().find_map(|e| match e {
                    StormEvent::Status { error_code, .. } => *error_code,
                    _ => None,
                }),
            ),
            _ => unreachable!(),
        };
        let stored_codes: Vec<i64> = rec
            .errors_json
            .as_deref()
            .map(|j| {
                serde_json::from_str::<Vec<Value>>(j)
                    .expect("errors JSON")
                    .iter()
                    .filter_map(|e| e["code"].as_i64())
                    .collect()
            })
            .unwrap_or_default();
        let got = (
            rec.status.as_str(),
            rec.rank,
            rec.sent_at,
            rec.delivered_at,
            rec.read_at,
            rec.failed_at,
            rec.idempotency_key.clone(),
            stored_codes,
        );
        let want = (
            furthest,
            rank(furthest),
            at("sent"),
            at("delivered"),
            at("read"),
            at("failed"),
            key,
            code.into_iter().collect::<Vec<_>>(),
        );
        if got != want {
            problems.push(format!("{wamid}: stored {got:?}, expected {want:?}"));
        }
    }
    let windows: Vec<_> = stream::iter(want_window.iter())
        .map(|(csm, ts)| async move {
            let e164 = E164::from_wa_id(csm).expect("csm number");
            (
                *csm,
                *ts,
                store
                    .get_window(tenant, &fincelo::identity::Identity::Number(e164.clone()))
                    .await
                    .expect("window read"),
            )
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (csm, newest, got) in windows {
        let want = (newest + WINDOW_SECS, newest);
        if got.map(|g| (g.expires_at, g.last_inbound_at)) != Some(want) {
            problems.push(format!(
                "window of {csm}: stored {got:?}, expected {want:?}"
            ));
        }
    }
    // Callback keys: each key finds its one message (how an ambiguous send is resolved).
    let keyed = want_status
        .iter()
        .filter(|(_, seen)| matches!(seen[0], StormEvent::Status { key: Some(_), .. }));
    for (wamid, seen) in keyed.take(20) {
        if let StormEvent::Status { key: Some(k), .. } = seen[0] {
            let by_key = store
                .statuses_by_key(tenant, &IdempotencyKey::parse(k.as_str()).expect("key"))
                .await
                .expect("statuses by key");
            if by_key.iter().map(|r| r.wamid.as_str()).collect::<Vec<_>>() != vec![*wamid] {
                problems.push(format!("{k}: statuses_by_key gives {by_key:?}"));
            }
        }
    }

    // Events: each inbound message once; per message no status twice, the furthest one included.
    let (published, received_twice) = events_drain.finish().await;
    let mut inbound_events: HashMap<String, usize> = HashMap::new();
    let mut status_pub: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for e in &published {
        match e["type"].as_str() {
            Some("csm.message_received") => {
                *inbound_events
                    .entry(e["message_id"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
            Some("message.status_changed") => status_pub
                .entry(e["wamid"].as_str().unwrap_or("").to_string())
                .or_default()
                .push((
                    e["status"].as_str().unwrap_or("").to_string(),
                    e["timestamp"].as_i64().unwrap_or(0),
                )),
            other => problems.push(format!("unexpected event type {other:?}: {e}")),
        }
    }
    for e in &events {
        if let StormEvent::Inbound { id, ts, from } = e {
            match inbound_events.remove(id.as_str()) {
                Some(1) => {}
                other => problems.push(format!(
                    "inbound {id} from {from} at {ts} published {other:?} times"
                )),
            }
        }
    }
    if !inbound_events.is_empty() {
        problems.push(format!(
            "events for unknown inbound messages: {inbound_events:?}"
        ));
    }
    let mut status_events_published = 0;
    for (wamid, seen) in &want_status {
        let got = status_pub.remove(*wamid).unwrap_or_default();
        status_events_published += got.len();
        let mut names: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        names.sort_unstable();
        let distinct_names = names.iter().collect::<HashSet<_>>().len();
        let furthest = furthest_status(seen);
        let all_real = got.iter().all(|(s, ts)| {
            seen.iter().any(
                |e| matches!(e, StormEvent::Status { status, ts: t, .. } if status == s && t == ts),
            )
        });
        if distinct_names != names.len() || !names.contains(&furthest) || !all_real {
            problems.push(format!(
                "{wamid}: published {got:?}; statuses seen {seen:?}"
            ));
        }
    }
    if !status_pub.is_empty() {
        problems.push(format!(
            "status events for unknown wamids: {:?}",
            status_pub.keys().take(5).collect::<Vec<_>>()
        ));
    }
    let check_time = checked.elapsed();

    println!(
        "webhook storm: {deliveries_total} event deliveries ({} distinct: {status_events} statuses over {} wamids, {inbound_n} inbound messages over {csm_count} CSMs; {} replays: {} in other bodies, {replayed_in_bodies} in {body_replays} bodies resent byte for byte)\n  {} bodies posted 24 at a time in {:.1} s ({:.0} events/s, {:.0} bodies/s), {retried} retries after a non-200\n  events published: {} inbound, {status_events_published} status changes (an ordered delivery would publish {status_events}); {received_twice} received twice from SQS (same message id, ignored); checked in {:.1} s; problems: {}",
        events.len(),
        want_status.len(),
        deliveries_total - events.len(),
        replays / 2,
        bodies.len(),
        post_time.as_secs_f64(),
        deliveries_total as f64 / post_time.as_secs_f64(),
        bodies.len() as f64 / post_time.as_secs_f64(),
        inbound_n,
        check_time.as_secs_f64(),
        problems.len(),
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems
            .iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    w.shutdown().await;
}

/// POSTs one signed body, retrying a 5xx or a broken connection as Meta
/// would (with backoff, for about half a minute); returns the last status
/// and the number of tries.
async fn post_until_ok(http: &reqwest::Client, url: &str, secret: &str, body: &[u8]) -> (u16, u32) {
    let sig = fincelo::webhook::signature::sign(secret.as_bytes(), body);
    let mut tries = 0;
    loop {
        tries += 1;
        let sent = http
            .post(url)
            .header("X-Hub-Signature-256", &sig)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
        // Meta retries for days; a few tries over half a minute covers a
        // delivery that met another delivery of the same events publishing
        // them (500 until that one is done: `fincelo::owed`).
        if (status != 0 && status < 500) || tries >= 12 {
            return (status, tries);
        }
        tokio::time::sleep(Duration::from_millis((250 * u64::from(tries)).min(3000))).await;
    }
}

/// Receivers that take everything off a queue while the scenario runs, so
/// the queue stays short (moto's receive scans the whole queue: draining
/// thousands of events afterwards takes minutes).
struct Drain {
    stop: Arc<AtomicBool>,
    receivers: Vec<tokio::task::JoinHandle<Vec<(String, Value)>>>,
}

impl Drain {
    fn start(w: &World, logical_id: &str, receivers: usize) -> Drain {
        let stop = Arc::new(AtomicBool::new(false));
        let receivers = (0..receivers)
            .map(|_| {
                let sqs = w.stack.app.queues.client().clone();
                let url = w.stack.resources.queue(logical_id).to_string();
                tokio::spawn(receive_until_stopped(sqs, url, stop.clone()))
            })
            .collect();
        Drain { stop, receivers }
    }

    /// Stops once three receives in a row come back empty. Returns each
    /// message once, by SQS message id, and how many receives returned a
    /// message already seen: SQS (and moto, whose receive takes no lock) may
    /// hand one message to two receivers, which is not a second publication.
    async fn finish(self) -> (Vec<Value>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut received = Vec::new();
        for r in self.receivers {
            received.extend(r.await.expect("receiver task"));
        }
        let total = received.len();
        let unique: HashMap<String, Value> = received.into_iter().collect();
        let again = total - unique.len();
        (unique.into_values().collect(), again)
    }
}

async fn receive_until_stopped(
    sqs: aws_sdk_sqs::Client,
    url: String,
    stop: Arc<AtomicBool>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            if stop.load(Ordering::SeqCst) {
                empty += 1;
            }
            continue;
        }
        empty = 0;
        let entries = fincelo_local::delete_entries(&msgs, None);
        for m in &msgs {
            out.push((
                m.message_id.clone().expect("SQS message id"),
                serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap_or(Value::Null),
            ));
        }
        sqs.delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("DeleteMessageBatch");
    }
    out
}
