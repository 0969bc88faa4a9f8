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
//! All of a tenant's billable messages of a day update one item: DynamoDB
//! takes up to 1,000 writes a second on an item, far above what one WhatsApp
//! number is allowed to send (80 messages a second by default). The counters
//! keep 13 months (`ttl`), so a year can be compared with the last.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

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

fn cost_pk(t: &TenantId) -> String {
    format!("T#{t}#COST")
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
            .key("pk", s(cost_pk(tenant)))
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
    /// day order.
    pub async fn cost_days(
        &self,
        tenant: &TenantId,
        month: &str,
    ) -> Result<Vec<CostDay>, StoreError> {
        let items = self
            .query_all(&cost_pk(tenant), &format!("DAY#{month}-"))
            .await?;
        let mut days: Vec<CostDay> = items
            .iter()
            .filter_map(|item| {
                let day = super::get_s(item, "sk")?.strip_prefix("DAY#")?.to_string();
                let mut counts: Vec<CostCount> = item
                    .iter()
                    .filter_map(|(name, v)| {
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
                        Some(CostCount {
                            key,
                            messages: u64::try_from(messages).unwrap_or(0),
                        })
                    })
                    .collect();
                counts.sort_by(|a, b| a.key.cmp(&b.key));
                Some(CostDay { day, counts })
            })
            .collect();
        days.sort_by(|a, b| a.day.cmp(&b.day));
        Ok(days)
    }
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
