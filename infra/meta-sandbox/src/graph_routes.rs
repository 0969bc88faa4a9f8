//! The Graph API surface: send message (and read receipts), create/list
//! templates, read a phone number. Each handler authenticates, parses,
//! applies Meta's rules in Meta's order ([`crate::send`] for messages),
//! records, answers, and leaves webhooks to background tasks.
//!
//! Authentication, as Graph does it: no bearer token → 104; a token no tenant
//! has → 190 (checked first, whatever the object); a token of another tenant,
//! or an unknown id → 100/33 ("does not exist, cannot be loaded due to missing
//! permissions"), which keeps tenants isolated.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::MetaError;
use crate::faults::{dropped_response, edge_response, graph_faults};
use crate::model::TemplateRecord;
use crate::requests::{self, MessagesRequest};
use crate::rules;
use crate::send;
use crate::state::{AppState, Store, Tenant};
use crate::template_review;
use crate::versions::{self, ResolvedVersion};
use crate::webhooks;

/// Graph routes with the fault middleware.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/{version}/{id}/messages", post(send_message))
        .route(
            "/{version}/{id}/message_templates",
            post(create_template).get(list_templates),
        )
        .route("/{version}/{id}", get(get_phone_number))
        .layer(axum::middleware::from_fn_with_state(state, graph_faults))
}

/// Resolves the path's version on the sandbox's clock (see [`crate::versions`]).
fn check_version(state: &AppState, version: &str) -> Result<ResolvedVersion, MetaError> {
    versions::resolve(version, state.now_ms())
}

/// Graph names the version that served a call in `facebook-api-version`.
fn with_version(mut response: Response, version: &str) -> Response {
    if let Ok(v) = header::HeaderValue::from_str(version) {
        response.headers_mut().insert("facebook-api-version", v);
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn auth_phone(
    store: &Store,
    headers: &HeaderMap,
    id: &str,
    method: &str,
) -> Result<Tenant, MetaError> {
    let token = bearer(headers).ok_or_else(MetaError::missing_token)?;
    if !store.token_known(token) {
        return Err(MetaError::invalid_token());
    }
    match store.tenants.get(id) {
        Some(t) if t.spec.access_token == token => Ok(t.clone()),
        _ => Err(MetaError::unknown_object(method, id)),
    }
}

fn auth_waba(
    store: &Store,
    headers: &HeaderMap,
    waba: &str,
    method: &str,
) -> Result<(), MetaError> {
    let token = bearer(headers).ok_or_else(MetaError::missing_token)?;
    if !store.token_known(token) {
        return Err(MetaError::invalid_token());
    }
    if store
        .tenants_of_waba(waba)
        .iter()
        .any(|t| t.spec.access_token == token)
    {
        Ok(())
    } else {
        Err(MetaError::unknown_object(method, waba))
    }
}

/// Counts the rejection and turns it into the response.
fn rejected(state: &AppState, e: MetaError) -> Response {
    state.lock().reject(e.code);
    tracing::info!(code = e.code, "graph request rejected");
    e.into_response()
}

fn parse_json(body: &Bytes) -> Result<Value, MetaError> {
    serde_json::from_slice(body)
        .map_err(|e| MetaError::invalid_parameter(format!("Request body is not valid JSON: {e}")))
}

fn new_numeric_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000 + 1_000_000_000_000_000;
    n.to_string()
}

/// What a `/messages` call turned into.
enum Outcome {
    Sent(Box<send::Accepted>),
    Read(Value),
}

/// `POST /{version}/{phone-number-id}/messages`: a send or a read receipt.
async fn send_message(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resolved = match check_version(&state, &version) {
        Ok(v) => v,
        Err(e) => return rejected(&state, e),
    };
    let outcome = (|| {
        let now_ms = state.now_ms();
        let mut store = state.lock();
        let tenant = auth_phone(&store, &headers, &id, "post")?;
        match requests::parse_messages(&parse_json(&body)?)? {
            MessagesRequest::Read(r) => {
                send::read(&mut store, &tenant, r, now_ms).map(Outcome::Read)
            }
            MessagesRequest::Send(r) => {
                send::decide(&mut store, tenant, r, now_ms, &resolved.effective)
                    .map(|a| Outcome::Sent(Box::new(a)))
            }
        }
    })();
    let acc = match outcome {
        Err(e) => return with_version(rejected(&state, e), &resolved.effective),
        Ok(Outcome::Read(body)) => {
            tracing::info!(phone_number_id = %id, "read receipt accepted");
            return with_version(Json(body).into_response(), &resolved.effective);
        }
        Ok(Outcome::Sent(acc)) => acc,
    };
    let response = json!({
        "messaging_product": "whatsapp",
        "contacts": [acc.contact],
        "messages": [{"id": acc.record.wamid, "message_status": "accepted"}],
    });
    tracing::info!(wamid = %acc.record.wamid, phone_number_id = %id, "message accepted");
    let who = acc.user.clone().map(|user| webhooks::StatusIdentity {
        user,
        phone_shown: acc.phone_shown,
    });
    webhooks::spawn_statuses(
        state.clone(),
        acc.tenant.clone(),
        acc.record.clone(),
        acc.async_error.clone(),
        who,
    );
    if acc.lost {
        tracing::info!(
            hold_ms = acc.hold_ms,
            "fault: response lost after acceptance"
        );
        tokio::time::sleep(Duration::from_millis(acc.hold_ms)).await;
        return dropped_response();
    }
    if let Some(edge) = acc.edge {
        tracing::info!(status = edge.status, "fault: edge failure after acceptance");
        return edge_response(edge);
    }
    with_version(Json(response).into_response(), &resolved.effective)
}

/// `POST /{version}/{waba-id}/message_templates`.
async fn create_template(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let created = (|| {
        let resolved = check_version(&state, &version)?;
        let now_ms = state.now_ms();
        let mut store = state.lock();
        auth_waba(&store, &headers, &waba, "post")?;
        let sub = rules::parse_template_submission(&parse_json(&body)?)?;
        if store
            .templates
            .iter()
            .any(|t| t.waba_id == waba && t.name == sub.name && t.language == sub.language)
        {
            return Err(MetaError::template_exists(&sub.name, &sub.language));
        }
        let record = TemplateRecord {
            id: new_numeric_id(),
            waba_id: waba.clone(),
            name: sub.name,
            language: sub.language,
            category: sub.category,
            status: "PENDING".into(),
            components: sub.components,
            reason: "NONE".into(),
            body_placeholders: rules::placeholder_count(&sub.body_text),
            submitted_at: now_ms,
            decided_at: None,
            last_event: None,
            pause_count: 0,
            paused_until: None,
        };
        store.templates.push(record.clone());
        template_review::schedule(&mut store, &record.id, now_ms);
        Ok::<_, MetaError>((record, resolved))
    })();
    match created {
        Err(e) => rejected(&state, e),
        Ok((record, resolved)) => {
            tracing::info!(template = %record.name, language = %record.language, "template submitted");
            let body = json!({"id": record.id, "status": "PENDING", "category": record.category});
            with_version(Json(body).into_response(), &resolved.effective)
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

fn cursor_of(index: usize) -> String {
    hex::encode(format!("sandbox:{index}"))
}

fn index_of(cursor: &str) -> Option<usize> {
    let raw = hex::decode(cursor).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sandbox:")?
        .parse()
        .ok()
}

/// `GET /{version}/{waba-id}/message_templates` with Graph cursor paging.
async fn list_templates(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let listed = (|| {
        let resolved = check_version(&state, &version)?;
        let store = state.lock();
        auth_waba(&store, &headers, &waba, "get")?;
        let limit = match &q.limit {
            None => 25,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    MetaError::invalid_parameter("Param limit must be a positive integer.")
                })?,
        };
        let start = match &q.after {
            None => 0,
            Some(c) => index_of(c)
                .map(|i| i + 1)
                .ok_or_else(|| MetaError::invalid_parameter("Invalid cursor in param after."))?,
        };
        let all: Vec<&TemplateRecord> = store
            .templates
            .iter()
            .filter(|t| t.waba_id == waba)
            .filter(|t| q.name.as_ref().is_none_or(|n| &t.name == n))
            .filter(|t| {
                q.status
                    .as_ref()
                    .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
            })
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|t| {
                json!({
                    "name": t.name, "language": t.language, "status": t.status,
                    "category": t.category, "id": t.id, "components": t.components,
                    "parameter_format": "POSITIONAL",
                })
            })
            .collect();
        let mut body = json!({"data": page});
        if !page.is_empty() {
            let last = start + page.len() - 1;
            let mut paging =
                json!({"cursors": {"before": cursor_of(start), "after": cursor_of(last)}});
            if last + 1 < all.len() {
                let base = state.config.public_base_url.clone().unwrap_or_else(|| {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1");
                    format!("http://{host}")
                });
                paging["next"] = json!(format!(
                    "{base}/{version}/{waba}/message_templates?limit={limit}&after={}",
                    cursor_of(last)
                ));
            }
            body["paging"] = paging;
        }
        Ok::<_, MetaError>((body, resolved))
    })();
    match listed {
        Ok((body, resolved)) => with_version(Json(body).into_response(), &resolved.effective),
        Err(e) => rejected(&state, e),
    }
}

/// `GET /{version}/{phone-number-id}`: the spec's `PhoneNumberInfo`.
async fn get_phone_number(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = check_version(&state, &version)
        .and_then(|v| auth_phone(&state.lock(), &headers, &id, "get").map(|t| (t, v)));
    match found {
        Ok((t, resolved)) => with_version(
            Json(json!({
                "verified_name": t.verified_name(),
                "display_phone_number": t.display_phone_number(),
                "id": t.spec.phone_number_id,
                "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED",
                "name_status": "APPROVED",
            }))
            .into_response(),
            &resolved.effective,
        ),
        Err(e) => rejected(&state, e),
    }
}
