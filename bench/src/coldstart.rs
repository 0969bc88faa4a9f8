//! Cold start, first vs warm invocation, and peak RSS under load, of the
//! release binaries against the local Runtime API ([`crate::runtime_api`]).
//!
//! A start: spawn the binary with `AWS_LAMBDA_RUNTIME_API` pointing at a
//! fresh local Runtime API (timestamp at spawn), wait for its first
//! `GET /2018-06-01/runtime/invocation/next` (cold start = the gap), deliver
//! one invocation and time it to its response (first), then a second one
//! (warm), then kill the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::corpus::{meta_json, status, status_body, text_message, APP_SECRET};
use crate::runtime_api::{Arrival, RuntimeApi};
use crate::stats::{summarise, Summary};

/// Which function a binary is, so it gets the right events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hello,
    Webhook,
    Sender,
    Templates,
    Admin,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub binary: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StartResult {
    pub name: String,
    pub binary_bytes: u64,
    pub cold_start: Summary,
    pub first_invocation: Summary,
    pub warm_invocation: Summary,
    /// Peak RSS (VmHWM) after the load, KiB.
    pub peak_rss_kib: Option<u64>,
    pub load_invocations: usize,
    pub load_failures: usize,
    pub failures: Vec<String>,
}

/// The invocation event number `n` of a run (`run` makes ids unique across runs).
pub fn event(kind: Kind, run: &str, n: usize) -> Value {
    match kind {
        Kind::Hello => json!({"hello": "world", "n": n}),
        Kind::Webhook => {
            // Status bodies mostly, every fifth an inbound text message, as traffic goes.
            let seq = n + 1_000_000 * (run.len() % 7);
            let body = if n % 5 == 4 {
                meta_json(&text_message(n % 40, 1_764_075_000 + n as i64))
            } else {
                let st = ["sent", "delivered", "read"][n % 3];
                let mut s = status(seq, st, 1_764_075_000 + n as i64);
                s["id"] = json!(format!("wamid.bench.{run}.{n}"));
                meta_json(&status_body(vec![s]))
            };
            let sig = fincelo::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
            json!({
                "version": "2.0", "routeKey": "POST /webhooks/whatsapp", "rawPath": "/webhooks/whatsapp",
                "rawQueryString": "", "cookies": [],
                "headers": {"content-type": "application/json", "x-hub-signature-256": sig,
                            "user-agent": "facebookexternalua", "host": "bench.execute-api.us-east-1.amazonaws.com"},
                "requestContext": {"accountId": "000000000000", "apiId": "bench",
                    "domainName": "bench.execute-api.us-east-1.amazonaws.com", "domainPrefix": "bench",
                    "http": {"method": "POST", "path": "/webhooks/whatsapp", "protocol": "HTTP/1.1",
                             "sourceIp": "127.0.0.1", "userAgent": "facebookexternalua"},
                    "requestId": format!("req-{run}-{n}"), "routeKey": "POST /webhooks/whatsapp",
                    "stage": "$default", "time": "25/Nov/2026:19:00:00 +0000", "timeEpoch": 1_764_097_200_000u64},
                "body": body, "isBase64Encoded": false
            })
        }
        Kind::Sender => {
            let records: Vec<Value> = (0..if n < 2 { 1 } else { 10 })
                .map(|i| {
                    let body = crate::sender_run::send_request(&format!("cs-{run}-{n}-{i}"), n * 10 + i);
                    json!({"messageId": format!("m-{run}-{n}-{i}"), "receiptHandle": format!("rh-{run}-{n}-{i}"),
                        "body": body, "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764097200000",
                        "SenderId": "000000000000", "ApproximateFirstReceiveTimestamp": "1764097200000"},
                        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench-send", "awsRegion": "us-east-1"})
                })
                .collect();
            json!({"Records": records})
        }
        Kind::Templates => json!({"action": "reconcile", "tenant_id": crate::world::TENANT}),
        Kind::Admin => {
            // The Fincelo backend reading a tenant's channel status (SigV4 already checked by API Gateway).
            let path = format!("/admin/tenants/{}/channel", crate::world::TENANT);
            json!({
                "version": "2.0", "routeKey": "GET /admin/tenants/{tenant_id}/channel", "rawPath": path,
                "rawQueryString": "", "headers": {"host": "bench.execute-api.us-east-1.amazonaws.com"},
                "pathParameters": {"tenant_id": crate::world::TENANT},
                "requestContext": {"accountId": "000000000000", "apiId": "bench",
                    "authorizer": {"iam": {"accessKey": "AKIDBENCH", "accountId": "000000000000", "callerId": "AIDABENCH",
                        "principalOrgId": null, "userArn": "arn:aws:iam::000000000000:user/backend", "userId": "AIDABENCH"}},
                    "domainName": "bench.execute-api.us-east-1.amazonaws.com", "domainPrefix": "bench",
                    "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "fincelo-backend"},
                    "requestId": format!("req-{run}-{n}"), "routeKey": "GET /admin/tenants/{tenant_id}/channel",
                    "stage": "$default", "time": "25/Nov/2026:19:00:00 +0000", "timeEpoch": 1_764_097_200_000u64},
                "isBase64Encoded": false
            })
        }
    }
}

/// Whether a response is the function's success (not just any answer).
fn succeeded(kind: Kind, body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    match kind {
        Kind::Hello => true,
        Kind::Webhook => v["statusCode"] == json!(200),
        Kind::Sender => v["batchItemFailures"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        Kind::Templates => v["status"] == json!(200),
        Kind::Admin => v["statusCode"] == json!(200),
    }
}

fn lambda_env(name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_SESSION_TOKEN", "test".into()),
        (
            "AWS_LAMBDA_LOG_LEVEL",
            std::env::var("BENCH_FN_LOG_LEVEL").unwrap_or_else(|_| "INFO".into()),
        ),
        ("TZ", ":UTC".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Where a process's JSON logs go: `$BENCH_FN_LOGS/<run>.log` when that is
/// set (to look into a failure), else nowhere.
fn log_to(run: &str) -> Stdio {
    std::env::var_os("BENCH_FN_LOGS")
        .and_then(|dir| std::fs::File::create(PathBuf::from(dir).join(format!("{run}.log"))).ok())
        .map(Stdio::from)
        .unwrap_or_else(Stdio::null)
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn next_arrival(api: &mut RuntimeApi, limit: Duration) -> Result<Arrival, String> {
    tokio::time::timeout(limit, api.arrivals.recv())
        .await
        .map_err(|_| format!("no Runtime API request within {limit:?}"))?
        .ok_or_else(|| "Runtime API closed".to_string())
}

async fn wait_next(api: &mut RuntimeApi) -> Result<Instant, String> {
    match next_arrival(api, Duration::from_secs(20)).await? {
        Arrival::Next(at) => Ok(at),
        Arrival::Done { body, .. } => {
            Err(format!("init failed: {}", String::from_utf8_lossy(&body)))
        }
    }
}

/// Delivers one event, waits for its answer; (latency, success).
async fn invoke(
    api: &mut RuntimeApi,
    kind: Kind,
    id: &str,
    ev: &Value,
) -> Result<(Duration, bool), String> {
    let t = Instant::now();
    api.invoke(id, Bytes::from(ev.to_string()));
    match next_arrival(api, Duration::from_secs(60)).await? {
        Arrival::Done {
            id: got,
            at,
            ok,
            body,
        } if got == id => {
            let good = ok && succeeded(kind, &body);
            if !good {
                let text = String::from_utf8_lossy(&body);
                let mut end = text.len().min(300);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                LAST_FAILURE.with(|f| *f.borrow_mut() = text[..end].to_string());
            }
            Ok((at - t, good))
        }
        Arrival::Done { id: got, .. } => Err(format!("answer for {got}, expected {id}")),
        Arrival::Next(_) => Err("a second poll before the answer".into()),
    }
}

thread_local! {
    /// The answer of the last invocation that did not succeed (for the report).
    static LAST_FAILURE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

struct Outcome {
    cold: Duration,
    first: Duration,
    warm: Duration,
    ok: bool,
    hwm: Option<u64>,
    load_failures: usize,
}

async fn one_start(
    t: &Target,
    env: &HashMap<String, String>,
    run: &str,
    load: usize,
) -> Result<Outcome, String> {
    let mut api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&t.binary);
    cmd.env_clear()
        .envs(lambda_env(t.name))
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .stdin(Stdio::null())
        .stdout(log_to(run))
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", t.binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let result = async {
        let at = wait_next(&mut api).await?;
        let cold = at - t0;
        let (first, ok1) = invoke(
            &mut api,
            t.kind,
            &format!("{run}-0"),
            &event(t.kind, run, 0),
        )
        .await?;
        wait_next(&mut api).await?;
        let (warm, ok2) = invoke(
            &mut api,
            t.kind,
            &format!("{run}-1"),
            &event(t.kind, run, 1),
        )
        .await?;
        let mut load_failures = 0;
        for n in 0..load {
            wait_next(&mut api).await?;
            let (_, ok) = invoke(
                &mut api,
                t.kind,
                &format!("{run}-{}", n + 2),
                &event(t.kind, run, n + 2),
            )
            .await?;
            load_failures += usize::from(!ok);
        }
        let hwm = vm_hwm_kib(pid);
        Ok::<_, String>(Outcome {
            cold,
            first,
            warm,
            ok: ok1 && ok2,
            hwm,
            load_failures,
        })
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    result
}

/// `starts` cold starts of `t`, then one start under a load of `load` invocations.
pub async fn measure(
    t: &Target,
    env: &HashMap<String, String>,
    starts: usize,
    load: usize,
    run_id: &str,
) -> StartResult {
    let (mut cold, mut first, mut warm, mut failures) = (vec![], vec![], vec![], vec![]);
    for i in 0..starts {
        let run = format!("{run_id}-{}-{i}", t.name);
        match one_start(t, env, &run, 0).await {
            Ok(o) => {
                cold.push(o.cold);
                first.push(o.first);
                warm.push(o.warm);
                if !o.ok {
                    let answer = LAST_FAILURE.with(|f| f.borrow().clone());
                    failures.push(format!(
                        "start {i}: an invocation did not succeed: {answer}"
                    ));
                }
            }
            Err(e) => failures.push(format!("start {i}: {e}")),
        }
    }
    let (peak, load_failures) =
        match one_start(t, env, &format!("{run_id}-{}-load", t.name), load).await {
            Ok(o) => (o.hwm, o.load_failures),
            Err(e) => {
                failures.push(format!("load: {e}"));
                (None, load)
            }
        };
    StartResult {
        name: t.name.to_string(),
        binary_bytes: file_size(&t.binary),
        cold_start: summarise(&cold),
        first_invocation: summarise(&first),
        warm_invocation: summarise(&warm),
        peak_rss_kib: peak,
        load_invocations: load,
        load_failures,
        failures,
    }
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
