//! A CSM's responses to an alert: one item per response, beside the alert's
//! ledger item (`T#{tenant}#SEND#{key}`, sort key `RESP#{message_id}`).
//!
//! The item is the response's record for the timeline and its dedup: it is
//! written once, conditionally, with the mark that its `alert.response`
//! event is owed ([`crate::owed`]), exactly as an inbound message's
//! sighting is ([`super::dedup`]). Meta's replay of the tap finds it and
//! publishes nothing, unless the event is still owed. Kept as long as the
//! ledger item (`ttl`, [`super::retention`]): it is the alert's history. The text of a reply
//! is not stored (as no inbound text is): it travels only in the events,
//! and Meta's retry of the body carries it again.

use super::{
    applied, get_n, get_s, n, owed, s, update_or_old, Change, Item, Store, StoreError, Written,
};
use crate::ids::{IdempotencyKey, TenantId};

/// One response, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRecord {
    pub message_id: String,
    /// `acknowledge`, `snooze`, `escalate`, `call_me`, `reply`.
    pub action: String,
    /// The alert's wamid the response answered.
    pub wamid: Option<String>,
    /// Who answered, as the event tells it (`EventCsm` as JSON).
    pub csm_json: String,
    /// Meta's time of the response (unix seconds).
    pub at: i64,
    pub snooze_until: Option<i64>,
}

fn resp_pk(t: &TenantId, key: &IdempotencyKey) -> String {
    format!("T#{t}#SEND#{key}")
}

fn resp_sk(message_id: &str) -> String {
    format!("RESP#{message_id}")
}

impl Store {
    /// Records a response once, marked as owing its event: [`Change::Applied`]
    /// the first time, [`Change::Owed`] / [`Change::InFlight`] while its mark
    /// stays, [`Change::Unchanged`] once it is cleared. Returns the record as
    /// stored (the first write's values, e.g. its `snooze_until`).
    pub async fn record_response(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        r: &ResponseRecord,
        now: i64,
    ) -> Result<(Change, ResponseRecord), StoreError> {
        let mut update = String::from(
            "SET #action = :a, csm = :c, #at = :at, created_at = :now, owed_at = :now, #ttl = :ttl",
        );
        let mut req = self
            .update(resp_pk(tenant, key), resp_sk(&r.message_id))
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_names("#action", "action")
            .expression_attribute_names("#at", "at")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.retained_until(now))
            .expression_attribute_values(":a", s(&r.action))
            .expression_attribute_values(":c", s(&r.csm_json))
            .expression_attribute_values(":at", n(r.at))
            .expression_attribute_values(":now", n(now));
        if let Some(w) = &r.wamid {
            update.push_str(", wamid = :w");
            req = req.expression_attribute_values(":w", s(w));
        }
        if let Some(u) = r.snooze_until {
            update.push_str(", snooze_until = :u");
            req = req.expression_attribute_values(":u", n(u));
        }
        Ok(match update_or_old(req.update_expression(update)).await? {
            Written::Applied(_) => (Change::Applied, r.clone()),
            Written::Refused(old) => {
                let at = get_n(&old, "owed_at");
                let stored = parse_response(&old).unwrap_or_else(|| r.clone());
                (owed(at.is_some(), at, now), stored)
            }
        })
    }

    /// Clears a response's mark once its event was published.
    pub async fn clear_response_owed(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let req = self
            .update(resp_pk(tenant, key), resp_sk(message_id))
            .update_expression("REMOVE owed_at")
            .condition_expression("attribute_exists(owed_at)");
        applied("UpdateItem", req.send().await)
    }

    /// Every response to an alert, oldest first.
    pub async fn responses_of(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Vec<ResponseRecord>, StoreError> {
        let mut out: Vec<ResponseRecord> = self
            .query_all(&resp_pk(tenant, key), "RESP#")
            .await?
            .iter()
            .filter_map(parse_response)
            .collect();
        out.sort_by_key(|r| r.at);
        Ok(out)
    }
}

fn parse_response(item: &Item) -> Option<ResponseRecord> {
    Some(ResponseRecord {
        message_id: get_s(item, "sk")?.strip_prefix("RESP#")?.to_string(),
        action: get_s(item, "action")?,
        wamid: get_s(item, "wamid"),
        csm_json: get_s(item, "csm").unwrap_or_default(),
        at: get_n(item, "at")?,
        snooze_until: get_n(item, "snooze_until"),
    })
}
