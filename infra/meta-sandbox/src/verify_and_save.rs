//! `POST /_sandbox/verify_and_save`: the App Dashboard's **Verify and save**
//! (WhatsApp → Configuration → Webhook), as Meta runs it.
//!
//! Meta sends a verification request to the callback URL, a `GET` with
//! `hub.mode=subscribe`, `hub.challenge` (an int) and `hub.verify_token` (the
//! string typed into the Verify Token field), and saves the callback URL only
//! if the endpoint answers with the challenge
//! (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started/>,
//! "Verification Requests"). Here, saving sets the URL the tenant's webhooks
//! go to; a refused verification leaves the previous one in place.
//!
//! Body `{phone_number_id, callback_url, verify_token}` (the app is named by
//! its phone number id, as elsewhere in the sandbox). Answer 200
//! `{saved, callback_url, http_status, challenge_echoed, error}` whether or
//! not it saved, as the dashboard shows the outcome; 404 for an unknown
//! phone number id, 400 for a URL that does not parse.
//!
//! Unlike Meta, plain `http://` is accepted: Meta requires HTTPS with a
//! certificate from a trusted CA (self-signed ones are refused), which only
//! a real deployment can show.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::state::AppState;

/// What the dashboard submits.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VerifyAndSave {
    pub phone_number_id: String,
    pub callback_url: String,
    pub verify_token: String,
}

/// What the dashboard shows afterwards.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VerifyOutcome {
    pub saved: bool,
    pub callback_url: String,
    /// The callback's HTTP status, if it answered.
    pub http_status: Option<u16>,
    pub challenge_echoed: bool,
    /// Why it was not saved, in words.
    pub error: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/_sandbox/verify_and_save", post(verify_and_save))
}

fn refused(status: StatusCode, error: String) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn verify_and_save(State(state): State<AppState>, Json(r): Json<VerifyAndSave>) -> Response {
    let url = match reqwest::Url::parse(&r.callback_url) {
        Ok(u) => u,
        Err(e) => return refused(StatusCode::BAD_REQUEST, format!("callback_url: {e}")),
    };
    if !state.lock().tenants.contains_key(&r.phone_number_id) {
        return refused(
            StatusCode::NOT_FOUND,
            format!("unknown phone_number_id {}", r.phone_number_id),
        );
    }
    let challenge = rand::random::<u32>().to_string();
    let answer = state
        .http
        .get(url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", challenge.as_str()),
            ("hub.verify_token", r.verify_token.as_str()),
        ])
        .send()
        .await;
    let (http_status, echoed, error) = match answer {
        Err(e) => (
            None,
            false,
            Some(format!("the callback URL could not be reached: {e}")),
        ),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let echoed = status == 200 && body.trim() == challenge;
            let error = (!echoed).then(|| {
                format!("the callback answered HTTP {status} without the challenge; the callback URL or verify token couldn't be validated")
            });
            (Some(status), echoed, error)
        }
    };
    if echoed {
        if let Some(t) = state.lock().tenants.get_mut(&r.phone_number_id) {
            t.spec.webhook_url = r.callback_url.clone();
        }
        tracing::info!(phone_number_id = %r.phone_number_id, "webhook callback verified and saved");
    }
    Json(VerifyOutcome {
        saved: echoed,
        callback_url: r.callback_url,
        http_status,
        challenge_echoed: echoed,
        error,
    })
    .into_response()
}
