//! Parking an alert: a copy with its reason in the DLQ first, then the
//! ledger (`parked`, with the reason as [`ParkReason::ledger_text`]), then
//! the tenant's parked count and list (best effort), then the outcome event.

use tracing::warn;

use super::batch::InBatch;
use super::outcome::Reported;
use super::request::{self, InvalidRequest, SendRequest};
use super::{Disposition, Sender, SenderError};
use crate::ids::{IdempotencyKey, TenantId};
use crate::queues::ParkReason;
use crate::store::{FinalRecord, LedgerState};

impl Sender {
    /// A request that cannot be sent, parked at once with its reason. If its
    /// tenant (a configured one) and key can be read, its ledger says so too,
    /// so its timeline shows it, and its outcome is published.
    pub(super) async fn park_invalid(
        &self,
        cx: &InBatch<'_>,
        body: &str,
        invalid: &InvalidRequest,
    ) -> Result<Disposition, SenderError> {
        warn!(reason = invalid.code(), detail = %invalid, "invalid send request; parked");
        let reason = invalid_reason(invalid);
        // Its tenant and key, if they can be read and the tenant is ours.
        let known = match request::readable_ids(body) {
            Some((tenant, key)) => {
                let span = tracing::Span::current();
                span.record("tenant", tenant.as_str());
                span.record("idempotency_key", key.as_str());
                let configured = self.app.directory.tenant(&tenant).await?.is_some();
                configured.then_some((tenant, key))
            }
            None => None,
        };
        let now = self.app.clock.now();
        self.app.queues.park(body, &reason).await?;
        let Some((tenant, key)) = known else {
            return Ok(Disposition::Done);
        };
        let recorded = self
            .app
            .store
            .record_final(
                &tenant,
                &key,
                None,
                parked_record(&reason.ledger_text(), reason.meta_code, Some(body)),
                now,
            )
            .await?;
        if recorded {
            self.note_parked(&tenant, &key, &reason, now).await;
            cx.outcome_for(&tenant, &key, Reported::parked(&reason));
        }
        Ok(Disposition::Done)
    }

    /// Parks a claimed (or never claimed: `token` `None`) alert with its
    /// reason.
    pub(super) async fn park(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        body: &str,
        token: Option<&str>,
        reason: ParkReason,
    ) -> Result<Disposition, SenderError> {
        // The DLQ copy first: if recording fails after it, the retry finds
        // the key still claimed and parks again (a duplicate DLQ entry,
        // never a lost one).
        self.app.queues.park(body, &reason).await?;
        let now = self.app.clock.now();
        self.app
            .store
            .record_final(
                &req.tenant_id,
                &req.idempotency_key,
                token,
                parked_record(&reason.ledger_text(), reason.meta_code, Some(body)),
                now,
            )
            .await?;
        self.note_parked(&req.tenant_id, &req.idempotency_key, &reason, now)
            .await;
        warn!(reason = %reason.reason, meta_code = reason.meta_code, "alert parked in the DLQ");
        cx.outcome(req, Reported::parked(&reason));
        Ok(Disposition::Done)
    }

    /// The tenant's parked count (status API) and list (`fwa parked`). A
    /// failure is logged and not retried: re-running the park would put a
    /// second copy in the DLQ for the sake of an index.
    pub(super) async fn note_parked(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        reason: &ParkReason,
        now: i64,
    ) {
        if let Err(e) = self.app.store.count_parked(tenant, now).await {
            warn!(error = %e, "could not count the parked alert for the tenant");
        }
        if let Err(e) = self
            .app
            .store
            .put_parked(
                tenant,
                key,
                &reason.reason,
                &reason.detail,
                reason.meta_code,
                now,
            )
            .await
        {
            warn!(error = %e, "could not list the parked alert for the tenant");
        }
    }
}

/// Why a request that cannot be sent is parked: `invalid_request:{code}`.
pub(super) fn invalid_reason(invalid: &InvalidRequest) -> ParkReason {
    ParkReason {
        reason: format!("invalid_request:{}", invalid.code()),
        detail: invalid.to_string(),
        meta_code: None,
        meta_title: None,
    }
}

/// What the ledger records of a park: its reason as
/// [`ParkReason::ledger_text`], Meta's code, and the
/// request if none is stored yet.
pub(super) fn parked_record<'a>(
    ledger_text: &'a str,
    meta_code: Option<i64>,
    body: Option<&'a str>,
) -> FinalRecord<'a> {
    FinalRecord {
        state: LedgerState::Parked,
        reason: ledger_text,
        request_json: body,
        meta_code,
    }
}
