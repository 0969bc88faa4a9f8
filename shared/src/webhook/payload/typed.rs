//! The single typed pass over well-formed webhook bodies.
//!
//! # Why it exists
//! Every POST is read before its signature can be checked (the body names
//! the tenant, and so the app secret), so reading is on the hot path of the
//! intake. The tolerant walk in the parent module builds a
//! [`serde_json::Value`] tree and then walks it, which costs several times a
//! plain scan of the bytes. This module reads the same bytes once, into
//! borrowed, typed structs shaped like Meta's payloads, and classifies them
//! without a tree.
//!
//! # Why it cannot give a different answer
//! It understands only the well-formed case. Anything the tolerant walk would
//! skip with a reason, or read leniently, is an error here: an unexpected
//! type (`null`, an id sent as a float, a non-object where an object goes), a
//! duplicate known key, an unusable timestamp, an error without an integer
//! code, a missing id. [`read`] then returns `None` and the caller runs the
//! tolerant walk, which stays the reference answer. The one skip it makes
//! itself is for a change field the service does not use, whose reason does
//! not depend on the value's contents. Tests and the `webhook_parse` fuzz
//! target check that whenever this pass answers, its answer equals the
//! tolerant walk's.
//!
//! It refuses every body `serde_json::Value` refuses: keys it does not read
//! are validated as [`Skip`], not skipped unchecked, and the nesting limit
//! is the same because its structs nest exactly as the JSON does.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{
    digits, push_distinct, DeliveryStatus, InboundMessage, Intake, Skipped, StatusError,
    StatusUpdate, TemplateUpdate, TemplateValue, WebhookError, FIELD_MESSAGES,
    FIELD_TEMPLATE_CATEGORY, FIELD_TEMPLATE_COMPONENTS, FIELD_TEMPLATE_QUALITY,
    FIELD_TEMPLATE_STATUS, WHATSAPP_OBJECT,
};

/// The body's [`Intake`], or `None` when the body is not the well-formed
/// case this pass understands (the caller then runs the tolerant walk).
pub(super) fn read(body: &[u8]) -> Option<Intake<'_>> {
    // One UTF-8 check of the whole body is cheaper than serde_json's check
    // of each string it reads from a byte slice.
    let text = std::str::from_utf8(body).ok()?;
    classify(serde_json::from_str::<Body<'_>>(text).ok()?)
}

// ---------------------------------------------------------------------------
// Leaf types: each accepts only what the tolerant walk reads the same way.
// ---------------------------------------------------------------------------

/// A JSON string, borrowed from the body when it has no escapes. `null` and
/// other types are errors.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// An id: a string as sent, or an integer kept as its decimal string (as
/// `id_string` reads it). A float is an error.
struct Id<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Id<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or integer id")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number that is `timestamp` / an error `code` in the tolerant walk:
/// 1 to 18 ASCII digits in a string, or a JSON integer within `i64`.
/// Anything else (a float, an empty or signed string) is an error.
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("digits or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                digits(v)
                    .map(Int)
                    .ok_or_else(|| E::custom("not 1 to 18 digits"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(Int).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Int(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key that is absent (the default) or present with a value `T` accepts.
/// A present `null` is an error, so absent and null never merge.
struct Opt<T>(Option<T>);

impl<T> Default for Opt<T> {
    fn default() -> Self {
        Opt(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Opt<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|t| Opt(Some(t)))
    }
}

/// Any JSON value, validated as `serde_json::Value` would parse it and then
/// dropped: numbers are converted (one out of `f64`'s range is an error),
/// string escapes decoded (a lone surrogate is an error), nesting counted
/// against the same recursion limit. serde's `IgnoredAny` skips without
/// those checks, so a body could pass here that the tolerant walk refuses.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_key::<Skip>()?.is_some() {
                    map.next_value::<Skip>()?;
                }
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A present array of `T`.
type List<T> = Opt<Vec<T>>;

/// A struct read from a JSON object (never from an array, which serde's
/// derive would read positionally): the listed keys into their fields,
/// every other key through [`Skip`], a listed key twice an error.
macro_rules! object {
    ($(#[$doc:meta])* $name:ident { $($key:literal => $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Default)]
        struct $name<'a> {
            $($field: $ty,)*
            _body: PhantomData<&'a str>,
        }

        impl<'de> Deserialize<'de> for $name<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                            match key.as_ref() {
                                $($key => {
                                    if out.$field.0.is_some() {
                                        return Err(de::Error::custom(concat!("duplicate key ", $key)));
                                    }
                                    out.$field = map.next_value()?;
                                })*
                                _ => {
                                    map.next_value::<Skip>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// The shapes, as Meta sends them.
// ---------------------------------------------------------------------------

object!(Body {
    "object" => object: Opt<Str<'a>>,
    "entry" => entry: List<Entry<'a>>,
});

object!(Entry {
    "id" => id: Opt<Id<'a>>,
    "time" => time: Opt<Int>,
    "changes" => changes: List<Change<'a>>,
});

object!(Change {
    "field" => field: Opt<Str<'a>>,
    // Boxed: hundreds of bytes that would otherwise be copied out of each
    // function returning them (about 3 % of the intake's time, measured).
    "value" => value: Opt<Box<ChangeValue<'a>>>,
});

object!(
    /// A change's value. Meta puts `value` before `field`, so the field is
    /// not known while the value is read: these are the keys of every kind
    /// of value the service uses, and `classify` reads the ones the field
    /// calls for.
    ChangeValue {
        "metadata" => metadata: Opt<Metadata<'a>>,
        "messages" => messages: List<Message<'a>>,
        "statuses" => statuses: List<Status<'a>>,
        "errors" => errors: List<ErrorObj<'a>>,
        "contacts" => contacts: List<Contact<'a>>,
        "event" => event: Opt<Str<'a>>,
        "reason" => reason: Opt<Str<'a>>,
        "message_template_id" => message_template_id: Opt<Id<'a>>,
        "message_template_name" => message_template_name: Opt<Str<'a>>,
        "message_template_language" => message_template_language: Opt<Str<'a>>,
        "new_quality_score" => new_quality_score: Opt<Str<'a>>,
        "previous_quality_score" => previous_quality_score: Opt<Str<'a>>,
        "new_category" => new_category: Opt<Str<'a>>,
        "previous_category" => previous_category: Opt<Str<'a>>,
        "correct_category" => correct_category: Opt<Str<'a>>,
        "category_update_timestamp" => category_update_timestamp: Opt<Int>,
    }
);

object!(Metadata {
    "phone_number_id" => phone_number_id: Opt<Id<'a>>,
});

object!(
    /// An inbound message, with the per-type bodies a text is read from.
    Message {
        "id" => id: Opt<Id<'a>>,
        "from" => from: Opt<Id<'a>>,
        "type" => kind: Opt<Str<'a>>,
        "timestamp" => timestamp: Opt<Int>,
        "context" => context: Opt<Context<'a>>,
        "errors" => errors: List<ErrorObj<'a>>,
        "text" => text: Opt<TextBody<'a>>,
        "button" => button: Opt<Button<'a>>,
        "interactive" => interactive: Opt<Interactive<'a>>,
        "image" => image: Opt<Media<'a>>,
        "video" => video: Opt<Media<'a>>,
        "document" => document: Opt<Media<'a>>,
        "order" => order: Opt<Order<'a>>,
        "reaction" => reaction: Opt<Reaction<'a>>,
    }
);

object!(Context {
    "id" => id: Opt<Str<'a>>,
});

object!(TextBody {
    "body" => body: Opt<Str<'a>>,
});

object!(Button {
    "payload" => payload: Opt<Str<'a>>,
    "text" => text: Opt<Str<'a>>,
});

object!(Interactive {
    "type" => kind: Opt<Str<'a>>,
    "button_reply" => button_reply: Opt<Reply<'a>>,
    "list_reply" => list_reply: Opt<Reply<'a>>,
});

object!(Reply {
    "id" => id: Opt<Str<'a>>,
    "title" => title: Opt<Str<'a>>,
});

object!(Media {
    "caption" => caption: Opt<Str<'a>>,
});

object!(Order {
    "text" => text: Opt<Str<'a>>,
});

object!(Reaction {
    "message_id" => message_id: Opt<Str<'a>>,
    "emoji" => emoji: Opt<Str<'a>>,
});

object!(Status {
    "id" => id: Opt<Id<'a>>,
    "status" => status: Opt<Str<'a>>,
    "recipient_id" => recipient_id: Opt<Id<'a>>,
    "timestamp" => timestamp: Opt<Int>,
    "errors" => errors: List<ErrorObj<'a>>,
    "biz_opaque_callback_data" => biz_opaque_callback_data: Opt<Str<'a>>,
});

object!(ErrorObj {
    "code" => code: Opt<Int>,
    "title" => title: Opt<Str<'a>>,
    "message" => message: Opt<Str<'a>>,
    "error_data" => error_data: Opt<ErrorData<'a>>,
});

object!(ErrorData {
    "details" => details: Opt<Str<'a>>,
});

object!(Contact {
    "wa_id" => wa_id: Opt<Str<'a>>,
    "profile" => profile: Opt<Profile<'a>>,
});

object!(Profile {
    "name" => name: Opt<Str<'a>>,
});

// ---------------------------------------------------------------------------
// Classification: the tolerant walk's rules for the well-formed case. Every
// `?` on an Option is a place where the tolerant walk would skip something
// with a reason: the whole body goes that way instead.
// ---------------------------------------------------------------------------

/// The string of a present leaf (a copy of the reference when it borrows
/// from the body).
fn text<'a>(s: &Opt<Str<'a>>) -> Option<Cow<'a, str>> {
    s.0.as_ref().map(|s| s.0.clone())
}

/// The string of a present leaf, owned (for the rare template updates,
/// whose type keeps no borrow).
fn owned(s: &Opt<Str<'_>>) -> Option<String> {
    s.0.as_ref().map(|s| s.0.as_ref().to_owned())
}

/// A present, non-empty id.
fn id_of<'a>(id: &Opt<Id<'a>>) -> Option<Cow<'a, str>> {
    id.0.as_ref().map(|i| i.0.clone()).filter(|s| !s.is_empty())
}

fn list<T>(l: &List<T>) -> &[T] {
    l.0.as_deref().unwrap_or(&[])
}

fn classify(root: Body<'_>) -> Option<Intake<'_>> {
    if root.object.0.as_ref().map(|s| s.0.as_ref()) != Some(WHATSAPP_OBJECT) {
        return None;
    }
    let entries = root.entry.0?;
    let mut intake = Intake::default();
    for entry in &entries {
        let waba_id = id_of(&entry.id)?;
        push_distinct(&mut intake.waba_ids, waba_id.clone());
        let entry_time = entry.time.0.as_ref().map(|t| t.0);
        for change in entry.changes.0.as_deref()? {
            let value = change.value.0.as_ref()?;
            let field = change.field.0.as_ref()?.0.as_ref();
            if let Some(pnid) = phone_number_id(value) {
                push_distinct(&mut intake.phone_number_ids, pnid);
            }
            match field {
                FIELD_MESSAGES => read_messages(value, &waba_id, &mut intake)?,
                FIELD_TEMPLATE_STATUS
                | FIELD_TEMPLATE_QUALITY
                | FIELD_TEMPLATE_CATEGORY
                | FIELD_TEMPLATE_COMPONENTS => {
                    let update = template_update(value, field, &waba_id, entry_time)?;
                    intake.template_updates.push(update);
                }
                _ => intake.skipped.push(Skipped {
                    waba_id: Some(waba_id.to_string()),
                    field: field.to_owned(),
                    reason: "field not used by this service".to_owned(),
                }),
            }
        }
    }
    Some(intake)
}

fn phone_number_id<'a>(value: &ChangeValue<'a>) -> Option<Cow<'a, str>> {
    id_of(&value.metadata.0.as_ref()?.phone_number_id)
}

// `&Cow`, not `&str`: cloning the Cow keeps its borrow of the body.
#[allow(clippy::ptr_arg)]
fn read_messages<'a>(
    value: &ChangeValue<'a>,
    waba_id: &Cow<'a, str>,
    intake: &mut Intake<'a>,
) -> Option<()> {
    let pnid = phone_number_id(value);
    for error in list(&value.errors) {
        intake.errors.push(WebhookError {
            waba_id: waba_id.clone(),
            phone_number_id: pnid.clone(),
            error: status_error(error)?,
        });
    }
    let (messages, statuses) = (list(&value.messages), list(&value.statuses));
    if messages.is_empty() && statuses.is_empty() {
        // Without errors either, the tolerant walk records a skip.
        return (!list(&value.errors).is_empty()).then_some(());
    }
    let pnid = pnid?;
    let contacts = list(&value.contacts);
    for m in messages {
        let message = inbound_message(m, waba_id, &pnid, contacts)?;
        intake.messages.push(message);
    }
    for s in statuses {
        intake.statuses.push(status_update(s, waba_id, &pnid)?);
    }
    Some(())
}

fn status_error<'a>(e: &ErrorObj<'a>) -> Option<StatusError<'a>> {
    Some(StatusError {
        code: e.code.0.as_ref()?.0,
        title: text(&e.title),
        message: text(&e.message),
        details: e.error_data.0.as_ref().and_then(|d| text(&d.details)),
    })
}

fn errors<'a>(list_: &List<ErrorObj<'a>>) -> Option<Vec<StatusError<'a>>> {
    list(list_).iter().map(status_error).collect()
}

fn profile_name<'a>(contacts: &[Contact<'a>], wa_id: &str) -> Option<Cow<'a, str>> {
    let contact = contacts
        .iter()
        .find(|c| c.wa_id.0.as_ref().map(|s| s.0.as_ref()) == Some(wa_id))
        .or_else(|| match contacts {
            // One contact without wa_id: Meta's contacts describe the sender.
            [only] if only.wa_id.0.is_none() => Some(only),
            _ => None,
        })?;
    text(&contact.profile.0.as_ref()?.name)
}

fn inbound_message<'a>(
    m: &Message<'a>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
    contacts: &[Contact<'a>],
) -> Option<InboundMessage<'a>> {
    let id = id_of(&m.id)?;
    let from = id_of(&m.from)?;
    let kind = m.kind.0.as_ref()?.0.clone();
    let timestamp = m.timestamp.0.as_ref()?.0;
    let mut context_id = m.context.0.as_ref().and_then(|c| text(&c.id));
    let mut reply_id = None;
    let text = match kind.as_ref() {
        "text" => m.text.0.as_ref().and_then(|b| text(&b.body)),
        "button" => {
            let b = m.button.0.as_ref();
            reply_id = b.and_then(|b| text(&b.payload));
            b.and_then(|b| text(&b.text)).or_else(|| reply_id.clone())
        }
        "interactive" => {
            let i = m.interactive.0.as_ref();
            let reply = i.and_then(|i| match i.kind.0.as_ref()?.0.as_ref() {
                "button_reply" => i.button_reply.0.as_ref(),
                "list_reply" => i.list_reply.0.as_ref(),
                _ => None,
            });
            reply_id = reply.and_then(|r| text(&r.id));
            reply.and_then(|r| text(&r.title))
        }
        "image" => m.image.0.as_ref().and_then(|b| text(&b.caption)),
        "video" => m.video.0.as_ref().and_then(|b| text(&b.caption)),
        "document" => m.document.0.as_ref().and_then(|b| text(&b.caption)),
        "order" => m
            .order
            .0
            .as_ref()
            .and_then(|b| text(&b.text))
            .filter(|t| !t.is_empty()),
        "reaction" => {
            let r = m.reaction.0.as_ref();
            if context_id.is_none() {
                context_id = r.and_then(|r| text(&r.message_id));
            }
            r.and_then(|r| text(&r.emoji)).filter(|e| !e.is_empty())
        }
        _ => None,
    };
    Some(InboundMessage {
        waba_id: waba_id.clone(),
        phone_number_id: pnid.clone(),
        profile_name: profile_name(contacts, &from),
        id,
        from,
        kind,
        timestamp,
        text,
        context_id,
        reply_id,
        errors: errors(&m.errors)?,
    })
}

fn status_update<'a>(
    s: &Status<'a>,
    waba_id: &Cow<'a, str>,
    pnid: &Cow<'a, str>,
) -> Option<StatusUpdate<'a>> {
    let status = s.status.0.as_ref()?.0.as_ref();
    if status.is_empty() {
        return None;
    }
    Some(StatusUpdate {
        waba_id: waba_id.clone(),
        phone_number_id: pnid.clone(),
        id: id_of(&s.id)?,
        status: DeliveryStatus::from_meta(status),
        recipient_id: id_of(&s.recipient_id)?,
        timestamp: s.timestamp.0.as_ref()?.0,
        errors: errors(&s.errors)?,
        biz_opaque_callback_data: text(&s.biz_opaque_callback_data),
    })
}

fn template_update(
    v: &ChangeValue<'_>,
    field: &str,
    waba_id: &str,
    entry_time: Option<i64>,
) -> Option<TemplateUpdate> {
    let fields = TemplateValue {
        template_id: id_of(&v.message_template_id).map(Cow::into_owned),
        name: owned(&v.message_template_name),
        language: owned(&v.message_template_language),
        event: owned(&v.event),
        reason: owned(&v.reason),
        new_quality_score: owned(&v.new_quality_score),
        previous_quality_score: owned(&v.previous_quality_score),
        new_category: owned(&v.new_category),
        previous_category: owned(&v.previous_category),
        correct_category: owned(&v.correct_category),
        category_update_timestamp: v.category_update_timestamp.0.as_ref().map(|t| t.0),
    };
    super::template_update(fields, field, waba_id, entry_time).ok()
}
