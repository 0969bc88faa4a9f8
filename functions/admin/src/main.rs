//! Admin function: API Gateway HTTP API (`AWS_IAM`) → `fincelo::admin`.

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
