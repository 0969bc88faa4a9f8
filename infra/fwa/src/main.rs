//! `fwa`: the operator's tool for fincelo-whatsapp, on the local stack and
//! on a deployed one, for the whole journey from day one (connect the
//! channel, submit the templates, add the CSMs) to the days after (status,
//! parked alerts, redrive, an alert's timeline, what the messages cost).
//!
//! Where it acts is read in one place ([`target`]): the local stack's state
//! file (`--state`, default `.local/dev.json`, written by `make dev`), or a
//! deployed stack's outputs (`--stack-outputs FILE`) with the standard AWS
//! credential chain; either way it calls the same admin API ([`target`] says
//! which commands differ). What it prints is for people ([`show`]): plain
//! words and ISO-8601 UTC times; `--json` prints the API's answer instead.
//! Secrets are read from a file or standard input ([`secrets_input`]), never
//! from the command line, and never printed.
//!
//! Exit status: 0 on success, 1 with `fwa: <why>` on standard error
//! otherwise (an admin API refusal in its own words, e.g. `fwa redrive` of
//! a key that is not parked). `inspect-webhook` needs no stack: it runs the
//! intake's own parser over a body and prints what the intake would act on
//! (as JSON: it is a dump of the parse).

mod secrets_input;
mod show;
mod target;

use std::io::Read;

use clap::{Parser, Subcommand};
use fincelo::ids::TenantId;
use fincelo::phone::E164;
use fincelo::store::Store;
use http::Method;
use meta_sandbox::{InboundMessage, InboundRequest, MessageRecord, SandboxClient};
use serde_json::{json, Map, Value};
use target::{CallError, Target};

#[derive(Parser)]
#[command(
    name = "fwa",
    about = "The operator's tool for fincelo-whatsapp: the local stack, or a deployed one"
)]
struct Cli {
    /// The local stack's state file (`make dev` writes it).
    #[arg(long, default_value = ".local/dev.json", global = true)]
    state: String,
    /// A deployed stack's outputs (JSON); replaces `--state`.
    #[arg(long, global = true, requires = "tenant")]
    stack_outputs: Option<String>,
    /// The tenant to act for (locally, the state file's tenant by default).
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse a webhook body (FILE or - for stdin) as the intake would and print what it acts on.
    InspectWebhook { file: String },
    /// Connect the tenant's Meta app (`channel connect`).
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// The channel's status: connection, templates, waiting and parked alerts, CSMs.
    Status,
    /// Submit the six templates to Meta for the tenant.
    SubmitTemplates,
    /// The CSM roster.
    #[command(subcommand)]
    Csm(CsmCommand),
    /// Enqueue a send request (a JSON file, or built from flags), as upstream would.
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
        #[arg(long)]
        premium: bool,
        /// A template parameter, in order (repeat; four by default).
        #[arg(long = "param")]
        params: Vec<String>,
        #[arg(long, default_value = "An alert from fwa")]
        text: String,
    },
    /// The tenant's parked alerts with their reasons.
    Parked,
    /// Delivered messages and their estimated cost at Meta, per day and
    /// pricing category, for a month (UTC).
    Costs {
        /// YYYY-MM; the current month by default.
        #[arg(long)]
        month: Option<String>,
    },
    /// Put a parked alert back on the send queue after its fix.
    Redrive { key: String },
    /// An alert's timeline by idempotency key.
    Timeline { key: String },
    /// A CSM's 24-hour window.
    Window { phone: String },
    /// Simulate a CSM's reply (local only: the Meta sandbox posts a signed
    /// inbound message). With `--to-key`, the reply quotes that alert and
    /// comes from the CSM it went to.
    Reply {
        #[arg(long, conflicts_with = "to_key")]
        from: Option<String>,
        /// The idempotency key of the alert to quote.
        #[arg(long)]
        to_key: Option<String>,
        #[arg(long, default_value = "On it")]
        text: String,
    },
    /// Simulate a CSM tapping a button of an alert (local only): BUTTON is
    /// its label, e.g. Acknowledge, "Snooze 7 days", Escalate, "Call me".
    Tap { key: String, button: String },
    /// The local stack's clock (local only).
    #[command(subcommand)]
    Clock(ClockCommand),
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Save the Meta app's ids and secrets (checked with Meta first). The
    /// secrets come from a file or stdin: JSON {"access_token",
    /// "app_secret", "verify_token"} or name=value lines.
    Connect {
        #[arg(long)]
        phone_number_id: String,
        #[arg(long)]
        waba_id: String,
        /// The secrets file, or - for standard input.
        #[arg(long)]
        secrets: String,
    },
}

#[derive(Subcommand)]
enum CsmCommand {
    /// Save a CSM's WhatsApp number (E.164, e.g. +919876543210).
    Add { csm_id: String, number: String },
    /// Remove a CSM from the roster.
    Remove { csm_id: String },
    /// List the roster.
    List,
}

#[derive(Subcommand)]
enum ClockCommand {
    /// Show the local stack's clock.
    Show,
    /// Move the local stack's clock forward (e.g. 30h, 90m, 2d); the sweep fires.
    Advance { by: String },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("fwa: {e}");
        std::process::exit(1);
    }
}

/// Prints the answer: its JSON with `--json`, else its text.
fn print(json: bool, value: &Value, text: impl FnOnce(&Value) -> String) {
    if json {
        say(&serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        say(&text(value));
    }
}

/// One line (or block) on standard output. A reader that went away
/// (`fwa parked | head -1`) is not an error worth a panic.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The CSM `fwa reply` plays by default.
const DEFAULT_CSM: &str = "+919876543210";

/// The message Meta (the sandbox) received for the alert `key`: its wamid
/// from the alert's timeline, its buttons from the sandbox's record.
async fn alert_at_meta(
    target: &Target,
    client: &SandboxClient,
    tenant_path: &str,
    key: &str,
) -> Result<MessageRecord, CallError> {
    let timeline = target
        .admin(
            Method::GET,
            &format!("{tenant_path}/messages/{}", seg(key)),
            None,
        )
        .await?;
    let wamid = timeline["wamid"]
        .as_str()
        .ok_or_else(|| format!("alert {key} has not been sent yet"))?
        .to_string();
    client
        .messages(None, None)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|m| m.wamid == wamid)
        .ok_or_else(|| format!("the sandbox has no message {wamid}").into())
}

/// Whether Meta's webhook for an inbound message was delivered.
fn delivery(v: &Value) -> String {
    let delivered = v["webhook"]
        .as_array()
        .is_some_and(|w| w.iter().all(|d| d["delivered"] == true));
    if delivered {
        format!(
            "Meta's webhook was delivered (message {})",
            v["message_id"].as_str().unwrap_or("")
        )
    } else {
        "Meta's webhook was NOT delivered (see the sandbox's webhook log)".into()
    }
}

/// A path segment, percent-encoded (an idempotency key may hold `/`, `:`).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn run(cli: Cli) -> Result<(), CallError> {
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
        say(&serde_json::to_string_pretty(&intake).unwrap_or_default());
        return Ok(());
    }
    let target = Target::open(&cli.state, cli.stack_outputs.as_deref())?;
    if let Command::Clock(c) = &cli.command {
        let url = target.local_only("clock_url", "a clock that can be moved")?;
        let v = match c {
            ClockCommand::Show => target.clock().await?,
            ClockCommand::Advance { by } => {
                let d = humantime::parse_duration(by)
                    .map_err(|e| format!("{by:?} is not a duration such as 30h, 90m or 2d: {e}"))?;
                target::post_local(url, &json!({"advance_secs": d.as_secs()})).await?
            }
        };
        print(cli.json, &v, show::clock);
        return Ok(());
    }
    let tenant =
        TenantId::parse(target.tenant(cli.tenant.as_deref())?).map_err(|e| e.to_string())?;
    let t = seg(tenant.as_str());
    match cli.command {
        Command::InspectWebhook { .. } | Command::Clock(_) => unreachable!("handled above"),
        Command::Channel(ChannelCommand::Connect {
            phone_number_id,
            waba_id,
            secrets,
        }) => {
            let secrets = secrets_input::read(&secrets)?;
            let mut ids = Map::new();
            ids.insert("phone_number_id".into(), json!(phone_number_id.trim()));
            ids.insert("waba_id".into(), json!(waba_id.trim()));
            let body = secrets.into_body(ids).to_string();
            let (status, v) = target
                .admin_status(Method::PUT, &format!("{t}/channel"), Some(body.as_bytes()))
                .await?;
            print(cli.json, &v, |v| show::channel_saved(v, status == 201));
        }
        Command::Status => {
            let v = target
                .admin(Method::GET, &format!("{t}/channel"), None)
                .await?;
            print(cli.json, &v, show::status);
        }
        Command::SubmitTemplates => {
            let v = target
                .admin(Method::POST, &format!("{t}/templates"), None)
                .await?;
            print(cli.json, &v, show::submitted);
        }
        Command::Csm(CsmCommand::Add { csm_id, number }) => {
            let body = json!({"whatsapp_number": number}).to_string();
            let v = target
                .admin(
                    Method::PUT,
                    &format!("{t}/csms/{}", seg(&csm_id)),
                    Some(body.as_bytes()),
                )
                .await?;
            print(cli.json, &v, show::csm_saved);
        }
        Command::Csm(CsmCommand::Remove { csm_id }) => {
            target
                .admin(Method::DELETE, &format!("{t}/csms/{}", seg(&csm_id)), None)
                .await?;
            let v = json!({"tenant_id": tenant, "csm_id": csm_id, "removed": true});
            print(cli.json, &v, |v| {
                format!(
                    "CSM {} removed from the roster",
                    v["csm_id"].as_str().unwrap_or("")
                )
            });
        }
        Command::Csm(CsmCommand::List) => {
            let v = target
                .admin(Method::GET, &format!("{t}/csms"), None)
                .await?;
            print(cli.json, &v, |v| show::csm_lines(&v["csms"]));
        }
        Command::Parked => {
            let v = target
                .admin(Method::GET, &format!("{t}/parked"), None)
                .await?;
            print(cli.json, &v, show::parked);
        }
        Command::Costs { month } => {
            let query = month
                .map(|m| format!("?month={}", seg(&m)))
                .unwrap_or_default();
            let v = target
                .admin(Method::GET, &format!("{t}/costs{query}"), None)
                .await?;
            print(cli.json, &v, show::costs);
        }
        Command::Redrive { key } => {
            let v = target
                .admin(
                    Method::POST,
                    &format!("{t}/messages/{}/redrive", seg(&key)),
                    None,
                )
                .await?;
            print(cli.json, &v, show::redriven);
        }
        Command::Timeline { key } => {
            let v = target
                .admin(Method::GET, &format!("{t}/messages/{}", seg(&key)), None)
                .await?;
            print(cli.json, &v, show::timeline);
        }
        Command::Window { phone } => {
            let csm = E164::parse(&phone).map_err(|e| e.to_string())?;
            let sdk = target.sdk().await?;
            // Reads only: the retention applies to writes.
            let store = Store::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                target.table()?,
                fincelo::store::Retention::default(),
            );
            let who = fincelo::addressing::identity_of_number(&store, &tenant, &csm)
                .await
                .map_err(|e| e.to_string())?;
            let w = store
                .get_window(&tenant, &who)
                .await
                .map_err(|e| e.to_string())?;
            let now = target.now().await?;
            let expires = w.map(|w| w.expires_at);
            let v = json!({
                "csm": csm.masked(),
                "open": w.is_some_and(|w| w.is_open(now, 0)),
                "expires_at": expires.map(fincelo::admin::when::iso8601),
                "expires_at_unix": expires,
                "seconds_left": expires.map(|e| (e - now).max(0)).unwrap_or(0),
            });
            print(cli.json, &v, |_| show::window(&csm.masked(), expires, now));
        }
        Command::Enqueue {
            file,
            to,
            key,
            event,
            health,
            premium,
            params,
            text,
        } => {
            let body = match file {
                Some(f) => std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?,
                None => {
                    let params = if params.is_empty() {
                        ["Globex", "85", "Pro", "good"].map(String::from).to_vec()
                    } else {
                        params
                    };
                    let key = match key {
                        Some(k) => k,
                        None => format!("fwa-{}", target.now().await.unwrap_or_default()),
                    };
                    json!({
                        "version": 1, "tenant_id": tenant, "idempotency_key": key,
                        "recipient": {"phone": to},
                        "event": {"type": event, "customer": {"name": "Globex", "health": health, "premium": premium}, "params": params},
                        "text": text,
                    })
                    .to_string()
                }
            };
            let sdk = target.sdk().await?;
            aws_sdk_sqs::Client::new(&sdk)
                .send_message()
                .queue_url(target.send_queue_url()?)
                .message_body(&body)
                // The tenant's fair-queue group, as upstream sets it.
                .message_group_id(fincelo::sender::message::fair_group(&body))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "SendMessage: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
            print(cli.json, &v, |v| {
                format!(
                    "enqueued alert {} for {} on the send queue",
                    v["idempotency_key"].as_str().unwrap_or("(no key)"),
                    v["recipient"]["phone"]
                        .as_str()
                        .and_then(|p| E164::parse(p).ok())
                        .map(|p| p.masked())
                        .unwrap_or_else(|| "(no valid number)".into())
                )
            });
        }
        Command::Tap { key, button } => {
            let sandbox = target.local_only(
                "sandbox",
                "tap (a CSM simulated by the Meta sandbox; on a deployed stack the CSM taps on their phone)",
            )?;
            let client = SandboxClient::new(sandbox);
            let sent = alert_at_meta(&target, &client, &t, &key).await?;
            let tap = InboundMessage::tap(&sent, &button).ok_or_else(|| {
                format!(
                    "alert {key} has no button \"{button}\"; it offers: {}",
                    InboundMessage::labels(&sent).join(", ")
                )
            })?;
            let r = client
                .inbound_message(&tap)
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&r).unwrap_or(Value::Null);
            print(cli.json, &v, |v| {
                format!("the CSM tapped {button} on alert {key}; {}", delivery(v))
            });
        }
        // `--from` and `--to-key` exclude each other (clap refuses both).
        Command::Reply {
            from: _,
            to_key: Some(key),
            text,
        } => {
            let sandbox = target.local_only(
                "sandbox",
                "reply (a CSM simulated by the Meta sandbox; on a deployed stack the CSM writes to the business number)",
            )?;
            let client = SandboxClient::new(sandbox);
            let sent = alert_at_meta(&target, &client, &t, &key).await?;
            let r = client
                .inbound_message(&InboundMessage::quoted_reply(&sent, &text))
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&r).unwrap_or(Value::Null);
            print(cli.json, &v, |v| {
                format!(
                    "the CSM replied to alert {key}, quoting it; {}",
                    delivery(v)
                )
            });
        }
        Command::Reply {
            from,
            to_key: None,
            text,
        } => {
            let sandbox = target.local_only(
                "sandbox",
                "reply (a CSM simulated by the Meta sandbox; on a deployed stack the CSM writes to the business number)",
            )?;
            let from = from.unwrap_or_else(|| DEFAULT_CSM.to_string());
            let from = E164::parse(&from).map_err(|e| e.to_string())?;
            let channel = target
                .admin(Method::GET, &format!("{t}/channel"), None)
                .await?;
            let phone_number_id = channel["phone_number_id"]
                .as_str()
                .ok_or("the channel status names no phone number id")?
                .to_string();
            // The sandbox reads the stack's clock: its timestamp is ours.
            let reply = SandboxClient::new(sandbox)
                .inbound(&InboundRequest {
                    phone_number_id,
                    from: from.wa_id().to_string(),
                    text,
                    timestamp: None,
                    profile_name: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(&reply).unwrap_or(Value::Null);
            print(cli.json, &v, |v| {
                let delivered = v["webhook"]
                    .as_array()
                    .is_some_and(|w| w.iter().all(|d| d["delivered"] == true));
                format!(
                    "CSM {} wrote at {}; Meta's webhook {}",
                    from.masked(),
                    v["timestamp"]
                        .as_i64()
                        .map(fincelo::admin::when::iso8601)
                        .unwrap_or_default(),
                    if delivered {
                        "was delivered"
                    } else {
                        "was NOT delivered (see the sandbox's webhook log)"
                    }
                )
            });
        }
    }
    Ok(())
}
