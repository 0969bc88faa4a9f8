//! The send queue's SQS event source mapping, as Lambda runs it for a
//! standard queue: pollers that receive a batch, invoke the sender with it,
//! and delete what the partial batch response did not name, and whose
//! number grows with a backlog and shrinks when the queue runs dry.
//!
//! What AWS documents, and how the runner follows it
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html>,
//! "Configuring scaling behavior for SQS event source mappings"):
//!
//! - "When messages are available, Lambda starts processing five batches at
//!   a time with five concurrent invocations": the mapping starts
//!   [`STARTING_CONCURRENCY`] pollers, capped by the maximum.
//! - "If messages are still available, Lambda increases the number of
//!   processes that are reading batches by up to 300 more instances per
//!   minute": while there is a backlog, one more poller every
//!   [`SCALE_UP_EVERY`] (60 s / 300), never above the maximum.
//! - "When traffic is low, Lambda scales back the processing to five
//!   concurrent batches, and can optimize to as few as 2 ... However, this
//!   optimization is not available when you enable the maximum concurrency
//!   setting": `template.yaml` always sets it, so a poller whose receive
//!   comes back empty retires, down to the same floor it started at
//!   (five, or the maximum if lower), never below.
//! - The maximum is the mapping's `ScalingConfig.MaximumConcurrency`
//!   (2 to 1,000: <https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html>),
//!   which `template.yaml` sets from `SenderMaxConcurrency`, the parameter
//!   that also sets the function's `SENDER_MAX_CONCURRENCY`. The runner
//!   reads the same value from the function's configuration
//!   (`fincelo::config::SenderConfig::max_concurrency`), so the setting
//!   means one thing in Lambda and here.
//!
//! How the runner knows that "messages are still available": a receive
//! that came back full (the batch size, 10) left messages behind it, as far
//! as a poller can tell. That is what the pollers see without an extra
//! request; asking SQS for `ApproximateNumberOfMessages` would add a call per
//! step to every count the bench makes, and AWS does not document which
//! signal Lambda uses. The scaling runs on real time (tokio's timer), as
//! Lambda's does and as the runner's I/O does; the stack's shifted clock
//! moves the functions' notion of "now", not the rate of polling.
//!
//! Each poller is its own [`Sender`] (its own pacer and caches), as each
//! Lambda instance is. On stop, a poller that is waiting on a receive stops
//! at once (what it had not yet received stays on the queue); one that is
//! running a batch finishes it and deletes what succeeded, within the
//! function's timeout ([`INVOCATION_TIMEOUT`]), as Lambda would let it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use fincelo::sender::Sender;
use fincelo::startup::App;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

/// The mapping's batch size (`BatchSize: 10` in template.yaml).
pub const BATCH_SIZE: usize = 10;

/// How many batches Lambda processes at once when messages arrive, and
/// scales back to when traffic is low with a maximum concurrency set.
pub const STARTING_CONCURRENCY: u32 = 5;

/// "Up to 300 more instances per minute": one more every 200 ms.
pub const SCALE_UP_EVERY: Duration = Duration::from_millis(200);

/// The sender function's timeout (`Timeout: 30` in template.yaml): how long
/// a batch already running may take to finish when the stack stops.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How many pollers run, the most that ran at once, and the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub live: u32,
    pub peak: u32,
    pub max: u32,
}

/// What the pollers and the scaler share.
#[derive(Debug, Default)]
struct Gauge {
    live: AtomicU32,
    peak: AtomicU32,
    /// A receive came back full since the scaler last looked.
    backlog: AtomicBool,
}

/// A running event source mapping on the send queue.
pub struct Mapping {
    gauge: Arc<Gauge>,
    max: u32,
    task: JoinHandle<()>,
}

impl Mapping {
    /// Starts the mapping: [`STARTING_CONCURRENCY`] pollers (at most `max`),
    /// each a new instance of `sender`'s function, scaling up to `max`.
    /// It stops when `stop` turns true; [`Mapping::finish`] waits for that.
    pub fn start(app: App, sender: &Sender, max: u32, stop: watch::Receiver<bool>) -> Mapping {
        let gauge = Arc::new(Gauge::default());
        let task = tokio::spawn(scale(app, sender.sibling(), max, gauge.clone(), stop));
        Mapping { gauge, max, task }
    }

    /// The pollers now, their peak since the start, and the maximum.
    pub fn concurrency(&self) -> Concurrency {
        Concurrency {
            live: self.gauge.live.load(Ordering::SeqCst),
            peak: self.gauge.peak.load(Ordering::SeqCst),
            max: self.max,
        }
    }

    /// Waits, once the stack's stop signal is sent, for every poller to
    /// finish the batch it is running; a batch still running after
    /// [`INVOCATION_TIMEOUT`] is cut off, as Lambda ends an invocation at
    /// its timeout (its messages reappear after their visibility timeout).
    pub async fn finish(self) {
        let mut task = self.task;
        if tokio::time::timeout(INVOCATION_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            warn!("a send queue poller outlived the function timeout at shutdown; cut off");
            task.abort();
            let _ = task.await;
        }
    }
}

/// The scaler: starts the first pollers, adds one per [`SCALE_UP_EVERY`]
/// while receives come back full, and on stop waits for all of them.
async fn scale(
    app: App,
    function: Arc<Sender>,
    max: u32,
    gauge: Arc<Gauge>,
    mut stop: watch::Receiver<bool>,
) {
    let floor = STARTING_CONCURRENCY.min(max);
    let mut pollers = JoinSet::new();
    let mut next = 0u32;
    let poller_stop = stop.clone();
    let mut add = |pollers: &mut JoinSet<()>| {
        let live = gauge.live.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(live, Ordering::SeqCst);
        pollers.spawn(poll(
            app.clone(),
            function.sibling(),
            next,
            floor,
            gauge.clone(),
            poller_stop.clone(),
        ));
        next += 1;
        live
    };
    for _ in 0..floor {
        add(&mut pollers);
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SCALE_UP_EVERY) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        while pollers.try_join_next().is_some() {}
        // Only this task adds pollers, so `live` cannot pass `max` between
        // the check and the add; pollers only ever take it down.
        if gauge.backlog.swap(false, Ordering::SeqCst) && gauge.live.load(Ordering::SeqCst) < max {
            let live = add(&mut pollers);
            info!(live, max, "send queue backlog: one more poller");
        }
    }
    while pollers.join_next().await.is_some() {}
}

/// One poller, i.e. one Lambda instance: receive, invoke, delete, until
/// stopped, or until a receive comes back empty while more than `floor`
/// pollers run.
async fn poll(
    app: App,
    sender: Arc<Sender>,
    instance: u32,
    floor: u32,
    gauge: Arc<Gauge>,
    mut stop: watch::Receiver<bool>,
) {
    let sqs = app.queues.client().clone();
    let url = app.queues.send_queue_url.clone();
    loop {
        if *stop.borrow() {
            break;
        }
        let got = tokio::select! {
            r = receive_batch(&sqs, &url) => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let messages = match got {
            Ok(messages) => messages,
            Err(e) => {
                warn!(instance, error = %e, "send queue poll failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            if retire(&gauge, floor) {
                info!(instance, "send queue empty: poller retired");
                return;
            }
            continue;
        }
        if messages.len() >= BATCH_SIZE {
            gauge.backlog.store(true, Ordering::SeqCst);
        }
        let response = sender.handle_batch(lambda_event(&messages)).await;
        if let Err(e) = delete_handled(&sqs, &url, &messages, &response).await {
            warn!(instance, error = %e, "delete of processed messages failed; they will be redelivered (and deduplicated)");
        }
    }
    gauge.live.fetch_sub(1, Ordering::SeqCst);
}

/// Takes one poller off the count if more than `floor` run; whether it did.
fn retire(gauge: &Gauge, floor: u32) -> bool {
    gauge
        .live
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
            (live > floor).then(|| live - 1)
        })
        .is_ok()
}

/// One receive from the send queue as Lambda's event source mapping makes
/// it: up to 10 messages, a 1 s long poll, with the system attributes
/// (receive count, sent time) and message attributes the sender reads.
pub async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(BATCH_SIZE as i32)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await?;
    Ok(out.messages.unwrap_or_default())
}

/// Lambda's SQS event for messages received from a queue, with the
/// attributes the event source mapping passes (receive count among them).
pub fn lambda_event(messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut rec = SqsMessage::default();
            rec.message_id = m.message_id.clone();
            rec.receipt_handle = m.receipt_handle.clone();
            rec.body = m.body.clone();
            rec.md5_of_body = m.md5_of_body.clone();
            rec.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            rec.event_source = Some("aws:sqs".into());
            rec.aws_region = Some("us-east-1".into());
            rec
        })
        .collect();
    event
}

/// Deletes from `queue_url` what the event source mapping deletes after a
/// batch ([`delete_entries`]); how many messages that was. A failed delete
/// only redelivers them, and the sender's ledger finds those alerts
/// finished.
pub async fn delete_handled(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
    response: &SqsBatchResponse,
) -> Result<usize, aws_sdk_sqs::Error> {
    let entries = delete_entries(messages, Some(response));
    let n = entries.len();
    if n > 0 {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(n)
}

/// What the event source mapping deletes after a batch: every message the
/// partial batch response did not name (all of them without a response).
pub fn delete_entries(
    messages: &[Message],
    response: Option<&SqsBatchResponse>,
) -> Vec<DeleteMessageBatchRequestEntry> {
    let failed: std::collections::HashSet<&str> = response
        .map(|r| {
            r.batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect()
        })
        .unwrap_or_default();
    messages
        .iter()
        .filter(|m| {
            m.message_id
                .as_deref()
                .is_some_and(|id| !failed.contains(id))
        })
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone()?)
                .build()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pollers retire one at a time down to the floor, and never below it,
    /// however many find the queue empty at once.
    #[test]
    fn retiring_stops_at_the_floor() {
        let gauge = Gauge::default();
        gauge.live.store(8, Ordering::SeqCst);
        let retired = (0..8).filter(|_| retire(&gauge, 5)).count();
        assert_eq!(retired, 3);
        assert_eq!(gauge.live.load(Ordering::SeqCst), 5);
    }
}
