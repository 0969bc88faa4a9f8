//! The envelope, its entries and changes: one pass from bytes to [`Intake`].
//!
//! The body is read into the typed shapes of [`super::shape`] (tolerantly,
//! within the [`super::bounds`]), then each entry and change is classified
//! in order. A malformed entry or change becomes one [`Skipped`] and the
//! rest of the body is still used.

use std::borrow::Cow;

use super::bounds::{Budget, Distinct, MAX_PER_LIST_KIND};
use super::leaf::{push, List, Read};
use super::model::{Intake, PayloadError, Skipped};
use super::shape::{Body, Change, ChangeValue, Entry};
use super::{account, identity, messages, templates};
use crate::ids::{PhoneNumberId, WabaId};

/// The only `object` Meta sends for WhatsApp webhooks.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

pub(super) const FIELD_MESSAGES: &str = "messages";
pub(super) const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";
pub(super) const FIELD_TEMPLATE_QUALITY: &str = "message_template_quality_update";
pub(super) const FIELD_TEMPLATE_CATEGORY: &str = "template_category_update";
pub(super) const FIELD_TEMPLATE_COMPONENTS: &str = "message_template_components_update";
const FIELD_USER_ID_UPDATE: &str = "user_id_update";
const FIELD_PHONE_QUALITY: &str = "phone_number_quality_update";
const FIELD_CAPABILITY: &str = "business_capability_update";
const FIELD_ACCOUNT_UPDATE: &str = "account_update";
const ENTRY_PSEUDO_FIELD: &str = "(entry)";
const CHANGE_PSEUDO_FIELD: &str = "(change)";

const NOT_AN_OBJECT: PayloadError = PayloadError::WrongShape("top level must be a JSON object");
const WRONG_OBJECT: PayloadError =
    PayloadError::WrongShape("object must be whatsapp_business_account");
const ENTRY_NOT_ARRAY: PayloadError = PayloadError::WrongShape("entry must be an array");

/// The intake being built: the answer, and the distinct routing ids.
pub(super) struct Out<'a> {
    pub(super) intake: Intake<'a>,
    waba_ids: Distinct<'a>,
    phone_number_ids: Distinct<'a>,
}

impl Out<'_> {
    /// Records a skip; `at` says where, e.g. `entry[0].changes[1]`.
    pub(super) fn skip(
        &mut self,
        waba_id: Option<&str>,
        field: &str,
        reason: impl Into<Cow<'static, str>>,
        at: String,
    ) {
        self.intake.skipped.push(Skipped {
            waba_id: waba_id.map(str::to_owned),
            field: field.to_owned(),
            reason: reason.into(),
            at,
        });
    }
}

/// Where an item sits in the body, for [`Skipped::at`]; built only on a skip.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) entry: usize,
    pub(super) change: usize,
}

impl At {
    pub(super) fn change(self) -> String {
        format!("entry[{}].changes[{}]", self.entry, self.change)
    }

    /// `entry[e].changes[c].value.<key>`, or an item of it.
    pub(super) fn value(self, key: &str, item: Option<usize>) -> String {
        match item {
            Some(i) => format!("{}.value.{key}[{i}]", self.change()),
            None => format!("{}.value.{key}", self.change()),
        }
    }
}

/// Reads a body. See the module docs of [`super`].
pub(super) fn read(body: &[u8]) -> Result<Intake<'_>, PayloadError> {
    // One UTF-8 check of the whole body is cheaper than serde_json's check
    // of each string it reads from a byte slice.
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::InvalidJson)?;
    let budget = Budget::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let root = Option::<Body>::read(&mut de, &budget).and_then(|root| de.end().map(|()| root));
    let root = root.map_err(|_| match budget.exceeded() {
        Some(what) => PayloadError::TooMany {
            what,
            max: MAX_PER_LIST_KIND,
        },
        None => PayloadError::InvalidJson,
    })?;
    let root = root.ok_or(NOT_AN_OBJECT)?;
    if root.object.0.as_deref() != Some(WHATSAPP_OBJECT) {
        return Err(WRONG_OBJECT);
    }
    let List::Items(entries) = root.entry else {
        return Err(ENTRY_NOT_ARRAY);
    };
    let mut out = Out {
        intake: Intake::default(),
        waba_ids: Distinct::default(),
        phone_number_ids: Distinct::default(),
    };
    for (e, entry) in entries.into_iter().enumerate() {
        read_entry(entry, e, &mut out);
    }
    let mut intake = out.intake;
    intake.waba_ids = out.waba_ids.into_vec();
    intake.phone_number_ids = out.phone_number_ids.into_vec();
    Ok(intake)
}

/// A change value's `metadata.phone_number_id`, when it is a valid
/// `PhoneNumberId`: the only form in which it may name a tenant.
pub(super) fn phone_number_id<'a>(value: &ChangeValue<'a>) -> Option<Cow<'a, str>> {
    let id = value.metadata.as_ref()?.phone_number_id.0.as_ref()?;
    PhoneNumberId::check(id).is_ok().then(|| id.clone())
}

fn read_entry<'a>(entry: Option<Entry<'a>>, e: usize, out: &mut Out<'a>) {
    let at = || format!("entry[{e}]");
    let Some(entry) = entry else {
        return out.skip(None, ENTRY_PSEUDO_FIELD, "entry is not an object", at());
    };
    // The routing ids: every change's phone number id, whatever else is
    // wrong with the entry or the change.
    for change in entry.changes.items().iter().flatten() {
        if let Some(id) = change.value.0.as_deref().and_then(phone_number_id) {
            out.phone_number_ids.push(id);
        }
    }
    let Some(waba_id) = entry.id.non_empty() else {
        return out.skip(None, ENTRY_PSEUDO_FIELD, "entry without id", at());
    };
    if WabaId::check(&waba_id).is_err() {
        return out.skip(
            None,
            ENTRY_PSEUDO_FIELD,
            "entry id is not a WhatsApp Business Account id",
            at(),
        );
    }
    out.waba_ids.push(waba_id.clone());
    let List::Items(changes) = entry.changes else {
        return out.skip(
            Some(&waba_id),
            ENTRY_PSEUDO_FIELD,
            "entry without changes array",
            at(),
        );
    };
    let entry_time = entry.time.0;
    for (c, change) in changes.into_iter().enumerate() {
        let at = At {
            entry: e,
            change: c,
        };
        read_change(change, &waba_id, entry_time, at, out);
    }
}

// `&Cow`, not `&str`: cloning the Cow keeps its borrow of the body.
#[allow(clippy::ptr_arg)]
fn read_change<'a>(
    change: Option<Change<'a>>,
    waba_id: &Cow<'a, str>,
    entry_time: Option<i64>,
    at: At,
    out: &mut Out<'a>,
) {
    let Some(change) = change else {
        return out.skip(
            Some(waba_id),
            CHANGE_PSEUDO_FIELD,
            "change is not an object",
            at.change(),
        );
    };
    let Some(field) = change.field.0 else {
        return out.skip(
            Some(waba_id),
            CHANGE_PSEUDO_FIELD,
            "change without field",
            at.change(),
        );
    };
    let Some(mut value) = change.value.0 else {
        return out.skip(
            Some(waba_id),
            &field,
            "change without value object",
            at.change(),
        );
    };
    match field.as_ref() {
        FIELD_MESSAGES => messages::read(&mut value, waba_id, at, out),
        FIELD_TEMPLATE_STATUS
        | FIELD_TEMPLATE_QUALITY
        | FIELD_TEMPLATE_CATEGORY
        | FIELD_TEMPLATE_COMPONENTS => {
            match templates::update(&value, &field, waba_id, entry_time) {
                Ok(update) => push(&mut out.intake.template_updates, update),
                Err(reason) => out.skip(Some(waba_id), &field, reason, at.change()),
            }
        }
        FIELD_PHONE_QUALITY | FIELD_CAPABILITY | FIELD_ACCOUNT_UPDATE => {
            let update = account::update(&mut value, &field, waba_id, entry_time);
            push(&mut out.intake.account_updates, update);
        }
        FIELD_USER_ID_UPDATE => identity::read_user_id_update(&mut value, &field, waba_id, at, out),
        _ => out.skip(
            Some(waba_id),
            &field,
            "field not used by this service",
            at.change(),
        ),
    }
}
