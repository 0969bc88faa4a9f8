//! The messages the sender posts to Meta's `/messages`: free-form text, text
//! with reply buttons, or a template, each carrying the idempotency key as
//! `biz_opaque_callback_data` (echoed in every status webhook, which is how
//! a send in doubt is judged), addressed by number or by BSUID.

use serde_json::json;

use super::request::SendRequest;
use crate::addressing::Addressee;

pub(super) fn text_message(req: &SendRequest, to: &Addressee, text: &str) -> serde_json::Value {
    message(req, to, "text", json!({"preview_url": false, "body": text}))
}

/// A free-form alert with reply buttons ([`responses::interactive`]).
pub(super) fn interactive_message(
    req: &SendRequest,
    to: &Addressee,
    interactive: serde_json::Value,
) -> serde_json::Value {
    message(req, to, "interactive", interactive)
}

pub(super) fn template_message(
    req: &SendRequest,
    to: &Addressee,
    template: serde_json::Value,
) -> serde_json::Value {
    message(req, to, "template", template)
}

/// A message of Meta's `kind` (`text`, `interactive`, `template`), whose
/// content goes in the field of that name, carrying the alert's key.
fn message(
    req: &SendRequest,
    to: &Addressee,
    kind: &str,
    content: serde_json::Value,
) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": kind,
        kind: content,
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

/// Meta's `to` (a number) or, for someone known only by a BSUID, its
/// `recipient` (<https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids>).
pub(super) fn address(message: &mut serde_json::Value, to: &Addressee) {
    match (&to.phone, &to.user_id) {
        (Some(phone), _) => message["to"] = json!(phone.as_str()),
        (None, Some(user)) => message["recipient"] = json!(user),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::phone::E164;

    /// The body Meta's `/messages` takes: the content under the field its
    /// `type` names, the key as `biz_opaque_callback_data`, the number as
    /// `to` (<https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages>).
    #[test]
    fn a_message_carries_its_content_under_its_type_and_the_key() {
        let req =
            SendRequest::parse(&super::super::request::tests::valid().to_string()).expect("valid");
        let phone = E164::parse("+919876543210").expect("valid");
        let to = Addressee {
            identity: Identity::Number(phone.clone()),
            phone: Some(phone),
            user_id: None,
        };
        let m = template_message(&req, &to, json!({"name": "usage_alert"}));
        assert_eq!(
            m,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "type": "template",
                "template": {"name": "usage_alert"},
                "biz_opaque_callback_data": "usage-42-2026-11-25",
                "to": "+919876543210",
            })
        );
        let t = text_message(&req, &to, "hello");
        assert_eq!(t["type"], "text");
        assert_eq!(t["text"], json!({"preview_url": false, "body": "hello"}));
    }
}
