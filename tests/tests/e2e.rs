//! The newcomer's scenario, end to end, exactly as `make dev` plays it:
//! through queues and HTTP only.

use fincelo_local::scenario::Timeline;

use crate::helpers::{csm_number, spawn_world_with, World, WorldOptions, FREE_FORM};

/// A world with Meta approving templates at once, and the scenario played
/// in it for a new CSM.
async fn play_the_scenario() -> (World, String, Timeline) {
    let mut opts = WorldOptions::default();
    opts.sandbox.knobs.template_approval_delay_ms = 300;
    let world = spawn_world_with(opts).await;
    let csm = csm_number();
    let timeline = fincelo_local::scenario::play(&world.stack, &world.meta, &world.tenant, &csm)
        .await
        .expect("scenario completes");
    (world, csm, timeline)
}

/// Templates are submitted and approved by webhook; an alert to a CSM
/// without a window goes out as a template; the CSM replies; the next alert
/// goes free-form; both messages reach `read`; the CSM's tap on Acknowledge
/// is published as `alert.response`. Asserts what the sandbox received,
/// what DynamoDB holds and what the events queue carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_scenario_runs_end_to_end() {
    let (world, csm, timeline) = play_the_scenario().await;

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

/// Unix times in `line` near `now` (seconds or milliseconds, within two
/// days either way): a digit run a person would have to convert.
fn bare_unix_times(line: &str, now: i64) -> Vec<i64> {
    const NEAR: i64 = 2 * 86_400;
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|run| run.parse::<i64>().ok())
        .filter(|&n| (n - now).abs() <= NEAR || (n - now * 1000).abs() <= NEAR * 1000)
        .collect()
}

/// What `make dev` prints for the scenario is for people: every line is
/// one readable line of text, times read as ISO-8601 UTC, and nothing
/// shows Rust's Debug form (`Some(..)`, `None`) or bare unix seconds.
/// (The scenario prints exactly [`Timeline::lines`].)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_scenario_prints_only_what_a_person_reads() {
    let (world, _, timeline) = play_the_scenario().await;
    let now = world.now();
    let lines = &timeline.lines;
    assert!(lines.len() >= 10, "{lines:#?}");
    for line in lines {
        assert!(
            !line.trim().is_empty() && !line.chars().any(char::is_control),
            "one readable line: {line:?}"
        );
        for debug in ["Some(", "None", "\\\""] {
            assert!(!line.contains(debug), "Debug text {debug:?} in {line:?}");
        }
        assert_eq!(
            bare_unix_times(line, now),
            Vec::<i64>::new(),
            "bare unix time in {line:?}"
        );
    }
    // The times a person reads are there, as ISO-8601 UTC.
    let iso = |l: &&String| {
        l.split(' ')
            .any(|w| humantime::parse_rfc3339(w.trim_end_matches([',', ')'])).is_ok())
    };
    let timed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("window open until") || l.contains("delivered at"))
        .collect();
    assert_eq!(timed.len(), 3, "{lines:#?}");
    assert!(timed.iter().all(iso), "{timed:#?}");
    world.shutdown().await;
}
