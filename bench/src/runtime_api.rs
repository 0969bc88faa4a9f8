//! A minimal local Lambda Runtime API (the 2018-06-01 interface), enough for
//! `lambda_runtime`: `GET .../invocation/next` (long-polls until the harness
//! hands it an event), `POST .../invocation/{id}/response|error` and
//! `POST .../init/error`. Every arrival is timestamped for the harness.
//!
//! One server per process start, so a killed process's pending long poll
//! can never take the next process's event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, Mutex};

/// What the harness sees.
#[derive(Debug)]
pub enum Arrival {
    /// The process asked for its next invocation.
    Next(Instant),
    /// A response (or error) for invocation `id`.
    Done {
        id: String,
        at: Instant,
        ok: bool,
        body: Bytes,
    },
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    arrivals: mpsc::UnboundedSender<Arrival>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, Bytes)>,
    pub arrivals: mpsc::UnboundedReceiver<Arrival>,
    task: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (ar_tx, ar_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(ev_rx),
            arrivals: ar_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            addr,
            events: ev_tx,
            arrivals: ar_rx,
            task,
        })
    }

    /// Queues an invocation; the process's pending (or next) poll takes it.
    pub fn invoke(&self, id: &str, event: Bytes) {
        let _ = self.events.send((id.to_string(), event));
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    let _ = s.arrivals.send(Arrival::Next(Instant::now()));
    let got = s.events.lock().await.recv().await;
    let Some((id, body)) = got else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 60_000)
        .unwrap_or(0);
    let mut h = HeaderMap::new();
    let val = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static("x"));
    h.insert("lambda-runtime-aws-request-id", val(id));
    h.insert("lambda-runtime-deadline-ms", val(deadline.to_string()));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:bench"),
    );
    h.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, h, body).into_response()
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = s.arrivals.send(Arrival::Done {
        id,
        at: Instant::now(),
        ok: true,
        body,
    });
    StatusCode::ACCEPTED
}

async fn error(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = s.arrivals.send(Arrival::Done {
        id,
        at: Instant::now(),
        ok: false,
        body,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = s.arrivals.send(Arrival::Done {
        id: "init".into(),
        at: Instant::now(),
        ok: false,
        body,
    });
    StatusCode::ACCEPTED
}
