//! Counts AWS requests at the SDK layer: an interceptor attached to the
//! clients the benchmark builds, keyed by service and operation.
//!
//! `read_after_execution` runs once per operation call and
//! `read_before_transmit` once per HTTP attempt (so retries show up as
//! attempts above calls). The operation's name is in the config bag from
//! serialization on, so neither hook sees an unnamed call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// When the current attempt went on the wire.
#[derive(Debug, Clone, Copy)]
struct SentAt(Instant);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

/// Calls and HTTP attempts of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCount {
    pub calls: u64,
    pub attempts: u64,
    /// Sum of the attempts' times from transmit to response headers.
    pub wire: Duration,
}

/// Shared counters; clone freely.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<(String, String), OpCount>>>,
}

impl RequestCounter {
    fn bump(&self, cfg: &ConfigBag, attempt: bool) {
        self.record(cfg, |c| {
            if attempt {
                c.attempts += 1;
            } else {
                c.calls += 1;
            }
        });
    }

    fn record(&self, cfg: &ConfigBag, f: impl FnOnce(&mut OpCount)) {
        let (service, op) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry((service, op)).or_default());
    }

    /// A copy of the counts now, by (service, operation).
    pub fn snapshot(&self) -> BTreeMap<(String, String), OpCount> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Operation calls to one service (e.g. `DynamoDB`, `SQS`, `Secrets Manager`).
    pub fn calls_to(&self, service: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, c)| c.calls)
            .sum()
    }

    /// `{"DynamoDB/PutItem": {"calls":..,"attempts":..}, ...}`
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .snapshot()
            .into_iter()
            .map(|((s, o), c)| {
                let mean_ms = c.wire.as_secs_f64() * 1000.0 / c.attempts.max(1) as f64;
                (
                    format!("{s}/{o}"),
                    serde_json::json!({"calls": c.calls, "attempts": c.attempts,
                                       "mean_ms": (mean_ms * 10.0).round() / 10.0}),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "fincelo-bench request counter"
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, false);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, true);
        cfg.interceptor_state().store_put(SentAt(Instant::now()));
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(SentAt(t)) = cfg.load::<SentAt>().copied() {
            self.record(cfg, |c| c.wire += t.elapsed());
        }
        Ok(())
    }
}

/// The three clients the app uses, each with `counter` attached.
pub fn counted_clients(
    sdk: &aws_config::SdkConfig,
    counter: &RequestCounter,
) -> (
    aws_sdk_dynamodb::Client,
    aws_sdk_sqs::Client,
    aws_sdk_secretsmanager::Client,
) {
    let dynamo = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(counter.clone())
        .build();
    let sqs = aws_sdk_sqs::config::Builder::from(sdk)
        .interceptor(counter.clone())
        .build();
    let secrets = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .interceptor(counter.clone())
        .build();
    (
        aws_sdk_dynamodb::Client::from_conf(dynamo),
        aws_sdk_sqs::Client::from_conf(sqs),
        aws_sdk_secretsmanager::Client::from_conf(secrets),
    )
}
