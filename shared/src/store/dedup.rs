//! Webhook dedup records: "this inbound message has been acted on".
//!
//! Meta delivers at least once and retries for up to seven days, so a record
//! lives that long (its `ttl`), and the conditional put is the only check.

use super::{applied, n, s, Store, StoreError};
use crate::ids::TenantId;

/// Meta retries a webhook for up to seven days.
pub const DEDUP_TTL_SECS: i64 = 7 * 24 * 3600;

impl Store {
    /// Records `(kind, id)` for a tenant. Returns `true` the first time only.
    pub async fn first_sighting(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        applied(
            "PutItem",
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(format!("T#{tenant}#DEDUP#{kind}#{id}")))
                .item("sk", s("DEDUP"))
                .item("ttl", n(now + DEDUP_TTL_SECS))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await,
        )
    }

    /// Forgets a sighting, so a retry of a body whose processing failed half
    /// way can act again.
    pub async fn forget_sighting(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}#DEDUP#{kind}#{id}")))
            .key("sk", s("DEDUP"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::dynamo("DeleteItem", e))
    }
}
