//! The Graph API surface: send message, create/list templates, read a phone
//! number. Each handler authenticates, parses, applies [`crate::rules`] in
//! Meta's order, records, answers, and leaves webhooks to background tasks.
//!
//! Authentication, as Graph does it: no bearer token → 104; a token no tenant
//! has → 190 (checked first, whatever the object); a token of another tenant,
//! or an unknown id → 100/33 ("does not exist, cannot be loaded due to missing
//! permissions"), which keeps tenants isolated.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::MetaError;
use crate::faults::{dropped_response, graph_faults, roll};
use crate::knobs::WindowErrorMode;
use crate::model::{MessageRecord, SentTemplate, TemplateRecord};
use crate::rules::{self, PairBucket, SendKind};
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

fn new_wamid() -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("wamid.HBgM{raw}")
}

fn new_numeric_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000 + 1_000_000_000_000_000;
    n.to_string()
}

/// What the rules decided for a send that passed every synchronous check.
struct Accepted {
    record: MessageRecord,
    tenant: Tenant,
    async_error: Option<MetaError>,
    lost: bool,
    hold_ms: u64,
}

/// `POST /{version}/{phone-number-id}/messages`.
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
    match decide_send(&state, &id, &headers, &body) {
        Err(e) => with_version(rejected(&state, e), &resolved.effective),
        Ok(acc) => {
            let response = json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": acc.record.to, "wa_id": acc.record.wa_id}],
                "messages": [{"id": acc.record.wamid, "message_status": "accepted"}],
            });
            tracing::info!(wamid = %acc.record.wamid, phone_number_id = %id, "message accepted");
            webhooks::spawn_statuses(state.clone(), acc.tenant, acc.record, acc.async_error);
            if acc.lost {
                tracing::info!(
                    hold_ms = acc.hold_ms,
                    "fault: response lost after acceptance"
                );
                tokio::time::sleep(Duration::from_millis(acc.hold_ms)).await;
                return dropped_response();
            }
            with_version(Json(response).into_response(), &resolved.effective)
        }
    }
}

/// All the synchronous rules, under one lock, in Meta's order.
fn decide_send(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Accepted, MetaError> {
    let now_ms = state.now_ms();
    let mut store = state.lock();
    let tenant = auth_phone(&store, headers, id, "post")?;
    let req = rules::parse_send(&parse_json(body)?)?;
    let knobs = store.knobs.clone();
    let now = Instant::now();

    // Throughput (130429), then the pair limit (131056).
    if !store
        .throughput
        .entry(id.to_string())
        .or_default()
        .has_room(now, knobs.mps_cap)
    {
        return Err(MetaError::throughput(knobs.mps_cap));
    }
    let pair_key = (id.to_string(), req.wa_id.clone());
    let bucket = store
        .pairs
        .entry(pair_key)
        .or_insert_with(|| PairBucket::new(knobs.pair_limit, now));
    if !bucket.try_take(knobs.pair_limit, now) {
        return Err(MetaError::pair_rate_limit());
    }

    // Errors Meta reports by webhook (or sync under window_error_mode=sync).
    let mut async_error = None;
    let undeliverable = knobs
        .undeliverable
        .iter()
        .any(|u| rules::wa_id_of(u).as_deref() == Some(req.wa_id.as_str()));
    if undeliverable {
        async_error = Some(MetaError::undeliverable());
    }

    let (kind, text, template) = match &req.kind {
        SendKind::Text { body, .. } => {
            let last = store
                .last_inbound
                .get(&(id.to_string(), req.wa_id.clone()))
                .copied();
            if async_error.is_none() && !rules::within_service_window(last, now_ms.div_euclid(1000))
            {
                async_error = Some(MetaError::reengagement());
            }
            ("text", Some(body.clone()), None)
        }
        SendKind::Template {
            name,
            language,
            body_params,
        } => {
            let t = store
                .templates
                .iter()
                .find(|t| {
                    t.waba_id == tenant.spec.waba_id && &t.name == name && &t.language == language
                })
                .ok_or_else(|| MetaError::template_missing(name, language))?;
            // Meta's error codes page: 132015 paused, 132016 disabled; any
            // other status that is not approved (pending, rejected, in
            // appeal, archived, deleted, ...) is 132001.
            match t.status.as_str() {
                "APPROVED" => {}
                "PAUSED" => return Err(MetaError::template_paused(name)),
                "DISABLED" => return Err(MetaError::template_disabled(name)),
                _ => return Err(MetaError::template_missing(name, language)),
            }
            if t.body_placeholders != body_params.len() {
                return Err(MetaError::param_count(
                    t.body_placeholders,
                    body_params.len(),
                ));
            }
            let sent = SentTemplate {
                name: name.clone(),
                language: language.clone(),
                parameters: body_params.clone(),
            };
            ("template", None, Some(sent))
        }
    };
    if let Some(e) = &async_error {
        if knobs.window_error_mode == WindowErrorMode::Sync {
            return Err(e.clone());
        }
    }

    // Accepted: count it against the caps and record it.
    let in_window = store
        .throughput
        .entry(id.to_string())
        .or_default()
        .record(now) as u64;
    let lost = roll(&mut store, knobs.response_lost_rate);
    let record = MessageRecord {
        wamid: new_wamid(),
        phone_number_id: id.to_string(),
        to: req.to.clone(),
        wa_id: req.wa_id.clone(),
        kind: kind.to_string(),
        text,
        template,
        biz_opaque_callback_data: req.biz_opaque_callback_data.clone(),
        accepted_at: now_ms,
        response_lost: lost,
        failed_with: async_error.as_ref().map(|e| e.code),
    };
    store.stats.accepted += 1;
    let ps = store
        .stats
        .per_phone_number
        .entry(id.to_string())
        .or_default();
    ps.accepted += 1;
    ps.max_per_rolling_second = ps.max_per_rolling_second.max(in_window);
    store.messages.push(record.clone());
    Ok(Accepted {
        record,
        tenant,
        async_error,
        lost,
        hold_ms: knobs.timeout_hold_ms,
    })
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
