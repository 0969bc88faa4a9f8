//! Admin function: API Gateway HTTP API (`AWS_IAM`) → `fincelo::admin`.
// The handler's future nests the AWS SDK's deep future types; laying it out
// needs more than the default query depth of 128.
#![recursion_limit = "256"]

use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = fincelo::startup::start("admin").await?;
    let app = &app;
    run(service_fn(move |req: Request| async move {
        fincelo::admin::lambda::serve(app, req).await
    }))
    .await
}
