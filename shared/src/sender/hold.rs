//! The tenant's send hold: Meta refuses a send because the business cannot
//! pay (131042), so every other send of the tenant would fail the same way.
//!
//! - **Start.** The first 131042 (in a send's answer, or in a `failed`
//!   status the webhook handed back) writes the hold ([`crate::store`]'s
//!   `HOLD` item: since when, why, Meta's code and title) and logs it once
//!   at `error` with the message [`HOLD_STARTED`]: `template.yaml`'s
//!   `SendsHeldAlarm` counts that line. The refused alert goes back on the
//!   queue.
//! - **While held.** Before an alert is claimed, the sender reads the hold
//!   (cached for [`HOLD_CACHE_TTL`]). A held tenant's alert is not attempted:
//!   it goes back on the send queue as a fresh message,
//!   `SEND_REQUEUE_DELAY_SECS` later, so no receive counts against
//!   `SEND_MAX_ATTEMPTS` or the queue's redrive, and its key is never
//!   claimed. Once per `PAYMENT_HOLD_PROBE_SECS` one alert, whichever
//!   arrives first, goes through as the *probe* (a conditional write picks
//!   one across every instance).
//! - **End.** Meta accepting the probe is not enough: a 131042 can still
//!   come by webhook. The hold ends when Meta reports the probe `sent` (or
//!   `delivered`, `read`): the next read of the hold finds the probe's
//!   ledger entry `sent` and that status for its wamid, deletes the hold and
//!   logs [`HOLD_ENDED`] at `info`. The held alerts then go out as they come
//!   back from the queue. A probe Meta refuses again is itself held (its
//!   entry back to `retry`), and the next probe waits its interval.
//!
//! The channel status (`GET /admin/tenants/{t}/channel`) shows the hold.

use std::time::Duration;

use tracing::{error, info, warn};

use super::{Attempt, Disposition, Sender, SenderError};
use crate::graph::GraphError;
use crate::ids::{IdempotencyKey, TenantId};
use crate::store::{LedgerState, SendHold};

/// How long an instance trusts the hold it read: a hold started elsewhere
/// reaches it within this time (meanwhile its sends meet 131042 themselves
/// and are held), and so does a hold's end.
pub const HOLD_CACHE_TTL: Duration = Duration::from_secs(10);

/// The hold's machine-readable reason.
pub const PAYMENT_ISSUE: &str = "payment_issue";

/// The `error` line a hold starts with (the alarm's metric filter matches it).
pub const HOLD_STARTED: &str = "sends held: Meta refuses this tenant's messages for a payment issue (131042); fix the payment method in WhatsApp Manager";

/// The `info` line a hold ends with.
pub const HOLD_ENDED: &str = "sends resume: Meta delivered the probe, the payment hold has ended";

impl Sender {
    /// The tenant's hold, as this instance last read it. A hold whose probe
    /// Meta has reported sent is ended here, and reads as none.
    async fn hold(&self, tenant: &TenantId) -> Result<Option<SendHold>, SenderError> {
        self.holds
            .get_or_load(tenant, || async {
                let hold = match self.app.store.get_hold(tenant).await? {
                    Some(h) if self.probe_delivered(tenant, &h).await? => {
                        self.end_hold(tenant, &h).await?;
                        None
                    }
                    other => other,
                };
                Ok::<_, SenderError>((hold, HOLD_CACHE_TTL))
            })
            .await
    }

    /// Before an alert is claimed: `None` lets it go on (no hold, or it is
    /// the probe); `Some` is what to answer for a held alert, which has been
    /// put back on the queue, not attempted.
    pub(super) async fn hold_gate(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        body: &str,
    ) -> Result<Option<Disposition>, SenderError> {
        let Some(hold) = self.hold(tenant).await? else {
            return Ok(None);
        };
        let now = self.app.clock.now();
        if hold.next_probe_at <= now {
            let next = now + self.probe_interval();
            if self
                .app
                .store
                .take_probe(tenant, hold.since, key, now, next)
                .await?
            {
                info!(
                    reason = %hold.reason,
                    since = %utc(hold.since),
                    "the tenant's sends are held; this alert goes through as the probe"
                );
                let taken = SendHold {
                    next_probe_at: next,
                    probes: hold.probes + 1,
                    probe_key: Some(key.to_string()),
                    ..hold
                };
                self.holds.put(tenant.clone(), Some(taken), HOLD_CACHE_TTL);
                return Ok(None);
            }
            // Another record or instance took it (or the hold ended). Read
            // it afresh, unless this instance's winner has updated it.
            if self
                .holds
                .get(tenant)
                .flatten()
                .is_some_and(|h| h.next_probe_at <= now)
            {
                self.holds.remove(tenant);
            }
        }
        let delay = self.requeue_delay();
        self.app.queues.enqueue_send_delayed(body, delay).await?;
        info!(
            reason = %hold.reason,
            since = %utc(hold.since),
            delay,
            "the tenant's sends are held; alert put back on the queue, not attempted"
        );
        Ok(Some(Disposition::Done))
    }

    /// Meta refused the attempt with 131042: the tenant is held (from now,
    /// unless it was already), and the alert waits on the queue for the
    /// hold to end, its claim released without a counted attempt.
    pub(super) async fn hold_for_payment(
        &self,
        a: &Attempt<'_>,
        err: &GraphError,
        detail: &str,
    ) -> Result<Disposition, SenderError> {
        let req = a.req;
        let tenant = &req.tenant_id;
        let now = self.app.clock.now();
        let hold = SendHold {
            reason: PAYMENT_ISSUE.to_string(),
            meta_code: err.code().unwrap_or(131042),
            meta_title: super::meta_title(err),
            detail: detail.to_string(),
            since: now,
            next_probe_at: now + self.probe_interval(),
            probes: 0,
            probe_key: None,
        };
        if self.app.store.start_hold(tenant, &hold).await? {
            error!(
                reason = PAYMENT_ISSUE,
                meta_code = hold.meta_code,
                meta_title = hold.meta_title.as_deref(),
                since = %utc(now),
                detail,
                "{HOLD_STARTED}"
            );
            self.holds.put(tenant.clone(), Some(hold), HOLD_CACHE_TTL);
        } else {
            self.holds.remove(tenant);
        }
        // The ledger first: a crash before the re-queue leaves the key in
        // `retry`, which its redelivery (or the webhook's retry) picks up.
        self.app
            .store
            .record_retry(
                tenant,
                &req.idempotency_key,
                a.token,
                &format!("held: {detail}"),
                now,
            )
            .await?;
        let delay = self.requeue_delay();
        self.app.queues.enqueue_send_delayed(a.body, delay).await?;
        warn!(delay, "Meta refused the alert for the tenant's payment issue (131042); it waits on the queue for the hold to end");
        Ok(Disposition::Done)
    }

    /// Whether Meta has reported the hold's probe as sent (or further): the
    /// probe's ledger entry is `sent`, and its wamid has such a status. An
    /// earlier, refused send of the same alert does not count: its entry
    /// is `retry` until the probe's send is recorded.
    async fn probe_delivered(
        &self,
        tenant: &TenantId,
        hold: &SendHold,
    ) -> Result<bool, SenderError> {
        let Some(key) = hold
            .probe_key
            .as_deref()
            .and_then(|k| IdempotencyKey::parse(k).ok())
        else {
            return Ok(false);
        };
        let Some(entry) = self.app.store.get_ledger(tenant, &key).await? else {
            return Ok(false);
        };
        let (LedgerState::Sent, Some(wamid)) = (entry.state, entry.wamid.as_deref()) else {
            return Ok(false);
        };
        let status = self.app.store.get_message_status(tenant, wamid).await?;
        Ok(status.is_some_and(|s| matches!(s.status.as_str(), "sent" | "delivered" | "read")))
    }

    async fn end_hold(&self, tenant: &TenantId, hold: &SendHold) -> Result<(), SenderError> {
        if let Some(ended) = self.app.store.end_hold(tenant, hold.since).await? {
            let now = self.app.clock.now();
            info!(
                reason = %ended.reason,
                since = %utc(ended.since),
                held_for_secs = now - ended.since,
                probes = ended.probes,
                "{HOLD_ENDED}"
            );
        }
        Ok(())
    }

    fn probe_interval(&self) -> i64 {
        i64::try_from(self.app.config.sender.hold_probe_interval.as_secs()).unwrap_or(900)
    }

    pub(super) fn requeue_delay(&self) -> i32 {
        i32::try_from(self.app.config.sender.requeue_delay.as_secs()).unwrap_or(900)
    }
}

/// Unix seconds as an ISO-8601 UTC time, for people reading the logs.
pub(super) fn utc(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SharedBuffer;

    /// `template.yaml`'s `SendsHeldMetricFilter` counts the line a hold
    /// starts with, as the functions' own JSON subscriber writes it: level
    /// and message at the top of the object.
    #[test]
    fn the_alarms_filter_matches_the_line_a_hold_starts_with() {
        let template = include_str!("../../../template.yaml");
        let pattern = template
            .lines()
            .find(|l| l.contains("FilterPattern") && l.contains("sends held"))
            .expect("the metric filter in template.yaml");
        assert!(pattern.contains(r#"$.level = "ERROR""#), "{pattern}");
        let prefix = pattern
            .split(r#"$.message = ""#)
            .nth(1)
            .and_then(|rest| rest.split('*').next())
            .expect("a message prefix");
        assert!(HOLD_STARTED.starts_with(prefix), "{prefix:?}");

        let lines = SharedBuffer::default();
        let writer = lines.clone();
        let subscriber = crate::startup::json_subscriber("info", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            error!(reason = PAYMENT_ISSUE, meta_code = 131042, "{HOLD_STARTED}");
        });
        let text = lines.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "ERROR", "{line}");
        assert!(
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix)),
            "{line}"
        );
    }

    #[test]
    fn times_read_as_iso_8601_utc() {
        assert_eq!(utc(1_796_083_200), "2026-12-01T00:00:00Z");
    }
}
