//! Template function: admin API, hourly reconcile and operator invokes → `fincelo::templates::lambda`.
// The handler's future nests the AWS SDK's deep future types; laying it out
// needs more than the default query depth of 128.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = fincelo::startup::start("templates").await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(fincelo::templates::lambda::serve(app, event.payload).await)
    }))
    .await
}
