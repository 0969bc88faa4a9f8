//! A tenant's send hold: Meta refuses every send of the business for a
//! reason of the account's (131042, a payment issue), so the tenant's alerts
//! wait instead of failing one by one.
//!
//! One item per tenant, there only while the hold lasts. The sender starts
//! it (a conditional put: the first refusal starts it, the others find it),
//! reads it (cached for seconds) before it claims an alert, lets one alert
//! per interval through as the *probe* (a conditional update on
//! `next_probe_at`: one winner per interval across every instance), and
//! ends the hold (a conditional delete on `since`, so a stale instance
//! cannot end a newer hold) when Meta reports the probe `sent`. The channel
//! status shows it.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | send hold | `T#{tenant}` | `HOLD` |

use aws_sdk_dynamodb::types::ReturnValue;

use super::{applied, get_n, get_s, n, required_n, required_s, s, Item, Store, StoreError};
use crate::ids::{IdempotencyKey, TenantId};

const HOLD_SK: &str = "HOLD";

/// Why and since when a tenant's sends are held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendHold {
    /// Machine-readable, e.g. `payment_issue`.
    pub reason: String,
    /// Meta's error code and title that started it.
    pub meta_code: i64,
    pub meta_title: Option<String>,
    /// Meta's details, as the refusal gave them.
    pub detail: String,
    /// Unix seconds; also the hold's identity for the conditional writes.
    pub since: i64,
    /// When the next alert may go through as a probe (unix seconds).
    pub next_probe_at: i64,
    /// How many probes were let through.
    pub probes: u32,
    /// The latest probe's idempotency key (its ledger entry tells whether
    /// Meta delivered it).
    pub probe_key: Option<String>,
}

fn hold_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

impl Store {
    /// Starts `hold` unless the tenant is held already. `true`: this call
    /// started it.
    pub async fn start_hold(&self, tenant: &TenantId, hold: &SendHold) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(hold_pk(tenant)))
            .item("sk", s(HOLD_SK))
            .item("reason", s(&hold.reason))
            .item("meta_code", n(hold.meta_code))
            .item("detail", s(&hold.detail))
            .item("since", n(hold.since))
            .item("next_probe_at", n(hold.next_probe_at))
            .item("probes", n(hold.probes))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(title) = &hold.meta_title {
            req = req.item("meta_title", s(title));
        }
        applied("PutItem", req.send().await)
    }

    /// The tenant's hold, if its sends are held.
    pub async fn get_hold(&self, tenant: &TenantId) -> Result<Option<SendHold>, StoreError> {
        self.get(&hold_pk(tenant), HOLD_SK)
            .await?
            .map(|i| parse_hold(&i))
            .transpose()
    }

    /// Takes the probe of the hold that began at `since` for `key`, if one is
    /// due at `now`; the next is due at `next_probe_at`. `true`: this caller
    /// sends the probe.
    pub async fn take_probe(
        &self,
        tenant: &TenantId,
        since: i64,
        key: &IdempotencyKey,
        now: i64,
        next_probe_at: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .update(hold_pk(tenant), HOLD_SK)
            .update_expression("SET next_probe_at = :next, probe_key = :k, probes = probes + :one")
            .condition_expression("since = :since AND next_probe_at <= :now")
            .expression_attribute_values(":since", n(since))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":next", n(next_probe_at))
            .expression_attribute_values(":k", s(key.as_str()))
            .expression_attribute_values(":one", n(1));
        applied("UpdateItem", req.send().await)
    }

    /// Ends the hold that began at `since`. The hold as it was, if this
    /// call ended it; `None` if it had ended already (or a newer one began).
    pub async fn end_hold(
        &self,
        tenant: &TenantId,
        since: i64,
    ) -> Result<Option<SendHold>, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(hold_pk(tenant)))
            .key("sk", s(HOLD_SK))
            .condition_expression("since = :since")
            .expression_attribute_values(":since", n(since))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => out.attributes.map(|i| parse_hold(&i)).transpose(),
            Err(e) if super::condition_failed(&e) => Ok(None),
            Err(e) => Err(StoreError::dynamo("DeleteItem", e)),
        }
    }
}

fn parse_hold(item: &Item) -> Result<SendHold, StoreError> {
    Ok(SendHold {
        reason: required_s(item, "reason")?,
        meta_code: required_n(item, "meta_code")?,
        meta_title: get_s(item, "meta_title"),
        detail: get_s(item, "detail").unwrap_or_default(),
        since: required_n(item, "since")?,
        next_probe_at: required_n(item, "next_probe_at")?,
        probes: u32::try_from(get_n(item, "probes").unwrap_or(0)).unwrap_or(0),
        probe_key: get_s(item, "probe_key"),
    })
}
