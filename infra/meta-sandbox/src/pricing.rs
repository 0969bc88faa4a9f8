//! Meta's per-message pricing as status webhooks report it: the `pricing`
//! object of each message, decided when the message is accepted.
//!
//! Shape (Meta's status webhook examples in the BSUID document, May 2026, and
//! whatsapp-api-js `ServerPricing`): `{billable, pricing_model: "PMP",
//! type, category}` with `type` one of `regular`, `free_customer_service`,
//! `free_entry_point`. Meta has said `billable` will go; it still appears in
//! Meta's 2026 examples, so the sandbox still sends it.
//!
//! Two rule sets, chosen by the `pricing_rules` knob (`auto` picks by the
//! date on the sandbox's clock):
//! - `2025-07` (per-message pricing from 2025-07-01; Meta's pricing page as
//!   described by YCloud's "2025 pricing migration" page): marketing and
//!   authentication templates are billed (`regular`); a utility template is
//!   free inside an open customer service window (`free_customer_service`)
//!   and billed outside; free-form (service) messages are free
//!   (`free_customer_service`).
//! - `2026-10` (from 2026-10-01): utility templates are billed even inside the
//!   window, and service messages are billed at the utility rate after the
//!   first 1,000 per business phone number per calendar month
//!   (`service_free_allowance`). This is what several solution providers
//!   report (WhaTools' pricing tool and open data, YCloud, ChakraHQ; a
//!   2026-10-01 rate card with a `service` rate is public); it could not be
//!   confirmed on Meta's own pricing page from here. How Meta labels the free
//!   allowance is not documented; the sandbox reports it as
//!   `free_customer_service`, not billable.
//!
//! Free entry points (click-to-WhatsApp ads) are not modelled: the service
//! does not use them.

use serde::{Deserialize, Serialize};

use crate::calendar::parse_date_ms;
use crate::model::Pricing;

/// Which of Meta's pricing rule sets applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PricingRules {
    /// By date on the sandbox's clock: `2025-07` before 2026-10-01, `2026-10` from then.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "2025-07")]
    July2025,
    #[serde(rename = "2026-10")]
    October2026,
}

/// When the `2026-10` rules start.
pub const OCTOBER_2026: &str = "2026-10-01";

impl PricingRules {
    /// The rule set in force at `now_ms`.
    pub fn at(self, now_ms: i64) -> PricingRules {
        match self {
            PricingRules::Auto => {
                if parse_date_ms(OCTOBER_2026).is_some_and(|start| now_ms >= start) {
                    PricingRules::October2026
                } else {
                    PricingRules::July2025
                }
            }
            fixed => fixed,
        }
    }
}

/// What is being priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced<'a> {
    /// A template, with its category as created (UTILITY, MARKETING, AUTHENTICATION).
    Template(&'a str),
    /// A free-form message (text, interactive): Meta's `service` category.
    Service,
}

fn price(category: &str, free: bool) -> Pricing {
    Pricing {
        billable: !free,
        pricing_model: "PMP".into(),
        category: category.into(),
        pricing_type: if free {
            "free_customer_service".into()
        } else {
            "regular".into()
        },
    }
}

/// The pricing of one message. `window_open`: a customer service window is
/// open with the user; `service_used`: service messages already priced this
/// calendar month from this phone number; `allowance`: the monthly free ones.
pub fn pricing(
    rules: PricingRules,
    what: Priced<'_>,
    window_open: bool,
    service_used: u64,
    allowance: u64,
) -> Pricing {
    match (rules, what) {
        (_, Priced::Template(c)) if c.eq_ignore_ascii_case("MARKETING") => {
            price("marketing", false)
        }
        (_, Priced::Template(c)) if c.eq_ignore_ascii_case("AUTHENTICATION") => {
            price("authentication", false)
        }
        (PricingRules::October2026, Priced::Template(_)) => price("utility", false),
        (_, Priced::Template(_)) => price("utility", window_open),
        (PricingRules::October2026, Priced::Service) => price("service", service_used < allowance),
        (_, Priced::Service) => price("service", true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn july_2025_a_utility_template_is_free_inside_the_window_only() {
        let r = PricingRules::July2025;
        assert_eq!(
            pricing(r, Priced::Template("UTILITY"), true, 0, 1000).pricing_type,
            "free_customer_service"
        );
        assert_eq!(
            pricing(r, Priced::Template("UTILITY"), false, 0, 1000).pricing_type,
            "regular"
        );
        assert!(pricing(r, Priced::Template("MARKETING"), true, 0, 1000).billable);
        assert!(!pricing(r, Priced::Service, true, 5000, 1000).billable);
    }

    #[test]
    fn october_2026_bills_utility_in_the_window_and_service_past_the_allowance() {
        let r = PricingRules::October2026;
        let u = pricing(r, Priced::Template("UTILITY"), true, 0, 1000);
        assert_eq!(
            (u.category.as_str(), u.pricing_type.as_str(), u.billable),
            ("utility", "regular", true)
        );
        assert!(!pricing(r, Priced::Service, true, 999, 1000).billable);
        let s = pricing(r, Priced::Service, true, 1000, 1000);
        assert_eq!(
            (s.category.as_str(), s.pricing_type.as_str(), s.billable),
            ("service", "regular", true)
        );
    }

    #[test]
    fn auto_picks_the_rules_by_date() {
        let before = parse_date_ms("2026-09-30").unwrap_or(0);
        let after = parse_date_ms("2026-10-01").unwrap_or(0);
        assert_eq!(PricingRules::Auto.at(before), PricingRules::July2025);
        assert_eq!(PricingRules::Auto.at(after), PricingRules::October2026);
        assert_eq!(PricingRules::July2025.at(after), PricingRules::July2025);
    }
}
