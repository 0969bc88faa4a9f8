//! Parsing `POST /{Phone-Number-ID}/messages` bodies into what they ask for:
//! a text, a template (with quick-reply button parameters), an interactive
//! reply-button message, or a read receipt; addressed `to` a phone number or
//! to a `recipient` business-scoped user ID.
//!
//! Any shape error is Meta's 100 "Invalid parameter"; a value outside Meta's
//! limits is 131009 "Parameter value is not valid"; a bad template button
//! parameter is 132018 (the template-parameter error Meta added in v23).
//!
//! Sources:
//! - Addressing: Meta's BSUID document
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids>,
//!   May 2026): `recipient` takes a BSUID or parent BSUID; "If both `to` and
//!   `recipient` are present, `to` takes precedence". A BSUID is an ISO 3166
//!   alpha-2 country code, a period and up to 128 alphanumerics; a parent BSUID
//!   has `ENT.` after the period.
//! - Interactive reply buttons: Meta's OpenAPI spec (v23.0, `ActionObject`,
//!   `BodyObject`, `HeaderObject`, `FooterObject`): body text ≤ 1024, header
//!   and footer text ≤ 60, 1 to 3 buttons of type `reply`, `reply.id` ≤ 256
//!   with no leading/trailing spaces, `reply.title` ≤ 20, not empty and unique.
//! - Template buttons: the spec's `ButtonComponent` (`type: button`,
//!   `sub_type`, `index`, `parameters: [{type: payload, payload}]`).
//! - Read receipts: the spec's example "Send typing indicator and read
//!   receipt": `{messaging_product, status: "read", message_id, typing_indicator?: {type: "text"}}`.

use std::collections::HashSet;

use serde_json::Value;

use crate::errors::MetaError;

/// Longest quick-reply payload the sandbox accepts. Meta's template reference
/// documents the payload as "developer-defined" without a length; 256 is the
/// limit Meta's spec gives the reply-button `id`, the same role in
/// interactive messages. Not verified against Meta for templates.
pub const QUICK_REPLY_PAYLOAD_MAX: usize = 256;

/// Interactive limits from Meta's spec (see the module doc).
pub const INTERACTIVE_BODY_MAX: usize = 1024;
pub const INTERACTIVE_HEADER_FOOTER_MAX: usize = 60;
pub const REPLY_TITLE_MAX: usize = 20;
pub const REPLY_ID_MAX: usize = 256;
pub const REPLY_BUTTONS_MAX: usize = 3;

/// Who a send is addressed to.
#[derive(Debug, Clone, PartialEq)]
pub enum Addressee {
    /// `to`: exactly as sent, and its digits.
    Phone { to: String, digits: String },
    /// `recipient`: a BSUID or parent BSUID.
    Bsuid(String),
}

impl Addressee {
    /// What Meta echoes as `contacts[].input`.
    pub fn input(&self) -> &str {
        match self {
            Addressee::Phone { to, .. } => to,
            Addressee::Bsuid(id) => id,
        }
    }
}

/// One quick-reply button parameter of a template send.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickReplyParam {
    pub index: usize,
    pub payload: String,
}

/// One reply button of an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// What a send request asks for, once parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum SendKind {
    Text {
        body: String,
        preview_url: bool,
    },
    Template {
        name: String,
        language: String,
        body_params: Vec<String>,
        quick_replies: Vec<QuickReplyParam>,
    },
    /// `type: interactive` with `interactive.type: button`.
    Buttons {
        body: String,
        buttons: Vec<ReplyButton>,
        raw: Value,
    },
}

impl SendKind {
    /// Meta's message `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SendKind::Text { .. } => "text",
            SendKind::Template { .. } => "template",
            SendKind::Buttons { .. } => "interactive",
        }
    }
}

/// A validated send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub addressee: Addressee,
    pub kind: SendKind,
    pub biz_opaque_callback_data: Option<String>,
    /// `recipient_identity_key_hash`, when the business checks identity.
    pub identity_key_hash: Option<String>,
    /// `context.message_id`: the message this one replies to.
    pub reply_to: Option<String>,
}

/// A read receipt (`status: read`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    pub message_id: String,
    pub typing_indicator: bool,
}

/// A `POST /messages` body: a message, or a read receipt.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagesRequest {
    Send(SendRequest),
    Read(ReadRequest),
}

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The digits of a phone number, or `None` if it is not one (7..=15 digits, E.164).
pub fn wa_id_of(to: &str) -> Option<String> {
    let trimmed = to.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Some(digits)
    } else {
        None
    }
}

fn alnum_1_to_128(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn country_prefix(s: &str) -> Option<&str> {
    let (cc, rest) = s.split_once('.')?;
    (cc.len() == 2 && cc.chars().all(|c| c.is_ascii_uppercase())).then_some(rest)
}

/// A business-scoped user ID: `CC.` and up to 128 alphanumerics.
pub fn is_bsuid(s: &str) -> bool {
    country_prefix(s).is_some_and(alnum_1_to_128)
}

/// A parent BSUID: `CC.ENT.` and up to 128 alphanumerics.
pub fn is_parent_bsuid(s: &str) -> bool {
    country_prefix(s)
        .and_then(|rest| rest.strip_prefix("ENT."))
        .is_some_and(alnum_1_to_128)
}

/// Parses a `/messages` body; see the module doc for the codes.
pub fn parse_messages(body: &Value) -> Result<MessagesRequest, MetaError> {
    if !body.is_object() {
        return Err(MetaError::invalid_parameter(
            "Request body must be a JSON object.",
        ));
    }
    match str_field(body, "messaging_product") {
        Some("whatsapp") => {}
        _ => {
            return Err(MetaError::invalid_parameter(
                "The parameter messaging_product is required and must be \"whatsapp\".",
            ))
        }
    }
    if body.get("status").is_some() {
        return parse_read(body).map(MessagesRequest::Read);
    }
    parse_send(body).map(MessagesRequest::Send)
}

fn parse_read(body: &Value) -> Result<ReadRequest, MetaError> {
    if str_field(body, "status") != Some("read") {
        return Err(MetaError::invalid_parameter(
            "Param status must be \"read\".",
        ));
    }
    let message_id = str_field(body, "message_id")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| MetaError::invalid_parameter("The parameter message_id is required."))?;
    let typing_indicator = match body.get("typing_indicator") {
        None | Some(Value::Null) => false,
        Some(t) if str_field(t, "type") == Some("text") => true,
        Some(_) => {
            return Err(MetaError::invalid_parameter(
                "Param typing_indicator['type'] must be \"text\".",
            ))
        }
    };
    Ok(ReadRequest {
        message_id: message_id.to_string(),
        typing_indicator,
    })
}

fn parse_addressee(body: &Value) -> Result<Addressee, MetaError> {
    if let Some(to) = str_field(body, "to") {
        let digits = wa_id_of(to).ok_or_else(|| {
            MetaError::invalid_parameter(format!(
                "Param to must be a valid phone number, got '{to}'."
            ))
        })?;
        return Ok(Addressee::Phone {
            to: to.to_string(),
            digits,
        });
    }
    match str_field(body, "recipient") {
        Some(r) if is_bsuid(r) || is_parent_bsuid(r) => Ok(Addressee::Bsuid(r.to_string())),
        Some(r) => Err(MetaError::invalid_parameter(format!(
            "Param recipient must be a business-scoped user ID (country code, period, up to 128 alphanumerics), got '{r}'."
        ))),
        None => Err(MetaError::invalid_parameter(
            "The parameter to or recipient is required.",
        )),
    }
}

/// Parses a message send; any shape error is Meta's 100 "Invalid parameter".
///
/// The sandbox supports the types this project sends, `text`, `template` and
/// `interactive` (reply buttons); any other `type` is refused with 100.
pub fn parse_send(body: &Value) -> Result<SendRequest, MetaError> {
    if str_field(body, "messaging_product") != Some("whatsapp") {
        return Err(MetaError::invalid_parameter(
            "The parameter messaging_product is required and must be \"whatsapp\".",
        ));
    }
    if let Some(rt) = body.get("recipient_type") {
        if rt.as_str() != Some("individual") {
            return Err(MetaError::invalid_parameter(
                "Param recipient_type must be \"individual\".",
            ));
        }
    }
    let addressee = parse_addressee(body)?;
    let biz_opaque_callback_data = match body.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 512 => Some(s.clone()),
        Some(_) => {
            return Err(MetaError::invalid_parameter(
                "Param biz_opaque_callback_data must be a string of at most 512 characters.",
            ))
        }
    };
    let identity_key_hash = str_field(body, "recipient_identity_key_hash").map(String::from);
    let reply_to = body
        .get("context")
        .and_then(|c| str_field(c, "message_id"))
        .map(String::from);
    let kind = match str_field(body, "type").unwrap_or("text") {
        "text" => parse_text(body)?,
        "template" => parse_template(body)?,
        "interactive" => parse_interactive(body)?,
        other => {
            return Err(MetaError::invalid_parameter(format!(
                "Param type must be one of {{text, template, interactive}} in the sandbox, got '{other}'."
            )))
        }
    };
    Ok(SendRequest {
        addressee,
        kind,
        biz_opaque_callback_data,
        identity_key_hash,
        reply_to,
    })
}

fn parse_text(body: &Value) -> Result<SendKind, MetaError> {
    let text = body
        .get("text")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter text is required."))?;
    let b = str_field(text, "body")
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| MetaError::invalid_parameter("The parameter text['body'] is required."))?;
    if b.chars().count() > 4096 {
        return Err(MetaError::invalid_parameter(
            "Param text['body'] must be at most 4096 characters.",
        ));
    }
    let preview_url = text
        .get("preview_url")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(SendKind::Text {
        body: b.to_string(),
        preview_url,
    })
}

fn parse_template(body: &Value) -> Result<SendKind, MetaError> {
    let t = body
        .get("template")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter template is required."))?;
    let name = str_field(t, "name").ok_or_else(|| {
        MetaError::invalid_parameter("The parameter template['name'] is required.")
    })?;
    let language = t
        .get("language")
        .and_then(|l| str_field(l, "code"))
        .ok_or_else(|| {
            MetaError::invalid_parameter("The parameter template['language']['code'] is required.")
        })?;
    let mut body_params = Vec::new();
    let mut quick_replies = Vec::new();
    if let Some(components) = t.get("components") {
        let list = components.as_array().ok_or_else(|| {
            MetaError::invalid_parameter("Param template['components'] must be an array.")
        })?;
        for c in list {
            match str_field(c, "type").map(str::to_ascii_lowercase).as_deref() {
                Some("body") => body_params.extend(parse_body_params(c)?),
                Some("button") => quick_replies.push(parse_button_component(c)?),
                _ => {}
            }
        }
    }
    let mut seen = HashSet::new();
    if let Some(dup) = quick_replies.iter().find(|q| !seen.insert(q.index)) {
        return Err(MetaError::template_params(format!(
            "buttons: index {} is given more than once",
            dup.index
        )));
    }
    Ok(SendKind::Template {
        name: name.to_string(),
        language: language.to_string(),
        body_params,
        quick_replies,
    })
}

fn parse_body_params(c: &Value) -> Result<Vec<String>, MetaError> {
    let mut params = Vec::new();
    for p in c
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match (str_field(p, "type"), str_field(p, "text")) {
            (Some("text"), Some(text)) => params.push(text.to_string()),
            (Some("text"), None) => {
                return Err(MetaError::invalid_parameter(
                    "Param template['components'][body]['parameters'][]['text'] is required.",
                ))
            }
            // currency/date_time etc. also fill a placeholder.
            (Some(_), _) => params.push(p.to_string()),
            (None, _) => {
                return Err(MetaError::invalid_parameter(
                    "Param template['components'][body]['parameters'][]['type'] is required.",
                ))
            }
        }
    }
    Ok(params)
}

/// One `{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"…"}]}`.
fn parse_button_component(c: &Value) -> Result<QuickReplyParam, MetaError> {
    let sub_type = str_field(c, "sub_type").unwrap_or("");
    if sub_type != "quick_reply" {
        return Err(MetaError::template_params(format!(
            "buttons: sub_type '{sub_type}' is not supported by the sandbox (quick_reply only)"
        )));
    }
    let index = match c.get("index") {
        Some(Value::String(s)) => s.parse::<usize>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| MetaError::template_params("buttons: index must be a button position (0-9)"))?;
    let params = c
        .get("parameters")
        .and_then(Value::as_array)
        .filter(|p| p.len() == 1)
        .ok_or_else(|| {
            MetaError::template_params(format!(
                "buttons[{index}]: exactly one payload parameter is required"
            ))
        })?;
    let p = &params[0];
    let payload = match (str_field(p, "type"), str_field(p, "payload")) {
        (Some("payload"), Some(payload)) if !payload.is_empty() => payload,
        _ => {
            return Err(MetaError::template_params(format!(
                "buttons[{index}]: the parameter must be {{type: payload, payload: <non-empty string>}}"
            )))
        }
    };
    if payload.chars().count() > QUICK_REPLY_PAYLOAD_MAX {
        return Err(MetaError::template_params(format!(
            "buttons[{index}]: payload is longer than {QUICK_REPLY_PAYLOAD_MAX} characters"
        )));
    }
    Ok(QuickReplyParam {
        index,
        payload: payload.to_string(),
    })
}

fn text_within(v: Option<&Value>, what: &str, max: usize) -> Result<(), MetaError> {
    if let Some(text) = v.and_then(|h| str_field(h, "text")) {
        if text.chars().count() > max {
            return Err(MetaError::param_value(format!(
                "{what} text length invalid. Max length: {max}"
            )));
        }
    }
    Ok(())
}

fn parse_interactive(body: &Value) -> Result<SendKind, MetaError> {
    let i = body
        .get("interactive")
        .ok_or_else(|| MetaError::invalid_parameter("The parameter interactive is required."))?;
    match str_field(i, "type") {
        Some("button") => {}
        Some(other) => {
            return Err(MetaError::invalid_parameter(format!(
                "Param interactive['type'] must be \"button\" in the sandbox, got '{other}'."
            )))
        }
        None => {
            return Err(MetaError::invalid_parameter(
                "The parameter interactive['type'] is required.",
            ))
        }
    }
    let text = i
        .get("body")
        .and_then(|b| str_field(b, "text"))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            MetaError::invalid_parameter("The parameter interactive['body']['text'] is required.")
        })?;
    if text.chars().count() > INTERACTIVE_BODY_MAX {
        return Err(MetaError::param_value(format!(
            "Body text length invalid. Max length: {INTERACTIVE_BODY_MAX}"
        )));
    }
    text_within(i.get("header"), "Header", INTERACTIVE_HEADER_FOOTER_MAX)?;
    text_within(i.get("footer"), "Footer", INTERACTIVE_HEADER_FOOTER_MAX)?;
    let raw_buttons = i
        .get("action")
        .and_then(|a| a.get("buttons"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            MetaError::invalid_parameter(
                "The parameter interactive['action']['buttons'] is required.",
            )
        })?;
    if raw_buttons.is_empty() || raw_buttons.len() > REPLY_BUTTONS_MAX {
        return Err(MetaError::param_value(format!(
            "Buttons count invalid. Min: 1, Max: {REPLY_BUTTONS_MAX}"
        )));
    }
    let mut buttons = Vec::new();
    for b in raw_buttons {
        if str_field(b, "type") != Some("reply") {
            return Err(MetaError::invalid_parameter(
                "Param interactive['action']['buttons'][]['type'] must be \"reply\".",
            ));
        }
        let reply = b.get("reply");
        let id = reply.and_then(|r| str_field(r, "id"));
        let title = reply.and_then(|r| str_field(r, "title"));
        let (Some(id), Some(title)) = (id, title) else {
            return Err(MetaError::invalid_parameter(
                "The parameters interactive['action']['buttons'][]['reply']['id'] and ['title'] are required.",
            ));
        };
        let title_len = title.chars().count();
        if title.trim().is_empty() || title_len > REPLY_TITLE_MAX {
            return Err(MetaError::param_value(format!(
                "Button title length invalid. Min length: 1, Max length: {REPLY_TITLE_MAX}"
            )));
        }
        if id.is_empty() || id.chars().count() > REPLY_ID_MAX || id.trim() != id {
            return Err(MetaError::param_value(format!(
                "Button id invalid. Length 1 to {REPLY_ID_MAX}, no leading or trailing spaces"
            )));
        }
        buttons.push(ReplyButton {
            id: id.to_string(),
            title: title.to_string(),
        });
    }
    let mut titles = HashSet::new();
    let mut ids = HashSet::new();
    if !buttons.iter().all(|b| titles.insert(b.title.as_str())) {
        return Err(MetaError::param_value("Buttons titles must be unique"));
    }
    if !buttons.iter().all(|b| ids.insert(b.id.as_str())) {
        return Err(MetaError::param_value("Buttons ids must be unique"));
    }
    Ok(SendKind::Buttons {
        body: text.to_string(),
        buttons,
        raw: i.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send(v: Value) -> Result<SendRequest, i64> {
        parse_send(&v).map_err(|e| e.code)
    }

    #[test]
    fn given_a_text_send_when_parsed_then_to_is_kept_and_wa_id_is_digits() {
        let r = send(json!({"messaging_product":"whatsapp","to":"+919876543210","type":"text","text":{"body":"hi"}}))
            .expect("valid");
        assert_eq!(
            r.addressee,
            Addressee::Phone {
                to: "+919876543210".into(),
                digits: "919876543210".into()
            }
        );
    }

    #[test]
    fn missing_to_wrong_product_and_unknown_type_are_100() {
        for bad in [
            json!({"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}),
            json!({"messaging_product":"sms","to":"+14155550100","type":"text","text":{"body":"x"}}),
            json!({"messaging_product":"whatsapp","to":"+14155550100","type":"hologram"}),
            json!({"messaging_product":"whatsapp","recipient":"13491208655302741918","type":"text","text":{"body":"x"}}),
        ] {
            assert_eq!(send(bad).map(|_| ()), Err(100));
        }
    }

    #[test]
    fn to_takes_precedence_over_recipient_and_recipient_takes_a_bsuid() {
        let both = send(json!({"messaging_product":"whatsapp","to":"+16505551234","recipient":"US.13491208655302741918","text":{"body":"x"}})).expect("valid");
        assert!(matches!(both.addressee, Addressee::Phone { .. }));
        let bsuid = send(json!({"messaging_product":"whatsapp","recipient":"US.ENT.11815799212886844830","text":{"body":"x"}})).expect("valid");
        assert_eq!(
            bsuid.addressee,
            Addressee::Bsuid("US.ENT.11815799212886844830".into())
        );
        assert!(is_bsuid("US.13491208655302741918"));
        assert!(!is_bsuid("us.1349"));
        assert!(!is_bsuid(&format!("US.{}", "1".repeat(129))));
    }

    fn buttons(list: Value) -> Value {
        json!({"messaging_product":"whatsapp","to":"+14155550100","type":"interactive",
               "interactive":{"type":"button","body":{"text":"Churn risk: Acme"},"action":{"buttons":list}}})
    }

    #[test]
    fn reply_buttons_follow_metas_limits() {
        let ok = buttons(json!([{"type":"reply","reply":{"id":"ack","title":"Acknowledge"}}]));
        assert!(send(ok).is_ok());
        let b = |id: &str, title: &str| json!({"type":"reply","reply":{"id":id,"title":title}});
        for (bad, code) in [
            (buttons(json!([])), 131009),
            (
                buttons(json!([b("a", "A"), b("b", "B"), b("c", "C"), b("d", "D")])),
                131009,
            ),
            (buttons(json!([b("a", "This title is too long!")])), 131009),
            (buttons(json!([b("a", "Same"), b("b", "Same")])), 131009),
            (buttons(json!([b("a", "One"), b("a", "Two")])), 131009),
            (buttons(json!([b(" a", "One")])), 131009),
            (buttons(json!([b(&"x".repeat(257), "One")])), 131009),
            (
                buttons(json!([{"type":"url","reply":{"id":"a","title":"A"}}])),
                100,
            ),
        ] {
            assert_eq!(send(bad.clone()).map(|_| ()), Err(code), "{bad}");
        }
    }

    #[test]
    fn quick_reply_parameters_are_checked() {
        let tpl = |button: Value| {
            json!({"messaging_product":"whatsapp","to":"+14155550100","type":"template",
            "template":{"name":"t","language":{"code":"en"},"components":[button]}})
        };
        let ok = tpl(
            json!({"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"ack:k1"}]}),
        );
        match send(ok).map(|r| r.kind) {
            Ok(SendKind::Template { quick_replies, .. }) => {
                assert_eq!(
                    quick_replies,
                    vec![QuickReplyParam {
                        index: 0,
                        payload: "ack:k1".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let long = tpl(
            json!({"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"x".repeat(QUICK_REPLY_PAYLOAD_MAX + 1)}]}),
        );
        assert_eq!(send(long).map(|_| ()), Err(132018));
        let wrong_type = tpl(
            json!({"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"text","text":"x"}]}),
        );
        assert_eq!(send(wrong_type).map(|_| ()), Err(132018));
    }

    #[test]
    fn a_read_receipt_is_parsed_with_its_typing_indicator() {
        let r = parse_messages(
            &json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.X","typing_indicator":{"type":"text"}}),
        );
        assert_eq!(
            r.map_err(|e| e.code),
            Ok(MessagesRequest::Read(ReadRequest {
                message_id: "wamid.X".into(),
                typing_indicator: true
            }))
        );
        let bad = parse_messages(
            &json!({"messaging_product":"whatsapp","status":"delivered","message_id":"wamid.X"}),
        );
        assert_eq!(bad.map_err(|e| e.code).map(|_| ()), Err(100));
    }
}
