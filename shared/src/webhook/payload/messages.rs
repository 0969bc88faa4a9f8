//! The `messages` field: inbound messages, delivery statuses and
//! change-level errors, in any combination, with the `contacts` that
//! describe the users they name.
//!
//! A message needs an id, a sender (`from` or, since 2026, only a BSUID in
//! `from_user_id`), a `type` and a usable timestamp; a status needs an id,
//! a `status`, a recipient (`recipient_id` or `recipient_user_id`) and a
//! usable timestamp. Anything less is one [`super::Skipped`] with a reason
//! that names the missing part, never a value.

use std::borrow::Cow;
use std::collections::HashMap;

use super::identity;
use super::leaf::Id;
use super::leaf::{List, Text};
use super::model::{
    Conversation, DeliveryStatus, InboundMessage, Pricing, ReplyKind, StatusError, StatusUpdate,
    WebhookError,
};
use super::read::{phone_number_id, At, Out, FIELD_MESSAGES};
use super::shape::{ChangeValue, Contact, ErrorObj, Message, Status};
use crate::ids::Bsuid;

// `&Cow`, not `&str`: cloning the Cow keeps its borrow of the body.
#[allow(clippy::ptr_arg)]
pub(super) fn read<'a>(value: ChangeValue<'a>, waba_id: &Cow<'a, str>, at: At, out: &mut Out<'a>) {
    let skip = |out: &mut Out<'a>, reason: Cow<'static, str>, where_: String| {
        out.skip(Some(waba_id), FIELD_MESSAGES, reason, where_);
    };
    for (key, not_array) in [
        ("messages", value.messages.is_not_array()),
        ("statuses", value.statuses.is_not_array()),
        ("errors", value.errors.is_not_array()),
        ("contacts", value.contacts.is_not_array()),
    ] {
        if not_array {
            skip(
                out,
                format!("`{key}` is not an array").into(),
                at.value(key, None),
            );
        }
    }
    let pnid = phone_number_id(&value);
    let errors = value.errors.into_items();
    let acted = !errors.is_empty();
    for (i, error) in errors.into_iter().enumerate() {
        match error.and_then(status_error) {
            Some(error) => out.intake.errors.push(WebhookError {
                waba_id: waba_id.clone(),
                phone_number_id: pnid.clone(),
                error,
            }),
            None => skip(
                out,
                "change error without integer code".into(),
                at.value("errors", Some(i)),
            ),
        }
    }
    let (messages, statuses) = (value.messages.into_items(), value.statuses.into_items());
    if messages.is_empty() && statuses.is_empty() {
        if !acted {
            skip(
                out,
                "messages change with no messages, statuses or errors".into(),
                at.change(),
            );
        }
        return;
    }
    let Some(pnid) = pnid else {
        let n = messages.len() + statuses.len();
        return skip(
            out,
            format!(
                "change without a valid metadata.phone_number_id ({n} messages/statuses not read)"
            )
            .into(),
            at.change(),
        );
    };
    let contacts = value.contacts.into_items();
    let contacts = Contacts::new(&contacts);
    for (i, m) in messages.into_iter().enumerate() {
        let Some(m) = m else {
            skip(
                out,
                "message is not an object".into(),
                at.value("messages", Some(i)),
            );
            continue;
        };
        let change = identity::from_system_message(&m, waba_id, &pnid);
        let had_change = change.is_some();
        match change {
            Some(Ok(change)) => out.intake.identity_changes.push(change),
            Some(Err(reason)) => skip(out, reason.into(), at.value("messages", Some(i))),
            None => {}
        }
        match inbound_message(m, waba_id, &pnid, &contacts) {
            Ok(message) => out.intake.messages.push(message),
            // A system message without a sender is only its identity change.
            Err(NO_SENDER) if had_change => {}
            Err(reason) => skip(out, reason.into(), at.value("messages", Some(i))),
        }
    }
    for (i, s) in statuses.into_iter().enumerate() {
        match status_update(s, waba_id, &pnid, &contacts) {
            Ok((status, dropped)) => {
                if dropped > 0 {
                    skip(
                        out,
                        format!("status has {dropped} error(s) without integer code").into(),
                        at.value("statuses", Some(i)),
                    );
                }
                out.intake.statuses.push(status);
            }
            Err(reason) => skip(out, reason.into(), at.value("statuses", Some(i))),
        }
    }
}

const NO_SENDER: &str = "message without from or from_user_id";

/// A BSUID, when the value is one (anything else is treated as absent).
pub(super) fn bsuid(t: Text<'_>) -> Option<Cow<'_, str>> {
    t.0.filter(|s| Bsuid::check(s).is_ok())
}

/// The change's contacts, found by `wa_id` or BSUID in constant time: a
/// short list is scanned, a long one indexed once (not rescanned per
/// message).
struct Contacts<'c, 'a> {
    list: &'c [Option<Contact<'a>>],
    by_wa_id: HashMap<&'c str, usize>,
    by_user_id: HashMap<&'c str, usize>,
}

impl<'c, 'a> Contacts<'c, 'a> {
    /// Up to this many, a scan is cheaper than hashing.
    const SCAN: usize = 8;

    fn new(list: &'c [Option<Contact<'a>>]) -> Self {
        let mut by_wa_id = HashMap::new();
        let mut by_user_id = HashMap::new();
        if list.len() > Self::SCAN {
            for (i, c) in list.iter().enumerate() {
                let Some(c) = c else { continue };
                if let Some(w) = &c.wa_id.0 {
                    by_wa_id.entry(w.as_ref()).or_insert(i);
                }
                if let Some(u) = &c.user_id.0 {
                    by_user_id.entry(u.as_ref()).or_insert(i);
                }
            }
        }
        Contacts {
            list,
            by_wa_id,
            by_user_id,
        }
    }

    /// The contact of the user with this wa_id, else this BSUID; else, when
    /// the change has one contact and it names nobody, that one (Meta's
    /// contacts then describe the sender).
    fn find(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&'c Contact<'a>> {
        self.by(wa_id, &self.by_wa_id, |c| c.wa_id.0.as_deref())
            .or_else(|| self.by(user_id, &self.by_user_id, |c| c.user_id.0.as_deref()))
            .or_else(|| {
                let mut objects = self.list.iter().flatten();
                let only = objects.next()?;
                (objects.next().is_none() && only.wa_id.0.is_none() && only.user_id.0.is_none())
                    .then_some(only)
            })
    }

    /// The first contact whose id (`get`) is `key`.
    fn by(
        &self,
        key: Option<&str>,
        index: &HashMap<&'c str, usize>,
        get: for<'x> fn(&'x Contact<'a>) -> Option<&'x str>,
    ) -> Option<&'c Contact<'a>> {
        let key = key?;
        if self.list.len() > Self::SCAN {
            index.get(key).and_then(|&i| self.list[i].as_ref())
        } else {
            self.list.iter().flatten().find(|c| get(c) == Some(key))
        }
    }
}

fn status_error(e: ErrorObj<'_>) -> Option<StatusError<'_>> {
    Some(StatusError {
        code: e.code.0?,
        title: e.title.0,
        message: e.message.0,
        details: e.error_data.and_then(|d| d.details.0),
    })
}

/// The errors that have an integer code, and how many did not.
fn errors_of<'a, const K: usize>(
    list: List<Option<ErrorObj<'a>>, K>,
) -> (Vec<StatusError<'a>>, usize) {
    let list = list.into_items();
    let n = list.len();
    let parsed: Vec<StatusError> = list
        .into_iter()
        .flatten()
        .filter_map(status_error)
        .collect();
    let dropped = n - parsed.len();
    (parsed, dropped)
}

fn inbound_message<'a>(
    m: Message<'a>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
    contacts: &Contacts<'_, 'a>,
) -> Result<InboundMessage<'a>, &'static str> {
    let id = m.id.non_empty().ok_or("message without id")?;
    let from = m.from.non_empty();
    let from_user_id = bsuid(m.from_user_id);
    let contact = contacts.find(from.as_deref(), from_user_id.as_deref());
    let from = from.or_else(|| {
        contact
            .and_then(|c| c.wa_id.0.clone())
            .filter(|w| !w.is_empty())
    });
    let from_user_id =
        from_user_id.or_else(|| contact.and_then(|c| bsuid(Text(c.user_id.0.clone()))));
    if from.is_none() && from_user_id.is_none() {
        return Err(NO_SENDER);
    }
    let kind = m.kind.0.ok_or("message without type")?;
    let timestamp = m.timestamp.0.ok_or("message without a usable timestamp")?;
    let from_parent_user_id = bsuid(m.from_parent_user_id)
        .or_else(|| contact.and_then(|c| bsuid(Text(c.parent_user_id.0.clone()))));
    let profile = contact.and_then(|c| c.profile.as_ref());
    let (context_id, context_from) = match m.context {
        Some(c) => (c.id.0, c.from.0),
        None => (None, None),
    };
    let mut context_id = context_id;
    let mut reply: Option<(Cow<'a, str>, ReplyKind)> = None;
    let text = match kind.as_ref() {
        "text" => m.text.and_then(|b| b.body.0),
        "button" => {
            let (payload, text) = m
                .button
                .map(|b| (b.payload.0, b.text.0))
                .unwrap_or_default();
            reply = payload.map(|p| (p, ReplyKind::QuickReply));
            text.or_else(|| reply.as_ref().map(|(p, _)| p.clone()))
        }
        "interactive" => {
            let chosen = m.interactive.0.and_then(|i| match i.kind.0.as_deref() {
                Some("button_reply") => i.button_reply.map(|r| (r, ReplyKind::ButtonReply)),
                Some("list_reply") => i.list_reply.map(|r| (r, ReplyKind::ListReply)),
                _ => None,
            });
            match chosen {
                Some((r, how)) => {
                    reply = r.id.0.map(|id| (id, how));
                    r.title.0
                }
                None => None,
            }
        }
        "image" => m.image.and_then(|b| b.caption.0),
        "video" => m.video.and_then(|b| b.caption.0),
        "document" => m.document.and_then(|b| b.caption.0),
        "order" => m.order.and_then(|b| b.text.0).filter(|t| !t.is_empty()),
        "reaction" => {
            let (message_id, emoji) = m
                .reaction
                .map(|r| (r.message_id.0, r.emoji.0))
                .unwrap_or_default();
            if context_id.is_none() {
                context_id = message_id;
            }
            emoji.filter(|e| !e.is_empty())
        }
        _ => None,
    };
    let (errors, _) = errors_of(m.errors);
    let (reply_id, reply_kind) = match reply {
        Some((id, how)) => (Some(id), Some(how)),
        None => (None, None),
    };
    Ok(InboundMessage {
        waba_id: waba_id.clone(),
        phone_number_id: pnid.clone(),
        id,
        from,
        from_user_id,
        from_parent_user_id,
        username: profile
            .and_then(|p| p.username.0.clone())
            .filter(|u| !u.is_empty()),
        profile_name: profile.and_then(|p| p.name.0.clone()),
        kind,
        timestamp,
        text,
        context_id,
        context_from,
        reply_id,
        reply_kind,
        errors,
    })
}

/// A status, and how many of its errors had no integer code (dropped).
fn status_update<'a>(
    s: Option<Status<'a>>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
    contacts: &Contacts<'_, 'a>,
) -> Result<(StatusUpdate<'a>, usize), &'static str> {
    let s = s.ok_or("status is not an object")?;
    let id = s.id.non_empty().ok_or("status without id")?;
    let status = s
        .status
        .0
        .filter(|s| !s.is_empty())
        .ok_or("status without status")?;
    let recipient_id = Id(s.recipient_id.0).non_empty();
    let recipient_user_id = bsuid(s.recipient_user_id);
    let contact = contacts.find(recipient_id.as_deref(), recipient_user_id.as_deref());
    let recipient_user_id =
        recipient_user_id.or_else(|| contact.and_then(|c| bsuid(Text(c.user_id.0.clone()))));
    if recipient_id.is_none() && recipient_user_id.is_none() {
        return Err("status without recipient_id or recipient_user_id");
    }
    let timestamp = s.timestamp.0.ok_or("status without a usable timestamp")?;
    let recipient_parent_user_id = bsuid(s.recipient_parent_user_id)
        .or_else(|| contact.and_then(|c| bsuid(Text(c.parent_user_id.0.clone()))));
    let (errors, dropped) = errors_of(s.errors);
    let pricing = s.pricing.map(|p| Pricing {
        billable: p.billable.0,
        pricing_model: p.pricing_model.0,
        category: p.category.0,
        kind: p.kind.0,
    });
    let conversation = s.conversation.map(|c| Conversation {
        id: c.id.0,
        expiration_timestamp: c.expiration_timestamp.0,
        origin_type: c.origin.and_then(|o| o.kind.0),
    });
    let status = StatusUpdate {
        waba_id: waba_id.clone(),
        phone_number_id: pnid.clone(),
        id,
        status: DeliveryStatus::from_meta(&status),
        recipient_id,
        recipient_user_id,
        recipient_parent_user_id,
        recipient_username: contact
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.username.0.clone())
            .filter(|u| !u.is_empty()),
        timestamp,
        errors,
        biz_opaque_callback_data: s.biz_opaque_callback_data.0,
        pricing,
        conversation,
    };
    Ok((status, dropped))
}
