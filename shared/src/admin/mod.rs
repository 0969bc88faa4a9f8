//! The admin API: what the Fincelo backend calls to connect a tenant's Meta
//! app (seed step 5) and keep its CSM roster (step 6). Served by its own
//! function on the shared HTTP API, every route behind the `AWS_IAM`
//! authoriser (the backend signs with SigV4).
//!
//! | route | does |
//! |---|---|
//! | `PUT /admin/tenants/{tenant_id}/channel` | validates the ids, checks the token with Meta (`GET /{v}/{phone-number-id}`), stores the secrets (Secrets Manager, one secret per tenant) and the rest (DynamoDB) |
//! | `GET /admin/tenants/{tenant_id}/channel` | ids, display number, template statuses, last webhook, parked alerts, roster; never a secret |
//! | `GET /admin/tenants/{tenant_id}/csms` | the roster: each CSM's id, number and undeliverable flag (`fwa csm list`) |
//! | `PUT /admin/tenants/{tenant_id}/csms/{csm_id}` | sets a CSM's WhatsApp number (normalised E.164) |
//! | `GET /admin/tenants/{tenant_id}/csms/{csm_id}` | a CSM's number and whether Meta found it undeliverable |
//! | `DELETE /admin/tenants/{tenant_id}/csms/{csm_id}` | removes a CSM from the roster |
//! | `GET /admin/tenants/{tenant_id}/messages/{idempotency_key}` | an alert's timeline |
//! | `POST /admin/tenants/{tenant_id}/messages/{idempotency_key}/redrive` | puts a parked alert back on the send queue ([`redrive`], `fwa redrive`) |
//! | `GET /admin/tenants/{tenant_id}/parked` | the tenant's parked alerts with their reasons ([`parked`], `fwa parked`) |
//! | `GET /admin/tenants/{tenant_id}/costs?month=YYYY-MM` | delivered messages and their estimated cost per day and pricing category ([`costs`], `fwa costs`) |
//!
//! The tenant is always the one in the path, and every read and write is
//! keyed under it (see [`crate::store`]): no route can name another tenant's
//! items. Request bodies are never logged; the channel body's secrets are
//! `SecretString` from the moment they are parsed ([`input`]).
//!
//! Modules: [`input`] (validation), [`error`] (errors → HTTP), [`channel`],
//! [`roster`], [`timeline`], [`parked`], [`redrive`], [`costs`] (the routes), [`when`]
//! (times as people read them), [`lambda`] (the `lambda_http` edge).

pub mod channel;
pub mod costs;
pub mod error;
pub mod input;
pub mod lambda;
pub mod parked;
pub mod redrive;
pub mod roster;
pub mod timeline;
pub mod when;

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tracing::{info, Instrument};

pub use error::AdminError;

use crate::startup::App;

/// A request as the handler sees it, whatever carried it (API Gateway, the
/// local runner, a test).
#[derive(Debug, Clone)]
pub struct AdminRequest {
    pub method: Method,
    /// The path without query string, e.g. `/admin/tenants/acme/channel`.
    pub path: String,
    /// The raw query string, without `?` (only `costs` reads one).
    pub query: Option<String>,
    pub body: Bytes,
    /// Who signed the request, as the `AWS_IAM` authoriser saw it; `None`
    /// when the request context carries no IAM identity (answered 403).
    pub caller: Option<Caller>,
}

/// The identity of an admin caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The IAM ARN that signed (`requestContext.authorizer.iam.userArn`,
    /// e.g. `arn:aws:sts::123456789012:assumed-role/fincelo-backend/…`).
    /// Not a secret: API Gateway's access log records it too.
    pub arn: String,
}

impl Caller {
    /// The identity the local runner gives every request: loopback has no
    /// SigV4, and the runner stands where API Gateway's authoriser would.
    pub fn local() -> Caller {
        Caller {
            arn: "local:fincelo-local-runner".to_string(),
        }
    }
}

/// The answer: a status and a JSON body (`None` for 204).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminResponse {
    pub status: u16,
    pub body: Option<Value>,
}

impl AdminResponse {
    pub fn json(status: u16, body: Value) -> Self {
        AdminResponse {
            status,
            body: Some(body),
        }
    }

    /// The body as text (empty for 204).
    pub fn body_text(&self) -> String {
        self.body.as_ref().map(Value::to_string).unwrap_or_default()
    }
}

/// The routes, after the path is split and decoded.
enum Route {
    Channel(String),
    Csms(String),
    Csm(String, String),
    Message(String, String),
    Redrive(String, String),
    Parked(String),
    Costs(String),
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(input::percent_decode)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["admin", "tenants", t, "channel"] => Some(Route::Channel(t.to_string())),
        ["admin", "tenants", t, "csms"] => Some(Route::Csms(t.to_string())),
        ["admin", "tenants", t, "csms", c] => Some(Route::Csm(t.to_string(), c.to_string())),
        ["admin", "tenants", t, "messages", k] => {
            Some(Route::Message(t.to_string(), k.to_string()))
        }
        ["admin", "tenants", t, "messages", k, "redrive"] => {
            Some(Route::Redrive(t.to_string(), k.to_string()))
        }
        ["admin", "tenants", t, "parked"] => Some(Route::Parked(t.to_string())),
        ["admin", "tenants", t, "costs"] => Some(Route::Costs(t.to_string())),
        _ => None,
    }
}

/// Serves one admin request. Never fails: errors are answered.
pub async fn handle(app: &App, req: AdminRequest) -> AdminResponse {
    let span = tracing::info_span!(
        "admin",
        method = %req.method,
        caller = tracing::field::Empty,
        tenant = tracing::field::Empty,
        status = tracing::field::Empty
    );
    async move {
        let result = dispatch(app, &req).await;
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let (status, body) = e.to_response();
                AdminResponse::json(status, body)
            }
        };
        tracing::Span::current().record("status", resp.status);
        info!(route = %route_name(&req), "admin request answered");
        resp
    }
    .instrument(span)
    .await
}

/// The route template (no ids), for logs.
fn route_name(req: &AdminRequest) -> &'static str {
    match route(&req.path) {
        Some(Route::Channel(_)) => "/admin/tenants/{tenant_id}/channel",
        Some(Route::Csms(_)) => "/admin/tenants/{tenant_id}/csms",
        Some(Route::Csm(..)) => "/admin/tenants/{tenant_id}/csms/{csm_id}",
        Some(Route::Message(..)) => "/admin/tenants/{tenant_id}/messages/{idempotency_key}",
        Some(Route::Redrive(..)) => "/admin/tenants/{tenant_id}/messages/{idempotency_key}/redrive",
        Some(Route::Parked(_)) => "/admin/tenants/{tenant_id}/parked",
        Some(Route::Costs(_)) => "/admin/tenants/{tenant_id}/costs",
        None => "unknown",
    }
}

async fn dispatch(app: &App, req: &AdminRequest) -> Result<AdminResponse, AdminError> {
    let Some(caller) = &req.caller else {
        return Err(AdminError::NoCaller);
    };
    tracing::Span::current().record("caller", caller.arn.as_str());
    let Some(route) = route(&req.path) else {
        return Err(AdminError::not_found("route_not_found", "route"));
    };
    let tenant_segment = match &route {
        Route::Channel(t)
        | Route::Csms(t)
        | Route::Csm(t, _)
        | Route::Message(t, _)
        | Route::Redrive(t, _)
        | Route::Parked(t)
        | Route::Costs(t) => t,
    };
    let tenant = input::tenant_id(tenant_segment)?;
    tracing::Span::current().record("tenant", tenant.as_str());
    match (route, &req.method) {
        (Route::Channel(_), &Method::PUT) => channel::put(app, &tenant, &req.body).await,
        (Route::Channel(_), &Method::GET) => channel::status(app, &tenant).await,
        (Route::Csms(_), &Method::GET) => roster::list(app, &tenant).await,
        (Route::Csm(_, c), &Method::PUT) => {
            roster::put(app, &tenant, &input::csm_id(&c)?, &req.body).await
        }
        (Route::Csm(_, c), &Method::GET) => roster::get(app, &tenant, &input::csm_id(&c)?).await,
        (Route::Csm(_, c), &Method::DELETE) => {
            roster::delete(app, &tenant, &input::csm_id(&c)?).await
        }
        (Route::Message(_, k), &Method::GET) => {
            timeline::get(app, &tenant, &input::idempotency_key(&k)?).await
        }
        (Route::Redrive(_, k), &Method::POST) => {
            redrive::post(app, &tenant, &input::idempotency_key(&k)?).await
        }
        (Route::Parked(_), &Method::GET) => parked::list(app, &tenant).await,
        (Route::Costs(_), &Method::GET) => costs::get(app, &tenant, req.query.as_deref()).await,
        _ => Err(AdminError::MethodNotAllowed),
    }
}

/// The tenant's configuration, read from the table (not the cache: an
/// admin reads what is stored now).
async fn configured(
    app: &App,
    tenant: &crate::ids::TenantId,
) -> Result<crate::store::TenantRecord, AdminError> {
    app.store
        .get_tenant(tenant)
        .await?
        .ok_or_else(|| AdminError::not_found("tenant_not_found", format!("tenant {tenant}")))
}
