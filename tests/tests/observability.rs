//! Issue 20's operations: every alarm in `template.yaml` notifies the
//! optional `AlarmTopicArn`, and the alarms cover what the operator must
//! hear about (each function's errors and throttles, the send queue's age,
//! both dead-letter queues, a tenant's held sends).

use serde_yaml::Value as Yaml;

use crate::security::{resource, strings, template, text};

/// Every `AWS::CloudWatch::Alarm`, by logical id.
fn alarms(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (text(id), &r["Properties"]))
        .collect()
}

/// Each alarm notifies through `AlarmTopicArn` when the operator gave one
/// (`HasAlarmTopic`), and nothing otherwise: one optional topic for all.
#[test]
fn every_alarm_notifies_the_optional_topic() {
    let t = template();
    let alarms = alarms(&t);
    assert!(alarms.len() >= 12, "{} alarms", alarms.len());
    for (id, p) in alarms {
        let mut actions = Vec::new();
        strings(&p["AlarmActions"], &mut actions);
        assert_eq!(
            actions,
            ["HasAlarmTopic", "AlarmTopicArn", "AWS::NoValue"],
            "{id}: AlarmActions"
        );
        if !p["OKActions"].is_null() {
            let mut ok = Vec::new();
            strings(&p["OKActions"], &mut ok);
            assert_eq!(ok, actions, "{id}: OKActions");
        }
    }
}

/// The alarms watch each function's errors and throttles, the send queue's
/// oldest message, both dead-letter queues and the held sends.
#[test]
fn the_alarms_cover_functions_queues_and_held_sends() {
    let t = template();
    let watched: Vec<(String, String, String)> = alarms(&t)
        .into_iter()
        .map(|(_, p)| {
            (
                text(&p["Namespace"]),
                text(&p["MetricName"]),
                text(&p["Dimensions"][0]["Value"]),
            )
        })
        .collect();
    let has = |ns: &str, metric: &str, dim: &str| {
        watched
            .iter()
            .any(|(n, m, d)| n == ns && m == metric && d == dim)
    };
    for function in [
        "WebhookFunction",
        "SenderFunction",
        "TemplatesFunction",
        "AdminFunction",
    ] {
        assert!(resource(&t, function)["Type"] == "AWS::Serverless::Function");
        for metric in ["Errors", "Throttles"] {
            assert!(has("AWS/Lambda", metric, function), "{function} {metric}");
        }
    }
    assert!(has(
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "SendQueue.QueueName"
    ));
    for dlq in ["SendDeadLetterQueue", "EventsDeadLetterQueue"] {
        assert!(has(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &format!("{dlq}.QueueName")
        ));
    }
    assert!(watched.iter().any(|(_, m, _)| m == "SendsHeld"));
}
