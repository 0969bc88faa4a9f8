//! Whether an alert's template may be sent: its status at Meta from a short
//! cache (read afresh before anything but APPROVED is acted on), and, when
//! it is not approved, the alert held for it or parked
//! ([`super::decide::template_not_ready`]).

use std::time::Duration;

use tracing::{error, info};

use super::attempt::Attempt;
use super::batch::InBatch;
use super::decide::{self, NotReady};
use super::outcome::Reported;
use super::release;
use super::{Disposition, Sender, SenderError};
use crate::ids::TenantId;
use crate::store::{waiting_sk, WaitingAlert};
use crate::templates::catalog::TemplateDef;
use crate::templates::status::TemplateStatus;

impl Sender {
    /// The template's status at Meta as recorded (not submitted if we have
    /// no record), from a short cache: an APPROVED answer is trusted for a
    /// minute, anything else for seconds. Anything but APPROVED is read
    /// afresh ([`Sender::fresh_template_status`]) before an alert is held or
    /// parked for it.
    pub(super) async fn template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<TemplateStatus, SenderError> {
        let key = (
            tenant.clone(),
            def.name.as_str().to_string(),
            def.language.clone(),
        );
        let status = self
            .template_statuses
            .get_or_load(&key, || async {
                let (status, _) = self.read_template_status(tenant, def).await?;
                let ttl = status_ttl(&status);
                Ok::<_, SenderError>((status, ttl))
            })
            .await?;
        Ok(status)
    }

    /// Puts a template status read elsewhere (the release pass) in the
    /// cache [`Sender::template_status`] reads.
    pub(super) fn remember_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: TemplateStatus,
    ) {
        let ttl = status_ttl(&status);
        self.template_statuses.put(
            (tenant.clone(), name.to_string(), language.to_string()),
            status,
            ttl,
        );
    }

    /// The template is not approved. Refused for good (rejected, disabled):
    /// the alert is parked with Meta's reason. Otherwise (in review, paused,
    /// not submitted yet) the alert is held until the template is approved,
    /// its CSM opens a window, or `deliver_by` / `TEMPLATE_WAIT_LIMIT_SECS`
    /// from its first attempt passes.
    pub(super) async fn template_not_ready(
        &self,
        cx: &InBatch<'_>,
        a: &Attempt<'_>,
        def: &TemplateDef,
        status: &TemplateStatus,
        meta_reason: Option<&str>,
    ) -> Result<Disposition, SenderError> {
        let req = a.req;
        let now = self.app.clock.now();
        let wait_limit = self.app.config.sender.template_wait_limit.as_secs() as i64;
        let deadline = match decide::template_not_ready(
            status,
            req.deliver_by,
            a.entry.created_at,
            wait_limit,
            now,
        ) {
            NotReady::Refused => {
                let reason = release::template_rejected(def.name.as_str(), status, meta_reason);
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
            NotReady::TooLate => {
                let reason = release::template_not_approved(def.name.as_str(), status);
                return self.park(cx, req, a.body, Some(a.token), reason).await;
            }
            NotReady::Hold { deadline } => deadline,
        };
        let waiting = WaitingAlert {
            sk: waiting_sk(a.arrival.enqueued_ms, &req.idempotency_key),
            key: req.idempotency_key.clone(),
            template: def.name.as_str().to_string(),
            language: def.language.clone(),
            who: a.to.identity.clone(),
            has_text: req.text.is_some(),
            deadline,
            enqueued_ms: a.arrival.enqueued_ms,
        };
        // The item first: a crash before the ledger write leaves a claimed
        // key whose redelivery holds it again (same item), never an alert
        // that waits with no item to wake it.
        self.app.store.put_waiting(&req.tenant_id, &waiting).await?;
        if !self
            .app
            .store
            .record_waiting(
                &req.tenant_id,
                &req.idempotency_key,
                a.token,
                def.name.as_str(),
                deadline,
                now,
            )
            .await?
        {
            error!(
                "could not hold the alert: its claim was taken over meanwhile (lease too short?)"
            );
            return Ok(Disposition::Done);
        }
        info!(template = %def.name, status = %status, deadline, "template not approved yet; the alert waits for it, outside the send queue");
        cx.outcome(
            req,
            Reported::waiting(
                def.name.as_str().to_string(),
                Some(format!("template {} is {status}", def.name)),
            ),
        );
        Ok(Disposition::Held)
    }

    /// The template's status read from its record (not the cache, which
    /// learns it), with Meta's rejection reason.
    pub(super) async fn fresh_template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<(TemplateStatus, Option<String>), SenderError> {
        let (status, reason) = self.read_template_status(tenant, def).await?;
        self.remember_template_status(tenant, def.name.as_str(), &def.language, status.clone());
        Ok((status, reason))
    }

    /// The template's status as recorded (not submitted if there is no
    /// record), and Meta's rejection reason.
    async fn read_template_status(
        &self,
        tenant: &TenantId,
        def: &TemplateDef,
    ) -> Result<(TemplateStatus, Option<String>), SenderError> {
        let record = self
            .app
            .store
            .get_template(tenant, def.name.as_str(), &def.language)
            .await?;
        let status = TemplateStatus::from_meta(record.as_ref().map(|t| t.status.as_str()));
        Ok((status, record.and_then(|t| t.reason)))
    }
}

/// How long a template status is trusted from the cache: an approval for a
/// minute, anything else for seconds so an approval is seen soon.
pub(super) fn status_ttl(status: &TemplateStatus) -> Duration {
    if *status == TemplateStatus::Approved {
        APPROVED_TTL
    } else {
        UNAPPROVED_TTL
    }
}

/// How long an approved template is trusted from the cache.
pub(super) const APPROVED_TTL: Duration = Duration::from_secs(60);
/// How long "not approved" is trusted: short, so an approval is seen soon.
pub(super) const UNAPPROVED_TTL: Duration = Duration::from_secs(5);
