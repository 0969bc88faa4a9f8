//! The `lambda_http` edge of the admin API: API Gateway's request in, the
//! handler's answer out. Nothing else happens here (and nothing is logged:
//! the body may carry secrets).
//!
//! The caller is read from the HTTP API's request context: with the
//! `AWS_IAM` authoriser, API Gateway puts the signer's identity under
//! `requestContext.authorizer.iam` (`userArn`, `accountId`, `callerId`, …:
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>,
//! `aws_lambda_events::apigw::ApiGatewayRequestAuthorizerIamDescription`).
//! A request without it gets no [`Caller`], and the handler refuses it.

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, Response};

use super::{handle, AdminRequest, Caller};
use crate::startup::App;

/// The IAM identity in an HTTP API (v2) request context, if any. (With
/// only `lambda_http`'s `apigw_http` feature the context has one variant.)
#[allow(irrefutable_let_patterns)]
fn caller(context: Option<&RequestContext>) -> Option<Caller> {
    let RequestContext::ApiGatewayV2(ctx) = context? else {
        return None;
    };
    let iam = ctx.authorizer.as_ref()?.iam.as_ref()?;
    iam.user_arn
        .as_deref()
        .or(iam.caller_id.as_deref())
        .filter(|arn| !arn.trim().is_empty())
        .map(|arn| Caller {
            arn: arn.to_string(),
        })
}

/// Converts, serves, converts back.
pub async fn serve(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let (parts, body) = req.into_parts();
    let caller = caller(parts.extensions.get::<RequestContext>());
    let body = match body {
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let resp = handle(
        app,
        AdminRequest {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            body,
            caller,
        },
    )
    .await;
    let builder = Response::builder().status(resp.status);
    Ok(match resp.body {
        Some(v) => builder
            .header("content-type", "application/json")
            .body(Body::Text(v.to_string()))?,
        None => builder.body(Body::Empty)?,
    })
}
