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

use crate::identity;
use crate::identity::IdentityError;
use crate::knobs::KnobError;
use crate::model::{
    DataList, DecisionExtras, DecisionResult, InboundMessage, InboundResult, ResetRequest,
    TemplateDecision, TenantSpec, TokenRotation,
};
use crate::rules;
use crate::state::{AppState, Store, Tenant};
use crate::template_events;
use crate::webhooks;
use crate::{control_accounts, control_users, inbound};

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
    #[error("no registered user answers to {0}")]
    UnknownUser(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Knobs(#[from] KnobError),
    #[error("invalid user: {0}")]
    Identity(#[from] IdentityError),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::UnknownPhone(_)
            | ControlError::UnknownTemplate { .. }
            | ControlError::UnknownUser(_) => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) | ControlError::Knobs(_) | ControlError::Identity(_) => {
                StatusCode::BAD_REQUEST
            }
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_sandbox/tenants", post(register_tenant).get(list_tenants))
        .route("/_sandbox/tokens", post(rotate_token))
        .route("/_sandbox/inbound", post(inbound))
        .route(
            "/_sandbox/users",
            post(control_users::register_user).get(control_users::list_users),
        )
        .route(
            "/_sandbox/users/change_id",
            post(control_users::change_user_id),
        )
        .route(
            "/_sandbox/accounts",
            post(control_accounts::set_account).get(control_accounts::list_accounts),
        )
        .route(
            "/_sandbox/account_events",
            post(control_accounts::account_event),
        )
        .route("/_sandbox/reads", get(control_accounts::list_reads))
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

/// `POST /_sandbox/inbound`: [`InboundRequest`]'s JSON, or the fuller [`InboundMessage`].
async fn inbound(
    State(state): State<AppState>,
    Json(r): Json<InboundMessage>,
) -> Result<Json<InboundResult>, ControlError> {
    let now_ms = state.now_ms();
    let prepared = inbound::prepare(&mut state.lock(), &r, now_ms)?;
    let outcome = webhooks::deliver(
        &state,
        &prepared.tenant.spec.webhook_url,
        &prepared.tenant.spec.app_secret,
        &prepared.body,
    )
    .await;
    Ok(Json(InboundResult {
        message_id: prepared.id,
        timestamp: prepared.timestamp,
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
    let store = state.lock();
    // `to` names a recipient by any alias: digits, wa_id or BSUID.
    let to = f.to.as_deref().map(|t| {
        (
            identity::window_key(&store.users, t),
            rules::wa_id_of(t).unwrap_or_else(|| t.to_string()),
        )
    });
    let data: Vec<_> = store
        .messages
        .iter()
        .filter(|m| {
            f.phone_number_id
                .as_ref()
                .is_none_or(|p| &m.phone_number_id == p)
        })
        .filter(|m| {
            to.as_ref().is_none_or(|(key, alias)| {
                &m.wa_id == alias
                    || m.recipient.as_ref() == Some(alias)
                    || m.user_id.as_ref() == Some(alias)
                    || identity::window_key(&store.users, &m.wa_id) == *key
                    || m.user_id
                        .as_ref()
                        .is_some_and(|u| identity::window_key(&store.users, u) == *key)
            })
        })
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
    let (users, next_user, accounts) = if r.clear_tenants {
        Default::default()
    } else {
        (
            std::mem::take(&mut store.users),
            store.next_user,
            std::mem::take(&mut store.accounts),
        )
    };
    *store = Store::new(knobs);
    store.tenants = tenants;
    store.users = users;
    store.next_user = next_user;
    store.accounts = accounts;
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
