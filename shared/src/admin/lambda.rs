//! The `lambda_http` edge of the admin API: API Gateway's request in, the
//! handler's answer out. Nothing else happens here (and nothing is logged:
//! the body may carry secrets).

use bytes::Bytes;
use lambda_http::{Body, Request, Response};

use super::{handle, AdminRequest};
use crate::startup::App;

/// Converts, serves, converts back.
pub async fn serve(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let (parts, body) = req.into_parts();
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
            body,
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
