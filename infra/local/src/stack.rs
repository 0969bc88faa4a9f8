//! The local runner: the four functions on loopback, wired as
//! `template.yaml` wires them, around the *same* handlers Lambda runs.
//!
//! - HTTP (the HTTP API): `GET|POST /webhooks/whatsapp` → `fincelo::webhook::handle`;
//!   `POST|GET /admin/tenants/{tenant_id}/templates` → the template function;
//!   `/admin/tenants/{tenant_id}/{channel,csms,csms/{csm_id},messages/{key},messages/{key}/redrive,parked,costs}` →
//!   `fincelo::admin::handle` (the admin function).
//! - The runner's own control route, local only (no Lambda has it):
//!   `GET /_local/clock` reads the stack's clock, `POST /_local/clock`
//!   `{"advance_secs": N}` moves it forward as [`Stack::advance`] does (the
//!   sweep fires too). `fwa clock advance 30h` calls it; loopback has no
//!   authoriser, like the admin routes here.
//! - The send queue (the SQS event source mapping, [`crate::event_source`]):
//!   pollers that scale as Lambda's do, from five up to the maximum
//!   concurrency (`SENDER_MAX_CONCURRENCY`, the function's own setting),
//!   each receiving up to 10 messages (batch size 10), calling
//!   `Sender::handle_batch`, deleting what succeeded and leaving the reported
//!   failures to reappear after their visibility timeout; the emulator moves a
//!   message to the DLQ after `maxReceiveCount` receives, as SQS does.
//! - The template function is invocable ([`Stack::invoke_templates`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;
use fincelo::admin::{AdminRequest, Caller};
use fincelo::clock::Clock;
use fincelo::config::Config;
use fincelo::ids::{PhoneNumberId, TenantId, WabaId};
use fincelo::secrets::TenantSecrets;
use fincelo::sender::message::Control;
use fincelo::sender::Sender;
use fincelo::startup::App;
use fincelo::store::{verify_token_digest, TenantRecord};
use fincelo::templates::handler::{run as run_templates, Action};
use fincelo::webhook::{handle, WebhookRequest};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::event_source::{Concurrency, Mapping};
use crate::provision::{provision, Overrides, ProvisionError, Resources};

#[derive(Debug, Error)]
pub enum StackError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Config(#[from] fincelo::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] fincelo::startup::StartupError),
    #[error("could not bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("emulator request failed: {0}")]
    Aws(String),
    #[error(transparent)]
    Store(#[from] fincelo::store::StoreError),
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The moto server, e.g. `http://127.0.0.1:5055`.
    pub moto_endpoint: String,
    /// The Graph API base URL (the Meta sandbox).
    pub graph_base_url: String,
    /// Prefix of every resource name: unique per test, `fwa-dev` for `make dev`.
    pub prefix: String,
    /// Where the HTTP API listens (`127.0.0.1:0` picks a port).
    pub http_addr: SocketAddr,
    /// The send queue's event source mapping: its maximum concurrency
    /// (`ScalingConfig.MaximumConcurrency`), given to the functions as
    /// `SENDER_MAX_CONCURRENCY` unless `env` sets that itself; the pollers
    /// scale up to whichever the functions' configuration holds
    /// ([`crate::event_source`]). 0 maps nothing: no poller runs, and a test
    /// drives `Stack::sender` itself.
    pub sender_instances: u32,
    /// Extra configuration, as environment variables would give it.
    pub env: HashMap<String, String>,
    pub overrides: Overrides,
    /// The stack's wall clock: give the Meta sandbox the same one, so both
    /// sides agree when days are compressed into seconds.
    pub time: TimeControl,
    /// The EventBridge schedule that puts the sweep on the send queue
    /// (`SweepSchedule` in template.yaml, every 5 minutes), in real time;
    /// `None` runs it only when asked ([`Stack::sweep`], [`Stack::advance`]).
    pub sweep_every: Option<Duration>,
}

/// The local runner's time control: the offset of the shifted
/// [`Clock`] that the functions (and the sandbox) of a local stack read.
/// Moving it forward is how a test or `make journey` lets 30 hours pass.
#[derive(Debug, Clone, Default)]
pub struct TimeControl {
    offset_ms: Arc<AtomicI64>,
}

impl TimeControl {
    /// The clock that reads this offset.
    pub fn clock(&self) -> Clock {
        Clock::shifted(self.offset_ms.clone())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// How far ahead of the system clock this one is.
    pub fn offset(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.offset_ms.load(Ordering::Relaxed)).unwrap_or(0))
    }

    /// Unix seconds on this clock.
    pub fn now(&self) -> i64 {
        self.clock().now()
    }

    /// The same clock for the Meta sandbox (`SandboxConfig::clock`), so
    /// Meta's side of a local run reads the stack's time: webhook
    /// timestamps, the 24-hour window, template reviews.
    pub fn sandbox_clock(&self) -> meta_sandbox::Clock {
        let clock = self.clock();
        meta_sandbox::Clock::from_fn(move || clock.now_ms())
    }
}

impl StackOptions {
    pub fn new(
        moto_endpoint: impl Into<String>,
        graph_base_url: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        StackOptions {
            moto_endpoint: moto_endpoint.into(),
            graph_base_url: graph_base_url.into(),
            prefix: prefix.into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sender_instances: 2,
            env: HashMap::new(),
            overrides: Overrides::default(),
            time: TimeControl::default(),
            sweep_every: None,
        }
    }
}

/// A tenant as the local stack knows it (secrets included: this is for
/// local runs and tests only).
#[derive(Debug, Clone)]
pub struct LocalTenant {
    pub tenant_id: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
    pub display_phone_number: Option<String>,
    /// The number's send cap; `None` is the stack's `SEND_MPS_CAP`.
    pub messages_per_second: Option<u32>,
}

impl LocalTenant {
    /// A tenant no other run shares: ids of 15 random digits and secrets
    /// made from `name` (`"token-{name}-…"`, `"secret-{name}-…"` long
    /// enough for [`fincelo::secrets::strength`]), for tests and tools that
    /// need one more tenant in a shared emulator.
    pub fn unique(name: &str) -> LocalTenant {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        LocalTenant {
            tenant_id: format!("{name}-{id}"),
            phone_number_id: random_digits(15),
            waba_id: random_digits(15),
            access_token: format!("token-{name}-{id}"),
            app_secret: format!("secret-{name}-{}", uuid::Uuid::new_v4().simple()),
            verify_token: format!("verify-{name}-{id}"),
            display_phone_number: None,
            messages_per_second: None,
        }
    }

    /// The same tenant as the Meta sandbox must know it (its ids, token and
    /// app secret), calling back to `webhook_url`.
    pub fn sandbox_spec(&self, webhook_url: String) -> meta_sandbox::TenantSpec {
        meta_sandbox::TenantSpec {
            phone_number_id: self.phone_number_id.clone(),
            waba_id: self.waba_id.clone(),
            access_token: self.access_token.clone(),
            app_secret: self.app_secret.clone(),
            webhook_url,
            display_phone_number: self.display_phone_number.clone(),
            verified_name: None,
        }
    }
}

/// A random string of `n` (at most 39) digits, the first non-zero.
pub fn random_digits(n: usize) -> String {
    let bytes = uuid::Uuid::new_v4().as_u128();
    let mut s: String = format!("{bytes:039}").chars().rev().take(n).collect();
    if s.starts_with('0') {
        s.replace_range(0..1, "7");
    }
    s
}

/// A running local stack.
pub struct Stack {
    pub resources: Resources,
    pub app: App,
    pub sender: Arc<Sender>,
    pub sdk: aws_config::SdkConfig,
    /// Moves the stack's clock (see [`TimeControl`]).
    pub time: TimeControl,
    http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The send queue's pollers; `None` when `sender_instances` was 0.
    mapping: Option<Mapping>,
}

impl Stack {
    /// Provisions, builds the app from a configuration (the same code path
    /// as the environment in Lambda), and starts HTTP and the pollers.
    pub async fn start(opts: StackOptions) -> Result<Stack, StackError> {
        let sdk = crate::emulator::sdk_config(&opts.moto_endpoint).await?;
        let resources = provision(&sdk, &opts.prefix, &opts.overrides).await?;
        let mut env: HashMap<String, String> = [
            ("TABLE_NAME", resources.table_name.clone()),
            ("SEND_QUEUE_URL", resources.queue("SendQueue").to_string()),
            (
                "SEND_DLQ_URL",
                resources.queue("SendDeadLetterQueue").to_string(),
            ),
            (
                "EVENTS_QUEUE_URL",
                resources.queue("EventsQueue").to_string(),
            ),
            ("TENANT_SECRET_PREFIX", format!("{}/tenants/", opts.prefix)),
            ("GRAPH_API_BASE_URL", opts.graph_base_url.clone()),
            (
                "GRAPH_API_VERSION",
                fincelo::graph::CURRENT_VERSION.to_string(),
            ),
            (
                "SENDER_MAX_CONCURRENCY",
                opts.sender_instances.max(1).to_string(),
            ),
            ("AWS_ENDPOINT_URL", opts.moto_endpoint.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(opts.env.clone());
        let config = Config::from_lookup(|k| env.get(k).cloned())?;
        let app = App::new(config, &sdk)?.with_clock(opts.time.clock());
        let sender = Sender::new(app.clone());
        let (stop, stop_rx) = watch::channel(false);

        let listener = tokio::net::TcpListener::bind(opts.http_addr)
            .await
            .map_err(|e| StackError::Bind {
                addr: opts.http_addr,
                source: e,
            })?;
        let http_addr = listener.local_addr().map_err(|e| StackError::Bind {
            addr: opts.http_addr,
            source: e,
        })?;
        let router = router(Runner {
            app: app.clone(),
            time: opts.time.clone(),
        });
        let mut rx = stop_rx.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        })];
        if let Some(every) = opts.sweep_every {
            tasks.push(tokio::spawn(sweep_schedule(
                app.clone(),
                every,
                stop_rx.clone(),
            )));
        }
        // The maximum is the functions' own setting, whatever set it.
        let mapping = (opts.sender_instances > 0).then(|| {
            Mapping::start(
                app.clone(),
                &sender,
                app.config.sender.max_concurrency,
                stop_rx.clone(),
            )
        });
        info!(http = %http_addr, table = %resources.table_name, "local stack running");
        Ok(Stack {
            resources,
            app,
            sender,
            sdk,
            time: opts.time.clone(),
            http_addr,
            stop,
            tasks,
            mapping,
        })
    }

    /// The send queue's pollers: how many run now, the most that ran at
    /// once, and the maximum; `None` when the stack polls nothing.
    pub fn sender_concurrency(&self) -> Option<Concurrency> {
        self.mapping.as_ref().map(Mapping::concurrency)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The URL Meta (the sandbox) calls.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/whatsapp", self.http_addr)
    }

    /// Stores a tenant: its two secrets in Secrets Manager (the same
    /// `SecretStore` writes the admin API makes, staged then promoted at
    /// once), its configuration and aliases in DynamoDB. Unlike the admin
    /// API it does not ask Meta first. Weak secrets are refused.
    pub async fn add_tenant(&self, t: &LocalTenant) -> Result<(), StackError> {
        let bad = |e: fincelo::ids::IdError| StackError::Aws(e.to_string());
        let tenant_id = TenantId::parse(&t.tenant_id).map_err(bad)?;
        let secret_id = self
            .app
            .directory
            .secret_store()
            .put(
                &tenant_id,
                &TenantSecrets::new(
                    t.access_token.clone().into(),
                    t.app_secret.clone().into(),
                    t.verify_token.clone().into(),
                ),
                None,
            )
            .await
            .map_err(|e| StackError::Aws(e.to_string()))?;
        let rec = TenantRecord {
            tenant_id: tenant_id.clone(),
            phone_number_id: PhoneNumberId::parse(&t.phone_number_id).map_err(bad)?,
            waba_id: WabaId::parse(&t.waba_id).map_err(bad)?,
            secret_id,
            display_phone_number: t.display_phone_number.clone(),
            verified_name: None,
            messages_per_second: t.messages_per_second,
            updated_at: self.app.clock.now(),
        };
        self.app
            .store
            .put_tenant(&rec, &verify_token_digest(&t.verify_token))
            .await?;
        self.app.directory.invalidate(&tenant_id);
        Ok(())
    }

    /// Puts a send request on the send queue, as upstream would: in its
    /// tenant's fair-queue group (docs/integrating.md).
    pub async fn enqueue(&self, body: &str) -> Result<(), StackError> {
        self.app
            .queues
            .client()
            .send_message()
            .queue_url(self.resources.queue("SendQueue"))
            .message_body(body)
            .message_group_id(fincelo::sender::message::fair_group(body))
            .send()
            .await
            .map_err(|e| StackError::Aws(format!("SendMessage: {e}")))?;
        Ok(())
    }

    /// What the sweep schedule does when it fires: puts the sweep on the
    /// send queue.
    pub async fn sweep(&self) -> Result<(), StackError> {
        self.enqueue(&Control::sweep().to_json()).await
    }

    /// Lets `by` pass on the stack's clock, and the sweep fire if `by` is at
    /// least its period (as `POST /_local/clock` does: one function for both).
    pub async fn advance(&self, by: Duration) -> Result<(), StackError> {
        advance(&self.app, &self.time, by).await.map(|_| ())
    }

    /// Invokes the template function as an operator would.
    pub async fn invoke_templates(&self, action: Action) -> (u16, Value) {
        run_templates(&self.app, action).await
    }

    /// Receives (and deletes) what is on a queue now, as JSON bodies.
    pub async fn drain(&self, logical_id: &str) -> Result<Vec<Value>, StackError> {
        let sqs = self.app.queues.client();
        let url = self.resources.queue(logical_id);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| StackError::Aws(format!("ReceiveMessage: {e}")))?;
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                return Ok(out);
            }
            for m in msgs {
                out.push(
                    serde_json::from_str(m.body.as_deref().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                );
                if let Some(h) = m.receipt_handle {
                    let _ = sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
        }
    }

    /// Stops HTTP and the pollers; returns once no poller runs (a batch in
    /// progress is finished first, see [`Mapping::finish`]).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Some(mapping) = self.mapping {
            mapping.finish().await;
        }
    }
}

/// What the runner's HTTP routes share: the app the functions run, and the
/// stack's time control (for `/_local/clock` only).
#[derive(Clone)]
struct Runner {
    app: App,
    time: TimeControl,
}

impl FromRef<Runner> for App {
    fn from_ref(r: &Runner) -> App {
        r.app.clone()
    }
}

fn router(runner: Runner) -> Router {
    Router::new()
        .route("/webhooks/whatsapp", any(webhook_route))
        .route(
            "/admin/tenants/{tenant_id}/templates",
            get(templates_status).post(templates_submit),
        )
        .route("/admin/tenants/{tenant_id}/channel", any(admin_route))
        .route("/admin/tenants/{tenant_id}/csms", any(admin_route))
        .route("/admin/tenants/{tenant_id}/csms/{csm_id}", any(admin_route))
        .route(
            "/admin/tenants/{tenant_id}/messages/{idempotency_key}",
            any(admin_route),
        )
        .route(
            "/admin/tenants/{tenant_id}/messages/{idempotency_key}/redrive",
            any(admin_route),
        )
        .route("/admin/tenants/{tenant_id}/parked", any(admin_route))
        .route("/admin/tenants/{tenant_id}/costs", any(admin_route))
        .route("/_local/clock", get(clock_read).post(clock_advance))
        .route("/health", get(|| async { "ok" }))
        .with_state(runner)
}

/// Lets `by` pass on the stack's clock; the sweep schedule fires every 5
/// minutes in production, so skipping that long means it fired at least
/// once: the sweep runs once afterwards (its runs in between would each
/// have found the same alerts). Returns whether it did.
async fn advance(app: &App, time: &TimeControl, by: Duration) -> Result<bool, StackError> {
    time.advance(by);
    if by < SWEEP_PERIOD {
        return Ok(false);
    }
    app.queues
        .enqueue_send(&Control::sweep().to_json())
        .await
        .map_err(|e| StackError::Aws(format!("SendMessage (sweep): {e}")))?;
    Ok(true)
}

/// The stack's clock as `/_local/clock` shows it: ISO-8601 and unix
/// seconds, and how far ahead of the system clock it runs.
fn clock_body(time: &TimeControl, swept: Option<bool>) -> Value {
    let now = time.now();
    let mut body = serde_json::json!({
        "now": fincelo::admin::when::iso8601(now),
        "now_unix": now,
        "ahead_secs": time.offset().as_secs(),
    });
    if let Some(swept) = swept {
        body["sweep_fired"] = Value::Bool(swept);
    }
    body
}

async fn clock_read(State(r): State<Runner>) -> impl IntoResponse {
    json_reply((200, clock_body(&r.time, None)))
}

/// `POST /_local/clock` `{"advance_secs": N}` (N > 0): the clock only moves
/// forward, as time does.
async fn clock_advance(State(r): State<Runner>, body: Bytes) -> impl IntoResponse {
    let secs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advance_secs").and_then(Value::as_u64))
        .filter(|s| *s > 0);
    let Some(secs) = secs else {
        return json_reply((
            400,
            serde_json::json!({"error": {"code": "invalid_body", "message": "expected {\"advance_secs\": N} with N a whole number of seconds above 0"}}),
        ));
    };
    match advance(&r.app, &r.time, Duration::from_secs(secs)).await {
        Ok(swept) => json_reply((200, clock_body(&r.time, Some(swept)))),
        Err(e) => {
            warn!(error = %e, "clock moved, but the sweep could not be queued");
            json_reply((
                502,
                serde_json::json!({"error": {"code": "sweep_failed", "message": "the clock moved, but the sweep could not be put on the send queue; see the runner's log"}}),
            ))
        }
    }
}

async fn webhook_route(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let resp = handle(
        &app,
        WebhookRequest {
            method,
            query: uri.query().map(str::to_string),
            headers,
            body,
        },
    )
    .await;
    (
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", resp.content_type)],
        resp.body,
    )
}

/// The admin function's routes (`AWS_IAM` in API Gateway; loopback only
/// here, so the runner stands in for the authoriser and gives every request
/// the local identity).
async fn admin_route(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> impl IntoResponse {
    let resp = fincelo::admin::handle(
        &app,
        AdminRequest {
            method,
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            body,
            caller: Some(Caller::local()),
        },
    )
    .await;
    (
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        resp.body_text(),
    )
}

async fn templates_submit(State(app): State<App>, Path(tenant): Path<String>) -> impl IntoResponse {
    json_reply(match TenantId::parse(tenant) {
        Ok(tenant_id) => run_templates(&app, Action::Submit { tenant_id }).await,
        Err(e) => (400, serde_json::json!({"error": e.to_string()})),
    })
}

async fn templates_status(State(app): State<App>, Path(tenant): Path<String>) -> impl IntoResponse {
    json_reply(match TenantId::parse(tenant) {
        Ok(tenant_id) => run_templates(&app, Action::Status { tenant_id }).await,
        Err(e) => (400, serde_json::json!({"error": e.to_string()})),
    })
}

fn json_reply((status, body): (u16, Value)) -> impl IntoResponse {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
}

/// How often the sweep schedule fires (template.yaml's `SweepSchedule`).
pub const SWEEP_PERIOD: Duration = Duration::from_secs(300);

/// The sweep schedule, in miniature: the sweep on the send queue every
/// `every` (real time).
async fn sweep_schedule(app: App, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = app.queues.enqueue_send(&Control::sweep().to_json()).await {
            warn!(error = %e, "could not put the scheduled sweep on the send queue");
        }
    }
}
