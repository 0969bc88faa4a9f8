//! Identity changes: a user's new phone number or business-scoped user id.
//!
//! Meta reports them as `system` messages on the `messages` field:
//! `user_changed_number` (a new number, which also regenerates the BSUID)
//! and `user_changed_user_id` (a new BSUID only), each carrying
//! `system.previous_user_id` / `system.previous_parent_user_id` since
//! 2026-08-11, the new ids in `system.wa_id`, `system.user_id` and
//! `system.parent_user_id`, and the old number in the message's `from`
//! (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/system/>).
//! In spring 2026 Meta also documented a `user_id_update` field with
//! `user_id: {previous, current}` items; its changelog of 2026-08-11 says
//! that field is not subscribable. It is read all the same, in case an app
//! subscribed earlier still receives it.

use std::borrow::Cow;

use super::leaf::{push, Text};
use super::messages::bsuid;
use super::model::{IdentityChange, IdentityChangeKind, UserIds};
use super::read::{phone_number_id, At, Out};
use super::shape::{ChangeValue, Message, Transition};

/// The identity change a `system` message announces, if it is one; an
/// error (the skip reason) when it names no new id.
pub(super) fn from_system_message<'a>(
    m: &Message<'a>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
) -> Option<Result<IdentityChange<'a>, &'static str>> {
    if m.kind.0.as_deref() != Some("system") {
        return None;
    }
    let system = m.system.0.as_deref()?;
    let kind = match system.kind.0.as_deref()? {
        "user_changed_number" | "customer_changed_number" => IdentityChangeKind::UserChangedNumber,
        "user_changed_user_id" => IdentityChangeKind::UserChangedUserId,
        _ => return None,
    };
    let current = UserIds {
        wa_id: system
            .wa_id
            .0
            .clone()
            .or_else(|| system.new_wa_id.0.clone())
            .filter(|w| !w.is_empty()),
        user_id: bsuid(Text(system.user_id.0.clone())),
        parent_user_id: bsuid(Text(system.parent_user_id.0.clone())),
    };
    if current.wa_id.is_none() && current.user_id.is_none() {
        return Some(Err("identity change without a new wa_id or user_id"));
    }
    // The message comes from the user as they were: its `from` is the old
    // number, and its `from_user_id` the old BSUID when `previous_user_id`
    // is not sent.
    let previous = UserIds {
        wa_id: m.from.0.clone().filter(|w| !w.is_empty()),
        user_id: bsuid(Text(system.previous_user_id.0.clone()))
            .or_else(|| bsuid(Text(m.from_user_id.0.clone()))),
        parent_user_id: bsuid(Text(system.previous_parent_user_id.0.clone()))
            .or_else(|| bsuid(Text(m.from_parent_user_id.0.clone()))),
    };
    Some(Ok(IdentityChange {
        waba_id: waba_id.clone(),
        phone_number_id: Some(pnid.clone()),
        kind,
        message_id: m.id.0.clone().filter(|i| !i.is_empty()),
        timestamp: m.timestamp.0,
        previous,
        current,
    }))
}

fn sides<'a>(t: Option<Transition<'a>>) -> (Option<Cow<'a, str>>, Option<Cow<'a, str>>) {
    match t {
        Some(t) => (bsuid(t.previous), bsuid(t.current)),
        None => (None, None),
    }
}

/// The `user_id_update` field: one identity change per item.
// `&Cow`, not `&str`: cloning the Cow keeps its borrow of the body.
#[allow(clippy::ptr_arg)]
pub(super) fn read_user_id_update<'a>(
    value: &mut ChangeValue<'a>,
    field: &str,
    waba_id: &Cow<'a, str>,
    at: At,
    out: &mut Out<'a>,
) {
    let pnid = phone_number_id(value);
    if value.user_id_update.items().is_empty() {
        return out.skip(
            Some(waba_id),
            field,
            "user_id_update change with no updates",
            at.change(),
        );
    }
    let items = std::mem::take(&mut value.user_id_update).into_items();
    for (i, item) in items.into_iter().enumerate() {
        let Some(item) = item else {
            out.skip(
                Some(waba_id),
                field,
                "user id update is not an object",
                at.value("user_id_update", Some(i)),
            );
            continue;
        };
        let wa_id = item.wa_id.non_empty();
        let (previous_user_id, user_id) = sides(item.user_id);
        let (previous_parent_user_id, parent_user_id) = sides(item.parent_user_id);
        if user_id.is_none() && parent_user_id.is_none() {
            out.skip(
                Some(waba_id),
                field,
                "user id update without a current user_id",
                at.value("user_id_update", Some(i)),
            );
            continue;
        }
        push(
            &mut out.intake.identity_changes,
            IdentityChange {
                waba_id: waba_id.clone(),
                phone_number_id: pnid.clone(),
                kind: IdentityChangeKind::UserIdUpdate,
                message_id: None,
                timestamp: item.timestamp.0,
                // The number did not change: it is on both sides.
                previous: UserIds {
                    wa_id: wa_id.clone(),
                    user_id: previous_user_id,
                    parent_user_id: previous_parent_user_id,
                },
                current: UserIds {
                    wa_id,
                    user_id,
                    parent_user_id,
                },
            },
        );
    }
}
