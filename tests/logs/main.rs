//! Issue 8, secrets: every log line of a full scenario, captured through the
//! production JSON subscriber at `debug`, holds no token, app secret or
//! verify token, and phone numbers only masked.
//!
//! A binary of its own because it installs the process-wide subscriber: the
//! stack's pollers and HTTP server log from other threads and tasks, which a
//! thread-local subscriber would miss.

#[path = "../tests/helpers/mod.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fincelo::phone::E164;
use fincelo::startup::json_subscriber;
use serde_json::{json, Value};
use tracing_subscriber::fmt::MakeWriter;

use helpers::{csm_number, eventually, send_request, spawn_world_with, WorldOptions};

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_and_no_bare_phone_number_reaches_the_logs() {
    let capture = Capture::default();
    // The sandbox stands in for Meta: its own logs are not the system's.
    tracing::subscriber::set_global_default(json_subscriber(
        "debug,meta_sandbox=off",
        capture.clone(),
    ))
    .expect("first subscriber of this binary");

    let mut opts = WorldOptions::default();
    opts.sandbox.knobs.template_approval_delay_ms = 200;
    let w = spawn_world_with(opts).await;
    let csm = csm_number();
    let undeliverable = csm_number();

    // The newcomer's scenario: templates, a template send, a reply, a free-form send, statuses.
    fincelo_local::scenario::play(&w.stack, &w.meta, &w.tenant, &csm)
        .await
        .expect("scenario completes");

    // The handshake, right and wrong.
    for token in [w.tenant.verify_token.as_str(), "not-the-token"] {
        w.handshake(token, "42").await;
    }
    let url = w.stack.webhook_url();
    // A forged body naming the CSM, and one signed with the right secret but garbled.
    let forged = json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": w.tenant.phone_number_id}, "messages": [{"from": csm.trim_start_matches('+'), "id": "wamid.x", "timestamp": "1", "type": "text", "text": {"body": "hi"}}]}}]}]});
    w.http()
        .post(&url)
        .header("X-Hub-Signature-256", "sha256=00")
        .body(forged.to_string())
        .send()
        .await
        .unwrap();
    w.post_signed(format!("{{\"from\": \"{csm}\"").as_bytes())
        .await;

    // A rotated token: Meta says 190, the sender refreshes and sends.
    let rotated = w.rotate_token().await;
    let after_rotation = send_request(&w.tenant.tenant_id, &csm).text("after rotation");
    w.enqueue(&after_rotation.json()).await;

    // An undeliverable number (131026) and an invalid request naming the CSM.
    w.meta
        .set_knobs(&json!({"undeliverable": [undeliverable], "window_error_mode": "sync"}))
        .await
        .unwrap();
    w.approve_all_templates().await;
    let bounced = send_request(&w.tenant.tenant_id, &undeliverable);
    w.enqueue(&bounced.json()).await;
    let mut invalid = send_request(&w.tenant.tenant_id, &csm).json();
    invalid["event"]["type"] = json!("no_such_event");
    w.enqueue(&invalid).await;

    let settled = tokio::time::timeout(
        Duration::from_secs(30),
        eventually(Duration::from_secs(31), || async {
            w.ledger(&after_rotation.key)
                .await
                .is_some_and(|l| l.state == fincelo::store::LedgerState::Sent)
                && w.ledger(&bounced.key)
                    .await
                    .is_some_and(|l| l.state == fincelo::store::LedgerState::Parked)
        }),
    )
    .await;
    assert!(
        settled.is_ok(),
        "not settled: after rotation {:?}, bounced {:?}; logs: {}",
        w.ledger(&after_rotation.key).await,
        w.ledger(&bounced.key).await,
        capture
            .text()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let dlq = w
        .drain_until("SendDeadLetterQueue", Duration::from_secs(10), |got| {
            got.len() >= 2
        })
        .await;
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tenant = w.tenant.clone();
    w.shutdown().await;

    let logs = capture.text();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // The capture saw the system at work, or its silence would prove nothing.
    for expected in [
        "alert sent",
        "Meta refused the token (190); refreshing it once",
        "webhook refused",
        "invalid send request; parked",
    ] {
        assert!(
            lines.iter().any(|l| l["message"] == expected),
            "no log line {expected:?} among {} lines",
            lines.len()
        );
    }
    for (what, secret) in [
        ("access token", tenant.access_token.as_str()),
        ("rotated access token", rotated.as_str()),
        ("app secret", tenant.app_secret.as_str()),
        ("verify token", tenant.verify_token.as_str()),
    ] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "the {what} is in the logs: {leaks:#?}");
    }
    for number in [&csm, &undeliverable] {
        let bare = number.trim_start_matches('+');
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(bare)).collect();
        assert!(
            leaks.is_empty(),
            "{number} unmasked in the logs: {leaks:#?}"
        );
        let masked = E164::parse(number).unwrap().masked();
        assert!(
            logs.contains(&masked),
            "{number} should appear masked as {masked}"
        );
    }
}
