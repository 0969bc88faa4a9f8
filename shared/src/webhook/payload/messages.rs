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
use std::mem::take;

use super::identity;
use super::leaf::{push, List, Text};
use super::model::{
    Conversation, DeliveryStatus, InboundMessage, Pricing, ReplyKind, StatusError, StatusUpdate,
    WebhookError,
};
use super::read::{phone_number_id, At, Out, FIELD_MESSAGES};
use super::shape::{ChangeValue, Contact, ErrorObj, Message, Status};
use crate::ids::Bsuid;

// `&Cow`, not `&str`: cloning the Cow keeps its borrow of the body.
#[allow(clippy::ptr_arg)]
pub(super) fn read<'a>(
    value: &mut ChangeValue<'a>,
    waba_id: &Cow<'a, str>,
    at: At,
    out: &mut Out<'a>,
) {
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
    let pnid = phone_number_id(value);
    let errors = take(&mut value.errors).into_items();
    let acted = !errors.is_empty();
    for (i, error) in errors.into_iter().enumerate() {
        match error.and_then(status_error) {
            Some(error) => push(
                &mut out.intake.errors,
                WebhookError {
                    waba_id: waba_id.clone(),
                    phone_number_id: pnid.clone(),
                    error,
                },
            ),
            None => skip(
                out,
                "change error without integer code".into(),
                at.value("errors", Some(i)),
            ),
        }
    }
    let mut messages = take(&mut value.messages).into_items();
    let mut statuses = take(&mut value.statuses).into_items();
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
    let contacts = take(&mut value.contacts).into_items();
    let contacts = Contacts::new(&contacts);
    // Items are read in place (`&mut`), their parts taken out: a message or
    // status is a struct of hundreds of bytes, not worth moving.
    for (i, m) in messages.iter_mut().enumerate() {
        let Some(m) = m else {
            skip(
                out,
                "message is not an object".into(),
                at.value("messages", Some(i)),
            );
            continue;
        };
        let change = identity::from_system_message(m, waba_id, &pnid);
        let had_change = change.is_some();
        match change {
            Some(Ok(change)) => push(&mut out.intake.identity_changes, change),
            Some(Err(reason)) => skip(out, reason.into(), at.value("messages", Some(i))),
            None => {}
        }
        match inbound_message(m, waba_id, &pnid, &contacts) {
            Ok(message) => push(&mut out.intake.messages, message),
            // A system message without a sender is only its identity change.
            Err(NO_SENDER) if had_change => {}
            Err(reason) => skip(out, reason.into(), at.value("messages", Some(i))),
        }
    }
    for (i, s) in statuses.iter_mut().enumerate() {
        match status_update(s, waba_id, &pnid, &contacts) {
            Ok((status, dropped)) => {
                if dropped > 0 {
                    skip(
                        out,
                        format!("status has {dropped} error(s) without integer code").into(),
                        at.value("statuses", Some(i)),
                    );
                }
                push(&mut out.intake.statuses, status);
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

/// Positions of contacts by one of their ids.
type Index<'c> = HashMap<&'c str, usize>;

/// The change's contacts, found by `wa_id` or BSUID in constant time: a
/// short list is scanned, a long one indexed once (not rescanned per
/// message).
struct Contacts<'c, 'a> {
    list: &'c [Option<Contact<'a>>],
    /// By wa_id and by BSUID, when the list is longer than [`Self::SCAN`].
    index: Option<(Index<'c>, Index<'c>)>,
}

impl<'c, 'a> Contacts<'c, 'a> {
    /// Up to this many, a scan is cheaper than hashing.
    const SCAN: usize = 8;

    fn new(list: &'c [Option<Contact<'a>>]) -> Self {
        let index = (list.len() > Self::SCAN).then(|| {
            let (mut by_wa_id, mut by_user_id) = (HashMap::new(), HashMap::new());
            for (i, c) in list.iter().enumerate() {
                let Some(c) = c else { continue };
                if let Some(w) = &c.wa_id.0 {
                    by_wa_id.entry(w.as_ref()).or_insert(i);
                }
                if let Some(u) = &c.user_id.0 {
                    by_user_id.entry(u.as_ref()).or_insert(i);
                }
            }
            (by_wa_id, by_user_id)
        });
        Contacts { list, index }
    }

    /// The contact of the user with this wa_id, else this BSUID; else, when
    /// the change has one contact and it names nobody, that one (Meta's
    /// contacts then describe the sender).
    fn find(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&'c Contact<'a>> {
        let by_wa_id = self.index.as_ref().map(|(w, _)| w);
        let by_user_id = self.index.as_ref().map(|(_, u)| u);
        self.by(wa_id, by_wa_id, |c| c.wa_id.0.as_deref())
            .or_else(|| self.by(user_id, by_user_id, |c| c.user_id.0.as_deref()))
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
        index: Option<&Index<'c>>,
        get: for<'x> fn(&'x Contact<'a>) -> Option<&'x str>,
    ) -> Option<&'c Contact<'a>> {
        let key = key?;
        match index {
            Some(index) => index.get(key).and_then(|&i| self.list[i].as_ref()),
            None => self.list.iter().flatten().find(|c| get(c) == Some(key)),
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

/// The contact's value of `get`, when it is a BSUID.
fn contact_bsuid<'a>(
    contact: Option<&Contact<'a>>,
    get: for<'x> fn(&'x Contact<'a>) -> &'x Text<'a>,
) -> Option<Cow<'a, str>> {
    contact.and_then(|c| bsuid(Text(get(c).0.clone())))
}

fn inbound_message<'a>(
    m: &mut Message<'a>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
    contacts: &Contacts<'_, 'a>,
) -> Result<InboundMessage<'a>, &'static str> {
    let id = take(&mut m.id).non_empty().ok_or("message without id")?;
    let from = take(&mut m.from).non_empty();
    let from_user_id = bsuid(take(&mut m.from_user_id));
    let contact = contacts.find(from.as_deref(), from_user_id.as_deref());
    let from = from.or_else(|| {
        contact
            .and_then(|c| c.wa_id.0.clone())
            .filter(|w| !w.is_empty())
    });
    let from_user_id = from_user_id.or_else(|| contact_bsuid(contact, |c| &c.user_id));
    if from.is_none() && from_user_id.is_none() {
        return Err(NO_SENDER);
    }
    let kind = m.kind.0.take().ok_or("message without type")?;
    let timestamp = m.timestamp.0.ok_or("message without a usable timestamp")?;
    let from_parent_user_id = bsuid(take(&mut m.from_parent_user_id))
        .or_else(|| contact_bsuid(contact, |c| &c.parent_user_id));
    let profile = contact.and_then(|c| c.profile.as_ref());
    let (mut context_id, context_from) = match m.context.take() {
        Some(c) => (c.id.0, c.from.0),
        None => (None, None),
    };
    let mut reply: Option<(Cow<'a, str>, ReplyKind)> = None;
    let text = match kind.as_ref() {
        "text" => m.text.take().and_then(|b| b.body.0),
        "button" => {
            let (payload, text) = m
                .button
                .take()
                .map(|b| (b.payload.0, b.text.0))
                .unwrap_or_default();
            reply = payload.map(|p| (p, ReplyKind::QuickReply));
            text.or_else(|| reply.as_ref().map(|(p, _)| p.clone()))
        }
        "interactive" => {
            let chosen = m
                .interactive
                .0
                .take()
                .and_then(|i| match i.kind.0.as_deref() {
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
        "image" => m.image.take().and_then(|b| b.caption.0),
        "video" => m.video.take().and_then(|b| b.caption.0),
        "document" => m.document.take().and_then(|b| b.caption.0),
        "order" => m
            .order
            .take()
            .and_then(|b| b.text.0)
            .filter(|t| !t.is_empty()),
        "reaction" => {
            let (message_id, emoji) = m
                .reaction
                .take()
                .map(|r| (r.message_id.0, r.emoji.0))
                .unwrap_or_default();
            if context_id.is_none() {
                context_id = message_id;
            }
            emoji.filter(|e| !e.is_empty())
        }
        _ => None,
    };
    let (errors, _) = errors_of(take(&mut m.errors));
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
    s: &mut Option<Status<'a>>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
    contacts: &Contacts<'_, 'a>,
) -> Result<(StatusUpdate<'a>, usize), &'static str> {
    let s = s.as_mut().ok_or("status is not an object")?;
    let id = take(&mut s.id).non_empty().ok_or("status without id")?;
    let status = s
        .status
        .0
        .take()
        .filter(|s| !s.is_empty())
        .ok_or("status without status")?;
    let recipient_id = take(&mut s.recipient_id).non_empty();
    let recipient_user_id = bsuid(take(&mut s.recipient_user_id));
    let contact = contacts.find(recipient_id.as_deref(), recipient_user_id.as_deref());
    let recipient_user_id = recipient_user_id.or_else(|| contact_bsuid(contact, |c| &c.user_id));
    if recipient_id.is_none() && recipient_user_id.is_none() {
        return Err("status without recipient_id or recipient_user_id");
    }
    let timestamp = s.timestamp.0.ok_or("status without a usable timestamp")?;
    let recipient_parent_user_id = bsuid(take(&mut s.recipient_parent_user_id))
        .or_else(|| contact_bsuid(contact, |c| &c.parent_user_id));
    let (errors, dropped) = errors_of(take(&mut s.errors));
    let pricing = s.pricing.take().map(|p| Pricing {
        billable: p.billable.0,
        pricing_model: p.pricing_model.0,
        category: p.category.0,
        kind: p.kind.0,
    });
    let conversation = s.conversation.take().map(|c| Conversation {
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
        biz_opaque_callback_data: s.biz_opaque_callback_data.0.take(),
        pricing,
        conversation,
    };
    Ok((status, dropped))
}
