//! The send queue is an Amazon SQS fair queue: every message the service
//! puts on it carries its tenant as `MessageGroupId`, so one tenant's flood
//! does not hold back the others' alerts
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html>).
//!
//! These scenarios read the group SQS keeps for each message (moto stores
//! and returns it on a standard queue). How SQS then schedules the groups
//! (the dwell time of quiet tenants) is AWS's and is not modelled here.

use std::time::Duration;

use fincelo::sender::message::SERVICE_GROUP;
use fincelo::store::LedgerState;

use crate::helpers::*;

fn keyed<'a>(got: &'a [Grouped], key: &str) -> Option<&'a Grouped> {
    got.iter().find(|g| g.body["idempotency_key"] == key)
}

/// Two alerts to one CSM in one batch, against a pair limit of one a
/// second that the sender does not wait for: one goes out, the other is
/// re-queued with a delay, in its tenant's group. The scheduled sweep,
/// which names no tenant, goes in the service's own group.
#[tokio::test]
async fn an_alert_the_sender_requeues_stays_in_its_tenants_group() {
    let mut opts = WorldOptions {
        sender_instances: 0,
        ..WorldOptions::default()
    };
    opts.env.extend(
        [
            ("PAIR_BURST", "1"),
            ("PAIR_INTERVAL_MS", "1000"),
            ("PAIR_MAX_WAIT_MS", "0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let w = spawn_world_with(opts).await;
    let csm = csm_number();
    w.csm_writes(&csm).await;
    let first = send_request(&w.tenant.tenant_id, &csm).text("first");
    let second = send_request(&w.tenant.tenant_id, &csm).text("second");
    let failed = hand_to_sender(&w, &[first.json(), second.json()]).await;
    assert!(failed.is_empty(), "{failed:?}");

    let got = w
        .drain_grouped_until("SendQueue", Duration::from_secs(15), |got| {
            keyed(got, &first.key).is_some() || keyed(got, &second.key).is_some()
        })
        .await;
    let requeued: Vec<&Grouped> = [&first.key, &second.key]
        .iter()
        .filter_map(|k| keyed(&got, k))
        .collect();
    assert_eq!(requeued.len(), 1, "one alert deferred: {got:?}");
    assert_eq!(
        requeued[0].group.as_deref(),
        Some(w.tenant.tenant_id.as_str()),
        "{got:?}"
    );

    // The schedule's sweep, as the local runner fires it when time passes.
    w.advance(Duration::from_secs(300)).await;
    let got = w
        .drain_grouped_until("SendQueue", Duration::from_secs(10), |got| {
            got.iter().any(|g| g.body["kind"] == "sweep")
        })
        .await;
    let sweep = got
        .iter()
        .find(|g| g.body["kind"] == "sweep")
        .unwrap_or_else(|| panic!("no sweep on the send queue: {got:?}"));
    assert_eq!(sweep.group.as_deref(), Some(SERVICE_GROUP), "{got:?}");
    w.shutdown().await;
}

/// The template the default request (usage threshold, good health) uses.
const USAGE_TEMPLATE: &str = "fincelo_usage_opportunity";

/// Meta rejects a template: the webhook asks for a release pass of the
/// tenant's waiting list, in the tenant's group. An alert that needs the
/// template parks; an operator's redrive puts it back on the send queue,
/// in its tenant's group too.
#[tokio::test]
async fn a_release_and_a_redriven_alert_go_in_their_tenants_group() {
    let w = spawn_world_without_sender().await;
    let t = w.tenant.tenant_id.clone();
    w.reject_one_of_pending_templates(USAGE_TEMPLATE).await;
    let is_release = |g: &Grouped| g.body["kind"] == "release" && g.body["tenant_id"] == t.as_str();
    let got = w
        .drain_grouped_until("SendQueue", Duration::from_secs(10), |got| {
            got.iter().any(is_release)
        })
        .await;
    let release = got
        .iter()
        .find(|g| is_release(g))
        .unwrap_or_else(|| panic!("no release on the send queue: {got:?}"));
    assert_eq!(release.group.as_deref(), Some(t.as_str()), "{got:?}");

    let req = send_request(&t, &csm_number()).no_deliver_by();
    assert!(hand_to_sender(&w, &[req.json()]).await.is_empty());
    eventually(Duration::from_secs(10), || async {
        w.ledger(&req.key)
            .await
            .is_some_and(|l| l.state == LedgerState::Parked)
    })
    .await;
    let redrive = format!("/admin/tenants/{t}/messages/{}/redrive", req.key);
    let (status, body, _) = admin(&w, "POST", &redrive, None).await;
    assert_eq!(status, 200, "{body}");

    let got = w
        .drain_grouped_until("SendQueue", Duration::from_secs(10), |got| {
            keyed(got, &req.key).is_some()
        })
        .await;
    let redriven =
        keyed(&got, &req.key).unwrap_or_else(|| panic!("not on the send queue: {got:?}"));
    assert_eq!(redriven.group.as_deref(), Some(t.as_str()), "{got:?}");
    w.shutdown().await;
}
