//! Meta's answer to a send, concluded: recorded as sent, retried later,
//! recorded as ambiguous, parked with its reason, put off a day for the
//! CSM (131049), or the tenant held (131042). What a failure means is
//! decided in [`super::decide::on_failure`]; this module writes it.

use tracing::{error, info, warn};

use super::attempt::Attempt;
use super::batch::InBatch;
use super::classify::{backoff_secs, classify};
use super::decide::{self, OnFailure, UserLimit};
use super::hold;
use super::outcome::Reported;
use super::{Disposition, Sender, SenderError};
use crate::addressing::learn_from_send;
use crate::events::Fallback;
use crate::graph::{GraphError, SendResponse};
use crate::queues::ParkReason;
use crate::store::{AmbiguousRecord, SendMode, SentRecord};

impl Sender {
    pub(super) async fn conclude(
        &self,
        cx: &InBatch<'_>,
        a: &Attempt<'_>,
        (mode, fallback): (SendMode, Option<Fallback>),
        template: Option<&str>,
        result: Result<SendResponse, GraphError>,
    ) -> Result<Disposition, SenderError> {
        let store = &self.app.store;
        let req = a.req;
        let now = self.app.clock.now();
        let err = match result {
            Ok(resp) => {
                let wamid = resp
                    .messages
                    .first()
                    .map(|m| m.id.clone())
                    .unwrap_or_default();
                let sent_ms = self.app.clock.now_ms();
                if !store
                    .record_sent(
                        &req.tenant_id,
                        &req.idempotency_key,
                        a.token,
                        SentRecord {
                            mode,
                            template,
                            wamid: &wamid,
                            fallback,
                            queued_ms: a.arrival.enqueued_ms,
                            sent_ms,
                        },
                        now,
                    )
                    .await?
                {
                    error!(wamid = %wamid, "sent, but the claim was taken over meanwhile (lease too short?)");
                }
                // The wa_id the number became: the reply from it finds this
                // CSM's window. A failure costs only that (a template next).
                if let Err(e) =
                    learn_from_send(store, &req.tenant_id, a.to, &resp.contacts, now).await
                {
                    warn!(error = %e, "could not record the wa_id Meta reported for the CSM");
                }
                info!(mode = mode.as_str(), template, wamid = %wamid, csm = %a.to.identity, "alert sent");
                let sent = Reported::sent(Some(mode), template.map(str::to_string), wamid, None);
                cx.outcome(req, sent.accepted(a.arrival.enqueued_ms, sent_ms, fallback));
                return Ok(Disposition::Done);
            }
            Err(e) => e,
        };
        let code = err.code();
        let detail = describe(&err);
        let max_attempts = self.app.config.sender.max_attempts;
        match decide::on_failure(classify(&err), a.arrival.receive_count, max_attempts) {
            OnFailure::GiveUp => {
                let reason = ParkReason {
                    reason: "max_attempts".into(),
                    detail: format!(
                        "gave up after {} attempts; last: {detail}",
                        a.arrival.receive_count
                    ),
                    meta_code: code,
                    meta_title: meta_title(&err),
                };
                self.park(cx, req, a.body, Some(a.token), reason).await
            }
            OnFailure::Retry => {
                store
                    .record_retry(&req.tenant_id, &req.idempotency_key, a.token, &detail, now)
                    .await?;
                let hint = match &err {
                    GraphError::Api {
                        retry_after_secs, ..
                    } => *retry_after_secs,
                    _ => None,
                };
                let delay = backoff_secs(a.arrival.receive_count, hint);
                warn!(error = %detail, delay, "transient failure; will retry");
                Ok(Disposition::RetryAfter(delay))
            }
            OnFailure::InDoubt => {
                let delay = self.app.config.sender.ambiguous_delay.as_secs() as i64;
                store
                    .record_ambiguous(
                        &req.tenant_id,
                        &req.idempotency_key,
                        a.token,
                        AmbiguousRecord {
                            error: &detail,
                            decide_at: now + delay,
                            mode,
                            template,
                        },
                        now,
                    )
                    .await?;
                warn!(error = %detail, decide_in = delay, "send outcome unknown; parked as ambiguous until a status arrives or decide_at passes");
                cx.outcome(
                    req,
                    Reported::ambiguous(mode, template.map(str::to_string), detail, code),
                );
                Ok(Disposition::RetryAfter(i32::try_from(delay).unwrap_or(600)))
            }
            OnFailure::Undeliverable => {
                if let Some(phone) = &a.to.phone {
                    store
                        .flag_undeliverable(&req.tenant_id, phone, 131026, now)
                        .await?;
                }
                warn!(csm = %a.to.identity, "Meta says the CSM's number is not a usable WhatsApp account (131026); flagged undeliverable, alert parked");
                let reason = ParkReason {
                    reason: "undeliverable_number".into(),
                    detail,
                    meta_code: code,
                    meta_title: meta_title(&err),
                };
                self.park(cx, req, a.body, Some(a.token), reason).await
            }
            OnFailure::UserLimited => self.wait_for_user(cx, a, &err, detail).await,
            OnFailure::PaymentHold => self.hold_for_payment(a, &err, &detail).await,
            OnFailure::Refused(reason) => {
                let reason = ParkReason {
                    reason: reason.into(),
                    detail,
                    meta_code: code,
                    meta_title: meta_title(&err),
                };
                self.park(cx, req, a.body, Some(a.token), reason).await
            }
        }
    }

    /// Meta's per-user limit (131049): the alert is tried again for this CSM
    /// once, no sooner than Meta's 24 hours, and other CSMs' alerts go on.
    /// It waits in the ledger (`retry` with `retry_at`, which no claim passes
    /// before that time) and on the queue as a fresh copy, whose deliveries
    /// until then each push it out by up to SQS's 12 h; so no receive is a
    /// failed attempt and no burst of retries follows. Parked
    /// (`user_limited`) when the next try would come after `deliver_by`, or
    /// more than [`USER_LIMIT_GIVE_UP_SECS`] after the alert was first taken.
    pub(super) async fn wait_for_user(
        &self,
        cx: &InBatch<'_>,
        a: &Attempt<'_>,
        err: &GraphError,
        detail: String,
    ) -> Result<Disposition, SenderError> {
        let req = a.req;
        let now = self.app.clock.now();
        let retry_at = match decide::user_limit(now, req.deliver_by, a.entry.created_at) {
            UserLimit::TryAgainAt(at) => at,
            UserLimit::GiveUp { after: give_up_at } => {
                let reason = ParkReason {
                    reason: "user_limited".into(),
                    detail: format!(
                        "{detail}; Meta asks to wait 24 h, and the next try would come after {}",
                        hold::utc(give_up_at)
                    ),
                    meta_code: err.code(),
                    meta_title: meta_title(err),
                };
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
        };
        // The ledger first: a crash before the re-queue leaves `retry` with
        // `retry_at`, which the redelivered record (or the webhook's retry)
        // carries on.
        self.app
            .store
            .record_retry_at(
                &req.tenant_id,
                &req.idempotency_key,
                a.token,
                &detail,
                retry_at,
                now,
            )
            .await?;
        self.app
            .queues
            .enqueue_send_delayed(a.body, self.requeue_delay())
            .await?;
        warn!(
            csm = %a.to.identity,
            retry_at = %hold::utc(retry_at),
            "Meta's per-user limit (131049): this CSM's alert is tried again in 24 h; other CSMs are not affected"
        );
        Ok(Disposition::Done)
    }
}

pub(super) fn describe(err: &GraphError) -> String {
    match err {
        GraphError::Api {
            http_status, error, ..
        } => {
            format!(
                "meta:{} (HTTP {http_status}) {}",
                error.code,
                error.details().unwrap_or(&error.message)
            )
        }
        other => other.to_string(),
    }
}

pub(super) fn meta_title(err: &GraphError) -> Option<String> {
    match err {
        GraphError::Api { error, .. } => Some(error.message.clone()),
        _ => None,
    }
}
