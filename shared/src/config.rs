//! Typed configuration, read once at start-up.
//!
//! Every function (and the local runner, and the tests) builds one [`Config`]
//! from its environment before it serves anything. A missing or malformed
//! variable stops start-up with one message that names the variable, so a bad
//! deploy fails at init rather than on the first alert. Only the environment
//! differs between Lambda, `make dev` and the tests; the code is the same.
//!
//! Secrets are never configuration: the environment holds only *where* a
//! tenant's secret lives (a name prefix), never a token.
//!
//! Every variable, its default and what `template.yaml` sets it to:
//! `docs/operating.md`, "Configuration reference" (the one list). A unit
//! test below reads that table and fails when it and this module disagree.

use std::time::Duration;

use thiserror::Error;
use url::Url;

/// Why the configuration could not be read. Each variant names the variable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: environment variable {var} is required but not set")]
    Missing { var: &'static str },
    #[error("configuration: environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Where the Graph API is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// `https://graph.facebook.com` in production, the Meta sandbox locally.
    pub base_url: Url,
    /// Graph API version path segment, e.g. `v26.0` (Meta's table of
    /// versions and their expiry: [`crate::graph::versions`]).
    pub version: String,
    /// Whole-request timeout. A send that times out is *ambiguous* (Meta may
    /// have accepted it), so this is also the bound on how long an alert can
    /// be in doubt before the ambiguity rule takes over.
    pub timeout: Duration,
}

/// Knobs of the sender function.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Meta's messages-per-second cap per phone number (80 by default), for
    /// a tenant whose channel sets none; all instances share it through the
    /// store ([`crate::store::Claim`]).
    pub mps_cap: u32,
    /// The event source mapping's maximum concurrency, as deployed: the
    /// parameter `SenderMaxConcurrency` sets both this and the mapping's
    /// `ScalingConfig.MaximumConcurrency` (2 to 1,000,
    /// <https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html>).
    /// The sender's pacing does not depend on it (the caps are shared); the
    /// local runner scales its send-queue pollers up to it as Lambda does
    /// (`infra/local/src/event_source.rs`), and the bench reports it.
    pub max_concurrency: u32,
    /// A window that closes sooner than this is treated as closed, so a
    /// free-form send never races the 24-hour boundary.
    pub window_margin: Duration,
    /// How long an ambiguous send (accepted-or-not unknown) waits for a status
    /// webhook before it is judged lost and sent again.
    pub ambiguous_delay: Duration,
    /// How long an alert waits for its template to be approved when it has no
    /// `deliver_by` of its own, before it is parked.
    pub template_wait_limit: Duration,
    /// Transient failures are retried at most this many times (counted from
    /// SQS's receive count), then parked in the DLQ.
    pub max_attempts: u32,
    /// A claim older than this is considered abandoned (the instance died).
    pub claim_lease: Duration,
    /// Meta's pair rate limit (error 131056) as the sender keeps it, for all
    /// instances together: `pair_burst` messages to one CSM back to back,
    /// then one per `pair_interval`, kept whole by each instance
    /// ([`crate::sender::pacer`]); alerts to one CSM spread over several
    /// instances can meet Meta's 131056, which is retried.
    pub pair_burst: u32,
    pub pair_interval: Duration,
    /// A send whose pair slot is further away than this is re-queued with a
    /// delay instead of holding the invocation.
    pub pair_max_wait: Duration,
    /// While a tenant's sends are held (Meta's 131042, a payment issue), one
    /// alert per this interval is let through to find out whether the hold
    /// has cleared.
    pub hold_probe_interval: Duration,
    /// An alert that must wait without burning an attempt (its tenant is
    /// held; a CSM under Meta's per-user limit, 131049) goes back on the
    /// send queue as a fresh message this much later (1 s to SQS's 900 s).
    pub requeue_delay: Duration,
}

/// Cache lifetimes for tenant data and secrets.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// A rotated token or app secret is picked up within this time.
    pub secret_ttl: Duration,
    /// A changed tenant configuration is picked up within this time.
    pub tenant_ttl: Duration,
}

/// The whole configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub send_queue_url: String,
    pub send_dlq_url: String,
    pub events_queue_url: String,
    /// Each tenant's secret is named `prefix + tenant_id`.
    pub tenant_secret_prefix: String,
    /// `TENANT_SECRET_KMS_KEY_ID` (optional, admin function only): the KMS
    /// key a tenant secret created by the admin API is encrypted with; unset,
    /// Secrets Manager's default key.
    pub tenant_secret_kms_key_id: Option<String>,
    pub graph: GraphConfig,
    /// `AWS_ENDPOINT_URL`: set locally and in tests to reach the emulator.
    /// The AWS SDK reads it itself; it is kept here to be reported at start-up.
    pub aws_endpoint_url: Option<String>,
    /// The effective log filter (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`).
    pub log_level: String,
    pub sender: SenderConfig,
    pub cache: CacheConfig,
    /// Largest webhook body accepted. Meta's bodies stay under 3 MB; API
    /// Gateway's payload limit is 10 MB.
    pub webhook_max_body_bytes: usize,
    /// `READ_RECEIPTS` (default `true`): a CSM's response to an alert is
    /// marked read at Meta, so the CSM sees it reached Fincelo.
    pub read_receipts: bool,
    /// `RETENTION_DAYS` (default 90, at least 15: longer than a send
    /// request can be redelivered): an alert's ledger item,
    /// its responses and its message statuses expire (DynamoDB TTL) this
    /// many days after their last write ([`crate::store::Retention`]).
    pub retention_days: u32,
    /// `METRICS_NAMESPACE` (the template sets `fincelo-whatsapp/<stack>`):
    /// the CloudWatch namespace of the service's metrics
    /// ([`crate::metrics`]). Unset (the local stack, the tests): no metric
    /// lines, so stdout carries only what the tests print.
    pub metrics_namespace: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda; `local` otherwise): the
    /// `Function` dimension of every metric.
    pub function_name: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let graph_base = env.required("GRAPH_API_BASE_URL")?;
        let base_url = Url::parse(&graph_base).map_err(|e| ConfigError::Invalid {
            var: "GRAPH_API_BASE_URL",
            reason: e.to_string(),
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                var: "GRAPH_API_BASE_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        let version = env.required("GRAPH_API_VERSION")?;
        if !version.starts_with('v') || version[1..].parse::<f32>().is_err() {
            return Err(ConfigError::Invalid {
                var: "GRAPH_API_VERSION",
                reason: format!("expected a version like v26.0, got {version:?}"),
            });
        }
        // AWS takes 2 to 1,000 for an event source mapping's
        // MaximumConcurrency (`template.yaml` holds that range); 1 is kept
        // for the local runner, which runs a single poller when told to.
        let max_concurrency = env.number("SENDER_MAX_CONCURRENCY", 2)?;
        if !(1..=1000).contains(&max_concurrency) {
            return Err(ConfigError::Invalid {
                var: "SENDER_MAX_CONCURRENCY",
                reason: "must be 1 to 1000 (AWS's event source mappings take 2 to 1000)".into(),
            });
        }
        let pair_burst = env.number("PAIR_BURST", 10)?.max(1);
        let mps_cap = env.number("SEND_MPS_CAP", 80)?;
        if mps_cap == 0 {
            return Err(ConfigError::Invalid {
                var: "SEND_MPS_CAP",
                reason: "must be at least 1".into(),
            });
        }
        let requeue_delay = env.number("SEND_REQUEUE_DELAY_SECS", 900)?;
        if !(1..=900).contains(&requeue_delay) {
            return Err(ConfigError::Invalid {
                var: "SEND_REQUEUE_DELAY_SECS",
                reason: "must be 1 to 900 (SQS's longest delay)".into(),
            });
        }
        let log_level = lookup("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| lookup("RUST_LOG"))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "info".to_string());
        Ok(Config {
            table_name: env.required("TABLE_NAME")?,
            send_queue_url: env.required("SEND_QUEUE_URL")?,
            send_dlq_url: env.required("SEND_DLQ_URL")?,
            events_queue_url: env.required("EVENTS_QUEUE_URL")?,
            tenant_secret_prefix: env.required("TENANT_SECRET_PREFIX")?,
            tenant_secret_kms_key_id: lookup("TENANT_SECRET_KMS_KEY_ID")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            graph: GraphConfig {
                base_url,
                version,
                timeout: Duration::from_millis(env.number("GRAPH_TIMEOUT_MS", 10_000)?),
            },
            aws_endpoint_url: lookup("AWS_ENDPOINT_URL").filter(|s| !s.is_empty()),
            log_level,
            sender: SenderConfig {
                mps_cap: u32::try_from(mps_cap).map_err(|_| ConfigError::Invalid {
                    var: "SEND_MPS_CAP",
                    reason: "too large".into(),
                })?,
                max_concurrency: u32::try_from(max_concurrency).unwrap_or(1000),
                window_margin: Duration::from_secs(env.number("WINDOW_SAFETY_MARGIN_SECS", 300)?),
                ambiguous_delay: Duration::from_secs(env.number("AMBIGUOUS_SEND_DELAY_SECS", 600)?),
                template_wait_limit: Duration::from_secs(
                    env.number("TEMPLATE_WAIT_LIMIT_SECS", 72 * 3600)?,
                ),
                max_attempts: u32::try_from(env.number("SEND_MAX_ATTEMPTS", 20)?).map_err(
                    |_| ConfigError::Invalid {
                        var: "SEND_MAX_ATTEMPTS",
                        reason: "too large".into(),
                    },
                )?,
                claim_lease: Duration::from_secs(env.number("SEND_CLAIM_LEASE_SECS", 60)?),
                pair_burst: u32::try_from(pair_burst).map_err(|_| ConfigError::Invalid {
                    var: "PAIR_BURST",
                    reason: "too large".into(),
                })?,
                pair_interval: Duration::from_millis(env.number("PAIR_INTERVAL_MS", 6_000)?),
                pair_max_wait: Duration::from_millis(env.number("PAIR_MAX_WAIT_MS", 5_000)?),
                hold_probe_interval: Duration::from_secs(
                    env.number("PAYMENT_HOLD_PROBE_SECS", 900)?.max(1),
                ),
                requeue_delay: Duration::from_secs(requeue_delay),
            },
            cache: CacheConfig {
                secret_ttl: Duration::from_secs(env.number("SECRET_CACHE_TTL_SECS", 300)?),
                tenant_ttl: Duration::from_secs(env.number("TENANT_CACHE_TTL_SECS", 60)?),
            },
            webhook_max_body_bytes: usize::try_from(
                env.number("WEBHOOK_MAX_BODY_BYTES", 3 * 1024 * 1024)?,
            )
            .map_err(|_| ConfigError::Invalid {
                var: "WEBHOOK_MAX_BODY_BYTES",
                reason: "too large".into(),
            })?,
            read_receipts: env.flag("READ_RECEIPTS", true)?,
            metrics_namespace: env.optional("METRICS_NAMESPACE"),
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "local".into()),
            // The ledger item is what keeps a redelivered request from
            // being sent twice, so it must outlive every copy of the request:
            // the send queue keeps one 4 days, its DLQ (redrive) 14.
            retention_days: match env.number("RETENTION_DAYS", 90)? {
                days @ 15..=36_500 => days as u32,
                days => {
                    return Err(ConfigError::Invalid {
                        var: "RETENTION_DAYS",
                        reason: format!(
                            "expected 15 to 36500 days (longer than a send request can be redelivered), got {days}"
                        ),
                    })
                }
            },
        })
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        match (self.lookup)(var) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(ConfigError::Missing { var }),
        }
    }

    /// A variable's value, `None` when unset or blank.
    fn optional(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match (self.lookup)(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                var,
                reason: format!("expected true or false, got {v:?}"),
            }),
        }
    }

    fn number(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match (self.lookup)(var) {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                var,
                reason: format!("expected a whole number, got {v:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        [
            ("TABLE_NAME", "t"),
            ("SEND_QUEUE_URL", "http://q/send"),
            ("SEND_DLQ_URL", "http://q/dlq"),
            ("EVENTS_QUEUE_URL", "http://q/events"),
            ("TENANT_SECRET_PREFIX", "fwa/tenants/"),
            ("GRAPH_API_BASE_URL", "https://graph.facebook.com"),
            ("GRAPH_API_VERSION", "v26.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    fn read(map: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn retention_is_ninety_days_unless_set() {
        let mut env = base();
        assert_eq!(read(&env).expect("valid").retention_days, 90);
        env.insert("RETENTION_DAYS", "30".into());
        assert_eq!(read(&env).expect("valid").retention_days, 30);
        // 14 days: a request redriven from the DLQ could outlive its ledger
        // item and be sent again.
        env.insert("RETENTION_DAYS", "14".into());
        assert!(matches!(
            read(&env),
            Err(ConfigError::Invalid {
                var: "RETENTION_DAYS",
                ..
            })
        ));
    }

    #[test]
    fn read_receipts_are_on_unless_turned_off() {
        let mut env = base();
        assert!(read(&env).expect("valid").read_receipts);
        env.insert("READ_RECEIPTS", "false".into());
        assert!(!read(&env).expect("valid").read_receipts);
        env.insert("READ_RECEIPTS", "maybe".into());
        assert!(matches!(
            read(&env),
            Err(ConfigError::Invalid {
                var: "READ_RECEIPTS",
                ..
            })
        ));
    }

    #[test]
    fn complete_environment_reads_with_defaults() {
        let c = read(&base()).expect("valid");
        assert_eq!(c.table_name, "t");
        assert_eq!(c.sender.mps_cap, 80);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.webhook_max_body_bytes, 3 * 1024 * 1024);
        assert_eq!(c.sender.hold_probe_interval, Duration::from_secs(900));
        assert_eq!(c.sender.requeue_delay, Duration::from_secs(900));
    }

    #[test]
    fn each_missing_variable_is_named() {
        for var in [
            "TABLE_NAME",
            "SEND_QUEUE_URL",
            "SEND_DLQ_URL",
            "EVENTS_QUEUE_URL",
            "TENANT_SECRET_PREFIX",
            "GRAPH_API_BASE_URL",
            "GRAPH_API_VERSION",
        ] {
            let mut m = base();
            m.remove(var);
            let err = read(&m).expect_err("must fail");
            assert_eq!(err, ConfigError::Missing { var });
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn malformed_values_are_refused_with_the_variable_name() {
        let cases = [
            ("GRAPH_API_BASE_URL", "not a url"),
            ("GRAPH_API_BASE_URL", "ftp://x"),
            ("GRAPH_API_VERSION", "23"),
            ("SEND_MPS_CAP", "eighty"),
            ("SEND_MPS_CAP", "0"),
            ("SENDER_MAX_CONCURRENCY", "0"),
            ("SENDER_MAX_CONCURRENCY", "1001"),
            ("GRAPH_TIMEOUT_MS", "-1"),
            ("SEND_REQUEUE_DELAY_SECS", "0"),
            ("SEND_REQUEUE_DELAY_SECS", "901"),
        ];
        for (var, value) in cases {
            let mut m = base();
            m.insert(var, value.to_string());
            match read(&m) {
                Err(ConfigError::Invalid { var: v, .. }) => assert_eq!(v, var, "{value}"),
                other => panic!("{var}={value}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log() {
        let mut m = base();
        m.insert("RUST_LOG", "debug".into());
        assert_eq!(read(&m).expect("valid").log_level, "debug");
        m.insert("AWS_LAMBDA_LOG_LEVEL", "warn".into());
        assert_eq!(read(&m).expect("valid").log_level, "warn");
    }

    /// The variables the configuration table documents
    /// (`docs/operating.md`, "Configuration reference"): the first cell of
    /// each row, where `A` / `B` names two.
    fn documented() -> std::collections::BTreeSet<String> {
        let page = include_str!("../../docs/operating.md");
        let table = page
            .split_once("## Configuration reference")
            .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
            .unwrap_or("");
        table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split(" |").next())
            .flat_map(|cell| cell.split(" / "))
            .map(|v| v.trim_matches('`').to_string())
            .collect()
    }

    /// The variables [`Config::from_lookup`] reads, as it reads them: every
    /// name it looks up when only the required ones are set.
    fn read_by_config() -> std::collections::BTreeSet<String> {
        let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
        let map = base();
        let config = Config::from_lookup(|k| {
            asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(k.to_string());
            map.get(k).cloned()
        });
        assert!(config.is_ok(), "the base configuration is valid");
        asked.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// One place per fact, checked: the docs' configuration table lists
    /// exactly the variables `config.rs` reads.
    #[test]
    fn the_configuration_table_lists_every_variable_config_reads_and_no_other() {
        let documented = documented();
        let read = read_by_config();
        assert!(read.len() > 20, "config.rs reads {read:?}");
        let undocumented: Vec<_> = read.difference(&documented).collect();
        let unread: Vec<_> = documented.difference(&read).collect();
        assert!(
            undocumented.is_empty() && unread.is_empty(),
            "docs/operating.md's configuration table is out of step with config.rs: \
             read but not documented {undocumented:?}; documented but not read {unread:?}"
        );
    }
}
