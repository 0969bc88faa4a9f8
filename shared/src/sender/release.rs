//! The release pass: alerts held for their template, sent, parked or kept.
//!
//! An alert whose template Meta has not approved yet is held in DynamoDB
//! ([`crate::store::WaitingAlert`]), not on the send queue, so a wait of
//! 24 to 72 hours costs no receives and cannot be redriven to the DLQ.
//! Something must then wake it. A `release` message on the send queue asks
//! for one pass over a tenant's waiting alerts; it is put there:
//!
//! - by the webhook, when a template's status changes to approved, rejected
//!   or disabled (and again on Meta's retry of that webhook);
//! - by the template function's reconcile, when it repairs a status whose
//!   webhook was missed;
//! - by the webhook, when a CSM with waiting alerts writes (their window
//!   lets the alerts go as free-form text now);
//! - by the `sweep` that an EventBridge schedule puts on the queue every
//!   5 minutes: it asks for a pass for every tenant with waiting alerts, so
//!   deadlines are kept and a lost nudge costs minutes, not an alert.
//!
//! A pass reads the waiting alerts in the order upstream enqueued them and
//! decides each one ([`decide`]): send it (template approved, or an open
//! window and free-form text), park it (template refused for good, or its
//! `deliver_by` / wait limit passed) or keep it. An alert to act on is
//! claimed from `waiting` (a conditional write, so it is sent at most once
//! however many passes run) and goes through the same path as an alert from
//! the queue, ten at a time, within the per-number rate. What is not
//! finished there (a transient failure, a send in doubt, the pair rate) is
//! handed back to the send queue, whose retries and ambiguity rules take
//! over. One pass runs per tenant at a time (a lease in DynamoDB), so the
//! order holds; a release asked for meanwhile makes the holder look again.
//!
//! Outcome events are published per chunk, before the chunk's waiting items
//! are removed: an item whose alert is finished but whose event was not
//! published stays, and the next pass publishes the outcome again from the
//! ledger (at least once, as everywhere in the sender).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{join_all, FutureExt};
use tracing::{info, warn, Instrument};

use super::message::{Control, ReleaseWhy};
use super::outcome::Reported;
use super::request::SendRequest;
use super::slots::SendSlots;
use super::{Arrival, Attempt, BatchReads, Disposition, InBatch, Sender, SenderError, Windows};
use crate::ids::TenantId;
use crate::queues::ParkReason;
use crate::store::{ClaimOutcome, TemplateRecord, WaitingAlert};
use crate::templates::status::TemplateStatus;
use crate::tenants::Tenant;

/// How long a pass holds the tenant's release lease: longer than the
/// sender's timeout (30 s), so a pass is never overtaken, and short enough
/// that a pass killed by that timeout delays the next one by a minute.
const LEASE_SECS: i64 = 60;
/// Waiting alerts read per query.
const PAGE: i32 = 100;
/// Alerts sent at once, as the queue's batch of ten is.
const CHUNK: usize = 10;
/// A pass starts no new chunk after this long; a continuation takes over,
/// so one pass never runs into the sender's timeout.
const PASS_BUDGET: Duration = Duration::from_secs(15);

/// What to do with one waiting alert now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Send,
    Park(ParkReason),
    Keep,
}

/// Decides a waiting alert from its template's status (and Meta's reason,
/// for a refusal), whether its CSM's window is open, and the time.
pub(super) fn decide(
    w: &WaitingAlert,
    status: &TemplateStatus,
    meta_reason: Option<&str>,
    window_open: bool,
    now: i64,
) -> Decision {
    if *status == TemplateStatus::Approved {
        return Decision::Send;
    }
    if status.is_refused() {
        return Decision::Park(template_rejected(&w.template, status, meta_reason));
    }
    if window_open && w.has_text {
        return Decision::Send;
    }
    if now >= w.deadline {
        return Decision::Park(template_not_approved(&w.template, status));
    }
    Decision::Keep
}

/// Why an alert is parked for a template Meta refused for good, with
/// Meta's rejection reason (`NONE` means Meta gave none).
pub(super) fn template_rejected(
    template: &str,
    status: &TemplateStatus,
    meta_reason: Option<&str>,
) -> ParkReason {
    let why = meta_reason.filter(|r| *r != "NONE");
    ParkReason {
        reason: "template_rejected".into(),
        detail: match why {
            Some(why) => format!("template {template} is {status} at Meta: {why}"),
            None => format!("template {template} is {status} at Meta"),
        },
        meta_code: None,
        meta_title: why.map(str::to_string),
    }
}

/// Why an alert is parked when its wait for the template ends.
pub(super) fn template_not_approved(template: &str, status: &TemplateStatus) -> ParkReason {
    ParkReason {
        reason: "template_not_approved".into(),
        detail: format!("template {template} was still {status} when the alert's deadline passed"),
        meta_code: None,
        meta_title: None,
    }
}

/// What became of one alert a pass acted on.
enum Released {
    /// Finished, or handed to the send queue: its waiting item goes.
    Gone,
    /// Still waiting (the template moved back meanwhile): the item stays.
    Kept,
}

impl Sender {
    /// Runs a release pass for `tenant_id`, unless one is running (which
    /// then looks again before it stops).
    pub(super) async fn release(
        &self,
        tenant_id: &TenantId,
        why: ReleaseWhy,
    ) -> Result<Disposition, SenderError> {
        let span = tracing::Span::current();
        span.record("tenant", tenant_id.as_str());
        let Some(tenant) = self.app.directory.tenant(tenant_id).await? else {
            info!("release for a tenant that is not configured; nothing to do");
            return Ok(Disposition::Done);
        };
        let store = &self.app.store;
        let holder = uuid::Uuid::new_v4().to_string();
        if !store
            .acquire_release(tenant_id, &holder, self.app.clock.now(), LEASE_SECS)
            .await?
        {
            info!(
                why = why.as_str(),
                "a release pass is running for the tenant; it will look again"
            );
            return Ok(Disposition::Done);
        }
        let started = Instant::now();
        let pass = self
            .release_pass(&tenant, started)
            .instrument(tracing::info_span!("release", why = why.as_str()))
            .await;
        let again = match store.finish_release(tenant_id, &holder).await {
            Ok(again) => again,
            Err(e) => {
                warn!(error = %e, "could not give the release lease back; it runs out by itself");
                false
            }
        };
        match pass {
            Err(e) => Err(e),
            Ok(complete) if !complete || again => {
                // Out of budget, or asked to look again: a fresh message, so
                // a long release never counts as failed receives.
                self.app
                    .queues
                    .enqueue_send(
                        &Control::release(tenant_id.clone(), ReleaseWhy::Continuation).to_json(),
                    )
                    .await?;
                Ok(Disposition::Done)
            }
            Ok(_) => Ok(Disposition::Done),
        }
    }

    /// One pass over the tenant's waiting alerts. `Ok(false)`: the budget
    /// ran out before the end.
    async fn release_pass(&self, tenant: &Tenant, started: Instant) -> Result<bool, SenderError> {
        let t = &tenant.tenant_id;
        let store = &self.app.store;
        let templates: HashMap<(String, String), TemplateRecord> = store
            .list_templates(t)
            .await?
            .into_iter()
            .map(|r| ((r.name.clone(), r.language.clone()), r))
            .collect();
        // The send path reads template statuses from a short cache; what
        // this pass decides on is fresher, so the cache learns it (an alert
        // released for an approval must not be held again by a stale entry).
        for ((name, language), record) in &templates {
            self.remember_template_status(
                t,
                name,
                language,
                TemplateStatus::from_meta(Some(&record.status)),
            );
        }
        let margin = self.app.config.sender.window_margin.as_secs() as i64;
        let (mut after, mut sent, mut parked, mut kept) = (None::<String>, 0, 0, 0);
        loop {
            let page = store.list_waiting(t, after.as_deref(), PAGE).await?;
            let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            let Some(last) = page.last() else { break };
            after = Some(last.sk.clone());
            let with_text: Vec<_> = page
                .iter()
                .filter(|w| w.has_text)
                .map(|w| (t.clone(), w.who.clone()))
                .collect();
            let windows: Windows = if with_text.is_empty() {
                HashMap::new()
            } else {
                store.get_windows(&with_text).await?
            };
            let now = self.app.clock.now();
            let mut act = Vec::new();
            for w in page {
                let record = templates.get(&(w.template.clone(), w.language.clone()));
                let status = TemplateStatus::from_meta(record.map(|r| r.status.as_str()));
                let open = windows
                    .get(&(t.clone(), w.who.clone()))
                    .copied()
                    .flatten()
                    .is_some_and(|win| win.is_open(now, margin));
                let reason = record.and_then(|r| r.reason.as_deref());
                match decide(&w, &status, reason, open, now) {
                    Decision::Keep => kept += 1,
                    Decision::Park(r) => {
                        parked += 1;
                        act.push((w, Some(r)));
                    }
                    Decision::Send => {
                        sent += 1;
                        act.push((w, None));
                    }
                }
            }
            let reads = Arc::new(BatchReads {
                reached: HashMap::new(),
                windows,
            });
            for chunk in act.chunks(CHUNK) {
                if started.elapsed() > PASS_BUDGET {
                    info!(
                        sent,
                        parked, kept, "release pass out of budget; continuing in a new pass"
                    );
                    return Ok(false);
                }
                self.release_chunk(tenant, chunk, reads.clone()).await?;
            }
            if !full {
                break;
            }
        }
        info!(sent, parked, kept, "release pass done");
        Ok(true)
    }

    /// Acts on up to ten waiting alerts at once, publishes their outcome
    /// events, then removes the items of the alerts that left waiting.
    async fn release_chunk(
        &self,
        tenant: &Tenant,
        chunk: &[(WaitingAlert, Option<ParkReason>)],
        reads: Arc<BatchReads>,
    ) -> Result<(), SenderError> {
        let slots = SendSlots::for_records(
            chunk
                .iter()
                .filter(|(_, park)| park.is_none())
                .map(|_| &tenant.tenant_id),
            self.claims.clone(),
        );
        let cx = InBatch {
            reads: futures::future::ready(reads).boxed().shared(),
            slots: &slots,
            events: Mutex::default(),
        };
        let results = join_all(chunk.iter().map(|(w, park)| {
            let span = tracing::info_span!("send", idempotency_key = w.key.as_str());
            self.release_one(&cx, tenant, w, park.clone())
                .instrument(span)
        }))
        .await;
        self.app.queues.publish(&cx.into_events()).await?;
        let mut first_error = None;
        for ((w, _), result) in chunk.iter().zip(results) {
            match result {
                Ok(Released::Gone) => {
                    self.app
                        .store
                        .delete_waiting(&tenant.tenant_id, &w.sk)
                        .await?
                }
                Ok(Released::Kept) => {}
                Err(e) => {
                    warn!(idempotency_key = %w.key, error = %e, "could not release a waiting alert; the next pass tries again");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Claims one waiting alert and sends or parks it.
    async fn release_one(
        &self,
        cx: &InBatch<'_>,
        tenant: &Tenant,
        w: &WaitingAlert,
        park: Option<ParkReason>,
    ) -> Result<Released, SenderError> {
        let t = &tenant.tenant_id;
        let store = &self.app.store;
        let queues = &self.app.queues;
        let token = uuid::Uuid::new_v4().to_string();
        let now = self.app.clock.now();
        let lease = self.app.config.sender.claim_lease.as_secs() as i64;
        let entry = match store.claim_waiting(t, &w.key, &token, now, lease).await? {
            ClaimOutcome::Claimed(entry) => entry,
            ClaimOutcome::Existing(entry) if entry.state.is_final() => {
                // Finished by another path, or by a pass whose publish
                // failed: its outcome again, then the item goes.
                cx.repeat_outcome_for(t, &w.key, &entry);
                return Ok(Released::Gone);
            }
            ClaimOutcome::Existing(entry) => {
                // Claimed or in doubt on the queue's side (a hand-off whose
                // item was left behind): the queue resolves it; one more
                // copy there is harmless, since a claim lets one through.
                if let Some(body) = &entry.request_json {
                    queues.enqueue_send_delayed(body, 60).await?;
                }
                return Ok(Released::Gone);
            }
        };
        let body = entry.request_json.clone().unwrap_or_default();
        let req = match SendRequest::parse(&body) {
            Ok(req) => req,
            Err(invalid) => {
                // Held under older rules than the ones it is read with now.
                let reason = super::park::invalid_reason(&invalid);
                queues.park(&body, &reason).await?;
                store
                    .record_final(
                        t,
                        &w.key,
                        Some(&token),
                        super::park::parked_record(&reason.ledger_text(), reason.meta_code, None),
                        now,
                    )
                    .await?;
                cx.outcome_for(t, &w.key, Reported::parked(&reason));
                return Ok(Released::Gone);
            }
        };
        if let Some(reason) = park {
            self.park(cx, &req, &body, Some(&token), reason).await?;
            return Ok(Released::Gone);
        }
        let to = match self.reach(&req).await? {
            super::Reached::To(to) => to,
            // Flagged, or no longer on the roster, meanwhile: the queue's
            // path parks it with its reason.
            super::Reached::Undeliverable(_) | super::Reached::Not(_) => {
                queues.enqueue_send(&body).await?;
                store
                    .record_retry(t, &w.key, &token, "released; its recipient changed", now)
                    .await?;
                return Ok(Released::Gone);
            }
        };
        match self
            .pacer
            .pair_slot(tenant.phone_number_id.as_str(), &to.pacing_key())
        {
            super::PairSlot::After(wait) => tokio::time::sleep(wait).await,
            super::PairSlot::Defer(wait) => {
                let secs = i32::try_from(wait.as_secs() + 1).unwrap_or(900);
                queues.enqueue_send_delayed(&body, secs).await?;
                store
                    .record_retry(
                        t,
                        &w.key,
                        &token,
                        "released; paced by Meta's pair rate",
                        now,
                    )
                    .await?;
                return Ok(Released::Gone);
            }
        }
        let attempt = Attempt {
            tenant,
            req: &req,
            to: &to,
            body: &body,
            token: &token,
            entry: &entry,
            arrival: Arrival {
                receive_count: 1,
                enqueued_ms: w.enqueued_ms,
            },
        };
        match self.send(cx, &attempt).await? {
            Disposition::Done => Ok(Released::Gone),
            Disposition::Held => Ok(Released::Kept),
            Disposition::RetryAfter(secs) => {
                queues.enqueue_send_delayed(&body, secs.max(1)).await?;
                Ok(Released::Gone)
            }
        }
    }

    /// The scheduled sweep: a release for every tenant with waiting alerts.
    pub(super) async fn sweep(&self) -> Result<Disposition, SenderError> {
        let store = &self.app.store;
        let tenants = store.list_tenant_ids().await?;
        let mut nudged = 0;
        for t in &tenants {
            if store.list_waiting(t, None, 1).await?.is_empty() {
                continue;
            }
            self.app
                .queues
                .enqueue_send(&Control::release(t.clone(), ReleaseWhy::Sweep).to_json())
                .await?;
            nudged += 1;
        }
        info!(
            tenants = tenants.len(),
            nudged, "sweep: a release pass asked for every tenant with waiting alerts"
        );
        Ok(Disposition::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdempotencyKey;
    use crate::phone::E164;

    fn waiting(has_text: bool, deadline: i64) -> WaitingAlert {
        WaitingAlert {
            sk: "W#1#k".into(),
            key: IdempotencyKey::parse("k").expect("key"),
            template: "fincelo_usage_risk".into(),
            language: "en".into(),
            who: crate::identity::Identity::Number(E164::parse("+919876543210").expect("e164")),
            has_text,
            deadline,
            enqueued_ms: 1,
        }
    }

    fn status(s: &str) -> TemplateStatus {
        TemplateStatus::from_meta(Some(s))
    }

    #[test]
    fn an_approved_template_sends_even_past_the_deadline() {
        assert_eq!(
            decide(&waiting(false, 100), &status("APPROVED"), None, false, 500),
            Decision::Send
        );
    }

    #[test]
    fn a_refused_template_parks_with_metas_reason() {
        for s in ["REJECTED", "DISABLED"] {
            match decide(
                &waiting(true, 1_000),
                &status(s),
                Some("INVALID_FORMAT"),
                true,
                10,
            ) {
                Decision::Park(r) => {
                    assert_eq!(r.reason, "template_rejected");
                    assert!(
                        r.detail.contains(s) && r.detail.contains("INVALID_FORMAT"),
                        "{}",
                        r.detail
                    );
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        match decide(
            &waiting(false, 1_000),
            &status("REJECTED"),
            Some("NONE"),
            false,
            10,
        ) {
            Decision::Park(r) => assert!(!r.detail.contains("NONE"), "{}", r.detail),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_open_window_sends_free_form_text_only() {
        assert_eq!(
            decide(&waiting(true, 1_000), &status("PENDING"), None, true, 10),
            Decision::Send
        );
        assert_eq!(
            decide(&waiting(false, 1_000), &status("PENDING"), None, true, 10),
            Decision::Keep
        );
    }

    #[test]
    fn pending_and_paused_keep_until_the_deadline_then_park() {
        for s in [
            status("PENDING"),
            status("PAUSED"),
            TemplateStatus::from_meta(None),
        ] {
            assert_eq!(
                decide(&waiting(true, 1_000), &s, None, false, 999),
                Decision::Keep
            );
            match decide(&waiting(true, 1_000), &s, None, false, 1_000) {
                Decision::Park(r) => assert_eq!(r.reason, "template_not_approved"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }
}
