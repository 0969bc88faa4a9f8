//! The state file `fwa` reads to find a local stack (`.local/dev.json`,
//! written by `make dev`; `make journey` writes its own). This is its one
//! writer; `fwa`'s `Target` is its one reader, and the journey (which
//! drives `fwa` through it) checks that the two agree.
//!
//! | key | what |
//! |---|---|
//! | `moto` | the AWS emulator's endpoint |
//! | `sandbox` | the Meta sandbox's base URL (`fwa reply` plays a CSM there) |
//! | `webhook_url` | the callback URL Meta calls |
//! | `admin_url` | the admin API's base, `…/admin/tenants` (the `AdminApiUrl` output of a deployed stack) |
//! | `clock_url` | the runner's `/_local/clock` (`fwa clock`; local only) |
//! | `table`, `send_queue_url`, `send_dlq_url`, `events_queue_url` | the resources (the deployed outputs `TableName`, `SendQueueUrl`, …) |
//! | `tenant_id` | the tenant `fwa` acts for when `--tenant` is not given (`make dev`'s demo tenant); absent when there is none |
//!
//! No secret is written here: a tenant's secrets live in the emulator's
//! Secrets Manager, as in AWS.

use serde_json::{json, Value};

use crate::stack::Stack;

/// The state of a running stack, for `fwa`.
pub fn dev_state(stack: &Stack, moto: &str, sandbox_url: &str, tenant_id: Option<&str>) -> Value {
    let base = format!("http://{}", stack.http_addr());
    let mut state = json!({
        "moto": moto,
        "sandbox": sandbox_url,
        "webhook_url": stack.webhook_url(),
        "admin_url": format!("{base}/admin/tenants"),
        "clock_url": format!("{base}/_local/clock"),
        "table": stack.resources.table_name,
        "send_queue_url": stack.resources.queue("SendQueue"),
        "send_dlq_url": stack.resources.queue("SendDeadLetterQueue"),
        "events_queue_url": stack.resources.queue("EventsQueue"),
    });
    if let Some(t) = tenant_id {
        state["tenant_id"] = json!(t);
    }
    state
}

/// Writes [`dev_state`] to `path` (pretty JSON), creating its directory.
pub fn write_dev_state(path: &std::path::Path, state: &Value) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
