//! The newcomer's scenario, end to end, exactly as `make dev` plays it:
//! through queues and HTTP only.

use crate::helpers::{csm_number, spawn_world_with, WorldOptions, FREE_FORM};

/// Templates are submitted and approved by webhook; an alert to a CSM
/// without a window goes out as a template; the CSM replies; the next alert
/// goes free-form; both messages reach `read`; the CSM's tap on Acknowledge
/// is published as `alert.response`. Asserts what the sandbox received,
/// what DynamoDB holds and what the events queue carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_scenario_runs_end_to_end() {
    let mut opts = WorldOptions::default();
    opts.sandbox.knobs.template_approval_delay_ms = 300;
    let world = spawn_world_with(opts).await;
    let csm = csm_number();

    let timeline = fincelo_local::scenario::play(&world.stack, &world.meta, &world.tenant, &csm)
        .await
        .expect("scenario completes");

    let sent = world.messages_to(&csm).await;
    assert_eq!(sent.len(), 2, "exactly two messages reached Meta: {sent:?}");
    assert_eq!(sent[0].kind, "template");
    assert_eq!(
        sent[0].template.as_ref().map(|t| t.name.as_str()),
        Some("fincelo_usage_opportunity")
    );
    assert_eq!(sent[1].kind, FREE_FORM);
    assert_eq!(Some(sent[0].wamid.clone()), timeline.template_wamid);
    assert_eq!(Some(sent[1].wamid.clone()), timeline.free_form_wamid);

    // The events the scenario read to print the response, then the rest.
    let mut events = timeline.events.clone();
    events.extend(world.stack.drain("EventsQueue").await.expect("drain"));
    let count = |ty: &str| events.iter().filter(|e| e["type"] == ty).count();
    assert_eq!(
        count("csm.message_received"),
        2,
        "the reply and the tap: {events:?}"
    );
    assert_eq!(count("alert.response"), 1, "{events:?}");
    let response = timeline.response.as_ref().expect("the response");
    assert_eq!(response["action"], "acknowledge");
    assert_eq!(response["wamid"], sent[0].wamid.as_str());
    assert!(
        timeline.lines.iter().any(|l| l.contains("alert.response")),
        "{:?}",
        timeline.lines
    );
    let approved = events
        .iter()
        .filter(|e| e["type"] == "template.status_changed" && e["status"] == "APPROVED")
        .count();
    assert_eq!(approved, 6, "one APPROVED event per template: {events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "send.outcome" && e["outcome"] == "sent")
            .count(),
        2
    );
    for wamid in [&sent[0].wamid, &sent[1].wamid] {
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "message.status_changed" && e["wamid"] == wamid.as_str())
            .filter_map(|e| e["status"].as_str())
            .collect();
        assert!(statuses.contains(&"read"), "{wamid}: {statuses:?}");
    }
    world.shutdown().await;
}
