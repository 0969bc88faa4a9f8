//! Marking a CSM's response read at Meta (blue ticks), from a `mark_read`
//! message the webhook put on the send queue. Best effort.

use tracing::{info, warn};

use super::message;
use super::{Disposition, Sender, SenderError};

impl Sender {
    /// Marks a CSM's response read at Meta. Best effort: a failure is
    /// logged and the record done (an unread tick is not worth a retry
    /// storm), and an unknown tenant is skipped.
    pub(super) async fn mark_read(
        &self,
        r: &message::MarkRead,
    ) -> Result<Disposition, SenderError> {
        let Some(tenant) = self.app.directory.tenant(&r.tenant_id).await? else {
            warn!(tenant = %r.tenant_id, "read receipt for an unknown tenant; skipped");
            return Ok(Disposition::Done);
        };
        let phone = tenant.phone_number_id.as_str();
        let result = self
            .app
            .directory
            .with_token(&tenant, |secrets| async move {
                self.app
                    .graph
                    .mark_read(phone, &secrets.access_token, &r.message_id)
                    .await
            })
            .await;
        match result {
            Ok(()) => info!(message_id = %r.message_id, "CSM's response marked read"),
            Err(e) => {
                warn!(message_id = %r.message_id, error = %e, "read receipt failed; the CSM's message stays unread")
            }
        }
        Ok(Disposition::Done)
    }
}
