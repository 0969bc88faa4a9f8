//! The template function's edge: one Lambda serving three callers.
//!
//! - API Gateway (HTTP API, `AWS_IAM`): `POST /admin/tenants/{tenant_id}/templates`
//!   submits the six templates; `GET` lists their statuses.
//! - EventBridge schedule: `{"action": "reconcile_all"}` every hour.
//! - Operators (`sam remote invoke`, the local runner, `fwa`):
//!   `{"action": "submit" | "reconcile" | "status", "tenant_id": "..."}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{error, info};

use super::submit::{reconcile, submit_all, TemplatesError};
use crate::ids::TenantId;
use crate::startup::App;

#[derive(Deserialize)]
struct Direct {
    action: String,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// Dispatches any event the function receives. Errors become a JSON answer
/// with a status; internals are logged, not returned.
pub async fn handle_event(app: &App, event: Value) -> Value {
    if event.get("routeKey").is_some() && event.get("requestContext").is_some() {
        return http(app, &event).await;
    }
    match serde_json::from_value::<Direct>(event) {
        Ok(d) => {
            let (status, body) = direct(app, &d.action, d.tenant_id.as_deref()).await;
            json!({"status": status, "body": body})
        }
        Err(_) => {
            json!({"status": 400, "body": {"error": "expected {\"action\": \"submit|reconcile|status|reconcile_all\", \"tenant_id\": ...}"}})
        }
    }
}

/// Runs one action. Returns an HTTP-like status and a JSON body.
pub async fn direct(app: &App, action: &str, tenant_id: Option<&str>) -> (u16, Value) {
    let tenant = match (action, tenant_id.map(TenantId::parse)) {
        ("reconcile_all", _) => None,
        (_, Some(Ok(t))) => Some(t),
        (_, Some(Err(e))) => return (400, json!({"error": e.to_string()})),
        (_, None) => return (400, json!({"error": "tenant_id is required"})),
    };
    let result = match (action, tenant) {
        ("submit", Some(t)) => submit_all(app, &t).await.map(|r| json!(r)),
        ("reconcile", Some(t)) => reconcile(app, &t).await.map(|r| json!(r)),
        ("status", Some(t)) => app
            .store
            .list_templates(&t)
            .await
            .map(|r| json!({"tenant_id": t, "templates": r}))
            .map_err(Into::into),
        ("reconcile_all", _) => reconcile_all(app).await,
        _ => return (400, json!({"error": format!("unknown action {action:?}")})),
    };
    match result {
        Ok(body) => (200, body),
        Err(TemplatesError::UnknownTenant(t)) => (
            404,
            json!({"error": format!("tenant {t} is not configured")}),
        ),
        Err(e) => {
            error!(error = %e, source = ?std::error::Error::source(&e).map(|s| s.to_string()), action, "template action failed");
            (502, json!({"error": "template action failed; see logs"}))
        }
    }
}

async fn reconcile_all(app: &App) -> Result<Value, TemplatesError> {
    let tenants = app.store.list_tenant_ids().await?;
    let mut reports = Vec::new();
    for t in tenants {
        match reconcile(app, &t).await {
            Ok(r) => reports.push(json!(r)),
            Err(e) => {
                error!(tenant = %t, error = %e, "reconcile failed for a tenant; the others go on");
                reports.push(json!({"tenant_id": t, "error": "reconcile failed"}));
            }
        }
    }
    info!(tenants = reports.len(), "reconcile_all done");
    Ok(json!({"reports": reports}))
}

async fn http(app: &App, event: &Value) -> Value {
    let method = event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("");
    let tenant = event
        .pointer("/pathParameters/tenant_id")
        .and_then(Value::as_str);
    let (status, body) = match method {
        "POST" => direct(app, "submit", tenant).await,
        "GET" => direct(app, "status", tenant).await,
        _ => (405, json!({"error": "method not allowed"})),
    };
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}
