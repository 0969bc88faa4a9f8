//! `fwa`: a command-line tool for the fincelo-whatsapp local stack.
//!
//! It reads `.local/dev.json` (written by `make dev`) to find the emulator,
//! the sandbox and the resources. `inspect-webhook` needs nothing at all: it
//! runs the intake's own parser over a body (no signature, no AWS) and prints
//! what the intake would act on.

use std::io::Read;

use clap::{Parser, Subcommand};
use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::phone::E164;
use fincelo::startup::local_sdk_config;
use fincelo::store::Store;
use meta_sandbox::{InboundRequest, SandboxClient};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "fwa",
    about = "Drive and inspect the fincelo-whatsapp local stack"
)]
struct Cli {
    /// The state file `make dev` writes.
    #[arg(long, default_value = ".local/dev.json", global = true)]
    state: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse a webhook body (FILE or - for stdin) as the intake would and print what it acts on.
    InspectWebhook { file: String },
    /// Enqueue a send request (a JSON file, or built from flags).
    Enqueue {
        #[arg(long)]
        file: Option<String>,
        #[arg(long, default_value = "+919876543210")]
        to: String,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = "usage_threshold")]
        event: String,
        #[arg(long, default_value = "good")]
        health: String,
        #[arg(long, default_value = "An alert from fwa")]
        text: String,
    },
    /// Simulate a CSM's reply (a signed inbound webhook from the sandbox).
    Reply {
        #[arg(long, default_value = "+919876543210")]
        from: String,
        #[arg(long, default_value = "On it")]
        text: String,
    },
    /// Submit the six templates for the demo tenant.
    SubmitTemplates,
    /// Show a message's timeline by idempotency key.
    Timeline { key: String },
    /// Show a CSM's 24-hour window.
    Window { phone: String },
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn state(path: &str) -> Result<Value, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e} (is `make dev` running?)"))?;
    serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))
}

fn field<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("state file lacks {k}"))
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("fwa: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::InspectWebhook { file } = &cli.command {
        let mut body = Vec::new();
        if file == "-" {
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
        } else {
            body = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        }
        let intake = fincelo::webhook::payload::parse(&body).map_err(|e| e.to_string())?;
        print_json(&intake);
        return Ok(());
    }
    let st = state(&cli.state)?;
    let sdk = local_sdk_config(field(&st, "moto")?).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), field(&st, "table")?);
    let tenant = TenantId::parse(field(&st, "tenant_id")?).map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    match cli.command {
        Command::InspectWebhook { .. } => unreachable!("handled above"),
        Command::Enqueue {
            file,
            to,
            key,
            event,
            health,
            text,
        } => {
            let body = match file {
                Some(f) => std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?,
                None => json!({
                    "version": 1, "tenant_id": tenant, "idempotency_key": key.unwrap_or_else(|| format!("fwa-{}", fincelo::startup::now())),
                    "recipient": {"phone": to},
                    "event": {"type": event, "customer": {"name": "Globex", "health": health, "premium": false}, "params": ["Globex", "85", "Pro", "good"]},
                    "text": text,
                })
                .to_string(),
            };
            aws_sdk_sqs::Client::new(&sdk)
                .send_message()
                .queue_url(field(&st, "send_queue_url")?)
                .message_body(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            println!("enqueued: {body}");
        }
        Command::Reply { from, text } => {
            let from = E164::parse(&from).map_err(|e| e.to_string())?;
            let reply = SandboxClient::new(field(&st, "sandbox")?)
                .inbound(&InboundRequest {
                    phone_number_id: field(&st, "phone_number_id")?.to_string(),
                    from: from.wa_id().to_string(),
                    text,
                    timestamp: None,
                    profile_name: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            print_json(&reply);
        }
        Command::SubmitTemplates => {
            let url = field(&st, "webhook_url")?.replace(
                "/webhooks/whatsapp",
                &format!("/admin/tenants/{tenant}/templates"),
            );
            let resp: Value = http
                .post(url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            print_json(&resp);
        }
        Command::Timeline { key } => {
            let key = IdempotencyKey::parse(key).map_err(|e| e.to_string())?;
            let ledger = store
                .get_ledger(&tenant, &key)
                .await
                .map_err(|e| e.to_string())?;
            let statuses = store
                .statuses_by_key(&tenant, &key)
                .await
                .map_err(|e| e.to_string())?;
            let out = json!({
                "idempotency_key": key,
                "ledger": ledger.map(|l| json!({"state": l.state.as_str(), "mode": l.mode, "template": l.template, "wamid": l.wamid, "attempts": l.attempts, "last_error": l.last_error, "created_at": l.created_at, "sent_at": l.sent_at})),
                "statuses": statuses.iter().map(|s| json!({"wamid": s.wamid, "status": s.status, "sent_at": s.sent_at, "delivered_at": s.delivered_at, "read_at": s.read_at, "failed_at": s.failed_at, "errors": s.errors_json})).collect::<Vec<_>>(),
            });
            print_json(&out);
        }
        Command::Window { phone } => {
            let csm = E164::parse(&phone).map_err(|e| e.to_string())?;
            let w = store
                .get_window(&tenant, &csm)
                .await
                .map_err(|e| e.to_string())?;
            let now = fincelo::startup::now();
            let out = match w {
                Some(w) => {
                    json!({"csm": csm.masked(), "expires_at": w.expires_at, "last_inbound_at": w.last_inbound_at, "open": w.is_open(now, 0), "seconds_left": (w.expires_at - now).max(0)})
                }
                None => json!({"csm": csm.masked(), "open": false, "window": null}),
            };
            print_json(&out);
        }
    }
    Ok(())
}
