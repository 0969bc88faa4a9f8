//! Delivery status per message (wamid), moving only forward.
//!
//! Meta sends `sent`, `delivered`, `read` (or `failed`) at least once and in
//! no particular order. One conditional update advances the status only when
//! the new rank is higher, so duplicates and stragglers change nothing; a
//! straggler still fills in its own timestamp (second, unconditional update,
//! only on that rare path). A status may arrive before the sender has recorded
//! its send: it is stored all the same, keyed by wamid.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    applied, get_n, get_s, n, owed, required_n, required_s, s, update_or_old, Change, Item, Store,
    StoreError, Written,
};
use crate::ids::{IdempotencyKey, TenantId};

/// One status event to apply.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub tenant: &'a TenantId,
    pub wamid: &'a str,
    /// `sent`, `delivered`, `read`, `failed`.
    pub status: &'a str,
    pub rank: u8,
    pub timestamp: i64,
    pub recipient_id: &'a str,
    /// Meta's `errors[]`, as JSON, for `failed`.
    pub errors_json: Option<String>,
    /// The idempotency key echoed in `biz_opaque_callback_data`.
    pub callback_key: Option<&'a IdempotencyKey>,
    pub now: i64,
}

/// What a status write did, and what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWritten {
    pub change: Change,
    /// Whether the message's cost had been counted before this write
    /// ([`Store::count_cost`]): read from the item as the write found it, so
    /// a message already counted costs no counting transaction.
    pub cost_counted: bool,
}

/// A message's status as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatusRecord {
    pub wamid: String,
    pub status: String,
    pub rank: u8,
    pub idempotency_key: Option<String>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub errors_json: Option<String>,
}

pub(super) fn msg_pk(t: &TenantId, wamid: &str) -> String {
    format!("T#{t}#MSG#{wamid}")
}

/// The GSI key that finds a tenant's status records by idempotency key.
pub(crate) fn callback_gsi_pk(t: &TenantId, key: &str) -> String {
    format!("T#{t}#CB#{key}")
}

impl Store {
    /// Applies a status event. Its change is [`Change::Applied`] if the status moved
    /// forward (its event is to be published; the record is marked with it
    /// until [`Store::clear_status_owed`]); [`Change::Owed`] or
    /// [`Change::InFlight`] if it had moved to this status before and that
    /// event is still marked owed; [`Change::Unchanged`] for a duplicate or a
    /// straggler. A later status replaces an earlier one's mark: its event
    /// supersedes the earlier one.
    pub async fn apply_status(&self, c: &StatusChange<'_>) -> Result<StatusWritten, StoreError> {
        let ts_attr = format!("{}_at", c.status);
        let mut update = String::from(
            "SET #status = :s, #rank = :r, #tsa = :ts, recipient_id = :rcp, tenant_id = :t, wamid = :w, #ttl = :ttl",
        );
        let mut req = self
            .status_item(c.tenant, c.wamid)
            .condition_expression("attribute_not_exists(#rank) OR #rank < :r")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_names("#tsa", &ts_attr)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":s", s(c.status))
            .expression_attribute_values(":r", n(c.rank))
            .expression_attribute_values(":ts", n(c.timestamp))
            .expression_attribute_values(":rcp", s(c.recipient_id))
            .expression_attribute_values(":t", s(c.tenant.as_str()))
            .expression_attribute_values(":w", s(c.wamid))
            .expression_attribute_values(":ttl", self.retained_until(c.now));
        if let Some(errors) = &c.errors_json {
            update.push_str(", errors = :err");
            req = req.expression_attribute_values(":err", s(errors));
        }
        if let Some(key) = c.callback_key {
            update.push_str(", idempotency_key = :k, gsi1pk = :g, gsi1sk = :gs");
            req = req
                .expression_attribute_values(":k", s(key.as_str()))
                .expression_attribute_values(":g", s(callback_gsi_pk(c.tenant, key.as_str())))
                .expression_attribute_values(":gs", s(format!("MSG#{}", c.wamid)));
        }
        update.push_str(", owed_event = :s, owed_at = :now");
        req = req.expression_attribute_values(":now", n(c.now));
        let req = req
            .update_expression(update)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        let old = match update_or_old(req).await? {
            Written::Applied(old) => {
                return Ok(StatusWritten {
                    change: Change::Applied,
                    cost_counted: old.contains_key("cost_counted"),
                })
            }
            Written::Refused(old) => old,
        };
        self.fill_straggler_timestamp(c, &ts_attr).await?;
        // The mark names the status the record holds (every status write
        // replaces it), so a matching mark means the record still holds
        // this status and its event was not published yet.
        Ok(StatusWritten {
            change: owed(
                get_s(&old, "owed_event").as_deref() == Some(c.status),
                get_n(&old, "owed_at"),
                c.now,
            ),
            cost_counted: old.contains_key("cost_counted"),
        })
    }

    /// Clears the mark of a status whose event was published. `false` if
    /// there was none to clear (a later status replaced it meanwhile).
    pub async fn clear_status_owed(
        &self,
        tenant: &TenantId,
        wamid: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let req = self
            .status_item(tenant, wamid)
            .update_expression("REMOVE owed_event, owed_at")
            .condition_expression("owed_event = :s")
            .expression_attribute_values(":s", s(status));
        applied("UpdateItem", req.send().await)
    }

    /// An update of a message's status item.
    fn status_item(&self, tenant: &TenantId, wamid: &str) -> UpdateItemFluentBuilder {
        self.update(msg_pk(tenant, wamid), "STATUS")
    }

    /// A status that arrived after a later one keeps its timestamp for the
    /// timeline without moving the status back.
    async fn fill_straggler_timestamp(
        &self,
        c: &StatusChange<'_>,
        ts_attr: &str,
    ) -> Result<(), StoreError> {
        let mut update = String::from("SET #tsa = if_not_exists(#tsa, :ts)");
        let mut req = self
            .status_item(c.tenant, c.wamid)
            .expression_attribute_names("#tsa", ts_attr)
            .expression_attribute_values(":ts", n(c.timestamp));
        if let Some(errors) = &c.errors_json {
            update.push_str(", errors = if_not_exists(errors, :err)");
            req = req.expression_attribute_values(":err", s(errors));
        }
        if let Some(key) = c.callback_key {
            update.push_str(", idempotency_key = if_not_exists(idempotency_key, :k), gsi1pk = if_not_exists(gsi1pk, :g), gsi1sk = if_not_exists(gsi1sk, :gs)");
            req = req
                .expression_attribute_values(":k", s(key.as_str()))
                .expression_attribute_values(":g", s(callback_gsi_pk(c.tenant, key.as_str())))
                .expression_attribute_values(":gs", s(format!("MSG#{}", c.wamid)));
        }
        req.update_expression(update)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::dynamo("UpdateItem", e))
    }

    pub async fn get_message_status(
        &self,
        tenant: &TenantId,
        wamid: &str,
    ) -> Result<Option<MessageStatusRecord>, StoreError> {
        self.get(&msg_pk(tenant, wamid), "STATUS")
            .await?
            .map(|i| parse_status(&i))
            .transpose()
    }

    /// Every status record whose status webhook echoed this idempotency key.
    /// This is how an ambiguous send is resolved: if Meta reported a status
    /// for the key, Meta has the message.
    pub async fn statuses_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Vec<MessageStatusRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :g")
            .expression_attribute_values(":g", s(callback_gsi_pk(tenant, key.as_str())))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        out.items().iter().map(parse_status).collect()
    }
}

fn parse_status(item: &Item) -> Result<MessageStatusRecord, StoreError> {
    Ok(MessageStatusRecord {
        wamid: required_s(item, "wamid")?,
        status: required_s(item, "status")?,
        rank: u8::try_from(required_n(item, "rank")?).unwrap_or(0),
        idempotency_key: get_s(item, "idempotency_key"),
        sent_at: get_n(item, "sent_at"),
        delivered_at: get_n(item, "delivered_at"),
        read_at: get_n(item, "read_at"),
        failed_at: get_n(item, "failed_at"),
        errors_json: match item.get("errors") {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        },
    })
}
