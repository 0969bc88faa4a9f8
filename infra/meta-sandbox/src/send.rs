//! `POST /{version}/{phone-number-id}/messages`: Meta's synchronous rules
//! for a send, under one lock, in Meta's order; and read receipts.
//!
//! Order: throughput (130429), the pair limit (131056), the recipient (a
//! registered user by any alias, `recipient` BSUIDs and 131062, the identity
//! key hash and 137000), the account (131063), the template (132001, 132015,
//! 132016, 132000, 132018), then the errors Meta reports by `failed` webhook:
//! 131042 (payment), 131026 (undeliverable), 131047 (no window for a
//! free-form message), 131049 / 131050 / 130472 (marketing to this user).
//! `window_error_mode: sync` turns those into HTTP 400s. An accepted message
//! is priced ([`crate::pricing`]), recorded, and its statuses go out.

use std::time::Instant;

use serde_json::{json, Value};

use crate::errors::MetaError;
use crate::faults::roll;
use crate::identity::{self, User};
use crate::knobs::{EdgeFailure, WindowErrorMode};
use crate::model::{
    MessageRecord, Pricing, ReadRecord, SentButton, SentButtons, SentQuickReply, SentTemplate,
    TemplateRecord,
};
use crate::pricing::{self, Priced};
use crate::requests::{Addressee, QuickReplyParam, ReadRequest, SendKind, SendRequest};
use crate::rules::{self, PairBucket};
use crate::state::{Store, Tenant};

/// What the rules decided for a send that passed every synchronous check.
pub struct Accepted {
    pub record: MessageRecord,
    pub tenant: Tenant,
    pub async_error: Option<MetaError>,
    /// The send response's `contacts[0]`.
    pub contact: Value,
    pub lost: bool,
    pub edge: Option<EdgeFailure>,
    pub hold_ms: u64,
    /// The registered user, for the status webhooks' identity fields.
    pub user: Option<User>,
    /// Whether status webhooks may show the user's phone number.
    pub phone_shown: bool,
}

fn new_wamid() -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("wamid.HBgM{raw}")
}

/// The message's recipient as Meta resolves it.
struct Recipient {
    user: Option<User>,
    /// Whom windows and buckets belong to.
    key: String,
    /// What `MessageRecord.wa_id` and the phone path report ("" when unknown).
    wa_id: String,
    /// The BSUID Meta reports for the user, if any.
    user_id: Option<String>,
}

fn resolve(store: &Store, addressee: &Addressee) -> Result<Recipient, MetaError> {
    match addressee {
        Addressee::Phone { digits, .. } => {
            let user = identity::find(&store.users, digits).cloned();
            Ok(Recipient {
                key: identity::window_key(&store.users, digits),
                wa_id: user
                    .as_ref()
                    .and_then(|u| u.wa_id().map(String::from))
                    .unwrap_or_else(|| digits.clone()),
                user_id: user.as_ref().and_then(|u| u.spec.user_id.clone()),
                user,
            })
        }
        Addressee::Bsuid(id) => {
            let user = identity::find(&store.users, id).cloned().ok_or_else(|| {
                MetaError::invalid_parameter(format!(
                    "Param recipient '{id}' is not a business-scoped user ID of this business."
                ))
            })?;
            Ok(Recipient {
                key: identity::window_key(&store.users, id),
                wa_id: user.wa_id().unwrap_or("").to_string(),
                user_id: user.spec.user_id.clone(),
                user: Some(user),
            })
        }
    }
}

/// The template's QUICK_REPLY button texts, by index.
fn quick_reply_texts(t: &TemplateRecord) -> Vec<(usize, String, bool)> {
    t.components
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["type"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("BUTTONS"))
        })
        .flat_map(|c| c["buttons"].as_array().cloned().unwrap_or_default())
        .enumerate()
        .map(|(i, b)| {
            let quick = b["type"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("QUICK_REPLY"));
            (i, b["text"].as_str().unwrap_or("").to_string(), quick)
        })
        .collect()
}

fn check_quick_replies(
    t: &TemplateRecord,
    params: &[QuickReplyParam],
) -> Result<Vec<SentQuickReply>, MetaError> {
    let buttons = quick_reply_texts(t);
    params
        .iter()
        .map(|p| match buttons.iter().find(|(i, _, _)| *i == p.index) {
            Some((_, text, true)) => Ok(SentQuickReply {
                index: p.index,
                payload: p.payload.clone(),
                text: text.clone(),
            }),
            Some(_) => Err(MetaError::template_params(format!(
                "buttons[{}]: the template's button at this index is not a quick reply",
                p.index
            ))),
            None => Err(MetaError::template_params(format!(
                "buttons[{}]: the template has no button at this index",
                p.index
            ))),
        })
        .collect()
}

/// All the synchronous rules of a send; see the module doc for the order.
pub fn decide(
    store: &mut Store,
    tenant: Tenant,
    req: SendRequest,
    now_ms: i64,
    graph_version: &str,
) -> Result<Accepted, MetaError> {
    let id = tenant.spec.phone_number_id.clone();
    let knobs = store.knobs.clone();
    let now = Instant::now();

    // Throughput (130429), then the pair limit (131056).
    if !store
        .throughput
        .entry(id.clone())
        .or_default()
        .has_room(now, knobs.mps_cap)
    {
        return Err(MetaError::throughput(knobs.mps_cap));
    }
    let recipient = resolve(store, &req.addressee)?;
    let bucket = store
        .pairs
        .entry((id.clone(), recipient.key.clone()))
        .or_insert_with(|| PairBucket::new(knobs.pair_limit, now));
    if !bucket.try_take(knobs.pair_limit, now) {
        return Err(MetaError::pair_rate_limit());
    }

    // The recipient's identity key (137000).
    if let (Some(sent), Some(user)) = (&req.identity_key_hash, &recipient.user) {
        if user
            .spec
            .identity_key_hash
            .as_ref()
            .is_some_and(|h| h != sent)
        {
            return Err(MetaError::identity_mismatch());
        }
    }

    let account = store.account(&tenant.spec.waba_id);
    let window_open = rules::within_service_window(
        store
            .last_inbound
            .get(&(id.clone(), recipient.key.clone()))
            .copied(),
        now_ms.div_euclid(1000),
    );

    // Content: template checks are synchronous.
    let mut template_category = None;
    let (text, template, interactive) = match &req.kind {
        SendKind::Text { body, .. } => (Some(body.clone()), None, None),
        SendKind::Buttons { body, buttons, .. } => (
            None,
            None,
            Some(SentButtons {
                body: body.clone(),
                buttons: buttons
                    .iter()
                    .map(|b| SentButton {
                        id: b.id.clone(),
                        title: b.title.clone(),
                    })
                    .collect(),
            }),
        ),
        SendKind::Template {
            name,
            language,
            body_params,
            quick_replies,
        } => {
            let t = store
                .templates
                .iter()
                .find(|t| {
                    t.waba_id == tenant.spec.waba_id && &t.name == name && &t.language == language
                })
                .ok_or_else(|| MetaError::template_missing(name, language))?;
            // Meta's error codes page: 132015 paused, 132016 disabled; any
            // other status that is not approved (pending, rejected, in
            // appeal, archived, deleted, ...) is 132001.
            match t.status.as_str() {
                "APPROVED" => {}
                "PAUSED" => return Err(MetaError::template_paused(name)),
                "DISABLED" => return Err(MetaError::template_disabled(name)),
                _ => return Err(MetaError::template_missing(name, language)),
            }
            // 131062: one-tap, zero-tap and copy-code authentication
            // templates need a phone number (Meta's BSUID document).
            if matches!(req.addressee, Addressee::Bsuid(_))
                && t.category.eq_ignore_ascii_case("AUTHENTICATION")
            {
                return Err(MetaError::bsuid_not_supported());
            }
            if t.category.eq_ignore_ascii_case("MARKETING") && account.marketing_messages_api_only {
                return Err(MetaError::marketing_needs_mm_api());
            }
            if t.body_placeholders != body_params.len() {
                return Err(MetaError::param_count(
                    t.body_placeholders,
                    body_params.len(),
                ));
            }
            let sent_quick = check_quick_replies(t, quick_replies)?;
            template_category = Some(t.category.clone());
            let sent = SentTemplate {
                name: name.clone(),
                language: language.clone(),
                parameters: body_params.clone(),
                category: t.category.clone(),
                quick_replies: sent_quick,
            };
            (None, Some(sent), None)
        }
    };

    // Errors Meta reports by webhook (or sync under window_error_mode=sync).
    let marketing = template_category
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("MARKETING"));
    let undeliverable = knobs.undeliverable.iter().any(|u| {
        rules::wa_id_of(u).is_some_and(|d| {
            d == recipient.wa_id
                || recipient
                    .user
                    .as_ref()
                    .is_some_and(|usr| usr.answers_to(&d))
        })
    });
    let user = recipient.user.as_ref();
    let async_error = if account.payment_issue {
        Some(MetaError::payment_issue())
    } else if undeliverable {
        Some(MetaError::undeliverable())
    } else if template.is_none() && !window_open {
        Some(MetaError::reengagement())
    } else if marketing && user.is_some_and(|u| u.spec.stopped_marketing) {
        Some(MetaError::marketing_stopped())
    } else if marketing && user.is_some_and(|u| u.spec.marketing_limited) {
        Some(MetaError::marketing_limit())
    } else if marketing && !window_open && user.is_some_and(|u| u.spec.in_experiment) {
        Some(MetaError::experiment())
    } else {
        None
    };
    if let Some(e) = &async_error {
        if knobs.window_error_mode == WindowErrorMode::Sync {
            return Err(e.clone());
        }
    }

    // Accepted: count it against the caps, price it and record it.
    let in_window = store.throughput.entry(id.clone()).or_default().record(now) as u64;
    let lost = roll(store, knobs.response_lost_rate);
    let edge = (!lost && roll(store, knobs.edge_failure_rate)).then_some(knobs.edge_failure);
    let pricing = async_error.is_none().then(|| {
        price(
            store,
            &id,
            template_category.as_deref(),
            window_open,
            now_ms,
        )
    });
    if let (Addressee::Phone { .. }, Some(u)) = (&req.addressee, &recipient.user) {
        identity::record_phone_use(store, &tenant, &u.key, now_ms);
    }
    let phone_shown = match (&req.addressee, &recipient.user) {
        (Addressee::Phone { .. }, _) | (_, None) => true,
        (Addressee::Bsuid(_), Some(u)) => identity::phone_visible(store, &tenant, u, now_ms),
    };
    let (to, recipient_field) = match &req.addressee {
        Addressee::Phone { to, .. } => (to.clone(), None),
        Addressee::Bsuid(b) => (b.clone(), Some(b.clone())),
    };
    let record = MessageRecord {
        wamid: new_wamid(),
        phone_number_id: id.clone(),
        to,
        wa_id: recipient.wa_id.clone(),
        kind: req.kind.type_name().to_string(),
        text,
        template,
        biz_opaque_callback_data: req.biz_opaque_callback_data.clone(),
        accepted_at: now_ms,
        response_lost: lost,
        failed_with: async_error.as_ref().map(|e| e.code),
        recipient: recipient_field,
        user_id: recipient.user_id.clone(),
        interactive,
        reply_to: req.reply_to.clone(),
        pricing,
        graph_version: graph_version.to_string(),
        edge_failure: edge.map(|e| e.status),
    };
    // Meta's send response (BSUID document): `wa_id` when sent to a phone
    // number, `user_id` when sent to a BSUID.
    let contact = match &req.addressee {
        Addressee::Phone { to, .. } => json!({"input": to, "wa_id": recipient.wa_id}),
        Addressee::Bsuid(b) => json!({"input": b, "user_id": b}),
    };
    store.stats.accepted += 1;
    if edge.is_some() {
        store.stats.edge_failures += 1;
    }
    let ps = store.stats.per_phone_number.entry(id).or_default();
    ps.accepted += 1;
    ps.max_per_rolling_second = ps.max_per_rolling_second.max(in_window);
    store.messages.push(record.clone());
    Ok(Accepted {
        record,
        tenant,
        async_error,
        contact,
        lost,
        edge,
        hold_ms: knobs.timeout_hold_ms,
        user: recipient.user,
        phone_shown,
    })
}

/// Prices a message that will be delivered, counting the month's service messages.
fn price(
    store: &mut Store,
    phone_number_id: &str,
    template_category: Option<&str>,
    window_open: bool,
    now_ms: i64,
) -> Pricing {
    let rules = store.knobs.pricing_rules.at(now_ms);
    let allowance = store.knobs.service_free_allowance;
    match template_category {
        Some(c) => pricing::pricing(rules, Priced::Template(c), window_open, 0, allowance),
        None => {
            let (y, m) = crate::calendar::year_month(now_ms);
            let used = store
                .service_messages
                .entry((phone_number_id.to_string(), y, m))
                .or_default();
            let p = pricing::pricing(rules, Priced::Service, window_open, *used, allowance);
            *used += 1;
            p
        }
    }
}

/// A read receipt: the message must be one this phone number received.
pub fn read(
    store: &mut Store,
    tenant: &Tenant,
    req: ReadRequest,
    now_ms: i64,
) -> Result<Value, MetaError> {
    let id = &tenant.spec.phone_number_id;
    if store.inbound_ids.get(&req.message_id) != Some(id) {
        return Err(MetaError::invalid_parameter(format!(
            "Param message_id '{}' is not a message this phone number received.",
            req.message_id
        )));
    }
    store.reads.push(ReadRecord {
        phone_number_id: id.clone(),
        message_id: req.message_id,
        typing_indicator: req.typing_indicator,
        at: now_ms,
    });
    Ok(json!({"success": true}))
}
