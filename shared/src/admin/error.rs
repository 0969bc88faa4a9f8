//! The admin API's errors and the one place they become HTTP answers.
//!
//! Every answer body is `{"error": {"code", "message"}}`. Messages name the
//! field or rule that failed and never echo a submitted value: a submitted
//! value may be a token. Store and Secrets Manager failures are logged with
//! their source and answered with a generic 502.

use serde_json::{json, Value};
use thiserror::Error;
use tracing::error;

use crate::graph::GraphError;
use crate::queues::QueueError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// Why an admin request failed.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The request itself is wrong (path, body, a field).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The request context carries no IAM identity: the route was not
    /// behind the `AWS_IAM` authoriser.
    #[error("the request carries no IAM identity; admin routes need a SigV4-signed request behind the AWS_IAM authoriser")]
    NoCaller,
    /// The request is valid, but what it names is not in a state that
    /// allows it (e.g. a redrive of a key that is not parked). The message
    /// says the state in plain words.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A phone number id, WABA id or verify token already belongs to another tenant.
    #[error("the phone number id, WABA id or verify token is already used by another tenant")]
    AliasTaken,
    /// Meta refused the token (or the number) when we checked it.
    #[error("Meta refused the token: {message}")]
    MetaRefused {
        meta_code: i64,
        meta_subcode: Option<i64>,
        /// Meta's own message, e.g. "Invalid OAuth access token - Cannot parse access token".
        message: String,
        fbtrace_id: Option<String>,
    },
    /// Meta could not be asked (connection, timeout, 5xx without a body).
    #[error("the Graph API could not be reached to check the token")]
    GraphUnavailable(#[source] GraphError),
    #[error("the table could not be read or written")]
    Store(#[from] StoreError),
    #[error("the tenant secret could not be read or written")]
    Secrets(#[from] SecretsError),
    #[error("the send queue could not be written")]
    Queue(#[from] QueueError),
    /// The built-in rate card does not read (its unit test guards this).
    #[error("the rate card could not be read")]
    RateCard(#[source] &'static crate::costs::RateCardError),
}

impl AdminError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, what: impl Into<String>) -> Self {
        AdminError::NotFound {
            code,
            what: what.into(),
        }
    }

    /// The HTTP status and the body of the answer. Internal failures are
    /// logged here, once, with their source chain.
    pub fn to_response(&self) -> (u16, Value) {
        let (status, code, message) = match self {
            AdminError::Invalid { code, message } => (400, *code, message.clone()),
            AdminError::NotFound { code, .. } => (404, *code, self.to_string()),
            AdminError::MethodNotAllowed => (405, "method_not_allowed", self.to_string()),
            AdminError::NoCaller => (403, "forbidden", self.to_string()),
            AdminError::Conflict { code, message } => (409, *code, message.clone()),
            AdminError::AliasTaken => (409, "conflict", self.to_string()),
            AdminError::MetaRefused {
                meta_code,
                meta_subcode,
                message,
                fbtrace_id,
            } => {
                return (
                    422,
                    json!({"error": {
                        "code": "meta_refused",
                        "message": format!("Meta refused the token: {message}"),
                        "meta": {"code": meta_code, "error_subcode": meta_subcode, "message": message, "fbtrace_id": fbtrace_id},
                    }}),
                )
            }
            AdminError::GraphUnavailable(_) => (502, "graph_unavailable", self.to_string()),
            AdminError::RateCard(_) => (500, "internal", format!("{self}; see the logs")),
            AdminError::Store(_) | AdminError::Secrets(_) | AdminError::Queue(_) => {
                (502, "dependency_failed", format!("{self}; see the logs"))
            }
        };
        if status >= 500 {
            error!(error = %self, source = ?std::error::Error::source(self).map(ToString::to_string), "admin request failed");
        }
        (status, json!({"error": {"code": code, "message": message}}))
    }
}

impl From<GraphError> for AdminError {
    /// A 4xx with Meta's error body means the token (or the number) is not
    /// usable: refused with Meta's reason. Rate limits (4, 80007, 130429),
    /// 5xx and transport failures mean Meta could not answer: 502.
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Api {
                http_status, error, ..
            } if (400..500).contains(&http_status) && !matches!(error.code, 4 | 80007 | 130429) => {
                AdminError::MetaRefused {
                    meta_code: error.code,
                    meta_subcode: error.error_subcode,
                    message: error.message,
                    fbtrace_id: error.fbtrace_id,
                }
            }
            other => AdminError::GraphUnavailable(other),
        }
    }
}
