//! Spawns a sandbox, a webhook receiver and a registered tenant per test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use meta_sandbox::{spawn, Clock, Knobs, SandboxClient, SandboxConfig, SandboxHandle, TenantSpec};
use serde_json::{json, Value};

/// One webhook POST as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub raw: Bytes,
    pub body: Value,
}

#[derive(Default)]
pub struct ReceiverState {
    pub got: Mutex<Vec<Received>>,
    /// Answer 500 to this many requests first.
    pub fail_first: Mutex<u32>,
}

/// A local webhook endpoint collecting what the sandbox posts.
pub struct Receiver {
    pub url: String,
    pub state: Arc<ReceiverState>,
}

async fn collect(
    State(s): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    {
        let mut fail = s.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    s.got.lock().unwrap().push(Received {
        signature: h("x-hub-signature-256"),
        content_type: h("content-type"),
        raw,
        body,
    });
    StatusCode::OK
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/webhook", post(collect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/webhook"),
            state,
        }
    }

    pub fn all(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits until `n` webhooks arrived (or 5 s), returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..250 {
            if self.all().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.all()
    }

    /// Status webhooks' `statuses[0]` values, in arrival order.
    pub fn statuses(&self) -> Vec<Value> {
        self.all()
            .iter()
            .filter_map(|r| {
                r.body["entry"][0]["changes"][0]["value"]["statuses"][0]
                    .as_object()
                    .cloned()
            })
            .map(Value::Object)
            .collect()
    }
}

pub fn random_digits(n: usize) -> String {
    let raw = uuid::Uuid::new_v4().as_u128().to_string();
    raw.chars().rev().take(n).collect()
}

pub struct TestApp {
    pub sandbox: SandboxHandle,
    pub control: SandboxClient,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    pub tenant: TenantSpec,
}

pub const CSM: &str = "+919876543210";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Knobs::default()).await
}

pub async fn spawn_app_with(knobs: Knobs) -> TestApp {
    spawn_app_with_config(SandboxConfig {
        knobs,
        ..SandboxConfig::default()
    })
    .await
}

/// A clock the test moves, as the local stack's time control does: the
/// system time plus an offset.
#[derive(Clone, Default)]
pub struct TestClock {
    pub offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    pub fn clock(&self) -> Clock {
        let offset = self.offset_ms.clone();
        let system = Clock::system();
        Clock::from_fn(move || system.now_ms() + offset.load(Ordering::Relaxed))
    }

    /// Lets `hours` pass on this clock.
    pub fn advance_hours(&self, hours: i64) {
        self.offset_ms
            .fetch_add(hours * 3600 * 1000, Ordering::Relaxed);
    }

    pub fn now_s(&self) -> i64 {
        self.clock().now_s()
    }

    /// Moves this clock to noon UTC of `date` (`YYYY-MM-DD`).
    pub fn set_date(&self, date: &str) {
        let target =
            meta_sandbox::calendar::parse_date_ms(date).expect("a date") + 12 * 3600 * 1000;
        let system = Clock::system().now_ms();
        self.offset_ms.store(target - system, Ordering::Relaxed);
    }
}

/// A sandbox reading `clock`, as the local stack runs it.
pub async fn spawn_app_on(clock: &TestClock) -> TestApp {
    spawn_app_with_config(SandboxConfig {
        clock: clock.clock(),
        ..SandboxConfig::default()
    })
    .await
}

pub async fn spawn_app_with_config(config: SandboxConfig) -> TestApp {
    let sandbox = spawn(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("sandbox starts");
    let receiver = Receiver::start().await;
    let tenant = TenantSpec {
        phone_number_id: format!("1{}", random_digits(14)),
        waba_id: format!("2{}", random_digits(14)),
        access_token: format!("EAAG{}", uuid::Uuid::new_v4().simple()),
        app_secret: format!("secret-{}", uuid::Uuid::new_v4().simple()),
        webhook_url: receiver.url.clone(),
        display_phone_number: Some("15550783881".into()),
        verified_name: Some("Fincelo".into()),
    };
    let control = sandbox.client();
    control
        .register_tenant(&tenant)
        .await
        .expect("tenant registers");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    TestApp {
        sandbox,
        control,
        http,
        receiver,
        tenant,
    }
}

impl TestApp {
    pub fn graph(&self, path: &str) -> String {
        format!("{}/v23.0/{}", self.sandbox.base_url(), path)
    }

    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.graph(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.graph(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends through Graph version `version`.
    pub async fn send_v(&self, version: &str, body: &Value) -> (u16, Value) {
        let url = format!(
            "{}/{version}/{}/messages",
            self.sandbox.base_url(),
            self.tenant.phone_number_id
        );
        let resp = self
            .http
            .post(url)
            .bearer_auth(&self.tenant.access_token)
            .json(body)
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, body: &Value) -> (u16, Value) {
        let path = format!("{}/messages", self.tenant.phone_number_id);
        self.post_as(&self.tenant.access_token, &path, body).await
    }

    /// Sends a message with a client-side timeout, keeping the raw outcome:
    /// the fault tests need to see the timeout itself.
    pub async fn send_within(
        &self,
        body: &Value,
        timeout: std::time::Duration,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.graph(&format!("{}/messages", self.tenant.phone_number_id)))
            .bearer_auth(&self.tenant.access_token)
            .json(body)
            .timeout(timeout)
            .send()
            .await
    }

    pub async fn open_window(&self, from: &str) {
        self.control
            .inbound(&meta_sandbox::InboundRequest {
                phone_number_id: self.tenant.phone_number_id.clone(),
                from: from.into(),
                text: "hello".into(),
                timestamp: None,
                profile_name: Some("Asha".into()),
            })
            .await
            .expect("inbound");
    }

    pub async fn create_template(
        &self,
        name: &str,
        body_text: &str,
        examples: &[&str],
    ) -> (u16, Value) {
        let path = format!("{}/message_templates", self.tenant.waba_id);
        self.post_as(
            &self.tenant.access_token,
            &path,
            &template_submission(name, body_text, examples),
        )
        .await
    }

    /// Creates a template and waits for the sandbox to approve it.
    pub async fn approved_template(&self, name: &str, body_text: &str, examples: &[&str]) {
        self.approved_template_in(name, "UTILITY", body_text, examples)
            .await
    }

    /// Creates a template of `category` and waits for the sandbox to approve it.
    pub async fn approved_template_in(
        &self,
        name: &str,
        category: &str,
        body_text: &str,
        examples: &[&str],
    ) {
        let path = format!("{}/message_templates", self.tenant.waba_id);
        let mut submission = template_submission(name, body_text, examples);
        submission["category"] = json!(category);
        let (status, body) = self
            .post_as(&self.tenant.access_token, &path, &submission)
            .await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..100 {
            let ts = self.control.templates(&self.tenant.waba_id).await.unwrap();
            if ts.iter().any(|t| t.name == name && t.status == "APPROVED") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("template {name} was not approved");
    }

    /// Registers a WhatsApp user (`POST /_sandbox/users`).
    pub async fn register_user(&self, spec: &meta_sandbox::UserSpec) -> meta_sandbox::UserView {
        self.control
            .register_user(spec)
            .await
            .expect("user registers")
    }

    /// A CSM message with the full inbound request.
    pub async fn inbound(
        &self,
        mut msg: meta_sandbox::InboundMessage,
    ) -> meta_sandbox::InboundResult {
        msg.phone_number_id = self.tenant.phone_number_id.clone();
        self.control.inbound_message(&msg).await.expect("inbound")
    }

    /// The `value` of every webhook received so far, in order.
    pub fn values(&self) -> Vec<Value> {
        self.receiver
            .all()
            .iter()
            .map(|r| r.body["entry"][0]["changes"][0]["value"].clone())
            .collect()
    }

    /// Webhook bodies of `field` received so far.
    pub fn bodies_of(&self, field: &str) -> Vec<Value> {
        self.receiver
            .all()
            .iter()
            .filter(|r| r.body["entry"][0]["changes"][0]["field"] == field)
            .map(|r| r.body.clone())
            .collect()
    }
}

/// A text message to a BSUID (`recipient`).
pub fn text_to_bsuid(bsuid: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": bsuid,
        "type": "text",
        "text": {"body": body}
    })
}

pub fn text_message(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body, "preview_url": false},
        "biz_opaque_callback_data": "alert-42"
    })
}

pub fn template_message(to: &str, name: &str, params: &[&str]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"policy": "deterministic", "code": "en"},
            "components": [{"type": "body", "parameters": parameters}]
        },
        "biz_opaque_callback_data": "alert-7"
    })
}

pub fn template_submission(name: &str, body_text: &str, examples: &[&str]) -> Value {
    json!({
        "name": name,
        "language": "en",
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": body_text, "example": {"body_text": [examples]}},
            {"type": "FOOTER", "text": "Fincelo alerts"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Acknowledge"}]}
        ]
    })
}
