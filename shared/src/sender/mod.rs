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
//!    chooses, only if it is APPROVED for the tenant.
//! 6. Meta's answer decides (see [`classify`]): recorded as sent; retried
//!    later (the record is reported as a batch item failure and its next
//!    visibility pushed out with backoff); parked in the DLQ with Meta's code;
//!    or, when the answer was lost, recorded as *ambiguous*.
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
pub mod pacer;
pub mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use serde_json::json;
use tracing::{error, info, warn, Instrument};

use crate::cache::TtlMap;
use crate::events::Event;
use crate::graph::{GraphError, SendResponse};
use crate::ids::TenantId;
use crate::phone::E164;
use crate::queues::ParkReason;
use crate::startup::App;
use crate::store::{ClaimOutcome, LedgerEntry, LedgerState, SendMode, StoreError, Window};
use crate::templates::catalog::{Catalog, TemplateDef};
use crate::tenants::{DirectoryError, Tenant, TokenCallError};
use classify::{backoff_secs, classify, Class};
use pacer::{Pacer, PairLimit, PairSlot};
use request::{Handback, InvalidRequest, SendRequest};

/// Why a stale alert was not sent.
const STALE: &str = "deliver_by passed before sending";
/// Meta's status of a template that may be sent.
const APPROVED: &str = "APPROVED";
/// How long an approved template is trusted from the cache.
const APPROVED_TTL: Duration = Duration::from_secs(60);
/// How long "not approved" is trusted: short, so an approval is seen soon.
const UNAPPROVED_TTL: Duration = Duration::from_secs(5);
/// How long to wait before checking an unapproved template again.
const TEMPLATE_RECHECK_SECS: i32 = 300;

/// What to do with a record after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it from the queue (sent, duplicate, expired or parked).
    Done,
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

/// Test hook: where a simulated crash ends processing, as if the instance
/// died (nothing after that point happens; the record is not acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    AfterClaim,
    AfterSend,
}

/// The sender: the app plus its in-process state (pacing, template cache).
pub struct Sender {
    app: App,
    catalog: &'static Catalog,
    pacer: Pacer,
    template_statuses: TtlMap<(TenantId, String, String), String>,
    /// Shared with [`Sender::sibling`]s, so an armed crash fires once in
    /// whichever instance gets there first.
    crash: Arc<std::sync::Mutex<Option<CrashPoint>>>,
}

impl Sender {
    pub fn new(app: App) -> Arc<Self> {
        Self::build(app, Arc::default())
    }

    /// Another instance of the same function, as Lambda runs several: its
    /// own pacer and caches, the same app. The local runner uses one per
    /// poller so that per-instance pacing is what it is in Lambda.
    pub fn sibling(&self) -> Arc<Self> {
        Self::build(self.app.clone(), self.crash.clone())
    }

    fn build(app: App, crash: Arc<std::sync::Mutex<Option<CrashPoint>>>) -> Arc<Self> {
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
            crash,
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Arms a simulated crash for the next record that reaches `point`.
    #[doc(hidden)]
    pub fn crash_next(&self, point: CrashPoint) {
        *self.crash.lock().unwrap_or_else(|p| p.into_inner()) = Some(point);
    }

    /// Whether an armed crash has not fired yet (tests check that it did).
    #[doc(hidden)]
    pub fn crash_pending(&self) -> bool {
        self.crash
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn crashes_at(&self, point: CrashPoint) -> bool {
        let mut armed = self.crash.lock().unwrap_or_else(|p| p.into_inner());
        if *armed == Some(point) {
            *armed = None;
            true
        } else {
            false
        }
    }

    /// Handles one SQS batch. Every record gets its own answer: a failure is
    /// reported as a batch item failure, never swallowed, and never fails the
    /// others.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let bodies: Vec<RecordBody> = event
            .records
            .iter()
            .map(|rec| RecordBody::read(rec.body.as_deref().unwrap_or("")))
            .collect();
        let windows = self.read_windows(free_form_csms(&bodies)).boxed().shared();
        let records = join_all(event.records.iter().zip(bodies).map(|(rec, read)| {
            let span = tracing::info_span!(
                "send",
                sqs_message_id = rec.message_id.as_deref().unwrap_or(""),
                tenant = tracing::field::Empty,
                idempotency_key = tracing::field::Empty
            );
            let cx = InBatch {
                windows: windows.clone(),
                events: Mutex::default(),
            };
            async move {
                let result = self.process(rec, read, &cx).await;
                (rec, result, cx.into_events())
            }
            .instrument(span)
        }));
        // The windows are polled first, so their read goes out with the claims.
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
                Ok(Disposition::Done) => continue,
                Ok(Disposition::RetryAfter(secs)) => Some(secs),
                Err(e) => {
                    error!(error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), "record failed; SQS will redeliver it");
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

    /// The windows of `csms`, in one read. A failed read is logged and
    /// leaves each record to read its own.
    async fn read_windows(&self, csms: Vec<(TenantId, E164)>) -> Arc<Windows> {
        if csms.is_empty() {
            return Arc::default();
        }
        match self.app.store.get_windows(&csms).await {
            Ok(windows) => Arc::new(windows),
            Err(e) => {
                warn!(error = %e, "could not read the batch's windows together; each record reads its own");
                Arc::default()
            }
        }
    }

    /// Processes one record.
    async fn process(
        &self,
        rec: &SqsMessage,
        read: RecordBody,
        cx: &InBatch<'_>,
    ) -> Result<Disposition, SenderError> {
        let body = rec.body.as_deref().unwrap_or("");
        let receive_count: u32 = rec
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let req = match read {
            RecordBody::Handback(handback) => return self.handback(cx, handback).await,
            RecordBody::Request(Ok(r)) => r,
            RecordBody::Request(Err(invalid)) => {
                warn!(reason = invalid.code(), detail = %invalid, "invalid send request; parked");
                let reason = ParkReason {
                    reason: format!("invalid_request:{}", invalid.code()),
                    detail: invalid.to_string(),
                    meta_code: None,
                    meta_title: None,
                };
                self.app.queues.park(body, &reason).await?;
                return Ok(Disposition::Done);
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
                    LedgerState::Expired,
                    STALE,
                    Some(body),
                    now,
                )
                .await?
        {
            info!("alert is stale (deliver_by passed); recorded as expired, not sent");
            cx.outcome(&req, "expired", None, None, None, Some(STALE.into()));
            return Ok(Disposition::Done);
        }
        // Pair pacing comes before the claim, so a deferred alert holds no
        // claim and its re-queued copy is an ordinary first delivery.
        match self
            .pacer
            .pair_slot(tenant.phone_number_id.as_str(), req.to.as_str())
        {
            PairSlot::After(wait) if wait.is_zero() => {}
            PairSlot::After(wait) => tokio::time::sleep(wait).await,
            PairSlot::Defer(wait) => {
                let secs = i32::try_from(wait.as_secs() + 1).unwrap_or(900);
                self.app.queues.enqueue_send_delayed(body, secs).await?;
                info!(
                    delay = secs,
                    csm = %req.to.masked(),
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
                match self.resume(cx, &req, &existing, &token, now).await? {
                    Resume::Proceed(e) => e,
                    Resume::Stop(d) => return Ok(d),
                }
            }
        };
        if self.crashes_at(CrashPoint::AfterClaim) {
            warn!("simulated crash after claim");
            return Ok(Disposition::RetryAfter(0));
        }
        self.send(cx, &tenant, &req, body, &entry, &token, receive_count)
            .await
    }

    /// A key that someone already claimed: finished, in flight, or in doubt.
    async fn resume(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        existing: &LedgerEntry,
        token: &str,
        now: i64,
    ) -> Result<Resume, SenderError> {
        let store = &self.app.store;
        match existing.state {
            s if s.is_final() => {
                info!(
                    state = s.as_str(),
                    "already handled; acknowledged without sending, its outcome published again"
                );
                cx.repeat_outcome(req, existing);
                Ok(Resume::Stop(Disposition::Done))
            }
            LedgerState::Claimed if existing.lease_until > now => {
                Ok(Resume::Stop(Disposition::RetryAfter(
                    i32::try_from(existing.lease_until - now + 1).unwrap_or(60),
                )))
            }
            LedgerState::Claimed | LedgerState::Ambiguous => {
                let prev = existing.claim_token.as_deref().unwrap_or("");
                let seen = store
                    .statuses_by_key(&req.tenant_id, &req.idempotency_key)
                    .await?;
                if let Some(status) = seen.first() {
                    if store
                        .resolve_ambiguous_as_sent(
                            &req.tenant_id,
                            &req.idempotency_key,
                            prev,
                            &status.wamid,
                            now,
                        )
                        .await?
                    {
                        info!(wamid = %status.wamid, "ambiguous send resolved: Meta reported a status for it, so it was sent");
                        cx.outcome(
                            req,
                            "sent",
                            existing.mode,
                            existing.template.clone(),
                            Some(status.wamid.clone()),
                            Some("resolved from status webhook".into()),
                        );
                    }
                    return Ok(Resume::Stop(Disposition::Done));
                }
                let decide_at = existing.decide_at.unwrap_or(
                    existing.lease_until + self.app.config.sender.ambiguous_delay.as_secs() as i64,
                );
                if now < decide_at {
                    return Ok(Resume::Stop(Disposition::RetryAfter(
                        i32::try_from(decide_at - now).unwrap_or(600).max(1),
                    )));
                }
                if req.deliver_by.is_some_and(|d| d <= now) {
                    if store
                        .record_final(
                            &req.tenant_id,
                            &req.idempotency_key,
                            Some(prev),
                            LedgerState::Expired,
                            STALE,
                            None,
                            now,
                        )
                        .await?
                    {
                        info!("ambiguous send judged lost, but the alert is stale now; recorded as expired");
                        cx.outcome(req, "expired", None, None, None, Some(STALE.into()));
                    }
                    return Ok(Resume::Stop(Disposition::Done));
                }
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
                        Ok(Resume::Proceed(e))
                    }
                    ClaimOutcome::Existing(_) => Ok(Resume::Stop(Disposition::RetryAfter(1))),
                }
            }
            // `retry` is claimable, so a claim never fails on it; be safe.
            _ => Ok(Resume::Stop(Disposition::RetryAfter(1))),
        }
    }

    /// A 131047 hand-back from the webhook: re-claim the key for a template.
    async fn handback(&self, cx: &InBatch<'_>, h: Handback) -> Result<Disposition, SenderError> {
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
        self.send(cx, &tenant, &req, &body, &entry, &token, 1).await
    }

    /// Chooses free-form or template, sends, and records the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        cx: &InBatch<'_>,
        tenant: &Tenant,
        req: &SendRequest,
        body: &str,
        entry: &LedgerEntry,
        token: &str,
        receive_count: u32,
    ) -> Result<Disposition, SenderError> {
        let cfg = &self.app.config.sender;
        let now = self.app.clock.now();
        let free_form = match (&req.text, entry.force_template) {
            (Some(_), false) => {
                let csm = (req.tenant_id.clone(), req.to.clone());
                let window = match cx.windows.clone().await.get(&csm) {
                    Some(read) => *read,
                    None => self.app.store.get_window(&req.tenant_id, &req.to).await?,
                };
                window.is_some_and(|w| w.is_open(now, cfg.window_margin.as_secs() as i64))
            }
            _ => false,
        };
        if free_form {
            let text = req.text.as_deref().unwrap_or_default();
            match self.call(tenant, &text_message(req, text)).await {
                Err(e) if classify(&e) == Class::OutsideWindow => {
                    info!("Meta says the window is closed (131047); closing it and sending the template now");
                    self.app
                        .store
                        .close_window(&req.tenant_id, &req.to, now, now)
                        .await?;
                }
                result => {
                    return self
                        .conclude(
                            cx,
                            req,
                            body,
                            token,
                            SendMode::FreeForm,
                            None,
                            result,
                            receive_count,
                        )
                        .await
                }
            }
        }
        let def = self.catalog.choose(req.event, req.health, req.premium);
        let status = self.template_status(&req.tenant_id, def).await?;
        if status != APPROVED {
            return self
                .template_not_ready(cx, req, body, entry, token, def, &status, now)
                .await;
        }
        let component = match def.send_component(&req.params) {
            Ok(c) => c,
            Err(e) => {
                let reason = ParkReason {
                    reason: "invalid_request:template_params".into(),
                    detail: e.to_string(),
                    meta_code: None,
                    meta_title: None,
                };
                return self.park(cx, req, body, Some(token), reason).await;
            }
        };
        let message = template_message(req, component);
        let result = self.call(tenant, &message).await;
        self.conclude(
            cx,
            req,
            body,
            token,
            SendMode::Template,
            Some(def.name.as_str()),
            result,
            receive_count,
        )
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
                Err(GraphError::Http { http_status: 503 })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        body: &str,
        token: &str,
        mode: SendMode,
        template: Option<&str>,
        result: Result<SendResponse, GraphError>,
        receive_count: u32,
    ) -> Result<Disposition, SenderError> {
        let store = &self.app.store;
        let now = self.app.clock.now();
        let err = match result {
            Ok(resp) => {
                if self.crashes_at(CrashPoint::AfterSend) {
                    warn!("simulated crash after send");
                    return Ok(Disposition::RetryAfter(0));
                }
                let wamid = resp
                    .messages
                    .first()
                    .map(|m| m.id.clone())
                    .unwrap_or_default();
                if !store
                    .record_sent(
                        &req.tenant_id,
                        &req.idempotency_key,
                        token,
                        mode,
                        template,
                        &wamid,
                        now,
                    )
                    .await?
                {
                    error!(wamid = %wamid, "sent, but the claim was taken over meanwhile (lease too short?)");
                }
                info!(mode = mode.as_str(), template, wamid = %wamid, csm = %req.to.masked(), "alert sent");
                cx.outcome(
                    req,
                    "sent",
                    Some(mode),
                    template.map(str::to_string),
                    Some(wamid),
                    None,
                );
                return Ok(Disposition::Done);
            }
            Err(e) => e,
        };
        let class = classify(&err);
        let code = err.code();
        let detail = describe(&err);
        match class {
            Class::Transient | Class::AuthExpired | Class::OutsideWindow => {
                if receive_count >= self.app.config.sender.max_attempts {
                    let reason = ParkReason {
                        reason: "max_attempts".into(),
                        detail: format!("gave up after {receive_count} attempts; last: {detail}"),
                        meta_code: code,
                        meta_title: meta_title(&err),
                    };
                    return self.park(cx, req, body, Some(token), reason).await;
                }
                store
                    .record_retry(&req.tenant_id, &req.idempotency_key, token, &detail, now)
                    .await?;
                let hint = match &err {
                    GraphError::Api {
                        retry_after_secs, ..
                    } => *retry_after_secs,
                    _ => None,
                };
                let delay = backoff_secs(receive_count, hint);
                warn!(error = %detail, delay, "transient failure; will retry");
                Ok(Disposition::RetryAfter(delay))
            }
            Class::Ambiguous => {
                let delay = self.app.config.sender.ambiguous_delay.as_secs() as i64;
                store
                    .record_ambiguous(
                        &req.tenant_id,
                        &req.idempotency_key,
                        token,
                        &detail,
                        now + delay,
                        mode,
                        template,
                        now,
                    )
                    .await?;
                warn!(error = %detail, decide_in = delay, "send outcome unknown; parked as ambiguous until a status arrives or decide_at passes");
                cx.outcome(
                    req,
                    "ambiguous",
                    Some(mode),
                    template.map(str::to_string),
                    None,
                    Some(detail),
                );
                Ok(Disposition::RetryAfter(i32::try_from(delay).unwrap_or(600)))
            }
            Class::Undeliverable => {
                store
                    .flag_undeliverable(&req.tenant_id, &req.to, 131026, now)
                    .await?;
                warn!(csm = %req.to.masked(), "Meta says the CSM's number is not a usable WhatsApp account (131026); flagged undeliverable, alert parked");
                let reason = ParkReason {
                    reason: "undeliverable_number".into(),
                    detail,
                    meta_code: code,
                    meta_title: meta_title(&err),
                };
                self.park(cx, req, body, Some(token), reason).await
            }
            Class::Permanent => {
                let reason = ParkReason {
                    reason: "meta_permanent".into(),
                    detail,
                    meta_code: code,
                    meta_title: meta_title(&err),
                };
                self.park(cx, req, body, Some(token), reason).await
            }
        }
    }

    /// The template's status at Meta as recorded (`NOT_SUBMITTED` if we have
    /// no record), from a short cache: an APPROVED answer is trusted for a
    /// minute, anything else for seconds so an approval is seen soon.
    async fn template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<String, SenderError> {
        let key = (
            tenant.clone(),
            def.name.as_str().to_string(),
            def.language.clone(),
        );
        let status = self
            .template_statuses
            .get_or_load(&key, || async {
                let status = self
                    .app
                    .store
                    .get_template(tenant, def.name.as_str(), &def.language)
                    .await?
                    .map(|t| t.status)
                    .unwrap_or_else(|| "NOT_SUBMITTED".into());
                let ttl = if status == APPROVED {
                    APPROVED_TTL
                } else {
                    UNAPPROVED_TTL
                };
                Ok::<_, SenderError>((status, ttl))
            })
            .await?;
        Ok(status)
    }

    /// The template is not approved: wait (it may be PENDING) until
    /// `deliver_by` or `TEMPLATE_WAIT_LIMIT_SECS` from the first attempt, then park.
    #[allow(clippy::too_many_arguments)]
    async fn template_not_ready(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        body: &str,
        entry: &LedgerEntry,
        token: &str,
        def: &TemplateDef,
        status: &str,
        now: i64,
    ) -> Result<Disposition, SenderError> {
        let limit = req.deliver_by.unwrap_or(
            entry.created_at + self.app.config.sender.template_wait_limit.as_secs() as i64,
        );
        if now + i64::from(TEMPLATE_RECHECK_SECS) > limit {
            let reason = ParkReason {
                reason: "template_not_approved".into(),
                detail: format!("template {} is {status}", def.name),
                meta_code: None,
                meta_title: None,
            };
            return self.park(cx, req, body, Some(token), reason).await;
        }
        self.app
            .store
            .record_retry(
                &req.tenant_id,
                &req.idempotency_key,
                token,
                &format!("template {} is {status}", def.name),
                now,
            )
            .await?;
        warn!(template = %def.name, status, "template not approved yet; waiting");
        Ok(Disposition::RetryAfter(TEMPLATE_RECHECK_SECS))
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
        // The tenant's parked count for the status API. A failure is logged
        // and not retried: re-running the park would put a second copy in
        // the DLQ for the sake of a counter.
        if let Err(e) = self
            .app
            .store
            .count_parked(&req.tenant_id, self.app.clock.now())
            .await
        {
            warn!(error = %e, "could not count the parked alert for the tenant");
        }
        self.app
            .store
            .record_final(
                &req.tenant_id,
                &req.idempotency_key,
                token,
                LedgerState::Parked,
                &format!("{}: {}", reason.reason, reason.detail),
                Some(body),
                self.app.clock.now(),
            )
            .await?;
        warn!(reason = %reason.reason, meta_code = reason.meta_code, "alert parked in the DLQ");
        cx.outcome(req, "parked", None, None, None, Some(reason.reason.clone()));
        Ok(Disposition::Done)
    }
}

/// The CSMs' windows as read for a batch: a CSM missing here is read alone.
type Windows = HashMap<(TenantId, E164), Option<Window>>;

/// A record's body, read once for the batch: the window read and the
/// record's own processing both start from it.
enum RecordBody {
    Handback(Handback),
    Request(Result<SendRequest, InvalidRequest>),
}

impl RecordBody {
    fn read(body: &str) -> Self {
        match Handback::detect(body) {
            Some(handback) => RecordBody::Handback(handback),
            None => RecordBody::Request(SendRequest::parse(body)),
        }
    }
}

/// The CSMs of the requests that may go as free-form text: the ones whose
/// windows the batch reads.
fn free_form_csms(bodies: &[RecordBody]) -> Vec<(TenantId, E164)> {
    bodies
        .iter()
        .filter_map(|b| match b {
            RecordBody::Request(Ok(req)) if req.text.is_some() => {
                Some((req.tenant_id.clone(), req.to.clone()))
            }
            _ => None,
        })
        .collect()
}

/// What one record's processing shares with the rest of its batch.
struct InBatch<'b> {
    /// The batch's one window read, awaited by the records that need it.
    windows: Shared<BoxFuture<'b, Arc<Windows>>>,
    /// The record's outcome events, published with the batch's.
    events: Mutex<Vec<Event>>,
}

impl InBatch<'_> {
    /// Queues the record's outcome event; [`Sender::handle_batch`]
    /// publishes it with the batch's.
    fn outcome(
        &self,
        req: &SendRequest,
        outcome: &str,
        mode: Option<SendMode>,
        template: Option<String>,
        wamid: Option<String>,
        reason: Option<String>,
    ) {
        let event = Event::SendOutcome {
            tenant_id: req.tenant_id.to_string(),
            idempotency_key: req.idempotency_key.to_string(),
            outcome: outcome.to_string(),
            mode: mode.map(|m| m.as_str().to_string()),
            template,
            wamid,
            reason,
        };
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }
    /// Queues again the outcome event of an alert that finished earlier.
    ///
    /// A request delivered after its alert finished may be the redelivery of
    /// a record whose batch could not publish its events; nothing tells the
    /// two apart without a write per message, so the outcome always goes out
    /// again. An event repeated (same key, outcome and wamid) is one a
    /// consumer drops; an event lost is gone.
    fn repeat_outcome(&self, req: &SendRequest, entry: &LedgerEntry) {
        match entry.state {
            LedgerState::Sent => self.outcome(
                req,
                "sent",
                entry.mode,
                entry.template.clone(),
                entry.wamid.clone(),
                None,
            ),
            LedgerState::Expired => {
                self.outcome(req, "expired", None, None, None, entry.last_error.clone())
            }
            LedgerState::Parked => {
                // Stored as "reason: detail"; the event carries the reason.
                let reason = entry.last_error.as_deref().map(|e| {
                    e.split_once(": ")
                        .map_or(e, |(reason, _)| reason)
                        .to_string()
                });
                self.outcome(req, "parked", None, None, None, reason)
            }
            _ => {}
        }
    }
    fn into_events(self) -> Vec<Event> {
        self.events.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

enum Resume {
    Proceed(LedgerEntry),
    Stop(Disposition),
}

fn text_message(req: &SendRequest, text: &str) -> serde_json::Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": req.to.as_str(),
        "type": "text",
        "text": {"preview_url": false, "body": text},
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    })
}

fn template_message(req: &SendRequest, template: serde_json::Value) -> serde_json::Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": req.to.as_str(),
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    })
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
