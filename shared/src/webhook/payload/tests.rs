//! The reader on Meta's documented examples, on the 2026 shapes
//! (`fixtures/meta/webhook-examples/2026`), item by item on malformed
//! input, and at its bounds.

use super::*;
use serde_json::{json, Value};
use std::borrow::Cow;

/// Meta's documented examples, kept in the repo (`fixtures/meta`).
const EXAMPLES_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/meta/webhook-examples"
);

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn example(name: &str) -> Vec<u8> {
    read(&format!("{EXAMPLES_DIR}/metadocs__{name}__1.json"))
}

fn example_n(name: &str, n: u32) -> Vec<u8> {
    read(&format!("{EXAMPLES_DIR}/metadocs__{name}__{n}.json"))
}

/// One of the 2026 shapes written for this project.
fn shape(name: &str) -> Vec<u8> {
    read(&format!("{EXAMPLES_DIR}/2026/own__{name}.json"))
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

fn reasons<'i>(i: &'i Intake) -> Vec<&'i str> {
    i.skipped.iter().map(|s| s.reason.as_ref()).collect()
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

fn json_files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {dir}: {e}"));
    for f in entries.flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            out.push((name, std::fs::read(f.path()).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

/// Every Meta example and every 2026 shape parses, names its WABA, and
/// accounts for every change: acted on or skipped.
#[test]
fn every_example_parses_and_every_change_is_accounted_for() {
    let meta = json_files(EXAMPLES_DIR);
    assert!(
        meta.len() >= 20,
        "expected the example corpus, found {}",
        meta.len()
    );
    let own = json_files(&format!("{EXAMPLES_DIR}/2026"));
    assert!(
        own.len() >= 10,
        "expected the 2026 shapes, found {}",
        own.len()
    );
    for (name, body) in meta.into_iter().chain(own) {
        let intake = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!intake.waba_ids.is_empty(), "{name}: no waba id");
        let acted = intake.messages.len()
            + intake.statuses.len()
            + intake.template_updates.len()
            + intake.identity_changes.len()
            + intake.account_updates.len();
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
    assert_eq!(s.recipient_id.as_deref(), Some("16505551234"));
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

/// A quick-reply button tap: text, payload (a quick reply, not an
/// interactive reply) and the replied-to wamid with the number it came from.
#[test]
fn message_button_example() {
    let i_body = example("message_button");
    let i = parse_ok(&i_body);
    assert_eq!(i.messages.len(), 1);
    let m = &i.messages[0];
    assert_eq!(m.kind, "button");
    assert_eq!(m.text.as_deref(), Some("I didn't request a code"));
    assert_eq!(m.reply_id.as_deref(), Some("DID_NOT_REQUEST_CODE"));
    assert_eq!(m.reply_kind, Some(ReplyKind::QuickReply));
    assert_eq!(
        m.context_id.as_deref(),
        Some("wamid.HBgLMTIxMTU1NTE0NTYVAgARGBJDMDEyMTFDNTE5NkFCOUU3QTEA")
    );
    assert_eq!(m.context_from.as_deref(), Some("12345678"));
    assert_eq!(m.from.as_deref(), Some("12345678"));
    assert_eq!(m.timestamp, 1_753_919_111);
    assert_eq!(m.profile_name.as_deref(), Some("John"));
    assert_eq!(m.phone_number_id, "1234567890");
    assert_eq!(m.waba_id, "320580347795883");
}

/// Interactive replies carry the title as text and the row/button id as
/// reply_id, each with its kind.
#[test]
fn interactive_reply_examples() {
    let b_body = example("message_interactive_button_reply");
    let b = parse_ok(&b_body);
    assert_eq!(b.messages.len(), 1);
    assert_eq!(b.messages[0].kind, "interactive");
    assert_eq!(b.messages[0].text.as_deref(), Some("Change"));
    assert_eq!(b.messages[0].reply_id.as_deref(), Some("change-button"));
    assert_eq!(b.messages[0].reply_kind, Some(ReplyKind::ButtonReply));
    assert_eq!(
        b.messages[0].context_id.as_deref(),
        Some("wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA")
    );
    assert_eq!(b.messages[0].context_from.as_deref(), Some("15550783881"));
    let l_body = example("message_interactive_list_reply");
    let l = parse_ok(&l_body);
    assert_eq!(l.messages[0].text.as_deref(), Some("Priority Mail Express"));
    assert_eq!(l.messages[0].reply_id.as_deref(), Some("priority_express"));
    assert_eq!(l.messages[0].reply_kind, Some(ReplyKind::ListReply));
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
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.text, None);
    assert_eq!(m.profile_name.as_deref(), Some("Pablo Morales"));
}

/// Account-level and sync fields the service does not read produce only
/// Skipped entries, one per change.
#[test]
fn unread_account_level_examples_are_only_skipped() {
    for name in [
        "account_alerts",
        "account_review_update_approved",
        "automatic_events",
        "history",
        "partner_solutions",
        "payment_configuration_update",
        "phone_number_name_update_approved",
        "security",
        "smb_app_state_sync",
        "user_preferences",
    ] {
        let i_body = example(name);
        let i = parse_ok(&i_body);
        assert!(i.messages.is_empty() && i.statuses.is_empty(), "{name}");
        assert!(
            i.template_updates.is_empty() && i.errors.is_empty() && i.account_updates.is_empty(),
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

/// The three account fields are read into account updates: Meta's examples
/// and the shapes after the February 2026 field changes.
#[test]
fn account_fields_are_read() {
    let tier_body = example("account_update_volume_based_pricing_tier_update");
    let tier = parse_ok(&tier_body);
    assert!(tier.skipped.is_empty());
    let u = &tier.account_updates[0];
    assert_eq!(u.field, "account_update");
    assert_eq!(u.event.as_deref(), Some("VOLUME_BASED_PRICING_TIER_UPDATE"));
    assert_eq!(u.entry_time, Some(1_743_451_903));
    assert_eq!(
        u.volume_tier,
        Some(VolumeTier {
            tier: Some("25000001:50000000".into()),
            pricing_category: Some("UTILITY".into()),
            region: Some("INDIA".into()),
            effective_month: Some("2025-11".into()),
            tier_update_time: Some(1_743_451_903),
        })
    );

    let cap_body = example("business_capability_update");
    let cap = parse_ok(&cap_body);
    let u = &cap.account_updates[0];
    assert_eq!(
        u.max_daily_conversations_per_business.as_deref(),
        Some("2000")
    );
    assert_eq!(u.max_phone_numbers_per_waba.as_deref(), Some("25"));
    assert_eq!(u.event, None);

    let quality_body = example("phone_number_quality_update_throughput_upgrade");
    let quality = parse_ok(&quality_body);
    let u = &quality.account_updates[0];
    assert_eq!(u.event.as_deref(), Some("THROUGHPUT_UPGRADE"));
    assert_eq!(u.current_limit.as_deref(), Some("TIER_UNLIMITED"));
    assert_eq!(u.display_phone_number.as_deref(), Some("15550783881"));

    let upgrade_body = shape("phone_number_quality_update_upgrade");
    let upgrade = parse_ok(&upgrade_body);
    let u = &upgrade.account_updates[0];
    assert_eq!(
        (
            u.event.as_deref(),
            u.old_limit.as_deref(),
            u.current_limit.as_deref()
        ),
        (Some("UPGRADE"), Some("TIER_250"), None)
    );
    assert_eq!(
        u.max_daily_conversations_per_business.as_deref(),
        Some("TIER_2K")
    );

    let restricted_body = shape("account_update_restriction");
    let restricted = parse_ok(&restricted_body);
    let u = &restricted.account_updates[0];
    assert_eq!(u.event.as_deref(), Some("ACCOUNT_RESTRICTION"));
    assert_eq!(
        u.restrictions,
        vec![Restriction {
            restriction_type: Some("RESTRICTED_BIZ_INITIATED_MESSAGING".into()),
            expiration: Some("2026-12-19T13:59:20+0000".into()),
        }]
    );
    let printed = serde_json::to_value(u).unwrap_or_default();
    assert!(
        printed.get("ban_state").is_none(),
        "absent fields are not printed: {printed}"
    );
}

/// Issue 18's done-when: a message that has only `from_user_id` (a user
/// with a username) is read with its BSUID, parent BSUID, username and
/// name, not skipped.
#[test]
fn a_message_with_only_a_bsuid_is_kept_with_its_identity() {
    let body = shape("message_text_bsuid_only");
    let i = parse_ok(&body);
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    assert_eq!(i.messages.len(), 1);
    let m = &i.messages[0];
    assert_eq!(m.from, None);
    assert_eq!(m.from_user_id.as_deref(), Some("IN.13491208655302741918"));
    assert_eq!(
        m.from_parent_user_id.as_deref(),
        Some("IN.ENT.11815799212886844830")
    );
    assert_eq!(m.username.as_deref(), Some("@asharao"));
    assert_eq!(m.profile_name.as_deref(), Some("Asha Rao"));
    assert_eq!(m.text.as_deref(), Some("On it, calling Globex now"));
    assert_eq!(
        m.sender(),
        UserRef {
            wa_id: None,
            user_id: Some("IN.13491208655302741918"),
            parent_user_id: Some("IN.ENT.11815799212886844830"),
            username: Some("@asharao"),
        }
    );
    let both_body = shape("message_text_phone_and_bsuid");
    let both = parse_ok(&both_body);
    let m = &both.messages[0];
    assert_eq!(m.from.as_deref(), Some("919876543210"));
    assert_eq!(m.from_user_id.as_deref(), Some("IN.13491208655302741918"));
}

/// The sender's ids come from the message first, then from its contact
/// (matched by wa_id, else by BSUID); a malformed BSUID counts as absent.
#[test]
fn the_sender_identity_comes_from_the_message_then_its_contact() {
    let body = messages_body(
        "1",
        "2",
        json!({
            "contacts": [
                {"profile": {"name": "Other"}, "wa_id": "15550000001", "user_id": "US.1"},
                {"profile": {"name": "Ann", "username": "@ann"}, "wa_id": "15550000002", "user_id": "US.2",
                 "parent_user_id": "US.ENT.9"}
            ],
            "messages": [
                {"from": "15550000002", "id": "a", "timestamp": "1", "type": "text", "text": {"body": "x"}},
                {"from_user_id": "US.2", "id": "b", "timestamp": "1", "type": "text"},
                {"from_user_id": "not a bsuid", "id": "c", "timestamp": "1", "type": "text"},
                {"from": "15550000003", "from_user_id": "US#3", "id": "d", "timestamp": "1", "type": "text"}
            ]
        }),
    );
    let i = parse_ok(&body);
    let ids: Vec<_> = i
        .messages
        .iter()
        .map(|m| (&*m.id, m.sender(), m.profile_name.as_deref()))
        .collect();
    let ann = UserRef {
        wa_id: Some("15550000002"),
        user_id: Some("US.2"),
        parent_user_id: Some("US.ENT.9"),
        username: Some("@ann"),
    };
    assert_eq!(
        ids,
        vec![
            ("a", ann, Some("Ann")),
            ("b", ann, Some("Ann")),
            (
                "d",
                UserRef {
                    wa_id: Some("15550000003"),
                    ..UserRef::default()
                },
                None
            ),
        ]
    );
    assert_eq!(reasons(&i), vec!["message without from or from_user_id"]);
    assert_eq!(i.skipped[0].at, "entry[0].changes[0].value.messages[2]");
}

/// A change with many contacts finds each sender's own contact.
#[test]
fn many_contacts_are_matched_by_index() {
    let n = 50;
    let contacts: Vec<Value> = (0..n)
        .map(|k| json!({"profile": {"name": format!("csm {k}")}, "wa_id": format!("1555{k:07}"), "user_id": format!("US.{k}")}))
        .collect();
    let messages: Vec<Value> = (0..n)
        .rev()
        .map(|k| {
            if k % 2 == 0 {
                json!({"from": format!("1555{k:07}"), "id": format!("m{k}"), "timestamp": "1", "type": "text"})
            } else {
                json!({"from_user_id": format!("US.{k}"), "id": format!("m{k}"), "timestamp": "1", "type": "text"})
            }
        })
        .collect();
    let body = messages_body(
        "1",
        "2",
        json!({"contacts": contacts, "messages": messages}),
    );
    let i = parse_ok(&body);
    assert_eq!(i.messages.len(), n);
    for m in &i.messages {
        let k: usize = m.id[1..].parse().unwrap_or(usize::MAX);
        assert_eq!(m.profile_name.as_deref(), Some(format!("csm {k}").as_str()));
        assert_eq!(m.from.as_deref(), Some(format!("1555{k:07}").as_str()));
        assert_eq!(m.from_user_id.as_deref(), Some(format!("US.{k}").as_str()));
    }
}

/// Statuses carry the recipient's ids, `pricing` (with `type`) and, where
/// Meta still sends it, `conversation`; one sent to a BSUID has no
/// `recipient_id` and is kept.
#[test]
fn statuses_carry_recipient_ids_pricing_and_conversation() {
    let bsuid_body = shape("status_delivered_bsuid");
    let i = parse_ok(&bsuid_body);
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    let s = &i.statuses[0];
    assert_eq!(s.recipient_id, None);
    assert_eq!(
        s.recipient(),
        UserRef {
            wa_id: None,
            user_id: Some("IN.13491208655302741918"),
            parent_user_id: Some("IN.ENT.11815799212886844830"),
            username: Some("@asharao"),
        }
    );
    assert_eq!(
        s.pricing,
        Some(Pricing {
            billable: Some(true),
            pricing_model: Some("PMP".into()),
            category: Some("utility".into()),
            kind: Some("regular".into()),
        })
    );
    assert_eq!(s.conversation, None);

    let sent_body = shape("status_sent_with_conversation");
    let sent = parse_ok(&sent_body);
    let s = &sent.statuses[0];
    assert_eq!(s.recipient_id.as_deref(), Some("919876543210"));
    assert_eq!(
        s.conversation,
        Some(Conversation {
            id: Some("6ceb9d929c8d1a6a2e4b9f2b1c3d4e5f".into()),
            expiration_timestamp: Some(1_764_161_404),
            origin_type: Some("utility".into()),
        })
    );
    assert_eq!(
        s.pricing.as_ref().and_then(|p| p.kind.as_deref()),
        Some("free_customer_service")
    );
    assert_eq!(s.pricing.as_ref().and_then(|p| p.billable), Some(false));
    let printed = serde_json::to_value(s).unwrap_or_default();
    assert_eq!(printed["pricing"]["type"], "free_customer_service");

    let none_body = messages_body(
        "1",
        "2",
        json!({"statuses": [{"id": "w", "status": "sent", "timestamp": "1"}]}),
    );
    assert_eq!(
        reasons(&parse_ok(&none_body)),
        vec!["status without recipient_id or recipient_user_id"]
    );
}

/// A quick-reply tap on a template is told apart from an interactive
/// reply; both keep the quoted message and its sender.
#[test]
fn a_quick_reply_tap_keeps_its_payload_and_context() {
    let body = shape("message_button_quick_reply");
    let m = &parse_ok(&body).messages[0];
    assert_eq!(
        (m.reply_id.as_deref(), m.reply_kind, m.text.as_deref()),
        (
            Some("ack:k7Qx2"),
            Some(ReplyKind::QuickReply),
            Some("Acknowledge")
        )
    );
    assert_eq!(
        m.context_id.as_deref(),
        Some("wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUxFUlQwMDAwMDAwMDAwMDEA")
    );
    assert_eq!(m.context_from.as_deref(), Some("15550783881"));
    let printed = serde_json::to_value(m).unwrap_or_default();
    assert_eq!(printed["reply_kind"], "quick_reply");
}

/// System messages that change a user's number or BSUID are identity
/// changes, with the old and new ids; one with a sender stays a message.
#[test]
fn system_messages_are_identity_changes() {
    let number_body = shape("system_user_changed_number");
    let number = parse_ok(&number_body);
    assert!(number.skipped.is_empty(), "{:?}", number.skipped);
    assert_eq!(number.messages.len(), 1, "kept as a message, as before");
    let c = &number.identity_changes[0];
    assert_eq!(c.kind, IdentityChangeKind::UserChangedNumber);
    assert_eq!(
        c.message_id.as_deref(),
        Some("wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM1NZU05VTUJFUjAwMDAwMDAwMDEA")
    );
    assert_eq!(c.timestamp, Some(1_764_075_005));
    assert_eq!(c.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(
        c.previous,
        UserIds {
            wa_id: Some("919876543210".into()),
            user_id: Some("IN.13491208655302741918".into()),
            parent_user_id: None,
        }
    );
    assert_eq!(
        c.current,
        UserIds {
            wa_id: Some("919812345678".into()),
            user_id: Some("IN.24817305912873645029".into()),
            parent_user_id: None,
        }
    );

    let bsuid_body = shape("system_user_changed_user_id");
    let bsuid = parse_ok(&bsuid_body);
    assert!(bsuid.skipped.is_empty(), "{:?}", bsuid.skipped);
    let c = &bsuid.identity_changes[0];
    assert_eq!(c.kind, IdentityChangeKind::UserChangedUserId);
    assert_eq!(c.previous.wa_id, None);
    assert_eq!(
        c.previous.parent_user_id.as_deref(),
        Some("IN.ENT.11815799212886844830")
    );
    assert_eq!(
        c.current.user_id.as_deref(),
        Some("IN.24817305912873645029")
    );

    // A system message naming no new id is skipped as an identity change,
    // and one of another type is only a message.
    let odd = messages_body(
        "1",
        "2",
        json!({"messages": [
            {"from": "9", "id": "s1", "timestamp": "1", "type": "system", "system": {"type": "user_changed_number"}},
            {"from": "9", "id": "s2", "timestamp": "1", "type": "system", "system": {"type": "customer_identity_changed"}}
        ]}),
    );
    let i = parse_ok(&odd);
    assert_eq!(i.messages.len(), 2);
    assert!(i.identity_changes.is_empty());
    assert_eq!(
        reasons(&i),
        vec!["identity change without a new wa_id or user_id"]
    );
}

/// The `user_id_update` field becomes identity changes, one per item.
#[test]
fn user_id_updates_are_identity_changes() {
    let body = shape("user_id_update");
    let i = parse_ok(&body);
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    assert_eq!(
        i.identity_changes,
        vec![IdentityChange {
            waba_id: "102290129340398".into(),
            phone_number_id: Some("106540352242922".into()),
            kind: IdentityChangeKind::UserIdUpdate,
            message_id: None,
            timestamp: Some(1_764_075_007),
            previous: UserIds {
                wa_id: Some("919876543210".into()),
                user_id: Some("IN.13491208655302741918".into()),
                parent_user_id: None,
            },
            current: UserIds {
                wa_id: Some("919876543210".into()),
                user_id: Some("IN.24817305912873645029".into()),
                parent_user_id: None,
            },
        }]
    );
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
            from: Some("919876543210".into()),
            from_user_id: None,
            from_parent_user_id: None,
            username: None,
            profile_name: Some("Asha".into()),
            kind: "text".into(),
            timestamp: 1_750_000_000,
            text: Some("Is the report ready?".into()),
            context_id: None,
            context_from: None,
            reply_id: None,
            reply_kind: None,
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

/// A status missing `id` is skipped with a reason and where it was; its
/// siblings are kept.
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
            reason: "status without id".into(),
            at: "entry[0].changes[0].value.statuses[0]".into(),
        }]
    );
}

/// Two WABAs, several changes, messages + statuses + value errors in one change.
#[test]
fn several_entries_and_changes() {
    let body = bytes(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "111", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "201"},
                "messages": [{"from": "1", "id": "m1", "timestamp": "10", "type": "text", "text": {"body": "hi"}}],
                "statuses": [{"id": "s1", "status": "read", "timestamp": "11", "recipient_id": "1"}],
                "errors": [{"code": 131000, "title": "Something went wrong"}]}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": "202"},
                "statuses": [{"id": "s2", "status": "sent", "timestamp": 12, "recipient_id": "2"}]}},
            {"field": "security", "value": {"event": "PIN_CHANGED"}}
        ]},
        {"id": "222", "time": 99, "changes": [
            {"field": "message_template_status_update", "value": {"event": "PAUSED", "message_template_id": "5",
                "reason": "FIRST_PAUSE"}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": "201"},
                "messages": [{"from": "3", "id": "m2", "timestamp": "13", "type": "system",
                              "system": {"body": "changed", "wa_id": "4", "type": "user_changed_number"}}]}}
        ]},
        {"id": "111", "changes": []}
    ]}));
    let i = parse_ok(&body);
    assert_eq!(i.waba_ids, vec!["111", "222"]);
    assert_eq!(i.phone_number_ids, vec!["201", "202"]);
    assert_eq!(
        i.messages
            .iter()
            .map(|m| (&*m.id, &*m.waba_id))
            .collect::<Vec<_>>(),
        vec![("m1", "111"), ("m2", "222")]
    );
    assert_eq!(
        i.statuses
            .iter()
            .map(|s| (&*s.id, &*s.phone_number_id))
            .collect::<Vec<_>>(),
        vec![("s1", "201"), ("s2", "202")]
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
    assert_eq!(i.identity_changes.len(), 1);
    assert_eq!(i.identity_changes[0].current.wa_id.as_deref(), Some("4"));
    assert_eq!(i.skipped.len(), 1);
    assert_eq!(i.skipped[0].field, "security");
    assert_eq!(i.skipped[0].at, "entry[0].changes[2]");
}

/// Malformed parts below the envelope are skipped, never errors.
#[test]
fn malformed_parts_are_skipped() {
    let body = bytes(&json!({"object": "whatsapp_business_account", "entry": [
        7, {"changes": []}, {"id": "9", "changes": "nope"},
        {"id": 123, "changes": [null, {"value": {}}, {"field": "messages"},
            {"field": "messages", "value": {"messages": [{"id": "x"}]}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": 42}, "messages": "x",
                "statuses": [{"id": "s", "status": "sent", "timestamp": "1", "recipient_id": "2",
                              "errors": [{"title": "no code"}]}]}}]}
    ]}));
    let i = parse_ok(&body);
    assert_eq!(i.waba_ids, vec!["9", "123"]);
    assert_eq!(i.phone_number_ids, vec!["42"]);
    assert_eq!(i.statuses.len(), 1);
    assert!(i.statuses[0].errors.is_empty());
    let reasons = reasons(&i);
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
        .any(|r| r.contains("without a valid metadata.phone_number_id")));
    assert!(reasons.iter().any(|r| r.contains("without integer code")));
}

/// Routing ids are validated before anything looks them up: an entry id or
/// phone number id that is not 1 to 32 digits (a name, 2 KB of digits)
/// names no tenant, and its entry or change is skipped.
#[test]
fn routing_ids_are_validated_before_use() {
    let long = "9".repeat(2048);
    let body = bytes(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "acme", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "7"},
            "statuses": [{"id": "s", "status": "sent", "timestamp": "1", "recipient_id": "2"}]}}]},
        {"id": long, "changes": []},
        {"id": "102290129340398", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "../7"},
                "statuses": [{"id": "s", "status": "sent", "timestamp": "1", "recipient_id": "2"}]}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": long},
                "statuses": [{"id": "s", "status": "sent", "timestamp": "1", "recipient_id": "2"}]}}
        ]}
    ]}));
    let i = parse_ok(&body);
    assert_eq!(i.waba_ids, vec!["102290129340398"]);
    assert_eq!(
        i.phone_number_ids,
        vec!["7"],
        "routed from any change, as before"
    );
    assert!(i.statuses.is_empty());
    let reasons = reasons(&i);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "entry id is not a WhatsApp Business Account id")
            .count(),
        2
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("change without a valid metadata.phone_number_id"))
            .count(),
        2
    );
}

/// Skip reasons and refusals name the field, never a value from the body
/// (wamids and BSUIDs identify people).
#[test]
fn skip_reasons_name_fields_not_values() {
    let secret = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUPERSONAL";
    let body = messages_body(
        "1",
        "2",
        json!({"messages": [
            {"from": "919876543210", "id": secret, "type": "text"},
            {"from": "919876543210", "id": secret, "timestamp": "1"},
            {"id": secret, "timestamp": "1", "type": "text", "from_user_id": "IN.91987-6543210"}
        ], "statuses": [{"id": secret, "status": "sent", "timestamp": "1", "recipient_id": "919876543210",
            "errors": [{"title": "919876543210"}]}]}),
    );
    let i = parse_ok(&body);
    assert_eq!(i.skipped.len(), 4);
    let printed = serde_json::to_string(&i.skipped).unwrap_or_default();
    assert!(
        !printed.contains("PERSONAL") && !printed.contains("98765"),
        "{printed}"
    );
    for bad in [
        &b"{\"object\": \"919876543210\"}"[..],
        b"[\"919876543210\"]",
    ] {
        let e = parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!e.is_empty() && !e.contains("98765"), "{e}");
    }
}

/// A body holds at most `MAX_PER_LIST_KIND` items of each kind, counted
/// over the whole body: one more is refused, whatever the key or the
/// repetition that carries it.
#[test]
fn bodies_over_a_cap_are_refused() {
    let max = MAX_PER_LIST_KIND;
    let entries = |n: usize| {
        let e: Vec<Value> = (0..n)
            .map(|k| json!({"id": format!("{}", 1000 + k), "changes": []}))
            .collect();
        bytes(&json!({"object": "whatsapp_business_account", "entry": e}))
    };
    let at_cap = entries(max);
    assert_eq!(parse_ok(&at_cap).waba_ids.len(), max);
    assert_eq!(
        parse(&entries(max + 1)).err(),
        Some(PayloadError::TooMany {
            what: "entries",
            max
        })
    );
    // Messages over several changes and entries count together.
    let change = |n: usize| {
        let m: Vec<Value> = (0..n)
            .map(|k| json!({"from": "1", "id": format!("m{k}"), "timestamp": "1", "type": "text"}))
            .collect();
        json!({"field": "messages", "value": {"metadata": {"phone_number_id": "2"}, "messages": m}})
    };
    let split = bytes(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [change(max / 2), change(max / 2)]},
        {"id": "1", "changes": [change(1)]}
    ]}));
    assert_eq!(
        parse(&split).err(),
        Some(PayloadError::TooMany {
            what: "messages",
            max
        })
    );
    // A key repeated, so that only the last list would be kept, still counts.
    let repeated = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"2"}}{}}}}}]}}]}}"#,
        r#","statuses":[{},{},{},{},{},{},{},{},{},{}]"#.repeat(max / 10 + 1)
    );
    assert_eq!(
        parse(repeated.as_bytes()).err(),
        Some(PayloadError::TooMany {
            what: "statuses",
            max
        })
    );
    // Lists under keys the reader does not use are not counted (nor kept).
    let unused = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[]}}],"x":[{}]}}"#,
        vec!["{}"; 5 * max].join(",")
    );
    assert!(parse(unused.as_bytes()).is_ok());
}

/// Wrong top-level shapes are WrongShape.
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
        assert_eq!(parse(body).err(), Some(PayloadError::InvalidJson));
    }
}

/// 100k nested arrays hit serde_json's recursion limit: an error, not a stack overflow.
#[test]
fn deep_nesting_is_invalid_json() {
    let depth = 100_000;
    let mut deep = "[".repeat(depth);
    deep.push_str(&"]".repeat(depth));
    assert_eq!(
        parse(deep.as_bytes()).err(),
        Some(PayloadError::InvalidJson)
    );
    let nested_in_skeleton = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"x","value":{deep}}}]}}]}}"#
    );
    assert_eq!(
        parse(nested_in_skeleton.as_bytes()).err(),
        Some(PayloadError::InvalidJson)
    );
    // Under a key no reader uses, eight levels down in a well-formed
    // body: 127 levels in all are read, 128 are refused (serde_json's limit).
    let status_with = |extra: String| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"value":{{"metadata":{{"phone_number_id":"2"}},"statuses":[{{"id":"s","status":"sent","timestamp":"1","recipient_id":"2","x":{extra}}}]}},"field":"messages"}}]}}]}}"#
        )
    };
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(status_with(nest(119)).as_bytes()).is_ok());
    assert_eq!(
        parse(status_with(nest(120)).as_bytes()).err(),
        Some(PayloadError::InvalidJson)
    );
}

/// A duplicate key: the last wins (as a `serde_json::Map` keeps it);
/// escaped keys and strings and integer ids are read; a number outside
/// `f64`'s range, even under a key no reader uses, is invalid JSON.
#[test]
fn duplicate_keys_escapes_and_numbers() {
    let dup =
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1"}],"entry":[{"id":"2"}]}"#;
    assert_eq!(parse(dup).map(|i| i.waba_ids), Ok(vec!["2".into()]));

    let escaped = br#"{"object":"whatsapp_business_account","entry":[{"id":"1\u0032","chan\u0067es":[{"value":{"metadata":{"phone_number_id":"9\u0039"}},"field":"x"}]}]}"#;
    let i = parse_ok(escaped);
    assert_eq!(
        (i.waba_ids, i.phone_number_ids),
        (vec!["12".into()], vec!["99".into()])
    );
    assert_eq!(i.skipped[0].reason, "field not used by this service");

    let numeric = br#"{"object":"whatsapp_business_account","entry":[{"id":77,"changes":[{"value":{"metadata":{"phone_number_id":88},"statuses":[{"id":"s","status":"read","timestamp":1750000000,"recipient_id":15550001111}]},"field":"messages"}]}]}"#;
    let i = parse_ok(numeric);
    assert_eq!(
        (i.waba_ids, i.phone_number_ids),
        (vec!["77".into()], vec!["88".into()])
    );
    assert_eq!(i.statuses[0].recipient_id.as_deref(), Some("15550001111"));
    assert_eq!(i.statuses[0].timestamp, 1_750_000_000);

    for number in ["1e400", "-1e400", &"9".repeat(400)] {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[]}}],"x":{{"y":[{number}]}}}}"#
        );
        assert_eq!(
            parse(body.as_bytes()).err(),
            Some(PayloadError::InvalidJson),
            "{number}"
        );
    }
    let in_range = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":[1e300,-0.5,18446744073709551616]}"#;
    assert!(parse(in_range).is_ok());
}

/// One value of the wrong type costs only the item that holds it: the
/// message, status and template update that sit beside it are still read.
#[test]
fn one_bad_value_costs_only_its_item() {
    let base = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "time": 5, "changes": [
        {"field": "messages", "value": {"metadata": {"phone_number_id": "2"},
            "contacts": [{"wa_id": "1", "profile": {"name": "Ann"}}],
            "messages": [{"from": "1", "id": "m", "timestamp": "7", "type": "text", "text": {"body": "hi"},
                          "context": {"id": "c"}, "errors": [{"code": 1}]}],
            "statuses": [{"id": "s", "status": "failed", "timestamp": "8", "recipient_id": "2",
                          "errors": [{"code": 131047, "title": "t", "error_data": {"details": "d"}}],
                          "biz_opaque_callback_data": "cb", "pricing": {"type": "regular"}}]}},
        {"field": "message_template_status_update", "value": {"event": "REJECTED", "reason": "NONE",
            "message_template_id": 9, "message_template_name": "n", "message_template_language": "en"}}]}]});
    let base_body = bytes(&base);
    let base_intake = parse_ok(&base_body);
    let count = |i: &Intake| (i.messages.len(), i.statuses.len(), i.template_updates.len());
    assert_eq!(count(&base_intake), (1, 1, 1));
    let cases: &[(&str, Value, (usize, usize, usize))] = &[
        ("/entry/0/time", json!("soon"), (1, 1, 1)),
        ("/entry/0/changes/0/value/contacts/0", json!("1"), (1, 1, 1)),
        (
            "/entry/0/changes/0/value/contacts/0/profile",
            json!("Ann"),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/id",
            json!(""),
            (0, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/from",
            Value::Null,
            (0, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/type",
            json!(3),
            (0, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/timestamp",
            json!("-7"),
            (0, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/text",
            json!("hi"),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/text/body",
            json!(["hi"]),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/context",
            json!("c"),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages/0/errors/0/code",
            json!(1.0),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/status",
            json!(""),
            (1, 0, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/recipient_id",
            json!(true),
            (1, 0, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/timestamp",
            json!(u64::MAX),
            (1, 0, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/errors/0/code",
            json!("x1"),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/errors/0/error_data",
            json!("d"),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/pricing",
            json!([1]),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/statuses/0/biz_opaque_callback_data",
            json!({}),
            (1, 1, 1),
        ),
        ("/entry/0/changes/1/value/event", Value::Null, (1, 1, 0)),
        (
            "/entry/0/changes/1/value/message_template_id",
            json!(9.5),
            (1, 1, 1),
        ),
        (
            "/entry/0/changes/0/value/messages",
            json!({"0": {}}),
            (0, 1, 1),
        ),
        ("/entry/0/changes/1", json!([]), (1, 1, 0)),
    ];
    for (pointer, replacement, want) in cases {
        let mut body = base.clone();
        match body.pointer_mut(pointer) {
            Some(slot) => *slot = replacement.clone(),
            None => panic!("{pointer} is not in the base body"),
        }
        let body = bytes(&body);
        let i = parse(&body).unwrap_or_else(|e| panic!("{pointer}: {e}"));
        assert_eq!(count(&i), *want, "{pointer} = {replacement}");
    }
}

/// Lone surrogates and invalid UTF-8, even in strings no reader uses,
/// are invalid JSON; an escaped emoji is read.
#[test]
fn escapes_in_skipped_parts() {
    for lone in [
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":"\ud800"}"#.as_slice(),
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":{"\udc00":1}}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"\ud800":1}"#,
    ] {
        assert_eq!(parse(lone).err(), Some(PayloadError::InvalidJson));
    }
    let mut bad =
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}],"x":"??"}"#
            .to_vec();
    if let Some(p) = bad.iter().position(|b| *b == b'?') {
        bad[p] = 0xc3;
    }
    assert_eq!(parse(&bad).err(), Some(PayloadError::InvalidJson));
    let emoji = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"2"},"messages":[{"from":"3","id":"4","timestamp":"5","type":"reaction","reaction":{"message_id":"w","emoji":"\ud83d\udc4d"}}]}}]}]}"#;
    assert_eq!(
        parse(emoji).map(|i| i.messages[0].text.clone()),
        Ok(Some(Cow::Borrowed("\u{1f44d}")))
    );
}
