//! Webhook dedup records: "this inbound message has been acted on".
//!
//! Meta delivers at least once and retries for up to seven days, so a record
//! lives that long (its `ttl`), and the conditional write is the only check.
//! The record also carries the mark of its event until the event is
//! published ([`crate::owed`]).

use super::{applied, get_n, n, owed, update_or_old, Change, Store, StoreError, Written};
use crate::ids::TenantId;

/// Meta retries a webhook for up to seven days.
pub const DEDUP_TTL_SECS: i64 = 7 * 24 * 3600;

impl Store {
    /// Records `(kind, id)` for a tenant, marked as owing its event until
    /// [`Store::clear_sighting_owed`]: [`Change::Applied`] the first time,
    /// then [`Change::Owed`] / [`Change::InFlight`] while the mark stays,
    /// [`Change::Unchanged`] once it is cleared.
    pub async fn record_sighting(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<Change, StoreError> {
        let req = self
            .update(sighting_pk(tenant, kind, id), "DEDUP")
            .update_expression("SET #ttl = :ttl, owed_at = :now")
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", n(now + DEDUP_TTL_SECS))
            .expression_attribute_values(":now", n(now));
        Ok(match update_or_old(req).await? {
            Written::Applied(_) => Change::Applied,
            Written::Refused(old) => {
                let at = get_n(&old, "owed_at");
                owed(at.is_some(), at, now)
            }
        })
    }

    /// Clears a sighting's mark once its event was published.
    pub async fn clear_sighting_owed(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let req = self
            .update(sighting_pk(tenant, kind, id), "DEDUP")
            .update_expression("REMOVE owed_at")
            .condition_expression("attribute_exists(owed_at)");
        applied("UpdateItem", req.send().await)
    }
}

fn sighting_pk(tenant: &TenantId, kind: &str, id: &str) -> String {
    format!("T#{tenant}#DEDUP#{kind}#{id}")
}
