//! Sender function: SQS send queue → `fincelo::sender`, partial batch responses.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = fincelo::startup::start("sender").await?;
    let sender = fincelo::sender::Sender::new(app);
    let sender = &sender;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(sender.handle_batch(event.payload).await)
    }))
    .await
}
