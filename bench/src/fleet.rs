//! A fixed fleet of sender instances on the one send queue, as Lambda runs
//! them once the event source mapping has scaled up to its
//! `MaximumConcurrency` (`SenderMaxConcurrency`, 10 by default in
//! `template.yaml`): each instance is its own `Sender` (own caches, own
//! AWS clients counting their requests), takes a batch of up to 10, handles
//! it, deletes what succeeded, and takes the next. How Lambda grows to that
//! many pollers is not modelled here (the local runner does that); these
//! sections measure the fleet at its full size.
//!
//! Every record's body is read once on receipt for its tenant, so a section
//! can count each tenant's processed records and, for one watched tenant,
//! note when an instance received each of its records (keyed by recipient
//! phone, unique per request in this process), the start of the part of a
//! record's latency that our own code controls, and when its batch ended.
//!
//! Secrets Manager on the warm path: an instance fetches a tenant's secret
//! on its first record of that tenant, and again on the first record after
//! its cache entry expired (`SECRET_CACHE_TTL_SECS`, 300 s by default, so a
//! rotated token is picked up), so a batch may make as many Secrets Manager
//! calls as it brings tenants new, or due again, to its instance; any call
//! beyond that is counted warm. The calls that were due again are counted
//! apart (`secrets_manager_refreshes`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fincelo::sender::Sender;

use crate::world::World;
use fincelo_bench::counting::RequestCounter;

/// Unix milliseconds on the system clock (the sandbox's `accepted_at` reads
/// the same clock).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The tenant and recipient phone of a send request body.
fn tenant_and_phone(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    (
        v["tenant_id"].as_str().unwrap_or_default().to_string(),
        v["recipient"]["phone"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[derive(Default)]
struct Shared {
    /// Records deleted (handled without a batch item failure), per tenant.
    processed: Mutex<HashMap<String, usize>>,
    processed_total: AtomicUsize,
    failures: AtomicUsize,
    /// The watched tenant's records: recipient phone → when an instance
    /// received it and when that instance finished the record's batch
    /// (unix ms).
    received: Mutex<HashMap<String, Receipt>>,
    secrets_manager_warm: AtomicUsize,
    secrets_manager_refreshes: AtomicUsize,
    stop: AtomicBool,
}

/// A running fleet.
pub struct Fleet {
    shared: Arc<Shared>,
    counters: Vec<RequestCounter>,
    poller_counter: RequestCounter,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// What a fleet did, once stopped.
pub struct FleetTotals {
    pub instances: u32,
    pub processed: usize,
    pub batch_item_failures: usize,
    /// The functions' AWS requests, by service/operation, all instances.
    pub function_requests: serde_json::Value,
    pub poller_requests: serde_json::Value,
    pub dynamodb_calls: u64,
    pub secrets_manager_total: u64,
    pub secrets_manager_warm: u64,
    /// Fetches of a secret whose cache entry had expired.
    pub secrets_manager_refreshes: u64,
    /// The watched tenant's records, by recipient phone.
    pub received: HashMap<String, Receipt>,
}

/// A watched record's first receipt by an instance.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// When the instance received its batch (unix ms).
    pub received_ms: i64,
    /// When the instance finished that batch (unix ms).
    pub batch_done_ms: i64,
    /// The recipient phones of the batch's records of other tenants.
    pub batch_mates: Vec<String>,
}

impl Fleet {
    /// Starts `instances` senders polling the world's send queue; records of
    /// `watch` have their receipt times noted.
    pub async fn start(
        world: &World,
        instances: u32,
        watch: Option<&str>,
    ) -> Result<Fleet, String> {
        let queue = world.resources.queue("SendQueue").to_string();
        let shared = Arc::new(Shared::default());
        let counters: Vec<RequestCounter> =
            (0..instances).map(|_| RequestCounter::default()).collect();
        let poller_counter = RequestCounter::default();
        let (_, poll_sqs, _) =
            fincelo_bench::counting::counted_clients(&world.sdk, &poller_counter);
        let mut tasks = Vec::new();
        for counter in &counters {
            let app = world.counted_app(instances, counter).await?;
            let secret_ttl = app.config.cache.secret_ttl;
            let sender = Sender::new(app);
            let (sqs, queue, shared) = (poll_sqs.clone(), queue.clone(), shared.clone());
            let counter = counter.clone();
            let watch = watch.map(str::to_string);
            tasks.push(tokio::spawn(async move {
                // Tenant -> when this instance last had to fetch its secret.
                let mut fetched: HashMap<String, Instant> = HashMap::new();
                while !shared.stop.load(Ordering::Relaxed) {
                    let msgs = match fincelo_local::receive_batch(&sqs, &queue).await {
                        Ok(m) if m.is_empty() => continue,
                        Ok(m) => m,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let got_at = unix_ms();
                    let tenants: Vec<(String, String)> = msgs
                        .iter()
                        .map(|m| tenant_and_phone(m.body.as_deref().unwrap_or_default()))
                        .collect();
                    let now = Instant::now();
                    let mut new_tenants = 0;
                    let mut due_again: Vec<&str> = Vec::new();
                    for (t, _) in &tenants {
                        match fetched.get(t) {
                            None => {
                                new_tenants += 1;
                                fetched.insert(t.clone(), now);
                            }
                            Some(at) if now.duration_since(*at) >= secret_ttl => {
                                if !due_again.contains(&t.as_str()) {
                                    due_again.push(t);
                                }
                            }
                            Some(_) => {}
                        }
                    }
                    let sm_before = counter.calls_to("Secrets Manager") as usize;
                    let resp = sender
                        .handle_batch(fincelo_local::lambda_event(&msgs))
                        .await;
                    let done_at = unix_ms();
                    if let Some(w) = &watch {
                        let mut received =
                            shared.received.lock().unwrap_or_else(|p| p.into_inner());
                        let others: Vec<String> = tenants
                            .iter()
                            .filter(|(t, _)| t != w)
                            .map(|(_, p)| p.clone())
                            .collect();
                        for (t, phone) in &tenants {
                            if t == w {
                                received.entry(phone.clone()).or_insert_with(|| Receipt {
                                    received_ms: got_at,
                                    batch_done_ms: done_at,
                                    batch_mates: others.clone(),
                                });
                            }
                        }
                    }
                    let sm_calls = counter.calls_to("Secrets Manager") as usize - sm_before;
                    // The sender's cache entry was filled a little after
                    // this batch's receipt: a tenant due by this clock but
                    // not yet by the sender's stays due until its call.
                    let extra = sm_calls.saturating_sub(new_tenants);
                    if extra >= due_again.len() {
                        for t in &due_again {
                            fetched.insert(t.to_string(), now);
                        }
                    }
                    let refreshed = extra.min(due_again.len());
                    shared
                        .secrets_manager_refreshes
                        .fetch_add(refreshed, Ordering::Relaxed);
                    shared
                        .secrets_manager_warm
                        .fetch_add(extra - refreshed, Ordering::Relaxed);
                    shared
                        .failures
                        .fetch_add(resp.batch_item_failures.len(), Ordering::Relaxed);
                    let failed: HashSet<&str> = resp
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_str())
                        .collect();
                    let _ = fincelo_local::delete_handled(&sqs, &queue, &msgs, &resp).await;
                    let mut processed = shared.processed.lock().unwrap_or_else(|p| p.into_inner());
                    for (m, (t, _)) in msgs.iter().zip(&tenants) {
                        if !failed.contains(m.message_id.as_deref().unwrap_or_default()) {
                            *processed.entry(t.clone()).or_default() += 1;
                            shared.processed_total.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Ok(Fleet {
            shared,
            counters,
            poller_counter,
            tasks,
            started: Instant::now(),
        })
    }

    /// When the fleet started polling.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records handled and deleted, all tenants.
    pub fn processed(&self) -> usize {
        self.shared.processed_total.load(Ordering::Relaxed)
    }

    /// Records of `tenant` handled and deleted.
    pub fn processed_of(&self, tenant: &str) -> usize {
        self.shared
            .processed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `done` holds or `limit` has passed since the start;
    /// returns when it held (or the limit), from the start.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&Fleet) -> bool) -> Duration {
        while self.started.elapsed() < limit && !done(self) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.started.elapsed()
    }

    /// Stops polling (each instance finishes its batch) and sums up.
    pub async fn stop(self) -> FleetTotals {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let total = |svc: &str| self.counters.iter().map(|c| c.calls_to(svc)).sum::<u64>();
        let s = &self.shared;
        FleetTotals {
            instances: self.counters.len() as u32,
            processed: s.processed_total.load(Ordering::Relaxed),
            batch_item_failures: s.failures.load(Ordering::Relaxed),
            function_requests: crate::sender_run::merge_json(
                self.counters.iter().map(RequestCounter::to_json),
            ),
            poller_requests: self.poller_counter.to_json(),
            dynamodb_calls: total("DynamoDB"),
            secrets_manager_total: total("Secrets Manager"),
            secrets_manager_warm: s.secrets_manager_warm.load(Ordering::Relaxed) as u64,
            secrets_manager_refreshes: s.secrets_manager_refreshes.load(Ordering::Relaxed) as u64,
            received: std::mem::take(&mut *s.received.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}
