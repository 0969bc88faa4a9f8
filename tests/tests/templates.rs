//! Issue 6: submitting the six templates and keeping their status right.

use std::time::Duration;

use fincelo::store::TemplateStatusChange;
use meta_sandbox::TemplateDecision;
use serde_json::json;

use fincelo::templates::catalog::Catalog;

use crate::helpers::{eventually, spawn_world, World};

/// Submits the six templates while Meta reviews them by hand, so they stay
/// PENDING for the test (whatever the clock does); returns the submission
/// report.
async fn submit_while_meta_reviews(w: &World) -> serde_json::Value {
    w.meta
        .set_knobs(&json!({"template_review": "manual"}))
        .await
        .unwrap();
    let (status, body) = w
        .stack
        .invoke_templates("submit", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Meta approves a template and its webhook is lost.
async fn approve_without_webhook(w: &World, name: &str) {
    w.meta
        .decide_template(&TemplateDecision {
            waba_id: w.tenant.waba_id.clone(),
            name: name.into(),
            language: "en".into(),
            status: "APPROVED".into(),
            reason: None,
            webhook: Some(false),
        })
        .await
        .unwrap();
}

/// The first submit creates all six (PENDING while Meta reviews); a second submit reports each as `already_there`.
#[tokio::test]
async fn submit_creates_six_then_reports_already_there() {
    let w = spawn_world().await;
    let body = submit_while_meta_reviews(&w).await;
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(
        results.iter().all(|r| r["outcome"] == "created"),
        "{body:#}"
    );
    let list = w
        .stack
        .app
        .store
        .list_templates(&w.tenant_id)
        .await
        .unwrap();
    let mut names: Vec<_> = list.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    let mut expected: Vec<&str> = Catalog::builtin()
        .all()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(list.iter().all(|t| t.status == "PENDING"), "{list:#?}");
    assert_eq!(w.meta.templates(&w.tenant.waba_id).await.unwrap().len(), 6);

    let (status, body) = w
        .stack
        .invoke_templates("submit", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "already_there" && r["status"] == "PENDING"),
        "{body:#}"
    );
    assert_eq!(
        w.meta.templates(&w.tenant.waba_id).await.unwrap().len(),
        6,
        "no duplicates at Meta"
    );
    w.shutdown().await;
}

/// A template Meta rejects lands as REJECTED with Meta's reason (via the status webhook).
#[tokio::test]
async fn a_rejected_template_lands_with_its_reason() {
    let w = spawn_world().await;
    w.meta.set_knobs(&json!({"reject_templates": ["fincelo_usage_risk"], "template_approval_delay_ms": 1500})).await.unwrap();
    let (status, body) = w
        .stack
        .invoke_templates("submit", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(10), || async {
        w.template("fincelo_usage_risk")
            .await
            .is_some_and(|t| t.status == "REJECTED")
    })
    .await;
    let t = w.template("fincelo_usage_risk").await.unwrap();
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r != "NONE"),
        "reason recorded: {t:?}"
    );
    // Operators see it: an event for the Fincelo app.
    let events = w
        .drain_until("EventsQueue", Duration::from_secs(1), |_| false)
        .await;
    assert!(
        events.iter().any(|e| e["type"] == "template.status_changed"
            && e["name"] == "fincelo_usage_risk"
            && e["status"] == "REJECTED"),
        "{events:#?}"
    );
    w.shutdown().await;
}

/// A decision whose webhook was missed leaves the record stale until `reconcile` repairs it from Meta's list.
#[tokio::test]
async fn reconcile_repairs_a_missed_webhook() {
    let w = spawn_world().await;
    submit_while_meta_reviews(&w).await;
    approve_without_webhook(&w, "fincelo_escalation_notify").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = w.template("fincelo_escalation_notify").await.unwrap();
    assert_eq!(stale.status, "PENDING", "no webhook, no change");
    let (status, body) = w
        .stack
        .invoke_templates("reconcile", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    let fixed = w.template("fincelo_escalation_notify").await.unwrap();
    assert_eq!(fixed.status, "APPROVED");
    assert!(
        body["repaired"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap_or("")
            .contains("fincelo_escalation_notify")),
        "{body:#}"
    );
    w.shutdown().await;
}

/// An APPROVED status webhook that lands in the same second as the submission's PENDING must not be overwritten by it.
#[tokio::test]
async fn approval_webhook_racing_the_submission_is_not_overwritten() {
    let w = spawn_world().await;
    let store = &w.stack.app.store;
    let ts = fincelo::clock::Clock::system().now();
    store
        .apply_template_change(
            &w.tenant_id,
            "fincelo_usage_risk",
            "en",
            Some("123"),
            &TemplateStatusChange::Status {
                status: "APPROVED",
                reason: None,
            },
            ts,
            None,
        )
        .await
        .unwrap();
    store
        .record_template_submission(
            &w.tenant_id,
            "fincelo_usage_risk",
            "en",
            "123",
            "PENDING",
            Some("UTILITY"),
        )
        .await
        .unwrap();
    let t = store
        .get_template(&w.tenant_id, "fincelo_usage_risk", "en")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.status, "APPROVED",
        "Meta approved it; the submission's PENDING is older news"
    );
    w.shutdown().await;
}

/// `reconcile` repairs a record but the events queue refuses its event: the
/// record is marked, and the next reconcile (with nothing left to repair)
/// publishes the owed event once; a third publishes nothing.
#[tokio::test]
async fn a_reconcile_event_refused_by_the_queue_is_published_by_the_next_reconcile() {
    let w = spawn_world().await;
    submit_while_meta_reviews(&w).await;
    approve_without_webhook(&w, "fincelo_escalation_notify").await;
    w.stack.drain("EventsQueue").await.unwrap();
    let broken = w.app_with_broken_events_queue();
    let tenant = fincelo::ids::TenantId::parse(w.tenant.tenant_id.clone()).unwrap();

    assert!(fincelo::templates::submit::reconcile(&broken, &tenant)
        .await
        .is_err());
    let repaired = w.template("fincelo_escalation_notify").await.unwrap();
    assert_eq!(repaired.status, "APPROVED", "the repair applied");
    assert!(
        repaired.status_owed_since.is_some(),
        "and its event is owed"
    );
    // The next hourly reconcile comes long after the failed one.
    w.advance(Duration::from_secs(3600)).await;

    let approved = |events: Vec<serde_json::Value>| {
        events
            .iter()
            .filter(|e| {
                e["type"] == "template.status_changed"
                    && e["name"] == "fincelo_escalation_notify"
                    && e["status"] == "APPROVED"
            })
            .count()
    };
    let (status, body) = w
        .stack
        .invoke_templates("reconcile", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["repaired"],
        json!([]),
        "nothing left to repair: {body}"
    );
    assert_eq!(approved(w.stack.drain("EventsQueue").await.unwrap()), 1);
    assert!(w
        .template("fincelo_escalation_notify")
        .await
        .unwrap()
        .status_owed_since
        .is_none());

    let (status, body) = w
        .stack
        .invoke_templates("reconcile", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(approved(w.stack.drain("EventsQueue").await.unwrap()), 0);
    w.shutdown().await;
}

/// End to end: with immediate approval, one submit (no reconcile) ends with all six APPROVED in the table.
#[tokio::test]
async fn immediate_approval_ends_with_six_approved_without_reconcile() {
    let w = spawn_world().await;
    // Submits, then waits for six APPROVED in the table; webhooks are
    // retried by the sandbox, so it allows time. No reconcile runs.
    w.approve_all_templates().await;
    w.shutdown().await;
}

/// The token was rotated while the template function held the old one: the
/// submission meets one 190, re-reads the secret and submits all six.
#[tokio::test]
async fn a_rotated_token_is_picked_up_on_the_first_190() {
    let w = spawn_world().await;
    let (status, body) = w
        .stack
        .invoke_templates("reconcile", Some(&w.tenant.tenant_id))
        .await;
    assert_eq!(status, 200, "the old token is cached: {body}");
    w.rotate_token().await;
    let body = submit_while_meta_reviews(&w).await;
    let outcomes: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["created"; 6], "{body}");
    let stats = w.meta.stats().await.unwrap();
    assert_eq!(stats.rejections_by_code.get("190").copied(), Some(1));
    assert_eq!(w.meta.templates(&w.tenant.waba_id).await.unwrap().len(), 6);
    w.shutdown().await;
}
