//! Injected faults, applied to Graph API routes only (never `/_sandbox/`).
//!
//! [`graph_faults`] is a middleware drawing, per request and in this order:
//! latency, then one of 5xx (503 code 2), throttle (429 code 130429) or
//! timeout (held `timeout_hold_ms`, then the connection is dropped, the message
//! never accepted). `response_lost_rate` and `edge_failure_rate` are
//! different: the message IS accepted, so the send rules draw them after
//! acceptance and the handler answers with [`dropped_response`] or
//! [`edge_response`]. All draws come from the store's RNG, seeded by the
//! `seed` knob, so a fixed seed replays the same faults.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::errors::MetaError;
use crate::knobs::{EdgeBody, EdgeFailure};
use crate::state::{AppState, Store};

/// What a request suffers before reaching its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    None,
    ServerError,
    Throttle,
    Timeout,
}

/// Draws `rate` from the store's RNG (always consuming a draw, so sequences
/// stay reproducible whatever the rates).
pub fn roll(store: &mut Store, rate: f64) -> bool {
    let x: f64 = store.rng.random();
    x < rate
}

/// Latency and fault for one Graph request.
pub fn draw_request_fault(store: &mut Store) -> (Duration, RequestFault) {
    let k = store.knobs.clone();
    let latency = if k.latency_ms.max == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(store.rng.random_range(k.latency_ms.min..=k.latency_ms.max))
    };
    let fault = if roll(store, k.error_5xx_rate) {
        RequestFault::ServerError
    } else if roll(store, k.throttle_rate) {
        RequestFault::Throttle
    } else if roll(store, k.timeout_rate) {
        RequestFault::Timeout
    } else {
        RequestFault::None
    };
    (latency, fault)
}

/// A response whose body fails at once: hyper aborts the connection, so the
/// client sees a broken/timed-out request, never a usable answer.
pub fn dropped_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox dropped the response",
        ))
    });
    (StatusCode::GATEWAY_TIMEOUT, Body::from_stream(stream)).into_response()
}

/// Meta's edge failing after the message was accepted: a 502 or 504 with
/// no Graph error body, an HTML page or nothing (issue 23: such a reply may
/// follow an accepted send, so it is ambiguous, not "not sent").
pub fn edge_response(edge: EdgeFailure) -> Response {
    let status = StatusCode::from_u16(edge.status).unwrap_or(StatusCode::BAD_GATEWAY);
    match edge.body {
        EdgeBody::Empty => (status, Body::empty()).into_response(),
        EdgeBody::Html => {
            let reason = status.canonical_reason().unwrap_or("Error");
            let page = format!(
                "<!DOCTYPE html><html><head><title>{code} {reason}</title></head><body><h1>{reason}</h1><p>Sorry, something went wrong.</p></body></html>",
                code = status.as_u16()
            );
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response()
        }
    }
}

/// The fault middleware for Graph routes.
pub async fn graph_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (latency, fault, hold, cap) = {
        let mut store = state.lock();
        let (latency, fault) = draw_request_fault(&mut store);
        (
            latency,
            fault,
            store.knobs.timeout_hold_ms,
            store.knobs.mps_cap,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        RequestFault::None => next.run(req).await,
        RequestFault::ServerError => {
            let e = MetaError::service_unavailable();
            state.lock().reject(e.code);
            e.into_response()
        }
        RequestFault::Throttle => {
            let e = MetaError::throughput(cap);
            state.lock().reject(e.code);
            e.into_response()
        }
        RequestFault::Timeout => {
            tracing::info!(
                hold_ms = hold,
                "fault: holding request without accepting it"
            );
            tokio::time::sleep(Duration::from_millis(hold)).await;
            dropped_response()
        }
    }
}
