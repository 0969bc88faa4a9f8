//! A CSM writing to the business: the inbound `messages` webhook for
//! `POST /_sandbox/inbound`, with Meta's shapes for what a CSM answers with.
//!
//! Shapes (Meta's webhook reference examples in
//! `fixtures/meta/webhook-examples/`: `message_button`,
//! `message_interactive_button_reply`, `message_interactive_list_reply`):
//! - a template quick-reply tap: `type: button`, `button: {payload, text}`;
//! - a reply button: `type: interactive`, `interactive: {type: button_reply,
//!   button_reply: {id, title}}`; a list row: `list_reply: {id, title, description?}`;
//! - a quoted reply: any of these with `context: {from, id}`, `from` being the
//!   business's display number and `id` the wamid answered.
//!
//! Identity (Meta's BSUID document, "Incoming messages webhooks"): a
//! registered user's message carries `from_user_id` (and
//! `from_parent_user_id`), and `contacts[]` carries `user_id`,
//! `parent_user_id` and `profile.username`; `from` and `contacts[].wa_id` are
//! there unless the user has a username and Meta's phone-number rules hide
//! the number ([`crate::identity::phone_visible`]). Every inbound message opens
//! (or renews) the user's 24-hour window, whatever alias it came from.

use serde_json::{json, Value};

use crate::control_routes::ControlError;
use crate::identity;
use crate::model::InboundMessage;
use crate::requests::{str_field, wa_id_of};
use crate::state::{Store, Tenant};
use crate::webhooks;

/// An inbound message ready to post.
pub struct Prepared {
    pub tenant: Tenant,
    pub id: String,
    pub timestamp: i64,
    pub body: Value,
}

fn invalid(msg: impl Into<String>) -> ControlError {
    ControlError::Invalid(msg.into())
}

fn reply_object(v: &Value, what: &str, with_description: bool) -> Result<Value, ControlError> {
    let id = str_field(v, "id").filter(|s| !s.is_empty());
    let title = str_field(v, "title").filter(|s| !s.is_empty());
    let (Some(id), Some(title)) = (id, title) else {
        return Err(invalid(format!("interactive.{what} needs id and title")));
    };
    let mut o = json!({"id": id, "title": title});
    if with_description {
        if let Some(d) = str_field(v, "description") {
            o["description"] = json!(d);
        }
    }
    Ok(o)
}

/// The message object's content fields (`type` and its object).
fn content(r: &InboundMessage) -> Result<Value, ControlError> {
    match r.kind.as_deref().unwrap_or("text") {
        "text" => {
            let text = r
                .text
                .as_deref()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| invalid("type text needs text"))?;
            Ok(json!({"type": "text", "text": {"body": text}}))
        }
        "button" => {
            let b = r
                .button
                .as_ref()
                .ok_or_else(|| invalid("type button needs button"))?;
            match (str_field(b, "payload"), str_field(b, "text")) {
                (Some(payload), Some(text)) => Ok(json!({
                    "type": "button",
                    "button": {"payload": payload, "text": text}
                })),
                _ => Err(invalid("button needs payload and text")),
            }
        }
        "interactive" => {
            let i = r
                .interactive
                .as_ref()
                .ok_or_else(|| invalid("type interactive needs interactive"))?;
            let inner = match str_field(i, "type") {
                Some("button_reply") => json!({
                    "type": "button_reply",
                    "button_reply": reply_object(&i["button_reply"], "button_reply", false)?
                }),
                Some("list_reply") => json!({
                    "type": "list_reply",
                    "list_reply": reply_object(&i["list_reply"], "list_reply", true)?
                }),
                _ => {
                    return Err(invalid(
                        "interactive.type must be button_reply or list_reply",
                    ))
                }
            };
            Ok(json!({"type": "interactive", "interactive": inner}))
        }
        other => Err(invalid(format!(
            "type must be text, button or interactive, got '{other}'"
        ))),
    }
}

/// Builds the webhook, opens the window and records the message id.
pub fn prepare(
    store: &mut Store,
    r: &InboundMessage,
    now_ms: i64,
) -> Result<Prepared, ControlError> {
    let tenant = store
        .tenants
        .get(&r.phone_number_id)
        .cloned()
        .ok_or_else(|| ControlError::UnknownPhone(r.phone_number_id.clone()))?;
    let mut message = content(r)?;
    let user = identity::find(&store.users, &r.from).cloned();
    let digits = wa_id_of(&r.from);
    if user.is_none() && digits.is_none() {
        return Err(invalid(
            "from must be a phone number or the BSUID of a registered user",
        ));
    }
    let ts = r.timestamp.unwrap_or_else(|| now_ms.div_euclid(1000));
    // The given timestamp replaces any earlier one, even if older, so a test
    // can move a window into the past.
    let key = identity::window_key(&store.users, &r.from);
    store
        .last_inbound
        .insert((r.phone_number_id.clone(), key), ts);

    let id = format!(
        "wamid.HBgM{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    );
    let contact = match &user {
        None => {
            let from = digits.unwrap_or_default();
            message["from"] = json!(from);
            let name = r.profile_name.as_deref().unwrap_or("Sandbox User");
            json!({"profile": {"name": name}, "wa_id": from})
        }
        Some(u) => {
            let shown = identity::phone_visible(store, &tenant, u, now_ms);
            if shown {
                identity::record_phone_use(store, &tenant, &u.key, now_ms);
                if let Some(w) = u.wa_id() {
                    message["from"] = json!(w);
                }
            }
            if let Some(b) = &u.spec.user_id {
                message["from_user_id"] = json!(b);
            }
            if let Some(p) = &u.spec.parent_user_id {
                message["from_parent_user_id"] = json!(p);
            }
            let mut c = identity::contact(u, shown, true);
            if let Some(name) = &r.profile_name {
                c["profile"]["name"] = json!(name);
            }
            c
        }
    };
    message["id"] = json!(id);
    message["timestamp"] = json!(ts.to_string());
    if let Some(ctx) = &r.context {
        let from = ctx
            .from
            .clone()
            .unwrap_or_else(|| tenant.display_phone_number());
        message["context"] = json!({"from": from, "id": ctx.id});
    }
    store
        .inbound_ids
        .insert(id.clone(), r.phone_number_id.clone());
    let body = webhooks::inbound_payload(&tenant, contact, message);
    Ok(Prepared {
        tenant,
        id,
        timestamp: ts,
        body,
    })
}
