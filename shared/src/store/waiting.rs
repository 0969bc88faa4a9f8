//! Alerts waiting for their template, held outside the send queue.
//!
//! Meta takes 24 to 72 hours to approve a template, and alerts flow from day
//! one. An alert whose template is not approved leaves the send queue (a
//! message kept there would be received every few minutes and redriven to
//! the DLQ after `maxReceiveCount` receives, about eight hours) and is held
//! here instead: one item per alert, in the tenant's waiting partition,
//! sorted by the time upstream enqueued it, beside its ledger entry in state
//! `waiting`. The sender's release pass ([`crate::sender::release`]) sends,
//! parks or keeps each one.
//!
//! | item | `pk` | `sk` | other keys |
//! |---|---|---|---|
//! | waiting alert | `T#{tenant}#WAITING` | `W#{enqueued_ms:013}#{idempotency_key}` | `gsi1pk` = `T#{tenant}#WAITFOR#{identity}` (a CSM's waiting alerts, for the moment they write), `gsi1sk` = `sk` |
//! | release lease | `T#{tenant}#WAITING` | `LOCK` | one pass at a time per tenant |
//!
//! The ledger is the truth about an alert; a waiting item is an index entry
//! that points at it. An item whose ledger has moved on (sent, parked) is
//! stale, and the release pass removes it after publishing the ledger's
//! outcome again (so the item also stands for an outcome not yet known to be
//! published).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{
    applied, condition_failed, get_bool, get_n, get_s, n, required_n, required_s, s, Item, Store,
    StoreError,
};
use crate::identity::Identity;
use crate::ids::{IdempotencyKey, TenantId};

/// One alert waiting for its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingAlert {
    /// The item's sort key (enqueue time, then key): the release order.
    pub sk: String,
    pub key: IdempotencyKey,
    /// The template the seed's table chose for it, and its language.
    pub template: String,
    pub language: String,
    /// Who it goes to (their window may let it go as free-form text).
    pub who: Identity,
    /// Whether it can go as free-form text if the CSM opens a window.
    pub has_text: bool,
    /// Unix seconds after which it is parked (`deliver_by`, or the wait limit).
    pub deadline: i64,
    /// When upstream enqueued it (unix milliseconds).
    pub enqueued_ms: i64,
}

fn waiting_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#WAITING")
}

fn csm_gsi_pk(tenant: &TenantId, who: &Identity) -> String {
    format!("T#{tenant}#WAITFOR#{}", who.key())
}

/// The sort key of a waiting alert: enqueue time first, so a query returns
/// the alerts in the order upstream sent them.
pub fn waiting_sk(enqueued_ms: i64, key: &IdempotencyKey) -> String {
    format!("W#{:013}#{key}", enqueued_ms.max(0))
}

impl Store {
    /// Holds an alert until its template is approved (idempotent: the same
    /// alert held twice is one item).
    pub async fn put_waiting(&self, tenant: &TenantId, w: &WaitingAlert) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(waiting_pk(tenant)))
            .item("sk", s(&w.sk))
            .item("ikey", s(w.key.as_str()))
            .item("template", s(&w.template))
            .item("language", s(&w.language))
            .item("who", s(w.who.key()))
            .item("has_text", AttributeValue::Bool(w.has_text))
            .item("deadline", n(w.deadline))
            .item("enqueued_ms", n(w.enqueued_ms))
            .item("gsi1pk", s(csm_gsi_pk(tenant, &w.who)))
            .item("gsi1sk", s(&w.sk))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", e))?;
        Ok(())
    }

    /// A tenant's waiting alerts in release order, up to `limit` after
    /// `after` (an item's `sk`), strongly consistent.
    pub async fn list_waiting(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: i32,
    ) -> Result<Vec<WaitingAlert>, StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :w)")
            .expression_attribute_values(":pk", s(waiting_pk(tenant)))
            .expression_attribute_values(":w", s("W#"))
            .limit(limit);
        if let Some(after) = after {
            q = q.exclusive_start_key("pk", s(waiting_pk(tenant)));
            q = q.exclusive_start_key("sk", s(after));
        }
        let out = q.send().await.map_err(|e| StoreError::dynamo("Query", e))?;
        out.items().iter().map(parse_waiting).collect()
    }

    /// How many alerts a tenant holds for templates (the status API).
    pub async fn count_waiting(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :w)")
                .expression_attribute_values(":pk", s(waiting_pk(tenant)))
                .expression_attribute_values(":w", s("W#"))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }

    /// Whether a CSM has alerts waiting (read when they write, since their
    /// window lets those alerts go as free-form text now). The index is
    /// eventually consistent: an alert held in the same second may be missed
    /// here and is then found by the next scheduled sweep.
    pub async fn csm_has_waiting(
        &self,
        tenant: &TenantId,
        who: &Identity,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :g")
            .expression_attribute_values(":g", s(csm_gsi_pk(tenant, who)))
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        Ok(out.count > 0)
    }

    /// Removes a waiting item (its alert left the waiting state).
    pub async fn delete_waiting(&self, tenant: &TenantId, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(waiting_pk(tenant)))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        Ok(())
    }

    /// Takes the tenant's release lease: `true` if this caller now runs the
    /// release pass. Otherwise the holder is asked to run its pass once more
    /// (`rerun`), so what this caller wanted released is not missed; `false`
    /// then means the holder will do it.
    pub async fn acquire_release(
        &self,
        tenant: &TenantId,
        holder: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        // Two rounds: the lease may be given back between the two writes.
        for _ in 0..2 {
            let took = applied(
                "UpdateItem",
                self.update(waiting_pk(tenant), "LOCK")
                    .update_expression("SET holder = :h, lease_until = :l, rerun = :f")
                    .condition_expression("attribute_not_exists(holder) OR lease_until < :now")
                    .expression_attribute_values(":h", s(holder))
                    .expression_attribute_values(":l", n(now + lease_secs))
                    .expression_attribute_values(":f", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", n(now))
                    .send()
                    .await,
            )?;
            if took {
                return Ok(true);
            }
            let asked = applied(
                "UpdateItem",
                self.update(waiting_pk(tenant), "LOCK")
                    .update_expression("SET rerun = :t")
                    .condition_expression("attribute_exists(holder) AND lease_until >= :now")
                    .expression_attribute_values(":t", AttributeValue::Bool(true))
                    .expression_attribute_values(":now", n(now))
                    .send()
                    .await,
            )?;
            if asked {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Gives the release lease back. Returns whether another caller asked
    /// for a rerun meanwhile (the holder then runs its pass again).
    pub async fn finish_release(
        &self,
        tenant: &TenantId,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .update(waiting_pk(tenant), "LOCK")
            .update_expression("REMOVE holder, lease_until SET rerun = :f")
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .attributes
                .as_ref()
                .and_then(|a| get_bool(a, "rerun"))
                .unwrap_or(false)),
            // Lost to a taker after the lease ran out: its pass covers ours.
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", e)),
        }
    }
}

fn parse_waiting(item: &Item) -> Result<WaitingAlert, StoreError> {
    let bad = |what: &str| super::malformed(item, format!("invalid {what}"));
    Ok(WaitingAlert {
        sk: required_s(item, "sk")?,
        key: IdempotencyKey::parse(required_s(item, "ikey")?).map_err(|_| bad("ikey"))?,
        template: required_s(item, "template")?,
        language: get_s(item, "language").unwrap_or_else(|| "en".into()),
        who: Identity::from_key(&required_s(item, "who")?).ok_or_else(|| bad("who"))?,
        has_text: get_bool(item, "has_text").unwrap_or(false),
        deadline: required_n(item, "deadline")?,
        enqueued_ms: get_n(item, "enqueued_ms").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sort_key_orders_by_enqueue_time_first() {
        let k = |s: &str| IdempotencyKey::parse(s).expect("key");
        let early = waiting_sk(1_764_000_000_000, &k("zzz"));
        let late = waiting_sk(1_764_000_000_001, &k("aaa"));
        assert!(early < late);
        assert!(
            waiting_sk(5, &k("a")) < waiting_sk(40, &k("a")),
            "zero-padded"
        );
    }
}
