//! The HTTP client the AWS SDK clients (DynamoDB, SQS, Secrets Manager, and
//! aws-config's own providers) send their requests through: reqwest over
//! the same rustls configuration as the Graph client ([`crate::tls`]).
//!
//! # Why not the SDK's default client
//! The default client builds its TLS configuration from the system's root
//! certificates, which it reads and decodes from `/etc/ssl/certs` when the
//! first SDK client is built: the largest part of every function's init in
//! the benchmark (issue 9). See [`crate::tls`] for the root set used instead.
//!
//! # Why not the SDK's own client with a chosen root set
//! `aws-smithy-http-client` (1.5) can be given the roots to trust through
//! `tls::TlsContext` and `TrustStore`, but a `TrustStore` takes PEM
//! certificates only, not the parsed trust anchors `webpki-roots` compiles
//! in. Every connector it builds then decodes the whole Mozilla set again
//! (`pem_slice_iter`, then `RootCertStore::add` per certificate), and it
//! builds one connector when each SDK client is built
//! (`validate_base_client_config`, "so that native certs load at client
//! initialization time") and one per distinct timeout setting at the
//! first request. Measured on the 2-core build VM on 2026-11-30, release,
//! one fresh process per sample, 31 samples, under a load average of 3.6:
//! building the rustls configuration from the compiled-in anchors (this
//! module, 120 roots) took a median of 21 µs; from the same set as PEM
//! certificates (`webpki-root-certs`, 118 roots), parsed the way the SDK's
//! client does, a median of 1,136 µs (p90 1,617 µs). Three SDK clients
//! per function make that about 3.4 ms more init, against a budget of
//! 5 ms over hello-world that the functions already use +2.8 to +3.7 ms of
//! (`docs/bench-2026-11-26.md`). So this module stays. The measuring
//! program was a scratch crate, not kept in the repository.
//!
//! # What it keeps from the default client
//! The SDK's retry strategy decides what to retry from the [`ConnectorError`]
//! kind, so failures are classified as the default client does: a timeout is
//! `timeout`, a connection never made or broken mid-exchange is `io` (both
//! retried), anything else is `other`. The connect and read timeouts of
//! [`HttpConnectorSettings`] are applied, and one reqwest client (one
//! connection pool) is kept per distinct setting.
//!
//! Request bodies must be in memory, which every request of this service is
//! (JSON and form bodies); a streaming body is refused as a user error rather
//! than sent truncated.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::tls;

/// The SDK's HTTP client. No network traffic; the TLS configuration is
/// built here once and shared by every connector.
pub fn http_client() -> Result<SharedHttpClient, rustls::Error> {
    Ok(SharedHttpClient::new(ReqwestClient {
        tls: tls::client_config()?,
        connectors: Mutex::new(Vec::new()),
    }))
}

/// One reqwest client per distinct (connect timeout, read timeout).
#[derive(Debug)]
struct ReqwestClient {
    tls: rustls::ClientConfig,
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, c)) = connectors.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(self.tls.clone(), key));
        connectors.push((key, connector.clone()));
        connector
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new(
            "reqwest",
            Some(Cow::Borrowed("0.13")),
        ))
    }
}

#[derive(Debug)]
struct Connector {
    /// `Err` when reqwest refused the configuration; every call then fails
    /// with that reason instead of the process panicking.
    http: Result<reqwest::Client, String>,
}

impl Connector {
    fn new(tls: rustls::ClientConfig, (connect, read): Timeouts) -> Connector {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // Like the SDK's default client: no proxy taken from the
            // environment (Lambda has none; locally it would catch moto).
            .no_proxy()
            // The SDK acts on a 3xx itself (S3's region redirect); the
            // default client does not follow them either.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(d) = connect {
            builder = builder.connect_timeout(d);
        }
        if let Some(d) = read {
            builder = builder.read_timeout(d);
        }
        Connector {
            http: builder.build().map_err(|e| e.to_string()),
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = match &self.http {
            Ok(h) => h.clone(),
            Err(e) => {
                let e: Box<dyn StdError + Send + Sync> = e.clone().into();
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e, None)));
            }
        };
        let request = match to_reqwest(&http, request) {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e))),
        };
        HttpConnectorFuture::new(async move {
            let response = http.execute(request).await.map_err(classify)?;
            let status = response.status();
            let headers = response.headers().clone();
            // The whole body is read here, under the read timeout, so a body
            // broken off mid-way is a retryable `io` error, as with the SDK's
            // client, and not a parse error later.
            let body = response.bytes().await.map_err(classify)?;
            let mut out = http::Response::new(SdkBody::from(body));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            HttpResponse::try_from(out).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

fn to_reqwest(http: &reqwest::Client, request: HttpRequest) -> Result<reqwest::Request, BoxError> {
    let request = request.try_into_http1x()?;
    let (parts, body) = request.into_parts();
    let bytes = body
        .bytes()
        .ok_or("a streaming request body is not supported by this client")?
        .to_vec();
    let url = reqwest::Url::parse(&parts.uri.to_string())?;
    let mut built = http.request(parts.method, url).body(bytes).build()?;
    *built.headers_mut() = parts.headers;
    Ok(built)
}

/// The SDK's retry classes for a reqwest failure.
fn classify(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || has_io_source(&err) {
        ConnectorError::io(err.into())
    } else if err.is_builder() {
        ConnectorError::user(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

/// Whether an `io::Error` is in the chain: a connection reset or closed
/// mid-exchange, which the SDK's client also classifies as `io`.
fn has_io_source(err: &(dyn StdError + 'static)) -> bool {
    let mut next = err.source();
    while let Some(e) = next {
        if e.is::<std::io::Error>() {
            return true;
        }
        // hyper reports a connection closed before the message completed as
        // its own error without an io source.
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_closed() || h.is_canceled() || h.is_incomplete_message() {
                return true;
            }
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn connector(read: Option<Duration>) -> Connector {
        let tls = tls::client_config().expect("tls");
        Connector::new(tls, (Some(Duration::from_secs(2)), read))
    }

    fn post(url: &str, body: &'static str) -> HttpRequest {
        let req = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(SdkBody::from(body))
            .expect("request");
        HttpRequest::try_from(req).expect("smithy request")
    }

    /// A server that answers one connection with `answer` and returns what it read.
    async fn serve_once(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the 2-byte body of the test request.
            while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"{}") {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).await.expect("write");
            s.shutdown().await.ok();
            String::from_utf8_lossy(&got).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_request_and_its_answer_cross_unchanged() {
        let (url, server) = serve_once(
            b"HTTP/1.1 418 I'm a teapot\r\nx-amzn-requestid: r1\r\ncontent-length: 5\r\n\r\nhello",
        )
        .await;
        let resp = connector(None)
            .call(post(&url, "{}"))
            .await
            .expect("answer");
        assert_eq!(resp.status().as_u16(), 418);
        assert_eq!(resp.headers().get("x-amzn-requestid"), Some("r1"));
        assert_eq!(resp.body().bytes(), Some(&b"hello"[..]));
        let seen = server.await.expect("server").to_ascii_lowercase();
        assert!(seen.starts_with("post / http/1.1"), "{seen}");
        assert!(
            seen.contains("x-amz-target: dynamodb_20120810.getitem"),
            "{seen}"
        );
        assert!(seen.ends_with("\r\n\r\n{}"), "{seen}");
    }

    #[tokio::test]
    async fn failures_get_the_sdks_retry_classes() {
        // Nothing listening: the request never left, `io` (retried).
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", closed.local_addr().expect("addr"));
        drop(closed);
        let err = connector(None)
            .call(post(&url, "{}"))
            .await
            .expect_err("refused");
        assert!(err.is_io(), "{err:?}");

        // Accepted, never answered: `timeout` under the read timeout.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", silent.local_addr().expect("addr"));
        let hold = tokio::spawn(async move {
            let conn = silent.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let err = connector(Some(Duration::from_millis(300)))
            .call(post(&url, "{}"))
            .await
            .expect_err("silent");
        assert!(err.is_timeout(), "{err:?}");
        hold.abort();

        // The body broken off: `io`, so the SDK retries it instead of
        // failing to parse half a response.
        let (url, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"Item\":").await;
        let err = connector(None)
            .call(post(&url, "{}"))
            .await
            .expect_err("cut");
        assert!(err.is_io(), "{err:?}");
    }
}
