//! The emulator's own capacity, measured in the same run as the sender.
//!
//! The sender's throughput runs go through moto, and moto serves one
//! request at a time per process (Python's GIL; DynamoDB requests also hold
//! `infra/moto_server.py`'s lock, which gives them DynamoDB's atomicity).
//! So that the report can say how much of a missed throughput target is the
//! emulator's, this measures how many of the sender's own kinds of request
//! moto answers per second, with one client and with ten at once (a batch's
//! ten records run concurrently), through the same SDK clients.
//!
//! Each sent message costs two conditional UpdateItems (claim, record), a
//! tenth of its batch's claim of send slots for its number (one conditional
//! UpdateItem per batch and number, `fincelo::store::rate`; a batch of one
//! tenant's records), and a tenth of a batch's BatchGetItem (the ten CSMs'
//! windows) and of its SendMessageBatch (the ten outcome events). If moto does one request at a
//! time, a message takes at least the sum of those service times, whatever
//! the number of clients: the emulator's ceiling for the sender is the
//! reciprocal of that sum.
//!
//! The pollers that stand in for the event source mapping use the same moto:
//! one ReceiveMessage and one DeleteMessageBatch per batch, timed here as a
//! round on a queue kept as deep as the throughput runs' send queue starts
//! (moto's receive still scans the queue), and counted in both ceilings.
//!
//! One instance meets moto's one-at-a-time service on its own path too: a
//! batch's requests, which real DynamoDB and SQS would serve side by side,
//! wait for each other, so each batch takes the Graph call's 150 ms plus the
//! sum of its requests' service times and its poller's round, plus the
//! spread of its ten slots on its number's schedule (the tenth leaves nine
//! slot spacings after the first). That gives the most one instance can
//! reach against this emulator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::sender_run::{send_batch, send_request};
use crate::world::World;

/// One kind of request at one concurrency.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rate {
    pub clients: u32,
    pub requests: u64,
    pub per_sec: f64,
    pub mean_ms: f64,
    /// moto's own CPU time per request, in ms, when its process can be
    /// read ([`crate::moto_cpu`]): what a request of this kind costs it.
    pub moto_cpu_ms: Option<f64>,
}

/// One kind of request, with one client and with ten.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpCapacity {
    pub op: &'static str,
    /// How many of these one sent message costs (a tenth for a request a
    /// batch of ten makes once).
    pub per_message: f64,
    pub one: Rate,
    pub ten: Rate,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Capacity {
    pub ops: Vec<OpCapacity>,
    /// One poller round: ReceiveMessage (10, every attribute, as the
    /// pollers ask) and DeleteMessageBatch of what came, one client.
    pub poll_round: Rate,
    /// Messages per second moto could carry for the sender and its pollers
    /// if it did nothing else: one over the sum, per kind, of `per_message`
    /// over the ten-client rate, plus a tenth of a poller round.
    pub sender_ceiling_msgs_per_sec: f64,
    /// The AWS time of one batch of ten when moto serves its requests one
    /// after another: its twenty-one UpdateItems (sent ten at a time) at the
    /// ten-client rate, its BatchGetItem and SendMessageBatch at one
    /// client's latency. The poller's round is apart.
    pub batch_aws_ms: f64,
    /// The most one instance can reach here on one 80/s number: ten
    /// messages per batch, over 150 ms of Graph plus the batch's slot
    /// spread plus `batch_aws_ms` plus a poller round.
    pub one_instance_ceiling_msgs_per_sec: f64,
}

#[derive(Clone, Copy)]
enum Op {
    ConditionalUpdate,
    BatchGetItem,
    SendMessageBatch,
}

/// The records in one of the sender's batches.
const BATCH: usize = 10;
/// The sandbox's answer time in the throughput runs.
const GRAPH_SECS: f64 = 0.150;

/// How long after a batch's first slot its tenth comes, on a number capped
/// at `cap` per second: nine of the shared schedule's slot spacings
/// (`fincelo::store::NumberRate::spacing_us`).
pub fn slot_spread_ms(cap: u32) -> f64 {
    let spacing_us = fincelo::store::NumberRate { per_second: cap }.spacing_us();
    (BATCH as f64 - 1.0) * spacing_us as f64 / 1000.0
}

impl Op {
    /// How many of these one sent message costs: claim and record, and a
    /// tenth of the batch's slot claim; a tenth of the batch's window read;
    /// a tenth of the batch's events.
    fn per_message(self) -> f64 {
        match self {
            Op::ConditionalUpdate => 2.0 + 1.0 / BATCH as f64,
            Op::BatchGetItem | Op::SendMessageBatch => 1.0 / BATCH as f64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::ConditionalUpdate => "DynamoDB UpdateItem (conditional, as the claim)",
            Op::BatchGetItem => "DynamoDB BatchGetItem (10 keys, as the windows)",
            Op::SendMessageBatch => "SQS SendMessageBatch (10 entries, as the events)",
        }
    }
}

fn boxed(e: impl std::error::Error) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()
}

/// One request of `op`; `n` makes its key unique.
async fn one(
    op: Op,
    ddb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    world: &World,
    n: u64,
) -> Result<(), String> {
    let table = &world.resources.table_name;
    let key = |k: String| {
        [
            ("pk".to_string(), AttributeValue::S(k)),
            ("sk".to_string(), AttributeValue::S("capacity".into())),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    match op {
        Op::ConditionalUpdate => ddb
            .update_item()
            .table_name(table)
            .set_key(Some(key(format!("capacity#{}#{n}", world.prefix))))
            .update_expression(
                "SET #state = :claimed, claim_token = :tok, lease_until = :lease, \
                 attempts = if_not_exists(attempts, :zero) + :one, updated_at = :now",
            )
            .condition_expression("attribute_not_exists(#state) OR #state = :retry")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", AttributeValue::S("claimed".into()))
            .expression_attribute_values(":retry", AttributeValue::S("retry".into()))
            .expression_attribute_values(":tok", AttributeValue::S(format!("t{n}")))
            .expression_attribute_values(":lease", AttributeValue::N("1750000000".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", AttributeValue::S("2026-11-26T00:00:00Z".into()))
            .send()
            .await
            .map(drop)
            .map_err(boxed),
        Op::BatchGetItem => {
            let mut keys = KeysAndAttributes::builder().consistent_read(true);
            for i in 0..BATCH as u64 {
                let k = (n * BATCH as u64 + i) % 64;
                keys = keys.keys(key(format!("capacity#{}#{k}", world.prefix)));
            }
            ddb.batch_get_item()
                .request_items(table, keys.build().map_err(boxed)?)
                .send()
                .await
                .map(drop)
                .map_err(boxed)
        }
        Op::SendMessageBatch => {
            send_batch(
                sqs,
                world.resources.queue("EventsQueue"),
                (0..BATCH).map(|i| format!(r#"{{"capacity":{n},"entry":{i}}}"#)),
            )
            .await
        }
    }
}

/// Numbers requests across measurements, so each claim is of a new item.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// `clients` tasks send `op` back to back for about `secs`.
async fn rate(world: &World, op: Op, clients: u32, secs: f64) -> Result<Rate, String> {
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk);
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let done = Arc::new(AtomicU64::new(0));
    let busy_ns = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let moto = world.moto_cpu.and_then(|m| m.start());
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (ddb, sqs, done, busy_ns) =
                (ddb.clone(), sqs.clone(), done.clone(), busy_ns.clone());
            let world_ref: &World = world;
            // Scoped by the join below: the futures borrow `world`.
            async move {
                while Instant::now() < deadline {
                    let n = NEXT.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    one(op, &ddb, &sqs, world_ref, n).await?;
                    busy_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            }
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let requests = done.load(Ordering::Relaxed);
    Ok(Rate {
        clients,
        requests,
        per_sec: requests as f64 / elapsed,
        mean_ms: busy_ns.load(Ordering::Relaxed) as f64 / 1e6 / requests.max(1) as f64,
        moto_cpu_ms: moto
            .and_then(|m| m.end())
            .map(|spent| spent.cpu_secs * 1000.0 / requests.max(1) as f64),
    })
}

/// Every op at 1 and 10 clients, `secs` each.
pub async fn measure(world: &World, secs: f64) -> Result<Capacity, String> {
    let mut ops = Vec::new();
    for op in [
        Op::ConditionalUpdate,
        Op::BatchGetItem,
        Op::SendMessageBatch,
    ] {
        ops.push(OpCapacity {
            op: op.name(),
            per_message: op.per_message(),
            one: rate(world, op, 1, secs).await?,
            ten: rate(world, op, 10, secs).await?,
        });
    }
    let poll_round = poll_round(world, secs).await?;
    let poll_secs = poll_round.mean_ms / 1000.0;
    let per_message_secs: f64 = ops
        .iter()
        .map(|o| o.per_message / o.ten.per_sec)
        .sum::<f64>()
        + poll_secs / BATCH as f64;
    let batch_aws_ms: f64 = ops
        .iter()
        .map(|o| {
            let count = BATCH as f64 * o.per_message;
            if count > 1.0 {
                // The batch's records send these side by side.
                count / o.ten.per_sec * 1000.0
            } else {
                count * o.one.mean_ms
            }
        })
        .sum();
    Ok(Capacity {
        sender_ceiling_msgs_per_sec: 1.0 / per_message_secs,
        batch_aws_ms,
        one_instance_ceiling_msgs_per_sec: BATCH as f64
            / (GRAPH_SECS + slot_spread_ms(80) / 1000.0 + batch_aws_ms / 1000.0 + poll_secs),
        ops,
        poll_round,
    })
}

/// The calls of each operation in a `{"Service/Operation": {"calls": n}}`
/// map, as [`crate::counting`] reports them.
pub fn calls(requests: &serde_json::Value) -> Vec<(String, f64)> {
    requests
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, c)| (k.clone(), c["calls"].as_f64().unwrap_or(0.0)))
        .collect()
}

impl Capacity {
    /// What moto can carry for a run that made `function_requests` and
    /// `poller_requests` (`{"Service/Operation": {"calls": n}}`, as
    /// [`crate::counting`] reports them) for `processed` messages: one over
    /// the moto time a message costs at the run's own mix. Ten tenants in a
    /// batch claim slots once per number, not once per batch, and cold
    /// instances read tenants, secrets and recipients, so a run's mix is
    /// dearer than the one the fixed ceiling assumes. Each request is
    /// timed as the measured kind it resembles most: a single-item DynamoDB
    /// or Secrets Manager request as the conditional UpdateItem, a
    /// BatchGetItem as the BatchGetItem, any other SQS write as the
    /// SendMessageBatch, and each receive (with its delete) as a poller
    /// round. `None` when nothing was processed.
    pub fn ceiling_for_mix(
        &self,
        function_requests: &serde_json::Value,
        poller_requests: &serde_json::Value,
        processed: usize,
    ) -> Option<f64> {
        if processed == 0 {
            return None;
        }
        let per_sec = |op: Op| {
            self.ops
                .iter()
                .find(|o| o.op == op.name())
                .map(|o| o.ten.per_sec)
        };
        let (single, batch_get, sqs_write) = (
            per_sec(Op::ConditionalUpdate)?,
            per_sec(Op::BatchGetItem)?,
            per_sec(Op::SendMessageBatch)?,
        );
        let mut secs = 0.0;
        for (op, n) in calls(function_requests) {
            let rate = if op == "DynamoDB/BatchGetItem" {
                batch_get
            } else if op.starts_with("SQS/") {
                sqs_write
            } else {
                single
            };
            secs += n / rate;
        }
        let receives: f64 = calls(poller_requests)
            .iter()
            .filter(|(op, _)| op == "SQS/ReceiveMessage")
            .map(|(_, n)| n)
            .sum();
        secs += receives * self.poll_round.mean_ms / 1000.0;
        Some(processed as f64 / secs.max(1e-9))
    }
}

/// How deep the throughput runs' send queue starts (`--messages`' default).
const POLL_DEPTH: usize = 600;

/// Poller rounds, one client, for about `secs`, on a queue of its own kept
/// at `POLL_DEPTH`: each round's ten messages are put back after the round,
/// outside its time.
async fn poll_round(world: &World, secs: f64) -> Result<Rate, String> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{}-capacity-poll", world.prefix))
        .send()
        .await
        .map_err(boxed)?
        .queue_url
        .ok_or("CreateQueue returned no URL")?;
    let refill = || {
        send_batch(
            &sqs,
            &queue,
            (0..BATCH).map(|i| send_request(&format!("poll-{i}"), i)),
        )
    };
    for _ in 0..POLL_DEPTH / BATCH {
        refill().await?;
    }
    let (mut rounds, mut busy) = (0u64, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        let t = Instant::now();
        let msgs = fincelo_local::receive_batch(&sqs, &queue)
            .await
            .map_err(boxed)?;
        if msgs.len() < BATCH {
            return Err(format!(
                "the poll queue gave {} messages, not {BATCH}",
                msgs.len()
            ));
        }
        sqs.delete_message_batch()
            .queue_url(&queue)
            .set_entries(Some(fincelo_local::delete_entries(&msgs, None)))
            .send()
            .await
            .map_err(boxed)?;
        busy += t.elapsed();
        rounds += 1;
        refill().await?;
    }
    let mean_ms = busy.as_secs_f64() * 1000.0 / rounds.max(1) as f64;
    Ok(Rate {
        clients: 1,
        requests: rounds * 2,
        per_sec: 1000.0 / mean_ms.max(1e-9),
        mean_ms,
        moto_cpu_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_ten_spreads_over_nine_slot_spacings() {
        // 1.1 s / 80 = 13.75 ms between slots.
        assert!((slot_spread_ms(80) - 123.75).abs() < 1e-9);
        assert!((slot_spread_ms(1000) - 9.9).abs() < 1e-9);
    }

    fn rate(per_sec: f64) -> Rate {
        Rate {
            clients: 10,
            requests: 0,
            per_sec,
            mean_ms: 1000.0 / per_sec,
            moto_cpu_ms: None,
        }
    }

    /// A run's own mix prices each request at its kind's measured rate:
    /// 100 messages that cost 250 single-item requests (4 ms each at 250/s),
    /// 10 BatchGetItems and 10 SQS writes (10 ms each at 100/s) and 10
    /// receives (a 20 ms round) take 1.4 s of moto: 71.4 msg/s. Twice the
    /// single-item requests, 2.4 s: 41.7 msg/s.
    #[test]
    fn the_ceiling_of_a_run_is_priced_at_its_own_mix() {
        let op = |o: Op, per_sec: f64| OpCapacity {
            op: o.name(),
            per_message: o.per_message(),
            one: rate(per_sec),
            ten: rate(per_sec),
        };
        let capacity = Capacity {
            ops: vec![
                op(Op::ConditionalUpdate, 250.0),
                op(Op::BatchGetItem, 100.0),
                op(Op::SendMessageBatch, 100.0),
            ],
            poll_round: rate(50.0),
            sender_ceiling_msgs_per_sec: 0.0,
            batch_aws_ms: 0.0,
            one_instance_ceiling_msgs_per_sec: 0.0,
        };
        let mix = |single: u64| {
            serde_json::json!({
                "DynamoDB/UpdateItem": {"calls": single - 50},
                "DynamoDB/GetItem": {"calls": 40},
                "Secrets Manager/GetSecretValue": {"calls": 10},
                "DynamoDB/BatchGetItem": {"calls": 10},
                "SQS/SendMessageBatch": {"calls": 10},
            })
        };
        let polls = serde_json::json!({
            "SQS/ReceiveMessage": {"calls": 10},
            "SQS/DeleteMessageBatch": {"calls": 10},
        });
        let ceiling = capacity
            .ceiling_for_mix(&mix(250), &polls, 100)
            .expect("ceiling");
        assert!((ceiling - 100.0 / 1.4).abs() < 1e-6, "{ceiling}");
        let dearer = capacity
            .ceiling_for_mix(&mix(500), &polls, 100)
            .expect("ceiling");
        assert!((dearer - 100.0 / 2.4).abs() < 1e-6, "{dearer}");
        assert_eq!(capacity.ceiling_for_mix(&mix(250), &polls, 0), None);
    }
}
