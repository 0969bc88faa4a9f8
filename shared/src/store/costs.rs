//! The cost ledger: per tenant and UTC day, one item of counters, one
//! counter per (pricing category, pricing type, country calling code).
//!
//! A message is counted exactly once by one transaction of two writes: an
//! atomic `ADD` on the day's counter, and a `cost_counted` mark on the
//! message's status item, conditional on there being none. A replayed
//! status, a retry after a crash between the status write and the count, or
//! two deliveries of the same body at once: the second transaction is
//! refused as a whole, so nothing counts twice and nothing is lost. The
//! caller skips the transaction when the status write already saw the mark
//! ([`super::StatusWritten::cost_counted`]), so a message costs one counting
//! transaction, not one per status.
//!
//! A tenant's day is spread over [`COST_SHARDS`] items, each its own
//! partition key (`T#{tenant}#COST#{shard}`, the shard taken from the
//! message's wamid), and a read sums them. One item would not do: DynamoDB
//! takes at most 1,000 write units a second on a partition key, and each of
//! a transaction's writes costs two, so one item would hold a tenant to 500
//! counted messages a second, below the 1,000 a second of a number Meta has
//! upgraded. Eight shards leave each about a quarter of the limit at that
//! rate ([write sharding](https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html)).
//! Counters written before the sharding, under `T#{tenant}#COST`, are
//! still read. The counters keep 13 months (`ttl`), so a year can be
//! compared with the last.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use sha2::{Digest, Sha256};

use super::{get_n, n, s, Store, StoreError};
use crate::costs::CostKey;
use crate::ids::TenantId;

/// How long a day's counters are kept: 13 months and a few days.
pub const COST_TTL_SECS: i64 = 400 * 24 * 3600;

/// The prefix of a counter attribute: `n#{category}#{type}#{country}`.
const COUNTER: &str = "n#";

/// One counter of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostCount {
    pub key: CostKey,
    pub messages: u64,
}

/// A day's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostDay {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub counts: Vec<CostCount>,
}

/// How many items share a tenant's day of counters.
pub const COST_SHARDS: u8 = 8;

/// The partition of a tenant's counters: unsharded (`None`, the layout
/// before the sharding, read only) or one of the [`COST_SHARDS`].
fn cost_pk(t: &TenantId, shard: Option<u8>) -> String {
    match shard {
        Some(i) => format!("T#{t}#COST#{i}"),
        None => format!("T#{t}#COST"),
    }
}

/// The shard a message counts in: fixed by its wamid, so a replayed status
/// meets the same item, and spread evenly since wamids are unique.
fn cost_shard(wamid: &str) -> u8 {
    Sha256::digest(wamid.as_bytes())[0] % COST_SHARDS
}

fn counter_name(k: &CostKey) -> String {
    format!("{COUNTER}{}#{}#{}", k.category, k.kind, k.country)
}

impl Store {
    /// Counts one message under `key` on `day` (`YYYY-MM-DD`; `day_start`
    /// its unix seconds at 00:00 UTC), unless it was counted before.
    /// `true` if this call counted it.
    pub async fn count_cost(
        &self,
        tenant: &TenantId,
        wamid: &str,
        day: &str,
        day_start: i64,
        key: &CostKey,
    ) -> Result<bool, StoreError> {
        let mark = Update::builder()
            .table_name(&self.table)
            .key("pk", s(super::messages::msg_pk(tenant, wamid)))
            .key("sk", s("STATUS"))
            .update_expression("SET cost_counted = :day")
            .condition_expression("attribute_exists(#rank) AND attribute_not_exists(cost_counted)")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":day", s(day))
            .build()
            .map_err(|e| build_error(e.into()))?;
        let counter = Update::builder()
            .table_name(&self.table)
            .key("pk", s(cost_pk(tenant, Some(cost_shard(wamid)))))
            .key("sk", s(format!("DAY#{day}")))
            .update_expression(
                "ADD #c :one SET #ttl = if_not_exists(#ttl, :ttl), tenant_id = :t, #day = :day",
            )
            .expression_attribute_names("#c", counter_name(key))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(day_start + COST_TTL_SECS))
            .expression_attribute_values(":t", s(tenant.as_str()))
            .expression_attribute_values(":day", s(day))
            .build()
            .map_err(|e| build_error(e.into()))?;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .transact_items(TransactWriteItem::builder().update(counter).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => {
                let counted_before = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(c))
                        if c.cancellation_reasons()
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                );
                if counted_before {
                    Ok(false)
                } else {
                    Err(StoreError::dynamo("TransactWriteItems", e))
                }
            }
        }
    }

    /// The counters of every day of `month` (`YYYY-MM`) that has any, in
    /// day order, each the sum of its shards (and of the unsharded item a
    /// day counted before the sharding may have).
    pub async fn cost_days(
        &self,
        tenant: &TenantId,
        month: &str,
    ) -> Result<Vec<CostDay>, StoreError> {
        let prefix = format!("DAY#{month}-");
        let mut days: BTreeMap<String, BTreeMap<CostKey, u64>> = BTreeMap::new();
        let partitions = std::iter::once(None).chain((0..COST_SHARDS).map(Some));
        for shard in partitions {
            for item in self.query_all(&cost_pk(tenant, shard), &prefix).await? {
                let Some(day) = super::get_s(&item, "sk")
                    .and_then(|sk| sk.strip_prefix("DAY#").map(str::to_string))
                else {
                    continue;
                };
                let counts = days.entry(day).or_default();
                for (key, messages) in counters(&item) {
                    *counts.entry(key).or_default() += messages;
                }
            }
        }
        Ok(days
            .into_iter()
            .map(|(day, counts)| CostDay {
                day,
                counts: counts
                    .into_iter()
                    .map(|(key, messages)| CostCount { key, messages })
                    .collect(),
            })
            .collect())
    }
}

/// The counters of one item: its attributes named `n#{category}#{type}#{country}`.
fn counters(item: &super::Item) -> impl Iterator<Item = (CostKey, u64)> + '_ {
    item.iter().filter_map(|(name, v)| {
        let rest = name.strip_prefix(COUNTER)?;
        let mut parts = rest.splitn(3, '#');
        let key = CostKey {
            category: parts.next()?.to_string(),
            kind: parts.next()?.to_string(),
            country: parts.next()?.to_string(),
        };
        let messages = match v {
            AttributeValue::N(_) => get_n(item, name)?,
            _ => return None,
        };
        Some((key, u64::try_from(messages).unwrap_or(0)))
    })
}

/// A request the SDK's builder refused: a bug here, reported as a store
/// error rather than a panic.
fn build_error(e: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Dynamo {
        op: "TransactWriteItems",
        detail: e.to_string(),
        source: e,
    }
}
