//! `/_sandbox/users`: WhatsApp users with Meta's 2026 identities, and a user
//! changing their id (a new phone number, so a new BSUID).
//!
//! An id change sends what Meta sends (BSUID document, May 2026, and the
//! system messages reference, August 2026): a `user_id_update` webhook
//! (`contacts` with the name and, when shown, `wa_id`; `user_id_update[]`
//! with `wa_id` when shown, `detail`, `user_id {previous, current}`,
//! `parent_user_id {previous, current}` when the user has one, `timestamp`)
//! and a `user_changed_user_id` system message (no `contacts`; `system {body:
//! "User <name> changed from <old BSUID> to <new BSUID>", user_id,
//! parent_user_id?, type}`; no phone number, which the August 2026 reference
//! says this type never includes). Meta's syntax shows the old number in
//! `from`; with no phone number, the sandbox names the user by
//! `from_user_id` = the previous BSUID, as every other incoming message does
//! (an inference: Meta's pages show no example of this case). Windows and
//! rate state stay with the user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::control_routes::ControlError;
use crate::identity::{self, fresh_bsuid};
use crate::model::{DataList, UserIdChange, UserIdChangeResult, UserSpec};
use crate::requests::{is_bsuid, is_parent_bsuid};
use crate::state::AppState;
use crate::webhooks;

/// `POST /_sandbox/users`.
pub async fn register_user(
    State(state): State<AppState>,
    Json(spec): Json<UserSpec>,
) -> Result<Response, ControlError> {
    let user = identity::register(&mut state.lock(), spec)?;
    tracing::info!(user = %user.key, "user registered");
    Ok((StatusCode::CREATED, Json(user.view())).into_response())
}

/// `GET /_sandbox/users`.
pub async fn list_users(State(state): State<AppState>) -> Json<Value> {
    let store = state.lock();
    let data: Vec<_> = store.users.iter().map(|u| u.view()).collect();
    Json(json!(DataList { data }))
}

/// `POST /_sandbox/users/change_id`.
pub async fn change_user_id(
    State(state): State<AppState>,
    Json(c): Json<UserIdChange>,
) -> Result<Json<UserIdChangeResult>, ControlError> {
    let now_ms = state.now_ms();
    let now_s = now_ms.div_euclid(1000);
    let (tenant, user, previous, previous_parent, shown) = {
        let mut store = state.lock();
        let tenant = store
            .tenants
            .get(&c.phone_number_id)
            .cloned()
            .ok_or_else(|| ControlError::UnknownPhone(c.phone_number_id.clone()))?;
        let found = identity::find(&store.users, &c.user)
            .cloned()
            .ok_or_else(|| ControlError::UnknownUser(c.user.clone()))?;
        let new_id = c
            .new_user_id
            .clone()
            .unwrap_or_else(|| fresh_bsuid(&found, false));
        if !is_bsuid(&new_id) {
            return Err(ControlError::Invalid(
                "new_user_id must be a BSUID (CC. and up to 128 alphanumerics)".into(),
            ));
        }
        let new_parent = match (&c.new_parent_user_id, &found.spec.parent_user_id) {
            (Some(p), _) if is_parent_bsuid(p) => Some(p.clone()),
            (Some(_), _) => return Err(ControlError::Invalid(
                "new_parent_user_id must be a parent BSUID (CC.ENT. and up to 128 alphanumerics)"
                    .into(),
            )),
            (None, Some(_)) => Some(fresh_bsuid(&found, true)),
            (None, None) => None,
        };
        let previous = found.spec.user_id.clone();
        let previous_parent = found.spec.parent_user_id.clone();
        let Some(u) = store.users.iter_mut().find(|u| u.key == found.key) else {
            return Err(ControlError::UnknownUser(c.user.clone()));
        };
        u.spec.user_id = Some(new_id);
        u.spec.parent_user_id = new_parent;
        let user = u.clone();
        let shown = identity::phone_visible(&store, &tenant, &user, now_ms);
        (tenant, user, previous, previous_parent, shown)
    };
    let name = user.name().to_string();
    let new_id = user.spec.user_id.clone().unwrap_or_default();
    let mut webhook = Vec::new();
    if c.user_id_update.unwrap_or(true) {
        let mut contact = json!({"profile": {"name": name}});
        let mut update = json!({
            "detail": format!("User id for {name} has been updated."),
            "user_id": {"previous": previous, "current": new_id},
            "timestamp": now_s.to_string(),
        });
        if shown {
            if let Some(w) = user.wa_id() {
                contact["wa_id"] = json!(w);
                update["wa_id"] = json!(w);
            }
        }
        if let Some(p) = &user.spec.parent_user_id {
            update["parent_user_id"] = json!({"previous": previous_parent, "current": p});
        }
        let body = webhooks::phone_payload(
            &tenant,
            "user_id_update",
            json!({"contacts": [contact], "user_id_update": [update]}),
        );
        webhook.push(
            webhooks::deliver(
                &state,
                &tenant.spec.webhook_url,
                &tenant.spec.app_secret,
                &body,
            )
            .await,
        );
    }
    if c.system_message.unwrap_or(true) {
        let old = previous.clone().unwrap_or_default();
        let mut system = json!({
            "body": format!("User {name} changed from {old} to {new_id}"),
            "user_id": new_id,
            "type": "user_changed_user_id",
        });
        if let Some(p) = &user.spec.parent_user_id {
            system["parent_user_id"] = json!(p);
        }
        let mut message = json!({
            "id": format!("wamid.HBgM{}", uuid::Uuid::new_v4().simple().to_string().to_uppercase()),
            "timestamp": now_s.to_string(),
            "type": "system",
            "system": system,
        });
        if let Some(old) = &previous {
            message["from_user_id"] = json!(old);
        }
        let body = webhooks::system_payload(&tenant, message);
        webhook.push(
            webhooks::deliver(
                &state,
                &tenant.spec.webhook_url,
                &tenant.spec.app_secret,
                &body,
            )
            .await,
        );
    }
    tracing::info!(user = %user.key, "user id changed");
    Ok(Json(UserIdChangeResult {
        user: user.view(),
        previous_user_id: previous,
        webhook,
    }))
}
