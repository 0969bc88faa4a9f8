//! The intake's AWS cost: status bodies through the real webhook handler
//! (`fincelo::webhook::handle`) against moto, with the app's clients counted.
//!
//! One body first fills the warm caches (tenant by routing id, app secret),
//! as the first request of an instance does; the counters are then reset and
//! `messages` × (sent, delivered, read) status bodies, one status each as Meta
//! sends them, go through.

use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;

use crate::corpus::{meta_json, status, status_body, APP_SECRET};
use crate::world::World;
use fincelo_bench::counting::RequestCounter;

#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookCost {
    pub status_events: usize,
    pub non_200: usize,
    pub requests: serde_json::Value,
    pub dynamodb_per_status: f64,
    pub sqs_per_status: f64,
    pub secrets_manager_warm: u64,
    /// Requests of the first body (cold caches), for contrast.
    pub first_body_requests: serde_json::Value,
}

async fn post(app: &fincelo::startup::App, body: String) -> u16 {
    let mut headers = HeaderMap::new();
    let sig = fincelo::webhook::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sig).unwrap_or(HeaderValue::from_static("")),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    fincelo::webhook::handle(
        app,
        fincelo::webhook::WebhookRequest {
            method: Method::POST,
            query: None,
            headers,
            body: body.into(),
        },
    )
    .await
    .status
}

pub async fn run(world: &World, messages: usize) -> Result<WebhookCost, String> {
    let counter = RequestCounter::default();
    let app = world.counted_app(2, &counter).await?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut warm = status(0, "sent", 1_764_075_000);
    warm["id"] = json!(format!("wamid.cost.{run}.warm"));
    let code = post(&app, meta_json(&status_body(vec![warm]))).await;
    if code != 200 {
        return Err(format!("warm-up status body answered {code}"));
    }
    let first_body_requests = counter.to_json();
    counter.reset();
    let mut non_200 = 0;
    let mut events = 0;
    for m in 0..messages {
        for (k, st) in ["sent", "delivered", "read"].into_iter().enumerate() {
            let mut s = status(m, st, 1_764_075_000 + (m * 3 + k) as i64);
            s["id"] = json!(format!("wamid.cost.{run}.{m}"));
            non_200 += usize::from(post(&app, meta_json(&status_body(vec![s]))).await != 200);
            events += 1;
        }
    }
    Ok(WebhookCost {
        status_events: events,
        non_200,
        requests: counter.to_json(),
        dynamodb_per_status: counter.calls_to("DynamoDB") as f64 / events as f64,
        sqs_per_status: counter.calls_to("SQS") as f64 / events as f64,
        secrets_manager_warm: counter.calls_to("Secrets Manager"),
        first_body_requests,
    })
}
