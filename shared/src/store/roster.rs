//! The CSM roster: each CSM's WhatsApp number, and whether Meta could reach it.

use super::{get_bool, n, s, Store, StoreError};
use crate::ids::TenantId;
use crate::phone::E164;

impl Store {
    /// Marks a number that Meta called undeliverable (131026: not a usable
    /// WhatsApp account). It stays flagged until the roster entry changes.
    pub async fn flag_undeliverable(
        &self,
        tenant: &TenantId,
        csm: &E164,
        code: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(format!("CSM#{csm}")))
            .update_expression("SET undeliverable = :t, undeliverable_code = :c, undeliverable_at = :now, phone = :p")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":c", n(code))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":p", s(csm.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::dynamo("UpdateItem", e))
    }

    /// Whether the number has been flagged undeliverable.
    pub async fn is_undeliverable(
        &self,
        tenant: &TenantId,
        csm: &E164,
    ) -> Result<bool, StoreError> {
        let item = self
            .get(&format!("T#{tenant}"), &format!("CSM#{csm}"))
            .await?;
        Ok(item
            .and_then(|i| get_bool(&i, "undeliverable"))
            .unwrap_or(false))
    }
}
