//! Issue 2: the adapters against the real emulator.

use crate::helpers::now;
use aws_sdk_dynamodb::types::AttributeValue;
use fincelo::identity::Identity;
use fincelo::phone::E164;
use fincelo::store::WINDOW_SECS;
use secrecy::ExposeSecret;

use crate::helpers::{csm_number, short_id, spawn_world};

/// A conditional write refuses a duplicate: the first sighting of an id
/// wins; a second one meanwhile is told the first may be publishing its
/// event; once that event is published (its mark cleared), a sighting is a
/// plain duplicate.
#[tokio::test]
async fn a_conditional_write_rejects_a_duplicate() {
    use fincelo::store::Change;
    let w = spawn_world().await;
    let id = format!("wamid.{}", short_id());
    let store = &w.stack.app.store;
    let sight = || store.record_sighting(&w.tenant_id, "msg", &id, now());
    assert_eq!(sight().await.unwrap(), Change::Applied, "first sighting");
    assert_eq!(
        sight().await.unwrap(),
        Change::InFlight,
        "its event is on its way"
    );
    assert!(store
        .clear_sighting_owed(&w.tenant_id, "msg", &id)
        .await
        .unwrap());
    assert_eq!(sight().await.unwrap(), Change::Unchanged, "a duplicate");
    w.shutdown().await;
}

/// A message goes through the provisioned send queue with the real SDK: send, receive, delete, gone.
#[tokio::test]
async fn sqs_send_receive_delete_round_trip() {
    let w = spawn_world().await;
    let sqs = w.stack.app.queues.client();
    let url = w.stack.resources.queue("EventsQueue");
    assert!(!url.is_empty(), "EventsQueue provisioned");
    let body = format!("{{\"probe\":\"{}\"}}", short_id());
    sqs.send_message()
        .queue_url(url)
        .message_body(&body)
        .send()
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let msgs = got.messages.unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body.as_deref(), Some(body.as_str()));
    sqs.delete_message()
        .queue_url(url)
        .receipt_handle(msgs[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .unwrap();
    let again = sqs
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    assert!(
        again.messages.unwrap_or_default().is_empty(),
        "deleted message does not come back"
    );
    w.shutdown().await;
}

/// A tenant's secrets stored by `add_tenant` are read back from Secrets
/// Manager through the directory: the token from its token secret, the app
/// secret and verify token from its webhook secret.
#[tokio::test]
async fn tenant_secret_is_read_from_secrets_manager() {
    let w = spawn_world().await;
    let tenant = w
        .stack
        .app
        .directory
        .tenant(&w.tenant_id)
        .await
        .unwrap()
        .expect("tenant configured");
    let token = w.stack.app.directory.token(&tenant).await.unwrap();
    assert_eq!(token.access_token.expose_secret(), w.tenant.access_token);
    let secrets = w.stack.app.directory.secrets(&tenant).await.unwrap();
    assert_eq!(secrets.app_secret.expose_secret(), w.tenant.app_secret);
    assert_eq!(secrets.verify_token.expose_secret(), w.tenant.verify_token);
    w.shutdown().await;
}

/// A window whose expiry has passed is still stored (moto never deletes by TTL) but reads as closed; its `ttl` equals its expiry.
#[tokio::test]
async fn a_window_past_its_expiry_reads_as_closed() {
    let w = spawn_world().await;
    let csm = Identity::Number(E164::parse(&csm_number()).unwrap());
    let store = &w.stack.app.store;
    let ts = now() - 2 * 24 * 3600;
    assert!(store
        .open_window(&w.tenant_id, &csm, ts, "wamid.old")
        .await
        .unwrap());
    let win = store
        .get_window(&w.tenant_id, &csm)
        .await
        .unwrap()
        .expect("item still there");
    assert_eq!(win.expires_at, ts + WINDOW_SECS);
    assert!(!win.is_open(now(), 0), "expired window must read as closed");
    let raw = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key(
            "pk",
            AttributeValue::S(format!("T#{}#WINDOW#{}", w.tenant_id, csm.key())),
        )
        .key("sk", AttributeValue::S("WINDOW".into()))
        .send()
        .await
        .unwrap();
    let item = raw.item.expect("raw item");
    assert_eq!(
        item.get("ttl"),
        Some(&AttributeValue::N((ts + WINDOW_SECS).to_string()))
    );
    w.shutdown().await;
}

/// Fifty instances claiming one idempotency key at once: the claim's
/// condition lets exactly one win, and every other one is told who holds it.
/// (Against plain `moto_server` under load two claims have won; that is why
/// `infra/moto_server.py` gives DynamoDB requests their real atomicity.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_key_have_one_winner() {
    let w = spawn_world().await;
    let store = &w.stack.app.store;
    let key = fincelo::ids::IdempotencyKey::parse(format!("race-{}", short_id())).unwrap();
    let claims = (0..50).map(|i| {
        let key = key.clone();
        let tenant = w.tenant_id.clone();
        async move {
            store
                .claim(&tenant, &key, "{}", &format!("token-{i}"), now(), 60)
                .await
                .expect("claim")
        }
    });
    let outcomes = futures::future::join_all(claims).await;
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, fincelo::store::ClaimOutcome::Claimed(_)))
        .count();
    assert_eq!(winners, 1, "{outcomes:#?}");
    assert!(outcomes.iter().all(|o| match o {
        fincelo::store::ClaimOutcome::Claimed(e) | fincelo::store::ClaimOutcome::Existing(e) =>
            e.state == fincelo::store::LedgerState::Claimed && e.attempts == 1,
    }));
    w.shutdown().await;
}

/// A batch's windows in one read: an open window, a CSM with none, a CSM
/// named twice (DynamoDB refuses a request that names a key twice, so the
/// store asks once) and another tenant's window for the same number (keys
/// are per tenant). A malformed window item is left out of the answer, so
/// its caller reads it alone and gets the error, while the others stand.
#[tokio::test]
async fn windows_are_read_together_per_tenant_and_a_malformed_one_is_left_out() {
    let w = spawn_world().await;
    let store = &w.stack.app.store;
    let other = fincelo::ids::TenantId::parse(format!("other-{}", short_id())).unwrap();
    let open = Identity::Number(E164::parse(&csm_number()).unwrap());
    let none = Identity::Number(E164::parse(&csm_number()).unwrap());
    let broken = Identity::Number(E164::parse(&csm_number()).unwrap());
    let ts = now();
    assert!(store
        .open_window(&w.tenant_id, &open, ts, "wamid.a")
        .await
        .unwrap());
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item(
            "pk",
            AttributeValue::S(format!("T#{}#WINDOW#{}", w.tenant_id, broken.key())),
        )
        .item("sk", AttributeValue::S("WINDOW".into()))
        .item("expires_at", AttributeValue::S("soon".into()))
        .send()
        .await
        .unwrap();

    let asked = [
        (w.tenant_id.clone(), open.clone()),
        (w.tenant_id.clone(), none.clone()),
        (w.tenant_id.clone(), open.clone()),
        (other.clone(), open.clone()),
        (w.tenant_id.clone(), broken.clone()),
    ];
    let windows = store.get_windows(&asked).await.unwrap();

    assert_eq!(windows.len(), 3, "{windows:?}");
    let got = windows[&(w.tenant_id.clone(), open.clone())].expect("open window");
    assert_eq!(got.expires_at, ts + WINDOW_SECS);
    assert!(got.is_open(now(), 0));
    assert_eq!(windows[&(w.tenant_id.clone(), none)], None);
    assert_eq!(windows[&(other, open)], None, "another tenant's key");
    assert!(!windows.contains_key(&(w.tenant_id.clone(), broken.clone())));
    assert!(matches!(
        store.get_window(&w.tenant_id, &broken).await,
        Err(fincelo::store::StoreError::Malformed { .. })
    ));
    assert!(store.get_windows(&[]).await.unwrap().is_empty());
    w.shutdown().await;
}

/// `infra/moto_server.py` keeps each parsed update expression and runs its
/// static checks once per (expression, names) pair, to spare moto's
/// quadratic re-checking. What DynamoDB answers must not change with that:
/// one expression whose names collide is refused every time however often it
/// passed with other names, two SET clauses are refused every time, and
/// `if_not_exists` reads each request's own item.
#[tokio::test]
async fn moto_keeps_dynamodb_update_expression_rules_for_repeated_expressions() {
    let w = spawn_world().await;
    let store = &w.stack.app.store;
    // DynamoDB refuses a value the expression does not use, so `:zero` goes only where it is used.
    let update = |pk: &str, expr: &str, a: &str, b: &str| {
        let zero = expr
            .contains(":zero")
            .then(|| AttributeValue::N("0".into()));
        store
            .client()
            .update_item()
            .table_name(store.table_name())
            .key("pk", AttributeValue::S(pk.to_string()))
            .key("sk", AttributeValue::S("EXPR".into()))
            .update_expression(expr)
            .expression_attribute_names("#a", a)
            .expression_attribute_names("#b", b)
            .set_expression_attribute_values(Some(
                [(":v".to_string(), AttributeValue::N("1".into()))]
                    .into_iter()
                    .chain(zero.map(|z| (":zero".to_string(), z)))
                    .collect(),
            ))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
    };
    let code = |r: Result<_, aws_sdk_dynamodb::error::SdkError<_, _>>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
            .unwrap_or("none")
            .to_string(),
    };
    let pk = format!("expr-{}", short_id());
    let pair = "SET #a = :v, #b = :v";
    for round in 0..2 {
        assert_eq!(
            code(update(&pk, pair, "x", "y").await),
            "ok",
            "round {round}"
        );
        assert_eq!(
            code(update(&pk, pair, "x", "x").await),
            "ValidationException",
            "round {round}: two paths overlap"
        );
    }
    let two_sets = "SET #a = :v SET #b = :v";
    for round in 0..2 {
        assert_eq!(
            code(update(&pk, two_sets, "x", "y").await),
            "ValidationException",
            "round {round}: one SET clause only"
        );
    }

    let count = "SET #a = if_not_exists(#a, :zero) + :v, #b = :v";
    let counted = |out: aws_sdk_dynamodb::operation::update_item::UpdateItemOutput| {
        out.attributes()
            .and_then(|a| a.get("n"))
            .and_then(|v| v.as_n().ok())
            .cloned()
    };
    let first = format!("{pk}-1");
    let second = format!("{pk}-2");
    for (item, want) in [(&first, "1"), (&first, "2"), (&second, "1"), (&first, "3")] {
        let out = update(item, count, "n", "m").await.expect("count");
        assert_eq!(counted(out).as_deref(), Some(want), "{item}");
    }
    w.shutdown().await;
}

/// `infra/moto_server.py` backs up only the items a TransactWriteItems
/// names, not whole tables (moto's own backup made each transaction cost as
/// much as the table holds). What DynamoDB answers must not change with
/// that: a cancelled transaction leaves every item as it was (an updated one
/// unchanged, a put one absent, a deleted one present), and a committed one
/// applies all of its writes.
#[tokio::test]
async fn moto_puts_back_every_item_a_cancelled_transaction_touched() {
    use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
    let w = spawn_world().await;
    let store = &w.stack.app.store;
    let table = store.table_name().to_string();
    let pk = format!("tx-{}", short_id());
    let s = |v: &str| AttributeValue::S(v.to_string());
    let key = |sk: &str| {
        [("pk".to_string(), s(&pk)), ("sk".to_string(), s(sk))]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    for sk in ["counted", "doomed", "guard"] {
        store
            .client()
            .put_item()
            .table_name(&table)
            .set_item(Some(key(sk)))
            .item("n", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("seed item");
    }
    let transact = |guard: &str| {
        let table = table.clone();
        let items = vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&table)
                        .set_key(Some(key("counted")))
                        .update_expression("ADD n :one")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table)
                        .set_item(Some(key("new")))
                        .item("n", AttributeValue::N("7".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&table)
                        .set_key(Some(key("doomed")))
                        .build()
                        .unwrap(),
                )
                .build(),
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&table)
                        .set_key(Some(key(guard)))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        ];
        store
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
    };
    let read = |sk: &'static str| {
        let k = key(sk);
        async move {
            store
                .client()
                .get_item()
                .table_name(store.table_name())
                .set_key(Some(k))
                .consistent_read(true)
                .send()
                .await
                .expect("get")
                .item
                .and_then(|i| i.get("n").and_then(|n| n.as_n().ok()).cloned())
                .unwrap_or_else(|| "absent".into())
        }
    };
    let refused = transact("no-such-item").await.expect_err("the check fails");
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&refused),
        Some("TransactionCanceledException")
    );
    assert_eq!(read("counted").await, "1", "the update is undone");
    assert_eq!(read("new").await, "absent", "the put is undone");
    assert_eq!(read("doomed").await, "1", "the delete is undone");

    // The same transaction with a check that holds applies every write.
    transact("guard").await.expect("committed");
    assert_eq!(read("counted").await, "2");
    assert_eq!(read("new").await, "7");
    assert_eq!(read("doomed").await, "absent");
    w.shutdown().await;
}
