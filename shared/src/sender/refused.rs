//! A send Meta refused after accepting it.
//!
//! Meta reports some errors "asynchronously via Webhook, or sometimes through
//! both methods" (its error reference, in [`super::classify`]): the send
//! answers 200 with a wamid, and a `failed` status with the code follows.
//! For the codes that change what becomes of the alert
//! ([`super::classify::acted_on_after_acceptance`]: 131049, 131042, 131050,
//! ...), the webhook puts a `send_refused` control message on the send queue
//! ([`super::message::Refused`]), and the sender concludes the alert here
//! exactly as if the send had answered with that error
//! ([`Sender::conclude`]): a later try, the tenant's hold, or a park with
//! its reason. One place decides what a code means, wherever it arrives.
//!
//! The key is claimed again only from `sent` with that wamid, once
//! ([`crate::store::Store::claim_refused`]), so a refusal delivered twice
//! acts once. No attempt is counted: the attempt was the send Meta refused.

use super::message::Refused;
use super::request::SendRequest;
use super::{Arrival, Attempt, Disposition, InBatch, Sender, SenderError};
use crate::graph::{GraphError, MetaError};
use crate::store::{ClaimOutcome, LedgerState, RefusedSend, SendMode, StoreError};
use tracing::info;

impl Sender {
    pub(super) async fn refused(
        &self,
        cx: &InBatch<'_>,
        r: Refused,
        arrival: Arrival,
    ) -> Result<Disposition, SenderError> {
        let Some(tenant) = self.alert_of(&r.tenant_id, &r.idempotency_key).await? else {
            return Ok(Disposition::Done);
        };
        let token = uuid::Uuid::new_v4().to_string();
        let now = self.app.clock.now();
        let lease = self.app.config.sender.claim_lease.as_secs() as i64;
        let code = r.error.code;
        let entry = match self
            .app
            .store
            .claim_refused(
                &r.tenant_id,
                &r.idempotency_key,
                RefusedSend {
                    wamid: &r.wamid,
                    code,
                },
                &token,
                now,
                lease,
            )
            .await
        {
            Ok(ClaimOutcome::Claimed(e)) => e,
            // Concluded before as a later try; the instance may have died
            // before the request went back on the queue, so it goes back
            // (a copy too many finds its key taken and sends nothing).
            Ok(ClaimOutcome::Existing(e))
                if e.state == LedgerState::Retry && e.wamid.as_deref() == Some(&r.wamid) =>
            {
                if let Some(body) = &e.request_json {
                    self.app
                        .queues
                        .enqueue_send_delayed(body, self.requeue_delay())
                        .await?;
                }
                return Ok(Disposition::Done);
            }
            Ok(ClaimOutcome::Existing(_)) => {
                info!(
                    wamid = %r.wamid,
                    code,
                    "refusal already acted on, or not of this alert's latest send"
                );
                return Ok(Disposition::Done);
            }
            // No ledger entry: not an alert of this service.
            Err(StoreError::Malformed { .. }) => return Ok(Disposition::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(body) = entry.request_json.clone() else {
            return Ok(Disposition::Done);
        };
        let Ok(req) = SendRequest::parse(&body) else {
            return Ok(Disposition::Done);
        };
        info!(wamid = %r.wamid, code, "Meta refused an accepted message; concluding the alert with Meta's code");
        let err = GraphError::Api {
            http_status: 400,
            error: Box::new(MetaError {
                message: r.error.title.clone().unwrap_or_default(),
                kind: None,
                code,
                error_subcode: None,
                error_data: r
                    .error
                    .details
                    .as_ref()
                    .map(|d| serde_json::json!({ "details": d })),
                fbtrace_id: None,
            }),
            retry_after_secs: None,
        };
        let to = match self.reach(&req).await? {
            super::Reached::To(to) | super::Reached::Undeliverable(to) => to,
            super::Reached::Not(_) => return Ok(Disposition::Done),
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
        let mode = entry.mode.unwrap_or(SendMode::Template);
        self.conclude(
            cx,
            &attempt,
            (mode, None),
            entry.template.as_deref(),
            Err(err),
        )
        .await
    }
}
