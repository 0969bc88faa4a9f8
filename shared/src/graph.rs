//! The Graph API adapter: the only code that talks to Meta.
//!
//! Shapes follow Meta's OpenAPI spec (`POST /{v}/{phone-number-id}/messages`,
//! `POST|GET /{v}/{waba-id}/message_templates`, `GET /{v}/{phone-number-id}`).
//! Errors keep Meta's own body (`code`, `error_subcode`, `message`,
//! `fbtrace_id`) and tell apart the two failures that matter for exactly-once:
//! a request that provably never reached Meta (connect error) and one whose
//! answer was lost (timeout), which may have been accepted.
//!
//! Every request carries the tenant's bearer token, so every URL it goes
//! to is built from the configured `GRAPH_API_BASE_URL`, with one
//! exception: the template list follows Meta's `paging.next`, a full URL
//! from the answer (cursor-based pagination:
//! <https://developers.facebook.com/docs/graph-api/results>). It is followed
//! only when its scheme, host and port are the configured base's; any other
//! ends the listing, reported incomplete ([`TemplateList::complete`]), with
//! a warning that names the refused origin and path but never its query
//! (a query can carry a token).
//!
//! Which version to call, and when a configured one expires, is
//! [`versions`]'s table.

pub mod versions;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use url::Url;

use crate::config::GraphConfig;
pub use versions::{version_warning, VersionWarning, CURRENT_VERSION};

/// Meta's error object (`{"error": {...}}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct MetaError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<Value>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

impl MetaError {
    /// `error_data.details`, Meta's human-readable explanation.
    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref()?.get("details")?.as_str()
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: MetaError,
}

/// Why a Graph call failed.
#[derive(Debug, Error)]
pub enum GraphError {
    /// Meta answered with an error body.
    #[error("Graph API error {} (HTTP {http_status}): {}", .error.code, .error.message)]
    Api {
        http_status: u16,
        error: Box<MetaError>,
        /// Seconds to wait, from `x-business-use-case-usage`
        /// (`estimated_time_to_regain_access`, minutes) when Meta sent it.
        retry_after_secs: Option<u64>,
    },
    /// Meta answered with a non-JSON error (a proxy or load balancer page).
    #[error("Graph API returned HTTP {http_status} without an error body")]
    Http { http_status: u16 },
    /// The connection was never made: Meta did not receive the request.
    #[error("could not connect to the Graph API")]
    Connect(#[source] reqwest::Error),
    /// The request was never sent, for a reason on our side (the tenant's
    /// token could not be read): Meta did not receive it.
    #[error("the Graph API call was not made: {0}")]
    NotSent(&'static str),
    /// No answer in time: Meta may or may not have acted on the request.
    #[error("the Graph API did not answer in time")]
    Timeout(#[source] reqwest::Error),
    /// The request was sent but the exchange broke in another way.
    #[error("the Graph API exchange failed")]
    Transport(#[source] reqwest::Error),
    /// A 2xx answer that does not have the documented shape.
    #[error("unexpected Graph API response: {0}")]
    Decode(String),
    /// The client's TLS configuration could not be built (start-up only).
    #[error("could not configure TLS for the Graph API: {0}")]
    Tls(String),
}

impl GraphError {
    /// Meta's error code, if Meta sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            GraphError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Whether the request may have been acted on by Meta although we did
    /// not get (or could not read) a success answer.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            GraphError::Timeout(_) | GraphError::Transport(_) | GraphError::Decode(_)
        )
    }
}

/// What Meta answers to an accepted send.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SendResponse {
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub contacts: Vec<SendContact>,
    pub messages: Vec<SentMessage>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SendContact {
    pub input: Option<String>,
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SentMessage {
    pub id: String,
    #[serde(default)]
    pub message_status: Option<String>,
}

/// What Meta answers to a template creation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CreatedTemplate {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
}

/// One template from `GET message_templates`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RemoteTemplate {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub rejected_reason: Option<String>,
    #[serde(default)]
    pub quality_score: Option<Value>,
}

#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<RemoteTemplate>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

/// What `GET message_templates` gave, page after page.
#[derive(Debug, Clone)]
pub struct TemplateList {
    pub templates: Vec<RemoteTemplate>,
    /// False when a `paging.next` pointed away from the Graph API's origin
    /// and was not followed: Meta may hold templates not in `templates`.
    pub complete: bool,
}

/// `GET /{phone-number-id}`: what Meta knows of the number.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PhoneNumberInfo {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub verified_name: Option<String>,
    #[serde(default)]
    pub quality_rating: Option<String>,
}

/// The Graph API client. Cheap to clone; one connection pool per process.
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    version: String,
}

impl GraphClient {
    pub fn new(config: &GraphConfig) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                crate::tls::client_config().map_err(|e| GraphError::Tls(e.to_string()))?,
            )
            .connect_timeout(Duration::from_secs(3).min(config.timeout))
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("fincelo-whatsapp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(GraphError::Transport)?;
        Ok(GraphClient {
            http,
            base: config.base_url.clone(),
            version: config.version.clone(),
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| GraphError::Decode("base URL cannot be a base".into()))?;
            path.pop_if_empty().push(&self.version);
            for s in segments {
                path.push(s);
            }
        }
        Ok(url)
    }

    /// `POST /{v}/{phone-number-id}/messages`.
    pub async fn send_message(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        body: &Value,
    ) -> Result<SendResponse, GraphError> {
        let req = self
            .http
            .post(self.url(&[phone_number_id, "messages"])?)
            .bearer_auth(token.expose_secret())
            .json(body);
        let resp: SendResponse = self.execute(req).await?;
        if resp.messages.is_empty() {
            return Err(GraphError::Decode(
                "send response without messages[].id".into(),
            ));
        }
        Ok(resp)
    }

    /// `POST /{v}/{phone-number-id}/messages` with `{"messaging_product":
    /// "whatsapp", "status": "read", "message_id"}`: marks an inbound message
    /// read (two blue ticks for the user). Meta answers `{"success": true}`
    /// (Meta's OpenAPI spec v23.0, example "Send typing indicator and read
    /// receipt"; /work/shared/META-2026.md "Read receipts").
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        message_id: &str,
    ) -> Result<(), GraphError> {
        let req = self
            .http
            .post(self.url(&[phone_number_id, "messages"])?)
            .bearer_auth(token.expose_secret())
            .json(&serde_json::json!({
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": message_id,
            }));
        let _: Value = self.execute(req).await?;
        Ok(())
    }

    /// `POST /{v}/{waba-id}/message_templates`.
    pub async fn create_template(
        &self,
        waba_id: &str,
        token: &SecretString,
        body: &Value,
    ) -> Result<CreatedTemplate, GraphError> {
        let req = self
            .http
            .post(self.url(&[waba_id, "message_templates"])?)
            .bearer_auth(token.expose_secret())
            .json(body);
        self.execute(req).await
    }

    /// Whether `url` is on the configured Graph API's origin: same scheme,
    /// host and port (the default port of the scheme when none is given).
    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// `GET /{v}/{waba-id}/message_templates`, following `paging.next` to
    /// the end, but only on the Graph API's own origin (module docs).
    pub async fn list_templates(
        &self,
        waba_id: &str,
        token: &SecretString,
    ) -> Result<TemplateList, GraphError> {
        let mut url = self.url(&[waba_id, "message_templates"])?;
        url.query_pairs_mut()
            .append_pair(
                "fields",
                "id,name,language,status,category,rejected_reason,quality_score",
            )
            .append_pair("limit", "100");
        let mut out = Vec::new();
        // A bound on pages, so a misbehaving `next` cannot loop forever.
        for _ in 0..1000 {
            let page: TemplatePage = self
                .execute(
                    self.http
                        .get(url.clone())
                        .bearer_auth(token.expose_secret()),
                )
                .await?;
            out.extend(page.data);
            let Some(next) = page.paging.and_then(|p| p.next) else {
                return Ok(TemplateList {
                    templates: out,
                    complete: true,
                });
            };
            let next = Url::parse(&next)
                .map_err(|e| GraphError::Decode(format!("paging.next is not a URL: {e}")))?;
            if !self.same_origin(&next) {
                tracing::warn!(
                    waba_id,
                    next_origin = %next.origin().ascii_serialization(),
                    next_path = next.path(),
                    graph_origin = %self.base.origin().ascii_serialization(),
                    listed = out.len(),
                    "message_templates paging.next points away from the Graph API; not followed, the list is incomplete"
                );
                return Ok(TemplateList {
                    templates: out,
                    complete: false,
                });
            }
            url = next;
        }
        Err(GraphError::Decode(
            "message_templates paging did not end after 1000 pages".into(),
        ))
    }

    /// `GET /{v}/{phone-number-id}`: proves a token works for a number.
    pub async fn phone_number(
        &self,
        phone_number_id: &str,
        token: &SecretString,
    ) -> Result<PhoneNumberInfo, GraphError> {
        let req = self
            .http
            .get(self.url(&[phone_number_id])?)
            .bearer_auth(token.expose_secret());
        self.execute(req).await
    }

    async fn execute<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, GraphError> {
        let resp = req.send().await.map_err(classify_transport)?;
        let status = resp.status();
        let usage = retry_after(resp.headers());
        let bytes = resp.bytes().await.map_err(classify_transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| GraphError::Decode(e.to_string()));
        }
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(env) => Err(GraphError::Api {
                http_status: status.as_u16(),
                error: Box::new(env.error),
                retry_after_secs: usage,
            }),
            Err(_) => Err(GraphError::Http {
                http_status: status.as_u16(),
            }),
        }
    }
}

fn classify_transport(e: reqwest::Error) -> GraphError {
    if e.is_connect() {
        GraphError::Connect(e)
    } else if e.is_timeout() {
        GraphError::Timeout(e)
    } else {
        GraphError::Transport(e)
    }
}

/// Reads Meta's `x-business-use-case-usage` header:
/// `{"<id>": [{"type": "...", "call_count": .., "estimated_time_to_regain_access": <minutes>}]}`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let raw = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let v: Value = serde_json::from_str(raw).ok()?;
    v.as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u.get("estimated_time_to_regain_access")?.as_u64())
        .max()
        .filter(|m| *m > 0)
        .map(|minutes| minutes * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_client_builds_for_https() {
        assert!(GraphClient::new(&GraphConfig {
            base_url: Url::parse("https://graph.facebook.com").expect("url"),
            version: "v23.0".into(),
            timeout: Duration::from_secs(5),
        })
        .is_ok());
    }

    #[test]
    fn usage_header_gives_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":100,"estimated_time_to_regain_access":2}]}"#.parse().expect("header"),
        );
        assert_eq!(retry_after(&h), Some(120));
        h.insert(
            "x-business-use-case-usage",
            "garbage".parse().expect("header"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn urls_carry_the_version_and_escape_segments() {
        let c = GraphClient::new(&GraphConfig {
            base_url: Url::parse("http://127.0.0.1:9/").expect("url"),
            version: "v23.0".into(),
            timeout: Duration::from_secs(1),
        })
        .expect("client");
        assert_eq!(
            c.url(&["123", "messages"]).expect("url").as_str(),
            "http://127.0.0.1:9/v23.0/123/messages"
        );
        assert_eq!(
            c.url(&["../x"]).expect("url").as_str(),
            "http://127.0.0.1:9/v23.0/..%2Fx"
        );
    }
}
