//! The one start-up path every function (and the local runner) shares:
//! configuration, JSON logs, the AWS SDK configuration, and clients built
//! once and reused across invocations.
//!
//! Init does only what every invocation needs and what is cheap: reading the
//! environment and building clients (no network). Secrets and tenant data are
//! fetched lazily per tenant and cached, because a function serves many
//! tenants and most invocations need one of them.
//!
//! Start-up also warns when the configured Graph API version has expired or
//! expires within 90 days (Meta's table: [`crate::graph::versions`]): Meta
//! keeps serving an expired version's calls, as an older version, so nothing
//! else would say so.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use thiserror::Error;
use tracing_subscriber::EnvFilter;

use crate::aws_http;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::graph::{GraphClient, GraphError, VersionWarning};
use crate::queues::Queues;
use crate::secrets::SecretStore;
use crate::store::Store;
use crate::tenants::TenantDirectory;

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the Graph API client")]
    Graph(#[source] GraphError),
    #[error("could not build the AWS SDK's HTTP client")]
    AwsHttp(#[source] rustls::Error),
}

/// Everything a handler depends on, built once per process.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub queues: Queues,
    pub directory: Arc<TenantDirectory>,
    pub graph: GraphClient,
    /// Wall-clock time for every handler: the system's in Lambda, a
    /// shifted one in the local stack and tests ([`Clock`]).
    pub clock: Clock,
}

impl App {
    /// Builds the clients from an SDK configuration. No network traffic.
    pub fn new(config: Config, sdk: &SdkConfig) -> Result<App, StartupError> {
        App::from_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            aws_sdk_secretsmanager::Client::new(sdk),
        )
    }

    /// Builds the app around clients made by the caller. The functions use
    /// [`App::new`]; the benchmark (`bench/`) uses this to attach an SDK
    /// interceptor that counts requests per service and operation.
    pub fn from_clients(
        config: Config,
        dynamo: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<App, StartupError> {
        let store = Store::new(
            dynamo,
            &config.table_name,
            crate::store::Retention::days(config.retention_days),
        );
        let directory = TenantDirectory::new(
            store.clone(),
            SecretStore::new(secrets, &config.tenant_secret_prefix),
            config.cache.tenant_ttl,
            config.cache.secret_ttl,
        );
        let graph = GraphClient::new(&config.graph).map_err(StartupError::Graph)?;
        Ok(App {
            queues: Queues::new(
                sqs,
                config.send_queue_url.clone(),
                config.send_dlq_url.clone(),
                config.events_queue_url.clone(),
                crate::metrics::Metrics::new(
                    config.metrics_namespace.clone(),
                    &config.function_name,
                    Clock::system(),
                ),
            ),
            store,
            directory: Arc::new(directory),
            graph,
            config: Arc::new(config),
            clock: Clock::system(),
        })
    }

    /// The same app reading time from `clock` (the local stack's shifted
    /// clock).
    pub fn with_clock(mut self, clock: Clock) -> App {
        self.queues = self.queues.with_clock(clock.clone());
        self.clock = clock;
        self
    }
}

/// The AWS SDK configuration from the environment (region, credentials and
/// `AWS_ENDPOINT_URL`, which points every client at the emulator locally),
/// with the HTTP client of [`aws_http`](crate::aws_http).
pub async fn sdk_config() -> Result<SdkConfig, StartupError> {
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_http::http_client().map_err(StartupError::AwsHttp)?)
        .load()
        .await)
}

/// Installs the JSON log subscriber once. The filter is the configured level
/// (`AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG`), e.g. `INFO` or `fincelo=debug,info`.
pub fn init_tracing(level: &str) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = json_subscriber(level, std::io::stdout).try_init();
}

/// The JSON log subscriber, writing to `writer`: what [`init_tracing`]
/// installs, and what the log-capture tests install with a buffer, so the
/// tests read exactly the lines production writes. Its filter is
/// [`log_filter`].
pub fn json_subscriber<W>(level: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(log_filter(level))
        .with_writer(writer)
        .finish()
}

/// Libraries that log raw wire data at TRACE: the Lambda runtime every raw
/// event (`lambda_runtime::layers::api_response`), the AWS SDK every
/// response body. Events carry secrets (the admin API's channel config, the
/// webhook handshake's `hub.verify_token`) and bodies carry phone numbers, so
/// these never log below DEBUG, whatever the configured level.
const WIRE_LOG_CAPS: &str =
    "lambda_runtime=debug,aws_smithy_runtime=debug,aws_smithy_http_client=debug";

/// The filter for a configured level, with [`WIRE_LOG_CAPS`] added.
pub fn log_filter(level: &str) -> EnvFilter {
    let directive = if level.contains('=') {
        level.to_string()
    } else {
        level.to_ascii_lowercase()
    };
    // The caps only ever lower a level: added to a filter that asks for no
    // TRACE, `target=debug` would raise those libraries to DEBUG instead.
    let directive = if directive.contains("trace") {
        format!("{directive},{WIRE_LOG_CAPS}")
    } else {
        directive
    };
    EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Reads configuration, installs logging and builds the clients. A bad
/// configuration is reported as one line naming the variable and ends start-up.
pub async fn start(function: &'static str) -> Result<App, StartupError> {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            init_tracing("info");
            tracing::error!(function, error = %e, "start-up failed");
            return Err(e.into());
        }
    };
    init_tracing(&config.log_level);
    let sdk = sdk_config().await?;
    let app = App::new(config, &sdk)?;
    tracing::info!(
        function,
        table = %app.config.table_name,
        graph = %app.config.graph.base_url,
        graph_version = %app.config.graph.version,
        aws_endpoint = app.config.aws_endpoint_url.as_deref().unwrap_or("default"),
        "started"
    );
    warn_if_graph_version_expiring(&app);
    Ok(app)
}

/// Logs a warning when the configured Graph API version has expired or
/// expires within 90 days, on the app's clock; returns it, so a caller can
/// show it too. `None`: the version is good for longer (or Meta announced
/// no expiry for it yet).
pub fn warn_if_graph_version_expiring(app: &App) -> Option<VersionWarning> {
    let warning = crate::graph::version_warning(&app.config.graph.version, app.clock.now())?;
    tracing::warn!(
        graph_version = %warning.version,
        expires_on = warning.expires_on,
        days_left = warning.days_left,
        "{warning}"
    );
    Some(warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn wire_data_is_never_logged_even_at_trace() {
        for level in ["TRACE", "trace", "fincelo=trace,trace", "info"] {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(log_filter(level))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "lambda_runtime::layers::api_response", Level::TRACE),
                    "{level}"
                );
                assert!(
                    !tracing::enabled!(target: "aws_smithy_runtime::client::orchestrator", Level::TRACE),
                    "{level}"
                );
                if level.contains("trace") || level == "TRACE" {
                    assert!(
                        tracing::enabled!(target: "fincelo::admin", Level::TRACE),
                        "{level}"
                    );
                }
            });
        }
    }

    #[test]
    fn the_caps_never_raise_a_quieter_level() {
        for level in ["warn", "INFO", "fincelo=debug,warn"] {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(log_filter(level))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                // `enabled!` needs literal targets.
                assert!(
                    !tracing::enabled!(target: "aws_smithy_runtime::client::orchestrator", Level::DEBUG),
                    "{level}"
                );
                assert!(
                    !tracing::enabled!(target: "lambda_runtime", Level::DEBUG),
                    "{level}"
                );
            });
        }
    }
}
