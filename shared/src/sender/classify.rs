//! The one place that decides what a Graph API failure means for an alert.
//!
//! | failure | class | why |
//! |---|---|---|
//! | 131047 (outside the 24-hour window) | [`Class::OutsideWindow`] | send the template now, close the window |
//! | 190 (token invalid/expired) | [`Class::AuthExpired`] | refresh the token once, then treat as transient |
//! | 130429 (throughput), 131056 (pair rate), 80007 (WABA rate), 4 / 80004 (app rate), 1 / 2 / 131000 (service), any other Graph error body with HTTP 5xx, a 429 without one, connect error | [`Class::Transient`] | Meta's API answered (or was never reached): it did not take it; retry with backoff |
//! | 131026 (not a usable WhatsApp number) | [`Class::Undeliverable`] | permanent; the CSM's number is flagged |
//! | timeout, broken exchange, unreadable 2xx, a 5xx without a Graph error body (a 502 or 504 from Meta's edge) | [`Class::Ambiguous`] | Meta may have it: never resend blindly. An edge that fails after forwarding the request answers with its own page, not Meta's error JSON, so the message may have been accepted behind it |
//! | 100, 1320xx (template errors), any other 4xx | [`Class::Permanent`] | to the DLQ with Meta's code and title |

use crate::graph::GraphError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    OutsideWindow,
    AuthExpired,
    Transient,
    Undeliverable,
    Ambiguous,
    Permanent,
}

/// Classifies a failed send.
pub fn classify(err: &GraphError) -> Class {
    match err {
        GraphError::Api {
            http_status, error, ..
        } => match error.code {
            131047 => Class::OutsideWindow,
            190 => Class::AuthExpired,
            130429 | 131056 | 80007 | 4 | 80004 | 1 | 2 | 131000 | 133004 => Class::Transient,
            131026 => Class::Undeliverable,
            _ if *http_status >= 500 => Class::Transient,
            _ => Class::Permanent,
        },
        GraphError::Http { http_status } if *http_status >= 500 => Class::Ambiguous,
        GraphError::Http { http_status: 429 } => Class::Transient,
        GraphError::Http { .. } => Class::Permanent,
        // Neither reached Meta. (`Tls` only happens when the client is built.)
        GraphError::Connect(_) | GraphError::Tls(_) | GraphError::NotSent(_) => Class::Transient,
        GraphError::Timeout(_) | GraphError::Transport(_) | GraphError::Decode(_) => {
            Class::Ambiguous
        }
    }
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
            assert_eq!(classify(&api(400, code)), Class::Permanent, "{code}");
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
