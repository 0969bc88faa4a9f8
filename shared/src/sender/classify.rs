//! The one place that decides what a Graph API failure means for an alert.
//!
//! | failure | class | why |
//! |---|---|---|
//! | 131047 (outside the 24-hour window) | [`Class::OutsideWindow`] | send the template now, close the window |
//! | 190 (token invalid/expired) | [`Class::AuthExpired`] | refresh the token once, then treat as transient |
//! | 130429 (throughput), 131056 (pair rate), 80007 (WABA rate), 4 / 80004 (app rate), 1 / 2 / 131000 (service), any other Graph error body with HTTP 5xx, a 429 without one, connect error | [`Class::Transient`] | Meta's API answered (or was never reached): it did not take it; retry with backoff |
//! | 131049 (per-user marketing limit) | [`Class::UserLimited`] | this CSM only, once, no sooner than [`USER_LIMIT_WAIT_SECS`] (24 h) later |
//! | 131042 (payment issue) | [`Class::PaymentHold`] | every send of the tenant would fail: hold them all, burn no attempts, probe until it clears |
//! | 131026 (not a usable WhatsApp number) | [`Class::Undeliverable`] | permanent; the CSM's number is flagged |
//! | timeout, broken exchange, unreadable 2xx, a 5xx without a Graph error body (a 502 or 504 from Meta's edge) | [`Class::Ambiguous`] | Meta may have it: never resend blindly. An edge that fails after forwarding the request answers with its own page, not Meta's error JSON, so the message may have been accepted behind it |
//! | 131050, 130472, 131062, 131063, 132018, 137000 | [`Class::Permanent`] with a reason of its own (table below) | to the DLQ with Meta's code and title |
//! | 100, 1320xx (template errors), any other 4xx | [`Class::Permanent`] (`meta_permanent`) | to the DLQ with Meta's code and title |
//!
//! # The codes Meta added (2025-2026)
//!
//! Meta's error reference,
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>,
//! says a Cloud API error is "returned either synchronously as a Graph API
//! response, asynchronously via Webhook, or sometimes through both methods".
//! So each of these is acted on wherever it arrives: in the send's answer
//! here, or in a `failed` status, which the webhook hands back to the sender
//! ([`acted_on_after_acceptance`]) to be concluded the same way. The titles
//! are Meta's, as its partners quote its table (Meta's page itself could not
//! be read here); the two marked *unverified* were found only in
//! `META-2026.md`'s leads, not on any page reachable with the search tool.
//!
//! | code | Meta's title (and guidance) | class, reason | why |
//! |---|---|---|---|
//! | 131049 | "This message was not delivered to maintain healthy ecosystem engagement." Meta's per-user marketing limit; "wait at least 24 hours" before resending (quoted by dualhook.com/docs/whatsapp-error-131049 and blog.campaignhq.co/whatsapp-healthy-ecosystem-error-131049) | [`Class::UserLimited`] | not a fault of the alert or the number, and it passes: one later try for this CSM only, never sooner than 24 h, never a burst. Given up (`user_limited`) when the next try would fall after `deliver_by`, or more than [`USER_LIMIT_GIVE_UP_SECS`] after the alert was first taken (Meta never delivers some regions' marketing at all) |
//! | 131042 | "Business eligibility payment issue": "Message failed to send because there were one or more errors related to your payment method", "Check your payment setup in WhatsApp Manager and try again" (Meta's own words for the same error on its On-Premises page, <https://developers.facebook.com/docs/whatsapp/api/errors>; the Cloud API code as quoted by wolkvox, egrow, achieveapex) | [`Class::PaymentHold`] | the account, not the alert: every other send of the tenant would fail the same way until someone fixes billing |
//! | 131050 | "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business." (quoted by help.hello-charles.com, dualhook.com/docs/whatsapp-error-131050) | `user_stopped_marketing` | the CSM's own choice, for marketing only: retrying is what they asked us not to do |
//! | 130472 | "User's number is part of an experiment": "Message was not sent as part of an experiment." (quoted by help.hello-charles.com, msg91.com) | `meta_experiment` | Meta holds marketing back from ~1 % of users outside a conversation; retrying changes nothing |
//! | 131062 | "Business-scoped User ID (BSUID) recipients are not supported for this message." (Meta's BSUID document, as `META-2026.md` cites it) | `bsuid_not_supported` | the alert must be addressed by phone number |
//! | 131063 | *unverified*: marketing templates of this business must go through the Marketing Messages API | `marketing_messages_api_required` | an account setting at Meta; this service sends through the Cloud API only |
//! | 132018 | "There's an issue with the parameters in your template message" (v23+; quoted by netflie/whatsapp-cloud-api#201) | `invalid_request:template_params` | the same problem the catalog's own check refuses before sending ([`crate::templates::catalog`]): one reason for one fix upstream |
//! | 137000 | *unverified*: the recipient's identity key hash does not match `recipient_identity_key_hash` (the user changed phone or reinstalled) | `identity_changed` | Meta's identity check refused it on purpose: someone must confirm who the CSM is now |
//!
//! 131049, 131050 and 130472 concern marketing messages only. The six
//! templates are UTILITY (`shared/data/templates.yaml`), so they meet these
//! codes only after Meta re-categorised a template as MARKETING.

use crate::graph::GraphError;

/// How long Meta asks to wait after 131049 before sending that user the
/// message again.
pub const USER_LIMIT_WAIT_SECS: i64 = 24 * 3600;

/// An alert refused with 131049 is given up when its next try would come
/// later than this after it was first taken: by then it is three days old,
/// and a user Meta keeps refusing (some regions get no marketing at all)
/// is not worth a fourth day.
pub const USER_LIMIT_GIVE_UP_SECS: i64 = 72 * 3600;

/// What a failure means for the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    OutsideWindow,
    AuthExpired,
    Transient,
    /// Meta's per-user limit (131049): try this alert again, for this CSM
    /// only, [`USER_LIMIT_WAIT_SECS`] later.
    UserLimited,
    /// The business cannot pay (131042): hold every send of the tenant.
    PaymentHold,
    Undeliverable,
    Ambiguous,
    /// Refused for good: parked with this machine-readable reason.
    Permanent(&'static str),
}

/// The reason of a permanent refusal Meta gave no more specific meaning to.
pub const META_PERMANENT: &str = "meta_permanent";

/// What Meta's error `code` means, when Meta answered with one.
fn class_of_code(code: i64, http_status: u16) -> Class {
    match code {
        131047 => Class::OutsideWindow,
        190 => Class::AuthExpired,
        130429 | 131056 | 80007 | 4 | 80004 | 1 | 2 | 131000 | 133004 => Class::Transient,
        131049 => Class::UserLimited,
        131042 => Class::PaymentHold,
        131026 => Class::Undeliverable,
        131050 => Class::Permanent("user_stopped_marketing"),
        130472 => Class::Permanent("meta_experiment"),
        131062 => Class::Permanent("bsuid_not_supported"),
        131063 => Class::Permanent("marketing_messages_api_required"),
        132018 => Class::Permanent("invalid_request:template_params"),
        137000 => Class::Permanent("identity_changed"),
        _ if http_status >= 500 => Class::Transient,
        _ => Class::Permanent(META_PERMANENT),
    }
}

/// Classifies a failed send.
pub fn classify(err: &GraphError) -> Class {
    match err {
        GraphError::Api {
            http_status, error, ..
        } => class_of_code(error.code, *http_status),
        GraphError::Http { http_status } if *http_status >= 500 => Class::Ambiguous,
        GraphError::Http { http_status: 429 } => Class::Transient,
        GraphError::Http { .. } => Class::Permanent(META_PERMANENT),
        // Neither reached Meta. (`Tls` only happens when the client is built.)
        GraphError::Connect(_) | GraphError::Tls(_) | GraphError::NotSent(_) => Class::Transient,
        GraphError::Timeout(_) | GraphError::Transport(_) | GraphError::Decode(_) => {
            Class::Ambiguous
        }
    }
}

/// Whether a `failed` status carrying `code`, for a message Meta had
/// accepted, changes what becomes of the alert: the webhook then hands the
/// failure to the sender, which concludes the alert as if the send had
/// answered with it (a later try, the tenant's hold, or a park with its
/// reason). Other failed statuses (131026, which the webhook flags itself;
/// 131047, handed back for a template; delivery failures Meta gives no
/// remedy for) leave the alert as sent.
pub fn acted_on_after_acceptance(code: i64) -> bool {
    matches!(
        code,
        131049 | 131042 | 131050 | 130472 | 131062 | 131063 | 132018 | 137000
    )
}

/// Seconds until the next attempt: exponential from 5 s, capped at 15 min,
/// with full jitter; never sooner than Meta's own hint.
pub fn backoff_secs(attempt: u32, hint: Option<u64>) -> i32 {
    let exp = 5u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(8))
        .min(900);
    let jittered = rand::random_range(exp / 2..=exp.max(1));
    let secs = jittered.max(hint.unwrap_or(0)).min(43_200);
    i32::try_from(secs).unwrap_or(43_200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::MetaError;

    fn api(status: u16, code: i64) -> GraphError {
        GraphError::Api {
            http_status: status,
            error: Box::new(MetaError {
                message: String::new(),
                kind: None,
                code,
                error_subcode: None,
                error_data: None,
                fbtrace_id: None,
            }),
            retry_after_secs: None,
        }
    }

    #[test]
    fn each_meta_code_lands_in_its_class() {
        assert_eq!(classify(&api(400, 131047)), Class::OutsideWindow);
        assert_eq!(classify(&api(401, 190)), Class::AuthExpired);
        for code in [130429, 131056, 80007] {
            assert_eq!(classify(&api(400, code)), Class::Transient, "{code}");
        }
        assert_eq!(classify(&api(500, 12345)), Class::Transient);
        assert_eq!(classify(&api(400, 131026)), Class::Undeliverable);
        for code in [100, 132000, 132001, 132015] {
            assert_eq!(
                classify(&api(400, code)),
                Class::Permanent(META_PERMANENT),
                "{code}"
            );
        }
        // Meta's own error body on a 5xx: its API answered, nothing taken.
        assert_eq!(classify(&api(503, 2)), Class::Transient);
        // The edge's own page on a 5xx: the request may have got through.
        for status in [500, 502, 503, 504] {
            assert_eq!(
                classify(&GraphError::Http {
                    http_status: status
                }),
                Class::Ambiguous,
                "{status}"
            );
        }
        assert_eq!(
            classify(&GraphError::Http { http_status: 429 }),
            Class::Transient
        );
        assert_eq!(classify(&GraphError::Decode("x".into())), Class::Ambiguous);
    }

    /// 131049: Meta's per-user limit passes; the alert waits for that CSM.
    #[test]
    fn a_per_user_limit_131049_waits_for_that_user() {
        assert_eq!(classify(&api(400, 131049)), Class::UserLimited);
        assert!(acted_on_after_acceptance(131049));
        assert_eq!(USER_LIMIT_WAIT_SECS, 86_400, "Meta: wait at least 24 hours");
    }

    /// 131042: the business's payment method fails every send of the tenant.
    #[test]
    fn a_payment_issue_131042_holds_the_tenant() {
        assert_eq!(classify(&api(400, 131042)), Class::PaymentHold);
        assert!(acted_on_after_acceptance(131042));
    }

    /// 131050: the CSM stopped marketing messages; retrying would ignore them.
    #[test]
    fn a_user_who_stopped_marketing_131050_is_parked_with_its_reason() {
        assert_eq!(
            classify(&api(400, 131050)),
            Class::Permanent("user_stopped_marketing")
        );
        assert!(acted_on_after_acceptance(131050));
    }

    /// 130472: the CSM is in Meta's marketing experiment.
    #[test]
    fn a_user_in_metas_experiment_130472_is_parked_with_its_reason() {
        assert_eq!(
            classify(&api(400, 130472)),
            Class::Permanent("meta_experiment")
        );
        assert!(acted_on_after_acceptance(130472));
    }

    /// 131062: this message cannot go to a BSUID.
    #[test]
    fn a_bsuid_recipient_refused_131062_is_parked_with_its_reason() {
        assert_eq!(
            classify(&api(400, 131062)),
            Class::Permanent("bsuid_not_supported")
        );
        assert!(acted_on_after_acceptance(131062));
    }

    /// 131063: the account must send marketing through the Marketing Messages API.
    #[test]
    fn marketing_required_on_the_mm_api_131063_is_parked_with_its_reason() {
        assert_eq!(
            classify(&api(400, 131063)),
            Class::Permanent("marketing_messages_api_required")
        );
        assert!(acted_on_after_acceptance(131063));
    }

    /// 132018: Meta refused the template's parameters, as the catalog's own
    /// check would have.
    #[test]
    fn template_parameters_refused_132018_are_an_invalid_request() {
        assert_eq!(
            classify(&api(400, 132018)),
            Class::Permanent("invalid_request:template_params")
        );
        assert!(acted_on_after_acceptance(132018));
    }

    /// 137000: the CSM's identity key changed.
    #[test]
    fn an_identity_key_mismatch_137000_is_parked_with_its_reason() {
        assert_eq!(
            classify(&api(400, 137000)),
            Class::Permanent("identity_changed")
        );
        assert!(acted_on_after_acceptance(137000));
    }

    /// A failed status the sender has no remedy for, or one the webhook
    /// handles itself, leaves the alert as sent.
    #[test]
    fn only_the_codes_that_change_an_alerts_fate_are_handed_back() {
        for code in [131047, 131026, 131000, 131053, 130429, 1] {
            assert!(!acted_on_after_acceptance(code), "{code}");
        }
    }

    #[test]
    fn backoff_grows_respects_hints_and_is_capped() {
        for _ in 0..50 {
            let first = backoff_secs(1, None);
            assert!((2..=5).contains(&first), "{first}");
            let late = backoff_secs(20, None);
            assert!((450..=900).contains(&late), "{late}");
            assert_eq!(backoff_secs(1, Some(120)), 120);
        }
    }
}
