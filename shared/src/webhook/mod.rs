//! The webhook function: Meta's verification handshake (GET) and the signed,
//! idempotent intake (POST) of `/webhooks/whatsapp`.
//!
//! Meta calls one URL for every tenant, delivers at least once, in no
//! particular order, and retries a body for days until it gets a 200. So:
//!
//! 1. Nothing is trusted before the signature: the body is only read far
//!    enough to find the tenant (`entry[].id`, `metadata.phone_number_id`);
//!    the tenant's app secret then verifies the exact raw bytes.
//! 2. Every write is conditional, so a replayed body, or the same message in
//!    two bodies, changes state once and publishes one event.
//! 3. A body is answered 200 only when all its writes are done and their
//!    events published; any failure answers 500 so Meta retries, and the
//!    retry is harmless (see 2). Each change is written with a mark that its
//!    event is owed, cleared once the event is published, so an event that
//!    did not go out (a crash, a refused publish) is published by the retry
//!    that finds the change already made ([`crate::owed`]).
//!
//! | request | answer |
//! |---|---|
//! | GET with `hub.mode=subscribe`, a tenant's verify token, `hub.challenge` | 200, the challenge byte for byte, `text/plain` |
//! | GET with a wrong token | 403 |
//! | GET with missing or malformed parameters | 400 |
//! | POST larger than `WEBHOOK_MAX_BODY_BYTES` (default 3 MiB) | 413 |
//! | POST without a well-formed `X-Hub-Signature-256` | 401 |
//! | POST that is not JSON / not a WhatsApp webhook (tenant cannot be read) | 400 |
//! | POST holding more than Meta sends in one body: over 1000 entries, changes, messages, statuses, contacts or errors ([`payload::MAX_PER_LIST_KIND`]); read no further | 400 |
//! | POST naming no tenant (no `entry[].id` / `metadata.phone_number_id` that is a valid id, 1 to 32 digits; invalid ids are never looked up), an unknown one, or several | 401 |
//! | POST whose signature does not verify, or whose app secret cannot be loaded | 401 |
//! | POST, verified, processed | 200 |
//! | POST, verified, a store or queue failure | 500 (Meta retries) |
//! | other methods | 405 |

mod account;
pub mod lambda;
pub mod payload;
mod respond;
pub mod signature;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{HeaderMap, Method};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tracing::{info, warn, Instrument};

use crate::addressing::{follow_change, identify};
use crate::costs::CostKey;
use crate::events::{Event, EventCsm, EventError, EventPricing};
use crate::identity::Identity;
use crate::ids::IdempotencyKey;
use crate::owed::{publish_owed, Mark, Owed};
use crate::phone::E164;
use crate::queues::QueueError;
use crate::secrets::SecretsError;
use crate::sender::message::{Control, ReleaseWhy};
use crate::startup::App;
use crate::store::{
    verify_token_digest, AliasKind, Change, StatusChange, StoreError, TemplateChangeAt,
    TemplateStatusChange, WINDOW_SECS,
};
use crate::templates::status::TemplateStatus;
use crate::tenants::{DirectoryError, Tenant};
use payload::{
    DeliveryStatus, IdentityChange, IdentityChangeKind, InboundMessage, Intake, StatusUpdate,
    TemplateChange, TemplateUpdate,
};

/// How many writes of one body run at once.
const WRITE_CONCURRENCY: usize = 16;

/// Meta's error code for a free-form message outside the 24-hour window.
pub const CODE_OUTSIDE_WINDOW: i64 = 131047;
/// Meta's error code for a number that is not a usable WhatsApp account.
pub const CODE_UNDELIVERABLE: i64 = 131026;

/// An HTTP request as the handler sees it, whatever carried it (API Gateway
/// through `lambda_http`, the local runner's axum server, a test).
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: Method,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl WebhookResponse {
    fn text(status: u16, body: impl Into<Bytes>) -> Self {
        WebhookResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Why a request was refused. Mapped to a status once, in [`Refusal::status`];
/// the answer's body is the short public text, never the internals.
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("missing or malformed hub.* parameters")]
    BadHandshake,
    #[error("verify token does not match")]
    WrongVerifyToken,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error(transparent)]
    Payload(#[from] payload::PayloadError),
    #[error("body names no tenant, an unknown one, or several")]
    TenantNotFound,
    #[error("tenant secrets could not be loaded")]
    SecretsUnavailable(#[source] DirectoryError),
    #[error("directory lookup failed")]
    Directory(#[source] DirectoryError),
    #[error("store write failed")]
    Store(#[from] StoreError),
    #[error("queue write failed")]
    Queue(#[from] QueueError),
    /// A change of this body was applied by another delivery of it moments
    /// ago, whose event may be going out right now: Meta's retry settles it.
    #[error("another delivery of this body is publishing one of its events")]
    EventInFlight,
    #[error("method not allowed")]
    Method,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadHandshake | Refusal::Payload(_) => 400,
            Refusal::WrongVerifyToken => 403,
            Refusal::TooLarge(_) => 413,
            Refusal::Signature(_) | Refusal::TenantNotFound | Refusal::SecretsUnavailable(_) => 401,
            Refusal::Method => 405,
            Refusal::Directory(_)
            | Refusal::Store(_)
            | Refusal::Queue(_)
            | Refusal::EventInFlight => 500,
        }
    }

    fn public_text(&self) -> &'static str {
        match self.status() {
            400 => "bad request",
            401 => "unauthorized",
            403 => "forbidden",
            405 => "method not allowed",
            413 => "payload too large",
            _ => "internal error",
        }
    }
}

/// Serves one request.
pub async fn handle(app: &App, req: WebhookRequest) -> WebhookResponse {
    let span = tracing::info_span!("webhook", method = %req.method, tenant = tracing::field::Empty);
    async move {
        let result = match req.method {
            Method::GET => handshake(app, req.query.as_deref()).await,
            Method::POST => intake(app, &req.headers, &req.body).await,
            _ => Err(Refusal::Method),
        };
        match result {
            Ok(resp) => resp,
            Err(refusal) => {
                let status = refusal.status();
                if matches!(refusal, Refusal::EventInFlight) {
                    info!(status, reason = %refusal, "webhook answered 500 so that Meta retries it later");
                } else if status >= 500 {
                    tracing::error!(status, error = %refusal, source = ?std::error::Error::source(&refusal).map(|s| s.to_string()), "webhook failed; Meta will retry");
                } else {
                    warn!(status, reason = %refusal, "webhook refused");
                }
                WebhookResponse::text(status, refusal.public_text())
            }
        }
    }
    .instrument(span)
    .await
}

async fn handshake(app: &App, query: Option<&str>) -> Result<WebhookResponse, Refusal> {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "hub.mode" => mode = Some(v.into_owned()),
            "hub.verify_token" => token = Some(v.into_owned()),
            "hub.challenge" => challenge = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(mode), Some(token), Some(challenge)) = (mode, token, challenge) else {
        return Err(Refusal::BadHandshake);
    };
    if mode != "subscribe" || token.is_empty() || challenge.is_empty() || challenge.len() > 1024 {
        return Err(Refusal::BadHandshake);
    }
    let tenant = app
        .directory
        .tenant_by(AliasKind::VerifyTokenDigest, &verify_token_digest(&token))
        .await
        .map_err(Refusal::Directory)?
        .ok_or(Refusal::WrongVerifyToken)?;
    let secrets = match app.directory.secrets(&tenant).await {
        Ok(secrets) => secrets,
        // A placeholder or too-short secret can verify nothing; the
        // directory has logged which one and why.
        Err(DirectoryError::Secrets(SecretsError::Weak(_))) => {
            return Err(Refusal::WrongVerifyToken)
        }
        Err(e) => return Err(Refusal::Directory(e)),
    };
    let matches: bool = secrets
        .verify_token
        .expose_secret()
        .as_bytes()
        .ct_eq(token.as_bytes())
        .into();
    if !matches {
        return Err(Refusal::WrongVerifyToken);
    }
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    info!("verification handshake answered");
    Ok(WebhookResponse::text(200, challenge))
}

async fn intake(app: &App, headers: &HeaderMap, body: &Bytes) -> Result<WebhookResponse, Refusal> {
    if body.len() > app.config.webhook_max_body_bytes {
        return Err(Refusal::TooLarge(app.config.webhook_max_body_bytes));
    }
    let digest = signature::parse_header(headers.get(signature::HEADER).map(|v| v.as_bytes()))?;
    // Read before it is trusted: the ids in it name the tenant, and so the
    // app secret. Nothing in it is acted on until the signature matches.
    let intake = payload::parse(body)?;
    let tenant = find_tenant(app, &intake).await?;
    tracing::Span::current().record("tenant", tenant.tenant_id.as_str());
    let secrets = app
        .directory
        .secrets(&tenant)
        .await
        .map_err(Refusal::SecretsUnavailable)?;
    secrets.webhook_key().verify(body, &digest)?;

    let outcome = act(app, &tenant, &intake).await?;
    note_last_webhook(app, &tenant.tenant_id).await;
    info!(
        messages = intake.messages.len(),
        statuses = intake.statuses.len(),
        template_updates = intake.template_updates.len(),
        account_updates = intake.account_updates.len(),
        skipped = intake.skipped.len(),
        events = outcome,
        "webhook processed"
    );
    Ok(WebhookResponse::text(200, "OK"))
}

/// How often one instance records a tenant's "last webhook" time: the
/// status API's figure is exact to this many seconds, and a tenant sending
/// hundreds of bodies a second costs one write per instance per interval.
pub const LAST_SEEN_EVERY_SECS: u64 = 5;

/// Tenants this instance recorded recently (see [`LAST_SEEN_EVERY_SECS`]).
/// Process-wide, like the warm instance it describes.
static LAST_SEEN: std::sync::LazyLock<crate::cache::TtlMap<crate::ids::TenantId, ()>> =
    std::sync::LazyLock::new(crate::cache::TtlMap::new);

/// Records when a verified body last arrived (for the status API). Only
/// after the body's own writes, so a forged body never moves it. A failure
/// is logged, not answered 500: it is a status figure, and Meta's retry
/// would redo the whole body for it.
async fn note_last_webhook(app: &App, tenant: &crate::ids::TenantId) {
    if LAST_SEEN.get(tenant).is_some() {
        return;
    }
    match app.store.touch_last_webhook(tenant, app.clock.now()).await {
        Ok(()) => LAST_SEEN.put(
            tenant.clone(),
            (),
            std::time::Duration::from_secs(LAST_SEEN_EVERY_SECS),
        ),
        Err(e) => warn!(error = %e, "could not record the last webhook time"),
    }
}

/// The one tenant a body belongs to. Every WABA id and phone number id in it
/// must name the same configured tenant.
async fn find_tenant(app: &App, ids: &Intake<'_>) -> Result<Tenant, Refusal> {
    let lookups = ids.waba_ids.iter().map(|w| (AliasKind::Waba, w)).chain(
        ids.phone_number_ids
            .iter()
            .map(|p| (AliasKind::PhoneNumberId, p)),
    );
    let mut tenant: Option<Tenant> = None;
    for (kind, value) in lookups {
        let found = app
            .directory
            .tenant_by(kind, value)
            .await
            .map_err(Refusal::Directory)?
            .ok_or(Refusal::TenantNotFound)?;
        if tenant
            .as_ref()
            .is_some_and(|t| t.tenant_id != found.tenant_id)
        {
            return Err(Refusal::TenantNotFound);
        }
        tenant = Some(found);
    }
    tenant.ok_or(Refusal::TenantNotFound)
}

/// Applies a verified body. Returns how many events were published.
async fn act(app: &App, tenant: &Tenant, intake: &Intake<'_>) -> Result<usize, Refusal> {
    let now = app.clock.now();
    // Boxed so the borrowed futures have one concrete type (and the
    // handler's future stays `Send` under lambda_http).
    type ActionFuture<'f> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<Owed<'f>>, Refusal>> + Send + 'f>,
    >;
    // Before the messages: a message in the same body may come from the id
    // the change introduced.
    for c in &intake.identity_changes {
        on_identity_change(app, tenant, c, now).await?;
    }
    let mut futures: Vec<ActionFuture<'_>> = Vec::new();
    for m in &intake.messages {
        futures.push(Box::pin(on_message(app, tenant, m, now)));
    }
    for s in &intake.statuses {
        futures.push(Box::pin(async move {
            Ok(on_status(app, tenant, s, now).await?.into_iter().collect())
        }));
    }
    for u in &intake.account_updates {
        futures.push(Box::pin(account::on_account(app, tenant, u, now)));
    }
    for t in &intake.template_updates {
        futures.push(Box::pin(async move {
            Ok(on_template(app, tenant, t, now)
                .await?
                .into_iter()
                .collect())
        }));
    }
    // Every action runs to its end, even when another fails: the events of
    // the writes that did apply are published now (or kept for Meta's retry).
    let results: Vec<Result<Vec<Owed<'_>>, Refusal>> = stream::iter(futures)
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let mut produced = Vec::new();
    let mut failed = None;
    for r in results {
        match r {
            Ok(p) => produced.extend(p),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let published = publish_owed(app, &tenant.tenant_id, produced).await?;
    match failed {
        Some(e) => Err(e),
        None => Ok(published),
    }
}

/// An inbound CSM message opens or refreshes the window (idempotent, never
/// shrinks), then is recorded once; only the first sighting publishes. A
/// message that answers an alert is also recorded as its response, once,
/// with an `alert.response` event of its own ([`respond`]).
async fn on_message<'a>(
    app: &App,
    tenant: &Tenant,
    m: &'a InboundMessage<'_>,
    now: i64,
) -> Result<Vec<Owed<'a>>, Refusal> {
    let t = &tenant.tenant_id;
    let ids = m.sender();
    let Some(who) = identify(&app.store, t, ids, now).await? else {
        warn!(message_id = %m.id, "inbound message naming neither a wa_id nor a user id Meta uses for a person; skipped");
        return Ok(Vec::new());
    };
    // Its own record and mark, so a response whose event is still owed is
    // published by Meta's retry even when the message's own event went out.
    let response = respond::response_of(app, t, m, &who, ids, now).await?;
    let mut owed: Vec<Owed<'a>> = response.into_iter().collect();
    let csm = m.from.as_deref().and_then(|f| E164::from_wa_id(f).ok());
    app.store.open_window(t, &who, m.timestamp, &m.id).await?;
    // Alerts held for their template can go to this CSM as free-form text
    // now. Before the sighting check, so Meta's retry asks again if this
    // failed.
    if app.store.csm_has_waiting(t, &who).await? {
        release(app, t, ReleaseWhy::WindowOpened).await?;
    }
    match app.store.record_sighting(t, "msg", &m.id, now).await? {
        Change::Applied | Change::Owed => {}
        Change::InFlight => return Err(Refusal::EventInFlight),
        Change::Unchanged => return Ok(owed),
    }
    info!(csm = %who, message_id = %m.id, kind = %m.kind, "CSM message received; window open");
    let event = Event::CsmMessageReceived {
        tenant_id: t.to_string(),
        csm: csm.map(|c| c.to_string()),
        who: EventCsm::of(&who, ids),
        message_id: m.id.to_string(),
        kind: m.kind.to_string(),
        timestamp: m.timestamp,
        text: m.text.as_deref().map(str::to_owned),
        window_expires_at: m.timestamp + WINDOW_SECS,
    };
    owed.insert(
        0,
        Owed {
            event,
            mark: Mark::Sighting { message_id: &m.id },
        },
    );
    Ok(owed)
}

/// A user's number or BSUID changed: their new ids lead to the same person,
/// so a reply from the new id opens the window the alerts look for.
/// Idempotent (linking an alias twice changes nothing), so no sighting.
async fn on_identity_change(
    app: &App,
    tenant: &Tenant,
    c: &IdentityChange<'_>,
    now: i64,
) -> Result<(), Refusal> {
    let t = &tenant.tenant_id;
    let who = follow_change(&app.store, t, c.previous.as_ref(), c.current.as_ref(), now).await?;
    match (&who, c.kind) {
        (None, _) => {
            warn!(
                kind = c.kind.as_str(),
                "identity change naming no earlier id; nothing to follow"
            )
        }
        (Some(Identity::Csm(csm_id)), IdentityChangeKind::UserChangedNumber) => {
            warn!(%csm_id, "a roster CSM changed their WhatsApp number; their replies from it are followed, but alerts still go to the roster's number until the roster is updated")
        }
        (Some(who), _) => info!(csm = %who, kind = c.kind.as_str(), "identity change followed"),
    }
    Ok(())
}

/// A delivery status moves the message record forward only. A 131047
/// failure hands the alert back to the sender for a template (before the
/// status is recorded, so a crash in between is repaired by Meta's retry).
async fn on_status<'a>(
    app: &App,
    tenant: &Tenant,
    s: &'a StatusUpdate<'_>,
    now: i64,
) -> Result<Option<Owed<'a>>, Refusal> {
    let Some(rank) = s.status.rank() else {
        return Ok(None);
    };
    let t = &tenant.tenant_id;
    let key = s
        .biz_opaque_callback_data
        .as_deref()
        .and_then(|k| IdempotencyKey::parse(k).ok());
    // `recipient_id` is absent when the message was addressed by BSUID.
    let recipient_id = s.recipient_id.as_deref().unwrap_or_default();
    let recipient = E164::from_wa_id(recipient_id).ok();
    let ids = s.recipient();
    // One read of the recipient's aliases (a write only for an id not yet
    // theirs): the event names the person, and a BSUID Meta reports beside
    // a number is learned.
    let who = identify(&app.store, t, ids, now).await?;
    if s.status == DeliveryStatus::Failed {
        let codes: Vec<i64> = s.errors.iter().map(|e| e.code).collect();
        if codes.contains(&CODE_OUTSIDE_WINDOW) {
            if let Some(who) = &who {
                app.store.close_window(t, who, s.timestamp, now).await?;
            }
            if let Some(key) = &key {
                let handback = crate::sender::message::Control::handback(
                    t.clone(),
                    key.clone(),
                    s.id.to_string(),
                );
                app.queues.enqueue_send(&handback.to_json()).await?;
                info!(wamid = %s.id, idempotency_key = %key, "free-form message refused outside the window; handed back for a template");
            }
        }
        if let Some(key) = &key {
            hand_refusal_to_sender(app, t, key, s).await?;
        }
        if codes.contains(&CODE_UNDELIVERABLE) {
            if let Some(csm) = &recipient {
                app.store
                    .flag_undeliverable(t, csm, CODE_UNDELIVERABLE, now)
                    .await?;
                warn!(csm = %csm.masked(), "Meta says the CSM's number is not a usable WhatsApp account (131026); flagged undeliverable");
            }
        }
    }
    let errors_json =
        (!s.errors.is_empty()).then(|| serde_json::to_string(&s.errors).unwrap_or_default());
    let written = app
        .store
        .apply_status(&StatusChange {
            tenant: t,
            wamid: &s.id,
            status: s.status.as_str(),
            rank,
            timestamp: s.timestamp,
            recipient_id,
            errors_json,
            callback_key: key.as_ref(),
            now,
        })
        .await?;
    if !written.cost_counted {
        count_cost(app, t, s).await?;
    }
    match written.change {
        Change::Applied | Change::Owed => {}
        Change::InFlight => return Err(Refusal::EventInFlight),
        Change::Unchanged => return Ok(None),
    }
    let event = Event::MessageStatusChanged {
        tenant_id: t.to_string(),
        wamid: s.id.to_string(),
        idempotency_key: key.map(|k| k.to_string()),
        status: s.status.as_str().to_string(),
        timestamp: s.timestamp,
        errors: s
            .errors
            .iter()
            .map(|e| EventError {
                code: e.code,
                title: e.title.as_deref().map(str::to_owned),
            })
            .collect(),
        recipient: who.as_ref().map(|w| EventCsm::of(w, ids)),
        pricing: s.pricing.as_ref().map(|p| EventPricing {
            billable: CostKey::of(p, s.recipient_id.as_deref()).billable(),
            pricing_model: p.pricing_model.as_deref().map(str::to_owned),
            category: p.category.as_deref().map(str::to_owned),
            kind: p.kind.as_deref().map(str::to_owned),
        }),
    };
    Ok(Some(Owed {
        event,
        mark: Mark::Status {
            wamid: &s.id,
            status: s.status.as_str(),
        },
    }))
}

/// Counts a delivered message in the tenant's cost ledger, once
/// ([`crate::costs`]). Meta charges on delivery, so only a `delivered` or
/// `read` status (delivery implied: Meta may skip `delivered`) that
/// carries `pricing` counts; whichever of them comes first counts, a replay
/// or the other finds the message counted. Done before the status's event
/// is answered for, so a failure is retried by Meta with the count still
/// owed.
async fn count_cost(
    app: &App,
    tenant: &crate::ids::TenantId,
    s: &StatusUpdate<'_>,
) -> Result<(), Refusal> {
    let (Some(pricing), DeliveryStatus::Delivered | DeliveryStatus::Read) = (&s.pricing, &s.status)
    else {
        return Ok(());
    };
    let key = CostKey::of(pricing, s.recipient_id.as_deref());
    let day_start = s.timestamp - s.timestamp.rem_euclid(86_400);
    let day = crate::admin::when::iso8601(day_start);
    let day = day.get(..10).unwrap_or(&day);
    if app
        .store
        .count_cost(tenant, &s.id, day, day_start, &key)
        .await?
    {
        info!(wamid = %s.id, category = %key.category, pricing_type = %key.kind, country = %key.country, day, "delivered message counted in the cost ledger");
    }
    Ok(())
}

/// A `failed` status whose code changes what becomes of the alert (131049,
/// 131042, 131050, ...: [`crate::sender::classify::acted_on_after_acceptance`])
/// goes to the sender, which concludes the alert as if the send had answered
/// with it. Queued before the status is recorded, like the 131047 hand-back;
/// a refusal queued twice acts once (the sender's claim needs the alert
/// still `sent` with this wamid).
async fn hand_refusal_to_sender(
    app: &App,
    tenant: &crate::ids::TenantId,
    key: &IdempotencyKey,
    s: &StatusUpdate<'_>,
) -> Result<(), Refusal> {
    use crate::sender::classify::acted_on_after_acceptance;
    use crate::sender::message::RefusalError;
    let Some(e) = s.errors.iter().find(|e| acted_on_after_acceptance(e.code)) else {
        return Ok(());
    };
    let refused = Control::refused(
        tenant.clone(),
        key.clone(),
        s.id.to_string(),
        RefusalError {
            code: e.code,
            title: e.title.as_deref().map(str::to_owned),
            details: e.details.as_deref().map(str::to_owned),
        },
    );
    app.queues.enqueue_send(&refused.to_json()).await?;
    info!(wamid = %s.id, idempotency_key = %key, code = e.code, "Meta refused an accepted message; handed to the sender");
    Ok(())
}

/// Template status, quality and category updates land on the template record;
/// the ones an operator must see are logged at warn.
async fn on_template<'a>(
    app: &App,
    tenant: &Tenant,
    u: &'a TemplateUpdate,
    now: i64,
) -> Result<Option<Owed<'a>>, Refusal> {
    let (Some(name), Some(language)) = (u.name.as_deref(), u.language.as_deref()) else {
        return Ok(None);
    };
    let ts = u.entry_time.unwrap_or(now);
    let change = match &u.change {
        TemplateChange::Status { event, reason } => TemplateStatusChange::Status {
            status: event,
            reason: reason.as_deref(),
        },
        TemplateChange::Quality { new, .. } => TemplateStatusChange::Quality { score: new },
        TemplateChange::Category {
            new,
            effective_at: None,
            ..
        } => TemplateStatusChange::Category { category: new },
        // An announced future change, or a components edit: nothing to record yet.
        TemplateChange::Category { .. } | TemplateChange::Components => return Ok(None),
    };
    let changed = app
        .store
        .apply_template_change(
            &tenant.tenant_id,
            &TemplateChangeAt {
                name,
                language,
                template_id: u.template_id.as_deref(),
                change: &change,
                at: ts,
                event_owed_at: Some(now),
            },
        )
        .await?;
    // Alerts waiting for this template are sent (approved) or parked
    // (rejected, disabled). Asked on every delivery of the webhook, so
    // Meta's retry asks again if this failed; a release with nothing to
    // do costs one query.
    if let TemplateStatusChange::Status { status, .. } = &change {
        if TemplateStatus::from_meta(Some(status)).wakes_waiting_alerts() {
            release(app, &tenant.tenant_id, ReleaseWhy::TemplateStatus).await?;
        }
    }
    match changed {
        Change::Applied | Change::Owed => {}
        Change::InFlight => return Err(Refusal::EventInFlight),
        Change::Unchanged => return Ok(None),
    }
    let (status, reason, quality, category) = match &change {
        TemplateStatusChange::Status { status, reason } => (
            Some(status.to_string()),
            reason.map(str::to_string),
            None,
            None,
        ),
        TemplateStatusChange::Quality { score } => (None, None, Some(score.to_string()), None),
        TemplateStatusChange::Category { category } => {
            (None, None, None, Some(category.to_string()))
        }
    };
    if matches!(
        status.as_deref(),
        Some("REJECTED" | "PAUSED" | "DISABLED" | "FLAGGED")
    ) {
        warn!(
            template = name,
            language,
            status = status.as_deref(),
            reason = reason.as_deref(),
            "template can no longer be sent"
        );
    } else {
        info!(
            template = name,
            language,
            status = status.as_deref(),
            quality = quality.as_deref(),
            category = category.as_deref(),
            "template updated"
        );
    }
    let event = Event::TemplateStatusChanged {
        tenant_id: tenant.tenant_id.to_string(),
        name: name.to_string(),
        language: language.to_string(),
        status,
        reason,
        quality,
        category,
    };
    Ok(Some(Owed {
        event,
        mark: Mark::Template {
            name,
            language,
            change,
            ts,
        },
    }))
}

/// Asks the sender for a release pass over the tenant's waiting alerts.
async fn release(app: &App, tenant: &crate::ids::TenantId, why: ReleaseWhy) -> Result<(), Refusal> {
    app.queues
        .enqueue_send(&Control::release(tenant.clone(), why).to_json())
        .await?;
    Ok(())
}
