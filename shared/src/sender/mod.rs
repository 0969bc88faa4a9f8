//! The sender function: one send request per alert in, at most one WhatsApp
//! message out.
//!
//! For each SQS record (records of a batch run concurrently, each in its own
//! span):
//!
//! 1. Parse the request; an invalid one is parked in the DLQ with its reason.
//! 2. `deliver_by` passed: recorded as expired, not sent.
//! 3. Pace alerts to one CSM against Meta's pair limit ([`pacer`]): a slot
//!    further away than `PAIR_MAX_WAIT_MS` re-queues the request with that
//!    delay, before any claim.
//! 4. Claim the idempotency key (conditional write). A key already sent,
//!    expired or parked is acknowledged without a call to Meta, and its
//!    outcome event is published again (at least once: see below).
//! 5. Inside the CSM's window (checked on read, with a safety margin) and
//!    with `text`: free-form text. Otherwise the template the seed's table
//!    chooses, only if it is APPROVED for the tenant. A template still in
//!    review (or paused, or not submitted) holds the alert: it leaves the
//!    queue and waits in DynamoDB ([`release`]); a rejected or disabled one
//!    parks it.
//! 6. Meta's answer decides (see [`classify`]): recorded as sent; retried
//!    later (the record is reported as a batch item failure and its next
//!    visibility pushed out with backoff); parked in the DLQ with Meta's code;
//!    or, when the answer was lost, recorded as *ambiguous*. Meta's per-user
//!    limit (131049) has the alert tried again a day later, and a payment
//!    issue (131042) holds every send of the tenant ([`hold`]); a refusal
//!    Meta reports by webhook after accepting the send is concluded the same
//!    way ([`refused`]).
//!
//! Before step 3, an alert of a tenant whose sends are held ([`hold`]) is
//! put back on the queue, not attempted.
//!
//! # What a batch shares
//! The records of a batch read their CSMs' windows together, in one
//! BatchGetItem sent as the batch starts, alongside the claims, and publish
//! their outcome events together, in one SendMessageBatch after every record
//! has finished. A message then costs two DynamoDB writes (claim, record)
//! plus a tenth of a read, and a tenth of an SQS request, and the window
//! read adds no round trip of its own to a record's path.
//!
//! The window is read alongside the claim rather than after it: earlier by
//! the claim's round trip and any wait of the pair pacer. A window that
//! closes meanwhile is caught by the safety margin (and by Meta's 131047,
//! which falls back to the template); one that opens meanwhile gets the
//! template, which is always allowed.
//!
//! A record whose event could not be published is reported as a batch item
//! failure (the event is also logged in full). Its redelivery finds the alert
//! finished, sends nothing, and publishes the outcome again from the ledger:
//! outcome events are delivered at least once, never lost to a failed
//! publish.
//!
//! # The ambiguous send
//! A request that may have reached Meta (timeout, a dead instance between
//! claim and record) is never re-sent blindly. Every send carries the
//! idempotency key as `biz_opaque_callback_data`, which Meta echoes in every
//! status webhook; the webhook stores it with the status. The next delivery of
//! the request looks for a status with that key: if one arrived, the alert was
//! sent and is recorded so; if none arrived by `decide_at` (the attempt time +
//! `AMBIGUOUS_SEND_DELAY_SECS`, default 10 minutes; Meta sends `sent` within
//! seconds), it was lost and is sent again. The residual risk is a status
//! webhook delayed longer than that delay: then the CSM gets the alert twice.

pub mod classify;
mod decide;
mod hold;
pub mod message;
mod outcome;
pub mod pacer;
mod refused;
mod release;
pub mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use serde_json::json;
use tracing::{error, info, warn, Instrument};

use crate::addressing::{addressee_from, learn_from_send, Addressee, Unaddressable};
use crate::cache::TtlMap;
use crate::events::Event;
use crate::graph::{GraphError, SendResponse};
use crate::identity::Identity;
use crate::ids::{IdempotencyKey, TenantId};
use crate::queues::ParkReason;
use crate::responses;
use crate::startup::App;
use crate::store::{
    waiting_sk, AmbiguousRecord, ClaimOutcome, FinalRecord, LedgerEntry, LedgerState, Named,
    SendHold, SendMode, SentRecord, StoreError, WaitingAlert, Window,
};
use crate::templates::catalog::{Catalog, TemplateDef};
use crate::templates::status::TemplateStatus;
use crate::tenants::{DirectoryError, Tenant, TokenCallError};
use classify::{backoff_secs, classify, Class};
use decide::{Doubt, Existing, NotReady, OnFailure, UserLimit};
use message::{Control, Handback, QueueMessage};
use outcome::Reported;
use pacer::{Pacer, PairLimit, PairSlot};
use request::{InvalidRequest, SendRequest};

/// Why a stale alert was not sent.
const STALE: &str = "deliver_by passed before sending";
/// How long an approved template is trusted from the cache.
const APPROVED_TTL: Duration = Duration::from_secs(60);
/// How long who a request goes to (the roster's number, an alias, the
/// undeliverable flag) is trusted from the cache.
const ADDRESSEE_TTL: Duration = Duration::from_secs(60);
/// How long "not approved" is trusted: short, so an approval is seen soon.
const UNAPPROVED_TTL: Duration = Duration::from_secs(5);

/// What to do with a record after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it from the queue (sent, duplicate, expired or parked).
    Done,
    /// Delete it from the queue: the alert waits for its template, held in
    /// DynamoDB ([`release`]).
    Held,
    /// Leave it; deliver again after this many seconds.
    RetryAfter(i32),
}

/// Why a record could not be processed at all (infrastructure failures).
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Queue(#[from] crate::queues::QueueError),
}

/// The sender: the app plus its in-process state (pacing, template cache).
pub struct Sender {
    app: App,
    catalog: &'static Catalog,
    pacer: Pacer,
    template_statuses: TtlMap<(TenantId, String, String), TemplateStatus>,
    /// Who a request's recipient is, by the recipient as named.
    addressees: TtlMap<Named, Reached>,
    /// Each tenant's send hold as last read ([`hold`]).
    holds: TtlMap<TenantId, Option<SendHold>>,
}

impl Sender {
    pub fn new(app: App) -> Arc<Self> {
        Self::build(app)
    }

    /// Another instance of the same function, as Lambda runs several: its
    /// own pacer and caches, the same app. The local runner uses one per
    /// poller so that per-instance pacing is what it is in Lambda.
    pub fn sibling(&self) -> Arc<Self> {
        Self::build(self.app.clone())
    }

    fn build(app: App) -> Arc<Self> {
        let cfg = &app.config.sender;
        let pacer = Pacer::new(
            cfg.mps_cap,
            cfg.max_concurrency,
            PairLimit {
                burst: cfg.pair_burst,
                interval: cfg.pair_interval,
                max_wait: cfg.pair_max_wait,
            },
        );
        Arc::new(Sender {
            app,
            catalog: Catalog::builtin(),
            pacer,
            template_statuses: TtlMap::new(),
            addressees: TtlMap::new(),
            holds: TtlMap::new(),
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Handles one SQS batch. Every record gets its own answer: a failure is
    /// reported as a batch item failure, never swallowed, and never fails the
    /// others.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let bodies: Vec<QueueMessage> = event
            .records
            .iter()
            .map(|rec| QueueMessage::read(rec.body.as_deref().unwrap_or("")))
            .collect();
        let windows = self.read_batch(requests_of(&bodies)).boxed().shared();
        let records = join_all(event.records.iter().zip(bodies).map(|(rec, read)| {
            let span = tracing::info_span!(
                "send",
                sqs_message_id = rec.message_id.as_deref().unwrap_or(""),
                tenant = tracing::field::Empty,
                idempotency_key = tracing::field::Empty
            );
            let cx = InBatch {
                reads: windows.clone(),
                events: Mutex::default(),
            };
            async move {
                let result = self.process(rec, read, &cx).await;
                (rec, result, cx.into_events())
            }
            .instrument(span)
        }));
        // The batch's reads are polled first: the records wait for them.
        let (_, results) = futures::join!(windows, records);
        // Every record's outcome events in one publish. If it fails, the
        // records that had one are redelivered, as each was when it
        // published its own.
        let mut events = Vec::new();
        let results: Vec<_> = results
            .into_iter()
            .map(|(rec, result, mut own)| {
                let had_events = !own.is_empty();
                events.append(&mut own);
                (rec, result, had_events)
            })
            .collect();
        let published = match self.app.queues.publish(&events).await {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "could not publish the batch's outcome events; their records will be redelivered");
                // The redelivered records find their alerts finished and
                // publish their outcomes again from the ledger; logged too,
                // for the record that runs out of receives first.
                for event in &events {
                    error!(event = %event.to_json(), "outcome event not published");
                }
                false
            }
        };
        let mut failures = Vec::new();
        for (rec, result, had_events) in results {
            let retry_after = match result {
                _ if had_events && !published => None,
                Ok(Disposition::Done | Disposition::Held) => continue,
                Ok(Disposition::RetryAfter(secs)) => Some(secs),
                Err(e) => {
                    error!(error = %e, source = %std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default(), "record failed; SQS will redeliver it");
                    None
                }
            };
            if let (Some(secs), Some(handle)) = (retry_after, rec.receipt_handle.as_deref()) {
                if let Err(e) = self.app.queues.delay_retry(handle, secs).await {
                    warn!(error = %e, "could not push the retry out; SQS's visibility timeout applies");
                }
            }
            let mut f = BatchItemFailure::default();
            f.item_identifier = rec.message_id.clone().unwrap_or_default();
            failures.push(f);
        }
        let mut resp = SqsBatchResponse::default();
        resp.batch_item_failures = failures;
        resp
    }

    /// What the batch's records read together: who each request goes to
    /// (from the cache, or all the misses in one read), then the windows of
    /// those that may go as free-form text, in one read. A failed read is
    /// logged and leaves each record to read its own.
    async fn read_batch(&self, requests: Vec<SendRequest>) -> Arc<BatchReads> {
        let reached = match self.reach_all(&requests).await {
            Ok(reached) => reached,
            Err(e) => {
                warn!(error = %e, "could not read the batch's recipients together; each record reads its own");
                return Arc::default();
            }
        };
        let csms: Vec<_> = requests
            .iter()
            .zip(&reached)
            .filter_map(|(req, r)| match r {
                Reached::To(to) if req.text.is_some() => {
                    Some((req.tenant_id.clone(), to.identity.clone()))
                }
                _ => None,
            })
            .collect();
        let reached = requests.iter().map(named).zip(reached).collect();
        if csms.is_empty() {
            return Arc::new(BatchReads {
                reached,
                windows: Windows::new(),
            });
        }
        let windows = match self.app.store.get_windows(&csms).await {
            Ok(windows) => windows,
            Err(e) => {
                warn!(error = %e, "could not read the batch's windows together; each record reads its own");
                Windows::new()
            }
        };
        Arc::new(BatchReads { reached, windows })
    }

    /// Who `req` goes to (see [`Sender::reach_all`]).
    async fn reach(&self, req: &SendRequest) -> Result<Reached, SenderError> {
        let mut one = self.reach_all(std::slice::from_ref(req)).await?;
        Ok(one
            .pop()
            .unwrap_or(Reached::Not(Unaddressable::NoRecipient)))
    }

    /// Who each request goes to: the roster entry or alias that names them,
    /// and whether their number is flagged undeliverable. From a cache of
    /// `ADDRESSEE_TTL`, else in one read for all the misses.
    async fn reach_all(&self, requests: &[SendRequest]) -> Result<Vec<Reached>, SenderError> {
        let named: Vec<Named> = requests.iter().map(named).collect();
        let mut out: Vec<Option<Reached>> = named.iter().map(|n| self.addressees.get(n)).collect();
        let misses: Vec<Named> = named
            .iter()
            .zip(&out)
            .filter(|(_, hit)| hit.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if !misses.is_empty() {
            let known = self.app.store.lookup_recipients(&misses).await?;
            let mut fresh: HashMap<Named, Reached> = HashMap::new();
            for (n, k) in misses.into_iter().zip(known) {
                let reached = match addressee_from(&n, &k) {
                    Ok((to, false)) => Reached::To(to),
                    Ok((to, true)) => Reached::Undeliverable(to),
                    Err(why) => Reached::Not(why),
                };
                // Not someone sent to by BSUID: their id can change at any
                // time (`user_id_update`), and Meta refuses the old one, so
                // each request reads where it leads now.
                let by_bsuid = matches!(&reached, Reached::To(to) if to.user_id.is_some());
                if !by_bsuid {
                    self.addressees
                        .put(n.clone(), reached.clone(), ADDRESSEE_TTL);
                }
                fresh.insert(n, reached);
            }
            for (slot, n) in out.iter_mut().zip(&named) {
                if slot.is_none() {
                    *slot = fresh.get(n).cloned();
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Reached::Not(Unaddressable::NoRecipient)))
            .collect())
    }

    /// Processes one record.
    async fn process(
        &self,
        rec: &SqsMessage,
        read: QueueMessage,
        cx: &InBatch<'_>,
    ) -> Result<Disposition, SenderError> {
        let body = rec.body.as_deref().unwrap_or("");
        let arrival = Arrival::of(rec, &self.app.clock);
        let req = match read {
            QueueMessage::Control(Control::TemplateHandback(h)) => {
                return self.handback(cx, h, arrival).await
            }
            QueueMessage::Control(Control::SendRefused(r)) => {
                return self.refused(cx, r, arrival).await
            }
            QueueMessage::Control(Control::Release(r)) => {
                return self.release(&r.tenant_id, r.why).await
            }
            QueueMessage::Control(Control::Sweep(_)) => return self.sweep().await,
            QueueMessage::Control(Control::MarkRead(r)) => return self.mark_read(&r).await,
            QueueMessage::Request(Ok(r)) => r,
            QueueMessage::Request(Err(invalid)) => {
                return self.park_invalid(cx, body, &invalid).await
            }
        };
        let span = tracing::Span::current();
        span.record("tenant", req.tenant_id.as_str());
        span.record("idempotency_key", req.idempotency_key.as_str());
        let Some(tenant) = self.app.directory.tenant(&req.tenant_id).await? else {
            let reason = ParkReason {
                reason: "unknown_tenant".into(),
                detail: format!("tenant {} is not configured", req.tenant_id),
                meta_code: None,
                meta_title: None,
            };
            warn!("send request for an unknown tenant; parked");
            self.app.queues.park(body, &reason).await?;
            return Ok(Disposition::Done);
        };
        self.deliver(cx, &tenant, &req, body, arrival).await
    }

    /// Marks a CSM's response read at Meta. Best effort: a failure is
    /// logged and the record done (an unread tick is not worth a retry
    /// storm), and an unknown tenant is skipped.
    async fn mark_read(&self, r: &message::MarkRead) -> Result<Disposition, SenderError> {
        let Some(tenant) = self.app.directory.tenant(&r.tenant_id).await? else {
            warn!(tenant = %r.tenant_id, "read receipt for an unknown tenant; skipped");
            return Ok(Disposition::Done);
        };
        let phone = tenant.phone_number_id.as_str();
        let result = self
            .app
            .directory
            .with_token(&tenant, |secrets| async move {
                self.app
                    .graph
                    .mark_read(phone, &secrets.access_token, &r.message_id)
                    .await
            })
            .await;
        match result {
            Ok(()) => info!(message_id = %r.message_id, "CSM's response marked read"),
            Err(e) => {
                warn!(message_id = %r.message_id, error = %e, "read receipt failed; the CSM's message stays unread")
            }
        }
        Ok(Disposition::Done)
    }

    /// Delivers a request of a configured tenant: expired if stale, paced
    /// against the pair rate, then claimed (or resumed, if its key is
    /// already taken) and sent.
    async fn deliver(
        &self,
        cx: &InBatch<'_>,
        tenant: &Tenant,
        req: &SendRequest,
        body: &str,
        arrival: Arrival,
    ) -> Result<Disposition, SenderError> {
        let now = self.app.clock.now();
        // A stale alert is expired, not sent. A key someone holds (or whose
        // last send is in doubt) goes on below: its doubt is still resolved
        // from Meta's statuses, and `resume` expires it instead of re-sending.
        if req.deliver_by.is_some_and(|d| d <= now)
            && self
                .app
                .store
                .record_final(
                    &req.tenant_id,
                    &req.idempotency_key,
                    None,
                    FinalRecord {
                        state: LedgerState::Expired,
                        reason: STALE,
                        request_json: Some(body),
                    },
                    now,
                )
                .await?
        {
            info!("alert is stale (deliver_by passed); recorded as expired, not sent");
            cx.outcome(req, Reported::expired(STALE));
            return Ok(Disposition::Done);
        }
        // A held tenant's alert goes back on the queue unclaimed.
        if let Some(d) = self
            .hold_gate(&req.tenant_id, &req.idempotency_key, body)
            .await?
        {
            return Ok(d);
        }
        let batch = cx.reads.clone().await;
        let reached = match batch.reached.get(&named(req)) {
            Some(r) => r.clone(),
            None => self.reach(req).await?,
        };
        // Pair pacing comes before the claim, so a deferred alert holds no
        // claim and its re-queued copy is an ordinary first delivery.
        let pair = match &reached {
            Reached::To(to) => self
                .pacer
                .pair_slot(tenant.phone_number_id.as_str(), &to.pacing_key()),
            _ => PairSlot::After(Duration::ZERO),
        };
        match pair {
            PairSlot::After(wait) if wait.is_zero() => {}
            PairSlot::After(wait) => tokio::time::sleep(wait).await,
            PairSlot::Defer(wait) => {
                let secs = i32::try_from(wait.as_secs() + 1).unwrap_or(900);
                self.app.queues.enqueue_send_delayed(body, secs).await?;
                info!(
                    delay = secs,
                    "alerts to this CSM are coming faster than Meta's pair rate; re-queued with a delay"
                );
                return Ok(Disposition::Done);
            }
        }
        let token = uuid::Uuid::new_v4().to_string();
        let lease = self.app.config.sender.claim_lease.as_secs() as i64;
        let entry = match self
            .app
            .store
            .claim(
                &req.tenant_id,
                &req.idempotency_key,
                body,
                &token,
                now,
                lease,
            )
            .await?
        {
            ClaimOutcome::Claimed(e) => e,
            ClaimOutcome::Existing(existing) => {
                match self.resume(cx, req, &existing, &token, now).await? {
                    Resume::Proceed(e) => *e,
                    Resume::Stop(d) => return Ok(d),
                }
            }
        };
        let to = match reached {
            Reached::To(to) => to,
            Reached::Undeliverable(to) => {
                let reason = ParkReason {
                    reason: "undeliverable_number".into(),
                    detail: format!(
                        "Meta said {} is not a usable WhatsApp account (131026); it is not sent to again until the CSM's number changes",
                        to.phone.as_ref().map(|p| p.masked()).unwrap_or_default()
                    ),
                    meta_code: Some(131026),
                    meta_title: None,
                };
                return self.park(cx, req, body, Some(&token), reason).await;
            }
            Reached::Not(why) => {
                let reason = match why {
                    Unaddressable::UnknownCsm(id) => ParkReason {
                        reason: "unknown_csm".into(),
                        detail: format!("recipient.csm_id {id} is not on the tenant's roster, and the request names no number or user id"),
                        meta_code: None,
                        meta_title: None,
                    },
                    Unaddressable::NoRecipient => ParkReason {
                        reason: "invalid_request:no_recipient".into(),
                        detail: "the request names nobody".into(),
                        meta_code: None,
                        meta_title: None,
                    },
                };
                return self.park(cx, req, body, Some(&token), reason).await;
            }
        };
        let attempt = Attempt {
            req,
            to: &to,
            body,
            token: &token,
            entry: &entry,
            arrival,
        };
        self.send(cx, tenant, &attempt).await
    }

    /// A request that cannot be sent, parked at once with its reason. If its
    /// tenant (a configured one) and key can be read, its ledger says so too,
    /// so its timeline shows it, and its outcome is published.
    async fn park_invalid(
        &self,
        cx: &InBatch<'_>,
        body: &str,
        invalid: &InvalidRequest,
    ) -> Result<Disposition, SenderError> {
        warn!(reason = invalid.code(), detail = %invalid, "invalid send request; parked");
        let reason = ParkReason {
            reason: format!("invalid_request:{}", invalid.code()),
            detail: invalid.to_string(),
            meta_code: None,
            meta_title: None,
        };
        let Some((tenant, key)) = request::readable_ids(body) else {
            self.app.queues.park(body, &reason).await?;
            return Ok(Disposition::Done);
        };
        let span = tracing::Span::current();
        span.record("tenant", tenant.as_str());
        span.record("idempotency_key", key.as_str());
        if self.app.directory.tenant(&tenant).await?.is_none() {
            self.app.queues.park(body, &reason).await?;
            return Ok(Disposition::Done);
        }
        let now = self.app.clock.now();
        self.app.queues.park(body, &reason).await?;
        let recorded = self
            .app
            .store
            .record_final(
                &tenant,
                &key,
                None,
                FinalRecord {
                    state: LedgerState::Parked,
                    reason: &reason.ledger_text(),
                    request_json: Some(body),
                },
                now,
            )
            .await?;
        if recorded {
            self.note_parked(&tenant, &key, &reason, now).await;
            cx.outcome_for(&tenant, &key, Reported::parked(&reason));
        }
        Ok(Disposition::Done)
    }

    /// A key that someone already claimed: finished, in flight, in doubt, or
    /// waiting for its template.
    async fn resume(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        existing: &LedgerEntry,
        token: &str,
        now: i64,
    ) -> Result<Resume, SenderError> {
        let store = &self.app.store;
        match decide::on_existing(existing, now) {
            Existing::Finished => {
                info!(
                    state = existing.state.as_str(),
                    "already handled; acknowledged without sending, its outcome published again"
                );
                cx.repeat_outcome(req, existing);
                return Ok(Resume::Stop(Disposition::Done));
            }
            Existing::Busy { retry_after } => {
                return Ok(Resume::Stop(Disposition::RetryAfter(retry_after)))
            }
            // A later try not due yet (Meta's per-user limit, 131049): this
            // copy comes back then, or at SQS's longest visibility, 12 h.
            Existing::NotDue {
                retry_at,
                retry_after,
            } => {
                info!(
                    retry_at = %hold::utc(retry_at),
                    "a later try of this alert is not due yet; not sent"
                );
                return Ok(Resume::Stop(Disposition::RetryAfter(retry_after)));
            }
            Existing::Unexpected => return Ok(Resume::Stop(Disposition::RetryAfter(1))),
            Existing::InDoubt => {}
        }
        let prev = existing.claim_token.as_deref().unwrap_or("");
        let seen = store
            .statuses_by_key(&req.tenant_id, &req.idempotency_key)
            .await?;
        let delay = self.app.config.sender.ambiguous_delay.as_secs() as i64;
        match decide::judge_doubt(existing, &seen, req.deliver_by, now, delay) {
            Doubt::WasSent(wamid) => {
                if store
                    .resolve_ambiguous_as_sent(
                        &req.tenant_id,
                        &req.idempotency_key,
                        prev,
                        wamid,
                        now,
                    )
                    .await?
                {
                    info!(wamid = %wamid, "ambiguous send resolved: Meta reported a status for it, so it was sent");
                    cx.outcome(
                        req,
                        Reported::sent(
                            existing.mode,
                            existing.template.clone(),
                            wamid.to_string(),
                            Some("resolved from status webhook".into()),
                        ),
                    );
                }
                Ok(Resume::Stop(Disposition::Done))
            }
            Doubt::Undecided { retry_after } => {
                Ok(Resume::Stop(Disposition::RetryAfter(retry_after)))
            }
            Doubt::Stale => {
                if store
                    .record_final(
                        &req.tenant_id,
                        &req.idempotency_key,
                        Some(prev),
                        FinalRecord {
                            state: LedgerState::Expired,
                            reason: STALE,
                            request_json: None,
                        },
                        now,
                    )
                    .await?
                {
                    info!("ambiguous send judged lost, but the alert is stale now; recorded as expired");
                    cx.outcome(req, Reported::expired(STALE));
                }
                Ok(Resume::Stop(Disposition::Done))
            }
            Doubt::SendAgain => {
                let lease = self.app.config.sender.claim_lease.as_secs() as i64;
                match store
                    .take_over(
                        &req.tenant_id,
                        &req.idempotency_key,
                        prev,
                        token,
                        now,
                        lease,
                    )
                    .await?
                {
                    ClaimOutcome::Claimed(e) => {
                        warn!("ambiguous send judged lost (no status by decide_at); sending again");
                        Ok(Resume::Proceed(Box::new(e)))
                    }
                    ClaimOutcome::Existing(_) => Ok(Resume::Stop(Disposition::RetryAfter(1))),
                }
            }
        }
    }

    /// A 131047 hand-back from the webhook: re-claim the key for a template.
    async fn handback(
        &self,
        cx: &InBatch<'_>,
        h: Handback,
        arrival: Arrival,
    ) -> Result<Disposition, SenderError> {
        let span = tracing::Span::current();
        span.record("tenant", h.tenant_id.as_str());
        span.record("idempotency_key", h.idempotency_key.as_str());
        let Some(tenant) = self.app.directory.tenant(&h.tenant_id).await? else {
            return Ok(Disposition::Done);
        };
        let token = uuid::Uuid::new_v4().to_string();
        let now = self.app.clock.now();
        let lease = self.app.config.sender.claim_lease.as_secs() as i64;
        let entry = match self
            .app
            .store
            .claim_handback(
                &h.tenant_id,
                &h.idempotency_key,
                &h.wamid,
                &token,
                now,
                lease,
            )
            .await
        {
            Ok(ClaimOutcome::Claimed(e)) => e,
            // Handed back before, and not finished: the template send
            // failed, is waiting for approval, is in doubt, or its instance
            // died. The stored request takes the ordinary path from where
            // the ledger stands (its `force_template` keeps it a template).
            Ok(ClaimOutcome::Existing(e))
                if e.force_template && !e.state.is_final() && e.state != LedgerState::Waiting =>
            {
                let Some(body) = e.request_json.clone() else {
                    return Ok(Disposition::Done);
                };
                return match SendRequest::parse(&body) {
                    Ok(req) => self.deliver(cx, &tenant, &req, &body, arrival).await,
                    Err(invalid) => self.park_invalid(cx, &body, &invalid).await,
                };
            }
            Ok(ClaimOutcome::Existing(_)) => {
                info!("hand-back already taken or not applicable");
                return Ok(Disposition::Done);
            }
            Err(StoreError::Malformed { .. }) => return Ok(Disposition::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(body) = entry.request_json.clone() else {
            return Ok(Disposition::Done);
        };
        let req = match SendRequest::parse(&body) {
            Ok(r) => r,
            Err(_) => return Ok(Disposition::Done),
        };
        let to = match self.reach(&req).await? {
            Reached::To(to) | Reached::Undeliverable(to) => to,
            Reached::Not(_) => return Ok(Disposition::Done),
        };
        let attempt = Attempt {
            req: &req,
            to: &to,
            body: &body,
            token: &token,
            entry: &entry,
            arrival,
        };
        self.send(cx, &tenant, &attempt).await
    }

    /// Chooses free-form or template, sends, and records the outcome.
    async fn send(
        &self,
        cx: &InBatch<'_>,
        tenant: &Tenant,
        a: &Attempt<'_>,
    ) -> Result<Disposition, SenderError> {
        let cfg = &self.app.config.sender;
        let req = a.req;
        let now = self.app.clock.now();
        let has_text = req.text.is_some();
        let force_template = a.entry.force_template;
        // The window is read only for an alert that may go free-form.
        let window = if decide::may_go_free_form(has_text, force_template) {
            let csm = (req.tenant_id.clone(), a.to.identity.clone());
            match cx.reads.clone().await.windows.get(&csm) {
                Some(read) => *read,
                None => {
                    self.app
                        .store
                        .get_window(&req.tenant_id, &a.to.identity)
                        .await?
                }
            }
        } else {
            None
        };
        let margin = cfg.window_margin.as_secs() as i64;
        let mode = decide::choose_mode(has_text, force_template, window.as_ref(), now, margin);
        let reference = a.entry.response_ref.as_deref();
        if mode == SendMode::FreeForm {
            let text = req.text.as_deref().unwrap_or_default();
            // Reply buttons when the text fits an interactive body; plain
            // text otherwise (and for an alert without a reference).
            let message = match reference.and_then(|r| responses::interactive(text, req.event, r)) {
                Some(interactive) => interactive_message(req, a.to, interactive),
                None => text_message(req, a.to, text),
            };
            match self.call(tenant, &message).await {
                Err(e) if classify(&e) == Class::OutsideWindow => {
                    info!("Meta says the window is closed (131047); closing it and sending the template now");
                    self.app
                        .store
                        .close_window(&req.tenant_id, &a.to.identity, now, now)
                        .await?;
                }
                result => return self.conclude(cx, a, SendMode::FreeForm, None, result).await,
            }
        }
        let def = self.catalog.choose(req.event, req.health, req.premium);
        if self.template_status(&req.tenant_id, def).await? != TemplateStatus::Approved {
            // The cache can be seconds behind an approval (only the instance
            // running a release pass learns of it at once): the record
            // itself decides before an alert is held or parked.
            let (status, meta_reason) = self.fresh_template_status(&req.tenant_id, def).await?;
            if status != TemplateStatus::Approved {
                return self
                    .template_not_ready(cx, a, def, &status, meta_reason.as_deref())
                    .await;
            }
        }
        let component = match def.send_component(&req.params) {
            Ok(mut c) => {
                if let (Some(r), Some(list)) = (reference, c["components"].as_array_mut()) {
                    list.extend(responses::quick_reply_components(&def.buttons, r));
                }
                c
            }
            Err(e) => {
                let reason = ParkReason {
                    reason: "invalid_request:template_params".into(),
                    detail: e.to_string(),
                    meta_code: None,
                    meta_title: None,
                };
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
        };
        let message = template_message(req, a.to, component);
        let result = self.call(tenant, &message).await;
        self.conclude(cx, a, SendMode::Template, Some(def.name.as_str()), result)
            .await
    }

    /// One Graph call, paced, with one token refresh on 190.
    async fn call(
        &self,
        tenant: &Tenant,
        message: &serde_json::Value,
    ) -> Result<SendResponse, GraphError> {
        let phone = tenant.phone_number_id.as_str();
        let result = self
            .app
            .directory
            .with_token(tenant, |secrets| async move {
                self.pacer.wait(phone).await;
                self.app
                    .graph
                    .send_message(phone, &secrets.access_token, message)
                    .await
            })
            .await;
        match result {
            Ok(sent) => Ok(sent),
            Err(TokenCallError::Graph(e)) => Err(e),
            Err(TokenCallError::Secrets(e)) => {
                error!(error = %e, "tenant secrets unavailable");
                Err(GraphError::NotSent("the tenant's token could not be read"))
            }
        }
    }

    async fn conclude(
        &self,
        cx: &InBatch<'_>,
        a: &Attempt<'_>,
        mode: SendMode,
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
                if !store
                    .record_sent(
                        &req.tenant_id,
                        &req.idempotency_key,
                        a.token,
                        SentRecord {
                            mode,
                            template,
                            wamid: &wamid,
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
                cx.outcome(
                    req,
                    Reported::sent(Some(mode), template.map(str::to_string), wamid, None),
                );
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
                    Reported::ambiguous(mode, template.map(str::to_string), detail),
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
    async fn wait_for_user(
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

    /// The template's status at Meta as recorded (not submitted if we have
    /// no record), from a short cache: an APPROVED answer is trusted for a
    /// minute, anything else for seconds. Anything but APPROVED is read
    /// afresh ([`Sender::fresh_template_status`]) before an alert is held or
    /// parked for it.
    async fn template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<TemplateStatus, SenderError> {
        let key = (
            tenant.clone(),
            def.name.as_str().to_string(),
            def.language.clone(),
        );
        let status = self
            .template_statuses
            .get_or_load(&key, || async {
                let record = self
                    .app
                    .store
                    .get_template(tenant, def.name.as_str(), &def.language)
                    .await?;
                let status = TemplateStatus::from_meta(record.as_ref().map(|t| t.status.as_str()));
                let ttl = status_ttl(&status);
                Ok::<_, SenderError>((status, ttl))
            })
            .await?;
        Ok(status)
    }

    /// Puts a template status read elsewhere (the release pass) in the
    /// cache [`Sender::template_status`] reads.
    fn remember_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: TemplateStatus,
    ) {
        let ttl = status_ttl(&status);
        self.template_statuses.put(
            (tenant.clone(), name.to_string(), language.to_string()),
            status,
            ttl,
        );
    }

    /// The template is not approved. Refused for good (rejected, disabled):
    /// the alert is parked with Meta's reason. Otherwise (in review, paused,
    /// not submitted yet) the alert is held until the template is approved,
    /// its CSM opens a window, or `deliver_by` / `TEMPLATE_WAIT_LIMIT_SECS`
    /// from its first attempt passes.
    async fn template_not_ready(
        &self,
        cx: &InBatch<'_>,
        a: &Attempt<'_>,
        def: &TemplateDef,
        status: &TemplateStatus,
        meta_reason: Option<&str>,
    ) -> Result<Disposition, SenderError> {
        let req = a.req;
        let now = self.app.clock.now();
        let wait_limit = self.app.config.sender.template_wait_limit.as_secs() as i64;
        let deadline = match decide::template_not_ready(
            status,
            req.deliver_by,
            a.entry.created_at,
            wait_limit,
            now,
        ) {
            NotReady::Refused => {
                let reason = release::template_rejected(def.name.as_str(), status, meta_reason);
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
            NotReady::TooLate => {
                let reason = release::template_not_approved(def.name.as_str(), status);
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
            NotReady::Hold { deadline } => deadline,
        };
        let waiting = WaitingAlert {
            sk: waiting_sk(a.arrival.enqueued_ms, &req.idempotency_key),
            key: req.idempotency_key.clone(),
            template: def.name.as_str().to_string(),
            language: def.language.clone(),
            who: a.to.identity.clone(),
            has_text: req.text.is_some(),
            deadline,
            enqueued_ms: a.arrival.enqueued_ms,
        };
        // The item first: a crash before the ledger write leaves a claimed
        // key whose redelivery holds it again (same item), never an alert
        // that waits with no item to wake it.
        self.app.store.put_waiting(&req.tenant_id, &waiting).await?;
        if !self
            .app
            .store
            .record_waiting(
                &req.tenant_id,
                &req.idempotency_key,
                a.token,
                def.name.as_str(),
                deadline,
                now,
            )
            .await?
        {
            error!(
                "could not hold the alert: its claim was taken over meanwhile (lease too short?)"
            );
            return Ok(Disposition::Done);
        }
        info!(template = %def.name, status = %status, deadline, "template not approved yet; the alert waits for it, outside the send queue");
        cx.outcome(
            req,
            Reported::waiting(
                def.name.as_str().to_string(),
                Some(format!("template {} is {status}", def.name)),
            ),
        );
        Ok(Disposition::Held)
    }

    /// The template's status read from its record (not the cache, which
    /// learns it), with Meta's rejection reason.
    async fn fresh_template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<(TemplateStatus, Option<String>), SenderError> {
        let record = self
            .app
            .store
            .get_template(tenant, def.name.as_str(), &def.language)
            .await?;
        let status = TemplateStatus::from_meta(record.as_ref().map(|t| t.status.as_str()));
        self.remember_template_status(tenant, def.name.as_str(), &def.language, status.clone());
        Ok((status, record.and_then(|t| t.reason)))
    }

    async fn park(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        body: &str,
        token: Option<&str>,
        reason: ParkReason,
    ) -> Result<Disposition, SenderError> {
        // The DLQ copy first: if recording fails after it, the retry finds
        // the key still claimed and parks again (a duplicate DLQ entry,
        // never a lost one).
        self.app.queues.park(body, &reason).await?;
        let now = self.app.clock.now();
        self.app
            .store
            .record_final(
                &req.tenant_id,
                &req.idempotency_key,
                token,
                FinalRecord {
                    state: LedgerState::Parked,
                    reason: &reason.ledger_text(),
                    request_json: Some(body),
                },
                now,
            )
            .await?;
        self.note_parked(&req.tenant_id, &req.idempotency_key, &reason, now)
            .await;
        warn!(reason = %reason.reason, meta_code = reason.meta_code, "alert parked in the DLQ");
        cx.outcome(req, Reported::parked(&reason));
        Ok(Disposition::Done)
    }

    /// The tenant's parked count (status API) and list (`fwa parked`). A
    /// failure is logged and not retried: re-running the park would put a
    /// second copy in the DLQ for the sake of an index.
    async fn note_parked(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        reason: &ParkReason,
        now: i64,
    ) {
        if let Err(e) = self.app.store.count_parked(tenant, now).await {
            warn!(error = %e, "could not count the parked alert for the tenant");
        }
        if let Err(e) = self
            .app
            .store
            .put_parked(
                tenant,
                key,
                &reason.reason,
                &reason.detail,
                reason.meta_code,
                now,
            )
            .await
        {
            warn!(error = %e, "could not list the parked alert for the tenant");
        }
    }
}

/// How long a template status is trusted from the cache: an approval for a
/// minute, anything else for seconds so an approval is seen soon.
fn status_ttl(status: &TemplateStatus) -> Duration {
    if *status == TemplateStatus::Approved {
        APPROVED_TTL
    } else {
        UNAPPROVED_TTL
    }
}

/// When and how often SQS delivered the record an attempt came from.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    /// SQS's `ApproximateReceiveCount` (1 for an alert the release pass
    /// took from the waiting list).
    receive_count: u32,
    /// When upstream enqueued it (SQS's `SentTimestamp`, unix ms): an
    /// alert held for its template is released in this order.
    enqueued_ms: i64,
}

impl Arrival {
    fn of(rec: &SqsMessage, clock: &crate::clock::Clock) -> Arrival {
        let attr = |name: &str| rec.attributes.get(name).and_then(|c| c.parse::<i64>().ok());
        Arrival {
            receive_count: attr("ApproximateReceiveCount")
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
            enqueued_ms: attr("SentTimestamp").unwrap_or_else(|| clock.now_ms()),
        }
    }
}

/// One attempt to deliver an alert: the request, the claim that holds its
/// key, and the record it came from.
struct Attempt<'a> {
    req: &'a SendRequest,
    /// Who it goes to.
    to: &'a Addressee,
    /// The request as received (what a park puts in the DLQ).
    body: &'a str,
    /// The claim token every ledger write after the claim must present.
    token: &'a str,
    /// The ledger entry as the claim left it.
    entry: &'a LedgerEntry,
    arrival: Arrival,
}

/// The CSMs' windows as read for a batch: a CSM missing here is read alone.
type Windows = HashMap<(TenantId, Identity), Option<Window>>;

/// The batch's send requests: the ones whose recipients (and, for those
/// that may go as free-form text, windows) the batch reads together.
fn requests_of(bodies: &[QueueMessage]) -> Vec<SendRequest> {
    bodies
        .iter()
        .filter_map(|b| match b {
            QueueMessage::Request(Ok(req)) => Some(req.clone()),
            _ => None,
        })
        .collect()
}

/// A request's recipient as it names them.
fn named(r: &SendRequest) -> Named {
    Named {
        tenant: r.tenant_id.clone(),
        phone: r.phone.clone(),
        csm_id: r.csm_id.clone(),
        user_id: r.user_id.clone(),
    }
}

/// What a batch's records read together.
#[derive(Debug, Default)]
struct BatchReads {
    /// Who each request goes to; a request missing here is read alone.
    reached: HashMap<Named, Reached>,
    windows: Windows,
}

/// Who a request goes to, or why it cannot go.
#[derive(Debug, Clone)]
enum Reached {
    To(Addressee),
    /// Meta answered 131026 for the number: not sent to until it changes.
    Undeliverable(Addressee),
    Not(Unaddressable),
}

/// What one record's processing shares with the rest of its batch.
struct InBatch<'b> {
    /// The batch's reads (recipients, windows), awaited by the records.
    reads: Shared<BoxFuture<'b, Arc<BatchReads>>>,
    /// The record's outcome events, published with the batch's.
    events: Mutex<Vec<Event>>,
}

impl InBatch<'_> {
    /// Queues the record's outcome event; [`Sender::handle_batch`]
    /// publishes it with the batch's.
    fn outcome(&self, req: &SendRequest, reported: Reported) {
        self.outcome_for(&req.tenant_id, &req.idempotency_key, reported)
    }

    /// [`InBatch::outcome`] for an alert known only by its tenant and key
    /// (a request too broken to parse whole).
    fn outcome_for(&self, tenant: &TenantId, key: &IdempotencyKey, reported: Reported) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reported.event(tenant, key));
    }

    /// Queues again the outcome event of an alert that finished earlier.
    ///
    /// A request delivered after its alert finished may be the redelivery of
    /// a record whose batch could not publish its events; nothing tells the
    /// two apart without a write per message, so the outcome always goes out
    /// again. An event repeated (same key, outcome and wamid) is one a
    /// consumer drops; an event lost is gone.
    fn repeat_outcome(&self, req: &SendRequest, entry: &LedgerEntry) {
        self.repeat_outcome_for(&req.tenant_id, &req.idempotency_key, entry)
    }

    /// [`InBatch::repeat_outcome`] by tenant and key.
    fn repeat_outcome_for(&self, tenant: &TenantId, key: &IdempotencyKey, entry: &LedgerEntry) {
        if let Some(reported) = Reported::of_ledger(entry) {
            self.outcome_for(tenant, key, reported)
        }
    }

    fn into_events(self) -> Vec<Event> {
        self.events.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

enum Resume {
    Proceed(Box<LedgerEntry>),
    Stop(Disposition),
}

fn text_message(req: &SendRequest, to: &Addressee, text: &str) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "text",
        "text": {"preview_url": false, "body": text},
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

/// A free-form alert with reply buttons ([`responses::interactive`]).
fn interactive_message(
    req: &SendRequest,
    to: &Addressee,
    interactive: serde_json::Value,
) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "interactive",
        "interactive": interactive,
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

fn template_message(
    req: &SendRequest,
    to: &Addressee,
    template: serde_json::Value,
) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

/// Meta's `to` (a number) or, for someone known only by a BSUID, its
/// `recipient` (<https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids>).
fn address(message: &mut serde_json::Value, to: &Addressee) {
    match (&to.phone, &to.user_id) {
        (Some(phone), _) => message["to"] = json!(phone.as_str()),
        (None, Some(user)) => message["recipient"] = json!(user),
        (None, None) => {}
    }
}

fn describe(err: &GraphError) -> String {
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

fn meta_title(err: &GraphError) -> Option<String> {
    match err {
        GraphError::Api { error, .. } => Some(error.message.clone()),
        _ => None,
    }
}
