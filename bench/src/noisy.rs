//! Noisy neighbour (issue 21, goal 1): tenant A enqueues a flood of alerts
//! at once while tenant B enqueues one alert a second; B's enqueue-to-Meta
//! latency (enqueue to the sandbox's `accepted_at`), once with B alone and
//! once under A's flood, and A's throughput, on a fixed fleet of sender
//! instances ([`crate::fleet`]).
//!
//! What this can and cannot show. On AWS the send queue is an SQS fair
//! queue (a `MessageGroupId` per tenant on a standard queue): SQS keeps the
//! dwell time of a quiet tenant's messages low while another tenant has a
//! backlog, by handing out the quiet tenant's messages ahead of it
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>).
//! moto's standard queue does not: it hands messages out about in the
//! order they came, and we do not imitate AWS here. So B's end-to-end
//! latency under the flood measures mostly A's backlog ahead of B in moto's
//! queue, as measured; it does not tell what B would see on AWS.
//!
//! What our own code controls is measured apart: from the moment a sender
//! instance receives B's record in a batch with A's records to Meta's
//! acceptance of B's send. That shows whether A's per-number pacing holds
//! B's send back inside an instance: A's records wait for A's number's
//! slots, B's for B's number's. Because moto hands B's records out only
//! after A's backlog, they never share a batch with A's there; so once a
//! second during the flood a batch of B's alert and nine of A's is handed
//! to one more instance directly ([`probe`]), which measures our code
//! without imitating SQS's delivery. The queue's dwell (enqueue to
//! receipt) is reported beside it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use fincelo::sender::Sender;
use fincelo_bench::counting::RequestCounter;

use serde_json::json;

use crate::fleet::{unix_ms, Fleet, FleetTotals, Receipt};
use crate::sender_run::{send_batch, send_request_for, send_request_with_phone};
use crate::stats::percentile;
use crate::world::{phone_number_id_of, World, FLOOD_TENANT, QUIET_TENANT};

/// Latencies of B's alerts in one phase, in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latencies {
    /// B's alerts enqueued in the phase.
    pub enqueued: usize,
    /// Of those, accepted by the sandbox (the others are not in the figures).
    pub accepted: usize,
    /// Enqueue to Meta's acceptance.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Enqueue to a sender instance's receipt (the queue's dwell).
    pub queue_p99_ms: f64,
    /// A sender instance's receipt to Meta's acceptance (our code, and the
    /// emulators' answers on its way).
    pub in_sender_p50_ms: f64,
    pub in_sender_p99_ms: f64,
    pub in_sender_max_ms: f64,
    /// How long before its batch finished Meta accepted B's send: a send
    /// that waited for the batch's other records' slots would be accepted
    /// at about the batch's end (0).
    pub before_batch_end_p50_ms: f64,
    pub before_batch_end_min_ms: f64,
    /// B's records that shared their batch with another tenant's records.
    pub in_mixed_batches: usize,
    /// Of those batch-mates' sends (accepted by the sandbox), the share
    /// Meta accepted after B's: near 1 when B's send does not wait for its
    /// batch-mates' slots, near 0 when it waits for all of them.
    pub mates_accepted_after_quiet: f64,
}

/// The AWS budget of a phase's fleet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Budget {
    pub instances: u32,
    pub processed: usize,
    pub batch_item_failures: usize,
    pub dynamodb_per_message: f64,
    /// The mean time of a DynamoDB request (transmit to response): how
    /// long moto kept each request queued in the phase.
    pub dynamodb_mean_ms: f64,
    pub secrets_manager_total: u64,
    pub secrets_manager_warm: u64,
    /// Fetches of a secret whose cache entry had expired (not warm).
    pub secrets_manager_refreshes: u64,
    pub function_requests: serde_json::Value,
    pub poller_requests: serde_json::Value,
}

impl Budget {
    pub fn of(t: &FleetTotals) -> Budget {
        Budget {
            instances: t.instances,
            processed: t.processed,
            batch_item_failures: t.batch_item_failures,
            dynamodb_per_message: t.dynamodb_calls as f64 / t.processed.max(1) as f64,
            dynamodb_mean_ms: mean_ms_of(&t.function_requests, "DynamoDB/"),
            secrets_manager_total: t.secrets_manager_total,
            secrets_manager_warm: t.secrets_manager_warm,
            secrets_manager_refreshes: t.secrets_manager_refreshes,
            function_requests: t.function_requests.clone(),
            poller_requests: t.poller_requests.clone(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Fairness {
    pub instances: u32,
    pub quiet_alone: Latencies,
    pub quiet_under_flood: Latencies,
    /// B's alert in a batch with nine of A's, handed once a second to one
    /// more instance during the flood (see [`probe`]): our code's part,
    /// with B's record among A's as a fair queue would deliver it.
    pub quiet_in_flood_batches: Latencies,
    pub flood_messages: usize,
    pub flood_processed: usize,
    pub flood_seconds: f64,
    pub flood_msgs_per_s: f64,
    /// The sandbox's highest count of accepted sends in any rolling second,
    /// per number (A's, B's).
    pub flood_peak_per_rolling_second: u64,
    pub quiet_peak_per_rolling_second: u64,
    pub alone_budget: Budget,
    pub flood_budget: Budget,
    /// moto's CPU time while A's flood ran, when its process can be read:
    /// how busy the emulator every request of the flood waits for was.
    pub moto_during_flood: Option<crate::moto_cpu::Spent>,
}

impl Fairness {
    /// The JSON the issue names (`fairness`), with the rest beside it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = json!(self);
        v["quiet_alone_p99_ms"] = json!(self.quiet_alone.p99_ms);
        v["quiet_under_flood_p99_ms"] = json!(self.quiet_under_flood.p99_ms);
        v["quiet_alone_in_sender_p99_ms"] = json!(self.quiet_alone.in_sender_p99_ms);
        v["quiet_under_flood_in_sender_p99_ms"] =
            json!(self.quiet_in_flood_batches.in_sender_p99_ms);
        v["flood_msgs_per_s"] = json!(self.flood_msgs_per_s);
        v
    }
}

/// The attempts-weighted mean latency of the operations named `prefix…`
/// in a [`crate::sender_run::merge_json`] map.
fn mean_ms_of(requests: &serde_json::Value, prefix: &str) -> f64 {
    let (mut attempts, mut ms) = (0.0, 0.0);
    for (op, v) in requests.as_object().into_iter().flatten() {
        if op.starts_with(prefix) {
            let a = v["attempts"].as_f64().unwrap_or(0.0);
            attempts += a;
            ms += a * v["mean_ms"].as_f64().unwrap_or(0.0);
        }
    }
    ms / attempts.max(1.0)
}

/// One probe: a batch of B's alert and nine of A's, as an instance would
/// receive it from a fair queue that delivers B's message promptly while
/// A's backlog lasts. SQS's delivery is not imitated: the batch is handed
/// to `sender` directly, never through the queue, and only what our code
/// does with it is measured (B's receipt to Meta's acceptance). A's nine
/// join A's flooded schedule like every other A record.
async fn probe(sender: Arc<Sender>, id: String) -> (String, Receipt) {
    let (quiet, phone) = send_request_with_phone(QUIET_TENANT, &format!("probe-{id}-quiet"));
    let mut mates = Vec::new();
    let mut records = Vec::new();
    for k in 0..9 {
        let (body, p) = send_request_with_phone(FLOOD_TENANT, &format!("probe-{id}-{k}"));
        mates.push(p);
        records.push(body);
    }
    records.insert(4, quiet);
    let mut event = SqsEvent::default();
    event.records = records
        .into_iter()
        .enumerate()
        .map(|(k, body)| {
            let mut rec = SqsMessage::default();
            rec.message_id = Some(format!("probe-{id}-{k}"));
            rec.body = Some(body);
            rec
        })
        .collect();
    let received_ms = unix_ms();
    sender.handle_batch(event).await;
    (
        phone,
        Receipt {
            received_ms,
            batch_done_ms: unix_ms(),
            batch_mates: mates,
        },
    )
}

fn boxed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Enqueues one alert of B and notes when (recipient digits → unix ms).
async fn enqueue_quiet(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    key: &str,
    enqueued: &mut HashMap<String, i64>,
) -> Result<(), String> {
    let (body, phone) = send_request_with_phone(QUIET_TENANT, key);
    let at = unix_ms();
    sqs.send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .map_err(|e| aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())?;
    enqueued.insert(digits(&phone), at);
    Ok(())
}

/// B's latencies, from when each alert was enqueued and received and the
/// sandbox's record of B's number.
async fn latencies(
    world: &World,
    enqueued: &HashMap<String, i64>,
    received: &HashMap<String, Receipt>,
) -> Result<Latencies, String> {
    let received_mates: HashMap<String, Vec<String>> = received
        .iter()
        .map(|(p, r)| (digits(p), r.batch_mates.iter().map(|m| digits(m)).collect()))
        .collect();
    let pnid = phone_number_id_of(QUIET_TENANT);
    let accepted: HashMap<String, i64> = world
        .meta
        .messages(Some(&pnid), None)
        .await
        .map_err(boxed)?
        .into_iter()
        .map(|m| (digits(&m.to), m.accepted_at))
        .collect();
    let mates_accepted: HashMap<String, i64> = world
        .meta
        .messages(Some(&phone_number_id_of(FLOOD_TENANT)), None)
        .await
        .map_err(boxed)?
        .into_iter()
        .map(|m| (digits(&m.to), m.accepted_at))
        .collect();
    let (mut mixed, mut mates, mut mates_after) = (0, 0usize, 0usize);
    for (phone, batch_mates) in &received_mates {
        let Some(acc) = accepted.get(phone).filter(|_| !batch_mates.is_empty()) else {
            continue;
        };
        mixed += 1;
        for m in batch_mates {
            if let Some(m_acc) = mates_accepted.get(m) {
                mates += 1;
                mates_after += usize::from(m_acc > acc);
            }
        }
    }
    let received: HashMap<String, (i64, i64)> = received
        .iter()
        .map(|(p, r)| (digits(p), (r.received_ms, r.batch_done_ms)))
        .collect();
    let (mut total, mut queue, mut in_sender, mut before_end) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (phone, at) in enqueued {
        let Some(acc) = accepted.get(phone) else {
            continue;
        };
        total.push((acc - at) as f64);
        if let Some((got, done)) = received.get(phone) {
            queue.push((got - at) as f64);
            in_sender.push((acc - got) as f64);
            before_end.push((done - acc) as f64);
        }
    }
    for v in [&mut total, &mut queue, &mut in_sender, &mut before_end] {
        v.sort_by(f64::total_cmp);
    }
    let p = |v: &[f64], q: f64| percentile(v, q).unwrap_or(f64::NAN);
    Ok(Latencies {
        enqueued: enqueued.len(),
        accepted: total.len(),
        p50_ms: p(&total, 50.0),
        p99_ms: p(&total, 99.0),
        max_ms: p(&total, 100.0),
        queue_p99_ms: p(&queue, 99.0),
        in_sender_p50_ms: p(&in_sender, 50.0),
        in_sender_p99_ms: p(&in_sender, 99.0),
        in_sender_max_ms: p(&in_sender, 100.0),
        before_batch_end_p50_ms: p(&before_end, 50.0),
        before_batch_end_min_ms: before_end.first().copied().unwrap_or(f64::NAN),
        in_mixed_batches: mixed,
        mates_accepted_after_quiet: mates_after as f64 / mates.max(1) as f64,
    })
}

/// B alone for `quiet_secs` alerts (one a second), then A's `flood` with B
/// beside it until A's flood is handled; `instances` senders throughout.
pub async fn run(
    world: &World,
    instances: u32,
    flood: usize,
    quiet_secs: usize,
) -> Result<Fairness, String> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let queue = world.resources.queue("SendQueue").to_string();
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let tick = Duration::from_secs(1);

    // B alone.
    let fleet = Fleet::start(world, instances, Some(QUIET_TENANT)).await?;
    let mut alone = HashMap::new();
    let mut ticker = tokio::time::interval(tick);
    for i in 0..quiet_secs {
        ticker.tick().await;
        enqueue_quiet(&sqs, &queue, &format!("quiet-{run_id}-a{i}"), &mut alone).await?;
    }
    let limit = fleet.started().elapsed() + Duration::from_secs(30);
    fleet
        .wait_until(limit, |f| f.processed_of(QUIET_TENANT) >= quiet_secs)
        .await;
    let alone_totals = fleet.stop().await;
    let quiet_alone = latencies(world, &alone, &alone_totals.received).await?;

    // A's flood, enqueued at once before the fleet starts; B beside it.
    for chunk in (0..flood).collect::<Vec<_>>().chunks(10) {
        let bodies = chunk
            .iter()
            .map(|i| send_request_for(FLOOD_TENANT, &format!("flood-{run_id}-{i}")));
        send_batch(&sqs, &queue, bodies).await?;
    }
    let fleet = Fleet::start(world, instances, Some(QUIET_TENANT)).await?;
    let moto = world.moto_cpu.and_then(|m| m.start());
    let probe_counter = RequestCounter::default();
    let prober = Sender::new(world.counted_app(instances, &probe_counter).await?);
    let mut probes = Vec::new();
    let mut beside = HashMap::new();
    let mut ticker = tokio::time::interval(tick);
    // A's flood at 80/s takes about flood / 72 s; give it four times that.
    let flood_limit = Duration::from_secs_f64(60.0 + flood as f64 / 72.0 * 4.0);
    let mut i = 0;
    while fleet.processed_of(FLOOD_TENANT) < flood && fleet.started().elapsed() < flood_limit {
        ticker.tick().await;
        enqueue_quiet(&sqs, &queue, &format!("quiet-{run_id}-f{i}"), &mut beside).await?;
        probes.push(tokio::spawn(probe(prober.clone(), format!("{run_id}-{i}"))));
        i += 1;
    }
    let flood_seconds = fleet
        .wait_until(flood_limit, |f| f.processed_of(FLOOD_TENANT) >= flood)
        .await
        .as_secs_f64();
    let moto_during_flood = moto.and_then(|m| m.end());
    let flood_processed = fleet.processed_of(FLOOD_TENANT);
    let limit = fleet.started().elapsed() + Duration::from_secs(30);
    fleet
        .wait_until(limit, |f| f.processed_of(QUIET_TENANT) >= beside.len())
        .await;
    let flood_totals = fleet.stop().await;
    let quiet_under_flood = latencies(world, &beside, &flood_totals.received).await?;
    let mut probed = HashMap::new();
    for p in probes {
        if let Ok(Ok((phone, receipt))) = tokio::time::timeout(Duration::from_secs(60), p).await {
            probed.insert(phone, receipt);
        }
    }
    let probe_at: HashMap<String, i64> = probed
        .iter()
        .map(|(p, r)| (digits(p), r.received_ms))
        .collect();
    let quiet_in_flood_batches = latencies(world, &probe_at, &probed).await?;

    let stats = world.meta.stats().await.map_err(boxed)?;
    let peak = |tenant: &str| {
        stats
            .per_phone_number
            .get(&phone_number_id_of(tenant))
            .map(|p| p.max_per_rolling_second)
            .unwrap_or(0)
    };
    Ok(Fairness {
        instances,
        quiet_alone,
        quiet_under_flood,
        quiet_in_flood_batches,
        flood_messages: flood,
        flood_processed,
        flood_seconds,
        flood_msgs_per_s: flood_processed as f64 / flood_seconds.max(1e-9),
        flood_peak_per_rolling_second: peak(FLOOD_TENANT),
        quiet_peak_per_rolling_second: peak(QUIET_TENANT),
        alone_budget: Budget::of(&alone_totals),
        flood_budget: Budget::of(&flood_totals),
        moto_during_flood,
    })
}
