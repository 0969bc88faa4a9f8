//! A CSM's message as a response to an alert (`alert.response`).
//!
//! A message answers an alert when it is
//! - a tap on one of the alert's buttons: a template quick reply (`type:
//!   button`, `button.payload`) or an interactive reply button
//!   (`interactive.button_reply.id`), whose payload names the action and
//!   the alert's reference ([`crate::responses`]), found under the tenant
//!   the signed body belongs to;
//! - a text that quotes the alert (`context.id`, the alert's wamid), found
//!   through the alert's message status record (`T#{tenant}#MSG#{wamid}`,
//!   which holds the idempotency key Meta echoed in
//!   `biz_opaque_callback_data`, kept 90 days after its last status): a
//!   reply to a week-old alert resolves;
//! - a tap on a template sent without payloads (Meta then hands back the
//!   button text) that quotes the alert: its label names the action.
//!
//! Anything else (a payload that is too long, forged, of another tenant or
//! of an unknown alert; a quote of a message that is not an alert; an
//! answer from someone the alert did not go to) is logged and is no
//! response: the message is still a `csm.message_received`, and the webhook
//! still answers 200.

use tracing::{info, warn};

use super::payload::{InboundMessage, ReplyKind, UserRef};
use super::Refusal;
use crate::admin::when::iso8601;
use crate::events::{Event, EventCsm};
use crate::identity::Identity;
use crate::ids::{IdempotencyKey, TenantId};
use crate::owed::{Mark, Owed};
use crate::phone::E164;
use crate::responses::{parse_payload, Action, Payload};
use crate::sender::request::SendRequest;
use crate::startup::App;
use crate::store::{Change, ResponseRecord};

/// The response `m` is to an alert, recorded once with its owed event;
/// `None` when it answers no alert of the tenant, or was recorded before and
/// its event published.
pub(super) async fn response_of<'a>(
    app: &App,
    t: &TenantId,
    m: &'a InboundMessage<'_>,
    who: &Identity,
    ids: UserRef<'_>,
    now: i64,
) -> Result<Option<Owed<'a>>, Refusal> {
    let Some((action, key, quoted)) = resolve(app, t, m).await? else {
        return Ok(None);
    };
    let Some(ledger) = app.store.get_ledger(t, &key).await? else {
        warn!(message_id = %m.id, idempotency_key = %key, "a response names an alert the ledger does not hold; not a response");
        return Ok(None);
    };
    let addressed = ledger
        .request_json
        .as_deref()
        .and_then(|r| SendRequest::parse(r).ok());
    if !addressed
        .as_ref()
        .is_some_and(|r| answered_by_recipient(r, who, ids))
    {
        warn!(message_id = %m.id, idempotency_key = %key, answered_by = %who, "a response from someone the alert did not go to; not a response");
        return Ok(None);
    }
    let csm = EventCsm::of(who, ids);
    let record = ResponseRecord {
        message_id: m.id.to_string(),
        action: action.as_str().to_string(),
        wamid: quoted.or(ledger.wamid),
        csm_json: serde_json::to_string(&csm).unwrap_or_default(),
        at: m.timestamp,
        snooze_until: action.snooze_secs().map(|s| now + s),
    };
    let (change, stored) = app.store.record_response(t, &key, &record, now).await?;
    match change {
        Change::Applied | Change::Owed => {}
        Change::InFlight => return Err(Refusal::EventInFlight),
        Change::Unchanged => return Ok(None),
    }
    info!(message_id = %m.id, idempotency_key = %key, action = %action, csm = %who, "CSM responded to an alert");
    mark_read(app, t, &m.id).await;
    Ok(Some(Owed {
        event: Event::AlertResponse {
            tenant_id: t.to_string(),
            idempotency_key: key.to_string(),
            wamid: stored.wamid,
            csm,
            action: stored.action,
            snooze_until: stored.snooze_until.map(iso8601),
            // From the message itself: a reply's text is not stored.
            text: (action == Action::Reply)
                .then(|| m.text.as_deref().map(str::to_owned))
                .flatten(),
            message_id: m.id.to_string(),
            at: iso8601(stored.at),
        },
        mark: Mark::Response {
            key,
            message_id: &m.id,
        },
    }))
}

/// Whether the person who answered is the one the alert went to: the roster
/// CSM it named, or the number or BSUID it was addressed to (in any of the
/// forms Meta writes a number as a `wa_id`). A payload reaches only the
/// phone it was sent to, so anyone else holding one did not get it from
/// Meta.
fn answered_by_recipient(r: &SendRequest, who: &Identity, ids: UserRef<'_>) -> bool {
    if let (Some(id), Identity::Csm(answered)) = (&r.csm_id, who) {
        return id == answered;
    }
    let by_number = match (&r.phone, ids.wa_id) {
        (Some(phone), Some(wa_id)) => {
            *who == Identity::Number(phone.clone())
                || E164::from_wa_id(wa_id).is_ok_and(|n| n == *phone)
                || E164::wa_id_variants(wa_id).contains(phone)
        }
        _ => false,
    };
    let by_user = match (&r.user_id, ids.user_id) {
        (Some(u), Some(from)) => u == from,
        _ => false,
    };
    by_number || by_user
}

/// The action, the alert's key and the wamid the message quotes.
async fn resolve(
    app: &App,
    t: &TenantId,
    m: &InboundMessage<'_>,
) -> Result<Option<(Action, IdempotencyKey, Option<String>)>, Refusal> {
    let quoted = m.context_id.as_deref().map(str::to_owned);
    let tapped = matches!(
        m.reply_kind,
        Some(ReplyKind::QuickReply | ReplyKind::ButtonReply)
    );
    let action = match (tapped, m.reply_id.as_deref()) {
        (true, Some(p)) => match parse_payload(p) {
            Payload::Ours { action, reference } => {
                return Ok(match app.store.alert_by_reference(t, &reference).await? {
                    Some(key) => Some((action, key, quoted)),
                    None => {
                        warn!(message_id = %m.id, "a tapped payload names no alert of this tenant (forged, another tenant's, or gone); not a response");
                        None
                    }
                });
            }
            Payload::Invalid(why) => {
                warn!(message_id = %m.id, reason = why, "a tapped payload is not valid; not a response");
                return Ok(None);
            }
            // A template sent without payloads: its label, with the quote.
            Payload::Foreign => match m.text.as_deref().and_then(Action::from_label) {
                Some(a) => a,
                None => {
                    info!(message_id = %m.id, "a tap on no action of ours; not a response");
                    return Ok(None);
                }
            },
        },
        _ if m.kind == "text" => Action::Reply,
        _ => return Ok(None),
    };
    let Some(wamid) = quoted else {
        return Ok(None);
    };
    let key = app
        .store
        .get_message_status(t, &wamid)
        .await?
        .and_then(|s| s.idempotency_key)
        .and_then(|k| IdempotencyKey::parse(&k).ok());
    match key {
        Some(key) => Ok(Some((action, key, Some(wamid)))),
        None => {
            warn!(message_id = %m.id, quoted = %wamid, "a message quotes one that is not a known alert; not a response");
            Ok(None)
        }
    }
}

/// Marks the CSM's message read, so they see it reached Fincelo. The
/// webhook holds no access token (its role reads only the webhook secrets,
/// see [`crate::secrets`]), so it asks the sender, through the send queue.
/// Off when `READ_RECEIPTS` is `false`. A failure is logged: the receipt is
/// a courtesy, never a reason to fail the webhook.
async fn mark_read(app: &App, t: &TenantId, message_id: &str) {
    if !app.config.read_receipts {
        return;
    }
    let control = crate::sender::message::Control::mark_read(t.clone(), message_id.to_string());
    if let Err(e) = app.queues.enqueue_send(&control.to_json()).await {
        warn!(error = %e, message_id, "could not ask for a read receipt; the CSM's message stays unread");
    }
}
