//! A key a claim found taken: finished (its outcome published again), held
//! by a live instance (come back later), not due yet (131049), or in doubt,
//! judged from Meta's statuses ([`super::decide::judge_doubt`]): sent,
//! undecided, stale, or lost and taken over to be sent again.

use tracing::{info, warn};

use super::batch::InBatch;
use super::decide::{self, Doubt, Existing};
use super::hold;
use super::outcome::Reported;
use super::request::SendRequest;
use super::{Disposition, Sender, SenderError, STALE};
use crate::store::{ClaimOutcome, FinalRecord, LedgerEntry, LedgerState};

impl Sender {
    /// A key that someone already claimed: finished, in flight, in doubt, or
    /// waiting for its template.
    pub(super) async fn resume(
        &self,
        cx: &InBatch<'_>,
        req: &SendRequest,
        existing: &LedgerEntry,
        token: &str,
        now: i64,
    ) -> Result<Resume, SenderError> {
        let store = &self.app.store;
        match decide::on_existing(existing, now) {
            Existing::Finished => {
                info!(
                    state = existing.state.as_str(),
                    "already handled; acknowledged without sending, its outcome published again"
                );
                cx.repeat_outcome(req, existing);
                return Ok(Resume::Stop(Disposition::Done));
            }
            Existing::Busy { retry_after } => {
                return Ok(Resume::Stop(Disposition::RetryAfter(retry_after)))
            }
            // A later try not due yet (Meta's per-user limit, 131049): this
            // copy comes back then, or at SQS's longest visibility, 12 h.
            Existing::NotDue {
                retry_at,
                retry_after,
            } => {
                info!(
                    retry_at = %hold::utc(retry_at),
                    "a later try of this alert is not due yet; not sent"
                );
                return Ok(Resume::Stop(Disposition::RetryAfter(retry_after)));
            }
            Existing::Unexpected => return Ok(Resume::Stop(Disposition::RetryAfter(1))),
            Existing::InDoubt => {}
        }
        let prev = existing.claim_token.as_deref().unwrap_or("");
        let seen = store
            .statuses_by_key(&req.tenant_id, &req.idempotency_key)
            .await?;
        let delay = self.app.config.sender.ambiguous_delay.as_secs() as i64;
        match decide::judge_doubt(existing, &seen, req.deliver_by, now, delay) {
            Doubt::WasSent(wamid) => {
                if store
                    .resolve_ambiguous_as_sent(
                        &req.tenant_id,
                        &req.idempotency_key,
                        prev,
                        wamid,
                        now,
                    )
                    .await?
                {
                    info!(wamid = %wamid, "ambiguous send resolved: Meta reported a status for it, so it was sent");
                    cx.outcome(
                        req,
                        Reported::sent(
                            existing.mode,
                            existing.template.clone(),
                            wamid.to_string(),
                            Some("resolved from status webhook".into()),
                        ),
                    );
                }
                Ok(Resume::Stop(Disposition::Done))
            }
            Doubt::Undecided { retry_after } => {
                Ok(Resume::Stop(Disposition::RetryAfter(retry_after)))
            }
            Doubt::Stale => {
                if store
                    .record_final(
                        &req.tenant_id,
                        &req.idempotency_key,
                        Some(prev),
                        FinalRecord {
                            state: LedgerState::Expired,
                            reason: STALE,
                            request_json: None,
                            meta_code: None,
                        },
                        now,
                    )
                    .await?
                {
                    info!("ambiguous send judged lost, but the alert is stale now; recorded as expired");
                    cx.outcome(req, Reported::expired(STALE));
                }
                Ok(Resume::Stop(Disposition::Done))
            }
            Doubt::SendAgain => {
                let lease = self.app.config.sender.claim_lease.as_secs() as i64;
                match store
                    .take_over(
                        &req.tenant_id,
                        &req.idempotency_key,
                        prev,
                        token,
                        now,
                        lease,
                    )
                    .await?
                {
                    ClaimOutcome::Claimed(e) => {
                        warn!("ambiguous send judged lost (no status by decide_at); sending again");
                        Ok(Resume::Proceed(Box::new(e)))
                    }
                    ClaimOutcome::Existing(_) => Ok(Resume::Stop(Disposition::RetryAfter(1))),
                }
            }
        }
    }
}

pub(super) enum Resume {
    Proceed(Box<LedgerEntry>),
    Stop(Disposition),
}
