//! The newcomer's scenario that `make dev` plays, and the end-to-end test
//! replays: templates submitted and approved; an alert to a CSM with no
//! window goes out as a template; the CSM replies; the next alert goes
//! free-form (with reply buttons); statuses arrive as delivered and read;
//! the CSM taps Acknowledge on the first alert, and the `alert.response`
//! event it produced is printed.
//!
//! Its lines are for people: times as ISO-8601 UTC
//! ([`fincelo::admin::when::iso8601`]), and words where a value is absent,
//! never Rust's Debug form (`Some(..)`, `None`) or bare unix seconds; a
//! test checks the printed lines.
//!
//! To print that event the scenario reads the events queue; everything it
//! read is kept in [`Timeline::events`], so a test that checks the queue
//! counts those too.

use std::time::{Duration, Instant};

use fincelo::admin::when::iso8601;
use fincelo::ids::{IdempotencyKey, TenantId};
use fincelo::phone::E164;
use fincelo::store::LedgerEntry;
use fincelo::templates::handler::Action;
use meta_sandbox::SandboxClient;
use serde_json::{json, Value};

use crate::stack::{LocalTenant, Stack};

/// What happened, step by step.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// Exactly the lines printed, in order.
    pub lines: Vec<String>,
    /// wamid of the first alert (a template) and the second (free-form).
    pub template_wamid: Option<String>,
    pub free_form_wamid: Option<String>,
    /// The `alert.response` of the CSM's tap on alert 1.
    pub response: Option<Value>,
    /// Every event the scenario read from the events queue.
    pub events: Vec<Value>,
}

impl Timeline {
    fn say(&mut self, start: Instant, line: String) {
        let line = format!("[{:>6.2}s] {line}", start.elapsed().as_secs_f64());
        println!("{line}");
        self.lines.push(line);
    }
}

/// An optional value as a person reads it: the value, or words.
fn shown(value: Option<&str>, absent: &str) -> String {
    value.unwrap_or(absent).to_string()
}

/// An optional unix time as a person reads it: ISO-8601 UTC, or words.
fn shown_time(unix: Option<i64>, absent: &str) -> String {
    unix.map(iso8601).unwrap_or_else(|| absent.to_string())
}

/// A send request (contract v1) for the demo.
pub fn demo_request(tenant: &str, key: &str, phone: &str, text: &str) -> String {
    json!({
        "version": 1,
        "tenant_id": tenant,
        "idempotency_key": key,
        "recipient": {"phone": phone, "csm_id": "csm-demo"},
        "event": {"type": "usage_threshold", "customer": {"name": "Globex", "health": "good", "premium": false},
                  "params": ["Globex", "85", "Pro", "good"]},
        "text": text,
    })
    .to_string()
}

async fn wait<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Enqueues one demo alert, as upstream would, and waits until the ledger
/// records Meta's wamid for it.
async fn send_alert(
    stack: &Stack,
    tenant_id: &TenantId,
    key: &str,
    csm: &E164,
    text: &str,
) -> Result<LedgerEntry, String> {
    stack
        .enqueue(&demo_request(tenant_id.as_str(), key, csm.as_str(), text))
        .await
        .map_err(|e| e.to_string())?;
    let key = IdempotencyKey::parse(key).map_err(|e| e.to_string())?;
    wait("the alert to be sent", Duration::from_secs(60), || async {
        stack
            .app
            .store
            .get_ledger(tenant_id, &key)
            .await
            .ok()
            .flatten()
            .filter(|l| l.wamid.is_some())
    })
    .await
}

/// Plays the scenario against a running stack and sandbox.
pub async fn play(
    stack: &Stack,
    sandbox: &SandboxClient,
    tenant: &LocalTenant,
    csm_phone: &str,
) -> Result<Timeline, String> {
    let start = Instant::now();
    let mut t = Timeline::default();
    let tenant_id = TenantId::parse(&tenant.tenant_id).map_err(|e| e.to_string())?;
    let csm = E164::parse(csm_phone).map_err(|e| e.to_string())?;
    let store = &stack.app.store;
    let limit = Duration::from_secs(60);

    t.say(
        start,
        format!(
            "submitting the six fincelo_* templates for tenant {}",
            tenant.tenant_id
        ),
    );
    let (status, report) = stack
        .invoke_templates(Action::Submit {
            tenant_id: tenant_id.clone(),
        })
        .await;
    if status != 200 {
        return Err(format!("template submission failed: {report}"));
    }
    t.say(
        start,
        "templates submitted: PENDING at Meta, waiting for approval webhooks".into(),
    );
    let templates = wait("template approval", limit, || async {
        let list = store.list_templates(&tenant_id).await.ok()?;
        (list.len() >= 6 && list.iter().all(|x| x.is_approved())).then_some(list)
    })
    .await?;
    t.say(
        start,
        format!(
            "all {} templates APPROVED (message_template_status_update webhooks)",
            templates.len()
        ),
    );

    // Keys of this run, named by its start as people read it.
    let run = iso8601(stack.app.clock.now());
    let sent1 = send_alert(
        stack,
        &tenant_id,
        &format!("demo-{run}-1"),
        &csm,
        "Globex is at 85% of its Pro plan.",
    )
    .await?;
    t.say(
        start,
        format!(
            "alert 1 for CSM {} (no 24h window yet) sent as template {} ({})",
            csm.masked(),
            shown(sent1.template.as_deref(), "unnamed"),
            shown(sent1.wamid.as_deref(), "no wamid")
        ),
    );
    t.template_wamid = sent1.wamid.clone();

    let reply = sandbox
        .inbound(&meta_sandbox::model::InboundRequest {
            phone_number_id: tenant.phone_number_id.clone(),
            from: csm.wa_id().to_string(),
            text: "Thanks, calling them now".into(),
            timestamp: None,
            profile_name: Some("Demo CSM".into()),
        })
        .await
        .map_err(|e| e.to_string())?;
    t.say(
        start,
        format!("CSM replied ({}): the 24h window opens", reply.message_id),
    );
    let window = wait("the window to open", limit, || async {
        let who = fincelo::addressing::identity_of_number(store, &tenant_id, &csm)
            .await
            .ok()?;
        store.get_window(&tenant_id, &who).await.ok().flatten()
    })
    .await?;
    t.say(
        start,
        format!("window open until {}", iso8601(window.expires_at)),
    );

    let sent2 = send_alert(
        stack,
        &tenant_id,
        &format!("demo-{run}-2"),
        &csm,
        "Globex just crossed 90% of its Pro plan.",
    )
    .await?;
    t.say(
        start,
        format!(
            "alert 2 sent free-form ({}), inside the window",
            shown(sent2.wamid.as_deref(), "no wamid")
        ),
    );
    t.free_form_wamid = sent2.wamid.clone();

    for (label, wamid) in [
        ("alert 1", t.template_wamid.clone()),
        ("alert 2", t.free_form_wamid.clone()),
    ] {
        let wamid = wamid.unwrap_or_default();
        let rec = wait("read status", limit, || async {
            store
                .get_message_status(&tenant_id, &wamid)
                .await
                .ok()
                .flatten()
                .filter(|s| s.status == "read")
        })
        .await?;
        t.say(
            start,
            format!(
                "{label}: delivered at {}, read at {}",
                shown_time(rec.delivered_at, "no delivered status"),
                shown_time(rec.read_at, "no read status")
            ),
        );
    }

    // The CSM taps Acknowledge on alert 1 (the template's quick reply).
    let wamid1 = t.template_wamid.clone().unwrap_or_default();
    let at_meta = sandbox
        .messages(Some(&tenant.phone_number_id), None)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|m| m.wamid == wamid1)
        .ok_or("the sandbox has no record of alert 1")?;
    let tap = meta_sandbox::InboundMessage::tap(&at_meta, "Acknowledge")
        .ok_or("alert 1 offers no Acknowledge button")?;
    let tapped = sandbox
        .inbound_message(&tap)
        .await
        .map_err(|e| e.to_string())?;
    t.say(
        start,
        format!("CSM tapped Acknowledge on alert 1 ({})", tapped.message_id),
    );
    let mut events: Vec<Value> = Vec::new();
    let deadline = Instant::now() + limit;
    let response = loop {
        events.extend(
            stack
                .drain("EventsQueue")
                .await
                .map_err(|e| e.to_string())?,
        );
        let found = events.iter().find(|e| {
            e["type"] == "alert.response" && e["message_id"] == tapped.message_id.as_str()
        });
        if let Some(e) = found {
            break e.clone();
        }
        if Instant::now() > deadline {
            return Err("timed out waiting for the alert.response event".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    t.say(start, format!("alert.response {response}"));
    t.response = Some(response);
    t.events = events;
    Ok(t)
}
