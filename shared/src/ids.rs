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
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if s.is_empty() {
                    return Err(IdError { kind: $kind, reason: "must not be empty" });
                }
                if s.len() > $max {
                    return Err(IdError { kind: $kind, reason: "too long" });
                }
                let valid: fn(char) -> bool = $valid;
                if !s.chars().all(valid) {
                    return Err(IdError { kind: $kind, reason: "contains characters that are not allowed" });
                }
                Ok(Self(s))
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

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"not ok\"").is_err());
        assert!(serde_json::from_str::<IdempotencyKey>("\"alert#1\"").is_err());
    }
}
