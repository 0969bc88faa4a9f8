//! Shared set-up for the integration scenarios: a moto-backed [`Stack`] with
//! its own prefix, the Meta sandbox, and one tenant registered in both, so
//! every test owns its table, queues, tenant and numbers and tests run in
//! parallel. Logs stay silent unless `TEST_LOG` is set.

#![allow(dead_code)]

use fincelo::templates::handler::Action;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Once;
use std::time::Duration;

use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::phone::E164;
use fincelo_local::{LocalTenant, Stack, StackOptions, TimeControl};
use meta_sandbox::{InboundRequest, MessageRecord, SandboxClient, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            fincelo::startup::init_tracing(
                &std::env::var("TEST_LOG")
                    .ok()
                    .filter(|v| !v.is_empty() && v != "1")
                    .unwrap_or_else(|| "info".into()),
            );
        }
    });
}

/// The moto endpoint: `FWA_TEST_MOTO`, default `http://127.0.0.1:5056`.
/// Panics with a clear message if moto does not answer.
pub async fn moto_endpoint() -> String {
    let endpoint =
        std::env::var("FWA_TEST_MOTO").unwrap_or_else(|_| "http://127.0.0.1:5056".into());
    let probe = reqwest::Client::new()
        .get(format!("{endpoint}/moto-api/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match probe {
        Ok(r) if r.status().is_success() => endpoint,
        other => panic!(
            "moto is not answering at {endpoint} ({:?}); start it with `make venv && infra/moto.sh start 5056` or set FWA_TEST_MOTO",
            other.map(|r| r.status())
        ),
    }
}

/// Unix seconds on the system clock (a world's own clock may run ahead:
/// [`World::now`]).
pub fn now() -> i64 {
    fincelo::clock::Clock::system().now()
}

/// A random string of `n` digits (first digit non-zero).
pub use fincelo_local::random_digits as digits;

/// A unique, valid Indian mobile number, E.164.
pub fn csm_number() -> String {
    let n = format!("+919876{}", &digits(12)[..6]);
    E164::parse(&n).unwrap_or_else(|e| panic!("{n} should be a valid number: {e}"));
    n
}

pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Options for [`spawn_world_with`].
pub struct WorldOptions {
    pub env: HashMap<String, String>,
    pub visibility_secs: Option<i32>,
    pub sandbox: SandboxConfig,
    /// Send-queue pollers; 0 lets the test call the sender itself.
    pub sender_instances: u32,
    /// The tenant's own send cap (its channel's `messages_per_second`).
    pub tenant_cap: Option<u32>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        let env = [
            ("GRAPH_TIMEOUT_MS", "1500"),
            ("AMBIGUOUS_SEND_DELAY_SECS", "3"),
            ("SEND_CLAIM_LEASE_SECS", "3"),
            ("WINDOW_SAFETY_MARGIN_SECS", "60"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        WorldOptions {
            env,
            visibility_secs: Some(2),
            sandbox: SandboxConfig::default(),
            sender_instances: 2,
            tenant_cap: None,
        }
    }
}

/// Everything one scenario needs.
pub struct World {
    pub stack: Stack,
    pub sandbox: SandboxHandle,
    pub meta: SandboxClient,
    pub tenant: LocalTenant,
    pub tenant_id: TenantId,
}

pub async fn spawn_world() -> World {
    spawn_world_with(WorldOptions::default()).await
}

/// A world whose sender does not poll: the test hands batches to
/// `stack.sender` (or its own `Sender`) itself.
pub async fn spawn_world_without_sender() -> World {
    spawn_world_with(WorldOptions {
        sender_instances: 0,
        ..WorldOptions::default()
    })
    .await
}

pub async fn spawn_world_with(opts: WorldOptions) -> World {
    init_tracing();
    let moto = moto_endpoint().await;
    // One clock for the stack and the sandbox: Meta's times move with ours.
    let time = TimeControl::default();
    let clock = time.clock();
    let mut sandbox_config = opts.sandbox;
    sandbox_config.clock = meta_sandbox::Clock::from_fn(move || clock.now_ms());
    let sandbox = meta_sandbox::spawn("127.0.0.1:0".parse().unwrap(), sandbox_config)
        .await
        .expect("sandbox starts");
    let mut so = StackOptions::new(moto, sandbox.base_url(), format!("t-{}", short_id()));
    so.time = time;
    so.env = opts.env;
    so.overrides.send_queue_visibility_secs = opts.visibility_secs;
    so.sender_instances = opts.sender_instances;
    let stack = Stack::start(so).await.expect("stack starts");
    let mut tenant = LocalTenant::unique("tenant");
    tenant.messages_per_second = opts.tenant_cap;
    stack.add_tenant(&tenant).await.expect("tenant stored");
    let meta = sandbox.client();
    meta.register_tenant(&tenant.sandbox_spec(stack.webhook_url()))
        .await
        .expect("sandbox tenant registered");
    let tenant_id = TenantId::parse(&tenant.tenant_id).unwrap();
    World {
        stack,
        sandbox,
        meta,
        tenant,
        tenant_id,
    }
}

impl World {
    /// Unix seconds on the world's clock (the stack's shifted clock).
    pub fn now(&self) -> i64 {
        self.stack.time.now()
    }

    /// Lets `by` pass on the world's clock (and the sweep schedule fire,
    /// as it would have meanwhile: [`fincelo_local::Stack::advance`]).
    pub async fn advance(&self, by: Duration) {
        self.stack.advance(by).await.expect("clock advanced");
    }

    /// The world's app, but with an events queue that does not exist: every
    /// publish fails, while every other request works.
    pub fn app_with_broken_events_queue(&self) -> fincelo::startup::App {
        let mut config = (*self.stack.app.config).clone();
        config.events_queue_url = format!("{}-missing", config.events_queue_url);
        fincelo::startup::App::new(config, &self.stack.sdk)
            .expect("app")
            .with_clock(self.stack.time.clock())
    }

    /// The world's app, but every SQS request is left without an answer (a
    /// listener that takes connections and never replies), while DynamoDB
    /// and Secrets Manager work: a handler run with it and cut off by a
    /// timeout is a function that died waiting for SQS, after its writes.
    /// The listener lives as long as the returned task.
    pub async fn app_whose_queues_hang(
        &self,
    ) -> (fincelo::startup::App, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let sdk = &self.stack.sdk;
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .endpoint_url(format!("http://{addr}"))
                .build(),
        );
        let app = fincelo::startup::App::from_clients(
            (*self.stack.app.config).clone(),
            aws_sdk_dynamodb::Client::new(sdk),
            sqs,
            aws_sdk_secretsmanager::Client::new(sdk),
        )
        .expect("app")
        .with_clock(self.stack.time.clock());
        (app, task)
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
        self.sandbox.shutdown().await;
    }

    /// Registers a second tenant in the stack and the sandbox.
    pub async fn add_other_tenant(&self) -> LocalTenant {
        let other = LocalTenant::unique("other");
        self.stack.add_tenant(&other).await.expect("tenant stored");
        self.meta
            .register_tenant(&other.sandbox_spec(self.stack.webhook_url()))
            .await
            .expect("sandbox tenant registered");
        other
    }

    /// Rotates the tenant's access token at Meta (the old one stops working
    /// at once) and in Secrets Manager, behind the functions' caches.
    /// Returns the new token.
    pub async fn rotate_token(&self) -> String {
        let new_token = format!("rotated-{}", uuid::Uuid::new_v4().simple());
        self.meta
            .rotate_token(&self.tenant.phone_number_id, &new_token)
            .await
            .expect("sandbox token rotated");
        let secrets = self.stack.app.directory.secret_store();
        secrets
            .client()
            .put_secret_value()
            .secret_id(
                fincelo::secrets::SecretKind::Token.name(&secrets.secret_id(&self.tenant_id)),
            )
            .secret_string(json!({"access_token": new_token}).to_string())
            .send()
            .await
            .expect("secret rotated");
        new_token
    }

    /// How many items the stack's table holds (a scan; tests only).
    pub async fn item_count(&self) -> usize {
        let store = &self.stack.app.store;
        let mut total = 0;
        let mut start = None;
        loop {
            let out = store
                .client()
                .scan()
                .table_name(store.table_name())
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            total += usize::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                return total;
            }
        }
    }

    /// Meta's verification handshake with `verify_token`.
    pub async fn handshake(&self, verify_token: &str, challenge: &str) -> reqwest::Response {
        self.http()
            .get(format!(
                "{}?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge={challenge}",
                self.stack.webhook_url()
            ))
            .send()
            .await
            .expect("webhook reachable")
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// POSTs a body signed with this tenant's app secret.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        let sig = fincelo::webhook::signature::sign(self.tenant.app_secret.as_bytes(), body);
        self.http()
            .post(self.stack.webhook_url())
            .header("X-Hub-Signature-256", sig)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("webhook reachable")
    }

    /// Every message the sandbox accepted from this tenant's number.
    pub async fn messages_to_tenant(&self) -> Vec<MessageRecord> {
        self.meta
            .messages(Some(&self.tenant.phone_number_id), None)
            .await
            .expect("sandbox messages")
    }

    /// An alert's timeline, as the admin API answers it.
    pub async fn timeline(&self, key: &str) -> Value {
        let resp = fincelo::admin::handle(
            &self.stack.app,
            fincelo::admin::AdminRequest {
                method: http::Method::GET,
                path: format!("/admin/tenants/{}/messages/{key}", self.tenant.tenant_id),
                query: None,
                body: bytes::Bytes::new(),
                caller: Some(fincelo::admin::Caller::local()),
            },
        )
        .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        resp.body.unwrap_or(Value::Null)
    }

    /// Messages the sandbox accepted for one CSM number.
    pub async fn messages_to(&self, csm: &str) -> Vec<MessageRecord> {
        let digits = csm.trim_start_matches('+');
        self.meta
            .messages(Some(&self.tenant.phone_number_id), None)
            .await
            .expect("sandbox messages")
            .into_iter()
            .filter(|m| m.wa_id == digits || m.to.trim_start_matches('+') == digits)
            .collect()
    }

    /// Opens the CSM's window in our table only, as if a message had come
    /// in that Meta does not count (Meta's window stays closed): a free-form
    /// send then draws Meta's 131047.
    pub async fn window_only_in_our_table(&self, csm: &str) {
        let e164 = fincelo::phone::E164::parse(csm).expect("number");
        self.stack
            .app
            .store
            .open_window(
                &self.tenant_id,
                &fincelo::identity::Identity::Number(e164),
                self.now(),
                "wamid.only-in-our-table",
            )
            .await
            .expect("window");
    }

    /// The CSM writes to the business number; waits until our window item exists.
    pub async fn csm_writes(&self, csm: &str) {
        self.csm_writes_at(csm, None).await
    }

    /// The CSM writes at `timestamp` (unix seconds; the sandbox's now if
    /// `None`); waits until our window item exists.
    pub async fn csm_writes_at(&self, csm: &str, timestamp: Option<i64>) {
        let r = self
            .meta
            .inbound(&InboundRequest {
                phone_number_id: self.tenant.phone_number_id.clone(),
                from: csm.to_string(),
                text: "hi".into(),
                timestamp,
                profile_name: None,
            })
            .await
            .expect("inbound");
        assert!(
            r.webhook.iter().all(|w| w.delivered),
            "inbound webhook should be delivered: {:?}",
            r.webhook
        );
        eventually(Duration::from_secs(10), || async {
            self.window(csm).await.is_some()
        })
        .await;
    }

    /// The CSM's window as stored, if any.
    pub async fn window(&self, csm: &str) -> Option<fincelo::store::Window> {
        let csm = E164::parse(csm).unwrap();
        let store = &self.stack.app.store;
        let who = fincelo::addressing::identity_of_number(store, &self.tenant_id, &csm)
            .await
            .expect("alias read");
        store
            .get_window(&self.tenant_id, &who)
            .await
            .expect("window read")
    }

    /// A message's delivery status as stored, if any.
    pub async fn message_status(&self, wamid: &str) -> Option<fincelo::store::MessageStatusRecord> {
        self.stack
            .app
            .store
            .get_message_status(&self.tenant_id, wamid)
            .await
            .expect("status read")
    }

    /// A template's record, if any.
    pub async fn template(&self, name: &str) -> Option<fincelo::store::TemplateRecord> {
        self.stack
            .app
            .store
            .get_template(&self.tenant_id, name, "en")
            .await
            .expect("template read")
    }

    /// The ledger entry of a key, if any.
    pub async fn ledger(&self, key: &str) -> Option<fincelo::store::LedgerEntry> {
        let key = IdempotencyKey::parse(key).unwrap();
        self.stack
            .app
            .store
            .get_ledger(&self.tenant_id, &key)
            .await
            .expect("ledger read")
    }

    /// Submits the six templates while Meta reviews them by hand (the
    /// sandbox decides only when told: [`World::decide_template`]), so they
    /// stay PENDING however far the clock moves.
    pub async fn submit_templates_pending(&self) {
        self.meta
            .set_knobs(&json!({"template_review": "manual"}))
            .await
            .expect("knobs");
        let (status, body) = self
            .stack
            .invoke_templates(Action::Submit {
                tenant_id: self.tenant_id.clone(),
            })
            .await;
        assert_eq!(status, 200, "submit: {body}");
    }

    /// The six templates submitted and left PENDING, then `name` rejected
    /// by Meta (INVALID_FORMAT), returning once this service has recorded
    /// the rejection.
    pub async fn reject_one_of_pending_templates(&self, name: &str) {
        self.submit_templates_pending().await;
        self.decide_template(name, "REJECTED", Some("INVALID_FORMAT"))
            .await;
        eventually(Duration::from_secs(10), || async {
            self.template(name)
                .await
                .is_some_and(|t| t.status == "REJECTED")
        })
        .await;
    }

    /// Meta decides a template (in English) and sends its status webhook.
    pub async fn decide_template(&self, name: &str, status: &str, reason: Option<&str>) {
        let r = self
            .meta
            .decide_template(&meta_sandbox::TemplateDecision {
                waba_id: self.tenant.waba_id.clone(),
                name: name.into(),
                language: "en".into(),
                status: status.into(),
                reason: reason.map(str::to_string),
                webhook: Some(true),
            })
            .await
            .expect("template decided");
        assert!(
            r.webhook.iter().all(|d| d.delivered),
            "the template webhook should be delivered: {:?}",
            r.webhook
        );
    }

    /// Submits the six templates and waits until the table shows them APPROVED.
    pub async fn approve_all_templates(&self) {
        let (status, body) = self
            .stack
            .invoke_templates(Action::Submit {
                tenant_id: self.tenant_id.clone(),
            })
            .await;
        assert_eq!(status, 200, "submit: {body}");
        eventually(Duration::from_secs(15), || async {
            let list = self
                .stack
                .app
                .store
                .list_templates(&self.tenant_id)
                .await
                .unwrap();
            list.iter().filter(|t| t.is_approved()).count() == 6
        })
        .await;
    }

    pub async fn enqueue(&self, req: &Value) {
        self.stack.enqueue(&req.to_string()).await.expect("enqueue");
    }

    /// Messages on a queue of the stack: visible, in flight and delayed
    /// (SQS's approximate counts; exact on the emulator).
    pub async fn queue_depth(&self, logical_id: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .stack
            .app
            .queues
            .client()
            .get_queue_attributes()
            .queue_url(self.stack.resources.queue(logical_id))
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes");
        out.attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0)
    }

    /// Drains a queue until `done` holds for what was collected (or the timeout).
    pub async fn drain_until(
        &self,
        queue: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            got.extend(self.stack.drain(queue).await.expect("drain"));
            if done(&got) || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl World {
    /// Drains a queue until `done` holds for what was collected (or the
    /// timeout), each body with the `MessageGroupId` SQS keeps for it
    /// (`None` without one). moto stores the group of a message on a
    /// standard queue and returns it when asked; it does not model fair
    /// queues' scheduling.
    pub async fn drain_grouped_until(
        &self,
        queue: &str,
        timeout: Duration,
        done: impl Fn(&[Grouped]) -> bool,
    ) -> Vec<Grouped> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let sqs = self.stack.app.queues.client();
        let url = self.stack.resources.queue(queue);
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_system_attribute_names(A::MessageGroupId)
                .send()
                .await
                .expect("receive");
            let msgs = out.messages.unwrap_or_default();
            for m in &msgs {
                got.push(Grouped {
                    body: serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null),
                    group: m
                        .attributes()
                        .and_then(|a| a.get(&A::MessageGroupId))
                        .cloned(),
                });
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
            if done(&got) || tokio::time::Instant::now() > deadline {
                return got;
            }
            if msgs.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A body taken from a queue, with its fair-queue group.
#[derive(Debug, Clone)]
pub struct Grouped {
    pub body: Value,
    pub group: Option<String>,
}

/// The seed's template table as (event, health, premium, template) rows,
/// one per template; premium wins for an at-risk overdue invoice.
pub const TEMPLATE_ROWS: [(&str, &str, bool, &str); 6] = [
    (
        "usage_threshold",
        "good",
        false,
        "fincelo_usage_opportunity",
    ),
    (
        "usage_threshold",
        "average",
        false,
        "fincelo_usage_heads_up",
    ),
    ("usage_threshold", "poor", false, "fincelo_usage_risk"),
    (
        "overdue_invoice",
        "critical",
        true,
        "fincelo_collections_personal",
    ),
    (
        "overdue_invoice",
        "poor",
        false,
        "fincelo_collections_urgent",
    ),
    ("escalation", "platinum", false, "fincelo_escalation_notify"),
];

/// A v1 send request.
pub struct SendRequestBuilder {
    pub tenant_id: String,
    pub key: String,
    pub phone: String,
    pub event: String,
    pub health: String,
    pub premium: bool,
    pub params: Vec<String>,
    pub text: Option<String>,
    /// RFC 3339, or `None` for a request without one.
    pub deliver_by: Option<String>,
}

pub fn send_request(tenant_id: &str, phone: &str) -> SendRequestBuilder {
    SendRequestBuilder {
        tenant_id: tenant_id.to_string(),
        key: format!("alert-{}", uuid::Uuid::new_v4().simple()),
        phone: phone.to_string(),
        event: "usage_threshold".into(),
        health: "good".into(),
        premium: false,
        params: ["Globex", "85", "Pro", "good"].map(String::from).to_vec(),
        text: None,
        deliver_by: Some(rfc3339(now() + 3600)),
    }
}

impl SendRequestBuilder {
    pub fn event(mut self, event: &str, health: &str, premium: bool) -> Self {
        self.event = event.into();
        self.health = health.into();
        self.premium = premium;
        self
    }
    pub fn text(mut self, t: &str) -> Self {
        self.text = Some(t.into());
        self
    }
    pub fn deliver_by(mut self, unix: i64) -> Self {
        self.deliver_by = Some(rfc3339(unix));
        self
    }
    /// No `deliver_by`: the template wait limit applies.
    pub fn no_deliver_by(mut self) -> Self {
        self.deliver_by = None;
        self
    }
    pub fn key(mut self, key: &str) -> Self {
        self.key = key.into();
        self
    }
    pub fn params(mut self, params: &[&str]) -> Self {
        self.params = params.iter().map(|p| p.to_string()).collect();
        self
    }
    pub fn json(&self) -> Value {
        let mut v = json!({
            "version": 1,
            "tenant_id": self.tenant_id,
            "idempotency_key": self.key,
            "recipient": {"phone": self.phone, "csm_id": "csm-7"},
            "event": {"type": self.event, "customer": {"name": "Globex", "health": self.health, "premium": self.premium}, "params": self.params},
        });
        if let Some(d) = &self.deliver_by {
            v["deliver_by"] = json!(d);
        }
        if let Some(t) = &self.text {
            v["text"] = json!(t);
        }
        v
    }
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).expect("after 1970"));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// An SQS record of `body` as the event source mapping hands it over, on
/// its first delivery.
pub fn first_delivery(id: &str, body: &Value) -> aws_lambda_events::sqs::SqsMessage {
    let mut rec = aws_lambda_events::sqs::SqsMessage::default();
    rec.message_id = Some(id.to_string());
    rec.body = Some(body.to_string());
    rec.attributes = HashMap::from([("ApproximateReceiveCount".into(), "1".into())]);
    rec
}

/// Hands `bodies` to the world's sender as one batch, bypassing the queue;
/// the ids of the records it asked to see again.
pub async fn hand_to_sender(w: &World, bodies: &[Value]) -> Vec<String> {
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| first_delivery(&format!("m-{i}"), b))
        .collect();
    let resp = w.stack.sender.handle_batch(event).await;
    resp.batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// Polls `check` every 100 ms until it holds; panics after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One admin call over HTTP: the status and the JSON body (`Null` if empty).
pub async fn admin(
    w: &World,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let url = format!("http://{}{path}", w.stack.http_addr());
    let mut rb = w
        .http()
        .request(method.parse().expect("method"), url)
        .header("content-type", "application/json");
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let resp = rb.send().await.expect("admin reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, value, text)
}

/// Meta's `type` of a free-form alert: reply buttons ([`fincelo::responses`]),
/// or plain text when the alert is too long for an interactive body.
pub const FREE_FORM: &str = "interactive";

/// What the CSM reads of a message the sandbox received: a text's body or an
/// interactive message's body (`None` for a template).
pub fn body_of(m: &MessageRecord) -> Option<String> {
    m.text
        .clone()
        .or_else(|| m.interactive.as_ref().map(|i| i.body.clone()))
}
