//! `make bench`: the performance report of issue 9.
//!
//! `fincelo-bench run` measures, in one run on this machine:
//! 1. cold start of each release binary against a local Runtime API, next to
//!    a hello-world `lambda_runtime` binary; first vs warm invocation;
//! 2. webhook intake cost (signature + parse + classification) against pywa
//!    and whatsapp-api-js on the same bytes;
//! 3. sender throughput on one number with 1, 2 and 4 instances, Graph
//!    answering in 150 ms;
//! 4. AWS requests per sent message and per status event (SDK interceptor);
//! 5. peak RSS under load and the arm64 zip sizes;
//! 6. noisy neighbour and many numbers (issue 21): one tenant's flood beside
//!    a quiet tenant, and ten tenants' numbers, on a fleet of sender
//!    instances at the event source mapping's maximum concurrency;
//!
//! and, to read the sender's figures by, moto's own capacity for the
//! sender's kinds of request;
//!
//! and writes `latest.md` and `latest.json` to `--out` (`bench/report`).
//! `fincelo-bench tenants` runs section 6 alone (with moto's capacity) and
//! prints its JSON; `fincelo-bench corpus FILE` writes the intake corpus alone;
//! `fincelo-bench intake` measures the Rust intake alone (no peers, no moto),
//! for a quick answer while working on the parser.

mod coldstart;
mod corpus;
mod emulator;
mod fleet;
mod intake;
mod many_numbers;
mod moto_cpu;
mod noisy;
mod report;
mod runtime_api;
mod sender_run;
mod stats;
mod webhook_cost;
mod world;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(about = "fincelo-whatsapp benchmark report (make bench)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs every measurement and writes the report.
    Run(RunArgs),
    /// Writes the intake corpus (what the peers read) to FILE.
    Corpus { file: PathBuf },
    /// Runs the noisy-neighbour and many-numbers sections alone (with
    /// moto's capacity, their ceiling) and prints their JSON.
    Tenants(RunArgs),
    /// Measures the Rust intake alone and prints its figures as JSON.
    Intake {
        /// Seconds the measurement runs.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
}

#[derive(Parser, Clone)]
pub struct RunArgs {
    /// The moto server.
    #[arg(long, default_value = "http://127.0.0.1:5062")]
    pub moto: String,
    /// The moto server's process id, whose CPU time says how much of moto's
    /// capacity a run used (`make bench` passes it); unmeasured without it.
    #[arg(long)]
    pub moto_pid: Option<u32>,
    /// Where the host release binaries are (webhook, sender, templates, hello-lambda).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Where `cargo lambda build --release --arm64 --output-format zip` put the zips.
    #[arg(long, default_value = "target/lambda")]
    pub zip_dir: PathBuf,
    #[arg(long, default_value = ".venv-bench/bin/python")]
    pub python: PathBuf,
    #[arg(long, default_value = "node")]
    pub node: PathBuf,
    #[arg(long, default_value = "bench/peers")]
    pub peers: PathBuf,
    #[arg(long, default_value = "bench/report")]
    pub out: PathBuf,
    /// Cold starts per binary.
    #[arg(long, default_value_t = 20)]
    pub starts: usize,
    /// Invocations of the footprint (load) start.
    #[arg(long, default_value_t = 200)]
    pub load: usize,
    /// Seconds each intake implementation runs.
    #[arg(long, default_value_t = 5.0)]
    pub intake_secs: f64,
    /// Messages per sender throughput run.
    #[arg(long, default_value_t = 600)]
    pub messages: usize,
    /// Sent messages whose three statuses go through the webhook handler.
    #[arg(long, default_value_t = 60)]
    pub status_messages: usize,
    /// Sender instances in the noisy-neighbour and many-numbers sections:
    /// the event source mapping at its maximum concurrency
    /// (`SenderMaxConcurrency`, 10 by default in `template.yaml`).
    #[arg(long, default_value_t = 10)]
    pub fleet_instances: u32,
    /// Alerts the noisy tenant (A) enqueues at once.
    #[arg(long, default_value_t = 10_000)]
    pub flood: usize,
    /// Alerts (one a second) the quiet tenant (B) sends alone.
    #[arg(long, default_value_t = 30)]
    pub quiet_secs: usize,
    /// Alerts in the many-numbers run, spread over its ten tenants.
    #[arg(long, default_value_t = 3_000)]
    pub many_messages: usize,
}

fn main() -> Result<(), String> {
    match Cli::parse().cmd {
        Cmd::Corpus { file } => write_corpus(&file),
        Cmd::Intake { secs } => {
            let result = intake::run_rust(&corpus::corpus(), secs);
            let json = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
            println!("{json}");
            Ok(())
        }
        Cmd::Run(args) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(run(args))
        }
        Cmd::Tenants(args) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(tenants_only(args))
        }
    }
}

fn write_corpus(file: &std::path::Path) -> Result<(), String> {
    let doc = json!({
        "app_secret": corpus::APP_SECRET,
        "phone_number_id": corpus::PHONE_NUMBER_ID,
        "waba_id": corpus::WABA_ID,
        "bodies": corpus::corpus(),
    });
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        file,
        serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", file.display()))
}

fn step(msg: &str) {
    eprintln!("[bench] {msg}");
}

async fn run(args: RunArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    let machine = report::machine();
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;

    // 2. Intake cost first, while nothing else of ours runs.
    step("intake: Rust, pywa, whatsapp-api-js on the same corpus");
    let corpus_file = args.out.join("corpus.json");
    write_corpus(&corpus_file)?;
    let bodies = corpus::corpus();
    let secs = args.intake_secs;
    let rust = tokio::task::spawn_blocking(move || intake::run_rust(&bodies, secs))
        .await
        .map_err(|e| e.to_string())?;
    let pywa = intake::run_peer(
        &args.python,
        &args.peers.join("pywa_intake.py"),
        &corpus_file,
        secs,
    );
    let wajs = intake::run_peer(
        &args.node,
        &args.peers.join("wa_api_js_intake.mjs"),
        &corpus_file,
        secs,
    );

    step("world: moto tables and queues, Meta sandbox, tenants, approved templates");
    let world = world::World::start(&args.moto, args.moto_pid).await?;

    // 4 (status events). The intake's AWS requests through the real handler.
    step("webhook AWS cost: status events through the handler");
    let wh_cost = webhook_cost::run(&world, args.status_messages).await;

    // 1 + 5. Cold starts and footprint, Graph answering at once.
    world
        .meta
        .set_knobs(&json!({"latency_ms": {"min": 0, "max": 0}}))
        .await
        .map_err(|e| e.to_string())?;
    let bin = |n: &str| args.bin_dir.join(n);
    let targets = [
        coldstart::Target {
            name: "hello-lambda",
            kind: coldstart::Kind::Hello,
            binary: bin("hello-lambda"),
        },
        coldstart::Target {
            name: "webhook",
            kind: coldstart::Kind::Webhook,
            binary: bin("webhook"),
        },
        coldstart::Target {
            name: "sender",
            kind: coldstart::Kind::Sender,
            binary: bin("sender"),
        },
        coldstart::Target {
            name: "templates",
            kind: coldstart::Kind::Templates,
            binary: bin("templates"),
        },
        coldstart::Target {
            name: "admin",
            kind: coldstart::Kind::Admin,
            binary: bin("admin"),
        },
    ];
    let env = world.function_env(2);
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut starts = Vec::new();
    for t in &targets {
        step(&format!(
            "cold start: {} x{} (+1 under load)",
            t.name, args.starts
        ));
        let load = if t.kind == coldstart::Kind::Sender {
            args.load / 10
        } else {
            args.load
        };
        starts.push(coldstart::measure(t, &env, args.starts, load, run_id).await);
    }

    // 3 + 4 (sent messages). Sender throughput, Graph at 150 ms.
    world
        .meta
        .set_knobs(&json!({"latency_ms": {"min": 150, "max": 150}, "mps_cap": 1_000_000}))
        .await
        .map_err(|e| e.to_string())?;
    let mut sender_runs = Vec::new();
    // One number. SENDER_MAX_CONCURRENCY is set as the deployment sets it
    // (the event source mapping's maximum concurrency); since the shared
    // limiter it no longer changes how an instance sends.
    for (k, instances) in [1u32, 2, 4].into_iter().enumerate() {
        step(&format!(
            "sender: {instances} instance(s), one number, {} messages",
            args.messages
        ));
        let r = sender_run::run(
            &world,
            &world::run_tenant(k + 1),
            instances,
            instances,
            args.messages,
        )
        .await;
        sender_runs.push(r);
    }
    let (fairness, many_numbers) = tenant_sections(&world, &args).await;
    step("emulator: moto's capacity for the sender's requests, 1 and 10 clients");
    let emulator = emulator::measure(&world, 3.0).await;
    world.sandbox.shutdown().await;

    // 5. Zip sizes.
    let zips: Vec<(String, Option<u64>)> = ["webhook", "sender", "templates", "admin"]
        .iter()
        .map(|n| {
            let p = args.zip_dir.join(n).join("bootstrap.zip");
            (n.to_string(), std::fs::metadata(&p).ok().map(|m| m.len()))
        })
        .collect();

    let r = report::Report {
        machine,
        machine_after: report::loadavg(),
        duration_secs: started.elapsed().as_secs_f64(),
        args: args.clone(),
        intake_rust: rust,
        intake_pywa: pywa,
        intake_wajs: wajs,
        starts,
        webhook_cost: wh_cost,
        sender_runs,
        emulator,
        fairness,
        many_numbers,
        zips,
    };
    let (md, js) = r.render();
    std::fs::write(args.out.join("latest.md"), md).map_err(|e| e.to_string())?;
    std::fs::write(
        args.out.join("latest.json"),
        serde_json::to_vec_pretty(&js).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    step(&format!(
        "report written to {}/latest.md and latest.json",
        args.out.display()
    ));
    Ok(())
}

/// Section 6: the noisy neighbour, then the many numbers, Graph at 150 ms
/// with the sandbox counting every send rather than refusing the 81st.
async fn tenant_sections(
    world: &world::World,
    args: &RunArgs,
) -> (
    Result<noisy::Fairness, String>,
    Result<many_numbers::ManyNumbers, String>,
) {
    if let Err(e) = world
        .meta
        .set_knobs(&json!({"latency_ms": {"min": 150, "max": 150}, "mps_cap": 1_000_000}))
        .await
    {
        let e = e.to_string();
        return (Err(e.clone()), Err(e));
    }
    step(&format!(
        "noisy neighbour: {} instances; B alone for {} s, then A's {} alerts beside B",
        args.fleet_instances, args.quiet_secs, args.flood
    ));
    let fairness = noisy::run(world, args.fleet_instances, args.flood, args.quiet_secs).await;
    step(&format!(
        "many numbers: {} instances, {} tenants, {} alerts",
        args.fleet_instances,
        world::MANY_TENANTS,
        args.many_messages
    ));
    let many = many_numbers::run(world, args.fleet_instances, args.many_messages).await;
    (fairness, many)
}

/// `fincelo-bench tenants`: section 6 and its ceiling, as JSON on stdout.
async fn tenants_only(args: RunArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    step("world: moto tables and queues, Meta sandbox, tenants, approved templates");
    let world = world::World::start(&args.moto, args.moto_pid).await?;
    let (fairness, many) = tenant_sections(&world, &args).await;
    step("emulator: moto's capacity for the sender's requests, 1 and 10 clients");
    let emulator = emulator::measure(&world, 3.0).await;
    world.sandbox.shutdown().await;
    let js = report::tenant_sections_json(&fairness, &many, &emulator);
    let out = json!({
        "loadavg_at_end": report::loadavg(),
        "duration_secs": started.elapsed().as_secs_f64(),
        "sections": js,
        "emulator": emulator.as_ref().map(|c| json!(c)).unwrap_or_else(|e| json!({"error": e})),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}
