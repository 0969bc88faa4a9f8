//! `fwa` as an operator runs it: the built binary, against Meta's documented
//! webhook bodies, the local stack (moto at `FWA_TEST_MOTO` and the Meta
//! sandbox), and a "deployed" stack reached through the standard AWS
//! credential chain.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::store::LedgerState;
use fincelo_local::{LocalTenant, Stack, StackOptions};
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
    let moto = std::env::var("FWA_TEST_MOTO").unwrap_or_else(|_| "http://127.0.0.1:5056".into());
    let sandbox = meta_sandbox::spawn("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
        .await
        .expect("sandbox");
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut opts = StackOptions::new(&moto, sandbox.base_url(), format!("fwa-{id}"));
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
    let state = l.dir.join("dev.json");
    std::fs::write(
        &state,
        json!({
            "moto": l.moto,
            "sandbox": l.sandbox.base_url(),
            "webhook_url": l.stack.webhook_url(),
            "table": l.stack.resources.table_name,
            "send_queue_url": l.stack.resources.queue("SendQueue"),
            "tenant_id": l.tenant.tenant_id,
            "phone_number_id": l.tenant.phone_number_id,
        })
        .to_string(),
    )
    .unwrap();
    let st = state.to_str().unwrap();
    let submitted = json_out(&fwa(&["--state", st, "submit-templates"], &[], None).await);
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &key).await == Some(LedgerState::Sent)
    })
    .await;
    let timeline = json_out(&fwa(&["--state", st, "timeline", &key], &[], None).await);
    assert_eq!(timeline["ledger"]["state"], "sent", "{timeline}");
    assert_eq!(timeline["ledger"]["mode"], "template", "{timeline}");

    let closed = json_out(&fwa(&["--state", st, "window", &to], &[], None).await);
    assert_eq!(closed["open"], false, "{closed}");
    let reply = json_out(&fwa(&["--state", st, "reply", "--from", &to], &[], None).await);
    assert!(!reply.is_null());
    until(Duration::from_secs(10), async || {
        let w = json_out(&fwa(&["--state", st, "window", &to], &[], None).await);
        w["open"] == true && w["seconds_left"].as_i64().is_some_and(|s| s > 86_000)
    })
    .await;
    l.stack.shutdown().await;
    l.sandbox.shutdown().await;
}

/// A deployed stack: its outputs file and a tenant; AWS through the
/// standard credential chain (here pointed at moto by `AWS_ENDPOINT_URL`);
/// the IAM-authorised admin route called with a SigV4 signature; `reply`
/// refused, since only the local sandbox can play a CSM.
#[tokio::test]
async fn works_against_a_deployed_stack_with_credentials() {
    let l = local_stack().await;
    // The admin route: records what arrives.
    let seen: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/admin/tenants/{tenant}/templates",
        post(move |uri: axum::http::Uri, headers: HeaderMap| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .unwrap()
                    .push((uri.path().to_string(), headers));
                axum::Json(json!({"results": []}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let outputs = l.dir.join("outputs.json");
    std::fs::write(
        &outputs,
        json!([
            {"OutputKey": "TableName", "OutputValue": l.stack.resources.table_name},
            {"OutputKey": "SendQueueUrl", "OutputValue": l.stack.resources.queue("SendQueue")},
            {"OutputKey": "TemplatesAdminUrl", "OutputValue": format!("http://{admin}/admin/tenants/{{tenant_id}}/templates")},
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
    let args = |rest: &[&'static str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(rest.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = async |argv: Vec<String>| {
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        fwa(&refs, &env, None).await
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
    let mut argv = args(&["enqueue"]);
    argv.extend(["--to".into(), to.clone(), "--key".into(), key.clone()]);
    let enq = run(argv).await;
    assert!(
        enq.status.success(),
        "{}",
        String::from_utf8_lossy(&enq.stderr)
    );
    until(Duration::from_secs(20), async || {
        ledger_state(&l, &key).await == Some(LedgerState::Sent)
    })
    .await;
    let mut argv = args(&["timeline"]);
    argv.push(key.clone());
    let timeline = json_out(&run(argv).await);
    assert_eq!(timeline["ledger"]["mode"], "free_form", "{timeline}");

    json_out(&run(args(&["submit-templates"])).await);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].0,
        format!("/admin/tenants/{}/templates", l.tenant.tenant_id)
    );
    let auth = calls[0].1["authorization"].to_str().unwrap().to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFWATEST/")
            && auth.contains("/us-east-1/execute-api/aws4_request"),
        "{auth}"
    );
    assert!(calls[0].1.contains_key("x-amz-date"));

    let reply = run(args(&["reply", "--from", "+919876543210"])).await;
    assert!(!reply.status.success());
    assert!(String::from_utf8_lossy(&reply.stderr).contains("local Meta sandbox"));
    l.stack.shutdown().await;
    l.sandbox.shutdown().await;
}
