//! AWS adapters: one module per service. They perform I/O and translate SDK shapes into the
//! project's own types; they decide nothing.

pub mod ec2;
pub mod hosts;
pub mod imagebuilder;
pub mod ledger;
pub mod sns;
pub mod ssm;

use aws_sdk_ssm::error::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A failed AWS call: which operation, on which resource, and what AWS answered.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {resource} failed: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub resource: String,
    /// The AWS error code when the service sent one (`InvalidAMIID.NotFound`, ...).
    pub code: Option<String>,
    /// The HTTP status of the last response, when there was one.
    pub status: Option<u16>,
    pub message: String,
}

impl AwsError {
    pub fn new<E>(operation: &'static str, resource: impl Into<String>, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        // Prefer what AWS said; the SDK's full error context is long and holds raw bodies.
        let message = match (code.as_deref(), err.message(), status) {
            (Some(code), Some(text), _) => format!("{code}: {text}"),
            (Some(code), None, _) => code.to_string(),
            (None, Some(text), _) => text.to_string(),
            (None, None, Some(status)) => {
                format!("HTTP {status} with no AWS error code in the response")
            }
            (None, None, None) => DisplayErrorContext(&err).to_string(),
        };
        AwsError {
            operation,
            resource: resource.into(),
            code,
            status,
            message,
        }
    }

    pub fn plain(
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            operation,
            resource: resource.into(),
            code: None,
            status: None,
            message: message.into(),
        }
    }

    /// Throttling and server-side errors that survived the SDK's own retries.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "ServiceUnavailable"
                    | "ServiceUnavailableException"
                    | "InternalError"
                    | "InternalServerError"
                    | "ServiceException"
                    | "CallRateLimitExceededException"
            )
        ) || self.status.is_some_and(|s| s == 429 || s >= 500)
            || self.message.contains("dispatch failure")
            || self.message.contains("timeout")
    }
}

/// The SDK clients a function uses, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub imagebuilder: aws_sdk_imagebuilder::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sns: aws_sdk_sns::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// Loads region, credentials, retries and endpoints (`AWS_ENDPOINT_URL_*`) the standard way.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Clients::from_config(&config)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Clients {
            imagebuilder: aws_sdk_imagebuilder::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
        }
    }
}
