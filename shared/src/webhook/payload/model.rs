//! What the reader answers: everything in a body the service acts on, and
//! what it skipped and why. `fwa inspect-webhook` prints it as JSON.
//!
//! Strings borrow from the body where they can (`'a`): every body is read
//! before its signature is checked, and most of what is read is ids and
//! short texts that an owned copy would only allocate for.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

/// Why a body was refused (HTTP 400 at the edge). The messages name what
/// was wrong, never a value from the body.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PayloadError {
    #[error("body is not valid JSON")]
    InvalidJson,
    #[error("body is not a WhatsApp webhook: {0}")]
    WrongShape(&'static str),
    /// More items of one kind than Meta sends in one body (see
    /// [`super::bounds`]).
    #[error("body holds more than {max} {what}: more than Meta sends in one webhook")]
    TooMany { what: &'static str, max: usize },
}

/// Everything the intake acts on, plus what it skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Intake<'a> {
    /// Distinct `entry[].id` (WhatsApp Business Account ids), in first-seen
    /// order, each valid as a `WabaId` (digits): with `phone_number_ids`,
    /// what names the tenant.
    pub waba_ids: Vec<Cow<'a, str>>,
    /// Distinct `entry[].changes[].value.metadata.phone_number_id`, each
    /// valid as a `PhoneNumberId` (digits).
    pub phone_number_ids: Vec<Cow<'a, str>>,
    pub messages: Vec<InboundMessage<'a>>,
    pub statuses: Vec<StatusUpdate<'a>>,
    pub template_updates: Vec<TemplateUpdate>,
    /// A user's phone number or business-scoped user id changed.
    pub identity_changes: Vec<IdentityChange<'a>>,
    /// Messaging limits, quality and restrictions of the account and its
    /// numbers (`phone_number_quality_update`, `business_capability_update`,
    /// `account_update`).
    pub account_updates: Vec<AccountUpdate>,
    /// Value-level `errors` of a `messages` change: errors Meta reports that
    /// are not tied to one message or status (addition to the contract).
    pub errors: Vec<WebhookError<'a>>,
    pub skipped: Vec<Skipped>,
}

/// One message a WhatsApp user sent to one of our numbers.
///
/// The sender's identity is as Meta sent it, from the message and, where
/// the message lacks it, from the change's `contacts` entry for the same
/// user: since 2026 a user with a username may come with a business-scoped
/// user id (BSUID) and no phone number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundMessage<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Cow<'a, str>,
    /// The wamid.
    pub id: Cow<'a, str>,
    /// The sender's wa_id (`from`, or the contact's `wa_id`), digits as Meta
    /// sends them; absent for a user known only by BSUID.
    pub from: Option<Cow<'a, str>>,
    /// The sender's BSUID (`from_user_id`, or the contact's `user_id`), e.g.
    /// `US.13491208655302741918`.
    pub from_user_id: Option<Cow<'a, str>>,
    /// The sender's parent BSUID (`from_parent_user_id`, or the contact's
    /// `parent_user_id`), e.g. `US.ENT.11815799212886844830`.
    pub from_parent_user_id: Option<Cow<'a, str>>,
    /// The sender's username (`contacts[].profile.username`).
    pub username: Option<Cow<'a, str>>,
    /// The sender's profile name (`contacts[].profile.name`).
    pub profile_name: Option<Cow<'a, str>>,
    /// Meta's `type` as sent: "text", "image", "unsupported", or any new
    /// string. Printed as `type`, Meta's own name, by `fwa inspect-webhook`.
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    /// Unix seconds.
    pub timestamp: i64,
    /// What the user typed or tapped: `text.body`, `button.text`, the title of
    /// an interactive button/list reply, a media caption, an order's text, or a
    /// reaction's emoji (None when the reaction was removed).
    pub text: Option<Cow<'a, str>>,
    /// The wamid this message answers: `context.id`, or for a reaction the
    /// `reaction.message_id` it reacts to.
    pub context_id: Option<Cow<'a, str>>,
    /// `context.from`: the business number the answered message came from.
    pub context_from: Option<Cow<'a, str>>,
    /// Addition: the machine-readable reply: `button.payload`, or the `id` of
    /// an interactive button/list reply ([`InboundMessage::reply_kind`] says
    /// which).
    pub reply_id: Option<Cow<'a, str>>,
    /// Where `reply_id` comes from; present exactly when it is.
    pub reply_kind: Option<ReplyKind>,
    /// Addition: `errors[]` on the message (e.g. 131051 for `unsupported`).
    pub errors: Vec<StatusError<'a>>,
}

/// What a reply id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// A template's quick-reply button: `button.payload` (message type
    /// `button`).
    QuickReply,
    /// An interactive reply button: `interactive.button_reply.id`.
    ButtonReply,
    /// An interactive list row: `interactive.list_reply.id`.
    ListReply,
}

/// A user's ids, as one webhook item carried them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRef<'s> {
    pub wa_id: Option<&'s str>,
    pub user_id: Option<&'s str>,
    pub parent_user_id: Option<&'s str>,
    pub username: Option<&'s str>,
}

impl InboundMessage<'_> {
    /// Who sent it, in one shape for matching against the roster.
    pub fn sender(&self) -> UserRef<'_> {
        UserRef {
            wa_id: self.from.as_deref(),
            user_id: self.from_user_id.as_deref(),
            parent_user_id: self.from_parent_user_id.as_deref(),
            username: self.username.as_deref(),
        }
    }
}

/// A delivery status of a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusUpdate<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Cow<'a, str>,
    /// The wamid of our outbound message.
    pub id: Cow<'a, str>,
    pub status: DeliveryStatus,
    /// A user's wa_id, or a group id for group messages. Meta omits it when
    /// the message was sent to a BSUID.
    pub recipient_id: Option<Cow<'a, str>>,
    /// The recipient's BSUID.
    pub recipient_user_id: Option<Cow<'a, str>>,
    /// The recipient's parent BSUID.
    pub recipient_parent_user_id: Option<Cow<'a, str>>,
    /// The recipient's username, from the change's `contacts` (sent with
    /// delivered and read statuses).
    pub recipient_username: Option<Cow<'a, str>>,
    pub timestamp: i64,
    pub errors: Vec<StatusError<'a>>,
    pub biz_opaque_callback_data: Option<Cow<'a, str>>,
    /// What Meta bills for the message, when it says.
    pub pricing: Option<Pricing<'a>>,
    /// The conversation the message opened or belongs to (sent until Graph
    /// v24, whose statuses no longer carry it).
    pub conversation: Option<Conversation<'a>>,
}

impl StatusUpdate<'_> {
    /// Whom it was sent to, in one shape for matching against the roster.
    pub fn recipient(&self) -> UserRef<'_> {
        UserRef {
            wa_id: self.recipient_id.as_deref(),
            user_id: self.recipient_user_id.as_deref(),
            parent_user_id: self.recipient_parent_user_id.as_deref(),
            username: self.recipient_username.as_deref(),
        }
    }
}

/// A status's `pricing` (per-message pricing since 2025-07-01).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pricing<'a> {
    /// `billable`, while Meta still sends it (announced to go; derive
    /// billing from `type` and `category`).
    pub billable: Option<bool>,
    /// `PMP` (per-message pricing), or `CBP` on older statuses.
    pub pricing_model: Option<Cow<'a, str>>,
    /// `marketing`, `marketing_lite`, `utility`, `authentication`,
    /// `authentication_international`, `service`, `referral_conversion`, ...
    pub category: Option<Cow<'a, str>>,
    /// `regular`, `free_customer_service` or `free_entry_point`.
    #[serde(rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

/// A status's `conversation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation<'a> {
    pub id: Option<Cow<'a, str>>,
    /// Unix seconds.
    pub expiration_timestamp: Option<i64>,
    /// `origin.type`.
    pub origin_type: Option<Cow<'a, str>>,
}

/// Meta's `status` of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Anything else as sent, e.g. "played" (voice messages) or "deleted".
    Other(String),
}

impl DeliveryStatus {
    /// Reads Meta's status string; known values compare case-insensitively.
    pub fn from_meta(s: &str) -> Self {
        if s.eq_ignore_ascii_case("sent") {
            Self::Sent
        } else if s.eq_ignore_ascii_case("delivered") {
            Self::Delivered
        } else if s.eq_ignore_ascii_case("read") {
            Self::Read
        } else if s.eq_ignore_ascii_case("failed") {
            Self::Failed
        } else {
            Self::Other(s.to_owned())
        }
    }

    /// The lowercase string this status serializes to.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }

    /// Progress order, so a late or duplicated webhook never moves a message
    /// backwards: Sent 1, Delivered 2, Read 3, Failed 4, Other None.
    ///
    /// Failed ranks highest because it is terminal for our purposes: Meta does
    /// not guarantee webhook order, and a `failed` may arrive before or after
    /// a `sent`; once failed, a later `sent` must not hide the failure.
    pub fn rank(&self) -> Option<u8> {
        match self {
            Self::Sent => Some(1),
            Self::Delivered => Some(2),
            Self::Read => Some(3),
            Self::Failed => Some(4),
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One entry of Meta's `errors[]` (on statuses, messages or a change value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusError<'a> {
    pub code: i64,
    pub title: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
    /// `error_data.details`.
    pub details: Option<Cow<'a, str>>,
}

/// A value-level error of a `messages` change (addition to the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookError<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Option<Cow<'a, str>>,
    pub error: StatusError<'a>,
}

/// A change to one of the WABA's message templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateUpdate {
    pub waba_id: String,
    /// The change's `field` as sent.
    pub field: String,
    /// `message_template_id`; Meta sends a number, kept as a decimal string.
    pub template_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    pub change: TemplateChange,
    /// `entry[].time`, when present.
    pub entry_time: Option<i64>,
}

/// What changed about a template. Serialized with a `"kind"` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplateChange {
    /// `event` as sent (APPROVED, REJECTED, PAUSED, ...); `reason` "NONE" or
    /// null is None.
    Status {
        event: String,
        reason: Option<String>,
    },
    Quality {
        previous: Option<String>,
        new: String,
    },
    /// A category change. `effective_at` is None for a completed change
    /// (`previous_category` -> `new_category`). For an *impending* change Meta
    /// sends `new_category` = the CURRENT category, `correct_category` = the
    /// category it will get and `category_update_timestamp` = when; that is
    /// mapped to previous = current, new = correct, effective_at = when
    /// (addition to the contract).
    Category {
        previous: Option<String>,
        new: String,
        effective_at: Option<i64>,
    },
    /// `message_template_components_update`: nothing to act on but recording.
    Components,
}

/// A user's phone number or business-scoped user id changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityChange<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Option<Cow<'a, str>>,
    pub kind: IdentityChangeKind,
    /// The system message's wamid (None for a `user_id_update`).
    pub message_id: Option<Cow<'a, str>>,
    /// Unix seconds, when sent.
    pub timestamp: Option<i64>,
    /// The ids the user had: the system message's `from` (and
    /// `from_user_id`), `system.previous_user_id` and
    /// `system.previous_parent_user_id`; a `user_id_update`'s `previous`
    /// values.
    pub previous: UserIds<'a>,
    /// The ids the user has now: `system.wa_id`, `system.user_id` and
    /// `system.parent_user_id`; a `user_id_update`'s `current` values.
    pub current: UserIds<'a>,
}

/// How Meta announced an identity change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityChangeKind {
    /// A `system` message of type `user_changed_number` (the pre-v12 name
    /// `customer_changed_number` too): a new phone number, and with it a new
    /// BSUID.
    UserChangedNumber,
    /// A `system` message of type `user_changed_user_id`: a new BSUID only.
    UserChangedUserId,
    /// The `user_id_update` field.
    UserIdUpdate,
}

impl IdentityChangeKind {
    /// Meta's name for it, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityChangeKind::UserChangedNumber => "user_changed_number",
            IdentityChangeKind::UserChangedUserId => "user_changed_user_id",
            IdentityChangeKind::UserIdUpdate => "user_id_update",
        }
    }
}

/// One side of an identity change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserIds<'a> {
    pub wa_id: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub parent_user_id: Option<Cow<'a, str>>,
}

impl UserIds<'_> {
    /// The same ids in the shape the roster is matched with.
    pub fn as_ref(&self) -> UserRef<'_> {
        UserRef {
            wa_id: self.wa_id.as_deref(),
            user_id: self.user_id.as_deref(),
            parent_user_id: self.parent_user_id.as_deref(),
            username: None,
        }
    }
}

/// A change to the account's or a number's messaging limits, quality or
/// standing, from the fields `phone_number_quality_update`,
/// `business_capability_update` and `account_update`. Only what Meta sent
/// is present; limits are kept as sent (a number as its decimal string,
/// `-1` meaning unlimited; or a tier such as `TIER_2K`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountUpdate {
    pub waba_id: String,
    /// The change's `field`.
    pub field: String,
    /// `entry[].time`, when present.
    pub entry_time: Option<i64>,
    /// `event`: e.g. `UPGRADE`, `DOWNGRADE`, `FLAGGED`, `THROUGHPUT_UPGRADE`
    /// (quality); `ACCOUNT_VIOLATION`, `ACCOUNT_RESTRICTION`,
    /// `DISABLED_UPDATE`, `VOLUME_BASED_PRICING_TIER_UPDATE` (account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The business portfolio's messaging limit (since February 2026 the
    /// only limit field: `current_limit` and
    /// `max_daily_conversation_per_phone` were removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_daily_conversations_per_business: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_limit: Option<String>,
    /// Removed by Meta in February 2026; read while still sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_limit: Option<String>,
    /// Removed by Meta in February 2026; read while still sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_daily_conversation_per_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_phone_numbers_per_business: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_phone_numbers_per_waba: Option<String>,
    /// `violation_info.violation_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation_type: Option<String>,
    /// `ban_info.waba_ban_state` and `ban_info.waba_ban_date`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban_date: Option<String>,
    /// `restriction_info[]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<Restriction>,
    /// `volume_tier_info` of a `VOLUME_BASED_PRICING_TIER_UPDATE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_tier: Option<VolumeTier>,
}

/// One `restriction_info[]` entry of an `account_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restriction {
    /// e.g. `RESTRICTED_BIZ_INITIATED_MESSAGING`.
    pub restriction_type: Option<String>,
    /// As sent, e.g. `2026-04-19T13:59:20+0000`.
    pub expiration: Option<String>,
}

/// An `account_update`'s `volume_tier_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeTier {
    pub tier: Option<String>,
    pub pricing_category: Option<String>,
    pub region: Option<String>,
    pub effective_month: Option<String>,
    pub tier_update_time: Option<i64>,
}

/// Something in the body the service did not act on, and why. The reason
/// names what was missing or malformed, never a value from the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub waba_id: Option<String>,
    /// The change field, or "(entry)" / "(change)" for problems above it.
    pub field: String,
    pub reason: Cow<'static, str>,
    /// Where in the body, e.g. `entry[0].changes[1].value.messages[2]`.
    pub at: String,
}
