//! The send ledger: one item per idempotency key, the heart of exactly-once.
//!
//! States and who moves them (all moves are conditional writes):
//!
//! ```text
//!            claim                 send accepted
//!  (none) ─────────► claimed ─────────────────────► sent ──(Meta: 131047 later)──► claimed (force template)
//!   retry ─────────►    │                                 └─(Meta: another code the sender acts on, later)──► claimed
//!  (once retry_at       │  transient error (Meta said no)  ► retry
//!   has passed)         │  131049, or the tenant is held   ► retry (with retry_at for 131049)
//!                       │  timeout / lost answer           ► ambiguous ──(decide_at passed, no status seen)──► claimed
//!                       │                                              └─(a status webhook echoed the key)──► sent
//!                       │  lease ran out (instance died)   = treated like ambiguous
//!                       │  template not approved yet       ► waiting ──(release pass)──► claimed
//!                       └─ permanent error / stale         ► parked | expired
//! ```
//!
//! A `retry` with `retry_at` (Meta's per-user limit, 131049) cannot be
//! claimed before that time: a copy of the request that arrives sooner
//! finds the key taken and waits, so no path sends it early.
//!
//! A `waiting` alert is held outside the send queue until its template is
//! approved, its CSM opens a window, or its deadline passes (see
//! [`super::waiting`] and the sender's release pass).
//!
//! An operator's redrive (the admin API's `POST .../redrive`) is the one
//! move out of `parked`: `parked ─(redrive)─► retry`, which the next claim
//! accepts like any retry. It is marked on the item (`redriven_at`, the
//! reason it was parked for, and `redrive_pending` until its request is back
//! on the send queue), so a redrive that stopped half way can be finished.
//!
//! `claim_token` makes every write after the claim a compare-and-swap, so an
//! instance whose lease ran out cannot overwrite the outcome of the instance
//! that took over.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{applied, get_bool, get_n, get_s, n, required_s, s, Item, Store, StoreError};
use crate::events::Fallback;
use crate::ids::{IdempotencyKey, TenantId};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    /// An instance holds the key and may be talking to Meta right now.
    Claimed,
    /// Meta accepted the message; `wamid` is set.
    Sent,
    /// The last attempt failed in a way that proves Meta did not take it.
    Retry,
    /// The last attempt may or may not have reached Meta.
    Ambiguous,
    /// `deliver_by` passed before it could be sent.
    Expired,
    /// Permanently failed; a copy with the reason is in the DLQ.
    Parked,
    /// Held (outside the send queue) until its template is approved.
    Waiting,
}

/// What became of an alert, as far as anyone outside the sender hears: the
/// ledger states a `send.outcome` event reports. One name per state, on the
/// ledger item (`state`) and in the event (`outcome`) alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Sent,
    Expired,
    Parked,
    Ambiguous,
    Waiting,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Expired => "expired",
            Outcome::Parked => "parked",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Waiting => "waiting",
        }
    }
}

impl LedgerState {
    /// Every state, for [`LedgerState::parse`].
    const ALL: [LedgerState; 7] = [
        LedgerState::Claimed,
        LedgerState::Sent,
        LedgerState::Retry,
        LedgerState::Ambiguous,
        LedgerState::Expired,
        LedgerState::Parked,
        LedgerState::Waiting,
    ];

    /// The `state` attribute's value; a state that is an outcome has the
    /// outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Claimed => "claimed",
            LedgerState::Retry => "retry",
            LedgerState::Sent => Outcome::Sent.as_str(),
            LedgerState::Ambiguous => Outcome::Ambiguous.as_str(),
            LedgerState::Expired => Outcome::Expired.as_str(),
            LedgerState::Parked => Outcome::Parked.as_str(),
            LedgerState::Waiting => Outcome::Waiting.as_str(),
        }
    }

    /// The outcome this state reports; `None` while the sender is still at
    /// it (`claimed`, `retry`).
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            LedgerState::Claimed | LedgerState::Retry => None,
            LedgerState::Sent => Some(Outcome::Sent),
            LedgerState::Ambiguous => Some(Outcome::Ambiguous),
            LedgerState::Expired => Some(Outcome::Expired),
            LedgerState::Parked => Some(Outcome::Parked),
            LedgerState::Waiting => Some(Outcome::Waiting),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Nothing more will ever be sent for this key (short of a 131047 hand-back).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            LedgerState::Sent | LedgerState::Expired | LedgerState::Parked
        )
    }
}

/// How an alert went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    FreeForm,
    Template,
}

impl SendMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SendMode::FreeForm => "free_form",
            SendMode::Template => "template",
        }
    }
}

/// One ledger item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub key: String,
    pub state: LedgerState,
    pub mode: Option<SendMode>,
    pub template: Option<String>,
    pub wamid: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub claim_token: Option<String>,
    pub lease_until: i64,
    pub decide_at: Option<i64>,
    pub force_template: bool,
    pub request_json: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
    /// Set once the alert waited for its template: which one, since when,
    /// and when it is parked if still waiting.
    pub waiting_for: Option<String>,
    pub waiting_since: Option<i64>,
    pub wait_deadline: Option<i64>,
    /// Set by an operator's redrive: when, and the reason the alert had been
    /// parked for (the last redrive's, if there were several).
    pub redriven_at: Option<i64>,
    pub redriven_from: Option<String>,
    /// The redrive made the key claimable but its request may not be back on
    /// the send queue yet (see [`Store::reopen_parked`]).
    pub redrive_pending: bool,
    /// A `retry` that may not be claimed before this time (131049).
    pub retry_at: Option<i64>,
    /// The reference its response payloads carry ([`crate::responses`]);
    /// `None` for an alert claimed before responses existed, or never
    /// claimed (expired, parked on arrival).
    pub response_ref: Option<String>,
    /// What a repeated outcome tells again as the first told it: when the
    /// sent request reached the send queue and when Meta accepted it (unix
    /// ms), why a template went instead of the text (`send.outcome`'s
    /// `fallback`), and Meta's code of a park. `None` on items written
    /// before they were kept.
    pub queued_ms: Option<i64>,
    pub sent_ms: Option<i64>,
    pub fallback: Option<Fallback>,
    pub meta_code: Option<i64>,
}

/// What [`Store::record_sent`] records: Meta's acceptance of a send.
#[derive(Debug, Clone, Copy)]
pub struct SentRecord<'a> {
    pub mode: SendMode,
    pub template: Option<&'a str>,
    pub wamid: &'a str,
    /// `send.outcome`'s `fallback`.
    pub fallback: Option<Fallback>,
    /// The request's arrival on the send queue, and Meta's acceptance
    /// (unix ms).
    pub queued_ms: i64,
    pub sent_ms: i64,
}

/// What [`Store::record_ambiguous`] records: a send whose outcome is
/// unknown, decided at `decide_at`.
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousRecord<'a> {
    pub error: &'a str,
    pub decide_at: i64,
    pub mode: SendMode,
    pub template: Option<&'a str>,
}

/// What [`Store::record_final`] records: the end of a key (`expired` or
/// `parked`), why, and the request (kept only if none is stored yet).
#[derive(Debug, Clone, Copy)]
pub struct FinalRecord<'a> {
    pub state: LedgerState,
    pub reason: &'a str,
    pub request_json: Option<&'a str>,
    /// Meta's code, when Meta's answer ended it.
    pub meta_code: Option<i64>,
}

/// What [`Store::claim_refused`] matches and records: the send Meta refused
/// after accepting it, and Meta's code.
#[derive(Debug, Clone, Copy)]
pub struct RefusedSend<'a> {
    pub wamid: &'a str,
    pub code: i64,
}

/// What a claim found.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// This caller now holds the key.
    Claimed(LedgerEntry),
    /// Someone already did (or is doing) something with the key.
    Existing(LedgerEntry),
}

fn ledger_pk(t: &TenantId, key: &IdempotencyKey) -> String {
    format!("T#{t}#SEND#{key}")
}

/// The gsi1 key that finds an alert by its response reference.
fn ref_gsi_pk(t: &TenantId, reference: &str) -> String {
    format!("T#{t}#REF#{reference}")
}

impl Store {
    fn ledger_update(&self, tenant: &TenantId, key: &IdempotencyKey) -> UpdateItemFluentBuilder {
        self.update(ledger_pk(tenant, key), "LEDGER")
            .expression_attribute_names("#state", "state")
    }

    /// Claims a key for sending: succeeds for a new key or one whose last
    /// attempt provably failed (and whose `retry_at`, if any, has passed). `request_json` is kept (first write wins) so
    /// a hand-back can re-send without the original SQS message. The first
    /// claim also gives the alert its response reference
    /// ([`crate::responses`]), kept for good (first write wins), so every
    /// send of the alert carries the same payloads.
    pub async fn claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_json: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let reference = crate::responses::new_reference();
        let req = self
            .ledger_update(tenant, key)
            .update_expression(
                "SET #state = :claimed, claim_token = :tok, lease_until = :lease, attempts = if_not_exists(attempts, :zero) + :one, \
                 request_body = if_not_exists(request_body, :req), created_at = if_not_exists(created_at, :now), updated_at = :now, ikey = :k, \
                 response_ref = if_not_exists(response_ref, :ref), gsi1pk = if_not_exists(gsi1pk, :refpk), gsi1sk = :lsk, #ttl = :ttl REMOVE decide_at, retry_at",
            )
            .condition_expression(
                "attribute_not_exists(#state) OR (#state = :retry AND (attribute_not_exists(retry_at) OR retry_at <= :now))",
            )
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":tok", s(token))
            .expression_attribute_values(":lease", n(now + lease_secs))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":req", s(request_json))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":k", s(key.as_str()))
            .expression_attribute_values(":ref", s(&reference))
            .expression_attribute_values(":refpk", s(ref_gsi_pk(tenant, &reference)))
            .expression_attribute_values(":lsk", s("LEDGER"))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.retained_until(now));
        self.claim_send(req).await
    }

    /// The idempotency key of the tenant's alert whose response reference is
    /// `reference` (gsi1, `T#{tenant}#REF#{reference}`). Keyed under the
    /// tenant, so another tenant's reference finds nothing. The index is
    /// eventually consistent: a tap comes seconds after the send at the
    /// earliest, long after the index has the claim.
    pub async fn alert_by_reference(
        &self,
        tenant: &TenantId,
        reference: &str,
    ) -> Result<Option<IdempotencyKey>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :g")
            .expression_attribute_values(":g", s(ref_gsi_pk(tenant, reference)))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let prefix = format!("T#{tenant}#SEND#");
        Ok(out
            .items()
            .iter()
            .filter(|i| get_s(i, "pk").is_some_and(|pk| pk.starts_with(&prefix)))
            .find_map(|i| get_s(i, "ikey"))
            .and_then(|k| IdempotencyKey::parse(&k).ok()))
    }

    /// Takes over a key whose holder is gone (lease ran out) or whose last
    /// attempt was ambiguous and has been judged lost. Compare-and-swap on the
    /// previous claim token.
    pub async fn take_over(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        previous_token: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :claimed, claim_token = :tok, lease_until = :lease, attempts = attempts + :one, updated_at = :now REMOVE decide_at")
            .condition_expression("#state IN (:claimed, :ambiguous) AND claim_token = :prev")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":ambiguous", s(LedgerState::Ambiguous.as_str()))
            .expression_attribute_values(":prev", s(previous_token))
            .expression_attribute_values(":tok", s(token))
            .expression_attribute_values(":lease", n(now + lease_secs))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now));
        self.claim_send(req).await
    }

    /// Meta refused a free-form message after accepting it (131047 in a
    /// `failed` status): the key is claimed again, this time for a template.
    /// Only the free-form send with that wamid can be handed back, once.
    pub async fn claim_handback(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        wamid: &str,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :claimed, claim_token = :tok, lease_until = :lease, attempts = attempts + :one, force_template = :true, updated_at = :now, last_error = :why")
            .condition_expression("#state = :sent AND #mode = :free AND wamid = :w")
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":free", s(SendMode::FreeForm.as_str()))
            .expression_attribute_values(":w", s(wamid))
            .expression_attribute_values(":tok", s(token))
            .expression_attribute_values(":lease", n(now + lease_secs))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":why", s("meta:131047 free-form refused outside the 24h window"))
            .expression_attribute_values(":now", n(now));
        self.claim_send(req).await
    }

    /// Meta refused a message after accepting it, with a code the sender
    /// acts on (a `failed` status the webhook handed back): the key is
    /// claimed again so the refusal can be concluded like a send's answer.
    /// Only the send with that wamid, once; no attempt is counted (the
    /// attempt was the send that Meta refused).
    pub async fn claim_refused(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        refused: RefusedSend<'_>,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let RefusedSend { wamid, code } = refused;
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :claimed, claim_token = :tok, lease_until = :lease, updated_at = :now, last_error = :why")
            .condition_expression("#state = :sent AND wamid = :w")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":w", s(wamid))
            .expression_attribute_values(":tok", s(token))
            .expression_attribute_values(":lease", n(now + lease_secs))
            .expression_attribute_values(":why", s(format!("meta:{code} reported after Meta accepted {wamid}")))
            .expression_attribute_values(":now", n(now));
        self.claim_send(req).await
    }

    /// Takes a waiting alert for the release pass. `retry` is accepted too:
    /// a pass that handed the alert to the send queue may have stopped
    /// before removing its waiting item, and the claim keeps the two apart.
    pub async fn claim_waiting(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :claimed, claim_token = :tok, lease_until = :lease, attempts = attempts + :one, updated_at = :now REMOVE decide_at")
            .condition_expression("#state IN (:waiting, :retry)")
            .expression_attribute_values(":claimed", s(LedgerState::Claimed.as_str()))
            .expression_attribute_values(":waiting", s(LedgerState::Waiting.as_str()))
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":tok", s(token))
            .expression_attribute_values(":lease", n(now + lease_secs))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now));
        self.claim_send(req).await
    }

    /// The holder puts its alert on hold for `template` until `deadline`.
    pub async fn record_waiting(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        template: &str,
        deadline: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :waiting, waiting_for = :tpl, wait_deadline = :d, waiting_since = if_not_exists(waiting_since, :now), last_error = :why, updated_at = :now REMOVE lease_until, decide_at")
            .expression_attribute_values(":waiting", s(LedgerState::Waiting.as_str()))
            .expression_attribute_values(":tpl", s(template))
            .expression_attribute_values(":d", n(deadline))
            .expression_attribute_values(":why", s(format!("waiting for template {template}")))
            .expression_attribute_values(":now", n(now));
        self.guarded(req, token).await
    }

    async fn claim_send(&self, req: UpdateItemFluentBuilder) -> Result<ClaimOutcome, StoreError> {
        let res = req
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(ClaimOutcome::Claimed(parse_ledger(&item)?))
            }
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(ccf)) = e.as_service_error() {
                    return match ccf.item() {
                        Some(item) => Ok(ClaimOutcome::Existing(parse_ledger(item)?)),
                        // The condition failed on a missing item: only
                        // possible for take-over / hand-back of a key that
                        // was never claimed.
                        None => Err(StoreError::Malformed { pk: String::new(), sk: "LEDGER".into(), reason: "conditional claim failed on a missing item".into() }),
                    };
                }
                Err(StoreError::dynamo("UpdateItem", e))
            }
        }
    }

    /// Records Meta's acceptance. Returns `false` if the claim was lost to
    /// another instance meanwhile.
    pub async fn record_sent(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        sent: SentRecord<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let SentRecord {
            mode,
            template,
            wamid,
            fallback,
            queued_ms,
            sent_ms,
        } = sent;
        let mut req = self
            .ledger_update(tenant, key)
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":mode", s(mode.as_str()))
            .expression_attribute_values(":w", s(wamid))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":qms", n(queued_ms))
            .expression_attribute_values(":sms", n(sent_ms))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.retained_until(now));
        // The item is kept its retention after this, its last write.
        let mut set = vec![
            "#state = :sent",
            "#mode = :mode",
            "wamid = :w",
            "sent_at = :now",
            "sent_ms = :sms",
            "queued_ms = :qms",
            "updated_at = :now",
            "#ttl = :ttl",
        ];
        let mut remove = vec!["lease_until", "decide_at"];
        match template {
            Some(t) => {
                req = req.expression_attribute_values(":tpl", s(t));
                set.push("template = :tpl");
            }
            None => remove.push("template"),
        }
        match fallback {
            Some(f) => {
                req = req.expression_attribute_values(":fb", s(f.as_str()));
                set.push("fallback = :fb");
            }
            None => remove.push("fallback"),
        }
        let update = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        self.guarded(req.update_expression(update), token).await
    }

    /// Records an attempt that Meta provably did not take.
    pub async fn record_retry(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression(
                "SET #state = :retry, last_error = :e, updated_at = :now REMOVE lease_until",
            )
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":now", n(now));
        self.guarded(req, token).await
    }

    /// Records an attempt that Meta refused for now, not to be claimed
    /// again before `retry_at` (Meta's per-user limit, 131049).
    pub async fn record_retry_at(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        error: &str,
        retry_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression(
                "SET #state = :retry, last_error = :e, retry_at = :at, updated_at = :now REMOVE lease_until",
            )
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":at", n(retry_at))
            .expression_attribute_values(":now", n(now));
        self.guarded(req, token).await
    }

    /// Records an attempt whose outcome is unknown: decided at `decide_at`.
    pub async fn record_ambiguous(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: &str,
        ambiguous: AmbiguousRecord<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let AmbiguousRecord {
            error,
            decide_at,
            mode,
            template,
        } = ambiguous;
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :amb, last_error = :e, decide_at = :d, updated_at = :now, #mode = :mode, template = :tpl REMOVE lease_until")
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_values(":amb", s(LedgerState::Ambiguous.as_str()))
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":d", n(decide_at))
            .expression_attribute_values(":mode", s(mode.as_str()))
            .expression_attribute_values(":tpl", s(template.unwrap_or("")))
            .expression_attribute_values(":now", n(now));
        self.guarded(req, token).await
    }

    /// An ambiguous send turned out to have reached Meta: a status webhook
    /// echoed its key.
    pub async fn resolve_ambiguous_as_sent(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        previous_token: &str,
        wamid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :sent, wamid = :w, sent_at = if_not_exists(sent_at, :now), updated_at = :now, #ttl = :ttl REMOVE lease_until, decide_at")
            .expression_attribute_values(":sent", s(LedgerState::Sent.as_str()))
            .expression_attribute_values(":w", s(wamid))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.retained_until(now));
        self.guarded_states(
            req,
            previous_token,
            &[LedgerState::Claimed, LedgerState::Ambiguous],
        )
        .await
    }

    /// Ends a key for good (`expired` or `parked`) with a reason. With a
    /// token it must be the holder's (claimed, or ambiguous and being
    /// decided); without one the key must be new or in `retry`.
    pub async fn record_final(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Option<&str>,
        ending: FinalRecord<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let FinalRecord {
            state,
            reason,
            request_json,
            meta_code,
        } = ending;
        let set = "SET #state = :st, last_error = :e, updated_at = :now, created_at = if_not_exists(created_at, :now), request_body = if_not_exists(request_body, :req), ikey = :k, #ttl = :ttl";
        let update = match meta_code {
            Some(_) => format!("{set}, meta_code = :mc REMOVE lease_until, decide_at"),
            None => format!("{set} REMOVE lease_until, decide_at, meta_code"),
        };
        let mut req = self.ledger_update(tenant, key).update_expression(update);
        if let Some(code) = meta_code {
            req = req.expression_attribute_values(":mc", n(code));
        }
        req = req
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", self.retained_until(now))
            .expression_attribute_values(":st", s(state.as_str()))
            .expression_attribute_values(":e", s(reason))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":req", s(request_json.unwrap_or("")))
            .expression_attribute_values(":k", s(key.as_str()));
        match token {
            Some(t) => {
                self.guarded_states(req, t, &[LedgerState::Claimed, LedgerState::Ambiguous])
                    .await
            }
            None => {
                req = req
                    .condition_expression("attribute_not_exists(#state) OR #state = :retry")
                    .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()));
                applied("UpdateItem", req.send().await)
            }
        }
    }

    /// An operator's redrive, first half: a `parked` key becomes claimable
    /// again (`retry`), marked as a redrive whose request is not back on the
    /// send queue yet. `false` if the key is not `parked` (any more).
    ///
    /// Claimable before the request is enqueued, never after: a copy the
    /// sender read while the key was still `parked` would be acknowledged as
    /// finished, and the alert would stay unsent.
    pub async fn reopen_parked(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        parked_for: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .ledger_update(tenant, key)
            .update_expression("SET #state = :retry, redriven_at = :now, redriven_from = :was, redrive_pending = :true, last_error = :why, updated_at = :now")
            .condition_expression("#state = :parked")
            .expression_attribute_values(":retry", s(LedgerState::Retry.as_str()))
            .expression_attribute_values(":parked", s(LedgerState::Parked.as_str()))
            .expression_attribute_values(":was", s(parked_for))
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":why", s("redriven by an operator"))
            .expression_attribute_values(":now", n(now));
        applied("UpdateItem", req.send().await)
    }

    /// An operator's redrive, second half: its request is on the send queue.
    /// Only the redrive started at `redriven_at` is finished (a later one
    /// keeps its own mark); whatever the key's state is by now.
    pub async fn finish_redrive(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        redriven_at: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .update(ledger_pk(tenant, key), "LEDGER")
            .update_expression("REMOVE redrive_pending")
            .condition_expression("redriven_at = :at")
            .expression_attribute_values(":at", n(redriven_at));
        applied("UpdateItem", req.send().await)
    }

    pub async fn get_ledger(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        self.get(&ledger_pk(tenant, key), "LEDGER")
            .await?
            .map(|i| parse_ledger(&i))
            .transpose()
    }

    async fn guarded(&self, req: UpdateItemFluentBuilder, token: &str) -> Result<bool, StoreError> {
        self.guarded_states(req, token, &[LedgerState::Claimed])
            .await
    }

    async fn guarded_states(
        &self,
        req: UpdateItemFluentBuilder,
        token: &str,
        states: &[LedgerState],
    ) -> Result<bool, StoreError> {
        let mut req = req.expression_attribute_values(":guard_tok", s(token));
        let mut names = Vec::new();
        for (i, st) in states.iter().enumerate() {
            let name = format!(":guard_st{i}");
            req = req.expression_attribute_values(&name, s(st.as_str()));
            names.push(name);
        }
        let cond = format!(
            "claim_token = :guard_tok AND #state IN ({})",
            names.join(", ")
        );
        applied("UpdateItem", req.condition_expression(cond).send().await)
    }
}

fn parse_ledger(item: &Item) -> Result<LedgerEntry, StoreError> {
    let state_s = required_s(item, "state")?;
    let state = LedgerState::parse(&state_s)
        .ok_or_else(|| super::malformed(item, format!("unknown state {state_s}")))?;
    Ok(LedgerEntry {
        key: get_s(item, "ikey").unwrap_or_default(),
        state,
        mode: match get_s(item, "mode").as_deref() {
            Some("free_form") => Some(SendMode::FreeForm),
            Some("template") => Some(SendMode::Template),
            _ => None,
        },
        template: get_s(item, "template").filter(|t| !t.is_empty()),
        wamid: get_s(item, "wamid"),
        attempts: u32::try_from(get_n(item, "attempts").unwrap_or(0)).unwrap_or(0),
        last_error: get_s(item, "last_error"),
        claim_token: get_s(item, "claim_token"),
        lease_until: get_n(item, "lease_until").unwrap_or(0),
        decide_at: get_n(item, "decide_at"),
        force_template: get_bool(item, "force_template").unwrap_or(false),
        request_json: get_s(item, "request_body").filter(|r| !r.is_empty()),
        created_at: get_n(item, "created_at").unwrap_or(0),
        updated_at: get_n(item, "updated_at").unwrap_or(0),
        sent_at: get_n(item, "sent_at"),
        waiting_for: get_s(item, "waiting_for"),
        waiting_since: get_n(item, "waiting_since"),
        wait_deadline: get_n(item, "wait_deadline"),
        redriven_at: get_n(item, "redriven_at"),
        redriven_from: get_s(item, "redriven_from"),
        redrive_pending: get_bool(item, "redrive_pending").unwrap_or(false),
        retry_at: get_n(item, "retry_at"),
        response_ref: get_s(item, "response_ref"),
        queued_ms: get_n(item, "queued_ms"),
        sent_ms: get_n(item, "sent_ms"),
        fallback: get_s(item, "fallback").as_deref().and_then(Fallback::parse),
        meta_code: get_n(item, "meta_code"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The item's `state` and the event's `outcome` are one name, as items
    /// already stored and consumers already read it.
    #[test]
    fn an_outcome_has_the_same_name_on_the_item_and_in_the_event() {
        for st in LedgerState::ALL {
            assert_eq!(LedgerState::parse(st.as_str()), Some(st));
            if let Some(o) = st.outcome() {
                assert_eq!(st.as_str(), o.as_str());
                assert_eq!(
                    serde_json::to_value(o).ok(),
                    Some(serde_json::json!(o.as_str()))
                );
            }
        }
        let names: Vec<_> = LedgerState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "claimed",
                "sent",
                "retry",
                "ambiguous",
                "expired",
                "parked",
                "waiting"
            ]
        );
    }
}
