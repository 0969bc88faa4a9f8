//! # meta-sandbox: a local stand-in for Meta's WhatsApp Business Cloud API
//!
//! Meta cannot be reached from development machines or CI, so this crate
//! serves the part of the Graph API the project uses, with Meta's shapes,
//! Meta's rules and Meta's error codes, plus faults a test can turn on. Think
//! stripe-mock. It runs in-process ([`spawn`]) or as the `meta-sandbox` binary.
//!
//! ## Layout
//! - [`config`] / [`knobs`]: what a sandbox starts with and what tests may turn.
//! - [`state`]: tenants, messages, templates, windows, stats, under one lock.
//! - [`rules`]: Meta's rules as pure functions (parsing, 24 h window,
//!   placeholders, template review, rate limits).
//! - [`errors`]: Meta's error bodies and HTTP statuses, with sources.
//! - [`graph_routes`]: `/{version}/...` Graph routes; [`faults`] wraps them.
//! - [`webhooks`]: payloads, `X-Hub-Signature-256`, delivery with retries.
//! - [`control_routes`] / [`client`] / [`model`]: `/_sandbox/*` and its typed client.
//!
//! ## Graph API (any `v<major>.<minor>` version)
//! - `POST /{version}/{phone-number-id}/messages` (`text`, `template`)
//! - `POST|GET /{version}/{waba-id}/message_templates` (`limit`, `after`, `name`, `status`)
//! - `GET /{version}/{phone-number-id}`
//!
//! ## Control endpoints (JSON; never subject to faults)
//! | endpoint | body / query | answer |
//! |---|---|---|
//! | `POST /_sandbox/tenants` | [`model::TenantSpec`] `{phone_number_id, waba_id, access_token, app_secret, webhook_url, display_phone_number?, verified_name?}` | 201 [`model::TenantView`]; registers or replaces |
//! | `GET /_sandbox/tenants` | | `{"data":[TenantView]}` |
//! | `POST /_sandbox/tokens` | `{phone_number_id, access_token}` | `{"phone_number_id","rotated":true}`; old token → 190 |
//! | `POST /_sandbox/inbound` | `{phone_number_id, from, text, timestamp?, profile_name?}` | [`model::InboundResult`] `{message_id, timestamp, webhook:[DeliveryOutcome]}` |
//! | `GET /_sandbox/messages` | `?phone_number_id=&to=` | `{"data":[MessageRecord]}` in acceptance order |
//! | `GET /_sandbox/templates` | `?waba_id=` | `{"data":[TemplateRecord]}` |
//! | `POST /_sandbox/templates/decide` | `{waba_id, name, language, status, reason?, webhook?=true}` | `{template, webhook:[DeliveryOutcome]}` |
//! | `GET /_sandbox/knobs` / `PUT /_sandbox/knobs` | partial [`Knobs`] object | all knobs |
//! | `POST /_sandbox/reset` | `{clear_tenants?=false, reset_knobs?=false}` | clears messages, templates, windows, rate state, stats, webhook log; keeps tenants and knobs unless asked |
//! | `GET /_sandbox/stats` | | [`model::Stats`] |
//! | `GET /_sandbox/webhooks` | `?field=` | `{"data":[WebhookLogEntry]}` |
//! | `GET /_sandbox/health` | | `{"ok":true}` |

pub mod client;
pub mod config;
pub mod control_routes;
pub mod errors;
pub mod faults;
pub mod graph_routes;
pub mod knobs;
pub mod model;
pub mod rules;
pub mod state;
pub mod verify_and_save;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::{ClientError, SandboxClient};
pub use config::SandboxConfig;
pub use knobs::{Knobs, MsRange, PairLimit, Progression, WindowErrorMode};
pub use model::*;
use state::{AppState, Shared};

/// The whole app: control routes and Graph routes over one state.
pub fn app(state: AppState) -> Router {
    control_routes::router()
        .merge(verify_and_save::router())
        .merge(graph_routes::router(state.clone()))
        .with_state(state)
}

/// A running sandbox. Dropping it stops the server.
pub struct SandboxHandle {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A control client for this sandbox.
    pub fn client(&self) -> SandboxClient {
        SandboxClient::new(self.base_url())
    }

    /// Stops accepting, lets in-flight requests finish for up to a second,
    /// then drops them (held fault requests included).
    pub async fn shutdown(mut self) {
        self.stop_now(Duration::from_secs(1)).await;
    }

    /// Resolves when the server stops (for the binary's foreground run).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "sandbox server task ended abnormally");
            }
        }
    }

    async fn stop_now(&mut self, grace: Duration) {
        self.state.closed.store(true, Ordering::Relaxed);
        if let Some(stop) = self.stop.take() {
            let _ignored_if_already_stopped = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds `addr` (port 0 allowed) and serves the sandbox in a background task.
pub async fn spawn(addr: SocketAddr, config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    config
        .knobs
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state: AppState = Arc::new(Shared::new(config));
    let router = app(state.clone());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _stopped_or_handle_dropped = stop_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "sandbox server failed");
        }
    });
    tracing::info!(%addr, "meta sandbox listening");
    Ok(SandboxHandle {
        addr,
        state,
        stop: Some(stop_tx),
        task: Some(task),
    })
}
