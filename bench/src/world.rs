//! The benchmark's world: moto (already running), an in-process Meta
//! sandbox, the table and queues provisioned from `template.yaml`, one
//! tenant (the corpus's WABA and phone number ids) with its six templates
//! APPROVED, and apps whose AWS clients count their requests.

use std::collections::HashMap;
use std::time::Duration;

use fincelo::config::Config;
use fincelo::ids::TenantId;
use fincelo::startup::App;
use fincelo::templates::handler::Action;
use fincelo_local::{LocalTenant, Resources, Stack, StackOptions};
use meta_sandbox::{SandboxClient, SandboxConfig, SandboxHandle};
use serde_json::json;

use crate::corpus::{APP_SECRET, PHONE_NUMBER_ID, WABA_ID};
use fincelo_bench::counting::{counted_clients, RequestCounter};

pub const TENANT: &str = "bench";
pub const VERIFY_TOKEN: &str = "bench-verify-token";
pub const ACCESS_TOKEN: &str = "bench-access-token";

/// The tenants: the corpus's own (`bench`, used by the cold-start runs and
/// the intake), one per sender throughput run, the noisy neighbour's two
/// ([`FLOOD_TENANT`], [`QUIET_TENANT`]) and the many numbers' ten
/// ([`many_tenant`]), so that each run has its own phone numbers and the
/// sandbox's per-number counts start from zero. Each keeps the default cap
/// of 80 messages per second.
pub fn tenants() -> Vec<(String, String, String)> {
    let mut v = vec![(
        TENANT.to_string(),
        PHONE_NUMBER_ID.to_string(),
        WABA_ID.to_string(),
    )];
    let others = (1..=RUN_TENANTS)
        .map(run_tenant)
        .chain([FLOOD_TENANT.to_string(), QUIET_TENANT.to_string()])
        .chain((1..=MANY_TENANTS).map(many_tenant));
    for (k, tenant) in others.enumerate() {
        let k = k + 1;
        v.push((
            tenant,
            format!("1065403522430{k:02}"),
            format!("1022901293404{k:02}"),
        ));
    }
    v
}

/// How many throughput tenants exist.
pub const RUN_TENANTS: usize = 4;

/// The noisy neighbour's flooding tenant (A) and its quiet one (B).
pub const FLOOD_TENANT: &str = "bench-flood";
pub const QUIET_TENANT: &str = "bench-quiet";

/// How many tenants (each its own number) the many-numbers section serves.
pub const MANY_TENANTS: usize = 10;

/// The tenant id of the many-numbers section's tenant `k` (1-based).
pub fn many_tenant(k: usize) -> String {
    format!("bench-many{k}")
}

/// The tenant id of throughput run `k` (1-based).
pub fn run_tenant(k: usize) -> String {
    format!("bench-run{k}")
}

/// The phone number id of a tenant from [`tenants`].
pub fn phone_number_id_of(tenant: &str) -> String {
    tenants()
        .into_iter()
        .find(|(t, _, _)| t == tenant)
        .map(|(_, p, _)| p)
        .unwrap_or_default()
}

pub struct World {
    pub moto: String,
    pub sandbox: SandboxHandle,
    pub meta: SandboxClient,
    pub resources: Resources,
    pub sdk: aws_config::SdkConfig,
    pub prefix: String,
    /// moto's CPU time, when its process id was given and can be read.
    pub moto_cpu: Option<crate::moto_cpu::MotoCpu>,
}

fn boxed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl World {
    /// Provisions everything and approves the templates (through the real
    /// template submit and status webhooks, via a local stack that is
    /// stopped afterwards so that nothing else polls the send queue).
    pub async fn start(moto: &str, moto_pid: Option<u32>) -> Result<World, String> {
        let sandbox = meta_sandbox::spawn(
            "127.0.0.1:0".parse().map_err(boxed)?,
            SandboxConfig::default(),
        )
        .await
        .map_err(boxed)?;
        let meta = sandbox.client();
        let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut opts = StackOptions::new(moto, sandbox.base_url(), &prefix);
        opts.sender_instances = 1;
        let stack = Stack::start(opts).await.map_err(boxed)?;
        for (tenant_id, pnid, waba) in tenants() {
            let tenant = LocalTenant {
                tenant_id: tenant_id.clone(),
                phone_number_id: pnid.clone(),
                waba_id: waba.clone(),
                access_token: ACCESS_TOKEN.into(),
                app_secret: APP_SECRET.into(),
                verify_token: format!("{VERIFY_TOKEN}-{tenant_id}"),
                display_phone_number: None,
                messages_per_second: None,
            };
            stack.add_tenant(&tenant).await.map_err(boxed)?;
            meta.register_tenant(&tenant.sandbox_spec(stack.webhook_url()))
                .await
                .map_err(boxed)?;
            let submit = Action::Submit {
                tenant_id: TenantId::parse(tenant_id.as_str()).map_err(boxed)?,
            };
            let (status, body) = stack.invoke_templates(submit).await;
            if status != 200 {
                return Err(format!("template submit answered {status}: {body}"));
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for (tenant_id, _, _) in tenants() {
            let tenant_id = TenantId::parse(&tenant_id).map_err(boxed)?;
            loop {
                let list = stack
                    .app
                    .store
                    .list_templates(&tenant_id)
                    .await
                    .map_err(boxed)?;
                if list.iter().filter(|t| t.is_approved()).count() >= 6 {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!(
                        "templates of {tenant_id} were not approved within 60 s"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let resources = stack.resources.clone();
        let sdk = stack.sdk.clone();
        stack.shutdown().await;
        // From here on no webhook listener runs: the sandbox sends no status
        // webhooks (the intake's AWS cost is measured separately).
        meta.set_knobs(&json!({"status_progression": []}))
            .await
            .map_err(boxed)?;
        Ok(World {
            moto: moto.to_string(),
            sandbox,
            meta,
            resources,
            sdk,
            prefix,
            moto_cpu: moto_pid.and_then(crate::moto_cpu::MotoCpu::of),
        })
    }

    /// The environment a function needs, as `template.yaml` gives it.
    pub fn function_env(&self, sender_max_concurrency: u32) -> HashMap<String, String> {
        let r = &self.resources;
        [
            ("TABLE_NAME", r.table_name.clone()),
            ("SEND_QUEUE_URL", r.queue("SendQueue").to_string()),
            ("SEND_DLQ_URL", r.queue("SendDeadLetterQueue").to_string()),
            ("EVENTS_QUEUE_URL", r.queue("EventsQueue").to_string()),
            ("TENANT_SECRET_PREFIX", format!("{}/tenants/", self.prefix)),
            ("GRAPH_API_BASE_URL", self.sandbox.base_url()),
            ("GRAPH_API_VERSION", "v23.0".to_string()),
            ("SENDER_MAX_CONCURRENCY", sender_max_concurrency.to_string()),
            ("AWS_ENDPOINT_URL", self.moto.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// An app (as a function builds it) whose AWS clients report to `counter`.
    pub async fn counted_app(
        &self,
        sender_max_concurrency: u32,
        counter: &RequestCounter,
    ) -> Result<App, String> {
        let env = self.function_env(sender_max_concurrency);
        let config = Config::from_lookup(|k| env.get(k).cloned()).map_err(boxed)?;
        let sdk = fincelo_local::emulator::sdk_config(&self.moto)
            .await
            .map_err(boxed)?;
        let (dynamo, sqs, secrets) = counted_clients(&sdk, counter);
        App::from_clients(config, dynamo, sqs, secrets).map_err(boxed)
    }
}
