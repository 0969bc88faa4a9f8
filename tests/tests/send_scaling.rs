//! Issue 21: the local runner's send queue scales as Lambda's SQS event
//! source mapping does (`fincelo_local::event_source`): five pollers to
//! start, one more every 200 ms while receives come back full, up to the
//! function's `SENDER_MAX_CONCURRENCY`, and back to five once the queue is
//! empty; and every alert is still sent exactly once.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;

use crate::helpers::{
    body_of, csm_number, eventually, send_request, spawn_world_with, WorldOptions,
};

/// A maximum of 8 from the function's own setting (`SENDER_MAX_CONCURRENCY`,
/// as `SenderMaxConcurrency` sets it in a deploy), and 120 alerts at once:
/// the mapping starts at five pollers, reaches eight under the backlog and
/// never more, returns to five when the queue is empty, and Meta (the
/// sandbox) receives each of the 120 alerts exactly once.
// Two threads: the pollers and the sandbox share the runtime with the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_scales_the_pollers_up_to_the_maximum_and_back() {
    let mut opts = WorldOptions::default();
    opts.env.insert("SENDER_MAX_CONCURRENCY".into(), "8".into());
    let w = spawn_world_with(opts).await;
    assert_eq!(w.stack.app.config.sender.max_concurrency, 8);
    let at_start = w.stack.sender_concurrency().expect("the stack polls");
    assert_eq!((at_start.live, at_start.peak, at_start.max), (5, 5, 8));

    // 24 CSMs, 5 alerts each: no CSM meets Meta's pair limit.
    let csms: Vec<String> = (0..24).map(|_| csm_number()).collect();
    for csm in &csms {
        w.csm_writes(csm).await;
    }
    let texts: Vec<String> = (0..120).map(|i| format!("backlog alert {i}")).collect();
    join_all(texts.iter().enumerate().map(|(i, text)| {
        let req = send_request(&w.tenant.tenant_id, &csms[i % csms.len()]).text(text);
        let w = &w;
        async move { w.enqueue(&req.json()).await }
    }))
    .await;

    eventually(Duration::from_secs(90), || async {
        w.meta.stats().await.unwrap().accepted >= 120
    })
    .await;
    let during = w.stack.sender_concurrency().expect("the stack polls");
    assert_eq!(
        during.peak, 8,
        "the backlog should scale the pollers to the maximum: {during:?}"
    );

    eventually(Duration::from_secs(20), || async {
        w.stack.sender_concurrency().is_some_and(|c| c.live == 5)
    })
    .await;
    let after = w.stack.sender_concurrency().expect("the stack polls");
    assert_eq!(after.peak, 8, "never above the maximum: {after:?}");

    let sent = w
        .meta
        .messages(Some(&w.tenant.phone_number_id), None)
        .await
        .expect("sandbox messages");
    let mut times: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        if let Some(body) = body_of(m) {
            *times.entry(body).or_default() += 1;
        }
    }
    for text in &texts {
        assert_eq!(
            times.get(text),
            Some(&1),
            "{text} should reach Meta exactly once"
        );
    }
    assert_eq!(w.meta.stats().await.unwrap().accepted, 120);
    w.shutdown().await;
}
