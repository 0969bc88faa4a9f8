//! What the template function does, by [`Action`]: submit a tenant's six
//! templates, reconcile their statuses with Meta, list them, or reconcile
//! every tenant. Which caller asked (the admin API, the hourly schedule, an
//! operator) is the edge's business ([`super::lambda`]); the local runner
//! and the tests call [`run`] directly.
//!
//! An action is also the wire format of a direct invoke (the schedule's
//! `Input` in template.yaml, `sam remote invoke`):
//! `{"action": "submit" | "reconcile" | "status", "tenant_id": "..."}` or
//! `{"action": "reconcile_all"}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{error, info};

use super::submit::{reconcile, submit_all, TemplatesError};
use crate::ids::TenantId;
use crate::startup::App;

/// One thing the template function is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Submits the tenant's six templates (those Meta already has are
    /// reported as `already_there`).
    Submit { tenant_id: TenantId },
    /// Repairs the tenant's template records from Meta's list (a status
    /// webhook Meta failed to deliver).
    Reconcile { tenant_id: TenantId },
    /// Lists the tenant's templates as recorded.
    Status { tenant_id: TenantId },
    /// [`Action::Reconcile`] for every tenant: what the hourly schedule asks.
    ReconcileAll,
}

impl Action {
    /// The action's name, as a direct invoke spells it (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Submit { .. } => "submit",
            Action::Reconcile { .. } => "reconcile",
            Action::Status { .. } => "status",
            Action::ReconcileAll => "reconcile_all",
        }
    }
}

/// Runs one action. Returns an HTTP status and a JSON body; internals are
/// logged, never returned.
pub async fn run(app: &App, action: Action) -> (u16, Value) {
    let name = action.name();
    let result = match action {
        Action::Submit { tenant_id } => submit_all(app, &tenant_id).await.map(|r| json!(r)),
        Action::Reconcile { tenant_id } => reconcile(app, &tenant_id).await.map(|r| json!(r)),
        Action::Status { tenant_id } => app
            .store
            .list_templates(&tenant_id)
            .await
            .map(|r| json!({"tenant_id": tenant_id, "templates": r}))
            .map_err(Into::into),
        Action::ReconcileAll => reconcile_all(app).await,
    };
    match result {
        Ok(body) => (200, body),
        Err(TemplatesError::UnknownTenant(t)) => (
            404,
            json!({"error": format!("tenant {t} is not configured")}),
        ),
        Err(e) => {
            error!(error = %e, source = %std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default(), action = name, "template action failed");
            (502, json!({"error": "template action failed; see logs"}))
        }
    }
}

/// Reconciles every tenant; one tenant's failure is reported and the
/// others go on.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn action(v: Value) -> Result<Action, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn a_direct_invoke_reads_as_its_action() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(
            action(json!({"action": "submit", "tenant_id": "acme"})).unwrap(),
            Action::Submit { tenant_id: t }
        );
        assert_eq!(
            action(json!({"action": "reconcile_all"})).unwrap(),
            Action::ReconcileAll
        );
    }

    #[test]
    fn an_unknown_action_or_a_missing_tenant_is_refused() {
        assert!(action(json!({"action": "delete_all"})).is_err());
        assert!(action(json!({"action": "submit"})).is_err());
        assert!(action(json!({"action": "status", "tenant_id": "a b"})).is_err());
    }
}
