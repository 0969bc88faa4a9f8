//! One attempt to deliver an alert, the one thing the sender's steps pass
//! along once its key is claimed, and the SQS record it arrived in.

use aws_lambda_events::sqs::SqsMessage;

use super::request::SendRequest;
use crate::addressing::Addressee;
use crate::store::LedgerEntry;
use crate::tenants::Tenant;

/// When and how often SQS delivered the record an attempt came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival {
    /// SQS's `ApproximateReceiveCount` (1 for an alert the release pass
    /// took from the waiting list).
    pub(super) receive_count: u32,
    /// When upstream enqueued it (SQS's `SentTimestamp`, unix ms): an
    /// alert held for its template is released in this order.
    pub(super) enqueued_ms: i64,
}

impl Arrival {
    pub(super) fn of(rec: &SqsMessage, clock: &crate::clock::Clock) -> Arrival {
        let attr = |name: &str| rec.attributes.get(name).and_then(|c| c.parse::<i64>().ok());
        Arrival {
            receive_count: attr("ApproximateReceiveCount")
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
            enqueued_ms: attr("SentTimestamp").unwrap_or_else(|| clock.now_ms()),
        }
    }
}

/// One attempt to deliver an alert: whose it is, the request, the claim
/// that holds its key, and the record it came from. What `send`,
/// `conclude`, a park and a hold read of the alert, they read here.
pub(super) struct Attempt<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) req: &'a SendRequest,
    /// Who it goes to.
    pub(super) to: &'a Addressee,
    /// The request as received (what a park puts in the DLQ).
    pub(super) body: &'a str,
    /// The claim token every ledger write after the claim must present.
    pub(super) token: &'a str,
    /// The ledger entry as the claim left it.
    pub(super) entry: &'a LedgerEntry,
    pub(super) arrival: Arrival,
}
