//! Issue 7: the admin API, through the real handler (over the local stack's
//! HTTP server, and once through the `lambda_http` adapter), against moto
//! and the Meta sandbox.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::now;
use fincelo::ids::TenantId;
use fincelo::phone::E164;
use fincelo::startup::App;
use fincelo::store::LedgerState;
use meta_sandbox::{InboundRequest, TenantSpec};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::{
    admin, csm_number, digits, eventually, send_request, short_id, spawn_world, spawn_world_with,
    World, WorldOptions,
};

/// A tenant's Meta app as the Fincelo backend would submit it.
struct NewTenant {
    tenant_id: String,
    phone_number_id: String,
    waba_id: String,
    access_token: String,
    app_secret: String,
    verify_token: String,
    display_phone_number: String,
}

impl NewTenant {
    fn fresh() -> Self {
        let id = short_id();
        NewTenant {
            tenant_id: format!("tenant-{id}"),
            phone_number_id: digits(15),
            waba_id: digits(15),
            access_token: format!("EAAG-token-{id}-{}", short_id()),
            app_secret: format!("appsecret-{id}-{}", uuid::Uuid::new_v4().simple()),
            verify_token: format!("verify-{id}-{}", short_id()),
            display_phone_number: format!("+1 555 01{}", &digits(5)),
        }
    }

    fn body(&self) -> Value {
        json!({
            "phone_number_id": self.phone_number_id,
            "waba_id": self.waba_id,
            "access_token": self.access_token,
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
        })
    }

    fn secrets(&self) -> [&str; 3] {
        [&self.access_token, &self.app_secret, &self.verify_token]
    }

    fn path(&self) -> String {
        format!("/admin/tenants/{}/channel", self.tenant_id)
    }

    /// Registers the app in the Meta sandbox (what Meta knows).
    async fn register(&self, w: &World) {
        w.meta
            .register_tenant(&TenantSpec {
                phone_number_id: self.phone_number_id.clone(),
                waba_id: self.waba_id.clone(),
                access_token: self.access_token.clone(),
                app_secret: self.app_secret.clone(),
                webhook_url: w.stack.webhook_url(),
                display_phone_number: Some(self.display_phone_number.clone()),
                verified_name: Some("Acme Sandbox".into()),
            })
            .await
            .expect("sandbox tenant registered");
    }
}

/// The world's own tenant as a [`NewTenant`] (same ids and secrets).
fn world_tenant(w: &World) -> NewTenant {
    NewTenant {
        tenant_id: w.tenant.tenant_id.clone(),
        phone_number_id: w.tenant.phone_number_id.clone(),
        waba_id: w.tenant.waba_id.clone(),
        access_token: w.tenant.access_token.clone(),
        app_secret: w.tenant.app_secret.clone(),
        verify_token: w.tenant.verify_token.clone(),
        display_phone_number: String::new(),
    }
}

/// A second process's worth of handlers: the admin function as its own
/// Lambda, with its own caches, beside the stack's sender and webhook.
fn admin_function(w: &World) -> App {
    App::new((*w.stack.app.config).clone(), &w.stack.sdk).expect("admin app")
}

async fn admin_direct(app: &App, method: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = fincelo::admin::handle(
        app,
        fincelo::admin::AdminRequest {
            method: method.parse().expect("method"),
            path: path.to_string(),
            query: None,
            body: body.to_string().into(),
            caller: Some(backend()),
        },
    )
    .await;
    (resp.status, resp.body.unwrap_or(Value::Null))
}

/// The Fincelo backend's identity, as API Gateway's IAM authoriser gives it.
fn backend() -> fincelo::admin::Caller {
    fincelo::admin::Caller {
        arn: "arn:aws:sts::123456789012:assumed-role/fincelo-backend/test".into(),
    }
}

/// A tenant's three secrets as stored (current versions of its token and
/// webhook secrets), if both exist.
async fn stored_secret(w: &World, tenant: &str) -> Option<fincelo::secrets::TenantSecrets> {
    let store = w.stack.app.directory.secret_store();
    let base = store.secret_id(&TenantId::parse(tenant).unwrap());
    fn found<T>(r: Result<T, fincelo::secrets::SecretsError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(fincelo::secrets::SecretsError::NotFound { .. }) => None,
            Err(e) => panic!("secret read failed: {e}"),
        }
    }
    let token = found(store.fetch_token(&base).await)?;
    let webhook = found(store.fetch_webhook(&base).await)?;
    Some(fincelo::secrets::TenantSecrets::new(
        token.access_token,
        webhook.app_secret,
        webhook.verify_token,
    ))
}

async fn stored_config(w: &World, tenant: &str) -> Option<fincelo::store::TenantRecord> {
    w.stack
        .app
        .store
        .get_tenant(&TenantId::parse(tenant).unwrap())
        .await
        .expect("config read")
}

/// Captures every log line of the process (all targets, `CAPTURE_LEVEL`
/// and up) into a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Set in the child process that runs a log-capturing test alone.
const CAPTURE_CHILD: &str = "FWA_TEST_CAPTURE_CHILD";
/// The most verbose level a deployment can set (`LogLevel: TRACE`), through
/// the functions' own subscriber and filter. The sandbox stands in for Meta:
/// its own logs are not the system's.
const CAPTURE_LEVEL: &str = "trace,meta_sandbox=off";

/// Runs `test` (this binary's test of that name) alone in a child process
/// and asserts it passed. `tracing` caches per call site whether anyone
/// listens; with parallel tests, a call site first reached on another
/// thread while a thread-scoped subscriber is being installed can stay
/// cached as "nobody", and its lines would silently be missed. A process
/// of its own, whose global subscriber is in place before any call site is
/// reached, captures every line.
async fn run_alone(test: &str) -> bool {
    if std::env::var_os(CAPTURE_CHILD).is_some() {
        return false;
    }
    let out = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CAPTURE_CHILD, "1")
        .env_remove("TEST_LOG")
        .output()
        .await
        .expect("child test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test failed:\n{stdout}\n{stderr}"
    );
    true
}

/// Installs the capturing subscriber as the process's global one (only in
/// the child of [`run_alone`]).
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(fincelo::startup::json_subscriber(
        CAPTURE_LEVEL,
        move || writer.clone(),
    ))
    .expect("the child's only subscriber");
    captured
}

/// A good token is checked with Meta, then the secret goes to Secrets
/// Manager and the ids to DynamoDB; the answer carries Meta's display number,
/// and the webhook handshake finds the tenant by its new verify token.
#[tokio::test]
async fn saving_a_channel_with_a_good_token_stores_secret_and_config() {
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["display_phone_number"],
        t.display_phone_number.as_str()
    );
    assert_eq!(body["verified_name"], "Acme Sandbox");
    assert_eq!(body["phone_number_id"], t.phone_number_id.as_str());

    let secret = stored_secret(&w, &t.tenant_id)
        .await
        .expect("secret stored");
    assert_eq!(secret.access_token.expose_secret(), t.access_token);
    assert_eq!(secret.app_secret.expose_secret(), t.app_secret);
    assert_eq!(secret.verify_token.expose_secret(), t.verify_token);
    let config = stored_config(&w, &t.tenant_id)
        .await
        .expect("config stored");
    assert_eq!(config.phone_number_id.as_str(), t.phone_number_id);
    assert_eq!(config.waba_id.as_str(), t.waba_id);
    assert_eq!(
        config.display_phone_number.as_deref(),
        Some(t.display_phone_number.as_str())
    );

    let challenge = format!("ch-{}", short_id());
    let r = w.handshake(&t.verify_token, &challenge).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), challenge);

    // Saving again (same values) updates rather than creates.
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 200, "{body}");
    w.shutdown().await;
}

/// A token Meta does not know (190), or one of another app (100), is refused
/// with Meta's reason, and neither a secret nor a configuration is written.
#[tokio::test]
async fn a_bad_token_is_refused_with_metas_reason_and_nothing_saved() {
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;

    let mut wrong = t.body();
    wrong["access_token"] = json!(format!("EAAG-not-a-token-{}", short_id()));
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(wrong)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "meta_refused");
    assert_eq!(body["error"]["meta"]["code"], 190);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid OAuth access token"),
        "{body}"
    );

    // A real token, but of the world's tenant: Meta will not show this number to it.
    let mut foreign = t.body();
    foreign["access_token"] = json!(w.tenant.access_token);
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(foreign)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["meta"]["code"], 100);

    assert!(stored_secret(&w, &t.tenant_id).await.is_none());
    assert!(stored_config(&w, &t.tenant_id).await.is_none());
    w.shutdown().await;
}

/// Malformed bodies, non-digit ids and empty or missing fields are 400 with
/// a code naming the rule, before Meta is asked; nothing is written.
#[tokio::test]
async fn invalid_ids_and_empty_fields_are_refused_with_400() {
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;
    let with = |field: &str, value: Value| {
        let mut b = t.body();
        b[field] = value;
        b
    };
    let mut missing = t.body();
    missing.as_object_mut().unwrap().remove("app_secret");
    let cases = [
        (with("phone_number_id", json!("12ab")), "invalid_field"),
        (with("waba_id", json!("WABA-1")), "invalid_field"),
        (with("phone_number_id", json!(12345)), "invalid_field"),
        (with("access_token", json!("")), "invalid_field"),
        (with("verify_token", json!("   ")), "invalid_field"),
        (with("app_secret", Value::Null), "missing_field"),
        (missing, "missing_field"),
        (with("extra", json!("x")), "unknown_field"),
        (json!(["not", "an", "object"]), "invalid_body"),
    ];
    let before = w.meta.stats().await.unwrap();
    for (body, code) in cases {
        let (status, answer, _) = admin(&w, "PUT", &t.path(), Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
    }
    let (status, answer, _) =
        admin(&w, "PUT", "/admin/tenants/bad%23id/channel", Some(t.body())).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_path");
    let after = w.meta.stats().await.unwrap();
    assert_eq!(
        before.rejections_by_code, after.rejections_by_code,
        "Meta was not asked"
    );
    assert!(stored_secret(&w, &t.tenant_id).await.is_none());
    assert!(stored_config(&w, &t.tenant_id).await.is_none());
    w.shutdown().await;
}

/// No response body and no log line (all targets, at the most verbose level
/// a deployment can set) carries a token, app secret or verify token: not on
/// a save, a re-save (rotation), a refused token, a validation error, the
/// webhook handshake, the status, the roster or the timeline; and phone
/// numbers appear only masked.
#[tokio::test]
async fn secrets_never_appear_in_responses_or_logs() {
    if run_alone("admin::secrets_never_appear_in_responses_or_logs").await {
        return;
    }
    let logs = capture_logs();
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;
    let mut bodies = Vec::new();

    let (status, _, text) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 201, "{text}");
    bodies.push(text);
    // Saved again: the old secret is read (its verify token) and a new
    // version put; and the webhook handshake reads the secret through the cache.
    let (status, _, text) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 200, "{text}");
    bodies.push(text);
    let r = w.handshake(&t.verify_token, "42").await;
    assert_eq!(r.status(), 200);
    // A refused token, and a secret given as a number (serde would quote it).
    let mut wrong = t.body();
    wrong["access_token"] = json!(format!("{}-wrong", t.access_token));
    let (status, _, text) = admin(&w, "PUT", &t.path(), Some(wrong)).await;
    assert_eq!(status, 422, "{text}");
    bodies.push(text);
    let mut numeric = t.body();
    numeric["app_secret"] = json!(987_654_321_123_u64);
    let (status, _, text) = admin(&w, "PUT", &t.path(), Some(numeric)).await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("987654321123"), "{text}");
    bodies.push(text);
    let csm = csm_number();
    let (status, _, text) = admin(
        &w,
        "PUT",
        &format!("/admin/tenants/{}/csms/csm-1", t.tenant_id),
        Some(json!({"whatsapp_number": csm})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    bodies.push(text);
    let (status, _, text) = admin(&w, "GET", &t.path(), None).await;
    assert_eq!(status, 200, "{text}");
    bodies.push(text);
    let (status, _, text) = admin(
        &w,
        "GET",
        &format!("/admin/tenants/{}/messages/no-such-key", t.tenant_id),
        None,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    bodies.push(text);

    let log = logs.text();
    assert!(
        log.contains("channel config saved") && log.contains(&t.tenant_id),
        "the capture works: {log}"
    );
    for secret in t.secrets() {
        for body in &bodies {
            assert!(
                !body.contains(secret),
                "a response carries a secret: {body}"
            );
        }
        assert!(!log.contains(secret), "a log line carries a secret");
    }
    assert!(!log.contains(&format!("{}-wrong", t.access_token)));
    let unmasked: Vec<&str> = log.lines().filter(|l| l.contains(&csm)).collect();
    assert!(
        unmasked.is_empty(),
        "phone numbers are masked in logs: {unmasked:#?}"
    );
    w.shutdown().await;
}

/// E.164 numbers are accepted as they are, normalised from the usual ways
/// of writing them, or refused with 400 when no country code is given or
/// the number cannot exist.
#[tokio::test]
async fn csm_numbers_are_accepted_normalised_or_refused() {
    let w = spawn_world().await;
    let path = format!("/admin/tenants/{}/csms/csm-42", w.tenant.tenant_id);
    for (input, stored) in [
        ("+919876543210", "+919876543210"),
        ("+91 98765 43210", "+919876543210"),
        ("0091 98765 43210", "+919876543210"),
        ("+1 (415) 555-2671", "+14155552671"),
    ] {
        let (status, body, _) =
            admin(&w, "PUT", &path, Some(json!({"whatsapp_number": input}))).await;
        assert!(status == 200 || status == 201, "{input}: {body}");
        assert_eq!(body["whatsapp_number"], stored, "{input}");
        let (_, got, _) = admin(&w, "GET", &path, None).await;
        assert_eq!(got["whatsapp_number"], stored, "{input}");
    }
    for input in ["12345", "abc", "+91", "9876543210", "+91 98765"] {
        let (status, body, _) =
            admin(&w, "PUT", &path, Some(json!({"whatsapp_number": input}))).await;
        assert_eq!(status, 400, "{input}: {body}");
        assert_eq!(body["error"]["code"], "invalid_phone_number", "{input}");
    }
    let (status, body, _) = admin(&w, "PUT", &path, Some(json!({"number": "+919876543210"}))).await;
    assert_eq!(status, 400, "{body}");
    // The last good number is still the one stored.
    let (_, got, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(got["whatsapp_number"], "+14155552671");

    let (status, _, text) = admin(&w, "DELETE", &path, None).await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, body, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "csm_not_found");
    let (status, _, _) = admin(&w, "DELETE", &path, None).await;
    assert_eq!(status, 404);
    // No roster for a tenant that is not configured.
    let (status, body, _) = admin(
        &w,
        "PUT",
        "/admin/tenants/nobody/csms/csm-1",
        Some(json!({"whatsapp_number": "+919876543210"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "tenant_not_found");
    w.shutdown().await;
}

async fn wait_for_state(w: &World, key: &str, state: LedgerState) {
    eventually(Duration::from_secs(20), || async {
        w.ledger(key).await.is_some_and(|l| l.state == state)
    })
    .await;
}

/// A number Meta called undeliverable (131026, met by the sender) shows as
/// such on the CSM and in the channel status, stays so when the same number
/// is saved again, and clears when the number changes. The parked alert is
/// counted for the tenant and its timeline says why.
#[tokio::test]
async fn an_undeliverable_number_is_flagged_until_it_changes() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    let path = format!("/admin/tenants/{}/csms/csm-7", w.tenant.tenant_id);
    let (status, body, _) = admin(&w, "PUT", &path, Some(json!({"whatsapp_number": csm}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["undeliverable"], false);
    w.meta
        .set_knobs(
            &json!({"undeliverable": [csm.trim_start_matches('+')], "window_error_mode": "sync"}),
        )
        .await
        .unwrap();
    let req = send_request(&w.tenant.tenant_id, &csm);
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Parked).await;

    let (_, got, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(got["undeliverable"], true, "{got}");
    let (_, status_page, _) = admin(
        &w,
        "GET",
        &format!("/admin/tenants/{}/channel", w.tenant.tenant_id),
        None,
    )
    .await;
    assert_eq!(
        status_page["csms"][0]["undeliverable"], true,
        "{status_page}"
    );
    assert_eq!(status_page["dlq"]["parked"], 1, "{status_page}");
    let templates = status_page["templates"].as_array().expect("templates");
    assert_eq!(templates.len(), 6, "{status_page}");
    assert!(
        templates.iter().all(|t| t["status"] == "APPROVED"),
        "{status_page}"
    );
    let (_, timeline, _) = admin(
        &w,
        "GET",
        &format!("/admin/tenants/{}/messages/{}", w.tenant.tenant_id, req.key),
        None,
    )
    .await;
    assert_eq!(timeline["state"], "parked", "{timeline}");
    let parked = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "parked")
        .cloned()
        .unwrap_or_else(|| panic!("no parked event: {timeline}"));
    assert!(
        parked["reason"]
            .as_str()
            .unwrap_or("")
            .contains("undeliverable_number"),
        "{timeline}"
    );

    // Saved again unchanged: still flagged.
    let (status, body, _) = admin(&w, "PUT", &path, Some(json!({"whatsapp_number": csm}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["undeliverable"].clone(), body["changed"].clone()),
        (json!(true), json!(false))
    );
    // Changed: the new number is not flagged.
    let other = csm_number();
    let (_, body, _) = admin(&w, "PUT", &path, Some(json!({"whatsapp_number": other}))).await;
    assert_eq!(body["undeliverable"], false, "{body}");
    let (_, got, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(got["undeliverable"], false, "{got}");
    w.shutdown().await;
}

/// The timeline of a free-form alert: queued, sent (free-form, with its
/// wamid), delivered and read from Meta's status webhooks; and the channel
/// status shows when the last webhook arrived.
#[tokio::test]
async fn timeline_shows_an_alert_from_queued_to_read() {
    let w = spawn_world().await;
    let status_path = format!("/admin/tenants/{}/channel", w.tenant.tenant_id);
    let (_, before, _) = admin(&w, "GET", &status_path, None).await;
    assert_eq!(before["last_webhook_at"], Value::Null, "{before}");
    let started = now();
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let req = send_request(&w.tenant.tenant_id, &csm).text("Globex is at 85%");
    w.enqueue(&req.json()).await;
    let path = format!("/admin/tenants/{}/messages/{}", w.tenant.tenant_id, req.key);
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = loop {
        let (status, body, _) = admin(&w, "GET", &path, None).await;
        let read = status == 200
            && body["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["event"] == "read"));
        if read || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let events: Vec<&str> = last["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["queued", "sent", "delivered", "read"], "{last}");
    assert_eq!(last["mode"], "free_form");
    assert_eq!(last["state"], "sent");
    assert!(
        last["wamid"].as_str().unwrap().starts_with("wamid."),
        "{last}"
    );
    let (_, after, _) = admin(&w, "GET", &status_path, None).await;
    assert!(
        after["last_webhook_at"]
            .as_i64()
            .is_some_and(|t| t >= started),
        "{after}"
    );
    w.shutdown().await;
}

fn env(pairs: &[(&str, &str)]) -> WorldOptions {
    let mut o = WorldOptions::default();
    for (k, v) in pairs {
        o.env.insert(k.to_string(), v.to_string());
    }
    o
}

/// A token saved through the admin API (its own function, its own caches)
/// reaches the sender within `SECRET_CACHE_TTL_SECS` without any 190: the
/// sender still has the old token right after the save, the new one within
/// the TTL, and then sends with it.
#[tokio::test]
async fn a_rotated_token_is_picked_up_within_the_cache_ttl() {
    let ttl = Duration::from_secs(2);
    let w = spawn_world_with(env(&[("SECRET_CACHE_TTL_SECS", "2")])).await;
    let admin_fn = admin_function(&w);
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let directory = &w.stack.app.directory;
    let tenant = directory.tenant(&w.tenant_id).await.unwrap().unwrap();

    let mut t = world_tenant(&w);
    t.access_token = format!("EAAG-rotated-{}", short_id());
    let warmed = Instant::now();
    let cached = directory.token(&tenant).await.unwrap();
    assert_eq!(cached.access_token.expose_secret(), w.tenant.access_token);
    w.meta
        .rotate_token(&t.phone_number_id, &t.access_token)
        .await
        .unwrap();
    let (status, body) = admin_direct(&admin_fn, "PUT", &t.path(), t.body()).await;
    assert_eq!(status, 200, "{body}");
    let stale = directory.token(&tenant).await.unwrap();
    assert_eq!(
        stale.access_token.expose_secret(),
        w.tenant.access_token,
        "the sender's cache still holds the old token right after the save"
    );
    eventually(Duration::from_secs(10), || async {
        directory
            .token(&tenant)
            .await
            .unwrap()
            .access_token
            .expose_secret()
            == t.access_token
    })
    .await;
    let picked_up = warmed.elapsed();
    assert!(
        picked_up <= ttl + Duration::from_millis(500),
        "picked up after {picked_up:?}, TTL {ttl:?}"
    );
    eprintln!("rotated token picked up after {picked_up:?} (TTL {ttl:?})");

    let req = send_request(&w.tenant.tenant_id, &csm).text("after rotation");
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Sent).await;
    let stats = w.meta.stats().await.unwrap();
    assert_eq!(
        stats.rejections_by_code.get("190"),
        None,
        "no send met the old token"
    );
    w.shutdown().await;
}

/// With a long cache TTL, a sender holding a rotated-away token meets a 190,
/// refreshes the secret once and sends with the new token: one 190, one
/// message.
#[tokio::test]
async fn a_190_forces_one_refresh_and_the_send_succeeds() {
    let w = spawn_world_with(env(&[("SECRET_CACHE_TTL_SECS", "300")])).await;
    let admin_fn = admin_function(&w);
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let first = send_request(&w.tenant.tenant_id, &csm).text("before rotation");
    w.enqueue(&first.json()).await;
    wait_for_state(&w, &first.key, LedgerState::Sent).await;

    let mut t = world_tenant(&w);
    t.access_token = format!("EAAG-rotated-{}", short_id());
    w.meta
        .rotate_token(&t.phone_number_id, &t.access_token)
        .await
        .unwrap();
    let (status, body) = admin_direct(&admin_fn, "PUT", &t.path(), t.body()).await;
    assert_eq!(status, 200, "{body}");

    let second = send_request(&w.tenant.tenant_id, &csm).text("after rotation");
    w.enqueue(&second.json()).await;
    wait_for_state(&w, &second.key, LedgerState::Sent).await;
    let stats = w.meta.stats().await.unwrap();
    assert_eq!(stats.rejections_by_code.get("190"), Some(&1), "{stats:?}");
    assert_eq!(w.messages_to(&csm).await.len(), 2);
    w.shutdown().await;
}

/// Two tenants in one deployment: neither's admin calls, roster, timeline
/// or webhook can read or change the other's data.
#[tokio::test]
async fn two_tenants_stay_isolated_end_to_end() {
    let w = spawn_world().await; // tenant A
    let a = world_tenant(&w);
    let b = NewTenant::fresh();
    b.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &b.path(), Some(b.body())).await;
    assert_eq!(status, 201, "{body}");

    // A cannot take B's number, even with B's (valid) token: 409, B unchanged.
    let mut grab = b.body();
    grab["verify_token"] = json!(format!("a-verify-{}", short_id()));
    let (status, body, _) = admin(&w, "PUT", &a.path(), Some(grab)).await;
    assert_eq!(status, 409, "{body}");
    let b_config = stored_config(&w, &b.tenant_id).await.unwrap();
    assert_eq!(b_config.phone_number_id.as_str(), b.phone_number_id);
    let a_config = stored_config(&w, &a.tenant_id).await.unwrap();
    assert_eq!(a_config.phone_number_id.as_str(), a.phone_number_id);
    let a_secret = stored_secret(&w, &a.tenant_id).await.unwrap();
    assert_eq!(a_secret.access_token.expose_secret(), a.access_token);
    let b_secret = stored_secret(&w, &b.tenant_id).await.unwrap();
    assert_eq!(b_secret.verify_token.expose_secret(), b.verify_token);

    // The same CSM id in both rosters: each sees and deletes only its own.
    let (na, nb) = (csm_number(), csm_number());
    let csm_a = format!("/admin/tenants/{}/csms/csm-1", a.tenant_id);
    let csm_b = format!("/admin/tenants/{}/csms/csm-1", b.tenant_id);
    admin(&w, "PUT", &csm_a, Some(json!({"whatsapp_number": na}))).await;
    admin(&w, "PUT", &csm_b, Some(json!({"whatsapp_number": nb}))).await;
    let (_, got, _) = admin(&w, "GET", &csm_a, None).await;
    assert_eq!(got["whatsapp_number"], na.as_str());
    let (status, _, _) = admin(&w, "DELETE", &csm_a, None).await;
    assert_eq!(status, 204);
    let (_, got, _) = admin(&w, "GET", &csm_b, None).await;
    assert_eq!(
        got["whatsapp_number"],
        nb.as_str(),
        "B's entry survives A's delete"
    );

    // B's alert (free-form: B's CSM wrote first): visible on B's timeline only.
    let b_csm = csm_number();
    w.meta
        .inbound(&InboundRequest {
            phone_number_id: b.phone_number_id.clone(),
            from: b_csm.clone(),
            text: "hi".into(),
            timestamp: None,
            profile_name: None,
        })
        .await
        .unwrap();
    let req = send_request(&b.tenant_id, &b_csm).text("for B");
    w.enqueue(&req.json()).await;
    eventually(Duration::from_secs(20), || async {
        let (s, body, _) = admin(
            &w,
            "GET",
            &format!("/admin/tenants/{}/messages/{}", b.tenant_id, req.key),
            None,
        )
        .await;
        s == 200 && body["state"] == "sent"
    })
    .await;
    let (status, body, _) = admin(
        &w,
        "GET",
        &format!("/admin/tenants/{}/messages/{}", a.tenant_id, req.key),
        None,
    )
    .await;
    assert_eq!(status, 404, "A reads B's timeline: {body}");

    // Wait for B's status webhooks, then compare the status pages.
    eventually(Duration::from_secs(10), || async {
        admin(&w, "GET", &b.path(), None).await.1["last_webhook_at"].is_i64()
    })
    .await;
    let (_, page_a, text_a) = admin(&w, "GET", &a.path(), None).await;
    for leak in [&b.tenant_id, &b.phone_number_id, &b.waba_id, &nb, &b_csm] {
        assert!(
            !text_a.contains(leak.as_str()),
            "A's status shows B's {leak}: {text_a}"
        );
    }
    assert_eq!(
        page_a["last_webhook_at"],
        Value::Null,
        "B's webhooks are not A's"
    );

    // A's signed webhook naming B's ids is refused and changes nothing of B's.
    let b_window_csm = csm_number();
    let forged = json!({"object": "whatsapp_business_account", "entry": [{"id": b.waba_id, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": b.phone_number_id},
        "contacts": [{"profile": {"name": "x"}, "wa_id": b_window_csm.trim_start_matches('+')}],
        "messages": [{"from": b_window_csm.trim_start_matches('+'), "id": format!("wamid.{}", short_id()), "timestamp": now().to_string(), "type": "text", "text": {"body": "hi"}}]
    }}]}]});
    let r = w.post_signed(forged.to_string().as_bytes()).await;
    assert_eq!(r.status(), 401);
    let window = w
        .stack
        .app
        .store
        .get_window(
            &TenantId::parse(&b.tenant_id).unwrap(),
            &fincelo::identity::Identity::Number(E164::parse(&b_window_csm).unwrap()),
        )
        .await
        .unwrap();
    assert!(window.is_none(), "A's forged body opened a window for B");
    w.shutdown().await;
}

/// A token rotated directly in Secrets Manager (not through the API) is
/// used by the running sender within `SECRET_CACHE_TTL_SECS`, with no 190.
#[tokio::test]
async fn a_token_rotated_in_secrets_manager_is_picked_up_within_the_ttl() {
    let w = spawn_world_with(env(&[("SECRET_CACHE_TTL_SECS", "2")])).await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let first = send_request(&w.tenant.tenant_id, &csm).text("before rotation");
    w.enqueue(&first.json()).await;
    wait_for_state(&w, &first.key, LedgerState::Sent).await;

    w.rotate_token().await;
    let rotated = Instant::now();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = send_request(&w.tenant.tenant_id, &csm).text("after rotation");
    w.enqueue(&second.json()).await;
    wait_for_state(&w, &second.key, LedgerState::Sent).await;
    eprintln!(
        "sent with the rotated token {:?} after the rotation",
        rotated.elapsed()
    );
    let stats = w.meta.stats().await.unwrap();
    assert_eq!(stats.rejections_by_code.get("190"), None, "{stats:?}");
    assert_eq!(w.messages_to(&csm).await.len(), 2);
    w.shutdown().await;
}

/// Re-saving a tenant with a new phone number id and verify token releases
/// the old ones in the same write: the old number can be claimed by another
/// tenant and the old verify token no longer passes the handshake.
#[tokio::test]
async fn changing_ids_and_verify_token_releases_the_old_ones() {
    let w = spawn_world().await;
    let mut t = NewTenant::fresh();
    t.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 201, "{body}");
    let (old_number, old_verify) = (t.phone_number_id.clone(), t.verify_token.clone());

    t.phone_number_id = digits(15);
    t.verify_token = format!("verify-new-{}", short_id());
    t.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &t.path(), Some(t.body())).await;
    assert_eq!(status, 200, "{body}");
    let config = stored_config(&w, &t.tenant_id).await.unwrap();
    assert_eq!(config.phone_number_id.as_str(), t.phone_number_id);
    let store = &w.stack.app.store;
    let owner = |n: String| async move {
        store
            .tenant_by_alias(fincelo::store::AliasKind::PhoneNumberId, &n)
            .await
            .unwrap()
    };
    assert_eq!(owner(old_number.clone()).await, None, "old number released");
    assert_eq!(
        owner(t.phone_number_id.clone())
            .await
            .map(|x| x.to_string()),
        Some(t.tenant_id.clone())
    );
    let webhook_url = w.stack.webhook_url();
    let http = w.http();
    let handshake = |token: String| {
        let url =
            format!("{webhook_url}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=7");
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(handshake(old_verify).await, 403);
    assert_eq!(handshake(t.verify_token.clone()).await, 200);

    // Another tenant can now take the released number.
    let mut other = NewTenant::fresh();
    other.phone_number_id = old_number;
    other.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &other.path(), Some(other.body())).await;
    assert_eq!(status, 201, "{body}");
    w.shutdown().await;
}

/// A body as API Gateway passes it: JSON text, or base64 (as it sends
/// binary-typed bodies).
enum EventBody<'a> {
    Json(&'a Value),
    Base64(&'a str),
}

/// API Gateway's v2 event (HTTP API) for an admin request, with the IAM
/// authoriser's identity when `signed`.
fn apigw_event(method: &str, path: &str, body: Option<EventBody>, signed: bool) -> String {
    let (body, base64) = match body {
        None => (None, false),
        Some(EventBody::Json(v)) => (Some(v.to_string()), false),
        Some(EventBody::Base64(b)) => (Some(b.to_string()), true),
    };
    let mut context = json!({
        "routeKey": format!("{method} {path}"),
        "accountId": "123456789012",
        "stage": "$default",
        "requestId": "id",
        "apiId": "api-id",
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "time": "25/Nov/2026:19:03:58 +0000",
        "timeEpoch": 1764097438000_u64,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "fincelo-backend"}
    });
    if signed {
        context["authorizer"] = json!({"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AROA:backend", "userArn": "arn:aws:sts::123456789012:assumed-role/fincelo-backend/x", "userId": "AROA"}});
    }
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": context,
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

/// Serves an API Gateway v2 event through the `lambda_http` adapter.
async fn via_lambda(
    w: &World,
    method: &str,
    path: &str,
    body: Option<EventBody<'_>>,
    signed: bool,
) -> (u16, Value) {
    let req = lambda_http::request::from_str(&apigw_event(method, path, body, signed))
        .expect("an API Gateway v2 event");
    let resp = fincelo::admin::lambda::serve(&w.stack.app, req)
        .await
        .unwrap();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    (resp.status().as_u16(), body)
}

/// The Lambda edge: API Gateway's own v2 event (IAM authoriser, base64
/// body) reaches the same handler; unknown routes are 404 and wrong
/// methods 405.
#[tokio::test]
async fn the_lambda_adapter_serves_the_same_routes() {
    let w = spawn_world().await;
    let channel = format!("/admin/tenants/{}/channel", w.tenant.tenant_id);
    let (status, body) = via_lambda(&w, "GET", &channel, None, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone_number_id"], w.tenant.phone_number_id.as_str());
    let (status, _) = via_lambda(&w, "GET", "/admin/tenants/nobody/channel", None, true).await;
    assert_eq!(status, 404);
    let (status, _) = via_lambda(&w, "POST", &channel, None, true).await;
    assert_eq!(status, 405);
    let (status, _) = via_lambda(&w, "GET", "/admin/elsewhere", None, true).await;
    assert_eq!(status, 404);

    let csm = format!("/admin/tenants/{}/csms/csm-9", w.tenant.tenant_id);
    // {"whatsapp_number":"+1 (415) 555-2671"}
    let number = EventBody::Base64("eyJ3aGF0c2FwcF9udW1iZXIiOiIrMSAoNDE1KSA1NTUtMjY3MSJ9");
    let (status, body) = via_lambda(&w, "PUT", &csm, Some(number), true).await;
    assert_eq!(status, 201, "{body}");
    let stored = w
        .stack
        .app
        .store
        .get_csm(&w.tenant_id, &fincelo::ids::CsmId::parse("csm-9").unwrap())
        .await
        .unwrap()
        .expect("roster entry");
    assert_eq!(stored.whatsapp_number.as_str(), "+14155552671");
    w.shutdown().await;
}

/// A request whose context carries no IAM identity (a route that reached
/// the function without the `AWS_IAM` authoriser) is refused 403
/// `forbidden` by the handler itself, whatever the route: no secret, no
/// configuration and no roster entry is written, and Meta is not asked.
#[tokio::test]
async fn an_admin_request_without_an_iam_identity_writes_nothing() {
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;
    let before = w.meta.stats().await.unwrap();
    let (status, body) = via_lambda(
        &w,
        "PUT",
        &t.path(),
        Some(EventBody::Json(&t.body())),
        false,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(stored_secret(&w, &t.tenant_id).await.is_none());
    assert!(stored_config(&w, &t.tenant_id).await.is_none());

    let csm = format!("/admin/tenants/{}/csms/csm-1", w.tenant.tenant_id);
    let number = json!({"whatsapp_number": csm_number()});
    let (status, _) = via_lambda(&w, "PUT", &csm, Some(EventBody::Json(&number)), false).await;
    assert_eq!(status, 403);
    let (status, _) = via_lambda(&w, "GET", &csm, None, false).await;
    assert_eq!(status, 403);
    assert!(w
        .stack
        .app
        .store
        .list_csms(&w.tenant_id)
        .await
        .unwrap()
        .is_empty());
    // The handler itself, whoever calls it.
    let resp = fincelo::admin::handle(
        &w.stack.app,
        fincelo::admin::AdminRequest {
            method: http::Method::PUT,
            path: t.path(),
            query: None,
            body: t.body().to_string().into(),
            caller: None,
        },
    )
    .await;
    assert_eq!(resp.status, 403);
    assert!(stored_secret(&w, &t.tenant_id).await.is_none());
    let after = w.meta.stats().await.unwrap();
    assert_eq!(before, after, "Meta was not asked");
    w.shutdown().await;
}

/// A channel save whose transaction is refused (409: an alias the
/// transaction finds taken, here the tenant's old number, claimed meanwhile
/// by another tenant) leaves the old secret current: the stored values are
/// the old ones, the handshake still answers with the old verify token and
/// refuses the new one, and bodies still verify with the old app secret.
#[tokio::test]
async fn a_refused_channel_save_leaves_the_old_secret_current() {
    let w = spawn_world().await;
    let old = NewTenant::fresh();
    old.register(&w).await;
    let (status, body, _) = admin(&w, "PUT", &old.path(), Some(old.body())).await;
    assert_eq!(status, 201, "{body}");
    let challenge = format!("ch-{}", short_id());
    let r = w.handshake(&old.verify_token, &challenge).await;
    assert_eq!(r.status(), 200, "the handshake works before");

    // A new number, app secret and verify token; Meta knows the new number.
    let mut new = NewTenant::fresh();
    new.tenant_id = old.tenant_id.clone();
    new.access_token = old.access_token.clone();
    new.waba_id = old.waba_id.clone();
    new.register(&w).await;
    // Meanwhile another tenant holds the old number's alias: the transaction
    // would delete it as stale, and its condition refuses the whole write.
    let store = &w.stack.app.store;
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PNID#{}", old.phone_number_id)),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ALIAS".into()),
        )
        .item(
            "tenant_id",
            aws_sdk_dynamodb::types::AttributeValue::S("someone-else".into()),
        )
        .send()
        .await
        .unwrap();
    let (status, body, _) = admin(&w, "PUT", &new.path(), Some(new.body())).await;
    assert_eq!(status, 409, "{body}");

    let secret = stored_secret(&w, &old.tenant_id).await.unwrap();
    assert_eq!(secret.app_secret.expose_secret(), old.app_secret);
    assert_eq!(secret.verify_token.expose_secret(), old.verify_token);
    let config = stored_config(&w, &old.tenant_id).await.unwrap();
    assert_eq!(config.phone_number_id.as_str(), old.phone_number_id);
    // The webhook function as a fresh instance would read it (no cache).
    let webhook = admin_function(&w);
    let tenant = webhook
        .directory
        .tenant(&TenantId::parse(&old.tenant_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let read = webhook.directory.secrets(&tenant).await.unwrap();
    assert_eq!(read.verify_token.expose_secret(), old.verify_token);
    let r = w.handshake(&old.verify_token, &challenge).await;
    assert_eq!(r.status(), 200, "the old verify token still answers");
    assert_eq!(r.text().await.unwrap(), challenge);
    let r = w.handshake(&new.verify_token, &challenge).await;
    assert_eq!(r.status(), 403, "the new verify token was never saved");
    w.shutdown().await;
}

/// An `app_secret` or `verify_token` that is a placeholder, empty or too
/// short is refused with 400 `weak_secret` naming the field, before Meta is
/// asked; the value is never echoed, and nothing is stored.
#[tokio::test]
async fn weak_secrets_are_refused_by_the_channel_save() {
    let w = spawn_world().await;
    let t = NewTenant::fresh();
    t.register(&w).await;
    let with = |field: &str, value: &str| {
        let mut b = t.body();
        b[field] = json!(value);
        b
    };
    let short_secret = "0123456789abcdef0123456789abcde";
    let cases = [
        (
            with("app_secret", "REPLACE_ME"),
            "app_secret is still the placeholder REPLACE_ME",
            "REPLACE_ME",
        ),
        (
            with("app_secret", short_secret),
            "app_secret is shorter than 32 characters",
            short_secret,
        ),
        (
            with("verify_token", "short-verify"),
            "verify_token is shorter than 16 characters",
            "short-verify",
        ),
        (
            with("access_token", "REPLACE_ME"),
            "access_token is still the placeholder",
            "never-echoed",
        ),
    ];
    let before = w.meta.stats().await.unwrap();
    for (body, message, value) in cases {
        let (status, answer, text) = admin(&w, "PUT", &t.path(), Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "weak_secret", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{answer}"
        );
        if value != "REPLACE_ME" {
            assert!(!text.contains(value), "{text}");
        }
    }
    assert_eq!(before, w.meta.stats().await.unwrap(), "Meta was not asked");
    assert!(stored_secret(&w, &t.tenant_id).await.is_none());
    assert!(stored_config(&w, &t.tenant_id).await.is_none());
    w.shutdown().await;
}

/// `GET .../csms` lists the whole roster for `fwa csm list`: each CSM's
/// id, number and whether Meta found the number undeliverable; an unknown
/// tenant is 404.
#[tokio::test]
async fn the_roster_lists_every_csm_with_its_flag() {
    let w = spawn_world().await;
    let base = format!("/admin/tenants/{}/csms", w.tenant.tenant_id);
    let (status, body, _) = admin(&w, "GET", &base, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["csms"], json!([]));
    let (a, b) = (csm_number(), csm_number());
    for (id, number) in [("csm-a", &a), ("csm-b", &b)] {
        let (status, body, _) = admin(
            &w,
            "PUT",
            &format!("{base}/{id}"),
            Some(json!({"whatsapp_number": number})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    w.stack
        .app
        .store
        .flag_undeliverable(&w.tenant_id, &E164::parse(&b).unwrap(), 131026, now())
        .await
        .unwrap();
    let (status, body, _) = admin(&w, "GET", &base, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant_id"], w.tenant.tenant_id.as_str());
    let listed: Vec<(String, String, bool)> = body["csms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["csm_id"].as_str().unwrap().to_string(),
                c["whatsapp_number"].as_str().unwrap().to_string(),
                c["undeliverable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("csm-a".to_string(), a, false),
            ("csm-b".to_string(), b, true)
        ]
    );
    let (status, body, _) = admin(&w, "GET", "/admin/tenants/nobody/csms", None).await;
    assert_eq!(status, 404, "{body}");
    w.shutdown().await;
}

/// The channel status reads the roster's undeliverable flags with one query
/// of the tenant's partition, not a read per CSM: the same number of
/// DynamoDB requests for a roster of 3 as for one of 12. Each CSM shows its
/// own number's flag: flagged, never flagged, or flagged and cleared when a
/// CSM was saved with that number.
#[tokio::test]
async fn the_channel_status_costs_the_same_requests_whatever_the_roster_size() {
    use fincelo_bench::counting::{counted_clients, RequestCounter};

    let w = spawn_world().await;
    let tenant = TenantId::parse(w.tenant.tenant_id.clone()).unwrap();
    let store = &w.stack.app.store;
    let world = &w;
    let put = |id: String, number: String| {
        let path = format!("/admin/tenants/{}/csms/{id}", world.tenant.tenant_id);
        async move {
            let (status, body, _) = admin(
                world,
                "PUT",
                &path,
                Some(json!({"whatsapp_number": number})),
            )
            .await;
            assert!(status == 200 || status == 201, "{body}");
        }
    };
    let counter = RequestCounter::default();
    let (dynamo, sqs, secrets) = counted_clients(&w.stack.sdk, &counter);
    let app = App::from_clients((*w.stack.app.config).clone(), dynamo, sqs, secrets).unwrap();
    let status_page = || async {
        counter.reset();
        let resp = fincelo::admin::channel::status(&app, &tenant)
            .await
            .expect("status");
        assert_eq!(resp.status, 200);
        let flags: std::collections::BTreeMap<String, bool> = resp.body.expect("body")["csms"]
            .as_array()
            .expect("csms")
            .iter()
            .map(|c| {
                (
                    c["csm_id"].as_str().unwrap().to_string(),
                    c["undeliverable"].as_bool().unwrap(),
                )
            })
            .collect();
        (flags, counter.calls_to("DynamoDB"))
    };

    let tenant_ref = &tenant;
    let flag = |number: String| async move {
        store
            .flag_undeliverable(tenant_ref, &E164::parse(&number).unwrap(), 131026, now())
            .await
            .unwrap();
    };
    let flagged = csm_number();
    put("csm-flagged".into(), flagged.clone()).await;
    flag(flagged).await;
    put("csm-plain".into(), csm_number()).await;
    // Saving a CSM with a flagged number clears that number's flag.
    let cleared = csm_number();
    flag(cleared.clone()).await;
    put("csm-cleared".into(), cleared).await;
    let (small, small_requests) = status_page().await;
    assert_eq!(
        small,
        [
            ("csm-cleared".to_string(), false),
            ("csm-flagged".to_string(), true),
            ("csm-plain".to_string(), false),
        ]
        .into_iter()
        .collect()
    );

    for i in 0..9 {
        put(format!("csm-more-{i}"), csm_number()).await;
    }
    let (large, large_requests) = status_page().await;
    assert_eq!(large.len(), 12, "{large:?}");
    assert_eq!(large.values().filter(|f| **f).count(), 1, "{large:?}");
    assert!(large["csm-flagged"]);
    assert_eq!(
        large_requests,
        small_requests,
        "requests for 12 CSMs as for 3: {:?}",
        counter.snapshot()
    );
    w.shutdown().await;
}

/// The template the default request (usage threshold, good health) uses.
const USAGE_TEMPLATE: &str = "fincelo_usage_opportunity";

/// Longer than a sender instance trusts a template status that is not
/// APPROVED (5 s): an approval is then seen by every instance.
const SENDER_STATUS_TRUST: Duration = Duration::from_secs(6);

/// An alert parked because Meta rejected its template (the six submitted
/// and left PENDING, then `USAGE_TEMPLATE` rejected with INVALID_FORMAT),
/// then the template approved again and the rejection forgotten by the
/// senders: the state in which an operator redrives. Returns its key and CSM.
async fn parked_then_fixed(w: &World) -> (String, String) {
    w.reject_one_of_pending_templates(USAGE_TEMPLATE).await;
    let csm = csm_number();
    let req = send_request(&w.tenant.tenant_id, &csm).no_deliver_by();
    w.enqueue(&req.json()).await;
    wait_for_state(w, &req.key, LedgerState::Parked).await;
    w.decide_template(USAGE_TEMPLATE, "APPROVED", None).await;
    eventually(Duration::from_secs(10), || async {
        w.template(USAGE_TEMPLATE)
            .await
            .is_some_and(|t| t.is_approved())
    })
    .await;
    tokio::time::sleep(SENDER_STATUS_TRUST).await;
    (req.key, csm)
}

/// `GET .../parked` lists a parked alert with its reason, Meta's reason in
/// the detail, and when (ISO-8601 UTC, unix seconds beside); `POST
/// .../redrive` after the fix puts it back: it is sent once, leaves the
/// list, its timeline shows the redrive, and a second redrive is refused
/// with its state in words.
#[tokio::test]
async fn a_parked_alert_is_listed_then_redriven_after_its_fix_and_sent_once() {
    let w = spawn_world().await;
    let t = w.tenant.tenant_id.clone();
    let (key, csm) = parked_then_fixed(&w).await;

    let (status, body, _) = admin(&w, "GET", &format!("/admin/tenants/{t}/parked"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    let entry = &body["parked"][0];
    assert_eq!(entry["idempotency_key"], key.as_str(), "{entry}");
    assert_eq!(entry["reason"], "template_rejected", "{entry}");
    assert!(
        entry["detail"]
            .as_str()
            .is_some_and(|d| d.contains(USAGE_TEMPLATE) && d.contains("INVALID_FORMAT")),
        "{entry}"
    );
    assert_eq!(entry["meta_code"], Value::Null, "{entry}");
    let at = entry["parked_at_unix"].as_i64().expect("unix seconds");
    assert_eq!(
        entry["parked_at"],
        fincelo::admin::when::iso8601(at).as_str(),
        "{entry}"
    );
    assert!(entry["parked_at"].as_str().unwrap().ends_with('Z'));

    let redrive = format!("/admin/tenants/{t}/messages/{key}/redrive");
    let (status, body, _) = admin(&w, "POST", &redrive, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "redriven", "{body}");
    assert_eq!(body["resumed"], false, "{body}");
    assert!(
        body["was"]
            .as_str()
            .is_some_and(|w| w.starts_with("template_rejected: ")),
        "{body}"
    );
    wait_for_state(&w, &key, LedgerState::Sent).await;
    assert_eq!(
        w.ledger(&key).await.unwrap().template.as_deref(),
        Some(USAGE_TEMPLATE)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 1, "sent exactly once");

    let (_, body, _) = admin(&w, "GET", &format!("/admin/tenants/{t}/parked"), None).await;
    assert_eq!(body["count"], 0, "{body}");
    let timeline = w.timeline(&key).await;
    let events: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"redriven") && events.contains(&"sent"),
        "{timeline}"
    );

    let (status, body, _) = admin(&w, "POST", &redrive, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_parked", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "alert {key} is not parked: it was sent as template {USAGE_TEMPLATE} at 20"
        )),
        "{message}"
    );
    w.shutdown().await;
}

/// A redrive that failed after making the key claimable (here: the send
/// queue refused the request) answers 502, sends nothing, and is finished by
/// the same call repeated: the alert is sent once.
#[tokio::test]
async fn a_redrive_that_stopped_half_way_is_finished_by_repeating_it() {
    let w = spawn_world().await;
    let t = w.tenant.tenant_id.clone();
    let (key, csm) = parked_then_fixed(&w).await;
    let redrive = format!("/admin/tenants/{t}/messages/{key}/redrive");

    let mut config = (*w.stack.app.config).clone();
    config.send_queue_url = format!("{}-missing", config.send_queue_url);
    let broken = App::new(config, &w.stack.sdk).expect("app");
    let (status, body) = admin_direct(&broken, "POST", &redrive, Value::Null).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "dependency_failed", "{body}");
    let entry = w.ledger(&key).await.unwrap();
    assert_eq!(entry.state, LedgerState::Retry);
    assert!(entry.redrive_pending, "{entry:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.messages_to(&csm).await.is_empty(), "nothing was sent");

    let (status, body, _) = admin(&w, "POST", &redrive, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resumed"], true, "{body}");
    wait_for_state(&w, &key, LedgerState::Sent).await;
    assert!(!w.ledger(&key).await.unwrap().redrive_pending);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.messages_to(&csm).await.len(), 1, "sent exactly once");
    w.shutdown().await;
}

/// A redrive names what it cannot do: a key that is waiting for its
/// template (409, the template and until when), a key the tenant never had
/// (404, with where a nameless request is), a tenant that is not configured;
/// the routes take one method each.
#[tokio::test]
async fn a_redrive_of_a_key_that_is_not_parked_is_refused_in_plain_words() {
    let w = spawn_world().await;
    let t = w.tenant.tenant_id.clone();
    w.submit_templates_pending().await;
    let req = send_request(&t, &csm_number()).no_deliver_by();
    w.enqueue(&req.json()).await;
    wait_for_state(&w, &req.key, LedgerState::Waiting).await;

    let (status, body, _) = admin(
        &w,
        "POST",
        &format!("/admin/tenants/{t}/messages/{}/redrive", req.key),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_parked");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "alert {} is not parked: it is waiting for template {USAGE_TEMPLATE} to be approved (until 20",
            req.key
        )) && message.ends_with("Z)"),
        "{message}"
    );
    assert_eq!(
        w.ledger(&req.key).await.unwrap().state,
        LedgerState::Waiting
    );

    let (status, body, _) = admin(
        &w,
        "POST",
        &format!("/admin/tenants/{t}/messages/no-such-key/redrive"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "message_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("only in the send DLQ"));

    let (status, body, _) = admin(&w, "GET", "/admin/tenants/nobody/parked", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("tenant_not_found"))
    );
    let (status, _, _) = admin(&w, "POST", &format!("/admin/tenants/{t}/parked"), None).await;
    assert_eq!(status, 405);
    let (status, _, _) = admin(
        &w,
        "GET",
        &format!("/admin/tenants/{t}/messages/{}/redrive", req.key),
        None,
    )
    .await;
    assert_eq!(status, 405);
    w.shutdown().await;
}

/// The channel status counts the alerts held for a template's approval
/// (`waiting_alerts`, what `fwa status` shows), down to 0 once approved.
#[tokio::test]
async fn the_channel_status_counts_the_alerts_waiting_for_a_template() {
    let w = spawn_world().await;
    let path = format!("/admin/tenants/{}/channel", w.tenant.tenant_id);
    w.submit_templates_pending().await;
    let (_, body, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(body["waiting_alerts"], 0, "{body}");
    let mut keys = Vec::new();
    for _ in 0..2 {
        let req = send_request(&w.tenant.tenant_id, &csm_number()).no_deliver_by();
        w.enqueue(&req.json()).await;
        keys.push(req.key);
    }
    for k in &keys {
        wait_for_state(&w, k, LedgerState::Waiting).await;
    }
    let (_, body, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(body["waiting_alerts"], 2, "{body}");
    w.decide_template(USAGE_TEMPLATE, "APPROVED", None).await;
    for k in &keys {
        wait_for_state(&w, k, LedgerState::Sent).await;
    }
    let (_, body, _) = admin(&w, "GET", &path, None).await;
    assert_eq!(body["waiting_alerts"], 0, "{body}");
    w.shutdown().await;
}
