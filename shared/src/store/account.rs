//! The tenant's standing at Meta, as the account webhooks report it: the
//! messaging limit, the phone number's quality, and the account's
//! restrictions. One item per tenant (`T#{tenant}` / `ACCOUNT`), one
//! attribute per aspect, each holding what Meta last said (as JSON) with
//! Meta's time (`{aspect}_ts`).
//!
//! Meta delivers at least once and in no order, so each aspect is ordered
//! on its own by Meta's time: a replay (same time, same value) or an older
//! webhook changes nothing, and an aspect's event is owed on the item
//! (`owed_{aspect}`, as templates do) until it is published.

use serde_json::Value;

use super::{applied, get_n, get_s, n, owed, s, update_or_old, Change, Store, StoreError, Written};
use crate::ids::TenantId;

/// What an account webhook changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAspect {
    /// The portfolio's messaging limit (`max_daily_conversations_per_business`, ...).
    MessagingLimit,
    /// The phone number's quality event (`FLAGGED`, `UNFLAGGED`, `UPGRADE`, ...).
    Quality,
    /// The account's restrictions, violations and bans (`account_update`).
    Standing,
}

impl AccountAspect {
    pub const ALL: [AccountAspect; 3] = [
        AccountAspect::MessagingLimit,
        AccountAspect::Quality,
        AccountAspect::Standing,
    ];

    /// Its name in the item, the status API and the event.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountAspect::MessagingLimit => "messaging_limit",
            AccountAspect::Quality => "quality",
            AccountAspect::Standing => "standing",
        }
    }
}

/// One aspect as stored: what Meta said, and when (Meta's time).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFact {
    pub value: Value,
    pub at: i64,
}

/// The mark of an owed event: the change's time and value.
pub fn account_mark(value: &Value, ts: i64) -> String {
    format!("{ts}|{value}")
}

impl Store {
    /// Records `value` for `aspect` at Meta's time `ts`, if newer than what
    /// is stored (or as new, but different, at the same time). Its event is
    /// marked owed (at `now`) until [`Store::clear_account_owed`].
    pub async fn apply_account_change(
        &self,
        tenant: &TenantId,
        aspect: AccountAspect,
        value: &Value,
        ts: i64,
        now: i64,
    ) -> Result<Change, StoreError> {
        let a = aspect.as_str();
        let mark = account_mark(value, ts);
        let req = self
            .update(format!("T#{tenant}"), "ACCOUNT")
            .update_expression("SET #v = :v, #ts = :ts, #m = :m, #ma = :now")
            .condition_expression(
                "attribute_not_exists(#ts) OR #ts < :ts OR (#ts = :ts AND #v <> :v)",
            )
            .expression_attribute_names("#v", a)
            .expression_attribute_names("#ts", format!("{a}_ts"))
            .expression_attribute_names("#m", format!("owed_{a}"))
            .expression_attribute_names("#ma", format!("owed_{a}_at"))
            .expression_attribute_values(":v", s(value.to_string()))
            .expression_attribute_values(":ts", n(ts))
            .expression_attribute_values(":m", s(&mark))
            .expression_attribute_values(":now", n(now));
        Ok(match update_or_old(req).await? {
            Written::Applied(_) => Change::Applied,
            Written::Refused(old) => owed(
                get_s(&old, &format!("owed_{a}")).as_deref() == Some(mark.as_str()),
                get_n(&old, &format!("owed_{a}_at")),
                now,
            ),
        })
    }

    /// Clears an aspect's owed mark once its event is published. `false`
    /// if a newer change replaced it.
    pub async fn clear_account_owed(
        &self,
        tenant: &TenantId,
        aspect: AccountAspect,
        mark: &str,
    ) -> Result<bool, StoreError> {
        let a = aspect.as_str();
        let req = self
            .update(format!("T#{tenant}"), "ACCOUNT")
            .update_expression("REMOVE #m, #ma")
            .condition_expression("#m = :m")
            .expression_attribute_names("#m", format!("owed_{a}"))
            .expression_attribute_names("#ma", format!("owed_{a}_at"))
            .expression_attribute_values(":m", s(mark));
        applied("UpdateItem", req.send().await)
    }

    /// What Meta last said of each aspect (absent: nothing yet).
    pub async fn account_facts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(AccountAspect, AccountFact)>, StoreError> {
        let Some(item) = self.get(&format!("T#{tenant}"), "ACCOUNT").await? else {
            return Ok(Vec::new());
        };
        Ok(AccountAspect::ALL
            .into_iter()
            .filter_map(|a| {
                let value = serde_json::from_str(&get_s(&item, a.as_str())?).ok()?;
                let at = get_n(&item, &format!("{}_ts", a.as_str()))?;
                Some((a, AccountFact { value, at }))
            })
            .collect())
    }
}
