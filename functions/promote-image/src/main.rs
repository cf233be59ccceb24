//! promote-image: reacts to Image Builder image events and promotes a tested, clean AMI
//! behind the SSM pointer, exactly once and never backwards.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::Clients;
use shared::config::{Env, PromoteConfig};
use shared::promote::{Outcome, PromoteError, Promoter};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = PromoteConfig::from_env(&Env::from_process()).inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; the function cannot start");
    })?;
    let promoter = Promoter::new(config, Clients::from_env().await);
    let promoter = &promoter;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let outcome: Result<Outcome, PromoteError> = promoter
            .handle(&payload, &context.request_id, chrono::Utc::now())
            .await;
        outcome
    }))
    .await
}
