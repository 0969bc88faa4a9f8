//! The DynamoDB adapter: one table, every item keyed under its tenant.
//!
//! # Key patterns and access patterns
//!
//! Every key that holds tenant data starts with `T#{tenant_id}`, and the tenant
//! is always the one proven by a signature or an authenticated caller, so one
//! tenant's request cannot name another tenant's items. Items that are written
//! at message rate get a partition of their own (`pk` includes the message or
//! key), so a busy tenant never makes a hot partition.
//!
//! | item | `pk` | `sk` | other keys | written by | read by (access pattern) |
//! |---|---|---|---|---|---|
//! | tenant registry | `TENANTS` | `T#{tenant}` | | same transaction as the config | scheduled reconcile: every tenant (query) |
//! | tenant config | `T#{tenant}` | `CONFIG` | | admin / provisioning (transaction with its aliases) | every function: tenant by id (cached) |
//! | alias: phone number id | `PNID#{phone_number_id}` | `ALIAS` | | same transaction | webhook POST: tenant by `metadata.phone_number_id` |
//! | alias: WABA id | `WABA#{waba_id}` | `ALIAS` | | same transaction | webhook POST: tenant by `entry[].id` |
//! | alias: verify token | `VERIFY#{sha256(verify_token)}` | `ALIAS` | | same transaction | webhook GET handshake: keyed lookup, then a constant-time compare |
//! | 24-hour window | `T#{tenant}#WINDOW#{identity}` | `WINDOW` | `ttl` = expiry | webhook (inbound message; conditional: never shrinks), sender (closes on 131047) | sender: is the CSM's window open? |
//! | send ledger | `T#{tenant}#SEND#{idempotency_key}` | `LEDGER` | `gsi1pk` = `T#{tenant}#REF#{response_ref}` (set by the first claim), `ttl` (`RETENTION_DAYS` after its last claim or final outcome) | sender (conditional claim, then outcome) | sender (dedup, resume), timeline; webhook: the alert a tapped payload names (GSI by reference, [`crate::responses`]) |
//! | alert response | `T#{tenant}#SEND#{idempotency_key}` | `RESP#{message_id}` | `ttl` (`RETENTION_DAYS` after it) | webhook (conditional: once per response, with its owed event) | timeline; see [`responses`] |
//! | message status | `T#{tenant}#MSG#{wamid}` | `STATUS` | `gsi1pk` = `T#{tenant}#CB#{idempotency_key}`, `ttl` (`RETENTION_DAYS` after its last status, [`retention`]) | webhook (conditional: status only moves forward) | timeline; sender resolving an ambiguous send (GSI by key); webhook: the alert a quoted reply (`context.id`) answers |
//! | cost counters | `T#{tenant}#COST#{shard}`, shard 0 to 7 from the wamid (`T#{tenant}#COST` before the sharding, still read) | `DAY#{yyyy-mm-dd}` (UTC, of Meta's delivery time) | `ttl` = day + 400 days (13 months) | webhook: one transaction per delivered priced message, an atomic `ADD` on the counter `n#{category}#{type}#{country}` with a `cost_counted` mark on the message status item, conditional on no mark (so each message counts once; see [`costs`]) | admin costs: a month's days, summed over the shards (a query `begins_with DAY#{yyyy-mm}-` per shard) |
//! | template status | `T#{tenant}` | `TEMPLATE#{name}#{language}` | | template function (submit, reconcile), webhook (status updates) | sender (is it APPROVED? cached), status API: all of a tenant's templates (query `begins_with`) |
//! | account standing | `T#{tenant}` | `ACCOUNT` | | webhook (account webhooks: one conditional update per aspect, ordered by Meta's time, with its owed event; see [`account`]) | status API |
//! | CSM roster entry | `T#{tenant}` | `CSMID#{csm_id}` | | admin API (`PUT`/`DELETE .../csms/{csm_id}`) | admin API: one CSM (get), the roster (query `begins_with`) |
//! | send hold | `T#{tenant}` | `HOLD` | | sender (Meta's 131042: started by a conditional put, the probe taken by a conditional update, ended by a conditional delete) | sender: are the tenant's sends held? (cached for seconds); status API; see [`holds`] |
//! | number reachability | `T#{tenant}` | `CSM#{e164}` | | sender and webhook (flag on 131026), admin API (clears it when a CSM's number changes to this one) | sender, admin API: is the number flagged undeliverable? |
//! | last webhook | `T#{tenant}#ACTIVITY` | `WEBHOOK` | | webhook (at most one conditional write per verified body, throttled per instance) | status API |
//! | parked alerts | `T#{tenant}#ACTIVITY` | `DAY#{days since epoch}` | `ttl` = day + 15 days | sender (atomic `ADD` when it parks an alert) | status API: sum of the DLQ's 14 retained days (query) |
//! | parked alert | `T#{tenant}#PARKED` | `K#{idempotency_key}` | | sender (when it parks an alert, after the DLQ copy) | `fwa parked` (the tenant's list), redrive (removes it); see [`parked`] |
//! | waiting alert, release lease | `T#{tenant}#WAITING` | `W#{enqueued_ms}#{key}`, `LOCK` | `gsi1pk` = `T#{tenant}#WAITCSM#{e164}` | sender (an alert whose template is not approved; the release pass) | sender's release pass (in enqueue order), webhook (does a CSM who wrote have waiting alerts?), status API (count); see [`waiting`] |
//! | alias of a person | `T#{tenant}#ALIAS#{alias}` | `ALIAS` | | admin (a roster number), sender (a send's answer names another `wa_id`), webhook (an inbound or status names a BSUID with a number; an id change) | sender and webhook: whose window? (see [`identities`]) |
//! | what Meta told us of a person | `T#{tenant}#WHO#{identity}` | `PROFILE` | | webhook, sender | admin (the roster), events |
//! | webhook dedup | `T#{tenant}#DEDUP#{kind}#{id}` | `DEDUP` | `ttl` = +7 days | webhook (conditional put) | webhook: has this inbound message been acted on? |
//!
//! TTL deletion in DynamoDB is lazy (an item may outlive its `ttl` by days)
//! and the emulator never deletes at all, so every reader checks expiry
//! itself; `ttl` only keeps the table small.

mod account;
mod activity;
mod costs;
mod dedup;
mod holds;
mod identities;
mod ledger;
mod messages;
mod parked;
mod rate;
mod recipients;
mod responses;
mod retention;
mod roster;
mod templates;
mod tenants;
mod waiting;
mod windows;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use thiserror::Error;

pub use account::{account_mark, AccountAspect, AccountFact};
pub use activity::{Activity, DLQ_RETENTION_DAYS};
pub use costs::{CostCount, CostDay, COST_SHARDS, COST_TTL_SECS};
pub use holds::SendHold;
pub use identities::{Linked, Profile};
pub use ledger::{
    AmbiguousRecord, ClaimOutcome, FinalRecord, LedgerEntry, LedgerState, Outcome, RefusedSend,
    SendMode, SentRecord,
};
pub use messages::{MessageStatusRecord, StatusChange, StatusWritten};
pub use parked::ParkedAlert;
pub use rate::{Claim, Claimed, Hint, NumberRate, Slots, HORIZON};
pub use recipients::{Known, Named};
pub use responses::ResponseRecord;
pub use retention::Retention;
pub use roster::RosterEntry;
pub use templates::{TemplateChangeAt, TemplateRecord, TemplateStatusChange};
pub use tenants::verify_token_digest;
pub use tenants::{AliasKind, TenantRecord};
pub use waiting::{waiting_sk, WaitingAlert};
pub use windows::{Window, WINDOW_SECS};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Why a store operation failed. The SDK error is kept as the source.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB {op} failed: {detail}")]
    Dynamo {
        op: &'static str,
        /// The SDK's whole error chain (service code and message), for logs.
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A phone number id, WABA id or verify token is already another
    /// tenant's: the write was refused as a whole.
    #[error("an alias of tenant {tenant} (phone number id, WABA id or verify token) belongs to another tenant")]
    AliasTaken { tenant: String },
    #[error("stored item {pk}/{sk} is malformed: {reason}")]
    Malformed {
        pk: String,
        sk: String,
        reason: String,
    },
}

impl StoreError {
    fn dynamo<E, R>(op: &'static str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error
            + aws_sdk_dynamodb::error::ProvideErrorMetadata
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let detail = match err.as_service_error() {
            Some(se) => format!(
                "{}: {}",
                se.code().unwrap_or("unknown"),
                se.message().unwrap_or("")
            ),
            None => err.to_string(),
        };
        StoreError::Dynamo {
            op,
            detail,
            source: Box::new(err),
        }
    }
}

/// The table and its client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// How long an alert's history is kept ([`retention`]).
    retention: Retention,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, retention: Retention) -> Self {
        Store {
            client,
            table: table.into(),
            retention,
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every item of a partition whose sort key starts with `sk_prefix`,
    /// following DynamoDB's pagination (strongly consistent).
    async fn query_all(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(sk_prefix))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// An UpdateItem of one item, to which each write adds its expressions.
    fn update(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// The items at `keys` (`(pk, sk)`, repeats allowed), read consistently
    /// in BatchGetItem requests of 100 keys (DynamoDB's maximum, and it
    /// refuses a request naming one key twice). A key DynamoDB leaves
    /// unprocessed (throttling) is read on its own, so the answer is
    /// complete: a key missing from it has no item. One place for the batch
    /// read that windows, aliases and recipients all need.
    async fn get_many(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut wanted: Vec<&(String, String)> = keys.iter().collect();
        wanted.sort();
        wanted.dedup();
        let mut found = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(100) {
            let mut request =
                aws_sdk_dynamodb::types::KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(HashMap::from([
                    ("pk".to_string(), s(pk.as_str())),
                    ("sk".to_string(), s(sk.as_str())),
                ]));
            }
            let request = request.build().map_err(|e| StoreError::Dynamo {
                op: "BatchGetItem",
                detail: e.to_string(),
                source: Box::new(e),
            })?;
            let answer = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("BatchGetItem", e))?;
            for item in answer
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                if let (Some(pk), Some(sk)) = (get_s(&item, "pk"), get_s(&item, "sk")) {
                    found.insert((pk, sk), item);
                }
            }
            for key in answer
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default()
            {
                let (Some(pk), Some(sk)) = (get_s(&key, "pk"), get_s(&key, "sk")) else {
                    continue;
                };
                if let Some(item) = self.get(&pk, &sk).await? {
                    found.insert((pk, sk), item);
                }
            }
        }
        Ok(found)
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        Ok(out.item)
    }
}

/// The outcome of a conditional write: `true` if it was applied, `false` if
/// its condition did not hold (the duplicate, the straggler, the stale
/// update), an error for anything else. Every conditional write goes through
/// here, so "condition failed" means the same thing everywhere.
fn applied<O, E, R>(op: &'static str, res: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(StoreError::dynamo(op, e)),
    }
}

/// Whether a request failed only because its condition did not hold.
fn condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// What a conditional change of a record found.
///
/// Every change that has an event is written together with a mark saying
/// its event is owed, in the same conditional write (an outbox on the
/// record), and the mark is cleared once the event is published (see
/// [`crate::owed`]). A retry of the same change is refused by the write,
/// which returns the record as it was: its mark tells whether the event is
/// still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It applied: its event is to be published.
    Applied,
    /// It had applied before and its event is still owed, by a writer gone
    /// longer than [`OWED_LEASE_SECS`] (crashed, or refused by the events
    /// queue): publish the event now.
    Owed,
    /// It had applied before and its writer may be publishing its event
    /// right now (its mark is younger than [`OWED_LEASE_SECS`]): fail this
    /// attempt, so its retry comes after the writer is done or gone.
    InFlight,
    /// Nothing to do: a duplicate, a straggler or a stale update.
    Unchanged,
}

/// How long the writer of a change has to publish its event and clear its
/// mark: longer than the webhook's 10 s timeout, so a mark this old was
/// left by a writer that crashed or whose publish was refused.
pub const OWED_LEASE_SECS: i64 = 30;

/// What a refused change found: this change's mark, written at `owed_at`.
fn owed(mark_matches: bool, owed_at: Option<i64>, now: i64) -> Change {
    match (mark_matches, owed_at) {
        (false, _) => Change::Unchanged,
        (true, Some(at)) if at + OWED_LEASE_SECS > now => Change::InFlight,
        (true, _) => Change::Owed,
    }
}

/// A conditional UpdateItem's result: applied (with the item as it was, if
/// the request asked for `ReturnValues`), or refused with the item as it was
/// (DynamoDB returns it with the refusal, at no extra request).
enum Written {
    Applied(Item),
    Refused(Item),
}

async fn update_or_old(
    req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<Written, StoreError> {
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
    match req
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
    {
        Ok(out) => Ok(Written::Applied(out.attributes.unwrap_or_default())),
        Err(e) => match e.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                Ok(Written::Refused(ccf.item().cloned().unwrap_or_default()))
            }
            _ => Err(StoreError::dynamo("UpdateItem", e)),
        },
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n(item: &Item, key: &str) -> Option<i64> {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(crate) fn get_bool(item: &Item, key: &str) -> Option<bool> {
    match item.get(key) {
        Some(AttributeValue::Bool(v)) => Some(*v),
        _ => None,
    }
}

fn malformed(item: &Item, reason: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        pk: get_s(item, "pk").unwrap_or_default(),
        sk: get_s(item, "sk").unwrap_or_default(),
        reason: reason.into(),
    }
}

fn required_s(item: &Item, key: &str) -> Result<String, StoreError> {
    get_s(item, key).ok_or_else(|| malformed(item, format!("missing string attribute {key}")))
}

fn required_n(item: &Item, key: &str) -> Result<i64, StoreError> {
    get_n(item, key).ok_or_else(|| malformed(item, format!("missing number attribute {key}")))
}
