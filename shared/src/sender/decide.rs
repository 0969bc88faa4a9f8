//! The sender's decisions, as pure functions of what it has read: whether a
//! key someone already claimed is finished, busy or in doubt; what a send in
//! doubt turned out to be; free-form or template; what a failed send means
//! for the alert; how long an alert waits for Meta's per-user limit or for
//! its template.
//!
//! No I/O here: the orchestration ([`super::Sender`]) reads the ledger, the
//! statuses and the window, asks these functions, then writes what they
//! chose. So each rule can be read, and tested, alone.

use super::classify::{self, Class, USER_LIMIT_GIVE_UP_SECS, USER_LIMIT_WAIT_SECS};
use crate::events::Fallback;
use crate::store::{LedgerEntry, LedgerState, MessageStatusRecord, SendMode, Window};
use crate::templates::status::TemplateStatus;

/// SQS's longest visibility timeout, 12 hours: the furthest a record can be
/// put off.
const SQS_MAX_DELAY_SECS: i64 = 43_200;

/// What to do with a key someone already claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Existing {
    /// Finished (sent, expired, parked) or waiting for its template: nothing
    /// is sent, and its outcome is published again.
    Finished,
    /// Another instance holds it and its lease runs: come back after this.
    Busy { retry_after: i32 },
    /// Its last send may have reached Meta (ambiguous, or the holder's lease
    /// ran out): judged by [`judge_doubt`].
    InDoubt,
    /// A later try that is not due before `retry_at` (131049).
    NotDue { retry_at: i64, retry_after: i32 },
    /// Nothing to do now (a `retry` is claimable, so no claim fails on
    /// it): come back in a second.
    Unexpected,
}

/// Decides a key that a claim found taken.
pub(super) fn on_existing(entry: &LedgerEntry, now: i64) -> Existing {
    match entry.state {
        s if s.is_final() || s == LedgerState::Waiting => Existing::Finished,
        LedgerState::Claimed if entry.lease_until > now => Existing::Busy {
            retry_after: i32::try_from(entry.lease_until - now + 1).unwrap_or(60),
        },
        LedgerState::Claimed | LedgerState::Ambiguous => Existing::InDoubt,
        LedgerState::Retry => match entry.retry_at {
            Some(at) if at > now => Existing::NotDue {
                retry_at: at,
                retry_after: i32::try_from((at - now).clamp(1, SQS_MAX_DELAY_SECS))
                    .unwrap_or(43_200),
            },
            _ => Existing::Unexpected,
        },
        _ => Existing::Unexpected,
    }
}

/// What a send in doubt turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Doubt<'s> {
    /// Meta reported a status for it: it was sent, as this wamid.
    WasSent(&'s str),
    /// No status yet, and `decide_at` is still ahead: come back then.
    Undecided { retry_after: i32 },
    /// Judged lost, but the alert is stale now: expired, not sent.
    Stale,
    /// Judged lost (no status by `decide_at`): send it again.
    SendAgain,
}

/// Judges a send in doubt from the statuses Meta sent for its key. Statuses
/// of a free-form message handed back with 131047 are left out (that one
/// was refused; the send in doubt is the template that replaced it), and so
/// are refusals the sender already acted on ([`is_handled_refusal`]).
/// Without a status, it is lost once `decide_at` has passed (the lease's
/// end + `ambiguous_delay_secs` for an instance that died mid-send).
pub(super) fn judge_doubt<'s>(
    entry: &LedgerEntry,
    statuses: &'s [MessageStatusRecord],
    deliver_by: Option<i64>,
    now: i64,
    ambiguous_delay_secs: i64,
) -> Doubt<'s> {
    let handed_back = entry
        .force_template
        .then_some(entry.wamid.as_deref())
        .flatten();
    if let Some(status) = statuses
        .iter()
        .find(|s| Some(s.wamid.as_str()) != handed_back && !is_handled_refusal(s))
    {
        return Doubt::WasSent(&status.wamid);
    }
    let decide_at = entry
        .decide_at
        .unwrap_or(entry.lease_until + ambiguous_delay_secs);
    if now < decide_at {
        return Doubt::Undecided {
            retry_after: i32::try_from(decide_at - now).unwrap_or(600).max(1),
        };
    }
    if deliver_by.is_some_and(|d| d <= now) {
        return Doubt::Stale;
    }
    Doubt::SendAgain
}

/// A status that says nothing about the send in doubt: Meta's `failed`
/// for an earlier send of this key, refused with a code the webhook handed
/// back and the sender acted on (131049, 131042, ...: [`super::refused`]).
/// Meta did take that earlier send, so without this its status would pass
/// for the new one's. (A 131047 hand-back's status is left out by its wamid.)
pub(super) fn is_handled_refusal(status: &MessageStatusRecord) -> bool {
    if status.status != "failed" {
        return false;
    }
    let errors: Vec<serde_json::Value> = status
        .errors_json
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    errors
        .iter()
        .filter_map(|e| e.get("code").and_then(serde_json::Value::as_i64))
        .any(classify::acted_on_after_acceptance)
}

/// Whether an alert may go as free-form text, if its CSM's window is open:
/// it has text, and it was not handed back for a template (131047).
/// Only then is the window worth reading.
pub(super) fn may_go_free_form(has_text: bool, force_template: bool) -> bool {
    has_text && !force_template
}

/// Free-form inside the CSM's window (open with `margin_secs` to spare),
/// when the alert may go so; a template otherwise, which is always allowed.
pub(super) fn choose_mode(
    has_text: bool,
    force_template: bool,
    window: Option<&Window>,
    now: i64,
    margin_secs: i64,
) -> SendMode {
    let open = window.is_some_and(|w| w.is_open(now, margin_secs));
    if may_go_free_form(has_text, force_template) && open {
        SendMode::FreeForm
    } else {
        SendMode::Template
    }
}

/// Why an alert going as `mode` is a template instead of the text it
/// carried: the hand-back's forced template is Meta's 131047, any other a
/// window that was not open. `None` for free-form, and for an alert with no
/// text (the template is all it asked for).
pub(super) fn fallback(mode: SendMode, has_text: bool, force_template: bool) -> Option<Fallback> {
    match mode {
        SendMode::Template if has_text && force_template => Some(Fallback::Meta131047),
        SendMode::Template if has_text => Some(Fallback::WindowClosed),
        _ => None,
    }
}

/// What a failed send means for the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// Meta provably did not take it: try again later, with backoff.
    Retry,
    /// As [`OnFailure::Retry`], but this was the last receive allowed:
    /// parked (`max_attempts`).
    GiveUp,
    /// It may have reached Meta: recorded as ambiguous, judged later.
    InDoubt,
    /// The number is not a usable WhatsApp account (131026): flagged, parked.
    Undeliverable,
    /// Meta's per-user limit (131049): see [`user_limit`].
    UserLimited,
    /// The business cannot pay (131042): every send of the tenant is held.
    PaymentHold,
    /// Refused for good: parked with this reason.
    Refused(&'static str),
}

/// Decides a failed send from its class ([`classify::classify`]) and how
/// often SQS has delivered its record.
pub(super) fn on_failure(class: Class, receive_count: u32, max_attempts: u32) -> OnFailure {
    match class {
        Class::Transient | Class::AuthExpired | Class::OutsideWindow => {
            if receive_count >= max_attempts {
                OnFailure::GiveUp
            } else {
                OnFailure::Retry
            }
        }
        Class::Ambiguous => OnFailure::InDoubt,
        Class::Undeliverable => OnFailure::Undeliverable,
        Class::UserLimited => OnFailure::UserLimited,
        Class::PaymentHold => OnFailure::PaymentHold,
        Class::Permanent(reason) => OnFailure::Refused(reason),
    }
}

/// What Meta's per-user limit (131049) leaves for the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserLimit {
    /// Tried again at this time, no sooner than Meta's 24 hours.
    TryAgainAt(i64),
    /// The next try would come after this time (the alert's `deliver_by`,
    /// or [`USER_LIMIT_GIVE_UP_SECS`] after it was first taken): parked.
    GiveUp { after: i64 },
}

/// Decides an alert refused with 131049 at `now`, first taken at
/// `first_taken_at`.
pub(super) fn user_limit(now: i64, deliver_by: Option<i64>, first_taken_at: i64) -> UserLimit {
    let retry_at = now + USER_LIMIT_WAIT_SECS;
    let give_up_at = deliver_by
        .unwrap_or(i64::MAX)
        .min(first_taken_at + USER_LIMIT_GIVE_UP_SECS);
    if retry_at > give_up_at {
        UserLimit::GiveUp { after: give_up_at }
    } else {
        UserLimit::TryAgainAt(retry_at)
    }
}

/// What becomes of an alert whose template is not approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotReady {
    /// Refused for good at Meta (rejected, disabled): parked.
    Refused,
    /// Its wait is over (`deliver_by`, or the wait limit from its first
    /// attempt): parked.
    TooLate,
    /// It waits for the template, outside the send queue, until `deadline`.
    Hold { deadline: i64 },
}

/// Decides an alert whose template has `status` (not approved).
pub(super) fn template_not_ready(
    status: &TemplateStatus,
    deliver_by: Option<i64>,
    first_taken_at: i64,
    wait_limit_secs: i64,
    now: i64,
) -> NotReady {
    if status.is_refused() {
        return NotReady::Refused;
    }
    let deadline = deliver_by.unwrap_or(first_taken_at + wait_limit_secs);
    if now >= deadline {
        NotReady::TooLate
    } else {
        NotReady::Hold { deadline }
    }
}

/// What becomes of an SQS record once its batch has tried to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acknowledge {
    /// Deleted from the queue: done, and its outcome is out.
    Delete,
    /// Reported as a batch item failure: SQS delivers it again.
    Redeliver,
    /// Redelivered, with its visibility pushed out this many seconds.
    RedeliverAfter(i32),
}

/// Decides a record from what it came to (`None`: it failed) and whether
/// its outcome events were lost to a failed publish. A lost event wins over
/// everything: the record is redelivered so the event is published again
/// (at least once).
pub(super) fn acknowledge(
    disposition: Option<super::Disposition>,
    events_lost: bool,
) -> Acknowledge {
    use super::Disposition;
    match disposition {
        _ if events_lost => Acknowledge::Redeliver,
        Some(Disposition::Done | Disposition::Held) => Acknowledge::Delete,
        Some(Disposition::RetryAfter(secs)) => Acknowledge::RedeliverAfter(secs),
        None => Acknowledge::Redeliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn entry(state: LedgerState) -> LedgerEntry {
        LedgerEntry {
            key: "k1".into(),
            state,
            mode: None,
            template: None,
            wamid: None,
            attempts: 1,
            last_error: None,
            claim_token: Some("tok".into()),
            lease_until: NOW - 5,
            decide_at: None,
            force_template: false,
            request_json: None,
            created_at: NOW - 100,
            updated_at: NOW - 100,
            sent_at: None,
            waiting_for: None,
            waiting_since: None,
            wait_deadline: None,
            redriven_at: None,
            redriven_from: None,
            redrive_pending: false,
            retry_at: None,
            response_ref: None,
            queued_ms: None,
            sent_ms: None,
            fallback: None,
            meta_code: None,
        }
    }

    fn status(wamid: &str, status: &str, errors: Option<&str>) -> MessageStatusRecord {
        MessageStatusRecord {
            wamid: wamid.into(),
            status: status.into(),
            rank: 1,
            idempotency_key: Some("k1".into()),
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            errors_json: errors.map(str::to_string),
        }
    }

    #[test]
    fn a_record_whose_outcome_was_not_published_is_redelivered() {
        use super::super::Disposition;
        assert_eq!(
            acknowledge(Some(Disposition::Done), false),
            Acknowledge::Delete
        );
        assert_eq!(
            acknowledge(Some(Disposition::Held), false),
            Acknowledge::Delete
        );
        assert_eq!(
            acknowledge(Some(Disposition::Done), true),
            Acknowledge::Redeliver
        );
        assert_eq!(
            acknowledge(Some(Disposition::RetryAfter(30)), true),
            Acknowledge::Redeliver
        );
        assert_eq!(
            acknowledge(Some(Disposition::RetryAfter(30)), false),
            Acknowledge::RedeliverAfter(30)
        );
        assert_eq!(acknowledge(None, false), Acknowledge::Redeliver);
    }

    #[test]
    fn a_finished_or_waiting_key_is_not_sent_again() {
        for st in [
            LedgerState::Sent,
            LedgerState::Expired,
            LedgerState::Parked,
            LedgerState::Waiting,
        ] {
            assert_eq!(on_existing(&entry(st), NOW), Existing::Finished);
        }
    }

    #[test]
    fn a_key_held_under_a_running_lease_is_tried_after_the_lease() {
        let mut e = entry(LedgerState::Claimed);
        e.lease_until = NOW + 30;
        assert_eq!(on_existing(&e, NOW), Existing::Busy { retry_after: 31 });
        e.lease_until = NOW;
        assert_eq!(on_existing(&e, NOW), Existing::InDoubt);
        assert_eq!(
            on_existing(&entry(LedgerState::Ambiguous), NOW),
            Existing::InDoubt
        );
    }

    #[test]
    fn a_user_limited_retry_waits_for_its_time_at_most_twelve_hours_per_receive() {
        let mut e = entry(LedgerState::Retry);
        e.retry_at = Some(NOW + 24 * 3600);
        assert_eq!(
            on_existing(&e, NOW),
            Existing::NotDue {
                retry_at: NOW + 24 * 3600,
                retry_after: 43_200
            }
        );
        e.retry_at = Some(NOW);
        assert_eq!(on_existing(&e, NOW), Existing::Unexpected);
    }

    #[test]
    fn a_status_for_the_key_proves_the_send_in_doubt_was_sent() {
        let e = entry(LedgerState::Ambiguous);
        let seen = [status("wamid.A", "sent", None)];
        assert_eq!(
            judge_doubt(&e, &seen, None, NOW, 600),
            Doubt::WasSent("wamid.A")
        );
    }

    #[test]
    fn the_refused_free_form_send_of_a_handback_proves_nothing() {
        let mut e = entry(LedgerState::Ambiguous);
        e.force_template = true;
        e.wamid = Some("wamid.FREE".into());
        e.decide_at = Some(NOW + 60);
        let seen = [status("wamid.FREE", "failed", None)];
        assert_eq!(
            judge_doubt(&e, &seen, None, NOW, 600),
            Doubt::Undecided { retry_after: 60 }
        );
    }

    #[test]
    fn a_refusal_already_acted_on_proves_nothing() {
        let mut e = entry(LedgerState::Ambiguous);
        e.decide_at = Some(NOW - 1);
        let refused = [status("wamid.OLD", "failed", Some(r#"[{"code":131049}]"#))];
        assert_eq!(judge_doubt(&e, &refused, None, NOW, 600), Doubt::SendAgain);
        let other = [status("wamid.OLD", "failed", Some(r#"[{"code":131026}]"#))];
        assert_eq!(
            judge_doubt(&e, &other, None, NOW, 600),
            Doubt::WasSent("wamid.OLD")
        );
    }

    #[test]
    fn a_send_in_doubt_with_no_status_is_lost_once_decide_at_passes() {
        // A dead instance's claim: decided at its lease's end + the delay.
        let e = entry(LedgerState::Claimed);
        assert_eq!(
            judge_doubt(&e, &[], None, NOW, 600),
            Doubt::Undecided { retry_after: 595 }
        );
        assert_eq!(judge_doubt(&e, &[], None, NOW + 595, 600), Doubt::SendAgain);
        assert_eq!(
            judge_doubt(&e, &[], Some(NOW + 595), NOW + 595, 600),
            Doubt::Stale
        );
    }

    #[test]
    fn free_form_only_with_text_inside_the_window_and_its_margin() {
        let w = Window {
            expires_at: NOW + 301,
            last_inbound_at: NOW - 3600,
        };
        assert_eq!(
            choose_mode(true, false, Some(&w), NOW, 300),
            SendMode::FreeForm
        );
        assert_eq!(
            choose_mode(true, false, Some(&w), NOW + 1, 300),
            SendMode::Template
        );
        assert_eq!(
            choose_mode(false, false, Some(&w), NOW, 300),
            SendMode::Template
        );
        assert_eq!(
            choose_mode(true, true, Some(&w), NOW, 300),
            SendMode::Template
        );
        assert_eq!(choose_mode(true, false, None, NOW, 300), SendMode::Template);
    }

    #[test]
    fn only_a_template_sent_instead_of_text_is_a_fallback() {
        assert_eq!(fallback(SendMode::FreeForm, true, false), None);
        assert_eq!(
            fallback(SendMode::Template, false, false),
            None,
            "no text: the template is what the alert asked for"
        );
        assert_eq!(
            fallback(SendMode::Template, true, false),
            Some(Fallback::WindowClosed)
        );
        assert_eq!(
            fallback(SendMode::Template, true, true),
            Some(Fallback::Meta131047),
            "handed back after Meta's 131047"
        );
    }

    #[test]
    fn a_transient_failure_is_retried_until_the_last_receive() {
        assert_eq!(on_failure(Class::Transient, 19, 20), OnFailure::Retry);
        assert_eq!(on_failure(Class::Transient, 20, 20), OnFailure::GiveUp);
        assert_eq!(on_failure(Class::OutsideWindow, 1, 20), OnFailure::Retry);
        assert_eq!(on_failure(Class::Ambiguous, 20, 20), OnFailure::InDoubt);
        assert_eq!(
            on_failure(Class::Permanent("meta_experiment"), 1, 20),
            OnFailure::Refused("meta_experiment")
        );
    }

    #[test]
    fn a_user_limited_alert_is_tried_a_day_later_unless_that_is_too_late() {
        let taken = NOW - 3600;
        assert_eq!(
            user_limit(NOW, None, taken),
            UserLimit::TryAgainAt(NOW + USER_LIMIT_WAIT_SECS)
        );
        assert_eq!(
            user_limit(NOW, Some(NOW + 3600), taken),
            UserLimit::GiveUp { after: NOW + 3600 }
        );
        let old = NOW - 60 * 3600;
        assert_eq!(
            user_limit(NOW, None, old),
            UserLimit::GiveUp {
                after: old + USER_LIMIT_GIVE_UP_SECS
            }
        );
    }

    #[test]
    fn an_unapproved_template_holds_the_alert_until_its_deadline() {
        let pending = TemplateStatus::from_meta(Some("PENDING"));
        let rejected = TemplateStatus::from_meta(Some("REJECTED"));
        assert_eq!(
            template_not_ready(&rejected, None, NOW, 3600, NOW),
            NotReady::Refused
        );
        assert_eq!(
            template_not_ready(&pending, None, NOW - 100, 3600, NOW),
            NotReady::Hold {
                deadline: NOW + 3500
            }
        );
        assert_eq!(
            template_not_ready(&pending, Some(NOW), NOW, 3600, NOW),
            NotReady::TooLate
        );
    }
}
