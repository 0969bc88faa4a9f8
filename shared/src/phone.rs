//! CSM phone numbers: E.164 parsing, WhatsApp ids, and masking for logs.
//!
//! The seed asks for E.164 (`+919876543210`). Parsing goes through the
//! `phonenumber` crate (Google's libphonenumber metadata), so a number that
//! cannot exist in its country is refused at the boundary, not by Meta later.
//! Meta's webhooks carry the sender as a WhatsApp id (`wa_id`, the same digits
//! without the `+`); [`E164::from_wa_id`] turns it back into the key we store.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a phone number was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PhoneError {
    #[error("phone number must be in E.164 form, starting with '+' and the country code")]
    NotE164,
    #[error("phone number is not a valid number for its country")]
    Invalid,
}

/// A phone number in canonical E.164 form: `+` and 8 to 15 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    /// Parses a number written in international form. Spaces, dashes, dots
    /// and brackets are tolerated and removed (`+91 98765-43210`); a national
    /// number without `+country` is refused, since we cannot guess the country.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if !trimmed.starts_with('+') {
            return Err(PhoneError::NotE164);
        }
        let digits: String = trimmed[1..]
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        if digits.len() < 8
            || digits.len() > 15
            || !digits.chars().all(|c| c.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(PhoneError::NotE164);
        }
        let candidate = format!("+{digits}");
        let parsed = phonenumber::parse(None, &candidate).map_err(|_| PhoneError::Invalid)?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid);
        }
        let canonical = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(E164(canonical))
    }

    /// The number Meta reports as `from` / `wa_id` / `recipient_id` (digits
    /// only). Meta has already validated it, so only the shape is checked:
    /// re-validating against libphonenumber could refuse a real user whose
    /// number plan is newer than our metadata.
    pub fn from_wa_id(wa_id: &str) -> Result<Self, PhoneError> {
        let digits = wa_id.trim().trim_start_matches('+');
        if digits.len() < 8 || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PhoneError::NotE164);
        }
        Ok(E164(format!("+{digits}")))
    }

    /// The country calling code (`91` for `+91 98765 43210`), as
    /// libphonenumber reads it; `None` if it reads none. Meta prices a
    /// message by this code (its pricing page: "the recipient WhatsApp
    /// phone number's country calling code").
    pub fn country_code(&self) -> Option<u16> {
        phonenumber::parse(None, &self.0)
            .ok()
            .map(|p| p.code().value())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The other numbers a `wa_id` can stand for, where Meta's id is known
    /// to differ from the number a business sends to: Mexico's `521…` for
    /// `+52…`, Argentina's `549…` for `+54…` without the mobile 9, and
    /// Brazil's mobiles with or without the ninth digit (META-2026.md). A
    /// CSM who writes before any alert has gone to them is then found by the
    /// number on the roster.
    pub fn wa_id_variants(wa_id: &str) -> Vec<E164> {
        let d = wa_id.trim().trim_start_matches('+');
        if d.len() > 15 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        match (d.len(), d.get(..3), d.get(..2)) {
            (13, Some("521"), _) => out.push(format!("52{}", &d[3..])),
            (13, Some("549"), _) => out.push(format!("54{}", &d[3..])),
            // 55 + area code + 8 digits: the same mobile with its ninth digit.
            (12, _, Some("55")) => out.push(format!("55{}9{}", &d[2..4], &d[4..])),
            (13, _, Some("55")) if &d[4..5] == "9" => {
                out.push(format!("55{}{}", &d[2..4], &d[5..]))
            }
            _ => {}
        }
        out.into_iter()
            .filter_map(|v| E164::from_wa_id(&v).ok())
            .collect()
    }

    /// The digits Meta uses as a WhatsApp id.
    pub fn wa_id(&self) -> &str {
        &self.0[1..]
    }

    /// `+91******3210`: enough to tell numbers apart in a log, not enough to
    /// call anyone.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any phone-like string for logs: keeps `+`, the first two and the last
/// four digits.
pub fn mask(number: &str) -> String {
    let plus = number.starts_with('+');
    let digits: Vec<char> = number.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() <= 6 {
        return format!(
            "{}{}",
            if plus { "+" } else { "" },
            "*".repeat(digits.len())
        );
    }
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!(
        "{}{head}{}{tail}",
        if plus { "+" } else { "" },
        "*".repeat(digits.len() - 6)
    )
}

/// Debug output is masked too, so a `{:?}` of a struct holding a number
/// cannot leak it into a log line.
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        E164::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wa_ids_that_differ_from_the_number_have_their_variants() {
        let v = |w: &str| -> Vec<String> {
            E164::wa_id_variants(w)
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(v("5215512345678"), ["+525512345678"]);
        assert_eq!(v("5491123456789"), ["+541123456789"]);
        assert_eq!(v("551187654321"), ["+5511987654321"]);
        assert_eq!(v("5511987654321"), ["+551187654321"]);
        assert!(v("919876543210").is_empty());
        assert!(v("525512345678").is_empty());
        assert!(v("55119x7654321").is_empty());
    }

    use super::*;

    #[test]
    fn seed_example_is_accepted_and_canonical() {
        let n = E164::parse("+919876543210").expect("valid");
        assert_eq!(n.as_str(), "+919876543210");
        assert_eq!(n.wa_id(), "919876543210");
    }

    #[test]
    fn separators_are_removed() {
        assert_eq!(
            E164::parse(" +91 98765-43210 ").expect("valid").as_str(),
            "+919876543210"
        );
        assert_eq!(
            E164::parse("+1 (415) 555-2671").expect("valid").as_str(),
            "+14155552671"
        );
    }

    #[test]
    fn national_and_garbage_numbers_are_refused() {
        assert_eq!(E164::parse("9876543210"), Err(PhoneError::NotE164));
        assert_eq!(E164::parse("+91abc"), Err(PhoneError::NotE164));
        assert_eq!(E164::parse("+0123456789"), Err(PhoneError::NotE164));
        assert_eq!(E164::parse("+1234567890123456"), Err(PhoneError::NotE164));
        // Right length, but no country has code 999.
        assert_eq!(E164::parse("+99912345678"), Err(PhoneError::Invalid));
    }

    #[test]
    fn wa_ids_become_e164() {
        assert_eq!(
            E164::from_wa_id("16315551181").expect("valid").as_str(),
            "+16315551181"
        );
        assert!(E164::from_wa_id("abc").is_err());
    }

    #[test]
    fn masking_keeps_only_head_and_tail() {
        let n = E164::parse("+919876543210").expect("valid");
        assert_eq!(n.masked(), "+91******3210");
        assert_eq!(format!("{n:?}"), "E164(+91******3210)");
        assert_eq!(mask("16315551181"), "16*****1181");
    }
}
