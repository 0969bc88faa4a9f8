//! Meta's error bodies, built once, with the HTTP status Meta uses for each.
//!
//! Every Graph API error the sandbox returns goes through [`MetaError`], so the
//! body always has Meta's shape (`{"error":{"message","type","code",
//! "error_subcode"?,"error_data":{"messaging_product","details"},"fbtrace_id"}}`,
//! the spec's `GraphAPIError`) and the status is the one in Meta's table.
//!
//! Sources, per code (Meta's "Cloud API error codes" page,
//! developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes,
//! whose table has an "HTTP Status Code" column; the Graph API error-handling
//! page for 100/33 and 190; the OpenAPI spec's `getPhoneNumberById` examples for
//! 190/104 under 401):
//!
//! | code | subcode | title | HTTP |
//! |---|---|---|---|
//! | 2 | - | API Service (temporary, overloaded) | 503 |
//! | 100 | - | Invalid parameter | 400 |
//! | 100 | 33 | Unsupported post/get request: object does not exist | 400 |
//! | 100 | 2388024 | Content in this language already exists (template) | 400 |
//! | 104 | - | An access token is required | 401 |
//! | 190 | - | Invalid OAuth access token | 401 |
//! | 130429 | - | Rate limit hit (Cloud API throughput) | 429 |
//! | 131026 | - | Message Undeliverable | 400 |
//! | 131047 | - | Re-engagement message (24 h window) | 400 |
//! | 131056 | - | (Business Account, Consumer Account) pair rate limit hit | 400 |
//! | 132000 | - | Number of parameters does not match the expected number of params | 400 |
//! | 132001 | - | Template name does not exist in the translation (or not approved) | 404 |
//! | 132015 | - | Template is Paused | 400 |
//! | 132016 | - | Template is Disabled | 400 |
//! | 131009 | - | Parameter value is not valid | 400 |
//! | 132018 | - | There's an issue with the parameters in your template message (v23+) | 400 |
//! | 131049 | - | This message was not delivered to maintain healthy ecosystem engagement. | 400, by webhook |
//! | 131050 | - | Unable to deliver the message (user stopped marketing messages) | 400, by webhook |
//! | 131042 | - | Business eligibility payment issue | 400, by webhook |
//! | 130472 | - | User's number is part of an experiment | 400, by webhook |
//! | 131062 | - | BSUID recipients are not supported for this message | 400 |
//! | 131063 | - | marketing template sent through the Cloud API (sandbox wording) | 400 |
//! | 137000 | - | identity key hash mismatch (sandbox wording) | 400 |
//!
//! Sources for the codes added in 2025-2026, each read with the search tool:
//! 131049's title and details are those of the `failed` status example in
//! Meta's BSUID document (May 2026); 131050's details are Meta's as quoted by
//! dualhook.com/docs/whatsapp-error-131050 ("This recipient has chosen to stop
//! receiving marketing messages on WhatsApp from your business"); 131042's
//! title and details are Meta's table as quoted by dualhook.com and
//! gohighlevel; 130472's are Meta's table as quoted by Manychat, and Meta's
//! "Experiments" page says it arrives in a `failed` status webhook; 131062's
//! details are Meta's BSUID document's; 132018 is Meta's v23 template
//! parameter error as quoted by Meta's partners (beeoneten.com). 131063's and
//! 137000's wording could not be found in Meta's pages reachable here: the
//! codes are Meta's (META-2026.md), the titles and details are the sandbox's.
//!
//! Meta puts the title into `message` as `(#CODE) Title`; the sandbox does the same.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One Graph API error as Meta would return it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaError {
    pub http_status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub kind: &'static str,
    pub message: String,
    /// The title Meta uses in status webhooks' `errors[].title`.
    pub title: &'static str,
    /// `error_data.details`, where Meta sends one.
    pub details: Option<String>,
    pub is_transient: bool,
}

impl MetaError {
    fn whatsapp(http_status: StatusCode, code: i64, title: &'static str, details: String) -> Self {
        MetaError {
            http_status,
            code,
            subcode: None,
            kind: "OAuthException",
            message: format!("(#{code}) {title}"),
            title,
            details: Some(details),
            is_transient: false,
        }
    }

    /// 104: no `Authorization: Bearer` header at all.
    pub fn missing_token() -> Self {
        MetaError {
            http_status: StatusCode::UNAUTHORIZED,
            code: 104,
            subcode: None,
            kind: "OAuthException",
            message: "An access token is required to request this resource.".into(),
            title: "Access token required",
            details: None,
            is_transient: false,
        }
    }

    /// 190: the token is not this tenant's (wrong, or rotated out).
    pub fn invalid_token() -> Self {
        MetaError {
            http_status: StatusCode::UNAUTHORIZED,
            code: 190,
            subcode: None,
            kind: "OAuthException",
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            title: "Invalid OAuth access token",
            details: None,
            is_transient: false,
        }
    }

    /// 100/33: Graph's answer for an id that is unknown (or not visible to the token).
    pub fn unknown_object(method: &str, id: &str) -> Self {
        MetaError {
            http_status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: Some(33),
            kind: "GraphMethodException",
            message: format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
            title: "Unsupported request",
            details: None,
            is_transient: false,
        }
    }

    /// 100: malformed body or bad parameter.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        let mut e = Self::whatsapp(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter",
            details.into(),
        );
        e.message = "(#100) Invalid parameter".into();
        e
    }

    /// 100/2388024: a template with this name already exists in this language.
    pub fn template_exists(name: &str, language: &str) -> Self {
        MetaError {
            http_status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: Some(2388024),
            kind: "OAuthException",
            message: "Invalid parameter".into(),
            title: "Content in This Language Already Exists",
            details: Some(format!(
                "There is already {language} content for this template ({name}). You can create a new template and try again."
            )),
            is_transient: false,
        }
    }

    /// 2: transient service error (the 5xx fault).
    pub fn service_unavailable() -> Self {
        MetaError {
            http_status: StatusCode::SERVICE_UNAVAILABLE,
            code: 2,
            subcode: None,
            kind: "OAuthException",
            message: "Service temporarily unavailable".into(),
            title: "API Service",
            details: None,
            is_transient: true,
        }
    }

    /// 130429: the phone number's messages-per-second cap.
    pub fn throughput(cap: u32) -> Self {
        Self::whatsapp(
            StatusCode::TOO_MANY_REQUESTS,
            130429,
            "Rate limit hit",
            format!("Cloud API message throughput has been reached ({cap} messages per second)."),
        )
    }

    /// 131026: the recipient cannot receive WhatsApp messages.
    pub fn undeliverable() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131026,
            "Message Undeliverable",
            "Message Undeliverable.".into(),
        )
    }

    /// 131047: free-form message outside the 24 h customer service window.
    pub fn reengagement() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into(),
        )
    }

    /// 131056: too many messages to the same recipient in a short time.
    pub fn pair_rate_limit() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.".into(),
        )
    }

    /// 132000: body parameter count differs from the template's placeholders.
    pub fn param_count(expected: usize, got: usize) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            format!("body: number of localizable_params ({got}) does not match the expected number of params ({expected})"),
        )
    }

    /// 132001: no such template in this language, or it is not approved.
    pub fn template_missing(name: &str, language: &str) -> Self {
        Self::whatsapp(
            StatusCode::NOT_FOUND,
            132001,
            "Template name does not exist in the translation",
            format!("template name ({name}) does not exist in {language}"),
        )
    }

    /// 132015: the template was paused for low quality.
    pub fn template_paused(name: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132015,
            "Template is Paused",
            format!("Template {name} is paused due to low quality so it cannot be sent in a template message."),
        )
    }

    /// 132016: the template was disabled.
    pub fn template_disabled(name: &str) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132016,
            "Template is Disabled",
            format!("Template {name} has been paused too many times due to low quality and is now permanently disabled."),
        )
    }

    /// 131009: a value outside Meta's limits (interactive titles, ids, counts).
    pub fn param_value(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131009,
            "Parameter value is not valid",
            details.into(),
        )
    }

    /// 132018: a template parameter that does not fit the template (v23+).
    pub fn template_params(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132018,
            "There's an issue with the parameters in your template message",
            details.into(),
        )
    }

    /// 131049: Meta's per-user marketing limit (a marketing template not delivered).
    pub fn marketing_limit() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.".into(),
        )
    }

    /// 131050: the user stopped marketing messages from this business.
    pub fn marketing_stopped() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131050,
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.".into(),
        )
    }

    /// 131042: the business's payment method; every send fails until fixed.
    pub fn payment_issue() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131042,
            "Business eligibility payment issue",
            "Message failed to send because there were one or more errors related to your payment method.".into(),
        )
    }

    /// 130472: the user is in Meta's marketing message experiment.
    pub fn experiment() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            130472,
            "User's number is part of an experiment",
            "Message was not sent as part of an experiment.".into(),
        )
    }

    /// 131062: this message type cannot go to a BSUID (authentication templates).
    pub fn bsuid_not_supported() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131062,
            "Business-scoped User ID (BSUID) recipients are not supported for this message.",
            "Business-scoped User ID (BSUID) recipients are not supported for this message.".into(),
        )
    }

    /// 131063: marketing templates for this business go through the Marketing
    /// Messages API, not the Cloud API's `/messages` (wording: the sandbox's).
    pub fn marketing_needs_mm_api() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131063,
            "Marketing template messages are not supported on Cloud API for this business",
            "Send marketing templates for this WhatsApp Business Account with the Marketing Messages API (/marketing_messages).".into(),
        )
    }

    /// 137000: `recipient_identity_key_hash` is not the user's current one (wording: the sandbox's).
    pub fn identity_mismatch() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            137000,
            "Identity key hash mismatch",
            "Message failed to send because the recipient's identity key hash does not match recipient_identity_key_hash: the user may have changed phone or reinstalled WhatsApp.".into(),
        )
    }

    /// The Graph API response body.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": fbtrace_id(),
        });
        if let Some(sub) = self.subcode {
            error["error_subcode"] = json!(sub);
        }
        if let Some(details) = &self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
        }
        if self.is_transient {
            error["is_transient"] = json!(true);
        }
        if self.subcode == Some(2388024) {
            error["error_user_title"] = json!(self.title);
            error["error_user_msg"] = json!(self.details.clone().unwrap_or_default());
        }
        json!({ "error": error })
    }

    /// The `errors[]` entry Meta puts in a `failed` status webhook.
    pub fn webhook_error(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details.clone().unwrap_or_else(|| self.title.to_string())},
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        })
    }
}

impl IntoResponse for MetaError {
    fn into_response(self) -> Response {
        (self.http_status, axum::Json(self.body())).into_response()
    }
}

/// A random id shaped like Meta's `fbtrace_id` (opaque, ~23 chars).
fn fbtrace_id() -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("A{}", &raw[..22])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reengagement_body_has_metas_shape() {
        let body = MetaError::reengagement().body();
        assert_eq!(body["error"]["code"], 131047);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("(#131047)"));
        assert!(body["error"]["fbtrace_id"].is_string());
    }

    #[test]
    fn unknown_object_carries_subcode_33() {
        let e = MetaError::unknown_object("post", "123");
        assert_eq!(e.body()["error"]["error_subcode"], 33);
        assert_eq!(e.http_status, StatusCode::BAD_REQUEST);
    }
}
