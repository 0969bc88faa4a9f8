//! The AWS SDK configuration for the local AWS emulator (moto): dummy
//! credentials, a fixed region, the emulator's endpoint and a few more
//! retries. It lives here, not in `fincelo::startup`, because nothing in a
//! Lambda may use it: only the local runner, `fwa` against the local stack,
//! the benchmark and the tests do.

use aws_config::{BehaviorVersion, SdkConfig};
use fincelo::startup::StartupError;

/// An SDK configuration for the emulator at `endpoint`, so that no local
/// tool depends on the caller's AWS profile.
///
/// It uses the functions' HTTP client ([`fincelo::aws_http`]), so every
/// test through the emulator also goes through it.
pub async fn sdk_config(endpoint: &str) -> Result<SdkConfig, StartupError> {
    let creds = aws_credential_types::Credentials::new("test", "test", None, None, "fincelo-local");
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(fincelo::aws_http::http_client().map_err(StartupError::AwsHttp)?)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        // moto's development server occasionally answers 500 under parallel
        // load; a few more retries than the default keep tests honest about
        // our logic rather than the emulator.
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
        // moto is one Python process: on a loaded machine (a fresh build
        // beside the tests) it can send nothing for longer than the SDK's
        // default 5 s grace, which fails the call as a stalled stream
        // (seen: a GetItem of the full-size fault run, while a fresh clone
        // built beside it). The emulator's pause is not our logic's failure.
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::enabled()
                .grace_period(std::time::Duration::from_secs(60))
                .build(),
        )
        .load()
        .await)
}
