//! # meta-sandbox: a local stand-in for Meta's WhatsApp Business Cloud API
//!
//! Meta cannot be reached from development machines or CI, so this crate
//! serves the part of the Graph API the project uses as Meta runs it in 2026,
//! with Meta's shapes, Meta's rules and Meta's error codes, plus faults a test
//! can turn on. Think stripe-mock. It runs in-process ([`spawn`]) or as the
//! `meta-sandbox` binary. The routes, control endpoints and knobs are listed
//! once, in the crate's README.
//!
//! ## Layout
//! - [`config`] / [`knobs`]: what a sandbox starts with and what tests may turn.
//! - [`clock`]: the one wall clock (shared with the service in local runs);
//!   [`calendar`] turns it into dates; [`versions`] reads Graph versions on it.
//! - [`state`]: tenants, users, messages, templates, windows, stats, under one lock.
//! - [`requests`]: parsing `/messages` bodies (text, template, interactive,
//!   read receipts; `to` or `recipient`).
//! - [`send`]: Meta's synchronous rules for a send, in Meta's order;
//!   [`pricing`] prices what is accepted.
//! - [`identity`]: users as Meta identifies them in 2026 (wa_id, BSUID,
//!   username) and the phone-number rules.
//! - [`rules`]: pure rules (24 h window, placeholders, template review, rate limits).
//! - [`template_review`] / [`template_events`]: reviews due on the clock, and
//!   Meta's template status events.
//! - [`errors`]: Meta's error bodies and HTTP statuses, with sources.
//! - [`graph_routes`]: `/{version}/...` Graph routes; [`faults`] wraps them.
//! - [`webhooks`]: payloads, `X-Hub-Signature-256`, delivery with retries.
//! - [`inbound`]: a CSM's message (text, taps, quoted replies) as Meta posts it.
//! - [`control_routes`], [`control_users`], [`control_accounts`] / [`client`] /
//!   [`model`]: `/_sandbox/*` and its typed client.

pub mod calendar;
pub mod client;
pub mod clock;
pub mod config;
pub mod control_accounts;
pub mod control_routes;
pub mod control_users;
pub mod errors;
pub mod faults;
pub mod graph_routes;
pub mod identity;
pub mod inbound;
pub mod knobs;
pub mod model;
pub mod pricing;
pub mod requests;
pub mod rules;
pub mod send;
pub mod state;
pub mod template_events;
pub mod template_review;
pub mod verify_and_save;
pub mod versions;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::{ClientError, SandboxClient};
pub use clock::Clock;
pub use config::SandboxConfig;
pub use control_accounts::{AccountEvent, AccountEventResult};
pub use knobs::{
    EdgeBody, EdgeFailure, Knobs, MsRange, PairLimit, PricingRules, Progression, TemplateReview,
    WindowErrorMode,
};
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
    reviews: Option<JoinHandle<()>>,
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
        if let Some(reviews) = self.reviews.take() {
            reviews.abort();
        }
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
        if let Some(reviews) = self.reviews.take() {
            reviews.abort();
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
    let reviews = tokio::spawn(template_review::review_loop(state.clone()));
    tracing::info!(%addr, "meta sandbox listening");
    Ok(SandboxHandle {
        addr,
        state,
        stop: Some(stop_tx),
        task: Some(task),
        reviews: Some(reviews),
    })
}
