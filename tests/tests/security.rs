//! Issue 23's least privilege and defence in depth: weak secrets fail
//! closed, each function reads only the secret it needs (in code and in
//! the IAM patterns), each queue takes messages only from its writers, the
//! webhook has its reserved concurrency, and Meta's `paging.next` never
//! takes the bearer token off the Graph API's origin.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fincelo::config::GraphConfig;
use fincelo::graph::GraphClient;
use fincelo::secrets::SecretKind;
use fincelo::webhook::signature::sign;
use fincelo::webhook::{handle, WebhookRequest};
use http::{HeaderMap, Method};
use secrecy::SecretString;
use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{csm_number, now, short_id, spawn_world, World};

/// An inbound-message body naming the world's tenant.
fn inbound_body(w: &World) -> Vec<u8> {
    let wa = csm_number().trim_start_matches('+').to_string();
    let ts = now();
    json!({"object": "whatsapp_business_account", "entry": [{"id": w.tenant.waba_id, "time": ts, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": w.tenant.phone_number_id},
            "contacts": [{"profile": {"name": "CSM"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": format!("wamid.in-{}", short_id()), "timestamp": ts.to_string(), "type": "text", "text": {"body": "on it"}}]}}
    ]}]})
    .to_string()
    .into_bytes()
}

/// POSTs `body` to the webhook handler, signed with `key`.
async fn post_signed_with(w: &World, key: &[u8], body: Vec<u8>) -> u16 {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        sign(key, &body).parse().expect("header"),
    );
    let req = WebhookRequest {
        method: Method::POST,
        query: None,
        headers,
        body: Bytes::from(body),
    };
    handle(&w.stack.app, req).await.status
}

/// Overwrites one of the tenant's secrets in Secrets Manager, as an
/// operator (or `template.yaml`'s placeholders) would, and drops the
/// functions' caches.
async fn overwrite_secret(w: &World, kind: SecretKind, value: Value) {
    let store = w.stack.app.directory.secret_store();
    store
        .client()
        .put_secret_value()
        .secret_id(kind.name(&store.secret_id(&w.tenant_id)))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("secret overwritten");
    w.stack.app.directory.invalidate(&w.tenant_id);
}

/// A tenant whose webhook secret still holds `template.yaml`'s
/// placeholders, or an empty app secret, fails closed: a body signed with
/// that publicly known key is refused 401 and nothing is acted on. A token
/// secret left at the placeholder is refused with an error that names the
/// secret and the field (what the sender and the template function log),
/// never a value.
#[tokio::test]
async fn placeholder_and_empty_secrets_fail_closed() {
    let w = spawn_world().await;
    let items_before = w.item_count().await;
    overwrite_secret(
        &w,
        SecretKind::Webhook,
        json!({"app_secret": "REPLACE_ME", "verify_token": "REPLACE_ME"}),
    )
    .await;
    assert_eq!(
        post_signed_with(&w, b"REPLACE_ME", inbound_body(&w)).await,
        401,
        "a body signed with the placeholder key is refused"
    );
    overwrite_secret(
        &w,
        SecretKind::Webhook,
        json!({"app_secret": "", "verify_token": w.tenant.verify_token}),
    )
    .await;
    assert_eq!(
        post_signed_with(&w, b"", inbound_body(&w)).await,
        401,
        "a body signed with an empty key is refused"
    );
    assert_eq!(
        w.handshake(&w.tenant.verify_token, "c-1").await.status(),
        403,
        "Meta's handshake is refused, not an error, while the secret is weak"
    );
    assert_eq!(w.item_count().await, items_before, "nothing was written");

    overwrite_secret(&w, SecretKind::Token, json!({"access_token": "REPLACE_ME"})).await;
    let tenant = w
        .stack
        .app
        .directory
        .tenant(&w.tenant_id)
        .await
        .unwrap()
        .unwrap();
    let err = w
        .stack
        .app
        .directory
        .token(&tenant)
        .await
        .expect_err("the placeholder token is refused")
        .to_string();
    assert!(
        err.contains("/token") && err.contains("access_token is still the placeholder"),
        "{err}"
    );
    // The real values, put back, are read again (after the short negative TTL).
    overwrite_secret(
        &w,
        SecretKind::Webhook,
        json!({"app_secret": w.tenant.app_secret, "verify_token": w.tenant.verify_token}),
    )
    .await;
    assert_eq!(
        post_signed_with(&w, w.tenant.app_secret.as_bytes(), inbound_body(&w)).await,
        200
    );
    w.shutdown().await;
}

/// The webhook needs only the webhook secret, the sender only the token
/// secret: with the other one gone, each still works. (The IAM patterns
/// that enforce this in AWS are checked below.)
#[tokio::test]
async fn each_function_reads_only_its_own_secret() {
    let w = spawn_world().await;
    let store = w.stack.app.directory.secret_store();
    let base = store.secret_id(&w.tenant_id);
    store
        .client()
        .delete_secret()
        .secret_id(SecretKind::Token.name(&base))
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("token secret deleted");
    w.stack.app.directory.invalidate(&w.tenant_id);
    let challenge = format!("ch-{}", short_id());
    let r = w.handshake(&w.tenant.verify_token, &challenge).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        post_signed_with(&w, w.tenant.app_secret.as_bytes(), inbound_body(&w)).await,
        200,
        "the webhook works without the token secret"
    );
    let tenant = w
        .stack
        .app
        .directory
        .tenant(&w.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert!(w.stack.app.directory.token(&tenant).await.is_err());

    // And the other way round: the token alone serves a Graph call.
    let w2 = spawn_world().await;
    let store = w2.stack.app.directory.secret_store();
    store
        .client()
        .delete_secret()
        .secret_id(SecretKind::Webhook.name(&store.secret_id(&w2.tenant_id)))
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("webhook secret deleted");
    w2.stack.app.directory.invalidate(&w2.tenant_id);
    let tenant = w2
        .stack
        .app
        .directory
        .tenant(&w2.tenant_id)
        .await
        .unwrap()
        .unwrap();
    let pnid = tenant.phone_number_id.to_string();
    let info = w2
        .stack
        .app
        .directory
        .with_token(&tenant, |t| {
            let pnid = pnid.clone();
            let graph = w2.stack.app.graph.clone();
            async move { graph.phone_number(&pnid, &t.access_token).await }
        })
        .await
        .expect("a Graph call with the token alone");
    assert_eq!(info.id, pnid);
    w.shutdown().await;
    w2.shutdown().await;
}

// ------------------------------------------------------------ template.yaml

pub(crate) fn template() -> Yaml {
    serde_yaml::from_str(fincelo_local::provision::TEMPLATE_YAML).expect("template.yaml parses")
}

pub(crate) fn resource<'a>(t: &'a Yaml, id: &str) -> &'a Yaml {
    t.get("Resources")
        .and_then(|r| r.get(id))
        .unwrap_or_else(|| panic!("resource {id}"))
}

/// The text of a scalar, `!Sub`, `!Ref` or `!GetAtt` (the tag dropped).
pub(crate) fn text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Tagged(t) => text(&t.value),
        Yaml::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Every string under `v`, tags dropped, in order.
pub(crate) fn strings(v: &Yaml, out: &mut Vec<String>) {
    match v {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Tagged(t) => strings(&t.value, out),
        Yaml::Sequence(seq) => seq.iter().for_each(|x| strings(x, out)),
        Yaml::Mapping(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// IAM's ARN wildcards: `*` any run of characters, `?` exactly one.
fn iam_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    let mut dp = vec![vec![false; a.len() + 1]; p.len() + 1];
    dp[0][0] = true;
    for i in 1..=p.len() {
        dp[i][0] = dp[i - 1][0] && p[i - 1] == '*';
        for j in 1..=a.len() {
            dp[i][j] = match p[i - 1] {
                '*' => dp[i - 1][j] || dp[i][j - 1],
                '?' => dp[i - 1][j - 1],
                c => dp[i - 1][j - 1] && c == a[j - 1],
            };
        }
    }
    dp[p.len()][a.len()]
}

/// The resources a role may `secretsmanager:GetSecretValue`, as written.
fn secret_read_patterns(t: &Yaml, role: &str) -> Vec<String> {
    let mut out = Vec::new();
    for policy in resource(t, role)["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        for st in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            let mut actions = Vec::new();
            strings(&st["Action"], &mut actions);
            if actions.iter().any(|a| a == "secretsmanager:GetSecretValue") {
                strings(&st["Resource"], &mut out);
            }
        }
    }
    out
}

/// The webhook role's secret patterns match a tenant's webhook secret and
/// never its token secret; the sender's and the template function's the
/// other way round; the admin function's both. Names are built by the
/// code's own [`SecretKind::name`], with the six characters Secrets
/// Manager appends to an ARN.
#[test]
fn the_webhook_role_cannot_read_a_token() {
    let t = template();
    let arn = |kind: SecretKind, tenant: &str| {
        format!(
            "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{}-AbC123",
            kind.name(&format!("${{AWS::StackName}}/tenants/{tenant}"))
        )
    };
    let reads = |role: &str, kind: SecretKind| {
        let patterns = secret_read_patterns(&t, role);
        assert!(!patterns.is_empty(), "{role} reads some secret");
        ["acme", "a-b_c", "token", "webhook"]
            .iter()
            .all(|tenant| patterns.iter().any(|p| iam_matches(p, &arn(kind, tenant))))
    };
    assert!(reads("WebhookRole", SecretKind::Webhook));
    assert!(
        !reads("WebhookRole", SecretKind::Token),
        "the webhook role reads tokens"
    );
    for role in ["SenderRole", "TemplatesRole"] {
        assert!(reads(role, SecretKind::Token), "{role}");
        assert!(
            !reads(role, SecretKind::Webhook),
            "{role} reads app secrets"
        );
    }
    assert!(reads("AdminRole", SecretKind::Token) && reads("AdminRole", SecretKind::Webhook));
    assert!(iam_matches("a/*/webhook-??????", "a/x/webhook-AbC123"));
    assert!(!iam_matches("a/*/webhook-??????", "a/x/webhook-AbC12"));
}

/// Each queue's policy allows `sqs:SendMessage` to exactly its writers and
/// denies everyone else: the send queue to the sender, the webhook, the
/// admin function, the upstream producers and the sweep rule (by its ARN);
/// the events queue to the webhook, sender and template functions; the
/// send DLQ to the sender; the events DLQ to no one (SQS's redrive fills
/// it). The sweep rule puts its constant message on the send queue.
#[test]
fn each_queue_takes_messages_only_from_its_writers() {
    let t = template();
    let policy_of = |queue: &str| -> &Yaml {
        t["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .find(|r| {
                r["Type"] == "AWS::SQS::QueuePolicy" && text(&r["Properties"]["Queues"][0]) == queue
            })
            .unwrap_or_else(|| panic!("{queue} has a queue policy"))
    };
    let cases: [(&str, &[&str]); 4] = [
        (
            "SendQueue",
            &["SenderRole", "WebhookRole", "AdminRole", "TemplatesRole"],
        ),
        (
            "EventsQueue",
            &["WebhookRole", "SenderRole", "TemplatesRole"],
        ),
        ("SendDeadLetterQueue", &["SenderRole"]),
        ("EventsDeadLetterQueue", &[]),
    ];
    for (queue, writers) in cases {
        let statements = policy_of(queue)["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap();
        let mut allowed = Vec::new();
        let mut denied_unless = Vec::new();
        for st in statements {
            let st = match st {
                Yaml::Tagged(_) => continue, // the optional upstream statement (!If)
                st => st,
            };
            assert_eq!(text(&st["Action"]), "sqs:SendMessage", "{queue}");
            match text(&st["Effect"]).as_str() {
                "Allow" => strings(&st["Principal"]["AWS"], &mut allowed),
                "Deny" => {
                    assert_eq!(text(&st["Principal"]), "*", "{queue}");
                    strings(
                        &st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"],
                        &mut denied_unless,
                    );
                    assert_eq!(
                        text(&st["Condition"]["Bool"]["aws:PrincipalIsAWSService"]),
                        "false"
                    );
                }
                other => panic!("{queue}: effect {other}"),
            }
        }
        let roles = |v: &[String]| {
            let mut r: Vec<String> = v
                .iter()
                .filter_map(|s| s.strip_suffix(".Arn").map(str::to_string))
                .collect();
            // The send queue's list is under an !If whose two branches
            // (with and without upstream producers) name the same roles.
            r.sort();
            r.dedup();
            r
        };
        let mut want: Vec<String> = writers.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(roles(&allowed), want, "{queue}: allowed writers");
        assert_eq!(
            roles(&denied_unless),
            want,
            "{queue}: the deny spares only them"
        );
    }
    let send = policy_of("SendQueue")["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let events = send
        .iter()
        .find(|st| text(&st["Principal"]["Service"]) == "events.amazonaws.com")
        .expect("EventBridge may send to the send queue");
    assert_eq!(
        text(&events["Condition"]["ArnEquals"]["aws:SourceArn"]),
        "SweepSchedule.Arn"
    );
    let rule = &resource(&t, "SweepSchedule")["Properties"];
    assert_eq!(text(&rule["ScheduleExpression"]), "rate(5 minutes)");
    assert_eq!(text(&rule["Targets"][0]["Arn"]), "SendQueue.Arn");
    let input: Value = serde_json::from_str(&text(&rule["Targets"][0]["Input"])).unwrap();
    assert_eq!(input, json!({"kind": "sweep", "version": 1}));
    // The sweep's fair-queue group is the one the service gives it.
    assert_eq!(
        text(&rule["Targets"][0]["SqsParameters"]["MessageGroupId"]),
        fincelo::sender::message::fair_group(&input.to_string())
    );
}

/// The webhook's concurrency is reserved from a parameter (default 50),
/// and 0 leaves it unreserved (an account whose limit cannot afford it).
#[test]
fn the_webhook_has_reserved_concurrency() {
    let t = template();
    let param = &t["Parameters"]["WebhookReservedConcurrency"];
    assert_eq!(text(&param["Default"]), "50");
    let mut reserved = Vec::new();
    strings(
        &resource(&t, "WebhookFunction")["Properties"]["ReservedConcurrentExecutions"],
        &mut reserved,
    );
    assert_eq!(
        reserved,
        [
            "ReservesWebhookConcurrency",
            "WebhookReservedConcurrency",
            "AWS::NoValue"
        ]
    );
}

// ---------------------------------------------------------- paging.next

/// A tiny HTTP server on loopback: answers every request with
/// `answer(path_and_query)` and remembers what it was asked.
struct Stub {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
}

async fn stub(answer: impl Fn(&str) -> Value + Send + Sync + 'static) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let (s, h) = (seen.clone(), hits.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let (s, answer) = (s.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                s.lock().unwrap().push(target.clone());
                let body = answer(&target).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    Stub { port, seen, hits }
}

fn template_json(name: &str) -> Value {
    json!({"id": format!("id-{name}"), "name": name, "language": "en", "status": "APPROVED", "category": "UTILITY"})
}

/// Meta's template listing is followed page by page on the Graph API's own
/// origin, and a `paging.next` to another host, port or scheme is not
/// followed: the other server never sees a request (nor the bearer
/// token), and the list comes back marked incomplete.
#[tokio::test]
async fn paging_next_is_followed_only_on_the_graph_origin() {
    let elsewhere = stub(|_| json!({"data": [template_json("stolen")]})).await;
    let other_port = elsewhere.port;
    // The Graph API: page 1 → page 2 on its own origin → a `next` off it.
    let graph_port = Arc::new(AtomicUsize::new(0));
    let gp = graph_port.clone();
    let graph = stub(move |target| {
        let own = gp.load(Ordering::SeqCst);
        if target.contains("after=page2") {
            json!({"data": [template_json("second")], "paging": {"next": format!("http://127.0.0.1:{other_port}/v23.0/106/message_templates?access_token=leak&after=page3")}})
        } else if target.contains("/207/") {
            json!({"data": [], "paging": {"next": format!("https://127.0.0.1:{own}/v23.0/106/message_templates?after=page4")}})
        } else {
            json!({"data": [template_json("first")], "paging": {"next": format!("http://127.0.0.1:{own}/v23.0/106/message_templates?after=page2")}})
        }
    })
    .await;
    graph_port.store(usize::from(graph.port), Ordering::SeqCst);
    let client = GraphClient::new(&GraphConfig {
        base_url: format!("http://127.0.0.1:{}", graph.port).parse().unwrap(),
        version: "v23.0".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let token = SecretString::from("EAAG-bearer".to_string());

    let list = client.list_templates("106", &token).await.unwrap();
    let names: Vec<_> = list.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert!(!list.complete, "the listing is reported incomplete");
    assert_eq!(
        graph.hits.load(Ordering::SeqCst),
        2,
        "both own pages were read"
    );
    assert_eq!(
        elsewhere.hits.load(Ordering::SeqCst),
        0,
        "the other origin never saw a request: {:?}",
        elsewhere.seen.lock().unwrap()
    );

    // Same host and port, another scheme: not followed either (no TLS
    // handshake is even attempted against the plain-HTTP stub).
    let before = graph.hits.load(Ordering::SeqCst);
    let scheme = GraphClient::new(&GraphConfig {
        base_url: format!("http://127.0.0.1:{}/", graph.port).parse().unwrap(),
        version: "v23.0".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    // WABA 207's first page has the `next` that changes the scheme.
    let list = scheme.list_templates("207", &token).await.unwrap();
    assert!(!list.complete);
    assert_eq!(graph.hits.load(Ordering::SeqCst), before + 1);
}

/// The roles allow what the functions do that moto cannot check (it
/// enforces no IAM): the sender removes waiting items (the release pass);
/// the template function's reconcile asks the sender for a release pass.
#[test]
fn the_roles_allow_the_release_of_waiting_alerts() {
    let t = template();
    let actions_of = |role: &str| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for policy in t["Resources"][role]["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
        {
            for st in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                let mut actions = Vec::new();
                strings(&st["Action"], &mut actions);
                let resource = serde_yaml::to_string(&st["Resource"]).unwrap_or_default();
                out.extend(actions.into_iter().map(|a| (a, resource.clone())));
            }
        }
        out
    };
    assert!(
        actions_of("SenderRole")
            .iter()
            .any(|(a, _)| a == "dynamodb:DeleteItem"),
        "the sender's release pass deletes waiting items"
    );
    assert!(
        actions_of("TemplatesRole")
            .iter()
            .any(|(a, r)| a == "sqs:SendMessage" && r.contains("SendQueue")),
        "the reconcile enqueues a release on the send queue"
    );
}
