//! The SQS adapter: the events queue, the send queue and its DLQ.
//!
//! Events go out in batches of ten (SQS's limit) so a webhook body with many
//! statuses costs one request per ten events. Parked send requests go to the
//! DLQ with the reason as message attributes (`reason`, `detail`) and in the
//! body, so an operator sees why without the logs.
//!
//! Everything the service puts on the send queue carries its tenant as
//! `MessageGroupId`, derived here from the body
//! ([`crate::sender::message::fair_group`]) rather than passed by each
//! caller, so no caller can forget it or name the wrong tenant: the queue
//! is an SQS fair queue, and one tenant's flood does not hold back the
//! others.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use serde::Serialize;
use thiserror::Error;

use crate::events::Event;
use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("SQS {op} failed")]
    Sqs {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SQS refused {failed} of a batch of {total} messages")]
    Partial { failed: usize, total: usize },
}

/// Why a send request was parked: machine-readable `reason`, human `detail`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ParkReason {
    /// e.g. `invalid_request`, `meta_permanent`, `undeliverable_number`,
    /// `template_not_approved`, `max_attempts`.
    pub reason: String,
    pub detail: String,
    /// Meta's code, when Meta gave the reason.
    pub meta_code: Option<i64>,
    pub meta_title: Option<String>,
}

impl ParkReason {
    /// How the ledger keeps it (its `last_error`): `reason: detail`, the
    /// form stored items already have.
    pub fn ledger_text(&self) -> String {
        format!("{}: {}", self.reason, self.detail)
    }

    /// The reason and detail of a ledger text [`ParkReason::ledger_text`]
    /// wrote (Meta's code and title are not in it). A text without the
    /// separator is all reason.
    pub fn from_ledger_text(text: &str) -> ParkReason {
        let (reason, detail) = text.split_once(": ").unwrap_or((text, ""));
        ParkReason {
            reason: reason.to_string(),
            detail: detail.to_string(),
            meta_code: None,
            meta_title: None,
        }
    }
}

#[derive(Serialize)]
struct Parked<'a> {
    version: u32,
    parked_reason: &'a ParkReason,
    /// The original request body, as received (it may not even be JSON).
    request: &'a str,
}

/// The three queues. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queues {
    client: Client,
    pub send_queue_url: String,
    pub send_dlq_url: String,
    pub events_queue_url: String,
    /// What every published event counts ([`crate::metrics`]).
    metrics: Metrics,
}

impl Queues {
    pub fn new(
        client: Client,
        send_queue_url: String,
        send_dlq_url: String,
        events_queue_url: String,
        metrics: Metrics,
    ) -> Self {
        Queues {
            client,
            send_queue_url,
            send_dlq_url,
            events_queue_url,
            metrics,
        }
    }

    /// The same queues, their metrics stamped by `clock`.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.metrics = self.metrics.with_clock(clock);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The metrics the queues emit with each publish; the sender also
    /// counts Meta's answers to its calls there ([`Metrics::meta_error`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Publishes events, ten per request, and emits the metrics of each ten
    /// SQS took (the one place events are counted: [`crate::metrics`]).
    pub async fn publish(&self, events: &[Event]) -> Result<(), QueueError> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(e.to_json())
                        .build()
                        .map_err(|e| QueueError::Sqs {
                            op: "SendMessageBatch",
                            source: Box::new(e),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.events_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Sqs {
                    op: "SendMessageBatch",
                    source: Box::new(e),
                })?;
            if !out.failed.is_empty() {
                return Err(QueueError::Partial {
                    failed: out.failed.len(),
                    total: chunk.len(),
                });
            }
            self.metrics.emit(chunk);
        }
        Ok(())
    }

    /// Parks a send request in the DLQ with its reason.
    pub async fn park(&self, request_body: &str, reason: &ParkReason) -> Result<(), QueueError> {
        let body = serde_json::to_string(&Parked {
            version: 1,
            parked_reason: reason,
            request: request_body,
        })
        .unwrap_or_default();
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
        };
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.send_dlq_url)
            .message_body(body);
        for (name, value) in [
            ("reason", reason.reason.as_str()),
            ("detail", reason.detail.as_str()),
        ] {
            let value = if value.is_empty() { "-" } else { value };
            req = req.message_attributes(
                name,
                attr(value).map_err(|e| QueueError::Sqs {
                    op: "SendMessage",
                    source: Box::new(e),
                })?,
            );
        }
        req.send().await.map(|_| ()).map_err(|e| QueueError::Sqs {
            op: "SendMessage",
            source: Box::new(e),
        })
    }

    /// Enqueues a message on the send queue (used for 131047 hand-backs).
    pub async fn enqueue_send(&self, body: &str) -> Result<(), QueueError> {
        self.enqueue_send_delayed(body, 0).await
    }

    /// Enqueues a message that becomes visible after `delay_secs` (at most
    /// SQS's 900). A fresh message starts again at receive count 1, so a
    /// deferral never counts as a failed attempt. Its fair-queue group is
    /// the tenant the body names.
    pub async fn enqueue_send_delayed(
        &self,
        body: &str,
        delay_secs: i32,
    ) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.send_queue_url)
            .message_body(body)
            .message_group_id(crate::sender::message::fair_group(body))
            .delay_seconds(delay_secs.clamp(0, 900))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Sqs {
                op: "SendMessage",
                source: Box::new(e),
            })
    }

    /// Pushes a message's next delivery out (backoff for a transient failure).
    pub async fn delay_retry(&self, receipt_handle: &str, seconds: i32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.send_queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds.clamp(0, 43_200))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Sqs {
                op: "ChangeMessageVisibility",
                source: Box::new(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::ParkReason;

    /// The ledger keeps a park reason as one text; reading it back gives
    /// the reason code the event carries, even when the detail has a colon.
    #[test]
    fn a_park_reason_reads_back_from_its_ledger_text() {
        let parked = ParkReason {
            reason: "invalid_request:no_recipient".into(),
            detail: "the request names nobody: no csm_id, phone or user_id".into(),
            meta_code: Some(131026),
            meta_title: None,
        };
        let text = parked.ledger_text();
        assert_eq!(
            text,
            "invalid_request:no_recipient: the request names nobody: no csm_id, phone or user_id"
        );
        let back = ParkReason::from_ledger_text(&text);
        assert_eq!(back.reason, parked.reason);
        assert_eq!(back.detail, parked.detail);
        assert_eq!(
            ParkReason::from_ledger_text("max_attempts").reason,
            "max_attempts"
        );
    }
}
