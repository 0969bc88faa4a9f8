//! The `lambda_http` edge of the webhook handler: API Gateway's request in,
//! the handler's answer out. Nothing else happens here.

use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};

use super::{handle, WebhookRequest};
use crate::startup::App;

/// Converts, serves, converts back.
pub async fn serve(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let query = match req.uri().query() {
        Some(q) if !q.is_empty() => Some(q.to_string()),
        _ => {
            let params = req.query_string_parameters();
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in params.iter() {
                ser.append_pair(k, v);
            }
            Some(ser.finish()).filter(|s| !s.is_empty())
        }
    };
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let resp = handle(
        app,
        WebhookRequest {
            method: parts.method,
            query,
            headers: parts.headers,
            body,
        },
    )
    .await;
    Ok(Response::builder()
        .status(resp.status)
        .header("content-type", resp.content_type)
        .body(match String::from_utf8(resp.body.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(bytes) => Body::Binary(bytes.into_bytes()),
        })?)
}
