//! Submitting the six templates for a tenant, and reconciling their status
//! with Meta's list.
//!
//! Submission is idempotent: a template Meta already has for that name and
//! language is reported as "already there" (with its current status), not as
//! an error, so the settings page's button can be pressed twice. The
//! reconcile lists the tenant's templates from Meta (following pagination)
//! and repairs what a missed webhook left stale.

use serde::Serialize;
use tracing::{info, warn};

use super::catalog::Catalog;
use crate::events::Event;
use crate::graph::{GraphError, TemplateList};
use crate::ids::TenantId;
use crate::owed::{publish_owed, Mark, Owed};
use crate::sender::message::{Control, ReleaseWhy};
use crate::startup::App;
use crate::store::{Change, TemplateChangeAt, TemplateStatusChange, OWED_LEASE_SECS};
use crate::templates::status::TemplateStatus;
use crate::tenants::{DirectoryError, Tenant, TokenCallError};

/// Meta's answer to a template that already exists in that language:
/// code 100, subcode 2388024 ("Content in this language already exists").
const SUBCODE_ALREADY_EXISTS: i64 = 2_388_024;

#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("tenant {0} is not configured")]
    UnknownTenant(TenantId),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queues::QueueError),
    #[error("Graph API: {0}")]
    Graph(#[source] GraphError),
}

/// What happened to one template.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubmitResult {
    pub name: String,
    pub language: String,
    /// `created`, `already_there` or `failed`.
    pub outcome: String,
    pub template_id: Option<String>,
    pub status: Option<String>,
    /// Meta's reason for a failure (code and message).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubmitReport {
    pub tenant_id: String,
    pub results: Vec<SubmitResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub tenant_id: String,
    pub seen: usize,
    pub repaired: Vec<String>,
    /// False when Meta's list could not be read to its end (a `paging.next`
    /// off the Graph API's origin was refused, see [`crate::graph`]): what
    /// was seen is repaired, the rest waits for the next reconcile.
    pub complete: bool,
}

async fn tenant(app: &App, id: &TenantId) -> Result<Tenant, TemplatesError> {
    app.directory
        .tenant(id)
        .await?
        .ok_or_else(|| TemplatesError::UnknownTenant(id.clone()))
}

/// Submits every template of the catalog for a tenant.
pub async fn submit_all(app: &App, tenant_id: &TenantId) -> Result<SubmitReport, TemplatesError> {
    let tenant = tenant(app, tenant_id).await?;
    let waba = tenant.waba_id.as_str();
    let mut results = Vec::new();
    let mut any_existing = false;
    for def in Catalog::builtin().all() {
        let name = def.name.as_str().to_string();
        let language = def.language.clone();
        let request = def.create_request();
        let created = app
            .directory
            .with_token(&tenant, |secrets| {
                let request = &request;
                async move {
                    app.graph
                        .create_template(waba, &secrets.access_token, request)
                        .await
                }
            })
            .await;
        // A tenant whose secrets cannot be read fails the whole run; a Graph
        // failure is judged per template below.
        let created = match created {
            Ok(c) => Ok(c),
            Err(TokenCallError::Graph(e)) => Err(e),
            Err(TokenCallError::Secrets(e)) => return Err(TemplatesError::Directory(e)),
        };
        let result = match created {
            Ok(created) => {
                app.store
                    .record_template_submission(
                        tenant_id,
                        &name,
                        &language,
                        &created.id,
                        &created.status,
                        created.category.as_deref(),
                    )
                    .await?;
                info!(template = %name, status = %created.status, "template submitted");
                SubmitResult {
                    name,
                    language,
                    outcome: "created".into(),
                    template_id: Some(created.id),
                    status: Some(created.status),
                    reason: None,
                }
            }
            Err(GraphError::Api { error, .. })
                if error.error_subcode == Some(SUBCODE_ALREADY_EXISTS) =>
            {
                any_existing = true;
                SubmitResult {
                    name,
                    language,
                    outcome: "already_there".into(),
                    template_id: None,
                    status: None,
                    reason: None,
                }
            }
            Err(e) => {
                warn!(template = %name, error = %e, "template submission failed");
                let reason = match &e {
                    GraphError::Api { error, .. } => format!(
                        "meta:{} {}",
                        error.code,
                        error.details().unwrap_or(&error.message)
                    ),
                    other => other.to_string(),
                };
                SubmitResult {
                    name,
                    language,
                    outcome: "failed".into(),
                    template_id: None,
                    status: None,
                    reason: Some(reason),
                }
            }
        };
        results.push(result);
    }
    if any_existing {
        // Fill in what Meta knows of the ones that were already there.
        let remote = list_remote(app, &tenant).await?;
        for r in results.iter_mut().filter(|r| r.outcome == "already_there") {
            if let Some(t) = remote
                .templates
                .iter()
                .find(|t| t.name == r.name && t.language == r.language)
            {
                r.template_id = Some(t.id.clone());
                r.status = Some(t.status.clone());
            }
        }
        reconcile_with(app, &tenant, remote).await?;
    }
    Ok(SubmitReport {
        tenant_id: tenant_id.to_string(),
        results,
    })
}

/// Lists the tenant's templates from Meta and repairs stale records.
pub async fn reconcile(app: &App, tenant_id: &TenantId) -> Result<ReconcileReport, TemplatesError> {
    let tenant = tenant(app, tenant_id).await?;
    let remote = list_remote(app, &tenant).await?;
    reconcile_with(app, &tenant, remote).await
}

/// The event of a template's status change, owed until it is published.
fn status_event<'a>(
    t: &TenantId,
    name: &'a str,
    language: &'a str,
    (status, reason): (&'a str, Option<&'a str>),
    ts: i64,
) -> Owed<'a> {
    Owed {
        event: Event::TemplateStatusChanged {
            tenant_id: t.to_string(),
            name: name.to_string(),
            language: language.to_string(),
            status: Some(status.to_string()),
            reason: reason.map(str::to_string),
            quality: None,
            category: None,
        },
        mark: Mark::Template {
            name,
            language,
            change: TemplateStatusChange::Status { status, reason },
            ts,
        },
    }
}

/// Meta's list of the tenant's templates.
async fn list_remote(app: &App, tenant: &Tenant) -> Result<TemplateList, TemplatesError> {
    let waba = tenant.waba_id.as_str();
    app.directory
        .with_token(tenant, |secrets| async move {
            app.graph.list_templates(waba, &secrets.access_token).await
        })
        .await
        .map_err(|e| match e {
            TokenCallError::Secrets(e) => TemplatesError::Directory(e),
            TokenCallError::Graph(e) => TemplatesError::Graph(e),
        })
}

async fn reconcile_with(
    app: &App,
    tenant: &Tenant,
    list: TemplateList,
) -> Result<ReconcileReport, TemplatesError> {
    let remote = list.templates;
    let t = &tenant.tenant_id;
    let catalog = Catalog::builtin();
    let local = app.store.list_templates(t).await?;
    let mut repaired = Vec::new();
    let mut produced = Vec::new();
    let mut wake = false;
    let now = app.clock.now();
    for r in remote.iter().filter(|r| catalog.get(&r.name).is_some()) {
        let known = local
            .iter()
            .find(|l| l.name == r.name && l.language == r.language);
        let reason = r.rejected_reason.as_deref().filter(|x| *x != "NONE");
        if known.map(|k| k.status.as_str()) != Some(r.status.as_str()) {
            let change = TemplateStatusChange::Status {
                status: &r.status,
                reason,
            };
            // Meta's list has no timestamp: "now" wins over anything recorded before.
            if app
                .store
                .apply_template_change(
                    t,
                    &TemplateChangeAt {
                        name: &r.name,
                        language: &r.language,
                        template_id: Some(&r.id),
                        change: &change,
                        at: now,
                        event_owed_at: Some(now),
                    },
                )
                .await?
                == Change::Applied
            {
                warn!(template = %r.name, status = %r.status, "template status repaired by reconcile (a webhook was missed)");
                repaired.push(format!("{}/{}: {}", r.name, r.language, r.status));
                wake |= TemplateStatus::from_meta(Some(&r.status)).wakes_waiting_alerts();
                produced.push(status_event(
                    t,
                    &r.name,
                    &r.language,
                    (&r.status, reason),
                    now,
                ));
            }
        } else if let Some(k) = known.filter(|k| {
            k.status_owed_since
                .is_some_and(|since| since + OWED_LEASE_SECS <= now)
        }) {
            // The record is right but its event never went out (its writer
            // crashed, or the queue refused it; here or in the webhook): it
            // goes out now.
            info!(template = %r.name, status = %k.status, "owed template event published by reconcile");
            let status = (k.status.as_str(), k.reason.as_deref());
            produced.push(status_event(t, &k.name, &k.language, status, k.status_ts));
        }
        if let Some(cat) = &r.category {
            if known.and_then(|k| k.category.as_deref()) != Some(cat.as_str()) {
                app.store
                    .apply_template_change(
                        t,
                        &TemplateChangeAt {
                            name: &r.name,
                            language: &r.language,
                            template_id: None,
                            change: &TemplateStatusChange::Category { category: cat },
                            at: now,
                            event_owed_at: None,
                        },
                    )
                    .await?;
            }
        }
    }
    publish_owed(app, t, produced).await?;
    if wake {
        // Alerts waiting for a template whose approval (or refusal) the
        // webhook missed are released (or parked) now.
        app.queues
            .enqueue_send(&Control::release(t.clone(), ReleaseWhy::TemplateStatus).to_json())
            .await?;
    }
    Ok(ReconcileReport {
        tenant_id: t.to_string(),
        seen: remote.len(),
        repaired,
        complete: list.complete,
    })
}
