//! Sender throughput: N sender instances (each its own `Sender`, as each
//! Lambda instance has its own process and caches) take batches of up
//! to 10 from one send queue, as the SQS event source mapping hands them
//! out, with the Meta sandbox answering every Graph call in 150 ms.
//!
//! The pollers stand in for the event source mapping; their own SQS
//! requests (ReceiveMessage, DeleteMessageBatch) are counted apart from the
//! function's. The sandbox counts sends per phone number per rolling second
//! (`GET /_sandbox/stats`, `max_per_rolling_second`); its own 80/s refusal
//! (130429) is lifted for these runs so that it counts every send instead of
//! refusing the 81st: the cap check is that the peak stays ≤ 80.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use fincelo::sender::Sender;
use serde_json::json;

use crate::world::World;
use fincelo_bench::counting::RequestCounter;

static RECIPIENT: AtomicUsize = AtomicUsize::new(0);

/// A valid send request (usage alert, template path) for `tenant`, to a
/// recipient no other request of this process used (Meta's pair rate limit
/// allows one message per 6 s per recipient after a short burst).
pub fn send_request_for(tenant: &str, key: &str) -> String {
    send_request_with_phone(tenant, key).0
}

/// [`send_request_for`], with the recipient's phone (E.164), by which the
/// sandbox's record of the send is found.
pub fn send_request_with_phone(tenant: &str, key: &str) -> (String, String) {
    let n = RECIPIENT.fetch_add(1, Ordering::Relaxed);
    let phone = format!("+91987{:07}", 1_000_000 + n % 8_000_000);
    let body = json!({
        "version": 1, "tenant_id": tenant, "idempotency_key": key,
        "recipient": {"phone": phone, "csm_id": format!("csm-{n}")},
        "event": {"type": "usage_threshold",
                  "customer": {"name": "Globex", "health": "good", "premium": false},
                  "params": ["Globex", "85", "Pro", "good"]},
        "text": "Globex is at 85% of its Pro plan allowance.",
        "deliver_by": "2030-01-01T00:00:00Z"
    })
    .to_string();
    (body, phone)
}

/// A send request for the cold-start tenant.
pub fn send_request(key: &str, _n: usize) -> String {
    send_request_for(crate::world::TENANT, key)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SenderRun {
    pub instances: u32,
    pub sender_max_concurrency: u32,
    pub messages: usize,
    pub processed: usize,
    pub batch_item_failures: usize,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub sandbox_accepted: u64,
    pub sandbox_max_per_rolling_second: u64,
    pub sandbox_rejections: serde_json::Value,
    /// The function's AWS requests, by service/operation.
    pub function_requests: serde_json::Value,
    /// The pollers' (event source mapping's) SQS requests.
    pub poller_requests: serde_json::Value,
    pub dynamodb_per_message: f64,
    pub sqs_per_message: f64,
    pub secrets_manager_total: u64,
    /// Secrets Manager requests after each instance's first batch.
    pub secrets_manager_warm: u64,
}

fn boxed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One SendMessageBatch of up to ten `bodies` to `queue`.
pub async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    bodies: impl Iterator<Item = String>,
) -> Result<(), String> {
    let entries = bodies
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .map_err(boxed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = sqs
        .send_message_batch()
        .queue_url(queue)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(boxed)?;
    match out.failed.len() {
        0 => Ok(()),
        n => Err(format!("SendMessageBatch refused {n} entries")),
    }
}

/// One throughput run on tenant `tenant`.
pub async fn run(
    world: &World,
    tenant: &str,
    instances: u32,
    max_concurrency: u32,
    messages: usize,
) -> Result<SenderRun, String> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let queue = world.resources.queue("SendQueue").to_string();
    // Fill the queue first, so the run measures the sender, not the producer.
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    for chunk in (0..messages).collect::<Vec<_>>().chunks(10) {
        let bodies = chunk
            .iter()
            .map(|i| send_request_for(tenant, &format!("tp-{run_id}-{i}")));
        send_batch(&sqs, &queue, bodies).await?;
    }

    let function_counters: Vec<RequestCounter> =
        (0..instances).map(|_| RequestCounter::default()).collect();
    let poller_counter = RequestCounter::default();
    let mut senders = Vec::new();
    for c in &function_counters {
        senders.push(Sender::new(world.counted_app(max_concurrency, c).await?));
    }
    let (_, poll_sqs, _) = fincelo_bench::counting::counted_clients(&world.sdk, &poller_counter);
    let processed = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sm_after_first = Arc::new(AtomicUsize::new(0));

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let (sqs, queue) = (poll_sqs.clone(), queue.clone());
        let (processed, failures, stop) = (processed.clone(), failures.clone(), stop.clone());
        let counter = function_counters[i].clone();
        let sm_after_first = sm_after_first.clone();
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                let got = fincelo_local::receive_batch(&sqs, &queue).await;
                let msgs = match got {
                    Ok(msgs) => msgs,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if msgs.is_empty() {
                    continue;
                }
                let event = fincelo_local::lambda_event(&msgs);
                let resp = sender.handle_batch(event).await;
                if first {
                    first = false;
                    sm_after_first.fetch_add(
                        counter.calls_to("Secrets Manager") as usize,
                        Ordering::Relaxed,
                    );
                }
                failures.fetch_add(resp.batch_item_failures.len(), Ordering::Relaxed);
                let handled = msgs.len().saturating_sub(resp.batch_item_failures.len());
                let _ = fincelo_local::delete_handled(&sqs, &queue, &msgs, &resp).await;
                processed.fetch_add(handled, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut t_end = Instant::now();
    while Instant::now() < deadline {
        if processed.load(Ordering::Relaxed) >= messages {
            t_end = Instant::now();
            break;
        }
        t_end = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let seconds = (t_end - t0).as_secs_f64();
    let processed = processed.load(Ordering::Relaxed);

    let stats = world.meta.stats().await.map_err(boxed)?;
    let pnid = crate::world::phone_number_id_of(tenant);
    let ps = stats
        .per_phone_number
        .get(&pnid)
        .cloned()
        .unwrap_or_default();
    let total = |svc: &str| {
        function_counters
            .iter()
            .map(|c| c.calls_to(svc))
            .sum::<u64>()
    };
    let merged = merge_json(function_counters.iter().map(RequestCounter::to_json));
    let sm_total = total("Secrets Manager");
    Ok(SenderRun {
        instances,
        sender_max_concurrency: max_concurrency,
        messages,
        processed,
        batch_item_failures: failures.load(Ordering::Relaxed),
        seconds,
        messages_per_sec: processed as f64 / seconds,
        sandbox_accepted: ps.accepted,
        sandbox_max_per_rolling_second: ps.max_per_rolling_second,
        sandbox_rejections: json!(stats.rejections_by_code),
        function_requests: merged,
        poller_requests: poller_counter.to_json(),
        dynamodb_per_message: total("DynamoDB") as f64 / processed.max(1) as f64,
        sqs_per_message: total("SQS") as f64 / processed.max(1) as f64,
        secrets_manager_total: sm_total,
        secrets_manager_warm: sm_total
            .saturating_sub(sm_after_first.load(Ordering::Relaxed) as u64),
    })
}

/// Sums `{"op": {"calls": a, "attempts": b, "mean_ms": m}}` maps (means weighted by attempts).
pub fn merge_json(maps: impl Iterator<Item = serde_json::Value>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for m in maps {
        if let serde_json::Value::Object(m) = m {
            for (k, v) in m {
                let e = out
                    .entry(k)
                    .or_insert_with(|| json!({"calls": 0, "attempts": 0, "mean_ms": 0.0}));
                let (a0, a1) = (
                    e["attempts"].as_u64().unwrap_or(0),
                    v["attempts"].as_u64().unwrap_or(0),
                );
                let wire = e["mean_ms"].as_f64().unwrap_or(0.0) * a0 as f64
                    + v["mean_ms"].as_f64().unwrap_or(0.0) * a1 as f64;
                e["calls"] =
                    json!(e["calls"].as_u64().unwrap_or(0) + v["calls"].as_u64().unwrap_or(0));
                e["attempts"] = json!(a0 + a1);
                e["mean_ms"] = json!((wire / (a0 + a1).max(1) as f64 * 10.0).round() / 10.0);
            }
        }
    }
    serde_json::Value::Object(out)
}
