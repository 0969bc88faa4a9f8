//! `fincelo-local dev`: the whole system on loopback (what `make dev` runs).
//!
//! Starts the Meta sandbox, provisions the emulator (moto must be running;
//! the Makefile starts it), starts the four functions wired as in
//! template.yaml, registers a demo tenant in both, plays the scenario, then
//! keeps serving until Ctrl-C.
//!
//! `fincelo-local journey`: the operator's day one to day three through
//! `fwa`, against a stack of its own (what `make journey` runs; see
//! [`fincelo_local::journey`]). Exits 0 only when every step passed.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use fincelo_local::scenario;
use fincelo_local::{LocalTenant, Stack, StackOptions};

#[derive(Parser)]
#[command(name = "fincelo-local", about = "Run fincelo-whatsapp on one machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local stack in the foreground, with a demo scenario.
    Dev {
        #[arg(long, default_value = "http://127.0.0.1:5055")]
        moto: String,
        #[arg(long, default_value = "127.0.0.1:8787")]
        http: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8788")]
        sandbox: SocketAddr,
        /// Skip the demo scenario.
        #[arg(long)]
        no_scenario: bool,
    },
    /// The operator's journey through fwa, against a local stack of its own.
    Journey {
        #[arg(long, default_value = "http://127.0.0.1:5064")]
        moto: String,
        /// The fwa binary to drive.
        #[arg(long, default_value = "target/debug/fwa")]
        fwa: std::path::PathBuf,
        /// Where the journey keeps its state file and secrets file.
        #[arg(long, default_value = ".local/journey")]
        dir: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The journey's output is its timeline: the functions' JSON logs stay
    // out of it unless they are errors (RUST_LOG overrides).
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Dev { .. } => "warn",
        Command::Journey { .. } => "error",
    };
    fincelo::startup::init_tracing(&std::env::var("RUST_LOG").unwrap_or_else(|_| level.into()));
    match cli.command {
        Command::Dev {
            moto,
            http,
            sandbox,
            no_scenario,
        } => dev(moto, http, sandbox, no_scenario).await,
        Command::Journey { moto, fwa, dir } => {
            let opts = fincelo_local::journey::JourneyOptions { moto, fwa, dir };
            let report = fincelo_local::journey::run(&opts, &mut std::io::stdout()).await;
            std::process::exit(if report.all_passed() { 0 } else { 1 });
        }
    }
}

async fn dev(
    moto: String,
    http: SocketAddr,
    sandbox: SocketAddr,
    no_scenario: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    // One clock for the stack and the sandbox: `fwa clock advance` moves both.
    let time = fincelo_local::TimeControl::default();
    let mut sandbox_config = meta_sandbox::SandboxConfig::default();
    sandbox_config.knobs.template_approval_delay_ms = 2000;
    sandbox_config.clock = time.sandbox_clock();
    let sandbox = meta_sandbox::spawn(sandbox, sandbox_config).await?;
    let prefix = format!("fwa-dev-{}", fincelo::clock::Clock::system().now());
    let mut opts = StackOptions::new(&moto, sandbox.base_url(), &prefix);
    opts.time = time;
    opts.http_addr = http;
    opts.sweep_every = Some(fincelo_local::stack::SWEEP_PERIOD);
    // The send queue scales up to what a deploy with defaults allows.
    opts.sender_instances = u32::try_from(fincelo_local::provision::parameter_default(
        "SenderMaxConcurrency",
    )?)?;
    let stack = Stack::start(opts).await?;

    let tenant = LocalTenant {
        tenant_id: "demo".into(),
        phone_number_id: "106540352242922".into(),
        waba_id: "102290129340398".into(),
        access_token: "dev-access-token".into(),
        app_secret: "dev-app-secret-of-the-local-stack".into(),
        verify_token: "dev-verify-token".into(),
        display_phone_number: Some("+1 555 010 0000".into()),
        messages_per_second: None,
    };
    stack.add_tenant(&tenant).await?;
    sandbox
        .client()
        .register_tenant(&meta_sandbox::model::TenantSpec {
            verified_name: Some("Fincelo Demo".into()),
            ..tenant.sandbox_spec(stack.webhook_url())
        })
        .await?;

    let dev = fincelo_local::dev_state::dev_state(
        &stack,
        &moto,
        &sandbox.base_url(),
        Some(&tenant.tenant_id),
    );
    fincelo_local::dev_state::write_dev_state(std::path::Path::new(".local/dev.json"), &dev)?;

    println!("fincelo-whatsapp local stack");
    println!("  moto (local AWS)      {moto}");
    println!(
        "  Meta sandbox          {}   (control: {}/_sandbox/)",
        sandbox.base_url(),
        sandbox.base_url()
    );
    println!(
        "  webhook function      {}   (GET handshake, POST intake)",
        stack.webhook_url()
    );
    println!(
        "  templates function    http://{}/admin/tenants/demo/templates",
        stack.http_addr()
    );
    let max = stack.sender_concurrency().map_or(0, |c| c.max);
    println!(
        "  sender function       polling {}   (up to {max} at once)",
        stack.resources.queue("SendQueue")
    );
    println!("  table                 {}", stack.resources.table_name);
    println!(
        "  events queue          {}",
        stack.resources.queue("EventsQueue")
    );
    println!("  demo tenant           demo (verify token: dev-verify-token)");
    println!(
        "  admin function        http://{}/admin/tenants/demo/{{channel,csms,parked,...}}",
        stack.http_addr()
    );
    println!(
        "  clock                 http://{}/_local/clock   (fwa clock advance 30h)",
        stack.http_addr()
    );
    println!(
        "  state for fwa         .local/dev.json   (try: .local/bin/fwa status, or fwa --help)"
    );
    println!();
    if !no_scenario {
        println!("scenario:");
        match scenario::play(&stack, &sandbox.client(), &tenant, "+919876543210").await {
            Ok(_) => println!("scenario done."),
            Err(e) => println!("scenario stopped: {e}"),
        }
    }
    println!("serving; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    stack.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}
