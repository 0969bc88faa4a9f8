//! Aliases of identities, and what Meta told us about each identity
//! ([`crate::identity`] says why there are several).
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | alias | `T#{tenant}#ALIAS#{alias}` (`num:+…`, `wa:…`, `user:…`) | `ALIAS` | `identity`, `strength`, `linked_at` |
//! | profile | `T#{tenant}#WHO#{identity}` | `PROFILE` | `number`, `wa_ids` (set), `user_id`, `parent_user_id`, `username`, `updated_at` |
//!
//! An alias without an item belongs to its default identity
//! ([`Alias::default_identity`]): most `wa_id`s are their number's digits,
//! so most people never need an alias item. Items are written when an id
//! is *not* what its default says: a roster CSM's number, a `wa_id` that
//! differs from the number it was sent to, a BSUID seen with a number.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{condition_failed, get_s, n, s, Item, Store, StoreError};
use crate::identity::{Alias, Identity};
use crate::ids::TenantId;

fn alias_pk(tenant: &TenantId, alias: &Alias) -> String {
    format!("T#{tenant}#ALIAS#{}", alias.key())
}

fn profile_pk(tenant: &TenantId, identity: &Identity) -> String {
    format!("T#{tenant}#WHO#{}", identity.key())
}

/// What [`Store::link_alias`] left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// Whose alias it is now (a stronger identity may have kept it).
    pub holder: Identity,
    /// The identity it belonged to before, when that was another one: the
    /// window that identity had now belongs to `holder`.
    pub previous: Option<Identity>,
}

/// What Meta told us about a person (every field optional: Meta sends what
/// it sends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub number: Option<String>,
    pub wa_ids: Vec<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
}

impl Store {
    /// The identities the aliases have items for, in one read (strongly
    /// consistent). An alias missing from the answer belongs to its default
    /// identity.
    pub async fn resolve_aliases(
        &self,
        tenant: &TenantId,
        aliases: &[Alias],
    ) -> Result<HashMap<Alias, Identity>, StoreError> {
        let mut by_pk: HashMap<String, &Alias> = HashMap::new();
        for a in aliases {
            by_pk.entry(alias_pk(tenant, a)).or_insert(a);
        }
        let mut out = HashMap::new();
        let keys: Vec<(String, String)> = by_pk
            .keys()
            .map(|pk| (pk.clone(), "ALIAS".to_string()))
            .collect();
        for ((pk, _), item) in self.get_many(&keys).await? {
            if let (Some(alias), Some(id)) = (by_pk.get(pk.as_str()), holder_of(&item)) {
                out.insert((*alias).clone(), id);
            }
        }
        Ok(out)
    }

    /// Points `alias` at `identity`, unless a stronger identity holds it
    /// (the roster's over a number's over a bare id's); an equal one is
    /// replaced, since the newer fact wins.
    pub async fn link_alias(
        &self,
        tenant: &TenantId,
        alias: &Alias,
        identity: &Identity,
        now: i64,
    ) -> Result<Linked, StoreError> {
        let res = self
            .update(alias_pk(tenant, alias), "ALIAS")
            .update_expression("SET #id = :id, strength = :s, linked_at = :now")
            .condition_expression("attribute_not_exists(#id) OR #id = :id OR strength <= :s")
            .expression_attribute_names("#id", "identity")
            .expression_attribute_values(":id", s(identity.key()))
            .expression_attribute_values(":s", n(identity.strength()))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match res {
            Ok(out) => {
                let before = out
                    .attributes
                    .as_ref()
                    .and_then(holder_of)
                    .unwrap_or_else(|| alias.default_identity());
                Ok(Linked {
                    holder: identity.clone(),
                    previous: (before != *identity).then_some(before),
                })
            }
            Err(e) if condition_failed(&e) => {
                let holder = match e.as_service_error() {
                    Some(
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(ccf),
                    ) => ccf.item().and_then(holder_of),
                    _ => None,
                };
                Ok(Linked {
                    holder: holder.unwrap_or_else(|| identity.clone()),
                    // The stronger holder keeps it; what `identity` had is
                    // its own to keep.
                    previous: None,
                })
            }
            Err(e) => Err(StoreError::dynamo("UpdateItem", e)),
        }
    }

    /// Removes `alias` if it still points at `identity` (a roster CSM's old
    /// number, once the roster has a new one).
    pub async fn unlink_alias(
        &self,
        tenant: &TenantId,
        alias: &Alias,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(alias_pk(tenant, alias)))
            .key("sk", s("ALIAS"))
            .condition_expression("#id = :id")
            .expression_attribute_names("#id", "identity")
            .expression_attribute_values(":id", s(identity.key()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("DeleteItem", e)),
        }
    }

    /// Adds what Meta said about a person to their profile (a `wa_id` is
    /// added to the set; the other fields take the newest value sent).
    pub async fn record_profile(
        &self,
        tenant: &TenantId,
        identity: &Identity,
        p: &Profile,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut set = vec!["updated_at = :now".to_string()];
        let mut req = self
            .update(profile_pk(tenant, identity), "PROFILE")
            .expression_attribute_values(":now", n(now));
        for (attr, value) in [
            ("#number", &p.number),
            ("user_id", &p.user_id),
            ("parent_user_id", &p.parent_user_id),
            ("username", &p.username),
        ] {
            if let Some(v) = value {
                let placeholder = format!(":{}", attr.trim_start_matches('#'));
                set.push(format!("{attr} = {placeholder}"));
                req = req.expression_attribute_values(placeholder, s(v));
            }
        }
        if p.number.is_some() {
            req = req.expression_attribute_names("#number", "number");
        }
        let mut update = format!("SET {}", set.join(", "));
        if !p.wa_ids.is_empty() {
            update.push_str(" ADD wa_ids :w");
            req = req.expression_attribute_values(":w", AttributeValue::Ss(p.wa_ids.clone()));
        }
        req.update_expression(update)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::dynamo("UpdateItem", e))
    }

    /// What is known of a person.
    pub async fn get_profile(
        &self,
        tenant: &TenantId,
        identity: &Identity,
    ) -> Result<Option<Profile>, StoreError> {
        Ok(self
            .get(&profile_pk(tenant, identity), "PROFILE")
            .await?
            .map(|item| parse_profile(&item)))
    }
}

fn holder_of(item: &Item) -> Option<Identity> {
    get_s(item, "identity").and_then(|k| Identity::from_key(&k))
}

fn parse_profile(item: &Item) -> Profile {
    let mut wa_ids = match item.get("wa_ids") {
        Some(AttributeValue::Ss(v)) => v.clone(),
        _ => Vec::new(),
    };
    wa_ids.sort();
    Profile {
        number: get_s(item, "number"),
        wa_ids,
        user_id: get_s(item, "user_id"),
        parent_user_id: get_s(item, "parent_user_id"),
        username: get_s(item, "username"),
    }
}
