//! Issue 6: submitting the six templates and keeping their status right.

use fincelo::templates::handler::Action;
use std::time::Duration;

use fincelo::store::{TemplateChangeAt, TemplateStatusChange};
use meta_sandbox::TemplateDecision;
use serde_json::json;

use fincelo::templates::catalog::Catalog;

use crate::helpers::{eventually, spawn_world, World};

/// Meta reviews templates by hand: they stay PENDING until the test decides.
async fn meta_reviews_by_hand(w: &World) {
    w.meta
        .set_knobs(&json!({"template_review": "manual"}))
        .await
        .unwrap();
}

/// Submits the six templates while Meta reviews them by hand, so they stay
/// PENDING for the test (whatever the clock does); returns the submission
/// report.
async fn submit_while_meta_reviews(w: &World) -> serde_json::Value {
    meta_reviews_by_hand(w).await;
    let (status, body) = w
        .stack
        .invoke_templates(Action::Submit {
            tenant_id: w.tenant_id.clone(),
        })
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

/// A world whose six templates were submitted and `name` approved at Meta
/// with its webhook lost: the record still says PENDING.
async fn world_with_a_missed_approval(name: &str) -> World {
    let w = spawn_world().await;
    submit_while_meta_reviews(&w).await;
    approve_without_webhook(&w, name).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = w.template(name).await.unwrap();
    assert_eq!(stale.status, "PENDING", "no webhook, no change");
    w
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
        .invoke_templates(Action::Submit {
            tenant_id: w.tenant_id.clone(),
        })
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
        .invoke_templates(Action::Submit {
            tenant_id: w.tenant_id.clone(),
        })
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
    let w = world_with_a_missed_approval("fincelo_escalation_notify").await;
    let (status, body) = w
        .stack
        .invoke_templates(Action::Reconcile {
            tenant_id: w.tenant_id.clone(),
        })
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
            &TemplateChangeAt {
                name: "fincelo_usage_risk",
                language: "en",
                template_id: Some("123"),
                change: &TemplateStatusChange::Status {
                    status: "APPROVED",
                    reason: None,
                },
                at: ts,
                event_owed_at: None,
            },
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
        .invoke_templates(Action::Reconcile {
            tenant_id: w.tenant_id.clone(),
        })
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
        .invoke_templates(Action::Reconcile {
            tenant_id: w.tenant_id.clone(),
        })
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
        .invoke_templates(Action::Reconcile {
            tenant_id: w.tenant_id.clone(),
        })
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

/// An API Gateway HTTP API (payload 2.0) event for the template routes, as
/// AWS sends it with the `AWS_IAM` authoriser: the route key as declared in
/// template.yaml, the path's `tenant_id` under `pathParameters`
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>).
fn templates_http_event(method: &str, tenant_id: &str) -> serde_json::Value {
    let path = format!("/admin/tenants/{tenant_id}/templates");
    json!({
        "version": "2.0",
        "routeKey": format!("{method} /admin/tenants/{{tenant_id}}/templates"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "content-length": "0",
            "host": "id.execute-api.us-east-1.amazonaws.com",
            "user-agent": "fincelo-backend",
            "x-amz-date": "20261130T143000Z",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "authorizer": {"iam": {
                "accessKey": "AKIA",
                "accountId": "123456789012",
                "callerId": "AROA:backend",
                "principalOrgId": null,
                "userArn": "arn:aws:sts::123456789012:assumed-role/fincelo-backend/x",
                "userId": "AROA"
            }},
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
                "userAgent": "fincelo-backend"
            },
            "requestId": "request-id",
            "routeKey": format!("{method} /admin/tenants/{{tenant_id}}/templates"),
            "stage": "$default",
            "time": "30/Nov/2026:14:30:00 +0000",
            "timeEpoch": 1_796_049_000_000_u64
        },
        "pathParameters": {"tenant_id": tenant_id},
        "isBase64Encoded": false
    })
}

/// Calls the template function's Lambda entry point with an HTTP API
/// event; returns the response's status and JSON body.
async fn via_lambda_http(w: &World, method: &str, tenant_id: &str) -> (i64, serde_json::Value) {
    let resp =
        fincelo::templates::lambda::serve(&w.stack.app, templates_http_event(method, tenant_id))
            .await;
    assert_eq!(
        resp["headers"]["content-type"], "application/json",
        "{resp:#}"
    );
    let body = resp["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    (resp["statusCode"].as_i64().unwrap_or_default(), body)
}

/// The admin API through the Lambda entry point: POST submits the six
/// templates, GET lists them as recorded, an unknown tenant is 404 and
/// another method 405, each as an API Gateway v2 response.
#[tokio::test]
async fn the_http_api_submits_and_lists_templates_through_the_lambda_entry_point() {
    let w = spawn_world().await;
    meta_reviews_by_hand(&w).await;
    let (status, body) = via_lambda_http(&w, "POST", &w.tenant.tenant_id).await;
    assert_eq!(status, 200, "{body:#}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 6, "{body:#}");
    assert!(
        results.iter().all(|r| r["outcome"] == "created"),
        "{body:#}"
    );
    assert_eq!(w.meta.templates(&w.tenant.waba_id).await.unwrap().len(), 6);

    let (status, body) = via_lambda_http(&w, "GET", &w.tenant.tenant_id).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["tenant_id"], w.tenant.tenant_id.as_str());
    let listed = body["templates"].as_array().expect("templates");
    assert_eq!(listed.len(), 6, "{body:#}");
    assert!(listed.iter().all(|t| t["status"] == "PENDING"), "{body:#}");

    let (status, _) = via_lambda_http(&w, "POST", "nobody").await;
    assert_eq!(status, 404);
    let (status, _) = via_lambda_http(&w, "DELETE", &w.tenant.tenant_id).await;
    assert_eq!(status, 405);
    w.shutdown().await;
}

/// The hourly schedule as template.yaml wires it: the event EventBridge
/// delivers (the rule's `Input`) runs `reconcile_all` through the Lambda
/// entry point, and an approval whose webhook Meta never delivered is
/// repaired.
#[tokio::test]
async fn the_hourly_schedule_repairs_a_missed_approval() {
    let template: serde_yaml::Value =
        serde_yaml::from_str(fincelo_local::provision::TEMPLATE_YAML).expect("template.yaml");
    let schedule =
        &template["Resources"]["TemplatesFunction"]["Properties"]["Events"]["ReconcileHourly"];
    assert_eq!(schedule["Type"].as_str(), Some("Schedule"));
    assert_eq!(
        schedule["Properties"]["Schedule"].as_str(),
        Some("rate(1 hour)")
    );
    let event: serde_json::Value = serde_json::from_str(
        schedule["Properties"]["Input"]
            .as_str()
            .expect("the schedule's Input"),
    )
    .expect("the schedule's Input is JSON");

    let w = world_with_a_missed_approval("fincelo_escalation_notify").await;

    let answer = fincelo::templates::lambda::serve(&w.stack.app, event).await;
    assert_eq!(answer["status"], 200, "{answer:#}");
    let reports = answer["body"]["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 1, "one tenant in this world: {answer:#}");
    assert_eq!(reports[0]["tenant_id"], w.tenant.tenant_id.as_str());
    assert!(
        reports[0]["repaired"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n
                .as_str()
                .is_some_and(|n| n.contains("fincelo_escalation_notify")))),
        "{answer:#}"
    );
    let fixed = w.template("fincelo_escalation_notify").await.unwrap();
    assert_eq!(fixed.status, "APPROVED");
    w.shutdown().await;
}

/// A direct invoke the function does not understand is answered 400 with
/// what it expected, not run.
#[tokio::test]
async fn a_direct_invoke_with_an_unknown_action_is_refused() {
    let w = spawn_world().await;
    let answer =
        fincelo::templates::lambda::serve(&w.stack.app, json!({"action": "delete_all"})).await;
    assert_eq!(answer["status"], 400, "{answer:#}");
    assert!(
        answer["body"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("reconcile_all")),
        "{answer:#}"
    );
    w.shutdown().await;
}
