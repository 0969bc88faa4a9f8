//! What the table knows about the recipients of a batch of send requests,
//! in one read: the roster entry a `csm_id` names, the identity a number or
//! a BSUID is an alias of, and whether a number is flagged undeliverable.
//! [`crate::addressing::addressee_from`] turns it into who an alert goes to.

use super::{get_bool, get_s, Store, StoreError};
use crate::identity::{Alias, Identity};
use crate::ids::{CsmId, TenantId};
use crate::phone::E164;

/// A recipient as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Named {
    pub tenant: TenantId,
    pub phone: Option<E164>,
    pub csm_id: Option<CsmId>,
    pub user_id: Option<String>,
}

/// What the table knows about one [`Named`] recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// The roster's number for the `csm_id`, when it is on the roster.
    pub roster_number: Option<E164>,
    /// The identity the number (or, without one, the BSUID) is an alias of,
    /// when an alias item says so.
    pub alias_holder: Option<Identity>,
    /// Whether the named number is flagged undeliverable.
    pub phone_flagged: bool,
    /// Whether the roster's number is (when it is not the named one).
    pub roster_number_flagged: bool,
}

impl Store {
    /// Reads what is known of each recipient, in one batch read
    /// ([`Store::get_many`]).
    pub async fn lookup_recipients(&self, named: &[Named]) -> Result<Vec<Known>, StoreError> {
        let mut known = self.lookup_once(named).await?;
        // A roster number the request did not name: its flag, in one more
        // read (requests that name a CSM by id alone).
        let second: Vec<(usize, Named)> = named
            .iter()
            .zip(&known)
            .enumerate()
            .filter_map(|(i, (n, k))| {
                let number = k.roster_number.as_ref()?;
                (n.phone.as_ref() != Some(number)).then(|| {
                    (
                        i,
                        Named {
                            tenant: n.tenant.clone(),
                            phone: Some(number.clone()),
                            csm_id: None,
                            user_id: None,
                        },
                    )
                })
            })
            .collect();
        if !second.is_empty() {
            let asked: Vec<Named> = second.iter().map(|(_, n)| n.clone()).collect();
            let flags = self.lookup_once(&asked).await?;
            for ((i, _), k) in second.iter().zip(flags) {
                known[*i].roster_number_flagged = k.phone_flagged;
            }
        }
        Ok(known)
    }

    async fn lookup_once(&self, named: &[Named]) -> Result<Vec<Known>, StoreError> {
        // Each recipient's keys: roster entry, alias, undeliverable flag.
        let keys_of = |n: &Named| -> Vec<(String, String)> {
            let t = &n.tenant;
            let mut keys = Vec::new();
            if let Some(id) = &n.csm_id {
                keys.push((format!("T#{t}"), format!("CSMID#{id}")));
            }
            let alias = match (&n.phone, &n.user_id) {
                (Some(p), _) => Alias::Number(p.clone()),
                (None, Some(u)) => Alias::User(u.clone()),
                (None, None) => return keys,
            };
            keys.push((format!("T#{t}#ALIAS#{}", alias.key()), "ALIAS".to_string()));
            if let Some(p) = &n.phone {
                keys.push((format!("T#{t}"), format!("CSM#{p}")));
            }
            keys
        };
        let wanted: Vec<(String, String)> = named.iter().flat_map(keys_of).collect();
        let found = self.get_many(&wanted).await?;
        Ok(named
            .iter()
            .map(|n| {
                let t = &n.tenant;
                let item = |pk: String, sk: String| found.get(&(pk, sk));
                Known {
                    roster_number: n
                        .csm_id
                        .as_ref()
                        .and_then(|id| item(format!("T#{t}"), format!("CSMID#{id}")))
                        .and_then(|i| get_s(i, "whatsapp_number"))
                        .and_then(|w| E164::from_wa_id(&w).ok()),
                    alias_holder: match (&n.phone, &n.user_id) {
                        (Some(p), _) => Some(Alias::Number(p.clone())),
                        (None, Some(u)) => Some(Alias::User(u.clone())),
                        (None, None) => None,
                    }
                    .and_then(|a| item(format!("T#{t}#ALIAS#{}", a.key()), "ALIAS".into()))
                    .and_then(|i| get_s(i, "identity"))
                    .and_then(|k| Identity::from_key(&k)),
                    phone_flagged: n
                        .phone
                        .as_ref()
                        .and_then(|p| item(format!("T#{t}"), format!("CSM#{p}")))
                        .and_then(|i| get_bool(i, "undeliverable"))
                        .unwrap_or(false),
                    roster_number_flagged: false,
                }
            })
            .collect())
    }
}
