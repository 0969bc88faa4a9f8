//! The Lambda edge of the template function: the event in, an [`Action`]
//! for [`handler::run`](super::handler::run), its answer out in the
//! caller's shape. Nothing else happens here.
//!
//! One function serves three callers (template.yaml, `TemplatesFunction`):
//! - the admin HTTP API (`AWS_IAM`): an API Gateway v2 event for
//!   `POST /admin/tenants/{tenant_id}/templates` (submit) or `GET` (status),
//!   answered with an API Gateway v2 response;
//! - the hourly EventBridge schedule (`ReconcileHourly`): its `Input`,
//!   `{"action":"reconcile_all"}`, is what the function receives, because a
//!   rule target's constant input replaces the event
//!   (<https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-schedule.html>,
//!   `Input`; <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-events-rule-target.html>);
//! - an operator's direct invoke, the same JSON with any action.
//!
//! Both of the latter are answered `{"status": .., "body": ..}`.
//!
//! The function cannot use `lambda_http::run` as the webhook and admin do:
//! it also takes events that are not HTTP, so it reads the payload as JSON
//! and tells the two kinds apart by type: only an API Gateway v2 event has
//! `requestContext.http`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::warn;

use super::handler::{run, Action};
use crate::ids::TenantId;
use crate::startup::App;

/// Every event the function is wired to receive.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TemplatesEvent {
    /// The admin HTTP API.
    Http(Box<ApiGatewayV2httpRequest>),
    /// The schedule's input, or an operator's direct invoke.
    Invoke(Action),
}

/// The answer to a direct invoke (and to the schedule).
#[derive(Debug, Serialize)]
struct InvokeAnswer {
    status: u16,
    body: Value,
}

/// Reads the event, runs its action, answers in the caller's shape. An
/// event that is neither kind is answered 400 with what was expected.
pub async fn serve(app: &App, event: Value) -> Value {
    match TemplatesEvent::deserialize(&event) {
        Ok(TemplatesEvent::Http(req)) => {
            let (status, body) = match http_action(&req) {
                Ok(action) => run(app, action).await,
                Err(refusal) => refusal,
            };
            json!(http_response(status, &body))
        }
        Ok(TemplatesEvent::Invoke(action)) => {
            let (status, body) = run(app, action).await;
            json!(InvokeAnswer { status, body })
        }
        Err(_) => {
            // Not HTTP, so meant as a direct invoke: say what is wrong with it.
            let why = Action::deserialize(&event)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            warn!(error = %why, "template function event not understood");
            json!(InvokeAnswer {
                status: 400,
                body: json!({
                    "error": format!("expected {{\"action\": \"submit|reconcile|status\", \"tenant_id\": ...}} or {{\"action\": \"reconcile_all\"}}: {why}")
                }),
            })
        }
    }
}

/// The action an admin API request asks for: POST submits, GET lists.
fn http_action(req: &ApiGatewayV2httpRequest) -> Result<Action, (u16, Value)> {
    let Some(raw) = req.path_parameters.get("tenant_id") else {
        return Err((404, json!({"error": "not found"})));
    };
    let tenant_id =
        TenantId::parse(raw.as_str()).map_err(|e| (400, json!({"error": e.to_string()})))?;
    match req.request_context.http.method {
        Method::POST => Ok(Action::Submit { tenant_id }),
        Method::GET => Ok(Action::Status { tenant_id }),
        _ => Err((405, json!({"error": "method not allowed"}))),
    }
}

fn http_response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.body = Some(Body::Text(body.to_string()));
    resp
}
