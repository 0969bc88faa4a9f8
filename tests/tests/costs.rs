//! The cost ledger against the sandbox: every delivered message is counted
//! once, under the category and type Meta's `pricing` gave it, and the
//! admin API's month agrees exactly with what the sandbox billed
//! (`GET /_sandbox/stats` `pricing`, which counts each delivered message
//! once).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::helpers::*;

/// The ledger of the months a test can span, from the admin API over HTTP,
/// as one month: the days of each, and their totals summed. A status
/// counts on the UTC day Meta delivered it, so a run that crosses midnight
/// at the end of a month has some of its messages in each month.
async fn costs(w: &World) -> Value {
    let now = w.now();
    let mut months: Vec<String> = [now - 2 * 3600, now]
        .iter()
        .map(|t| fincelo::admin::when::iso8601(*t)[..7].to_string())
        .collect();
    months.dedup();
    let mut merged: Option<Value> = None;
    for month in months {
        let (status, v, text) = admin(
            w,
            "GET",
            &format!("/admin/tenants/{}/costs?month={month}", w.tenant.tenant_id),
            None,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        merged = Some(match merged {
            None => v,
            Some(mut m) => {
                let mut days = m["days"].as_array().cloned().unwrap_or_default();
                days.extend(v["days"].as_array().cloned().unwrap_or_default());
                m["days"] = days.into();
                for field in ["messages", "billable"] {
                    let sum = m["totals"][field].as_u64().unwrap_or(0)
                        + v["totals"][field].as_u64().unwrap_or(0);
                    m["totals"][field] = sum.into();
                }
                let cost = m["totals"]["estimated_cost"].as_f64().unwrap_or(0.0)
                    + v["totals"]["estimated_cost"].as_f64().unwrap_or(0.0);
                m["totals"]["estimated_cost"] = cost.into();
                m
            }
        });
    }
    merged.expect("at least one month")
}

/// (category, type) -> messages, over the month's days.
fn ledger_counts(v: &Value) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for d in v["days"].as_array().into_iter().flatten() {
        for c in d["categories"].as_array().into_iter().flatten() {
            *out.entry((
                c["category"].as_str().unwrap_or("").to_string(),
                c["type"].as_str().unwrap_or("").to_string(),
            ))
            .or_default() += c["messages"].as_u64().unwrap_or(0);
        }
    }
    out
}

/// (category, type) -> messages the sandbox billed for this tenant's number.
async fn billed(w: &World) -> BTreeMap<(String, String), u64> {
    let stats = w.meta.stats().await.expect("sandbox stats");
    let mut out = BTreeMap::new();
    for (category, types) in stats
        .pricing
        .get(&w.tenant.phone_number_id)
        .cloned()
        .unwrap_or_default()
    {
        for (kind, n) in types {
            out.insert((category.clone(), kind), n);
        }
    }
    out
}

/// Waits until the sandbox has billed `n` messages and the tenant's ledger
/// agrees with it exactly, per category and type; returns the ledger's
/// month, or what disagreed at `timeout`.
pub async fn ledger_agrees_with_sandbox(
    w: &World,
    n: u64,
    timeout: Duration,
) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (sandbox, v) = (billed(w).await, costs(w).await);
        if sandbox.values().sum::<u64>() == n && ledger_counts(&v) == sandbox {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the cost ledger {:?} does not agree with the sandbox's billing {sandbox:?} ({n} delivered messages expected)",
                ledger_counts(&v)
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn until_agreed(w: &World, n: u64) -> Value {
    ledger_agrees_with_sandbox(w, n, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Alerts to CSMs with and without an open window (free-form and template
/// sends, free and billed under Meta's rules): the month's ledger counts
/// each delivered message once, as the sandbox billed it, stays so while
/// `read` statuses keep arriving, prices the billable ones from the rate
/// card, and the status events carry the pricing.
#[tokio::test]
async fn a_run_of_alerts_is_costed_exactly_as_the_sandbox_billed_it() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csms: Vec<String> = (0..4).map(|_| csm_number()).collect();
    for c in csms.iter().step_by(2) {
        w.csm_writes(c).await;
    }
    let requests: Vec<Value> = (0..12)
        .map(|i| {
            let row = TEMPLATE_ROWS[i % TEMPLATE_ROWS.len()];
            send_request(&w.tenant.tenant_id, &csms[i % csms.len()])
                .event(row.0, row.1, row.2)
                .text(&format!("alert {i}: Globex is at 85% of its plan"))
                .json()
        })
        .collect();
    stream::iter(&requests)
        .for_each_concurrent(4, |r| w.enqueue(r))
        .await;

    let v = until_agreed(&w, 12).await;
    // `read` statuses (and Meta's duplicates) still arriving change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = costs(&w).await;
    assert_eq!(ledger_counts(&later), billed(&w).await, "{later:#}");
    assert_eq!(later["totals"]["messages"], 12, "{later:#}");

    let card = fincelo::costs::RateCard::builtin().expect("rate card");
    let sandbox = billed(&w).await;
    let billable: u64 = sandbox
        .iter()
        .filter(|((_, kind), _)| kind == "regular")
        .map(|(_, n)| n)
        .sum();
    let expected_micros: i64 = sandbox
        .iter()
        .filter(|((_, kind), _)| kind == "regular")
        .map(|((category, _), n)| card.price(category, "91").unwrap_or(0) * *n as i64)
        .sum();
    assert!(
        billable > 0,
        "some alerts went as billed templates: {sandbox:?}"
    );
    assert_eq!(v["totals"]["billable"], billable, "{v:#}");
    let cost = v["totals"]["estimated_cost"].as_f64().expect("cost");
    assert!(
        (cost - fincelo::costs::amount(expected_micros)).abs() < 1e-9,
        "{cost} != {expected_micros} micros: {v:#}"
    );
    assert_eq!(v["currency"], card.currency.as_str());
    // Every CSM number is Indian: one country in every row.
    for d in v["days"].as_array().into_iter().flatten() {
        for c in d["categories"].as_array().into_iter().flatten() {
            let countries = c["countries"].as_object().expect("countries");
            assert_eq!(countries.keys().collect::<Vec<_>>(), ["91"], "{c}");
        }
    }

    let events = w
        .drain_until("EventsQueue", Duration::from_secs(10), |got| {
            got.iter()
                .filter(|e| e["type"] == "message.status_changed" && e["status"] == "delivered")
                .count()
                >= 12
        })
        .await;
    let delivered: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message.status_changed" && e["status"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 12, "{events:#?}");
    for e in delivered {
        let p = &e["pricing"];
        assert_eq!(p["pricing_model"], "PMP", "{e}");
        assert_eq!(p["billable"], p["type"] == "regular", "{e}");
        assert!(p["category"].is_string(), "{e}");
    }
    w.shutdown().await;
}

/// Meta delivers a `delivered` status again, and sends a `read` carrying
/// the same pricing: the message is still counted once.
#[tokio::test]
async fn a_replayed_status_body_counts_once() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let csm = csm_number();
    w.enqueue(&send_request(&w.tenant.tenant_id, &csm).json())
        .await;
    until_agreed(&w, 1).await;

    let delivered = w
        .meta
        .webhooks(Some("messages"))
        .await
        .expect("webhook log")
        .into_iter()
        .find(|e| e.body["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] == "delivered")
        .expect("the delivered status's webhook")
        .body;
    assert!(
        delivered["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"].is_object(),
        "{delivered}"
    );
    let mut read = delivered.clone();
    read["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "read".into();
    for body in [&delivered, &delivered, &read] {
        let resp = w.post_signed(body.to_string().as_bytes()).await;
        assert_eq!(resp.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = costs(&w).await;
    assert_eq!(v["totals"]["messages"], 1, "{v:#}");
    assert_eq!(ledger_counts(&v), billed(&w).await, "{v:#}");
    w.shutdown().await;
}

/// The counted items under one of a tenant's cost partition keys.
async fn counted_items(w: &World, pk: &str) -> usize {
    let out = w
        .stack
        .app
        .store
        .client()
        .query()
        .table_name(w.stack.app.store.table_name())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("query the cost partition");
    out.items.unwrap_or_default().len()
}

/// A tenant's day is counted on several items (each its own partition key,
/// so DynamoDB's write limit per key does not bound a tenant's rate), the
/// month reads as their sum, and a day an older version counted on one
/// unsharded item (`T#{tenant}#COST`) is still in the sum.
#[tokio::test]
async fn a_tenants_day_is_counted_on_shards_and_read_as_their_sum() {
    let w = spawn_world().await;
    w.approve_all_templates().await;
    let requests: Vec<Value> = (0..16)
        .map(|_| send_request(&w.tenant.tenant_id, &csm_number()).json())
        .collect();
    stream::iter(&requests)
        .for_each_concurrent(4, |r| w.enqueue(r))
        .await;
    let v = until_agreed(&w, 16).await;

    let tenant = &w.tenant.tenant_id;
    let mut shards_used = 0;
    for shard in 0..fincelo::store::COST_SHARDS {
        if counted_items(&w, &format!("T#{tenant}#COST#{shard}")).await > 0 {
            shards_used += 1;
        }
    }
    // 16 wamids all hashing to one of 8 shards: a chance of 8^-15.
    assert!(
        shards_used >= 2,
        "16 messages counted on {shards_used} shard(s)"
    );
    assert_eq!(counted_items(&w, &format!("T#{tenant}#COST")).await, 0);

    let day = v["days"][0]["day"]
        .as_str()
        .expect("a counted day")
        .to_string();
    let unsharded: HashMap<String, AttributeValue> = [
        ("pk", format!("T#{tenant}#COST")),
        ("sk", format!("DAY#{day}")),
        ("tenant_id", tenant.to_string()),
        ("day", day.clone()),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_string(), AttributeValue::S(s)))
    .chain([(
        "n#utility#regular#91".to_string(),
        AttributeValue::N("5".into()),
    )])
    .collect();
    w.stack
        .app
        .store
        .client()
        .put_item()
        .table_name(w.stack.app.store.table_name())
        .set_item(Some(unsharded))
        .send()
        .await
        .expect("an unsharded day");
    let after = costs(&w).await;
    assert_eq!(after["totals"]["messages"], 16 + 5, "{after:#}");
    let days: Vec<&str> = after["days"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["day"].as_str())
        .collect();
    let mut unique = days.clone();
    unique.dedup();
    assert_eq!(days, unique, "each day once: {after:#}");
    w.shutdown().await;
}
