//! Finding a person from the ids a request or a webhook names, and learning
//! the ids Meta reports for them ([`crate::identity`] says why there are
//! several).
//!
//! - [`identify`]: an inbound message's or a status's ids (`wa_id`, BSUID)
//!   name one person; ids seen together become aliases of one identity.
//! - [`addressee_from`]: a send request names its recipient by roster id,
//!   number or BSUID; the roster is the truth for a roster CSM.
//! - [`learn_from_send`]: Meta's answer to a send says which `wa_id` the
//!   number became (`contacts[].wa_id`), so the reply from that `wa_id` finds
//!   the window of the person the alert went to.
//! - [`follow_change`]: a user changed their BSUID or their number.
//!
//! Linking an alias to a stronger identity moves the window the weaker one
//! had, so a window opened before the link is not lost.

use crate::identity::{Alias, Identity};
use crate::ids::{CsmId, TenantId};
use crate::phone::E164;
use crate::store::{Known, Named, Profile, Store, StoreError};
use crate::webhook::payload::UserRef;

/// The person `ids` name, linking any of their ids not yet known as theirs.
/// `None`: the ids name nobody (no `wa_id` and no BSUID).
pub async fn identify(
    store: &Store,
    tenant: &TenantId,
    ids: UserRef<'_>,
    now: i64,
) -> Result<Option<Identity>, StoreError> {
    let wa = ids.wa_id.and_then(Alias::wa_id);
    let user = ids.user_id.and_then(Alias::user);
    let number = ids
        .wa_id
        .and_then(|w| E164::from_wa_id(w).ok())
        .map(Alias::Number);
    // Read in the same request: a roster number the wa_id is a variant of.
    let variants = ids
        .wa_id
        .map(E164::wa_id_variants)
        .unwrap_or_default()
        .into_iter()
        .map(Alias::Number);
    let aliases: Vec<Alias> = [wa.clone(), user.clone(), number]
        .into_iter()
        .flatten()
        .chain(variants)
        .collect();
    if wa.is_none() && user.is_none() {
        return Ok(None);
    }
    let known = store.resolve_aliases(tenant, &aliases).await?;
    let identity = known
        .values()
        .max_by_key(|i| i.strength())
        .cloned()
        .or_else(|| wa.as_ref().map(Alias::default_identity))
        .or_else(|| user.as_ref().map(Alias::default_identity));
    let Some(mut identity) = identity else {
        return Ok(None);
    };
    // Each id Meta sent for this person must lead to them next time.
    for alias in [wa, user].into_iter().flatten() {
        let holder = known
            .get(&alias)
            .cloned()
            .unwrap_or_else(|| alias.default_identity());
        if holder != identity {
            identity = link(store, tenant, &alias, &identity, now).await?;
        }
    }
    // The profile keeps what no alias holds (the username, with the ids it
    // came with). Only when a username came: statuses carry BSUIDs on every
    // delivery step, and a write per status would buy nothing.
    if ids.username.is_some() {
        let profile = Profile {
            number: identity.number().map(|n| n.to_string()),
            wa_ids: ids.wa_id.map(str::to_string).into_iter().collect(),
            user_id: ids.user_id.map(str::to_string),
            parent_user_id: ids.parent_user_id.map(str::to_string),
            username: ids.username.map(str::to_string),
        };
        store
            .record_profile(tenant, &identity, &profile, now)
            .await?;
    }
    Ok(Some(identity))
}

/// Points `alias` at `identity` (unless a stronger identity holds it) and
/// moves the window of the identity it leaves. Returns the holder.
pub async fn link(
    store: &Store,
    tenant: &TenantId,
    alias: &Alias,
    identity: &Identity,
    now: i64,
) -> Result<Identity, StoreError> {
    let linked = store.link_alias(tenant, alias, identity, now).await?;
    if let Some(previous) = &linked.previous {
        if let Some(w) = store.get_window(tenant, previous).await? {
            store
                .open_window(tenant, &linked.holder, w.last_inbound_at, "moved")
                .await?;
        }
    }
    Ok(linked.holder)
}

/// Meta's answer to a send: the `wa_id` (and, for a BSUID send, the
/// `user_id`) the recipient became. A `wa_id` other than the number's
/// digits is linked to the person the alert went to.
pub async fn learn_from_send(
    store: &Store,
    tenant: &TenantId,
    to: &Addressee,
    contacts: &[crate::graph::SendContact],
    now: i64,
) -> Result<(), StoreError> {
    for c in contacts {
        let Some(alias) = c.wa_id.as_deref().and_then(Alias::wa_id) else {
            continue;
        };
        if alias.default_identity() != to.identity {
            link(store, tenant, &alias, &to.identity, now).await?;
        }
    }
    Ok(())
}

/// A user's ids changed (`user_id_update`, or the `user_changed_user_id` /
/// `user_changed_number` system messages): the ids they have now lead to the
/// person the ids they had named. Returns that person, or `None` when the
/// previous ids name nobody.
///
/// A roster CSM who changed number keeps the roster's number for sends (the
/// roster is the truth); their replies from the new number reach their
/// window, and the caller warns that the roster needs the new number.
pub async fn follow_change(
    store: &Store,
    tenant: &TenantId,
    previous: UserRef<'_>,
    current: UserRef<'_>,
    now: i64,
) -> Result<Option<Identity>, StoreError> {
    let Some(mut identity) = identify(store, tenant, previous, now).await? else {
        return Ok(None);
    };
    // Someone known only by a BSUID is their newest BSUID, the one Meta
    // takes in `recipient`: the old id leads to the new one, and the window
    // moves with it.
    if let (Identity::User(old), Some(new)) = (&identity, current.user_id.and_then(Alias::user)) {
        if Some(old.as_str()) == previous.user_id {
            let old = Alias::User(old.clone());
            identity = link(store, tenant, &old, &new.default_identity(), now).await?;
        }
    }
    let new_aliases = [
        current.wa_id.and_then(Alias::wa_id),
        current
            .wa_id
            .and_then(|w| E164::from_wa_id(w).ok())
            .map(Alias::Number),
        current.user_id.and_then(Alias::user),
    ];
    for alias in new_aliases.into_iter().flatten() {
        if alias.default_identity() != identity {
            identity = link(store, tenant, &alias, &identity, now).await?;
        }
    }
    Ok(Some(identity))
}

/// Who a send request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub identity: Identity,
    /// The number to send to (Meta's `to`), when known.
    pub phone: Option<E164>,
    /// The BSUID to send to (Meta's `recipient`) when no number is known.
    pub user_id: Option<String>,
}

impl Addressee {
    /// What Meta's pair limit and the logs key on.
    pub fn pacing_key(&self) -> String {
        self.identity.key()
    }
}

/// Why a request's recipient cannot be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unaddressable {
    /// The request names a `csm_id` alone, and the roster has no such CSM.
    UnknownCsm(CsmId),
    /// The request names nobody usable (the request parser refuses this).
    NoRecipient,
}

/// Who a request goes to, from what the table knows of the recipient it
/// names ([`Store::lookup_recipients`]): its `csm_id` if the roster knows it
/// (the roster's number wins), else its number, else its BSUID. The second
/// value says whether the number it goes to is flagged undeliverable.
pub fn addressee_from(named: &Named, known: &Known) -> Result<(Addressee, bool), Unaddressable> {
    if let (Some(id), Some(number)) = (&named.csm_id, &known.roster_number) {
        let flagged = if named.phone.as_ref() == Some(number) {
            known.phone_flagged
        } else {
            known.roster_number_flagged
        };
        return Ok((
            Addressee {
                identity: Identity::Csm(id.clone()),
                phone: Some(number.clone()),
                user_id: None,
            },
            flagged,
        ));
    }
    if let Some(phone) = &named.phone {
        return Ok((
            Addressee {
                identity: known
                    .alias_holder
                    .clone()
                    .unwrap_or_else(|| Identity::Number(phone.clone())),
                phone: Some(phone.clone()),
                user_id: None,
            },
            known.phone_flagged,
        ));
    }
    if let Some(user) = &named.user_id {
        let identity = known
            .alias_holder
            .clone()
            .unwrap_or_else(|| Identity::User(user.clone()));
        // A person whose number is known is sent to by number: Meta allows
        // a BSUID only for some messages.
        let phone = identity.number().cloned();
        // The newest BSUID of someone who changed theirs ([`follow_change`]).
        let newest = match &identity {
            Identity::User(u) => u.clone(),
            _ => user.clone(),
        };
        return Ok((
            Addressee {
                user_id: phone.is_none().then_some(newest),
                identity,
                phone,
            },
            false,
        ));
    }
    Err(match &named.csm_id {
        Some(id) => Unaddressable::UnknownCsm(id.clone()),
        None => Unaddressable::NoRecipient,
    })
}

/// The person a number belongs to (a roster CSM, or the number itself).
pub async fn identity_of_number(
    store: &Store,
    tenant: &TenantId,
    phone: &E164,
) -> Result<Identity, StoreError> {
    let alias = Alias::Number(phone.clone());
    Ok(store
        .resolve_aliases(tenant, std::slice::from_ref(&alias))
        .await?
        .remove(&alias)
        .unwrap_or_else(|| alias.default_identity()))
}
