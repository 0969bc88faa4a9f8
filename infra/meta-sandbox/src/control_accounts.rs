//! `/_sandbox/accounts` and `/_sandbox/account_events`: WhatsApp Business
//! Account conditions (a payment issue, marketing only through the Marketing
//! Messages API, the contact book) and the account webhooks Meta sends.
//!
//! Account webhooks, as Meta's references describe them in 2026 (read with
//! the search tool; examples in `fixtures/meta/webhook-examples/`):
//! - `phone_number_quality_update`: `display_phone_number`, `event`,
//!   `old_limit` (messaging limit changes only) and
//!   `max_daily_conversations_per_business`. Meta's reference (updated
//!   2026-05-21): `current_limit` "will be removed in February, 2026. Use
//!   `max_daily_conversations_per_business` instead."
//! - `business_capability_update`: `max_daily_conversations_per_business`,
//!   `max_phone_numbers_per_waba`; `max_daily_conversation_per_phone` was
//!   removed in February 2026 (META-2026.md, from Meta's messaging-limits pages).
//! - `account_update`: `event` (e.g. `VOLUME_BASED_PRICING_TIER_UPDATE` with
//!   `volume_tier_info`, Meta's example; `ACCOUNT_RESTRICTION` with
//!   `restriction_info: [{restriction_type, expiration}]`, `DISABLED_UPDATE`
//!   with `ban_info`, `ACCOUNT_VIOLATION` with `violation_info`, as relayed
//!   by WATI and YCloud).
//!
//! The sandbox sends the value it is given, after refusing the fields Meta
//! removed and checking the ones it requires; every entry carries `time`.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::control_routes::ControlError;
use crate::model::{AccountSpec, AccountView, DataList, DeliveryOutcome, ReadRecord};
use crate::state::AppState;
use crate::webhooks;

/// `POST /_sandbox/accounts`: set some of a WABA's conditions.
pub async fn set_account(
    State(state): State<AppState>,
    Json(a): Json<AccountSpec>,
) -> Result<Json<AccountView>, ControlError> {
    if a.waba_id.is_empty() {
        return Err(ControlError::Invalid("waba_id must not be empty".into()));
    }
    let mut store = state.lock();
    let mut view = store.account(&a.waba_id);
    if let Some(v) = a.payment_issue {
        view.payment_issue = v;
    }
    if let Some(v) = a.marketing_messages_api_only {
        view.marketing_messages_api_only = v;
    }
    if let Some(v) = a.contact_book {
        view.contact_book = v;
        if !v {
            // Meta: disabling the contact book deletes what it stored.
            store.contact_book.retain(|(waba, _)| waba != &a.waba_id);
        }
    }
    store.accounts.insert(a.waba_id.clone(), view.clone());
    tracing::info!(waba_id = %a.waba_id, "account conditions set");
    Ok(Json(view))
}

/// `GET /_sandbox/accounts`.
pub async fn list_accounts(State(state): State<AppState>) -> Json<Value> {
    let store = state.lock();
    let mut data: Vec<AccountView> = store.accounts.values().cloned().collect();
    data.sort_by(|a, b| a.waba_id.cmp(&b.waba_id));
    Json(json!(DataList { data }))
}

#[derive(Debug, Deserialize)]
pub struct ReadFilter {
    phone_number_id: Option<String>,
}

/// `GET /_sandbox/reads`: the read receipts businesses sent.
pub async fn list_reads(State(state): State<AppState>, Query(f): Query<ReadFilter>) -> Json<Value> {
    let store = state.lock();
    let data: Vec<ReadRecord> = store
        .reads
        .iter()
        .filter(|r| {
            f.phone_number_id
                .as_ref()
                .is_none_or(|p| &r.phone_number_id == p)
        })
        .cloned()
        .collect();
    Json(json!(DataList { data }))
}

/// `POST /_sandbox/account_events`: one account webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    pub waba_id: String,
    /// `phone_number_quality_update`, `business_capability_update` or `account_update`.
    pub field: String,
    /// The change's `value`.
    pub value: Value,
    /// For `phone_number_quality_update`: fills `display_phone_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
}

/// The answer: the body posted and how each delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEventResult {
    pub body: Value,
    pub webhook: Vec<DeliveryOutcome>,
}

/// Fields Meta removed in February 2026, per webhook field.
const REMOVED: &[(&str, &str)] = &[
    ("phone_number_quality_update", "current_limit"),
    (
        "phone_number_quality_update",
        "max_daily_conversation_per_phone",
    ),
    (
        "business_capability_update",
        "max_daily_conversation_per_phone",
    ),
];

fn check(field: &str, value: &Value) -> Result<(), ControlError> {
    let Value::Object(map) = value else {
        return Err(ControlError::Invalid("value must be a JSON object".into()));
    };
    for (f, key) in REMOVED {
        if *f == field && map.contains_key(*key) {
            return Err(ControlError::Invalid(format!(
                "{field}.{key} was removed by Meta in February 2026; use max_daily_conversations_per_business"
            )));
        }
    }
    match field {
        "phone_number_quality_update" | "account_update" => {
            if !map.get("event").is_some_and(Value::is_string) {
                return Err(ControlError::Invalid(format!("{field} needs an event")));
            }
        }
        "business_capability_update" => {}
        other => {
            return Err(ControlError::Invalid(format!(
                "field must be phone_number_quality_update, business_capability_update or account_update, got '{other}'"
            )))
        }
    }
    if let Some(r) = map.get("restriction_info") {
        let ok = r.as_array().is_some_and(|list| {
            list.iter().all(|x| {
                x.get("restriction_type").is_some_and(Value::is_string)
                    && x.get("expiration").is_some()
            })
        });
        if !ok {
            return Err(ControlError::Invalid(
                "restriction_info must be [{restriction_type, expiration}]".into(),
            ));
        }
    }
    Ok(())
}

/// `POST /_sandbox/account_events`.
pub async fn account_event(
    State(state): State<AppState>,
    Json(e): Json<AccountEvent>,
) -> Result<Json<AccountEventResult>, ControlError> {
    check(&e.field, &e.value)?;
    let mut value = e.value.clone();
    if e.field == "phone_number_quality_update" && value.get("display_phone_number").is_none() {
        let pnid = e.phone_number_id.clone().unwrap_or_default();
        let tenant = state
            .lock()
            .tenants
            .get(&pnid)
            .cloned()
            .ok_or(ControlError::UnknownPhone(pnid))?;
        value["display_phone_number"] = json!(tenant.display_phone_number());
    }
    if state.lock().tenants_of_waba(&e.waba_id).is_empty() {
        return Err(ControlError::Invalid(format!(
            "no tenant has waba_id {}",
            e.waba_id
        )));
    }
    let body = webhooks::account_payload(&e.waba_id, &e.field, value, state.now_s());
    let webhook = webhooks::send_to_waba(&state, &e.waba_id, &body).await;
    Ok(Json(AccountEventResult { body, webhook }))
}
