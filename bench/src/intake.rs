//! Webhook intake cost: the project's own intake path minus AWS I/O, on one
//! thread, against pywa and whatsapp-api-js on the same bytes.
//!
//! Per body, as `fincelo::webhook::intake` does it: parse the
//! `X-Hub-Signature-256` header, read and classify the whole body into
//! routing ids, messages, statuses, template updates, identity changes,
//! account updates and skipped changes (`payload::parse`: one tolerant,
//! bounded reader, one pass), check that it names a tenant (the tenant
//! and its secrets come from a warm cache in production, so no lookup is
//! timed), then verify the HMAC over the raw bytes with the tenant's
//! `signature::Key`, which the warm cache keeps with the secret.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fincelo::webhook::{payload, signature};
use serde_json::{json, Value};

use crate::corpus::{Body, APP_SECRET};

/// One side's figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IntakeResult {
    pub implementation: String,
    pub bodies: u64,
    pub wall_secs: f64,
    pub cpu_secs: f64,
    pub bodies_per_sec_wall: f64,
    /// Bodies per second of CPU time: "per core".
    pub bodies_per_cpu_sec: f64,
    /// What the implementation made of the corpus, by outcome.
    pub outcomes: Value,
}

/// CPU time of the calling thread (schedstat, nanoseconds).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// The app secret's key, as a warm instance's secret cache holds it.
static KEY: std::sync::LazyLock<signature::Key> =
    std::sync::LazyLock::new(|| signature::Key::new(APP_SECRET.as_bytes()));

/// Runs one body through the pure intake path; the classification's counts.
fn one(b: &Body) -> Result<(usize, usize, usize, usize), &'static str> {
    let digest = signature::parse_header(Some(b.signature.as_bytes())).map_err(|_| "bad header")?;
    let intake = payload::parse(b.body.as_bytes()).map_err(|_| "parse")?;
    if intake.waba_ids.is_empty() && intake.phone_number_ids.is_empty() {
        return Err("no tenant");
    }
    KEY.verify(b.body.as_bytes(), &digest)
        .map_err(|_| "signature")?;
    Ok((
        intake.messages.len(),
        intake.statuses.len(),
        intake.template_updates.len(),
        intake.skipped.len(),
    ))
}

/// Runs `f` over the corpus, pass after pass, for about `secs`: how many
/// bodies, and the wall and this thread's CPU time they took.
fn timed(corpus: &[Body], secs: f64, f: impl Fn(&Body)) -> (u64, f64, f64) {
    let budget = Duration::from_secs_f64(secs);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        for b in corpus {
            f(std::hint::black_box(b));
        }
        n += corpus.len() as u64;
    }
    let cpu = (thread_cpu() - cpu0).as_secs_f64().max(1e-9);
    (n, t0.elapsed().as_secs_f64(), cpu)
}

/// CPU microseconds per body of one stage, over the corpus, for about `secs`.
fn stage_us(corpus: &[Body], secs: f64, f: impl Fn(&Body)) -> f64 {
    let (n, _, cpu) = timed(corpus, secs, f);
    cpu * 1e6 / n as f64
}

/// Where the Rust intake's time goes, per stage (CPU µs per body).
pub fn rust_stages(corpus: &[Body], secs: f64) -> Value {
    let hmac = stage_us(corpus, secs, |b| {
        if let Ok(d) = signature::parse_header(Some(b.signature.as_bytes())) {
            std::hint::black_box(KEY.verify(b.body.as_bytes(), &d).ok());
        }
    });
    let parse = stage_us(corpus, secs, |b| {
        std::hint::black_box(payload::parse(b.body.as_bytes()).ok());
    });
    // Not a stage: the least any serde_json-based reading of these bytes can
    // cost (a validating scan that keeps nothing), for the report's budget.
    let scan = stage_us(corpus, secs, |b| {
        std::hint::black_box(
            serde_json::from_slice::<serde::de::IgnoredAny>(b.body.as_bytes()).ok(),
        );
    });
    let round = |x: f64| (x * 100.0).round() / 100.0;
    json!({"signature_us": round(hmac), "parse_and_classify_us": round(parse),
           "json_scan_floor_us": round(scan),
           "mean_body_bytes": corpus.iter().map(|b| b.body.len()).sum::<usize>() / corpus.len().max(1)})
}

/// The Rust intake on this thread for about `secs` seconds.
pub fn run_rust(corpus: &[Body], secs: f64) -> IntakeResult {
    // What one pass finds, for the report.
    let mut totals = [0usize; 4];
    let mut errors = 0;
    for b in corpus {
        match one(b) {
            Ok((m, s, t, k)) => {
                totals[0] += m;
                totals[1] += s;
                totals[2] += t;
                totals[3] += k;
            }
            Err(_) => errors += 1,
        }
    }
    // Warm-up.
    for b in corpus.iter().cycle().take(corpus.len() * 20) {
        std::hint::black_box(one(std::hint::black_box(b)).ok());
    }
    let (n, wall, cpu) = timed(corpus, secs, |b| {
        std::hint::black_box(one(b).ok());
    });
    IntakeResult {
        implementation: "fincelo (Rust, release)".into(),
        bodies: n,
        wall_secs: wall,
        cpu_secs: cpu,
        bodies_per_sec_wall: n as f64 / wall,
        bodies_per_cpu_sec: n as f64 / cpu,
        outcomes: json!({"per_pass": {"bodies": corpus.len(), "errors": errors,
            "messages": totals[0], "statuses": totals[1], "template_updates": totals[2], "skipped": totals[3]},
            "cpu_per_body_by_stage": rust_stages(corpus, (secs / 4.0).max(0.2))}),
    }
}

/// Runs a peer harness script; it prints one JSON object (an [`IntakeResult`]).
pub fn run_peer(
    program: &Path,
    script: &Path,
    corpus: &Path,
    secs: f64,
) -> Result<IntakeResult, String> {
    let out = Command::new(program)
        .arg(script)
        .arg(corpus)
        .arg(secs.to_string())
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            program.display(),
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{} printed no result ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
