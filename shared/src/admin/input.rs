//! Validation of what the Fincelo backend sends: path segments and bodies,
//! parsed into the crate's newtypes at the boundary.
//!
//! Bodies are read as a JSON object and each field is taken by hand rather
//! than through serde's derive, because serde's messages quote the offending
//! value ("invalid type: integer `123`...") and a channel-config body carries
//! secrets. Every message here names the field and the rule, never the value.
//!
//! A channel body whose `app_secret` or `verify_token` is empty, a
//! placeholder or too short is refused with 400 `weak_secret` before Meta is
//! asked ([`crate::secrets::strength`] says why those rules).

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::error::AdminError;
use crate::ids::{CsmId, IdempotencyKey, PhoneNumberId, TenantId, WabaId};
use crate::phone::{PhoneError, E164};
use crate::secrets::TenantSecrets;

/// Secrets longer than this are refused (Meta's tokens are a few hundred
/// characters); it bounds what we store and send.
const MAX_SECRET_LEN: usize = 4096;

/// A validated `PUT .../channel` body.
pub struct ChannelInput {
    pub phone_number_id: PhoneNumberId,
    pub waba_id: WabaId,
    pub secrets: TenantSecrets,
    /// The number's send cap, when the operator sets one.
    pub messages_per_second: Option<u32>,
}

/// The highest cap a number can have: Meta's upgraded throughput.
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput>
pub const MAX_MESSAGES_PER_SECOND: u32 = 1_000;

impl std::fmt::Debug for ChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInput")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("messages_per_second", &self.messages_per_second)
            .finish_non_exhaustive()
    }
}

const CHANNEL_FIELDS: [&str; 6] = [
    "phone_number_id",
    "waba_id",
    "access_token",
    "app_secret",
    "verify_token",
    "messages_per_second",
];

fn object(body: &[u8]) -> Result<Map<String, Value>, AdminError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AdminError::invalid(
            "invalid_body",
            "the body must be a JSON object",
        )),
    }
}

fn string_field<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a str, AdminError> {
    match m.get(field) {
        None | Some(Value::Null) => Err(AdminError::invalid(
            "missing_field",
            format!("{field} is required"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(AdminError::invalid(
            "invalid_field",
            format!("{field} must not be empty"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AdminError::invalid(
            "invalid_field",
            format!("{field} must be a string"),
        )),
    }
}

fn digits_field(m: &Map<String, Value>, field: &str) -> Result<String, AdminError> {
    let v = string_field(m, field)?.trim();
    if v.len() > 32 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(AdminError::invalid(
            "invalid_field",
            format!("{field} must be Meta's numeric id (digits only, at most 32)"),
        ));
    }
    Ok(v.to_string())
}

/// An optional cap: a whole number from 1 to Meta's 1,000.
fn rate_field(m: &Map<String, Value>, field: &str) -> Result<Option<u32>, AdminError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(r) if (1..=MAX_MESSAGES_PER_SECOND).contains(&r) => Ok(Some(r)),
            _ => Err(AdminError::invalid(
                "invalid_field",
                format!(
                    "{field} must be a whole number from 1 to {MAX_MESSAGES_PER_SECOND} (Meta's cap for the number: 80 by default, 1000 once Meta upgrades it)"
                ),
            )),
        },
    }
}

fn secret_field(m: &Map<String, Value>, field: &str) -> Result<SecretString, AdminError> {
    let v = string_field(m, field)?;
    if v.len() > MAX_SECRET_LEN {
        return Err(AdminError::invalid(
            "invalid_field",
            format!("{field} is longer than {MAX_SECRET_LEN} characters"),
        ));
    }
    if v != v.trim() || v.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "invalid_field",
            format!("{field} must not contain spaces at either end or control characters"),
        ));
    }
    Ok(SecretString::from(v.to_string()))
}

/// Parses a channel-config body.
pub fn channel(body: &[u8]) -> Result<ChannelInput, AdminError> {
    let m = object(body)?;
    if let Some(unknown) = m.keys().find(|k| !CHANNEL_FIELDS.contains(&k.as_str())) {
        return Err(AdminError::invalid(
            "unknown_field",
            format!(
                "unknown field {unknown:?}; expected {}",
                CHANNEL_FIELDS.join(", ")
            ),
        ));
    }
    let bad_id = |e: crate::ids::IdError| AdminError::invalid("invalid_field", e.to_string());
    let input = ChannelInput {
        phone_number_id: PhoneNumberId::parse(digits_field(&m, "phone_number_id")?)
            .map_err(bad_id)?,
        waba_id: WabaId::parse(digits_field(&m, "waba_id")?).map_err(bad_id)?,
        secrets: TenantSecrets::new(
            secret_field(&m, "access_token")?,
            secret_field(&m, "app_secret")?,
            secret_field(&m, "verify_token")?,
        ),
        messages_per_second: rate_field(&m, "messages_per_second")?,
    };
    // After every field is present and well-formed, so a missing field is
    // reported as missing, not as weak.
    if let Some((field, weakness)) = input.secrets.weakness() {
        return Err(AdminError::invalid(
            "weak_secret",
            format!("{field} {weakness}"),
        ));
    }
    Ok(input)
}

/// Parses a CSM-number body: `{"whatsapp_number": "..."}`.
pub fn csm_number(body: &[u8]) -> Result<E164, AdminError> {
    let m = object(body)?;
    if let Some(unknown) = m.keys().find(|k| k.as_str() != "whatsapp_number") {
        return Err(AdminError::invalid(
            "unknown_field",
            format!("unknown field {unknown:?}; expected whatsapp_number"),
        ));
    }
    whatsapp_number(string_field(&m, "whatsapp_number")?)
}

/// A CSM's WhatsApp number, normalised to E.164.
///
/// Accepted: international form with `+` and the country code, with spaces,
/// dashes, dots or brackets (`+91 98765 43210`, `+1 (415) 555-2671`), and the
/// international call prefix `00` in place of `+` (`0091 98765 43210`).
/// Refused: anything without a country code (we cannot guess the country),
/// letters, and numbers that cannot exist in their country (libphonenumber's
/// metadata, through [`E164::parse`]).
pub fn whatsapp_number(input: &str) -> Result<E164, AdminError> {
    let trimmed = input.trim();
    let international = match trimmed.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => trimmed.to_string(),
    };
    E164::parse(&international).map_err(|e| {
        let message = match e {
            PhoneError::NotE164 => "whatsapp_number must be an international number in E.164 form, e.g. +919876543210 (+ or 00, country code, number)",
            PhoneError::Invalid => "whatsapp_number is not a valid number for its country",
        };
        AdminError::invalid("invalid_phone_number", message)
    })
}

pub fn tenant_id(segment: &str) -> Result<TenantId, AdminError> {
    TenantId::parse(segment).map_err(|e| AdminError::invalid("invalid_path", e.to_string()))
}

pub fn csm_id(segment: &str) -> Result<CsmId, AdminError> {
    CsmId::parse(segment).map_err(|e| AdminError::invalid("invalid_path", e.to_string()))
}

pub fn idempotency_key(segment: &str) -> Result<IdempotencyKey, AdminError> {
    IdempotencyKey::parse(segment).map_err(|e| AdminError::invalid("invalid_path", e.to_string()))
}

/// Decodes `%XX` escapes in one path segment (an idempotency key may hold
/// characters a client escapes). Invalid escapes are left as they are and
/// then refused by the id's own rules.
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn code(e: AdminError) -> &'static str {
        match e {
            AdminError::Invalid { code, .. } => code,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn numbers_are_normalised_to_e164() {
        for (input, want) in [
            ("+919876543210", "+919876543210"),
            ("+91 98765 43210", "+919876543210"),
            (" +91-98765-43210 ", "+919876543210"),
            ("0091 98765 43210", "+919876543210"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(
                whatsapp_number(input).expect(input).as_str(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn numbers_without_country_or_impossible_are_refused() {
        for input in [
            "12345",
            "abc",
            "+91",
            "9876543210",
            "+91 98765",
            "+999 123456789",
            "+91987654321a",
            "",
        ] {
            assert_eq!(
                code(whatsapp_number(input).expect_err(input)),
                "invalid_phone_number",
                "{input}"
            );
        }
    }

    /// A number's cap is optional, a whole number from 1 to Meta's 1,000.
    #[test]
    fn a_channel_may_set_its_numbers_cap_within_metas_range() {
        let with = |cap: &str| {
            format!(
                r#"{{"phone_number_id":"106540352242922","waba_id":"102290129340398","access_token":"EAAG-secret","app_secret":"0123456789abcdef0123456789abcdef","verify_token":"a-verify-token-of-24-ch"{cap}}}"#
            )
        };
        let cap = |b: String| channel(b.as_bytes()).map(|c| c.messages_per_second);
        assert_eq!(cap(with("")).ok(), Some(None));
        assert_eq!(cap(with(r#","messages_per_second":null"#)).ok(), Some(None));
        assert_eq!(
            cap(with(r#","messages_per_second":1000"#)).ok(),
            Some(Some(1000))
        );
        assert_eq!(
            cap(with(r#","messages_per_second":20"#)).ok(),
            Some(Some(20))
        );
        for bad in ["0", "1001", "\"80\"", "80.5", "-1"] {
            let e = cap(with(&format!(r#","messages_per_second":{bad}"#))).expect_err(bad);
            assert_eq!(code(e), "invalid_field", "{bad}");
        }
    }

    #[test]
    fn channel_body_is_validated_field_by_field_without_echoing_values() {
        let good = br#"{"phone_number_id":"106540352242922","waba_id":"102290129340398","access_token":"EAAG-secret","app_secret":"0123456789abcdef0123456789abcdef","verify_token":"a-verify-token-of-24-ch"}"#;
        let c = channel(good).expect("valid");
        assert_eq!(c.phone_number_id.as_str(), "106540352242922");
        assert_eq!(c.secrets.access_token.expose_secret(), "EAAG-secret");
        assert!(!format!("{c:?}").contains("EAAG-secret"));

        let cases: [(&[u8], &str); 9] = [
            (b"not json", "invalid_body"),
            (b"[1]", "invalid_body"),
            (br#"{"phone_number_id":"12a","waba_id":"1","access_token":"t","app_secret":"s","verify_token":"v"}"#, "invalid_field"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":"","app_secret":"s","verify_token":"v"}"#, "invalid_field"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":"t","app_secret":"s"}"#, "missing_field"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":12345678,"app_secret":"s","verify_token":"v"}"#, "invalid_field"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":"t","app_secret":"s","verify_token":"v","token":"x"}"#, "unknown_field"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":"t","app_secret":"REPLACE_ME","verify_token":"a-verify-token-of-24-ch"}"#, "weak_secret"),
            (br#"{"phone_number_id":"1","waba_id":"1","access_token":"t","app_secret":"0123456789abcdef0123456789abcdef","verify_token":"12345678"}"#, "weak_secret"),
        ];
        for (body, want) in cases {
            let err = channel(body).expect_err(std::str::from_utf8(body).unwrap_or("?"));
            let text = err.to_string();
            assert!(!text.contains("12345678"), "{text}");
            assert_eq!(
                code(err),
                want,
                "{}",
                std::str::from_utf8(body).unwrap_or("?")
            );
        }
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("alert%3A1"), "alert:1");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%4"), "end%4");
        assert_eq!(percent_decode("é%2F"), "é/");
    }
}
