//! Who a CSM is, whatever Meta calls them.
//!
//! Meta names a WhatsApp user in several ways, and since 2026 no single one
//! is always there:
//!
//! - the **number** a business sends to (E.164);
//! - the **`wa_id`** Meta reports for it, which is not always the number's
//!   digits (Mexico: `521…` for a `+52` mobile; Argentina: `549…`; Brazil:
//!   with or without the ninth mobile digit), learned from a send's answer
//!   (`contacts[].wa_id`) and from inbound messages (`from`);
//! - the **BSUID** (`user_id`, e.g. `US.13491208655302741918`), with a parent
//!   BSUID for enterprise portfolios, which is the only id Meta sends for a
//!   user who adopted a username and whose number the business has not used.
//!
//! The service keeps one [`Identity`] per person and every id Meta reported
//! for it as an [`Alias`] of that identity, so a CSM's 24-hour window is
//! found from any of them: the window a Mexican CSM's reply (`from:
//! 521…`) opens is the one the next alert to `+52…` reads. A roster CSM's
//! identity is their `csm_id`; anyone else's is the first id seen for them.
//! When two identities turn out to be one person (a send's answer links a
//! number to a `wa_id`, a status links a `wa_id` to a BSUID), the stronger
//! one (roster, then number, then a bare id) takes the alias, and the
//! window the weaker one had moves with it ([`crate::store`]'s `link`).

use std::fmt;

use crate::ids::CsmId;
use crate::phone::E164;

/// One person, as this service keys their window and their aliases.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// A CSM on the tenant's roster.
    Csm(CsmId),
    /// Someone known by a number, not on the roster.
    Number(E164),
    /// Someone known only by a `wa_id` that is not a valid number.
    WaId(String),
    /// Someone known only by a BSUID.
    User(String),
}

impl Identity {
    /// The identity as stored (`csm:…`, `num:+…`, `wa:…`, `user:…`).
    pub fn key(&self) -> String {
        match self {
            Identity::Csm(id) => format!("csm:{id}"),
            Identity::Number(n) => format!("num:{n}"),
            Identity::WaId(w) => format!("wa:{w}"),
            Identity::User(u) => format!("user:{u}"),
        }
    }

    /// Reads a stored key back.
    pub fn from_key(key: &str) -> Option<Identity> {
        let (kind, value) = key.split_once(':')?;
        Some(match kind {
            "csm" => Identity::Csm(CsmId::parse(value).ok()?),
            "num" => Identity::Number(E164::parse(value).ok()?),
            "wa" if is_wa_id(value) => Identity::WaId(value.to_string()),
            "user" if is_bsuid(value) => Identity::User(value.to_string()),
            _ => return None,
        })
    }

    /// Which identity keeps an alias two of them claim: the roster's, then
    /// a number's, then a bare id's.
    pub fn strength(&self) -> u8 {
        match self {
            Identity::Csm(_) => 3,
            Identity::Number(_) => 2,
            Identity::WaId(_) | Identity::User(_) => 1,
        }
    }

    /// The number, when the identity is one.
    pub fn number(&self) -> Option<&E164> {
        match self {
            Identity::Number(n) => Some(n),
            _ => None,
        }
    }

    /// For logs: never a whole number.
    pub fn masked(&self) -> String {
        match self {
            Identity::Number(n) => format!("num:{}", n.masked()),
            Identity::WaId(w) => format!("wa:{}", crate::phone::mask(w)),
            other => other.key(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// One id Meta (or the roster) gives a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Alias {
    Number(E164),
    WaId(String),
    User(String),
}

impl Alias {
    /// A `wa_id` as Meta sent it (digits), if it is one.
    pub fn wa_id(value: &str) -> Option<Alias> {
        is_wa_id(value).then(|| Alias::WaId(value.to_string()))
    }

    /// A BSUID as Meta sent it, if it is one.
    pub fn user(value: &str) -> Option<Alias> {
        is_bsuid(value).then(|| Alias::User(value.to_string()))
    }

    /// The alias as stored.
    pub fn key(&self) -> String {
        match self {
            Alias::Number(n) => format!("num:{n}"),
            Alias::WaId(w) => format!("wa:{w}"),
            Alias::User(u) => format!("user:{u}"),
        }
    }

    /// Whose alias this is when nothing says otherwise: a `wa_id` that is a
    /// valid number's digits is that number (the usual case), anything else
    /// its own identity.
    pub fn default_identity(&self) -> Identity {
        match self {
            Alias::Number(n) => Identity::Number(n.clone()),
            Alias::WaId(w) => match E164::from_wa_id(w) {
                Ok(n) => Identity::Number(n),
                Err(_) => Identity::WaId(w.clone()),
            },
            Alias::User(u) => Identity::User(u.clone()),
        }
    }
}

/// Meta's `wa_id`: digits only, as long as a number can be (15) with room
/// for the extra mobile digit some countries carry.
fn is_wa_id(v: &str) -> bool {
    (5..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

/// A BSUID: a country code, a dot, then letters, digits and dots (a parent
/// id is `CC.ENT.…`), at most 135 characters in all.
fn is_bsuid(v: &str) -> bool {
    let mut parts = v.splitn(2, '.');
    let cc = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    v.len() <= 135
        && cc.len() == 2
        && cc.bytes().all(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_themselves() {
        for id in [
            Identity::Csm(CsmId::parse("csm-7").expect("id")),
            Identity::Number(E164::parse("+525512345678").expect("n")),
            Identity::WaId("5215512345678".into()),
            Identity::User("MX.13491208655302741918".into()),
        ] {
            assert_eq!(
                Identity::from_key(&id.key()),
                Some(id.clone()),
                "{}",
                id.key()
            );
        }
        assert_eq!(Identity::from_key("user:not a bsuid"), None);
        assert_eq!(Identity::from_key("nope:1"), None);
    }

    #[test]
    fn a_wa_id_that_is_a_number_defaults_to_that_number() {
        let alias = Alias::wa_id("919876543210").expect("wa");
        assert_eq!(
            alias.default_identity(),
            Identity::Number(E164::parse("+919876543210").expect("n"))
        );
        assert!(Alias::wa_id("91a").is_none());
        assert!(Alias::user("US.13491208655302741918").is_some());
        assert!(Alias::user("US.ENT.11815799212886844830").is_some());
        assert!(Alias::user("us.1").is_none() && Alias::user("US.").is_none());
    }

    #[test]
    fn the_roster_is_stronger_than_a_number_and_a_number_than_a_bare_id() {
        let csm = Identity::Csm(CsmId::parse("c").expect("id"));
        let num = Identity::Number(E164::parse("+919876543210").expect("n"));
        let user = Identity::User("IN.1".into());
        assert!(csm.strength() > num.strength() && num.strength() > user.strength());
    }
}
