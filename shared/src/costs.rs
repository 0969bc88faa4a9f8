//! What each tenant's messages cost at Meta: the counting key taken from a
//! status webhook's `pricing`, and the rate card that turns counts into an
//! estimated cost.
//!
//! Meta's facts (per-message pricing since 2025-07-01):
//! - Meta charges per *delivered* template message, by the template's
//!   category and the recipient number's country calling code; free-form
//!   messages and utility templates inside an open customer service window
//!   are free
//!   (<https://developers.facebook.com/docs/whatsapp/pricing/updates-to-pricing>,
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/pricing>).
//! - Status webhooks carry `pricing {billable, pricing_model: "PMP",
//!   category, type}`; `type` is `regular` (billable),
//!   `free_customer_service` or `free_entry_point`
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/>;
//!   whatsapp-api-js `ServerPricing` marks `billable` deprecated). So
//!   billing is read from `type`, and from `billable` only when `type` is
//!   absent.
//! - From 2026-10-01 utility templates inside the window and service
//!   messages beyond a monthly allowance are reported billed by solution
//!   providers (chakrahq.com, ycloud.com; WhaTools' open data lists it as
//!   "reported", unconfirmed on Meta's page). Nothing here depends on it:
//!   whatever Meta marks `regular` is counted as billable.
//!
//! A message is counted once, when its delivery is reported (a `delivered`
//! or `read` status with `pricing`), keyed by UTC day (of Meta's status
//! time), category, type and the recipient's country calling code
//! (`unknown` for a recipient known only by a BSUID). The store makes the
//! count exactly once per message ([`crate::store::Store::count_cost`]).
//!
//! The rate card (`shared/data/rate-card.yaml`) is data the operator
//! updates: its currency, where its figures come from and when they were
//! read, and per market the calling codes and a price per category.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;
use thiserror::Error;

use crate::phone::E164;
use crate::webhook::payload::Pricing;

/// The rate card as built in.
const BUILTIN_YAML: &str = include_str!("../data/rate-card.yaml");

/// What one counted message is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CostKey {
    /// Meta's pricing category (`utility`, `marketing`, ...).
    pub category: String,
    /// Meta's pricing type (`regular`, `free_customer_service`, ...).
    pub kind: String,
    /// The recipient's country calling code (`91`), or `unknown`.
    pub country: String,
}

/// The label used when Meta did not say, or said something unreadable.
pub const UNKNOWN: &str = "unknown";

/// A value of Meta's as a label safe to store as part of an attribute name
/// and to show: lower-case letters, digits and `_`, at most 40 characters.
fn label(v: Option<&str>) -> String {
    match v {
        Some(v)
            if !v.is_empty()
                && v.len() <= 40
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            v.to_string()
        }
        _ => UNKNOWN.to_string(),
    }
}

impl CostKey {
    /// The key of a status's pricing, for a recipient `recipient_id` (a
    /// `wa_id`; `None` when Meta named the recipient by a BSUID only).
    pub fn of(pricing: &Pricing<'_>, recipient_id: Option<&str>) -> CostKey {
        let kind = match (pricing.kind.as_deref(), pricing.billable) {
            (Some(k), _) => label(Some(k)),
            // Before `type` existed, `billable` said it.
            (None, Some(true)) => REGULAR.to_string(),
            (None, _) => UNKNOWN.to_string(),
        };
        CostKey {
            category: label(pricing.category.as_deref()),
            kind,
            country: country_of(recipient_id),
        }
    }

    /// Whether Meta bills it: `type` is `regular`.
    pub fn billable(&self) -> bool {
        self.kind == REGULAR
    }
}

/// Meta's pricing type of a billed message.
pub const REGULAR: &str = "regular";

/// The country calling code of a `wa_id`, or `unknown`.
pub fn country_of(recipient_id: Option<&str>) -> String {
    recipient_id
        .and_then(|r| E164::from_wa_id(r).ok())
        .and_then(|n| n.country_code())
        .map(|c| c.to_string())
        .unwrap_or_else(|| UNKNOWN.to_string())
}

/// Why the rate card cannot be used.
#[derive(Debug, Error)]
pub enum RateCardError {
    #[error("rate card is not valid YAML of the expected shape: {0}")]
    Shape(#[from] serde_yaml::Error),
    #[error("rate card is invalid: {0}")]
    Invalid(String),
}

/// The rate card file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCard {
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    /// Where the figures were read (a URL).
    pub source: String,
    /// When they were read, `YYYY-MM-DD`.
    pub as_of: String,
    /// Meta's pricing page, for the operator updating the card.
    pub meta_pricing_page: String,
    pub markets: Vec<Market>,
}

/// One market of the rate card.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    pub market: String,
    /// Country calling codes, digits (`"1"`, `"91"`).
    pub calling_codes: Vec<String>,
    /// Price per delivered billable message, by pricing category.
    pub prices: BTreeMap<String, f64>,
}

/// Millionths of the card's currency: sums of many small prices stay exact.
pub type Micros = i64;

/// A price in [`Micros`].
fn micros(price: f64) -> Micros {
    (price * 1_000_000.0).round() as Micros
}

/// Micros as the currency amount people read (`0.0129`).
pub fn amount(m: Micros) -> f64 {
    m as f64 / 1_000_000.0
}

impl RateCard {
    /// Reads and checks a rate card.
    pub fn parse(yaml: &str) -> Result<RateCard, RateCardError> {
        let card: RateCard = serde_yaml::from_str(yaml)?;
        card.validate()?;
        Ok(card)
    }

    /// The built-in card, read once.
    pub fn builtin() -> Result<&'static RateCard, &'static RateCardError> {
        static CARD: LazyLock<Result<RateCard, RateCardError>> =
            LazyLock::new(|| RateCard::parse(BUILTIN_YAML));
        CARD.as_ref()
    }

    fn validate(&self) -> Result<(), RateCardError> {
        let bad = |m: String| Err(RateCardError::Invalid(m));
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!(
                "currency '{}' is not an ISO 4217 code",
                self.currency
            ));
        }
        if !self.source.starts_with("https://") || !self.meta_pricing_page.starts_with("https://") {
            return bad("source and meta_pricing_page must be https URLs".into());
        }
        let date = self.as_of.as_bytes();
        if date.len() != 10
            || date[4] != b'-'
            || date[7] != b'-'
            || !date
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        {
            return bad(format!("as_of '{}' is not YYYY-MM-DD", self.as_of));
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for m in &self.markets {
            if m.calling_codes.is_empty() || m.prices.is_empty() {
                return bad(format!(
                    "market {} needs calling codes and prices",
                    m.market
                ));
            }
            for code in &m.calling_codes {
                let ok = (1..=3).contains(&code.len())
                    && code.bytes().all(|b| b.is_ascii_digit())
                    && !code.starts_with('0');
                if !ok {
                    return bad(format!("market {}: calling code {code:?}", m.market));
                }
                if let Some(other) = seen.insert(code, &m.market) {
                    return bad(format!(
                        "calling code {code} is in {other} and {}",
                        m.market
                    ));
                }
            }
            for (category, price) in &m.prices {
                if label(Some(category)) != *category {
                    return bad(format!("market {}: category {category:?}", m.market));
                }
                if !price.is_finite() || *price < 0.0 || *price > 1.0 {
                    return bad(format!("market {}: {category} price {price}", m.market));
                }
            }
        }
        Ok(())
    }

    /// The market of a country calling code.
    pub fn market(&self, country: &str) -> Option<&Market> {
        self.markets
            .iter()
            .find(|m| m.calling_codes.iter().any(|c| c == country))
    }

    /// The price of one billable message of `category` to `country`, if the
    /// card has one.
    pub fn price(&self, category: &str, country: &str) -> Option<Micros> {
        self.market(country)
            .and_then(|m| m.prices.get(category))
            .map(|p| micros(*p))
    }
}

/// What some counted messages cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub messages: u64,
    /// Of them, billed by Meta (`type: regular`).
    pub billable: u64,
    /// Of the billable, those the card has no price for.
    pub unpriced: u64,
    pub cost: Micros,
}

impl Estimate {
    /// `n` messages filed under `key`.
    pub fn of(card: &RateCard, key: &CostKey, n: u64) -> Estimate {
        let mut e = Estimate {
            messages: n,
            ..Estimate::default()
        };
        if key.billable() {
            e.billable = n;
            match card.price(&key.category, &key.country) {
                Some(p) => e.cost = p.saturating_mul(i64::try_from(n).unwrap_or(i64::MAX)),
                None => e.unpriced = n,
            }
        }
        e
    }

    pub fn add(&mut self, o: Estimate) {
        self.messages += o.messages;
        self.billable += o.billable;
        self.unpriced += o.unpriced;
        self.cost = self.cost.saturating_add(o.cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn pricing<'a>(
        category: &'a str,
        kind: Option<&'a str>,
        billable: Option<bool>,
    ) -> Pricing<'a> {
        Pricing {
            billable,
            pricing_model: Some(Cow::Borrowed("PMP")),
            category: Some(Cow::Borrowed(category)),
            kind: kind.map(Cow::Borrowed),
        }
    }

    #[test]
    fn the_built_in_rate_card_is_valid_and_prices_india_utility() {
        let card = RateCard::builtin().expect("the built-in rate card reads and validates");
        assert_eq!(card.currency, "USD");
        assert_eq!(card.price("utility", "91"), Some(1_700));
        assert_eq!(card.price("utility", "999"), None);
    }

    #[test]
    fn a_card_with_a_calling_code_in_two_markets_is_refused() {
        let yaml = "currency: USD\nsource: https://x\nas_of: 2026-11-30\nmeta_pricing_page: https://y\nmarkets:\n  - {market: A, calling_codes: ['1'], prices: {utility: 0.01}}\n  - {market: B, calling_codes: ['1'], prices: {utility: 0.02}}\n";
        assert!(matches!(
            RateCard::parse(yaml),
            Err(RateCardError::Invalid(m)) if m.contains("calling code 1")
        ));
        let neg = "currency: USD\nsource: https://x\nas_of: 2026-11-30\nmeta_pricing_page: https://y\nmarkets:\n  - {market: A, calling_codes: ['1'], prices: {utility: -1}}\n";
        assert!(RateCard::parse(neg).is_err());
    }

    #[test]
    fn billing_is_read_from_type_and_from_billable_only_without_it() {
        let free = CostKey::of(
            &pricing("utility", Some("free_customer_service"), Some(true)),
            Some("919876543210"),
        );
        assert!(!free.billable());
        assert_eq!(free.country, "91");
        let old = CostKey::of(&pricing("marketing", None, Some(true)), Some("14155550123"));
        assert!(old.billable());
        assert_eq!(old.country, "1");
        let bsuid = CostKey::of(&pricing("utility", Some("regular"), None), None);
        assert_eq!(bsuid.country, UNKNOWN);
        let odd = CostKey::of(&pricing("Utility#x", Some("regular"), None), None);
        assert_eq!(odd.category, UNKNOWN);
    }

    #[test]
    fn an_estimate_prices_billable_messages_only_and_names_the_unpriced() {
        let card = RateCard::builtin().expect("card");
        let key = |category: &str, kind: &str, country: &str| CostKey {
            category: category.into(),
            kind: kind.into(),
            country: country.into(),
        };
        let mut e = Estimate::of(card, &key("utility", "regular", "91"), 3);
        e.add(Estimate::of(
            card,
            &key("utility", "free_customer_service", "91"),
            5,
        ));
        e.add(Estimate::of(card, &key("utility", "regular", UNKNOWN), 2));
        assert_eq!(
            e,
            Estimate {
                messages: 10,
                billable: 5,
                unpriced: 2,
                cost: 5_100
            }
        );
        assert!((amount(e.cost) - 0.0051).abs() < 1e-12);
    }
}
