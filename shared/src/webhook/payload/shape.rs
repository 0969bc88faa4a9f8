//! Meta's webhook shapes, as the reader takes them from the bytes: only the
//! keys the service uses, each leniently (see [`super::leaf`]).
//!
//! Sources, each checked against Meta's reference (2026):
//! * envelope, `messages` and statuses:
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview>,
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/>;
//! * business-scoped user ids (`from_user_id`, `contacts[].user_id`,
//!   `profile.username`, `recipient_user_id`, ...):
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/>;
//! * system messages (`user_changed_number`, `user_changed_user_id`, with
//!   `previous_user_id` / `previous_parent_user_id` since 2026-08-11):
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/system/>
//!   and the changelog of that date;
//! * quick-reply buttons (`button.payload`, `context.from`):
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/button/>;
//! * `phone_number_quality_update`, `business_capability_update`,
//!   `account_update`: their pages under
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/>.

use super::bounds::{
    CHANGES, CONTACTS, ENTRIES, ERRORS, IDENTITY_UPDATES, MESSAGES, RESTRICTIONS, STATUSES,
};
use super::leaf::{object, Boxed, Code, Flag, Id, List, Text, Time};

object!(
    /// The envelope.
    Body {
        "object" => object: Text<'a>,
        "entry" => entry: List<Option<Entry<'a>>, ENTRIES>,
    }
);

object!(Entry {
    "id" => id: Id<'a>,
    "time" => time: Time,
    "changes" => changes: List<Option<Change<'a>>, CHANGES>,
});

object!(Change {
    "field" => field: Text<'a>,
    // Boxed: a value holds the keys of every field the service reads.
    "value" => value: Boxed<ChangeValue<'a>>,
});

object!(
    /// A change's value. Meta puts `value` before `field`, so the field is
    /// not known while the value is read: these are the keys of every field
    /// the service reads, and the field decides which are used.
    ChangeValue {
        "metadata" => metadata: Option<Metadata<'a>>,
        "messages" => messages: List<Option<Message<'a>>, MESSAGES>,
        "statuses" => statuses: List<Option<Status<'a>>, STATUSES>,
        "errors" => errors: List<Option<ErrorObj<'a>>, ERRORS>,
        "contacts" => contacts: List<Option<Contact<'a>>, CONTACTS>,
        "user_id_update" => user_id_update: List<Option<UserIdUpdate<'a>>, IDENTITY_UPDATES>,
        // Template fields.
        "event" => event: Text<'a>,
        "reason" => reason: Text<'a>,
        "message_template_id" => message_template_id: Id<'a>,
        "message_template_name" => message_template_name: Text<'a>,
        "message_template_language" => message_template_language: Text<'a>,
        "new_quality_score" => new_quality_score: Text<'a>,
        "previous_quality_score" => previous_quality_score: Text<'a>,
        "new_category" => new_category: Text<'a>,
        "previous_category" => previous_category: Text<'a>,
        "correct_category" => correct_category: Text<'a>,
        "category_update_timestamp" => category_update_timestamp: Time,
        // Account fields (limits are numbers in one field, strings in another).
        "display_phone_number" => display_phone_number: Id<'a>,
        "old_limit" => old_limit: Id<'a>,
        "current_limit" => current_limit: Id<'a>,
        "max_daily_conversations_per_business" => max_daily_conversations_per_business: Id<'a>,
        "max_daily_conversation_per_phone" => max_daily_conversation_per_phone: Id<'a>,
        "max_phone_numbers_per_business" => max_phone_numbers_per_business: Id<'a>,
        "max_phone_numbers_per_waba" => max_phone_numbers_per_waba: Id<'a>,
        "ban_info" => ban_info: Option<BanInfo<'a>>,
        "violation_info" => violation_info: Option<ViolationInfo<'a>>,
        "restriction_info" => restriction_info: List<Option<RestrictionObj<'a>>, RESTRICTIONS>,
        "volume_tier_info" => volume_tier_info: Option<VolumeTierInfo<'a>>,
    }
);

object!(Metadata {
    "phone_number_id" => phone_number_id: Id<'a>,
});

object!(
    /// An inbound message, with the per-type bodies a text is read from.
    Message {
        "id" => id: Id<'a>,
        "from" => from: Id<'a>,
        "from_user_id" => from_user_id: Text<'a>,
        "from_parent_user_id" => from_parent_user_id: Text<'a>,
        "type" => kind: Text<'a>,
        "timestamp" => timestamp: Time,
        "context" => context: Option<Context<'a>>,
        "errors" => errors: List<Option<ErrorObj<'a>>, ERRORS>,
        "text" => text: Option<TextBody<'a>>,
        "button" => button: Option<Button<'a>>,
        "interactive" => interactive: Boxed<Interactive<'a>>,
        "image" => image: Option<Media<'a>>,
        "video" => video: Option<Media<'a>>,
        "document" => document: Option<Media<'a>>,
        "order" => order: Option<Order<'a>>,
        "reaction" => reaction: Option<Reaction<'a>>,
        "system" => system: Boxed<System<'a>>,
    }
);

object!(Context {
    "id" => id: Text<'a>,
    "from" => from: Text<'a>,
});

object!(TextBody {
    "body" => body: Text<'a>,
});

object!(Button {
    "payload" => payload: Text<'a>,
    "text" => text: Text<'a>,
});

object!(Interactive {
    "type" => kind: Text<'a>,
    "button_reply" => button_reply: Option<Reply<'a>>,
    "list_reply" => list_reply: Option<Reply<'a>>,
});

object!(Reply {
    "id" => id: Text<'a>,
    "title" => title: Text<'a>,
});

object!(Media {
    "caption" => caption: Text<'a>,
});

object!(Order {
    "text" => text: Text<'a>,
});

object!(Reaction {
    "message_id" => message_id: Text<'a>,
    "emoji" => emoji: Text<'a>,
});

object!(
    /// A `system` message's body: a user's phone number or BSUID changed.
    /// `new_wa_id` and `customer` are the pre-v12 names.
    System {
        "type" => kind: Text<'a>,
        "wa_id" => wa_id: Id<'a>,
        "new_wa_id" => new_wa_id: Id<'a>,
        "user_id" => user_id: Text<'a>,
        "parent_user_id" => parent_user_id: Text<'a>,
        "previous_user_id" => previous_user_id: Text<'a>,
        "previous_parent_user_id" => previous_parent_user_id: Text<'a>,
    }
);

object!(Status {
    "id" => id: Id<'a>,
    "status" => status: Text<'a>,
    "recipient_id" => recipient_id: Id<'a>,
    "recipient_user_id" => recipient_user_id: Text<'a>,
    "recipient_parent_user_id" => recipient_parent_user_id: Text<'a>,
    "timestamp" => timestamp: Time,
    "errors" => errors: List<Option<ErrorObj<'a>>, ERRORS>,
    "biz_opaque_callback_data" => biz_opaque_callback_data: Text<'a>,
    "pricing" => pricing: Option<PricingObj<'a>>,
    "conversation" => conversation: Option<ConversationObj<'a>>,
});

object!(PricingObj {
    "billable" => billable: Flag,
    "pricing_model" => pricing_model: Text<'a>,
    "category" => category: Text<'a>,
    "type" => kind: Text<'a>,
});

object!(ConversationObj {
    "id" => id: Text<'a>,
    "expiration_timestamp" => expiration_timestamp: Time,
    "origin" => origin: Option<Origin<'a>>,
});

object!(Origin {
    "type" => kind: Text<'a>,
});

object!(ErrorObj {
    "code" => code: Code,
    "title" => title: Text<'a>,
    "message" => message: Text<'a>,
    "error_data" => error_data: Option<ErrorData<'a>>,
});

object!(ErrorData {
    "details" => details: Text<'a>,
});

object!(Contact {
    "wa_id" => wa_id: Text<'a>,
    "user_id" => user_id: Text<'a>,
    "parent_user_id" => parent_user_id: Text<'a>,
    "profile" => profile: Option<Profile<'a>>,
});

object!(Profile {
    "name" => name: Text<'a>,
    "username" => username: Text<'a>,
});

object!(
    /// One item of a `user_id_update` value (the field Meta documented in
    /// spring 2026 and withdrew on 2026-08-11 in favour of the system
    /// message; read while it may still arrive).
    UserIdUpdate {
        "wa_id" => wa_id: Id<'a>,
        "timestamp" => timestamp: Time,
        "user_id" => user_id: Option<Transition<'a>>,
        "parent_user_id" => parent_user_id: Option<Transition<'a>>,
    }
);

object!(Transition {
    "previous" => previous: Text<'a>,
    "current" => current: Text<'a>,
});

object!(BanInfo {
    "waba_ban_state" => waba_ban_state: Text<'a>,
    "waba_ban_date" => waba_ban_date: Text<'a>,
});

object!(ViolationInfo {
    "violation_type" => violation_type: Text<'a>,
});

object!(RestrictionObj {
    "restriction_type" => restriction_type: Text<'a>,
    "expiration" => expiration: Text<'a>,
});

object!(VolumeTierInfo {
    "tier" => tier: Text<'a>,
    "pricing_category" => pricing_category: Text<'a>,
    "region" => region: Text<'a>,
    "effective_month" => effective_month: Text<'a>,
    "tier_update_time" => tier_update_time: Time,
});
