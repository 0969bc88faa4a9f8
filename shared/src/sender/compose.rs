//! The messages the sender posts to Meta's `/messages`: free-form text, text
//! with reply buttons, or a template, each carrying the idempotency key as
//! `biz_opaque_callback_data` (echoed in every status webhook, which is how
//! a send in doubt is judged), addressed by number or by BSUID.

use serde_json::json;

use super::request::SendRequest;
use crate::addressing::Addressee;

pub(super) fn text_message(req: &SendRequest, to: &Addressee, text: &str) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "text",
        "text": {"preview_url": false, "body": text},
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

/// A free-form alert with reply buttons ([`responses::interactive`]).
pub(super) fn interactive_message(
    req: &SendRequest,
    to: &Addressee,
    interactive: serde_json::Value,
) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "interactive",
        "interactive": interactive,
        "biz_opaque_callback_data": req.idempotency_key.as_str(),
    });
    address(&mut m, to);
    m
}

pub(super) fn template_message(
    req: &SendRequest,
    to: &Addressee,
    template: serde_json::Value,
) -> serde_json::Value {
    let mut m = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "template",
        "template": template,
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
