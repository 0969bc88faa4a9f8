//! Property tests of the one reader: no input makes it panic; a valid
//! skeleton with random subtrees always parses and accounts for every
//! change; a well-formed body's answer does not depend on key order, and
//! every message and status in it is kept.

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";
const FIELD_TEMPLATE_QUALITY: &str = "message_template_quality_update";
const FIELD_TEMPLATE_CATEGORY: &str = "template_category_update";
const FIELD_TEMPLATE_COMPONENTS: &str = "message_template_components_update";

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

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
            let mut value = json!({"metadata": {"phone_number_id": "2"}, "messages": [message.clone()], "statuses": [status.clone()]});
            let mut template = json!({"event": "APPROVED", "message_template_id": 1, "reason": "NONE"});
            let mut entry = json!({"id": "1", "time": 1, "changes": [
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

/// A WABA or phone number id: digits, as a string or an integer.
fn arb_routing_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[0-9]{1,20}".prop_map(Value::String),
        1 => (1u64..1_000_000_000_000_000).prop_map(|n| json!(n)),
    ]
}

/// A BSUID or parent BSUID, as Meta documents them.
fn arb_bsuid() -> impl Strategy<Value = Value> {
    ("[A-Z]{2}", any::<bool>(), "[0-9A-Za-z]{1,20}").prop_map(|(cc, ent, id)| {
        json!(if ent {
            format!("{cc}.ENT.{id}")
        } else {
            format!("{cc}.{id}")
        })
    })
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
fn arb_message(sender: (Option<Value>, Option<Value>)) -> impl Strategy<Value = Value> {
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
        // A new type, never one of the message's own keys.
        "x_[a-z_]{1,8}",
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
                    ("from", sender.0.clone()),
                    ("from_user_id", sender.1.clone()),
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
    let recipient = prop_oneof![
        arb_id().prop_map(|r| (Some(r), None)),
        arb_bsuid().prop_map(|u| (None, Some(u))),
        (arb_id(), arb_bsuid()).prop_map(|(r, u)| (Some(r), Some(u))),
    ];
    let pricing =
        prop::sample::select(vec!["regular", "free_customer_service", "free_entry_point"]);
    (status, arb_id(), recipient, arb_ts(), prop::collection::vec(arb_error(), 0..3), prop::option::of(arb_text()), pricing)
        .prop_map(|(status, id, (recipient, user_id), ts, errors, callback, kind)| {
            object(vec![
                ("id", Some(id)), ("status", Some(json!(status))), ("recipient_id", recipient),
                ("recipient_user_id", user_id),
                ("timestamp", Some(ts)), ("errors", (!errors.is_empty()).then(|| json!(errors))),
                ("biz_opaque_callback_data", callback),
                ("pricing", Some(json!({"billable": false, "pricing_model": "PMP", "category": "utility", "type": kind}))),
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
            prop::option::of(arb_bsuid()),
        )
            .prop_map(|(wa_id, profile, user_id)| {
                object(vec![
                    ("wa_id", wa_id),
                    ("user_id", user_id),
                    ("profile", profile.map(|n| object(vec![("name", n)]))),
                ])
            })
    };
    // One sender: a phone number, a BSUID, or both.
    let sender = prop_oneof![
        prop_oneof![Just(json!("15551234567")), arb_id()].prop_map(|f| (Some(f), None)),
        arb_bsuid().prop_map(|u| (None, Some(u))),
        (arb_id(), arb_bsuid()).prop_map(|(f, u)| (Some(f), Some(u))),
    ];
    sender
        .prop_flat_map(move |sender| {
            (
                arb_routing_id(),
                prop::collection::vec(arb_message(sender), 0..3),
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
        1 => (arb_json(), "y_[a-z_]{3,18}").prop_map(|(v, field)| json!({"field": field, "value": {"event": "x", "other": v}})),
    ]
}

/// Well-formed bodies of one to three entries, written with any key order.
fn arb_well_formed() -> impl Strategy<Value = String> {
    let entry = (
        arb_routing_id(),
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

/// The messages and statuses a body's `messages` changes carry.
fn carried(body: &Value) -> (usize, usize) {
    let mut n = (0, 0);
    for change in body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
        .filter(|c| c["field"] == "messages")
    {
        n.0 += change["value"]["messages"].as_array().map_or(0, Vec::len);
        n.1 += change["value"]["statuses"].as_array().map_or(0, Vec::len);
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&body);
    }

    /// Arbitrary JSON (and inside the envelope) never panics, and inside
    /// the envelope is always read.
    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = parse(&bytes(&v));
        let wrapped = json!({"object": "whatsapp_business_account", "entry": [v.clone(), {"id": "1", "changes": [v]}]});
        prop_assert!(parse(&bytes(&wrapped)).is_ok());
    }

    /// A valid skeleton with random subtrees always parses and every change
    /// is accounted for; half of it is always invalid JSON.
    #[test]
    fn skeleton_with_random_subtrees(v in arb_skeleton()) {
        let body = bytes(&v);
        let i = parse(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!i.messages.is_empty() || !i.statuses.is_empty() || !i.skipped.is_empty() || !i.template_updates.is_empty());
        let cut = &body[..body.len() / 2];
        prop_assert_eq!(parse(cut).err(), Some(PayloadError::InvalidJson));
    }

    /// A well-formed body, in any key order, gives one answer, keeps every
    /// message and status it carries, and serializes.
    #[test]
    fn well_formed_bodies_keep_every_message_and_status(body in arb_well_formed()) {
        let v: Value = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = parse(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!((i.messages.len(), i.statuses.len()), carried(&v), "{}", body);
        let mut sorted = String::new();
        write_rotated(&v, 0, &mut sorted);
        let again = parse(sorted.as_bytes());
        prop_assert_eq!(again.as_ref(), Ok(&i));
        prop_assert!(serde_json::to_string(&i).is_ok());
    }
}
