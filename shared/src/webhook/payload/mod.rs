//! Parsing of Meta's WhatsApp webhook POST bodies, and the choice of what the
//! service acts on.
//!
//! # Why it looks like this
//! Meta sends one envelope, `{"object":"whatsapp_business_account","entry":[...]}`,
//! for every WhatsApp webhook field it knows (messages, statuses, templates,
//! account alerts, history syncs, ...), and it adds fields and message types
//! without notice. A webhook we refuse is retried by Meta and in the end
//! dropped, so this module is strict only about the envelope: a body that is
//! not JSON, whose top level is not that envelope, or that holds more than
//! Meta ever sends in one body ([`bounds`]) is a [`PayloadError`] (HTTP 400
//! at the edge). Everything below the envelope is read tolerantly: a
//! malformed entry, change, message or status is recorded in
//! [`Intake::skipped`] with a reason and the rest of the body is still used.
//! Nothing here panics on any input.
//!
//! # One reader, bounded
//! [`parse`] reads the whole body into an [`Intake`]: the WABA and
//! phone-number ids that name the tenant (validated as `WabaId` /
//! `PhoneNumberId` before anything looks them up), inbound messages,
//! delivery statuses, template updates, identity changes, account updates,
//! errors Meta reports for a change, and what was skipped. It runs on every
//! POST before the signature can be checked, so it is both on the hot path
//! and open to anyone: its time is one pass over the bytes and its memory
//! what it keeps, whatever the body ([`bounds`] states the limits, and
//! `tests/bounds/` measures them).
//!
//! It is one reader: serde's borrowed deserialisation straight into typed
//! shapes of Meta's payloads ([`shape`]), where every value is read
//! leniently ([`leaf`]): a value of the wrong type is dropped and remembered
//! as absent, so one bad item becomes one [`Skipped`] without a second
//! reader or a `serde_json::Value` tree. (Until 2026-11 a typed pass and a
//! tolerant `Value` walk had to agree; the tree cost memory in proportion
//! to the body's object count, and every new field went into both.)
//!
//! # What is acted on
//! * field `messages`: its `messages` (any `type`, kept as sent, even unknown
//!   ones; a `system` message that changes a user's number or BSUID is also
//!   an identity change), `statuses` and value-level `errors` arrays, in any
//!   combination, with `contacts` for the users' names and ids.
//! * fields `message_template_status_update`, `message_template_quality_update`,
//!   `template_category_update`, `message_template_components_update`.
//!   A value with `new_quality_score` is a quality change whatever its field:
//!   Meta documents quality changes delivered in the status field.
//! * fields `phone_number_quality_update`, `business_capability_update`,
//!   `account_update`: one [`AccountUpdate`] each.
//! * field `user_id_update` (documented by Meta in 2026, then withdrawn in
//!   favour of the system message): identity changes.
//! * every other field (`history`, `smb_message_echoes`, `smb_app_state_sync`,
//!   `account_alerts`, `security`, ...) becomes one [`Skipped`].
//!
//! Field names used in [`Skipped::field`] for problems above the change level:
//! `"(entry)"` for a malformed entry, `"(change)"` for a change without a field.

mod account;
mod bounds;
mod identity;
mod leaf;
mod messages;
mod model;
mod read;
mod shape;
mod templates;

pub use bounds::MAX_PER_LIST_KIND;
pub use model::*;

/// Everything the intake acts on, plus what it skipped; or why the body is
/// refused.
pub fn parse(body: &[u8]) -> Result<Intake<'_>, PayloadError> {
    read::read(body)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
