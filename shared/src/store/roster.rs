//! The CSM roster: each CSM's WhatsApp number (by the Fincelo app's CSM id),
//! and whether Meta could reach a number.
//!
//! Two items, because the two writers know different things: the admin API
//! knows the CSM id (`CSMID#{csm_id}`: the number), the sender and the
//! webhook know only the number Meta refused (`CSM#{e164}`: the 131026 flag).

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::{get_bool, get_n, get_s, malformed, n, required_s, s, Item, Store, StoreError};
use crate::ids::{CsmId, TenantId};
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

    /// Every number of the tenant flagged undeliverable, in one query of the
    /// tenant's partition (its `CSM#` items), so a roster page costs two
    /// queries whatever its size rather than a read per CSM.
    pub async fn undeliverable_numbers(
        &self,
        tenant: &TenantId,
    ) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .query_all(&format!("T#{tenant}"), "CSM#")
            .await?
            .iter()
            .filter(|i| get_bool(i, "undeliverable").unwrap_or(false))
            .filter_map(|i| {
                get_s(i, "sk").and_then(|sk| sk.strip_prefix("CSM#").map(str::to_string))
            })
            .collect())
    }
}

/// A CSM's roster entry: the WhatsApp number the Fincelo app assigned to
/// one of its CSM ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub csm_id: CsmId,
    pub whatsapp_number: E164,
    pub updated_at: i64,
}

fn csm_sk(csm_id: &CsmId) -> String {
    format!("CSMID#{csm_id}")
}

fn parse_roster(item: &Item) -> Result<RosterEntry, StoreError> {
    let csm_id =
        CsmId::parse(required_s(item, "csm_id")?).map_err(|e| malformed(item, e.to_string()))?;
    let whatsapp_number = E164::from_wa_id(&required_s(item, "whatsapp_number")?)
        .map_err(|e| malformed(item, e.to_string()))?;
    Ok(RosterEntry {
        csm_id,
        whatsapp_number,
        updated_at: get_n(item, "updated_at").unwrap_or(0),
    })
}

impl Store {
    /// Sets a CSM's number. Returns the entry it replaced, if any.
    ///
    /// When the number changes, the undeliverable flag of the *new* number
    /// (if an earlier 131026 left one) is cleared in the same transaction:
    /// the admin has just entered that number as one registered with
    /// WhatsApp, so the next send finds out afresh. Saving the same number
    /// again changes nothing, so the flag stays until the number changes.
    pub async fn put_csm_number(
        &self,
        tenant: &TenantId,
        csm_id: &CsmId,
        number: &E164,
        now: i64,
    ) -> Result<Option<RosterEntry>, StoreError> {
        let pk = format!("T#{tenant}");
        let previous = self.get_csm(tenant, csm_id).await?;
        if previous
            .as_ref()
            .is_some_and(|p| &p.whatsapp_number == number)
        {
            return Ok(previous);
        }
        let bad = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Dynamo {
            op: "TransactWriteItems",
            detail: e.to_string(),
            source: Box::new(e),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(csm_sk(csm_id)))
            .item("tenant_id", s(tenant.as_str()))
            .item("csm_id", s(csm_id.as_str()))
            .item("whatsapp_number", s(number.as_str()))
            .item("updated_at", n(now))
            .build()
            .map_err(bad)?;
        let clear = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(format!("CSM#{number}")))
            .update_expression("REMOVE undeliverable, undeliverable_code, undeliverable_at")
            .build()
            .map_err(bad)?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(clear).build())
            .send()
            .await
            .map_err(|e| StoreError::dynamo("TransactWriteItems", e))?;
        Ok(previous)
    }

    pub async fn get_csm(
        &self,
        tenant: &TenantId,
        csm_id: &CsmId,
    ) -> Result<Option<RosterEntry>, StoreError> {
        self.get(&format!("T#{tenant}"), &csm_sk(csm_id))
            .await?
            .map(|i| parse_roster(&i))
            .transpose()
    }

    /// Removes a CSM from the roster. Returns whether there was an entry.
    /// The number's undeliverable flag is kept: it describes the number.
    pub async fn delete_csm(&self, tenant: &TenantId, csm_id: &CsmId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("T#{tenant}")))
            .key("sk", s(csm_sk(csm_id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// A tenant's whole roster (one query on the tenant's partition).
    pub async fn list_csms(&self, tenant: &TenantId) -> Result<Vec<RosterEntry>, StoreError> {
        self.query_all(&format!("T#{tenant}"), "CSMID#")
            .await?
            .iter()
            .map(parse_roster)
            .collect()
    }
}
