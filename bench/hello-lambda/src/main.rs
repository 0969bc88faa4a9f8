//! The cold-start baseline for `make bench`: the smallest `lambda_runtime`
//! function, built with the same profile as the real ones. It echoes its event.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
