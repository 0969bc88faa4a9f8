//! A 131047 hand-back from the webhook: Meta refused a free-form alert
//! after accepting it (the window had closed), so the key is claimed again,
//! once, and the alert goes as its template.

use tracing::info;

use super::attempt::{Arrival, Attempt};
use super::batch::InBatch;
use super::message::Handback;
use super::reach::Reached;
use super::request::SendRequest;
use super::{Disposition, Sender, SenderError};
use crate::store::{ClaimOutcome, LedgerState, StoreError};

impl Sender {
    /// A 131047 hand-back from the webhook: re-claim the key for a template.
    pub(super) async fn handback(
        &self,
        cx: &InBatch<'_>,
        h: Handback,
        arrival: Arrival,
    ) -> Result<Disposition, SenderError> {
        let Some(tenant) = self.alert_of(&h.tenant_id, &h.idempotency_key).await? else {
            return Ok(Disposition::Done);
        };
        let token = uuid::Uuid::new_v4().to_string();
        let now = self.app.clock.now();
        let lease = self.app.config.sender.claim_lease.as_secs() as i64;
        let entry = match self
            .app
            .store
            .claim_handback(
                &h.tenant_id,
                &h.idempotency_key,
                &h.wamid,
                &token,
                now,
                lease,
            )
            .await
        {
            Ok(ClaimOutcome::Claimed(e)) => e,
            // Handed back before, and not finished: the template send
            // failed, is waiting for approval, is in doubt, or its instance
            // died. The stored request takes the ordinary path from where
            // the ledger stands (its `force_template` keeps it a template).
            Ok(ClaimOutcome::Existing(e))
                if e.force_template && !e.state.is_final() && e.state != LedgerState::Waiting =>
            {
                let Some(body) = e.request_json.clone() else {
                    return Ok(Disposition::Done);
                };
                return match SendRequest::parse(&body) {
                    Ok(req) => self.deliver(cx, &tenant, &req, &body, arrival).await,
                    Err(invalid) => self.park_invalid(cx, &body, &invalid).await,
                };
            }
            Ok(ClaimOutcome::Existing(_)) => {
                info!("hand-back already taken or not applicable");
                return Ok(Disposition::Done);
            }
            Err(StoreError::Malformed { .. }) => return Ok(Disposition::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(body) = entry.request_json.clone() else {
            return Ok(Disposition::Done);
        };
        let req = match SendRequest::parse(&body) {
            Ok(r) => r,
            Err(_) => return Ok(Disposition::Done),
        };
        let to = match self.reach(&req).await? {
            Reached::To(to) | Reached::Undeliverable(to) => to,
            Reached::Not(_) => return Ok(Disposition::Done),
        };
        let attempt = Attempt {
            tenant: &tenant,
            req: &req,
            to: &to,
            body: &body,
            token: &token,
            entry: &entry,
            arrival,
        };
        self.send(cx, &attempt).await
    }
}
