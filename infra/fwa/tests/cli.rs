//! `fwa` as an operator runs it: the built binary, against Meta's documented
//! webhook bodies, the local stack (moto at `FWA_TEST_MOTO` and the Meta
//! sandbox), and a "deployed" stack reached through the standard AWS
//! credential chain and a SigV4-checking stand-in for API Gateway. The
//! whole day-one-to-day-three journey is in `journey.rs`.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::store::LedgerState;
use fincelo_local::dev_state::{dev_state, write_dev_state};
use fincelo_local::{random_digits, LocalTenant, Stack, StackOptions, TimeControl};
use meta_sandbox::{SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/meta/webhook-examples"
);

async fn fwa(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fwa"));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in ["AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("fwa runs");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).await.expect("stdin written");
    } else {
        drop(child.stdin.take());
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("fwa finishes")
        .expect("fwa output")
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "fwa failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Counts what a body's `messages` changes carry, straight from its JSON
/// (other fields, such as `history`, hold old messages the intake skips).
fn carried(body: &Value, what: &str) -> usize {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
        .filter(|c| c["field"] == "messages")
        .map(|c| c["value"][what].as_array().map_or(0, Vec::len))
        .sum()
}

/// Every documented body is read: the ids it names, one line per message
/// and per status it carries, template updates, and the skipped fields.
#[tokio::test]
async fn inspect_webhook_reads_every_documented_example() {
    let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    let mut template_updates = 0;
    let mut skipped = 0;
    for f in &files {
        let body: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let out = json_out(&fwa(&["inspect-webhook", f.to_str().unwrap()], &[], None).await);
        let name = f.display();
        assert_eq!(
            out["messages"].as_array().map(Vec::len),
            Some(carried(&body, "messages")),
            "{name}: {out}"
        );
        assert_eq!(
            out["statuses"].as_array().map(Vec::len),
            Some(carried(&body, "statuses")),
            "{name}: {out}"
        );
        for id in body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["id"].as_str())
        {
            assert!(
                out["waba_ids"].as_array().unwrap().iter().any(|w| w == id),
                "{name}: WABA {id} missing from {out}"
            );
        }
        for m in out["messages"].as_array().unwrap() {
            for field in ["id", "from", "type", "timestamp"] {
                assert!(!m[field].is_null(), "{name}: message lacks {field}: {m}");
            }
        }
        template_updates += out["template_updates"].as_array().map_or(0, Vec::len);
        skipped += out["skipped"].as_array().map_or(0, Vec::len);
    }
    assert!(
        template_updates >= 4,
        "template updates read: {template_updates}"
    );
    assert!(
        skipped >= 5,
        "fields the intake skips are listed: {skipped}"
    );

    // From stdin, and a body that is not a webhook.
    let text = std::fs::read(files[0].clone()).unwrap();
    let from_stdin = json_out(&fwa(&["inspect-webhook", "-"], &[], Some(&text)).await);
    let from_file =
        json_out(&fwa(&["inspect-webhook", files[0].to_str().unwrap()], &[], None).await);
    assert_eq!(from_stdin, from_file);
    let bad = fwa(&["inspect-webhook", "-"], &[], Some(b"{\"entry\": 5")).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("fwa: "));
}

/// Issue 18's done-when: a message whose sender is known only by a
/// business-scoped user id (no `from`, as for a user with a username) is
/// reported with that BSUID, not skipped.
#[tokio::test]
async fn inspect_webhook_reports_a_message_from_a_bsuid_only_user() {
    let file = format!("{FIXTURES}/2026/own__message_text_bsuid_only.json");
    let out = json_out(&fwa(&["inspect-webhook", &file], &[], None).await);
    assert_eq!(out["skipped"], json!([]), "{out}");
    let m = &out["messages"][0];
    assert_eq!(m["from_user_id"], "IN.13491208655302741918", "{out}");
    assert_eq!(m["from_parent_user_id"], "IN.ENT.11815799212886844830");
    assert_eq!(m["username"], "@asharao");
    assert!(m["from"].is_null(), "{m}");
    assert_eq!(m["text"], "On it, calling Globex now");
}

struct Local {
    stack: Stack,
    sandbox: SandboxHandle,
    tenant: LocalTenant,
    moto: String,
    dir: std::path::PathBuf,
}

async fn local_stack() -> Local {
    local_stack_with(SandboxConfig::default()).await
}

/// A local stack and a sandbox on one clock (as `make dev` runs them).
async fn local_stack_with(config: SandboxConfig) -> Local {
    local_stack_of(config, None).await
}

/// [`local_stack_with`], with `sender_instances` pollers on the send queue
/// when given (0: messages stay on it for the test to read).
async fn local_stack_of(mut config: SandboxConfig, sender_instances: Option<u32>) -> Local {
    let moto = std::env::var("FWA_TEST_MOTO").unwrap_or_else(|_| "http://127.0.0.1:5056".into());
    let time = TimeControl::default();
    config.clock = time.sandbox_clock();
    let sandbox = meta_sandbox::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("sandbox");
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut opts = StackOptions::new(&moto, sandbox.base_url(), format!("fwa-{id}"));
    opts.time = time;
    if let Some(n) = sender_instances {
        opts.sender_instances = n;
    }
    opts.overrides.send_queue_visibility_secs = Some(2);
    let stack = Stack::start(opts).await.expect("stack (is moto running?)");
    let tenant = LocalTenant::unique("tenant");
    stack.add_tenant(&tenant).await.unwrap();
    sandbox
        .client()
        .register_tenant(&tenant.sandbox_spec(stack.webhook_url()))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("fwa-test-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    Local {
        stack,
        sandbox,
        tenant,
        moto,
        dir,
    }
}

impl Local {
    /// The state file `make dev` would write for this stack, naming its tenant.
    fn state(&self) -> String {
        let path = self.dir.join("dev.json");
        let state = dev_state(
            &self.stack,
            &self.moto,
            &self.sandbox.base_url(),
            Some(&self.tenant.tenant_id),
        );
        write_dev_state(&path, &state).unwrap();
        path.to_string_lossy().into_owned()
    }

    async fn shutdown(self) {
        self.stack.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

/// What fwa printed, both streams.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// fwa ran and succeeded; its standard output.
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "fwa failed: {}", printed(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// fwa refused, with `fwa: ...` on standard error; that line.
fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "fwa should have failed: {}",
        printed(out)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with("fwa: ") || err.starts_with("error: "),
        "{err}"
    );
    err
}

/// No Rust Debug text reaches a person.
fn readable(text: &str) {
    for debug in ["Some(", "None", "Ok(", "Err(", "\\\""] {
        assert!(!text.contains(debug), "Debug text {debug:?} in: {text}");
    }
}

fn csm() -> String {
    let u = uuid::Uuid::new_v4().as_u128() % 1_000_000;
    format!("+919876{u:06}")
}

async fn ledger_state(l: &Local, key: &str) -> Option<LedgerState> {
    let t = TenantId::parse(&l.tenant.tenant_id).unwrap();
    let k = IdempotencyKey::parse(key).unwrap();
    l.stack
        .app
        .store
        .get_ledger(&t, &k)
        .await
        .unwrap()
        .map(|e| e.state)
}

async fn until(timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Against the local stack, as after `make dev`: submit the templates, send
/// an alert (a template: no window), let the CSM reply, read the window and
/// the alert's timeline.
#[tokio::test]
async fn drives_the_local_stack() {
    let l = local_stack().await;
    let state = l.state();
    let st = state.as_str();
    let submitted = json_out(&fwa(&["--state", st, "--json", "submit-templates"], &[], None).await);
    assert_eq!(
        submitted["results"].as_array().map(Vec::len),
        Some(6),
        "{submitted}"
    );
    let tenant = TenantId::parse(&l.tenant.tenant_id).unwrap();
    until(Duration::from_secs(15), async || {
        l.stack
            .app
            .store
            .list_templates(&tenant)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.is_approved())
            .count()
            == 6
    })
    .await;

    let to = csm();
    let key = format!("fwa-test-{}", uuid::Uuid::new_v4().simple());
    let out = fwa(
        &["--state", st, "enqueue", "--to", &to, "--key", &key],
        &[],
        None,
    )
    .await;
    assert!(ok(&out).contains(&format!("enqueued alert {key}")));
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &key).await == Some(LedgerState::Sent)
    })
    .await;
    let timeline = json_out(&fwa(&["--state", st, "--json", "timeline", &key], &[], None).await);
    assert_eq!(timeline["state"], "sent", "{timeline}");
    assert_eq!(timeline["mode"], "template", "{timeline}");
    let text = ok(&fwa(&["--state", st, "timeline", &key], &[], None).await);
    assert!(
        text.contains("sent as template fincelo_usage_opportunity"),
        "{text}"
    );
    readable(&text);

    let closed = json_out(&fwa(&["--state", st, "--json", "window", &to], &[], None).await);
    assert_eq!(closed["open"], false, "{closed}");
    let reply = ok(&fwa(&["--state", st, "reply", "--from", &to], &[], None).await);
    assert!(reply.contains("webhook was delivered"), "{reply}");
    until(Duration::from_secs(10), async || {
        let w = json_out(&fwa(&["--state", st, "--json", "window", &to], &[], None).await);
        w["open"] == true && w["seconds_left"].as_i64().is_some_and(|s| s > 86_000)
    })
    .await;
    let text = ok(&fwa(&["--state", st, "window", &to], &[], None).await);
    assert!(
        text.contains("window open until") && text.contains("Z ("),
        "{text}"
    );

    // The CSM answers the alert: a tap on its quick reply, then a quoted
    // reply; the timeline says who did what, and when.
    let no_such = refused(&fwa(&["--state", st, "tap", &key, "Maybe"], &[], None).await);
    assert!(
        no_such.contains("it offers: Acknowledge, Snooze 7 days"),
        "{no_such}"
    );
    let tapped = ok(&fwa(&["--state", st, "tap", &key, "Acknowledge"], &[], None).await);
    assert!(tapped.contains("webhook was delivered"), "{tapped}");
    let replied = ok(&fwa(
        &[
            "--state",
            st,
            "reply",
            "--to-key",
            &key,
            "--text",
            "Called them",
        ],
        &[],
        None,
    )
    .await);
    assert!(replied.contains("quoting it"), "{replied}");
    until(Duration::from_secs(10), async || {
        let t = json_out(&fwa(&["--state", st, "--json", "timeline", &key], &[], None).await);
        t["responses"].as_array().is_some_and(|r| r.len() == 2)
    })
    .await;
    let text = ok(&fwa(&["--state", st, "timeline", &key], &[], None).await);
    assert!(
        text.contains("(not on the roster) acknowledged (message wamid."),
        "{text}"
    );
    assert!(text.contains("replied to it"), "{text}");
    assert!(
        !text.contains("Called them"),
        "a reply's text is not kept: {text}"
    );
    readable(&text);
    l.shutdown().await;
}

/// `fwa enqueue` puts the alert in its tenant's fair-queue group, as
/// upstream systems must (the send queue is an SQS fair queue).
#[tokio::test]
async fn enqueue_puts_the_alert_in_its_tenants_group() {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let l = local_stack_of(SandboxConfig::default(), Some(0)).await;
    let state = l.state();
    let key = format!("fwa-group-{}", uuid::Uuid::new_v4().simple());
    let out = fwa(
        &["--state", &state, "enqueue", "--to", &csm(), "--key", &key],
        &[],
        None,
    )
    .await;
    assert!(ok(&out).contains(&format!("enqueued alert {key}")));

    let got = l
        .stack
        .app
        .queues
        .client()
        .receive_message()
        .queue_url(l.stack.resources.queue("SendQueue"))
        .max_number_of_messages(10)
        .message_system_attribute_names(A::MessageGroupId)
        .send()
        .await
        .expect("receive");
    let message = got
        .messages()
        .iter()
        .find(|m| m.body().is_some_and(|b| b.contains(&key)))
        .expect("the alert is on the send queue");
    assert_eq!(
        message.attributes().and_then(|a| a.get(&A::MessageGroupId)),
        Some(&l.tenant.tenant_id),
        "{message:?}"
    );
    l.shutdown().await;
}

/// `fwa channel connect` takes the ids as flags and the three secrets from
/// a file (JSON or name=value lines) or standard input, never from argv;
/// prints no secret; answers Meta's or the API's refusal in words.
#[tokio::test]
async fn channel_connect_reads_secrets_from_a_file_or_stdin_and_never_prints_them() {
    let l = local_stack().await;
    let state = l.state();
    let st = state.as_str();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let tenant = format!("acme-{id}");
    let (pnid, waba) = (random_digits(15), random_digits(15));
    let token = format!("EAAG-{}", uuid::Uuid::new_v4().simple());
    let app_secret = uuid::Uuid::new_v4().simple().to_string();
    let verify = format!("verify-{}", uuid::Uuid::new_v4().simple());
    l.sandbox
        .client()
        .register_tenant(&meta_sandbox::TenantSpec {
            phone_number_id: pnid.clone(),
            waba_id: waba.clone(),
            access_token: token.clone(),
            app_secret: app_secret.clone(),
            webhook_url: l.stack.webhook_url(),
            display_phone_number: Some("+1 555 0100 777".into()),
            verified_name: Some("Acme".into()),
        })
        .await
        .unwrap();
    let secrets = [token.as_str(), app_secret.as_str(), verify.as_str()];
    let connect = |source: &str| -> Vec<String> {
        [
            "--state",
            st,
            "--tenant",
            &tenant,
            "channel",
            "connect",
            "--phone-number-id",
            &pnid,
            "--waba-id",
            &waba,
            "--secrets",
            source,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = async |argv: Vec<String>, stdin: Option<Vec<u8>>| {
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        fwa(&refs, &[], stdin.as_deref()).await
    };

    // From standard input, as JSON.
    let body = json!({"access_token": token, "app_secret": app_secret, "verify_token": verify});
    let out = run(connect("-"), Some(body.to_string().into_bytes())).await;
    let text = ok(&out);
    assert!(
        text.contains(&format!("tenant {tenant} connected")),
        "{text}"
    );
    assert!(text.contains("+1 555 0100 777 (Acme)"), "{text}");
    for s in secrets {
        assert!(!printed(&out).contains(s), "a secret was printed");
    }
    let status = json_out(
        &fwa(
            &["--state", st, "--tenant", &tenant, "--json", "status"],
            &[],
            None,
        )
        .await,
    );
    assert_eq!(status["phone_number_id"], pnid.as_str(), "{status}");

    // From a file of name=value lines: the same tenant, updated.
    let file = l.dir.join("acme.env");
    std::fs::write(
        &file,
        format!("# acme\naccess_token={token}\napp_secret={app_secret}\nverify_token={verify}\n"),
    )
    .unwrap();
    let out = run(connect(file.to_str().unwrap()), None).await;
    assert!(
        ok(&out).contains(&format!("tenant {tenant} updated")),
        "{}",
        printed(&out)
    );
    for s in secrets {
        assert!(!printed(&out).contains(s), "a secret was printed");
    }

    // A file that lacks a secret: refused before anything is sent, in words
    // that name the field and not the values.
    std::fs::write(
        &file,
        format!("access_token={token}\napp_secret={app_secret}\n"),
    )
    .unwrap();
    let err = refused(&run(connect(file.to_str().unwrap()), None).await);
    assert!(err.contains("verify_token is missing"), "{err}");
    assert!(!err.contains(&token), "{err}");

    // A weak app secret: the admin API's refusal, its code and field.
    let weak = json!({"access_token": token, "app_secret": "short", "verify_token": verify});
    let err = refused(&run(connect("-"), Some(weak.to_string().into_bytes())).await);
    assert!(
        err.contains("app_secret") && err.contains("weak_secret") && err.contains("HTTP 400"),
        "{err}"
    );

    // There is no way to pass a secret on the command line.
    let mut argv = connect("-");
    argv.extend(["--access-token".to_string(), token.clone()]);
    let err = refused(&run(argv, Some(body.to_string().into_bytes())).await);
    assert!(err.contains("unexpected argument"), "{err}");
    l.shutdown().await;
}

/// `fwa csm add|list|remove`: numbers normalised to E.164, the roster
/// listed, a removal of an unknown CSM refused in words.
#[tokio::test]
async fn csm_add_list_and_remove_keep_the_roster() {
    let l = local_stack().await;
    let state = l.state();
    let st = state.as_str();
    let number = csm();
    let spaced = format!("{} {} {}", &number[..3], &number[3..8], &number[8..]);
    let text = ok(&fwa(
        &["--state", st, "csm", "add", "csm-priya", &spaced],
        &[],
        None,
    )
    .await);
    assert_eq!(text.trim(), format!("CSM csm-priya saved: {number}"));
    let list = ok(&fwa(&["--state", st, "csm", "list"], &[], None).await);
    assert!(
        list.contains("CSMs (1):") && list.contains(&number),
        "{list}"
    );
    let json = json_out(&fwa(&["--state", st, "--json", "csm", "list"], &[], None).await);
    assert_eq!(json["csms"][0]["csm_id"], "csm-priya", "{json}");

    let err = refused(
        &fwa(
            &["--state", st, "csm", "add", "csm-x", "98765 43210"],
            &[],
            None,
        )
        .await,
    );
    assert!(
        err.contains("invalid_phone_number") && err.contains("E.164"),
        "{err}"
    );

    ok(&fwa(&["--state", st, "csm", "remove", "csm-priya"], &[], None).await);
    let list = ok(&fwa(&["--state", st, "csm", "list"], &[], None).await);
    assert!(
        list.contains("CSMs (0):") && !list.contains(&number),
        "{list}"
    );
    let err = refused(&fwa(&["--state", st, "csm", "remove", "csm-priya"], &[], None).await);
    assert!(
        err.contains("CSM csm-priya not found") && err.contains("HTTP 404"),
        "{err}"
    );
    l.shutdown().await;
}

/// `fwa status` counts the alerts waiting for a template; `fwa parked`
/// lists a request parked at once with its reason, and `fwa timeline`
/// shows it (issue 17: such a request was invisible); `fwa redrive`
/// refuses, in words, a key that is waiting and a key that is unknown, and
/// puts a parked one back (an invalid request parks again, listed anew).
#[tokio::test]
async fn status_parked_timeline_and_redrive_speak_plainly() {
    let mut config = SandboxConfig::default();
    config.knobs.template_review = meta_sandbox::TemplateReview::Manual;
    let l = local_stack_with(config).await;
    let state = l.state();
    let st = state.as_str();
    ok(&fwa(&["--state", st, "submit-templates"], &[], None).await);
    let waiting = format!("wait-{}", uuid::Uuid::new_v4().simple());
    ok(&fwa(
        &["--state", st, "enqueue", "--to", &csm(), "--key", &waiting],
        &[],
        None,
    )
    .await);
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &waiting).await == Some(LedgerState::Waiting)
    })
    .await;
    let status = json_out(&fwa(&["--state", st, "--json", "status"], &[], None).await);
    assert_eq!(status["waiting_alerts"], 1, "{status}");
    let text = ok(&fwa(&["--state", st, "status"], &[], None).await);
    assert!(text.contains("waiting alerts    1 "), "{text}");
    assert!(
        text.contains("fincelo_usage_opportunity      en    PENDING"),
        "{text}"
    );
    readable(&text);

    let err = refused(&fwa(&["--state", st, "redrive", &waiting], &[], None).await);
    assert!(
        err.contains(&format!("alert {waiting} is not parked: it is waiting for template fincelo_usage_opportunity to be approved (until 20"))
            && err.contains("not_parked, HTTP 409"),
        "{err}"
    );
    let err = refused(&fwa(&["--state", st, "redrive", "no-such-key"], &[], None).await);
    assert!(
        err.contains("not found") && err.contains("only in the send DLQ"),
        "{err}"
    );

    // A request parked at once: its tenant and key are readable, its number is not.
    let bad = format!("bad-{}", uuid::Uuid::new_v4().simple());
    ok(&fwa(
        &["--state", st, "enqueue", "--to", "12345", "--key", &bad],
        &[],
        None,
    )
    .await);
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &bad).await == Some(LedgerState::Parked)
    })
    .await;
    let timeline = ok(&fwa(&["--state", st, "timeline", &bad], &[], None).await);
    assert!(
        timeline.contains(&format!(
            "alert {bad} (tenant {}): parked",
            l.tenant.tenant_id
        )),
        "{timeline}"
    );
    assert!(
        timeline.contains("parked: invalid_request:invalid_phone: recipient.phone"),
        "{timeline}"
    );
    readable(&timeline);
    let parked = json_out(&fwa(&["--state", st, "--json", "parked"], &[], None).await);
    let entry = parked["parked"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["idempotency_key"] == bad.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("{bad} not listed: {parked}"));
    assert_eq!(entry["reason"], "invalid_request:invalid_phone", "{entry}");
    let at = entry["parked_at_unix"].as_i64().expect("unix seconds");
    assert_eq!(
        entry["parked_at"],
        fincelo::admin::when::iso8601(at),
        "{entry}"
    );
    let text = ok(&fwa(&["--state", st, "parked"], &[], None).await);
    assert!(
        text.contains(&format!("{bad}  invalid_request:invalid_phone: ")),
        "{text}"
    );
    readable(&text);

    // Redriven: back on the queue, where the same request parks again and
    // is listed again.
    let text = ok(&fwa(&["--state", st, "redrive", &bad], &[], None).await);
    assert!(
        text.contains(&format!("alert {bad} redriven at 20")),
        "{text}"
    );
    until(Duration::from_secs(20), async || {
        let p = json_out(&fwa(&["--state", st, "--json", "parked"], &[], None).await);
        ledger_state(&l, &bad).await == Some(LedgerState::Parked)
            && p["parked"]
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p["idempotency_key"] == bad.as_str()))
    })
    .await;
    l.shutdown().await;
}

/// `fwa clock advance` moves the local stack's clock (and the sweep fires);
/// a duration it cannot read is refused; a deployed stack has no such clock.
#[tokio::test]
async fn clock_advance_moves_the_local_clock_only() {
    let l = local_stack().await;
    let state = l.state();
    let st = state.as_str();
    let before = json_out(&fwa(&["--state", st, "--json", "clock", "show"], &[], None).await);
    let moved = json_out(
        &fwa(
            &["--state", st, "--json", "clock", "advance", "30h"],
            &[],
            None,
        )
        .await,
    );
    let gained = moved["now_unix"].as_i64().unwrap() - before["now_unix"].as_i64().unwrap();
    assert!(
        (30 * 3600..30 * 3600 + 60).contains(&gained),
        "{before} → {moved}"
    );
    assert_eq!(moved["sweep_fired"], true, "{moved}");
    assert!((l.stack.time.now() - before["now_unix"].as_i64().unwrap()) >= 30 * 3600);
    let text = ok(&fwa(&["--state", st, "clock", "show"], &[], None).await);
    assert!(
        text.contains("(30 h 00 min ahead of this machine)"),
        "{text}"
    );
    let err = refused(&fwa(&["--state", st, "clock", "advance", "soon"], &[], None).await);
    assert!(err.contains("\"soon\" is not a duration"), "{err}");

    let outputs = l.dir.join("outputs.json");
    std::fs::write(&outputs, json!({"TableName": "t"}).to_string()).unwrap();
    let err = refused(
        &fwa(
            &[
                "--stack-outputs",
                outputs.to_str().unwrap(),
                "--tenant",
                "acme",
                "clock",
                "advance",
                "1h",
            ],
            &[],
            None,
        )
        .await,
    );
    assert!(err.contains("exists only on the local stack"), "{err}");
    l.shutdown().await;
}

/// A stand-in for API Gateway's `AWS_IAM` authoriser in front of the local
/// runner: refuses (403) a request without a SigV4 signature for
/// `execute-api`, records what it let through, and forwards it.
async fn signed_gateway(
    runner: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<(Method, String, HeaderMap)>>>,
) {
    let seen: Arc<Mutex<Vec<(Method, String, HeaderMap)>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFWATEST/")
                    && auth.contains("/us-east-1/execute-api/aws4_request")
                    && auth.contains("SignedHeaders=")
                    && headers.contains_key("x-amz-date"))
                {
                    return (
                        StatusCode::FORBIDDEN,
                        r#"{"message":"Forbidden"}"#.to_string(),
                    )
                        .into_response();
                }
                record.lock().unwrap().push((
                    method.clone(),
                    uri.path().to_string(),
                    headers.clone(),
                ));
                let resp = reqwest::Client::new()
                    .request(method, format!("http://{runner}{}", uri.path()))
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                    .expect("runner reachable");
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                (status, resp.text().await.unwrap_or_default()).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// A deployed stack: its outputs file and a tenant; AWS through the
/// standard credential chain (here pointed at moto by `AWS_ENDPOINT_URL`);
/// every admin call (status, CSMs, templates, parked, redrive, timeline)
/// signed with SigV4 and answered as locally; `reply` and `clock` refused,
/// since only the local stack has a sandbox CSM and a movable clock.
#[tokio::test]
async fn works_against_a_deployed_stack_with_credentials() {
    let l = local_stack().await;
    let (gateway, seen) = signed_gateway(l.stack.http_addr()).await;

    // Unsigned, the gateway refuses: what a deployed API does.
    let unsigned = reqwest::get(format!(
        "http://{gateway}/admin/tenants/{}/channel",
        l.tenant.tenant_id
    ))
    .await
    .unwrap();
    assert_eq!(unsigned.status(), 403);

    let outputs = l.dir.join("outputs.json");
    std::fs::write(
        &outputs,
        json!([
            {"OutputKey": "TableName", "OutputValue": l.stack.resources.table_name},
            {"OutputKey": "SendQueueUrl", "OutputValue": l.stack.resources.queue("SendQueue")},
            {"OutputKey": "AdminApiUrl", "OutputValue": format!("http://{gateway}/admin/tenants")},
        ])
        .to_string(),
    )
    .unwrap();
    let out = outputs.to_str().unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", l.moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDFWATEST"),
        ("AWS_SECRET_ACCESS_KEY", "fwa-test-secret"),
        ("AWS_REGION", "us-east-1"),
    ];
    let base = [
        "--stack-outputs",
        out,
        "--tenant",
        l.tenant.tenant_id.as_str(),
    ];
    let run = async |rest: &[&str]| {
        let argv: Vec<&str> = base.iter().chain(rest.iter()).copied().collect();
        fwa(&argv, &env, None).await
    };

    // An alert for a CSM whose window is open goes out free-form.
    let to = csm();
    l.sandbox
        .client()
        .inbound(&meta_sandbox::InboundRequest {
            phone_number_id: l.tenant.phone_number_id.clone(),
            from: to.clone(),
            text: "hi".into(),
            timestamp: None,
            profile_name: None,
        })
        .await
        .unwrap();
    let key = format!("fwa-deployed-{}", uuid::Uuid::new_v4().simple());
    ok(&run(&["enqueue", "--to", &to, "--key", &key]).await);
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &key).await == Some(LedgerState::Sent)
    })
    .await;
    let timeline = json_out(&run(&["--json", "timeline", &key]).await);
    assert_eq!(timeline["mode"], "free_form", "{timeline}");
    let window = json_out(&run(&["--json", "window", &to]).await);
    assert_eq!(window["open"], true, "{window}");

    json_out(&run(&["--json", "submit-templates"]).await);
    let status = json_out(&run(&["--json", "status"]).await);
    assert_eq!(status["tenant_id"], l.tenant.tenant_id.as_str(), "{status}");
    ok(&run(&["csm", "add", "csm-1", &to]).await);
    let parked = json_out(&run(&["--json", "parked"]).await);
    assert_eq!(parked["count"], 0, "{parked}");
    let err = refused(&run(&["redrive", &key]).await);
    assert!(
        err.contains("is not parked: it was sent as free-form text"),
        "{err}"
    );

    let calls: Vec<(Method, String)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let t = &l.tenant.tenant_id;
    for want in [
        (Method::GET, format!("/admin/tenants/{t}/messages/{key}")),
        (Method::POST, format!("/admin/tenants/{t}/templates")),
        (Method::GET, format!("/admin/tenants/{t}/channel")),
        (Method::PUT, format!("/admin/tenants/{t}/csms/csm-1")),
        (Method::GET, format!("/admin/tenants/{t}/parked")),
        (
            Method::POST,
            format!("/admin/tenants/{t}/messages/{key}/redrive"),
        ),
    ] {
        assert!(
            calls.contains(&want),
            "{want:?} not signed through: {calls:?}"
        );
    }

    let err = refused(&run(&["reply", "--from", "+919876543210"]).await);
    assert!(err.contains("exists only on the local stack"), "{err}");
    let err = refused(&run(&["clock", "show"]).await);
    assert!(err.contains("exists only on the local stack"), "{err}");
    l.shutdown().await;
}
