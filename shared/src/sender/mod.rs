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
//! # Where each step lives
//! This module is the orchestration: a batch ([`Sender::handle_batch`]), a
//! record ([`Sender::process`]), a request's way to its claim
//! ([`Sender::deliver`]) and to Meta ([`Sender::send`]). The rest:
//!
//! | module | what it does |
//! |---|---|
//! | `decide.rs` | every decision, as pure functions with unit tests: a key found taken, a send in doubt, free-form or template, what a failure means, the per-user limit, the wait for a template, acknowledging a record |
//! | `attempt.rs` | the one struct an attempt's steps pass along ([`Attempt`]) and the SQS record it arrived in |
//! | `batch.rs` | what a batch's records share: their reads, their outcome events, and publish-then-acknowledge |
//! | `reach.rs` | who a request goes to (roster, alias, undeliverable flag), cached |
//! | `resume.rs` | a key a claim found taken |
//! | `template_gate.rs` | a template's status, and an alert held or parked for it |
//! | `compose.rs` | the message bodies posted to Meta |
//! | `conclude.rs` | Meta's answer, recorded |
//! | `park.rs` | an alert parked: DLQ, ledger, parked list, event |
//! | `outcome.rs` | the `send.outcome` event, from an attempt or from the ledger |
//! | `classify.rs`, `hold.rs`, `refused.rs`, `release.rs`, `pacer.rs` | Meta's codes, the tenant's payment hold, refusals after acceptance, the release pass, pacing |
//! | `handback.rs`, `read_receipt.rs` | the 131047 hand-back, read receipts |
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

mod attempt;
mod batch;
pub mod classify;
mod compose;
mod conclude;
mod decide;
mod handback;
mod hold;
pub mod message;
mod outcome;
pub mod pacer;
mod park;
mod reach;
mod read_receipt;
mod refused;
mod release;
pub mod request;
mod resume;
mod slots;
mod template_gate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::{join_all, FutureExt};
use tracing::{error, info, warn, Instrument};

use crate::addressing::Unaddressable;
use crate::cache::TtlMap;
use crate::events::Fallback;
use crate::graph::{GraphError, SendResponse};
use crate::ids::{IdempotencyKey, TenantId};
use crate::queues::ParkReason;
use crate::responses;
use crate::startup::App;
use crate::store::{
    ClaimOutcome, FinalRecord, LedgerState, Named, NumberRate, SendHold, SendMode, StoreError,
};
use crate::templates::catalog::Catalog;
use crate::templates::status::TemplateStatus;
use crate::tenants::{DirectoryError, Tenant, TokenCallError};
use attempt::{Arrival, Attempt};
use batch::{requests_of, BatchReads, Finished, InBatch, Windows};
use classify::{classify, Class};
use compose::{interactive_message, template_message, text_message};
use conclude::meta_title;
use message::{Control, QueueMessage};
use outcome::Reported;
use pacer::{Pacer, PairLimit, PairSlot};
use reach::{named, Reached};
use request::SendRequest;
use resume::Resume;
use slots::{ClaimMemory, SendSlots};

/// Why a stale alert was not sent.
const STALE: &str = "deliver_by passed before sending";

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
    /// What this instance remembers of its send-slot claims ([`slots`]).
    claims: Arc<ClaimMemory>,
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
        let pacer = Pacer::new(PairLimit {
            burst: cfg.pair_burst,
            interval: cfg.pair_interval,
            max_wait: cfg.pair_max_wait,
        });
        Arc::new(Sender {
            app,
            catalog: Catalog::builtin(),
            pacer,
            template_statuses: TtlMap::new(),
            addressees: TtlMap::new(),
            holds: TtlMap::new(),
            claims: Arc::default(),
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
        let requests = requests_of(&bodies);
        let slots =
            SendSlots::for_records(requests.iter().map(|r| &r.tenant_id), self.claims.clone());
        let windows = self.read_batch(requests).boxed().shared();
        let records = join_all(event.records.iter().zip(bodies).map(|(rec, read)| {
            let span = tracing::info_span!(
                "send",
                sqs_message_id = rec.message_id.as_deref().unwrap_or(""),
                tenant = tracing::field::Empty,
                idempotency_key = tracing::field::Empty
            );
            let cx = InBatch {
                reads: windows.clone(),
                slots: &slots,
                events: Mutex::default(),
            };
            async move {
                let result = self.process(rec, read, &cx).await;
                Finished {
                    rec,
                    result,
                    events: cx.into_events(),
                }
            }
            .instrument(span)
        }));
        // The batch's reads are polled first: the records wait for them.
        let (_, finished) = futures::join!(windows, records);
        self.publish_then_acknowledge(finished).await
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

    /// The tenant of a control message about one alert (a hand-back, a
    /// refusal), with the alert's ids on the record's span; `None` for a
    /// tenant not configured (the message is dropped).
    async fn alert_of(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<Tenant>, SenderError> {
        let span = tracing::Span::current();
        span.record("tenant", tenant.as_str());
        span.record("idempotency_key", key.as_str());
        Ok(self.app.directory.tenant(tenant).await?)
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
                        meta_code: None,
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
            tenant,
            req,
            to: &to,
            body,
            token: &token,
            entry: &entry,
            arrival,
        };
        self.send(cx, &attempt).await
    }

    /// Chooses free-form or template, sends, and records the outcome.
    async fn send(&self, cx: &InBatch<'_>, a: &Attempt<'_>) -> Result<Disposition, SenderError> {
        let tenant = a.tenant;
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
        let mut fallback = decide::fallback(mode, has_text, force_template);
        let reference = a.entry.response_ref.as_deref();
        if mode == SendMode::FreeForm {
            let text = req.text.as_deref().unwrap_or_default();
            // Reply buttons when the text fits an interactive body; plain
            // text otherwise (and for an alert without a reference).
            let message = match reference.and_then(|r| responses::interactive(text, req.event, r)) {
                Some(interactive) => interactive_message(req, a.to, interactive),
                None => text_message(req, a.to, text),
            };
            match self.call(cx, tenant, &message).await {
                Err(e) if classify(&e) == Class::OutsideWindow => {
                    info!("Meta says the window is closed (131047); closing it and sending the template now");
                    self.app
                        .store
                        .close_window(&req.tenant_id, &a.to.identity, now, now)
                        .await?;
                    fallback = Some(Fallback::Meta131047);
                }
                result => {
                    return self
                        .conclude(cx, a, (SendMode::FreeForm, None), None, result)
                        .await
                }
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
        let result = self.call(cx, tenant, &message).await;
        let how = (SendMode::Template, fallback);
        self.conclude(cx, a, how, Some(def.name.as_str()), result)
            .await
    }

    /// One Graph call in one of the number's send slots ([`slots`]), with
    /// one token refresh on 190. The slot is taken once the token is in
    /// hand, right before the call leaves: a cold instance's secret read
    /// must not stand between a slot and its send.
    async fn call(
        &self,
        cx: &InBatch<'_>,
        tenant: &Tenant,
        message: &serde_json::Value,
    ) -> Result<SendResponse, GraphError> {
        let phone = tenant.phone_number_id.as_str();
        let rate = NumberRate {
            per_second: tenant
                .messages_per_second
                .unwrap_or(self.app.config.sender.mps_cap),
        };
        let result = self
            .app
            .directory
            .with_token(tenant, |secrets| async move {
                if let Err(e) = cx
                    .slots
                    .take(&self.app.store, &self.app.clock, tenant, rate)
                    .await
                {
                    warn!(error = %e, "no send slot for the number; the alert is retried");
                    return Err(GraphError::NotSent("no send slot for the number"));
                }
                self.app
                    .graph
                    .send_message(phone, &secrets.access_token, message)
                    .await
            })
            .await;
        match result {
            Ok(sent) => Ok(sent),
            Err(TokenCallError::Graph(e)) => {
                // Counted as it arrives, whatever becomes of the alert
                // (`crate::metrics`, `MetaErrors`).
                if let Some(code) = e.code() {
                    self.app.queues.metrics().meta_error(code);
                }
                Err(e)
            }
            Err(TokenCallError::Secrets(e)) => {
                error!(error = %e, "tenant secrets unavailable");
                Err(GraphError::NotSent("the tenant's token could not be read"))
            }
        }
    }
}
