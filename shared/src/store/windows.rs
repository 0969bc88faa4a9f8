//! The 24-hour customer-service window per (tenant, person).
//!
//! The window belongs to the person's [`Identity`], not to one of their ids,
//! so it is found from whichever id Meta used (see [`crate::identity`]).
//!
//! Meta lets a business send free-form messages only within 24 hours of the
//! user's last message. The window item's expiry is the inbound message's own
//! timestamp + 24 h (not the time we processed it), and a conditional write
//! keeps the later expiry, so a late or replayed older message never shrinks a
//! newer window.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::ReturnValue;

use super::{applied, get_n, n, s, Item, Store, StoreError};
use crate::identity::Identity;
use crate::ids::TenantId;

/// Meta's customer-service window.
pub const WINDOW_SECS: i64 = 24 * 3600;

/// A CSM's window as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Unix seconds at which free-form sending stops.
    pub expires_at: i64,
    /// Timestamp of the newest inbound message seen.
    pub last_inbound_at: i64,
}

impl Window {
    /// Open at `now` with `margin_secs` to spare. Expiry is checked here, on
    /// read, never left to TTL deletion.
    pub fn is_open(&self, now: i64, margin_secs: i64) -> bool {
        self.expires_at - margin_secs > now
    }
}

fn window_from(item: &Item) -> Result<Window, StoreError> {
    Ok(Window {
        expires_at: super::required_n(item, "expires_at")?,
        last_inbound_at: get_n(item, "last_inbound_at").unwrap_or(0),
    })
}

fn window_pk(t: &TenantId, who: &Identity) -> String {
    format!("T#{t}#WINDOW#{}", who.key())
}

impl Store {
    /// Opens or refreshes a CSM's window from an inbound message sent at
    /// `inbound_ts`. Returns whether the window moved.
    pub async fn open_window(
        &self,
        tenant: &TenantId,
        who: &Identity,
        inbound_ts: i64,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let expires = inbound_ts + WINDOW_SECS;
        applied("UpdateItem", self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(window_pk(tenant, who)))
            .key("sk", s("WINDOW"))
            .update_expression("SET expires_at = :e, last_inbound_at = :ts, last_message_id = :m, #ttl = :e, tenant_id = :t REMOVE closed_at")
            .condition_expression("attribute_not_exists(last_inbound_at) OR last_inbound_at < :ts")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":e", n(expires))
            .expression_attribute_values(":ts", n(inbound_ts))
            .expression_attribute_values(":m", s(message_id))
            .expression_attribute_values(":t", s(tenant.as_str()))
            .send()
            .await)
    }

    pub async fn get_window(
        &self,
        tenant: &TenantId,
        who: &Identity,
    ) -> Result<Option<Window>, StoreError> {
        match self.get(&window_pk(tenant, who), "WINDOW").await? {
            Some(item) => window_from(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The windows of several CSMs in one batch read ([`Store::get_many`]; a
    /// sender batch has at most 10), strongly consistent like
    /// [`Store::get_window`].
    ///
    /// A CSM in the answer is known: `Some` window, or `None` for no item.
    /// A CSM missing from the answer has a malformed item: the caller reads
    /// it alone, so one bad item fails one alert, not the batch.
    pub async fn get_windows(
        &self,
        csms: &[(TenantId, Identity)],
    ) -> Result<HashMap<(TenantId, Identity), Option<Window>>, StoreError> {
        // DynamoDB refuses a request that names one key twice.
        let mut by_pk: HashMap<String, &(TenantId, Identity)> = HashMap::new();
        for csm in csms {
            by_pk.entry(window_pk(&csm.0, &csm.1)).or_insert(csm);
        }
        let keys: Vec<(String, String)> = by_pk
            .keys()
            .map(|pk| (pk.clone(), "WINDOW".to_string()))
            .collect();
        let mut found = self.get_many(&keys).await?;
        let mut out = HashMap::with_capacity(by_pk.len());
        for (pk, csm) in by_pk {
            let window = match found.remove(&(pk, "WINDOW".to_string())) {
                None => None,
                // Left out: the caller reads it alone, and fails one alert.
                Some(item) => match window_from(&item) {
                    Ok(w) => Some(w),
                    Err(_) => continue,
                },
            };
            out.insert(csm.clone(), window);
        }
        Ok(out)
    }

    /// Closes a window because Meta said it is closed (131047), unless an
    /// inbound message newer than `sent_at` has reopened it since.
    pub async fn close_window(
        &self,
        tenant: &TenantId,
        who: &Identity,
        sent_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        applied(
            "UpdateItem",
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(window_pk(tenant, who)))
                .key("sk", s("WINDOW"))
                .update_expression("SET expires_at = :now, closed_at = :now")
                .condition_expression(
                    "attribute_exists(pk) AND last_inbound_at <= :sent AND expires_at > :now",
                )
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":sent", n(sent_at))
                .return_values(ReturnValue::None)
                .send()
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_judged_on_read_with_a_margin() {
        let w = Window {
            expires_at: 1_000,
            last_inbound_at: 1_000 - WINDOW_SECS,
        };
        assert!(w.is_open(899, 100));
        assert!(!w.is_open(900, 100), "inside the margin counts as closed");
        assert!(
            !w.is_open(2_000, 0),
            "past expiry is closed even if the item still exists"
        );
    }
}
