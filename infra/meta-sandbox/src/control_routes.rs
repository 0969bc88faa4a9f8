//! `/_sandbox/*`: the control endpoints tests use to set the world up and look
//! at what happened. Faults never apply here. Errors are plain
//! `{"error": "<reason>"}` with 400/404, since these are not Meta's routes.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::knobs::KnobError;
use crate::model::{
    DataList, DecisionExtras, DecisionResult, InboundRequest, InboundResult, ResetRequest,
    TemplateDecision, TenantSpec, TokenRotation,
};
use crate::rules;
use crate::state::{AppState, Store, Tenant};
use crate::template_events;
use crate::webhooks;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown phone_number_id {0}")]
    UnknownPhone(String),
    #[error("no template {name}/{language} in WABA {waba_id}")]
    UnknownTemplate {
        waba_id: String,
        name: String,
        language: String,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Knobs(#[from] KnobError),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::UnknownPhone(_) | ControlError::UnknownTemplate { .. } => {
                StatusCode::NOT_FOUND
            }
            ControlError::Invalid(_) | ControlError::Knobs(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_sandbox/tenants", post(register_tenant).get(list_tenants))
        .route("/_sandbox/tokens", post(rotate_token))
        .route("/_sandbox/inbound", post(inbound))
        .route("/_sandbox/messages", get(list_messages))
        .route("/_sandbox/templates", get(list_templates))
        .route("/_sandbox/templates/decide", post(decide_template))
        .route("/_sandbox/knobs", get(get_knobs).put(put_knobs))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/webhooks", get(list_webhooks))
        .route(
            "/_sandbox/health",
            get(|| async { Json(json!({"ok": true})) }),
        )
}

fn invalid(msg: impl Into<String>) -> ControlError {
    ControlError::Invalid(msg.into())
}

async fn register_tenant(
    State(state): State<AppState>,
    Json(spec): Json<TenantSpec>,
) -> Result<Response, ControlError> {
    if spec.phone_number_id.is_empty() || spec.waba_id.is_empty() || spec.access_token.is_empty() {
        return Err(invalid(
            "phone_number_id, waba_id and access_token must not be empty",
        ));
    }
    reqwest::Url::parse(&spec.webhook_url).map_err(|e| invalid(format!("webhook_url: {e}")))?;
    let tenant = Tenant { spec };
    let view = tenant.view();
    state
        .lock()
        .tenants
        .insert(view.phone_number_id.clone(), tenant);
    tracing::info!(phone_number_id = %view.phone_number_id, waba_id = %view.waba_id, "tenant registered");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn list_tenants(State(state): State<AppState>) -> Json<Value> {
    let store = state.lock();
    let mut data: Vec<_> = store.tenants.values().map(Tenant::view).collect();
    data.sort_by(|a, b| a.phone_number_id.cmp(&b.phone_number_id));
    Json(json!({ "data": data }))
}

async fn rotate_token(
    State(state): State<AppState>,
    Json(r): Json<TokenRotation>,
) -> Result<Json<Value>, ControlError> {
    if r.access_token.is_empty() {
        return Err(invalid("access_token must not be empty"));
    }
    let mut store = state.lock();
    let t = store
        .tenants
        .get_mut(&r.phone_number_id)
        .ok_or_else(|| ControlError::UnknownPhone(r.phone_number_id.clone()))?;
    t.spec.access_token = r.access_token;
    Ok(Json(
        json!({"phone_number_id": r.phone_number_id, "rotated": true}),
    ))
}

async fn inbound(
    State(state): State<AppState>,
    Json(r): Json<InboundRequest>,
) -> Result<Json<InboundResult>, ControlError> {
    let from = rules::wa_id_of(&r.from).ok_or_else(|| invalid("from must be a phone number"))?;
    let ts = r.timestamp.unwrap_or_else(|| state.now_s());
    let tenant = {
        let mut store = state.lock();
        let tenant = store
            .tenants
            .get(&r.phone_number_id)
            .cloned()
            .ok_or_else(|| ControlError::UnknownPhone(r.phone_number_id.clone()))?;
        // The given timestamp replaces any earlier one, even if older, so a
        // test can move a window into the past.
        store
            .last_inbound
            .insert((r.phone_number_id.clone(), from.clone()), ts);
        tenant
    };
    let id = format!(
        "wamid.HBgM{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    );
    let name = r
        .profile_name
        .clone()
        .unwrap_or_else(|| "Sandbox User".into());
    let body = webhooks::inbound_payload(&tenant, &from, &name, &id, ts, &r.text);
    let outcome = webhooks::deliver(
        &state,
        &tenant.spec.webhook_url,
        &tenant.spec.app_secret,
        &body,
    )
    .await;
    Ok(Json(InboundResult {
        message_id: id,
        timestamp: ts,
        webhook: vec![outcome],
    }))
}

#[derive(Debug, Deserialize)]
struct MessageFilter {
    phone_number_id: Option<String>,
    to: Option<String>,
}

async fn list_messages(
    State(state): State<AppState>,
    Query(f): Query<MessageFilter>,
) -> Json<Value> {
    let to = f.to.as_deref().and_then(rules::wa_id_of);
    let store = state.lock();
    let data: Vec<_> = store
        .messages
        .iter()
        .filter(|m| {
            f.phone_number_id
                .as_ref()
                .is_none_or(|p| &m.phone_number_id == p)
        })
        .filter(|m| to.as_ref().is_none_or(|w| &m.wa_id == w))
        .cloned()
        .collect();
    Json(json!(DataList { data }))
}

#[derive(Debug, Deserialize)]
struct TemplateFilter {
    waba_id: Option<String>,
}

async fn list_templates(
    State(state): State<AppState>,
    Query(f): Query<TemplateFilter>,
) -> Json<Value> {
    let store = state.lock();
    let data: Vec<_> = store
        .templates
        .iter()
        .filter(|t| f.waba_id.as_ref().is_none_or(|w| &t.waba_id == w))
        .cloned()
        .collect();
    Json(json!(DataList { data }))
}

/// The decide body: [`TemplateDecision`] and, beside its fields, [`DecisionExtras`].
#[derive(Debug, Deserialize)]
struct DecideBody {
    #[serde(flatten)]
    decision: TemplateDecision,
    #[serde(flatten)]
    extras: DecisionExtras,
}

async fn decide_template(
    State(state): State<AppState>,
    Json(body): Json<DecideBody>,
) -> Result<Json<DecisionResult>, ControlError> {
    let DecideBody {
        decision: d,
        extras,
    } = body;
    let now_ms = state.now_ms();
    let (template, update) = {
        let mut store = state.lock();
        let t = store
            .templates
            .iter_mut()
            .find(|t| t.waba_id == d.waba_id && t.name == d.name && t.language == d.language)
            .ok_or_else(|| ControlError::UnknownTemplate {
                waba_id: d.waba_id.clone(),
                name: d.name.clone(),
                language: d.language.clone(),
            })?;
        let extras = template_events::Extras {
            reason: d.reason.clone(),
            other_info: extras.other_info,
            rejection_info: extras.rejection_info,
            disable_date: extras.disable_date,
        };
        let update = template_events::apply(t, &d.status, extras, now_ms)
            .map_err(|e| invalid(e.to_string()))?;
        (t.clone(), update)
    };
    let value = template_events::webhook_value(&template, &update);
    let webhook = if d.webhook.unwrap_or(true) {
        webhooks::send_template_status(&state, &template, &update).await
    } else {
        Vec::new()
    };
    Ok(Json(DecisionResult {
        template,
        webhook,
        value,
    }))
}

async fn get_knobs(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.lock().knobs))
}

async fn put_knobs(
    State(state): State<AppState>,
    Json(patch): Json<Value>,
) -> Result<Json<Value>, ControlError> {
    let mut store = state.lock();
    let knobs = store.knobs.merged(&patch)?;
    store.set_knobs(knobs);
    Ok(Json(json!(store.knobs)))
}

async fn reset(State(state): State<AppState>, body: Option<Json<ResetRequest>>) -> Json<Value> {
    let r = body.map(|Json(r)| r).unwrap_or_default();
    let mut store = state.lock();
    let tenants = if r.clear_tenants {
        Default::default()
    } else {
        std::mem::take(&mut store.tenants)
    };
    let knobs = if r.reset_knobs {
        state.config.knobs.clone()
    } else {
        store.knobs.clone()
    };
    *store = Store::new(knobs);
    store.tenants = tenants;
    Json(json!({"reset": true, "tenants_kept": !r.clear_tenants, "knobs_reset": r.reset_knobs}))
}

async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.lock().stats))
}

#[derive(Debug, Deserialize)]
struct WebhookFilter {
    field: Option<String>,
}

async fn list_webhooks(
    State(state): State<AppState>,
    Query(f): Query<WebhookFilter>,
) -> Json<Value> {
    let store = state.lock();
    let data: Vec<_> = store
        .webhooks
        .iter()
        .filter(|w| f.field.as_ref().is_none_or(|x| &w.field == x))
        .cloned()
        .collect();
    Json(json!(DataList { data }))
}
