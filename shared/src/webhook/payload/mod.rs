//! Parsing of Meta's WhatsApp webhook POST bodies, and the choice of what the
//! service acts on.
//!
//! # Why it looks like this
//! Meta sends one envelope, `{"object":"whatsapp_business_account","entry":[...]}`,
//! for every WhatsApp webhook field it knows (messages, statuses, templates,
//! account alerts, history syncs, ...), and it adds fields and message types
//! without notice. A webhook we refuse is retried by Meta and in the end
//! dropped, so this module is strict only about the envelope: a body that is
//! not JSON, or whose top level is not that envelope, is a [`PayloadError`]
//! (HTTP 400 at the edge). Everything below the envelope is read tolerantly:
//! a malformed entry, change, message or status is recorded in
//! [`Intake::skipped`] with a reason and the rest of the body is still used.
//! Nothing here panics on any input, and deep nesting is refused by
//! serde_json's recursion limit (128) as [`PayloadError::InvalidJson`].
//!
//! # One entry point, two readers
//! [`parse`] reads the whole body into an [`Intake`]: the WABA and
//! phone-number ids that name the tenant, inbound messages, delivery
//! statuses, template updates, errors Meta reports for a change, and what
//! was skipped. It runs on every POST before the signature can be checked
//! (the ids name the tenant, and so the app secret), so it is on the hot
//! path. A well-formed body takes one typed, borrowed pass ([`typed`]); any
//! other body, or anything that pass does not understand, takes the
//! tolerant walk over a [`serde_json::Value`] tree, which is the reference
//! answer. Tests and a fuzz target check that the two agree.
//!
//! # What is acted on
//! * field `messages`: its `messages` (any `type`, kept as sent, even unknown
//!   ones), `statuses` and value-level `errors` arrays, in any combination.
//! * fields `message_template_status_update`, `message_template_quality_update`,
//!   `template_category_update`, `message_template_components_update`.
//!   A value with `new_quality_score` is a quality change whatever its field:
//!   Meta documents quality changes delivered in the status field.
//! * every other field (`history`, `smb_message_echoes`, `smb_app_state_sync`,
//!   `account_alerts`, `security`, ...) becomes one [`Skipped`].
//!
//! Field names used in [`Skipped::field`] for problems above the change level:
//! `"(entry)"` for a malformed entry, `"(change)"` for a change without a field.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

mod typed;

/// The only `object` Meta sends for WhatsApp webhooks.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";
const FIELD_MESSAGES: &str = "messages";
const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";
const FIELD_TEMPLATE_QUALITY: &str = "message_template_quality_update";
const FIELD_TEMPLATE_CATEGORY: &str = "template_category_update";
const FIELD_TEMPLATE_COMPONENTS: &str = "message_template_components_update";
const ENTRY_PSEUDO_FIELD: &str = "(entry)";
const CHANGE_PSEUDO_FIELD: &str = "(change)";

/// Why a body was refused (maps to HTTP 400 at the edge).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PayloadError {
    #[error("body is not valid JSON")]
    InvalidJson,
    #[error("body is not a WhatsApp webhook: {0}")]
    WrongShape(&'static str),
}

/// Everything the intake acts on, plus what it skipped.
///
/// Strings borrow from the body where they can (`'a`): every body is read
/// before its signature is checked, and most of what is read is ids and
/// short texts that an owned copy would only allocate for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Intake<'a> {
    /// Distinct `entry[].id` (WhatsApp Business Account ids), in first-seen
    /// order: with `phone_number_ids`, what names the tenant.
    pub waba_ids: Vec<Cow<'a, str>>,
    /// Distinct `entry[].changes[].value.metadata.phone_number_id`.
    pub phone_number_ids: Vec<Cow<'a, str>>,
    pub messages: Vec<InboundMessage<'a>>,
    pub statuses: Vec<StatusUpdate<'a>>,
    pub template_updates: Vec<TemplateUpdate>,
    /// Value-level `errors` of a `messages` change: errors Meta reports that
    /// are not tied to one message or status (addition to the contract).
    pub errors: Vec<WebhookError<'a>>,
    pub skipped: Vec<Skipped>,
}

/// One message a WhatsApp user sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundMessage<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Cow<'a, str>,
    /// The wamid.
    pub id: Cow<'a, str>,
    /// The sender's wa_id, digits as Meta sends them.
    pub from: Cow<'a, str>,
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
    /// Addition: the machine-readable reply: `button.payload`, or the `id` of
    /// an interactive button/list reply.
    pub reply_id: Option<Cow<'a, str>>,
    /// Addition: the sender's profile name from the change's `contacts`.
    pub profile_name: Option<Cow<'a, str>>,
    /// Addition: `errors[]` on the message (e.g. 131051 for `unsupported`).
    pub errors: Vec<StatusError<'a>>,
}

/// A delivery status of a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusUpdate<'a> {
    pub waba_id: Cow<'a, str>,
    pub phone_number_id: Cow<'a, str>,
    /// The wamid of our outbound message.
    pub id: Cow<'a, str>,
    pub status: DeliveryStatus,
    /// A user's wa_id, or a group id for group messages.
    pub recipient_id: Cow<'a, str>,
    pub timestamp: i64,
    pub errors: Vec<StatusError<'a>>,
    pub biz_opaque_callback_data: Option<Cow<'a, str>>,
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

/// Something in the body the service did not act on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub waba_id: Option<String>,
    /// The change field, or "(entry)" / "(change)" for problems above it.
    pub field: String,
    pub reason: String,
}

// ---------------------------------------------------------------------------
// parse
// ---------------------------------------------------------------------------

const WRONG_OBJECT: PayloadError =
    PayloadError::WrongShape("object must be whatsapp_business_account");
const NOT_AN_OBJECT: PayloadError = PayloadError::WrongShape("top level must be a JSON object");
const ENTRY_NOT_ARRAY: PayloadError = PayloadError::WrongShape("entry must be an array");

fn parse_json(body: &[u8]) -> Result<Value, PayloadError> {
    serde_json::from_slice(body).map_err(|_| PayloadError::InvalidJson)
}

fn push_distinct<'a>(list: &mut Vec<Cow<'a, str>>, s: Cow<'a, str>) {
    if !s.is_empty() && !list.contains(&s) {
        list.push(s);
    }
}

/// Checks the envelope and returns the entries.
fn envelope(root: &Value) -> Result<&Vec<Value>, PayloadError> {
    let top = root.as_object().ok_or(NOT_AN_OBJECT)?;
    if top.get("object").and_then(Value::as_str) != Some(WHATSAPP_OBJECT) {
        return Err(WRONG_OBJECT);
    }
    top.get("entry")
        .and_then(Value::as_array)
        .ok_or(ENTRY_NOT_ARRAY)
}

/// The routing ids: every entry's id and every change's phone number id,
/// whatever else is wrong with the entry or change.
fn read_routing(entries: &[Value], intake: &mut Intake<'static>) {
    for entry in entries.iter().filter_map(Value::as_object) {
        if let Some(id) = entry.get("id").and_then(id_string) {
            push_distinct(&mut intake.waba_ids, id.into());
        }
        for change in changes_of(entry).iter().filter_map(Value::as_object) {
            if let Some(pnid) = change
                .get("value")
                .and_then(Value::as_object)
                .and_then(phone_number_id_of)
            {
                push_distinct(&mut intake.phone_number_ids, pnid.into());
            }
        }
    }
}

fn changes_of(entry: &Map<String, Value>) -> &[Value] {
    entry
        .get("changes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn phone_number_id_of(value: &Map<String, Value>) -> Option<String> {
    value
        .get("metadata")
        .and_then(Value::as_object)
        .and_then(|m| m.get("phone_number_id"))
        .and_then(id_string)
        .filter(|s| !s.is_empty())
}

/// Everything the intake acts on, plus what it skipped: one typed pass over
/// a well-formed body, the tolerant walk over any other.
pub fn parse(body: &[u8]) -> Result<Intake<'_>, PayloadError> {
    match typed::read(body) {
        Some(intake) => Ok(intake),
        None => parse_tolerant(body),
    }
}

/// The reference answer: a [`serde_json::Value`] tree, walked tolerantly.
/// [`parse`] always gives this answer, faster when it can; this is public so
/// that the fuzz target can check that.
pub fn parse_tolerant(body: &[u8]) -> Result<Intake<'static>, PayloadError> {
    let root = parse_json(body)?;
    let entries = envelope(&root)?;
    let mut intake = Intake::default();
    read_routing(entries, &mut intake);
    for entry in entries {
        read_entry(entry, &mut intake);
    }
    Ok(intake)
}

fn skip(intake: &mut Intake, waba_id: Option<&str>, field: &str, reason: impl Into<String>) {
    intake.skipped.push(Skipped {
        waba_id: waba_id.map(str::to_owned),
        field: field.to_owned(),
        reason: reason.into(),
    });
}

fn read_entry(entry: &Value, intake: &mut Intake<'static>) {
    let Some(entry) = entry.as_object() else {
        return skip(intake, None, ENTRY_PSEUDO_FIELD, "entry is not an object");
    };
    let Some(waba_id) = entry
        .get("id")
        .and_then(id_string)
        .filter(|s| !s.is_empty())
    else {
        return skip(intake, None, ENTRY_PSEUDO_FIELD, "entry without id");
    };
    let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
        return skip(
            intake,
            Some(&waba_id),
            ENTRY_PSEUDO_FIELD,
            "entry without changes array",
        );
    };
    let entry_time = entry.get("time").and_then(timestamp);
    for change in changes {
        read_change(change, &waba_id, entry_time, intake);
    }
}

fn read_change(
    change: &Value,
    waba_id: &str,
    entry_time: Option<i64>,
    intake: &mut Intake<'static>,
) {
    let Some(change) = change.as_object() else {
        return skip(
            intake,
            Some(waba_id),
            CHANGE_PSEUDO_FIELD,
            "change is not an object",
        );
    };
    let Some(field) = change.get("field").and_then(Value::as_str) else {
        return skip(
            intake,
            Some(waba_id),
            CHANGE_PSEUDO_FIELD,
            "change without field",
        );
    };
    let Some(value) = change.get("value").and_then(Value::as_object) else {
        return skip(intake, Some(waba_id), field, "change without value object");
    };
    match field {
        FIELD_MESSAGES => read_messages_value(value, waba_id, intake),
        FIELD_TEMPLATE_STATUS
        | FIELD_TEMPLATE_QUALITY
        | FIELD_TEMPLATE_CATEGORY
        | FIELD_TEMPLATE_COMPONENTS => {
            read_template_value(value, field, waba_id, entry_time, intake)
        }
        _ => skip(
            intake,
            Some(waba_id),
            field,
            "field not used by this service",
        ),
    }
}

/// The optional array under `key`: Ok(empty) if absent or null, Err if another type.
fn array_of<'v>(value: &'v Map<String, Value>, key: &str) -> Result<&'v [Value], ()> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(()),
    }
}

fn read_messages_value(value: &Map<String, Value>, waba_id: &str, intake: &mut Intake<'static>) {
    let pnid = phone_number_id_of(value);
    let mut acted = false;
    for key in ["messages", "statuses", "errors", "contacts"] {
        if array_of(value, key).is_err() {
            skip(
                intake,
                Some(waba_id),
                FIELD_MESSAGES,
                format!("`{key}` is not an array"),
            );
        }
    }
    let messages = array_of(value, "messages").unwrap_or(&[]);
    let statuses = array_of(value, "statuses").unwrap_or(&[]);
    let errors = array_of(value, "errors").unwrap_or(&[]);
    let contacts = array_of(value, "contacts").unwrap_or(&[]);

    for error in errors {
        acted = true;
        match status_error(error) {
            Some(error) => intake.errors.push(WebhookError {
                waba_id: waba_id.to_owned().into(),
                phone_number_id: pnid.clone().map(Cow::Owned),
                error,
            }),
            None => skip(
                intake,
                Some(waba_id),
                FIELD_MESSAGES,
                "change error without integer code",
            ),
        }
    }
    if messages.is_empty() && statuses.is_empty() {
        if !acted {
            skip(
                intake,
                Some(waba_id),
                FIELD_MESSAGES,
                "messages change with no messages, statuses or errors",
            );
        }
        return;
    }
    let Some(pnid) = pnid else {
        let n = messages.len() + statuses.len();
        return skip(
            intake,
            Some(waba_id),
            FIELD_MESSAGES,
            format!("change without metadata.phone_number_id ({n} messages/statuses not read)"),
        );
    };
    for message in messages {
        match inbound_message(message, waba_id, &pnid, contacts) {
            Ok(m) => intake.messages.push(m),
            Err(reason) => skip(intake, Some(waba_id), FIELD_MESSAGES, reason),
        }
    }
    for status in statuses {
        match status_update(status, waba_id, &pnid, intake) {
            Ok(s) => intake.statuses.push(s),
            Err(reason) => skip(intake, Some(waba_id), FIELD_MESSAGES, reason),
        }
    }
}

/// A non-empty string, or an id sent as a number (kept as its decimal string).
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else {
                // A float-looking id (e.g. 1.6e15): only if it is a whole number.
                n.as_f64()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| format!("{f:.0}"))
            }
        }
        _ => None,
    }
}

fn opt_str(obj: Option<&Value>, key: &str) -> Option<String> {
    obj.and_then(Value::as_object)
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A number Meta sends as a string (timestamps, some error codes): 1 to 18
/// ASCII digits, so that it always fits an `i64`; anything else is None.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Unix seconds from a string of digits or a JSON number (floats truncated).
fn timestamp(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => digits(s),
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                .map(|f| f.trunc() as i64)
        }),
        _ => None,
    }
}

/// An owned copy: the tolerant walk's tree is dropped before its answer is used.
fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(s.to_owned())
}

fn status_error(v: &Value) -> Option<StatusError<'static>> {
    let o = v.as_object()?;
    let code = match o.get("code")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => digits(s)?,
        _ => return None,
    };
    Some(StatusError {
        code,
        title: o.get("title").and_then(Value::as_str).map(owned),
        message: o.get("message").and_then(Value::as_str).map(owned),
        details: opt_str(o.get("error_data"), "details").map(Cow::Owned),
    })
}

fn errors_of(o: &Map<String, Value>) -> (Vec<StatusError<'static>>, usize) {
    let list = array_of(o, "errors").unwrap_or(&[]);
    let parsed: Vec<StatusError> = list.iter().filter_map(status_error).collect();
    let dropped = list.len() - parsed.len();
    (parsed, dropped)
}

fn profile_name(contacts: &[Value], wa_id: &str) -> Option<String> {
    let mut contacts = contacts.iter().filter_map(Value::as_object);
    let matching = contacts
        .clone()
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(wa_id));
    // One contact without wa_id: Meta's contacts describe the sender.
    let c = matching.or_else(|| {
        let first = contacts.next()?;
        (contacts.next().is_none() && first.get("wa_id").is_none()).then_some(first)
    })?;
    opt_str(c.get("profile"), "name")
}

fn inbound_message(
    v: &Value,
    waba_id: &str,
    pnid: &str,
    contacts: &[Value],
) -> Result<InboundMessage<'static>, String> {
    let Some(m) = v.as_object() else {
        return Err("message is not an object".into());
    };
    let Some(id) = m.get("id").and_then(id_string).filter(|s| !s.is_empty()) else {
        return Err("message without id".into());
    };
    let Some(from) = m.get("from").and_then(id_string).filter(|s| !s.is_empty()) else {
        return Err(format!("message {id} without from"));
    };
    let Some(kind) = m.get("type").and_then(Value::as_str) else {
        return Err(format!("message {id} without type"));
    };
    let Some(ts) = m.get("timestamp").and_then(timestamp) else {
        return Err(format!("message {id} without a usable timestamp"));
    };
    let body = m.get(kind);
    let mut context_id = opt_str(m.get("context"), "id");
    let mut reply_id = None;
    let text = match kind {
        "text" => opt_str(body, "body"),
        "button" => {
            reply_id = opt_str(body, "payload");
            opt_str(body, "text").or_else(|| reply_id.clone())
        }
        "interactive" => {
            let reply = opt_str(body, "type").and_then(|t| {
                matches!(t.as_str(), "button_reply" | "list_reply")
                    .then(|| body.and_then(Value::as_object).and_then(|b| b.get(&t)))
                    .flatten()
            });
            reply_id = opt_str(reply, "id");
            opt_str(reply, "title")
        }
        "image" | "video" | "document" => opt_str(body, "caption"),
        "order" => opt_str(body, "text").filter(|t| !t.is_empty()),
        "reaction" => {
            if context_id.is_none() {
                context_id = opt_str(body, "message_id");
            }
            opt_str(body, "emoji").filter(|e| !e.is_empty())
        }
        _ => None,
    };
    let (errors, _) = errors_of(m);
    Ok(InboundMessage {
        waba_id: owned(waba_id),
        phone_number_id: owned(pnid),
        profile_name: profile_name(contacts, &from).map(Cow::Owned),
        id: id.into(),
        from: from.into(),
        kind: owned(kind),
        timestamp: ts,
        text: text.map(Cow::Owned),
        context_id: context_id.map(Cow::Owned),
        reply_id: reply_id.map(Cow::Owned),
        errors,
    })
}

fn status_update(
    v: &Value,
    waba_id: &str,
    pnid: &str,
    intake: &mut Intake<'static>,
) -> Result<StatusUpdate<'static>, String> {
    let Some(s) = v.as_object() else {
        return Err("status is not an object".into());
    };
    let Some(id) = s.get("id").and_then(id_string).filter(|s| !s.is_empty()) else {
        return Err("status without id".into());
    };
    let Some(status) = s
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(format!("status {id} without status"));
    };
    let Some(recipient_id) = s
        .get("recipient_id")
        .and_then(id_string)
        .filter(|s| !s.is_empty())
    else {
        return Err(format!("status {id} without recipient_id"));
    };
    let Some(ts) = s.get("timestamp").and_then(timestamp) else {
        return Err(format!("status {id} without a usable timestamp"));
    };
    let (errors, dropped) = errors_of(s);
    if dropped > 0 {
        skip(
            intake,
            Some(waba_id),
            FIELD_MESSAGES,
            format!("status {id}: {dropped} error(s) without integer code"),
        );
    }
    Ok(StatusUpdate {
        waba_id: owned(waba_id),
        phone_number_id: owned(pnid),
        id: id.into(),
        status: DeliveryStatus::from_meta(status),
        recipient_id: recipient_id.into(),
        timestamp: ts,
        errors,
        biz_opaque_callback_data: s
            .get("biz_opaque_callback_data")
            .and_then(Value::as_str)
            .map(owned),
    })
}

fn read_template_value(
    value: &Map<String, Value>,
    field: &str,
    waba_id: &str,
    entry_time: Option<i64>,
    intake: &mut Intake,
) {
    let get = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
    let fields = TemplateValue {
        template_id: value
            .get("message_template_id")
            .and_then(id_string)
            .filter(|s| !s.is_empty()),
        name: get("message_template_name"),
        language: get("message_template_language"),
        event: get("event"),
        reason: get("reason"),
        new_quality_score: get("new_quality_score"),
        previous_quality_score: get("previous_quality_score"),
        new_category: get("new_category"),
        previous_category: get("previous_category"),
        correct_category: get("correct_category"),
        category_update_timestamp: value.get("category_update_timestamp").and_then(timestamp),
    };
    match template_update(fields, field, waba_id, entry_time) {
        Ok(update) => intake.template_updates.push(update),
        Err(reason) => skip(intake, Some(waba_id), field, reason),
    }
}

/// The keys of a template field's value the service reads, as either reader
/// found them.
struct TemplateValue {
    template_id: Option<String>,
    name: Option<String>,
    language: Option<String>,
    event: Option<String>,
    reason: Option<String>,
    new_quality_score: Option<String>,
    previous_quality_score: Option<String>,
    new_category: Option<String>,
    previous_category: Option<String>,
    correct_category: Option<String>,
    category_update_timestamp: Option<i64>,
}

/// What a template field's value says changed, or why nothing can be said
/// (the skip reason). Shared by both readers, so they cannot disagree.
fn template_update(
    v: TemplateValue,
    field: &str,
    waba_id: &str,
    entry_time: Option<i64>,
) -> Result<TemplateUpdate, &'static str> {
    let change = if let Some(new) = v.new_quality_score {
        // Meta also sends quality changes in the status field.
        TemplateChange::Quality {
            previous: v.previous_quality_score,
            new,
        }
    } else {
        match field {
            FIELD_TEMPLATE_STATUS => TemplateChange::Status {
                event: v.event.ok_or("template status update without event")?,
                reason: v.reason.filter(|r| !r.is_empty() && r != "NONE"),
            },
            FIELD_TEMPLATE_CATEGORY => match (v.correct_category, v.new_category) {
                // Impending: new_category is the current one, correct_category the future one.
                (Some(correct), current) => TemplateChange::Category {
                    previous: current,
                    new: correct,
                    effective_at: v.category_update_timestamp,
                },
                (None, Some(new)) => TemplateChange::Category {
                    previous: v.previous_category,
                    new,
                    effective_at: None,
                },
                (None, None) => return Err("template category update without new_category"),
            },
            FIELD_TEMPLATE_COMPONENTS => TemplateChange::Components,
            _ => return Err("template quality update without new_quality_score"),
        }
    };
    Ok(TemplateUpdate {
        waba_id: waba_id.to_owned(),
        field: field.to_owned(),
        template_id: v.template_id,
        name: v.name,
        language: v.language,
        change,
        entry_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Meta's documented examples, kept in the repo (`fixtures/meta`).
    const EXAMPLES_DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/meta/webhook-examples"
    );

    fn example(name: &str) -> Vec<u8> {
        let path = format!("{EXAMPLES_DIR}/metadocs__{name}__1.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn example_n(name: &str, n: u32) -> Vec<u8> {
        let path = format!("{EXAMPLES_DIR}/metadocs__{name}__{n}.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn parse_ok(body: &[u8]) -> Intake<'_> {
        match parse(body) {
            Ok(i) => i,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap_or_default()
    }

    /// Both readers on one body: the answer, and whether the typed pass gave
    /// it. Fails the test when the typed pass answers differently from the
    /// tolerant walk, or `parse` from either.
    fn read_both(body: &[u8]) -> (Result<Intake<'_>, PayloadError>, bool) {
        let reference = parse_tolerant(body);
        let fast = typed::read(body);
        if let Some(fast) = &fast {
            assert_eq!(
                Ok(fast),
                reference.as_ref(),
                "the typed pass differs on {}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse(body), reference);
        (reference, fast.is_some())
    }

    /// A `messages` change body around the given value parts.
    fn messages_body(waba: &str, pnid: &str, parts: Value) -> Vec<u8> {
        let mut value = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid}
        });
        if let (Some(v), Some(p)) = (value.as_object_mut(), parts.as_object()) {
            v.extend(p.clone());
        }
        bytes(&json!({"object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": [{"field": "messages", "value": value}]}]}))
    }

    fn example_files() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let dir = std::fs::read_dir(EXAMPLES_DIR)
            .unwrap_or_else(|e| panic!("read_dir {EXAMPLES_DIR}: {e}"));
        for f in dir.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                out.push((name, std::fs::read(f.path()).unwrap_or_default()));
            }
        }
        out.sort();
        out
    }

    /// Every Meta example parses, and the typed pass reads every one it
    /// answers for as the tolerant walk does.
    #[test]
    fn every_example_parses_and_both_readers_agree() {
        let files = example_files();
        assert!(
            files.len() >= 20,
            "expected the example corpus, found {}",
            files.len()
        );
        for (name, body) in files {
            let (intake, typed) = read_both(&body);
            assert!(typed, "{name}: the typed pass declined a Meta example");
            let intake = intake.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!intake.waba_ids.is_empty(), "{name}: no waba id");
            // Every change is accounted for: acted on or skipped.
            let acted =
                intake.messages.len() + intake.statuses.len() + intake.template_updates.len();
            assert!(acted + intake.skipped.len() > 0, "{name}: nothing recorded");
        }
    }

    /// A delivered status keeps its wamid, recipient and string timestamp.
    #[test]
    fn status_delivered_example() {
        let i_body = example("status_delivered");
        let i = parse_ok(&i_body);
        assert_eq!(i.statuses.len(), 1);
        let s = &i.statuses[0];
        assert_eq!(
            s.id,
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
        );
        assert_eq!(s.status, DeliveryStatus::Delivered);
        assert_eq!(s.recipient_id, "16505551234");
        assert_eq!(s.timestamp, 1_750_263_773);
        assert_eq!(s.waba_id, "102290129340398");
        assert_eq!(s.phone_number_id, "106540352242922");
        assert!(s.errors.is_empty());
        assert_eq!(s.biz_opaque_callback_data, None);
        assert!(i.messages.is_empty() && i.skipped.is_empty());
        assert_eq!(i.phone_number_ids, vec!["106540352242922"]);
    }

    /// An approved template: event, no reason ("NONE"), name, language, numeric id as string.
    #[test]
    fn template_status_approved_example() {
        let i_body = example("template_status_approved");
        let i = parse_ok(&i_body);
        assert_eq!(i.template_updates.len(), 1);
        let t = &i.template_updates[0];
        assert_eq!(
            t.change,
            TemplateChange::Status {
                event: "APPROVED".into(),
                reason: None
            }
        );
        assert_eq!(t.template_id.as_deref(), Some("1689556908129832"));
        assert_eq!(t.name.as_deref(), Some("order_confirmation"));
        assert_eq!(t.language.as_deref(), Some("en-US"));
        assert_eq!(t.field, "message_template_status_update");
        assert_eq!(t.entry_time, Some(1_751_247_548));
        assert!(i.skipped.is_empty());
    }

    /// A quality change delivered in the status field is a Quality change.
    #[test]
    fn template_quality_update_in_status_field_example() {
        let i_body = example("template_quality_update_in_status_field");
        let i = parse_ok(&i_body);
        assert_eq!(i.template_updates.len(), 1);
        let t = &i.template_updates[0];
        assert_eq!(
            t.change,
            TemplateChange::Quality {
                previous: Some("GREEN".into()),
                new: "YELLOW".into()
            }
        );
        assert_eq!(t.template_id.as_deref(), Some("806312974732579"));
        assert_eq!(t.name.as_deref(), Some("welcome_template"));
        assert_eq!(t.field, "message_template_status_update");
    }

    /// Impending (correct_category) and completed (previous_category) category changes.
    #[test]
    fn template_category_update_examples() {
        let impending_body = example_n("template_category_update", 1);
        let impending = parse_ok(&impending_body);
        assert_eq!(impending.template_updates.len(), 1);
        assert_eq!(
            impending.template_updates[0].change,
            TemplateChange::Category {
                previous: Some("UTILITY".into()),
                new: "MARKETING".into(),
                effective_at: Some(1_746_169_200)
            }
        );
        assert_eq!(
            impending.template_updates[0].template_id.as_deref(),
            Some("278077987957091")
        );
        let done_body = example_n("template_category_update", 2);
        let done = parse_ok(&done_body);
        assert_eq!(
            done.template_updates[0].change,
            TemplateChange::Category {
                previous: Some("UTILITY".into()),
                new: "MARKETING".into(),
                effective_at: None
            }
        );
        assert_eq!(done.template_updates[0].entry_time, Some(1_746_169_200));
    }

    /// Components updates are recorded as Components.
    #[test]
    fn template_components_update_example() {
        let i_body = example("message_template_components_update");
        let i = parse_ok(&i_body);
        assert_eq!(i.template_updates.len(), 1);
        assert_eq!(i.template_updates[0].change, TemplateChange::Components);
        assert_eq!(
            i.template_updates[0].name.as_deref(),
            Some("order_confirmation")
        );
    }

    /// A quick-reply button tap: text, payload and the replied-to wamid.
    #[test]
    fn message_button_example() {
        let i_body = example("message_button");
        let i = parse_ok(&i_body);
        assert_eq!(i.messages.len(), 1);
        let m = &i.messages[0];
        assert_eq!(m.kind, "button");
        assert_eq!(m.text.as_deref(), Some("I didn't request a code"));
        assert_eq!(m.reply_id.as_deref(), Some("DID_NOT_REQUEST_CODE"));
        assert_eq!(
            m.context_id.as_deref(),
            Some("wamid.HBgLMTIxMTU1NTE0NTYVAgARGBJDMDEyMTFDNTE5NkFCOUU3QTEA")
        );
        assert_eq!(m.from, "12345678");
        assert_eq!(m.timestamp, 1_753_919_111);
        assert_eq!(m.profile_name.as_deref(), Some("John"));
        assert_eq!(m.phone_number_id, "1234567890");
        assert_eq!(m.waba_id, "320580347795883");
    }

    /// Interactive replies carry the title as text and the row/button id as reply_id.
    #[test]
    fn interactive_reply_examples() {
        let b_body = example("message_interactive_button_reply");
        let b = parse_ok(&b_body);
        assert_eq!(b.messages.len(), 1);
        assert_eq!(b.messages[0].kind, "interactive");
        assert_eq!(b.messages[0].text.as_deref(), Some("Change"));
        assert_eq!(b.messages[0].reply_id.as_deref(), Some("change-button"));
        assert_eq!(
            b.messages[0].context_id.as_deref(),
            Some("wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA")
        );
        let l_body = example("message_interactive_list_reply");
        let l = parse_ok(&l_body);
        assert_eq!(l.messages[0].text.as_deref(), Some("Priority Mail Express"));
        assert_eq!(l.messages[0].reply_id.as_deref(), Some("priority_express"));
        assert_eq!(l.messages[0].timestamp, 1_712_595_443);
    }

    /// A location is kept as an InboundMessage of kind "location" (type after the body).
    #[test]
    fn message_location_example() {
        let i_body = example("message_location");
        let i = parse_ok(&i_body);
        assert_eq!(i.messages.len(), 1);
        let m = &i.messages[0];
        assert_eq!(m.kind, "location");
        assert_eq!(
            m.id,
            "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTRCRDcwNzgzMTRDNTAwRTgwRQA="
        );
        assert_eq!(m.from, "16505551234");
        assert_eq!(m.text, None);
        assert_eq!(m.profile_name.as_deref(), Some("Pablo Morales"));
    }

    /// Account-level and sync fields produce only Skipped entries, one per change.
    #[test]
    fn account_level_examples_are_only_skipped() {
        for name in [
            "account_alerts",
            "account_review_update_approved",
            "account_update_volume_based_pricing_tier_update",
            "automatic_events",
            "business_capability_update",
            "history",
            "partner_solutions",
            "payment_configuration_update",
            "phone_number_name_update_approved",
            "phone_number_quality_update_throughput_upgrade",
            "security",
            "smb_app_state_sync",
            "user_preferences",
        ] {
            let i_body = example(name);
            let i = parse_ok(&i_body);
            assert!(i.messages.is_empty() && i.statuses.is_empty(), "{name}");
            assert!(
                i.template_updates.is_empty() && i.errors.is_empty(),
                "{name}"
            );
            assert_eq!(i.skipped.len(), 1, "{name}: {:?}", i.skipped);
            assert_eq!(
                i.skipped[0].reason, "field not used by this service",
                "{name}"
            );
            assert_eq!(
                i.skipped[0].waba_id.as_deref(),
                i.waba_ids.first().map(|w| w.as_ref()),
                "{name}"
            );
        }
        // A history sync carries a `messages` array; it must not become inbound messages.
        let h_body = example_n("history", 2);
        let h = parse_ok(&h_body);
        assert!(h.messages.is_empty());
        assert_eq!(h.skipped[0].field, "history");
    }

    /// A plain text message with a numeric timestamp.
    #[test]
    fn text_message_with_numeric_timestamp() {
        let body = messages_body(
            "111",
            "222",
            json!({
                "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
                "messages": [{"from": "919876543210", "id": "wamid.T1", "timestamp": 1750000000,
                              "type": "text", "text": {"body": "Is the report ready?"}}]
            }),
        );
        let i = parse_ok(&body);
        assert_eq!(
            i.messages,
            vec![InboundMessage {
                waba_id: "111".into(),
                phone_number_id: "222".into(),
                id: "wamid.T1".into(),
                from: "919876543210".into(),
                kind: "text".into(),
                timestamp: 1_750_000_000,
                text: Some("Is the report ready?".into()),
                context_id: None,
                reply_id: None,
                profile_name: Some("Asha".into()),
                errors: vec![],
            }]
        );
    }

    /// String timestamps, and float-looking numbers truncated; other shapes skipped.
    #[test]
    fn timestamps_string_float_and_bad() {
        let body = messages_body(
            "1",
            "2",
            json!({"messages": [
                {"from": "9", "id": "a", "timestamp": "1750000001", "type": "text", "text": {"body": "x"}},
                {"from": "9", "id": "b", "timestamp": 1750000002.9, "type": "text", "text": {"body": "y"}},
                {"from": "9", "id": "c", "timestamp": "17500x", "type": "text"},
                {"from": "9", "id": "d", "timestamp": true, "type": "text"},
                {"from": "9", "id": "e", "type": "text"}
            ]}),
        );
        let i = parse_ok(&body);
        let ts: Vec<(&str, i64)> = i
            .messages
            .iter()
            .map(|m| (m.id.as_ref(), m.timestamp))
            .collect();
        assert_eq!(ts, vec![("a", 1_750_000_001), ("b", 1_750_000_002)]);
        assert_eq!(i.skipped.len(), 3);
        assert!(i
            .skipped
            .iter()
            .all(|s| s.reason.contains("timestamp") && s.field == "messages"));
    }

    /// An image keeps its caption as text.
    #[test]
    fn image_message_caption() {
        let body = messages_body(
            "1",
            "2",
            json!({"messages": [{"from": "16505551234", "id": "wamid.I",
            "timestamp": "1744344496", "type": "image",
            "image": {"caption": "Taj Mahal", "mime_type": "image/jpeg", "sha256": "x", "id": "1003383421387256"}}]}),
        );
        let i = parse_ok(&body);
        assert_eq!(i.messages[0].kind, "image");
        assert_eq!(i.messages[0].text.as_deref(), Some("Taj Mahal"));
    }

    /// A reaction points at the reacted-to wamid; a removed reaction has no text.
    #[test]
    fn reaction_message() {
        let body = messages_body(
            "1",
            "2",
            json!({"messages": [
                {"from": "1", "id": "r1", "timestamp": "1749419544", "type": "reaction",
                 "reaction": {"message_id": "wamid.OURS", "emoji": "👍"}},
                {"from": "1", "id": "r2", "timestamp": "1749419545", "type": "reaction",
                 "reaction": {"message_id": "wamid.OURS", "emoji": ""}}
            ]}),
        );
        let i = parse_ok(&body);
        assert_eq!(i.messages[0].text.as_deref(), Some("👍"));
        assert_eq!(i.messages[0].context_id.as_deref(), Some("wamid.OURS"));
        assert_eq!(i.messages[1].text, None);
        assert_eq!(i.messages[1].context_id.as_deref(), Some("wamid.OURS"));
    }

    /// Unsupported messages are kept with their errors; a brand-new type is kept as sent.
    #[test]
    fn unsupported_and_unknown_types_are_kept() {
        let body = messages_body(
            "1",
            "2",
            json!({"messages": [
                {"from": "16505551234", "id": "u1", "timestamp": "1750090702", "type": "unsupported",
                 "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                             "error_data": {"details": "Message type is currently not supported."}}]},
                {"from": "16505551234", "id": "f1", "timestamp": "1750090703", "type": "foo_bar",
                 "foo_bar": {"anything": [1, 2, 3]}}
            ]}),
        );
        let i = parse_ok(&body);
        assert_eq!(i.messages.len(), 2);
        assert_eq!(i.messages[0].kind, "unsupported");
        assert_eq!(
            i.messages[0].errors,
            vec![StatusError {
                code: 131051,
                title: Some("Message type unknown".into()),
                message: Some("Message type unknown".into()),
                details: Some("Message type is currently not supported.".into()),
            }]
        );
        assert_eq!(i.messages[1].kind, "foo_bar");
        assert_eq!(i.messages[1].text, None);
        assert!(i.skipped.is_empty());
    }

    /// A failed status keeps error 131047 and biz_opaque_callback_data; rank orders statuses.
    #[test]
    fn failed_status_with_errors_and_callback_data() {
        let body = messages_body(
            "1",
            "2",
            json!({"statuses": [{
                "id": "wamid.F", "status": "failed", "timestamp": "1750000000", "recipient_id": "16505551234",
                "biz_opaque_callback_data": "alert:42",
                "errors": [{"code": 131047, "title": "Re-engagement message",
                            "message": "Re-engagement message",
                            "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
            }]}),
        );
        let i = parse_ok(&body);
        let s = &i.statuses[0];
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(s.status.rank(), Some(4));
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].code, 131047);
        assert_eq!(s.errors[0].title.as_deref(), Some("Re-engagement message"));
        assert!(s.errors[0]
            .details
            .as_deref()
            .is_some_and(|d| d.contains("24 hours")));
        assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("alert:42"));
        assert!(DeliveryStatus::Sent.rank() < DeliveryStatus::Delivered.rank());
        assert!(DeliveryStatus::Delivered.rank() < DeliveryStatus::Read.rank());
        assert!(DeliveryStatus::Read.rank() < DeliveryStatus::Failed.rank());
        assert_eq!(
            DeliveryStatus::from_meta("played"),
            DeliveryStatus::Other("played".into())
        );
        assert_eq!(DeliveryStatus::Other("played".into()).rank(), None);
    }

    /// Statuses serialize as lowercase strings, template changes with a snake_case tag.
    #[test]
    fn serialization_is_readable() {
        let v = serde_json::to_value(vec![
            DeliveryStatus::Read,
            DeliveryStatus::Other("deleted".into()),
        ])
        .unwrap_or_default();
        assert_eq!(v, json!(["read", "deleted"]));
        let t = serde_json::to_value(TemplateChange::Status {
            event: "PAUSED".into(),
            reason: None,
        })
        .unwrap_or_default();
        assert_eq!(
            t,
            json!({"kind": "status", "event": "PAUSED", "reason": null})
        );
        assert_eq!(
            serde_json::to_value(TemplateChange::Components).unwrap_or_default(),
            json!({"kind": "components"})
        );
        let i_body = example("status_delivered");
        let i = parse_ok(&i_body);
        let j = serde_json::to_value(&i).unwrap_or_default();
        assert_eq!(j["statuses"][0]["status"], json!("delivered"));
    }

    /// A status missing `id` is skipped with a reason; its siblings are kept.
    #[test]
    fn status_without_id_is_skipped() {
        let body = messages_body(
            "1",
            "2",
            json!({"statuses": [
                {"status": "sent", "timestamp": "1", "recipient_id": "9"},
                {"id": "wamid.OK", "status": "sent", "timestamp": "2", "recipient_id": "9"}
            ]}),
        );
        let i = parse_ok(&body);
        assert_eq!(i.statuses.len(), 1);
        assert_eq!(i.statuses[0].id, "wamid.OK");
        assert_eq!(
            i.skipped,
            vec![Skipped {
                waba_id: Some("1".into()),
                field: "messages".into(),
                reason: "status without id".into()
            }]
        );
    }

    /// Two WABAs, several changes, messages + statuses + value errors in one change.
    #[test]
    fn several_entries_and_changes() {
        let body = bytes(&json!({"object": "whatsapp_business_account", "entry": [
            {"id": "waba_a", "changes": [
                {"field": "messages", "value": {"metadata": {"phone_number_id": "P1"},
                    "messages": [{"from": "1", "id": "m1", "timestamp": "10", "type": "text", "text": {"body": "hi"}}],
                    "statuses": [{"id": "s1", "status": "read", "timestamp": "11", "recipient_id": "1"}],
                    "errors": [{"code": 131000, "title": "Something went wrong"}]}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": "P2"},
                    "statuses": [{"id": "s2", "status": "sent", "timestamp": 12, "recipient_id": "2"}]}},
                {"field": "security", "value": {"event": "PIN_CHANGED"}}
            ]},
            {"id": "waba_b", "time": 99, "changes": [
                {"field": "message_template_status_update", "value": {"event": "PAUSED", "message_template_id": "5",
                    "reason": "FIRST_PAUSE"}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": "P1"},
                    "messages": [{"from": "3", "id": "m2", "timestamp": "13", "type": "system",
                                  "system": {"body": "changed", "type": "user_changed_number"}}]}}
            ]},
            {"id": "waba_a", "changes": []}
        ]}));
        let i = parse_ok(&body);
        assert_eq!(i.waba_ids, vec!["waba_a", "waba_b"]);
        assert_eq!(i.phone_number_ids, vec!["P1", "P2"]);
        assert_eq!(
            i.messages
                .iter()
                .map(|m| (&*m.id, &*m.waba_id))
                .collect::<Vec<_>>(),
            vec![("m1", "waba_a"), ("m2", "waba_b")]
        );
        assert_eq!(
            i.statuses
                .iter()
                .map(|s| (&*s.id, &*s.phone_number_id))
                .collect::<Vec<_>>(),
            vec![("s1", "P1"), ("s2", "P2")]
        );
        assert_eq!(i.errors.len(), 1);
        assert_eq!(i.errors[0].error.code, 131000);
        assert_eq!(i.template_updates.len(), 1);
        assert_eq!(
            i.template_updates[0].change,
            TemplateChange::Status {
                event: "PAUSED".into(),
                reason: Some("FIRST_PAUSE".into())
            }
        );
        assert_eq!(i.template_updates[0].entry_time, Some(99));
        assert_eq!(i.skipped.len(), 1);
        assert_eq!(i.skipped[0].field, "security");
    }

    /// Malformed parts below the envelope are skipped, never errors.
    #[test]
    fn malformed_parts_are_skipped() {
        let body = bytes(&json!({"object": "whatsapp_business_account", "entry": [
            7, {"changes": []}, {"id": "W", "changes": "nope"},
            {"id": 123, "changes": [null, {"value": {}}, {"field": "messages"},
                {"field": "messages", "value": {"messages": [{"id": "x"}]}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": 42}, "messages": "x",
                    "statuses": [{"id": "s", "status": "sent", "timestamp": "1", "recipient_id": "2",
                                  "errors": [{"title": "no code"}]}]}}]}
        ]}));
        let i = parse_ok(&body);
        assert_eq!(i.waba_ids, vec!["W", "123"]);
        assert_eq!(i.phone_number_ids, vec!["42"]);
        assert_eq!(i.statuses.len(), 1);
        assert!(i.statuses[0].errors.is_empty());
        let reasons: Vec<&str> = i.skipped.iter().map(|s| s.reason.as_str()).collect();
        for want in [
            "entry is not an object",
            "entry without id",
            "entry without changes array",
            "change is not an object",
            "change without field",
            "change without value object",
            "`messages` is not an array",
        ] {
            assert!(reasons.contains(&want), "missing {want:?} in {reasons:?}");
        }
        assert!(reasons
            .iter()
            .any(|r| r.contains("without metadata.phone_number_id")));
        assert!(reasons.iter().any(|r| r.contains("without integer code")));
        // Skips are the tolerant walk's to make.
        assert!(!read_both(&body).1);
    }

    /// Wrong top-level shapes are WrongShape from both functions.
    #[test]
    fn wrong_top_level_shapes() {
        for (body, why) in [
            (&b"[]"[..], "top level must be a JSON object"),
            (
                b"\"whatsapp_business_account\"",
                "top level must be a JSON object",
            ),
            (b"{}", "object must be whatsapp_business_account"),
            (
                br#"{"object":"page","entry":[]}"#,
                "object must be whatsapp_business_account",
            ),
            (
                br#"{"object":1,"entry":[]}"#,
                "object must be whatsapp_business_account",
            ),
            (
                br#"{"object":"whatsapp_business_account"}"#,
                "entry must be an array",
            ),
            (
                br#"{"object":"whatsapp_business_account","entry":{}}"#,
                "entry must be an array",
            ),
            (
                br#"{"object":"whatsapp_business_account","entry":null}"#,
                "entry must be an array",
            ),
            (
                br#"["whatsapp_business_account",[{"id":"1"}]]"#,
                "top level must be a JSON object",
            ),
        ] {
            assert_eq!(
                parse(body).err(),
                Some(PayloadError::WrongShape(why)),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(!read_both(body).1);
        }
    }

    /// Invalid UTF-8, truncated JSON and trailing garbage are InvalidJson.
    #[test]
    fn invalid_json() {
        let good = example("status_delivered");
        let mut bad_utf8 = good.clone();
        if let Some(pos) = bad_utf8.windows(9).position(|w| w == b"delivered") {
            bad_utf8[pos] = 0xff;
        }
        let truncated = &good[..good.len() / 2];
        let mut trailing = good.clone();
        trailing.extend_from_slice(b" x");
        for body in [
            &bad_utf8[..],
            truncated,
            &trailing[..],
            b"",
            b"   ",
            b"{\"object\":",
        ] {
            assert_eq!(read_both(body), (Err(PayloadError::InvalidJson), false));
        }
    }

    /// 100k nested arrays hit serde_json's recursion limit: an error, not a stack overflow.
    #[test]
    fn deep_nesting_is_invalid_json() {
        let depth = 100_000;
        let mut deep = "[".repeat(depth);
        deep.push_str(&"]".repeat(depth));
        assert_eq!(
            read_both(deep.as_bytes()),
            (Err(PayloadError::InvalidJson), false)
        );
        let nested_in_skeleton = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"x","value":{deep}}}]}}]}}"#
        );
        assert_eq!(
            read_both(nested_in_skeleton.as_bytes()),
            (Err(PayloadError::InvalidJson), false)
        );
        // Under a key no reader uses, eight levels down in a well-formed
        // body: 127 levels in all are read, 128 are refused by both.
        let status_with = |extra: String| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"value":{{"metadata":{{"phone_number_id":"P"}},"statuses":[{{"id":"s","status":"sent","timestamp":"1","recipient_id":"2","x":{extra}}}]}},"field":"messages"}}]}}]}}"#
            )
        };
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deepest = status_with(nest(119));
        let (ok, typed) = read_both(deepest.as_bytes());
        assert!(ok.is_ok() && typed);
        assert_eq!(
            read_both(status_with(nest(120)).as_bytes()),
            (Err(PayloadError::InvalidJson), false)
        );
    }

    /// The typed pass: a duplicate key is the tolerant walk's (last wins);
    /// escaped keys and strings and integer ids are read; a number outside
    /// `f64`'s range, even under a key no reader uses, is refused by both.
    #[test]
    fn typed_pass_edge_cases() {
        let dup =
            br#"{"object":"whatsapp_business_account","entry":[{"id":"A"}],"entry":[{"id":"B"}]}"#;
        let (answer, typed) = read_both(dup);
        assert_eq!(answer.map(|i| i.waba_ids), Ok(vec!["B".into()]));
        assert!(!typed);

        let escaped = br#"{"object":"whatsapp_business_account","entry":[{"id":"1\u0032","chan\u0067es":[{"value":{"metadata":{"phone_number_id":"9\"9"}},"field":"x"}]}]}"#;
        let (answer, typed) = read_both(escaped);
        let i = answer.unwrap_or_else(|e| panic!("{e}"));
        assert!(typed);
        assert_eq!(
            (i.waba_ids, i.phone_number_ids),
            (vec!["12".into()], vec!["9\"9".into()])
        );
        assert_eq!(i.skipped[0].reason, "field not used by this service");

        let numeric = br#"{"object":"whatsapp_business_account","entry":[{"id":77,"changes":[{"value":{"metadata":{"phone_number_id":88},"statuses":[{"id":"s","status":"read","timestamp":1750000000,"recipient_id":15550001111}]},"field":"messages"}]}]}"#;
        let (answer, typed) = read_both(numeric);
        let i = answer.unwrap_or_else(|e| panic!("{e}"));
        assert!(typed);
        assert_eq!(
            (i.waba_ids, i.phone_number_ids),
            (vec!["77".into()], vec!["88".into()])
        );
        assert_eq!(i.statuses[0].recipient_id, "15550001111");
        assert_eq!(i.statuses[0].timestamp, 1_750_000_000);

        for number in ["1e400", "-1e400", &"9".repeat(400)] {
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[]}}],"x":{{"y":[{number}]}}}}"#
            );
            assert_eq!(
                read_both(body.as_bytes()),
                (Err(PayloadError::InvalidJson), false),
                "{number}"
            );
        }
        let in_range = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":[1e300,-0.5,18446744073709551616]}"#;
        assert!(read_both(in_range).1);
    }

    /// Every place the tolerant walk skips something, or reads a value
    /// leniently, sends the whole body to it: the typed pass declines, and
    /// the answer is the tolerant walk's.
    #[test]
    fn the_typed_pass_declines_what_the_tolerant_walk_reads_leniently() {
        let base = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "time": 5, "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "P"},
                "contacts": [{"wa_id": "1", "profile": {"name": "Ann"}}],
                "messages": [{"from": "1", "id": "m", "timestamp": "7", "type": "text", "text": {"body": "hi"},
                              "context": {"id": "c"}, "errors": [{"code": 1}]}],
                "statuses": [{"id": "s", "status": "failed", "timestamp": "8", "recipient_id": "2",
                              "errors": [{"code": 131047, "title": "t", "error_data": {"details": "d"}}],
                              "biz_opaque_callback_data": "cb"}]}},
            {"field": "message_template_status_update", "value": {"event": "REJECTED", "reason": "NONE",
                "message_template_id": 9, "message_template_name": "n", "message_template_language": "en"}}]}]});
        let base_body = bytes(&base);
        let (answer, typed) = read_both(&base_body);
        assert!(answer.is_ok() && typed, "the base body is well-formed");
        let cases: &[(&str, Value)] = &[
            ("/entry/0/id", json!("")),
            ("/entry/0/id", json!(1.5)),
            ("/entry/0/time", json!("soon")),
            ("/entry/0/time", json!(5.5)),
            ("/entry/0/changes", json!({})),
            ("/entry/0/changes/0/field", Value::Null),
            ("/entry/0/changes/0/value", json!([])),
            ("/entry/0/changes/0/value/metadata", json!(["P"])),
            (
                "/entry/0/changes/0/value/metadata/phone_number_id",
                json!(""),
            ),
            ("/entry/0/changes/0/value/messages", Value::Null),
            ("/entry/0/changes/0/value/contacts/0", json!("1")),
            ("/entry/0/changes/0/value/contacts/0/profile", json!("Ann")),
            ("/entry/0/changes/0/value/messages/0/id", json!("")),
            ("/entry/0/changes/0/value/messages/0/from", Value::Null),
            ("/entry/0/changes/0/value/messages/0/type", json!(3)),
            ("/entry/0/changes/0/value/messages/0/timestamp", json!("-7")),
            (
                "/entry/0/changes/0/value/messages/0/timestamp",
                json!("1234567890123456789"),
            ),
            ("/entry/0/changes/0/value/messages/0/text", json!("hi")),
            (
                "/entry/0/changes/0/value/messages/0/text/body",
                json!(["hi"]),
            ),
            ("/entry/0/changes/0/value/messages/0/context", json!("c")),
            (
                "/entry/0/changes/0/value/messages/0/errors/0/code",
                json!(1.0),
            ),
            ("/entry/0/changes/0/value/statuses/0/status", json!("")),
            (
                "/entry/0/changes/0/value/statuses/0/recipient_id",
                json!(true),
            ),
            (
                "/entry/0/changes/0/value/statuses/0/timestamp",
                json!(u64::MAX),
            ),
            (
                "/entry/0/changes/0/value/statuses/0/errors/0/code",
                json!("x1"),
            ),
            (
                "/entry/0/changes/0/value/statuses/0/errors/0/error_data",
                json!("d"),
            ),
            (
                "/entry/0/changes/0/value/statuses/0/biz_opaque_callback_data",
                json!({}),
            ),
            ("/entry/0/changes/1/value/event", Value::Null),
            ("/entry/0/changes/1/value/reason", Value::Null),
            ("/entry/0/changes/1/value/message_template_id", json!(9.5)),
            (
                "/entry/0/changes/1/field",
                json!("message_template_quality_update"),
            ),
        ];
        for (pointer, replacement) in cases {
            let mut body = base.clone();
            match body.pointer_mut(pointer) {
                Some(slot) => *slot = replacement.clone(),
                None => panic!("{pointer} is not in the base body"),
            }
            let body = bytes(&body);
            let (answer, typed) = read_both(&body);
            assert!(answer.is_ok(), "{pointer}: {answer:?}");
            assert!(!typed, "{pointer} = {replacement}: the typed pass answered");
        }
    }

    /// Lone surrogates and invalid UTF-8, even in strings no reader uses,
    /// are refused by both readers; an escaped emoji is read by the typed pass.
    #[test]
    fn escapes_in_skipped_parts() {
        for lone in [
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":"\ud800"}"#.as_slice(),
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":{"\udc00":1}}"#,
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"\ud800":1}"#,
        ] {
            assert_eq!(read_both(lone), (Err(PayloadError::InvalidJson), false));
        }
        let mut bad =
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":"??"}"#
                .to_vec();
        if let Some(p) = bad.iter().position(|b| *b == b'?') {
            bad[p] = 0xc3;
        }
        assert_eq!(read_both(&bad), (Err(PayloadError::InvalidJson), false));
        let emoji = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"2"},"messages":[{"from":"3","id":"4","timestamp":"5","type":"reaction","reaction":{"message_id":"w","emoji":"\ud83d\udc4d"}}]}}]}]}"#;
        let (answer, typed) = read_both(emoji);
        assert!(typed);
        assert_eq!(
            answer.map(|i| i.messages[0].text.clone()),
            Ok(Some("\u{1f44d}".into()))
        );
    }

    // --- property tests -----------------------------------------------------

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z0-9_.]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("whatsapp_business_account"),
                Just("messages"),
                Just("statuses"),
                Just("id"),
                Just("1750000000"),
                Just("text"),
                Just("failed"),
                Just("message_template_status_update"),
                Just("template_category_update"),
                Just("NONE"),
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            let key = prop_oneof![
                "[a-z_]{1,8}",
                prop_oneof![
                    Just("id"),
                    Just("from"),
                    Just("type"),
                    Just("timestamp"),
                    Just("status"),
                    Just("errors"),
                    Just("code"),
                    Just("text"),
                    Just("body"),
                    Just("metadata"),
                    Just("phone_number_id"),
                    Just("messages"),
                    Just("statuses"),
                    Just("value"),
                    Just("field"),
                    Just("changes"),
                    Just("event"),
                    Just("new_quality_score"),
                    Just("correct_category"),
                    Just("new_category"),
                    Just("recipient_id"),
                    Just("context"),
                    Just("interactive"),
                    Just("button_reply"),
                ]
                .prop_map(str::to_owned),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A valid skeleton with random subtrees spliced in at every level.
    fn arb_skeleton() -> impl Strategy<Value = Value> {
        (arb_json(), arb_json(), arb_json(), arb_json(), arb_json(), 0usize..6, any::<bool>()).prop_map(
            |(a, b, c, d, e, slot, numeric_ts)| {
                let ts = if numeric_ts { json!(1750000000) } else { json!("1750000000") };
                let mut message = json!({"from": "1", "id": "m", "timestamp": ts, "type": "text", "text": {"body": "x"}});
                let mut status = json!({"id": "s", "status": "failed", "timestamp": "1", "recipient_id": "2", "errors": [{"code": 1}]});
                let mut value = json!({"metadata": {"phone_number_id": "P"}, "messages": [message.clone()], "statuses": [status.clone()]});
                let mut template = json!({"event": "APPROVED", "message_template_id": 1, "reason": "NONE"});
                let mut entry = json!({"id": "W", "time": 1, "changes": [
                    {"field": "messages", "value": value.clone()},
                    {"field": "message_template_status_update", "value": template.clone()}]});
                match slot {
                    0 => message["text"] = a,
                    1 => status["errors"] = a,
                    2 => value["metadata"] = a,
                    3 => template["event"] = a,
                    4 => entry["changes"] = json!([a]),
                    _ => entry["id"] = a,
                }
                message["type"] = b;
                status["timestamp"] = c;
                value["messages"] = json!([message, d]);
                value["statuses"] = json!([status, e]);
                if let Some(changes) = entry["changes"].as_array_mut() {
                    changes.push(json!({"field": "messages", "value": value}));
                    changes.push(json!({"field": "template_category_update", "value": template}));
                }
                json!({"object": "whatsapp_business_account", "entry": [entry]})
            },
        )
    }

    /// Writes `v` as JSON with every object's keys rotated by `turn`: the
    /// readers must not depend on key order (Meta sends `value` before
    /// `field`; `serde_json::Map` would always write them sorted).
    fn write_rotated(v: &Value, turn: usize, out: &mut String) {
        match v {
            Value::Object(m) => {
                let pairs: Vec<_> = m.iter().collect();
                out.push('{');
                for i in 0..pairs.len() {
                    let (k, x) = pairs[(i + turn) % pairs.len()];
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write_rotated(x, turn, out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_rotated(x, turn, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    /// Free text with characters JSON must escape, accents and an emoji.
    fn arb_text() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(Value::String(String::new())),
            4 => "[a-z0-9 \"\\\\\n\u{e9}\u{1f44d}]{1,10}".prop_map(Value::String),
        ]
    }

    /// An id as Meta sends most of them (a string), or as an integer.
    fn arb_id() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => "[A-Za-z0-9.=_-]{1,24}".prop_map(Value::String),
            1 => (1u64..u64::MAX).prop_map(|n| json!(n)),
        ]
    }

    fn arb_ts() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..=999_999_999_999).prop_map(|n| json!(n.to_string())),
            (0i64..=999_999_999_999).prop_map(|n| json!(n)),
        ]
    }

    /// Keeps the entries of `parts` that are `Some`.
    fn object(parts: Vec<(&str, Option<Value>)>) -> Value {
        Value::Object(
            parts
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .collect(),
        )
    }

    fn arb_error() -> impl Strategy<Value = Value> {
        let code = prop_oneof![
            (0i64..200_000).prop_map(|n| json!(n)),
            (0i64..200_000).prop_map(|n| json!(n.to_string())),
        ];
        let details = prop::option::of(arb_text()).prop_map(|d| object(vec![("details", d)]));
        (code, prop::option::of(arb_text()), prop::option::of(arb_text()), prop::option::of(details))
            .prop_map(|(code, title, message, data)| {
                object(vec![("code", Some(code)), ("title", title), ("message", message), ("error_data", data),
                    ("href", Some(json!("https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/")))])
            })
    }

    /// An inbound message of any type, with the body its type reads from.
    fn arb_message(from: Value) -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            prop::sample::select(vec![
                "text",
                "button",
                "interactive",
                "image",
                "video",
                "document",
                "order",
                "reaction",
                "sticker",
                "unsupported",
                "location"
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,10}",
        ];
        let t = || prop::option::of(arb_text());
        let reply = (t(), t()).prop_map(|(id, title)| object(vec![("id", id), ("title", title)]));
        let body = (
            t(),
            t(),
            prop_oneof![Just("button_reply"), Just("list_reply"), Just("nfm_reply")],
            reply,
        );
        (
            kind,
            arb_id(),
            arb_ts(),
            prop::option::of(t()),
            body,
            prop::collection::vec(arb_error(), 0..2),
            arb_json(),
        )
            .prop_map(
                move |(kind, id, ts, context, (a, b, reply_kind, reply), errors, extra)| {
                    let body = match kind.as_str() {
                        "text" => object(vec![("body", a)]),
                        "button" => object(vec![("payload", a), ("text", b)]),
                        "interactive" => object(vec![
                            ("type", Some(json!(reply_kind))),
                            (reply_kind, Some(reply)),
                        ]),
                        "image" | "video" | "document" => object(vec![("caption", a), ("id", b)]),
                        "order" => object(vec![("text", a), ("catalog_id", b)]),
                        "reaction" => object(vec![("message_id", a), ("emoji", b)]),
                        _ => object(vec![("anything", Some(extra.clone()))]),
                    };
                    let context = context
                        .map(|id| object(vec![("from", Some(json!("16315551234"))), ("id", id)]));
                    object(vec![
                        ("from", Some(from.clone())),
                        ("id", Some(id)),
                        ("timestamp", Some(ts)),
                        ("type", Some(json!(kind))),
                        (kind.as_str(), Some(body)),
                        ("context", context),
                        ("errors", (!errors.is_empty()).then(|| json!(errors))),
                        ("unknown_key", Some(extra)),
                    ])
                },
            )
    }

    fn arb_status() -> impl Strategy<Value = Value> {
        let status = prop_oneof![
            Just("sent"),
            Just("delivered"),
            Just("read"),
            Just("failed"),
            Just("played"),
            Just("DELIVERED")
        ];
        (status, arb_id(), arb_id(), arb_ts(), prop::collection::vec(arb_error(), 0..3), prop::option::of(arb_text()))
            .prop_map(|(status, id, recipient, ts, errors, callback)| {
                object(vec![
                    ("id", Some(id)), ("status", Some(json!(status))), ("recipient_id", Some(recipient)),
                    ("timestamp", Some(ts)), ("errors", (!errors.is_empty()).then(|| json!(errors))),
                    ("biz_opaque_callback_data", callback),
                    ("pricing", Some(json!({"billable": false, "pricing_model": "PMP", "category": "utility"}))),
                ])
            })
    }

    /// The value of a `messages` change: messages (from one sender), statuses,
    /// contacts and change-level errors, at least one message or status.
    fn arb_messages_value() -> impl Strategy<Value = Value> {
        let contact = || {
            (
                prop_oneof![
                    Just(None),
                    Just(Some(json!("15551234567"))),
                    "[0-9]{5}".prop_map(|s| Some(json!(s)))
                ],
                prop::option::of(prop::option::of(arb_text())),
            )
                .prop_map(|(wa_id, profile)| {
                    object(vec![
                        ("wa_id", wa_id),
                        ("profile", profile.map(|n| object(vec![("name", n)]))),
                    ])
                })
        };
        let from = prop_oneof![Just(json!("15551234567")), arb_id()];
        from.prop_flat_map(move |from| {
            (
                arb_id(),
                prop::collection::vec(arb_message(from), 0..3),
                prop::collection::vec(arb_status(), 0..3),
                prop::collection::vec(contact(), 0..3),
                prop::collection::vec(arb_error(), 0..2),
                arb_status(),
            )
        })
        .prop_map(|(pnid, messages, mut statuses, contacts, errors, status)| {
            if messages.is_empty() && statuses.is_empty() {
                statuses.push(status);
            }
            object(vec![
                ("messaging_product", Some(json!("whatsapp"))),
                (
                    "metadata",
                    Some(json!({"display_phone_number": "15550783881", "phone_number_id": pnid})),
                ),
                ("messages", (!messages.is_empty()).then(|| json!(messages))),
                ("statuses", (!statuses.is_empty()).then(|| json!(statuses))),
                ("contacts", (!contacts.is_empty()).then(|| json!(contacts))),
                ("errors", (!errors.is_empty()).then(|| json!(errors))),
            ])
        })
    }

    /// A change of any field the service reads, or of one it does not.
    fn arb_change() -> impl Strategy<Value = Value> {
        let t = || prop::option::of("[A-Z_]{1,12}".prop_map(Value::String));
        let common = (arb_id(), t(), t());
        let template = (
            0usize..5,
            common,
            t(),
            t(),
            t(),
            prop::option::of(arb_ts()),
            arb_json(),
        )
            .prop_map(|(which, (id, name, lang), a, b, c, when, extra)| {
                let base = vec![
                    ("message_template_id", Some(id)),
                    ("message_template_name", name),
                    ("message_template_language", lang),
                ];
                let (field, more) = match which {
                    0 => (
                        FIELD_TEMPLATE_STATUS,
                        vec![
                            ("event", Some(json!(a.clone().unwrap_or(json!("APPROVED"))))),
                            ("reason", b),
                        ],
                    ),
                    1 => (
                        FIELD_TEMPLATE_QUALITY,
                        vec![
                            (
                                "new_quality_score",
                                Some(a.clone().unwrap_or(json!("GREEN"))),
                            ),
                            ("previous_quality_score", b),
                        ],
                    ),
                    2 => (
                        FIELD_TEMPLATE_STATUS,
                        vec![
                            ("new_quality_score", Some(json!("RED"))),
                            ("event", a.clone()),
                        ],
                    ),
                    3 => (
                        FIELD_TEMPLATE_CATEGORY,
                        vec![
                            (
                                "new_category",
                                Some(a.clone().unwrap_or(json!("MARKETING"))),
                            ),
                            ("previous_category", b),
                            ("correct_category", c),
                            ("category_update_timestamp", when),
                        ],
                    ),
                    _ => (
                        FIELD_TEMPLATE_COMPONENTS,
                        vec![("message_template_title", a), ("anything", Some(extra))],
                    ),
                };
                json!({"field": field, "value": object(base.into_iter().chain(more).collect())})
            });
        prop_oneof![
            3 => arb_messages_value().prop_map(|v| json!({"field": "messages", "value": v})),
            2 => template,
            1 => (arb_json(), "[a-z_]{3,20}").prop_map(|(v, field)| json!({"field": field, "value": {"event": "x", "other": v}})),
        ]
    }

    /// Well-formed bodies of one to three entries, written with any key order.
    fn arb_well_formed() -> impl Strategy<Value = String> {
        let entry = (
            arb_id(),
            prop::option::of(arb_ts()),
            prop::collection::vec(arb_change(), 1..4),
        )
            .prop_map(|(id, time, changes)| {
                object(vec![
                    ("id", Some(id)),
                    ("time", time),
                    ("changes", Some(json!(changes))),
                ])
            });
        (prop::collection::vec(entry, 1..3), 0usize..7).prop_map(|(entries, turn)| {
            let mut out = String::new();
            write_rotated(
                &json!({"object": "whatsapp_business_account", "entry": entries}),
                turn,
                &mut out,
            );
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic and both readers agree.
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_both(&body);
        }

        /// Arbitrary JSON (and inside the envelope) never panics and both readers agree.
        #[test]
        fn arbitrary_json_never_panics(v in arb_json()) {
            let _ = read_both(&bytes(&v));
            let wrapped = json!({"object": "whatsapp_business_account", "entry": [v.clone(), {"id": "W", "changes": [v]}]});
            prop_assert!(read_both(&bytes(&wrapped)).0.is_ok());
        }

        /// A valid skeleton with random subtrees always parses, both readers
        /// agree, and every change is accounted for.
        #[test]
        fn skeleton_with_random_subtrees(v in arb_skeleton()) {
            let body = bytes(&v);
            let i = read_both(&body).0.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!i.messages.is_empty() || !i.statuses.is_empty() || !i.skipped.is_empty() || !i.template_updates.is_empty());
            // Truncating a valid body is always InvalidJson.
            let cut = &body[..body.len() / 2];
            prop_assert_eq!(read_both(cut), (Err(PayloadError::InvalidJson), false));
        }

        /// Every well-formed body, in any key order, takes the typed pass, and
        /// its answer is the tolerant walk's.
        #[test]
        fn well_formed_bodies_take_the_typed_pass(body in arb_well_formed()) {
            let (answer, typed) = read_both(body.as_bytes());
            prop_assert!(answer.is_ok(), "{:?}", answer);
            prop_assert!(typed, "the typed pass declined {}", body);
        }
    }
}
