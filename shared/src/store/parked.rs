//! The tenant's parked alerts, listable by tenant.
//!
//! A parked alert's request sits in the send DLQ with its reason, but the
//! DLQ is one queue for every tenant and cannot be listed by tenant or
//! searched by key. So the sender also writes one item per parked alert
//! here, in the tenant's partition; the operator's `fwa parked` lists it
//! and a redrive removes it. The ledger stays the truth about the alert
//! (state `parked`, with its reason); this item is the index.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | parked alert | `T#{tenant}#PARKED` | `K#{idempotency_key}` |

use super::{get_n, get_s, n, required_n, required_s, s, Item, Store, StoreError};
use crate::ids::{IdempotencyKey, TenantId};

/// One parked alert as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedAlert {
    pub idempotency_key: String,
    /// The machine-readable reason, e.g. `template_rejected`.
    pub reason: String,
    pub detail: String,
    /// Meta's error code, when Meta gave the reason.
    pub meta_code: Option<i64>,
    /// Unix seconds.
    pub parked_at: i64,
}

fn parked_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#PARKED")
}

fn parked_sk(key: &IdempotencyKey) -> String {
    format!("K#{key}")
}

impl Store {
    /// Records a parked alert in the tenant's list (idempotent).
    pub async fn put_parked(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        reason: &str,
        detail: &str,
        meta_code: Option<i64>,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(parked_pk(tenant)))
            .item("sk", s(parked_sk(key)))
            .item("ikey", s(key.as_str()))
            .item("reason", s(reason))
            .item("detail", s(detail))
            .item("parked_at", n(at));
        if let Some(code) = meta_code {
            req = req.item("meta_code", n(code));
        }
        req.send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", e))?;
        Ok(())
    }

    /// The tenant's parked alerts, newest first.
    pub async fn list_parked(&self, tenant: &TenantId) -> Result<Vec<ParkedAlert>, StoreError> {
        let mut out: Vec<ParkedAlert> = self
            .query_all(&parked_pk(tenant), "K#")
            .await?
            .iter()
            .map(parse_parked)
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|p| std::cmp::Reverse(p.parked_at));
        Ok(out)
    }

    /// Removes an alert from the list (it was redriven).
    pub async fn delete_parked(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(parked_pk(tenant)))
            .key("sk", s(parked_sk(key)))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        Ok(())
    }
}

fn parse_parked(item: &Item) -> Result<ParkedAlert, StoreError> {
    Ok(ParkedAlert {
        idempotency_key: required_s(item, "ikey")?,
        reason: required_s(item, "reason")?,
        detail: get_s(item, "detail").unwrap_or_default(),
        meta_code: get_n(item, "meta_code"),
        parked_at: required_n(item, "parked_at")?,
    })
}
