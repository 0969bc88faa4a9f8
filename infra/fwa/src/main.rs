//! `fwa`: a command-line tool for the fincelo-whatsapp local stack, and,
//! with AWS credentials, a deployed one.
//!
//! Locally it reads `.local/dev.json` (written by `make dev`) to find the
//! emulator, the sandbox and the resources. Against a deployed stack it reads
//! the stack's outputs (`--stack-outputs FILE`, as `sam list stack-outputs
//! --output json` or `aws cloudformation describe-stacks` print them) and a
//! `--tenant`, and uses the standard AWS credential chain. `inspect-webhook`
//! needs neither: it runs the intake's own parser over a body (no signature,
//! no AWS) and prints what the intake would act on.

use std::collections::HashMap;
use std::io::Read;
use std::time::SystemTime;

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
    /// A deployed stack's outputs (JSON); replaces `--state`.
    #[arg(long, global = true, requires = "tenant")]
    stack_outputs: Option<String>,
    /// The tenant to act for on a deployed stack.
    #[arg(long, global = true)]
    tenant: Option<String>,
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

/// Where fwa acts: the local stack or a deployed one.
enum Target {
    /// `.local/dev.json`: moto, the sandbox and the resources.
    Local(Value),
    /// A deployed stack's outputs by key, and the tenant.
    Deployed {
        outputs: HashMap<String, String>,
        tenant: String,
    },
}

impl Target {
    fn open(cli: &Cli) -> Result<Target, String> {
        match (&cli.stack_outputs, &cli.tenant) {
            (Some(path), Some(tenant)) => Ok(Target::Deployed {
                outputs: read_outputs(path)?,
                tenant: tenant.clone(),
            }),
            _ => {
                let path = &cli.state;
                let raw = std::fs::read_to_string(path)
                    .map_err(|e| format!("{path}: {e} (is `make dev` running? for a deployed stack pass --stack-outputs and --tenant)"))?;
                Ok(Target::Local(
                    serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))?,
                ))
            }
        }
    }

    /// A value by its dev.json key or stack output name.
    fn get(&self, local_key: &str, output: &str) -> Result<&str, String> {
        match self {
            Target::Local(v) => v
                .get(local_key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("state file lacks {local_key}")),
            Target::Deployed { outputs, .. } => outputs
                .get(output)
                .map(String::as_str)
                .ok_or_else(|| format!("stack outputs lack {output}")),
        }
    }

    fn table(&self) -> Result<&str, String> {
        self.get("table", "TableName")
    }

    fn send_queue_url(&self) -> Result<&str, String> {
        self.get("send_queue_url", "SendQueueUrl")
    }

    fn tenant_id(&self) -> Result<&str, String> {
        match self {
            Target::Local(_) => self.get("tenant_id", ""),
            Target::Deployed { tenant, .. } => Ok(tenant),
        }
    }

    /// Locally the emulator; deployed, the standard AWS chain (environment,
    /// profile, SSO, instance role; `AWS_ENDPOINT_URL` is honoured too).
    async fn sdk(&self) -> Result<aws_config::SdkConfig, String> {
        Ok(match self {
            Target::Local(_) => local_sdk_config(self.get("moto", "")?)
                .await
                .map_err(|e| format!("{e}"))?,
            Target::Deployed { .. } => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await
            }
        })
    }
}

/// Stack outputs as `[{"OutputKey", "OutputValue"}]` (CloudFormation, SAM)
/// or as a plain `{"Key": "value"}` object.
fn read_outputs(path: &str) -> Result<HashMap<String, String>, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Value = serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))?;
    let list = v.pointer("/Stacks/0/Outputs").unwrap_or(&v).clone();
    let pairs: HashMap<String, String> = match list {
        Value::Array(items) => items
            .iter()
            .filter_map(|o| {
                Some((
                    o.get("OutputKey")?.as_str()?.to_string(),
                    o.get("OutputValue")?.as_str()?.to_string(),
                ))
            })
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect(),
        _ => HashMap::new(),
    };
    if pairs.is_empty() {
        return Err(format!("{path}: no stack outputs found"));
    }
    Ok(pairs)
}

/// POSTs to an IAM-authorised route of the deployed HTTP API, signed with
/// SigV4 for `execute-api`.
async fn signed_post(sdk: &aws_config::SdkConfig, url: &str) -> Result<Value, String> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials configured")?
        .provide_credentials()
        .await
        .map_err(|e| format!("AWS credentials: {e}"))?;
    let identity = credentials.into();
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region configured (set AWS_REGION)")?;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new("POST", url, std::iter::empty(), SignableBody::Bytes(b""))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut req = reqwest::Client::new().post(url);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}: {body}"));
    }
    Ok(body)
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
    let target = Target::open(&cli)?;
    let sdk = target.sdk().await?;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), target.table()?);
    let tenant = TenantId::parse(target.tenant_id()?).map_err(|e| e.to_string())?;
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
                    "version": 1, "tenant_id": tenant, "idempotency_key": key.unwrap_or_else(|| format!("fwa-{}", fincelo::clock::Clock::system().now())),
                    "recipient": {"phone": to},
                    "event": {"type": event, "customer": {"name": "Globex", "health": health, "premium": false}, "params": ["Globex", "85", "Pro", "good"]},
                    "text": text,
                })
                .to_string(),
            };
            aws_sdk_sqs::Client::new(&sdk)
                .send_message()
                .queue_url(target.send_queue_url()?)
                .message_body(&body)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "SendMessage: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            println!("enqueued: {body}");
        }
        Command::Reply { from, text } => {
            if matches!(target, Target::Deployed { .. }) {
                return Err("reply simulates a CSM through the local Meta sandbox; on a deployed stack the CSM writes to the business number".into());
            }
            let from = E164::parse(&from).map_err(|e| e.to_string())?;
            let reply = SandboxClient::new(target.get("sandbox", "")?)
                .inbound(&InboundRequest {
                    phone_number_id: target.get("phone_number_id", "")?.to_string(),
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
            let resp = match &target {
                Target::Local(_) => {
                    let url = target.get("webhook_url", "")?.replace(
                        "/webhooks/whatsapp",
                        &format!("/admin/tenants/{tenant}/templates"),
                    );
                    reqwest::Client::new()
                        .post(url)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .json::<Value>()
                        .await
                        .map_err(|e| e.to_string())?
                }
                Target::Deployed { .. } => {
                    let url = target
                        .get("", "TemplatesAdminUrl")?
                        .replace("{tenant_id}", tenant.as_str());
                    signed_post(&sdk, &url).await?
                }
            };
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
            let now = fincelo::clock::Clock::system().now();
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
