//! The service's CloudWatch metrics, derived from the events it publishes,
//! and from one fact that is not an event: Meta's answer to a send call.
//!
//! Every other fact a metric counts is already an [`Event`] for the Fincelo
//! app, so those metrics are a function of the events and nothing else: the
//! queue adapter ([`crate::queues::Queues::publish`]) hands each batch it
//! published to [`Metrics::emit`]. A batch whose publish failed is counted
//! when its owed events go out ([`crate::owed`]), so a change is counted
//! once, when the app hears of it. `send.outcome` is published at least
//! once (see [`crate::events`]): an alert's `sent` may count twice when its
//! request is redelivered, and CloudWatch's own EMF ingestion is
//! at-least-once too
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//! The metrics are for trends and alarms; the cost ledger ([`crate::costs`])
//! and the send ledger are the exact record.
//!
//! The lines are CloudWatch Embedded Metric Format (EMF), written to stdout
//! where Lambda ships them to the function's log group and CloudWatch
//! extracts the metrics. They are written by awslabs' `metrique` EMF
//! formatter (`metrique-writer-format-emf`), chosen over
//! `metrics_cloudwatch_embedded` 0.10 because the latter keeps one
//! process-wide recorder (`metrics::set_global_recorder`), so the local
//! stack and the tests, which run every function and many tenants in one
//! process, could not tell their lines apart, and it stamps lines with the
//! system time; metrique formats an entry we build onto any writer, with
//! the timestamp we give it (the injectable [`Clock`]), and keeps no global
//! state. It brings more crates (its own dependency tree); both build
//! offline here.
//!
//! Dimensions: every metric has `Function` (the Lambda function's name,
//! `AWS_LAMBDA_FUNCTION_NAME`; `local` in the local stack); a few add one
//! bounded label: `Mode` (`free_form`, `template`), `Code` (Meta's error
//! code, a closed list of a few hundred), `Action` (the five response
//! actions). No metric has a tenant dimension: tenants grow without bound
//! and each dimension value is a metric CloudWatch bills. Per-tenant
//! figures are in the cost ledger (`fwa costs`), the channel status
//! (`fwa status`) and the events, which name the tenant.
//!
//! Enqueue-to-sent latency ([`SEND_LATENCY`]) is a sent outcome's
//! `sent_at - queued_at`: from the moment its request's record reached the
//! send queue (SQS's `SentTimestamp`, which a redelivery keeps) to Meta's
//! acceptance. A copy the sender re-queued itself (a pair-rate deferral, a
//! wait for Meta's per-user limit) and a 131047 hand-back are new messages:
//! the latency then runs from that copy, and so measures the last leg, not
//! the alert's whole wait; an alert held for its template counts from its
//! first enqueue (the waiting list keeps it). An outcome repeated from the
//! ledger carries the first's times and counts its latency again, as it
//! counts in [`ALERTS_SENT`] again (at least once); one resolved from Meta's
//! status after a lost answer has no queue time and adds none. Each line carries one raw value, never negative
//! (a clock step back gives 0), which is what CloudWatch needs to compute
//! the dashboard's p50 and p99: percentiles come only from raw values, or
//! from statistic sets whose SampleCount is 1 or whose Min equals Max, and
//! never when a value is negative
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html).
//!
//! [`TEMPLATE_FALLBACKS`] counts templates sent instead of the text an
//! alert carried (the `fallback` of `send.outcome`: the window closed, or
//! Meta's 131047); an alert with no text that goes as its template is in
//! [`ALERTS_SENT`] only.
//!
//! [`META_ERRORS`] counts each error Meta gave, once, where it arrives:
//! - an error a send call got back, by the sender as the answer arrives
//!   ([`Metrics::meta_error`]), whatever became of the alert: retried
//!   (130429, a 5xx), waiting for the CSM (131049), held for the tenant's
//!   payment (131042), in doubt, or parked. Most of these publish no
//!   outcome, and the ones that do would count a refusal Meta sent
//!   asynchronously a second time, so `send.outcome`'s `meta_code` is not
//!   counted;
//! - each distinct code in a `failed` status, by the webhook (Meta's
//!   asynchronous refusals).
//!
//! A token refreshed on 190 and the call repeated counts only the repeat's
//! answer.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use metrique_writer_core::config::AllowSplitEntries;
use metrique_writer_core::format::Format;
use metrique_writer_core::unit::{AsMilliseconds, AsSeconds};
use metrique_writer_core::value::WithDimension;
use metrique_writer_core::{Entry, EntryWriter, IoStreamError};
use metrique_writer_format_emf::Emf;
use tracing::warn;

use crate::clock::Clock;
use crate::costs::{self, CostKey, RateCard};
use crate::events::Event;
use crate::store::{Outcome, SendMode};

/// Alerts Meta accepted, by `Mode`.
pub const ALERTS_SENT: &str = "AlertsSent";
/// Alerts sent as a template instead of their text (the CSM's window was
/// closed, or Meta refused the free-form message).
pub const TEMPLATE_FALLBACKS: &str = "TemplateFallbacks";
/// Alerts sent free-form inside the CSM's 24-hour window.
pub const WINDOW_HITS: &str = "WindowHits";
/// Milliseconds from a request's arrival on the send queue to Meta's
/// acceptance of its message.
pub const SEND_LATENCY: &str = "SendLatency";
/// Message statuses, one metric each.
pub const MESSAGES_DELIVERED: &str = "MessagesDelivered";
pub const MESSAGES_READ: &str = "MessagesRead";
pub const MESSAGES_FAILED: &str = "MessagesFailed";
/// Meta's errors, by `Code`: each error a send call got back, and each
/// distinct code of a failed status.
pub const META_ERRORS: &str = "MetaErrors";
/// Seconds from Meta's timestamp of a status or an inbound message to its
/// receipt by the webhook.
pub const WEBHOOK_INTAKE_LAG: &str = "WebhookIntakeLag";
/// CSMs' answers to alerts, by `Action`.
pub const RESPONSES: &str = "Responses";
/// Estimated cost of delivered billable messages, in the rate card's
/// currency ([`crate::costs`]).
pub const ESTIMATED_COST: &str = "EstimatedCost";
/// A phone number Meta flagged (its quality dropped towards RED; Meta's
/// webhook carries `FLAGGED`, not a colour).
pub const NUMBER_FLAGGED: &str = "NumberFlagged";
/// Meta restricted the account (`account_update` with restrictions).
pub const ACCOUNT_RESTRICTED: &str = "AccountRestricted";

/// Every metric this module emits: the dashboard and the alarms in
/// `template.yaml` name only these (a test checks it).
pub const ALL: &[&str] = &[
    ALERTS_SENT,
    TEMPLATE_FALLBACKS,
    WINDOW_HITS,
    SEND_LATENCY,
    MESSAGES_DELIVERED,
    MESSAGES_READ,
    MESSAGES_FAILED,
    META_ERRORS,
    WEBHOOK_INTAKE_LAG,
    RESPONSES,
    ESTIMATED_COST,
    NUMBER_FLAGGED,
    ACCOUNT_RESTRICTED,
];

/// The dimension every metric has.
pub const FUNCTION_DIMENSION: &str = "Function";

/// Where the metrics go and what they are stamped with. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `None`: no metrics (`METRICS_NAMESPACE` unset).
    namespace: Option<String>,
    function: String,
    clock: Clock,
    sink: Sink,
}

/// Where the EMF lines are written: stdout, from which Lambda ships them
/// to CloudWatch, unless [`Metrics::writing_to`] gave another writer (a
/// test reads what [`crate::queues::Queues::publish`] wrote). One batch's
/// lines are written under one lock, so they never interleave.
#[derive(Clone)]
pub struct Sink(Arc<Mutex<dyn io::Write + Send>>);

impl Sink {
    pub fn stdout() -> Sink {
        Sink(Arc::new(Mutex::new(io::stdout())))
    }

    /// Lines go to `out`.
    pub fn to(out: impl io::Write + Send + 'static) -> Sink {
        Sink(Arc::new(Mutex::new(out)))
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Count(u64),
    Seconds(u64),
    Millis(u64),
    Amount(f64),
}

#[derive(Debug, Clone, PartialEq)]
struct Datum {
    name: &'static str,
    value: Value,
    /// At most one bounded label.
    label: Option<(&'static str, String)>,
}

fn count(name: &'static str) -> Datum {
    Datum {
        name,
        value: Value::Count(1),
        label: None,
    }
}

impl Datum {
    fn by(mut self, dimension: &'static str, value: impl Into<String>) -> Datum {
        self.label = Some((dimension, value.into()));
        self
    }
}

/// What one event counts, at `now` (unix seconds).
fn data(event: &Event, now: i64, card: Option<&RateCard>) -> Vec<Datum> {
    let lag = |ts: i64| Datum {
        name: WEBHOOK_INTAKE_LAG,
        value: Value::Seconds(u64::try_from(now.saturating_sub(ts)).unwrap_or(0)),
        label: None,
    };
    match event {
        Event::SendOutcome {
            outcome,
            mode,
            queued_at,
            sent_at,
            fallback,
            ..
        } if *outcome == Outcome::Sent => {
            let name = mode.map(SendMode::as_str).unwrap_or(costs::UNKNOWN);
            let mut d = vec![count(ALERTS_SENT).by("Mode", name)];
            if *mode == Some(SendMode::FreeForm) {
                d.push(count(WINDOW_HITS));
            }
            if fallback.is_some() {
                d.push(count(TEMPLATE_FALLBACKS));
            }
            if let (Some(q), Some(s)) = (queued_at, sent_at) {
                let ms = s.unix_ms.saturating_sub(q.unix_ms);
                d.push(Datum {
                    name: SEND_LATENCY,
                    value: Value::Millis(u64::try_from(ms).unwrap_or(0)),
                    label: None,
                });
            }
            d
        }
        // A parked or ambiguous outcome's `meta_code` was counted when the
        // send's answer arrived ([`Metrics::meta_error`]) or, for Meta's
        // asynchronous refusals, with the failed status.
        Event::SendOutcome { .. } => vec![],
        Event::MessageStatusChanged {
            status,
            timestamp,
            errors,
            recipient,
            pricing,
            ..
        } => {
            let mut d = vec![lag(*timestamp)];
            match status.as_str() {
                "delivered" => d.push(count(MESSAGES_DELIVERED)),
                "read" => d.push(count(MESSAGES_READ)),
                "failed" => d.push(count(MESSAGES_FAILED)),
                _ => {}
            }
            let mut codes: Vec<i64> = errors.iter().map(|e| e.code).collect();
            codes.sort_unstable();
            codes.dedup();
            d.extend(
                codes
                    .into_iter()
                    .map(|c| count(META_ERRORS).by("Code", c.to_string())),
            );
            // Counted when delivered, as the cost ledger counts it.
            if let (Some(p), Some(card), "delivered") = (pricing, card, status.as_str()) {
                let key = CostKey {
                    category: p.category.clone().unwrap_or_else(|| costs::UNKNOWN.into()),
                    kind: p.kind.clone().unwrap_or_else(|| costs::UNKNOWN.into()),
                    country: costs::country_of(recipient.as_ref().and_then(|r| r.wa_id.as_deref())),
                };
                let estimate = costs::Estimate::of(card, &key, 1);
                if estimate.billable > 0 && estimate.unpriced == 0 {
                    d.push(Datum {
                        name: ESTIMATED_COST,
                        value: Value::Amount(costs::amount(estimate.cost)),
                        label: None,
                    });
                }
            }
            d
        }
        Event::CsmMessageReceived { timestamp, .. } => vec![lag(*timestamp)],
        Event::AlertResponse { action, .. } => vec![count(RESPONSES).by("Action", action.as_str())],
        Event::AccountLimitsChanged { aspect, detail, .. } => match aspect.as_str() {
            "quality" if detail["event"] == "FLAGGED" => vec![count(NUMBER_FLAGGED)],
            "standing"
                if detail["restrictions"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty()) =>
            {
                vec![count(ACCOUNT_RESTRICTED)]
            }
            _ => vec![],
        },
        Event::TemplateStatusChanged { .. } => vec![],
    }
}

/// One event's metrics as an EMF entry.
struct Line<'a> {
    function: &'a str,
    at: SystemTime,
    data: Vec<Datum>,
}

impl Entry for Line<'_> {
    fn write<'a>(&'a self, writer: &mut impl EntryWriter<'a>) {
        writer.timestamp(self.at);
        // Metrics with different labels go on lines of their own.
        writer.config(const { &AllowSplitEntries::new() });
        writer.value(FUNCTION_DIMENSION, self.function);
        for d in &self.data {
            let labels: Vec<(&'static str, String)> = d.label.iter().cloned().collect();
            match d.value {
                Value::Count(n) => {
                    writer.value(d.name, &WithDimension::new_with_dimensions(n, labels))
                }
                Value::Seconds(s) => writer.value(
                    d.name,
                    &WithDimension::new_with_dimensions(AsSeconds::from(s), labels),
                ),
                Value::Millis(ms) => writer.value(
                    d.name,
                    &WithDimension::new_with_dimensions(AsMilliseconds::from(ms), labels),
                ),
                Value::Amount(a) => {
                    writer.value(d.name, &WithDimension::new_with_dimensions(a, labels))
                }
            }
        }
    }
}

impl Metrics {
    /// Metrics in CloudWatch namespace `namespace` (`METRICS_NAMESPACE`;
    /// `None` writes nothing), from the function `function`, stamped by
    /// `clock`.
    pub fn new(namespace: Option<String>, function: impl Into<String>, clock: Clock) -> Metrics {
        Metrics {
            namespace,
            function: function.into(),
            clock,
            sink: Sink::stdout(),
        }
    }

    /// The same metrics, written to `sink` instead of stdout.
    pub fn writing_to(mut self, sink: Sink) -> Metrics {
        self.sink = sink;
        self
    }

    /// The same metrics stamped by `clock` (the local stack's clock).
    pub fn with_clock(mut self, clock: Clock) -> Metrics {
        self.clock = clock;
        self
    }

    /// Writes the metrics of `events`, published just now, to the sink
    /// (stdout). A line that cannot be written is logged and dropped:
    /// metrics never fail a publish.
    pub fn emit(&self, events: &[Event]) {
        self.emit_with(|out| self.write(events, out));
    }

    /// Counts Meta's error `code`, which a send call just got back
    /// ([`META_ERRORS`]; the module doc says why here and not from an
    /// event).
    pub fn meta_error(&self, code: i64) {
        self.emit_with(|out| {
            self.write_lines(
                std::iter::once(vec![count(META_ERRORS).by("Code", code.to_string())]),
                out,
            )
        });
    }

    /// Runs `write` on the sink under its lock, then flushes; a failure is
    /// logged and dropped.
    fn emit_with(&self, write: impl FnOnce(&mut dyn io::Write) -> Result<(), IoStreamError>) {
        if self.namespace.is_none() {
            return;
        }
        let mut guard = self.sink.0.lock().unwrap_or_else(|p| p.into_inner());
        let out = &mut *guard;
        let written = write(out).and_then(|()| out.flush().map_err(IoStreamError::Io));
        if let Err(e) = written {
            warn!(error = %e, "metrics line not written");
        }
    }

    /// Writes the metrics of `events` to `out`, one or more EMF lines per
    /// event that counts.
    pub fn write(&self, events: &[Event], out: &mut dyn io::Write) -> Result<(), IoStreamError> {
        let card = RateCard::builtin().ok();
        let now = self.clock.now();
        self.write_lines(events.iter().map(|e| data(e, now, card)), out)
    }

    /// Writes each non-empty list of data as one entry, stamped now.
    fn write_lines(
        &self,
        entries: impl Iterator<Item = Vec<Datum>>,
        mut out: &mut dyn io::Write,
    ) -> Result<(), IoStreamError> {
        let Some(namespace) = &self.namespace else {
            return Ok(());
        };
        let now_ms = self.clock.now_ms();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let mut format = Emf::builder(
            namespace.clone(),
            vec![vec![FUNCTION_DIMENSION.to_string()]],
        )
        .build();
        for data in entries.filter(|d| !d.is_empty()) {
            format.format(
                &Line {
                    function: &self.function,
                    at,
                    data,
                },
                &mut out,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;
    use std::sync::Arc;

    use serde_json::{json, Value as Json};

    use super::*;
    use crate::events::{EventCsm, EventError, EventPricing, EventTime, Fallback};

    const NOW_MS: i64 = 1_790_000_000_000;

    fn metrics() -> Metrics {
        let offset = NOW_MS - Clock::system().now_ms();
        Metrics::new(
            Some("fincelo-whatsapp/test".into()),
            "webhook-fn",
            Clock::shifted(Arc::new(AtomicI64::new(offset))),
        )
    }

    /// The EMF lines written for `events`, parsed.
    fn lines(events: &[Event]) -> Vec<Json> {
        let mut out = Vec::new();
        metrics().write(events, &mut out).expect("written");
        parsed(&String::from_utf8(out).expect("utf-8"))
    }

    /// Each EMF line of `text`, parsed.
    fn parsed(text: &str) -> Vec<Json> {
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect()
    }

    /// The value of `name` across the lines, with the line's dimensions.
    fn find<'a>(lines: &'a [Json], name: &str) -> Vec<&'a Json> {
        lines.iter().filter(|l| !l[name].is_null()).collect()
    }

    /// The unit `line` declares for the metric `name`.
    fn unit_of<'a>(line: &'a Json, name: &str) -> &'a Json {
        &line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["Name"] == name)
            .expect("declared")["Unit"]
    }

    fn sent(mode: SendMode) -> Event {
        let fallback = (mode == SendMode::Template).then_some(Fallback::WindowClosed);
        sent_as(mode, fallback, None)
    }

    /// A sent outcome; `times`: queued and sent, unix ms.
    fn sent_as(mode: SendMode, fallback: Option<Fallback>, times: Option<(i64, i64)>) -> Event {
        Event::SendOutcome {
            tenant_id: "acme".into(),
            idempotency_key: "k".into(),
            outcome: Outcome::Sent,
            mode: Some(mode),
            template: None,
            wamid: Some("wamid.A".into()),
            reason: None,
            queued_at: times.map(|(q, _)| EventTime::from_unix_ms(q)),
            sent_at: times.map(|(_, s)| EventTime::from_unix_ms(s)),
            meta_code: None,
            fallback,
        }
    }

    fn parked(meta_code: Option<i64>) -> Event {
        Event::SendOutcome {
            tenant_id: "acme".into(),
            idempotency_key: "k".into(),
            outcome: Outcome::Parked,
            mode: None,
            template: None,
            wamid: None,
            reason: Some("meta_permanent".into()),
            queued_at: None,
            sent_at: None,
            meta_code,
            fallback: None,
        }
    }

    fn status(status: &str, ts: i64, codes: &[i64], pricing: Option<EventPricing>) -> Event {
        Event::MessageStatusChanged {
            tenant_id: "acme".into(),
            wamid: "wamid.A".into(),
            idempotency_key: None,
            status: status.into(),
            timestamp: ts,
            errors: codes
                .iter()
                .map(|c| EventError {
                    code: *c,
                    title: None,
                })
                .collect(),
            recipient: Some(EventCsm {
                wa_id: Some("919876543210".into()),
                ..EventCsm::default()
            }),
            pricing,
        }
    }

    #[test]
    fn a_free_form_send_is_a_window_hit_and_a_template_send_a_fallback() {
        let got = lines(&[sent(SendMode::FreeForm), sent(SendMode::Template)]);
        let mut by_mode = find(&got, ALERTS_SENT);
        by_mode.sort_by_key(|l| l["Mode"].to_string());
        assert_eq!(by_mode.len(), 2, "{got:?}");
        assert_eq!(by_mode[0]["Mode"], "free_form");
        assert_eq!(by_mode[0][ALERTS_SENT], 1);
        assert_eq!(by_mode[1]["Mode"], "template");
        assert_eq!(find(&got, WINDOW_HITS)[0][WINDOW_HITS], 1);
        assert_eq!(find(&got, TEMPLATE_FALLBACKS)[0][TEMPLATE_FALLBACKS], 1);
        for l in &got {
            let directive = &l["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "fincelo-whatsapp/test");
            assert_eq!(l["Function"], "webhook-fn");
            assert!(
                directive["Dimensions"]
                    .as_array()
                    .expect("dimension sets")
                    .iter()
                    .all(|set| set[0] == FUNCTION_DIMENSION),
                "{l}"
            );
            assert_eq!(l["_aws"]["Timestamp"], NOW_MS, "the injected clock");
        }
        assert!(
            lines(&[parked(None)]).is_empty(),
            "a parked alert is not sent"
        );
        let mut out = Vec::new();
        Metrics::new(None, "local", Clock::system())
            .write(&[sent(SendMode::Template)], &mut out)
            .expect("written");
        assert!(out.is_empty(), "no namespace, no metrics");
    }

    /// A template an alert with no text asked for is sent, not a fallback;
    /// one sent instead of text is, whatever the reason.
    #[test]
    fn only_a_template_sent_instead_of_text_is_a_fallback() {
        let got = lines(&[
            sent_as(SendMode::Template, None, None),
            sent_as(SendMode::Template, Some(Fallback::Meta131047), None),
            sent_as(SendMode::FreeForm, None, None),
        ]);
        assert_eq!(find(&got, ALERTS_SENT).len(), 3, "{got:?}");
        assert_eq!(find(&got, TEMPLATE_FALLBACKS).len(), 1, "{got:?}");
        assert_eq!(find(&got, WINDOW_HITS).len(), 1, "{got:?}");
    }

    /// A sent outcome with both times gives its enqueue-to-sent latency in
    /// milliseconds; one repeated from the ledger (no queue time) gives none.
    #[test]
    fn a_sent_outcome_gives_its_enqueue_to_sent_latency() {
        let queued = NOW_MS - 1_250;
        let got = lines(&[sent_as(SendMode::FreeForm, None, Some((queued, NOW_MS)))]);
        let latency = find(&got, SEND_LATENCY);
        assert_eq!(latency.len(), 1, "{got:?}");
        assert_eq!(latency[0][SEND_LATENCY], 1_250);
        assert_eq!(unit_of(latency[0], SEND_LATENCY), "Milliseconds");
        let mut repeated = sent_as(SendMode::FreeForm, None, Some((queued, NOW_MS)));
        if let Event::SendOutcome { queued_at, .. } = &mut repeated {
            *queued_at = None;
        }
        assert!(find(&lines(&[repeated]), SEND_LATENCY).is_empty());
    }

    /// A parked (or ambiguous) outcome's Meta code is not counted again:
    /// the sender counted it as the answer arrived ([`Metrics::meta_error`]),
    /// or the webhook with the failed status.
    #[test]
    fn a_parked_outcome_does_not_count_its_code_again() {
        let got = lines(&[parked(Some(131008)), parked(None)]);
        assert!(find(&got, META_ERRORS).is_empty(), "{got:?}");
    }

    /// What the sender counts as a send call's answer arrives: one line,
    /// `MetaErrors` 1 by `Code`, from the function.
    #[test]
    fn a_send_calls_meta_error_is_one_line_by_code() {
        let buffer = crate::testing::SharedBuffer::default();
        metrics()
            .writing_to(Sink::to(buffer.clone()))
            .meta_error(130429);
        let written = buffer.text();
        let got = parsed(&written);
        assert_eq!(got.len(), 1, "{written}");
        assert_eq!(got[0][META_ERRORS], 1);
        assert_eq!(got[0]["Code"], "130429");
        assert_eq!(got[0][FUNCTION_DIMENSION], "webhook-fn");
        assert_eq!(
            got[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[FUNCTION_DIMENSION, "Code"]]),
            "{written}"
        );
    }

    #[test]
    fn a_failed_status_counts_its_meta_codes_and_its_intake_lag() {
        let ts = NOW_MS / 1000 - 42;
        let got = lines(&[status("failed", ts, &[131026, 131026, 131049], None)]);
        assert_eq!(find(&got, MESSAGES_FAILED)[0][MESSAGES_FAILED], 1);
        let lag = find(&got, WEBHOOK_INTAKE_LAG);
        assert_eq!(lag[0][WEBHOOK_INTAKE_LAG], 42);
        assert_eq!(unit_of(lag[0], WEBHOOK_INTAKE_LAG), "Seconds");
        let mut codes: Vec<(&Json, &Json)> = find(&got, META_ERRORS)
            .into_iter()
            .map(|l| (&l["Code"], &l[META_ERRORS]))
            .collect();
        codes.sort_by_key(|(c, _)| c.to_string());
        assert_eq!(
            codes,
            [(&json!("131026"), &json!(1)), (&json!("131049"), &json!(1))],
            "one per distinct code"
        );
    }

    #[test]
    fn a_delivered_billable_message_adds_its_estimated_cost() {
        let card = RateCard::builtin().expect("built-in card");
        let price = costs::amount(card.price("utility", "91").expect("India utility"));
        let pricing = EventPricing {
            billable: true,
            pricing_model: Some("PMP".into()),
            category: Some("utility".into()),
            kind: Some("regular".into()),
        };
        let free = EventPricing {
            kind: Some("free_customer_service".into()),
            ..pricing.clone()
        };
        let ts = NOW_MS / 1000;
        let got = lines(&[status("delivered", ts, &[], Some(pricing.clone()))]);
        assert_eq!(find(&got, MESSAGES_DELIVERED)[0][MESSAGES_DELIVERED], 1);
        assert_eq!(find(&got, ESTIMATED_COST)[0][ESTIMATED_COST], json!(price));
        let read = lines(&[status("read", ts, &[], Some(pricing))]);
        assert!(
            find(&read, ESTIMATED_COST).is_empty(),
            "counted once, when delivered"
        );
        let got = lines(&[status("delivered", ts, &[], Some(free))]);
        assert!(
            find(&got, ESTIMATED_COST).is_empty(),
            "a free message costs nothing"
        );
    }

    #[test]
    fn responses_a_flagged_number_and_a_restriction_are_counted() {
        let who = EventCsm::default();
        let response = Event::AlertResponse {
            tenant_id: "acme".into(),
            idempotency_key: "k".into(),
            wamid: None,
            csm: who,
            action: "snooze".into(),
            snooze_until: None,
            text: None,
            message_id: "wamid.R".into(),
            at: "2026-11-30T00:00:00Z".into(),
        };
        let account = |aspect: &str, detail: Json| Event::AccountLimitsChanged {
            tenant_id: "acme".into(),
            waba_id: "1".into(),
            aspect: aspect.into(),
            field: "x".into(),
            at: "2026-11-30T00:00:00Z".into(),
            detail,
        };
        let got = lines(&[
            response,
            account("quality", json!({"event": "FLAGGED"})),
            account("quality", json!({"event": "UNFLAGGED"})),
            account(
                "standing",
                json!({"event": "ACCOUNT_RESTRICTION", "restrictions": [{"type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]}),
            ),
            account(
                "standing",
                json!({"event": "ACCOUNT_RESTRICTION", "restrictions": []}),
            ),
        ]);
        let r = find(&got, RESPONSES);
        assert_eq!((r.len(), &r[0]["Action"]), (1, &json!("snooze")));
        assert_eq!(find(&got, NUMBER_FLAGGED).len(), 1, "{got:?}");
        assert_eq!(find(&got, ACCOUNT_RESTRICTED).len(), 1, "{got:?}");
    }
}
