//! A template's status at Meta, and what it means for an alert waiting on it.
//!
//! Meta's statuses (`message_template_status_update`'s `event`, and the
//! template list's `status`): PENDING while in review, APPROVED, REJECTED,
//! PAUSED (low quality: paused for 3 h, then 6 h, then disabled), DISABLED,
//! FLAGGED (quality warning), IN_APPEAL, REINSTATED, PENDING_DELETION,
//! DELETED, LIMIT_EXCEEDED. Only APPROVED may be sent. The sender keeps an
//! alert waiting while the status can still become APPROVED, and parks it
//! when it cannot (<https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates/template-pausing>,
//! <https://developers.facebook.com/docs/graph-api/webhooks/reference/whatsapp-business-account/#message_template_status_update>).

/// Meta's status of a template, as far as an alert is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateStatus {
    Approved,
    /// Submitted, in review.
    Pending,
    /// Not submitted yet (no record of it for the tenant).
    NotSubmitted,
    /// Paused for low quality; Meta unpauses it after hours.
    Paused,
    /// Refused for good: REJECTED, DISABLED, PENDING_DELETION, DELETED.
    Refused(String),
    /// Anything else Meta sends (FLAGGED, IN_APPEAL, REINSTATED,
    /// LIMIT_EXCEEDED, or a status newer than this code): not sendable
    /// now, possibly later, so an alert waits.
    Other(String),
}

impl TemplateStatus {
    /// Reads Meta's status string (`None`: no record of the template).
    pub fn from_meta(status: Option<&str>) -> TemplateStatus {
        match status {
            None => TemplateStatus::NotSubmitted,
            Some("APPROVED") => TemplateStatus::Approved,
            Some("PENDING") => TemplateStatus::Pending,
            Some("PAUSED") => TemplateStatus::Paused,
            Some(s @ ("REJECTED" | "DISABLED" | "PENDING_DELETION" | "DELETED")) => {
                TemplateStatus::Refused(s.to_string())
            }
            Some(s) => TemplateStatus::Other(s.to_string()),
        }
    }

    /// Meta's own word for it.
    pub fn as_str(&self) -> &str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::NotSubmitted => "NOT_SUBMITTED",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Refused(s) | TemplateStatus::Other(s) => s,
        }
    }

    /// Whether an alert waiting for this template is parked now: the
    /// template will never be sendable as it is.
    pub fn is_refused(&self) -> bool {
        matches!(self, TemplateStatus::Refused(_))
    }

    /// Whether a status change to this one should wake the alerts waiting
    /// for the template (to send them, or to park them).
    pub fn wakes_waiting_alerts(&self) -> bool {
        matches!(self, TemplateStatus::Approved | TemplateStatus::Refused(_))
    }
}

impl std::fmt::Display for TemplateStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approved_sends_and_only_final_refusals_park() {
        for (meta, refused, wakes) in [
            (Some("APPROVED"), false, true),
            (Some("PENDING"), false, false),
            (None, false, false),
            (Some("PAUSED"), false, false),
            (Some("FLAGGED"), false, false),
            (Some("REJECTED"), true, true),
            (Some("DISABLED"), true, true),
            (Some("DELETED"), true, true),
        ] {
            let s = TemplateStatus::from_meta(meta);
            assert_eq!(s.is_refused(), refused, "{meta:?}");
            assert_eq!(s.wakes_waiting_alerts(), wakes, "{meta:?}");
            assert_eq!(s == TemplateStatus::Approved, meta == Some("APPROVED"));
            if let Some(m) = meta {
                assert_eq!(s.as_str(), m);
            }
        }
    }
}
