//! Per-tenant activity the status API reports: when the last verified
//! webhook arrived and how many alerts the sender parked in the DLQ.
//!
//! Both live in a partition of their own (`T#{tenant}#ACTIVITY`), apart from
//! the tenant's configuration, because they are written at webhook rate.
//!
//! - **Last webhook**: one unconditional `SET last_webhook_at` per verified
//!   body at most; the webhook skips it when its own instance wrote the same
//!   tenant less than [`crate::webhook::LAST_SEEN_EVERY_SECS`] ago, so the
//!   time is exact to that many seconds and a busy tenant costs a handful of
//!   writes a minute per instance, not one per body.
//! - **Parked alerts**: SQS counts messages per queue, not per tenant, and
//!   reading the DLQ to count would consume it. So the sender adds 1 to a
//!   per-day counter (`DAY#{yyyy-mm-dd}`, atomic `ADD`) each time it parks a
//!   tenant's alert, and the status API sums the days the DLQ still retains
//!   (14). That is the number parked in the DLQ unless someone redrove or
//!   deleted messages by hand. Requests that name no valid, configured tenant
//!   cannot be counted for one.

use super::{get_n, n, s, Store, StoreError};
use crate::ids::TenantId;

/// The send DLQ keeps messages 14 days (`MessageRetentionPeriod` in template.yaml).
pub const DLQ_RETENTION_DAYS: i64 = 14;

fn activity_pk(t: &TenantId) -> String {
    format!("T#{t}#ACTIVITY")
}

/// The day bucket of a unix time: days since the epoch.
fn day(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

/// What the status API shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub last_webhook_at: Option<i64>,
    /// Alerts parked within the DLQ's retention.
    pub parked_in_dlq: i64,
    pub last_parked_at: Option<i64>,
}

impl Store {
    /// Records that a verified webhook body for the tenant arrived now.
    /// Never moves the time back (a slow instance finishing late).
    pub async fn touch_last_webhook(&self, tenant: &TenantId, now: i64) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(activity_pk(tenant)))
            .key("sk", s("WEBHOOK"))
            .update_expression("SET last_webhook_at = :now")
            .condition_expression("attribute_not_exists(last_webhook_at) OR last_webhook_at < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        super::applied("UpdateItem", res).map(|_| ())
    }

    /// Counts one alert of the tenant parked in the DLQ (atomic).
    pub async fn count_parked(&self, tenant: &TenantId, now: i64) -> Result<(), StoreError> {
        let d = day(now);
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(activity_pk(tenant)))
            .key("sk", s(format!("DAY#{d:08}")))
            .update_expression("ADD parked :one SET last_parked_at = :now, #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n((d + DLQ_RETENTION_DAYS + 1) * 86_400))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::dynamo("UpdateItem", e))
    }

    /// The tenant's activity as of `now`: one read and one query of the
    /// tenant's activity partition.
    pub async fn activity(&self, tenant: &TenantId, now: i64) -> Result<Activity, StoreError> {
        let pk = activity_pk(tenant);
        let oldest_day = day(now) - (DLQ_RETENTION_DAYS - 1);
        let mut out = Activity {
            last_webhook_at: self
                .get(&pk, "WEBHOOK")
                .await?
                .and_then(|i| get_n(&i, "last_webhook_at")),
            ..Activity::default()
        };
        for item in self.query_all(&pk, "DAY#").await? {
            let d = super::get_s(&item, "sk")
                .and_then(|sk| sk.strip_prefix("DAY#").and_then(|d| d.parse::<i64>().ok()));
            if d.is_some_and(|d| d >= oldest_day) {
                out.parked_in_dlq += get_n(&item, "parked").unwrap_or(0);
                out.last_parked_at = out.last_parked_at.max(get_n(&item, "last_parked_at"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_split_at_utc_midnight() {
        assert_eq!(day(0), 0);
        assert_eq!(day(86_399), 0);
        assert_eq!(day(86_400), 1);
        assert_eq!(day(1_764_028_800), 20_417);
    }
}
