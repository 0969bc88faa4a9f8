//! Provisions the emulator with the table and queues of `template.yaml`.
//!
//! The attributes (keys, indexes, TTL attribute, visibility timeouts,
//! retention, redrive) are read from `template.yaml` itself, so local runs and
//! tests use what production uses and cannot drift from it. Names get a
//! prefix, so parallel tests and a running `make dev` never share a resource.
//! `make dev` and the integration tests both call [`provision`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use thiserror::Error;

/// The template, compiled in: the local stack is always the one this build knows.
pub const TEMPLATE_YAML: &str = include_str!("../../../template.yaml");

#[derive(Debug, Error)]
pub enum ProvisionError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("emulator request failed: {op}")]
    Aws {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn aws<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> ProvisionError {
    move |e| ProvisionError::Aws {
        op,
        source: Box::new(e),
    }
}

/// What was created, by template logical id.
#[derive(Debug, Clone)]
pub struct Resources {
    pub prefix: String,
    pub table_name: String,
    pub queue_urls: HashMap<String, String>,
    pub queue_visibility: HashMap<String, i32>,
}

impl Resources {
    pub fn queue(&self, logical_id: &str) -> &str {
        self.queue_urls
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Overrides for tests that cannot wait minutes (the template's 190 s
/// visibility timeout, 100 receives).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub send_queue_visibility_secs: Option<i32>,
    pub send_queue_max_receive: Option<u32>,
}

fn resources_of(kind: &str) -> Result<Vec<(String, Value)>, ProvisionError> {
    let doc: Value =
        serde_yaml::from_str(TEMPLATE_YAML).map_err(|e| ProvisionError::Template(e.to_string()))?;
    let res = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| ProvisionError::Template("no Resources".into()))?;
    Ok(res
        .iter()
        .filter(|(_, v)| v.get("Type").and_then(Value::as_str) == Some(kind))
        .filter_map(|(k, v)| {
            Some((
                k.as_str()?.to_string(),
                v.get("Properties").cloned().unwrap_or(Value::Null),
            ))
        })
        .collect())
}

/// A template parameter's default, as `sam deploy` takes it when the
/// operator gives no value (e.g. `SenderMaxConcurrency`).
pub fn parameter_default(name: &str) -> Result<i64, ProvisionError> {
    let doc: Value =
        serde_yaml::from_str(TEMPLATE_YAML).map_err(|e| ProvisionError::Template(e.to_string()))?;
    int(doc
        .get("Parameters")
        .and_then(|p| p.get(name))
        .and_then(|p| p.get("Default")))
    .ok_or_else(|| ProvisionError::Template(format!("no numeric default for parameter {name}")))
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok()))
}

/// The logical id a `!GetAtt X.Arn` points at.
fn getatt_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => match &t.value {
            Value::String(s) => s.split('.').next().map(str::to_string),
            Value::Sequence(seq) => seq.first()?.as_str().map(str::to_string),
            _ => None,
        },
        Value::Mapping(m) => {
            let g = m.get("Fn::GetAtt")?;
            match g {
                Value::Sequence(seq) => seq.first()?.as_str().map(str::to_string),
                Value::String(s) => s.split('.').next().map(str::to_string),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Creates the table and the queues under `prefix`.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    overrides: &Overrides,
) -> Result<Resources, ProvisionError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);

    let tables = resources_of("AWS::DynamoDB::Table")?;
    let (table_id, props) = tables
        .first()
        .ok_or_else(|| ProvisionError::Template("no AWS::DynamoDB::Table".into()))?;
    let table_name = format!("{prefix}-{table_id}");
    create_table(&dynamo, &table_name, props).await?;

    let mut queues = resources_of("AWS::SQS::Queue")?;
    // Dead-letter queues first: the others name them.
    queues.sort_by_key(|(_, p)| p.get("RedrivePolicy").is_some());
    let mut urls = HashMap::new();
    let mut arns = HashMap::new();
    let mut visibility = HashMap::new();
    for (id, props) in &queues {
        let name = format!("{prefix}-{id}");
        let mut req = sqs.create_queue().queue_name(&name);
        let is_send = id == "SendQueue";
        let vis = if is_send {
            overrides.send_queue_visibility_secs.map(i64::from)
        } else {
            None
        }
        .or_else(|| int(props.get("VisibilityTimeout")));
        if let Some(v) = vis {
            req = req.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
            visibility.insert(id.clone(), i32::try_from(v).unwrap_or(30));
        } else {
            visibility.insert(id.clone(), 30);
        }
        if let Some(v) = int(props.get("MessageRetentionPeriod")) {
            req = req.attributes(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let target = redrive
                .get("deadLetterTargetArn")
                .and_then(getatt_target)
                .ok_or_else(|| {
                    ProvisionError::Template(format!(
                        "{id}: RedrivePolicy.deadLetterTargetArn must be !GetAtt X.Arn"
                    ))
                })?;
            let arn: &String = arns
                .get(&target)
                .ok_or_else(|| ProvisionError::Template(format!("{id}: unknown DLQ {target}")))?;
            let max = if is_send {
                overrides.send_queue_max_receive.map(i64::from)
            } else {
                None
            }
            .or_else(|| int(redrive.get("maxReceiveCount")))
            .unwrap_or(5);
            let policy =
                serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max.to_string()})
                    .to_string();
            req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let url = req
            .send()
            .await
            .map_err(aws("CreateQueue"))?
            .queue_url
            .unwrap_or_default();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws("GetQueueAttributes"))?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        arns.insert(id.clone(), arn);
        urls.insert(id.clone(), url);
    }
    Ok(Resources {
        prefix: prefix.to_string(),
        table_name,
        queue_urls: urls,
        queue_visibility: visibility,
    })
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<(), ProvisionError> {
    let bad = |what: &str| ProvisionError::Template(format!("table: {what}"));
    let keys = |v: Option<&Value>| -> Result<Vec<KeySchemaElement>, ProvisionError> {
        v.and_then(Value::as_sequence)
            .ok_or_else(|| bad("KeySchema"))?
            .iter()
            .map(|k| {
                let attr = k
                    .get("AttributeName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("KeySchema.AttributeName"))?;
                let kt = match k.get("KeyType").and_then(Value::as_str) {
                    Some("HASH") => KeyType::Hash,
                    Some("RANGE") => KeyType::Range,
                    _ => return Err(bad("KeySchema.KeyType")),
                };
                KeySchemaElement::builder()
                    .attribute_name(attr)
                    .key_type(kt)
                    .build()
                    .map_err(aws("CreateTable"))
            })
            .collect()
    };
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(keys(props.get("KeySchema"))?));
    for def in props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| bad("AttributeDefinitions"))?
    {
        let attr = def
            .get("AttributeName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("AttributeName"))?;
        let t = match def.get("AttributeType").and_then(Value::as_str) {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            _ => return Err(bad("AttributeType")),
        };
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(t)
                .build()
                .map_err(aws("CreateTable"))?,
        );
    }
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let index = gsi
            .get("IndexName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("IndexName"))?;
        let projection = match gsi.pointer_str("Projection", "ProjectionType") {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(keys(gsi.get("KeySchema"))?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(aws("CreateTable"))?,
        );
    }
    req.send().await.map_err(aws("CreateTable"))?;
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let attr = ttl
            .get("AttributeName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("TimeToLiveSpecification.AttributeName"))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(aws("UpdateTimeToLive"))?,
            )
            .send()
            .await
            .map_err(aws("UpdateTimeToLive"))?;
    }
    Ok(())
}

trait PointerStr {
    fn pointer_str(&self, a: &str, b: &str) -> Option<&str>;
}

impl PointerStr for Value {
    fn pointer_str(&self, a: &str, b: &str) -> Option<&str> {
        self.get(a)?.get(b)?.as_str()
    }
}
