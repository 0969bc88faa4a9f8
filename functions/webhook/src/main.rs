//! Webhook function: API Gateway HTTP API → `fincelo::webhook`.

use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = fincelo::startup::start("webhook").await?;
    let app = &app;
    run(service_fn(move |req: Request| async move {
        fincelo::webhook::lambda::serve(app, req).await
    }))
    .await
}
