//! launch-host: launches VS Code hosts from the promoted AMI, on request or after a promotion,
//! follows their readiness and sends each owner a connection kit.

use chrono::{DateTime, Utc};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::Clients;
use shared::config::Env;
use shared::launch::{LaunchConfig, LaunchError, Launcher, Outcome};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = LaunchConfig::from_env(&Env::from_process()).inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; the function cannot start");
    })?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let launcher = Launcher::new(
        config,
        Clients::from_config(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let launcher = &launcher;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        let deadline = DateTime::<Utc>::from_timestamp_millis(context.deadline as i64);
        let outcome: Result<Outcome, LaunchError> = launcher
            .handle(&payload, &context.request_id, deadline, Utc::now())
            .await;
        outcome
    }))
    .await
}
