//! WhatsApp users as Meta identifies them in 2026: the number a business
//! sends to, the `wa_id` Meta reports for it, a business-scoped user ID
//! (BSUID) and parent BSUID, and a username.
//!
//! Sources: Meta's BSUID document
//! (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids>,
//! May 2026, read through a public copy with the search tool) and its webhook
//! references; META-2026.md for the `wa_id` cases (Mexico `521…` for a `+52`
//! mobile, Argentina `549…`, Brazil with or without the ninth digit).
//!
//! Rules kept here:
//! - A user is found by any alias: the digits sent to, the `wa_id`, the BSUID
//!   or the parent BSUID. The 24-hour window belongs to the user, whatever
//!   alias reached them ([`window_key`]).
//! - Phone numbers of users with a username appear in webhooks only when
//!   Meta's "Phone numbers" conditions hold: the business phone number sent to
//!   or received from that phone number in the last 30 days, or the user is in
//!   the business's contact book (on by default; any phone-number interaction
//!   adds the user). Users without a username always show it.
//! - BSUIDs are scoped to a business portfolio in Meta; the sandbox has one
//!   namespace (a registered user's BSUID works from any tenant).

use serde_json::{json, Value};

use crate::model::{UserSpec, UserView};
use crate::requests::{is_bsuid, is_parent_bsuid, wa_id_of};
use crate::state::{Store, Tenant};

/// Meta's look-back for showing a username user's phone number.
pub const PHONE_LOOKBACK_MS: i64 = 30 * 24 * 3600 * 1000;

/// A registered user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Stable across id changes; windows and rate state hang on it.
    pub key: String,
    /// Normalised: numbers as digits.
    pub spec: UserSpec,
}

impl User {
    pub fn view(&self) -> UserView {
        UserView {
            key: self.key.clone(),
            spec: self.spec.clone(),
        }
    }

    /// The `wa_id` Meta reports: the registered one, else the digits of the number.
    pub fn wa_id(&self) -> Option<&str> {
        self.spec
            .wa_id
            .as_deref()
            .or(self.spec.phone_number.as_deref())
    }

    pub fn has_username(&self) -> bool {
        self.spec.username.is_some()
    }

    pub fn name(&self) -> &str {
        self.spec.profile_name.as_deref().unwrap_or("Sandbox User")
    }

    /// Whether `alias` (digits, or a BSUID) names this user.
    pub fn answers_to(&self, alias: &str) -> bool {
        let s = &self.spec;
        [
            s.phone_number.as_deref(),
            s.wa_id.as_deref(),
            s.user_id.as_deref(),
            s.parent_user_id.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|a| a == alias)
    }

    /// The ISO country prefix of the BSUID (`US.` → `US`), for new BSUIDs.
    fn country(&self) -> &str {
        self.spec
            .user_id
            .as_deref()
            .and_then(|u| u.split_once('.'))
            .map(|(cc, _)| cc)
            .unwrap_or("US")
    }
}

/// Why a user spec is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityError {
    #[error("phone_number must be a phone number (7 to 15 digits)")]
    BadPhone,
    #[error("wa_id must be 7 to 15 digits")]
    BadWaId,
    #[error(
        "user_id must be a BSUID: a 2-letter country code, a period and up to 128 alphanumerics"
    )]
    BadUserId,
    #[error("parent_user_id must be a parent BSUID: CC.ENT. and up to 128 alphanumerics")]
    BadParentUserId,
    #[error("a user needs a phone_number or a user_id")]
    NoId,
    #[error("a user with a username needs a user_id: Meta identifies them by BSUID")]
    UsernameWithoutBsuid,
    #[error("no registered user answers to {0}")]
    Unknown(String),
}

/// Checks and normalises a spec (numbers to digits).
pub fn normalize(mut spec: UserSpec) -> Result<UserSpec, IdentityError> {
    if let Some(p) = &spec.phone_number {
        spec.phone_number = Some(wa_id_of(p).ok_or(IdentityError::BadPhone)?);
    }
    if let Some(w) = &spec.wa_id {
        spec.wa_id = Some(wa_id_of(w).ok_or(IdentityError::BadWaId)?);
    }
    if spec.user_id.as_deref().is_some_and(|u| !is_bsuid(u)) {
        return Err(IdentityError::BadUserId);
    }
    if spec
        .parent_user_id
        .as_deref()
        .is_some_and(|u| !is_parent_bsuid(u))
    {
        return Err(IdentityError::BadParentUserId);
    }
    if spec.phone_number.is_none() && spec.user_id.is_none() {
        return Err(IdentityError::NoId);
    }
    if spec.username.is_some() && spec.user_id.is_none() {
        return Err(IdentityError::UsernameWithoutBsuid);
    }
    Ok(spec)
}

/// Registers `spec`, replacing any user that shares one of its ids.
pub fn register(store: &mut Store, spec: UserSpec) -> Result<User, IdentityError> {
    let spec = normalize(spec)?;
    let aliases: Vec<String> = [
        spec.phone_number.clone(),
        spec.wa_id.clone(),
        spec.user_id.clone(),
        spec.parent_user_id.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let existing = store
        .users
        .iter()
        .position(|u| aliases.iter().any(|a| u.answers_to(a)));
    let key = match existing {
        Some(i) => store.users.remove(i).key,
        None => {
            store.next_user += 1;
            format!("u{}", store.next_user)
        }
    };
    let user = User { key, spec };
    store.users.push(user.clone());
    Ok(user)
}

/// The user an alias names: digits (any number format) or a BSUID.
pub fn find<'a>(users: &'a [User], alias: &str) -> Option<&'a User> {
    let alias = wa_id_of(alias).unwrap_or_else(|| alias.to_string());
    users.iter().find(|u| u.answers_to(&alias))
}

/// Whom a window, a pair bucket or a phone interaction belongs to: the
/// registered user, else the number's digits (or the unknown BSUID).
pub fn window_key(users: &[User], alias: &str) -> String {
    match find(users, alias) {
        Some(u) => format!("user:{}", u.key),
        None => wa_id_of(alias).unwrap_or_else(|| alias.to_string()),
    }
}

/// Meta's "Phone numbers" conditions for `user` seen from `tenant` at `now_ms`.
pub fn phone_visible(store: &Store, tenant: &Tenant, user: &User, now_ms: i64) -> bool {
    if user.wa_id().is_none() {
        return false;
    }
    if !user.has_username() {
        return true;
    }
    let recent = store
        .phone_contacts
        .get(&(tenant.spec.phone_number_id.clone(), user.key.clone()))
        .is_some_and(|at| now_ms - at < PHONE_LOOKBACK_MS);
    let book = store.account(&tenant.spec.waba_id).contact_book
        && store
            .contact_book
            .contains(&(tenant.spec.waba_id.clone(), user.key.clone()));
    recent || book
}

/// Records that `tenant` exchanged a message with the user's phone number.
pub fn record_phone_use(store: &mut Store, tenant: &Tenant, user_key: &str, now_ms: i64) {
    store.phone_contacts.insert(
        (tenant.spec.phone_number_id.clone(), user_key.to_string()),
        now_ms,
    );
    if store.account(&tenant.spec.waba_id).contact_book {
        store
            .contact_book
            .insert((tenant.spec.waba_id.clone(), user_key.to_string()));
    }
}

/// A `contacts[]` entry for `user`: `profile.name` (and `username` when
/// `with_username`), `wa_id` when the phone is shown, `user_id` and
/// `parent_user_id` when the user has them.
pub fn contact(user: &User, show_phone: bool, with_username: bool) -> Value {
    let mut profile = json!({"name": user.name()});
    if with_username {
        if let Some(u) = &user.spec.username {
            profile["username"] = json!(u);
        }
    }
    let mut c = json!({"profile": profile});
    if show_phone {
        if let Some(w) = user.wa_id() {
            c["wa_id"] = json!(w);
        }
    }
    if let Some(u) = &user.spec.user_id {
        c["user_id"] = json!(u);
    }
    if let Some(p) = &user.spec.parent_user_id {
        c["parent_user_id"] = json!(p);
    }
    c
}

/// A fresh BSUID in `user`'s country (for an id change without one given).
pub fn fresh_bsuid(user: &User, parent: bool) -> String {
    let digits: String = uuid::Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .take(20)
        .collect();
    if parent {
        format!("{}.ENT.{digits}", user.country())
    } else {
        format!("{}.{digits}", user.country())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(phone: &str, wa: Option<&str>, bsuid: Option<&str>) -> UserSpec {
        UserSpec {
            phone_number: Some(phone.into()),
            wa_id: wa.map(String::from),
            user_id: bsuid.map(String::from),
            ..UserSpec::default()
        }
    }

    #[test]
    fn a_mexican_mobile_is_found_by_its_number_or_its_521_wa_id() {
        let mut store = Store::new(crate::knobs::Knobs::default());
        let u = register(
            &mut store,
            spec("+52 55 1234 5678", Some("5215512345678"), Some("MX.1234")),
        )
        .expect("registers");
        assert_eq!(u.wa_id(), Some("5215512345678"));
        for alias in ["+525512345678", "5215512345678", "MX.1234"] {
            assert_eq!(
                find(&store.users, alias).map(|f| f.key.clone()),
                Some(u.key.clone()),
                "{alias}"
            );
        }
        assert_eq!(
            window_key(&store.users, "5215512345678"),
            window_key(&store.users, "MX.1234")
        );
        assert_eq!(window_key(&store.users, "+14155550100"), "14155550100");
    }

    #[test]
    fn specs_are_checked() {
        assert_eq!(
            normalize(spec("12", None, None)),
            Err(IdentityError::BadPhone)
        );
        assert_eq!(
            normalize(spec("+14155550100", None, Some("US-1"))),
            Err(IdentityError::BadUserId)
        );
        let mut no_bsuid = spec("+14155550100", None, None);
        no_bsuid.username = Some("@a".into());
        assert_eq!(
            normalize(no_bsuid),
            Err(IdentityError::UsernameWithoutBsuid)
        );
        assert_eq!(normalize(UserSpec::default()), Err(IdentityError::NoId));
    }

    #[test]
    fn re_registering_an_id_replaces_the_user_and_keeps_its_key() {
        let mut store = Store::new(crate::knobs::Knobs::default());
        let a = register(&mut store, spec("+14155550100", None, Some("US.1"))).expect("registers");
        let b = register(&mut store, spec("+14155550100", None, Some("US.2"))).expect("registers");
        assert_eq!((a.key, store.users.len()), (b.key, 1));
    }
}
