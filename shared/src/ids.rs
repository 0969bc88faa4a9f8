//! Validated identifiers.
//!
//! Every id that reaches a DynamoDB key or a Graph API path is parsed once at
//! the boundary into a newtype, so inside the core an invalid value cannot
//! exist. The character sets are deliberately narrow: `#` separates the parts
//! of a table key, and `/` separates path segments, so neither may appear.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an identifier was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub reason: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $valid:expr $(, shape: $shape:expr)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                Self::check(&s)?;
                Ok(Self(s))
            }

            /// Whether `s` would parse, without taking a copy of it.
            pub fn check(s: &str) -> Result<(), IdError> {
                if s.is_empty() {
                    return Err(IdError { kind: $kind, reason: "must not be empty" });
                }
                if s.len() > $max {
                    return Err(IdError { kind: $kind, reason: "too long" });
                }
                let valid: fn(char) -> bool = $valid;
                // Byte by byte: every rule admits ASCII only, and a byte of a
                // multi-byte character read as a char is never ASCII.
                // Without an early exit: ids are short, and a loop without
                // branches on the data is faster than one that stops early.
                if !s.bytes().fold(true, |ok, b| ok & valid(char::from(b))) {
                    return Err(IdError { kind: $kind, reason: "contains characters that are not allowed" });
                }
                $(
                    let shape: fn(&str) -> bool = $shape;
                    if !shape(s) {
                        return Err(IdError { kind: $kind, reason: "is not of the expected form" });
                    }
                )?
                Ok(())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A Fincelo customer organisation. Letters, digits, `-` and `_`.
    TenantId, "tenant id", 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);
id_type!(
    /// The Fincelo app's id of a customer-success manager (the roster key).
    /// Letters, digits, `-` and `_`.
    CsmId, "CSM id", 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);
id_type!(
    /// Meta's Phone Number ID (digits), from WhatsApp → Getting Started.
    PhoneNumberId, "phone number id", 32, |c| c.is_ascii_digit()
);
id_type!(
    /// Meta's WhatsApp Business Account ID (digits).
    WabaId, "WABA id", 32, |c| c.is_ascii_digit()
);
id_type!(
    /// Upstream's key for one alert: the same key never yields two WhatsApp
    /// messages. Printable ASCII without spaces or `#`.
    IdempotencyKey, "idempotency key", 200, |c| c.is_ascii_graphic() && c != '#'
);
id_type!(
    /// A WhatsApp message id (`wamid.…`), as Meta returns it.
    Wamid, "wamid", 512, |c| c.is_ascii_graphic() && c != '#'
);
id_type!(
    /// A WhatsApp user's business-scoped user id (BSUID, 2026): the user's
    /// ISO 3166 alpha-2 country code, a dot, and up to 128 letters and
    /// digits (`US.13491208655302741918`); a parent BSUID has `ENT.` after
    /// the country code (`US.ENT.11815799212886844830`). Source:
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/>.
    Bsuid, "business-scoped user id", 135, |c| c.is_ascii_alphanumeric() || c == '.',
    shape: bsuid_shape
);

/// `CC.<id>` or `CC.ENT.<id>`, the id 1 to 128 letters and digits (the
/// characters were checked already: letters, digits and dots).
fn bsuid_shape(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 4 || !b[0].is_ascii_alphabetic() || !b[1].is_ascii_alphabetic() || b[2] != b'.' {
        return false;
    }
    let rest = &b[3..];
    let id = match rest {
        [b'E', b'N', b'T', b'.', id @ ..] => id,
        _ => rest,
    };
    (1..=128).contains(&id.len()) && id.iter().fold(true, |ok, &c| ok & (c != b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_refuse_key_separators() {
        assert!(TenantId::parse("acme-corp_1").is_ok());
        assert!(TenantId::parse("acme#corp").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a".repeat(65)).is_err());
    }

    #[test]
    fn meta_ids_are_digits() {
        assert!(PhoneNumberId::parse("106540352242922").is_ok());
        assert!(PhoneNumberId::parse("10654a").is_err());
        assert!(WabaId::parse("102290129340398").is_ok());
        assert!(WabaId::parse("../x").is_err());
    }

    /// BSUIDs and parent BSUIDs as Meta documents them; nothing that could
    /// split a table key or a path.
    #[test]
    fn bsuids_have_a_country_and_an_alphanumeric_id() {
        for ok in [
            "US.13491208655302741918",
            "US.ENT.11815799212886844830",
            "IN.1",
            "BR.1502576394655843",
        ] {
            assert!(Bsuid::check(ok).is_ok(), "{ok}");
        }
        let long = format!("US.{}", "9".repeat(129));
        for bad in [
            "",
            "US",
            "US.",
            "USA.1",
            "U.1",
            "US.ENT.",
            "US.1.2",
            "US.1#2",
            "US/1",
            "1S.12",
            ".US.1",
            long.as_str(),
        ] {
            assert!(Bsuid::check(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Bsuid::parse("US.ENT.7").map(|b| b.to_string()),
            Ok("US.ENT.7".into())
        );
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"not ok\"").is_err());
        assert!(serde_json::from_str::<IdempotencyKey>("\"alert#1\"").is_err());
    }
}
